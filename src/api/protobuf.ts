/**
 * Kubernetes protobuf encoding of the built-in API types (`application/vnd.kubernetes.protobuf`),
 * driven by the schema in ./schema.
 *
 * A body is the 4 bytes `k8s\0` followed by a runtime.Unknown message: typeMeta (1: apiVersion 1,
 * kind 2), raw (2: the object's own message), contentEncoding (3), contentType (4).
 *
 * Decoding yields the JSON object the same Go client would have sent: the JSON a Go program gets
 * by unmarshalling the protobuf into the API struct and marshalling that with encoding/json.
 * Hence: absent non-pointer scalars appear as their zero value unless `omitempty`, zero
 * `omitempty` scalars are left out, set pointers appear even when zero, unset pointers, lists,
 * maps and byte strings are left out when `omitempty` and `null` otherwise, non-pointer structs
 * always appear (`creationTimestamp: null` for a zero Time). Time is RFC 3339 in UTC with whole
 * seconds, MicroTime with 6 fractional digits, Duration a Go duration string, Quantity its string
 * as sent (not re-canonicalised), IntOrString a number or a string, bytes base64, FieldsV1 and
 * RawExtension the JSON they hold (a RawExtension holding a `k8s\0` protobuf object is decoded to
 * that object's JSON). int64 values become JS numbers; beyond ±2^53 they are rounded, as
 * JSON.parse rounds the same value in a JSON body. Unknown field numbers are skipped. Map keys keep
 * wire order (Go writes them sorted).
 *
 * Encoding is the reverse, byte for byte what Go writes: fields in number order, non-pointer
 * scalars and structs always, pointers, byte strings, lists and maps only when set, map entries
 * sorted by key; repeated scalars unpacked. Quantity strings are written as given.
 */
import { Buffer } from "node:buffer";
import {
  typeNameForApiVersionKind,
  typeOf,
  type SpecialKind,
  type ValueType,
} from "./schema/index.js";

/**
 * Malformed or undecodable protobuf input (or a value that cannot be encoded). `offset` is the
 * byte offset in the decoded body where the problem was found; -1 for encoding errors.
 */
export class ProtobufError extends Error {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(offset >= 0 ? `protobuf: ${message} (at byte ${offset})` : `protobuf: ${message}`);
    this.name = "ProtobufError";
    this.offset = offset;
  }
}

/** A well-formed envelope whose apiVersion/kind has no schema (upstream: kind not registered). */
export class ProtobufUnknownKindError extends ProtobufError {
  readonly apiVersion: string;
  readonly kind: string;
  constructor(apiVersion: string, kind: string) {
    super(
      `no kind ${JSON.stringify(kind)} is registered for version ${JSON.stringify(apiVersion)}`,
      4,
    );
    this.name = "ProtobufUnknownKindError";
    this.apiVersion = apiVersion;
    this.kind = kind;
  }
}

/** The media type of Kubernetes protobuf bodies. */
export const PROTOBUF_MEDIA_TYPE = "application/vnd.kubernetes.protobuf";

const MAGIC = [0x6b, 0x38, 0x73, 0x00] as const;
/** Nesting limit for messages (and RawExtensions holding objects), against hostile input. */
const MAX_DEPTH = 200;

/** Whether a body starts with the `k8s\0` protobuf envelope magic. */
export function isProtobufEnvelope(body: Uint8Array): boolean {
  return (
    body.length >= 4 &&
    body[0] === MAGIC[0] &&
    body[1] === MAGIC[1] &&
    body[2] === MAGIC[2] &&
    body[3] === MAGIC[3]
  );
}

// ------------------------------------------------------------------------------------------------
// Compiled per-type tables

const STRING = 0;
const INT32 = 1;
const INT64 = 2;
const BOOL = 3;
const BYTES = 4;
const MESSAGE = 5;

const SINGLE = 0;
const REPEATED = 1;
const MAP = 2;

interface Field {
  readonly json: string;
  readonly number: number;
  readonly card: number;
  /** Element kind (the value kind for maps). */
  readonly elem: number;
  /** Wire type of one element: 0 varint, 2 length-delimited. */
  readonly wire: number;
  readonly elemType: string | undefined;
  codec: Codec | undefined;
  readonly pointer: boolean;
  readonly omitempty: boolean;
  readonly inline: boolean;
  readonly slot: number;
}

interface Codec {
  readonly name: string;
  readonly special: SpecialKind | undefined;
  /** Declaration order. */
  readonly fields: readonly Field[];
  readonly byNumber: readonly (Field | undefined)[];
  /** On-the-wire fields in number order. */
  readonly wireOrder: readonly Field[];
}

const codecs = new Map<string, Codec>();

function elemOf(t: ValueType): { elem: number; type: string | undefined } {
  switch (t.kind) {
    case "string":
      return { elem: STRING, type: undefined };
    case "int32":
      return { elem: INT32, type: undefined };
    case "int64":
      return { elem: INT64, type: undefined };
    case "bool":
      return { elem: BOOL, type: undefined };
    case "bytes":
      return { elem: BYTES, type: undefined };
    case "message":
      return { elem: MESSAGE, type: t.type };
    default:
      throw new Error(`protobuf: nested container types are not supported`);
  }
}

