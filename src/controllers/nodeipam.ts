/**
 * The node IPAM controller with upstream's range allocator (node-ipam-controller, events as
 * "cidrAllocator"): with --allocate-node-cidrs and --cluster-cidr, each node without
 * spec.podCIDRs gets the next free subnet of --node-cidr-mask-size bits (24 by default) as
 * spec.podCIDR and spec.podCIDRs.
 *
 * Subnets nodes already have are taken as used (so a restarted manager hands out no subnet
 * twice), as is the part of --service-cluster-ip-range inside the cluster range; a deleted
 * node's subnet is free again. When the range is full the node gets the event CIDRNotAvailable
 * and is retried with backoff.
 *
 * IPv4 only: an IPv6 or dual-stack --cluster-cidr is refused with an error.
 */

import type { Node } from "kubernetes-types/core/v1.js";
import { controller } from "../client/controller.js";
import type { EventRecorder } from "../client/events.js";
import type { Informer } from "../client/informer.js";
import type { Client } from "../client/resources.js";
import { formatCIDR, parseCIDR, subnet, subnetCount, type CIDR } from "../sim/cidr.js";
import type { ControllerContext, ControllerDescriptor, Logger } from "./context.js";
import { errorMessage } from "./context.js";

export const DEFAULT_NODE_CIDR_MASK_SIZE_IPV4 = 24;
const CIDR_UPDATE_WORKERS = 30;

export const ERR_NO_CIDRS_REMAINING =
  "CIDR allocation failed; there are no remaining CIDRs left to allocate in the accepted range";

/**
 * The subnets of one cluster range (upstream's cidrset.CidrSet): which are used, and the next one
 * to try, so that allocation goes round the range rather than reusing a freed subnet at once.
 */
export class CidrSet {
  readonly max: number;
  private readonly used: Uint8Array;
  private nextCandidate = 0;
  private allocated = 0;

  constructor(
    readonly cluster: CIDR,
    readonly nodeMaskSize: number,
  ) {
    if (nodeMaskSize < cluster.prefix || nodeMaskSize > 32)
      throw new Error(
        `invalid node mask size /${nodeMaskSize} for cluster CIDR ${formatCIDR(cluster)}`,
      );
    this.max = subnetCount(cluster, nodeMaskSize);
    this.used = new Uint8Array(this.max);
  }

  /** Subnets in use. */
  get usedCount(): number {
    return this.allocated;
  }

  /** The next free subnet; throws ERR_NO_CIDRS_REMAINING when the range is full. */
  allocateNext(): CIDR {
    for (let i = 0; i < this.max; i++) {
      const candidate = (this.nextCandidate + i) % this.max;
      if (this.used[candidate]) continue;
      this.used[candidate] = 1;
      this.allocated++;
      this.nextCandidate = (candidate + 1) % this.max;
      return subnet(this.cluster, this.nodeMaskSize, candidate);
    }
    throw new Error(ERR_NO_CIDRS_REMAINING);
  }

  /** The first and last subnet index `c` covers; throws when it lies outside the range. */
  private indices(c: CIDR): [number, number] {
    const size = (p: number) => 2 ** (32 - p);
    const clusterEnd = this.cluster.base + size(this.cluster.prefix);
    const end = c.base + size(c.prefix);
    if (end <= this.cluster.base || c.base >= clusterEnd)
      throw new Error(
        `cidr ${formatCIDR(c)} is out the range of cluster cidr ${formatCIDR(this.cluster)}`,
      );
    if (c.prefix <= this.cluster.prefix) return [0, this.max - 1];
    const step = size(this.nodeMaskSize);
    return [
      Math.floor((c.base - this.cluster.base) / step),
      Math.floor((end - 1 - this.cluster.base) / step),
    ];
  }

  /** Marks every subnet `c` overlaps as used. */
  occupy(c: CIDR): void {
    const [begin, end] = this.indices(c);
    for (let i = begin; i <= end; i++) {
      if (!this.used[i]) this.allocated++;
      this.used[i] = 1;
    }
  }

