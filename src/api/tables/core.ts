/** Table printers of the core ("") group, with upstream's columns and cell rules. */

import type {
  ComponentStatus,
  ConfigMap,
  ContainerStatus,
  Endpoints,
  Event,
  Namespace,
  Node,
  PersistentVolume,
  PersistentVolumeClaim,
  Pod,
  PodTemplate,
  ReplicationController,
  ResourceQuota,
  Secret,
  Service,
  ServiceAccount,
} from "kubernetes-types/core/v1.js";
import type { Event as EventsV1Event } from "kubernetes-types/events/v1.js";
import { humanDuration, parseTimestamp, translateTimestampSince } from "./format.js";
import {
  ageColumn,
  column,
  compareStrings,
  containerColumns,
  formatLabels,
  joinHostPort,
  layoutContainers,
  nameColumn,
  quantity,
  sortedUnique,
  table,
  wide,
} from "./cells.js";
import type { TableDef } from "./types.js";

const age = (obj: { metadata?: { creationTimestamp?: string } }, now: Date): string =>
  translateTimestampSince(obj.metadata?.creationTimestamp, now);

const NODE_LOST_REASON = "NodeLost";

function isRestartableInit(c: { restartPolicy?: string } | undefined): boolean {
  return c?.restartPolicy === "Always";
}

function conditionTrue(
  conditions: readonly { type: string; status: string }[] | undefined,
  type: string,
): boolean {
  for (const c of conditions ?? []) {
    if (c.type === type) return c.status === "True";
  }
  return false;
}

function terminatedExit(prefix: string, t: { signal?: number; exitCode: number }): string {
  return t.signal ? `${prefix}Signal:${t.signal}` : `${prefix}ExitCode:${t.exitCode}`;
}

/** The READY, STATUS and RESTARTS cells of a pod (the kubelet-reported state summarised). */
export function podStatusCells(
  pod: Pod,
  now: Date,
): { ready: string; status: string; restarts: string } {
  const spec = pod.spec;
  const status = pod.status ?? {};
  const initContainerSpecs = new Map((spec?.initContainers ?? []).map((c) => [c.name, c]));
  let totalContainers = spec?.containers?.length ?? 0;
  for (const c of spec?.initContainers ?? []) if (isRestartableInit(c)) totalContainers++;

  let restarts = 0;
  let sidecarRestarts = 0;
  let readyContainers = 0;
  let lastRestart = -Infinity;
  let lastSidecarRestart = -Infinity;
  const finishedAt = (c: ContainerStatus): number =>
    parseTimestamp(c.lastState?.terminated?.finishedAt) ?? -Infinity;

  const phase = status.phase ?? "";
  let reason = status.reason || phase;
  for (const c of status.conditions ?? []) {
    if (c.type === "PodScheduled" && c.reason === "SchedulingGated") reason = "SchedulingGated";
  }

  let initializing = false;
  const initStatuses = status.initContainerStatuses ?? [];
  for (let i = 0; i < initStatuses.length; i++) {
    const c = initStatuses[i]!;
    const restartable = isRestartableInit(initContainerSpecs.get(c.name));
    restarts += c.restartCount ?? 0;
    if (c.lastState?.terminated) lastRestart = Math.max(lastRestart, finishedAt(c));
    if (restartable) {
      sidecarRestarts += c.restartCount ?? 0;
      if (c.lastState?.terminated) lastSidecarRestart = Math.max(lastSidecarRestart, finishedAt(c));
    }
    const terminated = c.state?.terminated;
    const waiting = c.state?.waiting;
    if (terminated && terminated.exitCode === 0) continue;
    if (restartable && c.started === true) {
      if (c.ready) readyContainers++;
      continue;
    }
    if (terminated) {
      reason = terminated.reason
        ? `Init:${terminated.reason}`
        : terminatedExit("Init:", terminated);
    } else if (waiting?.reason && waiting.reason !== "PodInitializing") {
      reason = `Init:${waiting.reason}`;
    } else {
      reason = `Init:${i}/${spec?.initContainers?.length ?? 0}`;
    }
    initializing = true;
    break;
  }

  if (!initializing || conditionTrue(status.conditions, "Initialized")) {
    restarts = sidecarRestarts;
    lastRestart = lastSidecarRestart;
    let hasRunning = false;
    const statuses = status.containerStatuses ?? [];
    for (let i = statuses.length - 1; i >= 0; i--) {
      const c = statuses[i]!;
      restarts += c.restartCount ?? 0;
      if (c.lastState?.terminated) lastRestart = Math.max(lastRestart, finishedAt(c));
      const waiting = c.state?.waiting;
      const terminated = c.state?.terminated;
      if (waiting?.reason) {
        reason = waiting.reason;
      } else if (terminated?.reason) {
        reason = terminated.reason;
      } else if (terminated) {
        reason = terminatedExit("", terminated);
      } else if (c.ready && c.state?.running) {
        hasRunning = true;
        readyContainers++;
      }
    }
    if (reason === "Completed" && hasRunning) {
      reason = conditionTrue(status.conditions, "Ready") ? "Running" : "NotReady";
    }
  }

  if (pod.metadata?.deletionTimestamp && status.reason === NODE_LOST_REASON) {
    reason = "Unknown";
  } else if (pod.metadata?.deletionTimestamp && phase !== "Succeeded" && phase !== "Failed") {
    reason = "Terminating";
  }

  let restartsText = String(restarts);
  if (restarts !== 0 && lastRestart !== -Infinity) {
    restartsText = `${restarts} (${humanDuration(now.getTime() - lastRestart)} ago)`;
  }
  return { ready: `${readyContainers}/${totalContainers}`, status: reason, restarts: restartsText };
}

