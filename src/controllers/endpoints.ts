/**
 * The Endpoints controller (upstream's pkg/controller/endpoint): every Service with a selector
 * has an Endpoints object of the same name listing the IPs of the pods it selects, ready ones
 * under `addresses` and the others under `notReadyAddresses`, each with the ports of the Service
 * resolved against the pod (a named targetPort is looked up in the pod's container ports, so two
 * pods may serve one Service port on different numbers). Subsets are repacked into upstream's
 * canonical layout (one subset per set of addresses sharing the same ports, sorted as upstream
 * sorts them), so that kube-proxy, DNS and `kubectl get endpoints` see what they would upstream.
 *
 * Pods that have finished, have no IP yet, or are being deleted are left out (terminating pods
 * stay when the Service publishes not-ready addresses). Endpoints of Services without a
 * selector belong to their users and are left alone; an Endpoints whose Service is gone is
 * deleted, also those found at start. At most 1000 addresses are written, with the
 * `endpoints.kubernetes.io/over-capacity: truncated` annotation when there were more.
 *
 * This file also holds what the EndpointSlice controllers share with it: pod-to-Service
 * membership, port resolution, the last-change trigger time and the hashing upstream sorts with.
 */

import { createHash } from "node:crypto";
import { isIP } from "node:net";
import type {
  EndpointAddress,
  EndpointPort,
  Endpoints,
  EndpointSubset,
  ObjectReference,
  Pod,
  Service,
  ServicePort,
} from "kubernetes-types/core/v1.js";
import { hasStatusCause, isStatusError } from "../api/status.js";
import { controller } from "../client/controller.js";
import type { Informer } from "../client/informer.js";
import { objectKey } from "../client/resources.js";
import type { Store } from "../client/store.js";
import type { ControllerContext, ControllerDescriptor } from "./context.js";
import { errorMessage } from "./context.js";
import { isPodReady, mapSelectorMatches, semanticEqual, watchOf } from "./util.js";

export const LAST_CHANGE_TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time";
export const OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity";
export const HEADLESS_LABEL = "service.kubernetes.io/headless";
/** The annotation of the Endpoints-based leader election records, never touched. */
export const LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader";
/** How soon a sync that found its cache behind its own writes runs again (ms). */
const STALE_RETRY = 100;
/** Most addresses one Endpoints object holds (upstream's maxCapacity). */
export const MAX_CAPACITY = 1000;

// ---------------------------------------------------------------------------------------------
// Shared with the EndpointSlice controllers.

/**
 * Whether a Service has a selector as the controllers see it: upstream reads Services through
 * protobuf, where an empty selector arrives as none.
 */
export function hasSelector(svc: Service): boolean {
  return Object.keys(svc.spec?.selector ?? {}).length > 0;
}

export function isServiceIPSet(svc: Service): boolean {
  const ip = svc.spec?.clusterIP ?? "";
  return ip !== "" && ip !== "None";
}

/** Keys of the Services in the pod's namespace whose selector matches it. */
export function podServiceMemberships(services: Service[], pod: Pod): Set<string> {
  const keys = new Set<string>();
  for (const svc of services) {
    if (!hasSelector(svc)) continue;
    if (mapSelectorMatches(svc.spec?.selector, pod.metadata?.labels)) keys.add(objectKey(svc));
  }
  return keys;
}

/**
 * Whether a pod change may change the endpoints of the Services it is in (first) and which
 * Services it is in (second), as upstream's podEndpointsChanged. Upstream compares the deletion
 * timestamps as pointers, so any pod being deleted counts as changed.
 */
export function podEndpointsChanged(old: Pod, cur: Pod): [boolean, boolean] {
  const labelsChanged =
    !semanticEqual(old.metadata?.labels, cur.metadata?.labels) ||
    (old.spec?.hostname ?? "") !== (cur.spec?.hostname ?? "") ||
    (old.spec?.subdomain ?? "") !== (cur.spec?.subdomain ?? "");
  if (old.metadata?.deletionTimestamp || cur.metadata?.deletionTimestamp)
    return [true, labelsChanged];
  if (isPodReady(old) !== isPodReady(cur)) return [true, labelsChanged];
  const a = old.status?.podIPs ?? [];
  const b = cur.status?.podIPs ?? [];
  if (a.length !== b.length || a.some((ip, i) => ip.ip !== b[i]?.ip)) return [true, labelsChanged];
  return [false, labelsChanged];
}

