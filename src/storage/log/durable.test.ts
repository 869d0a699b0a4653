/**
 * An engine that makes commits durable after they return (as SqliteEngine does, one WAL sync
 * for many commits): the store answers writers, shows changes to watchers and serves reads only
 * once the engine says the revision is on disk; a refused sync stops the store.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryEngine } from "../memory.js";
import { LogStructuredStore } from "./store.js";

/** A memory engine whose durability the test grants by hand. */
class SlowDisk extends MemoryEngine {
  durable = this.currentRevision();
  private waiters: Array<{ rev: number; resolve: () => void; reject: (e: Error) => void }> = [];

  whenDurable(rev: number): Promise<void> | undefined {
    if (rev <= this.durable) return undefined;
    return new Promise((resolve, reject) => this.waiters.push({ rev, resolve, reject }));
  }

  /** Everything committed so far reaches the disk. */
  sync(): void {
    this.durable = this.currentRevision();
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) w.resolve();
  }

  fail(): void {
    for (const w of this.waiters.splice(0)) w.reject(new Error("EIO: the disk refused"));
  }
}

const enc = (s: string) => new TextEncoder().encode(s);
const tick = () => new Promise((r) => setImmediate(r));

test("writes are answered, watched and readable only once they are durable", async () => {
  const disk = new SlowDisk();
  const store = new LogStructuredStore(disk);
  const watch = store.watch("/a/", { prefix: true });
  const seen: string[] = [];
  const watching = (async () => {
    for await (const m of watch)
      if (m.type === "events") for (const e of m.events) seen.push(e.kv.key);
  })();

  let acked = false;
  const write = store.create("/a/x", enc("1")).then((r) => ((acked = true), r));
  await tick();
  await tick();
  assert.equal(acked, false, "not acknowledged before the sync");
  assert.deepEqual(seen, [], "not watched before the sync");
  let read = false;
  const reading = store.get("/a/x").then((r) => ((read = true), r));
  await tick();
  assert.equal(read, false, "a read of the not yet durable state waits");

  // A second commit while the first waits: one sync covers both.
  const second = store.create("/a/y", enc("2"));
  await tick();
  disk.sync();
  const [r1, r2, got] = await Promise.all([write, second, reading]);
  assert.ok(r2.revision > r1.revision);
  assert.equal(new TextDecoder().decode(got.kv!.value), "1");
  await tick();
  assert.deepEqual(seen, ["/a/x", "/a/y"], "watchers see both, in revision order");

  // A watch from history opened while a commit waits replays what is durable, and gets the
  // pending commit once, when it is.
  const pending = store.create("/a/z", enc("3"));
  await tick();
  const late = store.watch("/a/", { prefix: true, startRevision: r1.revision });
  const lateSeen: string[] = [];
  const lateWatching = (async () => {
    for await (const m of late)
      if (m.type === "events") for (const e of m.events) lateSeen.push(e.kv.key);
  })();
  await tick();
  assert.deepEqual(lateSeen, ["/a/x", "/a/y"]);
  disk.sync();
  await pending;
  await tick();
  assert.deepEqual(lateSeen, ["/a/x", "/a/y", "/a/z"]);
  late.close();
  await lateWatching;

  // Nothing pending: reads do not wait.
  assert.equal((await store.get("/a/y")).kv?.version, 1);
  watch.close();
  await watching;
  await store.close();
});

test("a refused sync fails its writers and stops the store", async () => {
  const disk = new SlowDisk();
  const store = new LogStructuredStore(disk);
  const write = store.create("/b/x", enc("1"));
  await tick();
  disk.fail();
  await assert.rejects(write, /the disk refused/);
  await assert.rejects(store.create("/b/y", enc("2")), /the disk refused/);
  await store.close();
});
