/**
 * The scheduling framework's data: Status codes, PodInfo (a pod with its parsed affinity terms and
 * resources), NodeInfo (a node with the aggregates of the pods on it), the per-node statuses of a
 * failed attempt and the FitError message built from them, and CycleState.
 */
import type {
  Node,
  Pod,
  PodAffinityTerm,
  Taint,
  WeightedPodAffinityTerm,
} from "kubernetes-types/core/v1.js";
import { computePodResources, Resource, type PodResources } from "./resources.js";
import { Selector, type Labels } from "./selectors.js";

// ---- Status ----

export enum Code {
  Success = 0,
  Error = 1,
  Unschedulable = 2,
  UnschedulableAndUnresolvable = 3,
  Wait = 4,
  Skip = 5,
  Pending = 6,
}

/** The outcome of running a plugin. `null` stands for success where a Status is optional. */
export class Status {
  plugin = "";
  constructor(
    readonly code: Code,
    readonly reasons: readonly string[] = [],
    readonly error?: Error,
  ) {}

  static error(err: Error | string): Status {
    const e = typeof err === "string" ? new Error(err) : err;
    return new Status(Code.Error, [e.message], e);
  }

  withPlugin(name: string): Status {
    this.plugin = name;
    return this;
  }

  isSuccess(): boolean {
    return this.code === Code.Success;
  }

  /** Unschedulable or UnschedulableAndUnresolvable. */
  isRejected(): boolean {
    return (
      this.code === Code.Unschedulable ||
      this.code === Code.UnschedulableAndUnresolvable ||
      this.code === Code.Pending
    );
  }

  isSkip(): boolean {
    return this.code === Code.Skip;
  }

  message(): string {
    return this.reasons.join(", ");
  }
}

export const isSuccess = (s: Status | null | undefined): boolean => !s || s.code === Code.Success;

export const MAX_NODE_SCORE = 100;
export const MIN_NODE_SCORE = 0;
export const MAX_TOTAL_SCORE = 2 ** 63 - 1;

// ---- pods ----

/** A processed PodAffinityTerm (upstream's framework.AffinityTerm). */
export interface AffinityTerm {
  namespaces: Set<string>;
  selector: Selector;
  topologyKey: string;
  namespaceSelector: Selector;
}

export interface WeightedAffinityTerm extends AffinityTerm {
  weight: number;
}

/** What affinity terms look at in a pod (a PodInfo has both at hand; see podMeta). */
export interface PodMeta {
  readonly namespace: string;
  readonly labels: Labels | undefined;
}

/** A pod's namespace and labels, for a pod without a PodInfo. */
export function podMeta(pod: Pod): PodMeta {
  return { namespace: pod.metadata?.namespace ?? "", labels: pod.metadata?.labels };
}

/** True when `pod` is in one of the term's namespaces (or its namespace labels match) and its labels match. */
export function termMatches(
  term: AffinityTerm,
  pod: PodMeta,
  nsLabels: Labels | undefined,
): boolean {
  if (term.namespaces.has(pod.namespace) || term.namespaceSelector.matches(nsLabels)) {
    return term.selector.matches(pod.labels);
  }
  return false;
}

function safeSelector(sel: Parameters<typeof Selector.fromLabelSelector>[0]): Selector {
  try {
    return Selector.fromLabelSelector(sel);
  } catch {
    return Selector.NOTHING;
  }
}

export function newAffinityTerm(pod: Pod, term: PodAffinityTerm): AffinityTerm {
  const namespaces = new Set<string>();
  if ((term.namespaces ?? []).length === 0 && term.namespaceSelector == null) {
    namespaces.add(pod.metadata?.namespace ?? "");
  } else for (const n of term.namespaces ?? []) namespaces.add(n);
  return {
    namespaces,
    selector: safeSelector(term.labelSelector),
    topologyKey: term.topologyKey,
    namespaceSelector: safeSelector(term.namespaceSelector),
  };
}

function affinityTerms(pod: Pod, terms: PodAffinityTerm[] | undefined): AffinityTerm[] {
  return (terms ?? []).map((t) => newAffinityTerm(pod, t));
}

