import assert from "node:assert/strict";
import { test } from "node:test";
import { expired } from "../api/status.js";
import { Informer, reflector, type StoreChange } from "./informer.js";
import type { KObject } from "./kinds.js";
import { Store } from "./store.js";
import { FakeSource, obj, take } from "./testing.js";
import { Backoff, watcher } from "./watch.js";

type Pod = KObject & { spec?: { nodeName?: string } };

function pod(name: string, namespace: string, nodeName?: string, owners: string[] = []): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace,
      ownerReferences: owners.map((uid) => ({
        apiVersion: "apps/v1",
        kind: "ReplicaSet",
        name: uid,
        uid,
      })),
    },
    spec: nodeName ? { nodeName } : {},
  };
}

const byNode = (p: Pod) => (p.spec?.nodeName ? [p.spec.nodeName] : []);
const byOwner = (p: Pod) => (p.metadata?.ownerReferences ?? []).map((r) => r.uid);

test("store: keys, namespace index and custom indexes follow adds, updates and deletes", () => {
  const store = new Store<Pod>({ byNode });
  store.set(pod("a", "ns1", "node1", ["rs1"]));
  store.set(pod("b", "ns1", "node2", ["rs1", "rs2"]));
  store.set(pod("c", "ns2", "node1"));
  store.set({ apiVersion: "v1", kind: "Pod", metadata: { name: "cluster-thing" } });
  assert.deepEqual(store.keys().sort(), ["cluster-thing", "ns1/a", "ns1/b", "ns2/c"]);
  assert.deepEqual(
    store
      .listNamespace("ns1")
      .map((p) => p.metadata?.name)
      .sort(),
    ["a", "b"],
  );
  assert.deepEqual(
    store.listNamespace("").map((p) => p.metadata?.name),
    ["cluster-thing"],
  );
  assert.deepEqual(
    store
      .byIndex("byNode", "node1")
      .map((p) => p.metadata?.name)
      .sort(),
    ["a", "c"],
  );

  // An index added later covers what is cached already.
  store.addIndexers({ byOwner });
  assert.deepEqual(store.indexKeys("byOwner", "rs1").sort(), ["ns1/a", "ns1/b"]);
  assert.deepEqual(store.indexValues("byOwner").sort(), ["rs1", "rs2"]);
  assert.throws(() => store.addIndexers({ byOwner: () => [] }), /already exists/);
  store.addIndexers({ byOwner }); // same function: fine

  // Moving a pod to another node re-files it.
  const old = store.set(pod("a", "ns1", "node2", ["rs2"]));
  assert.equal(old?.spec?.nodeName, "node1");
  assert.deepEqual(
    store.byIndex("byNode", "node1").map((p) => p.metadata?.name),
    ["c"],
  );
  assert.deepEqual(store.indexKeys("byNode", "node2").sort(), ["ns1/a", "ns1/b"]);
  assert.deepEqual(store.indexKeys("byOwner", "rs1"), ["ns1/b"]);
  assert.deepEqual(store.byIndexOf("byNode", pod("x", "ns9", "node2")).length, 2);

  store.delete("ns1/b");
  assert.deepEqual(store.indexKeys("byOwner", "rs1"), []);
  assert.deepEqual(store.indexValues("byOwner"), ["rs2"]);
  assert.equal(store.getByName("ns1", "a")?.metadata?.name, "a");
  assert.equal(store.getByName("", "cluster-thing")?.metadata?.name, "cluster-thing");
  assert.throws(() => store.byIndex("nope", "x"), /does not exist/);

  store.replace([pod("z", "ns3", "node3")]);
  assert.deepEqual(store.keys(), ["ns3/z"]);
  assert.deepEqual(store.indexValues("byNode"), ["node3"]);
  assert.deepEqual(store.indexValues("namespace"), ["ns3"]);
});

