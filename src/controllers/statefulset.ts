/**
 * The StatefulSet controller (upstream's pkg/controller/statefulset): pods with stable names
 * `<set>-<ordinal>` (from `spec.ordinals.start`), hostname and subdomain, each with its own
 * PersistentVolumeClaims `<claim>-<set>-<ordinal>` made from `volumeClaimTemplates` before the pod
 * (they stay Pending until something provisions storage).
 *
 * OrderedReady creates one pod at a time in ordinal order, each only once its predecessors are
 * Running, Ready and available for minReadySeconds, and removes surplus pods from the highest
 * ordinal down, one at a time; Parallel acts on all at once (slow-start batches). A RollingUpdate
 * deletes, from the highest ordinal down to the partition, one pod not at the update revision
 * once every pod is healthy, and the create loop brings it back at the new revision; OnDelete
 * waits for someone else to delete pods. Failed and succeeded pods are deleted and recreated.
 *
 * Revisions are ControllerRevisions named `<set>-<hash>`, the hash of the template patch and
 * the collision count; pods carry their revision's name in `controller-revision-hash`.
 * `persistentVolumeClaimRetentionPolicy` puts owner references on the claims: the set's for
 * `whenDeleted: Delete`, the pod's for a pod scaled away under `whenScaled: Delete`, so the
 * garbage collector removes them.
 *
 * `updateStatefulSet` holds the decisions; the writes go through a `StatefulPodOps`, so tests can
 * drive it without a server.
 */

import type {
  ControllerRevision,
  StatefulSet,
  StatefulSetStatus,
} from "kubernetes-types/apps/v1.js";
import type { PersistentVolumeClaim, Pod, Volume } from "kubernetes-types/core/v1.js";
import type { OwnerReference } from "kubernetes-types/meta/v1.js";
import { isStatusError } from "../api/status.js";
import { controller } from "../client/controller.js";
import type { Informer } from "../client/informer.js";
import { objectKey } from "../client/resources.js";
import type { ControllerContext, ControllerDescriptor } from "./context.js";
import { errorMessage } from "./context.js";
import {
  ControllerHistory,
  equalRevision,
  findEqualRevisions,
  listControllerRevisions,
  newControllerRevision,
  nextRevision,
  revisionTemplate,
  sortControllerRevisions,
  templatePatch,
} from "./history.js";
import { claim as claimObjects, podFromTemplate } from "./podcontrol.js";
import {
  CONTROLLER_UID_INDEX,
  controllerRef,
  controllerUIDIndexFunc,
  isPodAvailable,
  isPodReady,
  newControllerRef,
  omitEmpty,
  selectorMatches,
  slowStartBatch,
  watchOf,
} from "./util.js";

export const POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name";
export const POD_INDEX_LABEL = "apps.kubernetes.io/pod-index";
export const REVISION_LABEL = "controller-revision-hash";

const ORDINAL_NAME = /^(.*)-([0-9]+)$/;

/** The parent set's name and the ordinal in a pod's name; ordinal -1 when there is none. */
export function parentNameAndOrdinal(name: string | undefined): {
  parent: string;
  ordinal: number;
} {
  const m = ORDINAL_NAME.exec(name ?? "");
  if (!m) return { parent: "", ordinal: -1 };
  const n = Number(m[2]);
  return { parent: m[1]!, ordinal: n <= 2 ** 31 - 1 ? n : -1 };
}

export function getOrdinal(pod: Pod): number {
  return parentNameAndOrdinal(pod.metadata?.name).ordinal;
}

function replicasOf(set: StatefulSet): number {
  return set.spec?.replicas ?? 1;
}

export function startOrdinal(set: StatefulSet): number {
  return set.spec?.ordinals?.start ?? 0;
}

export function endOrdinal(set: StatefulSet): number {
  return startOrdinal(set) + replicasOf(set) - 1;
}

export function podInOrdinalRange(pod: Pod, set: StatefulSet): boolean {
  const o = getOrdinal(pod);
  return o >= startOrdinal(set) && o <= endOrdinal(set);
}

export function podName(set: StatefulSet, ordinal: number): string {
  return `${set.metadata?.name}-${ordinal}`;
}

export function claimName(set: StatefulSet, template: PersistentVolumeClaim, ordinal: number) {
  return `${template.metadata?.name}-${set.metadata?.name}-${ordinal}`;
}

export function isMemberOf(set: StatefulSet, pod: Pod): boolean {
  return parentNameAndOrdinal(pod.metadata?.name).parent === set.metadata?.name;
}

/** The pod has its set's name, namespace and pod-name label. */
export function identityMatches(set: StatefulSet, pod: Pod): boolean {
  const { parent, ordinal } = parentNameAndOrdinal(pod.metadata?.name);
  return (
    ordinal >= 0 &&
    parent === set.metadata?.name &&
    pod.metadata?.name === podName(set, ordinal) &&
    pod.metadata?.namespace === set.metadata?.namespace &&
    pod.metadata?.labels?.[POD_NAME_LABEL] === pod.metadata?.name
  );
}

