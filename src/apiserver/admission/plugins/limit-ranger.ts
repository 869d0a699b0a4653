/**
 * LimitRanger: the LimitRanges of a namespace default and bound what its pods and claims ask
 * for. On create, a container (or init container) without a request or limit for a resource gets
 * the `defaultRequest` / `default` of each LimitRange item of type Container (noted in the
 * kubernetes.io/limit-ranger annotation); then every container must stay within the items' `min`,
 * `max` and `maxLimitRequestRatio`, the pod as a whole within the Pod items', and a
 * PersistentVolumeClaim's storage request within the PersistentVolumeClaim items'. As upstream
 * 1.32's plugin, with its messages; comparisons use exact values at milli precision.
 */
import type { Container, Pod } from "kubernetes-types/core/v1.js";
import type { KObject } from "../../registry/types.js";
import { aggregateMessage } from "../../auth/util.js";
import type { Quantity } from "../../strategies/quantity.js";
import type { AdmissionAttributes, AdmissionContext, AdmissionPlugin } from "../types.js";
import {
  addLists,
  admissionForbidden,
  asPod,
  isResource,
  listToJSON,
  maxInto,
  podSpec,
  resourceList,
  showQuantity,
  type ResourceList,
} from "./util.js";

export const LIMIT_RANGER_ANNOTATION = "kubernetes.io/limit-ranger";

interface LimitRangeItem {
  type?: string;
  max?: Record<string, string>;
  min?: Record<string, string>;
  default?: Record<string, string>;
  defaultRequest?: Record<string, string>;
  maxLimitRequestRatio?: Record<string, string>;
}

const itemsOf = (lr: KObject): LimitRangeItem[] =>
  ((lr.spec as { limits?: LimitRangeItem[] } | undefined)?.limits ?? []) as LimitRangeItem[];

const MAX_MILLI_VALUE = ((1n << 63n) - 1n) / 1000n;

/** The value of q in units of 10^scale, rounded up (upstream's ScaledValue). */
function scaledValue(q: Quantity, scale: number): bigint {
  const shift = q.scale - scale;
  if (shift >= 0) return q.n * 10n ** BigInt(shift);
  const d = 10n ** BigInt(-shift);
  const r = q.n / d;
  return q.n % d === 0n ? r : q.n > 0n ? r + 1n : r - 1n;
}

/** Request, limit and enforced values at a common precision (milli when none would overflow). */
function enforcedValues(
  req: Quantity | undefined,
  lim: Quantity | undefined,
  enforced: Quantity,
): [bigint, bigint, bigint] {
  const v = (q: Quantity | undefined, s: number) => (q ? scaledValue(q, s) : 0n);
  const units = [v(req, 0), v(lim, 0), v(enforced, 0)] as [bigint, bigint, bigint];
  if (units.every((x) => x <= MAX_MILLI_VALUE)) return [v(req, -3), v(lim, -3), v(enforced, -3)];
  return units;
}

function minConstraint(
  type: string,
  name: string,
  enforced: Quantity,
  request: ResourceList,
  limit: ResourceList,
): string | undefined {
  const req = request.get(name);
  const lim = limit.get(name);
  const [r, l, e] = enforcedValues(req, lim, enforced);
  const min = showQuantity(enforced);
  if (!req) return `minimum ${name} usage per ${type} is ${min}.  No request is specified`;
  if (r < e)
    return `minimum ${name} usage per ${type} is ${min}, but request is ${showQuantity(req)}`;
  if (lim && l < e) {
    return `minimum ${name} usage per ${type} is ${min}, but limit is ${showQuantity(lim)}`;
  }
  return undefined;
}

function maxRequestConstraint(
  type: string,
  name: string,
  enforced: Quantity,
  request: ResourceList,
): string | undefined {
  const req = request.get(name);
  const [r, , e] = enforcedValues(req, undefined, enforced);
  const max = showQuantity(enforced);
  if (!req) return `maximum ${name} usage per ${type} is ${max}.  No request is specified`;
  if (r > e)
    return `maximum ${name} usage per ${type} is ${max}, but request is ${showQuantity(req)}`;
  return undefined;
}

