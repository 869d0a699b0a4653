/**
 * The scheduler against an API server: informers feed the core (src/scheduler/scheduler.ts), a
 * loop pops pods and carries out its decisions, and leader election on a Lease decides which of
 * several schedulers acts.
 *
 * Contract:
 * - Informers start (and fill the cache and queue) before leader election, as upstream's
 *   default (delayCacheUntilActive: false), so a standby takes over with a warm cache.
 * - Only the leader schedules. Bindings are POSTed to pods/binding without waiting (upstream
 *   binds in a goroutine); the next pod is scheduled meanwhile against the assumed pod.
 * - A pod that cannot be placed gets its FailedScheduling event, and the PodScheduled=False
 *   condition and nominatedNodeName are patched only when they change (as upstream's updatePod).
 * - Anything that may move a pod back to activeQ (an informer event, a flush, a finished
 *   binding) wakes the loop; no pod waits for a periodic timer that need not fire.
 */
import os from "node:os";
import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import type { Pod, PodCondition } from "kubernetes-types/core/v1.js";
import { isStatusError } from "../api/status.js";
import { formatTime } from "../api/time.js";
import { waitForAPIServer } from "../client/health.js";
import type { RestConfig } from "../client/config.js";
import { EventBroadcaster, type EventRecorder } from "../client/events.js";
import { SharedInformers, type EventHandler, type Informer } from "../client/informer.js";
import type { KindName, ObjectOf } from "../client/kinds.js";
import { LeaderElector } from "../client/leaderelection.js";
import { Client } from "../client/resources.js";
import { errorMessage, type Logger } from "../controllers/context.js";
import type { KubeSchedulerConfiguration } from "./config.js";
import { ActionType } from "./interface.js";
import {
  preemptedEvent,
  preemptionCondition,
  Scheduler,
  type Decision,
  type SchedulerEvent,
} from "./scheduler.js";

/** How often the backoff queue and the unschedulable pods are flushed (upstream's timings). */
export const BACKOFF_FLUSH_INTERVAL_MS = 1000;
export const UNSCHEDULABLE_FLUSH_INTERVAL_MS = 30_000;

export interface RunOptions {
  config: RestConfig;
  schedulerConfig: KubeSchedulerConfiguration;
  leaderElect: boolean;
  leaseDuration: number;
  renewDeadline: number;
  retryPeriod: number;
  leaseNamespace: string;
  leaseName: string;
  log: Logger;
  /** Told when this instance starts and stops leading (for health checks and logs). */
  onLeading?: (leading: boolean) => void;
}

type Failure = Exclude<Decision, { kind: "bind" }>;

/** The scheduler core wired to one API server: informers in, requests out. */
export class SchedulerRunner {
  readonly core: Scheduler;
  readonly informers: SharedInformers;
  readonly broadcaster: EventBroadcaster;
  private readonly recorders = new Map<string, EventRecorder>();
  private wake: (() => void) | undefined;
  /** Bindings and failure writes under way (waited for on stop). */
  private readonly pending = new Set<Promise<void>>();

  constructor(
    readonly client: Client,
    cfg: KubeSchedulerConfiguration,
    private readonly log: Logger,
  ) {
    this.core = new Scheduler({ config: cfg });
    this.informers = new SharedInformers(client, {
      onError: (err) => log.error(`informer: ${errorMessage(err)}`),
    });
    this.broadcaster = new EventBroadcaster(client, {
      onError: (err, e) =>
        log.error(`Unable to write event ${e.reason ?? ""}: ${errorMessage(err)}`),
    });
    for (const p of cfg.profiles)
      this.recorders.set(p.schedulerName, this.broadcaster.newRecorder(p.schedulerName));
    this.registerHandlers();
  }

  /** Wakes the scheduling loop: something may have moved a pod to activeQ. */
  private kick = (): void => {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  };

  private handle<K extends KindName>(
    kind: K,
    h: EventHandler<ObjectOf<K>>,
    fieldSelector?: string,
  ) {
    const informer: Informer<ObjectOf<K>> = this.informers.informer(
      kind,
      fieldSelector ? { fieldSelector } : {},
    );
    const wrap =
      <A extends unknown[]>(f: ((...a: A) => void) | undefined) =>
      (...a: A) => {
        f?.(...a);
        this.kick();
      };
    informer.addEventHandler({ add: wrap(h.add), update: wrap(h.update), delete: wrap(h.delete) });
  }

