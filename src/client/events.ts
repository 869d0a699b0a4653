/**
 * Recording core/v1 Events as client-go's tools/record does.
 *
 * `recorder.event(obj, "Normal", reason, message)` never blocks and never throws: the Event is
 * queued (up to 1,000; more are dropped) and one sender writes the queue in order. Before writing,
 * the correlator (events_cache.go) decides what reaches the server:
 *
 * - spam filter: per source and object a token bucket of 25 events refilled at one per 5 minutes;
 *   events over it are dropped;
 * - aggregation: when 10 events with the same source, object, type and reason but different
 *   messages arrive within 10 minutes, further ones become one Event whose message starts with
 *   "(combined from similar events): ";
 * - deduplication: an Event identical to one already written (same source, object, type, reason
 *   and message) is not created again: the existing one gets `count` incremented and
 *   `lastTimestamp`/`message` updated with a strategic merge PATCH (or is created anew if it has
 *   expired from the server).
 *
 * A write the server rejects with a Status is not retried; a transport failure is retried up to
 * 12 times, 10 s apart (the first wait random), as upstream.
 */

import { randomUUID } from "node:crypto";
import type { Event, EventSource, ObjectReference } from "kubernetes-types/core/v1.js";
import { isStatusError } from "../api/status.js";
import { formatTime } from "../api/time.js";
import { realClock, sleep, type Clock } from "./clock.js";
import type { KObject } from "./kinds.js";
import { TokenBucket } from "./ratelimit.js";
import type { Client } from "./resources.js";

export type EventType = "Normal" | "Warning";

const MAX_LRU_ENTRIES = 4096;
const AGGREGATE_MAX_EVENTS = 10;
const AGGREGATE_INTERVAL_MS = 600_000;
const SPAM_BURST = 25;
const SPAM_QPS = 1 / 300;
const MAX_QUEUED_EVENTS = 1000;
const MAX_TRIES = 12;
const SLEEP_BETWEEN_TRIES = 10_000;

/** A Map kept to `size` entries, evicting the least recently used. */
class Lru<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly size: number) {}
  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  set(key: string, v: V): void {
    this.map.delete(key);
    this.map.set(key, v);
    if (this.map.size > this.size) this.map.delete(this.map.keys().next().value!);
  }
}

function refKey(e: Event): string[] {
  const o = e.involvedObject;
  return [o.kind ?? "", o.namespace ?? "", o.name ?? ""];
}

/** Source, object, type, reason and message: identical events. */
function eventKey(e: Event): string {
  const o = e.involvedObject;
  return [
    e.source?.component ?? "",
    e.source?.host ?? "",
    ...refKey(e),
    o.fieldPath ?? "",
    o.uid ?? "",
    o.apiVersion ?? "",
    e.type ?? "",
    e.reason ?? "",
    e.message ?? "",
  ].join("\x00");
}

function spamKey(e: Event): string {
  const o = e.involvedObject;
  return [
    e.source?.component ?? "",
    e.source?.host ?? "",
    ...refKey(e),
    o.uid ?? "",
    o.apiVersion ?? "",
    e.type ?? "",
  ].join("\x00");
}

function aggregateKey(e: Event): string {
  const o = e.involvedObject;
  return [
    e.source?.component ?? "",
    e.source?.host ?? "",
    ...refKey(e),
    o.uid ?? "",
    o.apiVersion ?? "",
    e.type ?? "",
    e.reason ?? "",
    e.reportingComponent ?? "",
    e.reportingInstance ?? "",
  ].join("\x00");
}

export interface CorrelatorOptions {
  clock?: Clock;
  spamBurst?: number;
  spamQPS?: number;
  maxEvents?: number;
  maxIntervalMs?: number;
}

export interface CorrelateResult {
  event: Event;
  /** A strategic merge patch for an Event already written; undefined for a new Event. */
  patch?: { count: number; lastTimestamp: string; message?: string };
  skip: boolean;
}

/** client-go's EventCorrelator: spam filter, aggregator and deduplicating logger. */
export class EventCorrelator {
  private readonly clock: Clock;
  private readonly spam = new Lru<TokenBucket>(MAX_LRU_ENTRIES);
  private readonly aggregates = new Lru<{ localKeys: Set<string>; last: number }>(MAX_LRU_ENTRIES);
  private readonly observed = new Lru<{
    count: number;
    firstTimestamp: string;
    name: string;
    resourceVersion: string;
  }>(MAX_LRU_ENTRIES);
  private readonly maxEvents: number;
  private readonly maxIntervalMs: number;
  private readonly spamBurst: number;
  private readonly spamQPS: number;

