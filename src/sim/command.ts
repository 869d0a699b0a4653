/**
 * `k8ts sim`: N simulated nodes against an API server (see nodes.ts), so that the control plane
 * can be exercised at scale without containers. A client of the API like any other component:
 * --kubeconfig and/or --master.
 */
import type { Taint } from "kubernetes-types/core/v1.js";
import { defineCommand } from "../cli/command.js";
import { flag, type FlagValues } from "../cli/flags.js";
import { kubernetesVersion } from "../cli/version.js";
import {
  buildConfigFromFlags,
  ConfigError,
  defaultUserAgent,
  type RestConfig,
} from "../client/config.js";
import { Client } from "../client/resources.js";
import { klogLine, stderrLogger } from "../controllers/context.js";
import { formatCIDR, hostAddress, parseCIDR, subnet, subnetCount } from "./cidr.js";
import { NodeSimulator, type SimNodeSpec } from "./nodes.js";

export const simFlags = {
  kubeconfig: flag.string(
    "Path to a kubeconfig file with the API server's address and credentials",
  ),
  master: flag.string(
    "The address of the Kubernetes API server (overrides any value in kubeconfig)",
  ),
  nodes: flag.int("How many nodes to simulate", 1),
  "node-name-prefix": flag.string(
    "Node names are this prefix followed by the node's number (0, 1, ...)",
    "sim-node-",
  ),
  cpu: flag.string("CPU capacity (and allocatable) of each node", "4"),
  memory: flag.string("Memory capacity (and allocatable) of each node", "32Gi"),
  pods: flag.string("How many pods each node can run (status.capacity.pods)", "110"),
  "ephemeral-storage": flag.string("Ephemeral storage capacity of each node", "100Gi"),
  labels: flag.strings(
    "Labels to add to every node, as key=value pairs (comma separated or repeated)",
  ),
  taints: flag.strings(
    "Taints every node registers with, as key[=value]:Effect (comma separated or repeated)",
  ),
  "pod-cidr": flag.string(
    "Range each node takes a /24 of for its pods, by its number, unless spec.podCIDR is set",
    "10.244.0.0/16",
  ),
  "node-ip-cidr": flag.string(
    "Range the nodes' InternalIP addresses are numbered from (nothing listens on them)",
    "10.250.0.0/16",
  ),
  "heartbeat-interval": flag.duration(
    "How often each node renews its Lease in kube-node-lease (the kubelet renews every 10s)",
    10_000,
  ),
  "node-lease-duration-seconds": flag.int("The duration each node's Lease claims", 40),
  "node-status-report-frequency": flag.duration(
    "How often each node posts its status when nothing changed",
    300_000,
  ),
  "startup-delay": flag.duration(
    "How long a pod bound to a node stays Pending before it is Running and Ready",
    0,
  ),
  "termination-delay": flag.duration(
    "How long a pod marked for deletion takes to stop before it is removed",
    0,
  ),
  "remove-not-ready-taint": flag.bool(
    "Lift the node.kubernetes.io/not-ready:NoSchedule taint the API server adds at registration, which is the node lifecycle controller's part: set it false when a controller manager runs",
    true,
  ),
  "max-requests-inflight": flag.int("API requests in flight at most", 64),
  "kube-api-qps": flag.int("QPS to the API server; 0 does not throttle", 0),
  "kube-api-burst": flag.int("Burst to the API server", 100),
};

export type SimFlags = FlagValues<typeof simFlags>;

const EFFECTS = new Set(["NoSchedule", "PreferNoSchedule", "NoExecute"]);

/** "key=value:Effect" or "key:Effect", as kubectl taint writes them. */
export function parseTaint(s: string): Taint {
  const i = s.lastIndexOf(":");
  const effect = i < 0 ? "" : s.slice(i + 1);
  if (i < 0 || !EFFECTS.has(effect))
    throw new Error(
      `invalid taint spec: ${s}, effect must be one of NoSchedule, PreferNoSchedule, NoExecute`,
    );
  const kv = s.slice(0, i);
  const eq = kv.indexOf("=");
  const key = eq < 0 ? kv : kv.slice(0, eq);
  if (!key) throw new Error(`invalid taint spec: ${s}`);
  return eq < 0 ? { key, effect } : { key, value: kv.slice(eq + 1), effect };
}

