import assert from "node:assert/strict";
import { test } from "node:test";
import type { Pod } from "kubernetes-types/core/v1.js";
import { SchedulingQueue, type QueueProfile } from "./queue.js";
import { defaultFramework, makeNode, makePod } from "./testutil.js";

class FakeClock {
  t = 1_000_000;
  now(): number {
    return this.t;
  }
  step(ms: number): void {
    this.t += ms;
  }
}

function newQueue(clock = new FakeClock()) {
  const fw = defaultFramework();
  const profiles = new Map<string, QueueProfile>([
    [
      "default-scheduler",
      {
        preEnqueue: (p: Pod) => fw.runPreEnqueuePlugins(p),
        eventsToRegister: () => fw.eventsToRegister(),
      },
    ],
  ]);
  return {
    q: new SchedulingQueue({ less: (a, b) => fw.queueSortLess(a, b), profiles, clock }),
    clock,
  };
}

/** Pops the pod and sends it back rejected by these plugins. */
function reject(q: SchedulingQueue, plugins: string[]) {
  const qp = q.pop()!;
  qp.unschedulablePlugins = new Set(plugins);
  return { where: q.addUnschedulableIfNotPresent(qp), qp };
}

test("activeQ pops by priority, then by the time the pod was queued", () => {
  const { q, clock } = newQueue();
  q.add(makePod("low", { priority: 1 }));
  clock.step(1);
  q.add(makePod("high", { priority: 10 }));
  clock.step(1);
  q.add(makePod("low2", { priority: 1 }));
  assert.deepEqual(
    [q.pop(), q.pop(), q.pop()].map((x) => x?.podInfo.name),
    ["high", "low", "low2"],
  );
  assert.equal(q.pop(), undefined);
  assert.equal(q.schedulingCycle(), 3);
});

test("backoff doubles per attempt from 1s up to 10s", () => {
  const { q } = newQueue();
  q.add(makePod("p"));
  const qp = q.pop()!;
  const durations = [];
  for (let attempts = 1; attempts <= 6; attempts++) {
    qp.attempts = attempts;
    durations.push(q.backoffDuration(qp));
  }
  assert.deepEqual(durations, [1000, 2000, 4000, 8000, 10000, 10000]);
  qp.attempts = 0;
  assert.equal(q.backoffDuration(qp), 0);
});

test("a pod rejected by a plugin waits until an event that plugin registered for may help", () => {
  const { q, clock } = newQueue();
  q.add(makePod("p", { cpu: "2" }));
  assert.equal(reject(q, ["NodeResourcesFit"]).where, "unschedulablePods");
  // A node too small does not help; a label change is not an event NodeResourcesFit registered.
  q.nodeAdded(makeNode("small", { cpu: "1" }));
  q.nodeUpdated(makeNode("x", { labels: { a: "1" } }), makeNode("x", { labels: { a: "2" } }));
  assert.equal(
    q.whereIs(q.pendingPods().unschedulablePods[0]!.metadata!.uid!),
    "unschedulablePods",
  );
  // A big enough node does; the pod is still backing off (1s after its first attempt).
  q.nodeAdded(makeNode("big", { cpu: "4" }));
  assert.equal(q.pendingPods().backoffQ.length, 1);
  q.flushBackoffQCompleted();
  assert.equal(q.pendingPods().backoffQ.length, 1);
  clock.step(1001);
  q.flushBackoffQCompleted();
  assert.equal(q.pop()?.podInfo.name, "p");
});

test("a tainted node added does not move a pod rejected by TaintToleration; removing the taint does", () => {
  const { q } = newQueue();
  q.add(makePod("p"));
  reject(q, ["TaintToleration"]);
  const tainted = makeNode("n", { taints: [{ key: "k", effect: "NoSchedule" }] });
  q.nodeAdded(tainted);
  assert.equal(q.pendingPods().unschedulablePods.length, 1);
  q.nodeUpdated(tainted, makeNode("n"));
  assert.equal(q.pendingPods().unschedulablePods.length, 0);
});

test("the deletion of an assigned pod moves pods rejected by NodeResourcesFit", () => {
  const { q, clock } = newQueue();
  q.add(makePod("p", { cpu: "2" }));
  reject(q, ["NodeResourcesFit"]);
  clock.step(5000);
  q.assignedPodDeleted(makePod("other", { nodeName: "n", cpu: "2" }));
  assert.deepEqual(
    q.pendingPods().activeQ.map((p) => p.metadata?.name),
    ["p"],
  );
});

test("an event during the scheduling attempt is not lost", () => {
  const { q } = newQueue();
  q.add(makePod("p", { cpu: "2" }));
  const qp = q.pop()!;
  q.nodeAdded(makeNode("big", { cpu: "8" }));
  qp.unschedulablePlugins = new Set(["NodeResourcesFit"]);
  assert.equal(q.addUnschedulableIfNotPresent(qp), "backoffQ");
});

test("a pod failing without plugins (an error) goes to backoffQ", () => {
  const { q } = newQueue();
  q.add(makePod("p"));
  assert.equal(reject(q, []).where, "backoffQ");
});

test("unschedulable pods are retried after 5 minutes", () => {
  const { q, clock } = newQueue();
  q.add(makePod("p"));
  reject(q, ["NodeAffinity"]);
  clock.step(5 * 60_000);
  q.flushUnschedulablePodsLeftover();
  assert.equal(q.pendingPods().unschedulablePods.length, 1);
  clock.step(1);
  q.flushUnschedulablePodsLeftover();
  assert.deepEqual(
    q.pendingPods().activeQ.map((p) => p.metadata?.name),
    ["p"],
  );
});

test("scheduling gates keep a pod out of activeQ until they are removed", () => {
  const { q } = newQueue();
  const gated = makePod("g");
  gated.spec!.schedulingGates = [{ name: "example.com/wait" }];
  q.add(gated);
  assert.equal(q.pop(), undefined);
  assert.equal(q.pendingPods().unschedulablePods.length, 1);
  const open = { ...gated, spec: { ...gated.spec!, schedulingGates: [] } };
  q.update(gated, open);
  assert.equal(q.pop()?.podInfo.name, "g");
});

test("updating an unschedulable pod so that it tolerates a taint requeues it", () => {
  const { q, clock } = newQueue();
  const pod = makePod("p");
  q.add(pod);
  reject(q, ["TaintToleration"]);
  clock.step(2000);
  const tolerant = {
    ...pod,
    spec: { ...pod.spec!, tolerations: [{ key: "k", operator: "Exists" }] },
  };
  q.update(pod, tolerant);
  assert.equal(q.pop()?.podInfo.pod.spec?.tolerations?.length, 1);
});

test("nominated pods are listed per node and dropped when the pod is deleted", () => {
  const { q } = newQueue();
  const pod = makePod("p");
  q.add(pod);
  const qp = q.pop()!;
  q.addNominatedPod(qp.podInfo, "n1");
  assert.deepEqual(
    q.nominatedPodsForNode("n1").map((p) => p.name),
    ["p"],
  );
  q.delete(pod);
  assert.equal(q.nominatedPodsForNode("n1").length, 0);
});

test("popWait resolves when a pod arrives and when aborted", async () => {
  const { q } = newQueue();
  const waiting = q.popWait();
  q.add(makePod("p"));
  assert.equal((await waiting)?.podInfo.name, "p");
  const ac = new AbortController();
  const idle = q.popWait(ac.signal);
  ac.abort();
  assert.equal(await idle, undefined);
});
