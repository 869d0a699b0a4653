import { test } from "node:test";
import assert from "node:assert/strict";
import { create, meta, update } from "./harness.js";

test("namespaces get their name label, the kubernetes finalizer and phase Active", () => {
  const { obj, errors } = create(
    "/namespaces",
    { kind: "Namespace", apiVersion: "v1", metadata: { name: "dev" } },
    "",
  );
  assert.deepEqual(errors, []);
  assert.deepEqual(obj, {
    kind: "Namespace",
    apiVersion: "v1",
    metadata: meta("dev", { labels: { "kubernetes.io/metadata.name": "dev" } }, ""),
    spec: { finalizers: ["kubernetes"] },
    status: { phase: "Active" },
  });
  const changed = JSON.parse(JSON.stringify(obj)) as typeof obj;
  (changed.spec as Record<string, unknown>).finalizers = [];
  changed.status = { phase: "Terminating" };
  const updated = update("/namespaces", changed, obj).obj;
  assert.deepEqual(updated.spec, { finalizers: ["kubernetes"] });
  assert.deepEqual(updated.status, { phase: "Active" });
  assert.deepEqual(
    create("/namespaces", { metadata: { name: "x" }, spec: { finalizers: ["custom"] } }, "").errors,
    [
      'spec.finalizers: Invalid value: "custom": name is neither a standard finalizer name nor is it fully qualified',
    ],
  );
});

test("secrets default to Opaque, stringData is merged into data, type rules apply", () => {
  const { obj, errors } = create("/secrets", {
    kind: "Secret",
    apiVersion: "v1",
    metadata: { name: "s" },
    data: { a: "Yg==" },
    stringData: { c: "d" },
  });
  assert.deepEqual(errors, []);
  assert.deepEqual(obj, {
    kind: "Secret",
    apiVersion: "v1",
    metadata: meta("s"),
    data: { a: "Yg==", c: "ZA==" },
    type: "Opaque",
  });
  assert.deepEqual(
    create("/secrets", {
      metadata: { name: "s" },
      type: "kubernetes.io/dockerconfigjson",
      data: {},
    }).errors,
    ["data[.dockerconfigjson]: Required value"],
  );
  assert.deepEqual(
    create("/secrets", {
      metadata: { name: "s" },
      type: "kubernetes.io/dockerconfigjson",
      data: { ".dockerconfigjson": Buffer.from("[]").toString("base64") },
    }).errors,
    [
      'data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": json: cannot unmarshal array into Go value of type map[string]interface {}',
    ],
  );
  assert.deepEqual(
    create("/secrets", { metadata: { name: "s" }, type: "kubernetes.io/tls", data: {} }).errors,
    ["data[tls.crt]: Required value", "data[tls.key]: Required value"],
  );
  assert.deepEqual(create("/secrets", { metadata: { name: "s" }, data: { "a/b": "" } }).errors, [
    "data[a/b]: Invalid value: \"a/b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
  ]);
  const { obj: stored } = create("/secrets", { metadata: { name: "s" } });
  assert.deepEqual(
    update(
      "/secrets",
      {
        metadata: { name: "s" },
        type: "kubernetes.io/tls",
        data: { "tls.crt": "", "tls.key": "" },
      },
      stored,
    ).errors,
    ['type: Invalid value: "kubernetes.io/tls": field is immutable'],
  );
});

test("config maps validate their keys and immutability", () => {
  assert.deepEqual(
    create("/configmaps", { metadata: { name: "c" }, data: { "..": "x" } }).errors.slice(-1),
    ["data[..]: Invalid value: \"..\": must not be '..'"],
  );
  const { obj: stored } = create("/configmaps", {
    metadata: { name: "c" },
    data: { a: "1" },
    immutable: true,
  });
  assert.deepEqual(
    update("/configmaps", { metadata: { name: "c" }, data: { a: "2" }, immutable: true }, stored)
      .errors,
    ["data: Forbidden: field is immutable when `immutable` is set"],
  );
});

