/**
 * Helpers the controllers share, as upstream's pkg/controller (controller_utils.go) and
 * apimachinery provide them: label selectors as objects, owner references, pod readiness and
 * availability, int-or-percent values, slow-start batches, the hash that names a template's
 * ReplicaSet, and the expectations that keep a controller from acting twice on a stale cache.
 */

import type { Pod } from "kubernetes-types/core/v1.js";
import type { LabelSelector, OwnerReference } from "kubernetes-types/meta/v1.js";
import type { KindName, KObject, ObjectOf } from "../client/kinds.js";
import type { Watch } from "../client/controller.js";
import { formatTime } from "../api/time.js";
import { labelSelectorMatches } from "../api/selectors.js";

export type Labels = Record<string, string> | undefined;

/**
 * Whether `labels` match a LabelSelector (matchLabels and matchExpressions). An empty selector
 * matches everything; `undefined` (no selector) matches nothing, as metav1.LabelSelectorAsSelector.
 */
export function selectorMatches(sel: LabelSelector | undefined, labels: Labels): boolean {
  return !!sel && labelSelectorMatches(sel, labels);
}

/** True for a selector that selects every object (no labels, no expressions). */
export function selectorIsEmpty(sel: LabelSelector | undefined): boolean {
  return (
    !!sel && !Object.keys(sel.matchLabels ?? {}).length && !(sel.matchExpressions ?? []).length
  );
}

/** A map selector (ReplicationController, Service): every pair must match; empty matches none. */
export function mapSelectorMatches(sel: Labels, labels: Labels): boolean {
  if (!sel || Object.keys(sel).length === 0) return false;
  const l = labels ?? {};
  for (const [k, v] of Object.entries(sel)) if (l[k] !== v) return false;
  return true;
}

/** The label selector text of a LabelSelector, for list calls. */
export function selectorString(sel: LabelSelector | undefined): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(sel?.matchLabels ?? {})) parts.push(`${k}=${v}`);
  for (const e of sel?.matchExpressions ?? []) {
    const values = [...(e.values ?? [])].sort().join(",");
    if (e.operator === "In") parts.push(`${e.key} in (${values})`);
    else if (e.operator === "NotIn") parts.push(`${e.key} notin (${values})`);
    else if (e.operator === "Exists") parts.push(e.key);
    else if (e.operator === "DoesNotExist") parts.push(`!${e.key}`);
  }
  return parts.join(",");
}

/** The ownerReference with `controller: true`, if any. */
export function controllerRef(obj: KObject): OwnerReference | undefined {
  return obj.metadata?.ownerReferences?.find((r) => r.controller === true);
}

/** The reference a controller puts on what it creates (metav1.NewControllerRef). */
export function newControllerRef(owner: KObject, apiVersion: string, kind: string): OwnerReference {
  return {
    apiVersion,
    kind,
    name: owner.metadata?.name ?? "",
    uid: owner.metadata?.uid ?? "",
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** The index of pods (or ReplicaSets) by controller uid; orphans are filed under "". */
export const CONTROLLER_UID_INDEX = "controllerUID";
export function controllerUIDIndexFunc(obj: KObject): string[] {
  return [controllerRef(obj)?.uid ?? ""];
}

export function isPodReady(pod: Pod): boolean {
  return !!pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
}

/** Ready for at least `minReadySeconds` at `now` (podutil.IsPodAvailable). */
export function isPodAvailable(pod: Pod, minReadySeconds: number, now: number): boolean {
  const c = pod.status?.conditions?.find((x) => x.type === "Ready");
  if (!c || c.status !== "True") return false;
  if (minReadySeconds <= 0) return true;
  const t = c.lastTransitionTime ? Date.parse(c.lastTransitionTime) : NaN;
  return Number.isFinite(t) && t + minReadySeconds * 1000 <= now;
}

/** Not finished and not being deleted (controller.IsPodActive). */
export function isPodActive(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return phase !== "Succeeded" && phase !== "Failed" && !pod.metadata?.deletionTimestamp;
}

/**
 * An IntOrString of a rolling update (`25%` or `1`) scaled against `total`: a percentage rounds
 * up or down as asked (intstr.GetScaledValueFromIntOrPercent).
 */
export function scaledValue(
  v: number | string | undefined,
  total: number,
  roundUp: boolean,
  def: number | string,
): number {
  const value = v ?? def;
  if (typeof value === "number") return value;
  const m = /^(\d+)%$/.exec(value);
  if (!m) {
    const n = Number(value);
    if (Number.isInteger(n)) return n;
    throw new Error(`invalid value for IntOrString: invalid value "${value}"`);
  }
  const scaled = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(scaled) : Math.floor(scaled);
}

/**
 * Runs `fn` `count` times in batches of 1, 2, 4, ... (upstream's slowStartBatch): a batch runs
 * concurrently, and a batch with a failure stops the rest. Answers the successes and the first
 * error.
 */
export async function slowStartBatch(
  count: number,
  initialBatchSize: number,
  fn: (i: number) => Promise<void>,
): Promise<{ successes: number; error?: unknown }> {
  let remaining = count;
  let successes = 0;
  let index = 0;
  for (let batch = Math.min(remaining, initialBatchSize); batch > 0;) {
    const results = await Promise.allSettled(Array.from({ length: batch }, () => fn(index++)));
    let error: unknown;
    for (const r of results) {
      if (r.status === "fulfilled") successes++;
      else error ??= r.reason;
    }
    if (error !== undefined) return { successes, error };
    remaining -= batch;
    batch = Math.min(2 * batch, remaining);
  }
  return { successes };
}

/** The characters of upstream's SafeEncodeString (no vowels, no look-alikes). */
const SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789";

/** Maps each character of `s` into the safe alphabet, as rand.SafeEncodeString. */
export function safeEncodeString(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) out += SAFE_ALPHABET[s.charCodeAt(i) % SAFE_ALPHABET.length];
  return out;
}

/** JSON with object keys sorted, so equal objects encode equally. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v && typeof v === "object") {
    const keys = Object.keys(v).sort();
    return `{${keys
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

/** 32-bit FNV-1a of a string's UTF-8 bytes. */
export function fnv32a(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, "utf8")) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * The `pod-template-hash` of a template (controller.ComputeHash): FNV-1a of the template, plus
 * the collision count when there is one, in the safe alphabet. Deterministic, so every controller
 * manager names a template's ReplicaSet alike.
 */
