/**
 * The disruption controller (upstream's disruption): the status of every PodDisruptionBudget,
 * which the API server's eviction subresource reads to allow or refuse an eviction.
 *
 * For a budget and the pods its selector picks in its namespace:
 * - `expectedPods`: the number of pods selected, for an integer `minAvailable`; otherwise the sum
 *   of the scales of the pods' controllers (ReplicationController, ReplicaSet, the Deployment
 *   owning a ReplicaSet, StatefulSet, or any other kind through its `scale` subresource);
 * - `desiredHealthy`: `minAvailable`, or `expectedPods - maxUnavailable`, percentages rounded up
 *   against `expectedPods`;
 * - `currentHealthy`: the Ready pods not being deleted and not recently evicted;
 * - `disruptionsAllowed`: `currentHealthy - desiredHealthy`, never below 0, and 0 while no pod
 *   is expected;
 * - `disruptedPods`: the pods the eviction subresource has taken a disruption for, kept until
 *   the pod is deleted or two minutes have passed (then a `NotDeleted` warning on the pod);
 * - the `DisruptionAllowed` condition (`SufficientPods`/`InsufficientPods`), and `SyncFailed`
 *   with `disruptionsAllowed` 0 when the status cannot be computed, so that a broken budget
 *   never lets an eviction through.
 *
 * Pods left with a `DisruptionTarget` condition that were never deleted get it reset to False
 * after two minutes, as upstream.
 */

import type { Pod } from "kubernetes-types/core/v1.js";
import type { Condition, LabelSelector, OwnerReference } from "kubernetes-types/meta/v1.js";
import type { PodDisruptionBudget, PodDisruptionBudgetStatus } from "kubernetes-types/policy/v1.js";
import { findResourceByKind, resources } from "../api/resources.js";
import { isStatusError } from "../api/status.js";
import { controller } from "../client/controller.js";
import type { Client } from "../client/resources.js";
import type { KObject } from "../client/kinds.js";
import { errorMessage, type ControllerDescriptor } from "./context.js";
import {
  controllerRef,
  isPodReady,
  nowTime,
  scaledValue,
  selectorMatches,
  semanticEqual,
  watchOf,
} from "./util.js";

/** How long an eviction's disruption is counted before the pod must be gone (DeletionTimeout). */
export const DELETION_TIMEOUT = 2 * 60_000;
/** How long a DisruptionTarget condition may stay on a pod that was not deleted. */
export const STALE_POD_DISRUPTION_TIMEOUT = 2 * 60_000;

export const DISRUPTION_ALLOWED = "DisruptionAllowed";

/** A controller of pods and its scale, as the finders answer it. */
export interface ControllerScale {
  uid: string;
  scale: number;
}

/** Finds the scale of the controller `ref` names in `namespace`; undefined: not this kind. */
export type ScaleFinder = (
  ref: OwnerReference,
  namespace: string,
) => Promise<ControllerScale | undefined>;

function groupOf(apiVersion: string): string {
  const i = apiVersion.indexOf("/");
  return i < 0 ? "" : apiVersion.slice(0, i);
}

/** The pods a budget selects (a missing selector selects none, an empty one all). */
export function podsForPDB(pdb: PodDisruptionBudget, pods: Pod[]): Pod[] {
  const sel = pdb.spec?.selector;
  return pods.filter((p) => selectorMatches(sel, p.metadata?.labels));
}

/**
 * The sum of the scales of the pods' controllers, and the pods without a controller. Throws
 * "found no controllers for pod" when no finder knows a pod's controller.
 */
export async function expectedScale(
  pods: Pod[],
  finders: ScaleFinder[],
): Promise<{ expectedCount: number; unmanagedPods: string[] }> {
  const scales = new Map<string, number>();
  const unmanagedPods: string[] = [];
  for (const pod of pods) {
    const ref = controllerRef(pod);
    if (!ref) {
      unmanagedPods.push(pod.metadata?.name ?? "");
      continue;
    }
    if (scales.has(ref.uid)) continue;
    let found: ControllerScale | undefined;
    for (const finder of finders) {
      found = await finder(ref, pod.metadata?.namespace ?? "");
      if (found) break;
    }
    if (!found) throw new Error(`found no controllers for pod "${pod.metadata?.name ?? ""}"`);
    scales.set(found.uid, found.scale);
  }
  let expectedCount = 0;
  for (const s of scales.values()) expectedCount += s;
  return { expectedCount, unmanagedPods };
}

