import { randomUUID, randomInt } from "node:crypto";
import type { KeyValue, Store, Watch, WatchEvent } from "../../storage/interface.js";
import { isStorageError, StorageError } from "../../storage/errors.js";
import {
  alreadyExists,
  badRequest,
  conflict,
  expired,
  internalError,
  invalid,
  notFound,
  serviceUnavailable,
  StatusError,
  STALE_OBJECT,
  type GroupResource,
} from "../../api/status.js";
import {
  parseFieldSelector,
  parseLabelSelector,
  SelectorError,
  type Selector,
} from "../../api/selectors.js";
import { validateObjectMeta } from "../validation/objectmeta.js";
import { formatTime } from "../../api/time.js";
import { deepEqual } from "../strategies/util.js";
import { managedFieldsJSON, trackUpdate, type ManagedContext } from "../apply/managedfields.js";
import { typeNameForKind } from "../../api/schema/index.js";
import type { KObject, ResourceDef, ServerObjectMeta } from "./types.js";
import { conversionFor, convertStored, type Conversion } from "../conversion.js";
import type { AdmissionHook } from "../admission/chain.js";
import {
  CachedObject,
  TooLargeResourceVersion,
  WatchCache,
  type CacheWatchSink,
  type ObjectAttributes,
  type ObjectCodec,
  type WatchEventType as CacheEventType,
  watchEventFor,
} from "./cache.js";

/** Characters of generated name suffixes (upstream's SimpleNameGenerator). */
const NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789";
const MAX_GENERATED_BASE = 63 - 5;
/** How often a watch that allows bookmarks gets one (upstream: about a minute). */
const BOOKMARK_INTERVAL_MS = 60_000;

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  resourceVersionMatch?: string;
}

export interface ListResult {
  items: KObject[];
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

/** A list as served: objects as stored bytes, encoded or decoded as the response needs. */
export interface ObjectList {
  items: CachedObject[];
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

/** Where a watch delivers (see CacheWatchSink), plus the ERROR event that ends a watch. */
export interface WatchSink extends CacheWatchSink {
  bookmark(revision: number, initialEventsEnd?: boolean): void;
  error(status: KObject): void;
}

export interface WatchOptions {
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  resourceVersionMatch?: string;
  sendInitialEvents?: boolean;
  allowWatchBookmarks?: boolean;
}

interface ContinueToken {
  v: string;
  rv: number;
  start: string;
}

function encodeContinue(rv: number, start: string): string {
  return Buffer.from(JSON.stringify({ v: "meta.k8s.io/v1", rv, start })).toString("base64url");
}

function decodeContinue(token: string): ContinueToken {
  try {
    const t = JSON.parse(Buffer.from(token, "base64url").toString()) as ContinueToken;
    if (t.v !== "meta.k8s.io/v1" || typeof t.rv !== "number" || typeof t.start !== "string")
      throw new Error();
    return t;
  } catch {
    throw badRequest(`continue key is not valid: ${token}`);
  }
}

function parseRV(rv: string | undefined, what = "resourceVersion"): number | undefined {
  if (rv === undefined || rv === "") return undefined;
  if (!/^\d+$/.test(rv)) throw badRequest(`invalid ${what}: ${rv}`);
  return Number(rv);
}

/**
 * The generic registry of one resource over the storage layer (upstream's generic registry
 * Store): the same create / get / list / update / delete / watch pipeline for every resource, with
 * what differs in its Strategy. Objects are stored as JSON without metadata.resourceVersion, which
 * is the storage modRevision of the key.
 */
export class Registry {
  readonly gr: GroupResource;
  /** The group, version and kind of the objects this registry serves (one object, shared). */
  readonly gvk: { readonly group: string; readonly version: string; readonly kind: string };
  /** The lease objects of a TTL'd resource are attached to, reused while it is fresh. */
  private lease: { id: number; grantedAt: number; uses: number } | undefined;
  private watchCache: WatchCache | undefined;
  /** The stored bytes of objects read or written last (see toJSON). */
  private readonly storedBytes = new WeakMap<KObject, Uint8Array>();
  /** How objects served in this version are stored in another (see conversion.ts). */
  private readonly conversion: Conversion | undefined;
  /** How the JSON of an object stored in the served version starts. */
  private readonly head: Buffer;
  /** Stored bytes to served forms, for the cache and storage reads alike. */
  readonly codec: ObjectCodec = {
    decode: (raw, revision) => this.decode(raw, revision),
    metadataStart: (raw) => {
      const head = this.head;
      return raw.byteLength > head.length &&
        Buffer.compare(head, Buffer.from(raw.buffer, raw.byteOffset, head.length)) === 0
        ? head.length
        : -1;
    },
    attributes: (obj) => ({
      labels: obj.metadata?.labels as Record<string, string> | undefined,
      fields: this.fields(obj),
    }),
    knownAttributes: (raw) => this.writtenAttributes.get(raw),
  };
  /**
   * The selector attributes of the bytes this registry last wrote, taken from the object as it was
   * written: the watch cache then filters the write's event without decoding it again.
   */
  private readonly writtenAttributes = new WeakMap<Uint8Array, ObjectAttributes>();