const pod = table<Pod>(
  [
    nameColumn(),
    column("Ready", "string", "Ready containers out of all containers of the pod."),
    column("Status", "string", "Summary of the pod's phase and container states."),
    column("Restarts", "string", "Container restarts, and how long ago the last one happened."),
    ageColumn(),
    column("IP", "string", "First IP address of the pod.", wide),
    column("Node", "string", "Node the pod is bound to.", wide),
    column("Nominated Node", "string", "Node the scheduler nominated for preemption.", wide),
    column("Readiness Gates", "string", "Readiness gates whose condition is true.", wide),
  ],
  (p, now) => {
    const s = podStatusCells(p, now);
    const podIP = p.status?.podIP || p.status?.podIPs?.[0]?.ip || "<none>";
    let gates = "<none>";
    const readinessGates = p.spec?.readinessGates ?? [];
    if (readinessGates.length > 0) {
      let trueConditions = 0;
      for (const gate of readinessGates) {
        const condition = (p.status?.conditions ?? []).find((c) => c.type === gate.conditionType);
        if (condition?.status === "True") trueConditions++;
      }
      gates = `${trueConditions}/${readinessGates.length}`;
    }
    return [
      p.metadata?.name,
      s.ready,
      s.status,
      s.restarts,
      age(p, now),
      podIP,
      p.spec?.nodeName || "<none>",
      p.status?.nominatedNodeName || "<none>",
      gates,
    ];
  },
);

const podTemplate = table<PodTemplate>(
  [
    nameColumn(),
    column("Containers", "string", "Names of the containers in the template."),
    column("Images", "string", "Images of the containers in the template."),
    column("Pod Labels", "string", "Labels of the pod template."),
  ],
  (t) => {
    const [names, images] = layoutContainers(t.template?.spec?.containers);
    return [t.metadata?.name, names, images, formatLabels(t.template?.metadata?.labels)];
  },
);

const replicationController = table<ReplicationController>(
  [
    nameColumn(),
    column("Desired", "integer", "Desired number of replicas."),
    column("Current", "integer", "Number of replicas that exist."),
    column("Ready", "integer", "Number of ready replicas."),
    ageColumn(),
    ...containerColumns(),
    column("Selector", "string", "Label selector of the pods.", wide),
  ],
  (rc, now) => {
    const [names, images] = layoutContainers(rc.spec?.template?.spec?.containers);
    return [
      rc.metadata?.name,
      rc.spec?.replicas ?? 1,
      rc.status?.replicas ?? 0,
      rc.status?.readyReplicas ?? 0,
      age(rc, now),
      names,
      images,
      formatLabels(rc.spec?.selector),
    ];
  },
);

