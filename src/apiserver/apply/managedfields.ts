/**
 * `metadata.managedFields`: which manager owns which fields, kept on every write, and server-side
 * apply. This follows upstream's field manager (k8s.io/apimachinery managedfields), layer by layer:
 *
 * - entries are keyed by (manager, operation, apiVersion for updates, subresource); an applier's
 *   entry keeps its identity across versions;
 * - create/update/patch (trackUpdate): the writer gets `operation: Update` ownership of every field
 *   the write added or changed (for a create: everything set, defaults included), and those fields
 *   and every removed field leave all other managers (appliers too); an entry left empty goes;
 *   the entry's `time` moves only when the writer took fields;
 * - request managedFields: absent, or not decodable, carries over the stored ones; `[]` or `[{}]`
 *   resets them; anything else is taken as sent; a subresource write always keeps the stored ones;
 * - an update of an object with no managedFields leaves it untracked (upstream starts tracking on
 *   create or on the first apply only);
 * - apply (serverSideApply): see apply.ts; before the first apply to an object without
 *   managedFields, a `before-first-apply` Update entry takes ownership of all it holds; the
 *   `kubectl` manager may take over fields still as kubectl's client-side apply left them (the
 *   last-applied annotation), and keeps that annotation in step with what it applies;
 * - apiVersion, kind, metadata (itself), name, namespace, uid, resourceVersion, generation,
 *   creationTimestamp, selfLink, managedFields are never owned; `status` is not owned through the
 *   main resource nor `spec` through `status`, for kinds that have them (upstream's reset fields);
 * - at most 10 Update entries: the oldest are folded into `ancient-changes` per apiVersion;
 * - entries are sorted by operation (Apply first), time (seconds), manager, apiVersion,
 *   subresource.
 */
import type { ManagedFieldsEntry } from "kubernetes-types/meta/v1.js";
import { badRequest, invalid, required, StatusError } from "../../api/status.js";
import type { KObject, ServerObjectMeta } from "../registry/types.js";
import { formatTime } from "../../api/time.js";
import {
  applyConfiguration,
  ApplyConflicts,
  conflictError,
  validateConfiguration,
  validationMessage,
  type ApplyResult,
  type ManagedSets,
  type VersionedSet,
} from "./apply.js";
import {
  compare,
  createdFieldsV1JSON,
  deepEqual,
  FieldSet,
  fieldPath,
  goJson,
  goQuote,
  isObject,
  setOf,
  shapeOf,
  toFieldSet,
  type Shape,
} from "./fieldset.js";

export interface ManagedContext {
  /** OpenAPI name of the stored type, e.g. io.k8s.api.apps.v1.Deployment. */
  typeName: string;
  /** The request's group version, e.g. apps/v1. */
  apiVersion: string;
  /** The field manager ("" is recorded as `unknown` for updates and refused for apply). */
  manager: string;
  /** The subresource written, e.g. status; undefined for the main resource. */
  subresource?: string;
  now?: Date;
}

export const LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration";

/** Manager name of the entry that takes over an object's fields before its first apply. */
export const BEFORE_FIRST_APPLY = "before-first-apply";

const MAX_UPDATE_MANAGERS = 10;
const ANCIENT_CHANGES = "ancient-changes";
const FIELD_MANAGER_MAX_LENGTH = 128;
const TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024;

/** Fields no manager owns. */
const STRIPPED = setOf(
  fieldPath("apiVersion"),
  fieldPath("kind"),
  fieldPath("metadata"),
  fieldPath("metadata", "name"),
  fieldPath("metadata", "namespace"),
  fieldPath("metadata", "creationTimestamp"),
  fieldPath("metadata", "selfLink"),
  fieldPath("metadata", "uid"),
  fieldPath("metadata", "clusterName"),
  fieldPath("metadata", "generation"),
  fieldPath("metadata", "managedFields"),
  fieldPath("metadata", "resourceVersion"),
);

const NOTHING = new FieldSet();

// ---------------------------------------------------------------------------------------------
// Exported API

