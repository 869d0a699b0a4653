/**
 * InterPodAffinity: Filter enforces the pod's required affinity and anti-affinity and the
 * required anti-affinity of pods already running (counted per topology domain in PreFilter);
 * Score adds the weights of preferred terms both ways, and of existing pods' required affinity
 * (hardPodAffinityWeight), per topology domain.
 */
import type { Node } from "kubernetes-types/core/v1.js";
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
import type { Labels } from "../selectors.js";
import { Selector } from "../selectors.js";
import {
  Code,
  MAX_NODE_SCORE,
  PodInfo,
  Status,
  podMeta,
  termMatches,
  type PodMeta,
  type AffinityTerm,
  type CycleState,
  type NodeInfo,
  type StateData,
  type WeightedAffinityTerm,
} from "../types.js";
import { asNode, asPod } from "./helper.js";
import { INTER_POD_AFFINITY } from "./names.js";

export const ERR_REASON_EXISTING_ANTI_AFFINITY =
  "node(s) didn't satisfy existing pods anti-affinity rules";
export const ERR_REASON_AFFINITY = "node(s) didn't match pod affinity rules";
export const ERR_REASON_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules";

export interface InterPodAffinityArgs {
  hardPodAffinityWeight?: number;
  ignorePreferredTermsOfExistingPods?: boolean;
}

const PRE_FILTER_KEY = "PreFilter" + INTER_POD_AFFINITY;
const PRE_SCORE_KEY = "PreScore" + INTER_POD_AFFINITY;

/** Pod counts per topology pair: key, then value. */
class TopologyCounts {
  private readonly byKey = new Map<string, Map<string, number>>();
  /** Pairs with a count (never 0). */
  size = 0;

  get(key: string, value: string): number {
    return this.byKey.get(key)?.get(value) ?? 0;
  }

  /** Adds `delta` to the pair of `key` and the node's value for it (none: nothing). */
  update(labels: Labels | undefined, key: string, delta: number): void {
    const v = labels?.[key];
    if (v === undefined || delta === 0) return;
    let values = this.byKey.get(key);
    if (!values) this.byKey.set(key, (values = new Map()));
    const before = values.get(v) ?? 0;
    const n = before + delta;
    if (n === 0) {
      values.delete(v);
      this.size--;
    } else {
      values.set(v, n);
      if (before === 0) this.size++;
    }
  }

  /** Whether one of the node's labels is a pair with a positive count. */
  anyPositive(labels: Labels): boolean {
    for (const [key, values] of this.byKey) {
      const v = labels[key];
      if (v !== undefined && (values.get(v) ?? 0) > 0) return true;
    }
    return false;
  }

  clone(): TopologyCounts {
    const c = new TopologyCounts();
    for (const [key, values] of this.byKey) c.byKey.set(key, new Map(values));
    c.size = this.size;
    return c;
  }
}

function hasAnyKey(labels: Labels | undefined): boolean {
  if (labels) for (const _ in labels) return true;
  return false;
}

function matchesAllTerms(terms: AffinityTerm[], pod: PodMeta): boolean {
  if (terms.length === 0) return false;
  for (const t of terms) if (!termMatches(t, pod, undefined)) return false;
  return true;
}

function matchesAnyTerm(terms: AffinityTerm[], pod: PodMeta): boolean {
  for (const t of terms) if (termMatches(t, pod, undefined)) return true;
  return false;
}

class PreFilterState implements StateData {
  constructor(
    readonly podInfo: PodInfo,
    readonly requiredAffinity: AffinityTerm[],
    readonly requiredAntiAffinity: AffinityTerm[],
    readonly namespaceLabels: Labels | undefined,
    readonly existingAntiAffinityCounts: TopologyCounts,
    readonly affinityCounts: TopologyCounts,
    readonly antiAffinityCounts: TopologyCounts,
  ) {}

  clone(): StateData {
    return new PreFilterState(
      this.podInfo,
      this.requiredAffinity,
      this.requiredAntiAffinity,
      this.namespaceLabels,
      this.existingAntiAffinityCounts.clone(),
      this.affinityCounts.clone(),
      this.antiAffinityCounts.clone(),
    );
  }

