/**
 * What authentication and authorization cost: the same creates and gets over HTTPS against two
 * API servers with the default admission plugins, one with AlwaysAllow (anonymous requests), one
 * secured as a real cluster is (client certificates against --client-ca-file, Node,RBAC with the
 * bootstrap policy, NodeRestriction), the client a user whose rights come from a RoleBinding of
 * the `edit` ClusterRole (so RBAC resolves rules, not the system:masters shortcut).
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

/** Several closed loops' figures as one: requests and time summed, latencies of the last. */
function combine(runs: ThroughputResult[]): ThroughputResult {
  const requests = runs.reduce((n, r) => n + r.requests, 0);
  const elapsedMs = runs.reduce((n, r) => n + r.elapsedMs, 0);
  const last = runs[runs.length - 1]!;
  return {
    ...last,
    requests,
    errors: runs.reduce((n, r) => n + r.errors, 0),
    elapsedMs,
    opsPerSec: (requests * 1000) / elapsedMs,
  };
}

/** Rounds of each measurement, alternating between the two servers (this VM drifts by +-15%). */
const ROUNDS = 3;

export async function runSecurityComparison(
  root: string,
  pods: number,
  loop: LoopConfig,
  nodeArgs: (name: string) => string[],
  log: (m: string) => void,
  servers: Array<{ name: string; startMs: number }>,
): Promise<SecurityResult> {
  const result: SecurityResult = { baseline: {}, secured: {} };
  const baseDir = path.join(root, "security-baseline");
  const secDir = path.join(root, "security-secured");
  fs.mkdirSync(secDir, { recursive: true });
  const { pki, user } = makePKI(secDir);
  const started: ServerProc[] = [];
  try {
    const base = await startAPIServer(baseDir, nodeArgs("security-baseline"), [
      "--authorization-mode=AlwaysAllow",
    ]);
    started.push(base);
    servers.push({ name: "security-baseline", startMs: base.startMs });
    const sec = await startAPIServer(
      secDir,
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
    started.push(sec);
    servers.push({ name: "security-secured", startMs: sec.startMs });
    // Set-up through the tutorial port (all powers): the user's rights.
    await post(
      plainTarget(sec),
      "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: "bench-edit" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "edit" },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "bench" }],
      },
    );
    await waitAllowed(sec);
    const pair = { baseline: base, secured: sec } as const;
    for (const which of ["baseline", "secured"] as const) {
      const load = await loadPods(pair[which], pods, 64);
      if (load.errors > 0) throw new Error(`load (${which}): ${load.firstError}`);
      result[which].load = load;
    }
    const runs = { baseline: [] as ThroughputResult[], secured: [] as ThroughputResult[] };
    const creates = { baseline: [] as ThroughputResult[], secured: [] as ThroughputResult[] };
    log(`  ${ROUNDS} rounds of gets, then of creates, over HTTPS, alternating the servers`);
    for (let i = 0; i < ROUNDS; i++) {
      for (const which of ["baseline", "secured"] as const) {
        runs[which].push(await runGets(pair[which], pods, loop, "default", "http1-tls"));
      }
    }
    for (let i = 0; i < ROUNDS; i++) {
      for (const which of ["baseline", "secured"] as const) {
        creates[which].push(await runCreates(pair[which], "http1-tls", loop, "default", `r${i}-`));
      }
    }
    for (const which of ["baseline", "secured"] as const) {
      result[which].gets = combine(runs[which]);
      result[which].creates = combine(creates[which]);
    }
  } finally {
    for (const s of started) await s.stop();
    fs.rmSync(baseDir, { recursive: true, force: true });
    fs.rmSync(secDir, { recursive: true, force: true });
  }
  return result;
}
