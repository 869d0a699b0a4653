/**
 * The scheduler end to end on one machine: `k8ts apiserver`, `k8ts sim` nodes and
 * `k8ts scheduler` as child processes, and this process as the client that creates pods and
 * watches them.
 *
 * 1. SchedulingBasic: 5,000 simulated nodes (4 CPU, 32Gi, 110 pods), 1,000 pods created and bound
 *    first, then 10,000 measured pods (100m CPU, 500Mi, generateName, 128 creates in flight):
 *    pods/s from the first create to the last pod seen bound, and create-to-bound latency
 *    percentiles (from sending the create to the watch event that shows spec.nodeName).
 * 2. Upstream's TopologySpreading and SchedulingPodAntiAffinity shapes on the same 5,000 nodes
 *    (see spreadWorkload and antiAffinityWorkload), once each: pods/s and create-to-bound.
 * 3. A 1,000-node cluster taking 30,000 pods to Running: the time, and the API server's RSS.
 *
 *   node dist/bench/scheduler/main.js [--nodes N] [--pods N] [--init-pods N] [--runs N]
 *        [--big-nodes N] [--big-pods N] [--in-flight N] [--skip-basic] [--skip-spread]
 *        [--skip-anti] [--skip-big] [--profile DIR]
 *
 * The creates keep 128 requests in flight: with 64, a create's latency under this load (about
 * 60 ms) capped what this process offered near 1,000 pods/s, so the figure was the load
 * generator's rather than the scheduler's; upstream's scheduler_perf likewise creates pods as
 * fast as its API server takes them and measures the rate at which they are scheduled.
 *
 * This process sees pods bound and Running on a raw watch of the plain port, reading each event
 * line for the node name and phase without decoding it, so that the observer takes little of
 * the two cores the components share.
 *
 * SchedulingBasic runs `--runs` times (3 by default), each on a fresh cluster, and its figure
 * (and the goal check) is the median run: single runs on this VM vary by up to 30%.
 *
 * The components talk HTTPS to the API server with a kubeconfig, as in a cluster; the scheduler
 * runs with clientConnection qps/burst 5000 (upstream's default of 50 would cap binding at
 * 50 pods/s; upstream's scheduler_perf raises it likewise). Prints tables, one line
 * `BENCH_JSON {...}` and the goal check. Exits 0 whatever the figures.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import type { Pod } from "kubernetes-types/core/v1.js";
import { isStatusError } from "../../src/api/status.js";
import { loadKubeconfig } from "../../src/client/config.js";
import { kubeconfigYaml } from "../../src/client/kubeconfig.js";
import { Client } from "../../src/client/resources.js";
import {
  k8tsBin,
  killAllNow,
  startAPIServer,
  stopAll,
  type ServerProc,
} from "../apiserver/procs.js";
import { formatBytes, formatMs, percentile, printGoals, printTable } from "../lib/stats.js";
import { processCpuMs, processMemory } from "../lib/sys.js";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const flag = (name: string) => process.argv.includes(name);

const NODES = arg("--nodes", 5000);
const PODS = arg("--pods", 10_000);
const INIT_PODS = arg("--init-pods", 1000);
const BASIC_RUNS = arg("--runs", 3);
const BIG_NODES = arg("--big-nodes", 1000);
const BIG_PODS = arg("--big-pods", 30_000);
const IN_FLIGHT = arg("--in-flight", 128);
const GOAL_PODS_PER_SECOND = 1000;
/** --profile DIR: CPU profiles of the sim and scheduler processes go to DIR. */
const profileDir = process.argv[process.argv.indexOf("--profile") + 1];
const PROFILE =
  process.argv.includes("--profile") && profileDir
    ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`]
    : [];

const children = new Set<ChildProcess>();
/** Creates answered AlreadyExists for a generated name (retried). */
let collisions = 0;

/** A `k8ts` child; its log is kept (the tail) for errors. */
function startK8ts(args: string[]): { child: ChildProcess; log: () => string } {
  const child = spawn(process.execPath, [...PROFILE, k8tsBin, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let log = "";
  const keep = (d: Buffer) => {
    log += d.toString();
    if (log.length > 64 * 1024) log = log.slice(-32 * 1024);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  child.once("exit", () => children.delete(child));
  return { child, log: () => log };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(t);
}

async function stopChildren(): Promise<void> {
  await Promise.all([...children].map(stopChild));
}

function cleanupAndExit(code: number): never {
  for (const c of children) if (c.exitCode === null && c.pid) c.kill("SIGKILL");
  killAllNow();
  process.exit(code);
}
process.once("SIGINT", () => cleanupAndExit(130));
process.once("SIGTERM", () => cleanupAndExit(143));

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The pods of the workloads: upstream scheduler_perf's templates, in our namespace. */
type PodKind = "basic" | "spread" | "anti";

function pod(kind: PodKind = "basic"): Pod {
  const resources = { requests: { cpu: "100m", memory: "500Mi" } };
  const p: Pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { generateName: "pod-", namespace: "default" },
    spec: { containers: [{ name: "pause", image: "registry.k8s.io/pause:3.10", resources }] },
  };
  if (kind === "basic") return p;
  p.spec!.containers[0]!.resources = { requests: resources.requests, limits: resources.requests };
  p.spec!.containers[0]!.ports = [{ containerPort: 80 }];
  if (kind === "spread") {
    p.metadata!.generateName = "spreading-pod-";
    p.metadata!.labels = { color: "blue" };
    p.spec!.topologySpreadConstraints = [
      {
        maxSkew: 5,
        topologyKey: ZONE_LABEL,
        whenUnsatisfiable: "DoNotSchedule",
        labelSelector: { matchLabels: { color: "blue" } },
      },
    ];
  } else {
    p.metadata!.generateName = "anti-affinity-pod-";
    p.metadata!.labels = { color: "green" };
    p.spec!.affinity = {
      podAntiAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: [
          { labelSelector: { matchLabels: { color: "green" } }, topologyKey: HOSTNAME_LABEL },
        ],
      },
    };
  }
  return p;
}

const ZONE_LABEL = "topology.kubernetes.io/zone";
const HOSTNAME_LABEL = "kubernetes.io/hostname";

interface Cluster {
  server: ServerProc;
  client: Client;
  abort: AbortController;
  /** When the watch first showed each pod bound / Running (performance.now()). */
  boundAt: Map<string, number>;
  runningAt: Map<string, number>;
  setupMs: number;
  simPid: number;
  schedulerPid: number;
}

/** API server, simulated nodes and the scheduler, ready to take pods. */
async function startCluster(
  dir: string,
  nodes: number,
  prepare?: (client: Client) => Promise<void>,
): Promise<Cluster> {
  const t0 = performance.now();
  const server = await startAPIServer(dir, PROFILE, ["--disable-admission-plugins=ServiceAccount"]);
  const kubeconfig = path.join(dir, "kubeconfig");
  fs.writeFileSync(
    kubeconfig,
    kubeconfigYaml({
      server: `https://127.0.0.1:${server.securePort}`,
      caFile: path.join(dir, "certs", "apiserver.crt"),
      user: "bench",
      token: "bench",
    }),
  );
  const client = new Client(loadKubeconfig({ kubeconfig }), { maxConnections: IN_FLIGHT });
  const sim = startK8ts([
    "sim",
    `--kubeconfig=${kubeconfig}`,
    `--nodes=${nodes}`,
    "--cpu=4",
    "--memory=32Gi",
    "--pods=110",
    "--pod-cidr=10.64.0.0/10",
    "--node-ip-cidr=10.128.0.0/16",
    "--labels=topology.kubernetes.io/zone=zone-a",
  ]);
  await waitFor(
    `${nodes} nodes registered`,
    () => {
      if (sim.child.exitCode !== null) throw new Error(`k8ts sim exited:\n${sim.log()}`);
      return /Registered \d+ node\(s\)/.test(sim.log());
    },
    600_000,
  );
  const nodeList = client.resource("v1/Node");
  await waitFor(
    "every node without the registration taint",
    async () => {
      const list = await nodeList.listAll();
      return list.items.length === nodes && list.items.every((n) => !n.spec?.taints?.length);
    },
    600_000,
  );
  if (prepare) await prepare(client);
  const cfg = path.join(dir, "scheduler.yaml");
  fs.writeFileSync(
    cfg,
    `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: ${kubeconfig}
  qps: 5000
  burst: 5000
leaderElection:
  leaderElect: false
`,
  );
  const sched = startK8ts(["scheduler", `--config=${cfg}`, "--secure-port=0"]);
  await waitFor(
    "the scheduler's caches",
    () => {
      if (sched.child.exitCode !== null) throw new Error(`k8ts scheduler exited:\n${sched.log()}`);
      return /Caches are synced/.test(sched.log());
    },
    600_000,
  );
  const abort = new AbortController();
  const boundAt = new Map<string, number>();
  const runningAt = new Map<string, number>();
  await watchPodLines(server.port, abort.signal, (line) => {
    // Pending pods tell nothing: only lines with a node name are looked at, and only a line
    // whose name cannot be read from its start is decoded.
    if (!line.includes('"nodeName":"')) return;
    const name = podNameOf(line);
    const now = performance.now();
    if (!boundAt.has(name)) boundAt.set(name, now);
    if (line.includes('"phase":"Running"') && !runningAt.has(name)) runningAt.set(name, now);
  });
  return {
    server,
    client,
    abort,
    boundAt,
    runningAt,
    setupMs: performance.now() - t0,
    simPid: sim.child.pid!,
    schedulerPid: sched.child.pid!,
  };
}

