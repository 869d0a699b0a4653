/**
 * The policy controllers end to end: one `k8ts apiserver` (RBAC, bootstrap token
 * authentication, service account tokens, the default admission plugins), the controllers in
 * process acting as their own service accounts (so the bootstrap RBAC policy is exercised), and
 * real kubectl:
 *
 * - PodDisruptionBudget status, then `kubectl drain` refused with 429 once no disruption is left;
 * - ResourceQuota usage counting pods and ConfigMaps in `kubectl describe quota`, going down
 *   when objects go;
 * - an autoscaler raising its target to minReplicas, then reporting that no metrics API exists,
 *   in `kubectl describe hpa`;
 * - PVCs and PVs deleted while unused disappear, one used by a pod waits for the pod;
 * - a kubelet client CSR made with a bootstrap token approved automatically;
 * - cluster-info signed with a bootstrap token and verifiable with it; expired token Secrets
 *   removed;
 * - the node TTL annotation.
 *
 * No kubelet runs: the test writes pod status itself.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { compactVerify } from "jose";
import type { Pod } from "kubernetes-types/core/v1.js";
import type { PodDisruptionBudget } from "kubernetes-types/policy/v1.js";
import { isStatusError } from "../src/api/status.js";
import { loadKubeconfig } from "../src/client/config.js";
import { Client } from "../src/client/resources.js";
import { bootstrapSignerDescriptor, tokenCleanerDescriptor } from "../src/controllers/bootstrap.js";
import { csrApprovingDescriptor, csrCleanerDescriptor } from "../src/controllers/csrapproving.js";
import { disruptionDescriptor } from "../src/controllers/disruption.js";
import { newHPADescriptor } from "../src/controllers/hpa.js";
import { pvcProtectionDescriptor, pvProtectionDescriptor } from "../src/controllers/protection.js";
import { resourceQuotaDescriptor } from "../src/controllers/resourcequota.js";
import { TTL_ANNOTATION, ttlDescriptor } from "../src/controllers/ttl.js";
import { tempDir } from "../src/testing/tmp.js";
import {
  kubectl,
  TestAPIServer,
  writeAdminTokenFile,
  writeServiceAccountKeys,
} from "./support/apiserver.js";
import { InProcessControllers } from "./support/controllers.js";
import { waitFor as waitForTruthy } from "./support/process.js";

const dir = tempDir("k8ts-policy-controllers-");
const cache = path.join(dir.path, "kube-cache");
let server: TestAPIServer;
let kubeconfig = "";
let admin: Client;
const controllers = new InProcessControllers();

const TOKEN_ID = "abcdef";
const TOKEN_SECRET = "0123456789abcdef";

function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 20_000) {
  return waitForTruthy(what, check, timeoutMs);
}

/**
 * kubectl without blocking this process: the controllers run in it, and a kubectl that waits
 * for them (delete, drain) must let them work meanwhile.
 */
