/**
 * Leader election on a coordination.k8s.io/v1 Lease, with the algorithm and timings of
 * client-go's tools/leaderelection:
 *
 * - A candidate tries to acquire every `retryPeriod` (plus up to 1.2x jitter). It takes the lease
 *   when it does not exist, when its holder is empty (released), or when the candidate has not
 *   seen the lease record change for `leaseDurationSeconds` of its own clock (the holder stopped
 *   renewing). Taking it over counts one more `leaseTransitions`.
 * - The leader renews every `retryPeriod`; if it cannot renew within `renewDeadline` it stops
 *   leading. Every write carries the resourceVersion last read (optimistic concurrency), so of
 *   two candidates racing for an expired lease only one wins.
 * - On losing the lease (or when `start`'s signal aborts) the leader's signal aborts;
 *   with `releaseOnCancel` the lease is given back (holder emptied, duration 1 s) so another
 *   candidate takes over at its next retry instead of after the lease expires.
 *
 * Safety rests on `leaseDuration > renewDeadline`: a leader that cannot renew stops before
 * anyone else may consider the lease expired (clock skew aside, as upstream).
 */

import type { Lease, LeaseSpec } from "kubernetes-types/coordination/v1.js";
import { isStatusError } from "../api/status.js";
import { realClock, sleep, type Clock } from "./clock.js";
import type { EventRecorder } from "./events.js";
import type { Client, ResourceClient } from "./resources.js";

export const JITTER_FACTOR = 1.2;

/** The defaults of the upstream components' --leader-elect-* flags, in milliseconds. */
export const DEFAULT_LEASE_DURATION = 15_000;
export const DEFAULT_RENEW_DEADLINE = 10_000;
export const DEFAULT_RETRY_PERIOD = 2_000;

export interface LeaderElectionConfig {
  client: Client;
  /** The Lease: kube-system/kube-controller-manager for the controller manager. */
  namespace: string;
  name: string;
  /** This candidate's identity; upstream uses `<hostname>_<uuid>`. */
  identity: string;
  leaseDuration?: number;
  renewDeadline?: number;
  retryPeriod?: number;
  /** Give the lease back when stopping (the scheduler does; the controller manager does not). */
  releaseOnCancel?: boolean;
  /** Runs once this candidate leads; `signal` aborts when it stops leading. */
  onStartedLeading?: (signal: AbortSignal) => void | Promise<void>;
  /** Runs when `start` returns, whether or not this candidate ever led (as upstream). */
  onStoppedLeading?: () => void;
  /** Runs when the observed holder changes (including to this candidate). */
  onNewLeader?: (identity: string) => void;
  /** Records "became leader" / "stopped leading" Events on the Lease, as upstream. */
  recorder?: EventRecorder;
  clock?: Clock;
  onError?: (err: unknown) => void;
}

interface LeaderElectionRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime: number;
  renewTime: number;
  leaderTransitions: number;
}

/** metav1.MicroTime: RFC 3339 in UTC with microseconds. */
export function formatMicroTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

function parseTime(s: string | undefined): number {
  const t = s ? Date.parse(s) : NaN;
  return Number.isFinite(t) ? t : 0;
}

function recordFromLease(lease: Lease): LeaderElectionRecord {
  const spec = lease.spec ?? {};
  return {
    holderIdentity: spec.holderIdentity ?? "",
    leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
    acquireTime: parseTime(spec.acquireTime),
    renewTime: parseTime(spec.renewTime),
    leaderTransitions: spec.leaseTransitions ?? 0,
  };
}

function specFromRecord(r: LeaderElectionRecord): LeaseSpec {
  return {
    holderIdentity: r.holderIdentity,
    leaseDurationSeconds: r.leaseDurationSeconds,
    acquireTime: formatMicroTime(r.acquireTime),
    renewTime: formatMicroTime(r.renewTime),
    leaseTransitions: r.leaderTransitions,
  };
}

export class LeaderElector {
  private readonly leases: ResourceClient<Lease>;
  private readonly clock: Clock;
  readonly leaseDuration: number;
  readonly renewDeadline: number;
  readonly retryPeriod: number;
  /** The lease as last read or written (its resourceVersion guards the next write). */
  private lease: Lease | undefined;
  private observedRecord: LeaderElectionRecord | undefined;
  private observedRaw = "";
  /** When (this clock) the record last changed: the lease expires leaseDuration after it. */
  private observedTime = 0;
  private reportedLeader = "";

