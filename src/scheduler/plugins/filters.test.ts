/**
 * Filter plugins against small clusters, with the decisions and reasons upstream's unit tests
 * (framework/plugins/*\/*_test.go) expect.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Node, Pod } from "kubernetes-types/core/v1.js";
import { Snapshot } from "../cache.js";
import { SchedulingAlgorithm } from "../schedule.js";
import { defaultFramework, makeNode, makePod } from "../testutil.js";
import { CycleState, PodInfo } from "../types.js";

/** Runs PreFilter and Filter of the default profile; node name -> reasons ([] when it fits). */
function filterAll(pod: Pod, nodes: Node[], pods: Pod[] = []): Record<string, string[]> {
  const snap = Snapshot.from(nodes, pods);
  const fw = defaultFramework();
  fw.setSnapshot(snap);
  const state = new CycleState();
  const pi = new PodInfo(pod);
  const pre = fw.runPreFilterPlugins(state, pi, snap.list());
  const out: Record<string, string[]> = {};
  for (const ni of snap.list()) {
    if (pre.status && !pre.status.isSuccess()) {
      out[ni.name] = [...pre.status.reasons];
      continue;
    }
    if (pre.result?.nodeNames && !pre.result.nodeNames.has(ni.name)) {
      out[ni.name] = ["(excluded by PreFilter)"];
      continue;
    }
    const s = fw.runFilterPlugins(state, pi, ni);
    out[ni.name] = s ? [...s.reasons] : [];
  }
  return out;
}

// ---- NodeResourcesFit (fit_test.go TestEnoughRequests) ----

const fitNode = () =>
  makeNode("n", { cpu: "10m", memory: "20", pods: "32", extra: { "example.com/aaa": "5" } });

test("NodeResourcesFit: no resources requested always fits", () => {
  assert.deepEqual(
    filterAll(
      makePod("p"),
      [fitNode()],
      [makePod("e", { nodeName: "n", cpu: "10m", memory: "20" })],
    ),
    { n: [] },
  );
});

test("NodeResourcesFit: too many resources fails with every insufficient resource", () => {
  const r = filterAll(
    makePod("p", { cpu: "1m", memory: "1" }),
    [fitNode()],
    [makePod("e", { nodeName: "n", cpu: "10m", memory: "20" })],
  );
  assert.deepEqual(r, { n: ["Insufficient cpu", "Insufficient memory"] });
});

test("NodeResourcesFit: an init container's request counts", () => {
  const pod = makePod("p", {
    cpu: "1m",
    memory: "1",
    initContainers: [{ name: "i", resources: { requests: { cpu: "3m", memory: "1" } } }],
  });
  const r = filterAll(pod, [fitNode()], [makePod("e", { nodeName: "n", cpu: "8m", memory: "19" })]);
  assert.deepEqual(r, { n: ["Insufficient cpu"] });
  const fits = makePod("p2", {
    cpu: "1m",
    memory: "1",
    initContainers: [{ name: "i", resources: { requests: { cpu: "2m" } } }],
  });
  assert.deepEqual(
    filterAll(fits, [fitNode()], [makePod("e", { nodeName: "n", cpu: "8m", memory: "19" })]),
    { n: [] },
  );
});

test("NodeResourcesFit: extended resources, and Too many pods", () => {
  const pod = makePod("p", { requests: { "example.com/aaa": "6" } });
  assert.deepEqual(filterAll(pod, [fitNode()]), { n: ["Insufficient example.com/aaa"] });
  const unknown = makePod("p", { requests: { "example.com/bbb": "1" } });
  assert.deepEqual(filterAll(unknown, [fitNode()]), { n: ["Insufficient example.com/bbb"] });
  const full = makeNode("n", { pods: "1" });
  assert.deepEqual(filterAll(makePod("p"), [full], [makePod("e", { nodeName: "n" })]), {
    n: ["Too many pods"],
  });
});

test("NodeResourcesFit: overhead counts", () => {
  const pod = makePod("p", { cpu: "1m" });
  pod.spec!.overhead = { cpu: "3m" };
  assert.deepEqual(filterAll(pod, [fitNode()], [makePod("e", { nodeName: "n", cpu: "7m" })]), {
    n: ["Insufficient cpu"],
  });
});

