/**
 * Resource arithmetic as the scheduler sees it: a pod's requests (upstream's resource helpers:
 * the sum of the containers, at least the largest init container, sidecars counted as running,
 * plus overhead), and the integer figures the filters and scores compare: milli-CPU, bytes of
 * memory and ephemeral storage, and plain counts of every scalar (extended, hugepages) resource.
 */
import type { Container, Pod, ResourceRequirements } from "kubernetes-types/core/v1.js";
import { parseQuantity } from "../apiserver/strategies/quantity.js";

export const CPU = "cpu";
export const MEMORY = "memory";
export const EPHEMERAL_STORAGE = "ephemeral-storage";
export const PODS = "pods";

/** The CPU (100m) and memory (200Mi) a container without requests is counted as, for scoring only. */
export const DEFAULT_MILLI_CPU_REQUEST = 100;
export const DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024;

const pow10 = (e: number): bigint => 10n ** BigInt(e);

function ceilDiv(n: bigint, d: bigint): bigint {
  const q = n / d;
  return n % d === 0n ? q : n < 0n ? q : q + 1n;
}

/** Quantity.Value() of a quantity string: rounded up to an integer; malformed input counts as 0. */
export function quantityValue(s: string | number | undefined): number {
  return scaled(s, 0);
}

/** Quantity.MilliValue() of a quantity string, rounded up; malformed input counts as 0. */
export function quantityMilliValue(s: string | number | undefined): number {
  return scaled(s, 3);
}

const valueCache = new Map<string, number>();

function scaled(s: string | number | undefined, shift: number): number {
  if (s === undefined) return 0;
  const text = typeof s === "number" ? String(s) : s;
  const key = shift === 0 ? text : "m" + text;
  const cached = valueCache.get(key);
  if (cached !== undefined) return cached;
  let out = 0;
  try {
    const q = parseQuantity(text.trim());
    const scale = q.scale + shift;
    out = Number(scale >= 0 ? q.n * pow10(scale) : ceilDiv(q.n, pow10(-scale)));
  } catch {
    out = 0;
  }
  if (valueCache.size > 4096) valueCache.clear();
  valueCache.set(key, out);
  return out;
}

/** A resource name outside the kubernetes.io namespace with a domain, e.g. example.com/gpu. */
export function isExtendedResourceName(name: string): boolean {
  if (isNativeResource(name) || name.startsWith("requests.")) return false;
  return isQualifiedName("requests." + name);
}

export function isNativeResource(name: string): boolean {
  return !name.includes("/") || isPrefixedNativeResource(name);
}

export function isPrefixedNativeResource(name: string): boolean {
  return name.includes("kubernetes.io/");
}

export function isHugePageResourceName(name: string): boolean {
  return name.startsWith("hugepages-");
}

export function isAttachableVolumeResourceName(name: string): boolean {
  return name.startsWith("attachable-volumes-");
}

/** Every resource the scheduler tracks in Resource.scalar. */
export function isScalarResourceName(name: string): boolean {
  return (
    isExtendedResourceName(name) ||
    isHugePageResourceName(name) ||
    isPrefixedNativeResource(name) ||
    isAttachableVolumeResourceName(name)
  );
}

const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** validation.IsQualifiedName: an optional DNS-subdomain prefix, a slash, and a name of at most 63. */
export function isQualifiedName(value: string): boolean {
  const parts = value.split("/");
  let name: string;
  if (parts.length === 1) name = parts[0]!;
  else if (parts.length === 2) {
    const prefix = parts[0]!;
    if (prefix.length === 0 || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix)) return false;
    name = parts[1]!;
  } else return false;
  return name.length > 0 && name.length <= 63 && QUALIFIED_NAME_PART.test(name);
}

/** Aggregated resources in the units the scheduler compares (upstream's framework.Resource). */
export class Resource {
  milliCPU = 0;
  memory = 0;
  ephemeralStorage = 0;
  allowedPodNumber = 0;
  /** Extended, hugepages and other scalar resources; null until one is added. */
  scalar: Map<string, number> | null = null;

  static fromList(list: Record<string, string> | undefined): Resource {
    const r = new Resource();
    if (list) for (const name of Object.keys(list)) r.addOne(name, list[name]);
    return r;
  }

  /** Adds one entry of a ResourceList. */
  addOne(name: string, q: string | undefined): void {
    switch (name) {
      case CPU:
        this.milliCPU += quantityMilliValue(q);
        break;
      case MEMORY:
        this.memory += quantityValue(q);
        break;
      case PODS:
        this.allowedPodNumber += quantityValue(q);
        break;
      case EPHEMERAL_STORAGE:
        this.ephemeralStorage += quantityValue(q);
        break;
      default:
        if (isScalarResourceName(name)) this.addScalar(name, quantityValue(q));
    }
  }

