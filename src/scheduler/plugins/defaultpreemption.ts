/**
 * DefaultPreemption (PostFilter): when no node fits, look for nodes where evicting lower-priority
 * pods would let the pod fit, keep as few victims as possible (reprieving the most important pods
 * first, PDB-protected ones before the rest), and pick the node whose victims hurt least: fewest
 * PDB violations, then lowest highest-victim priority, lowest priority sum, fewest victims, and
 * latest start time.
 */
import type { Pod } from "kubernetes-types/core/v1.js";
import type { PodDisruptionBudget } from "kubernetes-types/policy/v1.js";
import type { Handle, PostFilterPlugin, PostFilterResult } from "../interface.js";
import { Selector } from "../selectors.js";
import {
  Code,
  FitError,
  newDiagnosis,
  NodeToStatus,
  podPriority,
  Status,
  type CycleState,
  type NodeInfo,
  type PodInfo,
} from "../types.js";
import { DEFAULT_PREEMPTION } from "./names.js";

export interface DefaultPreemptionArgs {
  minCandidateNodesPercentage?: number;
  minCandidateNodesAbsolute?: number;
}

export const MSG_NOT_HELPFUL = "Preemption is not helpful for scheduling";
export const MSG_NO_VICTIMS = "No preemption victims found for incoming pod";

export interface Candidate {
  name: string;
  /** Victims, most important first. */
  victims: Pod[];
  numPDBViolations: number;
}

/** When the pod started (status.startTime); pods not started yet count as starting now. */
export function podStartTime(pod: Pod, now: number): number {
  const t = pod.status?.startTime;
  return t ? Date.parse(t) : now;
}

/** Higher priority first; at equal priority, the pod that started earlier. */
export function moreImportantPod(a: Pod, b: Pod, now: number): boolean {
  const p1 = podPriority(a);
  const p2 = podPriority(b);
  if (p1 !== p2) return p1 > p2;
  return podStartTime(a, now) < podStartTime(b, now);
}

/** Splits pods into those whose eviction would exceed a PDB's disruptionsAllowed and the rest. */
export function filterPodsWithPDBViolation(
  pods: PodInfo[],
  pdbs: readonly PodDisruptionBudget[],
): { violating: PodInfo[]; nonViolating: PodInfo[] } {
  const allowed = pdbs.map((p) => p.status?.disruptionsAllowed ?? 0);
  const selectors = pdbs.map((p) => {
    try {
      return Selector.fromLabelSelector(p.spec?.selector);
    } catch {
      return undefined;
    }
  });
  const violating: PodInfo[] = [];
  const nonViolating: PodInfo[] = [];
  for (const pi of pods) {
    const labels = pi.pod.metadata?.labels;
    let violated = false;
    if (labels && Object.keys(labels).length > 0) {
      pdbs.forEach((pdb, i) => {
        if ((pdb.metadata?.namespace ?? "") !== pi.namespace) return;
        const sel = selectors[i];
        if (!sel || sel.empty() || !sel.matches(labels)) return;
        if (pdb.status?.disruptedPods && pi.name in pdb.status.disruptedPods) return;
        allowed[i]!--;
        if (allowed[i]! < 0) violated = true;
      });
    }
    (violated ? violating : nonViolating).push(pi);
  }
  return { violating, nonViolating };
}

function earliestStartTime(victims: Pod[], now: number): number | undefined {
  if (victims.length === 0) return undefined;
  let earliest = podStartTime(victims[0]!, now);
  let maxPrio = podPriority(victims[0]!);
  for (const p of victims) {
    const prio = podPriority(p);
    if (prio === maxPrio) {
      const t = podStartTime(p, now);
      if (t < earliest) earliest = t;
    } else if (prio > maxPrio) {
      maxPrio = prio;
      earliest = podStartTime(p, now);
    }
  }
  return earliest;
}

/** Upstream's pickOneNodeForPreemption over candidates in the given order. */
export function pickOneNodeForPreemption(
  candidates: Candidate[],
  now: number,
): Candidate | undefined {
  if (candidates.length === 0) return undefined;
  const MAX_INT32 = 2147483647;
  const scoreFuncs: ((c: Candidate) => number)[] = [
    (c) => -c.numPDBViolations,
    (c) => -podPriority(c.victims[0]!),
    (c) => -c.victims.reduce((sum, p) => sum + podPriority(p) + MAX_INT32 + 1, 0),
    (c) => -c.victims.length,
    (c) => earliestStartTime(c.victims, now) ?? Number.MIN_SAFE_INTEGER,
  ];
  let all = candidates;
  for (const f of scoreFuncs) {
    let max = -Infinity;
    let selected: Candidate[] = [];
    for (const c of all) {
      const s = f(c);
      if (s > max) {
        max = s;
        selected = [];
      }
      if (s === max) selected.push(c);
    }
    if (selected.length === 1) return selected[0];
    all = selected;
  }
  return all[0];
}

