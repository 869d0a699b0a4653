import assert from "node:assert/strict";
import { test } from "node:test";
import { Snapshot } from "./cache.js";
import { numFeasibleNodesToFind, selectHost, SchedulingAlgorithm } from "./schedule.js";
import { defaultFramework, makeNode, makePod, seededRandom } from "./testutil.js";
import { CycleState, FitError, NodeInfo, PodInfo } from "./types.js";

const notReady = { key: "node.kubernetes.io/not-ready", effect: "NoSchedule" };

test("numFeasibleNodesToFind follows upstream's table", () => {
  assert.equal(numFeasibleNodesToFind(undefined, 10), 10);
  assert.equal(numFeasibleNodesToFind(40, 10), 10);
  assert.equal(numFeasibleNodesToFind(0, 1000), 420);
  assert.equal(numFeasibleNodesToFind(40, 1000), 400);
  assert.equal(numFeasibleNodesToFind(0, 6000), 300);
  assert.equal(numFeasibleNodesToFind(40, 6000), 2400);
  assert.equal(numFeasibleNodesToFind(0, 5000), 500);
  assert.equal(numFeasibleNodesToFind(1, 1000), 100);
});

test("filtering samples round-robin from where the previous cycle stopped", () => {
  const nodes = Array.from({ length: 200 }, (_, i) => makeNode(`n${String(i).padStart(3, "0")}`));
  const snap = Snapshot.from(nodes);
  const fw = defaultFramework(
    {},
    "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\npercentageOfNodesToScore: 50\n",
  );
  const alg = new SchedulingAlgorithm();
  const first = alg.schedulePod(fw, new CycleState(), new PodInfo(makePod("a")), snap);
  assert.equal(first.feasibleNodes, 100);
  assert.equal(first.evaluatedNodes, 100);
  assert.equal(alg.nextStartNodeIndex, 100);
  alg.schedulePod(fw, new CycleState(), new PodInfo(makePod("b")), snap);
  assert.equal(alg.nextStartNodeIndex, 0);
});

test("a pod that fits nowhere gets upstream's FitError message with the preemption suffix", () => {
  const snap = Snapshot.from(
    [
      makeNode("n1", { cpu: "1" }),
      makeNode("n2", { taints: [notReady] }),
      makeNode("n3", { taints: [notReady] }),
    ],
    [makePod("busy", { cpu: "1", nodeName: "n1" })],
  );
  const fw = defaultFramework({ randomInt: seededRandom() });
  const out = new SchedulingAlgorithm().run(fw, new PodInfo(makePod("p", { cpu: "500m" })), snap);
  assert.ok("failure" in out);
  assert.equal(
    out.failure.message,
    "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {node.kubernetes.io/not-ready: }. " +
      "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.",
  );
  assert.deepEqual([...out.failure.diagnosis.unschedulablePlugins].sort(), [
    "NodeResourcesFit",
    "TaintToleration",
  ]);
});

test("several reasons of one node all count, and reasons are sorted as strings", () => {
  const snap = Snapshot.from([
    makeNode("a", { cpu: "1", memory: "1Gi" }),
    makeNode("b", { unschedulable: true }),
    makeNode("c", { pods: "0" }),
  ]);
  const out = new SchedulingAlgorithm().run(
    defaultFramework(),
    new PodInfo(makePod("p", { cpu: "2", memory: "2Gi" })),
    snap,
  );
  assert.ok("failure" in out);
  assert.equal(
    out.failure.message,
    "0/3 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 1 Too many pods, 1 node(s) were unschedulable. " +
      "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.",
  );
});

test("a pod that names a node through node affinity only considers that node", () => {
  const snap = Snapshot.from([makeNode("n1", { cpu: "1" }), makeNode("n2"), makeNode("n3")]);
  const pod = makePod("p", { cpu: "2" });
  pod.spec!.affinity = {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [
          { matchFields: [{ key: "metadata.name", operator: "In", values: ["n1"] }] },
        ],
      },
    },
  };
  const fw = defaultFramework();
  fw.postFilterPlugins = [];
  const out = new SchedulingAlgorithm().run(fw, new PodInfo(pod), snap);
  assert.ok("failure" in out);
  assert.equal(
    out.failure.message,
    "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) [NodeAffinity].",
  );
});

