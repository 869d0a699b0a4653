import type { AdmissionPlugin } from "../types.js";
import {
  certificateApproval,
  certificateSigning,
  certificateSubjectRestriction,
} from "./certificates.js";
import { defaultIngressClassPlugin, defaultStorageClassPlugin } from "./default-class.js";
import { defaultTolerationSeconds } from "./default-toleration-seconds.js";
import { limitRanger } from "./limit-ranger.js";
import { namespaceLifecycle } from "./namespace-lifecycle.js";
import { nodeRestriction } from "./node-restriction.js";
import { podSecurity } from "./pod-security.js";
import { priority } from "./priority.js";
import { resourceQuota } from "./resource-quota.js";
import { serviceAccount } from "./service-account.js";
import { storageObjectInUseProtection } from "./storage-object-in-use-protection.js";
import { taintNodesByCondition } from "./taint-nodes-by-condition.js";

export { bootstrapPriorityClasses } from "./priority.js";

/**
 * Every admission plugin k8ts has, by upstream's name, in upstream's order of the chain
 * (kube-apiserver's AllOrderedPlugins: enabled plugins run in this order, whatever order the
 * flags list them in).
 */
export const ADMISSION_PLUGINS: ReadonlyArray<{ name: string; make: () => AdmissionPlugin }> = [
  { name: "NamespaceLifecycle", make: () => namespaceLifecycle },
  { name: "LimitRanger", make: () => limitRanger },
  { name: "ServiceAccount", make: () => serviceAccount() },
  { name: "NodeRestriction", make: () => nodeRestriction },
  { name: "TaintNodesByCondition", make: () => taintNodesByCondition },
  { name: "PodSecurity", make: () => podSecurity() },
  { name: "Priority", make: () => priority },
  { name: "DefaultTolerationSeconds", make: () => defaultTolerationSeconds() },
  { name: "DefaultStorageClass", make: () => defaultStorageClassPlugin },
  { name: "StorageObjectInUseProtection", make: () => storageObjectInUseProtection },
  { name: "CertificateApproval", make: () => certificateApproval },
  { name: "CertificateSigning", make: () => certificateSigning },
  { name: "CertificateSubjectRestriction", make: () => certificateSubjectRestriction },
  { name: "DefaultIngressClass", make: () => defaultIngressClassPlugin },
  { name: "ResourceQuota", make: () => resourceQuota },
];

/** kube-apiserver 1.32's plugins enabled by default (those k8ts has are used). */
export const DEFAULT_ADMISSION_PLUGINS = [
  "NamespaceLifecycle",
  "LimitRanger",
  "ServiceAccount",
  "TaintNodesByCondition",
  "PodSecurity",
  "Priority",
  "DefaultTolerationSeconds",
  "DefaultStorageClass",
  "StorageObjectInUseProtection",
  "PersistentVolumeClaimResize",
  "RuntimeClass",
  "CertificateApproval",
  "CertificateSigning",
  "ClusterTrustBundleAttest",
  "CertificateSubjectRestriction",
  "DefaultIngressClass",
  "MutatingAdmissionWebhook",
  "ValidatingAdmissionPolicy",
  "ValidatingAdmissionWebhook",
  "ResourceQuota",
];

/**
 * The chain for `--enable-admission-plugins` and `--disable-admission-plugins`: the defaults
 * plus the enabled, minus the disabled, in the plugins' order. Unknown names are an error, as
 * upstream's; upstream plugins k8ts does not have yet are accepted and skipped.
 */
export function admissionPlugins(
  enable: string[],
  disable: string[],
): { plugins: AdmissionPlugin[]; missing: string[] } {
  const known = new Set([...UPSTREAM_PLUGINS, ...ADMISSION_PLUGINS.map((p) => p.name)]);
  for (const [flag, names] of [
    ["enable-admission-plugins", enable],
    ["disable-admission-plugins", disable],
  ] as const) {
    for (const name of names) {
      if (!known.has(name)) throw new Error(`${flag} plugin "${name}" is unknown`);
    }
  }
  const wanted = new Set([...DEFAULT_ADMISSION_PLUGINS, ...enable]);
  for (const name of disable) wanted.delete(name);
  const have = new Set(ADMISSION_PLUGINS.map((p) => p.name));
  return {
    plugins: ADMISSION_PLUGINS.filter((p) => wanted.has(p.name)).map((p) => p.make()),
    missing: [...wanted].filter((n) => !have.has(n)),
  };
}

/** Every plugin name kube-apiserver 1.32 knows. */
const UPSTREAM_PLUGINS = [
  "AlwaysAdmit",
  "AlwaysDeny",
  "AlwaysPullImages",
  "CertificateApproval",
  "CertificateSigning",
  "CertificateSubjectRestriction",
  "ClusterTrustBundleAttest",
  "DefaultIngressClass",
  "DefaultStorageClass",
  "DefaultTolerationSeconds",
  "DenyServiceExternalIPs",
  "EventRateLimit",
  "ExtendedResourceToleration",
  "ImagePolicyWebhook",
  "LimitPodHardAntiAffinityTopology",
  "LimitRanger",
  "MutatingAdmissionPolicy",
  "MutatingAdmissionWebhook",
  "NamespaceAutoProvision",
  "NamespaceExists",
  "NamespaceLifecycle",
  "NodeRestriction",
  "OwnerReferencesPermissionEnforcement",
  "PersistentVolumeClaimResize",
  "PersistentVolumeLabel",
  "PodNodeSelector",
  "PodSecurity",
  "PodTolerationRestriction",
  "Priority",
  "ResourceQuota",
  "RuntimeClass",
  "ServiceAccount",
  "StorageObjectInUseProtection",
  "TaintNodesByCondition",
  "ValidatingAdmissionPolicy",
  "ValidatingAdmissionWebhook",
];