/** Upstream's getExpectedPodCount. */
export async function expectedPodCount(
  pdb: PodDisruptionBudget,
  pods: Pod[],
  finders: ScaleFinder[],
): Promise<{ expectedCount: number; desiredHealthy: number; unmanagedPods: string[] }> {
  const { maxUnavailable, minAvailable } = pdb.spec ?? {};
  if (maxUnavailable !== undefined && maxUnavailable !== null) {
    const { expectedCount, unmanagedPods } = await expectedScale(pods, finders);
    const max = scaledValue(maxUnavailable, expectedCount, true, 0);
    return { expectedCount, desiredHealthy: Math.max(0, expectedCount - max), unmanagedPods };
  }
  if (typeof minAvailable === "number")
    return { expectedCount: pods.length, desiredHealthy: minAvailable, unmanagedPods: [] };
  if (typeof minAvailable === "string") {
    const { expectedCount, unmanagedPods } = await expectedScale(pods, finders);
    return {
      expectedCount,
      desiredHealthy: scaledValue(minAvailable, expectedCount, true, 0),
      unmanagedPods,
    };
  }
  return { expectedCount: 0, desiredHealthy: 0, unmanagedPods: [] };
}

/**
 * The disrupted pods still awaited (evicted less than DELETION_TIMEOUT ago and not yet being
 * deleted), when to look again, and the pods that should have been deleted by now.
 */
export function buildDisruptedPodMap(
  pods: Pod[],
  pdb: PodDisruptionBudget,
  now: number,
): { disruptedPods: Record<string, string>; recheckAt?: number; notDeleted: Pod[] } {
  const old = pdb.status?.disruptedPods;
  const disruptedPods: Record<string, string> = {};
  const notDeleted: Pod[] = [];
  let recheckAt: number | undefined;
  if (!old) return { disruptedPods, notDeleted };
  for (const pod of pods) {
    if (pod.metadata?.deletionTimestamp) continue;
    const name = pod.metadata?.name ?? "";
    const at = old[name];
    if (at === undefined) continue;
    const expectedDeletion = Date.parse(at) + DELETION_TIMEOUT;
    if (expectedDeletion < now) notDeleted.push(pod);
    else {
      if (recheckAt === undefined || expectedDeletion < recheckAt) recheckAt = expectedDeletion;
      disruptedPods[name] = at;
    }
  }
  return recheckAt === undefined
    ? { disruptedPods, notDeleted }
    : { disruptedPods, recheckAt, notDeleted };
}

/** Ready pods that are neither being deleted nor recently evicted. */
export function countHealthyPods(
  pods: Pod[],
  disruptedPods: Record<string, string>,
  now: number,
): number {
  let healthy = 0;
  for (const pod of pods) {
    if (pod.metadata?.deletionTimestamp) continue;
    const at = disruptedPods[pod.metadata?.name ?? ""];
    if (at !== undefined && Date.parse(at) + DELETION_TIMEOUT > now) continue;
    if (isPodReady(pod)) healthy++;
  }
  return healthy;
}

/** apimeta.SetStatusCondition: a new or changed status moves lastTransitionTime to now. */
export function setCondition(
  conditions: Condition[],
  c: Omit<Condition, "lastTransitionTime">,
  now: number,
): Condition[] {
  const out = conditions.map((x) => ({ ...x }));
  const existing = out.find((x) => x.type === c.type);
  if (!existing) {
    out.push({ ...c, lastTransitionTime: nowTime(now) });
    return out;
  }
  if (existing.status !== c.status) existing.lastTransitionTime = nowTime(now);
  existing.status = c.status;
  existing.reason = c.reason;
  existing.message = c.message;
  if (c.observedGeneration !== undefined) existing.observedGeneration = c.observedGeneration;
  return out;
}

/** Whether the DisruptionAllowed condition agrees with the status (pdbhelper). */
export function conditionsAreUpToDate(pdb: PodDisruptionBudget): boolean {
  const cond = pdb.status?.conditions?.find((c) => c.type === DISRUPTION_ALLOWED);
  if (!cond) return false;
  if ((pdb.status?.observedGeneration ?? 0) !== (pdb.metadata?.generation ?? 0)) return false;
  if ((pdb.status?.disruptionsAllowed ?? 0) > 0)
    return cond.status === "True" && cond.reason === "SufficientPods";
  return cond.status === "False" && cond.reason === "InsufficientPods";
}

/**
 * The status a budget should have, or undefined when it already has it (upstream's
 * updatePdbStatus).
 */