  constructor(
    readonly def: ResourceDef,
    private readonly store: Store,
  ) {
    this.gr = { group: def.group, resource: def.resource };
    this.gvk = { group: def.group, version: def.version, kind: def.kind };
    this.conversion = conversionFor(def.group, def.version, def.resource);
    this.head = Buffer.from(`{"apiVersion":"${this.apiVersion}","kind":"${def.kind}","metadata":{`);
  }

  /**
   * The storage lease for a write of a resource with a TTL. As upstream's lease manager: one lease
   * serves the writes of a window of 5% of the TTL (a minute at most) and at most 1,000 objects,
   * granted for the TTL plus that window, so every object lives at least its TTL and the store
   * holds few leases.
   */
  private async leaseFor(): Promise<{ lease?: number }> {
    const ttl = this.def.ttlSeconds;
    if (!ttl) return {};
    const reuseMs = Math.min(60_000, ttl * 50);
    const now = Date.now();
    if (!this.lease || now - this.lease.grantedAt > reuseMs || this.lease.uses >= 1000) {
      const grant = await this.store.grantLease(ttl + Math.ceil(reuseMs / 1000));
      this.lease = { id: grant.id, grantedAt: now, uses: 0 };
    }
    this.lease.uses++;
    return { lease: this.lease.id };
  }

  /** The context managedFields are recorded in for a manager's write. */
  managed(manager: string, subresource?: string): ManagedContext {
    const { group, version, kind } = this.def;
    return {
      typeName: typeNameForKind({ group, version, kind }) ?? `${group}.${version}.${kind}`,
      apiVersion: this.apiVersion,
      manager,
      ...(subresource ? { subresource } : {}),
    };
  }

  get apiVersion(): string {
    return this.def.group ? `${this.def.group}/${this.def.version}` : this.def.version;
  }

  key(namespace: string, name: string): string {
    return this.def.namespaced
      ? `${this.def.keyPrefix}/${namespace}/${name}`
      : `${this.def.keyPrefix}/${name}`;
  }

  /** The key prefix of a list: one namespace, or all of them. */
  private listPrefix(namespace: string): string {
    return this.def.namespaced && namespace
      ? `${this.def.keyPrefix}/${namespace}/`
      : `${this.def.keyPrefix}/`;
  }

  private decode(value: Uint8Array, modRevision: number): KObject {
    let obj = JSON.parse(
      Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString(),
    ) as KObject;
    obj = convertStored(obj, this.apiVersion, this.conversion);
    obj.metadata ??= {};
    obj.metadata.resourceVersion = String(modRevision);
    return obj;
  }

  /**
   * The stored form: JSON without metadata.resourceVersion (the storage revision is the
   * resourceVersion), with apiVersion, kind and metadata first, so that serving it only means
   * putting the resourceVersion into the bytes (see CachedObject.json).
   */
  private encode(obj: KObject): Buffer {
    const served = obj;
    if (this.conversion && this.conversion.storageVersion !== obj.apiVersion) {
      obj = this.conversion.toStorage(obj);
    }
    const { apiVersion, kind, metadata, ...rest } = obj;
    let meta = metadata;
    if (meta && meta.resourceVersion !== undefined) {
      const { resourceVersion: _rv, ...others } = meta;
      meta = others;
    }
    const managed = managedFieldsJSON(meta?.managedFields);
    let json: string;
    if (managed === undefined) {
      json = JSON.stringify({ apiVersion, kind, metadata: meta ?? {}, ...rest });
    } else {
      // managedFields, last in ObjectMeta, written from the text a create made of them.
      const { managedFields: _mf, ...others } = meta!;
      const m = JSON.stringify(others);
      const body = JSON.stringify(rest);
      json =
        `{"apiVersion":${JSON.stringify(apiVersion)},"kind":${JSON.stringify(kind)},"metadata":` +
        `${m.length > 2 ? m.slice(0, -1) + "," : "{"}"managedFields":${managed}}` +
        `${body.length > 2 ? "," + body.slice(1) : "}"}`;
    }
    const bytes = Buffer.from(json);
    this.storedBytes.set(served, bytes);
    // The labels copied: the caller may go on changing the object it wrote.
    const written = this.codec.attributes(served);
    this.writtenAttributes.set(bytes, {
      ...written,
      labels: written.labels && { ...written.labels },
    });
    return bytes;
  }

  /** Stored bytes as the storage layer keeps them: encrypted when the resource is. */
  private stored(plain: Uint8Array, key: string): Uint8Array {
    return this.def.transformer ? this.def.transformer.toStorage(plain, key) : plain;
  }

  /** Plain bytes of a stored value. */
  private plain(value: Uint8Array, key: string): Uint8Array {
    return this.def.transformer ? this.def.transformer.fromStorage(value, key) : value;
  }

  /**
   * The JSON of an object this registry just read or wrote (as get, create, update and delete
   * return them, changed only in metadata.resourceVersion since): the stored bytes with the
   * resourceVersion spliced in, without encoding the object again.
   */
  toJSON(obj: KObject): Buffer {
    const raw = this.storedBytes.get(obj);
    const rv = Number(obj.metadata?.resourceVersion);
    if (raw && Number.isInteger(rv)) return new CachedObject("", raw, rv, this.codec).json();
    return Buffer.from(JSON.stringify(obj));
  }

