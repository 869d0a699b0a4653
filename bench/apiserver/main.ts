/**
 * `npm run bench:apiserver`: the figures of `k8ts apiserver` (embedded SQLite store) seen by
 * clients over loopback, with the runtime's ceiling (a bare `node:http` server) beside them.
 *
 *   node dist/bench/apiserver/main.js [--quick] [--only create,get,list,watch,memory,ceiling]
 *                                     [--cpu-prof DIR]
 *
 * The load generator runs in this process; each server runs in its own child process (a fresh
 * `node bin/k8ts apiserver` with its data in a temporary directory per group of workloads), so
 * that on a 2-core machine client and server each have a core. `--cpu-prof DIR` starts the
 * servers with `node --cpu-prof` and leaves one profile per server in DIR (see profile.ts).
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
import { closedLoop, h1Request, openConns, requestOnce, type ThroughputResult } from "./client.js";
import { podJson } from "./objects.js";
import {
  isStopping,
  killAllNow,
  startAPIServer,
  startCeilingServer,
  stopAll,
  type ServerProc,
} from "./procs.js";
import { processMemory, type CpuUse } from "../lib/sys.js";
import {
  configMapBody,
  loadObjects,
  loadPods,
  plainTarget,
  podBodyBytes,
  runCreates,
  runGets,
  runLists,
  runWatchFanout,
  sleep,
  type ListResult,
  type LoadResult,
  type Transport,
  type WatchConfig,
  type WatchResult,
} from "./workloads.js";
import { runSecurityComparison, type SecurityResult } from "./security.js";

const execFileAsync = promisify(execFile);

const GROUPS = ["ceiling", "create", "get", "list", "watch", "memory", "security"] as const;
type Group = (typeof GROUPS)[number];
const TRANSPORTS: Transport[] = ["http1", "http1-tls", "http2-tls"];

interface Config {
  quick: boolean;
  only: Group[];
  /** Concurrent clients (connections or HTTP/2 streams) of the create, get and ceiling loops. */
  workers: number;
  createMs: number;
  getMs: number;
  ceilingMs: number;
  /** Unmeasured closed-loop time before each measured one. */
  warmupMs: number;
  /** Pods listed (loaded first), and measured runs per format. */
  listPods: number;
  listRuns: number;
  /** Requests in flight while objects are loaded. */
  loadConcurrency: number;
  watch: WatchConfig;
  /** ConfigMaps stored for the memory figure, and how many POSTs are in flight. */
  memoryObjects: number;
  memoryConcurrency: number;
  /** Wait after the server is ready before the idle RSS, and after the load before the RSS. */
  idleSettleMs: number;
  loadedSettleMs: number;
  cpuProfDir?: string;
}

function parseArgs(argv: string[]): Config {
  let quick = false;
  let only: Group[] = [...GROUPS];
  let cpuProfDir: string | undefined;
  const value = (a: string, name: string, i: number): [string, number] => {
    if (a.startsWith(`${name}=`)) return [a.slice(name.length + 1), i];
    const v = argv[i + 1];
    if (v === undefined) usage(`${name} needs a value`);
    return [v, i + 1];
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--quick") quick = true;
    else if (a === "--only" || a.startsWith("--only=")) {
      const [v, next] = value(a, "--only", i);
      i = next;
      const picked = v.split(",").map((s) => s.trim());
      for (const p of picked) {
        if (!(GROUPS as readonly string[]).includes(p))
          usage(`--only takes ${GROUPS.join("|")} (comma separated), not ${p}`);
      }
      only = GROUPS.filter((g) => picked.includes(g));
    } else if (a === "--cpu-prof" || a.startsWith("--cpu-prof=")) {
      const [v, next] = value(a, "--cpu-prof", i);
      i = next;
      cpuProfDir = path.resolve(v);
    } else if (a === "--help" || a === "-h") usage();
    else usage(`unknown argument ${a}`);
  }
  const cfg: Config = {
    quick,
    only,
    workers: 64,
    createMs: quick ? 1500 : 5000,
    getMs: quick ? 1500 : 5000,
    ceilingMs: quick ? 1500 : 5000,
    warmupMs: quick ? 300 : 1000,
    listPods: 10_000,
    listRuns: quick ? 4 : 20,
    loadConcurrency: 64,
    watch: quick
      ? {
          watchers: 100,
          rate: 200,
          durationMs: 2000,
          writerConns: 32,
          writesMaxMs: 30_000,
          drainMaxMs: 15_000,
        }
      : {
          watchers: 1000,
          rate: 500,
          durationMs: 5000,
          writerConns: 32,
          writesMaxMs: 60_000,
          drainMaxMs: 30_000,
        },
    memoryObjects: quick ? 10_000 : 100_000,
    memoryConcurrency: 128,
    idleSettleMs: 2000,
    loadedSettleMs: quick ? 1000 : 3000,
  };
  if (cpuProfDir) cfg.cpuProfDir = cpuProfDir;
  return cfg;
}