  constructor(opts: CorrelatorOptions = {}) {
    this.clock = opts.clock ?? realClock;
    this.maxEvents = opts.maxEvents ?? AGGREGATE_MAX_EVENTS;
    this.maxIntervalMs = opts.maxIntervalMs ?? AGGREGATE_INTERVAL_MS;
    this.spamBurst = opts.spamBurst ?? SPAM_BURST;
    this.spamQPS = opts.spamQPS ?? SPAM_QPS;
  }

  correlate(newEvent: Event): CorrelateResult {
    const [aggregated, key] = this.aggregate(newEvent);
    const { event, patch } = this.observe(aggregated, key);
    if (this.filtered(event)) return { event, skip: true };
    return patch ? { event, patch, skip: false } : { event, skip: false };
  }

  /** Remembers what the server answered, so the next duplicate patches the right Event. */
  updateState(event: Event): void {
    this.observed.set(eventKey(event), {
      count: event.count ?? 1,
      firstTimestamp: event.firstTimestamp ?? "",
      name: event.metadata?.name ?? "",
      resourceVersion: event.metadata?.resourceVersion ?? "",
    });
  }

  private filtered(event: Event): boolean {
    const key = spamKey(event);
    let bucket = this.spam.get(key);
    if (!bucket) bucket = new TokenBucket(this.spamQPS, this.spamBurst, this.clock);
    const accepted = bucket.tryAccept();
    this.spam.set(key, bucket);
    return !accepted;
  }

  private aggregate(e: Event): [Event, string] {
    const now = this.clock.now();
    const key = aggregateKey(e);
    let record = this.aggregates.get(key);
    if (!record || now - record.last > this.maxIntervalMs)
      record = { localKeys: new Set(), last: 0 };
    record.localKeys.add(e.message ?? "");
    record.last = now;
    this.aggregates.set(key, record);
    if (record.localKeys.size < this.maxEvents) return [e, eventKey(e)];
    // Keep the set from growing: drop one message, as upstream's PopAny.
    const any = record.localKeys.values().next().value;
    if (any !== undefined) record.localKeys.delete(any);
    const t = formatTime(new Date(now));
    const combined: Event = {
      metadata: {
        name: eventName(e.involvedObject.name ?? "", nanos(now)),
        namespace: e.metadata?.namespace,
      },
      count: 1,
      firstTimestamp: t,
      involvedObject: e.involvedObject,
      lastTimestamp: t,
      message: `(combined from similar events): ${e.message ?? ""}`,
      type: e.type,
      reason: e.reason,
      source: e.source,
    };
    return [combined, key];
  }

  private observe(e: Event, key: string): { event: Event; patch?: CorrelateResult["patch"] } {
    const last = this.observed.get(key);
    const event: Event = {
      ...e,
      metadata:
        last && last.count > 0
          ? { ...e.metadata, name: last.name, resourceVersion: last.resourceVersion }
          : { ...e.metadata },
    };
    let patch: CorrelateResult["patch"];
    if (last && last.count > 0) {
      event.firstTimestamp = last.firstTimestamp;
      event.count = last.count + 1;
      patch = { count: event.count, lastTimestamp: event.lastTimestamp ?? "" };
      if (event.message) patch.message = event.message;
    }
    this.observed.set(key, {
      count: event.count ?? 1,
      firstTimestamp: event.firstTimestamp ?? "",
      name: event.metadata?.name ?? "",
      resourceVersion: event.metadata?.resourceVersion ?? "",
    });
    return patch ? { event, patch } : { event };
  }
}

let lastNanos = 0n;