/**
 * After a create, update or non-apply patch: returns `next` (a shallow copy: top level and
 * metadata) with metadata.managedFields updated for `ctx.manager`. `old` is the stored object
 * (undefined for a create). Call it with `next` as it will be stored (defaults applied; status
 * and other fields the strategy resets already reset), as upstream tracks the decoded, defaulted
 * object. For a scale write, pass the parent objects, the parent's apiVersion and subresource
 * `scale`. Linear in the size of the objects; subtrees `old` and `next` share by reference are
 * skipped. Entries the write does not touch keep their fieldsV1 objects (shared with `old`).
 */
export function trackUpdate(old: KObject | undefined, next: KObject, ctx: ManagedContext): KObject {
  const shape = shapeOf(ctx.typeName);
  const subresource = ctx.subresource !== undefined && ctx.subresource !== "";
  const managed = managedForUpdate(old, next, subresource);
  if (managed.fields.size === 0 && old !== undefined) return withManagedFields(next, undefined);
  if (managed.fields.size === 0 && !subresource) return trackCreate(shape, next, ctx);
  const id = identity({
    manager: ctx.manager || "unknown",
    operation: "Update",
    apiVersion: ctx.apiVersion,
    subresource: ctx.subresource,
  });
  const updated = updateManaged(shape, old, next, managed, id, ctx, ctx.now ?? new Date());
  return withManagedFields(next, encodeManaged(updated));
}

/**
 * Server-side apply: `live` (undefined when the object does not exist yet) merged with the apply
 * configuration `config`, with metadata.managedFields updated. The result is a new object (it
 * shares nothing with `live` or `config`); when the apply changes nothing it is a copy of `live`.
 * Like any update, it still has to go through the registry's update (or create) path: defaults,
 * the strategy's resets (status through the main resource), carried-over server metadata (a
 * configuration may set `creationTimestamp: null`, uid, resourceVersion...), validation.
 * Throws StatusErrors as upstream: 422 when `ctx.manager` is empty (PatchOptions), 400 for a
 * configuration of another kind or version or with metadata.managedFields, 500 for one that does
 * not fit the schema, 409 Conflict (upstream's message and FieldManagerConflict causes) when it
 * changes fields other managers own, unless `force`.
 */
export function serverSideApply(
  live: KObject | undefined,
  config: KObject,
  ctx: ManagedContext & { force: boolean },
): KObject {
  if (!ctx.manager) {
    throw invalid({ group: "meta.k8s.io", kind: "PatchOptions" }, "", [
      required("fieldManager", "is required for apply patch"),
    ]);
  }
  const kind = ctx.typeName.slice(ctx.typeName.lastIndexOf(".") + 1);
  if (config.apiVersion !== ctx.apiVersion || config.kind !== kind) {
    throw badRequest(`invalid object type: ${gvkString(config)}`);
  }
  const shape = shapeOf(ctx.typeName);
  const now = ctx.now ?? new Date();
  let liveManaged: Managed;
  try {
    liveManaged = decodeManaged(live?.metadata?.managedFields, true);
  } catch (e) {
    throw new StatusError(500, "", `failed to decode managed fields: ${(e as Error).message}`);
  }
  if (config.metadata?.managedFields !== undefined && config.metadata.managedFields !== null) {
    throw badRequest("metadata.managedFields must be nil");
  }
  const errors = validateConfiguration(shape, config);
  if (errors.length > 0) {
    const ns = config.metadata?.namespace ?? "";
    const name = config.metadata?.name ?? "";
    throw new StatusError(
      500,
      "",
      `failed to create typed patch object (${ns}/${name}; ${gvkString(config)}): ${validationMessage(errors)}`,
    );
  }

  const run = (force: boolean): { object: KObject; managed: Managed } =>
    applyOnce(shape, live, config, liveManaged, ctx, force, now);
  let result: { object: KObject; managed: Managed } | undefined;
  try {
    result = run(ctx.force);
  } catch (e) {
    if (!(e instanceof ApplyConflicts)) throw e;
    let conflicts = e.conflicts;
    if (ctx.manager === "kubectl") {
      // Fields kubectl's client-side apply set, still as it set them, are kubectl's to take.
      const allowed = allowedFromLastApplied(shape, live, ctx.apiVersion);
      if (allowed) {
        const rest = conflicts.filter((c) => !allowed.has(c.path));
        if (rest.length === 0) result = run(true);
        else conflicts = rest;
      }
    }
    if (!result) throw conflictError(conflicts, describeManager);
  }

  const object = result.object;
  if (ctx.manager === "kubectl" && lastApplied(object)) {
    setLastApplied(object, buildLastApplied(config));
  }
  const entries = encodeManaged(result.managed);
  const metadata = { ...(object.metadata ?? {}) } as ServerObjectMeta;
  if (entries) metadata.managedFields = entries;
  else delete metadata.managedFields;
  object.metadata = metadata;
  return object;
}

