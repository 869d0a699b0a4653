import { spawn, type ChildProcess } from "node:child_process";
import { k8tsBin } from "./apiserver.js";

/**
 * Waits until `check` answers something truthy, retrying while it throws; fails after
 * `timeoutMs` with the last error.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs: number,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A `k8ts <command>` child process and its log, stopped by its PID; every one started is kept in
 * `started` so that a suite can stop them all at its end.
 */
export class K8tsProcess {
  log = "";
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;

  constructor(
    args: string[],
    started: K8tsProcess[],
    private readonly logTimeoutMs: number,
  ) {
    this.child = spawn(k8tsBin, args, { stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout!.on("data", (d: Buffer) => (this.log += d.toString()));
    this.child.stderr!.on("data", (d: Buffer) => (this.log += d.toString()));
    this.exited = new Promise((r) => this.child.once("exit", (code) => r(code)));
    started.push(this);
  }

  waitForLog(re: RegExp, timeoutMs = this.logTimeoutMs): Promise<RegExpMatchArray> {
    return waitFor(`log ${re} in\n${this.log}`, () => this.log.match(re), timeoutMs);
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill(signal);
    await this.exited;
  }
}
