import fs from "node:fs";
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from "node:crypto";

/**
 * Reading and writing the PEM files of a PKI directory. Every failure is a `PKIError` whose
 * message names the file and what is wrong with it, in the words upstream's certificate helpers
 * use, so that a broken or foreign file is easy to find.
 */
export class PKIError extends Error {
  override readonly name = "PKIError";
}

interface PemBlock {
  type: string;
  der: Buffer;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

/** The PEM blocks of a text, in order; text around and between them is ignored. */
export function pemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    const body = m[2]!;
    // Encrypted (RFC 1421) blocks carry headers; they are kept so the caller can refuse them.
    blocks.push({
      type: m[1]!,
      der: Buffer.from(body.replace(/^[^\n]*:[^\n]*\n/gm, ""), "base64"),
    });
  }
  return blocks;
}

export function encodePEM(type: string, der: ArrayBuffer | Uint8Array): string {
  const b64 = Buffer.from(der instanceof ArrayBuffer ? new Uint8Array(der) : der)
    .toString("base64")
    .replace(/(.{64})/g, "$1\n")
    .replace(/\n$/, "");
  return `-----BEGIN ${type}-----\n${b64}\n-----END ${type}-----\n`;
}

function readFile(file: string, what: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const reason =
      e.code === "ENOENT"
        ? `open ${file}: no such file or directory`
        : e.code === "EISDIR"
          ? `read ${file}: is a directory`
          : e.code === "EACCES"
            ? `open ${file}: permission denied`
            : e.message;
    throw new PKIError(`couldn't load the ${what} file ${file}: ${reason}`);
  }
}

function opensslReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/^error:[0-9A-F]+:/, "").replace(/^[a-z0-9 ]+ routines::/, "");
}

/** OpenSSL's reason for a parse failure, when it says more than that the data is not PEM. */
function detail(err: unknown): string {
  const reason = opensslReason(err);
  return /no start line|unsupported/i.test(reason) ? " (not valid DER)" : `: ${reason}`;
}

/** Parses every CERTIFICATE block of a PEM text; `file` only names the source in errors. */
export function parseCertificates(text: string, file: string): X509Certificate[] {
  const blocks = pemBlocks(text).filter((b) => b.type === "CERTIFICATE");
  if (blocks.length === 0) {
    throw new PKIError(
      `couldn't load the certificate file ${file}: data does not contain any valid RSA or ECDSA certificates`,
    );
  }
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b.der);
    } catch (err) {
      const which = blocks.length > 1 ? ` (certificate ${i + 1} of ${blocks.length})` : "";
      throw new PKIError(
        `couldn't load the certificate file ${file}${which}: x509: malformed certificate${detail(err)}`,
      );
    }
  });
}

/** The certificates of a PEM file, the first being the file's own (a chain may follow). */
export function loadCertificates(file: string): X509Certificate[] {
  return parseCertificates(readFile(file, "certificate"), file);
}

export function loadCertificate(file: string): X509Certificate {
  return loadCertificates(file)[0]!;
}

const PRIVATE_KEY_TYPES = new Set(["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"]);

/**
 * Parses an RSA or ECDSA private key in PKCS#8, PKCS#1 or SEC 1 PEM form; encrypted keys and
 * other key types are refused.
 */
export function parsePrivateKey(text: string, file: string): KeyObject {
  const fail = (why: string) => new PKIError(`couldn't load the private key file ${file}: ${why}`);
  const blocks = pemBlocks(text);
  const block = blocks.find((b) => PRIVATE_KEY_TYPES.has(b.type));
  if (!block) {
    if (blocks.some((b) => b.type === "ENCRYPTED PRIVATE KEY"))
      throw fail("the key is encrypted; an unencrypted key is needed");
    throw fail("data does not contain a valid RSA or ECDSA private key");
  }
  if (text.includes("Proc-Type: 4,ENCRYPTED"))
    throw fail("the key is encrypted; an unencrypted key is needed");
  let key: KeyObject;
  try {
    key = createPrivateKey({
      key: block.der,
      format: "der",
      type:
        block.type === "RSA PRIVATE KEY"
          ? "pkcs1"
          : block.type === "EC PRIVATE KEY"
            ? "sec1"
            : "pkcs8",
    });
  } catch (err) {
    throw fail(`malformed ${block.type}: ${opensslReason(err)}`);
  }
  if (key.asymmetricKeyType !== "rsa" && key.asymmetricKeyType !== "ec") {
    throw fail(`the private key is neither in RSA nor ECDSA format (${key.asymmetricKeyType})`);
  }
  return key;
}

export function loadPrivateKey(file: string): KeyObject {
  return parsePrivateKey(readFile(file, "private key"), file);
}

/** A PUBLIC KEY (SPKI) or RSA PUBLIC KEY (PKCS#1) PEM file. */
export function loadPublicKey(file: string): KeyObject {
  const text = readFile(file, "public key");
  const block = pemBlocks(text).find((b) => b.type === "PUBLIC KEY" || b.type === "RSA PUBLIC KEY");
  if (!block) {
    throw new PKIError(
      `couldn't load the public key file ${file}: data does not contain a valid RSA or ECDSA public key`,
    );
  }
  try {
    return createPublicKey({
      key: block.der,
      format: "der",
      type: block.type === "RSA PUBLIC KEY" ? "pkcs1" : "spki",
    });
  } catch (err) {
    throw new PKIError(
      `couldn't load the public key file ${file}: malformed ${block.type}: ${opensslReason(err)}`,
    );
  }
}

function spki(key: KeyObject): Buffer {
  return (key.type === "private" ? createPublicKey(key) : key).export({
    format: "der",
    type: "spki",
  });
}

/** Whether a private (or public) key is the one the certificate was issued for. */
export function keyMatchesCertificate(key: KeyObject, cert: X509Certificate): boolean {
  return spki(key).equals(spki(cert.publicKey));
}

export function keysMatch(a: KeyObject, b: KeyObject): boolean {
  return spki(a).equals(spki(b));
}

/** The DNS names and IP addresses of a certificate's subjectAltName extension. */
export function subjectAltNames(cert: X509Certificate): { dns: string[]; ips: string[] } {
  const dns: string[] = [];
  const ips: string[] = [];
  for (const entry of (cert.subjectAltName ?? "").split(/,\s*/)) {
    if (entry.startsWith("DNS:")) dns.push(entry.slice(4));
    else if (entry.startsWith("IP Address:")) ips.push(entry.slice(11));
  }
  return { dns, ips };
}

/**
 * Writes a file so that readers see either the old or the new whole content: the data goes to a
 * temporary file beside it, which is then renamed into place.
 */
export function writeFileAtomic(file: string, data: string, mode: number): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data, { mode });
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, file);
}
