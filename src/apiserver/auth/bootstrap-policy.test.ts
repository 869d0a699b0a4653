import { test } from "node:test";
import assert from "node:assert/strict";
import type { ClusterRole, PolicyRule } from "kubernetes-types/rbac/v1.js";
import {
  bootstrapPolicy,
  reconcileBinding,
  reconcileBootstrapPolicy,
  reconcileRole,
  type PolicyReader,
} from "./bootstrap-policy.js";
import { aggregatedRules, aggregationUpdates, labelSelectorMatches } from "./aggregation.js";
import { MemoryRBACSource } from "./authorizer/rbac.js";

// Facts from upstream's testdata (cluster-roles.yaml, cluster-role-bindings.yaml,
// controller-roles.yaml, namespace-roles.yaml): the names, and the rule sets of a few roles.

const CLUSTER_ROLES = [
  "admin",
  "cluster-admin",
  "edit",
  "system:aggregate-to-admin",
  "system:aggregate-to-edit",
  "system:aggregate-to-view",
  "system:auth-delegator",
  "system:basic-user",
  "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
  "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
  "system:certificates.k8s.io:kube-apiserver-client-approver",
  "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
  "system:certificates.k8s.io:kubelet-serving-approver",
  "system:certificates.k8s.io:legacy-unknown-approver",
  "system:discovery",
  "system:heapster",
  "system:kube-aggregator",
  "system:kube-controller-manager",
  "system:kube-dns",
  "system:kube-scheduler",
  "system:kubelet-api-admin",
  "system:monitoring",
  "system:node",
  "system:node-bootstrapper",
  "system:node-problem-detector",
  "system:node-proxier",
  "system:persistent-volume-provisioner",
  "system:public-info-viewer",
  "system:service-account-issuer-discovery",
  "system:volume-scheduler",
  "view",
];

const CONTROLLERS = [
  "attachdetach-controller",
  "certificate-controller",
  "clusterrole-aggregation-controller",
  "cronjob-controller",
  "daemon-set-controller",
  "deployment-controller",
  "disruption-controller",
  "endpoint-controller",
  "endpointslice-controller",
  "endpointslicemirroring-controller",
  "ephemeral-volume-controller",
  "expand-controller",
  "generic-garbage-collector",
  "horizontal-pod-autoscaler",
  "job-controller",
  "legacy-service-account-token-cleaner",
  "namespace-controller",
  "node-controller",
  "persistent-volume-binder",
  "pod-garbage-collector",
  "pv-protection-controller",
  "pvc-protection-controller",
  "replicaset-controller",
  "replication-controller",
  "resourcequota-controller",
  "root-ca-cert-publisher",
  "route-controller",
  "service-account-controller",
  "service-controller",
  "statefulset-controller",
  "ttl-after-finished-controller",
  "ttl-controller",
  "validatingadmissionpolicy-status-controller",
];

const r = (
  apiGroups: string[],
  resources: string[],
  verbs: string[],
  resourceNames?: string[],
): PolicyRule =>
  resourceNames ? { apiGroups, resources, verbs, resourceNames } : { apiGroups, resources, verbs };

test("the cluster roles, controller roles and namespaced roles upstream bootstraps", () => {
  const p = bootstrapPolicy();
  const names = p.clusterRoles.map((c) => c.metadata!.name!);
  assert.deepEqual(
    names.filter((n) => !n.startsWith("system:controller:")),
    CLUSTER_ROLES,
  );
  assert.deepEqual(
    names.filter((n) => n.startsWith("system:controller:")),
    CONTROLLERS.map((c) => `system:controller:${c}`),
  );
  assert.deepEqual(
    p.roles.map((x) => `${x.metadata!.namespace}/${x.metadata!.name}`),
    [
      "kube-public/system:controller:bootstrap-signer",
      "kube-system/extension-apiserver-authentication-reader",
      "kube-system/system::leader-locking-kube-controller-manager",
      "kube-system/system::leader-locking-kube-scheduler",
      "kube-system/system:controller:bootstrap-signer",
      "kube-system/system:controller:cloud-provider",
      "kube-system/system:controller:token-cleaner",
    ],
  );
  for (const o of [...p.clusterRoles, ...p.clusterRoleBindings, ...p.roles, ...p.roleBindings]) {
    assert.equal(o.metadata?.labels?.["kubernetes.io/bootstrapping"], "rbac-defaults");
    assert.equal(o.metadata?.annotations?.["rbac.authorization.kubernetes.io/autoupdate"], "true");
  }
  for (const c of [...p.clusterRoles, ...p.roles]) {
    for (const rule of c.rules ?? []) {
      for (const list of [
        rule.verbs,
        rule.apiGroups,
        rule.resources,
        rule.resourceNames,
        rule.nonResourceURLs,
      ]) {
        if (list) assert.deepEqual(list, [...list].sort(), `${c.metadata?.name}: lists are sorted`);
      }
    }
  }
});

