/**
 * Conversion between the versions of a resource that share one storage location, as upstream
 * converts through its internal types: core/v1 Event and events.k8s.io/v1 Event are both stored
 * as core/v1 Events under /registry/events, and autoscaling/v1 and v2 HorizontalPodAutoscalers
 * as autoscaling/v2 under /registry/horizontalpodautoscalers. Every other resource is stored in
 * the one version it is served in.
 */
import type { KObject } from "./registry/types.js";

export interface Conversion {
  /** The apiVersion objects are stored in. */
  storageVersion: string;
  /** From the served version to the storage version (a new object; the argument is not changed). */
  toStorage(obj: KObject): KObject;
  /** From the storage version to the served version. */
  fromStorage(obj: KObject): KObject;
}

type Obj = Record<string, unknown>;

/** Copies the fields that are set (not undefined) from `from[a]` to `to[b]`. */
function rename(from: Obj, to: Obj, pairs: Array<[string, string]>): void {
  for (const [a, b] of pairs) if (from[a] !== undefined) to[b] = from[a];
}

/** events.k8s.io/v1 name <-> core/v1 name. */
const EVENT_FIELDS: Array<[string, string]> = [
  ["eventTime", "eventTime"],
  ["series", "series"],
  ["reportingController", "reportingComponent"],
  ["reportingInstance", "reportingInstance"],
  ["action", "action"],
  ["reason", "reason"],
  ["regarding", "involvedObject"],
  ["related", "related"],
  ["note", "message"],
  ["type", "type"],
  ["deprecatedSource", "source"],
  ["deprecatedFirstTimestamp", "firstTimestamp"],
  ["deprecatedLastTimestamp", "lastTimestamp"],
  ["deprecatedCount", "count"],
];

function eventToCore(obj: KObject): KObject {
  const out: KObject = { apiVersion: "v1", kind: "Event", metadata: obj.metadata };
  rename(obj, out, EVENT_FIELDS);
  return out;
}

function eventFromCore(obj: KObject): KObject {
  const out: KObject = { apiVersion: "events.k8s.io/v1", kind: "Event", metadata: obj.metadata };
  rename(
    obj,
    out,
    EVENT_FIELDS.map(([a, b]) => [b, a]),
  );
  // Upstream's conversion leaves an empty involvedObject as an empty regarding.
  out.regarding ??= {};
  return out;
}

/** The fields autoscaling/v1 and v2 HPAs have alike. */
const same = (...names: string[]): Array<[string, string]> => names.map((n) => [n, n]);
const HPA_SPEC_FIELDS = same("scaleTargetRef", "minReplicas", "maxReplicas");
const HPA_STATUS_FIELDS = same(
  "observedGeneration",
  "lastScaleTime",
  "currentReplicas",
  "desiredReplicas",
);

const HPA_METRICS = "autoscaling.alpha.kubernetes.io/metrics";
const HPA_CURRENT_METRICS = "autoscaling.alpha.kubernetes.io/current-metrics";
const HPA_CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions";
const HPA_BEHAVIOR = "autoscaling.alpha.kubernetes.io/behavior";

function isCPUUtilization(m: Obj, key: "target" | "current"): boolean {
  const resource = m.resource as Obj | undefined;
  const value = resource?.[key] as Obj | undefined;
  return (
    m.type === "Resource" &&
    resource?.name === "cpu" &&
    value?.averageUtilization !== undefined &&
    (key === "current" || value.type === "Utilization")
  );
}

function annotationJSON(annotations: Record<string, string>, key: string): unknown[] | undefined {
  const raw = annotations[key];
  delete annotations[key];
  if (raw === undefined) return undefined;
  try {
    const v = JSON.parse(raw) as unknown;
    return Array.isArray(v) ? v : v && typeof v === "object" ? [v] : undefined;
  } catch {
    return undefined;
  }
}

/** autoscaling/v1 to v2: the CPU target becomes a metric; the rest comes back from annotations. */
function hpaV1ToV2(obj: KObject): KObject {
  const meta = { ...(obj.metadata ?? {}) };
  const annotations = { ...((meta.annotations as Record<string, string> | undefined) ?? {}) };
  const spec = (obj.spec as Obj | undefined) ?? {};
  const status = obj.status as Obj | undefined;
  const outSpec: Obj = {};
  rename(spec, outSpec, HPA_SPEC_FIELDS);
  const metrics: unknown[] = [];
  if (spec.targetCPUUtilizationPercentage !== undefined) {
    metrics.push({
      type: "Resource",
      resource: {
        name: "cpu",
        target: { type: "Utilization", averageUtilization: spec.targetCPUUtilizationPercentage },
      },
    });
  }
  metrics.push(...(annotationJSON(annotations, HPA_METRICS) ?? []));
  if (metrics.length > 0) outSpec.metrics = metrics;
  const behavior = annotationJSON(annotations, HPA_BEHAVIOR);
  if (behavior?.[0]) outSpec.behavior = behavior[0];
  const out: KObject = { apiVersion: "autoscaling/v2", kind: "HorizontalPodAutoscaler" };
  const current = annotationJSON(annotations, HPA_CURRENT_METRICS);
  const conditions = annotationJSON(annotations, HPA_CONDITIONS);
  if (Object.keys(annotations).length > 0) meta.annotations = annotations;
  else delete meta.annotations;
  out.metadata = meta;
  out.spec = outSpec;
  if (status) {
    const outStatus: Obj = {};
    rename(status, outStatus, HPA_STATUS_FIELDS);
    const currentMetrics: unknown[] = [];
    if (status.currentCPUUtilizationPercentage !== undefined) {
      currentMetrics.push({
        type: "Resource",
        resource: {
          name: "cpu",
          current: { averageUtilization: status.currentCPUUtilizationPercentage },
        },
      });
    }
    currentMetrics.push(...(current ?? []));
    if (currentMetrics.length > 0) outStatus.currentMetrics = currentMetrics;
    if (conditions) outStatus.conditions = conditions;
    out.status = outStatus;
  }
  return out;
}

