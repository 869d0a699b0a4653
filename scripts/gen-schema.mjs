#!/usr/bin/env node
// Generates src/api/schema/generated.ts: the structural facts (wire numbers and types, JSON names,
// pointer/omitempty/inline, patch and list/map/struct markers, registered kinds) of the built-in
// Kubernetes API types, read from local checkouts of kubernetes/api and kubernetes/apimachinery.
//
//   node scripts/gen-schema.mjs <kubernetes-api-checkout> <apimachinery-checkout> [version-label]
//
// Only facts are emitted (no descriptions or comments). The result is formatted with the repo's
// prettier when it is installed. The data format is documented in src/api/schema/index.ts.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const [apiRoot, machineryRoot] = process.argv.slice(2);
if (!apiRoot || !machineryRoot) {
  console.error(
    "usage: node scripts/gen-schema.mjs <kubernetes-api-dir> <apimachinery-dir> [version-label]",
  );
  process.exit(2);
}
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const outFile = join(repoRoot, "src/api/schema/generated.ts");

/** API group directories (under kubernetes/api) whose types and kinds are emitted. */
const GROUPS = [
  "core/v1",
  "apps/v1",
  "batch/v1",
  "coordination/v1",
  "discovery/v1",
  "events/v1",
  "rbac/v1",
  "authorization/v1",
  "authentication/v1",
  "certificates/v1",
  "networking/v1",
  "policy/v1",
  "scheduling/v1",
  "storage/v1",
  "node/v1",
  "autoscaling/v1",
  "autoscaling/v2",
  "admissionregistration/v1",
  "flowcontrol/v1",
];

/** apimachinery packages: directory → alias used in the generated data. */
const MACHINERY = {
  "pkg/apis/meta/v1": "meta.v1",
  "pkg/runtime": "runtime",
  "pkg/util/intstr": "intstr",
  "pkg/api/resource": "resource",
};

/**
 * Types whose JSON form comes from a hand-written marshaller rather than their struct fields; the
 * runtime codec implements each one. The generator fails if a reachable type has a custom JSON
 * marshaller that is not listed here.
 */
const SPECIAL = {
  "meta.v1.Time": "time",
  "meta.v1.MicroTime": "microtime",
  "meta.v1.Duration": "duration",
  "meta.v1.FieldsV1": "fieldsv1",
  "meta.v1.GroupVersion": "groupversion",
  "runtime.RawExtension": "rawextension",
  "runtime.Unknown": "unknown",
  "intstr.IntOrString": "intorstring",
  "resource.Quantity": "quantity",
};

const problems = [];
function fail(msg) {
  problems.push(msg);
}

// ---------------------------------------------------------------------------------------------
// .proto parsing

function stripProtoComments(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/[^\n]*/g, "");
}

/** `[label] type name = number [options]`, where type may be `map<K, V>`. */
const FIELD_RE = new RegExp(
  String.raw`^(optional|repeated|required)?\s*(map<\s*([\w.]+)\s*,\s*([\w.]+)\s*>|[\w.]+)` +
    String.raw`\s+(\w+)\s*=\s*(\d+)\s*(\[[^\]]*\])?$`,
);

