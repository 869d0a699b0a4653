import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { isStorageError, type StorageError } from "../errors.js";
import type { Store, Watch, WatchEvent } from "../interface.js";
import { runConformance, waitFor } from "../conformance.js";
import {
  generateCertificates,
  startEtcd,
  startEtcdCluster,
  type EtcdCluster,
  type EtcdServer,
} from "../../testing/etcd.js";
import { COMPACT_REV_KEY, EtcdStore, type EtcdOptions } from "./etcd.js";
import { checkCrashValue } from "../crash-writer.js";
import { runCrashWriter } from "../../testing/crash.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function failure(p: Promise<unknown>): Promise<StorageError> {
  try {
    await p;
  } catch (err) {
    assert.ok(isStorageError(err), `expected a StorageError, got ${String(err)}`);
    return err;
  }
  assert.fail("expected the call to fail");
}

/** Repeats `fn` while it fails with a retryable error, up to `timeoutMs`. */
async function retrying<T>(fn: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!isStorageError(err) || !err.retryable || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Collects everything a watch yields, in the background. */
class Collector {
  readonly events: WatchEvent[] = [];
  readonly progress: number[] = [];
  error: unknown;
  ended = false;

  constructor(readonly watch: Watch) {
    void (async () => {
      try {
        for await (const m of watch) {
          if (m.type === "events") this.events.push(...m.events);
          else this.progress.push(m.revision);
        }
      } catch (err) {
        this.error = err;
      } finally {
        this.ended = true;
      }
    })();
  }

  waitEvents(n: number, timeoutMs = 10_000): Promise<WatchEvent[]> {
    return waitFor(
      `${n} watch events (have ${this.events.length})`,
      () => {
        if (this.error) throw this.error;
        return this.events.length >= n ? this.events.slice(0, n) : undefined;
      },
      timeoutMs,
    );
  }

  /** Every event exactly once, in strictly increasing revision order. */
  assertGapless(expectedRevisions: number[]): void {
    assert.deepEqual(
      this.events.map((e) => e.kv.modRevision),
      expectedRevisions,
    );
  }
}

/**
 * A TCP relay in front of an etcd member, for cutting a store off without stopping etcd:
 * cut() drops every connection and refuses new ones until resume().
 */
class Relay {
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;
  private accepting = true;
  url = "";

  private constructor(private readonly target: URL) {
    this.server = net.createServer((client) => this.accept(client));
  }

  static async start(endpoint: string): Promise<Relay> {
    const relay = new Relay(new URL(endpoint));
    await new Promise<void>((r) => relay.server.listen(0, "127.0.0.1", r));
    relay.url = `http://127.0.0.1:${(relay.server.address() as net.AddressInfo).port}`;
    return relay;
  }

  private accept(client: net.Socket): void {
    if (!this.accepting) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(this.target.port), this.target.hostname);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
      s.on("error", () => {});
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  }

  cut(): void {
    this.accepting = false;
    for (const s of this.sockets) s.destroy();
  }

  resume(): void {
    this.accepting = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((r) => this.server.close(r));
  }
}

const prefixes = (() => {
  let n = 0;
  return (what: string) => `/registry/etcd-test-${process.pid}-${n++}-${what}/`;
})();

