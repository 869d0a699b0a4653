/**
 * The structural schema of the built-in Kubernetes API types: wire layout (protobuf numbers and
 * types), JSON names and Go JSON semantics (pointer, omitempty, inline), strategic-merge-patch and
 * list/map/struct markers, and the registered kinds of every served group version.
 *
 * Types are named by their OpenAPI definition names (`io.k8s.api.apps.v1.Deployment`,
 * `io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`, ...).
 *
 * Data notation (./generated.ts, written by scripts/gen-schema.mjs): `types[alias][Name]` is a
 * string of `;`-separated entries. An entry starting with `%` is a type attribute (`x=SPECIAL`
 * for a type with its own JSON form, `x=list` for a Go slice type carried as a one-field `items`
 * message, `st=`/`mt=`/`lt=` struct/map/list type markers). Any other entry is a field:
 * `JSON NUMBER TYPE FLAGS [KEY=VALUE...]` where JSON is the JSON name (`~` when embedded and
 * inlined), NUMBER the protobuf number (0: not on the wire), TYPE one of `s` string, `i32`, `i64`,
 * `b` bool, `y` bytes, a message (`Name` in the same package, `alias.Name` elsewhere), `[T`
 * repeated T, `{T` map from string to T; FLAGS is `-` or letters from `*` pointer, `o` omitempty,
 * `?` +optional, `!` +required; KEY is `ps` patch strategy, `mk` patch merge key, `lt` list type,
 * `lk` list map keys (comma-separated), `mt` map type, `st` struct type.
 */
import { kinds as rawKinds, packages, types as rawTypes } from "./generated.js";

export type ScalarKind = "string" | "int32" | "int64" | "bool" | "bytes";

/** The type of a field value. Map keys are always strings. */
export type ValueType =
  | { kind: ScalarKind }
  | { kind: "message"; type: string }
  | { kind: "array"; items: ValueType }
  | { kind: "map"; values: ValueType };

/**
 * Types whose JSON form is not their field list: `time` (RFC 3339, whole seconds, zero → null),
 * `microtime` (RFC 3339 with 6 fractional digits), `duration` (Go duration string), `quantity`
 * (string), `intorstring` (number or string), `rawextension` (embedded JSON), `fieldsv1`
 * (embedded JSON), `groupversion` ("group/version"), `unknown` (runtime.Unknown), and `list`
 * (a named Go slice: the JSON form is the array of its `items`).
 */
export type SpecialKind =
  | "time"
  | "microtime"
  | "duration"
  | "quantity"
  | "intorstring"
  | "rawextension"
  | "fieldsv1"
  | "groupversion"
  | "unknown"
  | "list";

export type ListType = "atomic" | "set" | "map";
export type MapOrStructType = "atomic" | "granular";

export interface FieldDef {
  /** JSON name; "" for an embedded struct whose fields appear in the parent object. */
  readonly json: string;
  /** Protobuf field number; 0 when the field is not on the wire (inline TypeMeta). */
  readonly number: number;
  readonly type: ValueType;
  /** Go pointer: absent and zero are distinct; written to protobuf only when set. */
  readonly pointer: boolean;
  /** Go `omitempty`: a zero scalar, empty list or map, or nil pointer is left out of JSON. */
  readonly omitempty: boolean;
  readonly inline: boolean;
  /** `+optional` / `+required` markers. */
  readonly optional: boolean;
  readonly required: boolean;
  readonly patchStrategy?: string;
  readonly patchMergeKey?: string;
  readonly listType?: ListType;
  readonly listMapKeys?: readonly string[];
  readonly mapType?: MapOrStructType;
  readonly structType?: MapOrStructType;
}

export interface TypeDef {
  /** OpenAPI definition name. */
  readonly name: string;
  readonly special?: SpecialKind;
  readonly structType?: MapOrStructType;
  readonly mapType?: MapOrStructType;
  readonly listType?: ListType;
  /** Fields in Go declaration order, inline entries included (not flattened). */
  readonly fields: readonly FieldDef[];
  /** JSON name → field, with inline structs flattened (the JSON view of the type). */
  readonly jsonFields: ReadonlyMap<string, FieldDef>;
}

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

