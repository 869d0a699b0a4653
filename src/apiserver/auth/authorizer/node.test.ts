import { test } from "node:test";
import assert from "node:assert/strict";
import type { Pod } from "kubernetes-types/core/v1.js";
import {
  attributes,
  parseFieldRequirements,
  requestAttributes,
  type Attributes,
  type UserInfo,
} from "../types.js";
import { forbiddenMessage } from "../forbidden.js";
import { bootstrapPolicy, nodeRules } from "../bootstrap-policy.js";
import { NodeGraph } from "./node-graph.js";
import { NodeAuthorizer, nodeIdentity } from "./node.js";
import { MemoryRBACSource } from "./rbac.js";
import { newAuthorizer } from "./modes.js";

const node = (name: string): UserInfo => ({
  username: `system:node:${name}`,
  groups: ["system:nodes", "system:authenticated"],
});

function pod(ns: string, name: string, nodeName: string, extra: Partial<Pod["spec"]> = {}): Pod {
  return {
    metadata: { namespace: ns, name, uid: `${name}-uid` },
    spec: {
      nodeName,
      serviceAccountName: "default",
      containers: [{ name: "c", image: "i" }],
      ...extra,
    },
  };
}

function graph(): NodeGraph {
  const g = new NodeGraph();
  g.setPod(
    pod("default", "web", "n1", {
      imagePullSecrets: [{ name: "regcred" }],
      containers: [
        {
          name: "c",
          image: "i",
          env: [{ name: "A", valueFrom: { secretKeyRef: { name: "env-secret", key: "k" } } }],
          envFrom: [{ configMapRef: { name: "env-cm" } }],
        },
      ],
      volumes: [
        { name: "cfg", configMap: { name: "web-config" } },
        { name: "data", persistentVolumeClaim: { claimName: "web-data" } },
        { name: "scratch", ephemeral: { volumeClaimTemplate: { spec: {} } } },
        { name: "proj", projected: { sources: [{ secret: { name: "proj-secret" } }] } },
      ],
    }),
  );
  g.setPod(
    pod("default", "db", "n2", { volumes: [{ name: "s", secret: { secretName: "db-secret" } }] }),
  );
  g.setPersistentVolume({
    metadata: { name: "pv-web" },
    spec: {
      claimRef: { namespace: "default", name: "web-data" },
      csi: {
        driver: "d",
        volumeHandle: "h",
        nodePublishSecretRef: { name: "csi-secret" },
        controllerPublishSecretRef: { name: "ctrl-secret" },
      },
    },
  });
  g.setVolumeAttachment({
    metadata: { name: "va1" },
    spec: { nodeName: "n1", attacher: "a", source: {} },
  });
  return g;
}

function newNodeAuthorizer(g = graph()): NodeAuthorizer {
  return new NodeAuthorizer(g, nodeRules());
}

const get = (
  user: UserInfo,
  resource: string,
  name: string,
  namespace = "default",
  apiGroup = "",
): Attributes => attributes({ user, verb: "get", resource, name, namespace, apiGroup });

test("node identity: system:node:<name> in system:nodes", () => {
  assert.deepEqual(nodeIdentity(node("n1")), { isNode: true, name: "n1" });
  assert.deepEqual(nodeIdentity({ username: "system:node:n1", groups: [] }), {
    isNode: false,
    name: "",
  });
  assert.deepEqual(nodeIdentity({ username: "bob", groups: ["system:nodes"] }), {
    isNode: false,
    name: "",
  });
  const a = newNodeAuthorizer();
  const d = a.authorize(get({ username: "system:node:", groups: ["system:nodes"] }, "pods", "web"));
  assert.deepEqual(d, { decision: "no-opinion", reason: 'unknown node for user "system:node:"' });
  assert.equal(
    a.authorize(get({ username: "bob", groups: [] }, "secrets", "regcred")).decision,
    "no-opinion",
  );
});