/** Parses a generated.proto into {pkg, messages: Map<name, field[]>} and checks completeness. */
function parseProto(file) {
  const text = stripProtoComments(readFileSync(file, "utf8"));
  const pkg = /^\s*package\s+([\w.]+)\s*;/m.exec(text)?.[1];
  if (!pkg) throw new Error(`${file}: no package`);
  const messages = new Map();
  const msgRe = /\bmessage\s+(\w+)\s*\{/g;
  let m;
  let consumedTo = 0;
  const outside = [];
  while ((m = msgRe.exec(text))) {
    outside.push(text.slice(consumedTo, m.index));
    const bodyStart = msgRe.lastIndex;
    const bodyEnd = text.indexOf("}", bodyStart);
    const body = text.slice(bodyStart, bodyEnd);
    if (body.includes("{")) throw new Error(`${file}: nested block in message ${m[1]}`);
    consumedTo = bodyEnd + 1;
    msgRe.lastIndex = consumedTo;
    const fields = [];
    for (const raw of body.split(";")) {
      const stmt = raw.trim().replace(/\s+/g, " ");
      if (!stmt) continue;
      if (/^option\s/.test(stmt)) continue;
      const f = FIELD_RE.exec(stmt);
      if (!f) throw new Error(`${file}: message ${m[1]}: unparsed statement "${stmt}"`);
      if (f[7]) throw new Error(`${file}: message ${m[1]}: field options not supported: ${stmt}`);
      const label = f[1] ?? "optional";
      if (f[3]) {
        fields.push({ name: f[5], num: +f[6], label: "map", key: f[3], value: f[4] });
      } else {
        fields.push({ name: f[5], num: +f[6], label, type: f[2] });
      }
    }
    messages.set(m[1], fields);
  }
  outside.push(text.slice(consumedTo));
  for (const chunk of outside) {
    for (const raw of chunk.split(";")) {
      const stmt = raw.trim().replace(/\s+/g, " ");
      if (!stmt) continue;
      if (/^(syntax|package|import|option)\b/.test(stmt)) continue;
      throw new Error(`${file}: unparsed top-level statement "${stmt}"`);
    }
  }
  return { pkg, messages };
}

// ---------------------------------------------------------------------------------------------
// Go parsing (type declarations, struct fields with tags and comment markers)

function parseTag(tag) {
  const out = {};
  const re = /(\w+):"((?:[^"\\]|\\.)*)"/g;
  let m;
  while ((m = re.exec(tag))) out[m[1]] = m[2];
  return out;
}

function markersOf(lines) {
  const out = {};
  for (const line of lines) {
    const m = /^\/\/\s*\+([\w.:-]+)(?:=(.*))?$/.exec(line.trim());
    if (!m) continue;
    const key = m[1];
    const value = (m[2] ?? "").trim();
    (out[key] ??= []).push(value);
  }
  return out;
}

/** Replaces Go block comments with blank lines, leaving line comments and literals alone. */
function blankBlockComments(src) {
  let res = "";
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (c === "/" && src[i + 1] === "/") {
      const e = src.indexOf("\n", i);
      const end = e < 0 ? src.length : e;
      res += src.slice(i, end);
      i = end;
    } else if (c === "/" && src[i + 1] === "*") {
      const e = src.indexOf("*/", i + 2);
      const end = e < 0 ? src.length : e + 2;
      res += src.slice(i, end).replace(/[^\n]/g, "");
      i = end;
    } else if (c === '"' || c === "`" || c === "'") {
      let j = i + 1;
      while (j < src.length && src[j] !== c) j += c !== "`" && src[j] === "\\" ? 2 : 1;
      res += src.slice(i, j + 1);
      i = j + 1;
    } else {
      res += c;
      i++;
    }
  }
  return res;
}

