/**
 * Typed handles on API resources: `client.resource("apps/v1/Deployment")` answers a
 * `ResourceClient<Deployment>` whose calls map to the REST paths of the catalogue in
 * src/api/resources.ts (group, version, plural, scope). Any other resource (a custom resource)
 * gets an untyped handle through `client.resourceFor(info)`.
 *
 * Namespaces: a handle of a namespaced resource is either scoped (`.namespace("prod")`) or spans
 * all namespaces (list and watch only). Writes take the namespace of the object when it names
 * one, else the handle's.
 */

import type { DeleteOptions, ObjectMeta, Preconditions, Status } from "kubernetes-types/meta/v1.js";
import { findResourceByKind, type ResourceInfo } from "../api/resources.js";
import type { RestConfig } from "./config.js";
import { parseKindName, type KindName, type KObject, type ObjectOf } from "./kinds.js";
import { RestClient, type Query, type RestClientOptions, type WatchEvent } from "./rest.js";
import { StatusError } from "../api/status.js";

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  resourceVersionMatch?: "Exact" | "NotOlderThan";
  timeoutSeconds?: number;
}

export interface WatchOptions extends ListOptions {
  allowWatchBookmarks?: boolean;
  sendInitialEvents?: boolean;
}

export interface List<T> {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  items: T[];
}

export interface WriteOptions {
  dryRun?: boolean;
  fieldManager?: string;
  fieldValidation?: "Ignore" | "Warn" | "Strict";
}

export type PatchType = "json" | "merge" | "strategic" | "apply";

export const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  json: "application/json-patch+json",
  merge: "application/merge-patch+json",
  strategic: "application/strategic-merge-patch+json",
  apply: "application/apply-patch+yaml",
};

export interface PatchOptions extends WriteOptions {
  /** Server-side apply: take ownership of conflicting fields. */
  force?: boolean;
  subresource?: string;
}

export interface DeleteCallOptions {
  dryRun?: boolean;
  gracePeriodSeconds?: number;
  propagationPolicy?: "Orphan" | "Background" | "Foreground";
  preconditions?: Preconditions;
}

function writeQuery(o: WriteOptions & { force?: boolean } = {}): Query {
  return {
    dryRun: o.dryRun ? "All" : undefined,
    fieldManager: o.fieldManager,
    fieldValidation: o.fieldValidation,
    force: o.force === undefined ? undefined : String(o.force),
  };
}

function listQuery(o: WatchOptions = {}): Query {
  return {
    labelSelector: o.labelSelector,
    fieldSelector: o.fieldSelector,
    limit: o.limit,
    continue: o.continue,
    resourceVersion: o.resourceVersion,
    resourceVersionMatch: o.resourceVersionMatch,
    timeoutSeconds: o.timeoutSeconds,
    allowWatchBookmarks: o.allowWatchBookmarks ? "true" : undefined,
    sendInitialEvents: o.sendInitialEvents === undefined ? undefined : String(o.sendInitialEvents),
  };
}

/** Calls on one resource, optionally scoped to one namespace. */
export class ResourceClient<T extends KObject = KObject> {
  readonly apiVersion: string;
  private readonly base: string;

  constructor(
    readonly rest: RestClient,
    readonly info: ResourceInfo,
    /** The namespace of a scoped handle; undefined spans all namespaces. */
    readonly ns?: string,
  ) {
    this.apiVersion = info.group ? `${info.group}/${info.version}` : info.version;
    this.base = info.group ? `/apis/${info.group}/${info.version}` : `/api/${info.version}`;
  }

  /** The same resource scoped to `namespace`. */
  namespace(namespace: string): ResourceClient<T> {
    return new ResourceClient<T>(this.rest, this.info, namespace);
  }

