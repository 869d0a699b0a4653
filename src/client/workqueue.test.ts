import assert from "node:assert/strict";
import { test } from "node:test";
import { FakeClock } from "./clock.js";
import {
  BucketRateLimiter,
  defaultControllerRateLimiter,
  ItemExponentialFailureRateLimiter,
  ItemFastSlowRateLimiter,
  MaxOfRateLimiter,
} from "./ratelimit.js";
import { WorkQueue } from "./workqueue.js";

/** Lets pending promise callbacks run. */
const tick = () => new Promise((r) => setImmediate(r));

test("repeated adds collapse into one item", async () => {
  const q = new WorkQueue<string>();
  q.add("a");
  q.add("b");
  q.add("a");
  assert.equal(q.len(), 2);
  assert.deepEqual(await q.get(), { item: "a", shutdown: false });
  assert.deepEqual(await q.get(), { item: "b", shutdown: false });
  assert.equal(q.len(), 0);
});

test("an item is never handed to two workers at once; an add while processing re-queues on done", async () => {
  const q = new WorkQueue<string>();
  q.add("a");
  const first = await q.get();
  assert.equal(first.item, "a");
  q.add("a"); // changed while processing
  assert.equal(q.len(), 0, "not queued while processing");
  let second: string | undefined;
  void q.get().then((r) => (second = r.item));
  await tick();
  assert.equal(second, undefined, "a second worker does not get the item in flight");
  q.add("a"); // collapses with the pending re-add
  q.done("a");
  await tick();
  assert.equal(second, "a");
  q.done("a");
  assert.equal(q.len(), 0);
});

test("done without a new add does not re-queue", async () => {
  const q = new WorkQueue<string>();
  q.add("a");
  await q.get();
  q.done("a");
  assert.equal(q.len(), 0);
  q.add("a");
  assert.equal(q.len(), 1);
});

test("waiting workers are served in order, items FIFO", async () => {
  const q = new WorkQueue<string>();
  const got: string[] = [];
  const w1 = q.get().then((r) => got.push(`w1:${r.item}`));
  const w2 = q.get().then((r) => got.push(`w2:${r.item}`));
  q.add("x");
  q.add("y");
  await Promise.all([w1, w2]);
  assert.deepEqual(got, ["w1:x", "w2:y"]);
});

test("shutDown: adds are ignored, queued items still handed out, then shutdown", async () => {
  const q = new WorkQueue<string>();
  q.add("a");
  const waiting = new WorkQueue<string>();
  const blocked = waiting.get();
  waiting.shutDown();
  assert.deepEqual(await blocked, { item: undefined, shutdown: true });

  q.shutDown();
  assert.equal(q.shuttingDown(), true);
  q.add("b");
  assert.deepEqual(await q.get(), { item: "a", shutdown: false });
  assert.deepEqual(await q.get(), { item: undefined, shutdown: true });
});

test("shutDownWithDrain waits for items in flight to be done", async () => {
  const q = new WorkQueue<string>();
  q.add("a");
  q.add("b");
  await q.get();
  await q.get();
  let drained = false;
  const drain = q.shutDownWithDrain().then(() => (drained = true));
  await tick();
  assert.equal(drained, false);
  q.done("a");
  await tick();
  assert.equal(drained, false);
  q.done("b");
  await drain;
  assert.equal(drained, true);
  // A plain shutDown ends a drain still waiting.
  const q2 = new WorkQueue<string>();
  q2.add("c");
  await q2.get();
  const d2 = q2.shutDownWithDrain();
  q2.shutDown();
  await d2;
});

test("addAfter adds when the delay has passed on the queue's clock; the earliest delay wins", async () => {
  const clock = new FakeClock(1000);
  const q = new WorkQueue<string>({ clock });
  q.addAfter("a", 50);
  q.addAfter("b", 20);
  q.addAfter("a", 100); // later than the pending 50: ignored
  q.addAfter("c", 0); // at once
  assert.equal(q.len(), 1);
  clock.step(19);
  assert.equal(q.len(), 1);
  clock.step(1);
  assert.equal(q.len(), 2);
  clock.step(29);
  assert.equal(q.len(), 2);
  clock.step(1);
  assert.equal(q.len(), 3);
  const order = [(await q.get()).item, (await q.get()).item, (await q.get()).item];
  assert.deepEqual(order, ["c", "b", "a"]);
  // An earlier delay replaces a later one.
  q.addAfter("d", 100);
  q.addAfter("d", 10);
  clock.step(10);
  assert.equal(q.len(), 1);
  clock.step(100);
  assert.equal(q.len(), 1, "the replaced delay does not add it twice");
  q.shutDown();
  q.addAfter("e", 1);
  assert.equal(clock.pendingTimers, 0);
});

