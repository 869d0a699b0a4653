/**
 * The endpoints, endpointslice and endpointslicemirroring controllers end to end: one
 * `k8ts apiserver`, the three controllers in process, the test playing the kubelet (it writes
 * pod IPs and Ready conditions through the status subresource), and real kubectl reading
 * Endpoints and EndpointSlices. No traffic is sent to any pod address.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, test } from "node:test";
import type { Endpoints, Pod, Service } from "kubernetes-types/core/v1.js";
import type { EndpointSlice } from "kubernetes-types/discovery/v1.js";
import { isStatusError } from "../src/api/status.js";
import { defaultUserAgent, loadKubeconfig } from "../src/client/config.js";
import { Client } from "../src/client/resources.js";
import { endpointsDescriptor } from "../src/controllers/endpoints.js";
import { endpointSliceDescriptor } from "../src/controllers/endpointslice.js";
import { endpointSliceMirroringDescriptor } from "../src/controllers/endpointslicemirroring.js";
import { tempDir } from "../src/testing/tmp.js";
import { kubectl, TestAPIServer } from "./support/apiserver.js";
import { InProcessControllers } from "./support/controllers.js";
import { waitFor as waitForTruthy } from "./support/process.js";

const NS = "shop";
const dir = tempDir("k8ts-endpoints-");
let server: TestAPIServer;
let kubeconfig: string;
let client: Client;
const controllers = new InProcessControllers();

/** Waits up to 30 s; a timeout shows what the controllers logged. */
async function waitFor<T>(what: string, check: () => T | Promise<T>): Promise<NonNullable<T>> {
  try {
    return await waitForTruthy(what, check, 30_000);
  } catch (err) {
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${controllers.text()}`);
  }
}

function k(args: string[]): string {
  const r = kubectl(kubeconfig, path.join(dir.path, "kube-cache"), args);
  assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

const pods = () => client.resource("v1/Pod", NS);
const slicesOf = async (service: string) =>
  (
    await client
      .resource("discovery.k8s.io/v1/EndpointSlice", NS)
      .list({ labelSelector: `kubernetes.io/service-name=${service}` })
  ).items;
const endpointsOf = (name: string) =>
  client
    .resource("v1/Endpoints", NS)
    .get(name)
    .catch((err: unknown) => {
      if (isStatusError(err, "NotFound")) return undefined;
      throw err;
    });

function podSpec(name: string, app: string, port: number, finalizers?: string[]): Pod {
  return {
    metadata: { name, labels: { app }, ...(finalizers ? { finalizers } : {}) },
    spec: {
      nodeName: "node-a",
      containers: [{ name: "c", image: "busybox", ports: [{ name: "http", containerPort: port }] }],
    },
  };
}

/** What a kubelet reports for a running pod: its IP, and whether it is Ready. */
async function kubeletStatus(name: string, ip: string, ready: boolean): Promise<void> {
  await pods().patch(
    name,
    "merge",
    {
      status: {
        phase: "Running",
        podIP: ip,
        podIPs: [{ ip }],
        conditions: [
          {
            type: "Ready",
            status: ready ? "True" : "False",
            lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
          },
        ],
      },
    },
    { subresource: "status" },
  );
}

async function runPod(name: string, app: string, port: number, ip: string): Promise<void> {
  await pods().create(podSpec(name, app, port));
  await kubeletStatus(name, ip, true);
}

before(async () => {
  server = new TestAPIServer(dir.path);
  await server.start();
  kubeconfig = server.writeKubeconfig(path.join(dir.path, "kubeconfig"));
  const config = loadKubeconfig({ kubeconfig, userAgent: defaultUserAgent("k8ts-test") });
  client = new Client(config);
  await client.resource("v1/Namespace").create({ metadata: { name: NS } });
  await client.resource("v1/Node").create({
    metadata: { name: "node-a", labels: { "topology.kubernetes.io/zone": "zone-1" } },
  });
  controllers.start({
    config,
    controllers: [endpointsDescriptor, endpointSliceDescriptor, endpointSliceMirroringDescriptor],
  });
});

after(async () => {
  await controllers.stop();
  client?.close();
  await server?.stop();
  dir.remove();
});

test("a Service with named targetPorts gets Endpoints and EndpointSlices of its ready pods", async () => {
  const svc: Service = {
    metadata: { name: "web", labels: { tier: "front" } },
    spec: {
      selector: { app: "web" },
      ports: [{ name: "http", port: 80, targetPort: "http" }],
    },
  };
  await client.resource("v1/Service", NS).create(svc);
  await runPod("web-0", "web", 8080, "10.244.0.10");
  await runPod("web-1", "web", 8080, "10.244.0.11");
  await runPod("web-2", "web", 9090, "10.244.0.12");
  await pods().create(podSpec("web-pending", "web", 8080));

  const ep = await waitFor("Endpoints web with three addresses", async () => {
    const e = await endpointsOf("web");
    const n = (e?.subsets ?? []).reduce((a, s) => a + (s.addresses?.length ?? 0), 0);
    return n === 3 ? e : undefined;
  });
  assert.equal(ep.metadata?.labels?.tier, "front");
  assert.match(
    ep.metadata?.annotations?.["endpoints.kubernetes.io/last-change-trigger-time"] ?? "",
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
  );
  const byPort = new Map(
    (ep.subsets ?? []).map((s) => [s.ports?.[0]?.port, (s.addresses ?? []).map((a) => a.ip)]),
  );
  assert.deepEqual(byPort.get(8080), ["10.244.0.10", "10.244.0.11"]);
  assert.deepEqual(byPort.get(9090), ["10.244.0.12"]);
  const addr = ep.subsets!.find((s) => s.ports?.[0]?.port === 9090)!.addresses![0]!;
  assert.equal(addr.nodeName, "node-a");
  assert.deepEqual(
    [addr.targetRef?.kind, addr.targetRef?.namespace, addr.targetRef?.name],
    ["Pod", NS, "web-2"],
  );

  const slices = await waitFor("two EndpointSlices of web", async () => {
    const s = await slicesOf("web");
    const n = s.reduce((a, x) => a + (x.endpoints?.length ?? 0), 0);
    return s.length === 2 && n === 3 ? s : undefined;
  });
  const service = await client.resource("v1/Service", NS).get("web");
  for (const s of slices) {
    assert.match(s.metadata?.name ?? "", /^web-[a-z0-9]{5}$/);
    assert.equal(s.addressType, "IPv4");
    assert.equal(
      s.metadata?.labels?.["endpointslice.kubernetes.io/managed-by"],
      "endpointslice-controller.k8s.io",
    );
    assert.equal(s.metadata?.labels?.tier, "front");
    assert.deepEqual(s.metadata?.ownerReferences, [
      {
        apiVersion: "v1",
        kind: "Service",
        name: "web",
        uid: service.metadata?.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
  }
  const on9090 = slices.find((s) => s.ports?.[0]?.port === 9090)!;
  assert.deepEqual(on9090.ports, [{ name: "http", port: 9090, protocol: "TCP" }]);
  assert.deepEqual(on9090.endpoints, [
    {
      addresses: ["10.244.0.12"],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: "node-a",
      zone: "zone-1",
      targetRef: {
        kind: "Pod",
        namespace: NS,
        name: "web-2",
        uid: (await pods().get("web-2")).metadata?.uid,
      },
    },
  ]);

  const table = k(["get", "endpoints", "web", "-n", NS]).split("\n");
  assert.match(table[0]!, /^NAME\s+ENDPOINTS\s+AGE$/);
  const row = table[1]!.split(/\s+/);
  assert.equal(row[0], "web");
  assert.deepEqual(row[1]!.split(",").sort(), [
    "10.244.0.10:8080",
    "10.244.0.11:8080",
    "10.244.0.12:9090",
  ]);
  const sliceTable = k(["get", "endpointslices", "-n", NS, "-l", "kubernetes.io/service-name=web"])
    .trim()
    .split("\n");
  assert.match(sliceTable[0]!, /^NAME\s+ADDRESSTYPE\s+PORTS\s+ENDPOINTS\s+AGE$/);
  const rows = sliceTable
    .slice(1)
    .map((l) => l.split(/\s+/).slice(1, 4).join(" "))
    .sort();
  assert.deepEqual(rows, ["IPv4 8080 10.244.0.10,10.244.0.11", "IPv4 9090 10.244.0.12"]);
});

test("readiness changes move addresses to notReadyAddresses and slices to ready=false", async () => {
  await kubeletStatus("web-0", "10.244.0.10", false);
  const ep = await waitFor("web-0 not ready in Endpoints", async () => {
    const e = await endpointsOf("web");
    return e?.subsets?.some((s) => s.notReadyAddresses?.some((a) => a.ip === "10.244.0.10"))
      ? e
      : undefined;
  });
  const s8080 = ep.subsets!.find((s) => s.ports?.[0]?.port === 8080)!;
  assert.deepEqual(
    s8080.addresses?.map((a) => a.ip),
    ["10.244.0.11"],
  );
  const endpoint = await waitFor("web-0 not ready in its slice", async () => {
    const e = (await slicesOf("web"))
      .flatMap((s) => s.endpoints ?? [])
      .find((x) => x.targetRef?.name === "web-0");
    return e?.conditions?.ready === false ? e : undefined;
  });
  assert.deepEqual(endpoint.conditions, { ready: false, serving: false, terminating: false });

  await kubeletStatus("web-0", "10.244.0.10", true);
  await waitFor("web-0 ready again", async () =>
    (await slicesOf("web"))
      .flatMap((s) => s.endpoints ?? [])
      .some((x) => x.targetRef?.name === "web-0" && x.conditions?.ready),
  );
});

test("a terminating pod leaves Endpoints and shows serving/terminating in its slice", async () => {
  await pods().create(podSpec("web-held", "web", 8080, ["example.com/hold"]));
  await kubeletStatus("web-held", "10.244.0.13", true);
  await waitFor("web-held in Endpoints", async () =>
    (await endpointsOf("web"))?.subsets?.some((s) =>
      s.addresses?.some((a) => a.ip === "10.244.0.13"),
    ),
  );
  await pods().delete("web-held", { gracePeriodSeconds: 0 });
  const endpoint = await waitFor("web-held terminating in its slice", async () => {
    const e = (await slicesOf("web"))
      .flatMap((s) => s.endpoints ?? [])
      .find((x) => x.targetRef?.name === "web-held");
    return e?.conditions?.terminating ? e : undefined;
  });
  assert.deepEqual(endpoint.conditions, { ready: false, serving: true, terminating: true });
  await waitFor("web-held gone from Endpoints", async () => {
    const e = await endpointsOf("web");
    const ips = (e?.subsets ?? []).flatMap((s) => [
      ...(s.addresses ?? []),
      ...(s.notReadyAddresses ?? []),
    ]);
    return ips.length === 3 && !ips.some((a) => a.ip === "10.244.0.13");
  });
  await pods().patch("web-held", "merge", { metadata: { finalizers: null } });
  await waitFor("web-held gone from its slice", async () =>
    (await slicesOf("web"))
      .flatMap((s) => s.endpoints ?? [])
      .every((x) => x.targetRef?.name !== "web-held"),
  );
});

test("more than 100 endpoints take two slices; Endpoints holds them all", async () => {
  await client.resource("v1/Service", NS).create({
    metadata: { name: "bulk" },
    spec: { selector: { app: "bulk" }, ports: [{ port: 80, targetPort: 8080 }] },
  });
  const n = 105;
  for (let i = 0; i < n; i += 15)
    await Promise.all(
      Array.from({ length: Math.min(15, n - i) }, (_, j) =>
        runPod(`bulk-${i + j}`, "bulk", 8080, `10.244.1.${i + j + 1}`),
      ),
    );
  const slices = await waitFor("two slices of bulk", async () => {
    const s = await slicesOf("bulk");
    const sizes = s.map((x) => x.endpoints?.length ?? 0);
    // How the 105 split depends on how the pods came in (upstream fills what fits, else opens
    // a new slice): two slices of at most 100 each.
    return s.length === 2 && sizes[0]! + sizes[1]! === n && sizes.every((x) => x <= 100)
      ? s
      : undefined;
  });
  for (const s of slices) assert.deepEqual(s.ports, [{ name: "", port: 8080, protocol: "TCP" }]);
  const ep = await waitFor("Endpoints of bulk", async () => {
    const e = await endpointsOf("bulk");
    return e?.subsets?.[0]?.addresses?.length === n ? e : undefined;
  });
  assert.deepEqual(ep.subsets![0]!.ports, [{ port: 8080, protocol: "TCP" }]);
  const row = k(["get", "endpoints", "bulk", "-n", NS]).split("\n")[1]!;
  assert.match(
    row,
    /^bulk\s+10\.244\.1\.1:8080,10\.244\.1\.10:8080,10\.244\.1\.100:8080 \+ 102 more\.\.\.\s+\S+$/,
  );
});

test("custom Endpoints of a selector-less Service are mirrored into a slice", async () => {
  await client.resource("v1/Service", NS).create({
    metadata: { name: "external" },
    spec: { ports: [{ name: "pg", port: 5432 }] },
  });
  const custom: Endpoints = {
    metadata: { name: "external", labels: { team: "data" } },
    subsets: [
      {
        addresses: [{ ip: "192.0.2.10" }, { ip: "192.0.2.11" }],
        ports: [{ name: "pg", port: 5432 }],
      },
    ],
  };
  await client.resource("v1/Endpoints", NS).create(custom);
  const [slice] = await waitFor("the mirrored slice", async () => {
    const s = await slicesOf("external");
    return s.length === 1 && s[0]!.endpoints?.length === 2 ? s : undefined;
  });
  assert.equal(
    slice!.metadata?.labels?.["endpointslice.kubernetes.io/managed-by"],
    "endpointslicemirroring-controller.k8s.io",
  );
  assert.equal(slice!.metadata?.labels?.team, "data");
  assert.equal(slice!.metadata?.ownerReferences?.[0]?.kind, "Endpoints");
  assert.deepEqual(slice!.ports, [{ name: "pg", port: 5432, protocol: "TCP" }]);
  assert.deepEqual(slice!.endpoints!.map((e) => [e.addresses[0], e.conditions?.ready]).sort(), [
    ["192.0.2.10", true],
    ["192.0.2.11", true],
  ]);
  // The Endpoints controller leaves these Endpoints alone.
  const ep = await endpointsOf("external");
  assert.deepEqual(ep?.subsets?.[0]?.addresses, custom.subsets![0]!.addresses);

  // The API server's own `kubernetes` Endpoints are not mirrored.
  const own = (
    await client
      .resource("discovery.k8s.io/v1/EndpointSlice", "default")
      .list({ labelSelector: "kubernetes.io/service-name=kubernetes" })
  ).items;
  assert.deepEqual(
    own.map((s) => s.metadata?.name),
    ["kubernetes"],
  );
});

test("deleting a Service deletes its Endpoints", async () => {
  await client.resource("v1/Service", NS).delete("bulk");
  await waitFor("Endpoints of bulk deleted", async () => !(await endpointsOf("bulk")));
  const slices: EndpointSlice[] = await slicesOf("bulk");
  assert.ok(slices.every((s) => s.metadata?.ownerReferences?.[0]?.name === "bulk"));
});
