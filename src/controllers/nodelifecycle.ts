/**
 * The node lifecycle controller (upstream's node-lifecycle-controller, events as "node-controller").
 *
 * Node health: every node monitor period (5 s) each node's health signals are checked: its Lease
 * in kube-node-lease (renewTime) and its Ready condition (lastHeartbeatTime). When neither has
 * moved for the grace period (--node-monitor-grace-period, 40 s; 60 s for a node that never
 * posted a Ready condition), its Ready, MemoryPressure, DiskPressure and PIDPressure conditions
 * become Unknown ("NodeStatusUnknown", "Kubelet stopped posting node status.") and the pods bound
 * to it get Ready=False, with the events NodeNotReady on the node and on each pod.
 *
 * Taints:
 * - NoSchedule, from the node's conditions (TaintNodesByCondition): not-ready for Ready=False,
 *   unreachable for Ready=Unknown, memory/disk/pid-pressure and network-unavailable, and
 *   unschedulable for spec.unschedulable; kept in step on every node change, so the not-ready
 *   taint the API server puts on a new node goes once the node is Ready.
 * - NoExecute: node.kubernetes.io/not-ready for Ready=False and node.kubernetes.io/unreachable
 *   for Ready=Unknown, one replacing the other as the condition changes, both removed when the
 *   node is Ready again. Taints are added through a rate-limited queue per zone (0.1 node/s,
 *   slower or stopped when a zone is mostly or wholly unhealthy, and none at all when every zone
 *   is wholly unhealthy, as upstream); the taint eviction controller deletes the pods.
 *
 * The decisions are pure functions (`evaluateNodeHealth`, `noScheduleTaintDiff`,
 * `computeZoneState`, `zoneKey`, `RateLimitedTimedQueue`); `NodeLifecycleController` wires them
 * to the caches and the API.
 */

import type { Lease } from "kubernetes-types/coordination/v1.js";
import type { Node, NodeCondition, NodeStatus, Pod, Taint } from "kubernetes-types/core/v1.js";
import { isStatusError } from "../api/status.js";
import { controller } from "../client/controller.js";
import { sleep, type Clock } from "../client/clock.js";
import type { EventRecorder } from "../client/events.js";
import type { Informer } from "../client/informer.js";
import { TokenBucket } from "../client/ratelimit.js";
import type { Client } from "../client/resources.js";
import { objectKey, splitKey } from "../client/resources.js";
import { WorkQueue } from "../client/workqueue.js";
import type { ControllerContext, ControllerDescriptor, Logger } from "./context.js";
import { errorMessage } from "./context.js";
import { POD_NODE_NAME_INDEX, podNodeNameIndexFunc, withPodCondition } from "./tainteviction.js";
import { nowTime, semanticEqual } from "./util.js";

export const NODE_LEASE_NAMESPACE = "kube-node-lease";
export const TAINT_NOT_READY = "node.kubernetes.io/not-ready";
export const TAINT_UNREACHABLE = "node.kubernetes.io/unreachable";
export const TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable";

/** Upstream's defaults (kube-controller-manager 1.32). */
export const NODE_MONITOR_PERIOD = 5_000;
export const NODE_MONITOR_GRACE_PERIOD = 40_000;
export const NODE_STARTUP_GRACE_PERIOD = 60_000;
export const NODE_EVICTION_PERIOD = 100;
export const NODE_EVICTION_RATE = 0.1;
export const SECONDARY_NODE_EVICTION_RATE = 0.01;
export const LARGE_CLUSTER_SIZE_THRESHOLD = 50;
export const UNHEALTHY_ZONE_THRESHOLD = 0.55;
const NODE_HEALTH_UPDATE_RETRY = 5;
const RETRY_SLEEP = 20;
const NODE_UPDATE_WORKERS = 8;
const POD_UPDATE_WORKERS = 4;
const LABEL_NODE_DISRUPTION_EXCLUSION = "node.kubernetes.io/exclude-disruption";

/** Which taint key a condition's status asks for (nodeConditionToTaintKeyStatusMap). */
const CONDITION_TAINTS: Record<string, Record<string, string>> = {
  Ready: { False: TAINT_NOT_READY, Unknown: TAINT_UNREACHABLE },
  MemoryPressure: { True: "node.kubernetes.io/memory-pressure" },
  DiskPressure: { True: "node.kubernetes.io/disk-pressure" },
  NetworkUnavailable: { True: "node.kubernetes.io/network-unavailable" },
  PIDPressure: { True: "node.kubernetes.io/pid-pressure" },
};
const CONDITION_TAINT_KEYS = new Set(
  Object.values(CONDITION_TAINTS).flatMap((m) => Object.values(m)),
);

export const UNREACHABLE_TAINT: Taint = { key: TAINT_UNREACHABLE, effect: "NoExecute" };
export const NOT_READY_TAINT: Taint = { key: TAINT_NOT_READY, effect: "NoExecute" };

