/**
 * The Job controller (upstream 1.32's pkg/controller/job): runs pods from a Job's template until
 * `completions` of them succeed (or, without completions, until one succeeds and the rest end),
 * at most `parallelism` at a time, and fails the Job past its `backoffLimit`, its
 * `activeDeadlineSeconds`, a pod failure policy's FailJob rule or too many failed indexes.
 *
 * Pod accounting follows upstream's finalizer tracking: every pod is created with the
 * `batch.kubernetes.io/job-tracking` finalizer; a finished pod's uid first goes into
 * `status.uncountedTerminatedPods`, then its finalizer is removed, then it moves into
 * `status.succeeded`/`status.failed` (for an Indexed Job, into `status.completedIndexes`). A
 * pod is so counted exactly once even when the controller restarts midway or the pod is deleted.
 *
 * Finishing takes two writes, as 1.32 does: first the interim `SuccessCriteriaMet` or
 * `FailureTarget` condition (while pods are still being removed), then, once no pod is
 * uncounted or terminating, `Complete` (with `completionTime`) or `Failed`, with the
 * `Completed` event or a Warning event carrying the failure reason.
 *
 * After a pod failure new pods wait 10 s, doubling with every consecutive failure up to 10
 * minutes (upstream's back-off store, kept per Job in memory).
 *
 * `JobSyncer.sync` is the decision core: it sees a Job and its claimed pods and acts through a
 * `JobEffects` interface, so unit tests drive it with fakes; `jobDescriptor` wires it to the
 * informers and the API.
 */

import type { Job, JobCondition, JobStatus } from "kubernetes-types/batch/v1.js";
import type { Container, Pod, PodTemplateSpec } from "kubernetes-types/core/v1.js";
import { hasStatusCause, isStatusError } from "../api/status.js";
import type { Clock } from "../client/clock.js";
import { controller } from "../client/controller.js";
import type { Informer } from "../client/informer.js";
import { ItemExponentialFailureRateLimiter } from "../client/ratelimit.js";
import type { ResourceClient } from "../client/resources.js";
import { objectKey } from "../client/resources.js";
import type { ControllerContext, ControllerDescriptor } from "./context.js";
import { errorMessage } from "./context.js";
import { claim, podFromTemplate, rankPodsForDeletion } from "./podcontrol.js";
import {
  CONTROLLER_UID_INDEX,
  controllerRef,
  controllerUIDIndexFunc,
  Expectations,
  isPodActive,
  isPodReady,
  newControllerRef,
  nowTime,
  selectorMatches,
  semanticEqual,
} from "./util.js";

export const JOB_TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking";
export const JOB_COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index";
export const JOB_INDEX_FAILURE_COUNT_ANNOTATION = "batch.kubernetes.io/job-index-failure-count";
export const JOB_INDEX_IGNORED_FAILURE_COUNT_ANNOTATION =
  "batch.kubernetes.io/job-index-ignored-failure-count";
export const JOB_COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX";
/** spec.managedBy of Jobs this controller syncs (absent means the same). */
export const JOB_CONTROLLER_NAME = "kubernetes.io/job-controller";

/** Default and maximum delay of pod re-creation after failures (ms). */
export const DEFAULT_POD_FAILURE_BACKOFF = 10_000;
export const MAX_POD_FAILURE_BACKOFF = 600_000;
/** Most uids in status.uncountedTerminatedPods, and most pods created or deleted per sync. */
export const MAX_UNCOUNTED_PODS = 500;
export const MAX_POD_CREATE_DELETE_PER_SYNC = 500;
/** Delay of a sync caused by pod events or status changes (upstream's syncJobBatchPeriod). */
export const SYNC_JOB_BATCH_PERIOD = 1000;
const INT32_MAX = 2147483647;
/** names.MaxGeneratedNameLength: 63 minus the five random characters. */
const MAX_GENERATED_NAME_LENGTH = 58;

// ---------------------------------------------------------------------------------------------
// Completion indexes as ordered intervals ("1,3-5").

export interface Interval {
  first: number;
  last: number;
}
export type Intervals = Interval[];

/** Parses `completedIndexes`/`failedIndexes`, dropping what is at or past `completions`. */
export function parseIndexes(s: string | undefined, completions: number): Intervals {
  if (!s) return [];
  const out: Intervals = [];
  for (const part of s.split(",")) {
    const limits = part.split("-");
    const first = goAtoi(limits[0] ?? "");
    if (first === undefined) continue;
    if (first >= completions) break;
    let last = first;
    if (limits.length > 1) {
      const l = goAtoi(limits[1] ?? "");
      if (l === undefined) continue;
      last = Math.min(l, completions - 1);
    }
    const prev = out[out.length - 1];
    if (prev && prev.last === first - 1) prev.last = last;
    else out.push({ first, last });
  }
  return out;
}

function goAtoi(s: string): number | undefined {
  if (!/^[+-]?\d+$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** The union of two ordered interval lists, adjacent intervals merged. */
export function mergeIntervals(a: Intervals, b: Intervals): Intervals {
  const out: Intervals = [];
  const push = (iv: Interval) => {
    const last = out[out.length - 1];
    if (!last || iv.first > last.last + 1) out.push({ ...iv });
    else if (last.last < iv.last) last.last = iv.last;
  };
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i]!.first < b[j]!.first) push(a[i++]!);
    else push(b[j++]!);
  }
  while (i < a.length) push(a[i++]!);
  while (j < b.length) push(b[j++]!);
  return out;
}

/** `intervals` plus the (ascending) `indexes`. */
export function withIndexes(intervals: Intervals, indexes: number[]): Intervals {
  return mergeIntervals(
    intervals,
    indexes.map((ix) => ({ first: ix, last: ix })),
  );
}

export function intervalsTotal(intervals: Intervals): number {
  let n = 0;
  for (const iv of intervals) n += iv.last - iv.first + 1;
  return n;
}

/** "0,1,3-5": a pair prints as two numbers, three or more as a range. */
export function formatIntervals(intervals: Intervals): string {
  return intervals
    .map((iv) =>
      iv.last === iv.first
        ? String(iv.first)
        : `${iv.first}${iv.last === iv.first + 1 ? "," : "-"}${iv.last}`,
    )
    .join(",");
}

export function intervalsHave(intervals: Intervals | undefined, ix: number): boolean {
  return !!intervals?.some((iv) => iv.first <= ix && ix <= iv.last);
}

/** The pod's completion index, or -1 when it has none (or a bad one). */
export function completionIndex(pod: Pod): number {
  const v = pod.metadata?.annotations?.[JOB_COMPLETION_INDEX_ANNOTATION];
  if (v === undefined) return -1;
  const n = goAtoi(v);
  return n === undefined || n < 0 ? -1 : n;
}

function indexSet(pods: Pod[]): number[] {
  const s = new Set<number>();
  for (const p of pods) {
    const ix = completionIndex(p);
    if (ix >= 0) s.add(ix);
  }
  return [...s].sort((a, b) => a - b);
}

// ---------------------------------------------------------------------------------------------
// Job and pod predicates.

export function isIndexedJob(job: Job): boolean {
  return job.spec?.completionMode === "Indexed";
}

export function hasBackoffLimitPerIndex(job: Job): boolean {
  return job.spec?.backoffLimitPerIndex !== undefined && job.spec.backoffLimitPerIndex !== null;
}

export function hasJobTrackingFinalizer(pod: Pod): boolean {
  return !!pod.metadata?.finalizers?.includes(JOB_TRACKING_FINALIZER);
}

function findCondition(job: Job, type: string): JobCondition | undefined {
  return job.status?.conditions?.find((c) => c.type === type);
}