/** Parses Go declarations of one package directory: structs, named types, JSON marshallers. */
function parseGoPackage(dir) {
  const files = readdirSync(dir).filter(
    (f) =>
      f.endsWith(".go") &&
      !f.endsWith("_test.go") &&
      !f.startsWith("zz_generated") &&
      f !== "generated.pb.go" &&
      !f.endsWith("_swagger_doc_generated.go"),
  );
  const structs = new Map();
  const named = new Map();
  const customJSON = new Set();
  const imports = new Map();
  for (const file of files) {
    const lines = blankBlockComments(readFileSync(join(dir, file), "utf8")).split("\n");
    let comments = [];
    let inImports = false;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      const t = line.trim();
      if (t.startsWith("import (")) {
        inImports = true;
        continue;
      }
      if (inImports) {
        if (t === ")") inImports = false;
        else {
          const im = /^(\w+)?\s*"([^"]+)"/.exec(t);
          if (im) imports.set(im[1] ?? im[2].split("/").pop(), im[2]);
        }
        continue;
      }
      const single = /^import\s+(\w+)?\s*"([^"]+)"/.exec(t);
      if (single) imports.set(single[1] ?? single[2].split("/").pop(), single[2]);
      const mj = /^func \((\w+ )?\*?(\w+)\) MarshalJSON\(\)/.exec(t);
      if (mj) customJSON.add(mj[2]);
      if (t.startsWith("//")) {
        comments.push(t);
        continue;
      }
      const sm = /^type (\w+) struct \{\s*$/.exec(line);
      if (sm) {
        const typeMarkers = markersOf(comments);
        comments = [];
        const fields = [];
        let fieldComments = [];
        let depth = 0;
        for (i++; i < lines.length; i++) {
          const fl = lines[i].trim();
          if (fl.startsWith("//") && depth === 0) {
            fieldComments.push(fl);
            continue;
          }
          if (fl.startsWith("//")) continue;
          if (/^\}/.test(fl)) {
            if (depth === 0) break;
            depth--;
            continue;
          }
          if (fl.endsWith("{")) {
            depth++;
            fields.push({ unparsed: fl });
            continue;
          }
          if (fl === "" || depth > 0) continue;
          const fm = /^(?:(\w+)\s+)?([\w.*[\]{}]+)\s*(?:`([^`]*)`)?\s*(?:\/\/.*)?$/.exec(fl);
          const fmMap = /^(\w+)\s+(map\[[^\]]+\][\w.*[\]]+)\s*(?:`([^`]*)`)?\s*(?:\/\/.*)?$/.exec(
            fl,
          );
          const hit = fmMap ?? fm;
          if (!hit) {
            fields.push({ unparsed: `${dir}/${file}:${i + 1}: ${fl}` });
            continue;
          }
          const embedded = hit[1] === undefined;
          const goType = hit[2];
          fields.push({
            goName: embedded ? goType.replace(/^\*/, "").split(".").pop() : hit[1],
            goType,
            embedded,
            tags: parseTag(hit[3] ?? ""),
            markers: markersOf(fieldComments),
          });
          fieldComments = [];
        }
        structs.set(sm[1], { fields, markers: typeMarkers });
        continue;
      }
      const nm = /^type (\w+) (\S.*?)\s*(?:\/\/.*)?$/.exec(line);
      if (nm) {
        named.set(nm[1], { underlying: nm[2], markers: markersOf(comments) });
        comments = [];
        continue;
      }
      if (t !== "") comments = [];
    }
  }
  return { structs, named, customJSON, imports };
}

// ---------------------------------------------------------------------------------------------
// Packages

/** alias → {alias, protoPkg, prefix, messages, go} */
const packages = new Map();
/** proto package → alias */
const aliasOfProto = new Map();
/** Go import path → alias */
const aliasOfImport = new Map();

function addPackage(alias, dir, importPath) {
  const protoFile = join(dir, "generated.proto");
  if (!existsSync(protoFile)) throw new Error(`missing ${protoFile}`);
  const proto = parseProto(protoFile);
  const go = parseGoPackage(dir);
  const prefix = proto.pkg.replace(/^k8s\.io\./, "io.k8s.");
  packages.set(alias, { alias, protoPkg: proto.pkg, prefix, messages: proto.messages, go, dir });
  aliasOfProto.set(proto.pkg, alias);
  aliasOfImport.set(importPath, alias);
}

for (const [dir, alias] of Object.entries(MACHINERY)) {
  addPackage(alias, join(machineryRoot, dir), `k8s.io/apimachinery/${dir}`);
}
for (const g of GROUPS) {
  addPackage(g.replace("/", "."), join(apiRoot, g), `k8s.io/api/${g}`);
}

/** Source version label: third argument, else the checkouts' git tag, else "unknown". */
const version = (() => {
  if (process.argv[4]) return process.argv[4];
  const tags = [apiRoot, machineryRoot].map((root) => {
    try {
      return execFileSync("git", ["-C", root, "describe", "--tags", "--exact-match"], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      }).trim();
    } catch {
      return "";
    }
  });
  if (tags[0] && tags[0] === tags[1]) return tags[0];
  if (tags[0] || tags[1]) return `${tags[0] || "unknown"}/${tags[1] || "unknown"}`;
  return "unknown";
})();

// ---------------------------------------------------------------------------------------------
// Reference resolution

/** Resolves a proto type reference used in package `alias` to "alias.Name" or a scalar code. */
function protoRef(alias, type) {
  switch (type) {
    case "string":
      return "s";
    case "int32":
      return "i32";
    case "int64":
      return "i64";
    case "bool":
      return "b";
    case "bytes":
      return "y";
  }
  if (/^(double|float|u?int|s?fixed|sint)/.test(type)) {
    throw new Error(`unsupported proto scalar ${type}`);
  }
  if (!type.includes(".")) return `${alias}.${type}`;
  const full = type.replace(/^\./, "");
  const dot = full.lastIndexOf(".");
  const pkg = full.slice(0, dot);
  const a = aliasOfProto.get(pkg);
  if (!a) throw new Error(`reference to unknown proto package ${pkg} (${type})`);
  return `${a}.${full.slice(dot + 1)}`;
}

