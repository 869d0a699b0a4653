/**
 * NodeResourcesFit (Filter: the pod's requests fit in what the node has left; Score: one of
 * LeastAllocated, MostAllocated, RequestedToCapacityRatio) and NodeResourcesBalancedAllocation
 * (Score: nodes whose resource fractions stay close to each other).
 *
 * Scoring counts containers without CPU or memory requests as 100m and 200Mi (the node's
 * nonZeroRequested), except BalancedAllocation, which uses the real requests.
 */
import type { Node, Pod } from "kubernetes-types/core/v1.js";
import {
  ActionType,
  QueueingHint,
  type ClusterEventWithHint,
  type EnqueueExtensions,
  type FilterPlugin,
  type PreFilterOutcome,
  type PreFilterPlugin,
  type PreScorePlugin,
  type ScorePlugin,
} from "../interface.js";
import {
  CPU,
  EPHEMERAL_STORAGE,
  isExtendedResourceName,
  isScalarResourceName,
  MEMORY,
  Resource,
} from "../resources.js";
import {
  Code,
  MAX_NODE_SCORE,
  NodeInfo,
  PodInfo,
  StateCache,
  Status,
  type CycleState,
  type StateData,
} from "../types.js";
import { asNode, asPod } from "./helper.js";
import { NODE_RESOURCES_BALANCED_ALLOCATION, NODE_RESOURCES_FIT } from "./names.js";

export interface ResourceSpec {
  name: string;
  weight: number;
}

export interface UtilizationShapePoint {
  utilization: number;
  score: number;
}

export type ScoringStrategyType = "LeastAllocated" | "MostAllocated" | "RequestedToCapacityRatio";

export interface ScoringStrategy {
  type: ScoringStrategyType;
  resources: ResourceSpec[];
  requestedToCapacityRatio?: { shape: UtilizationShapePoint[] };
}

export interface NodeResourcesFitArgs {
  ignoredResources?: string[];
  ignoredResourceGroups?: string[];
  scoringStrategy: ScoringStrategy;
}

export interface NodeResourcesBalancedAllocationArgs {
  resources: ResourceSpec[];
}

export const DEFAULT_RESOURCE_SPEC: ResourceSpec[] = [
  { name: CPU, weight: 1 },
  { name: MEMORY, weight: 1 },
];

/** Scores in a RequestedToCapacityRatio shape go up to 10; the scheduler's scale is 100. */
export const MAX_CUSTOM_PRIORITY_SCORE = 10;
const MAX_UTILIZATION = 100;

export interface InsufficientResource {
  resourceName: string;
  reason: string;
  requested: number;
  used: number;
  capacity: number;
}

/** The resources the pod asks for that the node has not got left (upstream's fitsRequest). */
export function fitsRequest(
  req: Resource,
  node: NodeInfo,
  ignored: Set<string> = new Set(),
  ignoredGroups: Set<string> = new Set(),
): InsufficientResource[] {
  const out: InsufficientResource[] = [];
  const alloc = node.allocatable;
  const used = node.requested;
  if (node.pods.length + 1 > alloc.allowedPodNumber) {
    out.push({
      resourceName: "pods",
      reason: "Too many pods",
      requested: 1,
      used: node.pods.length,
      capacity: alloc.allowedPodNumber,
    });
  }
  if (req.isZero()) return out;
  if (req.milliCPU > 0 && req.milliCPU > alloc.milliCPU - used.milliCPU) {
    out.push({
      resourceName: CPU,
      reason: "Insufficient cpu",
      requested: req.milliCPU,
      used: used.milliCPU,
      capacity: alloc.milliCPU,
    });
  }
  if (req.memory > 0 && req.memory > alloc.memory - used.memory) {
    out.push({
      resourceName: MEMORY,
      reason: "Insufficient memory",
      requested: req.memory,
      used: used.memory,
      capacity: alloc.memory,
    });
  }
  if (
    req.ephemeralStorage > 0 &&
    req.ephemeralStorage > alloc.ephemeralStorage - used.ephemeralStorage
  ) {
    out.push({
      resourceName: EPHEMERAL_STORAGE,
      reason: "Insufficient ephemeral-storage",
      requested: req.ephemeralStorage,
      used: used.ephemeralStorage,
      capacity: alloc.ephemeralStorage,
    });
  }
  if (req.scalar !== null) {
    for (const [name, q] of req.scalar) {
      if (q === 0) continue;
      if (isExtendedResourceName(name)) {
        const group = name.split("/")[0]!;
        if (ignored.has(name) || ignoredGroups.has(group)) continue;
      }
      const left = alloc.getScalar(name) - used.getScalar(name);
      if (q > left) {
        out.push({
          resourceName: name,
          reason: `Insufficient ${name}`,
          requested: q,
          used: used.getScalar(name),
          capacity: alloc.getScalar(name),
        });
      }
    }
  }
  return out;
}

