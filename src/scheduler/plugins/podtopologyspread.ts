/**
 * PodTopologySpread: with DoNotSchedule constraints, Filter keeps the skew (matching pods in a
 * domain, plus the pod itself, minus the least loaded domain) within maxSkew; with ScheduleAnyway
 * constraints (or the system defaults: 3 per hostname, 5 per zone, for pods selected by a
 * Service, ReplicaSet, StatefulSet or ReplicationController), Score prefers domains with fewer
 * matching pods.
 */
import type { Node, Pod, TopologySpreadConstraint } from "kubernetes-types/core/v1.js";
import {
  ActionType,
  QueueingHint,
  type ClusterEventWithHint,
  type EnqueueExtensions,
  type FilterPlugin,
  type Handle,
  type PreFilterOutcome,
  type PreFilterPlugin,
  type PreScorePlugin,
  type ScorePlugin,
} from "../interface.js";
import { findUntoleratedTaint, RequiredNodeAffinity, Selector, type Labels } from "../selectors.js";
import {
  Code,
  MAX_NODE_SCORE,
  Status,
  type CycleState,
  type NodeInfo,
  type PodInfo,
  type StateData,
} from "../types.js";
import { asNode, asPod, sameUID } from "./helper.js";
import { POD_TOPOLOGY_SPREAD } from "./names.js";

export const ERR_REASON_CONSTRAINTS_NOT_MATCH =
  "node(s) didn't match pod topology spread constraints";
export const ERR_REASON_NODE_LABEL_NOT_MATCH =
  ERR_REASON_CONSTRAINTS_NOT_MATCH + " (missing required label)";

export const LABEL_HOSTNAME = "kubernetes.io/hostname";
export const LABEL_ZONE = "topology.kubernetes.io/zone";

export interface PodTopologySpreadArgs {
  defaultConstraints?: TopologySpreadConstraint[];
  defaultingType?: "System" | "List";
}

/** The constraints used with defaultingType System. */
export const SYSTEM_DEFAULT_CONSTRAINTS: TopologySpreadConstraint[] = [
  { topologyKey: LABEL_HOSTNAME, whenUnsatisfiable: "ScheduleAnyway", maxSkew: 3 },
  { topologyKey: LABEL_ZONE, whenUnsatisfiable: "ScheduleAnyway", maxSkew: 5 },
];

interface Constraint {
  maxSkew: number;
  topologyKey: string;
  selector: Selector;
  minDomains: number;
  nodeAffinityPolicy: string;
  nodeTaintsPolicy: string;
}

const PRE_FILTER_KEY = "PreFilter" + POD_TOPOLOGY_SPREAD;
const PRE_SCORE_KEY = "PreScore" + POD_TOPOLOGY_SPREAD;
const MAX_INT32 = 2147483647;

/** The two domains with the fewest matching pods, [0] the fewest. */
class CriticalPaths {
  v0 = "";
  n0 = MAX_INT32;
  v1 = "";
  n1 = MAX_INT32;

  update(value: string, num: number): void {
    if (value === this.v0 || value === this.v1) {
      if (value === this.v0) this.n0 = num;
      else this.n1 = num;
      if (this.n0 > this.n1) {
        [this.v0, this.n0, this.v1, this.n1] = [this.v1, this.n1, this.v0, this.n0];
      }
    } else if (num < this.n0) {
      this.v1 = this.v0;
      this.n1 = this.n0;
      this.v0 = value;
      this.n0 = num;
    } else if (num < this.n1) {
      this.v1 = value;
      this.n1 = num;
    }
  }

  clone(): CriticalPaths {
    const c = new CriticalPaths();
    c.v0 = this.v0;
    c.n0 = this.n0;
    c.v1 = this.v1;
    c.n1 = this.n1;
    return c;
  }
}

function nodeHasAllKeys(labels: Labels | undefined, constraints: Constraint[]): boolean {
  if (!labels) return constraints.length === 0;
  for (const c of constraints) if (!(c.topologyKey in labels)) return false;
  return true;
}

function matchInclusionPolicies(
  c: Constraint,
  pod: Pod,
  node: Node,
  required: RequiredNodeAffinity,
): boolean {
  if (c.nodeAffinityPolicy === "Honor" && !required.empty && !required.match(node)) return false;
  if (
    c.nodeTaintsPolicy === "Honor" &&
    findUntoleratedTaint(node.spec?.taints, pod.spec?.tolerations)
  )
    return false;
  return true;
}

