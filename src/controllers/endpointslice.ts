/**
 * The EndpointSlice controller (upstream's pkg/controller/endpointslice with the reconciler of
 * k8s.io/endpointslice): every Service with a selector has EndpointSlices (`<service>-<random>`,
 * labelled `kubernetes.io/service-name` and managed-by `endpointslice-controller.k8s.io`, owned
 * by the Service) holding one endpoint per selected pod with an IP of the slice's address type,
 * with conditions ready / serving / terminating, the pod's node and zone, and the pod as target.
 * Pods whose named ports resolve to different numbers land in different slices (one group of
 * slices per distinct set of ports); a group is split in slices of at most
 * --max-endpoints-per-slice (100) endpoints.
 *
 * The reconcile is upstream's: endpoints that changed are updated in the slice that holds them,
 * those no longer wanted are removed (a slice left empty is deleted, or recycled for a slice
 * that would otherwise be created), new ones first fill the slices being updated anyway, then
 * the one unchanged slice they fit best, then new slices. A Service with no endpoints keeps one
 * empty placeholder slice. `trafficDistribution: PreferClose` gives ready endpoints a hint for
 * their own zone.
 *
 * The `kubernetes` Service has no selector: its Endpoints and EndpointSlice are the API
 * server's, as upstream.
 *
 * This file also holds what the mirroring controller shares: the EndpointSet keyed as upstream
 * keys endpoints, port grouping keys, and the tracker of the slice generations a controller
 * wrote, which tells a stale cache from a change made by someone else.
 */

import type { Node, Pod, Service } from "kubernetes-types/core/v1.js";
import type { Endpoint, EndpointPort, EndpointSlice } from "kubernetes-types/discovery/v1.js";
import type { ObjectReference } from "kubernetes-types/core/v1.js";
import { hasStatusCause } from "../api/status.js";
import { controller } from "../client/controller.js";
import type { EventHandler } from "../client/informer.js";
import type { Client } from "../client/resources.js";
import {
  BucketRateLimiter,
  ItemExponentialFailureRateLimiter,
  MaxOfRateLimiter,
} from "../client/ratelimit.js";
import type { ControllerContext, ControllerDescriptor } from "./context.js";
import { errorMessage } from "./context.js";
import {
  findPort,
  formatTriggerTime,
  hasSelector,
  isIPv6,
  isServiceIPSet,
  HEADLESS_LABEL,
  LAST_CHANGE_TRIGGER_TIME,
  md5Hex,
  podIPs,
  registerPodHandlers,
  selectedPods,
  shouldPodBeInEndpoints,
  shouldSetHostname,
  sortByHash,
  TriggerTimeTracker,
} from "./endpoints.js";
import { isPodReady, semanticEqual, watchOf } from "./util.js";

export const ENDPOINTSLICE_CONTROLLER_NAME = "endpointslice-controller.k8s.io";
export const LABEL_SERVICE_NAME = "kubernetes.io/service-name";
export const LABEL_MANAGED_BY = "endpointslice.kubernetes.io/managed-by";
export const LABEL_SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror";
export const ZONE_LABEL = "topology.kubernetes.io/zone";
/** --max-endpoints-per-slice's default. */
export const MAX_ENDPOINTS_PER_SLICE = 100;

export type AddressType = "IPv4" | "IPv6";

/** How soon a sync that found its cache behind its own writes runs again (ms). */
export const STALE_RETRY = 100;

// ---------------------------------------------------------------------------------------------
// Shared with the mirroring controller.

function spewPtr(type: string, v: string | number | undefined): string {
  return `(*${type})${v === undefined ? "<nil>" : String(v)}`;
}

/** The go-spew dump of a discovery/v1 EndpointPort value, which upstream sorts ports by. */
export function spewSlicePort(p: EndpointPort): string {
  return `(v1.EndpointPort){Name:${spewPtr("string", p.name)} Protocol:${spewPtr(
    "v1.Protocol",
    p.protocol,
  )} Port:${spewPtr("int32", p.port)} AppProtocol:${spewPtr("string", p.appProtocol)}}`;
}

/**
 * The key of a set of ports (upstream's NewPortMapKey), which also sorts `ports` in place in
 * upstream's order: the order the slice lists them in.
 */
export function portMapKey(ports: EndpointPort[]): string {
  sortByHash(ports, spewSlicePort);
  return md5Hex(ports.map(spewSlicePort).join(" "));
}

