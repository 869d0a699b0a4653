/**
 * The scheduling queue (upstream's PriorityQueue): activeQ ordered by the queue-sort plugin,
 * backoffQ ordered by the end of each pod's backoff (1s doubling to 10s per attempt), and the
 * unschedulable pods, which go back to activeQ or backoffQ when a cluster event the plugins that
 * rejected them registered for says it may help (queueing hints), or after 5 minutes.
 *
 * Events that arrive while a pod is being scheduled are remembered and checked when the pod comes
 * back rejected, so that no event is missed. Time comes from an injectable clock; nothing here
 * runs on its own: the owner calls flushBackoffQCompleted (every second) and
 * flushUnschedulablePodsLeftover (every 30 seconds).
 */
import type { Pod } from "kubernetes-types/core/v1.js";
import {
  ActionType,
  eventMatches,
  isWildCard,
  QueueingHint,
  type ClusterEvent,
  type ClusterEventWithHint,
  type PodNominator,
  type QueuedPodInfo,
} from "./interface.js";
import { PodInfo, podKey, type Status } from "./types.js";

export interface Clock {
  now(): number;
}

export const realClock: Clock = { now: () => Date.now() };

export const DEFAULT_POD_INITIAL_BACKOFF_MS = 1000;
export const DEFAULT_POD_MAX_BACKOFF_MS = 10_000;
export const DEFAULT_POD_MAX_IN_UNSCHEDULABLE_PODS_MS = 5 * 60_000;

export const UNSCHEDULABLE_TIMEOUT: ClusterEvent = {
  resource: "*",
  actionType: ActionType.All,
  label: "UnschedulableTimeout",
};
export const FORCE_ACTIVATE: ClusterEvent = {
  resource: "*",
  actionType: ActionType.All,
  label: "ForceActivate",
};

export type QueueName = "activeQ" | "backoffQ" | "unschedulablePods";

/** A binary heap with removal and update by key. */
class Heap<T> {
  private readonly items: T[] = [];
  private readonly index = new Map<string, number>();
  constructor(
    private readonly key: (x: T) => string,
    private readonly less: (a: T, b: T) => boolean,
  ) {}

  get size(): number {
    return this.items.length;
  }
  has(k: string): boolean {
    return this.index.has(k);
  }
  get(k: string): T | undefined {
    const i = this.index.get(k);
    return i === undefined ? undefined : this.items[i];
  }
  peek(): T | undefined {
    return this.items[0];
  }
  list(): T[] {
    return [...this.items];
  }

  addOrUpdate(x: T): void {
    const k = this.key(x);
    const i = this.index.get(k);
    if (i !== undefined) {
      this.items[i] = x;
      this.fix(i);
      return;
    }
    this.items.push(x);
    this.index.set(k, this.items.length - 1);
    this.up(this.items.length - 1);
  }

  delete(k: string): T | undefined {
    const i = this.index.get(k);
    if (i === undefined) return undefined;
    const x = this.items[i]!;
    const last = this.items.pop()!;
    this.index.delete(k);
    if (i < this.items.length) {
      this.items[i] = last;
      this.index.set(this.key(last), i);
      this.fix(i);
    }
    return x;
  }

  pop(): T | undefined {
    const top = this.items[0];
    if (top !== undefined) this.delete(this.key(top));
    return top;
  }

  private fix(i: number): void {
    if (!this.down(i)) this.up(i);
  }

  private swap(i: number, j: number): void {
    const a = this.items[i]!;
    const b = this.items[j]!;
    this.items[i] = b;
    this.items[j] = a;
    this.index.set(this.key(b), i);
    this.index.set(this.key(a), j);
  }

  private up(i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(this.items[i]!, this.items[p]!)) break;
      this.swap(i, p);
      i = p;
    }
  }

  private down(i0: number): boolean {
    let i = i0;
    const n = this.items.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      let j = l;
      if (l + 1 < n && this.less(this.items[l + 1]!, this.items[l]!)) j = l + 1;
      if (!this.less(this.items[j]!, this.items[i]!)) break;
      this.swap(i, j);
      i = j;
    }
    return i > i0;
  }
}