// ---- TaintToleration (taint_toleration_test.go TestTaintTolerationFilter) ----

test("TaintToleration: a pod without tolerations cannot go on a tainted node", () => {
  const node = makeNode("n", {
    taints: [{ key: "dedicated", value: "user1", effect: "NoSchedule" }],
  });
  assert.deepEqual(filterAll(makePod("p"), [node]), {
    n: ["node(s) had untolerated taint {dedicated: user1}"],
  });
});

test("TaintToleration: tolerations with Equal and Exists, and PreferNoSchedule ignored by Filter", () => {
  const node = makeNode("n", {
    taints: [{ key: "dedicated", value: "user1", effect: "NoSchedule" }],
  });
  const eq = makePod("p", {
    tolerations: [{ key: "dedicated", value: "user1", effect: "NoSchedule" }],
  });
  assert.deepEqual(filterAll(eq, [node]), { n: [] });
  const wrongValue = makePod("p", {
    tolerations: [{ key: "dedicated", operator: "Equal", value: "user2", effect: "NoSchedule" }],
  });
  assert.deepEqual(filterAll(wrongValue, [node]), {
    n: ["node(s) had untolerated taint {dedicated: user1}"],
  });
  const exists = makePod("p", { tolerations: [{ key: "dedicated", operator: "Exists" }] });
  assert.deepEqual(filterAll(exists, [node]), { n: [] });
  const soft = makeNode("s", {
    taints: [{ key: "dedicated", value: "user1", effect: "PreferNoSchedule" }],
  });
  assert.deepEqual(filterAll(makePod("p"), [soft]), { s: [] });
  const exec = makeNode("x", {
    taints: [{ key: "node.kubernetes.io/unreachable", effect: "NoExecute" }],
  });
  assert.deepEqual(filterAll(makePod("p"), [exec]), {
    x: ["node(s) had untolerated taint {node.kubernetes.io/unreachable: }"],
  });
});

// ---- NodeUnschedulable and NodeName ----

test("NodeUnschedulable: cordoned nodes reject pods that do not tolerate node.kubernetes.io/unschedulable", () => {
  const node = makeNode("n", { unschedulable: true });
  assert.deepEqual(filterAll(makePod("p"), [node]), { n: ["node(s) were unschedulable"] });
  const tol = makePod("p", {
    tolerations: [
      { key: "node.kubernetes.io/unschedulable", operator: "Exists", effect: "NoSchedule" },
    ],
  });
  assert.deepEqual(filterAll(tol, [node]), { n: [] });
});

test("NodeName: only the named node fits", () => {
  const pod = makePod("p");
  pod.spec!.nodeName = "b";
  assert.deepEqual(filterAll(pod, [makeNode("a"), makeNode("b")]), {
    a: ["node(s) didn't match the requested node name"],
    b: [],
  });
});

// ---- NodeAffinity (node_affinity_test.go TestNodeAffinity) ----

const MISMATCH = "node(s) didn't match Pod's node affinity/selector";

test("NodeAffinity: nodeSelector must match every label", () => {
  const nodes = [
    makeNode("a", { labels: { foo: "bar" } }),
    makeNode("b", { labels: { foo: "bar", baz: "blah" } }),
  ];
  assert.deepEqual(filterAll(makePod("p", { nodeSelector: { foo: "bar", baz: "blah" } }), nodes), {
    a: [MISMATCH],
    b: [],
  });
});