function weightedTerms(
  pod: Pod,
  terms: WeightedPodAffinityTerm[] | undefined,
): WeightedAffinityTerm[] {
  return (terms ?? []).map((t) => ({
    ...newAffinityTerm(pod, t.podAffinityTerm),
    weight: t.weight,
  }));
}

/** Unique key of a pod in the cache and queue: its UID (namespace/name when it has none). */
export function podKey(pod: Pod): string {
  return pod.metadata?.uid || `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`;
}

export function podPriority(pod: Pod): number {
  return pod.spec?.priority ?? 0;
}

/** A pod with what the scheduler derives from it once. */
export class PodInfo {
  readonly key: string;
  readonly requiredAffinityTerms: AffinityTerm[];
  readonly requiredAntiAffinityTerms: AffinityTerm[];
  readonly preferredAffinityTerms: WeightedAffinityTerm[];
  readonly preferredAntiAffinityTerms: WeightedAffinityTerm[];
  readonly hasAffinity: boolean;
  readonly hasRequiredAntiAffinity: boolean;
  /**
   * The pod's namespace, labels and whether it is terminating, kept on the PodInfo itself: the
   * plugins that count matching pods read them for every pod of the cluster in every cycle, and
   * reaching them through the pod and its metadata costs a cache miss at each step.
   */
  readonly namespace: string;
  readonly labels: Labels | undefined;
  readonly terminating: boolean;
  private resources: PodResources | undefined;

  constructor(readonly pod: Pod) {
    this.key = podKey(pod);
    const meta = pod.metadata;
    this.namespace = meta?.namespace ?? "";
    this.labels = meta?.labels;
    this.terminating = !!meta?.deletionTimestamp;
    const a = pod.spec?.affinity;
    this.requiredAffinityTerms = affinityTerms(
      pod,
      a?.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution,
    );
    this.requiredAntiAffinityTerms = affinityTerms(
      pod,
      a?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution,
    );
    this.preferredAffinityTerms = weightedTerms(
      pod,
      a?.podAffinity?.preferredDuringSchedulingIgnoredDuringExecution,
    );
    this.preferredAntiAffinityTerms = weightedTerms(
      pod,
      a?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution,
    );
    this.hasAffinity = a != null && (a.podAffinity != null || a.podAntiAffinity != null);
    this.hasRequiredAntiAffinity =
      (a?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []).length > 0;
  }

  /** Requests and non-zero CPU/memory, computed on first use. */
  get res(): PodResources {
    if (this.resources === undefined) this.resources = computePodResources(this.pod);
    return this.resources;
  }

  get name(): string {
    return this.pod.metadata?.name ?? "";
  }
}

// ---- host ports ----

export const DEFAULT_BIND_ALL_HOST_IP = "0.0.0.0";

/** Host ports in use on a node: IP -> set of "PROTOCOL/port". */
export class HostPortInfo {
  readonly byIP = new Map<string, Set<string>>();

  private static key(protocol: string | undefined, port: number): string {
    return `${protocol || "TCP"}/${port}`;
  }

  add(ip: string | undefined, protocol: string | undefined, port: number | undefined): void {
    if (!port || port <= 0) return;
    const addr = ip || DEFAULT_BIND_ALL_HOST_IP;
    let set = this.byIP.get(addr);
    if (!set) this.byIP.set(addr, (set = new Set()));
    set.add(HostPortInfo.key(protocol, port));
  }

  remove(ip: string | undefined, protocol: string | undefined, port: number | undefined): void {
    if (!port || port <= 0) return;
    const addr = ip || DEFAULT_BIND_ALL_HOST_IP;
    const set = this.byIP.get(addr);
    if (!set) return;
    set.delete(HostPortInfo.key(protocol, port));
    if (set.size === 0) this.byIP.delete(addr);
  }

  /** True when (ip, protocol, port) collides with a port in use; 0.0.0.0 collides with every IP. */
  checkConflict(
    ip: string | undefined,
    protocol: string | undefined,
    port: number | undefined,
  ): boolean {
    if (!port || port <= 0) return false;
    const addr = ip || DEFAULT_BIND_ALL_HOST_IP;
    const k = HostPortInfo.key(protocol, port);
    if (addr === DEFAULT_BIND_ALL_HOST_IP) {
      for (const set of this.byIP.values()) if (set.has(k)) return true;
      return false;
    }
    return (
      (this.byIP.get(addr)?.has(k) ?? false) ||
      (this.byIP.get(DEFAULT_BIND_ALL_HOST_IP)?.has(k) ?? false)
    );
  }

