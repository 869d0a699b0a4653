/**
 * `k8ts scheduler` and `k8ts sim` end to end: one `k8ts apiserver`, simulated nodes and
 * schedulers as child processes, the controller manager for the Deployment, and real kubectl:
 *
 * - a Deployment's pod stays Pending until the scheduler starts, then is bound, and the
 *   simulated node runs it (Running, Ready, a podIP from its podCIDR);
 * - a pod no node fits gets upstream's FailedScheduling message in its condition and event, and
 *   is bound as soon as a simulated node that fits registers;
 * - a Binding created by hand with kubectl puts a pod on the named node;
 * - a second profile schedules the pods that name it;
 * - a higher-priority pod preempts a lower-priority one and runs on its nominated node;
 * - two schedulers under leader election: one acts, the other takes over after SIGKILL.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import path from "node:path";
import { after, before, test } from "node:test";
import type { Lease } from "kubernetes-types/coordination/v1.js";
import type { Event, Pod } from "kubernetes-types/core/v1.js";
import { loadKubeconfig } from "../src/client/config.js";
import { Client } from "../src/client/resources.js";
import { freePort } from "../src/testing/net.js";
import { tempDir } from "../src/testing/tmp.js";
import { k8tsBin, kubectl, TestAPIServer } from "./support/apiserver.js";
import { K8tsProcess, waitFor as waitForTruthy } from "./support/process.js";

const dir = tempDir("k8ts-scheduler-");
let server: TestAPIServer;
let kubeconfig: string;
let client: Client;
const procs: Proc[] = [];

const LEADER_FLAGS = [
  "--leader-elect-lease-duration=3s",
  "--leader-elect-renew-deadline=2s",
  "--leader-elect-retry-period=500ms",
];

/** Two profiles; with --config, upstream takes the kubeconfig from the file (--kubeconfig is ignored). */
const twoProfiles = (kubeconfig: string) => `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: ${kubeconfig}
profiles:
- schedulerName: default-scheduler
- schedulerName: second-scheduler
  plugins:
    score:
      disabled:
      - name: NodeResourcesBalancedAllocation
`;

/** Waits for `check` (60 s by default: the sims and schedulers start as child processes). */
function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 60_000) {
  return waitForTruthy(what, check, timeoutMs);
}

/** A `k8ts <command>` child process and its log, stopped by its PID. */
class Proc extends K8tsProcess {
  constructor(args: string[]) {
    super(args, procs, 60_000);
  }
}

function k(args: string[], input?: string): string {
  const r = kubectl(kubeconfig, path.join(dir.path, "kube-cache"), args, input ? { input } : {});
  assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

function getPod(name: string): Pod {
  return JSON.parse(k(["get", "pod", name, "-o", "json"])) as Pod;
}

function podManifest(name: string, extra: { cpu?: string; schedulerName?: string } = {}): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: {
      ...(extra.schedulerName ? { schedulerName: extra.schedulerName } : {}),
      containers: [
        {
          name: "app",
          image: "registry.k8s.io/pause:3.10",
          ...(extra.cpu ? { resources: { requests: { cpu: extra.cpu } } } : {}),
        },
      ],
    },
  });
}

const running = (name: string) => () => {
  const p = getPod(name);
  return p.status?.phase === "Running" &&
    p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True")
    ? p
    : undefined;
};

function startSim(args: string[]): Proc {
  return new Proc(["sim", `--kubeconfig=${kubeconfig}`, ...args]);
}

async function startScheduler(extra: string[] = []): Promise<{ proc: Proc; port: number }> {
  const port = await freePort();
  const config = path.join(dir.path, "scheduler.yaml");
  fs.writeFileSync(config, twoProfiles(kubeconfig));
  const proc = new Proc([
    "scheduler",
    `--config=${config}`,
    "--bind-address=127.0.0.1",
    `--secure-port=${port}`,
    ...LEADER_FLAGS,
    ...extra,
  ]);
  return { proc, port };
}

