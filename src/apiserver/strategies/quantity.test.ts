import { test } from "node:test";
import assert from "node:assert/strict";
import {
  canonicalQuantity,
  cmpQuantity,
  parseQuantity,
  QUANTITY_FORMAT_ERROR,
  QUANTITY_SUFFIX_ERROR,
  quantityString,
  roundUpMilli,
} from "./quantity.js";

const served = (s: string) => quantityString(roundUpMilli(parseQuantity(s)));

test("quantities are served as upstream serves resource lists", () => {
  const cases: Array<[string, string]> = [
    ["0.5", "500m"],
    ["1.5", "1500m"],
    ["0.1", "100m"],
    ["1000m", "1"],
    ["500m", "500m"],
    ["100", "100"],
    ["1000", "1k"],
    ["1.0", "1"],
    ["1024Mi", "1Gi"],
    ["1536Mi", "1536Mi"],
    ["1.5Gi", "1536Mi"],
    ["0.5Ki", "512"],
    ["8Gi", "8Gi"],
    ["128974848", "128974848"],
    ["129e6", "129e6"],
    ["1e3", "1e3"],
    ["129M", "129M"],
    ["0.0001", "1m"],
    ["0", "0"],
    ["000", "0"],
    ["-1", "-1"],
    ["2k", "2k"],
  ];
  for (const [input, want] of cases) assert.equal(served(input), want, input);
});

test("canonical forms ignore the text sent", () => {
  assert.equal(canonicalQuantity(parseQuantity("1.500")), "1500m");
  assert.equal(quantityString(parseQuantity("1.500")), "1.500");
});

test("malformed quantities get upstream's errors", () => {
  for (const bad of ["", "1 core", "1Mb", "abc", "1.2.3"])
    assert.throws(() => parseQuantity(bad), { message: QUANTITY_FORMAT_ERROR }, bad);
  for (const bad of ["1K", "1Ki2", "1e"])
    assert.throws(() => parseQuantity(bad), { message: QUANTITY_SUFFIX_ERROR }, bad);
});

test("quantities compare by value", () => {
  assert.equal(cmpQuantity(parseQuantity("1Gi"), parseQuantity("1024Mi")), 0);
  assert.equal(cmpQuantity(parseQuantity("500m"), parseQuantity("0.6")), -1);
  assert.equal(cmpQuantity(parseQuantity("1k"), parseQuantity("999")), 1);
});