/**
 * Watches the default namespace's pods (on the plain loopback port) and hands each event line
 * to `onLine` undecoded: a
 * decoding informer over 30,000 events of several KiB would take a good share of the two cores
 * the components under test share. Resolves once the watch is open.
 */
function watchPodLines(
  port: number,
  signal: AbortSignal,
  onLine: (line: string) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      {
        host: "127.0.0.1",
        port,
        path: "/api/v1/namespaces/default/pods?watch=true",
        agent: false,
        signal,
      },
      (res) => {
        if (res.statusCode !== 200) return reject(new Error(`watch: HTTP ${res.statusCode}`));
        let tail = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          const lines = (tail + chunk).split("\n");
          tail = lines.pop()!;
          for (const line of lines) if (line) onLine(line);
        });
        res.on("end", () => {
          if (!signal.aborted) process.stderr.write("the pod watch ended early\n");
        });
        res.on("error", () => undefined);
        resolve();
      },
    );
    req.on("error", (err) => (signal.aborted ? undefined : reject(err)));
  });
}

/** A pod's name from its watch line (`...,"object":{"kind":"Pod",...,"metadata":{"name":"x"`). */
function podNameOf(line: string): string {
  const at = line.indexOf('"metadata":{"name":"');
  if (at >= 0) {
    const start = at + '"metadata":{"name":"'.length;
    return line.slice(start, line.indexOf('"', start));
  }
  return (JSON.parse(line) as { object: Pod }).object.metadata?.name ?? "";
}

