/**
 * The merge of a server-side apply configuration into a live object, as structured-merge-diff's
 * merge.Updater.Apply does it:
 *
 * 1. merge: the configuration's values win; granular maps merge by key, granular lists by item
 *    key (live order kept, new items placed after the configuration's preceding item), atomic
 *    values and mismatched kinds are replaced whole;
 * 2. prune: what the manager applied last time and no longer applies is removed, unless some
 *    manager (any, the applier's new configuration included) owns it;
 * 3. ownership: the applier owns exactly its configuration's field set; a field the apply changes
 *    (added or modified) that another manager owns is a conflict, unless forced, when the other
 *    manager loses it; fields the apply removes leave every other manager.
 *
 * Manager identities are opaque strings here (managedfields.ts builds them); field sets are
 * FieldSets of the resource's shape.
 */
import { StatusError } from "../../api/status.js";
import {
  compare,
  FieldSet,
  isObject,
  itemElement,
  ItemError,
  pathString,
  toFieldSet,
  valueKind,
  fieldShape,
  fieldElement,
  type Path,
  type PathElement,
  type Shape,
} from "./fieldset.js";

/** One manager's owned fields (upstream's VersionedSet). */
export interface VersionedSet {
  readonly set: FieldSet;
  readonly apiVersion: string;
  /** Whether the owner applied (operation Apply) rather than updated. */
  readonly applied: boolean;
}

/** Manager identity → what it owns. */
export type ManagedSets = Map<string, VersionedSet>;

export interface Conflict {
  /** The manager identity (managedfields.ts's JSON identifier). */
  readonly manager: string;
  readonly path: Path;
}

/** An apply that changes fields other managers own (upstream's merge.Conflicts). */
export class ApplyConflicts extends Error {
  constructor(readonly conflicts: readonly Conflict[]) {
    super(`${conflicts.length} apply conflict(s)`);
  }
}

export interface ApplyInput {
  shape: Shape;
  /** The live object (undefined: none yet); its metadata.managedFields is ignored. */
  live: Record<string, unknown> | undefined;
  config: Record<string, unknown>;
  /** Every manager's fields before the apply; not modified. */
  managers: ManagedSets;
  /** The applier's identity. */
  manager: string;
  apiVersion: string;
  force: boolean;
  /** Paths no manager gains or loses here (upstream's reset fields of the strategy). */
  ignore: FieldSet;
}

export interface ApplyResult {
  /** The merged object, or undefined when the apply changes nothing. */
  object: Record<string, unknown> | undefined;
  managers: ManagedSets;
}

/**
 * Applies `config` over `live` for `manager`. Throws ApplyConflicts (unless `force`). The merged
 * object is a fresh value (it shares nothing with `live` or `config`) without managedFields.
 */
export function applyConfiguration(input: ApplyInput): ApplyResult {
  const { shape, live, config, manager, ignore } = input;
  const managers: ManagedSets = new Map(input.managers);
  const base = live ?? {};
  let merged = mergeValue(shape, base, config) as Record<string, unknown>;

  const lastSet = managers.get(manager)?.set;
  const configSet = toFieldSet(shape, config).recursiveDifference(ignore);
  managers.set(manager, { set: configSet, apiVersion: input.apiVersion, applied: true });
  if (lastSet && !lastSet.isEmpty()) merged = prune(shape, merged, managers, lastSet);

  const full = compare(shape, base, merged);
  const noop = full.added.isEmpty() && full.modified.isEmpty() && full.removed.isEmpty();
  const changed = full.modified.union(full.added).recursiveDifference(ignore);
  const removed = full.removed.recursiveDifference(ignore);

  const conflicts: Conflict[] = [];
  const conflictSets = new Map<string, FieldSet>();
  for (const id of [...managers.keys()].sort()) {
    if (id === manager) continue;
    const c = managers.get(id)!.set.intersection(changed);
    if (c.isEmpty()) continue;
    conflictSets.set(id, c);
    for (const path of c.paths()) conflicts.push({ manager: id, path });
  }
  if (conflicts.length > 0 && !input.force) throw new ApplyConflicts(conflicts);

  for (const [id, vs] of managers) {
    let set = vs.set;
    if (id !== manager) {
      const c = conflictSets.get(id);
      if (c) set = set.difference(c);
      set = set.difference(removed);
    }
    if (set.isEmpty()) managers.delete(id);
    else if (set !== vs.set)
      managers.set(id, { set, apiVersion: vs.apiVersion, applied: vs.applied });
  }
  return { object: noop ? undefined : merged, managers };
}

/**
 * Removes what `lastSet` had and nothing owns any more (upstream's prune, addBackOwnedItems and
 * addBackDanglingItems, in that order, as set algebra over the merged object).
 */
