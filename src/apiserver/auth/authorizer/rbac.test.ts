import { test } from "node:test";
import assert from "node:assert/strict";
import type {
  ClusterRole,
  ClusterRoleBinding,
  Role,
  RoleBinding,
} from "kubernetes-types/rbac/v1.js";
import { attributes, type UserInfo } from "../types.js";
import { forbiddenError, forbiddenMessage } from "../forbidden.js";
import { bootstrapPolicy } from "../bootstrap-policy.js";
import { aggregationUpdates } from "../aggregation.js";
import { MemoryRBACSource, RBACAuthorizer } from "./rbac.js";
import { newAuthorizer } from "./modes.js";

const mike: UserInfo = { username: "mikeadmin", groups: ["robotnik.io", "system:authenticated"] };

/** The lab's Role and RoleBinding (rbac.authorization.k8s.io/v1 forms of the seed's objects). */
const labRole: Role = {
  kind: "Role",
  metadata: { namespace: "prod", name: "mike-admin-role" },
  rules: [
    {
      apiGroups: ["", "extensions"],
      resources: ["deployments", "pods"],
      verbs: ["get", "list", "watch", "create"],
    },
  ],
};
const labBinding: RoleBinding = {
  kind: "RoleBinding",
  metadata: { namespace: "prod", name: "mike-admin-rolebinding" },
  subjects: [{ kind: "User", name: "mikeadmin", apiGroup: "" }],
  roleRef: { kind: "Role", name: "mike-admin-role", apiGroup: "" },
};

function bootstrapped(): MemoryRBACSource {
  const src = new MemoryRBACSource();
  const p = bootstrapPolicy();
  for (const o of [...p.clusterRoles, ...p.clusterRoleBindings, ...p.roles, ...p.roleBindings]) {
    src.put(o);
  }
  // Let aggregation settle (edit feeds admin).
  for (let i = 0; i < 3; i++) {
    for (const u of aggregationUpdates(src.listClusterRoles())) {
      src.put({ ...u.role, rules: u.rules });
    }
  }
  return src;
}

const listPods = (user: UserInfo, namespace: string) =>
  attributes({ user, verb: "list", resource: "pods", apiVersion: "v1", namespace });

test("the RBAC lab: refused with upstream's message, allowed in prod after the Role and RoleBinding, still refused in default", () => {
  const src = bootstrapped();
  const { authorizer } = newAuthorizer({
    modes: ["Node", "RBAC"],
    rbac: src,
    nodeGraph: { hasPathFrom: () => false },
  });

  const before = authorizer.authorize(listPods(mike, "prod"));
  assert.equal(before.decision, "no-opinion");
  assert.equal(
    forbiddenMessage(listPods(mike, "prod"), before.reason),
    'pods is forbidden: User "mikeadmin" cannot list resource "pods" in API group "" in the namespace "prod"',
  );

  src.put(labRole);
  src.put(labBinding);
  const after = authorizer.authorize(listPods(mike, "prod"));
  assert.equal(after.decision, "allow");
  assert.equal(
    after.reason,
    'RBAC: allowed by RoleBinding "mike-admin-rolebinding/prod" of Role "mike-admin-role" to User "mikeadmin"',
  );
  const create = attributes({
    user: mike,
    verb: "create",
    resource: "pods",
    apiVersion: "v1",
    namespace: "prod",
  });
  assert.equal(authorizer.authorize(create).decision, "allow");
  const del = attributes({
    user: mike,
    verb: "delete",
    resource: "pods",
    name: "x",
    namespace: "prod",
  });
  assert.equal(authorizer.authorize(del).decision, "no-opinion");

  const other = authorizer.authorize(listPods(mike, "default"));
  assert.equal(other.decision, "no-opinion");
  const err = forbiddenError(listPods(mike, "default"), other.reason).toStatus();
  assert.deepEqual(err, {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message:
      'pods is forbidden: User "mikeadmin" cannot list resource "pods" in API group "" in the namespace "default"',
    reason: "Forbidden",
    details: { kind: "pods" },
    code: 403,
  });

  // Removing the binding takes the access away at once.
  src.delete("RoleBinding", "prod", "mike-admin-rolebinding");
  assert.equal(authorizer.authorize(listPods(mike, "prod")).decision, "no-opinion");
});