test("persistent volumes and claims get volumeMode, reclaim policy and phase Pending", () => {
  const pvc = create("/persistentvolumeclaims", {
    metadata: { name: "data" },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1024Mi" } } },
  });
  assert.deepEqual(pvc.errors, []);
  assert.deepEqual(pvc.obj.spec, {
    accessModes: ["ReadWriteOnce"],
    resources: { requests: { storage: "1Gi" } },
    volumeMode: "Filesystem",
  });
  assert.deepEqual(pvc.obj.status, { phase: "Pending" });
  assert.deepEqual(
    create("/persistentvolumeclaims", { metadata: { name: "data" }, spec: {} }).errors,
    [
      "spec.accessModes: Required value: at least 1 access mode is required",
      "spec.resources[storage]: Required value",
    ],
  );

  const pv = create(
    "/persistentvolumes",
    {
      metadata: { name: "pv" },
      spec: {
        accessModes: ["ReadWriteOnce"],
        capacity: { storage: "5Gi" },
        hostPath: { path: "/data" },
      },
    },
    "",
  );
  assert.deepEqual(pv.errors, []);
  assert.equal((pv.obj.spec as Record<string, unknown>).persistentVolumeReclaimPolicy, "Retain");
  assert.equal((pv.obj.spec as Record<string, unknown>).volumeMode, "Filesystem");
  assert.deepEqual(pv.obj.status, {
    phase: "Pending",
    lastPhaseTransitionTime: "2025-01-01T00:00:00Z",
  });
});

test("HPA v2 defaults: minReplicas, CPU utilization metric, behavior", () => {
  const { obj, errors } = create("autoscaling/horizontalpodautoscalers", {
    kind: "HorizontalPodAutoscaler",
    apiVersion: "autoscaling/v2",
    metadata: { name: "web" },
    spec: {
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "web" },
      maxReplicas: 5,
      behavior: { scaleDown: { stabilizationWindowSeconds: 60 } },
    },
  });
  assert.deepEqual(errors, []);
  assert.deepEqual(obj.spec, {
    scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "web" },
    minReplicas: 1,
    maxReplicas: 5,
    metrics: [
      {
        type: "Resource",
        resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 80 } },
      },
    ],
    behavior: {
      scaleUp: {
        stabilizationWindowSeconds: 0,
        selectPolicy: "Max",
        policies: [
          { type: "Pods", value: 4, periodSeconds: 15 },
          { type: "Percent", value: 100, periodSeconds: 15 },
        ],
      },
      scaleDown: {
        stabilizationWindowSeconds: 60,
        selectPolicy: "Max",
        policies: [{ type: "Percent", value: 100, periodSeconds: 15 }],
      },
    },
  });
  assert.deepEqual(obj.status, { currentMetrics: null, desiredReplicas: 0 });
  assert.deepEqual(
    create("autoscaling/horizontalpodautoscalers", {
      apiVersion: "autoscaling/v2",
      metadata: { name: "web" },
      spec: { scaleTargetRef: { kind: "Deployment", name: "web" }, minReplicas: 7, maxReplicas: 5 },
    }).errors,
    ["spec.maxReplicas: Invalid value: 5: must be greater than or equal to `minReplicas`"],
  );
});

test("ingress validation: pathType is required", () => {
  const ingress = (path: Record<string, unknown>) => ({
    metadata: { name: "i" },
    spec: { rules: [{ host: "example.com", http: { paths: [path] } }] },
  });
  const backend = { service: { name: "web", port: { number: 80 } } };
  assert.deepEqual(create("networking.k8s.io/ingresses", ingress({ path: "/", backend })).errors, [
    "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified",
  ]);
  assert.deepEqual(
    create("networking.k8s.io/ingresses", ingress({ path: "api", pathType: "Prefix", backend }))
      .errors,
    ['spec.rules[0].http.paths[0].path: Invalid value: "api": must be an absolute path'],
  );
  const ok = create(
    "networking.k8s.io/ingresses",
    ingress({ path: "/", pathType: "Prefix", backend }),
  );
  assert.deepEqual(ok.errors, []);
  assert.deepEqual(ok.obj.status, { loadBalancer: {} });
  assert.deepEqual(
    create("networking.k8s.io/ingresses", { metadata: { name: "i" }, spec: {} }).errors,
    [
      "spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified",
    ],
  );
});

