/**
 * The scheduler's secure port (--secure-port, 10259 by default): /healthz, /livez and /readyz over
 * HTTPS, which the API server's componentstatuses probe reads. Without --tls-cert-file the
 * certificate is self-signed and made in memory at start, as upstream does when it is given no
 * certificate directory.
 */
import fs from "node:fs";
import https from "node:https";
import os from "node:os";
import { createCA, issueCertificate, splitAltNames, CERT_VALIDITY_MS } from "../pki/ca.js";

export interface ServingOptions {
  bindAddress: string;
  port: number;
  certFile?: string;
  keyFile?: string;
  /** Answers the failing check's name, or undefined when healthy. */
  check?: () => string | undefined;
}

async function selfSigned(): Promise<{ cert: string; key: string }> {
  const now = new Date();
  const seconds = Math.floor(now.getTime() / 1000);
  const host = "localhost";
  const ca = await createCA(`${host}-ca@${seconds}`, "ECDSA-P256", now, CERT_VALIDITY_MS);
  const { dnsNames, ips } = splitAltNames([host, os.hostname(), "127.0.0.1", "::1"]);
  const cert = await issueCertificate(
    ca,
    { commonName: `${host}@${seconds}`, usages: ["serverAuth"], dnsNames, ips },
    "ECDSA-P256",
    now,
  );
  return { cert: cert.certPEM + ca.certPEM, key: cert.keyPEM };
}

/** Starts serving; resolves with the listening server (close it to stop). */
export async function startSecureServing(o: ServingOptions): Promise<https.Server> {
  const tls =
    o.certFile && o.keyFile
      ? { cert: fs.readFileSync(o.certFile), key: fs.readFileSync(o.keyFile) }
      : await selfSigned();
  const server = https.createServer(tls, (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz" || path === "/livez" || path === "/readyz") {
      const failed = o.check?.();
      res.writeHead(failed ? 500 : 200, {
        "content-type": "text/plain; charset=utf-8",
        "x-content-type-options": "nosniff",
      });
      res.end(failed ? `[-]${failed} failed: reason withheld\n${path} check failed` : "ok");
      return;
    }
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
    res.end("404 page not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.bindAddress, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}