function codecOf(name: string): Codec {
  let c = codecs.get(name);
  if (c) return c;
  const def = typeOf(name);
  if (!def) throw new ProtobufError(`no schema for type ${name}`, -1);
  const fields: Field[] = def.fields.map((f, slot) => {
    const card = f.type.kind === "array" ? REPEATED : f.type.kind === "map" ? MAP : SINGLE;
    const inner =
      f.type.kind === "array" ? f.type.items : f.type.kind === "map" ? f.type.values : f.type;
    const { elem, type } = elemOf(inner);
    return {
      json: f.json,
      number: f.number,
      card,
      elem,
      wire: elem === INT32 || elem === INT64 || elem === BOOL ? 0 : 2,
      elemType: type,
      codec: undefined,
      pointer: f.pointer,
      omitempty: f.omitempty,
      inline: f.inline,
      slot,
    };
  });
  const max = fields.reduce((m, f) => Math.max(m, f.number), 0);
  const byNumber = Array.from({ length: max + 1 }, (): Field | undefined => undefined);
  for (const f of fields) if (f.number > 0) byNumber[f.number] = f;
  c = {
    name,
    special: def.special,
    fields,
    byNumber,
    wireOrder: fields.filter((f) => f.number > 0).sort((a, b) => a.number - b.number),
  };
  codecs.set(name, c);
  return c;
}

function fieldCodec(f: Field): Codec {
  return (f.codec ??= codecOf(f.elemType as string));
}

// ------------------------------------------------------------------------------------------------
// Decoding

class Reader {
  readonly buf: Uint8Array;
  readonly text: Buffer;
  pos = 0;
  depth = 0;
  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.text = Buffer.isBuffer(buf)
      ? buf
      : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  }
}

/** Low and high 32 bits of the last varint read by readVarint. */
let varLo = 0;
let varHi = 0;

/** Reads a varint of up to 10 bytes into varLo/varHi; returns the low 32 bits as unsigned. */
function readVarint(r: Reader, end: number): number {
  const buf = r.buf;
  let pos = r.pos;
  if (pos >= end) throw new ProtobufError("truncated varint", pos);
  let b = buf[pos++] as number;
  if (b < 0x80) {
    r.pos = pos;
    varLo = b;
    varHi = 0;
    return b;
  }
  let lo = b & 0x7f;
  let hi = 0;
  for (let i = 1; i < 10; i++) {
    if (pos >= end) throw new ProtobufError("truncated varint", pos);
    b = buf[pos++] as number;
    if (i < 4) lo |= (b & 0x7f) << (7 * i);
    else if (i === 4) {
      lo |= (b & 0x0f) << 28;
      hi = (b & 0x7f) >>> 4;
    } else hi |= (b & 0x7f) << (7 * i - 32);
    if (b < 0x80) {
      r.pos = pos;
      varLo = lo >>> 0;
      varHi = hi >>> 0;
      return varLo;
    }
  }
  throw new ProtobufError("varint longer than 10 bytes", r.pos);
}

function readInt64(r: Reader, end: number): number {
  readVarint(r, end);
  if (varHi & 0x80000000) return -((~varHi >>> 0) * 4294967296 + (~varLo >>> 0) + 1);
  return varHi * 4294967296 + varLo;
}

function readInt64Big(r: Reader, end: number): bigint {
  readVarint(r, end);
  return BigInt.asIntN(64, (BigInt(varHi) << 32n) | BigInt(varLo));
}

function readLength(r: Reader, end: number): number {
  const at = r.pos;
  readVarint(r, end);
  if (varHi !== 0 || varLo > end - r.pos) {
    throw new ProtobufError(`length ${varHi ? "overflow" : varLo} past end of data`, at);
  }
  return varLo;
}

function readString(r: Reader, end: number): string {
  const len = readLength(r, end);
  const start = r.pos;
  const stop = start + len;
  r.pos = stop;
  if (len < 24) {
    const buf = r.buf;
    let s = "";
    for (let i = start; i < stop; i++) {
      const c = buf[i] as number;
      if (c >= 0x80) return r.text.toString("utf8", start, stop);
      s += String.fromCharCode(c);
    }
    return s;
  }
  return r.text.toString("utf8", start, stop);
}

function readBytesBase64(r: Reader, end: number): string {
  const len = readLength(r, end);
  const start = r.pos;
  r.pos = start + len;
  return r.text.toString("base64", start, start + len);
}

const WIRE_NAMES = ["varint", "fixed64", "length-delimited", "start-group", "end-group", "fixed32"];

function skipField(r: Reader, end: number, num: number, wire: number, tagAt: number): void {
  switch (wire) {
    case 0:
      readVarint(r, end);
      return;
    case 1:
      if (end - r.pos < 8) throw new ProtobufError("truncated fixed64", r.pos);
      r.pos += 8;
      return;
    case 2: {
      const len = readLength(r, end);
      r.pos += len;
      return;
    }
    case 5:
      if (end - r.pos < 4) throw new ProtobufError("truncated fixed32", r.pos);
      r.pos += 4;
      return;
    case 3: {
      for (;;) {
        if (r.pos >= end) throw new ProtobufError(`unterminated group ${num}`, tagAt);
        const at = r.pos;
        const tag = readVarint(r, end);
        const n = tag >>> 3;
        const w = tag & 7;
        if (w === 4) {
          if (n !== num) throw new ProtobufError(`mismatched end of group ${n}`, at);
          return;
        }
        if (n === 0) throw new ProtobufError("illegal field number 0", at);
        if (++r.depth > MAX_DEPTH) throw new ProtobufError("nesting too deep", at);
        skipField(r, end, n, w, at);
        r.depth--;
      }
    }
    case 4:
      throw new ProtobufError(`unexpected end of group ${num}`, tagAt);
    default:
      throw new ProtobufError(`illegal wire type ${wire}`, tagAt);
  }
}