test("RBAC bindings default subject API groups; priority classes default preemption", () => {
  const { obj, errors } = create("rbac.authorization.k8s.io/rolebindings", {
    metadata: { name: "rb" },
    roleRef: { kind: "ClusterRole", name: "view" },
    subjects: [
      { kind: "User", name: "alice" },
      { kind: "Group", name: "devs" },
      { kind: "ServiceAccount", name: "robot", namespace: "default" },
    ],
  });
  assert.deepEqual(errors, []);
  assert.deepEqual(obj.roleRef, {
    apiGroup: "rbac.authorization.k8s.io",
    kind: "ClusterRole",
    name: "view",
  });
  assert.deepEqual(obj.subjects, [
    { kind: "User", name: "alice", apiGroup: "rbac.authorization.k8s.io" },
    { kind: "Group", name: "devs", apiGroup: "rbac.authorization.k8s.io" },
    { kind: "ServiceAccount", name: "robot", namespace: "default", apiGroup: "" },
  ]);
  const changed = JSON.parse(JSON.stringify(obj)) as typeof obj;
  (changed.roleRef as Record<string, unknown>).name = "edit";
  assert.deepEqual(update("rbac.authorization.k8s.io/rolebindings", changed, obj).errors, [
    'roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"ClusterRole", Name:"edit"}: cannot change roleRef',
  ]);
  assert.deepEqual(
    create("rbac.authorization.k8s.io/roles", {
      metadata: { name: "r" },
      rules: [{ resources: ["pods"] }],
    }).errors,
    [
      "rules[0].verbs: Required value: verbs must contain at least one value",
      "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
    ],
  );
  const pc = create(
    "scheduling.k8s.io/priorityclasses",
    { metadata: { name: "high" }, value: 1000 },
    "",
  );
  assert.deepEqual(pc.errors, []);
  assert.equal(pc.obj.preemptionPolicy, "PreemptLowerPriority");
  assert.deepEqual(
    create(
      "scheduling.k8s.io/priorityclasses",
      { metadata: { name: "huge" }, value: 2000000000 },
      "",
    ).errors,
    ["value: Forbidden: maximum allowed value of a user defined priority is 1000000000"],
  );
});

test("nodes keep the status they register with; allocatable defaults to capacity", () => {
  const { obj, errors } = create(
    "/nodes",
    { metadata: { name: "n1" }, status: { capacity: { cpu: "4", memory: "8192Mi" } } },
    "",
  );
  assert.deepEqual(errors, []);
  const status = obj.status as Record<string, unknown>;
  assert.deepEqual(status.capacity, { cpu: "4", memory: "8Gi" });
  assert.deepEqual(status.allocatable, { cpu: "4", memory: "8Gi" });
  assert.deepEqual(status.daemonEndpoints, { kubeletEndpoint: { Port: 0 } });
});

test("network policies default policyTypes and port protocols; endpoint slices default ports", () => {
  const np = create("networking.k8s.io/networkpolicies", {
    metadata: { name: "np" },
    spec: { podSelector: {}, egress: [{ ports: [{ port: 53 }] }] },
  });
  assert.deepEqual(np.errors, []);
  assert.deepEqual(np.obj.spec, {
    podSelector: {},
    egress: [{ ports: [{ port: 53, protocol: "TCP" }] }],
    policyTypes: ["Ingress", "Egress"],
  });
  const es = create("discovery.k8s.io/endpointslices", {
    metadata: { name: "web-abc" },
    addressType: "IPv4",
    endpoints: [{ addresses: ["10.0.0.1"] }],
    ports: [{ port: 80 }],
  });
  assert.deepEqual(es.errors, []);
  assert.deepEqual(es.obj.ports, [{ port: 80, name: "", protocol: "TCP" }]);
});
