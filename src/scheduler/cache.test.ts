import assert from "node:assert/strict";
import { test } from "node:test";
import { Cache, NodeTree, Snapshot } from "./cache.js";
import { makeNode, makePod } from "./testutil.js";

const zoned = (name: string, zone: string) =>
  makeNode(name, { labels: { "topology.kubernetes.io/zone": zone } });

test("the node tree interleaves zones", () => {
  const t = new NodeTree();
  for (const n of [
    zoned("a1", "a"),
    zoned("a2", "a"),
    zoned("a3", "a"),
    zoned("b1", "b"),
    zoned("c1", "c"),
    zoned("c2", "c"),
  ])
    t.add(n);
  assert.deepEqual(t.list(), ["a1", "b1", "c1", "a2", "c2", "a3"]);
  t.remove(zoned("b1", "b"));
  assert.deepEqual(t.list(), ["a1", "c1", "a2", "c2", "a3"]);
});

test("a snapshot sees nodes, pods and their aggregates; later changes need an update", () => {
  const cache = new Cache();
  const snap = new Snapshot();
  cache.addNode(makeNode("n1", { cpu: "4" }));
  cache.addNode(makeNode("n2", { cpu: "4" }));
  cache.addPod(
    makePod("p1", {
      nodeName: "n1",
      cpu: "1",
      containers: [
        {
          name: "c",
          resources: { requests: { cpu: "1" } },
          ports: [{ containerPort: 80, hostPort: 8080 }],
        },
      ],
    }),
  );
  cache.updateSnapshot(snap);
  assert.equal(snap.numNodes(), 2);
  const n1 = snap.get("n1")!;
  assert.equal(n1.requested.milliCPU, 1000);
  assert.equal(n1.nonZeroRequested.memory, 200 * 1024 * 1024);
  assert.ok(n1.usedPorts.checkConflict("", "TCP", 8080));

  const p2 = makePod("p2", { nodeName: "n1", cpu: "2" });
  cache.addPod(p2);
  assert.equal(
    snap.get("n1")!.requested.milliCPU,
    1000,
    "the snapshot does not change until updated",
  );
  cache.updateSnapshot(snap);
  assert.equal(snap.get("n1")!.requested.milliCPU, 3000);
  assert.equal(snap.get("n1"), n1, "NodeInfos are refreshed in place");

  cache.removePod(p2);
  cache.removeNode(makeNode("n2"));
  cache.updateSnapshot(snap);
  assert.deepEqual(
    snap.list().map((n) => n.name),
    ["n1"],
  );
  assert.equal(snap.get("n1")!.requested.milliCPU, 1000);
});

test("assumed pods count until forgotten, and are confirmed by the informer's add", () => {
  const cache = new Cache();
  const snap = new Snapshot();
  cache.addNode(makeNode("n1"));
  const pod = makePod("p", { nodeName: "n1", cpu: "1" });
  cache.assumePod(pod);
  assert.ok(cache.isAssumedPod(pod));
  assert.throws(() => cache.assumePod(pod), /is in the cache, so can't be assumed/);
  cache.updateSnapshot(snap);
  assert.equal(snap.get("n1")!.pods.length, 1);
  cache.forgetPod(pod);
  cache.updateSnapshot(snap);
  assert.equal(snap.get("n1")!.pods.length, 0);
  assert.throws(() => cache.forgetPod(pod), /wasn't assumed so cannot be forgotten/);

  cache.assumePod(pod);
  cache.finishBinding(pod);
  cache.addPod(pod);
  assert.ok(!cache.isAssumedPod(pod));
  assert.equal(cache.podCount(), 1);
});

test("pods and affinity lists follow a node deleted and re-added", () => {
  const cache = new Cache();
  const snap = new Snapshot();
  cache.addNode(makeNode("n1"));
  const pod = makePod("p", { nodeName: "n1" });
  pod.spec!.affinity = {
    podAntiAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: [
        { labelSelector: {}, topologyKey: "kubernetes.io/hostname" },
      ],
    },
  };
  cache.addPod(pod);
  cache.updateSnapshot(snap);
  assert.equal(snap.havePodsWithRequiredAntiAffinityList().length, 1);
  cache.removeNode(makeNode("n1"));
  cache.updateSnapshot(snap);
  assert.equal(snap.list().length, 0);
  cache.addNode(makeNode("n1"));
  cache.updateSnapshot(snap);
  assert.equal(snap.get("n1")!.pods.length, 1);
  assert.equal(snap.havePodsWithAffinityList().length, 1);
  cache.removePod(pod);
  cache.updateSnapshot(snap);
  assert.equal(snap.havePodsWithRequiredAntiAffinityList().length, 0);
});

test("image states count the nodes that have each image", () => {
  const cache = new Cache();
  const snap = new Snapshot();
  const images = [{ names: ["busybox:latest"], sizeBytes: 100 }];
  cache.addNode(makeNode("n1", { images }));
  cache.addNode(makeNode("n2", { images }));
  cache.updateSnapshot(snap);
  assert.equal(snap.get("n1")!.imageStates.get("busybox:latest")?.numNodes, 2);
});
