/**
 * The storage conformance suite: the contract of `Store` (interface.ts), checked the same way on
 * every backend. A backend's test file calls runConformance() inside its own setup. Tests write
 * under a fresh key prefix each, so one etcd can serve the whole suite, and never assume that
 * nobody else moves the global revision.
 */
import { randomUUID } from "node:crypto";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { MAX_VALUE_BYTES, type Store, type Watch, type WatchEvent } from "./interface.js";
import { isStorageError, StorageError } from "./errors.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Reads events from a watch until `count` have arrived; fails after `timeoutMs`. */
export async function takeEvents(
  watch: Watch,
  count: number,
  timeoutMs = 10_000,
): Promise<WatchEvent[]> {
  const events: WatchEvent[] = [];
  const it = watch[Symbol.asyncIterator]();
  const deadline = Date.now() + timeoutMs;
  while (events.length < count) {
    const remaining = deadline - Date.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timed out with ${events.length}/${count} events`)),
        Math.max(1, remaining),
      );
    });
    try {
      const r = await Promise.race([it.next(), timeout]);
      if (r.done) throw new Error(`watch ended after ${events.length}/${count} events`);
      if (r.value.type === "events") events.push(...r.value.events);
    } finally {
      clearTimeout(timer);
    }
  }
  return events;
}

/** Waits for the next message of a watch that is not an event batch (progress), or its error. */
async function nextProgress(watch: Watch, timeoutMs = 10_000): Promise<number> {
  const it = watch[Symbol.asyncIterator]();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error("timed out waiting for progress")),
        Math.max(1, deadline - Date.now()),
      );
    });
    try {
      const r = await Promise.race([it.next(), timeout]);
      if (r.done) throw new Error("watch ended");
      if (r.value.type === "progress") return r.value.revision;
    } finally {
      clearTimeout(timer);
    }
  }
}

async function rejects(p: Promise<unknown>, code: StorageError["code"]): Promise<StorageError> {
  try {
    await p;
  } catch (err) {
    assert.ok(isStorageError(err), `expected StorageError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected StorageError ${code}, but the call succeeded`);
}

export interface ConformanceOptions {
  /** Smallest lease TTL the backend honours, in seconds (etcd rounds small TTLs up). */
  minLeaseTtlSeconds?: number;
}

export function runConformance(
  backend: string,
  open: () => Promise<Store>,
  opts: ConformanceOptions = {},
): void {
  const minTtl = opts.minLeaseTtlSeconds ?? 1;

  /** Runs `body` with a fresh store and a key prefix nobody else uses. */
  function withStore(body: (store: Store, p: string) => Promise<void>): () => Promise<void> {
    return async () => {
      const store = await open();
      try {
        await body(store, `/registry/conformance-${randomUUID()}/`);
      } finally {
        await store.close();
      }
    };
  }

  describe(`storage conformance: ${backend}`, () => {
    test(
      "revisions: every write moves the revision by one and keys carry create/mod revision and version",
      withStore(async (store, p) => {
        const before = (await store.status()).revision;
        assert.ok(before >= 1);
        const missing = await store.get(p + "a");
        assert.equal(missing.kv, undefined);

        const c = await store.create(p + "a", enc("one"));
        assert.ok(c.revision > before);
        assert.deepEqual(
          { ...c.kv, value: dec(c.kv.value) },
          {
            key: p + "a",
            value: "one",
            createRevision: c.revision,
            modRevision: c.revision,
            version: 1,
            lease: 0,
          },
        );
        const u = await store.update(p + "a", enc("two"), c.revision);
        assert.ok(u.revision > c.revision);
        assert.equal(u.kv.createRevision, c.revision);
        assert.equal(u.kv.modRevision, u.revision);
        assert.equal(u.kv.version, 2);
        const g = await store.get(p + "a");
        assert.ok(g.revision >= u.revision);
        assert.equal(dec(g.kv!.value), "two");
        assert.equal(g.kv!.version, 2);

        const d = await store.delete(p + "a");
        assert.ok(d.revision > u.revision);
        assert.equal(dec(d.kv.value), "two", "delete returns the value it removed");
        assert.equal((await store.get(p + "a")).kv, undefined);

        const again = await store.create(p + "a", enc("three"));
        assert.equal(again.kv.version, 1, "a key created after a delete starts a new life");
        assert.equal(again.kv.createRevision, again.revision);

        // Consecutive writes by one client with nobody else writing are consecutive revisions.
        const w1 = await store.create(p + "b", enc("x"));
        const w2 = await store.update(p + "b", enc("y"), w1.revision);
        assert.ok(w2.revision > w1.revision);
        assert.ok((await store.status()).revision >= w2.revision);
      }),
    );

    test(
      "create only if absent, update and delete only if the mod revision matches",
      withStore(async (store, p) => {
        const c = await store.create(p + "k", enc("v1"));
        const exists = await rejects(store.create(p + "k", enc("v2")), "KeyExists");
        assert.equal(exists.details.current?.modRevision, c.revision);

        const u = await store.update(p + "k", enc("v2"), c.revision);
        const stale = await rejects(store.update(p + "k", enc("v3"), c.revision), "Conflict");
        assert.equal(
          stale.details.current?.modRevision,
          u.revision,
          "a conflict returns the current state",
        );
        assert.equal(dec(stale.details.current!.value), "v2");
        await rejects(store.update(p + "absent", enc("x"), 5), "Conflict");
        await rejects(store.delete(p + "k", c.revision), "Conflict");
        await rejects(store.delete(p + "absent"), "KeyNotFound");
        await rejects(store.delete(p + "absent", 3), "KeyNotFound");

        // Nothing changed through the failures.
        const g = await store.get(p + "k");
        assert.equal(dec(g.kv!.value), "v2");
        assert.equal(g.kv!.modRevision, u.revision);
        const d = await store.delete(p + "k", u.revision);
        assert.equal(d.kv.modRevision, u.revision);
      }),
    );

    test(
      "reads at a revision see the store as it was then",
      withStore(async (store, p) => {
        const c = await store.create(p + "x", enc("1"));
        const u = await store.update(p + "x", enc("2"), c.revision);
        await store.create(p + "y", enc("y"));
        const d = await store.delete(p + "x");

        assert.equal(dec((await store.get(p + "x", { revision: c.revision })).kv!.value), "1");
        assert.equal(dec((await store.get(p + "x", { revision: u.revision })).kv!.value), "2");
        assert.equal((await store.get(p + "x", { revision: d.revision })).kv, undefined);
        assert.equal((await store.get(p + "y", { revision: c.revision })).kv, undefined);

        const atC = await store.list(p, { revision: c.revision });
        assert.deepEqual(
          atC.kvs.map((kv) => [kv.key, dec(kv.value)]),
          [[p + "x", "1"]],
        );
        const atU = await store.list(p, { revision: u.revision + 1 });
        assert.deepEqual(
          atU.kvs.map((kv) => [kv.key, dec(kv.value)]),
          [
            [p + "x", "2"],
            [p + "y", "y"],
          ],
        );
        const head = (await store.status()).revision;
        await rejects(store.get(p + "x", { revision: head + 1000 }), "FutureRevision");
      }),
    );

    test(
      "a past revision is exact whatever happened after it: updates, deletes, re-creates",
      withStore(async (store, p) => {
        const a = await store.create(p + "a", enc("a1"));
        const b = await store.create(p + "b", enc("b1"));
        const e = await store.create(p + "e", enc("e1"));
        const snapshot = e.revision;
        const a2 = await store.update(p + "a", enc("a2"), a.revision);
        await store.update(p + "a", enc("a3"), a2.revision);
        await store.delete(p + "b", b.revision);
        await store.create(p + "b", enc("b2"));
        await store.create(p + "c", enc("c1"));
        await store.create(p + "d", enc("d1"));
        await store.delete(p + "d");
        await store.delete(p + "e");

        const at = await store.list(p, { revision: snapshot });
        assert.deepEqual(
          at.kvs.map((kv) => [kv.key, dec(kv.value), kv.version, kv.modRevision]),
          [
            [p + "a", "a1", 1, a.revision],
            [p + "b", "b1", 1, b.revision],
            [p + "e", "e1", 1, e.revision],
          ],
        );
        assert.equal((await store.list(p, { revision: snapshot, count: true, limit: 1 })).count, 3);
        const page = await store.list(p, { revision: snapshot, limit: 2 });
        assert.deepEqual(
          page.kvs.map((kv) => kv.key),
          [p + "a", p + "b"],
        );
        assert.equal(page.more, true);
        assert.equal(dec((await store.get(p + "b", { revision: snapshot })).kv!.value), "b1");
        assert.equal((await store.get(p + "c", { revision: snapshot })).kv, undefined);
        assert.equal((await store.get(p + "d", { revision: snapshot })).kv, undefined);
        assert.equal(dec((await store.get(p + "e", { revision: snapshot })).kv!.value), "e1");
        const now = await store.list(p);
        assert.deepEqual(
          now.kvs.map((kv) => [kv.key, dec(kv.value)]),
          [
            [p + "a", "a3"],
            [p + "b", "b2"],
            [p + "c", "c1"],
          ],
        );
      }),
    );

    test(
      "lists are in byte order and a prefix holds only its own keys",
      withStore(async (store, p) => {
        const names = [
          "pods/default/b",
          "pods/default/a",
          "pods/kube-system/a",
          "pods/default/a0",
          "pods/default/a-",
        ];
        const others = ["podsecurity/x", "pod/x", "pods0", "apps/deployments/default/a"];
        for (const n of [...names, ...others]) await store.create(p + n, enc(n));
        const pods = await store.list(p + "pods/");
        const expected = names
          .map((n) => p + n)
          .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
        assert.deepEqual(
          pods.kvs.map((kv) => kv.key),
          expected,
        );
        const defaults = await store.list(p + "pods/default/");
        assert.equal(defaults.kvs.length, 4);
        assert.equal((await store.count(p + "pods/")).count, 5);
        const keysOnly = await store.list(p + "pods/", { keysOnly: true });
        assert.deepEqual(
          keysOnly.kvs.map((kv) => kv.key),
          expected,
        );
        const all = await store.list(p);
        assert.equal(all.kvs.length, names.length + others.length);
      }),
    );

    test(
      "N writers racing compare-and-swap on one key: exactly one wins each round, no lost update",
      withStore(async (store, p) => {
        const key = p + "counter";
        const first = await store.create(key, enc("0"));
        const writers = 16;
        const rounds = 20;
        let expected = first.revision;
        for (let round = 1; round <= rounds; round++) {
          const attempts = await Promise.allSettled(
            Array.from({ length: writers }, (_, w) =>
              store.update(key, enc(`${round}:${w}`), expected),
            ),
          );
          const winners = attempts.filter((a) => a.status === "fulfilled");
          assert.equal(winners.length, 1, `round ${round}: ${winners.length} winners`);
          for (const a of attempts) {
            if (a.status === "rejected")
              assert.ok(isStorageError(a.reason, "Conflict"), String(a.reason));
          }
          expected = (winners[0] as PromiseFulfilledResult<{ revision: number }>).value.revision;
        }
        // Read-modify-write increments with retries lose nothing.
        await store.update(key, enc("0"), expected);
        const perWriter = 10;
        await Promise.all(
          Array.from({ length: writers }, async () => {
            for (let done = 0; done < perWriter;) {
              const { kv } = await store.get(key);
              try {
                await store.update(key, enc(String(Number(dec(kv!.value)) + 1)), kv!.modRevision);
                done++;
              } catch (err) {
                if (!isStorageError(err, "Conflict")) throw err;
              }
            }
          }),
        );
        const final = await store.get(key);
        assert.equal(dec(final.kv!.value), String(writers * perWriter));
        assert.equal(final.kv!.version, rounds + 2 + writers * perWriter);
      }),
    );

    test(
      "a watch started at an old revision replays exactly the missed events in order, then goes on live",
      withStore(async (store, p) => {
        const revs: number[] = [];
        let last = await store.create(p + "w/a", enc("a1"));
        revs.push(last.revision);
        last = await store.update(p + "w/a", enc("a2"), last.revision);
        revs.push(last.revision);
        revs.push((await store.create(p + "w/b", enc("b1"))).revision);
        revs.push((await store.create(p + "other", enc("o"))).revision);
        revs.push((await store.delete(p + "w/a")).revision);

        const watch = store.watch(p + "w/", { prefix: true, startRevision: revs[1] });
        try {
          const replay = await takeEvents(watch, 3);
          assert.deepEqual(
            replay.map((e) => [
              e.type,
              e.kv.key,
              e.kv.modRevision,
              e.type === "put" ? dec(e.kv.value) : "",
            ]),
            [
              ["put", p + "w/a", revs[1], "a2"],
              ["put", p + "w/b", revs[2], "b1"],
              ["delete", p + "w/a", revs[4], ""],
            ],
          );
          assert.equal(dec(replay[0]!.prevKv!.value), "a1", "put events carry the previous value");
          assert.equal(replay[1]!.prevKv, undefined, "a create has no previous value");
          assert.equal(
            dec(replay[2]!.prevKv!.value),
            "a2",
            "delete events carry the deleted value",
          );

          const live = await store.update(p + "w/b", enc("b2"), revs[2]!);
          await store.create(p + "elsewhere", enc("x"));
          const c = await store.create(p + "w/c", enc("c1"));
          const more = await takeEvents(watch, 2);
          assert.deepEqual(
            more.map((e) => [e.kv.key, e.kv.modRevision]),
            [
              [p + "w/b", live.revision],
              [p + "w/c", c.revision],
            ],
          );
        } finally {
          watch.close();
        }
      }),
    );

    test(
      "a key watch sees only its key; a watch without start revision sees only later events",
      withStore(async (store, p) => {
        await store.create(p + "k", enc("before"));
        const watch = store.watch(p + "k");
        try {
          await store.create(p + "k2", enc("no"));
          const r = await store.update(
            p + "k",
            enc("after"),
            (await store.get(p + "k")).kv!.modRevision,
          );
          const [e] = await takeEvents(watch, 1);
          assert.equal(e!.kv.key, p + "k");
          assert.equal(e!.kv.modRevision, r.revision);
          assert.equal(dec(e!.kv.value), "after");
        } finally {
          watch.close();
        }
      }),
    );

    test(
      "progress notifications report a revision covering every delivered event",
      withStore(async (store, p) => {
        const watch = store.watch(p, { prefix: true });
        try {
          const w = await store.create(p + "a", enc("1"));
          await takeEvents(watch, 1);
          watch.requestProgress();
          const rev = await nextProgress(watch);
          assert.ok(rev >= w.revision, `progress ${rev} < last write ${w.revision}`);
        } finally {
          watch.close();
        }
      }),
    );

    test(
      "compaction: older revisions give a distinct Compacted error to reads and watches",
      withStore(async (store, p) => {
        const a = await store.create(p + "c", enc("1"));
        const b = await store.update(p + "c", enc("2"), a.revision);
        const c = await store.update(p + "c", enc("3"), b.revision);
        // Compacting at b keeps the state at b and every change after it, with previous values.
        await store.compact(b.revision);
        const err = await rejects(store.get(p + "c", { revision: a.revision }), "Compacted");
        assert.ok((err.details.compactRevision ?? b.revision) >= b.revision);
        await rejects(store.list(p, { revision: a.revision }), "Compacted");
        assert.equal(dec((await store.get(p + "c", { revision: b.revision })).kv!.value), "2");
        assert.equal(dec((await store.get(p + "c")).kv!.value), "3");

        const watch = store.watch(p, { prefix: true, startRevision: a.revision });
        const outcome = await takeEvents(watch, 1, 5000).then(
          () => "events",
          (e: unknown) => e,
        );
        watch.close();
        assert.ok(
          isStorageError(outcome, "Compacted"),
          `watch from a compacted revision: ${String(outcome)}`,
        );

        // A watch from after the compaction point still works, previous values included.
        const w2 = store.watch(p, { prefix: true, startRevision: c.revision });
        try {
          const [e] = await takeEvents(w2, 1);
          assert.equal(e!.kv.modRevision, c.revision);
          assert.equal(dec(e!.prevKv!.value), "2");
        } finally {
          w2.close();
        }
      }),
    );

    test(
      "pagination at one revision stays consistent while writes happen",
      withStore(async (store, p) => {
        const n = 47;
        const expected = new Map<string, string>();
        for (let i = 0; i < n; i++) {
          const key = `${p}item-${String(i).padStart(3, "0")}`;
          await store.create(key, enc(`v${i}`));
          expected.set(key, `v${i}`);
        }
        const seen = new Map<string, string>();
        let page = await store.list(p, { limit: 10, count: true });
        const snapshot = page.revision;
        assert.equal(page.count, n);
        let churn = 0;
        for (;;) {
          for (const kv of page.kvs) seen.set(kv.key, dec(kv.value));
          // Writes between pages: updates, deletes and creates on both sides of the cursor.
          const lastKey = page.kvs[page.kvs.length - 1]!.key;
          const { kv } = await store.get(`${p}item-${String(46 - churn).padStart(3, "0")}`);
          if (kv) await store.update(kv.key, enc("changed"), kv.modRevision);
          await store.delete(`${p}item-${String(churn).padStart(3, "0")}`);
          await store.create(`${p}item-${String(churn).padStart(3, "0")}-new`, enc("new"));
          churn++;
          if (!page.more) break;
          page = await store.list(p, { limit: 10, revision: snapshot, startKey: lastKey + "\0" });
          assert.equal(
            page.revision,
            snapshot,
            "every page is served at the first page's revision",
          );
        }
        assert.deepEqual([...seen.entries()], [...expected.entries()]);
      }),
    );

    test(
      "leases: keys expire with their lease, revocation deletes them, unknown leases are refused",
      withStore(async (store, p) => {
        const lease = await store.grantLease(minTtl);
        assert.ok(lease.id > 0);
        const watch = store.watch(p, { prefix: true });
        try {
          await store.create(p + "event-1", enc("e"), { lease: lease.id });
          await store.create(p + "stays", enc("s"));
          const [put] = await takeEvents(watch, 1);
          assert.equal(put!.kv.lease, lease.id);
          await takeEvents(watch, 1);
          const [del] = await takeEvents(watch, 1, 15_000 + minTtl * 1000);
          assert.equal(del!.type, "delete");
          assert.equal(del!.kv.key, p + "event-1");
        } finally {
          watch.close();
        }
        assert.equal((await store.get(p + "event-1")).kv, undefined);
        assert.ok((await store.get(p + "stays")).kv);

        const l2 = await store.grantLease(3600);
        await store.create(p + "event-2", enc("e"), { lease: l2.id });
        await store.keepAliveLease(l2.id);
        await store.revokeLease(l2.id);
        assert.equal((await store.get(p + "event-2")).kv, undefined);
        await rejects(store.create(p + "event-3", enc("e"), { lease: l2.id }), "LeaseNotFound");
        await rejects(store.keepAliveLease(l2.id), "LeaseNotFound");
      }),
    );

    test(
      "values up to 1.5 MiB are stored; larger ones are refused with a clear error and nothing stored",
      withStore(async (store, p) => {
        const big = new Uint8Array(MAX_VALUE_BYTES);
        for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
        const r = await store.create(p + "big", big);
        const back = await store.get(p + "big");
        assert.equal(back.kv!.value.length, MAX_VALUE_BYTES);
        assert.ok(Buffer.from(back.kv!.value).equals(Buffer.from(big)));

        const tooBig = new Uint8Array(MAX_VALUE_BYTES + 1);
        const err = await rejects(store.create(p + "too-big", tooBig), "ValueTooLarge");
        assert.match(err.message, /1572864/);
        assert.match(err.message, /too-big/);
        await rejects(store.update(p + "big", tooBig, r.revision), "ValueTooLarge");
        assert.equal((await store.get(p + "too-big")).kv, undefined);
        assert.equal((await store.get(p + "big")).kv!.modRevision, r.revision);
      }),
    );
  });
}