/** The Service keys to sync after a pod changed (GetServicesToUpdateOnPodChange). */
export function servicesToUpdateOnPodChange(services: Service[], old: Pod, cur: Pod): Set<string> {
  if (old.metadata?.resourceVersion === cur.metadata?.resourceVersion) return new Set();
  const [podChanged, labelsChanged] = podEndpointsChanged(old, cur);
  if (!podChanged && !labelsChanged) return new Set();
  const now = podServiceMemberships(services, cur);
  if (!labelsChanged) return now;
  const before = podServiceMemberships(services, old);
  const out = new Set<string>();
  if (podChanged) {
    for (const k of now) out.add(k);
    for (const k of before) out.add(k);
  } else {
    for (const k of now) if (!before.has(k)) out.add(k);
    for (const k of before) if (!now.has(k)) out.add(k);
  }
  return out;
}

/**
 * Whether a pod belongs in Endpoints or EndpointSlices at all: not finished, has an IP, and
 * (unless `includeTerminating`) is not being deleted.
 */
export function shouldPodBeInEndpoints(pod: Pod, includeTerminating: boolean): boolean {
  const phase = pod.status?.phase;
  if (phase === "Failed" || phase === "Succeeded") return false;
  if (!pod.status?.podIP && !(pod.status?.podIPs ?? []).length) return false;
  if (!includeTerminating && pod.metadata?.deletionTimestamp) return false;
  return true;
}

/** Whether the pod's `spec.hostname` is published for this Service (its subdomain). */
export function shouldSetHostname(pod: Pod, svc: Service): boolean {
  return (
    !!pod.spec?.hostname &&
    (pod.spec.subdomain ?? "") === svc.metadata?.name &&
    svc.metadata?.namespace === pod.metadata?.namespace
  );
}

/** The pod's IPs; the API server keeps `podIPs[0]` equal to `podIP`. */
export function podIPs(pod: Pod): string[] {
  const ips = (pod.status?.podIPs ?? []).map((p) => p.ip ?? "");
  if (ips.length === 0 && pod.status?.podIP) ips.push(pod.status.podIP);
  return ips;
}

export function isIPv6(ip: string): boolean {
  return isIP(ip) === 6;
}

/**
 * The container port a Service port reaches on a pod: a numeric targetPort as is, a named one
 * looked up among the ports of the pod's containers with the same protocol (podutil.FindPort).
 * Undefined when the pod has no such port.
 */
export function findPort(pod: Pod, svcPort: ServicePort): number | undefined {
  const target = svcPort.targetPort ?? svcPort.port;
  if (typeof target === "number") return target;
  const protocol = svcPort.protocol ?? "TCP";
  for (const c of pod.spec?.containers ?? [])
    for (const p of c.ports ?? [])
      if (p.name === target && (p.protocol ?? "TCP") === protocol) return p.containerPort;
  return undefined;
}

/**
 * The time of the change that triggered an endpoints update (upstream's TriggerTimeTracker): the
 * earliest Ready transition of a pod, or creation of the Service, that this tracker has not seen
 * before; the Service's creation time the first time it sees a Service; 0 when nothing new.
 */
export class TriggerTimeTracker {
  private readonly states = new Map<string, { service: number; pods: Map<string, number> }>();

  compute(namespace: string, svc: Service, pods: Pod[]): number {
    const { time, commit } = this.pending(namespace, svc, pods);
    commit();
    return time;
  }

  /**
   * The trigger time without recording what it saw until `commit` is called: a sync that does
   * not get to write (its cache was behind) leaves the change to the sync that writes it.
   */
  pending(namespace: string, svc: Service, pods: Pod[]): { time: number; commit: () => void } {
    const key = `${namespace}/${svc.metadata?.name ?? ""}`;
    const state = this.states.get(key);
    let min = 0;
    const podTimes = new Map<string, number>();
    for (const pod of pods) {
      const t = podTriggerTime(pod);
      if (!t) continue;
      const name = pod.metadata?.name ?? "";
      podTimes.set(name, t);
      if (t > (state?.pods.get(name) ?? 0)) min = earliest(min, t);
    }
    const svcTime = timeOf(svc.metadata?.creationTimestamp);
    if (svcTime > (state?.service ?? 0)) min = earliest(min, svcTime);
    return {
      time: state ? min : svcTime,
      commit: () => void this.states.set(key, { service: svcTime, pods: podTimes }),
    };
  }