/** A profile's hooks into the queue. */
export interface QueueProfile {
  /** PreEnqueue plugins: a non-null Status keeps the pod out of activeQ (gated). */
  preEnqueue(pod: Pod): Status | null;
  /** The plugins' registered events, by plugin name. */
  eventsToRegister(): Map<string, ClusterEventWithHint[]>;
}

export interface SchedulingQueueOptions {
  /** The queue-sort plugin's order (one for all profiles). */
  less: (a: QueuedPodInfo, b: QueuedPodInfo) => boolean;
  /** Profiles by schedulerName. */
  profiles: Map<string, QueueProfile>;
  clock?: Clock;
  podInitialBackoffMs?: number;
  podMaxBackoffMs?: number;
  podMaxInUnschedulablePodsMs?: number;
}

interface RecordedEvent {
  seq: number;
  event: ClusterEvent;
  oldObj: unknown;
  newObj: unknown;
}

type Strategy = "skip" | "afterBackoff" | "immediately";

const EMPTY: readonly PodInfo[] = [];

export class SchedulingQueue implements PodNominator {
  private readonly clock: Clock;
  private readonly initialBackoff: number;
  private readonly maxBackoff: number;
  private readonly maxInUnschedulable: number;
  private readonly activeQ: Heap<QueuedPodInfo>;
  private readonly backoffQ: Heap<QueuedPodInfo>;
  private readonly unschedulable = new Map<string, QueuedPodInfo>();
  private readonly hints = new Map<string, Map<string, ClusterEventWithHint[]>>();
  private readonly profiles: Map<string, QueueProfile>;
  /** Pods popped and not yet done, with the event sequence number at pop time. */
  private readonly inFlight = new Map<string, number>();
  /** Events seen while pods are in flight; those before `eventsHead` no pod needs any more. */
  private events: RecordedEvent[] = [];
  private eventsHead = 0;
  private seq = 0;
  private cycle = 0;
  private waiters: (() => void)[] = [];
  private closed = false;
  // Nominated pods.
  private readonly nominatedByNode = new Map<string, PodInfo[]>();
  private readonly nominatedNode = new Map<string, string>();

  constructor(opts: SchedulingQueueOptions) {
    this.clock = opts.clock ?? realClock;
    this.initialBackoff = opts.podInitialBackoffMs ?? DEFAULT_POD_INITIAL_BACKOFF_MS;
    this.maxBackoff = opts.podMaxBackoffMs ?? DEFAULT_POD_MAX_BACKOFF_MS;
    this.maxInUnschedulable =
      opts.podMaxInUnschedulablePodsMs ?? DEFAULT_POD_MAX_IN_UNSCHEDULABLE_PODS_MS;
    this.profiles = opts.profiles;
    const key = (q: QueuedPodInfo) => q.podInfo.key;
    this.activeQ = new Heap(key, opts.less);
    this.backoffQ = new Heap(key, (a, b) => this.backoffTime(a) < this.backoffTime(b));
    for (const [name, p] of opts.profiles) this.hints.set(name, p.eventsToRegister());
  }

  // ---- adding and popping ----

  newQueuedPodInfo(pod: Pod): QueuedPodInfo {
    const now = this.clock.now();
    return {
      podInfo: new PodInfo(pod),
      timestamp: now,
      attempts: 0,
      initialAttemptTimestamp: now,
      unschedulablePlugins: new Set(),
      pendingPlugins: new Set(),
      gated: false,
    };
  }

  /** A new pending pod: into activeQ unless a PreEnqueue plugin gates it. */
  add(pod: Pod): void {
    const q = this.newQueuedPodInfo(pod);
    this.moveToActiveQ(q);
  }

  /** The pod at the head of activeQ, marked in flight; undefined when activeQ is empty. */
  pop(): QueuedPodInfo | undefined {
    const q = this.activeQ.pop();
    if (!q) return undefined;
    q.attempts++;
    this.cycle++;
    q.unschedulablePlugins.clear();
    q.pendingPlugins.clear();
    // Entries stay in pop order, so the first is the oldest (see done).
    this.inFlight.delete(q.podInfo.key);
    this.inFlight.set(q.podInfo.key, this.seq);
    return q;
  }

