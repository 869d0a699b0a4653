/**
 * Field sets, as server-side apply tracks ownership (structured-merge-diff's fieldpath.Set and
 * typed.ToFieldSet / Compare): a set of paths through an object, stored as a trie. A path is a
 * list of path elements: `f:<name>` a struct field or map key, `k:{"name":"x"}` the item of a
 * `listType: map` list with these key field values (keys sorted by name), `v:<json>` the item of
 * a `listType: set` list, `i:<n>` a list index (never produced here; read for completeness).
 *
 * The wire form is FieldsV1: a JSON object whose keys are serialized path elements and whose
 * values are the subtrees, with `"."` marking a node that is itself a member while it also has
 * members below it (`{"f:labels":{".":{},"f:app":{}}}`); keys are in upstream's order (fields,
 * then keys, then values, then indices; each sorted).
 *
 * Sets are immutable once built: the operations return new sets that may share subtrees.
 *
 * Schema facts come from `src/api/schema`: `Shape` is what structured-merge-diff's schema atom is
 * for a type (kube-openapi's schemaconv rules): lists are atomic unless they have a listType, or
 * `patchStrategy: merge` (a map keyed by the merge key, or a set without one); maps and structs
 * are granular unless marked atomic; Time, Quantity, IntOrString and the like are scalars;
 * RawExtension is an atomic anything.
 */
import { typeOf, type FieldDef, type TypeDef, type ValueType } from "../../api/schema/index.js";

// ---------------------------------------------------------------------------------------------
// Path elements

export type KeyField = readonly [name: string, value: unknown];

/** One step of a path. `id` is the serialized form (`f:name`, `k:{...}`, `v:...`, `i:0`). */
export type PathElement =
  | { readonly kind: "field"; readonly name: string; readonly id: string }
  | { readonly kind: "key"; readonly fields: readonly KeyField[]; readonly id: string }
  | { readonly kind: "value"; readonly value: unknown; readonly id: string }
  | { readonly kind: "index"; readonly index: number; readonly id: string };

export type Path = readonly PathElement[];

export function fieldElement(name: string): PathElement {
  return { kind: "field", name, id: "f:" + name };
}

/** A list-map item key; `fields` need not be sorted. */
export function keyElement(fields: readonly KeyField[]): PathElement {
  const sorted = fields.length > 1 ? [...fields].sort((a, b) => cmpStrings(a[0], b[0])) : fields;
  let id = "k:{";
  sorted.forEach(([name, value], i) => {
    id += (i ? "," : "") + goJson(name) + ":" + goJson(value);
  });
  return { kind: "key", fields: sorted, id: id + "}" };
}

export function valueElement(value: unknown): PathElement {
  return { kind: "value", value, id: "v:" + goJson(value) };
}

export function indexElement(index: number): PathElement {
  return { kind: "index", index, id: "i:" + index };
}

/** Parses a serialized path element; undefined for an unknown element type (upstream skips those). */
export function parsePathElement(s: string): PathElement | undefined {
  if (s.length < 2) throw new Error(`key must be 2 characters long: ${s}`);
  if (s[1] !== ":") throw new Error(`missing colon: ${s}`);
  const rest = s.slice(2);
  switch (s[0]) {
    case "f":
      return fieldElement(rest);
    case "v":
      return valueElement(JSON.parse(rest) as unknown);
    case "k": {
      const obj = JSON.parse(rest) as unknown;
      if (!isObject(obj)) throw new Error(`invalid key element: ${s}`);
      return keyElement(Object.entries(obj));
    }
    case "i":
      if (!/^[+-]?\d+$/.test(rest)) throw new Error(`invalid index element: ${s}`);
      return indexElement(Number(rest));
    default:
      return undefined;
  }
}

const KIND_RANK = { field: 0, key: 1, value: 2, index: 3 } as const;

/** Upstream's order of path elements: fields, keys, values, indices; each sorted. */
export function comparePathElements(a: PathElement, b: PathElement): number {
  if (a.kind !== b.kind) return KIND_RANK[a.kind] - KIND_RANK[b.kind];
  switch (a.kind) {
    case "field":
      return cmpStrings(a.name, (b as typeof a).name);
    case "key": {
      const bf = (b as typeof a).fields;
      for (let i = 0; ; i++) {
        const x = a.fields[i];
        const y = bf[i];
        if (!x || !y) return x ? 1 : y ? -1 : 0;
        const c = cmpStrings(x[0], y[0]) || compareValues(x[1], y[1]);
        if (c) return c;
      }
    }
    case "value":
      return compareValues(a.value, (b as typeof a).value);
    case "index":
      return a.index - (b as typeof a).index;
  }
}

