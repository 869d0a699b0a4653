/**
 * NodeRestriction: what a kubelet (`system:node:<name>` in `system:nodes`) may write is limited to
 * what concerns its own node. It may create, update and delete only its own Node object, never
 * change its taints or config source, and set only the labels a kubelet may set; create only
 * mirror pods bound to itself that reference nothing else in the API; update the status of,
 * delete and evict only pods bound to itself; touch only its own Lease in kube-node-lease, its own
 * CSINode and ResourceSlices; request tokens only for pods bound to itself; and ask for node
 * certificates only in its own name. Upstream 1.32's plugin, with its messages.
 */
import type { Node, Pod } from "kubernetes-types/core/v1.js";
import { NODE_LEASE_NAMESPACE, nodeIdentity } from "../../auth/authorizer/node.js";
import { deepEqual } from "../../strategies/util.js";
import type { KObject } from "../../registry/types.js";
import type { AdmissionAttributes, AdmissionContext, AdmissionPlugin } from "../types.js";
import { parseCSR } from "./certificates.js";
import {
  admissionForbidden,
  asPod,
  MIRROR_POD_ANNOTATION,
  podReferencesConfigMaps,
} from "./util.js";
import { podReferencesSecrets, goQuote } from "./util.js";
import { notFound } from "../../../api/status.js";

/** Label keys a kubelet may set on its Node (k8s.io/kubelet's kubeletLabels). */
const KUBELET_LABELS = new Set([
  "kubernetes.io/hostname",
  "topology.kubernetes.io/zone",
  "topology.kubernetes.io/region",
  "failure-domain.beta.kubernetes.io/zone",
  "failure-domain.beta.kubernetes.io/region",
  "beta.kubernetes.io/instance-type",
  "node.kubernetes.io/instance-type",
  "kubernetes.io/os",
  "kubernetes.io/arch",
  "beta.kubernetes.io/os",
  "beta.kubernetes.io/arch",
]);
/** Label namespaces (and their subdomains) a kubelet may set. */
const KUBELET_LABEL_NAMESPACES = ["kubelet.kubernetes.io", "node.kubernetes.io"];
const NODE_RESTRICTION_NAMESPACE = "node-restriction.kubernetes.io";

const KUBELET_SERVING_SIGNER = "kubernetes.io/kubelet-serving";
const KUBE_APISERVER_CLIENT_KUBELET_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet";

const inNamespace = (ns: string, domain: string) => ns === domain || ns.endsWith(`.${domain}`);

function labelNamespace(key: string): string {
  const i = key.indexOf("/");
  return i < 0 ? "" : key.slice(0, i);
}

export function isKubeletLabel(key: string): boolean {
  if (KUBELET_LABELS.has(key)) return true;
  const ns = labelNamespace(key);
  return KUBELET_LABEL_NAMESPACES.some((d) => inNamespace(ns, d));
}

function isKubernetesLabel(key: string): boolean {
  const ns = labelNamespace(key);
  return inNamespace(ns, "kubernetes.io") || inNamespace(ns, "k8s.io");
}

/** The keys whose values differ between two label maps (added, removed or changed). */
function modifiedLabels(a: Record<string, string>, b: Record<string, string>): Set<string> {
  const out = new Set<string>();
  for (const [k, v] of Object.entries(a)) if (b[k] !== v) out.add(k);
  for (const [k, v] of Object.entries(b)) if (a[k] !== v) out.add(k);
  return out;
}

/** The labels of `modified` a node may not add, remove or change, sorted. */
export function forbiddenLabels(modified: Iterable<string>): string[] {
  const out: string[] = [];
  for (const label of modified) {
    const ns = labelNamespace(label);
    if (inNamespace(ns, NODE_RESTRICTION_NAMESPACE)) out.push(label);
    else if (isKubernetesLabel(label) && !isKubeletLabel(label)) out.push(label);
  }
  return out.sort();
}

/** Finds an existing pod for a check: the stored copy on delete, else the cache, else storage. */
async function existingPod(
  ctx: AdmissionContext,
  namespace: string,
  name: string,
): Promise<Pod | undefined> {
  const pod =
    ctx.get("", "v1", "pods", namespace, name) ??
    (await ctx.fetch("", "v1", "pods", namespace, name));
  return pod ? asPod(pod) : undefined;
}