function usage(error?: string): never {
  if (error) console.error(`bench:apiserver: ${error}`);
  console.error(
    `usage: node dist/bench/apiserver/main.js [--quick] [--only ${GROUPS.join(",")}] [--cpu-prof DIR]`,
  );
  process.exit(error ? 2 : 0);
}

// Results

interface MemoryResult {
  /** RSS and peak RSS `idleSettleMs` after the server became ready, bytes. */
  idleRss?: number;
  idlePeak?: number;
  load?: LoadResult;
  /** RSS right after the load, after `loadedSettleMs`, and the peak, bytes. */
  loadedRss?: number;
  settledRss?: number;
  peakRss?: number;
}

interface Results {
  ceiling?: ThroughputResult;
  creates: Partial<Record<Transport, ThroughputResult>>;
  loadPods?: LoadResult;
  gets?: ThroughputResult;
  lists: ListResult[];
  watch?: WatchResult;
  /** The same fan-out from the bare server, with events of the same size. */
  watchCeiling?: WatchResult;
  security?: SecurityResult;
  memory?: MemoryResult;
  /** Per server started: ms from spawn to ready, and RSS right then (bytes). */
  servers: Array<{ name: string; startMs: number; rss?: number }>;
  errors: Record<string, string>;
  profiles: string[];
}

interface Env {
  date: string;
  source?: string;
  node: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  tmpDir: string;
  podBodyBytes: number;
  /**
   * 1-minute load average before the run (other work on the machine skews the figures; during the
   * run the "other CPU" figures tell).
   */
  loadAvgStart: number;
}

function log(message: string): void {
  process.stderr.write(`[bench:apiserver ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

async function sourceRevision(): Promise<string | undefined> {
  // dist/bench/apiserver/main.js -> the repository root.
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

async function phase<T>(
  results: Results,
  name: string,
  fn: () => Promise<T>,
): Promise<T | undefined> {
  if (isStopping()) return undefined;
  const t0 = performance.now();
  log(`${name}...`);
  try {
    const r = await fn();
    log(`  ${name}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return r;
  } catch (err) {
    results.errors[name] = String((err as Error)?.message ?? err);
    log(`  ${name}: FAILED: ${String((err as Error)?.stack ?? err)}`);
    return undefined;
  }
}

