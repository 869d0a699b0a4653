import { test } from "node:test";
import assert from "node:assert/strict";
import { parseFieldSelector, parseLabelSelector, SelectorError } from "./selectors.js";

test("label selectors: equality, set, existence and numeric requirements", () => {
  const labels = { app: "web", tier: "front", version: "3" };
  const m = (s: string) => parseLabelSelector(s).matches(labels);
  assert.equal(m("app=web"), true);
  assert.equal(m("app==web,tier=front"), true);
  assert.equal(m("app!=web"), false);
  assert.equal(m("app in (web, api)"), true);
  assert.equal(m("app notin (web)"), false);
  assert.equal(m("tier"), true);
  assert.equal(m("!tier"), false);
  assert.equal(m("!missing"), true);
  assert.equal(m("missing!=x"), true, "!= matches objects without the label");
  assert.equal(m("version>2,version<4"), true);
  assert.equal(m(""), true);
  assert.equal(parseLabelSelector("a=b").requiresExactMatch("a"), "b");
  assert.throws(() => parseLabelSelector("app in web"), SelectorError);
  assert.throws(() => parseLabelSelector("app=x y"), SelectorError);
  assert.throws(() => parseLabelSelector("a=in valid value!"), SelectorError);
});

test("field selectors: =, == and != with absent fields as empty", () => {
  const fields = { "metadata.name": "web", "spec.nodeName": "" };
  const m = (s: string) => parseFieldSelector(s).matches(fields);
  assert.equal(m("metadata.name=web"), true);
  assert.equal(m("metadata.name==web,spec.nodeName="), true);
  assert.equal(m("spec.nodeName!="), false);
  assert.equal(m("status.phase!=Running"), true);
  assert.throws(() => parseFieldSelector("metadata.name"), SelectorError);
});