/** Key and effect alike (Taint.MatchTaint). */
export function matchTaint(a: Taint, b: Taint): boolean {
  return a.key === b.key && a.effect === b.effect;
}

export function taintExists(taints: Taint[] | undefined, t: Taint): boolean {
  return (taints ?? []).some((x) => matchTaint(x, t));
}

export function nodeCondition(
  status: NodeStatus | undefined,
  type: string,
): NodeCondition | undefined {
  return status?.conditions?.find((c) => c.type === type);
}

// ---- node health ----

/** What the controller remembers of a node between passes (nodeHealthData). */
export interface NodeHealth {
  /** When a health signal was last seen to move (our clock, not the node's). */
  probeTimestamp: number;
  readyTransitionTimestamp: number;
  status: NodeStatus | undefined;
  lease?: Lease;
}

export interface HealthInput {
  node: Node;
  health: NodeHealth | undefined;
  lease: Lease | undefined;
  now: number;
  gracePeriod: number;
  startupGracePeriod: number;
}

export interface HealthResult {
  /** The health to remember if `update` is not written. */
  health: NodeHealth;
  /** The Ready condition as it was found (or a stand-in when the node has none). */
  observedReady: NodeCondition;
  /** The Ready condition after this pass (undefined when the node has none). */
  currentReady: NodeCondition | undefined;
  /** The node with conditions made Unknown, to write with UpdateStatus. */
  update?: Node;
  /** The health to remember once `update` is written. */
  healthAfterUpdate?: NodeHealth;
}

function micro(t: string | undefined): number {
  if (!t) return -Infinity;
  const ms = Date.parse(t);
  const frac = /\.(\d{4,6})/.exec(t)?.[1] ?? "";
  return ms * 1000 + (frac.length > 3 ? Number(frac.slice(3).padEnd(3, "0")) : 0);
}

/**
 * One node's health check (tryUpdateNodeHealth): which signals moved since the last pass, and,
 * past the grace period, the conditions to turn Unknown.
 */
export function evaluateNodeHealth(input: HealthInput): HealthResult {
  const { now, lease } = input;
  const status: NodeStatus = structuredClone(input.node.status ?? {});
  const node: Node = { ...input.node, status };
  const created = node.metadata?.creationTimestamp
    ? Date.parse(node.metadata.creationTimestamp)
    : now;
  let health = input.health ? { ...input.health } : undefined;
  let gracePeriod: number;
  let observedReady: NodeCondition;
  let currentReady = nodeCondition(status, "Ready");
  if (!currentReady) {
    // Never posted: judge from the creation time, with the longer startup grace.
    const t = node.metadata?.creationTimestamp ?? nowTime(now);
    observedReady = {
      type: "Ready",
      status: "Unknown",
      lastHeartbeatTime: t,
      lastTransitionTime: t,
    };
    gracePeriod = input.startupGracePeriod;
    if (health) health.status = status;
    else health = { status, probeTimestamp: created, readyTransitionTimestamp: created };
  } else {
    observedReady = { ...currentReady };
    gracePeriod = input.gracePeriod;
  }
  const saved = health ? nodeCondition(health.status, "Ready") : undefined;
  const savedLease = health?.lease;
  if (!health) {
    health = { status, probeTimestamp: now, readyTransitionTimestamp: now };
  } else if ((!saved && currentReady) || (saved && !currentReady)) {
    health = { status, probeTimestamp: now, readyTransitionTimestamp: now };
  } else if (saved && currentReady && saved.lastHeartbeatTime !== currentReady.lastHeartbeatTime) {
    const transition =
      saved.lastTransitionTime !== currentReady.lastTransitionTime
        ? now
        : health.readyTransitionTimestamp;
    health = { status, probeTimestamp: now, readyTransitionTimestamp: transition };
  }
  // A renewed Lease counts as a heartbeat, even from a node that never posted status.
  if (lease && (!savedLease || micro(savedLease.spec?.renewTime) < micro(lease.spec?.renewTime))) {
    health = { ...health, lease, probeTimestamp: now };
  }
  const result: HealthResult = { health, observedReady, currentReady };
  if (now <= health.probeTimestamp + gracePeriod) return result;

  const conditions = (status.conditions ??= []);
  for (const type of ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"]) {
    const c = conditions.find((x) => x.type === type);
    if (!c) {
      conditions.push({
        type,
        status: "Unknown",
        reason: "NodeStatusNeverUpdated",
        message: "Kubelet never posted node status.",
        lastHeartbeatTime: node.metadata?.creationTimestamp ?? nowTime(now),
        lastTransitionTime: nowTime(now),
      });
    } else if (c.status !== "Unknown") {
      c.status = "Unknown";
      c.reason = "NodeStatusUnknown";
      c.message = "Kubelet stopped posting node status.";
      c.lastTransitionTime = nowTime(now);
    }
  }
  currentReady = nodeCondition(status, "Ready");
  result.currentReady = currentReady;
  if (!semanticEqual(currentReady, observedReady)) {
    result.update = node;
    result.healthAfterUpdate = {
      status,
      probeTimestamp: health.probeTimestamp,
      readyTransitionTimestamp: now,
      ...(lease ? { lease } : {}),
    };
  }
  return result;
}

