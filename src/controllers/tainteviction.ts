/**
 * The taint eviction controller (upstream's taint-eviction-controller, the "taint manager"):
 * deletes the pods bound to a node with NoExecute taints that they do not tolerate.
 *
 * - A pod that does not tolerate every NoExecute taint of its node is deleted at once.
 * - A pod that tolerates them all is deleted after the smallest `tolerationSeconds` of the
 *   tolerations used, counted from when the controller first saw it due; a toleration without
 *   `tolerationSeconds` keeps the pod forever.
 * - A scheduled deletion is cancelled when the taints go (or stop applying), with the event
 *   "Cancelling deletion of Pod ns/name".
 * - Before deleting, the pod gets the condition DisruptionTarget=True (reason
 *   DeletionByTaintManager) and the event TaintManagerEviction "Marking for deletion Pod ns/name";
 *   the DELETE has the pod's default grace period.
 *
 * The decisions (`matchingTolerations`, `minTolerationTime`, `evictionPlan`) are pure functions;
 * `TimedWorkers` keeps one timer per pod on an injectable clock. A deletion that fired stays
 * remembered until the pod is gone, so it is not scheduled twice, as upstream's queue does.
 */

import type { Node, Pod, PodCondition, Taint, Toleration } from "kubernetes-types/core/v1.js";
import { isStatusError } from "../api/status.js";
import { sleep, type Clock } from "../client/clock.js";
import type { EventRecorder } from "../client/events.js";
import type { Informer } from "../client/informer.js";
import type { Client } from "../client/resources.js";
import { objectKey, splitKey } from "../client/resources.js";
import { WorkQueue } from "../client/workqueue.js";
import { toleratesTaint } from "../scheduler/selectors.js";
import type { ControllerContext, ControllerDescriptor, Logger } from "./context.js";
import { errorMessage } from "./context.js";
import { nowTime, semanticEqual } from "./util.js";

/** The name of the pod index by `spec.nodeName` (pods not bound are not indexed). */
export const POD_NODE_NAME_INDEX = "spec.nodeName";

export function podNodeNameIndexFunc(pod: Pod): string[] {
  const node = pod.spec?.nodeName;
  return node ? [node] : [];
}

export function noExecuteTaints(taints: Taint[] | undefined): Taint[] {
  return (taints ?? []).filter((t) => t.effect === "NoExecute");
}

/**
 * Whether every taint is tolerated, and for each taint the first toleration that tolerates it
 * (v1helper.GetMatchingTolerations).
 */
export function matchingTolerations(
  taints: Taint[],
  tolerations: Toleration[] | undefined,
): { allTolerated: boolean; used: Toleration[] } {
  if (taints.length === 0) return { allTolerated: true, used: [] };
  const used: Toleration[] = [];
  for (const taint of taints) {
    const t = (tolerations ?? []).find((x) => toleratesTaint(x, taint));
    if (!t) return { allTolerated: false, used: [] };
    used.push(t);
  }
  return { allTolerated: true, used };
}

/**
 * The smallest toleration time of `tolerations` in ms: 0 for none or a non-positive one, -1 when
 * none has `tolerationSeconds` (forever).
 */
export function minTolerationTime(tolerations: Toleration[]): number {
  if (tolerations.length === 0) return 0;
  let min = Infinity;
  for (const t of tolerations) {
    const s = t.tolerationSeconds;
    if (s === undefined || s === null) continue;
    if (s <= 0) return 0;
    min = Math.min(min, s);
  }
  return min === Infinity ? -1 : min * 1000;
}

/** What to do about one pod given its node's NoExecute taints. */
export type EvictionPlan = { action: "cancel" } | { action: "evict"; afterMs: number };

export function evictionPlan(taints: Taint[], tolerations: Toleration[] | undefined): EvictionPlan {
  if (taints.length === 0) return { action: "cancel" };
  const { allTolerated, used } = matchingTolerations(taints, tolerations);
  if (!allTolerated) return { action: "evict", afterMs: 0 };
  const min = minTolerationTime(used);
  return min < 0 ? { action: "cancel" } : { action: "evict", afterMs: min };
}

interface TimedWork {
  createdAt: number;
  fireAt: number;
  cancel: () => void;
}

/**
 * One timer per key (upstream's TimedWorkerQueue): `add` schedules unless the key is already
 * known; a key whose work has run successfully stays known (as `null`) until `cancel`, so the
 * same pod is not deleted twice; a failed run forgets the key.
 */
export class TimedWorkers {
  private readonly work = new Map<string, TimedWork | null>();

  constructor(
    private readonly clock: Clock,
    private readonly run: (key: string, fireAt: number) => Promise<void>,
  ) {}

  /** The pending work of `key` (undefined when none, or when it already ran). */
  get(key: string): { createdAt: number; fireAt: number } | undefined {
    const w = this.work.get(key);
    return w ? { createdAt: w.createdAt, fireAt: w.fireAt } : undefined;
  }

