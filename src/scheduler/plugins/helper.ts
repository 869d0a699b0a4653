/** Helpers shared by plugins: score normalisation and typed access to event objects. */
import type { Node, Pod } from "kubernetes-types/core/v1.js";
import { MAX_NODE_SCORE, Status } from "../types.js";

/**
 * Scales scores so that the highest becomes maxPriority (upstream's DefaultNormalizeScore);
 * reversed, the highest becomes 0. When every score is 0, reversed scores all become maxPriority.
 */
export function defaultNormalizeScore(
  maxPriority: number,
  reverse: boolean,
  scores: number[],
): Status | null {
  let max = 0;
  for (const s of scores) if (s > max) max = s;
  if (max === 0) {
    if (reverse) for (let i = 0; i < scores.length; i++) scores[i] = maxPriority;
    return null;
  }
  for (let i = 0; i < scores.length; i++) {
    let s = Math.trunc((maxPriority * scores[i]!) / max);
    if (reverse) s = maxPriority - s;
    scores[i] = s;
  }
  return null;
}

export const normalizeTo100 = (reverse: boolean, scores: number[]): Status | null =>
  defaultNormalizeScore(MAX_NODE_SCORE, reverse, scores);

export const asPod = (o: unknown): Pod | undefined => (o ? (o as Pod) : undefined);
export const asNode = (o: unknown): Node | undefined => (o ? (o as Node) : undefined);

export const sameUID = (a: Pod | undefined, b: Pod): boolean =>
  a !== undefined && (a.metadata?.uid ?? "") !== "" && a.metadata?.uid === b.metadata?.uid;
