import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { isStatusError } from "../../../api/status.js";
import type { KObject } from "../../registry/types.js";
import {
  certificateApproval,
  certificateSigning,
  certificateSubjectRestriction,
  parseCSR,
} from "./certificates.js";
import { defaultIngressClassPlugin, defaultStorageClassPlugin } from "./default-class.js";
import { defaultTolerationSeconds } from "./default-toleration-seconds.js";
import { storageObjectInUseProtection } from "./storage-object-in-use-protection.js";
import { taintNodesByCondition } from "./taint-nodes-by-condition.js";
import { attrs, FakeContext, pod } from "./testing.js";

test("DefaultTolerationSeconds adds the not-ready and unreachable tolerations once", async () => {
  const plugin = defaultTolerationSeconds();
  const p = pod("p");
  await plugin.admit!(attrs("CREATE", "pods", p), new FakeContext());
  assert.deepEqual((p.spec as { tolerations: unknown }).tolerations, [
    {
      key: "node.kubernetes.io/not-ready",
      operator: "Exists",
      effect: "NoExecute",
      tolerationSeconds: 300,
    },
    {
      key: "node.kubernetes.io/unreachable",
      operator: "Exists",
      effect: "NoExecute",
      tolerationSeconds: 300,
    },
  ]);
  await plugin.admit!(attrs("UPDATE", "pods", p, { oldObject: p }), new FakeContext());
  assert.equal((p.spec as { tolerations: unknown[] }).tolerations.length, 2);
  // A toleration of every taint covers both.
  const all = pod("q", { tolerations: [{ operator: "Exists" }] });
  await plugin.admit!(attrs("CREATE", "pods", all), new FakeContext());
  assert.equal((all.spec as { tolerations: unknown[] }).tolerations.length, 1);
});

test("TaintNodesByCondition taints new nodes not-ready", async () => {
  const node: KObject = { apiVersion: "v1", kind: "Node", metadata: { name: "n" } };
  await taintNodesByCondition.admit!(attrs("CREATE", "nodes", node), new FakeContext());
  assert.deepEqual(node.spec, {
    taints: [{ key: "node.kubernetes.io/not-ready", effect: "NoSchedule" }],
  });
  await taintNodesByCondition.admit!(attrs("CREATE", "nodes", node), new FakeContext());
  assert.equal((node.spec as { taints: unknown[] }).taints.length, 1);
});

test("StorageObjectInUseProtection adds the protection finalizers", async () => {
  const pvc: KObject = {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name: "c", namespace: "ns" },
  };
  const pv: KObject = {
    apiVersion: "v1",
    kind: "PersistentVolume",
    metadata: { name: "v", finalizers: ["x"] },
  };
  await storageObjectInUseProtection.admit!(
    attrs("CREATE", "persistentvolumeclaims", pvc),
    new FakeContext(),
  );
  await storageObjectInUseProtection.admit!(
    attrs("CREATE", "persistentvolumes", pv),
    new FakeContext(),
  );
  assert.deepEqual(pvc.metadata!.finalizers, ["kubernetes.io/pvc-protection"]);
  assert.deepEqual(pv.metadata!.finalizers, ["x", "kubernetes.io/pv-protection"]);
});

test("DefaultStorageClass and DefaultIngressClass pick the newest default class", async () => {
  const sc = (name: string, ts: string, isDefault: boolean): KObject => ({
    apiVersion: "storage.k8s.io/v1",
    kind: "StorageClass",
    metadata: {
      name,
      creationTimestamp: ts,
      annotations: { "storageclass.kubernetes.io/is-default-class": String(isDefault) },
    },
  });
  const ctx = new FakeContext([
    sc("old", "2024-01-01T00:00:00Z", true),
    sc("new", "2024-06-01T00:00:00Z", true),
    sc("newest-not-default", "2025-01-01T00:00:00Z", false),
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "IngressClass",
      metadata: {
        name: "nginx",
        annotations: { "ingressclass.kubernetes.io/is-default-class": "true" },
      },
    },
  ]);
  const claim = (spec: Record<string, unknown>): KObject => ({
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name: "c", namespace: "ns" },
    spec,
  });
  const a = claim({});
  await defaultStorageClassPlugin.admit!(attrs("CREATE", "persistentvolumeclaims", a), ctx);
  assert.equal((a.spec as { storageClassName: string }).storageClassName, "new");
  const empty = claim({ storageClassName: "" });
  await defaultStorageClassPlugin.admit!(attrs("CREATE", "persistentvolumeclaims", empty), ctx);
  assert.equal((empty.spec as { storageClassName: string }).storageClassName, "");
  const ingress: KObject = {
    apiVersion: "networking.k8s.io/v1",
    kind: "Ingress",
    metadata: { name: "i", namespace: "ns" },
    spec: {},
  };
  await defaultIngressClassPlugin.admit!(attrs("CREATE", "ingresses", ingress), ctx);
  assert.equal((ingress.spec as { ingressClassName: string }).ingressClassName, "nginx");
});

