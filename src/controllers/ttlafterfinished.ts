/**
 * The TTL-after-finished controller (upstream's pkg/controller/ttlafterfinished): a finished Job
 * (Complete or Failed) with `spec.ttlSecondsAfterFinished` is deleted that many seconds after
 * the transition time of its finishing condition, with foreground propagation and a uid
 * precondition. Before deleting, the TTL is checked again on a fresh read, so a TTL changed
 * meanwhile is honoured.
 */

import type { Job } from "kubernetes-types/batch/v1.js";
import { isStatusError } from "../api/status.js";
import type { Clock } from "../client/clock.js";
import { controller } from "../client/controller.js";
import type { ControllerDescriptor } from "./context.js";
import { errorMessage } from "./context.js";

/** A finished Job with a TTL. */
export function needsCleanup(job: Job): boolean {
  const ttl = job.spec?.ttlSecondsAfterFinished;
  return (
    ttl !== undefined &&
    ttl !== null &&
    !!job.status?.conditions?.some(
      (c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True",
    )
  );
}

/** When the Job finished: its Complete or Failed condition's transition time. */
export function jobFinishTime(job: Job): number {
  for (const c of job.status?.conditions ?? []) {
    if ((c.type === "Complete" || c.type === "Failed") && c.status === "True") {
      const t = c.lastTransitionTime ? Date.parse(c.lastTransitionTime) : NaN;
      if (!Number.isFinite(t))
        throw new Error(
          `unable to find the time when the Job ${job.metadata?.namespace}/${job.metadata?.name} finished`,
        );
      return t;
    }
  }
  throw new Error(
    `unable to find the status of the finished Job ${job.metadata?.namespace}/${job.metadata?.name}`,
  );
}

/**
 * What to do with a Job at `now`: nothing (not finished, no TTL, being deleted), wait `after`
 * ms, or delete (expired at `expiredAt`). Throws when a finished Job has no finish time.
 */
export function ttlAction(
  job: Job,
  now: number,
): { type: "none" } | { type: "wait"; after: number } | { type: "delete"; expiredAt: number } {
  if (job.metadata?.deletionTimestamp || !needsCleanup(job)) return { type: "none" };
  const expireAt = jobFinishTime(job) + job.spec!.ttlSecondsAfterFinished! * 1000;
  const remaining = expireAt - now;
  return remaining <= 0
    ? { type: "delete", expiredAt: expireAt }
    : { type: "wait", after: remaining };
}

export interface TTLAfterFinishedOptions {
  clock?: Clock;
}

export function ttlAfterFinishedDescriptorWith(
  o: TTLAfterFinishedOptions = {},
): ControllerDescriptor {
  return {
    name: "ttl-after-finished",
    aliases: ["ttl-after-finished-controller"],
    serviceAccount: "ttl-after-finished-controller",
    async start(ctx, signal) {
      const { client, informers } = ctx;
      const clock = o.clock ?? ctx.clock;
      const jobs = informers.informer("batch/v1/Job");
      const jobsClient = client.resource("batch/v1/Job");
      const c = controller({
        name: "ttl-after-finished",
        informers,
        for: "batch/v1/Job",
        workers: ctx.options.concurrency["ttl-after-finished"] ?? 5,
        clock: ctx.clock,
        onError: (err, req) =>
          ctx.log.error(`error cleaning up Job ${req.key}, will retry: ${errorMessage(err)}`),
        reconcile: async ({ namespace, name }) => {
          const job = jobs.store.getByName(namespace, name);
          if (!job) return;
          const first = ttlAction(job, clock.now());
          if (first.type === "wait") return { requeueAfter: first.after };
          if (first.type === "none") return;
          let fresh: Job;
          try {
            fresh = await jobsClient.namespace(namespace).get(name);
          } catch (err) {
            if (isStatusError(err, "NotFound")) return;
            throw err;
          }
          const again = ttlAction(fresh, clock.now());
          if (again.type === "wait") return { requeueAfter: again.after };
          if (again.type === "none") return;
          try {
            await jobsClient.namespace(namespace).delete(name, {
              propagationPolicy: "Foreground",
              preconditions: { uid: fresh.metadata?.uid },
            });
          } catch (err) {
            if (isStatusError(err, "NotFound")) return;
            throw err;
          }
          return;
        },
      });
      await c.start(signal);
    },
  };
}

export const ttlAfterFinishedDescriptor = ttlAfterFinishedDescriptorWith();
