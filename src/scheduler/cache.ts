/**
 * The scheduler's cache of nodes and the pods on them, assumed pods included (pods the scheduler
 * has placed but whose binding the API has not yet confirmed), and the Snapshot a scheduling cycle
 * reads. As upstream's cache does, NodeInfos sit in a list ordered by last change so that a
 * snapshot refresh copies only the nodes changed since the previous one; the snapshot's node order
 * interleaves zones (upstream's nodeTree) so that sampling spreads across zones.
 *
 * Not safe for concurrent use: call it from one place between scheduling cycles.
 */
import type {
  Namespace,
  Node,
  PersistentVolumeClaim,
  Pod,
  ReplicationController,
  Service,
} from "kubernetes-types/core/v1.js";
import type { ReplicaSet, StatefulSet } from "kubernetes-types/apps/v1.js";
import type { PodDisruptionBudget } from "kubernetes-types/policy/v1.js";
import type { SharedLister } from "./interface.js";
import { Selector, type Labels } from "./selectors.js";
import { NodeInfo, PodInfo, podKey, type ImageStateSummary } from "./types.js";

// ---- node tree ----

/** The zone key of a node: region and zone labels (GA names first, then the beta ones). */
export function zoneKey(node: Node): string {
  const l = node.metadata?.labels;
  if (!l) return "";
  const zone =
    l["topology.kubernetes.io/zone"] ?? l["failure-domain.beta.kubernetes.io/zone"] ?? "";
  const region =
    l["topology.kubernetes.io/region"] ?? l["failure-domain.beta.kubernetes.io/region"] ?? "";
  if (region === "" && zone === "") return "";
  return `${region}:\x00:${zone}`;
}

/** Node names per zone; list() takes one node of each zone in turn. */
export class NodeTree {
  private readonly tree = new Map<string, string[]>();
  private readonly zones: string[] = [];
  numNodes = 0;

  add(node: Node): void {
    const zone = zoneKey(node);
    const name = node.metadata?.name ?? "";
    let names = this.tree.get(zone);
    if (names) {
      if (names.includes(name)) return;
      names.push(name);
    } else {
      this.zones.push(zone);
      this.tree.set(zone, (names = [name]));
    }
    this.numNodes++;
  }

  remove(node: Node): boolean {
    const zone = zoneKey(node);
    const name = node.metadata?.name ?? "";
    const names = this.tree.get(zone);
    if (!names) return false;
    const i = names.indexOf(name);
    if (i < 0) return false;
    names.splice(i, 1);
    if (names.length === 0) {
      this.tree.delete(zone);
      this.zones.splice(this.zones.indexOf(zone), 1);
    }
    this.numNodes--;
    return true;
  }

  update(oldNode: Node | undefined, newNode: Node): void {
    if (oldNode) {
      if (zoneKey(oldNode) === zoneKey(newNode)) return;
      this.remove(oldNode);
    }
    this.add(newNode);
  }

  list(): string[] {
    const out: string[] = [];
    if (this.zones.length === 0) return out;
    const lists = this.zones.map((z) => this.tree.get(z)!);
    for (let idx = 0; out.length < this.numNodes; idx++) {
      for (const names of lists) if (idx < names.length) out.push(names[idx]!);
    }
    return out;
  }
}

// ---- snapshot ----

/** The cluster objects other than nodes and pods that plugins read. */
export class ClusterObjects {
  readonly namespaces = new Map<string, Labels>();
  readonly pvcs = new Map<string, PersistentVolumeClaim>();
  readonly pdbs = new Map<string, PodDisruptionBudget>();
  readonly services = new Map<string, Service>();
  readonly replicaSets = new Map<string, ReplicaSet>();
  readonly statefulSets = new Map<string, StatefulSet>();
  readonly replicationControllers = new Map<string, ReplicationController>();
}