async function stopCluster(c: Cluster): Promise<void> {
  c.abort.abort();
  await stopChildren();
  c.client.close();
  await c.server.stop();
}

/** CPU time used by each process since `cpuMark` was called (% of one core over the window). */
function cpuMark(c: Cluster): () => Record<string, string> {
  const pids = {
    apiserver: c.server.pid,
    sim: c.simPid,
    scheduler: c.schedulerPid,
    client: process.pid,
  };
  const t0 = performance.now();
  const before = Object.fromEntries(
    Object.entries(pids).map(([k, pid]) => [k, processCpuMs(pid) ?? 0]),
  );
  return () => {
    const ms = performance.now() - t0;
    return Object.fromEntries(
      Object.entries(pids).map(([k, pid]) => [
        `${k} CPU`,
        `${((((processCpuMs(pid) ?? 0) - before[k]!) * 100) / ms).toFixed(0)}%`,
      ]),
    );
  };
}

/** Creates `n` pods, `IN_FLIGHT` at a time; answers each pod's name and send time. */
async function createPods(
  c: Cluster,
  n: number,
  kind: PodKind = "basic",
): Promise<Map<string, number>> {
  const sent = new Map<string, number>();
  const api = c.client.resource("v1/Pod", "default");
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < n) {
        next++;
        const t = performance.now();
        // A generated name can collide (upstream's API server retries the generation itself
        // since 1.32's RetryGenerateName; k8ts's does not yet): retry as older clients did.
        for (;;) {
          try {
            const created = await api.create(pod(kind));
            sent.set(created.metadata!.name!, t);
            break;
          } catch (err) {
            if (!isStatusError(err) || err.reason !== "AlreadyExists") throw err;
            collisions++;
          }
        }
      }
    }),
  );
  return sent;
}

