/**
 * Label and field selectors with upstream's syntax (apimachinery's labels.Parse and
 * fields.ParseSelector): `a=b,c!=d,e in (x,y),f notin (z),g,!h` and `metadata.name=x,spec.nodeName!=`.
 */

type Requirement =
  | { key: string; op: "=" | "!="; values: [string] }
  | { key: string; op: "in" | "notin"; values: string[] }
  | { key: string; op: "exists" | "!"; values: [] }
  | { key: string; op: "gt" | "lt"; values: [string] };

export interface Selector {
  matches(labels: Record<string, string> | undefined): boolean;
  readonly empty: boolean;
  /** The value a key must equal, when the selector requires exactly one (for indexed lookups). */
  requiresExactMatch(key: string): string | undefined;
  toString(): string;
}

export class SelectorError extends Error {
  override readonly name = "SelectorError";
}

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === " " || c === "\t") {
      i++;
      continue;
    }
    if ("(),".includes(c)) {
      tokens.push(c);
      i++;
      continue;
    }
    if (c === "!" && text[i + 1] === "=") {
      tokens.push("!=");
      i += 2;
      continue;
    }
    if (c === "=" && text[i + 1] === "=") {
      tokens.push("==");
      i += 2;
      continue;
    }
    if ("=!<>".includes(c)) {
      tokens.push(c);
      i++;
      continue;
    }
    let j = i;
    while (j < text.length && !" \t(),=!<>".includes(text[j]!)) j++;
    tokens.push(text.slice(i, j));
    i = j;
  }
  return tokens;
}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Parses a label selector; throws SelectorError with upstream-like text on bad syntax. */
export function parseLabelSelector(text: string): Selector {
  const tokens = tokenize(text);
  const reqs: Requirement[] = [];
  let i = 0;
  const next = () => tokens[i++];
  const peek = () => tokens[i];
  const fail = (why: string) => {
    throw new SelectorError(`unable to parse requirement: ${why}`);
  };
  while (i < tokens.length) {
    let negate = false;
    if (peek() === "!") {
      negate = true;
      next();
    }
    const key = next();
    if (!key || "(),=!<>".includes(key)) fail(`found '${key ?? ""}', expected: identifier`);
    const op = peek();
    if (negate) {
      reqs.push({ key: key!, op: "!", values: [] });
    } else if (op === undefined || op === ",") {
      reqs.push({ key: key!, op: "exists", values: [] });
    } else if (op === "=" || op === "==" || op === "!=") {
      next();
      let value = peek();
      if (value === undefined || value === ",") value = "";
      else next();
      if (!LABEL_VALUE.test(value)) fail(`invalid label value: "${value}"`);
      reqs.push({ key: key!, op: op === "!=" ? "!=" : "=", values: [value] });
    } else if (op === "in" || op === "notin") {
      next();
      if (next() !== "(") fail(`found '${tokens[i - 1] ?? ""}', expected: '('`);
      const values: string[] = [];
      for (;;) {
        const t = next();
        if (t === undefined) fail("found '', expected: ')'");
        if (t === ")") break;
        if (t === ",") continue;
        values.push(t!);
      }
      reqs.push({ key: key!, op, values });
    } else if (op === ">" || op === "<") {
      next();
      const v = next();
      if (v === undefined || !/^-?\d+$/.test(v))
        fail(`for 'Gt', 'Lt' operators, the value must be an integer`);
      reqs.push({ key: key!, op: op === ">" ? "gt" : "lt", values: [v!] });
    } else {
      fail(`found '${op}', expected: in, notin, =, ==, !=, gt, lt`);
    }
    const sep = next();
    if (sep !== undefined && sep !== ",") fail(`found '${sep}', expected: ',' or 'end of string'`);
  }
  return makeSelector(reqs, text);
}

function makeSelector(reqs: Requirement[], text: string): Selector {
  return {
    empty: reqs.length === 0,
    toString: () => text,
    requiresExactMatch(key) {
      const r = reqs.find((q) => q.key === key && q.op === "=");
      return r?.values[0];
    },
    matches(labels) {
      for (const r of reqs) {
        const has = labels !== undefined && Object.prototype.hasOwnProperty.call(labels, r.key);
        const v = has ? labels![r.key]! : undefined;
        switch (r.op) {
          case "=":
            if (v !== r.values[0]) return false;
            break;
          case "!=":
            if (v === r.values[0]) return false;
            break;
          case "in":
            if (v === undefined || !r.values.includes(v)) return false;
            break;
          case "notin":
            if (v !== undefined && r.values.includes(v)) return false;
            break;
          case "exists":
            if (!has) return false;
            break;
          case "!":
            if (has) return false;
            break;
          case "gt":
          case "lt": {
            if (v === undefined || !/^-?\d+$/.test(v)) return false;
            const n = Number(v);
            const bound = Number(r.values[0]);
            if (r.op === "gt" ? !(n > bound) : !(n < bound)) return false;
            break;
          }
        }
      }
      return true;
    },
  };
}

/** Parses a field selector (only =, ==, != and commas, as upstream). */
export function parseFieldSelector(text: string): Selector {
  const reqs: Requirement[] = [];
  for (const part of text.split(",")) {
    if (part.trim() === "") continue;
    const m = /^([^=!]+)(==|=|!=)(.*)$/.exec(part.trim());
    if (!m) throw new SelectorError(`invalid selector: '${text}'; can't understand '${part}'`);
    reqs.push({ key: m[1]!, op: m[2] === "!=" ? "!=" : "=", values: [m[3]!] });
  }
  const sel = makeSelector(reqs, text);
  return {
    ...sel,
    // Field values are always present: an absent field reads as "".
    matches: (fields) =>
      reqs.every((r) => {
        const v = fields?.[r.key] ?? "";
        return r.op === "=" ? v === r.values[0] : v !== r.values[0];
      }),
  };
}

/** The keys a field selector uses (to refuse unsupported fields with upstream's error). */
export function fieldSelectorKeys(text: string): string[] {
  return text
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "")
    .map((p) => p.split(/==|!=|=/)[0]!);
}

/** A metav1.LabelSelector as objects carry it (a Deployment's spec.selector, a PDB's, ...). */
export interface LabelSelectorObject {
  matchLabels?: Record<string, string> | null;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] | null }> | null;
}

/**
 * Whether labels match a LabelSelector object: every matchLabels pair and every matchExpression
 * (In, NotIn, Exists, DoesNotExist) holds. An empty selector matches everything.
 */
export function labelSelectorMatches(
  selector: LabelSelectorObject,
  labels: Record<string, string> | null | undefined,
): boolean {
  const l = labels ?? {};
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (l[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(l, e.key);
    const values = e.values ?? [];
    switch (e.operator) {
      case "In":
        if (!has || !values.includes(l[e.key]!)) return false;
        break;
      case "NotIn":
        if (has && values.includes(l[e.key]!)) return false;
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
