import assert from "node:assert/strict";
import { test } from "node:test";
import type { Pod } from "kubernetes-types/core/v1.js";
import type { ReplicaSet } from "kubernetes-types/apps/v1.js";
import {
  BURST_REPLICAS,
  calculateStatus,
  manageReplicas,
  REPLICATIONCONTROLLER_KIND,
  REPLICASET_KIND,
  statusNeedsUpdate,
} from "./replicaset.js";
import { podFromTemplate, rankPodsForDeletion } from "./podcontrol.js";
import { Expectations, newControllerRef, slowStartBatch } from "./util.js";

const NOW = Date.parse("2026-01-01T00:10:00Z");

function pod(
  name: string,
  extra: Partial<Pod["status"]> & { node?: string; created?: string } = {},
): Pod {
  const { node, created, ...status } = extra;
  return {
    metadata: {
      name,
      namespace: "default",
      labels: { app: "web" },
      creationTimestamp: created ?? "2026-01-01T00:00:00Z",
    },
    spec: { containers: [{ name: "c", image: "nginx" }], ...(node ? { nodeName: node } : {}) },
    status,
  };
}

const ready = (since = "2026-01-01T00:00:00Z") => ({
  phase: "Running",
  conditions: [{ type: "Ready", status: "True", lastTransitionTime: since }],
});

const rs: ReplicaSet = {
  metadata: { name: "web-abc", namespace: "default", uid: "u1", generation: 2 },
  spec: {
    replicas: 3,
    selector: { matchLabels: { app: "web" } },
    template: { metadata: { labels: { app: "web", tier: "front" } }, spec: { containers: [] } },
  },
  status: { replicas: 0 },
};

test("manageReplicas creates what is missing, at most a burst per sync", () => {
  assert.deepEqual(manageReplicas(3, [pod("a")]), { type: "create", count: 2 });
  assert.deepEqual(manageReplicas(10_000, []), { type: "create", count: BURST_REPLICAS });
  assert.deepEqual(manageReplicas(1, [pod("a")]), { type: "none" });
});

test("manageReplicas deletes unscheduled, pending, unready and newer pods first", () => {
  const pods = [
    pod("running-old", { ...ready(), node: "n1", created: "2026-01-01T00:00:00Z" }),
    pod("running-new", { ...ready(), node: "n1", created: "2026-01-01T00:05:00Z" }),
    pod("pending-on-node", { phase: "Pending", node: "n2" }),
    pod("unscheduled", { phase: "Pending" }),
    pod("running-unready", { phase: "Running", node: "n2" }),
  ];
  const action = manageReplicas(1, pods);
  assert.equal(action.type, "delete");
  assert.deepEqual(action.type === "delete" && action.pods.map((p) => p.metadata?.name), [
    "unscheduled",
    "pending-on-node",
    "running-unready",
    "running-new",
  ]);
  // Two ready pods on a crowded node go before one alone on its node.
  const crowded = [
    pod("alone", { ...ready(), node: "a" }),
    pod("pair-1", { ...ready(), node: "b" }),
    pod("pair-2", { ...ready(), node: "b" }),
  ];
  assert.equal(rankPodsForDeletion(crowded)[2]!.metadata?.name, "alone");
});