// ---- taints ----

/**
 * The NoSchedule taints the node's conditions and spec.unschedulable ask for, against the ones
 * of those kinds it has (doNoScheduleTaintingPass): what to add and what to remove.
 */
export function noScheduleTaintDiff(node: Node): { add: Taint[]; remove: Taint[] } {
  const want: Taint[] = [];
  for (const c of node.status?.conditions ?? []) {
    const key = CONDITION_TAINTS[c.type]?.[c.status];
    if (key) want.push({ key, effect: "NoSchedule" });
  }
  if (node.spec?.unschedulable) want.push({ key: TAINT_UNSCHEDULABLE, effect: "NoSchedule" });
  const have = (node.spec?.taints ?? []).filter(
    (t) =>
      t.effect === "NoSchedule" &&
      (t.key === TAINT_UNSCHEDULABLE || CONDITION_TAINT_KEYS.has(t.key)),
  );
  return {
    add: want.filter((w) => !have.some((h) => matchTaint(w, h))),
    remove: have.filter((h) => !want.some((w) => matchTaint(w, h))),
  };
}

/** `taints` with each of `add` put in (replacing one of the same key and effect). */
export function addOrUpdateTaints(taints: Taint[] | undefined, add: Taint[]): Taint[] | undefined {
  let out = [...(taints ?? [])];
  let changed = false;
  for (const t of add) {
    const i = out.findIndex((x) => matchTaint(x, t));
    if (i < 0) {
      out = [...out, t];
      changed = true;
    } else if (!semanticEqual(out[i], t)) {
      out[i] = t;
      changed = true;
    }
  }
  return changed ? out : undefined;
}

/** `taints` without any of `remove`; undefined when none was there. */
export function removeTaints(taints: Taint[] | undefined, remove: Taint[]): Taint[] | undefined {
  const out = (taints ?? []).filter((t) => !remove.some((r) => matchTaint(t, r)));
  return out.length === (taints ?? []).length ? undefined : out;
}

/** The beta os/arch labels a node should carry from the stable ones (reconcileNodeLabels). */
export function labelsToReconcile(node: Node): Record<string, string> {
  const labels = node.metadata?.labels;
  const out: Record<string, string> = {};
  if (!labels) return out;
  for (const [primary, secondary] of [
    ["kubernetes.io/os", "beta.kubernetes.io/os"],
    ["kubernetes.io/arch", "beta.kubernetes.io/arch"],
  ] as const) {
    const value = labels[primary];
    if (value === undefined) continue;
    if (labels[secondary] !== value) out[secondary] = value;
  }
  return out;
}

// ---- zones ----

export type ZoneState = "Initial" | "Normal" | "FullDisruption" | "PartialDisruption";

/** The zone a node is in, from its region and zone labels ("" when it names neither). */
export function zoneKey(node: Node): string {
  const l = node.metadata?.labels ?? {};
  const zone =
    l["failure-domain.beta.kubernetes.io/zone"] ?? l["topology.kubernetes.io/zone"] ?? "";
  const region =
    l["failure-domain.beta.kubernetes.io/region"] ?? l["topology.kubernetes.io/region"] ?? "";
  if (!region && !zone) return "";
  return `${region}:\x00:${zone}`;
}

/**
 * A zone with no Ready node is fully disrupted; with more than two not Ready making at least
 * `threshold` of it, partially; else normal. Answers the count of not Ready nodes too.
 */
export function computeZoneState(
  readyConditions: (NodeCondition | undefined)[],
  threshold = UNHEALTHY_ZONE_THRESHOLD,
): { notReady: number; state: ZoneState } {
  let ready = 0;
  let notReady = 0;
  for (const c of readyConditions) {
    if (c?.status === "True") ready++;
    else notReady++;
  }
  if (ready === 0 && notReady > 0) return { notReady, state: "FullDisruption" };
  if (notReady > 2 && notReady / (notReady + ready) >= threshold)
    return { notReady, state: "PartialDisruption" };
  return { notReady, state: "Normal" };
}

export interface TimedValue {
  value: string;
  uid: string;
  addedAt: number;
  processAt: number;
}

/**
 * Node names waiting for a NoExecute taint, taken in order of `processAt` through a token bucket
 * (upstream's RateLimitedTimedQueue with burst 1). A name stays known after it was processed, so
 * it is not queued again until `remove`.
 */
export class RateLimitedTimedQueue {
  private queue: TimedValue[] = [];
  private readonly known = new Set<string>();
  private limiter: { qps: number; tryAccept(): boolean };

  constructor(
    qps: number,
    private readonly clock: Clock,
  ) {
    this.limiter = this.newLimiter(qps);
  }

