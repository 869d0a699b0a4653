import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { gzipSync } from "node:zlib";
import YAML from "yaml";
import {
  badRequest,
  requestEntityTooLarge,
  StatusError,
  unsupportedMediaType,
  type Status,
} from "../api/status.js";

export type Request = IncomingMessage | Http2ServerRequest;
export type Response = ServerResponse | Http2ServerResponse;

/** Upstream's limit on request bodies (MaxRequestBodyBytes). */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;
/** Responses larger than this are gzipped for clients that accept it (upstream's threshold). */
const GZIP_MIN_BYTES = 128 * 1024;

/** The body each request was read with (for the audit log's requestObject). */
export const requestBodies = new WeakMap<object, Buffer>();

export function readBody(req: Request): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? -1);
  if (declared > MAX_BODY_BYTES) {
    return Promise.reject(
      requestEntityTooLarge(`Request entity too large: limit is ${MAX_BODY_BYTES}`),
    );
  }
  if (req.readableEnded) {
    const empty = Buffer.alloc(0);
    requestBodies.set(req, empty);
    return Promise.resolve(empty);
  }
  // Events rather than an async iterator: a body is mostly one chunk, and the iterator's
  // promises cost more than reading it.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        done();
        req.resume();
        reject(requestEntityTooLarge(`Request entity too large: limit is ${MAX_BODY_BYTES}`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      requestBodies.set(req, body);
      resolve(body);
    };
    const onError = (err: Error) => {
      done();
      reject(err);
    };
    const onClose = () => {
      done();
      reject(new Error("the client closed the connection before the request body ended"));
    };
    const done = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}

/** The media type of a request body, without parameters. */
export function mediaType(header: string | undefined): string {
  return (header ?? "").split(";")[0]!.trim().toLowerCase();
}

/** Parses a JSON or YAML body into an object; other media types are the caller's. */
export function parseBody(body: Buffer, contentType: string): unknown {
  const type = mediaType(contentType);
  if (body.length === 0) throw badRequest("request body must not be empty");
  if (type === "application/json" || type === "" || type.endsWith("+json")) {
    try {
      return JSON.parse(body.toString("utf8"));
    } catch (err) {
      throw badRequest(`error decoding JSON body: ${(err as Error).message}`);
    }
  }
  if (
    type === "application/yaml" ||
    type === "application/apply-patch+yaml" ||
    type === "text/yaml"
  ) {
    try {
      const docs = YAML.parseAllDocuments(body.toString("utf8"));
      const errors = docs.flatMap((d) => d.errors);
      if (errors.length > 0) throw errors[0];
      if (docs.length !== 1) throw new Error(`expected one YAML document, got ${docs.length}`);
      return docs[0]!.toJS();
    } catch (err) {
      throw badRequest(`error decoding YAML body: ${(err as Error).message}`);
    }
  }
  throw unsupportedMediaType();
}

/** What the client's Accept header asks for. */
export interface Negotiated {
  /** "json" or "yaml" (protobuf-only clients get JSON, as upstream allows clients to fall back). */
  format: "json" | "yaml";
  /** `as=Table` or `as=PartialObjectMetadata(List)` when asked for, in meta.k8s.io/v1. */
  as?: "Table" | "PartialObjectMetadata" | "PartialObjectMetadataList";
}

export function negotiate(accept: string | undefined): Negotiated {
  for (const part of (accept ?? "application/json").split(",")) {
    const [type, ...params] = part.split(";").map((s) => s.trim());
    const p = Object.fromEntries(params.map((kv) => kv.split("=") as [string, string]));
    if (p.as && (p.g !== "meta.k8s.io" || (p.v !== "v1" && p.v !== "v1beta1"))) continue;
    if (p.as && !["Table", "PartialObjectMetadata", "PartialObjectMetadataList"].includes(p.as))
      continue;
    if (type === "application/yaml") return { format: "yaml", as: p.as as Negotiated["as"] };
    if (type === "application/json" || type === "*/*" || type === "application/*") {
      return { format: "json", as: p.as as Negotiated["as"] };
    }
    if (type === "application/vnd.kubernetes.protobuf" && !p.as) return { format: "json" };
  }
  return { format: "json" };
}

export function acceptsGzip(req: Request): boolean {
  return /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
}

export function send(
  req: Request,
  res: Response,
  code: number,
  body: unknown,
  format: "json" | "yaml" = "json",
  headers: Record<string, string> = {},
): void {
  const text = format === "yaml" ? YAML.stringify(body) : JSON.stringify(body);
  let payload = Buffer.from(text);
  const out: Record<string, string> = {
    "content-type": format === "yaml" ? "application/yaml" : "application/json",
    "cache-control": "no-cache, private",
    ...headers,
  };
  if (payload.length >= GZIP_MIN_BYTES && acceptsGzip(req)) {
    payload = gzipSync(payload, { level: 1 });
    out["content-encoding"] = "gzip";
  }
  out["content-length"] = String(payload.length);
  (res as ServerResponse).writeHead(code, out);
  res.end(payload);
}

/** Sends bytes as they are (gzipped when large and accepted), for prebuilt documents. */
export function sendRaw(
  req: Request,
  res: Response,
  code: number,
  contentType: string,
  body: Buffer | string,
  headers: Record<string, string> = {},
): void {
  let payload = typeof body === "string" ? Buffer.from(body) : body;
  const out: Record<string, string> = { "content-type": contentType, ...headers };
  if (payload.length >= GZIP_MIN_BYTES && acceptsGzip(req)) {
    payload = gzipSync(payload, { level: 1 });
    out["content-encoding"] = "gzip";
  }
  out["content-length"] = String(payload.length);
  (res as ServerResponse).writeHead(code, out);
  res.end(payload);
}

export function sendText(res: Response, code: number, text: string): void {
  (res as ServerResponse).writeHead(code, {
    "content-type": "text/plain; charset=utf-8",
    "x-content-type-options": "nosniff",
    "cache-control": "no-cache, private",
  });
  res.end(text);
}

export function sendStatus(
  req: Request,
  res: Response,
  err: StatusError | Status,
  format: "json" | "yaml" = "json",
): void {
  const status = err instanceof StatusError ? err.toStatus() : err;
  const headers: Record<string, string> = {};
  if (status.details?.retryAfterSeconds)
    headers["retry-after"] = String(status.details.retryAfterSeconds);
  send(req, res, status.code, status, format, headers);
}