  get size(): number {
    let n = 0;
    for (const s of this.byIP.values()) n += s.size;
    return n;
  }

  clone(): HostPortInfo {
    const h = new HostPortInfo();
    for (const [ip, set] of this.byIP) h.byIP.set(ip, new Set(set));
    return h;
  }
}

// ---- nodes ----

/** An image on a node: its size and on how many nodes it is (counted when the snapshot was taken). */
export interface ImageStateSummary {
  size: number;
  numNodes: number;
}

let generation = 0;
/** Monotonic generation numbers shared by every NodeInfo, so that a re-created node never collides. */
export function nextGeneration(): number {
  return ++generation;
}

/**
 * A node and the aggregates of the pods on it (assumed pods included). Mutated only by the cache
 * and by preemption on private copies; the snapshot's NodeInfos change only between cycles.
 */
export class NodeInfo {
  /**
   * Copies of what the resource filter and scores read for hundreds of nodes in every cycle,
   * first in the object so that they share its first cache lines: reaching them through the pod
   * list and the Resource objects costs a cache miss at each step. Kept in step with `pods`,
   * `allocatable`, `requested` and `nonZeroRequested` by setNode, update and copyFrom.
   */
  podCount = 0;
  allowedPods = 0;
  allocMilliCPU = 0;
  allocMemory = 0;
  reqMilliCPU = 0;
  reqMemory = 0;
  nonZeroMilliCPU = 0;
  nonZeroMemory = 0;
  /** Lengths of podsWithAffinity and podsWithRequiredAntiAffinity, and PVCs in use. */
  withAffinity = 0;
  withRequiredAntiAffinity = 0;
  pvcCount = 0;
  node: Node | null = null;
  name = "";
  pods: PodInfo[] = [];
  podsWithAffinity: PodInfo[] = [];
  podsWithRequiredAntiAffinity: PodInfo[] = [];
  usedPorts = new HostPortInfo();
  requested = new Resource();
  nonZeroRequested = new Resource();
  allocatable = new Resource();
  imageStates = new Map<string, ImageStateSummary>();
  /** "namespace/claimName" -> number of pods on the node using the claim. */
  pvcRefCounts = new Map<string, number>();
  generation = nextGeneration();

  /**
   * What the filters and scores read of the node for every node in every cycle, kept here: going
   * through the node object costs a cache miss at each step, on thousands of nodes a cycle.
   */
  labels: Labels | undefined = undefined;
  taints: Taint[] | undefined = undefined;
  unschedulable = false;

  setNode(node: Node): void {
    this.node = node;
    this.name = node.metadata?.name ?? "";
    this.labels = node.metadata?.labels;
    this.taints = node.spec?.taints;
    this.unschedulable = !!node.spec?.unschedulable;
    this.allocatable = Resource.fromList(node.status?.allocatable);
    this.mirror();
    this.generation = nextGeneration();
  }

  /** Refreshes the hot copies (see podCount). */
  private mirror(): void {
    this.podCount = this.pods.length;
    this.allowedPods = this.allocatable.allowedPodNumber;
    this.allocMilliCPU = this.allocatable.milliCPU;
    this.allocMemory = this.allocatable.memory;
    this.reqMilliCPU = this.requested.milliCPU;
    this.reqMemory = this.requested.memory;
    this.nonZeroMilliCPU = this.nonZeroRequested.milliCPU;
    this.nonZeroMemory = this.nonZeroRequested.memory;
    this.withAffinity = this.podsWithAffinity.length;
    this.withRequiredAntiAffinity = this.podsWithRequiredAntiAffinity.length;
    this.pvcCount = this.pvcRefCounts.size;
  }

  removeNode(): void {
    this.node = null;
    this.labels = undefined;
    this.taints = undefined;
    this.unschedulable = false;
    this.generation = nextGeneration();
  }

  addPodInfo(pi: PodInfo): void {
    this.pods.push(pi);
    if (pi.hasAffinity) this.podsWithAffinity.push(pi);
    if (pi.hasRequiredAntiAffinity) this.podsWithRequiredAntiAffinity.push(pi);
    this.update(pi, 1);
  }

