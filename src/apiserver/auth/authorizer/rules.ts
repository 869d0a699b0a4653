/**
 * RBAC PolicyRule semantics exactly as upstream (pkg/apis/rbac/v1/evaluation_helpers.go and
 * component-helpers' policy comparator): whether a rule allows a request, and whether one set of
 * rules covers another (escalation checks, bootstrap policy reconciliation).
 */
import type { PolicyRule } from "kubernetes-types/rbac/v1.js";
import type { Attributes } from "../types.js";
import { goQuoteList } from "../util.js";

const EMPTY: ReadonlySet<string> = new Set();

/** A rule turned into set lookups once, so that checking a request costs a few hash probes. */
interface CompiledRule {
  allVerbs: boolean;
  verbs: ReadonlySet<string>;
  allGroups: boolean;
  groups: ReadonlySet<string>;
  allResources: boolean;
  /** Exact entries: `pods`, `pods/log`. */
  resources: ReadonlySet<string>;
  /** The subresources named by wildcard entries (a star, a slash and the subresource). */
  anySubresource: ReadonlySet<string>;
  /** null: any name. */
  names: ReadonlySet<string> | null;
  allURLs: boolean;
  urls: ReadonlySet<string>;
  urlPrefixes: readonly string[];
}

const compiled = new WeakMap<PolicyRule, CompiledRule>();

function toSet(list: readonly string[] | undefined): ReadonlySet<string> {
  return list && list.length > 0 ? new Set(list) : EMPTY;
}

function compile(rule: PolicyRule): CompiledRule {
  let c = compiled.get(rule);
  if (c) return c;
  const resources = new Set<string>();
  const anySubresource = new Set<string>();
  let allResources = false;
  for (const r of rule.resources ?? []) {
    if (r === "*") allResources = true;
    else if (r.startsWith("*/")) anySubresource.add(r.slice(2));
    // An exact "*/x" entry also matches the literal combined resource "*/x".
    resources.add(r);
  }
  const urls = new Set<string>();
  const urlPrefixes: string[] = [];
  let allURLs = false;
  for (const u of rule.nonResourceURLs ?? []) {
    if (u === "*") allURLs = true;
    else if (u.endsWith("*")) urlPrefixes.push(u.replace(/\*+$/, ""));
    else urls.add(u);
  }
  const verbs = rule.verbs ?? [];
  const groups = rule.apiGroups ?? [];
  c = {
    allVerbs: verbs.includes("*"),
    verbs: toSet(verbs),
    allGroups: groups.includes("*"),
    groups: toSet(groups),
    allResources,
    resources,
    anySubresource,
    names: rule.resourceNames && rule.resourceNames.length > 0 ? new Set(rule.resourceNames) : null,
    allURLs,
    urls,
    urlPrefixes,
  };
  compiled.set(rule, c);
  return c;
}

/** Whether `rule` allows the request (upstream's RuleAllows). */
export function ruleAllows(attrs: Attributes, rule: PolicyRule): boolean {
  const c = compile(rule);
  if (!c.allVerbs && !c.verbs.has(attrs.verb)) return false;
  if (attrs.resourceRequest) {
    if (!c.allGroups && !c.groups.has(attrs.apiGroup)) return false;
    if (!c.allResources) {
      const sub = attrs.subresource;
      const combined = sub ? `${attrs.resource}/${sub}` : attrs.resource;
      if (!c.resources.has(combined) && !(sub && c.anySubresource.has(sub))) return false;
    }
    return c.names === null || c.names.has(attrs.name);
  }
  if (c.allURLs || c.urls.has(attrs.path)) return true;
  for (const p of c.urlPrefixes) if (attrs.path.startsWith(p)) return true;
  return false;
}

/** Whether any of the rules allows the request (upstream's RulesAllow). */
export function rulesAllow(attrs: Attributes, rules: readonly PolicyRule[]): boolean {
  for (const r of rules) if (ruleAllows(attrs, r)) return true;
  return false;
}

// ---- covering (escalation checks and reconciliation) ----

/** A rule split into rules of one verb, one resource (or URL) and at most one name. */
export function breakdownRule(rule: PolicyRule): PolicyRule[] {
  const out: PolicyRule[] = [];
  const verbs = rule.verbs ?? [];
  for (const group of rule.apiGroups ?? []) {
    for (const resource of rule.resources ?? []) {
      for (const verb of verbs) {
        if (rule.resourceNames && rule.resourceNames.length > 0) {
          for (const name of rule.resourceNames) {
            out.push({
              apiGroups: [group],
              resources: [resource],
              verbs: [verb],
              resourceNames: [name],
            });
          }
        } else {
          out.push({ apiGroups: [group], resources: [resource], verbs: [verb] });
        }
      }
    }
  }
  for (const url of rule.nonResourceURLs ?? []) {
    for (const verb of verbs) out.push({ nonResourceURLs: [url], verbs: [verb] });
  }
  return out;
}

