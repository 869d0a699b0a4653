/**
 * `npm run bench:storage`: the figures of the storage layer, SQLite backend and a real etcd side by
 * side on the same machine and disk, plus the hardware floor (plain better-sqlite3 inserts).
 *
 *   node dist/bench/storage/main.js [--quick] [--only sqlite|etcd]
 *
 * Prints a table, one line `BENCH_JSON {...}` with every figure, and a check of the goals. Exits 0
 * whatever the figures are (it is a benchmark, not a test); 1 only when the run itself fails.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { Store } from "../../src/storage/interface.js";
import { openStore } from "../../src/storage/index.js";
import { openSqliteStore } from "../../src/storage/sqlite.js";
import { startEtcd, type EtcdServer } from "../../src/testing/etcd.js";
import {
  formatBytes,
  formatMs,
  formatNumber,
  formatRatio,
  printGoals,
  printTable,
  type Cell,
  type Goal,
  type Summary,
} from "../lib/stats.js";
import { processCpuMs } from "../lib/sys.js";
import { runFloor, sqliteVersion, type FloorResult } from "./floor.js";
import {
  collectGarbage,
  loadKeys,
  makeValue,
  runChurn,
  runCreates,
  runLists,
  runReads,
  runWatchFanout,
  type ChurnResult,
  type ListBenchResult,
  type ThroughputResult,
  type WatchBenchResult,
} from "./workloads.js";

const execFileAsync = promisify(execFile);
const ETCD_BINARY = process.env.K8TS_ETCD_BINARY ?? "/usr/bin/etcd";
const ETCDCTL_BINARY = path.join(path.dirname(ETCD_BINARY), "etcdctl");

type Backend = "sqlite" | "etcd";

interface Config {
  quick: boolean;
  backends: Backend[];
  writeMs: number;
  readMs: number;
  readers: number;
  loadConcurrency: number;
  /** Sizes of the two listed prefixes, and runs for each. */
  lists: Array<{ keys: number; runs: number }>;
  watchers: number;
  watchWriters: number;
  watchMs: number;
  churnKeys: number;
  churnUpdates: number;
  churnWriters: number;
  /** Idle time after the churn before the size is taken (SQLite truncates its WAL after ~1 s). */
  settleMs: number;
  floorMs: number;
}

function parseArgs(argv: string[]): Config {
  let quick = false;
  let only: Backend | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--quick") quick = true;
    else if (a === "--only" || a.startsWith("--only=")) {
      const v = a.startsWith("--only=") ? a.slice("--only=".length) : argv[++i];
      if (v !== "sqlite" && v !== "etcd")
        usage(`--only takes sqlite or etcd, not ${v ?? "nothing"}`);
      only = v;
    } else if (a === "--help" || a === "-h") usage();
    else usage(`unknown argument ${a}`);
  }
  return {
    quick,
    backends: only ? [only] : ["sqlite", "etcd"],
    writeMs: quick ? 1000 : 3000,
    readMs: quick ? 1000 : 3000,
    readers: 64,
    loadConcurrency: 256,
    lists: quick
      ? [
          { keys: 2_000, runs: 5 },
          { keys: 20_000, runs: 3 },
        ]
      : [
          { keys: 10_000, runs: 20 },
          { keys: 100_000, runs: 8 },
        ],
    watchers: 100,
    watchWriters: 16,
    watchMs: quick ? 1000 : 3000,
    churnKeys: 1000,
    churnUpdates: quick ? 10 : 100,
    churnWriters: 64,
    settleMs: 2500,
    floorMs: quick ? 1000 : 3000,
  };
}

function usage(error?: string): never {
  if (error) console.error(`bench:storage: ${error}`);
  console.error("usage: node dist/bench/storage/main.js [--quick] [--only sqlite|etcd]");
  process.exit(error ? 2 : 0);
}

// Results

interface ChurnFigures extends ChurnResult {
  /** status().dbSize right after the last update. */
  dbSizeAfterWrites: number;
  /** status().dbSize after compaction and `settleMs` without writes: the reported figure. */
  dbSize: number;
  /** dbSize / liveBytes. */
  ratio: number;
  /** etcd only: the bytes of the bolt file in use (what a defragmentation would shrink it to). */
  dbSizeInUse?: number;
  /** Bytes allocated by every file of the backend's data directory (etcd: bolt file and WAL). */
  dataDirBytes: number;
  compactedTo: number;
}