  addPod(pod: Pod): void {
    this.addPodInfo(new PodInfo(pod));
  }

  /** Removes the pod with this key; false when it is not on the node. */
  removePod(key: string): boolean {
    const i = this.pods.findIndex((p) => p.key === key);
    if (i < 0) return false;
    const pi = this.pods[i]!;
    this.pods[i] = this.pods[this.pods.length - 1]!;
    this.pods.pop();
    if (pi.hasAffinity) removeKey(this.podsWithAffinity, key);
    if (pi.hasRequiredAntiAffinity) removeKey(this.podsWithRequiredAntiAffinity, key);
    this.update(pi, -1);
    return true;
  }

  private update(pi: PodInfo, sign: number): void {
    const r = pi.res;
    this.requested.addResource(r.requests, sign);
    this.nonZeroRequested.milliCPU += sign * r.nonZeroMilliCPU;
    this.nonZeroRequested.memory += sign * r.nonZeroMemory;
    for (const c of pi.pod.spec?.containers ?? []) {
      for (const p of c.ports ?? []) {
        if (sign > 0) this.usedPorts.add(p.hostIP, p.protocol, p.hostPort);
        else this.usedPorts.remove(p.hostIP, p.protocol, p.hostPort);
      }
    }
    for (const v of pi.pod.spec?.volumes ?? []) {
      if (!v.persistentVolumeClaim) continue;
      const k = `${pi.namespace}/${v.persistentVolumeClaim.claimName}`;
      const n = (this.pvcRefCounts.get(k) ?? 0) + sign;
      if (n <= 0) this.pvcRefCounts.delete(k);
      else this.pvcRefCounts.set(k, n);
    }
    this.mirror();
    this.generation = nextGeneration();
  }

  /** A private copy (upstream's NodeInfo.Snapshot): pod lists and aggregates copied, pods shared. */
  snapshot(): NodeInfo {
    const c = new NodeInfo();
    c.copyFrom(this);
    return c;
  }

  /** Makes this NodeInfo an independent copy of `o` (used to refresh a snapshot in place). */
  copyFrom(o: NodeInfo): void {
    this.node = o.node;
    this.name = o.name;
    this.labels = o.labels;
    this.taints = o.taints;
    this.unschedulable = o.unschedulable;
    this.pods = o.pods.slice();
    this.podsWithAffinity = o.podsWithAffinity.length > 0 ? o.podsWithAffinity.slice() : [];
    this.podsWithRequiredAntiAffinity =
      o.podsWithRequiredAntiAffinity.length > 0 ? o.podsWithRequiredAntiAffinity.slice() : [];
    this.usedPorts = o.usedPorts.byIP.size > 0 ? o.usedPorts.clone() : new HostPortInfo();
    this.requested = o.requested.clone();
    this.nonZeroRequested = o.nonZeroRequested.clone();
    this.allocatable = o.allocatable;
    this.imageStates = o.imageStates;
    this.pvcRefCounts = o.pvcRefCounts.size > 0 ? new Map(o.pvcRefCounts) : new Map();
    this.mirror();
    this.generation = o.generation;
  }
}

function removeKey(list: PodInfo[], key: string): void {
  const i = list.findIndex((p) => p.key === key);
  if (i < 0) return;
  list[i] = list[list.length - 1]!;
  list.pop();
}

// ---- diagnosis ----

/** Per-node statuses of an attempt, and one status for every node not listed (upstream's NodeToStatus). */
export class NodeToStatus {
  readonly map = new Map<string, Status>();
  absentNodesStatus: Status = new Status(Code.UnschedulableAndUnresolvable);

  set(node: string, s: Status): void {
    this.map.set(node, s);
  }

  get(node: string): Status {
    return this.map.get(node) ?? this.absentNodesStatus;
  }

  get size(): number {
    return this.map.size;
  }

  /** The nodes whose status has this code (nodes absent from the map take absentNodesStatus). */
  nodesForStatusCode(all: readonly NodeInfo[], code: Code): NodeInfo[] {
    const out: NodeInfo[] = [];
    for (const ni of all) {
      const s = this.map.get(ni.name);
      if ((s ?? this.absentNodesStatus).code === code) out.push(ni);
    }
    return out;
  }
}