function terminatingByPreemption(pod: Pod): boolean {
  if (!pod.metadata?.deletionTimestamp) return false;
  return (pod.status?.conditions ?? []).some(
    (c) =>
      c.type === "DisruptionTarget" && c.status === "True" && c.reason === "PreemptionByScheduler",
  );
}

export class DefaultPreemption implements PostFilterPlugin {
  readonly name = DEFAULT_PREEMPTION;
  private readonly minPercentage: number;
  private readonly minAbsolute: number;

  constructor(
    args: DefaultPreemptionArgs,
    private readonly handle: Handle,
    private readonly now: () => number = Date.now,
  ) {
    this.minPercentage = args.minCandidateNodesPercentage ?? 10;
    this.minAbsolute = args.minCandidateNodesAbsolute ?? 100;
  }

  postFilter(
    state: CycleState,
    pod: PodInfo,
    statuses: NodeToStatus,
  ): { result: PostFilterResult | null; status: Status } {
    const { result, status } = this.preempt(state, pod, statuses);
    const msg = status.message();
    if (msg.length > 0) return { result, status: new Status(status.code, [`preemption: ${msg}`]) };
    return { result, status };
  }

  /** Whether the pod may preempt, and why not. */
  podEligibleToPreemptOthers(pod: Pod, nominatedNodeStatus: Status): [boolean, string] {
    if (pod.spec?.preemptionPolicy === "Never")
      return [false, "not eligible due to preemptionPolicy=Never."];
    const nominated = pod.status?.nominatedNodeName;
    if (nominated) {
      if (nominatedNodeStatus.code === Code.UnschedulableAndUnresolvable) return [true, ""];
      const ni = this.handle.snapshot().get(nominated);
      if (ni) {
        const prio = podPriority(pod);
        for (const p of ni.pods) {
          if (podPriority(p.pod) < prio && terminatingByPreemption(p.pod)) {
            return [false, "not eligible due to a terminating pod on the nominated node."];
          }
        }
      }
    }
    return [true, ""];
  }

  calculateNumCandidates(numNodes: number): number {
    let n = Math.trunc((numNodes * this.minPercentage) / 100);
    if (n < this.minAbsolute) n = this.minAbsolute;
    if (n > numNodes) n = numNodes;
    return n;
  }

  preempt(
    state: CycleState,
    pod: PodInfo,
    statuses: NodeToStatus,
  ): { result: PostFilterResult | null; status: Status } {
    const [eligible, why] = this.podEligibleToPreemptOthers(
      pod.pod,
      statuses.get(pod.pod.status?.nominatedNodeName ?? ""),
    );
    if (!eligible) return { result: null, status: new Status(Code.Unschedulable, [why]) };

    const all = this.handle.snapshot().list();
    if (all.length === 0) return { result: null, status: Status.error("no nodes available") };
    const { candidates, nodeStatuses } = this.findCandidates(state, pod, all, statuses);
    if (candidates.length === 0) {
      const d = newDiagnosis();
      for (const [n, s] of nodeStatuses.map) d.nodeToStatus.set(n, s);
      d.nodeToStatus.absentNodesStatus = new Status(Code.UnschedulableAndUnresolvable, [
        MSG_NOT_HELPFUL,
      ]);
      const fe = new FitError(pod.pod, all.length, d);
      return {
        result: { nominatedNodeName: "" },
        status: new Status(Code.Unschedulable, [fe.message]),
      };
    }
    const best =
      candidates.length === 1 ? candidates[0]! : pickOneNodeForPreemption(candidates, this.now())!;
    const prio = podPriority(pod.pod);
    const clearNominated = (this.handle.nominator()?.nominatedPodsForNode(best.name) ?? [])
      .filter((p) => podPriority(p.pod) < prio)
      .map((p) => p.pod);
    return {
      result: { nominatedNodeName: best.name, victims: best.victims, clearNominated },
      status: new Status(Code.Success),
    };
  }

