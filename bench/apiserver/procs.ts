/**
 * The benchmark's child processes: `k8ts apiserver` (started as `node bin/k8ts apiserver ...`, so
 * that node flags such as --cpu-prof apply to it) and the bare `node:http` server of the ceiling.
 * Every child is tracked by its PID and stopped by it, at the end and on errors or signals.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { requestOnce } from "./client.js";
import { freePort, freePorts } from "../../src/testing/net.js";

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist/bench/apiserver -> the checkout's bin/k8ts. */
export const k8tsBin = path.resolve(here, "../../../bin/k8ts");
/** The compiled ceiling server beside this module. */
const ceilingScript = path.join(here, "ceiling-server.js");

const running = new Set<ChildProcess>();

/** Set once the run winds down (signal or end): no new child is started. */
let stopping = false;

export function isStopping(): boolean {
  return stopping;
}

/** Stops every child still running: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopAll(graceMs = 10_000): Promise<void> {
  stopping = true;
  await Promise.allSettled([...running].map((c) => stopChild(c, graceMs)));
}

/** Last resort at exit: SIGKILL to every child still running, by its PID. */
export function killAllNow(): void {
  for (const c of running) {
    if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
      try {
        process.kill(c.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}

async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
    running.delete(child);
    return;
  }
  const pid = child.pid;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    // already gone
  }
  const timer = setTimeout(() => {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }, graceMs);
  await exited;
  clearTimeout(timer);
  running.delete(child);
}

function track(child: ChildProcess): { log: () => string } {
  running.add(child);
  let log = "";
  const keep = (d: Buffer) => {
    log += d.toString();
    if (log.length > 64 * 1024) log = log.slice(-32 * 1024);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  child.once("exit", () => running.delete(child));
  return { log: () => log };
}

export interface ServerProc {
  pid: number;
  /** Plain HTTP port. */
  port: number;
  /** The apiserver's HTTPS port (HTTP/1.1 and HTTP/2), and the CA of its certificate. */
  securePort?: number;
  ca?: Buffer;
  /** The client certificate and key HTTPS clients authenticate with, when the server asks. */
  clientCert?: Buffer;
  clientKey?: Buffer;
  /** How long from spawn to ready, ms. */
  startMs: number;
  log(): string;
  stop(): Promise<void>;
}

async function waitReady(
  child: ChildProcess,
  log: () => string,
  ready: () => Promise<boolean>,
  what: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}):\n${log()}`);
    if (await ready().catch(() => false)) return;
    if (Date.now() > deadline)
      throw new Error(`${what} not ready after ${timeoutMs} ms:\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function httpStatus(port: number, urlPath: string): Promise<number> {
  return (await requestOnce({ host: "127.0.0.1", port }, "GET", urlPath)).status;
}

/**
 * Starts `k8ts apiserver` on loopback with its data and certs under `dir` (created), serving HTTPS
 * and plain HTTP; resolves once /readyz answers 200. `nodeArgs` go to node (e.g. --cpu-prof).
 */
export async function startAPIServer(
  dir: string,
  nodeArgs: string[] = [],
  extraArgs: string[] = [],
  client?: { ca: Buffer; cert: Buffer; key: Buffer },
): Promise<ServerProc> {
  if (stopping) throw new Error("interrupted");
  fs.mkdirSync(dir, { recursive: true });
  const [securePort, port] = (await freePorts(2)) as [number, number];
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      k8tsBin,
      "apiserver",
      `--data-dir=${path.join(dir, "data")}`,
      `--cert-dir=${path.join(dir, "certs")}`,
      `--secure-port=${securePort}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--insecure-port=${port}`,
      ...extraArgs,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const { log } = track(child);
  const stop = () => stopChild(child, 20_000);
  try {
    await waitReady(
      child,
      log,
      async () => (await httpStatus(port, "/readyz")) === 200,
      "k8ts apiserver",
    );
    // The `default` ServiceAccount the ServiceAccount admission plugin wants for every pod (the
    // controller manager creates it in a cluster; the benchmark runs the API server alone).
    const sa = await requestOnce(
      { host: "127.0.0.1", port },
      "POST",
      "/api/v1/namespaces/default/serviceaccounts",
      '{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default"}}',
      { "content-type": "application/json" },
    );
    if (sa.status !== 201 && sa.status !== 409) {
      throw new Error(`creating the default ServiceAccount: HTTP ${sa.status}: ${sa.body}`);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    pid: child.pid!,
    port,
    securePort,
    ca: client?.ca ?? fs.readFileSync(path.join(dir, "certs", "apiserver.crt")),
    ...(client ? { clientCert: client.cert, clientKey: client.key } : {}),
    startMs: performance.now() - t0,
    log,
    stop,
  };
}

/**
 * Starts the bare `node:http` server of the ceiling (ceiling-server.js) on a loopback port;
 * `eventBytes`: the size its watch events are padded to.
 */
export async function startCeilingServer(
  nodeArgs: string[] = [],
  eventBytes?: number,
): Promise<ServerProc> {
  if (stopping) throw new Error("interrupted");
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [...nodeArgs, ceilingScript, String(port), ...(eventBytes ? [String(eventBytes)] : [])],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const { log } = track(child);
  const stop = () => stopChild(child, 10_000);
  try {
    await waitReady(child, log, async () => log().includes("listening"), "ceiling server");
  } catch (err) {
    await stop();
    throw err;
  }
  return { pid: child.pid!, port, startMs: performance.now() - t0, log, stop };
}
