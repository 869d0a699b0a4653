/**
 * `k8ts controller-manager` end to end: one `k8ts apiserver` (the PKI of `k8ts certs`, client
 * certificates, service account tokens, Node,RBAC, and the insecure tutorial port), real kubectl
 * with the admin kubeconfig, and controller managers as child processes: the seeds' first lab
 * with `--master`, a rolling update with `kubectl set image` and `rollout undo`, and then a
 * second, secure manager (`--kubeconfig controller-manager.conf
 * --use-service-account-credentials`) taking over the Lease after the first is killed, and
 * handling deletion with each propagation policy and namespace deletion.
 *
 * No kubelet runs: a loop in the test stands in for it and marks pods Running and Ready.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import type { Deployment, ReplicaSet } from "kubernetes-types/apps/v1.js";
import type { Lease } from "kubernetes-types/coordination/v1.js";
import type { ConfigMap, Namespace, Pod } from "kubernetes-types/core/v1.js";
import { isStatusError } from "../src/api/status.js";
import { loadKubeconfig } from "../src/client/config.js";
import { Client } from "../src/client/resources.js";
import { freePort } from "../src/testing/net.js";
import { tempDir } from "../src/testing/tmp.js";
import { k8tsBin, kubectl, TestAPIServer } from "./support/apiserver.js";
import { K8tsProcess, waitFor as waitForTruthy } from "./support/process.js";

const dir = tempDir("k8ts-controller-manager-");
const pki = path.join(dir.path, "pki");
let server: TestAPIServer;
let insecurePort = 0;
let admin: Client;
const adminConf = path.join(dir.path, "admin.conf");
const cmConf = path.join(dir.path, "controller-manager.conf");
const managers: Manager[] = [];

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** kubectl without blocking this process (the fake kubelet keeps running meanwhile). */
function kAsync(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      "kubectl",
      [`--kubeconfig=${adminConf}`, `--cache-dir=${path.join(dir.path, "kube-cache")}`, ...args],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

function k(args: string[]): string {
  const r = kubectl(adminConf, path.join(dir.path, "kube-cache"), args);
  assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** Waits for `check` (30 s by default, as the lease timings need). */
function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 30_000) {
  return waitForTruthy(what, check, timeoutMs);
}

/** A `k8ts controller-manager` child process and its log. */
class Manager extends K8tsProcess {
  constructor(args: string[]) {
    super(["controller-manager", ...args], managers, 30_000);
  }

  get identity(): string {
    return /acquire leader lease \S+ as (\S+)\.\.\./.exec(this.log)?.[1] ?? "";
  }
}

/** Stands in for kubelets: every pod of `namespace` becomes Running and Ready. */
function fakeKubelet(namespace: string): () => Promise<void> {
  let stopped = false;
  const pods = admin.resource("v1/Pod", namespace);
  const loop = (async () => {
    while (!stopped) {
      const list = await pods.list().catch(() => ({ items: [] as Pod[] }));
      await Promise.all(
        list.items
          .filter((p) => !p.status?.conditions?.some((c) => c.type === "Ready"))
          .map((p) =>
            pods
              .patch(
                p.metadata!.name!,
                "merge",
                {
                  status: {
                    phase: "Running",
                    conditions: [
                      {
                        type: "Ready",
                        status: "True",
                        lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
                      },
                    ],
                  },
                },
                { subresource: "status" },
              )
              .catch(() => undefined),
          ),
      );
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}

async function replicaSetsOf(ns: string, app: string): Promise<ReplicaSet[]> {
  return (await admin.resource("apps/v1/ReplicaSet", ns).list({ labelSelector: `app=${app}` }))
    .items;
}

async function podsOf(ns: string, app: string): Promise<Pod[]> {
  return (await admin.resource("v1/Pod", ns).list({ labelSelector: `app=${app}` })).items;
}

before(async () => {
  run(k8tsBin, [
    "certs",
    `--cert-dir=${pki}`,
    "--apiserver-advertise-address=127.0.0.1",
    "--node-name=node-a",
    "--node-ip=127.0.0.1",
  ]);
  insecurePort = await freePort();
  server = new TestAPIServer(
    dir.path,
    [
      `--tls-cert-file=${path.join(pki, "apiserver.crt")}`,
      `--tls-private-key-file=${path.join(pki, "apiserver.key")}`,
      `--client-ca-file=${path.join(pki, "ca.crt")}`,
      `--service-account-key-file=${path.join(pki, "sa.pub")}`,
      `--service-account-signing-key-file=${path.join(pki, "sa.key")}`,
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      "--authorization-mode=Node,RBAC",
      `--insecure-port=${insecurePort}`,
    ],
    path.join(pki, "ca.crt"),
  );
  await server.start();
  run(k8tsBin, [
    "kubeconfig",
    `--cert-dir=${pki}`,
    `--kubeconfig-dir=${dir.path}`,
    `--server=${server.url}`,
  ]);
  admin = new Client(loadKubeconfig({ kubeconfig: adminConf }));
});

after(async () => {
  for (const m of managers) await m.stop("SIGKILL");
  admin?.close();
  await server?.stop();
  dir.remove();
});

test("the API server alone stores a Deployment and nothing more; a manager without flags fails as upstream's", async () => {
  k(["create", "deployment", "web", "--image=nginx"]);
  const out = k(["get", "deployments,replicasets,pods"]);
  assert.match(out, /deployment\.apps\/web\s+0\/1\s+0\s+0/);
  assert.doesNotMatch(out, /replicaset/);

  const env = { ...process.env };
  delete env.KUBERNETES_SERVICE_HOST;
  delete env.KUBERNETES_SERVICE_PORT;
  const r = spawnSync(k8tsBin, ["controller-manager"], { encoding: "utf8", env, timeout: 30_000 });
  assert.equal(r.status, 1);
  assert.match(
    r.stderr,
    /Neither --kubeconfig nor --master was specified\. {2}Using the inClusterConfig\. {2}This might not work\./,
  );
  assert.match(r.stderr, /invalid configuration: no configuration has been provided/);
});

let first: Manager;

test("--master (insecure tutorial mode): the ReplicaSet and its Pod appear, named, labeled and owned as upstream's", async () => {
  first = new Manager([`--master=http://127.0.0.1:${insecurePort}`]);
  await first.waitForLog(/successfully acquired lease kube-system\/kube-controller-manager/);
  const rs = await waitFor(
    "the ReplicaSet",
    async () => (await replicaSetsOf("default", "web"))[0],
  );
  const d = await admin.resource("apps/v1/Deployment", "default").get("web");
  const hash = rs.metadata?.labels?.["pod-template-hash"];
  assert.ok(hash && /^[bcdfghjklmnpqrstvwxz2456789]+$/.test(hash));
  assert.equal(rs.metadata?.name, `web-${hash}`);
  assert.deepEqual(rs.spec?.selector?.matchLabels, { app: "web", "pod-template-hash": hash });
  assert.deepEqual(rs.metadata?.ownerReferences, [
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      name: "web",
      uid: d.metadata?.uid,
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
  assert.equal(rs.metadata?.annotations?.["deployment.kubernetes.io/revision"], "1");
  const pod = await waitFor("the Pod", async () => (await podsOf("default", "web"))[0]);
  assert.match(pod.metadata!.name!, new RegExp(`^web-${hash}-[bcdfghjklmnpqrstvwxz2456789]{5}$`));
  assert.equal(pod.metadata?.generateName, `web-${hash}-`);
  assert.equal(pod.metadata?.labels?.["pod-template-hash"], hash);
  assert.deepEqual(pod.metadata?.ownerReferences, [
    {
      apiVersion: "apps/v1",
      kind: "ReplicaSet",
      name: rs.metadata?.name,
      uid: rs.metadata?.uid,
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
  const events = await waitFor("the events", () => {
    const e = k(["get", "events"]);
    return /ScalingReplicaSet/.test(e) && /SuccessfulCreate/.test(e) ? e : undefined;
  });
  assert.match(events, new RegExp(`Scaled up replica set web-${hash} from 0 to 1`));
  assert.match(events, new RegExp(`Created pod: ${pod.metadata!.name}`));
  // The default service account and the root CA appeared in every namespace.
  await waitFor("default service accounts", async () =>
    (await admin.resource("v1/ServiceAccount", "kube-public").list()).items.some(
      (s) => s.metadata?.name === "default",
    ),
  );
  const cm = await waitFor("kube-root-ca.crt", () =>
    admin
      .resource("v1/ConfigMap", "default")
      .get("kube-root-ca.crt")
      .catch(() => undefined),
  );
  assert.match(cm.data?.["ca.crt"] ?? "", /^$/, "--master over plain HTTP knows no CA");
});

test("kubectl scale to 5 and back to 1", async () => {
  k(["scale", "deployment", "web", "--replicas=5"]);
  await waitFor("5 pods", async () => (await podsOf("default", "web")).length === 5);
  k(["scale", "deployment", "web", "--replicas=1"]);
  await waitFor("1 pod", async () => (await podsOf("default", "web")).length === 1);
  const d = await waitFor("the status", async () => {
    const x = await admin.resource("apps/v1/Deployment", "default").get("web");
    return x.status?.replicas === 1 && x.status.observedGeneration === x.metadata?.generation
      ? x
      : undefined;
  });
  assert.equal(d.spec?.replicas, 1);
  assert.match(k(["get", "events"]), /Scaled down replica set web-\S+ from 5 to 1/);
});

/** The ReplicaSets' sizes the rolling update below went through, for the maxSurge check after it. */
let rollout: { maxTotal: number; trace: string[] } | undefined;

test("kubectl set image rolls out within maxSurge and maxUnavailable; rollout status, history and undo", async () => {
  k(["scale", "deployment", "web", "--replicas=4"]);
  const stopKubelet = fakeKubelet("default");
  try {
    await waitFor("4 available", async () => {
      const d = await admin.resource("apps/v1/Deployment", "default").get("web");
      return d.status?.availableReplicas === 4 && d.status.updatedReplicas === 4;
    });
    // Watch the ReplicaSets' sizes during the rollout: never more than 4 + maxSurge (25% -> 1).
    const ac = new AbortController();
    const sizes = new Map<string, number>();
    let maxTotal = 0;
    const trace: string[] = [];
    const events = await admin.resource("apps/v1/ReplicaSet", "default").watch({}, ac.signal);
    const watching = (async () => {
      for await (const e of events) {
        const rs = e.object as ReplicaSet;
        if (e.type === "DELETED") sizes.delete(rs.metadata!.name!);
        else if (rs.metadata?.labels?.app === "web")
          sizes.set(rs.metadata!.name!, rs.spec?.replicas ?? 0);
        const total = [...sizes.values()].reduce((a, b) => a + b, 0);
        const owners = (rs.metadata?.managedFields ?? [])
          .filter((m) => JSON.stringify(m.fieldsV1 ?? {}).includes('"f:replicas"'))
          .map((m) => `${m.manager}/${m.operation}/${m.subresource ?? ""}`);
        trace.push(
          `${e.type} ${rs.metadata?.name} rv=${rs.metadata?.resourceVersion} replicas=${rs.spec?.replicas} total=${total} desired=${rs.metadata?.annotations?.["deployment.kubernetes.io/desired-replicas"]} replicas-owned-by=${owners.join(",")}`,
        );
        maxTotal = Math.max(maxTotal, total);
      }
    })().catch(() => undefined);
    k(["set", "image", "deployment/web", "nginx=nginx:1.27"]);
    const status = await kAsync(["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /deployment "web" successfully rolled out/);
    ac.abort();
    await watching;
    rollout = { maxTotal, trace };
    const list = await replicaSetsOf("default", "web");
    assert.equal(list.length, 2);
    const [oldRS, newRS] = [...list].sort(
      (a, b) =>
        Number(a.metadata?.annotations?.["deployment.kubernetes.io/revision"]) -
        Number(b.metadata?.annotations?.["deployment.kubernetes.io/revision"]),
    );
    assert.equal(oldRS!.spec?.replicas, 0);
    assert.equal(newRS!.spec?.replicas, 4);
    assert.equal(newRS!.spec?.template?.spec?.containers[0]?.image, "nginx:1.27");
    const events2 = k(["get", "events"]);
    assert.match(events2, new RegExp(`Scaled up replica set ${newRS!.metadata!.name} from 0 to 1`));
    assert.match(
      events2,
      new RegExp(`Scaled down replica set ${oldRS!.metadata!.name} from 4 to 3`),
    );
    const d = await admin.resource("apps/v1/Deployment", "default").get("web");
    const progressing = d.status?.conditions?.find((c) => c.type === "Progressing");
    assert.equal(progressing?.reason, "NewReplicaSetAvailable");
    assert.equal(
      progressing?.message,
      `ReplicaSet "${newRS!.metadata!.name}" has successfully progressed.`,
    );
    assert.equal(
      d.status?.conditions?.find((c) => c.type === "Available")?.reason,
      "MinimumReplicasAvailable",
    );
    assert.equal(d.metadata?.annotations?.["deployment.kubernetes.io/revision"], "2");

    assert.match(
      k(["rollout", "history", "deployment/web"]),
      /REVISION\s+CHANGE-CAUSE\n1\s+<none>\n2\s+<none>/,
    );
    k(["rollout", "undo", "deployment/web"]);
    await waitFor("the rollback", async () => {
      const x = await admin.resource("apps/v1/Deployment", "default").get("web");
      return (
        x.spec?.template?.spec?.containers[0]?.image === "nginx" &&
        x.status?.observedGeneration === x.metadata?.generation &&
        x.status?.updatedReplicas === 4 &&
        x.status.replicas === 4 &&
        x.status.availableReplicas === 4
      );
    });
    const back = await admin.resource("apps/v1/ReplicaSet", "default").get(oldRS!.metadata!.name!);
    assert.equal(back.spec?.replicas, 4);
    assert.equal(back.metadata?.annotations?.["deployment.kubernetes.io/revision"], "3");
    assert.equal(back.metadata?.annotations?.["deployment.kubernetes.io/revision-history"], "1");
    assert.match(k(["rollout", "history", "deployment/web"]), /\n2\s+<none>\n3\s+<none>/);
  } finally {
    await stopKubelet();
  }
});

test("the rolling update never wanted more than replicas + maxSurge pods", () => {
  assert.ok(rollout, "the rolling update ran");
  assert.ok(
    rollout.maxTotal <= 5,
    `at most replicas + maxSurge pods were wanted (${rollout.maxTotal}):\n${rollout.trace.join("\n")}`,
  );
});

test("rollout pause, resume and restart", async () => {
  const deployments = admin.resource("apps/v1/Deployment", "default");
  const before = (await replicaSetsOf("default", "web")).length;
  k(["rollout", "pause", "deployment/web"]);
  k(["set", "image", "deployment/web", "nginx=nginx:1.28"]);
  const paused = await waitFor("the paused condition", async () => {
    const d = await deployments.get("web");
    const c = d.status?.conditions?.find((x) => x.type === "Progressing");
    return c?.reason === "DeploymentPaused" &&
      d.status?.observedGeneration === d.metadata?.generation
      ? d
      : undefined;
  });
  assert.equal(paused.status?.conditions?.find((x) => x.type === "Progressing")?.status, "Unknown");
  assert.equal(
    (await replicaSetsOf("default", "web")).length,
    before,
    "a paused Deployment rolls nothing out",
  );
  k(["rollout", "resume", "deployment/web"]);
  await waitFor(
    "a new ReplicaSet after resuming",
    async () => (await replicaSetsOf("default", "web")).length === before + 1,
  );
  k(["rollout", "restart", "deployment/web"]);
  const restarted = await waitFor("a ReplicaSet for the restart", async () =>
    (await replicaSetsOf("default", "web")).find(
      (rs) => rs.spec?.template?.metadata?.annotations?.["kubectl.kubernetes.io/restartedAt"],
    ),
  );
  assert.equal(restarted.spec?.template?.spec?.containers[0]?.image, "nginx:1.28");
});

let second: Manager;

test("two managers: exactly one holds the Lease; after SIGKILL the other takes over within the lease timings", async () => {
  second = new Manager([
    `--kubeconfig=${cmConf}`,
    "--use-service-account-credentials",
    `--root-ca-file=${path.join(pki, "ca.crt")}`,
  ]);
  await second.waitForLog(/attempting to acquire leader lease/);
  const leases = admin.resource("coordination.k8s.io/v1/Lease", "kube-system");
  const lease: Lease = await leases.get("kube-controller-manager");
  assert.equal(lease.spec?.holderIdentity, first.identity);
  assert.equal(lease.spec?.leaseDurationSeconds, 15);
  // Give the second candidate a few retry periods: it must not lead while the first renews.
  const renewed = lease.spec?.renewTime;
  await waitFor(
    "a renewal by the leader",
    async () => (await leases.get("kube-controller-manager")).spec?.renewTime !== renewed,
  );
  assert.doesNotMatch(second.log, /successfully acquired lease|Starting controller/);

  const killedAt = Date.now();
  await first.stop("SIGKILL");
  await second.waitForLog(
    /successfully acquired lease kube-system\/kube-controller-manager/,
    40_000,
  );
  const handover = (Date.now() - killedAt) / 1000;
  assert.ok(handover >= 10 && handover <= 25, `handover after ${handover.toFixed(1)} s`);
  const taken = await leases.get("kube-controller-manager");
  assert.equal(taken.spec?.holderIdentity, second.identity);
  assert.equal(taken.spec?.leaseTransitions, (lease.spec?.leaseTransitions ?? 0) + 1);

  // The secure manager acts, each controller as its own service account.
  k(["create", "namespace", "secure"]);
  k(["-n", "secure", "create", "deployment", "api", "--image=nginx", "--replicas=2"]);
  await waitFor(
    "pods of the secure manager",
    async () => (await podsOf("secure", "api")).length === 2,
  );
  const rs = (await replicaSetsOf("secure", "api"))[0]!;
  assert.match(
    rs.metadata?.managedFields?.map((f) => f.manager).join(",") ?? "",
    /kube-controller-manager/,
  );
  const cm: ConfigMap = await waitFor("kube-root-ca.crt", () =>
    admin
      .resource("v1/ConfigMap", "secure")
      .get("kube-root-ca.crt")
      .catch(() => undefined),
  );
  assert.equal(cm.data?.["ca.crt"], fs.readFileSync(path.join(pki, "ca.crt"), "utf8"));
  await waitFor("the default account", () =>
    admin
      .resource("v1/ServiceAccount", "secure")
      .get("default")
      .catch(() => undefined),
  );
});

async function deploymentWithPods(ns: string, name: string, replicas: number) {
  k(["-n", ns, "create", "deployment", name, "--image=nginx", `--replicas=${replicas}`]);
  await waitFor(
    `${replicas} pods of ${name}`,
    async () => (await podsOf(ns, name)).length === replicas,
  );
  return (await replicaSetsOf(ns, name))[0]!;
}

test("deleting a Deployment: Background removes its ReplicaSet and Pods, Orphan leaves them, Foreground removes them first", async () => {
  k(["create", "namespace", "gc"]);
  // Background (kubectl's default).
  await deploymentWithPods("gc", "bg", 2);
  k(["-n", "gc", "delete", "deployment", "bg"]);
  await waitFor(
    "the dependents gone",
    async () =>
      (await replicaSetsOf("gc", "bg")).length === 0 && (await podsOf("gc", "bg")).length === 0,
  );

  // Orphan: the ReplicaSet stays, without its owner; its pods stay with it.
  const orphanRS = await deploymentWithPods("gc", "orphan", 2);
  k(["-n", "gc", "delete", "deployment", "orphan", "--cascade=orphan"]);
  await waitFor("the Deployment gone", () =>
    admin
      .resource("apps/v1/Deployment", "gc")
      .get("orphan")
      .then(
        () => false,
        (err: unknown) => isStatusError(err, "NotFound"),
      ),
  );
  const kept = await admin.resource("apps/v1/ReplicaSet", "gc").get(orphanRS.metadata!.name!);
  assert.equal(kept.metadata?.ownerReferences?.length ?? 0, 0);
  assert.equal((await podsOf("gc", "orphan")).length, 2);

  // Foreground: the Deployment waits (foregroundDeletion) until its dependents are gone.
  const fgRS = await deploymentWithPods("gc", "fg", 2);
  const ac = new AbortController();
  const seen: { type: string; kind: string; name: string; rv: number; finalizers: string[] }[] = [];
  const record = async (events: AsyncIterable<{ type: string; object: unknown }>, kind: string) => {
    for await (const e of events) {
      const o = e.object as ReplicaSet | Deployment;
      seen.push({
        type: e.type,
        kind,
        name: o.metadata?.name ?? "",
        rv: Number(o.metadata?.resourceVersion),
        finalizers: o.metadata?.finalizers ?? [],
      });
    }
  };
  const from = (await admin.resource("apps/v1/Deployment", "gc").get("fg")).metadata
    ?.resourceVersion;
  const streams = await Promise.all([
    admin.resource("apps/v1/Deployment", "gc").watch({ resourceVersion: from }, ac.signal),
    admin.resource("apps/v1/ReplicaSet", "gc").watch({ resourceVersion: from }, ac.signal),
  ]);
  const watches = Promise.all([
    record(streams[0], "Deployment"),
    record(streams[1], "ReplicaSet"),
  ]).catch(() => undefined);
  k(["-n", "gc", "delete", "deployment", "fg", "--cascade=foreground"]);
  await waitFor(
    "everything of fg gone",
    async () =>
      (await replicaSetsOf("gc", "fg")).length === 0 &&
      (await podsOf("gc", "fg")).length === 0 &&
      seen.some((s) => s.kind === "Deployment" && s.type === "DELETED"),
  );
  ac.abort();
  await watches;
  const marked = seen.find(
    (s) => s.kind === "Deployment" && s.finalizers.includes("foregroundDeletion"),
  );
  assert.ok(marked, "the Deployment waited with the foregroundDeletion finalizer");
  const rsGone = seen.find(
    (s) => s.kind === "ReplicaSet" && s.type === "DELETED" && s.name === fgRS.metadata?.name,
  );
  const dGone = seen.find((s) => s.kind === "Deployment" && s.type === "DELETED");
  assert.ok(rsGone && dGone && rsGone.rv < dGone.rv, "the ReplicaSet went before the Deployment");
});

test("deleting a namespace removes everything in it, then the namespace, with upstream's conditions", async () => {
  k(["create", "namespace", "doomed"]);
  await deploymentWithPods("doomed", "app", 3);
  k(["-n", "doomed", "create", "configmap", "settings", "--from-literal=a=b"]);
  k(["-n", "doomed", "create", "secret", "generic", "creds", "--from-literal=p=q"]);
  const ac = new AbortController();
  const states: Namespace[] = [];
  const from = (await admin.resource("v1/Namespace").get("doomed")).metadata?.resourceVersion;
  const stream = await admin.resource("v1/Namespace").watch({ resourceVersion: from }, ac.signal);
  const watching = (async () => {
    for await (const e of stream) {
      const ns = e.object as Namespace;
      if (ns.metadata?.name === "doomed") states.push(ns);
    }
  })().catch(() => undefined);
  k(["delete", "namespace", "doomed"]);
  await waitFor("the namespace gone", () =>
    admin
      .resource("v1/Namespace")
      .get("doomed")
      .then(
        () => false,
        (err: unknown) => isStatusError(err, "NotFound"),
      ),
  );
  ac.abort();
  await watching;
  assert.ok(
    states.some((s) => s.status?.phase === "Terminating"),
    JSON.stringify(states.map((s) => [s.metadata?.name, s.status])),
  );
  const withConditions = states.filter((s) => s.status?.conditions?.length);
  assert.ok(withConditions.length > 0, "the controller reported its progress");
  const last = withConditions[withConditions.length - 1]!.status!.conditions!;
  assert.deepEqual(
    last.map((c) => [c.type, c.status, c.reason]),
    [
      ["NamespaceDeletionDiscoveryFailure", "False", "ResourcesDiscovered"],
      ["NamespaceDeletionGroupVersionParsingFailure", "False", "ParsedGroupVersions"],
      ["NamespaceDeletionContentFailure", "False", "ContentDeleted"],
      ["NamespaceContentRemaining", "False", "ContentRemoved"],
      ["NamespaceFinalizersRemaining", "False", "ContentHasNoFinalizers"],
    ],
  );
  for (const kind of [
    "v1/Pod",
    "apps/v1/ReplicaSet",
    "apps/v1/Deployment",
    "v1/ConfigMap",
    "v1/Secret",
  ] as const)
    assert.equal((await admin.resource(kind, "doomed").list()).items.length, 0, kind);
});