/** One of upstream scheduler_perf's shapes: nodes, pods created first, then measured pods. */
interface Workload {
  name: string;
  nodes: number;
  initPods: number;
  initKind: PodKind;
  measuredPods: number;
  measuredKind: PodKind;
  /** Run on the registered nodes before the scheduler starts (node labels). */
  prepare?: (client: Client) => Promise<void>;
}

const basicWorkload = (): Workload => ({
  name: "SchedulingBasic",
  nodes: NODES,
  initPods: INIT_PODS,
  initKind: "basic",
  measuredPods: PODS,
  measuredKind: "basic",
});

/**
 * Upstream's TopologySpreading (5000Nodes): nodes in three zones, 5,000 plain pods, then 2,000
 * pods spread over the zones with maxSkew 5 (DoNotSchedule).
 */
const spreadWorkload = (): Workload => ({
  name: "TopologySpreading",
  nodes: NODES,
  initPods: 5000,
  initKind: "basic",
  measuredPods: 2000,
  measuredKind: "spread",
  prepare: (client) => labelZones(client, ["moon-1", "moon-2", "moon-3"]),
});

/**
 * Upstream's SchedulingPodAntiAffinity (5000Nodes): 1,000 pods and then 1,000 measured ones,
 * each refusing a node that runs another of them (required anti-affinity on the hostname).
 */
const antiAffinityWorkload = (): Workload => ({
  name: "SchedulingPodAntiAffinity",
  nodes: NODES,
  initPods: 1000,
  initKind: "anti",
  measuredPods: 1000,
  measuredKind: "anti",
});

/** Puts the nodes in `zones`, round robin (upstream's labelNodePrepareStrategy). */
async function labelZones(client: Client, zones: string[]): Promise<void> {
  const api = client.resource("v1/Node");
  const names = (await api.listAll()).items.map((n) => n.metadata!.name!).sort();
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < names.length) {
        const i = next++;
        await api.patch(names[i]!, "merge", {
          metadata: { labels: { [ZONE_LABEL]: zones[i % zones.length]! } },
        });
      }
    }),
  );
}

async function runWorkload(root: string, w: Workload, run = 0): Promise<Record<string, number>> {
  console.log(
    `${w.name}: ${w.nodes} nodes, ${w.initPods} initial pods, ${w.measuredPods} measured pods`,
  );
  const c = await startCluster(path.join(root, `${w.name}-${run}`), w.nodes, w.prepare);
  try {
    console.log(`  cluster ready in ${formatMs(c.setupMs)}`);
    const init = await createPods(c, w.initPods, w.initKind);
    await waitFor(
      "the initial pods bound",
      () => [...init.keys()].every((n) => c.boundAt.has(n)),
      600_000,
    );
    const cpu = cpuMark(c);
    const t0 = performance.now();
    const sent = await createPods(c, w.measuredPods, w.measuredKind);
    const createdMs = performance.now() - t0;
    await waitFor(
      "the measured pods bound",
      () => [...sent.keys()].every((n) => c.boundAt.has(n)),
      1_800_000,
    );
    let last = 0;
    const latencies: number[] = [];
    for (const [name, t] of sent) {
      const b = c.boundAt.get(name)!;
      last = Math.max(last, b);
      latencies.push(Math.max(0, b - t));
    }
    const totalMs = last - t0;
    const cpuUse = cpu();
    const r = {
      nodes: w.nodes,
      pods: w.measuredPods,
      podsPerSecond: (w.measuredPods * 1000) / totalMs,
      totalMs,
      createMs: createdMs,
      p50Ms: percentile(latencies, 50),
      p90Ms: percentile(latencies, 90),
      p99Ms: percentile(latencies, 99),
      apiserverRss: processMemory(c.server.pid).rss ?? 0,
    };
    printTable([
      {
        run: `${w.name} ${w.nodes} nodes`,
        pods: w.measuredPods,
        "pods/s": r.podsPerSecond,
        total: formatMs(totalMs),
        "creates done": formatMs(createdMs),
        "p50 create-to-bound": formatMs(r.p50Ms),
        p90: formatMs(r.p90Ms),
        p99: formatMs(r.p99Ms),
      },
    ]);
    printTable([{ window: "measured pods", ...cpuUse }]);
    return r;
  } finally {
    await stopCluster(c);
  }
}

