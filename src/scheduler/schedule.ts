/**
 * One scheduling decision (upstream's schedulePod): PreFilter, then Filter over a sample of the
 * nodes that starts where the previous cycle stopped and ends once enough feasible nodes are
 * found (percentageOfNodesToScore), then PreScore/Score/NormalizeScore, and a random pick among
 * the nodes with the highest total score. On failure, PostFilter (preemption) runs and its
 * message joins the FitError.
 */
import type { Framework } from "./framework.js";
import type { PostFilterResult, SharedLister } from "./interface.js";
import {
  addPluginStatus,
  Code,
  CycleState,
  FitError,
  newDiagnosis,
  Status,
  type Diagnosis,
  type NodeInfo,
  type PodInfo,
} from "./types.js";

/** Below this many nodes every node is evaluated. */
export const MIN_FEASIBLE_NODES_TO_FIND = 100;
/** The adaptive percentage never drops below this. */
export const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5;

export const ERR_NO_NODES_AVAILABLE = "no nodes available to schedule pods";

/**
 * How many feasible nodes to look for: every node below 100; otherwise the percentage (0 means
 * adaptive: 50 - nodes/125, at least 5), and never fewer than 100.
 */
export function numFeasibleNodesToFind(
  percentage: number | undefined,
  numAllNodes: number,
): number {
  if (numAllNodes < MIN_FEASIBLE_NODES_TO_FIND) return numAllNodes;
  let p = percentage ?? 0;
  if (p === 0) {
    p = 50 - Math.trunc(numAllNodes / 125);
    if (p < MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND) p = MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND;
  }
  const n = Math.trunc((numAllNodes * p) / 100);
  return n < MIN_FEASIBLE_NODES_TO_FIND ? MIN_FEASIBLE_NODES_TO_FIND : n;
}

export interface ScheduleResult {
  suggestedHost: string;
  /** Nodes filtered in this cycle. */
  evaluatedNodes: number;
  feasibleNodes: number;
}

export type ScheduleOutcome =
  | { node: string; result: ScheduleResult }
  | { failure: FitError; postFilter: PostFilterResult | null }
  | { error: Error; status: Status };

/**
 * The state of the scheduling algorithm across cycles: where the next filtering pass starts.
 * One instance serves all profiles, as upstream's scheduler does.
 */
export class SchedulingAlgorithm {
  nextStartNodeIndex = 0;
  private totals: number[] = [];

  /**
   * Picks a node for the pod or explains why none fits. Throws FitError when no node fits and
   * Error for failures of plugins or an empty cluster.
   */
  schedulePod(
    fw: Framework,
    state: CycleState,
    pod: PodInfo,
    snapshot: SharedLister,
  ): ScheduleResult {
    fw.setSnapshot(snapshot);
    const all = snapshot.list();
    if (all.length === 0) throw new Error(ERR_NO_NODES_AVAILABLE);
    const { feasible, diagnosis } = this.findNodesThatFitPod(fw, state, pod, snapshot);
    if (feasible.length === 0) throw new FitError(pod.pod, all.length, diagnosis);
    if (feasible.length === 1) {
      return {
        suggestedHost: feasible[0]!.name,
        evaluatedNodes: 1 + diagnosis.nodeToStatus.size,
        feasibleNodes: 1,
      };
    }
    const totals = this.prioritizeNodes(fw, state, pod, feasible);
    return {
      suggestedHost: selectHost(feasible, totals, (n) => fw.randomInt(n)),
      evaluatedNodes: feasible.length + diagnosis.nodeToStatus.size,
      feasibleNodes: feasible.length,
    };
  }

  /**
   * schedulePod and, when no node fits, the PostFilter plugins (preemption). The failure's
   * message then carries the PostFilter's explanation.
   */
  run(
    fw: Framework,
    pod: PodInfo,
    snapshot: SharedLister,
    state = new CycleState(),
  ): ScheduleOutcome {
    try {
      const result = this.schedulePod(fw, state, pod, snapshot);
      return { node: result.suggestedHost, result };
    } catch (err) {
      if (!(err instanceof FitError)) {
        const e = err as Error;
        const code =
          e.message === ERR_NO_NODES_AVAILABLE ? Code.UnschedulableAndUnresolvable : Code.Error;
        return { error: e, status: new Status(code, [e.message], e) };
      }
      if (!fw.hasPostFilterPlugins()) return { failure: err, postFilter: null };
      const { result, status } = fw.runPostFilterPlugins(state, pod, err.diagnosis.nodeToStatus);
      err.diagnosis.postFilterMsg = status.message();
      return { failure: err, postFilter: result };
    }
  }

