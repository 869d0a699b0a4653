import assert from "node:assert/strict";
import { test } from "node:test";
import type { Job, JobSpec } from "kubernetes-types/batch/v1.js";
import type { Pod } from "kubernetes-types/core/v1.js";
import type { ObjectMeta } from "kubernetes-types/meta/v1.js";
import { FakeClock } from "../client/clock.js";
import { objectKey } from "../client/resources.js";
import { StatusError } from "../api/status.js";
import {
  activePodsForRemoval,
  completionIndex,
  firstPendingIndexes,
  formatIntervals,
  JOB_COMPLETION_INDEX_ANNOTATION,
  JOB_TRACKING_FINALIZER,
  JobSyncer,
  matchPodFailurePolicy,
  matchSuccessPolicy,
  nextBackoffRecord,
  parseIndexes,
  podGenerateNameWithIndex,
  remainingBackoff,
  withIndexes,
  type JobEffects,
} from "./job.js";

type Writable<T> = { -readonly [K in keyof T]: T[K] };

const INT32_MAX = 2147483647;
const T0 = Date.parse("2025-01-01T00:00:00Z");

test("completed indexes print as upstream's intervals and parse back", () => {
  assert.equal(formatIntervals(withIndexes([], [1, 3, 4, 5])), "1,3-5");
  assert.equal(formatIntervals(withIndexes([], [0, 1])), "0,1");
  assert.equal(formatIntervals(withIndexes([], [0, 1, 2])), "0-2");
  assert.equal(formatIntervals(withIndexes(parseIndexes("1,3-5", 10), [2, 7])), "1-5,7");
  // Indexes at or past completions are dropped; a range is cut at completions.
  assert.deepEqual(parseIndexes("0,2-9,12", 5), [
    { first: 0, last: 0 },
    { first: 2, last: 4 },
  ]);
  assert.deepEqual(parseIndexes("x,1", 3), [{ first: 1, last: 1 }]);
});

function pod(name: string, extra: Partial<Pod["metadata"]> = {}, phase = "Running"): Pod {
  return {
    metadata: {
      name,
      namespace: "ns",
      uid: `uid-${name}`,
      creationTimestamp: "2025-01-01T00:00:00Z",
      ...extra,
    },
    status: { phase },
  };
}

function indexed(ix: number, phase = "Running"): Pod {
  return pod(
    `p${ix}-${phase}`,
    { annotations: { [JOB_COMPLETION_INDEX_ANNOTATION]: String(ix) } },
    phase,
  );
}

test("first pending indexes skip active, succeeded and failed indexes", () => {
  const job: Job = { spec: { template: {}, completionMode: "Indexed", completions: 6 } };
  const active = [indexed(0), indexed(2)];
  assert.deepEqual(
    firstPendingIndexes(job, active, active, [{ first: 3, last: 3 }], undefined, 10, 6),
    [1, 4, 5],
  );
  assert.deepEqual(
    firstPendingIndexes(job, active, active, [], [{ first: 1, last: 1 }], 2, 6),
    [3, 4],
  );
  assert.equal(
    completionIndex(pod("x", { annotations: { [JOB_COMPLETION_INDEX_ANNOTATION]: "-1" } })),
    -1,
  );
});

test("repeated and out-of-range indexes are removed first", () => {
  const job: Job = { spec: { template: {}, completionMode: "Indexed", completions: 3 } };
  const a = indexed(1);
  const b = { ...indexed(1), metadata: { ...indexed(1).metadata, name: "dup", uid: "dup" } };
  const out = indexed(7);
  const removed = activePodsForRemoval(job, [a, b, out, indexed(0)], 0);
  assert.equal(removed.length, 2);
  assert.ok(removed.includes(out));
  assert.equal(podGenerateNameWithIndex("pi", 3), "pi-3-");
  assert.equal(podGenerateNameWithIndex("a".repeat(70), 12).length, 58);
});

