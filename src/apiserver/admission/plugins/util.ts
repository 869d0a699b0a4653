/**
 * What the admission plugins share: upstream's admission.NewForbidden (the name a refusal is
 * about), typed views of the loosely typed objects, the containers of a pod spec, and resource
 * list arithmetic over exact quantities.
 */
import type { Container, Pod, PodSpec } from "kubernetes-types/core/v1.js";
import { forbidden, type StatusError } from "../../../api/status.js";
import type { KObject } from "../../registry/types.js";
import {
  addQuantity,
  canonicalQuantity,
  cmpQuantity,
  quantityFromJSON,
  type Quantity,
} from "../../strategies/quantity.js";
import type { AdmissionAttributes } from "../types.js";

export { goQuote } from "../../auth/util.js";

/**
 * The refusal of a request by an admission plugin, as upstream's admission.NewForbidden: about
 * the request's name, else the object's name or generateName, else "Unknown".
 */
export function admissionForbidden(a: AdmissionAttributes, why: string): StatusError {
  const meta = a.object?.metadata;
  const name = a.name || meta?.name || meta?.generateName || "Unknown";
  return forbidden({ group: a.group, resource: a.resource }, name, why);
}

/** Whether a request is about `group`/`resource` (any version). */
export function isResource(a: AdmissionAttributes, group: string, resource: string): boolean {
  return a.group === group && a.resource === resource;
}

export const asPod = (o: KObject): Pod => o as unknown as Pod;

/** The pod spec of a pod, created when missing so that plugins can fill it in. */
export function podSpec(pod: Pod): PodSpec {
  return (pod.spec ??= { containers: [] });
}

/** Every container of a spec in upstream's order: init containers, containers, ephemeral ones. */
export function allContainers(spec: PodSpec): Container[] {
  return [
    ...(spec.initContainers ?? []),
    ...(spec.containers ?? []),
    ...((spec.ephemeralContainers ?? []) as Container[]),
  ];
}

/** The mirror pod annotation the kubelet puts on the API copies of its static pods. */
export const MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror";

/** Whether any part of a pod (volumes, env, envFrom, image pull secrets) names a Secret. */
export function podReferencesSecrets(spec: PodSpec): boolean {
  if ((spec.imagePullSecrets ?? []).length > 0) return true;
  for (const c of allContainers(spec)) {
    for (const e of c.envFrom ?? []) if (e.secretRef) return true;
    for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef) return true;
  }
  for (const v of spec.volumes ?? []) {
    if (v.secret) return true;
    for (const s of v.projected?.sources ?? []) if (s.secret) return true;
    const refs = [
      v.azureFile ? { name: v.azureFile.secretName } : undefined,
      v.cephfs?.secretRef,
      v.cinder?.secretRef,
      v.flexVolume?.secretRef,
      v.rbd?.secretRef,
      v.scaleIO?.secretRef,
      v.iscsi?.secretRef,
      v.storageos?.secretRef,
      v.csi?.nodePublishSecretRef,
    ];
    if (refs.some((r) => r !== undefined && r !== null)) return true;
  }
  return false;
}

/** Whether any part of a pod (volumes, env, envFrom) names a ConfigMap. */
export function podReferencesConfigMaps(spec: PodSpec): boolean {
  for (const c of allContainers(spec)) {
    for (const e of c.envFrom ?? []) if (e.configMapRef) return true;
    for (const e of c.env ?? []) if (e.valueFrom?.configMapKeyRef) return true;
  }
  for (const v of spec.volumes ?? []) {
    if (v.configMap) return true;
    for (const s of v.projected?.sources ?? []) if (s.configMap) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Resource lists (upstream's quota helpers), over exact quantities.

export type ResourceList = Map<string, Quantity>;

/** A JSON ResourceList as quantities (malformed entries, which validation refuses, are skipped). */
export function resourceList(v: unknown): ResourceList {
  const out: ResourceList = new Map();
  if (typeof v !== "object" || v === null || Array.isArray(v)) return out;
  for (const [k, raw] of Object.entries(v as Record<string, unknown>)) {
    try {
      out.set(k, quantityFromJSON(raw));
    } catch {
      // left to validation
    }
  }
  return out;
}

/** A quantity as upstream's Quantity.String() prints it. */
export const showQuantity = (q: Quantity): string => canonicalQuantity(q);

export const negate = (q: Quantity): Quantity => ({ ...q, n: -q.n, cached: undefined });

export function subtractQuantity(a: Quantity, b: Quantity): Quantity {
  const r = addQuantity(a, negate(b));
  return { n: r.n, scale: r.scale, format: a.format };
}

export const ZERO_QUANTITY: Quantity = { n: 0n, scale: 0, format: "DecimalSI" };

export const quantity = (n: number): Quantity => ({
  n: BigInt(n),
  scale: 0,
  format: "DecimalSI",
});

/**
 * Sums two lists key by key (keys of either). A sum keeps the format of its first term, unless
 * that is zero (upstream's Quantity.Add: 0 + 512Mi is 512Mi, not 536870912).
 */
export function addLists(a: ResourceList, b: ResourceList): ResourceList {
  const out: ResourceList = new Map(a);
  for (const [k, v] of b) {
    const cur = out.get(k);
    if (!cur) out.set(k, v);
    else out.set(k, { ...addQuantity(cur, v), format: cur.n === 0n ? v.format : cur.format });
  }
  return out;
}

/** Sets each key of `into` to the larger of its value and `other`'s. */
export function maxInto(into: ResourceList, other: ResourceList): void {
  for (const [k, v] of other) {
    const cur = into.get(k);
    if (!cur || cmpQuantity(v, cur) > 0) into.set(k, v);
  }
}

/** The entries of `list` whose keys are in `names`. */
export function mask(list: ResourceList, names: Iterable<string>): ResourceList {
  const keep = new Set(names);
  return new Map([...list].filter(([k]) => keep.has(k)));
}

/** Upstream's printing of a resource list in messages: `a=1,b=2Gi`, sorted by name. */
export function prettyPrint(list: ResourceList): string {
  return [...list.keys()]
    .sort()
    .map((k) => `${k}=${showQuantity(list.get(k)!)}`)
    .join(",");
}

/** A resource list as JSON, as the API serves it. */
export function listToJSON(list: ResourceList): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of [...list.keys()].sort()) out[k] = showQuantity(list.get(k)!);
  return out;
}

/** Go's sort.Strings order (byte order, which differs from localeCompare). */
export function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
