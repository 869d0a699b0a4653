/**
 * The hardware floor: plain better-sqlite3 inserts of 1 KiB values into a one-table database
 * (WAL, synchronous=FULL), `rowsPerTxn` rows per transaction, with no storage layer around them.
 */
import path from "node:path";
import { performance } from "node:perf_hooks";
import Database from "better-sqlite3";
import { Samples, type Summary } from "../lib/stats.js";

export interface FloorResult {
  rowsPerTxn: number;
  rows: number;
  transactions: number;
  elapsedMs: number;
  rowsPerSec: number;
  /** ms per transaction (inserts and commit with its fsync). */
  commit: Summary;
}

export function sqliteVersion(): string {
  const db = new Database(":memory:");
  try {
    return db.prepare("select sqlite_version()").pluck(true).get() as string;
  } finally {
    db.close();
  }
}

/** Inserts rows for `durationMs`, `rowsPerTxn` per transaction, into a new database in `dir`. */
export function runFloor(
  dir: string,
  rowsPerTxn: number,
  durationMs: number,
  value: Buffer,
): FloorResult {
  const db = new Database(path.join(dir, `floor-${rowsPerTxn}.db`));
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.exec("CREATE TABLE kv (id INTEGER PRIMARY KEY, key TEXT, value BLOB)");
    const insert = db.prepare("INSERT INTO kv (key, value) VALUES (?, ?)");
    let row = 0;
    const txn = db.transaction((n: number) => {
      for (let i = 0; i < n; i++, row++) {
        insert.run(`/registry/bench/floor/obj-${String(row).padStart(8, "0")}`, value);
      }
    });
    const commit = new Samples();
    const start = performance.now();
    const deadline = start + durationMs;
    let now = start;
    while (now < deadline) {
      const t0 = now;
      txn(rowsPerTxn);
      now = performance.now();
      commit.push(now - t0);
    }
    const elapsedMs = now - start;
    return {
      rowsPerTxn,
      rows: row,
      transactions: commit.length,
      elapsedMs,
      rowsPerSec: (row * 1000) / elapsedMs,
      commit: commit.summarize(),
    };
  } finally {
    db.close();
  }
}
