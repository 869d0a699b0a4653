/**
 * The pod garbage collector (upstream's pkg/controller/podgc), every 20 s:
 *
 * - terminated pods (phase neither Pending, Running nor Unknown) beyond
 *   --terminated-pod-gc-threshold are deleted, evicted ones first, then oldest first;
 * - terminating pods on a node that is not Ready and has the `node.kubernetes.io/out-of-service`
 *   taint are deleted at once;
 * - pods bound to a node that no longer exists are deleted, after a quarantine of 40 s and a
 *   live read confirming the node is gone, with the `DisruptionTarget` condition
 *   (`DeletionByPodGC`, "PodGC: node no longer exists");
 * - terminating pods bound to no node are deleted.
 *
 * A pod that has not finished is first marked Failed (a status patch, with the uid as
 * precondition) so that its controllers count it, then deleted with a grace period of 0.
 */

import type { Node, Pod, PodCondition } from "kubernetes-types/core/v1.js";
import { isStatusError } from "../api/status.js";
import { sleep, type Clock } from "../client/clock.js";
import type { ControllerDescriptor } from "./context.js";
import { errorMessage } from "./context.js";
import { creationTime, nowTime } from "./util.js";

export const DEFAULT_TERMINATED_POD_GC_THRESHOLD = 12500;
export const GC_CHECK_PERIOD = 20_000;
export const QUARANTINE_TIME = 40_000;
export const TAINT_NODE_OUT_OF_SERVICE = "node.kubernetes.io/out-of-service";

export function isPodTerminated(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return phase !== "Pending" && phase !== "Running" && phase !== "Unknown";
}

/** Failed with reason Evicted (the kubelet's eviction). */
export function isPodEvicted(pod: Pod): boolean {
  return pod.status?.phase === "Failed" && pod.status.reason === "Evicted";
}

/** Evicted first, then oldest, then by name. */
export function byEvictionAndCreation(a: Pod, b: Pod): number {
  const ae = isPodEvicted(a);
  const be = isPodEvicted(b);
  if (ae !== be) return ae ? -1 : 1;
  const d = creationTime(a) - creationTime(b);
  if (d !== 0) return d;
  return (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? "");
}

/** The terminated pods to delete so that at most `threshold` remain. */
export function terminatedPodsToDelete(pods: Pod[], threshold: number): Pod[] {
  if (threshold <= 0) return [];
  const terminated = pods.filter(isPodTerminated);
  const n = terminated.length - threshold;
  if (n <= 0) return [];
  return terminated.sort(byEvictionAndCreation).slice(0, n);
}

export function isNodeReady(node: Node): boolean {
  return !!node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
}

/** Terminating pods on nodes that are not ready and tainted out of service. */
export function terminatingOnOutOfServiceNodes(
  pods: Pod[],
  node: (name: string) => Node | undefined,
): Pod[] {
  return pods
    .filter((p) => {
      if (!p.metadata?.deletionTimestamp) return false;
      const n = node(p.spec?.nodeName ?? "");
      return (
        !!n && !isNodeReady(n) && !!n.spec?.taints?.some((t) => t.key === TAINT_NODE_OUT_OF_SERVICE)
      );
    })
    .sort(byEvictionAndCreation);
}

/** Terminating pods that no node was ever assigned. */
export function unscheduledTerminating(pods: Pod[]): Pod[] {
  return pods.filter((p) => !!p.metadata?.deletionTimestamp && !p.spec?.nodeName);
}

/**
 * Names of nodes pods are bound to but that the cache lacks, each held for the quarantine
 * before it may be checked (as upstream's delaying queue: a name already waiting keeps its
 * earlier time).
 */
export class NodeQuarantine {
  private readonly waiting = new Map<string, number>();

  constructor(private readonly quarantine: number) {}

  /** Notes the nodes of `pods` missing from `existing`. */
  notice(pods: Pod[], existing: Set<string>, now: number): void {
    for (const p of pods) {
      const n = p.spec?.nodeName;
      if (n && !existing.has(n) && !this.waiting.has(n)) this.waiting.set(n, now + this.quarantine);
    }
  }

  /** Takes the names whose quarantine is over. */
  due(now: number): string[] {
    const out: string[] = [];
    for (const [n, at] of this.waiting)
      if (at <= now) {
        out.push(n);
        this.waiting.delete(n);
      }
    return out;
  }
}

