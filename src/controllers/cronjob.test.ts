import assert from "node:assert/strict";
import { test } from "node:test";
import type { CronJob, Job } from "kubernetes-types/batch/v1.js";
import { StatusError } from "../api/status.js";
import {
  CRONJOB_SCHEDULED_TIMESTAMP_ANNOTATION,
  formatRFC1123Z,
  formatRFC3339In,
  jobFromTemplate,
  jobsOverHistoryLimits,
  mostRecentScheduleTime,
  nextScheduleTimeDuration,
  syncCronJob,
  type CronJobEffects,
} from "./cronjob.js";
import { parseSchedule } from "../apiserver/strategies/cron.js";

const at = (s: string) => Date.parse(s);
const iso = (t: number) => new Date(t).toISOString().replace(".000Z", "Z");

function nexts(spec: string, from: string, n: number): string[] {
  const s = parseSchedule(spec);
  const out: string[] = [];
  let t = at(from);
  for (let i = 0; i < n; i++) {
    t = s.next(t);
    out.push(iso(t));
  }
  return out;
}

test("standard cron fields, names, ranges and steps give robfig/cron's next times", () => {
  assert.deepEqual(nexts("*/1 * * * *", "2025-03-01T10:00:30Z", 2), [
    "2025-03-01T10:01:00Z",
    "2025-03-01T10:02:00Z",
  ]);
  // A time exactly on a match is not its own next.
  assert.deepEqual(nexts("0 * * * *", "2025-03-01T10:00:00Z", 1), ["2025-03-01T11:00:00Z"]);
  assert.deepEqual(nexts("30 9-17/4 * * mon-fri", "2025-03-01T00:00:00Z", 4), [
    "2025-03-03T09:30:00Z",
    "2025-03-03T13:30:00Z",
    "2025-03-03T17:30:00Z",
    "2025-03-04T09:30:00Z",
  ]);
  // Both day fields restricted: either matches.
  assert.deepEqual(nexts("0 0 13 * 5", "2025-06-01T00:00:00Z", 3), [
    "2025-06-06T00:00:00Z",
    "2025-06-13T00:00:00Z",
    "2025-06-20T00:00:00Z",
  ]);
  assert.deepEqual(nexts("@monthly", "2025-01-15T00:00:00Z", 2), [
    "2025-02-01T00:00:00Z",
    "2025-03-01T00:00:00Z",
  ]);
  assert.deepEqual(nexts("@hourly", "2025-01-15T00:59:59Z", 1), ["2025-01-15T01:00:00Z"]);
  assert.deepEqual(nexts("0 0 1 jan,jul *", "2025-02-01T00:00:00Z", 2), [
    "2025-07-01T00:00:00Z",
    "2026-01-01T00:00:00Z",
  ]);
  assert.deepEqual(nexts("@every 90s", "2025-01-01T00:00:00.500Z", 1), ["2025-01-01T00:01:30Z"]);
  assert.throws(() => parseSchedule("* * *"), /expected exactly 5 fields, found 3: \[\* \* \*\]/);
  assert.throws(() => parseSchedule("61 * * * *"), /end of range \(61\) above maximum \(59\): 61/);
  assert.throws(() => parseSchedule("@fortnightly"), /unrecognized descriptor: @fortnightly/);
  // A day that never comes has no next time.
  assert.equal(parseSchedule("0 0 31 2 *").next(at("2025-01-01T00:00:00Z")), 0);
});

test("time zones: the wall clock of the zone, across a daylight saving change", () => {
  assert.deepEqual(nexts("TZ=Europe/Berlin 0 9 * * *", "2025-03-29T12:00:00Z", 2), [
    "2025-03-30T07:00:00Z",
    "2025-03-31T07:00:00Z",
  ]);
  // 02:30 does not exist in Berlin on 2025-03-30: skipped.
  assert.deepEqual(nexts("TZ=Europe/Berlin 30 2 * * *", "2025-03-29T12:00:00Z", 1), [
    "2025-03-31T00:30:00Z",
  ]);
  assert.equal(
    formatRFC3339In(at("2025-07-01T07:00:00Z"), "Europe/Berlin"),
    "2025-07-01T09:00:00+02:00",
  );
  assert.equal(formatRFC3339In(at("2025-07-01T07:00:00Z"), ""), "2025-07-01T07:00:00Z");
  assert.equal(formatRFC1123Z(at("2025-07-01T07:00:00Z")), "Tue, 01 Jul 2025 07:00:00 +0000");
});