export function nextPDBStatus(
  pdb: PodDisruptionBudget,
  counts: {
    currentHealthy: number;
    desiredHealthy: number;
    expectedCount: number;
    disruptedPods: Record<string, string>;
  },
  now: number,
): PodDisruptionBudgetStatus | undefined {
  const { currentHealthy, desiredHealthy, expectedCount, disruptedPods } = counts;
  let disruptionsAllowed = currentHealthy - desiredHealthy;
  if (expectedCount <= 0 || disruptionsAllowed <= 0) disruptionsAllowed = 0;
  const s = pdb.status;
  const generation = pdb.metadata?.generation ?? 0;
  if (
    (s?.currentHealthy ?? 0) === currentHealthy &&
    (s?.desiredHealthy ?? 0) === desiredHealthy &&
    (s?.expectedPods ?? 0) === expectedCount &&
    (s?.disruptionsAllowed ?? 0) === disruptionsAllowed &&
    semanticEqual(s?.disruptedPods, disruptedPods) &&
    (s?.observedGeneration ?? 0) === generation &&
    conditionsAreUpToDate(pdb)
  )
    return undefined;
  const allowed = disruptionsAllowed > 0;
  const status: PodDisruptionBudgetStatus = {
    currentHealthy,
    desiredHealthy,
    expectedPods: expectedCount,
    disruptionsAllowed,
    observedGeneration: generation,
    conditions: setCondition(
      s?.conditions ?? [],
      {
        type: DISRUPTION_ALLOWED,
        status: allowed ? "True" : "False",
        reason: allowed ? "SufficientPods" : "InsufficientPods",
        message: "",
        observedGeneration: generation,
      },
      now,
    ),
  };
  if (Object.keys(disruptedPods).length > 0) status.disruptedPods = disruptedPods;
  return status;
}

/** The status that forbids disruptions after a failed sync (upstream's failSafe). */
export function failSafeStatus(
  pdb: PodDisruptionBudget,
  message: string,
  now: number,
): PodDisruptionBudgetStatus {
  const status: PodDisruptionBudgetStatus = {
    ...structuredClone(
      pdb.status ?? {
        currentHealthy: 0,
        desiredHealthy: 0,
        disruptionsAllowed: 0,
        expectedPods: 0,
      },
    ),
    disruptionsAllowed: 0,
  };
  status.conditions = setCondition(
    status.conditions ?? [],
    {
      type: DISRUPTION_ALLOWED,
      status: "False",
      reason: "SyncFailed",
      message,
      observedGeneration: status.observedGeneration ?? 0,
    },
    now,
  );
  return status;
}

/** How Go's %v prints a *metav1.LabelSelector (in the UnmanagedPods event). */
export function goLabelSelector(sel: LabelSelector | undefined): string {
  if (!sel) return "nil";
  const labels = Object.keys(sel.matchLabels ?? {})
    .sort()
    .map((k) => `${k}: ${sel.matchLabels![k]},`)
    .join("");
  const exprs = (sel.matchExpressions ?? [])
    .map(
      (e) =>
        `LabelSelectorRequirement{Key:${e.key},Operator:${e.operator},Values:[${(e.values ?? []).join(" ")}],},`,
    )
    .join("");
  return `&LabelSelector{MatchLabels:map[string]string{${labels}},MatchExpressions:[]LabelSelectorRequirement{${exprs}},}`;
}

/**
 * When a pod's stale DisruptionTarget condition may be reset (ms from `now`; 0: at once), or
 * undefined when it has none to reset.
 */
export function staleDisruptionWait(pod: Pod, now: number): number | undefined {
  if (pod.metadata?.deletionTimestamp) return undefined;
  const c = pod.status?.conditions?.find((x) => x.type === "DisruptionTarget");
  if (!c || c.status !== "True") return undefined;
  const since = c.lastTransitionTime ? Date.parse(c.lastTransitionTime) : 0;
  return Math.max(0, since + STALE_POD_DISRUPTION_TIMEOUT - now);
}

type Scaled = KObject & { spec?: { replicas?: number } };

/** The caches the finders read controllers from. */
interface ScaledStore {
  getByName(namespace: string, name: string): Scaled | undefined;
}

interface Stores {
  rcs: ScaledStore;
  rss: ScaledStore;
  deployments: ScaledStore;
  statefulsets: ScaledStore;
}

