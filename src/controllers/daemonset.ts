/**
 * The DaemonSet controller (upstream's pkg/controller/daemon): one pod of the template on every
 * node the DaemonSet should run on.
 *
 * A node runs a daemon pod when its name, labels (nodeSelector and required node affinity) and
 * taints admit the pod with the daemon tolerations added (not-ready/unreachable NoExecute,
 * disk/memory/pid-pressure and unschedulable NoSchedule, network-unavailable for host-network
 * pods); a pod keeps running while only NoSchedule taints are untolerated. Pods are created
 * unbound with a required node affinity on `metadata.name` of their node, so the scheduler binds
 * them. They carry `controller-revision-hash` (the hash of the template, which also names the
 * DaemonSet's current ControllerRevision) and `pod-template-generation` when the DaemonSet has
 * the `deprecated.daemonset.template.generation` annotation.
 *
 * Updates: RollingUpdate deletes old pods within maxUnavailable (the create loop then puts new
 * ones) or, with maxSurge, creates new pods beside old ones and deletes the old one once the new
 * one is available; OnDelete replaces only pods someone else deleted. Failed pods are deleted with
 * a per-node backoff (FailedDaemonPod events). Creations run in slow-start batches, at most 250
 * creations and deletions per sync, guarded by expectations.
 *
 * The pure parts (placement per node, rolling-update choices, status) take the DaemonSet, the
 * nodes and each node's daemon pods; the wiring claims pods and revisions and writes.
 */

import type { ControllerRevision, DaemonSet, DaemonSetStatus } from "kubernetes-types/apps/v1.js";
import type {
  Affinity,
  Node,
  Pod,
  PodSpec,
  PodTemplateSpec,
  Toleration,
} from "kubernetes-types/core/v1.js";
import { hasStatusCause, isStatusError } from "../api/status.js";
import { controller } from "../client/controller.js";
import type { Informer } from "../client/informer.js";
import { objectKey } from "../client/resources.js";
import { RequiredNodeAffinity, tolerationsTolerateTaint } from "../scheduler/selectors.js";
import type { ControllerContext, ControllerDescriptor } from "./context.js";
import { errorMessage } from "./context.js";
import { maxRevision, revisionData, templatePatch } from "./history.js";
import { claim, podFromTemplate } from "./podcontrol.js";
import {
  CONTROLLER_UID_INDEX,
  computeHash,
  controllerRef,
  controllerUIDIndexFunc,
  creationTime,
  Expectations,
  isPodAvailable,
  isPodReady,
  newControllerRef,
  omitEmpty,
  scaledValue,
  selectorIsEmpty,
  selectorMatches,
  slowStartBatch,
  watchOf,
} from "./util.js";

/** The pod and revision label holding the template hash (apps.DefaultDaemonSetUniqueLabelKey). */
export const DAEMONSET_HASH_LABEL = "controller-revision-hash";
/** The pod label of the template generation (extensions.DaemonSetTemplateGenerationKey). */
export const TEMPLATE_GENERATION_LABEL = "pod-template-generation";
/** The DaemonSet annotation holding its template generation. */
export const TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation";
/** Most creations or deletions one sync makes (the daemon controller's BurstReplicas). */
export const DAEMON_BURST_REPLICAS = 250;

type Writable<T> = { -readonly [K in keyof T]: T[K] };

const FAILED_BACKOFF_INITIAL = 1_000;
const FAILED_BACKOFF_MAX = 15 * 60_000;

/** Adds a toleration unless an equal one is there, replacing one that matches it (v1helper). */
function addOrUpdateToleration(spec: PodSpec, t: Toleration): void {
  const list = spec.tolerations ?? [];
  const same = (a: Toleration) =>
    (a.key ?? "") === (t.key ?? "") &&
    (a.effect ?? "") === (t.effect ?? "") &&
    (a.operator ?? "") === (t.operator ?? "") &&
    (a.value ?? "") === (t.value ?? "");
  const i = list.findIndex(same);
  if (i >= 0) {
    if ((list[i]!.tolerationSeconds ?? null) === (t.tolerationSeconds ?? null)) return;
    list[i] = { ...t };
  } else list.push({ ...t });
  spec.tolerations = list;
}

/** The tolerations every daemon pod gets (AddOrUpdateDaemonPodTolerations), in upstream's order. */
export function addDaemonPodTolerations(spec: PodSpec): void {
  const add = (key: string, effect: "NoExecute" | "NoSchedule") =>
    addOrUpdateToleration(spec, { key, operator: "Exists", effect });
  add("node.kubernetes.io/not-ready", "NoExecute");
  add("node.kubernetes.io/unreachable", "NoExecute");
  add("node.kubernetes.io/disk-pressure", "NoSchedule");
  add("node.kubernetes.io/memory-pressure", "NoSchedule");
  add("node.kubernetes.io/pid-pressure", "NoSchedule");
  add("node.kubernetes.io/unschedulable", "NoSchedule");
  if (spec.hostNetwork) add("node.kubernetes.io/network-unavailable", "NoSchedule");
}

/** The template generation from the DaemonSet's annotation, if it has a valid one. */
export function templateGeneration(ds: DaemonSet): number | undefined {
  const a = ds.metadata?.annotations?.[TEMPLATE_GENERATION_ANNOTATION];
  if (a === undefined || !/^[+-]?\d+$/.test(a)) return undefined;
  return Number(a);
}