  /** Frees every subnet `c` overlaps. */
  release(c: CIDR): void {
    const [begin, end] = this.indices(c);
    for (let i = begin; i <= end; i++) {
      if (this.used[i]) this.allocated--;
      this.used[i] = 0;
    }
  }

  isUsed(c: CIDR): boolean {
    const [begin, end] = this.indices(c);
    for (let i = begin; i <= end; i++) if (!this.used[i]) return false;
    return true;
  }
}

/** True when two ranges share an address. */
export function overlaps(a: CIDR, b: CIDR): boolean {
  const end = (c: CIDR) => c.base + 2 ** (32 - c.prefix);
  return a.base < end(b) && b.base < end(a);
}

export interface IpamConfig {
  clusterCIDR: CIDR;
  nodeMaskSize: number;
  serviceCIDR?: CIDR;
}

/**
 * The allocator's settings from the manager's options, with upstream's errors for a missing or
 * unusable --cluster-cidr; undefined when --allocate-node-cidrs is off.
 */
export function ipamConfig(
  o: {
    allocateNodeCIDRs?: boolean;
    clusterCIDR?: string;
    nodeCIDRMaskSize?: number;
    serviceClusterIPRange?: string;
  },
  warn: (msg: string) => void = () => {},
): IpamConfig | undefined {
  if (!o.allocateNodeCIDRs) return undefined;
  const list = (o.clusterCIDR ?? "").trim();
  if (!list)
    throw new Error("Controller: Must specify --cluster-cidr if --allocate-node-cidrs is set");
  const parts = list.split(",").map((s) => s.trim());
  if (parts.length > 2)
    throw new Error(`length of clusterCIDRs is:${parts.length} more than max allowed of 2`);
  if (parts.length > 1 || parts[0]!.includes(":"))
    throw new Error(
      `--cluster-cidr ${list}: k8ts's node IPAM allocates IPv4 ranges only (no IPv6 or dual-stack yet)`,
    );
  const clusterCIDR = parseCIDR(parts[0]!);
  const nodeMaskSize = o.nodeCIDRMaskSize || DEFAULT_NODE_CIDR_MASK_SIZE_IPV4;
  if (clusterCIDR.prefix > nodeMaskSize)
    throw new Error(
      "Controller: Invalid --cluster-cidr, mask size of cluster CIDR must be less than or equal to --node-cidr-mask-size configured for CIDR family",
    );
  const config: IpamConfig = { clusterCIDR, nodeMaskSize };
  const service = o.serviceClusterIPRange?.split(",")[0]?.trim();
  if (service && !service.includes(":")) {
    try {
      config.serviceCIDR = parseCIDR(service);
    } catch (err) {
      warn(`Warning: unsuccessful parsing of service CIDR "${service}": ${errorMessage(err)}`);
    }
  }
  return config;
}

/** What the allocator does for one node. */
export type IpamAction =
  | { type: "none" }
  /** The node has ranges: mark them used (and drop a different one reserved for it). */
  | { type: "occupy"; cidrs: string[] }
  /** The node needs a range. */
  | { type: "allocate" };

export function ipamAction(node: Node | undefined): IpamAction {
  if (!node) return { type: "none" };
  const cidrs = node.spec?.podCIDRs?.length
    ? node.spec.podCIDRs
    : node.spec?.podCIDR
      ? [node.spec.podCIDR]
      : [];
  if (cidrs.length) return { type: "occupy", cidrs };
  return { type: "allocate" };
}

export interface RangeAllocatorOptions {
  client: Client;
  nodes: Pick<Informer<Node>, "store">;
  recorder: Pick<EventRecorder, "event">;
  log: Logger;
  config: IpamConfig;
}

/**
 * The range allocator's state: the cluster range's subnets and, by node name, the subnet held
 * for (or by) each node. `sync` is level-triggered on one node name.
 */
export class RangeAllocator {
  readonly set: CidrSet;
  /** Node name -> the subnet it has or is being given. */
  private readonly held = new Map<string, CIDR>();

