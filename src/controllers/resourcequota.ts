/**
 * The resource quota controller (upstream's resourcequota): `status.hard` mirrors each
 * ResourceQuota's `spec.hard`, and `status.used` is what its namespace really uses of each
 * limited resource, recounted from the caches:
 *
 * - pods: `pods` (pods not finished), `count/pods` (every pod), the requests and limits of cpu,
 *   memory and ephemeral-storage (`cpu`, `requests.cpu`, `limits.cpu`, ...), hugepages and
 *   extended resources, within the quota's scopes (Terminating, NotTerminating, BestEffort,
 *   NotBestEffort, PriorityClass, CrossNamespacePodAffinity);
 * - services: `services`, `services.nodeports`, `services.loadbalancers`;
 * - claims: `persistentvolumeclaims`, `requests.storage` and their per-StorageClass forms;
 * - `count/<resource>[.<group>]` for any built-in resource, and the legacy names `configmaps`,
 *   `secrets`, `resourcequotas`, `replicationcontrollers`.
 *
 * The API server's ResourceQuota admission charges a write to `status.used` before the object
 * exists; this controller corrects the figures afterwards (deletions, finished pods, refused
 * writes). As upstream, it recounts a quota when its `spec.hard` changes or a counted object
 * changes, and every quota every 5 minutes (--resource-quota-sync-period), but not when only
 * the status changed: a recount between an admission's charge and the object's arrival in the
 * cache would take the charge back.
 */

import type { Pod, ResourceQuota } from "kubernetes-types/core/v1.js";
import { preferredResources } from "../api/resources.js";
import { isStatusError } from "../api/status.js";
import { controller } from "../client/controller.js";
import type { Informer } from "../client/informer.js";
import type { KObject } from "../client/kinds.js";
import {
  isExtendedForQuota,
  podMatchesScope,
  POD_RESOURCE_PREFIXES,
  podUsage,
  POD_RESOURCES,
  type ScopeSelector,
} from "../apiserver/admission/plugins/quota.js";
import {
  addLists,
  listToJSON,
  mask,
  quantity,
  resourceList,
  type ResourceList,
} from "../apiserver/admission/plugins/util.js";
import { cmpQuantity } from "../apiserver/strategies/quantity.js";
import { errorMessage, type ControllerDescriptor } from "./context.js";

/** --resource-quota-sync-period's default. */
export const RESOURCE_QUOTA_SYNC_PERIOD = 5 * 60_000;

/** How one kind of object is counted against quotas (upstream's quota evaluators). */
export interface QuotaEvaluator {
  /** The kind whose objects it counts ("v1/Pod"). */
  kind: string;
  /** The quota resource names (of `names`) it counts. */
  matchingResources(names: string[]): string[];
  matchesScope(scope: ScopeSelector, obj: KObject): boolean;
  usage(obj: KObject, now: number): ResourceList;
}

export const podEvaluator: QuotaEvaluator = {
  kind: "v1/Pod",
  matchingResources: (names) =>
    names.filter(
      (n) =>
        POD_RESOURCES.has(n) ||
        POD_RESOURCE_PREFIXES.some((p) => n.startsWith(p)) ||
        isExtendedForQuota(n),
    ),
  matchesScope: (scope, obj) => podMatchesScope(scope, obj as Pod),
  usage: (obj, now) => podUsage(obj as Pod, now),
};

const SERVICE_RESOURCES = [
  "count/services",
  "services",
  "services.nodeports",
  "services.loadbalancers",
];

export const serviceEvaluator: QuotaEvaluator = {
  kind: "v1/Service",
  matchingResources: (names) => names.filter((n) => SERVICE_RESOURCES.includes(n)),
  matchesScope: () => false,
  usage(obj) {
    const spec = (obj as { spec?: { type?: string; ports?: { nodePort?: number }[] } }).spec ?? {};
    const ports = (spec.ports ?? []).length;
    const out: ResourceList = new Map([
      ["count/services", quantity(1)],
      ["services", quantity(1)],
    ]);
    if (spec.type === "NodePort") out.set("services.nodeports", quantity(ports));
    if (spec.type === "LoadBalancer") {
      // Node ports actually allocated (none when allocateLoadBalancerNodePorts is false).
      out.set("services.nodeports", quantity((spec.ports ?? []).filter((p) => p.nodePort).length));
      out.set("services.loadbalancers", quantity(1));
    }
    return out;
  },
};

const STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/";

