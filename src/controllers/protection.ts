/**
 * The storage object in-use protection controllers (upstream's pvc-protection and
 * pv-protection). The API server's StorageObjectInUseProtection admission puts a finalizer on
 * every new claim and volume; these controllers lift it once the object is being deleted and
 * nothing uses it any more, so that a claim no pod mounts (or a volume no claim is bound to)
 * goes away, while one in use waits.
 *
 * - A claim is in use while a scheduled pod of its namespace names it in a
 *   `persistentVolumeClaim` volume, or in a generic ephemeral volume (claim `<pod>-<volume>`,
 *   unless the pod is already shut down: deleted with a zero grace period). The pod cache is
 *   confirmed with a live list before the finalizer goes, as upstream does.
 * - A volume is in use while its phase is `Bound`.
 * - Objects created before the admission plugin ran get the finalizer added.
 */

import type { PersistentVolume, PersistentVolumeClaim, Pod } from "kubernetes-types/core/v1.js";
import { isStatusError } from "../api/status.js";
import { controller } from "../client/controller.js";
import type { KObject } from "../client/kinds.js";
import { errorMessage, type ControllerDescriptor } from "./context.js";
import { watchOf } from "./util.js";

export const PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection";
export const PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection";

/** What a protection controller does with one object. */
export type ProtectionAction = "none" | "addFinalizer" | "removeFinalizer";

function hasFinalizer(obj: KObject, finalizer: string): boolean {
  return (obj.metadata?.finalizers ?? []).includes(finalizer);
}

/**
 * Upstream's IsDeletionCandidate / NeedToAddFinalizer: a deleted object holding the finalizer
 * loses it when unused; a live one without it gains it.
 */
export function protectionAction(
  obj: KObject,
  finalizer: string,
  inUse: () => boolean,
): ProtectionAction {
  const deleting = !!obj.metadata?.deletionTimestamp;
  const has = hasFinalizer(obj, finalizer);
  if (deleting && has) return inUse() ? "none" : "removeFinalizer";
  if (!deleting && !has) return "addFinalizer";
  return "none";
}

/** A pod kubelet is done with, or that was force-deleted. */
function podIsShutDown(pod: Pod): boolean {
  return !!pod.metadata?.deletionTimestamp && pod.metadata.deletionGracePeriodSeconds === 0;
}

/** The claims a pod's volumes name (generic ephemeral volumes as `<pod>-<volume>`). */
export function claimsOfPod(pod: Pod): string[] {
  const out: string[] = [];
  for (const v of pod.spec?.volumes ?? []) {
    if (v.persistentVolumeClaim) out.push(v.persistentVolumeClaim.claimName);
    else if (v.ephemeral) out.push(`${pod.metadata?.name ?? ""}-${v.name}`);
  }
  return out;
}

/** Whether an ephemeral claim belongs to this pod (its controlling owner). */
function claimIsForPod(pod: Pod, pvc: PersistentVolumeClaim): boolean {
  const ref = pvc.metadata?.ownerReferences?.find((r) => r.controller === true);
  return !!ref && ref.kind === "Pod" && ref.uid === pod.metadata?.uid;
}

/**
 * Whether `pod` keeps `pvc` in use. Only scheduled pods count: the kubelet refuses to start a
 * pod whose claim is being deleted.
 */
export function podUsesPVC(pod: Pod, pvc: PersistentVolumeClaim): boolean {
  if (!pod.spec?.nodeName) return false;
  const name = pvc.metadata?.name;
  for (const v of pod.spec.volumes ?? []) {
    if (v.persistentVolumeClaim?.claimName === name) return true;
    if (
      v.ephemeral &&
      !podIsShutDown(pod) &&
      `${pod.metadata?.name ?? ""}-${v.name}` === name &&
      claimIsForPod(pod, pvc)
    )
      return true;
  }
  return false;
}

/** A volume is in use while bound (the binder sets the phase). */
export function pvIsInUse(pv: PersistentVolume): boolean {
  return pv.status?.phase === "Bound";
}

