import assert from "node:assert/strict";
import { test } from "node:test";
import {
  computePodResources,
  podRequests,
  quantityMilliValue,
  quantityValue,
} from "./resources.js";
import { makePod } from "./testutil.js";

test("quantities convert as Quantity.Value and MilliValue do (rounded up)", () => {
  assert.equal(quantityMilliValue("100m"), 100);
  assert.equal(quantityMilliValue("1.5"), 1500);
  assert.equal(quantityMilliValue("0.0001"), 1);
  assert.equal(quantityValue("1Gi"), 1024 ** 3);
  assert.equal(quantityValue("1.5"), 2);
  assert.equal(quantityValue("1k"), 1000);
  assert.equal(quantityValue("garbage"), 0);
});

test("requests are the containers' sum, at least the largest init container (upstream's example)", () => {
  // InitContainers IC1 2 CPU/1G, IC2 2 CPU/3G; containers C1 2 CPU/1G, C2 1 CPU/1G => 3 CPU, 3G.
  const pod = makePod("p", {
    initContainers: [
      { name: "ic1", resources: { requests: { cpu: "2", memory: "1G" } } },
      { name: "ic2", resources: { requests: { cpu: "2", memory: "3G" } } },
    ],
    containers: [
      { name: "c1", resources: { requests: { cpu: "2", memory: "1G" } } },
      { name: "c2", resources: { requests: { cpu: "1", memory: "1G" } } },
    ],
  });
  const r = podRequests(pod);
  assert.equal(r.milliCPU, 3000);
  assert.equal(r.memory, 3e9);
});

test("sidecars (restartable init containers) run alongside later init containers and the containers", () => {
  const pod = makePod("p", {
    initContainers: [
      { name: "sidecar", restartPolicy: "Always", resources: { requests: { cpu: "1" } } },
      { name: "init", resources: { requests: { cpu: "2" } } },
    ],
    containers: [{ name: "c", resources: { requests: { cpu: "1" } } }],
  });
  // Running: container 1 + sidecar 1 = 2; while "init" runs: 2 + sidecar 1 = 3.
  assert.equal(podRequests(pod).milliCPU, 3000);
  const pod2 = makePod("p2", {
    initContainers: [
      { name: "init", resources: { requests: { cpu: "1" } } },
      { name: "sidecar", restartPolicy: "Always", resources: { requests: { cpu: "2" } } },
    ],
    containers: [{ name: "c", resources: { requests: { cpu: "2" } } }],
  });
  assert.equal(podRequests(pod2).milliCPU, 4000);
});

test("overhead is added, and scoring counts missing CPU/memory requests as 100m/200Mi", () => {
  const pod = makePod("p", {
    containers: [{ name: "a", resources: { requests: { cpu: "250m" } } }, { name: "b" }],
  });
  pod.spec!.overhead = { cpu: "10m", memory: "1Mi" };
  const r = computePodResources(pod);
  assert.equal(r.requests.milliCPU, 260);
  assert.equal(r.requests.memory, 1024 * 1024);
  assert.equal(r.nonZeroMilliCPU, 250 + 100 + 10);
  assert.equal(r.nonZeroMemory, 2 * 200 * 1024 * 1024 + 1024 * 1024);
});

test("extended resources and hugepages are scalar; a zero request stays zero for scoring", () => {
  const pod = makePod("p", {
    requests: { "example.com/gpu": "2", "hugepages-2Mi": "4Mi", cpu: "0" },
  });
  const r = computePodResources(pod);
  assert.equal(r.requests.getScalar("example.com/gpu"), 2);
  assert.equal(r.requests.getScalar("hugepages-2Mi"), 4 * 1024 * 1024);
  assert.equal(r.nonZeroMilliCPU, 0);
  assert.equal(r.nonZeroMemory, 200 * 1024 * 1024);
});