/**
 * The identity of an endpoint (upstream's hashEndpoint): its addresses, hostname and target, so
 * that changes of conditions, node or zone update an endpoint in place.
 */
export function endpointKey(ep: Endpoint): string {
  return JSON.stringify([
    [...ep.addresses].sort(),
    ep.hostname ?? "",
    ep.targetRef?.namespace ?? "",
    ep.targetRef?.name ?? "",
  ]);
}

/** Endpoints by identity, in insertion order. */
export class EndpointSet {
  private readonly items = new Map<string, Endpoint>();

  insert(ep: Endpoint): void {
    this.items.set(endpointKey(ep), ep);
  }

  get(ep: Endpoint): Endpoint | undefined {
    return this.items.get(endpointKey(ep));
  }

  delete(ep: Endpoint): void {
    this.items.delete(endpointKey(ep));
  }

  /** Removes and answers one endpoint (the oldest). */
  pop(): Endpoint | undefined {
    for (const [k, ep] of this.items) {
      this.items.delete(k);
      return ep;
    }
    return undefined;
  }

  get size(): number {
    return this.items.size;
  }
}

function refsEqualIgnoringVersion(a?: ObjectReference, b?: ObjectReference): boolean {
  if (!a || !b) return !a && !b;
  const fields = ["kind", "namespace", "name", "uid", "apiVersion", "fieldPath"] as const;
  return fields.every((f) => (a[f] ?? "") === (b[f] ?? ""));
}

/**
 * Whether two endpoints of the same identity are equal in what the identity leaves out (node,
 * zone, conditions, target apart from its resourceVersion): EndpointsEqualBeyondHash.
 */
export function endpointsEqualBeyondHash(a: Endpoint, b: Endpoint): boolean {
  return (
    a.nodeName === b.nodeName &&
    a.zone === b.zone &&
    a.conditions?.ready === b.conditions?.ready &&
    a.conditions?.serving === b.conditions?.serving &&
    a.conditions?.terminating === b.conditions?.terminating &&
    refsEqualIgnoringVersion(a.targetRef, b.targetRef)
  );
}

/**
 * The generations of the slices a controller wrote, by Service (upstream's EndpointSliceTracker).
 * A cache showing an older generation, or missing a slice written, is stale; a deletion the
 * controller did not ask for, or a newer generation, is someone else's change to undo.
 */
export class EndpointSliceTracker {
  private static readonly DELETION_EXPECTED = -1;
  private readonly byService = new Map<string, Map<string, number>>();

  private key(slice: EndpointSlice): string {
    return `${slice.metadata?.namespace ?? ""}/${slice.metadata?.labels?.[LABEL_SERVICE_NAME] ?? ""}`;
  }

  has(slice: EndpointSlice): boolean {
    return this.byService.get(this.key(slice))?.has(slice.metadata?.uid ?? "") ?? false;
  }

  shouldSync(slice: EndpointSlice): boolean {
    const g = this.byService.get(this.key(slice))?.get(slice.metadata?.uid ?? "");
    return g === undefined || (slice.metadata?.generation ?? 0) > g;
  }

  staleSlices(namespace: string, name: string, slices: EndpointSlice[]): boolean {
    const gens = this.byService.get(`${namespace}/${name}`);
    if (!gens) return false;
    const provided = new Set<string>();
    for (const s of slices) {
      const uid = s.metadata?.uid ?? "";
      provided.add(uid);
      const g = gens.get(uid);
      if (
        g !== undefined &&
        (g === EndpointSliceTracker.DELETION_EXPECTED || g > (s.metadata?.generation ?? 0))
      )
        return true;
    }
    for (const [uid, g] of gens)
      if (g !== EndpointSliceTracker.DELETION_EXPECTED && !provided.has(uid)) return true;
    return false;
  }

  private gens(slice: EndpointSlice): Map<string, number> {
    const key = this.key(slice);
    let gens = this.byService.get(key);
    if (!gens) this.byService.set(key, (gens = new Map()));
    return gens;
  }

  update(slice: EndpointSlice): void {
    this.gens(slice).set(slice.metadata?.uid ?? "", slice.metadata?.generation ?? 0);
  }

  expectDeletion(slice: EndpointSlice): void {
    this.gens(slice).set(slice.metadata?.uid ?? "", EndpointSliceTracker.DELETION_EXPECTED);
  }

