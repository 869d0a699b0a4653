/**
 * IPv4 address arithmetic for simulated nodes: a node's /24 out of --pod-cidr, its address out of
 * --node-cidr, and pod IPs handed out within the node's podCIDR.
 */

export interface CIDR {
  /** The network address as an unsigned 32-bit number. */
  base: number;
  prefix: number;
}

export function parseIPv4(s: string): number | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** Parses "10.244.0.0/16"; throws with a message naming the value when it is not one. */
export function parseCIDR(s: string): CIDR {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(s.trim());
  const ip = m ? parseIPv4(m[1]!) : undefined;
  const prefix = m ? Number(m[2]) : NaN;
  if (ip === undefined || !(prefix >= 0 && prefix <= 32))
    throw new Error(`invalid CIDR address: ${s}`);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { base: (ip & mask) >>> 0, prefix };
}

export function formatCIDR(c: CIDR): string {
  return `${formatIPv4(c.base)}/${c.prefix}`;
}

/** How many subnets of `prefix` bits the range holds. */
export function subnetCount(c: CIDR, prefix: number): number {
  return prefix < c.prefix ? 0 : 2 ** (prefix - c.prefix);
}

/** The i-th subnet of `prefix` bits inside `c`. */
export function subnet(c: CIDR, prefix: number, i: number): CIDR {
  if (i < 0 || i >= subnetCount(c, prefix))
    throw new Error(`${formatCIDR(c)} has no subnet /${prefix} number ${i}`);
  return { base: (c.base + i * 2 ** (32 - prefix)) >>> 0, prefix };
}

/** The i-th usable host address of `c` (i = 0 is the address after the network address). */
export function hostAddress(c: CIDR, i: number): string {
  const size = 2 ** (32 - c.prefix);
  if (i < 0 || i + 2 > size) throw new Error(`${formatCIDR(c)} has no host number ${i}`);
  return formatIPv4((c.base + 1 + i) >>> 0);
}

export function contains(c: CIDR, ip: string): boolean {
  const n = parseIPv4(ip);
  if (n === undefined) return false;
  return n >= c.base && n < c.base + 2 ** (32 - c.prefix);
}

/**
 * Pod IPs of one node's podCIDR: the first host address is the node's bridge (as a CNI bridge
 * takes it), pods get the others, lowest free first. Answers undefined when the range is full.
 */
export class IPAllocator {
  private readonly used = new Set<number>();
  private next = 2;
  private readonly size: number;

  constructor(readonly cidr: CIDR) {
    this.size = 2 ** (32 - cidr.prefix);
  }

  allocate(): string | undefined {
    for (let tries = 0; tries < this.size; tries++) {
      if (this.next >= this.size - 1) this.next = 2;
      const off = this.next++;
      if (!this.used.has(off)) {
        this.used.add(off);
        return formatIPv4((this.cidr.base + off) >>> 0);
      }
    }
    return undefined;
  }

  /** Marks an address as taken (a pod found running when the simulator starts). */
  reserve(ip: string): void {
    const n = parseIPv4(ip);
    if (n !== undefined && contains(this.cidr, ip)) this.used.add(n - this.cidr.base);
  }

  release(ip: string): void {
    const n = parseIPv4(ip);
    if (n !== undefined) this.used.delete(n - this.cidr.base);
  }

  get inUse(): number {
    return this.used.size;
  }
}