/**
 * The field manager upstream derives from a User-Agent when the request names none: what comes
 * before the first `/`, printable characters only, at most 128 bytes (`kubectl/v1.32.4 (linux/
 * amd64) kubernetes/4cb5f07` → `kubectl`). "" when there is none (trackUpdate then records
 * `unknown`).
 */
export function managerFromUserAgent(userAgent: string | undefined): string {
  if (!userAgent) return "";
  // Clients send the same few User-Agents on every request.
  const known = managerOfUserAgent.get(userAgent);
  if (known !== undefined) return known;
  const manager = managerFromPrefix(userAgent);
  if (managerOfUserAgent.size >= 256) managerOfUserAgent.clear();
  managerOfUserAgent.set(userAgent, manager);
  return manager;
}

const managerOfUserAgent = new Map<string, string>();

function managerFromPrefix(userAgent: string): string {
  const prefix = userAgent.split("/")[0] ?? "";
  let out = "";
  let bytes = 0;
  for (const ch of prefix) {
    if (!PRINTABLE.test(ch)) continue;
    const n = Buffer.byteLength(ch);
    if (bytes + n > FIELD_MANAGER_MAX_LENGTH) break;
    out += ch;
    bytes += n;
  }
  return out;
}

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

// ---------------------------------------------------------------------------------------------
// Managers and entries

interface Managed {
  readonly fields: ManagedSets;
  /** Identity → RFC 3339 time of the entry's last change. */
  readonly times: ReadonlyMap<string, string>;
}

interface Identity {
  manager: string;
  operation: "Apply" | "Update";
  /** Only for Update entries: an applier is one manager whatever version it applies. */
  apiVersion?: string | undefined;
  subresource?: string | undefined;
}

/** Upstream's manager identifier: the entry without fields and time, as Go marshals it. */
function identity(id: Identity): string {
  const parts: string[] = [];
  if (id.manager) parts.push(`"manager":${goJson(id.manager)}`);
  parts.push(`"operation":${goJson(id.operation)}`);
  if (id.apiVersion && id.operation === "Update")
    parts.push(`"apiVersion":${goJson(id.apiVersion)}`);
  if (id.subresource) parts.push(`"subresource":${goJson(id.subresource)}`);
  return `{${parts.join(",")}}`;
}

function parseIdentity(id: string): Identity {
  return JSON.parse(id) as Identity;
}

/** A manager as upstream names it in conflicts: `"kubectl" using apps/v1` for updaters. */
function describeManager(id: string): string {
  let e: Identity;
  try {
    e = parseIdentity(id);
  } catch {
    return goQuote(id);
  }
  let s = goQuote(e.manager ?? "");
  if (e.subresource) s += ` with subresource ${goQuote(e.subresource)}`;
  if (e.operation === "Update") s += ` using ${e.apiVersion ?? ""}`;
  return s;
}

/**
 * An entry's field set as read from its FieldsV1, decoded on first use. An entry no write touches
 * is never decoded and is written back as it was read.
 */
class StoredSet implements VersionedSet {
  private decoded: FieldSet | undefined;

  constructor(
    /** The entry's FieldsV1 (JSON object, or its text). */
    readonly raw: unknown,
    readonly apiVersion: string,
    readonly applied: boolean,
    /** Whether `raw` is an object in canonical form (written by this module). */
    readonly canonical: boolean,
  ) {}

  get set(): FieldSet {
    if (!this.decoded) {
      try {
        this.decoded = FieldSet.fromFieldsV1(this.raw);
      } catch {
        this.decoded = new FieldSet();
      }
    }
    return this.decoded;
  }

  get isDecoded(): boolean {
    return this.decoded !== undefined;
  }
}

/**
 * Reads entries. Throws on entries upstream cannot decode. `stored`: entries this module wrote
 * (their field sets are decoded lazily and written back as they were when untouched).
 */
