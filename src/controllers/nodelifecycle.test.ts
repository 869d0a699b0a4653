import assert from "node:assert/strict";
import { test } from "node:test";
import type { Lease } from "kubernetes-types/coordination/v1.js";
import type { Node, NodeCondition, Pod } from "kubernetes-types/core/v1.js";
import { FakeClock } from "../client/clock.js";
import { formatMicroTime } from "../client/leaderelection.js";
import {
  addOrUpdateTaints,
  computeZoneState,
  evaluateNodeHealth,
  labelsToReconcile,
  noScheduleTaintDiff,
  podNotReadyConditions,
  RateLimitedTimedQueue,
  removeTaints,
  zoneKey,
  type NodeHealth,
} from "./nodelifecycle.js";
import { nowTime } from "./util.js";

const T0 = Date.parse("2024-05-01T10:00:00Z");
const GRACE = 40_000;
const STARTUP = 60_000;

function readyNode(heartbeat: number, extra: Partial<NodeCondition>[] = []): Node {
  const cond = (type: string, status: string): NodeCondition => ({
    type,
    status,
    lastHeartbeatTime: nowTime(heartbeat),
    lastTransitionTime: nowTime(T0 - 3600_000),
  });
  return {
    metadata: { name: "n1", uid: "u1", creationTimestamp: nowTime(T0 - 7200_000) },
    status: {
      conditions: [
        cond("MemoryPressure", "False"),
        cond("DiskPressure", "False"),
        cond("PIDPressure", "False"),
        cond("Ready", "True"),
        ...(extra as NodeCondition[]),
      ],
    },
  };
}

function lease(renew: number): Lease {
  return {
    metadata: { name: "n1", namespace: "kube-node-lease" },
    spec: { holderIdentity: "n1", renewTime: formatMicroTime(renew) },
  };
}

/** Runs one health pass and, like the controller after a successful write, keeps the result. */
function pass(node: Node, health: NodeHealth | undefined, l: Lease | undefined, now: number) {
  const r = evaluateNodeHealth({
    node,
    health,
    lease: l,
    now,
    gracePeriod: GRACE,
    startupGracePeriod: STARTUP,
  });
  return { ...r, next: r.healthAfterUpdate ?? r.health };
}

test("a renewed Lease keeps a node healthy though its status is old", () => {
  const node = readyNode(T0);
  let r = pass(node, undefined, lease(T0), T0);
  assert.equal(r.update, undefined);
  let health = r.next;
  for (let t = T0 + 10_000; t <= T0 + 120_000; t += 10_000) {
    r = pass(node, health, lease(t), t);
    assert.equal(r.update, undefined, `at +${t - T0}ms`);
    assert.equal(r.health.probeTimestamp, t);
    health = r.next;
  }
});

test("past the grace period without Lease or status, every condition turns Unknown once", () => {
  const node = readyNode(T0);
  let r = pass(node, undefined, lease(T0), T0);
  const health = r.next;
  // Still within the grace period.
  r = pass(node, health, lease(T0), T0 + GRACE);
  assert.equal(r.update, undefined);
  // Past it.
  const t = T0 + GRACE + 1000;
  r = pass(node, r.next, lease(T0), t);
  assert.ok(r.update);
  assert.equal(r.observedReady.status, "True");
  assert.equal(r.currentReady?.status, "Unknown");
  const conds = r.update.status!.conditions!;
  for (const type of ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"]) {
    const c = conds.find((x) => x.type === type)!;
    assert.equal(c.status, "Unknown", type);
    assert.equal(c.reason, "NodeStatusUnknown");
    assert.equal(c.message, "Kubelet stopped posting node status.");
    assert.equal(c.lastTransitionTime, nowTime(t));
    assert.equal(c.lastHeartbeatTime, nowTime(T0), "the heartbeat stays the kubelet's");
  }
  assert.equal(node.status!.conditions![3]!.status, "True", "the input is not modified");
  assert.equal(r.next.readyTransitionTimestamp, t);

  // Written: the next pass sees Unknown already and writes nothing.
  r = pass(r.update, r.next, lease(T0), t + 5000);
  assert.equal(r.update, undefined);
  assert.equal(r.observedReady.status, "Unknown");
  assert.equal(r.currentReady?.status, "Unknown");
});

