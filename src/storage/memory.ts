import { compareKeys } from "./interface.js";
import type { Change, LeaseRecord, LogEngine, Row } from "./log/engine.js";
import { LogStructuredStore, type LogStoreOptions } from "./log/store.js";

/** Finds the last index in `rows` (sorted by rev) whose rev <= `rev`, or -1. */
function lastAtOrBefore(rows: Row[], rev: number): number {
  let lo = 0;
  let hi = rows.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (rows[mid]!.rev <= rev) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

/**
 * The log kept in memory: rows by revision, each key's rows in revision order, and a sorted key
 * list rebuilt lazily when keys are added. For unit tests and in-process use; nothing survives
 * the process.
 */
export class MemoryEngine implements LogEngine {
  readonly name = "memory";
  private head = 1;
  private compactRev = 0;
  private compactCursor = 0;
  private readonly byRev = new Map<number, Row>();
  private readonly byKey = new Map<string, Row[]>();
  private sortedKeys: string[] | undefined = [];
  private readonly leaseRecords = new Map<number, LeaseRecord>();
  private journal: Array<() => void> | undefined;

  currentRevision(): number {
    return this.head;
  }

  compactRevision(): number {
    return this.compactRev;
  }

  latest(key: string, rev: number): Row | undefined {
    const rows = this.byKey.get(key);
    if (!rows) return undefined;
    const i = lastAtOrBefore(rows, rev);
    return i < 0 ? undefined : rows[i];
  }

  private keys(): string[] {
    this.sortedKeys ??= [...this.byKey.keys()].sort(compareKeys);
    return this.sortedKeys;
  }

  private firstKeyIndex(keys: string[], start: string): number {
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareKeys(keys[mid]!, start) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private *liveRows(start: string, end: string, rev: number): Generator<Row> {
    const keys = this.keys();
    for (let i = this.firstKeyIndex(keys, start); i < keys.length; i++) {
      const key = keys[i]!;
      if (end !== "" && compareKeys(key, end) >= 0) break;
      const row = this.latest(key, rev);
      if (row && !row.deleted) yield row;
    }
  }

  range(start: string, end: string, rev: number, limit: number): Row[] {
    const out: Row[] = [];
    for (const row of this.liveRows(start, end, rev)) {
      out.push(row);
      if (limit > 0 && out.length >= limit) break;
    }
    return out;
  }

  count(start: string, end: string, rev: number): number {
    let n = 0;
    for (const _ of this.liveRows(start, end, rev)) n++;
    return n;
  }

  changes(from: number, to: number, start?: string, end?: string): Change[] {
    const out: Change[] = [];
    for (let rev = Math.max(from, this.compactRev); rev <= to; rev++) {
      const row = this.byRev.get(rev);
      if (!row) continue;
      if (start !== undefined && compareKeys(row.key, start) < 0) continue;
      if (end && compareKeys(row.key, end) >= 0) continue;
      out.push({ row, prev: row.prevRev ? this.byRev.get(row.prevRev) : undefined });
    }
    return out;
  }

  transact<T>(fn: () => T): T {
    if (this.journal) return fn();
    const journal: Array<() => void> = [];
    this.journal = journal;
    try {
      return fn();
    } catch (err) {
      for (const undo of journal.reverse()) undo();
      throw err;
    } finally {
      this.journal = undefined;
    }
  }

  append(row: Row): void {
    this.byRev.set(row.rev, row);
    let rows = this.byKey.get(row.key);
    if (!rows) {
      rows = [];
      this.byKey.set(row.key, rows);
      this.sortedKeys = undefined;
    }
    rows.push(row);
    const prevHead = this.head;
    this.head = row.rev;
    this.journal?.push(() => {
      this.byRev.delete(row.rev);
      rows.pop();
      if (rows.length === 0) {
        this.byKey.delete(row.key);
        this.sortedKeys = undefined;
      }
      this.head = prevHead;
    });
  }

  compact(rev: number, budget: number): number {
    let cursor = Math.max(this.compactCursor, this.compactRev);
    const stop = Math.min(rev, cursor + budget);
    for (; cursor < stop; cursor++) {
      const row = this.byRev.get(cursor);
      if (!row) continue;
      if (row.prevRev) this.dropRow(row.prevRev);
      if (row.deleted) this.dropRow(row.rev);
    }
    this.compactCursor = cursor;
    if (cursor >= rev) this.compactRev = rev;
    return cursor;
  }

  private dropRow(rev: number): void {
    const row = this.byRev.get(rev);
    if (!row) return;
    this.byRev.delete(rev);
    const rows = this.byKey.get(row.key);
    if (!rows) return;
    const i = rows.indexOf(row);
    if (i >= 0) rows.splice(i, 1);
    if (rows.length === 0) {
      this.byKey.delete(row.key);
      this.sortedKeys = undefined;
    }
  }

  putLease(lease: LeaseRecord): void {
    const prior = this.leaseRecords.get(lease.id);
    this.leaseRecords.set(lease.id, lease);
    this.journal?.push(() =>
      prior ? this.leaseRecords.set(lease.id, prior) : this.leaseRecords.delete(lease.id),
    );
  }

  deleteLease(id: number): void {
    const prior = this.leaseRecords.get(id);
    this.leaseRecords.delete(id);
    this.journal?.push(() => prior && this.leaseRecords.set(id, prior));
  }

  leases(): LeaseRecord[] {
    return [...this.leaseRecords.values()];
  }

  keysWithLease(id: number): string[] {
    const keys: string[] = [];
    for (const [key, rows] of this.byKey) {
      const last = rows[rows.length - 1];
      if (last && !last.deleted && last.lease === id) keys.push(key);
    }
    return keys;
  }

  sizeBytes(): number {
    return 0;
  }

  close(): void {}
}

/** A store whose state lives only in this process. */
export function openMemoryStore(opts: LogStoreOptions = {}): LogStructuredStore {
  return new LogStructuredStore(new MemoryEngine(), opts);
}
