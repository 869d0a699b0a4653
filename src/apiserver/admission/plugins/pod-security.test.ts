import { test } from "node:test";
import assert from "node:assert/strict";
import { isStatusError } from "../../../api/status.js";
import type { KObject } from "../../registry/types.js";
import type { AdmissionAttributes } from "../types.js";
import { podSecurity, policyToEvaluate } from "./pod-security.js";
import { aggregate, evaluatePod, forbiddenDetail } from "./pod-security-policy.js";
import { attrs, FakeContext, namespace, pod } from "./testing.js";

const plugin = podSecurity();
const enforce = (level: string, more: Record<string, string> = {}) =>
  namespace("ns", { "pod-security.kubernetes.io/enforce": level, ...more });

const RESTRICTED_OK = {
  securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
  containers: [
    {
      name: "c",
      image: "busybox",
      securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
    },
  ],
};

async function check(ctx: FakeContext, a: AdmissionAttributes): Promise<string[]> {
  a.warnings = [];
  await plugin.validate!(a, ctx);
  return a.warnings;
}

async function refusal(ctx: FakeContext, a: AdmissionAttributes): Promise<string> {
  try {
    await plugin.validate!(a, ctx);
  } catch (err) {
    assert.ok(isStatusError(err), String(err));
    return `${err.code} ${err.reason}: ${err.message}`;
  }
  assert.fail("admitted");
}

test("restricted refuses a plain pod with upstream's message", async () => {
  const ctx = new FakeContext([enforce("restricted")]);
  assert.equal(
    await refusal(ctx, attrs("CREATE", "pods", pod("x"))),
    '403 Forbidden: pods "x" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
  );
  assert.deepEqual(await check(ctx, attrs("CREATE", "pods", pod("y", RESTRICTED_OK))), []);
});

test("baseline refuses host namespaces, privileged containers and hostPath volumes", async () => {
  const ctx = new FakeContext([
    enforce("baseline", { "pod-security.kubernetes.io/enforce-version": "v1.30" }),
  ]);
  const p = pod("x", {
    hostNetwork: true,
    hostPID: true,
    containers: [
      {
        name: "a",
        image: "busybox",
        securityContext: { privileged: true },
        ports: [{ containerPort: 80, hostPort: 8080 }],
      },
      { name: "b", image: "busybox", securityContext: { privileged: true } },
    ],
    volumes: [{ name: "root", hostPath: { path: "/" } }],
  });
  assert.equal(
    await refusal(ctx, attrs("CREATE", "pods", p)),
    '403 Forbidden: pods "x" is forbidden: violates PodSecurity "baseline:v1.30": host namespaces (hostNetwork=true, hostPID=true), hostPath volumes (volume "root"), hostPort (container "a" uses hostPort 8080), privileged (containers "a", "b" must not set securityContext.privileged=true)',
  );
});

test("restricted replaces the baseline checks it tightens", () => {
  const spec = {
    containers: [
      {
        name: "c",
        image: "i",
        securityContext: {
          allowPrivilegeEscalation: false,
          runAsNonRoot: true,
          seccompProfile: { type: "Unconfined" },
          capabilities: { drop: ["ALL"], add: ["SYS_ADMIN"] },
        },
      },
    ],
    volumes: [{ name: "h", hostPath: { path: "/x" } }],
  };
  const r = aggregate(evaluatePod({ level: "restricted", version: { latest: true } }, {}, spec));
  assert.equal(
    forbiddenDetail(r),
    'unrestricted capabilities (container "c" must not include "SYS_ADMIN" in securityContext.capabilities.add), restricted volume types (volume "h" uses restricted volume type "hostPath"), seccompProfile (container "c" must not set securityContext.seccompProfile.type to "Unconfined")',
  );
  // Before 1.22 there was no capabilities check in restricted: the baseline one applies.
  const old = aggregate(
    evaluatePod({ level: "restricted", version: { latest: false, minor: 21 } }, {}, spec),
  );
  assert.match(
    forbiddenDetail(old),
    /^non-default capabilities \(container "c" must not include "SYS_ADMIN"/,
  );
});

test("warn mode admits and warns; warn follows enforce when it has no label", async () => {
  const ctx = new FakeContext([
    namespace("ns", { "pod-security.kubernetes.io/warn": "restricted" }),
  ]);
  const warnings = await check(ctx, attrs("CREATE", "pods", pod("x")));
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0]!,
    /^would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false/,
  );
  const p = policyToEvaluate(
    { "pod-security.kubernetes.io/enforce": "baseline" },
    {
      enforce: { level: "privileged", version: { latest: true } },
      audit: { level: "privileged", version: { latest: true } },
      warn: { level: "privileged", version: { latest: true } },
    },
  ).policy;
  assert.equal(p.warn.level, "baseline");
});