/** Upstream's finders, in its order: RC, Deployment (via its RS), ReplicaSet, StatefulSet, scale. */
export function scaleFinders(stores: Stores, client?: Client): ScaleFinder[] {
  const fromStore = (
    store: ScaledStore,
    ref: OwnerReference,
    namespace: string,
  ): Scaled | undefined => {
    const obj = store.getByName(namespace, ref.name);
    return obj && obj.metadata?.uid === ref.uid ? obj : undefined;
  };
  const scale = (obj: Scaled): ControllerScale => ({
    uid: obj.metadata?.uid ?? "",
    scale: obj.spec?.replicas ?? 1,
  });
  const finders: ScaleFinder[] = [
    async (ref, ns) => {
      if (ref.kind !== "ReplicationController" || groupOf(ref.apiVersion) !== "") return undefined;
      const rc = fromStore(stores.rcs, ref, ns);
      return rc && scale(rc);
    },
    async (ref, ns) => {
      if (ref.kind !== "ReplicaSet" || !["apps", "extensions"].includes(groupOf(ref.apiVersion)))
        return undefined;
      const rs = fromStore(stores.rss, ref, ns);
      const owner = rs && controllerRef(rs);
      if (
        !owner ||
        owner.kind !== "Deployment" ||
        !["apps", "extensions"].includes(groupOf(owner.apiVersion))
      )
        return undefined;
      const d = fromStore(stores.deployments, owner, ns);
      return d && scale(d);
    },
    async (ref, ns) => {
      if (ref.kind !== "ReplicaSet" || !["apps", "extensions"].includes(groupOf(ref.apiVersion)))
        return undefined;
      const rs = fromStore(stores.rss, ref, ns);
      if (!rs || controllerRef(rs)?.kind === "Deployment") return undefined;
      return scale(rs);
    },
    async (ref, ns) => {
      if (ref.kind !== "StatefulSet" || groupOf(ref.apiVersion) !== "apps") return undefined;
      const ss = fromStore(stores.statefulsets, ref, ns);
      return ss && scale(ss);
    },
  ];
  if (client) {
    finders.push(async (ref, ns) => {
      const group = groupOf(ref.apiVersion);
      const version = ref.apiVersion.slice(group ? group.length + 1 : 0);
      const info =
        findResourceByKind(group, version, ref.kind) ??
        resources.find((r) => r.group === group && r.kind === ref.kind);
      if (!info) throw new Error(`no matches for kind "${ref.kind}" in group "${group}"`);
      const gr = group ? `${info.resource}.${group}` : info.resource;
      const handle = client.resourceFor(info, ns);
      try {
        const s = await handle.subresource<{
          metadata?: { uid?: string };
          spec?: { replicas?: number };
        }>("GET", ref.name, "scale");
        if (s.metadata?.uid !== ref.uid) return undefined;
        return { uid: ref.uid, scale: s.spec?.replicas ?? 0 };
      } catch (err) {
        if (!isStatusError(err, "NotFound")) throw err;
        if (!info.subresources.some((sub) => sub.subresource === "scale"))
          throw new Error(`${gr} does not implement the scale subresource`);
        return undefined;
      }
    });
  }
  return finders;
}

