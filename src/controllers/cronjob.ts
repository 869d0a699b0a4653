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
import { isStatusError } from "../api/status.js";
import type { Clock } from "../client/clock.js";
import { controller } from "../client/controller.js";
import type { ControllerDescriptor } from "./context.js";
import { errorMessage } from "./context.js";
import { controllerRef, newControllerRef, nowTime } from "./util.js";

export const CRONJOB_SCHEDULED_TIMESTAMP_ANNOTATION =
  "batch.kubernetes.io/cronjob-scheduled-timestamp";
/** Padding added to requeues against clock skew (upstream's nextScheduleDelta). */
export const NEXT_SCHEDULE_DELTA = 100;

// ---------------------------------------------------------------------------------------------
// Time zones.

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Whether Go's time.LoadLocation would know `tz` ("" and "UTC" are UTC). */
export function validTimeZone(tz: string): boolean {
  if (tz === "" || tz === "UTC" || tz === "Local") return true;
  try {
    zoneFormatter(tz);
    return true;
  } catch {
    return false;
  }
}

function zoneFormatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(tz, f);
  }
  return f;
}

function isUTC(tz: string): boolean {
  return tz === "" || tz === "UTC" || tz === "Etc/UTC";
}

/** The wall clock of `instant` in `tz`, as milliseconds of a UTC date with the same fields. */
export function wallClock(instant: number, tz: string): number {
  if (isUTC(tz)) return instant;
  const parts: Record<string, number> = {};
  for (const p of zoneFormatter(tz === "Local" ? localZone() : tz).formatToParts(new Date(instant)))
    if (p.type !== "literal") parts[p.type] = Number(p.value);
  const ms = ((instant % 1000) + 1000) % 1000;
  return Date.UTC(
    parts.year!,
    parts.month! - 1,
    parts.day!,
    parts.hour!,
    parts.minute!,
    parts.second!,
    ms,
  );
}

function localZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** The offset of `tz` from UTC at `instant` (ms, east positive). */
export function zoneOffset(instant: number, tz: string): number {
  return wallClock(instant, tz) - instant;
}

/**
 * The instant whose wall clock in `tz` is `wall`; undefined when that wall time does not exist
 * (skipped by a daylight saving change). Of two instants, the earlier.
 */
export function instantOfWall(wall: number, tz: string): number | undefined {
  if (isUTC(tz)) return wall;
  const first = wall - zoneOffset(wall, tz);
  const candidates = [first, wall - zoneOffset(first, tz)];
  for (const c of candidates.sort((a, b) => a - b)) if (wallClock(c, tz) === wall) return c;
  return undefined;
}

/** RFC 3339 of `instant` in `tz` (Go's time.RFC3339: "Z" in UTC, else "+hh:mm"). */
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
// Cron schedules.

export interface Schedule {
  /** The first time strictly after `t` (ms); 0 when there is none within five years. */
  next(t: number): number;
}

interface Bounds {
  min: number;
  max: number;
  names?: Record<string, number>;
}

const MONTH_NAMES: Record<string, number> = {
  jan: 1,
  feb: 2,
  mar: 3,
  apr: 4,
  may: 5,
  jun: 6,
  jul: 7,
  aug: 8,
  sep: 9,
  oct: 10,
  nov: 11,
  dec: 12,
};
const DOW_NAMES: Record<string, number> = {
  sun: 0,
  mon: 1,
  tue: 2,
  wed: 3,
  thu: 4,
  fri: 5,
  sat: 6,
};
const FIELDS: Bounds[] = [
  { min: 0, max: 59 },
  { min: 0, max: 23 },
  { min: 1, max: 31 },
  { min: 1, max: 12, names: MONTH_NAMES },
  { min: 0, max: 6, names: DOW_NAMES },
];
const MACROS: Record<string, string> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

export class CronParseError extends Error {}

function parseNumber(s: string, names?: Record<string, number>): number {
  const named = names?.[s.toLowerCase()];
  if (named !== undefined) return named;
  if (!/^[+-]?\d+$/.test(s))
    throw new CronParseError(
      `failed to parse int from ${s}: strconv.Atoi: parsing "${s}": invalid syntax`,
    );
  const n = Number(s);
  if (n < 0) throw new CronParseError(`negative number (${n}) not allowed: ${s}`);
  return n;
}