function splitRef(ref) {
  const dot = ref.lastIndexOf(".");
  return [ref.slice(0, dot), ref.slice(dot + 1)];
}

/** Underlying Go kind of a Go type expression in package `alias`: pointer/slice/map/bytes/other. */
function goShape(alias, goType) {
  if (goType.startsWith("*")) return { pointer: true, ...goShape(alias, goType.slice(1)) };
  if (goType === "[]byte") return { kind: "bytes" };
  if (goType.startsWith("[]")) return { kind: "slice", elem: goType.slice(2) };
  if (goType.startsWith("map[")) return { kind: "map" };
  let pkgAlias = alias;
  let name = goType;
  if (goType.includes(".")) {
    const [imp, n] = goType.split(".");
    const path = packages.get(alias).go.imports.get(imp);
    pkgAlias = path ? aliasOfImport.get(path) : undefined;
    name = n;
    if (!pkgAlias) return { kind: "other", name: goType };
  }
  const pkg = packages.get(pkgAlias);
  const nt = pkg.go.named.get(name);
  if (nt && !pkg.go.structs.has(name)) {
    const u = nt.underlying;
    if (u === "[]byte") return { kind: "bytes", named: `${pkgAlias}.${name}` };
    if (u.startsWith("[]"))
      return { kind: "slice", elem: u.slice(2), named: `${pkgAlias}.${name}` };
    if (u.startsWith("map[")) return { kind: "map", named: `${pkgAlias}.${name}` };
    return { kind: "scalar", named: `${pkgAlias}.${name}` };
  }
  if (pkg.go.structs.has(name)) return { kind: "struct", ref: `${pkgAlias}.${name}` };
  return { kind: "scalar", name };
}

// ---------------------------------------------------------------------------------------------
// Type building

/** "alias.Name" → generated type entry {attrs: string[], fields: string[]} */
const out = new Map();
const queue = [];
const wanted = new Set();

function want(ref) {
  if (/^(s|i32|i64|b|y)$/.test(ref)) return;
  if (wanted.has(ref)) return;
  wanted.add(ref);
  queue.push(ref);
}

function typeCode(ownAlias, ref) {
  if (/^(s|i32|i64|b|y)$/.test(ref)) return ref;
  const [a, n] = splitRef(ref);
  return a === ownAlias ? n : ref;
}

function listMarkers(markers, tags) {
  const extras = [];
  const ps = tags.patchStrategy;
  const mk = tags.patchMergeKey;
  const mps = markers.patchStrategy?.[0];
  const mmk = markers.patchMergeKey?.[0];
  if ((ps ?? "") !== (mps ?? "")) fail(`patchStrategy tag "${ps}" vs marker "${mps}"`);
  if ((mk ?? "") !== (mmk ?? "")) fail(`patchMergeKey tag "${mk}" vs marker "${mmk}"`);
  const strategy = ps ?? mps;
  const mergeKey = mk ?? mmk;
  if (strategy) extras.push(`ps=${strategy}`);
  if (mergeKey) extras.push(`mk=${mergeKey}`);
  if (markers.listType) extras.push(`lt=${markers.listType[0]}`);
  if (markers.listMapKey) extras.push(`lk=${markers.listMapKey.join(",")}`);
  if (markers.mapType) extras.push(`mt=${markers.mapType[0]}`);
  if (markers.structType) extras.push(`st=${markers.structType[0]}`);
  return extras;
}