/**
 * The template daemon pods are made from (CreatePodTemplate): the daemon tolerations, and the
 * generation and hash labels.
 */
export function createPodTemplate(
  template: PodTemplateSpec | undefined,
  generation: number | undefined,
  hash: string,
): PodTemplateSpec {
  const t = structuredClone(template ?? {});
  t.spec ??= { containers: [] };
  addDaemonPodTolerations(t.spec);
  t.metadata ??= {};
  t.metadata.labels ??= {};
  if (generation !== undefined) t.metadata.labels[TEMPLATE_GENERATION_LABEL] = String(generation);
  if (hash) t.metadata.labels[DAEMONSET_HASH_LABEL] = hash;
  return t;
}

/** Whether a pod is of the current template, by hash or generation label (IsPodUpdated). */
export function isPodUpdated(pod: Pod, hash: string, generation: number | undefined): boolean {
  const labels = pod.metadata?.labels ?? {};
  const templateMatches =
    generation !== undefined && labels[TEMPLATE_GENERATION_LABEL] === String(generation);
  return (hash !== "" && labels[DAEMONSET_HASH_LABEL] === hash) || templateMatches;
}

/**
 * Replaces the required node affinity with one term selecting `nodeName` by `metadata.name`
 * (ReplaceDaemonSetPodNodeNameNodeAffinity); preferred terms and pod affinities stay.
 */
export function replaceNodeNameAffinity(
  affinity: Affinity | undefined,
  nodeName: string,
): Affinity {
  const selector = {
    nodeSelectorTerms: [
      { matchFields: [{ key: "metadata.name", operator: "In", values: [nodeName] }] },
    ],
  };
  const a = structuredClone(affinity ?? {});
  a.nodeAffinity ??= {};
  a.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution = selector;
  return a;
}

/** The node a daemon pod is for: its nodeName, else its metadata.name affinity (GetTargetNodeName). */
export function targetNodeName(pod: Pod): string | undefined {
  if (pod.spec?.nodeName) return pod.spec.nodeName;
  const terms =
    pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution
      ?.nodeSelectorTerms ?? [];
  for (const term of terms)
    for (const f of term.matchFields ?? [])
      if (f.key === "metadata.name" && f.operator === "In")
        return f.values?.length === 1 ? f.values[0] : undefined;
  return undefined;
}

/**
 * Whether the DaemonSet should run a pod on `node` (shouldRun) and whether a pod already there
 * may stay (shouldContinueRunning), as NodeShouldRunDaemonPod.
 */
export function nodeShouldRunDaemonPod(
  node: Node,
  ds: DaemonSet,
): { shouldRun: boolean; shouldContinueRunning: boolean } {
  const name = node.metadata?.name ?? "";
  const templateNode = ds.spec?.template?.spec?.nodeName;
  if (templateNode && templateNode !== name)
    return { shouldRun: false, shouldContinueRunning: false };
  const spec = structuredClone(ds.spec?.template?.spec ?? { containers: [] });
  spec.nodeName = name;
  addDaemonPodTolerations(spec);
  const pod: Pod = { metadata: { ...(ds.spec?.template?.metadata ?? {}) }, spec };
  if (!new RequiredNodeAffinity(pod).match(node))
    return { shouldRun: false, shouldContinueRunning: false };
  let fitsTaints = true;
  let fitsNoExecute = true;
  for (const taint of node.spec?.taints ?? []) {
    if (taint.effect !== "NoSchedule" && taint.effect !== "NoExecute") continue;
    if (tolerationsTolerateTaint(spec.tolerations, taint)) continue;
    fitsTaints = false;
    if (taint.effect === "NoExecute") fitsNoExecute = false;
  }
  if (!fitsTaints) return { shouldRun: false, shouldContinueRunning: fitsNoExecute };
  return { shouldRun: true, shouldContinueRunning: true };
}

/** Scheduled pods first, then oldest first, ties by name (podByCreationTimestampAndPhase). */
export function byCreationAndPhase(a: Pod, b: Pod): number {
  const an = a.spec?.nodeName ? 0 : 1;
  const bn = b.spec?.nodeName ? 0 : 1;
  if (an !== bn) return an - bn;
  const d = creationTime(a) - creationTime(b);
  if (d !== 0) return d;
  const x = a.metadata?.name ?? "";
  const y = b.metadata?.name ?? "";
  return x < y ? -1 : x > y ? 1 : 0;
}

type RollingUpdate = NonNullable<NonNullable<DaemonSet["spec"]>["updateStrategy"]>["rollingUpdate"];

function rollingUpdateOf(ds: DaemonSet): RollingUpdate | undefined {
  const us = ds.spec?.updateStrategy;
  return us?.type === "RollingUpdate" || us?.type === undefined ? us?.rollingUpdate : undefined;
}

/** maxSurge scaled against `n` nodes, rounding up; 0 unless a RollingUpdate asks (SurgeCount). */
export function surgeCount(ds: DaemonSet, n: number): number {
  const ru = rollingUpdateOf(ds);
  if (ru?.maxSurge === undefined) return 0;
  return scaledValue(ru.maxSurge, n, true, 0);
}