test("back-off doubles from 10 s per failure since the last success, capped at 10 minutes", () => {
  const failedAt = (t: number): Pod => ({
    metadata: { name: "f", creationTimestamp: "2025-01-01T00:00:00Z" },
    status: {
      phase: "Failed",
      containerStatuses: [
        {
          name: "c",
          image: "i",
          imageID: "",
          ready: false,
          restartCount: 0,
          state: { terminated: { exitCode: 1, finishedAt: new Date(t).toISOString() } },
        },
      ],
    },
  });
  let rec = nextBackoffRecord({ key: "k", failuresAfterLastSuccess: 0 }, [], [failedAt(T0)]);
  assert.equal(rec.failuresAfterLastSuccess, 1);
  assert.equal(
    remainingBackoff(rec.failuresAfterLastSuccess, rec.lastFailureTime, T0 + 4000),
    6000,
  );
  rec = nextBackoffRecord(rec, [], [failedAt(T0 + 1000), failedAt(T0 + 2000)]);
  assert.equal(rec.failuresAfterLastSuccess, 3);
  assert.equal(rec.lastFailureTime, T0 + 2000);
  assert.equal(remainingBackoff(3, rec.lastFailureTime, T0 + 2000), 40_000);
  assert.equal(remainingBackoff(20, T0, T0), 600_000);
  // A success resets the count to the failures after it.
  const succeeded: Pod = {
    ...failedAt(T0 + 3000),
    status: { ...failedAt(T0 + 3000).status, phase: "Succeeded" },
  };
  rec = nextBackoffRecord(rec, [succeeded], [failedAt(T0 + 2500), failedAt(T0 + 4000)]);
  assert.deepEqual(rec, { key: "k", failuresAfterLastSuccess: 1, lastFailureTime: T0 + 4000 });
});

test("pod failure policy rules and success policy rules match as upstream", () => {
  const job: Job = {
    spec: {
      template: {},
      podFailurePolicy: {
        rules: [
          { action: "Ignore", onPodConditions: [{ type: "DisruptionTarget", status: "True" }] },
          { action: "FailJob", onExitCodes: { operator: "In", values: [42] } },
        ],
      },
    },
  };
  const failed = (code: number, cond?: string): Pod => ({
    metadata: { name: "p", namespace: "ns" },
    status: {
      phase: "Failed",
      conditions: cond ? [{ type: cond, status: "True" }] : [],
      containerStatuses: [
        {
          name: "main",
          image: "i",
          imageID: "",
          ready: false,
          restartCount: 0,
          state: { terminated: { exitCode: code } },
        },
      ],
    },
  });
  assert.deepEqual(matchPodFailurePolicy(job, failed(1, "DisruptionTarget")), {
    countFailed: false,
    action: "Ignore",
  });
  assert.equal(
    matchPodFailurePolicy(job, failed(42)).failJobMessage,
    "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1",
  );
  assert.deepEqual(matchPodFailurePolicy(job, failed(3)), { countFailed: true });
  const sp: Job = {
    spec: {
      template: {},
      completions: 5,
      successPolicy: { rules: [{ succeededIndexes: "0,2-3" }, { succeededCount: 4 }] },
    },
  };
  assert.equal(matchSuccessPolicy(sp, parseIndexes("0-2", 5)), undefined);
  assert.equal(matchSuccessPolicy(sp, parseIndexes("0,2,3", 5)), "Matched rules at index 0");
  assert.equal(matchSuccessPolicy(sp, parseIndexes("1-4", 5)), "Matched rules at index 1");
});

/**
 * A namespace of pods and one Job as the API server would keep them, and the cache events the
 * controller would see: the syncer is driven as the informers would drive it.
 */
class FakeCluster implements JobEffects {
  job: Job;
  pods = new Map<string, Pod>();
  events: string[] = [];
  statusWrites: Job[] = [];
  requeues: number[] = [];
  private seq = 0;
  syncer: JobSyncer;
  failCreates = false;

  constructor(
    spec: Partial<JobSpec>,
    readonly clock = new FakeClock(T0),
  ) {
    this.job = {
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: {
        name: "work",
        namespace: "ns",
        uid: "job-uid",
        generation: 1,
        resourceVersion: "1",
      },
      spec: {
        backoffLimit: 6,
        parallelism: 1,
        template: {
          spec: { containers: [{ name: "c", image: "busybox" }], restartPolicy: "Never" },
        },
        ...spec,
      },
      status: {},
    };
    this.syncer = new JobSyncer({ effects: this, clock });
  }

  get key(): string {
    return "ns/work";
  }

