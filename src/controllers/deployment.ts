/**
 * The Deployment controller: a Deployment owns one ReplicaSet per pod template it has had, named
 * `<deployment>-<pod-template-hash>`; the one whose template equals the Deployment's is the new
 * ReplicaSet, the others are old. A sync, as upstream's syncDeployment:
 *
 * - a Deployment being deleted only gets its status updated;
 * - a paused one, or one whose replicas changed (a scaling event: an active ReplicaSet's
 *   `desired-replicas` annotation differs), is scaled proportionally without rolling out;
 * - otherwise it rolls out: Recreate scales every old ReplicaSet to 0, waits for their pods to
 *   go, then scales the new one up; RollingUpdate scales the new ReplicaSet up within maxSurge
 *   and the old ones down within maxUnavailable (unhealthy replicas first), one step per sync.
 *
 * Revisions: the new ReplicaSet gets `deployment.kubernetes.io/revision` one above the highest
 * old revision (an old ReplicaSet coming back, as after `kubectl rollout undo`, keeps its former
 * numbers in `revision-history`), the Deployment carries its new ReplicaSet's revision, and old
 * ReplicaSets beyond `revisionHistoryLimit` are deleted once scaled to 0. Status reports the
 * replica counts and the `Available`, `Progressing` (with the progress deadline) and
 * `ReplicaFailure` conditions with upstream's reasons and messages; `ScalingReplicaSet` events
 * say "Scaled up replica set x from 1 to 3".
 *
 * The functions above the wiring are the pure core: they take the Deployment and its
 * ReplicaSets and answer what to write.
 */

import type {
  Deployment,
  DeploymentCondition,
  DeploymentStatus,
  ReplicaSet,
} from "kubernetes-types/apps/v1.js";
import type { Pod } from "kubernetes-types/core/v1.js";
import { hasStatusCause, isStatusError } from "../api/status.js";
import { controller } from "../client/controller.js";
import type { Informer } from "../client/informer.js";
import { objectKey } from "../client/resources.js";
import type { ControllerContext, ControllerDescriptor } from "./context.js";
import { errorMessage } from "./context.js";
import { claim } from "./podcontrol.js";
import {
  byCreation,
  computeHash,
  CONTROLLER_UID_INDEX,
  controllerRef,
  controllerUIDIndexFunc,
  creationTime,
  newControllerRef,
  nowTime,
  omitEmpty,
  scaledValue,
  selectorIsEmpty,
  selectorMatches,
  semanticEqual,
  watchOf,
} from "./util.js";

export const DEFAULT_DEPLOYMENT_UNIQUE_LABEL_KEY = "pod-template-hash";
export const REVISION_ANNOTATION = "deployment.kubernetes.io/revision";
export const REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history";
export const DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas";
export const MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas";
const ROLLBACK_TO_ANNOTATION = "deprecated.deployment.rollback.to";
const LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration";
const MAX_REV_HISTORY_LENGTH_IN_CHARS = 2000;
const MAX_INT32 = 2147483647;

/** Annotations of a Deployment that are not copied to its ReplicaSets. */
const ANNOTATIONS_TO_SKIP = new Set([
  LAST_APPLIED_ANNOTATION,
  REVISION_ANNOTATION,
  REVISION_HISTORY_ANNOTATION,
  DESIRED_REPLICAS_ANNOTATION,
  MAX_REPLICAS_ANNOTATION,
  ROLLBACK_TO_ANNOTATION,
]);

// Condition reasons, as upstream's deployment util.
export const NEW_RS_AVAILABLE_REASON = "NewReplicaSetAvailable";
export const TIMED_OUT_REASON = "ProgressDeadlineExceeded";
export const PAUSED_DEPLOY_REASON = "DeploymentPaused";
export const RESUMED_DEPLOY_REASON = "DeploymentResumed";
export const REPLICASET_UPDATED_REASON = "ReplicaSetUpdated";
export const NEW_REPLICASET_REASON = "NewReplicaSetCreated";
export const FOUND_NEW_RS_REASON = "FoundNewReplicaSet";
export const FAILED_RS_CREATE_REASON = "ReplicaSetCreateError";
export const MINIMUM_REPLICAS_AVAILABLE = "MinimumReplicasAvailable";
export const MINIMUM_REPLICAS_UNAVAILABLE = "MinimumReplicasUnavailable";

const replicasOf = (x: { spec?: { replicas?: number } } | undefined): number =>
  x?.spec?.replicas ?? 0;
const deploymentReplicas = (d: Deployment): number => d.spec?.replicas ?? 1;

export function isRollingUpdate(d: Deployment): boolean {
  return (d.spec?.strategy?.type ?? "RollingUpdate") === "RollingUpdate";
}

/** maxSurge and maxUnavailable as numbers; both 0 would stall, so maxUnavailable becomes 1. */
export function resolveFenceposts(d: Deployment): { surge: number; unavailable: number } {
  const desired = deploymentReplicas(d);
  const ru = d.spec?.strategy?.rollingUpdate;
  const surge = scaledValue(ru?.maxSurge, desired, true, "25%");
  let unavailable = scaledValue(ru?.maxUnavailable, desired, false, "25%");
  if (surge === 0 && unavailable === 0) unavailable = 1;
  return { surge, unavailable };
}

export function maxSurge(d: Deployment): number {
  return isRollingUpdate(d) ? resolveFenceposts(d).surge : 0;
}

export function maxUnavailable(d: Deployment): number {
  const desired = deploymentReplicas(d);
  if (!isRollingUpdate(d) || desired === 0) return 0;
  return Math.min(resolveFenceposts(d).unavailable, desired);
}