  /** `/api/v1/namespaces/ns/pods/name/status` and the like. */
  path(namespace: string | undefined, name?: string, subresource?: string): string {
    let p = this.base;
    if (this.info.namespaced && namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
    p += `/${this.info.resource}`;
    if (name !== undefined) {
      if (!name) throw new Error(`resource name may not be empty`);
      p += `/${encodeURIComponent(name)}`;
    }
    if (subresource) p += `/${subresource}`;
    return p;
  }

  private namespaceFor(obj?: KObject, required = true): string | undefined {
    if (!this.info.namespaced) return undefined;
    const ns = obj?.metadata?.namespace || this.ns;
    if (!ns && required)
      throw new Error(
        `a namespace is required for ${this.info.resource}: scope the handle or set metadata.namespace`,
      );
    return ns;
  }

  private nameOf(obj: KObject): string {
    const name = obj.metadata?.name;
    if (!name) throw new Error(`metadata.name is required to update ${this.info.resource}`);
    return name;
  }

  async get(
    name: string,
    opts: { resourceVersion?: string; signal?: AbortSignal } = {},
  ): Promise<T> {
    return this.rest.request<T>("GET", this.path(this.namespaceFor(), name), {
      query: { resourceVersion: opts.resourceVersion },
      signal: opts.signal,
    });
  }

  /** Lists one page (or all, without `limit`); items get apiVersion and kind filled in. */
  async list(opts: ListOptions = {}, signal?: AbortSignal): Promise<List<T>> {
    const list = await this.rest.request<List<T>>(
      "GET",
      this.path(this.namespaceFor(undefined, false)),
      {
        query: listQuery(opts),
        signal,
      },
    );
    list.items ??= [];
    for (const item of list.items) {
      item.apiVersion ??= this.apiVersion as T["apiVersion"];
      item.kind ??= this.info.kind as T["kind"];
    }
    return list;
  }

  /**
   * Every item, page by page (500 at a time as client-go's pager), from one consistent snapshot.
   * When the snapshot is compacted away before the last page (410 Expired on a continue token),
   * the list is taken again whole, without pages, as client-go's pager does by default
   * (FullListIfExpired).
   */
  async listAll(
    opts: Omit<ListOptions, "limit" | "continue"> = {},
    signal?: AbortSignal,
  ): Promise<List<T>> {
    const first = await this.list({ ...opts, limit: 500 }, signal);
    let next = first.metadata.continue;
    while (next) {
      let page: List<T>;
      try {
        page = await this.list({ ...opts, limit: 500, continue: next }, signal);
      } catch (err) {
        if (err instanceof StatusError && err.code === 410 && err.reason === "Expired") {
          return this.list(opts, signal);
        }
        throw err;
      }
      first.items.push(...page.items);
      next = page.metadata.continue;
      first.metadata.resourceVersion = page.metadata.resourceVersion;
    }
    delete first.metadata.continue;
    return first;
  }

  async create(obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.rest.request<T>("POST", this.path(this.namespaceFor(obj)), {
      body: this.withType(obj),
      query: writeQuery(opts),
    });
  }

  /** Replaces the object (PUT); fails with a Conflict when its resourceVersion is stale. */
  async update(obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.rest.request<T>("PUT", this.path(this.namespaceFor(obj), this.nameOf(obj)), {
      body: this.withType(obj),
      query: writeQuery(opts),
    });
  }

  /** Replaces the status subresource (PUT .../status). */
  async updateStatus(obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.rest.request<T>(
      "PUT",
      this.path(this.namespaceFor(obj), this.nameOf(obj), "status"),
      { body: this.withType(obj), query: writeQuery(opts) },
    );
  }

  async patch(name: string, type: PatchType, patch: unknown, opts: PatchOptions = {}): Promise<T> {
    return this.rest.request<T>("PATCH", this.path(this.namespaceFor(), name, opts.subresource), {
      body: patch,
      contentType: PATCH_CONTENT_TYPES[type],
      query: writeQuery(opts),
    });
  }

  /** Server-side apply of `obj` (which names itself) as `fieldManager`. */
  async apply(obj: T, opts: PatchOptions & { fieldManager: string }): Promise<T> {
    return this.rest.request<T>(
      "PATCH",
      this.path(this.namespaceFor(obj), this.nameOf(obj), opts.subresource),
      { body: this.withType(obj), contentType: PATCH_CONTENT_TYPES.apply, query: writeQuery(opts) },
    );
  }

  /** Deletes; answers the object (while finalizers or grace keep it) or a Success Status. */
  async delete(name: string, opts: DeleteCallOptions = {}): Promise<T | Status> {
    const body: DeleteOptions = { apiVersion: "v1", kind: "DeleteOptions" };
    if (opts.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = opts.gracePeriodSeconds;
    if (opts.propagationPolicy) body.propagationPolicy = opts.propagationPolicy;
    if (opts.preconditions) body.preconditions = opts.preconditions;
    if (opts.dryRun) body.dryRun = ["All"];
    return this.rest.request<T | Status>("DELETE", this.path(this.namespaceFor(), name), { body });
  }

  async deleteCollection(opts: DeleteCallOptions & ListOptions = {}): Promise<List<T> | Status> {
    const body: DeleteOptions = { apiVersion: "v1", kind: "DeleteOptions" };
    if (opts.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = opts.gracePeriodSeconds;
    if (opts.propagationPolicy) body.propagationPolicy = opts.propagationPolicy;
    return this.rest.request("DELETE", this.path(this.namespaceFor(undefined, false)), {
      body,
      query: listQuery(opts),
    });
  }

  /** GET/PUT/POST/PATCH of another subresource (`scale`, `binding`, `eviction`, `token`). */
  async subresource<R = unknown>(
    method: "GET" | "PUT" | "POST" | "PATCH",
    name: string,
    subresource: string,
    body?: unknown,
    opts: { contentType?: string; namespace?: string } = {},
  ): Promise<R> {
    const ns = this.info.namespaced ? (opts.namespace ?? this.namespaceFor()) : undefined;
    return this.rest.request<R>(method, this.path(ns, name, subresource), {
      body,
      contentType: opts.contentType,
    });
  }

  /** Opens a watch; see `RestClient.watch` for how it ends. */
  async watch(opts: WatchOptions, signal: AbortSignal): Promise<AsyncIterable<WatchEvent<T>>> {
    return this.rest.watch<T>(
      this.path(this.namespaceFor(undefined, false)),
      listQuery(opts),
      signal,
    );
  }

  private withType(obj: T): T {
    if (obj.apiVersion && obj.kind) return obj;
    return {
      ...obj,
      apiVersion: obj.apiVersion ?? this.apiVersion,
      kind: obj.kind ?? this.info.kind,
    };
  }
}

/** The REST client plus typed resource handles; one per API server and identity. */
export class Client {
  readonly rest: RestClient;

  constructor(config: RestConfig | RestClient, opts: RestClientOptions = {}) {
    this.rest = config instanceof RestClient ? config : new RestClient(config, opts);
  }

  /** The namespace of the configuration's context. */
  get namespace(): string {
    return this.rest.namespace;
  }

  /** A handle on a built-in kind ("v1/Pod", "apps/v1/Deployment"), all namespaces or one. */
  resource<K extends KindName>(kind: K, namespace?: string): ResourceClient<ObjectOf<K>>;
  resource(kind: string, namespace?: string): ResourceClient<KObject>;
  resource(kind: string, namespace?: string): ResourceClient<KObject> {
    const { group, version, kind: k } = parseKindName(kind);
    const info = findResourceByKind(group, version, k);
    if (!info) throw new Error(`no built-in resource serves ${kind}`);
    return new ResourceClient(this.rest, info, namespace);
  }

  /** A handle on any resource, described as the catalogue describes resources. */
  resourceFor<T extends KObject = KObject>(
    info: Pick<ResourceInfo, "group" | "version" | "resource" | "kind" | "namespaced">,
    namespace?: string,
  ): ResourceClient<T> {
    return new ResourceClient<T>(this.rest, info as ResourceInfo, namespace);
  }

  close(): void {
    this.rest.close();
  }
}

/** `namespace/name`, or `name` for cluster-scoped objects: the key of caches and work queues. */
export function objectKey(obj: { metadata?: Pick<ObjectMeta, "namespace" | "name"> }): string {
  const m = obj.metadata;
  return m?.namespace ? `${m.namespace}/${m.name ?? ""}` : (m?.name ?? "");
}

/** Splits a key made by `objectKey`. */
export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf("/");
  return i < 0
    ? { namespace: "", name: key }
    : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}
