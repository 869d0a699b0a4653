import {
  MAX_VALUE_BYTES,
  prefixEnd,
  type GetResult,
  type KeyValue,
  type LeaseGrant,
  type ListOptions,
  type ListResult,
  type ReadOptions,
  type Store,
  type StoreStatus,
  type Watch,
  type WatchEvent,
  type WatchMessage,
  type WatchOptions,
  type WriteOptions,
  type WriteResult,
} from "../interface.js";
import {
  StorageError,
  compacted,
  conflict,
  futureRevision,
  keyExists,
  keyNotFound,
  leaseNotFound,
  unavailable,
  valueTooLarge,
} from "../errors.js";
import { MessageQueue } from "../message-queue.js";
import type { Change, LeaseRecord, LogEngine, Row } from "./engine.js";

export interface LogStoreOptions {
  /**
   * Revisions of history that automatic compaction keeps (watches and paginated lists may reach
   * that far back); 0 turns automatic compaction off.
   */
  retainRevisions?: number;
  /** Clock for lease expiry, in milliseconds since the epoch. */
  now?: () => number;
}

const DEFAULT_RETAIN_REVISIONS = 1000;
/** Rows a compaction step examines before yielding to other work. */
const COMPACTION_BUDGET = 2000;
/** Revisions a watch replays from history per message. */
const REPLAY_CHUNK = 1000;
const EMPTY = new Uint8Array(0);

type WriteOp =
  | { kind: "create"; key: string; value: Uint8Array; lease: number }
  | { kind: "update"; key: string; value: Uint8Array; expected: number; lease: number }
  | { kind: "delete"; key: string; expected: number | undefined };

interface PendingWrite {
  op: WriteOp;
  resolve: (r: WriteResult) => void;
  reject: (err: unknown) => void;
}

function toKeyValue(row: Row): KeyValue {
  if (row.deleted) {
    return {
      key: row.key,
      value: EMPTY,
      createRevision: 0,
      modRevision: row.rev,
      version: 0,
      lease: 0,
    };
  }
  return {
    key: row.key,
    value: row.value,
    createRevision: row.createRev,
    modRevision: row.rev,
    version: row.version,
    lease: row.lease,
  };
}

function toEvent(change: Change): WatchEvent {
  const prevKv = change.prev && !change.prev.deleted ? toKeyValue(change.prev) : undefined;
  const kv = toKeyValue(change.row);
  return change.row.deleted ? { type: "delete", kv, prevKv } : { type: "put", kv, prevKv };
}

class LogWatch implements Watch {
  readonly queue = new MessageQueue<WatchMessage>();
  constructor(
    readonly start: string,
    /** Exclusive end of the key range; "" = unbounded. */
    readonly end: string,
    /** Deliver only events at or after this revision. */
    public minRev: number,
    private readonly owner: LogStructuredStore,
  ) {}

  matches(key: string): boolean {
    return key >= this.start && (this.end === "" || key < this.end);
  }

  requestProgress(): void {
    this.owner.progress(this);
  }

