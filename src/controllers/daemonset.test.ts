import assert from "node:assert/strict";
import { test } from "node:test";
import type { ControllerRevision, DaemonSet } from "kubernetes-types/apps/v1.js";
import type { Node, Pod, PodSpec, Taint } from "kubernetes-types/core/v1.js";
import {
  addDaemonPodTolerations,
  calculateDaemonStatus,
  createPodTemplate,
  DAEMONSET_HASH_LABEL,
  historiesToDelete,
  isPodUpdated,
  nodeShouldRunDaemonPod,
  podsShouldBeOnNode,
  replaceNodeNameAffinity,
  rollingUpdateDecisions,
  targetNodeName,
  TEMPLATE_GENERATION_LABEL,
  unscheduledPodsWithoutNode,
} from "./daemonset.js";

const NOW = Date.parse("2026-01-01T00:10:00Z");

function node(name: string, extra: { labels?: Record<string, string>; taints?: Taint[] } = {}) {
  return {
    metadata: { name, labels: { "kubernetes.io/hostname": name, ...(extra.labels ?? {}) } },
    spec: extra.taints ? { taints: extra.taints } : {},
  } as Node;
}

function ds(extra: Partial<NonNullable<DaemonSet["spec"]>> = {}): DaemonSet {
  return {
    metadata: { name: "agent", namespace: "default", uid: "ds-uid", generation: 1 },
    spec: {
      selector: { matchLabels: { app: "agent" } },
      template: {
        metadata: { labels: { app: "agent" } },
        spec: { containers: [{ name: "a", image: "agent:1" }] },
      },
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } },
      ...extra,
    },
  };
}

const ready = {
  phase: "Running",
  conditions: [{ type: "Ready", status: "True", lastTransitionTime: "2026-01-01T00:00:00Z" }],
};

function pod(
  name: string,
  nodeName: string,
  hash: string,
  status: Pod["status"] = ready,
  created = "2026-01-01T00:00:00Z",
): Pod {
  return {
    metadata: {
      name,
      namespace: "default",
      creationTimestamp: created,
      labels: { app: "agent", [DAEMONSET_HASH_LABEL]: hash },
    },
    spec: { nodeName, containers: [] },
    status,
  };
}

test("daemon pods tolerate node problems as upstream's, host-network pods also the network", () => {
  const spec: PodSpec = {
    containers: [],
    tolerations: [
      { key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute" },
    ],
  };
  addDaemonPodTolerations(spec);
  assert.deepEqual(
    spec.tolerations?.map((t) => `${t.key}:${t.effect}`),
    [
      "node.kubernetes.io/unreachable:NoExecute",
      "node.kubernetes.io/not-ready:NoExecute",
      "node.kubernetes.io/disk-pressure:NoSchedule",
      "node.kubernetes.io/memory-pressure:NoSchedule",
      "node.kubernetes.io/pid-pressure:NoSchedule",
      "node.kubernetes.io/unschedulable:NoSchedule",
    ],
  );
  const host: PodSpec = { containers: [], hostNetwork: true };
  addDaemonPodTolerations(host);
  assert.equal(host.tolerations?.at(-1)?.key, "node.kubernetes.io/network-unavailable");
});

test("placement per node: selector, affinity, taints and tolerations", () => {
  const d = ds();
  assert.deepEqual(nodeShouldRunDaemonPod(node("a"), d), {
    shouldRun: true,
    shouldContinueRunning: true,
  });
  const noSchedule = node("b", {
    taints: [{ key: "dedicated", value: "db", effect: "NoSchedule" }],
  });
  assert.deepEqual(nodeShouldRunDaemonPod(noSchedule, d), {
    shouldRun: false,
    shouldContinueRunning: true,
  });
  const noExecute = node("c", { taints: [{ key: "dedicated", effect: "NoExecute" }] });
  assert.deepEqual(nodeShouldRunDaemonPod(noExecute, d), {
    shouldRun: false,
    shouldContinueRunning: false,
  });
  // The daemon tolerations admit cordoned and not-ready nodes.
  const cordoned = node("d", {
    taints: [
      { key: "node.kubernetes.io/unschedulable", effect: "NoSchedule" },
      { key: "node.kubernetes.io/not-ready", effect: "NoExecute" },
    ],
  });
  assert.equal(nodeShouldRunDaemonPod(cordoned, d).shouldRun, true);
  // PreferNoSchedule never keeps a daemon pod away.
  const prefer = node("e", { taints: [{ key: "x", effect: "PreferNoSchedule" }] });
  assert.equal(nodeShouldRunDaemonPod(prefer, d).shouldRun, true);
  const tolerating = ds();
  (tolerating.spec!.template.spec as { tolerations?: unknown }).tolerations = [
    { key: "dedicated", operator: "Equal", value: "db", effect: "NoSchedule" },
  ];
  assert.equal(nodeShouldRunDaemonPod(noSchedule, tolerating).shouldRun, true);
  const selecting = ds();
  (selecting.spec!.template.spec as { nodeSelector?: unknown }).nodeSelector = { disk: "ssd" };
  assert.equal(nodeShouldRunDaemonPod(node("f"), selecting).shouldRun, false);
  assert.equal(
    nodeShouldRunDaemonPod(node("g", { labels: { disk: "ssd" } }), selecting).shouldRun,
    true,
  );
  const affinity = ds();
  (affinity.spec!.template.spec as { affinity?: unknown }).affinity = {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions: [{ key: "zone", operator: "In", values: ["a"] }] }],
      },
    },
  };
  assert.equal(
    nodeShouldRunDaemonPod(node("h", { labels: { zone: "b" } }), affinity).shouldRun,
    false,
  );
  assert.equal(
    nodeShouldRunDaemonPod(node("i", { labels: { zone: "a" } }), affinity).shouldRun,
    true,
  );
});

