/** DefaultPreemption: candidates, minimal victims, PDBs and the choice of node (default_preemption_test.go). */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Node, Pod } from "kubernetes-types/core/v1.js";
import type { PodDisruptionBudget } from "kubernetes-types/policy/v1.js";
import { ClusterObjects, Snapshot } from "../cache.js";
import { SchedulingAlgorithm } from "../schedule.js";
import { defaultFramework, makeNode, makePod, seededRandom } from "../testutil.js";
import { PodInfo } from "../types.js";
import { filterPodsWithPDBViolation, pickOneNodeForPreemption } from "./defaultpreemption.js";

function run(pod: Pod, nodes: Node[], pods: Pod[], pdbs: PodDisruptionBudget[] = []) {
  const objects = new ClusterObjects();
  pdbs.forEach((p, i) => objects.pdbs.set(`default/pdb${i}`, p));
  const snap = Snapshot.from(nodes, pods, objects);
  const out = new SchedulingAlgorithm().run(
    defaultFramework({ randomInt: seededRandom(3) }),
    new PodInfo(pod),
    snap,
  );
  assert.ok("failure" in out, "the pod should not fit before preemption");
  return out;
}

const high = (name = "high", cpu = "1") => makePod(name, { cpu, priority: 100 });

test("a lower-priority pod is preempted and the node nominated", () => {
  const out = run(
    high(),
    [makeNode("n1", { cpu: "2" })],
    [makePod("low", { nodeName: "n1", cpu: "2", priority: 0 })],
  );
  assert.equal(out.postFilter?.nominatedNodeName, "n1");
  assert.deepEqual(
    out.postFilter?.victims?.map((p) => p.metadata?.name),
    ["low"],
  );
  // Successful preemption adds nothing to the message.
  assert.equal(out.failure.message, "0/1 nodes are available: 1 Insufficient cpu.");
});

test("pods of equal or higher priority are never victims", () => {
  const out = run(
    high(),
    [makeNode("n1", { cpu: "2" })],
    [makePod("peer", { nodeName: "n1", cpu: "2", priority: 100 })],
  );
  assert.equal(out.postFilter?.nominatedNodeName, "");
  assert.equal(
    out.failure.message,
    "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.",
  );
});

test("only as many victims as needed, the least important first", () => {
  const pods = [
    makePod("p1", { nodeName: "n1", cpu: "1", priority: 10, startTime: "2024-01-01T00:00:00Z" }),
    makePod("p2", { nodeName: "n1", cpu: "1", priority: 5, startTime: "2024-01-01T00:00:00Z" }),
    makePod("p3", { nodeName: "n1", cpu: "1", priority: 10, startTime: "2024-01-02T00:00:00Z" }),
  ];
  const out = run(high("h", "1"), [makeNode("n1", { cpu: "3" })], pods);
  assert.deepEqual(
    out.postFilter?.victims?.map((p) => p.metadata?.name),
    ["p2"],
  );
  const out2 = run(high("h", "2"), [makeNode("n1", { cpu: "3" })], pods);
  // p1 (started earlier) is more important than p3 at equal priority, so p3 goes with p2.
  assert.deepEqual(out2.postFilter?.victims?.map((p) => p.metadata?.name).sort(), ["p2", "p3"]);
});

test("a node whose victims violate no PDB is preferred", () => {
  const nodes = [makeNode("n1", { cpu: "1" }), makeNode("n2", { cpu: "1" })];
  const pods = [
    makePod("guarded", { nodeName: "n1", cpu: "1", priority: 0, labels: { app: "db" } }),
    makePod("free", { nodeName: "n2", cpu: "1", priority: 0, labels: { app: "web" } }),
  ];
  const pdb: PodDisruptionBudget = {
    metadata: { name: "db", namespace: "default" },
    spec: { selector: { matchLabels: { app: "db" } } },
    status: { disruptionsAllowed: 0, currentHealthy: 1, desiredHealthy: 1, expectedPods: 1 },
  };
  const out = run(high(), nodes, pods, [pdb]);
  assert.equal(out.postFilter?.nominatedNodeName, "n2");
});