/** One field: the set of values, and whether it was a bare `*`/`?` (robfig's star bit). */
function parseField(field: string, b: Bounds): { values: Set<number>; star: boolean } {
  const values = new Set<number>();
  let star = false;
  for (const expr of field.split(",")) {
    const [range = "", stepStr, extra] = expr.split("/");
    if (extra !== undefined) throw new CronParseError(`too many slashes: ${expr}`);
    const lowHigh = range.split("-");
    let start: number;
    let end: number;
    let isStar = false;
    if (lowHigh[0] === "*" || lowHigh[0] === "?") {
      start = b.min;
      end = b.max;
      isStar = true;
    } else {
      start = parseNumber(lowHigh[0] ?? "", b.names);
      if (lowHigh.length === 1) end = start;
      else if (lowHigh.length === 2) end = parseNumber(lowHigh[1] ?? "", b.names);
      else throw new CronParseError(`too many hyphens: ${expr}`);
    }
    let step = 1;
    if (stepStr !== undefined) {
      step = parseNumber(stepStr);
      if (lowHigh.length === 1 && !isStar) end = b.max;
      if (step > 1) isStar = false;
    }
    if (start < b.min)
      throw new CronParseError(`beginning of range (${start}) below minimum (${b.min}): ${expr}`);
    if (end > b.max)
      throw new CronParseError(`end of range (${end}) above maximum (${b.max}): ${expr}`);
    if (start > end)
      throw new CronParseError(
        `beginning of range (${start}) beyond end of range (${end}): ${expr}`,
      );
    if (step === 0) throw new CronParseError(`step of range should be a positive number: ${expr}`);
    for (let v = start; v <= end; v += step) values.add(v);
    if (isStar) star = true;
  }
  return { values, star };
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Go's time.ParseDuration, in milliseconds. */
export function parseGoDuration(s: string): number {
  let rest = s;
  let sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    if (rest[0] === "-") sign = -1;
    rest = rest.slice(1);
  }
  if (rest === "0") return 0;
  if (!rest) throw new CronParseError(`time: invalid duration "${s}"`);
  let total = 0;
  while (rest) {
    const m = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/.exec(rest);
    if (!m) throw new CronParseError(`time: invalid duration "${s}"`);
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return sign * total;
}

class SpecSchedule implements Schedule {
  constructor(
    private readonly minute: Set<number>,
    private readonly hour: Set<number>,
    private readonly dom: Set<number>,
    private readonly month: Set<number>,
    private readonly dow: Set<number>,
    /** Either day field was a bare star: both must match. */
    private readonly dayAnd: boolean,
    private readonly tz: string,
  ) {}

  private dayMatches(wall: Date): boolean {
    const d = this.dom.has(wall.getUTCDate());
    const w = this.dow.has(wall.getUTCDay());
    return this.dayAnd ? d && w : d || w;
  }

  next(t: number): number {
    // Wall clock minutes strictly after t's minute, checked day by day for five years.
    let wall = Math.floor(wallClock(t, this.tz) / 60_000) * 60_000 + 60_000;
    const limitYear = new Date(wall).getUTCFullYear() + 5;
    for (;;) {
      const d = new Date(wall);
      if (d.getUTCFullYear() > limitYear) return 0;
      const dayStart = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
      if (!this.month.has(d.getUTCMonth() + 1) || !this.dayMatches(d)) {
        wall = dayStart + 86_400_000;
        continue;
      }
      const found = this.firstInDay(dayStart, wall);
      if (found !== undefined) {
        const instant = instantOfWall(found, this.tz);
        if (instant !== undefined && instant > t) return instant;
        wall = found + 60_000;
        continue;
      }
      wall = dayStart + 86_400_000;
    }
  }

  /** The first matching wall minute of the day starting at `dayStart`, at or after `from`. */
  private firstInDay(dayStart: number, from: number): number | undefined {
    for (let h = 0; h < 24; h++) {
      if (!this.hour.has(h)) continue;
      for (let m = 0; m < 60; m++) {
        if (!this.minute.has(m)) continue;
        const w = dayStart + h * 3_600_000 + m * 60_000;
        if (w >= from) return w;
      }
    }
    return undefined;
  }
}

class ConstantDelaySchedule implements Schedule {
  constructor(private readonly delay: number) {}
  next(t: number): number {
    return t - (((t % 1000) + 1000) % 1000) + this.delay;
  }
}

/**
 * robfig/cron v3's ParseStandard: `TZ=`/`CRON_TZ=` prefix, macros, `@every`, five fields.
 * Throws CronParseError with its messages.
 */
export function parseSchedule(spec: string): Schedule {
  if (spec.length === 0) throw new CronParseError("empty spec string");
  let tz = "";
  let rest = spec;
  if (rest.startsWith("TZ=") || rest.startsWith("CRON_TZ=")) {
    const i = rest.indexOf(" ");
    const eq = rest.indexOf("=");
    const loc = i < 0 ? rest.slice(eq + 1) : rest.slice(eq + 1, i);
    if (i < 0 || !validTimeZone(loc))
      throw new CronParseError(`provided bad location ${loc}: unknown time zone ${loc}`);
    tz = loc === "Local" ? localZone() : loc;
    rest = rest.slice(i).trim();
  }
  if (rest.startsWith("@every ")) {
    const d = rest.slice("@every ".length);
    let ms: number;
    try {
      ms = parseGoDuration(d);
    } catch (err) {
      throw new CronParseError(`failed to parse duration ${rest}: ${(err as Error).message}`);
    }
    ms = Math.max(1000, ms);
    return new ConstantDelaySchedule(ms - (ms % 1000));
  }
  if (rest.startsWith("@")) {
    const macro = MACROS[rest];
    if (!macro) throw new CronParseError(`unrecognized descriptor: ${rest}`);
    rest = macro;
  }
  const fields = rest.split(/\s+/).filter((f) => f !== "");
  if (fields.length !== 5)
    throw new CronParseError(
      `expected exactly 5 fields, found ${fields.length}: [${fields.join(" ")}]`,
    );
  const [minute, hour, dom, month, dow] = fields.map((f, i) => parseField(f, FIELDS[i]!));
  return new SpecSchedule(
    minute!.values,
    hour!.values,
    dom!.values,
    month!.values,
    dow!.values,
    dom!.star || dow!.star,
    tz,
  );
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
    if (isStatusError(err) && err.details?.causes?.some((c) => c.reason === "NamespaceTerminating"))
      throw fail(err);
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