function prune(
  shape: Shape,
  merged: Record<string, unknown>,
  managers: ManagedSets,
  lastSet: FieldSet,
): Record<string, unknown> {
  const named = (s: FieldSet): FieldSet => s.ensureNamedFieldsAreMembers(shape);
  const last = named(lastSet);
  const pruned = removeItems(shape, merged, last);
  let owned = new FieldSet();
  for (const vs of managers.values()) owned = owned.union(vs.set);
  const mergedSet = named(toFieldSet(shape, merged));
  const keep = named(toFieldSet(shape, pruned)).union(named(owned));
  const addedBack = removeItems(shape, merged, mergedSet.difference(keep));
  const gone = mergedSet.difference(named(toFieldSet(shape, addedBack))).intersection(last);
  return (removeItems(shape, merged, gone) as Record<string, unknown> | undefined) ?? {};
}

// ---------------------------------------------------------------------------------------------
// Merge

/**
 * The merge of live value `l` and configuration value `r` (undefined: nothing). A null in the
 * configuration removes the value (upstream keeps a null that the typed object then drops).
 */
function mergeValue(shape: Shape, l: unknown, r: unknown): unknown {
  if (r === null) return undefined;
  if (r === undefined) return copyLive(l);
  if (l === undefined) return clone(r);
  const kind = valueKind(shape, l, r);
  if (kind === "map") {
    if ((shape.k === "struct" || shape.k === "map") && shape.atomic) return clone(r);
    if (emptyMap(l) && emptyMap(r)) return clone(r);
    return mergeMap(shape, l, r);
  }
  if (kind === "list") {
    const list = shape as Shape & { k: "list" };
    if (list.rel === "atomic" || (emptyList(l) && emptyList(r))) return clone(r);
    return mergeList(list, l, r);
  }
  return clone(r);
}