test("rule sets of the core roles match upstream's testdata", () => {
  const roles = new Map(bootstrapPolicy().clusterRoles.map((c) => [c.metadata!.name!, c]));
  const rules = (n: string) => roles.get(n)!.rules;
  assert.deepEqual(rules("cluster-admin"), [
    r(["*"], ["*"], ["*"]),
    { nonResourceURLs: ["*"], verbs: ["*"] },
  ]);
  assert.deepEqual(rules("system:basic-user"), [
    r(
      ["authorization.k8s.io"],
      ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
      ["create"],
    ),
    r(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"]),
  ]);
  assert.deepEqual(rules("system:public-info-viewer"), [
    { nonResourceURLs: ["/healthz", "/livez", "/readyz", "/version", "/version/"], verbs: ["get"] },
  ]);
  assert.deepEqual(rules("system:discovery"), [
    {
      nonResourceURLs: [
        "/api",
        "/api/*",
        "/apis",
        "/apis/*",
        "/healthz",
        "/livez",
        "/openapi",
        "/openapi/*",
        "/readyz",
        "/version",
        "/version/",
      ],
      verbs: ["get"],
    },
  ]);
  assert.deepEqual(rules("system:node-proxier"), [
    r([""], ["endpoints", "services"], ["list", "watch"]),
    r([""], ["nodes"], ["get", "list", "watch"]),
    r(["", "events.k8s.io"], ["events"], ["create", "patch", "update"]),
    r(["discovery.k8s.io"], ["endpointslices"], ["list", "watch"]),
  ]);
  assert.deepEqual(rules("system:kube-scheduler"), [
    r(["", "events.k8s.io"], ["events"], ["create", "patch", "update"]),
    r(["coordination.k8s.io"], ["leases"], ["create"]),
    r(["coordination.k8s.io"], ["leases"], ["get", "update"], ["kube-scheduler"]),
    r([""], ["nodes"], ["get", "list", "watch"]),
    r([""], ["pods"], ["delete", "get", "list", "watch"]),
    r([""], ["bindings", "pods/binding"], ["create"]),
    r([""], ["pods/status"], ["patch", "update"]),
    r([""], ["replicationcontrollers", "services"], ["get", "list", "watch"]),
    r(["apps", "extensions"], ["replicasets"], ["get", "list", "watch"]),
    r(["apps"], ["statefulsets"], ["get", "list", "watch"]),
    r(["policy"], ["poddisruptionbudgets"], ["get", "list", "watch"]),
    r([""], ["persistentvolumeclaims", "persistentvolumes"], ["get", "list", "watch"]),
    r(["authentication.k8s.io"], ["tokenreviews"], ["create"]),
    r(["authorization.k8s.io"], ["subjectaccessreviews"], ["create"]),
    r(["storage.k8s.io"], ["csinodes"], ["get", "list", "watch"]),
    r([""], ["namespaces"], ["get", "list", "watch"]),
    r(["storage.k8s.io"], ["csidrivers"], ["get", "list", "watch"]),
    r(["storage.k8s.io"], ["csistoragecapacities"], ["get", "list", "watch"]),
  ]);
  // Rule counts of the rest (testdata's lengths).
  const counts: Record<string, number> = {
    "system:aggregate-to-admin": 2,
    "system:aggregate-to-edit": 13,
    "system:aggregate-to-view": 10,
    "system:kube-controller-manager": 11,
    "system:node": 22,
    "system:persistent-volume-provisioner": 5,
    "system:kubelet-api-admin": 3,
    "system:controller:statefulset-controller": 10,
    "system:controller:horizontal-pod-autoscaler": 8,
  };
  for (const [name, n] of Object.entries(counts)) assert.equal(rules(name)!.length, n, name);
  assert.deepEqual(rules("system:controller:clusterrole-aggregation-controller"), [
    r(
      ["rbac.authorization.k8s.io"],
      ["clusterroles"],
      ["escalate", "get", "list", "patch", "update", "watch"],
    ),
  ]);
});

test("bindings: subjects as upstream's testdata", () => {
  const p = bootstrapPolicy();
  const b = new Map(p.clusterRoleBindings.map((x) => [x.metadata!.name!, x]));
  const subjects = (n: string) =>
    (b.get(n)!.subjects ?? []).map(
      (s) => `${s.kind}:${s.namespace ? `${s.namespace}/` : ""}${s.name}`,
    );
  assert.deepEqual(subjects("cluster-admin"), ["Group:system:masters"]);
  assert.deepEqual(subjects("system:basic-user"), ["Group:system:authenticated"]);
  assert.deepEqual(subjects("system:discovery"), ["Group:system:authenticated"]);
  assert.deepEqual(subjects("system:public-info-viewer"), [
    "Group:system:authenticated",
    "Group:system:unauthenticated",
  ]);
  assert.deepEqual(subjects("system:node"), []);
  assert.deepEqual(subjects("system:node-proxier"), ["User:system:kube-proxy"]);
  assert.deepEqual(subjects("system:kube-dns"), ["ServiceAccount:kube-system/kube-dns"]);
  assert.deepEqual(subjects("system:volume-scheduler"), ["User:system:kube-scheduler"]);
  assert.deepEqual(subjects("system:controller:job-controller"), [
    "ServiceAccount:kube-system/job-controller",
  ]);
  assert.equal(
    b.get("system:controller:job-controller")!.roleRef.name,
    "system:controller:job-controller",
  );
  const rb = p.roleBindings.find(
    (x) => x.metadata?.name === "system::leader-locking-kube-controller-manager",
  )!;
  assert.deepEqual(
    rb.subjects!.map((s) => s.name),
    ["system:kube-controller-manager", "kube-controller-manager", "leader-election-controller"],
  );
});

test("aggregation: view into edit into admin, by label selectors", () => {
  const src = new MemoryRBACSource();
  for (const c of bootstrapPolicy().clusterRoles) src.put(c);
  let passes = 0;
  for (;;) {
    const updates = aggregationUpdates(src.listClusterRoles());
    if (updates.length === 0) break;
    for (const u of updates) src.put({ ...u.role, rules: u.rules });
    passes++;
    assert.ok(passes < 5, "aggregation settles");
  }
  const view = src.getClusterRole("view")!.rules!;
  const edit = src.getClusterRole("edit")!.rules!;
  const admin = src.getClusterRole("admin")!.rules!;
  assert.equal(view.length, 10);
  assert.ok(
    view.every((v) => edit.some((e) => JSON.stringify(e) === JSON.stringify(v))),
    "edit includes view",
  );
  assert.ok(
    edit.every((e) => admin.some((a) => JSON.stringify(a) === JSON.stringify(e))),
    "admin includes edit",
  );
  assert.ok(admin.some((a) => a.resources?.includes("rolebindings")));
  assert.ok(!edit.some((e) => e.resources?.includes("rolebindings")));

  // A custom role joins view through its label.
  const custom: ClusterRole = {
    kind: "ClusterRole",
    metadata: {
      name: "widgets-view",
      labels: { "rbac.authorization.k8s.io/aggregate-to-view": "true" },
    },
    rules: [{ verbs: ["get"], apiGroups: ["example.com"], resources: ["widgets"] }],
  };
  src.put(custom);
  const rules = aggregatedRules(src.getClusterRole("view")!, src.listClusterRoles())!;
  assert.deepEqual(rules.at(-1), custom.rules![0]);

  assert.ok(
    labelSelectorMatches(
      { matchExpressions: [{ key: "a", operator: "In", values: ["1", "2"] }] },
      { a: "2" },
    ),
  );
  assert.ok(
    !labelSelectorMatches(
      { matchExpressions: [{ key: "a", operator: "NotIn", values: ["2"] }] },
      { a: "2" },
    ),
  );
  assert.ok(
    labelSelectorMatches({ matchExpressions: [{ key: "a", operator: "DoesNotExist" }] }, {}),
  );
  assert.ok(
    !labelSelectorMatches({ matchExpressions: [{ key: "a", operator: "Exists" }] }, undefined),
  );
});

test("reconciliation: create what is missing, add missing rules, keep extra ones, respect autoupdate=false", () => {
  const p = bootstrapPolicy();
  const expected = p.clusterRoles.find((c) => c.metadata?.name === "system:node-proxier")!;

  assert.equal(reconcileRole(expected, undefined).operation, "create");
  assert.equal(reconcileRole(expected, structuredClone(expected)).operation, "none");

  const trimmed = structuredClone(expected);
  trimmed.rules = trimmed.rules!.slice(1);
  trimmed.rules.push({ verbs: ["get"], apiGroups: ["example.com"], resources: ["extras"] });
  const res = reconcileRole(expected, trimmed);
  assert.equal(res.operation, "update");
  assert.deepEqual(res.missingRules, [
    { apiGroups: [""], resources: ["endpoints"], verbs: ["list"] },
    { apiGroups: [""], resources: ["endpoints"], verbs: ["watch"] },
    { apiGroups: [""], resources: ["services"], verbs: ["list"] },
    { apiGroups: [""], resources: ["services"], verbs: ["watch"] },
  ]);
  assert.ok(
    res.object.rules!.some((x) => x.resources?.includes("extras")),
    "extra rules are kept",
  );

  const frozen = structuredClone(trimmed);
  frozen.metadata!.annotations = { "rbac.authorization.kubernetes.io/autoupdate": "false" };
  const prot = reconcileRole(expected, frozen);
  assert.equal(prot.protected, true);

  // Labels and annotations are merged in.
  const bare = structuredClone(expected);
  delete bare.metadata!.labels;
  assert.equal(reconcileRole(expected, bare).operation, "update");

  // Bindings: missing subjects added, extra kept; a different roleRef means recreate.
  const binding = p.clusterRoleBindings.find(
    (b) => b.metadata?.name === "system:public-info-viewer",
  )!;
  const one = structuredClone(binding);
  one.subjects = [
    binding.subjects![0]!,
    { kind: "User", name: "extra", apiGroup: "rbac.authorization.k8s.io" },
  ];
  const rb = reconcileBinding(binding, one);
  assert.equal(rb.operation, "update");
  assert.deepEqual(
    rb.object.subjects!.map((s) => s.name),
    ["system:authenticated", "extra", "system:unauthenticated"],
  );
  const moved = structuredClone(binding);
  moved.roleRef = { ...moved.roleRef, name: "view" };
  assert.equal(reconcileBinding(binding, moved).operation, "recreate");
});

test("reconcileBootstrapPolicy: everything on an empty store, nothing on a reconciled one, skips protected objects", () => {
  const src = new MemoryRBACSource();
  const reader: PolicyReader = {
    getClusterRole: (n) => src.getClusterRole(n),
    getRole: (ns, n) => src.getRole(ns, n),
    getClusterRoleBinding: (n) =>
      [...src.listClusterRoleBindings()].find((b) => b.metadata?.name === n),
    getRoleBinding: (ns, n) => [...src.listRoleBindings(ns)].find((b) => b.metadata?.name === n),
  };
  const first = reconcileBootstrapPolicy(reader);
  const p = bootstrapPolicy();
  assert.equal(
    first.length,
    p.clusterRoles.length + p.clusterRoleBindings.length + p.roles.length + p.roleBindings.length,
  );
  assert.ok(first.every((a) => a.operation === "create"));
  for (const a of first) src.put(a.object);
  assert.deepEqual(reconcileBootstrapPolicy(reader), []);

  // An admin trims system:discovery and marks it autoupdate=false: it stays as they left it.
  const disc = structuredClone(src.getClusterRole("system:discovery")!);
  disc.rules = [{ verbs: ["get"], nonResourceURLs: ["/version"] }];
  disc.metadata!.annotations = { "rbac.authorization.kubernetes.io/autoupdate": "false" };
  src.put(disc);
  assert.deepEqual(reconcileBootstrapPolicy(reader), []);
  // Without the annotation the missing URLs come back.
  delete disc.metadata!.annotations;
  src.put(disc);
  const again = reconcileBootstrapPolicy(reader);
  assert.equal(again.length, 1);
  assert.equal(again[0]!.operation, "update");
  // Missing permissions are added broken down, one URL per rule, as upstream does.
  const restored = (again[0]!.object as ClusterRole).rules!;
  assert.equal(restored.length, 11);
  assert.deepEqual(restored[1], { nonResourceURLs: ["/api"], verbs: ["get"] });
});