  constructor(private readonly config: LeaderElectionConfig) {
    this.leaseDuration = config.leaseDuration ?? DEFAULT_LEASE_DURATION;
    this.renewDeadline = config.renewDeadline ?? DEFAULT_RENEW_DEADLINE;
    this.retryPeriod = config.retryPeriod ?? DEFAULT_RETRY_PERIOD;
    if (this.leaseDuration <= this.renewDeadline)
      throw new Error("leaseDuration must be greater than renewDeadline");
    if (this.renewDeadline <= JITTER_FACTOR * this.retryPeriod)
      throw new Error("renewDeadline must be greater than retryPeriod*JitterFactor");
    if (this.leaseDuration < 1000) throw new Error("leaseDuration must be at least one second");
    if (this.retryPeriod < 1) throw new Error("retryPeriod must be greater than zero");
    if (!config.identity) throw new Error("Lock identity is empty");
    this.clock = config.clock ?? realClock;
    this.leases = config.client.resource("coordination.k8s.io/v1/Lease", config.namespace);
  }

  /** True while this candidate holds an unexpired lease it wrote. */
  isLeader(): boolean {
    return this.observedRecord?.holderIdentity === this.config.identity;
  }

  /** The holder last observed ("" if none). */
  getLeader(): string {
    return this.observedRecord?.holderIdentity ?? "";
  }

  /**
   * Campaigns until leading, leads until the lease is lost or `signal` aborts, then returns
   * (releasing the lease with `releaseOnCancel`). Start a new elector to campaign again.
   */
  async start(signal: AbortSignal): Promise<void> {
    try {
      if (!(await this.acquire(signal))) return;
      const leading = new AbortController();
      const stop = () => leading.abort();
      signal.addEventListener("abort", stop, { once: true });
      const work = (async () => this.config.onStartedLeading?.(leading.signal))().catch((err) =>
        this.config.onError?.(err),
      );
      try {
        await this.renew(leading.signal);
      } finally {
        signal.removeEventListener("abort", stop);
        leading.abort();
        this.recordEvent("stopped leading");
        if (this.config.releaseOnCancel) await this.release();
        await work;
      }
    } finally {
      this.config.onStoppedLeading?.();
    }
  }

