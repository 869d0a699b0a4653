/**
 * A small benchmark harness: latency samples, percentiles, summaries and a plain-text table.
 * Generic on purpose; every benchmark under bench/ may use it.
 */
import { performance } from "node:perf_hooks";

/**
 * The p-th percentile (0..100) of `values` by the nearest-rank method: the smallest sample such
 * that at least p% of the samples are at or below it. NaN for no samples. Does not modify `values`.
 */
export function percentile(values: ArrayLike<number>, p: number): number {
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  return percentileOfSorted(sorted, p);
}

/** `percentile` over samples already sorted ascending. */
export function percentileOfSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const rank = Math.ceil((Math.min(100, Math.max(0, p)) / 100) * n);
  return sorted[Math.min(n - 1, Math.max(0, rank - 1))]!;
}

export interface Summary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Count, min, mean, p50, p90, p99 and max of the samples (NaN for each figure when empty). */
export function summarize(samples: ArrayLike<number>): Summary {
  const sorted = Float64Array.from(samples as ArrayLike<number>).sort();
  const n = sorted.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  return {
    count: n,
    min: n ? sorted[0]! : NaN,
    mean: n ? sum / n : NaN,
    p50: percentileOfSorted(sorted, 50),
    p90: percentileOfSorted(sorted, 90),
    p99: percentileOfSorted(sorted, 99),
    max: n ? sorted[n - 1]! : NaN,
  };
}

/**
 * A growable buffer of numeric samples (e.g. latencies in ms) that stays compact for millions of
 * samples, unlike an array of boxed numbers.
 */
export class Samples {
  private data: Float64Array;
  private n = 0;

  constructor(initialCapacity = 1024) {
    this.data = new Float64Array(Math.max(16, initialCapacity));
  }

  get length(): number {
    return this.n;
  }

  push(value: number): void {
    if (this.n === this.data.length) {
      const grown = new Float64Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.n++] = value;
  }

  /** Appends every sample of `other`. */
  append(other: Samples): void {
    for (const v of other.values()) this.push(v);
  }

  /** A view of the samples (valid until the next push). */
  values(): Float64Array {
    return this.data.subarray(0, this.n);
  }

  summarize(): Summary {
    return summarize(this.values());
  }
}

/** Runs `fn` once and returns its result with the wall time it took, in milliseconds. */
export async function timeIt<T>(fn: () => T | Promise<T>): Promise<{ result: T; ms: number }> {
  const t0 = performance.now();
  const result = await fn();
  return { result, ms: performance.now() - t0 };
}

/** Runs `fn` `runs` times in sequence (after `warmup` unmeasured runs); returns each run's ms. */
export async function timeRuns(
  runs: number,
  fn: (run: number) => unknown,
  warmup = 0,
): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn(-1 - i);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn(i);
    times.push(performance.now() - t0);
  }
  return times;
}

// Formatting

/** A number with thousands separators and at most `digits` decimals ("12,345", "0.42"). */
export function formatNumber(value: number | undefined, digits = 0): string {
  if (value === undefined || !Number.isFinite(value)) return "-";
  return value.toLocaleString("en-US", {
    minimumFractionDigits: 0,
    maximumFractionDigits: digits,
  });
}

/** Milliseconds with a precision that suits their size ("0.042 ms", "3.1 ms", "412 ms"). */
export function formatMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "-";
  if (ms < 1) return `${ms.toFixed(3)} ms`;
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${formatNumber(ms, 0)} ms`;
}

/** Bytes in binary units ("812 B", "1.5 MiB"). */
export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined || !Number.isFinite(bytes)) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

/** A ratio as "3.2x". */
export function formatRatio(value: number | undefined, digits = 2): string {
  if (value === undefined || !Number.isFinite(value)) return "-";
  return `${value.toFixed(digits)}x`;
}

export type Cell = string | number | undefined | null;

export interface TableOptions {
  /** Columns in order; by default every key of the rows in order of first appearance. */
  columns?: string[];
  /** Columns to align left (text); others align right. Default: the first column. */
  leftAlign?: string[];
  title?: string;
  /** Where the lines go; console.log by default. */
  out?: (line: string) => void;
}

/** Renders rows as an aligned plain-text table (numbers get thousands separators). */
export function formatTable(rows: Array<Record<string, Cell>>, opts: TableOptions = {}): string {
  const columns = opts.columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const left = new Set(opts.leftAlign ?? columns.slice(0, 1));
  const text = (c: Cell): string =>
    c === undefined || c === null ? "" : typeof c === "number" ? formatNumber(c, 2) : c;
  const cells = rows.map((r) => columns.map((c) => text(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => (left.has(columns[i]!) ? v.padEnd(widths[i]!) : v.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  const out: string[] = [];
  if (opts.title) out.push(opts.title);
  out.push(line(columns));
  out.push(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of cells) out.push(line(r));
  return out.join("\n");
}

/** Prints `formatTable(rows, opts)`. */
export function printTable(rows: Array<Record<string, Cell>>, opts: TableOptions = {}): void {
  const print = opts.out ?? ((l: string) => console.log(l));
  for (const l of formatTable(rows, opts).split("\n")) print(l);
}

/** A benchmark goal and how the run did against it. */
export interface Goal {
  goal: string;
  target: string;
  measured: string;
  value?: number;
  pass?: boolean;
}

/** Prints the goal table: PASS, FAIL, or n/a for goals a run did not measure. */
export function printGoals(goals: Goal[]): void {
  printTable(
    goals.map((g) => ({
      goal: g.goal,
      target: g.target,
      measured: g.measured,
      result: g.pass === undefined ? "n/a" : g.pass ? "PASS" : "FAIL",
    })),
    { leftAlign: ["goal", "target", "measured", "result"] },
  );
}
