import assert from "node:assert/strict";
import { test } from "node:test";
import type { Node, Pod, Service } from "kubernetes-types/core/v1.js";
import type { EndpointSlice } from "kubernetes-types/discovery/v1.js";
import { md5Hex } from "./endpoints.js";
import {
  EndpointSliceTracker,
  ENDPOINTSLICE_CONTROLLER_NAME,
  getEndpointPorts,
  LABEL_MANAGED_BY,
  LABEL_SERVICE_NAME,
  planEndpointSlices,
  podToEndpoint,
  portMapKey,
  spewSlicePort,
  type SlicePlan,
} from "./endpointslice.js";

const T0 = "2024-05-01T10:00:00Z";

function pod(
  i: number,
  opts: { ready?: boolean; deleting?: boolean; port?: number; node?: string } = {},
): Pod {
  return {
    metadata: {
      name: `web-${i}`,
      namespace: "default",
      uid: `uid-${i}`,
      labels: { app: "web" },
      ...(opts.deleting ? { deletionTimestamp: T0 } : {}),
    },
    spec: {
      nodeName: opts.node ?? "node-a",
      containers: [{ name: "c", ports: [{ name: "http", containerPort: opts.port ?? 8080 }] }],
    },
    status: {
      phase: "Running",
      podIP: `10.1.${Math.floor(i / 250)}.${i % 250}`,
      podIPs: [{ ip: `10.1.${Math.floor(i / 250)}.${i % 250}` }],
      conditions: [{ type: "Ready", status: opts.ready === false ? "False" : "True" }],
    },
  };
}

const svc: Service = {
  metadata: { name: "web", namespace: "default", uid: "svc-uid", labels: { tier: "front" } },
  spec: {
    selector: { app: "web" },
    clusterIP: "10.96.0.10",
    ipFamilies: ["IPv4"],
    ports: [{ name: "http", port: 80, protocol: "TCP", targetPort: "http" }],
  },
};

const nodeA: Node = {
  metadata: { name: "node-a", labels: { "topology.kubernetes.io/zone": "z1" } },
};
const nodes = (name: string) => (name === "node-a" ? nodeA : undefined);

/** Applies a plan as the API server would, naming created slices. */
function apply(existing: EndpointSlice[], plans: SlicePlan[], names: { n: number }) {
  const byName = new Map(existing.map((s) => [s.metadata!.name!, s]));
  for (const p of plans) {
    for (const s of p.toDelete) byName.delete(s.metadata!.name!);
    for (const s of p.toUpdate) byName.set(s.metadata!.name!, s);
    for (const s of p.toCreate) {
      const name = `${s.metadata!.generateName}${names.n++}`;
      byName.set(name, { ...s, metadata: { ...s.metadata, name } });
    }
  }
  return [...byName.values()];
}

const count = (slices: EndpointSlice[]) =>
  slices.map((s) => s.endpoints?.length ?? 0).sort((a, b) => b - a);

test("endpoint of a pod: conditions ready/serving/terminating, node, zone, target", () => {
  assert.deepEqual(podToEndpoint(pod(1), nodeA, svc, "IPv4"), {
    addresses: ["10.1.0.1"],
    conditions: { ready: true, serving: true, terminating: false },
    targetRef: { kind: "Pod", namespace: "default", name: "web-1", uid: "uid-1" },
    nodeName: "node-a",
    zone: "z1",
  });
  const terminating = podToEndpoint(pod(2, { deleting: true }), nodeA, svc, "IPv4");
  assert.deepEqual(terminating.conditions, { ready: false, serving: true, terminating: true });
  const unready = podToEndpoint(pod(3, { ready: false }), undefined, svc, "IPv4");
  assert.deepEqual(unready.conditions, { ready: false, serving: false, terminating: false });
  assert.equal(unready.zone, undefined);
  const published = { ...svc, spec: { ...svc.spec, publishNotReadyAddresses: true } };
  assert.equal(
    podToEndpoint(pod(3, { ready: false }), nodeA, published, "IPv4").conditions?.ready,
    true,
  );
  assert.deepEqual(podToEndpoint(pod(1), nodeA, svc, "IPv6").addresses, []);
});

test("ports are named, resolved per pod and listed in upstream's hash order", () => {
  assert.equal(
    md5Hex(spewSlicePort({ name: "http", protocol: "TCP", port: 8080 })),
    "3a668b0e210f1dc6528e2da191cd41d4",
  );
  assert.equal(
    md5Hex(spewSlicePort({ name: "", protocol: "TCP", port: 8080, appProtocol: "h2c" })),
    "e84f81cbb045a0b9138df2d7ba42c3ad",
  );
  const ports = [
    { name: "http", protocol: "TCP", port: 8080 },
    { name: "", protocol: "TCP", port: 8080, appProtocol: "h2c" },
  ];
  portMapKey(ports);
  assert.deepEqual(
    ports.map((p) => p.name),
    ["http", ""],
  );
  assert.deepEqual(getEndpointPorts(svc, pod(1, { port: 9090 })), [
    { name: "http", protocol: "TCP", port: 9090 },
  ]);
});

