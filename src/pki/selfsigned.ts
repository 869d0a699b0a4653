import fs from "node:fs";
import path from "node:path";
import { CERT_VALIDITY_MS, createCA, issueCertificate, splitAltNames } from "./ca.js";
import { writeFileAtomic } from "./pem.js";

export interface ServingCert {
  certFile: string;
  keyFile: string;
  /** Whether the files were created now (false: they existed and were reused). */
  created: boolean;
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
  const seconds = Math.floor(now.getTime() / 1000);
  const ca = await createCA(`${host}-ca@${seconds}`, "ECDSA-P256", now, CERT_VALIDITY_MS);
  const { dnsNames, ips } = splitAltNames([host, ...alternateNames]);
  const cert = await issueCertificate(
    ca,
    { commonName: `${host}@${seconds}`, usages: ["serverAuth"], dnsNames, ips },
    "ECDSA-P256",
    now,
  );

  fs.mkdirSync(certDir, { recursive: true, mode: 0o755 });
  writeFileAtomic(keyFile, cert.keyPEM, 0o600);
  writeFileAtomic(certFile, cert.certPEM + ca.certPEM, 0o644);
  return { certFile, keyFile, created: true };
}