  private newLimiter(qps: number): { qps: number; tryAccept(): boolean } {
    if (qps <= 0) return { qps, tryAccept: () => false };
    const bucket = new TokenBucket(qps, 1, this.clock);
    return { qps, tryAccept: () => bucket.tryAccept() };
  }

  get qps(): number {
    return this.limiter.qps;
  }

  /** Queues `value` unless it is known; answers whether it was queued. */
  add(value: string, uid: string): boolean {
    if (this.known.has(value)) return false;
    const now = this.clock.now();
    this.known.add(value);
    this.queue.push({ value, uid, addedAt: now, processAt: now });
    return true;
  }

  /** Forgets `value` (queued or processed); answers whether it was known. */
  remove(value: string): boolean {
    if (!this.known.delete(value)) return false;
    this.queue = this.queue.filter((v) => v.value !== value);
    return true;
  }

  has(value: string): boolean {
    return this.known.has(value);
  }

  private head(): TimedValue | undefined {
    let best: TimedValue | undefined;
    for (const v of this.queue) if (!best || v.processAt < best.processAt) best = v;
    return best;
  }

  /**
   * Processes due values while the limiter allows: `fn` answers done, or not done and a wait
   * before the value is tried again.
   */
  async try(fn: (v: TimedValue) => Promise<[boolean, number]>): Promise<void> {
    for (let v = this.head(); v; v = this.head()) {
      if (!this.limiter.tryAccept()) return;
      const now = this.clock.now();
      if (now < v.processAt) return;
      const [done, wait] = await fn(v);
      if (!this.queue.includes(v)) continue;
      if (done) this.queue = this.queue.filter((x) => x !== v);
      else v.processAt = now + wait + 1;
    }
  }

  /** Changes the rate (0 stops); a limiter that was empty leaves the new one empty too. */
  swapLimiter(qps: number): void {
    if (this.limiter.qps === qps) return;
    const next = this.newLimiter(qps);
    if (qps > 0 && !this.limiter.tryAccept()) next.tryAccept();
    this.limiter = next;
  }
}

// ---- pods ----

/** The pod's Ready condition turned False (MarkPodsNotReady); undefined when nothing changes. */
export function podNotReadyConditions(pod: Pod, now: number) {
  const ready = pod.status?.conditions?.find((c) => c.type === "Ready");
  if (!ready) return undefined;
  return withPodCondition(pod, { ...ready, status: "False", lastTransitionTime: nowTime(now) });
}

// ---- the controller ----

export interface NodeLifecycleOptions {
  client: Client;
  nodes: Pick<Informer<Node>, "store">;
  pods: Pick<Informer<Pod>, "store">;
  leases: Pick<Informer<Lease>, "store">;
  recorder: Pick<EventRecorder, "event">;
  clock: Clock;
  log: Logger;
  nodeMonitorPeriod: number;
  nodeMonitorGracePeriod: number;
  nodeStartupGracePeriod: number;
}

const isConflict = (err: unknown) => isStatusError(err) && err.code === 409;

export class NodeLifecycleController {
  private readonly known = new Map<string, Node>();
  readonly health = new Map<string, NodeHealth>();
  private readonly zoneStates = new Map<string, ZoneState>();
  private readonly zoneTainters = new Map<string, RateLimitedTimedQueue>();
  private readonly nodesToRetry = new Set<string>();
  readonly podQueue: WorkQueue<string>;

  constructor(private readonly o: NodeLifecycleOptions) {
    this.podQueue = new WorkQueue<string>({ clock: o.clock });
  }

  private nodesClient() {
    return this.o.client.resource("v1/Node");
  }

  private nodeRef(node: Node) {
    return {
      apiVersion: "v1",
      kind: "Node",
      name: node.metadata?.name ?? "",
      ...(node.metadata?.uid ? { uid: node.metadata.uid } : {}),
    };
  }

  private nodeEvent(node: Node, reason: string, what: string): void {
    const name = node.metadata?.name ?? "";
    this.o.recorder.event(this.nodeRef(node), "Normal", reason, `Node ${name} event: ${what}`);
  }

  private statusChangeEvent(node: Node, status: string): void {
    const name = node.metadata?.name ?? "";
    this.o.recorder.event(
      this.nodeRef(node),
      "Normal",
      status,
      `Node ${name} status is now: ${status}`,
    );
  }

  // -- taint writes (controller.AddOrUpdateTaintOnNode / RemoveTaintOffNode) --

  /** Writes `taints` of a node, guarded by its resourceVersion. */
  private async patchTaints(node: Node, taints: Taint[]): Promise<void> {
    await this.nodesClient().patch(node.metadata?.name ?? "", "merge", {
      metadata: { resourceVersion: node.metadata?.resourceVersion },
      spec: { taints: taints.length ? taints : null },
    });
  }