  /** Waits for a pod in activeQ; resolves undefined once the signal aborts or close() is called. */
  async popWait(signal?: AbortSignal): Promise<QueuedPodInfo | undefined> {
    for (;;) {
      if (this.closed || signal?.aborted) return undefined;
      const q = this.pop();
      if (q) return q;
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        signal?.addEventListener("abort", () => resolve(), { once: true });
      });
    }
  }

  close(): void {
    this.closed = true;
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** The number of scheduling cycles started (pops). */
  schedulingCycle(): number {
    return this.cycle;
  }

  /** The pod's scheduling attempt ended (bound, or requeued). */
  done(key: string): void {
    if (!this.inFlight.delete(key)) return;
    if (this.inFlight.size === 0) {
      this.events = [];
      this.eventsHead = 0;
      return;
    }
    const oldest = this.inFlight.values().next().value!;
    let i = this.eventsHead;
    while (i < this.events.length && this.events[i]!.seq <= oldest) i++;
    this.eventsHead = i;
    if (i >= 1024 && i * 2 >= this.events.length) {
      this.events = this.events.slice(i);
      this.eventsHead = 0;
    }
  }

  /**
   * A pod the scheduler could not place comes back: to activeQ or backoffQ when an event seen
   * during its attempt may have helped (or it failed with an error), otherwise to the
   * unschedulable pods.
   */
  addUnschedulableIfNotPresent(q: QueuedPodInfo): QueueName {
    const key = q.podInfo.key;
    const since = this.inFlight.get(key);
    try {
      if (this.unschedulable.has(key) || this.activeQ.has(key) || this.backoffQ.has(key)) {
        throw new Error(`Pod ${podRef(q.podInfo.pod)} is already present in the queue`);
      }
      q.timestamp = this.clock.now();
      let strategy: Strategy;
      if (q.unschedulablePlugins.size === 0 && q.pendingPlugins.size === 0)
        strategy = "afterBackoff";
      else {
        strategy = "skip";
        for (let i = this.eventsHead; i < this.events.length; i++) {
          const e = this.events[i]!;
          if (since !== undefined && e.seq <= since) continue;
          const s = this.isPodWorthRequeuing(q, e.event, e.oldObj, e.newObj);
          if (s === "immediately") {
            strategy = s;
            break;
          }
          if (s === "afterBackoff") strategy = s;
        }
      }
      this.addNominatedPod(q.podInfo);
      return this.requeue(q, strategy);
    } finally {
      this.done(key);
    }
  }

  private requeue(q: QueuedPodInfo, strategy: Strategy): QueueName {
    if (strategy === "skip") {
      this.unschedulable.set(q.podInfo.key, q);
      return "unschedulablePods";
    }
    if (strategy === "afterBackoff" && this.isPodBackingOff(q)) {
      this.backoffQ.addOrUpdate(q);
      return "backoffQ";
    }
    return this.moveToActiveQ(q) ? "activeQ" : "unschedulablePods";
  }

  private moveToActiveQ(q: QueuedPodInfo): boolean {
    const key = q.podInfo.key;
    const profile = this.profiles.get(q.podInfo.pod.spec?.schedulerName ?? "default-scheduler");
    const s = profile?.preEnqueue(q.podInfo.pod) ?? null;
    if (s !== null && !s.isSuccess()) {
      q.gated = true;
      q.unschedulablePlugins = new Set(s.plugin ? [s.plugin] : []);
      this.backoffQ.delete(key);
      this.unschedulable.set(key, q);
      return false;
    }
    q.gated = false;
    if (q.initialAttemptTimestamp === undefined) q.initialAttemptTimestamp = this.clock.now();
    this.unschedulable.delete(key);
    this.backoffQ.delete(key);
    this.activeQ.addOrUpdate(q);
    this.wake();
    return true;
  }

  // ---- backoff ----

  /** 0 before the first attempt, then 1s, 2s, 4s, ... up to the maximum. */
  backoffDuration(q: QueuedPodInfo): number {
    if (q.attempts === 0) return 0;
    let d = this.initialBackoff;
    for (let i = 1; i < q.attempts; i++) {
      if (d > this.maxBackoff - d) return this.maxBackoff;
      d += d;
    }
    return d;
  }

  backoffTime(q: QueuedPodInfo): number {
    return q.timestamp + this.backoffDuration(q);
  }

  isPodBackingOff(q: QueuedPodInfo): boolean {
    if (q.gated) return false;
    return this.backoffTime(q) > this.clock.now();
  }

  /** Moves pods whose backoff ended to activeQ. */
  flushBackoffQCompleted(): void {
    for (;;) {
      const q = this.backoffQ.peek();
      if (!q || this.isPodBackingOff(q)) return;
      this.backoffQ.pop();
      this.moveToActiveQ(q);
    }
  }

  /** Retries pods that stayed unschedulable longer than the limit (5 minutes by default). */
  flushUnschedulablePodsLeftover(): void {
    const now = this.clock.now();
    const due: QueuedPodInfo[] = [];
    for (const q of this.unschedulable.values()) {
      if (now - q.timestamp > this.maxInUnschedulable) due.push(q);
    }
    this.movePods(due, UNSCHEDULABLE_TIMEOUT, undefined, undefined);
  }

  // ---- events ----

  private isPodWorthRequeuing(
    q: QueuedPodInfo,
    event: ClusterEvent,
    oldObj: unknown,
    newObj: unknown,
  ): Strategy {
    const rejectors = new Set([...q.unschedulablePlugins, ...q.pendingPlugins]);
    if (rejectors.size === 0 || isWildCard(event)) return "afterBackoff";
    const hintMap = this.hints.get(q.podInfo.pod.spec?.schedulerName ?? "default-scheduler");
    if (!hintMap) return "afterBackoff";
    let strategy: Strategy = "skip";
    for (const plugin of rejectors) {
      for (const h of hintMap.get(plugin) ?? []) {
        if (!eventMatches(h.event, event)) continue;
        let hint = QueueingHint.Queue;
        if (h.hint) {
          try {
            hint = h.hint(q.podInfo.pod, oldObj, newObj);
          } catch {
            hint = QueueingHint.Queue;
          }
        }
        if (hint === QueueingHint.QueueSkip) continue;
        if (q.pendingPlugins.has(plugin)) return "immediately";
        strategy = "afterBackoff";
      }
    }
    return strategy;
  }

  private movePods(
    pods: QueuedPodInfo[],
    event: ClusterEvent,
    oldObj: unknown,
    newObj: unknown,
  ): void {
    for (const q of pods) {
      const s = this.isPodWorthRequeuing(q, event, oldObj, newObj);
      if (s === "skip") continue;
      this.unschedulable.delete(q.podInfo.key);
      this.requeue(q, s);
    }
  }

  /**
   * A cluster event: unschedulable pods it may help move to activeQ/backoffQ; it is also
   * remembered for the pods being scheduled right now.
   */
  moveAllToActiveOrBackoffQueue(event: ClusterEvent, oldObj: unknown, newObj: unknown): void {
    if (this.inFlight.size > 0) this.events.push({ seq: ++this.seq, event, oldObj, newObj });
    this.movePods([...this.unschedulable.values()], event, oldObj, newObj);
  }

  /** Moves these pods to activeQ whatever the hints say (upstream's Activate). */
  activate(pods: Pod[]): void {
    for (const pod of pods) {
      const key = podKey(pod);
      const q = this.unschedulable.get(key) ?? this.backoffQ.get(key);
      if (!q) continue;
      this.moveToActiveQ(q);
    }
  }

  assignedPodAdded(pod: Pod): void {
    this.moveAllToActiveOrBackoffQueue(
      { resource: "AssignedPod", actionType: ActionType.Add },
      undefined,
      pod,
    );
  }

  assignedPodUpdated(oldPod: Pod, newPod: Pod): void {
    const a = podUpdateActions(oldPod, newPod);
    this.moveAllToActiveOrBackoffQueue({ resource: "AssignedPod", actionType: a }, oldPod, newPod);
  }

  assignedPodDeleted(pod: Pod): void {
    this.moveAllToActiveOrBackoffQueue(
      { resource: "AssignedPod", actionType: ActionType.Delete },
      pod,
      undefined,
    );
  }

  nodeAdded(node: unknown): void {
    this.moveAllToActiveOrBackoffQueue(
      { resource: "Node", actionType: ActionType.Add },
      undefined,
      node,
    );
  }

  nodeUpdated(
    oldNode: import("kubernetes-types/core/v1.js").Node,
    newNode: import("kubernetes-types/core/v1.js").Node,
  ): void {
    const a = nodeUpdateActions(oldNode, newNode);
    if (a !== 0)
      this.moveAllToActiveOrBackoffQueue({ resource: "Node", actionType: a }, oldNode, newNode);
  }

  nodeDeleted(node: unknown): void {
    this.moveAllToActiveOrBackoffQueue(
      { resource: "Node", actionType: ActionType.Delete },
      node,
      undefined,
    );
  }

  // ---- pending pods changing ----

  /** A pending pod changed in the API. */
  update(oldPod: Pod | undefined, newPod: Pod): void {
    const key = podKey(newPod);
    if (this.inFlight.has(key)) {
      if (oldPod) {
        this.events.push({
          seq: ++this.seq,
          event: { resource: "UnschedulablePod", actionType: podUpdateActions(oldPod, newPod) },
          oldObj: oldPod,
          newObj: newPod,
        });
      }
      return;
    }
    const inActive = this.activeQ.get(key);
    if (inActive) {
      inActive.podInfo = new PodInfo(newPod);
      this.activeQ.addOrUpdate(inActive);
      this.updateNominatedPod(newPod, inActive.podInfo);
      return;
    }
    const inBackoff = this.backoffQ.get(key);
    if (inBackoff) {
      inBackoff.podInfo = new PodInfo(newPod);
      this.backoffQ.addOrUpdate(inBackoff);
      this.updateNominatedPod(newPod, inBackoff.podInfo);
      return;
    }
    const q = this.unschedulable.get(key);
    if (q) {
      q.podInfo = new PodInfo(newPod);
      this.updateNominatedPod(newPod, q.podInfo);
      const actions = oldPod ? podUpdateActions(oldPod, newPod) : ActionType.updatePodOther;
      for (const bit of splitActions(actions)) {
        const s = this.isPodWorthRequeuing(
          q,
          { resource: "UnschedulablePod", actionType: bit },
          oldPod,
          newPod,
        );
        if (s === "skip") continue;
        this.unschedulable.delete(key);
        const where = this.requeue(q, s);
        if (where !== "unschedulablePods") break;
      }
      return;
    }
    this.moveToActiveQ(this.newQueuedPodInfo(newPod));
  }

  /** A pending pod was deleted (or got bound by someone else). */
  delete(pod: Pod): void {
    const key = podKey(pod);
    this.deleteNominatedPodIfExists(pod);
    this.activeQ.delete(key);
    this.backoffQ.delete(key);
    this.unschedulable.delete(key);
  }

  /** The pods waiting, per sub-queue (for tests and debugging). */
  pendingPods(): { activeQ: Pod[]; backoffQ: Pod[]; unschedulablePods: Pod[] } {
    return {
      activeQ: this.activeQ.list().map((q) => q.podInfo.pod),
      backoffQ: this.backoffQ.list().map((q) => q.podInfo.pod),
      unschedulablePods: [...this.unschedulable.values()].map((q) => q.podInfo.pod),
    };
  }

  /** Where the pod with this key is waiting, if anywhere. */
  whereIs(key: string): QueueName | undefined {
    if (this.activeQ.has(key)) return "activeQ";
    if (this.backoffQ.has(key)) return "backoffQ";
    if (this.unschedulable.has(key)) return "unschedulablePods";
    return undefined;
  }

  // ---- nominator ----

  /** Records the pod as nominated to nodeName (or to its status.nominatedNodeName). */
  addNominatedPod(pi: PodInfo, nodeName?: string): void {
    this.deleteNominated(pi.key);
    const node = nodeName ?? pi.pod.status?.nominatedNodeName ?? "";
    if (node === "" || pi.pod.spec?.nodeName) return;
    this.nominatedNode.set(pi.key, node);
    const list = this.nominatedByNode.get(node);
    if (list) list.push(pi);
    else this.nominatedByNode.set(node, [pi]);
  }

  deleteNominatedPodIfExists(pod: Pod): void {
    this.deleteNominated(podKey(pod));
  }

  private updateNominatedPod(newPod: Pod, pi: PodInfo): void {
    const key = podKey(newPod);
    const current = this.nominatedNode.get(key);
    this.deleteNominated(key);
    const node = newPod.status?.nominatedNodeName || current;
    if (node) this.addNominatedPod(pi, node);
  }

  private deleteNominated(key: string): void {
    const node = this.nominatedNode.get(key);
    if (node === undefined) return;
    this.nominatedNode.delete(key);
    const list = this.nominatedByNode.get(node);
    if (!list) return;
    const i = list.findIndex((p) => p.key === key);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.nominatedByNode.delete(node);
  }

  hasNominatedPods(): boolean {
    return this.nominatedByNode.size > 0;
  }

  nominatedPodsForNode(nodeName: string): readonly PodInfo[] {
    if (this.nominatedByNode.size === 0) return EMPTY;
    return this.nominatedByNode.get(nodeName) ?? EMPTY;
  }
}

