/**
 * The client runtime (src/client) against a real `k8ts apiserver`: kubeconfig loading, REST calls
 * for every built-in kind, Status errors, watch with a 410 relist, informer convergence, leader
 * election between two candidates, the events recorder's aggregation, and a controller.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, test } from "node:test";
import type { ConfigMap, Event, Secret } from "kubernetes-types/core/v1.js";
import type { Lease } from "kubernetes-types/coordination/v1.js";
import { resources } from "../src/api/resources.js";
import { isStatusError, StatusError } from "../src/api/status.js";
import { buildConfigFromFlags, defaultUserAgent, loadKubeconfig } from "../src/client/config.js";
import { controller } from "../src/client/controller.js";
import { EventBroadcaster } from "../src/client/events.js";
import { SharedInformers } from "../src/client/informer.js";
import type { KindName } from "../src/client/kinds.js";
import { LeaderElector } from "../src/client/leaderelection.js";
import { Client, type ResourceClient } from "../src/client/resources.js";
import { watcher, type ListerWatcher, type WatcherEvent } from "../src/client/watch.js";
import { freePort } from "../src/testing/net.js";
import { tempDir } from "../src/testing/tmp.js";
import { TestAPIServer } from "./support/apiserver.js";

const dir = tempDir("k8ts-client-runtime-");
let insecurePort = 0;
let server: TestAPIServer;
let kubeconfig: string;
let client: Client;

before(async () => {
  insecurePort = await freePort();
  server = new TestAPIServer(dir.path, [`--insecure-port=${insecurePort}`]);
  await server.start();
  kubeconfig = server.writeKubeconfig(path.join(dir.path, "kubeconfig"));
  client = new Client(loadKubeconfig({ kubeconfig, userAgent: defaultUserAgent("k8ts-test") }));
});

after(async () => {
  client?.close();
  await server?.stop();
  dir.remove();
});

async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function ensureNamespace(name: string): Promise<void> {
  try {
    await client.resource("v1/Namespace").create({ metadata: { name } });
  } catch (err) {
    if (!isStatusError(err, "AlreadyExists")) throw err;
  }
}

test("kubeconfig from the server, HTTP/2, and --master on the insecure port reach the same API", async () => {
  const ns = await client.resource("v1/Namespace").get("default");
  assert.equal(ns.metadata?.name, "default");
  assert.equal(ns.status?.phase, "Active");

  const h2 = new Client({ ...loadKubeconfig({ kubeconfig }), http2: true });
  try {
    const results = await Promise.all(
      Array.from({ length: 20 }, () => h2.resource("v1/Namespace").get("kube-system")),
    );
    assert.ok(results.every((r) => r.metadata?.name === "kube-system"));
    // Lists are written piece by piece: over HTTP/2 too, and larger than one 64 KiB chunk.
    const big = "x".repeat(20_000);
    for (let i = 0; i < 8; i++)
      await h2
        .resource("v1/ConfigMap", "default")
        .create({ metadata: { name: `big-${i}` }, data: { big } });
    const listed = await h2.resource("v1/ConfigMap", "default").list();
    assert.equal(listed.items.filter((c) => c.data?.big === big).length, 8);
    // Watches are streams of the same session.
    const ac = new AbortController();
    const events = await h2
      .resource("v1/ConfigMap", "default")
      .watch({ resourceVersion: "0" }, ac.signal);
    await client.resource("v1/ConfigMap", "default").create({ metadata: { name: "over-h2" } });
    for await (const e of events) {
      if (e.type === "ADDED" && e.object.metadata?.name === "over-h2") break;
    }
    ac.abort();
  } finally {
    h2.close();
  }

  const plain = new Client(
    buildConfigFromFlags(`http://127.0.0.1:${insecurePort}`, undefined, { env: {} }),
  );
  try {
    assert.equal((await plain.resource("v1/Namespace").get("default")).metadata?.name, "default");
  } finally {
    plain.close();
  }

  // Over TLS without the CA, the server's certificate is not trusted.
  const untrusted = new Client({ server: server.url, namespace: "default" });
  try {
    await assert.rejects(
      untrusted.resource("v1/Namespace").get("default"),
      /self[- ]signed|unable to verify|certificate/i,
    );
  } finally {
    untrusted.close();
  }
});

test("every built-in kind has a typed handle that lists", async () => {
  let listed = 0;
  for (const r of resources) {
    // componentstatuses is in the catalogue but the server does not serve it yet.
    if (!r.verbs.includes("list") || r.resource === "componentstatuses") continue;
    const kind = `${r.group ? `${r.group}/` : ""}${r.version}/${r.kind}` as KindName;
    const list = await client.resource(kind).list({ limit: 5 });
    assert.ok(Array.isArray(list.items), kind);
    assert.ok(list.metadata.resourceVersion, `${kind} has a list resourceVersion`);
    listed++;
  }
  assert.ok(listed >= 40, `listed ${listed} kinds`);
});

test("CRUD with Status errors carrying code, reason and message", async () => {
  const cms = client.resource("v1/ConfigMap", "default");
  const created = await cms.create({ metadata: { name: "crud" }, data: { a: "1" } });
  assert.equal(created.kind, "ConfigMap");
  assert.equal(
    created.metadata?.managedFields?.[0]?.manager,
    "k8ts-test",
    "manager from the User-Agent",
  );

  await assert.rejects(cms.create({ metadata: { name: "crud" } }), (err: unknown) => {
    assert.ok(err instanceof StatusError);
    assert.equal(err.code, 409);
    assert.equal(err.reason, "AlreadyExists");
    assert.equal(err.message, 'configmaps "crud" already exists');
    return true;
  });

  const updated = await cms.update({ ...created, data: { a: "2" } });
  assert.deepEqual(updated.data, { a: "2" });
  await assert.rejects(cms.update({ ...created, data: { a: "3" } }), (err: unknown) => {
    assert.ok(isStatusError(err, "Conflict"));
    assert.match(err.message, /the object has been modified/);
    return true;
  });

  assert.deepEqual((await cms.patch("crud", "merge", { data: { b: "x" } })).data, {
    a: "2",
    b: "x",
  });
  assert.deepEqual((await cms.patch("crud", "json", [{ op: "remove", path: "/data/a" }])).data, {
    b: "x",
  });
  const applied = await cms.apply(
    { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "crud" }, data: { c: "y" } },
    { fieldManager: "tester", force: true },
  );
  assert.equal(applied.data?.c, "y");

  const deployments = client.resource("apps/v1/Deployment", "default");
  await assert.rejects(
    deployments.create({ metadata: { name: "bad" }, spec: { selector: {}, template: {} } }),
    (err: unknown) => {
      assert.ok(isStatusError(err, "Invalid"));
      assert.equal(err.code, 422);
      assert.ok(err.details?.causes?.some((c) => c.field?.startsWith("spec.")));
      return true;
    },
  );

  await cms.delete("crud");
  await assert.rejects(cms.get("crud"), (err: unknown) => {
    assert.ok(isStatusError(err, "NotFound"));
    assert.equal(err.code, 404);
    assert.equal(err.message, 'configmaps "crud" not found');
    return true;
  });
  await assert.rejects(client.resource("v1/ConfigMap").get("x"), /namespace is required/);
});

/** A ListerWatcher whose watch requests wait while `closed` is set. */
function gated<T>(
  inner: ResourceClient<T & object>,
): ListerWatcher<T> & { closed: boolean; open(): void } {
  let release: (() => void) | undefined;
  const gate = {
    closed: false,
    open() {
      gate.closed = false;
      release?.();
    },
    list: (opts: Parameters<ResourceClient["list"]>[0], signal?: AbortSignal) =>
      inner.list(opts, signal),
    async watch(opts: Parameters<ResourceClient["watch"]>[0], signal: AbortSignal) {
      if (gate.closed) await new Promise<void>((r) => (release = r));
      return inner.watch(opts, signal);
    },
  };
  return gate as ListerWatcher<T> & { closed: boolean; open(): void };
}