export function hasProgressDeadline(d: Deployment): boolean {
  const p = d.spec?.progressDeadlineSeconds;
  return p !== undefined && p !== null && p !== MAX_INT32;
}

/** Templates equal apart from the pod-template-hash label (EqualIgnoreHash). */
export function equalIgnoreHash(a: unknown, b: unknown): boolean {
  const strip = (t: unknown) => {
    const c = structuredClone((t ?? {}) as { metadata?: { labels?: Record<string, string> } });
    if (c.metadata?.labels) delete c.metadata.labels[DEFAULT_DEPLOYMENT_UNIQUE_LABEL_KEY];
    return c;
  };
  return semanticEqual(strip(a), strip(b));
}

/** The oldest ReplicaSet whose template equals the Deployment's (FindNewReplicaSet). */
export function findNewReplicaSet(d: Deployment, rsList: ReplicaSet[]): ReplicaSet | undefined {
  return [...rsList]
    .sort(byCreation)
    .find((rs) => equalIgnoreHash(rs.spec?.template, d.spec?.template));
}

export function revisionOf(obj: { metadata?: { annotations?: Record<string, string> } }): number {
  const v = obj.metadata?.annotations?.[REVISION_ANNOTATION];
  const n = v === undefined ? 0 : Number(v);
  return Number.isInteger(n) ? n : 0;
}

export function maxRevision(rsList: ReplicaSet[]): number {
  let max = 0;
  for (const rs of rsList) max = Math.max(max, revisionOf(rs));
  return max;
}

export function setReplicasAnnotations(rs: ReplicaSet, desired: number, max: number): boolean {
  const a = (rs.metadata!.annotations ??= {});
  let changed = false;
  if (a[DESIRED_REPLICAS_ANNOTATION] !== String(desired)) {
    a[DESIRED_REPLICAS_ANNOTATION] = String(desired);
    changed = true;
  }
  if (a[MAX_REPLICAS_ANNOTATION] !== String(max)) {
    a[MAX_REPLICAS_ANNOTATION] = String(max);
    changed = true;
  }
  return changed;
}

export function replicasAnnotationsNeedUpdate(rs: ReplicaSet, desired: number, max: number) {
  const a = rs.metadata?.annotations ?? {};
  return (
    a[DESIRED_REPLICAS_ANNOTATION] !== String(desired) || a[MAX_REPLICAS_ANNOTATION] !== String(max)
  );
}

/**
 * Copies the Deployment's annotations, sets the revision (keeping a former one in the revision
 * history) and, for a ReplicaSet about to be created, the replicas annotations. Answers whether
 * anything changed (SetNewReplicaSetAnnotations).
 */
export function setNewReplicaSetAnnotations(
  d: Deployment,
  rs: ReplicaSet,
  newRevision: string,
  exists: boolean,
): boolean {
  const a = (rs.metadata!.annotations ??= {});
  let changed = false;
  for (const [k, v] of Object.entries(d.metadata?.annotations ?? {})) {
    if (ANNOTATIONS_TO_SKIP.has(k) || a[k] === v) continue;
    a[k] = v;
    changed = true;
  }
  const oldRevision = a[REVISION_ANNOTATION];
  const had = oldRevision !== undefined;
  let oldInt = 0;
  if (had && oldRevision !== "") {
    oldInt = Number(oldRevision);
    if (!Number.isInteger(oldInt)) return false;
  }
  const newInt = Number(newRevision);
  if (!Number.isInteger(newInt)) return false;
  if (oldInt < newInt) {
    a[REVISION_ANNOTATION] = newRevision;
    changed = true;
  }
  if (had && oldInt < newInt) {
    const history = a[REVISION_HISTORY_ANNOTATION] ?? "";
    let old = history.split(",");
    if (old[0]!.length === 0) a[REVISION_HISTORY_ANNOTATION] = oldRevision;
    else {
      let total = history.length + oldRevision.length + 1;
      let start = 0;
      while (total > MAX_REV_HISTORY_LENGTH_IN_CHARS && start < old.length) {
        total -= old[start]!.length + 1;
        start++;
      }
      if (total <= MAX_REV_HISTORY_LENGTH_IN_CHARS) {
        old = [...old.slice(start), oldRevision];
        a[REVISION_HISTORY_ANNOTATION] = old.join(",");
      }
    }
  }
  if (
    !exists &&
    setReplicasAnnotations(rs, deploymentReplicas(d), deploymentReplicas(d) + maxSurge(d))
  )
    changed = true;
  return changed;
}

/** Sets the Deployment's revision annotation; answers whether it changed. */
export function setDeploymentRevision(d: Deployment, revision: string): boolean {
  const a = (d.metadata!.annotations ??= {});
  if (a[REVISION_ANNOTATION] === revision) return false;
  a[REVISION_ANNOTATION] = revision;
  return true;
}

/** How many replicas the new ReplicaSet should have now (NewRSNewReplicas). */
export function newRSNewReplicas(d: Deployment, allRSs: ReplicaSet[], newRS: ReplicaSet): number {
  const desired = deploymentReplicas(d);
  if (!isRollingUpdate(d)) return desired;
  const surge = scaledValue(d.spec?.strategy?.rollingUpdate?.maxSurge, desired, true, "25%");
  const current = allRSs.reduce((n, rs) => n + replicasOf(rs), 0);
  const maxTotal = desired + surge;
  if (current >= maxTotal) return replicasOf(newRS);
  const scaleUp = Math.min(maxTotal - current, desired - replicasOf(newRS));
  return replicasOf(newRS) + scaleUp;
}

/** The pod-template-hash of the Deployment's template (with its collision count). */
export function computeHashOf(d: Deployment): string {
  return computeHash(d.spec?.template, d.status?.collisionCount);
}