test("the scheduler's identity can bind pods but not read secrets; the controller manager lists everything", () => {
  const { authorizer } = newAuthorizer({ modes: ["RBAC"], rbac: bootstrapped() });
  const scheduler: UserInfo = {
    username: "system:kube-scheduler",
    groups: ["system:authenticated"],
  };
  const bind = attributes({
    user: scheduler,
    verb: "create",
    resource: "pods",
    subresource: "binding",
    name: "web",
    namespace: "default",
  });
  assert.equal(authorizer.authorize(bind).decision, "allow");
  const secret = attributes({
    user: scheduler,
    verb: "get",
    resource: "secrets",
    name: "s",
    namespace: "default",
  });
  const d = authorizer.authorize(secret);
  assert.equal(d.decision, "no-opinion");
  assert.equal(
    forbiddenMessage(secret, d.reason),
    'secrets "s" is forbidden: User "system:kube-scheduler" cannot get resource "secrets" in API group "" in the namespace "default"',
  );
  // Leader election: its own lease anywhere; any lease only in kube-system (leader-locking role).
  const lease = (name: string, namespace: string) =>
    attributes({
      user: scheduler,
      verb: "update",
      apiGroup: "coordination.k8s.io",
      resource: "leases",
      name,
      namespace,
    });
  assert.equal(authorizer.authorize(lease("kube-scheduler", "default")).decision, "allow");
  assert.equal(authorizer.authorize(lease("other", "default")).decision, "no-opinion");
  assert.equal(authorizer.authorize(lease("other", "kube-system")).decision, "allow");

  const kcm: UserInfo = {
    username: "system:kube-controller-manager",
    groups: ["system:authenticated"],
  };
  const watchAny = attributes({
    user: kcm,
    verb: "watch",
    apiGroup: "apps",
    resource: "deployments",
  });
  assert.equal(authorizer.authorize(watchAny).decision, "allow");
});

test("view, edit and admin hold their aggregated rules; cluster-admin through system:masters", () => {
  const src = bootstrapped();
  const admin = src.getClusterRole("admin")!;
  const edit = src.getClusterRole("edit")!;
  const view = src.getClusterRole("view")!;
  assert.ok(view.rules!.length > 5 && edit.rules!.length > view.rules!.length);
  assert.ok(admin.rules!.length > edit.rules!.length);

  const bob: UserInfo = { username: "bob", groups: ["system:authenticated"] };
  src.put({
    kind: "RoleBinding",
    metadata: { namespace: "team", name: "bob-view" },
    subjects: [{ kind: "User", name: "bob", apiGroup: "rbac.authorization.k8s.io" }],
    roleRef: { kind: "ClusterRole", name: "view", apiGroup: "rbac.authorization.k8s.io" },
  });
  const rbac = new RBACAuthorizer(src);
  const get = (resource: string, verb = "get", apiGroup = "") =>
    rbac.authorize(
      attributes({ user: bob, verb, apiGroup, resource, name: "x", namespace: "team" }),
    ).decision;
  assert.equal(get("pods"), "allow");
  assert.equal(get("deployments", "get", "apps"), "allow");
  assert.equal(get("secrets"), "no-opinion", "view does not read secrets");
  assert.equal(get("pods", "delete"), "no-opinion");
  // Not outside the namespace.
  assert.equal(
    rbac.authorize(
      attributes({ user: bob, verb: "get", resource: "pods", name: "x", namespace: "other" }),
    ).decision,
    "no-opinion",
  );

  const root: UserInfo = { username: "admin", groups: ["system:masters", "system:authenticated"] };
  const d = rbac.authorize(
    attributes({ user: root, verb: "delete", resource: "nodes", name: "n1" }),
  );
  assert.equal(
    d.reason,
    'RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group "system:masters"',
  );
});

