import { test } from "node:test";
import assert from "node:assert/strict";
import {
  findGroup,
  findResource,
  findResourceByKind,
  groupsInOrder,
  preferredVersions,
  resolveShortName,
  resources,
  resourcesInCategory,
  storageVersionHash,
} from "./resources.js";

const ALL = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

test("groups come in discovery order, core first", () => {
  assert.deepEqual(
    groupsInOrder().map((g) => g.name),
    [
      "",
      "apps",
      "events.k8s.io",
      "authentication.k8s.io",
      "authorization.k8s.io",
      "autoscaling",
      "batch",
      "certificates.k8s.io",
      "networking.k8s.io",
      "policy",
      "rbac.authorization.k8s.io",
      "storage.k8s.io",
      "scheduling.k8s.io",
      "coordination.k8s.io",
      "node.k8s.io",
      "discovery.k8s.io",
    ],
  );
});

test("versions in preference order; autoscaling prefers v2", () => {
  assert.deepEqual(
    findGroup("autoscaling")?.versions.map((v) => v.version),
    ["v2", "v1"],
  );
  assert.equal(preferredVersions["autoscaling"], "v2");
  assert.equal(preferredVersions[""], "v1");
  assert.equal(preferredVersions["apps"], "v1");
  assert.equal(findGroup("extensions"), undefined);
});

test("resources of a group-version and subresources are sorted by name", () => {
  for (const g of groupsInOrder()) {
    for (const v of g.versions) {
      const names = v.resources.map((r) => r.resource);
      assert.deepEqual(names, [...names].sort(), `${g.name}/${v.version}`);
      for (const r of v.resources) {
        const subs = r.subresources.map((s) => s.subresource);
        assert.deepEqual(subs, [...subs].sort(), r.resource);
        assert.deepEqual([...r.verbs], [...r.verbs].sort(), r.resource);
      }
    }
  }
  assert.deepEqual(
    findGroup("")?.versions[0]?.resources.map((r) => r.resource),
    [
      "bindings",
      "componentstatuses",
      "configmaps",
      "endpoints",
      "events",
      "limitranges",
      "namespaces",
      "nodes",
      "persistentvolumeclaims",
      "persistentvolumes",
      "pods",
      "podtemplates",
      "replicationcontrollers",
      "resourcequotas",
      "secrets",
      "serviceaccounts",
      "services",
    ],
  );
});

test("lookups by group, version and resource or kind", () => {
  const pods = findResource("", "v1", "pods");
  assert.equal(pods?.kind, "Pod");
  assert.equal(pods?.singularName, "pod");
  assert.equal(pods?.namespaced, true);
  assert.deepEqual(pods?.responseKind, { group: "", version: "", kind: "Pod" });
  assert.equal(findResource("apps", "v1", "deployments")?.kind, "Deployment");
  assert.equal(findResource("autoscaling", "v1", "horizontalpodautoscalers")?.version, "v1");
  assert.equal(findResource("apps", "v1beta1", "deployments"), undefined);
  assert.equal(findResource("", "v1", "deployments"), undefined);
  assert.equal(
    findResourceByKind("rbac.authorization.k8s.io", "v1", "ClusterRole")?.resource,
    "clusterroles",
  );
  assert.equal(findResource("", "v1", "endpoints")?.singularName, "endpoints");
  assert.equal(findResource("", "v1", "componentstatuses")?.singularName, "componentstatus");
  assert.equal(findResource("", "v1", "nodes")?.namespaced, false);
  assert.equal(
    findResource("authorization.k8s.io", "v1", "localsubjectaccessreviews")?.namespaced,
    true,
  );
  assert.equal(findResource("storage.k8s.io", "v1", "csistoragecapacities")?.namespaced, true);
});

test("short names resolve to the preferred version in discovery order", () => {
  const expected: Record<string, string> = {
    po: "pods",
    deploy: "deployments",
    svc: "services",
    cm: "configmaps",
    ns: "namespaces",
    no: "nodes",
    sa: "serviceaccounts",
    ep: "endpoints",
    ev: "events",
    rs: "replicasets",
    ds: "daemonsets",
    sts: "statefulsets",
    hpa: "horizontalpodautoscalers",
    cj: "cronjobs",
    pv: "persistentvolumes",
    pvc: "persistentvolumeclaims",
    quota: "resourcequotas",
    limits: "limitranges",
    pdb: "poddisruptionbudgets",
    ing: "ingresses",
    netpol: "networkpolicies",
    csr: "certificatesigningrequests",
    sc: "storageclasses",
    pc: "priorityclasses",
    rc: "replicationcontrollers",
    cs: "componentstatuses",
  };
  for (const [short, resource] of Object.entries(expected)) {
    assert.equal(resolveShortName(short)?.resource, resource, short);
  }
  assert.equal(resolveShortName("ev")?.group, "");
  assert.equal(resolveShortName("hpa")?.version, "v2");
  assert.equal(resolveShortName("pods"), undefined);
  assert.equal(resolveShortName("jobs"), undefined);
  assert.equal(resolveShortName("nope"), undefined);
});

test("the all category, in discovery order", () => {
  assert.deepEqual(
    resourcesInCategory("all").map((r) => `${r.group}/${r.resource}`),
    [
      "/pods",
      "/replicationcontrollers",
      "/services",
      "apps/daemonsets",
      "apps/deployments",
      "apps/replicasets",
      "apps/statefulsets",
      "autoscaling/horizontalpodautoscalers",
      "batch/cronjobs",
      "batch/jobs",
    ],
  );
});