test("daemon pods are pinned to their node with a metadata.name node affinity", () => {
  const a = replaceNodeNameAffinity(
    {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            { matchExpressions: [{ key: "zone", operator: "In", values: ["a"] }] },
          ],
        },
        preferredDuringSchedulingIgnoredDuringExecution: [
          { weight: 1, preference: { matchExpressions: [{ key: "x", operator: "Exists" }] } },
        ],
      },
    },
    "node-1",
  );
  assert.deepEqual(a.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution, {
    nodeSelectorTerms: [
      { matchFields: [{ key: "metadata.name", operator: "In", values: ["node-1"] }] },
    ],
  });
  assert.equal(a.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution?.length, 1);
  const p: Pod = { spec: { containers: [], affinity: a } };
  assert.equal(targetNodeName(p), "node-1");
  assert.equal(targetNodeName({ spec: { containers: [], nodeName: "n2", affinity: a } }), "n2");
  assert.equal(targetNodeName({ spec: { containers: [] } }), undefined);
});

test("the template gets the hash and generation labels; pods are updated by either", () => {
  const t = createPodTemplate(ds().spec?.template, 3, "abc");
  assert.deepEqual(t.metadata?.labels, {
    app: "agent",
    [TEMPLATE_GENERATION_LABEL]: "3",
    [DAEMONSET_HASH_LABEL]: "abc",
  });
  assert.equal(t.spec?.tolerations?.length, 6);
  assert.equal(
    createPodTemplate(ds().spec?.template, undefined, "abc").metadata?.labels?.[
      TEMPLATE_GENERATION_LABEL
    ],
    undefined,
  );
  const p = pod("p", "a", "abc");
  assert.ok(isPodUpdated(p, "abc", undefined));
  assert.ok(!isPodUpdated(p, "def", undefined));
  p.metadata!.labels![TEMPLATE_GENERATION_LABEL] = "2";
  assert.ok(isPodUpdated(p, "def", 2));
});

test("one pod per node: create where missing, keep the oldest of several, replace failed", () => {
  const d = ds();
  assert.equal(podsShouldBeOnNode(node("a"), undefined, d, "h1", NOW).create, true);
  const older = pod("old", "a", "h1", ready, "2026-01-01T00:00:00Z");
  const newer = pod("new", "a", "h1", ready, "2026-01-01T00:01:00Z");
  const two = podsShouldBeOnNode(node("a"), [newer, older], d, "h1", NOW);
  assert.equal(two.create, false);
  assert.deepEqual(
    two.delete.map((p) => p.metadata?.name),
    ["new"],
  );
  const failed = pod("f", "a", "h1", { phase: "Failed" });
  const f = podsShouldBeOnNode(node("a"), [failed], d, "h1", NOW);
  assert.deepEqual(f.failed, [failed]);
  // In backoff the failed pod stays.
  assert.deepEqual(podsShouldBeOnNode(node("a"), [failed], d, "h1", NOW, () => false).failed, []);
  // A node that no longer admits the pod loses it.
  const tainted = node("a", { taints: [{ key: "k", effect: "NoExecute" }] });
  assert.deepEqual(
    podsShouldBeOnNode(tainted, [older], d, "h1", NOW).delete.map((p) => p.metadata?.name),
    ["old"],
  );
  // Unscheduled pods for a node that is gone are removed.
  const orphan: Pod = {
    metadata: { name: "o" },
    spec: { containers: [], affinity: replaceNodeNameAffinity(undefined, "gone") },
  };
  assert.deepEqual(unscheduledPodsWithoutNode([node("a")], new Map([["gone", [orphan]]])), [
    orphan,
  ]);
});

