/**
 * Score plugins against small clusters, each checked on its own (raw score, normalised, before
 * weights) with the numbers upstream's unit tests expect.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Node, Pod } from "kubernetes-types/core/v1.js";
import { ClusterObjects, Snapshot } from "../cache.js";
import type { ScorePlugin } from "../interface.js";
import { defaultFramework, makeNode, makePod } from "../testutil.js";
import { CycleState, PodInfo } from "../types.js";
import { calculatePriority, normalizedImageName } from "./imagelocality.js";

/** node name -> normalised score of one plugin (weight not applied). */
function scores(
  plugin: string,
  pod: Pod,
  nodes: Node[],
  pods: Pod[] = [],
  configYAML?: string,
): Record<string, number> {
  const snap = Snapshot.from(nodes, pods);
  const fw = defaultFramework({}, configYAML);
  fw.setSnapshot(snap);
  const state = new CycleState();
  const pi = new PodInfo(pod);
  const list = snap.list();
  fw.runPreFilterPlugins(state, pi, list);
  const pre = fw.runPreScorePlugins(state, pi, list);
  assert.equal(pre, null);
  const pl = fw.scorePlugins.find((p) => p.name === plugin) as ScorePlugin;
  if (state.skipScorePlugins.has(plugin)) return Object.fromEntries(list.map((n) => [n.name, -1]));
  const s = list.map((n) => pl.score(state, pi, n));
  pl.normalizeScore?.(state, pi, list, s);
  return Object.fromEntries(list.map((n, i) => [n.name, s[i]!]));
}

const config = (fitArgs: string) =>
  `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- pluginConfig:
  - name: NodeResourcesFit
    args:
${fitArgs}
`;

const twoNodes = () => [
  makeNode("node1", { cpu: "4000m", memory: "10000" }),
  makeNode("node2", { cpu: "6000m", memory: "10000" }),
];
const requesting = () =>
  makePod("p", {
    containers: [
      { name: "a", resources: { requests: { cpu: "1000m", memory: "2000" } } },
      { name: "b", resources: { requests: { cpu: "2000m", memory: "3000" } } },
    ],
  });

test("NodeResourcesFit LeastAllocated: differently sized nodes (least_allocated_test.go)", () => {
  assert.deepEqual(scores("NodeResourcesFit", requesting(), twoNodes()), { node1: 37, node2: 50 });
});

test("NodeResourcesFit LeastAllocated: resources already requested count, and weights apply", () => {
  const nodes = [
    makeNode("node1", { cpu: "10000m", memory: "20000" }),
    makeNode("node2", { cpu: "10000m", memory: "20000" }),
  ];
  const existing = [makePod("e", { nodeName: "node1", cpu: "3000m", memory: "5000" })];
  const pod = makePod("p", { cpu: "3000m", memory: "5000" });
  // node1: cpu (10000-6000)*100/10000 = 40, memory (20000-10000)*100/20000 = 50 -> 45.
  assert.deepEqual(scores("NodeResourcesFit", pod, nodes, existing), { node1: 45, node2: 72 });
  const weighted = config(
    "      scoringStrategy:\n        type: LeastAllocated\n        resources:\n        - {name: cpu, weight: 2}\n        - {name: memory, weight: 1}",
  );
  // node1: (40*2 + 50) / 3 = 43; node2: (70*2 + 75) / 3 = 71.
  assert.deepEqual(scores("NodeResourcesFit", pod, nodes, existing, weighted), {
    node1: 43,
    node2: 71,
  });
});

test("NodeResourcesFit MostAllocated (most_allocated_test.go)", () => {
  const cfg = config("      scoringStrategy:\n        type: MostAllocated");
  assert.deepEqual(scores("NodeResourcesFit", requesting(), twoNodes(), [], cfg), {
    node1: 62,
    node2: 50,
  });
});

test("NodeResourcesFit RequestedToCapacityRatio with a shape (requested_to_capacity_ratio_test.go)", () => {
  const cfg = config(
    "      scoringStrategy:\n        type: RequestedToCapacityRatio\n        requestedToCapacityRatio:\n          shape:\n          - {utilization: 0, score: 10}\n          - {utilization: 100, score: 0}",
  );
  // node1: cpu 75% -> 25, memory 50% -> 50, rounded mean 38; node2: 50 and 50.
  assert.deepEqual(scores("NodeResourcesFit", requesting(), twoNodes(), [], cfg), {
    node1: 38,
    node2: 50,
  });
  const binPacking = config(
    "      scoringStrategy:\n        type: RequestedToCapacityRatio\n        requestedToCapacityRatio:\n          shape:\n          - {utilization: 0, score: 0}\n          - {utilization: 100, score: 10}",
  );
  assert.deepEqual(scores("NodeResourcesFit", requesting(), twoNodes(), [], binPacking), {
    node1: 63,
    node2: 50,
  });
});