test("NodeAffinity: In, NotIn, Exists, DoesNotExist, Gt and Lt", () => {
  const nodes = [
    makeNode("a", { labels: { foo: "bar", kernel: "5" } }),
    makeNode("b", { labels: { kernel: "10" } }),
  ];
  const pod = (exprs: { key: string; operator: string; values?: string[] }[]) => {
    const p = makePod("p");
    p.spec!.affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: exprs }],
        },
      },
    };
    return p;
  };
  assert.deepEqual(
    filterAll(pod([{ key: "foo", operator: "In", values: ["bar", "value2"] }]), nodes),
    { a: [], b: [MISMATCH] },
  );
  assert.deepEqual(filterAll(pod([{ key: "foo", operator: "NotIn", values: ["bar"] }]), nodes), {
    a: [MISMATCH],
    b: [],
  });
  assert.deepEqual(filterAll(pod([{ key: "foo", operator: "Exists" }]), nodes), {
    a: [],
    b: [MISMATCH],
  });
  assert.deepEqual(filterAll(pod([{ key: "foo", operator: "DoesNotExist" }]), nodes), {
    a: [MISMATCH],
    b: [],
  });
  assert.deepEqual(filterAll(pod([{ key: "kernel", operator: "Gt", values: ["6"] }]), nodes), {
    a: [MISMATCH],
    b: [],
  });
  assert.deepEqual(filterAll(pod([{ key: "kernel", operator: "Lt", values: ["6"] }]), nodes), {
    a: [],
    b: [MISMATCH],
  });
  // A malformed requirement makes its term match nothing.
  assert.deepEqual(filterAll(pod([{ key: "kernel", operator: "Gt", values: ["x"] }]), nodes), {
    a: [MISMATCH],
    b: [MISMATCH],
  });
});

test("NodeAffinity: terms are ORed; an empty term list matches nothing", () => {
  const nodes = [
    makeNode("a", { labels: { zone: "z1" } }),
    makeNode("b", { labels: { zone: "z2" } }),
    makeNode("c"),
  ];
  const p = makePod("p");
  p.spec!.affinity = {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [
          { matchExpressions: [{ key: "zone", operator: "In", values: ["z1"] }] },
          { matchExpressions: [{ key: "zone", operator: "In", values: ["z2"] }] },
        ],
      },
    },
  };
  assert.deepEqual(filterAll(p, nodes), { a: [], b: [], c: [MISMATCH] });
  p.spec!.affinity.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms =
    [];
  assert.deepEqual(filterAll(p, nodes), { a: [MISMATCH], b: [MISMATCH], c: [MISMATCH] });
});

// ---- NodePorts (node_ports_test.go) ----

const PORTS = "node(s) didn't have free ports for the requested pod ports";
const portPod = (
  name: string,
  ports: { hostPort: number; protocol?: string; hostIP?: string }[],
  nodeName?: string,
) =>
  makePod(name, {
    ...(nodeName ? { nodeName } : {}),
    containers: [{ name: "c", ports: ports.map((p) => ({ containerPort: p.hostPort, ...p })) }],
  });

test("NodePorts: host port conflicts by IP and protocol", () => {
  const node = makeNode("n");
  const run = (want: Parameters<typeof portPod>[1], used: Parameters<typeof portPod>[1]) =>
    filterAll(portPod("p", want), [node], [portPod("e", used, "n")]).n;
  assert.deepEqual(run([{ hostPort: 8080 }], [{ hostPort: 8080 }]), [PORTS]);
  assert.deepEqual(run([{ hostPort: 8080, protocol: "UDP" }], [{ hostPort: 8080 }]), []);
  assert.deepEqual(
    run([{ hostPort: 8080, hostIP: "127.0.0.1" }], [{ hostPort: 8080, hostIP: "127.0.0.2" }]),
    [],
  );
  assert.deepEqual(
    run([{ hostPort: 8080, hostIP: "127.0.0.1" }], [{ hostPort: 8080, hostIP: "0.0.0.0" }]),
    [PORTS],
  );
  assert.deepEqual(run([{ hostPort: 8080 }], [{ hostPort: 8080, hostIP: "127.0.0.1" }]), [PORTS]);
  assert.deepEqual(run([{ hostPort: 8001 }], [{ hostPort: 8080 }]), []);
});

// ---- VolumeRestrictions ----

test("VolumeRestrictions: the same GCE PD twice conflicts unless both are read-only", () => {
  const vol = (readOnly: boolean) => [
    { name: "v", gcePersistentDisk: { pdName: "foo", readOnly } },
  ];
  const pod = makePod("p");
  pod.spec!.volumes = vol(false);
  const existing = makePod("e", { nodeName: "n" });
  existing.spec!.volumes = vol(false);
  assert.deepEqual(filterAll(pod, [makeNode("n")], [existing]), {
    n: ["node(s) had no available disk"],
  });
  pod.spec!.volumes = vol(true);
  existing.spec!.volumes = vol(true);
  assert.deepEqual(filterAll(pod, [makeNode("n")], [existing]), { n: [] });
});

