/**
 * Builders of nodes and pods for the scheduler's tests and benchmark (in the spirit of upstream's
 * st.MakeNode()/st.MakePod()), and a framework with the default profile.
 */
import type { Container, Node, Pod, Taint, Toleration } from "kubernetes-types/core/v1.js";
import { defaultConfiguration, parseKubeSchedulerConfiguration, toProfile } from "./config.js";
import { Framework, type FrameworkOptions } from "./framework.js";
import { inTreeRegistry } from "./plugins/registry.js";

export interface NodeSpec {
  cpu?: string;
  memory?: string;
  pods?: string;
  labels?: Record<string, string>;
  taints?: Taint[];
  unschedulable?: boolean;
  extra?: Record<string, string>;
  images?: { names: string[]; sizeBytes: number }[];
}

export function makeNode(name: string, s: NodeSpec = {}): Node {
  const allocatable: Record<string, string> = {
    cpu: s.cpu ?? "4",
    memory: s.memory ?? "32Gi",
    pods: s.pods ?? "110",
    ...(s.extra ?? {}),
  };
  const node: Node = {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      uid: `uid-${name}`,
      labels: { "kubernetes.io/hostname": name, ...(s.labels ?? {}) },
    },
    spec: {},
    status: { allocatable, capacity: allocatable },
  };
  if (s.taints) node.spec!.taints = s.taints;
  if (s.unschedulable) node.spec!.unschedulable = true;
  if (s.images) node.status!.images = s.images;
  return node;
}

export interface PodSpecOpts {
  namespace?: string;
  cpu?: string;
  memory?: string;
  requests?: Record<string, string>;
  labels?: Record<string, string>;
  nodeName?: string;
  priority?: number;
  tolerations?: Toleration[];
  nodeSelector?: Record<string, string>;
  containers?: Container[];
  initContainers?: Container[];
  uid?: string;
  startTime?: string;
  schedulerName?: string;
}

let seq = 0;

export function makePod(name: string, o: PodSpecOpts = {}): Pod {
  const requests: Record<string, string> = { ...(o.requests ?? {}) };
  if (o.cpu) requests.cpu = o.cpu;
  if (o.memory) requests.memory = o.memory;
  const containers: Container[] = o.containers ?? [
    {
      name: "c",
      image: "busybox",
      ...(Object.keys(requests).length > 0 ? { resources: { requests } } : {}),
    },
  ];
  const pod: Pod = {
    ...(o.startTime ? { status: { startTime: o.startTime } } : {}),
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: o.namespace ?? "default",
      uid: o.uid ?? `uid-${name}-${++seq}`,
      ...(o.labels ? { labels: o.labels } : {}),
    },
    spec: { containers, schedulerName: o.schedulerName ?? "default-scheduler" },
  };
  const spec = pod.spec!;
  if (o.initContainers) spec.initContainers = o.initContainers;
  if (o.nodeName) spec.nodeName = o.nodeName;
  if (o.priority !== undefined) spec.priority = o.priority;
  if (o.tolerations) spec.tolerations = o.tolerations;
  if (o.nodeSelector) spec.nodeSelector = o.nodeSelector;
  return pod;
}

/** A framework with the default profile, or with the profile of a configuration document. */
export function defaultFramework(opts: FrameworkOptions = {}, configYAML?: string): Framework {
  const cfg = configYAML ? parseKubeSchedulerConfiguration(configYAML) : defaultConfiguration();
  return new Framework(toProfile(cfg.profiles[0]!), inTreeRegistry(), {
    percentageOfNodesToScore: cfg.percentageOfNodesToScore,
    ...opts,
  });
}

/** A deterministic random source (a linear congruential generator). */
export function seededRandom(seed = 1): (n: number) => number {
  let x = seed >>> 0;
  return (n: number) => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x % n;
  };
}