/** maxUnavailable scaled against `n` nodes, rounding up (UnavailableCount). */
export function unavailableCount(ds: DaemonSet, n: number): number {
  const ru = rollingUpdateOf(ds);
  if (!ru) return 0;
  return scaledValue(ru.maxUnavailable, n, true, 0);
}

export function allowsSurge(ds: DaemonSet): boolean {
  try {
    return surgeCount(ds, 1) !== 0;
  } catch {
    return false;
  }
}

/** What one node needs (podsShouldBeOnNode), before the failed-pod backoff is applied. */
export interface NodeDecision {
  /** A pod should be created on the node. */
  create: boolean;
  /** Pods to delete (excess, misplaced, replaced). */
  delete: Pod[];
  /** Failed pods to delete, each with a FailedDaemonPod event, unless backing off. */
  failed: Pod[];
  /** Succeeded pods to delete, each with a SucceededDaemonPod event. */
  succeeded: Pod[];
}

/**
 * The pods to create and delete on one node (podsShouldBeOnNode). `daemonPods` are the
 * DaemonSet's pods targeting the node; `failedDeletable` says whether a failed pod may be
 * deleted now (the caller's backoff) — a failed pod in backoff is left alone.
 */
export function podsShouldBeOnNode(
  node: Node,
  daemonPods: Pod[] | undefined,
  ds: DaemonSet,
  hash: string,
  now: number,
  failedDeletable: (pod: Pod) => boolean = () => true,
): NodeDecision {
  const out: NodeDecision = { create: false, delete: [], failed: [], succeeded: [] };
  const { shouldRun, shouldContinueRunning } = nodeShouldRunDaemonPod(node, ds);
  const exists = daemonPods !== undefined && daemonPods.length > 0;
  if (shouldRun && !exists) {
    out.create = true;
    return out;
  }
  if (shouldContinueRunning) {
    const running: Pod[] = [];
    for (const pod of daemonPods ?? []) {
      if (pod.metadata?.deletionTimestamp) continue;
      const phase = pod.status?.phase;
      if (phase === "Failed") {
        if (failedDeletable(pod)) out.failed.push(pod);
      } else if (phase === "Succeeded") out.succeeded.push(pod);
      else running.push(pod);
    }
    running.sort(byCreationAndPhase);
    if (!allowsSurge(ds)) {
      out.delete.push(...running.slice(1));
      return out;
    }
    if (running.length <= 1) {
      if (running.length === 0 && shouldRun) out.create = true;
      return out;
    }
    let oldestNew: Pod | undefined;
    let oldestOld: Pod | undefined;
    for (const pod of running) {
      if (pod.metadata?.labels?.[DAEMONSET_HASH_LABEL] === hash) {
        if (!oldestNew) {
          oldestNew = pod;
          continue;
        }
      } else if (!oldestOld) {
        oldestOld = pod;
        continue;
      }
      out.delete.push(pod);
    }
    if (oldestNew && oldestOld) {
      if (!isPodReady(oldestOld)) out.delete.push(oldestOld);
      else if (isPodAvailable(oldestNew, ds.spec?.minReadySeconds ?? 0, now))
        out.delete.push(oldestOld);
    }
    return out;
  }
  if (exists)
    for (const pod of daemonPods) if (!pod.metadata?.deletionTimestamp) out.delete.push(pod);
  return out;
}

/** Unscheduled daemon pods aimed at nodes that do not exist (getUnscheduledPodsWithoutNode). */
export function unscheduledPodsWithoutNode(
  nodes: Node[],
  nodeToDaemonPods: Map<string, Pod[]>,
): Pod[] {
  const names = new Set(nodes.map((n) => n.metadata?.name ?? ""));
  const out: Pod[] = [];
  for (const [node, pods] of nodeToDaemonPods) {
    if (names.has(node)) continue;
    for (const pod of pods) if (!pod.spec?.nodeName) out.push(pod);
  }
  return out;
}

/** One node's new and old pod, or `ok: false` with more than one of either (findUpdatedPodsOnNode). */
function findUpdatedPodsOnNode(
  ds: DaemonSet,
  pods: Pod[],
  hash: string,
): { newPod?: Pod; oldPod?: Pod; ok: boolean } {
  let newPod: Pod | undefined;
  let oldPod: Pod | undefined;
  const generation = templateGeneration(ds);
  for (const pod of pods) {
    if (pod.metadata?.deletionTimestamp) continue;
    if (isPodUpdated(pod, hash, generation)) {
      if (newPod) return { ok: false };
      newPod = pod;
    } else {
      if (oldPod) return { ok: false };
      oldPod = pod;
    }
  }
  return { newPod, oldPod, ok: true };
}

/**
 * What a RollingUpdate does this sync (rollingUpdate): without surge, the old pods to delete
 * within maxUnavailable (unavailable old pods always); with surge, the nodes to get a new pod
 * beside their old one within maxSurge and the old pods whose new pod is available.
 */
