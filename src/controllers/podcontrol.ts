/**
 * How a workload controller claims, creates and removes what it controls, as upstream's
 * ControllerRefManager and PodControl (pkg/controller/controller_ref_manager.go and
 * controller_utils.go):
 *
 * - claim: of the candidates, keep those whose controller reference is the owner and that still
 *   match its selector; release those that no longer match (unless the owner is being deleted);
 *   adopt orphans that match, after checking with a live read that the owner still exists and
 *   is not being deleted (a stale cache must not adopt for a deleted owner). Objects owned by
 *   another controller are never touched.
 * - pods from a template get the template's labels, annotations and finalizers, the name prefix
 *   `<owner>-`, and the owner's controller reference.
 * - which pods go first when scaling down (ActivePodsWithRanks).
 */

import type { Pod, PodTemplateSpec } from "kubernetes-types/core/v1.js";
import type { OwnerReference } from "kubernetes-types/meta/v1.js";
import { isStatusError } from "../api/status.js";
import type { KObject } from "../client/kinds.js";
import type { ResourceClient } from "../client/resources.js";
import { controllerRef, creationTime, isPodReady } from "./util.js";

export interface ClaimOptions<T extends KObject> {
  owner: KObject;
  ownerRef: OwnerReference;
  candidates: T[];
  matches: (obj: T) => boolean;
  /** Patches objects of the candidates' kind. */
  client: ResourceClient<T>;
  /** A live read of the owner (uncached) before the first adoption. */
  getOwner: () => Promise<KObject>;
}

/** Claims `candidates` for `owner`; see the module comment. Throws the first patch failure. */
export async function claim<T extends KObject>(o: ClaimOptions<T>): Promise<T[]> {
  const claimed: T[] = [];
  const errors: unknown[] = [];
  const ownerUID = o.owner.metadata?.uid;
  const deleting = !!o.owner.metadata?.deletionTimestamp;
  let adoptable: Promise<void> | undefined;
  const canAdopt = () =>
    (adoptable ??= o.getOwner().then((fresh) => {
      if (fresh.metadata?.uid !== ownerUID)
        throw new Error(
          `original ${o.ownerRef.kind} ${o.owner.metadata?.namespace}/${o.owner.metadata?.name} is gone: got uid ${fresh.metadata?.uid}, wanted ${ownerUID}`,
        );
      if (fresh.metadata?.deletionTimestamp)
        throw new Error(
          `${o.ownerRef.kind} ${o.owner.metadata?.namespace}/${o.owner.metadata?.name} has just been deleted at ${fresh.metadata.deletionTimestamp}`,
        );
    }));
  await Promise.all(
    o.candidates.map(async (obj) => {
      const ref = controllerRef(obj);
      const uid = obj.metadata?.uid;
      if (ref) {
        if (ref.uid !== ownerUID) return;
        if (o.matches(obj)) {
          claimed.push(obj);
          return;
        }
        if (deleting) return;
        try {
          await o.client.patch(obj.metadata!.name!, "strategic", {
            metadata: { ownerReferences: [{ $patch: "delete", uid: ownerUID }], uid },
          });
        } catch (err) {
          if (isStatusError(err) && (err.code === 404 || err.code === 422)) return;
          errors.push(err);
        }
        return;
      }
      if (deleting || !o.matches(obj) || obj.metadata?.deletionTimestamp) return;
      try {
        await canAdopt();
        await o.client.patch(obj.metadata!.name!, "strategic", {
          metadata: { ownerReferences: [o.ownerRef], uid },
        });
        claimed.push(obj);
      } catch (err) {
        if (isStatusError(err) && err.code === 404) return;
        errors.push(err);
      }
    }),
  );
  if (errors.length) throw errors[0];
  return claimed;
}

/** `<name>-` for generateName (getPodsPrefix): the controller's name and a dash. */
export function podNamePrefix(controllerName: string): string {
  const prefix = `${controllerName}-`;
  // generateName adds 5 characters; names are at most 253 (63 for the prefix is upstream's
  // validation of the generated name as a DNS subdomain).
  return prefix.length > 248 ? controllerName.slice(0, 248) : prefix;
}

/** The pod a controller creates from its template (controller.GetPodFromTemplate). */
export function podFromTemplate(
  template: PodTemplateSpec | undefined,
  namespace: string,
  controllerName: string,
  ref: OwnerReference,
): Pod {
  const meta = template?.metadata ?? {};
  const pod: Pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      generateName: podNamePrefix(controllerName),
      namespace,
      ownerReferences: [ref],
    },
    spec: structuredClone(template?.spec ?? { containers: [] }),
  };
  if (meta.labels) pod.metadata!.labels = { ...meta.labels };
  if (meta.annotations) pod.metadata!.annotations = { ...meta.annotations };
  if (meta.finalizers?.length) pod.metadata!.finalizers = [...meta.finalizers];
  return pod;
}

const PHASE_ORDER: Record<string, number> = { Pending: 0, Unknown: 1, Running: 2 };

function readyTime(pod: Pod): number {
  const c = pod.status?.conditions?.find((x) => x.type === "Ready");
  return c?.lastTransitionTime ? Date.parse(c.lastTransitionTime) : 0;
}

function maxRestarts(pod: Pod): number {
  let max = 0;
  for (const s of pod.status?.containerStatuses ?? []) max = Math.max(max, s.restartCount ?? 0);
  return max;
}

/**
 * Orders pods so that the first ones are the best to delete (ActivePodsWithRanks): unscheduled
 * before scheduled, pending before unknown before running, not ready before ready, more pods of
 * the same owner on the node before fewer, ready for less time before longer, more restarts
 * before fewer, newer before older.
 */
export function rankPodsForDeletion(pods: Pod[], related: Pod[] = pods): Pod[] {
  const onNode = new Map<string, number>();
  for (const p of related) {
    const node = p.spec?.nodeName;
    if (node && !p.metadata?.deletionTimestamp) onNode.set(node, (onNode.get(node) ?? 0) + 1);
  }
  const rank = (p: Pod) => (p.spec?.nodeName ? (onNode.get(p.spec.nodeName) ?? 0) : 0);
  return [...pods].sort((a, b) => {
    const an = a.spec?.nodeName ? 1 : 0;
    const bn = b.spec?.nodeName ? 1 : 0;
    if (an !== bn) return an - bn;
    const ap = PHASE_ORDER[a.status?.phase ?? "Pending"] ?? 0;
    const bp = PHASE_ORDER[b.status?.phase ?? "Pending"] ?? 0;
    if (ap !== bp) return ap - bp;
    const ar = isPodReady(a) ? 1 : 0;
    const br = isPodReady(b) ? 1 : 0;
    if (ar !== br) return ar - br;
    if (rank(a) !== rank(b)) return rank(b) - rank(a);
    if (ar && br) {
      const at = readyTime(a);
      const bt = readyTime(b);
      if (at !== bt) return bt - at;
    }
    const rs = maxRestarts(b) - maxRestarts(a);
    if (rs !== 0) return rs;
    return creationTime(b) - creationTime(a);
  });
}