  /** Maps storage failures to API errors; anything else passes through. */
  private storageError(err: unknown, name: string): never {
    if (err instanceof StatusError) throw err;
    if (isStorageError(err)) {
      switch (err.code) {
        case "KeyExists":
          throw alreadyExists(this.gr, name);
        case "KeyNotFound":
          throw notFound(this.gr, name);
        case "Conflict":
          throw conflict(this.gr, name, STALE_OBJECT);
        case "Compacted":
          throw expired(`too old resource version: ${err.message}`);
        case "ValueTooLarge":
          throw new StatusError(413, "RequestEntityTooLarge", `etcdserver: request is too large`);
        case "Unavailable":
          throw serviceUnavailable(err.message);
        default:
          throw internalError(err.message);
      }
    }
    throw err;
  }

  /** Fills in defaults and checks what every object of this resource must satisfy. */
  private admitNew(obj: KObject, namespace: string): void {
    const meta = (obj.metadata ??= {});
    if (this.def.namespaced) {
      if (meta.namespace && namespace && meta.namespace !== namespace) {
        throw badRequest(
          "the namespace of the provided object does not match the namespace sent on the request",
        );
      }
      meta.namespace = namespace || meta.namespace;
    }
    obj.apiVersion = this.apiVersion;
    obj.kind = this.def.kind;
    // ObjectMeta's lists and maps are omitempty in upstream's types: empty ones are not kept.
    for (const field of ["ownerReferences", "finalizers", "labels", "annotations"] as const) {
      const v = meta[field] as unknown;
      if (
        v === null ||
        (Array.isArray(v) && v.length === 0) ||
        (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 0)
      ) {
        delete meta[field];
      }
    }
    this.def.strategy.defaults?.(obj);
  }

  private validate(obj: KObject, old?: KObject): void {
    const s = this.def.strategy;
    const errs = validateObjectMeta(obj, this.def.namespaced, s.nameFormat ?? "subdomain");
    errs.push(...((old ? s.validateUpdate?.(obj, old) : s.validate?.(obj)) ?? []));
    if (errs.length > 0) {
      throw invalid({ group: this.def.group, kind: this.def.kind }, obj.metadata?.name ?? "", errs);
    }
  }

  async create(
    namespace: string,
    obj: KObject,
    opts: { dryRun?: boolean; manager?: string; admission?: AdmissionHook } = {},
  ): Promise<KObject> {
    this.admitNew(obj, namespace);
    // As upstream, the writer owns what it sent (defaults included), not what admission adds.
    if (opts.manager !== undefined) {
      setManagedFields(obj.metadata!, trackUpdate(undefined, obj, this.managed(opts.manager)));
    }
    await opts.admission?.mutate(obj, undefined);
    const meta = obj.metadata!;
    const generated = !meta.name && !!meta.generateName;
    const generateName = () => {
      let suffix = "";
      for (let i = 0; i < 5; i++) suffix += NAME_ALPHABET[randomInt(NAME_ALPHABET.length)];
      meta.name = meta.generateName!.slice(0, MAX_GENERATED_BASE) + suffix;
    };
    if (generated) generateName();
    delete meta.resourceVersion;
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    meta.uid = randomUUID();
    meta.creationTimestamp = formatTime();
    if (this.def.strategy.tracksGeneration) meta.generation = 1;
    else delete meta.generation;
    this.def.strategy.prepareForCreate?.(obj);
    this.validate(obj);
    await opts.admission?.validate(obj, undefined);
    const allocation = this.def.allocator?.allocate(obj);
    if (opts.dryRun) {
      allocation?.undo();
      const existing = await this.store
        .get(this.key(namespace, meta.name!))
        .catch((e) => this.storageError(e, meta.name!));
      if (existing.kv) throw alreadyExists(this.gr, meta.name!);
      return obj;
    }
    // A generated name that is taken is generated again, up to 8 attempts (upstream's
    // RetryGenerateName, on by default since 1.31).
    for (let attempt = 1; ; attempt++) {
      try {
        const createKey = this.key(meta.namespace ?? "", meta.name!);
        const r = await this.store.create(
          createKey,
          this.stored(this.encode(obj), createKey),
          await this.leaseFor(),
        );
        meta.resourceVersion = String(r.revision);
        allocation?.commit();
        return obj;
      } catch (err) {
        if (generated && attempt < 8 && isStorageError(err) && err.code === "KeyExists") {
          generateName();
          continue;
        }
        allocation?.undo();
        this.storageError(err, meta.name!);
      }
    }
  }

  /** A stored key-value as an object at its revision, decrypted when encrypted at rest. */
  private objectAt(kv: KeyValue): CachedObject {
    return new CachedObject(kv.key, this.plain(kv.value, kv.key), kv.modRevision, this.codec);
  }

  /** An object as stored, decoded only if asked (a GET answered in JSON never decodes it). */
  async getStored(namespace: string, name: string): Promise<CachedObject> {
    let r;
    try {
      r = await this.store.get(this.key(namespace, name));
    } catch (err) {
      this.storageError(err, name);
    }
    if (!r.kv) throw notFound(this.gr, name);
    return this.objectAt(r.kv);
  }

