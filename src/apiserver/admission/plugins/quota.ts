/**
 * How pods count against ResourceQuotas (upstream's pod quota evaluator), shared by the
 * ResourceQuota admission plugin, which charges a pod when it is created, and the resource quota
 * controller, which recounts what a namespace uses.
 */
import type { Pod } from "kubernetes-types/core/v1.js";
import { podQOSClass } from "../../strategies/pod.js";
import type { Obj } from "../../strategies/util.js";
import { podTotals } from "./limit-ranger.js";
import { addLists, quantity, resourceList, type ResourceList } from "./util.js";

export interface ScopeSelector {
  scopeName: string;
  operator: string;
  values?: string[];
}

/** The quota resource names a pod's usage has (besides the hugepages and extended ones). */
export const POD_RESOURCES: ReadonlySet<string> = new Set([
  "cpu",
  "memory",
  "ephemeral-storage",
  "requests.cpu",
  "requests.memory",
  "requests.ephemeral-storage",
  "limits.cpu",
  "limits.memory",
  "limits.ephemeral-storage",
  "pods",
  "count/pods",
]);
export const POD_RESOURCE_PREFIXES = ["hugepages-", "requests.hugepages-"];

/** Upstream's IsExtendedResourceName: a domain-qualified name outside kubernetes.io. */
export function isExtendedResourceName(name: string): boolean {
  if (!name.includes("/") || name.includes("kubernetes.io/")) return false;
  if (name.startsWith("requests.")) return false;
  return true;
}

/** `requests.<extended resource>`, the only form quotas take extended resources in. */
export const isExtendedForQuota = (name: string) =>
  name.startsWith("requests.") && isExtendedResourceName(name.slice("requests.".length));

/** The usage one container's (or a pod's) requests and limits amount to. */
export function computeUsage(requests: ResourceList, limits: ResourceList): ResourceList {
  const out: ResourceList = new Map([["pods", quantity(1)]]);
  for (const r of ["cpu", "memory", "ephemeral-storage"]) {
    const req = requests.get(r);
    if (req) {
      out.set(r, req);
      out.set(`requests.${r}`, req);
    }
    const lim = limits.get(r);
    if (lim) out.set(`limits.${r}`, lim);
  }
  for (const [name, q] of requests) {
    if (name.startsWith("hugepages-")) {
      out.set(name, q);
      out.set(`requests.${name}`, q);
    }
    if (isExtendedResourceName(name)) out.set(`requests.${name}`, q);
  }
  return out;
}

/** Whether a pod still counts for compute resources (upstream's QuotaV1Pod). */
export function podCountsForCompute(pod: Pod, now: number): boolean {
  const phase = pod.status?.phase;
  if (phase === "Failed" || phase === "Succeeded") return false;
  const meta = pod.metadata;
  if (meta?.deletionTimestamp && typeof meta.deletionGracePeriodSeconds === "number") {
    if (now > Date.parse(meta.deletionTimestamp) + meta.deletionGracePeriodSeconds * 1000)
      return false;
  }
  return true;
}

/** What one pod uses (upstream's PodUsageFunc). */
export function podUsage(pod: Pod, now: number): ResourceList {
  const out: ResourceList = new Map([["count/pods", quantity(1)]]);
  if (!podCountsForCompute(pod, now)) return out;
  const requests = podTotals(pod, (c) => resourceList(c.resources?.requests));
  const limits = podTotals(pod, (c) => resourceList(c.resources?.limits));
  const overhead = resourceList(pod.spec?.overhead);
  const withOverhead = addLists(requests, overhead);
  for (const [k, v] of overhead) {
    const l = limits.get(k);
    if (l) limits.set(k, addLists(new Map([[k, l]]), new Map([[k, v]])).get(k)!);
  }
  return addLists(out, computeUsage(withOverhead, limits));
}

function crossNamespaceAffinity(pod: Pod): boolean {
  const affinity = pod.spec?.affinity;
  for (const a of [affinity?.podAffinity, affinity?.podAntiAffinity]) {
    if (!a) continue;
    const terms = [
      ...(a.requiredDuringSchedulingIgnoredDuringExecution ?? []),
      ...(a.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((w) => w.podAffinityTerm),
    ];
    if (terms.some((t) => (t.namespaces ?? []).length > 0 || t.namespaceSelector)) return true;
  }
  return false;
}

/** Whether a pod falls under a quota scope. */
export function podMatchesScope(scope: ScopeSelector, pod: Pod): boolean {
  const terminating =
    typeof pod.spec?.activeDeadlineSeconds === "number" && pod.spec.activeDeadlineSeconds >= 0;
  const bestEffort = podQOSClass((pod.spec ?? {}) as unknown as Obj) === "BestEffort";
  switch (scope.scopeName) {
    case "Terminating":
      return terminating;
    case "NotTerminating":
      return !terminating;
    case "BestEffort":
      return bestEffort;
    case "NotBestEffort":
      return !bestEffort;
    case "PriorityClass": {
      const pc = pod.spec?.priorityClassName ?? "";
      switch (scope.operator) {
        case "Exists":
          return pc !== "";
        case "In":
          return (scope.values ?? []).includes(pc);
        case "NotIn":
          return !(scope.values ?? []).includes(pc);
        default:
          // DoesNotExist: the label set always holds the PriorityClass key.
          return false;
      }
    }
    case "CrossNamespacePodAffinity":
      return crossNamespaceAffinity(pod);
    default:
      return false;
  }
}