test("watch resumes, and relists after the server answers 410 for a compacted resourceVersion", async () => {
  await ensureNamespace("watch410");
  const cms = client.resource("v1/ConfigMap", "watch410");
  await cms.create({ metadata: { name: "keep" }, data: { v: "0" } });
  await cms.create({ metadata: { name: "goes" } });
  const source = gated<ConfigMap>(cms);
  const ac = new AbortController();
  const errors: unknown[] = [];
  const w = watcher<ConfigMap>(
    source,
    { watchTimeoutSeconds: () => 1, onError: (e) => errors.push(e) },
    ac.signal,
  );
  const it = w[Symbol.asyncIterator]();
  const next = async (): Promise<WatcherEvent<ConfigMap>> => {
    const r = await it.next();
    assert.equal(r.done, false);
    return r.value as WatcherEvent<ConfigMap>;
  };
  const show = (e: WatcherEvent<ConfigMap>) =>
    e.type === "init" || e.type === "initDone" ? e.type : `${e.type}:${e.object.metadata?.name}`;

  const initial: string[] = [];
  for (let e = await next(); ; e = await next()) {
    initial.push(show(e));
    if (e.type === "initDone") break;
  }
  assert.deepEqual(initial, ["init", "initApply:goes", "initApply:keep", "initDone"]);
  await cms.patch("keep", "merge", { data: { v: "1" } });
  assert.equal(show(await next()), "apply:keep");
  assert.equal(w.phase, "watching");

  // Hold the next watch back; the server ends the current one after its 1 s timeout. The
  // watcher only moves while someone waits for its next event.
  source.closed = true;
  const pending = it.next();
  await waitFor("the watch to end", () => w.phase === "listed");
  const staleRV = w.resourceVersion;
  // Write until a watch from staleRV answers 410: past the 1,000 revisions the storage keeps
  // and past the server's watch cache window of ConfigMap events (10,000), whichever serves it.
  await cms.delete("goes");
  await cms.patch("keep", "merge", { data: { v: "2" } });
  await cms.create({ metadata: { name: "new" } });
  await ensureNamespace("churn");
  const churn = client.resource("v1/ConfigMap", "churn");
  const staleWatchFails = async (): Promise<boolean> => {
    try {
      for await (const e of await cms.watch(
        { resourceVersion: staleRV, timeoutSeconds: 1 },
        AbortSignal.timeout(5000),
      ))
        if (e.type === "ERROR") return (e.object as unknown as { code: number }).code === 410;
      return false;
    } catch (err) {
      if (isStatusError(err) && err.code === 410) return true;
      throw err;
    }
  };
  let written = 0;
  while (!(await staleWatchFails())) {
    assert.ok(written < 30_000, "the server forgets old revisions");
    for (let batch = 0; batch < 20; batch++, written += 100)
      await Promise.all(
        Array.from({ length: 100 }, (_, j) =>
          churn.create({ metadata: { name: `c-${written + j}` } }),
        ),
      );
  }
  assert.ok(written >= 1000);
  source.open();

  const relist: string[] = [];
  for (let e = (await pending).value as WatcherEvent<ConfigMap>; ; e = await next()) {
    relist.push(show(e));
    if (e.type === "initDone") break;
  }
  assert.deepEqual(relist, ["init", "initApply:keep", "initApply:new", "initDone"]);
  assert.ok(
    errors.some((e) => isStatusError(e) && e.code === 410),
    "the 410 was reported",
  );
  assert.ok(Number(w.resourceVersion) > Number(staleRV) + 1000);
  ac.abort();
  assert.equal((await it.next()).done, true);
});

