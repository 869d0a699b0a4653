import { test } from "node:test";
import assert from "node:assert/strict";
import { openMemoryStore } from "../storage/memory.js";
import type { Store } from "../storage/interface.js";
import { builtinResourceDefs } from "./resources.js";
import { Registry } from "./registry/store.js";
import type { KObject } from "./registry/types.js";

function registry(store: Store, group: string, version: string, resource: string): Registry {
  const def = builtinResourceDefs().find(
    (d) => d.group === group && d.version === version && d.resource === resource,
  )!;
  return new Registry(def, store);
}

test("core/v1 and events.k8s.io/v1 Events are one object in two versions", async () => {
  const store = openMemoryStore();
  const core = registry(store, "", "v1", "events");
  const events = registry(store, "events.k8s.io", "v1", "events");
  await core.create("default", {
    metadata: { name: "e1" },
    involvedObject: { kind: "Pod", name: "web", namespace: "default" },
    reason: "Started",
    message: "Started container web",
    type: "Normal",
    source: { component: "kubelet", host: "n1" },
    firstTimestamp: "2026-01-01T00:00:00Z",
    lastTimestamp: "2026-01-01T00:00:05Z",
    count: 2,
  });
  const asV1 = await events.get("default", "e1");
  assert.equal(asV1.apiVersion, "events.k8s.io/v1");
  assert.deepEqual(asV1.regarding, { kind: "Pod", name: "web", namespace: "default" });
  assert.equal(asV1.note, "Started container web");
  assert.deepEqual(asV1.deprecatedSource, { component: "kubelet", host: "n1" });
  assert.equal(asV1.deprecatedCount, 2);
  assert.equal(asV1.deprecatedFirstTimestamp, "2026-01-01T00:00:00Z");
  assert.equal(asV1.message, undefined);
  await events.create("default", {
    metadata: { name: "e2" },
    eventTime: "2026-01-01T00:00:00.000000Z",
    reportingController: "k8ts.io/scheduler",
    reportingInstance: "sched-1",
    action: "Binding",
    reason: "Scheduled",
    regarding: { kind: "Pod", name: "web", namespace: "default" },
    note: "Successfully assigned default/web to n1",
    type: "Normal",
  });
  const asCore = await core.get("default", "e2");
  assert.equal(asCore.apiVersion, "v1");
  assert.equal(asCore.message, "Successfully assigned default/web to n1");
  assert.equal(asCore.reportingComponent, "k8ts.io/scheduler");
  assert.deepEqual(asCore.involvedObject, { kind: "Pod", name: "web", namespace: "default" });
  // Lists and watches (the caches of both) serve each version; the JSON matches the objects.
  for (const r of [core, events]) {
    const list = await r.listObjects("default");
    assert.equal(list.items.length, 2);
    for (const item of list.items) {
      const json = JSON.parse(item.json().toString()) as KObject;
      assert.equal(json.apiVersion, r.apiVersion);
      assert.deepEqual(json, item.object());
    }
    r.close();
  }
  await store.close();
});

test("autoscaling/v1 and v2 HorizontalPodAutoscalers convert both ways through storage", async () => {
  const store = openMemoryStore();
  const v1 = registry(store, "autoscaling", "v1", "horizontalpodautoscalers");
  const v2 = registry(store, "autoscaling", "v2", "horizontalpodautoscalers");
  const target = { apiVersion: "apps/v1", kind: "Deployment", name: "web" };
  await v1.create("default", {
    metadata: { name: "h1" },
    spec: { scaleTargetRef: target, maxReplicas: 5, targetCPUUtilizationPercentage: 60 },
  });
  const h1 = await v2.get("default", "h1");
  assert.equal(h1.apiVersion, "autoscaling/v2");
  assert.deepEqual((h1.spec as { metrics: unknown }).metrics, [
    {
      type: "Resource",
      resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 60 } },
    },
  ]);
  assert.equal((h1.spec as { minReplicas: number }).minReplicas, 1);
  const memory = {
    type: "Resource",
    resource: { name: "memory", target: { type: "AverageValue", averageValue: "500Mi" } },
  };
  await v2.create("default", {
    metadata: { name: "h2" },
    spec: {
      scaleTargetRef: target,
      maxReplicas: 3,
      metrics: [
        {
          type: "Resource",
          resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 70 } },
        },
        memory,
      ],
    },
  });
  const h2 = await v1.get("default", "h2");
  assert.equal(h2.apiVersion, "autoscaling/v1");
  assert.equal(
    (h2.spec as { targetCPUUtilizationPercentage: number }).targetCPUUtilizationPercentage,
    70,
  );
  const annotations = h2.metadata!.annotations as Record<string, string>;
  assert.deepEqual(JSON.parse(annotations["autoscaling.alpha.kubernetes.io/metrics"]!), [memory]);
  // An update through v1 keeps what only v2 can say.
  h2.spec = { ...(h2.spec as object), maxReplicas: 4 };
  await v1.update("default", "h2", h2);
  const back = await v2.get("default", "h2");
  assert.equal((back.spec as { maxReplicas: number }).maxReplicas, 4);
  assert.deepEqual((back.spec as { metrics: unknown[] }).metrics[1], memory);
  assert.equal(back.metadata!.annotations, undefined);
  v1.close();
  v2.close();
  await store.close();
});
