/**
 * ResourceQuota: a write that would take a namespace past a ResourceQuota's hard limits is
 * refused, and one that is admitted is charged to the quotas' status.used at once, so that the
 * next write sees it (the resource quota controller recomputes usage from what exists).
 *
 * As upstream 1.32's plugin and evaluators: pods (pods, cpu, memory, ephemeral-storage and their
 * requests./limits. forms, hugepages, extended resources, count/pods; scopes Terminating,
 * NotTerminating, BestEffort, NotBestEffort, PriorityClass, CrossNamespacePodAffinity), services
 * (services, services.nodeports, services.loadbalancers, on create and update), claims
 * (persistentvolumeclaims, requests.storage and their per-StorageClass forms), and object counts
 * `count/<resource>[.<group>]` (with the legacy names configmaps, secrets, resourcequotas,
 * replicationcontrollers) for every other resource on create. Only quotas whose status the
 * controller has filled in count; a quota that limits a resource without reporting its usage
 * refuses (`status unknown for quota`). Charging re-checks each quota as stored, with retries on
 * concurrent changes; dry runs charge nothing.
 */
import type { KObject } from "../../registry/types.js";
import { cmpQuantity } from "../../strategies/quantity.js";
import type { AdmissionAttributes, AdmissionContext, AdmissionPlugin } from "../types.js";
import {
  computeUsage,
  isExtendedForQuota,
  podMatchesScope,
  podUsage,
  POD_RESOURCE_PREFIXES,
  POD_RESOURCES,
  type ScopeSelector,
} from "./quota.js";
import {
  addLists,
  admissionForbidden,
  asPod,
  byteOrder,
  listToJSON,
  mask,
  prettyPrint,
  quantity,
  resourceList,
  subtractQuantity,
  ZERO_QUANTITY,
  type ResourceList,
} from "./util.js";

interface Evaluator {
  handles(a: AdmissionAttributes): boolean;
  /** The quota resource names (of `names`) this evaluator charges. */
  matchingResources(names: string[]): string[];
  /** Whether an object falls under a quota scope. */
  matchesScope(scope: ScopeSelector, obj: KObject): boolean;
  /** Why an object cannot be charged to the `required` resources (pods must set cpu/memory). */
  constraints?(required: string[], obj: KObject): string | undefined;
  usage(obj: KObject): ResourceList;
}

/** Resources that are never charged (virtual ones, and events). */
const IGNORED = new Set([
  "/bindings",
  "/componentstatuses",
  "authentication.k8s.io/tokenreviews",
  "authentication.k8s.io/selfsubjectreviews",
  "authorization.k8s.io/subjectaccessreviews",
  "authorization.k8s.io/selfsubjectaccessreviews",
  "authorization.k8s.io/localsubjectaccessreviews",
  "authorization.k8s.io/selfsubjectrulesreviews",
  "/events",
  "events.k8s.io/events",
]);

const LEGACY_COUNT_NAMES: Record<string, string> = {
  "/configmaps": "configmaps",
  "/resourcequotas": "resourcequotas",
  "/replicationcontrollers": "replicationcontrollers",
  "/secrets": "secrets",
};

const countName = (group: string, resource: string) =>
  group ? `count/${resource}.${group}` : `count/${resource}`;

/** Upstream's generic object count evaluator: one object created is one counted. */
function objectCountEvaluator(group: string, resource: string): Evaluator {
  const names = [countName(group, resource)];
  const legacy = LEGACY_COUNT_NAMES[`${group}/${resource}`];
  if (legacy) names.push(legacy);
  return {
    handles: (a) => a.operation === "CREATE",
    matchingResources: (input) => input.filter((n) => names.includes(n)),
    matchesScope: () => false,
    usage: () => new Map(names.map((n) => [n, quantity(1)])),
  };
}

// ---------------------------------------------------------------------------------------------
// Pods.

/** The resources whose quotas require every container to ask for them explicitly. */
const VALIDATION_SET = new Set([
  "cpu",
  "memory",
  "requests.cpu",
  "requests.memory",
  "limits.cpu",
  "limits.memory",
]);

const podUsageOf = (obj: KObject): ResourceList => podUsage(asPod(obj), Date.now());
const podMatchesScopeOf = (scope: ScopeSelector, obj: KObject): boolean =>
  podMatchesScope(scope, asPod(obj));

