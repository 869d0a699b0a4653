/**
 * Which objects a node may read because of the pods bound to it, as upstream's node authorizer
 * graph (plugin/pkg/auth/authorizer/node/graph.go) records them:
 *
 *   pod -> node, volumeattachment -> node, resourceslice -> node
 *   secret, configmap, serviceaccount, pvc, resourceclaim -> pod (what the pod references)
 *   pv -> pvc (the PV's claimRef), secret -> pv (secrets the kubelet uses for the volume)
 *
 * The API server feeds a NodeGraph from its watch cache (setPod, deletePod, ...); the Node
 * authorizer asks it through the NodeGraphSource interface. Every check is a few map lookups.
 */
import type {
  PersistentVolume,
  Pod,
  PodSpec,
  Container,
  EphemeralContainer,
} from "kubernetes-types/core/v1.js";
import type { VolumeAttachment } from "kubernetes-types/storage/v1.js";

export type VertexType =
  | "pod"
  | "secret"
  | "configmap"
  | "serviceaccount"
  | "pvc"
  | "pv"
  | "resourceclaim"
  | "volumeattachment"
  | "resourceslice";

/** What the Node authorizer needs to know about the objects related to a node. */
export interface NodeGraphSource {
  /** Whether the object (namespace "" for cluster-scoped ones) leads to the node. */
  hasPathFrom(nodeName: string, type: VertexType, namespace: string, name: string): boolean;
}

/** The annotation that marks a mirror pod (a static pod's image in the API). */
export const MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror";

/** The secrets a pod references (upstream's VisitPodSecretNames). */
export function podSecretNames(spec: PodSpec): Set<string> {
  const out = new Set<string>();
  const add = (n: string | undefined) => {
    if (n) out.add(n);
  };
  for (const s of spec.imagePullSecrets ?? []) add(s.name);
  for (const c of allContainers(spec)) {
    for (const e of c.env ?? []) add(e.valueFrom?.secretKeyRef?.name);
    for (const e of c.envFrom ?? []) add(e.secretRef?.name);
  }
  for (const v of spec.volumes ?? []) {
    add(v.azureFile?.secretName);
    add(v.cephfs?.secretRef?.name);
    add(v.cinder?.secretRef?.name);
    add(v.flexVolume?.secretRef?.name);
    for (const s of v.projected?.sources ?? []) add(s.secret?.name);
    add(v.rbd?.secretRef?.name);
    add(v.secret?.secretName);
    add(v.scaleIO?.secretRef?.name);
    add(v.iscsi?.secretRef?.name);
    add(v.storageos?.secretRef?.name);
    add(v.csi?.nodePublishSecretRef?.name);
  }
  return out;
}

/** The config maps a pod references (upstream's VisitPodConfigmapNames). */
export function podConfigMapNames(spec: PodSpec): Set<string> {
  const out = new Set<string>();
  const add = (n: string | undefined) => {
    if (n) out.add(n);
  };
  for (const c of allContainers(spec)) {
    for (const e of c.env ?? []) add(e.valueFrom?.configMapKeyRef?.name);
    for (const e of c.envFrom ?? []) add(e.configMapRef?.name);
  }
  for (const v of spec.volumes ?? []) {
    for (const s of v.projected?.sources ?? []) add(s.configMap?.name);
    add(v.configMap?.name);
  }
  return out;
}

function allContainers(spec: PodSpec): Array<Container | EphemeralContainer> {
  return [
    ...(spec.initContainers ?? []),
    ...(spec.containers ?? []),
    ...(spec.ephemeralContainers ?? []),
  ];
}

/** `namespace/name` pairs of the secrets the kubelet uses to mount a PV (VisitPVSecretNames). */
export function pvSecretRefs(pv: PersistentVolume): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const claimNs = pv.spec?.claimRef?.namespace ?? "";
  const add = (ref: { name?: string; namespace?: string } | undefined) => {
    if (ref?.name) out.push([ref.namespace || claimNs, ref.name]);
  };
  const s = pv.spec ?? {};
  if (s.azureFile?.secretName)
    out.push([s.azureFile.secretNamespace ?? claimNs, s.azureFile.secretName]);
  add(s.cephfs?.secretRef);
  add(s.cinder?.secretRef);
  add(s.flexVolume?.secretRef);
  add(s.rbd?.secretRef);
  add(s.scaleIO?.secretRef);
  add(s.iscsi?.secretRef);
  add(s.storageos?.secretRef);
  // Controller-side secrets (controllerPublish, controllerExpand) are not the kubelet's.
  add(s.csi?.nodeStageSecretRef);
  add(s.csi?.nodePublishSecretRef);
  add(s.csi?.nodeExpandSecretRef);
  return out;
}

/** The objects a bound pod gives its node access to, as vertex keys. */
function podReferences(pod: Pod): string[] {
  const ns = pod.metadata?.namespace ?? "";
  const spec = pod.spec ?? { containers: [] };
  const refs: string[] = [];
  if (spec.serviceAccountName) refs.push(key("serviceaccount", ns, spec.serviceAccountName));
  for (const s of podSecretNames(spec)) refs.push(key("secret", ns, s));
  for (const c of podConfigMapNames(spec)) refs.push(key("configmap", ns, c));
  for (const v of spec.volumes ?? []) {
    let claim = "";
    if (v.persistentVolumeClaim) claim = v.persistentVolumeClaim.claimName;
    else if (v.ephemeral) claim = `${pod.metadata?.name ?? ""}-${v.name}`;
    if (claim) refs.push(key("pvc", ns, claim));
  }
  const claims = new Set<string>();
  for (const c of spec.resourceClaims ?? []) {
    const named = (c as { resourceClaimName?: string }).resourceClaimName;
    if (named) claims.add(named);
  }
  const statuses = (pod.status as { resourceClaimStatuses?: Array<{ resourceClaimName?: string }> })
    ?.resourceClaimStatuses;
  for (const s of statuses ?? []) if (s.resourceClaimName) claims.add(s.resourceClaimName);
  for (const c of claims) refs.push(key("resourceclaim", ns, c));
  return refs;
}