/** Pods on the node in the namespace that the selector matches (terminating pods excluded). */
function countPodsMatchSelector(pods: readonly PodInfo[], selector: Selector, ns: string): number {
  if (selector.empty()) return 0;
  let n = 0;
  for (let i = 0; i < pods.length; i++) {
    const p = pods[i]!;
    if (p.terminating || p.namespace !== ns) continue;
    if (selector.matches(p.labels)) n++;
  }
  return n;
}

class PreFilterState implements StateData {
  constructor(
    readonly constraints: Constraint[],
    readonly tpValueToMatchNum: Map<string, number>[],
    readonly criticalPaths: CriticalPaths[],
    readonly selfMatch: number[],
  ) {}

  clone(): StateData {
    return new PreFilterState(
      this.constraints,
      this.tpValueToMatchNum.map((m) => new Map(m)),
      this.criticalPaths.map((p) => p.clone()),
      this.selfMatch,
    );
  }

  minMatchNum(i: number): number {
    const c = this.constraints[i]!;
    if (this.tpValueToMatchNum[i]!.size < c.minDomains) return 0;
    return this.criticalPaths[i]!.n0;
  }

  updateWithPod(other: PodInfo, preemptor: Pod, node: Node | null, delta: number): void {
    if (!node || other.namespace !== (preemptor.metadata?.namespace ?? "")) return;
    if (!nodeHasAllKeys(node.metadata?.labels, this.constraints)) return;
    const required = new RequiredNodeAffinity(preemptor);
    const labels = other.pod.metadata?.labels;
    this.constraints.forEach((c, i) => {
      if (!c.selector.matches(labels)) return;
      if (!matchInclusionPolicies(c, preemptor, node, required)) return;
      const v = node.metadata!.labels![c.topologyKey]!;
      const m = this.tpValueToMatchNum[i]!;
      const n = (m.get(v) ?? 0) + delta;
      m.set(v, n);
      this.criticalPaths[i]!.update(v, n);
    });
  }
}

class PreScoreState implements StateData {
  constructor(
    readonly constraints: Constraint[],
    readonly ignoredNodes: Set<string>,
    /** Matching pods per "key\0value" domain (hostname domains are counted in Score). */
    readonly pairCounts: Map<string, number>,
    readonly normalizingWeight: number[],
  ) {}
  clone(): StateData {
    return this;
  }
}

