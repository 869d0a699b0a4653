/**
 * The batch controllers end to end: one `k8ts apiserver`, and in this process the Job, CronJob,
 * TTL-after-finished and pod garbage collection controllers with the garbage collector, run by
 * the controller manager's own loop. No kubelet runs: the test plays it, setting pod phases.
 * Jobs are created and listed with the real kubectl where a user would use it.
 *
 * The CronJob controller reads its schedule on a clock shifted to just before a minute boundary
 * (the rest of the system keeps real time), so an every-minute schedule fires within seconds.
 * The pod garbage collector runs with a short period and quarantine for the same reason.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, test } from "node:test";
import type { Job } from "kubernetes-types/batch/v1.js";
import type { Event, Pod } from "kubernetes-types/core/v1.js";
import { isStatusError } from "../src/api/status.js";
import { realClock, type Clock } from "../src/client/clock.js";
import { defaultUserAgent, loadKubeconfig } from "../src/client/config.js";
import { Client } from "../src/client/resources.js";
import { cronJobDescriptorWith } from "../src/controllers/cronjob.js";
import { garbageCollectorDescriptor } from "../src/controllers/garbagecollector.js";
import { jobDescriptor } from "../src/controllers/job.js";
import { podGCDescriptorWith } from "../src/controllers/podgc.js";
import { ttlAfterFinishedDescriptor } from "../src/controllers/ttlafterfinished.js";
import { tempDir } from "../src/testing/tmp.js";
import { kubectl, TestAPIServer } from "./support/apiserver.js";
import { InProcessControllers } from "./support/controllers.js";
import { waitFor } from "./support/process.js";

const dir = tempDir("k8ts-jobs-");
const NS = "batch-e2e";
let server: TestAPIServer;
let kubeconfig: string;
let admin: Client;
const controllers = new InProcessControllers();

/** The CronJob controller's clock: real time plus an offset the CronJob test sets. */
let cronOffset = 0;
const cronClock: Clock = { now: () => Date.now() + cronOffset, setTimer: realClock.setTimer };

function k(args: string[], input?: string): string {
  const r = kubectl(kubeconfig, path.join(dir.path, "kube-cache"), args, input ? { input } : {});
  assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  server = new TestAPIServer(dir.path);
  await server.start();
  kubeconfig = server.writeKubeconfig(path.join(dir.path, "kubeconfig"));
  const config = loadKubeconfig({ kubeconfig, userAgent: defaultUserAgent("k8ts-test") });
  admin = new Client(config);
  await admin.resource("v1/Namespace").create({ metadata: { name: NS } });
  controllers.start({
    config,
    controllers: [
      jobDescriptor,
      cronJobDescriptorWith({ clock: cronClock }),
      ttlAfterFinishedDescriptor,
      podGCDescriptorWith({ gcCheckPeriod: 500, quarantineTime: 1000 }),
      garbageCollectorDescriptor,
    ],
  });
});

after(async () => {
  await controllers.stop();
  admin?.close();
  await server?.stop();
  dir.remove();
});

const pods = () => admin.resource("v1/Pod", NS);
const jobs = () => admin.resource("batch/v1/Job", NS);

async function podsOf(job: string): Promise<Pod[]> {
  return (await pods().list({ labelSelector: `batch.kubernetes.io/job-name=${job}` })).items;
}

/** The kubelet's part: `phase` for up to `n` of the job's pods that have not finished. */
async function finish(job: string, phase: "Succeeded" | "Failed", n = Infinity): Promise<string[]> {
  const running = (await podsOf(job)).filter(
    (p) =>
      p.status?.phase !== "Succeeded" &&
      p.status?.phase !== "Failed" &&
      !p.metadata?.deletionTimestamp,
  );
  const chosen = running.slice(0, n);
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  await Promise.all(
    chosen.map((p) =>
      pods().patch(
        p.metadata!.name!,
        "merge",
        {
          status: {
            phase,
            conditions: [{ type: "Ready", status: "False", lastTransitionTime: now }],
          },
        },
        { subresource: "status" },
      ),
    ),
  );
  return chosen.map((p) => p.metadata!.name!);
}

async function job(name: string): Promise<Job> {
  return jobs().get(name);
}

