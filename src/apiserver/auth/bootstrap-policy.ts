/**
 * The RBAC objects an API server creates at start and keeps reconciled (upstream 1.32's bootstrap
 * policy, plugin/pkg/auth/authorizer/rbac/bootstrappolicy): the user-facing roles (cluster-admin,
 * admin, edit, view), the roles of the system components (scheduler, controller manager, nodes,
 * kube-proxy), the per-controller roles the controller manager uses with
 * --use-service-account-credentials, their bindings, and a few namespaced roles.
 *
 * The data is written as a compact table; every list in a rule is sorted, as upstream's rule
 * builder sorts them. Feature-gated roles that are off by default in 1.32 (dynamic resource
 * allocation, service CIDRs, SELinux warnings, volume attributes classes) are left out.
 */
import type {
  ClusterRole,
  ClusterRoleBinding,
  PolicyRule,
  Role,
  RoleBinding,
  Subject,
} from "kubernetes-types/rbac/v1.js";
import type { LabelSelector } from "kubernetes-types/meta/v1.js";
import { covers } from "./authorizer/rules.js";

export const AUTOUPDATE_ANNOTATION = "rbac.authorization.kubernetes.io/autoupdate";
export const BOOTSTRAPPING_LABEL = "kubernetes.io/bootstrapping";
export const BOOTSTRAPPING_VALUE = "rbac-defaults";
const RBAC_GROUP = "rbac.authorization.k8s.io";
const API_VERSION = "rbac.authorization.k8s.io/v1";
const CONTROLLER_PREFIX = "system:controller:";

// ---- the table notation ----

const CORE = [""];
const EVENTS = ["", "events.k8s.io"];
const READ = "get list watch";
const WRITE = "create delete deletecollection patch update";
const READ_WRITE = `${READ} ${WRITE}`;

const words = (s: string) => s.split(" ").filter((w) => w !== "");
const sorted = (list: string[]) => [...new Set(list)].sort();

/** A resource rule: verbs, API groups, resources and (optionally) resource names. */
function rule(verbs: string, groups: string[], resources: string, names?: string): PolicyRule {
  const r: PolicyRule = {
    apiGroups: sorted(groups),
    resources: sorted(words(resources)),
    verbs: sorted(words(verbs)),
  };
  if (names) r.resourceNames = sorted(words(names));
  return r;
}

/** A non-resource rule. */
function urls(verbs: string, paths: string): PolicyRule {
  return { nonResourceURLs: sorted(words(paths)), verbs: sorted(words(verbs)) };
}

const eventsRule = () => rule("create patch update", EVENTS, "events");

function meta(name: string, namespace?: string, labels: Record<string, string> = {}) {
  const m: {
    name: string;
    namespace?: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
  } = {
    name,
    labels: { [BOOTSTRAPPING_LABEL]: BOOTSTRAPPING_VALUE, ...labels },
    annotations: { [AUTOUPDATE_ANNOTATION]: "true" },
  };
  if (namespace !== undefined) m.namespace = namespace;
  return m;
}

function clusterRole(
  name: string,
  rules: PolicyRule[],
  labels?: Record<string, string>,
): ClusterRole {
  return {
    apiVersion: API_VERSION,
    kind: "ClusterRole",
    metadata: meta(name, undefined, labels),
    rules,
  };
}

function aggregated(name: string, label: string, labels?: Record<string, string>): ClusterRole {
  const selector: LabelSelector = { matchLabels: { [label]: "true" } };
  return {
    apiVersion: API_VERSION,
    kind: "ClusterRole",
    metadata: meta(name, undefined, labels),
    aggregationRule: { clusterRoleSelectors: [selector] },
  };
}

const user = (name: string): Subject => ({ apiGroup: RBAC_GROUP, kind: "User", name });
const group = (name: string): Subject => ({ apiGroup: RBAC_GROUP, kind: "Group", name });
const sa = (namespace: string, name: string): Subject => ({
  kind: "ServiceAccount",
  name,
  namespace,
});

function clusterBinding(name: string, subjects: Subject[], roleName = name): ClusterRoleBinding {
  const b: ClusterRoleBinding = {
    apiVersion: API_VERSION,
    kind: "ClusterRoleBinding",
    metadata: meta(name),
    roleRef: { apiGroup: RBAC_GROUP, kind: "ClusterRole", name: roleName },
  };
  if (subjects.length > 0) b.subjects = subjects;
  return b;
}

const AGG = "rbac.authorization.k8s.io/aggregate-to-";

// ---- cluster roles ----