test("a node reads the secrets, config maps, claims and volumes of its own pods only", () => {
  const a = newNodeAuthorizer();
  const n1 = node("n1");
  for (const s of ["regcred", "env-secret", "proj-secret", "csi-secret"]) {
    assert.equal(a.authorize(get(n1, "secrets", s)).decision, "allow", s);
  }
  assert.equal(a.authorize(get(n1, "configmaps", "web-config")).decision, "allow");
  assert.equal(a.authorize(get(n1, "configmaps", "env-cm")).decision, "allow");
  assert.equal(a.authorize(get(n1, "persistentvolumeclaims", "web-data")).decision, "allow");
  assert.equal(
    a.authorize(get(n1, "persistentvolumeclaims", "web-scratch")).decision,
    "allow",
    "ephemeral claim",
  );
  assert.equal(a.authorize(get(n1, "persistentvolumes", "pv-web", "")).decision, "allow");
  assert.equal(
    a.authorize(get(n1, "volumeattachments", "va1", "", "storage.k8s.io")).decision,
    "allow",
  );

  // Another node's pod's secret, a controller-only CSI secret, an unrelated secret: refused.
  const other = a.authorize(get(n1, "secrets", "db-secret"));
  assert.deepEqual(other, {
    decision: "no-opinion",
    reason: "no relationship found between node 'n1' and this object",
  });
  assert.equal(a.authorize(get(n1, "secrets", "ctrl-secret")).decision, "no-opinion");
  assert.equal(a.authorize(get(node("n2"), "secrets", "regcred")).decision, "no-opinion");
  assert.equal(a.authorize(get(node("n2"), "secrets", "db-secret")).decision, "allow");

  // Lists of secrets without a name, writes: refused with upstream's reasons.
  const list = a.authorize(
    attributes({ user: n1, verb: "list", resource: "secrets", namespace: "default" }),
  );
  assert.deepEqual(list, { decision: "no-opinion", reason: "No Object name found" });
  const write = a.authorize(
    attributes({
      user: n1,
      verb: "update",
      resource: "secrets",
      name: "regcred",
      namespace: "default",
    }),
  );
  assert.deepEqual(write, {
    decision: "no-opinion",
    reason: "can only read resources of this type",
  });
  const pvList = a.authorize(attributes({ user: n1, verb: "list", resource: "persistentvolumes" }));
  assert.equal(pvList.reason, "can only get individual resources of this type");
});

test("deleting a pod takes its node's access away", () => {
  const g = graph();
  const a = newNodeAuthorizer(g);
  assert.equal(a.authorize(get(node("n1"), "secrets", "regcred")).decision, "allow");
  g.deletePod("default", "web");
  assert.equal(a.authorize(get(node("n1"), "secrets", "regcred")).decision, "no-opinion");
  assert.equal(
    a.authorize(get(node("n1"), "persistentvolumes", "pv-web", "")).decision,
    "no-opinion",
  );
});

test("mirror pods lead to their node but grant nothing else", () => {
  const g = new NodeGraph();
  const mirror = pod("kube-system", "static", "n1", {
    volumes: [{ name: "s", secret: { secretName: "sneaky" } }],
  });
  mirror.metadata!.annotations = { "kubernetes.io/config.mirror": "hash" };
  g.setPod(mirror);
  const a = newNodeAuthorizer(g);
  assert.equal(a.authorize(get(node("n1"), "pods", "static", "kube-system")).decision, "allow");
  assert.equal(
    a.authorize(get(node("n1"), "secrets", "sneaky", "kube-system")).decision,
    "no-opinion",
  );
});

test("a node cannot modify another node; its own node, status and lease are fine", () => {
  const { authorizer } = newAuthorizer({
    modes: ["Node", "RBAC"],
    rbac: new MemoryRBACSource(),
    nodeGraph: graph(),
  });
  const n1 = node("n1");
  const nodeVerb = (verb: string, name: string, subresource = "") =>
    attributes({ user: n1, verb, resource: "nodes", name, subresource });
  assert.equal(authorizer.authorize(nodeVerb("get", "n1")).decision, "allow");
  assert.equal(authorizer.authorize(nodeVerb("patch", "n1", "status")).decision, "allow");
  const readOther = authorizer.authorize(nodeVerb("get", "n2"));
  assert.equal(readOther.decision, "no-opinion");
  assert.equal(readOther.reason, "node 'n1' cannot read 'n2', only its own Node object");
  const all = authorizer.authorize(attributes({ user: n1, verb: "list", resource: "nodes" }));
  assert.equal(all.reason, "node 'n1' cannot read all nodes, only its own Node object");
  const nodesInfo = {
    isResourceRequest: true,
    path: "/api/v1/nodes",
    verb: "watch",
    apiGroup: "",
    apiVersion: "v1",
    namespace: "",
    resource: "nodes",
    subresource: "",
    name: "",
  };
  const watchOwn = requestAttributes(
    n1,
    nodesInfo,
    new URLSearchParams("fieldSelector=metadata.name%3Dn1"),
  );
  assert.equal(
    authorizer.authorize(watchOwn).decision,
    "allow",
    "the kubelet watches its own Node by name",
  );
  const del = authorizer.authorize(nodeVerb("delete", "n2"));
  assert.equal(del.decision, "no-opinion");
  assert.equal(
    forbiddenMessage(nodeVerb("delete", "n2"), del.reason),
    'nodes "n2" is forbidden: User "system:node:n1" cannot delete resource "nodes" in API group "" at the cluster scope',
  );

  const lease = (name: string, namespace = "kube-node-lease") =>
    attributes({
      user: n1,
      verb: "update",
      apiGroup: "coordination.k8s.io",
      resource: "leases",
      name,
      namespace,
    });
  assert.equal(authorizer.authorize(lease("n1")).decision, "allow");
  assert.equal(
    authorizer.authorize(lease("n2")).reason,
    "can only access node lease with the same name as the requesting node",
  );
  assert.equal(
    authorizer.authorize(lease("n1", "default")).reason,
    'can only access leases in the "kube-node-lease" system namespace',
  );
});

