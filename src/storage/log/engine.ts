/**
 * A log engine is the small part of a log-structured backend that differs between memory and
 * SQLite: an append-only log of rows, one per revision, that it can read by key, by key range at a
 * revision, and by revision range. Everything with etcd's semantics on top (compare-and-swap,
 * group commit, watches, leases, automatic compaction) lives once in LogStructuredStore.
 *
 * Engines are synchronous: the store calls them on one thread and never re-enters them.
 */

/** One revision of one key: a put (live value) or a delete (tombstone). */
export interface Row {
  rev: number;
  key: string;
  /** Revision that created this life of the key (equal to rev on create). */
  createRev: number;
  /** Revision of the previous row of the same life of the key; 0 for a create. */
  prevRev: number;
  /** 1 on create, +1 per update; for a tombstone, the version of the row it deletes. */
  version: number;
  lease: number;
  deleted: boolean;
  value: Uint8Array;
}

export interface Change {
  row: Row;
  /** The row this one replaced, for a watch's previous value; absent for a create. */
  prev?: Row;
}

export interface LeaseRecord {
  id: number;
  ttlSeconds: number;
  /** Milliseconds since the epoch when the lease expires unless kept alive. */
  expiresAt: number;
}

export interface LogEngine {
  readonly name: string;
  /** The newest revision written; 1 for an empty log, as etcd starts. */
  currentRevision(): number;
  /** History before this revision is gone; 0 when nothing was compacted. */
  compactRevision(): number;

  /** The newest row of `key` at or before `rev` (tombstones included). */
  latest(key: string, rev: number): Row | undefined;
  /**
   * Live rows (no tombstones) with start <= key < end (end "" = no bound) as of `rev`, in key
   * order, at most `limit` (0 = no limit). With `keysOnly`, values may be left empty.
   */
  range(start: string, end: string, rev: number, limit: number, keysOnly: boolean): Row[];
  /** How many live keys start <= key < end holds as of `rev`. */
  count(start: string, end: string, rev: number): number;
  /** Rows with from <= rev <= to (and start <= key < end, if given), in revision order. */
  changes(from: number, to: number, start?: string, end?: string): Change[];

  /**
   * Runs `fn` as one atomic transaction: when it throws, no row appended in `fn` is kept and
   * currentRevision() is as before. When it returns, the rows are committed and durable, unless
   * the engine has whenDurable: then they are durable once whenDurable says so.
   */
  transact<T>(fn: () => T): T;
  /**
   * For engines that make commits durable after transact returns (one sync for many commits, off
   * the event loop): undefined when every revision up to `rev` is on disk, else a promise that
   * resolves when it is (and rejects if the disk refuses).
   */
  whenDurable?(rev: number): Promise<void> | undefined;
  /** Appends a row; only inside transact(), with rev = currentRevision() + 1. */
  append(row: Row): void;

  /**
   * Drops every row superseded before `rev` and every tombstone before `rev`, so that the state at
   * `rev` and every change from `rev` on stay readable. At most `budget` rows are examined per call;
   * returns the revision it reached (call again until it returns `rev`).
   */
  compact(rev: number, budget: number): number;

  putLease(lease: LeaseRecord): void;
  deleteLease(id: number): void;
  leases(): LeaseRecord[];
  /** Keys whose newest row is live and attached to lease `id`. */
  keysWithLease(id: number): string[];

  /** Bytes used on disk; 0 for memory. */
  sizeBytes(): number;
  close(): void;
}