function cronJob(spec: Partial<CronJob["spec"]> = {}, status: CronJob["status"] = {}): CronJob {
  return {
    apiVersion: "batch/v1",
    kind: "CronJob",
    metadata: {
      name: "hello",
      namespace: "ns",
      uid: "cj-uid",
      creationTimestamp: "2025-03-01T10:00:10Z",
    },
    spec: {
      schedule: "*/1 * * * *",
      concurrencyPolicy: "Allow",
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 1,
      jobTemplate: {
        metadata: { labels: { app: "hello" } },
        spec: { template: { spec: { containers: [{ name: "c", image: "busybox" }] } } },
      },
      ...spec,
    },
    status,
  };
}

test("the most recent unmet time, missed schedules and the next requeue", () => {
  const s = parseSchedule("*/1 * * * *");
  const cj = cronJob();
  assert.deepEqual(mostRecentScheduleTime(cj, at("2025-03-01T10:00:50Z"), s, true), {
    earliest: at("2025-03-01T10:00:10Z"),
    missed: "none",
  });
  assert.equal(
    mostRecentScheduleTime(cj, at("2025-03-01T10:01:05Z"), s, true).mostRecent,
    at("2025-03-01T10:01:00Z"),
  );
  const late = mostRecentScheduleTime(cj, at("2025-03-01T13:00:05Z"), s, true);
  assert.equal(late.mostRecent, at("2025-03-01T13:00:00Z"));
  assert.equal(late.missed, "many");
  const few = mostRecentScheduleTime(cj, at("2025-03-01T10:05:05Z"), s, true);
  assert.equal(few.missed, "few");
  // A starting deadline moves the earliest time up.
  const sds = cronJob({ startingDeadlineSeconds: 30 });
  assert.equal(mostRecentScheduleTime(sds, at("2025-03-01T13:00:20Z"), s, true).missed, "none");
  assert.equal(nextScheduleTimeDuration(cj, at("2025-03-01T10:00:50Z"), s), 10_100);
  assert.throws(
    () => mostRecentScheduleTime(cj, at("2030-01-01T00:00:00Z"), parseSchedule("0 0 31 2 *"), true),
    /less than 1 second/,
  );
});

