import fs from "node:fs";
import path from "node:path";
import { webcrypto } from "node:crypto";
import { isIP } from "node:net";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const EC_KEY = { name: "ECDSA", namedCurve: "P-256" } as const;
const EC_SIGN = { name: "ECDSA", hash: "SHA-256" } as const;

export interface ServingCert {
  certFile: string;
  keyFile: string;
  /** Whether the files were created now (false: they existed and were reused). */
  created: boolean;
}

function pemKey(der: ArrayBuffer): string {
  const b64 = Buffer.from(der)
    .toString("base64")
    .replace(/(.{64})/g, "$1\n")
    .replace(/\n$/, "");
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

function serial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
    .toString("hex")
    .replace(/^[89a-f]/, "1");
}

/**
 * The API server's serving certificate when none is given, as upstream kube-apiserver makes it:
 * a self-signed CA (`<host>-ca@<unix time>`) and a certificate for `host` signed by it, valid one
 * year, with the given DNS names and IP addresses; `apiserver.crt` holds the certificate followed
 * by the CA, `apiserver.key` the key. Existing files are reused.
 */
export async function ensureSelfSignedServingCert(
  certDir: string,
  host: string,
  alternateNames: string[],
): Promise<ServingCert> {
  const certFile = path.join(certDir, "apiserver.crt");
  const keyFile = path.join(certDir, "apiserver.key");
  if (fs.existsSync(certFile) && fs.existsSync(keyFile))
    return { certFile, keyFile, created: false };

  const now = new Date();
  const notBefore = new Date(now.getTime() - 60 * 60 * 1000);
  const notAfter = new Date(now.getTime() + 365 * 24 * 60 * 60 * 1000);
  const caKeys = await webcrypto.subtle.generateKey(EC_KEY, true, ["sign", "verify"]);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${host}-ca@${Math.floor(now.getTime() / 1000)}`,
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: EC_SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign |
          x509.KeyUsageFlags.digitalSignature |
          x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  const keys = await webcrypto.subtle.generateKey(EC_KEY, true, ["sign", "verify"]);
  const names = [...new Set([host, ...alternateNames])];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${host}@${Math.floor(now.getTime() / 1000)}`,
    issuer: ca.subject,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: EC_SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      await x509.AuthorityKeyIdentifierExtension.create(ca),
      new x509.SubjectAlternativeNameExtension(
        names.map((n) =>
          isIP(n) ? { type: "ip" as const, value: n } : { type: "dns" as const, value: n },
        ),
      ),
    ],
  });

  fs.mkdirSync(certDir, { recursive: true, mode: 0o755 });
  const key = pemKey(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
  fs.writeFileSync(keyFile, key, { mode: 0o600 });
  fs.writeFileSync(certFile, cert.toString("pem") + "\n" + ca.toString("pem") + "\n", {
    mode: 0o644,
  });
  return { certFile, keyFile, created: true };
}