test("a node's pods: its own, listed by spec.nodeName; not another node's", () => {
  const { authorizer } = newAuthorizer({
    modes: ["Node", "RBAC"],
    rbac: new MemoryRBACSource(),
    nodeGraph: graph(),
  });
  const n1 = node("n1");
  assert.equal(authorizer.authorize(get(n1, "pods", "web")).decision, "allow");
  assert.equal(authorizer.authorize(get(n1, "pods", "db")).decision, "no-opinion");

  const info = {
    isResourceRequest: true,
    path: "/api/v1/pods",
    verb: "list",
    apiGroup: "",
    apiVersion: "v1",
    namespace: "",
    resource: "pods",
    subresource: "",
    name: "",
  };
  const own = requestAttributes(n1, info, new URLSearchParams("fieldSelector=spec.nodeName%3Dn1"));
  assert.deepEqual(own.fieldSelector, [{ field: "spec.nodeName", operator: "=", value: "n1" }]);
  assert.equal(authorizer.authorize(own).decision, "allow");
  const others = requestAttributes(
    n1,
    info,
    new URLSearchParams("fieldSelector=spec.nodeName%3Dn2"),
  );
  assert.equal(
    authorizer.authorize(others).reason,
    "can only list/watch pods with spec.nodeName field selector",
  );
  assert.equal(authorizer.authorize(requestAttributes(n1, info)).decision, "no-opinion");

  // Status of pods, mirror pod create/delete, evictions: allowed (admission narrows them).
  const status = attributes({
    user: n1,
    verb: "patch",
    resource: "pods",
    subresource: "status",
    name: "web",
    namespace: "default",
  });
  assert.equal(authorizer.authorize(status).decision, "allow");
  const evict = attributes({
    user: n1,
    verb: "create",
    resource: "pods",
    subresource: "eviction",
    name: "web",
    namespace: "default",
  });
  assert.equal(authorizer.authorize(evict).decision, "allow");
  // Exec into pods is not something a node does.
  const exec = attributes({
    user: n1,
    verb: "create",
    resource: "pods",
    subresource: "exec",
    name: "db",
    namespace: "default",
  });
  assert.equal(authorizer.authorize(exec).decision, "no-opinion");
});

test("service account tokens only for the service accounts of the node's pods", () => {
  const a = newNodeAuthorizer();
  const token = (user: UserInfo, name: string, ns = "default") =>
    a.authorize(
      attributes({
        user,
        verb: "create",
        resource: "serviceaccounts",
        subresource: "token",
        name,
        namespace: ns,
      }),
    );
  assert.equal(token(node("n1"), "default").decision, "allow");
  assert.equal(token(node("n1"), "default", "kube-system").decision, "no-opinion");
  assert.equal(
    a.authorize(
      attributes({
        user: node("n1"),
        verb: "get",
        resource: "serviceaccounts",
        name: "default",
        namespace: "default",
      }),
    ).reason,
    "can only create tokens for individual service accounts",
  );
});

test("other resources follow the system:node role's rules; RulesFor is incomplete for nodes", () => {
  const a = newNodeAuthorizer();
  const n1 = node("n1");
  assert.equal(
    a.authorize(attributes({ user: n1, verb: "create", resource: "events", namespace: "default" }))
      .decision,
    "allow",
  );
  assert.equal(
    a.authorize(
      attributes({
        user: n1,
        verb: "create",
        apiGroup: "certificates.k8s.io",
        resource: "certificatesigningrequests",
      }),
    ).decision,
    "allow",
  );
  assert.equal(
    a.authorize(attributes({ user: n1, verb: "list", resource: "services" })).decision,
    "allow",
  );
  assert.equal(
    a.authorize(
      attributes({
        user: n1,
        verb: "delete",
        resource: "services",
        name: "x",
        namespace: "default",
      }),
    ).decision,
    "no-opinion",
  );
  assert.deepEqual(a.rulesFor(n1), {
    resourceRules: [],
    nonResourceRules: [],
    incomplete: true,
    error: "node authorizer does not support user rule resolution",
  });
  // The system:node role is the same data the bootstrap policy creates.
  const role = bootstrapPolicy().clusterRoles.find((r) => r.metadata?.name === "system:node");
  assert.deepEqual(role?.rules, nodeRules());
});

test("field selectors parse as upstream's requirements", () => {
  assert.deepEqual(parseFieldRequirements("spec.nodeName==n1,metadata.name!=x"), [
    { field: "spec.nodeName", operator: "=", value: "n1" },
    { field: "metadata.name", operator: "!=", value: "x" },
  ]);
  assert.equal(parseFieldRequirements("nonsense"), undefined);
});
