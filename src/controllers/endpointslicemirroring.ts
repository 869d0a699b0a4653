/**
 * The EndpointSlice mirroring controller (upstream's pkg/controller/endpointslicemirroring):
 * Endpoints that users write themselves for a Service without a selector are mirrored into
 * EndpointSlices managed by `endpointslicemirroring-controller.k8s.io`, owned by the Endpoints,
 * with its labels and annotations (but the trigger time and kubectl's last-applied
 * configuration). After repacking, each subset becomes one slice per address type, holding at
 * most --mirroring-max-endpoints-per-subset (1000) addresses; addresses that are not IPs are
 * skipped with an `InvalidIPAddress` event, those beyond the limit with
 * `TooManyAddressesToMirror`.
 *
 * Nothing is mirrored for Endpoints labelled `endpointslice.kubernetes.io/skip-mirror: "true"`
 * (the API server's own `kubernetes` Endpoints), for leader election records, for Services with
 * a selector (the EndpointSlice controller serves those) or without a Service; mirrored slices
 * of such Endpoints are deleted.
 */

import { isIP } from "node:net";
import type {
  EndpointAddress,
  EndpointPort as CorePort,
  Endpoints,
} from "kubernetes-types/core/v1.js";
import type { Endpoint, EndpointPort, EndpointSlice } from "kubernetes-types/discovery/v1.js";
import { controller } from "../client/controller.js";
import { objectKey } from "../client/resources.js";
import type { ControllerContext, ControllerDescriptor } from "./context.js";
import { errorMessage } from "./context.js";
import {
  hasSelector,
  LAST_CHANGE_TRIGGER_TIME,
  LEADER_ANNOTATION,
  repackSubsets,
} from "./endpoints.js";
import {
  type AddressType,
  applySlicePlan,
  EndpointSet,
  EndpointSliceTracker,
  endpointsEqualBeyondHash,
  LABEL_MANAGED_BY,
  LABEL_SERVICE_NAME,
  LABEL_SKIP_MIRROR,
  managedSlices,
  portMapKey,
  serviceKeyOfSlice,
  sliceEventHandler,
  type SlicePlan,
  sliceRateLimiter,
  STALE_RETRY,
} from "./endpointslice.js";
import { semanticEqual, watchOf } from "./util.js";

export const MIRRORING_CONTROLLER_NAME = "endpointslicemirroring-controller.k8s.io";
/** --mirroring-max-endpoints-per-subset's default. */
export const MAX_ENDPOINTS_PER_SUBSET = 1000;
const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

/** Whether an Endpoints is one to mirror at all (skip-mirror label, leader election record). */
export function shouldMirror(ep: Endpoints | undefined): boolean {
  if (!ep) return false;
  if (ep.metadata?.labels?.[LABEL_SKIP_MIRROR] === "true") return false;
  return !(LEADER_ANNOTATION in (ep.metadata?.annotations ?? {}));
}

/**
 * An address as Go's net.ParseIP reads it and IP.String writes it, with its address type; an
 * IPv4-mapped IPv6 address is IPv4. Undefined for anything that is not an IP.
 */
export function canonicalIP(ip: string): { ip: string; type: AddressType } | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (v4) {
    const octets = v4.slice(1).map(Number);
    if (octets.some((o) => o > 255)) return undefined;
    return { ip: octets.join("."), type: "IPv4" };
  }
  if (isIP(ip) !== 6) return undefined;
  const host = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (mapped) {
    const hi = parseInt(mapped[1]!, 16);
    const lo = parseInt(mapped[2]!, 16);
    return { ip: [hi >> 8, hi & 255, lo >> 8, lo & 255].join("."), type: "IPv4" };
  }
  return { ip: host, type: "IPv6" };
}

/** The slice endpoint of an Endpoints address (upstream's addressToEndpoint). */
export function addressToEndpoint(
  address: EndpointAddress,
  ready: boolean,
): { endpoint: Endpoint; type: AddressType } | undefined {
  const parsed = canonicalIP(address.ip);
  if (!parsed) return undefined;
  const endpoint: Endpoint = { addresses: [parsed.ip], conditions: { ready } };
  if (address.targetRef) endpoint.targetRef = address.targetRef;
  if (address.nodeName !== undefined) endpoint.nodeName = address.nodeName;
  if (address.hostname) endpoint.hostname = address.hostname;
  return { endpoint, type: parsed.type };
}