export const nodeRestriction: AdmissionPlugin = {
  name: "NodeRestriction",
  admit: (a, ctx) => (a.operation === "DELETE" ? undefined : restrict(a, ctx)),
  // Deletes are checked here: the registry asks only the validating half about a delete.
  validate: (a, ctx) => (a.operation === "DELETE" ? restrict(a, ctx) : undefined),
};

async function restrict(a: AdmissionAttributes, ctx: AdmissionContext): Promise<void> {
  if (a.operation === "CONNECT") return;
  const id = nodeIdentity(a.user);
  if (!id.isNode) return;
  const node = id.name;
  if (!node) {
    throw admissionForbidden(a, `could not determine node from user ${goQuote(a.user.username)}`);
  }
  const gr = `${a.group}/${a.resource}`;
  switch (gr) {
    case "/pods":
      switch (a.subresource) {
        case "":
          return admitPod(node, a, ctx);
        case "status":
          return admitPodStatus(node, a);
        case "eviction":
          return admitPodEviction(node, a, ctx);
        default:
          throw admissionForbidden(
            a,
            `unexpected pod subresource ${goQuote(a.subresource)}, only 'status' and 'eviction' are allowed`,
          );
      }
    case "/nodes":
      return admitNode(node, a);
    case "/persistentvolumeclaims":
      if (a.subresource === "status") return admitPVCStatus(node, a);
      throw admissionForbidden(a, "may only update PVC status");
    case "/serviceaccounts":
      return admitServiceAccount(node, a, ctx);
    case "coordination.k8s.io/leases":
      return admitLease(node, a);
    case "storage.k8s.io/csinodes":
      return admitCSINode(node, a);
    case "resource.k8s.io/resourceslices":
      return admitResourceSlice(node, a);
    case "certificates.k8s.io/certificatesigningrequests":
      return admitCSR(node, a);
    default:
      return;
  }
}

async function admitPod(node: string, a: AdmissionAttributes, ctx: AdmissionContext) {
  switch (a.operation) {
    case "CREATE":
      return admitPodCreate(node, a, ctx);
    case "DELETE": {
      const pod = a.oldObject ? asPod(a.oldObject) : await existingPod(ctx, a.namespace, a.name);
      if (!pod) throw notFound({ group: "", resource: "pods" }, a.name);
      if (pod.spec?.nodeName !== node) {
        throw admissionForbidden(
          a,
          `node ${goQuote(node)} can only delete pods with spec.nodeName set to itself`,
        );
      }
      return;
    }
    default:
      throw admissionForbidden(
        a,
        `unexpected operation ${goQuote(a.operation)}, node ${goQuote(node)} can only create and delete mirror pods`,
      );
  }
}

async function admitPodCreate(node: string, a: AdmissionAttributes, ctx: AdmissionContext) {
  const pod = asPod(a.object!);
  const q = goQuote(node);
  if (pod.metadata?.annotations?.[MIRROR_POD_ANNOTATION] === undefined) {
    throw admissionForbidden(
      a,
      `pod does not have ${goQuote(MIRROR_POD_ANNOTATION)} annotation, node ${q} can only create mirror pods`,
    );
  }
  if ((pod.spec?.nodeName ?? "") !== node) {
    throw admissionForbidden(a, `node ${q} can only create pods with spec.nodeName set to itself`);
  }
  const owners = pod.metadata?.ownerReferences ?? [];
  if (owners.length > 1) {
    throw admissionForbidden(
      a,
      `node ${q} can only create pods with a single owner reference set to itself`,
    );
  }
  const owner = owners[0];
  if (!owner) {
    throw admissionForbidden(
      a,
      `node ${q} can only create pods with an owner reference set to itself`,
    );
  }
  if (owner.apiVersion !== "v1" || owner.kind !== "Node" || owner.name !== node) {
    throw admissionForbidden(
      a,
      `node ${q} can only create pods with an owner reference set to itself`,
    );
  }
  if (owner.controller !== true) {
    throw admissionForbidden(
      a,
      `node ${q} can only create pods with a controller owner reference set to itself`,
    );
  }
  if (owner.blockOwnerDeletion === true) {
    throw admissionForbidden(a, `node ${q} must not set blockOwnerDeletion on an owner reference`);
  }
  const nodeObj =
    ctx.get("", "v1", "nodes", "", node) ?? (await ctx.fetch("", "v1", "nodes", "", node));
  if (!nodeObj) throw notFound({ group: "", resource: "nodes" }, node);
  if (owner.uid !== nodeObj.metadata?.uid) {
    throw admissionForbidden(
      a,
      `node ${node} UID mismatch: expected ${owner.uid} got ${nodeObj.metadata?.uid ?? ""}`,
    );
  }
  const spec = pod.spec ?? { containers: [] };
  if (spec.serviceAccountName) {
    throw admissionForbidden(a, `node ${q} can not create pods that reference a service account`);
  }
  if (podReferencesSecrets(spec)) {
    throw admissionForbidden(a, `node ${q} can not create pods that reference secrets`);
  }
  if (podReferencesConfigMaps(spec)) {
    throw admissionForbidden(a, `node ${q} can not create pods that reference configmaps`);
  }
  for (const v of spec.volumes ?? []) {
    if ((v.projected?.sources ?? []).some((s) => s.clusterTrustBundle)) {
      throw admissionForbidden(
        a,
        `node ${q} can not create pods that reference clustertrustbundles`,
      );
    }
  }
  if ((spec.volumes ?? []).some((v) => v.persistentVolumeClaim)) {
    throw admissionForbidden(
      a,
      `node ${q} can not create pods that reference persistentvolumeclaims`,
    );
  }
}

