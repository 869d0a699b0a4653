/**
 * The HTTP client of the API: JSON requests over keep-alive connections (a pool of HTTP/1.1
 * connections, or one HTTP/2 session), bearer-token, basic or client-certificate authentication,
 * `Status` answers turned into `StatusError`s, and watches read as a stream of events.
 *
 * Contract:
 * - One TLS handshake per pooled connection, not per request; `close()` ends the pool.
 * - A 429 or 5xx answer that carries Retry-After is retried after that many seconds, up to 10
 *   times (client-go's behaviour), for every verb: the server did not act on it.
 * - Every non-2xx answer rejects with a `StatusError` carrying the server's code, reason, message
 *   and details; transport failures reject with the socket's error.
 */

import fs from "node:fs";
import http2 from "node:http2";
import type tls from "node:tls";
import type { Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import { Pool, type Dispatcher } from "undici";
import { StatusError, type Status, type StatusReason } from "../api/status.js";
import { kubernetesVersion } from "../cli/version.js";
import { realClock, sleep } from "./clock.js";
import { defaultUserAgent, type RestConfig } from "./config.js";
import { TokenBucket } from "./ratelimit.js";

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  /** JSON-encoded unless a string or Buffer. */
  body?: unknown;
  /** Content type of the body; application/json by default. */
  contentType?: string;
  accept?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One event of a watch stream as the server sends it. */
export interface WatchEvent<T = unknown> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

interface StreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

interface Transport {
  send(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: Buffer | undefined,
    signal: AbortSignal | undefined,
    stream: boolean,
  ): Promise<StreamResponse>;
  close(): void;
}

const MAX_RETRIES = 10;
/** How long a token read from a file is trusted before the file is read again. */
const TOKEN_FILE_TTL_MS = 60_000;

const REASONS: Record<number, StatusReason> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  406: "NotAcceptable",
  409: "Conflict",
  410: "Gone",
  413: "RequestEntityTooLarge",
  415: "UnsupportedMediaType",
  422: "Invalid",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout",
};

/** The `StatusError` of an unsuccessful answer: the server's Status, or one made from the code. */
export function statusErrorFromResponse(
  status: number,
  body: Buffer,
  method: string,
  path: string,
): StatusError {
  try {
    const s = JSON.parse(body.toString()) as Partial<Status>;
    if (s && s.kind === "Status")
      return new StatusError(
        s.code || status,
        s.reason ?? REASONS[status] ?? "",
        s.message ?? "",
        s.details,
      );
  } catch {
    // not a Status: fall through
  }
  const text = body.toString().trim();
  const message =
    status === 401
      ? "the server has asked for the client to provide credentials"
      : status === 403
        ? `forbidden: ${text}`
        : status === 404
          ? "the server could not find the requested resource"
          : `an error on the server (${JSON.stringify(text.slice(0, 200))}) has prevented the request from succeeding (${method.toLowerCase()} ${path})`;
  return new StatusError(status, REASONS[status] ?? "InternalError", message);
}

function tlsOptions(config: RestConfig): tls.ConnectionOptions {
  const o: tls.ConnectionOptions = {};
  if (config.ca) o.ca = config.ca;
  if (config.cert) o.cert = config.cert;
  if (config.key) o.key = config.key;
  if (config.insecureSkipTLSVerify) o.rejectUnauthorized = false;
  if (config.tlsServerName) o.servername = config.tlsServerName;
  return o;
}

/**
 * HTTP/1.1 (plain or TLS) through undici's connection pools: a bounded pool of keep-alive
 * connections for requests, and connections of their own for watches. undici spends about a
 * third less CPU per request than node:http's client (docs/decisions/0007), which matters to
 * components that write thousands of objects a second.
 */
class Http1Transport implements Transport {
  /** Unary requests share a bounded pool; watches get connections of their own. */
  private readonly pool: Pool;
  private readonly streams: Pool;

  constructor(url: URL, config: RestConfig, maxConnections: number) {
    const secure = url.protocol === "https:";
    // No client-side time limits, as client-go: watches and long lists take what they take.
    const common = {
      headersTimeout: 0,
      bodyTimeout: 0,
      ...(secure ? { connect: tlsOptions(config) } : {}),
    };
    this.pool = new Pool(url.origin, { ...common, connections: maxConnections });
    this.streams = new Pool(url.origin, common);
  }