function condition(j: Job, type: string) {
  return j.status?.conditions?.find((c) => c.type === type);
}

async function eventsFor(name: string): Promise<Event[]> {
  return (
    await admin.resource("v1/Event", NS).list({ fieldSelector: `involvedObject.name=${name}` })
  ).items;
}

const busybox = { name: "main", image: "busybox", command: ["true"] };

test("a Job with completions 3 and parallelism 2 runs two pods at a time and completes", async () => {
  k(
    ["apply", "-f", "-"],
    `apiVersion: batch/v1
kind: Job
metadata:
  name: three
  namespace: ${NS}
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["true"]
`,
  );
  const first = await waitFor(
    "two pods",
    async () => {
      const ps = await podsOf("three");
      return ps.length === 2 ? ps : undefined;
    },
    20_000,
  );
  for (const p of first) {
    assert.deepEqual(p.metadata?.finalizers, ["batch.kubernetes.io/job-tracking"]);
    assert.match(p.metadata?.name ?? "", /^three-[a-z0-9]{5}$/);
    assert.equal(p.metadata?.labels?.["job-name"], "three");
    assert.equal(p.metadata?.ownerReferences?.[0]?.kind, "Job");
  }
  await waitFor("status.active 2", async () => (await job("three")).status?.active === 2, 20_000);
  const running = k(["get", "jobs", "-n", NS, "three"]);
  assert.match(running, /^NAME\s+STATUS\s+COMPLETIONS\s+DURATION\s+AGE\n/);
  assert.match(running, /^three\s+Running\s+0\/3\s+\S+\s+\S+\n/m);

  await finish("three", "Succeeded", 1);
  await waitFor("a third pod", async () => (await podsOf("three")).length === 3, 20_000);
  await waitFor(
    "succeeded 1, finalizer removed",
    async () => {
      const j = await job("three");
      const done = (await podsOf("three")).filter((p) => p.status?.phase === "Succeeded");
      return j.status?.succeeded === 1 && done.every((p) => !p.metadata?.finalizers?.length);
    },
    20_000,
  );
  await finish("three", "Succeeded");
  const done = await waitFor(
    "Complete",
    async () => {
      const j = await job("three");
      return condition(j, "Complete")?.status === "True" ? j : undefined;
    },
    20_000,
  );
  assert.equal(done.status?.succeeded, 3);
  assert.equal(done.status?.active, undefined);
  assert.equal(done.status?.ready, 0);
  assert.equal(done.status?.terminating, 0);
  assert.deepEqual(done.status?.uncountedTerminatedPods, {});
  assert.ok(done.status?.completionTime);
  assert.deepEqual(
    done.status?.conditions?.map((c) => [c.type, c.status, c.reason, c.message]),
    [
      [
        "SuccessCriteriaMet",
        "True",
        "CompletionsReached",
        "Reached expected number of succeeded pods",
      ],
      ["Complete", "True", "CompletionsReached", "Reached expected number of succeeded pods"],
    ],
  );
  const out = k(["get", "jobs", "-n", NS, "three"]);
  assert.match(out, /^three\s+Complete\s+3\/3\s+\d+s\s+\d+s\n/m);
  const events = (await eventsFor("three")).map((e) => `${e.reason} ${e.message}`);
  assert.equal(
    events.filter((e) => e.startsWith("SuccessfulCreate Created pod: three-")).length,
    3,
  );
  assert.ok(events.includes("Completed Job completed"), events.join("\n"));
});