/** Whether the pod fits on this node when it runs nothing else. */
export function fitsEmptyNode(pod: Pod, node: Node): boolean {
  const ni = new NodeInfo();
  ni.setNode(node);
  return fitsRequest(new PodInfo(pod).res.requests, ni).length === 0;
}

// ---- scoring ----

type Scorer = (requested: Float64Array, allocatable: Float64Array) => number;

function leastRequestedScore(requested: number, capacity: number): number {
  if (capacity === 0 || requested > capacity) return 0;
  return Math.trunc(((capacity - requested) * MAX_NODE_SCORE) / capacity);
}

function mostRequestedScore(requested: number, capacity: number): number {
  if (capacity === 0) return 0;
  if (requested > capacity) requested = capacity;
  return Math.trunc((requested * MAX_NODE_SCORE) / capacity);
}

function weightedScorer(resources: ResourceSpec[], f: (r: number, c: number) => number): Scorer {
  return (requested, allocatable) => {
    let score = 0;
    let weightSum = 0;
    for (let i = 0; i < requested.length; i++) {
      if (allocatable[i] === 0) continue;
      const w = resources[i]!.weight;
      score += f(requested[i]!, allocatable[i]!) * w;
      weightSum += w;
    }
    return weightSum === 0 ? 0 : Math.trunc(score / weightSum);
  };
}

/** A piecewise linear function through the shape's points (helper.BuildBrokenLinearFunction). */
export function brokenLinearFunction(shape: UtilizationShapePoint[]): (p: number) => number {
  return (p) => {
    for (let i = 0; i < shape.length; i++) {
      if (p <= shape[i]!.utilization) {
        if (i === 0) return shape[0]!.score;
        const a = shape[i - 1]!;
        const b = shape[i]!;
        return (
          a.score +
          Math.trunc(((b.score - a.score) * (p - a.utilization)) / (b.utilization - a.utilization))
        );
      }
    }
    return shape[shape.length - 1]!.score;
  };
}

function requestedToCapacityRatioScorer(
  resources: ResourceSpec[],
  shape: UtilizationShapePoint[],
): Scorer {
  const scaled = shape.map((p) => ({
    utilization: p.utilization,
    score: p.score * (MAX_NODE_SCORE / MAX_CUSTOM_PRIORITY_SCORE),
  }));
  const raw = brokenLinearFunction(scaled);
  const resourceScore = (requested: number, capacity: number): number => {
    if (capacity === 0 || requested > capacity) return raw(MAX_UTILIZATION);
    return raw(Math.trunc((requested * MAX_UTILIZATION) / capacity));
  };
  return (requested, allocatable) => {
    let score = 0;
    let weightSum = 0;
    for (let i = 0; i < requested.length; i++) {
      if (allocatable[i] === 0) continue;
      const w = resources[i]!.weight;
      const s = resourceScore(requested[i]!, allocatable[i]!);
      if (s > 0) {
        score += s * w;
        weightSum += w;
      }
    }
    return weightSum === 0 ? 0 : Math.round(score / weightSum);
  };
}

/** The standard deviation of the resource fractions, as a score: 100 when perfectly balanced. */
function balancedResourceScorer(requested: Float64Array, allocatable: Float64Array): number {
  let n = 0;
  let total = 0;
  let f0 = 0;
  let f1 = 0;
  for (let i = 0; i < requested.length; i++) {
    if (allocatable[i] === 0) continue;
    const f = Math.min(requested[i]! / allocatable[i]!, 1);
    total += f;
    if (n === 0) f0 = f;
    else if (n === 1) f1 = f;
    n++;
  }
  let std = 0;
  if (n === 2) std = Math.abs((f0 - f1) / 2);
  else if (n > 2) {
    const mean = total / n;
    let sum = 0;
    for (let i = 0; i < requested.length; i++) {
      if (allocatable[i] === 0) continue;
      const f = Math.min(requested[i]! / allocatable[i]!, 1);
      sum += (f - mean) * (f - mean);
    }
    std = Math.sqrt(sum / n);
  }
  return Math.trunc((1 - std) * MAX_NODE_SCORE);
}

