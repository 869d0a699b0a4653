/**
 * DefaultStorageClass and DefaultIngressClass: a new PersistentVolumeClaim that names no storage
 * class (neither spec.storageClassName, even empty, nor the beta annotation) gets the default
 * StorageClass, and a new Ingress that names no class (neither spec.ingressClassName nor the
 * kubernetes.io/ingress.class annotation) the default IngressClass. The default is the class
 * annotated as such; of several, the newest (then the first by name), as upstream 1.32.
 */
import type { KObject } from "../../registry/types.js";
import type { AdmissionContext, AdmissionPlugin } from "../types.js";
import { byteOrder, isResource } from "./util.js";

export const IS_DEFAULT_STORAGE_CLASS = "storageclass.kubernetes.io/is-default-class";
export const BETA_IS_DEFAULT_STORAGE_CLASS = "storageclass.beta.kubernetes.io/is-default-class";
export const BETA_STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class";
export const IS_DEFAULT_INGRESS_CLASS = "ingressclass.kubernetes.io/is-default-class";
export const INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class";

/** The newest of the classes `isDefault` picks (ties go to the first by name). */
function newestDefault(
  classes: KObject[],
  isDefault: (c: KObject) => boolean,
): KObject | undefined {
  const time = (c: KObject) => Date.parse(c.metadata?.creationTimestamp ?? "") || 0;
  return classes
    .filter(isDefault)
    .sort(
      (x, y) => time(y) - time(x) || byteOrder(x.metadata?.name ?? "", y.metadata?.name ?? ""),
    )[0];
}

/** The default StorageClass, when one is marked (upstream's util.GetDefaultClass). */
export function defaultStorageClass(ctx: AdmissionContext): KObject | undefined {
  return newestDefault(ctx.list("storage.k8s.io", "v1", "storageclasses", ""), (c) => {
    const ann = c.metadata?.annotations ?? {};
    return (
      ann[IS_DEFAULT_STORAGE_CLASS] === "true" || ann[BETA_IS_DEFAULT_STORAGE_CLASS] === "true"
    );
  });
}

export const defaultStorageClassPlugin: AdmissionPlugin = {
  name: "DefaultStorageClass",
  admit(a, ctx) {
    if (a.operation !== "CREATE" || a.subresource !== "") return;
    if (!isResource(a, "", "persistentvolumeclaims") || !a.object) return;
    const pvc = a.object;
    const spec = (pvc.spec ?? (pvc.spec = {})) as { storageClassName?: string | null };
    if (pvc.metadata?.annotations?.[BETA_STORAGE_CLASS_ANNOTATION] !== undefined) return;
    if (spec.storageClassName !== undefined && spec.storageClassName !== null) return;
    const def = defaultStorageClass(ctx);
    if (def) spec.storageClassName = def.metadata!.name!;
  },
};

export const defaultIngressClassPlugin: AdmissionPlugin = {
  name: "DefaultIngressClass",
  admit(a, ctx) {
    if (a.operation !== "CREATE" || a.subresource !== "") return;
    if (!isResource(a, "networking.k8s.io", "ingresses") || !a.object) return;
    const ingress = a.object;
    const spec = (ingress.spec ?? (ingress.spec = {})) as { ingressClassName?: string | null };
    if (spec.ingressClassName !== undefined && spec.ingressClassName !== null) return;
    if (ingress.metadata?.annotations?.[INGRESS_CLASS_ANNOTATION] !== undefined) return;
    const def = newestDefault(
      ctx.list("networking.k8s.io", "v1", "ingressclasses", ""),
      (c) => c.metadata?.annotations?.[IS_DEFAULT_INGRESS_CLASS] === "true",
    );
    if (def) spec.ingressClassName = def.metadata!.name!;
  },
};
