/**
 * Client certificate authentication (`--client-ca-file`), as upstream's x509 authenticator: a
 * certificate presented in the TLS handshake that chains to one of the CAs, is within its
 * validity period and may be used for client authentication names the user (the subject's CN)
 * and their groups (its O values). The TLS server asks for a certificate without verifying it
 * (`requestCert: true, rejectUnauthorized: false`); the chain is verified here, so that a
 * certificate from another CA gets 401 rather than a failed handshake.
 */
import { createHash, X509Certificate } from "node:crypto";
import fs from "node:fs";
import type { DetailedPeerCertificate, PeerCertificate, TLSSocket } from "node:tls";
import {
  AuthenticationError,
  CREDENTIAL_ID_KEY,
  type AuthRequest,
  type Authenticator,
  type UserInfo,
} from "../types.js";

const CLIENT_AUTH_EKU = "1.3.6.1.5.5.7.3.2";
const ANY_EKU = "2.5.29.37.0";
const MAX_CHAIN = 10;

/** The certificates of a PEM bundle (a CA file may hold several). */
export function parseCertificates(pem: string | Buffer): X509Certificate[] {
  const text = typeof pem === "string" ? pem : pem.toString("utf8");
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

function hexColons(buf: Buffer | undefined): string {
  if (!buf || buf.length === 0) return "";
  return [...buf].map((b) => b.toString(16).padStart(2, "0")).join(":");
}

/** The value of an extension (OID given as its DER bytes) found by a light scan of the DER. */
function extensionValue(der: Buffer, oid: number[]): Buffer | undefined {
  const needle = Buffer.from([0x06, oid.length, ...oid]);
  const at = der.indexOf(needle);
  if (at < 0) return undefined;
  let i = at + needle.length;
  if (der[i] === 0x01) i += 3; // critical BOOLEAN
  if (der[i] !== 0x04) return undefined;
  return readTLV(der, i)?.value;
}

function readTLV(buf: Buffer, i: number): { value: Buffer; end: number } | undefined {
  let len = buf[i + 1];
  let start = i + 2;
  if (len === undefined) return undefined;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let k = 0; k < n; k++) len = (len << 8) | (buf[start + k] ?? 0);
    start += n;
  }
  return { value: buf.subarray(start, start + len), end: start + len };
}

/** Upstream's description of a certificate in errors: serial (decimal), SKID and AKID. */
export function certificateIdentifier(cert: X509Certificate): string {
  const der = cert.raw;
  const skidOctets = extensionValue(der, [0x55, 0x1d, 0x0e]);
  const skid = skidOctets ? readTLV(skidOctets, 0)?.value : undefined;
  const akidOctets = extensionValue(der, [0x55, 0x1d, 0x23]);
  let akid: Buffer | undefined;
  if (akidOctets) {
    const seq = readTLV(akidOctets, 0)?.value;
    if (seq && seq[0] === 0x80) akid = readTLV(seq, 0)?.value;
  }
  return `SN=${BigInt(`0x${cert.serialNumber}`).toString()}, SKID=${hexColons(skid)}, AKID=${hexColons(akid)}`;
}

function goTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function validity(cert: X509Certificate): { from: number; to: number } {
  return { from: Date.parse(cert.validFrom), to: Date.parse(cert.validTo) };
}

function allowsClientAuth(cert: X509Certificate): boolean {
  const eku = cert.keyUsage;
  return !eku || eku.length === 0 || eku.includes(CLIENT_AUTH_EKU) || eku.includes(ANY_EKU);
}

/** What a verified certificate resolves to; kept per connection. */
interface Verified {
  user: UserInfo | null;
  /** The chain's validity window (ms since the epoch). */
  from: number;
  to: number;
  leaf: X509Certificate;
}

export class X509Authenticator implements Authenticator {
  private readonly roots: X509Certificate[];
  private readonly perSocket = new WeakMap<object, Verified | AuthenticationError>();

  /** `ca`: the PEM text of the client CA bundle, or its certificates. */
  constructor(
    ca: string | Buffer | X509Certificate[],
    private readonly now: () => number = Date.now,
  ) {
    this.roots = Array.isArray(ca) ? ca : parseCertificates(ca);
    if (this.roots.length === 0) throw new Error("no certificates found in the client CA data");
  }

