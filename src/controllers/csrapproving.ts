/**
 * CertificateSigningRequests of kubelets, as upstream's csrapproving and csrcleaner:
 *
 * - The approver approves kubelet client certificate requests (signer
 *   `kubernetes.io/kube-apiserver-client-kubelet`, subject `system:node:<name>` in organization
 *   `system:nodes`, no subject alternative names, usages client auth and digital signature, with
 *   or without key encipherment) when a SubjectAccessReview says the requester may `create`
 *   `certificatesigningrequests/selfnodeclient` (a node renewing its own certificate) or
 *   `certificatesigningrequests/nodeclient` (a bootstrap token asking for a new node). What it
 *   does not recognize, or the review refuses, it leaves for a person.
 * - The cleaner deletes requests nobody needs any more: issued ones an hour after approval or
 *   once their certificate has expired, denied and failed ones after an hour, and ones still
 *   pending after a day. It looks every hour.
 */

import { X509Certificate } from "node:crypto";
import type {
  CertificateSigningRequest,
  CertificateSigningRequestCondition,
} from "kubernetes-types/certificates/v1.js";
import type { SubjectAccessReview } from "kubernetes-types/authorization/v1.js";
import { isStatusError } from "../api/status.js";
import { sleep } from "../client/clock.js";
import { controller } from "../client/controller.js";
import { errorMessage, type ControllerDescriptor } from "./context.js";
import { parseCSR, type ParsedCSR } from "./csrsigning.js";

export const KUBELET_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet";

interface Recognizer {
  recognize(csr: CertificateSigningRequest, parsed: ParsedCSR): boolean;
  subresource: "selfnodeclient" | "nodeclient";
  message: string;
}

