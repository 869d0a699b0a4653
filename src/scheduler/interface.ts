/**
 * The plugin interfaces of the scheduling framework (upstream's framework/interface.go), the
 * read-only view of the cluster that plugins see (the snapshot), and the cluster events that move
 * unschedulable pods back to the active queue.
 */
import type { PersistentVolumeClaim, Pod } from "kubernetes-types/core/v1.js";
import type { PodDisruptionBudget } from "kubernetes-types/policy/v1.js";
import type { CycleState, NodeInfo, NodeToStatus, PodInfo, Status } from "./types.js";
import type { Labels, Selector } from "./selectors.js";

/** The snapshot of the cluster a cycle runs against (upstream's SharedLister and listers). */
export interface SharedLister {
  /** Every node with a Node object, in the node tree's zone-interleaved order. */
  list(): readonly NodeInfo[];
  get(nodeName: string): NodeInfo | undefined;
  havePodsWithAffinityList(): readonly NodeInfo[];
  havePodsWithRequiredAntiAffinityList(): readonly NodeInfo[];
  /** Whether some pod in the snapshot uses the claim "namespace/name". */
  isPVCUsedByPods(key: string): boolean;
  /** Labels of a namespace, undefined when the namespace is unknown. */
  namespaceLabels(namespace: string): Labels | undefined;
  /** Names of the namespaces whose labels match the selector. */
  namespacesMatching(selector: Selector): string[];
  pvc(namespace: string, name: string): PersistentVolumeClaim | undefined;
  pdbs(): readonly PodDisruptionBudget[];
  /**
   * The selector a pod's Services, ReplicationController, ReplicaSet or StatefulSet select it by
   * (upstream's helper.DefaultSelector), for system-default topology spreading.
   */
  defaultSelector(pod: Pod): Selector;
}

/** Pods nominated to nodes by preemption, which filters treat as already running there. */
export interface PodNominator {
  nominatedPodsForNode(nodeName: string): readonly PodInfo[];
  /** Whether any pod is nominated anywhere (lets filtering skip the per-node lookup). */
  hasNominatedPods(): boolean;
}

/** What the framework gives plugins (upstream's framework.Handle). */
export interface Handle {
  readonly schedulerName: string;
  snapshot(): SharedLister;
  nominator(): PodNominator | undefined;
  runFilterPluginsWithNominatedPods(state: CycleState, pod: PodInfo, node: NodeInfo): Status | null;
  runPreFilterExtensionAddPod(
    state: CycleState,
    pod: PodInfo,
    toAdd: PodInfo,
    node: NodeInfo,
  ): Status | null;
  runPreFilterExtensionRemovePod(
    state: CycleState,
    pod: PodInfo,
    toRemove: PodInfo,
    node: NodeInfo,
  ): Status | null;
  /** Random integer in [0, n), injectable for tests. */
  randomInt(n: number): number;
}

export interface Plugin {
  readonly name: string;
}

/** Restricts the nodes a cycle considers; null node names means every node. */
export interface PreFilterResult {
  nodeNames: Set<string> | null;
}

export interface PreFilterOutcome {
  result?: PreFilterResult | null;
  status?: Status | null;
}

export interface PreFilterPlugin extends Plugin {
  preFilter(state: CycleState, pod: PodInfo, nodes: readonly NodeInfo[]): PreFilterOutcome | null;
  /** Updates the PreFilter state as if `toAdd` ran on `node` (used for nominated pods and preemption). */
  addPod?(state: CycleState, pod: PodInfo, toAdd: PodInfo, node: NodeInfo): Status | null;
  removePod?(state: CycleState, pod: PodInfo, toRemove: PodInfo, node: NodeInfo): Status | null;
}

export interface FilterPlugin extends Plugin {
  /** null when the node fits. */
  filter(state: CycleState, pod: PodInfo, node: NodeInfo): Status | null;
}

export interface PostFilterResult {
  /** The node to nominate; "" clears a nomination. */
  nominatedNodeName: string;
  /** Pods to evict so that the pod fits on the nominated node. */
  victims?: Pod[];
  /** Lower-priority pods nominated to that node whose nomination should be cleared. */
  clearNominated?: Pod[];
}

export interface PostFilterPlugin extends Plugin {
  postFilter(
    state: CycleState,
    pod: PodInfo,
    statuses: NodeToStatus,
  ): { result: PostFilterResult | null; status: Status };
}

export interface PreScorePlugin extends Plugin {
  preScore(state: CycleState, pod: PodInfo, nodes: readonly NodeInfo[]): Status | null;
}

export interface ScorePlugin extends Plugin {
  /** The node's raw score; throw to fail the cycle with an Error status. */
  score(state: CycleState, pod: PodInfo, node: NodeInfo): number;
  /** Maps raw scores (index-aligned with `nodes`) into [0, 100] in place. */
  normalizeScore?(
    state: CycleState,
    pod: PodInfo,
    nodes: readonly NodeInfo[],
    scores: number[],
  ): Status | null;
}