function serviceExternalIP(svc: Service): string {
  const externalIPs = svc.spec?.externalIPs ?? [];
  switch (svc.spec?.type ?? "ClusterIP") {
    case "ClusterIP":
    case "NodePort":
      return externalIPs.length > 0 ? externalIPs.join(",") : "<none>";
    case "LoadBalancer": {
      const lb = loadBalancerAddresses(svc.status?.loadBalancer?.ingress);
      if (externalIPs.length > 0) return [...(lb ? lb.split(",") : []), ...externalIPs].join(",");
      return lb || "<pending>";
    }
    case "ExternalName":
      return svc.spec?.externalName ?? "";
  }
  return "<unknown>";
}

/** Load-balancer ingress points (IP, else hostname), sorted and de-duplicated, joined by commas. */
export function loadBalancerAddresses(
  ingress: readonly { ip?: string; hostname?: string }[] | undefined,
): string {
  const values: string[] = [];
  for (const i of ingress ?? []) {
    if (i.ip) values.push(i.ip);
    else if (i.hostname) values.push(i.hostname);
  }
  return sortedUnique(values).join(",");
}

const service = table<Service>(
  [
    nameColumn(),
    column("Type", "string", "How the service is exposed."),
    column("Cluster-IP", "string", "Cluster IP address of the service."),
    column("External-IP", "string", "External addresses of the service."),
    column("Port(s)", "string", "Ports the service exposes."),
    ageColumn(),
    column("Selector", "string", "Labels of the pods the service routes to.", wide),
  ],
  (svc, now) => {
    const clusterIP = svc.spec?.clusterIP || svc.spec?.clusterIPs?.[0] || "<none>";
    const ports = (svc.spec?.ports ?? [])
      .map((p) => {
        const protocol = p.protocol ?? "TCP";
        return p.nodePort && p.nodePort > 0
          ? `${p.port}:${p.nodePort}/${protocol}`
          : `${p.port}/${protocol}`;
      })
      .join(",");
    return [
      svc.metadata?.name,
      svc.spec?.type ?? "ClusterIP",
      clusterIP,
      serviceExternalIP(svc),
      ports || "<none>",
      age(svc, now),
      formatLabels(svc.spec?.selector),
    ];
  },
);

/** Endpoint addresses with their ports, the first three then " + N more...". */
export function formatEndpoints(endpoints: Endpoints): string {
  const subsets = endpoints.subsets ?? [];
  if (subsets.length === 0) return "<none>";
  const max = 3;
  const list: string[] = [];
  let more = false;
  let count = 0;
  for (const ss of subsets) {
    const addresses = ss.addresses ?? [];
    const ports = ss.ports ?? [];
    if (ports.length === 0) {
      count += addresses.length;
      for (const a of addresses) {
        if (list.length === max) {
          more = true;
          break;
        }
        list.push(a.ip);
      }
      continue;
    }
    for (const port of ports) {
      count += addresses.length;
      for (const a of addresses) {
        if (list.length === max) {
          more = true;
          break;
        }
        list.push(joinHostPort(a.ip, port.port));
      }
    }
  }
  const text = list.join(",");
  return more ? `${text} + ${count - max} more...` : text;
}

const endpoints = table<Endpoints>(
  [
    nameColumn(),
    column("Endpoints", "string", "Addresses and ports of the endpoints."),
    ageColumn(),
  ],
  (ep, now) => [ep.metadata?.name, formatEndpoints(ep), age(ep, now)],
);

/** Node roles from `node-role.kubernetes.io/<role>` labels and the `kubernetes.io/role` label. */
export function nodeRoles(node: Node): string[] {
  const prefix = "node-role.kubernetes.io/";
  const roles: string[] = [];
  for (const [k, v] of Object.entries(node.metadata?.labels ?? {})) {
    if (k.startsWith(prefix)) {
      const role = k.slice(prefix.length);
      if (role) roles.push(role);
    } else if (k === "kubernetes.io/role" && v !== "") {
      roles.push(v);
    }
  }
  return sortedUnique(roles);
}