function healthz(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: "127.0.0.1", port, path: "/healthz", rejectUnauthorized: false }, (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve(`${res.statusCode} ${body}`));
      })
      .on("error", reject);
  });
}

function events(name: string, reason: string): Event[] {
  const out = k([
    "get",
    "events",
    "--field-selector",
    `involvedObject.name=${name},reason=${reason}`,
    "-o",
    "json",
  ]);
  return (JSON.parse(out) as { items: Event[] }).items;
}

let leader: { proc: Proc; port: number };

before(async () => {
  server = new TestAPIServer(dir.path);
  await server.start();
  kubeconfig = server.writeKubeconfig(path.join(dir.path, "kubeconfig"));
  client = new Client(loadKubeconfig({ kubeconfig }));
  const sim = startSim([
    "--nodes=2",
    "--cpu=2",
    "--node-name-prefix=small-",
    "--pod-cidr=10.244.0.0/16",
  ]);
  await sim.waitForLog(/Registered 2 node\(s\)/);
  // Ready and without the registration taint.
  await waitFor("two schedulable nodes", () => {
    const nodes = JSON.parse(k(["get", "nodes", "-o", "json"])) as {
      items: { spec?: { taints?: unknown[] } }[];
    };
    return nodes.items.length === 2 && nodes.items.every((n) => !n.spec?.taints?.length);
  });
});

after(async () => {
  for (const p of procs) await p.stop("SIGKILL").catch(() => undefined);
  client?.close();
  await server?.stop();
  dir.remove();
});

test("a Deployment's pod stays Pending until the scheduler starts, then runs on a simulated node", async () => {
  const cm = new Proc([
    "controller-manager",
    `--kubeconfig=${kubeconfig}`,
    "--leader-elect=false",
    "--controllers=deployment,replicaset",
  ]);
  k(["create", "deployment", "web", "--image=registry.k8s.io/pause:3.10"]);
  const pod = await waitFor("the Deployment's pod", () => {
    const list = JSON.parse(k(["get", "pods", "-l", "app=web", "-o", "json"])) as { items: Pod[] };
    return list.items[0];
  });
  const name = pod.metadata!.name!;
  // Nothing schedules it: no node, no PodScheduled condition.
  assert.equal(pod.status?.phase, "Pending");
  assert.equal(pod.spec?.nodeName, undefined);
  assert.equal(
    pod.status?.conditions?.find((c) => c.type === "PodScheduled"),
    undefined,
  );
  assert.match(k(["get", "pod", name]), /Pending/);

  leader = await startScheduler();
  const p = await waitFor("the pod Running", running(name));
  assert.match(p.spec!.nodeName!, /^small-[01]$/);
  const index = Number(p.spec!.nodeName!.slice("small-".length));
  assert.equal(p.status?.podIP, `10.244.${index}.2`);
  assert.deepEqual(p.status?.podIPs, [{ ip: `10.244.${index}.2` }]);
  assert.equal(p.status?.hostIP, `10.250.0.${index + 1}`);
  assert.ok(p.status?.startTime);
  assert.deepEqual(p.status?.conditions?.map((c) => `${c.type}=${c.status}`).sort(), [
    "ContainersReady=True",
    "Initialized=True",
    "PodReadyToStartContainers=True",
    "PodScheduled=True",
    "Ready=True",
  ]);
  assert.ok(p.status?.containerStatuses?.[0]?.state?.running);
  const wide = k(["get", "pod", name, "-o", "wide"]);
  assert.match(
    wide,
    new RegExp(
      `${name}\\s+1/1\\s+Running\\s+0\\s+\\S+\\s+10\\.244\\.${index}\\.2\\s+small-${index}`,
    ),
  );
  const scheduled = await waitFor("the Scheduled event", () => events(name, "Scheduled")[0]);
  assert.equal(scheduled.message, `Successfully assigned default/${name} to small-${index}`);
  assert.equal(scheduled.source?.component, "default-scheduler");
  assert.equal(await healthz(leader.port), "200 ok");

  // The simulated kubelet finishes a graceful delete; the Deployment replaces the pod.
  k(["delete", "pod", name, "--wait=true"]);
  await waitFor("a replacement Running", () => {
    const list = JSON.parse(k(["get", "pods", "-l", "app=web", "-o", "json"])) as { items: Pod[] };
    return list.items.length === 1 &&
      list.items[0]!.metadata!.name !== name &&
      list.items[0]!.status?.phase === "Running"
      ? list.items[0]
      : undefined;
  });
  k(["delete", "deployment", "web"]);
  await cm.stop();
});

