import fs from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import Database from "better-sqlite3";
import { StorageError, unavailable } from "./errors.js";
import { compareKeys } from "./interface.js";
import type { Change, LeaseRecord, LogEngine, Row } from "./log/engine.js";
import { CurrentState } from "./log/current.js";
import { LogStructuredStore, type LogStoreOptions } from "./log/store.js";

/** `PRAGMA application_id` of a k8ts database ("k8ts"), to refuse foreign SQLite files. */
const APPLICATION_ID = 0x6b387473;
const SCHEMA_VERSION = 1;
/** Rows of about 1 KiB fill 8 KiB pages far better than the default 4 KiB ones. */
const PAGE_SIZE = 8192;
const EMPTY = Buffer.alloc(0);
/** How long a sample of the event loop's utilization lasts (choosing how to sync a commit). */
const BUSY_WINDOW_MS = 5;
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
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE leases (id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL, expires_at INTEGER NOT NULL);
`;

const COLUMNS = "rev, key, create_rev, prev_rev, version, lease, deleted, value";
const columnsOf = (table: string) =>
  COLUMNS.split(", ")
    .map((c) => `${table}.${c}`)
    .join(", ");

/** A change with the row it replaced: `SELECT <l columns>, <p columns> FROM log l LEFT JOIN log p`. */
const CHANGE_SELECT = `SELECT ${columnsOf("l")}, ${columnsOf("p")} FROM log l
  LEFT JOIN log p ON p.rev = l.prev_rev AND l.prev_rev != 0`;

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

function changeFromRaw(r: unknown[]): Change {
  return {
    row: fromRaw(r.slice(0, 8) as RawRow),
    prev: r[8] === null ? undefined : fromRaw(r.slice(8) as RawRow),
  };
}

/**
 * Reads the log in revision order, a chunk of rows per query, as one row of aggregates: the
 * numbers as comma-separated lists, keys and values each concatenated into one BLOB with their
 * byte lengths alongside. One object per chunk instead of one Buffer per row makes loading a large
 * database several times faster. All aggregates consume the same rows in the same order, so the
 * lists line up with each other.
 */
const LOAD_CHUNK_SQL = `SELECT group_concat(rev), group_concat(create_rev), group_concat(prev_rev),
    group_concat(version), group_concat(lease), group_concat(deleted),
    group_concat(length(CAST(key AS BLOB))), CAST(group_concat(key, '') AS BLOB),
    group_concat(length(value)), CAST(group_concat(value, '') AS BLOB)
  FROM (SELECT * FROM log WHERE rev > ? ORDER BY rev LIMIT ?)`;

type LoadChunk = [
  string | null,
  string,
  string,
  string,
  string,
  string,
  string,
  Buffer,
  string,
  Buffer | null,
];

/** The rows of a load chunk, in revision order. */
function decodeLoadChunk(r: LoadChunk): Row[] {
  if (r[0] === null) return [];
  const revs = r[0].split(",");
  const createRevs = r[1].split(",");
  const prevRevs = r[2].split(",");
  const versions = r[3].split(",");
  const leases = r[4].split(",");
  const deleted = r[5].split(",");
  const keyLengths = r[6].split(",");
  const keys = r[7];
  const valueLengths = r[8].split(",");
  const values = r[9] ?? EMPTY;
  const rows: Row[] = [];
  let keyAt = 0;
  let valueAt = 0;
  for (let i = 0; i < revs.length; i++) {
    const keyEnd = keyAt + Number(keyLengths[i]);
    const valueEnd = valueAt + Number(valueLengths[i]);
    rows.push({
      rev: Number(revs[i]),
      key: keys.toString("utf8", keyAt, keyEnd),
      createRev: Number(createRevs[i]),
      prevRev: Number(prevRevs[i]),
      version: Number(versions[i]),
      lease: Number(leases[i]),
      deleted: deleted[i] !== "0",
      value: values.subarray(valueAt, valueEnd),
    });
    keyAt = keyEnd;
    valueAt = valueEnd;
  }
  return rows.sort((a, b) => a.rev - b.rev);
}

function asBuffer(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.length);
}

export interface SqliteOptions extends LogStoreOptions {
  /** The database file; created with its directory when absent. */
  file: string;
}

/**
 * The log in one SQLite file (WAL, synchronous=FULL, exclusive lock): one table, one row per
 * revision, keyed by revision alone, so a write is a sequential append.
 *
 * The current state lives in memory, loaded at open by one scan in revision order; it serves reads
 * at the current revision and every compare-and-swap check. A read at a past revision R starts from
 * the current state and, for each key changed after R, puts back the row its first change after R
 * replaced (none if that change created the key). Compaction at C removes only rows superseded
 * before C, so for R >= C those rows are always there, and the scan reads only the history after
 * R, which compaction keeps short.
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
  private readonly current = new CurrentState();
  /** Undo steps for `current` while a transaction is open. */
  private journal: Array<() => void> | undefined;
  /**
   * Commits write their WAL frames at once (synchronous = NORMAL) and become durable by an
   * fdatasync of the WAL on the thread pool, one for every commit since the last: the newest
   * revision known to be on disk, whether a sync is running, and who waits for one.
   */
  private durableRev: number;
  private syncing = false;
  private syncWaiters: Array<{ rev: number; resolve: () => void; reject: (e: Error) => void }> = [];
  private walFd: number | undefined;
  /** The event loop's utilization, sampled at most every few milliseconds (see loopBusy). */
  private elu = performance.eventLoopUtilization();
  private eluAt = 0;
  private busy = false;
  private inlineSyncMs = 0;

  constructor(readonly file: string) {
    this.db = openDatabase(file);
    try {
      this.stmts = {
        firstChangeAfter: this.db
          .prepare(`${CHANGE_SELECT} WHERE l.rev > ? AND l.key = ? ORDER BY l.rev LIMIT 1`)
          .raw(true),
        changesAfter: this.db
          .prepare(`${CHANGE_SELECT} WHERE l.rev > ? AND l.key >= ? AND l.key < ? ORDER BY l.rev`)
          .raw(true),
        changes: this.db
          .prepare(
            `${CHANGE_SELECT} WHERE l.rev >= ? AND l.rev <= ? AND l.key >= ? AND l.key < ? ORDER BY l.rev`,
          )
          .raw(true),
        load: this.db.prepare(LOAD_CHUNK_SQL).raw(true),
        begin: this.db.prepare("BEGIN IMMEDIATE"),
        commit: this.db.prepare("COMMIT"),
        rollback: this.db.prepare("ROLLBACK"),
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
        this.db.prepare(`SELECT name, value FROM meta`).raw(true).all() as [string, number][],
      );
      this.compactRev = meta.get("compact_rev") ?? 0;
      this.compactCursor = meta.get("compact_cursor") ?? this.compactRev;
      this.head = Math.max(meta.get("revision") ?? 1, this.compactRev, 1);
      this.load();
      this.durableRev = this.head;
    } catch (err) {
      this.db.close();
      throw describeSqliteError(file, err);
    }
    // Give the WAL back to the file system once writes pause.
    this.idleTimer = setInterval(() => this.onIdleTick(), 1000);
    this.idleTimer.unref();
  }

  /** Replays the whole log (live rows and retained history) into the current state. */
  private load(): void {
    let after = 0;
    // Rows per query: small at first, then sized from the values seen so far to about 16 MiB.
    let chunk = 64;
    for (;;) {
      const r = this.stmts.load.get(after, chunk) as LoadChunk;
      const rows = decodeLoadChunk(r);
      for (const row of rows) this.current.set(row);
      if (rows.length > 0) this.head = Math.max(this.head, rows[rows.length - 1]!.rev);
      if (rows.length < chunk) break;
      after = rows[rows.length - 1]!.rev;
      const avg = (r[9]?.length ?? 0) / rows.length + 64;
      chunk = Math.max(16, Math.min(4096, Math.floor((16 << 20) / avg)));
    }
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
    const now = this.current.get(key);
    if (rev >= this.head) return now;
    const r = this.run(() => this.stmts.firstChangeAfter.get(rev, key)) as unknown[] | undefined;
    if (!r) return now;
    return changeFromRaw(r).prev;
  }

  /** For each key in [start, end) changed after `rev`: its row at `rev` (undefined: absent). */
  private rowsReplacedAfter(start: string, end: string, rev: number): Map<string, Row | undefined> {
    const replaced = new Map<string, Row | undefined>();
    const rows = this.run(() =>
      this.stmts.changesAfter.all(rev, start, end === "" ? NO_END : end),
    ) as unknown[][];
    for (const r of rows) {
      const change = changeFromRaw(r);
      if (!replaced.has(change.row.key)) replaced.set(change.row.key, change.prev);
    }
    return replaced;
  }

  range(start: string, end: string, rev: number, limit: number): Row[] {
    if (rev >= this.head) return this.current.range(start, end, limit);
    const replaced = this.rowsReplacedAfter(start, end, rev);
    const out: Row[] = [];
    for (const row of this.current.range(start, end, 0)) {
      if (!replaced.has(row.key)) out.push(row);
    }
    for (const row of replaced.values()) if (row) out.push(row);
    out.sort((a, b) => compareKeys(a.key, b.key));
    if (limit > 0 && out.length > limit) out.length = limit;
    return out;
  }

  count(start: string, end: string, rev: number): number {
    if (rev >= this.head) return this.current.count(start, end);
    return this.range(start, end, rev, 0).length;
  }

  changes(from: number, to: number, start = "", end = ""): Change[] {
    const rows = this.run(() =>
      this.stmts.changes.all(from, to, start, end === "" ? NO_END : end),
    ) as unknown[][];
    return rows.map(changeFromRaw);
  }

  transact<T>(fn: () => T): T {
    if (this.journal) return fn();
    const head = this.head;
    const journal: Array<() => void> = [];
    this.journal = journal;
    try {
      this.stmts.begin.run();
      try {
        const result = fn();
        this.stmts.commit.run();
        this.writesSinceTick++;
        this.walDirty = true;
        return result;
      } catch (err) {
        if (this.db.inTransaction) this.stmts.rollback.run();
        throw err;
      }
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

  whenDurable(rev: number): Promise<void> | undefined {
    if (rev <= this.durableRev) return undefined;
    // When the event loop has had little to do lately there is nothing to overlap the sync with:
    // syncing at once saves the trip through the thread pool (a client writing alone, the first
    // small batches of a controller). A busy loop (many clients) goes on serving meanwhile.
    if (!this.syncing && this.syncWaiters.length === 0 && !this.loopBusy()) {
      const started = performance.now();
      try {
        fs.fdatasyncSync(this.walDescriptor());
      } catch (err) {
        return Promise.reject(this.syncError(err));
      } finally {
        this.inlineSyncMs += performance.now() - started;
      }
      this.durableRev = this.head;
      return undefined;
    }
    return new Promise((resolve, reject) => {
      this.syncWaiters.push({ rev, resolve, reject });
      this.sync();
    });
  }

  /**
   * Whether the event loop was more than half busy over the last few milliseconds, not counting
   * the time it spent in this engine's inline syncs.
   */
  private loopBusy(): boolean {
    const now = performance.now();
    if (now - this.eluAt >= BUSY_WINDOW_MS) {
      const current = performance.eventLoopUtilization();
      const d = performance.eventLoopUtilization(current, this.elu);
      // Time spent in this engine's own inline syncs is not work a sync could overlap with.
      const active = Math.max(0, d.active - this.inlineSyncMs);
      this.busy = active > 0.5 * (d.active + d.idle);
      this.inlineSyncMs = 0;
      this.elu = current;
      this.eluAt = now;
    }
    return this.busy;
  }

  /** One fdatasync of the WAL for every commit so far; another follows for later waiters. */
  private sync(): void {
    if (this.syncing || this.syncWaiters.length === 0) return;
    const target = this.head;
    let fd: number;
    try {
      fd = this.walDescriptor();
    } catch (err) {
      this.failSync(err);
      return;
    }
    this.syncing = true;
    fs.fdatasync(fd, (err) => {
      this.syncing = false;
      if (err) {
        this.failSync(err);
        return;
      }
      this.durableRev = Math.max(this.durableRev, target);
      const waiting = this.syncWaiters;
      this.syncWaiters = [];
      for (const w of waiting) {
        if (w.rev <= this.durableRev) w.resolve();
        else this.syncWaiters.push(w);
      }
      this.sync();
    });
  }

  private syncError(err: unknown): StorageError {
    return unavailable(
      `sqlite: ${this.file}-wal: cannot make writes durable: ${(err as Error)?.message ?? String(err)}`,
      err,
    );
  }

  private failSync(err: unknown): void {
    const e = this.syncError(err);
    const waiting = this.syncWaiters;
    this.syncWaiters = [];
    for (const w of waiting) w.reject(e);
  }

  /** The WAL, opened once (again if SQLite made a new file). */
  private walDescriptor(): number {
    const wal = `${this.file}-wal`;
    const ino = fs.statSync(wal).ino;
    if (this.walFd !== undefined && fs.fstatSync(this.walFd).ino === ino) return this.walFd;
    if (this.walFd !== undefined) fs.closeSync(this.walFd);
    this.walFd = undefined;
    this.walFd = fs.openSync(wal, "r");
    return this.walFd;
  }

  close(): void {
    clearInterval(this.idleTimer);
    try {
      this.db.pragma("wal_checkpoint(TRUNCATE)");
    } catch {
      // Closing still checkpoints what it can.
    }
    this.db.close();
    // Closing checkpointed every commit into the synced database file.
    this.durableRev = this.head;
    const waiting = this.syncWaiters;
    this.syncWaiters = [];
    for (const w of waiting) w.resolve();
    if (this.walFd !== undefined) fs.closeSync(this.walFd);
    this.walFd = undefined;
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
      db.pragma(`page_size = ${PAGE_SIZE}`);
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
    // Commits write the WAL without syncing it; SqliteEngine.whenDurable syncs it off the event
    // loop before any write is acknowledged or any reader sees it (checkpoints sync as always).
    db.pragma("synchronous = NORMAL");
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