function build(ref) {
  const [alias, name] = splitRef(ref);
  const pkg = packages.get(alias);
  if (!pkg) throw new Error(`unknown package for ${ref}`);
  const protoFields = pkg.messages.get(name);
  if (!protoFields) throw new Error(`no proto message for ${ref}`);
  let goStruct = pkg.go.structs.get(name);
  const goNamed = pkg.go.named.get(name);
  let goAlias = alias;
  if (!goStruct && goNamed && /^[\w.]+$/.test(goNamed.underlying)) {
    // A named type defined as another package's struct (e.g. type List metav1.List).
    const target = goShape(alias, goNamed.underlying);
    if (target.kind === "struct") {
      goAlias = splitRef(target.ref)[0];
      goStruct = packages.get(goAlias).go.structs.get(splitRef(target.ref)[1]);
    }
  }
  const attrs = [];
  const fields = [];
  const special = SPECIAL[ref];
  const protoOnly = () => {
    for (const pf of protoFields) {
      const t =
        pf.label === "map"
          ? `{${typeCode(alias, protoRef(alias, pf.value))}`
          : (pf.label === "repeated" ? "[" : "") + typeCode(alias, protoRef(alias, pf.type));
      fields.push(`${pf.name} ${pf.num} ${t} -`);
      if (pf.label === "map") want(protoRef(alias, pf.value));
      else want(protoRef(alias, pf.type));
    }
  };
  if (special) {
    attrs.push(`x=${special}`);
    protoOnly();
    out.set(ref, { attrs, fields });
    return;
  }
  if (pkg.go.customJSON.has(name)) {
    throw new Error(`${ref} has a custom JSON marshaller but no codec in SPECIAL`);
  }
  if (!goStruct) {
    // A named non-struct Go type carried as a one-field wrapper message (e.g. []string as "items").
    if (!goNamed) throw new Error(`${ref}: no Go declaration`);
    const u = goNamed.underlying;
    const only = protoFields[0];
    if (!u.startsWith("[]") || protoFields.length !== 1 || only.label !== "repeated") {
      throw new Error(`${ref}: unsupported wrapper shape (${u})`);
    }
    attrs.push("x=list");
    attrs.push(...listMarkers(goNamed.markers, {}));
    protoOnly();
    out.set(ref, { attrs, fields });
    return;
  }
  attrs.push(...listMarkers(goStruct.markers, {}).filter((e) => /^(st|mt|lt)=/.test(e)));
  for (const gf of goStruct.fields) {
    if (gf.unparsed) throw new Error(`${ref}: unparsed Go struct field ${gf.unparsed}`);
  }
  const byNum = new Map(protoFields.map((f) => [f.num, f]));
  const seen = new Set();
  for (const gf of goStruct.fields) {
    const jsonTag = gf.tags.json;
    const pbTag = gf.tags.protobuf;
    let jsonName;
    let omitempty = false;
    if (jsonTag === undefined) {
      jsonName = gf.embedded ? "" : gf.goName;
    } else {
      const parts = jsonTag.split(",");
      jsonName = parts[0];
      omitempty = parts.includes("omitempty");
      if (jsonName === "-" && parts.length === 1) {
        if (pbTag && pbTag !== "-") fail(`${ref}.${gf.goName}: json "-" but on the wire`);
        continue;
      }
      if (parts.includes("string")) fail(`${ref}.${gf.goName}: json string option unsupported`);
    }
    const inline = gf.embedded && jsonName === "";
    if (!gf.embedded && jsonName === "") jsonName = gf.goName;
    const shape = goShape(goAlias, gf.goType);
    const flags =
      (shape.pointer ? "*" : "") +
      (omitempty ? "o" : "") +
      (gf.markers.optional ? "?" : "") +
      (gf.markers.required ? "!" : "");
    const extras = listMarkers(gf.markers, gf.tags);
    const jn = inline ? "~" : jsonName;
    if (!pbTag || pbTag === "-") {
      // Not on the wire: only inline TypeMeta is expected here.
      if (!(inline && /(^|\.)TypeMeta$/.test(gf.goType))) {
        fail(`${ref}.${gf.goName}: Go field without protobuf tag (${gf.goType})`);
        continue;
      }
      const tm = shape.ref ?? `meta.v1.TypeMeta`;
      want(tm);
      fields.push(`${jn} 0 ${typeCode(alias, tm)} ${flags || "-"}`);
      continue;
    }
    const pbParts = pbTag.split(",");
    const num = +pbParts[1];
    const pbName = pbParts.find((p) => p.startsWith("name="))?.slice(5);
    const pf = byNum.get(num);
    if (!pf) {
      fail(`${ref}.${gf.goName}: protobuf number ${num} not in message`);
      continue;
    }
    if (pbName !== undefined && pbName !== pf.name) {
      fail(`${ref}.${gf.goName}: protobuf name ${pbName} vs proto ${pf.name}`);
    }
    if (seen.has(num)) fail(`${ref}: protobuf number ${num} used twice`);
    seen.add(num);
    let t;
    if (pf.label === "map") {
      if (pf.key !== "string") fail(`${ref}.${pf.name}: map key ${pf.key}`);
      if (shape.kind !== "map") fail(`${ref}.${pf.name}: proto map but Go ${gf.goType}`);
      const v = protoRef(alias, pf.value);
      want(v);
      t = `{${typeCode(alias, v)}`;
    } else if (pf.label === "repeated") {
      if (shape.kind !== "slice") fail(`${ref}.${pf.name}: proto repeated but Go ${gf.goType}`);
      const v = protoRef(alias, pf.type);
      want(v);
      t = `[${typeCode(alias, v)}`;
    } else {
      const v = protoRef(alias, pf.type);
      want(v);
      t = typeCode(alias, v);
      const scalar = /^(s|i32|i64|b)$/.test(v);
      if (scalar && shape.kind !== "scalar" && shape.kind !== "other") {
        fail(`${ref}.${pf.name}: proto ${pf.type} but Go ${gf.goType}`);
      }
      if (v === "y" && shape.kind !== "bytes") fail(`${ref}.${pf.name}: bytes but Go ${gf.goType}`);
      if (!scalar && v !== "y") {
        const msgName = splitRef(v)[1];
        const goName = gf.goType.replace(/^\*/, "").split(".").pop();
        if (msgName !== goName) fail(`${ref}.${pf.name}: proto ${v} but Go ${gf.goType}`);
      }
      if (gf.goType.startsWith("*") && v === "y") fail(`${ref}.${pf.name}: pointer to bytes`);
    }
    fields.push(`${jn} ${num} ${t} ${flags || "-"}${extras.length ? " " + extras.join(" ") : ""}`);
  }
  for (const pf of protoFields) {
    if (!seen.has(pf.num)) fail(`${ref}: proto field ${pf.name}=${pf.num} has no Go field`);
  }
  out.set(ref, { attrs, fields });
}