test("an unschedulable pod gets upstream's message and is bound once a node that fits registers", async () => {
  k(["create", "-f-"], podManifest("big", { cpu: "8" }));
  const message =
    "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.";
  const cond = await waitFor("the PodScheduled=False condition", () =>
    getPod("big").status?.conditions?.find((c) => c.type === "PodScheduled"),
  );
  assert.equal(cond.status, "False");
  assert.equal(cond.reason, "Unschedulable");
  assert.equal(cond.message, message);
  const failed = await waitFor(
    "the FailedScheduling event",
    () => events("big", "FailedScheduling")[0],
  );
  assert.equal(failed.type, "Warning");
  assert.equal(failed.message, message);
  assert.match(
    k(["describe", "pod", "big"]),
    new RegExp(
      `Warning\\s+FailedScheduling\\s+\\S+\\s+default-scheduler\\s+${message.replace(/[.()]/g, "\\$&")}`,
    ),
  );

  const t0 = Date.now();
  startSim([
    "--nodes=1",
    "--cpu=16",
    "--node-name-prefix=large-",
    "--pod-cidr=10.245.0.0/16",
    "--node-ip-cidr=10.251.0.0/16",
  ]);
  const p = await waitFor("big Running on large-0", running("big"));
  assert.equal(p.spec?.nodeName, "large-0");
  assert.equal(p.status?.podIP, "10.245.0.2");
  // Well before the five-minute flush of unschedulable pods.
  assert.ok(Date.now() - t0 < 60_000);
});

test("a Binding created by hand with kubectl puts a pod on the named node", async () => {
  k(["create", "-f-"], podManifest("manual", { schedulerName: "nobody" }));
  k(
    ["create", "-f-"],
    JSON.stringify({
      apiVersion: "v1",
      kind: "Binding",
      metadata: { name: "manual" },
      target: { apiVersion: "v1", kind: "Node", name: "small-1" },
    }),
  );
  const p = await waitFor("manual Running", running("manual"));
  assert.equal(p.spec?.nodeName, "small-1");
  assert.match(p.status!.podIP!, /^10\.244\.1\.\d+$/);
});

test("a second profile schedules the pods that name it", async () => {
  k(["create", "-f-"], podManifest("second", { schedulerName: "second-scheduler" }));
  const p = await waitFor("second Running", running("second"));
  assert.ok(p.spec?.nodeName);
  const ev = await waitFor("its Scheduled event", () => events("second", "Scheduled")[0]);
  assert.equal(ev.source?.component, "second-scheduler");
});

