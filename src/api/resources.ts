/**
 * The catalogue of built-in resources k8ts serves, as a default kube-apiserver 1.32 advertises
 * them in discovery: groups in discovery order (descending group priority), versions in
 * preference order, resources of a group-version sorted by name, and per resource its kind,
 * scope, verbs, short names, categories, subresources and storage version hash.
 *
 * Response kinds follow upstream's discovery documents: `group` and `version` are empty unless
 * the resource or subresource answers with a kind of another group-version (pods/eviction is
 * policy/v1 Eviction, the scale subresources are autoscaling/v1 Scale, serviceaccounts/token is
 * authentication.k8s.io/v1 TokenRequest).
 */

import { createHash } from "node:crypto";

export type Verb =
  "create" | "delete" | "deletecollection" | "get" | "list" | "patch" | "update" | "watch";

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export interface SubresourceInfo {
  /** The subresource's name, e.g. "status", "scale", "exec". */
  subresource: string;
  responseKind: GroupVersionKind;
  verbs: readonly Verb[];
}

export interface ResourceInfo {
  /** API group, "" for the core group. */
  group: string;
  version: string;
  /** Plural resource name, as in URLs. */
  resource: string;
  singularName: string;
  kind: string;
  namespaced: boolean;
  /** Verbs of the resource, sorted. */
  verbs: readonly Verb[];
  shortNames: readonly string[];
  categories: readonly string[];
  /** The kind discovery reports for the resource (see the module comment for group/version). */
  responseKind: GroupVersionKind;
  /** Subresources sorted by name. */
  subresources: readonly SubresourceInfo[];
  /**
   * Base64 of the first 8 bytes of SHA-256 of "group/version/kind" of the stored form, as
   * legacy discovery reports it; undefined for resources that are not stored (reviews, bindings).
   */
  storageVersionHash?: string;
}

export interface GroupVersionInfo {
  version: string;
  resources: readonly ResourceInfo[];
}

export interface GroupInfo {
  /** Group name, "" for the core group. */
  name: string;
  preferredVersion: string;
  /** Versions in preference order (the preferred one first). */
  versions: readonly GroupVersionInfo[];
}

const ALL_VERBS: readonly Verb[] = [
  "create",
  "delete",
  "deletecollection",
  "get",
  "list",
  "patch",
  "update",
  "watch",
];
const CREATE: readonly Verb[] = ["create"];
const GET_PATCH_UPDATE: readonly Verb[] = ["get", "patch", "update"];
const CONNECT: readonly Verb[] = ["create", "get"];
const PROXY: readonly Verb[] = ["create", "delete", "get", "patch", "update"];

interface ResourceSpec {
  resource: string;
  kind: string;
  namespaced: boolean;
  singularName?: string;
  verbs?: readonly Verb[];
  shortNames?: readonly string[];
  categories?: readonly string[];
  subresources?: readonly SubresourceSpec[];
  /** "group/version/Kind" the resource is stored as; "" when it is not stored. */
  storedAs?: string;
}

interface SubresourceSpec {
  subresource: string;
  kind?: string;
  group?: string;
  version?: string;
  verbs: readonly Verb[];
}

const status: SubresourceSpec = { subresource: "status", verbs: GET_PATCH_UPDATE };
const scale: SubresourceSpec = {
  subresource: "scale",
  group: "autoscaling",
  version: "v1",
  kind: "Scale",
  verbs: GET_PATCH_UPDATE,
};