/** The pod mounts each template's claim under the template's name. */
export function storageMatches(set: StatefulSet, pod: Pod): boolean {
  const ordinal = getOrdinal(pod);
  if (ordinal < 0) return false;
  const volumes = new Map((pod.spec?.volumes ?? []).map((v) => [v.name, v]));
  for (const t of set.spec?.volumeClaimTemplates ?? []) {
    const v = volumes.get(t.metadata?.name ?? "");
    if (v?.persistentVolumeClaim?.claimName !== claimName(set, t, ordinal)) return false;
  }
  return true;
}

/** The claims of the pod at `ordinal`, keyed by template name (getPersistentVolumeClaims). */
export function persistentVolumeClaims(
  set: StatefulSet,
  ordinal: number,
): Map<string, PersistentVolumeClaim> {
  const out = new Map<string, PersistentVolumeClaim>();
  for (const t of set.spec?.volumeClaimTemplates ?? []) {
    const c = structuredClone(t);
    c.metadata ??= {};
    c.metadata.name = claimName(set, t, ordinal);
    c.metadata.namespace = set.metadata?.namespace;
    c.metadata.labels = {
      ...(c.metadata.labels ?? {}),
      ...(set.spec?.selector?.matchLabels ?? {}),
    };
    out.set(t.metadata?.name ?? "", c);
  }
  return out;
}

/** Points the pod's volumes of the templates' names at its claims (updateStorage). */
export function updateStorage(set: StatefulSet, pod: Pod): void {
  const claims = persistentVolumeClaims(set, getOrdinal(pod));
  const volumes: Volume[] = [];
  for (const [name, c] of claims)
    volumes.push({ name, persistentVolumeClaim: { claimName: c.metadata!.name! } });
  for (const v of pod.spec?.volumes ?? []) if (!claims.has(v.name)) volumes.push(v);
  pod.spec!.volumes = volumes;
}

/** Name, namespace and identity labels from the ordinal (updateIdentity). */
export function updateIdentity(set: StatefulSet, pod: Pod): void {
  const ordinal = getOrdinal(pod);
  pod.metadata!.name = podName(set, ordinal);
  pod.metadata!.namespace = set.metadata?.namespace;
  pod.metadata!.labels = {
    ...(pod.metadata!.labels ?? {}),
    [POD_NAME_LABEL]: pod.metadata!.name,
    [POD_INDEX_LABEL]: String(ordinal),
  };
}

/** A pod of the set at `ordinal` from its template (newStatefulSetPod). */
export function newStatefulSetPod(set: StatefulSet, ordinal: number): Pod {
  const pod = podFromTemplate(
    set.spec?.template,
    set.metadata?.namespace ?? "",
    set.metadata?.name ?? "",
    newControllerRef(set, "apps/v1", "StatefulSet"),
  );
  pod.metadata!.name = podName(set, ordinal);
  updateIdentity(set, pod);
  pod.spec!.hostname = pod.metadata!.name;
  if (set.spec?.serviceName) pod.spec!.subdomain = set.spec.serviceName;
  updateStorage(set, pod);
  return pod;
}

/**
 * The pod to create at `ordinal`: of the current revision below the partition (or, without a
 * rollingUpdate, below the current replicas), else of the update revision.
 */
export function newVersionedStatefulSetPod(
  currentSet: StatefulSet,
  updateSet: StatefulSet,
  currentRevision: string,
  updateRevision: string,
  ordinal: number,
): Pod {
  const us = currentSet.spec?.updateStrategy;
  const start = startOrdinal(currentSet);
  const current =
    ((us?.type ?? "RollingUpdate") === "RollingUpdate" &&
      !us?.rollingUpdate &&
      ordinal < start + (currentSet.status?.currentReplicas ?? 0)) ||
    (!!us?.rollingUpdate && ordinal < start + (us.rollingUpdate.partition ?? 0));
  const pod = newStatefulSetPod(current ? currentSet : updateSet, ordinal);
  pod.metadata!.labels = {
    ...(pod.metadata!.labels ?? {}),
    [REVISION_LABEL]: current ? currentRevision : updateRevision,
  };
  return pod;
}

export function podRevision(pod: Pod): string {
  return pod.metadata?.labels?.[REVISION_LABEL] ?? "";
}

export const isCreated = (p: Pod) => !!p.status?.phase;
export const isFailed = (p: Pod) => p.status?.phase === "Failed";
export const isSucceeded = (p: Pod) => p.status?.phase === "Succeeded";
export const isPending = (p: Pod) => p.status?.phase === "Pending";
export const isTerminating = (p: Pod) => !!p.metadata?.deletionTimestamp;
export const isRunningAndReady = (p: Pod) => p.status?.phase === "Running" && isPodReady(p);
export const isHealthy = (p: Pod) => isRunningAndReady(p) && !isTerminating(p);