export const pvcEvaluator: QuotaEvaluator = {
  kind: "v1/PersistentVolumeClaim",
  matchingResources: (names) =>
    names.filter(
      (n) =>
        ["count/persistentvolumeclaims", "persistentvolumeclaims", "requests.storage"].includes(
          n,
        ) ||
        (n.includes(STORAGE_CLASS_SUFFIX) &&
          (n.endsWith("/persistentvolumeclaims") || n.endsWith("/requests.storage"))),
    ),
  matchesScope: () => false,
  usage(obj) {
    const pvc = obj as {
      spec?: { storageClassName?: string; resources?: { requests?: unknown } };
      status?: { allocatedResources?: unknown };
    };
    const cls =
      obj.metadata?.annotations?.["volume.beta.kubernetes.io/storage-class"] ??
      pvc.spec?.storageClassName ??
      "";
    const out: ResourceList = new Map([
      ["count/persistentvolumeclaims", quantity(1)],
      ["persistentvolumeclaims", quantity(1)],
    ]);
    if (cls) out.set(`${cls}${STORAGE_CLASS_SUFFIX}persistentvolumeclaims`, quantity(1));
    let storage = resourceList(pvc.spec?.resources?.requests).get("storage");
    const allocated = resourceList(pvc.status?.allocatedResources).get("storage");
    if (allocated && (!storage || cmpQuantity(allocated, storage) > 0)) storage = allocated;
    if (storage) {
      out.set("requests.storage", storage);
      if (cls) out.set(`${cls}${STORAGE_CLASS_SUFFIX}requests.storage`, storage);
    }
    return out;
  },
};

const LEGACY_COUNT_NAMES: Record<string, string> = {
  configmaps: "/configmaps",
  secrets: "/secrets",
  resourcequotas: "/resourcequotas",
  replicationcontrollers: "/replicationcontrollers",
};

const DEDICATED = new Set(["/pods", "/services", "/persistentvolumeclaims"]);

/**
 * The object count evaluator of a quota resource name (`count/deployments.apps`, `configmaps`),
 * or undefined when it names no built-in namespaced resource (or one with its own evaluator).
 */
export function objectCountEvaluator(name: string): QuotaEvaluator | undefined {
  let groupResource = LEGACY_COUNT_NAMES[name];
  if (!groupResource && name.startsWith("count/")) {
    const rest = name.slice("count/".length);
    const dot = rest.indexOf(".");
    groupResource = dot < 0 ? `/${rest}` : `${rest.slice(dot + 1)}/${rest.slice(0, dot)}`;
  }
  if (!groupResource || DEDICATED.has(groupResource)) return undefined;
  const slash = groupResource.indexOf("/");
  const group = groupResource.slice(0, slash);
  const resource = groupResource.slice(slash + 1);
  const info = preferredResources().find(
    (r) => r.group === group && r.resource === resource && r.namespaced && r.verbs.includes("list"),
  );
  if (!info) return undefined;
  const names = [group ? `count/${resource}.${group}` : `count/${resource}`];
  const legacy = Object.keys(LEGACY_COUNT_NAMES).find(
    (k) => LEGACY_COUNT_NAMES[k] === groupResource,
  );
  if (legacy) names.push(legacy);
  return {
    kind: group ? `${group}/${info.version}/${info.kind}` : `${info.version}/${info.kind}`,
    matchingResources: (input) => input.filter((n) => names.includes(n)),
    matchesScope: () => false,
    usage: () => new Map(names.map((n) => [n, quantity(1)])),
  };
}

/** The evaluators that count some of a quota's hard resources. */
export function evaluatorsFor(hard: string[]): QuotaEvaluator[] {
  const out: QuotaEvaluator[] = [];
  for (const ev of [podEvaluator, serviceEvaluator, pvcEvaluator])
    if (ev.matchingResources(hard).length > 0) out.push(ev);
  const seen = new Set<string>();
  for (const name of hard) {
    const ev = objectCountEvaluator(name);
    if (ev && !seen.has(ev.kind)) {
      seen.add(ev.kind);
      out.push(ev);
    }
  }
  return out;
}

export function scopeSelectors(quota: ResourceQuota): ScopeSelector[] {
  return [
    ...(quota.spec?.scopes ?? []).map((s) => ({ scopeName: s, operator: "Exists" })),
    ...(quota.spec?.scopeSelector?.matchExpressions ?? []),
  ];
}

/**
 * What a namespace uses of the quota's hard resources that some evaluator counts (upstream's
 * CalculateUsage): each counted resource starts at 0, objects outside the scopes do not count.
 */
export function calculateUsage(
  quota: ResourceQuota,
  objectsOf: (kind: string) => KObject[],
  now: number,
): ResourceList {
  const hard = Object.keys(quota.spec?.hard ?? {});
  const scopes = scopeSelectors(quota);
  let used: ResourceList = new Map();
  const matched = new Set<string>();
  for (const ev of evaluatorsFor(hard)) {
    const resources = ev.matchingResources(hard);
    for (const r of resources) {
      matched.add(r);
      if (!used.has(r)) used.set(r, quantity(0));
    }
    for (const obj of objectsOf(ev.kind)) {
      if (!scopes.every((s) => ev.matchesScope(s, obj))) continue;
      used = addLists(used, mask(ev.usage(obj, now), resources));
    }
  }
  return mask(used, matched);
}

function sameList(a: ResourceList, b: ResourceList): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.has(k) && cmpQuantity(v, b.get(k)!) === 0);
}

/**
 * The quota's next status, or undefined when it already holds it: `hard` from the spec, `used`
 * the previous figures overlaid with `usage` and trimmed to the hard resources.
 */
