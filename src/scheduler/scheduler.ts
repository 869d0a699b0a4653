/**
 * The scheduler's core, free of I/O: it takes the cluster's changes (as informers deliver them),
 * keeps the cache and the queue, and for each pod it pops answers what to write to the API: a
 * Binding and a "Scheduled" event, or a PodScheduled=False condition, a "FailedScheduling" event,
 * a nominatedNodeName and the victims to evict. The caller performs the requests and reports the
 * outcome of each binding back (bindingSucceeded / bindingFailed).
 */
import type { Binding, Node, Pod, PodCondition } from "kubernetes-types/core/v1.js";
import { Cache, Snapshot } from "./cache.js";
import {
  buildFrameworks,
  defaultConfiguration,
  type KubeSchedulerConfiguration,
} from "./config.js";
import type { Framework, Registry } from "./framework.js";
import type { QueuedPodInfo } from "./interface.js";
import { inTreeRegistry } from "./plugins/registry.js";
import { SchedulingQueue, type Clock, type QueueProfile } from "./queue.js";
import { SchedulingAlgorithm } from "./schedule.js";
import { Code, CycleState, PodInfo, podKey } from "./types.js";

export interface SchedulerOptions {
  config?: KubeSchedulerConfiguration;
  registry?: Registry;
  clock?: Clock;
  /** Random integer in [0, n), for tie-breaking and preemption offsets. */
  randomInt?: (n: number) => number;
}

export interface SchedulerEvent {
  type: "Normal" | "Warning";
  reason: string;
  action: string;
  message: string;
}

export type Decision =
  | {
      kind: "bind";
      pod: Pod;
      nodeName: string;
      binding: Binding;
      event: SchedulerEvent;
    }
  | {
      kind: "unschedulable" | "error";
      pod: Pod;
      condition: PodCondition;
      event: SchedulerEvent;
      /** The node to write to status.nominatedNodeName ("" clears it), when it changes. */
      nominatedNodeName?: string;
      /** Pods to evict (with a DisruptionTarget condition) so the pod fits on its nominated node. */
      victims: Pod[];
      /** Lower-priority pods whose nominatedNodeName should be cleared. */
      clearNominated: Pod[];
    };

/** The Binding the scheduler posts to pods/binding. */
export function bindingFor(pod: Pod, nodeName: string): Binding {
  const metadata: Binding["metadata"] = {
    name: pod.metadata?.name ?? "",
    namespace: pod.metadata?.namespace ?? "",
    ...(pod.metadata?.uid ? { uid: pod.metadata.uid } : {}),
  };
  return { apiVersion: "v1", kind: "Binding", metadata, target: { kind: "Node", name: nodeName } };
}

/** The DisruptionTarget condition set on a preemption victim before it is deleted. */
export function preemptionCondition(schedulerName: string): PodCondition {
  return {
    type: "DisruptionTarget",
    status: "True",
    reason: "PreemptionByScheduler",
    message: `${schedulerName}: preempting to accommodate a higher priority pod`,
  };
}

/** The "Preempted" event recorded on a victim. */
export function preemptedEvent(preemptor: Pod, nodeName: string): SchedulerEvent {
  return {
    type: "Normal",
    reason: "Preempted",
    action: "Preempting",
    message: `Preempted by pod ${preemptor.metadata?.uid ?? ""} on node ${nodeName}`,
  };
}

const isAssigned = (pod: Pod): boolean => (pod.spec?.nodeName ?? "") !== "";
const isTerminal = (pod: Pod): boolean =>
  pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";

interface InFlight {
  q: QueuedPodInfo;
  state: CycleState;
  fw: Framework;
  assumed: Pod;
}

export class Scheduler {
  readonly cache = new Cache();
  readonly snapshot = new Snapshot();
  readonly queue: SchedulingQueue;
  readonly frameworks: Map<string, Framework>;
  readonly algorithm = new SchedulingAlgorithm();
  readonly config: KubeSchedulerConfiguration;
  private readonly binding = new Map<string, InFlight>();

