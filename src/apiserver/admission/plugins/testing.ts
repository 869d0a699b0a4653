/**
 * For the plugins' unit tests: an AdmissionContext over objects held in memory (what the watch
 * caches and storage would hold), and attributes of a request as the API server makes them.
 */
import type { Attributes, Decision, UserInfo } from "../../auth/types.js";
import type { KObject } from "../../registry/types.js";
import type { AdmissionAttributes, AdmissionContext, Operation } from "../types.js";

/** Where an object of a kind is kept: group, version and resource. */
const RESOURCES: Record<string, [string, string, string]> = {
  Namespace: ["", "v1", "namespaces"],
  Pod: ["", "v1", "pods"],
  Node: ["", "v1", "nodes"],
  ServiceAccount: ["", "v1", "serviceaccounts"],
  LimitRange: ["", "v1", "limitranges"],
  ResourceQuota: ["", "v1", "resourcequotas"],
  PriorityClass: ["scheduling.k8s.io", "v1", "priorityclasses"],
  StorageClass: ["storage.k8s.io", "v1", "storageclasses"],
  IngressClass: ["networking.k8s.io", "v1", "ingressclasses"],
};

export class FakeContext implements AdmissionContext {
  readonly objects = new Map<string, KObject>();
  /** Objects stored but not yet seen by the "cache" (get/list miss them, fetch finds them). */
  readonly uncached = new Set<string>();
  updates = 0;
  private rv = 1;
  authorizer?: (attrs: Attributes) => Decision;

  constructor(objects: KObject[] = []) {
    for (const o of objects) this.add(o);
  }

  private static key(g: string, v: string, r: string, ns: string, name: string): string {
    return `${g}/${v}/${r}/${ns}/${name}`;
  }

  /** Stores an object (by its kind); `cached: false` keeps it out of get/list. */
  add(obj: KObject, opts: { cached?: boolean } = {}): KObject {
    const where = RESOURCES[obj.kind ?? ""];
    if (!where) throw new Error(`no resource for kind ${obj.kind}`);
    const meta = (obj.metadata ??= {});
    meta.resourceVersion = String(this.rv++);
    meta.uid ??= `uid-${meta.name}`;
    meta.creationTimestamp ??= new Date(Date.now() + this.rv).toISOString();
    const key = FakeContext.key(...where, meta.namespace ?? "", meta.name ?? "");
    this.objects.set(key, obj);
    if (opts.cached === false) this.uncached.add(key);
    return obj;
  }

  get(g: string, v: string, r: string, ns: string, name: string): KObject | undefined {
    const key = FakeContext.key(g, v, r, ns, name);
    return this.uncached.has(key) ? undefined : this.objects.get(key);
  }

  async fetch(g: string, v: string, r: string, ns: string, name: string) {
    return this.objects.get(FakeContext.key(g, v, r, ns, name));
  }

  list(g: string, v: string, r: string, ns: string): KObject[] {
    const prefix = ns ? FakeContext.key(g, v, r, ns, "") : `${g}/${v}/${r}/`;
    return [...this.objects]
      .filter(([k]) => k.startsWith(prefix) && !this.uncached.has(k))
      .map(([, o]) => o);
  }

  async update(
    g: string,
    v: string,
    r: string,
    ns: string,
    name: string,
    mutate: (obj: KObject) => void,
  ): Promise<KObject> {
    const key = FakeContext.key(g, v, r, ns, name);
    const current = this.objects.get(key);
    if (!current) throw new Error(`${key} not found`);
    const copy = JSON.parse(JSON.stringify(current)) as KObject;
    mutate(copy);
    copy.metadata!.resourceVersion = String(this.rv++);
    this.objects.set(key, copy);
    this.updates++;
    return copy;
  }

  authorize?: (attrs: Attributes) => Decision = (attrs) =>
    this.authorizer ? this.authorizer(attrs) : { decision: "no-opinion", reason: "" };
}

export const ADMIN: UserInfo = { username: "admin", groups: ["system:masters"] };

export const nodeUser = (name: string): UserInfo => ({
  username: `system:node:${name}`,
  groups: ["system:nodes", "system:authenticated"],
});

/** The attributes of a request, as the API server's admission chain builds them. */
export function attrs(
  operation: Operation,
  resource: string,
  object: KObject | undefined,
  more: Partial<AdmissionAttributes> = {},
): AdmissionAttributes {
  const [group, version] = (object?.apiVersion ?? more.oldObject?.apiVersion ?? "v1").includes("/")
    ? (object?.apiVersion ?? more.oldObject?.apiVersion)!.split("/")
    : ["", "v1"];
  const meta = object?.metadata ?? more.oldObject?.metadata;
  return {
    operation,
    user: ADMIN,
    group: group!,
    version: version!,
    resource,
    subresource: "",
    kind: { group: group!, version: version!, kind: object?.kind ?? more.oldObject?.kind ?? "" },
    namespace: meta?.namespace ?? "",
    name: meta?.name ?? "",
    object,
    oldObject: undefined,
    dryRun: false,
    ...more,
  };
}

export function pod(name: string, spec: Record<string, unknown> = {}, meta = {}): KObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "ns", ...meta },
    spec: { containers: [{ name: "c", image: "busybox" }], ...spec },
  };
}

export const namespace = (name: string, labels?: Record<string, string>): KObject => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name, ...(labels ? { labels } : {}) },
});