describe("etcd store", () => {
  let server: EtcdServer;
  const stores: Store[] = [];
  const open = async (opts: Partial<EtcdOptions> = {}) => {
    const store = await EtcdStore.open({
      endpoints: server.endpoints,
      compactionIntervalMs: 0,
      ...opts,
    });
    stores.push(store);
    return store;
  };

  before(async () => {
    server = await startEtcd();
  });
  after(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await server?.stop();
  });

  test("open() rejects unusable options with errors that name the problem", async () => {
    const noFile = await failure(
      EtcdStore.open({ endpoints: server.endpoints, caFile: "/nonexistent/etcd-ca.crt" }),
    );
    assert.equal(noFile.code, "InvalidArgument");
    assert.match(noFile.message, /caFile \/nonexistent\/etcd-ca\.crt/);
    assert.equal((await failure(EtcdStore.open({ endpoints: [] }))).code, "InvalidArgument");
    const scheme = await failure(EtcdStore.open({ endpoints: ["unix:///run/etcd.sock"] }));
    assert.match(scheme.message, /http:\/\/ or https:\/\//);
  });

  test("all endpoints down: a prompt retryable Unavailable; after a restart nothing acknowledged is lost", async () => {
    const store = await open({ requestTimeoutMs: 3000 });
    const p = prefixes("down");
    const acked: Array<[string, number]> = [];
    for (let i = 0; i < 20; i++) {
      const r = await store.create(`${p}${i}`, enc(`v${i}`));
      acked.push([`${p}${i}`, r.revision]);
    }
    await server.kill();
    for (const call of [
      () => store.get(`${p}0`),
      () => store.list(p),
      () => store.create(`${p}new`, enc("x")),
      () => store.status(),
    ]) {
      const started = Date.now();
      const err = await failure(call());
      assert.equal(err.code, "Unavailable", err.message);
      assert.ok(err.retryable);
      assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
      assert.ok(err.message.includes(server.endpoints[0]!), err.message);
    }
    await server.restart();
    const list = await retrying(() => store.list(p));
    assert.deepEqual(
      list.kvs.map((kv) => [kv.key, kv.modRevision]),
      acked.sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0]))),
    );
    await store.create(`${p}after-restart`, enc("ok"));
  });

  test("watches resume after an etcd restart without gaps or repeats", async () => {
    const store = await open();
    const p = prefixes("restart-watch");
    const first = await store.create(`${p}a`, enc("1"));
    const fromStart = new Collector(
      store.watch(p, { prefix: true, startRevision: first.revision }),
    );
    const fromNow = new Collector(store.watch(p, { prefix: true }));
    const revisions = [first.revision];
    for (let i = 0; i < 5; i++)
      revisions.push((await store.create(`${p}b${i}`, enc("x"))).revision);
    await fromStart.waitEvents(6);
    await fromNow.waitEvents(5);

    await server.kill();
    await server.restart();
    for (let i = 0; i < 5; i++) {
      revisions.push((await retrying(() => store.create(`${p}c${i}`, enc("y")))).revision);
    }
    await fromStart.waitEvents(11);
    await fromNow.waitEvents(10);
    fromStart.assertGapless(revisions);
    fromNow.assertGapless(revisions.slice(1));
    fromStart.watch.requestProgress();
    const progress = await waitFor("progress", () => fromStart.progress[0]);
    assert.ok(progress >= revisions[revisions.length - 1]!);
    fromStart.watch.close();
    fromNow.watch.close();
    await waitFor("watches to end", () => (fromStart.ended && fromNow.ended) || undefined);
    assert.equal(fromStart.error, undefined);
  });

  test("a watch whose resume point was compacted while it was cut off ends with Compacted", async () => {
    const relay = await Relay.start(server.endpoints[0]!);
    try {
      const direct = await open();
      const viaRelay = await open({ endpoints: [relay.url] });
      const p = prefixes("compacted-resume");
      const c = await direct.create(`${p}k`, enc("1"));
      const watch = new Collector(viaRelay.watch(p, { prefix: true, startRevision: c.revision }));
      await watch.waitEvents(1);
      relay.cut();
      const u1 = await direct.update(`${p}k`, enc("2"), c.revision);
      const u2 = await direct.update(`${p}k`, enc("3"), u1.revision);
      await direct.compact(u2.revision);
      relay.resume();
      await waitFor("the watch to end", () => (watch.ended ? true : undefined));
      assert.ok(isStorageError(watch.error, "Compacted"), String(watch.error));
      assert.equal((watch.error as StorageError).details.compactRevision, u2.revision);
      assert.equal(watch.events.length, 1);
    } finally {
      await relay.close();
    }
  });

  test("progress requests on a watch still catching up wait for its history", async () => {
    const store = await open();
    const p = prefixes("progress");
    const first = await store.create(`${p}0`, enc("0"));
    let last = first.revision;
    for (let i = 1; i < 300; i++) last = (await store.create(`${p}${i}`, enc(`${i}`))).revision;
    for (let round = 0; round < 3; round++) {
      const watch = new Collector(store.watch(p, { prefix: true, startRevision: first.revision }));
      watch.watch.requestProgress();
      const progress = await waitFor("progress", () => watch.progress[0]);
      assert.equal(watch.events.length, 300, `progress ${progress} came before the history`);
      assert.ok(progress >= last);
      watch.watch.close();
    }
  });

  test("background compactors compact to the previous interval's revision, taking turns", async () => {
    const direct = await open();
    const p = prefixes("compactor");
    const old = await direct.create(`${p}k`, enc("old"));
    const before = (await direct.get(COMPACT_REV_KEY)).kv?.version ?? 0;
    const interval = 200;
    const started = Date.now();
    const compactors = [
      await open({ compactionIntervalMs: interval }),
      await open({ compactionIntervalMs: interval }),
    ];
    await direct.update(`${p}k`, enc("new"), old.revision);
    const status = await waitFor(
      "a compaction",
      async () => {
        const s = await direct.status();
        return s.compactRevision > old.revision ? s : undefined;
      },
      10_000,
    );
    const err = await failure(direct.get(`${p}k`, { revision: old.revision }));
    assert.equal(err.code, "Compacted");
    assert.ok((err.details.compactRevision ?? 0) >= status.compactRevision);
    await new Promise((r) => setTimeout(r, 4 * interval));
    await Promise.all(compactors.map((c) => c.close()));
    const rounds = (await direct.get(COMPACT_REV_KEY)).kv!.version - before;
    const intervals = (Date.now() - started) / interval;
    assert.ok(rounds >= 2, `${rounds} compaction rounds`);
    assert.ok(rounds <= intervals + 1, `${rounds} rounds in ${intervals.toFixed(1)} intervals`);
  });

  test(
    "after SIGKILL of etcd every acknowledged write is there, whole",
    { timeout: 60_000 },
    async () => {
      const dataDir = await mkdtemp(join(tmpdir(), "k8ts-etcd-crash-"));
      const crashServer = await startEtcd({ dataDir }).catch(async (err: unknown) => {
        await rm(dataDir, { recursive: true, force: true });
        throw err;
      });
      try {
        const acked = await runCrashWriter(
          { backend: "etcd", endpoints: crashServer.endpoints },
          { acks: 500, kill: () => crashServer.kill() },
        );
        await crashServer.restart();
        const store = await open({ endpoints: crashServer.endpoints });
        const stored = new Map<string, number>();
        for (const kv of (await retrying(() => store.list("/registry/crash/"))).kvs) {
          stored.set(kv.key, checkCrashValue(kv.key, kv.value));
        }
        let missing = 0;
        for (const [key, n] of acked) {
          const got = stored.get(key);
          if (got === undefined || got < n) missing++;
        }
        assert.equal(missing, 0, `${missing} of ${acked.size} acknowledged writes lost`);
        assert.ok(stored.size >= acked.size);
        assert.ok(
          [...acked.values()].some((n) => n > 0),
          "updates were acknowledged too",
        );
      } finally {
        await crashServer.stop();
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  );
});

