import { test } from "node:test";
import assert from "node:assert/strict";
import type { ClusterRole, Role, RoleBinding } from "kubernetes-types/rbac/v1.js";
import { MemoryRBACSource } from "./authorizer/rbac.js";
import { newAuthorizer } from "./authorizer/modes.js";
import { bootstrapPolicy } from "./bootstrap-policy.js";
import { checkBindingWrite, checkRoleWrite, type EscalationContext } from "./escalation.js";
import type { UserInfo } from "./types.js";

const RBAC = "rbac.authorization.k8s.io";

function setup(user: UserInfo) {
  const src = new MemoryRBACSource();
  const p = bootstrapPolicy();
  for (const o of [...p.clusterRoles, ...p.clusterRoleBindings]) src.put(o);
  // Team lead: may manage roles and bindings in "team", and read pods there.
  src.put({
    kind: "Role",
    metadata: { namespace: "team", name: "lead" },
    rules: [
      {
        verbs: ["create", "update", "patch", "delete", "get", "list"],
        apiGroups: [RBAC],
        resources: ["roles", "rolebindings"],
      },
      { verbs: ["get", "list"], apiGroups: [""], resources: ["pods"] },
    ],
  });
  src.put({
    kind: "RoleBinding",
    metadata: { namespace: "team", name: "lead" },
    subjects: [{ kind: "User", name: "lead", apiGroup: RBAC }],
    roleRef: { kind: "Role", name: "lead", apiGroup: RBAC },
  });
  const built = newAuthorizer({ modes: ["RBAC"], rbac: src });
  const ctx: EscalationContext = {
    user,
    authorizer: built.authorizer,
    resolver: built.rbac!.resolver,
  };
  return { src, ctx };
}

const lead: UserInfo = { username: "lead", groups: ["system:authenticated"] };

function role(rules: Role["rules"]): Role {
  return { kind: "Role", metadata: { namespace: "team", name: "r" }, rules };
}

test("a Role with rules the user holds may be created; one with more is refused with upstream's message", () => {
  const { ctx } = setup(lead);
  assert.equal(
    checkRoleWrite(ctx, role([{ verbs: ["get"], apiGroups: [""], resources: ["pods"] }])),
    null,
  );
  const err = checkRoleWrite(
    ctx,
    role([
      { verbs: ["get", "list"], apiGroups: [""], resources: ["pods", "secrets"] },
      { verbs: ["delete"], apiGroups: [""], resources: ["pods"] },
    ]),
  );
  assert.ok(err);
  assert.equal(err.code, 403);
  assert.equal(err.reason, "Forbidden");
  assert.equal(
    err.message,
    'roles.rbac.authorization.k8s.io "r" is forbidden: user "lead" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n' +
      '{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}\n' +
      '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}',
  );
  assert.deepEqual(err.details, { name: "r", group: RBAC, kind: "roles" });
});

test("escalate and bind verbs, and system:masters, skip the checks", () => {
  const { src, ctx } = setup(lead);
  const big = role([{ verbs: ["*"], apiGroups: ["*"], resources: ["*"] }]);
  assert.ok(checkRoleWrite(ctx, big));
  src.put({
    kind: "Role",
    metadata: { namespace: "team", name: "escalator" },
    rules: [
      { verbs: ["escalate", "bind"], apiGroups: [RBAC], resources: ["roles", "clusterroles"] },
    ],
  });
  src.put({
    kind: "RoleBinding",
    metadata: { namespace: "team", name: "escalator" },
    subjects: [{ kind: "User", name: "lead", apiGroup: RBAC }],
    roleRef: { kind: "Role", name: "escalator", apiGroup: RBAC },
  });
  assert.equal(checkRoleWrite(ctx, big), null);
  const bindAdmin: RoleBinding = {
    kind: "RoleBinding",
    metadata: { namespace: "team", name: "x" },
    subjects: [{ kind: "User", name: "someone", apiGroup: RBAC }],
    roleRef: { kind: "ClusterRole", name: "cluster-admin", apiGroup: RBAC },
  };
  assert.equal(checkBindingWrite(ctx, bindAdmin), null);

  const root = setup({ username: "root", groups: ["system:masters"] });
  assert.equal(checkRoleWrite(root.ctx, big), null);
});

test("a binding to a role whose rules the user lacks is refused; to a missing role too", () => {
  const { ctx } = setup(lead);
  const bindTo = (kind: "Role" | "ClusterRole", name: string): RoleBinding => ({
    kind: "RoleBinding",
    metadata: { namespace: "team", name: "b" },
    subjects: [{ kind: "User", name: "friend", apiGroup: RBAC }],
    roleRef: { kind, name, apiGroup: RBAC },
  });
  assert.equal(checkBindingWrite(ctx, bindTo("Role", "lead")), null, "binding to rules one holds");
  const admin = checkBindingWrite(ctx, bindTo("ClusterRole", "cluster-admin"));
  assert.ok(admin);
  assert.match(
    admin.message,
    /^rolebindings\.rbac\.authorization\.k8s\.io "b" is forbidden: user "lead" \(groups=\["system:authenticated"\]\) is attempting to grant RBAC permissions not currently held:\n/,
  );
  const missing = checkBindingWrite(ctx, bindTo("Role", "nope"));
  assert.equal(
    missing?.message,
    'rolebindings.rbac.authorization.k8s.io "b" is forbidden: role.rbac.authorization.k8s.io "nope" not found',
  );
});

test("aggregationRule needs cluster-admin power; GC-only updates pass", () => {
  const { ctx, src } = setup(lead);
  // Give lead rights over clusterroles in general, but not everything.
  src.put({
    kind: "ClusterRole",
    metadata: { name: "cr-admin" },
    rules: [{ verbs: ["create", "update", "get"], apiGroups: [RBAC], resources: ["clusterroles"] }],
  });
  src.put({
    kind: "ClusterRoleBinding",
    metadata: { name: "cr-admin" },
    subjects: [{ kind: "User", name: "lead", apiGroup: RBAC }],
    roleRef: { kind: "ClusterRole", name: "cr-admin", apiGroup: RBAC },
  });
  const agg: ClusterRole = {
    kind: "ClusterRole",
    metadata: { name: "gather" },
    aggregationRule: { clusterRoleSelectors: [{ matchLabels: { x: "y" } }] },
  };
  assert.equal(
    checkRoleWrite(ctx, agg)?.message,
    'clusterroles.rbac.authorization.k8s.io "gather" is forbidden: must have cluster-admin privileges to use the aggregationRule',
  );
  const held: ClusterRole = {
    kind: "ClusterRole",
    metadata: { name: "big" },
    rules: [{ verbs: ["*"], apiGroups: ["*"], resources: ["*"] }],
  };
  const withOwner = structuredClone(held);
  withOwner.metadata!.ownerReferences = [
    { apiVersion: "v1", kind: "ConfigMap", name: "o", uid: "u" },
  ];
  assert.ok(checkRoleWrite(ctx, held), "creating it escalates");
  assert.equal(checkRoleWrite(ctx, withOwner, held), null, "only owner references change");
});