function mergeMap(shape: Shape, l: unknown, r: unknown): unknown {
  const lo = isObject(l) ? l : undefined;
  const ro = isObject(r) ? r : undefined;
  const out: Record<string, unknown> = {};
  const visit = (key: string): void => {
    const { child, lv } = liveChild(shape, lo, key);
    const v = mergeValue(child, lv, ro?.[key]);
    if (v !== undefined) out[key] = v;
  };
  if (lo) for (const key in lo) visit(key);
  if (ro) for (const key in ro) if (!lo || !(key in lo)) visit(key);
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The shape and live value of `key` in a live map (managedFields is never merged). */
function liveChild(
  shape: Shape,
  lo: Record<string, unknown> | undefined,
  key: string,
): { child: Shape; lv: unknown } {
  if (shape.k === "struct") {
    const fd = shape.type.jsonFields.get(key);
    if (!fd) return { child: DEDUCED, lv: lo?.[key] };
    const managed = key === "managedFields" && shape.type.name === OBJECT_META;
    return { child: fieldShape(fd), lv: managed ? undefined : lo?.[key] };
  }
  return { child: shape.k === "map" ? shape.values : DEDUCED, lv: lo?.[key] };
}

/** A copy of a live value (object metadata without managedFields). */
function copyLive(v: unknown): unknown {
  if (!isObject(v)) return clone(v);
  const out: Record<string, unknown> = {};
  for (const k in v) {
    if (v[k] === undefined) continue;
    if (k === "metadata" && isObject(v[k])) {
      const { managedFields: _, ...md } = v[k];
      out[k] = clone(md);
    } else out[k] = clone(v[k]);
  }
  return out;
}

const DEDUCED: Shape = { k: "deduced" };
const OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

function mergeList(shape: Shape & { k: "list" }, l: unknown, r: unknown): unknown {
  const la = Array.isArray(l) ? l : [];
  const ra = Array.isArray(r) ? r : [];
  let lpes: PathElement[];
  let rpes: PathElement[];
  try {
    lpes = la.map((item) => itemElement(shape, item));
    rpes = ra.map((item) => itemElement(shape, item));
  } catch (e) {
    if (e instanceof ItemError) return clone(r);
    throw e;
  }
  const observedR = new Map<string, unknown>();
  ra.forEach((item, i) => observedR.set(rpes[i]!.id, item));
  // A key the live list repeats merges as absent (upstream merges duplicates as nil).
  const observedL = new Map<string, unknown>();
  la.forEach((item, i) => {
    const id = lpes[i]!.id;
    observedL.set(id, observedL.has(id) ? undefined : item);
  });
  const shared = rpes.filter((pe) => observedL.has(pe.id)).map((pe) => pe.id);
  let sharedAt = 0;
  let nextShared: string | undefined = shared[sharedAt++];
  const advanceShared = (): void => {
    nextShared = shared[sharedAt++];
  };
  const mergedR = new Set<string>();
  const out: unknown[] = [];
  const push = (v: unknown): void => {
    if (v !== undefined) out.push(v);
  };
  let li = 0;
  let ri = 0;
  while (li < la.length || ri < ra.length) {
    if (li < la.length && ri < ra.length) {
      const id = lpes[li]!.id;
      if (id === rpes[ri]!.id) {
        mergedR.add(id);
        push(mergeValue(shape.items, observedL.get(id), observedR.get(id)));
        li++;
        ri++;
        advanceShared();
        continue;
      }
      if (observedR.has(id) && nextShared !== undefined && nextShared !== id) {
        li++;
        continue;
      }
    }
    if (li < la.length) {
      const id = lpes[li]!.id;
      if (!observedR.has(id)) {
        push(mergeValue(shape.items, la[li], undefined));
        li++;
        continue;
      } else if (mergedR.has(id)) {
        li++;
      }
    }
    if (ri < ra.length) {
      const id = rpes[ri]!.id;
      mergedR.add(id);
      push(mergeValue(shape.items, observedL.get(id), observedR.get(id)));
      ri++;
      if (nextShared === id) advanceShared();
    }
  }
  return out.length > 0 ? out : undefined;
}

function clone(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(clone);
  if (isObject(v)) {
    const out: Record<string, unknown> = {};
    for (const k in v) if (v[k] !== undefined) out[k] = clone(v[k]);
    return out;
  }
  return v;
}

function emptyMap(v: unknown): boolean {
  return v === undefined || v === null || (isObject(v) && Object.keys(v).length === 0);
}

function emptyList(v: unknown): boolean {
  return v === undefined || v === null || (Array.isArray(v) && v.length === 0);
}

// ---------------------------------------------------------------------------------------------
// Removal

/**
 * `v` without the items in `set` (upstream's RemoveItems): a member path goes with everything
 * below it; an atomic value with paths below it goes whole; a map or list left empty goes too
 * (upstream leaves a null there, which the typed object drops). Untouched subtrees are shared.
 */
export function removeItems(shape: Shape, v: unknown, set: FieldSet): unknown {
  if (set.isEmpty()) return v;
  const kind = valueKind(shape, v);
  if (kind === "list") {
    if (!Array.isArray(v) || v.length === 0) return undefined;
    const list = shape as Shape & { k: "list" };
    if (list.rel === "atomic") return undefined;
    const out: unknown[] = [];
    for (const item of v) {
      let pe: PathElement;
      try {
        pe = itemElement(list, item);
      } catch {
        out.push(item);
        continue;
      }
      if (set.hasMember(pe)) continue;
      const sub = set.child(pe);
      const kept = sub ? removeItems(list.items, item, sub) : item;
      if (kept !== undefined) out.push(kept);
    }
    return out.length > 0 ? out : undefined;
  }
  if (kind === "map") {
    if (!isObject(v) || Object.keys(v).length === 0) return undefined;
    if ((shape.k === "struct" || shape.k === "map") && shape.atomic) return undefined;
    const out: Record<string, unknown> = {};
    for (const key in v) {
      const pe = fieldElement(key);
      if (set.hasMember(pe)) continue;
      const sub = set.child(pe);
      if (sub) {
        const child =
          shape.k === "struct"
            ? (() => {
                const fd = shape.type.jsonFields.get(key);
                return fd ? fieldShape(fd) : DEDUCED;
              })()
            : shape.k === "map"
              ? shape.values
              : DEDUCED;
        const kept = removeItems(child, v[key], sub);
        if (kept !== undefined) out[key] = kept;
      } else out[key] = v[key];
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Validation of a configuration

/**
 * Upstream's validation of an apply configuration against the schema (typed.AsTyped): value
 * kinds, undeclared struct fields, list item keys and duplicates. Returns the errors as upstream
 * prints them (`.spec.foo: field not declared in schema`).
 */
export function validateConfiguration(shape: Shape, config: unknown): string[] {
  const errors: string[] = [];
  validateValue(shape, config, "", errors);
  return errors;
}

/** Upstream's text for a list of validation errors. */
export function validationMessage(errors: readonly string[]): string {
  return errors.length === 1 ? errors[0]! : ["errors:", ...errors.map((e) => "  " + e)].join("\n");
}

function err(errors: string[], path: string, message: string): void {
  errors.push(path ? `${path}: ${message}` : message);
}

function validateValue(shape: Shape, v: unknown, path: string, errors: string[]): void {
  if (v === null || v === undefined) return;
  switch (shape.k) {
    case "untyped":
      return;
    case "scalar":
      validateScalar(shape.scalar, v, path, errors);
      return;
    case "list": {
      if (!Array.isArray(v)) return err(errors, path, `expected list, got ${goV(v)}`);
      const seen = new Set<string>();
      for (let i = 0; i < v.length; i++) {
        let pe: string;
        if (shape.rel === "atomic") pe = `[${i}]`;
        else {
          let el: PathElement;
          try {
            el = itemElement(shape, v[i]);
          } catch (e) {
            if (!(e instanceof ItemError)) throw e;
            return err(errors, path, `element ${i}: ${e.message}`);
          }
          pe = pathString([el]);
          if (seen.has(el.id)) err(errors, path, `duplicate entries for key ${pe}`);
          seen.add(el.id);
        }
        validateValue(shape.items, v[i], path + pe, errors);
      }
      return;
    }
    case "deduced":
      if (!isObject(v)) return;
      for (const key in v) validateValue(DEDUCED, v[key], `${path}.${key}`, errors);
      return;
    case "map":
    case "struct": {
      if (!isObject(v)) return err(errors, path, `expected map, got ${goV(v)}`);
      for (const key in v) {
        if (shape.k === "map") {
          validateValue(shape.values, v[key], `${path}.${key}`, errors);
          continue;
        }
        const fd = shape.type.jsonFields.get(key);
        if (!fd) {
          err(errors, `${path}.${key}`, "field not declared in schema");
          return;
        }
        validateValue(fieldShape(fd), v[key], `${path}.${key}`, errors);
      }
      return;
    }
  }
}

function validateScalar(kind: string, v: unknown, path: string, errors: string[]): void {
  switch (kind) {
    case "numeric":
      if (typeof v !== "number") {
        err(errors, path, `expected numeric (int or float), got ${goType(v)}`);
      }
      return;
    case "string":
      if (typeof v !== "string") err(errors, path, `expected string, got ${goV(v)}`);
      return;
    case "boolean":
      if (typeof v !== "boolean") err(errors, path, `expected boolean, got ${goV(v)}`);
      return;
    default:
      if (typeof v === "object") err(errors, path, `expected any scalar, got ${goV(v)}`);
  }
}

/** Go's %T of a decoded JSON value. */
function goType(v: unknown): string {
  if (typeof v === "string") return "string";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "number") return Number.isInteger(v) ? "int64" : "float64";
  if (Array.isArray(v)) return "[]interface {}";
  if (isObject(v)) return "map[string]interface {}";
  return "<nil>";
}

/** Go's %v of a decoded JSON value. */
function goV(v: unknown): string {
  if (Array.isArray(v)) return "[" + v.map(goV).join(" ") + "]";
  if (isObject(v)) {
    return (
      "map[" +
      Object.keys(v)
        .sort()
        .map((k) => `${k}:${goV(v[k])}`)
        .join(" ") +
      "]"
    );
  }
  if (v === null || v === undefined) return "<nil>";
  return String(v);
}

// ---------------------------------------------------------------------------------------------
// Conflict errors

/**
 * Upstream's 409 for apply conflicts (NewConflictError): `Apply failed with 1 conflict: conflict
 * with "m" using apps/v1: .spec.replicas`, or for several, per manager in order:
 * `Apply failed with 2 conflicts: conflicts with "m" using apps/v1:\n- .spec.replicas\n- ...`,
 * with one FieldManagerConflict cause per field. `describe` prints a manager identity.
 */
export function conflictError(
  conflicts: readonly Conflict[],
  describe: (manager: string) => string,
): StatusError {
  const causes = conflicts.map((c) => ({
    reason: "FieldManagerConflict",
    message: `conflict with ${describe(c.manager)}`,
    field: pathString(c.path),
  }));
  let message: string;
  if (conflicts.length === 1) {
    const c = conflicts[0]!;
    message = `Apply failed with 1 conflict: conflict with ${describe(c.manager)}: ${pathString(c.path)}`;
  } else {
    const byManager = new Map<string, string[]>();
    for (const c of conflicts) {
      const list = byManager.get(c.manager) ?? [];
      list.push(pathString(c.path));
      byManager.set(c.manager, list);
    }
    const lines: string[] = [];
    for (const m of [...byManager.keys()].sort()) {
      lines.push(`conflicts with ${describe(m)}:`);
      for (const p of byManager.get(m)!) lines.push(`- ${p}`);
    }
    message = `Apply failed with ${conflicts.length} conflicts: ${lines.join("\n")}`;
  }
  return new StatusError(409, "Conflict", message, { causes });
}