/** The condition the pod gets when its node is gone. */
export function nodeGoneCondition(): PodCondition {
  return {
    type: "DisruptionTarget",
    status: "True",
    reason: "DeletionByPodGC",
    message: "PodGC: node no longer exists",
  };
}

/** The strategic merge patch that marks `pod` Failed (with `condition`), or undefined if done. */
export function markFailedPatch(
  pod: Pod,
  condition: PodCondition | undefined,
  now: number,
): unknown {
  const phase = pod.status?.phase;
  if (phase === "Succeeded" || phase === "Failed") return undefined;
  const status: Record<string, unknown> = { phase: "Failed" };
  if (condition) {
    const old = pod.status?.conditions?.find((c) => c.type === condition.type);
    const c: PodCondition = { ...condition };
    c.lastTransitionTime =
      old && old.status === condition.status && old.lastTransitionTime
        ? old.lastTransitionTime
        : nowTime(now);
    status.conditions = [c];
  }
  return { metadata: { uid: pod.metadata?.uid }, status };
}

export interface PodGCOptions {
  /** --terminated-pod-gc-threshold; 0 or less turns terminated-pod collection off. */
  terminatedPodThreshold?: number;
  gcCheckPeriod?: number;
  quarantineTime?: number;
  clock?: Clock;
}

export function podGCDescriptorWith(o: PodGCOptions = {}): ControllerDescriptor {
  const threshold = o.terminatedPodThreshold ?? DEFAULT_TERMINATED_POD_GC_THRESHOLD;
  const period = o.gcCheckPeriod ?? GC_CHECK_PERIOD;
  return {
    name: "podgc",
    aliases: ["pod-garbage-collector-controller"],
    serviceAccount: "pod-garbage-collector",
    async start(ctx, signal) {
      const { client, informers } = ctx;
      const clock = o.clock ?? ctx.clock;
      const podsInformer = informers.informer("v1/Pod");
      const nodesInformer = informers.informer("v1/Node");
      const podsClient = client.resource("v1/Pod");
      const nodesClient = client.resource("v1/Node");
      const quarantine = new NodeQuarantine(o.quarantineTime ?? QUARANTINE_TIME);

      const markFailedAndDelete = async (pod: Pod, condition?: PodCondition): Promise<void> => {
        const ns = pod.metadata?.namespace ?? "";
        const name = pod.metadata?.name ?? "";
        ctx.log.info(`PodGC is force deleting Pod ${ns}/${name}`);
        try {
          const patch = markFailedPatch(pod, condition, clock.now());
          if (patch)
            await podsClient
              .namespace(ns)
              .patch(name, "strategic", patch, { subresource: "status" });
          await podsClient.namespace(ns).delete(name, { gracePeriodSeconds: 0 });
        } catch (err) {
          if (!isStatusError(err, "NotFound"))
            ctx.log.error(`deleting pod ${ns}/${name}: ${errorMessage(err)}`);
        }
      };

      const gc = async () => {
        const pods = podsInformer.store.list();
        const nodes = nodesInformer.store.list();
        await Promise.all(
          terminatedPodsToDelete(pods, threshold).map((p) => markFailedAndDelete(p)),
        );
        await Promise.all(
          terminatingOnOutOfServiceNodes(pods, (n) => nodesInformer.store.get(n)).map((p) =>
            markFailedAndDelete(p),
          ),
        );
        const existing = new Set(nodes.map((n) => n.metadata?.name ?? ""));
        quarantine.notice(pods, existing, clock.now());
        const deleted = new Set<string>();
        for (const name of quarantine.due(clock.now())) {
          if (existing.has(name)) continue;
          try {
            await nodesClient.get(name);
          } catch (err) {
            if (isStatusError(err, "NotFound")) deleted.add(name);
            else ctx.log.error(`Error while getting node ${name}: ${errorMessage(err)}`);
          }
        }
        for (const p of pods) {
          if (!deleted.has(p.spec?.nodeName ?? "")) continue;
          await markFailedAndDelete(p, nodeGoneCondition());
        }
        for (const p of unscheduledTerminating(pods)) await markFailedAndDelete(p);
      };

      if (!(await podsInformer.waitForSync(signal)) || !(await nodesInformer.waitForSync(signal)))
        return;
      while (!signal.aborted) {
        try {
          await gc();
        } catch (err) {
          ctx.log.error(`pod garbage collection: ${errorMessage(err)}`);
        }
        await sleep(clock, period, signal);
      }
    },
  };
}

export const podGCDescriptor = podGCDescriptorWith();
