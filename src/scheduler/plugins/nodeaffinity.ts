/**
 * NodeAffinity: Filter by the pod's nodeSelector and required node affinity (and the profile's
 * addedAffinity); PreFilter narrows the nodes when the terms name nodes by metadata.name; Score
 * sums the weights of the preferred terms a node matches.
 */
import type { Node, NodeAffinity as NodeAffinitySpec } from "kubernetes-types/core/v1.js";
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
import { NodeSelectorMatcher, PreferredTerms, RequiredNodeAffinity } from "../selectors.js";
import {
  Code,
  Status,
  type CycleState,
  type NodeInfo,
  type PodInfo,
  type StateData,
} from "../types.js";
import { asNode, normalizeTo100 } from "./helper.js";
import { NODE_AFFINITY } from "./names.js";

export const ERR_REASON_POD = "node(s) didn't match Pod's node affinity/selector";
export const ERR_REASON_ENFORCED = "node(s) didn't match scheduler-enforced node affinity";
export const ERR_REASON_CONFLICT = "pod affinity terms conflict";

export interface NodeAffinityArgs {
  addedAffinity?: NodeAffinitySpec;
}

const PRE_FILTER_KEY = "PreFilter" + NODE_AFFINITY;
const PRE_SCORE_KEY = "PreScore" + NODE_AFFINITY;

class PreFilterState implements StateData {
  constructor(readonly required: RequiredNodeAffinity) {}
  clone(): StateData {
    return this;
  }
}

class PreScoreState implements StateData {
  constructor(readonly preferred: PreferredTerms | undefined) {}
  clone(): StateData {
    return this;
  }
}

function podPreferred(pod: PodInfo): PreferredTerms | undefined {
  const terms =
    pod.pod.spec?.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution;
  return terms && terms.length > 0 ? new PreferredTerms(terms) : undefined;
}

export class NodeAffinity
  implements PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin, EnqueueExtensions
{
  readonly name = NODE_AFFINITY;
  private readonly addedNodeSelector: NodeSelectorMatcher | undefined;
  private readonly addedPrefSchedTerms: PreferredTerms | undefined;

  constructor(args: NodeAffinityArgs = {}) {
    const required = args.addedAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
    this.addedNodeSelector = required ? new NodeSelectorMatcher(required) : undefined;
    const preferred = args.addedAffinity?.preferredDuringSchedulingIgnoredDuringExecution;
    this.addedPrefSchedTerms =
      preferred && preferred.length > 0 ? new PreferredTerms(preferred) : undefined;
  }

  preFilter(state: CycleState, pod: PodInfo): PreFilterOutcome | null {
    const required =
      pod.pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
    if (!required && !this.addedNodeSelector && pod.pod.spec?.nodeSelector == null) {
      return { status: new Status(Code.Skip) };
    }
    state.write(PRE_FILTER_KEY, new PreFilterState(new RequiredNodeAffinity(pod.pod)));
    const terms = required?.nodeSelectorTerms ?? [];
    if (terms.length === 0) return null;
    let nodeNames: Set<string> | undefined;
    for (const t of terms) {
      let termNames: Set<string> | undefined;
      for (const r of t.matchFields ?? []) {
        if (r.key === "metadata.name" && r.operator === "In") {
          const s = new Set(r.values ?? []);
          termNames = termNames === undefined ? s : new Set([...termNames].filter((n) => s.has(n)));
        }
      }
      // A term without a metadata.name In requirement admits every node: the terms are ORed.
      if (termNames === undefined) return null;
      nodeNames =
        nodeNames === undefined ? new Set(termNames) : new Set([...nodeNames, ...termNames]);
    }
    if (nodeNames !== undefined && nodeNames.size === 0) {
      return { status: new Status(Code.UnschedulableAndUnresolvable, [ERR_REASON_CONFLICT]) };
    }
    return nodeNames ? { result: { nodeNames } } : null;
  }

  filter(state: CycleState, pod: PodInfo, node: NodeInfo): Status | null {
    const n = node.node!;
    if (this.addedNodeSelector && !this.addedNodeSelector.match(n)) {
      return new Status(Code.UnschedulableAndUnresolvable, [ERR_REASON_ENFORCED]);
    }
    const s = state.read<PreFilterState>(PRE_FILTER_KEY);
    const required = s?.required ?? new RequiredNodeAffinity(pod.pod);
    if (!required.match(n)) return new Status(Code.UnschedulableAndUnresolvable, [ERR_REASON_POD]);
    return null;
  }

  preScore(state: CycleState, pod: PodInfo, nodes: readonly NodeInfo[]): Status | null {
    if (nodes.length === 0) return null;
    const preferred = podPreferred(pod);
    if (!preferred && !this.addedPrefSchedTerms) return new Status(Code.Skip);
    state.write(PRE_SCORE_KEY, new PreScoreState(preferred));
    return null;
  }

  score(state: CycleState, pod: PodInfo, node: NodeInfo): number {
    const n = node.node!;
    let count = 0;
    if (this.addedPrefSchedTerms) count += this.addedPrefSchedTerms.score(n);
    const s = state.read<PreScoreState>(PRE_SCORE_KEY);
    const preferred = s ? s.preferred : podPreferred(pod);
    if (preferred) count += preferred.score(n);
    return count;
  }

  normalizeScore(
    _s: CycleState,
    _p: PodInfo,
    _n: readonly NodeInfo[],
    scores: number[],
  ): Status | null {
    return normalizeTo100(false, scores);
  }

  eventsToRegister(): ClusterEventWithHint[] {
    return [
      {
        event: { resource: "Node", actionType: ActionType.Add | ActionType.UpdateNodeLabel },
        hint: (pod, oldObj, newObj) => {
          const after = asNode(newObj);
          if (!after) return QueueingHint.QueueSkip;
          if (this.addedNodeSelector && !this.addedNodeSelector.match(after))
            return QueueingHint.QueueSkip;
          const required = new RequiredNodeAffinity(pod);
          if (!required.match(after)) return QueueingHint.QueueSkip;
          const before = asNode(oldObj) as Node | undefined;
          if (!before || !required.match(before)) return QueueingHint.Queue;
          return QueueingHint.QueueSkip;
        },
      },
    ];
  }
}