test("NodeResourcesFit counts pods without requests as 100m CPU and 200Mi memory", () => {
  const nodes = [
    makeNode("node1", { cpu: "1000m", memory: "1000Mi" }),
    makeNode("node2", { cpu: "1000m", memory: "1000Mi" }),
  ];
  const existing = [makePod("e1", { nodeName: "node1" }), makePod("e2", { nodeName: "node1" })];
  // node1: cpu (1000-300)/1000 -> 70, memory (1000-600)/1000 -> 40 => 55; node2: 90 and 80 => 85.
  assert.deepEqual(scores("NodeResourcesFit", makePod("p"), nodes, existing), {
    node1: 55,
    node2: 85,
  });
});

test("NodeResourcesBalancedAllocation: balanced fractions score higher (balanced_allocation_test.go)", () => {
  // node1: cpu 3000/4000 = 0.75, memory 5000/10000 = 0.5 -> std 0.125 -> 87; node2: 0.5 and 0.5 -> 100.
  assert.deepEqual(scores("NodeResourcesBalancedAllocation", requesting(), twoNodes()), {
    node1: 87,
    node2: 100,
  });
  const nodes = [
    makeNode("node1", { cpu: "10000m", memory: "20000" }),
    makeNode("node2", { cpu: "10000m", memory: "20000" }),
  ];
  const existing = [makePod("e", { nodeName: "node2", cpu: "6000m", memory: "0" })];
  const pod = makePod("p", { cpu: "3000m", memory: "5000" });
  // node1: 0.3 and 0.25 -> 97; node2: 0.9 and 0.25 -> 67.
  assert.deepEqual(scores("NodeResourcesBalancedAllocation", pod, nodes, existing), {
    node1: 97,
    node2: 67,
  });
});

test("TaintToleration score: more intolerable PreferNoSchedule taints, lower score (taint_toleration_test.go)", () => {
  const pod = makePod("p", {
    tolerations: [{ key: "foo", operator: "Equal", value: "bar", effect: "PreferNoSchedule" }],
  });
  const nodes = [
    makeNode("nodeA", { taints: [{ key: "foo", value: "bar", effect: "PreferNoSchedule" }] }),
    makeNode("nodeB", {
      taints: [{ key: "cpu-type", value: "arm64", effect: "PreferNoSchedule" }],
    }),
    makeNode("nodeC", {
      taints: [
        { key: "cpu-type", value: "arm64", effect: "PreferNoSchedule" },
        { key: "disk-type", value: "ssd", effect: "PreferNoSchedule" },
      ],
    }),
  ];
  assert.deepEqual(scores("TaintToleration", pod, nodes), { nodeA: 100, nodeB: 50, nodeC: 0 });
  const noTaints = [makeNode("a"), makeNode("b")];
  assert.deepEqual(scores("TaintToleration", makePod("p"), noTaints), { a: 100, b: 100 });
});

test("NodeAffinity score: the weights of matching preferred terms (node_affinity_test.go)", () => {
  const pod = makePod("p");
  pod.spec!.affinity = {
    nodeAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [
        {
          weight: 2,
          preference: { matchExpressions: [{ key: "foo", operator: "In", values: ["bar"] }] },
        },
        {
          weight: 4,
          preference: { matchExpressions: [{ key: "key", operator: "In", values: ["value"] }] },
        },
        {
          weight: 5,
          preference: {
            matchExpressions: [
              { key: "foo", operator: "In", values: ["bar"] },
              { key: "key", operator: "In", values: ["value"] },
              { key: "az", operator: "In", values: ["az1"] },
            ],
          },
        },
      ],
    },
  };
  const nodes = [
    makeNode("node1", { labels: { foo: "bar" } }),
    makeNode("node5", { labels: { foo: "bar", key: "value", az: "az1" } }),
    makeNode("node2", { labels: { key: "value" } }),
  ];
  assert.deepEqual(scores("NodeAffinity", pod, nodes), { node1: 18, node5: 100, node2: 36 });
});

test("NodeAffinity score is skipped without preferred terms", () => {
  assert.deepEqual(scores("NodeAffinity", makePod("p"), [makeNode("a")]), { a: -1 });
});

test("ImageLocality: larger images present on the node score higher, scaled by spread", () => {
  const mb = 1024 * 1024;
  assert.equal(normalizedImageName("nginx"), "nginx:latest");
  assert.equal(normalizedImageName("registry:5000/app"), "registry:5000/app:latest");
  assert.equal(normalizedImageName("app@sha256:abc"), "app@sha256:abc");
  const nodes = [
    makeNode("node1", {
      images: [
        { names: ["gcr.io/40:latest"], sizeBytes: 40 * mb },
        { names: ["gcr.io/300:latest"], sizeBytes: 300 * mb },
      ],
    }),
    makeNode("node2", {
      images: [
        { names: ["gcr.io/250:latest"], sizeBytes: 250 * mb },
        { names: ["gcr.io/10:latest"], sizeBytes: 10 * mb },
      ],
    }),
  ];
  const pod = makePod("p", {
    containers: [
      { name: "a", image: "gcr.io/40" },
      { name: "b", image: "gcr.io/250" },
    ],
  });
  // node1: 40MB * 1/2 = 20MB < 23MB threshold -> 0; node2: 250MB/2 = 125MB -> (125-23)*100/(2000-23).
  assert.deepEqual(scores("ImageLocality", pod, nodes), {
    node1: 0,
    node2: calculatePriority(125 * mb, 2),
  });
  assert.equal(calculatePriority(125 * mb, 2), 5);
});