export function nextQuotaStatus(
  quota: ResourceQuota,
  usage: ResourceList,
): ResourceQuota["status"] | undefined {
  const hard = resourceList(quota.spec?.hard);
  const oldHard = quota.status?.hard;
  const oldUsed = quota.status?.used;
  let dirty = !oldHard || !oldUsed || !sameList(hard, resourceList(oldHard));
  const used: ResourceList = mask(resourceList(oldUsed), hard.keys());
  for (const [k, v] of usage) used.set(k, v);
  const trimmed = mask(used, hard.keys());
  dirty ||= !sameList(trimmed, resourceList(oldUsed));
  if (!dirty) return undefined;
  return { hard: listToJSON(hard), used: listToJSON(trimmed) };
}

export interface ResourceQuotaOptions {
  /** --resource-quota-sync-period (ms): how often every quota is recounted. */
  syncPeriod?: number;
}

/** The controller with its options; `resourceQuotaDescriptor` has upstream's defaults. */
export function newResourceQuotaDescriptor(opts: ResourceQuotaOptions = {}): ControllerDescriptor {
  return {
    name: "resourcequota",
    aliases: ["resourcequota-controller"],
    serviceAccount: "resourcequota-controller",
    async start(ctx, signal) {
      const { informers } = ctx;
      const quotas = informers.informer("v1/ResourceQuota");
      const api = ctx.client.resource("v1/ResourceQuota");
      /** Quotas to recount; other reconciles (status-only changes) do nothing. */
      const pending = new Set<string>();
      const tracked = new Map<string, Informer<KObject>>();
      const unregister: (() => void)[] = [];

      const c = controller({
        name: "resourcequota",
        informers,
        for: "v1/ResourceQuota",
        workers: ctx.options.concurrency.resourcequota ?? 5,
        clock: ctx.clock,
        onError: (err, req) => {
          pending.add(req.key);
          ctx.log.error(`Sync ${req.key} failed with : ${errorMessage(err)}`);
        },
        reconcile: async ({ key, namespace, name }) => {
          if (!pending.delete(key)) return;
          const quota = quotas.store.getByName(namespace, name);
          if (!quota) return;
          const kinds = evaluatorsFor(Object.keys(quota.spec?.hard ?? {})).map((e) => e.kind);
          for (const kind of kinds) {
            if (!(await track(kind).waitForSync(signal))) return;
          }
          const usage = calculateUsage(
            quota,
            (kind) => tracked.get(kind)?.store.listNamespace(namespace) ?? [],
            ctx.clock.now(),
          );
          const status = nextQuotaStatus(quota, usage);
          if (!status) return;
          try {
            await api.updateStatus({ ...structuredClone(quota), status });
          } catch (err) {
            if (isStatusError(err, "NotFound")) return;
            throw err;
          }
        },
      });

      const recount = (key: string) => {
        pending.add(key);
        c.queue.add(key);
      };
      const recountNamespace = (ns: string) => {
        for (const q of quotas.store.listNamespace(ns)) recount(`${ns}/${q.metadata?.name ?? ""}`);
      };

      /** The informer of a counted kind, watched for changes that alter usage. */
      const track = (kind: string): Informer<KObject> => {
        let inf = tracked.get(kind);
        if (inf) return inf;
        inf = informers.informer(kind);
        tracked.set(kind, inf);
        // Object counts change only by adds and deletes; the others also by updates.
        const ev = [podEvaluator, serviceEvaluator, pvcEvaluator].find((e) => e.kind === kind);
        const nsOf = (o: KObject) => o.metadata?.namespace ?? "";
        unregister.push(
          inf.addEventHandler({
            add: (o, initial) => {
              if (!initial) recountNamespace(nsOf(o));
            },
            update: (old, o) => {
              const now = ctx.clock.now();
              if (ev && !sameList(ev.usage(old, now), ev.usage(o, now))) recountNamespace(nsOf(o));
            },
            delete: (o) => recountNamespace(nsOf(o)),
          }),
        );
        return inf;
      };

      unregister.push(
        quotas.addEventHandler({
          add: (q) => recount(`${q.metadata?.namespace ?? ""}/${q.metadata?.name ?? ""}`),
          update: (old, q) => {
            const changed = !sameList(resourceList(old.spec?.hard), resourceList(q.spec?.hard));
            const scopes =
              JSON.stringify(scopeSelectors(old)) !== JSON.stringify(scopeSelectors(q));
            if (changed || scopes || !q.status?.used)
              recount(`${q.metadata?.namespace ?? ""}/${q.metadata?.name ?? ""}`);
          },
        }),
      );

      const period = opts.syncPeriod ?? RESOURCE_QUOTA_SYNC_PERIOD;
      let cancel = () => {};
      const resync = () => {
        for (const key of quotas.store.keys()) recount(key);
        cancel = ctx.clock.setTimer(period, resync);
      };
      cancel = ctx.clock.setTimer(period, resync);
      try {
        await c.start(signal);
      } finally {
        cancel();
        for (const u of unregister) u();
      }
    },
  };
}

export const resourceQuotaDescriptor = newResourceQuotaDescriptor();
