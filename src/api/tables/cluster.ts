/**
 * Table printers of the networking, rbac, certificates, coordination, storage, scheduling, node
 * and discovery groups.
 */

import type { CertificateSigningRequest } from "kubernetes-types/certificates/v1.js";
import type { Lease } from "kubernetes-types/coordination/v1.js";
import type { EndpointSlice } from "kubernetes-types/discovery/v1.js";
import type { Ingress, IngressClass, NetworkPolicy } from "kubernetes-types/networking/v1.js";
import type { RuntimeClass } from "kubernetes-types/node/v1.js";
import type { ClusterRoleBinding, RoleBinding, Subject } from "kubernetes-types/rbac/v1.js";
import type { PriorityClass } from "kubernetes-types/scheduling/v1.js";
import type {
  CSIDriver,
  CSINode,
  CSIStorageCapacity,
  StorageClass,
  VolumeAttachment,
} from "kubernetes-types/storage/v1.js";
import { humanDuration, translateTimestampSince } from "./format.js";
import {
  ageColumn,
  column,
  formatLabelSelector,
  listWithMore,
  nameColumn,
  table,
  wide,
} from "./cells.js";
import { loadBalancerAddresses } from "./core.js";
import type { TableDef } from "./types.js";

const age = (obj: { metadata?: { creationTimestamp?: string } }, now: Date): string =>
  translateTimestampSince(obj.metadata?.creationTimestamp, now);

/** The first three rule hosts, then " + N more..."; "*" when no rule names a host. */
export function formatIngressHosts(rules: readonly { host?: string }[] | undefined): string {
  const list: string[] = [];
  const max = 3;
  let more = false;
  for (const rule of rules ?? []) {
    if (list.length === max) more = true;
    if (!more && rule.host) list.push(rule.host);
  }
  if (list.length === 0) return "*";
  const text = list.join(",");
  return more ? `${text} + ${(rules?.length ?? 0) - max} more...` : text;
}

const ingress = table<Ingress>(
  [
    nameColumn(),
    column("Class", "string", "Ingress class handling the ingress."),
    column("Hosts", "string", "Hosts the rules match."),
    column("Address", "string", "Load-balancer addresses of the ingress."),
    column("Ports", "string", "Ports the ingress listens on."),
    ageColumn(),
  ],
  (ing, now) => [
    ing.metadata?.name,
    ing.spec?.ingressClassName ?? "<none>",
    formatIngressHosts(ing.spec?.rules),
    loadBalancerAddresses(ing.status?.loadBalancer?.ingress),
    ing.spec?.tls?.length ? "80, 443" : "80",
    age(ing, now),
  ],
);

const ingressClass = table<IngressClass>(
  [
    nameColumn(),
    column("Controller", "string", "Controller implementing the class."),
    column("Parameters", "string", "Resource holding the class's parameters."),
    ageColumn(),
  ],
  (ic, now) => {
    const p = ic.spec?.parameters;
    let parameters = "<none>";
    if (p) parameters = `${p.kind}${p.apiGroup != null ? `.${p.apiGroup}` : ""}/${p.name}`;
    return [ic.metadata?.name, ic.spec?.controller ?? "", parameters, age(ic, now)];
  },
);

const networkPolicy = table<NetworkPolicy>(
  [nameColumn(), column("Pod-Selector", "string", "Pods the policy applies to."), ageColumn()],
  (np, now) => [np.metadata?.name, formatLabelSelector(np.spec?.podSelector ?? {}), age(np, now)],
);

/** Users, groups and service accounts ("namespace/name") of a binding's subjects. */
export function subjectsStrings(subjects: readonly Subject[] | undefined): {
  users: string[];
  groups: string[];
  serviceAccounts: string[];
} {
  const users: string[] = [];
  const groups: string[] = [];
  const serviceAccounts: string[] = [];
  for (const s of subjects ?? []) {
    if (s.kind === "ServiceAccount") serviceAccounts.push(`${s.namespace ?? ""}/${s.name}`);
    else if (s.kind === "User") users.push(s.name);
    else if (s.kind === "Group") groups.push(s.name);
  }
  return { users, groups, serviceAccounts };
}

