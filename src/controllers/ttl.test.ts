import assert from "node:assert/strict";
import { test } from "node:test";
import { nodeHasTTL, TTL_ANNOTATION, TTLState } from "./ttl.js";

test("the TTL steps up past a boundary's end and down below its start, not in between", () => {
  const s = new TTLState();
  for (let i = 0; i < 100; i++) assert.equal(s.add(), false);
  assert.equal(s.desiredTTL, 0);
  assert.equal(s.add(), true);
  assert.equal(s.desiredTTL, 15);
  // Shrinking to 90 keeps the step (hysteresis); below 90 steps down.
  for (let i = 0; i < 11; i++) assert.equal(s.delete(), false);
  assert.equal(s.desiredTTL, 15);
  assert.equal(s.delete(), true);
  assert.equal(s.desiredTTL, 0);
  for (let i = 0; i < 420; i++) s.add();
  assert.equal(s.desiredTTL, 30);
});

test("a node's annotation is read as a number", () => {
  const node = (v?: string) => ({
    metadata: { name: "n", ...(v === undefined ? {} : { annotations: { [TTL_ANNOTATION]: v } }) },
  });
  assert.ok(nodeHasTTL(node("0"), 0));
  assert.ok(!nodeHasTTL(node(), 0));
  assert.ok(!nodeHasTTL(node("x"), 0));
  assert.ok(nodeHasTTL(node("15"), 15));
});