export function rollingUpdateDecisions(
  ds: DaemonSet,
  nodes: Node[],
  nodeToDaemonPods: Map<string, Pod[]>,
  hash: string,
  now: number,
): { podsToDelete: string[]; nodesToCreate: string[] } {
  const byNode = new Map(nodeToDaemonPods);
  const nodeByName = new Map(nodes.map((n) => [n.metadata?.name ?? "", n]));
  let desired = 0;
  for (const node of nodes) {
    if (!nodeShouldRunDaemonPod(node, ds).shouldRun) continue;
    desired++;
    const name = node.metadata?.name ?? "";
    if (!byNode.has(name)) byNode.set(name, []);
  }
  let maxUnavailable = unavailableCount(ds, desired);
  const maxSurge = surgeCount(ds, desired);
  if (desired > 0 && maxUnavailable === 0 && maxSurge === 0) maxUnavailable = 1;
  const minReady = ds.spec?.minReadySeconds ?? 0;
  const available = (p: Pod) => isPodAvailable(p, minReady, now);

  if (maxSurge === 0) {
    let numUnavailable = 0;
    const replacements: string[] = [];
    const candidates: string[] = [];
    for (const pods of byNode.values()) {
      const { newPod, oldPod, ok } = findUpdatedPodsOnNode(ds, pods, hash);
      if (!ok) {
        numUnavailable++;
        continue;
      }
      if ((!oldPod && !newPod) || (oldPod && newPod)) numUnavailable++;
      else if (newPod) {
        if (!available(newPod)) numUnavailable++;
      } else if (oldPod) {
        if (!available(oldPod)) {
          replacements.push(oldPod.metadata!.name!);
          numUnavailable++;
        } else if (numUnavailable < maxUnavailable) candidates.push(oldPod.metadata!.name!);
      }
    }
    const remaining = Math.min(Math.max(0, maxUnavailable - numUnavailable), candidates.length);
    return {
      podsToDelete: [...replacements, ...candidates.slice(0, remaining)],
      nodesToCreate: [],
    };
  }

  const podsToDelete: string[] = [];
  const shouldNotRun: string[] = [];
  const candidateNodes: string[] = [];
  const allowedNodes: string[] = [];
  let numSurge = 0;
  let numAvailable = 0;
  for (const [nodeName, pods] of byNode) {
    const { newPod, oldPod, ok } = findUpdatedPodsOnNode(ds, pods, hash);
    if (!ok) {
      numSurge++;
      continue;
    }
    if (oldPod) {
      if (available(oldPod)) numAvailable++;
    } else if (newPod && available(newPod)) numAvailable++;
    if (!oldPod) continue;
    if (!newPod) {
      const node = nodeByName.get(nodeName);
      const shouldRun = node ? nodeShouldRunDaemonPod(node, ds).shouldRun : false;
      if (!available(oldPod)) {
        if (!shouldRun) podsToDelete.push(oldPod.metadata!.name!);
        else allowedNodes.push(nodeName);
      } else if (!shouldRun) shouldNotRun.push(oldPod.metadata!.name!);
      else if (numSurge < maxSurge) candidateNodes.push(nodeName);
      continue;
    }
    if (!available(newPod)) {
      numSurge++;
      continue;
    }
    podsToDelete.push(oldPod.metadata!.name!);
  }
  const deletable = Math.min(numAvailable - desired, shouldNotRun.length);
  if (deletable > 0) podsToDelete.push(...shouldNotRun.slice(0, deletable));
  const remaining = Math.min(Math.max(0, maxSurge - numSurge), candidateNodes.length);
  return { podsToDelete, nodesToCreate: [...allowedNodes, ...candidateNodes.slice(0, remaining)] };
}

/** The counts of a DaemonSet's status (updateDaemonSetStatus). */
export function calculateDaemonStatus(
  ds: DaemonSet,
  nodes: Node[],
  nodeToDaemonPods: Map<string, Pod[]>,
  hash: string,
  now: number,
): Required<
  Pick<
    DaemonSetStatus,
    | "desiredNumberScheduled"
    | "currentNumberScheduled"
    | "numberMisscheduled"
    | "numberReady"
    | "updatedNumberScheduled"
    | "numberAvailable"
    | "numberUnavailable"
  >
> {
  let desired = 0;
  let current = 0;
  let misscheduled = 0;
  let ready = 0;
  let updated = 0;
  let availableCount = 0;
  const generation = templateGeneration(ds);
  for (const node of nodes) {
    const { shouldRun } = nodeShouldRunDaemonPod(node, ds);
    const pods = nodeToDaemonPods.get(node.metadata?.name ?? "") ?? [];
    const scheduled = pods.length > 0;
    if (shouldRun) {
      desired++;
      if (!scheduled) continue;
      current++;
      const pod = [...pods].sort(byCreationAndPhase)[0]!;
      if (isPodReady(pod)) {
        ready++;
        if (isPodAvailable(pod, ds.spec?.minReadySeconds ?? 0, now)) availableCount++;
      }
      if (isPodUpdated(pod, hash, generation)) updated++;
    } else if (scheduled) misscheduled++;
  }
  return {
    desiredNumberScheduled: desired,
    currentNumberScheduled: current,
    numberMisscheduled: misscheduled,
    numberReady: ready,
    updatedNumberScheduled: updated,
    numberAvailable: availableCount,
    numberUnavailable: desired - availableCount,
  };
}

/**
 * The old revisions to delete to keep `limit` (cleanupHistory): lowest revision first, never
 * one whose hash a pod still carries.
 */
