/** Facts about processes from /proc. */
import fs from "node:fs";
import { performance } from "node:perf_hooks";

/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

/** CPU time (user + system) of a process in ms, from /proc; undefined where unavailable. */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // The fields after the command name (which may contain spaces) in parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1000) / CLOCK_TICKS_PER_SECOND : undefined;
  } catch {
    return undefined;
  }
}

/** VmRSS and VmHWM (peak) of a process in bytes, from /proc/PID/status. */
export function processMemory(pid: number): { rss?: number; peak?: number } {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (name: string) => {
      const m = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status);
      return m ? Number(m[1]) * 1024 : undefined;
    };
    const out: { rss?: number; peak?: number } = {};
    const rss = kb("VmRSS");
    const peak = kb("VmHWM");
    if (rss !== undefined) out.rss = rss;
    if (peak !== undefined) out.peak = peak;
    return out;
  } catch {
    return {};
  }
}

/** Busy CPU time of the whole machine (all cores) in ms, from /proc/stat. */
function machineBusyMs(): number | undefined {
  try {
    const line = fs.readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!;
    // cpu user nice system idle iowait irq softirq steal ...
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!;
    return Number.isFinite(busy) ? (busy * 1000) / CLOCK_TICKS_PER_SECOND : undefined;
  } catch {
    return undefined;
  }
}

/** CPU use over a window, % of one core: this process, the server, and everything else. */
export interface CpuUse {
  clientCpuPct: number;
  serverCpuPct?: number;
  /** The machine's busy time minus client and server: other processes and the kernel. */
  otherCpuPct?: number;
}

/** Starts measuring CPU use; the returned function ends the window and gives the figures. */
export function cpuWindow(serverPid?: number): () => CpuUse & { elapsedMs: number } {
  const t0 = performance.now();
  const client0 = process.cpuUsage();
  const server0 = serverPid === undefined ? undefined : processCpuMs(serverPid);
  const machine0 = machineBusyMs();
  return () => {
    const elapsedMs = performance.now() - t0;
    const c = process.cpuUsage(client0);
    const clientMs = (c.user + c.system) / 1000;
    const out: CpuUse & { elapsedMs: number } = {
      elapsedMs,
      clientCpuPct: (clientMs / elapsedMs) * 100,
    };
    const server1 = serverPid === undefined ? undefined : processCpuMs(serverPid);
    const serverMs = server0 !== undefined && server1 !== undefined ? server1 - server0 : undefined;
    if (serverMs !== undefined) out.serverCpuPct = (serverMs / elapsedMs) * 100;
    const machine1 = machineBusyMs();
    if (machine0 !== undefined && machine1 !== undefined) {
      const other = machine1 - machine0 - clientMs - (serverMs ?? 0);
      out.otherCpuPct = Math.max(0, (other / elapsedMs) * 100);
    }
    return out;
  };
}