/** The rules of system:node, which the Node authorizer also applies to every node. */
export function nodeRules(): PolicyRule[] {
  return [
    rule("create", ["authentication.k8s.io"], "tokenreviews"),
    rule("create", ["authorization.k8s.io"], "subjectaccessreviews localsubjectaccessreviews"),
    rule(READ, CORE, "services"),
    rule("create get list watch", CORE, "nodes"),
    rule("update patch", CORE, "nodes/status"),
    rule("update patch", CORE, "nodes"),
    rule("create update patch", CORE, "events"),
    rule(READ, CORE, "pods"),
    rule("create delete", CORE, "pods"),
    rule("update patch", CORE, "pods/status"),
    rule("create", CORE, "pods/eviction"),
    rule(READ, CORE, "secrets configmaps"),
    rule("get", CORE, "persistentvolumeclaims persistentvolumes"),
    rule("get", CORE, "endpoints"),
    rule("create get list watch", ["certificates.k8s.io"], "certificatesigningrequests"),
    rule("get create update patch delete", ["coordination.k8s.io"], "leases"),
    rule("get", ["storage.k8s.io"], "volumeattachments"),
    rule("create", CORE, "serviceaccounts/token"),
    rule("get update patch", CORE, "persistentvolumeclaims/status"),
    rule(READ, ["storage.k8s.io"], "csidrivers"),
    rule("get create update patch delete", ["storage.k8s.io"], "csinodes"),
    rule(READ, ["node.k8s.io"], "runtimeclasses"),
  ];
}

const approver = (signer: string) => [rule("approve", ["certificates.k8s.io"], "signers", signer)];

