import { randomInt } from "node:crypto";
import { invalid, invalidValue, type FieldError } from "../../api/status.js";
import type { Allocation, Allocator, KObject } from "./types.js";

function ipToInt(ip: string): number {
  return ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
}

function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** A set of integers in [first, last], handing out free ones at random (as upstream's bitmaps). */
class RangeSet {
  private readonly used = new Set<number>();
  constructor(
    readonly first: number,
    readonly last: number,
  ) {}

  contains(n: number): boolean {
    return n >= this.first && n <= this.last;
  }

  has(n: number): boolean {
    return this.used.has(n);
  }

  take(n: number): void {
    this.used.add(n);
  }

  release(n: number): void {
    this.used.delete(n);
  }

  /** A free value, or undefined when the range is full. */
  next(): number | undefined {
    const size = this.last - this.first + 1;
    if (this.used.size >= size) return undefined;
    const start = randomInt(size);
    for (let i = 0; i < size; i++) {
      const n = this.first + ((start + i) % size);
      if (!this.used.has(n)) return n;
    }
    return undefined;
  }
}

interface ServiceSpec {
  type?: string;
  clusterIP?: string;
  clusterIPs?: string[];
  ports?: Array<{ port?: number; protocol?: string; nodePort?: number; name?: string }>;
}

const needsNodePorts = (spec: ServiceSpec) =>
  spec.type === "NodePort" || spec.type === "LoadBalancer";
const needsClusterIP = (spec: ServiceSpec) =>
  spec.type !== "ExternalName" && spec.clusterIP !== "None";

/**
 * Cluster IPs from `--service-cluster-ip-range` and node ports from `--service-node-port-range`
 * for Services. What stored Services hold is taken at start (`rebuild`), so allocations stay
 * consistent across restarts; the network and broadcast addresses are never handed out.
 */
export class ServiceAllocator implements Allocator {
  private readonly ips: RangeSet;
  private readonly ports: RangeSet;

  constructor(
    readonly cidr: string,
    readonly portRange: string,
  ) {
    const [base, bits] = cidr.split("/");
    const size = 2 ** (32 - Number(bits));
    const network = ipToInt(base!) & ~(size - 1);
    this.ips = new RangeSet(network + 1, network + size - 2);
    const [lo, hi] = portRange.split("-").map(Number);
    this.ports = new RangeSet(lo!, hi!);
  }

  rebuild(services: KObject[]): void {
    for (const svc of services) {
      const spec = (svc.spec ?? {}) as ServiceSpec;
      for (const ip of spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : [])) {
        if (ip !== "None" && this.ips.contains(ipToInt(ip))) this.ips.take(ipToInt(ip));
      }
      for (const p of spec.ports ?? []) if (p.nodePort) this.ports.take(p.nodePort);
    }
  }

  allocate(obj: KObject, old?: KObject): Allocation {
    const spec = (obj.spec ??= {}) as ServiceSpec;
    const oldSpec = (old?.spec ?? {}) as ServiceSpec;
    const name = obj.metadata?.name ?? "";
    const errors: FieldError[] = [];
    const taken: Array<() => void> = [];
    const freed: Array<() => void> = [];

    // Cluster IP: kept from the old object; immutable once set.
    if (old && oldSpec.clusterIP && needsClusterIP(oldSpec) && needsClusterIP(spec)) {
      if (spec.clusterIP && spec.clusterIP !== oldSpec.clusterIP) {
        errors.push(invalidValue("spec.clusterIPs[0]", spec.clusterIP, "may not change once set"));
      }
      spec.clusterIP = oldSpec.clusterIP;
      spec.clusterIPs = oldSpec.clusterIPs ?? [oldSpec.clusterIP];
    } else if (needsClusterIP(spec)) {
      if (spec.clusterIP) {
        const n = ipToInt(spec.clusterIP);
        if (!this.ips.contains(n)) {
          errors.push(
            invalidValue(
              "spec.clusterIPs",
              [spec.clusterIP],
              `failed to allocate IP ${spec.clusterIP}: the provided IP (${spec.clusterIP}) is not in the valid range. The range of valid IPs is ${this.cidr}`,
            ),
          );
        } else if (this.ips.has(n)) {
          errors.push(
            invalidValue(
              "spec.clusterIPs",
              [spec.clusterIP],
              `failed to allocate IP ${spec.clusterIP}: provided IP is already allocated`,
            ),
          );
        } else {
          this.ips.take(n);
          taken.push(() => this.ips.release(n));
        }
      } else {
        const n = this.ips.next();
        if (n === undefined) {
          errors.push(invalidValue("spec.clusterIPs", [], "failed to allocate IP: range is full"));
        } else {
          this.ips.take(n);
          taken.push(() => this.ips.release(n));
          spec.clusterIP = intToIp(n);
        }
      }
      if (spec.clusterIP) spec.clusterIPs = [spec.clusterIP];
    }
    if (old && needsClusterIP(oldSpec) && oldSpec.clusterIP && !needsClusterIP(spec)) {
      freed.push(() => this.ips.release(ipToInt(oldSpec.clusterIP!)));
    }

    // Node ports: a port keeps its old node port; new ones come from the range.
    const oldPorts = new Map(
      (oldSpec.ports ?? [])
        .filter((p) => p.nodePort)
        .map((p) => [`${p.port}/${p.protocol ?? "TCP"}`, p.nodePort!]),
    );
    const kept = new Set<number>();
    if (needsNodePorts(spec)) {
      (spec.ports ?? []).forEach((p, i) => {
        const previous = oldPorts.get(`${p.port}/${p.protocol ?? "TCP"}`);
        if (!p.nodePort && previous) p.nodePort = previous;
        if (p.nodePort && p.nodePort === previous) {
          kept.add(p.nodePort);
          return;
        }
        if (p.nodePort) {
          if (!this.ports.contains(p.nodePort)) {
            errors.push(
              invalidValue(
                `spec.ports[${i}].nodePort`,
                p.nodePort,
                `provided port is not in the valid range. The range of valid ports is ${this.portRange}`,
              ),
            );
          } else if (this.ports.has(p.nodePort)) {
            errors.push(
              invalidValue(
                `spec.ports[${i}].nodePort`,
                p.nodePort,
                "provided port is already allocated",
              ),
            );
          } else {
            const n = p.nodePort;
            this.ports.take(n);
            taken.push(() => this.ports.release(n));
          }
          return;
        }
        const n = this.ports.next();
        if (n === undefined) {
          errors.push(invalidValue(`spec.ports[${i}].nodePort`, 0, "range is full"));
          return;
        }
        this.ports.take(n);
        taken.push(() => this.ports.release(n));
        p.nodePort = n;
      });
    } else {
      for (const p of spec.ports ?? []) delete p.nodePort;
    }
    for (const n of oldPorts.values()) if (!kept.has(n)) freed.push(() => this.ports.release(n));

    const undo = () => taken.forEach((f) => f());
    if (errors.length > 0) {
      undo();
      throw invalid({ group: "", kind: "Service" }, name, errors);
    }
    return { undo, commit: () => freed.forEach((f) => f()) };
  }

  release(obj: KObject): void {
    const spec = (obj.spec ?? {}) as ServiceSpec;
    for (const ip of spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : [])) {
      if (ip !== "None" && this.ips.contains(ipToInt(ip))) this.ips.release(ipToInt(ip));
    }
    for (const p of spec.ports ?? []) if (p.nodePort) this.ports.release(p.nodePort);
  }
}