  /** Dry-runs preemption on the nodes that failed with Unschedulable, from a random offset. */
  findCandidates(
    state: CycleState,
    pod: PodInfo,
    all: readonly NodeInfo[],
    statuses: NodeToStatus,
  ): { candidates: Candidate[]; nodeStatuses: NodeToStatus } {
    const nodeStatuses = new NodeToStatus();
    const potential = statuses.nodesForStatusCode(all, Code.Unschedulable);
    if (potential.length === 0) return { candidates: [], nodeStatuses };
    const pdbs = this.handle.snapshot().pdbs();
    const offset = this.handle.randomInt(potential.length);
    const numCandidates = this.calculateNumCandidates(potential.length);
    const nonViolating: Candidate[] = [];
    const violating: Candidate[] = [];
    for (let i = 0; i < potential.length; i++) {
      const ni = potential[(offset + i) % potential.length]!.snapshot();
      const { victims, numPDBViolations, status } = this.selectVictimsOnNode(
        state.clone(),
        pod,
        ni,
        pdbs,
      );
      if (status === null && victims.length > 0) {
        const c: Candidate = { name: ni.name, victims, numPDBViolations };
        (numPDBViolations === 0 ? nonViolating : violating).push(c);
        if (nonViolating.length > 0 && nonViolating.length + violating.length >= numCandidates)
          break;
        continue;
      }
      nodeStatuses.set(
        ni.name,
        status ??
          Status.error(`expected at least one victim pod on node ${JSON.stringify(ni.name)}`),
      );
    }
    return { candidates: [...nonViolating, ...violating], nodeStatuses };
  }

  /**
   * Removes every lower-priority pod from a copy of the node; if the pod then fits, adds them back
   * one by one, most important first (PDB-protected pods before the others), keeping out only
   * those without which the pod no longer fits.
   */
  selectVictimsOnNode(
    state: CycleState,
    pod: PodInfo,
    node: NodeInfo,
    pdbs: readonly PodDisruptionBudget[],
  ): { victims: Pod[]; numPDBViolations: number; status: Status | null } {
    const h = this.handle;
    const removePod = (pi: PodInfo): Status | null => {
      node.removePod(pi.key);
      return h.runPreFilterExtensionRemovePod(state, pod, pi, node);
    };
    const addPod = (pi: PodInfo): Status | null => {
      node.addPodInfo(pi);
      return h.runPreFilterExtensionAddPod(state, pod, pi, node);
    };
    const prio = podPriority(pod.pod);
    const potential: PodInfo[] = [];
    for (const pi of [...node.pods]) {
      if (podPriority(pi.pod) < prio) {
        potential.push(pi);
        const s = removePod(pi);
        if (s) return { victims: [], numPDBViolations: 0, status: s };
      }
    }
    if (potential.length === 0) {
      return {
        victims: [],
        numPDBViolations: 0,
        status: new Status(Code.UnschedulableAndUnresolvable, [MSG_NO_VICTIMS]),
      };
    }
    const fits = h.runFilterPluginsWithNominatedPods(state, pod, node);
    if (fits !== null) return { victims: [], numPDBViolations: 0, status: fits };

    const now = this.now();
    potential.sort((a, b) =>
      moreImportantPod(a.pod, b.pod, now) ? -1 : moreImportantPod(b.pod, a.pod, now) ? 1 : 0,
    );
    const { violating, nonViolating } = filterPodsWithPDBViolation(potential, pdbs);
    const victims: Pod[] = [];
    let numViolating = 0;
    const reprieve = (pi: PodInfo): { fits: boolean; status: Status | null } => {
      let s = addPod(pi);
      if (s) return { fits: false, status: s };
      const fit = h.runFilterPluginsWithNominatedPods(state, pod, node) === null;
      if (!fit) {
        s = removePod(pi);
        if (s) return { fits: false, status: s };
        victims.push(pi.pod);
      }
      return { fits: fit, status: null };
    };
    for (const pi of violating) {
      const r = reprieve(pi);
      if (r.status) return { victims: [], numPDBViolations: 0, status: r.status };
      if (!r.fits) numViolating++;
    }
    for (const pi of nonViolating) {
      const r = reprieve(pi);
      if (r.status) return { victims: [], numPDBViolations: 0, status: r.status };
    }
    return { victims, numPDBViolations: numViolating, status: null };
  }
}