test("verbs as upstream lists them", () => {
  const verbs = (g: string, v: string, r: string) => [...(findResource(g, v, r)?.verbs ?? [])];
  assert.deepEqual(verbs("", "v1", "pods"), ALL);
  assert.deepEqual(verbs("", "v1", "events"), ALL);
  assert.deepEqual(verbs("", "v1", "services"), ALL);
  assert.deepEqual(verbs("", "v1", "bindings"), ["create"]);
  assert.deepEqual(verbs("", "v1", "componentstatuses"), ["get", "list"]);
  assert.deepEqual(verbs("", "v1", "namespaces"), [
    "create",
    "delete",
    "get",
    "list",
    "patch",
    "update",
    "watch",
  ]);
  assert.deepEqual(verbs("authentication.k8s.io", "v1", "tokenreviews"), ["create"]);
  assert.deepEqual(verbs("authentication.k8s.io", "v1", "selfsubjectreviews"), ["create"]);
  assert.deepEqual(verbs("authorization.k8s.io", "v1", "selfsubjectaccessreviews"), ["create"]);
  assert.deepEqual(verbs("apps", "v1", "deployments"), ALL);
});

test("subresources with their response kinds and verbs", () => {
  const pods = findResource("", "v1", "pods")!;
  assert.deepEqual(
    pods.subresources.map((s) => [
      s.subresource,
      `${s.responseKind.group}/${s.responseKind.version}/${s.responseKind.kind}`,
      s.verbs.join(","),
    ]),
    [
      ["attach", "//PodAttachOptions", "create,get"],
      ["binding", "//Binding", "create"],
      ["ephemeralcontainers", "//Pod", "get,patch,update"],
      ["eviction", "policy/v1/Eviction", "create"],
      ["exec", "//PodExecOptions", "create,get"],
      ["log", "//Pod", "get"],
      ["portforward", "//PodPortForwardOptions", "create,get"],
      ["proxy", "//PodProxyOptions", "create,delete,get,patch,update"],
      ["status", "//Pod", "get,patch,update"],
    ],
  );
  const sub = (g: string, r: string, s: string) =>
    findResource(g, preferredVersions[g]!, r)?.subresources.find((x) => x.subresource === s);
  assert.deepEqual(sub("apps", "deployments", "scale")?.responseKind, {
    group: "autoscaling",
    version: "v1",
    kind: "Scale",
  });
  assert.deepEqual(sub("", "replicationcontrollers", "scale")?.responseKind.kind, "Scale");
  assert.deepEqual(sub("", "serviceaccounts", "token")?.responseKind, {
    group: "authentication.k8s.io",
    version: "v1",
    kind: "TokenRequest",
  });
  assert.deepEqual(sub("", "namespaces", "finalize")?.verbs, ["update"]);
  assert.equal(sub("", "nodes", "proxy")?.responseKind.kind, "NodeProxyOptions");
  assert.equal(sub("", "services", "proxy")?.responseKind.kind, "ServiceProxyOptions");
  assert.equal(
    sub("certificates.k8s.io", "certificatesigningrequests", "approval")?.verbs.length,
    3,
  );
  assert.equal(sub("apps", "daemonsets", "scale"), undefined);
  assert.equal(sub("", "pods", "resize"), undefined);
});

test("storage version hashes", () => {
  const core: Record<string, string | undefined> = {
    bindings: undefined,
    componentstatuses: undefined,
    configmaps: "qFsyl6wFWjQ=",
    endpoints: "fWeeMqaN/OA=",
    events: "r2yiGXH7wu8=",
    limitranges: "EBKMFVe6cwo=",
    namespaces: "Q3oi5N2YM8M=",
    nodes: "XwShjMxG9Fs=",
    persistentvolumeclaims: "QWTyNDq0dC4=",
    persistentvolumes: "HN/zwEC+JgM=",
    pods: "xPOwRZ+Yhw8=",
    podtemplates: "LIXB2x4IFpk=",
    replicationcontrollers: "Jond2If31h0=",
    resourcequotas: "8uhSgffRX6w=",
    secrets: "S6u1pOWzb84=",
    serviceaccounts: "pbx9ZvyFpBE=",
    services: "0/CO1lhkEBI=",
  };
  for (const [resource, hash] of Object.entries(core)) {
    assert.equal(findResource("", "v1", resource)?.storageVersionHash, hash, resource);
  }
  assert.equal(storageVersionHash("", "v1", "Pod"), "xPOwRZ+Yhw8=");
  assert.equal(findResource("", "v1", "pods")?.storageVersionHash, "xPOwRZ+Yhw8=");
  assert.equal(findResource("apps", "v1", "deployments")?.storageVersionHash, "8aSe+NMegvE=");
  assert.equal(findResource("", "v1", "namespaces")?.storageVersionHash, "Q3oi5N2YM8M=");
  assert.equal(
    findResource("events.k8s.io", "v1", "events")?.storageVersionHash,
    findResource("", "v1", "events")?.storageVersionHash,
  );
  assert.equal(
    findResource("autoscaling", "v1", "horizontalpodautoscalers")?.storageVersionHash,
    storageVersionHash("autoscaling", "v2", "HorizontalPodAutoscaler"),
  );
  assert.equal(findResource("", "v1", "bindings")?.storageVersionHash, undefined);
  assert.equal(
    findResource("authorization.k8s.io", "v1", "subjectaccessreviews")?.storageVersionHash,
    undefined,
  );
});

test("every resource is listed once per group-version", () => {
  const keys = resources.map((r) => `${r.group}/${r.version}/${r.resource}`);
  assert.equal(new Set(keys).size, keys.length);
  assert.equal(resources.length, 51);
});
