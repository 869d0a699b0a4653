/**
 * A child process for crash-durability tests: writes to a store as fast as it can with several
 * concurrent writers and prints `ack <key> <n>` for each write once the store has acknowledged it.
 * The test kills it with SIGKILL and checks every acknowledged write after reopening the store.
 *
 * Usage: node crash-writer.js <store-config-json>
 * Values are self-checking (`crashValue`), so a half-written value is detected on read.
 */
import { createHash } from "node:crypto";
import { isStorageError } from "./errors.js";
import { openStore, type StoreConfig } from "./index.js";

const WRITERS = 16;

export function crashValue(key: string, n: number): Uint8Array {
  const body = `${key}|${n}|${"x".repeat(512 + (n % 7) * 300)}`;
  const sum = createHash("sha256").update(body).digest("hex");
  return new TextEncoder().encode(`${sum}|${body}`);
}

/** Parses a value written by crashValue; throws if it is not intact. */
export function checkCrashValue(key: string, value: Uint8Array): number {
  const text = new TextDecoder().decode(value);
  const sep = text.indexOf("|");
  const sum = text.slice(0, sep);
  const body = text.slice(sep + 1);
  if (createHash("sha256").update(body).digest("hex") !== sum) {
    throw new Error(`value of ${key} is damaged`);
  }
  const [k, n] = body.split("|");
  if (k !== key) throw new Error(`value of ${key} belongs to ${k}`);
  return Number(n);
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2]!) as StoreConfig;
  const store = await openStore(config);
  const prefix = "/registry/crash/";
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, w) => {
      const mine: Array<{ key: string; rev: number; n: number }> = [];
      for (let i = 0; ; i++) {
        if (i % 4 === 3 && mine.length > 0) {
          const target = mine[(i * 7) % mine.length]!;
          try {
            const r = await store.update(
              target.key,
              crashValue(target.key, target.n + 1),
              target.rev,
            );
            target.n++;
            target.rev = r.revision;
            process.stdout.write(`ack ${target.key} ${target.n}\n`);
          } catch (err) {
            if (!isStorageError(err)) throw err;
          }
          continue;
        }
        const key = `${prefix}w${w}-${i}`;
        const r = await store.create(key, crashValue(key, 0));
        mine.push({ key, rev: r.revision, n: 0 });
        process.stdout.write(`ack ${key} 0\n`);
      }
    }),
  );
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split("/").pop()!)) {
  main().catch((err) => {
    process.stderr.write(`crash-writer: ${String(err)}\n`);
    process.exit(1);
  });
}