  async get(namespace: string, name: string): Promise<KObject> {
    const stored = await this.getStored(namespace, name);
    const obj = stored.object();
    this.storedBytes.set(obj, stored.raw);
    return obj;
  }

  /** The field-selector view of an object (metadata.name, metadata.namespace and the strategy's). */
  fields(obj: KObject): Record<string, string> {
    const f: Record<string, string> = { "metadata.name": obj.metadata?.name ?? "" };
    if (this.def.namespaced) f["metadata.namespace"] = obj.metadata?.namespace ?? "";
    return Object.assign(f, this.def.strategy.fieldLabels?.(obj));
  }

  /** Whether an object passes a label and a field selector; undefined when both are empty. */
  private selectors(
    labelSelector?: string,
    fieldSelector?: string,
  ): ((obj: CachedObject) => boolean) | undefined {
    let labels: Selector | undefined;
    let fields: Selector | undefined;
    try {
      if (labelSelector) labels = parseLabelSelector(labelSelector);
      if (fieldSelector) fields = parseFieldSelector(fieldSelector);
    } catch (err) {
      if (err instanceof SelectorError) throw badRequest(err.message);
      throw err;
    }
    if (fields && !fields.empty) {
      const known = this.fields({ metadata: {} });
      for (const part of fieldSelector!.split(",")) {
        const key = part.split(/==|!=|=/)[0]!.trim();
        if (key && !(key in known)) {
          throw badRequest(`field label not supported: ${key}`);
        }
      }
    }
    if ((!labels || labels.empty) && (!fields || fields.empty)) return undefined;
    return (obj) => {
      const a = obj.attributes();
      return (!labels || labels.matches(a.labels)) && (!fields || fields.matches(a.fields));
    };
  }

  /** The watch cache of this resource, started on first use. */
  cache(): WatchCache {
    const transformer = this.def.transformer;
    return (this.watchCache ??= new WatchCache(
      this.store,
      `${this.def.keyPrefix}/`,
      this.codec,
      transformer ? (raw, key) => transformer.fromStorage(raw, key) : undefined,
    ));
  }

  /**
   * Follows every object of this resource from the watch cache, for the server's own indexes
   * (RBAC, the node graph): `set` for each object now and each change after, `remove` for each
   * deletion. Objects are the cache's decoded copies: read, never change them. Resolves once the
   * current objects have been handed over; returns the function that stops it. `wants`, when
   * given, looks at an object's stored JSON first: objects it refuses (in every version they
   * have) are never decoded nor handed over.
   */
  async subscribe(handler: {
    set(obj: KObject): void;
    remove(obj: KObject): void;
    wants?(json: Buffer): boolean;
  }): Promise<() => void> {
    const cache = this.cache();
    await cache.ready();
    const sink: WatchSink = {
      events(batch) {
        for (const e of batch) {
          const raw = e.object.raw;
          if (
            handler.wants &&
            !handler.wants(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength))
          )
            continue;
          if (e.type === "DELETED") handler.remove(e.object.view());
          else handler.set(e.object.view());
        }
      },
      bookmark() {},
      error() {},
      end() {},
    };
    const started = cache.addWatch(
      { prefix: `${this.def.keyPrefix}/`, matches: undefined, bookmarks: false },
      sink,
      { initial: true },
    )!;
    cache.flushAll();
    return started.cancel;
  }

  /** Every object of a namespace ("" for all) as the watch cache holds them now (read only). */
  cachedList(namespace: string): KObject[] {
    const cache = this.cache();
    if (!cache.started) {
      void cache.ready();
      throw serviceUnavailable(`the watch cache of ${this.def.resource} is starting`);
    }
    return cache.list(this.listPrefix(namespace), undefined).items.map((o) => o.view());
  }

  /**
   * An object as the watch cache holds it now (a decoded copy to read, never change), for
   * lookups on the request path; undefined when absent or before the cache has started.
   */
  cached(namespace: string, name: string): KObject | undefined {
    return this.watchCache?.get(this.key(namespace, name))?.view();
  }

  /** Stops the watch cache (the server is stopping). */
  close(): void {
    this.watchCache?.stop();
  }

  /** Objects, decoded: for the server's own use. */
  async list(namespace: string, opts: ListOptions = {}): Promise<ListResult> {
    const r = await this.listObjects(namespace, opts);
    return { ...r, items: r.items.map((o) => o.object()) };
  }