  close(): void {
    this.owner.unwatch(this);
    this.queue.end();
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchMessage> {
    const inner = this.queue[Symbol.asyncIterator]();
    return {
      next: () => inner.next(),
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/**
 * etcd's semantics over a LogEngine. Writes are queued and committed together in one engine
 * transaction per turn of the event loop (group commit): a write's promise resolves only after its
 * transaction is durable, and watchers see the events right after, in revision order. Reads run
 * against the engine directly and see every acknowledged write.
 */
export class LogStructuredStore implements Store {
  private pending: PendingWrite[] = [];
  private flushScheduled = false;
  private readonly watchers = new Set<LogWatch>();
  private readonly leaseTable = new Map<number, LeaseRecord>();
  /** Leases being revoked: new writes may no longer attach to them. */
  private readonly revoking = new Set<number>();
  private leaseTimer: NodeJS.Timeout | undefined;
  private compactionScheduled = false;
  private closed = false;
  /** Set when the engine could not make writes durable: the store refuses everything after. */
  private failed: StorageError | undefined;
  /**
   * The newest revision on disk and published to watchers: watches replay history up to it and
   * progress notifications report it (later commits reach watchers when they are durable).
   */
  private visibleRev: number;
  private readonly retainRevisions: number;
  private readonly now: () => number;

  constructor(
    private readonly engine: LogEngine,
    opts: LogStoreOptions = {},
  ) {
    this.retainRevisions = opts.retainRevisions ?? DEFAULT_RETAIN_REVISIONS;
    this.now = opts.now ?? Date.now;
    this.visibleRev = engine.currentRevision();
    for (const lease of engine.leases()) this.leaseTable.set(lease.id, lease);
    this.scheduleLeaseExpiry();
  }

  get name(): string {
    return this.engine.name;
  }

  // Reads

  private readRevision(requested: number | undefined): number {
    this.assertOpen();
    const head = this.engine.currentRevision();
    if (!requested) return head;
    const compactRev = this.engine.compactRevision();
    if (requested < compactRev) throw compacted(requested, compactRev);
    if (requested > head) throw futureRevision(requested, head);
    return requested;
  }

  async get(key: string, opts: ReadOptions = {}): Promise<GetResult> {
    const revision = this.readRevision(opts.revision);
    const row = this.engine.latest(key, revision);
    const result = { kv: row && !row.deleted ? toKeyValue(row) : undefined, revision };
    return this.durableRead(revision, result);
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    const revision = this.readRevision(opts.revision);
    const start = opts.startKey && opts.startKey > prefix ? opts.startKey : prefix;
    const end = prefixEnd(prefix);
    const limit = opts.limit && opts.limit > 0 ? opts.limit : 0;
    const rows = this.engine.range(start, end, revision, limit ? limit + 1 : 0, !!opts.keysOnly);
    const more = limit > 0 && rows.length > limit;
    if (more) rows.length = limit;
    const result: ListResult = { kvs: rows.map(toKeyValue), revision, more };
    if (opts.count) result.count = this.engine.count(start, end, revision);
    return this.durableRead(revision, result);
  }

  async count(prefix: string): Promise<{ count: number; revision: number }> {
    const revision = this.readRevision(undefined);
    const result = { count: this.engine.count(prefix, prefixEnd(prefix), revision), revision };
    return this.durableRead(revision, result);
  }

  // Writes

  create(key: string, value: Uint8Array, opts: WriteOptions = {}): Promise<WriteResult> {
    return this.enqueue({ kind: "create", key, value, lease: opts.lease ?? 0 });
  }

  update(
    key: string,
    value: Uint8Array,
    expectedModRevision: number,
    opts: WriteOptions = {},
  ): Promise<WriteResult> {
    return this.enqueue({
      kind: "update",
      key,
      value,
      expected: expectedModRevision,
      lease: opts.lease ?? 0,
    });
  }

  delete(key: string, expectedModRevision?: number): Promise<WriteResult> {
    return this.enqueue({ kind: "delete", key, expected: expectedModRevision });
  }

  private enqueue(op: WriteOp): Promise<WriteResult> {
    try {
      this.assertOpen();
      if (op.key === "") throw new StorageError("InvalidArgument", "empty key");
      if (op.kind !== "delete" && op.value.length > MAX_VALUE_BYTES) {
        throw valueTooLarge(op.key, op.value.length, MAX_VALUE_BYTES);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ op, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commits every queued write in one transaction, then answers the writers and the watchers. */
  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    const outcomes: Array<WriteResult | StorageError> = new Array(batch.length);
    const changes: Change[] = [];
    try {
      this.engine.transact(() => {
        changes.length = 0;
        for (let i = 0; i < batch.length; i++) {
          const result = this.apply(batch[i]!.op);
          if (result instanceof StorageError) {
            outcomes[i] = result;
          } else {
            changes.push(result);
            outcomes[i] = {
              revision: result.row.rev,
              kv: toKeyValue(result.row.deleted ? result.prev! : result.row),
            };
          }
        }
      });
    } catch (err) {
      const failure =
        err instanceof StorageError
          ? err
          : unavailable(
              `${this.engine.name}: write failed: ${String((err as Error)?.message ?? err)}`,
              err,
            );
      for (const w of batch) w.reject(failure);
      return;
    }
    const committed = this.engine.currentRevision();
    const answer = () => {
      this.visibleRev = Math.max(this.visibleRev, committed);
      for (let i = 0; i < batch.length; i++) {
        const outcome = outcomes[i]!;
        if (outcome instanceof StorageError) batch[i]!.reject(outcome);
        else batch[i]!.resolve(outcome);
      }
      if (changes.length > 0) {
        this.publish(changes);
        this.maybeCompact();
      }
    };
    // Writers hear back, and watchers see the changes, only once the commit is on disk; the
    // engine may sync it later (and sync many commits at once) without blocking this loop.
    const durable = this.engine.whenDurable?.(committed);
    if (!durable) return answer();
    durable.then(answer, (err: unknown) => this.failDurability(err, batch));
  }

  /**
   * The disk refused a sync: the committed state can no longer be trusted to survive, so this
   * store stops (as etcd does on a failed fsync) and every writer waiting hears why.
   */
  private failDurability(err: unknown, batch: PendingWrite[]): void {
    const failure =
      err instanceof StorageError ? err : unavailable(`${this.engine.name}: ${String(err)}`, err);
    this.failed ??= failure;
    for (const w of batch) w.reject(failure);
  }

  /** Waits until what a read at `revision` may see is on disk (see whenDurable). */
  private async durableRead<T>(revision: number, result: T): Promise<T> {
    const durable = this.engine.whenDurable?.(revision);
    if (durable) await durable;
    return result;
  }

  /** Checks one write against the current state and appends its row; returns the change or why not. */
  private apply(op: WriteOp): Change | StorageError {
    const head = this.engine.currentRevision();
    const current = this.engine.latest(op.key, head);
    const live = current && !current.deleted ? current : undefined;
    const rev = head + 1;
    let row: Row;
    switch (op.kind) {
      case "create":
        if (live) return keyExists(op.key, toKeyValue(live));
        if (op.lease && !this.leaseUsable(op.lease)) return leaseNotFound(op.lease);
        row = {
          rev,
          key: op.key,
          createRev: rev,
          prevRev: 0,
          version: 1,
          lease: op.lease,
          deleted: false,
          value: op.value,
        };
        break;
      case "update":
        if (!live || live.rev !== op.expected) {
          return conflict(op.key, op.expected, live && toKeyValue(live));
        }
        if (op.lease && !this.leaseUsable(op.lease)) return leaseNotFound(op.lease);
        row = {
          rev,
          key: op.key,
          createRev: live.createRev,
          prevRev: live.rev,
          version: live.version + 1,
          lease: op.lease,
          deleted: false,
          value: op.value,
        };
        break;
      case "delete":
        if (!live) return keyNotFound(op.key);
        if (op.expected !== undefined && live.rev !== op.expected) {
          return conflict(op.key, op.expected, toKeyValue(live));
        }
        row = {
          rev,
          key: op.key,
          createRev: live.createRev,
          prevRev: live.rev,
          version: live.version,
          lease: 0,
          deleted: true,
          value: EMPTY,
        };
        break;
    }
    this.engine.append(row);
    return { row, prev: live };
  }

  // Watches

  watch(key: string, opts: WatchOptions = {}): Watch {
    const start = key;
    const end = opts.prefix ? prefixEnd(key) : key + "\0";
    const head = this.visibleRev;
    const from = opts.startRevision && opts.startRevision > 0 ? opts.startRevision : head + 1;
    const w = new LogWatch(start, end, from, this);
    if (this.closed) {
      w.queue.end();
      return w;
    }
    const compactRev = this.engine.compactRevision();
    if (from < compactRev) {
      w.queue.fail(compacted(from, compactRev));
      return w;
    }
    // Replay is synchronous and stops at the newest published revision; commits after it are
    // published later (once durable) to the watches registered by then, so no event can slip in
    // between the replay and the registration below, nor come twice.
    for (let lo = from; lo <= head; lo += REPLAY_CHUNK) {
      const hi = Math.min(head, lo + REPLAY_CHUNK - 1);
      const events = this.engine.changes(lo, hi, start, end).map(toEvent);
      if (events.length > 0) w.queue.push({ type: "events", events });
    }
    w.minRev = Math.max(from, head + 1);
    this.watchers.add(w);
    return w;
  }

  /** @internal */
  unwatch(w: LogWatch): void {
    this.watchers.delete(w);
  }

  /** @internal */
  progress(w: LogWatch): void {
    if (!this.watchers.has(w)) return;
    // Events are queued when published, so everything up to the published revision is already
    // ahead of this notification in the watch's queue.
    w.queue.push({ type: "progress", revision: this.visibleRev });
  }

  private publish(changes: Change[]): void {
    if (this.watchers.size === 0) return;
    let events: WatchEvent[] | undefined;
    for (const w of this.watchers) {
      const matched: WatchEvent[] = [];
      for (let i = 0; i < changes.length; i++) {
        const row = changes[i]!.row;
        if (row.rev >= w.minRev && w.matches(row.key)) {
          events ??= changes.map(toEvent);
          matched.push(events[i]!);
        }
      }
      if (matched.length > 0) w.queue.push({ type: "events", events: matched });
    }
  }

  // Leases

  async grantLease(ttlSeconds: number): Promise<LeaseGrant> {
    this.assertOpen();
    if (!(ttlSeconds > 0))
      throw new StorageError("InvalidArgument", `invalid lease TTL ${ttlSeconds}`);
    let id: number;
    do id = 1 + Math.floor(Math.random() * (Number.MAX_SAFE_INTEGER - 1));
    while (this.leaseTable.has(id));
    const lease = { id, ttlSeconds, expiresAt: this.now() + ttlSeconds * 1000 };
    this.persistLease(() => this.engine.putLease(lease));
    this.leaseTable.set(id, lease);
    this.scheduleLeaseExpiry();
    return { id, ttlSeconds };
  }

  async keepAliveLease(id: number): Promise<void> {
    this.assertOpen();
    const lease = this.leaseTable.get(id);
    if (!lease || this.revoking.has(id)) throw leaseNotFound(id);
    const renewed = { ...lease, expiresAt: this.now() + lease.ttlSeconds * 1000 };
    this.persistLease(() => this.engine.putLease(renewed));
    this.leaseTable.set(id, renewed);
    this.scheduleLeaseExpiry();
  }

  async revokeLease(id: number): Promise<void> {
    this.assertOpen();
    if (!this.leaseTable.has(id) || this.revoking.has(id)) throw leaseNotFound(id);
    await this.expireLease(id);
  }

  private leaseUsable(id: number): boolean {
    return this.leaseTable.has(id) && !this.revoking.has(id);
  }

  private persistLease(write: () => void): void {
    try {
      this.engine.transact(write);
    } catch (err) {
      throw err instanceof StorageError
        ? err
        : unavailable(`${this.engine.name}: lease write failed: ${(err as Error).message}`, err);
    }
  }

  private async expireLease(id: number): Promise<void> {
    this.revoking.add(id);
    try {
      const keys = this.engine.keysWithLease(id);
      await Promise.all(
        keys.map((key) =>
          this.delete(key).catch((err) => {
            if (!(err instanceof StorageError && err.code === "KeyNotFound")) throw err;
          }),
        ),
      );
      this.persistLease(() => this.engine.deleteLease(id));
      this.leaseTable.delete(id);
    } finally {
      this.revoking.delete(id);
    }
  }

  private scheduleLeaseExpiry(): void {
    if (this.leaseTimer) clearTimeout(this.leaseTimer);
    this.leaseTimer = undefined;
    if (this.closed || this.leaseTable.size === 0) return;
    let next = Infinity;
    for (const lease of this.leaseTable.values()) next = Math.min(next, lease.expiresAt);
    const delay = Math.max(0, Math.min(next - this.now(), 2 ** 31 - 1));
    this.leaseTimer = setTimeout(() => void this.expireDueLeases(), delay);
    this.leaseTimer.unref();
  }

  private async expireDueLeases(): Promise<void> {
    const now = this.now();
    const due = [...this.leaseTable.values()].filter(
      (l) => l.expiresAt <= now && !this.revoking.has(l.id),
    );
    try {
      await Promise.all(due.map((l) => this.expireLease(l.id)));
    } catch {
      // The store is unavailable or closing; the leases stay and expire on a later attempt.
    }
    this.scheduleLeaseExpiry();
  }

  // Compaction

  async compact(revision: number): Promise<void> {
    this.assertOpen();
    const head = this.engine.currentRevision();
    if (revision > head) throw futureRevision(revision, head);
    const compactRev = this.engine.compactRevision();
    if (revision < compactRev) throw compacted(revision, compactRev);
    this.compactTo(revision, Infinity);
  }

  /** Runs compaction steps toward `revision`; returns whether it got there within `steps`. */
  private compactTo(revision: number, steps: number): boolean {
    for (let i = 0; i < steps; i++) {
      let reached = 0;
      try {
        this.engine.transact(() => {
          reached = this.engine.compact(revision, COMPACTION_BUDGET);
        });
      } catch (err) {
        throw err instanceof StorageError
          ? err
          : unavailable(`${this.engine.name}: compaction failed: ${(err as Error).message}`, err);
      }
      if (reached >= revision) return true;
    }
    return false;
  }

  /** Keeps history at about `retainRevisions`, in small steps between other work. */
  private maybeCompact(): void {
    if (this.retainRevisions <= 0 || this.compactionScheduled) return;
    const slack = Math.max(100, this.retainRevisions >> 2);
    const head = this.engine.currentRevision();
    if (head - this.engine.compactRevision() < this.retainRevisions + slack) return;
    this.compactionScheduled = true;
    const step = () => {
      if (this.closed) return;
      const target = this.engine.currentRevision() - this.retainRevisions;
      let done = true;
      try {
        if (target > this.engine.compactRevision()) done = this.compactTo(target, 1);
      } catch {
        // Compaction is retried after the next write; the store stays correct without it.
      }
      if (done) this.compactionScheduled = false;
      else setImmediate(step);
    };
    setImmediate(step);
  }

  async status(): Promise<StoreStatus> {
    this.assertOpen();
    return {
      revision: this.engine.currentRevision(),
      compactRevision: this.engine.compactRevision(),
      dbSize: this.engine.sizeBytes(),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.pending.length > 0) this.flush();
    this.closed = true;
    if (this.leaseTimer) clearTimeout(this.leaseTimer);
    for (const w of this.watchers) w.queue.end();
    this.watchers.clear();
    this.engine.close();
  }

  private assertOpen(): void {
    if (this.closed) throw unavailable(`${this.engine.name}: store is closed`);
    if (this.failed) throw this.failed;
  }
}
