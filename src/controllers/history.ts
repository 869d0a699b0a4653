/**
 * ControllerRevisions, as upstream's pkg/controller/history keeps them for DaemonSets and
 * StatefulSets: each revision holds a strategic merge patch that puts back one pod template
 * (`{"spec":{"template":{"$patch":"replace",...}}}`), a `revision` number that grows with every
 * change (a rollback renumbers the old revision instead of copying it), and the owner's
 * controller reference. `kubectl rollout history` lists them and `kubectl rollout undo` applies
 * their data, so the data is encoded byte for byte as Go's encoding/json writes it (keys sorted,
 * HTML characters escaped): kubectl compares those bytes with its own encoding of the template.
 *
 * Names are `<owner>-<hash>`. A StatefulSet hashes the patch bytes with 32-bit FNV-1 and the
 * collision count (HashControllerRevision); a DaemonSet names its revisions with the template
 * hash its pods carry in `controller-revision-hash` (see daemonset.ts).
 */

import type { ControllerRevision } from "kubernetes-types/apps/v1.js";
import type { OwnerReference } from "kubernetes-types/meta/v1.js";
import { isStatusError } from "../api/status.js";
import type { KObject } from "../client/kinds.js";
import type { ResourceClient } from "../client/resources.js";
import { controllerRef, creationTime, safeEncodeString } from "./util.js";

/** The label holding a revision's hash (history.ControllerRevisionHashLabel). */
export const CONTROLLER_REVISION_HASH_LABEL = "controller.kubernetes.io/hash";

/**
 * A JSON value as Go's encoding/json writes a `map[string]interface{}` holding it: object keys
 * sorted, no spaces, `<`, `>`, `&`, U+2028 and U+2029 escaped. Undefined fields are dropped.
 */
export function goJSON(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "string") return goString(v);
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : "null";
  if (typeof v === "boolean") return v ? "true" : "false";
  if (Array.isArray(v)) return `[${v.map(goJSON).join(",")}]`;
  if (typeof v === "object") {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort(compareBytes);
    return `{${keys.map((k) => `${goString(k)}:${goJSON(o[k])}`).join(",")}}`;
  }
  return "null";
}

/** Go sorts map keys by their UTF-8 bytes. */
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

function goString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => {
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
}

/** 32-bit FNV-1 (Go's fnv.New32) over the given byte strings. */
export function fnv32(...parts: string[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    for (const b of Buffer.from(p, "utf8")) {
      h = Math.imul(h, 0x01000193) >>> 0;
      h = (h ^ b) >>> 0;
    }
  }
  return h >>> 0;
}

/** HashControllerRevision: FNV-1 of the data bytes and the collision count, safely encoded. */
export function hashControllerRevision(data: string, probe?: number): string {
  const parts = [data];
  if (probe !== undefined) parts.push(String(probe));
  return safeEncodeString(String(fnv32(...parts)));
}

/** `<prefix>-<hash>`, the prefix cut to 223 characters so the name stays within 253. */
export function controllerRevisionName(prefix: string, hash: string): string {
  return `${prefix.length > 223 ? prefix.slice(0, 223) : prefix}-${hash}`;
}

/**
 * The strategic merge patch a revision stores for an owner with a pod template: the template
 * (as the API server serves it) under `spec.template` with `"$patch":"replace"`, Go-encoded.
 */
export function templatePatch(owner: { spec?: { template?: unknown } }): string {
  const template = { ...((owner.spec?.template ?? {}) as Record<string, unknown>) };
  template.$patch = "replace";
  return goJSON({ spec: { template } });
}

/** The Go encoding of a revision's data, as it was when the revision was written. */
export function revisionData(rev: ControllerRevision): string {
  return goJSON(rev.data ?? null);
}

/**
 * The pod template a revision's patch puts back (what applying the patch to the owner yields
 * under `spec.template`).
 */
export function revisionTemplate<T>(rev: ControllerRevision): T | undefined {
  const data = rev.data as { spec?: { template?: Record<string, unknown> } } | undefined;
  const t = data?.spec?.template;
  if (!t) return undefined;
  const copy = structuredClone(t);
  delete copy.$patch;
  return copy as T;
}

/**
 * A new revision of `parent` (NewControllerRevision): the template's labels plus the hash label,
 * the parent's controller reference, `data` and `revision`; named from the hash of the data and
 * the collision count.
 */
export function newControllerRevision(
  parent: KObject,
  ref: OwnerReference,
  templateLabels: Record<string, string> | undefined,
  data: string,
  revision: number,
  collisionCount?: number,
): ControllerRevision {
  const hash = hashControllerRevision(data, collisionCount);
  return {
    apiVersion: "apps/v1",
    kind: "ControllerRevision",
    metadata: {
      name: controllerRevisionName(parent.metadata?.name ?? "", hash),
      namespace: parent.metadata?.namespace,
      labels: { ...(templateLabels ?? {}), [CONTROLLER_REVISION_HASH_LABEL]: hash },
      ownerReferences: [ref],
    },
    data: JSON.parse(data) as object,
    revision,
  };
}

