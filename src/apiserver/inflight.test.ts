import { test } from "node:test";
import assert from "node:assert/strict";
import { InflightLimiter } from "./inflight.js";
import { StatusError } from "../api/status.js";

test("requests over the limit wait in line and get seats in order as they are given back", async () => {
  const l = new InflightLimiter(2);
  assert.equal(l.acquire(), undefined);
  assert.equal(l.acquire(), undefined);
  const order: number[] = [];
  const third = l.acquire()!.then(() => order.push(3));
  const fourth = l.acquire()!.then(() => order.push(4));
  assert.equal(l.waiting, 2);
  l.release();
  await third;
  assert.deepEqual(order, [3]);
  assert.equal(l.inFlight, 2);
  l.release();
  await fourth;
  assert.deepEqual(order, [3, 4]);
  l.release();
  l.release();
  assert.equal(l.inFlight, 0);
  assert.equal(l.waiting, 0);
});

test("a request that waits too long, or finds the line full, is refused with 429 and Retry-After", async () => {
  const l = new InflightLimiter(1, 20);
  assert.equal(l.acquire(), undefined);
  const waited = l.acquire()!;
  await assert.rejects(waited, (err: unknown) => {
    assert.ok(err instanceof StatusError);
    assert.equal(err.code, 429);
    assert.equal(err.reason, "TooManyRequests");
    assert.equal(err.message, "Too many requests, please try again later.");
    assert.equal(err.details?.retryAfterSeconds, 1);
    return true;
  });
  assert.equal(l.waiting, 0);
  // Four waiting per seat at most.
  const line = [1, 2, 3, 4].map(() => l.acquire()!);
  await assert.rejects(l.acquire()!, /Too many requests/);
  for (let i = 0; i < 4; i++) l.release();
  await Promise.all(line);
  l.release();
  assert.equal(l.inFlight, 0);
});

test("no limit: every request gets a seat at once", () => {
  const l = new InflightLimiter(0);
  for (let i = 0; i < 1000; i++) assert.equal(l.acquire(), undefined);
});
