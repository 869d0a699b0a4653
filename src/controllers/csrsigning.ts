/**
 * The CSR signing controller (upstream's csrsigning): approved CertificateSigningRequests of the
 * kubernetes.io signers get a certificate from the cluster CA (--cluster-signing-cert-file,
 * --cluster-signing-key-file) in status.certificate; requests a signer's rules refuse get a
 * Failed condition (reason SignerValidationFailure), as upstream.
 */
import { createPublicKey, verify, type KeyObject } from "node:crypto";
import type { CertificateSigningRequest } from "kubernetes-types/certificates/v1.js";
import { controller } from "../client/controller.js";
import { loadCA, signPublicKey, type CertificateAuthority } from "../pki/ca.js";
import { pemBlocks } from "../pki/pem.js";
import { errorMessage, type ControllerDescriptor } from "./context.js";

/** One DER element: its tag, where its content is, and the whole encoding. */
interface Element {
  tag: number;
  content: Buffer;
  raw: Buffer;
}

function readElement(buf: Buffer, at: number): { el: Element; next: number } {
  const tag = buf[at]!;
  let len = buf[at + 1]!;
  let offset = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[offset + i]!;
    offset += n;
  }
  if (offset + len > buf.length) throw new Error("truncated DER");
  return {
    el: { tag, content: buf.subarray(offset, offset + len), raw: buf.subarray(at, offset + len) },
    next: offset + len,
  };
}

function children(el: Element): Element[] {
  const out: Element[] = [];
  for (let at = 0; at < el.content.length;) {
    const { el: child, next } = readElement(el.content, at);
    out.push(child);
    at = next;
  }
  return out;
}