export function allowsBurst(set: StatefulSet): boolean {
  return set.spec?.podManagementPolicy === "Parallel";
}

/** A new revision of the set's template (newRevision): the set's annotations are copied. */
export function newRevision(
  set: StatefulSet,
  revision: number,
  collisionCount: number,
): ControllerRevision {
  const cr = newControllerRevision(
    set,
    newControllerRef(set, "apps/v1", "StatefulSet"),
    set.spec?.template?.metadata?.labels,
    templatePatch(set),
    revision,
    collisionCount,
  );
  cr.metadata!.annotations = { ...(set.metadata?.annotations ?? {}) };
  return cr;
}

/** The set with the revision's template (ApplyRevision). */
export function applyRevision(set: StatefulSet, rev: ControllerRevision): StatefulSet {
  const clone = structuredClone(set);
  const template = revisionTemplate<NonNullable<StatefulSet["spec"]>["template"]>(rev);
  if (template) clone.spec!.template = template;
  return clone;
}

// ---- claim retention ----

type Policy = "Retain" | "Delete";

export function retentionPolicy(set: StatefulSet): { whenDeleted: Policy; whenScaled: Policy } {
  const p = set.spec?.persistentVolumeClaimRetentionPolicy;
  return {
    whenDeleted: (p?.whenDeleted as Policy | undefined) ?? "Retain",
    whenScaled: (p?.whenScaled as Policy | undefined) ?? "Retain",
  };
}

interface Owner {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
}

function setOwner(set: StatefulSet): Owner {
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    name: set.metadata?.name ?? "",
    uid: set.metadata?.uid ?? "",
  };
}

function podOwner(pod: Pod): Owner {
  return {
    apiVersion: "v1",
    kind: "Pod",
    name: pod.metadata?.name ?? "",
    uid: pod.metadata?.uid ?? "",
  };
}

const matchesRef = (ref: OwnerReference, o: Owner) =>
  ref.apiVersion === o.apiVersion && ref.kind === o.kind && ref.name === o.name;
const hasOwnerRef = (c: PersistentVolumeClaim, o: Owner) =>
  (c.metadata?.ownerReferences ?? []).some((r) => r.uid === o.uid);

function hasStaleOwnerRef(c: PersistentVolumeClaim, o: Owner): boolean {
  const ref = (c.metadata?.ownerReferences ?? []).find((r) => matchesRef(r, o));
  return !!ref && ref.uid !== o.uid;
}

function hasUnexpectedController(c: PersistentVolumeClaim, set: StatefulSet, pod: Pod): boolean {
  const policy = retentionPolicy(set);
  if (policy.whenScaled === "Retain" && policy.whenDeleted === "Retain") return false;
  const s = setOwner(set);
  const p = podOwner(pod);
  for (const ref of c.metadata?.ownerReferences ?? []) {
    if (matchesRef(ref, s)) {
      if (ref.uid !== s.uid) return true;
      continue;
    }
    if (matchesRef(ref, p)) {
      if (ref.uid !== p.uid) return true;
      continue;
    }
    if (ref.controller) return true;
  }
  return false;
}

function hasNonControllerOwner(c: PersistentVolumeClaim, set: StatefulSet, pod: Pod): boolean {
  return (c.metadata?.ownerReferences ?? []).some(
    (r) => (r.uid === set.metadata?.uid || r.uid === pod.metadata?.uid) && !r.controller,
  );
}

/**
 * Whether the claim's owner references agree with the retention policy (isClaimOwnerUpToDate):
 * none for Retain/Retain, the set's for whenDeleted Delete (while the pod is in range), the pod's
 * for a pod scaled away under whenScaled Delete. Claims with stale or foreign controllers are left.
 */
export function isClaimOwnerUpToDate(
  c: PersistentVolumeClaim,
  set: StatefulSet,
  pod: Pod,
): boolean {
  const s = setOwner(set);
  const p = podOwner(pod);
  if (hasStaleOwnerRef(c, s) || hasStaleOwnerRef(c, p)) return true;
  if (hasUnexpectedController(c, set, pod)) return !(hasOwnerRef(c, s) || hasOwnerRef(c, p));
  if (hasNonControllerOwner(c, set, pod)) return false;
  const { whenDeleted, whenScaled } = retentionPolicy(set);
  const scaledDown = !podInOrdinalRange(pod, set);
  if (whenScaled === "Delete" && whenDeleted === "Delete")
    return scaledDown !== hasOwnerRef(c, s) && scaledDown === hasOwnerRef(c, p);
  if (whenScaled === "Delete") return !hasOwnerRef(c, s) && scaledDown === hasOwnerRef(c, p);
  if (whenDeleted === "Delete") return hasOwnerRef(c, s) && !hasOwnerRef(c, p);
  return !hasOwnerRef(c, s) && !hasOwnerRef(c, p);
}