const SPECIALS = new Set<string>([
  "time",
  "microtime",
  "duration",
  "quantity",
  "intorstring",
  "rawextension",
  "fieldsv1",
  "groupversion",
  "unknown",
  "list",
]);

const SCALARS: Record<string, ScalarKind> = {
  s: "string",
  i32: "int32",
  i64: "int64",
  b: "bool",
  y: "bytes",
};

function fullName(alias: string, ref: string): string {
  const dot = ref.lastIndexOf(".");
  if (dot < 0) return `${packages[alias]}.${ref}`;
  const prefix = packages[ref.slice(0, dot)];
  if (prefix === undefined) throw new Error(`schema: unknown package in reference ${ref}`);
  return `${prefix}.${ref.slice(dot + 1)}`;
}

function parseValueType(alias: string, code: string): ValueType {
  const c = code[0];
  if (c === "[") return { kind: "array", items: parseValueType(alias, code.slice(1)) };
  if (c === "{") return { kind: "map", values: parseValueType(alias, code.slice(1)) };
  const scalar = SCALARS[code];
  if (scalar) return { kind: scalar };
  return { kind: "message", type: fullName(alias, code) };
}

/** OpenAPI name → [package alias, notation string], for lazy parsing. */
const index = new Map<string, [string, string]>();
for (const [alias, defs] of Object.entries(rawTypes)) {
  const prefix = packages[alias];
  for (const [name, text] of Object.entries(defs)) index.set(`${prefix}.${name}`, [alias, text]);
}

const cache = new Map<string, TypeDef>();

function parseType(name: string, alias: string, text: string): TypeDef {
  const fields: FieldDef[] = [];
  let special: SpecialKind | undefined;
  let structType: MapOrStructType | undefined;
  let mapType: MapOrStructType | undefined;
  let listType: ListType | undefined;
  for (const entry of text.split(";")) {
    if (entry.startsWith("%")) {
      const [k, v = ""] = entry.slice(1).split("=");
      if (k === "x" && SPECIALS.has(v)) special = v as SpecialKind;
      else if (k === "st") structType = v as MapOrStructType;
      else if (k === "mt") mapType = v as MapOrStructType;
      else if (k === "lt") listType = v as ListType;
      continue;
    }
    const [json = "", num = "0", type = "", flags = "-", ...extras] = entry.split(" ");
    const f: {
      -readonly [K in keyof FieldDef]: FieldDef[K];
    } = {
      json: json === "~" ? "" : json,
      number: Number(num),
      type: parseValueType(alias, type),
      pointer: flags.includes("*"),
      omitempty: flags.includes("o"),
      inline: json === "~",
      optional: flags.includes("?"),
      required: flags.includes("!"),
    };
    for (const x of extras) {
      const eq = x.indexOf("=");
      const k = x.slice(0, eq);
      const v = x.slice(eq + 1);
      if (k === "ps") f.patchStrategy = v;
      else if (k === "mk") f.patchMergeKey = v;
      else if (k === "lt") f.listType = v as ListType;
      else if (k === "lk") f.listMapKeys = v.split(",");
      else if (k === "mt") f.mapType = v as MapOrStructType;
      else if (k === "st") f.structType = v as MapOrStructType;
    }
    fields.push(f);
  }
  let flat: Map<string, FieldDef> | undefined;
  const def: TypeDef = {
    name,
    ...(special ? { special } : {}),
    ...(structType ? { structType } : {}),
    ...(mapType ? { mapType } : {}),
    ...(listType ? { listType } : {}),
    fields,
    get jsonFields(): ReadonlyMap<string, FieldDef> {
      return (flat ??= flatten(fields));
    },
  };
  return def;
}

/**
 * Go's rule for embedded structs: a field of the outer struct hides inline fields of the same name;
 * among inline fields, the first declared wins.
 */
