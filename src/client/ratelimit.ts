/**
 * Rate limiters for work-queue requeues, with the semantics of client-go's
 * util/workqueue/default_rate_limiters.go: `when(item)` counts a failure of `item` and answers how
 * long to wait before it is processed again; `forget(item)` clears its history after a success.
 */

import { realClock, type Clock } from "./clock.js";

export interface RateLimiter<T> {
  /** Milliseconds to wait before `item` is retried; records one more requeue of it. */
  when(item: T): number;
  /** Stops tracking `item` (it succeeded, or it was given up on). */
  forget(item: T): void;
  /** How many times `item` has been requeued since it was last forgotten. */
  numRequeues(item: T): number;
}

/**
 * A token bucket refilled at `qps` tokens a second up to `burst` (golang.org/x/time/rate): it
 * starts full; `reserve` always takes a token, going into debt, and answers how long until that
 * token exists; `tryAccept` takes one only if it is there.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly qps: number,
    readonly burst: number,
    private readonly clock: Clock = realClock,
  ) {
    this.tokens = burst;
    this.last = clock.now();
  }

  private advance(now: number): number {
    const last = Math.min(this.last, now);
    return Math.min(this.burst, this.tokens + ((now - last) * this.qps) / 1000);
  }

  /** Takes a token and answers the wait in milliseconds before it may be used (0 if at once). */
  reserve(): number {
    const now = this.clock.now();
    const tokens = this.advance(now) - 1;
    this.last = now;
    this.tokens = tokens;
    return tokens >= 0 ? 0 : (-tokens / this.qps) * 1000;
  }

  /** Takes a token if one is available now. */
  tryAccept(): boolean {
    const now = this.clock.now();
    const tokens = this.advance(now);
    if (tokens < 1) return false;
    this.last = now;
    this.tokens = tokens - 1;
    return true;
  }
}

/** Overall rate limiting, independent of the item: a token bucket of `qps` and `burst`. */
export class BucketRateLimiter<T> implements RateLimiter<T> {
  private readonly bucket: TokenBucket;

  constructor(qps: number, burst: number, clock: Clock = realClock) {
    this.bucket = new TokenBucket(qps, burst, clock);
  }

  when(): number {
    return this.bucket.reserve();
  }

  forget(): void {}

  numRequeues(): number {
    return 0;
  }
}

/** Per item: `baseDelay * 2^failures`, capped at `maxDelay` (milliseconds). */
export class ItemExponentialFailureRateLimiter<T> implements RateLimiter<T> {
  private readonly failures = new Map<T, number>();

  constructor(
    readonly baseDelay: number,
    readonly maxDelay: number,
  ) {}

  when(item: T): number {
    const exp = this.failures.get(item) ?? 0;
    this.failures.set(item, exp + 1);
    const backoff = this.baseDelay * Math.pow(2, exp);
    return Number.isFinite(backoff) ? Math.min(backoff, this.maxDelay) : this.maxDelay;
  }

  forget(item: T): void {
    this.failures.delete(item);
  }

  numRequeues(item: T): number {
    return this.failures.get(item) ?? 0;
  }
}

/** Per item: `fastDelay` for the first `maxFastAttempts` requeues, `slowDelay` after. */
export class ItemFastSlowRateLimiter<T> implements RateLimiter<T> {
  private readonly failures = new Map<T, number>();

  constructor(
    readonly fastDelay: number,
    readonly slowDelay: number,
    readonly maxFastAttempts: number,
  ) {}

  when(item: T): number {
    const n = (this.failures.get(item) ?? 0) + 1;
    this.failures.set(item, n);
    return n <= this.maxFastAttempts ? this.fastDelay : this.slowDelay;
  }

  forget(item: T): void {
    this.failures.delete(item);
  }

  numRequeues(item: T): number {
    return this.failures.get(item) ?? 0;
  }
}

/** The longest wait any of `limiters` asks for; every limiter sees every call. */
export class MaxOfRateLimiter<T> implements RateLimiter<T> {
  private readonly limiters: RateLimiter<T>[];

  constructor(...limiters: RateLimiter<T>[]) {
    this.limiters = limiters;
  }

  when(item: T): number {
    let max = 0;
    for (const l of this.limiters) max = Math.max(max, l.when(item));
    return max;
  }

  forget(item: T): void {
    for (const l of this.limiters) l.forget(item);
  }

  numRequeues(item: T): number {
    let max = 0;
    for (const l of this.limiters) max = Math.max(max, l.numRequeues(item));
    return max;
  }
}

/**
 * client-go's DefaultControllerRateLimiter: per-item exponential back-off from 5 ms to 1000 s,
 * and overall no more than 10 requeues a second with bursts of 100.
 */
export function defaultControllerRateLimiter<T>(clock: Clock = realClock): RateLimiter<T> {
  return new MaxOfRateLimiter<T>(
    new ItemExponentialFailureRateLimiter<T>(5, 1000 * 1000),
    new BucketRateLimiter<T>(10, 100, clock),
  );
}