const bindingTable = (what: string) =>
  table<RoleBinding | ClusterRoleBinding>(
    [
      nameColumn(),
      column("Role", "string", `Role the ${what} grants.`),
      ageColumn(),
      column("Users", "string", `Users in the ${what}.`, wide),
      column("Groups", "string", `Groups in the ${what}.`, wide),
      column("ServiceAccounts", "string", `Service accounts in the ${what}.`, wide),
    ],
    (b, now) => {
      const s = subjectsStrings(b.subjects);
      return [
        b.metadata?.name,
        `${b.roleRef?.kind ?? ""}/${b.roleRef?.name ?? ""}`,
        age(b, now),
        s.users.join(", "),
        s.groups.join(", "),
        s.serviceAccounts.join(", "),
      ];
    },
  );

/** The CONDITION cell of a CSR: Approved/Denied/Pending, then ",Failed" and ",Issued". */
export function csrCondition(csr: CertificateSigningRequest): string {
  let approved = false;
  let denied = false;
  let failed = false;
  for (const c of csr.status?.conditions ?? []) {
    if (c.type === "Approved") approved = true;
    else if (c.type === "Denied") denied = true;
    else if (c.type === "Failed") failed = true;
  }
  let status = denied ? "Denied" : approved ? "Approved" : "Pending";
  if (failed) status += ",Failed";
  if (csr.status?.certificate) status += ",Issued";
  return status;
}

const certificateSigningRequest = table<CertificateSigningRequest>(
  [
    nameColumn(),
    ageColumn(),
    column("SignerName", "string", "Signer asked to sign the certificate."),
    column("Requestor", "string", "User who created the request."),
    column("RequestedDuration", "string", "Validity the requestor asked for."),
    column("Condition", "string", "Approval and issuance state of the request."),
  ],
  (csr, now) => {
    const seconds = csr.spec?.expirationSeconds;
    return [
      csr.metadata?.name,
      age(csr, now),
      csr.spec?.signerName || "<none>",
      csr.spec?.username ?? "",
      seconds == null ? "<none>" : humanDuration(seconds * 1000),
      csrCondition(csr),
    ];
  },
);

const lease = table<Lease>(
  [nameColumn(), column("Holder", "string", "Identity holding the lease."), ageColumn()],
  (l, now) => [l.metadata?.name, l.spec?.holderIdentity ?? "", age(l, now)],
);

const DEFAULT_CLASS_ANNOTATIONS = [
  "storageclass.kubernetes.io/is-default-class",
  "storageclass.beta.kubernetes.io/is-default-class",
];

const storageClass = table<StorageClass>(
  [
    nameColumn(),
    column("Provisioner", "string", "Volume plugin provisioning the volumes."),
    column("ReclaimPolicy", "string", "Reclaim policy of the provisioned volumes."),
    column("VolumeBindingMode", "string", "When volumes are bound to claims."),
    column("AllowVolumeExpansion", "string", "Whether the volumes may be expanded."),
    ageColumn(),
  ],
  (sc, now) => {
    const annotations = sc.metadata?.annotations ?? {};
    const isDefault = DEFAULT_CLASS_ANNOTATIONS.some((a) => annotations[a] === "true");
    return [
      isDefault ? `${sc.metadata?.name} (default)` : sc.metadata?.name,
      sc.provisioner,
      sc.reclaimPolicy ?? "Delete",
      sc.volumeBindingMode ?? "Immediate",
      sc.allowVolumeExpansion ?? false,
      age(sc, now),
    ];
  },
);

const volumeAttachment = table<VolumeAttachment>(
  [
    nameColumn(),
    column("Attacher", "string", "Volume driver doing the attachment.", { format: "name" }),
    column("PV", "string", "Persistent volume being attached."),
    column("Node", "string", "Node the volume is attached to."),
    column("Attached", "boolean", "Whether the volume is attached."),
    ageColumn(),
  ],
  (va, now) => [
    va.metadata?.name,
    va.spec?.attacher ?? "",
    va.spec?.source?.persistentVolumeName ?? "",
    va.spec?.nodeName ?? "",
    va.status?.attached ?? false,
    age(va, now),
  ],
);

const csiNode = table<CSINode>(
  [nameColumn(), column("Drivers", "integer", "Number of CSI drivers on the node."), ageColumn()],
  (n, now) => [n.metadata?.name, n.spec?.drivers?.length ?? 0, age(n, now)],
);