const podEvaluator: Evaluator = {
  handles: (a) => a.subresource === "" && a.operation === "CREATE",
  matchingResources: (input) =>
    input.filter(
      (n) =>
        POD_RESOURCES.has(n) ||
        POD_RESOURCE_PREFIXES.some((p) => n.startsWith(p)) ||
        isExtendedForQuota(n),
    ),
  matchesScope: podMatchesScopeOf,
  constraints(required, obj) {
    const pod = asPod(obj);
    const need = required.filter((r) => VALIDATION_SET.has(r));
    const missing = new Map<string, Set<string>>();
    for (const c of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]) {
      const has = computeUsage(
        resourceList(c.resources?.requests),
        resourceList(c.resources?.limits),
      );
      for (const r of need) {
        if (has.has(r)) continue;
        if (!missing.has(r)) missing.set(r, new Set());
        missing.get(r)!.add(c.name);
      }
    }
    if (missing.size === 0) return undefined;
    const parts = [...missing.keys()]
      .sort(byteOrder)
      .map((r) => `${r} for: ${[...missing.get(r)!].sort(byteOrder).join(",")}`);
    return `must specify ${parts.join("; ")}`;
  },
  usage: podUsageOf,
};

// ---------------------------------------------------------------------------------------------
// Services and claims.

const SERVICE_RESOURCES = [
  "count/services",
  "services",
  "services.nodeports",
  "services.loadbalancers",
];

const serviceEvaluator: Evaluator = {
  handles: (a) => a.operation === "CREATE" || a.operation === "UPDATE",
  matchingResources: (input) => input.filter((n) => SERVICE_RESOURCES.includes(n)),
  matchesScope: () => false,
  usage(obj) {
    const spec = (obj.spec ?? {}) as {
      type?: string;
      ports?: Array<{ nodePort?: number }>;
      allocateLoadBalancerNodePorts?: boolean;
    };
    const ports = (spec.ports ?? []).length;
    const out: ResourceList = new Map([
      ["count/services", quantity(1)],
      ["services", quantity(1)],
    ]);
    if (spec.type === "NodePort") out.set("services.nodeports", quantity(ports));
    if (spec.type === "LoadBalancer") {
      const nodePorts =
        spec.allocateLoadBalancerNodePorts === false
          ? (spec.ports ?? []).filter((p) => p.nodePort).length
          : ports;
      out.set("services.nodeports", quantity(nodePorts));
      out.set("services.loadbalancers", quantity(1));
    }
    return out;
  },
};

const STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/";

const pvcEvaluator: Evaluator = {
  handles: (a) => a.operation === "CREATE" || a.operation === "UPDATE",
  matchingResources: (input) =>
    input.filter(
      (n) =>
        ["count/persistentvolumeclaims", "persistentvolumeclaims", "requests.storage"].includes(
          n,
        ) ||
        (n.includes(STORAGE_CLASS_SUFFIX) &&
          (n.endsWith("/persistentvolumeclaims") || n.endsWith("/requests.storage"))),
    ),
  matchesScope: () => false,
  usage(obj) {
    const spec = (obj.spec ?? {}) as {
      storageClassName?: string;
      resources?: { requests?: unknown };
    };
    const cls =
      obj.metadata?.annotations?.["volume.beta.kubernetes.io/storage-class"] ??
      spec.storageClassName ??
      "";
    const out: ResourceList = new Map([
      ["count/persistentvolumeclaims", quantity(1)],
      ["persistentvolumeclaims", quantity(1)],
    ]);
    if (cls) out.set(`${cls}${STORAGE_CLASS_SUFFIX}persistentvolumeclaims`, quantity(1));
    const storage = resourceList(spec.resources?.requests).get("storage");
    if (storage) {
      out.set("requests.storage", storage);
      if (cls) out.set(`${cls}${STORAGE_CLASS_SUFFIX}requests.storage`, storage);
    }
    return out;
  },
};

function evaluatorFor(group: string, resource: string): Evaluator {
  if (group === "" && resource === "pods") return podEvaluator;
  if (group === "" && resource === "services") return serviceEvaluator;
  if (group === "" && resource === "persistentvolumeclaims") return pvcEvaluator;
  return objectCountEvaluator(group, resource);
}

// ---------------------------------------------------------------------------------------------
// The check.

interface QuotaStatus {
  hard?: Record<string, string>;
  used?: Record<string, string>;
}

const statusOf = (q: KObject) => (q.status ?? {}) as QuotaStatus;

function scopeSelectors(q: KObject): ScopeSelector[] {
  const spec = (q.spec ?? {}) as {
    scopes?: string[];
    scopeSelector?: { matchExpressions?: ScopeSelector[] };
  };
  return [
    ...(spec.scopes ?? []).map((s) => ({ scopeName: s, operator: "Exists" })),
    ...(spec.scopeSelector?.matchExpressions ?? []),
  ];
}

/** Whether a quota covers the object: it limits a resource charged for it, in every scope. */
function matches(ev: Evaluator, q: KObject, obj: KObject): boolean {
  const hard = Object.keys(statusOf(q).hard ?? {});
  if (ev.matchingResources(hard).length === 0) return false;
  return scopeSelectors(q).every((s) => ev.matchesScope(s, obj));
}

/**
 * The resources of a matching quota this request is limited by; throws when the object breaks
 * the evaluator's constraints or the quota does not report their usage yet.
 */
