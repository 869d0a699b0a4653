/**
 * The CertificateSigningRequest plugins, as upstream 1.32's: CertificateApproval (approving or
 * denying through /approval needs `approve` on the `signers` resource for the request's
 * signerName or its `<domain>/*`), CertificateSigning (setting status.certificate or the
 * conditions through /status needs `sign`), and CertificateSubjectRestriction (no request to the
 * kube-apiserver-client signer may ask for the system:masters group). Also the small CSR reader
 * they and NodeRestriction use.
 */
import { children, DERError, readElement } from "../../../pki/der.js";
import { pemBlocks } from "../../../pki/pem.js";
import { attributes as authzAttributes } from "../../auth/types.js";
import { deepEqual } from "../../strategies/util.js";
import type { AdmissionAttributes, AdmissionContext, AdmissionPlugin } from "../types.js";
import { admissionForbidden, goQuote, isResource } from "./util.js";

export const KUBE_APISERVER_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client";

const OID_COMMON_NAME = Buffer.from([0x55, 0x04, 0x03]);
const OID_ORGANIZATION = Buffer.from([0x55, 0x04, 0x0a]);

/**
 * The subject of a CSR as it travels in spec.request (base64 of PEM): its common name and
 * organizations. Throws with upstream's ParseCSR messages for what is not a CSR.
 */
export function parseCSR(request: string): { commonName: string; organizations: string[] } {
  const pem = Buffer.from(request, "base64").toString("latin1");
  const block = pemBlocks(pem)[0];
  if (!block || block.type !== "CERTIFICATE REQUEST") {
    throw new Error("PEM block type must be CERTIFICATE REQUEST");
  }
  const der = Buffer.from(block.der);
  try {
    const top = readElement(der, 0);
    const info = children(der, top)[0];
    if (!info) throw new DERError("empty certificate request");
    const subject = children(der, info)[1];
    if (!subject || subject.tag !== 0x30) throw new DERError("certificate request without subject");
    let commonName = "";
    const organizations: string[] = [];
    for (const rdn of children(der, subject)) {
      for (const atv of children(der, rdn)) {
        const [oid, value] = children(der, atv);
        if (!oid || !value) continue;
        const id = der.subarray(oid.contentStart, oid.end);
        const text = der.subarray(value.contentStart, value.end).toString("utf8");
        if (id.equals(OID_COMMON_NAME)) commonName = text;
        else if (id.equals(OID_ORGANIZATION)) organizations.push(text);
      }
    }
    return { commonName, organizations };
  } catch (err) {
    if (err instanceof DERError) throw new Error(`asn1: ${err.message}`);
    throw err;
  }
}

/**
 * Whether the user may `verb` the signer (upstream's IsAuthorizedForSignerName): on the name
 * itself, else on `<domain>/*`. Without an authorizer nobody may.
 */
function authorizedForSigner(
  ctx: AdmissionContext,
  a: AdmissionAttributes,
  verb: string,
  signerName: string,
): boolean {
  if (!ctx.authorize) return false;
  const ask = (name: string) =>
    ctx.authorize!(
      authzAttributes({
        user: a.user,
        verb,
        name,
        apiGroup: "certificates.k8s.io",
        apiVersion: "*",
        resource: "signers",
        resourceRequest: true,
      }),
    ).decision === "allow";
  return ask(signerName) || ask(`${signerName.split("/")[0]}/*`);
}

const signerOf = (o: unknown) =>
  ((o as { spec?: { signerName?: string } } | undefined)?.spec?.signerName ?? "") as string;

export const certificateApproval: AdmissionPlugin = {
  name: "CertificateApproval",
  validate(a, ctx) {
    if (a.operation !== "UPDATE" || a.subresource !== "approval") return;
    if (!isResource(a, "certificates.k8s.io", "certificatesigningrequests")) return;
    // The old object's signer: the approval endpoint must not be a way to change it.
    const signer = signerOf(a.oldObject);
    if (!authorizedForSigner(ctx, a, "approve", signer)) {
      throw admissionForbidden(
        a,
        `user not permitted to approve requests with signerName ${goQuote(signer)}`,
      );
    }
  },
};

export const certificateSigning: AdmissionPlugin = {
  name: "CertificateSigning",
  validate(a, ctx) {
    if (a.operation !== "UPDATE" || a.subresource !== "status") return;
    if (!isResource(a, "certificates.k8s.io", "certificatesigningrequests")) return;
    const status = (o: unknown) =>
      ((o as { status?: Record<string, unknown> } | undefined)?.status ?? {}) as Record<
        string,
        unknown
      >;
    const before = status(a.oldObject);
    const after = status(a.object);
    if (
      deepEqual(before.certificate ?? null, after.certificate ?? null) &&
      deepEqual(before.conditions ?? [], after.conditions ?? [])
    ) {
      return;
    }
    const signer = signerOf(a.oldObject);
    if (!authorizedForSigner(ctx, a, "sign", signer)) {
      throw admissionForbidden(
        a,
        `user not permitted to sign requests with signerName ${goQuote(signer)}`,
      );
    }
  },
};

export const certificateSubjectRestriction: AdmissionPlugin = {
  name: "CertificateSubjectRestriction",
  validate(a) {
    if (a.operation !== "CREATE" || a.subresource !== "") return;
    if (!isResource(a, "certificates.k8s.io", "certificatesigningrequests")) return;
    if (signerOf(a.object) !== KUBE_APISERVER_CLIENT_SIGNER) return;
    let subject;
    try {
      subject = parseCSR((a.object?.spec as { request?: string } | undefined)?.request ?? "");
    } catch (err) {
      throw admissionForbidden(a, `failed to parse CSR: ${(err as Error).message}`);
    }
    if (subject.organizations.includes("system:masters")) {
      throw admissionForbidden(
        a,
        `use of ${KUBE_APISERVER_CLIENT_SIGNER} signer with system:masters group is not allowed`,
      );
    }
  },
};