function key(type: VertexType, namespace: string, name: string): string {
  return `${type}/${namespace}/${name}`;
}

/** A multiset of node names. */
type NodeCounts = Map<string, number>;

/**
 * The relationships between nodes and the objects their pods use, kept current by the caller.
 * Pods count only once bound to a node (spec.nodeName); mirror pods lead to their node but give
 * it nothing else, so that a node can never grant itself access by creating a pod.
 */
export class NodeGraph implements NodeGraphSource {
  private readonly pods = new Map<string, { node: string; refs: string[] }>();
  private readonly refs = new Map<string, NodeCounts>();
  private readonly pvClaim = new Map<string, string>();
  private readonly pvSecrets = new Map<string, string[]>();
  private readonly secretPVs = new Map<string, Set<string>>();
  private readonly vaNode = new Map<string, string>();
  private readonly sliceNode = new Map<string, string>();

  /** Adds or updates a pod; a pod without spec.nodeName is not (or no longer) in the graph. */
  setPod(pod: Pod): void {
    const ns = pod.metadata?.namespace ?? "";
    const name = pod.metadata?.name ?? "";
    this.deletePod(ns, name);
    const node = pod.spec?.nodeName;
    if (!node) return;
    const mirror = pod.metadata?.annotations?.[MIRROR_POD_ANNOTATION] !== undefined;
    const refs = mirror ? [] : podReferences(pod);
    for (const r of refs) {
      let counts = this.refs.get(r);
      if (!counts) this.refs.set(r, (counts = new Map()));
      counts.set(node, (counts.get(node) ?? 0) + 1);
    }
    this.pods.set(`${ns}/${name}`, { node, refs });
  }

  deletePod(namespace: string, name: string): void {
    const k = `${namespace}/${name}`;
    const old = this.pods.get(k);
    if (!old) return;
    this.pods.delete(k);
    for (const r of old.refs) {
      const counts = this.refs.get(r);
      if (!counts) continue;
      const n = (counts.get(old.node) ?? 0) - 1;
      if (n > 0) counts.set(old.node, n);
      else counts.delete(old.node);
      if (counts.size === 0) this.refs.delete(r);
    }
  }

  /** Adds or updates a PV: its claimRef and the secrets the kubelet needs to mount it. */
  setPersistentVolume(pv: PersistentVolume): void {
    const name = pv.metadata?.name ?? "";
    this.deletePersistentVolume(name);
    const claim = pv.spec?.claimRef;
    if (!claim?.name) return;
    this.pvClaim.set(name, key("pvc", claim.namespace ?? "", claim.name));
    const secrets = pvSecretRefs(pv).map(([ns, n]) => key("secret", ns, n));
    this.pvSecrets.set(name, secrets);
    for (const s of secrets) {
      let pvs = this.secretPVs.get(s);
      if (!pvs) this.secretPVs.set(s, (pvs = new Set()));
      pvs.add(name);
    }
  }

  deletePersistentVolume(name: string): void {
    this.pvClaim.delete(name);
    for (const s of this.pvSecrets.get(name) ?? []) {
      const pvs = this.secretPVs.get(s);
      pvs?.delete(name);
      if (pvs?.size === 0) this.secretPVs.delete(s);
    }
    this.pvSecrets.delete(name);
  }

  setVolumeAttachment(va: VolumeAttachment): void {
    const name = va.metadata?.name ?? "";
    if (va.spec?.nodeName) this.vaNode.set(name, va.spec.nodeName);
    else this.vaNode.delete(name);
  }

  deleteVolumeAttachment(name: string): void {
    this.vaNode.delete(name);
  }

  /** A ResourceSlice (resource.k8s.io) published for one node. */
  setResourceSlice(slice: { metadata?: { name?: string }; spec?: { nodeName?: string } }): void {
    const name = slice.metadata?.name ?? "";
    if (slice.spec?.nodeName) this.sliceNode.set(name, slice.spec.nodeName);
    else this.sliceNode.delete(name);
  }

  deleteResourceSlice(name: string): void {
    this.sliceNode.delete(name);
  }

  private pvLeadsTo(pv: string, node: string): boolean {
    const claim = this.pvClaim.get(pv);
    return claim !== undefined && (this.refs.get(claim)?.has(node) ?? false);
  }

  hasPathFrom(nodeName: string, type: VertexType, namespace: string, name: string): boolean {
    switch (type) {
      case "pod":
        return this.pods.get(`${namespace}/${name}`)?.node === nodeName;
      case "pv":
        return this.pvLeadsTo(name, nodeName);
      case "volumeattachment":
        return this.vaNode.get(name) === nodeName;
      case "resourceslice":
        return this.sliceNode.get(name) === nodeName;
      case "secret": {
        const k = key(type, namespace, name);
        if (this.refs.get(k)?.has(nodeName)) return true;
        for (const pv of this.secretPVs.get(k) ?? []) if (this.pvLeadsTo(pv, nodeName)) return true;
        return false;
      }
      default:
        return this.refs.get(key(type, namespace, name))?.has(nodeName) ?? false;
    }
  }
}