test("calculateStatus counts labeled, ready and available pods and reports failures", () => {
  const pods = [
    {
      ...pod("a", ready()),
      metadata: { ...pod("a").metadata, labels: { app: "web", tier: "front" } },
    },
    pod("b", ready("2026-01-01T00:09:50Z")),
    pod("c", { phase: "Pending" }),
  ];
  const withMinReady = { ...rs, spec: { ...rs.spec!, minReadySeconds: 30 } };
  const s = calculateStatus(withMinReady, pods, undefined, NOW);
  assert.deepEqual(s, {
    replicas: 3,
    fullyLabeledReplicas: 1,
    readyReplicas: 2,
    availableReplicas: 1,
  });
  assert.ok(statusNeedsUpdate(rs, s));

  const failed = calculateStatus(rs, [], new Error('pods "web-abc-" is forbidden: quota'), NOW);
  assert.equal(failed.replicas, 0);
  assert.deepEqual(failed.conditions, [
    {
      type: "ReplicaFailure",
      status: "True",
      lastTransitionTime: "2026-01-01T00:10:00Z",
      reason: "FailedCreate",
      message: 'pods "web-abc-" is forbidden: quota',
    },
  ]);
  // The condition goes once creating works again.
  const healed = calculateStatus({ ...rs, status: failed }, [], undefined, NOW);
  assert.equal(healed.conditions, undefined);
  // Nothing to write when the counts and the generation are current.
  assert.equal(
    statusNeedsUpdate({ ...rs, status: { replicas: 0, observedGeneration: 2 } }, { replicas: 0 }),
    false,
  );
});

test("pods from a template carry its metadata, the name prefix and the controller reference", () => {
  const ref = newControllerRef(rs, "apps/v1", "ReplicaSet");
  const p = podFromTemplate(
    {
      metadata: { labels: { app: "web" }, annotations: { a: "b" }, finalizers: ["x/y"] },
      spec: { containers: [{ name: "c" }] },
    },
    "default",
    "web-abc",
    ref,
  );
  assert.equal(p.metadata?.generateName, "web-abc-");
  assert.deepEqual(p.metadata?.labels, { app: "web" });
  assert.deepEqual(p.metadata?.annotations, { a: "b" });
  assert.deepEqual(p.metadata?.finalizers, ["x/y"]);
  assert.deepEqual(p.metadata?.ownerReferences, [
    {
      apiVersion: "apps/v1",
      kind: "ReplicaSet",
      name: "web-abc",
      uid: "u1",
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
});

test("selectors: label selectors for ReplicaSets, maps for ReplicationControllers", () => {
  assert.ok(REPLICASET_KIND.matches(rs, { app: "web", x: "y" }));
  assert.ok(!REPLICASET_KIND.matches(rs, { app: "db" }));
  const rc = { spec: { selector: { app: "web" } } };
  assert.ok(REPLICATIONCONTROLLER_KIND.matches(rc, { app: "web" }));
  assert.ok(!REPLICATIONCONTROLLER_KIND.matches({ spec: { selector: {} } }, { app: "web" }));
});

test("slow-start batches grow 1, 2, 4, ... and stop at the first failing batch", async () => {
  const groups: number[][] = [];
  let current: number[] = [];
  const r = await slowStartBatch(10, 1, async (i) => {
    current.push(i);
    await Promise.resolve();
    if (current.length) {
      groups.push(current);
      current = [];
    }
  });
  assert.deepEqual(
    groups.map((g) => g.length),
    [1, 2, 4, 3],
  );
  assert.equal(r.successes, 10);
  let calls = 0;
  const failing = await slowStartBatch(100, 1, async (i) => {
    calls++;
    if (i === 4) throw new Error("boom");
  });
  // Batches 1 and 2 succeed; the batch of 4 (indexes 3-6) fails after all four ran.
  assert.equal(calls, 7);
  assert.equal(failing.successes, 6);
  assert.match(String(failing.error), /boom/);
});

test("expectations wait for every create and each deletion once", () => {
  let now = 0;
  const e = new Expectations(() => now);
  assert.ok(e.satisfied("ns/rs"));
  e.expectCreations("ns/rs", 2);
  assert.ok(!e.satisfied("ns/rs"));
  e.creationObserved("ns/rs");
  e.creationObserved("ns/rs");
  assert.ok(e.satisfied("ns/rs"));
  e.expectDeletions("ns/rs", ["ns/a", "ns/b"]);
  e.deletionObserved("ns/rs", "ns/a");
  e.deletionObserved("ns/rs", "ns/a"); // marked for deletion, then gone: counts once
  assert.ok(!e.satisfied("ns/rs"));
  now += 5 * 60_000 + 1;
  assert.ok(e.satisfied("ns/rs"), "expired expectations no longer block");
});
