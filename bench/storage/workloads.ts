/**
 * The workloads of the storage benchmark, each against any `Store`: concurrent creates, point
 * reads, full lists, watch fan-out under write load, and churn followed by compaction.
 */
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Store, Watch } from "../../src/storage/interface.js";
import { Samples, summarize, timeRuns, type Summary } from "../lib/stats.js";

export const VALUE_BYTES = 1024;

/** A 1 KiB value of random bytes (incompressible, as a serialized object roughly is not). */
export function makeValue(bytes = VALUE_BYTES): Buffer {
  return randomBytes(bytes);
}

/** A copy of `base` carrying `performance.now()` in its first 8 bytes (for watch latency). */
function stampedValue(base: Buffer): Buffer {
  const v = Buffer.allocUnsafe(base.length);
  base.copy(v);
  v.writeDoubleLE(performance.now(), 0);
  return v;
}

function readStamp(value: Uint8Array): number {
  return new DataView(value.buffer, value.byteOffset, value.byteLength).getFloat64(0, true);
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

/** Calls `fn` between benchmark phases so one phase's garbage is not collected in the next. */
export function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) gc();
}

export interface ThroughputResult {
  /** Operations that succeeded. */
  ops: number;
  errors: number;
  /** First error message, if any. */
  firstError?: string;
  elapsedMs: number;
  opsPerSec: number;
  /** Per-operation latency in ms. */
  latency: Summary;
}

/**
 * Runs `workers` concurrent loops of `op(worker, i)` (each awaiting its previous op) for
 * `durationMs`; reports successful ops per second and per-op latency.
 */
export async function runConcurrent(
  workers: number,
  durationMs: number,
  op: (worker: number, i: number) => Promise<unknown>,
): Promise<ThroughputResult> {
  const latency = new Samples(1 << 16);
  let errors = 0;
  let firstError: string | undefined;
  const start = performance.now();
  const deadline = start + durationMs;
  let lastDone = start;
  const worker = async (w: number) => {
    for (let i = 0; performance.now() < deadline; i++) {
      const t0 = performance.now();
      try {
        await op(w, i);
        const t1 = performance.now();
        latency.push(t1 - t0);
        if (t1 > lastDone) lastDone = t1;
      } catch (err) {
        errors++;
        firstError ??= String((err as Error)?.message ?? err);
        if (errors > 1000) throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
  const elapsedMs = Math.max(lastDone - start, 1e-3);
  const ops = latency.length;
  const result: ThroughputResult = {
    ops,
    errors,
    elapsedMs,
    opsPerSec: (ops * 1000) / elapsedMs,
    latency: latency.summarize(),
  };
  if (firstError !== undefined) result.firstError = firstError;
  return result;
}

/** `writers` concurrent writers, each creating distinct keys under `prefix` for `durationMs`. */
export function runCreates(
  store: Store,
  prefix: string,
  writers: number,
  durationMs: number,
  value: Buffer,
): Promise<ThroughputResult> {
  return runConcurrent(writers, durationMs, (w, i) =>
    store.create(`${prefix}w${pad(w, 3)}/obj-${pad(i, 8)}`, value),
  );
}

export interface LoadResult {
  keys: string[];
  elapsedMs: number;
  opsPerSec: number;
}

/** Creates `count` keys `${prefix}obj-NNNNNNN` with `concurrency` creates in flight. */
export async function loadKeys(
  store: Store,
  prefix: string,
  count: number,
  concurrency: number,
  value: Buffer,
): Promise<LoadResult> {
  const keys = Array.from({ length: count }, (_, i) => `${prefix}obj-${pad(i, 7)}`);
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < keys.length) {
      const key = keys[next++]!;
      await store.create(key, value);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  const elapsedMs = performance.now() - t0;
  return { keys, elapsedMs, opsPerSec: (count * 1000) / elapsedMs };
}

/** `readers` concurrent readers, each getting random keys of `keys` for `durationMs`. */
export async function runReads(
  store: Store,
  keys: string[],
  readers: number,
  durationMs: number,
): Promise<ThroughputResult> {
  let missing = 0;
  const result = await runConcurrent(readers, durationMs, async () => {
    const key = keys[Math.floor(Math.random() * keys.length)]!;
    const r = await store.get(key);
    if (!r.kv) missing++;
  });
  if (missing > 0) {
    result.errors += missing;
    result.firstError ??= `${missing} reads found no value`;
  }
  return result;
}

export interface ListBenchResult {
  keys: number;
  runs: number;
  /** Milliseconds per full list (after one unmeasured warm-up run). */
  latency: Summary;
  /** Approximate bytes of values per list. */
  valueBytes: number;
}

/** Lists the whole prefix `runs` times, checking that every list returns `expected` keys. */
export async function runLists(
  store: Store,
  prefix: string,
  expected: number,
  runs: number,
): Promise<ListBenchResult> {
  let valueBytes = 0;
  const times = await timeRuns(
    runs,
    async () => {
      const r = await store.list(prefix);
      if (r.kvs.length !== expected || r.more) {
        throw new Error(`list ${prefix}: got ${r.kvs.length} keys, expected ${expected}`);
      }
      valueBytes = 0;
      for (const kv of r.kvs) valueBytes += kv.value.length;
    },
    1,
  );
  return { keys: expected, runs, latency: summarize(times), valueBytes };
}

export interface WatchBenchResult {
  watchers: number;
  writers: number;
  /** Writes made during the test. */
  writes: number;
  writesPerSec: number;
  /** Events received over all watchers (watchers × writes when nothing was lost). */
  deliveries: number;
  expectedDeliveries: number;
  /** ms from just before create() to the watcher receiving the event, over every delivery. */
  latency: Summary;
  /** ms from the last write's completion until every watcher had every event. */
  drainMs: number;
  firstError?: string;
}

/**
 * `watchers` prefix watches on `prefix`, and `writers` writers creating keys under it for
 * `durationMs`; each value carries the time its create() was called.
 */
export async function runWatchFanout(
  store: Store,
  prefix: string,
  watchers: number,
  writers: number,
  durationMs: number,
  base: Buffer,
  drainTimeoutMs = 60_000,
): Promise<WatchBenchResult> {
  // Start every watch at the next revision, so that no event is missed while watches register.
  const { revision } = await store.status();
  const watches: Watch[] = [];
  for (let i = 0; i < watchers; i++) {
    watches.push(store.watch(prefix, { prefix: true, startRevision: revision + 1 }));
  }
  const latency = new Samples(1 << 20);
  const received = new Array<number>(watchers).fill(0);
  let delivered = 0;
  let target = Infinity;
  let firstError: string | undefined;
  let allDelivered: () => void = () => {};
  const drained = new Promise<void>((resolve) => (allDelivered = resolve));
  const consumers = watches.map(async (w, idx) => {
    try {
      for await (const msg of w) {
        if (msg.type !== "events") continue;
        const now = performance.now();
        for (const e of msg.events) latency.push(now - readStamp(e.kv.value));
        received[idx]! += msg.events.length;
        delivered += msg.events.length;
        if (delivered >= target) allDelivered();
      }
    } catch (err) {
      firstError ??= `watch ${idx}: ${String((err as Error)?.message ?? err)}`;
    }
  });

  const writes = await runConcurrent(writers, durationMs, (w, i) =>
    store.create(`${prefix}w${pad(w, 3)}/obj-${pad(i, 8)}`, stampedValue(base)),
  );
  const writesDoneAt = performance.now();
  target = writes.ops * watchers;
  if (delivered >= target) allDelivered();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, drainTimeoutMs);
  });
  await Promise.race([drained, timedOut]);
  clearTimeout(timer);
  const drainMs = performance.now() - writesDoneAt;
  for (const w of watches) w.close();
  await Promise.all(consumers);
  if (delivered < target) {
    firstError ??= `only ${delivered} of ${target} deliveries within ${drainTimeoutMs} ms`;
  }
  const result: WatchBenchResult = {
    watchers,
    writers,
    writes: writes.ops,
    writesPerSec: writes.opsPerSec,
    deliveries: delivered,
    expectedDeliveries: target,
    latency: latency.summarize(),
    drainMs,
  };
  if (writes.firstError !== undefined) firstError ??= `write: ${writes.firstError}`;
  if (firstError !== undefined) result.firstError = firstError;
  return result;
}