  async send(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: Buffer | undefined,
    signal: AbortSignal | undefined,
    stream: boolean,
  ): Promise<StreamResponse> {
    const res = await (stream ? this.streams : this.pool).request({
      method: method as Dispatcher.HttpMethod,
      path,
      headers,
      body,
      signal,
      // Keep the connection after a DELETE with DeleteOptions (undici otherwise closes it after
      // a body on a method that does not expect one).
      reset: false,
    });
    return { status: res.statusCode, headers: res.headers, body: res.body };
  }

  close(): void {
    this.pool.destroy().catch(() => undefined);
    this.streams.destroy().catch(() => undefined);
  }
}

class Http2Transport implements Transport {
  private session: http2.ClientHttp2Session | undefined;
  /** Streams open per session. */
  private readonly open = new WeakMap<http2.ClientHttp2Session, number>();

  constructor(
    private readonly url: URL,
    private readonly config: RestConfig,
  ) {}

  private connect(): http2.ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const session = http2.connect(this.url.origin, tlsOptions(this.config));
    const drop = () => {
      if (this.session === session) this.session = undefined;
    };
    session.on("close", drop);
    session.on("goaway", drop);
    session.on("error", drop);
    // Idle sessions must not keep the process alive; open streams do.
    session.unref();
    this.session = session;
    return session;
  }

  send(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: Buffer | undefined,
    signal: AbortSignal | undefined,
  ): Promise<StreamResponse> {
    return new Promise((resolve, reject) => {
      const session = this.connect();
      // Open streams keep the process alive; an idle session does not.
      const open = this.open.get(session) ?? 0;
      this.open.set(session, open + 1);
      if (open === 0) session.ref();
      const req = session.request(
        { ":method": method, ":path": path, ...headers },
        signal ? { signal } : {},
      );
      req.once("close", () => {
        const left = (this.open.get(session) ?? 1) - 1;
        this.open.set(session, left);
        if (left === 0 && !session.destroyed) session.unref();
      });
      req.on("error", reject);
      req.on("response", (h) => {
        const { ":status": status, ...rest } = h;
        resolve({ status: Number(status), headers: rest as StreamResponse["headers"], body: req });
      });
      req.end(body);
    });
  }

  close(): void {
    this.session?.close();
    this.session = undefined;
  }
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

export interface RestClientOptions {
  /**
   * HTTP/1.1 connections kept for requests (watches use their own); 128 by default. client-go
   * sets no such cap (over HTTP/2 it multiplexes as many streams as the server allows); with 64,
   * a scheduler binding under load waited for a free connection more than for the server.
   */
  maxConnections?: number;
}

export class RestClient {
  readonly config: RestConfig;
  private readonly url: URL;
  /** The server URL's path prefix, without the trailing slash ("" for most servers). */
  private readonly prefix: string;
  private readonly transport: Transport;
  private readonly limiter: TokenBucket | undefined;
  private readonly baseHeaders: Record<string, string>;
  private token: { value: string; readAt: number } | undefined;

  constructor(config: RestConfig, opts: RestClientOptions = {}) {
    this.config = config;
    this.url = new URL(config.server);
    this.prefix = this.url.pathname.replace(/\/+$/, "");
    const useHttp2 =
      this.url.protocol === "https:" && (config.http2 ?? false) && !process.env.DISABLE_HTTP2;
    this.transport = useHttp2
      ? new Http2Transport(this.url, config)
      : new Http1Transport(this.url, config, opts.maxConnections ?? 128);
    this.limiter =
      config.qps && config.qps > 0
        ? new TokenBucket(config.qps, Math.max(1, config.burst ?? 1))
        : undefined;
    this.baseHeaders = {
      "user-agent": config.userAgent ?? defaultUserAgent("k8ts", kubernetesVersion.gitVersion),
    };
    if (config.username !== undefined && !config.token && !config.tokenFile)
      this.baseHeaders.authorization = `Basic ${Buffer.from(
        `${config.username}:${config.password ?? ""}`,
      ).toString("base64")}`;
    if (config.token) this.token = { value: config.token, readAt: Date.now() };
  }

  /** The namespace of the configuration's context. */
  get namespace(): string {
    return this.config.namespace;
  }

  private bearer(): string | undefined {
    const file = this.config.tokenFile;
    if (file && (!this.token || Date.now() - this.token.readAt > TOKEN_FILE_TTL_MS)) {
      try {
        this.token = { value: fs.readFileSync(file, "utf8").trim(), readAt: Date.now() };
      } catch (err) {
        // keep the last token read; without one, the request goes unauthenticated
        if (!this.token) throw err;
      }
    }
    return this.token?.value;
  }