export function historiesToDelete(
  old: ControllerRevision[],
  limit: number,
  liveHashes: Set<string>,
): ControllerRevision[] {
  let toKill = old.length - limit;
  if (toKill <= 0) return [];
  const out: ControllerRevision[] = [];
  for (const h of [...old].sort((a, b) => a.revision - b.revision)) {
    if (toKill <= 0) break;
    if (liveHashes.has(h.metadata?.labels?.[DAEMONSET_HASH_LABEL] ?? "")) continue;
    out.push(h);
    toKill--;
  }
  return out;
}

/** Whether a revision holds the DaemonSet's current template (Match). */
export function revisionMatches(ds: DaemonSet, rev: ControllerRevision): boolean {
  return templatePatch(ds) === revisionData(rev);
}

/** Exponential per-key backoff (flowcontrol.Backoff) for deleting failed daemon pods. */
class Backoff {
  private readonly entries = new Map<string, { delay: number; last: number }>();
  constructor(
    private readonly initial: number,
    private readonly max: number,
  ) {}
  inBackoffSinceUpdate(key: string, now: number): boolean {
    const e = this.entries.get(key);
    return !!e && now - e.last < e.delay;
  }
  get(key: string): number {
    return this.entries.get(key)?.delay ?? 0;
  }
  next(key: string, now: number): void {
    const e = this.entries.get(key);
    if (!e || now - e.last > 2 * this.max)
      this.entries.set(key, { delay: this.initial, last: now });
    else this.entries.set(key, { delay: Math.min(e.delay * 2, this.max), last: now });
  }
}

