import assert from "node:assert/strict";
import { test } from "node:test";
import { boundsDecision, metricFailure, metricsOf, setHPACondition } from "./hpa.js";

const NOW = Date.parse("2024-05-01T10:00:00Z");
const NO_API =
  "unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)";

test("replicas outside the bounds go to the nearest bound; zero disables scaling", () => {
  assert.deepEqual(boundsDecision(1, 2, 5), {
    type: "rescale",
    desired: 2,
    reason: "Current number of replicas below Spec.MinReplicas",
  });
  assert.deepEqual(boundsDecision(7, 2, 5), {
    type: "rescale",
    desired: 5,
    reason: "Current number of replicas above Spec.MaxReplicas",
  });
  assert.deepEqual(boundsDecision(0, 1, 5), { type: "disabled" });
  assert.deepEqual(boundsDecision(0, 0, 5), { type: "metrics" });
  assert.deepEqual(boundsDecision(3, 2, 5), { type: "metrics" });
});

test("a metric without a metrics API fails with upstream's reason and messages", () => {
  const [cpu] = metricsOf({
    spec: { maxReplicas: 3, scaleTargetRef: { kind: "Deployment", name: "d" } },
  });
  assert.deepEqual(cpu, {
    type: "Resource",
    resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 80 } },
  });
  const f = metricFailure(cpu!, NO_API);
  assert.equal(f.reason, "FailedGetResourceMetric");
  assert.equal(
    f.message,
    `failed to get cpu utilization: unable to get metrics for resource cpu: ${NO_API}`,
  );
  assert.equal(f.error, `failed to get cpu resource metric value: ${f.message}`);
  const mem = metricFailure(
    {
      type: "Resource",
      resource: { name: "memory", target: { type: "AverageValue", averageValue: "100Mi" } },
    },
    NO_API,
  );
  assert.match(
    mem.message,
    /^failed to get memory usage: unable to get metrics for resource memory: /,
  );
  assert.equal(
    metricFailure(
      {
        type: "Pods",
        pods: { metric: { name: "qps" }, target: { type: "AverageValue", averageValue: "1" } },
      },
      "x",
    ).reason,
    "FailedGetPodsMetric",
  );
});

test("conditions move their transition time only when the status changes", () => {
  const a = setHPACondition(
    undefined,
    "ScalingActive",
    "False",
    "FailedGetResourceMetric",
    "m1",
    NOW,
  );
  assert.deepEqual(a, [
    {
      type: "ScalingActive",
      status: "False",
      reason: "FailedGetResourceMetric",
      message: "m1",
      lastTransitionTime: "2024-05-01T10:00:00Z",
    },
  ]);
  const b = setHPACondition(
    a,
    "ScalingActive",
    "False",
    "FailedGetResourceMetric",
    "m2",
    NOW + 60_000,
  );
  assert.equal(b[0]!.lastTransitionTime, "2024-05-01T10:00:00Z");
  assert.equal(b[0]!.message, "m2");
  const c = setHPACondition(b, "ScalingActive", "True", "ValidMetricFound", "ok", NOW + 60_000);
  assert.equal(c[0]!.lastTransitionTime, "2024-05-01T10:01:00Z");
  assert.equal(setHPACondition(c, "AbleToScale", "True", "SucceededGetScale", "s", NOW).length, 2);
});