// ---------------------------------------------------------------------------------------------
// Kinds (from each group's register.go)

function registeredIn(file, fnName) {
  const text = readFileSync(file, "utf8");
  const start = text.indexOf(`func ${fnName}(`);
  if (start < 0) throw new Error(`${file}: no func ${fnName}`);
  const end = text.indexOf("\n}\n", start);
  return text.slice(start, end);
}

function refsIn(alias, code) {
  const pkg = packages.get(alias);
  const refs = [];
  for (const m of code.matchAll(/&(?:(\w+)\.)?(\w+)\{\}/g)) {
    let a = alias;
    if (m[1]) {
      a = aliasOfImport.get(pkg.go.imports.get(m[1]));
      if (!a) throw new Error(`${alias}: unknown import ${m[1]}`);
    }
    refs.push(`${a}.${m[2]}`);
  }
  return refs;
}

const metaRegister = join(machineryRoot, "pkg/apis/meta/v1/register.go");
const metaRegText = readFileSync(metaRegister, "utf8");
const optionsBlock = /var optionsTypes = \[\]runtime\.Object\{([\s\S]*?)\n\}/.exec(
  metaRegText,
)?.[1];
if (!optionsBlock) throw new Error("meta register.go: optionsTypes not found");
const metaOptions = refsIn("meta.v1", optionsBlock);
const addToGV = registeredIn(metaRegister, "AddToGroupVersion");
const unversioned = refsIn(
  "meta.v1",
  /AddUnversionedTypes\(Unversioned,([\s\S]*?)\)/.exec(addToGV)?.[1] ?? "",
);
if (!/WithKind\(WatchEventKind\), &WatchEvent\{\}/.test(addToGV)) {
  throw new Error("meta register.go: WatchEvent registration not found");
}
const metaOwn = refsIn("meta.v1", registeredIn(metaRegister, "AddMetaToScheme"));