test("surge: keep the old pod until the new one is available", () => {
  const d = ds({
    updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
  });
  const old = pod("old", "a", "h1", ready, "2026-01-01T00:00:00Z");
  const fresh = pod("fresh", "a", "h2", { phase: "Pending" }, "2026-01-01T00:05:00Z");
  assert.deepEqual(podsShouldBeOnNode(node("a"), [old, fresh], d, "h2", NOW).delete, []);
  const available = pod("fresh", "a", "h2", ready, "2026-01-01T00:05:00Z");
  assert.deepEqual(
    podsShouldBeOnNode(node("a"), [old, available], d, "h2", NOW).delete.map(
      (p) => p.metadata?.name,
    ),
    ["old"],
  );
});

test("rolling update deletes old pods within maxUnavailable, unavailable old pods at once", () => {
  const nodes = [node("a"), node("b"), node("c")];
  const d = ds();
  const byNode = new Map([
    ["a", [pod("pa", "a", "h1")]],
    ["b", [pod("pb", "b", "h1")]],
    ["c", [pod("pc", "c", "h1", { phase: "Pending" })]],
  ]);
  // pc is unavailable: it goes, and uses up the one unavailable allowed.
  assert.deepEqual(rollingUpdateDecisions(d, nodes, byNode, "h2", NOW), {
    podsToDelete: ["pc"],
    nodesToCreate: [],
  });
  byNode.set("c", [pod("pc", "c", "h2")]);
  assert.deepEqual(rollingUpdateDecisions(d, nodes, byNode, "h2", NOW).podsToDelete, ["pa"]);
  // A node still without its new pod counts as unavailable.
  byNode.delete("c");
  assert.deepEqual(rollingUpdateDecisions(d, nodes, byNode, "h2", NOW).podsToDelete, []);
  const two = ds({
    updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "67%" } },
  });
  byNode.set("c", [pod("pc", "c", "h1")]);
  assert.equal(rollingUpdateDecisions(two, nodes, byNode, "h2", NOW).podsToDelete.length, 3);
});

test("rolling update with surge creates new pods beside old ones, then deletes the old", () => {
  const nodes = [node("a"), node("b")];
  const d = ds({
    updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
  });
  const byNode = new Map([
    ["a", [pod("pa", "a", "h1")]],
    ["b", [pod("pb", "b", "h1")]],
  ]);
  assert.deepEqual(rollingUpdateDecisions(d, nodes, byNode, "h2", NOW), {
    podsToDelete: [],
    nodesToCreate: ["a"],
  });
  // While the new pod is not available it holds the one surge slot.
  byNode.set("a", [pod("pa", "a", "h1"), pod("na", "a", "h2", { phase: "Pending" })]);
  assert.deepEqual(rollingUpdateDecisions(d, nodes, byNode, "h2", NOW), {
    podsToDelete: [],
    nodesToCreate: [],
  });
  // Once available, the old pod goes and the slot moves to the next node.
  byNode.set("a", [pod("pa", "a", "h1"), pod("na", "a", "h2")]);
  assert.deepEqual(rollingUpdateDecisions(d, nodes, byNode, "h2", NOW), {
    podsToDelete: ["pa"],
    nodesToCreate: ["b"],
  });
});

test("status counts desired, scheduled, misscheduled, ready, updated and available pods", () => {
  const nodes = [
    node("a"),
    node("b"),
    node("c"),
    node("t", { taints: [{ key: "k", effect: "NoSchedule" }] }),
  ];
  const byNode = new Map([
    ["a", [pod("pa", "a", "h2")]],
    ["b", [pod("pb", "b", "h1", { phase: "Running" })]],
    ["t", [pod("pt", "t", "h1")]],
  ]);
  assert.deepEqual(calculateDaemonStatus(ds(), nodes, byNode, "h2", NOW), {
    desiredNumberScheduled: 3,
    currentNumberScheduled: 2,
    numberMisscheduled: 1,
    numberReady: 1,
    updatedNumberScheduled: 1,
    numberAvailable: 1,
    numberUnavailable: 2,
  });
  const slow = ds({ minReadySeconds: 3600 });
  assert.equal(calculateDaemonStatus(slow, nodes, byNode, "h2", NOW).numberAvailable, 0);
});

test("history cleanup keeps the limit and every revision a pod still uses", () => {
  const h = (name: string, revision: number) =>
    ({
      metadata: { name, labels: { [DAEMONSET_HASH_LABEL]: name } },
      revision,
    }) as ControllerRevision;
  const old = [h("r3", 3), h("r1", 1), h("r2", 2), h("r4", 4)];
  assert.deepEqual(
    historiesToDelete(old, 2, new Set(["r1"])).map((r) => r.metadata?.name),
    ["r2", "r3"],
  );
  assert.deepEqual(historiesToDelete(old, 4, new Set()), []);
});