function controllerRefTo(o: Owner): OwnerReference {
  return { ...o, controller: true, blockOwnerDeletion: true };
}

/** Rewrites the claim's references to the set and pod per the policy (updateClaimOwnerRefForSetAndPod). */
export function updateClaimOwnerRefs(c: PersistentVolumeClaim, set: StatefulSet, pod: Pod): void {
  const s = setOwner(set);
  const p = podOwner(pod);
  const unexpected = hasUnexpectedController(c, set, pod);
  let refs = (c.metadata?.ownerReferences ?? []).filter(
    (r) => !matchesRef(r, s) && !matchesRef(r, p),
  );
  if (!unexpected) {
    const { whenDeleted, whenScaled } = retentionPolicy(set);
    const scaledDown = !podInOrdinalRange(pod, set);
    const add = (o: Owner) => {
      if (!refs.some((r) => r.uid === o.uid)) refs = [...refs, controllerRefTo(o)];
    };
    if (whenScaled === "Delete" && scaledDown) add(p);
    if (whenDeleted === "Delete" && !(whenScaled === "Delete" && scaledDown)) add(s);
  }
  c.metadata ??= {};
  c.metadata.ownerReferences = refs;
}

// ---- the update loop ----

/** The writes `updateStatefulSet` makes, in the words of upstream's StatefulPodControl. */
export interface StatefulPodOps {
  /** Creates the pod's claims, then the pod, then sets the claims' references. */
  createPod(set: StatefulSet, pod: Pod): Promise<void>;
  /** Fixes identity, storage and claim references of an existing pod. */
  updatePod(set: StatefulSet, pod: Pod): Promise<void>;
  deletePod(set: StatefulSet, pod: Pod): Promise<void>;
  createMissingClaims(set: StatefulSet, pod: Pod): Promise<void>;
  /** Whether the pod's existing claims have the references the policy asks for. */
  claimsMatchRetentionPolicy(set: StatefulSet, pod: Pod): boolean;
  updateClaimsForRetentionPolicy(set: StatefulSet, pod: Pod): Promise<void>;
  /** A claim still references an earlier pod of the same name (whenScaled Delete). */
  podClaimIsStale(set: StatefulSet, pod: Pod): boolean;
}

/** The replica counts of the status over `lists` (computeReplicaStatus). */
export function replicaStatus(
  status: StatefulSetStatus,
  minReadySeconds: number,
  currentRevision: string,
  updateRevision: string,
  now: number,
  ...lists: Pod[][]
): void {
  status.replicas = 0;
  status.readyReplicas = 0;
  status.availableReplicas = 0;
  status.currentReplicas = 0;
  status.updatedReplicas = 0;
  for (const list of lists)
    for (const pod of list) {
      if (isCreated(pod)) status.replicas++;
      if (isRunningAndReady(pod)) {
        status.readyReplicas++;
        if (isPodAvailable(pod, minReadySeconds, now)) status.availableReplicas++;
      }
      if (isCreated(pod) && !isTerminating(pod)) {
        if (podRevision(pod) === currentRevision) status.currentReplicas++;
        if (podRevision(pod) === updateRevision) status.updatedReplicas++;
      }
    }
}

async function runForAll(
  count: number,
  fn: (i: number) => Promise<boolean>,
  monotonic: boolean,
): Promise<boolean> {
  if (monotonic) {
    for (let i = 0; i < count; i++) if (await fn(i)) return true;
    return false;
  }
  const { error } = await slowStartBatch(count, 1, async (i) => {
    await fn(i);
  });
  if (error !== undefined) throw error;
  return false;
}

/**
 * One pass of the set towards its target (updateStatefulSet): creates missing pods, replaces
 * failed ones, scales down from the highest ordinal, then rolls pods to the update revision.
 * Answers the status to record; a write failure is thrown with the status attached as `status`.
 */