test("an Indexed Job reports completedIndexes and gives each pod its index", async () => {
  await jobs().create({
    metadata: { name: "idx" },
    spec: {
      completions: 4,
      parallelism: 2,
      completionMode: "Indexed",
      template: { spec: { restartPolicy: "Never", containers: [busybox] } },
    },
  });
  const ps = await waitFor(
    "two indexed pods",
    async () => {
      const list = await podsOf("idx");
      return list.length === 2 ? list : undefined;
    },
    20_000,
  );
  const byIndex = new Map(
    ps.map((p) => [p.metadata?.annotations?.["batch.kubernetes.io/job-completion-index"], p]),
  );
  assert.deepEqual([...byIndex.keys()].sort(), ["0", "1"]);
  const p1 = byIndex.get("1")!;
  assert.match(p1.metadata?.name ?? "", /^idx-1-[a-z0-9]{5}$/);
  assert.equal(p1.metadata?.labels?.["batch.kubernetes.io/job-completion-index"], "1");
  assert.equal(p1.spec?.hostname, "idx-1");
  assert.deepEqual(p1.spec?.containers[0]?.env, [
    {
      name: "JOB_COMPLETION_INDEX",
      valueFrom: {
        fieldRef: {
          apiVersion: "v1",
          fieldPath: "metadata.labels['batch.kubernetes.io/job-completion-index']",
        },
      },
    },
  ]);
  await pods().patch(
    p1.metadata!.name!,
    "merge",
    { status: { phase: "Succeeded" } },
    {
      subresource: "status",
    },
  );
  await waitFor(
    "completedIndexes 1",
    async () => (await job("idx")).status?.completedIndexes === "1",
    20_000,
  );
  // The kubelet finishes every pod the controller starts, until the Job completes.
  const done = await waitFor(
    "Complete",
    async () => {
      const j = await job("idx");
      if (condition(j, "Complete")?.status === "True") return j;
      await finish("idx", "Succeeded");
      return undefined;
    },
    20_000,
  );
  assert.equal(done.status?.completedIndexes, "0-3");
  assert.equal(done.status?.succeeded, 4);
});

test("backoffLimit 1: the second failure fails the Job with BackoffLimitExceeded", async () => {
  await jobs().create({
    metadata: { name: "flaky" },
    spec: {
      backoffLimit: 1,
      template: { spec: { restartPolicy: "Never", containers: [busybox] } },
    },
  });
  await waitFor("a pod", async () => (await podsOf("flaky")).length === 1, 20_000);
  await finish("flaky", "Failed");
  await waitFor("failed 1", async () => (await job("flaky")).status?.failed === 1, 20_000);
  // The replacement waits out the 10 s back-off.
  const replacement = await waitFor(
    "a replacement pod",
    async () => {
      const list = await podsOf("flaky");
      return list.find((p) => p.status?.phase !== "Failed");
    },
    30_000,
  );
  const firstFailure = (await podsOf("flaky")).find((p) => p.status?.phase === "Failed");
  const waited =
    Date.parse(replacement.metadata!.creationTimestamp!) -
    Date.parse(firstFailure?.status?.conditions?.[0]?.lastTransitionTime ?? "");
  assert.ok(waited >= 9_000, `replacement created ${waited} ms after the failure`);
  await finish("flaky", "Failed");
  const failed = await waitFor(
    "Failed",
    async () => {
      const j = await job("flaky");
      return condition(j, "Failed")?.status === "True" ? j : undefined;
    },
    20_000,
  );
  assert.equal(failed.status?.failed, 2);
  assert.equal(condition(failed, "FailureTarget")?.reason, "BackoffLimitExceeded");
  assert.equal(condition(failed, "Failed")?.reason, "BackoffLimitExceeded");
  assert.equal(condition(failed, "Failed")?.message, "Job has reached the specified backoff limit");
  assert.match(k(["get", "jobs", "-n", NS, "flaky"]), /^flaky\s+Failed\s+0\/1\s+/m);
  const events = (await eventsFor("flaky")).map((e) => `${e.type} ${e.reason} ${e.message}`);
  assert.ok(
    events.includes("Warning BackoffLimitExceeded Job has reached the specified backoff limit"),
    events.join("\n"),
  );
});

