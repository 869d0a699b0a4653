import assert from "node:assert/strict";
import { test } from "node:test";
import type { Pod, ResourceQuota } from "kubernetes-types/core/v1.js";
import type { KObject } from "../client/kinds.js";
import { listToJSON } from "../apiserver/admission/plugins/util.js";
import {
  calculateUsage,
  evaluatorsFor,
  nextQuotaStatus,
  objectCountEvaluator,
} from "./resourcequota.js";

const NOW = Date.parse("2024-05-01T10:00:00Z");

function pod(name: string, cpu?: string, extra: Partial<Pod["spec"]> = {}, phase = "Running"): Pod {
  return {
    metadata: { name, namespace: "ns" },
    spec: {
      containers: [
        {
          name: "c",
          image: "i",
          ...(cpu ? { resources: { requests: { cpu, memory: "64Mi" }, limits: { cpu } } } : {}),
        },
      ],
      ...extra,
    },
    status: { phase },
  };
}

function quota(hard: Record<string, string>, scopes?: string[]): ResourceQuota {
  return {
    metadata: { name: "q", namespace: "ns" },
    spec: { hard, ...(scopes ? { scopes } : {}) },
  };
}

const objects: Record<string, KObject[]> = {
  "v1/Pod": [
    pod("a", "100m"),
    pod("b", "250m"),
    pod("c"),
    pod("done", "1", {}, "Succeeded"),
    pod("t", "500m", { activeDeadlineSeconds: 30 }),
  ],
  "v1/ConfigMap": [{ metadata: { name: "x" } }, { metadata: { name: "y" } }],
  "v1/Service": [
    {
      metadata: { name: "s1" },
      spec: { type: "NodePort", ports: [{ port: 80 }, { port: 81 }] },
    } as KObject,
    {
      metadata: { name: "s2" },
      spec: { type: "LoadBalancer", ports: [{ port: 80, nodePort: 30001 }] },
    } as KObject,
  ],
  "apps/v1/Deployment": [{ metadata: { name: "d" } }],
};
const of = (kind: string) => objects[kind] ?? [];

test("pods, compute resources, object counts and services are counted as upstream", () => {
  const q = quota({
    pods: "10",
    "count/pods": "10",
    "requests.cpu": "4",
    "limits.cpu": "4",
    "requests.memory": "1Gi",
    configmaps: "5",
    "count/configmaps": "5",
    "count/deployments.apps": "3",
    services: "5",
    "services.nodeports": "5",
    "services.loadbalancers": "1",
    "count/secrets": "2",
    "example.com/unknown": "1",
  });
  assert.deepEqual(listToJSON(calculateUsage(q, of, NOW)), {
    configmaps: "2",
    "count/configmaps": "2",
    "count/deployments.apps": "1",
    "count/pods": "5",
    "count/secrets": "0",
    "limits.cpu": "850m",
    pods: "4",
    "requests.cpu": "850m",
    "requests.memory": "192Mi",
    services: "2",
    "services.loadbalancers": "1",
    "services.nodeports": "3",
  });
});

test("scopes select the pods a quota counts", () => {
  assert.deepEqual(listToJSON(calculateUsage(quota({ pods: "9" }, ["BestEffort"]), of, NOW)), {
    pods: "1",
  });
  assert.deepEqual(
    listToJSON(calculateUsage(quota({ pods: "9" }, ["NotBestEffort", "NotTerminating"]), of, NOW)),
    { pods: "2" },
  );
  assert.deepEqual(listToJSON(calculateUsage(quota({ pods: "9" }, ["Terminating"]), of, NOW)), {
    pods: "1",
  });
  const pc: ResourceQuota = {
    metadata: { name: "q" },
    spec: {
      hard: { pods: "9" },
      scopeSelector: {
        matchExpressions: [{ scopeName: "PriorityClass", operator: "In", values: ["high"] }],
      },
    },
  };
  const withClass = (kind: string) =>
    kind === "v1/Pod" ? [pod("h", undefined, { priorityClassName: "high" }), pod("l")] : [];
  assert.deepEqual(listToJSON(calculateUsage(pc, withClass, NOW)), { pods: "1" });
});

test("the status mirrors spec.hard, keeps unknown usage, and is written only when it changes", () => {
  const q = quota({ pods: "10", configmaps: "5", "example.com/unknown": "1" });
  const first = nextQuotaStatus(q, calculateUsage(q, of, NOW))!;
  assert.deepEqual(first, {
    hard: { configmaps: "5", "example.com/unknown": "1", pods: "10" },
    used: { configmaps: "2", pods: "4" },
  });
  const synced: ResourceQuota = { ...q, status: first };
  assert.equal(nextQuotaStatus(synced, calculateUsage(synced, of, NOW)), undefined);
  // A hard limit removed drops its usage; one changed is mirrored.
  const changed: ResourceQuota = { ...synced, spec: { hard: { pods: "20" } } };
  assert.deepEqual(nextQuotaStatus(changed, calculateUsage(changed, of, NOW)), {
    hard: { pods: "20" },
    used: { pods: "4" },
  });
});

test("object count names map to built-in resources", () => {
  assert.equal(objectCountEvaluator("count/deployments.apps")?.kind, "apps/v1/Deployment");
  assert.equal(objectCountEvaluator("secrets")?.kind, "v1/Secret");
  assert.equal(objectCountEvaluator("count/pods"), undefined);
  assert.equal(objectCountEvaluator("count/widgets.example.com"), undefined);
  assert.deepEqual(
    evaluatorsFor(["pods", "configmaps", "count/configmaps"]).map((e) => e.kind),
    ["v1/Pod", "v1/ConfigMap"],
  );
});
