/**
 * An unbounded single-consumer queue exposed as an AsyncIterable: producers push synchronously,
 * one consumer iterates. `end()` finishes the iteration after what is buffered; `fail(err)` makes
 * the iteration throw `err` after what is buffered.
 */
export class MessageQueue<T> implements AsyncIterable<T> {
  private buffer: T[] = [];
  private head = 0;
  private waiter: ((r: IteratorResult<T>) => void) | undefined;
  private waiterReject: ((err: unknown) => void) | undefined;
  private done = false;
  private error: unknown;

  get closed(): boolean {
    return this.done;
  }

  /** Number of buffered messages not yet consumed. */
  get length(): number {
    return this.buffer.length - this.head;
  }

  push(message: T): void {
    if (this.done) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = this.waiterReject = undefined;
      w({ value: message, done: false });
      return;
    }
    this.buffer.push(message);
  }

  end(): void {
    this.finish(undefined);
  }

  fail(err: unknown): void {
    this.finish(err ?? new Error("queue failed"));
  }

  private finish(err: unknown): void {
    if (this.done) return;
    this.done = true;
    this.error = err;
    if (this.waiter) {
      const w = this.waiter;
      const r = this.waiterReject!;
      this.waiter = this.waiterReject = undefined;
      if (err === undefined) w({ value: undefined, done: true });
      else r(err);
    }
  }

  private next(): Promise<IteratorResult<T>> {
    if (this.head < this.buffer.length) {
      const value = this.buffer[this.head]!;
      this.buffer[this.head++] = undefined as T;
      if (this.head > 1024 && this.head * 2 > this.buffer.length) {
        this.buffer = this.buffer.slice(this.head);
        this.head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.done) {
      return this.error === undefined
        ? Promise.resolve({ value: undefined, done: true })
        : Promise.reject(this.error);
    }
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.waiterReject = reject;
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      return: () => {
        this.end();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