function maxConstraint(
  type: string,
  name: string,
  enforced: Quantity,
  request: ResourceList,
  limit: ResourceList,
): string | undefined {
  const req = request.get(name);
  const lim = limit.get(name);
  const [r, l, e] = enforcedValues(req, lim, enforced);
  const max = showQuantity(enforced);
  if (!lim) return `maximum ${name} usage per ${type} is ${max}.  No limit is specified`;
  if (l > e)
    return `maximum ${name} usage per ${type} is ${max}, but limit is ${showQuantity(lim)}`;
  if (req && r > e) {
    return `maximum ${name} usage per ${type} is ${max}, but request is ${showQuantity(req)}`;
  }
  return undefined;
}

function ratioConstraint(
  type: string,
  name: string,
  enforced: Quantity,
  request: ResourceList,
  limit: ResourceList,
): string | undefined {
  const req = request.get(name);
  const lim = limit.get(name);
  const [r, l] = enforcedValues(req, lim, enforced);
  const ratio = showQuantity(enforced);
  if (!req || r === 0n) {
    return `${name} max limit to request ratio per ${type} is ${ratio}, but no request is specified or request is 0`;
  }
  if (!lim || l === 0n) {
    return `${name} max limit to request ratio per ${type} is ${ratio}, but no limit is specified or limit is 0`;
  }
  const observed = Number(l) / Number(r);
  let compared = observed;
  let allowed = Number(scaledValue(enforced, 0));
  if (scaledValue(enforced, 0) <= MAX_MILLI_VALUE) {
    compared = observed * 1000;
    allowed = Number(scaledValue(enforced, -3));
  }
  if (compared > allowed) {
    return `${name} max limit to request ratio per ${type} is ${ratio}, but provided ratio is ${observed.toFixed(6)}`;
  }
  return undefined;
}

type Check = (
  type: string,
  name: string,
  enforced: Quantity,
  request: ResourceList,
  limit: ResourceList,
) => string | undefined;

/** Runs a check for each resource of a LimitRange item's list, in name order. */
function each(
  errs: string[],
  bounds: Record<string, string> | undefined,
  type: string,
  check: Check,
  request: ResourceList,
  limit: ResourceList,
): void {
  const list = resourceList(bounds);
  for (const name of [...list.keys()].sort()) {
    const msg = check(type, name, list.get(name)!, request, limit);
    if (msg) errs.push(msg);
  }
}

/** Fills in a container's missing requests and limits; returns what it noted. */
function mergeContainer(
  c: Container,
  defaults: { requests: Record<string, string>; limits: Record<string, string> },
  kind: string,
  notes: string[],
): void {
  const resources = (c.resources ??= {});
  const limits = (resources.limits ??= {});
  const requests = (resources.requests ??= {});
  const setLimits: string[] = [];
  const setRequests: string[] = [];
  for (const [k, v] of Object.entries(defaults.limits)) {
    if (!(k in limits)) {
      limits[k] = v;
      setLimits.push(k);
    }
  }
  for (const [k, v] of Object.entries(defaults.requests)) {
    if (!(k in requests)) {
      requests[k] = v;
      setRequests.push(k);
    }
  }
  // Empty lists are not served (omitempty): leave none behind.
  if (Object.keys(limits).length === 0) delete resources.limits;
  if (Object.keys(requests).length === 0) delete resources.requests;
  if (setRequests.length > 0) {
    notes.push(`${setRequests.sort().join(", ")} request for ${kind} ${c.name}`);
  }
  if (setLimits.length > 0)
    notes.push(`${setLimits.sort().join(", ")} limit for ${kind} ${c.name}`);
}

/** Upstream's PodMutateLimitFunc: the Container items' defaults into every container. */
export function podMutateLimits(lr: KObject, pod: Pod): void {
  const defaults = { requests: {} as Record<string, string>, limits: {} as Record<string, string> };
  for (const item of itemsOf(lr)) {
    if (item.type !== "Container") continue;
    Object.assign(defaults.requests, listToJSON(resourceList(item.defaultRequest)));
    Object.assign(defaults.limits, listToJSON(resourceList(item.default)));
  }
  const spec = podSpec(pod);
  const notes: string[] = [];
  for (const c of spec.containers ?? []) mergeContainer(c, defaults, "container", notes);
  for (const c of spec.initContainers ?? []) mergeContainer(c, defaults, "init container", notes);
  if (notes.length > 0) {
    const meta = (pod.metadata ??= {});
    meta.annotations = {
      ...(meta.annotations ?? {}),
      [LIMIT_RANGER_ANNOTATION]: `LimitRanger plugin set: ${notes.join("; ")}`,
    };
  }
}

