import assert from "node:assert/strict";
import { test } from "node:test";
import { expired, StatusError } from "../api/status.js";
import type { KObject } from "./kinds.js";
import { FakeSource, obj, take } from "./testing.js";
import { Backoff, watcher, type WatcherEvent, type WatcherOptions } from "./watch.js";

/** Tiny back-off so error paths retry quickly in tests. */
const fast = (): Backoff => new Backoff(1, 5, 2, 0);

function describe(e: WatcherEvent<KObject>): string {
  switch (e.type) {
    case "init":
      return "init";
    case "initDone":
      return `initDone@${e.resourceVersion}`;
    default:
      return `${e.type}:${e.object.metadata?.name}`;
  }
}

function start(source: FakeSource<KObject>, opts: WatcherOptions = {}) {
  const ac = new AbortController();
  const w = watcher(source, { backoff: fast(), ...opts }, ac.signal);
  const it = w[Symbol.asyncIterator]();
  const next = async (n: number) => (await take(it, (xs) => xs.length >= n)).map(describe);
  return { ac, w, it, next };
}

test("lists page by page, then watches from the list's resourceVersion", async () => {
  const source = new FakeSource<KObject>();
  for (const n of ["a", "b", "c", "d", "e"]) source.put(obj(n));
  const { ac, w, next } = start(source, { pageSize: 2 });
  assert.equal(w.phase, "empty");
  assert.deepEqual(await next(7), [
    "init",
    "initApply:a",
    "initApply:b",
    "initApply:c",
    "initApply:d",
    "initApply:e",
    "initDone@5",
  ]);
  assert.deepEqual(source.calls, ["list", "list(continue)", "list(continue)"]);
  source.put(obj("f"));
  source.put(obj("a", "default", { x: "1" }));
  source.remove("default/b");
  assert.deepEqual(await next(3), ["apply:f", "apply:a", "delete:b"]);
  assert.equal(w.phase, "watching");
  assert.equal(w.resourceVersion, "8");
  assert.deepEqual(source.calls.slice(3), ["watch@5"]);
  ac.abort();
});

test("a 410 in the watch stream relists and starts a new snapshot", async () => {
  const source = new FakeSource<KObject>();
  source.put(obj("a"));
  const errors: unknown[] = [];
  const { ac, next } = start(source, { onError: (e) => errors.push(e) });
  assert.deepEqual(await next(3), ["init", "initApply:a", "initDone@1"]);
  source.put(obj("b"));
  assert.deepEqual(await next(1), ["apply:b"]);
  source.remove("default/a");
  source.put(obj("c"));
  source.failWatches(expired("too old resource version: 1 (4)"));
  assert.deepEqual(await next(6), [
    "delete:a",
    "apply:c",
    "init",
    "initApply:b",
    "initApply:c",
    "initDone@4",
  ]);
  assert.ok(errors.some((e) => e instanceof StatusError && e.code === 410));
  assert.deepEqual(
    source.calls,
    ["list", "watch@1", "list", "watch@4"].slice(0, source.calls.length),
  );
  ac.abort();
});

test("a watch opened on a compacted resourceVersion relists", async () => {
  const source = new FakeSource<KObject>();
  source.put(obj("a"));
  const { ac, next } = start(source);
  assert.deepEqual(await next(3), ["init", "initApply:a", "initDone@1"]);
  source.put(obj("b"));
  assert.deepEqual(await next(1), ["apply:b"]);
  // The server ends the watch (its timeout); before the watcher resumes from 2, history is
  // compacted past it.
  source.endWatches();
  source.put(obj("c"));
  source.compact();
  assert.deepEqual(await next(5), [
    "init",
    "initApply:a",
    "initApply:b",
    "initApply:c",
    "initDone@3",
  ]);
  assert.deepEqual(source.calls.slice(0, 4), ["list", "watch@1", "watch@2", "list"]);
  ac.abort();
});

test("bookmarks move the resourceVersion without events; a watch that ends resumes there", async () => {
  const source = new FakeSource<KObject>();
  source.put(obj("a"));
  const { ac, w, next } = start(source);
  assert.deepEqual(await next(3), ["init", "initApply:a", "initDone@1"]);
  source.put(obj("b"));
  assert.deepEqual(await next(1), ["apply:b"]);
  source.bookmark();
  source.put(obj("c"));
  assert.deepEqual(await next(1), ["apply:c"]);
  source.endWatches();
  source.put(obj("d"));
  assert.deepEqual(await next(1), ["apply:d"]);
  assert.deepEqual(
    source.calls.filter((c) => c.startsWith("watch")),
    ["watch@1", "watch@3"],
  );
  assert.equal(w.resourceVersion, "4");
  ac.abort();
});

