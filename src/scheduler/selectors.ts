/**
 * Matching as the scheduler needs it: label selectors (metav1.LabelSelectorAsSelector: nil selects
 * nothing, {} selects everything), node selector terms with Gt/Lt and metadata.name fields
 * (component-helpers nodeaffinity, where a term that does not parse matches nothing), and taints
 * against tolerations (v1helper).
 */
import type {
  Node,
  NodeSelector,
  NodeSelectorRequirement,
  NodeSelectorTerm,
  Pod,
  PreferredSchedulingTerm,
  Taint,
  Toleration,
} from "kubernetes-types/core/v1.js";
import type { LabelSelector } from "kubernetes-types/meta/v1.js";

export type Labels = Record<string, string>;

interface Requirement {
  key: string;
  op: "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt";
  values: string[];
  num: number;
}

/**
 * A compiled label selector. `nothing` matches no set; a selector with no requirements matches
 * every set and is `empty()` (upstream's labels.Everything()).
 */
export class Selector {
  private constructor(
    readonly nothing: boolean,
    private readonly reqs: Requirement[],
  ) {}

  static readonly NOTHING = new Selector(true, []);
  static readonly EVERYTHING = new Selector(false, []);

  /** The selector of a map: every key equal to its value. */
  static fromSet(set: Labels | undefined): Selector {
    if (!set) return Selector.EVERYTHING;
    const keys = Object.keys(set).sort();
    if (keys.length === 0) return Selector.EVERYTHING;
    return new Selector(
      false,
      keys.map((k) => ({ key: k, op: "In", values: [set[k]!], num: 0 })),
    );
  }

  /**
   * metav1.LabelSelectorAsSelector. Throws on an invalid operator or values, as upstream returns
   * an error there.
   */
  static fromLabelSelector(sel: LabelSelector | null | undefined): Selector {
    if (sel === null || sel === undefined) return Selector.NOTHING;
    const reqs: Requirement[] = [];
    for (const [k, v] of Object.entries(sel.matchLabels ?? {})) {
      reqs.push({ key: k, op: "In", values: [v], num: 0 });
    }
    for (const e of sel.matchExpressions ?? []) {
      const values = e.values ?? [];
      switch (e.operator) {
        case "In":
        case "NotIn":
          if (values.length === 0) {
            throw new Error(
              `values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty`,
            );
          }
          reqs.push({ key: e.key, op: e.operator, values, num: 0 });
          break;
        case "Exists":
        case "DoesNotExist":
          if (values.length > 0) {
            throw new Error(
              `values: Invalid value: ${JSON.stringify(values)}: values set must be empty for exists and does not exist`,
            );
          }
          reqs.push({ key: e.key, op: e.operator, values: [], num: 0 });
          break;
        default:
          throw new Error(`${JSON.stringify(e.operator)} is not a valid label selector operator`);
      }
    }
    if (reqs.length === 0) return Selector.EVERYTHING;
    return new Selector(false, reqs);
  }

  /** Requirements combined (AND) with those of another selector. */
  and(other: Selector): Selector {
    if (this.nothing || other.nothing) return Selector.NOTHING;
    if (other.reqs.length === 0) return this;
    if (this.reqs.length === 0) return other;
    return new Selector(false, [...this.reqs, ...other.reqs]);
  }

  /** True for the everything selector (no requirements). */
  empty(): boolean {
    return !this.nothing && this.reqs.length === 0;
  }

  matches(labels: Labels | undefined): boolean {
    if (this.nothing) return false;
    const reqs = this.reqs;
    for (let i = 0; i < reqs.length; i++) {
      if (!matchRequirement(reqs[i]!, labels)) return false;
    }
    return true;
  }
}

function matchRequirement(r: Requirement, labels: Labels | undefined): boolean {
  const has = labels !== undefined && Object.prototype.hasOwnProperty.call(labels, r.key);
  switch (r.op) {
    case "In":
      return has && r.values.includes(labels![r.key]!);
    case "NotIn":
      return !has || !r.values.includes(labels![r.key]!);
    case "Exists":
      return has;
    case "DoesNotExist":
      return !has;
    case "Gt":
    case "Lt": {
      if (!has) return false;
      const v = labels![r.key]!;
      if (!/^[+-]?\d+$/.test(v)) return false;
      const n = Number(v);
      return r.op === "Gt" ? n > r.num : n < r.num;
    }
  }
}

/** True when every key of `set` is in `labels` with the same value. */
export function matchesSet(set: Labels | undefined, labels: Labels | undefined): boolean {
  if (!set) return true;
  for (const k in set) {
    if (!labels || labels[k] !== set[k]) return false;
  }
  return true;
}

// ---- node selectors ----

interface ParsedTerm {
  labels: Requirement[];
  fields: { op: "In" | "NotIn"; value: string }[];
  /** The term did not parse: it matches no node. */
  invalid: boolean;
}