/** Group-versions in discovery order, each with its resources. */
const CATALOGUE: { group: string; versions: { version: string; resources: ResourceSpec[] }[] }[] = [
  {
    group: "",
    versions: [
      {
        version: "v1",
        resources: [
          { resource: "bindings", kind: "Binding", namespaced: true, verbs: CREATE, storedAs: "" },
          {
            resource: "componentstatuses",
            kind: "ComponentStatus",
            singularName: "componentstatus",
            namespaced: false,
            verbs: ["get", "list"],
            shortNames: ["cs"],
            storedAs: "",
          },
          { resource: "configmaps", kind: "ConfigMap", namespaced: true, shortNames: ["cm"] },
          {
            resource: "endpoints",
            kind: "Endpoints",
            singularName: "endpoints",
            namespaced: true,
            shortNames: ["ep"],
          },
          { resource: "events", kind: "Event", namespaced: true, shortNames: ["ev"] },
          { resource: "limitranges", kind: "LimitRange", namespaced: true, shortNames: ["limits"] },
          {
            resource: "namespaces",
            kind: "Namespace",
            namespaced: false,
            verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
            shortNames: ["ns"],
            subresources: [{ subresource: "finalize", verbs: ["update"] }, status],
          },
          {
            resource: "nodes",
            kind: "Node",
            namespaced: false,
            shortNames: ["no"],
            subresources: [
              { subresource: "proxy", kind: "NodeProxyOptions", verbs: PROXY },
              status,
            ],
          },
          {
            resource: "persistentvolumeclaims",
            kind: "PersistentVolumeClaim",
            namespaced: true,
            shortNames: ["pvc"],
            subresources: [status],
          },
          {
            resource: "persistentvolumes",
            kind: "PersistentVolume",
            namespaced: false,
            shortNames: ["pv"],
            subresources: [status],
          },
          {
            resource: "pods",
            kind: "Pod",
            namespaced: true,
            shortNames: ["po"],
            categories: ["all"],
            subresources: [
              { subresource: "attach", kind: "PodAttachOptions", verbs: CONNECT },
              { subresource: "binding", kind: "Binding", verbs: CREATE },
              { subresource: "ephemeralcontainers", verbs: GET_PATCH_UPDATE },
              {
                subresource: "eviction",
                group: "policy",
                version: "v1",
                kind: "Eviction",
                verbs: CREATE,
              },
              { subresource: "exec", kind: "PodExecOptions", verbs: CONNECT },
              { subresource: "log", verbs: ["get"] },
              { subresource: "portforward", kind: "PodPortForwardOptions", verbs: CONNECT },
              { subresource: "proxy", kind: "PodProxyOptions", verbs: PROXY },
              status,
            ],
          },
          { resource: "podtemplates", kind: "PodTemplate", namespaced: true },
          {
            resource: "replicationcontrollers",
            kind: "ReplicationController",
            namespaced: true,
            shortNames: ["rc"],
            categories: ["all"],
            subresources: [scale, status],
          },
          {
            resource: "resourcequotas",
            kind: "ResourceQuota",
            namespaced: true,
            shortNames: ["quota"],
            subresources: [status],
          },
          { resource: "secrets", kind: "Secret", namespaced: true },
          {
            resource: "serviceaccounts",
            kind: "ServiceAccount",
            namespaced: true,
            shortNames: ["sa"],
            subresources: [
              {
                subresource: "token",
                group: "authentication.k8s.io",
                version: "v1",
                kind: "TokenRequest",
                verbs: CREATE,
              },
            ],
          },
          {
            resource: "services",
            kind: "Service",
            namespaced: true,
            shortNames: ["svc"],
            categories: ["all"],
            subresources: [
              { subresource: "proxy", kind: "ServiceProxyOptions", verbs: PROXY },
              status,
            ],
          },
        ],
      },
    ],
  },
  {
    group: "apps",
    versions: [
      {
        version: "v1",
        resources: [
          { resource: "controllerrevisions", kind: "ControllerRevision", namespaced: true },
          {
            resource: "daemonsets",
            kind: "DaemonSet",
            namespaced: true,
            shortNames: ["ds"],
            categories: ["all"],
            subresources: [status],
          },
          {
            resource: "deployments",
            kind: "Deployment",
            namespaced: true,
            shortNames: ["deploy"],
            categories: ["all"],
            subresources: [scale, status],
          },
          {
            resource: "replicasets",
            kind: "ReplicaSet",
            namespaced: true,
            shortNames: ["rs"],
            categories: ["all"],
            subresources: [scale, status],
          },
          {
            resource: "statefulsets",
            kind: "StatefulSet",
            namespaced: true,
            shortNames: ["sts"],
            categories: ["all"],
            subresources: [scale, status],
          },
        ],
      },
    ],
  },
  {
    group: "events.k8s.io",
    versions: [
      {
        version: "v1",
        resources: [
          {
            resource: "events",
            kind: "Event",
            namespaced: true,
            shortNames: ["ev"],
            storedAs: "/v1/Event",
          },
        ],
      },
    ],
  },
  {
    group: "authentication.k8s.io",
    versions: [
      {
        version: "v1",
        resources: [
          {
            resource: "selfsubjectreviews",
            kind: "SelfSubjectReview",
            namespaced: false,
            verbs: CREATE,
            storedAs: "",
          },
          {
            resource: "tokenreviews",
            kind: "TokenReview",
            namespaced: false,
            verbs: CREATE,
            storedAs: "",
          },
        ],
      },
    ],
  },
  {
    group: "authorization.k8s.io",
    versions: [
      {
        version: "v1",
        resources: [
          {
            resource: "localsubjectaccessreviews",
            kind: "LocalSubjectAccessReview",
            namespaced: true,
            verbs: CREATE,
            storedAs: "",
          },
          {
            resource: "selfsubjectaccessreviews",
            kind: "SelfSubjectAccessReview",
            namespaced: false,
            verbs: CREATE,
            storedAs: "",
          },
          {
            resource: "selfsubjectrulesreviews",
            kind: "SelfSubjectRulesReview",
            namespaced: false,
            verbs: CREATE,
            storedAs: "",
          },
          {
            resource: "subjectaccessreviews",
            kind: "SubjectAccessReview",
            namespaced: false,
            verbs: CREATE,
            storedAs: "",
          },
        ],
      },
    ],
  },
  {
    group: "autoscaling",
    versions: ["v2", "v1"].map((version) => ({
      version,
      resources: [
        {
          resource: "horizontalpodautoscalers",
          kind: "HorizontalPodAutoscaler",
          namespaced: true,
          shortNames: ["hpa"],
          categories: ["all"],
          subresources: [status],
          storedAs: "autoscaling/v2/HorizontalPodAutoscaler",
        },
      ],
    })),
  },
  {
    group: "batch",
    versions: [
      {
        version: "v1",
        resources: [
          {
            resource: "cronjobs",
            kind: "CronJob",
            namespaced: true,
            shortNames: ["cj"],
            categories: ["all"],
            subresources: [status],
          },
          {
            resource: "jobs",
            kind: "Job",
            namespaced: true,
            categories: ["all"],
            subresources: [status],
          },
        ],
      },
    ],
  },
  {
    group: "certificates.k8s.io",
    versions: [
      {
        version: "v1",
        resources: [
          {
            resource: "certificatesigningrequests",
            kind: "CertificateSigningRequest",
            namespaced: false,
            shortNames: ["csr"],
            subresources: [{ subresource: "approval", verbs: GET_PATCH_UPDATE }, status],
          },
        ],
      },
    ],
  },
  {
    group: "networking.k8s.io",
    versions: [
      {
        version: "v1",
        resources: [
          { resource: "ingressclasses", kind: "IngressClass", namespaced: false },
          {
            resource: "ingresses",
            kind: "Ingress",
            namespaced: true,
            shortNames: ["ing"],
            subresources: [status],
          },
          {
            resource: "networkpolicies",
            kind: "NetworkPolicy",
            namespaced: true,
            shortNames: ["netpol"],
          },
        ],
      },
    ],
  },
  {
    group: "policy",
    versions: [
      {
        version: "v1",
        resources: [
          {
            resource: "poddisruptionbudgets",
            kind: "PodDisruptionBudget",
            namespaced: true,
            shortNames: ["pdb"],
            subresources: [status],
          },
        ],
      },
    ],
  },
  {
    group: "rbac.authorization.k8s.io",
    versions: [
      {
        version: "v1",
        resources: [
          { resource: "clusterrolebindings", kind: "ClusterRoleBinding", namespaced: false },
          { resource: "clusterroles", kind: "ClusterRole", namespaced: false },
          { resource: "rolebindings", kind: "RoleBinding", namespaced: true },
          { resource: "roles", kind: "Role", namespaced: true },
        ],
      },
    ],
  },
  {
    group: "storage.k8s.io",
    versions: [
      {
        version: "v1",
        resources: [
          { resource: "csidrivers", kind: "CSIDriver", namespaced: false },
          { resource: "csinodes", kind: "CSINode", namespaced: false },
          {
            resource: "csistoragecapacities",
            kind: "CSIStorageCapacity",
            singularName: "csistoragecapacity",
            namespaced: true,
          },
          {
            resource: "storageclasses",
            kind: "StorageClass",
            singularName: "storageclass",
            namespaced: false,
            shortNames: ["sc"],
          },
          {
            resource: "volumeattachments",
            kind: "VolumeAttachment",
            namespaced: false,
            subresources: [status],
          },
        ],
      },
    ],
  },
  {
    group: "scheduling.k8s.io",
    versions: [
      {
        version: "v1",
        resources: [
          {
            resource: "priorityclasses",
            kind: "PriorityClass",
            singularName: "priorityclass",
            namespaced: false,
            shortNames: ["pc"],
          },
        ],
      },
    ],
  },
  {
    group: "coordination.k8s.io",
    versions: [
      { version: "v1", resources: [{ resource: "leases", kind: "Lease", namespaced: true }] },
    ],
  },
  {
    group: "node.k8s.io",
    versions: [
      {
        version: "v1",
        resources: [
          {
            resource: "runtimeclasses",
            kind: "RuntimeClass",
            singularName: "runtimeclass",
            namespaced: false,
          },
        ],
      },
    ],
  },
  {
    group: "discovery.k8s.io",
    versions: [
      {
        version: "v1",
        resources: [{ resource: "endpointslices", kind: "EndpointSlice", namespaced: true }],
      },
    ],
  },
];