function kAsync(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      "kubectl",
      [`--kubeconfig=${kubeconfig}`, `--cache-dir=${cache}`, ...args],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

async function kOk(args: string[]): Promise<string> {
  const r = await kAsync(args);
  assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

function k(args: string[]): string {
  const r = kubectl(kubeconfig, cache, args);
  assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

async function namespace(name: string): Promise<void> {
  try {
    await admin.resource("v1/Namespace").create({ metadata: { name } });
  } catch (err) {
    if (!isStatusError(err, "AlreadyExists")) throw err;
  }
}

const b64 = (s: string) => Buffer.from(s).toString("base64");

function tokenSecret(id: string, secret: string, extra: Record<string, string> = {}) {
  return {
    metadata: { name: `bootstrap-token-${id}`, namespace: "kube-system" },
    type: "bootstrap.kubernetes.io/token",
    data: Object.fromEntries(
      Object.entries({ "token-id": id, "token-secret": secret, ...extra }).map(([k, v]) => [
        k,
        b64(v),
      ]),
    ),
  };
}

before(async () => {
  const { key: saKey, pub: saPub } = writeServiceAccountKeys(dir.path, "pkcs8");
  const tokens = writeAdminTokenFile(dir.path);
  server = new TestAPIServer(dir.path, [
    `--token-auth-file=${tokens}`,
    "--authorization-mode=Node,RBAC",
    "--enable-bootstrap-token-auth",
    `--service-account-key-file=${saPub}`,
    `--service-account-signing-key-file=${saKey}`,
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
  ]);
  await server.start();
  kubeconfig = server.writeKubeconfig(path.join(dir.path, "admin.conf"));
  const config = loadKubeconfig({ kubeconfig });
  admin = new Client(config);
  await admin.resource("v1/Node").create({ metadata: { name: "n1" } });
  controllers.start({
    config,
    controllers: [
      disruptionDescriptor,
      resourceQuotaDescriptor,
      newHPADescriptor({ syncPeriod: 1000 }),
      csrApprovingDescriptor,
      csrCleanerDescriptor,
      bootstrapSignerDescriptor,
      tokenCleanerDescriptor,
      pvcProtectionDescriptor,
      pvProtectionDescriptor,
      ttlDescriptor,
    ],
    useServiceAccountCredentials: true,
  });
});

after(async () => {
  await controllers.stop();
  admin?.close();
  await server?.stop();
  if (process.exitCode) controllers.print();
  dir.remove();
});

async function readyPod(ns: string, name: string, spec: Partial<Pod> = {}): Promise<void> {
  const pods = admin.resource("v1/Pod", ns);
  await pods.create({
    metadata: { name, ...spec.metadata },
    spec: { containers: [{ name: "c", image: "busybox" }], ...spec.spec },
  });
  await pods.patch(
    name,
    "merge",
    { status: { phase: "Running", conditions: [{ type: "Ready", status: "True" }] } },
    { subresource: "status" },
  );
}

test("PDB status follows its ReplicaSet's scale, and kubectl drain is refused with 429 once no disruption is left", async () => {
  await namespace("pdb");
  const rs = await admin.resource("apps/v1/ReplicaSet", "pdb").create({
    metadata: { name: "web" },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web" } },
        spec: { containers: [{ name: "c", image: "busybox" }] },
      },
    },
  });
  const owner = {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    name: "web",
    uid: rs.metadata!.uid!,
    controller: true,
  };
  for (const i of [0, 1, 2])
    await readyPod("pdb", `web-${i}`, {
      metadata: { labels: { app: "web" }, ownerReferences: [owner] },
      spec: { nodeName: "n1", containers: [{ name: "c", image: "busybox" }] },
    });
  k(["create", "pdb", "web", "-n", "pdb", "--selector=app=web", "--max-unavailable=1"]);
  const pdbs = admin.resource("policy/v1/PodDisruptionBudget", "pdb");
  const ready = await waitFor("PDB status", async () => {
    const p = await pdbs.get("web");
    return p.status?.disruptionsAllowed === 1 ? p : undefined;
  });
  assert.equal(ready.status?.expectedPods, 3);
  assert.equal(ready.status?.currentHealthy, 3);
  assert.equal(ready.status?.desiredHealthy, 2);
  assert.equal(ready.status?.observedGeneration, ready.metadata?.generation);
  const cond = ready.status?.conditions?.find((c) => c.type === "DisruptionAllowed");
  assert.equal(cond?.status, "True");
  assert.equal(cond?.reason, "SufficientPods");
  assert.match(k(["get", "pdb", "-n", "pdb"]), /web\s+N\/A\s+1\s+1\s+/);

  const drain = await kAsync(["drain", "n1", "--pod-selector=app=web", "--timeout=8s"]);
  assert.notEqual(drain.code, 0, drain.stdout);
  assert.match(drain.stderr, /Cannot evict pod as it would violate the pod's disruption budget/);
  const pods = (await admin.resource("v1/Pod", "pdb").list()).items;
  assert.equal(pods.filter((p) => p.metadata?.deletionTimestamp).length, 1);

  const after = await waitFor("PDB at 0", async () => {
    const p: PodDisruptionBudget = await pdbs.get("web");
    return p.status?.currentHealthy === 2 && p.status.disruptionsAllowed === 0 ? p : undefined;
  });
  assert.equal(after.status?.desiredHealthy, 2);
  assert.equal(after.status?.expectedPods, 3);
  const c2 = after.status?.conditions?.find((c) => c.type === "DisruptionAllowed");
  assert.equal(c2?.status, "False");
  assert.equal(c2?.reason, "InsufficientPods");
  k(["uncordon", "n1"]);
});

test("the TTL annotation of nodes", async () => {
  await waitFor("ttl annotation", async () => {
    const n = await admin.resource("v1/Node").get("n1");
    return n.metadata?.annotations?.[TTL_ANNOTATION] === "0";
  });
});

test("ResourceQuota usage counts pods and ConfigMaps in kubectl describe quota", async () => {
  await namespace("quota");
  k([
    "create",
    "quota",
    "counts",
    "-n",
    "quota",
    "--hard=pods=4,configmaps=3,count/secrets=2,services=2",
  ]);
  const quotas = admin.resource("v1/ResourceQuota", "quota");
  await waitFor("quota status", async () => (await quotas.get("counts")).status?.used);
  await admin.resource("v1/ConfigMap", "quota").create({ metadata: { name: "a" } });
  await admin.resource("v1/ConfigMap", "quota").create({ metadata: { name: "b" } });
  for (const name of ["p1", "p2", "p3"])
    await admin.resource("v1/Pod", "quota").create({
      metadata: { name },
      spec: { containers: [{ name: "c", image: "busybox" }] },
    });
  const describe = () => k(["describe", "quota", "counts", "-n", "quota"]);
  await waitFor("usage", () => {
    const out = describe();
    return /configmaps\s+2\s+3/.test(out) && /pods\s+3\s+4/.test(out) ? out : undefined;
  });
  const out = describe();
  assert.match(out, /^Name:\s+counts$/m);
  assert.match(out, /^Namespace:\s+quota$/m);
  assert.match(out, /count\/secrets\s+0\s+2/);
  assert.match(out, /services\s+0\s+2/);

  // A finished pod no longer counts; deletions are given back.
  await admin
    .resource("v1/Pod", "quota")
    .patch("p1", "merge", { status: { phase: "Succeeded" } }, { subresource: "status" });
  await admin.resource("v1/Pod", "quota").delete("p2", { gracePeriodSeconds: 0 });
  await admin.resource("v1/ConfigMap", "quota").delete("a");
  await waitFor("usage down", () => {
    const o = describe();
    return /configmaps\s+1\s+3/.test(o) && /pods\s+1\s+4/.test(o);
  });

  // Past the hard limit, the API server refuses with the usage the controller reported.
  await admin.resource("v1/ConfigMap", "quota").create({ metadata: { name: "c" } });
  await admin.resource("v1/ConfigMap", "quota").create({ metadata: { name: "d" } });
  const r = kubectl(kubeconfig, cache, ["create", "configmap", "e", "-n", "quota"]);
  assert.notEqual(r.code, 0);
  assert.match(
    r.stderr,
    /exceeded quota: counts, requested: configmaps=1, used: configmaps=3, limited: configmaps=3/,
  );
});

test("an HPA raises its target to minReplicas, then reports that no metrics API exists", async () => {
  await namespace("hpa");
  await admin.resource("apps/v1/Deployment", "hpa").create({
    metadata: { name: "app" },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: "app" } },
      template: {
        metadata: { labels: { app: "app" } },
        spec: {
          containers: [{ name: "c", image: "busybox", resources: { requests: { cpu: "100m" } } }],
        },
      },
    },
  });
  k(["autoscale", "deployment", "app", "-n", "hpa", "--min=2", "--max=5", "--cpu-percent=50"]);
  await waitFor("scaled to minReplicas", async () => {
    const d = await admin.resource("apps/v1/Deployment", "hpa").get("app");
    return d.spec?.replicas === 2;
  });
  const describe = () => k(["describe", "hpa", "app", "-n", "hpa"]);
  const out = await waitFor("ScalingActive False", () => {
    const o = describe();
    return /ScalingActive\s+False\s+FailedGetResourceMetric/.test(o) ? o : undefined;
  });
  assert.match(
    out,
    /AbleToScale\s+True\s+SucceededGetScale\s+the HPA controller was able to get the target's current scale/,
  );
  assert.match(
    out,
    /the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: unable to fetch metrics from resource metrics API: the server could not find the requested resource \(get pods.metrics.k8s.io\)/,
  );
  assert.match(out, /Min replicas:\s+2/);
  assert.match(out, /Max replicas:\s+5/);
  assert.match(
    out,
    /SuccessfulRescale\s+.*New size: 2; reason: Current number of replicas below Spec.MinReplicas/,
  );
  const events = await waitFor("metrics events", async () => {
    const list = await admin.resource("v1/Event", "hpa").list();
    const reasons = new Set(list.items.map((e) => e.reason));
    return reasons.has("FailedGetResourceMetric") && reasons.has("FailedComputeMetricsReplicas")
      ? list.items
      : undefined;
  });
  const failed = events.find((e) => e.reason === "FailedComputeMetricsReplicas");
  assert.equal(failed?.type, "Warning");
  assert.equal(failed?.source?.component, "horizontal-pod-autoscaler");
  assert.match(
    failed?.message ?? "",
    /^invalid metrics \(1 invalid out of 1\), first error is: failed to get cpu resource metric value: failed to get cpu utilization: /,
  );
  const hpa = await admin.resource("autoscaling/v2/HorizontalPodAutoscaler", "hpa").get("app");
  assert.equal(hpa.status?.currentReplicas, 2);
  assert.ok(hpa.status?.lastScaleTime);
});

