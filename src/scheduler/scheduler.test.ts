import assert from "node:assert/strict";
import { test } from "node:test";
import { Scheduler } from "./scheduler.js";
import { makeNode, makePod, seededRandom } from "./testutil.js";

class FakeClock {
  t = 5_000_000;
  now(): number {
    return this.t;
  }
}

test("a pending pod is bound to a node that fits, with upstream's event", () => {
  const s = new Scheduler({ randomInt: seededRandom() });
  s.onNodeAdd(makeNode("small", { cpu: "1" }));
  s.onNodeAdd(makeNode("big", { cpu: "8" }));
  const pod = makePod("web", { namespace: "prod", cpu: "2" });
  s.onPodAdd(pod);
  const d = s.scheduleOne();
  assert.ok(d && d.kind === "bind");
  assert.equal(d.nodeName, "big");
  assert.deepEqual(d.binding, {
    apiVersion: "v1",
    kind: "Binding",
    metadata: { name: "web", namespace: "prod", uid: pod.metadata!.uid },
    target: { kind: "Node", name: "big" },
  });
  assert.equal(d.event.message, "Successfully assigned prod/web to big");
  s.bindingSucceeded(pod);
  // The informer then reports the bound pod; the assumed pod is confirmed.
  s.onPodUpdate(pod, { ...pod, spec: { ...pod.spec!, nodeName: "big" } });
  assert.equal(s.cache.isAssumedPod(pod), false);
  assert.equal(s.scheduleOne(), undefined);
});

test("an unschedulable pod gets the condition and event, and is retried when a node is added", () => {
  const clock = new FakeClock();
  const s = new Scheduler({ clock, randomInt: seededRandom() });
  s.onNodeAdd(makeNode("n1", { cpu: "1" }));
  const pod = makePod("big", { cpu: "4" });
  s.onPodAdd(pod);
  const d = s.scheduleOne();
  assert.ok(d && d.kind === "unschedulable");
  const msg =
    "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.";
  assert.deepEqual(d.condition, {
    type: "PodScheduled",
    status: "False",
    reason: "Unschedulable",
    message: msg,
  });
  assert.deepEqual(d.event, {
    type: "Warning",
    reason: "FailedScheduling",
    action: "Scheduling",
    message: msg,
  });
  assert.equal(s.scheduleOne(), undefined);

  clock.t += 2000;
  s.onNodeAdd(makeNode("n2", { cpu: "8" }));
  const again = s.scheduleOne();
  assert.ok(again && again.kind === "bind");
  assert.equal(again.nodeName, "n2");
});

test("preemption: the decision names the victims and the nominated node; the pod lands there after", () => {
  const clock = new FakeClock();
  const s = new Scheduler({ clock, randomInt: seededRandom() });
  s.onNodeAdd(makeNode("n1", { cpu: "2" }));
  const victim = makePod("low", { nodeName: "n1", cpu: "2", priority: 1 });
  s.onPodAdd(victim);
  const pod = makePod("high", { cpu: "1", priority: 1000 });
  s.onPodAdd(pod);
  const d = s.scheduleOne();
  assert.ok(d && d.kind === "unschedulable");
  assert.equal(d.nominatedNodeName, "n1");
  assert.deepEqual(
    d.victims.map((p) => p.metadata?.name),
    ["low"],
  );
  assert.equal(d.event.message, "0/1 nodes are available: 1 Insufficient cpu.");
  assert.deepEqual(
    s.queue.nominatedPodsForNode("n1").map((p) => p.name),
    ["high"],
  );

  // The victim goes away; the deletion moves the pod back once its backoff ends.
  s.onPodDelete(victim);
  clock.t += 1500;
  s.queue.flushBackoffQCompleted();
  const next = s.scheduleOne();
  assert.ok(next && next.kind === "bind");
  assert.equal(next.nodeName, "n1");
});

test("a failed binding forgets the pod and queues it again", () => {
  const clock = new FakeClock();
  const s = new Scheduler({ clock });
  s.onNodeAdd(makeNode("n1"));
  const pod = makePod("p");
  s.onPodAdd(pod);
  const d = s.scheduleOne();
  assert.ok(d && d.kind === "bind");
  const f = s.bindingFailed(pod, new Error("conflict"));
  assert.ok(f && f.kind === "error");
  assert.equal(f.condition.reason, "SchedulerError");
  assert.equal(s.cache.isAssumedPod(pod), false);
  assert.equal(s.queue.whereIs(pod.metadata!.uid!), "backoffQ");
  clock.t += 1001;
  s.queue.flushBackoffQCompleted();
  assert.ok(s.scheduleOne()?.kind === "bind");
});

test("pods for other schedulers are left alone", () => {
  const s = new Scheduler();
  s.onNodeAdd(makeNode("n1"));
  s.onPodAdd(makePod("p", { schedulerName: "someone-else" }));
  assert.equal(s.scheduleOne(), undefined);
});
