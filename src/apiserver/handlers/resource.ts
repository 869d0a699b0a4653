import {
  badRequest,
  conflict,
  invalid,
  invalidValue,
  notSupported,
  methodNotAllowed,
  STALE_OBJECT,
  StatusError,
} from "../../api/status.js";
import {
  parseBody,
  readBody,
  send,
  sendRaw,
  negotiate,
  mediaType,
  type Request,
  type Response,
} from "../http.js";
import type { RequestInfo } from "../request-info.js";
import type { Registry, WatchSink } from "../registry/store.js";
import type { CachedObject } from "../registry/cache.js";
import type { KObject } from "../registry/types.js";
import { applyPatch } from "../patch.js";
import { tableJSONBody, toTable, toPartialObjectMetadata } from "../table.js";
import { sendStreamed } from "../body.js";
import { handleScale } from "./scale.js";
import { CONNECT_SUBRESOURCES, handleConnect } from "./connect.js";
import type { AdmissionHook } from "../admission/chain.js";
import type { Operation } from "../admission/types.js";
import { managerFromUserAgent, serverSideApply } from "../apply/managedfields.js";
import { strictDecodingMessage, typeNameForKind, unknownFields } from "../../api/schema/index.js";

/** Decodes a request body into an object (JSON, YAML, protobuf). */
export type BodyDecoder = (
  body: Buffer,
  contentType: string,
  expected?: { apiVersion: string; kind: string },
) => KObject;

/**
 * The body of a request to a subresource or a request-only resource (a Binding, an Eviction, a
 * review), decoded; refused with upstream's message when it names another kind.
 */
export async function readRequestObject(
  req: Request,
  decode: BodyDecoder,
  expected: { apiVersion: string; kind: string },
): Promise<KObject> {
  const obj = decode(await readBody(req), String(req.headers["content-type"] ?? ""), expected);
  if (obj.kind !== undefined && obj.kind !== expected.kind) {
    throw badRequest(
      `the kind in the data (${obj.kind}) does not match the expected kind (${expected.kind})`,
    );
  }
  return obj;
}

/**
 * fieldValidation: Strict refuses unknown fields with upstream's `strict decoding error`, Warn
 * (the default) answers with a Warning header per unknown field, Ignore does neither.
 */
function checkUnknownFields(
  registry: Registry,
  obj: KObject,
  query: URLSearchParams,
  res: Response,
): void {
  const mode = query.get("fieldValidation") ?? "Warn";
  if (mode !== "Strict" && mode !== "Warn" && mode !== "Ignore") {
    throw badRequest(
      `fieldValidation: Unsupported value: "${mode}": supported values: "Ignore", "Strict", "Warn"`,
    );
  }
  if (mode === "Ignore") return;
  const type = typeNameForKind({
    group: registry.def.group,
    version: registry.def.version,
    kind: registry.def.kind,
  });
  const unknown = type ? unknownFields(type, obj) : [];
  if (unknown.length === 0) return;
  if (mode === "Strict") throw badRequest(strictDecodingMessage(unknown));
  res.setHeader(
    "Warning",
    unknown.map((p) => `299 - ${JSON.stringify(`unknown field "${p}"`)}`),
  );
}

export interface ResourceContext {
  registry: Registry;
  decode: BodyDecoder;
  /** The nodes registry, for the subresources served through a node's kubelet. */
  nodes?: Registry;
  /** Admission of a write of this request's resource (none: nothing to admit). */
  admit?: (req: {
    operation: Operation;
    name: string;
    subresource: string;
    dryRun: boolean;
  }) => AdmissionHook | undefined;
}

const NO_CACHE = { "cache-control": "no-cache, private" };

function boolParam(q: URLSearchParams, name: string): boolean | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  return v === "true" || v === "1";
}

function dryRun(q: URLSearchParams): boolean {
  const values = q.getAll("dryRun");
  for (const v of values) {
    if (v !== "All") throw badRequest(`dryRun: Unsupported value: "${v}": supported values: "All"`);
  }
  return values.length > 0;
}