describe("etcd store over TLS", () => {
  let server: EtcdServer;
  let certDir: string;
  before(async () => {
    server = await startEtcd({ tls: true });
    certDir = await mkdtemp(join(tmpdir(), "k8ts-foreign-certs-"));
  });
  after(async () => {
    await server?.stop();
    if (certDir) await rm(certDir, { recursive: true, force: true });
  });

  test("a client certificate signed by the server's CA works", async () => {
    const store = await EtcdStore.open({
      endpoints: server.endpoints,
      caFile: server.caFile,
      certFile: server.certFile,
      keyFile: server.keyFile,
      compactionIntervalMs: 0,
    });
    try {
      assert.match(server.endpoints[0]!, /^https:/);
      const p = prefixes("tls");
      const watch = new Collector(store.watch(p, { prefix: true }));
      const c = await store.create(`${p}a`, enc("secret"));
      assert.equal(dec((await store.get(`${p}a`)).kv!.value), "secret");
      const [e] = await watch.waitEvents(1);
      assert.equal(e!.kv.modRevision, c.revision);
    } finally {
      await store.close();
    }
  });

  test("a missing or foreign client certificate, or the wrong CA, fails clearly and at once", async () => {
    const foreign = await generateCertificates(certDir);
    const cases: Array<[string, Partial<EtcdOptions>]> = [
      ["no client certificate", { caFile: server.caFile }],
      [
        "a client certificate from another CA",
        { caFile: server.caFile, certFile: foreign.clientCertFile, keyFile: foreign.clientKeyFile },
      ],
      [
        "the wrong CA",
        { caFile: foreign.caFile, certFile: server.certFile, keyFile: server.keyFile },
      ],
    ];
    for (const [what, opts] of cases) {
      const store = await EtcdStore.open({
        endpoints: server.endpoints,
        compactionIntervalMs: 0,
        ...opts,
      });
      try {
        const started = Date.now();
        const err = await failure(store.get("/registry/x"));
        assert.equal(err.code, "Unavailable", `${what}: ${err.message}`);
        assert.match(err.message, /TLS handshake failed/, `${what}: ${err.message}`);
        assert.ok(err.message.includes(server.endpoints[0]!), `${what}: ${err.message}`);
        assert.ok(Date.now() - started < 2000, `${what}: took ${Date.now() - started} ms`);
      } finally {
        await store.close();
      }
    }
  });
});