export interface Diagnosis {
  nodeToStatus: NodeToStatus;
  unschedulablePlugins: Set<string>;
  pendingPlugins: Set<string>;
  preFilterMsg: string;
  postFilterMsg: string;
}

export function newDiagnosis(): Diagnosis {
  return {
    nodeToStatus: new NodeToStatus(),
    unschedulablePlugins: new Set(),
    pendingPlugins: new Set(),
    preFilterMsg: "",
    postFilterMsg: "",
  };
}

export function addPluginStatus(d: Diagnosis, s: Status): void {
  if (!s.plugin) return;
  if (s.isRejected()) d.unschedulablePlugins.add(s.plugin);
  if (s.code === Code.Pending) d.pendingPlugins.add(s.plugin);
}

/** Why a pod fits no node; its message is upstream's FitError text. */
export class FitError extends Error {
  override name = "FitError";
  constructor(
    readonly pod: Pod,
    readonly numAllNodes: number,
    readonly diagnosis: Diagnosis,
  ) {
    super("");
    // The message reflects the diagnosis at the time it is read (PostFilter adds to it).
    Object.defineProperty(this, "message", {
      get: () => fitErrorMessage(this.numAllNodes, this.diagnosis),
      enumerable: false,
      configurable: true,
    });
  }
}

/**
 * "0/N nodes are available: <prefilter message>." or "... <count reason, ...>." (reasons sorted
 * as strings), followed by " <postfilter message>" when PostFilter said something.
 */
export function fitErrorMessage(numAllNodes: number, d: Diagnosis): string {
  let msg = `0/${numAllNodes} nodes are available:`;
  if (d.preFilterMsg !== "") {
    msg += ` ${d.preFilterMsg}.`;
  } else {
    const counts = new Map<string, number>();
    for (const s of d.nodeToStatus.map.values()) {
      for (const r of s.reasons) counts.set(r, (counts.get(r) ?? 0) + 1);
    }
    const absent = numAllNodes - d.nodeToStatus.size;
    if (absent > 0) {
      for (const r of d.nodeToStatus.absentNodesStatus.reasons)
        counts.set(r, (counts.get(r) ?? 0) + absent);
    }
    const parts = [...counts].map(([r, n]) => `${n} ${r}`);
    parts.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    if (parts.length > 0) msg += ` ${parts.join(", ")}.`;
  }
  if (d.postFilterMsg !== "") msg += ` ${d.postFilterMsg}`;
  return msg;
}

// ---- cycle state ----

/** Data a plugin keeps for the rest of a cycle; clone() is called when preemption copies the state. */
export interface StateData {
  clone(): StateData;
}

/**
 * A plugin's shortcut to its own state in the current cycle: the last CycleState read is
 * remembered, so that scoring thousands of nodes does not look the key up for each.
 */
export class StateCache<T extends StateData> {
  private state: CycleState | undefined;
  private value: T | undefined;

  write(state: CycleState, key: string, v: T): void {
    state.write(key, v);
    this.state = state;
    this.value = v;
  }

  read(state: CycleState, key: string): T | undefined {
    if (state !== this.state) {
      this.state = state;
      this.value = state.read<T>(key);
    }
    return this.value;
  }
}

/** Per-cycle storage shared by the plugins of one profile. */
export class CycleState {
  private readonly data = new Map<string, StateData>();
  /** Plugins whose Filter (resp. Score) is skipped for this cycle because PreFilter (PreScore) said Skip. */
  skipFilterPlugins = new Set<string>();
  skipScorePlugins = new Set<string>();

  read<T extends StateData>(key: string): T | undefined {
    return this.data.get(key) as T | undefined;
  }

  write(key: string, v: StateData): void {
    this.data.set(key, v);
  }

  delete(key: string): void {
    this.data.delete(key);
  }

  clone(): CycleState {
    const c = new CycleState();
    for (const [k, v] of this.data) c.data.set(k, v.clone());
    c.skipFilterPlugins = new Set(this.skipFilterPlugins);
    c.skipScorePlugins = new Set(this.skipScorePlugins);
    return c;
  }
}
