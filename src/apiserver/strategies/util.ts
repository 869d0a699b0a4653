/**
 * Helpers shared by the strategies: loose access to JSON-shaped objects, field paths, field errors
 * rendered as upstream's field.Error.Error() renders them (including Go's %#v for the few values
 * it prints that way), and the validators upstream reuses everywhere.
 */
import type { FieldError } from "../../api/status.js";
import {
  dns1123LabelErrors,
  dns1123SubdomainErrors,
  labelValueErrors,
  qualifiedNameErrors,
} from "../validation/objectmeta.js";
import type { KObject } from "../registry/types.js";

export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The object at `obj[key]`, created (as `{}`) when missing or not an object. */
export function child(obj: Obj, key: string): Obj {
  const v = obj[key];
  if (isObj(v)) return v;
  const created: Obj = {};
  obj[key] = created;
  return created;
}

/** `v` when it is an object, else undefined. */
export function rec(v: unknown): Obj | undefined {
  return isObj(v) ? v : undefined;
}

/** The object entries of an array, with their indexes (entries that are not objects are skipped). */
export function items(v: unknown): Array<[Obj, number]> {
  if (!Array.isArray(v)) return [];
  const out: Array<[Obj, number]> = [];
  v.forEach((e, i) => {
    if (isObj(e)) out.push([e, i]);
  });
  return out;
}

export function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

export function num(v: unknown): number | undefined {
  return typeof v === "number" ? v : undefined;
}

/** Whether a field is unset as Go sees it after decoding (missing or JSON null). */
export function unset(v: unknown): boolean {
  return v === undefined || v === null;
}

export function setDefault(obj: Obj, key: string, value: unknown): void {
  if (unset(obj[key])) obj[key] = value;
}

/** Sets a string field when it is missing or empty (Go's `if x == ""`). */
export function setDefaultStr(obj: Obj, key: string, value: string): void {
  if (unset(obj[key]) || obj[key] === "") obj[key] = value;
}

export function specOf(obj: KObject): Obj {
  return child(obj, "spec");
}