const requestsOf = (c: Container) => resourceList(c.resources?.requests);
const limitsOf = (c: Container) => resourceList(c.resources?.limits);

/**
 * A pod's effective requests or limits (upstream's PodRequests/PodLimits): containers and
 * sidecars add up; each ordinary init container counts with the sidecars started before it; the
 * pod needs the larger of the two.
 */
export function podTotals(pod: Pod, of: (c: Container) => ResourceList): ResourceList {
  const spec = podSpec(pod);
  let total: ResourceList = new Map();
  for (const c of spec.containers ?? []) total = addLists(total, of(c));
  let sidecars: ResourceList = new Map();
  const initMax: ResourceList = new Map();
  for (const c of spec.initContainers ?? []) {
    let own = of(c);
    if (c.restartPolicy === "Always") {
      total = addLists(total, own);
      sidecars = addLists(sidecars, own);
      own = sidecars;
    } else {
      own = addLists(own, sidecars);
    }
    maxInto(initMax, own);
  }
  maxInto(total, initMax);
  return total;
}

/** Upstream's PodValidateLimitFunc: why a pod breaks a LimitRange, or undefined. */
export function podValidateLimits(lr: KObject, pod: Pod): string | undefined {
  const errs: string[] = [];
  const spec = podSpec(pod);
  for (const item of itemsOf(lr)) {
    const type = item.type ?? "";
    if (type === "Container") {
      for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
        const req = requestsOf(c);
        const lim = limitsOf(c);
        each(errs, item.min, type, minConstraint, req, lim);
        each(errs, item.max, type, maxConstraint, req, lim);
        each(errs, item.maxLimitRequestRatio, type, ratioConstraint, req, lim);
      }
    }
    if (type === "Pod") {
      const req = podTotals(pod, requestsOf);
      const lim = podTotals(pod, limitsOf);
      each(errs, item.min, type, minConstraint, req, lim);
      each(errs, item.max, type, maxConstraint, req, lim);
      each(errs, item.maxLimitRequestRatio, type, ratioConstraint, req, lim);
    }
  }
  return errs.length > 0 ? aggregateMessage(errs) : undefined;
}

/** Upstream's PersistentVolumeClaimValidateLimitFunc: storage requests within min and max. */
export function pvcValidateLimits(lr: KObject, pvc: KObject): string | undefined {
  const errs: string[] = [];
  const requests = resourceList(
    (pvc.spec as { resources?: { requests?: unknown } } | undefined)?.resources?.requests,
  );
  for (const item of itemsOf(lr)) {
    if (item.type !== "PersistentVolumeClaim") continue;
    each(errs, item.min, item.type, minConstraint, requests, new Map());
    each(
      errs,
      item.max,
      item.type,
      (t, n, e, r) => maxRequestConstraint(t, n, e, r),
      requests,
      new Map(),
    );
  }
  return errs.length > 0 ? aggregateMessage(errs) : undefined;
}

function supports(a: AdmissionAttributes): "pod" | "pvc" | undefined {
  if (a.subresource !== "" || !a.object) return undefined;
  if (a.operation !== "CREATE" && a.operation !== "UPDATE") return undefined;
  // Containers cannot change once a pod exists: nothing to default or check on update.
  if (isResource(a, "", "pods")) return a.operation === "CREATE" ? "pod" : undefined;
  if (isResource(a, "", "persistentvolumeclaims")) return "pvc";
  return undefined;
}

function limitRanges(a: AdmissionAttributes, ctx: AdmissionContext): KObject[] {
  // Objects being deleted are left alone.
  if (a.oldObject?.metadata?.deletionTimestamp) return [];
  return ctx.list("", "v1", "limitranges", a.namespace);
}

export const limitRanger: AdmissionPlugin = {
  name: "LimitRanger",
  admit(a, ctx) {
    if (supports(a) !== "pod") return;
    for (const lr of limitRanges(a, ctx)) podMutateLimits(lr, asPod(a.object!));
  },
  validate(a, ctx) {
    const kind = supports(a);
    if (!kind) return;
    for (const lr of limitRanges(a, ctx)) {
      const why =
        kind === "pod" ? podValidateLimits(lr, asPod(a.object!)) : pvcValidateLimits(lr, a.object!);
      if (why) throw admissionForbidden(a, why);
    }
  },
};