function flatten(fields: readonly FieldDef[]): Map<string, FieldDef> {
  const out = new Map<string, FieldDef>();
  for (const f of fields) if (!f.inline) out.set(f.json, f);
  for (const f of fields) {
    if (!f.inline || f.type.kind !== "message") continue;
    const inner = typeOf(f.type.type);
    if (!inner) continue;
    for (const [k, v] of inner.jsonFields) if (!out.has(k)) out.set(k, v);
  }
  return out;
}

/** The type with this OpenAPI definition name. */
export function typeOf(name: string): TypeDef | undefined {
  let def = cache.get(name);
  if (def) return def;
  const raw = index.get(name);
  if (!raw) return undefined;
  def = parseType(name, raw[0], raw[1]);
  cache.set(name, def);
  return def;
}

/** Every type name in the schema. */
export function typeNames(): string[] {
  return [...index.keys()];
}

/** apiVersion → kind → type name. */
const kindIndex = new Map<string, Map<string, string>>();
for (const [apiVersion, refs] of Object.entries(rawKinds)) {
  const m = new Map<string, string>();
  for (const ref of refs.split(" ")) {
    const dot = ref.lastIndexOf(".");
    m.set(ref.slice(dot + 1), fullName(ref.slice(0, dot), ref));
  }
  kindIndex.set(apiVersion, m);
}

function apiVersionOf(gvk: { group: string; version: string }): string {
  return gvk.group ? `${gvk.group}/${gvk.version}` : gvk.version;
}

/** The type name registered for a kind in a group version (as upstream's scheme registers it). */
export function typeNameForKind(gvk: GroupVersionKind): string | undefined {
  return kindIndex.get(apiVersionOf(gvk))?.get(gvk.kind);
}

/** Like typeNameForKind, keyed by the `apiVersion` string of an object ("v1", "apps/v1"). */
export function typeNameForApiVersionKind(apiVersion: string, kind: string): string | undefined {
  return kindIndex.get(apiVersion)?.get(kind);
}

export function typeForKind(gvk: GroupVersionKind): TypeDef | undefined {
  const name = typeNameForKind(gvk);
  return name === undefined ? undefined : typeOf(name);
}

export function isKnownKind(gvk: GroupVersionKind): boolean {
  return typeNameForKind(gvk) !== undefined;
}

/**
 * Every registered kind. Besides each group's own kinds this includes what every group version
 * registers from meta/v1 (WatchEvent and the option kinds: ListOptions, GetOptions,
 * DeleteOptions, CreateOptions, UpdateOptions, PatchOptions), the unversioned kinds under "v1"
 * (Status, APIVersions, APIGroupList, APIGroup, APIResourceList), and meta.k8s.io/v1.
 */
export function allKinds(): (GroupVersionKind & { type: string })[] {
  const out: (GroupVersionKind & { type: string })[] = [];
  for (const [apiVersion, m] of kindIndex) {
    const slash = apiVersion.indexOf("/");
    const group = slash < 0 ? "" : apiVersion.slice(0, slash);
    const version = apiVersion.slice(slash + 1);
    for (const [kind, type] of m) out.push({ group, version, kind, type });
  }
  return out;
}

/** The field with this JSON name (inline structs flattened), by type name or definition. */
export function field(type: string | TypeDef, jsonName: string): FieldDef | undefined {
  const def = typeof type === "string" ? typeOf(type) : type;
  return def?.jsonFields.get(jsonName);
}

/**
 * The message type a field leads to: its own type, or its elements' (arrays) or values' (maps)
 * type; undefined for scalars and containers of scalars.
 */
export function messageTypeOf(f: FieldDef): string | undefined {
  let t = f.type;
  while (t.kind === "array" || t.kind === "map") t = t.kind === "array" ? t.items : t.values;
  return t.kind === "message" ? t.type : undefined;
}

export interface PatchMeta {
  /** "merge", "replace", "retainKeys", "merge,retainKeys"; absent: lists are replaced. */
  strategy?: string;
  mergeKey?: string;
  listType?: ListType;
  listMapKeys?: readonly string[];
}

