import { test } from "node:test";
import assert from "node:assert/strict";
import { attributes, type UserInfo } from "../types.js";
import { forbiddenMessage } from "../forbidden.js";
import { authorizationModeError, newAuthorizer, validateAuthorizationModes } from "./modes.js";
import { MemoryRBACSource } from "./rbac.js";
import { UnionAuthorizer } from "./union.js";
import {
  accessReviewStatus,
  reviewAttributes,
  reviewUser,
  rulesReviewStatus,
  validateAccessReviewSpec,
} from "./reviews.js";

const bob: UserInfo = { username: "bob", groups: ["system:authenticated"] };
const root: UserInfo = { username: "root", groups: ["system:masters", "system:authenticated"] };
const getPod = (user: UserInfo) =>
  attributes({ user, verb: "get", resource: "pods", name: "p", namespace: "default" });

test("--authorization-mode validation with upstream's messages", () => {
  assert.deepEqual(validateAuthorizationModes(["Node", "RBAC"]), []);
  assert.equal(
    authorizationModeError(["RBAC", "Foo"]),
    'authorization-mode "Foo" is not a valid mode',
  );
  assert.equal(
    authorizationModeError(["RBAC", "RBAC"]),
    'authorization-mode ["RBAC" "RBAC"] has mode specified more than once',
  );
  assert.equal(
    authorizationModeError(["ABAC", "Bogus"]),
    `[authorization-mode ABAC's authorization policy file not passed, authorization-mode "Bogus" is not a valid mode]`,
  );
  assert.equal(authorizationModeError([]), "at least one authorization-mode must be passed");
  assert.throws(() => newAuthorizer({ modes: ["Webhook"] }), /not supported/);
});

test("AlwaysAllow, AlwaysDeny, and system:masters always allowed", () => {
  const allow = newAuthorizer({ modes: ["AlwaysAllow"] }).authorizer;
  assert.equal(allow.authorize(getPod(bob)).decision, "allow");
  const deny = newAuthorizer({ modes: ["AlwaysDeny"] }).authorizer;
  const d = deny.authorize(getPod(bob));
  assert.deepEqual(d, { decision: "no-opinion", reason: "Everything is forbidden." });
  assert.equal(
    forbiddenMessage(getPod(bob), d.reason),
    'pods "p" is forbidden: User "bob" cannot get resource "pods" in API group "" in the namespace "default": Everything is forbidden.',
  );
  assert.equal(deny.authorize(getPod(root)).decision, "allow");
  assert.deepEqual(deny.rulesFor(bob, "default"), {
    resourceRules: [],
    nonResourceRules: [],
    incomplete: false,
  });
  assert.deepEqual(allow.rulesFor(bob, "default").resourceRules, [
    { verbs: ["*"], apiGroups: ["*"], resources: ["*"] },
  ]);
});

test("union: first allow or deny wins, no-opinion reasons are joined", () => {
  const u = new UnionAuthorizer([
    { authorize: () => ({ decision: "no-opinion", reason: "first" }) },
    { authorize: () => ({ decision: "no-opinion", reason: "" }) },
    { authorize: () => ({ decision: "no-opinion", reason: "second", error: "boom" }) },
  ]);
  assert.deepEqual(u.authorize(getPod(bob)), {
    decision: "no-opinion",
    reason: "first\nsecond",
    error: "boom",
  });
  const d = new UnionAuthorizer([
    { authorize: () => ({ decision: "deny", reason: "no" }) },
    { authorize: () => ({ decision: "allow", reason: "" }) },
  ]);
  assert.deepEqual(d.authorize(getPod(bob)), { decision: "deny", reason: "no" });
});

