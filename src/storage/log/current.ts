import { compareKeys } from "../interface.js";
import type { Row } from "./engine.js";

/**
 * The current state of a log: the newest live row of every key, with the keys in byte order.
 *
 * Keys added since the last ordered read wait in a small unsorted list and are merged in at the
 * next range, so a burst of creates costs O(1) each and the following list one merge pass. Deleted
 * keys leave the map at once and the sorted list at the next merge.
 */
export class CurrentState {
  private readonly rows = new Map<string, Row>();
  private sorted: string[] = [];
  private added: string[] = [];
  private stale = 0;

  get size(): number {
    return this.rows.size;
  }

  get(key: string): Row | undefined {
    return this.rows.get(key);
  }

  /** Records `row` as the newest row of its key (a tombstone removes the key). */
  set(row: Row): void {
    const had = this.rows.has(row.key);
    if (row.deleted) {
      if (had) {
        this.rows.delete(row.key);
        this.stale++;
      }
      return;
    }
    this.rows.set(row.key, row);
    if (!had) this.added.push(row.key);
  }

  /** Puts back the state of `key` before a write that is being rolled back. */
  restore(key: string, previous: Row | undefined): void {
    if (previous) this.set(previous);
    else if (this.rows.delete(key)) this.stale++;
  }

  private ordered(): string[] {
    if (this.added.length === 0 && this.stale === 0) return this.sorted;
    const added = this.added.sort(compareKeys);
    const merged: string[] = [];
    let i = 0;
    let j = 0;
    while (i < this.sorted.length || j < added.length) {
      const fromSorted =
        j >= added.length ||
        (i < this.sorted.length && compareKeys(this.sorted[i]!, added[j]!) <= 0);
      const key = fromSorted ? this.sorted[i++]! : added[j++]!;
      // A key deleted and created again is in both lists; the copies meet here side by side.
      if (this.rows.has(key) && merged[merged.length - 1] !== key) merged.push(key);
    }
    this.sorted = merged;
    this.added = [];
    this.stale = 0;
    return merged;
  }

  /** Live rows with start <= key < end ("" = unbounded), in key order, at most `limit` (0 = all). */
  range(start: string, end: string, limit: number): Row[] {
    const keys = this.ordered();
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareKeys(keys[mid]!, start) < 0) lo = mid + 1;
      else hi = mid;
    }
    const out: Row[] = [];
    for (let i = lo; i < keys.length; i++) {
      const key = keys[i]!;
      if (end !== "" && compareKeys(key, end) >= 0) break;
      out.push(this.rows.get(key)!);
      if (limit > 0 && out.length >= limit) break;
    }
    return out;
  }

  count(start: string, end: string): number {
    if (start === "" && end === "") return this.rows.size;
    return this.range(start, end, 0).length;
  }

  keysWithLease(id: number): string[] {
    const keys: string[] = [];
    for (const row of this.rows.values()) if (row.lease === id) keys.push(row.key);
    return keys;
  }
}