test("addRateLimited backs off per item exponentially; forget resets", async () => {
  const clock = new FakeClock(0);
  const q = new WorkQueue<string>({
    clock,
    rateLimiter: new ItemExponentialFailureRateLimiter<string>(5, 1000),
  });
  q.addRateLimited("a");
  assert.equal(q.numRequeues("a"), 1);
  clock.step(4);
  assert.equal(q.len(), 0);
  clock.step(1);
  assert.equal(q.len(), 1);
  const { item } = await q.get();
  q.done(item!);
  q.addRateLimited("a"); // 10 ms
  clock.step(9);
  assert.equal(q.len(), 0);
  clock.step(1);
  assert.equal(q.len(), 1);
  q.forget("a");
  assert.equal(q.numRequeues("a"), 0);
});

test("item exponential limiter: 5ms doubling, capped", () => {
  const l = new ItemExponentialFailureRateLimiter<string>(5, 1000 * 1000);
  const delays = Array.from({ length: 5 }, () => l.when("x"));
  assert.deepEqual(delays, [5, 10, 20, 40, 80]);
  assert.equal(l.when("y"), 5, "per item");
  for (let i = 0; i < 40; i++) l.when("x");
  assert.equal(l.when("x"), 1000 * 1000);
  for (let i = 0; i < 2000; i++) l.when("x");
  assert.equal(l.when("x"), 1000 * 1000, "no overflow");
  assert.equal(l.numRequeues("y"), 1);
  l.forget("y");
  assert.equal(l.when("y"), 5);
});

test("bucket limiter: burst at once, then qps", () => {
  const clock = new FakeClock(0);
  const l = new BucketRateLimiter<string>(10, 100, clock);
  for (let i = 0; i < 100; i++) assert.equal(l.when(), 0);
  assert.equal(Math.round(l.when()), 100);
  assert.equal(Math.round(l.when()), 200);
  clock.step(1000);
  // 10 tokens refilled, 2 were owed: the next 8 are free.
  for (let i = 0; i < 8; i++) assert.equal(Math.round(l.when()), 0);
  assert.equal(Math.round(l.when()), 100);
});

test("default controller rate limiter is the max of per-item exponential and the 10 qps bucket", () => {
  const clock = new FakeClock(0);
  const l = defaultControllerRateLimiter<string>(clock);
  assert.equal(l.when("a"), 5);
  assert.equal(l.when("a"), 10);
  // Exhaust the bucket with other items: the overall limit takes over.
  for (let i = 0; i < 98; i++) l.when(`item-${i}`);
  assert.equal(Math.round(l.when("b")), 100);
  assert.equal(l.numRequeues("a"), 2);
  l.forget("a");
  assert.equal(l.numRequeues("a"), 0);
});

test("fast-slow and max-of limiters", () => {
  const fs = new ItemFastSlowRateLimiter<string>(5, 1000, 2);
  assert.deepEqual([fs.when("a"), fs.when("a"), fs.when("a")], [5, 5, 1000]);
  const max = new MaxOfRateLimiter<string>(
    new ItemFastSlowRateLimiter<string>(50, 60, 1),
    new ItemExponentialFailureRateLimiter<string>(10, 1000),
  );
  assert.deepEqual([max.when("a"), max.when("a"), max.when("a"), max.when("a")], [50, 60, 60, 80]);
  assert.equal(max.numRequeues("a"), 4);
});

test("many delayed items come out in due order", async () => {
  const clock = new FakeClock(0);
  const q = new WorkQueue<string>({ clock });
  const delays = Array.from({ length: 200 }, (_, i) => ((i * 7919) % 200) + 1);
  delays.forEach((d, i) => q.addAfter(`k${i}`, d));
  const out: string[] = [];
  for (let t = 1; t <= 200; t++) {
    clock.step(1);
    while (q.len() > 0) {
      const { item } = await q.get();
      out.push(item!);
      q.done(item!);
    }
  }
  const expected = delays.map((d, i) => ({ d, k: `k${i}` })).sort((a, b) => a.d - b.d);
  assert.deepEqual(
    out,
    expected.map((e) => e.k),
  );
});