test("shared informers converge on the server's state and share one cache per kind", async () => {
  await ensureNamespace("informers");
  const cms = client.resource("v1/ConfigMap", "informers");
  const informers = new SharedInformers(client);
  const informer = informers.informer("v1/ConfigMap", { namespace: "informers" });
  assert.equal(informers.informer("v1/ConfigMap", { namespace: "informers" }), informer);
  informer.addIndexers({ byColor: (cm) => (cm.data?.color ? [cm.data.color] : []) });
  for (let i = 0; i < 20; i++)
    await cms.create({ metadata: { name: `pre-${i}` }, data: { color: "red" } });
  const ac = new AbortController();
  const running = informers.start(ac.signal);
  assert.equal(await informers.waitForCacheSync(), true);
  assert.equal(informer.store.size, 20);

  await Promise.all(
    Array.from({ length: 30 }, (_, i) =>
      cms.create({ metadata: { name: `live-${i}` }, data: { color: "blue" } }),
    ),
  );
  await Promise.all(Array.from({ length: 10 }, (_, i) => cms.delete(`pre-${i}`)));
  await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      cms.patch(`live-${i}`, "merge", { data: { color: "green" } }),
    ),
  );

  const server = await cms.list();
  const want = new Map(server.items.map((c) => [c.metadata!.name!, c.metadata!.resourceVersion]));
  await waitFor("the cache to match the server", () => {
    if (informer.store.size !== want.size) return false;
    return [...want].every(
      ([name, rv]) => informer.store.getByName("informers", name)?.metadata?.resourceVersion === rv,
    );
  });
  assert.equal(informer.store.byIndex("byColor", "red").length, 10);
  assert.equal(informer.store.byIndex("byColor", "green").length, 10);
  assert.equal(informer.store.byIndex("byColor", "blue").length, 20);

  // An informer asked for while running starts by itself.
  const secrets = informers.informer("v1/Secret", { namespace: "informers" });
  assert.equal(await secrets.waitForSync(AbortSignal.timeout(10_000)), true);
  ac.abort();
  await running;
});

