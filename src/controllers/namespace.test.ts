import assert from "node:assert/strict";
import { test } from "node:test";
import type { Namespace } from "kubernetes-types/core/v1.js";
import { contentConditions, deletableNamespacedResources, mergeConditions } from "./namespace.js";
import { missingServiceAccounts, rootCAAction, ROOT_CA_DESCRIPTION } from "./serviceaccount.js";

test("namespace deletion conditions say what remains, as upstream words it", () => {
  const conds = contentConditions(
    [
      { resource: "pods.", count: 2, finalizers: {} },
      { resource: "deployments.apps", count: 1, finalizers: { foregroundDeletion: 1 } },
      { resource: "configmaps.", count: 0, finalizers: {} },
    ],
    [],
  );
  assert.deepEqual(
    conds.map((c) => [c.type, c.status, c.reason]),
    [
      ["NamespaceDeletionDiscoveryFailure", "False", "ResourcesDiscovered"],
      ["NamespaceDeletionGroupVersionParsingFailure", "False", "ParsedGroupVersions"],
      ["NamespaceDeletionContentFailure", "False", "ContentDeleted"],
      ["NamespaceContentRemaining", "True", "SomeResourcesRemain"],
      ["NamespaceFinalizersRemaining", "True", "SomeFinalizersRemain"],
    ],
  );
  assert.equal(
    conds[3]!.message,
    "Some resources are remaining: deployments.apps has 1 resource instances, pods. has 2 resource instances",
  );
  assert.equal(
    conds[4]!.message,
    "Some content in the namespace has finalizers remaining: foregroundDeletion in 1 resource instances",
  );
  const empty = contentConditions([], []);
  assert.equal(empty[3]!.message, "All content successfully removed");
  assert.equal(empty[4]!.message, "All content-preserving finalizers finished");

  const ns: Namespace = { metadata: { name: "x" }, status: { phase: "Terminating" } };
  assert.ok(mergeConditions(ns, conds, 0));
  assert.equal(mergeConditions(ns, conds, 1000), false, "unchanged conditions are not rewritten");
  assert.equal(ns.status?.conditions?.length, 5);
  assert.ok(mergeConditions(ns, empty, 2000));
  const remaining = ns.status?.conditions?.find((c) => c.type === "NamespaceContentRemaining");
  assert.equal(remaining?.status, "False");
  assert.equal(remaining?.lastTransitionTime, "1970-01-01T00:00:02Z");
});

test("the namespace controller deletes every namespaced kind once, in its preferred version", () => {
  const kinds = deletableNamespacedResources().map((r) => `${r.group}/${r.version}/${r.resource}`);
  for (const k of [
    "/v1/pods",
    "apps/v1/deployments",
    "apps/v1/replicasets",
    "/v1/configmaps",
    "/v1/secrets",
  ])
    assert.ok(kinds.includes(k), k);
  assert.ok(!kinds.some((k) => k.endsWith("/namespaces") || k.endsWith("/nodes")));
  assert.equal(kinds.filter((k) => k.startsWith("autoscaling/")).length, 1);
});

test("default service accounts and the root CA ConfigMap go into active namespaces only", () => {
  const active: Namespace = { metadata: { name: "a" }, status: { phase: "Active" } };
  const terminating: Namespace = { metadata: { name: "t" }, status: { phase: "Terminating" } };
  assert.deepEqual(
    missingServiceAccounts(active, () => false),
    ["default"],
  );
  assert.deepEqual(
    missingServiceAccounts(active, () => true),
    [],
  );
  assert.deepEqual(
    missingServiceAccounts(terminating, () => false),
    [],
  );
  const create = rootCAAction(active, undefined, "PEM");
  assert.equal(create.type, "create");
  assert.deepEqual(create.type === "create" && create.cm.data, { "ca.crt": "PEM" });
  assert.equal(
    create.type === "create" && create.cm.metadata?.annotations?.["kubernetes.io/description"],
    ROOT_CA_DESCRIPTION,
  );
  assert.equal(
    rootCAAction(active, create.type === "create" ? create.cm : undefined, "PEM").type,
    "none",
  );
  const edited = rootCAAction(
    active,
    { metadata: { name: "kube-root-ca.crt" }, data: { "ca.crt": "x" } },
    "PEM",
  );
  assert.equal(edited.type, "update");
  assert.equal(rootCAAction(terminating, undefined, "PEM").type, "none");
});