/** The object a verb answers with, in the form the client asked for. */
function present(req: Request, registry: Registry, obj: KObject): unknown {
  const n = negotiate(req.headers.accept);
  if (n.as === "Table") return toTable(registry, [obj], {});
  if (n.as === "PartialObjectMetadata") return toPartialObjectMetadata(obj);
  return obj;
}

/** Sends admission's warnings as `Warning: 299 - "..."` headers (added to any already set). */
function warn(res: Response, ...hooks: Array<AdmissionHook | undefined>): void {
  const warnings = hooks.flatMap((h) => h?.warnings ?? []);
  if (warnings.length === 0) return;
  const out = res as import("node:http").ServerResponse;
  const prior = out.getHeader("warning");
  const list = prior === undefined ? [] : Array.isArray(prior) ? prior : [String(prior)];
  out.setHeader("warning", [...list, ...warnings.map((w) => `299 - ${JSON.stringify(w)}`)]);
}

/** Admission of an update, and of the create an update may turn into. */
function writeAdmission(
  ctx: ResourceContext,
  name: string,
  subresource: string,
  isDryRun: boolean,
): { admission?: AdmissionHook; createAdmission?: AdmissionHook } {
  if (!ctx.admit) return {};
  return {
    admission: ctx.admit({ operation: "UPDATE", name, subresource, dryRun: isDryRun }),
    createAdmission: ctx.admit({ operation: "CREATE", name, subresource: "", dryRun: isDryRun }),
  };
}

/** Answers with an object in the form the client asked for. */
function respond(
  req: Request,
  res: Response,
  code: number,
  registry: Registry,
  obj: KObject,
): void {
  const n = negotiate(req.headers.accept);
  if (n.format === "json" && !n.as) {
    return sendRaw(req, res, code, "application/json", registry.toJSON(obj), NO_CACHE);
  }
  send(req, res, code, present(req, registry, obj), n.format);
}

/** The field manager of a write: the fieldManager parameter, or one derived from the User-Agent. */
function fieldManager(req: Request, query: URLSearchParams): string {
  return (
    query.get("fieldManager") ??
    managerFromUserAgent(req.headers["user-agent"] as string | undefined)
  );
}

function expectedKind(registry: Registry) {
  return { apiVersion: registry.apiVersion, kind: registry.def.kind };
}

function checkKind(obj: KObject, registry: Registry): void {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    throw badRequest("the body of the request must be a JSON or YAML object");
  }
  if (obj.apiVersion !== undefined && obj.apiVersion !== registry.apiVersion) {
    throw badRequest(
      `the API version in the data (${obj.apiVersion}) does not match the expected API version (${registry.apiVersion})`,
    );
  }
  if (obj.kind !== undefined && obj.kind !== registry.def.kind) {
    throw badRequest(
      `the kind in the data (${obj.kind}) does not match the expected kind (${registry.def.kind})`,
    );
  }
}