/** Strategic-merge-patch and list metadata of a field, or undefined if there is no such field. */
export function patchMeta(typeName: string, jsonName: string): PatchMeta | undefined {
  const f = field(typeName, jsonName);
  if (!f) return undefined;
  const out: PatchMeta = {};
  if (f.patchStrategy) out.strategy = f.patchStrategy;
  if (f.patchMergeKey) out.mergeKey = f.patchMergeKey;
  if (f.listType) out.listType = f.listType;
  if (f.listMapKeys) out.listMapKeys = f.listMapKeys;
  return out;
}

/**
 * The schema in the shape strategic merge patch consumes: a field's patch metadata and the type
 * of the objects below it (elements for lists; undefined for maps and scalars, and for types with
 * their own JSON form).
 */
export const patchSchema = {
  field(
    type: string,
    name: string,
  ): { meta: { strategy?: string; mergeKey?: string }; type?: string } | undefined {
    const f = field(type, name);
    if (!f) return undefined;
    const meta: { strategy?: string; mergeKey?: string } = {};
    if (f.patchStrategy) meta.strategy = f.patchStrategy;
    if (f.patchMergeKey) meta.mergeKey = f.patchMergeKey;
    let t = f.type;
    if (t.kind === "array") t = t.items;
    if (t.kind !== "message") return { meta };
    const def = typeOf(t.type);
    if (!def || def.special) return { meta };
    return { meta, type: t.type };
  },
};

/** Upstream's cap on collected strict decoding errors. */
const MAX_STRICT_ERRORS = 100;

/**
 * The fields of a JSON object that its type does not declare, as upstream's strict decoding
 * (fieldValidation=Strict/Warn, sigs.k8s.io/json) reports them: the path from the object root,
 * keys joined by "." and list indices as "[i]", no leading dot, e.g. `spec.replicasx` or
 * `spec.template.spec.containers[0].imagex`; map values are entered with their key
 * (`spec.extra.KEY...`). Names match case-sensitively. Upstream's messages are
 * `unknown field "PATH"`, joined as in strictDecodingMessage. Values of the wrong JSON type are not
 * descended into; types with their own JSON form (Time, Quantity, RawExtension, FieldsV1, ...)
 * accept anything. At most 100 paths, in document order.
 */
export function unknownFields(typeName: string, object: unknown): string[] {
  const out: string[] = [];
  const def = typeOf(typeName);
  if (def) walkObject(def, object, "", out);
  return out;
}

/** Upstream's error text for unknown fields: `strict decoding error: unknown field "a", ...`. */
export function strictDecodingMessage(paths: readonly string[]): string {
  return (
    "strict decoding error: " + paths.map((p) => `unknown field ${JSON.stringify(p)}`).join(", ")
  );
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function walkObject(def: TypeDef, v: unknown, path: string, out: string[]): void {
  if (def.special) {
    if (def.special === "list" && Array.isArray(v)) {
      const items = def.fields[0];
      if (items) walkArray(items.type, v, path, out);
    }
    return;
  }
  if (!isPlainObject(v)) return;
  const fields = def.jsonFields;
  for (const key of Object.keys(v)) {
    const p = path ? `${path}.${key}` : key;
    const f = fields.get(key);
    if (!f) {
      if (out.length < MAX_STRICT_ERRORS && !out.includes(p)) out.push(p);
      continue;
    }
    walkValue(f.type, v[key], p, out);
  }
}

function walkArray(t: ValueType, v: unknown[], path: string, out: string[]): void {
  if (t.kind !== "array") return;
  for (let i = 0; i < v.length; i++) walkValue(t.items, v[i], `${path}[${i}]`, out);
}

function walkValue(t: ValueType, v: unknown, path: string, out: string[]): void {
  if (v === null || v === undefined) return;
  switch (t.kind) {
    case "message": {
      const def = typeOf(t.type);
      if (def) walkObject(def, v, path, out);
      return;
    }
    case "array":
      if (Array.isArray(v)) walkArray(t, v, path, out);
      return;
    case "map":
      if (!isPlainObject(v)) return;
      if (t.values.kind === "message" || t.values.kind === "array" || t.values.kind === "map") {
        for (const key of Object.keys(v)) walkValue(t.values, v[key], `${path}.${key}`, out);
      }
      return;
    default:
      return;
  }
}
