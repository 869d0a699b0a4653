/**
 * The built-in kinds k8ts serves, keyed `apiVersion/Kind` as a controller names them
 * ("v1/Pod", "apps/v1/ReplicaSet"), with their kubernetes-types object types. The keys match the
 * catalogue in src/api/resources.ts (a test checks both ways).
 */

import type { ObjectMeta } from "kubernetes-types/meta/v1.js";
import type * as appsV1 from "kubernetes-types/apps/v1.js";
import type * as authenticationV1 from "kubernetes-types/authentication/v1.js";
import type * as authorizationV1 from "kubernetes-types/authorization/v1.js";
import type * as autoscalingV1 from "kubernetes-types/autoscaling/v1.js";
import type * as autoscalingV2 from "kubernetes-types/autoscaling/v2.js";
import type * as batchV1 from "kubernetes-types/batch/v1.js";
import type * as certificatesV1 from "kubernetes-types/certificates/v1.js";
import type * as coordinationV1 from "kubernetes-types/coordination/v1.js";
import type * as coreV1 from "kubernetes-types/core/v1.js";
import type * as discoveryV1 from "kubernetes-types/discovery/v1.js";
import type * as eventsV1 from "kubernetes-types/events/v1.js";
import type * as networkingV1 from "kubernetes-types/networking/v1.js";
import type * as nodeV1 from "kubernetes-types/node/v1.js";
import type * as policyV1 from "kubernetes-types/policy/v1.js";
import type * as rbacV1 from "kubernetes-types/rbac/v1.js";
import type * as schedulingV1 from "kubernetes-types/scheduling/v1.js";
import type * as storageV1 from "kubernetes-types/storage/v1.js";

export interface BuiltinKinds {
  "v1/Binding": coreV1.Binding;
  "v1/ComponentStatus": coreV1.ComponentStatus;
  "v1/ConfigMap": coreV1.ConfigMap;
  "v1/Endpoints": coreV1.Endpoints;
  "v1/Event": coreV1.Event;
  "v1/LimitRange": coreV1.LimitRange;
  "v1/Namespace": coreV1.Namespace;
  "v1/Node": coreV1.Node;
  "v1/PersistentVolumeClaim": coreV1.PersistentVolumeClaim;
  "v1/PersistentVolume": coreV1.PersistentVolume;
  "v1/Pod": coreV1.Pod;
  "v1/PodTemplate": coreV1.PodTemplate;
  "v1/ReplicationController": coreV1.ReplicationController;
  "v1/ResourceQuota": coreV1.ResourceQuota;
  "v1/Secret": coreV1.Secret;
  "v1/ServiceAccount": coreV1.ServiceAccount;
  "v1/Service": coreV1.Service;
  "apps/v1/ControllerRevision": appsV1.ControllerRevision;
  "apps/v1/DaemonSet": appsV1.DaemonSet;
  "apps/v1/Deployment": appsV1.Deployment;
  "apps/v1/ReplicaSet": appsV1.ReplicaSet;
  "apps/v1/StatefulSet": appsV1.StatefulSet;
  "events.k8s.io/v1/Event": eventsV1.Event;
  "authentication.k8s.io/v1/SelfSubjectReview": authenticationV1.SelfSubjectReview;
  "authentication.k8s.io/v1/TokenReview": authenticationV1.TokenReview;
  "authorization.k8s.io/v1/LocalSubjectAccessReview": authorizationV1.LocalSubjectAccessReview;
  "authorization.k8s.io/v1/SelfSubjectAccessReview": authorizationV1.SelfSubjectAccessReview;
  "authorization.k8s.io/v1/SelfSubjectRulesReview": authorizationV1.SelfSubjectRulesReview;
  "authorization.k8s.io/v1/SubjectAccessReview": authorizationV1.SubjectAccessReview;
  "autoscaling/v2/HorizontalPodAutoscaler": autoscalingV2.HorizontalPodAutoscaler;
  "autoscaling/v1/HorizontalPodAutoscaler": autoscalingV1.HorizontalPodAutoscaler;
  "batch/v1/CronJob": batchV1.CronJob;
  "batch/v1/Job": batchV1.Job;
  "certificates.k8s.io/v1/CertificateSigningRequest": certificatesV1.CertificateSigningRequest;
  "networking.k8s.io/v1/IngressClass": networkingV1.IngressClass;
  "networking.k8s.io/v1/Ingress": networkingV1.Ingress;
  "networking.k8s.io/v1/NetworkPolicy": networkingV1.NetworkPolicy;
  "policy/v1/PodDisruptionBudget": policyV1.PodDisruptionBudget;
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": rbacV1.ClusterRoleBinding;
  "rbac.authorization.k8s.io/v1/ClusterRole": rbacV1.ClusterRole;
  "rbac.authorization.k8s.io/v1/RoleBinding": rbacV1.RoleBinding;
  "rbac.authorization.k8s.io/v1/Role": rbacV1.Role;
  "storage.k8s.io/v1/CSIDriver": storageV1.CSIDriver;
  "storage.k8s.io/v1/CSINode": storageV1.CSINode;
  "storage.k8s.io/v1/CSIStorageCapacity": storageV1.CSIStorageCapacity;
  "storage.k8s.io/v1/StorageClass": storageV1.StorageClass;
  "storage.k8s.io/v1/VolumeAttachment": storageV1.VolumeAttachment;
  "scheduling.k8s.io/v1/PriorityClass": schedulingV1.PriorityClass;
  "coordination.k8s.io/v1/Lease": coordinationV1.Lease;
  "node.k8s.io/v1/RuntimeClass": nodeV1.RuntimeClass;
  "discovery.k8s.io/v1/EndpointSlice": discoveryV1.EndpointSlice;
}

/** `apiVersion/Kind` of a built-in kind. */
export type KindName = keyof BuiltinKinds;

/** Any Kubernetes object, as far as the client runtime needs to know it. */
export interface KObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

/** The object type of a kind name; a plain `KObject` for kinds outside the built-in set. */
export type ObjectOf<K extends string> = K extends KindName ? BuiltinKinds[K] : KObject;

/** Splits "apps/v1/ReplicaSet" or "v1/Pod" into group, version and kind. */
export function parseKindName(name: string): { group: string; version: string; kind: string } {
  const parts = name.split("/");
  if (parts.length === 2) return { group: "", version: parts[0]!, kind: parts[1]! };
  if (parts.length === 3) return { group: parts[0]!, version: parts[1]!, kind: parts[2]! };
  throw new Error(`"${name}" is not a kind name of the form [group/]version/Kind`);
}