test("conflicting metadata.name terms fail in PreFilter with one message", () => {
  const snap = Snapshot.from([makeNode("n1"), makeNode("n2")]);
  const pod = makePod("p");
  pod.spec!.affinity = {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [
          {
            matchFields: [
              { key: "metadata.name", operator: "In", values: ["n1"] },
              { key: "metadata.name", operator: "In", values: ["n2"] },
            ],
          },
        ],
      },
    },
  };
  const out = new SchedulingAlgorithm().run(defaultFramework(), new PodInfo(pod), snap);
  assert.ok("failure" in out);
  assert.equal(
    out.failure.message,
    "0/2 nodes are available: pod affinity terms conflict. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
  );
});

test("an empty cluster is an error, not a FitError", () => {
  const out = new SchedulingAlgorithm().run(
    defaultFramework(),
    new PodInfo(makePod("p")),
    Snapshot.from([]),
  );
  assert.ok("error" in out);
  assert.equal(out.error.message, "no nodes available to schedule pods");
});

test("selectHost picks uniformly among the best nodes (reservoir sampling)", () => {
  const nodes = ["a", "b", "c", "d"].map((n) => {
    const ni = new NodeInfo();
    ni.setNode(makeNode(n));
    return ni;
  });
  const totals = [10, 30, 30, 5];
  const seen = new Map<string, number>();
  const rnd = seededRandom(7);
  for (let i = 0; i < 2000; i++) {
    const h = selectHost(nodes, totals, rnd);
    seen.set(h, (seen.get(h) ?? 0) + 1);
  }
  assert.deepEqual([...seen.keys()].sort(), ["b", "c"]);
  assert.ok(Math.abs(seen.get("b")! - 1000) < 150);
});

test("default weights: TaintToleration 3, NodeAffinity 2, PodTopologySpread 2, InterPodAffinity 2, the rest 1", () => {
  const fw = defaultFramework();
  assert.deepEqual(Object.fromEntries(fw.scoreWeights), {
    TaintToleration: 3,
    NodeAffinity: 2,
    NodeResourcesFit: 1,
    PodTopologySpread: 2,
    InterPodAffinity: 2,
    NodeResourcesBalancedAllocation: 1,
    ImageLocality: 1,
  });
  assert.deepEqual(
    fw.filterPlugins.map((p) => p.name),
    [
      "NodeUnschedulable",
      "NodeName",
      "TaintToleration",
      "NodeAffinity",
      "NodePorts",
      "NodeResourcesFit",
      "VolumeRestrictions",
      "PodTopologySpread",
      "InterPodAffinity",
    ],
  );
});

test("scores combine: the node with room and without PreferNoSchedule taints wins", () => {
  const snap = Snapshot.from(
    [
      makeNode("busy", { cpu: "4", memory: "8Gi" }),
      makeNode("tainted", {
        cpu: "4",
        memory: "8Gi",
        taints: [{ key: "k", value: "v", effect: "PreferNoSchedule" }],
      }),
      makeNode("free", { cpu: "4", memory: "8Gi" }),
    ],
    [makePod("x", { nodeName: "busy", cpu: "3", memory: "6Gi" })],
  );
  const out = new SchedulingAlgorithm().run(
    defaultFramework(),
    new PodInfo(makePod("p", { cpu: "1", memory: "1Gi" })),
    snap,
  );
  assert.ok("node" in out);
  assert.equal(out.node, "free");
});

test("FitError is an Error with the message as text", () => {
  const out = new SchedulingAlgorithm().run(
    defaultFramework(),
    new PodInfo(makePod("p", { cpu: "100" })),
    Snapshot.from([makeNode("a")]),
  );
  assert.ok("failure" in out && out.failure instanceof FitError && out.failure instanceof Error);
});