export async function updateStatefulSet(
  set: StatefulSet,
  currentRevision: ControllerRevision,
  updateRevision: ControllerRevision,
  collisionCount: number,
  pods: Pod[],
  ops: StatefulPodOps,
  now: number,
): Promise<StatefulSetStatus> {
  const currentSet = applyRevision(set, currentRevision);
  const updateSet = applyRevision(set, updateRevision);
  const currentName = currentRevision.metadata?.name ?? "";
  const updateName = updateRevision.metadata?.name ?? "";
  const minReady = set.spec?.minReadySeconds ?? 0;
  const status: StatefulSetStatus = {
    observedGeneration: set.metadata?.generation ?? 0,
    replicas: 0,
    currentRevision: currentName,
    updateRevision: updateName,
    collisionCount,
  };
  replicaStatus(status, minReady, currentName, updateName, now, pods);

  const start = startOrdinal(set);
  const replicaCount = replicasOf(set);
  const replicas: (Pod | undefined)[] = new Array<Pod | undefined>(replicaCount).fill(undefined);
  const condemned: Pod[] = [];
  for (const pod of pods) {
    if (podInOrdinalRange(pod, set)) replicas[getOrdinal(pod) - start] = pod;
    else if (getOrdinal(pod) >= 0) condemned.push(pod);
  }
  for (let i = 0; i < replicaCount; i++)
    replicas[i] ??= newVersionedStatefulSetPod(
      currentSet,
      updateSet,
      currentName,
      updateName,
      start + i,
    );
  const live = replicas as Pod[];
  condemned.sort((a, b) => getOrdinal(b) - getOrdinal(a));

  let firstUnhealthy: Pod | undefined = live.find((p) => !isHealthy(p));
  if (!firstUnhealthy)
    for (let i = condemned.length - 1; i >= 0; i--)
      if (!isHealthy(condemned[i]!)) {
        firstUnhealthy = condemned[i];
        break;
      }

  if (set.metadata?.deletionTimestamp) return status;
  const monotonic = !allowsBurst(set);
  const finish = () => {
    replicaStatus(status, minReady, currentName, updateName, now, live, condemned);
    return status;
  };
  const fail = (err: unknown): never => {
    finish();
    throw Object.assign(err instanceof Error ? err : new Error(String(err)), { status });
  };

  const processReplica = async (i: number): Promise<boolean> => {
    const pod = live[i]!;
    if (isFailed(pod) || isSucceeded(pod)) {
      if (!pod.metadata?.deletionTimestamp) await ops.deletePod(set, pod);
      return true;
    }
    if (!isCreated(pod)) {
      if (ops.podClaimIsStale(set, pod)) return true;
      await ops.createPod(set, pod);
      if (monotonic) return true;
    }
    if (isPending(pod)) await ops.createMissingClaims(set, pod);
    if (isTerminating(pod) && monotonic) return true;
    if (!isRunningAndReady(pod) && monotonic) return true;
    if (!isPodAvailable(pod, minReady, now) && monotonic) return true;
    const retentionMatch = ops.claimsMatchRetentionPolicy(updateSet, pod);
    if (identityMatches(set, pod) && storageMatches(set, pod) && retentionMatch) return false;
    await ops.updatePod(updateSet, structuredClone(pod));
    return false;
  };
  try {
    if (await runForAll(live.length, processReplica, monotonic)) return finish();
    const fixClaims = async (i: number) => {
      const pod = condemned[i]!;
      if (!ops.claimsMatchRetentionPolicy(updateSet, pod))
        await ops.updateClaimsForRetentionPolicy(updateSet, pod);
      return false;
    };
    if (await runForAll(condemned.length, fixClaims, monotonic)) return finish();
    const processCondemned = async (i: number): Promise<boolean> => {
      const pod = condemned[i]!;
      if (isTerminating(pod)) return monotonic;
      if (!isRunningAndReady(pod) && monotonic && pod !== firstUnhealthy) return true;
      if (!isPodAvailable(pod, minReady, now) && monotonic && pod !== firstUnhealthy) return true;
      await ops.deletePod(set, pod);
      return true;
    };
    if (await runForAll(condemned.length, processCondemned, monotonic)) return finish();
  } catch (err) {
    return fail(err);
  }
  finish();
  if (set.spec?.updateStrategy?.type === "OnDelete") return status;
  const updateMin = set.spec?.updateStrategy?.rollingUpdate?.partition ?? 0;
  for (let target = live.length - 1; target >= updateMin; target--) {
    const pod = live[target]!;
    if (podRevision(pod) !== updateName && !isTerminating(pod)) {
      try {
        await ops.deletePod(set, pod);
      } catch (err) {
        if (!isStatusError(err, "NotFound")) return fail(err);
      }
      status.currentReplicas = (status.currentReplicas ?? 0) - 1;
      return status;
    }
    if (!isHealthy(pod)) return status;
  }
  return status;
}

/** Revisions the set no longer needs beyond its history limit, oldest first (truncateHistory). */
export function revisionsToTruncate(
  set: StatefulSet,
  pods: Pod[],
  sorted: ControllerRevision[],
  current: ControllerRevision | undefined,
  update: ControllerRevision | undefined,
): ControllerRevision[] {
  const live = new Set<string>();
  if (current) live.add(current.metadata?.name ?? "");
  if (update) live.add(update.metadata?.name ?? "");
  for (const p of pods) live.add(podRevision(p));
  const history = sorted.filter((r) => !live.has(r.metadata?.name ?? ""));
  const limit = set.spec?.revisionHistoryLimit ?? 10;
  return history.length <= limit ? [] : history.slice(0, history.length - limit);
}

