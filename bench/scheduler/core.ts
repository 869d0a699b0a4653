/**
 * The scheduler core's throughput on upstream's SchedulingBasic shape: 5,000 nodes (4 CPU, 32Gi,
 * 110 pods) and 10,000 pods (100m CPU, 500Mi memory, the pause image), scheduled in process
 * through the whole core: queue, snapshot refresh, PreFilter/Filter/PreScore/Score with the default
 * profile and percentageOfNodesToScore sampling, assume, binding acknowledged and the bound pod
 * confirmed by an informer event. No API server: this is the ceiling the `k8ts scheduler` command
 * builds on.
 *
 *   node dist/bench/scheduler/core.js [--nodes N] [--pods N] [--init-pods N]
 *
 * Prints a table, one line `BENCH_JSON {...}`, and the goal check. Exits 0 whatever the figures.
 */
import { performance } from "node:perf_hooks";
import type { Node, Pod } from "kubernetes-types/core/v1.js";
import { Scheduler } from "../../src/scheduler/scheduler.js";
import { formatMs, printGoals, printTable, summarize } from "../lib/stats.js";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}

const NODES = arg("--nodes", 5000);
const PODS = arg("--pods", 10000);
const INIT_PODS = arg("--init-pods", 1000);
const GOAL_PODS_PER_SECOND = 1000;

function node(i: number): Node {
  const name = `node-${i}`;
  const zone = `zone-${i % 3}`;
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      uid: `uid-node-${i}`,
      labels: {
        "kubernetes.io/hostname": name,
        "topology.kubernetes.io/zone": zone,
        "kubernetes.io/os": "linux",
      },
    },
    spec: {},
    status: {
      allocatable: { cpu: "4", memory: "32Gi", pods: "110" },
      capacity: { cpu: "4", memory: "32Gi", pods: "110" },
      images: [{ names: ["registry.k8s.io/pause:3.10"], sizeBytes: 300_000 }],
    },
  };
}

function pod(prefix: string, i: number): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: `${prefix}-${i}`, namespace: "default", uid: `uid-${prefix}-${i}` },
    spec: {
      schedulerName: "default-scheduler",
      containers: [
        {
          name: "pause",
          image: "registry.k8s.io/pause:3.10",
          ports: [{ containerPort: 80 }],
          resources: {
            requests: { cpu: "100m", memory: "500Mi" },
            limits: { cpu: "100m", memory: "500Mi" },
          },
        },
      ],
    },
  };
}

/** Schedules every pod in the queue; returns per-pod latencies (ms) and how many were bound. */
function drain(s: Scheduler): { bound: number; failed: number; latencies: number[] } {
  let bound = 0;
  let failed = 0;
  const latencies: number[] = [];
  for (;;) {
    const t0 = performance.now();
    const d = s.scheduleOne();
    if (!d) break;
    if (d.kind === "bind") {
      s.bindingSucceeded(d.pod);
      const boundPod: Pod = { ...d.pod, spec: { ...d.pod.spec!, nodeName: d.nodeName } };
      s.onPodUpdate(d.pod, boundPod);
      bound++;
    } else failed++;
    latencies.push(performance.now() - t0);
  }
  return { bound, failed, latencies };
}

const s = new Scheduler();
const setupStart = performance.now();
for (let i = 0; i < NODES; i++) s.onNodeAdd(node(i));
for (let i = 0; i < INIT_PODS; i++) s.onPodAdd(pod("init", i));
const init = drain(s);
const setupMs = performance.now() - setupStart;

for (let i = 0; i < PODS; i++) s.onPodAdd(pod("measured", i));
const start = performance.now();
const cpuStart = process.cpuUsage();
const run = drain(s);
const ms = performance.now() - start;
const cpu = process.cpuUsage(cpuStart);
const podsPerSecond = (run.bound / ms) * 1000;
const lat = summarize(run.latencies);

console.log(
  `Scheduler core: SchedulingBasic, ${NODES} nodes, ${INIT_PODS} initial pods, ${PODS} measured pods`,
);
printTable([
  { phase: "setup (nodes + initial pods)", pods: init.bound, time: formatMs(setupMs) },
  {
    phase: "measured pods",
    pods: run.bound,
    time: formatMs(ms),
    "pods/s": Math.round(podsPerSecond),
    "p50/pod": formatMs(lat.p50),
    "p99/pod": formatMs(lat.p99),
    "CPU time": formatMs((cpu.user + cpu.system) / 1000),
  },
]);
console.log(
  "BENCH_JSON " +
    JSON.stringify({
      nodes: NODES,
      initPods: INIT_PODS,
      pods: PODS,
      bound: run.bound,
      failed: run.failed + init.failed,
      ms: Math.round(ms),
      podsPerSecond: Math.round(podsPerSecond),
      p50Ms: lat.p50,
      p99Ms: lat.p99,
      heapMB: Math.round(process.memoryUsage().heapUsed / 1e6),
    }),
);
printGoals([
  {
    goal: "scheduler core throughput (SchedulingBasic 5000 nodes)",
    target: `>= ${GOAL_PODS_PER_SECOND} pods/s (end to end later; the core alone should be well above)`,
    measured: `${Math.round(podsPerSecond)} pods/s`,
    value: podsPerSecond,
    pass: run.failed === 0 && podsPerSecond >= GOAL_PODS_PER_SECOND,
  },
]);