function clusterRoles(): ClusterRole[] {
  return [
    aggregated("admin", `${AGG}admin`),
    clusterRole("cluster-admin", [rule("*", ["*"], "*"), urls("*", "*")]),
    aggregated("edit", `${AGG}edit`, { [`${AGG}admin`]: "true" }),
    clusterRole(
      "system:aggregate-to-admin",
      [
        rule("create", ["authorization.k8s.io"], "localsubjectaccessreviews"),
        rule(READ_WRITE, [RBAC_GROUP], "roles rolebindings"),
      ],
      { [`${AGG}admin`]: "true" },
    ),
    clusterRole(
      "system:aggregate-to-edit",
      [
        rule(
          READ,
          CORE,
          "pods/attach pods/proxy pods/exec pods/portforward secrets services/proxy",
        ),
        rule("impersonate", CORE, "serviceaccounts"),
        rule(WRITE, CORE, "pods pods/attach pods/proxy pods/exec pods/portforward"),
        rule("create", CORE, "pods/eviction"),
        rule(
          WRITE,
          CORE,
          "replicationcontrollers replicationcontrollers/scale serviceaccounts services services/proxy persistentvolumeclaims configmaps secrets events",
        ),
        rule("create", CORE, "serviceaccounts/token"),
        rule(
          WRITE,
          ["apps"],
          "statefulsets statefulsets/scale daemonsets deployments deployments/scale deployments/rollback replicasets replicasets/scale",
        ),
        rule(WRITE, ["autoscaling"], "horizontalpodautoscalers"),
        rule(WRITE, ["batch"], "jobs cronjobs"),
        rule(
          WRITE,
          ["extensions"],
          "daemonsets deployments deployments/scale deployments/rollback ingresses replicasets replicasets/scale replicationcontrollers/scale networkpolicies",
        ),
        rule(WRITE, ["policy"], "poddisruptionbudgets"),
        rule(WRITE, ["networking.k8s.io"], "networkpolicies ingresses"),
        rule(READ_WRITE, ["coordination.k8s.io"], "leases"),
      ],
      { [`${AGG}edit`]: "true" },
    ),
    clusterRole(
      "system:aggregate-to-view",
      [
        rule(
          READ,
          CORE,
          "pods replicationcontrollers replicationcontrollers/scale serviceaccounts services services/status endpoints persistentvolumeclaims persistentvolumeclaims/status configmaps",
        ),
        rule(
          READ,
          CORE,
          "limitranges resourcequotas bindings events pods/status resourcequotas/status namespaces/status replicationcontrollers/status pods/log",
        ),
        rule(READ, CORE, "namespaces"),
        rule(READ, ["discovery.k8s.io"], "endpointslices"),
        rule(
          READ,
          ["apps"],
          "controllerrevisions statefulsets statefulsets/status statefulsets/scale daemonsets daemonsets/status deployments deployments/status deployments/scale replicasets replicasets/status replicasets/scale",
        ),
        rule(READ, ["autoscaling"], "horizontalpodautoscalers horizontalpodautoscalers/status"),
        rule(READ, ["batch"], "jobs cronjobs cronjobs/status jobs/status"),
        rule(
          READ,
          ["extensions"],
          "daemonsets daemonsets/status deployments deployments/scale deployments/status ingresses ingresses/status replicasets replicasets/scale replicasets/status replicationcontrollers/scale networkpolicies",
        ),
        rule(READ, ["policy"], "poddisruptionbudgets poddisruptionbudgets/status"),
        rule(READ, ["networking.k8s.io"], "networkpolicies ingresses ingresses/status"),
      ],
      { [`${AGG}view`]: "true" },
    ),
    clusterRole("system:auth-delegator", [
      rule("create", ["authentication.k8s.io"], "tokenreviews"),
      rule("create", ["authorization.k8s.io"], "subjectaccessreviews"),
    ]),
    clusterRole("system:basic-user", [
      rule("create", ["authorization.k8s.io"], "selfsubjectaccessreviews selfsubjectrulesreviews"),
      rule("create", ["authentication.k8s.io"], "selfsubjectreviews"),
    ]),
    clusterRole("system:certificates.k8s.io:certificatesigningrequests:nodeclient", [
      rule("create", ["certificates.k8s.io"], "certificatesigningrequests/nodeclient"),
    ]),
    clusterRole("system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", [
      rule("create", ["certificates.k8s.io"], "certificatesigningrequests/selfnodeclient"),
    ]),
    clusterRole(
      "system:certificates.k8s.io:kube-apiserver-client-approver",
      approver("kubernetes.io/kube-apiserver-client"),
    ),
    clusterRole(
      "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
      approver("kubernetes.io/kube-apiserver-client-kubelet"),
    ),
    clusterRole(
      "system:certificates.k8s.io:kubelet-serving-approver",
      approver("kubernetes.io/kubelet-serving"),
    ),
    clusterRole(
      "system:certificates.k8s.io:legacy-unknown-approver",
      approver("kubernetes.io/legacy-unknown"),
    ),
    clusterRole("system:discovery", [
      urls(
        "get",
        "/livez /readyz /healthz /version /version/ /openapi /openapi/* /api /api/* /apis /apis/*",
      ),
    ]),
    clusterRole("system:heapster", [
      rule(READ, CORE, "events pods nodes namespaces"),
      rule(READ, ["extensions"], "deployments"),
    ]),
    clusterRole("system:kube-aggregator", [rule(READ, CORE, "services endpoints")]),
    clusterRole("system:kube-controller-manager", [
      eventsRule(),
      rule("create", ["coordination.k8s.io"], "leases"),
      rule("get update", ["coordination.k8s.io"], "leases", "kube-controller-manager"),
      rule("create", CORE, "secrets serviceaccounts"),
      rule("delete", CORE, "secrets"),
      rule("get", CORE, "namespaces secrets serviceaccounts configmaps"),
      rule("update", CORE, "secrets serviceaccounts"),
      rule("create", ["authentication.k8s.io"], "tokenreviews"),
      rule("create", ["authorization.k8s.io"], "subjectaccessreviews"),
      rule("list watch", ["*"], "*"),
      rule("create", CORE, "serviceaccounts/token"),
    ]),
    clusterRole("system:kube-dns", [rule("list watch", CORE, "endpoints services")]),
    clusterRole("system:kube-scheduler", [
      eventsRule(),
      rule("create", ["coordination.k8s.io"], "leases"),
      rule("get update", ["coordination.k8s.io"], "leases", "kube-scheduler"),
      rule(READ, CORE, "nodes"),
      rule("get list watch delete", CORE, "pods"),
      rule("create", CORE, "pods/binding bindings"),
      rule("patch update", CORE, "pods/status"),
      rule(READ, CORE, "replicationcontrollers services"),
      rule(READ, ["apps", "extensions"], "replicasets"),
      rule(READ, ["apps"], "statefulsets"),
      rule(READ, ["policy"], "poddisruptionbudgets"),
      rule(READ, CORE, "persistentvolumeclaims persistentvolumes"),
      rule("create", ["authentication.k8s.io"], "tokenreviews"),
      rule("create", ["authorization.k8s.io"], "subjectaccessreviews"),
      rule(READ, ["storage.k8s.io"], "csinodes"),
      rule(READ, CORE, "namespaces"),
      rule(READ, ["storage.k8s.io"], "csidrivers"),
      rule(READ, ["storage.k8s.io"], "csistoragecapacities"),
    ]),
    clusterRole("system:kubelet-api-admin", [
      rule(READ, CORE, "nodes"),
      rule("proxy", CORE, "nodes"),
      rule("*", CORE, "nodes/proxy nodes/metrics nodes/stats nodes/log"),
    ]),
    clusterRole("system:monitoring", [
      urls("get", "/metrics /metrics/slis /livez /readyz /healthz /livez/* /readyz/* /healthz/*"),
    ]),
    clusterRole("system:node", nodeRules()),
    clusterRole("system:node-bootstrapper", [
      rule("create get list watch", ["certificates.k8s.io"], "certificatesigningrequests"),
    ]),
    clusterRole("system:node-problem-detector", [
      rule("get", CORE, "nodes"),
      rule("patch", CORE, "nodes/status"),
      eventsRule(),
    ]),
    clusterRole("system:node-proxier", [
      rule("list watch", CORE, "services endpoints"),
      rule(READ, CORE, "nodes"),
      eventsRule(),
      rule("list watch", ["discovery.k8s.io"], "endpointslices"),
    ]),
    clusterRole("system:persistent-volume-provisioner", [
      rule("get list watch create delete", CORE, "persistentvolumes"),
      rule("get list watch update", CORE, "persistentvolumeclaims"),
      rule(READ, ["storage.k8s.io"], "storageclasses"),
      rule("watch", CORE, "events"),
      eventsRule(),
    ]),
    clusterRole("system:public-info-viewer", [
      urls("get", "/livez /readyz /healthz /version /version/"),
    ]),
    clusterRole("system:service-account-issuer-discovery", [
      urls("get", "/.well-known/openid-configuration /openid/v1/jwks"),
    ]),
    clusterRole("system:volume-scheduler", [
      rule("get list watch patch update", CORE, "persistentvolumes"),
      rule(READ, ["storage.k8s.io"], "storageclasses"),
      rule("get list watch patch update", CORE, "persistentvolumeclaims"),
    ]),
    aggregated("view", `${AGG}view`, { [`${AGG}edit`]: "true" }),
  ];
}