export async function handleResource(
  req: Request,
  res: Response,
  info: RequestInfo,
  query: URLSearchParams,
  ctx: ResourceContext,
  signal: AbortSignal,
): Promise<void> {
  const { registry } = ctx;
  const n = negotiate(req.headers.accept);
  const ns = registry.def.namespaced ? info.namespace : "";
  const subresource = info.subresource;
  const offers = (name: string) =>
    registry.def.discovery.subresources?.some((s) => s.name === name);
  if (subresource === "scale" && offers("scale")) {
    return handleScale(req, res, info, registry, ctx.decode);
  }
  if (subresource && CONNECT_SUBRESOURCES.has(subresource) && offers(subresource)) {
    return handleConnect(req, res, registry, ctx.nodes, ns, info.name, subresource, query);
  }
  if (subresource === "finalize" && offers("finalize") && info.verb === "update") {
    // Only spec.finalizers change through /finalize (an ordinary update keeps them); a namespace
    // being deleted goes once none remain.
    const body = ctx.decode(
      await readBody(req),
      String(req.headers["content-type"] ?? ""),
      expectedKind(registry),
    );
    const finalizers = (body.spec as { finalizers?: string[] } | undefined)?.finalizers ?? [];
    const wanted = body.metadata?.resourceVersion;
    let updated = await registry.guaranteedUpdate(ns, info.name, (obj) => {
      if (wanted && wanted !== obj.metadata!.resourceVersion) {
        throw conflict(registry.gr, info.name, STALE_OBJECT);
      }
      obj.spec = { ...(obj.spec as object), finalizers };
    });
    if (
      updated.metadata?.deletionTimestamp &&
      finalizers.length === 0 &&
      !updated.metadata.finalizers?.length
    ) {
      updated = (await registry.delete(ns, info.name)).object;
    }
    return respond(req, res, 200, registry, updated);
  }
  const writable =
    (subresource === "status" && offers("status")) ||
    (subresource === "approval" && offers("approval") && info.verb !== "delete");
  if (subresource && !writable) {
    throw new StatusError(
      404,
      "NotFound",
      `the server could not find the requested resource (${info.verb} ${registry.def.resource} ${info.name}/${subresource})`,
    );
  }
  switch (info.verb) {
    case "get": {
      const stored = await registry.getStored(ns, info.name);
      if (n.format === "json" && !n.as) {
        return sendRaw(req, res, 200, "application/json", stored.json(), NO_CACHE);
      }
      return respond(req, res, 200, registry, stored.object());
    }
    case "list": {
      const limit = query.get("limit");
      const list = await registry.listObjects(ns, {
        labelSelector: query.get("labelSelector") ?? undefined,
        fieldSelector: query.get("fieldSelector") ?? undefined,
        limit: limit ? Number(limit) : undefined,
        continue: query.get("continue") ?? undefined,
        resourceVersion: query.get("resourceVersion") ?? undefined,
        resourceVersionMatch: query.get("resourceVersionMatch") ?? undefined,
      });
      const metadata: Record<string, unknown> = { resourceVersion: list.resourceVersion };
      if (list.continue) metadata.continue = list.continue;
      if (list.remainingItemCount !== undefined)
        metadata.remainingItemCount = list.remainingItemCount;
      if (n.as === "Table") {
        if (n.format === "json") {
          const table = tableJSONBody(registry, list.items, metadata);
          return sendStreamed(req, res, 200, "application/json", table, NO_CACHE);
        }
        const items = list.items.map((o) => o.view());
        return send(req, res, 200, toTable(registry, items, metadata), n.format);
      }
      if (n.as === "PartialObjectMetadataList" || n.as === "PartialObjectMetadata") {
        return send(
          req,
          res,
          200,
          {
            kind: "PartialObjectMetadataList",
            apiVersion: "meta.k8s.io/v1",
            metadata,
            items: list.items.map((o) => toPartialObjectMetadata(o.object())),
          },
          n.format,
        );
      }
      const head = { kind: registry.def.listKind, apiVersion: registry.apiVersion, metadata };
      if (n.format === "yaml") {
        return send(req, res, 200, { ...head, items: list.items.map((o) => o.object()) }, "yaml");
      }
      // The items as they are encoded in the cache, between the list's own fields.
      const items = list.items;
      return sendStreamed(
        req,
        res,
        200,
        "application/json",
        {
          head: JSON.stringify(head).slice(0, -1) + ',"items":[',
          count: items.length,
          item: (w, i) => {
            if (i > 0) w.text(",");
            items[i]!.writeJSON(w);
          },
          tail: "]}",
        },
        NO_CACHE,
      );
    }
    case "watch":
      return watch(req, res, ns, query, registry, signal);
    case "create": {
      if (info.name && !subresource)
        throw methodNotAllowed(`the server does not allow this method on the requested resource`);
      const obj = ctx.decode(
        await readBody(req),
        String(req.headers["content-type"] ?? ""),
        expectedKind(registry),
      );
      checkKind(obj, registry);
      checkUnknownFields(registry, obj, query, res);
      const isDryRun = dryRun(query);
      const admission = ctx.admit?.({
        operation: "CREATE",
        name: obj.metadata?.name ?? "",
        subresource: "",
        dryRun: isDryRun,
      });
      const created = await registry.create(ns, obj, {
        dryRun: isDryRun,
        manager: fieldManager(req, query),
        admission,
      });
      warn(res, admission);
      return respond(req, res, 201, registry, created);
    }
    case "update": {
      const obj = ctx.decode(
        await readBody(req),
        String(req.headers["content-type"] ?? ""),
        expectedKind(registry),
      );
      checkKind(obj, registry);
      checkUnknownFields(registry, obj, query, res);
      const isDryRun = dryRun(query);
      const admission = writeAdmission(ctx, info.name, subresource, isDryRun);
      const r = await registry.update(ns, info.name, obj, {
        dryRun: isDryRun,
        subresource,
        manager: fieldManager(req, query),
        ...admission,
      });
      warn(res, admission.admission, admission.createAdmission);
      return respond(req, res, r.created ? 201 : 200, registry, r.object);
    }
    case "patch": {
      const body = await readBody(req);
      const type = mediaType(String(req.headers["content-type"] ?? ""));
      const isDryRun = dryRun(query);
      if (type === "application/apply-patch+yaml") {
        return apply(req, res, ns, info.name, body, query, ctx, isDryRun, subresource);
      }
      for (let attempt = 0; ; attempt++) {
        const current = await registry.get(ns, info.name);
        const patched = applyPatch(registry, current, body, type);
        // The patch applies to what was read: update only if that is still current.
        patched.metadata ??= {};
        patched.metadata.resourceVersion ??= current.metadata!.resourceVersion;
        try {
          const admission = writeAdmission(ctx, info.name, subresource, isDryRun);
          const r = await registry.update(ns, info.name, patched, {
            dryRun: isDryRun,
            subresource,
            manager: fieldManager(req, query),
            ...admission,
          });
          warn(res, admission.admission, admission.createAdmission);
          return respond(req, res, 200, registry, r.object);
        } catch (err) {
          // Upstream retries a patch on a concurrent change for as long as it takes.
          const retry = err instanceof StatusError && err.reason === "Conflict" && attempt < 100;
          // A conflict from a resourceVersion inside the patch itself is the client's to resolve.
          if (!retry || patched.metadata.resourceVersion !== current.metadata!.resourceVersion)
            throw err;
        }
      }
    }
    case "delete": {
      const raw = await readBody(req);
      const options =
        raw.length > 0
          ? (parseBody(raw, String(req.headers["content-type"] ?? "application/json")) as Record<
              string,
              unknown
            >)
          : {};
      const isDryRun =
        dryRun(query) || (Array.isArray(options.dryRun) && options.dryRun.includes("All"));
      const r = await registry.delete(ns, info.name, {
        admission: ctx.admit?.({
          operation: "DELETE",
          name: info.name,
          subresource: "",
          dryRun: isDryRun,
        }),
        dryRun: isDryRun,
        preconditions: options.preconditions as
          { uid?: string; resourceVersion?: string } | undefined,
        gracePeriodSeconds: gracePeriod(options, query),
        propagationPolicy: propagationPolicy(options, query),
      });
      return respond(req, res, 200, registry, r.object);
    }
    case "deletecollection": {
      const list = await registry.list(ns, {
        labelSelector: query.get("labelSelector") ?? undefined,
        fieldSelector: query.get("fieldSelector") ?? undefined,
      });
      const deleted: KObject[] = [];
      for (const item of list.items) {
        try {
          deleted.push(
            (
              await registry.delete(item.metadata!.namespace ?? "", item.metadata!.name!, {
                admission: ctx.admit?.({
                  operation: "DELETE",
                  name: item.metadata!.name!,
                  subresource: "",
                  dryRun: dryRun(query),
                }),
                dryRun: dryRun(query),
                propagationPolicy: propagationPolicy({}, query),
              })
            ).object,
          );
        } catch (err) {
          if (!(err instanceof StatusError && err.reason === "NotFound")) throw err;
        }
      }
      return send(
        req,
        res,
        200,
        {
          kind: registry.def.listKind,
          apiVersion: registry.apiVersion,
          metadata: { resourceVersion: list.resourceVersion },
          items: deleted,
        },
        n.format,
      );
    }
    default:
      throw methodNotAllowed(`the server does not allow this method on the requested resource`);
  }
}