const node = table<Node>(
  [
    nameColumn(),
    column("Status", "string", "Readiness of the node, and whether it is cordoned."),
    column("Roles", "string", "Roles of the node."),
    ageColumn(),
    column("Version", "string", "Kubelet version of the node."),
    column("Internal-IP", "string", "First internal IP address of the node.", wide),
    column("External-IP", "string", "First external IP address of the node.", wide),
    column("OS-Image", "string", "Operating system image of the node.", wide),
    column("Kernel-Version", "string", "Kernel version of the node.", wide),
    column("Container-Runtime", "string", "Container runtime and version of the node.", wide),
  ],
  (n, now) => {
    let ready: { status: string } | undefined;
    for (const c of n.status?.conditions ?? []) if (c.type === "Ready") ready = c;
    const status: string[] = [];
    if (ready) status.push(ready.status === "True" ? "Ready" : "NotReady");
    if (status.length === 0) status.push("Unknown");
    if (n.spec?.unschedulable) status.push("SchedulingDisabled");
    const address = (type: string): string =>
      (n.status?.addresses ?? []).find((a) => a.type === type)?.address ?? "<none>";
    const info = n.status?.nodeInfo;
    return [
      n.metadata?.name,
      status.join(","),
      nodeRoles(n).join(",") || "<none>",
      age(n, now),
      info?.kubeletVersion ?? "",
      address("InternalIP"),
      address("ExternalIP"),
      info?.osImage || "<unknown>",
      info?.kernelVersion || "<unknown>",
      info?.containerRuntimeVersion || "<unknown>",
    ];
  },
);

/** The fields the Event printer reads, common to core/v1 and events.k8s.io/v1 events. */
interface EventView {
  name?: string;
  firstTimestamp?: string;
  lastTimestamp?: string;
  eventTime?: string;
  count?: number;
  series?: { count?: number; lastObservedTime?: string };
  kind?: string;
  objectName?: string;
  fieldPath?: string;
  type?: string;
  reason?: string;
  message?: string;
  component?: string;
  host?: string;
  reportingController?: string;
  reportingInstance?: string;
}

function coreEventView(e: Event): EventView {
  return {
    name: e.metadata?.name,
    firstTimestamp: e.firstTimestamp,
    lastTimestamp: e.lastTimestamp,
    eventTime: e.eventTime,
    count: e.count,
    series: e.series,
    kind: e.involvedObject?.kind,
    objectName: e.involvedObject?.name,
    fieldPath: e.involvedObject?.fieldPath,
    type: e.type,
    reason: e.reason,
    message: e.message,
    component: e.source?.component,
    host: e.source?.host,
    reportingController: e.reportingComponent,
    reportingInstance: e.reportingInstance,
  };
}

function eventsV1View(e: EventsV1Event): EventView {
  return {
    name: e.metadata?.name,
    firstTimestamp: e.deprecatedFirstTimestamp,
    lastTimestamp: e.deprecatedLastTimestamp,
    eventTime: e.eventTime,
    count: e.deprecatedCount,
    series: e.series,
    kind: e.regarding?.kind,
    objectName: e.regarding?.name,
    fieldPath: e.regarding?.fieldPath,
    type: e.type,
    reason: e.reason,
    message: e.note,
    component: e.deprecatedSource?.component,
    host: e.deprecatedSource?.host,
    reportingController: e.reportingController,
    reportingInstance: e.reportingInstance,
  };
}

const eventColumns = [
  column("Last Seen", "string", "Time since the event was last observed."),
  column("Type", "string", "Type of the event (Normal, Warning)."),
  column("Reason", "string", "Short reason of the event."),
  column("Object", "string", "Object the event is about."),
  column("Subobject", "string", "Part of the object the event is about.", wide),
  column("Source", "string", "Component that reported the event.", wide),
  column("Message", "string", "Description of the event."),
  column("First Seen", "string", "Time since the event was first observed.", wide),
  column("Count", "string", "Number of times the event occurred.", wide),
  column("Name", "string", "Name of the event.", { priority: 1, format: "name" }),
];