  addScalar(name: string, v: number): void {
    if (this.scalar === null) this.scalar = new Map();
    this.scalar.set(name, (this.scalar.get(name) ?? 0) + v);
  }

  getScalar(name: string): number {
    return this.scalar?.get(name) ?? 0;
  }

  /** this += sign * other (pods count excluded). */
  addResource(other: Resource, sign: number): void {
    this.milliCPU += sign * other.milliCPU;
    this.memory += sign * other.memory;
    this.ephemeralStorage += sign * other.ephemeralStorage;
    if (other.scalar !== null) {
      for (const [k, v] of other.scalar) this.addScalar(k, sign * v);
    }
  }

  /** this = max(this, other) for every resource. */
  maxResource(other: Resource): void {
    this.milliCPU = Math.max(this.milliCPU, other.milliCPU);
    this.memory = Math.max(this.memory, other.memory);
    this.ephemeralStorage = Math.max(this.ephemeralStorage, other.ephemeralStorage);
    if (other.scalar !== null) {
      if (this.scalar === null) this.scalar = new Map();
      for (const [k, v] of other.scalar) this.scalar.set(k, Math.max(this.scalar.get(k) ?? 0, v));
    }
  }

  clone(): Resource {
    const r = new Resource();
    r.milliCPU = this.milliCPU;
    r.memory = this.memory;
    r.ephemeralStorage = this.ephemeralStorage;
    r.allowedPodNumber = this.allowedPodNumber;
    if (this.scalar !== null) r.scalar = new Map(this.scalar);
    return r;
  }

  isZero(): boolean {
    if (this.milliCPU !== 0 || this.memory !== 0 || this.ephemeralStorage !== 0) return false;
    return this.scalar === null || this.scalar.size === 0;
  }

  /** The amount of one named resource (cpu in milli-units). */
  get(name: string): number {
    switch (name) {
      case CPU:
        return this.milliCPU;
      case MEMORY:
        return this.memory;
      case EPHEMERAL_STORAGE:
        return this.ephemeralStorage;
      case PODS:
        return this.allowedPodNumber;
      default:
        return this.getScalar(name);
    }
  }
}

/** What a pod asks for: its requests, and the CPU and memory it is counted as for scoring. */
export interface PodResources {
  requests: Resource;
  /** Milli-CPU with 100m for every container that does not request CPU. */
  nonZeroMilliCPU: number;
  /** Memory with 200Mi for every container that does not request memory. */
  nonZeroMemory: number;
}

function containerResource(c: Container, nonMissing: boolean): Resource {
  const req = (c.resources as ResourceRequirements | undefined)?.requests;
  const r = Resource.fromList(req);
  if (nonMissing) {
    if (req === undefined || !(CPU in req)) r.milliCPU += DEFAULT_MILLI_CPU_REQUEST;
    if (req === undefined || !(MEMORY in req)) r.memory += DEFAULT_MEMORY_REQUEST;
  }
  return r;
}

/**
 * Upstream's PodRequests: containers summed; each init container counted with the sidecars
 * (restartPolicy Always) started before it, the largest of those kept as a floor; sidecars added
 * to the sum; overhead added. With nonMissing, containers without a CPU or memory request count
 * as 100m and 200Mi.
 */
export function podRequests(pod: Pod, nonMissing = false): Resource {
  const spec = pod.spec;
  const reqs = new Resource();
  if (!spec) return reqs;
  for (const c of spec.containers ?? []) reqs.addResource(containerResource(c, nonMissing), 1);
  const initContainers = spec.initContainers;
  if (initContainers && initContainers.length > 0) {
    const restartable = new Resource();
    const initMax = new Resource();
    for (const c of initContainers) {
      const cr = containerResource(c, nonMissing);
      let use: Resource;
      if (c.restartPolicy === "Always") {
        reqs.addResource(cr, 1);
        restartable.addResource(cr, 1);
        use = restartable;
      } else {
        use = cr.clone();
        use.addResource(restartable, 1);
      }
      initMax.maxResource(use);
    }
    reqs.maxResource(initMax);
  }
  if (spec.overhead) reqs.addResource(Resource.fromList(spec.overhead), 1);
  return reqs;
}

/** A pod's requests and its non-zero CPU and memory, as NodeInfo aggregates them. */
export function computePodResources(pod: Pod): PodResources {
  const requests = podRequests(pod, false);
  const nonZero = podRequests(pod, true);
  return { requests, nonZeroMilliCPU: nonZero.milliCPU, nonZeroMemory: nonZero.memory };
}
