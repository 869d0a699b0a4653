/**
 * The three patch formats of the Kubernetes API: JSON Patch (RFC 6902), JSON Merge Patch
 * (RFC 7386) and strategic merge patch, whose lists merge by key where the schema says so and
 * which understands upstream's directives (`$patch`, `$setElementOrder/<field>`, `$retainKeys`,
 * `$deleteFromPrimitiveList/<field>`).
 */

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

export class PatchError extends Error {
  override readonly name = "PatchError";
}

const isObject = (v: unknown): v is JsonObject =>
  v !== null && typeof v === "object" && !Array.isArray(v);

const clone = <T>(v: T): T => structuredClone(v);

// JSON Merge Patch

export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k] ?? null, v);
  }
  return out;
}

// JSON Patch

function unescape(token: string): string {
  return token.replace(/~1/g, "/").replace(/~0/g, "~");
}

function pointer(path: string): string[] {
  if (path === "") return [];
  if (!path.startsWith("/")) throw new PatchError(`invalid JSON pointer "${path}"`);
  return path.slice(1).split("/").map(unescape);
}

function parentOf(
  doc: Json,
  tokens: string[],
  path: string,
): { parent: JsonObject | Json[]; key: string } {
  let node: Json = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(node)) node = node[Number(t)] ?? null;
    else if (isObject(node)) node = node[t] ?? null;
    else node = null;
    if (node === null) throw new PatchError(`path "${path}" does not exist`);
  }
  if (!Array.isArray(node) && !isObject(node))
    throw new PatchError(`path "${path}" does not exist`);
  return { parent: node, key: tokens[tokens.length - 1]! };
}

function get(doc: Json, path: string): Json {
  let node: Json = doc;
  for (const t of pointer(path)) {
    if (Array.isArray(node)) {
      const i = Number(t);
      if (!/^\d+$/.test(t) || i >= node.length)
        throw new PatchError(`path "${path}" does not exist`);
      node = node[i]!;
    } else if (isObject(node) && t in node) {
      node = node[t]!;
    } else {
      throw new PatchError(`path "${path}" does not exist`);
    }
  }
  return node;
}

function add(doc: Json, path: string, value: Json): Json {
  const tokens = pointer(path);
  if (tokens.length === 0) return value;
  const { parent, key } = parentOf(doc, tokens, path);
  if (Array.isArray(parent)) {
    const i = key === "-" ? parent.length : Number(key);
    if (!(key === "-" || /^\d+$/.test(key)) || i > parent.length) {
      throw new PatchError(`invalid array index "${key}" in "${path}"`);
    }
    parent.splice(i, 0, value);
  } else {
    parent[key] = value;
  }
  return doc;
}

function remove(doc: Json, path: string): Json {
  const tokens = pointer(path);
  const { parent, key } = parentOf(doc, tokens, path);
  if (Array.isArray(parent)) {
    const i = Number(key);
    if (!/^\d+$/.test(key) || i >= parent.length)
      throw new PatchError(`path "${path}" does not exist`);
    parent.splice(i, 1);
  } else {
    if (!(key in parent)) throw new PatchError(`path "${path}" does not exist`);
    delete parent[key];
  }
  return doc;
}

export function jsonPatch(target: Json, ops: unknown): Json {
  if (!Array.isArray(ops)) throw new PatchError("a JSON patch must be an array of operations");
  let doc = clone(target);
  for (const raw of ops) {
    if (!isObject(raw)) throw new PatchError("a JSON patch operation must be an object");
    const op = raw.op;
    const path = raw.path;
    if (typeof path !== "string") throw new PatchError(`operation "${String(op)}" has no path`);
    switch (op) {
      case "add":
        doc = add(doc, path, clone(raw.value ?? null));
        break;
      case "remove":
        doc = remove(doc, path);
        break;
      case "replace":
        get(doc, path);
        doc = add(remove(doc, path), path, clone(raw.value ?? null));
        break;
      case "move": {
        const from = String(raw.from);
        const value = get(doc, from);
        doc = add(remove(doc, from), path, value);
        break;
      }
      case "copy":
        doc = add(doc, path, clone(get(doc, String(raw.from))));
        break;
      case "test":
        if (JSON.stringify(get(doc, path)) !== JSON.stringify(raw.value)) {
          throw new PatchError(`testing value ${path} failed`);
        }
        break;
      default:
        throw new PatchError(`Unexpected kind: ${String(op)}`);
    }
  }
  return doc;
}

// Strategic merge patch

/** What the schema says about one field, for strategic merge. */
export interface FieldPatchMeta {
  /** "merge", "replace", "retainKeys", "merge,retainKeys"; absent: lists are replaced. */
  strategy?: string;
  mergeKey?: string;
}

/**
 * The schema as strategic merge needs it: the patch metadata of a field of a type, and the type of
 * that field's value (for lists: of their elements) to recurse into. Types are opaque names.
 */
export interface PatchSchema {
  field(type: string, name: string): { meta: FieldPatchMeta; type?: string } | undefined;
}

const DIRECTIVE = "$patch";
const SET_ORDER = "$setElementOrder/";
const DELETE_PRIMITIVE = "$deleteFromPrimitiveList/";
const RETAIN_KEYS = "$retainKeys";

