import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import type { CertificateSigningRequest } from "kubernetes-types/certificates/v1.js";
import { tempDir } from "../testing/tmp.js";
import {
  approvalReview,
  awaitsApproval,
  csrCleanupReason,
  isKubeletClientCSR,
  RECOGNIZERS,
} from "./csrapproving.js";
import { parseCSR } from "./csrsigning.js";

const HOUR = 3600_000;
const NOW = Date.parse("2024-05-01T10:00:00Z");
const iso = (t: number) => new Date(t).toISOString().replace(/\.\d+Z$/, "Z");

function opensslCSR(subject: string, san?: string): string {
  const dir = tempDir("k8ts-csrapproving-");
  try {
    const key = path.join(dir.path, "k.pem");
    const out = path.join(dir.path, "r.csr");
    const run = (args: string[]) => assert.equal(spawnSync("openssl", args).status, 0);
    run(["ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", key]);
    run([
      "req",
      "-new",
      "-key",
      key,
      "-subj",
      subject,
      "-out",
      out,
      ...(san ? ["-addext", `subjectAltName=${san}`] : []),
    ]);
    return fs.readFileSync(out, "utf8");
  } finally {
    dir.remove();
  }
}

const kubelet = opensslCSR("/O=system:nodes/CN=system:node:n1");

function csr(
  username: string,
  usages = ["digital signature", "client auth"],
): CertificateSigningRequest {
  return {
    metadata: { name: "c" },
    spec: {
      request: Buffer.from(kubelet).toString("base64"),
      signerName: "kubernetes.io/kube-apiserver-client-kubelet",
      usages,
      username,
      groups: ["system:bootstrappers", "system:authenticated"],
    },
  };
}

test("kubelet client requests are recognized as self or bootstrap requests", () => {
  const parsed = parseCSR(kubelet);
  assert.ok(isKubeletClientCSR(parsed, ["digital signature", "client auth"]));
  assert.ok(isKubeletClientCSR(parsed, ["key encipherment", "digital signature", "client auth"]));
  assert.ok(!isKubeletClientCSR(parsed, ["digital signature", "client auth", "server auth"]));
  assert.ok(
    !isKubeletClientCSR(parseCSR(opensslCSR("/O=system:nodes/CN=system:node:n1", "DNS:n1")), [
      "digital signature",
      "client auth",
    ]),
  );
  assert.ok(
    !isKubeletClientCSR(parseCSR(opensslCSR("/O=other/CN=system:node:n1")), [
      "digital signature",
      "client auth",
    ]),
  );
  const recognized = (c: CertificateSigningRequest) =>
    RECOGNIZERS.filter((r) => r.recognize(c, parsed)).map((r) => r.subresource);
  assert.deepEqual(recognized(csr("system:node:n1")), ["selfnodeclient", "nodeclient"]);
  assert.deepEqual(recognized(csr("system:bootstrap:abcdef")), ["nodeclient"]);
  const other = csr("system:bootstrap:abcdef");
  other.spec.signerName = "kubernetes.io/kube-apiserver-client";
  assert.deepEqual(recognized(other), []);
});

test("the SubjectAccessReview asks about the requester", () => {
  const c = csr("system:bootstrap:abcdef");
  c.spec.uid = "u1";
  c.spec.extra = { scope: ["a"] };
  assert.deepEqual(approvalReview(c, "nodeclient").spec, {
    user: "system:bootstrap:abcdef",
    uid: "u1",
    groups: ["system:bootstrappers", "system:authenticated"],
    extra: { scope: ["a"] },
    resourceAttributes: {
      group: "certificates.k8s.io",
      resource: "certificatesigningrequests",
      verb: "create",
      subresource: "nodeclient",
      version: "*",
    },
  });
  assert.ok(awaitsApproval(c));
  c.status = { conditions: [{ type: "Denied", status: "True" }] };
  assert.ok(!awaitsApproval(c));
});

test("the cleaner's deadlines", () => {
  const at = (
    created: number,
    conditions: CertificateSigningRequest["status"] = {},
  ): CertificateSigningRequest => ({
    metadata: { name: "c", creationTimestamp: iso(created) },
    spec: { request: "", signerName: "x" },
    status: conditions,
  });
  assert.equal(csrCleanupReason(at(NOW - 23 * HOUR), NOW), undefined);
  assert.equal(csrCleanupReason(at(NOW - 25 * HOUR), NOW), "pending past its deadline");
  const denied = (t: number) =>
    at(NOW - 2 * HOUR, {
      conditions: [{ type: "Denied", status: "True", lastUpdateTime: iso(t) }],
    });
  assert.equal(csrCleanupReason(denied(NOW - 30 * 60_000), NOW), undefined);
  assert.equal(csrCleanupReason(denied(NOW - 61 * 60_000), NOW), "denied past its deadline");
  // Approved but not issued: kept (until a day has passed it is not "pending" either).
  const approved = at(NOW - 30 * HOUR, {
    conditions: [{ type: "Approved", status: "True", lastUpdateTime: iso(NOW - 2 * HOUR) }],
  });
  assert.equal(csrCleanupReason(approved, NOW), undefined);
  approved.status!.certificate = Buffer.from("not a certificate").toString("base64");
  assert.equal(csrCleanupReason(approved, NOW), "issued past its deadline");
});