function hasAll(set: readonly string[], contains: readonly string[]): boolean {
  for (const c of contains) if (!set.includes(c)) return false;
  return true;
}

function resourceCoversAll(set: readonly string[], covers: readonly string[]): boolean {
  if (set.includes("*") || hasAll(set, covers)) return true;
  for (const path of covers) {
    if (set.includes(path)) continue;
    const slash = path.indexOf("/");
    if (slash < 0) return false;
    if (!set.includes(`*/${path.slice(slash + 1)}`)) return false;
  }
  return true;
}

function nonResourceURLCovers(owner: string, sub: string): boolean {
  if (owner === sub) return true;
  return owner.endsWith("*") && sub.startsWith(owner.replace(/\*+$/, ""));
}

function nonResourceURLsCoverAll(set: readonly string[], covers: readonly string[]): boolean {
  return covers.every((path) => set.some((owner) => nonResourceURLCovers(owner, path)));
}

/** Whether `owner` allows everything the broken-down `sub` rule allows. */
function ruleCovers(owner: PolicyRule, sub: PolicyRule): boolean {
  const ov = owner.verbs ?? [];
  const og = owner.apiGroups ?? [];
  const on = owner.resourceNames ?? [];
  const sn = sub.resourceNames ?? [];
  const verbs = ov.includes("*") || hasAll(ov, sub.verbs ?? []);
  const groups = og.includes("*") || hasAll(og, sub.apiGroups ?? []);
  const resources = resourceCoversAll(owner.resources ?? [], sub.resources ?? []);
  const urls = nonResourceURLsCoverAll(owner.nonResourceURLs ?? [], sub.nonResourceURLs ?? []);
  const names = sn.length === 0 ? on.length === 0 : on.length === 0 || hasAll(on, sn);
  return verbs && groups && resources && names && urls;
}

/**
 * Whether `owner` rules allow everything `servant` rules allow; the uncovered part, broken down
 * to single verb/resource/name rules, when not.
 */
export function covers(
  owner: readonly PolicyRule[],
  servant: readonly PolicyRule[],
): { covered: boolean; missing: PolicyRule[] } {
  const missing: PolicyRule[] = [];
  for (const rule of servant) {
    for (const sub of breakdownRule(rule)) {
      if (!owner.some((o) => ruleCovers(o, sub))) missing.push(sub);
    }
  }
  return { covered: missing.length === 0, missing };
}

/**
 * Merges rules of one group, one resource and at most one name that differ only in their verbs
 * (upstream's CompactRules, for readable escalation errors).
 */
export function compactRules(rules: readonly PolicyRule[]): PolicyRule[] {
  const out: PolicyRule[] = [];
  const simple = new Map<string, PolicyRule>();
  for (const rule of rules) {
    const names = rule.resourceNames ?? [];
    const isSimple =
      names.length <= 1 &&
      (rule.nonResourceURLs ?? []).length === 0 &&
      (rule.apiGroups ?? []).length === 1 &&
      (rule.resources ?? []).length === 1;
    if (!isSimple) {
      out.push(rule);
      continue;
    }
    const key = JSON.stringify([rule.apiGroups![0], rule.resources![0], names[0] ?? null]);
    const existing = simple.get(key);
    if (existing) {
      for (const v of rule.verbs ?? []) if (!existing.verbs!.includes(v)) existing.verbs!.push(v);
    } else {
      simple.set(key, { ...rule, verbs: [...(rule.verbs ?? [])] });
    }
  }
  return [...out, ...simple.values()];
}

/** A rule as upstream's escalation errors print it: `{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`. */
export function compactString(r: PolicyRule): string {
  const parts: string[] = [];
  if (r.apiGroups?.length) parts.push(`APIGroups:${goQuoteList(r.apiGroups)}`);
  if (r.resources?.length) parts.push(`Resources:${goQuoteList(r.resources)}`);
  if (r.nonResourceURLs?.length) parts.push(`NonResourceURLs:${goQuoteList(r.nonResourceURLs)}`);
  if (r.resourceNames?.length) parts.push(`ResourceNames:${goQuoteList(r.resourceNames)}`);
  if (r.verbs?.length) parts.push(`Verbs:${goQuoteList(r.verbs)}`);
  return `{${parts.join(", ")}}`;
}

/** Semantic equality of two rules (field by field, order kept), as the aggregation loop uses. */
export function ruleEquals(a: PolicyRule, b: PolicyRule): boolean {
  const eq = (x?: string[], y?: string[]) => {
    const xs = x ?? [];
    const ys = y ?? [];
    return xs.length === ys.length && xs.every((v, i) => v === ys[i]);
  };
  return (
    eq(a.verbs, b.verbs) &&
    eq(a.apiGroups, b.apiGroups) &&
    eq(a.resources, b.resources) &&
    eq(a.resourceNames, b.resourceNames) &&
    eq(a.nonResourceURLs, b.nonResourceURLs)
  );
}