  /** Forgets a deleted slice; false when its deletion was not expected. */
  handleDeletion(slice: EndpointSlice): boolean {
    const gens = this.byService.get(this.key(slice));
    if (!gens) return true;
    const uid = slice.metadata?.uid ?? "";
    const g = gens.get(uid);
    gens.delete(uid);
    return !(g !== undefined && g !== EndpointSliceTracker.DELETION_EXPECTED);
  }

  deleteService(namespace: string, name: string): void {
    this.byService.delete(`${namespace}/${name}`);
  }
}

/** Sets or clears the trigger time annotation of a slice being written. */
export function setTriggerTime(slice: EndpointSlice, triggerTime: number): void {
  const annotations = { ...slice.metadata?.annotations };
  if (triggerTime) annotations[LAST_CHANGE_TRIGGER_TIME] = formatTriggerTime(triggerTime);
  else delete annotations[LAST_CHANGE_TRIGGER_TIME];
  slice.metadata ??= {};
  if (Object.keys(annotations).length) slice.metadata.annotations = annotations;
  else delete slice.metadata.annotations;
}

/** The slices in a namespace that `managedBy` wrote for the Service `name`. */
export function managedSlices(
  slices: EndpointSlice[],
  name: string,
  managedBy: string,
): EndpointSlice[] {
  return slices.filter(
    (s) =>
      s.metadata?.labels?.[LABEL_SERVICE_NAME] === name &&
      s.metadata?.labels?.[LABEL_MANAGED_BY] === managedBy,
  );
}

/**
 * What both slice controllers do on a slice event (upstream's onEndpointSliceAdd/Update/Delete):
 * resync the service of a slice they manage that they did not write last, of a slice that moved
 * between services or between managers, and of a managed slice deleted by someone else.
 */
export function sliceEventHandler(
  managed: (s: EndpointSlice) => boolean,
  tracker: EndpointSliceTracker,
  queueForSlice: (s: EndpointSlice) => void,
): EventHandler<EndpointSlice> {
  return {
    add: (s) => {
      if (managed(s) && tracker.shouldSync(s)) queueForSlice(s);
    },
    update: (old, s) => {
      if (old.metadata?.labels?.[LABEL_SERVICE_NAME] !== s.metadata?.labels?.[LABEL_SERVICE_NAME]) {
        queueForSlice(s);
        queueForSlice(old);
        return;
      }
      if (managed(old) !== managed(s) || (managed(s) && tracker.shouldSync(s))) queueForSlice(s);
    },
    delete: (s) => {
      if (managed(s) && tracker.has(s) && !tracker.handleDeletion(s)) queueForSlice(s);
    },
  };
}

/** "ns/service" of a slice's service-name label, or undefined without one. */
export function serviceKeyOfSlice(slice: EndpointSlice): string | undefined {
  const name = slice.metadata?.labels?.[LABEL_SERVICE_NAME];
  return name ? `${slice.metadata?.namespace ?? ""}/${name}` : undefined;
}

// ---------------------------------------------------------------------------------------------
// The EndpointSlice controller's core.

/** The endpoint of a pod in a slice of `addressType` (upstream's podToEndpoint). */
export function podToEndpoint(
  pod: Pod,
  node: Node | undefined,
  svc: Service,
  addressType: AddressType,
): Endpoint {
  const serving = isPodReady(pod);
  const terminating = !!pod.metadata?.deletionTimestamp;
  const ready = !!svc.spec?.publishNotReadyAddresses || (serving && !terminating);
  const ep: Endpoint = {
    addresses: podIPs(pod).filter((ip) => isIPv6(ip) === (addressType === "IPv6")),
    conditions: { ready, serving, terminating },
  };
  if (shouldSetHostname(pod, svc)) ep.hostname = pod.spec!.hostname!;
  ep.targetRef = {
    kind: "Pod",
    namespace: pod.metadata?.namespace ?? "",
    name: pod.metadata?.name ?? "",
    uid: pod.metadata?.uid ?? "",
  };
  if (pod.spec?.nodeName) ep.nodeName = pod.spec.nodeName;
  const zone = node?.metadata?.labels?.[ZONE_LABEL];
  if (zone) ep.zone = zone;
  return ep;
}

/** The ports of a pod's endpoint: each Service port the pod resolves (getEndpointPorts). */
export function getEndpointPorts(svc: Service, pod: Pod): EndpointPort[] {
  const ports = svc.spec?.ports ?? [];
  if (ports.length === 0 && svc.spec?.clusterIP === "None") return [];
  const out: EndpointPort[] = [];
  for (const sp of ports) {
    const port = findPort(pod, sp);
    if (port === undefined) continue;
    const ep: EndpointPort = { name: sp.name ?? "", protocol: sp.protocol ?? "TCP", port };
    if (sp.appProtocol !== undefined) ep.appProtocol = sp.appProtocol;
    out.push(ep);
  }
  return out;
}