  private registerHandlers(): void {
    const s = this.core;
    const c = s.cache;
    this.handle(
      "v1/Pod",
      {
        add: (p) => s.onPodAdd(p),
        update: (o, p) => s.onPodUpdate(o, p),
        delete: (p) => s.onPodDelete(p),
      },
      "status.phase!=Succeeded,status.phase!=Failed",
    );
    this.handle("v1/Node", {
      add: (n) => s.onNodeAdd(n),
      update: (o, n) => s.onNodeUpdate(o, n),
      delete: (n) => s.onNodeDelete(n),
    });
    this.handle("v1/Namespace", {
      add: (o) => c.setNamespace(o),
      update: (_, o) => c.setNamespace(o),
      delete: (o) => c.deleteNamespace(o),
    });
    this.handle("v1/PersistentVolumeClaim", {
      add: (o) => {
        c.setPVC(o);
        s.queue.moveAllToActiveOrBackoffQueue(
          { resource: "PersistentVolumeClaim", actionType: ActionType.Add },
          undefined,
          o,
        );
      },
      update: (old, o) => {
        c.setPVC(o);
        s.queue.moveAllToActiveOrBackoffQueue(
          { resource: "PersistentVolumeClaim", actionType: ActionType.Update },
          old,
          o,
        );
      },
      delete: (o) => c.deletePVC(o),
    });
    this.handle("policy/v1/PodDisruptionBudget", {
      add: (o) => c.setPDB(o),
      update: (_, o) => c.setPDB(o),
      delete: (o) => c.deletePDB(o),
    });
    this.handle("v1/Service", {
      add: (o) => c.setService(o),
      update: (_, o) => c.setService(o),
      delete: (o) => c.deleteService(o),
    });
    this.handle("apps/v1/ReplicaSet", {
      add: (o) => c.setReplicaSet(o),
      update: (_, o) => c.setReplicaSet(o),
      delete: (o) => c.deleteReplicaSet(o),
    });
    this.handle("apps/v1/StatefulSet", {
      add: (o) => c.setStatefulSet(o),
      update: (_, o) => c.setStatefulSet(o),
      delete: (o) => c.deleteStatefulSet(o),
    });
    this.handle("v1/ReplicationController", {
      add: (o) => c.setReplicationController(o),
      update: (_, o) => c.setReplicationController(o),
      delete: (o) => c.deleteReplicationController(o),
    });
  }

  /** Runs the informers and the queue's flushes until `signal` aborts. */
  async startInformers(signal: AbortSignal): Promise<void> {
    const backoff = setInterval(() => {
      this.core.queue.flushBackoffQCompleted();
      this.kick();
    }, BACKOFF_FLUSH_INTERVAL_MS);
    const leftover = setInterval(() => {
      this.core.queue.flushUnschedulablePodsLeftover();
      this.kick();
    }, UNSCHEDULABLE_FLUSH_INTERVAL_MS);
    try {
      await this.informers.start(signal);
    } finally {
      clearInterval(backoff);
      clearInterval(leftover);
    }
  }

  /** Schedules pods until `signal` aborts. */
  async scheduleLoop(signal: AbortSignal): Promise<void> {
    signal.addEventListener("abort", this.kick, { once: true });
    while (!signal.aborted) {
      const d = this.core.scheduleOne();
      if (!d) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      if (d.kind === "bind") this.track(this.bind(d));
      else this.track(this.fail(d));
      // Let informer events and binding answers in between cycles.
      await new Promise((r) => setImmediate(r));
    }
    signal.removeEventListener("abort", this.kick);
  }