export interface ChurnResult {
  keys: number;
  updatesPerKey: number;
  writers: number;
  updates: number;
  elapsedMs: number;
  updatesPerSec: number;
  /** Live data: keys × (key bytes + value bytes). */
  liveBytes: number;
  keyBytes: number;
}

/**
 * Creates `keys` keys, then updates each `updatesPerKey` times with `writers` concurrent writers
 * (writer w owns keys w, w + writers, ...; each update compares against the key's modRevision).
 */
export async function runChurn(
  store: Store,
  prefix: string,
  keys: number,
  updatesPerKey: number,
  writers: number,
  value: Buffer,
): Promise<ChurnResult> {
  const names = Array.from({ length: keys }, (_, i) => `${prefix}cm-${pad(i, 6)}`);
  const modRev = new Array<number>(keys).fill(0);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(writers, keys) }, async () => {
      while (next < keys) {
        const k = next++;
        modRev[k] = (await store.create(names[k]!, value)).revision;
      }
    }),
  );
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(writers, keys) }, async (_, w) => {
      for (let r = 0; r < updatesPerKey; r++) {
        for (let k = w; k < keys; k += writers) {
          modRev[k] = (await store.update(names[k]!, value, modRev[k]!)).revision;
        }
      }
    }),
  );
  const elapsedMs = performance.now() - t0;
  const keyBytes = names.reduce((n, k) => n + Buffer.byteLength(k), 0);
  return {
    keys,
    updatesPerKey,
    writers,
    updates: keys * updatesPerKey,
    elapsedMs,
    updatesPerSec: (keys * updatesPerKey * 1000) / elapsedMs,
    liveBytes: keyBytes + keys * value.length,
    keyBytes,
  };
}
