import { test } from "node:test";
import assert from "node:assert/strict";
import { isStatusError } from "../../../api/status.js";
import type { KObject } from "../../registry/types.js";
import type { AdmissionAttributes } from "../types.js";
import { resourceQuota } from "./resource-quota.js";
import { attrs, FakeContext, pod } from "./testing.js";

const quota = (
  name: string,
  hard: Record<string, string>,
  used: Record<string, string> | undefined,
  spec: Record<string, unknown> = {},
): KObject => ({
  apiVersion: "v1",
  kind: "ResourceQuota",
  metadata: { name, namespace: "ns" },
  spec: { hard, ...spec },
  status: used === undefined ? {} : { hard, used },
});

const usedOf = (ctx: FakeContext, name: string) =>
  (ctx.get("", "v1", "resourcequotas", "ns", name)!.status as { used: Record<string, string> })
    .used;

async function refusal(ctx: FakeContext, a: AdmissionAttributes): Promise<string> {
  try {
    await resourceQuota.validate!(a, ctx);
  } catch (err) {
    assert.ok(isStatusError(err, "Forbidden"), String(err));
    return err.message;
  }
  assert.fail("admitted");
}

const withResources = (name: string, requests: object, limits: object = requests) =>
  pod(name, { containers: [{ name: "c", image: "i", resources: { requests, limits } }] });

test("creates are charged to status.used until the hard limit refuses", async () => {
  const ctx = new FakeContext([quota("q", { pods: "2" }, { pods: "0" })]);
  await resourceQuota.validate!(attrs("CREATE", "pods", pod("a")), ctx);
  await resourceQuota.validate!(attrs("CREATE", "pods", pod("b")), ctx);
  assert.deepEqual(usedOf(ctx, "q"), { pods: "2" });
  assert.equal(
    await refusal(ctx, attrs("CREATE", "pods", pod("c"))),
    'pods "c" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2',
  );
  assert.deepEqual(usedOf(ctx, "q"), { pods: "2" });
});

test("dry runs are checked but not charged", async () => {
  const ctx = new FakeContext([quota("q", { pods: "1" }, { pods: "0" })]);
  await resourceQuota.validate!(attrs("CREATE", "pods", pod("a"), { dryRun: true }), ctx);
  assert.deepEqual(usedOf(ctx, "q"), { pods: "0" });
  assert.equal(ctx.updates, 0);
});

test("compute resources: requests and limits add up, and must be given when limited", async () => {
  const ctx = new FakeContext([
    quota(
      "compute",
      { "requests.cpu": "1", "limits.memory": "1Gi" },
      { "requests.cpu": "500m", "limits.memory": "0" },
    ),
  ]);
  await resourceQuota.validate!(
    attrs("CREATE", "pods", withResources("a", { cpu: "250m", memory: "512Mi" })),
    ctx,
  );
  assert.deepEqual(usedOf(ctx, "compute"), { "limits.memory": "512Mi", "requests.cpu": "750m" });
  assert.equal(
    await refusal(
      ctx,
      attrs("CREATE", "pods", withResources("b", { cpu: "500m", memory: "128Mi" })),
    ),
    'pods "b" is forbidden: exceeded quota: compute, requested: requests.cpu=500m, used: requests.cpu=750m, limited: requests.cpu=1',
  );
  assert.equal(
    await refusal(ctx, attrs("CREATE", "pods", pod("c"))),
    'pods "c" is forbidden: failed quota: compute: must specify limits.memory for: c; requests.cpu for: c',
  );
});

test("a quota whose usage is not computed yet refuses what it limits", async () => {
  const ctx = new FakeContext([
    {
      ...quota("fresh", { pods: "5", "count/configmaps": "3" }, undefined),
      status: { hard: { pods: "5", "count/configmaps": "3" } },
    },
  ]);
  assert.equal(
    await refusal(ctx, attrs("CREATE", "pods", pod("a"))),
    'pods "a" is forbidden: status unknown for quota: fresh, resources: pods',
  );
  // Before the controller has seen it at all, a quota limits nothing.
  const unseen = new FakeContext([quota("new", { pods: "0" }, undefined)]);
  await resourceQuota.validate!(attrs("CREATE", "pods", pod("a")), unseen);
});

