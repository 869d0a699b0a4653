/**
 * The limit on requests in flight (--max-requests-inflight, --max-mutating-requests-inflight).
 * Over the limit a request waits in line for a seat, as under upstream's default API Priority and
 * Fairness, instead of being refused at once as under its legacy filter: a burst from one client
 * then costs the others some latency rather than a 429 and a one-second retry. A request is
 * refused with 429 and Retry-After only when it has waited the longest APF lets it (a quarter of
 * the 60 s request timeout) or when the line is full.
 */
import { tooManyRequests } from "../api/status.js";

/** How long a request may wait for a seat (upstream: request timeout / 4). */
export const MAX_WAIT_MS = 15_000;
/** Requests waiting per seat at most. */
const WAITING_PER_SEAT = 4;

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout;
}

export class InflightLimiter {
  private inUse = 0;
  private readonly line: Waiter[] = [];
  private head = 0;

  /** `seats` 0: no limit. */
  constructor(
    readonly seats: number,
    private readonly maxWaitMs = MAX_WAIT_MS,
  ) {}

  get inFlight(): number {
    return this.inUse;
  }

  get waiting(): number {
    return this.line.length - this.head;
  }

  /**
   * Takes a seat: undefined when one was free (the common case, without a promise), otherwise a
   * promise that resolves once a seat is handed over and rejects with 429 when the wait is over
   * or the line is full. Every seat taken is given back with release().
   */
  acquire(): Promise<void> | undefined {
    if (this.seats <= 0 || this.inUse < this.seats) {
      this.inUse++;
      return undefined;
    }
    if (this.waiting >= this.seats * WAITING_PER_SEAT) return Promise.reject(refused());
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.line.indexOf(w, this.head);
          if (i >= 0) this.line.splice(i, 1);
          reject(refused());
        }, this.maxWaitMs),
      };
      this.line.push(w);
    });
  }

  /** Gives a seat back: to the first request in line, if any. */
  release(): void {
    if (this.head < this.line.length) {
      const next = this.line[this.head++]!;
      if (this.head === this.line.length) {
        this.line.length = 0;
        this.head = 0;
      } else if (this.head >= 1024) {
        this.line.splice(0, this.head);
        this.head = 0;
      }
      clearTimeout(next.timer);
      // The seat passes on as it is: inUse stays.
      next.resolve();
      return;
    }
    this.inUse--;
  }
}

function refused(): Error {
  return tooManyRequests("Too many requests, please try again later.", 1);
}