test("250 pods make slices of 100, 100 and 50 with the Service's labels and owner", () => {
  const pods = Array.from({ length: 250 }, (_, i) => pod(i));
  const { plans, errors } = planEndpointSlices({ service: svc, pods, existing: [], node: nodes });
  assert.deepEqual(errors, []);
  assert.equal(plans.length, 1);
  const created = plans[0]!.toCreate;
  assert.deepEqual(count(created), [100, 100, 50]);
  const s = created[0]!;
  assert.equal(s.metadata?.generateName, "web-");
  assert.deepEqual(s.metadata?.labels, {
    tier: "front",
    [LABEL_SERVICE_NAME]: "web",
    [LABEL_MANAGED_BY]: ENDPOINTSLICE_CONTROLLER_NAME,
  });
  assert.deepEqual(s.metadata?.ownerReferences, [
    {
      apiVersion: "v1",
      kind: "Service",
      name: "web",
      uid: "svc-uid",
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
  assert.equal(s.addressType, "IPv4");
  assert.deepEqual(s.ports, [{ name: "http", protocol: "TCP", port: 8080 }]);
});

test("reconcile updates in place, fills slices, deletes the empty and keeps a placeholder", () => {
  const names = { n: 0 };
  let pods = Array.from({ length: 150 }, (_, i) => pod(i));
  let slices = apply(
    [],
    planEndpointSlices({ service: svc, pods, existing: [], node: nodes }).plans,
    names,
  );
  assert.deepEqual(count(slices), [100, 50]);

  // Nothing changed: nothing to do.
  const idle = planEndpointSlices({ service: svc, pods, existing: slices, node: nodes }).plans[0]!;
  assert.deepEqual([idle.toCreate.length, idle.toUpdate.length, idle.toDelete.length], [0, 0, 0]);

  // One pod not ready: only its slice is updated.
  pods = pods.map((p, i) => (i === 120 ? pod(120, { ready: false }) : p));
  const plan = planEndpointSlices({ service: svc, pods, existing: slices, node: nodes }).plans[0]!;
  assert.equal(plan.toUpdate.length, 1);
  assert.equal(plan.toCreate.length + plan.toDelete.length, 0);
  slices = apply(slices, [plan], names);
  const ep = slices.flatMap((s) => s.endpoints ?? []).find((e) => e.targetRef?.name === "web-120");
  assert.deepEqual(ep?.conditions, { ready: false, serving: false, terminating: false });

  // 30 new pods fit in the slice of 50.
  pods = [...pods, ...Array.from({ length: 30 }, (_, i) => pod(150 + i))];
  slices = apply(
    slices,
    planEndpointSlices({ service: svc, pods, existing: slices, node: nodes }).plans,
    names,
  );
  assert.deepEqual(count(slices), [100, 80]);

  // No pods: the slices go, one placeholder stays, and stays as it is.
  const none = planEndpointSlices({ service: svc, pods: [], existing: slices, node: nodes })
    .plans[0]!;
  assert.equal(none.toCreate.length, 0, "the placeholder recycles a slice that would be deleted");
  assert.equal(none.toUpdate.length, 1);
  assert.equal(none.toDelete.length, 1);
  assert.deepEqual(none.toUpdate[0]!.endpoints, []);
  slices = apply(slices, [none], names);
  const again = planEndpointSlices({ service: svc, pods: [], existing: slices, node: nodes })
    .plans[0]!;
  assert.deepEqual(
    [again.toCreate.length, again.toUpdate.length, again.toDelete.length],
    [0, 0, 0],
  );
});

test("pods on unknown nodes are left out with upstream's error", () => {
  const { plans, errors } = planEndpointSlices({
    service: svc,
    pods: [pod(1), pod(2, { node: "ghost" })],
    existing: [],
    node: nodes,
  });
  assert.deepEqual(errors, ["skipping Pod web-2 for Service default/web: Node ghost Not Found"]);
  assert.equal(plans[0]!.toCreate[0]!.endpoints?.length, 1);
});

test("a Service label change updates the slices; PreferClose hints ready endpoints", () => {
  const names = { n: 0 };
  const pods = [pod(1), pod(2, { ready: false })];
  const slices = apply(
    [],
    planEndpointSlices({ service: svc, pods, existing: [], node: nodes }).plans,
    names,
  );
  const relabelled = { ...svc, metadata: { ...svc.metadata, labels: { tier: "back" } } };
  const p = planEndpointSlices({ service: relabelled, pods, existing: slices, node: nodes })
    .plans[0]!;
  assert.equal(p.toUpdate[0]!.metadata?.labels?.tier, "back");

  const close = { ...svc, spec: { ...svc.spec, trafficDistribution: "PreferClose" } };
  const h = planEndpointSlices({ service: close, pods, existing: slices, node: nodes }).plans[0]!;
  const eps = h.toUpdate[0]!.endpoints!;
  assert.deepEqual(eps.find((e) => e.targetRef?.name === "web-1")?.hints, {
    forZones: [{ name: "z1" }],
  });
  assert.equal(eps.find((e) => e.targetRef?.name === "web-2")?.hints, undefined);
});

test("the slice tracker tells stale caches and foreign changes", () => {
  const t = new EndpointSliceTracker();
  const slice = (uid: string, generation: number): EndpointSlice => ({
    addressType: "IPv4",
    endpoints: [],
    metadata: { namespace: "default", uid, generation, labels: { [LABEL_SERVICE_NAME]: "web" } },
  });
  assert.ok(t.shouldSync(slice("a", 1)));
  t.update(slice("a", 2));
  assert.equal(t.shouldSync(slice("a", 2)), false, "our own write");
  assert.ok(t.shouldSync(slice("a", 3)), "someone else's write");
  assert.ok(t.staleSlices("default", "web", [slice("a", 1)]), "older generation in the cache");
  assert.ok(t.staleSlices("default", "web", []), "our slice missing from the cache");
  assert.equal(t.staleSlices("default", "web", [slice("a", 2)]), false);
  t.expectDeletion(slice("a", 2));
  assert.ok(t.staleSlices("default", "web", [slice("a", 2)]), "deleted but still cached");
  assert.ok(t.handleDeletion(slice("a", 2)), "an expected deletion");
  t.update(slice("b", 1));
  assert.equal(t.handleDeletion(slice("b", 1)), false, "an unexpected deletion");
});