function clusterRoleBindings(): ClusterRoleBinding[] {
  return [
    clusterBinding("cluster-admin", [group("system:masters")]),
    clusterBinding("system:basic-user", [group("system:authenticated")]),
    clusterBinding("system:discovery", [group("system:authenticated")]),
    clusterBinding("system:kube-controller-manager", [user("system:kube-controller-manager")]),
    clusterBinding("system:kube-dns", [sa("kube-system", "kube-dns")]),
    clusterBinding("system:kube-scheduler", [user("system:kube-scheduler")]),
    clusterBinding("system:monitoring", [group("system:monitoring")]),
    // Kept without subjects since the Node authorizer took over (upstream keeps it this way).
    clusterBinding("system:node", []),
    clusterBinding("system:node-proxier", [user("system:kube-proxy")]),
    clusterBinding("system:public-info-viewer", [
      group("system:authenticated"),
      group("system:unauthenticated"),
    ]),
    clusterBinding("system:service-account-issuer-discovery", [group("system:serviceaccounts")]),
    clusterBinding("system:volume-scheduler", [user("system:kube-scheduler")]),
  ];
}

// ---- controller roles (one per controller, bound to its service account in kube-system) ----

const CONTROLLERS: Record<string, PolicyRule[]> = {
  "attachdetach-controller": [
    rule("list watch", CORE, "persistentvolumes persistentvolumeclaims"),
    rule(READ, CORE, "nodes"),
    rule("patch update", CORE, "nodes/status"),
    rule("list watch", CORE, "pods"),
    eventsRule(),
    rule("get create delete list watch", ["storage.k8s.io"], "volumeattachments"),
    rule(READ, ["storage.k8s.io"], "csidrivers"),
    rule(READ, ["storage.k8s.io"], "csinodes"),
  ],
  "certificate-controller": [
    rule("get list watch delete", ["certificates.k8s.io"], "certificatesigningrequests"),
    rule(
      "update",
      ["certificates.k8s.io"],
      "certificatesigningrequests/status certificatesigningrequests/approval",
    ),
    rule(
      "approve",
      ["certificates.k8s.io"],
      "signers",
      "kubernetes.io/kube-apiserver-client-kubelet",
    ),
    rule(
      "sign",
      ["certificates.k8s.io"],
      "signers",
      "kubernetes.io/kube-apiserver-client kubernetes.io/kube-apiserver-client-kubelet kubernetes.io/kubelet-serving kubernetes.io/legacy-unknown",
    ),
    rule("create", ["authorization.k8s.io"], "subjectaccessreviews"),
    eventsRule(),
  ],
  "clusterrole-aggregation-controller": [
    // Escalate: it writes rules it does not hold itself.
    rule("escalate get list watch update patch", [RBAC_GROUP], "clusterroles"),
  ],
  "cronjob-controller": [
    rule("get list watch update", ["batch"], "cronjobs"),
    rule("get list watch create update delete patch", ["batch"], "jobs"),
    rule("update", ["batch"], "cronjobs/status"),
    rule("update", ["batch"], "cronjobs/finalizers"),
    rule("list watch delete", CORE, "pods"),
    eventsRule(),
  ],
  "daemon-set-controller": [
    rule(READ, ["apps", "extensions"], "daemonsets"),
    rule("update", ["apps", "extensions"], "daemonsets/status"),
    rule("update", ["apps", "extensions"], "daemonsets/finalizers"),
    rule("list watch", CORE, "nodes"),
    rule("list watch create delete patch", CORE, "pods"),
    rule("create", CORE, "pods/binding"),
    rule("get list watch create delete update patch", ["apps"], "controllerrevisions"),
    eventsRule(),
  ],
  "deployment-controller": [
    rule("get list watch update", ["apps", "extensions"], "deployments"),
    rule("update", ["apps", "extensions"], "deployments/status"),
    rule("update", ["apps", "extensions"], "deployments/finalizers"),
    rule("get list watch create update patch delete", ["apps", "extensions"], "replicasets"),
    // Pods are read to check for pods still running before a Recreate rollout.
    rule("get list watch update", CORE, "pods"),
    eventsRule(),
  ],
  "disruption-controller": [
    rule(READ, ["apps", "extensions"], "deployments"),
    rule(READ, ["apps", "extensions"], "replicasets"),
    rule(READ, CORE, "replicationcontrollers"),
    rule(READ, ["policy"], "poddisruptionbudgets"),
    rule(READ, ["apps"], "statefulsets"),
    rule("update", ["policy"], "poddisruptionbudgets/status"),
    rule("patch update", CORE, "pods/status"),
    rule("get", ["*"], "*/scale"),
    eventsRule(),
  ],
  "endpoint-controller": [
    rule(READ, CORE, "services pods"),
    rule("get list watch create update delete", CORE, "endpoints"),
    rule("create", CORE, "endpoints/restricted"),
    eventsRule(),
  ],
  "endpointslice-controller": [
    rule(READ, CORE, "services pods nodes"),
    rule("update", CORE, "services/finalizers"),
    rule("get list watch create update delete", ["discovery.k8s.io"], "endpointslices"),
    eventsRule(),
  ],
  "endpointslicemirroring-controller": [
    rule(READ, CORE, "services endpoints"),
    rule("update", CORE, "services/finalizers"),
    rule("update", CORE, "endpoints/finalizers"),
    rule("get list watch create update delete", ["discovery.k8s.io"], "endpointslices"),
    eventsRule(),
  ],
  "ephemeral-volume-controller": [
    rule(READ, CORE, "pods"),
    rule("update", CORE, "pods/finalizers"),
    rule("get list watch create", CORE, "persistentvolumeclaims"),
    eventsRule(),
  ],
  "expand-controller": [
    rule("get list watch update patch", CORE, "persistentvolumes"),
    rule("update patch", CORE, "persistentvolumeclaims/status"),
    rule(READ, CORE, "persistentvolumeclaims"),
    eventsRule(),
  ],
  "generic-garbage-collector": [
    // Reads and deletes everything with owner references; patches to remove finalizers.
    rule("get list watch patch update delete", ["*"], "*"),
    eventsRule(),
  ],
  "horizontal-pod-autoscaler": [
    rule(READ, ["autoscaling"], "horizontalpodautoscalers"),
    rule("update", ["autoscaling"], "horizontalpodautoscalers/status"),
    rule("get update", ["*"], "*/scale"),
    rule("list watch", CORE, "pods"),
    rule("list watch", ["metrics.k8s.io"], "pods"),
    rule(READ, ["custom.metrics.k8s.io"], "*"),
    rule(READ, ["external.metrics.k8s.io"], "*"),
    eventsRule(),
  ],
  "job-controller": [
    rule("get list watch update patch", ["batch"], "jobs"),
    rule("update", ["batch"], "jobs/status"),
    rule("update", ["batch"], "jobs/finalizers"),
    rule("list watch create delete patch", CORE, "pods"),
    eventsRule(),
  ],
  "legacy-service-account-token-cleaner": [
    rule("get", CORE, "configmaps", "kube-apiserver-legacy-service-account-token-tracking"),
    rule("delete patch", CORE, "secrets"),
  ],
  "namespace-controller": [
    rule("get list watch delete", CORE, "namespaces"),
    rule("update", CORE, "namespaces/finalize namespaces/status"),
    rule("get list watch delete deletecollection", ["*"], "*"),
  ],
  "node-controller": [
    rule("get list update delete patch watch", CORE, "nodes"),
    rule("patch update", CORE, "nodes/status"),
    rule("patch update", CORE, "pods/status"),
    rule("list watch delete get", CORE, "pods"),
    eventsRule(),
  ],
  "persistent-volume-binder": [
    rule("get list watch update create delete", CORE, "persistentvolumes"),
    rule("update", CORE, "persistentvolumes/status"),
    rule("get list watch update", CORE, "persistentvolumeclaims"),
    rule("update", CORE, "persistentvolumeclaims/status"),
    rule("get list watch create delete", CORE, "pods"),
    rule(READ, ["storage.k8s.io"], "storageclasses"),
    rule("list watch", CORE, "nodes"),
    eventsRule(),
    rule("watch", CORE, "events"),
  ],
  "pod-garbage-collector": [
    rule("list watch delete", CORE, "pods"),
    rule(READ, CORE, "nodes"),
    rule("patch", CORE, "pods/status"),
  ],
  "pv-protection-controller": [
    rule("get list watch update", CORE, "persistentvolumes"),
    eventsRule(),
  ],
  "pvc-protection-controller": [
    rule("get list watch update", CORE, "persistentvolumeclaims"),
    rule("update", CORE, "persistentvolumeclaims/status"),
    rule(READ, CORE, "pods"),
    eventsRule(),
  ],
  "replicaset-controller": [
    rule("get list watch update", ["apps", "extensions"], "replicasets"),
    rule("update", ["apps", "extensions"], "replicasets/status"),
    rule("update", ["apps", "extensions"], "replicasets/finalizers"),
    rule("list watch patch create delete", CORE, "pods"),
    eventsRule(),
  ],
  "replication-controller": [
    rule("get list watch update", CORE, "replicationcontrollers"),
    rule("update", CORE, "replicationcontrollers/status"),
    rule("update", CORE, "replicationcontrollers/finalizers"),
    rule("list watch patch create delete", CORE, "pods"),
    eventsRule(),
  ],
  "resourcequota-controller": [
    // Quota counts everything.
    rule("list watch", ["*"], "*"),
    rule("update", CORE, "resourcequotas/status"),
    eventsRule(),
  ],
  "root-ca-cert-publisher": [rule("create update", CORE, "configmaps"), eventsRule()],
  "route-controller": [
    rule("list watch", CORE, "nodes"),
    rule("patch", CORE, "nodes/status"),
    eventsRule(),
  ],
  "service-account-controller": [rule("create", CORE, "serviceaccounts"), eventsRule()],
  "service-controller": [
    rule(READ, CORE, "services"),
    rule("patch update", CORE, "services/status"),
    rule("list watch", CORE, "nodes"),
    eventsRule(),
  ],
  "statefulset-controller": [
    rule("list watch", CORE, "pods"),
    rule(READ, ["apps"], "statefulsets"),
    rule("update", ["apps"], "statefulsets/status"),
    rule("update", ["apps"], "statefulsets/finalizers"),
    rule("get create delete update patch", CORE, "pods"),
    rule("get list watch create delete update patch", ["apps"], "controllerrevisions"),
    rule("get list watch create", CORE, "persistentvolumeclaims"),
    rule("update delete", CORE, "persistentvolumeclaims"),
    rule("update", CORE, "pods/finalizers"),
    eventsRule(),
  ],
  "ttl-after-finished-controller": [rule("get list watch delete", ["batch"], "jobs"), eventsRule()],
  "ttl-controller": [rule("update patch list watch", CORE, "nodes"), eventsRule()],
  "validatingadmissionpolicy-status-controller": [
    rule(READ, ["admissionregistration.k8s.io"], "validatingadmissionpolicies"),
    rule(
      "get patch update",
      ["admissionregistration.k8s.io"],
      "validatingadmissionpolicies/status",
    ),
    eventsRule(),
  ],
};