test("reflector: a relist swaps the snapshot in at once and reports the difference", async () => {
  const source = new FakeSource<KObject>();
  source.put(obj("a"));
  source.put(obj("b"));
  source.put(obj("c"));
  const store = new Store<KObject>();
  const ac = new AbortController();
  const changes = reflector(
    store,
    watcher(source, { backoff: new Backoff(1, 5, 2, 0) }, ac.signal),
  )[Symbol.asyncIterator]();
  const show = (c: StoreChange<KObject>) =>
    c.type === "synced" ? `synced@${c.resourceVersion}` : `${c.type}:${c.object.metadata?.name}`;
  assert.deepEqual((await take(changes, (xs) => xs.length >= 4)).map(show), [
    "added:a",
    "added:b",
    "added:c",
    "synced@3",
  ]);
  assert.equal(store.size, 3);

  // While the watch is broken, b changes, c goes, d comes; the history is compacted: relist.
  source.endWatches();
  source.put(obj("b", "default", { v: "2" }));
  source.remove("default/c");
  source.put(obj("d"));
  source.compact();
  const relist = (await take(changes, (xs) => xs.some((c) => c.type === "synced"))).map(show);
  assert.deepEqual(relist, ["updated:b", "added:d", "deleted:c", "synced@6"]);
  assert.deepEqual(store.keys().sort(), ["default/a", "default/b", "default/d"]);
  ac.abort();
});

test("informer: handlers see adds, updates, deletes after the store has them; late handlers get a replay", async () => {
  const source = new FakeSource<KObject>();
  source.put(obj("a"));
  const informer = new Informer<KObject>(source, { backoff: new Backoff(1, 5, 2, 0) });
  const seen: string[] = [];
  informer.addEventHandler({
    add: (o, initial) => {
      assert.ok(
        informer.store.get(`default/${o.metadata?.name}`),
        "in the store before the handler",
      );
      seen.push(`add:${o.metadata?.name}${initial ? " (initial)" : ""}`);
    },
    update: (old, o) =>
      seen.push(
        `update:${o.metadata?.name}:${old.metadata?.resourceVersion}->${o.metadata?.resourceVersion}`,
      ),
    delete: (o) => {
      assert.equal(informer.store.get(`default/${o.metadata?.name}`), undefined);
      seen.push(`delete:${o.metadata?.name}`);
    },
  });
  informer.addEventHandler({
    add: () => {
      throw new Error("a failing handler does not stop the others");
    },
  });
  const ac = new AbortController();
  const running = informer.start(ac.signal);
  assert.equal(informer.start(ac.signal), running, "start is idempotent while running");
  assert.equal(await informer.waitForSync(), true);
  assert.equal(informer.hasSynced(), true);
  source.put(obj("b"));
  source.put(obj("a", "default", { x: "y" }));
  source.remove("default/b");
  await waitFor(() => seen.length >= 4);
  assert.deepEqual(seen, ["add:a (initial)", "add:b", "update:a:1->3", "delete:b"]);

  const late: string[] = [];
  const unregister = informer.addEventHandler({
    add: (o, initial) => late.push(`${o.metadata?.name}:${initial}`),
  });
  assert.deepEqual(late, ["a:true"]);
  unregister();
  source.put(obj("c"));
  await waitFor(() => seen.length >= 5);
  assert.deepEqual(late, ["a:true"], "unregistered handlers hear nothing");

  // A 410 in the stream: the relist delivers only real differences.
  source.remove("default/a");
  source.failWatches(expired("too old resource version"));
  await waitFor(() => seen.includes("delete:a"));
  ac.abort();
  await running;
  assert.equal(informer.isRunning, false);
});

test("informer: resync re-delivers cached objects as updates", async () => {
  const source = new FakeSource<KObject>();
  source.put(obj("a"));
  const informer = new Informer<KObject>(source, { resyncPeriod: 20 });
  let resyncs = 0;
  informer.addEventHandler({ update: (old, o) => old === o && resyncs++ });
  const ac = new AbortController();
  const running = informer.start(ac.signal);
  await waitFor(() => resyncs >= 2);
  ac.abort();
  await running;
});

test("waitForSync answers false when its signal aborts first", async () => {
  const informer = new Informer<KObject>(new FakeSource<KObject>());
  const ac = new AbortController();
  const waiting = informer.waitForSync(ac.signal);
  ac.abort();
  assert.equal(await waiting, false);
});

async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 2));
  }
}