  deleteService(namespace: string, name: string): void {
    this.states.delete(`${namespace}/${name}`);
  }
}

function earliest(current: number, t: number): number {
  return current === 0 || t < current ? t : current;
}

function timeOf(s: string | undefined): number {
  const t = s ? Date.parse(s) : NaN;
  return Number.isFinite(t) ? t : 0;
}

function podTriggerTime(pod: Pod): number {
  const c = pod.status?.conditions?.find((x) => x.type === "Ready");
  return timeOf(c?.lastTransitionTime);
}

/** Go's time.RFC3339Nano in UTC: fractional seconds without trailing zeros. */
export function formatTriggerTime(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/\.(\d*?)0*Z$/, (_m, d: string) => (d ? `.${d}Z` : "Z"));
}

export function md5Hex(s: string): string {
  return createHash("md5").update(s).digest("hex");
}

/*
 * Upstream sorts ports and subsets by the MD5 of a dump of the Go value (go-spew with the
 * configuration of apimachinery's dump.ForHash: `%#v`, types in parentheses, strings raw, nil
 * pointers and slices as `<nil>`). These functions write that dump for the few types sorted
 * that way, so that k8ts lists ports and subsets in upstream's order.
 */

function spewPtr(type: string, v: string | number | undefined): string {
  return `(*${type})${v === undefined ? "<nil>" : String(v)}`;
}

function spewCorePortBody(p: EndpointPort, pkg = "v1"): string {
  return `{Name:(string)${p.name ?? ""} Port:(int32)${p.port} Protocol:(${pkg}.Protocol)${
    p.protocol ?? ""
  } AppProtocol:${spewPtr("string", p.appProtocol)}}`;
}

/**
 * The dump of a core/v1 EndpointPort value (`pkg` "core" dumps the API server's internal type,
 * which it repacks Endpoints with).
 */
export function spewCoreEndpointPort(p: EndpointPort, pkg = "v1"): string {
  return `(${pkg}.EndpointPort)${spewCorePortBody(p, pkg)}`;
}

function spewObjectReference(r: ObjectReference | undefined, pkg: string): string {
  if (!r) return `(*${pkg}.ObjectReference)<nil>`;
  return `(*${pkg}.ObjectReference){Kind:(string)${r.kind ?? ""} Namespace:(string)${
    r.namespace ?? ""
  } Name:(string)${r.name ?? ""} UID:(types.UID)${r.uid ?? ""} APIVersion:(string)${
    r.apiVersion ?? ""
  } ResourceVersion:(string)${r.resourceVersion ?? ""} FieldPath:(string)${r.fieldPath ?? ""}}`;
}

function spewAddressBody(a: EndpointAddress, pkg: string): string {
  return `{IP:(string)${a.ip} Hostname:(string)${a.hostname ?? ""} NodeName:${spewPtr(
    "string",
    a.nodeName,
  )} TargetRef:${spewObjectReference(a.targetRef, pkg)}}`;
}

function spewSlice<T>(type: string, items: T[] | undefined, body: (x: T) => string): string {
  return `([]${type})${items === undefined ? "<nil>" : `[${items.map(body).join(" ")}]`}`;
}

/** The dump of a core/v1 EndpointSubset value (an absent list is a nil slice). */
export function spewEndpointSubset(s: EndpointSubset, pkg = "v1"): string {
  const addr = (a: EndpointAddress) => spewAddressBody(a, pkg);
  return `(${pkg}.EndpointSubset){Addresses:${spewSlice(
    `${pkg}.EndpointAddress`,
    s.addresses,
    addr,
  )} NotReadyAddresses:${spewSlice(`${pkg}.EndpointAddress`, s.notReadyAddresses, addr)} Ports:${spewSlice(
    `${pkg}.EndpointPort`,
    s.ports,
    (p) => spewCorePortBody(p, pkg),
  )}}`;
}

/** Sorts by the MD5 of each element's dump, as upstream's portsByHash and subsetsByHash. */
export function sortByHash<T>(items: T[], dump: (x: T) => string): T[] {
  const keyed = items.map((x) => ({ x, h: md5Hex(dump(x)) }));
  keyed.sort((a, b) => (a.h < b.h ? -1 : a.h > b.h ? 1 : 0));
  for (let i = 0; i < keyed.length; i++) items[i] = keyed[i]!.x;
  return items;
}