  createPod(_ns: string, p: Pod): Promise<Pod> {
    if (this.failCreates) return Promise.reject(new StatusError(403, "Forbidden", "quota"));
    const created = structuredClone(p);
    const name = `${p.metadata?.generateName}${String(this.seq++).padStart(5, "x")}`;
    created.metadata = {
      ...created.metadata,
      name,
      uid: `uid-${name}`,
      creationTimestamp: new Date(this.clock.now()).toISOString(),
    };
    (created as Writable<Pod>).status = { phase: "Pending" };
    this.pods.set(name, created);
    this.syncer.expectations.creationObserved(this.key);
    return Promise.resolve(created);
  }

  deletePod(_ns: string, name: string): Promise<void> {
    const p = this.pods.get(name);
    if (!p) return Promise.reject(new StatusError(404, "NotFound", "gone"));
    if (p.metadata?.finalizers?.length)
      (p.metadata as Writable<ObjectMeta>).deletionTimestamp ??= new Date(
        this.clock.now(),
      ).toISOString();
    else this.pods.delete(name);
    this.syncer.expectations.deletionObserved(this.key, objectKey(p));
    return Promise.resolve();
  }

  patchPod(_ns: string, name: string, patch: unknown): Promise<void> {
    const p = this.pods.get(name);
    if (!p) return Promise.reject(new StatusError(404, "NotFound", "gone"));
    const remove =
      (patch as { metadata: Record<string, string[]> }).metadata[
        "$deleteFromPrimitiveList/finalizers"
      ] ?? [];
    p.metadata!.finalizers = (p.metadata?.finalizers ?? []).filter((f) => !remove.includes(f));
    this.syncer.finalizerExpectations.observed(this.key, p.metadata!.uid!);
    if (p.metadata!.deletionTimestamp && p.metadata!.finalizers.length === 0)
      this.pods.delete(name);
    return Promise.resolve();
  }

  updateStatus(job: Job): Promise<Job> {
    const stored = structuredClone(job);
    (stored.metadata as Writable<ObjectMeta>).resourceVersion = String(
      Number(stored.metadata!.resourceVersion) + 1,
    );
    this.job = stored;
    this.statusWrites.push(structuredClone(stored));
    return Promise.resolve(structuredClone(stored));
  }

  event(_job: Job, type: string, reason: string, message: string): void {
    this.events.push(`${type} ${reason} ${message}`);
  }

  enqueueAfter(_key: string, ms: number): void {
    this.requeues.push(ms);
  }

  async sync(): Promise<void> {
    await this.syncer.sync(
      this.key,
      this.job,
      [...this.pods.values()],
      this.syncer.expectations.satisfied(this.key),
    );
  }

  setPhase(name: string, phase: string): void {
    const p = this.pods.get(name)! as Writable<Pod>;
    p.status = {
      phase,
      conditions: [
        {
          type: "Ready",
          status: "False",
          lastTransitionTime: new Date(this.clock.now()).toISOString(),
        },
      ],
    };
  }

  podNames(): string[] {
    return [...this.pods.keys()];
  }

  condition(type: string) {
    return this.job.status?.conditions?.find((c) => c.type === type);
  }
}

