/**
 * The watcher: list-then-watch of one resource as an explicit state machine, exposed as an
 * `AsyncIterable` of events that let a consumer rebuild its cache atomically.
 *
 *   empty ──init──▶ listing (one page per step) ──initDone──▶ listed ──▶ watching
 *     ▲                                                         ▲           │
 *     └──────────── 410 Gone/Expired (history compacted) ───────┼───────────┤
 *                                                               └─ stream ends, or an error
 *                                                                  (after a back-off)
 *
 * Events: `init` starts a new snapshot, `initApply` carries one of its objects, `initDone` ends it
 * (everything not applied since `init` is gone); then `apply` (added or changed) and `delete`
 * (with the object's last state) follow the change stream. After a 410 the watcher lists again
 * and starts over with `init`, so a consumer that buffers between `init` and `initDone` replaces
 * its state in one step and never sees a half-built cache.
 *
 * With `initialEvents: "stream"` the snapshot comes from a watch with `sendInitialEvents=true`
 * (its ADDED events up to the bookmark annotated `k8s.io/initial-events-end`) instead of a list.
 *
 * Errors never end the iteration: they go to `onError` and the watcher backs off (client-go's
 * reflector back-off: 800 ms doubling to 30 s, jittered, reset by progress). The iteration ends
 * when `signal` aborts or the consumer stops iterating; either closes the open request.
 */

import { isStatusError, StatusError, type Status } from "../api/status.js";
import { realClock, sleep, type Clock } from "./clock.js";
import type { KObject } from "./kinds.js";
import type { WatchEvent } from "./rest.js";
import type { List, ListOptions, WatchOptions } from "./resources.js";

export type WatcherEvent<T> =
  | { type: "init" }
  | { type: "initApply"; object: T }
  | { type: "initDone"; resourceVersion: string }
  | { type: "apply"; object: T }
  | { type: "delete"; object: T };

/** What the watcher lists and watches; a `ResourceClient` is one. */
export interface ListerWatcher<T> {
  list(opts: ListOptions, signal?: AbortSignal): Promise<List<T>>;
  watch(opts: WatchOptions, signal: AbortSignal): Promise<AsyncIterable<WatchEvent<T>>>;
}

export type WatcherPhase = "empty" | "listing" | "streaming" | "listed" | "watching";

export interface WatcherOptions {
  labelSelector?: string;
  fieldSelector?: string;
  /** Items per list page; 500 as client-go's pager. 0 lists in one request. */
  pageSize?: number;
  /** How the snapshot is taken: a paginated list (default) or a watch with initial events. */
  initialEvents?: "list" | "stream";
  /** Seconds each watch request asks the server to keep it open; 5-10 minutes, random. */
  watchTimeoutSeconds?: () => number;
  backoff?: Backoff;
  clock?: Clock;
  onError?: (err: unknown) => void;
}

/** Exponential back-off with jitter, reset when no failure was seen for `resetAfter`. */
export class Backoff {
  private current = 0;
  private lastFailure = -Infinity;

  constructor(
    readonly initial = 800,
    readonly max = 30_000,
    readonly factor = 2,
    readonly jitter = 1.0,
    readonly resetAfter = 120_000,
    private readonly clock: Clock = realClock,
    private readonly random: () => number = Math.random,
  ) {}

  /** The next wait in milliseconds. */
  next(): number {
    const now = this.clock.now();
    if (now - this.lastFailure > this.resetAfter) this.current = 0;
    this.lastFailure = now;
    this.current =
      this.current === 0 ? this.initial : Math.min(this.current * this.factor, this.max);
    return this.current * (1 + this.random() * this.jitter);
  }

  reset(): void {
    this.current = 0;
  }
}

const INITIAL_EVENTS_END = "k8s.io/initial-events-end";

function isGone(err: unknown): boolean {
  return isStatusError(err) && err.code === 410;
}

function statusOf(obj: unknown): StatusError {
  const s = (obj ?? {}) as Partial<Status>;
  return new StatusError(
    s.code ?? 500,
    s.reason ?? "InternalError",
    s.message ?? "watch error",
    s.details,
  );
}

/**
 * Lists and watches `source` until `signal` aborts. The returned object is iterable once;
 * `phase` tells where the state machine is (for readiness and tests).
 */
export class Watcher<T extends KObject> implements AsyncIterable<WatcherEvent<T>> {
  phase: WatcherPhase = "empty";
  /** The resourceVersion the next watch resumes from ("" before the first snapshot). */
  resourceVersion = "";
  private readonly clock: Clock;
  private readonly backoff: Backoff;

  constructor(
    private readonly source: ListerWatcher<T>,
    private readonly opts: WatcherOptions,
    private readonly signal: AbortSignal,
  ) {
    this.clock = opts.clock ?? realClock;
    this.backoff = opts.backoff ?? new Backoff(800, 30_000, 2, 1.0, 120_000, this.clock);
  }

  [Symbol.asyncIterator](): AsyncIterator<WatcherEvent<T>> {
    return this.run();
  }

  private selectors(): Pick<ListOptions, "labelSelector" | "fieldSelector"> {
    const s: Pick<ListOptions, "labelSelector" | "fieldSelector"> = {};
    if (this.opts.labelSelector) s.labelSelector = this.opts.labelSelector;
    if (this.opts.fieldSelector) s.fieldSelector = this.opts.fieldSelector;
    return s;
  }

