import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { isStatusError } from "../../../api/status.js";
import type { KObject } from "../../registry/types.js";
import type { AdmissionAttributes } from "../types.js";
import { forbiddenLabels, nodeRestriction } from "./node-restriction.js";
import { attrs, FakeContext, nodeUser, pod } from "./testing.js";

const node = (name: string, labels: Record<string, string> = {}, spec = {}): KObject => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: { name, labels },
  spec,
});

const as = (user: string, a: AdmissionAttributes) => ({ ...a, user: nodeUser(user) });

async function refused(ctx: FakeContext, a: AdmissionAttributes, message: string) {
  await assert.rejects(
    async () => {
      await nodeRestriction.admit!(a, ctx);
      await nodeRestriction.validate!(a, ctx);
    },
    (err) => {
      assert.ok(isStatusError(err, "Forbidden"), String(err));
      assert.equal(err.code, 403);
      assert.equal(err.message, message);
      return true;
    },
  );
}

async function allowed(ctx: FakeContext, a: AdmissionAttributes) {
  await nodeRestriction.admit!(a, ctx);
  await nodeRestriction.validate!(a, ctx);
}

test("a node may modify only its own Node object", async () => {
  const ctx = new FakeContext();
  await refused(
    ctx,
    as("node-a", attrs("UPDATE", "nodes", node("node-b"), { oldObject: node("node-b") })),
    'nodes "node-b" is forbidden: node "node-a" is not allowed to modify node "node-b"',
  );
  await refused(
    ctx,
    as(
      "node-a",
      attrs("DELETE", "nodes", undefined, { name: "node-b", oldObject: node("node-b") }),
    ),
    'nodes "node-b" is forbidden: node "node-a" is not allowed to modify node "node-b"',
  );
  await refused(
    ctx,
    as("node-a", attrs("CREATE", "nodes", node("node-b"))),
    'nodes "node-b" is forbidden: node "node-a" is not allowed to modify node "node-b"',
  );
  await allowed(ctx, as("node-a", attrs("CREATE", "nodes", node("node-a"))));
  await allowed(
    ctx,
    as(
      "node-a",
      attrs("UPDATE", "nodes", node("node-a"), {
        subresource: "status",
        oldObject: node("node-a"),
      }),
    ),
  );
  // Other users are not restricted.
  await allowed(ctx, attrs("UPDATE", "nodes", node("node-b"), { oldObject: node("node-b") }));
});

test("a node sets only the labels a kubelet may set, and never changes its taints", async () => {
  const ctx = new FakeContext();
  await allowed(
    ctx,
    as(
      "node-a",
      attrs(
        "CREATE",
        "nodes",
        node("node-a", {
          "kubernetes.io/hostname": "node-a",
          "node.kubernetes.io/exclude-from-external-load-balancers": "",
          "example.com/team": "x",
        }),
      ),
    ),
  );
  await refused(
    ctx,
    as(
      "node-a",
      attrs(
        "CREATE",
        "nodes",
        node("node-a", {
          "node-restriction.kubernetes.io/secure": "yes",
          "node-role.kubernetes.io/control-plane": "",
        }),
      ),
    ),
    'nodes "node-a" is forbidden: node "node-a" is not allowed to set the following labels: node-restriction.kubernetes.io/secure, node-role.kubernetes.io/control-plane',
  );
  await refused(
    ctx,
    as(
      "node-a",
      attrs("UPDATE", "nodes", node("node-a", { "foo.k8s.io/x": "1" }), {
        oldObject: node("node-a"),
      }),
    ),
    'nodes "node-a" is forbidden: is not allowed to modify labels: foo.k8s.io/x',
  );
  const taint = { taints: [{ key: "k", effect: "NoSchedule" }] };
  await refused(
    ctx,
    as(
      "node-a",
      attrs("UPDATE", "nodes", node("node-a", {}, {}), { oldObject: node("node-a", {}, taint) }),
    ),
    'nodes "node-a" is forbidden: node "node-a" is not allowed to modify taints',
  );
  assert.deepEqual(forbiddenLabels(["kubernetes.io/os", "a.kubelet.kubernetes.io/x"]), []);
});

test("a node creates only mirror pods bound to itself that reference nothing else", async () => {
  const ctx = new FakeContext([node("node-a")]);
  const owner = {
    apiVersion: "v1",
    kind: "Node",
    name: "node-a",
    uid: "uid-node-a",
    controller: true,
  };
  const mirror = (spec: Record<string, unknown> = {}, meta: Record<string, unknown> = {}) =>
    pod(
      "static-web",
      { nodeName: "node-a", ...spec },
      {
        annotations: { "kubernetes.io/config.mirror": "h" },
        ownerReferences: [owner],
        ...meta,
      },
    );
  await allowed(ctx, as("node-a", attrs("CREATE", "pods", mirror())));
  await refused(
    ctx,
    as("node-a", attrs("CREATE", "pods", pod("web"))),
    'pods "web" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "node-a" can only create mirror pods',
  );
  await refused(
    ctx,
    as("node-a", attrs("CREATE", "pods", mirror({ nodeName: "node-b" }))),
    'pods "static-web" is forbidden: node "node-a" can only create pods with spec.nodeName set to itself',
  );
  await refused(
    ctx,
    as("node-a", attrs("CREATE", "pods", mirror({}, { ownerReferences: [] }))),
    'pods "static-web" is forbidden: node "node-a" can only create pods with an owner reference set to itself',
  );
  await refused(
    ctx,
    as(
      "node-a",
      attrs("CREATE", "pods", mirror({}, { ownerReferences: [{ ...owner, uid: "x" }] })),
    ),
    'pods "static-web" is forbidden: node node-a UID mismatch: expected x got uid-node-a',
  );
  await refused(
    ctx,
    as(
      "node-a",
      attrs("CREATE", "pods", mirror({ volumes: [{ name: "v", configMap: { name: "c" } }] })),
    ),
    'pods "static-web" is forbidden: node "node-a" can not create pods that reference configmaps',
  );
  await refused(
    ctx,
    as(
      "node-a",
      attrs(
        "CREATE",
        "pods",
        mirror({ volumes: [{ name: "v", persistentVolumeClaim: { claimName: "c" } }] }),
      ),
    ),
    'pods "static-web" is forbidden: node "node-a" can not create pods that reference persistentvolumeclaims',
  );
});