// ---- PodTopologySpread (filtering_test.go) ----

const zoneNodes = () => [
  makeNode("node-a", { labels: { zone: "zone1" } }),
  makeNode("node-b", { labels: { zone: "zone1" } }),
  makeNode("node-x", { labels: { zone: "zone2" } }),
  makeNode("node-y", { labels: { zone: "zone2" } }),
];
const SPREAD = "node(s) didn't match pod topology spread constraints";

function spreadPod(maxSkew: number, key: string, extra: Record<string, unknown> = {}): Pod {
  const p = makePod("p", { labels: { foo: "" } });
  p.spec!.topologySpreadConstraints = [
    {
      maxSkew,
      topologyKey: key,
      whenUnsatisfiable: "DoNotSchedule",
      labelSelector: { matchExpressions: [{ key: "foo", operator: "Exists" }] },
      ...extra,
    },
  ];
  return p;
}

test("PodTopologySpread: pods spread across zones as 3/1 leave only zone2", () => {
  const pods = [
    makePod("p-a1", { nodeName: "node-a", labels: { foo: "" } }),
    makePod("p-a2", { nodeName: "node-a", labels: { foo: "" } }),
    makePod("p-b1", { nodeName: "node-b", labels: { foo: "" } }),
    makePod("p-x1", { nodeName: "node-x", labels: { foo: "" } }),
  ];
  assert.deepEqual(filterAll(spreadPod(1, "zone"), zoneNodes(), pods), {
    "node-a": [SPREAD],
    "node-b": [SPREAD],
    "node-x": [],
    "node-y": [],
  });
});

test("PodTopologySpread: per-node spreading with maxSkew 1 and a node missing the key", () => {
  const nodes = [...zoneNodes(), makeNode("node-z")];
  delete nodes[4]!.metadata!.labels!["kubernetes.io/hostname"];
  const pods = [
    makePod("p-a1", { nodeName: "node-a", labels: { foo: "" } }),
    makePod("p-b1", { nodeName: "node-b", labels: { foo: "" } }),
    makePod("p-x1", { nodeName: "node-x", labels: { foo: "" } }),
  ];
  assert.deepEqual(filterAll(spreadPod(1, "kubernetes.io/hostname"), nodes, pods), {
    "node-a": [SPREAD],
    "node-b": [SPREAD],
    "node-x": [SPREAD],
    "node-y": [],
    "node-z": [SPREAD + " (missing required label)"],
  });
});

test("PodTopologySpread: minDomains above the number of domains makes the global minimum 0", () => {
  const pods = [
    makePod("p-a1", { nodeName: "node-a", labels: { foo: "" } }),
    makePod("p-x1", { nodeName: "node-x", labels: { foo: "" } }),
  ];
  assert.deepEqual(filterAll(spreadPod(1, "zone"), zoneNodes(), pods), {
    "node-a": [],
    "node-b": [],
    "node-x": [],
    "node-y": [],
  });
  assert.deepEqual(filterAll(spreadPod(1, "zone", { minDomains: 3 }), zoneNodes(), pods), {
    "node-a": [SPREAD],
    "node-b": [SPREAD],
    "node-x": [SPREAD],
    "node-y": [SPREAD],
  });
});

test("PodTopologySpread: pods in other namespaces and terminating pods do not count", () => {
  const pods = [
    makePod("o1", { nodeName: "node-a", labels: { foo: "" }, namespace: "other" }),
    makePod("o2", { nodeName: "node-a", labels: { foo: "" }, namespace: "other" }),
    makePod("t1", { nodeName: "node-b", labels: { foo: "" } }),
  ];
  (pods[2]!.metadata as { deletionTimestamp?: string }).deletionTimestamp = "2024-01-01T00:00:00Z";
  assert.deepEqual(filterAll(spreadPod(1, "zone"), zoneNodes(), pods), {
    "node-a": [],
    "node-b": [],
    "node-x": [],
    "node-y": [],
  });
});