  findNodesThatFitPod(
    fw: Framework,
    state: CycleState,
    pod: PodInfo,
    snapshot: SharedLister,
  ): { feasible: NodeInfo[]; diagnosis: Diagnosis } {
    const diagnosis = newDiagnosis();
    const all = snapshot.list();
    const pre = fw.runPreFilterPlugins(state, pod, all);
    diagnosis.unschedulablePlugins = new Set(pre.unschedulablePlugins);
    if (pre.status !== null && !pre.status.isSuccess()) {
      if (!pre.status.isRejected()) throw pre.status.error ?? new Error(pre.status.message());
      diagnosis.nodeToStatus.absentNodesStatus = pre.status;
      diagnosis.preFilterMsg = pre.status.message();
      addPluginStatus(diagnosis, pre.status);
      return { feasible: [], diagnosis };
    }

    // A node nominated by an earlier preemption is likely the only one that fits: try it first.
    const nominated = pod.pod.status?.nominatedNodeName;
    if (nominated) {
      const ni = snapshot.get(nominated);
      if (ni) {
        const feasible = this.findNodesThatPassFilters(fw, state, pod, diagnosis, [ni]);
        if (feasible.length > 0) return { feasible, diagnosis };
      }
    }

    let nodes = all;
    const names = pre.result?.nodeNames;
    if (names) {
      nodes = all.filter((n) => names.has(n.name));
      const plugins = [...pre.unschedulablePlugins].sort().join(" ");
      diagnosis.nodeToStatus.absentNodesStatus = new Status(Code.UnschedulableAndUnresolvable, [
        `node(s) didn't satisfy plugin(s) [${plugins}]`,
      ]);
    }
    const feasible = this.findNodesThatPassFilters(fw, state, pod, diagnosis, nodes);
    return { feasible, diagnosis };
  }

  /** Filters nodes round-robin from nextStartNodeIndex until enough feasible ones are found. */
  findNodesThatPassFilters(
    fw: Framework,
    state: CycleState,
    pod: PodInfo,
    diagnosis: Diagnosis,
    nodes: readonly NodeInfo[],
  ): NodeInfo[] {
    const numAll = nodes.length;
    if (numAll === 0) return [];
    const numToFind = numFeasibleNodesToFind(fw.percentageOfNodesToScore, numAll);
    const start = this.nextStartNodeIndex % numAll;
    const feasible: NodeInfo[] = [];
    if (!fw.hasFilterPlugins()) {
      for (let i = 0; i < numToFind; i++) feasible.push(nodes[(start + i) % numAll]!);
      this.nextStartNodeIndex = (start + numToFind) % numAll;
      return feasible;
    }
    const filters = fw.activeFilters(state);
    const withNominated = fw.nominator()?.hasNominatedPods() ?? false;
    let processed = 0;
    for (let i = 0; i < numAll && feasible.length < numToFind; i++) {
      const node = nodes[(start + i) % numAll]!;
      processed++;
      const s = withNominated
        ? fw.runFilterPluginsWithNominatedPods(state, pod, node, filters)
        : fw.runFilterPlugins(state, pod, node, filters);
      if (s === null) {
        feasible.push(node);
        continue;
      }
      if (!s.isRejected()) throw s.error ?? new Error(s.message());
      diagnosis.nodeToStatus.set(node.name, s);
      addPluginStatus(diagnosis, s);
    }
    this.nextStartNodeIndex = (start + processed) % numAll;
    return feasible;
  }

  /** Total weighted score per feasible node (1 each when no score plugin is enabled). */
  prioritizeNodes(fw: Framework, state: CycleState, pod: PodInfo, nodes: NodeInfo[]): number[] {
    if (this.totals.length < nodes.length) this.totals = new Array<number>(nodes.length).fill(0);
    const totals = this.totals;
    if (!fw.hasScorePlugins()) {
      for (let i = 0; i < nodes.length; i++) totals[i] = 1;
      return totals;
    }
    let s = fw.runPreScorePlugins(state, pod, nodes);
    if (s !== null) throw s.error ?? new Error(s.message());
    s = fw.runScorePlugins(state, pod, nodes, totals);
    if (s !== null) throw s.error ?? new Error(s.message());
    return totals;
  }
}

/**
 * The node with the highest total; among equal totals each is picked with the same probability
 * (reservoir sampling, as upstream's selectHost).
 */
export function selectHost(
  nodes: readonly NodeInfo[],
  totals: readonly number[],
  randomInt: (n: number) => number,
): string {
  if (nodes.length === 0) throw new Error("empty priorityList");
  let best = 0;
  let max = totals[0]!;
  let count = 1;
  for (let i = 1; i < nodes.length; i++) {
    const t = totals[i]!;
    if (t > max) {
      max = t;
      best = i;
      count = 1;
    } else if (t === max) {
      count++;
      if (randomInt(count) === 0) best = i;
    }
  }
  return nodes[best]!.name;
}
