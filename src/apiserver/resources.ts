import { preferredVersions, resources, type ResourceInfo } from "../api/resources.js";
import type { KObject, ResourceDef, Strategy } from "./registry/types.js";
import { strategies } from "./strategies/index.js";

/** Where upstream keeps a resource in etcd, when it is not the resource's own name. */
const STORAGE_PATHS: Record<string, string> = {
  "/services": "services/specs",
  "/endpoints": "services/endpoints",
  "/nodes": "minions",
  "/replicationcontrollers": "controllers",
  "networking.k8s.io/ingresses": "ingress",
};

/** Resources that are requests, not stored objects (reviews, bindings, component statuses). */
const NOT_STORED = new Set([
  "/bindings",
  "/componentstatuses",
  "authentication.k8s.io/tokenreviews",
  "authentication.k8s.io/selfsubjectreviews",
  "authorization.k8s.io/subjectaccessreviews",
  "authorization.k8s.io/selfsubjectaccessreviews",
  "authorization.k8s.io/localsubjectaccessreviews",
  "authorization.k8s.io/selfsubjectrulesreviews",
]);

/** Resources for which PUT of a missing object creates it, as upstream allows. */
const CREATE_ON_UPDATE = new Set([
  "/endpoints",
  "/events",
  "coordination.k8s.io/leases",
  "events.k8s.io/events",
]);

const get = (obj: KObject, path: string): string => {
  let v: unknown = obj;
  for (const p of path.split("."))
    v = v && typeof v === "object" ? (v as Record<string, unknown>)[p] : undefined;
  return v === undefined || v === null ? "" : String(v);
};

const fieldsOf = (paths: string[]) => (obj: KObject) =>
  Object.fromEntries(paths.map((p) => [p, get(obj, p)]));

/** Field selectors beyond metadata.name and metadata.namespace, as upstream supports them. */
const FIELD_LABELS: Record<string, string[]> = {
  "/pods": [
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
  ],
  "/events": [
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
  ],
  "/namespaces": ["status.phase"],
  "/secrets": ["type"],
  "/nodes": ["spec.unschedulable"],
  "/replicationcontrollers": ["status.replicas"],
  "apps/replicasets": ["status.replicas"],
  "batch/jobs": ["status.successful"],
  "/services": ["spec.clusterIP", "spec.type"],
  "certificates.k8s.io/certificatesigningrequests": ["spec.signerName"],
};

/**
 * Deletion behaviour beyond the generic pipeline, laid over the defaulting and validation
 * strategies of src/apiserver/strategies.
 */
const DELETION: Record<string, Partial<Strategy>> = {
  "/namespaces": {
    pendingFinalizers: (obj) =>
      (obj.spec as { finalizers?: string[] } | undefined)?.finalizers ?? [],
    prepareForDeletion(obj) {
      obj.status = { ...(obj.status as object), phase: "Terminating" };
    },
  },
  "/pods": {
    // A pod on a node is stopped by its kubelet first; one that never ran goes at once.
    gracefulDeletion(obj) {
      const spec = (obj.spec ?? {}) as {
        nodeName?: string;
        terminationGracePeriodSeconds?: number;
      };
      const phase = (obj.status as { phase?: string } | undefined)?.phase;
      if (!spec.nodeName || phase === "Succeeded" || phase === "Failed") return 0;
      return spec.terminationGracePeriodSeconds ?? 30;
    },
  },
};

function toDef(info: ResourceInfo, prefix: string): ResourceDef {
  const id = `${info.group}/${info.resource}`;
  const fieldLabels = FIELD_LABELS[id];
  const hasStatus = info.subresources.some((s) => s.subresource === "status");
  const strategy: Strategy = {
    allowCreateOnUpdate: CREATE_ON_UPDATE.has(id),
    ...(fieldLabels ? { fieldLabels: fieldsOf(fieldLabels) } : {}),
    ...strategies[id],
    ...DELETION[id],
  };
  if (hasStatus && !strategy.prepareForCreate) {
    // A status subresource means clients set status through it, not on create.
    strategy.prepareForCreate = (obj) => {
      delete obj.status;
    };
  }
  return {
    group: info.group,
    version: info.version,
    resource: info.resource,
    kind: info.kind,
    listKind: `${info.kind}List`,
    namespaced: info.namespaced,
    keyPrefix: `${prefix}/${STORAGE_PATHS[id] ?? info.resource}`,
    hasStatus,
    stored: !NOT_STORED.has(id),
    strategy,
    preferred: preferredVersions[info.group] === info.version,
    discovery: {
      singularName: info.singularName,
      verbs: [...info.verbs],
      shortNames: [...info.shortNames],
      categories: [...info.categories],
      storageVersionHash: info.storageVersionHash,
      subresources: info.subresources.map((s) => ({
        name: s.subresource,
        group: s.responseKind.group,
        version: s.responseKind.version,
        kind: s.responseKind.kind,
        verbs: [...s.verbs],
      })),
    },
  };
}

/** Every built-in resource, in discovery order, with its storage layout and strategy. */
export function builtinResourceDefs(etcdPrefix = "/registry"): ResourceDef[] {
  const prefix = etcdPrefix.replace(/\/+$/, "");
  return resources.map((info) => toDef(info, prefix));
}
