import { isIP } from "node:net";
import fs from "node:fs";
import { createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import { defineCommand } from "../cli/command.js";
import { flag, type FlagValues } from "../cli/flags.js";
import { openStore, type StoreConfig } from "../storage/index.js";
import { ensureSelfSignedServingCert } from "../pki/selfsigned.js";
import { defaultAdvertiseAddress, firstServiceIP } from "../pki/certs.js";
import { APIServer } from "./server.js";
import { builtinResourceDefs } from "./resources.js";
import { Security } from "./security.js";
import { admissionPlugins } from "./admission/plugins/index.js";
import { loadEncryptionConfig } from "./encryption.js";
import { AuditLog, Auditor, loadAuditPolicy } from "./audit.js";
import { authorizationModeError } from "./auth/authorizer/modes.js";

export const apiserverFlags = {
  "etcd-servers": flag.strings(
    "List of etcd servers to connect with (scheme://ip:port), comma separated; the embedded store in --data-dir is used when empty",
  ),
  "etcd-cafile": flag.string("SSL Certificate Authority file used to secure etcd communication"),
  "etcd-certfile": flag.string("SSL certification file used to secure etcd communication"),
  "etcd-keyfile": flag.string("SSL key file used to secure etcd communication"),
  "etcd-prefix": flag.string("The prefix to prepend to all resource paths in etcd", "/registry"),
  "data-dir": flag.string(
    "Directory of the embedded store, when --etcd-servers is not given",
    "/var/lib/k8ts/server",
  ),
  "secure-port": flag.int(
    "The port on which to serve HTTPS with authentication and authorization. It cannot be switched off with 0",
    6443,
  ),
  "bind-address": flag.string(
    "The IP address on which to listen for the --secure-port port",
    "0.0.0.0",
  ),
  "advertise-address": flag.string(
    "The IP address on which to advertise the apiserver to members of the cluster",
  ),
  "tls-cert-file": flag.string(
    "File containing the default x509 Certificate for HTTPS; generated in --cert-dir when absent",
  ),
  "tls-private-key-file": flag.string(
    "File containing the default x509 private key matching --tls-cert-file",
  ),
  "cert-dir": flag.string(
    "The directory where the TLS certs are located; ignored if --tls-cert-file and --tls-private-key-file are provided",
    "/var/run/kubernetes",
  ),
  "insecure-port": flag.int(
    "Serve plain HTTP without authentication or authorization on this port (0 disables it); loopback addresses only",
    0,
  ),
  "insecure-bind-address": flag.string(
    "The loopback address on which to serve --insecure-port",
    "127.0.0.1",
  ),
  "service-cluster-ip-range": flag.string(
    "A CIDR notation IP range from which to assign service cluster IPs",
    "10.0.0.0/24",
  ),
  "service-node-port-range": flag.string(
    "A port range to reserve for services with NodePort visibility",
    "30000-32767",
  ),
  "event-ttl": flag.duration("Amount of time to retain events", 60 * 60 * 1000),
  "max-requests-inflight": flag.int(
    "The maximum number of non-mutating requests in flight at a given time",
    400,
  ),
  "client-ca-file": flag.string(
    "If set, any request presenting a client certificate signed by one of the authorities in the client-ca-file is authenticated with an identity corresponding to the CommonName of the client certificate",
  ),
  "token-auth-file": flag.string(
    "If set, the file that will be used to secure the secure port of the API server via token authentication",
  ),
  "service-account-key-file": flag.strings(
    "File containing PEM-encoded x509 RSA or ECDSA private or public keys, used to verify ServiceAccount tokens (can be given multiple times)",
  ),
  "service-account-issuer": flag.strings(
    "Identifier of the service account token issuer; the first one issues tokens, all are accepted (can be given multiple times)",
  ),
  "service-account-signing-key-file": flag.string(
    "Path to the file that contains the current private key of the service account token issuer",
  ),
  "api-audiences": flag.strings(
    "Identifiers of the API; the service account token authenticator checks tokens against them (defaults to the first --service-account-issuer)",
  ),
  "enable-bootstrap-token-auth": flag.bool(
    "Enable to allow secrets of type 'bootstrap.kubernetes.io/token' in the 'kube-system' namespace to be used for TLS bootstrapping authentication",
  ),
  "anonymous-auth": flag.bool(
    "Enables anonymous requests to the secure port of the API server. Requests that are not rejected by another authentication method are treated as anonymous requests (username system:anonymous, group system:unauthenticated)",
    true,
  ),
  "authorization-mode": flag.strings(
    "Ordered list of plug-ins to do authorization on secure port: AlwaysAllow, AlwaysDeny, RBAC, Node (comma separated)",
    ["AlwaysAllow"],
  ),
  "audit-policy-file": flag.string("Path to the file that defines the audit policy configuration"),
  "audit-log-path": flag.string(
    "If set, all requests coming to the apiserver will be logged to this file. '-' means standard out",
  ),
  "audit-log-maxage": flag.int(
    "The maximum number of days to retain old audit log files based on the timestamp encoded in their filename",
    0,
  ),
  "audit-log-maxbackup": flag.int("The maximum number of old audit log files to retain", 0),
  "audit-log-maxsize": flag.int(
    "The maximum size in megabytes of the audit log file before it gets rotated",
    0,
  ),
  "encryption-provider-config": flag.string(
    "The file containing configuration for encryption providers to be used for storing secrets in etcd",
  ),
  "enable-admission-plugins": flag.strings(
    "admission plugins that should be enabled in addition to default enabled ones (comma separated)",
  ),
  "disable-admission-plugins": flag.strings(
    "admission plugins that should be disabled although they are in the default enabled plugins list (comma separated)",
  ),
  "max-mutating-requests-inflight": flag.int(
    "The maximum number of mutating requests in flight at a given time; 0 means no limit",
    200,
  ),
};

function isLoopback(address: string): boolean {
  return address === "localhost" || address.startsWith("127.") || address === "::1";
}

/** Why a serving certificate and key cannot be used (naming the file), or undefined. */
function checkServingPair(certFile: string, keyFile: string): string | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(fs.readFileSync(certFile));
  } catch (err) {
    return `unable to load server certificate from ${certFile}: ${(err as Error).message}`;
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(fs.readFileSync(keyFile));
  } catch (err) {
    return `unable to load server private key from ${keyFile}: ${(err as Error).message}`;
  }
  if (!cert.checkPrivateKey(key)) {
    return `the private key ${keyFile} does not match the certificate ${certFile}`;
  }
  return undefined;
}

