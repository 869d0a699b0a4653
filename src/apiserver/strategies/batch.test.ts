import { test } from "node:test";
import assert from "node:assert/strict";
import { body, create, meta, UID, update } from "./harness.js";
import { cronScheduleError } from "./batch.js";
import type { KObject } from "../registry/types.js";

const podSpec = (name: string, image: string, restartPolicy: string) => ({
  containers: [
    {
      name,
      image,
      resources: {},
      imagePullPolicy: "Always",
      terminationMessagePath: "/dev/termination-log",
      terminationMessagePolicy: "File",
    },
  ],
  dnsPolicy: "ClusterFirst",
  restartPolicy,
  schedulerName: "default-scheduler",
  securityContext: {},
  terminationGracePeriodSeconds: 30,
});

/** What `kubectl create job pi --image=perl` sends. */
const jobBody = (): KObject =>
  body({
    kind: "Job",
    apiVersion: "batch/v1",
    metadata: { name: "pi", creationTimestamp: null },
    spec: {
      template: {
        metadata: { creationTimestamp: null },
        spec: {
          containers: [{ name: "pi", image: "perl", resources: {} }],
          restartPolicy: "Never",
        },
      },
    },
    status: {},
  });

const generatedLabels = {
  "batch.kubernetes.io/controller-uid": UID,
  "batch.kubernetes.io/job-name": "pi",
  "controller-uid": UID,
  "job-name": "pi",
};

test("kubectl create job's object is created as upstream 1.32 serves it", () => {
  const { obj, errors } = create("batch/jobs", jobBody());
  assert.deepEqual(errors, []);
  assert.deepEqual(obj, {
    kind: "Job",
    apiVersion: "batch/v1",
    metadata: meta("pi", { generation: 1, labels: generatedLabels }),
    spec: {
      backoffLimit: 6,
      completionMode: "NonIndexed",
      completions: 1,
      manualSelector: false,
      parallelism: 1,
      podReplacementPolicy: "TerminatingOrFailed",
      selector: { matchLabels: { "batch.kubernetes.io/controller-uid": UID } },
      suspend: false,
      template: {
        metadata: { creationTimestamp: null, labels: generatedLabels },
        spec: podSpec("pi", "perl", "Never"),
      },
    },
    status: {},
  });
});

test("job labels defaulted from the template include the generated labels", () => {
  const body = jobBody();
  const template = (body.spec as Record<string, Record<string, Record<string, unknown>>>).template!;
  template.metadata!.labels = { app: "pi" };
  const { obj } = create("batch/jobs", body);
  assert.deepEqual(obj.metadata?.labels, { app: "pi", ...generatedLabels });

  const own = jobBody();
  own.metadata!.labels = { team: "a" };
  assert.deepEqual(create("batch/jobs", own).obj.metadata?.labels, { team: "a" });
});

test("job validation messages", () => {
  const always = jobBody();
  const tspec = (always.spec as Record<string, Record<string, Record<string, unknown>>>).template!
    .spec!;
  delete tspec.restartPolicy;
  assert.deepEqual(create("batch/jobs", always).errors, [
    'spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"',
  ]);
  const negative = jobBody();
  (negative.spec as Record<string, unknown>).backoffLimit = -1;
  assert.deepEqual(create("batch/jobs", negative).errors, [
    "spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0",
  ]);
  const { obj: stored } = create("batch/jobs", jobBody());
  const changed = JSON.parse(JSON.stringify(stored)) as KObject;
  (changed.spec as Record<string, unknown>).completions = 3;
  assert.deepEqual(update("batch/jobs", changed, stored).errors, [
    "spec.completions: Invalid value: 3: field is immutable",
  ]);
});

/** What `kubectl create cronjob hello --image=busybox --schedule="*\/1 * * * *"` sends. */
const cronJobBody = (schedule = "*/1 * * * *"): KObject =>
  body({
    kind: "CronJob",
    apiVersion: "batch/v1",
    metadata: { name: "hello", creationTimestamp: null },
    spec: {
      jobTemplate: {
        metadata: { name: "hello", creationTimestamp: null },
        spec: {
          template: {
            metadata: { creationTimestamp: null },
            spec: {
              containers: [{ name: "hello", image: "busybox", resources: {} }],
              restartPolicy: "OnFailure",
            },
          },
        },
      },
      schedule,
    },
    status: {},
  });

test("kubectl create cronjob's object is created as upstream 1.32 returns it", () => {
  const { obj, errors } = create("batch/cronjobs", cronJobBody());
  assert.deepEqual(errors, []);
  assert.deepEqual(obj, {
    kind: "CronJob",
    apiVersion: "batch/v1",
    metadata: meta("hello", { generation: 1 }),
    spec: {
      concurrencyPolicy: "Allow",
      failedJobsHistoryLimit: 1,
      jobTemplate: {
        metadata: { name: "hello", creationTimestamp: null },
        spec: {
          template: {
            metadata: { creationTimestamp: null },
            spec: podSpec("hello", "busybox", "OnFailure"),
          },
        },
      },
      schedule: "*/1 * * * *",
      successfulJobsHistoryLimit: 3,
      suspend: false,
    },
    status: {},
  });
});

test("cron schedules are checked with robfig/cron's messages", () => {
  assert.equal(cronScheduleError("*/5 * * * *"), undefined);
  assert.equal(cronScheduleError("0 0 * * MON-FRI"), undefined);
  assert.equal(cronScheduleError("@hourly"), undefined);
  assert.equal(cronScheduleError("@every 1h30m"), undefined);
  assert.equal(cronScheduleError("* * *"), "expected exactly 5 fields, found 3: [* * *]");
  assert.equal(cronScheduleError("61 * * * *"), "end of range (61) above maximum (59): 61");
  assert.equal(cronScheduleError("0 0 0 * *"), "beginning of range (0) below minimum (1): 0");
  assert.equal(
    cronScheduleError("5-1 * * * *"),
    "beginning of range (5) beyond end of range (1): 5-1",
  );
  assert.equal(
    cronScheduleError("x * * * *"),
    'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax',
  );
  assert.equal(cronScheduleError("@weekdays"), "unrecognized descriptor: @weekdays");
  assert.deepEqual(create("batch/cronjobs", cronJobBody("* * *")).errors, [
    'spec.schedule: Invalid value: "* * *": expected exactly 5 fields, found 3: [* * *]',
  ]);
  assert.deepEqual(create("batch/cronjobs", cronJobBody("TZ=UTC 0 * * * *")).errors, [
    'spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead',
  ]);
});