/** DeleteOptions.gracePeriodSeconds, from the body or the query. */
/** DeleteOptions.propagationPolicy (or the deprecated orphanDependents), from the body or query. */
function propagationPolicy(
  options: Record<string, unknown>,
  query: URLSearchParams,
): "Orphan" | "Foreground" | "Background" | undefined {
  const policy =
    (options.propagationPolicy as string | undefined) ?? query.get("propagationPolicy");
  const orphan = options.orphanDependents ?? query.get("orphanDependents");
  if (policy !== undefined && policy !== null && orphan !== undefined && orphan !== null) {
    throw invalid({ group: "meta.k8s.io", kind: "DeleteOptions" }, "", [
      invalidValue(
        "propagationPolicy",
        policy,
        "orphanDependents and deletionPropagation cannot be both set",
      ),
    ]);
  }
  if (policy === undefined || policy === null) {
    if (orphan === true || orphan === "true") return "Orphan";
    if (orphan === false || orphan === "false") return "Background";
    return undefined;
  }
  if (policy !== "Orphan" && policy !== "Foreground" && policy !== "Background") {
    throw invalid({ group: "meta.k8s.io", kind: "DeleteOptions" }, "", [
      notSupported("propagationPolicy", policy, ["Foreground", "Background", "Orphan", "nil"]),
    ]);
  }
  return policy;
}