test("preemption: a higher-priority pod evicts a lower-priority one and runs on its node", async () => {
  for (const [name, value] of [
    ["sched-test-low", 10],
    ["sched-test-high", 1000],
  ] as const)
    k(["create", "priorityclass", name, `--value=${value}`]);
  startSim([
    "--nodes=1",
    "--cpu=1",
    "--node-name-prefix=tiny-",
    "--labels=dedicated=preemption",
    "--pod-cidr=10.246.0.0/16",
    "--node-ip-cidr=10.252.0.0/16",
  ]);
  const pinned = (name: string, priorityClassName: string) =>
    JSON.stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: "default" },
      spec: {
        priorityClassName,
        nodeSelector: { dedicated: "preemption" },
        containers: [
          {
            name: "app",
            image: "registry.k8s.io/pause:3.10",
            resources: { requests: { cpu: "800m" } },
          },
        ],
      },
    });
  k(["create", "-f-"], pinned("victim", "sched-test-low"));
  const victim = await waitFor("victim Running", running("victim"));
  assert.equal(victim.spec?.nodeName, "tiny-0");

  k(["create", "-f-"], pinned("preemptor", "sched-test-high"));
  const p = await waitFor("preemptor Running", running("preemptor"));
  assert.equal(p.spec?.nodeName, "tiny-0");
  // The victim is gone (the simulated kubelet finished its graceful delete), with the Preempted event.
  await waitFor("victim deleted", () => {
    const r = kubectl(kubeconfig, path.join(dir.path, "kube-cache"), ["get", "pod", "victim"]);
    return r.code === 1 && /pods "victim" not found/.test(r.stderr);
  });
  const preempted = await waitFor("the Preempted event", () => events("victim", "Preempted")[0]);
  assert.equal(preempted.message, `Preempted by pod ${p.metadata!.uid!} on node tiny-0`);
  // The preemptor was nominated to the node while it waited.
  const failed = await waitFor(
    "the preemptor's FailedScheduling event",
    () => events("preemptor", "FailedScheduling")[0],
  );
  assert.match(
    failed.message!,
    /^0\/\d+ nodes are available: 1 Insufficient cpu, \d+ node\(s\) didn't match Pod's node affinity\/selector\./,
  );
});

test("two schedulers: one leads, the other takes over after SIGKILL of the leader", async () => {
  await leader.proc.waitForLog(/successfully acquired lease kube-system\/kube-scheduler/);
  const standby = await startScheduler();
  await standby.proc.waitForLog(/attempting to acquire leader lease kube-system\/kube-scheduler/);
  const leases = client.resource("coordination.k8s.io/v1/Lease", "kube-system");
  const before = await leases.get("kube-scheduler");
  const first = before.spec?.holderIdentity;
  assert.ok(first);

  k(["create", "-f-"], podManifest("while-standby"));
  await waitFor("while-standby Running", running("while-standby"));
  assert.doesNotMatch(standby.proc.log, /successfully acquired lease/);
  assert.equal((await leases.get("kube-scheduler")).spec?.holderIdentity, first);

  await leader.proc.stop("SIGKILL");
  k(["create", "-f-"], podManifest("after-handover"));
  await standby.proc.waitForLog(/successfully acquired lease kube-system\/kube-scheduler/);
  const after: Lease = await leases.get("kube-scheduler");
  assert.notEqual(after.spec?.holderIdentity, first);
  assert.equal(after.spec?.leaseTransitions, (before.spec?.leaseTransitions ?? 0) + 1);
  const p = await waitFor("after-handover Running", running("after-handover"));
  assert.ok(p.spec?.nodeName);
  assert.equal(await healthz(standby.port), "200 ok");
  await standby.proc.stop();
  assert.equal(await standby.proc.exited, 0);
});

test("without --kubeconfig or --master the scheduler names what is missing, as upstream", () => {
  const env = { ...process.env };
  delete env.KUBERNETES_SERVICE_HOST;
  delete env.KUBERNETES_SERVICE_PORT;
  delete env.KUBECONFIG;
  const r = spawnSync(k8tsBin, ["scheduler", "--secure-port=0"], { encoding: "utf8", env });
  assert.equal(r.status, 1);
  assert.match(
    r.stderr,
    /Neither --kubeconfig nor --master was specified\. Using default API client\. This might not work/,
  );
  assert.match(
    r.stderr,
    /"command failed" err="invalid configuration: no configuration has been provided, try setting KUBERNETES_MASTER environment variable"/,
  );
});

test("k8ts sim refuses ranges too small for its nodes and malformed taints", () => {
  const sim = (args: string[]) =>
    spawnSync(k8tsBin, ["sim", "--master=http://127.0.0.1:1", ...args], { encoding: "utf8" });
  let r = sim(["--nodes=300"]);
  assert.equal(r.status, 1);
  assert.match(
    r.stderr,
    /--pod-cidr 10\.244\.0\.0\/16 holds 256 \/24 subnet\(s\), too few for 300 nodes/,
  );
  r = sim(["--taints=dedicated=gpu:Sometimes"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /invalid taint spec: dedicated=gpu:Sometimes/);
});