test("discovery, health and version paths for everyone authenticated; public info for anonymous", () => {
  const { authorizer } = newAuthorizer({ modes: ["RBAC"], rbac: bootstrapped() });
  const anon: UserInfo = { username: "system:anonymous", groups: ["system:unauthenticated"] };
  const bob: UserInfo = { username: "bob", groups: ["system:authenticated"] };
  const path = (user: UserInfo, p: string) =>
    authorizer.authorize(attributes({ user, verb: "get", path: p, resourceRequest: false }));
  assert.equal(path(bob, "/apis/apps/v1").decision, "allow");
  assert.equal(path(bob, "/openapi/v3").decision, "allow");
  assert.equal(path(anon, "/healthz").decision, "allow");
  assert.equal(path(anon, "/version").decision, "allow");
  const d = path(anon, "/apis");
  assert.equal(d.decision, "no-opinion");
  assert.equal(
    forbiddenMessage(
      attributes({ user: anon, verb: "get", path: "/apis", resourceRequest: false }),
      d.reason,
    ),
    'forbidden: User "system:anonymous" cannot get path "/apis"',
  );
  // Self reviews for every authenticated user (kubectl auth can-i, whoami).
  const ssar = attributes({
    user: bob,
    verb: "create",
    apiGroup: "authorization.k8s.io",
    resource: "selfsubjectaccessreviews",
  });
  assert.equal(authorizer.authorize(ssar).decision, "allow");
  const ssr = attributes({
    user: bob,
    verb: "create",
    apiGroup: "authentication.k8s.io",
    resource: "selfsubjectreviews",
  });
  assert.equal(authorizer.authorize(ssr).decision, "allow");
});

test("rule matching: wildcards, subresources, */subresource, resource names, URL prefixes", () => {
  const src = new MemoryRBACSource();
  const user: UserInfo = { username: "u", groups: ["g"] };
  const role: ClusterRole = {
    kind: "ClusterRole",
    metadata: { name: "r" },
    rules: [
      { verbs: ["get"], apiGroups: ["*"], resources: ["*/scale"] },
      { verbs: ["update"], apiGroups: [""], resources: ["configmaps"], resourceNames: ["cfg"] },
      { verbs: ["*"], apiGroups: ["batch"], resources: ["jobs"] },
      { verbs: ["get"], nonResourceURLs: ["/logs/*", "/metrics"] },
      { verbs: ["list"], apiGroups: [""], resources: ["pods/log"] },
    ],
  };
  src.put(role);
  const crb: ClusterRoleBinding = {
    kind: "ClusterRoleBinding",
    metadata: { name: "b" },
    subjects: [{ kind: "Group", name: "g", apiGroup: "rbac.authorization.k8s.io" }],
    roleRef: { kind: "ClusterRole", name: "r", apiGroup: "rbac.authorization.k8s.io" },
  };
  src.put(crb);
  const rbac = new RBACAuthorizer(src);
  const res = (verb: string, apiGroup: string, resource: string, subresource = "", name = "") =>
    rbac.authorize(
      attributes({ user, verb, apiGroup, resource, subresource, name, namespace: "ns" }),
    ).decision;
  const url = (p: string) =>
    rbac.authorize(attributes({ user, verb: "get", path: p, resourceRequest: false })).decision;
  assert.equal(res("get", "apps", "deployments", "scale", "d"), "allow");
  assert.equal(res("get", "apps", "deployments", "", "d"), "no-opinion");
  assert.equal(res("get", "apps", "deployments", "status", "d"), "no-opinion");
  assert.equal(res("update", "", "configmaps", "", "cfg"), "allow");
  assert.equal(res("update", "", "configmaps", "", "other"), "no-opinion");
  assert.equal(res("list", "", "configmaps"), "no-opinion");
  assert.equal(res("deletecollection", "batch", "jobs"), "allow");
  assert.equal(
    res("get", "batch", "jobs", "status", "j"),
    "no-opinion",
    "a resource rule does not cover its subresources",
  );
  assert.equal(res("list", "", "pods", "log"), "allow");
  assert.equal(url("/logs/kube-apiserver.log"), "allow");
  assert.equal(url("/logs"), "no-opinion");
  assert.equal(url("/metrics"), "allow");
  assert.equal(url("/metrics/slis"), "no-opinion");
});

test("service account subjects: namespace defaulting in RoleBindings, groups of service accounts", () => {
  const src = new MemoryRBACSource();
  src.put({
    kind: "Role",
    metadata: { namespace: "apps", name: "reader" },
    rules: [{ verbs: ["get"], apiGroups: [""], resources: ["configmaps"] }],
  });
  src.put({
    kind: "RoleBinding",
    metadata: { namespace: "apps", name: "sa-reader" },
    subjects: [{ kind: "ServiceAccount", name: "builder" }],
    roleRef: { kind: "Role", name: "reader", apiGroup: "rbac.authorization.k8s.io" },
  });
  const rbac = new RBACAuthorizer(src);
  const sa = (ns: string): UserInfo => ({
    username: `system:serviceaccount:${ns}:builder`,
    groups: ["system:serviceaccounts", `system:serviceaccounts:${ns}`, "system:authenticated"],
  });
  const get = (user: UserInfo) =>
    rbac.authorize(
      attributes({ user, verb: "get", resource: "configmaps", name: "c", namespace: "apps" }),
    );
  const d = get(sa("apps"));
  assert.equal(d.decision, "allow");
  assert.equal(
    d.reason,
    'RBAC: allowed by RoleBinding "sa-reader/apps" of Role "reader" to ServiceAccount "builder/apps"',
  );
  assert.equal(get(sa("other")).decision, "no-opinion");
});

