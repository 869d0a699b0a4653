/**
 * ImageLocality: prefers nodes that already have the pod's images, weighing each image's size by
 * the share of nodes that have it (so that an image on every node does not pull pods together).
 */
import type { Handle, ScorePlugin } from "../interface.js";
import { MAX_NODE_SCORE, type CycleState, type NodeInfo, type PodInfo } from "../types.js";
import { IMAGE_LOCALITY } from "./names.js";

const MB = 1024 * 1024;
const MIN_THRESHOLD = 23 * MB;
const MAX_CONTAINER_THRESHOLD = 1000 * MB;

/** "nginx" and "example.com:5000/app" get ":latest"; a tag or digest is kept. */
export function normalizedImageName(name: string): string {
  if (name.lastIndexOf(":") <= name.lastIndexOf("/")) return name + ":latest";
  return name;
}

export function calculatePriority(sumScores: number, numContainers: number): number {
  const maxThreshold = MAX_CONTAINER_THRESHOLD * numContainers;
  let s = sumScores;
  if (s < MIN_THRESHOLD) s = MIN_THRESHOLD;
  else if (s > maxThreshold) s = maxThreshold;
  return Math.trunc((MAX_NODE_SCORE * (s - MIN_THRESHOLD)) / (maxThreshold - MIN_THRESHOLD));
}

export class ImageLocality implements ScorePlugin {
  readonly name = IMAGE_LOCALITY;
  private images: string[] = [];
  private imagesOf: PodInfo | undefined;

  constructor(private readonly handle: Handle) {}

  score(_state: CycleState, pod: PodInfo, node: NodeInfo): number {
    if (this.imagesOf !== pod) {
      const spec = pod.pod.spec;
      this.images = [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])].map((c) =>
        normalizedImageName(c.image ?? ""),
      );
      this.imagesOf = pod;
    }
    const total = this.handle.snapshot().list().length;
    let sum = 0;
    if (node.imageStates.size > 0) {
      for (const image of this.images) {
        const st = node.imageStates.get(image);
        if (st) sum += Math.trunc(st.size * (st.numNodes / total));
      }
    }
    return calculatePriority(sum, this.images.length);
  }
}
