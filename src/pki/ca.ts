import { webcrypto, randomBytes, X509Certificate, type KeyObject } from "node:crypto";
import { isIP } from "node:net";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import {
  encodePEM,
  keyMatchesCertificate,
  loadCertificate,
  loadPrivateKey,
  PKIError,
} from "./pem.js";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

/**
 * The key types a PKI can be made of, named as kubeadm's `encryptionAlgorithm` names them.
 * ECDSA P-256 is the default: a key takes a fraction of a millisecond to make, where RSA 2048
 * takes tens of milliseconds.
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

function keyParams(alg: KeyAlgorithm): RsaHashedKeyGenParams | EcKeyGenParams {
  switch (alg) {
    case "ECDSA-P256":
      return { name: "ECDSA", namedCurve: "P-256" };
    case "ECDSA-P384":
      return { name: "ECDSA", namedCurve: "P-384" };
    default:
      return {
        name: "RSASSA-PKCS1-v1_5",
        modulusLength: Number(alg.slice(4)),
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: "SHA-256",
      };
  }
}

interface RsaHashedKeyGenParams {
  name: "RSASSA-PKCS1-v1_5";
  modulusLength: number;
  publicExponent: Uint8Array;
  hash: string;
}
interface EcKeyGenParams {
  name: "ECDSA";
  namedCurve: string;
}

/** The signature algorithm a key signs with: SHA-256 for RSA and P-256, SHA-384 for P-384. */
function signingAlgorithm(key: CryptoKey): { name: string; hash: string } {
  const alg = key.algorithm as { name: string; namedCurve?: string };
  if (alg.name === "ECDSA") {
    return { name: "ECDSA", hash: alg.namedCurve === "P-384" ? "SHA-384" : "SHA-256" };
  }
  return { name: alg.name, hash: "SHA-256" };
}

export async function generateKeyPair(alg: KeyAlgorithm): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(keyParams(alg), true, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
}

export async function privateKeyPEM(key: CryptoKey): Promise<string> {
  return encodePEM("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", key));
}

export async function publicKeyPEM(key: CryptoKey): Promise<string> {
  return encodePEM("PUBLIC KEY", await webcrypto.subtle.exportKey("spki", key));
}

/** A node:crypto private key as a WebCrypto signing key (RSA PKCS#1 v1.5 or ECDSA). */
async function signingKey(key: KeyObject): Promise<CryptoKey> {
  const der = key.export({ format: "der", type: "pkcs8" });
  if (key.asymmetricKeyType === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const namedCurve =
      curve === "prime256v1"
        ? "P-256"
        : curve === "secp384r1"
          ? "P-384"
          : curve === "secp521r1"
            ? "P-521"
            : undefined;
    if (!namedCurve) throw new PKIError(`unsupported ECDSA curve ${curve ?? "(unknown)"}`);
    return webcrypto.subtle.importKey("pkcs8", der, { name: "ECDSA", namedCurve }, false, ["sign"]);
  }
  return webcrypto.subtle.importKey(
    "pkcs8",
    der,
    { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    false,
    ["sign"],
  );
}

/** A random positive serial number of 128 bits, as hex. */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  if (bytes[0] === 0) bytes[0] = 1;
  return bytes.toString("hex");
}

/** A subject in Go's order (O before CN), which `openssl x509 -subject` also prints. */
function subjectName(commonName: string, organizations: string[] = []): x509.JsonName {
  return [...organizations.map((o) => ({ O: [o] })), { CN: [commonName] }];
}