function decodeManaged(entries: unknown, stored = false): Managed {
  const fields: ManagedSets = new Map();
  const times = new Map<string, string>();
  if (entries === undefined || entries === null) return { fields, times };
  if (!Array.isArray(entries)) throw new Error("managedFields must be a list");
  entries.forEach((e: unknown, i) => {
    if (!isObject(e)) throw new Error(`invalid managed fields entry ${i}`);
    const op = e.operation;
    if (op !== "Apply" && op !== "Update") throw new Error("operation must be `Apply` or `Update`");
    const apiVersion = e.apiVersion;
    if (typeof apiVersion !== "string" || apiVersion === "") {
      throw new Error("apiVersion must not be empty");
    }
    if (e.fieldsType !== "FieldsV1") {
      throw new Error(
        e.fieldsType
          ? `invalid fieldsType ${JSON.stringify(e.fieldsType)} in managed fields entry ${i}`
          : `missing fieldsType in managed fields entry ${i}`,
      );
    }
    const id = identity({
      manager: typeof e.manager === "string" ? e.manager : "",
      operation: op,
      apiVersion,
      subresource: typeof e.subresource === "string" ? e.subresource : undefined,
    });
    const raw = e.fieldsV1;
    const vs = new StoredSet(raw, apiVersion, op === "Apply", stored && isObject(raw));
    // Throws on malformed FieldsV1 (none at all is an empty set).
    if (!vs.canonical) FieldSet.fromFieldsV1(raw);
    fields.set(id, vs);
    if (typeof e.time === "string" && e.time) times.set(id, normalizeTime(e.time));
    else times.delete(id);
  });
  return { fields, times };
}

function decodeOrEmpty(entries: unknown): Managed {
  try {
    return decodeManaged(entries, true);
  } catch {
    return { fields: new Map(), times: new Map() };
  }
}

/** `[]` or `[{}]`: the client clears managedFields. */
function isReset(entries: unknown): boolean {
  if (!Array.isArray(entries)) return false;
  if (entries.length === 0) return true;
  if (entries.length !== 1) return false;
  const e: unknown = entries[0];
  return isObject(e) && Object.values(e).every((v) => v === undefined || v === null || v === "");
}

/** The managed fields an update starts from (upstream's decodeLiveOrNew). */
function managedForUpdate(old: KObject | undefined, next: KObject, subresource: boolean): Managed {
  const stored = old?.metadata?.managedFields;
  if (subresource) return decodeOrEmpty(stored);
  const sent = next.metadata?.managedFields;
  if (isReset(sent)) return { fields: new Map(), times: new Map() };
  // Most writes carry the stored entries over unchanged (patches, read-modify-write clients).
  if (sent === stored || (Array.isArray(sent) && deepEqual(sent, stored))) {
    return decodeOrEmpty(stored);
  }
  try {
    const m = decodeManaged(sent);
    if (m.fields.size > 0) return m;
  } catch {
    // Not decodable: keep what is stored.
  }
  return decodeOrEmpty(stored);
}

/**
 * The common create (no managedFields sent, main resource): the writer owns everything it set,
 * computed in one walk (createdFieldsV1JSON) instead of through the general update chain, which
 * gives the same entry. The entry's fieldsV1 is kept as JSON text (see managedFieldsJSON) and
 * becomes an object only when something reads it.
 */
function trackCreate(shape: Shape, next: KObject, ctx: ManagedContext): KObject {
  const json = createdFieldsOf(shape, next, ctx.typeName);
  if (json === "") return withManagedFields(next, undefined);
  const entry: ManagedFieldsEntry = {};
  entry.manager = ctx.manager || "unknown";
  entry.operation = "Update";
  entry.apiVersion = ctx.apiVersion;
  entry.time = ctx.now ? formatTime(ctx.now) : formatTime();
  entry.fieldsType = "FieldsV1";
  let parsed: unknown;
  Object.defineProperty(entry, "fieldsV1", {
    enumerable: true,
    configurable: true,
    get: () => (parsed ??= JSON.parse(json)),
    set: (v: unknown) => {
      Object.defineProperty(entry, "fieldsV1", {
        value: v,
        enumerable: true,
        configurable: true,
        writable: true,
      });
      rawFieldsV1.delete(entry);
    },
  });
  rawFieldsV1.set(entry, json);
  return withManagedFields(next, [entry]);
}

