import assert from "node:assert/strict";
import { test } from "node:test";
import type { Endpoints, EndpointSubset, Pod, Service } from "kubernetes-types/core/v1.js";
import {
  desiredEndpoints,
  endpointSubsetsFor,
  findPort,
  formatTriggerTime,
  HEADLESS_LABEL,
  LAST_CHANGE_TRIGGER_TIME,
  md5Hex,
  OVER_CAPACITY,
  podToEndpointAddress,
  repackSubsets,
  servicesToUpdateOnPodChange,
  shouldPodBeInEndpoints,
  spewCoreEndpointPort,
  spewEndpointSubset,
  TriggerTimeTracker,
  truncateSubsets,
} from "./endpoints.js";

const T0 = "2024-05-01T10:00:00Z";

function pod(
  name: string,
  ip: string | undefined,
  opts: {
    ready?: boolean;
    labels?: Record<string, string>;
    ports?: { name: string; containerPort: number; protocol?: string }[];
    deleting?: boolean;
    phase?: string;
    readySince?: string;
    rv?: string;
  } = {},
): Pod {
  return {
    metadata: {
      name,
      namespace: "default",
      uid: `uid-${name}`,
      resourceVersion: opts.rv ?? "1",
      labels: opts.labels ?? { app: "web" },
      ...(opts.deleting ? { deletionTimestamp: T0 } : {}),
    },
    spec: {
      nodeName: "node-a",
      containers: [{ name: "c", ports: opts.ports ?? [{ name: "http", containerPort: 8080 }] }],
    },
    status: {
      phase: opts.phase ?? "Running",
      ...(ip ? { podIP: ip, podIPs: [{ ip }] } : {}),
      conditions: [
        {
          type: "Ready",
          status: opts.ready === false ? "False" : "True",
          lastTransitionTime: opts.readySince ?? T0,
        },
      ],
    },
  };
}

function service(spec: Service["spec"] = {}, labels?: Record<string, string>): Service {
  return {
    metadata: {
      name: "web",
      namespace: "default",
      uid: "svc-uid",
      creationTimestamp: "2024-05-01T09:00:00Z",
      ...(labels ? { labels } : {}),
    },
    spec: {
      selector: { app: "web" },
      clusterIP: "10.96.0.10",
      ipFamilies: ["IPv4"],
      ports: [{ name: "http", port: 80, protocol: "TCP", targetPort: "http" }],
      ...spec,
    },
  };
}

test("go-spew dumps match upstream's hashing input byte for byte", () => {
  // Dumps and MD5 sums produced by go-spew with apimachinery's dump.ForHash configuration.
  const port = spewCoreEndpointPort({ name: "http", port: 8080, protocol: "TCP" });
  assert.equal(
    port,
    "(v1.EndpointPort){Name:(string)http Port:(int32)8080 Protocol:(v1.Protocol)TCP AppProtocol:(*string)<nil>}",
  );
  assert.equal(md5Hex(port), "fc51ca7087ce52e70c38709727f8f0b6");
  assert.equal(
    md5Hex(spewCoreEndpointPort({ port: 53, protocol: "UDP", appProtocol: "dns" })),
    "5b10e7acb9217231fa98c48a3893854f",
  );
  const subset: EndpointSubset = {
    addresses: [
      {
        ip: "10.0.0.1",
        nodeName: "n1",
        targetRef: { kind: "Pod", namespace: "default", name: "web-1", uid: "u1" },
      },
    ],
    ports: [{ name: "http", port: 8080, protocol: "TCP" }],
  };
  assert.equal(md5Hex(spewEndpointSubset(subset)), "c8003c64f8669ec21631f8ed8fab1131");
  assert.equal(
    md5Hex(
      spewEndpointSubset({ notReadyAddresses: [{ ip: "10.0.0.2", hostname: "h", nodeName: "" }] }),
    ),
    "fde8c0df9977901e9b72a5a43e12b3fc",
  );
  assert.equal(
    md5Hex(spewEndpointSubset({ addresses: [], ports: [] })),
    "e05b4d83c8813c6a96756767462cd486",
  );
});

test("named targetPorts resolve per pod and protocol; numbers pass through", () => {
  const p = pod("a", "10.0.0.1", {
    ports: [
      { name: "http", containerPort: 8080 },
      { name: "dns", containerPort: 53, protocol: "UDP" },
    ],
  });
  assert.equal(findPort(p, { port: 80, targetPort: "http", protocol: "TCP" }), 8080);
  assert.equal(findPort(p, { port: 53, targetPort: "dns", protocol: "UDP" }), 53);
  assert.equal(findPort(p, { port: 53, targetPort: "dns", protocol: "TCP" }), undefined);
  assert.equal(findPort(p, { port: 80, targetPort: "missing" }), undefined);
  assert.equal(findPort(p, { port: 80, targetPort: 9090 }), 9090);
  assert.equal(findPort(p, { port: 80 }), 80);
});

