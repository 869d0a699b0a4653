import assert from "node:assert/strict";
import { test } from "node:test";
import { formatCIDR, parseCIDR } from "../sim/cidr.js";
import { CidrSet, ERR_NO_CIDRS_REMAINING, ipamAction, ipamConfig, overlaps } from "./nodeipam.js";

test("subnets are handed out in order, round the range, never twice", () => {
  const set = new CidrSet(parseCIDR("10.244.0.0/22"), 24);
  assert.equal(set.max, 4);
  const got = [set.allocateNext(), set.allocateNext()].map(formatCIDR);
  assert.deepEqual(got, ["10.244.0.0/24", "10.244.1.0/24"]);
  set.release(parseCIDR("10.244.0.0/24"));
  // The freed one is not reused before the rest of the range.
  assert.equal(formatCIDR(set.allocateNext()), "10.244.2.0/24");
  assert.equal(formatCIDR(set.allocateNext()), "10.244.3.0/24");
  assert.equal(formatCIDR(set.allocateNext()), "10.244.0.0/24");
  assert.throws(() => set.allocateNext(), { message: ERR_NO_CIDRS_REMAINING });
  assert.equal(set.usedCount, 4);
});

test("occupy marks what nodes already have; bigger or partial ranges cover their subnets", () => {
  const set = new CidrSet(parseCIDR("10.0.0.0/16"), 24);
  set.occupy(parseCIDR("10.0.0.0/24"));
  set.occupy(parseCIDR("10.0.2.0/23")); // 2 and 3
  set.occupy(parseCIDR("10.0.5.128/25")); // inside 5
  assert.equal(set.usedCount, 4);
  assert.deepEqual([set.allocateNext(), set.allocateNext(), set.allocateNext()].map(formatCIDR), [
    "10.0.1.0/24",
    "10.0.4.0/24",
    "10.0.6.0/24",
  ]);
  assert.ok(set.isUsed(parseCIDR("10.0.5.0/24")));
  assert.throws(() => set.occupy(parseCIDR("10.1.0.0/24")), /out the range of cluster cidr/);
  // A range holding the whole cluster range takes all of it.
  const all = new CidrSet(parseCIDR("10.0.0.0/23"), 24);
  all.occupy(parseCIDR("10.0.0.0/8"));
  assert.throws(() => all.allocateNext(), { message: ERR_NO_CIDRS_REMAINING });
});

test("configuration: upstream's errors, the default /24, IPv4 only", () => {
  assert.equal(ipamConfig({ allocateNodeCIDRs: false, clusterCIDR: "10.0.0.0/16" }), undefined);
  assert.throws(() => ipamConfig({ allocateNodeCIDRs: true }), {
    message: "Controller: Must specify --cluster-cidr if --allocate-node-cidrs is set",
  });
  assert.throws(
    () => ipamConfig({ allocateNodeCIDRs: true, clusterCIDR: "10.0.0.0/16", nodeCIDRMaskSize: 8 }),
    /mask size of cluster CIDR must be less than or equal to --node-cidr-mask-size/,
  );
  assert.throws(
    () => ipamConfig({ allocateNodeCIDRs: true, clusterCIDR: "10.0.0.0/16,fd00::/48" }),
    /IPv4 ranges only/,
  );
  assert.throws(
    () => ipamConfig({ allocateNodeCIDRs: true, clusterCIDR: "10.0.0/16" }),
    /invalid CIDR/,
  );
  const c = ipamConfig({
    allocateNodeCIDRs: true,
    clusterCIDR: "10.0.0.0/16",
    serviceClusterIPRange: "10.0.200.0/24",
  })!;
  assert.equal(c.nodeMaskSize, 24);
  assert.equal(formatCIDR(c.serviceCIDR!), "10.0.200.0/24");
  assert.ok(overlaps(c.serviceCIDR!, c.clusterCIDR));
  assert.equal(overlaps(parseCIDR("10.96.0.0/12"), c.clusterCIDR), false);
});

test("a node with ranges is occupied, one without is given one, a gone one is released", () => {
  assert.deepEqual(ipamAction(undefined), { type: "none" });
  assert.deepEqual(ipamAction({ metadata: { name: "a" }, spec: {} }), { type: "allocate" });
  assert.deepEqual(ipamAction({ spec: { podCIDR: "10.0.1.0/24" } }), {
    type: "occupy",
    cidrs: ["10.0.1.0/24"],
  });
  assert.deepEqual(ipamAction({ spec: { podCIDR: "10.0.1.0/24", podCIDRs: ["10.0.1.0/24"] } }), {
    type: "occupy",
    cidrs: ["10.0.1.0/24"],
  });
});