export function strategicMergePatch(
  target: Json,
  patch: Json,
  schema: PatchSchema | undefined,
  type: string | undefined,
): Json {
  if (!isObject(patch)) return clone(patch);
  return mergeMap(isObject(target) ? target : {}, patch, schema, type);
}

function mergeMap(
  target: JsonObject,
  patch: JsonObject,
  schema: PatchSchema | undefined,
  type: string | undefined,
): JsonObject {
  if (patch[DIRECTIVE] === "replace") {
    const out = clone(patch);
    delete out[DIRECTIVE];
    return out;
  }
  if (patch[DIRECTIVE] === "delete") return {};
  let out: JsonObject = { ...target };
  const retain = patch[RETAIN_KEYS];
  if (Array.isArray(retain)) {
    const keep = new Set(retain.map(String));
    out = Object.fromEntries(Object.entries(out).filter(([k]) => keep.has(k)));
  }
  for (const [k, v] of Object.entries(patch)) {
    if (k === DIRECTIVE || k === RETAIN_KEYS || k.startsWith(SET_ORDER)) continue;
    if (k.startsWith(DELETE_PRIMITIVE)) {
      const field = k.slice(DELETE_PRIMITIVE.length);
      const drop = new Set((Array.isArray(v) ? v : []).map((x) => JSON.stringify(x)));
      const list = out[field];
      if (Array.isArray(list)) out[field] = list.filter((x) => !drop.has(JSON.stringify(x)));
      continue;
    }
    if (v === null) {
      delete out[k];
      continue;
    }
    const f = type ? schema?.field(type, k) : undefined;
    if (Array.isArray(v)) {
      const order = patch[SET_ORDER + k];
      out[k] = mergeList(
        Array.isArray(out[k]) ? (out[k] as Json[]) : [],
        v,
        f?.meta ?? {},
        schema,
        f?.type,
        Array.isArray(order) ? order : undefined,
      );
    } else if (isObject(v)) {
      if (f?.meta.strategy?.includes("replace") && !f.meta.strategy.includes("merge"))
        out[k] = clone(v);
      else out[k] = mergeMap(isObject(out[k]) ? (out[k] as JsonObject) : {}, v, schema, f?.type);
    } else {
      out[k] = v;
    }
  }
  // A field whose own order was given but was not otherwise patched is reordered too.
  for (const [k, order] of Object.entries(patch)) {
    if (!k.startsWith(SET_ORDER) || !Array.isArray(order)) continue;
    const field = k.slice(SET_ORDER.length);
    if (field in patch) continue;
    const f = type ? schema?.field(type, field) : undefined;
    if (Array.isArray(out[field]))
      out[field] = reorder(out[field] as Json[], order, f?.meta.mergeKey);
  }
  return out;
}

function mergeList(
  target: Json[],
  patch: Json[],
  meta: FieldPatchMeta,
  schema: PatchSchema | undefined,
  elementType: string | undefined,
  order: Json[] | undefined,
): Json[] {
  if (!meta.strategy?.includes("merge")) {
    return clone(patch.filter((p) => !(isObject(p) && p[DIRECTIVE] !== undefined)));
  }
  const key = meta.mergeKey;
  if (!key) {
    // A list of primitives merged as a set: patch items are added, in the patch's order.
    const seen = new Set(target.map((x) => JSON.stringify(x)));
    const out = [...target];
    for (const p of patch) {
      if (isObject(p) && p[DIRECTIVE] === "replace") return clone(patch.filter((x) => x !== p));
      if (!seen.has(JSON.stringify(p))) out.push(clone(p));
    }
    return order ? reorder(out, order, undefined) : out;
  }
  // A directive item `{$patch: replace}` replaces the whole list with the other items.
  if (patch.some((p) => isObject(p) && p[DIRECTIVE] === "replace")) {
    return clone(patch.filter((p) => !(isObject(p) && p[DIRECTIVE] === "replace")));
  }
  const out = target.map((x) => clone(x));
  const indexOf = (k: Json) =>
    out.findIndex((x) => isObject(x) && JSON.stringify(x[key]) === JSON.stringify(k));
  for (const p of patch) {
    if (!isObject(p))
      throw new PatchError(
        `merging an object in a list of ${key}-keyed items: got ${JSON.stringify(p)}`,
      );
    if (!(key in p))
      throw new PatchError(`map: ${JSON.stringify(p)} does not contain declared merge key: ${key}`);
    const i = indexOf(p[key]!);
    if (p[DIRECTIVE] === "delete") {
      if (i >= 0) out.splice(i, 1);
      continue;
    }
    if (i >= 0) out[i] = mergeMap(out[i] as JsonObject, p, schema, elementType);
    else out.push(mergeMap({}, p, schema, elementType));
  }
  return order ? reorder(out, order, key) : out;
}

/** Orders `list` as `order` says (by merge key), keeping items `order` does not name at the end. */
function reorder(list: Json[], order: Json[], key: string | undefined): Json[] {
  const id = (x: Json) => JSON.stringify(key && isObject(x) ? x[key] : x);
  const pos = new Map(order.map((o, i) => [JSON.stringify(key && isObject(o) ? o[key] : o), i]));
  return [...list].sort((a, b) => (pos.get(id(a)) ?? Infinity) - (pos.get(id(b)) ?? Infinity));
}