/** The ReplicaSet a new template gets (before its replicas and annotations are set). */
export function newReplicaSetFor(d: Deployment, hash: string): ReplicaSet {
  const template = structuredClone(d.spec?.template ?? {});
  template.metadata ??= {};
  template.metadata.labels = {
    ...template.metadata.labels,
    [DEFAULT_DEPLOYMENT_UNIQUE_LABEL_KEY]: hash,
  };
  const selector = structuredClone(d.spec?.selector ?? {});
  selector.matchLabels = { ...selector.matchLabels, [DEFAULT_DEPLOYMENT_UNIQUE_LABEL_KEY]: hash };
  return {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: {
      name: `${d.metadata?.name}-${hash}`,
      namespace: d.metadata?.namespace,
      ownerReferences: [newControllerRef(d, "apps/v1", "Deployment")],
      labels: { ...template.metadata.labels },
    },
    spec: {
      replicas: 0,
      minReadySeconds: d.spec?.minReadySeconds ?? 0,
      selector,
      template,
    },
  };
}

export function filterActive(rsList: ReplicaSet[]): ReplicaSet[] {
  return rsList.filter((rs) => replicasOf(rs) > 0);
}

/** The only active ReplicaSet, or the newest when none is active (FindActiveOrLatest). */
export function findActiveOrLatest(
  newRS: ReplicaSet | undefined,
  oldRSs: ReplicaSet[],
): ReplicaSet | undefined {
  if (!newRS && oldRSs.length === 0) return undefined;
  const sorted = [...oldRSs].sort((a, b) => byCreation(b, a));
  const all = filterActive(newRS ? [...sorted, newRS] : sorted);
  if (all.length === 0) return newRS ?? sorted[0];
  if (all.length === 1) return all[0];
  return undefined;
}

export function isSaturated(d: Deployment, rs: ReplicaSet | undefined): boolean {
  if (!rs) return false;
  const desired = rs.metadata?.annotations?.[DESIRED_REPLICAS_ANNOTATION];
  return (
    replicasOf(rs) === deploymentReplicas(d) &&
    desired === String(deploymentReplicas(d)) &&
    (rs.status?.availableReplicas ?? 0) === deploymentReplicas(d)
  );
}

/** An active ReplicaSet's desired-replicas annotation differs from the Deployment's replicas. */
export function isScalingEvent(d: Deployment, rsList: ReplicaSet[]): boolean {
  for (const rs of filterActive(rsList)) {
    const desired = rs.metadata?.annotations?.[DESIRED_REPLICAS_ANNOTATION];
    if (desired === undefined) continue;
    if (Number(desired) !== deploymentReplicas(d)) return true;
  }
  return false;
}

export interface ScaleAction {
  /** The ReplicaSet's name; the wiring scales its latest version. */
  name: string;
  to: number;
}

function bySizeNewer(a: ReplicaSet, b: ReplicaSet): number {
  if (replicasOf(a) !== replicasOf(b)) return replicasOf(b) - replicasOf(a);
  return byCreation(b, a);
}

function bySizeOlder(a: ReplicaSet, b: ReplicaSet): number {
  if (replicasOf(a) !== replicasOf(b)) return replicasOf(b) - replicasOf(a);
  return byCreation(a, b);
}

/** A ReplicaSet's share of a change of the Deployment's size (GetProportion). */
function proportion(d: Deployment, rs: ReplicaSet, toAdd: number, added: number): number {
  if (replicasOf(rs) === 0 || toAdd === 0 || toAdd === added) return 0;
  let fraction: number;
  const desired = deploymentReplicas(d);
  if (desired === 0) fraction = -replicasOf(rs);
  else {
    const deploymentSize = desired + maxSurge(d);
    const annotated = Number(rs.metadata?.annotations?.[MAX_REPLICAS_ANNOTATION]);
    const base = Number.isInteger(annotated) ? annotated : (d.status?.replicas ?? 0);
    const newSize = (replicasOf(rs) * deploymentSize) / base;
    fraction = Math.round(newSize) - replicasOf(rs);
  }
  const allowed = toAdd - added;
  return toAdd > 0 ? Math.min(fraction, allowed) : Math.max(fraction, allowed);
}

/**
 * The scaling of a paused Deployment or of a scaling event (`scale`): the only active (or the
 * newest) ReplicaSet takes the whole size; a saturated new ReplicaSet scales the old ones to 0;
 * otherwise a rolling Deployment's change is spread over the active ReplicaSets in proportion
 * to their sizes, leftovers to the largest.
 */
export function planScale(
  d: Deployment,
  newRS: ReplicaSet | undefined,
  oldRSs: ReplicaSet[],
): ScaleAction[] {
  const desired = deploymentReplicas(d);
  const single = findActiveOrLatest(newRS, oldRSs);
  if (single) {
    return replicasOf(single) === desired ? [] : [{ name: single.metadata!.name!, to: desired }];
  }
  if (isSaturated(d, newRS)) {
    return filterActive(oldRSs).map((rs) => ({ name: rs.metadata!.name!, to: 0 }));
  }
  if (!isRollingUpdate(d)) return [];
  const all = filterActive(newRS ? [...oldRSs, newRS] : oldRSs);
  const total = all.reduce((n, rs) => n + replicasOf(rs), 0);
  const allowed = desired > 0 ? desired + maxSurge(d) : 0;
  const toAdd = allowed - total;
  if (toAdd > 0) all.sort(bySizeNewer);
  else if (toAdd < 0) all.sort(bySizeOlder);
  let added = 0;
  const sizes = new Map<string, number>();
  for (const rs of all) {
    if (toAdd !== 0) {
      const p = proportion(d, rs, toAdd, added);
      sizes.set(rs.metadata!.name!, replicasOf(rs) + p);
      added += p;
    } else sizes.set(rs.metadata!.name!, replicasOf(rs));
  }
  const actions: ScaleAction[] = [];
  all.forEach((rs, i) => {
    const name = rs.metadata!.name!;
    if (i === 0 && toAdd !== 0) sizes.set(name, Math.max(0, sizes.get(name)! + toAdd - added));
    actions.push({ name, to: sizes.get(name)! });
  });
  return actions;
}