function eventCells(e: EventView, now: Date): unknown[] {
  const firstSeen =
    parseTimestamp(e.firstTimestamp) === undefined
      ? translateTimestampSince(e.eventTime, now)
      : translateTimestampSince(e.firstTimestamp, now);
  let lastSeen =
    parseTimestamp(e.lastTimestamp) === undefined
      ? firstSeen
      : translateTimestampSince(e.lastTimestamp, now);
  let count = e.count ?? 0;
  if (e.series) {
    lastSeen = translateTimestampSince(e.series.lastObservedTime, now);
    count = e.series.count ?? 0;
  } else if (count === 0) {
    count = 1;
  }
  const kind = (e.kind ?? "").toLowerCase();
  const target = e.objectName ? `${kind}/${e.objectName}` : kind;
  const component = e.component || e.reportingController || "";
  const instance = e.host || e.reportingInstance || "";
  return [
    lastSeen,
    e.type ?? "",
    e.reason ?? "",
    target,
    e.fieldPath ?? "",
    instance ? `${component}, ${instance}` : component,
    (e.message ?? "").trim(),
    firstSeen,
    count,
    e.name,
  ];
}

export const coreEvent = table<Event>(eventColumns, (e, now) => eventCells(coreEventView(e), now));
export const eventsV1Event = table<EventsV1Event>(eventColumns, (e, now) =>
  eventCells(eventsV1View(e), now),
);

const namespace = table<Namespace>(
  [nameColumn(), column("Status", "string", "Phase of the namespace."), ageColumn()],
  (ns, now) => [ns.metadata?.name, ns.status?.phase ?? "Active", age(ns, now)],
);

const secret = table<Secret>(
  [
    nameColumn(),
    column("Type", "string", "Type of the secret."),
    column("Data", "string", "Number of data keys."),
    ageColumn(),
  ],
  (s, now) => {
    const keys = new Set([...Object.keys(s.data ?? {}), ...Object.keys(s.stringData ?? {})]);
    return [s.metadata?.name, s.type ?? "Opaque", keys.size, age(s, now)];
  },
);

const serviceAccount = table<ServiceAccount>(
  [nameColumn(), column("Secrets", "string", "Number of referenced secrets."), ageColumn()],
  (sa, now) => [sa.metadata?.name, sa.secrets?.length ?? 0, age(sa, now)],
);

const ACCESS_MODES: [string, string][] = [
  ["ReadWriteOnce", "RWO"],
  ["ReadOnlyMany", "ROX"],
  ["ReadWriteMany", "RWX"],
  ["ReadWriteOncePod", "RWOP"],
];

/** Access modes abbreviated (RWO, ROX, RWX, RWOP), in that order, joined by commas. */
export function accessModes(modes: readonly string[] | undefined): string {
  const set = new Set(modes ?? []);
  return ACCESS_MODES.filter(([mode]) => set.has(mode))
    .map(([, short]) => short)
    .join(",");
}

const BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class";

const persistentVolume = table<PersistentVolume>(
  [
    nameColumn(),
    column("Capacity", "string", "Storage capacity of the volume."),
    column("Access Modes", "string", "Access modes of the volume."),
    column("Reclaim Policy", "string", "What happens to the volume when released."),
    column("Status", "string", "Phase of the volume."),
    column("Claim", "string", "Claim bound to the volume."),
    column("StorageClass", "string", "Storage class of the volume."),
    column("VolumeAttributesClass", "string", "Volume attributes class of the volume."),
    column("Reason", "string", "Reason for the volume's phase."),
    ageColumn(),
    column("VolumeMode", "string", "Whether the volume is a filesystem or a block device.", wide),
  ],
  (pv, now) => {
    const claim = pv.spec?.claimRef
      ? `${pv.spec.claimRef.namespace ?? ""}/${pv.spec.claimRef.name ?? ""}`
      : "";
    const annotations = pv.metadata?.annotations ?? {};
    const storageClass =
      BETA_STORAGE_CLASS in annotations
        ? annotations[BETA_STORAGE_CLASS]
        : (pv.spec?.storageClassName ?? "");
    return [
      pv.metadata?.name,
      quantity(pv.spec?.capacity?.storage),
      accessModes(pv.spec?.accessModes),
      pv.spec?.persistentVolumeReclaimPolicy ?? "Retain",
      pv.metadata?.deletionTimestamp ? "Terminating" : (pv.status?.phase ?? "Pending"),
      claim,
      storageClass,
      pv.spec?.volumeAttributesClassName ?? "<unset>",
      pv.status?.reason ?? "",
      age(pv, now),
      pv.spec?.volumeMode ?? "Filesystem",
    ];
  },
);