/** A path as upstream prints it in conflicts: `.spec.containers[name="nginx"].image`. */
export function pathString(path: Path): string {
  let out = "";
  for (const pe of path) {
    switch (pe.kind) {
      case "field":
        out += "." + pe.name;
        break;
      case "key":
        out += "[" + pe.fields.map(([n, v]) => `${n}=${goString(v)}`).join(",") + "]";
        break;
      case "value":
        out += "[=" + goString(pe.value) + "]";
        break;
      case "index":
        out += `[${pe.index}]`;
        break;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Sets

interface Child {
  readonly pe: PathElement;
  readonly set: FieldSet;
}

/** A set of paths (a trie). Mutating methods are for building; treat a set as frozen afterwards. */
export class FieldSet {
  private readonly members = new Map<string, PathElement>();
  private readonly children = new Map<string, Child>();

  isEmpty(): boolean {
    return this.members.size === 0 && this.children.size === 0;
  }

  /** Adds `pe` as a member at this level. */
  addMember(pe: PathElement): void {
    this.members.set(pe.id, pe);
  }

  hasMember(pe: PathElement): boolean {
    return this.members.has(pe.id);
  }

  /** The subtree below `pe`, if any. */
  child(pe: PathElement): FieldSet | undefined {
    return this.children.get(pe.id)?.set;
  }

  /** The subtree below `pe`, created when missing (drop it with dropIfEmpty when left empty). */
  descend(pe: PathElement): FieldSet {
    let c = this.children.get(pe.id);
    if (!c) {
      c = { pe, set: new FieldSet() };
      this.children.set(pe.id, c);
    }
    return c.set;
  }

  dropIfEmpty(pe: PathElement): void {
    const c = this.children.get(pe.id);
    if (c && c.set.isEmpty()) this.children.delete(pe.id);
  }

  /** Puts `set` below `pe`, replacing what was there (an empty set removes the subtree). */
  putChild(pe: PathElement, set: FieldSet): void {
    if (set.isEmpty()) this.children.delete(pe.id);
    else this.children.set(pe.id, { pe, set });
  }

  insert(path: Path): void {
    const last = path[path.length - 1];
    if (!last) return;
    let s = path.length > 1 ? this.descend(path[0]!) : undefined;
    for (let i = 1; i < path.length - 1; i++) s = s!.descend(path[i]!);
    (s ?? this).addMember(last);
  }

  has(path: Path): boolean {
    const last = path[path.length - 1];
    if (!last) return false;
    let s = path.length > 1 ? this.child(path[0]!) : undefined;
    for (let i = 1; i < path.length - 1 && s; i++) s = s.child(path[i]!);
    return path.length > 1 ? s !== undefined && s.hasMember(last) : this.hasMember(last);
  }

  /** The paths below `pe`, without the prefix (empty when there are none). */
  withPrefix(pe: PathElement): FieldSet {
    return this.child(pe) ?? EMPTY_SET;
  }

  union(o: FieldSet): FieldSet {
    if (o.isEmpty()) return this;
    if (this.isEmpty()) return o;
    const out = new FieldSet();
    for (const [id, pe] of this.members) out.members.set(id, pe);
    for (const [id, pe] of o.members) out.members.set(id, pe);
    for (const [id, c] of this.children) {
      const oc = o.children.get(id);
      out.children.set(id, oc ? { pe: c.pe, set: c.set.union(oc.set) } : c);
    }
    for (const [id, c] of o.children) if (!this.children.has(id)) out.children.set(id, c);
    return out;
  }

  /** Paths in this set and not in `o` (exact paths: removing a parent keeps its children). */
  difference(o: FieldSet): FieldSet {
    if (o.isEmpty() || this.isEmpty()) return this;
    const out = new FieldSet();
    let same = true;
    for (const [id, pe] of this.members) {
      if (!o.members.has(id)) out.members.set(id, pe);
      else same = false;
    }
    for (const [id, c] of this.children) {
      const oc = o.children.get(id);
      if (!oc) {
        out.children.set(id, c);
        continue;
      }
      const d = c.set.difference(oc.set);
      if (d !== c.set) same = false;
      out.putChild(c.pe, d);
    }
    return same ? this : out;
  }

  /** Like difference, but a member of `o` also takes away every path below it. */
  recursiveDifference(o: FieldSet): FieldSet {
    if (o.isEmpty() || this.isEmpty()) return this;
    const out = new FieldSet();
    let same = true;
    for (const [id, pe] of this.members) {
      if (!o.members.has(id)) out.members.set(id, pe);
      else same = false;
    }
    for (const [id, c] of this.children) {
      if (o.members.has(id)) {
        same = false;
        continue;
      }
      const oc = o.children.get(id);
      if (!oc) {
        out.children.set(id, c);
        continue;
      }
      const d = c.set.recursiveDifference(oc.set);
      if (d !== c.set) same = false;
      out.putChild(c.pe, d);
    }
    return same ? this : out;
  }

  /**
   * Whether FieldsV1 JSON `raw` holds any path of this set, without reading all of `raw`. Only
   * sound when `raw` is in this module's canonical form (as toFieldsV1 writes it): its keys are
   * compared with this set's element ids.
   */
  intersectsFieldsV1(raw: unknown): boolean {
    if (!isObject(raw)) return false;
    for (const id of this.members.keys()) {
      const n = raw[id];
      if (isObject(n) && (isEmptyObject(n) || "." in n)) return true;
    }
    for (const [id, c] of this.children) if (c.set.intersectsFieldsV1(raw[id])) return true;
    return false;
  }

  intersection(o: FieldSet): FieldSet {
    const out = new FieldSet();
    if (o.isEmpty() || this.isEmpty()) return out;
    for (const [id, pe] of this.members) if (o.members.has(id)) out.members.set(id, pe);
    for (const [id, c] of this.children) {
      const oc = o.children.get(id);
      if (oc) out.putChild(c.pe, c.set.intersection(oc.set));
    }
    return out;
  }

  equals(o: FieldSet): boolean {
    if (this.members.size !== o.members.size || this.children.size !== o.children.size) {
      return false;
    }
    for (const id of this.members.keys()) if (!o.members.has(id)) return false;
    for (const [id, c] of this.children) {
      const oc = o.children.get(id);
      if (!oc || !c.set.equals(oc.set)) return false;
    }
    return true;
  }

  /** Every path, in upstream's iteration order (this level's members, then each subtree). */
  paths(): PathElement[][] {
    const out: PathElement[][] = [];
    const walk = (s: FieldSet, prefix: PathElement[]): void => {
      for (const pe of sortedElements(s.members.values())) out.push([...prefix, pe]);
      const kids = [...s.children.values()].sort((a, b) => comparePathElements(a.pe, b.pe));
      for (const c of kids) walk(c.set, [...prefix, c.pe]);
    };
    walk(this, []);
    return out;
  }

  /**
   * Adds as members the struct fields that have paths below them (upstream's
   * EnsureNamedFieldsAreMembers): a set with `spec.replicas` also gets `spec`, while a map key
   * (`metadata.labels.app`) does not make its map entry's parent key a member beyond the field.
   */
  ensureNamedFieldsAreMembers(shape: Shape): FieldSet {
    const out = new FieldSet();
    for (const [id, pe] of this.members) out.members.set(id, pe);
    for (const [id, c] of this.children) {
      if (c.pe.kind === "field" && shape.k === "struct" && shape.type.jsonFields.has(c.pe.name)) {
        out.members.set(id, c.pe);
      }
      out.children.set(id, {
        pe: c.pe,
        set: c.set.ensureNamedFieldsAreMembers(childShape(shape, c.pe)),
      });
    }
    return out;
  }

  /** The FieldsV1 JSON object of this set. */
  toFieldsV1(): Record<string, unknown> {
    return this.emit(false);
  }

  private emit(includeSelf: boolean): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    if (includeSelf && !this.isEmpty()) out["."] = {};
    const ids = new Map<string, PathElement>(this.members);
    for (const [id, c] of this.children) ids.set(id, c.pe);
    for (const pe of sortedElements(ids.values())) {
      const c = this.children.get(pe.id);
      out[pe.id] = c ? c.set.emit(this.members.has(pe.id)) : {};
    }
    return out;
  }

  /** Reads FieldsV1 JSON (an object, or its text). Throws on malformed input. */
  static fromFieldsV1(json: unknown): FieldSet {
    const value = typeof json === "string" ? (JSON.parse(json) as unknown) : json;
    if (value === undefined || value === null) return new FieldSet();
    return readNode(value).set ?? new FieldSet();
  }
}

const EMPTY_SET = new FieldSet();

function readNode(node: unknown): { set: FieldSet | undefined; member: boolean } {
  if (!isObject(node)) throw new Error("FieldsV1: expected an object");
  let set: FieldSet | undefined;
  let member = false;
  for (const key of Object.keys(node)) {
    if (key === ".") {
      member = true;
      continue;
    }
    const pe = parsePathElement(key);
    if (!pe) continue;
    const sub = readNode(node[key]);
    if (sub.member) (set ??= new FieldSet()).addMember(pe);
    if (sub.set) (set ??= new FieldSet()).putChild(pe, sub.set);
  }
  if (!set) member = true;
  return { set, member };
}

function sortedElements(it: Iterable<PathElement>): PathElement[] {
  return [...it].sort(comparePathElements);
}

/** A set holding exactly these paths. */
export function setOf(...paths: Path[]): FieldSet {
  const s = new FieldSet();
  for (const p of paths) s.insert(p);
  return s;
}

/** A path from field names (convenience for fixed paths such as `metadata.name`). */
export function fieldPath(...names: string[]): Path {
  return names.map(fieldElement);
}

// ---------------------------------------------------------------------------------------------
// Schema shapes

export type ScalarType = "string" | "numeric" | "boolean" | "untyped";
export type ListRelationship = "atomic" | "set" | "map";

/** structured-merge-diff's view of a type. */
export type Shape =
  | { readonly k: "scalar"; readonly scalar: ScalarType }
  /** An atomic anything (RawExtension). */
  | { readonly k: "untyped" }
  /** Free-form: objects are granular maps of free-form values, lists are atomic. */
  | { readonly k: "deduced" }
  | { readonly k: "struct"; readonly type: TypeDef; readonly atomic: boolean }
  | { readonly k: "map"; readonly values: Shape; readonly atomic: boolean }
  | {
      readonly k: "list";
      readonly items: Shape;
      readonly rel: ListRelationship;
      /** Key fields of a `map` list. */
      readonly keys: readonly string[];
      /** Defaults of key fields, used when an item leaves a key field out. */
      readonly keyDefaults?: Readonly<Record<string, unknown>>;
    };

const DEDUCED: Shape = { k: "deduced" };
const UNTYPED: Shape = { k: "untyped" };
const SCALARS: Record<ScalarType, Shape> = {
  string: { k: "scalar", scalar: "string" },
  numeric: { k: "scalar", scalar: "numeric" },
  boolean: { k: "scalar", scalar: "boolean" },
  untyped: { k: "scalar", scalar: "untyped" },
};

/** Key fields with an OpenAPI default (`+default=`), as upstream fills them in list keys. */
const KEY_DEFAULTS: Record<string, Record<string, unknown>> = {
  "io.k8s.api.core.v1.ContainerPort": { protocol: "TCP" },
  "io.k8s.api.core.v1.ServicePort": { protocol: "TCP" },
};

const OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

const typeShapes = new Map<string, Shape>();
const fieldShapes = new WeakMap<FieldDef, Shape>();
const fieldElements = new WeakMap<FieldDef, PathElement>();

/** The shape of the top-level type with this OpenAPI name (free-form when unknown). */
export function shapeOf(typeName: string): Shape {
  let s = typeShapes.get(typeName);
  if (!s) {
    s = messageShape(typeName, undefined);
    typeShapes.set(typeName, s);
  }
  return s;
}

/** The shape of a struct field (field-level list/map/struct markers applied). */
export function fieldShape(fd: FieldDef): Shape {
  let s = fieldShapes.get(fd);
  if (!s) {
    s = computeFieldShape(fd);
    fieldShapes.set(fd, s);
  }
  return s;
}

/** The `f:` element of a struct field (cached). */
export function fieldElementOf(fd: FieldDef): PathElement {
  let pe = fieldElements.get(fd);
  if (!pe) {
    pe = fieldElement(fd.json);
    fieldElements.set(fd, pe);
  }
  return pe;
}

function computeFieldShape(fd: FieldDef): Shape {
  const t = fd.type;
  switch (t.kind) {
    case "array":
      return listShape(t.items, fd.listType, fd.patchStrategy, fd.patchMergeKey, fd.listMapKeys);
    case "map":
      return { k: "map", values: valueShape(t.values), atomic: fd.mapType === "atomic" };
    case "message":
      return messageShape(t.type, fd.structType ?? fd.mapType);
    default:
      return scalarShape(t.kind);
  }
}

function valueShape(t: ValueType): Shape {
  switch (t.kind) {
    case "array":
      return listShape(t.items, undefined, undefined, undefined, undefined);
    case "map":
      return { k: "map", values: valueShape(t.values), atomic: false };
    case "message":
      return messageShape(t.type, undefined);
    default:
      return scalarShape(t.kind);
  }
}

function scalarShape(kind: string): Shape {
  if (kind === "int32" || kind === "int64") return SCALARS.numeric;
  if (kind === "bool") return SCALARS.boolean;
  return SCALARS.string;
}

function messageShape(name: string, override: string | undefined): Shape {
  const def = typeOf(name);
  if (!def) return DEDUCED;
  switch (def.special) {
    case undefined:
      return {
        k: "struct",
        type: def,
        atomic: (override ?? def.structType ?? def.mapType) === "atomic",
      };
    case "list": {
      const items = def.fields[0];
      if (!items || items.type.kind !== "array") return UNTYPED;
      return listShape(items.type.items, def.listType, undefined, undefined, undefined);
    }
    case "rawextension":
    case "unknown":
      return UNTYPED;
    case "fieldsv1":
      return DEDUCED;
    case "duration":
    case "groupversion":
      return SCALARS.string;
    default:
      return SCALARS.untyped;
  }
}

function listShape(
  items: ValueType,
  listType: string | undefined,
  patchStrategy: string | undefined,
  mergeKey: string | undefined,
  mapKeys: readonly string[] | undefined,
): Shape {
  let rel: ListRelationship = "atomic";
  let keys: readonly string[] = [];
  if (listType === "map" || listType === "set" || listType === "atomic") {
    rel = listType;
    if (listType === "map") keys = mapKeys ?? [];
  } else if (patchStrategy === "merge" || patchStrategy === "merge,retainKeys") {
    rel = mergeKey ? "map" : "set";
    if (mergeKey) keys = [mergeKey];
  }
  const itemShape = valueShape(items);
  const keyDefaults = itemShape.k === "struct" ? KEY_DEFAULTS[itemShape.type.name] : undefined;
  return keyDefaults
    ? { k: "list", items: itemShape, rel, keys, keyDefaults }
    : { k: "list", items: itemShape, rel, keys };
}

/** The shape below `pe` (free-form where the schema says nothing). */
export function childShape(shape: Shape, pe: PathElement): Shape {
  switch (shape.k) {
    case "struct": {
      if (pe.kind !== "field") return DEDUCED;
      const fd = shape.type.jsonFields.get(pe.name);
      return fd ? fieldShape(fd) : DEDUCED;
    }
    case "map":
      return shape.values;
    case "list":
      return shape.items;
    default:
      return DEDUCED;
  }
}

// ---------------------------------------------------------------------------------------------
// Values

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isEmptyObject(v: Record<string, unknown>): boolean {
  for (const _ in v) return false;
  return true;
}

/** Whether a value under `shape` is walked as a map, a list, or compared whole (a leaf). */
export function valueKind(shape: Shape, a: unknown, b?: unknown): "map" | "list" | "leaf" {
  switch (shape.k) {
    case "struct":
    case "map":
      return mapLike(a, true) && mapLike(b, true) ? "map" : "leaf";
    case "deduced":
      return mapLike(a, false) && mapLike(b, false) ? "map" : "leaf";
    case "list":
      return listLike(a) && listLike(b) ? "list" : "leaf";
    default:
      return "leaf";
  }
}

function mapLike(v: unknown, nullOk: boolean): boolean {
  return v === undefined || isObject(v) || (nullOk && v === null);
}

function listLike(v: unknown): boolean {
  return v === undefined || v === null || Array.isArray(v);
}

/** Structural equality with upstream's value.Equals rules (numbers compare numerically). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  if (isObject(a)) {
    if (!isObject(b)) return false;
    let n = 0;
    for (const k in a) {
      if (a[k] === undefined) continue;
      n++;
      if (!(k in b) || !deepEqual(a[k], b[k])) return false;
    }
    for (const k in b) if (b[k] !== undefined) n--;
    return n === 0;
  }
  return false;
}

function typeRank(v: unknown): number {
  if (typeof v === "number") return 0;
  if (typeof v === "string") return 1;
  if (typeof v === "boolean") return 2;
  if (Array.isArray(v)) return 3;
  if (isObject(v)) return 4;
  return 5;
}

function cmpStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Upstream's total order of values: numbers, strings, booleans, lists, maps, null. */
export function compareValues(a: unknown, b: unknown): number {
  const ra = typeRank(a);
  const rb = typeRank(b);
  if (ra !== rb) return ra - rb;
  switch (ra) {
    case 0:
      return (a as number) - (b as number) || 0;
    case 1:
      return cmpStrings(a as string, b as string);
    case 2:
      return Number(a) - Number(b);
    case 3: {
      const x = a as unknown[];
      const y = b as unknown[];
      for (let i = 0; i < Math.min(x.length, y.length); i++) {
        const c = compareValues(x[i], y[i]);
        if (c) return c;
      }
      return x.length - y.length;
    }
    case 4: {
      const x = a as Record<string, unknown>;
      const y = b as Record<string, unknown>;
      const kx = Object.keys(x).sort();
      const ky = Object.keys(y).sort();
      for (let i = 0; i < Math.min(kx.length, ky.length); i++) {
        const c = cmpStrings(kx[i]!, ky[i]!) || compareValues(x[kx[i]!], y[ky[i]!]);
        if (c) return c;
      }
      return kx.length - ky.length;
    }
    default:
      return 0;
  }
}

/**
 * JSON as Go's encoding/json writes it: object keys sorted, and `<`, `>`, `&`, U+2028, U+2029
 * escaped.
 */
export function goJson(v: unknown): string {
  if (Array.isArray(v)) return "[" + v.map((x) => goJson(x ?? null)).join(",") + "]";
  if (isObject(v)) {
    const keys = Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort();
    return "{" + keys.map((k) => goJson(k) + ":" + goJson(v[k])).join(",") + "}";
  }
  const s = JSON.stringify(v ?? null);
  return typeof v === "string" && HTML_CHARS.test(s) ? s.replace(HTML_CHARS_ALL, htmlEscape) : s;
}

const HTML_CHARS = /[<>&\u2028\u2029]/;
const HTML_CHARS_ALL = /[<>&\u2028\u2029]/g;

function htmlEscape(c: string): string {
  return "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0");
}

/** A value as Go's value.ToString prints it in paths (strings quoted as %q). */
export function goString(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : goFloat(v);
  if (typeof v === "string") return goQuote(v);
  if (typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return "[" + v.map(goString).join(",") + "]";
  if (isObject(v)) {
    return Object.keys(v)
      .sort()
      .map((k) => `${k}=${goString(v[k])}`)
      .join("");
  }
  return String(v);
}

/** Go's %v of a float64 (strconv 'g', shortest). */
export function goFloat(f: number): string {
  if (!Number.isFinite(f)) return f > 0 ? "+Inf" : f < 0 ? "-Inf" : "NaN";
  const [mant = "0", expText = "0"] = f.toExponential().split("e");
  const exp = Number(expText);
  if (exp < -4 || exp >= 6) {
    const e = Math.abs(exp);
    return `${mant}e${exp < 0 ? "-" : "+"}${e < 10 ? "0" : ""}${e}`;
  }
  return String(f);
}

/** Go's strconv.Quote for the common cases. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    switch (ch) {
      case '"':
        out += '\\"';
        continue;
      case "\\":
        out += "\\\\";
        continue;
      case "\n":
        out += "\\n";
        continue;
      case "\t":
        out += "\\t";
        continue;
      case "\r":
        out += "\\r";
        continue;
      case "\x07":
        out += "\\a";
        continue;
      case "\b":
        out += "\\b";
        continue;
      case "\f":
        out += "\\f";
        continue;
      case "\v":
        out += "\\v";
        continue;
    }
    if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).padStart(2, "0");
    else out += ch;
  }
  return out + '"';
}

// ---------------------------------------------------------------------------------------------
// List items

/** Why a list item has no path element (upstream's messages). */
export class ItemError extends Error {}

/** The path element of an item of a `set` or `map` list. Throws ItemError. */
export function itemElement(shape: Shape & { k: "list" }, item: unknown): PathElement {
  if (shape.rel === "map" || shape.keys.length > 0) {
    if (item === null)
      throw new ItemError("associative list with keys may not have a null element");
    if (!isObject(item)) {
      throw new ItemError("associative list with keys may not have non-map elements");
    }
    const fields: KeyField[] = [];
    for (const key of shape.keys) {
      const v = item[key];
      if (v !== undefined) fields.push([key, v]);
      else if (shape.keyDefaults?.[key] !== undefined) fields.push([key, shape.keyDefaults[key]]);
    }
    if (shape.keys.length > 0 && fields.length === 0) {
      throw new ItemError(
        `associative list with keys has an element that omits all key fields [${shape.keys
          .map(goQuote)
          .join(" ")}] (and doesn't have default values for any key fields)`,
      );
    }
    return keyElement(fields);
  }
  if (isObject(item)) {
    throw new ItemError("associative list without keys has an element that's a map type");
  }
  if (Array.isArray(item)) {
    throw new ItemError("not supported: associative list with lists as elements");
  }
  if (item === null || item === undefined) {
    throw new ItemError("associative list without keys has an element that's an explicit null");
  }
  return valueElement(item);
}

/** The path elements of a list's items, or undefined when one of them has none. */
function itemElements(
  shape: Shape & { k: "list" },
  items: readonly unknown[],
): PathElement[] | undefined {
  const out: PathElement[] = [];
  for (const item of items) {
    try {
      out.push(itemElement(shape, item));
    } catch (e) {
      if (e instanceof ItemError) return undefined;
      throw e;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Field set of a value

/**
 * The field set of a value as upstream's ToFieldSet computes it for an unstructured object (an
 * apply configuration): every scalar, every atomic list or map, every list item (marked itself
 * when it has fields below), every map entry, and every null or empty-object field. Struct
 * fields holding non-empty objects are not members themselves. Empty granular lists add nothing.
 * Items whose list cannot be keyed make that list atomic.
 */
export function toFieldSet(shape: Shape, value: unknown): FieldSet {
  const set = new FieldSet();
  if (isObject(value) && valueKind(shape, value) === "map" && !isAtomic(shape)) {
    fsMap(shape, value, set);
  }
  return set;
}

function isAtomic(shape: Shape): boolean {
  return (shape.k === "struct" || shape.k === "map") && shape.atomic;
}

function fsValue(shape: Shape, v: unknown, parent: FieldSet, pe: PathElement): void {
  const kind = valueKind(shape, v);
  if (kind === "leaf") {
    parent.addMember(pe);
  } else if (kind === "list") {
    const list = shape as Shape & { k: "list" };
    if (list.rel === "atomic") parent.addMember(pe);
    else if (Array.isArray(v) && v.length > 0) {
      const ok = fsList(list, v, parent.descend(pe));
      parent.dropIfEmpty(pe);
      if (!ok) parent.addMember(pe);
    }
  } else if (isAtomic(shape)) {
    parent.addMember(pe);
  } else if (isObject(v)) {
    fsMap(shape, v, parent.descend(pe));
    parent.dropIfEmpty(pe);
  }
}

function fsMap(shape: Shape, obj: Record<string, unknown>, set: FieldSet): void {
  for (const key in obj) {
    const v = obj[key];
    if (v === undefined) continue;
    let child: Shape = DEDUCED;
    let pe: PathElement;
    let declared = false;
    if (shape.k === "struct") {
      const fd = shape.type.jsonFields.get(key);
      if (fd) {
        if (key === "managedFields" && shape.type.name === OBJECT_META) continue;
        child = fieldShape(fd);
        pe = fieldElementOf(fd);
        declared = true;
      } else pe = fieldElement(key);
    } else {
      if (shape.k === "map") child = shape.values;
      pe = fieldElement(key);
    }
    fsValue(child, v, set, pe);
    if (v === null || (isObject(v) && isEmptyObject(v)) || !declared) set.addMember(pe);
  }
}

function fsList(shape: Shape & { k: "list" }, items: readonly unknown[], set: FieldSet): boolean {
  const pes = itemElements(shape, items);
  if (!pes) return false;
  const seen = new Map<string, number>();
  for (const pe of pes) seen.set(pe.id, (seen.get(pe.id) ?? 0) + 1);
  for (let i = 0; i < items.length; i++) {
    const pe = pes[i]!;
    if ((seen.get(pe.id) ?? 0) > 1) {
      set.addMember(pe);
      continue;
    }
    fsValue(shape.items, items[i], set, pe);
    set.addMember(pe);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Comparison

/** What changed between two objects, as paths (upstream's typed.Comparison). */
export interface Comparison {
  added: FieldSet;
  modified: FieldSet;
  removed: FieldSet;
}

/**
 * How a side of a comparison is read. `typed`: as upstream sees a Go object (see goValue):
 * `omitempty` zero values and nil pointers are absent, and a field missing from a present struct
 * reads as Go's zero value where Go always has one (an empty struct for a non-pointer struct
 * field, null for a non-omitempty list or map or a zero Time, the zero scalar). `raw`: as an
 * unstructured object (an apply configuration): what is there is there, nulls included.
 */
export type ReadMode = "typed" | "raw";

/**
 * Compares two values of the shape: leaves (scalars, atomic lists and maps, empty ones) that were
 * added, modified or removed, and the granular maps, lists and list items that appeared or went.
 * `lhs` undefined reads as an empty object of the type (the base of a create).
 * `metadata.managedFields` is never compared.
 */
export function compare(
  shape: Shape,
  lhs: unknown,
  rhs: unknown,
  lhsMode: ReadMode = "typed",
  rhsMode: ReadMode = "typed",
): Comparison {
  const c = new Comparer(lhsMode === "typed", rhsMode === "typed");
  c.value(shape, lhs ?? EMPTY_STRUCT, rhs ?? EMPTY_STRUCT);
  return { added: c.added, modified: c.modified, removed: c.removed };
}

/** Go's zero struct. */
export const EMPTY_STRUCT: Readonly<Record<string, unknown>> = Object.freeze({});

/**
 * A struct field's value as Go holds it, given its JSON value: undefined when Go leaves it out of
 * the object (nil pointers, `omitempty` zeros), Go's zero value where Go always has one (a
 * non-pointer struct, list, map or scalar the JSON leaves out or sets to null).
 */
export function goValue(fd: FieldDef, v: unknown): unknown {
  if (v === undefined || v === null) return fd.pointer ? undefined : zeroValue(fd);
  if (fd.omitempty && !fd.pointer && isGoEmpty(fd, v)) return undefined;
  return v;
}

function isGoEmpty(fd: FieldDef, v: unknown): boolean {
  switch (fd.type.kind) {
    case "array":
      return Array.isArray(v) && v.length === 0;
    case "map":
      return isObject(v) && isEmptyObject(v);
    case "message":
      return typeOf(fd.type.type)?.special === "list" && Array.isArray(v) && v.length === 0;
    default:
      return v === "" || v === 0 || v === false;
  }
}

/** Go's zero value of a non-pointer field as it appears in the object (undefined: left out). */
function zeroValue(fd: FieldDef): unknown {
  const t = fd.type;
  if (t.kind === "message") {
    const def = typeOf(t.type);
    if (!def) return undefined;
    switch (def.special) {
      case undefined:
        return EMPTY_STRUCT;
      case "intorstring":
        return 0;
      case "quantity":
        return "0";
      case "duration":
        return "0s";
      case "groupversion":
        return fd.omitempty ? undefined : "";
      case "list":
        return fd.omitempty ? undefined : null;
      default:
        // Time and MicroTime (a zero time is null), RawExtension, FieldsV1.
        return null;
    }
  }
  if (fd.omitempty) return undefined;
  switch (t.kind) {
    case "string":
      return "";
    case "int32":
    case "int64":
      return 0;
    case "bool":
      return false;
    default:
      return null;
  }
}

class Comparer {
  readonly added = new FieldSet();
  readonly modified = new FieldSet();
  readonly removed = new FieldSet();
  private readonly path: PathElement[] = [];

  constructor(
    private readonly lTyped: boolean,
    private readonly rTyped: boolean,
  ) {}

  value(shape: Shape, l: unknown, r: unknown): void {
    if (l === undefined && r === undefined) return;
    if (l === r && this.lTyped === this.rTyped) return;
    const kind = valueKind(shape, l, r);
    if (kind === "map" && !isAtomic(shape) && !(emptyMap(l) && emptyMap(r))) {
      this.map(shape, l, r);
    } else if (
      kind === "list" &&
      (shape as Shape & { k: "list" }).rel !== "atomic" &&
      !(emptyList(l) && emptyList(r))
    ) {
      if (!this.list(shape as Shape & { k: "list" }, l, r)) return;
    } else {
      this.leaf(l, r);
      return;
    }
    if (this.path.length === 0) return;
    if (l === undefined) this.added.insert(this.path);
    else if (r === undefined) this.removed.insert(this.path);
  }

  private leaf(l: unknown, r: unknown): void {
    if (this.path.length === 0) return;
    if (l === undefined) this.added.insert(this.path);
    else if (r === undefined) this.removed.insert(this.path);
    else if (!deepEqual(l, r)) this.modified.insert(this.path);
  }

  private map(shape: Shape, l: unknown, r: unknown): void {
    const lo = isObject(l) ? l : undefined;
    const ro = isObject(r) ? r : undefined;
    const visit = (key: string): void => {
      let child: Shape = DEDUCED;
      let pe: PathElement | undefined;
      let lv: unknown;
      let rv: unknown;
      const fd = shape.k === "struct" ? shape.type.jsonFields.get(key) : undefined;
      if (fd) {
        if (key === "managedFields" && (shape as { type: TypeDef }).type.name === OBJECT_META) {
          return;
        }
        child = fieldShape(fd);
        pe = fieldElementOf(fd);
        lv = lo && this.view(this.lTyped, fd, lo[key]);
        rv = ro && this.view(this.rTyped, fd, ro[key]);
      } else {
        if (shape.k === "map") child = shape.values;
        lv = lo?.[key];
        rv = ro?.[key];
        if (lv === undefined && rv === undefined) return;
      }
      this.path.push(pe ?? fieldElement(key));
      this.value(child, lv, rv);
      this.path.pop();
    };
    if (lo) for (const key in lo) visit(key);
    if (ro) for (const key in ro) if (!lo || !(key in lo)) visit(key);
  }

  private view(typed: boolean, fd: FieldDef, raw: unknown): unknown {
    return typed ? goValue(fd, raw) : raw;
  }

  /** False when an item cannot be keyed (the list was compared whole instead). */
  private list(shape: Shape & { k: "list" }, l: unknown, r: unknown): boolean {
    const la = Array.isArray(l) ? l : [];
    const ra = Array.isArray(r) ? r : [];
    const lp = itemElements(shape, la);
    const rp = itemElements(shape, ra);
    if (!lp || !rp) {
      this.leaf(l, r);
      return false;
    }
    const groups = new Map<string, { pe: PathElement; l: unknown[]; r: unknown[] }>();
    lp.forEach((pe, i) => {
      let g = groups.get(pe.id);
      if (!g) groups.set(pe.id, (g = { pe, l: [], r: [] }));
      g.l.push(la[i]);
    });
    rp.forEach((pe, i) => {
      let g = groups.get(pe.id);
      if (!g) groups.set(pe.id, (g = { pe, l: [], r: [] }));
      g.r.push(ra[i]);
    });
    for (const g of groups.values()) {
      this.path.push(g.pe);
      if (g.l.length <= 1 && g.r.length <= 1) {
        this.value(shape.items, g.l[0], g.r[0]);
      } else if (g.l.length >= 2 && g.r.length >= 2) {
        if (!deepEqual(g.l, g.r)) this.modified.insert(this.path);
      } else if (g.l.length >= 2) {
        if (g.r.length) this.value(shape.items, undefined, g.r[0]);
        this.removed.insert(this.path);
      } else {
        if (g.l.length) this.value(shape.items, g.l[0], undefined);
        this.added.insert(this.path);
      }
      this.path.pop();
    }
    return true;
  }
}

function emptyMap(v: unknown): boolean {
  return v === undefined || v === null || (isObject(v) && isEmptyObject(v));
}

function emptyList(v: unknown): boolean {
  return v === undefined || v === null || (Array.isArray(v) && v.length === 0);
}

// ---------------------------------------------------------------------------------------------
// What a create sets

/** A JSON string literal, without calling JSON.stringify for the common plain case. */
function quoted(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c) return JSON.stringify(s);
  }
  return '"' + s + '"';
}

const ROOT = fieldElement("");

/** A node of the trie createdFieldsV1JSON builds: whether its path is a member, and what is below. */
class Node {
  member = false;
  kids: Node[] | undefined;
  /** The kids by element id, once there are more than a few to search. */
  private index: Map<string, Node> | undefined;

  constructor(readonly pe: PathElement) {}

  kid(pe: PathElement): Node {
    const kids = (this.kids ??= []);
    if (this.index) {
      const k = this.index.get(pe.id);
      if (k) return k;
    } else {
      for (let i = kids.length - 1; i >= 0; i--) if (kids[i]!.pe.id === pe.id) return kids[i]!;
    }
    const n = new Node(pe);
    kids.push(n);
    if (this.index) this.index.set(pe.id, n);
    else if (kids.length > 8) this.index = new Map(kids.map((k) => [k.pe.id, k]));
    return n;
  }

  /** FieldsV1 JSON of this node's subtree; "" when nothing is set in it. */
  json(): string {
    const kids = this.kids;
    if (!kids) return this.member ? "{}" : "";
    // Objects mostly hold their fields in order already: sort only when they do not.
    for (let i = 1; i < kids.length; i++) {
      if (comparePathElements(kids[i - 1]!.pe, kids[i]!.pe) > 0) {
        kids.sort((a, b) => comparePathElements(a.pe, b.pe));
        break;
      }
    }
    let out = this.member ? '{".":{}' : "{";
    let any = false;
    for (const node of kids) {
      const sub = node.json();
      if (sub === "") continue;
      if (any || this.member) out += ",";
      out += quoted(node.pe.id) + ":" + sub;
      any = true;
    }
    if (!any) return this.member ? "{}" : "";
    return out + "}";
  }
}

/**
 * The FieldsV1 JSON text of the fields a create of `obj` sets (what `compare(shape, undefined,
 * obj)` finds added or modified), without the top-level fields in `skip` and their subtrees, and
 * without the exact paths in `strip` (their subtrees stay): the same answer as building those sets
 * and emitting their union, in one walk, without intermediate sets or objects. "" when nothing is
 * left. The comparison rules are Comparer's, with the left side always Go's zero value.
 */
export function createdFieldsV1JSON(
  shape: Shape,
  obj: unknown,
  skip: ReadonlySet<string>,
  strip: FieldSet,
): string {
  const root = new Node(ROOT);
  const lo = EMPTY_STRUCT;
  const ro = isObject(obj) ? obj : undefined;
  if (!ro || valueKind(shape, lo, ro) !== "map" || isAtomic(shape)) return "";
  createdMap(shape, lo, ro, root, skip);
  stripExact(root, strip);
  return root.json();
}

function stripExact(node: Node, strip: FieldSet): void {
  if (!node.kids) return;
  for (const kid of node.kids) {
    if (strip.hasMember(kid.pe)) kid.member = false;
    const below = strip.child(kid.pe);
    if (below) stripExact(kid, below);
  }
}

function createdValue(shape: Shape, l: unknown, r: unknown, parent: Node, pe: PathElement): void {
  if (l === undefined && r === undefined) return;
  if (l === r) return;
  const kind = valueKind(shape, l, r);
  if (kind === "map" && !isAtomic(shape) && !(emptyMap(l) && emptyMap(r))) {
    createdMap(shape, l, r, parent.kid(pe), undefined);
  } else if (
    kind === "list" &&
    (shape as Shape & { k: "list" }).rel !== "atomic" &&
    !(emptyList(l) && emptyList(r))
  ) {
    if (!createdList(shape as Shape & { k: "list" }, l, r, parent, pe)) return;
  } else {
    if (l === undefined || (r !== undefined && !deepEqual(l, r))) parent.kid(pe).member = true;
    return;
  }
  if (l === undefined) parent.kid(pe).member = true;
}

function createdMap(
  shape: Shape,
  l: unknown,
  r: unknown,
  node: Node,
  skip: ReadonlySet<string> | undefined,
): void {
  const lo = isObject(l) ? l : undefined;
  const ro = isObject(r) ? r : undefined;
  if (lo) for (const key in lo) createdKey(shape, lo, ro, key, node, skip);
  if (ro) for (const key in ro) if (!lo || !(key in lo)) createdKey(shape, lo, ro, key, node, skip);
}

function createdKey(
  shape: Shape,
  lo: Record<string, unknown> | undefined,
  ro: Record<string, unknown> | undefined,
  key: string,
  node: Node,
  skip: ReadonlySet<string> | undefined,
): void {
  if (skip?.has(key)) return;
  const fd = shape.k === "struct" ? shape.type.jsonFields.get(key) : undefined;
  if (fd) {
    if (key === "managedFields" && (shape as { type: TypeDef }).type.name === OBJECT_META) return;
    createdValue(
      fieldShape(fd),
      lo && goValue(fd, lo[key]),
      ro && goValue(fd, ro[key]),
      node,
      fieldElementOf(fd),
    );
  } else {
    const lv = lo?.[key];
    const rv = ro?.[key];
    if (lv === undefined && rv === undefined) return;
    createdValue(shape.k === "map" ? shape.values : DEDUCED, lv, rv, node, fieldElement(key));
  }
}

/** False when an item cannot be keyed (the list was taken whole instead). */
function createdList(
  shape: Shape & { k: "list" },
  l: unknown,
  r: unknown,
  parent: Node,
  pe: PathElement,
): boolean {
  const la = Array.isArray(l) ? l : [];
  const ra = Array.isArray(r) ? r : [];
  const lp = itemElements(shape, la);
  const rp = itemElements(shape, ra);
  if (!lp || !rp) {
    if (l === undefined || (r !== undefined && !deepEqual(l, r))) parent.kid(pe).member = true;
    return false;
  }
  const groups = new Map<string, { pe: PathElement; l: unknown[]; r: unknown[] }>();
  lp.forEach((p, i) => {
    let g = groups.get(p.id);
    if (!g) groups.set(p.id, (g = { pe: p, l: [], r: [] }));
    g.l.push(la[i]);
  });
  rp.forEach((p, i) => {
    let g = groups.get(p.id);
    if (!g) groups.set(p.id, (g = { pe: p, l: [], r: [] }));
    g.r.push(ra[i]);
  });
  if (groups.size === 0) return true;
  const node = parent.kid(pe);
  for (const g of groups.values()) {
    if (g.l.length <= 1 && g.r.length <= 1) {
      createdValue(shape.items, g.l[0], g.r[0], node, g.pe);
    } else if (g.l.length >= 2 && g.r.length >= 2) {
      if (!deepEqual(g.l, g.r)) node.kid(g.pe).member = true;
    } else if (g.l.length >= 2) {
      if (g.r.length) createdValue(shape.items, undefined, g.r[0], node, g.pe);
    } else {
      if (g.l.length) createdValue(shape.items, g.l[0], undefined, node, g.pe);
      node.kid(g.pe).member = true;
    }
  }
  return true;
}