function wrongWire(codec: Codec, f: Field, wire: number, at: number): ProtobufError {
  return new ProtobufError(
    `wrong wire type ${wire} (${WIRE_NAMES[wire] ?? "illegal"}) for field ${f.json || "(inline)"}` +
      ` (${f.number}) of ${codec.name}`,
    at,
  );
}

function readElem(r: Reader, end: number, f: Field): unknown {
  switch (f.elem) {
    case STRING:
      return readString(r, end);
    case INT32:
      return readVarint(r, end) | 0;
    case INT64:
      return readInt64(r, end);
    case BOOL:
      return readVarint(r, end) !== 0 || varHi !== 0;
    case BYTES:
      return readBytesBase64(r, end);
    default: {
      const at = r.pos;
      const len = readLength(r, end);
      const stop = r.pos + len;
      if (++r.depth > MAX_DEPTH) throw new ProtobufError("nesting too deep", at);
      const v = decodeMessage(r, stop, fieldCodec(f));
      r.depth--;
      r.pos = stop;
      return v;
    }
  }
}

function setKey(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(obj, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else obj[key] = value;
}

function zeroElem(f: Field): unknown {
  switch (f.elem) {
    case STRING:
    case BYTES:
      return "";
    case INT32:
    case INT64:
      return 0;
    case BOOL:
      return false;
    default: {
      const c = fieldCodec(f);
      return c.special === "list" ? [] : zeroValue(c);
    }
  }
}

function readMapEntry(
  r: Reader,
  end: number,
  codec: Codec,
  f: Field,
  obj: Record<string, unknown>,
): void {
  const len = readLength(r, end);
  const stop = r.pos + len;
  let key = "";
  let value: unknown = undefined;
  while (r.pos < stop) {
    const at = r.pos;
    const tag = readVarint(r, stop);
    const n = tag >>> 3;
    const w = tag & 7;
    if (n === 1) {
      if (w !== 2) throw new ProtobufError(`wrong wire type ${w} for map key of ${f.json}`, at);
      key = readString(r, stop);
    } else if (n === 2) {
      if (w !== f.wire) throw wrongWire(codec, f, w, at);
      value = readElem(r, stop, f);
    } else {
      if (n === 0) throw new ProtobufError("illegal field number 0", at);
      skipField(r, stop, n, w, at);
    }
  }
  setKey(obj, key, value === undefined ? zeroElem(f) : value);
}

/** Decodes the message occupying [r.pos, end) and leaves r.pos at end. */
function decodeMessage(r: Reader, end: number, codec: Codec): unknown {
  if (codec.special !== undefined) return decodeSpecial(r, end, codec);
  return build(codec, decodeFields(r, end, codec), undefined);
}

/** Decodes the fields of a struct message into slots indexed like codec.fields. */
function decodeFields(r: Reader, end: number, codec: Codec): unknown[] {
  const slots: unknown[] = new Array(codec.fields.length);
  const byNumber = codec.byNumber;
  while (r.pos < end) {
    const at = r.pos;
    const tag = readVarint(r, end);
    const num = tag >>> 3;
    const wire = tag & 7;
    if (num === 0 || varHi !== 0)
      throw new ProtobufError(`illegal tag ${tag} (field number 0)`, at);
    const f = num < byNumber.length ? byNumber[num] : undefined;
    if (f === undefined) {
      skipField(r, end, num, wire, at);
      continue;
    }
    if (f.card === SINGLE) {
      if (wire !== f.wire) throw wrongWire(codec, f, wire, at);
      slots[f.slot] = readElem(r, end, f);
    } else if (f.card === REPEATED) {
      let list = slots[f.slot] as unknown[] | undefined;
      if (list === undefined) slots[f.slot] = list = [];
      if (wire === f.wire) list.push(readElem(r, end, f));
      else if (wire === 2 && f.wire === 0) {
        const len = readLength(r, end);
        const stop = r.pos + len;
        while (r.pos < stop) list.push(readElem(r, stop, f));
      } else throw wrongWire(codec, f, wire, at);
    } else {
      if (wire !== 2) throw wrongWire(codec, f, wire, at);
      let obj = slots[f.slot] as Record<string, unknown> | undefined;
      if (obj === undefined) slots[f.slot] = obj = {};
      readMapEntry(r, end, codec, f, obj);
    }
  }
  return slots;
}

/** The JSON form of a Go zero value of this type. */
function zeroValue(codec: Codec): unknown {
  switch (codec.special) {
    case undefined:
      return build(codec, [], undefined);
    case "duration":
      return "0s";
    case "quantity":
      return "0";
    case "intorstring":
      return 0;
    case "groupversion":
      return "";
    default:
      return null;
  }
}

function isZeroScalar(v: unknown): boolean {
  return v === "" || v === 0 || v === false;
}

/** Assembles the JSON object of a struct from decoded slots, in Go declaration order. */
function build(
  codec: Codec,
  slots: readonly unknown[],
  typeMeta: { apiVersion: string; kind: string } | undefined,
): Record<string, unknown> {
  const obj: Record<string, unknown> = {};
  for (const f of codec.fields) {
    const v = slots[f.slot];
    if (f.inline) {
      if (f.number === 0) {
        if (typeMeta) {
          if (typeMeta.kind) obj.kind = typeMeta.kind;
          if (typeMeta.apiVersion) obj.apiVersion = typeMeta.apiVersion;
        }
        continue;
      }
      const sub = v === undefined ? zeroValue(fieldCodec(f)) : v;
      if (sub !== null && typeof sub === "object") Object.assign(obj, sub);
      continue;
    }
    if (v === undefined) {
      if (f.pointer || f.card !== SINGLE || f.elem === BYTES) {
        if (!f.omitempty) obj[f.json] = null;
      } else if (f.elem === MESSAGE) {
        const c = fieldCodec(f);
        if (c.special === "list") {
          if (!f.omitempty) obj[f.json] = null;
        } else obj[f.json] = zeroValue(c);
      } else if (!f.omitempty) obj[f.json] = f.elem === STRING ? "" : f.elem === BOOL ? false : 0;
      continue;
    }
    if (f.card === SINGLE && !f.pointer) {
      if (f.elem === MESSAGE) {
        if (Array.isArray(v) && v.length === 0 && fieldCodec(f).special === "list") {
          if (!f.omitempty) obj[f.json] = null;
          continue;
        }
      } else if (f.omitempty && isZeroScalar(v)) continue;
    }
    obj[f.json] = v;
  }
  return obj;
}

const ZERO_TIME_SECONDS = -62135596800;

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

function formatTime(seconds: number, micros: number | undefined, at: number): string {
  const d = new Date(seconds * 1000);
  const y = d.getUTCFullYear();
  if (!Number.isFinite(y) || y < 0 || y > 9999) {
    throw new ProtobufError(`time ${seconds}s is outside years 0-9999`, at);
  }
  let s =
    `${pad(y, 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}` +
    `T${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}`;
  if (micros !== undefined) s += "." + pad(micros, 6);
  return s + "Z";
}

function decodeSpecial(r: Reader, end: number, codec: Codec): unknown {
  const start = r.pos;
  // Field values of the small fixed messages (by number); strings/bytes as [start, end) offsets.
  let i1 = 0;
  let i2 = 0;
  let big1 = 0n;
  let s1: string | undefined;
  let s2: string | undefined;
  let s3: string | undefined;
  let raw: [number, number] | undefined;
  const items: unknown[] = [];
  const special = codec.special;
  while (r.pos < end) {
    const at = r.pos;
    const tag = readVarint(r, end);
    const n = tag >>> 3;
    const w = tag & 7;
    if (n === 0 || varHi !== 0) throw new ProtobufError(`illegal tag ${tag} (field number 0)`, at);
    const f = codec.byNumber[n];
    if (f === undefined) {
      skipField(r, end, n, w, at);
      continue;
    }
    if (f.card === REPEATED && w === 2 && f.wire === 0) {
      const len = readLength(r, end);
      const stop = r.pos + len;
      while (r.pos < stop) items.push(readElem(r, stop, f));
      continue;
    }
    if (w !== f.wire) throw wrongWire(codec, f, w, at);
    if (f.card === REPEATED) {
      items.push(readElem(r, end, f));
    } else if (f.elem === BYTES) {
      const len = readLength(r, end);
      raw = [r.pos, r.pos + len];
      r.pos += len;
    } else if (f.elem === STRING) {
      const s = readString(r, end);
      if (n === 1) s1 = s;
      else if (n === 2) s2 = s;
      else s3 = s;
    } else if (f.elem === MESSAGE) {
      readElem(r, end, f);
    } else if (special === "duration" && n === 1) {
      big1 = readInt64Big(r, end);
    } else {
      const v = f.elem === INT64 ? readInt64(r, end) : readVarint(r, end) | 0;
      if (n === 1) i1 = v;
      else i2 = v;
    }
  }
  switch (special) {
    case "time":
      // Time keeps whole seconds only: nanos are ignored, as upstream's unmarshaller does.
      if (end === start || i1 === ZERO_TIME_SECONDS) return null;
      return formatTime(i1, undefined, start);
    case "microtime": {
      if (end === start || (i1 === ZERO_TIME_SECONDS && i2 === 0)) return null;
      let sec = i1;
      let micros = Math.trunc(i2 / 1000);
      if (micros < 0 || micros >= 1e6) {
        sec += Math.floor(micros / 1e6);
        micros = ((micros % 1e6) + 1e6) % 1e6;
      }
      return formatTime(sec, micros, start);
    }
    case "duration":
      return formatDuration(big1);
    case "quantity":
      if (s1 === undefined) return "0";
      if (!QUANTITY.test(s1))
        throw new ProtobufError(`invalid quantity ${JSON.stringify(s1)}`, start);
      return s1;
    case "intorstring":
      if (i1 === 0) return i2;
      if (i1 === 1) return s3 ?? "";
      throw new ProtobufError(`invalid IntOrString type ${i1}`, start);
    case "groupversion":
      return s1 && s2 ? `${s1}/${s2}` : s2 || s1 || "";
    case "list":
      return items;
    case "rawextension":
      return raw === undefined ? null : embedded(r, raw, codec);
    case "fieldsv1":
      return raw === undefined ? null : embeddedJSON(r, raw, "FieldsV1");
    case "unknown":
      // runtime.Unknown: typeMeta 1, raw 2, contentEncoding 3, contentType 4 (JSON assumed).
      return raw === undefined ? null : embeddedJSON(r, raw, "Unknown");
    default:
      throw new ProtobufError(`type ${codec.name} has no decoder`, start);
  }
}

function embeddedJSON(r: Reader, [s, e]: [number, number], what: string): unknown {
  if (s === e) return null;
  try {
    return JSON.parse(r.text.toString("utf8", s, e));
  } catch {
    throw new ProtobufError(`${what} does not hold JSON`, s);
  }
}

function embedded(r: Reader, range: [number, number], codec: Codec): unknown {
  const [s, e] = range;
  if (
    e - s >= 4 &&
    r.buf[s] === 0x6b &&
    r.buf[s + 1] === 0x38 &&
    r.buf[s + 2] === 0x73 &&
    r.buf[s + 3] === 0
  ) {
    if (++r.depth > MAX_DEPTH) throw new ProtobufError("nesting too deep", s);
    const saved = r.pos;
    const out = decodeEnvelope(r, s, e).object;
    r.pos = saved;
    r.depth--;
    return out;
  }
  return embeddedJSON(r, range, codec.name.slice(codec.name.lastIndexOf(".") + 1));
}

/**
 * Quantity syntax: signed decimal number, then a binary SI suffix (Ki..Ei), a decimal SI suffix
 * (n, u, m, k, M, G, T, P, E) or a decimal exponent (e/E and a signed integer), or nothing.
 */
const QUANTITY = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$/;

/** Go's time.Duration string form ("1h2m3.5s", "1.5ms", "0s"). */
export function formatDuration(ns: bigint): string {
  if (ns === 0n) return "0s";
  const neg = ns < 0n;
  let u = neg ? -ns : ns;
  let out: string;
  if (u < 1_000_000_000n) {
    if (u < 1000n) out = `${u}ns`;
    else if (u < 1_000_000n) out = fraction(u, 3) + "µs";
    else out = fraction(u, 6) + "ms";
  } else {
    const secs = fraction(u % 60_000_000_000n, 9);
    u /= 60_000_000_000n;
    out = secs + "s";
    if (u > 0n) {
      out = `${u % 60n}m` + out;
      u /= 60n;
      if (u > 0n) out = `${u}h` + out;
    }
  }
  return neg ? "-" + out : out;
}

/** v / 10^digits with the fraction's trailing zeros (and a bare point) removed. */
function fraction(v: bigint, digits: number): string {
  const scale = 10n ** BigInt(digits);
  const whole = v / scale;
  const frac = (v % scale).toString().padStart(digits, "0").replace(/0+$/, "");
  return frac ? `${whole}.${frac}` : `${whole}`;
}

function decodeEnvelope(
  r: Reader,
  start: number,
  end: number,
  defaults?: { apiVersion?: string; kind?: string },
): { apiVersion: string; kind: string; object: Record<string, unknown> } {
  if (
    end - start < 4 ||
    r.buf[start] !== 0x6b ||
    r.buf[start + 1] !== 0x38 ||
    r.buf[start + 2] !== 0x73 ||
    r.buf[start + 3] !== 0
  ) {
    throw new ProtobufError("missing k8s\\0 protobuf envelope prefix", start);
  }
  r.pos = start + 4;
  let apiVersion = "";
  let kind = "";
  let raw: [number, number] | undefined;
  let contentEncoding = "";
  let contentType = "";
  while (r.pos < end) {
    const at = r.pos;
    const tag = readVarint(r, end);
    const n = tag >>> 3;
    const w = tag & 7;
    if (n === 0 || varHi !== 0) throw new ProtobufError(`illegal tag ${tag} (field number 0)`, at);
    if (n >= 1 && n <= 4 && w !== 2) {
      throw new ProtobufError(`wrong wire type ${w} for field ${n} of runtime.Unknown`, at);
    }
    if (n === 1) {
      const len = readLength(r, end);
      const stop = r.pos + len;
      while (r.pos < stop) {
        const at2 = r.pos;
        const t2 = readVarint(r, stop);
        const n2 = t2 >>> 3;
        const w2 = t2 & 7;
        if (n2 === 0) throw new ProtobufError("illegal field number 0", at2);
        if ((n2 === 1 || n2 === 2) && w2 !== 2) {
          throw new ProtobufError(`wrong wire type ${w2} for field ${n2} of runtime.TypeMeta`, at2);
        }
        if (n2 === 1) apiVersion = readString(r, stop);
        else if (n2 === 2) kind = readString(r, stop);
        else skipField(r, stop, n2, w2, at2);
      }
    } else if (n === 2) {
      const len = readLength(r, end);
      raw = [r.pos, r.pos + len];
      r.pos += len;
    } else if (n === 3) contentEncoding = readString(r, end);
    else if (n === 4) contentType = readString(r, end);
    else skipField(r, end, n, w, at);
  }
  if (contentEncoding !== "") {
    throw new ProtobufError(
      `unsupported contentEncoding ${JSON.stringify(contentEncoding)}`,
      start,
    );
  }
  if (contentType !== "" && contentType !== PROTOBUF_MEDIA_TYPE) {
    throw new ProtobufError(`unsupported contentType ${JSON.stringify(contentType)}`, start);
  }
  if (apiVersion === "") apiVersion = defaults?.apiVersion ?? "";
  if (kind === "") kind = defaults?.kind ?? "";
  if (kind === "") throw new ProtobufError("envelope has no kind", start);
  const typeName = typeNameForApiVersionKind(apiVersion, kind);
  if (typeName === undefined) throw new ProtobufUnknownKindError(apiVersion, kind);
  const codec = codecOf(typeName);
  const [rs, re] = raw ?? [end, end];
  r.pos = rs;
  if (codec.special !== undefined) throw new ProtobufError(`${typeName} is not an object kind`, rs);
  const slots = decodeFields(r, re, codec);
  const object = build(codec, slots, { apiVersion, kind });
  return { apiVersion, kind, object };
}

/**
 * Decodes a protobuf request body (`k8s\0` + runtime.Unknown) into its apiVersion, kind and the
 * JSON-shaped object (with apiVersion and kind set). An envelope without apiVersion or kind takes
 * them from `defaults` (upstream defaults them from the type the endpoint expects). Throws
 * ProtobufError on malformed input, ProtobufUnknownKindError when the kind has no schema.
 */
export function decodeObject(
  body: Uint8Array,
  defaults?: { apiVersion?: string; kind?: string },
): {
  apiVersion: string;
  kind: string;
  object: Record<string, unknown>;
} {
  const r = new Reader(body);
  try {
    return decodeEnvelope(r, 0, body.length, defaults);
  } catch (e) {
    if (e instanceof RangeError) throw new ProtobufError(e.message, r.pos);
    throw e;
  }
}

/** Decodes one message of the named type (no envelope) into its JSON form. */
export function decodeMessageAs(typeName: string, bytes: Uint8Array): unknown {
  const r = new Reader(bytes);
  try {
    return decodeMessage(r, bytes.length, codecOf(typeName));
  } catch (e) {
    if (e instanceof RangeError) throw new ProtobufError(e.message, r.pos);
    throw e;
  }
}

// ------------------------------------------------------------------------------------------------
// Encoding

class Writer {
  buf: Buffer = Buffer.allocUnsafe(1024);
  pos = 0;
  /** Write RawExtension objects of known kinds as nested protobuf envelopes instead of JSON. */
  nestedProtobuf = false;
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
}

function encodeError(path: string, message: string): ProtobufError {
  return new ProtobufError(`cannot encode ${path || "object"}: ${message}`, -1);
}

/** Writes a non-negative integer below 2^53 as a varint. */
function writeVarint(w: Writer, n: number): void {
  w.ensure(10);
  const buf = w.buf;
  let pos = w.pos;
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  w.pos = pos;
}

/** Writes a signed integer as Go does: negative values as 10-byte two's complement varints. */
function writeSigned(w: Writer, n: number): void {
  if (n >= 0) {
    writeVarint(w, n);
    return;
  }
  let u = BigInt.asUintN(64, BigInt(n));
  w.ensure(10);
  while (u >= 0x80n) {
    w.buf[w.pos++] = Number(u & 0x7fn) | 0x80;
    u >>= 7n;
  }
  w.buf[w.pos++] = Number(u);
}

function writeTag(w: Writer, num: number, wire: number): void {
  writeVarint(w, num * 8 + wire);
}

/** Reserves one byte for a length prefix; endLen fills it in (moving the content if needed). */
function beginLen(w: Writer): number {
  w.ensure(1);
  return w.pos++;
}

function endLen(w: Writer, at: number): void {
  const len = w.pos - at - 1;
  if (len < 0x80) {
    w.buf[at] = len;
    return;
  }
  let size = 1;
  for (let v = len; v >= 0x80; v = Math.floor(v / 128)) size++;
  w.ensure(size - 1);
  w.buf.copyWithin(at + size, at + 1, w.pos);
  w.pos += size - 1;
  const end = w.pos;
  w.pos = at;
  writeVarint(w, len);
  w.pos = end;
}

function writeString(w: Writer, s: string): void {
  const n = s.length;
  if (n < 0x80) {
    w.ensure(n + 1);
    const buf = w.buf;
    const start = w.pos;
    buf[start] = n;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[start + 1 + i] = c;
    }
    if (i === n) {
      w.pos = start + 1 + n;
      return;
    }
  }
  const at = beginLen(w);
  w.ensure(n * 3);
  w.pos += w.buf.write(s, w.pos, "utf8");
  endLen(w, at);
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function writeBytes(w: Writer, v: unknown, path: string): void {
  if (typeof v !== "string" || !BASE64.test(v)) throw encodeError(path, "expected a base64 string");
  const bytes = Buffer.from(v, "base64");
  writeVarint(w, bytes.length);
  w.ensure(bytes.length);
  bytes.copy(w.buf, w.pos);
  w.pos += bytes.length;
}

function writeRaw(w: Writer, bytes: Uint8Array): void {
  writeVarint(w, bytes.length);
  w.ensure(bytes.length);
  w.buf.set(bytes, w.pos);
  w.pos += bytes.length;
}

function writeInteger(w: Writer, v: unknown, elem: number, path: string): void {
  if (typeof v !== "number" || !Number.isInteger(v)) throw encodeError(path, "expected an integer");
  if (elem === INT32 && (v < -2147483648 || v > 2147483647)) {
    throw encodeError(path, `${v} is out of int32 range`);
  }
  writeSigned(w, v);
}

/** Writes one element (no tag) of a field; null stands for the Go zero value. */
function writeElem(w: Writer, f: Field, v: unknown, path: string): void {
  switch (f.elem) {
    case STRING:
      if (v === null || v === undefined) v = "";
      if (typeof v !== "string") throw encodeError(path, "expected a string");
      writeString(w, v);
      return;
    case INT32:
    case INT64:
      writeInteger(w, v ?? 0, f.elem, path);
      return;
    case BOOL:
      if (v === null || v === undefined) v = false;
      if (typeof v !== "boolean") throw encodeError(path, "expected a boolean");
      writeVarint(w, v ? 1 : 0);
      return;
    case BYTES:
      writeBytes(w, v ?? "", path);
      return;
    default: {
      const at = beginLen(w);
      encodeMessage(w, fieldCodec(f), v, path);
      endLen(w, at);
    }
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Writes the fields of a message of this type (no tag or length) for a JSON value. */
function encodeMessage(w: Writer, codec: Codec, v: unknown, path: string): void {
  if (codec.special !== undefined) {
    encodeSpecial(w, codec, v, path);
    return;
  }
  if (v !== null && v !== undefined && !isRecord(v)) throw encodeError(path, "expected an object");
  const obj = v ?? undefined;
  for (const f of codec.wireOrder) {
    if (f.inline) {
      writeTag(w, f.number, 2);
      const at = beginLen(w);
      encodeMessage(w, fieldCodec(f), obj, path);
      endLen(w, at);
      continue;
    }
    const fv = obj === undefined ? undefined : obj[f.json];
    const p = path ? `${path}.${f.json}` : f.json;
    if (f.card === SINGLE) {
      if (fv === null || fv === undefined) {
        if (f.pointer || f.elem === BYTES) continue;
        if (f.elem === MESSAGE && fieldCodec(f).special === "list") continue;
      }
      writeTag(w, f.number, f.wire);
      writeElem(w, f, fv, p);
    } else if (f.card === REPEATED) {
      if (fv === null || fv === undefined) continue;
      if (!Array.isArray(fv)) throw encodeError(p, "expected an array");
      for (let i = 0; i < fv.length; i++) {
        writeTag(w, f.number, f.wire);
        writeElem(w, f, fv[i], `${p}[${i}]`);
      }
    } else {
      if (fv === null || fv === undefined) continue;
      if (!isRecord(fv)) throw encodeError(p, "expected an object (map)");
      const keys = Object.keys(fv).sort();
      for (const k of keys) {
        const ev = fv[k];
        writeTag(w, f.number, 2);
        const at = beginLen(w);
        writeTag(w, 1, 2);
        writeString(w, k);
        if (!(f.elem === BYTES && (ev === null || ev === undefined))) {
          writeTag(w, 2, f.wire);
          writeElem(w, f, ev, `${p}.${k}`);
        }
        endLen(w, at);
      }
    }
  }
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

/** Parses an RFC 3339 timestamp into Unix seconds and nanoseconds. */
function parseTime(s: string, path: string): { seconds: number; nanos: number } {
  const m = RFC3339.exec(s);
  if (!m) throw encodeError(path, `invalid RFC 3339 time ${JSON.stringify(s)}`);
  const [y, mo, d, h, mi, se] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  if (mo < 1 || mo > 12 || date.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) {
    throw encodeError(path, `invalid RFC 3339 time ${JSON.stringify(s)}`);
  }
  let seconds = Math.floor(date.getTime() / 1000) + h * 3600 + mi * 60 + se;
  if (m[8]) {
    const offset = Number(m[9]) * 3600 + Number(m[10]) * 60;
    seconds -= m[8] === "-" ? -offset : offset;
  }
  const nanos = m[7] ? Number(m[7].slice(0, 9).padEnd(9, "0")) : 0;
  return { seconds, nanos };
}

const DURATION_UNIT_NS: Record<string, bigint> = {
  ns: 1n,
  us: 1000n,
  "\u00b5s": 1000n,
  "\u03bcs": 1000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

/** Parses a Go duration string ("1h30m", "-1.5s", "300ms", "0") into nanoseconds. */
export function parseDuration(s: string): bigint {
  const bad = (): Error => new Error(`invalid duration ${JSON.stringify(s)}`);
  let rest = s;
  let neg = false;
  if (rest[0] === "-" || rest[0] === "+") {
    neg = rest[0] === "-";
    rest = rest.slice(1);
  }
  if (rest === "0") return 0n;
  if (rest === "") throw bad();
  let total = 0n;
  const part = /^(\d*)(?:\.(\d*))?([a-zµμ]+)/;
  while (rest !== "") {
    const m = part.exec(rest);
    if (!m || (m[1] === "" && (m[2] ?? "") === "")) throw bad();
    const unit = DURATION_UNIT_NS[m[3] as string];
    if (unit === undefined) throw bad();
    const frac = m[2] ?? "";
    total += BigInt(m[1] || "0") * unit;
    if (frac) total += (BigInt(frac) * unit) / 10n ** BigInt(frac.length);
    rest = rest.slice(m[0].length);
  }
  if (total > 9223372036854775807n + (neg ? 1n : 0n)) throw bad();
  return neg ? -total : total;
}

function writeDurationNs(w: Writer, ns: bigint): void {
  let u = BigInt.asUintN(64, ns);
  w.ensure(10);
  while (u >= 0x80n) {
    w.buf[w.pos++] = Number(u & 0x7fn) | 0x80;
    u >>= 7n;
  }
  w.buf[w.pos++] = Number(u);
}

function encodeSpecial(w: Writer, codec: Codec, v: unknown, path: string): void {
  const nothing = v === null || v === undefined;
  switch (codec.special) {
    case "time":
    case "microtime": {
      if (nothing) return;
      if (typeof v !== "string") throw encodeError(path, "expected a time string");
      const { seconds, nanos } = parseTime(v, path);
      if (seconds === ZERO_TIME_SECONDS && nanos === 0) return;
      writeTag(w, 1, 0);
      writeSigned(w, seconds);
      writeTag(w, 2, 0);
      writeVarint(w, codec.special === "time" ? 0 : nanos - (nanos % 1000));
      return;
    }
    case "duration": {
      let ns = 0n;
      if (!nothing) {
        if (typeof v !== "string") throw encodeError(path, "expected a duration string");
        try {
          ns = parseDuration(v);
        } catch (e) {
          throw encodeError(path, (e as Error).message);
        }
      }
      writeTag(w, 1, 0);
      writeDurationNs(w, ns);
      return;
    }
    case "quantity": {
      let s = "0";
      if (typeof v === "number") s = String(v);
      else if (typeof v === "string") s = v.trim();
      else if (!nothing) throw encodeError(path, "expected a quantity string");
      if (!QUANTITY.test(s)) throw encodeError(path, `invalid quantity ${JSON.stringify(s)}`);
      writeTag(w, 1, 2);
      writeString(w, s);
      return;
    }
    case "intorstring": {
      const isString = typeof v === "string";
      if (!isString && !nothing && typeof v !== "number") {
        throw encodeError(path, "expected an integer or a string");
      }
      writeTag(w, 1, 0);
      writeVarint(w, isString ? 1 : 0);
      writeTag(w, 2, 0);
      writeInteger(w, isString || nothing ? 0 : v, INT32, path);
      writeTag(w, 3, 2);
      writeString(w, isString ? v : "");
      return;
    }
    case "rawextension":
    case "fieldsv1":
      if (nothing) return;
      writeTag(w, 1, 2);
      if (codec.special === "rawextension" && w.nestedProtobuf && isRecord(v)) {
        const av = v.apiVersion;
        const k = v.kind;
        if (typeof av === "string" && typeof k === "string" && typeNameForApiVersionKind(av, k)) {
          const at = beginLen(w);
          writeEnvelope(w, v, av, k, path);
          endLen(w, at);
          return;
        }
      }
      writeRaw(w, Buffer.from(JSON.stringify(v), "utf8"));
      return;
    case "unknown":
      writeTag(w, 1, 2);
      writeVarint(w, 0);
      if (!nothing) {
        writeTag(w, 2, 2);
        writeRaw(w, Buffer.from(JSON.stringify(v), "utf8"));
      }
      writeTag(w, 3, 2);
      writeString(w, "");
      writeTag(w, 4, 2);
      writeString(w, nothing ? "" : "application/json");
      return;
    case "groupversion": {
      if (!nothing && typeof v !== "string") throw encodeError(path, "expected a group/version");
      const s = nothing ? "" : (v as string);
      const parts = s === "" ? ["", ""] : s.includes("/") ? s.split("/") : ["", s];
      if (parts.length !== 2) throw encodeError(path, `invalid group/version ${JSON.stringify(s)}`);
      writeTag(w, 1, 2);
      writeString(w, parts[0] as string);
      writeTag(w, 2, 2);
      writeString(w, parts[1] as string);
      return;
    }
    case "list": {
      if (nothing) return;
      if (!Array.isArray(v)) throw encodeError(path, "expected an array");
      const f = codec.fields[0] as Field;
      for (let i = 0; i < v.length; i++) {
        writeTag(w, f.number, f.wire);
        writeElem(w, f, v[i], `${path}[${i}]`);
      }
      return;
    }
    default:
      throw encodeError(path, `type ${codec.name} has no encoder`);
  }
}

export interface EncodeOptions {
  /**
   * Write RawExtension values that are objects of a known apiVersion/kind (WatchEvent.object,
   * List items, ...) as nested protobuf envelopes, as a protobuf-speaking server does; by default
   * they are written as JSON, as a client that holds them as raw JSON does.
   */
  nestedProtobuf?: boolean;
}

/**
 * Encodes a JSON-shaped object as a protobuf body (`k8s\0` + runtime.Unknown), as a Go client
 * would send it. apiVersion and kind default to the object's own; throws ProtobufUnknownKindError
 * for kinds without a schema and ProtobufError (offset -1) for values of the wrong JSON type.
 */
export function encodeObject(
  object: Record<string, unknown>,
  apiVersion: string = String(object.apiVersion ?? ""),
  kind: string = String(object.kind ?? ""),
  options: EncodeOptions = {},
): Uint8Array {
  const w = new Writer();
  w.nestedProtobuf = options.nestedProtobuf === true;
  writeEnvelope(w, object, apiVersion, kind, "");
  return new Uint8Array(w.buf.buffer, w.buf.byteOffset, w.pos);
}

function writeEnvelope(
  w: Writer,
  object: Record<string, unknown>,
  apiVersion: string,
  kind: string,
  path: string,
): void {
  const typeName = typeNameForApiVersionKind(apiVersion, kind);
  if (typeName === undefined) throw new ProtobufUnknownKindError(apiVersion, kind);
  w.ensure(4);
  for (const b of MAGIC) w.buf[w.pos++] = b;
  writeTag(w, 1, 2);
  let at = beginLen(w);
  writeTag(w, 1, 2);
  writeString(w, apiVersion);
  writeTag(w, 2, 2);
  writeString(w, kind);
  endLen(w, at);
  writeTag(w, 2, 2);
  at = beginLen(w);
  encodeMessage(w, codecOf(typeName), object, path);
  endLen(w, at);
  writeTag(w, 3, 2);
  writeString(w, "");
  writeTag(w, 4, 2);
  writeString(w, "");
}

/** Encodes a JSON value as one message of the named type (no envelope). */
export function encodeMessageAs(typeName: string, value: unknown): Uint8Array {
  const w = new Writer();
  encodeMessage(w, codecOf(typeName), value, "");
  return new Uint8Array(w.buf.buffer, w.buf.byteOffset, w.pos);
}