  /**
   * Lists as upstream's cacher does: from the watch cache, once it has caught up with storage
   * (resourceVersion unset: everything committed so far; "N": at least N; "0": whatever it
   * holds, and the limit is ignored as upstream's cache ignores it); from storage for an exact
   * resourceVersion and for the pages after the first (at the revision of the first page).
   */
  async listObjects(namespace: string, opts: ListOptions = {}): Promise<ObjectList> {
    const matches = this.selectors(opts.labelSelector, opts.fieldSelector);
    const prefix = this.listPrefix(namespace);
    const limit = opts.limit && opts.limit > 0 ? opts.limit : 0;
    if (opts.continue) {
      const token = decodeContinue(opts.continue);
      return this.listStorage(prefix, matches, limit, token.rv, prefix + token.start, true);
    }
    const rv = parseRV(opts.resourceVersion);
    // An exact resourceVersion, or one given with a limit (not "0"), reads that snapshot.
    if (
      rv &&
      (opts.resourceVersionMatch === "Exact" ||
        (limit && opts.resourceVersionMatch !== "NotOlderThan"))
    ) {
      return this.listStorage(prefix, matches, limit, rv, undefined, false);
    }
    const cache = this.cache();
    await this.fresh(cache, rv);
    const r = cache.list(prefix, matches, rv === 0 ? 0 : limit);
    const result: ObjectList = { items: r.items, resourceVersion: String(cache.revision) };
    if (r.more) {
      const last = r.items[r.items.length - 1]!.key;
      result.continue = encodeContinue(cache.revision, last.slice(prefix.length) + "\0");
      if (!matches) result.remainingItemCount = r.remaining;
    }
    return result;
  }

  /** Waits for the cache to serve resourceVersion `rv` (unset: a consistent read; 0: any). */
  private async fresh(cache: WatchCache, rv: number | undefined): Promise<void> {
    try {
      if (rv === 0) await cache.ready();
      else await cache.waitFresh(rv);
    } catch (err) {
      if (err instanceof TooLargeResourceVersion) {
        throw new StatusError(
          504,
          "Timeout",
          `Too large resource version: ${err.requested}, current: ${err.current}`,
          {
            retryAfterSeconds: 1,
            causes: [{ reason: "ResourceVersionTooLarge", message: "Too large resource version" }],
          },
        );
      }
      this.storageError(err, "");
    }
  }

  private async listStorage(
    prefix: string,
    matches: ((obj: CachedObject) => boolean) | undefined,
    limit: number,
    revision: number,
    startKey: string | undefined,
    continuing: boolean,
  ): Promise<ObjectList> {
    const items: CachedObject[] = [];
    let more = false;
    let lastKey = "";
    let snapshot = revision;
    try {
      for (;;) {
        const page = await this.store.list(prefix, {
          revision: snapshot,
          startKey,
          limit: limit ? Math.max(limit - items.length, 1) : 0,
        });
        snapshot = page.revision;
        for (const kv of page.kvs) {
          lastKey = kv.key;
          const obj = this.objectAt(kv);
          if (!matches || matches(obj)) items.push(obj);
          if (limit && items.length >= limit) break;
        }
        more =
          page.more ||
          (limit > 0 && items.length >= limit && lastKey !== page.kvs[page.kvs.length - 1]?.key);
        if (!page.more || (limit && items.length >= limit)) break;
        startKey = lastKey + "\0";
      }
    } catch (err) {
      if (isStorageError(err, "Compacted") && continuing) {
        throw expired(
          "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
        );
      }
      if (isStorageError(err, "Compacted")) {
        throw expired(
          `too old resource version: ${revision} (${(err as StorageError).details.compactRevision})`,
        );
      }
      if (isStorageError(err, "FutureRevision")) {
        throw new StatusError(
          504,
          "Timeout",
          `Too large resource version: ${revision}, current: ${/current (\d+)/.exec((err as StorageError).message)?.[1] ?? ""}`,
          { retryAfterSeconds: 1 },
        );
      }
      this.storageError(err, "");
    }
    const result: ObjectList = { items, resourceVersion: String(snapshot) };
    if (limit && more) {
      result.continue = encodeContinue(snapshot, lastKey.slice(prefix.length) + "\0");
      if (!matches) {
        const rest = await this.store.list(prefix, {
          revision: snapshot,
          startKey: lastKey + "\0",
          count: true,
          limit: 1,
        });
        result.remainingItemCount = rest.count;
      }
    }
    return result;
  }