test("leader election: one candidate leads; when its signal fires it releases and the other takes over", async () => {
  const broadcaster = new EventBroadcaster(client);
  const timings = { leaseDuration: 2000, renewDeadline: 1500, retryPeriod: 300 };
  const leading = new Set<string>();
  const log: string[] = [];
  const candidate = (identity: string) => {
    const ac = new AbortController();
    const elector = new LeaderElector({
      client,
      namespace: "kube-system",
      name: "test-election",
      identity,
      releaseOnCancel: true,
      ...timings,
      recorder: broadcaster.newRecorder("test-election"),
      onStartedLeading: async (signal) => {
        leading.add(identity);
        log.push(`${identity} started`);
        await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
        leading.delete(identity);
        log.push(`${identity} stopped`);
      },
    });
    return { ac, elector, run: elector.start(ac.signal) };
  };
  const a = candidate("node-a");
  const b = candidate("node-b");
  const first = await waitFor("a leader", () => [...leading][0]);
  // Both keep campaigning for a while: never two leaders.
  for (let i = 0; i < 10; i++) {
    assert.equal(leading.size, 1);
    await new Promise((r) => setTimeout(r, 100));
  }
  const leases = client.resource("coordination.k8s.io/v1/Lease", "kube-system");
  const held = await leases.get("test-election");
  assert.equal(held.spec?.holderIdentity, first);
  assert.equal(held.spec?.leaseDurationSeconds, 2);
  assert.match(held.spec?.renewTime ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  const [leader, follower] = first === "node-a" ? [a, b] : [b, a];
  const other = first === "node-a" ? "node-b" : "node-a";
  assert.equal(follower.elector.getLeader(), first);

  const handoverStart = Date.now();
  leader.ac.abort();
  await leader.run;
  const second = await waitFor("the other candidate to lead", () =>
    leading.has(other) ? other : "",
  );
  assert.equal(second, other);
  assert.ok(Date.now() - handoverStart < timings.leaseDuration + 1000, "released, not expired");
  const taken = (await leases.get("test-election")) as Lease;
  assert.equal(taken.spec?.holderIdentity, other);
  assert.equal(taken.spec?.leaseTransitions, (held.spec?.leaseTransitions ?? 0) + 1);

  follower.ac.abort();
  await follower.run;
  assert.deepEqual(log, [
    `${first} started`,
    `${first} stopped`,
    `${other} started`,
    `${other} stopped`,
  ]);
  const released = await leases.get("test-election");
  assert.equal(released.spec?.holderIdentity, "");

  await broadcaster.flush();
  const events = await client
    .resource("v1/Event", "kube-system")
    .list({ fieldSelector: "involvedObject.name=test-election" });
  const messages = events.items.map((e) => e.message).sort();
  assert.ok(messages.includes(`${first} became leader`), messages.join("; "));
  assert.ok(messages.includes(`${other} became leader`));
  assert.ok(
    events.items.every((e) => e.reason === "LeaderElection" && e.involvedObject.kind === "Lease"),
  );
});

test("leader election: a leader that stops renewing loses the lease after it expires", async () => {
  // Lease durations are whole seconds on the wire (leaseDurationSeconds).
  const timings = { leaseDuration: 2000, renewDeadline: 1500, retryPeriod: 200 };
  const crashed = new AbortController();
  let firstLed = false;
  const first = new LeaderElector({
    client,
    namespace: "kube-system",
    name: "test-expiry",
    identity: "crashes",
    ...timings,
    onStartedLeading: () => void (firstLed = true),
  });
  const firstRun = first.start(crashed.signal);
  await waitFor("the first leader", () => firstLed);
  crashed.abort(); // no release: the lease stays with "crashes" until it expires
  await firstRun;
  const since = Date.now();
  let secondLed = false;
  const ac = new AbortController();
  const second = new LeaderElector({
    client,
    namespace: "kube-system",
    name: "test-expiry",
    identity: "survivor",
    ...timings,
    onStartedLeading: () => void (secondLed = true),
  });
  const run = second.start(ac.signal);
  await waitFor("the survivor to lead", () => secondLed);
  assert.ok(Date.now() - since >= 1900, "not before the lease duration has passed");
  ac.abort();
  await run;
});

test("events recorder: repeats become one Event with a count; similar ones are combined", async () => {
  await ensureNamespace("events");
  const cm = await client
    .resource("v1/ConfigMap", "events")
    .create({ metadata: { name: "subject" } });
  const broadcaster = new EventBroadcaster(client);
  const recorder = broadcaster.newRecorder("test-controller");
  for (let i = 0; i < 3; i++)
    recorder.event(cm, "Normal", "Synced", "ConfigMap synced successfully");
  for (let i = 0; i < 12; i++)
    recorder.event(cm, "Warning", "FailedSync", `sync failed: attempt ${i}`);
  await broadcaster.flush();
  const list = await client.resource("v1/Event", "events").list();
  const synced = list.items.filter((e: Event) => e.reason === "Synced");
  assert.equal(synced.length, 1);
  const s = synced[0]!;
  assert.equal(s.count, 3);
  assert.equal(s.type, "Normal");
  assert.equal(s.source?.component, "test-controller");
  assert.equal(s.reportingComponent, "test-controller");
  assert.deepEqual(
    { kind: s.involvedObject.kind, name: s.involvedObject.name, uid: s.involvedObject.uid },
    { kind: "ConfigMap", name: "subject", uid: cm.metadata?.uid },
  );
  assert.match(s.metadata?.name ?? "", /^subject\.[0-9a-f]+$/);
  assert.ok(s.firstTimestamp && s.lastTimestamp);

  const failed = list.items.filter((e: Event) => e.reason === "FailedSync");
  const combined = failed.filter((e) => e.message?.startsWith("(combined from similar events): "));
  assert.equal(failed.length - combined.length, 9, "nine distinct events before aggregation");
  assert.equal(combined.length, 1);
  assert.equal(combined[0]!.count, 3);
  assert.equal(combined[0]!.message, "(combined from similar events): sync failed: attempt 11");
  await broadcaster.shutdown();
});

test("controller: a level-triggered reconciler over keys, re-run for owned objects", async () => {
  await ensureNamespace("ctrl");
  const cms = client.resource("v1/ConfigMap", "ctrl");
  const secrets = client.resource("v1/Secret", "ctrl");
  const informers = new SharedInformers(client);
  let reconciles = 0;
  let periodic = 0;
  let failOnce = true;
  const errors: unknown[] = [];
  const mirror = controller({
    name: "configmap-mirror",
    informers,
    for: "v1/ConfigMap",
    owns: ["v1/Secret"],
    workers: 2,
    onError: (err) => errors.push(err),
    reconcile: async ({ namespace, name }) => {
      reconciles++;
      if (namespace !== "ctrl") return;
      if (name === "periodic") {
        periodic++;
        return { requeueAfter: 100 };
      }
      const cm = mirror.informer.store.getByName(namespace, name);
      if (!cm || cm.metadata?.deletionTimestamp) return;
      if (name === "flaky" && failOnce) {
        failOnce = false;
        throw new Error("transient failure");
      }
      const want: Secret = {
        metadata: {
          name: `${name}-mirror`,
          namespace,
          ownerReferences: [
            { apiVersion: "v1", kind: "ConfigMap", name, uid: cm.metadata!.uid!, controller: true },
          ],
        },
        stringData: cm.data ?? {},
      };
      const existing = informers.informer("v1/Secret").store.getByName(namespace, `${name}-mirror`);
      if (!existing) {
        try {
          await secrets.create(want);
        } catch (err) {
          if (!isStatusError(err, "AlreadyExists")) throw err;
        }
        return;
      }
      const have = Object.fromEntries(
        Object.entries(existing.data ?? {}).map(([k, v]) => [
          k,
          Buffer.from(v, "base64").toString(),
        ]),
      );
      if (JSON.stringify(have) !== JSON.stringify(cm.data ?? {}))
        await secrets.update({ ...existing, data: undefined, stringData: cm.data ?? {} } as Secret);
    },
  });
  const ac = new AbortController();
  const running = Promise.all([informers.start(ac.signal), mirror.start(ac.signal)]);
  await waitFor("the controller to be ready", () => mirror.ready);

  await cms.create({ metadata: { name: "app" }, data: { greeting: "hello" } });
  await cms.create({ metadata: { name: "flaky" }, data: { x: "1" } });
  const decode = (s: Secret) => Buffer.from(s.data?.greeting ?? "", "base64").toString();
  await waitFor("the mirror", async () => {
    try {
      return decode(await secrets.get("app-mirror")) === "hello";
    } catch {
      return false;
    }
  });
  await waitFor("the flaky mirror after a retry", () =>
    secrets.get("flaky-mirror").catch(() => undefined),
  );
  assert.equal(errors.length, 1);

  // Deleting the owned object wakes the owner's key: the mirror comes back.
  await secrets.delete("app-mirror");
  await waitFor("the mirror to be recreated", () =>
    secrets.get("app-mirror").catch(() => undefined),
  );
  // A change of the owner is reconciled into the mirror.
  await cms.patch("app", "merge", { data: { greeting: "bonjour" } });
  await waitFor(
    "the mirror to follow",
    async () => decode(await secrets.get("app-mirror")) === "bonjour",
  );
  assert.ok(reconciles >= 4);
  // requeueAfter runs the key again without any change.
  await cms.create({ metadata: { name: "periodic" } });
  await waitFor("three periodic reconciles", () => periodic >= 3);
  ac.abort();
  await running;
  assert.equal(mirror.ready, false);
});