  private track(p: Promise<void>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  private recorder(pod: Pod): EventRecorder | undefined {
    return this.recorders.get(pod.spec?.schedulerName ?? "default-scheduler");
  }

  private record(obj: Pod, e: SchedulerEvent): void {
    this.recorder(obj)?.event(obj, e.type, e.reason, e.message);
  }

  private pods(pod: Pod) {
    return this.client.resource("v1/Pod", pod.metadata?.namespace ?? "default");
  }

  private async bind(d: Extract<Decision, { kind: "bind" }>): Promise<void> {
    try {
      await this.pods(d.pod).subresource("POST", d.pod.metadata?.name ?? "", "binding", d.binding);
    } catch (err) {
      this.log.error(
        `Error scheduling pod ${d.pod.metadata?.namespace}/${d.pod.metadata?.name}: ${errorMessage(err)}`,
      );
      const f = this.core.bindingFailed(d.pod, err instanceof Error ? err : new Error(String(err)));
      this.kick();
      if (f && f.kind !== "bind") await this.fail(f);
      return;
    }
    this.core.bindingSucceeded(d.pod);
    this.kick();
    this.record(d.pod, d.event);
  }

  /** Preemption writes, the FailedScheduling event and the PodScheduled=False condition. */
  private async fail(d: Failure): Promise<void> {
    const pod = d.pod;
    const schedulerName = pod.spec?.schedulerName ?? "default-scheduler";
    const nominated = d.nominatedNodeName;
    await Promise.all(
      d.victims.map(async (victim) => {
        try {
          await this.patchStatus(victim, preemptionCondition(schedulerName), undefined);
          await this.pods(victim).delete(victim.metadata?.name ?? "");
          this.record(victim, preemptedEvent(pod, nominated ?? ""));
        } catch (err) {
          if (!isStatusError(err) || err.code !== 404)
            this.log.error(
              `Error preempting pod ${victim.metadata?.namespace}/${victim.metadata?.name}: ${errorMessage(err)}`,
            );
        }
      }),
    );
    await Promise.all(
      d.clearNominated.map((p) =>
        this.patchStatus(p, undefined, "").catch((err: unknown) => {
          if (!isStatusError(err) || err.code !== 404)
            this.log.error(`Cannot clear nominatedNodeName: ${errorMessage(err)}`);
        }),
      ),
    );
    this.record(pod, d.event);
    this.log.info(
      `Unable to schedule pod; no fit; waiting pod="${pod.metadata?.namespace}/${pod.metadata?.name}" err="${d.condition.message ?? ""}"`,
    );
    try {
      await this.patchStatus(pod, d.condition, nominated);
    } catch (err) {
      if (!isStatusError(err) || err.code !== 404)
        this.log.error(`Error updating pod ${pod.metadata?.name}: ${errorMessage(err)}`);
    }
  }

  /**
   * A strategic merge patch of the pod's status: the condition (when it differs from the one the
   * pod has; lastTransitionTime moves only when its status does) and nominatedNodeName ("" removes it).
   */
  private async patchStatus(
    pod: Pod,
    condition: PodCondition | undefined,
    nominatedNodeName: string | undefined,
  ): Promise<void> {
    const status: Record<string, unknown> = {};
    if (condition) {
      const old = pod.status?.conditions?.find((c) => c.type === condition.type);
      const same =
        old &&
        old.status === condition.status &&
        (old.reason ?? "") === (condition.reason ?? "") &&
        (old.message ?? "") === (condition.message ?? "");
      if (!same) {
        status.conditions = [
          {
            ...condition,
            lastProbeTime: null,
            lastTransitionTime:
              old && old.status === condition.status && old.lastTransitionTime
                ? old.lastTransitionTime
                : formatTime(),
          },
        ];
      }
    }
    if (nominatedNodeName !== undefined)
      status.nominatedNodeName = nominatedNodeName === "" ? null : nominatedNodeName;
    if (Object.keys(status).length === 0) return;
    await this.pods(pod).patch(
      pod.metadata?.name ?? "",
      "strategic",
      { status },
      { subresource: "status" },
    );
  }

  /** Waits for the writes under way and the events queued. */
  async drain(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending]);
    await this.broadcaster.shutdown();
  }
}

/**
 * Runs the scheduler until `signal` aborts; answers false when it lost leadership (upstream
 * exits with an error then).
 */
export async function runScheduler(o: RunOptions, signal: AbortSignal): Promise<boolean> {
  setMaxListeners(0, signal);
  const client = new Client(o.config);
  const runner = new SchedulerRunner(client, o.schedulerConfig, o.log);
  const stopInformers = new AbortController();
  const onAbort = () => stopInformers.abort();
  signal.addEventListener("abort", onAbort, { once: true });
  let informers: Promise<void> | undefined;
  try {
    await waitForAPIServer(
      client,
      (m) => o.log.error(`Failed to reach the API server: ${m}`),
      signal,
    );
    if (signal.aborted) return true;
    informers = runner.startInformers(stopInformers.signal);
    if (!(await runner.informers.waitForCacheSync(signal))) return true;
    o.log.info("Caches are synced");
    if (!o.leaderElect) {
      o.onLeading?.(true);
      await runner.scheduleLoop(signal);
      return true;
    }
    const identity = `${os.hostname()}_${randomUUID()}`;
    let led = false;
    const elector = new LeaderElector({
      client,
      namespace: o.leaseNamespace,
      name: o.leaseName,
      identity,
      leaseDuration: o.leaseDuration,
      renewDeadline: o.renewDeadline,
      retryPeriod: o.retryPeriod,
      releaseOnCancel: true,
      recorder: runner.broadcaster.newRecorder(
        o.schedulerConfig.profiles[0]?.schedulerName ?? "default-scheduler",
      ),
      onStartedLeading: async (leading) => {
        led = true;
        o.log.info(`successfully acquired lease ${o.leaseNamespace}/${o.leaseName}`);
        o.onLeading?.(true);
        try {
          await runner.scheduleLoop(leading);
        } finally {
          o.onLeading?.(false);
        }
      },
      onNewLeader: (holder) => {
        if (holder && holder !== identity) o.log.info(`new leader elected: ${holder}`);
      },
      onError: (err) => o.log.error(`leader election: ${errorMessage(err)}`),
    });
    o.log.info(`attempting to acquire leader lease ${o.leaseNamespace}/${o.leaseName}...`);
    await elector.start(signal);
    if (signal.aborted) return true;
    if (led) o.log.error("Leaderelection lost");
    return !led;
  } finally {
    signal.removeEventListener("abort", onAbort);
    stopInformers.abort();
    await informers;
    await runner.drain();
    client.close();
  }
}
