import { test } from "node:test";
import assert from "node:assert/strict";
import { openMemoryStore } from "../../storage/memory.js";
import type { Store } from "../../storage/interface.js";
import { builtinResourceDefs } from "../resources.js";
import { Registry, type WatchSink } from "./store.js";
import type { CachedObject } from "./cache.js";
import type { KObject } from "./types.js";

function registryOf(store: Store, resource: string, group = ""): Registry {
  const def = builtinResourceDefs().find(
    (d) => d.resource === resource && d.group === group && d.stored,
  )!;
  return new Registry(def, store);
}

function configMap(name: string, labels: Record<string, string> = {}, data = {}): KObject {
  return { metadata: { name, labels }, data };
}

/** A store that counts the reads that reach it. */
function counting(store: Store): { store: Store; lists: () => number } {
  let lists = 0;
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === "list")
        return (...args: Parameters<Store["list"]>) => {
          lists++;
          return target.list(...args);
        };
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { store: proxy, lists: () => lists };
}

class Collector {
  events: Array<{ type: string; name: string; rv: string; labels?: Record<string, string> }> = [];
  lines: Buffer[] = [];
  bookmarks: Array<{ revision: number; end: boolean }> = [];
  errors: KObject[] = [];
  ended = false;
  private waiters: Array<() => void> = [];