/** The history writes getStatefulSetRevisions needs. */
export interface RevisionOps {
  create(
    set: StatefulSet,
    rev: ControllerRevision,
    collision: { count: number },
  ): Promise<ControllerRevision>;
  updateRevision(rev: ControllerRevision, revision: number): Promise<ControllerRevision>;
}

/**
 * The current and update revisions (getStatefulSetRevisions): the update revision is the latest
 * one if it equals the template, an earlier equal one renumbered (a rollback), or a new one.
 */
export async function statefulSetRevisions(
  set: StatefulSet,
  sorted: ControllerRevision[],
  ops: RevisionOps,
): Promise<{ current: ControllerRevision; update: ControllerRevision; collisionCount: number }> {
  const collision = { count: set.status?.collisionCount ?? 0 };
  let update = newRevision(set, nextRevision(sorted), collision.count);
  const equal = findEqualRevisions(sorted, update);
  const last = sorted[sorted.length - 1];
  const lastEqual = equal[equal.length - 1];
  if (lastEqual && equalRevision(last, lastEqual)) update = last!;
  else if (lastEqual) update = await ops.updateRevision(lastEqual, update.revision);
  else update = await ops.create(set, update, collision);
  const current = sorted.find((r) => r.metadata?.name === set.status?.currentRevision) ?? update;
  return { current, update, collisionCount: collision.count };
}

/** Finishes a rolling update once every replica is updated and ready (completeRollingUpdate). */
export function completeRollingUpdate(set: StatefulSet, status: StatefulSetStatus): void {
  const n = replicasOf(set);
  if (
    (set.spec?.updateStrategy?.type ?? "RollingUpdate") === "RollingUpdate" &&
    status.updatedReplicas === n &&
    status.readyReplicas === n &&
    status.replicas === n
  ) {
    status.currentReplicas = status.updatedReplicas;
    status.currentRevision = status.updateRevision;
  }
}

/** Whether the recorded status differs from `status` (inconsistentStatus). */
export function inconsistentStatus(set: StatefulSet, status: StatefulSetStatus): boolean {
  const s = set.status ?? { replicas: 0 };
  return (
    (status.observedGeneration ?? 0) > (s.observedGeneration ?? 0) ||
    status.replicas !== s.replicas ||
    (status.currentReplicas ?? 0) !== (s.currentReplicas ?? 0) ||
    (status.readyReplicas ?? 0) !== (s.readyReplicas ?? 0) ||
    (status.updatedReplicas ?? 0) !== (s.updatedReplicas ?? 0) ||
    (status.currentRevision ?? "") !== (s.currentRevision ?? "") ||
    (status.availableReplicas ?? 0) !== (s.availableReplicas ?? 0) ||
    (status.updateRevision ?? "") !== (s.updateRevision ?? "")
  );
}

// ---- wiring ----