function parseNodeRequirement(r: NodeSelectorRequirement): Requirement | undefined {
  const values = r.values ?? [];
  switch (r.operator) {
    case "In":
    case "NotIn":
      if (values.length === 0) return undefined;
      return { key: r.key, op: r.operator, values, num: 0 };
    case "Exists":
    case "DoesNotExist":
      if (values.length > 0) return undefined;
      return { key: r.key, op: r.operator, values: [], num: 0 };
    case "Gt":
    case "Lt": {
      if (values.length !== 1 || !/^[+-]?\d+$/.test(values[0]!)) return undefined;
      return { key: r.key, op: r.operator, values, num: Number(values[0]) };
    }
    default:
      return undefined;
  }
}

function isEmptyTerm(t: NodeSelectorTerm | undefined): boolean {
  return !t || ((t.matchExpressions ?? []).length === 0 && (t.matchFields ?? []).length === 0);
}

function parseTerm(t: NodeSelectorTerm): ParsedTerm {
  const out: ParsedTerm = { labels: [], fields: [], invalid: false };
  for (const e of t.matchExpressions ?? []) {
    const r = parseNodeRequirement(e);
    if (!r) out.invalid = true;
    else out.labels.push(r);
  }
  for (const f of t.matchFields ?? []) {
    const values = f.values ?? [];
    if (f.key !== "metadata.name" || values.length !== 1) out.invalid = true;
    else if (f.operator === "In" || f.operator === "NotIn") {
      out.fields.push({ op: f.operator, value: values[0]! });
    } else out.invalid = true;
  }
  return out;
}

function termMatches(t: ParsedTerm, node: Node): boolean {
  if (t.invalid) return false;
  if (t.labels.length === 0 && t.fields.length === 0) return false;
  const labels = node.metadata?.labels;
  for (const r of t.labels) if (!matchRequirement(r, labels)) return false;
  const name = node.metadata?.name ?? "";
  for (const f of t.fields) {
    if (f.op === "In" ? name !== f.value : name === f.value) return false;
  }
  return true;
}

/** A required node selector: the terms are ORed; an empty term is skipped. */
export class NodeSelectorMatcher {
  private readonly terms: ParsedTerm[];
  constructor(ns: NodeSelector) {
    this.terms = (ns.nodeSelectorTerms ?? []).filter((t) => !isEmptyTerm(t)).map(parseTerm);
  }
  match(node: Node): boolean {
    for (const t of this.terms) if (termMatches(t, node)) return true;
    return false;
  }
}

/** Preferred terms with weights; a node scores the sum of the weights of the terms it matches. */
export class PreferredTerms {
  private readonly terms: { term: ParsedTerm; weight: number }[] = [];
  constructor(terms: PreferredSchedulingTerm[]) {
    for (const t of terms) {
      if (!t.weight || isEmptyTerm(t.preference)) continue;
      const term = parseTerm(t.preference);
      if (!term.invalid) this.terms.push({ term, weight: t.weight });
    }
  }
  score(node: Node): number {
    let s = 0;
    for (const t of this.terms) if (termMatches(t.term, node)) s += t.weight;
    return s;
  }
  get length(): number {
    return this.terms.length;
  }
}

/** The pod's nodeSelector and required node affinity together (nodeaffinity.RequiredNodeAffinity). */
export class RequiredNodeAffinity {
  private readonly labelSelector: Labels | undefined;
  private readonly nodeSelector: NodeSelectorMatcher | undefined;

  constructor(pod: Pod) {
    const sel = pod.spec?.nodeSelector;
    this.labelSelector = sel && Object.keys(sel).length > 0 ? sel : undefined;
    const required =
      pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
    this.nodeSelector = required ? new NodeSelectorMatcher(required) : undefined;
  }

  /** True when the pod asks for no node in particular (every node matches). */
  get empty(): boolean {
    return !this.labelSelector && !this.nodeSelector;
  }

  match(node: Node): boolean {
    if (this.labelSelector && !matchesSet(this.labelSelector, node.metadata?.labels)) return false;
    if (this.nodeSelector) return this.nodeSelector.match(node);
    return true;
  }
}

// ---- taints and tolerations ----

export function toleratesTaint(t: Toleration, taint: Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  if (t.key && t.key !== taint.key) return false;
  switch (t.operator ?? "") {
    case "":
    case "Equal":
      return (t.value ?? "") === (taint.value ?? "");
    case "Exists":
      return true;
    default:
      return false;
  }
}

export function tolerationsTolerateTaint(ts: Toleration[] | undefined, taint: Taint): boolean {
  if (!ts) return false;
  for (const t of ts) if (toleratesTaint(t, taint)) return true;
  return false;
}

/** The first taint with effect NoSchedule or NoExecute that no toleration tolerates. */
export function findUntoleratedTaint(
  taints: Taint[] | undefined,
  tolerations: Toleration[] | undefined,
): Taint | undefined {
  if (!taints) return undefined;
  for (const taint of taints) {
    if (taint.effect !== "NoSchedule" && taint.effect !== "NoExecute") continue;
    if (!tolerationsTolerateTaint(tolerations, taint)) return taint;
  }
  return undefined;
}
