/**
 * TaintToleration: Filter rejects nodes with a NoSchedule or NoExecute taint the pod does not
 * tolerate; Score counts untolerated PreferNoSchedule taints, fewer being better.
 */
import type { Taint, Toleration } from "kubernetes-types/core/v1.js";
import {
  ActionType,
  QueueingHint,
  type ClusterEventWithHint,
  type EnqueueExtensions,
  type FilterPlugin,
  type PreScorePlugin,
  type ScorePlugin,
} from "../interface.js";
import { findUntoleratedTaint, tolerationsTolerateTaint } from "../selectors.js";
import {
  Code,
  StateCache,
  Status,
  type CycleState,
  type NodeInfo,
  type PodInfo,
  type StateData,
} from "../types.js";
import { asNode, asPod, normalizeTo100, sameUID } from "./helper.js";
import { TAINT_TOLERATION } from "./names.js";

const PRE_SCORE_KEY = "PreScore" + TAINT_TOLERATION;

class PreScoreState implements StateData {
  constructor(readonly tolerations: Toleration[]) {}
  clone(): StateData {
    return this;
  }
}

/** Upstream's reason: the first untolerated taint as {key: value}. */
export function untoleratedTaintReason(t: Taint): string {
  return `node(s) had untolerated taint {${t.key}: ${t.value ?? ""}}`;
}

export class TaintToleration
  implements FilterPlugin, PreScorePlugin, ScorePlugin, EnqueueExtensions
{
  readonly name = TAINT_TOLERATION;
  private readonly cache = new StateCache<PreScoreState>();

  filter(_state: CycleState, pod: PodInfo, node: NodeInfo): Status | null {
    const taints = node.taints;
    if (!taints || taints.length === 0) return null;
    const taint = findUntoleratedTaint(taints, pod.pod.spec?.tolerations);
    if (!taint) return null;
    return new Status(Code.UnschedulableAndUnresolvable, [untoleratedTaintReason(taint)]);
  }

  preScore(state: CycleState, pod: PodInfo, nodes: readonly NodeInfo[]): Status | null {
    if (nodes.length === 0) return null;
    const tolerations = (pod.pod.spec?.tolerations ?? []).filter(
      (t) => !t.effect || t.effect === "PreferNoSchedule",
    );
    this.cache.write(state, PRE_SCORE_KEY, new PreScoreState(tolerations));
    return null;
  }

  score(state: CycleState, pod: PodInfo, node: NodeInfo): number {
    const taints = node.taints;
    if (!taints || taints.length === 0) return 0;
    const s = this.cache.read(state, PRE_SCORE_KEY);
    const tolerations =
      s?.tolerations ??
      (pod.pod.spec?.tolerations ?? []).filter((t) => !t.effect || t.effect === "PreferNoSchedule");
    let n = 0;
    for (const taint of taints) {
      if (taint.effect !== "PreferNoSchedule") continue;
      if (!tolerationsTolerateTaint(tolerations, taint)) n++;
    }
    return n;
  }

  normalizeScore(
    _s: CycleState,
    _p: PodInfo,
    _n: readonly NodeInfo[],
    scores: number[],
  ): Status | null {
    return normalizeTo100(true, scores);
  }

  eventsToRegister(): ClusterEventWithHint[] {
    return [
      {
        event: { resource: "Node", actionType: ActionType.Add | ActionType.UpdateNodeTaint },
        hint: (pod, oldObj, newObj) => {
          const before = asNode(oldObj);
          const after = asNode(newObj);
          if (!after) return QueueingHint.QueueSkip;
          const wasUntolerated = before
            ? findUntoleratedTaint(before.spec?.taints, pod.spec?.tolerations) !== undefined
            : true;
          const isUntolerated =
            findUntoleratedTaint(after.spec?.taints, pod.spec?.tolerations) !== undefined;
          return wasUntolerated && !isUntolerated ? QueueingHint.Queue : QueueingHint.QueueSkip;
        },
      },
      {
        event: { resource: "Pod", actionType: ActionType.UpdatePodToleration },
        hint: (pod, _old, newObj) =>
          sameUID(asPod(newObj), pod) ? QueueingHint.Queue : QueueingHint.QueueSkip,
      },
    ];
  }
}