/** Upstream's storage version hash of a group/version/kind. */
export function storageVersionHash(group: string, version: string, kind: string): string {
  return createHash("sha256")
    .update(`${group}/${version}/${kind}`)
    .digest()
    .subarray(0, 8)
    .toString("base64");
}

function buildResource(group: string, version: string, spec: ResourceSpec): ResourceInfo {
  const storedAs = spec.storedAs ?? `${group}/${version}/${spec.kind}`;
  let hash: string | undefined;
  if (storedAs !== "") {
    const [g, v, k] = storedAs.split("/") as [string, string, string];
    hash = storageVersionHash(g, v, k);
  }
  const info: ResourceInfo = {
    group,
    version,
    resource: spec.resource,
    singularName: spec.singularName ?? spec.kind.toLowerCase(),
    kind: spec.kind,
    namespaced: spec.namespaced,
    verbs: spec.verbs ?? ALL_VERBS,
    shortNames: spec.shortNames ?? [],
    categories: spec.categories ?? [],
    responseKind: { group: "", version: "", kind: spec.kind },
    subresources: (spec.subresources ?? []).map((s) => ({
      subresource: s.subresource,
      responseKind: { group: s.group ?? "", version: s.version ?? "", kind: s.kind ?? spec.kind },
      verbs: s.verbs,
    })),
  };
  if (hash !== undefined) info.storageVersionHash = hash;
  return info;
}