  /**
   * Replaces an object. With metadata.resourceVersion set, only if it is still current (409
   * Conflict otherwise); without, unconditionally. `subresource` "status" keeps the spec and takes
   * the status; the main resource keeps the status when the resource has a status subresource.
   */
  async update(
    namespace: string,
    name: string,
    obj: KObject,
    opts: {
      dryRun?: boolean;
      subresource?: string;
      manager?: string;
      managedSubresource?: string;
      /** Admission of an update; `create` is used instead when the update creates the object. */
      admission?: AdmissionHook;
      createAdmission?: AdmissionHook;
    } = {},
  ): Promise<{ object: KObject; created: boolean }> {
    this.admitNew(obj, namespace);
    const meta = obj.metadata!;
    if (meta.name && meta.name !== name) {
      throw badRequest(
        `the name of the object (${meta.name}) does not match the name on the URL (${name})`,
      );
    }
    meta.name = name;
    const key = this.key(namespace, name);
    const expected = parseRV(meta.resourceVersion);
    let current;
    try {
      current = (await this.store.get(key)).kv;
    } catch (err) {
      this.storageError(err, name);
    }
    if (!current) {
      if (!this.def.strategy.allowCreateOnUpdate || opts.subresource) throw notFound(this.gr, name);
      if (expected !== undefined) throw notFound(this.gr, name);
      const createOpts = { ...opts, admission: opts.createAdmission };
      return { object: await this.create(namespace, obj, createOpts), created: true };
    }
    if (expected !== undefined && expected !== current.modRevision) {
      throw conflict(this.gr, name, STALE_OBJECT);
    }
    const old = this.decode(this.plain(current.value, key), current.modRevision);
    const oldMeta = old.metadata!;
    // What clients may not change through update.
    meta.uid = oldMeta.uid;
    meta.creationTimestamp = oldMeta.creationTimestamp;
    if (oldMeta.deletionTimestamp) meta.deletionTimestamp = oldMeta.deletionTimestamp;
    else delete meta.deletionTimestamp;
    if (oldMeta.deletionGracePeriodSeconds !== undefined)
      meta.deletionGracePeriodSeconds = oldMeta.deletionGracePeriodSeconds;
    // As upstream, the writer owns what it changed, not what admission or the strategy change.
    if (opts.manager !== undefined) {
      const ctx = this.managed(opts.manager, opts.managedSubresource ?? opts.subresource);
      setManagedFields(meta, trackUpdate(old, obj, ctx));
    }
    await opts.admission?.mutate(obj, old);
    if (opts.subresource === "status" || opts.subresource === "approval") {
      for (const field of Object.keys(obj)) {
        if (
          field !== "status" &&
          field !== "metadata" &&
          field !== "apiVersion" &&
          field !== "kind"
        )
          delete obj[field];
      }
      for (const [field, value] of Object.entries(old)) {
        if (field !== "status" && field !== "metadata") obj[field] = value;
      }
      meta.generation = oldMeta.generation;
      if (opts.subresource === "approval") {
        // CertificateSigningRequest approval: only status.conditions change, stamped with the
        // time of the change as upstream's approval strategy does.
        const conditions = (
          obj.status as { conditions?: Array<Record<string, unknown>> } | undefined
        )?.conditions;
        const now = formatTime();
        for (const c of conditions ?? []) {
          c.lastUpdateTime ??= now;
          c.lastTransitionTime ??= now;
          c.status ??= "True";
        }
        obj.status = { ...((old.status as object | undefined) ?? {}), conditions };
        if (!conditions) delete (obj.status as Record<string, unknown>).conditions;
      } else if (this.def.group === "certificates.k8s.io") {
        // Through /status the certificate and conditions such as Failed change; the approval
        // conditions (Approved, Denied) only through /approval.
        type Condition = { type?: string };
        const approval = (c: Condition) => c.type === "Approved" || c.type === "Denied";
        const oldConditions =
          (old.status as { conditions?: Condition[] } | undefined)?.conditions ?? [];
        const status = ((obj.status as Record<string, unknown> | undefined) ??= {});
        obj.status = status;
        const conditions = [
          ...oldConditions.filter(approval),
          ...((status.conditions as Condition[] | undefined) ?? []).filter((c) => !approval(c)),
        ];
        if (conditions.length > 0) status.conditions = conditions;
        else delete status.conditions;
      }
    } else {
      if (this.def.hasStatus) {
        if (old.status === undefined) delete obj.status;
        else obj.status = old.status;
      }
      this.def.strategy.prepareForUpdate?.(obj, old);
      if (this.def.strategy.tracksGeneration) {
        const changed =
          JSON.stringify(withoutMetaAndStatus(obj)) !== JSON.stringify(withoutMetaAndStatus(old)) ||
          (!!this.def.strategy.labelsBumpGeneration &&
            !deepEqual(meta.labels ?? {}, oldMeta.labels ?? {}));
        meta.generation = (oldMeta.generation ?? 1) + (changed ? 1 : 0);
      }
    }
    this.validate(obj, old);
    await opts.admission?.validate(obj, old);
    const allocation = opts.subresource ? undefined : this.def.allocator?.allocate(obj, old);
    if (opts.dryRun) {
      allocation?.undo();
      meta.resourceVersion = String(current.modRevision);
      return { object: obj, created: false };
    }
    try {
      const r = await this.store.update(
        key,
        this.stored(this.encode(obj), key),
        current.modRevision,
        await this.leaseFor(),
      );
      meta.resourceVersion = String(r.revision);
      allocation?.commit();
      // An object being deleted goes once its last finalizer is removed.
      if (meta.deletionTimestamp && !this.holdsDeletion(obj)) {
        try {
          const d = await this.store.delete(key, r.revision);
          meta.resourceVersion = String(d.revision);
          this.def.allocator?.release(obj);
        } catch (err) {
          if (!isStorageError(err, "Conflict") && !isStorageError(err, "KeyNotFound")) throw err;
        }
      }
      return { object: obj, created: false };
    } catch (err) {
      allocation?.undo();
      this.storageError(err, name);
    }
  }

  /** Whether something still holds this object's deletion back: finalizers, or a grace period. */
  private holdsDeletion(obj: KObject): boolean {
    const meta = obj.metadata!;
    const strategy = this.def.strategy;
    const finalizers = [...(meta.finalizers ?? []), ...(strategy.pendingFinalizers?.(obj) ?? [])];
    return finalizers.length > 0 || (meta.deletionGracePeriodSeconds ?? 0) > 0;
  }