/**
 * The FieldsV1 text of what a create of `obj` sets. For objects whose name the server generates
 * it is remembered for the last ones seen: those come from templates (a ReplicaSet's pods are
 * alike but for the name generated afterwards), and the answer depends only on the object's
 * content. Objects named by their creator are mostly unlike each other and not worth the key.
 */
function createdFieldsOf(shape: Shape, obj: KObject, typeName: string): string {
  const skip = shape.k === "struct" && shape.type.jsonFields.has("status") ? STATUS : NONE;
  const meta = obj.metadata as { name?: string; generateName?: string } | undefined;
  if (!meta?.generateName || meta.name) return createdFieldsV1JSON(shape, obj, skip, STRIPPED);
  const key = typeName + "\n" + JSON.stringify(obj);
  let json = createdFieldsCache.get(key);
  if (json === undefined) {
    json = createdFieldsV1JSON(shape, obj, skip, STRIPPED);
    if (createdFieldsCache.size >= CREATED_FIELDS_CACHE_SIZE) {
      createdFieldsCache.delete(createdFieldsCache.keys().next().value!);
    }
    createdFieldsCache.set(key, json);
  }
  return json;
}

const CREATED_FIELDS_CACHE_SIZE = 64;
const createdFieldsCache = new Map<string, string>();

/** The FieldsV1 text of entries whose fieldsV1 is still only text. */
const rawFieldsV1 = new WeakMap<ManagedFieldsEntry, string>();

/**
 * The JSON of a managedFields list, when it can be written without reading the entries'
 * fieldsV1 (entries made by a create here); undefined otherwise (JSON.stringify it).
 */
export function managedFieldsJSON(entries: unknown): string | undefined {
  if (!Array.isArray(entries) || entries.length !== 1) return undefined;
  const e = entries[0] as ManagedFieldsEntry;
  const raw = rawFieldsV1.get(e);
  if (raw === undefined || Object.keys(e).length !== 6) return undefined;
  const head = JSON.stringify({
    manager: e.manager,
    operation: e.operation,
    apiVersion: e.apiVersion,
    time: e.time,
    fieldsType: e.fieldsType,
  });
  return `[${head.slice(0, -1)},"fieldsV1":${raw}}]`;
}

const STATUS: ReadonlySet<string> = new Set(["status"]);
const NONE: ReadonlySet<string> = new Set();

/** Entries in upstream's order, or undefined when no manager owns anything. */
function encodeManaged(managed: Managed): ManagedFieldsEntry[] | undefined {
  if (managed.fields.size === 0) return undefined;
  const out: ManagedFieldsEntry[] = [];
  for (const [id, vs] of managed.fields) {
    const ident = parseIdentity(id);
    const entry: ManagedFieldsEntry = {};
    if (ident.manager) entry.manager = ident.manager;
    entry.operation = vs.applied ? "Apply" : ident.operation;
    entry.apiVersion = vs.apiVersion;
    const time = managed.times.get(id);
    if (time) entry.time = time;
    entry.fieldsType = "FieldsV1";
    entry.fieldsV1 = (
      vs instanceof StoredSet && vs.canonical ? vs.raw : vs.set.toFieldsV1()
    ) as ManagedFieldsEntry["fieldsV1"];
    if (ident.subresource) entry.subresource = ident.subresource;
    out.push(entry);
  }
  return out.sort(compareEntries);
}

