import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { StorageError, unavailable } from "./errors.js";
import { compareKeys } from "./interface.js";
import type { Change, LeaseRecord, LogEngine, Row } from "./log/engine.js";
import { CurrentState } from "./log/current.js";
import { LogStructuredStore, type LogStoreOptions } from "./log/store.js";

/** `PRAGMA application_id` of a k8ts database ("k8ts"), to refuse foreign SQLite files. */
const APPLICATION_ID = 0x6b387473;
const SCHEMA_VERSION = 1;
const EMPTY = Buffer.alloc(0);
/** Greater than any key: stands for "no upper bound" in range queries. */
const NO_END = "\u{10ffff}\u{10ffff}";

const SCHEMA = `
CREATE TABLE log (
  rev        INTEGER PRIMARY KEY,
  key        TEXT    NOT NULL,
  create_rev INTEGER NOT NULL,
  prev_rev   INTEGER NOT NULL,
  version    INTEGER NOT NULL,
  lease      INTEGER NOT NULL,
  deleted    INTEGER NOT NULL,
  value      BLOB    NOT NULL
);
CREATE INDEX log_key_rev ON log (key, rev, deleted);
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE leases (id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL, expires_at INTEGER NOT NULL);
`;

const COLUMNS = "rev, key, create_rev, prev_rev, version, lease, deleted, value";

type RawRow = [number, string, number, number, number, number, number, Buffer];

function fromRaw(r: RawRow): Row {
  return {
    rev: r[0],
    key: r[1],
    createRev: r[2],
    prevRev: r[3],
    version: r[4],
    lease: r[5],
    deleted: r[6] !== 0,
    value: r[7],
  };
}

/** The newest row of each key in [start, end) at a revision, when it is live, in key order. */
const NEWEST_LIVE_PER_KEY = `SELECT max(rev) AS r, deleted AS d FROM log
  WHERE key >= ? AND key < ? AND rev <= ? GROUP BY key HAVING d = 0`;

/**
 * One chunk of a range as a single row of aggregates: the numbers as comma-separated lists, keys
 * and values each concatenated into one BLOB with their byte lengths alongside. Creating one
 * object per chunk instead of one Buffer per row makes long lists several times faster. All
 * aggregates consume the same rows in the same order, so the lists always line up.
 */
function rangeChunkSql(value: string): string {
  return `SELECT group_concat(rev), group_concat(create_rev), group_concat(version), group_concat(lease),
      group_concat(length(CAST(key AS BLOB))), CAST(group_concat(key, '') AS BLOB),
      group_concat(length(value)), CAST(group_concat(value, '') AS BLOB)
    FROM (SELECT l.rev, l.key, l.create_rev, l.version, l.lease, ${value} AS value
      FROM (${NEWEST_LIVE_PER_KEY} ORDER BY key LIMIT ?) m CROSS JOIN log l ON l.rev = m.r)`;
}

type RangeChunk = [string | null, string, string, string, string, Buffer, string, Buffer | null];

/** Appends the rows of a range chunk to `out` in key order; returns how many there were. */
function decodeRangeChunk(r: RangeChunk, out: Row[]): number {
  if (r[0] === null) return 0;
  const revs = r[0].split(",");
  const createRevs = r[1].split(",");
  const versions = r[2].split(",");
  const leases = r[3].split(",");
  const keyLengths = r[4].split(",");
  const keys = r[5];
  const valueLengths = r[6].split(",");
  const values = r[7] ?? EMPTY;
  const first = out.length;
  let keyAt = 0;
  let valueAt = 0;
  for (let i = 0; i < revs.length; i++) {
    const keyEnd = keyAt + Number(keyLengths[i]);
    const valueEnd = valueAt + Number(valueLengths[i]);
    out.push({
      rev: Number(revs[i]),
      key: keys.toString("utf8", keyAt, keyEnd),
      createRev: Number(createRevs[i]),
      prevRev: 0,
      version: Number(versions[i]),
      lease: Number(leases[i]),
      deleted: false,
      value: values.subarray(valueAt, valueEnd),
    });
    keyAt = keyEnd;
    valueAt = valueEnd;
  }
  // The chunk's rows were chosen in key order; keep that order whatever order aggregation saw.
  for (let i = first + 1; i < out.length; i++) {
    if (compareKeys(out[i - 1]!.key, out[i]!.key) > 0) {
      const sorted = out.splice(first).sort((a, b) => compareKeys(a.key, b.key));
      out.push(...sorted);
      break;
    }
  }
  return revs.length;
}

function asBuffer(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.length);
}

export interface SqliteOptions extends LogStoreOptions {
  /** The database file; created with its directory when absent. */
  file: string;
}