/** Runs `fn` against a fresh apiserver (its own temporary directory), then stops it. */
async function withAPIServer(
  cfg: Config,
  root: string,
  results: Results,
  name: string,
  fn: (server: ServerProc) => Promise<void>,
): Promise<void> {
  if (isStopping()) return;
  const dir = path.join(root, name);
  const nodeArgs: string[] = [];
  let profile: string | undefined;
  if (cfg.cpuProfDir) {
    fs.mkdirSync(cfg.cpuProfDir, { recursive: true });
    profile = path.join(cfg.cpuProfDir, `apiserver-${name}.cpuprofile`);
    nodeArgs.push(
      "--cpu-prof",
      `--cpu-prof-dir=${cfg.cpuProfDir}`,
      `--cpu-prof-name=${path.basename(profile)}`,
    );
  }
  let server: ServerProc;
  try {
    server = await startAPIServer(dir, nodeArgs);
  } catch (err) {
    results.errors[`start apiserver (${name})`] = String((err as Error)?.message ?? err);
    log(`start apiserver (${name}): FAILED: ${String((err as Error)?.stack ?? err)}`);
    return;
  }
  const entry: Results["servers"][number] = { name, startMs: server.startMs };
  const rss = processMemory(server.pid).rss;
  if (rss !== undefined) entry.rss = rss;
  results.servers.push(entry);
  try {
    await fn(server);
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    if (profile && fs.existsSync(profile)) results.profiles.push(profile);
  }
}

/** The bytes of a watch event line besides its object: `{"type":"ADDED","object":` and `}\n`. */
const WATCH_EVENT_FRAME = '{"type":"ADDED","object":}\n'.length;

async function run(cfg: Config, root: string, results: Results): Promise<void> {
  let watchEventBytes: number | undefined;
  const want = (g: Group) => cfg.only.includes(g);
  const loop = (durationMs: number) => ({
    workers: cfg.workers,
    durationMs,
    warmupMs: cfg.warmupMs,
  });

  if (want("ceiling")) {
    results.ceiling = await phase(results, "ceiling (bare node:http)", async () => {
      const nodeArgs = cfg.cpuProfDir
        ? ["--cpu-prof", `--cpu-prof-dir=${cfg.cpuProfDir}`, "--cpu-prof-name=ceiling.cpuprofile"]
        : [];
      const server = await startCeilingServer(nodeArgs);
      try {
        const conns = await openConns({ host: "127.0.0.1", port: server.port }, cfg.workers);
        try {
          return await closedLoop({
            ...loop(cfg.ceilingMs),
            okStatus: [201],
            serverPid: server.pid,
            issue: (w, seq) =>
              conns[w]!.request(
                h1Request(
                  "POST",
                  "/",
                  { "Content-Type": "application/json", Accept: "application/json" },
                  podJson(`web-frontend-7c9f8d6b5d-${String(seq).padStart(6, "0")}`, seq),
                ),
              ),
          });
        } finally {
          for (const c of conns) c.close();
        }
      } finally {
        await server.stop();
      }
    });
  }

  if (want("create")) {
    for (const t of TRANSPORTS) {
      await withAPIServer(cfg, root, results, `create-${t}`, async (server) => {
        const r = await phase(results, `creates over ${t}`, () =>
          runCreates(server, t, loop(cfg.createMs)),
        );
        if (r) results.creates[t] = r;
      });
    }
  }

  if (want("get") || want("list")) {
    await withAPIServer(cfg, root, results, "get-list", async (server) => {
      results.loadPods = await phase(results, `load ${formatNumber(cfg.listPods)} pods`, () =>
        loadPods(server, cfg.listPods, cfg.loadConcurrency),
      );
      if (!results.loadPods) return;
      if (results.loadPods.errors > 0) {
        results.errors["load pods"] =
          `${results.loadPods.errors} failed: ${results.loadPods.firstError}`;
        return;
      }
      if (want("get")) {
        results.gets = await phase(results, "gets", () =>
          runGets(server, cfg.listPods, loop(cfg.getMs)),
        );
      }
      if (want("list")) {
        for (const format of ["json", "table"] as const) {
          const l = await phase(results, `lists (${format})`, () =>
            runLists(server, format, cfg.listPods, cfg.listRuns),
          );
          if (l) results.lists.push(l);
        }
      }
    });
  }

  if (want("watch")) {
    await withAPIServer(cfg, root, results, "watch", async (server) => {
      results.watch = await phase(results, "watch fan-out", () =>
        runWatchFanout(server, cfg.watch),
      );
      // The size of the events it sent, for the ceiling's.
      const pod = await requestOnce(
        plainTarget(server),
        "GET",
        "/api/v1/namespaces/default/pods/watched-000000",
      );
      if (pod.status === 200) watchEventBytes = WATCH_EVENT_FRAME + Buffer.byteLength(pod.body);
    });
    results.watchCeiling = await phase(
      results,
      "watch fan-out ceiling (bare node:http)",
      async () => {
        const server = await startCeilingServer([], watchEventBytes);
        try {
          return await runWatchFanout(server, cfg.watch);
        } finally {
          await server.stop();
        }
      },
    );
  }

  if (want("security")) {
    results.security = await phase(results, "authentication and authorization cost", () =>
      runSecurityComparison(
        root,
        cfg.quick ? 1000 : 2000,
        loop(cfg.createMs),
        (name) =>
          cfg.cpuProfDir
            ? [
                "--cpu-prof",
                `--cpu-prof-dir=${cfg.cpuProfDir}`,
                `--cpu-prof-name=apiserver-${name}.cpuprofile`,
              ]
            : [],
        log,
        results.servers,
      ),
    );
  }

  if (want("memory")) {
    await withAPIServer(cfg, root, results, "memory", async (server) => {
      results.memory = await phase(results, "memory", async () => {
        const m: MemoryResult = {};
        await sleep(cfg.idleSettleMs);
        const idle = processMemory(server.pid);
        if (idle.rss !== undefined) m.idleRss = idle.rss;
        if (idle.peak !== undefined) m.idlePeak = idle.peak;
        log(`  idle RSS ${formatBytes(m.idleRss)}; loading ${formatNumber(cfg.memoryObjects)}`);
        m.load = await loadObjects(
          server,
          "/api/v1/namespaces/default/configmaps",
          cfg.memoryObjects,
          cfg.memoryConcurrency,
          configMapBody,
        );
        m.loadedRss = processMemory(server.pid).rss;
        await sleep(cfg.loadedSettleMs);
        const after = processMemory(server.pid);
        if (after.rss !== undefined) m.settledRss = after.rss;
        if (after.peak !== undefined) m.peakRss = after.peak;
        return m;
      });
    });
  }
}