describe("etcd store failover", () => {
  let cluster: EtcdCluster;
  before(async () => {
    cluster = await startEtcdCluster(3);
  });
  after(async () => {
    await cluster?.stop();
  });

  test("losing the member in use: reads, writes and watches go on without a gap", async () => {
    const store = await EtcdStore.open({ endpoints: cluster.endpoints, compactionIntervalMs: 0 });
    try {
      const p = prefixes("failover");
      const first = await store.create(`${p}0`, enc("0"));
      const watch = new Collector(store.watch(p, { prefix: true, startRevision: first.revision }));
      const revisions = [first.revision];
      for (let i = 1; i < 10; i++)
        revisions.push((await store.create(`${p}${i}`, enc("x"))).revision);
      await watch.waitEvents(10);

      const victim = cluster.endpoints.indexOf(store.currentEndpoint);
      assert.ok(victim >= 0);
      await cluster.members[victim]!.kill();
      for (let i = 10; i < 30; i++) {
        revisions.push((await retrying(() => store.create(`${p}${i}`, enc("x")), 10_000)).revision);
      }
      assert.notEqual(store.currentEndpoint, cluster.endpoints[victim]);
      const list = await store.list(p);
      assert.equal(list.kvs.length, 30);
      await watch.waitEvents(30);
      watch.assertGapless(revisions);
      assert.equal(watch.error, undefined);
      watch.watch.close();
    } finally {
      await store.close();
    }
  });
});

describe("etcd conformance", () => {
  let server: EtcdServer;
  before(async () => {
    server = await startEtcd();
  });
  after(async () => {
    await server?.stop();
  });
  runConformance(
    "etcd",
    () => EtcdStore.open({ endpoints: server.endpoints, compactionIntervalMs: 0 }),
    // etcd raises lease TTLs to its minimum: 1.5 election timeouts, rounded up to seconds.
    { minLeaseTtlSeconds: 2 },
  );
});