test("PodTopologySpread score: fewer matching pods in the domain is better", () => {
  const nodes = [
    makeNode("node-a", { labels: { zone: "zone1" } }),
    makeNode("node-b", { labels: { zone: "zone1" } }),
    makeNode("node-x", { labels: { zone: "zone2" } }),
  ];
  const pod = makePod("p", { labels: { foo: "" } });
  pod.spec!.topologySpreadConstraints = [
    {
      maxSkew: 1,
      topologyKey: "zone",
      whenUnsatisfiable: "ScheduleAnyway",
      labelSelector: { matchExpressions: [{ key: "foo", operator: "Exists" }] },
    },
  ];
  const existing = [
    makePod("e1", { nodeName: "node-a", labels: { foo: "" } }),
    makePod("e2", { nodeName: "node-b", labels: { foo: "" } }),
  ];
  // zone1 has 2 matching pods, zone2 none: weights log(2+2); raw 3 (rounded 2*1.386) vs 0.
  assert.deepEqual(scores("PodTopologySpread", pod, nodes, existing), {
    "node-a": 0,
    "node-b": 0,
    "node-x": 100,
  });
});

test("PodTopologySpread score: system defaults spread pods of the same Service", () => {
  const nodes = [makeNode("n1"), makeNode("n2")];
  const existing = [
    makePod("e1", { nodeName: "n1", labels: { app: "web" } }),
    makePod("e2", { nodeName: "n1", labels: { app: "web" } }),
  ];
  const snapObjects = new ClusterObjects();
  snapObjects.services.set("default/web", {
    metadata: { name: "web", namespace: "default" },
    spec: { selector: { app: "web" } },
  });
  const snap = Snapshot.from(nodes, existing, snapObjects);
  const fw = defaultFramework();
  fw.setSnapshot(snap);
  const state = new CycleState();
  const pi = new PodInfo(makePod("p", { labels: { app: "web" } }));
  assert.equal(fw.runPreScorePlugins(state, pi, snap.list()), null);
  assert.ok(!state.skipScorePlugins.has("PodTopologySpread"));
  const pl = fw.scorePlugins.find((p) => p.name === "PodTopologySpread")!;
  const s = snap.list().map((n) => pl.score(state, pi, n));
  pl.normalizeScore!(state, pi, snap.list(), s);
  assert.ok(s[1]! > s[0]!);
  // Without a Service the pod has no default constraints.
  const bare = new CycleState();
  fw.setSnapshot(Snapshot.from(nodes, existing));
  fw.runPreScorePlugins(bare, pi, snap.list());
  assert.ok(bare.skipScorePlugins.has("PodTopologySpread"));
});

test("InterPodAffinity score: preferred affinity pulls towards the zone of matching pods", () => {
  const nodes = [
    makeNode("m1", { labels: { zone: "z1" } }),
    makeNode("m2", { labels: { zone: "z1" } }),
    makeNode("m3", { labels: { zone: "z2" } }),
  ];
  const pod = makePod("p");
  pod.spec!.affinity = {
    podAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [
        {
          weight: 5,
          podAffinityTerm: {
            labelSelector: { matchLabels: { security: "S1" } },
            topologyKey: "zone",
          },
        },
      ],
    },
  };
  const existing = [makePod("e", { nodeName: "m1", labels: { security: "S1" } })];
  assert.deepEqual(scores("InterPodAffinity", pod, nodes, existing), { m1: 100, m2: 100, m3: 0 });
  pod.spec!.affinity = {
    podAntiAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [
        {
          weight: 5,
          podAffinityTerm: {
            labelSelector: { matchLabels: { security: "S1" } },
            topologyKey: "zone",
          },
        },
      ],
    },
  };
  assert.deepEqual(scores("InterPodAffinity", pod, nodes, existing), { m1: 0, m2: 0, m3: 100 });
});

test("InterPodAffinity score: existing pods' required affinity attracts with hardPodAffinityWeight", () => {
  const nodes = [
    makeNode("m1", { labels: { zone: "z1" } }),
    makeNode("m2", { labels: { zone: "z2" } }),
  ];
  const e = makePod("e", { nodeName: "m2" });
  e.spec!.affinity = {
    podAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: [
        { labelSelector: { matchLabels: { app: "x" } }, topologyKey: "zone" },
      ],
    },
  };
  assert.deepEqual(scores("InterPodAffinity", makePod("p", { labels: { app: "x" } }), nodes, [e]), {
    m1: 0,
    m2: 100,
  });
});