  /**
   * Read-modify-write of one object for the server's own changes (upstream's GuaranteedUpdate):
   * `mutate` gets the current object and changes it in place, throwing to refuse; the write is
   * retried on a concurrent change. No strategy runs: the caller owns the whole object.
   */
  async guaranteedUpdate(
    namespace: string,
    name: string,
    mutate: (obj: KObject) => void,
  ): Promise<KObject> {
    const key = this.key(namespace, name);
    for (;;) {
      const obj = await this.get(namespace, name);
      const rv = Number(obj.metadata!.resourceVersion);
      mutate(obj);
      try {
        const r = await this.store.update(key, this.stored(this.encode(obj), key), rv);
        obj.metadata!.resourceVersion = String(r.revision);
        return obj;
      } catch (err) {
        if (isStorageError(err, "Conflict")) continue;
        this.storageError(err, name);
      }
    }
  }

  /**
   * Deletes an object as upstream does: at once; or, while finalizers remain (metadata.finalizers
   * and the strategy's own, like a namespace's spec.finalizers), by setting deletionTimestamp and
   * leaving removal to whoever clears them; or, for a resource with graceful deletion (pods on a
   * node), by setting deletionTimestamp and deletionGracePeriodSeconds for the kubelet to finish.
   * A grace period of 0 deletes at once. Returns the object as deleted or as marked.
   */
  async delete(
    namespace: string,
    name: string,
    opts: {
      dryRun?: boolean;
      preconditions?: { uid?: string; resourceVersion?: string };
      gracePeriodSeconds?: number;
      /** DeleteOptions.propagationPolicy: Orphan and Foreground leave it to the garbage collector. */
      propagationPolicy?: "Orphan" | "Foreground" | "Background";
      admission?: AdmissionHook;
    } = {},
  ): Promise<{ object: KObject; deleted: boolean }> {
    const key = this.key(namespace, name);
    const strategy = this.def.strategy;
    for (;;) {
      const obj = await this.get(namespace, name);
      const meta = obj.metadata!;
      checkPreconditions(this.gr, name, opts.preconditions, meta);
      await opts.admission?.validate(undefined, obj);
      const rv = Number(meta.resourceVersion);
      // The garbage collector's finalizers, as upstream sets them for the propagation policy.
      const before = meta.finalizers ?? [];
      let own = before;
      if (opts.propagationPolicy) {
        own = before.filter((f) => f !== "orphan" && f !== "foregroundDeletion");
        if (opts.propagationPolicy === "Orphan") own.push("orphan");
        if (opts.propagationPolicy === "Foreground") own.push("foregroundDeletion");
      }
      const finalizersChanged = own.length !== before.length || own.some((f, i) => f !== before[i]);
      if (finalizersChanged) {
        if (own.length > 0) meta.finalizers = own;
        else delete meta.finalizers;
      }
      const finalizers = [...own, ...(strategy.pendingFinalizers?.(obj) ?? [])];
      const grace =
        opts.gracePeriodSeconds ?? (strategy.gracefulDeletion ? strategy.gracefulDeletion(obj) : 0);
      const graceful =
        !!strategy.gracefulDeletion && grace > 0 && strategy.gracefulDeletion(obj) > 0;
      const immediate = finalizers.length === 0 && !graceful;
      if (opts.dryRun) return { object: obj, deleted: immediate };
      try {
        if (!immediate) {
          // Already marked: only a shorter grace period changes anything.
          const shorter =
            graceful &&
            meta.deletionGracePeriodSeconds !== undefined &&
            grace < meta.deletionGracePeriodSeconds;
          if (!meta.deletionTimestamp || shorter || finalizersChanged) {
            const at = new Date(Date.now() + (graceful ? grace * 1000 : 0));
            if (!meta.deletionTimestamp || shorter) {
              meta.deletionTimestamp = formatTime(at);
              meta.deletionGracePeriodSeconds = graceful ? grace : 0;
            }
            if (strategy.tracksGeneration) meta.generation = (meta.generation ?? 1) + 1;
            strategy.prepareForDeletion?.(obj);
            const r = await this.store.update(key, this.stored(this.encode(obj), key), rv);
            meta.resourceVersion = String(r.revision);
          }
          return { object: obj, deleted: false };
        }
        const r = await this.store.delete(key, rv);
        meta.resourceVersion = String(r.revision);
        this.def.allocator?.release(obj);
        return { object: obj, deleted: true };
      } catch (err) {
        // Someone changed it in between: look again.
        if (isStorageError(err, "Conflict")) continue;
        this.storageError(err, name);
      }
    }
  }

