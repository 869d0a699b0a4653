/**
 * StorageObjectInUseProtection: new PersistentVolumes and PersistentVolumeClaims carry the
 * kubernetes.io/pv-protection and kubernetes.io/pvc-protection finalizers, so that they are not
 * removed while a pod (or claim) still uses them; the protection controllers lift them. As
 * upstream's plugin.
 */
import type { AdmissionPlugin } from "../types.js";

export const PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection";
export const PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection";

export const storageObjectInUseProtection: AdmissionPlugin = {
  name: "StorageObjectInUseProtection",
  admit(a) {
    if (a.operation !== "CREATE" || a.group !== "" || a.subresource !== "") return;
    const finalizer =
      a.resource === "persistentvolumes"
        ? PV_PROTECTION_FINALIZER
        : a.resource === "persistentvolumeclaims"
          ? PVC_PROTECTION_FINALIZER
          : undefined;
    if (!finalizer || !a.object) return;
    const meta = (a.object.metadata ??= {});
    const finalizers = meta.finalizers ?? [];
    if (!finalizers.includes(finalizer)) meta.finalizers = [...finalizers, finalizer];
  },
};