export interface ReservePlugin extends Plugin {
  reserve(state: CycleState, pod: PodInfo, nodeName: string): Status | null;
  unreserve(state: CycleState, pod: PodInfo, nodeName: string): void;
}

export interface PermitPlugin extends Plugin {
  permit(state: CycleState, pod: PodInfo, nodeName: string): Status | null;
}

export interface PreEnqueuePlugin extends Plugin {
  /** null lets the pod into the active queue; otherwise it waits as gated. */
  preEnqueue(pod: Pod): Status | null;
}

/** A pod in the scheduling queue. */
export interface QueuedPodInfo {
  podInfo: PodInfo;
  /** When the pod was last added to the queue (ms on the queue's clock). */
  timestamp: number;
  /** Scheduling attempts so far. */
  attempts: number;
  initialAttemptTimestamp: number | undefined;
  /** Plugins that rejected the pod in its last attempt. */
  unschedulablePlugins: Set<string>;
  pendingPlugins: Set<string>;
  /** Blocked by a PreEnqueue plugin (scheduling gates). */
  gated: boolean;
}

export interface QueueSortPlugin extends Plugin {
  less(a: QueuedPodInfo, b: QueuedPodInfo): boolean;
}

export interface BindPlugin extends Plugin {
  /** Marker: the DefaultBinder binds through pods/binding; the caller performs the request. */
  readonly binds: true;
}

// ---- cluster events ----

export const ActionType = {
  Add: 1,
  Delete: 2,
  UpdateNodeAllocatable: 4,
  UpdateNodeLabel: 8,
  UpdateNodeTaint: 16,
  UpdateNodeCondition: 32,
  UpdateNodeAnnotation: 64,
  UpdatePodLabel: 128,
  UpdatePodScaleDown: 256,
  UpdatePodToleration: 512,
  UpdatePodSchedulingGatesEliminated: 1024,
  UpdatePodGeneratedResourceClaim: 2048,
  updatePodOther: 4096,
  All: 8191,
  Update: 8188,
} as const;

export type EventResource =
  | "Pod"
  | "AssignedPod"
  | "UnschedulablePod"
  | "Node"
  | "PersistentVolume"
  | "PersistentVolumeClaim"
  | "storage.k8s.io/CSINode"
  | "storage.k8s.io/StorageClass"
  | "*";

export interface ClusterEvent {
  resource: EventResource;
  actionType: number;
  label?: string;
}

export function eventMatches(registered: ClusterEvent, incoming: ClusterEvent): boolean {
  if (registered.resource === "*" && registered.actionType === ActionType.All) return true;
  const r = registered.resource;
  const resourceOK =
    r === "*" ||
    r === incoming.resource ||
    (r === "Pod" &&
      (incoming.resource === "AssignedPod" || incoming.resource === "UnschedulablePod"));
  return resourceOK && (registered.actionType & incoming.actionType) !== 0;
}

export const isWildCard = (e: ClusterEvent): boolean =>
  e.resource === "*" && e.actionType === ActionType.All;

export enum QueueingHint {
  QueueSkip = 0,
  Queue = 1,
}

/**
 * Whether an event may make a pod that this plugin rejected schedulable. `oldObj` is undefined for
 * adds, `newObj` for deletes.
 */
export type QueueingHintFn = (pod: Pod, oldObj: unknown, newObj: unknown) => QueueingHint;

export interface ClusterEventWithHint {
  event: ClusterEvent;
  hint?: QueueingHintFn;
}

export interface EnqueueExtensions extends Plugin {
  eventsToRegister(): ClusterEventWithHint[];
}

// ---- type guards ----

export const isPreFilter = (p: Plugin): p is PreFilterPlugin =>
  typeof (p as PreFilterPlugin).preFilter === "function";
export const isFilter = (p: Plugin): p is FilterPlugin =>
  typeof (p as FilterPlugin).filter === "function";
export const isPostFilter = (p: Plugin): p is PostFilterPlugin =>
  typeof (p as PostFilterPlugin).postFilter === "function";
export const isPreScore = (p: Plugin): p is PreScorePlugin =>
  typeof (p as PreScorePlugin).preScore === "function";
export const isScore = (p: Plugin): p is ScorePlugin =>
  typeof (p as ScorePlugin).score === "function";
export const isReserve = (p: Plugin): p is ReservePlugin =>
  typeof (p as ReservePlugin).reserve === "function";
export const isPermit = (p: Plugin): p is PermitPlugin =>
  typeof (p as PermitPlugin).permit === "function";
export const isPreEnqueue = (p: Plugin): p is PreEnqueuePlugin =>
  typeof (p as PreEnqueuePlugin).preEnqueue === "function";
export const isQueueSort = (p: Plugin): p is QueueSortPlugin =>
  typeof (p as QueueSortPlugin).less === "function";
export const isBind = (p: Plugin): p is BindPlugin => (p as BindPlugin).binds === true;
export const isEnqueueExtensions = (p: Plugin): p is EnqueueExtensions =>
  typeof (p as EnqueueExtensions).eventsToRegister === "function";