function controllerRoles(): ClusterRole[] {
  return Object.entries(CONTROLLERS).map(([name, rules]) =>
    clusterRole(CONTROLLER_PREFIX + name, rules),
  );
}

function controllerRoleBindings(): ClusterRoleBinding[] {
  return Object.keys(CONTROLLERS).map((name) =>
    clusterBinding(CONTROLLER_PREFIX + name, [sa("kube-system", name)]),
  );
}

// ---- namespaced roles ----

function role(namespace: string, name: string, rules: PolicyRule[]): Role {
  return { apiVersion: API_VERSION, kind: "Role", metadata: meta(name, namespace), rules };
}

function roleBinding(
  namespace: string,
  name: string,
  roleName: string,
  subjects: Subject[],
): RoleBinding {
  return {
    apiVersion: API_VERSION,
    kind: "RoleBinding",
    metadata: meta(name, namespace),
    roleRef: { apiGroup: RBAC_GROUP, kind: "Role", name: roleName },
    subjects,
  };
}

const leaderLocking = () => [
  rule("create get list update watch", ["coordination.k8s.io"], "leases"),
  rule("create get list update watch", ["coordination.k8s.io"], "leasecandidates"),
];

function namespaceRoles(): Role[] {
  return [
    role("kube-public", "system:controller:bootstrap-signer", [
      rule(READ, CORE, "configmaps"),
      rule("update", CORE, "configmaps", "cluster-info"),
      eventsRule(),
    ]),
    role("kube-system", "extension-apiserver-authentication-reader", [
      rule(READ, CORE, "configmaps", "extension-apiserver-authentication"),
    ]),
    role("kube-system", "system::leader-locking-kube-controller-manager", leaderLocking()),
    role("kube-system", "system::leader-locking-kube-scheduler", leaderLocking()),
    role("kube-system", "system:controller:bootstrap-signer", [rule(READ, CORE, "secrets")]),
    role("kube-system", "system:controller:cloud-provider", [
      rule("create get list watch", CORE, "configmaps"),
    ]),
    role("kube-system", "system:controller:token-cleaner", [
      rule("delete get list watch", CORE, "secrets"),
      eventsRule(),
    ]),
  ];
}