export function computeHash(template: unknown, collisionCount?: number): string {
  let s = canonicalJson(template ?? {});
  if (collisionCount !== undefined && collisionCount !== null) s += `#${collisionCount}`;
  return safeEncodeString(String(fnv32a(s)));
}

/** Deep equality of JSON values where a missing field, null and an empty object or list agree. */
export function semanticEqual(a: unknown, b: unknown): boolean {
  const empty = (v: unknown) =>
    v === undefined ||
    v === null ||
    (Array.isArray(v) && v.length === 0) ||
    (typeof v === "object" && !Array.isArray(v) && Object.keys(v as object).length === 0);
  if (empty(a) && empty(b)) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => semanticEqual(x, b[i]));
  }
  if (a && b && typeof a === "object" && typeof b === "object") {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys)
      if (!semanticEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
        return false;
    return true;
  }
  return a === b;
}

export function nowTime(now: number): string {
  return formatTime(new Date(now));
}

export function creationTime(obj: KObject): number {
  const t = obj.metadata?.creationTimestamp;
  return t ? Date.parse(t) : 0;
}

/** Oldest first, ties by name (controller.ReplicaSetsByCreationTimestamp and friends). */
export function byCreation(a: KObject, b: KObject): number {
  const d = creationTime(a) - creationTime(b);
  if (d !== 0) return d;
  return (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? "");
}

const EXPECTATIONS_TTL = 5 * 60_000;

interface Expectation {
  add: number;
  del: number;
  /** Keys of pods whose deletion is awaited (UIDTrackingControllerExpectations). */
  deleting: Set<string>;
  at: number;
}

/**
 * What a controller is waiting to see in its cache after its own creates and deletes
 * (ControllerExpectations with UID tracking for deletions). A controller acts on a key only
 * once its expectations are satisfied (all seen) or expired (5 minutes), so a cache that lags
 * behind its writes never makes it create or delete twice.
 */
export class Expectations {
  private readonly items = new Map<string, Expectation>();

  constructor(private readonly now: () => number = Date.now) {}

  satisfied(key: string): boolean {
    const e = this.items.get(key);
    if (!e) return true;
    if (e.add <= 0 && e.del <= 0) return true;
    return this.now() - e.at > EXPECTATIONS_TTL;
  }

  expectCreations(key: string, n: number): void {
    this.items.set(key, { add: n, del: 0, deleting: new Set(), at: this.now() });
  }

  expectDeletions(key: string, podKeys: string[]): void {
    this.items.set(key, {
      add: 0,
      del: podKeys.length,
      deleting: new Set(podKeys),
      at: this.now(),
    });
  }

  creationObserved(key: string): void {
    const e = this.items.get(key);
    if (e) e.add--;
  }

  /** A pod of `key` is gone or going; counts once per pod. */
  deletionObserved(key: string, podKey: string): void {
    const e = this.items.get(key);
    if (e && e.deleting.delete(podKey)) e.del--;
  }

  delete(key: string): void {
    this.items.delete(key);
  }

  /** For tests and logs. */
  get(key: string): { add: number; del: number } | undefined {
    const e = this.items.get(key);
    return e ? { add: e.add, del: e.del } : undefined;
  }
}

/** A typed `watches` entry of a controller declaration. */
export function watchOf<K extends KindName>(
  kind: K,
  map: (obj: ObjectOf<K>) => Iterable<string>,
): Watch<KindName> {
  return { kind, map: map as unknown as Watch<KindName>["map"] };
}

/** Drops zero counts and empty lists, as Go omits `omitempty` fields when encoding a status. */
export function omitEmpty<T extends object>(status: T, keep: string[] = []): T {
  const out = { ...status } as Record<string, unknown>;
  for (const [k, v] of Object.entries(out)) {
    if (keep.includes(k)) continue;
    if (v === 0 || v === undefined || (Array.isArray(v) && v.length === 0)) delete out[k];
  }
  return out as T;
}
