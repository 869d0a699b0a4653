/**
 * The controller work queue, with the semantics of client-go's util/workqueue (queue.go,
 * delaying_queue.go, rate_limiting_queue.go) in one class:
 *
 * - Items are compared by identity (`Map` semantics), so keys should be strings.
 * - `add` of an item already waiting is a no-op: repeated adds collapse into one processing.
 * - `get` hands an item to one worker and marks it processing; until that worker calls `done`,
 *   no other `get` returns it. An `add` while it is processing marks it dirty, and `done`
 *   puts it back in the queue: a change that arrives mid-reconcile is never lost.
 * - `addAfter` adds once a delay has passed on the queue's clock; of several pending delays for
 *   one item the earliest wins. `addRateLimited` asks the rate limiter for the delay; `forget`
 *   resets the item's failure count.
 * - `shutDown` makes `add` a no-op and, once the queue is empty, `get` answers
 *   `{ shutdown: true }`; items already queued are still handed out. `shutDownWithDrain`
 *   additionally waits until every item handed out has been marked done.
 */

import { realClock, type Clock } from "./clock.js";
import { defaultControllerRateLimiter, type RateLimiter } from "./ratelimit.js";

export type GetResult<T> = { item: T; shutdown: false } | { item: undefined; shutdown: true };

export interface WorkQueueOptions<T> {
  clock?: Clock;
  rateLimiter?: RateLimiter<T>;
}

interface Waiting<T> {
  item: T;
  readyAt: number;
  index: number;
}

export class WorkQueue<T> {
  private readonly clock: Clock;
  readonly rateLimiter: RateLimiter<T>;
  /** Items waiting to be handed out, in order; `head` is the next one. */
  private queue: T[] = [];
  private head = 0;
  /** Items that need processing (queued, or added again while processing). */
  private readonly dirty = new Set<T>();
  /** Items handed out and not yet done. */
  private readonly processing = new Set<T>();
  private readonly getters: ((r: GetResult<T>) => void)[] = [];
  private shuttingDownFlag = false;
  private drainWaiters: (() => void)[] = [];

  /** Delayed adds: a min-heap on readyAt, and each item's entry. */
  private readonly heap: Waiting<T>[] = [];
  private readonly waiting = new Map<T, Waiting<T>>();
  private cancelTimer: (() => void) | undefined;
  private timerAt = Infinity;

  constructor(opts: WorkQueueOptions<T> = {}) {
    this.clock = opts.clock ?? realClock;
    this.rateLimiter = opts.rateLimiter ?? defaultControllerRateLimiter<T>(this.clock);
  }

  /** Marks `item` as needing processing. */
  add(item: T): void {
    if (this.shuttingDownFlag) return;
    if (this.dirty.has(item)) return;
    this.dirty.add(item);
    if (this.processing.has(item)) return;
    this.push(item);
  }

  /** Items waiting to be handed out (not those processing or delayed). */
  len(): number {
    return this.queue.length - this.head;
  }

  /** The next item, once there is one; `{ shutdown: true }` once shut down and empty. */
  get(): Promise<GetResult<T>> {
    if (this.len() > 0) return Promise.resolve({ item: this.pop(), shutdown: false });
    if (this.shuttingDownFlag) return Promise.resolve({ item: undefined, shutdown: true });
    return new Promise((resolve) => this.getters.push(resolve));
  }

  /** Ends the processing of `item`; re-queues it if it was added meanwhile. */
  done(item: T): void {
    this.processing.delete(item);
    if (this.dirty.has(item)) this.push(item);
    else if (this.processing.size === 0) this.wakeDrain();
  }

  /** Shuts down; a `shutDownWithDrain` still waiting stops waiting, as upstream's does. */
  shutDown(): void {
    this.shuttingDownFlag = true;
    this.stopDelays();
    this.wakeGetters();
    this.wakeDrain();
  }

  /** Shuts down and resolves once every item handed out has been marked done. */
  shutDownWithDrain(): Promise<void> {
    this.shuttingDownFlag = true;
    this.stopDelays();
    this.wakeGetters();
    if (this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  shuttingDown(): boolean {
    return this.shuttingDownFlag;
  }

  /** Adds `item` after `delayMs` on the queue's clock (at once if not positive). */
  addAfter(item: T, delayMs: number): void {
    if (this.shuttingDownFlag) return;
    if (delayMs <= 0) {
      this.add(item);
      return;
    }
    const readyAt = this.clock.now() + delayMs;
    const existing = this.waiting.get(item);
    if (existing) {
      if (existing.readyAt > readyAt) {
        existing.readyAt = readyAt;
        this.siftUp(existing.index);
      }
    } else {
      const entry: Waiting<T> = { item, readyAt, index: this.heap.length };
      this.heap.push(entry);
      this.waiting.set(item, entry);
      this.siftUp(entry.index);
    }
    this.schedule();
  }

  /** Adds `item` after the delay its rate limiter gives. */
  addRateLimited(item: T): void {
    this.addAfter(item, this.rateLimiter.when(item));
  }

  forget(item: T): void {
    this.rateLimiter.forget(item);
  }

  numRequeues(item: T): number {
    return this.rateLimiter.numRequeues(item);
  }

  private push(item: T): void {
    const getter = this.getters.shift();
    if (getter) {
      this.processing.add(item);
      this.dirty.delete(item);
      getter({ item, shutdown: false });
      return;
    }
    this.queue.push(item);
  }

  private pop(): T {
    const item = this.queue[this.head]!;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.processing.add(item);
    this.dirty.delete(item);
    return item;
  }

  private wakeGetters(): void {
    for (const g of this.getters.splice(0)) g({ item: undefined, shutdown: true });
  }

  private wakeDrain(): void {
    for (const w of this.drainWaiters.splice(0)) w();
  }

  private stopDelays(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.timerAt = Infinity;
    this.heap.length = 0;
    this.waiting.clear();
  }

  /** Keeps one timer set for the earliest delayed item. */
  private schedule(): void {
    const first = this.heap[0];
    if (!first) {
      this.cancelTimer?.();
      this.cancelTimer = undefined;
      this.timerAt = Infinity;
      return;
    }
    if (first.readyAt >= this.timerAt && this.cancelTimer) return;
    this.cancelTimer?.();
    this.timerAt = first.readyAt;
    this.cancelTimer = this.clock.setTimer(first.readyAt - this.clock.now(), () => {
      this.cancelTimer = undefined;
      this.timerAt = Infinity;
      this.releaseDue();
    });
  }

  private releaseDue(): void {
    const now = this.clock.now();
    for (;;) {
      const first = this.heap[0];
      if (!first || first.readyAt > now) break;
      this.removeTop();
      this.waiting.delete(first.item);
      this.add(first.item);
    }
    this.schedule();
  }

  private removeTop(): void {
    const last = this.heap.pop()!;
    if (this.heap.length === 0) return;
    this.heap[0] = last;
    last.index = 0;
    this.siftDown(0);
  }

  private siftUp(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.readyAt <= h[i]!.readyAt) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private siftDown(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let min = i;
      if (l < h.length && h[l]!.readyAt < h[min]!.readyAt) min = l;
      if (r < h.length && h[r]!.readyAt < h[min]!.readyAt) min = r;
      if (min === i) return;
      this.swap(i, min);
      i = min;
    }
  }

  private swap(a: number, b: number): void {
    const h = this.heap;
    const x = h[a]!;
    const y = h[b]!;
    h[a] = y;
    h[b] = x;
    x.index = b;
    y.index = a;
  }
}
