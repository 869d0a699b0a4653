/**
 * Upstream 1.32's per-resource behaviour (defaulting, create/update preparation, validation),
 * keyed "<group>/<resource>" ("" for the core group). These are meant to be merged over the
 * registry's generic strategy for each resource.
 *
 * Strategies that define prepareForCreate reset the status themselves (as upstream does), so a
 * generic "drop status on create" must not be layered on top of them; Node keeps the status it
 * is created with.
 */
import type { Strategy } from "../registry/types.js";
import { cronJobStrategy, jobStrategy } from "./batch.js";
import {
  clusterRoleBindingStrategy,
  clusterRoleStrategy,
  configMapStrategy,
  endpointSliceStrategy,
  eventStrategy,
  eventsV1Strategy,
  hpaStrategy,
  ingressClassStrategy,
  ingressStrategy,
  leaseStrategy,
  limitRangeStrategy,
  namespaceStrategy,
  networkPolicyStrategy,
  nodeStrategy,
  persistentVolumeClaimStrategy,
  persistentVolumeStrategy,
  podDisruptionBudgetStrategy,
  priorityClassStrategy,
  resourceQuotaStrategy,
  roleBindingStrategy,
  roleStrategy,
  secretStrategy,
  serviceAccountStrategy,
  storageClassStrategy,
} from "./misc.js";
import { podStrategy, podTemplateStrategy } from "./pod.js";
import { endpointsStrategy, serviceStrategy } from "./service.js";
import {
  daemonSetStrategy,
  deploymentStrategy,
  replicaSetStrategy,
  replicationControllerStrategy,
  statefulSetStrategy,
} from "./workloads.js";

export const strategies: Record<string, Partial<Strategy>> = {
  "/pods": podStrategy,
  "/podtemplates": podTemplateStrategy,
  "/replicationcontrollers": replicationControllerStrategy,
  "/services": serviceStrategy,
  "/endpoints": endpointsStrategy,
  "/namespaces": namespaceStrategy,
  "/configmaps": configMapStrategy,
  "/secrets": secretStrategy,
  "/serviceaccounts": serviceAccountStrategy,
  "/nodes": nodeStrategy,
  "/events": eventStrategy,
  "/persistentvolumeclaims": persistentVolumeClaimStrategy,
  "/persistentvolumes": persistentVolumeStrategy,
  "/limitranges": limitRangeStrategy,
  "/resourcequotas": resourceQuotaStrategy,
  "apps/deployments": deploymentStrategy,
  "apps/replicasets": replicaSetStrategy,
  "apps/statefulsets": statefulSetStrategy,
  "apps/daemonsets": daemonSetStrategy,
  "batch/jobs": jobStrategy,
  "batch/cronjobs": cronJobStrategy,
  "autoscaling/horizontalpodautoscalers": hpaStrategy,
  "policy/poddisruptionbudgets": podDisruptionBudgetStrategy,
  "networking.k8s.io/ingresses": ingressStrategy,
  "networking.k8s.io/ingressclasses": ingressClassStrategy,
  "networking.k8s.io/networkpolicies": networkPolicyStrategy,
  "rbac.authorization.k8s.io/roles": roleStrategy,
  "rbac.authorization.k8s.io/clusterroles": clusterRoleStrategy,
  "rbac.authorization.k8s.io/rolebindings": roleBindingStrategy,
  "rbac.authorization.k8s.io/clusterrolebindings": clusterRoleBindingStrategy,
  "scheduling.k8s.io/priorityclasses": priorityClassStrategy,
  "storage.k8s.io/storageclasses": storageClassStrategy,
  "coordination.k8s.io/leases": leaseStrategy,
  "discovery.k8s.io/endpointslices": endpointSliceStrategy,
  "events.k8s.io/events": eventsV1Strategy,
};