test("PVCs and PVs deleted while unused disappear; one a pod uses waits for the pod", async () => {
  await namespace("pvc");
  const claims = admin.resource("v1/PersistentVolumeClaim", "pvc");
  const claim = (name: string) => ({
    metadata: { name },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
  });
  const free = await claims.create(claim("free"));
  assert.deepEqual(free.metadata?.finalizers, ["kubernetes.io/pvc-protection"]);
  await claims.create(claim("used"));
  await admin.resource("v1/Pod", "pvc").create({
    metadata: { name: "user" },
    spec: {
      nodeName: "n1",
      containers: [{ name: "c", image: "busybox" }],
      volumes: [{ name: "data", persistentVolumeClaim: { claimName: "used" } }],
    },
  });
  k(["delete", "pvc", "used", "-n", "pvc", "--wait=false"]);
  // The controller (one worker, keys in order) has looked at "used" once "free" is gone.
  await kOk(["delete", "pvc", "free", "-n", "pvc", "--timeout=20s"]);
  const used = await claims.get("used");
  assert.ok(used.metadata?.deletionTimestamp);
  assert.deepEqual(used.metadata?.finalizers, ["kubernetes.io/pvc-protection"]);
  assert.match(k(["get", "pvc", "-n", "pvc"]), /used\s+Terminating/);
  await admin.resource("v1/Pod", "pvc").delete("user", { gracePeriodSeconds: 0 });
  await waitFor("claim gone", async () => {
    try {
      await claims.get("used");
      return false;
    } catch (err) {
      return isStatusError(err, "NotFound");
    }
  });

  const pv = await admin.resource("v1/PersistentVolume").create({
    metadata: { name: "pv1" },
    spec: {
      capacity: { storage: "1Gi" },
      accessModes: ["ReadWriteOnce"],
      hostPath: { path: "/tmp/pv1" },
    },
  });
  assert.deepEqual(pv.metadata?.finalizers, ["kubernetes.io/pv-protection"]);
  await kOk(["delete", "pv", "pv1", "--timeout=20s"]);
});