test("a Job from the template: name in minutes, scheduled-timestamp annotation, controller reference", () => {
  const cj = cronJob({ timeZone: "Asia/Tokyo" });
  const job = jobFromTemplate(cj, at("2025-03-01T10:01:00Z"));
  assert.equal(job.metadata?.name, `hello-${at("2025-03-01T10:01:00Z") / 60_000}`);
  assert.equal(job.metadata?.labels?.app, "hello");
  assert.equal(
    job.metadata?.annotations?.[CRONJOB_SCHEDULED_TIMESTAMP_ANNOTATION],
    "2025-03-01T19:01:00+09:00",
  );
  assert.deepEqual(job.metadata?.ownerReferences, [
    {
      apiVersion: "batch/v1",
      kind: "CronJob",
      name: "hello",
      uid: "cj-uid",
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
});

function finishedJob(name: string, type: string, start: string): Job {
  return {
    metadata: { name, namespace: "ns", uid: name },
    status: {
      startTime: start,
      completionTime: type === "Complete" ? start : undefined,
      conditions: [{ type, status: "True" }],
    },
  } as Job;
}

test("history limits keep the newest finished Jobs", () => {
  const cj = cronJob({ successfulJobsHistoryLimit: 1, failedJobsHistoryLimit: 0 });
  const jobs = [
    finishedJob("a", "Complete", "2025-03-01T10:01:00Z"),
    finishedJob("b", "Complete", "2025-03-01T10:02:00Z"),
    finishedJob("c", "Failed", "2025-03-01T10:03:00Z"),
    { metadata: { name: "running" } } as Job,
  ];
  assert.deepEqual(
    jobsOverHistoryLimits(cj, jobs).map((j) => j.metadata?.name),
    ["a", "c"],
  );
});

class Fake implements CronJobEffects {
  jobs = new Map<string, Job>();
  events: string[] = [];
  written?: CronJob;
  constructor(public cj: CronJob) {}
  getCronJob(): Promise<CronJob> {
    return Promise.resolve(structuredClone(this.cj));
  }
  getJob(_ns: string, name: string): Promise<Job> {
    const j = this.jobs.get(name);
    return j
      ? Promise.resolve(j)
      : Promise.reject(new StatusError(404, "NotFound", `jobs.batch "${name}" not found`));
  }
  createJob(_ns: string, job: Job): Promise<Job> {
    const name = job.metadata!.name!;
    if (this.jobs.has(name))
      return Promise.reject(
        new StatusError(409, "AlreadyExists", `jobs.batch "${name}" already exists`),
      );
    const created = {
      ...structuredClone(job),
      metadata: { ...job.metadata, uid: `uid-${name}`, resourceVersion: "5" },
    };
    this.jobs.set(name, created);
    return Promise.resolve(created);
  }
  deleteJob(_ns: string, name: string): Promise<void> {
    this.jobs.delete(name);
    return Promise.resolve();
  }
  updateStatus(cj: CronJob): Promise<CronJob> {
    this.written = structuredClone(cj);
    this.cj = structuredClone(cj);
    return Promise.resolve(cj);
  }
  event(_cj: CronJob, type: string, reason: string, message: string): void {
    this.events.push(`${type} ${reason} ${message}`);
  }
}

test("a due time creates its Job once, records it active, and requeues for the next minute", async () => {
  const fx = new Fake(cronJob());
  const now = at("2025-03-01T10:01:00.200Z");
  const after = await syncCronJob(fx.cj, [], now, fx);
  const name = `hello-${at("2025-03-01T10:01:00Z") / 60_000}`;
  assert.ok(fx.jobs.has(name));
  assert.deepEqual(fx.events, [`Normal SuccessfulCreate Created job ${name}`]);
  assert.equal(fx.cj.status?.lastScheduleTime, "2025-03-01T10:01:00Z");
  assert.deepEqual(fx.cj.status?.active, [
    {
      kind: "Job",
      namespace: "ns",
      name,
      uid: `uid-${name}`,
      apiVersion: "batch/v1",
      resourceVersion: "5",
    },
  ]);
  assert.equal(after, 59_900);
  // Again at the same time: nothing new.
  await syncCronJob(fx.cj, [...fx.jobs.values()], now + 1000, fx);
  assert.equal(fx.jobs.size, 1);

  // The Job completes: it leaves the active list, lastSuccessfulTime follows.
  const done = fx.jobs.get(name)!;
  const finished = {
    ...done,
    status: {
      completionTime: "2025-03-01T10:01:30Z",
      conditions: [{ type: "Complete", status: "True" }],
    },
  } as Job;
  await syncCronJob(fx.cj, [finished], at("2025-03-01T10:01:40Z"), fx);
  assert.deepEqual(fx.cj.status?.active, []);
  assert.ok(
    fx.events.includes(`Normal SawCompletedJob Saw completed job: ${name}, status: Complete`),
  );
  await syncCronJob(fx.cj, [finished], at("2025-03-01T10:01:45Z"), fx);
  assert.equal(fx.cj.status?.lastSuccessfulTime, "2025-03-01T10:01:30Z");
});

test("Forbid skips a time while a Job runs; Replace deletes it first", async () => {
  const running = { metadata: { name: "hello-1", namespace: "ns", uid: "r1" }, status: {} } as Job;
  const active = [
    { kind: "Job", name: "hello-1", namespace: "ns", uid: "r1", apiVersion: "batch/v1" },
  ];
  const forbid = new Fake(cronJob({ concurrencyPolicy: "Forbid" }, { active }));
  forbid.jobs.set("hello-1", running);
  await syncCronJob(forbid.cj, [running], at("2025-03-01T10:01:01Z"), forbid);
  assert.deepEqual(forbid.events, [
    "Normal JobAlreadyActive Not starting job because prior execution is running and concurrency policy is Forbid",
  ]);
  assert.equal(forbid.jobs.size, 1);

  const replace = new Fake(cronJob({ concurrencyPolicy: "Replace" }, { active }));
  replace.jobs.set("hello-1", running);
  await syncCronJob(replace.cj, [running], at("2025-03-01T10:01:01Z"), replace);
  assert.ok(replace.events.includes("Normal SuccessfulDelete Deleted job hello-1"));
  assert.equal(replace.cj.status?.active?.length, 1);
  assert.notEqual(replace.cj.status?.active?.[0]?.name, "hello-1");
});

test("a missed starting deadline, too many missed times, suspend and a bad time zone", async () => {
  const late = new Fake(cronJob({ schedule: "0 * * * *", startingDeadlineSeconds: 10 }));
  await syncCronJob(late.cj, [], at("2025-03-01T11:00:30Z"), late);
  assert.equal(late.jobs.size, 0);

  const many = new Fake(cronJob());
  await syncCronJob(many.cj, [], at("2025-03-02T10:00:30Z"), many);
  assert.ok(
    many.events.includes(
      "Warning TooManyMissedTimes too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
    ),
  );
  assert.equal(many.jobs.size, 1, "the most recent time still starts");

  const suspended = new Fake(cronJob({ suspend: true }));
  assert.equal(
    await syncCronJob(suspended.cj, [], at("2025-03-01T10:05:00Z"), suspended),
    undefined,
  );
  assert.equal(suspended.jobs.size, 0);

  const tz = new Fake(cronJob({ timeZone: "Mars/Olympus" }));
  await syncCronJob(tz.cj, [], at("2025-03-01T10:05:00Z"), tz);
  assert.deepEqual(tz.events, [
    'Warning UnknownTimeZone invalid timeZone: "Mars/Olympus": unknown time zone Mars/Olympus',
  ]);
});