  constructor(opts: SchedulerOptions = {}) {
    this.config = opts.config ?? defaultConfiguration();
    const nominator = {
      nominatedPodsForNode: (n: string) => this.queue.nominatedPodsForNode(n),
      hasNominatedPods: () => this.queue.hasNominatedPods(),
    };
    const fwOpts = { nominator, ...(opts.randomInt ? { randomInt: opts.randomInt } : {}) };
    this.frameworks = buildFrameworks(this.config, opts.registry ?? inTreeRegistry(), fwOpts);
    const first = this.frameworks.values().next().value as Framework;
    const profiles = new Map<string, QueueProfile>();
    for (const [name, fw] of this.frameworks) {
      profiles.set(name, {
        preEnqueue: (p) => fw.runPreEnqueuePlugins(p),
        eventsToRegister: () => fw.eventsToRegister(),
      });
    }
    this.queue = new SchedulingQueue({
      less: (a, b) => first.queueSortLess(a, b),
      profiles,
      ...(opts.clock ? { clock: opts.clock } : {}),
      podInitialBackoffMs: this.config.podInitialBackoffSeconds * 1000,
      podMaxBackoffMs: this.config.podMaxBackoffSeconds * 1000,
    });
  }

  /** Whether one of this scheduler's profiles is responsible for the pod. */
  responsibleFor(pod: Pod): boolean {
    return this.frameworks.has(pod.spec?.schedulerName ?? "default-scheduler");
  }

  // ---- informer events ----

  onNodeAdd(node: Node): void {
    this.cache.addNode(node);
    this.queue.nodeAdded(node);
  }

  onNodeUpdate(oldNode: Node, newNode: Node): void {
    this.cache.updateNode(oldNode, newNode);
    this.queue.nodeUpdated(oldNode, newNode);
  }

  onNodeDelete(node: Node): void {
    this.cache.removeNode(node);
    this.queue.nodeDeleted(node);
  }

  onPodAdd(pod: Pod): void {
    if (isAssigned(pod)) {
      if (isTerminal(pod)) return;
      this.cache.addPod(pod);
      this.queue.delete(pod);
      this.queue.assignedPodAdded(pod);
    } else if (this.responsibleFor(pod) && !isTerminal(pod)) {
      this.queue.add(pod);
    }
  }

  onPodUpdate(oldPod: Pod, newPod: Pod): void {
    const wasAssigned =
      isAssigned(oldPod) &&
      this.cache.getPod(oldPod) !== undefined &&
      !this.cache.isAssumedPod(oldPod);
    if (isAssigned(newPod)) {
      if (isTerminal(newPod)) {
        if (wasAssigned || this.cache.getPod(newPod)) this.onPodDelete(newPod);
        return;
      }
      if (wasAssigned) {
        this.cache.updatePod(oldPod, newPod);
        this.queue.assignedPodUpdated(oldPod, newPod);
      } else {
        this.queue.delete(newPod);
        this.cache.addPod(newPod);
        this.queue.assignedPodAdded(newPod);
      }
      return;
    }
    if (this.responsibleFor(newPod) && !isTerminal(newPod)) {
      if (this.binding.has(podKey(newPod))) return;
      this.queue.update(oldPod, newPod);
    }
  }

  onPodDelete(pod: Pod): void {
    const cached = this.cache.getPod(pod);
    if (cached) {
      this.cache.removePod(cached);
      this.queue.assignedPodDeleted(cached);
    } else {
      this.queue.delete(pod);
    }
  }

  // ---- scheduling ----

  /**
   * Pops one pod and decides for it; undefined when no pod is ready. On "bind", the pod is
   * assumed on the node: report the binding's outcome with bindingSucceeded or bindingFailed.
   */
  scheduleOne(): Decision | undefined {
    for (;;) {
      const q = this.queue.pop();
      if (!q) return undefined;
      const pod = q.podInfo.pod;
      const fw = this.frameworks.get(pod.spec?.schedulerName ?? "default-scheduler");
      if (!fw || pod.metadata?.deletionTimestamp || this.cache.isAssumedPod(pod)) {
        this.queue.done(q.podInfo.key);
        continue;
      }
      return this.schedulingCycle(fw, q);
    }
  }