const GROUPS: readonly GroupInfo[] = CATALOGUE.map((g) => ({
  name: g.group,
  preferredVersion: g.versions[0]!.version,
  versions: g.versions.map((v) => ({
    version: v.version,
    resources: v.resources.map((r) => buildResource(g.group, v.version, r)),
  })),
}));

/** Every served resource of every served group-version, in discovery order. */
export const resources: readonly ResourceInfo[] = GROUPS.flatMap((g) =>
  g.versions.flatMap((v) => v.resources),
);

/** The preferred version of each served group ("" is the core group). */
export const preferredVersions: Readonly<Record<string, string>> = Object.fromEntries(
  GROUPS.map((g) => [g.name, g.preferredVersion]),
);

/** Served groups in discovery order: the core group first, then by descending group priority. */
export function groupsInOrder(): readonly GroupInfo[] {
  return GROUPS;
}

/** The group "" or named group, if served. */
export function findGroup(name: string): GroupInfo | undefined {
  return GROUPS.find((g) => g.name === name);
}

/** A resource by group, version and plural name, if served there. */
export function findResource(
  group: string,
  version: string,
  resource: string,
): ResourceInfo | undefined {
  return resources.find(
    (r) => r.group === group && r.version === version && r.resource === resource,
  );
}

/** A resource by group, version and kind, if served there. */
export function findResourceByKind(
  group: string,
  version: string,
  kind: string,
): ResourceInfo | undefined {
  return resources.find((r) => r.group === group && r.version === version && r.kind === kind);
}

/** Resources of the groups' preferred versions, in discovery order. */
export function preferredResources(): ResourceInfo[] {
  return resources.filter((r) => preferredVersions[r.group] === r.version);
}

/**
 * The resource a short name stands for ("po", "deploy", "svc"), taken from the preferred
 * versions in discovery order as kubectl expands it: "ev" is core events.
 */
export function resolveShortName(name: string): ResourceInfo | undefined {
  return preferredResources().find((r) => r.shortNames.includes(name));
}

/** Resources of a category ("all"), preferred versions, in discovery order. */
export function resourcesInCategory(category: string): ResourceInfo[] {
  return preferredResources().filter((r) => r.categories.includes(category));
}