function namespaceRoleBindings(): RoleBinding[] {
  return [
    roleBinding(
      "kube-public",
      "system:controller:bootstrap-signer",
      "system:controller:bootstrap-signer",
      [sa("kube-system", "bootstrap-signer")],
    ),
    roleBinding(
      "kube-system",
      "system::extension-apiserver-authentication-reader",
      "extension-apiserver-authentication-reader",
      [user("system:kube-controller-manager"), user("system:kube-scheduler")],
    ),
    roleBinding(
      "kube-system",
      "system::leader-locking-kube-controller-manager",
      "system::leader-locking-kube-controller-manager",
      [
        user("system:kube-controller-manager"),
        sa("kube-system", "kube-controller-manager"),
        sa("kube-system", "leader-election-controller"),
      ],
    ),
    roleBinding(
      "kube-system",
      "system::leader-locking-kube-scheduler",
      "system::leader-locking-kube-scheduler",
      [user("system:kube-scheduler"), sa("kube-system", "kube-scheduler")],
    ),
    roleBinding(
      "kube-system",
      "system:controller:bootstrap-signer",
      "system:controller:bootstrap-signer",
      [sa("kube-system", "bootstrap-signer")],
    ),
    roleBinding(
      "kube-system",
      "system:controller:cloud-provider",
      "system:controller:cloud-provider",
      [sa("kube-system", "cloud-provider")],
    ),
    roleBinding(
      "kube-system",
      "system:controller:token-cleaner",
      "system:controller:token-cleaner",
      [sa("kube-system", "token-cleaner")],
    ),
  ];
}

