import assert from "node:assert/strict";
import { test } from "node:test";
import type { Node, Pod, Taint, Toleration } from "kubernetes-types/core/v1.js";
import { FakeClock } from "../client/clock.js";
import { Store } from "../client/store.js";
import type { Client } from "../client/resources.js";
import {
  evictionPlan,
  matchingTolerations,
  minTolerationTime,
  noExecuteTaints,
  POD_NODE_NAME_INDEX,
  podNodeNameIndexFunc,
  TaintEvictionController,
  TimedWorkers,
  withPodCondition,
} from "./tainteviction.js";

const unreachable: Taint = { key: "node.kubernetes.io/unreachable", effect: "NoExecute" };
const notReady: Taint = { key: "node.kubernetes.io/not-ready", effect: "NoExecute" };
const tol = (key: string, seconds?: number): Toleration => ({
  key,
  operator: "Exists",
  effect: "NoExecute",
  ...(seconds === undefined ? {} : { tolerationSeconds: seconds }),
});

test("only NoExecute taints count", () => {
  assert.deepEqual(
    noExecuteTaints([
      { key: "a", effect: "NoSchedule" },
      unreachable,
      { key: "b", effect: "PreferNoSchedule" },
    ]),
    [unreachable],
  );
});

test("matching tolerations: the first that tolerates each taint, or none tolerated", () => {
  const all = [tol("node.kubernetes.io/unreachable", 30), tol("node.kubernetes.io/not-ready", 300)];
  assert.deepEqual(matchingTolerations([unreachable], all), { allTolerated: true, used: [all[0]] });
  assert.deepEqual(matchingTolerations([unreachable, { key: "x", effect: "NoExecute" }], all), {
    allTolerated: false,
    used: [],
  });
  // An empty key with Exists tolerates everything.
  const any: Toleration = { operator: "Exists" };
  assert.equal(matchingTolerations([unreachable, notReady], [any]).allTolerated, true);
  // Equal compares the value.
  const valued: Taint = { key: "dedicated", value: "gpu", effect: "NoExecute" };
  assert.equal(
    matchingTolerations([valued], [{ key: "dedicated", value: "cpu", effect: "NoExecute" }])
      .allTolerated,
    false,
  );
  assert.equal(
    matchingTolerations([valued], [{ key: "dedicated", value: "gpu", operator: "Equal" }])
      .allTolerated,
    true,
  );
  assert.deepEqual(matchingTolerations([], undefined), { allTolerated: true, used: [] });
});

test("toleration time: the smallest, 0 for none or non-positive, -1 for forever", () => {
  assert.equal(minTolerationTime([]), 0);
  assert.equal(minTolerationTime([tol("a", 30), tol("b", 2)]), 2000);
  assert.equal(minTolerationTime([tol("a"), tol("b", 5)]), 5000);
  assert.equal(minTolerationTime([tol("a")]), -1);
  assert.equal(minTolerationTime([tol("a", 0), tol("b", 10)]), 0);
  assert.equal(minTolerationTime([tol("a", -3)]), 0);
});

test("eviction plan: at once when not tolerated, after the toleration, never when forever", () => {
  assert.deepEqual(evictionPlan([], []), { action: "cancel" });
  assert.deepEqual(evictionPlan([unreachable], []), { action: "evict", afterMs: 0 });
  assert.deepEqual(evictionPlan([unreachable], [tol(unreachable.key, 2)]), {
    action: "evict",
    afterMs: 2000,
  });
  assert.deepEqual(evictionPlan([unreachable], [tol(unreachable.key)]), { action: "cancel" });
  // Two taints: the pod goes after the shorter of the two tolerations used.
  assert.deepEqual(
    evictionPlan([unreachable, notReady], [tol(unreachable.key, 300), tol(notReady.key, 60)]),
    { action: "evict", afterMs: 60_000 },
  );
});

test("timed workers fire once at their time, stay known after success, cancel and forget", async () => {
  const clock = new FakeClock(1000);
  const fired: string[] = [];
  let fail = false;
  const w = new TimedWorkers(clock, (key) => {
    fired.push(key);
    return fail ? Promise.reject(new Error("no")) : Promise.resolve();
  });
  w.add("ns/a", 1000, 3000);
  w.add("ns/a", 1000, 1500); // already scheduled: ignored
  assert.deepEqual(w.get("ns/a"), { createdAt: 1000, fireAt: 3000 });
  clock.step(1999);
  assert.deepEqual(fired, []);
  clock.step(1);
  assert.deepEqual(fired, ["ns/a"]);
  await new Promise((r) => setImmediate(r));
  assert.equal(w.get("ns/a"), undefined, "no pending work after it ran");
  w.add("ns/a", clock.now(), clock.now());
  clock.step(10);
  assert.deepEqual(fired, ["ns/a"], "a pod already handled is not handled again");
  assert.equal(w.cancel("ns/a"), false, "nothing pending to cancel");
  w.add("ns/b", clock.now(), clock.now() + 100);
  assert.equal(w.cancel("ns/b"), true);
  clock.step(200);
  assert.deepEqual(fired, ["ns/a"]);
  // A failed run is forgotten, so the next add schedules it again.
  fail = true;
  w.add("ns/c", clock.now(), clock.now());
  clock.step(0);
  await new Promise((r) => setImmediate(r));
  w.add("ns/c", clock.now(), clock.now() + 5);
  assert.ok(w.get("ns/c"));
  w.cancelAll();
});