test("a kubelet client CSR made with a bootstrap token is approved", async () => {
  await admin.resource("v1/Secret", "kube-system").create(
    tokenSecret(TOKEN_ID, TOKEN_SECRET, {
      "usage-bootstrap-authentication": "true",
      "usage-bootstrap-signing": "true",
    }),
  );
  // As kubeadm: bootstrappers may ask for node client certificates.
  k([
    "create",
    "clusterrolebinding",
    "kubeadm:kubelet-bootstrap",
    "--clusterrole=system:node-bootstrapper",
    "--group=system:bootstrappers",
  ]);
  k([
    "create",
    "clusterrolebinding",
    "kubeadm:node-autoapprove-bootstrap",
    "--clusterrole=system:certificates.k8s.io:certificatesigningrequests:nodeclient",
    "--group=system:bootstrappers",
  ]);
  const key = path.join(dir.path, "kubelet.key");
  const csrFile = path.join(dir.path, "kubelet.csr");
  for (const args of [
    ["ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", key],
    ["req", "-new", "-key", key, "-subj", "/O=system:nodes/CN=system:node:n9", "-out", csrFile],
  ]) {
    const r = spawnSync("openssl", args, { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
  }
  const request = fs.readFileSync(csrFile).toString("base64");
  const bootstrap = new Client({
    ...loadKubeconfig({ kubeconfig }),
    token: `${TOKEN_ID}.${TOKEN_SECRET}`,
  });
  try {
    const csrs = bootstrap.resource("certificates.k8s.io/v1/CertificateSigningRequest");
    await csrs.create({
      metadata: { name: "node-csr-n9" },
      spec: {
        request,
        signerName: "kubernetes.io/kube-apiserver-client-kubelet",
        usages: ["digital signature", "client auth"],
      },
    });
    // Not a kubelet client request: left for a person.
    await csrs.create({
      metadata: { name: "other" },
      spec: {
        request,
        signerName: "kubernetes.io/kube-apiserver-client",
        usages: ["digital signature", "client auth"],
      },
    });
  } finally {
    bootstrap.close();
  }
  const api = admin.resource("certificates.k8s.io/v1/CertificateSigningRequest");
  const approved = await waitFor("approval", async () => {
    const c = await api.get("node-csr-n9");
    return c.status?.conditions?.find((x) => x.type === "Approved");
  });
  assert.equal(approved.status, "True");
  assert.equal(approved.reason, "AutoApproved");
  assert.equal(
    approved.message,
    "Auto approving kubelet client certificate after SubjectAccessReview.",
  );
  const csr = await api.get("node-csr-n9");
  assert.equal(csr.spec.username, `system:bootstrap:${TOKEN_ID}`);
  assert.match(
    k(["get", "csr", "node-csr-n9"]),
    /node-csr-n9\s+\S+\s+kubernetes.io\/kube-apiserver-client-kubelet\s+system:bootstrap:abcdef\s+<none>\s+Approved/,
  );
  assert.match(k(["get", "csr", "other"]), /Pending/);
});

test("cluster-info is signed with bootstrap tokens; expired token Secrets are removed", async () => {
  const kubeconfigContent = [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- cluster:",
    `    server: ${server.url}`,
    '  name: ""',
    "",
  ].join("\n");
  const cms = admin.resource("v1/ConfigMap", "kube-public");
  await namespace("kube-public");
  await cms.create({ metadata: { name: "cluster-info" }, data: { kubeconfig: kubeconfigContent } });
  const signed = await waitFor("signature", async () => {
    const cm = await cms.get("cluster-info");
    return cm.data?.[`jws-kubeconfig-${TOKEN_ID}`];
  });
  const [header, empty, sig] = signed.split(".");
  assert.equal(empty, "");
  assert.deepEqual(JSON.parse(Buffer.from(header!, "base64url").toString()), {
    alg: "HS256",
    kid: TOKEN_ID,
  });
  const full = `${header}.${Buffer.from(kubeconfigContent).toString("base64url")}.${sig}`;
  const verified = await compactVerify(full, new TextEncoder().encode(TOKEN_SECRET));
  assert.equal(new TextDecoder().decode(verified.payload), kubeconfigContent);

  // An expired token is removed; one about to expire goes when it does, and its signature too.
  const secrets = admin.resource("v1/Secret", "kube-system");
  await secrets.create(
    tokenSecret("old000", "0123456789abcdef", {
      expiration: "2000-01-01T00:00:00Z",
      "usage-bootstrap-signing": "true",
    }),
  );
  const soon = new Date(Date.now() + 3000).toISOString().replace(/\.\d+Z$/, "Z");
  await secrets.create(
    tokenSecret("soon00", "fedcba9876543210", {
      expiration: soon,
      "usage-bootstrap-signing": "true",
    }),
  );
  await waitFor("soon00 signature", async () => {
    const cm = await cms.get("cluster-info");
    return cm.data?.["jws-kubeconfig-soon00"] && !cm.data["jws-kubeconfig-old000"];
  });
  const gone = (name: string) => async () => {
    try {
      await secrets.get(name);
      return false;
    } catch (err) {
      return isStatusError(err, "NotFound");
    }
  };
  await waitFor("expired token removed", gone("bootstrap-token-old000"));
  await waitFor("token removed at expiry", gone("bootstrap-token-soon00"));
  await waitFor("its signature removed", async () => {
    const cm = await cms.get("cluster-info");
    return !cm.data?.["jws-kubeconfig-soon00"] && !!cm.data?.[`jws-kubeconfig-${TOKEN_ID}`];
  });
  // The token without an expiration stays.
  await secrets.get(`bootstrap-token-${TOKEN_ID}`);
});