/** What a caller composing the API server (k8ts server) learns once it serves. */
export interface APIServerReady {
  url: string;
  caFile: string;
}

export type APIServerFlags = FlagValues<typeof apiserverFlags>;

/** Runs the API server with its flags until `signal` aborts; returns the exit code. */
export async function runAPIServer(
  f: APIServerFlags,
  signal: AbortSignal,
  hooks: { onReady?: (ready: APIServerReady) => void | Promise<void> } = {},
): Promise<number> {
  const fail = (message: string) => {
    process.stderr.write(`Error: ${message}\n`);
    return 1;
  };
  if (f["insecure-port"] > 0 && !isLoopback(f["insecure-bind-address"])) {
    return fail(
      `--insecure-bind-address=${f["insecure-bind-address"]} is not a loopback address: plain HTTP without authentication is only served on loopback`,
    );
  }
  if (!!f["tls-cert-file"] !== !!f["tls-private-key-file"]) {
    return fail("--tls-cert-file and --tls-private-key-file must be given together");
  }
  if (f["bind-address"] && !isIP(f["bind-address"])) {
    return fail(
      `invalid argument "${f["bind-address"]}" for "--bind-address" flag: failed to parse IP: "${f["bind-address"]}"`,
    );
  }
  const modeError = authorizationModeError(f["authorization-mode"]);
  if (modeError) return fail(modeError);
  let security: Security;
  try {
    security = new Security({
      clientCAFile: f["client-ca-file"],
      tokenAuthFile: f["token-auth-file"],
      serviceAccountKeyFiles: f["service-account-key-file"],
      serviceAccountIssuers: f["service-account-issuer"],
      serviceAccountSigningKeyFile: f["service-account-signing-key-file"],
      apiAudiences: f["api-audiences"],
      enableBootstrapTokenAuth: f["enable-bootstrap-token-auth"],
      anonymousAuth: f["anonymous-auth"],
      authorizationModes: f["authorization-mode"],
    });
  } catch (err) {
    return fail((err as Error).message);
  }
  for (const warning of security.warnings) process.stderr.write(`Warning: ${warning}\n`);
  let transformers;
  try {
    const file = f["encryption-provider-config"];
    if (file) transformers = loadEncryptionConfig(file);
  } catch (err) {
    return fail((err as Error).message);
  }
  let auditor: Auditor | undefined;
  try {
    const policyFile = f["audit-policy-file"];
    const logPath = f["audit-log-path"];
    if (policyFile && logPath) {
      auditor = new Auditor(
        loadAuditPolicy(policyFile),
        new AuditLog({
          path: logPath,
          maxAgeDays: f["audit-log-maxage"],
          maxBackups: f["audit-log-maxbackup"],
          maxSizeMB: f["audit-log-maxsize"],
        }),
      );
    }
  } catch (err) {
    return fail((err as Error).message);
  }
  let admission;
  try {
    admission = admissionPlugins(f["enable-admission-plugins"], f["disable-admission-plugins"]);
  } catch (err) {
    return fail((err as Error).message);
  }
  const bind = f["bind-address"];
  const advertise =
    f["advertise-address"] ??
    (bind !== "0.0.0.0" && bind !== "::" ? bind : defaultAdvertiseAddress());
  let serviceIP: string;
  try {
    serviceIP = firstServiceIP(f["service-cluster-ip-range"]);
  } catch (err) {
    return fail((err as Error).message);
  }
  const config: StoreConfig =
    f["etcd-servers"].length > 0
      ? {
          backend: "etcd",
          endpoints: f["etcd-servers"],
          caFile: f["etcd-cafile"],
          certFile: f["etcd-certfile"],
          keyFile: f["etcd-keyfile"],
        }
      : { backend: "sqlite", dataDir: f["data-dir"] };
  let certFile = f["tls-cert-file"];
  let keyFile = f["tls-private-key-file"];
  if (!certFile || !keyFile) {
    const generated = await ensureSelfSignedServingCert(f["cert-dir"], advertise, [
      "kubernetes",
      "kubernetes.default",
      "kubernetes.default.svc",
      "kubernetes.default.svc.cluster.local",
      "localhost",
      "127.0.0.1",
      serviceIP,
    ]);
    ({ certFile, keyFile } = generated);
    if (generated.created) {
      process.stderr.write(`Generated self-signed cert (${certFile}, ${keyFile})\n`);
    }
  }
  const servingError = checkServingPair(certFile!, keyFile!);
  if (servingError) return fail(servingError);
  let store;
  try {
    store = await openStore(config);
  } catch (err) {
    return fail((err as Error).message);
  }
  const server = new APIServer({
    store,
    resources: builtinResourceDefs(f["etcd-prefix"]),
    secure: { host: f["bind-address"], port: f["secure-port"], certFile, keyFile },
    insecure:
      f["insecure-port"] > 0
        ? { host: f["insecure-bind-address"], port: f["insecure-port"] }
        : undefined,
    security,
    admissionPlugins: admission.plugins,
    ...(transformers ? { transformers } : {}),
    ...(auditor ? { auditor } : {}),
    advertiseAddress: advertise,
    serviceIP,
    serviceClusterIPRange: f["service-cluster-ip-range"],
    serviceNodePortRange: f["service-node-port-range"],
    eventTTLSeconds: Math.round(f["event-ttl"] / 1000),
    maxRequestsInflight: f["max-requests-inflight"],
    maxMutatingRequestsInflight: f["max-mutating-requests-inflight"],
  });
  try {
    await server.start(signal);
  } catch (err) {
    await store.close();
    return fail((err as Error).message);
  }
  const secure = server.addresses.secure!;
  process.stderr.write(`Serving securely on ${f["bind-address"]}:${secure.port}\n`);
  await hooks.onReady?.({
    url: `https://${isLoopback(f["bind-address"]) || f["bind-address"] === "0.0.0.0" ? "127.0.0.1" : f["bind-address"]}:${secure.port}`,
    caFile: certFile!,
  });
  if (server.addresses.insecure) {
    process.stderr.write(
      `Serving insecurely on ${f["insecure-bind-address"]}:${server.addresses.insecure.port}\n`,
    );
  }
  await new Promise<void>((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true }),
  );
  await server.stop();
  await store.close();
  return 0;
}

export const apiserverCommand = defineCommand({
  name: "apiserver",
  summary: "Run the Kubernetes API server",
  upstream: "kube-apiserver",
  flags: apiserverFlags,
  run: (f, _args, signal) => runAPIServer(f, signal),
});