interface BackendResults {
  writes1?: ThroughputResult;
  writes64?: ThroughputResult;
  watch?: WatchBenchResult;
  load?: Array<{ keys: number; elapsedMs: number; opsPerSec: number }>;
  reads?: ThroughputResult;
  lists?: ListBenchResult[];
  churn?: ChurnFigures;
  /** CPU time per phase as a share of the wall time (100% = one core busy). */
  cpu: Record<string, CpuUse>;
  errors: Record<string, string>;
}

interface CpuUse {
  /** This process (workload and client). */
  nodePct: number;
  /** The etcd server process. */
  serverPct?: number;
}

interface Env {
  date: string;
  /** The source measured: git commit, and whether src/ had uncommitted changes. */
  source?: string;
  node: string;
  sqlite: string;
  etcd?: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  dataDir: string;
}

// Backends: each call gives a fresh store in a fresh directory.

interface Opened {
  store: Store;
  /** PID of a server process whose CPU time is recorded per phase (etcd). */
  serverPid?: number;
  /** Bytes allocated by the files of the data directory. */
  dataDirBytes(): number;
  /** etcd only: dbSizeInUse as etcd reports it. */
  dbSizeInUse?(): Promise<number | undefined>;
  close(): Promise<void>;
}

const runningEtcd = new Set<EtcdServer>();
/** Set on SIGINT/SIGTERM: no new server is started while the run winds down. */
let stopping = false;

function dirBytes(dir: string): number {
  let total = 0;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += dirBytes(p);
    else {
      try {
        total += fs.statSync(p).blocks * 512;
      } catch {
        // removed meanwhile
      }
    }
  }
  return total;
}

async function etcdStatus(endpoint: string): Promise<Record<string, unknown> | undefined> {
  try {
    const { stdout } = await execFileAsync(ETCDCTL_BINARY, [
      `--endpoints=${endpoint}`,
      "endpoint",
      "status",
      "-w",
      "json",
    ]);
    const parsed = JSON.parse(stdout) as Array<{ Status?: Record<string, unknown> }>;
    return parsed[0]?.Status;
  } catch {
    return undefined;
  }
}

let storeSeq = 0;