/** Everything the API server creates at start; fresh objects on every call. */
export interface BootstrapPolicy {
  clusterRoles: ClusterRole[];
  clusterRoleBindings: ClusterRoleBinding[];
  roles: Role[];
  roleBindings: RoleBinding[];
}

export function bootstrapPolicy(): BootstrapPolicy {
  return {
    clusterRoles: [...clusterRoles(), ...controllerRoles()],
    clusterRoleBindings: [...clusterRoleBindings(), ...controllerRoleBindings()],
    roles: namespaceRoles(),
    roleBindings: namespaceRoleBindings(),
  };
}

// ---- reconciliation (pkg/registry/rbac/reconciliation) ----

export type ReconcileOperation = "none" | "create" | "update" | "recreate";

export interface ReconcileResult<T> {
  operation: ReconcileOperation;
  /** The object to create or to write as the update (the existing one when nothing changes). */
  object: T;
  /** The existing object has `rbac.authorization.kubernetes.io/autoupdate: "false"`: left alone. */
  protected: boolean;
  missingRules?: PolicyRule[];
  missingSubjects?: Subject[];
}

type RoleLike = Role | ClusterRole;
type BindingLike = RoleBinding | ClusterRoleBinding;

function clone<T>(o: T): T {
  return structuredClone(o);
}

/** Expected values over existing ones (upstream's merge of labels and annotations). */
function mergeMaps(
  expected: Record<string, string> | undefined,
  existing: Record<string, string> | undefined,
): Record<string, string> | undefined {
  if (!expected && !existing) return undefined;
  return { ...(existing ?? {}), ...(expected ?? {}) };
}

function sameMap(a?: Record<string, string>, b?: Record<string, string>): boolean {
  const ak = Object.keys(a ?? {});
  if (ak.length !== Object.keys(b ?? {}).length) return false;
  return ak.every((k) => (a ?? {})[k] === (b ?? {})[k]);
}

function mergeMeta<T extends RoleLike | BindingLike>(result: T, expected: T, existing: T): boolean {
  const meta = (result.metadata ??= {});
  let changed = false;
  const ann = mergeMaps(expected.metadata?.annotations, existing.metadata?.annotations);
  if (ann) meta.annotations = ann;
  if (!sameMap(meta.annotations, existing.metadata?.annotations)) changed = true;
  const labels = mergeMaps(expected.metadata?.labels, existing.metadata?.labels);
  if (labels) meta.labels = labels;
  if (!sameMap(meta.labels, existing.metadata?.labels)) changed = true;
  return changed;
}

function isProtected(o: RoleLike | BindingLike): boolean {
  return o.metadata?.annotations?.[AUTOUPDATE_ANNOTATION] === "false";
}

function selectorEquals(a: LabelSelector, b: LabelSelector): boolean {
  return JSON.stringify(normalizeSelector(a)) === JSON.stringify(normalizeSelector(b));
}

function normalizeSelector(s: LabelSelector): unknown {
  const labels = s.matchLabels ?? {};
  return [
    Object.keys(labels)
      .sort()
      .map((k) => [k, labels[k]]),
    (s.matchExpressions ?? []).map((e) => [e.key, e.operator, e.values ?? []]),
  ];
}

/**
 * What to do with a bootstrap Role or ClusterRole given the stored one (undefined: absent), as
 * upstream's reconciliation at start: create it when missing; otherwise add the missing rules
 * and aggregation selectors, merge labels and annotations, keep any extra rules; do nothing to an
 * object annotated autoupdate=false.
 */
