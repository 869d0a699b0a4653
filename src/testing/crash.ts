import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/**
 * Starts the crash writer (src/storage/crash-writer.ts) on a store, lets it acknowledge at least
 * `acks` writes, calls `kill` (by default SIGKILL of the writer itself), and returns the last
 * acknowledged counter of every key. Lines cut short by the kill are ignored.
 */
export async function runCrashWriter(
  storeConfig: unknown,
  opts: { acks: number; kill?: (writerPid: number) => Promise<void>; timeoutMs?: number },
): Promise<Map<string, number>> {
  const script = fileURLToPath(new URL("../storage/crash-writer.js", import.meta.url));
  const child = spawn(process.execPath, [script, JSON.stringify(storeConfig)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const acked = new Map<string, number>();
  let count = 0;
  let buffered = "";
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`crash writer acknowledged only ${count} writes: ${stderr}`)),
        opts.timeoutMs ?? 30_000,
      );
      child.stdout.on("data", (d: Buffer) => {
        buffered += d.toString();
        let nl;
        while ((nl = buffered.indexOf("\n")) >= 0) {
          const [tag, key, n] = buffered.slice(0, nl).split(" ");
          buffered = buffered.slice(nl + 1);
          if (tag !== "ack" || key === undefined) continue;
          acked.set(key, Math.max(acked.get(key) ?? -1, Number(n)));
          if (++count === opts.acks) {
            clearTimeout(timer);
            resolve();
          }
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`crash writer exited early (${code}): ${stderr}`));
      });
    });
    if (opts.kill) await opts.kill(child.pid!);
    else child.kill("SIGKILL");
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  }
  return acked;
}