test("bindings to missing roles give upstream's reason, appended to the Forbidden message", () => {
  const src = new MemoryRBACSource();
  src.put({
    kind: "RoleBinding",
    metadata: { namespace: "ns", name: "dangling" },
    subjects: [{ kind: "User", name: "u" }],
    roleRef: { kind: "Role", name: "gone", apiGroup: "rbac.authorization.k8s.io" },
  });
  src.put({
    kind: "ClusterRoleBinding",
    metadata: { name: "dangling-cluster" },
    subjects: [{ kind: "User", name: "u" }],
    roleRef: { kind: "ClusterRole", name: "also-gone", apiGroup: "rbac.authorization.k8s.io" },
  });
  const { authorizer } = newAuthorizer({ modes: ["RBAC"], rbac: src });
  const a = attributes({
    user: { username: "u", groups: [] },
    verb: "get",
    resource: "pods",
    name: "p",
    namespace: "ns",
  });
  const d = authorizer.authorize(a);
  assert.equal(d.decision, "no-opinion");
  assert.equal(
    d.reason,
    'RBAC: [clusterrole.rbac.authorization.k8s.io "also-gone" not found, role.rbac.authorization.k8s.io "gone" not found]',
  );
  assert.equal(
    forbiddenMessage(a, d.reason),
    'pods "p" is forbidden: User "u" cannot get resource "pods" in API group "" in the namespace "ns": RBAC: [clusterrole.rbac.authorization.k8s.io "also-gone" not found, role.rbac.authorization.k8s.io "gone" not found]',
  );
});

test("rulesFor lists what a user may do (SelfSubjectRulesReview)", () => {
  const src = bootstrapped();
  src.put(labRole);
  src.put(labBinding);
  const rbac = new RBACAuthorizer(src);
  const rules = rbac.rulesFor(mike, "prod");
  assert.equal(rules.incomplete, false);
  assert.ok(
    rules.resourceRules.some(
      (r) =>
        r.resources?.includes("pods") &&
        r.verbs.includes("create") &&
        r.apiGroups?.includes("extensions"),
    ),
  );
  assert.ok(rules.resourceRules.some((r) => r.resources?.includes("selfsubjectaccessreviews")));
  assert.ok(rules.nonResourceRules.some((r) => r.nonResourceURLs?.includes("/api")));
  const elsewhere = rbac.rulesFor(mike, "default");
  assert.ok(!elsewhere.resourceRules.some((r) => r.resources?.includes("pods")));
});

test("many bindings: each user gets exactly what their own bindings grant", () => {
  const src = bootstrapped();
  for (let i = 0; i < 2000; i++) {
    src.put({
      kind: "RoleBinding",
      metadata: { namespace: `ns${i % 50}`, name: `b${i}` },
      subjects: [{ kind: "User", name: `user${i}` }],
      roleRef: { kind: "ClusterRole", name: "edit", apiGroup: "rbac.authorization.k8s.io" },
    });
  }
  const { authorizer } = newAuthorizer({ modes: ["RBAC"], rbac: src });
  for (const i of [0, 34, 1234, 1999]) {
    const user: UserInfo = { username: `user${i}`, groups: ["system:authenticated"] };
    const own = attributes({ user, verb: "list", resource: "pods", namespace: `ns${i % 50}` });
    const other = attributes({
      user,
      verb: "list",
      resource: "pods",
      namespace: `ns${(i + 1) % 50}`,
    });
    assert.equal(authorizer.authorize(own).decision, "allow");
    assert.equal(authorizer.authorize(other).decision, "no-opinion");
  }
  // A change to one namespace's bindings is seen by the next decision.
  const user: UserInfo = { username: "user0", groups: [] };
  const a = attributes({ user, verb: "list", resource: "pods", namespace: "ns0" });
  src.delete("RoleBinding", "ns0", "b0");
  assert.equal(authorizer.authorize(a).decision, "no-opinion");
});