/** The address types a Service's slices have: its IP families (getAddressTypesForService). */
export function addressTypesForService(svc: Service): AddressType[] {
  const types = new Set<AddressType>();
  for (const f of svc.spec?.ipFamilies ?? []) {
    if (f === "IPv4") types.add("IPv4");
    if (f === "IPv6") types.add("IPv6");
  }
  if (types.size) return [...types];
  if (isServiceIPSet(svc)) return [isIPv6(svc.spec!.clusterIP!) ? "IPv6" : "IPv4"];
  return ["IPv4", "IPv6"];
}

const RESERVED_LABELS = [LABEL_SERVICE_NAME, LABEL_MANAGED_BY, HEADLESS_LABEL];

/**
 * The labels of a Service's slice: the Service's (but the reserved ones), the headless label,
 * service name and managed-by; and whether the slice's own labels differ from the Service's.
 */
export function sliceLabels(
  slice: EndpointSlice,
  svc: Service,
  controllerName: string,
): [Record<string, string>, boolean] {
  const own: Record<string, string> = {};
  for (const [k, v] of Object.entries(slice.metadata?.labels ?? {}))
    if (!RESERVED_LABELS.includes(k)) own[k] = v;
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(svc.metadata?.labels ?? {}))
    if (!RESERVED_LABELS.includes(k)) labels[k] = v;
  const changed = !semanticEqual(own, labels);
  if (!isServiceIPSet(svc)) labels[HEADLESS_LABEL] = "";
  labels[LABEL_SERVICE_NAME] = svc.metadata?.name ?? "";
  labels[LABEL_MANAGED_BY] = controllerName;
  return [labels, changed];
}