function oid(el: Element): string {
  const b = el.content;
  const parts = [Math.floor(b[0]! / 40), b[0]! % 40];
  let v = 0;
  for (let i = 1; i < b.length; i++) {
    v = v * 128 + (b[i]! & 0x7f);
    if (!(b[i]! & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join(".");
}

export interface ParsedCSR {
  subject: Buffer;
  commonName: string;
  organizations: string[];
  publicKey: KeyObject;
  dnsNames: string[];
  ips: string[];
  /** Whether the request's signature verifies with its own key. */
  signatureValid: boolean;
}

const SIGNATURE_HASHES: Record<string, string> = {
  "1.2.840.10045.4.3.2": "sha256",
  "1.2.840.10045.4.3.3": "sha384",
  "1.2.840.10045.4.3.4": "sha512",
  "1.2.840.113549.1.1.11": "sha256",
  "1.2.840.113549.1.1.12": "sha384",
  "1.2.840.113549.1.1.13": "sha512",
};

/** Reads a PKCS#10 CertificationRequest (PEM). */
export function parseCSR(pem: string): ParsedCSR {
  const block = pemBlocks(pem).find((b) => b.type === "CERTIFICATE REQUEST");
  if (!block) throw new Error("PEM block type must be CERTIFICATE REQUEST");
  const [info, algorithm, signature] = children(readElement(block.der, 0).el);
  if (!info || !algorithm || !signature) throw new Error("not a certificate request");
  const [, subject, spki, attributes] = children(info);
  if (!subject || !spki) throw new Error("not a certificate request");
  const publicKey = createPublicKey({ key: spki.raw, format: "der", type: "spki" });
  let commonName = "";
  const organizations: string[] = [];
  for (const rdn of children(subject)) {
    for (const atv of children(rdn)) {
      const [type, value] = children(atv);
      if (!type || !value) continue;
      const text = value.content.toString("utf8");
      if (oid(type) === "2.5.4.3") commonName = text;
      if (oid(type) === "2.5.4.10") organizations.push(text);
    }
  }
  const dnsNames: string[] = [];
  const ips: string[] = [];
  for (const attr of attributes ? children(attributes) : []) {
    const [type, values] = children(attr);
    if (!type || !values || oid(type) !== "1.2.840.113549.1.9.14") continue;
    for (const exts of children(values)) {
      for (const ext of children(exts)) {
        const parts = children(ext);
        if (!parts[0] || oid(parts[0]) !== "2.5.29.17") continue;
        const value = parts[parts.length - 1]!;
        for (const name of children(readElement(value.content, 0).el)) {
          if (name.tag === 0x82) dnsNames.push(name.content.toString("ascii"));
          if (name.tag === 0x87) {
            ips.push(
              name.content.length === 4
                ? [...name.content].join(".")
                : (name.content.toString("hex").match(/.{4}/g) ?? []).join(":"),
            );
          }
        }
      }
    }
  }
  const algId = oid(children(algorithm)[0]!);
  const hash = SIGNATURE_HASHES[algId];
  let signatureValid = false;
  try {
    // The BIT STRING's first byte counts unused bits (0).
    signatureValid = !!hash && verify(hash, info.raw, publicKey, signature.content.subarray(1));
  } catch {
    signatureValid = false;
  }
  return {
    subject: subject.raw,
    commonName,
    organizations,
    publicKey,
    dnsNames,
    ips,
    signatureValid,
  };
}

type Usage = "serverAuth" | "clientAuth";
const EXTENDED: Record<string, Usage> = {
  "client auth": "clientAuth",
  "server auth": "serverAuth",
};
const PLAIN = new Set(["digital signature", "key encipherment", "signing"]);

/**
 * Why a signer refuses a request (upstream's per-signer rules), or undefined. Returns the
 * extended usages to sign with otherwise.
 */
export function signerPolicy(
  signerName: string,
  csr: ParsedCSR,
  usages: string[],
): { refuse: string } | { usages: Usage[] } {
  const extended = usages.filter((u) => EXTENDED[u]).map((u) => EXTENDED[u]!);
  const unknown = usages.filter((u) => !EXTENDED[u] && !PLAIN.has(u));
  const isNode = csr.commonName.startsWith("system:node:") && csr.commonName.length > 12;
  const nodeOrg = csr.organizations.length === 1 && csr.organizations[0] === "system:nodes";
  switch (signerName) {
    case "kubernetes.io/kube-apiserver-client":
      if (unknown.length > 0 || !extended.includes("clientAuth") || extended.includes("serverAuth"))
        return { refuse: `invalid usage for client certificate: ${usages.join(",")}` };
      return { usages: ["clientAuth"] };
    case "kubernetes.io/kube-apiserver-client-kubelet":
      if (!isNode || !nodeOrg || csr.dnsNames.length > 0 || csr.ips.length > 0)
        return { refuse: "subject or names not allowed for a kubelet client certificate" };
      return { usages: ["clientAuth"] };
    case "kubernetes.io/kubelet-serving":
      if (!isNode || !nodeOrg || csr.dnsNames.length + csr.ips.length === 0)
        return { refuse: "subject or names not allowed for a kubelet serving certificate" };
      return { usages: ["serverAuth"] };
    case "kubernetes.io/legacy-unknown":
      return { usages: extended.length > 0 ? extended : ["clientAuth", "serverAuth"] };
    default:
      return { refuse: "" };
  }
}

function condition(csr: CertificateSigningRequest, type: string): boolean {
  return (csr.status?.conditions ?? []).some((c) => c.type === type && c.status !== "False");
}

export const csrSigningDescriptor: ControllerDescriptor = {
  name: "csrsigning",
  aliases: ["certificatesigningrequest-signing-controller"],
  serviceAccount: "certificate-controller",
  async start(ctx, signal) {
    const certFile = ctx.options.clusterSigningCertFile;
    const keyFile = ctx.options.clusterSigningKeyFile;
    if (!certFile || !keyFile) {
      ctx.log.info(
        "Skipping CSR signer controller: no --cluster-signing-cert-file and --cluster-signing-key-file",
      );
      return;
    }
    let ca: CertificateAuthority;
    try {
      ca = loadCA(certFile, keyFile);
    } catch (err) {
      ctx.log.error(`failed to start certificate controller: ${errorMessage(err)}`);
      return;
    }
    const csrs = ctx.informers.informer("certificates.k8s.io/v1/CertificateSigningRequest");
    const client = ctx.client.resource("certificates.k8s.io/v1/CertificateSigningRequest");
    const c = controller({
      name: "csrsigning",
      informers: ctx.informers,
      for: "certificates.k8s.io/v1/CertificateSigningRequest",
      workers: 1,
      clock: ctx.clock,
      onError: (err, req) => ctx.log.error(`syncing "${req.key}" failed: ${errorMessage(err)}`),
      reconcile: async ({ name }) => {
        const csr = csrs.store.get(name) as CertificateSigningRequest | undefined;
        if (!csr || csr.status?.certificate) return;
        if (!condition(csr, "Approved") || condition(csr, "Denied") || condition(csr, "Failed"))
          return;
        let parsed: ParsedCSR | undefined;
        let refuse: string | undefined;
        let usages: Usage[] = [];
        try {
          parsed = parseCSR(Buffer.from(csr.spec.request, "base64").toString("utf8"));
          if (!parsed.signatureValid) refuse = "the request's signature is not valid";
          else {
            const policy = signerPolicy(csr.spec.signerName, parsed, csr.spec.usages ?? []);
            if ("refuse" in policy) {
              if (!policy.refuse) return; // another signer's request
              refuse = policy.refuse;
            } else usages = policy.usages;
          }
        } catch (err) {
          refuse = `unable to parse csr: ${errorMessage(err)}`;
        }
        const fresh = structuredClone(csr);
        fresh.status ??= {};
        if (refuse !== undefined || !parsed) {
          const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
          fresh.status.conditions = [
            ...(fresh.status.conditions ?? []),
            {
              type: "Failed",
              status: "True",
              reason: "SignerValidationFailure",
              message: refuse ?? "",
              lastUpdateTime: now,
              lastTransitionTime: now,
            },
          ];
        } else {
          const seconds = csr.spec.expirationSeconds;
          const { certPEM } = signPublicKey(ca, parsed.subject, parsed.publicKey, {
            usages,
            dnsNames: parsed.dnsNames,
            ips: parsed.ips,
            ...(seconds ? { validityMs: seconds * 1000 } : {}),
          });
          fresh.status.certificate = Buffer.from(certPEM).toString("base64");
        }
        await client.updateStatus(fresh);
      },
    });
    await c.start(signal);
  },
};
