/**
 * resource.Quantity as upstream decodes, rounds, compares and prints it: "0.5" is served as
 * "500m", "1024Mi" as "1Gi", and a string already in canonical form is served as sent.
 */
import { badRequest } from "../../api/status.js";
import type { KObject } from "../registry/types.js";
import { isObj, type Obj } from "./util.js";

export type QuantityFormat = "DecimalSI" | "BinarySI" | "DecimalExponent";

/** The exact value n × 10^scale, its format, and the text it is printed as when that is canonical. */
export interface Quantity {
  n: bigint;
  scale: number;
  format: QuantityFormat;
  cached?: string;
}

export const QUANTITY_FORMAT_ERROR =
  "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
export const QUANTITY_SUFFIX_ERROR = "unable to parse quantity's suffix";

export class QuantityError extends Error {}

const DECIMAL_SUFFIXES: Record<string, number> = {
  n: -9,
  u: -6,
  m: -3,
  "": 0,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};
const BINARY_SUFFIXES: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const BINARY_NAMES = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
const INT64_MAX = (1n << 63n) - 1n;

const POW10 = Array.from({ length: 64 }, (_, e) => 10n ** BigInt(e));
const pow10 = (e: number): bigint => POW10[e] ?? 10n ** BigInt(e);
const abs = (x: bigint): bigint => (x < 0n ? -x : x);

/** Divides rounding away from zero (upstream's RoundUp). */
function divUp(n: bigint, d: bigint): bigint {
  const q = n / d;
  return n % d === 0n ? q : n < 0n ? q - 1n : q + 1n;
}

/**
 * Upstream's ParseQuantity. Throws QuantityError with upstream's message. Objects repeat the
 * same few quantities ("100m", "128Mi"): the last ones parsed are remembered, and each caller
 * gets a copy of its own.
 */
export function parseQuantity(input: string): Quantity {
  const known = parsedQuantities.get(input);
  if (known) return { ...known };
  const q = parseQuantityText(input);
  if (parsedQuantities.size >= PARSED_QUANTITIES_SIZE) parsedQuantities.clear();
  parsedQuantities.set(input, q);
  return { ...q };
}

const PARSED_QUANTITIES_SIZE = 1024;
const parsedQuantities = new Map<string, Quantity>();

function parseQuantityText(input: string): Quantity {
  const s = input;
  if (s.length === 0) throw new QuantityError(QUANTITY_FORMAT_ERROR);
  if (s === "0") return { n: 0n, scale: 0, format: "DecimalSI", cached: s };
  let pos = 0;
  let positive = true;
  if (s[0] === "-") {
    positive = false;
    pos++;
  } else if (s[0] === "+") pos++;
  while (pos < s.length && s[pos] === "0") pos++;
  let numStart = pos;
  while (pos < s.length && s[pos]! >= "0" && s[pos]! <= "9") pos++;
  let numPart = s.slice(numStart, pos);
  let denom = "";
  if (pos < s.length && s[pos] === ".") {
    pos++;
    numStart = pos;
    while (pos < s.length && s[pos]! >= "0" && s[pos]! <= "9") pos++;
    denom = s.slice(numStart, pos);
  }
  if (numPart === "") numPart = "0";
  const suffixStart = pos;
  while (pos < s.length && "eEinumkKMGTP".includes(s[pos]!)) pos++;
  if (pos < s.length && (s[pos] === "-" || s[pos] === "+")) pos++;
  while (pos < s.length && s[pos]! >= "0" && s[pos]! <= "9") pos++;
  if (pos < s.length) throw new QuantityError(QUANTITY_FORMAT_ERROR);
  const suffix = s.slice(suffixStart);

  let format: QuantityFormat;
  let exponent: number;
  let binary = false;
  if (suffix in DECIMAL_SUFFIXES) {
    format = "DecimalSI";
    exponent = DECIMAL_SUFFIXES[suffix]!;
  } else if (suffix in BINARY_SUFFIXES) {
    format = "BinarySI";
    exponent = BINARY_SUFFIXES[suffix]!;
    binary = true;
  } else if (suffix.length > 1 && (suffix[0] === "e" || suffix[0] === "E")) {
    if (!/^[-+]?[0-9]+$/.test(suffix.slice(1))) throw new QuantityError(QUANTITY_SUFFIX_ERROR);
    format = "DecimalExponent";
    exponent = Number(suffix.slice(1));
  } else {
    throw new QuantityError(QUANTITY_SUFFIX_ERROR);
  }

  const digits = BigInt(numPart + denom);
  let n: bigint;
  let scale: number;
  if (binary) {
    n = digits << BigInt(exponent);
    scale = -denom.length;
  } else {
    n = digits;
    scale = exponent - denom.length;
  }
  if (!positive) n = -n;
  if (scale < -9) {
    n = divUp(n, pow10(-9 - scale));
    scale = -9;
  }
  const q: Quantity = { n, scale, format };

  // Upstream keeps the text as sent when it parsed on the fast path and is already canonical.
  const shifted = (numPart + denom).replace(/^0+(?=.)/, "");
  if (!binary) {
    const precisionOK = 18 - (numPart.length + denom.length) >= 0;
    const fast = precisionOK && exponent - denom.length >= -9;
    if (
      fast &&
      (exponent - denom.length) % 3 === 0 &&
      !(numPart + denom).endsWith("000") &&
      (numPart + denom)[0] !== "0"
    )
      q.cached = s;
  } else if (denom.length === 0) {
    const precision = 15 - numPart.length - Math.trunc((exponent * 3) / 10) - 1;
    const value = BigInt(shifted);
    if (precision >= 0 && abs(n) <= INT64_MAX && exponent % 10 === 0 && (value & 7n) !== 0n)
      q.cached = s;
  }
  return q;
}