async function openBackend(backend: Backend, root: string): Promise<Opened> {
  if (stopping) throw new Error("interrupted");
  if (backend === "sqlite") {
    const dir = path.join(root, `sqlite-${++storeSeq}`);
    const store = openSqliteStore({ file: path.join(dir, "state.db") });
    return {
      store,
      dataDirBytes: () => dirBytes(dir),
      close: async () => {
        await store.close();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const server = await startEtcd();
  runningEtcd.add(server);
  if (stopping) {
    await server.stop();
    runningEtcd.delete(server);
    throw new Error("interrupted");
  }
  let store: Store;
  try {
    store = await openStore({ backend: "etcd", endpoints: server.endpoints });
  } catch (err) {
    await server.stop();
    runningEtcd.delete(server);
    throw err;
  }
  return {
    store,
    serverPid: server.pid,
    dataDirBytes: () => dirBytes(server.dataDir),
    dbSizeInUse: async () => {
      const s = await etcdStatus(server.endpoints[0]!);
      const v = Number(s?.dbSizeInUse);
      return Number.isFinite(v) && v > 0 ? v : undefined;
    },
    close: async () => {
      try {
        await store.close();
      } finally {
        await server.stop();
        runningEtcd.delete(server);
      }
    },
  };
}

async function sourceRevision(): Promise<string | undefined> {
  // dist/bench/storage/main.js -> the repository root.
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
  try {
    const git = (args: string[]) => execFileAsync("git", ["-C", repo, ...args]);
    const head = (await git(["rev-parse", "--short", "HEAD"])).stdout.trim();
    const dirty = (await git(["status", "--porcelain", "--", "src"])).stdout.trim() !== "";
    return dirty ? `${head} + uncommitted changes in src/` : head;
  } catch {
    return undefined;
  }
}

async function etcdVersion(): Promise<string | undefined> {
  try {
    const { stdout } = await execFileAsync(ETCD_BINARY, ["--version"]);
    return /etcd Version:\s*(\S+)/.exec(stdout)?.[1];
  } catch {
    return undefined;
  }
}

function log(message: string): void {
  process.stderr.write(`[bench:storage ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

async function phase<T>(
  results: BackendResults,
  name: string,
  fn: () => Promise<T>,
  serverPid?: number,
): Promise<T | undefined> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const server0 = serverPid === undefined ? undefined : processCpuMs(serverPid);
  try {
    const r = await fn();
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const use: CpuUse = { nodePct: ((cpu.user + cpu.system) / 1000 / wall) * 100 };
    const server1 = serverPid === undefined ? undefined : processCpuMs(serverPid);
    if (server0 !== undefined && server1 !== undefined) {
      use.serverPct = ((server1 - server0) / wall) * 100;
    }
    results.cpu[name] = use;
    log(`  ${name}: done in ${(wall / 1000).toFixed(1)} s`);
    return r;
  } catch (err) {
    const msg = String((err as Error)?.stack ?? err);
    results.errors[name] = String((err as Error)?.message ?? err);
    log(`  ${name}: FAILED: ${msg}`);
    return undefined;
  } finally {
    collectGarbage();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

type Group = (
  backend: Backend,
  cfg: Config,
  root: string,
  results: BackendResults,
  value: Buffer,
) => Promise<void>;

/** 1. Writes, then watch fan-out under write load, on a fresh store. */
const writesAndWatch: Group = async (backend, cfg, root, results, value) => {
  log(`${backend}: writes and watch`);
  await withStore(backend, root, results, "open (writes)", async ({ store, serverPid }) => {
    results.writes1 = await phase(
      results,
      "writes, 1 writer",
      () => runCreates(store, "/registry/bench/writes-1/", 1, cfg.writeMs, value),
      serverPid,
    );
    results.writes64 = await phase(
      results,
      "writes, 64 writers",
      () => runCreates(store, "/registry/bench/writes-64/", 64, cfg.writeMs, value),
      serverPid,
    );
    results.watch = await phase(
      results,
      "watch fan-out",
      () =>
        runWatchFanout(
          store,
          "/registry/bench/watched/",
          cfg.watchers,
          cfg.watchWriters,
          cfg.watchMs,
          value,
        ),
      serverPid,
    );
  });
};

/** 2. Point reads and full lists, on a fresh store loaded with both list prefixes. */
const readsAndLists: Group = async (backend, cfg, root, results, value) => {
  log(`${backend}: load, reads and lists`);
  await withStore(backend, root, results, "open (reads)", async ({ store, serverPid }) => {
    const prefixes = cfg.lists.map((l) => `/registry/pods/bench-${l.keys}/`);
    const keys: string[] = [];
    results.load = [];
    for (let i = 0; i < cfg.lists.length; i++) {
      const n = cfg.lists[i]!.keys;
      const l = await phase(
        results,
        `load ${formatNumber(n)} keys`,
        () => loadKeys(store, prefixes[i]!, n, cfg.loadConcurrency, value),
        serverPid,
      );
      if (!l) return;
      results.load.push({ keys: l.keys.length, elapsedMs: l.elapsedMs, opsPerSec: l.opsPerSec });
      keys.push(...l.keys);
    }
    results.reads = await phase(
      results,
      "point reads",
      () => runReads(store, keys, cfg.readers, cfg.readMs),
      serverPid,
    );
    keys.length = 0;
    results.lists = [];
    for (let i = 0; i < cfg.lists.length; i++) {
      const { keys: n, runs } = cfg.lists[i]!;
      const l = await phase(
        results,
        `list ${formatNumber(n)} keys`,
        () => runLists(store, prefixes[i]!, n, runs),
        serverPid,
      );
      if (l) results.lists.push(l);
    }
  });
};

/** 3. Churn, compaction and the size on disk, on a fresh store. */
const churnAndSize: Group = async (backend, cfg, root, results, value) => {
  log(`${backend}: churn`);
  await withStore(backend, root, results, "open (churn)", async (opened) => {
    const { store, serverPid } = opened;
    const churn = await phase(
      results,
      "churn",
      () =>
        runChurn(
          store,
          "/registry/configmaps/bench-churn/",
          cfg.churnKeys,
          cfg.churnUpdates,
          cfg.churnWriters,
          value,
        ),
      serverPid,
    );
    if (!churn) return;
    results.churn = await phase(
      results,
      "compaction and size",
      async () => {
        const dbSizeAfterWrites = (await store.status()).dbSize;
        let compactedTo = 0;
        if (backend === "etcd") {
          // What kube-apiserver does: compact to the current revision (no defragmentation).
          const { revision } = await store.status();
          await store.compact(revision);
          compactedTo = revision;
        }
        // SQLite compacts on its own as it writes, and truncates its WAL once writes pause.
        await sleep(cfg.settleMs);
        const status = await store.status();
        const figures: ChurnFigures = {
          ...churn,
          dbSizeAfterWrites,
          dbSize: status.dbSize,
          ratio: status.dbSize / churn.liveBytes,
          dataDirBytes: opened.dataDirBytes(),
          compactedTo: Math.max(compactedTo, status.compactRevision),
        };
        const inUse = await opened.dbSizeInUse?.();
        if (inUse !== undefined) figures.dbSizeInUse = inUse;
        return figures;
      },
      serverPid,
    );
  });
};

async function withStore(
  backend: Backend,
  root: string,
  results: BackendResults,
  name: string,
  fn: (opened: Opened) => Promise<void>,
): Promise<void> {
  let opened: Opened;
  try {
    opened = await openBackend(backend, root);
  } catch (err) {
    results.errors[name] = String((err as Error)?.message ?? err);
    log(`  ${name}: FAILED: ${String((err as Error)?.stack ?? err)}`);
    return;
  }
  try {
    await fn(opened);
  } finally {
    await opened.close();
  }
}

// Report

function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a !== undefined && b !== undefined && b > 0 ? a / b : undefined;
}

function goals(
  cfg: Config,
  r: Partial<Record<Backend, BackendResults>>,
  floor: FloorResult[],
): Goal[] {
  const s = r.sqlite;
  const e = r.etcd;
  const out: Goal[] = [];
  const check = (goal: string, target: string, value: number | undefined, ok: boolean, m: string) =>
    out.push(
      value === undefined
        ? { goal, target, measured: "not measured" }
        : { goal, target, measured: m, value, pass: ok },
    );
  const w64 = ratio(s?.writes64?.opsPerSec, e?.writes64?.opsPerSec);
  check(
    "SQLite writes/s vs etcd, 64 writers",
    ">= 5x",
    w64,
    (w64 ?? 0) >= 5,
    `${formatRatio(w64)} (${formatNumber(s?.writes64?.opsPerSec)} vs ${formatNumber(e?.writes64?.opsPerSec)})`,
  );
  const w1 = ratio(s?.writes1?.opsPerSec, e?.writes1?.opsPerSec);
  check(
    "SQLite writes/s vs etcd, 1 writer",
    ">= 3x",
    w1,
    (w1 ?? 0) >= 3,
    `${formatRatio(w1)} (${formatNumber(s?.writes1?.opsPerSec)} vs ${formatNumber(e?.writes1?.opsPerSec)})`,
  );
  const f64 = floor.find((f) => f.rowsPerTxn === 64);
  const vsFloor = ratio(s?.writes64?.opsPerSec, f64?.rowsPerSec);
  check(
    "SQLite writes/s at 64 writers vs floor (64 rows/txn)",
    ">= 0.5x",
    vsFloor,
    (vsFloor ?? 0) >= 0.5,
    `${formatRatio(vsFloor)} (${formatNumber(s?.writes64?.opsPerSec)} vs ${formatNumber(f64?.rowsPerSec)})`,
  );
  const limits = [50, 500];
  cfg.lists.forEach((l, i) => {
    const limit = limits[i] ?? 500;
    const p99 = s?.lists?.find((x) => x.keys === l.keys)?.latency.p99;
    check(
      `SQLite list ${formatNumber(l.keys)} keys p99`,
      `< ${limit} ms`,
      p99,
      (p99 ?? Infinity) < limit,
      formatMs(p99),
    );
  });
  const wp99 = s?.watch && s.watch.deliveries > 0 ? s.watch.latency.p99 : undefined;
  const lost = s?.watch ? s.watch.expectedDeliveries - s.watch.deliveries : 0;
  check(
    `SQLite watch delivery p99 (${cfg.watchers} watchers)`,
    "< 10 ms",
    wp99,
    (wp99 ?? Infinity) < 10 && lost === 0,
    `${formatMs(wp99)}${lost > 0 ? `, ${formatNumber(lost)} deliveries missing` : ""}`,
  );
  const size = s?.churn?.ratio;
  check(
    "SQLite DB size after churn vs live data",
    "< 3x",
    size,
    (size ?? Infinity) < 3,
    `${formatRatio(size)} (${formatBytes(s?.churn?.dbSize)} for ${formatBytes(s?.churn?.liveBytes)})`,
  );
  return out;
}

const VERSUS = "sqlite vs etcd";

function printReport(
  cfg: Config,
  env: Env,
  r: Partial<Record<Backend, BackendResults>>,
  floor: FloorResult[],
  goalList: Goal[],
): void {
  const s = r.sqlite;
  const e = r.etcd;
  const rows: Array<Record<string, Cell>> = [];
  const both = cfg.backends.length === 2;
  const row = (
    figure: string,
    pick: (b: BackendResults) => number | undefined,
    fmt: (v: number | undefined) => string,
    better: "higher" | "lower" | "none" = fmt === formatMs || fmt === formatBytes
      ? "lower"
      : "higher",
  ) => {
    const sv = s && pick(s);
    const ev = e && pick(e);
    const out: Record<string, Cell> = { figure };
    if (s) out.sqlite = fmt(sv);
    if (e) out.etcd = fmt(ev);
    if (both) {
      const x =
        better === "higher" ? ratio(sv, ev) : better === "lower" ? ratio(ev, sv) : undefined;
      out[VERSUS] = x === undefined ? "" : formatRatio(x, x < 10 ? 2 : 1);
    }
    rows.push(out);
  };
  const ops = (v: number | undefined) => formatNumber(v);
  const lat = (t: ThroughputResult | undefined, p: keyof Summary) => t?.latency[p];
  row("writes/s, 1 writer", (b) => b.writes1?.opsPerSec, ops);
  row("  latency p50", (b) => lat(b.writes1, "p50"), formatMs);
  row("  latency p99", (b) => lat(b.writes1, "p99"), formatMs);
  row("writes/s, 64 writers", (b) => b.writes64?.opsPerSec, ops);
  row("  latency p50", (b) => lat(b.writes64, "p50"), formatMs);
  row("  latency p99", (b) => lat(b.writes64, "p99"), formatMs);
  row(`point reads/s, ${cfg.readers} readers`, (b) => b.reads?.opsPerSec, ops);
  row("  latency p50", (b) => lat(b.reads, "p50"), formatMs);
  row("  latency p99", (b) => lat(b.reads, "p99"), formatMs);
  for (const l of cfg.lists) {
    const pick = (b: BackendResults) => b.lists?.find((x) => x.keys === l.keys);
    row(
      `list ${formatNumber(l.keys)} keys (${l.runs} runs) p50`,
      (b) => pick(b)?.latency.p50,
      formatMs,
    );
    row("  p99", (b) => pick(b)?.latency.p99, formatMs);
  }
  row(
    `load (creates/s, ${cfg.loadConcurrency} in flight)`,
    (b) => {
      const l = b.load ?? [];
      const ms = l.reduce((n, x) => n + x.elapsedMs, 0);
      return l.length ? (l.reduce((n, x) => n + x.keys, 0) * 1000) / ms : undefined;
    },
    ops,
  );
  row(
    `watch delivery p50 (${cfg.watchers} watchers, ${cfg.watchWriters} writers)`,
    (b) => b.watch?.latency.p50,
    formatMs,
  );
  row("  p99", (b) => b.watch?.latency.p99, formatMs);
  row("  max", (b) => b.watch?.latency.max, formatMs);
  row("  writes/s during the test", (b) => b.watch?.writesPerSec, ops);
  row("  deliveries", (b) => b.watch?.deliveries, ops, "none");
  row("  drain after last write", (b) => b.watch?.drainMs, formatMs);
  row(
    `churn: updates/s (${cfg.churnKeys} keys x ${cfg.churnUpdates}, ${cfg.churnWriters} writers)`,
    (b) => b.churn?.updatesPerSec,
    ops,
  );
  row("  live data", (b) => b.churn?.liveBytes, formatBytes, "none");
  row("  db size right after the writes", (b) => b.churn?.dbSizeAfterWrites, formatBytes);
  row("  db size after compaction (status)", (b) => b.churn?.dbSize, formatBytes);
  row(
    "  db size / live data",
    (b) => b.churn?.ratio,
    (v) => formatRatio(v),
    "none",
  );
  row("  etcd db size in use", (b) => b.churn?.dbSizeInUse, formatBytes, "none");
  row("  data dir on disk (incl. WAL)", (b) => b.churn?.dataDirBytes, formatBytes);

  console.log("");
  console.log(
    `Storage benchmark${cfg.quick ? " (--quick)" : ""}: ${env.date}, node ${env.node}, ` +
      `SQLite ${env.sqlite}, etcd ${env.etcd ?? "-"}, ${env.cpus} CPUs (${env.cpuModel}), ` +
      `data under ${env.dataDir}, source ${env.source ?? "-"}`,
  );
  console.log("");
  printTable(rows);
  if (both) {
    console.log(
      `(${VERSUS}: how many times better SQLite is: higher throughput, lower latency or size)`,
    );
  }
  if (floor.length > 0) {
    console.log("");
    printTable(
      floor.map((f) => ({
        "hardware floor (better-sqlite3, WAL, synchronous=FULL)": `${f.rowsPerTxn} row${f.rowsPerTxn > 1 ? "s" : ""}/txn`,
        "rows/s": formatNumber(f.rowsPerSec),
        "txn p50": formatMs(f.commit.p50),
        "txn p99": formatMs(f.commit.p99),
      })),
    );
  }
  const phases = [...new Set(Object.values(r).flatMap((res) => Object.keys(res?.cpu ?? {})))];
  if (phases.length > 0) {
    console.log("");
    printTable(
      phases.map((name) => {
        const out: Record<string, Cell> = { "CPU use (% of one core)": name };
        for (const b of cfg.backends) {
          const c = r[b]?.cpu[name];
          out[`${b}: node`] = c ? `${c.nodePct.toFixed(0)}%` : "";
          if (b === "etcd")
            out["etcd: server"] = c?.serverPct !== undefined ? `${c.serverPct.toFixed(0)}%` : "";
        }
        return out;
      }),
    );
  }
  const errors = Object.entries(r).flatMap(([b, res]) =>
    Object.entries(res?.errors ?? {}).map(([k, v]) => `${b}: ${k}: ${v}`),
  );
  for (const [b, res] of Object.entries(r)) {
    for (const [k, t] of Object.entries(res ?? {})) {
      const first = (t as { firstError?: string } | undefined)?.firstError;
      if (first) errors.push(`${b}: ${k}: ${first}`);
    }
  }
  if (errors.length > 0) {
    console.log("");
    console.log("Errors:");
    for (const err of errors) console.log(`  ${err}`);
  }
  console.log("");
  printGoals(goalList);
  console.log("");
}

/** JSON with floats rounded to 4 decimals, NaN/Infinity as null. */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    typeof v === "number" ? (Number.isFinite(v) ? Math.round(v * 1e4) / 1e4 : null) : v,
  );
}

async function main(): Promise<void> {
  const cfg = parseArgs(process.argv.slice(2));
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "k8ts-bench-storage-"));
  const onSignal = (sig: NodeJS.Signals) => {
    log(`${sig}: stopping`);
    stopping = true;
    void Promise.allSettled([...runningEtcd].map((s) => s.stop())).finally(() => {
      fs.rmSync(root, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const env: Env = {
    date: new Date().toISOString(),
    node: process.version,
    sqlite: sqliteVersion(),
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? "unknown",
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    dataDir: os.tmpdir(),
  };
  const source = await sourceRevision();
  if (source) env.source = source;
  if (cfg.backends.includes("etcd")) {
    const v = await etcdVersion();
    if (v) env.etcd = v;
  }
  const results: Partial<Record<Backend, BackendResults>> = {};
  const floor: FloorResult[] = [];
  try {
    if (cfg.backends.includes("sqlite")) {
      // Right before the SQLite backend's writes, so that both see the disk in the same state.
      log("hardware floor");
      const dir = path.join(root, "floor");
      fs.mkdirSync(dir);
      const value = makeValue();
      for (const perTxn of [1, 64]) floor.push(runFloor(dir, perTxn, cfg.floorMs, value));
      fs.rmSync(dir, { recursive: true, force: true });
    }
    // Group by group, each backend in turn, so that compared figures are measured close in time.
    const value = makeValue();
    for (const b of cfg.backends) results[b] = { cpu: {}, errors: {} };
    for (const group of [writesAndWatch, readsAndLists, churnAndSize]) {
      for (const b of cfg.backends) await group(b, cfg, root, results[b]!, value);
    }
  } finally {
    await Promise.allSettled([...runningEtcd].map((s) => s.stop()));
    fs.rmSync(root, { recursive: true, force: true });
  }
  if (stopping) return;
  const goalList = goals(cfg, results, floor);
  printReport(cfg, env, results, floor, goalList);
  console.log(
    "BENCH_JSON " +
      toJson({
        bench: "storage",
        quick: cfg.quick,
        env,
        config: cfg,
        results,
        floor,
        goals: goalList.map((g) => ({
          goal: g.goal,
          target: g.target,
          value: g.value ?? null,
          pass: g.pass ?? null,
        })),
      }),
  );
}

main().then(
  () => process.exit(stopping ? 130 : 0),
  (err: unknown) => {
    console.error(`bench:storage failed: ${String((err as Error)?.stack ?? err)}`);
    process.exit(1);
  },
);
