import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { runConformance } from "./conformance.js";
import { openSqliteStore } from "./sqlite.js";
import { isStorageError, type StorageError } from "./errors.js";
import { checkCrashValue } from "./crash-writer.js";
import { sqliteFile } from "./index.js";
import { runCrashWriter } from "../testing/crash.js";
import { tempDir } from "../testing/tmp.js";

const dir = tempDir("k8ts-sqlite-");
after(() => dir.remove());
let n = 0;
const freshFile = () => path.join(dir.path, `t${n++}`, "state.db");
const enc = (s: string) => new TextEncoder().encode(s);

runConformance("sqlite", async () => openSqliteStore({ file: freshFile() }));

function sha(file: string): string {
  return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

function openError(file: string): StorageError {
  try {
    openSqliteStore({ file });
  } catch (err) {
    assert.ok(isStorageError(err), String(err));
    return err;
  }
  assert.fail(`opening ${file} succeeded`);
}

/** Mounts a tmpfs for a test; undefined when this process may not mount (not root). */
function mountTmpfs(
  options: string,
): { path: string; remount: (o: string) => void; unmount: () => void } | undefined {
  const mnt = fs.mkdtempSync(path.join(dir.path, "mnt-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", options, "tmpfs", mnt], { stdio: "pipe" });
  } catch {
    return undefined;
  }
  return {
    path: mnt,
    remount: (o) => execFileSync("mount", ["-o", `remount,${o}`, mnt], { stdio: "pipe" }),
    unmount: () => execFileSync("umount", [mnt], { stdio: "pipe" }),
  };
}

describe("sqlite durability", () => {
  test("every acknowledged write survives SIGKILL of the writing process, and nothing is half written", async () => {
    const dataDir = path.join(dir.path, "crash");
    const acked = await runCrashWriter({ backend: "sqlite", dataDir }, { acks: 3000 });
    assert.ok(acked.size > 0);
    const store = openSqliteStore({ file: sqliteFile(dataDir) });
    try {
      const { kvs } = await store.list("/registry/crash/");
      const stored = new Map(kvs.map((kv) => [kv.key, checkCrashValue(kv.key, kv.value)]));
      for (const [key, n] of acked) {
        const got = stored.get(key);
        assert.ok(got !== undefined, `acknowledged ${key} is missing`);
        assert.ok(got >= n, `${key}: acknowledged update ${n}, found ${got}`);
      }
      // The store goes on from where it was.
      const head = (await store.status()).revision;
      const w = await store.create("/registry/crash/after", enc("x"));
      assert.equal(w.revision, head + 1);
    } finally {
      await store.close();
    }
  });
});

describe("sqlite bad input", () => {
  test("a file that is not a database is refused with its name, and left as it was", () => {
    const file = freshFile();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, Buffer.from("this is a text file, not a database\n".repeat(200)));
    const before = sha(file);
    const err = openError(file);
    assert.equal(err.code, "Corrupt");
    assert.ok(err.message.includes(file), err.message);
    assert.equal(sha(file), before);
  });

  test("another application's SQLite database is refused, and left as it was", () => {
    const file = freshFile();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const other = new Database(file);
    other.exec(
      "CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT); INSERT INTO accounts VALUES (1, 'x')",
    );
    other.close();
    const before = sha(file);
    const err = openError(file);
    assert.equal(err.code, "Corrupt");
    assert.match(err.message, /not a k8ts database/);
    assert.ok(err.message.includes(file));
    assert.equal(sha(file), before);
  });

  test("a damaged database gives a clear error naming the file instead of wrong answers", async () => {
    const file = freshFile();
    const store = openSqliteStore({ file });
    for (let i = 0; i < 300; i++)
      await store.create(`/registry/pods/default/p${i}`, new Uint8Array(900).fill(65));
    await store.close();
    // Overwrite the middle of the file (b-tree pages) with garbage.
    const fd = fs.openSync(file, "r+");
    const size = fs.fstatSync(fd).size;
    fs.writeSync(fd, Buffer.alloc(8192, 0xa5), 0, 8192, Math.floor(size / 2 / 4096) * 4096);
    fs.closeSync(fd);
    let err: unknown;
    try {
      const s = openSqliteStore({ file });
      try {
        await s.list("/registry/pods/");
      } finally {
        await s.close().catch(() => undefined);
      }
    } catch (e) {
      err = e;
    }
    assert.ok(isStorageError(err, "Corrupt"), `expected Corrupt, got ${String(err)}`);
    assert.ok(err.message.includes(file), err.message);
  });

  test("a data directory in use by another process is refused", async () => {
    const file = freshFile();
    const store = openSqliteStore({ file });
    try {
      const err = openError(file);
      assert.match(err.message, /in use by another process/);
      assert.equal(err.retryable, false);
      await store.create("/registry/x", enc("still works"));
    } finally {
      await store.close();
    }
  });

  test("a read-only file system gives an error naming the file", async (t) => {
    const fsys = mountTmpfs("size=8m");
    if (!fsys) return t.skip("needs permission to mount a tmpfs");
    try {
      const file = path.join(fsys.path, "db", "state.db");
      const store = openSqliteStore({ file });
      await store.create("/registry/kept", enc("kept"));
      await store.close();
      fsys.remount("ro");
      const err = openError(file);
      assert.ok(err.message.includes(file), err.message);
      assert.match(err.message, /not writable|read-only|cannot open/);
      const fresh = openError(path.join(fsys.path, "other", "state.db"));
      assert.ok(fresh.message.includes(path.join(fsys.path, "other")), fresh.message);
      fsys.remount("rw");
      const again = openSqliteStore({ file });
      assert.equal(new TextDecoder().decode((await again.get("/registry/kept")).kv!.value), "kept");
      await again.close();
    } finally {
      fsys.unmount();
    }
  });

  test("a full disk refuses writes with a clear error, loses nothing, and recovers when space returns", async (t) => {
    const fsys = mountTmpfs("size=3m");
    if (!fsys) return t.skip("needs permission to mount a tmpfs");
    try {
      const file = path.join(fsys.path, "db", "state.db");
      const store = openSqliteStore({ file, retainRevisions: 0 });
      const acked: string[] = [];
      let failure: unknown;
      for (let i = 0; i < 10_000 && failure === undefined; i++) {
        const key = `/registry/configmaps/default/cm-${i}`;
        try {
          await store.create(key, new Uint8Array(4000).fill(i % 256));
          acked.push(key);
        } catch (err) {
          failure = err;
        }
      }
      assert.ok(
        isStorageError(failure, "Unavailable"),
        `expected Unavailable, got ${String(failure)}`,
      );
      assert.match(failure.message, /no space left/);
      assert.ok(failure.message.includes(file));
      assert.ok(failure.retryable);
      // Reads still work and every acknowledged write is there.
      assert.equal((await store.count("/registry/configmaps/")).count, acked.length);
      fsys.remount("size=64m");
      await store.create("/registry/configmaps/default/after", enc("room again"));
      await store.close();
      const reopened = openSqliteStore({ file });
      assert.equal((await reopened.count("/registry/configmaps/")).count, acked.length + 1);
      await reopened.close();
    } finally {
      fsys.unmount();
    }
  });
});