  private schedulingCycle(fw: Framework, q: QueuedPodInfo): Decision {
    const pod = q.podInfo.pod;
    this.cache.updateSnapshot(this.snapshot);
    const state = new CycleState();
    const outcome = this.algorithm.run(fw, q.podInfo, this.snapshot, state);
    if ("node" in outcome) {
      const assumed: Pod = { ...pod, spec: { ...pod.spec!, nodeName: outcome.node } };
      const assumedInfo = new PodInfo(assumed);
      this.cache.assumePod(assumed);
      let s = fw.runReservePlugins(state, assumedInfo, outcome.node);
      if (s === null) s = fw.runPermitPlugins(state, assumedInfo, outcome.node);
      if (s !== null) {
        fw.runUnreservePlugins(state, assumedInfo, outcome.node);
        this.cache.forgetPod(assumed);
        return this.failure(
          fw,
          q,
          s.code === Code.Error ? "SchedulerError" : "Unschedulable",
          s.message(),
          undefined,
          [],
          [],
        );
      }
      this.queue.deleteNominatedPodIfExists(pod);
      this.binding.set(q.podInfo.key, { q, state, fw, assumed });
      return {
        kind: "bind",
        pod,
        nodeName: outcome.node,
        binding: bindingFor(pod, outcome.node),
        event: {
          type: "Normal",
          reason: "Scheduled",
          action: "Binding",
          message: `Successfully assigned ${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""} to ${outcome.node}`,
        },
      };
    }
    if ("failure" in outcome) {
      q.unschedulablePlugins = new Set(outcome.failure.diagnosis.unschedulablePlugins);
      q.pendingPlugins = new Set(outcome.failure.diagnosis.pendingPlugins);
      const pf = outcome.postFilter;
      return this.failure(
        fw,
        q,
        "Unschedulable",
        outcome.failure.message,
        pf ? pf.nominatedNodeName : undefined,
        pf?.victims ?? [],
        pf?.clearNominated ?? [],
      );
    }
    const reason =
      outcome.status.code === Code.UnschedulableAndUnresolvable
        ? "Unschedulable"
        : "SchedulerError";
    return this.failure(fw, q, reason, outcome.error.message, undefined, [], []);
  }

  private failure(
    _fw: Framework,
    q: QueuedPodInfo,
    reason: string,
    message: string,
    nominatedNodeName: string | undefined,
    victims: Pod[],
    clearNominated: Pod[],
  ): Decision {
    const pod = q.podInfo.pod;
    if (nominatedNodeName !== undefined) {
      const nominated: Pod = { ...pod, status: { ...pod.status, nominatedNodeName } };
      q.podInfo = new PodInfo(nominated);
      if (nominatedNodeName === "") this.queue.deleteNominatedPodIfExists(pod);
    }
    this.queue.addUnschedulableIfNotPresent(q);
    if (nominatedNodeName) this.queue.addNominatedPod(q.podInfo, nominatedNodeName);
    const d: Decision = {
      kind: reason === "SchedulerError" ? "error" : "unschedulable",
      pod,
      condition: { type: "PodScheduled", status: "False", reason, message },
      event: { type: "Warning", reason: "FailedScheduling", action: "Scheduling", message },
      victims,
      clearNominated,
    };
    if (
      nominatedNodeName !== undefined &&
      nominatedNodeName !== (pod.status?.nominatedNodeName ?? "")
    ) {
      d.nominatedNodeName = nominatedNodeName;
    }
    return d;
  }

  /** The binding request for this pod succeeded. */
  bindingSucceeded(pod: Pod): void {
    const key = podKey(pod);
    const f = this.binding.get(key);
    if (!f) return;
    this.binding.delete(key);
    this.cache.finishBinding(f.assumed);
    this.queue.done(key);
  }

  /** The binding request failed: the pod is forgotten on its node and queued again after backoff. */
  bindingFailed(pod: Pod, err: Error): Decision | undefined {
    const key = podKey(pod);
    const f = this.binding.get(key);
    if (!f) return undefined;
    this.binding.delete(key);
    const node = f.assumed.spec?.nodeName ?? "";
    f.fw.runUnreservePlugins(f.state, new PodInfo(f.assumed), node);
    try {
      this.cache.forgetPod(f.assumed);
    } catch {
      // Already confirmed or removed by an informer event.
    }
    this.queue.moveAllToActiveOrBackoffQueue(
      { resource: "AssignedPod", actionType: 2 },
      f.assumed,
      undefined,
    );
    f.q.unschedulablePlugins = new Set();
    return this.failure(
      f.fw,
      f.q,
      "SchedulerError",
      `binding rejected: ${err.message}`,
      undefined,
      [],
      [],
    );
  }
}