/**
 * Upstream's resourceAllocationScorer: for each configured resource, the node's allocatable and
 * its requests with the pod added (nonZeroRequested for CPU and memory unless useRequested);
 * scalar resources the pod does not ask for are left out.
 */
const KIND_CPU = 0;
const KIND_MEMORY = 1;
const KIND_EPHEMERAL = 2;
const KIND_SCALAR = 3;

class ResourceAllocationScorer {
  private readonly requested: Float64Array;
  private readonly allocatable: Float64Array;
  private readonly kinds: Uint8Array;
  private readonly isScalar: boolean[];

  constructor(
    readonly resources: ResourceSpec[],
    private readonly scorer: Scorer,
    private readonly useRequested: boolean,
  ) {
    this.requested = new Float64Array(resources.length);
    this.allocatable = new Float64Array(resources.length);
    this.kinds = Uint8Array.from(resources, (r) =>
      r.name === CPU
        ? KIND_CPU
        : r.name === MEMORY
          ? KIND_MEMORY
          : r.name === EPHEMERAL_STORAGE
            ? KIND_EPHEMERAL
            : KIND_SCALAR,
    );
    this.isScalar = resources.map((r) => isScalarResourceName(r.name));
  }

  /** The pod's request of each configured resource. */
  podRequests(pod: PodInfo): Float64Array {
    const out = new Float64Array(this.resources.length);
    const r = pod.res;
    for (let i = 0; i < this.resources.length; i++) {
      const name = this.resources[i]!.name;
      if (!this.useRequested && name === CPU) out[i] = r.nonZeroMilliCPU;
      else if (!this.useRequested && name === MEMORY) out[i] = r.nonZeroMemory;
      else out[i] = r.requests.get(name);
    }
    return out;
  }

  score(node: NodeInfo, podRequests: Float64Array): number {
    const req = this.requested;
    const alloc = this.allocatable;
    const nodeAlloc = node.allocatable;
    const kinds = this.kinds;
    for (let i = 0; i < kinds.length; i++) {
      const pr = podRequests[i]!;
      let a = 0;
      let r = 0;
      switch (kinds[i]) {
        case KIND_CPU:
          a = node.allocMilliCPU;
          r = (this.useRequested ? node.reqMilliCPU : node.nonZeroMilliCPU) + pr;
          break;
        case KIND_MEMORY:
          a = node.allocMemory;
          r = (this.useRequested ? node.reqMemory : node.nonZeroMemory) + pr;
          break;
        case KIND_EPHEMERAL:
          a = nodeAlloc.ephemeralStorage;
          r = node.requested.ephemeralStorage + pr;
          break;
        default: {
          const name = this.resources[i]!.name;
          if (!(pr === 0 && this.isScalar[i]) && nodeAlloc.scalar?.has(name)) {
            a = nodeAlloc.getScalar(name);
            r = node.requested.getScalar(name) + pr;
          }
        }
      }
      alloc[i] = a;
      req[i] = a === 0 ? 0 : r;
    }
    return this.scorer(req, alloc);
  }
}

class PodRequestsState implements StateData {
  constructor(readonly requests: Float64Array) {}
  clone(): StateData {
    return this;
  }
}

