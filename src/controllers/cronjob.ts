/**
 * The CronJob controller (upstream 1.32's cronjob_controllerv2): creates a Job from the
 * template at each time the schedule names, in the CronJob's `timeZone` (UTC without one).
 *
 * - Schedules are standard cron lines (minute hour day-of-month month day-of-week, with names,
 *   ranges, steps and `?`), the macros `@yearly` .. `@hourly` and `@every <duration>`, with
 *   robfig/cron v3's rules: when either day field is `*` both must match, otherwise either.
 * - Only the most recent unmet time is started; `startingDeadlineSeconds` bounds how late; more
 *   than 100 missed times give the `TooManyMissedTimes` warning.
 * - A Job is named `<cronjob>-<scheduled time in minutes since the epoch>` (the name is the lock
 *   against starting one time twice) and annotated with its scheduled time
 *   (`batch.kubernetes.io/cronjob-scheduled-timestamp`, RFC 3339 in the time zone).
 * - `concurrencyPolicy` Forbid skips a time while a Job runs, Replace deletes the running ones.
 * - Finished Jobs beyond `successfulJobsHistoryLimit`/`failedJobsHistoryLimit` are deleted,
 *   oldest first; status keeps `active`, `lastScheduleTime` and `lastSuccessfulTime`.
 */

import type { CronJob, Job } from "kubernetes-types/batch/v1.js";
import type { ObjectReference } from "kubernetes-types/core/v1.js";
import { hasStatusCause, isStatusError } from "../api/status.js";
import type { Clock } from "../client/clock.js";
import { controller } from "../client/controller.js";
import type { ControllerDescriptor } from "./context.js";
import { errorMessage } from "./context.js";
import { controllerRef, newControllerRef, nowTime } from "./util.js";
import {
  isUTC,
  localZone,
  parseSchedule,
  validTimeZone,
  zoneOffset,
  type Schedule,
} from "../apiserver/strategies/cron.js";

export const CRONJOB_SCHEDULED_TIMESTAMP_ANNOTATION =
  "batch.kubernetes.io/cronjob-scheduled-timestamp";
/** Padding added to requeues against clock skew (upstream's nextScheduleDelta). */
export const NEXT_SCHEDULE_DELTA = 100;

export function formatRFC3339In(instant: number, tz: string): string {
  const offset = isUTC(tz) ? 0 : zoneOffset(instant, tz);
  const wall = new Date(instant + offset).toISOString().replace(/\.\d+Z$/, "");
  if (offset === 0 && isUTC(tz)) return `${wall}Z`;
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset) / 60_000;
  const hh = String(Math.floor(abs / 60)).padStart(2, "0");
  const mm = String(abs % 60).padStart(2, "0");
  return `${wall}${sign}${hh}:${mm}`;
}