export function reconcileRole<T extends RoleLike>(
  expected: T,
  existing: T | undefined,
): ReconcileResult<T> {
  if (!existing) {
    return {
      operation: "create",
      object: clone(expected),
      protected: false,
      missingRules: expected.rules ?? [],
    };
  }
  const result = clone(existing);
  let changed = mergeMeta(result, expected, existing);
  const { missing } = covers(existing.rules ?? [], expected.rules ?? []);
  if (missing.length > 0) {
    result.rules = [...(existing.rules ?? []), ...missing];
    changed = true;
  }
  const expAgg = (expected as ClusterRole).aggregationRule;
  const exAgg = (existing as ClusterRole).aggregationRule;
  if (!expAgg && exAgg) {
    delete (result as ClusterRole).aggregationRule;
    changed = true;
  } else if (expAgg) {
    const have = exAgg?.clusterRoleSelectors ?? [];
    const missingSel = (expAgg.clusterRoleSelectors ?? []).filter(
      (s) => !have.some((h) => selectorEquals(h, s)),
    );
    if (missingSel.length > 0) {
      (result as ClusterRole).aggregationRule = { clusterRoleSelectors: [...have, ...missingSel] };
      changed = true;
    }
  }
  return {
    operation: changed ? "update" : "none",
    object: result,
    protected: isProtected(existing),
    missingRules: missing,
  };
}

function subjectEquals(a: Subject, b: Subject): boolean {
  return (
    a.kind === b.kind &&
    a.name === b.name &&
    (a.namespace ?? "") === (b.namespace ?? "") &&
    (a.apiGroup ?? "") === (b.apiGroup ?? "")
  );
}

/**
 * What to do with a bootstrap binding given the stored one: create it when missing; recreate it
 * when its roleRef differs (a roleRef cannot be updated); otherwise add the missing subjects and
 * merge labels and annotations, keeping extra subjects; nothing for autoupdate=false.
 */
export function reconcileBinding<T extends BindingLike>(
  expected: T,
  existing: T | undefined,
): ReconcileResult<T> {
  if (!existing) {
    return {
      operation: "create",
      object: clone(expected),
      protected: false,
      missingSubjects: expected.subjects ?? [],
    };
  }
  const prot = isProtected(existing);
  const er = expected.roleRef;
  const xr = existing.roleRef;
  if (er.apiGroup !== xr.apiGroup || er.kind !== xr.kind || er.name !== xr.name) {
    return { operation: "recreate", object: clone(expected), protected: prot };
  }
  const result = clone(existing);
  let changed = mergeMeta(result, expected, existing);
  const have = existing.subjects ?? [];
  const missing = (expected.subjects ?? []).filter((s) => !have.some((h) => subjectEquals(h, s)));
  if (missing.length > 0) {
    result.subjects = [...have, ...missing];
    changed = true;
  }
  return {
    operation: changed ? "update" : "none",
    object: result,
    protected: prot,
    missingSubjects: missing,
  };
}

/** Reads the stored objects the bootstrap policy is compared with. */
export interface PolicyReader {
  getClusterRole(name: string): ClusterRole | undefined;
  getClusterRoleBinding(name: string): ClusterRoleBinding | undefined;
  getRole(namespace: string, name: string): Role | undefined;
  getRoleBinding(namespace: string, name: string): RoleBinding | undefined;
}

export type PolicyObject = ClusterRole | ClusterRoleBinding | Role | RoleBinding;

/** One write the API server must make to bring the stored policy up to date. */
export interface PolicyAction {
  operation: "create" | "update" | "recreate";
  object: PolicyObject;
}

/**
 * The writes that reconcile the stored RBAC objects with the bootstrap policy (objects annotated
 * autoupdate=false are skipped). Namespaced objects require their namespace (kube-system,
 * kube-public) to exist; the caller creates those first.
 */
export function reconcileBootstrapPolicy(
  reader: PolicyReader,
  policy = bootstrapPolicy(),
): PolicyAction[] {
  const actions: PolicyAction[] = [];
  const add = (r: ReconcileResult<PolicyObject>) => {
    if (r.operation === "none") return;
    if (r.protected && r.operation !== "create") return;
    actions.push({ operation: r.operation, object: r.object });
  };
  for (const cr of policy.clusterRoles)
    add(reconcileRole(cr, reader.getClusterRole(cr.metadata!.name!)));
  for (const b of policy.clusterRoleBindings) {
    add(reconcileBinding(b, reader.getClusterRoleBinding(b.metadata!.name!)));
  }
  for (const r of policy.roles) {
    add(reconcileRole(r, reader.getRole(r.metadata!.namespace!, r.metadata!.name!)));
  }
  for (const b of policy.roleBindings) {
    add(reconcileBinding(b, reader.getRoleBinding(b.metadata!.namespace!, b.metadata!.name!)));
  }
  return actions;
}