/**
 * The log in one SQLite file (WAL, synchronous=FULL, exclusive lock). One table holds every
 * revision; the (key, rev) index serves point reads, ranges at any revision and compare-and-swap,
 * so listing one resource type reads only that type's part of the index.
 */
export class SqliteEngine implements LogEngine {
  readonly name = "sqlite";
  private readonly db: Database.Database;
  private head: number;
  private compactRev: number;
  private compactCursor: number;
  private readonly stmts;
  private writesSinceTick = 0;
  private walDirty = false;
  private readonly idleTimer: NodeJS.Timeout;
  /** The current state, in memory: reads at the current revision never touch SQLite. */
  private readonly current = new CurrentState();
  /** Undo steps for `current` while a transaction is open. */
  private journal: Array<() => void> | undefined;

  constructor(readonly file: string) {
    this.db = openDatabase(file);
    try {
      this.stmts = {
        latest: this.db
          .prepare(
            `SELECT ${COLUMNS} FROM log WHERE key = ? AND rev <= ? ORDER BY rev DESC LIMIT 1`,
          )
          .raw(true),
        range: this.db.prepare(rangeChunkSql("l.value")).raw(true),
        rangeKeysOnly: this.db.prepare(rangeChunkSql("x''")).raw(true),
        count: this.db.prepare(`SELECT count(*) FROM (${NEWEST_LIVE_PER_KEY})`).pluck(true),
        changes: this.db
          .prepare(
            `SELECT l.rev, l.key, l.create_rev, l.prev_rev, l.version, l.lease, l.deleted, l.value,
                    p.rev, p.key, p.create_rev, p.prev_rev, p.version, p.lease, p.deleted, p.value
             FROM log l LEFT JOIN log p ON p.rev = l.prev_rev AND l.prev_rev != 0
             WHERE l.rev >= ? AND l.rev <= ? AND l.key >= ? AND l.key < ?
             ORDER BY l.rev`,
          )
          .raw(true),
        insert: this.db.prepare(`INSERT INTO log (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
        compactSuperseded: this.db.prepare(
          `DELETE FROM log WHERE rev IN (SELECT prev_rev FROM log WHERE rev >= ? AND rev < ? AND prev_rev != 0)`,
        ),
        compactTombstones: this.db.prepare(
          `DELETE FROM log WHERE rev >= ? AND rev < ? AND deleted = 1`,
        ),
        setMeta: this.db.prepare(
          `INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
        ),
        putLease: this.db.prepare(
          `INSERT INTO leases (id, ttl, expires_at) VALUES (?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET ttl = excluded.ttl, expires_at = excluded.expires_at`,
        ),
        deleteLease: this.db.prepare(`DELETE FROM leases WHERE id = ?`),
        leases: this.db.prepare(`SELECT id, ttl, expires_at FROM leases`).raw(true),
        freePages: this.db.prepare(`PRAGMA freelist_count`).pluck(true),
        pageCount: this.db.prepare(`PRAGMA page_count`).pluck(true),
      };
      const meta = new Map(
        (this.db.prepare(`SELECT name, value FROM meta`).raw(true).all() as [string, number][]).map(
          ([k, v]) => [k, v],
        ),
      );
      const maxRev = this.db.prepare(`SELECT max(rev) FROM log`).pluck(true).get() as number | null;
      this.compactRev = meta.get("compact_rev") ?? 0;
      this.compactCursor = meta.get("compact_cursor") ?? this.compactRev;
      this.head = Math.max(maxRev ?? 1, meta.get("revision") ?? 1, this.compactRev, 1);
      const rows: Row[] = [];
      this.sqlRange("", "", this.head, 0, false, rows);
      for (const row of rows) this.current.set(row);
    } catch (err) {
      this.db.close();
      throw describeSqliteError(file, err);
    }
    // Give the WAL back to the file system once writes pause.
    this.idleTimer = setInterval(() => this.onIdleTick(), 1000);
    this.idleTimer.unref();
  }

  private onIdleTick(): void {
    if (this.writesSinceTick === 0 && this.walDirty) {
      this.walDirty = false;
      try {
        this.db.pragma("wal_checkpoint(TRUNCATE)");
      } catch {
        this.walDirty = true;
      }
    }
    this.writesSinceTick = 0;
  }

  currentRevision(): number {
    return this.head;
  }

  compactRevision(): number {
    return this.compactRev;
  }