function invalidScaleDown(when: string, rs: ReplicaSet, to: number): Error {
  const { namespace, name } = rs.metadata ?? {};
  return new Error(
    `when ${when}, got invalid request to scale down ${namespace}/${name} ${replicasOf(rs)} -> ${to}`,
  );
}

/**
 * One step of a rolling update: scale the new ReplicaSet up (within maxSurge) if it can grow;
 * otherwise scale old ReplicaSets down, unhealthy replicas first, without going below
 * `replicas - maxUnavailable` available pods.
 */
export function planRollingStep(
  d: Deployment,
  newRS: ReplicaSet,
  oldRSs: ReplicaSet[],
): { scaledUp: boolean; actions: ScaleAction[] } {
  const desired = deploymentReplicas(d);
  const all = [...oldRSs, newRS];
  // reconcileNewReplicaSet
  if (replicasOf(newRS) !== desired) {
    if (replicasOf(newRS) > desired) {
      return { scaledUp: true, actions: [{ name: newRS.metadata!.name!, to: desired }] };
    }
    const n = newRSNewReplicas(d, all, newRS);
    if (n !== replicasOf(newRS)) {
      return { scaledUp: true, actions: [{ name: newRS.metadata!.name!, to: n }] };
    }
  }
  // reconcileOldReplicaSets
  const actions: ScaleAction[] = [];
  const old = filterActive(oldRSs).map((rs) => structuredClone(rs));
  const oldCount = old.reduce((n, rs) => n + replicasOf(rs), 0);
  if (oldCount === 0) return { scaledUp: false, actions };
  const allCount = [...oldRSs, newRS].reduce((n, rs) => n + replicasOf(rs), 0);
  const minAvailable = desired - maxUnavailable(d);
  const newUnavailable = replicasOf(newRS) - (newRS.status?.availableReplicas ?? 0);
  const maxScaledDown = allCount - minAvailable - newUnavailable;
  if (maxScaledDown <= 0) return { scaledUp: false, actions };
  // cleanupUnhealthyReplicas
  old.sort(byCreation);
  let cleaned = 0;
  for (const rs of old) {
    if (cleaned >= maxScaledDown) break;
    const r = replicasOf(rs);
    const avail = rs.status?.availableReplicas ?? 0;
    if (r === 0 || r === avail) continue;
    const down = Math.min(maxScaledDown - cleaned, r - avail);
    // A status that still counts more available pods than the lowered spec would scale up.
    if (down < 0) throw invalidScaleDown("cleaning up unhealthy replicas", rs, r - down);
    rs.spec!.replicas = r - down;
    actions.push({ name: rs.metadata!.name!, to: r - down });
    cleaned += down;
  }
  // scaleDownOldReplicaSetsForRollingUpdate
  const available = [...old, newRS].reduce((n, rs) => n + (rs.status?.availableReplicas ?? 0), 0);
  if (available > minAvailable) {
    const totalDown = available - minAvailable;
    let scaled = 0;
    for (const rs of old) {
      if (scaled >= totalDown) break;
      const r = replicasOf(rs);
      if (r === 0) continue;
      const down = Math.min(r, totalDown - scaled);
      rs.spec!.replicas = r - down;
      actions.push({ name: rs.metadata!.name!, to: r - down });
      scaled += down;
    }
  }
  return { scaledUp: false, actions };
}

export function getCondition(
  status: DeploymentStatus | undefined,
  type: string,
): DeploymentCondition | undefined {
  return status?.conditions?.find((c) => c.type === type);
}

export function newCondition(
  type: string,
  status: "True" | "False" | "Unknown",
  reason: string,
  message: string,
  now: number,
): DeploymentCondition {
  const t = nowTime(now);
  return { type, status, lastUpdateTime: t, lastTransitionTime: t, reason, message };
}

/** SetDeploymentCondition: same status and reason keeps the old one; same status keeps its transition time. */
export function setCondition(status: DeploymentStatus, cond: DeploymentCondition): void {
  const current = getCondition(status, cond.type);
  if (current && current.status === cond.status && current.reason === cond.reason) return;
  if (current && current.status === cond.status)
    cond.lastTransitionTime = current.lastTransitionTime;
  status.conditions = [...(status.conditions ?? []).filter((c) => c.type !== cond.type), cond];
}

export function removeCondition(status: DeploymentStatus, type: string): void {
  if (!status.conditions) return;
  status.conditions = status.conditions.filter((c) => c.type !== type);
}