  updateWithPod(other: PodInfo, node: NodeInfo, delta: number): void {
    if (!node.node) return;
    const labels = node.labels;
    for (const t of other.requiredAntiAffinityTerms) {
      if (termMatches(t, this.podInfo, this.namespaceLabels)) {
        this.existingAntiAffinityCounts.update(labels, t.topologyKey, delta);
      }
    }
    if (matchesAllTerms(this.requiredAffinity, other)) {
      for (const t of this.requiredAffinity)
        this.affinityCounts.update(labels, t.topologyKey, delta);
    }
    for (const t of this.requiredAntiAffinity) {
      if (termMatches(t, other, undefined))
        this.antiAffinityCounts.update(labels, t.topologyKey, delta);
    }
  }
}

class PreScoreState implements StateData {
  constructor(readonly topologyScore: Map<string, Map<string, number>>) {}
  clone(): StateData {
    return this;
  }
}

export class InterPodAffinity
  implements PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin, EnqueueExtensions
{
  readonly name = INTER_POD_AFFINITY;
  private readonly hardPodAffinityWeight: number;
  private readonly ignorePreferredTermsOfExistingPods: boolean;

  constructor(
    args: InterPodAffinityArgs,
    private readonly handle: Handle,
  ) {
    this.hardPodAffinityWeight = args.hardPodAffinityWeight ?? 1;
    this.ignorePreferredTermsOfExistingPods = args.ignorePreferredTermsOfExistingPods ?? false;
  }

  /** A term whose namespaceSelector selects something gets those namespaces listed instead. */
  private mergeNamespaces<T extends AffinityTerm>(term: T): T {
    if (term.namespaceSelector.empty()) return term;
    const namespaces = new Set(term.namespaces);
    for (const n of this.handle.snapshot().namespacesMatching(term.namespaceSelector))
      namespaces.add(n);
    return { ...term, namespaces, namespaceSelector: Selector.NOTHING };
  }

  // ---- filtering ----

  preFilter(state: CycleState, pod: PodInfo, nodes: readonly NodeInfo[]): PreFilterOutcome | null {
    const snap = this.handle.snapshot();
    const affinity = pod.requiredAffinityTerms.map((t) => this.mergeNamespaces(t));
    const antiAffinity = pod.requiredAntiAffinityTerms.map((t) => this.mergeNamespaces(t));
    const nsLabels = snap.namespaceLabels(pod.namespace);

    const existing = new TopologyCounts();
    for (const ni of snap.havePodsWithRequiredAntiAffinityList()) {
      if (!ni.node) continue;
      const labels = ni.labels;
      for (const ep of ni.podsWithRequiredAntiAffinity) {
        for (const t of ep.requiredAntiAffinityTerms) {
          if (termMatches(t, pod, nsLabels)) existing.update(labels, t.topologyKey, 1);
        }
      }
    }

    const affinityCounts = new TopologyCounts();
    const antiAffinityCounts = new TopologyCounts();
    if (affinity.length > 0 || antiAffinity.length > 0) {
      for (const ni of nodes) {
        if (ni.podCount === 0 || !ni.node) continue;
        const labels = ni.labels;
        for (const ep of ni.pods) {
          if (affinity.length > 0 && matchesAllTerms(affinity, ep)) {
            for (const t of affinity) affinityCounts.update(labels, t.topologyKey, 1);
          }
          for (const t of antiAffinity) {
            if (termMatches(t, ep, undefined)) antiAffinityCounts.update(labels, t.topologyKey, 1);
          }
        }
      }
    }

    if (existing.size === 0 && affinity.length === 0 && antiAffinity.length === 0) {
      return { status: new Status(Code.Skip) };
    }
    state.write(
      PRE_FILTER_KEY,
      new PreFilterState(
        pod,
        affinity,
        antiAffinity,
        nsLabels,
        existing,
        affinityCounts,
        antiAffinityCounts,
      ),
    );
    return null;
  }

  addPod(state: CycleState, _pod: PodInfo, toAdd: PodInfo, node: NodeInfo): Status | null {
    state.read<PreFilterState>(PRE_FILTER_KEY)?.updateWithPod(toAdd, node, 1);
    return null;
  }

  removePod(state: CycleState, _pod: PodInfo, toRemove: PodInfo, node: NodeInfo): Status | null {
    state.read<PreFilterState>(PRE_FILTER_KEY)?.updateWithPod(toRemove, node, -1);
    return null;
  }

  filter(state: CycleState, _pod: PodInfo, node: NodeInfo): Status | null {
    const s = state.read<PreFilterState>(PRE_FILTER_KEY);
    if (!s) return null;
    const labels = node.labels ?? {};
    if (!satisfyPodAffinity(s, labels)) {
      return new Status(Code.UnschedulableAndUnresolvable, [ERR_REASON_AFFINITY]);
    }
    if (s.antiAffinityCounts.size > 0) {
      for (const t of s.requiredAntiAffinity) {
        const v = labels[t.topologyKey];
        if (v !== undefined && s.antiAffinityCounts.get(t.topologyKey, v) > 0) {
          return new Status(Code.Unschedulable, [ERR_REASON_ANTI_AFFINITY]);
        }
      }
    }
    if (s.existingAntiAffinityCounts.size > 0 && s.existingAntiAffinityCounts.anyPositive(labels)) {
      return new Status(Code.Unschedulable, [ERR_REASON_EXISTING_ANTI_AFFINITY]);
    }
    return null;
  }

  // ---- scoring ----

  preScore(state: CycleState, pod: PodInfo, nodes: readonly NodeInfo[]): Status | null {
    if (nodes.length === 0) return null;
    const a = pod.pod.spec?.affinity;
    const hasConstraints =
      (a?.podAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []).length > 0 ||
      (a?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []).length > 0;
    if (this.ignorePreferredTermsOfExistingPods && !hasConstraints) return new Status(Code.Skip);
    const snap = this.handle.snapshot();
    const all = hasConstraints ? snap.list() : snap.havePodsWithAffinityList();
    const preferredAffinity = pod.preferredAffinityTerms.map((t) => this.mergeNamespaces(t));
    const preferredAnti = pod.preferredAntiAffinityTerms.map((t) => this.mergeNamespaces(t));
    const nsLabels = snap.namespaceLabels(pod.namespace);
    const topologyScore = new Map<string, Map<string, number>>();
    const add = (node: Node, key: string, delta: number): void => {
      const v = node.metadata?.labels?.[key];
      if (v === undefined) return;
      let m = topologyScore.get(key);
      if (!m) topologyScore.set(key, (m = new Map()));
      m.set(v, (m.get(v) ?? 0) + delta);
    };
    const processTerms = (
      terms: WeightedAffinityTerm[],
      target: PodMeta,
      labels: Labels | undefined,
      node: Node,
      sign: number,
    ): void => {
      for (const t of terms)
        if (termMatches(t, target, labels)) add(node, t.topologyKey, t.weight * sign);
    };
    for (const ni of all) {
      // Nodes without pods are most of a large cluster: passed over on the NodeInfo's own fields.
      if (ni.podCount === 0) continue;
      const node = ni.node;
      if (!node || !hasAnyKey(ni.labels)) continue;
      const pods = hasConstraints ? ni.pods : ni.podsWithAffinity;
      for (const ep of pods) {
        processTerms(preferredAffinity, ep, undefined, node, 1);
        processTerms(preferredAnti, ep, undefined, node, -1);
        if (this.hardPodAffinityWeight > 0) {
          for (const t of ep.requiredAffinityTerms) {
            if (termMatches(t, pod, nsLabels)) add(node, t.topologyKey, this.hardPodAffinityWeight);
          }
        }
        processTerms(ep.preferredAffinityTerms, pod, nsLabels, node, 1);
        processTerms(ep.preferredAntiAffinityTerms, pod, nsLabels, node, -1);
      }
    }
    if (topologyScore.size === 0) return new Status(Code.Skip);
    state.write(PRE_SCORE_KEY, new PreScoreState(topologyScore));
    return null;
  }

  score(state: CycleState, _pod: PodInfo, node: NodeInfo): number {
    const s = state.read<PreScoreState>(PRE_SCORE_KEY);
    if (!s) return 0;
    const labels = node.labels;
    if (!labels) return 0;
    let score = 0;
    for (const [key, values] of s.topologyScore) {
      const v = labels[key];
      if (v !== undefined) score += values.get(v) ?? 0;
    }
    return score;
  }

  normalizeScore(
    state: CycleState,
    _pod: PodInfo,
    _nodes: readonly NodeInfo[],
    scores: number[],
  ): Status | null {
    const s = state.read<PreScoreState>(PRE_SCORE_KEY);
    if (!s || s.topologyScore.size === 0) return null;
    let min = Number.MAX_SAFE_INTEGER;
    let max = Number.MIN_SAFE_INTEGER;
    for (const v of scores) {
      if (v > max) max = v;
      if (v < min) min = v;
    }
    const diff = max - min;
    for (let i = 0; i < scores.length; i++) {
      scores[i] = diff > 0 ? Math.trunc(MAX_NODE_SCORE * ((scores[i]! - min) / diff)) : 0;
    }
    return null;
  }

  // ---- queueing hints ----

  eventsToRegister(): ClusterEventWithHint[] {
    return [
      {
        event: {
          resource: "Pod",
          actionType: ActionType.Add | ActionType.UpdatePodLabel | ActionType.Delete,
        },
        hint: (pod, oldObj, newObj) => {
          const before = asPod(oldObj);
          const after = asPod(newObj);
          if ((after && !after.spec?.nodeName) || (before && !before.spec?.nodeName))
            return QueueingHint.QueueSkip;
          const info = new PodInfo(pod);
          const terms = info.requiredAffinityTerms;
          const anti = info.requiredAntiAffinityTerms;
          if (before && after) {
            if (!matchesAllTerms(terms, podMeta(before)) && matchesAllTerms(terms, podMeta(after)))
              return QueueingHint.Queue;
            if (matchesAnyTerm(anti, podMeta(before)) && !matchesAnyTerm(anti, podMeta(after)))
              return QueueingHint.Queue;
            return QueueingHint.QueueSkip;
          }
          if (after)
            return matchesAllTerms(terms, podMeta(after))
              ? QueueingHint.Queue
              : QueueingHint.QueueSkip;
          if (!before) return QueueingHint.QueueSkip;
          // A deleted pod frees its domain for our anti-affinity, or lifts its own anti-affinity.
          if (matchesAnyTerm(anti, podMeta(before))) return QueueingHint.Queue;
          return new PodInfo(before).requiredAntiAffinityTerms.length > 0
            ? QueueingHint.Queue
            : QueueingHint.QueueSkip;
        },
      },
      {
        event: { resource: "Node", actionType: ActionType.Add | ActionType.UpdateNodeLabel },
        hint: (pod, oldObj, newObj) => {
          const after = asNode(newObj);
          if (!after) return QueueingHint.QueueSkip;
          const info = new PodInfo(pod);
          const labels = after.metadata?.labels ?? {};
          for (const t of info.requiredAffinityTerms)
            if (t.topologyKey in labels) return QueueingHint.Queue;
          const before = asNode(oldObj);
          for (const t of info.requiredAntiAffinityTerms) {
            if (!before || before.metadata?.labels?.[t.topologyKey] !== labels[t.topologyKey])
              return QueueingHint.Queue;
          }
          return QueueingHint.QueueSkip;
        },
      },
    ];
  }
}

function satisfyPodAffinity(s: PreFilterState, labels: Labels): boolean {
  let podsExist = true;
  for (const t of s.requiredAffinity) {
    const v = labels[t.topologyKey];
    if (v === undefined) return false;
    if (s.affinityCounts.get(t.topologyKey, v) <= 0) podsExist = false;
  }
  if (!podsExist) {
    // The first pod of a group with affinity to itself may go anywhere with the topology labels.
    return s.affinityCounts.size === 0 && matchesAllTerms(s.requiredAffinity, s.podInfo);
  }
  return true;
}