  private run<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw describeSqliteError(this.file, err);
    }
  }

  latest(key: string, rev: number): Row | undefined {
    if (rev >= this.head) return this.current.get(key);
    const r = this.run(() => this.stmts.latest.get(key, rev)) as RawRow | undefined;
    return r && fromRaw(r);
  }

  range(start: string, end: string, rev: number, limit: number, keysOnly: boolean): Row[] {
    if (rev >= this.head) return this.current.range(start, end, limit);
    return this.sqlRange(start, end, rev, limit, keysOnly, []);
  }

  private sqlRange(
    start: string,
    end: string,
    rev: number,
    limit: number,
    keysOnly: boolean,
    out: Row[],
  ): Row[] {
    const stmt = keysOnly ? this.stmts.rangeKeysOnly : this.stmts.range;
    const upper = end === "" ? NO_END : end;
    let from = start;
    // Rows per query: small at first, then sized from the values seen so far to about 16 MiB.
    let chunk = 64;
    while (limit === 0 || out.length < limit) {
      const want = limit === 0 ? chunk : Math.min(chunk, limit - out.length);
      const r = this.run(() => stmt.get(from, upper, rev, want)) as RangeChunk;
      const got = decodeRangeChunk(r, out);
      if (got < want) break;
      from = out[out.length - 1]!.key + "\0";
      const avg = (r[7]?.length ?? 0) / got + 64;
      chunk = Math.max(16, Math.min(4096, Math.floor((16 << 20) / avg)));
    }
    return out;
  }

  count(start: string, end: string, rev: number): number {
    if (rev >= this.head) return this.current.count(start, end);
    return this.run(() => this.stmts.count.get(start, end === "" ? NO_END : end, rev)) as number;
  }

  changes(from: number, to: number, start = "", end = ""): Change[] {
    const rows = this.run(() =>
      this.stmts.changes.all(from, to, start, end === "" ? NO_END : end),
    ) as unknown[][];
    return rows.map((r) => ({
      row: fromRaw(r.slice(0, 8) as RawRow),
      prev: r[8] === null ? undefined : fromRaw(r.slice(8) as RawRow),
    }));
  }

  transact<T>(fn: () => T): T {
    if (this.db.inTransaction) return fn();
    const head = this.head;
    const journal: Array<() => void> = [];
    this.journal = journal;
    try {
      const result = this.db.transaction(fn).immediate();
      this.writesSinceTick++;
      this.walDirty = true;
      return result;
    } catch (err) {
      this.head = head;
      for (const undo of journal.reverse()) undo();
      throw err instanceof StorageError ? err : describeSqliteError(this.file, err);
    } finally {
      this.journal = undefined;
    }
  }

  append(row: Row): void {
    this.stmts.insert.run(
      row.rev,
      row.key,
      row.createRev,
      row.prevRev,
      row.version,
      row.lease,
      row.deleted ? 1 : 0,
      row.deleted ? EMPTY : asBuffer(row.value),
    );
    this.head = row.rev;
    const previous = this.current.get(row.key);
    this.current.set(row);
    this.journal?.push(() => this.current.restore(row.key, previous));
  }

  compact(rev: number, budget: number): number {
    const from = Math.max(this.compactCursor, this.compactRev);
    const to = Math.min(rev, from + budget);
    if (to > from) {
      this.stmts.compactSuperseded.run(from, to);
      this.stmts.compactTombstones.run(from, to);
    }
    this.compactCursor = to;
    this.stmts.setMeta.run("compact_cursor", to);
    if (to >= rev && rev > this.compactRev) {
      this.compactRev = rev;
      // The newest row may be gone with its key; the revision itself must not go back.
      this.stmts.setMeta.run("revision", this.head);
      this.stmts.setMeta.run("compact_rev", rev);
      this.releaseFreePages();
    }
    return to;
  }

  /** Returns pages freed by compaction to the file system once they are a large share of the file. */
  private releaseFreePages(): void {
    const free = this.stmts.freePages.get() as number;
    if (free > 256 && free * 4 > (this.stmts.pageCount.get() as number)) {
      this.db.pragma(`incremental_vacuum(${free})`);
    }
  }

  putLease(lease: LeaseRecord): void {
    this.stmts.putLease.run(lease.id, lease.ttlSeconds, lease.expiresAt);
  }

  deleteLease(id: number): void {
    this.stmts.deleteLease.run(id);
  }

  leases(): LeaseRecord[] {
    return (this.stmts.leases.all() as [number, number, number][]).map(([id, ttl, exp]) => ({
      id,
      ttlSeconds: ttl,
      expiresAt: exp,
    }));
  }

  keysWithLease(id: number): string[] {
    return this.current.keysWithLease(id);
  }

  sizeBytes(): number {
    let total = 0;
    for (const f of [this.file, `${this.file}-wal`]) {
      try {
        total += fs.statSync(f).size;
      } catch {
        // absent
      }
    }
    return total;
  }

  close(): void {
    clearInterval(this.idleTimer);
    try {
      this.db.pragma("wal_checkpoint(TRUNCATE)");
    } catch {
      // Closing still checkpoints what it can.
    }
    this.db.close();
  }
}