function csr(subject: string, signerName: string): KObject {
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
      subject,
    ],
    { encoding: "utf8" },
  );
  assert.equal(r.status, 0, r.stderr);
  return {
    apiVersion: "certificates.k8s.io/v1",
    kind: "CertificateSigningRequest",
    metadata: { name: "req" },
    spec: { signerName, request: Buffer.from(r.stdout).toString("base64") },
  };
}

test("CSR subjects are read from the PEM request", () => {
  const c = csr("/O=a/O=b/CN=jane", "x/y");
  assert.deepEqual(parseCSR((c.spec as { request: string }).request), {
    commonName: "jane",
    organizations: ["a", "b"],
  });
  assert.throws(
    () => parseCSR(Buffer.from("nonsense").toString("base64")),
    /PEM block type must be CERTIFICATE REQUEST/,
  );
});

test("CertificateSubjectRestriction keeps system:masters out of client certificates", async () => {
  const bad = csr("/O=system:masters/CN=evil", "kubernetes.io/kube-apiserver-client");
  await assert.rejects(
    async () =>
      certificateSubjectRestriction.validate!(
        attrs("CREATE", "certificatesigningrequests", bad),
        new FakeContext(),
      ),
    (err) => {
      assert.ok(isStatusError(err, "Forbidden"));
      assert.equal(
        err.message,
        'certificatesigningrequests.certificates.k8s.io "req" is forbidden: use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed',
      );
      return true;
    },
  );
  const ok = csr("/O=dev/CN=jane", "kubernetes.io/kube-apiserver-client");
  await certificateSubjectRestriction.validate!(
    attrs("CREATE", "certificatesigningrequests", ok),
    new FakeContext(),
  );
});

test("CertificateApproval and CertificateSigning need approve and sign on the signer", async () => {
  const old = csr("/CN=jane", "example.com/issuer");
  const approved = { ...old, status: { conditions: [{ type: "Approved", status: "True" }] } };
  const ctx = new FakeContext();
  const allowed: string[] = [];
  ctx.authorizer = (a) =>
    allowed.includes(`${a.verb} ${a.name}`)
      ? { decision: "allow", reason: "" }
      : { decision: "no-opinion", reason: "" };
  const approve = attrs("UPDATE", "certificatesigningrequests", approved, {
    subresource: "approval",
    oldObject: old,
  });
  await assert.rejects(
    async () => certificateApproval.validate!(approve, ctx),
    /certificatesigningrequests.certificates.k8s.io "req" is forbidden: user not permitted to approve requests with signerName "example.com\/issuer"/,
  );
  allowed.push("approve example.com/*");
  await certificateApproval.validate!(approve, ctx);
  const signed = { ...old, status: { certificate: "Y2VydA==" } };
  const sign = attrs("UPDATE", "certificatesigningrequests", signed, {
    subresource: "status",
    oldObject: old,
  });
  await assert.rejects(
    async () => certificateSigning.validate!(sign, ctx),
    /user not permitted to sign requests with signerName "example.com\/issuer"/,
  );
  allowed.push("sign example.com/issuer");
  await certificateSigning.validate!(sign, ctx);
  // A status update that changes neither certificate nor conditions needs nothing.
  await certificateSigning.validate!(
    attrs("UPDATE", "certificatesigningrequests", old, { subresource: "status", oldObject: old }),
    new FakeContext(),
  );
});