test("completions 3, parallelism 2: pods with the tracking finalizer, counted through uncountedTerminatedPods, then Complete", async () => {
  const c = new FakeCluster({ completions: 3, parallelism: 2 });
  await c.sync();
  assert.equal(c.pods.size, 2);
  for (const p of c.pods.values()) {
    assert.deepEqual(p.metadata?.finalizers, [JOB_TRACKING_FINALIZER]);
    assert.equal(p.metadata?.generateName, "work-");
    assert.equal(p.metadata?.ownerReferences?.[0]?.kind, "Job");
    assert.equal(p.metadata?.ownerReferences?.[0]?.controller, true);
  }
  assert.deepEqual(
    c.events,
    c.podNames().map((n) => `Normal SuccessfulCreate Created pod: ${n}`),
  );
  assert.equal(c.job.status?.active, 2);
  assert.equal(c.job.status?.ready, 0);
  assert.equal(c.job.status?.terminating, 0);
  assert.equal(c.job.status?.startTime, "2025-01-01T00:00:00Z");
  assert.deepEqual(c.job.status?.uncountedTerminatedPods, {});

  const [first] = c.podNames();
  c.setPhase(first!, "Succeeded");
  const writes = c.statusWrites.length;
  await c.sync();
  // First the uid goes into uncountedTerminatedPods, then (finalizer removed) into succeeded.
  const interim = c.statusWrites[writes]!;
  assert.deepEqual(interim.status?.uncountedTerminatedPods?.succeeded, [`uid-${first}`]);
  assert.equal(c.job.status?.succeeded, 1);
  assert.deepEqual(c.job.status?.uncountedTerminatedPods, {});
  assert.deepEqual(c.pods.get(first!)?.metadata?.finalizers, []);
  // One more pod: 3 - 1 remaining, 2 at a time, 1 running.
  await c.sync();
  assert.equal(c.pods.size, 3);
  assert.equal(c.job.status?.active, 2);

  for (const n of c.podNames()) if (n !== first) c.setPhase(n, "Succeeded");
  c.clock.step(5000);
  await c.sync();
  assert.equal(c.job.status?.succeeded, 3);
  const met = c.condition("SuccessCriteriaMet");
  const complete = c.condition("Complete");
  assert.equal(met?.reason, "CompletionsReached");
  assert.equal(complete?.status, "True");
  assert.equal(complete?.message, "Reached expected number of succeeded pods");
  assert.equal(c.job.status?.completionTime, "2025-01-01T00:00:05Z");
  assert.equal(c.job.status?.active, undefined);
  assert.ok(c.events.includes("Normal Completed Job completed"));
  // A finished Job is left alone.
  const n = c.statusWrites.length;
  await c.sync();
  assert.equal(c.statusWrites.length, n);
});

test("an Indexed Job creates one pod per pending index and reports completedIndexes", async () => {
  const c = new FakeCluster({ completions: 4, parallelism: 2, completionMode: "Indexed" });
  await c.sync();
  const byIndex = new Map([...c.pods.values()].map((p) => [completionIndex(p), p]));
  assert.deepEqual([...byIndex.keys()].sort(), [0, 1]);
  const p1 = byIndex.get(1)!;
  assert.equal(p1.metadata?.generateName, "work-1-");
  assert.equal(p1.metadata?.labels?.[JOB_COMPLETION_INDEX_ANNOTATION], "1");
  assert.equal(p1.spec?.hostname, "work-1");
  assert.deepEqual(p1.spec?.containers[0]?.env, [
    {
      name: "JOB_COMPLETION_INDEX",
      valueFrom: {
        fieldRef: { fieldPath: "metadata.labels['batch.kubernetes.io/job-completion-index']" },
      },
    },
  ]);
  c.setPhase(p1.metadata!.name!, "Succeeded");
  await c.sync();
  assert.equal(c.job.status?.completedIndexes, "1");
  await c.sync();
  assert.deepEqual([...c.pods.values()].map(completionIndex).sort(), [0, 1, 2]);
  for (const p of c.pods.values()) c.setPhase(p.metadata!.name!, "Succeeded");
  await c.sync();
  assert.equal(c.job.status?.completedIndexes, "0-2");
  await c.sync();
  for (const p of c.pods.values())
    if (p.status?.phase !== "Succeeded") c.setPhase(p.metadata!.name!, "Succeeded");
  await c.sync();
  assert.equal(c.job.status?.completedIndexes, "0-3");
  assert.equal(c.job.status?.succeeded, 4);
  assert.equal(c.condition("Complete")?.status, "True");
});

test("backoffLimit 1: the replacement waits out the back-off, a second failure fails the Job", async () => {
  const c = new FakeCluster({ completions: 1, backoffLimit: 1 });
  await c.sync();
  const [first] = c.podNames();
  c.setPhase(first!, "Failed");
  await c.sync();
  assert.equal(c.job.status?.failed, 1);
  assert.equal(c.pods.size, 1, "no replacement yet");
  assert.deepEqual(c.requeues, [10_000]);
  c.clock.step(10_000);
  await c.sync();
  const second = c.podNames().find((n) => n !== first)!;
  assert.ok(second, "replacement created after the back-off");
  c.setPhase(second, "Failed");
  await c.sync();
  assert.equal(c.job.status?.failed, 2);
  assert.equal(c.condition("FailureTarget")?.reason, "BackoffLimitExceeded");
  const failed = c.condition("Failed");
  assert.equal(failed?.reason, "BackoffLimitExceeded");
  assert.equal(failed?.message, "Job has reached the specified backoff limit");
  assert.ok(
    c.events.includes("Warning BackoffLimitExceeded Job has reached the specified backoff limit"),
  );
  assert.equal(c.job.status?.completionTime, undefined);
});