function podRef(pod: Pod): string {
  return `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`;
}

function splitActions(a: number): number[] {
  const out: number[] = [];
  for (let bit = 1; bit <= ActionType.updatePodOther; bit <<= 1) if (a & bit) out.push(bit);
  return out;
}

const json = (v: unknown): string => JSON.stringify(v ?? null);

/** Which scheduling-relevant parts of a pod changed (upstream's PodSchedulingPropertiesChange). */
export function podUpdateActions(oldPod: Pod, newPod: Pod): number {
  let a = 0;
  if (json(oldPod.metadata?.labels) !== json(newPod.metadata?.labels))
    a |= ActionType.UpdatePodLabel;
  if (json(oldPod.spec?.tolerations) !== json(newPod.spec?.tolerations))
    a |= ActionType.UpdatePodToleration;
  if (
    (oldPod.spec?.schedulingGates ?? []).length > 0 &&
    (newPod.spec?.schedulingGates ?? []).length === 0
  ) {
    a |= ActionType.UpdatePodSchedulingGatesEliminated;
  }
  const o = new PodInfo(oldPod).res.requests;
  const n = new PodInfo(newPod).res.requests;
  if (n.milliCPU < o.milliCPU || n.memory < o.memory || n.ephemeralStorage < o.ephemeralStorage) {
    a |= ActionType.UpdatePodScaleDown;
  }
  return a === 0 ? ActionType.updatePodOther : a;
}