/** A certificate authority able to sign: its certificate and private key. */
export interface CertificateAuthority {
  cert: X509Certificate;
  certPEM: string;
  /** Absent for an existing CA whose key is kept elsewhere (it can only verify). */
  key?: CryptoKey;
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
 * A new self-signed CA, as kubeadm makes its CAs: basic constraints CA:TRUE (critical), key usage
 * digital signature, key encipherment and certificate signing (critical), a subject key
 * identifier, valid ten years (or `validityMs`) from five minutes ago.
 */
export async function createCA(
  commonName: string,
  alg: KeyAlgorithm,
  now = new Date(),
  validityMs = CA_VALIDITY_MS,
): Promise<CertificateAuthority & { keyPEM: string; key: CryptoKey }> {
  const keys = await generateKeyPair(alg);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: subjectName(commonName),
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + validityMs),
    keys,
    signingAlgorithm: signingAlgorithm(keys.privateKey),
    extensions: [
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature |
          x509.KeyUsageFlags.keyEncipherment |
          x509.KeyUsageFlags.keyCertSign,
        true,
      ),
      new x509.BasicConstraintsExtension(true, undefined, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const certPEM = cert.toString("pem") + "\n";
  return {
    cert: new X509Certificate(certPEM),
    certPEM,
    key: keys.privateKey,
    keyPEM: await privateKeyPEM(keys.privateKey),
  };
}

/**
 * Loads a CA from its PEM files and checks that it is one: the certificate must say CA:TRUE and
 * the key, when present, must belong to it. `keyFile` may be missing only when `keyOptional`.
 */
export async function loadCA(
  certFile: string,
  keyFile: string,
  opts: { keyOptional?: boolean; name?: string } = {},
): Promise<CertificateAuthority> {
  const cert = loadCertificate(certFile);
  const name = opts.name ?? certFile;
  if (!cert.ca) throw new PKIError(`certificate ${certFile} is not a CA (${name})`);
  let keyObject: KeyObject | undefined;
  try {
    keyObject = loadPrivateKey(keyFile);
  } catch (err) {
    if (!opts.keyOptional || !(err instanceof PKIError) || !/no such file/.test(err.message))
      throw err;
  }
  if (keyObject && !keyMatchesCertificate(keyObject, cert)) {
    throw new PKIError(
      `the private key file ${keyFile} does not match the certificate ${certFile}`,
    );
  }
  return {
    cert,
    certPEM: cert.toString(),
    key: keyObject ? await signingKey(keyObject) : undefined,
  };
}

/**
 * Issues a certificate and a new key from a CA, as kubeadm does: basic constraints CA:FALSE
 * (critical), key usage digital signature and key encipherment (critical), the given extended key
 * usages, the subject alternative names, an authority key identifier; valid one year from five
 * minutes ago, never past the CA's own end.
 */
export async function issueCertificate(
  ca: CertificateAuthority,
  spec: CertificateSpec,
  alg: KeyAlgorithm,
  now = new Date(),
): Promise<IssuedCertificate> {
  if (!ca.key) throw new PKIError("the CA's private key is needed to sign");
  const keys = await generateKeyPair(alg);
  const caCert = new x509.X509Certificate(ca.cert.raw);
  const caEnd = new Date(ca.cert.validTo);
  let notAfter = new Date(now.getTime() + (spec.validityMs ?? CERT_VALIDITY_MS));
  if (notAfter > caEnd) notAfter = caEnd;
  const extensions: x509.Extension[] = [
    new x509.KeyUsagesExtension(
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
      true,
    ),
    new x509.ExtendedKeyUsageExtension(
      spec.usages.map((u) =>
        u === "serverAuth" ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
      ),
    ),
    new x509.BasicConstraintsExtension(false, undefined, true),
  ];
  const ski = caCert.getExtension(x509.SubjectKeyIdentifierExtension);
  extensions.push(
    ski
      ? new x509.AuthorityKeyIdentifierExtension(ski.keyId)
      : await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
  );
  const names = [
    ...(spec.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
    ...(spec.ips ?? []).map((value) => ({ type: "ip" as const, value })),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: subjectName(spec.commonName, spec.organizations),
    issuer: caCert.subjectName,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    signingAlgorithm: signingAlgorithm(ca.key),
    extensions,
  });
  const certPEM = cert.toString("pem") + "\n";
  return {
    cert: new X509Certificate(certPEM),
    certPEM,
    keyPEM: await privateKeyPEM(keys.privateKey),
  };
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
