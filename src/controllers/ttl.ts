/**
 * The TTL controller (upstream's ttl): every Node carries the annotation
 * `node.alpha.kubernetes.io/ttl`, the seconds a kubelet may cache Secrets and ConfigMaps, chosen
 * by the size of the cluster: 0 up to 100 nodes, then 15, 30, 60 and 300 s as it grows past
 * 500, 1,000 and 2,000. The steps overlap (a cluster shrinking back below a step's start moves
 * down, one growing past its end moves up), so a cluster hovering at a boundary does not
 * flap.
 */

import type { Node } from "kubernetes-types/core/v1.js";
import { controller } from "../client/controller.js";
import { errorMessage, type ControllerDescriptor } from "./context.js";

export const TTL_ANNOTATION = "node.alpha.kubernetes.io/ttl";

interface Boundary {
  sizeMin: number;
  sizeMax: number;
  ttlSeconds: number;
}

const BOUNDARIES: readonly Boundary[] = [
  { sizeMin: 0, sizeMax: 100, ttlSeconds: 0 },
  { sizeMin: 90, sizeMax: 500, ttlSeconds: 15 },
  { sizeMin: 450, sizeMax: 1000, ttlSeconds: 30 },
  { sizeMin: 900, sizeMax: 2000, ttlSeconds: 60 },
  { sizeMin: 1800, sizeMax: Number.MAX_SAFE_INTEGER, ttlSeconds: 300 },
];

/** The node count and the step it puts the cluster on. */
export class TTLState {
  private nodeCount = 0;
  private step = 0;

  /** A node appeared; answers true when the desired TTL changed. */
  add(): boolean {
    this.nodeCount++;
    if (this.nodeCount > BOUNDARIES[this.step]!.sizeMax) {
      this.step++;
      return true;
    }
    return false;
  }

  /** A node went away; answers true when the desired TTL changed. */
  delete(): boolean {
    this.nodeCount--;
    if (this.nodeCount < BOUNDARIES[this.step]!.sizeMin) {
      this.step--;
      return true;
    }
    return false;
  }

  get desiredTTL(): number {
    return BOUNDARIES[this.step]!.ttlSeconds;
  }
}

/** Whether a node's annotation already says `ttl` seconds. */
export function nodeHasTTL(node: Node, ttl: number): boolean {
  const v = node.metadata?.annotations?.[TTL_ANNOTATION];
  return v !== undefined && /^-?\d+$/.test(v) && Number(v) === ttl;
}

export const ttlDescriptor: ControllerDescriptor = {
  name: "ttl",
  aliases: ["ttl-controller"],
  serviceAccount: "ttl-controller",
  async start(ctx, signal) {
    const nodes = ctx.informers.informer("v1/Node");
    const state = new TTLState();
    const c = controller({
      name: "ttl",
      informers: ctx.informers,
      for: "v1/Node",
      workers: ctx.options.concurrency.ttl ?? 1,
      clock: ctx.clock,
      onError: (err, req) =>
        ctx.log.error(`failed to set the TTL of node ${req.key}: ${errorMessage(err)}`),
      reconcile: async ({ name }) => {
        const node = nodes.store.get(name);
        if (!node) return;
        const ttl = state.desiredTTL;
        if (nodeHasTTL(node, ttl)) return;
        await ctx.client.resource("v1/Node").patch(name, "strategic", {
          metadata: { annotations: { [TTL_ANNOTATION]: String(ttl) } },
        });
      },
    });
    // Count nodes before the controller's own handler enqueues them, so the first syncs see the
    // cluster's size; a step change re-queues every node.
    const requeueAll = () => {
      for (const key of nodes.store.keys()) c.queue.add(key);
    };
    const unregister = nodes.addEventHandler({
      add: () => {
        if (state.add()) requeueAll();
      },
      delete: () => {
        if (state.delete()) requeueAll();
      },
    });
    try {
      await c.start(signal);
    } finally {
      unregister();
    }
  },
};