test("pod conditions change only when something changed, keeping the transition time", () => {
  const pod: Pod = {
    status: {
      conditions: [
        { type: "Ready", status: "True", lastTransitionTime: "2024-01-01T00:00:00Z" },
        { type: "PodScheduled", status: "True" },
      ],
    },
  };
  const t = "2024-01-02T00:00:00Z";
  const same = withPodCondition(pod, { type: "Ready", status: "True", lastTransitionTime: t });
  assert.equal(same, undefined);
  const flipped = withPodCondition(pod, { type: "Ready", status: "False", lastTransitionTime: t });
  assert.deepEqual(flipped?.[0], { type: "Ready", status: "False", lastTransitionTime: t });
  assert.equal(flipped?.length, 2);
  const added = withPodCondition(pod, {
    type: "DisruptionTarget",
    status: "True",
    reason: "DeletionByTaintManager",
    lastTransitionTime: t,
  });
  assert.equal(added?.length, 3);
});

function harness() {
  const clock = new FakeClock(Date.parse("2024-01-01T00:00:00Z"));
  const pods = new Store<Pod>({ [POD_NODE_NAME_INDEX]: podNodeNameIndexFunc });
  const nodes = new Store<Node>();
  const events: string[] = [];
  const c = new TaintEvictionController({
    // Deletions are not fired here; the suite in test/ deletes through a real API server.
    client: {} as Client,
    pods: { store: pods },
    nodes: { store: nodes },
    recorder: { event: (_o, type, reason, msg) => events.push(`${type} ${reason} ${msg}`) },
    clock,
    log: { info: () => {}, error: () => {} },
  });
  const pod = (name: string, tolerations: Toleration[]): Pod => ({
    metadata: { name, namespace: "default" },
    spec: { nodeName: "n1", containers: [], tolerations },
  });
  const node = (taints: Taint[]): Node => ({ metadata: { name: "n1" }, spec: { taints } });
  return { clock, pods, nodes, events, c, pod, node };
}

test("a tainted node schedules each pod's deletion by its tolerations; untainting cancels", () => {
  const h = harness();
  h.pods.set(h.pod("short", [tol(unreachable.key, 2)]));
  h.pods.set(h.pod("forever", [tol(unreachable.key)]));
  h.pods.set(h.pod("none", []));
  h.nodes.set(h.node([unreachable, { key: "x", effect: "NoSchedule" }]));
  h.c.handleNode("n1");
  const now = h.clock.now();
  assert.deepEqual(h.c.evictions.get("default/short"), { createdAt: now, fireAt: now + 2000 });
  assert.equal(h.c.evictions.get("default/forever"), undefined);
  assert.deepEqual(h.c.evictions.get("default/none"), { createdAt: now, fireAt: now });
  h.c.evictions.cancel("default/none");

  // A pod arriving later on the tainted node is judged at once too.
  h.clock.step(500);
  h.pods.set(h.pod("late", [tol(unreachable.key, 10)]));
  h.c.handlePod("default/late");
  assert.deepEqual(h.c.evictions.get("default/late"), {
    createdAt: now + 500,
    fireAt: now + 10_500,
  });
  // Re-judging keeps a countdown already running.
  h.c.handleNode("n1");
  assert.deepEqual(h.c.evictions.get("default/late"), {
    createdAt: now + 500,
    fireAt: now + 10_500,
  });

  // The taint goes: every scheduled deletion is cancelled, with an event each.
  h.nodes.set(h.node([]));
  h.c.handleNode("n1");
  assert.equal(h.c.evictions.get("default/short"), undefined);
  assert.equal(h.c.evictions.get("default/late"), undefined);
  assert.ok(
    h.events.includes("Normal TaintManagerEviction Cancelling deletion of Pod default/short"),
  );
  assert.ok(
    h.events.includes("Normal TaintManagerEviction Cancelling deletion of Pod default/late"),
  );
  h.c.evictions.cancelAll();
});

test("a deleted pod's scheduled deletion is cancelled", () => {
  const h = harness();
  h.pods.set(h.pod("p", [tol(unreachable.key, 60)]));
  h.nodes.set(h.node([unreachable]));
  h.c.handleNode("n1");
  assert.ok(h.c.evictions.get("default/p"));
  h.pods.delete("default/p");
  h.c.handlePod("default/p");
  assert.equal(h.c.evictions.get("default/p"), undefined);
  assert.deepEqual(h.events, ["Normal TaintManagerEviction Cancelling deletion of Pod default/p"]);
});