  add(key: string, createdAt: number, fireAt: number): void {
    if (this.work.has(key)) return;
    const entry: TimedWork = { createdAt, fireAt, cancel: () => {} };
    entry.cancel = this.clock.setTimer(fireAt - this.clock.now(), () => {
      if (this.work.get(key) !== entry) return;
      this.run(key, fireAt).then(
        () => {
          if (this.work.get(key) === entry) this.work.set(key, null);
        },
        () => {
          if (this.work.get(key) === entry) this.work.delete(key);
        },
      );
    });
    this.work.set(key, entry);
  }

  /** Forgets `key`; answers true when pending work was cancelled. */
  cancel(key: string): boolean {
    const w = this.work.get(key);
    this.work.delete(key);
    if (!w) return false;
    w.cancel();
    return true;
  }

  cancelAll(): void {
    for (const w of this.work.values()) w?.cancel();
    this.work.clear();
  }
}

/** The DisruptionTarget condition the taint manager sets before deleting. */
export function disruptionTargetCondition(now: number): PodCondition {
  return {
    type: "DisruptionTarget",
    status: "True",
    reason: "DeletionByTaintManager",
    message: "Taint manager: deleting due to NoExecute taint",
    lastTransitionTime: nowTime(now),
  };
}

/** The pod's condition of `type` replaced by `cond` (upstream's UpdatePodCondition); undefined if unchanged. */
export function withPodCondition(pod: Pod, cond: PodCondition): PodCondition[] | undefined {
  const conditions = pod.status?.conditions ?? [];
  const i = conditions.findIndex((c) => c.type === cond.type);
  if (i < 0) return [...conditions, cond];
  const old = conditions[i]!;
  const next: PodCondition = { ...cond };
  if (old.status === cond.status) next.lastTransitionTime = old.lastTransitionTime;
  const same =
    old.status === next.status &&
    (old.reason ?? "") === (next.reason ?? "") &&
    (old.message ?? "") === (next.message ?? "") &&
    (old.lastProbeTime ?? null) === (next.lastProbeTime ?? null) &&
    (old.lastTransitionTime ?? null) === (next.lastTransitionTime ?? null);
  if (same) return undefined;
  const out = [...conditions];
  out[i] = next;
  return out;
}

const DELETE_RETRIES = 5;

export interface TaintEvictionOptions {
  client: Client;
  pods: Pick<Informer<Pod>, "store">;
  nodes: Pick<Informer<Node>, "store">;
  recorder: Pick<EventRecorder, "event">;
  clock: Clock;
  log: Logger;
}

/**
 * The controller's state: the NoExecute taints of each tainted node and the scheduled deletions.
 * `nodeChanged`/`podChanged` are what the informers' handlers feed; `handleNode`/`handlePod`
 * act on the caches.
 */
export class TaintEvictionController {
  private readonly taintedNodes = new Map<string, Taint[]>();
  readonly evictions: TimedWorkers;
  private readonly queue: WorkQueue<string>;

  constructor(private readonly o: TaintEvictionOptions) {
    this.queue = new WorkQueue<string>({ clock: o.clock });
    this.evictions = new TimedWorkers(o.clock, (key, fireAt) => this.deletePod(key, fireAt));
  }

  /** Queues a node whose NoExecute taints changed (or which came or went). */
  nodeChanged(old: Node | undefined, node: Node | undefined): void {
    const name = (node ?? old)?.metadata?.name ?? "";
    if (
      old &&
      node &&
      semanticEqual(noExecuteTaints(old.spec?.taints), noExecuteTaints(node.spec?.taints))
    )
      return;
    this.queue.add(`node:${name}`);
  }

  /** Queues a pod whose tolerations or node changed (or which came or went). */
  podChanged(old: Pod | undefined, pod: Pod | undefined): void {
    if (
      old &&
      pod &&
      old.spec?.nodeName === pod.spec?.nodeName &&
      semanticEqual(old.spec?.tolerations ?? [], pod.spec?.tolerations ?? [])
    )
      return;
    this.queue.add(`pod:${objectKey((pod ?? old)!)}`);
  }