test("a node updates the status of, and deletes, only pods bound to itself", async () => {
  const ctx = new FakeContext();
  const onB = pod("web", { nodeName: "node-b" });
  const onA = pod("api", { nodeName: "node-a" });
  await refused(
    ctx,
    as("node-a", attrs("UPDATE", "pods", onB, { subresource: "status", oldObject: onB })),
    'pods "web" is forbidden: node "node-a" can only update pod status for pods with spec.nodeName set to itself',
  );
  await allowed(
    ctx,
    as("node-a", attrs("UPDATE", "pods", onA, { subresource: "status", oldObject: onA })),
  );
  await refused(
    ctx,
    as(
      "node-a",
      attrs("UPDATE", "pods", pod("api", { nodeName: "node-a" }, { labels: { x: "y" } }), {
        subresource: "status",
        oldObject: onA,
      }),
    ),
    'pods "api" is forbidden: node "node-a" cannot update labels through pod status',
  );
  await refused(
    ctx,
    as(
      "node-a",
      attrs("DELETE", "pods", undefined, { name: "web", namespace: "ns", oldObject: onB }),
    ),
    'pods "web" is forbidden: node "node-a" can only delete pods with spec.nodeName set to itself',
  );
  await allowed(
    ctx,
    as(
      "node-a",
      attrs("DELETE", "pods", undefined, { name: "api", namespace: "ns", oldObject: onA }),
    ),
  );
  await refused(
    ctx,
    as("node-a", attrs("UPDATE", "pods", onA, { oldObject: onA })),
    'pods "api" is forbidden: unexpected operation "UPDATE", node "node-a" can only create and delete mirror pods',
  );
  ctx.add(onB);
  await refused(
    ctx,
    as(
      "node-a",
      attrs(
        "CREATE",
        "pods",
        { apiVersion: "policy/v1", kind: "Eviction", metadata: { name: "web" } },
        {
          group: "",
          version: "v1",
          subresource: "eviction",
          name: "web",
          namespace: "ns",
        },
      ),
    ),
    'pods "web" is forbidden: node node-a can only evict pods with spec.nodeName set to itself',
  );
});

test("a node uses only its own lease in kube-node-lease", async () => {
  const ctx = new FakeContext();
  const lease = (name: string, namespace = "kube-node-lease"): KObject => ({
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { name, namespace },
  });
  await allowed(ctx, as("node-a", attrs("CREATE", "leases", lease("node-a"))));
  await refused(
    ctx,
    as("node-a", attrs("UPDATE", "leases", lease("node-b"), { oldObject: lease("node-b") })),
    'leases.coordination.k8s.io "node-b" is forbidden: can only access node lease with the same name as the requesting node',
  );
  await refused(
    ctx,
    as("node-a", attrs("CREATE", "leases", lease("node-a", "default"))),
    'leases.coordination.k8s.io "node-a" is forbidden: can only access leases in the "kube-node-lease" system namespace',
  );
});

test("a node asks for certificates only in its own name", async () => {
  const ctx = new FakeContext();
  const csr = (cn: string, signerName: string): KObject => {
    const r = spawnSync(
      "openssl",
      [
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "/dev/null",
        "-subj",
        `/O=system:nodes/CN=${cn}`,
      ],
      { encoding: "utf8" },
    );
    assert.equal(r.status, 0, r.stderr);
    return {
      apiVersion: "certificates.k8s.io/v1",
      kind: "CertificateSigningRequest",
      metadata: { name: "csr-1" },
      spec: { signerName, request: Buffer.from(r.stdout).toString("base64"), usages: [] },
    };
  };
  const client = "kubernetes.io/kube-apiserver-client-kubelet";
  await allowed(
    ctx,
    as("node-a", attrs("CREATE", "certificatesigningrequests", csr("system:node:node-a", client))),
  );
  await refused(
    ctx,
    as("node-a", attrs("CREATE", "certificatesigningrequests", csr("system:node:node-b", client))),
    'certificatesigningrequests.certificates.k8s.io "csr-1" is forbidden: can only create a node CSR with CN=system:node:node-a',
  );
  // Other signers are left to their own checks.
  await allowed(
    ctx,
    as("node-a", attrs("CREATE", "certificatesigningrequests", csr("x", "example.com/signer"))),
  );
});

test("a user in system:nodes without a node name is refused", async () => {
  await refused(
    new FakeContext(),
    {
      ...attrs("CREATE", "nodes", node("x")),
      user: { username: "system:node:", groups: ["system:nodes"] },
    },
    'nodes "x" is forbidden: could not determine node from user "system:node:"',
  );
});