const persistentVolumeClaim = table<PersistentVolumeClaim>(
  [
    nameColumn(),
    column("Status", "string", "Phase of the claim."),
    column("Volume", "string", "Volume bound to the claim."),
    column("Capacity", "string", "Storage capacity of the bound volume."),
    column("Access Modes", "string", "Access modes of the bound volume."),
    column("StorageClass", "string", "Storage class of the claim."),
    column("VolumeAttributesClass", "string", "Volume attributes class of the claim."),
    ageColumn(),
    column(
      "VolumeMode",
      "string",
      "Whether the claim is for a filesystem or a block device.",
      wide,
    ),
  ],
  (pvc, now) => {
    const volumeName = pvc.spec?.volumeName ?? "";
    const bound = volumeName !== "";
    const annotations = pvc.metadata?.annotations ?? {};
    const storageClass =
      BETA_STORAGE_CLASS in annotations
        ? annotations[BETA_STORAGE_CLASS]
        : (pvc.spec?.storageClassName ?? "");
    return [
      pvc.metadata?.name,
      pvc.metadata?.deletionTimestamp ? "Terminating" : (pvc.status?.phase ?? "Pending"),
      volumeName,
      bound ? quantity(pvc.status?.capacity?.storage) : "",
      bound ? accessModes(pvc.status?.accessModes) : "",
      storageClass,
      pvc.spec?.volumeAttributesClassName ?? "<unset>",
      age(pvc, now),
      pvc.spec?.volumeMode ?? "Filesystem",
    ];
  },
);

const componentStatus = table<ComponentStatus>(
  [
    nameColumn(),
    column("Status", "string", "Health of the component."),
    column("Message", "string", "Message of the health condition."),
    column("Error", "string", "Error of the health condition."),
  ],
  (cs) => {
    let status = "Unknown";
    let message = "";
    let error = "";
    const healthy = (cs.conditions ?? []).find((c) => c.type === "Healthy");
    if (healthy) {
      status = healthy.status === "True" ? "Healthy" : "Unhealthy";
      message = healthy.message ?? "";
      error = healthy.error ?? "";
    }
    return [cs.metadata?.name, status, message, error];
  },
);

const configMap = table<ConfigMap>(
  [nameColumn(), column("Data", "string", "Number of data keys."), ageColumn()],
  (cm, now) => [
    cm.metadata?.name,
    Object.keys(cm.data ?? {}).length + Object.keys(cm.binaryData ?? {}).length,
    age(cm, now),
  ],
);

const resourceQuota = table<ResourceQuota>(
  [
    nameColumn(),
    column("Request", "string", "Used and hard quota of everything but limits."),
    column("Limit", "string", "Used and hard quota of limits."),
    ageColumn(),
  ],
  (rq, now) => {
    const hard = rq.status?.hard ?? {};
    const used = rq.status?.used ?? {};
    const requests: string[] = [];
    const limits: string[] = [];
    for (const resource of Object.keys(hard).sort(compareStrings)) {
      const pieces = resource.split(".");
      const target = pieces.length > 1 && pieces[0] === "limits" ? limits : requests;
      target.push(`${resource}: ${quantity(used[resource])}/${quantity(hard[resource])}`);
    }
    return [rq.metadata?.name, requests.join(", "), limits.join(", "), age(rq, now)];
  },
);

/** Printers of the core group by kind. */
export const corePrinters: Record<string, TableDef> = {
  Pod: pod,
  PodTemplate: podTemplate,
  ReplicationController: replicationController,
  Service: service,
  Endpoints: endpoints,
  Node: node,
  Event: coreEvent,
  Namespace: namespace,
  Secret: secret,
  ServiceAccount: serviceAccount,
  PersistentVolume: persistentVolume,
  PersistentVolumeClaim: persistentVolumeClaim,
  ComponentStatus: componentStatus,
  ConfigMap: configMap,
  ResourceQuota: resourceQuota,
};