/** The status the ReplicaSets add up to, with the Available condition (calculateStatus). */
export function calculateStatus(
  allRSs: ReplicaSet[],
  newRS: ReplicaSet | undefined,
  d: Deployment,
  now: number,
): DeploymentStatus {
  const available = allRSs.reduce((n, rs) => n + (rs.status?.availableReplicas ?? 0), 0);
  const total = allRSs.reduce((n, rs) => n + replicasOf(rs), 0);
  const status: DeploymentStatus = {
    observedGeneration: d.metadata?.generation ?? 0,
    replicas: allRSs.reduce((n, rs) => n + (rs.status?.replicas ?? 0), 0),
    updatedReplicas: newRS?.status?.replicas ?? 0,
    readyReplicas: allRSs.reduce((n, rs) => n + (rs.status?.readyReplicas ?? 0), 0),
    availableReplicas: available,
    unavailableReplicas: Math.max(0, total - available),
  };
  if (d.status?.collisionCount !== undefined) status.collisionCount = d.status.collisionCount;
  const conditions = structuredClone(d.status?.conditions ?? []);
  if (conditions.length) status.conditions = conditions;
  if (available >= deploymentReplicas(d) - maxUnavailable(d))
    setCondition(
      status,
      newCondition(
        "Available",
        "True",
        MINIMUM_REPLICAS_AVAILABLE,
        "Deployment has minimum availability.",
        now,
      ),
    );
  else
    setCondition(
      status,
      newCondition(
        "Available",
        "False",
        MINIMUM_REPLICAS_UNAVAILABLE,
        "Deployment does not have minimum availability.",
        now,
      ),
    );
  return omitEmpty(status);
}

export function deploymentComplete(d: Deployment, s: DeploymentStatus): boolean {
  const desired = deploymentReplicas(d);
  return (
    (s.updatedReplicas ?? 0) === desired &&
    (s.replicas ?? 0) === desired &&
    (s.availableReplicas ?? 0) === desired &&
    (s.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0)
  );
}

export function deploymentProgressing(d: Deployment, s: DeploymentStatus): boolean {
  const o = d.status ?? {};
  const oldOld = (o.replicas ?? 0) - (o.updatedReplicas ?? 0);
  const newOld = (s.replicas ?? 0) - (s.updatedReplicas ?? 0);
  return (
    (s.updatedReplicas ?? 0) > (o.updatedReplicas ?? 0) ||
    newOld < oldOld ||
    (s.readyReplicas ?? 0) > (o.readyReplicas ?? 0) ||
    (s.availableReplicas ?? 0) > (o.availableReplicas ?? 0)
  );
}

export function deploymentTimedOut(d: Deployment, s: DeploymentStatus, now: number): boolean {
  if (!hasProgressDeadline(d)) return false;
  const cond = getCondition(s, "Progressing");
  if (!cond) return false;
  if (cond.reason === NEW_RS_AVAILABLE_REASON) return false;
  if (cond.reason === TIMED_OUT_REASON) return true;
  const from = Date.parse(cond.lastUpdateTime ?? "");
  return from + d.spec!.progressDeadlineSeconds! * 1000 < now;
}

/**
 * The status after a rollout step (syncRolloutStatus), and when to look again for a stuck
 * rollout's deadline.
 */
export function rolloutStatus(
  d: Deployment,
  allRSs: ReplicaSet[],
  newRS: ReplicaSet | undefined,
  now: number,
): { status: DeploymentStatus; requeueAfter?: number } {
  const status = calculateStatus(allRSs, newRS, d, now);
  if (!hasProgressDeadline(d)) removeCondition(status, "Progressing");
  const current = getCondition(d.status, "Progressing");
  const complete =
    status.replicas === status.updatedReplicas && current?.reason === NEW_RS_AVAILABLE_REASON;
  if (hasProgressDeadline(d) && !complete) {
    const name = newRS?.metadata?.name;
    if (deploymentComplete(d, status)) {
      const msg = name
        ? `ReplicaSet "${name}" has successfully progressed.`
        : `Deployment "${d.metadata?.name}" has successfully progressed.`;
      setCondition(status, newCondition("Progressing", "True", NEW_RS_AVAILABLE_REASON, msg, now));
    } else if (deploymentProgressing(d, status)) {
      const msg = name
        ? `ReplicaSet "${name}" is progressing.`
        : `Deployment "${d.metadata?.name}" is progressing.`;
      const cond = newCondition("Progressing", "True", REPLICASET_UPDATED_REASON, msg, now);
      if (current) {
        if (current.status === "True") cond.lastTransitionTime = current.lastTransitionTime;
        removeCondition(status, "Progressing");
      }
      setCondition(status, cond);
    } else if (deploymentTimedOut(d, status, now)) {
      const msg = name
        ? `ReplicaSet "${name}" has timed out progressing.`
        : `Deployment "${d.metadata?.name}" has timed out progressing.`;
      setCondition(status, newCondition("Progressing", "False", TIMED_OUT_REASON, msg, now));
    }
  }
  const failure = [...(newRS ? [newRS] : []), ...allRSs.filter((rs) => rs !== newRS)]
    .flatMap((rs) => rs.status?.conditions ?? [])
    .find((c) => c.type === "ReplicaFailure");
  if (failure)
    setCondition(status, {
      type: "ReplicaFailure",
      status: failure.status,
      reason: failure.reason,
      message: failure.message,
      lastTransitionTime: failure.lastTransitionTime,
      lastUpdateTime: failure.lastTransitionTime,
    });
  else removeCondition(status, "ReplicaFailure");
  if (status.conditions?.length === 0) delete status.conditions;

  // requeueStuckDeployment
  let requeueAfter: number | undefined;
  const cond = getCondition(d.status, "Progressing");
  if (
    hasProgressDeadline(d) &&
    cond &&
    cond.reason !== NEW_RS_AVAILABLE_REASON &&
    cond.reason !== TIMED_OUT_REASON &&
    !deploymentComplete(d, status)
  ) {
    const after =
      Date.parse(cond.lastUpdateTime ?? "") + d.spec!.progressDeadlineSeconds! * 1000 - now;
    requeueAfter = Math.max(1, after < 1000 ? 1 : after);
  }
  return requeueAfter === undefined ? { status } : { status, requeueAfter };
}