// Report

const TRANSPORT_LABEL: Record<Transport, string> = {
  http1: "HTTP/1.1 plain",
  "http1-tls": "HTTP/1.1 TLS",
  "http2-tls": "HTTP/2 TLS",
};

const MB = 1_000_000;

function goals(cfg: Config, r: Results): Goal[] {
  const out: Goal[] = [];
  const check = (
    goal: string,
    target: string,
    value: number | undefined,
    ok: boolean,
    measured: string,
  ) =>
    out.push(
      value === undefined
        ? { goal, target, measured: "not measured" }
        : { goal, target, measured, value, pass: ok },
    );
  for (const t of TRANSPORTS) {
    if (!cfg.only.includes("create")) continue;
    const c = r.creates[t];
    check(
      `creates/s, ${TRANSPORT_LABEL[t]}, ${cfg.workers} clients`,
      ">= 8,000/s, p99 < 50 ms",
      c?.opsPerSec,
      c !== undefined && c.opsPerSec >= 8000 && c.latency.p99 < 50 && c.errors === 0,
      `${formatNumber(c?.opsPerSec)}/s, p99 ${formatMs(c?.latency.p99)}` +
        (c?.errors ? `, ${formatNumber(c.errors)} errors` : ""),
    );
  }
  if (cfg.only.includes("list")) {
    for (const format of ["json", "table"] as const) {
      const l = r.lists.find((x) => x.format === format);
      check(
        `list ${formatNumber(cfg.listPods)} pods (${format === "json" ? "JSON" : "Table"}) p99`,
        "< 150 ms",
        l?.latency.p99,
        (l?.latency.p99 ?? Infinity) < 150,
        `${formatMs(l?.latency.p99)} (p50 ${formatMs(l?.latency.p50)})`,
      );
    }
  }
  if (cfg.only.includes("watch")) {
    const w = r.watch;
    check(
      `watch delivery p99 (${formatNumber(cfg.watch.watchers)} watchers, ${cfg.watch.rate} writes/s)`,
      "< 100 ms",
      w && w.deliveries > 0 ? w.latency.p99 : undefined,
      // The goal holds only under the load it names: the writes must keep (nearly) their pace.
      w !== undefined &&
        w.latency.p99 < 100 &&
        w.missing === 0 &&
        w.writesPerSec >= 0.9 * cfg.watch.rate,
      `${formatMs(w?.latency.p99)}` +
        (w?.missing ? `, ${formatNumber(w.missing)} deliveries missing after the drain` : "") +
        (w && w.writesPerSec < 0.9 * cfg.watch.rate
          ? `; writes reached only ${formatNumber(w.writesPerSec)}/s`
          : "") +
        (r.watchCeiling
          ? ` (bare server: ${formatNumber(r.watchCeiling.writesPerSec)}/s, p99 ${formatMs(r.watchCeiling.latency.p99)})`
          : ""),
    );
  }
  if (cfg.only.includes("security")) {
    for (const op of ["gets", "creates"] as const) {
      const base = r.security?.baseline[op];
      const sec = r.security?.secured[op];
      const ratio = base && sec ? sec.opsPerSec / base.opsPerSec : undefined;
      check(
        `${op}/s with x509 + Node,RBAC + admission vs AlwaysAllow`,
        ">= 0.85x (costs <= 15%)",
        ratio,
        (ratio ?? 0) >= 0.85 && !sec?.errors,
        ratio === undefined
          ? "-"
          : `${formatRatio(ratio)} (${formatNumber(sec!.opsPerSec)}/s vs ${formatNumber(base!.opsPerSec)}/s)`,
      );
    }
  }
  if (cfg.only.includes("memory")) {
    const idle = r.memory?.idleRss;
    check(
      "apiserver RSS idle after start",
      "< 150 MB",
      idle,
      (idle ?? Infinity) < 150 * MB,
      idle === undefined ? "-" : `${(idle / MB).toFixed(1)} MB (${formatBytes(idle)})`,
    );
  }
  return out;
}