/** autoscaling/v2 to v1: the CPU utilization target stays a field; the rest goes to annotations. */
function hpaV2ToV1(obj: KObject): KObject {
  const meta = { ...(obj.metadata ?? {}) };
  const annotations = { ...((meta.annotations as Record<string, string> | undefined) ?? {}) };
  const spec = (obj.spec as Obj | undefined) ?? {};
  const status = obj.status as Obj | undefined;
  const outSpec: Obj = {};
  rename(spec, outSpec, HPA_SPEC_FIELDS);
  const others: unknown[] = [];
  for (const m of (spec.metrics as Obj[] | undefined) ?? []) {
    if (outSpec.targetCPUUtilizationPercentage === undefined && isCPUUtilization(m, "target")) {
      outSpec.targetCPUUtilizationPercentage = (
        (m.resource as Obj).target as Obj
      ).averageUtilization;
    } else others.push(m);
  }
  if (others.length > 0) annotations[HPA_METRICS] = JSON.stringify(others);
  if (spec.behavior !== undefined) annotations[HPA_BEHAVIOR] = JSON.stringify(spec.behavior);
  const out: KObject = { apiVersion: "autoscaling/v1", kind: "HorizontalPodAutoscaler" };
  out.spec = outSpec;
  if (status) {
    const outStatus: Obj = {};
    rename(status, outStatus, HPA_STATUS_FIELDS);
    const current: unknown[] = [];
    for (const m of (status.currentMetrics as Obj[] | undefined) ?? []) {
      if (
        outStatus.currentCPUUtilizationPercentage === undefined &&
        isCPUUtilization(m, "current")
      ) {
        outStatus.currentCPUUtilizationPercentage = (
          (m.resource as Obj).current as Obj
        ).averageUtilization;
      } else current.push(m);
    }
    if (current.length > 0) annotations[HPA_CURRENT_METRICS] = JSON.stringify(current);
    const conditions = status.conditions as unknown[] | undefined;
    if (conditions?.length) annotations[HPA_CONDITIONS] = JSON.stringify(conditions);
    out.status = outStatus;
  }
  if (Object.keys(annotations).length > 0) meta.annotations = annotations;
  out.metadata = meta;
  // apiVersion, kind, metadata first, as every stored and served object.
  return { apiVersion: out.apiVersion, kind: out.kind, metadata: out.metadata, ...out };
}

/** The conversion of a served group/version/resource, when it is stored in another version. */
export function conversionFor(
  group: string,
  version: string,
  resource: string,
): Conversion | undefined {
  if (group === "events.k8s.io" && resource === "events") {
    return { storageVersion: "v1", toStorage: eventToCore, fromStorage: eventFromCore };
  }
  if (group === "" && resource === "events") {
    return { storageVersion: "v1", toStorage: (o) => o, fromStorage: (o) => o };
  }
  if (group === "autoscaling" && resource === "horizontalpodautoscalers") {
    if (version === "v1") {
      return { storageVersion: "autoscaling/v2", toStorage: hpaV1ToV2, fromStorage: hpaV2ToV1 };
    }
    return { storageVersion: "autoscaling/v2", toStorage: (o) => o, fromStorage: (o) => o };
  }
  return undefined;
}

/**
 * What a stored object is in the version `apiVersion` serves: converted when it was stored in
 * another version (or by an older server in the served one's sibling).
 */
export function convertStored(
  obj: KObject,
  apiVersion: string,
  conversion: Conversion | undefined,
): KObject {
  if (!conversion || obj.apiVersion === apiVersion) return obj;
  // Stored in the storage version: convert to what is served. Stored in another served version
  // (written before conversion existed): through the storage version.
  let stored = obj;
  if (obj.apiVersion !== conversion.storageVersion) {
    const other = conversionForStored(obj.apiVersion, conversion);
    if (other) stored = other.toStorage(obj);
  }
  return conversion.fromStorage(stored);
}

function conversionForStored(
  apiVersion: string | undefined,
  conversion: Conversion,
): Conversion | undefined {
  if (apiVersion === "events.k8s.io/v1") return conversionFor("events.k8s.io", "v1", "events");
  if (apiVersion === "autoscaling/v1" && conversion.storageVersion === "autoscaling/v2")
    return conversionFor("autoscaling", "v1", "horizontalpodautoscalers");
  return undefined;
}