  private async acquire(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      const ok = await this.tryAcquireOrRenew(signal);
      this.maybeReportTransition();
      if (ok) {
        this.recordEvent("became leader");
        return true;
      }
      const wait = this.retryPeriod * (1 + Math.random() * JITTER_FACTOR);
      await sleep(this.clock, wait, signal);
    }
    return false;
  }

  /** Renews every retryPeriod until a renewal fails for renewDeadline or `signal` aborts. */
  private async renew(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const deadline = this.clock.now() + this.renewDeadline;
      let renewed = false;
      for (;;) {
        if (signal.aborted) return;
        const attempt = AbortSignal.any([signal, AbortSignal.timeout(this.renewDeadline)]);
        renewed = await this.tryAcquireOrRenew(attempt);
        this.maybeReportTransition();
        if (renewed || this.clock.now() + this.retryPeriod > deadline) break;
        await sleep(this.clock, this.retryPeriod, signal);
      }
      if (!renewed) {
        this.config.onError?.(
          new Error(
            `failed to renew lease ${this.config.namespace}/${this.config.name}: timed out`,
          ),
        );
        return;
      }
      await sleep(this.clock, this.retryPeriod, signal);
    }
  }

  private isLeaseValid(now: number): boolean {
    return this.observedTime + (this.observedRecord?.leaseDurationSeconds ?? 0) * 1000 > now;
  }

  private setObserved(record: LeaderElectionRecord, lease: Lease): void {
    this.observedRecord = record;
    this.observedRaw = JSON.stringify(lease.spec ?? {});
    this.observedTime = this.clock.now();
    this.lease = lease;
  }

  private getLease(signal: AbortSignal): Promise<Lease> {
    return this.leases.rest.request<Lease>(
      "GET",
      this.leases.path(this.config.namespace, this.config.name),
      { signal },
    );
  }

  private async update(record: LeaderElectionRecord, signal: AbortSignal): Promise<Lease> {
    if (!this.lease) throw new Error("lease not initialized, call get or create first");
    const lease: Lease = { ...this.lease, spec: specFromRecord(record) };
    return this.leases.rest.request<Lease>(
      "PUT",
      this.leases.path(this.config.namespace, this.config.name),
      { body: lease, signal },
    );
  }

  /** One attempt: answers whether this candidate holds the lease afterwards. */
  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const now = this.clock.now();
    const record: LeaderElectionRecord = {
      holderIdentity: this.config.identity,
      leaseDurationSeconds: Math.floor(this.leaseDuration / 1000),
      renewTime: now,
      acquireTime: now,
      leaderTransitions: 0,
    };

    // Fast path: the leader renews with the lease it last wrote.
    if (this.isLeader() && this.isLeaseValid(now) && this.observedRecord) {
      record.acquireTime = this.observedRecord.acquireTime;
      record.leaderTransitions = this.observedRecord.leaderTransitions;
      try {
        const lease = await this.update(record, signal);
        this.setObserved(record, lease);
        return true;
      } catch {
        // fall back to reading the lease
      }
    }

    let current: Lease;
    try {
      current = await this.getLease(signal);
    } catch (err) {
      if (!isStatusError(err) || err.code !== 404) {
        this.config.onError?.(err);
        return false;
      }
      try {
        const created = await this.leases.rest.request<Lease>(
          "POST",
          this.leases.path(this.config.namespace),
          {
            body: {
              apiVersion: "coordination.k8s.io/v1",
              kind: "Lease",
              metadata: { name: this.config.name, namespace: this.config.namespace },
              spec: specFromRecord(record),
            },
            signal,
          },
        );
        this.setObserved(record, created);
        return true;
      } catch (createErr) {
        this.config.onError?.(createErr);
        return false;
      }
    }

    this.lease = current;
    const old = recordFromLease(current);
    const raw = JSON.stringify(current.spec ?? {});
    if (raw !== this.observedRaw) {
      this.observedRecord = old;
      this.observedRaw = raw;
      this.observedTime = this.clock.now();
    }
    if (old.holderIdentity && this.isLeaseValid(now) && !this.isLeader()) return false;

    if (this.isLeader()) {
      record.acquireTime = old.acquireTime;
      record.leaderTransitions = old.leaderTransitions;
    } else {
      record.leaderTransitions = old.leaderTransitions + 1;
    }
    try {
      const lease = await this.update(record, signal);
      this.setObserved(record, lease);
      return true;
    } catch (err) {
      if (!isStatusError(err, "Conflict")) this.config.onError?.(err);
      return false;
    }
  }

  /** Gives the lease back: empty holder, one-second duration (upstream's release). */
  private async release(): Promise<boolean> {
    if (!this.isLeader() || !this.observedRecord) return true;
    const now = this.clock.now();
    const record: LeaderElectionRecord = {
      holderIdentity: "",
      leaseDurationSeconds: 1,
      renewTime: now,
      acquireTime: now,
      leaderTransitions: this.observedRecord.leaderTransitions,
    };
    const signal = AbortSignal.timeout(this.renewDeadline);
    // A renewal cancelled on its way may still have reached the server and moved the lease's
    // resourceVersion: on a conflict, read the lease again and release it if it is still ours.
    for (let attempt = 0; ; attempt++) {
      try {
        const lease = await this.update(record, signal);
        this.setObserved(record, lease);
        return true;
      } catch (err) {
        if (!isStatusError(err, "Conflict") || attempt >= 2) {
          this.config.onError?.(err);
          return false;
        }
      }
      try {
        const current = await this.getLease(signal);
        if (current.spec?.holderIdentity !== this.config.identity) return true;
        this.lease = current;
        record.leaderTransitions = recordFromLease(current).leaderTransitions;
      } catch (err) {
        this.config.onError?.(err);
        return false;
      }
    }
  }

  private maybeReportTransition(): void {
    const holder = this.observedRecord?.holderIdentity ?? "";
    if (holder === this.reportedLeader) return;
    this.reportedLeader = holder;
    if (this.config.onNewLeader) {
      const cb = this.config.onNewLeader;
      queueMicrotask(() => cb(holder));
    }
  }

  private recordEvent(what: string): void {
    if (!this.config.recorder || !this.lease?.metadata) return;
    const subject = {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: this.lease.metadata,
    };
    this.config.recorder.event(
      subject,
      "Normal",
      "LeaderElection",
      `${this.config.identity} ${what}`,
    );
  }
}