  /** Edits a node's taints with `edit`, retrying conflicts (from the cache first, then a GET). */
  private async editTaints(
    name: string,
    edit: (taints: Taint[] | undefined) => Taint[] | undefined,
  ): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const node =
        attempt === 0
          ? (this.o.nodes.store.get(name) ?? (await this.nodesClient().get(name)))
          : await this.nodesClient().get(name);
      const next = edit(node.spec?.taints);
      if (!next) return;
      try {
        await this.patchTaints(node, next);
        return;
      } catch (err) {
        if (!isConflict(err) || attempt >= 4) throw err;
        await sleep(this.o.clock, 100 * (1 + Math.random()));
      }
    }
  }

  /** Adds `add` then removes `remove` (SwapNodeControllerTaint); answers success. */
  async swapTaints(node: Node, add: Taint[], remove: Taint[]): Promise<boolean> {
    const name = node.metadata?.name ?? "";
    const t = nowTime(this.o.clock.now());
    const stamped = add.map((x) => ({ ...x, timeAdded: t }));
    try {
      if (stamped.length) await this.editTaints(name, (ts) => addOrUpdateTaints(ts, stamped));
    } catch (err) {
      this.o.log.error(
        `unable to taint ${JSON.stringify(add)} unresponsive Node "${name}": ${errorMessage(err)}`,
      );
      return false;
    }
    try {
      await this.removeTaints(node, remove);
    } catch (err) {
      this.o.log.error(
        `unable to remove ${JSON.stringify(remove)} unneeded taint from unresponsive Node "${name}": ${errorMessage(err)}`,
      );
      return false;
    }
    return true;
  }

  private async removeTaints(node: Node, remove: Taint[]): Promise<void> {
    if (!remove.length || !remove.some((r) => taintExists(node.spec?.taints, r))) return;
    await this.editTaints(node.metadata?.name ?? "", (ts) => removeTaints(ts, remove));
  }

  // -- the NoSchedule pass and labels, on every node change --

  async syncNode(name: string): Promise<void> {
    const node = this.o.nodes.store.get(name);
    if (!node) return;
    const { add, remove } = noScheduleTaintDiff(node);
    if ((add.length || remove.length) && !(await this.swapTaints(node, add, remove)))
      throw new Error(`failed to swap taints of node ${name}`);
    const labels = labelsToReconcile(node);
    if (Object.keys(labels).length)
      await this.nodesClient().patch(name, "merge", { metadata: { labels } });
  }

  // -- zones and the NoExecute taint queue --

  private tainter(node: Node): RateLimitedTimedQueue {
    const zone = zoneKey(node);
    let q = this.zoneTainters.get(zone);
    if (!q) {
      q = new RateLimitedTimedQueue(NODE_EVICTION_RATE, this.o.clock);
      this.zoneTainters.set(zone, q);
    }
    return q;
  }

  private addEvictorForNewZone(node: Node): void {
    const zone = zoneKey(node);
    if (this.zoneStates.has(zone)) return;
    this.zoneStates.set(zone, "Initial");
    this.tainter(node);
    this.o.log.info(`Initializing eviction metric for zone "${zone}"`);
  }

  private markNodeForTainting(node: Node, status: "False" | "Unknown"): boolean {
    const q = this.tainter(node);
    const name = node.metadata?.name ?? "";
    const template = status === "False" ? NOT_READY_TAINT : UNREACHABLE_TAINT;
    if (!taintExists(node.spec?.taints, template)) q.remove(name);
    return q.add(name, node.metadata?.uid ?? "");
  }

  /** Removes both NoExecute taints and forgets the node in its zone's queue. */
  private async markNodeAsReachable(node: Node): Promise<boolean> {
    await this.removeTaints(node, [UNREACHABLE_TAINT]);
    await this.removeTaints(node, [NOT_READY_TAINT]);
    return this.tainter(node).remove(node.metadata?.name ?? "");
  }

  /** One pass over the zones' taint queues (doNoExecuteTaintingPass). */
  async noExecuteTaintingPass(): Promise<void> {
    for (const q of [...this.zoneTainters.values()]) {
      await q.try(async (v) => {
        const node = this.o.nodes.store.get(v.value);
        if (!node) return [true, 0];
        const ready = nodeCondition(node.status, "Ready");
        if (!ready) return [false, 50];
        let add: Taint;
        let opposite: Taint;
        if (ready.status === "False") [add, opposite] = [NOT_READY_TAINT, UNREACHABLE_TAINT];
        else if (ready.status === "Unknown") [add, opposite] = [UNREACHABLE_TAINT, NOT_READY_TAINT];
        else return [true, 0];
        return [await this.swapTaints(node, [add], [opposite]), 0];
      });
    }
  }

  private async processTaintBasedEviction(node: Node, observed: NodeCondition): Promise<void> {
    const name = node.metadata?.name ?? "";
    switch (observed.status) {
      case "False":
        if (taintExists(node.spec?.taints, UNREACHABLE_TAINT)) {
          if (!(await this.swapTaints(node, [NOT_READY_TAINT], [UNREACHABLE_TAINT])))
            this.o.log.error(
              "Failed to instantly swap UnreachableTaint to NotReadyTaint. Will try again in the next cycle",
            );
        } else if (this.markNodeForTainting(node, "False")) {
          this.o.log.info(`Node is NotReady. Adding it to the Taint queue node="${name}"`);
        }
        break;
      case "Unknown":
        if (taintExists(node.spec?.taints, NOT_READY_TAINT)) {
          if (!(await this.swapTaints(node, [UNREACHABLE_TAINT], [NOT_READY_TAINT])))
            this.o.log.error(
              "Failed to instantly swap NotReadyTaint to UnreachableTaint. Will try again in the next cycle",
            );
        } else if (this.markNodeForTainting(node, "Unknown")) {
          this.o.log.info(`Node is unresponsive. Adding it to the Taint queue node="${name}"`);
        }
        break;
      case "True":
        try {
          if (await this.markNodeAsReachable(node))
            this.o.log.info(`Node is healthy again, removed all taints node="${name}"`);
        } catch (err) {
          this.o.log.error(`Failed to remove taints from node "${name}": ${errorMessage(err)}`);
        }
        break;
    }
  }

  // -- pods --

  /** Sets Ready=False on the pods of `nodeName` that are not so yet; throws the first failure. */
  async markPodsNotReady(pods: Pod[], nodeName: string): Promise<void> {
    const errors: unknown[] = [];
    for (const pod of pods) {
      if (pod.spec?.nodeName !== nodeName) continue;
      const conditions = podNotReadyConditions(pod, this.o.clock.now());
      if (!conditions) continue;
      try {
        await this.o.client
          .resource("v1/Pod", pod.metadata?.namespace ?? "")
          .updateStatus({ ...pod, status: { ...pod.status, conditions } });
      } catch (err) {
        if (isStatusError(err, "NotFound")) continue;
        this.o.log.error(
          `Failed to update status for pod "${objectKey(pod)}": ${errorMessage(err)}`,
        );
        errors.push(err);
      }
      this.o.recorder.event(pod, "Warning", "NodeNotReady", "Node is not ready");
    }
    if (errors.length) throw errors[0];
  }

  /** Queues a pod newly bound to a node (or seen for the first time). */
  podUpdated(old: Pod | undefined, pod: Pod): void {
    const node = pod.spec?.nodeName;
    if (node && (!old || old.spec?.nodeName !== node)) this.podQueue.add(objectKey(pod));
  }

  /** A pod bound to a node that is not Ready gets Ready=False too (processPod). */
  async processPod(key: string): Promise<void> {
    const pod = this.o.pods.store.get(key);
    if (!pod) return;
    const nodeName = pod.spec?.nodeName ?? "";
    const health = this.health.get(nodeName);
    if (!health) return;
    if (!this.o.nodes.store.get(nodeName)) throw new Error(`node "${nodeName}" not in the cache`);
    const ready = nodeCondition(health.status, "Ready");
    if (!ready || ready.status === "True") return;
    await this.markPodsNotReady([pod], nodeName);
  }

  // -- the health monitor --

  private async updateNodeHealth(node: Node): Promise<HealthResult> {
    const name = node.metadata?.name ?? "";
    const r = evaluateNodeHealth({
      node,
      health: this.health.get(name),
      lease: this.o.leases.store.getByName(NODE_LEASE_NAMESPACE, name),
      now: this.o.clock.now(),
      gracePeriod: this.o.nodeMonitorGracePeriod,
      startupGracePeriod: this.o.nodeStartupGracePeriod,
    });
    this.health.set(name, r.health);
    if (r.update) {
      await this.nodesClient().updateStatus(r.update);
      this.health.set(name, r.healthAfterUpdate!);
    }
    return r;
  }

  private async monitorOne(
    cached: Node,
    zones: Map<string, (NodeCondition | undefined)[]>,
  ): Promise<void> {
    const name = cached.metadata?.name ?? "";
    let node = cached;
    let r: HealthResult | undefined;
    for (let i = 0; i < NODE_HEALTH_UPDATE_RETRY && !r; i++) {
      try {
        r = await this.updateNodeHealth(node);
      } catch (err) {
        this.o.log.error(`Error updating node "${name}": ${errorMessage(err)}`);
        try {
          node = await this.nodesClient().get(name);
        } catch {
          this.o.log.error(
            `Failed while getting a Node to retry updating node health. Probably Node was deleted node="${name}"`,
          );
          return;
        }
        await sleep(this.o.clock, RETRY_SLEEP);
      }
    }
    if (!r) {
      this.o.log.error(
        `Update health of Node from Controller error, Skipping - no pods will be evicted node="${name}"`,
      );
      return;
    }
    const { observedReady, currentReady } = r;
    if (!(LABEL_NODE_DISRUPTION_EXCLUSION in (node.metadata?.labels ?? {}))) {
      const zone = zoneKey(node);
      zones.set(zone, [...(zones.get(zone) ?? []), currentReady]);
    }
    if (currentReady) {
      const pods = this.o.pods.store.byIndex(POD_NODE_NAME_INDEX, name);
      await this.processTaintBasedEviction(node, observedReady);
      const becameNotReady = currentReady.status !== "True" && observedReady.status === "True";
      if (becameNotReady) this.statusChangeEvent(node, "NodeNotReady");
      if (becameNotReady || (this.nodesToRetry.has(name) && observedReady.status !== "True")) {
        try {
          await this.markPodsNotReady(pods, name);
        } catch (err) {
          this.o.log.error(
            `unable to mark all pods NotReady on node ${name}: ${errorMessage(err)}; queuing for retry`,
          );
          this.nodesToRetry.add(name);
          return;
        }
      }
    }
    this.nodesToRetry.delete(name);
  }

  /** One pass of the health monitor (monitorNodeHealth). */
  async monitorNodeHealth(): Promise<void> {
    const nodes = this.o.nodes.store.list();
    const names = new Set(nodes.map((n) => n.metadata?.name ?? ""));
    for (const node of nodes) {
      const name = node.metadata?.name ?? "";
      if (this.known.has(name)) {
        if (!this.zoneStates.has(zoneKey(node))) this.addEvictorForNewZone(node);
        continue;
      }
      this.o.log.info(`Controller observed a new Node node="${name}"`);
      this.nodeEvent(node, "RegisteredNode", `Registered Node ${name} in Controller`);
      this.known.set(name, node);
      this.addEvictorForNewZone(node);
      try {
        await this.markNodeAsReachable(node);
      } catch (err) {
        this.o.log.error(`Failed to remove taints from node "${name}": ${errorMessage(err)}`);
      }
    }
    for (const [name, node] of this.known) {
      if (names.has(name)) continue;
      this.o.log.info(`Controller observed a Node deletion node="${name}"`);
      this.nodeEvent(node, "RemovingNode", `Removing Node ${name} from Controller`);
      this.known.delete(name);
      this.health.delete(name);
      this.nodesToRetry.delete(name);
    }
    const zones = new Map<string, (NodeCondition | undefined)[]>();
    let next = 0;
    const worker = async () => {
      while (next < nodes.length) {
        const node = nodes[next++]!;
        try {
          await this.monitorOne(node, zones);
        } catch (err) {
          this.o.log.error(`monitoring node "${node.metadata?.name}": ${errorMessage(err)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(NODE_UPDATE_WORKERS, nodes.length) }, worker));
    await this.handleDisruption(zones, nodes);
  }

  private setLimiterInZone(zone: string, size: number, state: ZoneState): void {
    const q = this.zoneTainters.get(zone);
    if (!q) return;
    if (state === "Normal") q.swapLimiter(NODE_EVICTION_RATE);
    else if (state === "PartialDisruption")
      q.swapLimiter(size > LARGE_CLUSTER_SIZE_THRESHOLD ? SECONDARY_NODE_EVICTION_RATE : 0);
    else if (state === "FullDisruption") q.swapLimiter(NODE_EVICTION_RATE);
  }

  /** Zone states and the taint rates they allow (handleDisruption). */
  private async handleDisruption(
    zones: Map<string, (NodeCondition | undefined)[]>,
    nodes: Node[],
  ): Promise<void> {
    const newStates = new Map<string, ZoneState>();
    let allAreFullyDisrupted = true;
    for (const [zone, conditions] of zones) {
      const { state } = computeZoneState(conditions);
      if (state !== "FullDisruption") allAreFullyDisrupted = false;
      newStates.set(zone, state);
      if (!this.zoneStates.has(zone)) this.zoneStates.set(zone, "Initial");
    }
    let allWasFullyDisrupted = true;
    for (const [zone, state] of [...this.zoneStates]) {
      if (!zones.has(zone)) {
        this.zoneStates.delete(zone);
        continue;
      }
      if (state !== "FullDisruption") {
        allWasFullyDisrupted = false;
        break;
      }
    }
    if (allAreFullyDisrupted && allWasFullyDisrupted) return;
    if (allAreFullyDisrupted) {
      this.o.log.info(
        "Controller detected that all Nodes are not-Ready. Entering master disruption mode",
      );
      for (const node of nodes) {
        try {
          await this.markNodeAsReachable(node);
        } catch (err) {
          this.o.log.error(
            `Failed to remove taints from Node "${node.metadata?.name}": ${errorMessage(err)}`,
          );
        }
      }
      for (const zone of this.zoneStates.keys()) {
        this.zoneTainters.get(zone)?.swapLimiter(0);
        this.zoneStates.set(zone, "FullDisruption");
      }
      return;
    }
    if (allWasFullyDisrupted) {
      this.o.log.info(
        "Controller detected that some Nodes are Ready. Exiting master disruption mode",
      );
      const now = this.o.clock.now();
      for (const node of nodes) {
        const h = this.health.get(node.metadata?.name ?? "");
        if (h)
          this.health.set(node.metadata?.name ?? "", {
            ...h,
            probeTimestamp: now,
            readyTransitionTimestamp: now,
          });
      }
      for (const zone of this.zoneStates.keys()) {
        const state = newStates.get(zone) ?? "Normal";
        this.setLimiterInZone(zone, zones.get(zone)?.length ?? 0, state);
        this.zoneStates.set(zone, state);
      }
      return;
    }
    for (const [zone, state] of this.zoneStates) {
      const next = newStates.get(zone) ?? state;
      if (next === state) continue;
      this.o.log.info(`Controller detected that zone "${zone}" is now in state ${next}`);
      this.setLimiterInZone(zone, zones.get(zone)?.length ?? 0, next);
      this.zoneStates.set(zone, next);
    }
  }

  /** The zone states (for logs and tests). */
  zones(): Map<string, ZoneState> {
    return new Map(this.zoneStates);
  }

  /** Runs the pod workers, the taint pass and the monitor until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    signal.addEventListener("abort", () => this.podQueue.shutDown(), { once: true });
    const podWorker = async () => {
      for (;;) {
        const { item, shutdown } = await this.podQueue.get();
        if (shutdown) return;
        try {
          await this.processPod(item);
          this.podQueue.forget(item);
        } catch (err) {
          const { namespace, name } = splitKey(item);
          this.o.log.info(
            `Unable to mark pod NotReady pod="${namespace}/${name}": ${errorMessage(err)}`,
          );
          this.podQueue.addRateLimited(item);
        } finally {
          this.podQueue.done(item);
        }
      }
    };
    const loop = async (period: number, fn: () => Promise<void>) => {
      while (!signal.aborted) {
        try {
          await fn();
        } catch (err) {
          this.o.log.error(errorMessage(err));
        }
        await sleep(this.o.clock, period, signal);
      }
    };
    await Promise.all([
      ...Array.from({ length: POD_UPDATE_WORKERS }, podWorker),
      loop(NODE_EVICTION_PERIOD, () => this.noExecuteTaintingPass()),
      loop(this.o.nodeMonitorPeriod, () => this.monitorNodeHealth()),
    ]);
  }
}

export interface NodeLifecycleTimings {
  /** How often node health is checked (--node-monitor-period, 5 s). */
  nodeMonitorPeriod?: number;
  /** The grace of a node that never posted status (--node-startup-grace-period, 60 s). */
  nodeStartupGracePeriod?: number;
}

/** The descriptor with other timings than upstream's defaults. */
export function newNodeLifecycleDescriptor(t: NodeLifecycleTimings = {}): ControllerDescriptor {
  return {
    name: "nodelifecycle",
    aliases: ["node-lifecycle-controller"],
    serviceAccount: "node-controller",
    async start(ctx: ControllerContext, signal) {
      const { informers } = ctx;
      const nodes = informers.informer("v1/Node");
      const pods = informers.informer("v1/Pod", {
        indexers: { [POD_NODE_NAME_INDEX]: podNodeNameIndexFunc },
      });
      const leases = informers.informer("coordination.k8s.io/v1/Lease", {
        namespace: NODE_LEASE_NAMESPACE,
      });
      const nlc = new NodeLifecycleController({
        client: ctx.client,
        nodes,
        pods,
        leases,
        recorder: ctx.recorder("node-controller"),
        clock: ctx.clock,
        log: ctx.log,
        nodeMonitorPeriod: t.nodeMonitorPeriod ?? NODE_MONITOR_PERIOD,
        nodeMonitorGracePeriod: ctx.options.nodeMonitorGracePeriod ?? NODE_MONITOR_GRACE_PERIOD,
        nodeStartupGracePeriod: t.nodeStartupGracePeriod ?? NODE_STARTUP_GRACE_PERIOD,
      });
      const unregister = pods.addEventHandler({
        add: (p) => nlc.podUpdated(undefined, p),
        update: (old, p) => nlc.podUpdated(old, p),
      });
      const nodeTaints = controller({
        name: "node_lifecycle_controller",
        informers,
        for: "v1/Node",
        workers: NODE_UPDATE_WORKERS,
        clock: ctx.clock,
        onError: (err, req) =>
          ctx.log.error(
            `Failed to taint NoSchedule on node "${req.name}", requeue it: ${errorMessage(err)}`,
          ),
        reconcile: ({ name }) => nlc.syncNode(name),
      });
      try {
        for (const i of [leases, nodes, pods]) if (!(await i.waitForSync(signal))) return;
        await Promise.all([nodeTaints.start(signal), nlc.run(signal)]);
      } finally {
        unregister();
      }
    },
  };
}

export const nodeLifecycleDescriptor = newNodeLifecycleDescriptor();