// ---- InterPodAffinity (filtering_test.go) ----

const hostNodes = () => [
  makeNode("machine1", { labels: { region: "r1", zone: "z11" } }),
  makeNode("machine2", { labels: { region: "r1", zone: "z12" } }),
  makeNode("machine3", { labels: { region: "r2", zone: "z21" } }),
];

test("InterPodAffinity: required affinity to pods in the same region", () => {
  const p = makePod("p");
  p.spec!.affinity = {
    podAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: [
        { labelSelector: { matchLabels: { service: "securityscan" } }, topologyKey: "region" },
      ],
    },
  };
  const existing = [makePod("e", { nodeName: "machine1", labels: { service: "securityscan" } })];
  assert.deepEqual(filterAll(p, hostNodes(), existing), {
    machine1: [],
    machine2: [],
    machine3: ["node(s) didn't match pod affinity rules"],
  });
});

test("InterPodAffinity: the first pod of a self-affine group may go anywhere with the topology key", () => {
  const p = makePod("p", { labels: { app: "db" } });
  p.spec!.affinity = {
    podAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: [
        { labelSelector: { matchLabels: { app: "db" } }, topologyKey: "zone" },
      ],
    },
  };
  const nodes = [...hostNodes(), makeNode("nozone")];
  assert.deepEqual(filterAll(p, nodes), {
    machine1: [],
    machine2: [],
    machine3: [],
    nozone: ["node(s) didn't match pod affinity rules"],
  });
});

test("InterPodAffinity: required anti-affinity and existing pods' anti-affinity", () => {
  const p = makePod("p", { labels: { app: "web" } });
  p.spec!.affinity = {
    podAntiAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: [
        { labelSelector: { matchLabels: { app: "web" } }, topologyKey: "kubernetes.io/hostname" },
      ],
    },
  };
  const existing = [makePod("e", { nodeName: "machine1", labels: { app: "web" } })];
  assert.deepEqual(filterAll(p, hostNodes(), existing), {
    machine1: ["node(s) didn't match pod anti-affinity rules"],
    machine2: [],
    machine3: [],
  });

  const guard = makePod("guard", { nodeName: "machine2", labels: { app: "guard" } });
  guard.spec!.affinity = {
    podAntiAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: [
        { labelSelector: { matchLabels: { app: "web" } }, topologyKey: "region" },
      ],
    },
  };
  assert.deepEqual(filterAll(makePod("q", { labels: { app: "web" } }), hostNodes(), [guard]), {
    machine1: ["node(s) didn't satisfy existing pods anti-affinity rules"],
    machine2: ["node(s) didn't satisfy existing pods anti-affinity rules"],
    machine3: [],
  });
});

test("InterPodAffinity: namespaces and namespaceSelector decide which pods a term sees", () => {
  const p = makePod("p");
  p.spec!.affinity = {
    podAntiAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: [
        {
          labelSelector: { matchLabels: { app: "x" } },
          topologyKey: "kubernetes.io/hostname",
          namespaces: ["team-a"],
        },
      ],
    },
  };
  const existing = [
    makePod("in-a", { nodeName: "machine1", labels: { app: "x" }, namespace: "team-a" }),
    makePod("in-b", { nodeName: "machine2", labels: { app: "x" }, namespace: "team-b" }),
  ];
  assert.deepEqual(filterAll(p, hostNodes(), existing), {
    machine1: ["node(s) didn't match pod anti-affinity rules"],
    machine2: [],
    machine3: [],
  });
});

test("the filters' order decides the reported reason: the first rejecting plugin wins", () => {
  const node = makeNode("n", { cpu: "1", taints: [{ key: "a", effect: "NoSchedule" }] });
  const out = new SchedulingAlgorithm().run(
    defaultFramework(),
    new PodInfo(makePod("p", { cpu: "2" })),
    Snapshot.from([node]),
  );
  assert.ok("failure" in out);
  assert.match(
    out.failure.message,
    /^0\/1 nodes are available: 1 node\(s\) had untolerated taint \{a: \}\./,
  );
});
