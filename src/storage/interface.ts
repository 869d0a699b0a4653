/**
 * The storage layer: a revisioned key-value store with etcd v3's semantics.
 *
 * Only the API server talks to it. Keys are strings laid out as upstream lays out etcd
 * (`/registry/pods/default/web-1`, `/registry/apps/deployments/default/web`); values are bytes.
 *
 * Contract, the same for every backend (memory, SQLite, etcd):
 * - There is one global revision. A successful write moves it forward by exactly one and returns it;
 *   reads report the revision they observed. An empty store is at revision 1 (as etcd).
 * - Every live key carries createRevision (the write that created it), modRevision (the last write
 *   to it) and version (1 on create, +1 on each update; a delete ends the key's life and a later
 *   create starts at version 1 again).
 * - Keys order bytewise (UTF-8), as etcd does.
 * - create() succeeds only if the key is absent; update() and delete() with `expectedModRevision`
 *   succeed only if the key's modRevision is exactly that (compare-and-swap). A failed comparison
 *   throws a StorageError carrying the key's current state, so a caller can retry without a read.
 * - Reads at an explicit revision see the store exactly as it was then; a revision older than the
 *   compacted revision throws `Compacted`, one newer than the current revision `FutureRevision`.
 * - A watch delivers every event on its key or prefix with revision >= `startRevision`, in
 *   revision order, each once, with the previous value when there was one. A start revision older
 *   than the compacted revision ends the watch with a `Compacted` error.
 * - Anything the backend cannot do now (etcd down, disk full) throws `Unavailable`, which is safe
 *   to retry; nothing is half written.
 */

export interface KeyValue {
  key: string;
  value: Uint8Array;
  createRevision: number;
  modRevision: number;
  version: number;
  /** Lease the key is attached to; 0 for none. */
  lease: number;
}

export interface ReadOptions {
  /** Read the store as of this revision; 0 or absent for the current state. */
  revision?: number;
}

export interface ListOptions extends ReadOptions {
  /** Most keys to return; 0 or absent for all. */
  limit?: number;
  /**
   * First key to return (inclusive). Pagination passes the last key it got with "\x00" appended,
   * together with the revision of the first page, so that every page sees the same snapshot.
   */
  startKey?: string;
  /** Also count every key in the range from startKey, ignoring limit (etcd's `count`). */
  count?: boolean;
  /** Leave values empty. */
  keysOnly?: boolean;
}

export interface ListResult {
  kvs: KeyValue[];
  /** The revision the list was served at (the snapshot every page of a pagination must reuse). */
  revision: number;
  /** True when keys beyond `limit` remain in the range. */
  more: boolean;
  /** Keys in the range from startKey at that revision, when `count` was asked for. */
  count?: number;
}

export interface GetResult {
  kv?: KeyValue;
  revision: number;
}

export interface WriteOptions {
  /** Attach the key to this lease: it is deleted when the lease expires or is revoked. */
  lease?: number;
}

export interface WriteResult {
  /** The revision of this write. */
  revision: number;
  /** The key as stored after the write (for delete: as it was before it). */
  kv: KeyValue;
}

export type WatchEvent =
  | { type: "put"; kv: KeyValue; prevKv?: KeyValue }
  | { type: "delete"; kv: KeyValue; prevKv?: KeyValue };

/**
 * What a watch yields: a batch of events in revision order, or a progress notification saying
 * that every event up to `revision` has been delivered (it becomes a watch bookmark in the API).
 */
export type WatchMessage =
  { type: "events"; events: WatchEvent[] } | { type: "progress"; revision: number };

export interface WatchOptions {
  /** Deliver events with revision >= startRevision; 0 or absent: only events after the watch starts. */
  startRevision?: number;
  /** Watch every key that starts with `key`. */
  prefix?: boolean;
}

/**
 * A running watch. Iterate it for messages; the iteration ends when the watch is closed and throws
 * a StorageError (`Compacted`, `Unavailable`) when the watch cannot continue.
 */
export interface Watch extends AsyncIterable<WatchMessage> {
  /** Ask for a progress notification as soon as every event up to the current revision is out. */
  requestProgress(): void;
  close(): void;
}

export interface LeaseGrant {
  id: number;
  ttlSeconds: number;
}

export interface StoreStatus {
  revision: number;
  compactRevision: number;
  /** Bytes the backend uses on disk (0 for memory). */
  dbSize: number;
}

export interface Store {
  /** The backend's name, for messages: "memory", "sqlite", "etcd". */
  readonly name: string;

  get(key: string, opts?: ReadOptions): Promise<GetResult>;
  list(prefix: string, opts?: ListOptions): Promise<ListResult>;
  count(prefix: string): Promise<{ count: number; revision: number }>;

  create(key: string, value: Uint8Array, opts?: WriteOptions): Promise<WriteResult>;
  /** Replace the value if modRevision still equals `expectedModRevision`. */
  update(
    key: string,
    value: Uint8Array,
    expectedModRevision: number,
    opts?: WriteOptions,
  ): Promise<WriteResult>;
  /**
   * Delete the key; with `expectedModRevision`, only if its modRevision still equals it. An absent
   * key is `KeyNotFound`, with or without an expected revision.
   */
  delete(key: string, expectedModRevision?: number): Promise<WriteResult>;

  watch(key: string, opts?: WatchOptions): Watch;

  grantLease(ttlSeconds: number): Promise<LeaseGrant>;
  revokeLease(id: number): Promise<void>;
  keepAliveLease(id: number): Promise<void>;

  /** Drop history older than `revision`: reads and watches before it then throw `Compacted`. */
  compact(revision: number): Promise<void>;
  status(): Promise<StoreStatus>;
  close(): Promise<void>;
}

/** The largest value a store accepts: etcd's default request limit, as upstream relies on. */
export const MAX_VALUE_BYTES = 1.5 * 1024 * 1024;

/** The end of the key range that holds every key starting with `prefix` (exclusive). */
export function prefixEnd(prefix: string): string {
  // Keys order by UTF-8 bytes. Incrementing the last code point of the prefix gives the smallest
  // string greater than every string that starts with it; U+10FFFF has no successor, so such a
  // prefix ends the range at the end of the key space.
  const chars = Array.from(prefix);
  while (chars.length > 0) {
    const last = chars.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      let next = last + 1;
      if (next >= 0xd800 && next <= 0xdfff) next = 0xe000;
      return chars.join("") + String.fromCodePoint(next);
    }
  }
  return "";
}

/** Compare keys by their UTF-8 bytes (the order etcd and SQLite use), without encoding them. */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // UTF-16 orders surrogates (U+D800-DFFF, code points >= U+10000) below U+E000-FFFF;
    // UTF-8 orders them above. Lift surrogates above the BMP to restore code point order.
    if (x >= 0xd800 && x <= 0xdfff) x += 0x10000;
    if (y >= 0xd800 && y <= 0xdfff) y += 0x10000;
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}