  static fromFile(path: string): X509Authenticator {
    let data: Buffer;
    try {
      data = fs.readFileSync(path);
    } catch (err) {
      throw new Error(`failed to read client CA file ${path}: ${(err as Error).message}`);
    }
    const certs = parseCertificates(data);
    if (certs.length === 0)
      throw new Error(`data does not contain any valid RSA or ECDSA certificates in ${path}`);
    return new X509Authenticator(certs);
  }

  authenticate(req: AuthRequest): UserInfo | null {
    const socket = req.socket as Partial<TLSSocket>;
    if (typeof socket.getPeerCertificate !== "function") return null;
    let v = this.perSocket.get(socket);
    if (!v) {
      const peer = socket.getPeerCertificate(true);
      if (!peer || !peer.raw) return null;
      v = this.verify(peer);
      this.perSocket.set(socket, v);
    }
    if (v instanceof AuthenticationError) throw v;
    const now = this.now();
    if (now < v.from || now > v.to) {
      throw new AuthenticationError(
        `verifying certificate ${certificateIdentifier(v.leaf)} failed: x509: certificate has expired or is not yet valid: current time ${goTime(new Date(now))} is ${now < v.from ? "before" : "after"} ${goTime(new Date(now < v.from ? v.from : v.to))}`,
      );
    }
    return v.user;
  }

  /** Verifies a presented chain; the result is an error for an invalid one. */
  private verify(peer: DetailedPeerCertificate): Verified | AuthenticationError {
    const leaf = new X509Certificate(peer.raw);
    const intermediates: X509Certificate[] = [];
    const seen = new Set<string>([peer.fingerprint256]);
    for (
      let p = peer.issuerCertificate;
      p && !seen.has(p.fingerprint256);
      p = p.issuerCertificate
    ) {
      seen.add(p.fingerprint256);
      intermediates.push(new X509Certificate(p.raw));
    }
    const fail = (why: string) =>
      new AuthenticationError(
        `verifying certificate ${certificateIdentifier(leaf)} failed: ${why}`,
      );
    if (!allowsClientAuth(leaf))
      return fail("x509: certificate specifies an incompatible key usage");

    // Walk up from the leaf: a root that issued the current certificate ends the chain; an
    // intermediate CA the client sent moves up one level.
    let from = -Infinity;
    let to = Infinity;
    const window = (c: X509Certificate) => {
      const w = validity(c);
      from = Math.max(from, w.from);
      to = Math.min(to, w.to);
    };
    window(leaf);
    let current = leaf;
    let anchored = false;
    for (let depth = 0; depth < MAX_CHAIN && !anchored; depth++) {
      const root = this.roots.find((r) => current.checkIssued(r) && current.verify(r.publicKey));
      if (root) {
        window(root);
        anchored = true;
        break;
      }
      const next = intermediates.find(
        (c) => c.ca && c !== current && current.checkIssued(c) && current.verify(c.publicKey),
      );
      if (!next || !allowsClientAuth(next)) break;
      window(next);
      current = next;
    }
    if (!anchored) return fail("x509: certificate signed by unknown authority");
    const now = this.now();
    if (now < from || now > to) {
      return fail(
        `x509: certificate has expired or is not yet valid: current time ${goTime(new Date(now))} is ${now < from ? "before" : "after"} ${goTime(new Date(now < from ? from : to))}`,
      );
    }
    const user = userFromSubject(peer.subject, leaf);
    return { user, from, to, leaf };
  }
}

function values(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

/** CN is the user name and every O a group (upstream's CommonNameUserConversion). */
function userFromSubject(
  subject: PeerCertificate["subject"] | undefined,
  leaf: X509Certificate,
): UserInfo | null {
  const s = (subject ?? {}) as unknown as Record<string, string | string[] | undefined>;
  const cn = values(s.CN)[0] ?? "";
  if (!cn) return null;
  const id = `X509SHA256=${createHash("sha256").update(leaf.raw).digest("hex")}`;
  return { username: cn, groups: values(s.O), extra: { [CREDENTIAL_ID_KEY]: [id] } };
}