/** Complete or Failed is True. */
export function isJobFinished(job: Job): boolean {
  return !!job.status?.conditions?.some(
    (c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True",
  );
}

/** Only failed pods are replaced (podReplacementPolicy Failed, or a pod failure policy). */
export function onlyReplaceFailedPods(job: Job): boolean {
  return job.spec?.podReplacementPolicy === "Failed" || !!job.spec?.podFailurePolicy;
}

/** Failed, or (unless only failed pods count) deleted before succeeding. */
export function isPodFailed(pod: Pod, job: Job): boolean {
  const phase = pod.status?.phase;
  if (phase === "Failed") return true;
  if (onlyReplaceFailedPods(job)) return false;
  return !!pod.metadata?.deletionTimestamp && phase !== "Succeeded";
}

/** Being deleted and not yet finished (controller.IsPodTerminating). */
export function isPodTerminating(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return !!pod.metadata?.deletionTimestamp && phase !== "Succeeded" && phase !== "Failed";
}

function jobSuspended(job: Job): boolean {
  return job.spec?.suspend === true;
}

// ---------------------------------------------------------------------------------------------
// Pod failure policy and success policy.

export type PodFailurePolicyAction = "FailJob" | "FailIndex" | "Ignore" | "Count";

/**
 * How the Job's pod failure policy judges a failed pod: a FailJob message, whether the failure
 * counts towards the back-off limit, and the action of the matching rule.
 */
export function matchPodFailurePolicy(
  job: Job,
  pod: Pod,
): { failJobMessage?: string; countFailed: boolean; action?: PodFailurePolicyAction } {
  const policy = job.spec?.podFailurePolicy;
  if (!policy) return { countFailed: true };
  const ns = pod.metadata?.namespace ?? "";
  const name = pod.metadata?.name ?? "";
  for (const [index, rule] of (policy.rules ?? []).entries()) {
    const action = rule.action as PodFailurePolicyAction;
    if (rule.onExitCodes) {
      const req = rule.onExitCodes;
      const statuses = [
        ...(pod.status?.containerStatuses ?? []),
        ...(pod.status?.initContainerStatuses ?? []),
      ];
      const cs = statuses.find((s) => {
        const t = s.state?.terminated;
        if (!t || (req.containerName && req.containerName !== s.name)) return false;
        const code = t.exitCode ?? 0;
        if (code === 0) return false;
        const inValues = (req.values ?? []).includes(code);
        return req.operator === "In" ? inValues : req.operator === "NotIn" ? !inValues : false;
      });
      if (!cs) continue;
      if (action === "FailJob")
        return {
          failJobMessage: `Container ${cs.name} for pod ${ns}/${name} failed with exit code ${cs.state?.terminated?.exitCode ?? 0} matching FailJob rule at index ${index}`,
          countFailed: true,
          action,
        };
      return { countFailed: action !== "Ignore", action };
    } else if (rule.onPodConditions) {
      const cond = (pod.status?.conditions ?? []).find((c) =>
        rule.onPodConditions!.some((p) => p.type === c.type && (p.status ?? "True") === c.status),
      );
      if (!cond) continue;
      if (action === "FailJob")
        return {
          failJobMessage: `Pod ${ns}/${name} has condition ${cond.type} matching FailJob rule at index ${index}`,
          countFailed: true,
          action,
        };
      return { countFailed: action !== "Ignore", action };
    }
  }
  return { countFailed: true };
}

/** The message of the first success policy rule the succeeded indexes meet, if any. */
export function matchSuccessPolicy(job: Job, succeeded: Intervals): string | undefined {
  const rules = job.spec?.successPolicy?.rules;
  if (!rules || succeeded.length === 0) return undefined;
  const completions = job.spec?.completions ?? 0;
  for (const [index, rule] of rules.entries()) {
    if (rule.succeededIndexes !== undefined && rule.succeededIndexes !== null) {
      const required = parseIndexes(rule.succeededIndexes, completions);
      if (required.length === 0) continue;
      let contains = 0;
      for (const r of required)
        for (const s of succeeded) {
          const overlap = Math.min(r.last, s.last) - Math.max(r.first, s.first) + 1;
          if (overlap > 0) contains += overlap;
        }
      if (
        contains === intervalsTotal(required) ||
        (rule.succeededCount !== undefined && contains >= rule.succeededCount)
      )
        return `Matched rules at index ${index}`;
    } else if (
      rule.succeededCount !== undefined &&
      intervalsTotal(succeeded) >= rule.succeededCount
    )
      return `Matched rules at index ${index}`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Back-off of pod re-creation.

export interface BackoffRecord {
  key: string;
  failuresAfterLastSuccess: number;
  lastFailureTime?: number;
}

function parseTime(t: string | undefined): number | undefined {
  if (!t) return undefined;
  const ms = Date.parse(t);
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * When a pod finished: the latest container finish time when every container terminated, else
 * the Ready=False transition, else the deletion time less the grace period, else its creation.
 */
export function podFinishedTime(pod: Pod): number {
  const statuses = pod.status?.containerStatuses ?? [];
  let fromContainers: number | undefined;
  let allTerminated = statuses.length > 0;
  for (const s of statuses) {
    const at = parseTime(s.state?.terminated?.finishedAt);
    if (at === undefined) {
      allTerminated = false;
      break;
    }
    if (fromContainers === undefined || at > fromContainers) fromContainers = at;
  }
  if (allTerminated && fromContainers !== undefined) return fromContainers;
  const ready = pod.status?.conditions?.find((c) => c.type === "Ready");
  const readyAt = ready?.status === "False" ? parseTime(ready.lastTransitionTime) : undefined;
  if (readyAt !== undefined) return readyAt;
  const deleted = parseTime(pod.metadata?.deletionTimestamp);
  if (deleted !== undefined)
    return deleted - (pod.metadata?.deletionGracePeriodSeconds ?? 0) * 1000;
  return parseTime(pod.metadata?.creationTimestamp) ?? 0;
}

/**
 * The back-off record after this sync's newly finished pods: failures count up from the last
 * success; a success resets the count to the failures that finished after it.
 */
export function nextBackoffRecord(
  prev: BackoffRecord,
  newSucceeded: Pod[],
  newFailed: Pod[],
): BackoffRecord {
  const rec: BackoffRecord = { ...prev };
  const succeeded = newSucceeded.map(podFinishedTime).sort((a, b) => a - b);
  const failed = newFailed.map(podFinishedTime).sort((a, b) => a - b);
  if (succeeded.length === 0) {
    if (failed.length === 0) return rec;
    rec.failuresAfterLastSuccess += failed.length;
    rec.lastFailureTime = failed[failed.length - 1];
    return rec;
  }
  rec.failuresAfterLastSuccess = 0;
  delete rec.lastFailureTime;
  const lastSuccess = succeeded[succeeded.length - 1]!;
  for (let i = failed.length - 1; i >= 0; i--) {
    const t = failed[i]!;
    if (t <= lastSuccess) break;
    rec.lastFailureTime ??= t;
    rec.failuresAfterLastSuccess++;
  }
  return rec;
}

/** How long new pods still wait after `failures` consecutive failures, the last at `last`. */
export function remainingBackoff(
  failures: number,
  last: number | undefined,
  now: number,
  base = DEFAULT_POD_FAILURE_BACKOFF,
  max = MAX_POD_FAILURE_BACKOFF,
): number {
  if (failures === 0 || last === undefined) return 0;
  let backoff = base;
  for (let i = 1; i < failures; i++) {
    backoff *= 2;
    if (backoff >= max) {
      backoff = max;
      break;
    }
  }
  const elapsed = now - last;
  return backoff < elapsed ? 0 : backoff - elapsed;
}

function annotationInt(pod: Pod | undefined, key: string): number {
  const v = pod?.metadata?.annotations?.[key];
  if (v === undefined) return 0;
  const n = goAtoi(v);
  return n === undefined || n < 0 || n > INT32_MAX ? 0 : n;
}

// ---------------------------------------------------------------------------------------------
// Which pods to create and remove.

/**
 * The first `count` indexes below `completions` that no active pod, succeeded or failed index
 * (nor, when only failed pods are replaced, a terminating pod) covers.
 */
export function firstPendingIndexes(
  job: Job,
  pods: Pod[],
  active: Pod[],
  succeeded: Intervals,
  failed: Intervals | undefined,
  count: number,
  completions: number,
): number[] {
  if (count === 0) return [];
  let nonPending = withIndexes(succeeded, indexSet(active));
  if (onlyReplaceFailedPods(job))
    nonPending = withIndexes(nonPending, indexSet(pods.filter(isPodTerminating)));
  if (failed) nonPending = mergeIntervals(nonPending, failed);
  const out: number[] = [];
  let candidate = 0;
  for (const iv of nonPending) {
    for (; candidate < completions && out.length < count && candidate < iv.first; candidate++)
      out.push(candidate);
    if (candidate < iv.last + 1) candidate = iv.last + 1;
  }
  for (; candidate < completions && out.length < count; candidate++) out.push(candidate);
  return out;
}

function byCompletionIndex(a: Pod, b: Pod): number {
  return completionIndex(a) - completionIndex(b);
}

/**
 * Active pods to delete: for an Indexed Job, pods without a valid index and all but the best of
 * each repeated index first; then the least advanced pods (controller.ActivePods order) until
 * at least `rmAtLeast` are chosen.
 */
export function activePodsForRemoval(job: Job, pods: Pod[], rmAtLeast: number): Pod[] {
  const rm: Pod[] = [];
  let left: Pod[] = [];
  if (isIndexedJob(job)) {
    const completions = job.spec?.completions ?? 0;
    const sorted = [...pods].sort(byCompletionIndex);
    const groups = new Map<number, Pod[]>();
    for (const p of sorted) {
      const ix = completionIndex(p);
      if (ix < 0 || ix >= completions) {
        rm.push(p);
        continue;
      }
      const g = groups.get(ix) ?? [];
      g.push(p);
      groups.set(ix, g);
    }
    for (const g of groups.values()) {
      if (g.length === 1) {
        left.push(g[0]!);
        continue;
      }
      const ranked = rankPodsForDeletion(g, []);
      rm.push(...ranked.slice(0, -1));
      left.push(ranked[ranked.length - 1]!);
    }
  } else left = pods;
  if (rm.length < rmAtLeast)
    rm.push(...rankPodsForDeletion(left, []).slice(0, rmAtLeast - rm.length));
  return rm;
}

/**
 * With restartPolicy OnFailure: whether the restarts of running and pending pods' containers
 * reach the back-off limit (any restart when it is 0).
 */
export function pastBackoffLimitOnFailure(job: Job, pods: Pod[]): boolean {
  if (job.spec?.template?.spec?.restartPolicy !== "OnFailure") return false;
  let restarts = 0;
  for (const p of pods) {
    const phase = p.status?.phase;
    if (phase !== "Running" && phase !== "Pending") continue;
    for (const s of p.status?.initContainerStatuses ?? []) restarts += s.restartCount ?? 0;
    for (const s of p.status?.containerStatuses ?? []) restarts += s.restartCount ?? 0;
  }
  const limit = job.spec?.backoffLimit ?? 6;
  return limit === 0 ? restarts > 0 : restarts >= limit;
}

export function newJobCondition(
  type: string,
  status: "True" | "False",
  reason: string,
  message: string,
  now: number,
): JobCondition {
  const t = nowTime(now);
  const c: JobCondition = { type, status, lastProbeTime: t, lastTransitionTime: t };
  if (reason) c.reason = reason;
  if (message) c.message = message;
  return c;
}

/**
 * Sets the condition `type` to `status`/`reason`/`message` (appending it unless False);
 * answers whether the list changed.
 */
export function ensureJobCondition(
  status: JobStatus,
  type: string,
  value: "True" | "False",
  reason: string,
  message: string,
  now: number,
): boolean {
  const conditions = (status.conditions ??= []);
  const i = conditions.findIndex((c) => c.type === type);
  if (i >= 0) {
    const c = conditions[i]!;
    if (c.status !== value || (c.reason ?? "") !== reason || (c.message ?? "") !== message) {
      conditions[i] = newJobCondition(type, value, reason, message, now);
      return true;
    }
    return false;
  }
  if (value !== "False") {
    conditions.push(newJobCondition(type, value, reason, message, now));
    return true;
  }
  if (conditions.length === 0) delete status.conditions;
  return false;
}

/** The pod template a Job's pods are made from (index-independent part). */
export function jobPodTemplate(job: Job): PodTemplateSpec {
  const template = structuredClone(job.spec?.template ?? {}) as PodTemplateSpec;
  template.metadata ??= {};
  if (isIndexedJob(job)) {
    const addEnv = (c: Container) => {
      if (c.env?.some((e) => e.name === JOB_COMPLETION_INDEX_ENV)) return;
      (c.env ??= []).push({
        name: JOB_COMPLETION_INDEX_ENV,
        valueFrom: {
          fieldRef: { fieldPath: `metadata.labels['${JOB_COMPLETION_INDEX_ANNOTATION}']` },
        },
      });
    };
    template.spec?.initContainers?.forEach(addEnv);
    template.spec?.containers?.forEach(addEnv);
  }
  const finalizers = (template.metadata.finalizers ??= []);
  if (!finalizers.includes(JOB_TRACKING_FINALIZER)) finalizers.push(JOB_TRACKING_FINALIZER);
  return template;
}

/** `<job>-<index>-`, cut so that generated names stay valid. */
export function podGenerateNameWithIndex(jobName: string, index: number): string {
  const suffix = `-${index}-`;
  const prefix = jobName + suffix;
  return prefix.length > MAX_GENERATED_NAME_LENGTH
    ? prefix.slice(0, MAX_GENERATED_NAME_LENGTH - suffix.length) + suffix
    : prefix;
}

/** The pod of `index` (or of no index, -1) for `job` from its prepared template. */
export function podForJob(
  job: Job,
  template: PodTemplateSpec,
  index: number,
  replacing?: Pod,
): Pod {
  const t = structuredClone(template);
  t.metadata ??= {};
  let generateName: string | undefined;
  if (index >= 0) {
    t.metadata.annotations = {
      ...t.metadata.annotations,
      [JOB_COMPLETION_INDEX_ANNOTATION]: String(index),
    };
    t.metadata.labels = { ...t.metadata.labels, [JOB_COMPLETION_INDEX_ANNOTATION]: String(index) };
    if (t.spec) t.spec.hostname = `${job.metadata?.name}-${index}`;
    generateName = podGenerateNameWithIndex(job.metadata?.name ?? "", index);
    if (hasBackoffLimitPerIndex(job)) {
      let failures = 0;
      let ignored = 0;
      if (replacing) {
        failures = annotationInt(replacing, JOB_INDEX_FAILURE_COUNT_ANNOTATION);
        ignored = annotationInt(replacing, JOB_INDEX_IGNORED_FAILURE_COUNT_ANNOTATION);
        if (matchPodFailurePolicy(job, replacing).countFailed) failures++;
        else ignored++;
      }
      t.metadata.annotations[JOB_INDEX_FAILURE_COUNT_ANNOTATION] = String(failures);
      if (ignored > 0)
        t.metadata.annotations[JOB_INDEX_IGNORED_FAILURE_COUNT_ANNOTATION] = String(ignored);
    }
  }
  const pod = podFromTemplate(
    t,
    job.metadata?.namespace ?? "",
    job.metadata?.name ?? "",
    newControllerRef(job, "batch/v1", "Job"),
  );
  if (generateName) pod.metadata!.generateName = generateName;
  return pod;
}

// ---------------------------------------------------------------------------------------------
// The sync.

/** What a sync does to the world. */
export interface JobEffects {
  createPod(namespace: string, pod: Pod): Promise<Pod>;
  deletePod(namespace: string, name: string): Promise<void>;
  /** A strategic merge patch of a pod. */
  patchPod(namespace: string, name: string, patch: unknown): Promise<void>;
  /** PUT of the Job's status; answers the stored Job. */
  updateStatus(job: Job): Promise<Job>;
  event(job: Job, type: "Normal" | "Warning", reason: string, message: string): void;
  /** Syncs `key` again after `ms`. */
  enqueueAfter(key: string, ms: number): void;
}

/** The pod uids whose finalizer removal each Job waits to observe. */
export class FinalizerExpectations {
  private readonly items = new Map<string, Set<string>>();

  expect(key: string, uids: string[]): void {
    const s = this.items.get(key) ?? new Set<string>();
    for (const u of uids) s.add(u);
    this.items.set(key, s);
  }

  observed(key: string, uid: string): void {
    const s = this.items.get(key);
    if (!s) return;
    s.delete(uid);
    if (s.size === 0) this.items.delete(key);
  }

  expected(key: string): Set<string> {
    return new Set(this.items.get(key) ?? []);
  }

  delete(key: string): void {
    this.items.delete(key);
  }
}

interface SyncJobCtx {
  key: string;
  job: Job;
  pods: Pod[];
  finishedCondition?: JobCondition;
  activePods: Pod[];
  succeeded: number;
  failed: number;
  prevSucceededIndexes: Intervals;
  succeededIndexes: Intervals;
  failedIndexes?: Intervals;
  newBackoffRecord: BackoffRecord;
  expectedRmFinalizers: Set<string>;
  uncountedSucceeded: Set<string>;
  uncountedFailed: Set<string>;
  podsWithDelayedDeletionPerIndex: Map<number, Pod>;
  terminating: number;
  ready: number;
}

export interface JobSyncerOptions {
  effects: JobEffects;
  clock: Clock;
  podFailureBackoff?: number;
  maxPodFailureBackoff?: number;
}

const REMOVE_FINALIZER_PATCH = {
  metadata: { [`$deleteFromPrimitiveList/finalizers`]: [JOB_TRACKING_FINALIZER] },
};

function uidOf(p: Pod): string {
  return p.metadata?.uid ?? "";
}

/**
 * The Job sync of upstream's controller, over pods the caller has claimed. Keeps the
 * expectations (creations and deletions, finalizer removals) and the back-off records.
 */
export class JobSyncer {
  readonly expectations: Expectations;
  readonly finalizerExpectations = new FinalizerExpectations();
  readonly backoff = new Map<string, BackoffRecord>();
  private readonly fx: JobEffects;
  private readonly clock: Clock;
  private readonly baseBackoff: number;
  private readonly maxBackoff: number;

  constructor(o: JobSyncerOptions) {
    this.fx = o.effects;
    this.clock = o.clock;
    this.expectations = new Expectations(() => o.clock.now());
    this.baseBackoff = o.podFailureBackoff ?? DEFAULT_POD_FAILURE_BACKOFF;
    this.maxBackoff = o.maxPodFailureBackoff ?? MAX_POD_FAILURE_BACKOFF;
  }

  private now(): number {
    return this.clock.now();
  }

  /** The Job is gone: forget what was kept for it. */
  forget(key: string): void {
    this.expectations.delete(key);
    this.finalizerExpectations.delete(key);
    this.backoff.delete(key);
  }

  /**
   * One sync of `sharedJob` (from the cache; not modified) with its claimed `pods`.
   * `satisfied` is the state of the expectations read before the pods were listed.
   * Throws the first error of pod management or status writes.
   */
  async sync(key: string, sharedJob: Job, pods: Pod[], satisfied: boolean): Promise<void> {
    const managedBy = sharedJob.spec?.managedBy;
    if (managedBy && managedBy !== JOB_CONTROLLER_NAME) return;
    if (isJobFinished(sharedJob)) {
      this.backoff.delete(key);
      return;
    }
    const job = structuredClone(sharedJob);
    const mode = job.spec?.completionMode;
    if (mode && mode !== "NonIndexed" && mode !== "Indexed") {
      this.fx.event(
        job,
        "Warning",
        "UnknownCompletionMode",
        "Skipped Job sync because completion mode is unknown",
      );
      return;
    }
    const status = (job.status ??= {});
    status.uncountedTerminatedPods ??= {};
    const uncounted = status.uncountedTerminatedPods;
    const activePods = pods.filter(isPodActive);
    const ctx: SyncJobCtx = {
      key,
      job,
      pods,
      activePods,
      ready: activePods.filter(isPodReady).length,
      uncountedSucceeded: new Set(uncounted.succeeded ?? []),
      uncountedFailed: new Set(uncounted.failed ?? []),
      expectedRmFinalizers: this.finalizerExpectations.expected(key),
      terminating: pods.filter(isPodTerminating).length,
      succeeded: 0,
      failed: 0,
      prevSucceededIndexes: [],
      succeededIndexes: [],
      newBackoffRecord: { key, failuresAfterLastSuccess: 0 },
      podsWithDelayedDeletionPerIndex: new Map(),
    };
    let active = activePods.length;
    const newSucceeded = this.validPods(
      ctx,
      ctx.uncountedSucceeded,
      (p) => p.status?.phase === "Succeeded",
    );
    const newFailed = this.validPods(ctx, ctx.uncountedFailed, (p) => isPodFailed(p, job));
    const countedNewFailed = job.spec?.podFailurePolicy
      ? newFailed.filter((p) => matchPodFailurePolicy(job, p).countFailed).length
      : newFailed.length;
    ctx.succeeded = (status.succeeded ?? 0) + newSucceeded.length + ctx.uncountedSucceeded.size;
    ctx.failed = (status.failed ?? 0) + countedNewFailed + ctx.uncountedFailed.size;

    if (!status.startTime && !jobSuspended(job)) status.startTime = nowTime(this.now());

    ctx.newBackoffRecord = nextBackoffRecord(
      this.backoff.get(key) ?? { key, failuresAfterLastSuccess: 0 },
      newSucceeded,
      newFailed,
    );

    let manageError: unknown;
    const backoffLimit = job.spec?.backoffLimit ?? 6;
    const exceedsBackoffLimit = ctx.failed > backoffLimit;
    const successMet = findCondition(job, "SuccessCriteriaMet");
    if (successMet?.status === "True") ctx.finishedCondition = successMet;
    if (!ctx.finishedCondition) {
      const failureTarget = findCondition(job, "FailureTarget");
      if (failureTarget?.status === "True") {
        ctx.finishedCondition = newJobCondition(
          "Failed",
          "True",
          failureTarget.reason ?? "",
          failureTarget.message ?? "",
          this.now(),
        );
      } else if (job.spec?.podFailurePolicy) {
        for (const p of pods) {
          if (!isPodFailed(p, job)) continue;
          const m = matchPodFailurePolicy(job, p).failJobMessage;
          if (m) {
            ctx.finishedCondition = newJobCondition(
              "FailureTarget",
              "True",
              "PodFailurePolicy",
              m,
              this.now(),
            );
            break;
          }
        }
      }
    }
    if (!ctx.finishedCondition) {
      if (exceedsBackoffLimit || pastBackoffLimitOnFailure(job, pods)) {
        ctx.finishedCondition = this.failure(
          "BackoffLimitExceeded",
          "Job has reached the specified backoff limit",
        );
      } else if (this.pastActiveDeadline(job)) {
        ctx.finishedCondition = this.failure(
          "DeadlineExceeded",
          "Job was active longer than specified deadline",
        );
      } else if (job.spec?.activeDeadlineSeconds != null && !jobSuspended(job)) {
        const start = parseTime(status.startTime) ?? this.now();
        this.fx.enqueueAfter(key, job.spec.activeDeadlineSeconds * 1000 - (this.now() - start));
      }
    }

    if (isIndexedJob(job)) {
      const completions = job.spec?.completions ?? 0;
      ctx.prevSucceededIndexes = parseIndexes(status.completedIndexes, completions);
      const fresh = new Set<number>();
      for (const p of pods) {
        const ix = completionIndex(p);
        if (
          p.status?.phase === "Succeeded" &&
          ix >= 0 &&
          ix < completions &&
          hasJobTrackingFinalizer(p)
        )
          fresh.add(ix);
      }
      ctx.succeededIndexes = withIndexes(
        ctx.prevSucceededIndexes,
        [...fresh].sort((a, b) => a - b),
      );
      ctx.succeeded = intervalsTotal(ctx.succeededIndexes);
      if (hasBackoffLimitPerIndex(job)) {
        ctx.failedIndexes = this.failedIndexes(job, pods);
        if (!ctx.finishedCondition) {
          const failedTotal = intervalsTotal(ctx.failedIndexes);
          const max = job.spec?.maxFailedIndexes;
          if (max != null && failedTotal > max)
            ctx.finishedCondition = this.failure(
              "MaxFailedIndexesExceeded",
              "Job has exceeded the specified maximal number of failed indexes",
            );
          else if (
            failedTotal > 0 &&
            failedTotal + intervalsTotal(ctx.succeededIndexes) >= completions
          )
            ctx.finishedCondition = this.failure("FailedIndexes", "Job has failed indexes");
        }
        ctx.podsWithDelayedDeletionPerIndex = this.podsWithDelayedDeletion(ctx);
      }
      if (!ctx.finishedCondition) {
        const msg = matchSuccessPolicy(job, ctx.succeededIndexes);
        if (msg)
          ctx.finishedCondition = newJobCondition(
            "SuccessCriteriaMet",
            "True",
            "SuccessPolicy",
            msg,
            this.now(),
          );
      }
    }

    let suspendCondChanged = false;
    if (ctx.finishedCondition) {
      const { deletedReady, deleted, error } = await this.deleteActivePods(job, ctx.activePods);
      if (deleted !== active || !satisfied) ctx.finishedCondition = undefined;
      active -= deleted;
      ctx.terminating += deleted;
      ctx.ready -= deletedReady;
      manageError = error;
    } else {
      let manageCalled = false;
      if (satisfied && !job.metadata?.deletionTimestamp) {
        try {
          active = await this.manageJob(job, ctx);
        } catch (err) {
          manageError = err;
          active = (err as { active?: number }).active ?? active;
        }
        manageCalled = true;
      }
      const completions = job.spec?.completions;
      const complete =
        completions == null
          ? ctx.succeeded > 0 && active === 0
          : ctx.succeeded >= completions && active === 0;
      if (complete) {
        ctx.finishedCondition = newJobCondition(
          "SuccessCriteriaMet",
          "True",
          "CompletionsReached",
          "Reached expected number of succeeded pods",
          this.now(),
        );
      } else if (manageCalled) {
        if (jobSuspended(job)) {
          if (
            ensureJobCondition(
              status,
              "Suspended",
              "True",
              "JobSuspended",
              "Job suspended",
              this.now(),
            )
          ) {
            suspendCondChanged = true;
            this.fx.event(job, "Normal", "Suspended", "Job suspended");
          }
        } else if (
          ensureJobCondition(status, "Suspended", "False", "JobResumed", "Job resumed", this.now())
        ) {
          suspendCondChanged = true;
          this.fx.event(job, "Normal", "Resumed", "Job resumed");
          status.startTime = nowTime(this.now());
        }
      }
    }

    const needsStatusUpdate =
      suspendCondChanged ||
      active !== (status.active ?? 0) ||
      ctx.ready !== status.ready ||
      ctx.terminating !== status.terminating;
    status.active = active;
    status.ready = ctx.ready;
    status.terminating = ctx.terminating;
    await this.trackStatusAndRemoveFinalizers(ctx, needsStatusUpdate);
    if (manageError !== undefined) throw manageError;
  }

  private failure(reason: string, message: string): JobCondition {
    return newJobCondition("FailureTarget", "True", reason, message, this.now());
  }

  private pastActiveDeadline(job: Job): boolean {
    const ads = job.spec?.activeDeadlineSeconds;
    const start = parseTime(job.status?.startTime);
    if (ads == null || start === undefined || jobSuspended(job)) return false;
    return this.now() - start >= ads * 1000;
  }

  /** Pods with the finalizer, not in `uncounted`, with a valid index, passing `filter`. */
  private validPods(ctx: SyncJobCtx, uncounted: Set<string>, filter: (p: Pod) => boolean): Pod[] {
    const completions = ctx.job.spec?.completions ?? 0;
    return ctx.pods.filter((p) => {
      const uid = uidOf(p);
      if (!hasJobTrackingFinalizer(p) || uncounted.has(uid) || ctx.expectedRmFinalizers.has(uid))
        return false;
      if (isIndexedJob(ctx.job)) {
        const ix = completionIndex(p);
        if (ix < 0 || ix >= completions) return false;
      }
      return filter(p);
    });
  }

  private isIndexFailed(job: Job, pod: Pod): boolean {
    let counted = false;
    if (isPodFailed(pod, job)) {
      if (job.spec?.podFailurePolicy) {
        const m = matchPodFailurePolicy(job, pod);
        if (m.action === "FailIndex") return true;
        counted = m.countFailed;
      } else counted = true;
    }
    return (
      counted &&
      annotationInt(pod, JOB_INDEX_FAILURE_COUNT_ANNOTATION) >=
        (job.spec?.backoffLimitPerIndex ?? 0)
    );
  }

  private failedIndexes(job: Job, pods: Pod[]): Intervals {
    const completions = job.spec?.completions ?? 0;
    const prev = job.status?.failedIndexes
      ? parseIndexes(job.status.failedIndexes, completions)
      : [];
    const fresh = new Set<number>();
    for (const p of pods) {
      const ix = completionIndex(p);
      if (ix >= 0 && ix < completions && hasJobTrackingFinalizer(p) && this.isIndexFailed(job, p))
        fresh.add(ix);
    }
    return withIndexes(
      prev,
      [...fresh].sort((a, b) => a - b),
    );
  }

  /**
   * Per index, the failed pod whose removal waits until its replacement exists (so that the
   * replacement can carry the index's failure count).
   */
  private podsWithDelayedDeletion(ctx: SyncJobCtx): Map<number, Pod> {
    const activeIndexes = new Set(indexSet(ctx.activePods));
    const out = new Map<number, Pod>();
    const completions = ctx.job.spec?.completions ?? 0;
    const absolute = (p: Pod) =>
      annotationInt(p, JOB_INDEX_FAILURE_COUNT_ANNOTATION) +
      annotationInt(p, JOB_INDEX_IGNORED_FAILURE_COUNT_ANNOTATION);
    this.validPods(ctx, new Set(), (p) => {
      if (!isPodFailed(p, ctx.job)) return false;
      const ix = completionIndex(p);
      if (ix < 0 || ix >= completions) return false;
      if (
        intervalsHave(ctx.succeededIndexes, ix) ||
        intervalsHave(ctx.failedIndexes, ix) ||
        activeIndexes.has(ix)
      )
        return false;
      const last = out.get(ix);
      if (!last || (absolute(last) <= absolute(p) && podFinishedTime(p) >= podFinishedTime(last)))
        out.set(ix, p);
      return false;
    });
    return out;
  }

  /** Deletes active pods of a finishing Job (their finalizers stay until counted). */
  private async deleteActivePods(
    job: Job,
    pods: Pod[],
  ): Promise<{ deletedReady: number; deleted: number; error?: unknown }> {
    let deleted = pods.length;
    let deletedReady = 0;
    let error: unknown;
    await Promise.all(
      pods.map(async (pod) => {
        try {
          await this.deletePodWithEvents(job, pod.metadata!.name!);
        } catch (err) {
          if (!isStatusError(err, "NotFound")) {
            deleted--;
            error ??= err;
          }
        }
        if (isPodReady(pod)) deletedReady++;
      }),
    );
    return { deletedReady, deleted, error };
  }

  private async deletePodWithEvents(job: Job, name: string): Promise<void> {
    try {
      await this.fx.deletePod(job.metadata?.namespace ?? "", name);
    } catch (err) {
      if (!isStatusError(err, "NotFound"))
        this.fx.event(job, "Warning", "FailedDelete", `Error deleting: ${errorMessage(err)}`);
      throw err;
    }
    this.fx.event(job, "Normal", "SuccessfulDelete", `Deleted pod: ${name}`);
  }

  /** Removes the finalizer, then deletes (pods over parallelism or of a suspended Job). */
  private async deleteJobPods(
    job: Job,
    key: string,
    pods: Pod[],
  ): Promise<{ removedReady: number; removed: number; error?: unknown }> {
    let removed = pods.length;
    let removedReady = 0;
    let error: unknown;
    const ns = job.metadata?.namespace ?? "";
    await Promise.all(
      pods.map(async (pod) => {
        const fail = (err: unknown) => {
          this.expectations.deletionObserved(key, objectKey(pod));
          if (!isStatusError(err, "NotFound")) {
            removed--;
            error ??= err;
          }
        };
        if (hasJobTrackingFinalizer(pod)) {
          try {
            await this.fx.patchPod(ns, pod.metadata!.name!, REMOVE_FINALIZER_PATCH);
          } catch (err) {
            fail(err);
            return;
          }
        }
        try {
          await this.deletePodWithEvents(job, pod.metadata!.name!);
        } catch (err) {
          fail(err);
        }
        if (isPodReady(pod)) removedReady++;
      }),
    );
    return { removedReady, removed, error };
  }

  /**
   * Creates or deletes pods so that the active ones match parallelism and the completions
   * still wanted; answers the number of active pods after that. A failure is thrown with the
   * active count as its `active` property.
   */
  private async manageJob(job: Job, ctx: SyncJobCtx): Promise<number> {
    const key = ctx.key;
    let active = ctx.activePods.length;
    const parallelism = job.spec?.parallelism ?? 1;
    const withActive = (err: unknown, n: number) => {
      if (err && typeof err === "object") (err as { active?: number }).active = n;
      return err;
    };
    if (jobSuspended(job)) {
      const toDelete = activePodsForRemoval(job, ctx.activePods, active);
      this.expectations.expectDeletions(key, toDelete.map(objectKey));
      const { removedReady, removed, error } = await this.deleteJobPods(job, key, toDelete);
      active -= removed;
      ctx.terminating += removed;
      ctx.ready -= removedReady;
      if (error !== undefined) throw withActive(error, active);
      return active;
    }
    let wantActive: number;
    const completions = job.spec?.completions;
    if (completions == null) wantActive = ctx.succeeded > 0 ? active : parallelism;
    else wantActive = Math.max(0, Math.min(completions - ctx.succeeded, parallelism));

    const rmAtLeast = Math.max(0, active - wantActive);
    const toDelete = activePodsForRemoval(job, ctx.activePods, rmAtLeast).slice(
      0,
      MAX_POD_CREATE_DELETE_PER_SYNC,
    );
    if (toDelete.length > 0) {
      this.expectations.expectDeletions(key, toDelete.map(objectKey));
      const { removedReady, removed, error } = await this.deleteJobPods(job, key, toDelete);
      active -= removed;
      ctx.terminating += removed;
      ctx.ready -= removedReady;
      if (error !== undefined) throw withActive(error, active);
      return active;
    }

    const terminating = onlyReplaceFailedPods(job) ? ctx.terminating : 0;
    let diff = wantActive - terminating - active;
    if (diff <= 0) return active;
    if (!hasBackoffLimitPerIndex(job)) {
      const remaining = remainingBackoff(
        ctx.newBackoffRecord.failuresAfterLastSuccess,
        ctx.newBackoffRecord.lastFailureTime,
        this.now(),
        this.baseBackoff,
        this.maxBackoff,
      );
      if (remaining > 0) {
        this.fx.enqueueAfter(key, Math.max(remaining, SYNC_JOB_BATCH_PERIOD));
        // Upstream reports no active pods while it waits.
        return 0;
      }
    }
    diff = Math.min(diff, MAX_POD_CREATE_DELETE_PER_SYNC);
    let indexes: number[] = [];
    if (isIndexedJob(job)) {
      indexes = firstPendingIndexes(
        job,
        ctx.pods,
        ctx.activePods,
        ctx.succeededIndexes,
        ctx.failedIndexes,
        diff,
        job.spec?.completions ?? 0,
      );
      if (hasBackoffLimitPerIndex(job)) {
        const now: number[] = [];
        let minRemaining: number | undefined;
        for (const ix of indexes) {
          const last = ctx.podsWithDelayedDeletionPerIndex.get(ix);
          const r = last
            ? remainingBackoff(
                annotationInt(last, JOB_INDEX_FAILURE_COUNT_ANNOTATION) +
                  annotationInt(last, JOB_INDEX_IGNORED_FAILURE_COUNT_ANNOTATION) +
                  1,
                podFinishedTime(last),
                this.now(),
                this.baseBackoff,
                this.maxBackoff,
              )
            : 0;
          if (r === 0) now.push(ix);
          else if (minRemaining === undefined || r < minRemaining) minRemaining = r;
        }
        if (now.length === 0 && minRemaining !== undefined) {
          this.fx.enqueueAfter(key, Math.max(minRemaining, SYNC_JOB_BATCH_PERIOD));
          return 0;
        }
        indexes = now;
      }
      diff = indexes.length;
    }
    if (diff <= 0) return active;

    this.expectations.expectCreations(key, diff);
    active += diff;
    const template = jobPodTemplate(job);
    const ns = job.metadata?.namespace ?? "";
    let firstError: unknown;
    let remaining = diff;
    let queue = [...indexes];
    for (
      let batch = Math.min(remaining, 1);
      remaining > 0;
      batch = Math.min(2 * batch, remaining)
    ) {
      let batchErrors = 0;
      const batchIndexes = queue.slice(0, batch);
      queue = queue.slice(batch);
      await Promise.all(
        Array.from({ length: batch }, async (_, i) => {
          const ix = isIndexedJob(job) ? (batchIndexes[i] ?? -1) : -1;
          const pod = podForJob(job, template, ix, ctx.podsWithDelayedDeletionPerIndex.get(ix));
          try {
            const created = await this.fx.createPod(ns, pod);
            this.fx.event(
              job,
              "Normal",
              "SuccessfulCreate",
              `Created pod: ${created.metadata?.name}`,
            );
          } catch (err) {
            if (hasStatusCause(err, "NamespaceTerminating")) return;
            this.fx.event(job, "Warning", "FailedCreate", `Error creating: ${errorMessage(err)}`);
            this.expectations.creationObserved(key);
            active--;
            batchErrors++;
            firstError ??= err;
          }
        }),
      );
      const skipped = remaining - batch;
      if (batchErrors > 0 && skipped > 0) {
        active -= skipped;
        for (let i = 0; i < skipped; i++) this.expectations.creationObserved(key);
        break;
      }
      remaining -= batch;
    }
    if (firstError !== undefined) throw withActive(firstError, active);
    return active;
  }

  /**
   * Counts finished pods through status.uncountedTerminatedPods, removes their finalizers,
   * writes the interim and final conditions, and records the finishing events.
   */
  private async trackStatusAndRemoveFinalizers(
    ctx: SyncJobCtx,
    needsFlushIn: boolean,
  ): Promise<void> {
    let needsFlush = needsFlushIn;
    const job = ctx.job;
    const status = job.status!;
    const indexed = isIndexedJob(job);
    const completions = job.spec?.completions ?? 0;
    const uncounted = status.uncountedTerminatedPods!;
    if (indexed) ctx.pods = [...ctx.pods].sort(byCompletionIndex);
    const withFinalizer = new Set<string>();
    for (const p of ctx.pods)
      if (hasJobTrackingFinalizer(p) && !ctx.expectedRmFinalizers.has(uidOf(p)))
        withFinalizer.add(uidOf(p));
    if (cleanUncounted(status, withFinalizer)) needsFlush = true;

    const toRemoveFinalizer: Pod[] = [];
    const newSucceededIndexes: number[] = [];
    let reachedMax = false;
    for (const pod of ctx.pods) {
      const uid = uidOf(pod);
      if (!hasJobTrackingFinalizer(pod) || ctx.expectedRmFinalizers.has(uid)) continue;
      const failed = isPodFailed(pod, job);
      if (!this.canRemoveFinalizer(ctx, pod, failed)) continue;
      toRemoveFinalizer.push(pod);
      if (pod.status?.phase === "Succeeded" && !ctx.uncountedFailed.has(uid)) {
        if (indexed) {
          const ix = completionIndex(pod);
          if (ix >= 0 && ix < completions && !intervalsHave(ctx.prevSucceededIndexes, ix)) {
            newSucceededIndexes.push(ix);
            needsFlush = true;
          }
        } else if (!ctx.uncountedSucceeded.has(uid)) {
          needsFlush = true;
          (uncounted.succeeded ??= []).push(uid);
        }
      } else if (
        failed ||
        (ctx.finishedCondition && ctx.finishedCondition.type !== "SuccessCriteriaMet")
      ) {
        const ix = completionIndex(pod);
        if (!ctx.uncountedFailed.has(uid) && (!indexed || (ix >= 0 && ix < completions))) {
          if (!job.spec?.podFailurePolicy || matchPodFailurePolicy(job, pod).countFailed) {
            needsFlush = true;
            (uncounted.failed ??= []).push(uid);
          }
        }
      }
      if (
        newSucceededIndexes.length +
          (uncounted.succeeded?.length ?? 0) +
          (uncounted.failed?.length ?? 0) >=
        MAX_UNCOUNTED_PODS
      ) {
        reachedMax = true;
        break;
      }
    }
    if (indexed) {
      ctx.succeededIndexes = withIndexes(
        ctx.succeededIndexes,
        [...new Set(newSucceededIndexes)].sort((a, b) => a - b),
      );
      const s = formatIntervals(ctx.succeededIndexes);
      if (s !== (status.completedIndexes ?? "")) needsFlush = true;
      status.succeeded = intervalsTotal(ctx.succeededIndexes);
      status.completedIndexes = s;
      const failedStr = ctx.failedIndexes ? formatIntervals(ctx.failedIndexes) : undefined;
      if (failedStr !== status.failedIndexes) {
        if (failedStr === undefined) delete status.failedIndexes;
        else status.failedIndexes = failedStr;
        needsFlush = true;
      }
    }
    if (ctx.finishedCondition?.type === "FailureTarget") {
      (status.conditions ??= []).push(ctx.finishedCondition);
      needsFlush = true;
      ctx.finishedCondition = newJobCondition(
        "Failed",
        "True",
        ctx.finishedCondition.reason ?? "",
        ctx.finishedCondition.message ?? "",
        this.now(),
      );
    }
    if (ctx.finishedCondition?.type === "SuccessCriteriaMet") {
      if (findCondition(job, "SuccessCriteriaMet")?.status !== "True") {
        (status.conditions ??= []).push(ctx.finishedCondition);
        needsFlush = true;
      }
      ctx.finishedCondition = newJobCondition(
        "Complete",
        "True",
        ctx.finishedCondition.reason ?? "",
        ctx.finishedCondition.message ?? "",
        this.now(),
      );
    }

    // Flush what is uncounted before removing any finalizer.
    if (needsFlush) {
      ctx.job = await this.fx.updateStatus(withGoStatus(job));
      this.backoff.set(ctx.key, ctx.newBackoffRecord);
      needsFlush = false;
    }
    const current = ctx.job;
    const currentStatus = (current.status ??= {});
    currentStatus.uncountedTerminatedPods ??= {};
    let rmError: unknown;
    if (toRemoveFinalizer.length > 0) {
      this.finalizerExpectations.expect(ctx.key, toRemoveFinalizer.map(uidOf));
      await Promise.all(
        toRemoveFinalizer.map(async (pod) => {
          try {
            await this.fx.patchPod(
              pod.metadata?.namespace ?? "",
              pod.metadata!.name!,
              REMOVE_FINALIZER_PATCH,
            );
            withFinalizer.delete(uidOf(pod));
          } catch (err) {
            this.finalizerExpectations.observed(ctx.key, uidOf(pod));
            if (isStatusError(err, "NotFound")) withFinalizer.delete(uidOf(pod));
            else rmError ??= err;
          }
        }),
      );
    }
    if (cleanUncounted(currentStatus, withFinalizer)) needsFlush = true;
    if (rmError !== undefined) {
      if (needsFlush) await this.fx.updateStatus(withGoStatus(current));
      throw rmError;
    }
    const finished = !reachedMax && this.enactJobFinished(ctx, current);
    if (finished) needsFlush = true;
    if (needsFlush) {
      const written = await this.fx.updateStatus(withGoStatus(current));
      if (finished) this.recordJobFinished(written, ctx.finishedCondition!);
    }
  }

  private canRemoveFinalizer(ctx: SyncJobCtx, pod: Pod, failed: boolean): boolean {
    if (
      ctx.job.metadata?.deletionTimestamp ||
      ctx.finishedCondition ||
      pod.status?.phase === "Succeeded"
    )
      return true;
    if (!failed) return false;
    if (hasBackoffLimitPerIndex(ctx.job)) {
      const ix = completionIndex(pod);
      if (ix >= 0 && uidOf(ctx.podsWithDelayedDeletionPerIndex.get(ix) ?? {}) === uidOf(pod))
        return false;
    }
    return true;
  }

  /** Adds Complete or Failed once nothing is uncounted or terminating. */
  private enactJobFinished(ctx: SyncJobCtx, job: Job): boolean {
    const cond = ctx.finishedCondition;
    if (!cond) return false;
    const u = job.status?.uncountedTerminatedPods;
    if ((u?.succeeded?.length ?? 0) + (u?.failed?.length ?? 0) > 0) return false;
    if (ctx.terminating > 0) return false;
    const status = (job.status ??= {});
    ensureJobCondition(
      status,
      cond.type,
      "True",
      cond.reason ?? "",
      cond.message ?? "",
      this.now(),
    );
    if (cond.type === "Complete")
      status.completionTime = status.conditions?.find(
        (c) => c.type === "Complete",
      )?.lastTransitionTime;
    return true;
  }

  private recordJobFinished(job: Job, cond: JobCondition): void {
    if (cond.type === "Complete") {
      const completions = job.spec?.completions;
      if (completions != null && (job.status?.succeeded ?? 0) > completions)
        this.fx.event(
          job,
          "Warning",
          "TooManySucceededPods",
          "Too many succeeded pods running after completion count reached",
        );
      this.fx.event(job, "Normal", "Completed", "Job completed");
    } else this.fx.event(job, "Warning", cond.reason ?? "", cond.message ?? "");
  }
}

/**
 * Moves uids whose pods no longer carry the finalizer out of uncountedTerminatedPods into the
 * counters; answers whether anything moved.
 */
export function cleanUncounted(status: JobStatus, withFinalizer: Set<string>): boolean {
  const u = (status.uncountedTerminatedPods ??= {});
  let changed = false;
  const keep = (list: string[] | undefined) => (list ?? []).filter((uid) => withFinalizer.has(uid));
  const succeeded = keep(u.succeeded);
  if (succeeded.length !== (u.succeeded?.length ?? 0)) {
    status.succeeded = (status.succeeded ?? 0) + (u.succeeded!.length - succeeded.length);
    changed = true;
  }
  const failed = keep(u.failed);
  if (failed.length !== (u.failed?.length ?? 0)) {
    status.failed = (status.failed ?? 0) + (u.failed!.length - failed.length);
    changed = true;
  }
  if (succeeded.length) u.succeeded = succeeded;
  else delete u.succeeded;
  if (failed.length) u.failed = failed;
  else delete u.failed;
  return changed;
}

/** The Job with its status as Go encodes it: zero counters and empty strings omitted. */
function withGoStatus(job: Job): Job {
  const out = structuredClone(job);
  const s = (out.status ??= {});
  for (const k of ["active", "succeeded", "failed"] as const) if (!s[k]) delete s[k];
  if (!s.completedIndexes) delete s.completedIndexes;
  if (!s.conditions?.length) delete s.conditions;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Wiring.

export interface JobControllerOptions {
  /** Delay of syncs caused by pod events and status changes (ms). */
  syncBatchPeriod?: number;
  /** First delay of pod re-creation after a failure, and its cap (ms). */
  podFailureBackoff?: number;
  maxPodFailureBackoff?: number;
}

/** The Job controller with options (tests shorten the back-off). */
export function jobDescriptorWith(o: JobControllerOptions = {}): ControllerDescriptor {
  const batchPeriod = o.syncBatchPeriod ?? SYNC_JOB_BATCH_PERIOD;
  return {
    name: "job",
    aliases: ["job-controller"],
    serviceAccount: "job-controller",
    async start(ctx: ControllerContext, signal) {
      const { client, informers, clock } = ctx;
      const recorder = ctx.recorder("job-controller");
      const pods = informers.informer("v1/Pod", {
        indexers: { [CONTROLLER_UID_INDEX]: controllerUIDIndexFunc },
      }) as Informer<Pod>;
      const jobs = informers.informer("batch/v1/Job");
      const jobsClient = client.resource("batch/v1/Job");
      const podsClient = client.resource("v1/Pod");
      let enqueueAfter: (key: string, ms: number) => void = () => undefined;
      /**
       * The resourceVersion of each Job's last status write. A sync woken by the event of an
       * earlier write would act on a cache that lacks the later one and fail with a conflict;
       * such a sync waits a batch period instead (upstream batches status-triggered syncs).
       */
      const lastWritten = new Map<string, string>();
      const syncer = new JobSyncer({
        clock,
        ...(o.podFailureBackoff !== undefined ? { podFailureBackoff: o.podFailureBackoff } : {}),
        ...(o.maxPodFailureBackoff !== undefined
          ? { maxPodFailureBackoff: o.maxPodFailureBackoff }
          : {}),
        effects: {
          createPod: (ns, pod) => podsClient.namespace(ns).create(pod),
          deletePod: async (ns, name) => {
            await podsClient.namespace(ns).delete(name);
          },
          patchPod: async (ns, name, patch) => {
            await podsClient.namespace(ns).patch(name, "strategic", patch);
          },
          updateStatus: async (job) => {
            const written = await jobsClient.updateStatus(job);
            lastWritten.set(objectKey(written), written.metadata?.resourceVersion ?? "");
            return written;
          },
          event: (job, type, reason, message) => recorder.event(job, type, reason, message),
          enqueueAfter: (key, ms) => enqueueAfter(key, ms),
        },
      });

      /** The Job a pod's controller reference names, if it is in the cache with that uid. */
      const resolve = (pod: Pod): Job | undefined => {
        const ref = controllerRef(pod);
        if (!ref || ref.kind !== "Job") return undefined;
        const job = jobs.store.getByName(pod.metadata?.namespace ?? "", ref.name);
        return job && job.metadata?.uid === ref.uid ? job : undefined;
      };
      const matchingJobs = (pod: Pod): Job[] =>
        jobs.store
          .listNamespace(pod.metadata?.namespace ?? "")
          .filter((j) => selectorMatches(j.spec?.selector, pod.metadata?.labels));

      // The orphan worker: pods that keep the tracking finalizer with no unfinished Job to count them.
      const orphans = controller({
        name: "job-orphan-pod",
        informers,
        for: "v1/Pod",
        workers: 1,
        clock,
        rateLimiter: new ItemExponentialFailureRateLimiter<string>(1000, 60_000),
        onError: (err, req) =>
          ctx.log.error(`Error syncing orphan pod ${req.key}: ${errorMessage(err)}`),
        reconcile: async ({ namespace, name }) => {
          const pod = pods.store.getByName(namespace, name);
          if (!pod || !hasJobTrackingFinalizer(pod)) return;
          const ref = controllerRef(pod);
          if (ref) {
            if (ref.kind !== "Job" || ref.apiVersion !== "batch/v1") return;
            const job = resolve(pod);
            if (job?.spec?.managedBy && job.spec.managedBy !== JOB_CONTROLLER_NAME) return;
            if (job && !isJobFinished(job)) return;
            // Not in the cache: make sure the Job is really gone before letting its pod go.
            if (!job) {
              try {
                const live = await jobsClient.namespace(namespace).get(ref.name);
                if (live.metadata?.uid === ref.uid && !isJobFinished(live)) return;
              } catch (err) {
                if (!isStatusError(err, "NotFound")) throw err;
              }
            }
          }
          try {
            await podsClient.namespace(namespace).patch(name, "strategic", REMOVE_FINALIZER_PATCH);
          } catch (err) {
            if (!isStatusError(err, "NotFound")) throw err;
          }
        },
      });

      const c = controller({
        name: "job",
        informers,
        for: "batch/v1/Job",
        workers: ctx.options.concurrency.job ?? 5,
        clock,
        rateLimiter: new ItemExponentialFailureRateLimiter<string>(1000, 60_000),
        onError: (err, req) => ctx.log.error(`syncing job ${req.key}: ${errorMessage(err)}`),
        reconcile: async ({ key, namespace, name }) => {
          const job = jobs.store.getByName(namespace, name);
          if (!job) {
            syncer.forget(key);
            lastWritten.delete(key);
            return;
          }
          if (isJobFinished(job)) {
            syncer.backoff.delete(key);
            lastWritten.delete(key);
            return;
          }
          const written = lastWritten.get(key);
          if (written !== undefined) {
            lastWritten.delete(key);
            if (written !== job.metadata?.resourceVersion) return { requeueAfter: batchPeriod };
          }
          const satisfied = syncer.expectations.satisfied(key);
          const claimed = await claimPods(job);
          await syncer.sync(key, job, claimed, satisfied);
        },
      });
      enqueueAfter = (key, ms) => c.queue.addAfter(key, Math.max(0, ms));
      const enqueueBatched = (job: Job) => c.queue.addAfter(objectKey(job), batchPeriod);

      /** Claims the namespace's pods for `job`; adopted pods get the tracking finalizer too. */
      async function claimPods(job: Job): Promise<Pod[]> {
        const ns = job.metadata!.namespace!;
        const uid = job.metadata!.uid!;
        const nsPods = podsClient.namespace(ns);
        const adopting = {
          patch: (
            podName: string,
            type: "strategic",
            patch: { metadata?: Record<string, unknown> },
          ) => {
            const meta = patch.metadata ?? {};
            const refs = meta.ownerReferences as { $patch?: string }[] | undefined;
            if (refs?.some((r) => r.$patch !== "delete"))
              meta.finalizers = [JOB_TRACKING_FINALIZER];
            return nsPods.patch(podName, type, patch);
          },
        } as unknown as ResourceClient<Pod>;
        const candidates = [
          ...pods.store.byIndex(CONTROLLER_UID_INDEX, uid),
          ...pods.store
            .byIndex(CONTROLLER_UID_INDEX, "")
            .filter((p) => p.metadata?.namespace === ns),
        ];
        const claimed = await claim<Pod>({
          owner: job,
          ownerRef: newControllerRef(job, "batch/v1", "Job"),
          candidates,
          matches: (p) => selectorMatches(job.spec?.selector, p.metadata?.labels),
          client: adopting,
          getOwner: () => jobsClient.namespace(ns).get(job.metadata!.name!),
        });
        // Pods adopted just now carry the finalizer from here on.
        return claimed.map((p) => {
          if (p.metadata?.ownerReferences?.some((r) => r.uid === uid) || hasJobTrackingFinalizer(p))
            return p;
          const copy = structuredClone(p);
          (copy.metadata!.finalizers ??= []).push(JOB_TRACKING_FINALIZER);
          return copy;
        });
      }

      const cleanupPodFinalizers = (job: Job) => {
        for (const p of pods.store.byIndex(CONTROLLER_UID_INDEX, job.metadata?.uid ?? ""))
          if (hasJobTrackingFinalizer(p)) orphans.queue.add(objectKey(p));
      };

      const podDeleted = (pod: Pod, final: boolean) => {
        const hasFinalizer = hasJobTrackingFinalizer(pod);
        if (!controllerRef(pod)) {
          if (hasFinalizer) orphans.queue.add(objectKey(pod));
          return;
        }
        const job = resolve(pod);
        if (!job || isJobFinished(job)) {
          if (hasFinalizer) orphans.queue.add(objectKey(pod));
          return;
        }
        const key = objectKey(job);
        syncer.expectations.deletionObserved(key, objectKey(pod));
        if (final || !hasFinalizer)
          syncer.finalizerExpectations.observed(key, pod.metadata?.uid ?? "");
        enqueueBatched(job);
      };

      const unregisterPods = pods.addEventHandler({
        add(pod) {
          if (pod.metadata?.deletionTimestamp) {
            podDeleted(pod, false);
            return;
          }
          if (controllerRef(pod)) {
            const job = resolve(pod);
            if (!job) return;
            syncer.expectations.creationObserved(objectKey(job));
            enqueueBatched(job);
            return;
          }
          for (const job of matchingJobs(pod)) enqueueBatched(job);
        },
        update(old, pod) {
          if (old.metadata?.resourceVersion === pod.metadata?.resourceVersion) return;
          if (pod.metadata?.deletionTimestamp) {
            podDeleted(pod, false);
            return;
          }
          const removed = !hasJobTrackingFinalizer(pod);
          const cur = controllerRef(pod);
          const prev = controllerRef(old);
          const refChanged = !semanticEqual(cur, prev);
          if (refChanged && prev) {
            const job = resolve(old);
            if (job) {
              if (removed)
                syncer.finalizerExpectations.observed(objectKey(job), pod.metadata?.uid ?? "");
              enqueueBatched(job);
            }
          }
          if (cur) {
            const job = resolve(pod);
            if (!job) return;
            if (removed)
              syncer.finalizerExpectations.observed(objectKey(job), pod.metadata?.uid ?? "");
            enqueueBatched(job);
            return;
          }
          const labelsChanged = !semanticEqual(old.metadata?.labels, pod.metadata?.labels);
          if (labelsChanged || refChanged) for (const job of matchingJobs(pod)) enqueueBatched(job);
        },
        delete(pod) {
          podDeleted(pod, true);
        },
      });
      const unregisterJobs = jobs.addEventHandler({
        update(old, job) {
          if (isJobFinished(job)) cleanupPodFinalizers(job);
          const ads = job.spec?.activeDeadlineSeconds;
          const start = parseTime(job.status?.startTime);
          if (start !== undefined && ads != null && ads !== old.spec?.activeDeadlineSeconds)
            c.queue.addAfter(objectKey(job), Math.max(0, ads * 1000 - (clock.now() - start)));
        },
        delete(job) {
          cleanupPodFinalizers(job);
        },
      });
      try {
        await Promise.all([c.start(signal), orphans.start(signal)]);
      } finally {
        unregisterPods();
        unregisterJobs();
      }
    },
  };
}

export const jobDescriptor = jobDescriptorWith();