  constructor(private readonly o: RangeAllocatorOptions) {
    this.set = new CidrSet(o.config.clusterCIDR, o.config.nodeMaskSize);
    const svc = o.config.serviceCIDR;
    if (svc && overlaps(svc, o.config.clusterCIDR)) this.set.occupy(svc);
    else if (!svc)
      o.log.info("No Service CIDR provided. Skipping filtering out service addresses.");
  }

  /** Takes the subnets of the nodes already cached as used (at start, before any allocation). */
  occupyExisting(nodes: Node[]): void {
    for (const node of nodes) {
      const a = ipamAction(node);
      if (a.type === "occupy") this.occupy(node, a.cidrs);
    }
  }

  private occupy(node: Node, cidrs: string[]): void {
    const name = node.metadata?.name ?? "";
    let c: CIDR;
    try {
      c = parseCIDR(cidrs[0]!);
    } catch {
      this.o.log.error(`failed to parse node ${name}, CIDR ${cidrs[0]}`);
      return;
    }
    const prev = this.held.get(name);
    if (prev && formatCIDR(prev) === formatCIDR(c)) return;
    try {
      if (prev) this.set.release(prev);
      this.set.occupy(c);
      this.held.set(name, c);
    } catch (err) {
      this.held.delete(name);
      this.o.log.error(
        `failed to mark cidr[${formatCIDR(c)}] at idx [0] as occupied for node: ${name}: ${errorMessage(err)}`,
      );
    }
  }

  /** Brings one node in line: occupy what it has, give it a subnet, or free a deleted one's. */
  async sync(name: string): Promise<void> {
    const node = this.o.nodes.store.get(name);
    const action = ipamAction(node);
    if (action.type === "none") {
      const prev = this.held.get(name);
      if (prev) {
        this.set.release(prev);
        this.held.delete(name);
      }
      return;
    }
    if (action.type === "occupy") {
      this.occupy(node!, action.cidrs);
      return;
    }
    let c = this.held.get(name);
    if (!c) {
      try {
        c = this.set.allocateNext();
      } catch (err) {
        this.o.recorder.event(
          {
            apiVersion: "v1",
            kind: "Node",
            name,
            ...(node!.metadata?.uid ? { uid: node!.metadata.uid } : {}),
          },
          "Normal",
          "CIDRNotAvailable",
          `Node ${name} status is now: CIDRNotAvailable`,
        );
        throw new Error(`failed to allocate cidr from cluster cidr at idx:0: ${errorMessage(err)}`);
      }
      this.held.set(name, c);
    }
    const cidr = formatCIDR(c);
    await this.o.client
      .resource("v1/Node")
      .patch(name, "strategic", { spec: { podCIDR: cidr, podCIDRs: [cidr] } });
    this.o.log.info(`Set Node PodCIDR node="${name}" podCIDRs=[${cidr}]`);
  }
}

export const nodeIpamDescriptor: ControllerDescriptor = {
  name: "nodeipam",
  aliases: ["node-ipam-controller"],
  serviceAccount: "node-controller",
  async start(ctx: ControllerContext, signal) {
    const config = ipamConfig(ctx.options, (m) => ctx.log.info(m));
    if (!config) {
      ctx.log.info(`Warning: skipping controller "nodeipam": --allocate-node-cidrs is not set`);
      return;
    }
    const nodes = ctx.informers.informer("v1/Node");
    const allocator = new RangeAllocator({
      client: ctx.client,
      nodes,
      recorder: ctx.recorder("cidrAllocator"),
      log: ctx.log,
      config,
    });
    ctx.log.info(`Starting range CIDR allocator for ${formatCIDR(config.clusterCIDR)}`);
    const c = controller({
      name: "nodeipam",
      informers: ctx.informers,
      for: "v1/Node",
      workers: CIDR_UPDATE_WORKERS,
      clock: ctx.clock,
      onError: (err, req) =>
        ctx.log.error(`Error syncing node "${req.name}" for CIDR allocation: ${errorMessage(err)}`),
      reconcile: ({ name }) => allocator.sync(name),
    });
    // Every node's subnet is known before the first one is handed out.
    if (!(await nodes.waitForSync(signal))) return;
    allocator.occupyExisting(nodes.store.list());
    await c.start(signal);
  },
};