test("which pods are in endpoints: running with an IP, terminating only on request", () => {
  assert.ok(shouldPodBeInEndpoints(pod("a", "10.0.0.1"), false));
  assert.equal(shouldPodBeInEndpoints(pod("a", undefined), false), false);
  assert.equal(shouldPodBeInEndpoints(pod("a", "10.0.0.1", { phase: "Succeeded" }), true), false);
  assert.equal(shouldPodBeInEndpoints(pod("a", "10.0.0.1", { deleting: true }), false), false);
  assert.ok(shouldPodBeInEndpoints(pod("a", "10.0.0.1", { deleting: true }), true));
});

test("a pod's address is the IP of the Service's family, with node and target", () => {
  const dual = pod("a", "10.0.0.1");
  dual.status!.podIPs = [{ ip: "10.0.0.1" }, { ip: "fd00::1" }];
  assert.deepEqual(podToEndpointAddress(service(), dual), {
    ip: "10.0.0.1",
    nodeName: "node-a",
    targetRef: { kind: "Pod", namespace: "default", name: "a", uid: "uid-a" },
  });
  assert.equal(podToEndpointAddress(service({ ipFamilies: ["IPv6"] }), dual)?.ip, "fd00::1");
  assert.equal(
    podToEndpointAddress(service({ ipFamilies: ["IPv6"] }), pod("b", "10.0.0.2")),
    undefined,
  );
});

test("subsets: ready and not-ready addresses, named ports per pod, repacked and sorted", () => {
  const pods = [
    pod("c", "10.0.0.3", { ready: false }),
    pod("a", "10.0.0.1"),
    pod("b", "10.0.0.2"),
    pod("d", "10.0.0.4", { ports: [{ name: "http", containerPort: 9090 }] }),
    pod("gone", "10.0.0.5", { deleting: true }),
    pod("noip", undefined),
  ];
  const subsets = endpointSubsetsFor(service(), pods);
  assert.equal(subsets.length, 2, "pods serving another port number get their own subset");
  const on8080 = subsets.find((s) => s.ports?.[0]?.port === 8080)!;
  assert.deepEqual(
    on8080.addresses?.map((a) => a.ip),
    ["10.0.0.1", "10.0.0.2"],
  );
  assert.deepEqual(
    on8080.notReadyAddresses?.map((a) => a.ip),
    ["10.0.0.3"],
  );
  assert.deepEqual(on8080.ports, [{ name: "http", port: 8080, protocol: "TCP" }]);
  const on9090 = subsets.find((s) => s.ports?.[0]?.port === 9090)!;
  assert.deepEqual(
    on9090.addresses?.map((a) => a.ip),
    ["10.0.0.4"],
  );
  assert.equal(on9090.notReadyAddresses, undefined);
  // Upstream sorts subsets by the hash of their dump.
  const hashes = subsets.map((s) => md5Hex(spewEndpointSubset(s)));
  assert.deepEqual(hashes, [...hashes].sort());

  const published = endpointSubsetsFor(service({ publishNotReadyAddresses: true }), pods);
  const all = published.flatMap((s) => (s.addresses ?? []).map((a) => a.ip)).sort();
  assert.deepEqual(all, ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]);
});

test("repacking merges ports of the same addresses; not ready for a port wins", () => {
  const addr = (ip: string, uid: string) => ({ ip, targetRef: { kind: "Pod", uid } });
  const pa = { name: "a", port: 1, protocol: "TCP" };
  const pb = { name: "b", port: 2, protocol: "TCP" };
  const merged = repackSubsets([
    { addresses: [addr("10.0.0.2", "b"), addr("10.0.0.1", "a")], ports: [pa] },
    { addresses: [addr("10.0.0.1", "a"), addr("10.0.0.2", "b")], ports: [pb] },
  ]);
  assert.equal(merged.length, 1);
  assert.deepEqual(
    merged[0]!.addresses!.map((a) => a.ip),
    ["10.0.0.1", "10.0.0.2"],
  );
  assert.deepEqual(merged[0]!.ports!.map((p) => p.name).sort(), ["a", "b"]);

  const out = repackSubsets([
    { addresses: [addr("10.0.0.1", "a"), addr("10.0.0.3", "c")], ports: [pa] },
    { notReadyAddresses: [addr("10.0.0.3", "c")], ports: [pa] },
    { addresses: [addr("10.0.0.1", "a")], ports: [pb] },
  ]);
  assert.equal(out.length, 2);
  const onA = out.find((s) => s.ports?.[0]?.name === "a")!;
  assert.deepEqual(
    onA.addresses!.map((a) => a.ip),
    ["10.0.0.1"],
  );
  assert.deepEqual(
    onA.notReadyAddresses!.map((a) => a.ip),
    ["10.0.0.3"],
  );

  const headless = repackSubsets([{ addresses: [{ ip: "10.0.0.9" }], ports: [] }]);
  assert.deepEqual(headless, [{ addresses: [{ ip: "10.0.0.9" }] }]);
});