/** A new slice of a Service (to be created with a generated name). */
export function newEndpointSlice(
  svc: Service,
  ports: EndpointPort[],
  addressType: AddressType,
  controllerName: string,
): EndpointSlice {
  const slice: EndpointSlice = {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      generateName: `${svc.metadata?.name ?? ""}-`,
      namespace: svc.metadata?.namespace ?? "",
      ownerReferences: [
        {
          apiVersion: "v1",
          kind: "Service",
          name: svc.metadata?.name ?? "",
          uid: svc.metadata?.uid ?? "",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    addressType,
    endpoints: [],
    ports,
  };
  slice.metadata!.labels = sliceLabels(slice, svc, controllerName)[0];
  return slice;
}

export function ownedBy(slice: EndpointSlice, svc: Service): boolean {
  return (slice.metadata?.ownerReferences ?? []).some(
    (o) => o.uid === svc.metadata?.uid && o.kind === "Service" && o.apiVersion === "v1",
  );
}

/** The slice closest to full once `n` endpoints are added, if one has room (getSliceToFill). */
export function sliceToFill(
  slices: EndpointSlice[],
  n: number,
  max: number,
): EndpointSlice | undefined {
  let closestDiff = max;
  let closest: EndpointSlice | undefined;
  for (const s of slices) {
    const diff = max - (n + (s.endpoints?.length ?? 0));
    if (diff >= 0 && diff < closestDiff) {
      closestDiff = diff;
      closest = s;
      if (diff === 0) return closest;
    }
  }
  return closest;
}

export interface SlicePlan {
  toCreate: EndpointSlice[];
  toUpdate: EndpointSlice[];
  toDelete: EndpointSlice[];
}

/** One group of slices sharing a set of ports (upstream's reconcileByPortMapping). */
export function reconcileByPortMapping(
  svc: Service,
  existing: EndpointSlice[],
  desired: EndpointSet,
  ports: EndpointPort[],
  addressType: AddressType,
  max: number,
  controllerName: string,
): SlicePlan {
  const byName = new Map<string, EndpointSlice>();
  const unchanged = new Set<string>();
  const toUpdate = new Set<string>();
  const toDelete = new Set<string>();

  // 1. Remove endpoints no longer wanted, update those that changed, follow Service labels.
  for (const slice of existing) {
    const name = slice.metadata?.name ?? "";
    byName.set(name, slice);
    const kept: Endpoint[] = [];
    let updated = false;
    for (const ep of slice.endpoints ?? []) {
      const want = desired.get(ep);
      if (!want) continue;
      kept.push(want);
      if (!endpointsEqualBeyondHash(want, ep)) updated = true;
      desired.delete(ep);
    }
    const [labels, labelsChanged] = sliceLabels(slice, svc, controllerName);
    const had = slice.endpoints?.length ?? 0;
    if (updated || had !== kept.length) {
      if (kept.length === 0) toDelete.add(name);
      else {
        const copy = structuredClone(slice);
        copy.endpoints = kept;
        copy.metadata!.labels = labels;
        byName.set(name, copy);
        toUpdate.add(name);
      }
    } else if (labelsChanged) {
      const copy = structuredClone(slice);
      copy.metadata!.labels = labels;
      byName.set(name, copy);
      toUpdate.add(name);
    } else unchanged.add(name);
  }

  // 2. Fill the slices being updated anyway, fullest first.
  if (desired.size > 0 && toUpdate.size > 0) {
    const slices = [...toUpdate]
      .map((n) => byName.get(n)!)
      .sort((a, b) => (b.endpoints?.length ?? 0) - (a.endpoints?.length ?? 0));
    for (const s of slices) {
      s.endpoints ??= [];
      while (desired.size > 0 && s.endpoints.length < max) s.endpoints.push(desired.pop()!);
    }
  }

  // 3. The rest goes in the unchanged slice it fits best, else in new slices.
  const toCreate: EndpointSlice[] = [];
  while (desired.size > 0) {
    let fill: EndpointSlice | undefined;
    if (desired.size < max && unchanged.size > 0)
      fill = sliceToFill(
        [...unchanged].map((n) => byName.get(n)!),
        desired.size,
        max,
      );
    if (!fill) fill = newEndpointSlice(svc, structuredClone(ports), addressType, controllerName);
    else {
      fill = structuredClone(fill);
      byName.set(fill.metadata!.name!, fill);
    }
    fill.endpoints ??= [];
    while (desired.size > 0 && fill.endpoints.length < max) fill.endpoints.push(desired.pop()!);
    const name = fill.metadata?.name;
    if (name) {
      toUpdate.add(name);
      unchanged.delete(name);
    } else toCreate.push(fill);
  }
  return {
    toCreate,
    toUpdate: [...toUpdate].map((n) => byName.get(n)!),
    toDelete: [...toDelete].map((n) => byName.get(n)!),
  };
}

function hintsEnabled(annotations: Record<string, string> | undefined): boolean {
  const v =
    annotations?.["service.kubernetes.io/topology-aware-hints"] ??
    annotations?.["service.kubernetes.io/topology-mode"];
  return v === "Auto" || v === "auto";
}

function hasHints(slice: EndpointSlice): boolean {
  return (slice.endpoints ?? []).some((e) => e.hints !== undefined);
}

/** Whether a slice's hints differ from what PreferClose gives it (a hint for the own zone). */
function preferCloseNeedsUpdate(slice: EndpointSlice): boolean {
  return (slice.endpoints ?? []).some((e) => {
    if (e.conditions?.ready !== true) return false;
    const zones = e.hints?.forZones ?? [];
    return !e.hints || zones.length !== 1 || zones[0]!.name !== (e.zone ?? "");
  });
}

function applyHints(slice: EndpointSlice, preferClose: boolean): void {
  for (const e of slice.endpoints ?? []) {
    if (!preferClose) delete e.hints;
    else if (e.conditions?.ready === true) e.hints = { forZones: [{ name: e.zone ?? "" }] };
  }
}

/**
 * Hints of the slices a sync writes: with the topology annotation (whose zone allocation k8ts
 * does not do) every hint is removed; otherwise `trafficDistribution: PreferClose` hints each
 * ready endpoint for its zone and anything else has no hints. Unchanged slices whose hints are
 * wrong join the updates.
 */
export function reconcileHints(
  svc: Service,
  plan: SlicePlan,
  existing: EndpointSlice[],
): SlicePlan {
  const changed = new Set([...plan.toUpdate, ...plan.toDelete].map((s) => s.metadata?.name));
  const unchanged = existing.filter((s) => !changed.has(s.metadata?.name));
  const preferClose =
    !hintsEnabled(svc.metadata?.annotations) && svc.spec?.trafficDistribution === "PreferClose";
  const needsUpdate = preferClose ? preferCloseNeedsUpdate : hasHints;
  const toUpdate = [...plan.toUpdate];
  for (const s of unchanged) if (needsUpdate(s)) toUpdate.push(structuredClone(s));
  for (const s of [...plan.toCreate, ...toUpdate]) applyHints(s, preferClose);
  return { ...plan, toUpdate };
}

/**
 * Turns creates into updates of slices that would be deleted (same address type, owned by the
 * Service), as upstream's finalize does before writing.
 */
export function recycleSlices(svc: Service, plan: SlicePlan): SlicePlan {
  const toCreate = [...plan.toCreate];
  const toUpdate = [...plan.toUpdate];
  const toDelete = [...plan.toDelete];
  for (let i = 0; i < toDelete.length;) {
    if (toCreate.length === 0) break;
    const del = toDelete[i]!;
    const slice = toCreate[toCreate.length - 1]!;
    if (del.addressType === slice.addressType && ownedBy(del, svc)) {
      slice.metadata!.name = del.metadata!.name!;
      toCreate.pop();
      toUpdate.push(slice);
      toDelete.splice(i, 1);
    } else i++;
  }
  return { toCreate, toUpdate, toDelete };
}

function isPlaceholderOf(existing: EndpointSlice, placeholder: EndpointSlice): boolean {
  return (
    existing.metadata?.namespace === placeholder.metadata?.namespace &&
    semanticEqual(existing.metadata?.labels ?? {}, placeholder.metadata?.labels ?? {}) &&
    existing.addressType === placeholder.addressType &&
    semanticEqual(existing.endpoints, placeholder.endpoints) &&
    semanticEqual(existing.ports, placeholder.ports)
  );
}

export interface SliceReconcileInput {
  service: Service;
  /** The pods the Service's selector matches. */
  pods: Pod[];
  /** The Service's slices managed by this controller and not being deleted. */
  existing: EndpointSlice[];
  node: (name: string) => Node | undefined;
  maxEndpointsPerSlice?: number;
  controllerName?: string;
}

/**
 * What one sync does to a Service's slices, per address type (upstream's reconcileByAddressType
 * with its finalize's recycling), plus the slices of address types the Service no longer has,
 * and the errors to report (pods on nodes that do not exist are left out).
 */
export function planEndpointSlices(input: SliceReconcileInput): {
  plans: SlicePlan[];
  deleteUnsupported: EndpointSlice[];
  errors: string[];
} {
  const { service: svc } = input;
  const max = input.maxEndpointsPerSlice ?? MAX_ENDPOINTS_PER_SLICE;
  const controllerName = input.controllerName ?? ENDPOINTSLICE_CONTROLLER_NAME;
  const ns = svc.metadata?.namespace ?? "";
  const name = svc.metadata?.name ?? "";
  const types = addressTypesForService(svc);
  const errors: string[] = [];
  const deleteUnsupported: EndpointSlice[] = [];
  const byType = new Map<string, EndpointSlice[]>();
  for (const s of input.existing) {
    if (!types.includes(s.addressType as AddressType)) {
      deleteUnsupported.push(s);
      continue;
    }
    let list = byType.get(s.addressType);
    if (!list) byType.set(s.addressType, (list = []));
    list.push(s);
  }
  const plans: SlicePlan[] = [];
  for (const addressType of types) {
    const existing = byType.get(addressType) ?? [];
    let toCreate: EndpointSlice[] = [];
    let toUpdate: EndpointSlice[] = [];
    let toDelete: EndpointSlice[] = [];
    const existingByPorts = new Map<string, EndpointSlice[]>();
    for (const s of existing) {
      if (!ownedBy(s, svc)) {
        toDelete.push(s);
        continue;
      }
      const key = portMapKey(structuredClone(s.ports ?? []));
      let list = existingByPorts.get(key);
      if (!list) existingByPorts.set(key, (list = []));
      list.push(s);
    }
    const desired = new Map<string, { ports: EndpointPort[]; set: EndpointSet }>();
    for (const pod of input.pods) {
      if (!shouldPodBeInEndpoints(pod, true)) continue;
      const ports = getEndpointPorts(svc, pod);
      const key = portMapKey(ports);
      let group = desired.get(key);
      if (!group) desired.set(key, (group = { ports, set: new EndpointSet() }));
      const nodeName = pod.spec?.nodeName ?? "";
      const node = input.node(nodeName);
      if (!node && !svc.spec?.publishNotReadyAddresses) {
        errors.push(
          `skipping Pod ${pod.metadata?.name} for Service ${ns}/${name}: Node ${nodeName} Not Found`,
        );
        continue;
      }
      const ep = podToEndpoint(pod, node, svc, addressType);
      if (ep.addresses.length > 0) group.set.insert(ep);
    }
    for (const [key, group] of desired) {
      const p = reconcileByPortMapping(
        svc,
        existingByPorts.get(key) ?? [],
        group.set,
        group.ports,
        addressType,
        max,
        controllerName,
      );
      toCreate.push(...p.toCreate);
      toUpdate.push(...p.toUpdate);
      toDelete.push(...p.toDelete);
    }
    for (const [key, slices] of existingByPorts) if (!desired.has(key)) toDelete.push(...slices);
    if (existing.length === toDelete.length && toCreate.length < 1) {
      const placeholder = newEndpointSlice(svc, [], addressType, controllerName);
      if (toDelete.length === 1 && isPlaceholderOf(toDelete[0]!, placeholder)) toDelete = [];
      else toCreate.push(placeholder);
    }
    ({ toCreate, toUpdate, toDelete } = recycleSlices(
      svc,
      reconcileHints(svc, { toCreate, toUpdate, toDelete }, existing),
    ));
    plans.push({ toCreate, toUpdate, toDelete });
  }
  return { plans, deleteUnsupported, errors };
}

// ---------------------------------------------------------------------------------------------
// The controller.

export interface EndpointSliceControllerOptions {
  /** --max-endpoints-per-slice (100). */
  maxEndpointsPerSlice?: number;
  /** --concurrent-service-endpoint-syncs (5). */
  workers?: number;
  /** --endpointslice-updates-batch-period, ms (0). */
  batchPeriod?: number;
}

/** Upstream's queue rate limiter for the slice controllers: 1 s doubling up to `max`, 10 qps. */
export function sliceRateLimiter(max: number, clock: ControllerContext["clock"]) {
  return new MaxOfRateLimiter<string>(
    new ItemExponentialFailureRateLimiter<string>(1000, max),
    new BucketRateLimiter<string>(10, 100, clock),
  );
}

/** Go's aggregate error text: the one message, or all of them in brackets. */
export function aggregateMessage(errors: string[]): string {
  return errors.length === 1 ? errors[0]! : `[${errors.join(", ")}]`;
}

export function endpointSliceDescriptorWith(
  opts: EndpointSliceControllerOptions = {},
): ControllerDescriptor {
  return {
    name: "endpointslice",
    aliases: ["endpointslice-controller"],
    serviceAccount: "endpointslice-controller",
    async start(ctx: ControllerContext, signal) {
      const { client, informers, clock } = ctx;
      const recorder = ctx.recorder("endpoint-slice-controller");
      const services = informers.informer("v1/Service");
      const pods = informers.informer("v1/Pod");
      const nodes = informers.informer("v1/Node");
      const slices = informers.informer("discovery.k8s.io/v1/EndpointSlice");
      const tracker = new EndpointSliceTracker();
      const triggerTimes = new TriggerTimeTracker();
      const batch = opts.batchPeriod ?? 0;
      const max = opts.maxEndpointsPerSlice ?? MAX_ENDPOINTS_PER_SLICE;

      async function finalize(svc: Service, plan: SlicePlan, triggerTime: number): Promise<void> {
        await applySlicePlan(client, tracker, plan, {
          what: "Service",
          namespace: svc.metadata?.namespace ?? "",
          name: svc.metadata?.name ?? "",
          deleting: !!svc.metadata?.deletionTimestamp,
          prepare: (slice) => setTriggerTime(slice, triggerTime),
        });
      }

      const c = controller({
        name: "endpoint_slice",
        informers,
        for: "v1/Service",
        // Pods, nodes and slices are read from their caches: wait for them, map no keys.
        watches: [
          watchOf("v1/Pod", () => []),
          watchOf("v1/Node", () => []),
          watchOf("discovery.k8s.io/v1/EndpointSlice", () => []),
        ],
        workers: opts.workers ?? ctx.options.concurrency.endpointslice ?? 5,
        rateLimiter: sliceRateLimiter(1000_000, clock),
        clock,
        onError: (err, req) =>
          ctx.log.error(
            `Error syncing endpoint slices for service "${req.key}", retrying: ${errorMessage(err)}`,
          ),
        reconcile: async ({ key, namespace, name }) => {
          const svc = services.store.get(key);
          if (!svc) {
            triggerTimes.deleteService(namespace, name);
            tracker.deleteService(namespace, name);
            return;
          }
          if (svc.spec?.type === "ExternalName" || !hasSelector(svc)) return;
          const selected = selectedPods(pods.store, svc);
          const existing = managedSlices(
            slices.store.listNamespace(namespace),
            name,
            ENDPOINTSLICE_CONTROLLER_NAME,
          ).filter((s) => !s.metadata?.deletionTimestamp);
          // Upstream fails the sync here and backs off; the cache is merely behind this
          // controller's own writes, so k8ts retries soon without growing the back-off.
          if (tracker.staleSlices(namespace, name, existing)) return { requeueAfter: STALE_RETRY };
          const { time: triggerTime, commit } = triggerTimes.pending(namespace, svc, selected);
          const { plans, deleteUnsupported, errors } = planEndpointSlices({
            service: svc,
            pods: selected,
            existing,
            node: (n) => nodes.store.get(n),
            maxEndpointsPerSlice: max,
          });
          for (const plan of plans) {
            try {
              await finalize(svc, plan, triggerTime);
            } catch (err) {
              errors.push(errorMessage(err));
            }
          }
          for (const slice of deleteUnsupported) {
            try {
              await client
                .resource("discovery.k8s.io/v1/EndpointSlice", namespace)
                .delete(slice.metadata!.name!);
              tracker.expectDeletion(slice);
            } catch (err) {
              errors.push(
                `error deleting ${slice.metadata?.name} EndpointSlice for Service ${namespace}/${name}: ${errorMessage(err)}`,
              );
            }
          }
          if (errors.length === 0) commit();
          if (errors.length) {
            const message = aggregateMessage(errors);
            recorder.event(
              svc,
              "Warning",
              "FailedToUpdateEndpointSlices",
              `Error updating Endpoint Slices for Service ${namespace}/${name}: ${message}`,
            );
            throw new Error(message);
          }
        },
      });

      const enqueue = (key: string) =>
        batch > 0 ? c.queue.addAfter(key, batch) : c.queue.add(key);
      const sliceDelay = Math.max(1000, batch);
      const queueForSlice = (slice: EndpointSlice) => {
        const key = serviceKeyOfSlice(slice);
        if (key) c.queue.addAfter(key, sliceDelay);
      };
      const managed = (s: EndpointSlice) =>
        s.metadata?.labels?.[LABEL_MANAGED_BY] === ENDPOINTSLICE_CONTROLLER_NAME;
      const unregister = [
        registerPodHandlers(pods, services.store, enqueue),
        slices.addEventHandler(sliceEventHandler(managed, tracker, queueForSlice)),
      ];
      try {
        await c.start(signal);
      } finally {
        for (const u of unregister) u();
      }
    },
  };
}

/**
 * Writes a reconcile's plan for one owner (a Service, or mirrored Endpoints): the slices to
 * create (none while the owner is being deleted; a namespace being deleted ends it quietly), to
 * update and to delete, keeping the tracker in step; `prepare` runs on each slice written.
 */
export async function applySlicePlan(
  client: Client,
  tracker: EndpointSliceTracker,
  plan: SlicePlan,
  owner: {
    what: "Service" | "Endpoints";
    namespace: string;
    name: string;
    deleting: boolean;
    prepare?: (slice: EndpointSlice) => void;
  },
): Promise<void> {
  const { what, namespace: ns, name, prepare } = owner;
  const api = client.resource("discovery.k8s.io/v1/EndpointSlice", ns);
  if (!owner.deleting)
    for (const slice of plan.toCreate) {
      prepare?.(slice);
      try {
        tracker.update(await api.create(slice));
      } catch (err) {
        if (hasStatusCause(err, "NamespaceTerminating")) return;
        throw new Error(
          `failed to create EndpointSlice for ${what} ${ns}/${name}: ${errorMessage(err)}`,
        );
      }
    }
  for (const slice of plan.toUpdate) {
    prepare?.(slice);
    try {
      tracker.update(await api.update(slice));
    } catch (err) {
      throw new Error(
        `failed to update ${slice.metadata?.name} EndpointSlice for ${what} ${ns}/${name}: ${errorMessage(err)}`,
      );
    }
  }
  for (const slice of plan.toDelete) {
    try {
      await api.delete(slice.metadata!.name!);
    } catch (err) {
      throw new Error(
        `failed to delete ${slice.metadata?.name} EndpointSlice for ${what} ${ns}/${name}: ${errorMessage(err)}`,
      );
    }
    tracker.expectDeletion(slice);
  }
}

export const endpointSliceDescriptor = endpointSliceDescriptorWith();