function openDatabase(file: string): Database.Database {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  } catch (err) {
    throw describeSqliteError(file, err);
  }
  // SQLite reports a read-only file system as a bare I/O error; name the cause up front.
  for (const target of [path.dirname(file), file]) {
    try {
      fs.accessSync(target, fs.constants.W_OK);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === "ENOENT") continue;
      throw new StorageError(
        "Unavailable",
        `sqlite: cannot use ${file}: ${target} is not writable (${e.code === "EROFS" ? "read-only file system" : e.message})`,
        { cause: err, retryable: false },
      );
    }
  }
  let db: Database.Database;
  try {
    db = new Database(file);
  } catch (err) {
    throw describeSqliteError(file, err);
  }
  try {
    // Exclusive locking before WAL: no shared-memory index, and a second process is refused.
    db.pragma("locking_mode = EXCLUSIVE");
    const tables = db.prepare(`SELECT count(*) FROM sqlite_master`).pluck(true).get() as number;
    const appId = db.pragma("application_id", { simple: true }) as number;
    if (tables === 0) {
      db.pragma("auto_vacuum = INCREMENTAL");
      db.pragma("journal_mode = WAL");
      db.transaction(() => {
        db.exec(SCHEMA);
        db.pragma(`application_id = ${APPLICATION_ID}`);
        db.pragma(`user_version = ${SCHEMA_VERSION}`);
      }).immediate();
    } else if (appId !== APPLICATION_ID) {
      throw new StorageError(
        "Corrupt",
        `sqlite: ${file} is not a k8ts database (it is another application's SQLite file); move it away or choose another --data-dir`,
      );
    } else {
      const version = db.pragma("user_version", { simple: true }) as number;
      if (version > SCHEMA_VERSION) {
        throw new StorageError(
          "Corrupt",
          `sqlite: ${file} has schema version ${version}, newer than this k8ts understands (${SCHEMA_VERSION})`,
        );
      }
      db.pragma("journal_mode = WAL");
    }
    db.pragma("synchronous = FULL");
    db.pragma("cache_size = -65536");
    db.pragma("temp_store = MEMORY");
    // Take the exclusive lock now rather than at the first write.
    db.transaction(() => undefined).immediate();
    return db;
  } catch (err) {
    db.close();
    throw describeSqliteError(file, err);
  }
}

/** Turns a SQLite or file-system failure into a StorageError that names the file and the cause. */
export function describeSqliteError(file: string, err: unknown): StorageError {
  if (err instanceof StorageError) return err;
  const e = err as { code?: string; message?: string };
  const code = e.code ?? "";
  const msg = e.message ?? String(err);
  if (code === "SQLITE_NOTADB" || code.startsWith("SQLITE_CORRUPT")) {
    return new StorageError(
      "Corrupt",
      `sqlite: ${file} is not a valid k8ts database (${msg}); it was not modified`,
      { cause: err },
    );
  }
  if (code === "SQLITE_FULL" || code === "ENOSPC") {
    return unavailable(
      `sqlite: ${file}: no space left on device (${msg}); the write was not applied`,
      err,
    );
  }
  if (
    code === "SQLITE_BUSY" ||
    code.startsWith("SQLITE_LOCKED") ||
    code === "SQLITE_BUSY_RECOVERY"
  ) {
    return new StorageError(
      "Unavailable",
      `sqlite: ${file} is in use by another process (${msg})`,
      { cause: err, retryable: false },
    );
  }
  if (
    code === "SQLITE_READONLY" ||
    code.startsWith("SQLITE_READONLY") ||
    code === "EROFS" ||
    code === "EACCES"
  ) {
    return new StorageError("Unavailable", `sqlite: ${file} is not writable (${msg})`, {
      cause: err,
      retryable: false,
    });
  }
  if (code === "SQLITE_CANTOPEN" || code.startsWith("SQLITE_CANTOPEN")) {
    return new StorageError(
      "Unavailable",
      `sqlite: cannot open ${file} (${msg}): check that its directory exists and is writable`,
      { cause: err, retryable: false },
    );
  }
  if (code.startsWith("SQLITE_IOERR")) {
    return unavailable(`sqlite: ${file}: I/O error (${msg}); the write was not applied`, err);
  }
  return unavailable(`sqlite: ${file}: ${msg}`, err);
}

/** The embedded store: the log in `file`, with etcd's semantics on top. */
export function openSqliteStore(opts: SqliteOptions): LogStructuredStore {
  return new LogStructuredStore(new SqliteEngine(opts.file), opts);
}