function compareEntries(p: ManagedFieldsEntry, q: ManagedFieldsEntry): number {
  return (
    cmp(p.operation ?? "", q.operation ?? "") ||
    seconds(p.time) - seconds(q.time) ||
    cmp(p.manager ?? "", q.manager ?? "") ||
    cmp(p.apiVersion ?? "", q.apiVersion ?? "") ||
    cmp(p.subresource ?? "", q.subresource ?? "")
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function seconds(t: string | undefined): number {
  if (!t) return 0;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? 0 : Math.floor(ms / 1000);
}

/** RFC 3339 in UTC, whole seconds (metav1.Time). */

function normalizeTime(t: string): string {
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? t : formatTime(new Date(ms));
}

function withManagedFields(obj: KObject, entries: ManagedFieldsEntry[] | undefined): KObject {
  const metadata = { ...(obj.metadata ?? {}) } as ServerObjectMeta;
  if (entries) metadata.managedFields = entries;
  else delete metadata.managedFields;
  return { ...obj, metadata };
}

/**
 * Fields no manager gains or loses through this endpoint (upstream's reset fields, which each
 * kind's strategy lists; approximated as `status` through the main resource and `spec` through
 * `status`).
 */
function ignoredFields(shape: Shape, subresource: string | undefined): FieldSet {
  const top = ignoredTopField(shape, subresource);
  return top ? setOf(fieldPath(top)) : NOTHING;
}

/** The top-level field a write through `subresource` does not own: status, or spec for /status. */
function ignoredTopField(shape: Shape, subresource: string | undefined): string | undefined {
  if (shape.k !== "struct") return undefined;
  const has = (f: string): boolean => shape.type.jsonFields.has(f);
  if (!subresource) return has("status") ? "status" : undefined;
  if (subresource === "status") return has("spec") ? "spec" : undefined;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Update

/** Ownership after `old` became `next` by `id`'s write (upstream's Update chain). */
function updateManaged(
  shape: Shape,
  old: KObject | undefined,
  next: KObject,
  managed: Managed,
  id: string,
  ctx: ManagedContext,
  now: Date,
): Managed {
  const ignore = ignoredFields(shape, ctx.subresource);
  // The ignored subtree (status through the main resource, spec through /status) is left out of
  // the comparison rather than compared and dropped: it is most of a pod.
  const top = ignoredTopField(shape, ctx.subresource);
  const c = top
    ? compare(shape, old && { ...old, [top]: undefined }, { ...next, [top]: undefined })
    : compare(shape, old, next);
  const changed = c.modified.union(c.added).recursiveDifference(ignore);
  const removed = c.removed.recursiveDifference(ignore);
  if (changed.isEmpty() && removed.isEmpty()) return capUpdateManagers(managed);
  const fields: ManagedSets = new Map();
  const times = new Map(managed.times);
  for (const [m, vs] of managed.fields) {
    if (
      vs instanceof StoredSet &&
      vs.canonical &&
      !vs.isDecoded &&
      !changed.intersectsFieldsV1(vs.raw) &&
      !removed.intersectsFieldsV1(vs.raw)
    ) {
      fields.set(m, vs); // untouched: not even decoded
      continue;
    }
    const set = vs.set.difference(changed).difference(removed);
    if (set.isEmpty()) continue;
    fields.set(m, set === vs.set ? vs : { set, apiVersion: vs.apiVersion, applied: vs.applied });
  }
  const taken = changed.difference(STRIPPED);
  if (!taken.isEmpty()) {
    const prev = fields.get(id);
    fields.set(id, {
      set: prev ? taken.union(prev.set) : taken,
      apiVersion: ctx.apiVersion,
      applied: false,
    });
    times.set(id, formatTime(now));
  }
  return capUpdateManagers({ fields, times });
}

/** Folds the oldest Update entries into `ancient-changes` (per apiVersion) beyond 10. */
function capUpdateManagers(managed: Managed): Managed {
  const updaters = [...managed.fields].filter(([, vs]) => !vs.applied).map(([id]) => id);
  if (updaters.length <= MAX_UPDATE_MANAGERS) return managed;
  const fields: ManagedSets = new Map(managed.fields);
  const times = new Map(managed.times);
  updaters.sort((a, b) => seconds(times.get(a)) - seconds(times.get(b)) || cmp(a, b));
  const firstOfVersion = new Map<string, string>();
  let length = updaters.length;
  for (let i = 0; i < updaters.length && length > MAX_UPDATE_MANAGERS; i++) {
    const m = updaters[i]!;
    const vs = fields.get(m)!;
    const version = vs.apiVersion;
    const bucket = identity({ manager: ANCIENT_CHANGES, operation: "Update", apiVersion: version });
    const first = firstOfVersion.get(version);
    if (first === undefined) {
      firstOfVersion.set(version, m);
      continue;
    }
    if (!fields.has(bucket)) {
      const s = fields.get(first)!;
      fields.delete(first);
      fields.set(bucket, s);
    }
    fields.set(bucket, {
      set: vs.set.union(fields.get(bucket)!.set),
      apiVersion: vs.apiVersion,
      applied: vs.applied,
    });
    fields.delete(m);
    length--;
    const t = times.get(m);
    if (t) times.set(bucket, t);
    else times.delete(bucket);
  }
  return { fields, times };
}

// ---------------------------------------------------------------------------------------------
// Apply

function applyOnce(
  shape: Shape,
  live: KObject | undefined,
  config: KObject,
  liveManaged: Managed,
  ctx: ManagedContext & { force: boolean },
  force: boolean,
  now: Date,
): { object: KObject; managed: Managed } {
  let managed = liveManaged;
  if (managed.fields.size === 0 && live) {
    const first = identity({
      manager: BEFORE_FIRST_APPLY,
      operation: "Update",
      apiVersion: ctx.apiVersion,
      subresource: ctx.subresource,
    });
    managed = updateManaged(shape, undefined, live, managed, first, ctx, now);
  }
  const id = identity({ manager: ctx.manager, operation: "Apply", subresource: ctx.subresource });
  const r: ApplyResult = applyConfiguration({
    shape,
    live: live as Record<string, unknown> | undefined,
    config,
    managers: managed.fields,
    manager: id,
    apiVersion: ctx.apiVersion,
    force,
    ignore: ignoredFields(shape, ctx.subresource),
  });
  const fields = r.managers;
  const times = new Map(managed.times);
  const mine = fields.get(id);
  if (mine) {
    const set = mine.set.difference(STRIPPED);
    if (set.isEmpty()) fields.delete(id);
    else if (set !== mine.set) fields.set(id, { set, apiVersion: mine.apiVersion, applied: true });
  }
  let object: KObject;
  if (r.object) {
    object = r.object as KObject;
    times.set(id, formatTime(now));
  } else {
    object = structuredClone(live ?? {}) as KObject;
  }
  return { object, managed: { fields, times } };
}

/**
 * The fields of kubectl's last client-side apply that the live object still holds as applied
 * (upstream's lastAppliedManager), or undefined when there is no usable annotation.
 */
function allowedFromLastApplied(
  shape: Shape,
  live: KObject | undefined,
  apiVersion: string,
): FieldSet | undefined {
  const text = live?.metadata?.annotations?.[LAST_APPLIED_ANNOTATION];
  if (!text) return undefined;
  let last: unknown;
  try {
    last = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(last) || last.apiVersion !== apiVersion) return undefined;
  if (validateConfiguration(shape, last).length > 0) return undefined;
  const c = compare(shape, last, live, "raw", "typed");
  return toFieldSet(shape, last).difference(c.modified).difference(c.added).difference(c.removed);
}

function lastApplied(obj: KObject): boolean {
  const v = obj.metadata?.annotations?.[LAST_APPLIED_ANNOTATION];
  return typeof v === "string" && v.length > 0;
}

/** The configuration as kubectl's annotation holds it: without the annotation, Go's JSON + "\n". */
function buildLastApplied(config: KObject): string {
  const copy = structuredClone(config) as Record<string, unknown>;
  const md = copy.metadata;
  if (isObject(md) && isObject(md.annotations)) delete md.annotations[LAST_APPLIED_ANNOTATION];
  return goJson(copy) + "\n";
}

/** Sets the annotation, or drops it when the annotations would outgrow upstream's limit. */
function setLastApplied(obj: KObject, value: string): void {
  const metadata = { ...(obj.metadata ?? {}) } as ServerObjectMeta;
  const annotations = { ...(metadata.annotations ?? {}) };
  annotations[LAST_APPLIED_ANNOTATION] = value;
  let size = 0;
  for (const [k, v] of Object.entries(annotations)) size += k.length + v.length;
  if (size > TOTAL_ANNOTATION_SIZE_LIMIT) delete annotations[LAST_APPLIED_ANNOTATION];
  metadata.annotations = annotations;
  obj.metadata = metadata;
}

/** Go's GroupVersionKind.String() of an object: `apps/v1, Kind=Deployment`, `/v1, Kind=Pod`. */
function gvkString(obj: KObject): string {
  const apiVersion = typeof obj.apiVersion === "string" ? obj.apiVersion : "";
  const slash = apiVersion.indexOf("/");
  const group = slash < 0 ? "" : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  return `${group}/${version}, Kind=${typeof obj.kind === "string" ? obj.kind : ""}`;
}