test("a new status heartbeat, or a Lease renewal, resets the countdown", () => {
  let node = readyNode(T0);
  let r = pass(node, undefined, undefined, T0);
  r = pass(node, r.next, undefined, T0 + 30_000);
  node = readyNode(T0 + 30_000);
  r = pass(node, r.next, undefined, T0 + 35_000);
  assert.equal(r.health.probeTimestamp, T0 + 35_000, "seen when the new heartbeat was observed");
  r = pass(node, r.next, undefined, T0 + 70_000);
  assert.equal(r.update, undefined);
  r = pass(node, r.next, lease(T0 + 71_000), T0 + 72_000);
  r = pass(node, r.next, lease(T0 + 71_000), T0 + 111_000);
  assert.equal(r.update, undefined, "the lease renewal counted");
  r = pass(node, r.next, lease(T0 + 71_000), T0 + 113_000);
  assert.ok(r.update);
});

test("a node that never posted status gets NodeStatusNeverUpdated after the startup grace", () => {
  const created = T0;
  const node: Node = { metadata: { name: "n1", creationTimestamp: nowTime(created) } };
  let r = pass(node, undefined, undefined, T0 + 1000);
  assert.equal(r.update, undefined);
  assert.equal(r.observedReady.status, "Unknown");
  assert.equal(r.currentReady, undefined);
  r = pass(node, r.next, undefined, T0 + STARTUP + 1000);
  assert.ok(r.update);
  const ready = r.update.status!.conditions!.find((c) => c.type === "Ready")!;
  assert.equal(ready.reason, "NodeStatusNeverUpdated");
  assert.equal(ready.message, "Kubelet never posted node status.");
  assert.equal(ready.lastHeartbeatTime, nowTime(created));
  assert.equal(r.update.status!.conditions!.length, 4);
});

test("NoSchedule taints follow the conditions and spec.unschedulable", () => {
  const node: Node = {
    metadata: { name: "n1" },
    spec: {
      unschedulable: true,
      taints: [
        { key: "node.kubernetes.io/not-ready", effect: "NoSchedule" },
        { key: "node.kubernetes.io/unreachable", effect: "NoExecute" },
        { key: "dedicated", value: "x", effect: "NoSchedule" },
      ],
    },
    status: {
      conditions: [
        { type: "Ready", status: "Unknown" },
        { type: "MemoryPressure", status: "True" },
        { type: "DiskPressure", status: "False" },
      ],
    },
  };
  const d = noScheduleTaintDiff(node);
  assert.deepEqual(
    d.add.map((t) => t.key),
    [
      "node.kubernetes.io/unreachable",
      "node.kubernetes.io/memory-pressure",
      "node.kubernetes.io/unschedulable",
    ],
  );
  assert.ok(d.add.every((t) => t.effect === "NoSchedule"));
  assert.deepEqual(d.remove, [{ key: "node.kubernetes.io/not-ready", effect: "NoSchedule" }]);

  // The not-ready taint a new node registers with goes once it is Ready.
  const fresh: Node = {
    spec: { taints: [{ key: "node.kubernetes.io/not-ready", effect: "NoSchedule" }] },
    status: { conditions: [{ type: "Ready", status: "True" }] },
  };
  assert.deepEqual(noScheduleTaintDiff(fresh), {
    add: [],
    remove: [{ key: "node.kubernetes.io/not-ready", effect: "NoSchedule" }],
  });
});

test("taint edits: add or replace by key and effect, remove, or report no change", () => {
  const taints = [{ key: "a", effect: "NoExecute" }];
  assert.equal(addOrUpdateTaints(taints, [{ key: "a", effect: "NoExecute" }]), undefined);
  assert.deepEqual(addOrUpdateTaints(taints, [{ key: "a", effect: "NoSchedule" }]), [
    { key: "a", effect: "NoExecute" },
    { key: "a", effect: "NoSchedule" },
  ]);
  assert.deepEqual(addOrUpdateTaints(taints, [{ key: "a", value: "v", effect: "NoExecute" }]), [
    { key: "a", value: "v", effect: "NoExecute" },
  ]);
  assert.equal(removeTaints(taints, [{ key: "b", effect: "NoExecute" }]), undefined);
  assert.deepEqual(removeTaints(taints, [{ key: "a", effect: "NoExecute" }]), []);
});