/** Old ReplicaSets to delete beyond revisionHistoryLimit: the oldest, scaled to 0 and settled. */
export function planCleanup(d: Deployment, oldRSs: ReplicaSet[]): ReplicaSet[] {
  const limit = d.spec?.revisionHistoryLimit;
  if (limit === undefined || limit === null) return [];
  const cleanable = oldRSs.filter((rs) => !rs.metadata?.deletionTimestamp);
  const diff = cleanable.length - limit;
  if (diff <= 0) return [];
  const sorted = [...cleanable].sort((a, b) => {
    const d2 = revisionOf(a) - revisionOf(b);
    return d2 !== 0 ? d2 : byCreation(a, b);
  });
  const out: ReplicaSet[] = [];
  for (let i = 0; i < diff; i++) {
    const rs = sorted[i]!;
    if (
      (rs.status?.replicas ?? 0) !== 0 ||
      replicasOf(rs) !== 0 ||
      (rs.metadata?.generation ?? 0) > (rs.status?.observedGeneration ?? 0) ||
      rs.metadata?.deletionTimestamp
    )
      continue;
    out.push(rs);
  }
  return out;
}

/** Old pods still around for Recreate: any non-terminal pod of an old ReplicaSet. */
export function oldPodsRunning(
  newRS: ReplicaSet | undefined,
  oldRSs: ReplicaSet[],
  podsByRS: Map<string, Pod[]>,
): boolean {
  if (oldRSs.reduce((n, rs) => n + (rs.status?.replicas ?? 0), 0) > 0) return true;
  for (const [uid, pods] of podsByRS) {
    if (newRS && newRS.metadata?.uid === uid) continue;
    for (const p of pods) {
      const phase = p.status?.phase;
      if (phase === "Failed" || phase === "Succeeded") continue;
      return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Wiring.

class Requeue extends Error {}

export const deploymentDescriptor: ControllerDescriptor = {
  name: "deployment",
  aliases: ["deployment-controller"],
  serviceAccount: "deployment-controller",
  async start(ctx, signal) {
    await deploymentController(ctx).start(signal);
  },
};

export function deploymentController(ctx: ControllerContext) {
  const { client, informers, clock } = ctx;
  const recorder = ctx.recorder("deployment-controller");
  const deployments = informers.informer("apps/v1/Deployment");
  const replicaSets = informers.informer("apps/v1/ReplicaSet", {
    indexers: { [CONTROLLER_UID_INDEX]: controllerUIDIndexFunc },
  }) as Informer<ReplicaSet>;
  const pods = informers.informer("v1/Pod", {
    indexers: { [CONTROLLER_UID_INDEX]: controllerUIDIndexFunc },
  }) as Informer<Pod>;
  const rsClient = client.resource("apps/v1/ReplicaSet");
  const dClient = client.resource("apps/v1/Deployment");

  const ownerOfRS = (rs: ReplicaSet | undefined): Deployment | undefined => {
    const ref = rs && controllerRef(rs);
    if (!ref || ref.kind !== "Deployment") return undefined;
    const d = deployments.store.getByName(rs.metadata?.namespace ?? "", ref.name);
    return d?.metadata?.uid === ref.uid ? d : undefined;
  };

  async function updateStatus(d: Deployment): Promise<Deployment> {
    return dClient.updateStatus(d);
  }

  /** Scales a ReplicaSet and sets its replicas annotations; records ScalingReplicaSet. */
  async function scaleReplicaSet(rs: ReplicaSet, to: number, d: Deployment): Promise<ReplicaSet> {
    const desired = deploymentReplicas(d);
    const max = desired + maxSurge(d);
    const from = replicasOf(rs);
    const sizeChanges = from !== to;
    if (!sizeChanges && !replicasAnnotationsNeedUpdate(rs, desired, max)) return rs;
    const copy = structuredClone(rs);
    copy.spec!.replicas = to;
    setReplicasAnnotations(copy, desired, max);
    const updated = await rsClient.update(copy);
    if (sizeChanges)
      recorder.event(
        d,
        "Normal",
        "ScalingReplicaSet",
        `Scaled ${from < to ? "up" : "down"} replica set ${updated.metadata?.name} from ${from} to ${to}`,
      );
    return updated;
  }

  async function applyScale(
    d: Deployment,
    rsList: ReplicaSet[],
    actions: ScaleAction[],
  ): Promise<boolean> {
    const byName = new Map(rsList.map((rs) => [rs.metadata!.name!, rs]));
    let scaled = false;
    for (const a of actions) {
      const rs = byName.get(a.name);
      if (!rs) continue;
      const updated = await scaleReplicaSet(rs, a.to, d);
      if (replicasOf(updated) !== replicasOf(rs)) scaled = true;
      byName.set(a.name, updated);
      const i = rsList.indexOf(rs);
      if (i >= 0) rsList[i] = updated;
    }
    return scaled;
  }

  async function claimReplicaSets(d: Deployment): Promise<ReplicaSet[]> {
    const ns = d.metadata!.namespace!;
    const candidates = [
      ...replicaSets.store.byIndex(CONTROLLER_UID_INDEX, d.metadata!.uid!),
      ...replicaSets.store
        .byIndex(CONTROLLER_UID_INDEX, "")
        .filter((rs) => rs.metadata?.namespace === ns),
    ];
    return claim<ReplicaSet>({
      owner: d,
      ownerRef: newControllerRef(d, "apps/v1", "Deployment"),
      candidates,
      matches: (rs) => selectorMatches(d.spec?.selector, rs.metadata?.labels),
      client: rsClient.namespace(ns),
      getOwner: () => dClient.namespace(ns).get(d.metadata!.name!),
    });
  }

  /**
   * The new ReplicaSet (created when asked and missing) and the old ones, with revisions synced
   * (getAllReplicaSetsAndSyncRevision). Throws `Requeue` after writes that the next sync builds on.
   */
  async function newAndOld(
    d: Deployment,
    rsList: ReplicaSet[],
    create: boolean,
  ): Promise<{ newRS: ReplicaSet | undefined; oldRSs: ReplicaSet[]; d: Deployment }> {
    const existing = findNewReplicaSet(d, rsList);
    const oldRSs = rsList.filter((rs) => rs !== existing);
    const newRevision = String(maxRevision(oldRSs) + 1);
    const now = clock.now();
    if (existing) {
      const copy = structuredClone(existing);
      const annotationsUpdated = setNewReplicaSetAnnotations(d, copy, newRevision, true);
      const minReadyChanged = (copy.spec?.minReadySeconds ?? 0) !== (d.spec?.minReadySeconds ?? 0);
      if (annotationsUpdated || minReadyChanged) {
        copy.spec!.minReadySeconds = d.spec?.minReadySeconds ?? 0;
        const updated = await rsClient.update(copy);
        return { newRS: updated, oldRSs, d };
      }
      let needsUpdate = setDeploymentRevision(
        d,
        copy.metadata?.annotations?.[REVISION_ANNOTATION] ?? "",
      );
      d.status ??= {};
      if (hasProgressDeadline(d) && !getCondition(d.status, "Progressing")) {
        setCondition(
          d.status,
          newCondition(
            "Progressing",
            "True",
            FOUND_NEW_RS_REASON,
            `Found new replica set "${copy.metadata?.name}"`,
            now,
          ),
        );
        needsUpdate = true;
      }
      // The status update carries the revision annotation too, as upstream's UpdateStatus.
      if (needsUpdate) d = await updateStatus(d);
      return { newRS: copy, oldRSs, d };
    }
    if (!create) return { newRS: undefined, oldRSs, d };

    const hash = computeHashOf(d);
    const newRS = newReplicaSetFor(d, hash);
    newRS.spec!.replicas = newRSNewReplicas(d, [...oldRSs, newRS], newRS);
    setNewReplicaSetAnnotations(d, newRS, newRevision, false);
    let created: ReplicaSet | undefined;
    let alreadyExists = false;
    try {
      created = await rsClient.create(newRS);
    } catch (err) {
      if (isStatusError(err, "AlreadyExists")) {
        alreadyExists = true;
        const found = replicaSets.store.getByName(d.metadata!.namespace!, newRS.metadata!.name!);
        const ref = found && controllerRef(found);
        if (
          found &&
          ref?.uid === d.metadata?.uid &&
          equalIgnoreHash(d.spec?.template, found.spec?.template)
        ) {
          created = found;
        } else {
          d.status ??= {};
          d.status.collisionCount = (d.status.collisionCount ?? 0) + 1;
          await updateStatus(d);
          throw err;
        }
      } else if (hasStatusCause(err, "NamespaceTerminating")) {
        throw err;
      } else {
        const msg = `Failed to create new replica set "${newRS.metadata?.name}": ${errorMessage(err)}`;
        if (hasProgressDeadline(d)) {
          d.status ??= {};
          setCondition(
            d.status,
            newCondition("Progressing", "False", FAILED_RS_CREATE_REASON, msg, now),
          );
          await updateStatus(d).catch(() => undefined);
        }
        recorder.event(d, "Warning", FAILED_RS_CREATE_REASON, msg);
        throw err;
      }
    }
    if (!alreadyExists && replicasOf(created) > 0)
      recorder.event(
        d,
        "Normal",
        "ScalingReplicaSet",
        `Scaled up replica set ${created.metadata?.name} from 0 to ${replicasOf(created)}`,
      );
    let needsUpdate = setDeploymentRevision(d, newRevision);
    d.status ??= {};
    if (!alreadyExists && hasProgressDeadline(d)) {
      setCondition(
        d.status,
        newCondition(
          "Progressing",
          "True",
          NEW_REPLICASET_REASON,
          `Created new replica set "${created.metadata?.name}"`,
          now,
        ),
      );
      needsUpdate = true;
    }
    if (needsUpdate) d = await updateStatus(d);
    return { newRS: created, oldRSs, d };
  }

  async function syncStatus(d: Deployment, all: ReplicaSet[], newRS: ReplicaSet | undefined) {
    const status = calculateStatus(all, newRS, d, clock.now());
    if (semanticEqual(d.status, status)) return;
    await updateStatus({ ...d, status });
  }

  /** Scaling of a paused Deployment or a scaling event (sync). */
  async function syncScale(d: Deployment, rsList: ReplicaSet[]): Promise<void> {
    const r = await newAndOld(d, rsList, false);
    d = r.d;
    const all = [...r.oldRSs, ...(r.newRS ? [r.newRS] : [])];
    await applyScale(d, all, planScale(d, r.newRS, r.oldRSs));
    const newRS = r.newRS
      ? all.find((x) => x.metadata?.name === r.newRS!.metadata?.name)
      : undefined;
    const oldRSs = all.filter((x) => x !== newRS);
    if (d.spec?.paused) await cleanup(d, oldRSs);
    await syncStatus(d, all, newRS);
  }

  async function cleanup(d: Deployment, oldRSs: ReplicaSet[]): Promise<void> {
    for (const rs of planCleanup(d, oldRSs)) {
      try {
        await rsClient.namespace(rs.metadata!.namespace!).delete(rs.metadata!.name!);
      } catch (err) {
        if (!isStatusError(err, "NotFound")) throw err;
      }
    }
  }

  async function syncRollout(d: Deployment, all: ReplicaSet[], newRS: ReplicaSet | undefined) {
    const { status, requeueAfter } = rolloutStatus(d, all, newRS, clock.now());
    if (!semanticEqual(d.status, status)) {
      await updateStatus({ ...d, status });
      return undefined;
    }
    return requeueAfter;
  }

  async function rolloutRolling(d: Deployment, rsList: ReplicaSet[]) {
    const r = await newAndOld(d, rsList, true);
    d = r.d;
    const newRS = r.newRS!;
    const all = [...r.oldRSs, newRS];
    const step = planRollingStep(d, newRS, r.oldRSs);
    if (step.actions.length) {
      const scaled = await applyScale(d, all, step.actions);
      if (scaled) {
        const latestNew = all[all.length - 1];
        return syncRollout(d, all, latestNew);
      }
    }
    const latestNew = all[all.length - 1];
    if (deploymentComplete(d, d.status ?? {})) await cleanup(d, all.slice(0, -1));
    return syncRollout(d, all, latestNew);
  }

  async function rolloutRecreate(d: Deployment, rsList: ReplicaSet[]) {
    let r = await newAndOld(d, rsList, false);
    d = r.d;
    let all = [...r.oldRSs, ...(r.newRS ? [r.newRS] : [])];
    const downs = filterActive(r.oldRSs).map((rs) => ({ name: rs.metadata!.name!, to: 0 }));
    if (downs.length && (await applyScale(d, all, downs))) return syncRollout(d, all, r.newRS);
    const podsByRS = new Map<string, Pod[]>();
    for (const rs of rsList) {
      const uid = rs.metadata!.uid!;
      podsByRS.set(uid, pods.store.byIndex(CONTROLLER_UID_INDEX, uid));
    }
    if (oldPodsRunning(r.newRS, r.oldRSs, podsByRS)) return syncRollout(d, all, r.newRS);
    if (!r.newRS) {
      r = await newAndOld(d, rsList, true);
      d = r.d;
      all = [...r.oldRSs, r.newRS!];
    }
    const newRS = all[all.length - 1]!;
    await applyScale(d, all, [{ name: newRS.metadata!.name!, to: deploymentReplicas(d) }]);
    if (deploymentComplete(d, d.status ?? {})) await cleanup(d, all.slice(0, -1));
    return syncRollout(d, all, all[all.length - 1]);
  }

  async function checkPausedConditions(d: Deployment): Promise<Deployment> {
    if (!hasProgressDeadline(d)) return d;
    const cond = getCondition(d.status, "Progressing");
    if (cond?.reason === TIMED_OUT_REASON) return d;
    const pausedCond = cond?.reason === PAUSED_DEPLOY_REASON;
    const now = clock.now();
    d.status ??= {};
    if (d.spec?.paused && !pausedCond) {
      setCondition(
        d.status,
        newCondition("Progressing", "Unknown", PAUSED_DEPLOY_REASON, "Deployment is paused", now),
      );
    } else if (!d.spec?.paused && pausedCond) {
      setCondition(
        d.status,
        newCondition("Progressing", "Unknown", RESUMED_DEPLOY_REASON, "Deployment is resumed", now),
      );
    } else return d;
    return updateStatus(d);
  }

  const c = controller({
    name: "deployment",
    informers,
    for: "apps/v1/Deployment",
    owns: ["apps/v1/ReplicaSet"],
    watches: [
      // Orphan ReplicaSets may be adopted by Deployments whose selector matches them.
      watchOf("apps/v1/ReplicaSet", (rs: ReplicaSet) => {
        if (controllerRef(rs) || rs.metadata?.deletionTimestamp) return [];
        return deployments.store
          .listNamespace(rs.metadata?.namespace ?? "")
          .filter((d) => selectorMatches(d.spec?.selector, rs.metadata?.labels))
          .map(objectKey);
      }),
      // Recreate waits for the old pods to be gone.
      watchOf("v1/Pod", (pod: Pod) => {
        const ref = controllerRef(pod);
        if (!ref || ref.kind !== "ReplicaSet") return [];
        const rs = replicaSets.store.getByName(pod.metadata?.namespace ?? "", ref.name);
        const d = ownerOfRS(rs);
        return d && !isRollingUpdate(d) ? [objectKey(d)] : [];
      }),
    ],
    workers: ctx.options.concurrency.deployment ?? 5,
    clock,
    onError: (err, req) => {
      if (!(err instanceof Requeue) && !isStatusError(err, "Conflict"))
        ctx.log.error(`Error syncing deployment "${req.key}": ${errorMessage(err)}`);
    },
    reconcile: async ({ key }) => {
      const cached = deployments.store.get(key);
      if (!cached) return;
      let d = structuredClone(cached);
      if (selectorIsEmpty(d.spec?.selector)) {
        recorder.event(
          d,
          "Warning",
          "SelectingAll",
          "This deployment is selecting all pods. A non-empty selector is required.",
        );
        if ((d.status?.observedGeneration ?? 0) < (d.metadata?.generation ?? 0)) {
          d.status = { ...d.status, observedGeneration: d.metadata?.generation ?? 0 };
          await updateStatus(d);
        }
        return;
      }
      const rsList = await claimReplicaSets(d);
      if (d.metadata?.deletionTimestamp) {
        const r = await newAndOld(d, rsList, false);
        await syncStatus(r.d, [...r.oldRSs, ...(r.newRS ? [r.newRS] : [])], r.newRS);
        return;
      }
      d = await checkPausedConditions(d);
      if (d.spec?.paused) return void (await syncScale(d, rsList));
      if (isScalingEvent(d, rsList)) return void (await syncScale(d, rsList));
      const after = isRollingUpdate(d)
        ? await rolloutRolling(d, rsList)
        : await rolloutRecreate(d, rsList);
      return after !== undefined ? { requeueAfter: after } : undefined;
    },
  });
  return c;
}

export { creationTime };