const objKey = (o: { metadata?: { namespace?: string; name?: string } }): string =>
  `${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;

/** What one scheduling cycle sees. Refreshed in place by Cache.updateSnapshot between cycles. */
export class Snapshot implements SharedLister {
  readonly nodeInfoMap = new Map<string, NodeInfo>();
  nodeInfoList: NodeInfo[] = [];
  havePodsWithAffinity: NodeInfo[] = [];
  havePodsWithRequiredAntiAffinity: NodeInfo[] = [];
  usedPVCSet = new Set<string>();
  generation = 0;
  objects: ClusterObjects = new ClusterObjects();

  /** A snapshot of these nodes and pods, in the given node order (for tests and one-off use). */
  static from(nodes: Node[], pods: Pod[] = [], objects?: ClusterObjects): Snapshot {
    const s = new Snapshot();
    if (objects) s.objects = objects;
    for (const n of nodes) {
      const ni = new NodeInfo();
      ni.setNode(n);
      s.nodeInfoMap.set(ni.name, ni);
      s.nodeInfoList.push(ni);
    }
    for (const p of pods) {
      const name = p.spec?.nodeName;
      if (name) s.nodeInfoMap.get(name)?.addPod(p);
    }
    const images = new Map<string, ImageStateSummary & { nodes: Set<string> }>();
    for (const n of nodes) {
      const ni = s.nodeInfoMap.get(n.metadata?.name ?? "")!;
      addImageStates(images, n, ni);
    }
    s.rebuildLists();
    return s;
  }

  rebuildLists(): void {
    this.havePodsWithAffinity = [];
    this.havePodsWithRequiredAntiAffinity = [];
    this.usedPVCSet = new Set();
    // Every node: read through the counts the NodeInfo keeps (see NodeInfo.podCount).
    for (const ni of this.nodeInfoList) {
      if (ni.withAffinity > 0) this.havePodsWithAffinity.push(ni);
      if (ni.withRequiredAntiAffinity > 0) this.havePodsWithRequiredAntiAffinity.push(ni);
      if (ni.pvcCount > 0) for (const k of ni.pvcRefCounts.keys()) this.usedPVCSet.add(k);
    }
  }

  list(): readonly NodeInfo[] {
    return this.nodeInfoList;
  }
  get(nodeName: string): NodeInfo | undefined {
    return this.nodeInfoMap.get(nodeName);
  }
  numNodes(): number {
    return this.nodeInfoList.length;
  }
  havePodsWithAffinityList(): readonly NodeInfo[] {
    return this.havePodsWithAffinity;
  }
  havePodsWithRequiredAntiAffinityList(): readonly NodeInfo[] {
    return this.havePodsWithRequiredAntiAffinity;
  }
  isPVCUsedByPods(key: string): boolean {
    return this.usedPVCSet.has(key);
  }
  namespaceLabels(namespace: string): Labels | undefined {
    return this.objects.namespaces.get(namespace);
  }
  namespacesMatching(selector: Selector): string[] {
    const out: string[] = [];
    for (const [name, labels] of this.objects.namespaces)
      if (selector.matches(labels)) out.push(name);
    return out;
  }
  pvc(namespace: string, name: string): PersistentVolumeClaim | undefined {
    return this.objects.pvcs.get(`${namespace}/${name}`);
  }
  pdbs(): readonly PodDisruptionBudget[] {
    return [...this.objects.pdbs.values()];
  }

  defaultSelector(pod: Pod): Selector {
    const ns = pod.metadata?.namespace ?? "";
    const podLabels = pod.metadata?.labels;
    const set: Labels = {};
    for (const svc of this.objects.services.values()) {
      if ((svc.metadata?.namespace ?? "") !== ns) continue;
      const sel = svc.spec?.selector;
      if (sel == null) continue;
      if (!Selector.fromSet(sel).matches(podLabels)) continue;
      Object.assign(set, sel);
    }
    let selector = Selector.fromSet(set);
    const owner = (pod.metadata?.ownerReferences ?? []).find((r) => r.controller === true);
    if (!owner) return selector;
    const group = owner.apiVersion.includes("/") ? owner.apiVersion.split("/")[0] : "";
    const key = `${ns}/${owner.name}`;
    if (group === "" && owner.kind === "ReplicationController") {
      const rc = this.objects.replicationControllers.get(key);
      if (rc) selector = Selector.fromSet({ ...set, ...(rc.spec?.selector ?? {}) });
    } else if (group === "apps" && (owner.kind === "ReplicaSet" || owner.kind === "StatefulSet")) {
      const o =
        owner.kind === "ReplicaSet"
          ? this.objects.replicaSets.get(key)
          : this.objects.statefulSets.get(key);
      if (o) {
        try {
          selector = selector.and(Selector.fromLabelSelector(o.spec?.selector));
        } catch {
          // An invalid selector adds nothing, as upstream ignores the parse error.
        }
      }
    }
    return selector;
  }
}

function addImageStates(
  images: Map<string, ImageStateSummary & { nodes: Set<string> }>,
  node: Node,
  ni: NodeInfo,
): void {
  const name = node.metadata?.name ?? "";
  const sum = new Map<string, ImageStateSummary>();
  for (const image of node.status?.images ?? []) {
    for (const imageName of image.names ?? []) {
      let state = images.get(imageName);
      if (!state) {
        state = { size: image.sizeBytes ?? 0, numNodes: 0, nodes: new Set() };
        images.set(imageName, state);
      }
      state.nodes.add(name);
      state.numNodes = state.nodes.size;
      if (!sum.has(imageName)) sum.set(imageName, state);
    }
  }
  ni.imageStates = sum;
}

function removeImageStates(
  images: Map<string, ImageStateSummary & { nodes: Set<string> }>,
  node: Node,
): void {
  const name = node.metadata?.name ?? "";
  for (const image of node.status?.images ?? []) {
    for (const imageName of image.names ?? []) {
      const state = images.get(imageName);
      if (!state) continue;
      state.nodes.delete(name);
      state.numNodes = state.nodes.size;
      if (state.nodes.size === 0) images.delete(imageName);
    }
  }
}

// ---- cache ----

interface Item {
  info: NodeInfo;
  next: Item | null;
  prev: Item | null;
}

interface PodState {
  pod: Pod;
  bindingFinished: boolean;
}

export class CacheError extends Error {}

export class Cache {
  private readonly nodes = new Map<string, Item>();
  private head: Item | null = null;
  private readonly tree = new NodeTree();
  private treeChanged = false;
  private readonly podStates = new Map<string, PodState>();
  private readonly assumedPods = new Set<string>();
  private readonly images = new Map<string, ImageStateSummary & { nodes: Set<string> }>();
  readonly objects = new ClusterObjects();

  // ---- nodes ----

  addNode(node: Node): NodeInfo {
    const name = node.metadata?.name ?? "";
    let item = this.nodes.get(name);
    if (!item) {
      item = { info: new NodeInfo(), next: null, prev: null };
      this.nodes.set(name, item);
    } else if (item.info.node) {
      removeImageStates(this.images, item.info.node);
    }
    this.moveToHead(item);
    this.tree.add(node);
    this.treeChanged = true;
    addImageStates(this.images, node, item.info);
    item.info.setNode(node);
    return item.info;
  }

  updateNode(oldNode: Node | undefined, newNode: Node): NodeInfo {
    const name = newNode.metadata?.name ?? "";
    let item = this.nodes.get(name);
    if (!item) {
      item = { info: new NodeInfo(), next: null, prev: null };
      this.nodes.set(name, item);
      this.tree.add(newNode);
      this.treeChanged = true;
    } else {
      const prev = item.info.node ?? oldNode;
      if (prev) removeImageStates(this.images, prev);
      if (item.info.node) this.tree.update(item.info.node, newNode);
      else this.tree.add(newNode);
      this.treeChanged = true;
    }
    this.moveToHead(item);
    addImageStates(this.images, newNode, item.info);
    item.info.setNode(newNode);
    return item.info;
  }

  /**
   * Removes a node. Its NodeInfo stays (without a node) while pods still point at it, so that
   * their deletion events find them.
   */
  removeNode(node: Node): void {
    const name = node.metadata?.name ?? "";
    const item = this.nodes.get(name);
    if (!item) throw new CacheError(`node ${name} is not found`);
    const stored = item.info.node ?? node;
    item.info.removeNode();
    if (item.info.pods.length === 0) this.unlink(item, name);
    else this.moveToHead(item);
    this.tree.remove(stored);
    this.treeChanged = true;
    removeImageStates(this.images, stored);
  }

  nodeCount(): number {
    return this.tree.numNodes;
  }

  /** The cache's own NodeInfo of a node (not a snapshot copy). */
  nodeInfo(name: string): NodeInfo | undefined {
    return this.nodes.get(name)?.info;
  }

  // ---- pods ----

  /** Places a pod the scheduler chose a node for, before its binding is confirmed. */
  assumePod(pod: Pod): void {
    const key = podKey(pod);
    if (this.podStates.has(key)) {
      throw new CacheError(`pod ${key}(${podRef(pod)}) is in the cache, so can't be assumed`);
    }
    this.add(pod, true);
  }

  /** The binding request for an assumed pod returned (upstream starts the expiry clock here). */
  finishBinding(pod: Pod): void {
    const st = this.podStates.get(podKey(pod));
    if (st && this.assumedPods.has(podKey(pod))) st.bindingFinished = true;
  }

  /** Undoes assumePod after a failed binding. */
  forgetPod(pod: Pod): void {
    const key = podKey(pod);
    const st = this.podStates.get(key);
    if (st && st.pod.spec?.nodeName !== pod.spec?.nodeName) {
      throw new CacheError(
        `pod ${key}(${podRef(pod)}) was assumed on ${pod.spec?.nodeName} but assigned to ${st.pod.spec?.nodeName}`,
      );
    }
    if (st && this.assumedPods.has(key)) {
      this.remove(st.pod);
      return;
    }
    throw new CacheError(`pod ${key}(${podRef(pod)}) wasn't assumed so cannot be forgotten`);
  }

  /** A pod bound to a node appeared in the API (confirms an assumed pod). */
  addPod(pod: Pod): void {
    const key = podKey(pod);
    const st = this.podStates.get(key);
    if (st && this.assumedPods.has(key)) {
      this.remove(st.pod);
      this.add(pod, false);
    } else if (!st) {
      this.add(pod, false);
    } else {
      throw new CacheError(`pod ${key}(${podRef(pod)}) was already in added state`);
    }
  }

  updatePod(oldPod: Pod, newPod: Pod): void {
    const key = podKey(oldPod);
    const st = this.podStates.get(key);
    if (!st || this.assumedPods.has(key)) {
      throw new CacheError(
        `pod ${key}(${podRef(oldPod)}) is not added to scheduler cache, so cannot be updated`,
      );
    }
    this.remove(st.pod);
    this.add(newPod, false);
  }

  removePod(pod: Pod): void {
    const key = podKey(pod);
    const st = this.podStates.get(key);
    if (!st)
      throw new CacheError(
        `pod ${key}(${podRef(pod)}) is not found in scheduler cache, so cannot be removed from it`,
      );
    this.remove(st.pod);
  }

  isAssumedPod(pod: Pod): boolean {
    return this.assumedPods.has(podKey(pod));
  }

  /** The cached version of a pod. */
  getPod(pod: Pod): Pod | undefined {
    return this.podStates.get(podKey(pod))?.pod;
  }

  podCount(): number {
    return this.podStates.size;
  }

  private add(pod: Pod, assumed: boolean): void {
    const key = podKey(pod);
    const nodeName = pod.spec?.nodeName ?? "";
    let item = this.nodes.get(nodeName);
    if (!item) {
      item = { info: new NodeInfo(), next: null, prev: null };
      item.info.name = nodeName;
      this.nodes.set(nodeName, item);
    }
    item.info.addPodInfo(new PodInfo(pod));
    this.moveToHead(item);
    this.podStates.set(key, { pod, bindingFinished: false });
    if (assumed) this.assumedPods.add(key);
  }

  private remove(pod: Pod): void {
    const key = podKey(pod);
    const nodeName = pod.spec?.nodeName ?? "";
    const item = this.nodes.get(nodeName);
    if (item) {
      item.info.removePod(key);
      if (item.info.pods.length === 0 && item.info.node === null) this.unlink(item, nodeName);
      else this.moveToHead(item);
    }
    this.podStates.delete(key);
    this.assumedPods.delete(key);
  }

  // ---- other objects ----

  setNamespace(ns: Namespace): void {
    this.objects.namespaces.set(ns.metadata?.name ?? "", ns.metadata?.labels ?? {});
  }
  deleteNamespace(ns: Namespace): void {
    this.objects.namespaces.delete(ns.metadata?.name ?? "");
  }
  setPVC(pvc: PersistentVolumeClaim): void {
    this.objects.pvcs.set(objKey(pvc), pvc);
  }
  deletePVC(pvc: PersistentVolumeClaim): void {
    this.objects.pvcs.delete(objKey(pvc));
  }
  setPDB(pdb: PodDisruptionBudget): void {
    this.objects.pdbs.set(objKey(pdb), pdb);
  }
  deletePDB(pdb: PodDisruptionBudget): void {
    this.objects.pdbs.delete(objKey(pdb));
  }
  setService(s: Service): void {
    this.objects.services.set(objKey(s), s);
  }
  deleteService(s: Service): void {
    this.objects.services.delete(objKey(s));
  }
  setReplicaSet(o: ReplicaSet): void {
    this.objects.replicaSets.set(objKey(o), o);
  }
  deleteReplicaSet(o: ReplicaSet): void {
    this.objects.replicaSets.delete(objKey(o));
  }
  setStatefulSet(o: StatefulSet): void {
    this.objects.statefulSets.set(objKey(o), o);
  }
  deleteStatefulSet(o: StatefulSet): void {
    this.objects.statefulSets.delete(objKey(o));
  }
  setReplicationController(o: ReplicationController): void {
    this.objects.replicationControllers.set(objKey(o), o);
  }
  deleteReplicationController(o: ReplicationController): void {
    this.objects.replicationControllers.delete(objKey(o));
  }

  // ---- snapshot ----

  /**
   * Brings `snap` up to date: NodeInfos changed since its generation are copied into it (in
   * place, so that its lists stay valid), and the lists are rebuilt when membership changed.
   */
  updateSnapshot(snap: Snapshot): void {
    snap.objects = this.objects;
    const gen = snap.generation;
    let updateAll = this.treeChanged;
    let updateLists = false;
    for (let item = this.head; item !== null; item = item.next) {
      const info = item.info;
      if (info.generation <= gen) break;
      if (info.node === null) continue;
      let existing = snap.nodeInfoMap.get(info.name);
      if (!existing) {
        updateAll = true;
        existing = new NodeInfo();
        snap.nodeInfoMap.set(info.name, existing);
      }
      if (
        existing.podsWithAffinity.length > 0 !== info.podsWithAffinity.length > 0 ||
        existing.podsWithRequiredAntiAffinity.length > 0 !==
          info.podsWithRequiredAntiAffinity.length > 0 ||
        !sameKeys(existing.pvcRefCounts, info.pvcRefCounts)
      ) {
        updateLists = true;
      }
      existing.copyFrom(info);
    }
    if (this.head !== null) snap.generation = this.head.info.generation;
    if (snap.nodeInfoMap.size > this.tree.numNodes) {
      for (const name of [...snap.nodeInfoMap.keys()]) {
        if (!this.nodes.get(name)?.info.node) snap.nodeInfoMap.delete(name);
      }
      updateAll = true;
    }
    if (updateAll) {
      snap.nodeInfoList = [];
      for (const name of this.tree.list()) {
        const ni = snap.nodeInfoMap.get(name);
        if (ni) snap.nodeInfoList.push(ni);
      }
      this.treeChanged = false;
    }
    if (updateAll || updateLists) snap.rebuildLists();
  }

  private moveToHead(item: Item): void {
    if (this.head === item) return;
    if (item.prev) item.prev.next = item.next;
    if (item.next) item.next.prev = item.prev;
    item.prev = null;
    item.next = this.head;
    if (this.head) this.head.prev = item;
    this.head = item;
  }

  private unlink(item: Item, name: string): void {
    if (item.prev) item.prev.next = item.next;
    if (item.next) item.next.prev = item.prev;
    if (this.head === item) this.head = item.next;
    item.prev = item.next = null;
    this.nodes.delete(name);
  }
}

function sameKeys(a: Map<string, number>, b: Map<string, number>): boolean {
  if (a.size !== b.size) return false;
  for (const k of b.keys()) if (!a.has(k)) return false;
  return true;
}

function podRef(pod: Pod): string {
  return `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`;
}