test("list and watch failures back off and retry without losing state", async () => {
  const source = new FakeSource<KObject>();
  source.put(obj("a"));
  source.listErrors.push(
    new Error("connection refused"),
    new StatusError(500, "InternalError", "boom"),
  );
  source.watchErrors.push(new Error("socket hang up"));
  const errors: string[] = [];
  const { ac, w, next } = start(source, { onError: (e) => errors.push((e as Error).message) });
  assert.deepEqual(await next(3), ["init", "initApply:a", "initDone@1"]);
  source.put(obj("b"));
  assert.deepEqual(await next(1), ["apply:b"]);
  assert.deepEqual(errors, ["connection refused", "boom", "socket hang up"]);
  assert.deepEqual(source.calls, ["list", "list", "list", "watch@1", "watch@1"]);
  // A non-410 ERROR event re-watches from the last resourceVersion, no relist.
  source.failWatches(new StatusError(500, "InternalError", "storage hiccup"));
  source.put(obj("c"));
  assert.deepEqual(await next(1), ["apply:c"]);
  assert.equal(source.calls.filter((c) => c === "list").length, 3);
  assert.equal(w.phase, "watching");
  ac.abort();
});

test("an expired continue token restarts the snapshot", async () => {
  const source = new FakeSource<KObject>();
  for (const n of ["a", "b", "c"]) source.put(obj(n));
  const { ac, it } = start(source, { pageSize: 2 });
  const first = await take(it, (xs) => xs.length >= 3);
  assert.deepEqual(first.map(describe), ["init", "initApply:a", "initApply:b"]);
  source.expireContinueTokens();
  source.put(obj("d"));
  const again = await take(it, (xs) => xs.some((e) => e.type === "initDone"));
  assert.deepEqual(again.map(describe), [
    "init",
    "initApply:a",
    "initApply:b",
    "initApply:c",
    "initApply:d",
    "initDone@4",
  ]);
  ac.abort();
});

test("streaming initial events: ADDED up to the initial-events-end bookmark form the snapshot", async () => {
  const source = new FakeSource<KObject>();
  source.put(obj("a"));
  source.put(obj("b"));
  const { ac, next } = start(source, { initialEvents: "stream" });
  assert.deepEqual(await next(4), ["init", "initApply:a", "initApply:b", "initDone@2"]);
  source.put(obj("c"));
  assert.deepEqual(await next(1), ["apply:c"]);
  assert.deepEqual(source.calls, ["stream"]);
  ac.abort();
});

test("aborting ends the iteration and closes the watch", async () => {
  const source = new FakeSource<KObject>();
  source.put(obj("a"));
  const { ac, it, next } = start(source);
  await next(3);
  source.put(obj("b"));
  await next(1);
  assert.equal(source.openWatches, 1);
  const pending = it.next();
  ac.abort();
  assert.equal((await pending).done, true);
  assert.equal(source.openWatches, 0);
});

test("a consumer that stops iterating closes the watch", async () => {
  const source = new FakeSource<KObject>();
  source.put(obj("a"));
  const ac = new AbortController();
  const seen: string[] = [];
  for await (const e of watcher(source, {}, ac.signal)) {
    seen.push(e.type);
    if (e.type === "initDone") break;
  }
  assert.deepEqual(seen, ["init", "initApply", "initDone"]);
  assert.equal(source.openWatches, 0);
});

test("back-off doubles from its initial value to its cap, and resets", () => {
  let now = 0;
  const b = new Backoff(800, 30_000, 2, 0, 120_000, { now: () => now, setTimer: () => () => {} });
  assert.deepEqual(
    Array.from({ length: 7 }, () => b.next()),
    [800, 1600, 3200, 6400, 12800, 25600, 30000],
  );
  now += 120_001;
  assert.equal(b.next(), 800, "reset after a quiet period");
  b.reset();
  assert.equal(b.next(), 800);
  const jittered = new Backoff(800, 30_000, 2, 1.0, 120_000, undefined, () => 0.5);
  assert.equal(jittered.next(), 1200);
});