/** Upstream's LessEndpointAddress: by IP bytes, then by target UID (none first). */
export function lessEndpointAddress(a: EndpointAddress, b: EndpointAddress): boolean {
  if (a.ip !== b.ip) return a.ip < b.ip;
  if (!b.targetRef) return false;
  if (!a.targetRef) return true;
  return (a.targetRef.uid ?? "") < (b.targetRef.uid ?? "");
}

function compareAddresses(a: EndpointAddress, b: EndpointAddress): number {
  return lessEndpointAddress(a, b) ? -1 : lessEndpointAddress(b, a) ? 1 : 0;
}

/**
 * Sorts addresses, ports and subsets in place as upstream's SortSubsets; `pkg` names the Go
 * package of the types hashed ("v1" in controllers, "core" in the API server).
 */
export function sortSubsets(subsets: EndpointSubset[], pkg = "v1"): EndpointSubset[] {
  for (const s of subsets) {
    s.addresses?.sort(compareAddresses);
    s.notReadyAddresses?.sort(compareAddresses);
    if (s.ports) sortByHash(s.ports, (p) => spewCoreEndpointPort(p, pkg));
  }
  return sortByHash(subsets, (x) => spewEndpointSubset(x, pkg));
}

function portKey(p: EndpointPort): string {
  return JSON.stringify([p.name ?? "", p.port, p.protocol ?? "", p.appProtocol ?? null]);
}

/**
 * Upstream's RepackSubsets: expands subsets into (address, port) pairs and packs them again so
 * that addresses offering the same ports share one subset; an address not ready for any port
 * is not ready for all of them; addresses are the same when IP and target UID are. Subsets
 * without ports keep their addresses in a subset without ports. Absent lists stand for Go's nil
 * slices.
 */
export function repackSubsets(subsets: EndpointSubset[], pkg = "v1"): EndpointSubset[] {
  const allAddrs = new Map<string, EndpointAddress>();
  const byPort = new Map<string, { port: EndpointPort | undefined; ready: Map<string, boolean> }>();
  const map = (addr: EndpointAddress, port: EndpointPort | undefined, ready: boolean) => {
    const key = JSON.stringify([addr.ip, addr.targetRef?.uid ?? ""]);
    if (!allAddrs.has(key)) allAddrs.set(key, structuredClone(addr));
    const pk = port ? portKey(port) : "";
    let entry = byPort.get(pk);
    if (!entry) byPort.set(pk, (entry = { port, ready: new Map() }));
    const was = entry.ready.get(key);
    if (was === undefined || was) entry.ready.set(key, ready);
  };
  for (const s of subsets) {
    const ports: (EndpointPort | undefined)[] = s.ports?.length ? s.ports : [undefined];
    for (const port of ports) {
      for (const a of s.addresses ?? []) map(a, port, true);
      for (const a of s.notReadyAddresses ?? []) map(a, port, false);
    }
  }
  const groups = new Map<string, { ready: Map<string, boolean>; ports: EndpointPort[] }>();
  for (const { port, ready } of byPort.values()) {
    const key = JSON.stringify([...ready.entries()].sort());
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { ready, ports: [] }));
    if (port && port.port > 0) g.ports.push(structuredClone(port));
  }
  const out: EndpointSubset[] = [];
  for (const g of groups.values()) {
    const s: EndpointSubset = {};
    const ready: EndpointAddress[] = [];
    const notReady: EndpointAddress[] = [];
    for (const [key, isReady] of g.ready) (isReady ? ready : notReady).push(allAddrs.get(key)!);
    if (ready.length) s.addresses = ready;
    if (notReady.length) s.notReadyAddresses = notReady;
    if (g.ports.length) s.ports = g.ports;
    out.push(s);
  }
  return sortSubsets(out, pkg);
}

// ---------------------------------------------------------------------------------------------
// The Endpoints controller's core.

/**
 * The address of a pod for a Service: the pod IP of the Service's first IP family (the family of
 * the cluster IP, or of the pod IP for a headless Service, when the families are not set).
 * Undefined when the pod has no IP of that family.
 */