function printReport(cfg: Config, env: Env, r: Results, goalList: Goal[]): void {
  const rows: Array<Record<string, Cell>> = [];
  const pct = (v: number | undefined) => (v === undefined ? "" : `${v.toFixed(0)}%`);
  const row = (figure: string, value: string, lat?: Partial<Summary>, cpu?: Partial<CpuUse>) =>
    rows.push({
      figure,
      value,
      p50: lat ? formatMs(lat.p50) : "",
      p99: lat ? formatMs(lat.p99) : "",
      max: lat ? formatMs(lat.max) : "",
      "server CPU": pct(cpu?.serverCpuPct),
      "client CPU": pct(cpu?.clientCpuPct),
      "other CPU": pct(cpu?.otherCpuPct),
    });
  const rate = (t: ThroughputResult | undefined) =>
    t
      ? `${formatNumber(t.opsPerSec)}/s${t.errors ? ` (${formatNumber(t.errors)} errors)` : ""}`
      : "-";
  const w = cfg.workers;
  if (cfg.only.includes("ceiling")) {
    row(
      `ceiling: bare node:http, parse + answer the pod, ${w} conns`,
      rate(r.ceiling),
      r.ceiling?.latency,
      r.ceiling,
    );
  }
  if (cfg.only.includes("create")) {
    const label: Record<Transport, string> = {
      http1: `creates, HTTP/1.1 plain, ${w} conns`,
      "http1-tls": `creates, HTTP/1.1 TLS, ${w} conns`,
      "http2-tls": `creates, HTTP/2 TLS, 1 session x ${w} streams`,
    };
    for (const t of TRANSPORTS) {
      const c = r.creates[t];
      row(label[t], rate(c), c?.latency, c);
    }
    const vs =
      r.ceiling && r.creates.http1 ? r.creates.http1.opsPerSec / r.ceiling.opsPerSec : undefined;
    if (vs !== undefined) row("  HTTP/1.1 plain creates vs ceiling", formatRatio(vs));
  }
  if (r.loadPods) {
    const l = r.loadPods;
    row(
      `load ${formatNumber(cfg.listPods)} pods, ${l.concurrency} in flight`,
      `${formatNumber(l.perSec)}/s (${(l.elapsedMs / 1000).toFixed(1)} s)`,
      undefined,
      l,
    );
  }
  if (cfg.only.includes("get"))
    row(`gets, HTTP/1.1 plain, ${w} conns`, rate(r.gets), r.gets?.latency, r.gets);
  for (const l of r.lists) {
    row(
      `list ${formatNumber(l.items)} pods, ${l.format === "json" ? "JSON" : "Table"} (${l.runs} runs)`,
      formatBytes(l.bytes),
      l.latency,
      l,
    );
  }
  const wt = r.watch;
  if (wt) {
    row(
      `watch: ${formatNumber(wt.watchers)} watchers, ${wt.targetRate} creates/s x ${cfg.watch.durationMs / 1000} s: delivery from write response`,
      `${formatNumber(wt.deliveries)} of ${formatNumber(wt.expectedDeliveries)}`,
      wt.latency,
      wt,
    );
    row("  delivery from write request", "", wt.latencyFromSend);
    row(
      "  writes: achieved rate, latency",
      `${formatNumber(wt.writesPerSec)}/s` +
        (wt.writeErrors ? `, ${wt.writeErrors} errors` : "") +
        (wt.unanswered ? `, ${wt.unanswered} unanswered` : ""),
      wt.writeLatency,
    );
    row("  deliveries/s (first write to last delivery)", `${formatNumber(wt.deliveriesPerSec)}/s`);
    row(
      "  drain: last write answered to last delivery",
      `${formatMs(wt.drainMs)}${wt.drainTimedOut ? " (gave up)" : ""}`,
    );
  }
  const wc = r.watchCeiling;
  if (wc) {
    row(
      `ceiling: bare node:http, the same fan-out, events of ${wt ? "the same size" : "the posted size"}`,
      `${formatNumber(wc.deliveries)} of ${formatNumber(wc.expectedDeliveries)}`,
      wc.latency,
      wc,
    );
    row(
      "  writes: achieved rate, latency",
      `${formatNumber(wc.writesPerSec)}/s` + (wc.writeErrors ? `, ${wc.writeErrors} errors` : ""),
      wc.writeLatency,
    );
    row("  deliveries/s (first write to last delivery)", `${formatNumber(wc.deliveriesPerSec)}/s`);
  }
  const sec = r.security;
  if (sec) {
    const label = {
      baseline: "AlwaysAllow + admission",
      secured: "x509 + Node,RBAC + admission",
    } as const;
    for (const which of ["baseline", "secured"] as const) {
      const run = sec[which];
      row(
        `security: gets, HTTP/1.1 TLS, ${label[which]}`,
        rate(run.gets),
        run.gets?.latency,
        run.gets,
      );
      row(
        `security: creates, HTTP/1.1 TLS, ${label[which]}`,
        rate(run.creates),
        run.creates?.latency,
        run.creates,
      );
    }
    const ratio = (a?: ThroughputResult, b?: ThroughputResult) =>
      a && b ? formatRatio(a.opsPerSec / b.opsPerSec) : "-";
    row("  secured vs AlwaysAllow: gets", ratio(sec.secured.gets, sec.baseline.gets));
    row("  secured vs AlwaysAllow: creates", ratio(sec.secured.creates, sec.baseline.creates));
  }
  const m = r.memory;
  if (m) {
    row("memory: apiserver RSS idle (2 s after ready)", formatBytes(m.idleRss));
    if (m.load) {
      row(
        `  load ${formatNumber(cfg.memoryObjects)} ConfigMaps, ${m.load.concurrency} in flight`,
        `${formatNumber(m.load.perSec)}/s (${(m.load.elapsedMs / 1000).toFixed(1)} s)` +
          (m.load.errors ? `, ${formatNumber(m.load.errors)} errors` : ""),
        undefined,
        m.load,
      );
    }
    row(`  RSS with ${formatNumber(m.load?.objects)} ConfigMaps stored`, formatBytes(m.loadedRss));
    row(`  RSS ${cfg.loadedSettleMs / 1000} s later`, formatBytes(m.settledRss));
    row("  peak RSS (VmHWM)", formatBytes(m.peakRss));
  }

  console.log("");
  console.log(
    `API server benchmark${cfg.quick ? " (--quick)" : ""}: ${env.date}, node ${env.node}, ` +
      `${env.cpus} CPUs (${env.cpuModel}), source ${env.source ?? "-"}, ` +
      `pod body ${formatNumber(env.podBodyBytes)} bytes, load average before ` +
      env.loadAvgStart.toFixed(2),
  );
  console.log("");
  printTable(rows, { leftAlign: ["figure", "value"] });
  console.log(
    "(CPU: % of one core over the measured window; other: the rest of the machine's busy time)",
  );
  const errors = Object.entries(r.errors).map(([k, v]) => `${k}: ${v}`);
  const firsts: Array<[string, { firstError?: string } | undefined]> = [
    ["ceiling", r.ceiling],
    ...TRANSPORTS.map((t): [string, ThroughputResult | undefined] => [
      `creates ${t}`,
      r.creates[t],
    ]),
    ["load pods", r.loadPods],
    ["gets", r.gets],
    ["watch writes", r.watch],
    ["watch ceiling writes", r.watchCeiling],
    ["memory load", r.memory?.load],
  ];
  for (const [k, v] of firsts) if (v?.firstError) errors.push(`${k}: first error: ${v.firstError}`);
  if (errors.length > 0) {
    console.log("");
    console.log("Errors:");
    for (const e of errors) console.log(`  ${e}`);
  }
  console.log("");
  printGoals(goalList);
  if (r.profiles.length > 0) {
    console.log("");
    console.log("CPU profiles (node dist/bench/apiserver/profile.js FILE):");
    for (const p of r.profiles) console.log(`  ${p}`);
  }
  console.log("");
}