function withoutFinalizer<T extends KObject>(obj: T, finalizer: string): T {
  const next = structuredClone(obj);
  next.metadata!.finalizers = (next.metadata!.finalizers ?? []).filter((f) => f !== finalizer);
  return next;
}

function withFinalizer<T extends KObject>(obj: T, finalizer: string): T {
  const next = structuredClone(obj);
  next.metadata!.finalizers = [...(next.metadata!.finalizers ?? []), finalizer];
  return next;
}

function ignoreGone(err: unknown): void {
  if (!isStatusError(err, "NotFound")) throw err;
}

export const pvcProtectionDescriptor: ControllerDescriptor = {
  name: "pvc-protection",
  aliases: ["persistentvolumeclaim-protection-controller"],
  serviceAccount: "pvc-protection-controller",
  async start(ctx, signal) {
    const claims = ctx.informers.informer("v1/PersistentVolumeClaim");
    const pods = ctx.informers.informer("v1/Pod");
    const c = controller({
      name: "pvc-protection",
      informers: ctx.informers,
      for: "v1/PersistentVolumeClaim",
      watches: [
        watchOf("v1/Pod", (pod: Pod) =>
          claimsOfPod(pod).map((claim) => `${pod.metadata?.namespace ?? ""}/${claim}`),
        ),
      ],
      workers: ctx.options.concurrency["pvc-protection"] ?? 1,
      clock: ctx.clock,
      onError: (err, req) => ctx.log.error(`PVC ${req.key} failed: ${errorMessage(err)}`),
      reconcile: async ({ namespace, name }) => {
        const pvc = claims.store.getByName(namespace, name);
        if (!pvc) return;
        const api = ctx.client.resource("v1/PersistentVolumeClaim", namespace);
        let action = protectionAction(pvc, PVC_PROTECTION_FINALIZER, () =>
          pods.store.listNamespace(namespace).some((p) => podUsesPVC(p, pvc)),
        );
        if (action === "removeFinalizer") {
          // The cache may lag behind a pod just created: ask the API server before letting go.
          const live = await ctx.client.resource("v1/Pod", namespace).list();
          if (live.items.some((p) => podUsesPVC(p, pvc))) action = "none";
        }
        try {
          if (action === "removeFinalizer")
            await api.update(withoutFinalizer(pvc, PVC_PROTECTION_FINALIZER));
          else if (action === "addFinalizer")
            await api.update(withFinalizer(pvc, PVC_PROTECTION_FINALIZER));
        } catch (err) {
          ignoreGone(err);
        }
      },
    });
    await c.start(signal);
  },
};

export const pvProtectionDescriptor: ControllerDescriptor = {
  name: "pv-protection",
  aliases: ["persistentvolume-protection-controller"],
  serviceAccount: "pv-protection-controller",
  async start(ctx, signal) {
    const volumes = ctx.informers.informer("v1/PersistentVolume");
    const c = controller({
      name: "pv-protection",
      informers: ctx.informers,
      for: "v1/PersistentVolume",
      workers: ctx.options.concurrency["pv-protection"] ?? 1,
      clock: ctx.clock,
      onError: (err, req) => ctx.log.error(`PV ${req.key} failed: ${errorMessage(err)}`),
      reconcile: async ({ name }) => {
        const pv = volumes.store.get(name);
        if (!pv) return;
        const api = ctx.client.resource("v1/PersistentVolume");
        const action = protectionAction(pv, PV_PROTECTION_FINALIZER, () => pvIsInUse(pv));
        try {
          if (action === "removeFinalizer")
            await api.update(withoutFinalizer(pv, PV_PROTECTION_FINALIZER));
          else if (action === "addFinalizer")
            await api.update(withFinalizer(pv, PV_PROTECTION_FINALIZER));
        } catch (err) {
          ignoreGone(err);
        }
      },
    });
    await c.start(signal);
  },
};