/** Upstream's Quantity.UnmarshalJSON input: a JSON string (trimmed), a number, or null (zero). */
export function quantityFromJSON(v: unknown): Quantity {
  if (v === null || v === undefined) return { n: 0n, scale: 0, format: "DecimalSI" };
  if (typeof v === "number") return parseQuantity(String(v));
  if (typeof v === "string") return parseQuantity(v.trim());
  throw new QuantityError(QUANTITY_FORMAT_ERROR);
}

/** RoundUp(-3) as resource lists are defaulted: finer values are rounded away from zero. */
export function roundUpMilli(q: Quantity): Quantity {
  if (q.scale >= -3) return q;
  return { n: divUp(q.n, pow10(-3 - q.scale)), scale: -3, format: q.format };
}

function decimalCanonical(n: bigint, scale: number): [bigint, number] {
  let m = n;
  let e = scale;
  while (m !== 0n && m % 10n === 0n) {
    m /= 10n;
    e++;
  }
  const r = e % 3;
  if (r === 1 || r === -2) {
    m *= 10n;
    e -= 1;
  } else if (r === 2 || r === -1) {
    m *= 100n;
    e -= 2;
  }
  return [m, e];
}

/** The canonical text of a quantity (upstream's CanonicalizeBytes). */
export function canonicalQuantity(q: Quantity): string {
  if (q.n === 0n) return "0";
  let format = q.format;
  if (format === "BinarySI") {
    const inSmallRange =
      q.scale >= 0 ? abs(q.n) * pow10(q.scale) < 1024n : abs(q.n) < 1024n * pow10(-q.scale);
    const integral = q.scale >= 0 || q.n % pow10(-q.scale) === 0n;
    if (inSmallRange || !integral) format = "DecimalSI";
    else {
      let value = q.scale >= 0 ? q.n * pow10(q.scale) : q.n / pow10(-q.scale);
      let k = 0;
      while (value % 1024n === 0n && k < BINARY_NAMES.length - 1) {
        value /= 1024n;
        k++;
      }
      return `${value}${BINARY_NAMES[k]}`;
    }
  }
  const [m, e] = decimalCanonical(q.n, q.scale);
  if (format === "DecimalExponent") return e === 0 ? `${m}` : `${m}e${e}`;
  const suffix = Object.entries(DECIMAL_SUFFIXES).find(([, x]) => x === e)?.[0];
  return suffix === undefined ? `${m}e${e}` : `${m}${suffix}`;
}

/** The text a quantity is served as (the canonical form, or the text sent when already canonical). */
export function quantityString(q: Quantity): string {
  return q.cached ?? canonicalQuantity(q);
}

export function cmpQuantity(a: Quantity, b: Quantity): number {
  const s = Math.min(a.scale, b.scale);
  const x = a.n * pow10(a.scale - s);
  const y = b.n * pow10(b.scale - s);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function addQuantity(a: Quantity, b: Quantity): Quantity {
  const s = Math.min(a.scale, b.scale);
  return { n: a.n * pow10(a.scale - s) + b.n * pow10(b.scale - s), scale: s, format: a.format };
}

export function isIntegral(q: Quantity): boolean {
  return q.scale >= 0 || q.n % pow10(-q.scale) === 0n;
}

export const ZERO: Quantity = { n: 0n, scale: 0, format: "DecimalSI" };

/** The 400 upstream answers for a body it cannot decode, here a malformed quantity. */
function decodeError(obj: KObject, err: QuantityError): Error {
  const version = (obj.apiVersion ?? "").split("/").pop() ?? "";
  return badRequest(
    `${obj.kind} in version ${JSON.stringify(version)} cannot be handled as a ${obj.kind}: ${err.message}`,
  );
}

/** Parses a quantity field while decoding `obj`; a malformed one is upstream's 400. */
export function decodeQuantity(obj: KObject, v: unknown): Quantity {
  try {
    return quantityFromJSON(v);
  } catch (err) {
    if (err instanceof QuantityError) throw decodeError(obj, err);
    throw err;
  }
}

/** Rewrites one quantity field as upstream serves it (optionally rounded up to milli). */
export function normalizeQuantity(obj: KObject, holder: Obj, field: string, round = false): void {
  if (!(field in holder) || holder[field] === undefined) return;
  let q = decodeQuantity(obj, holder[field]);
  if (round) q = roundUpMilli(q);
  holder[field] = quantityString(q);
}

/** Rewrites every quantity of a ResourceList (rounded up to milli, as upstream defaults them). */
export function normalizeResourceList(obj: KObject, list: unknown): void {
  if (!isObj(list)) return;
  for (const k of Object.keys(list)) normalizeQuantity(obj, list, k, true);
}

/** The quantity in a list, when present and well-formed. */
export function quantityOf(list: unknown, name: string): Quantity | undefined {
  if (!isObj(list) || !(name in list)) return undefined;
  try {
    return quantityFromJSON(list[name]);
  } catch {
    return undefined;
  }
}