export function parseLabels(items: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new Error(`invalid label "${item}": want key=value`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/** The nodes' names, /24s and addresses; throws when the ranges are too small for N nodes. */
export function planNodes(
  f: Pick<SimFlags, "nodes" | "node-name-prefix" | "pod-cidr" | "node-ip-cidr">,
): SimNodeSpec[] {
  const podRange = parseCIDR(f["pod-cidr"]);
  const ipRange = parseCIDR(f["node-ip-cidr"]);
  const subnets = subnetCount(podRange, 24);
  if (f.nodes > subnets)
    throw new Error(
      `--pod-cidr ${formatCIDR(podRange)} holds ${subnets} /24 subnet(s), too few for ${f.nodes} nodes`,
    );
  const hosts = 2 ** (32 - ipRange.prefix) - 2;
  if (f.nodes > hosts)
    throw new Error(
      `--node-ip-cidr ${formatCIDR(ipRange)} holds ${Math.max(hosts, 0)} address(es), too few for ${f.nodes} nodes`,
    );
  return Array.from({ length: f.nodes }, (_, i) => ({
    name: `${f["node-name-prefix"]}${i}`,
    podCIDR: subnet(podRange, 24, i),
    ip: hostAddress(ipRange, i),
  }));
}

export async function runSimCommand(f: SimFlags, signal: AbortSignal): Promise<number> {
  const log = stderrLogger("sim.go");
  const fail = (msg: string) => {
    process.stderr.write(klogLine("E", "sim.go", `"command failed" err="${msg}"`));
    return 1;
  };
  let nodes: SimNodeSpec[];
  let labels: Record<string, string>;
  let taints: Taint[];
  try {
    if (f.nodes < 1) throw new Error(`--nodes must be at least 1, got ${f.nodes}`);
    nodes = planNodes(f);
    labels = parseLabels(f.labels);
    taints = f.taints.map(parseTaint);
  } catch (err) {
    return fail((err as Error).message);
  }
  let config: RestConfig;
  try {
    config = buildConfigFromFlags(f.master, f.kubeconfig, {
      userAgent: defaultUserAgent("k8ts-sim", kubernetesVersion.gitVersion),
    });
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message);
    throw err;
  }
  if (f["kube-api-qps"] > 0) {
    config.qps = f["kube-api-qps"];
    config.burst = f["kube-api-burst"];
  }
  const client = new Client(config, { maxConnections: f["max-requests-inflight"] });
  const sim = new NodeSimulator({
    client,
    nodes,
    capacity: {
      cpu: f.cpu,
      memory: f.memory,
      pods: f.pods,
      "ephemeral-storage": f["ephemeral-storage"],
    },
    labels,
    taints,
    heartbeatInterval: f["heartbeat-interval"],
    leaseDurationSeconds: f["node-lease-duration-seconds"],
    statusReportFrequency: f["node-status-report-frequency"],
    startupDelay: f["startup-delay"],
    terminationDelay: f["termination-delay"],
    removeNotReadyTaint: f["remove-not-ready-taint"],
    concurrency: f["max-requests-inflight"],
    log,
  });
  log.info(
    `Simulating ${nodes.length} node(s): ${nodes[0]!.name} .. ${nodes[nodes.length - 1]!.name}`,
  );
  try {
    await sim.start(signal);
  } finally {
    client.close();
  }
  return 0;
}

export const simCommand = defineCommand({
  name: "sim",
  summary: "Run simulated nodes that play a kubelet's part without containers",
  flags: simFlags,
  run: (f, _args, signal) => runSimCommand(f, signal),
});
