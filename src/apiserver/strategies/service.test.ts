import { test } from "node:test";
import assert from "node:assert/strict";
import { body, create, meta } from "./harness.js";
import type { KObject } from "../registry/types.js";

/** What `kubectl create service clusterip web --tcp=80:8080` sends. */
const clusterIPBody = (): KObject =>
  body({
    kind: "Service",
    apiVersion: "v1",
    metadata: { name: "web", creationTimestamp: null, labels: { app: "web" } },
    spec: {
      ports: [{ name: "80-8080", protocol: "TCP", port: 80, targetPort: 8080 }],
      selector: { app: "web" },
      type: "ClusterIP",
    },
    status: { loadBalancer: {} },
  });

test("a ClusterIP service is defaulted as upstream 1.32 creates it (before IP allocation)", () => {
  const { obj, errors } = create("/services", clusterIPBody());
  assert.deepEqual(errors, []);
  assert.deepEqual(obj, {
    kind: "Service",
    apiVersion: "v1",
    metadata: meta("web", { labels: { app: "web" } }),
    spec: {
      internalTrafficPolicy: "Cluster",
      ipFamilies: ["IPv4"],
      ipFamilyPolicy: "SingleStack",
      ports: [{ name: "80-8080", protocol: "TCP", port: 80, targetPort: 8080 }],
      selector: { app: "web" },
      sessionAffinity: "None",
      type: "ClusterIP",
    },
    status: { loadBalancer: {} },
  });
});

test("NodePort and LoadBalancer services get traffic policies; targetPort defaults to port", () => {
  const { obj, errors } = create("/services", {
    kind: "Service",
    apiVersion: "v1",
    metadata: { name: "lb" },
    spec: { type: "LoadBalancer", ports: [{ port: 443 }], selector: { app: "lb" } },
  });
  assert.deepEqual(errors, []);
  assert.deepEqual(obj.spec, {
    type: "LoadBalancer",
    ports: [{ port: 443, protocol: "TCP", targetPort: 443 }],
    selector: { app: "lb" },
    sessionAffinity: "None",
    externalTrafficPolicy: "Cluster",
    internalTrafficPolicy: "Cluster",
    allocateLoadBalancerNodePorts: true,
    ipFamilies: ["IPv4"],
    ipFamilyPolicy: "SingleStack",
  });
});

test("ClientIP affinity gets its timeout; headless services without selector are dual-stack", () => {
  const affinity = create("/services", {
    metadata: { name: "a" },
    spec: { ports: [{ port: 80 }], sessionAffinity: "ClientIP" },
  });
  assert.deepEqual((affinity.obj.spec as Record<string, unknown>).sessionAffinityConfig, {
    clientIP: { timeoutSeconds: 10800 },
  });
  const headless = create("/services", { metadata: { name: "h" }, spec: { clusterIP: "None" } });
  assert.deepEqual(headless.errors, []);
  const spec = headless.obj.spec as Record<string, unknown>;
  assert.deepEqual(
    [spec.clusterIPs, spec.ipFamilyPolicy, spec.ipFamilies],
    [["None"], "RequireDualStack", ["IPv4", "IPv6"]],
  );
  const external = create("/services", {
    metadata: { name: "e" },
    spec: { type: "ExternalName", externalName: "example.com" },
  });
  assert.deepEqual(external.errors, []);
  assert.equal((external.obj.spec as Record<string, unknown>).ipFamilies, undefined);
});

test("service validation messages", () => {
  assert.deepEqual(
    create("/services", { metadata: { name: "1web" }, spec: { ports: [{ port: 80 }] } }).errors,
    [
      "metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
    ],
  );
  assert.deepEqual(create("/services", { metadata: { name: "web" }, spec: {} }).errors, [
    "spec.ports: Required value",
  ]);
  assert.deepEqual(
    create("/services", {
      metadata: { name: "web" },
      spec: {
        ports: [{ port: 80, name: "http" }, { port: 80, name: "http2" }, { port: 70000 }],
      },
    }).errors,
    [
      "spec.ports[2].name: Required value",
      "spec.ports[2].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
      "spec.ports[2].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
      'spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}',
    ],
  );
  assert.deepEqual(
    create("/services", {
      metadata: { name: "web" },
      spec: { type: "Magic", ports: [{ port: 80 }] },
    }).errors,
    [
      'spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
    ],
  );
  assert.deepEqual(
    create("/services", {
      metadata: { name: "web" },
      spec: { ports: [{ port: 80, nodePort: 30080 }] },
    }).errors,
    ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
  );
});

test("endpoints ports default to TCP", () => {
  const { obj, errors } = create("/endpoints", {
    metadata: { name: "web" },
    subsets: [{ addresses: [{ ip: "10.0.0.1" }], ports: [{ port: 80 }] }],
  });
  assert.deepEqual(errors, []);
  assert.deepEqual(obj.subsets, [
    { addresses: [{ ip: "10.0.0.1" }], ports: [{ port: 80, protocol: "TCP" }] },
  ]);
});