function admitPodStatus(node: string, a: AdmissionAttributes) {
  if (a.operation !== "UPDATE") {
    throw admissionForbidden(a, `unexpected operation ${goQuote(a.operation)}`);
  }
  const old = asPod(a.oldObject!);
  const pod = asPod(a.object!);
  const q = goQuote(node);
  if ((old.spec?.nodeName ?? "") !== node) {
    throw admissionForbidden(
      a,
      `node ${q} can only update pod status for pods with spec.nodeName set to itself`,
    );
  }
  if (!deepEqual(old.metadata?.labels ?? {}, pod.metadata?.labels ?? {})) {
    throw admissionForbidden(a, `node ${q} cannot update labels through pod status`);
  }
  const claims = (p: Pod) =>
    (p.status?.resourceClaimStatuses ?? []).map((s) => [s.name, s.resourceClaimName ?? null]);
  if (!deepEqual(claims(old), claims(pod))) {
    throw admissionForbidden(a, `node ${q} cannot update resource claim statues`);
  }
}

async function admitPodEviction(node: string, a: AdmissionAttributes, ctx: AdmissionContext) {
  if (a.operation !== "CREATE") {
    throw admissionForbidden(a, `unexpected operation ${a.operation}`);
  }
  const name = a.name || a.object?.metadata?.name || "";
  if (!name) throw admissionForbidden(a, "could not determine pod from request data");
  const pod = await existingPod(ctx, a.namespace, name);
  if (!pod) throw notFound({ group: "", resource: "pods" }, name);
  if (pod.spec?.nodeName !== node) {
    throw admissionForbidden(
      a,
      `node ${node} can only evict pods with spec.nodeName set to itself`,
    );
  }
}

function admitPVCStatus(node: string, a: AdmissionAttributes) {
  if (a.operation !== "UPDATE") {
    throw admissionForbidden(a, `unexpected operation ${goQuote(a.operation)}`);
  }
  // Only the capacity, conditions and allocated resources of the status may change.
  const strip = (o: KObject) => {
    const c = JSON.parse(JSON.stringify(o)) as KObject;
    if (c.metadata) {
      delete c.metadata.resourceVersion;
      delete c.metadata.managedFields;
    }
    const status = c.status as Record<string, unknown> | undefined;
    if (status) {
      for (const f of [
        "capacity",
        "conditions",
        "allocatedResourceStatuses",
        "allocatedResources",
      ]) {
        delete status[f];
      }
    }
    return c;
  };
  if (!deepEqual(strip(a.oldObject!), strip(a.object!))) {
    throw admissionForbidden(
      a,
      `node ${goQuote(node)} is not allowed to update fields other than status.quantity and status.conditions`,
    );
  }
}

