import { test } from "node:test";
import assert from "node:assert/strict";
import { CurrentState } from "./current.js";
import type { Row } from "./engine.js";

let rev = 1;
const row = (key: string, deleted = false): Row => ({
  rev: ++rev,
  key,
  createRev: rev,
  prevRev: 0,
  version: 1,
  lease: 0,
  deleted,
  value: new Uint8Array(0),
});
const keys = (s: CurrentState, start = "", end = "") => s.range(start, end, 0).map((r) => r.key);

test("ranges are in byte order across merges, deletes and re-creates", () => {
  const s = new CurrentState();
  for (const k of ["/b", "/a", "/d"]) s.set(row(k));
  assert.deepEqual(keys(s), ["/a", "/b", "/d"]);
  s.set(row("/c"));
  s.set(row("/a", true));
  assert.deepEqual(keys(s), ["/b", "/c", "/d"]);
  // Deleted and created again before and after a merge: listed once.
  s.set(row("/b", true));
  s.set(row("/b"));
  s.set(row("/e"));
  s.set(row("/e", true));
  s.set(row("/e"));
  assert.deepEqual(keys(s), ["/b", "/c", "/d", "/e"]);
  assert.deepEqual(keys(s, "/c", "/e"), ["/c", "/d"]);
  assert.deepEqual(
    s.range("", "", 2).map((r) => r.key),
    ["/b", "/c"],
  );
  assert.equal(s.count("/a", "/z"), 4);
  // Byte order: U+FF61 sorts before U+1F600 in UTF-8 (though not in UTF-16).
  s.set(row("/\u{1F600}"));
  s.set(row("/\uFF61"));
  assert.deepEqual(keys(s, "/\uFF00"), ["/\uFF61", "/\u{1F600}"]);
});

test("restore puts back the state before a rolled-back write", () => {
  const s = new CurrentState();
  const a = row("/a");
  s.set(a);
  assert.deepEqual(keys(s), ["/a"]);
  s.set(row("/a", true));
  s.restore("/a", a);
  s.set(row("/n"));
  s.restore("/n", undefined);
  assert.deepEqual(keys(s), ["/a"]);
  assert.equal(s.get("/a"), a);
  assert.equal(s.get("/n"), undefined);
});