function gracePeriod(options: Record<string, unknown>, query: URLSearchParams): number | undefined {
  const v = options.gracePeriodSeconds ?? query.get("gracePeriodSeconds");
  if (v === undefined || v === null || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw badRequest(`invalid gracePeriodSeconds: ${String(v)}`);
  return Math.max(0, n);
}

/**
 * Server-side apply (PATCH with application/apply-patch+yaml): the configuration merged into the
 * live object with the manager's ownership and conflicts; creates the object when it is absent.
 */
async function apply(
  req: Request,
  res: Response,
  ns: string,
  name: string,
  body: Buffer,
  query: URLSearchParams,
  rctx: ResourceContext,
  isDryRun: boolean,
  subresource: string,
): Promise<void> {
  const registry = rctx.registry;
  const config = parseBody(body, "application/apply-patch+yaml") as KObject;
  const force = query.get("force") === "true";
  const manager = query.get("fieldManager") ?? "";
  for (let attempt = 0; ; attempt++) {
    let live: KObject | undefined;
    try {
      live = await registry.get(ns, name);
    } catch (err) {
      if (!(err instanceof StatusError && err.reason === "NotFound")) throw err;
    }
    const ctx = { ...registry.managed(manager, subresource || undefined), force };
    const merged = serverSideApply(live, config, ctx);
    merged.metadata ??= {};
    if (!live) {
      merged.metadata.name ??= name;
      const created = await registry.create(ns, merged, {
        dryRun: isDryRun,
        admission: rctx.admit?.({ operation: "CREATE", name, subresource: "", dryRun: isDryRun }),
      });
      return respond(req, res, 201, registry, created);
    }
    merged.metadata.resourceVersion = live.metadata!.resourceVersion;
    try {
      const r = await registry.update(ns, name, merged, {
        dryRun: isDryRun,
        subresource,
        ...writeAdmission(rctx, name, subresource, isDryRun),
      });
      return respond(req, res, 200, registry, r.object);
    } catch (err) {
      const ownership =
        err instanceof StatusError &&
        err.details?.causes?.some((c) => c.reason === "FieldManagerConflict");
      if (!(err instanceof StatusError && err.reason === "Conflict" && !ownership && attempt < 5))
        throw err;
    }
  }
}

/** Upstream's default watch length when the client sets none: a random time in [30m, 60m). */
function defaultWatchTimeoutMs(): number {
  return (1800 + Math.floor(Math.random() * 1800)) * 1000;
}

/** A watch stream that writes more than this without the client reading is ended (a slow client). */
const MAX_WATCH_BACKLOG_BYTES = 64 * 1024 * 1024;

async function watch(
  req: Request,
  res: Response,
  ns: string,
  query: URLSearchParams,
  registry: Registry,
  signal: AbortSignal,
): Promise<void> {
  const n = negotiate(req.headers.accept);
  const out = res as import("node:http").ServerResponse;
  const timeoutSeconds = query.get("timeoutSeconds");
  const controller = new AbortController();
  let finished!: () => void;
  const done = new Promise<void>((resolve) => (finished = resolve));
  let started = false;
  let ended = false;
  const start = () => {
    if (started) return;
    started = true;
    out.writeHead(200, {
      "content-type": n.format === "yaml" ? "application/yaml" : "application/json",
      "cache-control": "no-cache, private",
    });
  };
  const stop = () => {
    if (ended) return;
    ended = true;
    controller.abort();
    finished();
  };
  let columnsSent = false;
  const encode = (type: string, object: CachedObject): Buffer => {
    if (n.as === "Table") {
      // Like upstream, only the first event's Table carries the column definitions.
      const table = toTable(registry, [object.object()], {}, columnsSent);
      columnsSent = true;
      return Buffer.from(JSON.stringify({ type, object: table }) + "\n");
    }
    if (n.as === "PartialObjectMetadata" || n.as === "PartialObjectMetadataList") {
      const meta = toPartialObjectMetadata(object.object());
      return Buffer.from(JSON.stringify({ type, object: meta }) + "\n");
    }
    return object.eventLine(type);
  };
  const write = (chunk: Buffer) => {
    if (ended) return;
    start();
    out.write(chunk);
    if (out.writableLength > MAX_WATCH_BACKLOG_BYTES) stop();
  };
  const sink: WatchSink = {
    events(batch) {
      if (ended) return;
      if (batch.length === 1) return write(encode(batch[0]!.type, batch[0]!.object));
      // One write per event (no copying into one buffer), sent together.
      out.cork();
      for (const e of batch) write(encode(e.type, e.object));
      out.uncork();
    },
    bookmark(revision, initialEventsEnd) {
      const object = registry.bookmark(String(revision), initialEventsEnd);
      write(Buffer.from(JSON.stringify({ type: "BOOKMARK", object }) + "\n"));
    },
    error(status) {
      write(Buffer.from(JSON.stringify({ type: "ERROR", object: status }) + "\n"));
      stop();
    },
    end: stop,
  };
  signal.addEventListener("abort", stop);
  req.on("close", stop);
  const timer = setTimeout(
    stop,
    timeoutSeconds ? Number(timeoutSeconds) * 1000 : defaultWatchTimeoutMs(),
  );
  try {
    // Errors before the stream starts (a bad selector, a resourceVersion too large) are HTTP
    // errors; after that they are ERROR events.
    await registry.watch(
      ns,
      {
        labelSelector: query.get("labelSelector") ?? undefined,
        fieldSelector: query.get("fieldSelector") ?? undefined,
        resourceVersion: query.get("resourceVersion") ?? undefined,
        resourceVersionMatch: query.get("resourceVersionMatch") ?? undefined,
        sendInitialEvents: boolParam(query, "sendInitialEvents"),
        allowWatchBookmarks: boolParam(query, "allowWatchBookmarks"),
      },
      sink,
      controller.signal,
    );
    if (!ended) {
      start();
      // Clients wait for the response headers before they count the watch as started.
      out.flushHeaders();
    }
    await done;
  } catch (err) {
    stop();
    if (!started) throw err;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", stop);
    req.off("close", stop);
    if (started) out.end();
  }
}