test("object counts, legacy names and services", async () => {
  const ctx = new FakeContext([
    quota(
      "objects",
      { configmaps: "1", "count/secrets": "5", services: "2", "services.nodeports": "1" },
      { configmaps: "1", "count/secrets": "0", services: "0", "services.nodeports": "0" },
    ),
  ]);
  const cm: KObject = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "cm", namespace: "ns" },
  };
  assert.equal(
    await refusal(ctx, attrs("CREATE", "configmaps", cm)),
    'configmaps "cm" is forbidden: exceeded quota: objects, requested: configmaps=1, used: configmaps=1, limited: configmaps=1',
  );
  const secret: KObject = {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "s", namespace: "ns" },
  };
  await resourceQuota.validate!(attrs("CREATE", "secrets", secret), ctx);
  assert.equal(usedOf(ctx, "objects")["count/secrets"], "1");
  const svc = (type: string, ports: number): KObject => ({
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "web", namespace: "ns" },
    spec: { type, ports: Array.from({ length: ports }, (_, i) => ({ port: 80 + i })) },
  });
  assert.equal(
    await refusal(ctx, attrs("CREATE", "services", svc("NodePort", 2))),
    'services "web" is forbidden: exceeded quota: objects, requested: services.nodeports=2, used: services.nodeports=0, limited: services.nodeports=1',
  );
  await resourceQuota.validate!(attrs("CREATE", "services", svc("ClusterIP", 2)), ctx);
  // Turning it into a NodePort service charges only the difference.
  const old = {
    ...svc("ClusterIP", 1),
    metadata: { name: "web", namespace: "ns", resourceVersion: "5" },
  };
  await resourceQuota.validate!(
    attrs("UPDATE", "services", svc("NodePort", 1), { oldObject: old }),
    ctx,
  );
  assert.deepEqual(usedOf(ctx, "objects"), {
    configmaps: "1",
    "count/secrets": "1",
    services: "1",
    "services.nodeports": "1",
  });
});

test("scopes: BestEffort and PriorityClass quotas charge only the pods they select", async () => {
  const ctx = new FakeContext([
    quota("besteffort", { pods: "0" }, { pods: "0" }, { scopes: ["BestEffort"] }),
    quota(
      "high",
      { pods: "1" },
      { pods: "1" },
      {
        scopeSelector: {
          matchExpressions: [{ scopeName: "PriorityClass", operator: "In", values: ["high"] }],
        },
      },
    ),
  ]);
  assert.match(
    await refusal(ctx, attrs("CREATE", "pods", pod("a"))),
    /exceeded quota: besteffort, requested: pods=1, used: pods=0, limited: pods=0$/,
  );
  await resourceQuota.validate!(
    attrs("CREATE", "pods", withResources("b", { cpu: "1", memory: "1Gi" })),
    ctx,
  );
  assert.match(
    await refusal(
      ctx,
      attrs(
        "CREATE",
        "pods",
        pod("c", {
          priorityClassName: "high",
          containers: [{ name: "c", image: "i", resources: { requests: { cpu: "1" } } }],
        }),
      ),
    ),
    /exceeded quota: high, requested: pods=1, used: pods=1, limited: pods=1$/,
  );
});

test("charging re-checks the quota as stored, not as the cache saw it", async () => {
  const ctx = new FakeContext([quota("q", { pods: "1" }, { pods: "0" })]);
  const cached = ctx.get("", "v1", "resourcequotas", "ns", "q")!;
  // Another API server charged the quota; this one's cache has not seen it yet.
  const stored: KObject = JSON.parse(JSON.stringify(cached)) as KObject;
  (stored.status as { used: Record<string, string> }).used = { pods: "1" };
  ctx.objects.set("/v1/resourcequotas/ns/q", stored);
  ctx.get = () => cached;
  ctx.list = () => [cached];
  assert.equal(
    await refusal(ctx, attrs("CREATE", "pods", pod("a"))),
    'pods "a" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1',
  );
});

test("events, namespaces and cluster-scoped objects are never charged", async () => {
  const ctx = new FakeContext([quota("q", { "count/events": "0" }, { "count/events": "0" })]);
  const event: KObject = {
    apiVersion: "v1",
    kind: "Event",
    metadata: { name: "e", namespace: "ns" },
  };
  await resourceQuota.validate!(attrs("CREATE", "events", event), ctx);
  assert.equal(ctx.updates, 0);
});