export function podToEndpointAddress(svc: Service, pod: Pod): EndpointAddress | undefined {
  let ipv6: boolean;
  const families = svc.spec?.ipFamilies ?? [];
  if (families.length > 0) ipv6 = families[0] === "IPv6";
  else if (isServiceIPSet(svc)) ipv6 = isIPv6(svc.spec!.clusterIP!);
  else ipv6 = isIPv6(pod.status?.podIP ?? "");
  const ip = podIPs(pod).find((x) => isIPv6(x) === ipv6);
  if (!ip) return undefined;
  const addr: EndpointAddress = {
    ip,
    nodeName: pod.spec?.nodeName ?? "",
    targetRef: {
      kind: "Pod",
      namespace: pod.metadata?.namespace ?? "",
      name: pod.metadata?.name ?? "",
      uid: pod.metadata?.uid ?? "",
    },
  };
  if (shouldSetHostname(pod, svc)) addr.hostname = pod.spec!.hostname!;
  return addr;
}

function endpointPort(sp: ServicePort, port: number): EndpointPort {
  const p: EndpointPort = sp.name ? { name: sp.name, port } : { port };
  p.protocol = sp.protocol ?? "TCP";
  if (sp.appProtocol !== undefined) p.appProtocol = sp.appProtocol;
  return p;
}

/**
 * The subsets of a Service's Endpoints from the pods its selector matches: one entry per pod and
 * resolvable Service port, ready or not, then repacked. Pods not in endpoints, without an IP of
 * the Service's family, or (for a port) without the named port are skipped.
 */
export function endpointSubsetsFor(svc: Service, pods: Pod[]): EndpointSubset[] {
  const publishNotReady = !!svc.spec?.publishNotReadyAddresses;
  const subsets: EndpointSubset[] = [];
  const add = (pod: Pod, addr: EndpointAddress, port: EndpointPort | undefined) => {
    const ports = port ? [port] : [];
    if (publishNotReady || isPodReady(pod)) subsets.push({ addresses: [addr], ports });
    else subsets.push({ notReadyAddresses: [addr], ports });
  };
  for (const pod of pods) {
    if (!shouldPodBeInEndpoints(pod, publishNotReady)) continue;
    const addr = podToEndpointAddress(svc, pod);
    if (!addr) continue;
    const svcPorts = svc.spec?.ports ?? [];
    if (svcPorts.length === 0) {
      if (svc.spec?.clusterIP === "None") add(pod, addr, undefined);
      continue;
    }
    for (const sp of svcPorts) {
      const port = findPort(pod, sp);
      if (port === undefined) continue;
      add(pod, addr, endpointPort(sp, port));
    }
  }
  return repackSubsets(subsets);
}

function countAddresses(subsets: EndpointSubset[]): number {
  let n = 0;
  for (const s of subsets) n += (s.addresses?.length ?? 0) + (s.notReadyAddresses?.length ?? 0);
  return n;
}

/**
 * Cuts subsets down to MAX_CAPACITY addresses in place (upstream's truncateEndpoints): each
 * subset keeps a share proportional to its size, ready addresses before not-ready ones. Answers
 * whether anything was cut.
 */
export function truncateSubsets(subsets: EndpointSubset[], max = MAX_CAPACITY): boolean {
  let totalReady = 0;
  let totalNotReady = 0;
  for (const s of subsets) {
    totalReady += s.addresses?.length ?? 0;
    totalNotReady += s.notReadyAddresses?.length ?? 0;
  }
  if (totalReady + totalNotReady <= max) return false;
  const truncateReady = totalReady > max;
  const limit = truncateReady ? max : max - totalReady;
  const total = truncateReady ? totalReady : totalNotReady;
  let canBeAdded = limit;
  for (const s of subsets) {
    const inSubset = truncateReady
      ? (s.addresses?.length ?? 0)
      : (s.notReadyAddresses?.length ?? 0);
    const toBeAdded = Math.min(Math.ceil((inSubset / total) * limit), canBeAdded);
    if (truncateReady) {
      if (s.addresses) s.addresses = s.addresses.slice(0, toBeAdded);
      delete s.notReadyAddresses;
      canBeAdded -= s.addresses?.length ?? 0;
    } else {
      if (s.notReadyAddresses) s.notReadyAddresses = s.notReadyAddresses.slice(0, toBeAdded);
      canBeAdded -= s.notReadyAddresses?.length ?? 0;
    }
  }
  return true;
}