test("the node with the lowest-priority victims is chosen", () => {
  const nodes = [
    makeNode("n1", { cpu: "1" }),
    makeNode("n2", { cpu: "1" }),
    makeNode("n3", { cpu: "1" }),
  ];
  const pods = [
    makePod("a", { nodeName: "n1", cpu: "1", priority: 10 }),
    makePod("b", { nodeName: "n2", cpu: "1", priority: 5 }),
    makePod("c", { nodeName: "n3", cpu: "1", priority: 7 }),
  ];
  assert.equal(run(high(), nodes, pods).postFilter?.nominatedNodeName, "n2");
});

test("nodes rejected for reasons preemption cannot fix are not candidates", () => {
  const nodes = [makeNode("n1", { cpu: "1", taints: [{ key: "x", effect: "NoSchedule" }] })];
  const out = run(high(), nodes, [makePod("low", { nodeName: "n1", cpu: "1" })]);
  assert.equal(
    out.failure.message,
    "0/1 nodes are available: 1 node(s) had untolerated taint {x: }. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
  );
});

test("preemptionPolicy Never", () => {
  const pod = high();
  pod.spec!.preemptionPolicy = "Never";
  const out = run(
    pod,
    [makeNode("n1", { cpu: "1" })],
    [makePod("low", { nodeName: "n1", cpu: "1" })],
  );
  assert.equal(
    out.failure.message,
    "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never.",
  );
});

test("preemption frees host ports and anti-affinity domains", () => {
  const portPod = (name: string, prio: number, nodeName?: string) =>
    makePod(name, {
      priority: prio,
      ...(nodeName ? { nodeName } : {}),
      containers: [{ name: "c", ports: [{ containerPort: 80, hostPort: 80 }] }],
    });
  const out = run(portPod("p", 100), [makeNode("n1")], [portPod("low", 1, "n1")]);
  assert.deepEqual(
    out.postFilter?.victims?.map((p) => p.metadata?.name),
    ["low"],
  );
});

test("filterPodsWithPDBViolation counts disruptions per budget", () => {
  const pods = ["a", "b", "c"].map((n) => new PodInfo(makePod(n, { labels: { app: "x" } })));
  const pdb: PodDisruptionBudget = {
    metadata: { name: "x", namespace: "default" },
    spec: { selector: { matchLabels: { app: "x" } } },
    status: {
      disruptionsAllowed: 1,
      currentHealthy: 3,
      desiredHealthy: 2,
      expectedPods: 3,
      disruptedPods: { c: "2024-01-01T00:00:00Z" },
    },
  };
  const { violating, nonViolating } = filterPodsWithPDBViolation(pods, [pdb]);
  assert.deepEqual(
    violating.map((p) => p.name),
    ["b"],
  );
  assert.deepEqual(
    nonViolating.map((p) => p.name),
    ["a", "c"],
  );
});

test("pickOneNodeForPreemption: fewer victims, then the latest start time", () => {
  const v = (name: string, prio: number, start: string) =>
    makePod(name, { priority: prio, startTime: start });
  const c = pickOneNodeForPreemption(
    [
      {
        name: "n1",
        victims: [v("a", 1, "2024-01-01T00:00:00Z"), v("b", 1, "2024-01-01T00:00:00Z")],
        numPDBViolations: 0,
      },
      { name: "n2", victims: [v("c", 1, "2024-01-01T00:00:00Z")], numPDBViolations: 0 },
    ],
    Date.now(),
  );
  assert.equal(c?.name, "n2");
  const d = pickOneNodeForPreemption(
    [
      { name: "n1", victims: [v("a", 1, "2024-01-01T00:00:00Z")], numPDBViolations: 0 },
      { name: "n2", victims: [v("c", 1, "2024-02-01T00:00:00Z")], numPDBViolations: 0 },
    ],
    Date.now(),
  );
  assert.equal(d?.name, "n2");
});