export function statefulSetController(ctx: ControllerContext) {
  const { client, informers, clock } = ctx;
  const recorder = ctx.recorder("statefulset-controller");
  const sets = informers.informer("apps/v1/StatefulSet");
  const pods = informers.informer("v1/Pod", {
    indexers: { [CONTROLLER_UID_INDEX]: controllerUIDIndexFunc },
  }) as Informer<Pod>;
  const claims = informers.informer("v1/PersistentVolumeClaim");
  const revisions = informers.informer("apps/v1/ControllerRevision");
  const setsClient = client.resource("apps/v1/StatefulSet");
  const podsClient = client.resource("v1/Pod");
  const claimsClient = client.resource("v1/PersistentVolumeClaim");
  const revClient = client.resource("apps/v1/ControllerRevision");

  const recordPodEvent = (verb: string, set: StatefulSet, pod: Pod, err?: unknown) => {
    const title = verb[0]!.toUpperCase() + verb.slice(1);
    if (err === undefined)
      recorder.event(
        set,
        "Normal",
        `Successful${title}`,
        `${verb} Pod ${pod.metadata?.name} in StatefulSet ${set.metadata?.name} successful`,
      );
    else
      recorder.event(
        set,
        "Warning",
        `Failed${title}`,
        `${verb} Pod ${pod.metadata?.name} in StatefulSet ${set.metadata?.name} failed error: ${errorMessage(err)}`,
      );
  };

  const cachedClaim = (ns: string, name: string) => claims.store.getByName(ns, name);

  async function createPersistentVolumeClaims(set: StatefulSet, pod: Pod): Promise<void> {
    const errors: string[] = [];
    for (const c of persistentVolumeClaims(set, getOrdinal(pod)).values()) {
      const ns = c.metadata!.namespace!;
      const name = c.metadata!.name!;
      const existing = cachedClaim(ns, name);
      if (existing) {
        if (existing.metadata?.deletionTimestamp) errors.push(`pvc ${name} is being deleted`);
        continue;
      }
      try {
        const body: { -readonly [K in keyof PersistentVolumeClaim]: PersistentVolumeClaim[K] } =
          structuredClone(c);
        delete body.status;
        await claimsClient.namespace(ns).create(body);
        recorder.event(
          set,
          "Normal",
          "SuccessfulCreate",
          `create Claim ${name} Pod ${pod.metadata?.name} in StatefulSet ${set.metadata?.name} success`,
        );
      } catch (err) {
        errors.push(`failed to create PVC ${name}: ${errorMessage(err)}`);
        if (!isStatusError(err, "AlreadyExists"))
          recorder.event(
            set,
            "Warning",
            "FailedCreate",
            `create Claim ${name} for Pod ${pod.metadata?.name} in StatefulSet ${set.metadata?.name} failed error: ${errorMessage(err)}`,
          );
      }
    }
    if (errors.length === 1) throw new Error(errors[0]);
    if (errors.length > 1) throw new Error(`[${errors.join(", ")}]`);
  }

  const ops: StatefulPodOps = {
    async createPod(set, pod) {
      try {
        await createPersistentVolumeClaims(set, pod);
      } catch (err) {
        recordPodEvent("create", set, pod, err);
        throw err;
      }
      let created: Pod;
      try {
        created = await podsClient.namespace(set.metadata!.namespace!).create(pod);
      } catch (err) {
        if (!isStatusError(err, "AlreadyExists")) recordPodEvent("create", set, pod, err);
        throw err;
      }
      try {
        await ops.updateClaimsForRetentionPolicy(set, created);
      } catch (err) {
        recordPodEvent("update", set, pod, err);
        throw err;
      }
      recordPodEvent("create", set, pod);
    },
    async updatePod(set, pod) {
      const ns = set.metadata!.namespace!;
      for (let attempt = 0; ; attempt++) {
        let consistent = true;
        if (!identityMatches(set, pod)) {
          updateIdentity(set, pod);
          consistent = false;
        }
        try {
          if (!storageMatches(set, pod)) {
            updateStorage(set, pod);
            consistent = false;
            await createPersistentVolumeClaims(set, pod);
          }
          if (!ops.claimsMatchRetentionPolicy(set, pod)) {
            await ops.updateClaimsForRetentionPolicy(set, pod);
            consistent = false;
          }
        } catch (err) {
          recordPodEvent("update", set, pod, err);
          throw err;
        }
        if (consistent) return;
        try {
          await podsClient.namespace(ns).update(pod);
          recordPodEvent("update", set, pod);
          return;
        } catch (err) {
          if (!isStatusError(err, "Conflict") || attempt >= 4) {
            recordPodEvent("update", set, pod, err);
            throw err;
          }
          const fresh = pods.store.getByName(ns, pod.metadata!.name!);
          if (fresh) pod = structuredClone(fresh);
        }
      }
    },
    async deletePod(set, pod) {
      try {
        await podsClient.namespace(set.metadata!.namespace!).delete(pod.metadata!.name!);
      } catch (err) {
        recordPodEvent("delete", set, pod, err);
        throw err;
      }
      recordPodEvent("delete", set, pod);
    },
    createMissingClaims: createPersistentVolumeClaims,
    claimsMatchRetentionPolicy(set, pod) {
      for (const c of persistentVolumeClaims(set, getOrdinal(pod)).values()) {
        const existing = cachedClaim(c.metadata!.namespace!, c.metadata!.name!);
        if (existing && !isClaimOwnerUpToDate(existing, set, pod)) return false;
      }
      return true;
    },
    async updateClaimsForRetentionPolicy(set, pod) {
      for (const c of persistentVolumeClaims(set, getOrdinal(pod)).values()) {
        const ns = c.metadata!.namespace!;
        let existing = cachedClaim(ns, c.metadata!.name!);
        if (!existing) {
          try {
            existing = await claimsClient.namespace(ns).get(c.metadata!.name!);
          } catch (err) {
            if (isStatusError(err, "NotFound")) continue;
            throw err;
          }
        }
        if (isClaimOwnerUpToDate(existing, set, pod)) continue;
        const copy = structuredClone(existing);
        updateClaimOwnerRefs(copy, set, pod);
        await claimsClient.namespace(ns).update(copy);
      }
    },
    podClaimIsStale(set, pod) {
      if (retentionPolicy(set).whenScaled === "Retain") return false;
      for (const c of persistentVolumeClaims(set, getOrdinal(pod)).values()) {
        const existing = cachedClaim(c.metadata!.namespace!, c.metadata!.name!);
        if (existing && hasStaleOwnerRef(existing, podOwner(pod))) return true;
      }
      return false;
    },
  };

  const history = (ns: string) => new ControllerHistory(revClient.namespace(ns));
  const revisionOps = (ns: string): RevisionOps => ({
    create: (set, rev, collision) => history(ns).create(set, rev, collision),
    updateRevision: (rev, n) => history(ns).updateRevision(rev, n),
  });

  const listRevisions = (set: StatefulSet) =>
    listControllerRevisions(set, revisions.store.listNamespace(set.metadata!.namespace!), (l) =>
      selectorMatches(set.spec?.selector, l),
    );

  async function updateSetStatus(set: StatefulSet, status: StatefulSetStatus): Promise<void> {
    completeRollingUpdate(set, status);
    if (!inconsistentStatus(set, status)) return;
    let current = structuredClone(set);
    for (let attempt = 0; ; attempt++) {
      current.status = omitEmpty(status, ["replicas", "availableReplicas", "collisionCount"]);
      try {
        await setsClient.updateStatus(current);
        return;
      } catch (err) {
        if (!isStatusError(err, "Conflict") || attempt >= 4) throw err;
        current = await setsClient.namespace(set.metadata!.namespace!).get(set.metadata!.name!);
      }
    }
  }

  const orphanOwners = (pod: Pod): string[] => {
    if (controllerRef(pod)) return [];
    return sets.store
      .listNamespace(pod.metadata?.namespace ?? "")
      .filter((s) => selectorMatches(s.spec?.selector, pod.metadata?.labels))
      .map(objectKey);
  };

  return controller({
    name: "statefulset",
    informers,
    for: "apps/v1/StatefulSet",
    owns: ["v1/Pod"],
    // Claims and revisions are read from their caches; listing them here makes the workers
    // wait until those caches are filled.
    watches: [
      watchOf("v1/Pod", orphanOwners),
      watchOf("v1/PersistentVolumeClaim", () => []),
      watchOf("apps/v1/ControllerRevision", () => []),
    ],
    workers: ctx.options.concurrency.statefulset ?? 5,
    clock,
    onError: (err, req) =>
      ctx.log.error(`Error syncing StatefulSet "${req.key}": ${errorMessage(err)}`),
    reconcile: async ({ key }) => {
      const set = sets.store.get(key);
      if (!set) return;
      const ns = set.metadata!.namespace!;
      const getOwner = () => setsClient.namespace(ns).get(set.metadata!.name!);
      const ref = newControllerRef(set, "apps/v1", "StatefulSet");
      // Adopt orphaned revisions first, checking the set still exists and is not going away.
      const orphans = listRevisions(set).filter((r) => !controllerRef(r));
      if (orphans.length) {
        const fresh = await getOwner();
        if (fresh.metadata?.uid !== set.metadata?.uid)
          throw new Error(
            `can't adopt ControllerRevisions: original StatefulSet ${ns}/${set.metadata?.name} is gone: got uid ${fresh.metadata?.uid}, wanted ${set.metadata?.uid}`,
          );
        if (!fresh.metadata?.deletionTimestamp)
          for (const r of orphans) await history(ns).adopt(ref, r);
      }
      const candidates = [
        ...pods.store.byIndex(CONTROLLER_UID_INDEX, set.metadata!.uid!),
        ...pods.store.byIndex(CONTROLLER_UID_INDEX, "").filter((p) => p.metadata?.namespace === ns),
      ];
      const owned = await claimObjects<Pod>({
        owner: set,
        ownerRef: ref,
        candidates,
        matches: (p) =>
          selectorMatches(set.spec?.selector, p.metadata?.labels) && isMemberOf(set, p),
        client: podsClient.namespace(ns),
        getOwner,
      });
      const sorted = sortControllerRevisions(listRevisions(set));
      let current: ControllerRevision | undefined;
      let update: ControllerRevision | undefined;
      let status: StatefulSetStatus | undefined;
      let failure: unknown;
      try {
        const revs = await statefulSetRevisions(set, sorted, revisionOps(ns));
        current = revs.current;
        update = revs.update;
        try {
          status = await updateStatefulSet(
            set,
            current,
            update,
            revs.collisionCount,
            owned,
            ops,
            clock.now(),
          );
        } catch (err) {
          failure = err;
          status = (err as { status?: StatefulSetStatus }).status;
        }
        if (status) {
          try {
            await updateSetStatus(set, status);
          } catch (err) {
            failure ??= err;
          }
        }
      } catch (err) {
        failure = err;
      }
      for (const r of revisionsToTruncate(set, owned, sorted, current, update))
        await history(ns).delete(r);
      if (failure !== undefined) throw failure;
      const minReady = set.spec?.minReadySeconds ?? 0;
      if (minReady > 0 && status && (status.availableReplicas ?? 0) !== replicasOf(set))
        return { requeueAfter: minReady * 1000 };
      return undefined;
    },
  });
}

export const statefulSetDescriptor: ControllerDescriptor = {
  name: "statefulset",
  aliases: ["statefulset-controller"],
  serviceAccount: "statefulset-controller",
  async start(ctx, signal) {
    await statefulSetController(ctx).start(signal);
  },
};