function restrictedResources(
  a: AdmissionAttributes,
  ev: Evaluator,
  q: KObject,
  obj: KObject,
): string[] {
  const name = q.metadata?.name ?? "";
  const status = statusOf(q);
  const restricted = ev.matchingResources(Object.keys(status.hard ?? {}));
  const why = ev.constraints?.(restricted, obj);
  if (why) throw admissionForbidden(a, `failed quota: ${name}: ${why}`);
  const used = status.used ?? {};
  if (restricted.some((r) => !(r in used))) {
    throw admissionForbidden(
      a,
      `status unknown for quota: ${name}, resources: ${[...restricted].sort(byteOrder).join(",")}`,
    );
  }
  return restricted;
}

/** What the request adds: the new object's usage, less the old one's on update. */
function requestDelta(a: AdmissionAttributes, ev: Evaluator, obj: KObject): ResourceList {
  let delta = ev.usage(obj);
  const negative = [...delta].filter(([, v]) => v.n < 0n).map(([k]) => k);
  if (negative.length > 0) {
    throw admissionForbidden(
      a,
      `quota usage is negative for resource(s): ${negative.sort(byteOrder).join(",")}`,
    );
  }
  if (a.operation === "UPDATE") {
    if (!a.oldObject) {
      throw admissionForbidden(
        a,
        "unable to get previous usage since prior version of object was not found",
      );
    }
    if (a.oldObject.metadata?.resourceVersion) {
      const prev = ev.usage(a.oldObject);
      const out: ResourceList = new Map();
      for (const [k, v] of delta) {
        const d = prev.has(k) ? subtractQuantity(v, prev.get(k)!) : v;
        out.set(k, d.n > 0n ? d : ZERO_QUANTITY);
      }
      for (const k of prev.keys()) if (!out.has(k)) out.set(k, ZERO_QUANTITY);
      delta = out;
    }
  }
  return new Map([...delta].filter(([, v]) => v.n !== 0n));
}

/** The quota's usage after charging `delta`; throws when that passes its hard limits. */
function charge(a: AdmissionAttributes, q: KObject, delta: ResourceList): ResourceList {
  const status = statusOf(q);
  const hard = resourceList(status.hard);
  const used = resourceList(status.used);
  const requested = mask(delta, hard.keys());
  const newUsage = addLists(used, requested);
  const exceeded: string[] = [];
  for (const [k, limit] of hard) {
    const u = requested.has(k) ? newUsage.get(k) : undefined;
    if (u && cmpQuantity(u, limit) > 0) exceeded.push(k);
  }
  if (exceeded.length > 0) {
    throw admissionForbidden(
      a,
      `exceeded quota: ${q.metadata?.name ?? ""}, requested: ${prettyPrint(mask(requested, exceeded))}, used: ${prettyPrint(mask(used, exceeded))}, limited: ${prettyPrint(mask(hard, exceeded))}`,
    );
  }
  return newUsage;
}

const sameUsage = (a: ResourceList, b: ResourceList) =>
  a.size === b.size && [...a].every(([k, v]) => b.has(k) && cmpQuantity(v, b.get(k)!) === 0);

export const resourceQuota: AdmissionPlugin = {
  name: "ResourceQuota",
  async validate(a, ctx) {
    if (!a.namespace || (a.group === "" && a.resource === "namespaces")) return;
    if (IGNORED.has(`${a.group}/${a.resource}`) || a.operation === "CONNECT") return;
    const ev = evaluatorFor(a.group, a.resource);
    if (!ev.handles(a) || !a.object) return;
    await enforce(a, ctx, ev, a.object);
  },
};

async function enforce(
  a: AdmissionAttributes,
  ctx: AdmissionContext,
  ev: Evaluator,
  obj: KObject,
): Promise<void> {
  const quotas = ctx.list("", "v1", "resourcequotas", a.namespace);
  const interesting: KObject[] = [];
  for (const q of quotas) {
    if (!matches(ev, q, obj)) continue;
    restrictedResources(a, ev, q, obj);
    interesting.push(q);
  }
  if (interesting.length === 0) return;
  const delta = requestDelta(a, ev, obj);
  if (delta.size === 0) return;
  const changed: KObject[] = [];
  for (const q of interesting) {
    const before = resourceList(statusOf(q).used);
    if (!sameUsage(before, charge(a, q, delta))) changed.push(q);
  }
  if (a.dryRun) return;
  // Charge each quota as stored now (another write may have charged it since the cache saw it).
  for (const q of changed) {
    await ctx.update("", "v1", "resourcequotas", a.namespace, q.metadata!.name!, (fresh) => {
      if (!matches(ev, fresh, obj)) return;
      restrictedResources(a, ev, fresh, obj);
      const status = (fresh.status ??= {}) as QuotaStatus;
      status.used = listToJSON(charge(a, fresh, delta));
    });
  }
}
