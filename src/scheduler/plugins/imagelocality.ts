/**
 * ImageLocality: prefers nodes that already have the pod's images, weighing each image's size by
 * the share of nodes that have it (so that an image on every node does not pull pods together).
 */
import type { Handle, PreScorePlugin, ScorePlugin } from "../interface.js";
import {
  MAX_NODE_SCORE,
  StateCache,
  type CycleState,
  type NodeInfo,
  type PodInfo,
  type StateData,
} from "../types.js";
import { IMAGE_LOCALITY } from "./names.js";

const MB = 1024 * 1024;
const MIN_THRESHOLD = 23 * MB;
const MAX_CONTAINER_THRESHOLD = 1000 * MB;
const PRE_SCORE_KEY = "PreScore" + IMAGE_LOCALITY;

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

class PreScoreState implements StateData {
  constructor(
    readonly images: string[],
    readonly totalNodes: number,
  ) {}
  clone(): StateData {
    return this;
  }
}

export class ImageLocality implements PreScorePlugin, ScorePlugin {
  readonly name = IMAGE_LOCALITY;
  private readonly cache = new StateCache<PreScoreState>();

  constructor(private readonly handle: Handle) {}

  private compute(pod: PodInfo): PreScoreState {
    const spec = pod.pod.spec;
    const images = [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])].map((c) =>
      normalizedImageName(c.image ?? ""),
    );
    return new PreScoreState(images, this.handle.snapshot().list().length);
  }

  preScore(state: CycleState, pod: PodInfo): null {
    this.cache.write(state, PRE_SCORE_KEY, this.compute(pod));
    return null;
  }

  score(state: CycleState, pod: PodInfo, node: NodeInfo): number {
    const s = this.cache.read(state, PRE_SCORE_KEY) ?? this.compute(pod);
    let sum = 0;
    if (node.imageStates.size > 0) {
      for (const image of s.images) {
        const st = node.imageStates.get(image);
        if (st) sum += Math.trunc(st.size * (st.numNodes / s.totalNodes));
      }
    }
    return calculatePriority(sum, s.images.length);
  }
}