test("access reviews: SubjectAccessReview, validation, rules review", () => {
  const src = new MemoryRBACSource();
  src.put({
    kind: "ClusterRole",
    metadata: { name: "pod-reader" },
    rules: [{ verbs: ["get", "list"], apiGroups: [""], resources: ["pods"] }],
  });
  src.put({
    kind: "RoleBinding",
    metadata: { namespace: "default", name: "bob" },
    subjects: [{ kind: "User", name: "bob" }],
    roleRef: { kind: "ClusterRole", name: "pod-reader", apiGroup: "rbac.authorization.k8s.io" },
  });
  const { authorizer } = newAuthorizer({
    modes: ["Node", "RBAC"],
    rbac: src,
    nodeGraph: { hasPathFrom: () => false },
  });
  const spec = {
    user: "bob",
    resourceAttributes: { verb: "list", resource: "pods", namespace: "default" },
  };
  assert.deepEqual(validateAccessReviewSpec(spec), []);
  const allowed = accessReviewStatus(authorizer, reviewAttributes(spec, reviewUser(spec)));
  assert.deepEqual(allowed, {
    allowed: true,
    reason: 'RBAC: allowed by RoleBinding "bob/default" of ClusterRole "pod-reader" to User "bob"',
  });
  const elsewhere = {
    ...spec,
    resourceAttributes: { ...spec.resourceAttributes, namespace: "kube-system" },
  };
  assert.deepEqual(
    accessReviewStatus(authorizer, reviewAttributes(elsewhere, reviewUser(elsewhere))),
    { allowed: false },
  );
  const nonResource = { nonResourceAttributes: { verb: "get", path: "/healthz" } };
  assert.deepEqual(accessReviewStatus(authorizer, reviewAttributes(nonResource, bob)), {
    allowed: false,
  });

  const bad = validateAccessReviewSpec({});
  assert.deepEqual(
    bad.map((e) => e.message),
    [
      "spec.resourceAttributes: Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes must be specified",
      'spec.user: Invalid value: "": at least one of user or group must be specified',
    ],
  );
  assert.equal(
    validateAccessReviewSpec({ nonResourceAttributes: { path: "/", verb: "get" } }, true).length,
    0,
  );

  const rules = rulesReviewStatus(authorizer, bob, "default");
  assert.deepEqual(rules.resourceRules, [
    { verbs: ["get", "list"], apiGroups: [""], resources: ["pods"] },
  ]);
  assert.equal(rules.incomplete, false);
  const nodeRules = rulesReviewStatus(
    authorizer,
    { username: "system:node:n1", groups: ["system:nodes"] },
    "default",
  );
  assert.equal(nodeRules.incomplete, true);
  assert.equal(nodeRules.evaluationError, "node authorizer does not support user rule resolution");
});

test("Forbidden messages for every shape of request", () => {
  const u: UserInfo = { username: "jane", groups: [] };
  const cases: Array<[Parameters<typeof attributes>[0], string]> = [
    [
      { user: u, verb: "list", resource: "pods", namespace: "prod" },
      'pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "prod"',
    ],
    [
      {
        user: u,
        verb: "get",
        apiGroup: "apps",
        resource: "deployments",
        name: "web",
        namespace: "prod",
      },
      'deployments.apps "web" is forbidden: User "jane" cannot get resource "deployments" in API group "apps" in the namespace "prod"',
    ],
    [
      { user: u, verb: "list", resource: "nodes" },
      'nodes is forbidden: User "jane" cannot list resource "nodes" in API group "" at the cluster scope',
    ],
    [
      {
        user: u,
        verb: "get",
        resource: "pods",
        subresource: "log",
        name: "web",
        namespace: "prod",
      },
      'pods "web" is forbidden: User "jane" cannot get resource "pods/log" in API group "" in the namespace "prod"',
    ],
    [
      { user: u, verb: "get", resourceRequest: false, path: "/metrics" },
      'forbidden: User "jane" cannot get path "/metrics"',
    ],
    [
      { user: { username: "a<b>&c", groups: [] }, verb: "get", resourceRequest: false, path: "/x" },
      'forbidden: User "a&lt;b&gt;&amp;c" cannot get path "/x"',
    ],
  ];
  for (const [a, want] of cases) assert.equal(forbiddenMessage(attributes(a)), want);
});
