/**
 * Where the time goes in a V8 CPU profile (`node --cpu-prof`, e.g. the apiserver's profiles left
 * by `main.js --cpu-prof DIR`): the functions with the most self time and the most total time
 * (self plus callees), and self time per file.
 *
 *   node dist/bench/apiserver/profile.js FILE.cpuprofile [--top N]
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { printTable } from "../lib/stats.js";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

function where(f: CallFrame): string {
  let url = f.url.startsWith("file://") ? fileURLToPath(f.url) : f.url;
  if (url.startsWith(repo + path.sep)) url = path.relative(repo, url);
  url = url.replace(/^dist\//, "").replace(/^node_modules\//, "~/");
  return url ? `${url}:${f.lineNumber + 1}` : "";
}

function key(f: CallFrame): string {
  return `${f.functionName || "(anonymous)"} ${where(f)}`.trim();
}

export interface ProfileSummary {
  totalMs: number;
  /** Time in (idle), i.e. the event loop waiting. */
  idleMs: number;
  self: Array<{ fn: string; ms: number }>;
  total: Array<{ fn: string; ms: number }>;
  files: Array<{ file: string; ms: number }>;
}

export function summarizeProfile(file: string): ProfileSummary {
  const p = JSON.parse(fs.readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const files = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    // timeDeltas[i] is the time before sample i; the time after it is the better estimate.
    const us = p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0;
    const node = byId.get(p.samples[i]!);
    if (!node) continue;
    totalUs += us;
    if (node.callFrame.functionName === "(idle)") {
      idleUs += us;
      continue;
    }
    const k = key(node.callFrame);
    self.set(k, (self.get(k) ?? 0) + us);
    const file = where(node.callFrame).replace(/:\d+$/, "") || node.callFrame.functionName;
    files.set(file, (files.get(file) ?? 0) + us);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id)!;
      const kk = key(n.callFrame);
      if (kk === "(root)" || seen.has(kk)) continue;
      seen.add(kk);
      total.set(kk, (total.get(kk) ?? 0) + us);
    }
  }
  const sorted = (m: Map<string, number>) =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).map(([k, us]) => ({ k, ms: us / 1000 }));
  return {
    totalMs: totalUs / 1000,
    idleMs: idleUs / 1000,
    self: sorted(self).map(({ k, ms }) => ({ fn: k, ms })),
    total: sorted(total).map(({ k, ms }) => ({ fn: k, ms })),
    files: sorted(files).map(({ k, ms }) => ({ file: k, ms })),
  };
}

function main(): void {
  const args = process.argv.slice(2);
  let top = 30;
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--top") top = Number(args[++i]);
    else files.push(args[i]!);
  }
  if (files.length === 0) {
    console.error("usage: node dist/bench/apiserver/profile.js FILE.cpuprofile [--top N]");
    process.exit(2);
  }
  for (const file of files) {
    const s = summarizeProfile(file);
    const busy = s.totalMs - s.idleMs;
    const share = (ms: number) => `${((ms / busy) * 100).toFixed(1)}%`;
    console.log(
      `${file}: ${(s.totalMs / 1000).toFixed(1)} s sampled, ${(busy / 1000).toFixed(1)} s busy ` +
        `(${((busy / s.totalMs) * 100).toFixed(0)}%); shares below are of the busy time`,
    );
    console.log("");
    printTable(
      s.self
        .slice(0, top)
        .map((x) => ({ "self time": x.fn, ms: x.ms.toFixed(0), share: share(x.ms) })),
    );
    console.log("");
    printTable(
      s.total
        .slice(0, top)
        .map((x) => ({ "total time": x.fn, ms: x.ms.toFixed(0), share: share(x.ms) })),
    );
    console.log("");
    printTable(
      s.files
        .slice(0, top)
        .map((x) => ({ "self time by file": x.file, ms: x.ms.toFixed(0), share: share(x.ms) })),
    );
    console.log("");
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) main();