/** Go's time.RFC1123Z of `instant` in UTC: "Mon, 02 Jan 2006 15:04:05 +0000". */
export function formatRFC1123Z(instant: number): string {
  const d = new Date(instant);
  const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const months = [
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
  ];
  const p = (n: number) => String(n).padStart(2, "0");
  return `${days[d.getUTCDay()]}, ${p(d.getUTCDate())} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(
    d.getUTCHours(),
  )}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

// ---------------------------------------------------------------------------------------------
// Scheduling decisions.

export type MissedSchedules = "none" | "few" | "many";

/**
 * mostRecentScheduleTime: from the last schedule time (or creation, or the starting deadline),
 * the most recent time not after `now` (undefined if none), and how many were missed. Throws
 * for a schedule whose next two times coincide (a day that never comes, such as February 31).
 */
export function mostRecentScheduleTime(
  cj: CronJob,
  now: number,
  schedule: Schedule,
  includeStartingDeadline: boolean,
): { earliest: number; mostRecent?: number; missed: MissedSchedules } {
  let earliest = Date.parse(cj.metadata?.creationTimestamp ?? "") || 0;
  const last = cj.status?.lastScheduleTime ? Date.parse(cj.status.lastScheduleTime) : NaN;
  if (Number.isFinite(last)) earliest = last;
  const sds = cj.spec?.startingDeadlineSeconds;
  if (includeStartingDeadline && sds !== undefined && sds !== null) {
    const deadline = now - sds * 1000;
    if (deadline > earliest) earliest = deadline;
  }
  const t1 = schedule.next(earliest);
  const t2 = schedule.next(t1);
  if (now < t1) return { earliest, missed: "none" };
  if (now < t2) return { earliest, mostRecent: t1, missed: "none" };
  const between = Math.round((t2 - t1) / 1000);
  if (between < 1) {
    const err = new Error("time difference between two schedules is less than 1 second");
    throw Object.assign(err, { earliest });
  }
  const elapsed = Math.trunc((now - t1) / 1000);
  const missedCount = Math.trunc(elapsed / between) + 1;
  const potentialEarliest = t1 + (missedCount - 2) * between * 1000;
  let mostRecent: number | undefined;
  for (let t = schedule.next(potentialEarliest); t !== 0 && t <= now; t = schedule.next(t))
    mostRecent = t;
  const missed: MissedSchedules = missedCount > 100 ? "many" : missedCount > 0 ? "few" : "none";
  return mostRecent === undefined ? { earliest, missed } : { earliest, mostRecent, missed };
}

/** How long until the next schedule after the most recent one, plus the skew padding (ms). */
export function nextScheduleTimeDuration(cj: CronJob, now: number, schedule: Schedule): number {
  let from: number;
  try {
    const r = mostRecentScheduleTime(cj, now, schedule, false);
    from = r.mostRecent ?? (r.missed === "none" ? r.earliest : now);
  } catch {
    from = now;
  }
  return schedule.next(from) + NEXT_SCHEDULE_DELTA - now;
}

/** The schedule line with the CronJob's time zone (`TZ=<zone> <schedule>`). */
export function formatSchedule(cj: CronJob): string {
  const schedule = cj.spec?.schedule ?? "";
  if (schedule.includes("TZ")) return schedule;
  const tz = cj.spec?.timeZone;
  if (tz !== undefined && tz !== null && validTimeZone(tz)) return `TZ=${tz} ${schedule}`;
  return schedule;
}

/** `<cronjob>-<minutes since the epoch>`. */
export function jobNameFor(cj: CronJob, scheduled: number): string {
  return `${cj.metadata?.name}-${Math.floor(scheduled / 60_000)}`;
}

/** The Job of the time `scheduled` (getJobFromTemplate2). */
export function jobFromTemplate(cj: CronJob, scheduled: number): Job {
  const tmpl = cj.spec?.jobTemplate;
  const tz = cj.spec?.timeZone ?? "";
  const job: Job = {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name: jobNameFor(cj, scheduled),
      namespace: cj.metadata?.namespace,
      labels: { ...tmpl?.metadata?.labels },
      annotations: {
        ...tmpl?.metadata?.annotations,
        [CRONJOB_SCHEDULED_TIMESTAMP_ANNOTATION]: formatRFC3339In(
          scheduled,
          tz === "Local" ? localZone() : tz,
        ),
      },
      ownerReferences: [newControllerRef(cj, "batch/v1", "CronJob")],
    },
    spec: structuredClone(tmpl?.spec ?? { template: {} }),
  };
  if (Object.keys(job.metadata!.labels!).length === 0) delete job.metadata!.labels;
  return job;
}

export function jobFinishedType(job: Job): "Complete" | "Failed" | undefined {
  for (const c of job.status?.conditions ?? [])
    if ((c.type === "Complete" || c.type === "Failed") && c.status === "True") return c.type;
  return undefined;
}

/** Oldest start first; Jobs that never started last; ties by name. */
export function byJobStartTime(a: Job, b: Job): number {
  const as = a.status?.startTime ? Date.parse(a.status.startTime) : undefined;
  const bs = b.status?.startTime ? Date.parse(b.status.startTime) : undefined;
  if (as === undefined && bs !== undefined) return 1;
  if (as !== undefined && bs === undefined) return -1;
  if (as === bs) return (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? "");
  return as! - bs!;
}

/** The finished Jobs beyond the history limits, oldest first. */
export function jobsOverHistoryLimits(cj: CronJob, jobs: Job[]): Job[] {
  const succeeded = jobs.filter((j) => jobFinishedType(j) === "Complete").sort(byJobStartTime);
  const failed = jobs.filter((j) => jobFinishedType(j) === "Failed").sort(byJobStartTime);
  const out: Job[] = [];
  const s = cj.spec?.successfulJobsHistoryLimit;
  if (s !== undefined && s !== null)
    out.push(...succeeded.slice(0, Math.max(0, succeeded.length - s)));
  const f = cj.spec?.failedJobsHistoryLimit;
  if (f !== undefined && f !== null) out.push(...failed.slice(0, Math.max(0, failed.length - f)));
  return out;
}

function jobRef(job: Job): ObjectReference {
  return {
    kind: "Job",
    namespace: job.metadata?.namespace,
    name: job.metadata?.name,
    uid: job.metadata?.uid,
    apiVersion: "batch/v1",
    resourceVersion: job.metadata?.resourceVersion,
  };
}

// ---------------------------------------------------------------------------------------------
// The sync.

export interface CronJobEffects {
  getCronJob(namespace: string, name: string): Promise<CronJob>;
  getJob(namespace: string, name: string): Promise<Job>;
  createJob(namespace: string, job: Job): Promise<Job>;
  /** Deletes with background propagation. */
  deleteJob(namespace: string, name: string): Promise<void>;
  updateStatus(cj: CronJob): Promise<CronJob>;
  event(cj: CronJob, type: "Normal" | "Warning", reason: string, message: string): void;
}

function deleteFromActive(cj: CronJob, uid: string | undefined): void {
  const status = (cj.status ??= {});
  status.active = (status.active ?? []).filter((r) => r.uid !== uid);
}

async function deleteJobOf(cj: CronJob, job: Job, fx: CronJobEffects): Promise<boolean> {
  try {
    await fx.deleteJob(job.metadata?.namespace ?? "", job.metadata?.name ?? "");
  } catch (err) {
    fx.event(cj, "Warning", "FailedDelete", `Deleted job: ${errorMessage(err)}`);
    return false;
  }
  deleteFromActive(cj, job.metadata?.uid);
  fx.event(cj, "Normal", "SuccessfulDelete", `Deleted job ${job.metadata?.name}`);
  return true;
}

/**
 * One sync of `shared` (the cached CronJob) with the Jobs it controls, at `now`. Answers when
 * to sync again (ms), or undefined; throws what should be retried with back-off.
 */
export async function syncCronJob(
  shared: CronJob,
  jobs: Job[],
  now: number,
  fx: CronJobEffects,
): Promise<number | undefined> {
  const copy = structuredClone(shared);
  copy.status ??= {};
  let update = false;
  for (const j of jobsOverHistoryLimits(copy, jobs))
    if (await deleteJobOf(copy, j, fx)) update = true;

  let requeueAfter: number | undefined;
  let syncError: unknown;
  try {
    const r = await reconcileSchedule(copy, jobs, now, fx);
    requeueAfter = r.requeueAfter;
    update ||= r.update;
  } catch (err) {
    const e = err as { update?: boolean };
    update ||= !!e.update;
    syncError = err;
  }
  if (update) await fx.updateStatus(copy);
  if (requeueAfter !== undefined) return requeueAfter;
  if (syncError !== undefined) throw syncError;
  return undefined;
}

async function reconcileSchedule(
  cronJobIn: CronJob,
  jobs: Job[],
  now: number,
  fx: CronJobEffects,
): Promise<{ requeueAfter?: number; update: boolean }> {
  let cronJob = cronJobIn;
  let update = false;
  const fail = (err: unknown) => Object.assign(err as object, { update });
  const children = new Set<string>();
  for (const j of jobs) {
    const uid = j.metadata?.uid ?? "";
    children.add(uid);
    const found = (cronJob.status?.active ?? []).some((r) => r.uid === uid);
    const finished = jobFinishedType(j);
    if (!found && !finished) {
      let fresh: CronJob;
      try {
        fresh = await fx.getCronJob(cronJob.metadata!.namespace!, cronJob.metadata!.name!);
      } catch (err) {
        throw fail(err);
      }
      if ((fresh.status?.active ?? []).some((r) => r.uid === uid)) {
        cronJob = fresh;
        continue;
      }
      fx.event(
        cronJob,
        "Warning",
        "UnexpectedJob",
        `Saw a job that the controller did not create or forgot: ${j.metadata?.name}`,
      );
    } else if (found && finished) {
      deleteFromActive(cronJob, uid);
      fx.event(
        cronJob,
        "Normal",
        "SawCompletedJob",
        `Saw completed job: ${j.metadata?.name}, status: ${finished}`,
      );
      update = true;
    } else if (finished === "Complete") {
      const completion = j.status?.completionTime;
      const last = cronJob.status!.lastSuccessfulTime;
      if (!last) {
        if (completion) cronJob.status!.lastSuccessfulTime = completion;
        update = true;
      } else if (completion && Date.parse(completion) > Date.parse(last)) {
        cronJob.status!.lastSuccessfulTime = completion;
        update = true;
      }
    }
  }
  for (const ref of [...(cronJob.status?.active ?? [])]) {
    if (children.has(ref.uid ?? "")) continue;
    try {
      await fx.getJob(ref.namespace ?? "", ref.name ?? "");
    } catch (err) {
      if (!isStatusError(err, "NotFound")) throw fail(err);
      fx.event(cronJob, "Normal", "MissingJob", `Active job went missing: ${ref.name}`);
      deleteFromActive(cronJob, ref.uid);
      update = true;
    }
  }
  if (cronJob.metadata?.deletionTimestamp) return { update };

  const tz = cronJob.spec?.timeZone;
  if (tz !== undefined && tz !== null && !validTimeZone(tz)) {
    fx.event(
      cronJob,
      "Warning",
      "UnknownTimeZone",
      `invalid timeZone: "${tz}": unknown time zone ${tz}`,
    );
    return { update };
  }
  if (cronJob.spec?.suspend) return { update };

  if ((cronJob.spec?.schedule ?? "").includes("TZ"))
    fx.event(
      cronJob,
      "Warning",
      "UnsupportedSchedule",
      `CRON_TZ or TZ used in schedule "${cronJob.spec?.schedule}" is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details`,
    );
  let schedule: Schedule;
  try {
    schedule = parseSchedule(formatSchedule(cronJob));
  } catch (err) {
    fx.event(
      cronJob,
      "Warning",
      "UnparseableSchedule",
      `unparseable schedule: "${cronJob.spec?.schedule}" : ${errorMessage(err)}`,
    );
    return { update };
  }
  let scheduled: number | undefined;
  try {
    const r = mostRecentScheduleTime(cronJob, now, schedule, true);
    if (r.mostRecent !== undefined && r.mostRecent <= now) {
      scheduled = r.mostRecent;
      if (r.missed === "many")
        fx.event(
          cronJob,
          "Warning",
          "TooManyMissedTimes",
          "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
        );
    }
  } catch (err) {
    fx.event(
      cronJob,
      "Warning",
      "InvalidSchedule",
      `invalid schedule: ${cronJob.spec?.schedule} : ${errorMessage(err)}`,
    );
    return { update };
  }
  const next = () => nextScheduleTimeDuration(cronJob, now, schedule);
  if (scheduled === undefined) return { requeueAfter: next(), update };

  const sds = cronJob.spec?.startingDeadlineSeconds;
  if (sds !== undefined && sds !== null && scheduled + sds * 1000 < now) {
    fx.event(
      cronJob,
      "Warning",
      "MissSchedule",
      `Missed scheduled time to start a job: ${formatRFC1123Z(scheduled)}`,
    );
    return { requeueAfter: next(), update };
  }
  const name = jobNameFor(cronJob, scheduled);
  const active = cronJob.status?.active ?? [];
  const last = cronJob.status?.lastScheduleTime;
  if (
    active.some((r) => r.name === name && r.namespace === cronJob.metadata?.namespace) ||
    (last !== undefined && Date.parse(last) === scheduled)
  )
    return { requeueAfter: next(), update };
  if (cronJob.spec?.concurrencyPolicy === "Forbid" && active.length > 0) {
    fx.event(
      cronJob,
      "Normal",
      "JobAlreadyActive",
      "Not starting job because prior execution is running and concurrency policy is Forbid",
    );
    return { requeueAfter: next(), update };
  }
  if (cronJob.spec?.concurrencyPolicy === "Replace") {
    for (const ref of [...active]) {
      let job: Job;
      try {
        job = await fx.getJob(ref.namespace ?? "", ref.name ?? "");
      } catch (err) {
        fx.event(cronJob, "Warning", "FailedGet", `Get job: ${errorMessage(err)}`);
        throw fail(err);
      }
      if (!(await deleteJobOf(cronJob, job, fx)))
        throw fail(
          new Error(`could not replace job ${job.metadata?.namespace}/${job.metadata?.name}`),
        );
      update = true;
    }
  }

  const req = jobFromTemplate(cronJob, scheduled);
  const ns = cronJob.metadata?.namespace ?? "";
  let created: Job;
  let existed = false;
  try {
    created = await fx.createJob(ns, req);
  } catch (err) {
    if (hasStatusCause(err, "NamespaceTerminating")) throw fail(err);
    if (!isStatusError(err, "AlreadyExists")) {
      fx.event(cronJob, "Warning", "FailedCreate", `Error creating job: ${errorMessage(err)}`);
      throw fail(err);
    }
    existed = true;
    try {
      created = await fx.getJob(ns, req.metadata!.name!);
    } catch (getErr) {
      throw fail(getErr);
    }
    const ref = controllerRef(created);
    if (!ref || ref.uid !== cronJob.metadata?.uid) return { update };
    if (active.some((r) => r.uid === created.metadata?.uid)) return { update };
  }
  if (!existed)
    fx.event(cronJob, "Normal", "SuccessfulCreate", `Created job ${created.metadata?.name}`);
  const status = (cronJob.status ??= {});
  status.active = [...(status.active ?? []), jobRef(created)];
  status.lastScheduleTime = nowTime(scheduled);
  return { requeueAfter: next(), update: true };
}

// ---------------------------------------------------------------------------------------------
// Wiring.

export interface CronJobControllerOptions {
  /** The clock schedules are read on (the manager's by default). */
  clock?: Clock;
}

export function cronJobDescriptorWith(o: CronJobControllerOptions = {}): ControllerDescriptor {
  return {
    name: "cronjob",
    aliases: ["cronjob-controller"],
    serviceAccount: "cronjob-controller",
    async start(ctx, signal) {
      const { client, informers } = ctx;
      const clock = o.clock ?? ctx.clock;
      const recorder = ctx.recorder("cronjob-controller");
      const cronJobs = informers.informer("batch/v1/CronJob");
      const jobs = informers.informer("batch/v1/Job");
      const cjClient = client.resource("batch/v1/CronJob");
      const jobsClient = client.resource("batch/v1/Job");
      const fx: CronJobEffects = {
        getCronJob: (ns, name) => cjClient.namespace(ns).get(name),
        getJob: (ns, name) => jobsClient.namespace(ns).get(name),
        createJob: (ns, job) => jobsClient.namespace(ns).create(job),
        deleteJob: async (ns, name) => {
          await jobsClient.namespace(ns).delete(name, { propagationPolicy: "Background" });
        },
        updateStatus: (cj) => cjClient.updateStatus(cj),
        event: (cj, type, reason, message) => recorder.event(cj, type, reason, message),
      };
      const c = controller({
        name: "cronjob",
        informers,
        for: "batch/v1/CronJob",
        owns: ["batch/v1/Job"],
        workers: ctx.options.concurrency.cronjob ?? 5,
        clock: ctx.clock,
        onError: (err, req) =>
          ctx.log.error(
            `error syncing CronJobController ${req.key}, requeuing: ${errorMessage(err)}`,
          ),
        reconcile: async ({ namespace, name }) => {
          const cj = cronJobs.store.getByName(namespace, name);
          if (!cj) return;
          const children = jobs.store
            .listNamespace(namespace)
            .filter((j) => controllerRef(j)?.name === name);
          const after = await syncCronJob(cj, children, clock.now(), fx);
          return after === undefined ? undefined : { requeueAfter: Math.max(1, after) };
        },
      });
      await c.start(signal);
    },
  };
}

export const cronJobDescriptor = cronJobDescriptorWith();