function sameSet(a: string[], b: string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

/** Upstream's IsKubeletClientCSR: what a kubelet's client certificate request looks like. */
export function isKubeletClientCSR(parsed: ParsedCSR, usages: string[]): boolean {
  if (parsed.organizations.length !== 1 || parsed.organizations[0] !== "system:nodes") return false;
  if (parsed.dnsNames.length > 0 || parsed.ips.length > 0) return false;
  if (!parsed.commonName.startsWith("system:node:")) return false;
  return (
    sameSet(usages, ["key encipherment", "digital signature", "client auth"]) ||
    sameSet(usages, ["digital signature", "client auth"])
  );
}

function isNodeClientCert(csr: CertificateSigningRequest, parsed: ParsedCSR): boolean {
  return (
    csr.spec.signerName === KUBELET_CLIENT_SIGNER &&
    isKubeletClientCSR(parsed, csr.spec.usages ?? [])
  );
}

/** The recognizers in upstream's order: a node renewing its own certificate first. */
export const RECOGNIZERS: readonly Recognizer[] = [
  {
    recognize: (csr, parsed) =>
      csr.spec.username === parsed.commonName && isNodeClientCert(csr, parsed),
    subresource: "selfnodeclient",
    message: "Auto approving self kubelet client certificate after SubjectAccessReview.",
  },
  {
    recognize: isNodeClientCert,
    subresource: "nodeclient",
    message: "Auto approving kubelet client certificate after SubjectAccessReview.",
  },
];

function hasCondition(csr: CertificateSigningRequest, type: string): boolean {
  return (csr.status?.conditions ?? []).some((c) => c.type === type);
}

/** Whether the approver has anything to decide (no certificate, neither approved nor denied). */
export function awaitsApproval(csr: CertificateSigningRequest): boolean {
  return !csr.status?.certificate && !hasCondition(csr, "Approved") && !hasCondition(csr, "Denied");
}

/** The review that asks whether the requester of `csr` may use a recognizer's permission. */
export function approvalReview(
  csr: CertificateSigningRequest,
  subresource: string,
): SubjectAccessReview {
  const spec: SubjectAccessReview["spec"] = {
    resourceAttributes: {
      group: "certificates.k8s.io",
      resource: "certificatesigningrequests",
      verb: "create",
      subresource,
      version: "*",
    },
  };
  if (csr.spec.username) spec.user = csr.spec.username;
  if (csr.spec.uid) spec.uid = csr.spec.uid;
  if (csr.spec.groups) spec.groups = csr.spec.groups;
  if (csr.spec.extra) spec.extra = csr.spec.extra;
  return { apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview", spec };
}

export function approvedCondition(message: string): CertificateSigningRequestCondition {
  return { type: "Approved", status: "True", reason: "AutoApproved", message };
}

export const csrApprovingDescriptor: ControllerDescriptor = {
  name: "csrapproving",
  aliases: ["certificatesigningrequest-approving-controller"],
  serviceAccount: "certificate-controller",
  async start(ctx, signal) {
    const csrs = ctx.informers.informer("certificates.k8s.io/v1/CertificateSigningRequest");
    const api = ctx.client.resource("certificates.k8s.io/v1/CertificateSigningRequest");
    const reviews = ctx.client.resource("authorization.k8s.io/v1/SubjectAccessReview");
    const c = controller({
      name: "csrapproving",
      informers: ctx.informers,
      for: "certificates.k8s.io/v1/CertificateSigningRequest",
      workers: ctx.options.concurrency.csrapproving ?? 5,
      clock: ctx.clock,
      onError: (err, req) => ctx.log.error(`Sync ${req.key} failed with : ${errorMessage(err)}`),
      reconcile: async ({ name }) => {
        const csr = csrs.store.get(name);
        if (!csr || !awaitsApproval(csr)) return;
        let parsed: ParsedCSR;
        try {
          parsed = parseCSR(Buffer.from(csr.spec.request, "base64").toString("utf8"));
        } catch (err) {
          throw new Error(`unable to parse csr "${name}": ${errorMessage(err)}`);
        }
        const tried: string[] = [];
        for (const r of RECOGNIZERS) {
          if (!r.recognize(csr, parsed)) continue;
          tried.push(r.subresource);
          const review = await reviews.create(approvalReview(csr, r.subresource));
          if (!review.status?.allowed) continue;
          const next = structuredClone(csr);
          next.status ??= {};
          next.status.conditions = [
            ...(next.status.conditions ?? []),
            approvedCondition(r.message),
          ];
          await api.subresource("PUT", name, "approval", next);
          return;
        }
        // Recognized but not allowed: look again later (the permission may be granted).
        if (tried.length > 0) return { requeue: true };
      },
    });
    await c.start(signal);
  },
};

const HOUR = 3600_000;
export const APPROVED_EXPIRATION = HOUR;
export const DENIED_EXPIRATION = HOUR;
export const FAILED_EXPIRATION = HOUR;
export const PENDING_EXPIRATION = 24 * HOUR;
const POLLING_INTERVAL = HOUR;

function olderThan(time: string | undefined, age: number, now: number): boolean {
  if (!time) return false;
  const t = Date.parse(time);
  return Number.isFinite(t) && t - now < -age;
}

/** Why the cleaner deletes a request at `now`, or undefined to keep it. */
export function csrCleanupReason(csr: CertificateSigningRequest, now: number): string | undefined {
  const conditions = csr.status?.conditions ?? [];
  const cert = csr.status?.certificate;
  if (cert) {
    try {
      const pem = Buffer.from(cert, "base64").toString("utf8");
      const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem);
      if (first && Date.parse(new X509Certificate(first[0]).validTo) < now)
        return "issued certificate expired";
    } catch {
      // an unreadable certificate is left to the other rules
    }
  }
  if (
    conditions.length === 0 &&
    olderThan(csr.metadata?.creationTimestamp, PENDING_EXPIRATION, now)
  )
    return "pending past its deadline";
  for (const c of conditions) {
    if (c.type === "Denied" && olderThan(c.lastUpdateTime, DENIED_EXPIRATION, now))
      return "denied past its deadline";
    if (c.type === "Failed" && olderThan(c.lastUpdateTime, FAILED_EXPIRATION, now))
      return "failed past its deadline";
    if (c.type === "Approved" && cert && olderThan(c.lastUpdateTime, APPROVED_EXPIRATION, now))
      return "issued past its deadline";
  }
  return undefined;
}

export const csrCleanerDescriptor: ControllerDescriptor = {
  name: "csrcleaner",
  aliases: ["certificatesigningrequest-cleaner-controller"],
  serviceAccount: "certificate-controller",
  async start(ctx, signal) {
    const csrs = ctx.informers.informer("certificates.k8s.io/v1/CertificateSigningRequest");
    const api = ctx.client.resource("certificates.k8s.io/v1/CertificateSigningRequest");
    if (!(await csrs.waitForSync(signal))) return;
    while (!signal.aborted) {
      for (const csr of csrs.store.list()) {
        const reason = csrCleanupReason(csr, ctx.clock.now());
        if (!reason) continue;
        const name = csr.metadata?.name ?? "";
        try {
          await api.delete(name);
          ctx.log.info(`Cleaned CSR "${name}": ${reason}`);
        } catch (err) {
          if (!isStatusError(err, "NotFound"))
            ctx.log.error(`unable to delete CSR "${name}": ${errorMessage(err)}`);
        }
      }
      await sleep(ctx.clock, POLLING_INTERVAL, signal);
    }
  },
};