export function daemonSetController(ctx: ControllerContext) {
  const { client, informers, clock } = ctx;
  const recorder = ctx.recorder("daemonset-controller");
  const expectations = new Expectations(() => clock.now());
  const backoff = new Backoff(FAILED_BACKOFF_INITIAL, FAILED_BACKOFF_MAX);
  const daemonSets = informers.informer("apps/v1/DaemonSet");
  const nodes = informers.informer("v1/Node");
  const pods = informers.informer("v1/Pod", {
    indexers: { [CONTROLLER_UID_INDEX]: controllerUIDIndexFunc },
  }) as Informer<Pod>;
  const revisions = informers.informer("apps/v1/ControllerRevision", {
    indexers: { [CONTROLLER_UID_INDEX]: controllerUIDIndexFunc },
  }) as Informer<ControllerRevision>;
  const dsClient = client.resource("apps/v1/DaemonSet");
  const podsClient = client.resource("v1/Pod");
  const revClient = client.resource("apps/v1/ControllerRevision");

  const createKey = (key: string) => `${key}#create`;
  const deleteKey = (key: string) => `${key}#delete`;
  const satisfied = (key: string) =>
    expectations.satisfied(createKey(key)) && expectations.satisfied(deleteKey(key));

  const ownerOf = (obj: Pod): string | undefined => {
    const ref = controllerRef(obj);
    if (!ref || ref.kind !== "DaemonSet") return undefined;
    const ds = daemonSets.store.getByName(obj.metadata?.namespace ?? "", ref.name);
    return ds && ds.metadata?.uid === ref.uid ? objectKey(ds) : undefined;
  };

  const orphanOwners = (pod: Pod): string[] => {
    if (controllerRef(pod)) return [];
    return daemonSets.store
      .listNamespace(pod.metadata?.namespace ?? "")
      .filter((ds) => selectorMatches(ds.spec?.selector, pod.metadata?.labels))
      .map(objectKey);
  };

  /** The DaemonSet's pods (claimed: adopting orphans, releasing strays), by target node. */
  async function nodesToDaemonPods(
    ds: DaemonSet,
    includeDeletedTerminal: boolean,
  ): Promise<Map<string, Pod[]>> {
    const ns = ds.metadata!.namespace!;
    const candidates = [
      ...pods.store.byIndex(CONTROLLER_UID_INDEX, ds.metadata!.uid!),
      ...pods.store.byIndex(CONTROLLER_UID_INDEX, "").filter((p) => p.metadata?.namespace === ns),
    ];
    const claimed = await claim<Pod>({
      owner: ds,
      ownerRef: newControllerRef(ds, "apps/v1", "DaemonSet"),
      candidates,
      matches: (p) => selectorMatches(ds.spec?.selector, p.metadata?.labels),
      client: podsClient.namespace(ns),
      getOwner: () => dsClient.namespace(ns).get(ds.metadata!.name!),
    });
    const out = new Map<string, Pod[]>();
    for (const pod of claimed) {
      const phase = pod.status?.phase;
      if (
        !includeDeletedTerminal &&
        (phase === "Succeeded" || phase === "Failed") &&
        pod.metadata?.deletionTimestamp
      )
        continue;
      const node = targetNodeName(pod);
      if (node === undefined) continue;
      const list = out.get(node) ?? [];
      list.push(pod);
      out.set(node, list);
    }
    return out;
  }

  /** Creates pods on `nodesNeeding` and deletes `podsToDelete` (syncNodes). */
  async function syncNodes(
    ds: DaemonSet,
    key: string,
    podsToDelete: string[],
    nodesNeeding: string[],
    hash: string,
  ): Promise<void> {
    const ns = ds.metadata!.namespace!;
    const createCount = Math.min(nodesNeeding.length, DAEMON_BURST_REPLICAS);
    const deletes = podsToDelete.slice(0, DAEMON_BURST_REPLICAS);
    expectations.expectCreations(createKey(key), createCount);
    expectations.expectDeletions(
      deleteKey(key),
      deletes.map((n) => `${ns}/${n}`),
    );
    const errors: unknown[] = [];
    const template = createPodTemplate(ds.spec?.template, templateGeneration(ds), hash);
    const ref = newControllerRef(ds, "apps/v1", "DaemonSet");
    const base = podFromTemplate(template, ns, ds.metadata!.name!, ref);
    let attempts = 0;
    const { error } = await slowStartBatch(createCount, 1, async (i) => {
      attempts++;
      const pod = structuredClone(base);
      pod.spec!.affinity = replaceNodeNameAffinity(pod.spec!.affinity, nodesNeeding[i]!);
      try {
        const created = await podsClient.namespace(ns).create(pod);
        recorder.event(ds, "Normal", "SuccessfulCreate", `Created pod: ${created.metadata?.name}`);
      } catch (err) {
        if (hasStatusCause(err, "NamespaceTerminating")) return;
        recorder.event(ds, "Warning", "FailedCreate", `Error creating: ${errorMessage(err)}`);
        expectations.creationObserved(createKey(key));
        throw err;
      }
    });
    if (error !== undefined) {
      errors.push(error);
      // Creations never attempted are not awaited.
      for (let i = attempts; i < createCount; i++) expectations.creationObserved(createKey(key));
    }
    await Promise.all(
      deletes.map(async (name) => {
        try {
          await podsClient.namespace(ns).delete(name);
          recorder.event(ds, "Normal", "SuccessfulDelete", `Deleted pod: ${name}`);
        } catch (err) {
          expectations.deletionObserved(deleteKey(key), `${ns}/${name}`);
          if (isStatusError(err, "NotFound")) return;
          recorder.event(ds, "Warning", "FailedDelete", `Error deleting: ${errorMessage(err)}`);
          errors.push(err);
        }
      }),
    );
    if (errors.length) throw errors[0];
  }

  /** Finds or creates the current revision; the others are old (constructHistory). */
  async function constructHistory(
    ds: DaemonSet,
  ): Promise<{ cur: ControllerRevision; old: ControllerRevision[] }> {
    const ns = ds.metadata!.namespace!;
    const candidates = [
      ...revisions.store.byIndex(CONTROLLER_UID_INDEX, ds.metadata!.uid!),
      ...revisions.store
        .byIndex(CONTROLLER_UID_INDEX, "")
        .filter((r) => r.metadata?.namespace === ns),
    ];
    const histories = await claim<ControllerRevision>({
      owner: ds,
      ownerRef: newControllerRef(ds, "apps/v1", "DaemonSet"),
      candidates,
      matches: (r) => selectorMatches(ds.spec?.selector, r.metadata?.labels),
      client: revClient.namespace(ns),
      getOwner: () => dsClient.namespace(ns).get(ds.metadata!.name!),
    });
    const current: ControllerRevision[] = [];
    const old: ControllerRevision[] = [];
    for (let h of histories) {
      if (h.metadata?.labels?.[DAEMONSET_HASH_LABEL] === undefined) {
        const copy = structuredClone(h);
        copy.metadata!.labels = {
          ...(copy.metadata!.labels ?? {}),
          [DAEMONSET_HASH_LABEL]: copy.metadata!.name!,
        };
        h = await revClient.namespace(ns).update(copy);
      }
      (revisionMatches(ds, h) ? current : old).push(h);
    }
    const currRevision = maxRevision(old) + 1;
    if (current.length === 0) return { cur: await snapshot(ds, currRevision), old };
    let cur = current.reduce((keep, h) => (h.revision >= keep.revision ? h : keep), current[0]!);
    if (current.length > 1) {
      const keepHash = cur.metadata?.labels?.[DAEMONSET_HASH_LABEL] ?? "";
      for (const pods of (await nodesToDaemonPods(ds, true)).values())
        for (const pod of pods)
          if (pod.metadata?.labels?.[DAEMONSET_HASH_LABEL] !== keepHash)
            await podsClient.namespace(ns).patch(pod.metadata!.name!, "merge", {
              metadata: { labels: { [DAEMONSET_HASH_LABEL]: keepHash } },
            });
      for (const h of current)
        if (h.metadata?.name !== cur.metadata?.name)
          await revClient.namespace(ns).delete(h.metadata!.name!);
    }
    if (cur.revision < currRevision) {
      const copy = structuredClone(cur);
      copy.revision = currRevision;
      cur = await revClient.namespace(ns).update(copy);
    }
    return { cur, old };
  }

  /** Records the current template as a new revision (snapshot). */
  async function snapshot(ds: DaemonSet, revision: number): Promise<ControllerRevision> {
    const ns = ds.metadata!.namespace!;
    const hash = computeHash(ds.spec?.template, ds.status?.collisionCount);
    const name = `${ds.metadata!.name}-${hash}`;
    const history: ControllerRevision = {
      apiVersion: "apps/v1",
      kind: "ControllerRevision",
      metadata: {
        name,
        namespace: ns,
        labels: { ...(ds.spec?.template?.metadata?.labels ?? {}), [DAEMONSET_HASH_LABEL]: hash },
        ownerReferences: [newControllerRef(ds, "apps/v1", "DaemonSet")],
      },
      data: JSON.parse(templatePatch(ds)) as object,
      revision,
    };
    if (ds.metadata?.annotations) history.metadata!.annotations = { ...ds.metadata.annotations };
    try {
      return await revClient.namespace(ns).create(history);
    } catch (err) {
      if (!isStatusError(err, "AlreadyExists")) throw err;
      const existing = await revClient.namespace(ns).get(name);
      if (revisionMatches(ds, existing)) return existing;
      const fresh = await dsClient.namespace(ns).get(ds.metadata!.name!);
      if ((fresh.status?.collisionCount ?? null) !== (ds.status?.collisionCount ?? null))
        throw new Error(
          `found a stale collision count (${ds.status?.collisionCount}, expected ${fresh.status?.collisionCount}) of DaemonSet "${ds.metadata!.name}" while processing; will retry until it is updated`,
        );
      const bumped: Writable<DaemonSet> = structuredClone(fresh);
      bumped.status = { ...fresh.status!, collisionCount: (fresh.status?.collisionCount ?? 0) + 1 };
      await dsClient.namespace(ns).updateStatus(bumped);
      throw err;
    }
  }

  async function cleanupHistory(ds: DaemonSet, old: ControllerRevision[]): Promise<void> {
    const limit = ds.spec?.revisionHistoryLimit ?? 10;
    if (old.length <= limit) return;
    const live = new Set<string>();
    for (const list of (await nodesToDaemonPods(ds, true)).values())
      for (const pod of list) {
        const h = pod.metadata?.labels?.[DAEMONSET_HASH_LABEL];
        if (h) live.add(h);
      }
    for (const h of historiesToDelete(old, limit, live))
      await revClient.namespace(ds.metadata!.namespace!).delete(h.metadata!.name!);
  }

  /** Creates and deletes pods so each eligible node runs one (manage). */
  async function manage(
    ds: DaemonSet,
    key: string,
    nodeList: Node[],
    hash: string,
  ): Promise<number | undefined> {
    const byNode = await nodesToDaemonPods(ds, false);
    const now = clock.now();
    const needing: string[] = [];
    const toDelete: string[] = [];
    let retryAfter: number | undefined;
    for (const node of nodeList) {
      const nodeName = node.metadata?.name ?? "";
      const backoffKey = `${ds.metadata?.uid}/${ds.status?.observedGeneration ?? 0}/${nodeName}`;
      const d = podsShouldBeOnNode(node, byNode.get(nodeName), ds, hash, now, () => {
        if (backoff.inBackoffSinceUpdate(backoffKey, now)) {
          const delay = backoff.get(backoffKey);
          retryAfter = retryAfter === undefined ? delay : Math.min(retryAfter, delay);
          return false;
        }
        backoff.next(backoffKey, now);
        return true;
      });
      if (d.create) needing.push(nodeName);
      for (const pod of d.failed) {
        recorder.event(
          ds,
          "Warning",
          "FailedDaemonPod",
          `Found failed daemon pod ${pod.metadata?.namespace}/${pod.metadata?.name} on node ${nodeName}, will try to kill it`,
        );
        toDelete.push(pod.metadata!.name!);
      }
      for (const pod of d.succeeded) {
        recorder.event(
          ds,
          "Normal",
          "SucceededDaemonPod",
          `Found succeeded daemon pod ${pod.metadata?.namespace}/${pod.metadata?.name} on node ${nodeName}, will try to delete it`,
        );
        toDelete.push(pod.metadata!.name!);
      }
      for (const pod of d.delete) toDelete.push(pod.metadata!.name!);
    }
    for (const pod of unscheduledPodsWithoutNode(nodeList, byNode))
      toDelete.push(pod.metadata!.name!);
    await syncNodes(ds, key, toDelete, needing, hash);
    return retryAfter;
  }

  async function storeStatus(
    ds: DaemonSet,
    nodeList: Node[],
    hash: string,
    updateObservedGeneration: boolean,
  ): Promise<{ ready: number; available: number }> {
    const counts = calculateDaemonStatus(
      ds,
      nodeList,
      await nodesToDaemonPods(ds, false),
      hash,
      clock.now(),
    );
    const s: DaemonSetStatus = ds.status ?? ({} as DaemonSetStatus);
    const unchanged =
      (s.desiredNumberScheduled ?? 0) === counts.desiredNumberScheduled &&
      (s.currentNumberScheduled ?? 0) === counts.currentNumberScheduled &&
      (s.numberMisscheduled ?? 0) === counts.numberMisscheduled &&
      (s.numberReady ?? 0) === counts.numberReady &&
      (s.updatedNumberScheduled ?? 0) === counts.updatedNumberScheduled &&
      (s.numberAvailable ?? 0) === counts.numberAvailable &&
      (s.numberUnavailable ?? 0) === counts.numberUnavailable &&
      (s.observedGeneration ?? 0) >= (ds.metadata?.generation ?? 0);
    const result = { ready: counts.numberReady, available: counts.numberAvailable };
    if (unchanged) return result;
    let toUpdate: Writable<DaemonSet> = structuredClone(ds);
    for (let attempt = 0; ; attempt++) {
      const status: Writable<DaemonSetStatus> = {
        ...(toUpdate.status ?? {}),
        ...counts,
      } as DaemonSetStatus;
      if (updateObservedGeneration) status.observedGeneration = ds.metadata?.generation ?? 0;
      toUpdate.status = omitEmpty(status, [
        "currentNumberScheduled",
        "numberMisscheduled",
        "desiredNumberScheduled",
        "numberReady",
        "collisionCount",
      ]);
      try {
        await dsClient.updateStatus(toUpdate);
        return result;
      } catch (err) {
        if (attempt >= 1 || isStatusError(err, "NotFound")) throw err;
        toUpdate = await dsClient.namespace(ds.metadata!.namespace!).get(ds.metadata!.name!);
      }
    }
  }

  const c = controller({
    name: "daemonset",
    informers,
    for: "apps/v1/DaemonSet",
    owns: ["v1/Pod", "apps/v1/ControllerRevision"],
    // Nodes are handled below (by what changed); listing them here makes the workers wait for
    // the node cache.
    watches: [watchOf("v1/Pod", orphanOwners), watchOf("v1/Node", () => [])],
    workers: ctx.options.concurrency.daemonset ?? 2,
    clock,
    onError: (err, req) =>
      ctx.log.error(`Error syncing DaemonSet "${req.key}": ${errorMessage(err)}`),
    reconcile: async ({ key }) => {
      const ds = daemonSets.store.get(key);
      if (!ds) {
        expectations.delete(createKey(key));
        expectations.delete(deleteKey(key));
        return;
      }
      const nodeList = nodes.store.list();
      if (!ds.spec?.selector || selectorIsEmpty(ds.spec.selector)) {
        recorder.event(
          ds,
          "Warning",
          "SelectingAll",
          "This daemon set is selecting all pods. A non-empty selector is required.",
        );
        return;
      }
      if (ds.metadata?.deletionTimestamp) return;
      const { cur, old } = await constructHistory(ds);
      const hash = cur.metadata?.labels?.[DAEMONSET_HASH_LABEL] ?? "";
      if (!satisfied(key)) {
        await storeStatus(ds, nodeList, hash, false);
        return;
      }
      let syncError: unknown;
      let retryAfter: number | undefined;
      try {
        retryAfter = await manage(ds, key, nodeList, hash);
        if (
          satisfied(key) &&
          (ds.spec.updateStrategy?.type ?? "RollingUpdate") === "RollingUpdate"
        ) {
          const byNode = await nodesToDaemonPods(ds, false);
          const { podsToDelete, nodesToCreate } = rollingUpdateDecisions(
            ds,
            nodeList,
            byNode,
            hash,
            clock.now(),
          );
          await syncNodes(ds, key, podsToDelete, nodesToCreate, hash);
        }
        await cleanupHistory(ds, old);
      } catch (err) {
        syncError = err;
      }
      let counts: { ready: number; available: number } | undefined;
      try {
        counts = await storeStatus(ds, nodeList, hash, true);
      } catch (err) {
        if (syncError === undefined) throw err;
        ctx.log.error(`Failed to update status of DaemonSet "${key}": ${errorMessage(err)}`);
      }
      if (syncError !== undefined) throw syncError;
      const minReady = ds.spec.minReadySeconds ?? 0;
      if (minReady > 0 && counts && counts.ready !== counts.available)
        retryAfter = Math.min(retryAfter ?? Infinity, minReady * 1000);
      return retryAfter !== undefined ? { requeueAfter: retryAfter } : undefined;
    },
  });

  /** Expectations follow the pods; node changes wake the DaemonSets they concern. */
  function registerHandlers(): () => void {
    const offPods = pods.addEventHandler({
      add(pod) {
        const key = ownerOf(pod);
        if (!key) return;
        if (pod.metadata?.deletionTimestamp)
          expectations.deletionObserved(deleteKey(key), objectKey(pod));
        else expectations.creationObserved(createKey(key));
      },
      update(_old, pod) {
        const key = ownerOf(pod);
        if (key && pod.metadata?.deletionTimestamp)
          expectations.deletionObserved(deleteKey(key), objectKey(pod));
      },
      delete(pod) {
        const key = ownerOf(pod);
        if (key) expectations.deletionObserved(deleteKey(key), objectKey(pod));
      },
    });
    const enqueueFor = (changed: (ds: DaemonSet) => boolean) => {
      for (const ds of daemonSets.store.list()) if (changed(ds)) c.queue.add(objectKey(ds));
    };
    const offNodes = nodes.addEventHandler({
      add(node) {
        enqueueFor((ds) => nodeShouldRunDaemonPod(node, ds).shouldRun);
      },
      update(old, node) {
        enqueueFor((ds) => {
          const a = nodeShouldRunDaemonPod(old, ds);
          const b = nodeShouldRunDaemonPod(node, ds);
          return a.shouldRun !== b.shouldRun || a.shouldContinueRunning !== b.shouldContinueRunning;
        });
      },
      delete() {
        enqueueFor(() => true);
      },
    });
    return () => {
      offPods();
      offNodes();
    };
  }

  return { controller: c, expectations, registerHandlers };
}

export const daemonSetDescriptor: ControllerDescriptor = {
  name: "daemonset",
  aliases: ["daemonset-controller"],
  serviceAccount: "daemon-set-controller",
  async start(ctx, signal) {
    const { controller: c, registerHandlers } = daemonSetController(ctx);
    const off = registerHandlers();
    try {
      await c.start(signal);
    } finally {
      off();
    }
  },
};
