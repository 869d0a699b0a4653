import { test } from "node:test";
import assert from "node:assert/strict";
import { isStatusError } from "../../../api/status.js";
import type { KObject } from "../../registry/types.js";
import type { AdmissionAttributes } from "../types.js";
import { limitRanger } from "./limit-ranger.js";
import { attrs, FakeContext, pod } from "./testing.js";

const limitRange = (limits: unknown[], name = "limits"): KObject => ({
  apiVersion: "v1",
  kind: "LimitRange",
  metadata: { name, namespace: "ns" },
  spec: { limits },
});

async function run(ctx: FakeContext, a: AdmissionAttributes): Promise<void> {
  await limitRanger.admit!(a, ctx);
  await limitRanger.validate!(a, ctx);
}

async function refusal(ctx: FakeContext, a: AdmissionAttributes): Promise<string> {
  try {
    await run(ctx, a);
  } catch (err) {
    assert.ok(isStatusError(err, "Forbidden"), String(err));
    return err.message;
  }
  assert.fail("admitted");
}

test("containers get the Container defaults, noted in an annotation", async () => {
  const ctx = new FakeContext([
    limitRange([
      {
        type: "Container",
        default: { cpu: "500m", memory: "256Mi" },
        defaultRequest: { cpu: "100m", memory: "128Mi" },
      },
    ]),
  ]);
  const p = pod("p", {
    initContainers: [{ name: "init", image: "i", resources: { requests: { cpu: "50m" } } }],
    containers: [{ name: "web", image: "i" }],
  });
  await run(ctx, attrs("CREATE", "pods", p));
  const spec = p.spec as {
    containers: Array<{ resources: unknown }>;
    initContainers: Array<{ resources: unknown }>;
  };
  assert.deepEqual(spec.containers[0]!.resources, {
    limits: { cpu: "500m", memory: "256Mi" },
    requests: { cpu: "100m", memory: "128Mi" },
  });
  assert.deepEqual(spec.initContainers[0]!.resources, {
    limits: { cpu: "500m", memory: "256Mi" },
    requests: { cpu: "50m", memory: "128Mi" },
  });
  assert.equal(
    p.metadata!.annotations!["kubernetes.io/limit-ranger"],
    "LimitRanger plugin set: cpu, memory request for container web; cpu, memory limit for container web; memory request for init container init; cpu, memory limit for init container init",
  );
});

test("min, max and the limit to request ratio are enforced with upstream's messages", async () => {
  const ctx = new FakeContext([
    limitRange([
      {
        type: "Container",
        min: { cpu: "100m" },
        max: { cpu: "1", memory: "1Gi" },
        maxLimitRequestRatio: { memory: "2" },
      },
    ]),
  ]);
  const container = (resources: unknown) =>
    pod("p", { containers: [{ name: "c", image: "i", resources }] });
  assert.equal(
    await refusal(
      ctx,
      attrs(
        "CREATE",
        "pods",
        container({
          requests: { cpu: "2", memory: "100Mi" },
          limits: { cpu: "2", memory: "300Mi" },
        }),
      ),
    ),
    'pods "p" is forbidden: [maximum cpu usage per Container is 1, but limit is 2, memory max limit to request ratio per Container is 2, but provided ratio is 3.000000]',
  );
  assert.equal(
    await refusal(
      ctx,
      attrs(
        "CREATE",
        "pods",
        container({ requests: { cpu: "50m" }, limits: { cpu: "50m", memory: "1Gi" } }),
      ),
    ),
    'pods "p" is forbidden: [minimum cpu usage per Container is 100m, but request is 50m, memory max limit to request ratio per Container is 2, but no request is specified or request is 0]',
  );
  assert.equal(
    await refusal(
      ctx,
      attrs("CREATE", "pods", container({ requests: { cpu: "200m", memory: "1Gi" } })),
    ),
    'pods "p" is forbidden: [maximum cpu usage per Container is 1.  No limit is specified, maximum memory usage per Container is 1Gi.  No limit is specified, memory max limit to request ratio per Container is 2, but no limit is specified or limit is 0]',
  );
  await run(
    ctx,
    attrs(
      "CREATE",
      "pods",
      container({
        requests: { cpu: "200m", memory: "512Mi" },
        limits: { cpu: "1", memory: "1Gi" },
      }),
    ),
  );
});

test("Pod items bound the pod's total, sidecars included", async () => {
  const ctx = new FakeContext([limitRange([{ type: "Pod", max: { cpu: "1" } }])]);
  const p = pod("p", {
    initContainers: [
      {
        name: "sidecar",
        image: "i",
        restartPolicy: "Always",
        resources: { limits: { cpu: "400m" }, requests: { cpu: "400m" } },
      },
    ],
    containers: [
      { name: "a", image: "i", resources: { limits: { cpu: "400m" }, requests: { cpu: "400m" } } },
      { name: "b", image: "i", resources: { limits: { cpu: "400m" }, requests: { cpu: "400m" } } },
    ],
  });
  assert.equal(
    await refusal(ctx, attrs("CREATE", "pods", p)),
    'pods "p" is forbidden: maximum cpu usage per Pod is 1, but limit is 1200m',
  );
});

test("claims stay within the PersistentVolumeClaim items' storage bounds", async () => {
  const ctx = new FakeContext([
    limitRange([
      { type: "PersistentVolumeClaim", min: { storage: "1Gi" }, max: { storage: "10Gi" } },
    ]),
  ]);
  const pvc = (storage: string): KObject => ({
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name: "data", namespace: "ns" },
    spec: { resources: { requests: { storage } } },
  });
  assert.equal(
    await refusal(ctx, attrs("CREATE", "persistentvolumeclaims", pvc("20Gi"))),
    'persistentvolumeclaims "data" is forbidden: maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi',
  );
  assert.equal(
    await refusal(ctx, attrs("CREATE", "persistentvolumeclaims", pvc("500Mi"))),
    'persistentvolumeclaims "data" is forbidden: minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi',
  );
  await run(ctx, attrs("CREATE", "persistentvolumeclaims", pvc("5Gi")));
});

test("pod updates and other namespaces are not touched", async () => {
  const ctx = new FakeContext([
    limitRange([{ type: "Container", default: { cpu: "1" }, max: { cpu: "1" } }]),
  ]);
  const p = pod("p");
  await run(ctx, attrs("UPDATE", "pods", p, { oldObject: pod("p") }));
  assert.equal(
    (p.spec as { containers: Array<{ resources?: unknown }> }).containers[0]!.resources,
    undefined,
  );
  const other = pod("q", {}, { namespace: "other" });
  await run(ctx, attrs("CREATE", "pods", other));
  assert.equal(other.metadata!.annotations, undefined);
});