async function bigCluster(root: string): Promise<Record<string, number>> {
  console.log(`\n${BIG_NODES} nodes, ${BIG_PODS} pods to Running`);
  const c = await startCluster(path.join(root, "big"), BIG_NODES);
  try {
    const rssBefore = processMemory(c.server.pid).rss ?? 0;
    let peak = rssBefore;
    const sampler = setInterval(() => {
      peak = Math.max(peak, processMemory(c.server.pid).rss ?? 0);
    }, 500);
    const cpu = cpuMark(c);
    const t0 = performance.now();
    const sent = await createPods(c, BIG_PODS);
    await waitFor(
      "every pod Running",
      () => [...sent.keys()].every((n) => c.runningAt.has(n)),
      3_600_000,
    );
    let last = 0;
    for (const n of sent.keys()) last = Math.max(last, c.runningAt.get(n)!);
    clearInterval(sampler);
    const cpuUse = cpu();
    const mem = processMemory(c.server.pid);
    const r = {
      nodes: BIG_NODES,
      pods: BIG_PODS,
      allRunningMs: last - t0,
      podsPerSecond: (BIG_PODS * 1000) / (last - t0),
      apiserverRssBefore: rssBefore,
      apiserverRss: mem.rss ?? 0,
      apiserverRssPeak: Math.max(peak, mem.peak ?? 0),
    };
    printTable([
      {
        run: `${BIG_NODES} nodes`,
        pods: BIG_PODS,
        "all Running": formatMs(r.allRunningMs),
        "pods/s": r.podsPerSecond,
        "apiserver RSS before": formatBytes(rssBefore),
        "apiserver RSS after": formatBytes(r.apiserverRss),
        "apiserver peak RSS": formatBytes(r.apiserverRssPeak),
      },
    ]);
    printTable([{ window: "to all Running", ...cpuUse }]);
    return r;
  } finally {
    await stopCluster(c);
  }
}

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "k8ts-bench-scheduler-"));
  console.log(
    `machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? "?"}, node ${process.version}`,
  );
  const out: Record<string, unknown> = {};
  try {
    if (!flag("--skip-basic")) {
      // Each run on a fresh cluster; the figure is the median run (this VM's speed varies).
      const runs: Record<string, number>[] = [];
      for (let i = 0; i < BASIC_RUNS; i++) runs.push(await runWorkload(root, basicWorkload(), i));
      const sorted = [...runs].sort((a, b) => a.podsPerSecond! - b.podsPerSecond!);
      out.basic = { ...sorted[(sorted.length - 1) >> 1]!, runs: runs.length };
      out.basicRuns = runs.map((r) => Math.round(r.podsPerSecond!));
      if (runs.length > 1)
        console.log(
          `SchedulingBasic over ${runs.length} runs: ${runs.map((r) => r.podsPerSecond!.toFixed(0)).join(", ")} pods/s (median ${(out.basic as Record<string, number>).podsPerSecond!.toFixed(0)})`,
        );
    }
    if (!flag("--skip-spread")) out.spread = await runWorkload(root, spreadWorkload());
    if (!flag("--skip-anti")) out.antiAffinity = await runWorkload(root, antiAffinityWorkload());
    if (!flag("--skip-big")) out.big = await bigCluster(root);
  } finally {
    await stopChildren();
    await stopAll();
    fs.rmSync(root, { recursive: true, force: true });
  }
  out.generateNameCollisions = collisions;
  console.log("BENCH_JSON " + JSON.stringify(out));
  const basic = out.basic as Record<string, number> | undefined;
  printGoals([
    {
      goal: `SchedulingBasic ${NODES} nodes / ${PODS} pods end to end`,
      target: `>= ${GOAL_PODS_PER_SECOND} pods/s`,
      measured: basic ? `${basic.podsPerSecond!.toFixed(0)} pods/s` : "not run",
      ...(basic
        ? { value: basic.podsPerSecond!, pass: basic.podsPerSecond! >= GOAL_PODS_PER_SECOND }
        : {}),
    },
  ]);
}

main().catch((err: unknown) => {
  console.error(err);
  cleanupAndExit(1);
});