export const disruptionDescriptor: ControllerDescriptor = {
  name: "disruption",
  aliases: ["disruption-controller"],
  serviceAccount: "disruption-controller",
  async start(ctx, signal) {
    const { informers, client } = ctx;
    const recorder = ctx.recorder("controllermanager");
    const pdbs = informers.informer("policy/v1/PodDisruptionBudget");
    const pods = informers.informer("v1/Pod");
    const stores: Stores = {
      rcs: informers.informer("v1/ReplicationController").store,
      rss: informers.informer("apps/v1/ReplicaSet").store,
      deployments: informers.informer("apps/v1/Deployment").store,
      statefulsets: informers.informer("apps/v1/StatefulSet").store,
    };
    const finders = scaleFinders(stores, client);
    const api = client.resource("policy/v1/PodDisruptionBudget");
    const warned = new Map<string, string>();

    const pdbsOfPod = (pod: Pod): string[] => {
      const ns = pod.metadata?.namespace ?? "";
      const matching = pdbs.store
        .listNamespace(ns)
        .filter((pdb) => podsForPDB(pdb, [pod]).length > 0);
      const uid = pod.metadata?.uid ?? "";
      if (matching.length > 1 && warned.get(uid) !== pod.metadata?.resourceVersion) {
        warned.set(uid, pod.metadata?.resourceVersion ?? "");
        if (warned.size > 10_000) warned.clear();
        const msg = `Pod "${ns}"/"${pod.metadata?.name ?? ""}" matches multiple PodDisruptionBudgets.  Chose "${matching[0]!.metadata?.name ?? ""}" arbitrarily.`;
        ctx.log.info(msg);
        recorder.event(pod, "Warning", "MultiplePodDisruptionBudgets", msg);
      }
      return matching.map((pdb) => `${ns}/${pdb.metadata?.name ?? ""}`);
    };

    const trySync = async (pdb: PodDisruptionBudget): Promise<number | undefined> => {
      const ns = pdb.metadata?.namespace ?? "";
      const selected = podsForPDB(pdb, pods.store.listNamespace(ns));
      if (selected.length === 0) recorder.event(pdb, "Normal", "NoPods", "No matching pods found");
      let counts: Awaited<ReturnType<typeof expectedPodCount>>;
      try {
        counts = await expectedPodCount(pdb, selected, finders);
      } catch (err) {
        recorder.event(
          pdb,
          "Warning",
          "CalculateExpectedPodCountFailed",
          `Failed to calculate the number of expected pods: ${errorMessage(err)}`,
        );
        throw err;
      }
      if (counts.unmanagedPods.length > 0)
        recorder.event(
          pdb,
          "Warning",
          "UnmanagedPods",
          `Pods selected by this PodDisruptionBudget (selector: ${goLabelSelector(pdb.spec?.selector)}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set ".spec.minAvailable" field of the PDB to an integer value.`,
        );
      const now = ctx.clock.now();
      const { disruptedPods, recheckAt, notDeleted } = buildDisruptedPodMap(selected, pdb, now);
      for (const pod of notDeleted)
        recorder.event(
          pod,
          "Warning",
          "NotDeleted",
          `Pod was expected by PDB ${ns}/${ns} to be deleted but it wasn't`,
        );
      const currentHealthy = countHealthyPods(selected, disruptedPods, now);
      const status = nextPDBStatus(
        pdb,
        {
          currentHealthy,
          desiredHealthy: counts.desiredHealthy,
          expectedCount: counts.expectedCount,
          disruptedPods,
        },
        now,
      );
      if (status) await api.updateStatus({ ...structuredClone(pdb), status });
      return recheckAt === undefined ? undefined : recheckAt - now;
    };

    const c = controller({
      name: "disruption",
      informers,
      for: "policy/v1/PodDisruptionBudget",
      watches: [watchOf("v1/Pod", pdbsOfPod)],
      workers: 1,
      clock: ctx.clock,
      onError: (err, req) =>
        ctx.log.error(
          `Error syncing PodDisruptionBudget ${req.key}, requeuing: ${errorMessage(err)}`,
        ),
      reconcile: async ({ namespace, name }) => {
        const pdb = pdbs.store.getByName(namespace, name);
        if (!pdb) return;
        try {
          const recheck = await trySync(pdb);
          return recheck === undefined ? undefined : { requeueAfter: Math.max(1, recheck) };
        } catch (err) {
          if (isStatusError(err, "Conflict")) throw err;
          ctx.log.error(`Failed to sync PDB ${namespace}/${name}: ${errorMessage(err)}`);
          const status = failSafeStatus(pdb, errorMessage(err), ctx.clock.now());
          await api.updateStatus({ ...structuredClone(pdb), status });
          // Look again later: the controller's cache may not have caught up yet.
          return { requeueAfter: 30_000 };
        }
      },
    });

    const stale = controller({
      name: "disruption-stale-pods",
      informers,
      for: "v1/Pod",
      workers: 1,
      clock: ctx.clock,
      onError: (err, req) =>
        ctx.log.error(
          `error syncing Pod ${req.key} to clear DisruptionTarget condition, requeueing: ${errorMessage(err)}`,
        ),
      reconcile: async ({ namespace, name }) => {
        const pod = pods.store.getByName(namespace, name);
        if (!pod) return;
        const now = ctx.clock.now();
        const wait = staleDisruptionWait(pod, now);
        if (wait === undefined) return;
        if (wait > 0) return { requeueAfter: wait };
        const next = structuredClone(pod);
        next.status!.conditions = next.status!.conditions!.map((x) =>
          x.type === "DisruptionTarget"
            ? { type: "DisruptionTarget", status: "False", lastTransitionTime: nowTime(now) }
            : x,
        );
        try {
          await client.resource("v1/Pod", namespace).updateStatus(next);
        } catch (err) {
          if (!isStatusError(err, "NotFound")) throw err;
        }
      },
    });
    await Promise.all([c.start(signal), stale.start(signal)]);
  },
};
