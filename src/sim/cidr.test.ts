import assert from "node:assert/strict";
import { test } from "node:test";
import { formatCIDR, hostAddress, IPAllocator, parseCIDR, subnet, subnetCount } from "./cidr.js";

test("a node's /24 is numbered inside --pod-cidr", () => {
  const r = parseCIDR("10.244.0.0/16");
  assert.equal(subnetCount(r, 24), 256);
  assert.equal(formatCIDR(subnet(r, 24, 0)), "10.244.0.0/24");
  assert.equal(formatCIDR(subnet(r, 24, 255)), "10.244.255.0/24");
  assert.throws(() => subnet(r, 24, 256), /has no subnet \/24 number 256/);
  assert.equal(formatCIDR(subnet(parseCIDR("10.64.0.0/10"), 24, 5000)), "10.83.136.0/24");
  assert.equal(formatCIDR(parseCIDR("10.244.3.7/16")), "10.244.0.0/16");
  assert.throws(() => parseCIDR("10.244.0.0"), /invalid CIDR address: 10.244.0.0/);
  assert.throws(() => parseCIDR("10.300.0.0/16"), /invalid CIDR address/);
  assert.equal(hostAddress(parseCIDR("10.250.0.0/16"), 0), "10.250.0.1");
  assert.equal(hostAddress(parseCIDR("10.250.0.0/16"), 300), "10.250.1.45");
});

test("pod IPs start after the bridge address, are reused when released, and run out", () => {
  const a = new IPAllocator(parseCIDR("10.244.1.0/29"));
  const got = [a.allocate(), a.allocate(), a.allocate(), a.allocate(), a.allocate()];
  assert.deepEqual(got, ["10.244.1.2", "10.244.1.3", "10.244.1.4", "10.244.1.5", "10.244.1.6"]);
  assert.equal(a.allocate(), undefined);
  a.release("10.244.1.4");
  assert.equal(a.allocate(), "10.244.1.4");
  const b = new IPAllocator(parseCIDR("10.244.2.0/24"));
  b.reserve("10.244.2.2");
  assert.equal(b.allocate(), "10.244.2.3");
  assert.equal(b.inUse, 2);
});