const csiDriver = table<CSIDriver>(
  [
    nameColumn(),
    column("AttachRequired", "boolean", "Whether volumes need an attach operation."),
    column("PodInfoOnMount", "boolean", "Whether mounts receive pod information."),
    column("StorageCapacity", "boolean", "Whether the driver reports storage capacity."),
    column("TokenRequests", "string", "Audiences of the tokens passed to the driver."),
    column("RequiresRepublish", "boolean", "Whether volumes are published periodically."),
    column("Modes", "string", "Volume lifecycle modes the driver supports."),
    ageColumn(),
  ],
  (d, now) => {
    const spec = d.spec;
    const modes = spec?.volumeLifecycleModes?.length ? spec.volumeLifecycleModes : ["Persistent"];
    return [
      d.metadata?.name,
      spec?.attachRequired ?? true,
      spec?.podInfoOnMount ?? false,
      spec?.storageCapacity ?? false,
      spec?.tokenRequests ? spec.tokenRequests.map((t) => t.audience).join(",") : "<unset>",
      spec?.requiresRepublish ?? false,
      modes.join(",") || "<none>",
      age(d, now),
    ];
  },
);

const csiStorageCapacity = table<CSIStorageCapacity>(
  [
    nameColumn(),
    column("StorageClassName", "string", "Storage class the capacity is for."),
    column("Capacity", "string", "Reported capacity."),
  ],
  (c) => [
    c.metadata?.name,
    c.storageClassName,
    c.capacity == null ? "<unset>" : String(c.capacity),
  ],
);

const priorityClass = table<PriorityClass>(
  [
    nameColumn(),
    column("Value", "integer", "Priority of the pods of this class."),
    column("Global-Default", "boolean", "Whether this is the default class."),
    ageColumn(),
    column("PreemptionPolicy", "string", "Whether pods of this class preempt others."),
  ],
  (pc, now) => [
    pc.metadata?.name,
    pc.value,
    pc.globalDefault ?? false,
    age(pc, now),
    pc.preemptionPolicy ?? "PreemptLowerPriority",
  ],
);

const runtimeClass = table<RuntimeClass>(
  [nameColumn(), column("Handler", "string", "Container runtime handler."), ageColumn()],
  (rc, now) => [rc.metadata?.name, rc.handler, age(rc, now)],
);

const endpointSlice = table<EndpointSlice>(
  [
    nameColumn(),
    column("AddressType", "string", "Type of the addresses."),
    column("Ports", "string", "Ports of the endpoints."),
    column("Endpoints", "string", "Addresses of the endpoints."),
    ageColumn(),
  ],
  (es, now) => {
    const max = 3;
    const ports = es.ports ?? [];
    const portList = ports
      .slice(0, max)
      .map((p) => (p.port != null ? String(p.port) : p.name != null ? p.name : "*"));
    const addresses = (es.endpoints ?? []).flatMap((e) => e.addresses);
    return [
      es.metadata?.name,
      es.addressType,
      listWithMore(portList, ports.length, max),
      listWithMore(addresses.slice(0, max), addresses.length, max),
      age(es, now),
    ];
  },
);

export const networkingPrinters: Record<string, TableDef> = {
  Ingress: ingress,
  IngressClass: ingressClass,
  NetworkPolicy: networkPolicy,
};

export const rbacPrinters: Record<string, TableDef> = {
  RoleBinding: bindingTable("role binding"),
  ClusterRoleBinding: bindingTable("cluster role binding"),
};

export const certificatesPrinters: Record<string, TableDef> = {
  CertificateSigningRequest: certificateSigningRequest,
};

export const coordinationPrinters: Record<string, TableDef> = { Lease: lease };

export const storagePrinters: Record<string, TableDef> = {
  StorageClass: storageClass,
  VolumeAttachment: volumeAttachment,
  CSINode: csiNode,
  CSIDriver: csiDriver,
  CSIStorageCapacity: csiStorageCapacity,
};

export const schedulingPrinters: Record<string, TableDef> = { PriorityClass: priorityClass };

export const nodePrinters: Record<string, TableDef> = { RuntimeClass: runtimeClass };

export const discoveryPrinters: Record<string, TableDef> = { EndpointSlice: endpointSlice };
