/**
 * Time as the client runtime sees it. Work queues, rate limiters, leader election and the events
 * correlator take a `Clock` so tests can drive them with a `FakeClock` instead of waiting.
 */

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Calls `fn` once `ms` milliseconds have passed on this clock; the returned function cancels.
   * A zero or negative delay still calls back asynchronously.
   */
  setTimer(ms: number, fn: () => void): () => void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, Math.max(0, ms));
    return () => clearTimeout(t);
  },
};

/**
 * Resolves after `ms` on `clock`, or at once when `signal` aborts (never rejects): callers check
 * `signal.aborted` afterwards.
 */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      cancel();
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const cancel = clock.setTimer(ms, done);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** A clock that moves only when told to (`step`, `setTime`); timers fire in due order. */
export class FakeClock implements Clock {
  private timers: { at: number; seq: number; fn: () => void }[] = [];
  private seq = 0;

  constructor(private time = 0) {}

  now(): number {
    return this.time;
  }

  setTimer(ms: number, fn: () => void): () => void {
    const timer = { at: this.time + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    return () => {
      const i = this.timers.indexOf(timer);
      if (i >= 0) this.timers.splice(i, 1);
    };
  }

  /** Timers not yet fired. */
  get pendingTimers(): number {
    return this.timers.length;
  }

  /** Advances the time by `ms`, firing every timer that falls due, earliest first. */
  step(ms: number): void {
    this.setTime(this.time + ms);
  }

  setTime(t: number): void {
    for (;;) {
      let next: (typeof this.timers)[number] | undefined;
      for (const timer of this.timers) {
        if (
          timer.at <= t &&
          (!next || timer.at < next.at || (timer.at === next.at && timer.seq < next.seq))
        )
          next = timer;
      }
      if (!next) break;
      this.timers.splice(this.timers.indexOf(next), 1);
      this.time = Math.max(this.time, next.at);
      next.fn();
    }
    this.time = t;
  }
}