  private timeoutSeconds(): number {
    return this.opts.watchTimeoutSeconds?.() ?? Math.floor(300 * (1 + Math.random()));
  }

  private async fail(err: unknown, inner: AbortSignal): Promise<void> {
    this.opts.onError?.(err);
    await sleep(this.clock, this.backoff.next(), inner);
  }

  private async *run(): AsyncGenerator<WatcherEvent<T>> {
    const inner = new AbortController();
    const stop = () => inner.abort();
    this.signal.addEventListener("abort", stop, { once: true });
    if (this.signal.aborted) inner.abort();
    let continueToken: string | undefined;
    let stream: AsyncIterator<WatchEvent<T>> | undefined;
    try {
      while (!inner.signal.aborted) {
        switch (this.phase) {
          case "empty": {
            yield { type: "init" };
            continueToken = undefined;
            this.phase = this.opts.initialEvents === "stream" ? "streaming" : "listing";
            if (this.phase === "streaming") {
              try {
                const events = await this.source.watch(
                  {
                    ...this.selectors(),
                    sendInitialEvents: true,
                    resourceVersionMatch: "NotOlderThan",
                    resourceVersion: "",
                    allowWatchBookmarks: true,
                    timeoutSeconds: this.timeoutSeconds(),
                  },
                  inner.signal,
                );
                stream = events[Symbol.asyncIterator]();
              } catch (err) {
                this.phase = "empty";
                if (!inner.signal.aborted) await this.fail(err, inner.signal);
              }
            }
            break;
          }
          case "listing": {
            let page: List<T>;
            try {
              const pageSize = this.opts.pageSize ?? 500;
              page = await this.source.list(
                {
                  ...this.selectors(),
                  ...(pageSize > 0 ? { limit: pageSize } : {}),
                  ...(continueToken ? { continue: continueToken } : {}),
                },
                inner.signal,
              );
            } catch (err) {
              if (inner.signal.aborted) break;
              // An expired continue token: the snapshot is gone, start a new one.
              if (isGone(err)) this.phase = "empty";
              await this.fail(err, inner.signal);
              break;
            }
            for (const object of page.items) yield { type: "initApply", object };
            continueToken = page.metadata.continue || undefined;
            if (!continueToken) {
              this.resourceVersion = page.metadata.resourceVersion ?? "";
              this.phase = "listed";
              this.backoff.reset();
              yield { type: "initDone", resourceVersion: this.resourceVersion };
            }
            break;
          }
          case "listed": {
            try {
              const events = await this.source.watch(
                {
                  ...this.selectors(),
                  resourceVersion: this.resourceVersion,
                  allowWatchBookmarks: true,
                  timeoutSeconds: this.timeoutSeconds(),
                },
                inner.signal,
              );
              stream = events[Symbol.asyncIterator]();
              this.phase = "watching";
            } catch (err) {
              if (inner.signal.aborted) break;
              if (isGone(err)) this.phase = "empty";
              await this.fail(err, inner.signal);
            }
            break;
          }
          case "streaming":
          case "watching": {
            let next: IteratorResult<WatchEvent<T>>;
            try {
              next = await stream!.next();
            } catch (err) {
              stream = undefined;
              if (inner.signal.aborted) break;
              this.phase = this.phase === "streaming" ? "empty" : "listed";
              await this.fail(err, inner.signal);
              break;
            }
            if (next.done) {
              // The server ended the watch (its timeout): resume where it left off.
              stream = undefined;
              this.phase = this.phase === "streaming" ? "empty" : "listed";
              break;
            }
            const e = next.value;
            const rv = e.object?.metadata?.resourceVersion;
            switch (e.type) {
              case "ADDED":
              case "MODIFIED":
                if (rv) this.resourceVersion = rv;
                this.backoff.reset();
                yield {
                  type: this.phase === "streaming" ? "initApply" : "apply",
                  object: e.object,
                };
                break;
              case "DELETED":
                if (rv) this.resourceVersion = rv;
                this.backoff.reset();
                yield { type: "delete", object: e.object };
                break;
              case "BOOKMARK":
                if (rv) this.resourceVersion = rv;
                if (
                  this.phase === "streaming" &&
                  e.object?.metadata?.annotations?.[INITIAL_EVENTS_END] === "true"
                ) {
                  this.phase = "watching";
                  this.backoff.reset();
                  yield { type: "initDone", resourceVersion: this.resourceVersion };
                }
                break;
              case "ERROR": {
                const err = statusOf(e.object);
                await stream!.return?.();
                stream = undefined;
                if (err.code === 410 || this.phase === "streaming") {
                  this.phase = "empty";
                  this.opts.onError?.(err);
                } else {
                  this.phase = "listed";
                  await this.fail(err, inner.signal);
                }
                break;
              }
            }
            break;
          }
        }
      }
    } finally {
      this.signal.removeEventListener("abort", stop);
      inner.abort();
      await stream?.return?.();
    }
  }
}

/** Lists and watches `source` until `signal` aborts; see the module comment. */
export function watcher<T extends KObject>(
  source: ListerWatcher<T>,
  opts: WatcherOptions,
  signal: AbortSignal,
): Watcher<T> {
  return new Watcher(source, opts, signal);
}