  private headers(opts: RequestOptions, hasBody: boolean): Record<string, string> {
    const h: Record<string, string> = {
      ...this.baseHeaders,
      accept: opts.accept ?? "application/json",
    };
    const token = this.bearer();
    if (token) h.authorization = `Bearer ${token}`;
    if (hasBody) h["content-type"] = opts.contentType ?? "application/json";
    if (opts.headers) Object.assign(h, opts.headers);
    return h;
  }

  /** The request path with the server's prefix and the query string. */
  path(p: string, query?: Query): string {
    let out = this.prefix + p;
    if (query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
      const s = q.toString();
      if (s) out += `?${s}`;
    }
    return out;
  }

  private encodeBody(body: unknown): Buffer | undefined {
    if (body === undefined) return undefined;
    if (Buffer.isBuffer(body)) return body;
    return Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
  }

  /** Sends a request and answers the raw response, whatever its status. */
  async raw(method: string, p: string, opts: RequestOptions = {}): Promise<RawResponse> {
    const body = this.encodeBody(opts.body);
    const path = this.path(p, opts.query);
    for (let attempt = 0; ; attempt++) {
      if (this.limiter) await sleep(realClock, this.limiter.reserve(), opts.signal);
      const res = await this.transport.send(
        method,
        path,
        this.headers(opts, body !== undefined),
        body,
        opts.signal,
        false,
      );
      const data = await readAll(res.body);
      const retryAfter = Number(res.headers["retry-after"]);
      if (
        attempt < MAX_RETRIES &&
        (res.status === 429 || (res.status >= 500 && res.status <= 504)) &&
        res.headers["retry-after"] !== undefined &&
        Number.isFinite(retryAfter)
      ) {
        await sleep(realClock, Math.max(retryAfter, 0) * 1000, opts.signal);
        if (opts.signal?.aborted) throw opts.signal.reason;
        continue;
      }
      return { status: res.status, headers: res.headers, body: data };
    }
  }

  /** Sends a request; a 2xx answer's JSON body, or a `StatusError`. */
  async request<T = unknown>(method: string, p: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.raw(method, p, opts);
    if (res.status < 200 || res.status > 299)
      throw statusErrorFromResponse(res.status, res.body, method, p);
    if (res.body.length === 0) return undefined as T;
    const type = String(res.headers["content-type"] ?? "");
    if (type && !type.includes("json")) return res.body.toString() as T;
    return JSON.parse(res.body.toString()) as T;
  }

  /**
   * Opens a watch (`watch=true` is added) and yields its events until the server ends the
   * stream or `signal` aborts. Opening fails with a `StatusError` as any request does; an error
   * the server reports mid-stream arrives as an `ERROR` event carrying a Status.
   */
  async watch<T = unknown>(
    p: string,
    query: Query,
    signal: AbortSignal,
  ): Promise<AsyncIterable<WatchEvent<T>>> {
    const path = this.path(p, { ...query, watch: "true" });
    if (this.limiter) await sleep(realClock, this.limiter.reserve(), signal);
    const res = await this.transport.send(
      "GET",
      path,
      this.headers({}, false),
      undefined,
      signal,
      true,
    );
    if (res.status < 200 || res.status > 299) {
      const data = await readAll(res.body);
      throw statusErrorFromResponse(res.status, data, "GET", p);
    }
    return watchLines<T>(res.body, signal);
  }

  close(): void {
    this.transport.close();
  }
}

async function* watchLines<T>(body: Readable, signal: AbortSignal): AsyncGenerator<WatchEvent<T>> {
  let rest = "";
  const decoder = new StringDecoder("utf8");
  const onAbort = () => body.destroy();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const chunk of body) {
      const text = rest + decoder.write(chunk as Buffer);
      let start = 0;
      for (;;) {
        const nl = text.indexOf("\n", start);
        if (nl < 0) break;
        const line = text.slice(start, nl);
        start = nl + 1;
        if (line.trim()) yield JSON.parse(line) as WatchEvent<T>;
      }
      rest = text.slice(start);
    }
    rest += decoder.end();
    if (rest.trim()) yield JSON.parse(rest) as WatchEvent<T>;
  } catch (err) {
    if (signal.aborted) return;
    throw err;
  } finally {
    signal.removeEventListener("abort", onAbort);
    body.destroy();
  }
}