test("workload resources only get warnings", async () => {
  const ctx = new FakeContext([enforce("restricted")]);
  const deployment: KObject = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "ns" },
    spec: { template: { metadata: {}, spec: { containers: [{ name: "c", image: "i" }] } } },
  };
  const warnings = await check(ctx, attrs("CREATE", "deployments", deployment));
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /^would violate PodSecurity "restricted:latest"/);
});

test("status updates and image-preserving updates are not checked", async () => {
  const ctx = new FakeContext([enforce("restricted")]);
  const p = pod("x");
  assert.deepEqual(
    await check(ctx, attrs("UPDATE", "pods", p, { subresource: "status", oldObject: p })),
    [],
  );
  assert.deepEqual(
    await check(
      ctx,
      attrs("UPDATE", "pods", pod("x", {}, { labels: { a: "b" } }), { oldObject: p }),
    ),
    [],
  );
  const changed = pod("x", { containers: [{ name: "c", image: "other" }] });
  assert.match(
    await refusal(ctx, attrs("UPDATE", "pods", changed, { oldObject: p })),
    /violates PodSecurity/,
  );
});

test("invalid labels are refused on namespaces, and enforce on pods fails closed", async () => {
  const bad = namespace("ns", { "pod-security.kubernetes.io/enforce": "strict" });
  assert.equal(
    await refusal(new FakeContext(), attrs("CREATE", "namespaces", bad)),
    '422 Invalid: Namespace "ns" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted',
  );
  const badVersion = namespace("ns", { "pod-security.kubernetes.io/warn-version": "1.30" });
  assert.match(
    await refusal(new FakeContext(), attrs("CREATE", "namespaces", badVersion)),
    /Invalid value: "1\.30": must be "latest" or "v1\.x"$/,
  );
  // A namespace stored with a bad enforce label enforces restricted.
  const ctx = new FakeContext([bad]);
  assert.match(
    await refusal(ctx, attrs("CREATE", "pods", pod("x"))),
    /violates PodSecurity "restricted:latest"/,
  );
});

test("tightening a namespace's enforce level warns about existing pods", async () => {
  const ctx = new FakeContext([
    pod("a"),
    pod("b", { hostNetwork: true }),
    pod("c", { hostNetwork: true }),
  ]);
  const old = namespace("ns");
  const tightened = enforce("baseline");
  const warnings = await check(
    ctx,
    attrs("UPDATE", "namespaces", tightened, { oldObject: old, namespace: "ns" }),
  );
  assert.deepEqual(warnings, [
    'existing pods in namespace "ns" violate the new PodSecurity enforce level "baseline:latest"',
    "b (and 1 other pod): host namespaces",
  ]);
});

test("privileged namespaces and other resources are not checked", async () => {
  const ctx = new FakeContext([namespace("ns")]);
  assert.deepEqual(await check(ctx, attrs("CREATE", "pods", pod("x", { hostPID: true }))), []);
  const cm: KObject = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "c", namespace: "ns" },
  };
  assert.deepEqual(await check(ctx, attrs("CREATE", "configmaps", cm)), []);
});