test('a CronJob "*/1 * * * *" creates its Job at the minute and records it', async () => {
  // Put the controller's clock 1.5 s before the next minute boundary.
  const toBoundary = 60_000 - (Date.now() % 60_000);
  cronOffset = toBoundary - 1500 >= 0 ? toBoundary - 1500 : toBoundary + 58_500;
  const boundary = Math.ceil(cronClock.now() / 60_000) * 60_000;
  await admin.resource("batch/v1/CronJob", NS).create({
    metadata: { name: "tick" },
    spec: {
      schedule: "*/1 * * * *",
      jobTemplate: {
        spec: { template: { spec: { restartPolicy: "OnFailure", containers: [busybox] } } },
      },
    },
  });
  const name = `tick-${boundary / 60_000}`;
  const created = await waitFor(
    "the scheduled Job",
    async () => {
      try {
        return await job(name);
      } catch (err) {
        if (isStatusError(err, "NotFound")) return undefined;
        throw err;
      }
    },
    20_000,
  );
  assert.equal(
    created.metadata?.annotations?.["batch.kubernetes.io/cronjob-scheduled-timestamp"],
    new Date(boundary).toISOString().replace(/\.\d+Z$/, "Z"),
  );
  assert.equal(created.metadata?.ownerReferences?.[0]?.kind, "CronJob");
  const cj = await waitFor(
    "status.active",
    async () => {
      const c = await admin.resource("batch/v1/CronJob", NS).get("tick");
      return c.status?.active?.length ? c : undefined;
    },
    20_000,
  );
  assert.equal(cj.status?.active?.[0]?.name, name);
  assert.equal(
    cj.status?.lastScheduleTime,
    new Date(boundary).toISOString().replace(/\.\d+Z$/, "Z"),
  );
  assert.ok(
    (await eventsFor("tick")).some(
      (e) => e.reason === "SuccessfulCreate" && e.message === `Created job ${name}`,
    ),
  );
  // Its pod succeeds: the Job completes and the CronJob notices.
  await waitFor("the Job's pod", async () => (await podsOf(name)).length === 1, 20_000);
  await finish(name, "Succeeded");
  const after = await waitFor(
    "lastSuccessfulTime",
    async () => {
      const c = await admin.resource("batch/v1/CronJob", NS).get("tick");
      return c.status?.lastSuccessfulTime && !c.status.active?.length ? c : undefined;
    },
    20_000,
  );
  assert.ok(after.status?.lastSuccessfulTime);
  assert.ok(
    (await eventsFor("tick")).some(
      (e) =>
        e.reason === "SawCompletedJob" &&
        e.message === `Saw completed job: ${name}, status: Complete`,
    ),
  );
  await admin.resource("batch/v1/CronJob", NS).patch("tick", "merge", { spec: { suspend: true } });
});

test("ttlSecondsAfterFinished deletes a finished Job and its pods", async () => {
  await jobs().create({
    metadata: { name: "short-lived" },
    spec: {
      ttlSecondsAfterFinished: 1,
      template: { spec: { restartPolicy: "Never", containers: [busybox] } },
    },
  });
  await waitFor("a pod", async () => (await podsOf("short-lived")).length === 1, 20_000);
  await finish("short-lived", "Succeeded");
  await waitFor("Complete", async () => !!condition(await job("short-lived"), "Complete"), 20_000);
  await waitFor(
    "the Job deleted",
    async () => {
      try {
        await job("short-lived");
        return false;
      } catch (err) {
        return isStatusError(err, "NotFound");
      }
    },
    20_000,
  );
  await waitFor("its pods deleted", async () => (await podsOf("short-lived")).length === 0, 20_000);
});

test("the pod garbage collector fails and deletes a pod whose node was deleted", async () => {
  await admin.resource("v1/Node").create({ metadata: { name: "vanishing" } });
  await pods().create({
    metadata: { name: "stranded", finalizers: ["example.com/hold"] },
    spec: { nodeName: "vanishing", containers: [busybox] },
  });
  await pods().patch(
    "stranded",
    "merge",
    { status: { phase: "Running" } },
    { subresource: "status" },
  );
  await admin.resource("v1/Node").delete("vanishing");
  const marked = await waitFor(
    "the pod failed and deleted",
    async () => {
      const p = await pods().get("stranded");
      return p.metadata?.deletionTimestamp ? p : undefined;
    },
    20_000,
  );
  assert.equal(marked.status?.phase, "Failed");
  const cond = marked.status?.conditions?.find((c) => c.type === "DisruptionTarget");
  assert.equal(cond?.status, "True");
  assert.equal(cond?.reason, "DeletionByPodGC");
  assert.equal(cond?.message, "PodGC: node no longer exists");
  await pods().patch("stranded", "merge", { metadata: { finalizers: null } });
  await waitFor(
    "the pod gone",
    async () => {
      try {
        await pods().get("stranded");
        return false;
      } catch (err) {
        return isStatusError(err, "NotFound");
      }
    },
    20_000,
  );
  assert.ok(!controllers.errors().some((l) => l.includes("stranded")), controllers.text());
});
