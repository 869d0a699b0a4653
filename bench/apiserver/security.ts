/**
 * What authentication, authorization and admission cost: the same creates and gets over HTTPS
 * against two API servers, one with AlwaysAllow and no admission plugins (anonymous requests),
 * one secured as a real cluster is (client certificates against --client-ca-file, Node,RBAC with
 * the bootstrap policy, the default admission plugins), the client a user whose rights come from
 * a RoleBinding of the `edit` ClusterRole (so RBAC resolves rules, not the system:masters
 * shortcut).
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { requestOnce, type Target, type ThroughputResult } from "./client.js";
import { startAPIServer, type ServerProc } from "./procs.js";
import {
  loadPods,
  plainTarget,
  runCreates,
  runGets,
  tlsTarget,
  type LoadResult,
  type LoopConfig,
} from "./workloads.js";

const k8tsBin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../bin/k8ts");

export interface SecurityRun {
  load?: LoadResult;
  gets?: ThroughputResult;
  creates?: ThroughputResult;
}

export interface SecurityResult {
  baseline: SecurityRun;
  secured: SecurityRun;
}

/** A CA and serving certificate from `k8ts certs`, and a user certificate it signs (openssl). */
function makePKI(dir: string): { pki: string; user: { cert: Buffer; key: Buffer; ca: Buffer } } {
  const pki = path.join(dir, "pki");
  execFileSync(
    k8tsBin,
    [
      "certs",
      "ca",
      "apiserver",
      "sa",
      `--cert-dir=${pki}`,
      "--apiserver-advertise-address=127.0.0.1",
    ],
    {
      stdio: "ignore",
    },
  );
  const key = path.join(dir, "bench.key");
  const csr = path.join(dir, "bench.csr");
  const crt = path.join(dir, "bench.crt");
  execFileSync("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key], {
    stdio: "ignore",
  });
  execFileSync(
    "openssl",
    ["req", "-new", "-key", key, "-out", csr, "-subj", "/CN=bench/O=bench-team"],
    { stdio: "ignore" },
  );
  execFileSync(
    "openssl",
    [
      "x509",
      "-req",
      "-in",
      csr,
      "-CA",
      path.join(pki, "ca.crt"),
      "-CAkey",
      path.join(pki, "ca.key"),
      "-CAcreateserial",
      "-out",
      crt,
      "-days",
      "2",
    ],
    { stdio: "ignore" },
  );
  return {
    pki,
    user: {
      cert: fs.readFileSync(crt),
      key: fs.readFileSync(key),
      ca: fs.readFileSync(path.join(pki, "ca.crt")),
    },
  };
}

async function post(target: Target, urlPath: string, body: object): Promise<void> {
  const r = await requestOnce(target, "POST", urlPath, JSON.stringify(body));
  if (r.status !== 201 && r.status !== 409) {
    throw new Error(`POST ${urlPath}: HTTP ${r.status}: ${r.body}`);
  }
}

/** Waits until the user's rights (aggregated `edit`) are in force. */
async function waitAllowed(server: ServerProc): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await requestOnce(
      tlsTarget(server),
      "GET",
      "/api/v1/namespaces/default/pods?limit=1",
    );
    if (r.status === 200) return;
    if (Date.now() > deadline) throw new Error(`the bench user is not allowed: HTTP ${r.status}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function measure(
  server: ServerProc,
  pods: number,
  loop: LoopConfig,
  log: (m: string) => void,
): Promise<SecurityRun> {
  const run: SecurityRun = {};
  run.load = await loadPods(server, pods, 64);
  if (run.load.errors > 0) throw new Error(`load: ${run.load.firstError}`);
  log(`    gets over HTTPS`);
  run.gets = await runGets(server, pods, loop, "default", "http1-tls");
  log(`    creates over HTTPS`);
  run.creates = await runCreates(server, "http1-tls", loop);
  return run;
}

export async function runSecurityComparison(
  root: string,
  pods: number,
  loop: LoopConfig,
  nodeArgs: (name: string) => string[],
  log: (m: string) => void,
  servers: Array<{ name: string; startMs: number }>,
): Promise<SecurityResult> {
  const result: SecurityResult = { baseline: {}, secured: {} };
  {
    const dir = path.join(root, "security-baseline");
    const server = await startAPIServer(dir, nodeArgs("security-baseline"), [
      "--authorization-mode=AlwaysAllow",
      "--disable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,TaintNodesByCondition,PodSecurity,Priority,DefaultTolerationSeconds,DefaultStorageClass,StorageObjectInUseProtection,PersistentVolumeClaimResize,RuntimeClass,CertificateApproval,CertificateSigning,ClusterTrustBundleAttest,CertificateSubjectRestriction,DefaultIngressClass,MutatingAdmissionWebhook,ValidatingAdmissionPolicy,ValidatingAdmissionWebhook,ResourceQuota",
    ]);
    servers.push({ name: "security-baseline", startMs: server.startMs });
    try {
      log("  AlwaysAllow, no admission plugins, anonymous");
      result.baseline = await measure(server, pods, loop, log);
    } finally {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  {
    const dir = path.join(root, "security-secured");
    fs.mkdirSync(dir, { recursive: true });
    const { pki, user } = makePKI(dir);
    const server = await startAPIServer(
      dir,
      nodeArgs("security-secured"),
      [
        `--tls-cert-file=${path.join(pki, "apiserver.crt")}`,
        `--tls-private-key-file=${path.join(pki, "apiserver.key")}`,
        `--client-ca-file=${path.join(pki, "ca.crt")}`,
        `--service-account-key-file=${path.join(pki, "sa.pub")}`,
        `--service-account-signing-key-file=${path.join(pki, "sa.key")}`,
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
      ],
      user,
    );
    servers.push({ name: "security-secured", startMs: server.startMs });
    try {
      // Set-up through the tutorial port (all powers): the account pods need, the user's rights.
      const admin = plainTarget(server);
      await post(admin, "/api/v1/namespaces/default/serviceaccounts", {
        apiVersion: "v1",
        kind: "ServiceAccount",
        metadata: { name: "default" },
      });
      await post(admin, "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: "bench-edit" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "edit" },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "bench" }],
      });
      await waitAllowed(server);
      log("  x509 client certificate, Node,RBAC (RoleBinding of edit), default admission");
      result.secured = await measure(server, pods, loop, log);
    } finally {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  return result;
}