/** apiVersion → refs (kind = type name) */
const kinds = new Map();
const skippedKinds = [];
function addKind(apiVersion, ref) {
  const [a, n] = splitRef(ref);
  if (!packages.get(a).messages.has(n)) {
    skippedKinds.push(`${apiVersion} ${n}`);
    return;
  }
  const list = kinds.get(apiVersion) ?? [];
  if (!list.includes(ref)) list.push(ref);
  kinds.set(apiVersion, list);
  want(ref);
}

for (const g of GROUPS) {
  const alias = g.replace("/", ".");
  const regFile = join(apiRoot, g, "register.go");
  const text = readFileSync(regFile, "utf8");
  const group = /const GroupName = "([^"]*)"/.exec(text)?.[1];
  if (group === undefined) throw new Error(`${regFile}: no GroupName`);
  const ver = g.split("/")[1];
  const apiVersion = group ? `${group}/${ver}` : ver;
  const fn = registeredIn(regFile, "addKnownTypes");
  for (const ref of refsIn(alias, fn)) addKind(apiVersion, ref);
  if (/metav1\.AddToGroupVersion\(/.test(fn)) {
    addKind(apiVersion, "meta.v1.WatchEvent");
    for (const ref of metaOptions) addKind(apiVersion, ref);
    for (const ref of unversioned) addKind("v1", ref);
  } else {
    fail(`${g}: addKnownTypes does not call metav1.AddToGroupVersion`);
  }
}
for (const ref of [...metaOptions, ...metaOwn, "meta.v1.WatchEvent"])
  addKind("meta.k8s.io/v1", ref);
for (const ref of unversioned) addKind("v1", ref);

// Every message of the selected groups, even those only reachable through subresources.
for (const g of GROUPS) {
  const alias = g.replace("/", ".");
  for (const name of packages.get(alias).messages.keys()) want(`${alias}.${name}`);
}

while (queue.length) build(queue.shift());

if (problems.length) {
  console.error(problems.map((p) => "error: " + p).join("\n"));
  process.exit(1);
}

// ---------------------------------------------------------------------------------------------
// Output

const usedAliases = [...new Set([...out.keys()].map((r) => splitRef(r)[0]))].sort();
const lines = [];
lines.push(
  `// Generated by scripts/gen-schema.mjs from kubernetes/api and kubernetes/apimachinery ${version}`,
);
lines.push("// (structural facts only: wire numbers and types, JSON names, markers). Do not edit.");
lines.push("");
lines.push("/** Package alias → OpenAPI definition name prefix. */");
lines.push("export const packages: Record<string, string> = {");
for (const a of usedAliases)
  lines.push(`  ${JSON.stringify(a)}: ${JSON.stringify(packages.get(a).prefix)},`);
lines.push("};");
lines.push("");
lines.push(
  "/** Type definitions by package alias and type name, in the notation of ./index.ts. */",
);
lines.push("export const types: Record<string, Record<string, string>> = {");
for (const a of usedAliases) {
  lines.push(`  ${JSON.stringify(a)}: {`);
  const names = [...out.keys()]
    .filter((r) => splitRef(r)[0] === a)
    .map((r) => splitRef(r)[1])
    .sort();
  for (const n of names) {
    const e = out.get(`${a}.${n}`);
    const s = [...e.attrs.map((x) => "%" + x), ...e.fields].join(";");
    lines.push(`    ${n}: ${JSON.stringify(s)},`);
  }
  lines.push("  },");
}
lines.push("};");
lines.push("");
lines.push("/** apiVersion → space-separated type references of its registered kinds. */");
lines.push("export const kinds: Record<string, string> = {");
for (const [av, refs] of [...kinds].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))) {
  lines.push(`  ${JSON.stringify(av)}: ${JSON.stringify(refs.join(" "))},`);
}
lines.push("};");
let text = lines.join("\n") + "\n";

try {
  const prettier = await import("prettier");
  const config = (await prettier.resolveConfig(outFile)) ?? {};
  text = await prettier.format(text, { ...config, filepath: outFile });
} catch (e) {
  console.error(`note: not formatted with prettier (${e.message})`);
}
writeFileSync(outFile, text);
console.error(
  `wrote ${outFile}: ${out.size} types, ` +
    `${[...kinds.values()].reduce((n, l) => n + l.length, 0)} kinds, ${text.length} bytes` +
    (skippedKinds.length ? `; kinds without a protobuf message: ${skippedKinds.join(", ")}` : ""),
);
