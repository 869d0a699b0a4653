import assert from "node:assert/strict";
import { test } from "node:test";
import type { Node, Pod } from "kubernetes-types/core/v1.js";
import {
  markFailedPatch,
  nodeGoneCondition,
  NodeQuarantine,
  terminatedPodsToDelete,
  terminatingOnOutOfServiceNodes,
  unscheduledTerminating,
} from "./podgc.js";

function pod(name: string, phase: string, created: string, extra: Partial<Pod> = {}): Pod {
  return {
    metadata: { name, namespace: "ns", uid: `uid-${name}`, creationTimestamp: created },
    status: { phase },
    ...extra,
  };
}

test("terminated pods over the threshold go, evicted first, then oldest", () => {
  const pods = [
    pod("new", "Succeeded", "2025-01-03T00:00:00Z"),
    pod("old", "Failed", "2025-01-01T00:00:00Z"),
    {
      ...pod("evicted", "Failed", "2025-01-05T00:00:00Z"),
      status: { phase: "Failed", reason: "Evicted" },
    },
    pod("running", "Running", "2024-01-01T00:00:00Z"),
    pod("mid", "Succeeded", "2025-01-02T00:00:00Z"),
  ];
  assert.deepEqual(
    terminatedPodsToDelete(pods, 2).map((p) => p.metadata?.name),
    ["evicted", "old"],
  );
  assert.deepEqual(terminatedPodsToDelete(pods, 4), []);
  assert.deepEqual(terminatedPodsToDelete(pods, 0), []);
});

test("terminating pods: on out-of-service nodes that are not ready, and unscheduled ones", () => {
  const deleting = { deletionTimestamp: "2025-01-01T00:00:00Z" };
  const a = {
    ...pod("a", "Running", "2025-01-01T00:00:00Z"),
    spec: { nodeName: "down", containers: [] },
  };
  a.metadata = { ...a.metadata, ...deleting };
  const b = {
    ...pod("b", "Running", "2025-01-01T00:00:00Z"),
    spec: { nodeName: "up", containers: [] },
  };
  b.metadata = { ...b.metadata, ...deleting };
  const c = { ...pod("c", "Pending", "2025-01-01T00:00:00Z"), spec: { containers: [] } };
  c.metadata = { ...c.metadata, ...deleting };
  const nodes: Record<string, Node> = {
    down: {
      metadata: { name: "down" },
      spec: { taints: [{ key: "node.kubernetes.io/out-of-service", effect: "NoExecute" }] },
      status: { conditions: [{ type: "Ready", status: "False" }] },
    },
    up: {
      metadata: { name: "up" },
      spec: { taints: [{ key: "node.kubernetes.io/out-of-service", effect: "NoExecute" }] },
      status: { conditions: [{ type: "Ready", status: "True" }] },
    },
  };
  assert.deepEqual(
    terminatingOnOutOfServiceNodes([a, b, c], (n) => nodes[n]).map((p) => p.metadata?.name),
    ["a"],
  );
  assert.deepEqual(
    unscheduledTerminating([a, b, c]).map((p) => p.metadata?.name),
    ["c"],
  );
});

test("a missing node is checked only after its quarantine", () => {
  const q = new NodeQuarantine(40_000);
  const p = {
    ...pod("p", "Running", "2025-01-01T00:00:00Z"),
    spec: { nodeName: "gone", containers: [] },
  };
  q.notice([p], new Set(["other"]), 0);
  q.notice([p], new Set(["other"]), 20_000);
  assert.deepEqual(q.due(39_999), []);
  assert.deepEqual(q.due(40_000), ["gone"]);
  assert.deepEqual(q.due(80_000), []);
  q.notice([p], new Set(["gone"]), 90_000);
  assert.deepEqual(q.due(1e9), []);
});

test("a running pod is marked Failed with the DisruptionTarget condition before deletion", () => {
  const now = Date.parse("2025-01-01T00:00:00Z");
  assert.deepEqual(markFailedPatch(pod("r", "Running", "x"), nodeGoneCondition(), now), {
    metadata: { uid: "uid-r" },
    status: {
      phase: "Failed",
      conditions: [
        {
          type: "DisruptionTarget",
          status: "True",
          reason: "DeletionByPodGC",
          message: "PodGC: node no longer exists",
          lastTransitionTime: "2025-01-01T00:00:00Z",
        },
      ],
    },
  });
  assert.equal(markFailedPatch(pod("s", "Succeeded", "x"), undefined, now), undefined);
  assert.deepEqual(markFailedPatch(pod("q", "Pending", "x"), undefined, now), {
    metadata: { uid: "uid-q" },
    status: { phase: "Failed" },
  });
});