/** Endpoints ports as slice ports. */
export function slicePorts(ports: CorePort[]): EndpointPort[] {
  return ports.map((p) => {
    const out: EndpointPort = { name: p.name ?? "", port: p.port, protocol: p.protocol ?? "TCP" };
    if (p.appProtocol !== undefined) out.appProtocol = p.appProtocol;
    return out;
  });
}

/** The group key of a slice: address type and ports (sorts `ports` in upstream's order). */
export function addrTypePortKey(ports: EndpointPort[], type: string): string {
  return `${type}-${portMapKey(ports)}`;
}

function withoutKeys(m: Record<string, string> | undefined, ...keys: string[]) {
  const out: Record<string, string> = { ...m };
  for (const k of keys) delete out[k];
  return out;
}

/** A mirrored slice of an Endpoints (named `sliceName`, or to be created with a generated name). */
export function newMirroredSlice(
  ep: Endpoints,
  ports: EndpointPort[],
  addressType: AddressType,
  sliceName: string,
): EndpointSlice {
  const name = ep.metadata?.name ?? "";
  const labels: Record<string, string> = { ...ep.metadata?.labels };
  labels[LABEL_SERVICE_NAME] = name;
  labels[LABEL_MANAGED_BY] = MIRRORING_CONTROLLER_NAME;
  const annotations = withoutKeys(ep.metadata?.annotations, LAST_CHANGE_TRIGGER_TIME, LAST_APPLIED);
  const slice: EndpointSlice = {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      ...(sliceName ? { name: sliceName } : { generateName: `${name}-` }),
      namespace: ep.metadata?.namespace ?? "",
      labels,
      ownerReferences: [
        {
          apiVersion: "v1",
          kind: "Endpoints",
          name,
          uid: ep.metadata?.uid ?? "",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    addressType,
    endpoints: [],
    ports: structuredClone(ports),
  };
  if (Object.keys(annotations).length) slice.metadata!.annotations = annotations;
  return slice;
}

/** How many endpoints a slice would add, update and remove to match `desired`. */
function totalChanges(slice: EndpointSlice, desired: EndpointSet) {
  let removed = 0;
  let updated = 0;
  let matches = 0;
  for (const ep of slice.endpoints ?? []) {
    const want = desired.get(ep);
    if (!want) removed++;
    else {
      matches++;
      if (!endpointsEqualBeyondHash(want, ep)) updated++;
    }
  }
  return { added: desired.size - matches, updated, removed };
}

function mirrorByPortMapping(
  ep: Endpoints,
  existing: EndpointSlice[],
  desired: EndpointSet,
  ports: EndpointPort[],
  addressType: AddressType,
  max: number,
): SlicePlan {
  if (desired.size === 0) return { toCreate: [], toUpdate: [], toDelete: existing };
  const toDelete = existing.slice(1);
  const first = existing[0];
  if (first) {
    const t = totalChanges(first, desired);
    const annotations = withoutKeys(
      ep.metadata?.annotations,
      LAST_CHANGE_TRIGGER_TIME,
      LAST_APPLIED,
    );
    const labels = withoutKeys(first.metadata?.labels, LABEL_MANAGED_BY, LABEL_SERVICE_NAME);
    if (
      t.added === 0 &&
      t.updated === 0 &&
      t.removed === 0 &&
      semanticEqual(ep.metadata?.labels, labels) &&
      semanticEqual(annotations, first.metadata?.annotations)
    )
      return { toCreate: [], toUpdate: [], toDelete };
  }
  const slice = newMirroredSlice(ep, ports, addressType, first?.metadata?.name ?? "");
  slice.endpoints = [];
  while (desired.size > 0 && slice.endpoints.length < max) slice.endpoints.push(desired.pop()!);
  return first
    ? { toCreate: [], toUpdate: [slice], toDelete }
    : { toCreate: [slice], toUpdate: [], toDelete };
}

export interface MirrorEvent {
  reason: "InvalidIPAddress" | "TooManyAddressesToMirror";
  message: string;
}

/**
 * What one sync of a mirrored Endpoints does to its slices (upstream's reconciler.reconcile with
 * finalize's recycling of slices to delete into slices to create), and the events to record on
 * the Endpoints.
 */
export function planMirroredSlices(
  ep: Endpoints,
  existing: EndpointSlice[],
  max = MAX_ENDPOINTS_PER_SUBSET,
): { plan: SlicePlan; events: MirrorEvent[] } {
  const portsByKey = new Map<string, EndpointPort[]>();
  const endpointsByKey = new Map<string, EndpointSet>();
  let invalid = 0;
  let skipped = 0;
  for (const subset of repackSubsets(structuredClone(ep.subsets ?? []))) {
    const ports = slicePorts(subset.ports ?? []);
    const keys: Record<AddressType, string> = { IPv4: "", IPv6: "" };
    for (const type of ["IPv4", "IPv6"] as const) {
      const key = addrTypePortKey(ports, type);
      keys[type] = key;
      if (!endpointsByKey.has(key)) endpointsByKey.set(key, new EndpointSet());
      portsByKey.set(key, ports);
    }
    const total = (subset.addresses?.length ?? 0) + (subset.notReadyAddresses?.length ?? 0);
    let added = 0;
    const add = (list: EndpointAddress[] | undefined, ready: boolean) => {
      for (const a of list ?? []) {
        if (added >= max) break;
        const e = addressToEndpoint(a, ready);
        if (!e) {
          invalid++;
          continue;
        }
        endpointsByKey.get(keys[e.type])!.insert(e.endpoint);
        added++;
      }
    };
    add(subset.addresses, true);
    add(subset.notReadyAddresses, false);
    skipped += total - added;
  }
  const events: MirrorEvent[] = [];
  if (invalid > 0)
    events.push({
      reason: "InvalidIPAddress",
      message: `Skipped ${invalid} invalid IP addresses when mirroring to EndpointSlices`,
    });
  if (skipped > invalid)
    events.push({
      reason: "TooManyAddressesToMirror",
      message: `A max of ${max} addresses can be mirrored to EndpointSlices per Endpoints subset. ${skipped} addresses were skipped`,
    });

  const existingByKey = new Map<string, EndpointSlice[]>();
  for (const s of existing) {
    const key = addrTypePortKey(structuredClone(s.ports ?? []), s.addressType);
    let list = existingByKey.get(key);
    if (!list) existingByKey.set(key, (list = []));
    list.push(s);
  }
  const plan: SlicePlan = { toCreate: [], toUpdate: [], toDelete: [] };
  for (const [key, desired] of endpointsByKey) {
    const type: AddressType = key.startsWith("IPv6") ? "IPv6" : "IPv4";
    const p = mirrorByPortMapping(
      ep,
      existingByKey.get(key) ?? [],
      desired,
      portsByKey.get(key)!,
      type,
      max,
    );
    plan.toCreate.push(...p.toCreate);
    plan.toUpdate.push(...p.toUpdate);
    plan.toDelete.push(...p.toDelete);
  }
  for (const [key, slices] of existingByKey)
    if (!endpointsByKey.has(key)) plan.toDelete.push(...slices);
  return { plan: recycleByAddressType(plan), events };
}

/** Pairs creates with deletes of the same address type, turning both into an update. */
function recycleByAddressType(plan: SlicePlan): SlicePlan {
  const toCreate = [...plan.toCreate];
  const toUpdate = [...plan.toUpdate];
  const toDelete = [...plan.toDelete];
  for (const type of ["IPv4", "IPv6"]) {
    const creates = plan.toCreate.filter((s) => s.addressType === type);
    const deletes = plan.toDelete.filter((s) => s.addressType === type);
    for (let i = 0; i < creates.length && i < deletes.length; i++) {
      const slice = creates[i]!;
      toCreate.splice(toCreate.indexOf(slice), 1);
      toDelete.splice(toDelete.indexOf(deletes[i]!), 1);
      slice.metadata!.name = deletes[i]!.metadata!.name!;
      toUpdate.push(slice);
    }
  }
  return { toCreate, toUpdate, toDelete };
}

// ---------------------------------------------------------------------------------------------
// The controller.

export interface MirroringControllerOptions {
  /** --mirroring-max-endpoints-per-subset (1000). */
  maxEndpointsPerSubset?: number;
  /** --mirroring-concurrent-service-endpoint-syncs (5). */
  workers?: number;
  /** --mirroring-endpointslice-updates-batch-period, ms (0). */
  batchPeriod?: number;
}

export function endpointSliceMirroringDescriptorWith(
  opts: MirroringControllerOptions = {},
): ControllerDescriptor {
  return {
    name: "endpointslicemirroring",
    aliases: ["endpointslice-mirroring-controller"],
    serviceAccount: "endpointslicemirroring-controller",
    async start(ctx: ControllerContext, signal) {
      const { client, informers, clock } = ctx;
      const recorder = ctx.recorder("endpoint-slice-mirroring-controller");
      const endpoints = informers.informer("v1/Endpoints");
      const services = informers.informer("v1/Service");
      const slices = informers.informer("discovery.k8s.io/v1/EndpointSlice");
      const tracker = new EndpointSliceTracker();
      const max = opts.maxEndpointsPerSubset ?? MAX_ENDPOINTS_PER_SUBSET;

      async function deleteMirroredSlices(namespace: string, name: string): Promise<void> {
        const mirrored = managedSlices(
          slices.store.listNamespace(namespace),
          name,
          MIRRORING_CONTROLLER_NAME,
        );
        tracker.deleteService(namespace, name);
        const errors: string[] = [];
        for (const s of mirrored) {
          try {
            await client
              .resource("discovery.k8s.io/v1/EndpointSlice", namespace)
              .delete(s.metadata!.name!);
          } catch (err) {
            errors.push(errorMessage(err));
          }
        }
        if (errors.length)
          throw new Error(
            `error(s) deleting ${errors.length}/${mirrored.length} EndpointSlices for ${namespace}/${name} Endpoints, including: ${errors[0]}`,
          );
      }

      async function finalize(ep: Endpoints, plan: SlicePlan): Promise<void> {
        await applySlicePlan(client, tracker, plan, {
          what: "Endpoints",
          namespace: ep.metadata?.namespace ?? "",
          name: ep.metadata?.name ?? "",
          deleting: !!ep.metadata?.deletionTimestamp,
        });
      }

      const c = controller({
        name: "endpoint_slice_mirroring",
        informers,
        for: "v1/Endpoints",
        // Services and slices are read from their caches: wait for them, map no keys.
        watches: [
          watchOf("v1/Service", () => []),
          watchOf("discovery.k8s.io/v1/EndpointSlice", () => []),
        ],
        workers: opts.workers ?? ctx.options.concurrency.endpointslicemirroring ?? 5,
        rateLimiter: sliceRateLimiter(100_000, clock),
        clock,
        onError: (err, req) =>
          ctx.log.error(
            `Error mirroring EndpointSlices for Endpoints "${req.key}", retrying: ${errorMessage(err)}`,
          ),
        reconcile: async ({ key, namespace, name }) => {
          const ep = endpoints.store.get(key);
          const svc = services.store.get(key);
          if (!ep || !shouldMirror(ep) || !svc || hasSelector(svc))
            return void (await deleteMirroredSlices(namespace, name));
          const existing = managedSlices(
            slices.store.listNamespace(namespace),
            name,
            MIRRORING_CONTROLLER_NAME,
          );
          if (tracker.staleSlices(namespace, name, existing)) return { requeueAfter: STALE_RETRY };
          const { plan, events } = planMirroredSlices(ep, existing, max);
          for (const e of events) recorder.event(ep, "Warning", e.reason, e.message);
          await finalize(ep, plan);
          return undefined;
        },
      });

      const batch = opts.batchPeriod ?? 0;
      const managed = (s: EndpointSlice) =>
        s.metadata?.labels?.[LABEL_MANAGED_BY] === MIRRORING_CONTROLLER_NAME;
      const queueForSlice = (s: EndpointSlice) => {
        const key = serviceKeyOfSlice(s);
        if (key) c.queue.addAfter(key, batch);
      };
      const unregister = [
        services.addEventHandler({
          add: (svc) => {
            if (!hasSelector(svc)) c.queue.add(objectKey(svc));
          },
          update: (old, svc) => {
            if (hasSelector(old) !== hasSelector(svc)) c.queue.add(objectKey(svc));
          },
          delete: (svc) => {
            if (!hasSelector(svc)) c.queue.add(objectKey(svc));
          },
        }),
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

export const endpointSliceMirroringDescriptor = endpointSliceMirroringDescriptorWith();