function admitNode(node: string, a: AdmissionAttributes) {
  const q = goQuote(node);
  if (a.name !== node) {
    throw admissionForbidden(a, `node ${q} is not allowed to modify node ${goQuote(a.name)}`);
  }
  if (a.operation === "CREATE") {
    const obj = a.object as unknown as Node;
    if (obj.spec?.configSource) {
      throw admissionForbidden(
        a,
        `node ${q} is not allowed to create pods with a non-nil configSource`,
      );
    }
    const forbidden = forbiddenLabels(modifiedLabels(obj.metadata?.labels ?? {}, {}));
    if (forbidden.length > 0) {
      throw admissionForbidden(
        a,
        `node ${q} is not allowed to set the following labels: ${forbidden.join(", ")}`,
      );
    }
  }
  if (a.operation === "UPDATE") {
    const obj = a.object as unknown as Node;
    const old = a.oldObject as unknown as Node;
    if (obj.spec?.configSource && !deepEqual(obj.spec.configSource, old.spec?.configSource)) {
      throw admissionForbidden(
        a,
        `node ${q} is not allowed to update configSource to a new non-nil configSource`,
      );
    }
    // Upstream compares semantically: a missing list is the same as an empty one.
    const taints = (n: Node) => (n.spec?.taints?.length ? n.spec.taints : []);
    if (!deepEqual(taints(obj), taints(old))) {
      throw admissionForbidden(a, `node ${q} is not allowed to modify taints`);
    }
    const forbidden = forbiddenLabels(
      modifiedLabels(obj.metadata?.labels ?? {}, old.metadata?.labels ?? {}),
    );
    if (forbidden.length > 0) {
      throw admissionForbidden(a, `is not allowed to modify labels: ${forbidden.join(", ")}`);
    }
  }
}

async function admitServiceAccount(node: string, a: AdmissionAttributes, ctx: AdmissionContext) {
  if (a.operation !== "CREATE" || a.subresource !== "token") return;
  const ref = (a.object?.spec as { boundObjectRef?: Record<string, string> } | undefined)
    ?.boundObjectRef;
  if (!ref || ref.apiVersion !== "v1" || ref.kind !== "Pod" || !ref.name) {
    throw admissionForbidden(a, "node requested token not bound to a pod");
  }
  if (!ref.uid) {
    throw admissionForbidden(a, "node requested token with a pod binding without a uid");
  }
  const pod = await existingPod(ctx, a.namespace, ref.name);
  if (!pod) throw notFound({ group: "", resource: "pods" }, ref.name);
  if (ref.uid !== pod.metadata?.uid) {
    throw admissionForbidden(
      a,
      `the UID in the bound object reference (${ref.uid}) does not match the UID in record. The object might have been deleted and then recreated`,
    );
  }
  if (pod.spec?.nodeName !== node) {
    throw admissionForbidden(
      a,
      "node requested token bound to a pod scheduled on a different node",
    );
  }
}

function admitLease(node: string, a: AdmissionAttributes) {
  if (a.namespace !== NODE_LEASE_NAMESPACE) {
    throw admissionForbidden(
      a,
      `can only access leases in the ${goQuote(NODE_LEASE_NAMESPACE)} system namespace`,
    );
  }
  const name = a.operation === "CREATE" ? (a.object?.metadata?.name ?? "") : a.name;
  if (name !== node) {
    throw admissionForbidden(
      a,
      "can only access node lease with the same name as the requesting node",
    );
  }
}

function admitCSINode(node: string, a: AdmissionAttributes) {
  const name = a.operation === "CREATE" ? (a.object?.metadata?.name ?? "") : a.name;
  if (name !== node) {
    throw admissionForbidden(
      a,
      "can only access CSINode with the same name as the requesting node",
    );
  }
}

function admitResourceSlice(node: string, a: AdmissionAttributes) {
  const nodeName = (o: KObject | undefined) =>
    (o?.spec as { nodeName?: string } | undefined)?.nodeName ?? "";
  if (a.operation === "CREATE" && nodeName(a.object) !== node) {
    throw admissionForbidden(
      a,
      "can only create ResourceSlice with the same NodeName as the requesting node",
    );
  }
  if (a.operation === "DELETE" && nodeName(a.oldObject) !== node) {
    throw admissionForbidden(
      a,
      "can only delete ResourceSlice with the same NodeName as the requesting node",
    );
  }
}

function admitCSR(node: string, a: AdmissionAttributes) {
  if (a.operation !== "CREATE" || a.subresource !== "") return;
  const spec = (a.object?.spec ?? {}) as { signerName?: string; request?: string };
  if (
    spec.signerName !== KUBELET_SERVING_SIGNER &&
    spec.signerName !== KUBE_APISERVER_CLIENT_KUBELET_SIGNER
  ) {
    return;
  }
  let cn: string;
  try {
    cn = parseCSR(spec.request ?? "").commonName;
  } catch (err) {
    throw admissionForbidden(a, `unable to parse csr: ${(err as Error).message}`);
  }
  if (cn !== `system:node:${node}`) {
    throw admissionForbidden(a, `can only create a node CSR with CN=system:node:${node}`);
  }
}