/** Subsets compared as upstream does, ignoring the resourceVersion of target references. */
export function subsetsEqual(a: EndpointSubset[] | undefined, b: EndpointSubset[] | undefined) {
  const strip = (subsets: EndpointSubset[] | undefined) =>
    (subsets ?? []).map((s) => {
      const addr = (list: EndpointAddress[] | undefined) =>
        (list ?? []).map((x) => ({
          ...x,
          hostname: x.hostname ?? "",
          targetRef: x.targetRef ? { ...x.targetRef, resourceVersion: undefined } : undefined,
        }));
      return {
        addresses: addr(s.addresses),
        notReadyAddresses: addr(s.notReadyAddresses),
        ports: (s.ports ?? []).map((p) => ({ ...p, name: p.name ?? "" })),
      };
    });
  return semanticEqual(strip(a), strip(b));
}

function withoutLabel(labels: Record<string, string> | undefined, key: string) {
  if (!labels || !(key in labels)) return labels;
  const out = { ...labels };
  delete out[key];
  return out;
}

/**
 * The Endpoints a sync writes for `svc` given the current one (undefined: none yet), or
 * undefined when the current one is already right. Labels are the Service's plus the headless
 * label for a Service without a cluster IP; the trigger time annotation is set (or cleared when
 * `triggerTime` is 0); addresses beyond MAX_CAPACITY are cut and the Endpoints annotated.
 */
export function desiredEndpoints(
  svc: Service,
  current: Endpoints | undefined,
  subsets: EndpointSubset[],
  triggerTime: number,
): Endpoints | undefined {
  const svcLabels = svc.metadata?.labels;
  if (
    current &&
    subsetsEqual(current.subsets, subsets) &&
    semanticEqual(withoutLabel(current.metadata?.labels, HEADLESS_LABEL), svcLabels) &&
    countAddresses(current.subsets ?? []) <= MAX_CAPACITY &&
    !(OVER_CAPACITY in (current.metadata?.annotations ?? {}))
  )
    return undefined;
  const next: Endpoints = current
    ? structuredClone(current)
    : {
        apiVersion: "v1",
        kind: "Endpoints",
        metadata: { name: svc.metadata?.name ?? "", namespace: svc.metadata?.namespace ?? "" },
      };
  const meta = next.metadata!;
  const annotations = { ...meta.annotations };
  if (triggerTime) annotations[LAST_CHANGE_TRIGGER_TIME] = formatTriggerTime(triggerTime);
  else delete annotations[LAST_CHANGE_TRIGGER_TIME];
  const cut = structuredClone(subsets);
  if (truncateSubsets(cut)) annotations[OVER_CAPACITY] = "truncated";
  else delete annotations[OVER_CAPACITY];
  const labels: Record<string, string> = { ...svcLabels };
  if (!isServiceIPSet(svc)) labels[HEADLESS_LABEL] = "";
  else delete labels[HEADLESS_LABEL];
  meta.labels = labels;
  meta.annotations = annotations;
  if (Object.keys(labels).length === 0) delete meta.labels;
  if (Object.keys(annotations).length === 0) delete meta.annotations;
  if (cut.length) next.subsets = cut;
  else delete next.subsets;
  return next;
}

// ---------------------------------------------------------------------------------------------
// The controller.

export interface EndpointsControllerOptions {
  /** --concurrent-endpoint-syncs (5). */
  workers?: number;
  /** --endpoint-updates-batch-period, ms: delay of syncs triggered by pod changes (0). */
  batchPeriod?: number;
}

/** Pods of a namespace whose labels match a Service's selector. */
export function selectedPods(pods: Store<Pod>, svc: Service): Pod[] {
  return pods
    .listNamespace(svc.metadata?.namespace ?? "")
    .filter((p) => mapSelectorMatches(svc.spec?.selector, p.metadata?.labels));
}

/** Keeps the queue of Service keys told about pod changes (shared with the EndpointSlice one). */
export function registerPodHandlers(
  pods: Informer<Pod>,
  services: Store<Service>,
  enqueue: (key: string) => void,
): () => void {
  const memberships = (pod: Pod) =>
    podServiceMemberships(services.listNamespace(pod.metadata?.namespace ?? ""), pod);
  return pods.addEventHandler({
    add: (pod) => memberships(pod).forEach(enqueue),
    update: (old, cur) =>
      servicesToUpdateOnPodChange(
        services.listNamespace(cur.metadata?.namespace ?? ""),
        old,
        cur,
      ).forEach(enqueue),
    delete: (pod) => memberships(pod).forEach(enqueue),
  });
}