export class NodeResourcesFit
  implements PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin, EnqueueExtensions
{
  readonly name = NODE_RESOURCES_FIT;
  private readonly ignored: Set<string>;
  private readonly ignoredGroups: Set<string>;
  private readonly scorer: ResourceAllocationScorer;
  private readonly preScoreKey = "PreScore" + NODE_RESOURCES_FIT;
  private readonly cache = new StateCache<PodRequestsState>();

  constructor(args: NodeResourcesFitArgs) {
    this.ignored = new Set(args.ignoredResources ?? []);
    this.ignoredGroups = new Set(args.ignoredResourceGroups ?? []);
    const s = args.scoringStrategy;
    let scorer: Scorer;
    switch (s.type) {
      case "LeastAllocated":
        scorer = weightedScorer(s.resources, leastRequestedScore);
        break;
      case "MostAllocated":
        scorer = weightedScorer(s.resources, mostRequestedScore);
        break;
      case "RequestedToCapacityRatio":
        scorer = requestedToCapacityRatioScorer(
          s.resources,
          s.requestedToCapacityRatio?.shape ?? [],
        );
        break;
      default:
        throw new Error(`scoring strategy ${String((s as ScoringStrategy).type)} is not supported`);
    }
    this.scorer = new ResourceAllocationScorer(s.resources, scorer, false);
  }

  preFilter(): PreFilterOutcome | null {
    return null;
  }

  filter(_state: CycleState, pod: PodInfo, node: NodeInfo): Status | null {
    const req = pod.res.requests;
    // Fast path: the common pod that fits in CPU and memory with room for one more pod.
    if (
      node.podCount + 1 <= node.allowedPods &&
      req.milliCPU <= node.allocMilliCPU - node.reqMilliCPU &&
      req.memory <= node.allocMemory - node.reqMemory &&
      req.ephemeralStorage === 0 &&
      req.scalar === null
    ) {
      return null;
    }
    const insufficient = fitsRequest(req, node, this.ignored, this.ignoredGroups);
    if (insufficient.length === 0) return null;
    return new Status(
      Code.Unschedulable,
      insufficient.map((r) => r.reason),
    );
  }

  preScore(state: CycleState, pod: PodInfo): Status | null {
    this.cache.write(state, this.preScoreKey, new PodRequestsState(this.scorer.podRequests(pod)));
    return null;
  }

  score(state: CycleState, pod: PodInfo, node: NodeInfo): number {
    const s = this.cache.read(state, this.preScoreKey);
    return this.scorer.score(node, s ? s.requests : this.scorer.podRequests(pod));
  }

  eventsToRegister(): ClusterEventWithHint[] {
    return [
      {
        event: { resource: "Pod", actionType: ActionType.Delete | ActionType.UpdatePodScaleDown },
        hint: (_pod, oldObj, newObj) => {
          const after = asPod(newObj);
          const before = asPod(oldObj);
          if (!after) return before?.spec?.nodeName ? QueueingHint.Queue : QueueingHint.QueueSkip;
          return QueueingHint.Queue;
        },
      },
      {
        event: { resource: "Node", actionType: ActionType.Add | ActionType.UpdateNodeAllocatable },
        hint: (pod, oldObj, newObj) => {
          const after = asNode(newObj);
          if (!after || !fitsEmptyNode(pod, after)) return QueueingHint.QueueSkip;
          const before = asNode(oldObj);
          if (!before) return QueueingHint.Queue;
          const req = new PodInfo(pod).res.requests;
          const a = Resource.fromList(before.status?.allocatable);
          const b = Resource.fromList(after.status?.allocatable);
          const increased =
            (req.milliCPU > 0 && b.milliCPU > a.milliCPU) ||
            (req.memory > 0 && b.memory > a.memory) ||
            (req.ephemeralStorage > 0 && b.ephemeralStorage > a.ephemeralStorage) ||
            b.allowedPodNumber > a.allowedPodNumber ||
            [...(req.scalar ?? new Map<string, number>())].some(
              ([n, q]) => q > 0 && b.getScalar(n) > a.getScalar(n),
            );
          return increased ? QueueingHint.Queue : QueueingHint.QueueSkip;
        },
      },
    ];
  }
}

export class NodeResourcesBalancedAllocation implements PreScorePlugin, ScorePlugin {
  readonly name = NODE_RESOURCES_BALANCED_ALLOCATION;
  private readonly scorer: ResourceAllocationScorer;
  private readonly preScoreKey = "PreScore" + NODE_RESOURCES_BALANCED_ALLOCATION;
  private readonly cache = new StateCache<PodRequestsState>();

  constructor(args: NodeResourcesBalancedAllocationArgs = { resources: DEFAULT_RESOURCE_SPEC }) {
    this.scorer = new ResourceAllocationScorer(args.resources, balancedResourceScorer, true);
  }

  preScore(state: CycleState, pod: PodInfo): Status | null {
    this.cache.write(state, this.preScoreKey, new PodRequestsState(this.scorer.podRequests(pod)));
    return null;
  }

  score(state: CycleState, pod: PodInfo, node: NodeInfo): number {
    const s = this.cache.read(state, this.preScoreKey);
    return this.scorer.score(node, s ? s.requests : this.scorer.podRequests(pod));
  }
}