/** JSON with floats rounded to 4 decimals, NaN/Infinity as null; long sample lists left out. */
function toJson(value: unknown): string {
  return JSON.stringify(value, (k, v: unknown) => {
    if (k === "times" && Array.isArray(v) && v.length > 50) return undefined;
    return typeof v === "number" ? (Number.isFinite(v) ? Math.round(v * 1e4) / 1e4 : null) : v;
  });
}

async function main(): Promise<number> {
  const cfg = parseArgs(process.argv.slice(2));
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "k8ts-bench-apiserver-"));
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    log(`${sig}: stopping`);
    void stopAll().finally(() => {
      fs.rmSync(root, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  process.on("exit", killAllNow);
  const env: Env = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? "unknown",
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    tmpDir: os.tmpdir(),
    podBodyBytes: podBodyBytes(),
    loadAvgStart: os.loadavg()[0] ?? NaN,
  };
  const source = await sourceRevision();
  if (source) env.source = source;
  const results: Results = { creates: {}, lists: [], servers: [], errors: {}, profiles: [] };
  const t0 = performance.now();
  try {
    await run(cfg, root, results);
  } finally {
    await stopAll();
    fs.rmSync(root, { recursive: true, force: true });
  }
  if (interrupted) return 130;
  log(`done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  const goalList = goals(cfg, results);
  printReport(cfg, env, results, goalList);
  console.log(
    "BENCH_JSON " +
      toJson({
        bench: "apiserver",
        quick: cfg.quick,
        env,
        config: cfg,
        results,
        goals: goalList.map((g) => ({
          goal: g.goal,
          target: g.target,
          value: g.value ?? null,
          pass: g.pass ?? null,
        })),
      }),
  );
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`bench:apiserver failed: ${String((err as Error)?.stack ?? err)}`);
    process.exit(1);
  },
);