/** Which scheduling-relevant parts of a node changed (upstream's nodeSchedulingPropertiesChange). */
export function nodeUpdateActions(
  oldNode: import("kubernetes-types/core/v1.js").Node,
  newNode: import("kubernetes-types/core/v1.js").Node,
): number {
  let a = 0;
  if ((oldNode.spec?.unschedulable ?? false) !== (newNode.spec?.unschedulable ?? false))
    a |= ActionType.UpdateNodeTaint;
  if (json(oldNode.status?.allocatable) !== json(newNode.status?.allocatable))
    a |= ActionType.UpdateNodeAllocatable;
  if (json(oldNode.metadata?.labels) !== json(newNode.metadata?.labels))
    a |= ActionType.UpdateNodeLabel;
  if (json(oldNode.spec?.taints) !== json(newNode.spec?.taints)) a |= ActionType.UpdateNodeTaint;
  const cond = (n: typeof oldNode) =>
    json((n.status?.conditions ?? []).map((c) => [c.type, c.status]));
  if (cond(oldNode) !== cond(newNode)) a |= ActionType.UpdateNodeCondition;
  if (json(oldNode.metadata?.annotations) !== json(newNode.metadata?.annotations))
    a |= ActionType.UpdateNodeAnnotation;
  return a;
}
