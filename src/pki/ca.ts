import {
  createHash,
  createPublicKey,
  generateKeyPair as generateKeyPairCallback,
  randomBytes,
  sign,
  X509Certificate,
  type KeyObject,
} from "node:crypto";
import { isIP } from "node:net";
import { promisify } from "node:util";
import {
  bitString,
  boolean,
  certificateFields,
  directoryString,
  explicit,
  implicit,
  namedBits,
  nullValue,
  objectIdentifier,
  octetString,
  sequence,
  set,
  smallInteger,
  subjectPublicKeyBits,
  time,
  unsignedInteger,
} from "./der.js";
import {
  encodePEM,
  keyMatchesCertificate,
  loadCertificate,
  loadPrivateKey,
  PKIError,
} from "./pem.js";

const generateKeyPairAsync = promisify(generateKeyPairCallback);

/**
 * The key types a PKI can be made of, named as kubeadm's `encryptionAlgorithm` names them.
 * ECDSA P-256 is the default: a key takes a fraction of a millisecond to make, where RSA 2048
 * takes tens to hundreds of milliseconds.
 */
export const keyAlgorithms = [
  "ECDSA-P256",
  "ECDSA-P384",
  "RSA-2048",
  "RSA-3072",
  "RSA-4096",
] as const;
export type KeyAlgorithm = (typeof keyAlgorithms)[number];

export function isKeyAlgorithm(s: string): s is KeyAlgorithm {
  return (keyAlgorithms as readonly string[]).includes(s);
}

/** kubeadm's validity periods: CAs ten years, everything they sign one year. */
export const CA_VALIDITY_MS = 10 * 365 * 24 * 60 * 60 * 1000;
export const CERT_VALIDITY_MS = 365 * 24 * 60 * 60 * 1000;
/** Certificates start a little in the past so that clocks slightly behind still accept them. */
export const BACKDATE_MS = 5 * 60 * 1000;

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export async function generateKeyPair(alg: KeyAlgorithm): Promise<KeyPair> {
  if (alg.startsWith("ECDSA-")) {
    return generateKeyPairAsync("ec", { namedCurve: alg === "ECDSA-P384" ? "P-384" : "P-256" });
  }
  return generateKeyPairAsync("rsa", { modulusLength: Number(alg.slice(4)) });
}

/** A private key as PKCS#8 PEM (`BEGIN PRIVATE KEY`), which Go, openssl and jose all read. */
export function privateKeyPEM(key: KeyObject): string {
  return key.export({ format: "pem", type: "pkcs8" }) as string;
}

/** A public key as SubjectPublicKeyInfo PEM (`BEGIN PUBLIC KEY`). */
export function publicKeyPEM(key: KeyObject): string {
  return (key.type === "private" ? createPublicKey(key) : key).export({
    format: "pem",
    type: "spki",
  }) as string;
}

const OID = {
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
  ecdsaWithSHA256: "1.2.840.10045.4.3.2",
  ecdsaWithSHA384: "1.2.840.10045.4.3.3",
  ecdsaWithSHA512: "1.2.840.10045.4.3.4",
  sha256WithRSAEncryption: "1.2.840.113549.1.1.11",
};

/** The signature algorithm a key signs with, as AlgorithmIdentifier DER and digest name. */
function signatureAlgorithm(key: KeyObject): { id: Buffer; hash: string } {
  if (key.asymmetricKeyType === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === "secp384r1")
      return { id: sequence(objectIdentifier(OID.ecdsaWithSHA384)), hash: "sha384" };
    if (curve === "secp521r1")
      return { id: sequence(objectIdentifier(OID.ecdsaWithSHA512)), hash: "sha512" };
    return { id: sequence(objectIdentifier(OID.ecdsaWithSHA256)), hash: "sha256" };
  }
  if (key.asymmetricKeyType === "rsa") {
    return {
      id: sequence(objectIdentifier(OID.sha256WithRSAEncryption), nullValue()),
      hash: "sha256",
    };
  }
  throw new PKIError(`cannot sign with a ${key.asymmetricKeyType} key`);
}

/** Key usage bits (RFC 5280 4.2.1.3). */
const DIGITAL_SIGNATURE = 0;
const KEY_ENCIPHERMENT = 2;
const KEY_CERT_SIGN = 5;

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return sequence(objectIdentifier(oid), ...(critical ? [boolean(true)] : []), octetString(value));
}

/** RFC 5280's key identifier method 1: SHA-1 of the public key bits. */
function keyIdentifier(publicKey: KeyObject): Buffer {
  const spki = publicKey.export({ format: "der", type: "spki" });
  return createHash("sha1").update(subjectPublicKeyBits(spki)).digest();
}