export function labelsOf(v: unknown): Record<string, string> | undefined {
  return isObj(v) ? (v as Record<string, string>) : undefined;
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => deepEqual(x, b[i]));
  }
  if (isObj(a) && isObj(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    if (ka.length !== kb.length) return false;
    return ka.every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

export function clone<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

// ---------------------------------------------------------------------------------------------
// Field paths, as upstream's field.Path prints them.

export const at = (parent: string, name: string): string => (parent ? `${parent}.${name}` : name);
export const idx = (parent: string, i: number): string => `${parent}[${i}]`;
export const key = (parent: string, k: string): string => `${parent}[${k}]`;

// ---------------------------------------------------------------------------------------------
// Values as Go's fmt prints them in field errors.

/** A value already rendered as Go would print it (for maps and structs printed with %#v). */
export class GoValue {
  constructor(readonly text: string) {}
}

/** Go's strconv.Quote for the strings field errors print. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c === 7) out += "\\a";
    else if (c === 8) out += "\\b";
    else if (c === 12) out += "\\f";
    else if (c === 11) out += "\\v";
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return out + '"';
}

function render(value: unknown): string {
  if (value instanceof GoValue) return value.text;
  if (value === undefined || value === null) return goQuote("null");
  if (typeof value === "string") return goQuote(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

const sortedKeys = (m: Obj): string[] =>
  Object.keys(m).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

/** `map[string]string{"a":"b"}` (nil when missing), keys sorted as fmt sorts them. */
export function goStringMap(m: unknown): GoValue {
  if (!isObj(m)) return new GoValue("map[string]string(nil)");
  const body = sortedKeys(m)
    .map((k) => `${goQuote(k)}:${goQuote(String(m[k] ?? ""))}`)
    .join(", ");
  return new GoValue(`map[string]string{${body}}`);
}

function goStringSlice(v: unknown): string {
  if (!Array.isArray(v)) return "[]string(nil)";
  return `[]string{${v.map((s) => goQuote(String(s))).join(", ")}}`;
}

/** A metav1.LabelSelector as %#v prints it. */
export function goLabelSelector(sel: unknown): GoValue {
  const s = rec(sel) ?? {};
  let exprs = "[]v1.LabelSelectorRequirement(nil)";
  if (Array.isArray(s.matchExpressions)) {
    const parts = s.matchExpressions.map((e) => {
      const r = rec(e) ?? {};
      return `v1.LabelSelectorRequirement{Key:${goQuote(str(r.key))}, Operator:${goQuote(str(r.operator))}, Values:${goStringSlice(r.values)}}`;
    });
    exprs = `[]v1.LabelSelectorRequirement{${parts.join(", ")}}`;
  }
  return new GoValue(
    `v1.LabelSelector{MatchLabels:${goStringMap(s.matchLabels).text}, MatchExpressions:${exprs}}`,
  );
}

/** An intstr.IntOrString as %#v prints it. */
export function goIntOrString(v: unknown): GoValue {
  if (typeof v === "string")
    return new GoValue(`intstr.IntOrString{Type:1, IntVal:0, StrVal:${goQuote(v)}}`);
  return new GoValue(`intstr.IntOrString{Type:0, IntVal:${num(v) ?? 0}, StrVal:""}`);
}

// ---------------------------------------------------------------------------------------------
// Field errors.

const withDetail = (s: string, detail: string) => (detail ? `${s}: ${detail}` : s);

export function required(field: string, detail = ""): FieldError {
  return {
    type: "FieldValueRequired",
    field,
    message: withDetail(`${field}: Required value`, detail),
  };
}

export function invalid(field: string, value: unknown, detail: string): FieldError {
  return {
    type: "FieldValueInvalid",
    field,
    message: withDetail(`${field}: Invalid value: ${render(value)}`, detail),
  };
}

export function unsupported(field: string, value: unknown, valid: readonly string[]): FieldError {
  const detail = valid.length ? `supported values: ${valid.map(goQuote).join(", ")}` : "";
  return {
    type: "FieldValueNotSupported",
    field,
    message: withDetail(`${field}: Unsupported value: ${render(value)}`, detail),
  };
}

export function duplicate(field: string, value: unknown): FieldError {
  return {
    type: "FieldValueDuplicate",
    field,
    message: `${field}: Duplicate value: ${render(value)}`,
  };
}

export function forbidden(field: string, detail: string): FieldError {
  return { type: "FieldValueForbidden", field, message: withDetail(`${field}: Forbidden`, detail) };
}

export function notFound(field: string, value: unknown): FieldError {
  return { type: "FieldValueNotFound", field, message: `${field}: Not found: ${render(value)}` };
}

export function tooLong(field: string, max: number): FieldError {
  return {
    type: "FieldValueTooLong",
    field,
    message: `${field}: Too long: may not be more than ${max} bytes`,
  };
}

export function tooMany(field: string, actual: number, max: number): FieldError {
  return {
    type: "FieldValueTooMany",
    field,
    message: `${field}: Too many: ${actual}: must have at most ${max} items`,
  };
}

// ---------------------------------------------------------------------------------------------
// Validators upstream shares between kinds.

export const IS_NEGATIVE = "must be greater than or equal to 0";
export const IMMUTABLE = "field is immutable";

export const inclusiveRange = (lo: number, hi: number) =>
  `must be between ${lo} and ${hi}, inclusive`;

export function nonNegative(field: string, value: unknown): FieldError[] {
  const n = num(value);
  return n !== undefined && n < 0 ? [invalid(field, n, IS_NEGATIVE)] : [];
}

export function immutable(
  field: string,
  value: unknown,
  old: unknown,
  shown?: unknown,
): FieldError[] {
  return deepEqual(value ?? null, old ?? null) ? [] : [invalid(field, shown ?? value, IMMUTABLE)];
}

/** Upstream's IsDNS1123Label (a valid subdomain that is not a label "must not contain dots"). */
export function dnsLabelErrors(value: string): string[] {
  const errs = dns1123LabelErrors(value);
  const subdomainOK = dns1123SubdomainErrors(value).every((m) => m.startsWith("must be no more"));
  return errs.map((m) =>
    subdomainOK && !m.startsWith("must be no more") ? "must not contain dots" : m,
  );
}

export function dnsLabel(field: string, value: string): FieldError[] {
  return dnsLabelErrors(value).map((m) => invalid(field, value, m));
}

export function dnsSubdomain(field: string, value: string): FieldError[] {
  return dns1123SubdomainErrors(value).map((m) => invalid(field, value, m));
}

const DNS1035 = "[a-z]([-a-z0-9]*[a-z0-9])?";
const dns1035Re = new RegExp(`^${DNS1035}$`);

/** Upstream's validation.IsDNS1035Label messages. */
export function dns1035LabelErrors(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 63) errs.push("must be no more than 63 characters");
  if (!dns1035Re.test(value)) {
    errs.push(
      `a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '${DNS1035}')`,
    );
  }
  return errs;
}

export function qualifiedName(field: string, value: string): FieldError[] {
  return qualifiedNameErrors(value).map((m) => invalid(field, value, m));
}

/** Upstream's path.IsValidPathSegmentName. */
export function pathSegmentErrors(value: string): string[] {
  if (value === "." || value === "..") return [`may not be '${value}'`];
  const errs: string[] = [];
  if (value.includes("/")) errs.push("may not contain '/'");
  if (value.includes("%")) errs.push("may not contain '%'");
  return errs;
}

/** metav1 ValidateLabels: label keys and values, reported at the map's path. */
export function validateLabels(field: string, labels: unknown): FieldError[] {
  const errs: FieldError[] = [];
  if (!isObj(labels)) return errs;
  for (const [k, v] of Object.entries(labels)) {
    errs.push(...qualifiedName(field, k));
    for (const m of labelValueErrors(str(v))) errs.push(invalid(field, str(v), m));
  }
  return errs;
}

/** apimachinery ValidateAnnotations (keys and total size). */
export function validateAnnotations(field: string, annotations: unknown): FieldError[] {
  const errs: FieldError[] = [];
  if (!isObj(annotations)) return errs;
  let size = 0;
  for (const [k, v] of Object.entries(annotations)) {
    for (const m of qualifiedNameErrors(k.toLowerCase())) errs.push(invalid(field, k, m));
    size += k.length + str(v).length;
  }
  if (size > 256 * 1024) errs.push(tooLong(field, 256 * 1024));
  return errs;
}

/** metav1 ValidateLabelSelector, strict about label values. */
export function validateLabelSelector(field: string, selector: unknown): FieldError[] {
  const errs: FieldError[] = [];
  const sel = rec(selector);
  if (!sel) return errs;
  errs.push(...validateLabels(at(field, "matchLabels"), sel.matchLabels));
  for (const [e, i] of items(sel.matchExpressions)) {
    const p = idx(at(field, "matchExpressions"), i);
    const values = Array.isArray(e.values) ? e.values : [];
    switch (e.operator) {
      case "In":
      case "NotIn":
        if (values.length === 0)
          errs.push(
            required(at(p, "values"), "must be specified when `operator` is 'In' or 'NotIn'"),
          );
        break;
      case "Exists":
      case "DoesNotExist":
        if (values.length > 0)
          errs.push(
            forbidden(
              at(p, "values"),
              "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            ),
          );
        break;
      default:
        errs.push(invalid(at(p, "operator"), str(e.operator), "not a valid selector operator"));
    }
    errs.push(...qualifiedName(at(p, "key"), str(e.key)));
    values.forEach((v, j) => {
      for (const m of labelValueErrors(String(v)))
        errs.push(invalid(idx(at(p, "values"), j), v, m));
    });
  }
  return errs;
}

/** Whether a label selector (metav1.LabelSelector) selects the labels. A missing selector selects nothing. */
export function selectorMatches(selector: unknown, labels: unknown): boolean {
  const sel = rec(selector);
  if (!sel) return false;
  const l = isObj(labels) ? labels : {};
  for (const [k, v] of Object.entries(rec(sel.matchLabels) ?? {})) if (l[k] !== v) return false;
  for (const [e] of items(sel.matchExpressions)) {
    const k = str(e.key);
    const values = Array.isArray(e.values) ? e.values.map(String) : [];
    const has = Object.prototype.hasOwnProperty.call(l, k);
    switch (e.operator) {
      case "In":
        if (!has || !values.includes(str(l[k]))) return false;
        break;
      case "NotIn":
        if (has && values.includes(str(l[k]))) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/** Whether a selector has no requirements (it then selects everything). */
export function selectorEmpty(selector: unknown): boolean {
  const sel = rec(selector);
  if (!sel) return true;
  const ml = rec(sel.matchLabels);
  return (
    (!ml || Object.keys(ml).length === 0) &&
    (!Array.isArray(sel.matchExpressions) || sel.matchExpressions.length === 0)
  );
}

/** Labels valid for a selector map (ReplicationController, Service): both keys and values. */
export function labelMapMatches(selector: unknown, labels: unknown): boolean {
  const s = rec(selector) ?? {};
  const l = rec(labels) ?? {};
  return Object.entries(s).every(([k, v]) => l[k] === v);
}

/** Upstream's IsValidPortName messages. */
export function portNameErrors(port: string): string[] {
  const errs: string[] = [];
  if (port.length > 15) errs.push("must be no more than 15 characters");
  if (!/^[-a-z0-9]+$/.test(port))
    errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
  if (!/[a-z]/.test(port)) errs.push("must contain at least one letter (a-z)");
  if (port.includes("--")) errs.push("must not contain consecutive hyphens");
  if (port.length > 0 && (port.startsWith("-") || port.endsWith("-")))
    errs.push("must not begin or end with a hyphen");
  return errs;
}

export function portNumErrors(port: number): string[] {
  return port >= 1 && port <= 65535 ? [] : [inclusiveRange(1, 65535)];
}

/** Upstream's ValidatePortNumOrName for an int-or-string port. */
export function portNumOrName(field: string, port: unknown): FieldError[] {
  if (typeof port === "string") return portNameErrors(port).map((m) => invalid(field, port, m));
  const n = num(port) ?? 0;
  return portNumErrors(n).map((m) => invalid(field, n, m));
}

/** Upstream's IsValidPercent. */
export function percentErrors(v: string): string[] {
  return /^[0-9]+%$/.test(v)
    ? []
    : [
        "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
      ];
}

/** Upstream's IsConfigMapKey messages. */
export function configMapKeyErrors(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 253) errs.push("must be no more than 253 characters");
  if (!/^[-._a-zA-Z0-9]+$/.test(value))
    errs.push(
      "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
    );
  if (value === ".") errs.push("must not be '.'");
  else if (value === "..") errs.push("must not be '..'");
  else if (value.startsWith("..")) errs.push("must not start with '..'");
  return errs;
}

/** Whether a string is an IPv4 or IPv6 address as Go's net.ParseIP accepts it. */
export function isIP(s: string): boolean {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (v4) return v4.slice(1).every((p) => Number(p) <= 255 && !(p.length > 1 && p.startsWith("0")));
  if (!s.includes(":")) return false;
  try {
    return new URL(`http://[${s}]/`).hostname.length > 0;
  } catch {
    return false;
  }
}