  /** Handles queued changes, nodes before pods as upstream's workers prefer, until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    signal.addEventListener("abort", () => this.queue.shutDown(), { once: true });
    try {
      for (;;) {
        const { item, shutdown } = await this.queue.get();
        if (shutdown) return;
        try {
          if (item.startsWith("node:")) this.handleNode(item.slice(5));
          else this.handlePod(item.slice(4));
        } catch (err) {
          this.o.log.error(`taint eviction of ${item}: ${errorMessage(err)}`);
        } finally {
          this.queue.done(item);
        }
      }
    } finally {
      this.evictions.cancelAll();
    }
  }

  handleNode(name: string): void {
    const node = this.o.nodes.store.get(name);
    if (!node) {
      this.taintedNodes.delete(name);
      return;
    }
    const taints = noExecuteTaints(node.spec?.taints);
    if (taints.length === 0) this.taintedNodes.delete(name);
    else this.taintedNodes.set(name, taints);
    const pods = this.o.pods.store.byIndex(POD_NODE_NAME_INDEX, name);
    if (pods.length === 0) return;
    const now = this.o.clock.now();
    for (const pod of pods) {
      const key = objectKey(pod);
      if (taints.length === 0) this.cancelWithEvent(key);
      else this.processPod(key, pod.spec?.tolerations, taints, now);
    }
  }

  handlePod(key: string): void {
    const pod = this.o.pods.store.get(key);
    if (!pod) {
      this.cancelWithEvent(key);
      return;
    }
    const nodeName = pod.spec?.nodeName;
    if (!nodeName) return;
    const taints = this.taintedNodes.get(nodeName);
    if (!taints) return;
    this.processPod(key, pod.spec?.tolerations, taints, this.o.clock.now());
  }

  private processPod(
    key: string,
    tolerations: Toleration[] | undefined,
    taints: Taint[],
    now: number,
  ): void {
    const plan = evictionPlan(taints, tolerations);
    if (plan.action === "cancel") {
      this.cancelWithEvent(key);
      return;
    }
    if (plan.afterMs === 0) {
      this.cancelWithEvent(key);
      this.evictions.add(key, now, now);
      return;
    }
    let start = now;
    const scheduled = this.evictions.get(key);
    if (scheduled) {
      // A deletion already counting down keeps its start, as upstream.
      start = scheduled.createdAt;
      if (start + plan.afterMs < now + plan.afterMs) return;
      this.cancelWithEvent(key);
    }
    this.evictions.add(key, start, now + plan.afterMs);
  }

  private cancelWithEvent(key: string): void {
    if (this.evictions.cancel(key)) this.podEvent(key, "Cancelling deletion of Pod");
  }

  private podEvent(key: string, what: string): void {
    const { namespace, name } = splitKey(key);
    this.o.recorder.event(
      { apiVersion: "v1", kind: "Pod", name, namespace },
      "Normal",
      "TaintManagerEviction",
      `${what} ${namespace}/${name}`,
    );
  }

  private async deletePod(key: string, _fireAt: number): Promise<void> {
    const { namespace, name } = splitKey(key);
    this.o.log.info(`Deleting pod controller="taint-eviction-controller" pod="${key}"`);
    this.podEvent(key, "Marking for deletion Pod");
    let last: unknown;
    for (let i = 0; i < DELETE_RETRIES; i++) {
      try {
        await this.addConditionAndDelete(namespace, name);
        return;
      } catch (err) {
        last = err;
        await sleep(this.o.clock, 10);
      }
    }
    this.o.log.error(`deleting pod ${key}: ${errorMessage(last)}`);
    throw last;
  }

  private async addConditionAndDelete(namespace: string, name: string): Promise<void> {
    const pods = this.o.client.resource("v1/Pod", namespace);
    let pod: Pod;
    try {
      pod = await pods.get(name);
    } catch (err) {
      if (isStatusError(err, "NotFound")) return;
      throw err;
    }
    const conditions = withPodCondition(pod, disruptionTargetCondition(this.o.clock.now()));
    if (conditions) {
      const cond = conditions.find((c) => c.type === "DisruptionTarget");
      await pods.patch(
        name,
        "strategic",
        { metadata: { uid: pod.metadata?.uid }, status: { conditions: [cond] } },
        { subresource: "status" },
      );
    }
    try {
      await pods.delete(name);
    } catch (err) {
      if (!isStatusError(err, "NotFound")) throw err;
    }
  }
}

export const TAINT_EVICTION_CONTROLLER = "taint-eviction-controller";

export const taintEvictionDescriptor: ControllerDescriptor = {
  name: TAINT_EVICTION_CONTROLLER,
  // Upstream runs it with the node-controller's credentials and role.
  serviceAccount: "node-controller",
  async start(ctx: ControllerContext, signal) {
    const pods = ctx.informers.informer("v1/Pod", {
      indexers: { [POD_NODE_NAME_INDEX]: podNodeNameIndexFunc },
    });
    const nodes = ctx.informers.informer("v1/Node");
    const c = new TaintEvictionController({
      client: ctx.client,
      pods,
      nodes,
      recorder: ctx.recorder(TAINT_EVICTION_CONTROLLER),
      clock: ctx.clock,
      log: ctx.log,
    });
    const unregister = [
      pods.addEventHandler({
        add: (p) => c.podChanged(undefined, p),
        update: (old, p) => c.podChanged(old, p),
        delete: (p) => c.podChanged(p, undefined),
      }),
      nodes.addEventHandler({
        add: (n) => c.nodeChanged(undefined, n),
        update: (old, n) => c.nodeChanged(old, n),
        delete: (n) => c.nodeChanged(n, undefined),
      }),
    ];
    try {
      if (!(await pods.waitForSync(signal)) || !(await nodes.waitForSync(signal))) return;
      await c.run(signal);
    } finally {
      for (const u of unregister) u();
    }
  },
};