/** Sorts by revision, then creation time, then name (SortControllerRevisions); in place. */
export function sortControllerRevisions(revs: ControllerRevision[]): ControllerRevision[] {
  return revs.sort((a, b) => {
    if (a.revision !== b.revision) return a.revision - b.revision;
    const d = creationTime(a) - creationTime(b);
    if (d !== 0) return d;
    const an = a.metadata?.name ?? "";
    const bn = b.metadata?.name ?? "";
    return an < bn ? -1 : an > bn ? 1 : 0;
  });
}

function parsedHash(rev: ControllerRevision): number | undefined {
  const s = rev.metadata?.labels?.[CONTROLLER_REVISION_HASH_LABEL];
  if (s === undefined || !/^[+-]?\d+$/.test(s)) return undefined;
  const n = Number(s);
  return n >= -(2 ** 31) && n < 2 ** 31 ? n >>> 0 : undefined;
}

/**
 * Whether two revisions hold the same data (EqualRevision): hash labels that parse as numbers
 * and differ settle it; otherwise the data bytes are compared.
 */
export function equalRevision(
  a: ControllerRevision | undefined,
  b: ControllerRevision | undefined,
): boolean {
  if (!a || !b) return a === b;
  const ha = parsedHash(a);
  const hb = parsedHash(b);
  if (ha !== undefined && hb !== undefined && ha !== hb) return false;
  return revisionData(a) === revisionData(b);
}

/** The revisions equal to `needle`, in their order (FindEqualRevisions). */
export function findEqualRevisions(
  revs: ControllerRevision[],
  needle: ControllerRevision,
): ControllerRevision[] {
  return revs.filter((r) => equalRevision(r, needle));
}

/** One more than the highest revision of a sorted list, 1 for none (nextRevision). */
export function nextRevision(sorted: ControllerRevision[]): number {
  const last = sorted[sorted.length - 1];
  return last ? last.revision + 1 : 1;
}

export function maxRevision(revs: ControllerRevision[]): number {
  let max = 0;
  for (const r of revs) if (r.revision > max) max = r.revision;
  return max;
}

/**
 * The revisions of `parent` among `all` (ListControllerRevisions): those of its namespace that
 * `matches` selects and that it controls or that have no controller.
 */
export function listControllerRevisions(
  parent: KObject,
  all: ControllerRevision[],
  matches: (labels: Record<string, string> | undefined) => boolean,
): ControllerRevision[] {
  const uid = parent.metadata?.uid;
  return all.filter((r) => {
    if (r.metadata?.namespace !== parent.metadata?.namespace) return false;
    if (!matches(r.metadata?.labels)) return false;
    const ref = controllerRef(r);
    return !ref || ref.uid === uid;
  });
}

/** The writes of upstream's realHistory, over one namespace's ControllerRevisions. */
export class ControllerHistory {
  constructor(private readonly revisions: ResourceClient<ControllerRevision>) {}

  /**
   * Creates `revision` for `parent`, renaming it with a bumped collision count while another
   * revision holds its name with different data; an existing revision with the same data is
   * answered as is. `collision.count` is updated in place (CreateControllerRevision).
   */
  async create(
    parent: KObject,
    revision: ControllerRevision,
    collision: { count: number },
  ): Promise<ControllerRevision> {
    const data = revisionData(revision);
    for (;;) {
      const hash = hashControllerRevision(data, collision.count);
      const clone = structuredClone(revision);
      clone.metadata!.name = controllerRevisionName(parent.metadata?.name ?? "", hash);
      clone.metadata!.namespace = parent.metadata?.namespace;
      try {
        return await this.revisions.create(clone);
      } catch (err) {
        if (!isStatusError(err, "AlreadyExists")) throw err;
        const exists = await this.revisions.get(clone.metadata!.name!);
        if (revisionData(exists) === data) return exists;
        collision.count++;
      }
    }
  }

  /** Sets the revision number, retrying on conflicts (UpdateControllerRevision). */
  async updateRevision(rev: ControllerRevision, revision: number): Promise<ControllerRevision> {
    let clone = structuredClone(rev);
    for (let attempt = 0; ; attempt++) {
      if (clone.revision === revision) return clone;
      clone.revision = revision;
      try {
        return await this.revisions.update(clone);
      } catch (err) {
        if (!isStatusError(err, "Conflict") || attempt >= 4) throw err;
        clone = await this.revisions.get(rev.metadata!.name!);
      }
    }
  }

  async delete(rev: ControllerRevision): Promise<void> {
    try {
      await this.revisions.delete(rev.metadata!.name!);
    } catch (err) {
      if (!isStatusError(err, "NotFound")) throw err;
    }
  }

  /** Adds the parent's controller reference to an orphan (AdoptControllerRevision). */
  async adopt(ref: OwnerReference, rev: ControllerRevision): Promise<ControllerRevision> {
    const owner = controllerRef(rev);
    if (owner) throw new Error(`attempt to adopt revision owned by ${JSON.stringify(owner)}`);
    return this.revisions.patch(rev.metadata!.name!, "strategic", {
      metadata: { ownerReferences: [ref], uid: rev.metadata?.uid },
    });
  }
}