test("activeDeadlineSeconds: active pods are deleted, then the Job fails with DeadlineExceeded", async () => {
  const c = new FakeCluster({ completions: 2, parallelism: 2, activeDeadlineSeconds: 30 });
  await c.sync();
  assert.ok(c.requeues.includes(30_000));
  c.clock.step(31_000);
  await c.sync();
  // Pods are marked deleted (their finalizers keep them) and counted failed next.
  assert.equal(c.condition("FailureTarget")?.reason, "DeadlineExceeded");
  assert.ok(c.events.some((e) => e.startsWith("Normal SuccessfulDelete Deleted pod: work-")));
  await c.sync();
  assert.equal(c.pods.size, 0);
  assert.equal(c.job.status?.failed, 2);
  assert.equal(c.condition("Failed")?.message, "Job was active longer than specified deadline");
});

test("a suspended Job has no pods and the Suspended condition; resuming resets startTime", async () => {
  const c = new FakeCluster({ completions: 2, parallelism: 2, suspend: true });
  await c.sync();
  assert.equal(c.pods.size, 0);
  assert.equal(c.job.status?.startTime, undefined);
  assert.equal(c.condition("Suspended")?.reason, "JobSuspended");
  assert.ok(c.events.includes("Normal Suspended Job suspended"));
  c.job.spec!.suspend = false;
  c.clock.step(60_000);
  await c.sync();
  assert.equal(c.pods.size, 2);
  assert.equal(c.condition("Suspended")?.status, "False");
  assert.equal(c.condition("Suspended")?.reason, "JobResumed");
  assert.equal(c.job.status?.startTime, "2025-01-01T00:01:00Z");
});

test("a failed pod create records FailedCreate and is retried", async () => {
  const c = new FakeCluster({ completions: 2, parallelism: 2 });
  c.failCreates = true;
  await assert.rejects(c.sync(), /quota/);
  assert.ok(c.events.includes("Warning FailedCreate Error creating: quota"));
  // The skipped creation is not awaited: the next sync may create again.
  assert.equal(c.syncer.expectations.satisfied(c.key), true);
  c.failCreates = false;
  await c.sync();
  assert.equal(c.pods.size, 2);
});

test("backoffLimitPerIndex: an index fails on its own, the Job fails with FailedIndexes", async () => {
  const c = new FakeCluster({
    completions: 2,
    parallelism: 2,
    completionMode: "Indexed",
    backoffLimitPerIndex: 1,
    backoffLimit: INT32_MAX,
  });
  await c.sync();
  const pod0 = () =>
    [...c.pods.values()].filter((p) => completionIndex(p) === 0 && p.status?.phase !== "Failed");
  const [first] = pod0();
  assert.equal(first?.metadata?.annotations?.["batch.kubernetes.io/job-index-failure-count"], "0");
  c.setPhase(first!.metadata!.name!, "Failed");
  await c.sync();
  // The failed pod keeps its finalizer until its replacement exists (after the back-off).
  assert.deepEqual(c.pods.get(first!.metadata!.name!)?.metadata?.finalizers, [
    JOB_TRACKING_FINALIZER,
  ]);
  assert.equal(pod0().length, 0);
  c.clock.step(10_000);
  await c.sync();
  const [second] = pod0();
  assert.equal(second?.metadata?.annotations?.["batch.kubernetes.io/job-index-failure-count"], "1");
  c.setPhase(second!.metadata!.name!, "Failed");
  for (const p of c.pods.values())
    if (completionIndex(p) === 1) c.setPhase(p.metadata!.name!, "Succeeded");
  await c.sync();
  await c.sync();
  assert.equal(c.job.status?.failedIndexes, "0");
  assert.equal(c.job.status?.completedIndexes, "1");
  assert.equal(c.condition("Failed")?.reason, "FailedIndexes");
  assert.equal(c.condition("Failed")?.message, "Job has failed indexes");
});