test("zones: keys from the region and zone labels; states from the Ready conditions", () => {
  assert.equal(zoneKey({ metadata: {} }), "");
  assert.equal(
    zoneKey({
      metadata: {
        labels: { "topology.kubernetes.io/region": "r", "topology.kubernetes.io/zone": "z" },
      },
    }),
    "r:\x00:z",
  );
  const ready = { type: "Ready", status: "True" };
  const unknown = { type: "Ready", status: "Unknown" };
  assert.deepEqual(computeZoneState([ready, unknown]), { notReady: 1, state: "Normal" });
  assert.deepEqual(computeZoneState([unknown, undefined]), {
    notReady: 2,
    state: "FullDisruption",
  });
  assert.deepEqual(computeZoneState([ready, unknown, unknown, unknown]), {
    notReady: 3,
    state: "PartialDisruption",
  });
  assert.deepEqual(
    computeZoneState([ready, ready, ready, unknown, unknown, unknown]).state,
    "Normal",
  );
});

test("the taint queue takes one node per token, retries later, and forgets on remove", async () => {
  const clock = new FakeClock(T0);
  const q = new RateLimitedTimedQueue(0.1, clock);
  assert.equal(q.add("a", "ua"), true);
  assert.equal(q.add("a", "ua"), false);
  assert.equal(q.add("b", "ub"), true);
  const seen: string[] = [];
  await q.try(async (v) => {
    seen.push(v.value);
    return [true, 0];
  });
  assert.deepEqual(seen, ["a"], "burst 1: one node at once");
  clock.step(5000);
  await q.try(async (v) => (seen.push(v.value), [true, 0]));
  assert.deepEqual(seen, ["a"]);
  clock.step(5000);
  await q.try(async (v) => (seen.push(v.value), [true, 0]));
  assert.deepEqual(seen, ["a", "b"], "the next after 10 s at 0.1/s");
  assert.equal(q.add("a", "ua"), false, "processed values stay known");
  assert.equal(q.remove("a"), true);
  assert.equal(q.add("a", "ua"), true);

  // Not done: tried again after the wait.
  clock.step(10_000);
  let tries = 0;
  await q.try(async () => (tries++, [false, 50]));
  assert.equal(tries, 1);
  q.swapLimiter(0);
  clock.step(60_000);
  await q.try(async () => (tries++, [true, 0]));
  assert.equal(tries, 1, "a zero rate stops the queue");
  q.swapLimiter(0.1);
  clock.step(10_000);
  await q.try(async () => (tries++, [true, 0]));
  assert.equal(tries, 2);
});

test("pods of an unready node get Ready=False once", () => {
  const pod: Pod = {
    status: {
      conditions: [
        {
          type: "Ready",
          status: "True",
          lastTransitionTime: "2024-01-01T00:00:00Z",
          lastProbeTime: null as unknown as string,
        },
      ],
    },
  };
  const conds = podNotReadyConditions(pod, T0);
  assert.equal(conds?.[0]?.status, "False");
  assert.equal(conds?.[0]?.lastTransitionTime, nowTime(T0));
  assert.equal(podNotReadyConditions({ status: { conditions: conds } }, T0 + 1000), undefined);
  assert.equal(podNotReadyConditions({ status: {} }, T0), undefined, "no Ready condition: none");
});

test("the beta os and arch labels follow the stable ones", () => {
  assert.deepEqual(
    labelsToReconcile({
      metadata: {
        labels: {
          "kubernetes.io/os": "linux",
          "kubernetes.io/arch": "arm64",
          "beta.kubernetes.io/arch": "amd64",
        },
      },
    }),
    { "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "arm64" },
  );
  assert.deepEqual(labelsToReconcile({ metadata: {} }), {});
});