/** A random positive serial number of 128 bits. */
function serialNumber(): Buffer {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes;
}

/** A subject in Go's order (O before CN), which `openssl x509 -subject` also prints. */
function name(commonName: string, organizations: string[] = []): Buffer {
  const rdn = (oid: string, value: string) =>
    set(sequence(objectIdentifier(oid), directoryString(value)));
  return sequence(
    ...organizations.map((o) => rdn(OID.organization, o)),
    rdn(OID.commonName, commonName),
  );
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split(".").map(Number));
  // Expand "::" and any embedded IPv4 tail into eight 16-bit groups.
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = ipBytes(v4[1]!);
    text = `${text.slice(0, v4.index)}${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups =
    tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

interface TBSParams {
  issuer: Buffer;
  subject: Buffer;
  notBefore: Date;
  notAfter: Date;
  publicKey: KeyObject;
  extensions: Buffer[];
}

function signCertificate(p: TBSParams, signer: KeyObject): { der: Buffer; pem: string } {
  const alg = signatureAlgorithm(signer);
  const tbs = sequence(
    explicit(0, smallInteger(2)),
    unsignedInteger(serialNumber()),
    alg.id,
    p.issuer,
    sequence(time(p.notBefore), time(p.notAfter)),
    p.subject,
    p.publicKey.export({ format: "der", type: "spki" }),
    explicit(3, sequence(...p.extensions)),
  );
  const signature = sign(alg.hash, tbs, signer);
  const der = sequence(tbs, alg.id, bitString(signature));
  return { der, pem: encodePEM("CERTIFICATE", der) };
}

/** A certificate authority able to sign: its certificate and private key. */
export interface CertificateAuthority {
  cert: X509Certificate;
  certPEM: string;
  /** Absent for an existing CA whose key is kept elsewhere (it can only verify). */
  key?: KeyObject;
}

/** What a new certificate is for. */
export interface CertificateSpec {
  commonName: string;
  organizations?: string[];
  /** Extended key usages. */
  usages: ("serverAuth" | "clientAuth")[];
  dnsNames?: string[];
  ips?: string[];
  validityMs?: number;
}

export interface IssuedCertificate {
  cert: X509Certificate;
  certPEM: string;
  keyPEM: string;
}

/**
 * A new self-signed CA, as kubeadm makes its CAs: key usage digital signature, key encipherment
 * and certificate signing (critical), basic constraints CA:TRUE (critical), a subject key
 * identifier; valid ten years (or `validityMs`) from five minutes ago.
 */
export async function createCA(
  commonName: string,
  alg: KeyAlgorithm,
  now = new Date(),
  validityMs = CA_VALIDITY_MS,
): Promise<CertificateAuthority & { keyPEM: string; key: KeyObject }> {
  const keys = await generateKeyPair(alg);
  const subject = name(commonName);
  const { der, pem } = signCertificate(
    {
      issuer: subject,
      subject,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + validityMs),
      publicKey: keys.publicKey,
      extensions: [
        extension(
          OID.keyUsage,
          true,
          namedBits([DIGITAL_SIGNATURE, KEY_ENCIPHERMENT, KEY_CERT_SIGN]),
        ),
        extension(OID.basicConstraints, true, sequence(boolean(true))),
        extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(keys.publicKey))),
      ],
    },
    keys.privateKey,
  );
  return {
    cert: new X509Certificate(der),
    certPEM: pem,
    key: keys.privateKey,
    keyPEM: privateKeyPEM(keys.privateKey),
  };
}

/**
 * Loads a CA from its PEM files and checks that it is one: the certificate must say CA:TRUE and
 * the key, when present, must belong to it. `keyFile` may be missing only when `keyOptional`.
 */
export function loadCA(
  certFile: string,
  keyFile: string,
  opts: { keyOptional?: boolean; name?: string } = {},
): CertificateAuthority {
  const cert = loadCertificate(certFile);
  if (!cert.ca)
    throw new PKIError(`certificate ${certFile} is not a CA (${opts.name ?? certFile})`);
  let key: KeyObject | undefined;
  try {
    key = loadPrivateKey(keyFile);
  } catch (err) {
    if (!opts.keyOptional || !(err instanceof PKIError) || !/no such file/.test(err.message))
      throw err;
  }
  if (key && !keyMatchesCertificate(key, cert)) {
    throw new PKIError(
      `the private key file ${keyFile} does not match the certificate ${certFile}`,
    );
  }
  return { cert, certPEM: cert.toString(), key };
}

/**
 * Issues a certificate and a new key from a CA, as kubeadm does: key usage digital signature and
 * key encipherment (critical), the given extended key usages, basic constraints CA:FALSE
 * (critical), an authority key identifier, the subject alternative names; valid one year from
 * five minutes ago, never past the CA's own end. The issuer is the CA's subject byte for byte.
 */
export async function issueCertificate(
  ca: CertificateAuthority,
  spec: CertificateSpec,
  alg: KeyAlgorithm,
  now = new Date(),
): Promise<IssuedCertificate> {
  if (!ca.key) throw new PKIError("the CA's private key is needed to sign");
  const keys = await generateKeyPair(alg);
  const caFields = certificateFields(ca.cert.raw);
  const caEnd = new Date(ca.cert.validTo);
  let notAfter = new Date(now.getTime() + (spec.validityMs ?? CERT_VALIDITY_MS));
  if (notAfter > caEnd) notAfter = caEnd;
  const extensions = [
    extension(OID.keyUsage, true, namedBits([DIGITAL_SIGNATURE, KEY_ENCIPHERMENT])),
    extension(
      OID.extKeyUsage,
      false,
      sequence(...spec.usages.map((u) => objectIdentifier(OID[u]))),
    ),
    extension(OID.basicConstraints, true, sequence()),
    extension(
      OID.authorityKeyIdentifier,
      false,
      sequence(implicit(0, caFields.subjectKeyId ?? keyIdentifier(ca.cert.publicKey))),
    ),
  ];
  const names = [
    ...(spec.dnsNames ?? []).map((n) => implicit(2, Buffer.from(n, "ascii"))),
    ...(spec.ips ?? []).map((ip) => implicit(7, ipBytes(ip))),
  ];
  if (names.length > 0) extensions.push(extension(OID.subjectAltName, false, sequence(...names)));
  const { der, pem } = signCertificate(
    {
      issuer: caFields.subject,
      subject: name(spec.commonName, spec.organizations),
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter,
      publicKey: keys.publicKey,
      extensions,
    },
    ca.key,
  );
  return { cert: new X509Certificate(der), certPEM: pem, keyPEM: privateKeyPEM(keys.privateKey) };
}

/**
 * A certificate for a key someone else holds (a CertificateSigningRequest's): the requested
 * subject byte for byte, the CA as issuer, kubeadm's extensions for a leaf; valid `validityMs`
 * (never past the CA's end) from five minutes ago.
 */
export function signPublicKey(
  ca: CertificateAuthority,
  subject: Buffer,
  publicKey: KeyObject,
  spec: Omit<CertificateSpec, "commonName" | "organizations">,
  now = new Date(),
): { cert: X509Certificate; certPEM: string } {
  if (!ca.key) throw new PKIError("the CA's private key is needed to sign");
  const caFields = certificateFields(ca.cert.raw);
  const caEnd = new Date(ca.cert.validTo);
  let notAfter = new Date(now.getTime() + (spec.validityMs ?? CERT_VALIDITY_MS));
  if (notAfter > caEnd) notAfter = caEnd;
  const extensions = [
    extension(OID.keyUsage, true, namedBits([DIGITAL_SIGNATURE, KEY_ENCIPHERMENT])),
    extension(
      OID.extKeyUsage,
      false,
      sequence(...spec.usages.map((u) => objectIdentifier(OID[u]))),
    ),
    extension(OID.basicConstraints, true, sequence()),
    extension(
      OID.authorityKeyIdentifier,
      false,
      sequence(implicit(0, caFields.subjectKeyId ?? keyIdentifier(ca.cert.publicKey))),
    ),
  ];
  const names = [
    ...(spec.dnsNames ?? []).map((n) => implicit(2, Buffer.from(n, "ascii"))),
    ...(spec.ips ?? []).map((ip) => implicit(7, ipBytes(ip))),
  ];
  if (names.length > 0) extensions.push(extension(OID.subjectAltName, false, sequence(...names)));
  const { der, pem } = signCertificate(
    {
      issuer: caFields.subject,
      subject,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter,
      publicKey,
      extensions,
    },
    ca.key,
  );
  return { cert: new X509Certificate(der), certPEM: pem };
}

/** Splits names into DNS names and IP addresses, dropping duplicates and keeping the order. */
export function splitAltNames(names: string[]): { dnsNames: string[]; ips: string[] } {
  const dnsNames: string[] = [];
  const ips: string[] = [];
  for (const n of names) {
    const list = isIP(n) ? ips : dnsNames;
    if (!list.includes(n)) list.push(n);
  }
  return { dnsNames, ips };
}
