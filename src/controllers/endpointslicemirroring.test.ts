import assert from "node:assert/strict";
import { test } from "node:test";
import type { Endpoints } from "kubernetes-types/core/v1.js";
import type { EndpointSlice } from "kubernetes-types/discovery/v1.js";
import { LABEL_MANAGED_BY, LABEL_SERVICE_NAME, LABEL_SKIP_MIRROR } from "./endpointslice.js";
import {
  canonicalIP,
  MIRRORING_CONTROLLER_NAME,
  planMirroredSlices,
  shouldMirror,
} from "./endpointslicemirroring.js";

function endpoints(
  ips: string[],
  notReady: string[] = [],
  extra: Partial<Endpoints> = {},
): Endpoints {
  return {
    metadata: {
      name: "db",
      namespace: "default",
      uid: "ep-uid",
      labels: { team: "data" },
      annotations: {
        "endpoints.kubernetes.io/last-change-trigger-time": "2024-05-01T10:00:00Z",
        note: "external",
      },
    },
    subsets: [
      {
        addresses: ips.map((ip) => ({ ip })),
        notReadyAddresses: notReady.map((ip) => ({ ip })),
        ports: [{ name: "pg", port: 5432, protocol: "TCP" }],
      },
    ],
    ...extra,
  };
}

test("addresses are read as Go reads IPs", () => {
  assert.deepEqual(canonicalIP("10.0.0.1"), { ip: "10.0.0.1", type: "IPv4" });
  assert.deepEqual(canonicalIP("fd00:0:0::1"), { ip: "fd00::1", type: "IPv6" });
  assert.deepEqual(canonicalIP("::ffff:10.0.0.1"), { ip: "10.0.0.1", type: "IPv4" });
  assert.equal(canonicalIP("db.example.com"), undefined);
});

test("skip-mirror and leader election records are not mirrored", () => {
  assert.ok(shouldMirror(endpoints(["10.0.0.1"])));
  const skip = endpoints([]);
  skip.metadata = { ...skip.metadata, labels: { [LABEL_SKIP_MIRROR]: "true" } };
  assert.equal(shouldMirror(skip), false);
  const leader = endpoints([]);
  leader.metadata = {
    ...leader.metadata,
    annotations: { "control-plane.alpha.kubernetes.io/leader": "{}" },
  };
  assert.equal(shouldMirror(leader), false);
});

test("an Endpoints is mirrored into one slice with its labels, annotations and owner", () => {
  const { plan, events } = planMirroredSlices(
    endpoints(["10.0.0.2", "10.0.0.1"], ["10.0.0.3"]),
    [],
  );
  assert.deepEqual(events, []);
  assert.equal(plan.toCreate.length, 1);
  const s = plan.toCreate[0]!;
  assert.equal(s.metadata?.generateName, "db-");
  assert.deepEqual(s.metadata?.labels, {
    team: "data",
    [LABEL_SERVICE_NAME]: "db",
    [LABEL_MANAGED_BY]: MIRRORING_CONTROLLER_NAME,
  });
  assert.deepEqual(s.metadata?.annotations, { note: "external" });
  assert.deepEqual(s.metadata?.ownerReferences?.[0], {
    apiVersion: "v1",
    kind: "Endpoints",
    name: "db",
    uid: "ep-uid",
    controller: true,
    blockOwnerDeletion: true,
  });
  assert.equal(s.addressType, "IPv4");
  assert.deepEqual(s.ports, [{ name: "pg", port: 5432, protocol: "TCP" }]);
  assert.deepEqual(
    s.endpoints?.map((e) => [e.addresses[0], e.conditions?.ready]),
    [
      ["10.0.0.1", true],
      ["10.0.0.2", true],
      ["10.0.0.3", false],
    ],
  );

  const existing: EndpointSlice = { ...s, metadata: { ...s.metadata, name: "db-abcde" } };
  const same = planMirroredSlices(endpoints(["10.0.0.1", "10.0.0.2"], ["10.0.0.3"]), [existing]);
  assert.deepEqual(
    [same.plan.toCreate.length, same.plan.toUpdate.length, same.plan.toDelete.length],
    [0, 0, 0],
  );
  const changed = planMirroredSlices(endpoints(["10.0.0.1"]), [existing]);
  assert.equal(changed.plan.toUpdate[0]!.metadata?.name, "db-abcde");
  assert.equal(changed.plan.toUpdate[0]!.endpoints?.length, 1);
});

test("invalid and surplus addresses are skipped with upstream's events", () => {
  const { plan, events } = planMirroredSlices(
    endpoints(["10.0.0.1", "0bogus", "10.0.0.2", "10.0.0.3"]),
    [],
    2,
  );
  assert.equal(plan.toCreate[0]!.endpoints?.length, 2);
  assert.deepEqual(events, [
    {
      reason: "InvalidIPAddress",
      message: "Skipped 1 invalid IP addresses when mirroring to EndpointSlices",
    },
    {
      reason: "TooManyAddressesToMirror",
      message:
        "A max of 2 addresses can be mirrored to EndpointSlices per Endpoints subset. 2 addresses were skipped",
    },
  ]);
});

test("an IPv6 address gets a slice of its own; an emptied Endpoints deletes the slices", () => {
  const { plan } = planMirroredSlices(endpoints(["10.0.0.1", "fd00::1"]), []);
  assert.deepEqual(plan.toCreate.map((s) => s.addressType).sort(), ["IPv4", "IPv6"]);
  const existing = plan.toCreate.map((s, i) => ({
    ...s,
    metadata: { ...s.metadata, name: `db-${i}` },
  }));
  const gone = planMirroredSlices(endpoints([]), existing);
  assert.equal(gone.plan.toDelete.length, 2);
});