test("truncation keeps 1000 addresses, ready first, in proportion per subset", () => {
  const addrs = (n: number, base: number) =>
    Array.from({ length: n }, (_, i) => ({ ip: `10.${base}.${Math.floor(i / 250)}.${i % 250}` }));
  const subsets: EndpointSubset[] = [
    { addresses: addrs(600, 1), notReadyAddresses: addrs(100, 3) },
    { addresses: addrs(600, 2) },
  ];
  assert.ok(truncateSubsets(subsets));
  assert.equal(subsets[0]!.addresses!.length + subsets[1]!.addresses!.length, 1000);
  assert.equal(subsets[0]!.addresses!.length, 500);
  assert.equal(subsets[0]!.notReadyAddresses, undefined);

  const notReady: EndpointSubset[] = [
    { addresses: addrs(900, 1), notReadyAddresses: addrs(200, 2) },
  ];
  assert.ok(truncateSubsets(notReady));
  assert.equal(notReady[0]!.addresses!.length, 900);
  assert.equal(notReady[0]!.notReadyAddresses!.length, 100);
  assert.equal(truncateSubsets([{ addresses: addrs(10, 1) }]), false);
});

test("the Endpoints written: labels, headless label, trigger time and over-capacity", () => {
  const svc = service({}, { tier: "front" });
  const subsets = endpointSubsetsFor(svc, [pod("a", "10.0.0.1")]);
  const created = desiredEndpoints(svc, undefined, subsets, Date.parse(T0))!;
  assert.deepEqual(created.metadata, {
    name: "web",
    namespace: "default",
    labels: { tier: "front" },
    annotations: { [LAST_CHANGE_TRIGGER_TIME]: T0 },
  });
  assert.deepEqual(created.subsets, subsets);
  const current: Endpoints = {
    ...structuredClone(created),
    metadata: { ...created.metadata, resourceVersion: "5" },
  };
  assert.equal(desiredEndpoints(svc, current, subsets, 0), undefined, "nothing to write");

  const headless = service({ clusterIP: "None" });
  const h = desiredEndpoints(headless, current, subsets, 0)!;
  assert.deepEqual(h.metadata?.labels, { [HEADLESS_LABEL]: "" });
  assert.equal(h.metadata?.annotations, undefined, "no new trigger time clears the annotation");

  const many = Array.from({ length: 1001 }, (_, i) =>
    pod(`p${i}`, `10.1.${Math.floor(i / 250)}.${i % 250}`),
  );
  const big = desiredEndpoints(svc, undefined, endpointSubsetsFor(svc, many), 0)!;
  assert.equal(big.metadata?.annotations?.[OVER_CAPACITY], "truncated");
  assert.equal(big.subsets![0]!.addresses!.length, 1000);
});

test("trigger time: the Service's creation at first, then the earliest new Ready transition", () => {
  const t = new TriggerTimeTracker();
  const svc = service();
  const a = pod("a", "10.0.0.1", { readySince: "2024-05-01T10:00:00Z" });
  assert.equal(t.compute("default", svc, [a]), Date.parse("2024-05-01T09:00:00Z"));
  assert.equal(t.compute("default", svc, [a]), 0);
  const b = pod("b", "10.0.0.2", { readySince: "2024-05-01T10:05:00Z" });
  const a2 = pod("a", "10.0.0.1", { readySince: "2024-05-01T10:07:00Z" });
  assert.equal(t.compute("default", svc, [a2, b]), Date.parse("2024-05-01T10:05:00Z"));
  assert.equal(formatTriggerTime(Date.parse("2024-05-01T10:05:00Z")), "2024-05-01T10:05:00Z");
  assert.equal(
    formatTriggerTime(Date.parse("2024-05-01T10:05:00.120Z")),
    "2024-05-01T10:05:00.12Z",
  );
});

test("pod updates sync the Services they concern", () => {
  const other: Service = {
    ...service(),
    metadata: { name: "api", namespace: "default" },
    spec: { selector: { app: "api" } },
  };
  const services = [service(), other];
  const old = pod("a", "10.0.0.1", { rv: "1" });
  assert.deepEqual([...servicesToUpdateOnPodChange(services, old, old)], []);
  const annotated: Pod = {
    ...old,
    metadata: { ...old.metadata, resourceVersion: "2", annotations: { x: "y" } },
  };
  assert.deepEqual([...servicesToUpdateOnPodChange(services, old, annotated)], []);
  const unready = pod("a", "10.0.0.1", { rv: "2", ready: false });
  assert.deepEqual([...servicesToUpdateOnPodChange(services, old, unready)], ["default/web"]);
  const moved = pod("a", "10.0.0.1", { rv: "2", labels: { app: "api" } });
  assert.deepEqual([...servicesToUpdateOnPodChange(services, old, moved)].sort(), [
    "default/api",
    "default/web",
  ]);
});