export function endpointsDescriptorWith(
  opts: EndpointsControllerOptions = {},
): ControllerDescriptor {
  return {
    name: "endpoints",
    aliases: ["endpoints-controller"],
    serviceAccount: "endpoint-controller",
    async start(ctx: ControllerContext, signal) {
      const { client, informers, clock } = ctx;
      const recorder = ctx.recorder("endpoint-controller");
      const services = informers.informer("v1/Service");
      const pods = informers.informer("v1/Pod");
      const endpoints = informers.informer("v1/Endpoints");
      const triggerTimes = new TriggerTimeTracker();
      /** resourceVersions this controller has replaced: a cache still showing one is stale. */
      const staleVersions = new Map<string, string>();
      const batch = opts.batchPeriod ?? 0;

      const c = controller({
        name: "endpoint",
        informers,
        for: "v1/Service",
        // Pods and Endpoints are read from their caches: wait for them, map no keys.
        watches: [watchOf("v1/Pod", () => []), watchOf("v1/Endpoints", () => [])],
        workers: opts.workers ?? ctx.options.concurrency.endpoint ?? 5,
        clock,
        onError: (err, req) =>
          ctx.log.error(`Error syncing endpoints for service "${req.key}": ${errorMessage(err)}`),
        reconcile: async ({ key, namespace, name }) => {
          const epClient = client.resource("v1/Endpoints", namespace);
          const svc = services.store.get(key);
          if (!svc) {
            try {
              await epClient.delete(name);
            } catch (err) {
              if (!isStatusError(err, "NotFound")) throw err;
            }
            triggerTimes.deleteService(namespace, name);
            staleVersions.delete(key);
            return;
          }
          if (svc.spec?.type === "ExternalName" || !hasSelector(svc)) return;
          const current = endpoints.store.get(key);
          // Upstream fails the sync when the cache is behind this controller's own writes and
          // backs off; k8ts retries soon without growing the back-off, and checks before the
          // trigger time is taken, so that the retry still writes it.
          if (current && staleVersions.get(key) === current.metadata?.resourceVersion)
            return { requeueAfter: STALE_RETRY };
          const selected = selectedPods(pods.store, svc);
          const { time: triggerTime, commit } = triggerTimes.pending(namespace, svc, selected);
          const subsets = endpointSubsetsFor(svc, selected);
          const next = desiredEndpoints(svc, current, subsets, triggerTime);
          if (!next) {
            commit();
            return undefined;
          }
          try {
            if (!current) {
              await epClient.create(next);
            } else {
              const updated = await epClient.update(next);
              if (updated.metadata?.resourceVersion !== current.metadata?.resourceVersion)
                staleVersions.set(key, current.metadata?.resourceVersion ?? "");
            }
            commit();
          } catch (err) {
            if (
              !current &&
              isStatusError(err, "Forbidden") &&
              hasStatusCause(err, "NamespaceTerminating")
            )
              return;
            // Created meanwhile: the cache has not seen it yet.
            if (!current && isStatusError(err, "AlreadyExists"))
              return { requeueAfter: STALE_RETRY };
            if (!current)
              recorder.event(
                next,
                "Warning",
                "FailedToCreateEndpoint",
                `Failed to create endpoint for service ${namespace}/${name}: ${errorMessage(err)}`,
              );
            else
              recorder.event(
                next,
                "Warning",
                "FailedToUpdateEndpoint",
                `Failed to update endpoint ${namespace}/${name}: ${errorMessage(err)}`,
              );
            throw err;
          }
        },
      });

      const enqueue = (key: string) =>
        batch > 0 ? c.queue.addAfter(key, batch) : c.queue.add(key);
      const unregister = [
        registerPodHandlers(pods, services.store, enqueue),
        endpoints.addEventHandler({ delete: (ep) => c.queue.add(objectKey(ep)) }),
      ];
      // Endpoints left behind by Services deleted while no controller ran.
      void endpoints.waitForSync(signal).then((synced) => {
        if (!synced) return;
        for (const ep of endpoints.store.list())
          if (!(LEADER_ANNOTATION in (ep.metadata?.annotations ?? {}))) c.queue.add(objectKey(ep));
      });
      try {
        await c.start(signal);
      } finally {
        for (const u of unregister) u();
      }
    },
  };
}

export const endpointsDescriptor = endpointsDescriptorWith();