  /**
   * Starts a watch that delivers to `sink` until `signal` aborts or the sink is ended: events
   * after `resourceVersion`, or (unset, "0", or sendInitialEvents) the current objects as ADDED
   * first. Served by the watch cache; a resourceVersion older than the cache's window of events
   * is watched on storage directly. Label and field selectors apply to both the old and the new
   * state, so an object that stops matching is reported DELETED, as upstream does. Resolves once
   * the watch runs; a watch that cannot start (bad selector, resourceVersion too large) throws.
   */
  async watch(
    namespace: string,
    opts: WatchOptions,
    sink: WatchSink,
    signal: AbortSignal,
  ): Promise<void> {
    const matches = this.selectors(opts.labelSelector, opts.fieldSelector);
    const prefix = this.listPrefix(namespace);
    const rv = parseRV(opts.resourceVersion);
    const initial = opts.sendInitialEvents ?? (rv === undefined || rv === 0);
    const cache = this.cache();
    await this.fresh(cache, rv);
    if (signal.aborted) return;
    const watchOpts = { prefix, matches, bookmarks: !!opts.allowWatchBookmarks };
    const started = cache.addWatch(watchOpts, sink, initial ? { initial: true } : { after: rv! });
    if (!started) return this.watchStorage(prefix, matches, rv!, opts, sink, signal);
    if (initial && opts.sendInitialEvents && opts.allowWatchBookmarks) {
      cache.flushAll();
      sink.bookmark(started.revision, true);
    }
    signal.addEventListener("abort", () => started.cancel(), { once: true });
  }

  /** A watch from a revision the cache no longer holds events for, served by the storage layer. */
  private watchStorage(
    prefix: string,
    matches: ((obj: CachedObject) => boolean) | undefined,
    rv: number,
    opts: WatchOptions,
    sink: WatchSink,
    signal: AbortSignal,
  ): void {
    let watch: Watch;
    try {
      watch = this.store.watch(prefix, { prefix: true, startRevision: rv + 1 });
    } catch (err) {
      this.storageError(err, "");
    }
    const abort = () => watch.close();
    signal.addEventListener("abort", abort, { once: true });
    // Clients that accept bookmarks get one about every minute, so they can resume near the head.
    const bookmarks = opts.allowWatchBookmarks
      ? setInterval(() => watch.requestProgress(), BOOKMARK_INTERVAL_MS)
      : undefined;
    void (async () => {
      try {
        for await (const msg of watch) {
          if (msg.type === "progress") {
            if (opts.allowWatchBookmarks) sink.bookmark(msg.revision);
            continue;
          }
          const batch: Array<{ type: CacheEventType; object: CachedObject }> = [];
          for (const e of msg.events) {
            const out = this.toWatchEvent(e, matches);
            if (out) batch.push(out);
          }
          if (batch.length > 0) sink.events(batch);
        }
        sink.end();
      } catch (err) {
        if (isStorageError(err, "Compacted")) {
          sink.error(
            expired(
              `too old resource version: ${rv} (${err.details.compactRevision ?? ""})`,
            ).toStatus() as unknown as KObject,
          );
        } else {
          sink.error(
            (err instanceof StatusError
              ? err
              : internalError(String((err as Error)?.message ?? err))
            ).toStatus() as unknown as KObject,
          );
        }
      } finally {
        signal.removeEventListener("abort", abort);
        if (bookmarks) clearInterval(bookmarks);
        watch.close();
      }
    })();
  }

  private toWatchEvent(
    e: WatchEvent,
    matches: ((o: CachedObject) => boolean) | undefined,
  ): { type: CacheEventType; object: CachedObject } | undefined {
    const prev = e.prevKv ? this.objectAt(e.prevKv) : undefined;
    if (e.type === "delete") {
      // A deleted object is served as it was, at the revision of its deletion.
      if (!prev) return undefined;
      const object = new CachedObject(prev.key, prev.raw, e.kv.modRevision, this.codec);
      return watchEventFor({ type: "delete", object, prev }, matches);
    }
    return watchEventFor({ type: "put", object: this.objectAt(e.kv), prev }, matches);
  }

  /** The object of a BOOKMARK event at `resourceVersion`. */
  bookmark(resourceVersion: string, initialEventsEnd = false): KObject {
    const metadata: Record<string, unknown> = { resourceVersion, creationTimestamp: null };
    if (initialEventsEnd) metadata.annotations = { "k8s.io/initial-events-end": "true" };
    return { kind: this.def.kind, apiVersion: this.apiVersion, metadata };
  }
}

/** Takes the managedFields of a tracked copy into the object's own metadata (kept by reference elsewhere). */
function setManagedFields(meta: ServerObjectMeta, tracked: KObject): void {
  const managed = tracked.metadata?.managedFields;
  if (managed === undefined) delete meta.managedFields;
  else meta.managedFields = managed;
}

/** DeleteOptions.preconditions against the object as stored: a 409 Conflict when they fail. */
export function checkPreconditions(
  gr: GroupResource,
  name: string,
  pre: { uid?: string; resourceVersion?: string } | undefined,
  meta: { uid?: string; resourceVersion?: string },
): void {
  if (pre?.uid && pre.uid !== meta.uid) {
    throw conflict(
      gr,
      name,
      `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${meta.uid}`,
    );
  }
  if (pre?.resourceVersion && pre.resourceVersion !== meta.resourceVersion) {
    throw conflict(
      gr,
      name,
      `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${meta.resourceVersion}`,
    );
  }
}

function withoutMetaAndStatus(obj: KObject): Record<string, unknown> {
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (k !== "metadata" && k !== "status") rest[k] = v;
  return rest;
}