describe("sqlite compaction", () => {
  test("history stays bounded under churn and the file stays small", async () => {
    const file = freshFile();
    const store = openSqliteStore({ file, retainRevisions: 500 });
    try {
      const keys = Array.from(
        { length: 200 },
        (_, i) => `/registry/leases/kube-node-lease/node-${i}`,
      );
      const revs = new Map<string, number>();
      for (const key of keys)
        revs.set(key, (await store.create(key, new Uint8Array(1024))).revision);
      for (let round = 0; round < 50; round++) {
        await Promise.all(
          keys.map(async (key) => {
            const r = await store.update(key, new Uint8Array(1024).fill(round), revs.get(key)!);
            revs.set(key, r.revision);
          }),
        );
      }
      const status = await store.status();
      assert.ok(
        status.revision - status.compactRevision <= 500 + 200 + 125,
        `history ${status.revision - status.compactRevision}`,
      );
      const { kvs } = await store.list("/registry/leases/");
      assert.equal(kvs.length, 200);
      assert.ok(kvs.every((kv) => kv.value[0] === 49 && kv.version === 51));
    } finally {
      await store.close();
    }
    // 200 live KiB-values plus about 500 revisions of history: far below the 10 MiB written.
    const size = fs.statSync(file).size;
    assert.ok(size < 3 * 1024 * 1024, `database is ${size} bytes`);
  });
});

describe("sqlite reopen", () => {
  test("a reopened store has the same current state, revision and history", async () => {
    const file = freshFile();
    const dec = (b?: Uint8Array) => (b ? new TextDecoder().decode(b) : undefined);
    let store = openSqliteStore({ file, retainRevisions: 10_000 });
    const a = await store.create("/registry/x/a", enc("a1"));
    await store.update("/registry/x/a", enc("a2"), a.revision);
    const b = await store.create("/registry/x/b", enc("b1"));
    await store.delete("/registry/x/b");
    const last = await store.create("/registry/x/c", enc("c1"));
    for (let i = 0; i < 3000; i++)
      await store.create(`/registry/y/k${i}`, new Uint8Array(700).fill(i));
    const before = await store.status();
    await store.close();

    store = openSqliteStore({ file, retainRevisions: 10_000 });
    try {
      const after = await store.status();
      assert.equal(after.revision, before.revision);
      assert.equal(after.compactRevision, before.compactRevision);
      const now = await store.list("/registry/x/");
      assert.deepEqual(
        now.kvs.map((kv) => [kv.key, dec(kv.value)]),
        [
          ["/registry/x/a", "a2"],
          ["/registry/x/c", "c1"],
        ],
      );
      assert.equal((await store.count("/registry/y/")).count, 3000);
      assert.equal((await store.get("/registry/y/k2999")).kv!.value[0], 2999 & 0xff);
      const past = await store.list("/registry/x/", { revision: last.revision });
      assert.deepEqual(
        past.kvs.map((kv) => [kv.key, dec(kv.value)]),
        [
          ["/registry/x/a", "a2"],
          ["/registry/x/c", "c1"],
        ],
      );
      const w = await store.create("/registry/x/b", enc("b2"));
      assert.equal(w.revision, before.revision + 1);
      assert.equal(w.kv.version, 1);
      assert.ok(w.kv.createRevision > b.revision);
    } finally {
      await store.close();
    }
  });
});