  events_(batch: Array<{ type: string; object: CachedObject }>): void {
    for (const e of batch) {
      const obj = e.object.object();
      this.events.push({
        type: e.type,
        name: obj.metadata!.name!,
        rv: obj.metadata!.resourceVersion!,
        labels: obj.metadata!.labels as Record<string, string> | undefined,
      });
      this.lines.push(e.object.eventLine(e.type));
    }
    for (const w of this.waiters.splice(0)) w();
  }
  readonly sink: WatchSink = {
    events: (batch) => this.events_(batch),
    bookmark: (revision, end) => this.bookmarks.push({ revision, end: !!end }),
    error: (status) => this.errors.push(status),
    end: () => (this.ended = true),
  };
  async until(n: number): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (this.events.length < n) {
      if (Date.now() > deadline) throw new Error(`got ${this.events.length} events, want ${n}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }
}

test("lists come from the watch cache and see every write made before them", async () => {
  const base = openMemoryStore();
  const { store, lists } = counting(base);
  const cms = registryOf(store, "configmaps");
  await cms.create("default", configMap("a"));
  const first = await cms.list("default");
  assert.deepEqual(
    first.items.map((o) => o.metadata!.name),
    ["a"],
  );
  const afterStart = lists();
  for (let i = 0; i < 20; i++) {
    await cms.create("default", configMap(`n${String(i).padStart(2, "0")}`));
    const l = await cms.list("default");
    assert.equal(l.items.length, i + 2, "a list right after a write sees it");
    assert.equal(l.items[l.items.length - 1]!.metadata!.name, `n${String(i).padStart(2, "0")}`);
  }
  await cms.create("kube-system", configMap("other"));
  assert.equal((await cms.list("")).items.length, 22);
  assert.equal(lists(), afterStart, "no list reached storage after the cache started");
  cms.close();
  await base.close();
});

test("a write to another resource does not leave the cache behind (progress)", async () => {
  const store = openMemoryStore();
  const cms = registryOf(store, "configmaps");
  const secrets = registryOf(store, "secrets");
  await cms.create("default", configMap("a"));
  await cms.list("default");
  await secrets.create("default", { metadata: { name: "s" }, data: {} });
  const l = await cms.list("default");
  const head = (await store.get("/")).revision;
  assert.equal(l.resourceVersion, String(head), "the list is at the store's current revision");
  cms.close();
  await store.close();
});

test("pages: the first from the cache, the rest from storage at the same revision", async () => {
  const store = openMemoryStore();
  const cms = registryOf(store, "configmaps");
  for (let i = 0; i < 10; i++) await cms.create("default", configMap(`c${i}`));
  const p1 = await cms.list("default", { limit: 4 });
  assert.deepEqual(
    p1.items.map((o) => o.metadata!.name),
    ["c0", "c1", "c2", "c3"],
  );
  assert.equal(p1.remainingItemCount, 6);
  await cms.create("default", configMap("c5a"));
  const p2 = await cms.list("default", { limit: 4, continue: p1.continue });
  assert.deepEqual(
    p2.items.map((o) => o.metadata!.name),
    ["c4", "c5", "c6", "c7"],
    "the continuation is at the first page's revision: c5a is not in it",
  );
  assert.equal(p2.resourceVersion, p1.resourceVersion);
  // resourceVersion=0 is served from the cache whole, as upstream ignores the limit there.
  assert.equal((await cms.list("default", { limit: 4, resourceVersion: "0" })).items.length, 11);
  cms.close();
  await store.close();
});

test("cache watches: initial events, selectors on old and new state, one encoding for all", async () => {
  const store = openMemoryStore();
  const cms = registryOf(store, "configmaps");
  await cms.create("default", configMap("a", { app: "web" }));
  await cms.create("default", configMap("b", { app: "db" }));
  const abort = new AbortController();
  const all = new Collector();
  const all2 = new Collector();
  const web = new Collector();
  await cms.watch("default", {}, all.sink, abort.signal);
  await cms.watch("default", {}, all2.sink, abort.signal);
  await cms.watch(
    "default",
    { labelSelector: "app=web", resourceVersion: "0" },
    web.sink,
    abort.signal,
  );
  await all.until(2);
  await web.until(1);
  assert.deepEqual(
    all.events.map((e) => `${e.type} ${e.name}`),
    ["ADDED a", "ADDED b"],
  );
  assert.deepEqual(
    web.events.map((e) => `${e.type} ${e.name}`),
    ["ADDED a"],
  );
  const b = await cms.get("default", "b");
  b.metadata!.labels = { app: "web" };
  await cms.update("default", "b", b);
  const a = await cms.get("default", "a");
  a.metadata!.labels = { app: "gone" };
  await cms.update("default", "a", a);
  await cms.delete("default", "b");
  await all.until(5);
  await web.until(4);
  await all2.until(5);
  assert.deepEqual(
    web.events.map((e) => `${e.type} ${e.name}`),
    ["ADDED a", "ADDED b", "DELETED a", "DELETED b"],
    "an object that starts matching is ADDED, one that stops matching DELETED",
  );
  assert.deepEqual(
    all.events.map((e) => `${e.type} ${e.name}`),
    ["ADDED a", "ADDED b", "MODIFIED b", "MODIFIED a", "DELETED b"],
  );
  // The DELETED event of a stops-matching change carries the new state.
  assert.deepEqual(web.events[2]!.labels, { app: "gone" });
  // Every watcher got the very same bytes for the same event.
  for (let i = 2; i < 5; i++) assert.equal(all.lines[i], all2.lines[i]);
  const deleted = JSON.parse(all.lines[4]!.toString()) as { object: KObject };
  assert.equal(deleted.object.metadata!.resourceVersion, all.events[4]!.rv);
  assert.equal(Number(all.events[4]!.rv), (await store.get("/")).revision);
  abort.abort();
  cms.close();
  await store.close();
});

test("a watch from a resourceVersion replays the cache's window, or storage beyond it", async () => {
  const store = openMemoryStore();
  const cms = registryOf(store, "configmaps");
  const created = await cms.create("default", configMap("a"));
  await cms.list("");
  const rv0 = created.metadata!.resourceVersion!;
  await cms.create("default", configMap("b"));
  await cms.create("default", configMap("c"));
  const abort = new AbortController();
  // Before the cache started: storage serves it.
  const old = new Collector();
  await cms.watch("default", { resourceVersion: String(Number(rv0) - 1) }, old.sink, abort.signal);
  await old.until(3);
  assert.deepEqual(
    old.events.map((e) => e.name),
    ["a", "b", "c"],
  );
  const recent = new Collector();
  const b = await cms.get("default", "b");
  await cms.watch(
    "default",
    { resourceVersion: b.metadata!.resourceVersion },
    recent.sink,
    abort.signal,
  );
  await cms.create("default", configMap("d"));
  await recent.until(2);
  assert.deepEqual(
    recent.events.map((e) => e.name),
    ["c", "d"],
  );
  assert.equal(cms.cache().stats().watchers, 1, "the recent watch is served by the cache");
  // A resourceVersion the server has not reached is refused after a wait, as upstream does.
  await assert.rejects(
    cms.watch("default", { resourceVersion: "999999" }, new Collector().sink, abort.signal),
    (err: Error & { code?: number }) =>
      err.code === 504 && /Too large resource version/.test(err.message),
  );
  abort.abort();
  assert.equal(cms.cache().stats().watchers, 0, "aborting a watch removes it from the cache");
  cms.close();
  await store.close();
});

test("sendInitialEvents ends the initial objects with an annotated bookmark", async () => {
  const store = openMemoryStore();
  const cms = registryOf(store, "configmaps");
  await cms.create("default", configMap("a"));
  const c = new Collector();
  const abort = new AbortController();
  await cms.watch(
    "default",
    { sendInitialEvents: true, allowWatchBookmarks: true, resourceVersionMatch: "NotOlderThan" },
    c.sink,
    abort.signal,
  );
  assert.deepEqual(
    c.events.map((e) => e.name),
    ["a"],
  );
  assert.equal(c.bookmarks.length, 1);
  assert.equal(c.bookmarks[0]!.end, true);
  assert.equal(c.bookmarks[0]!.revision, (await store.get("/")).revision);
  abort.abort();
  cms.close();
  await store.close();
});

test("served JSON equals the decoded object's, and objects in another key order still serve", async () => {
  const store = openMemoryStore();
  const cms = registryOf(store, "configmaps");
  const made = await cms.create("default", configMap("a", { x: "1" }, { k: "v" }));
  // An object written by something else, with metadata last and empty.
  const r = await store.create(
    "/registry/configmaps/default/odd",
    Buffer.from(
      '{"data":{"k":"v"},"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"odd","namespace":"default"}}',
    ),
  );
  const list = await cms.listObjects("default");
  for (const o of list.items) assert.deepEqual(JSON.parse(o.json().toString()), o.object());
  const odd = list.items.find((o) => o.key.endsWith("/odd"))!;
  assert.equal(
    (JSON.parse(odd.json().toString()) as KObject).metadata!.resourceVersion,
    String(r.revision),
  );
  const a = list.items.find((o) => o.key.endsWith("/a"))!;
  assert.equal(
    (JSON.parse(a.json().toString()) as KObject).metadata!.resourceVersion,
    made.metadata!.resourceVersion,
  );
  cms.close();
  await store.close();
});

test("cache and storage agree after a random sequence of writes", async () => {
  const store = openMemoryStore();
  const cms = registryOf(store, "configmaps");
  await cms.list("");
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let i = 0; i < 400; i++) {
    const ns = ["default", "kube-system", "a-b"][rand(3)]!;
    const name = `o${rand(40)}`;
    const op = rand(3);
    try {
      if (op === 0) await cms.create(ns, configMap(name, { n: String(rand(3)) }));
      else if (op === 1) {
        const o = await cms.get(ns, name);
        o.metadata!.labels = { n: String(rand(3)) };
        await cms.update(ns, name, o);
      } else await cms.delete(ns, name);
    } catch (err) {
      if (!/not found|already exists/.test(String(err))) throw err;
    }
    if (i % 50 === 49) {
      // Lists along the way, so that the cache's key order is rebuilt many times.
      const fromCache = await cms.list("");
      const fromStorage = await cms.list("", {
        resourceVersion: fromCache.resourceVersion,
        resourceVersionMatch: "Exact",
      });
      assert.deepEqual(fromCache, fromStorage, `list after ${i + 1} writes`);
    }
  }
  for (const ns of ["", "default", "kube-system", "a-b"]) {
    for (const labelSelector of [undefined, "n=1", "n!=2"]) {
      const fromCache = await cms.list(ns, { labelSelector });
      const fromStorage = await cms.list(ns, {
        labelSelector,
        resourceVersion: fromCache.resourceVersion,
        resourceVersionMatch: "Exact",
      });
      assert.deepEqual(fromCache, fromStorage, `list ${ns || "all"} ${labelSelector ?? ""}`);
    }
  }
  cms.close();
  await store.close();
});