export class PodTopologySpread
  implements PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin, EnqueueExtensions
{
  readonly name = POD_TOPOLOGY_SPREAD;
  private readonly defaultConstraints: TopologySpreadConstraint[];
  private readonly systemDefaulted: boolean;

  constructor(
    args: PodTopologySpreadArgs,
    private readonly handle: Handle,
  ) {
    if ((args.defaultingType ?? "System") === "System") {
      this.defaultConstraints = SYSTEM_DEFAULT_CONSTRAINTS;
      this.systemDefaulted = true;
    } else {
      this.defaultConstraints = args.defaultConstraints ?? [];
      this.systemDefaulted = false;
    }
  }

  /** The pod's constraints with this action, selectors compiled (matchLabelKeys merged in). */
  private filterConstraints(
    constraints: TopologySpreadConstraint[],
    podLabels: Labels | undefined,
    action: string,
  ): Constraint[] {
    const out: Constraint[] = [];
    for (const c of constraints) {
      if (c.whenUnsatisfiable !== action) continue;
      let selector = Selector.fromLabelSelector(c.labelSelector);
      const keys = c.matchLabelKeys ?? [];
      if (keys.length > 0 && podLabels) {
        const set: Labels = {};
        let any = false;
        for (const k of keys) {
          if (k in podLabels) {
            set[k] = podLabels[k]!;
            any = true;
          }
        }
        if (any) selector = Selector.fromSet(set).and(selector);
      }
      out.push({
        maxSkew: c.maxSkew,
        topologyKey: c.topologyKey,
        selector,
        minDomains: c.minDomains ?? 1,
        nodeAffinityPolicy: c.nodeAffinityPolicy ?? "Honor",
        nodeTaintsPolicy: c.nodeTaintsPolicy ?? "Ignore",
      });
    }
    return out;
  }

  private buildDefaultConstraints(pod: Pod, action: string): Constraint[] {
    const constraints = this.filterConstraints(
      this.defaultConstraints,
      pod.metadata?.labels,
      action,
    );
    if (constraints.length === 0) return [];
    const selector = this.handle.snapshot().defaultSelector(pod);
    if (selector.empty()) return [];
    for (const c of constraints) c.selector = selector;
    return constraints;
  }

  private constraintsFor(pod: Pod, action: string): Constraint[] {
    const own = pod.spec?.topologySpreadConstraints ?? [];
    return own.length > 0
      ? this.filterConstraints(own, pod.metadata?.labels, action)
      : this.buildDefaultConstraints(pod, action);
  }

  // ---- filtering ----

  preFilter(state: CycleState, pod: PodInfo, nodes: readonly NodeInfo[]): PreFilterOutcome | null {
    let constraints: Constraint[];
    try {
      constraints = this.constraintsFor(pod.pod, "DoNotSchedule");
    } catch (err) {
      return { status: Status.error(err as Error) };
    }
    if (constraints.length === 0) return { status: new Status(Code.Skip) };
    const ns = pod.namespace;
    const required = new RequiredNodeAffinity(pod.pod);
    const matchNums = constraints.map(() => new Map<string, number>());
    // Every node of the cluster, every cycle: kept to plain loops (no closure or copy per node).
    const n = constraints.length;
    for (let j = 0; j < nodes.length; j++) {
      const ni = nodes[j]!;
      const node = ni.node;
      if (!node) continue;
      const labels = ni.labels;
      if (!nodeHasAllKeys(labels, constraints)) continue;
      for (let i = 0; i < n; i++) {
        const c = constraints[i]!;
        if (!matchInclusionPolicies(c, pod.pod, node, required)) continue;
        const v = labels![c.topologyKey]!;
        const m = matchNums[i]!;
        const count = ni.podCount === 0 ? 0 : countPodsMatchSelector(ni.pods, c.selector, ns);
        const before = m.get(v);
        if (before === undefined || count > 0) m.set(v, (before ?? 0) + count);
      }
    }
    const paths = matchNums.map((m) => {
      const p = new CriticalPaths();
      for (const [v, n] of m) p.update(v, n);
      return p;
    });
    const self = constraints.map((c) => (c.selector.matches(pod.pod.metadata?.labels) ? 1 : 0));
    state.write(PRE_FILTER_KEY, new PreFilterState(constraints, matchNums, paths, self));
    return null;
  }

  addPod(state: CycleState, pod: PodInfo, toAdd: PodInfo, node: NodeInfo): Status | null {
    state.read<PreFilterState>(PRE_FILTER_KEY)?.updateWithPod(toAdd, pod.pod, node.node, 1);
    return null;
  }

  removePod(state: CycleState, pod: PodInfo, toRemove: PodInfo, node: NodeInfo): Status | null {
    state.read<PreFilterState>(PRE_FILTER_KEY)?.updateWithPod(toRemove, pod.pod, node.node, -1);
    return null;
  }

  filter(state: CycleState, _pod: PodInfo, node: NodeInfo): Status | null {
    const s = state.read<PreFilterState>(PRE_FILTER_KEY);
    if (!s || s.constraints.length === 0) return null;
    const labels = node.labels;
    for (let i = 0; i < s.constraints.length; i++) {
      const c = s.constraints[i]!;
      const v = labels?.[c.topologyKey];
      if (v === undefined)
        return new Status(Code.UnschedulableAndUnresolvable, [ERR_REASON_NODE_LABEL_NOT_MATCH]);
      const skew = (s.tpValueToMatchNum[i]!.get(v) ?? 0) + s.selfMatch[i]! - s.minMatchNum(i);
      if (skew > c.maxSkew)
        return new Status(Code.Unschedulable, [ERR_REASON_CONSTRAINTS_NOT_MATCH]);
    }
    return null;
  }

  // ---- scoring ----

  preScore(state: CycleState, pod: PodInfo, filtered: readonly NodeInfo[]): Status | null {
    const all = this.handle.snapshot().list();
    if (filtered.length === 0 || all.length === 0) return null;
    let constraints: Constraint[];
    try {
      constraints = this.constraintsFor(pod.pod, "ScheduleAnyway");
    } catch (err) {
      return Status.error(err as Error);
    }
    if (constraints.length === 0) return new Status(Code.Skip);
    const requireAll =
      (pod.pod.spec?.topologySpreadConstraints ?? []).length > 0 || !this.systemDefaulted;
    const ignored = new Set<string>();
    const counts = new Map<string, number>();
    const topoSize = constraints.map(() => 0);
    for (const ni of filtered) {
      const labels = ni.labels;
      if (requireAll && !nodeHasAllKeys(labels, constraints)) {
        ignored.add(ni.name);
        continue;
      }
      constraints.forEach((c, i) => {
        if (c.topologyKey === LABEL_HOSTNAME) return;
        const key = `${c.topologyKey}\0${labels?.[c.topologyKey] ?? ""}`;
        if (!counts.has(key)) {
          counts.set(key, 0);
          topoSize[i]!++;
        }
      });
    }
    const weights = constraints.map((c, i) => {
      const size = c.topologyKey === LABEL_HOSTNAME ? filtered.length - ignored.size : topoSize[i]!;
      return Math.log(size + 2);
    });
    const required = new RequiredNodeAffinity(pod.pod);
    const ns = pod.namespace;
    for (const ni of all) {
      const node = ni.node;
      if (!node) continue;
      const labels = ni.labels;
      if (requireAll && !nodeHasAllKeys(labels, constraints)) continue;
      for (const c of constraints) {
        if (!matchInclusionPolicies(c, pod.pod, node, required)) continue;
        const key = `${c.topologyKey}\0${labels?.[c.topologyKey] ?? ""}`;
        const cur = counts.get(key);
        if (cur === undefined) continue;
        counts.set(key, cur + countPodsMatchSelector(ni.pods, c.selector, ns));
      }
    }
    state.write(PRE_SCORE_KEY, new PreScoreState(constraints, ignored, counts, weights));
    return null;
  }

  score(state: CycleState, pod: PodInfo, node: NodeInfo): number {
    const s = state.read<PreScoreState>(PRE_SCORE_KEY);
    if (!s || s.ignoredNodes.has(node.name)) return 0;
    const labels = node.labels;
    let score = 0;
    s.constraints.forEach((c, i) => {
      const v = labels?.[c.topologyKey];
      if (v === undefined) return;
      const cnt =
        c.topologyKey === LABEL_HOSTNAME
          ? countPodsMatchSelector(node.pods, c.selector, pod.namespace)
          : (s.pairCounts.get(`${c.topologyKey}\0${v}`) ?? 0);
      score += cnt * s.normalizingWeight[i]! + (c.maxSkew - 1);
    });
    return Math.round(score);
  }

  normalizeScore(
    state: CycleState,
    _pod: PodInfo,
    nodes: readonly NodeInfo[],
    scores: number[],
  ): Status | null {
    const s = state.read<PreScoreState>(PRE_SCORE_KEY);
    if (!s) return null;
    let min = Number.MAX_SAFE_INTEGER;
    let max = 0;
    for (let i = 0; i < scores.length; i++) {
      if (s.ignoredNodes.has(nodes[i]!.name)) continue;
      const v = scores[i]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    for (let i = 0; i < scores.length; i++) {
      if (s.ignoredNodes.has(nodes[i]!.name)) {
        scores[i] = 0;
        continue;
      }
      if (max === 0) {
        scores[i] = MAX_NODE_SCORE;
        continue;
      }
      scores[i] = Math.trunc((MAX_NODE_SCORE * (max + min - scores[i]!)) / max);
    }
    return null;
  }

  // ---- queueing hints ----

  eventsToRegister(): ClusterEventWithHint[] {
    return [
      {
        event: { resource: "Pod", actionType: ActionType.All },
        hint: (pod, oldObj, newObj) => {
          const changed = [asPod(oldObj), asPod(newObj)].filter((p): p is Pod => p !== undefined);
          if (changed.some((p) => sameUID(p, pod))) return QueueingHint.Queue;
          const constraints = this.safeConstraints(pod);
          const ns = pod.metadata?.namespace ?? "";
          for (const p of changed) {
            if (!p.spec?.nodeName || (p.metadata?.namespace ?? "") !== ns) continue;
            if (constraints.some((c) => c.selector.matches(p.metadata?.labels)))
              return QueueingHint.Queue;
          }
          return QueueingHint.QueueSkip;
        },
      },
      {
        event: {
          resource: "Node",
          actionType:
            ActionType.Add |
            ActionType.Delete |
            ActionType.UpdateNodeLabel |
            ActionType.UpdateNodeTaint,
        },
        hint: (pod, oldObj, newObj) => {
          const constraints = this.safeConstraints(pod);
          if (constraints.length === 0) return QueueingHint.Queue;
          for (const n of [asNode(oldObj), asNode(newObj)]) {
            if (n && nodeHasAllKeys(n.metadata?.labels, constraints)) return QueueingHint.Queue;
          }
          return QueueingHint.QueueSkip;
        },
      },
    ];
  }

  private safeConstraints(pod: Pod): Constraint[] {
    try {
      const own = pod.spec?.topologySpreadConstraints ?? [];
      return [
        ...this.filterConstraints(own, pod.metadata?.labels, "DoNotSchedule"),
        ...this.filterConstraints(own, pod.metadata?.labels, "ScheduleAnyway"),
      ];
    } catch {
      return [];
    }
  }
}