/** Nanoseconds since the epoch for `ms`, strictly increasing within this process. */
function nanos(ms: number): bigint {
  let n = BigInt(Math.floor(ms)) * 1_000_000n;
  if (n <= lastNanos) n = lastNanos + 1n;
  lastNanos = n;
  return n;
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** `<object name>.<nanoseconds in hex>`, or a UUID when that is not a valid name. */
function eventName(refName: string, n: bigint): string {
  const name = `${refName}.${n.toString(16)}`;
  return name.length <= 253 && DNS_SUBDOMAIN.test(name) ? name : randomUUID();
}

/** The reference an Event makes to `obj` (client-go's ref.GetReference). */
export function objectReference(obj: KObject | ObjectReference): ObjectReference {
  if (!("metadata" in obj) || !obj.metadata) return obj as ObjectReference;
  const m = obj.metadata;
  const ref: ObjectReference = {};
  if (obj.kind) ref.kind = obj.kind;
  if (m.namespace) ref.namespace = m.namespace;
  if (m.name) ref.name = m.name;
  if (m.uid) ref.uid = m.uid;
  if (obj.apiVersion) ref.apiVersion = obj.apiVersion;
  if (m.resourceVersion) ref.resourceVersion = m.resourceVersion;
  return ref;
}

export interface EventBroadcasterOptions {
  clock?: Clock;
  correlator?: CorrelatorOptions;
  /** Wait between tries of a failed write (10 s as upstream). */
  retryInterval?: number;
  onError?: (err: unknown, event: Event) => void;
}

/**
 * The queue and sender shared by the recorders of one process (client-go's EventBroadcaster
 * recording to the API sink), with one correlator for all of them.
 */
export class EventBroadcaster {
  private readonly clock: Clock;
  readonly correlator: EventCorrelator;
  private readonly queue: Event[] = [];
  private sending: Promise<void> | undefined;
  private stopped = false;
  private readonly abort = new AbortController();

  constructor(
    readonly client: Client,
    private readonly opts: EventBroadcasterOptions = {},
  ) {
    this.clock = opts.clock ?? realClock;
    this.correlator = new EventCorrelator({ clock: this.clock, ...opts.correlator });
  }

  /** A recorder writing Events with `source.component` (and `source.host`). */
  newRecorder(component: string, host = ""): EventRecorder {
    return new EventRecorder(this, { component, ...(host ? { host } : {}) }, this.clock);
  }

  /** Queues an Event; drops it (answering false) when 1,000 are already waiting or shut down. */
  enqueue(event: Event): boolean {
    if (this.stopped || this.queue.length >= MAX_QUEUED_EVENTS) return false;
    this.queue.push(event);
    this.sending ??= this.drain().finally(() => (this.sending = undefined));
    return true;
  }

  /** Resolves once every Event queued so far has been written (or given up on). */
  async flush(): Promise<void> {
    while (this.sending) await this.sending;
  }

  /** Stops accepting Events, writes what is queued, abandons retries. */
  async shutdown(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    await this.flush();
  }

  private async drain(): Promise<void> {
    for (let e = this.queue.shift(); e; e = this.queue.shift()) await this.send(e);
  }

  private async send(event: Event): Promise<void> {
    const result = this.correlator.correlate(event);
    if (result.skip) return;
    const retryInterval = this.opts.retryInterval ?? SLEEP_BETWEEN_TRIES;
    for (let tries = 1; ; tries++) {
      try {
        const written = await this.write(result);
        this.correlator.updateState(written);
        return;
      } catch (err) {
        this.opts.onError?.(err, result.event);
        if (isStatusError(err) || tries >= MAX_TRIES || this.abort.signal.aborted) return;
        const wait = tries === 1 ? retryInterval * Math.random() : retryInterval;
        await sleep(this.clock, wait, this.abort.signal);
      }
    }
  }

  private async write(r: CorrelateResult): Promise<Event> {
    const ns = r.event.metadata?.namespace ?? "default";
    const events = this.client.resource("v1/Event", ns);
    if (r.patch) {
      try {
        return await events.patch(r.event.metadata!.name!, "strategic", r.patch);
      } catch (err) {
        if (!isStatusError(err) || err.code !== 404) throw err;
      }
    }
    // eslint-disable-next-line @typescript-eslint/no-unused-vars
    const { resourceVersion, ...metadata } = r.event.metadata ?? {};
    return events.create({ ...r.event, metadata });
  }
}

/** Records Events about objects on behalf of one component (see the module comment). */
export class EventRecorder {
  constructor(
    private readonly broadcaster: EventBroadcaster,
    readonly source: EventSource,
    private readonly clock: Clock,
  ) {}

  /** Records an Event of `type` about `obj` ("Normal" or "Warning"; others are ignored). */
  event(obj: KObject | ObjectReference, type: EventType, reason: string, message: string): void {
    this.annotatedEvent(obj, undefined, type, reason, message);
  }

  annotatedEvent(
    obj: KObject | ObjectReference,
    annotations: Record<string, string> | undefined,
    type: EventType,
    reason: string,
    message: string,
  ): void {
    if (type !== "Normal" && type !== "Warning") return;
    const ref = objectReference(obj);
    const now = this.clock.now();
    const t = formatTime(new Date(now));
    const event: Event = {
      apiVersion: "v1",
      kind: "Event",
      metadata: {
        name: eventName(ref.name ?? "", nanos(now)),
        namespace: ref.namespace || "default",
        ...(annotations ? { annotations } : {}),
      },
      involvedObject: ref,
      reason,
      message,
      firstTimestamp: t,
      lastTimestamp: t,
      count: 1,
      type,
      source: this.source,
      reportingComponent: this.source.component ?? "",
      reportingInstance: this.source.host ?? "",
    };
    this.broadcaster.enqueue(event);
  }
}
