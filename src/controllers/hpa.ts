/**
 * The horizontal pod autoscaler controller (upstream's horizontalpodautoscaling), every 15 s
 * for each HorizontalPodAutoscaler (autoscaling/v2):
 *
 * - reads the `scale` subresource of the target (`AbleToScale` True `SucceededGetScale`, or
 *   False `FailedGetScale` with a `FailedGetScale` event);
 * - a target scaled to 0 (with minReplicas above 0) is left alone (`ScalingActive` False
 *   `ScalingDisabled`);
 * - a target outside [minReplicas, maxReplicas] is scaled to the nearest bound
 *   (`SuccessfulRescale` event, `AbleToScale` True `SucceededRescale`);
 * - otherwise the replica count comes from the metrics. k8ts serves no metrics API
 *   (metrics.k8s.io, custom.metrics.k8s.io, external.metrics.k8s.io), so every metric fails the
 *   way upstream's does without metrics-server: `ScalingActive` False with the metric's reason
 *   (`FailedGetResourceMetric`, ...), a warning event of that reason, and a
 *   `FailedComputeMetricsReplicas` warning; the target keeps its replicas.
 *
 * Computing replicas from metrics a metrics API returns is not done (no such API exists here);
 * a metrics API that answers is reported as a failed metric too.
 */

import type {
  HorizontalPodAutoscaler,
  HorizontalPodAutoscalerCondition,
  HorizontalPodAutoscalerStatus,
  MetricSpec,
  MetricStatus,
} from "kubernetes-types/autoscaling/v2.js";
import { findResourceByKind, resources } from "../api/resources.js";
import { isStatusError } from "../api/status.js";
import { controller } from "../client/controller.js";
import type { Client } from "../client/resources.js";
import type { EventRecorder } from "../client/events.js";
import { errorMessage, type ControllerDescriptor } from "./context.js";
import { nowTime, semanticEqual } from "./util.js";

/** --horizontal-pod-autoscaler-sync-period's default. */
export const HPA_SYNC_PERIOD = 15_000;

interface Scale {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; uid?: string };
  spec?: { replicas?: number };
  status?: { replicas?: number; selector?: string };
}

/** Upstream's setConditionInList: a changed status moves lastTransitionTime to now. */
export function setHPACondition(
  conditions: HorizontalPodAutoscalerCondition[] | undefined,
  type: string,
  status: string,
  reason: string,
  message: string,
  now: number,
): HorizontalPodAutoscalerCondition[] {
  const out = (conditions ?? []).map((c) => ({ ...c }));
  let c = out.find((x) => x.type === type);
  if (!c) {
    c = { type, status: "" };
    out.push(c);
  }
  if (c.status !== status) c.lastTransitionTime = nowTime(now);
  c.status = status;
  c.reason = reason;
  c.message = message;
  return out;
}

/** Where the replica count goes before metrics are asked (upstream's bounds). */
export function boundsDecision(
  currentReplicas: number,
  minReplicas: number,
  maxReplicas: number,
):
  | { type: "disabled" }
  | { type: "rescale"; desired: number; reason: string }
  | { type: "metrics" } {
  if (currentReplicas === 0 && minReplicas !== 0) return { type: "disabled" };
  if (currentReplicas > maxReplicas)
    return {
      type: "rescale",
      desired: maxReplicas,
      reason: "Current number of replicas above Spec.MaxReplicas",
    };
  if (currentReplicas < minReplicas)
    return {
      type: "rescale",
      desired: minReplicas,
      reason: "Current number of replicas below Spec.MinReplicas",
    };
  return { type: "metrics" };
}

/** The metrics of a spec, with autoscaling/v2's default (80% cpu utilization) when none. */
export function metricsOf(hpa: HorizontalPodAutoscaler): MetricSpec[] {
  const m = hpa.spec?.metrics;
  if (m && m.length > 0) return m;
  return [
    {
      type: "Resource",
      resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 80 } },
    },
  ];
}

/** How one metric failed: the condition reason, the event message, the wrapped error. */
export interface MetricFailure {
  reason: string;
  /** The metric's own error (the reason's event and the condition's message). */
  message: string;
  /** The error computeReplicasForMetric answers (wrapping `message`). */
  error: string;
}

/**
 * How a metric fails when its metrics API answered `fetchError` (upstream's messages for each
 * source type, as they read without metrics-server or a custom metrics adapter).
 */
export function metricFailure(spec: MetricSpec, fetchError: string): MetricFailure {
  switch (spec.type) {
    case "Resource": {
      const name = spec.resource?.name ?? "";
      const target = spec.resource?.target;
      let message: string;
      if (target?.averageValue !== undefined)
        message = `failed to get ${name} usage: unable to get metrics for resource ${name}: ${fetchError}`;
      else if (target?.averageUtilization === undefined)
        message =
          "invalid resource metric source: neither an average utilization target nor an average value (usage) target was set";
      else
        message = `failed to get ${name} utilization: unable to get metrics for resource ${name}: ${fetchError}`;
      return {
        reason: "FailedGetResourceMetric",
        message,
        error: `failed to get ${name} resource metric value: ${message}`,
      };
    }
    case "ContainerResource": {
      const name = spec.containerResource?.name ?? "";
      const target = spec.containerResource?.target;
      const what = target?.averageValue !== undefined ? "usage" : "utilization";
      const message = `failed to get ${name} ${what}: unable to get metrics for resource ${name}: ${fetchError}`;
      return {
        reason: "FailedGetContainerResourceMetric",
        message,
        error: `failed to get ${name} container metric value: ${message}`,
      };
    }
    case "Pods": {
      const message = `unable to get metric ${spec.pods?.metric.name ?? ""}: ${fetchError}`;
      return {
        reason: "FailedGetPodsMetric",
        message,
        error: `failed to get pods metric value: ${message}`,
      };
    }
    case "Object": {
      const message = `unable to get metric ${spec.object?.metric.name ?? ""}: ${fetchError}`;
      return {
        reason: "FailedGetObjectMetric",
        message,
        error: `failed to get object metric value: ${message}`,
      };
    }
    case "External": {
      const message = `unable to get external metric ${spec.external?.metric.name ?? ""}: ${fetchError}`;
      return {
        reason: "FailedGetExternalMetric",
        message,
        error: `failed to get external metric value: ${message}`,
      };
    }
    default: {
      const message = `unknown metric source type "${spec.type}"`;
      return { reason: "InvalidMetricSourceType", message, error: message };
    }
  }
}

/** The metrics API a metric source reads from, with the resource a missing API is named by. */
function metricsAPI(spec: MetricSpec): { path: string; gr: string; api: string } {
  switch (spec.type) {
    case "Resource":
    case "ContainerResource":
      return { path: "/apis/metrics.k8s.io/v1beta1", gr: "pods.metrics.k8s.io", api: "resource" };
    case "External":
      return {
        path: "/apis/external.metrics.k8s.io/v1beta1",
        gr: `${(spec.external?.metric.name ?? "").toLowerCase()}.external.metrics.k8s.io`,
        api: "external",
      };
    default:
      return {
        path: "/apis/custom.metrics.k8s.io/v1beta2",
        gr: "pods.custom.metrics.k8s.io",
        api: "custom",
      };
  }
}

/** Asks the metrics API of a metric; answers why no replica count can come of it. */
async function fetchMetricError(
  client: Client,
  spec: MetricSpec,
  namespace: string,
  selector: string,
): Promise<string> {
  const { path, gr, api } = metricsAPI(spec);
  const url =
    api === "resource"
      ? `${path}/namespaces/${encodeURIComponent(namespace)}/pods`
      : `${path}/namespaces/${encodeURIComponent(namespace)}/pods/*/${encodeURIComponent(
          spec.pods?.metric.name ?? spec.object?.metric.name ?? spec.external?.metric.name ?? "",
        )}`;
  try {
    const list = await client.rest.request<{ items?: unknown[] }>("GET", url, {
      query: { labelSelector: selector },
    });
    if ((list.items ?? []).length === 0) return `no metrics returned from ${api} metrics API`;
    return `unable to fetch metrics from ${api} metrics API: k8ts does not compute replicas from metrics`;
  } catch (err) {
    const why = isStatusError(err, "NotFound")
      ? `the server could not find the requested resource (get ${gr})`
      : errorMessage(err);
    return `unable to fetch metrics from ${api} metrics API: ${why}`;
  }
}

function targetResource(ref: { apiVersion?: string; kind: string }) {
  const slash = (ref.apiVersion ?? "").indexOf("/");
  const group = slash < 0 ? "" : ref.apiVersion!.slice(0, slash);
  const version = slash < 0 ? (ref.apiVersion ?? "") : ref.apiVersion!.slice(slash + 1);
  const info =
    findResourceByKind(group, version, ref.kind) ??
    resources.find((r) => r.group === group && r.kind === ref.kind);
  if (!info) throw new Error(`no matches for kind "${ref.kind}" in group "${group}"`);
  return info;
}

/** One reconcile of one autoscaler; answers the error upstream's reconcileAutoscaler returns. */
export async function reconcileAutoscaler(
  client: Client,
  recorder: EventRecorder,
  cached: HorizontalPodAutoscaler,
  now: () => number,
): Promise<string | undefined> {
  const hpa = structuredClone(cached);
  const original = structuredClone(hpa.status ?? {});
  const ns = hpa.metadata?.namespace ?? "";
  const spec = hpa.spec ?? { maxReplicas: 0, scaleTargetRef: { kind: "", name: "" } };
  const ref = spec.scaleTargetRef;
  const reference = `${ref.kind}/${ns}/${ref.name}`;
  const status = (): HorizontalPodAutoscalerStatus => (hpa.status ??= { desiredReplicas: 0 });
  const condition = (type: string, s: string, reason: string, message: string) => {
    status().conditions = setHPACondition(status().conditions, type, s, reason, message, now());
  };
  const updateStatusIfNeeded = async () => {
    if (semanticEqual(original, hpa.status)) return;
    try {
      await client.resource("autoscaling/v2/HorizontalPodAutoscaler", ns).updateStatus(hpa);
    } catch (err) {
      recorder.event(hpa, "Warning", "FailedUpdateStatus", errorMessage(err));
      throw new Error(
        `failed to update status for ${hpa.metadata?.name ?? ""}: ${errorMessage(err)}`,
      );
    }
  };
  const setStatus = (
    current: number,
    desired: number,
    metrics: MetricStatus[] | undefined,
    rescale: boolean,
  ) => {
    const s: HorizontalPodAutoscalerStatus = { currentReplicas: current, desiredReplicas: desired };
    if (hpa.status?.lastScaleTime) s.lastScaleTime = hpa.status.lastScaleTime;
    if (metrics && metrics.length > 0) s.currentMetrics = metrics;
    if (hpa.status?.conditions) s.conditions = hpa.status.conditions;
    if (rescale) s.lastScaleTime = nowTime(now());
    hpa.status = s;
  };

  let handle;
  let scale: Scale;
  try {
    handle = client.resourceFor(targetResource(ref), ns);
    scale = await handle.subresource<Scale>("GET", ref.name, "scale");
  } catch (err) {
    const msg = errorMessage(err);
    recorder.event(hpa, "Warning", "FailedGetScale", msg);
    condition(
      "AbleToScale",
      "False",
      "FailedGetScale",
      `the HPA controller was unable to get the target's current scale: ${msg}`,
    );
    await updateStatusIfNeeded();
    return `failed to query scale subresource for ${reference}: ${msg}`;
  }
  condition(
    "AbleToScale",
    "True",
    "SucceededGetScale",
    "the HPA controller was able to get the target's current scale",
  );
  const currentReplicas = scale.spec?.replicas ?? 0;
  const minReplicas = spec.minReplicas ?? 1;
  const decision = boundsDecision(currentReplicas, minReplicas, spec.maxReplicas);
  let desiredReplicas = 0;
  let rescaleReason = "";
  let rescale = true;
  let metricStatuses: MetricStatus[] | undefined;

  if (decision.type === "disabled") {
    rescale = false;
    condition(
      "ScalingActive",
      "False",
      "ScalingDisabled",
      "scaling is disabled since the replica count of the target is zero",
    );
  } else if (decision.type === "rescale") {
    desiredReplicas = decision.desired;
    rescaleReason = decision.reason;
  } else {
    const metrics = metricsOf(hpa);
    metricStatuses = metrics.map(() => ({ type: "" }) as MetricStatus);
    const selector = scale.status?.selector ?? "";
    let failure: MetricFailure | undefined;
    let err: string;
    if (!selector) {
      recorder.event(hpa, "Warning", "SelectorRequired", "selector is required");
      condition(
        "ScalingActive",
        "False",
        "InvalidSelector",
        "the HPA target's scale is missing a selector",
      );
      err = "selector is required";
    } else {
      let invalid = 0;
      for (const m of metrics) {
        const f = metricFailure(m, await fetchMetricError(client, m, ns, selector));
        recorder.event(hpa, "Warning", f.reason, f.message);
        failure ??= f;
        invalid++;
      }
      condition(
        "ScalingActive",
        "False",
        failure!.reason,
        `the HPA was unable to compute the replica count: ${failure!.message}`,
      );
      err = `invalid metrics (${invalid} invalid out of ${metrics.length}), first error is: ${failure!.error}`;
    }
    setStatus(currentReplicas, hpa.status?.desiredReplicas ?? 0, metricStatuses, false);
    try {
      await updateStatusIfNeeded();
    } catch {
      // reported with the event; the metrics error is the one to answer
    }
    recorder.event(hpa, "Warning", "FailedComputeMetricsReplicas", err);
    return `failed to compute desired number of replicas based on listed metrics for ${reference}: ${err}`;
  }

  if (rescale) {
    const next: Scale = { ...scale, spec: { ...scale.spec, replicas: desiredReplicas } };
    try {
      await handle.subresource("PUT", ref.name, "scale", next);
    } catch (e) {
      const msg = errorMessage(e);
      recorder.event(
        hpa,
        "Warning",
        "FailedRescale",
        `New size: ${desiredReplicas}; reason: ${rescaleReason}; error: ${msg}`,
      );
      condition(
        "AbleToScale",
        "False",
        "FailedUpdateScale",
        `the HPA controller was unable to update the target scale: ${msg}`,
      );
      setStatus(
        currentReplicas,
        hpa.status?.desiredReplicas ?? 0,
        hpa.status?.currentMetrics,
        false,
      );
      await updateStatusIfNeeded();
      return `failed to rescale ${reference}: ${msg}`;
    }
    condition(
      "AbleToScale",
      "True",
      "SucceededRescale",
      `the HPA controller was able to update the target scale to ${desiredReplicas}`,
    );
    recorder.event(
      hpa,
      "Normal",
      "SuccessfulRescale",
      `New size: ${desiredReplicas}; reason: ${rescaleReason}`,
    );
  } else {
    desiredReplicas = currentReplicas;
  }
  setStatus(currentReplicas, desiredReplicas, metricStatuses, rescale);
  await updateStatusIfNeeded();
  return undefined;
}

export interface HPAOptions {
  /** --horizontal-pod-autoscaler-sync-period (ms). */
  syncPeriod?: number;
}

export function newHPADescriptor(opts: HPAOptions = {}): ControllerDescriptor {
  return {
    name: "horizontalpodautoscaling",
    aliases: ["horizontal-pod-autoscaler-controller"],
    serviceAccount: "horizontal-pod-autoscaler",
    async start(ctx, signal) {
      const period = opts.syncPeriod ?? HPA_SYNC_PERIOD;
      const hpas = ctx.informers.informer("autoscaling/v2/HorizontalPodAutoscaler");
      const recorder = ctx.recorder("horizontal-pod-autoscaler");
      /** When each autoscaler was last reconciled, at which generation. */
      const last = new Map<string, { at: number; generation: number }>();
      const c = controller({
        name: "horizontalpodautoscaling",
        informers: ctx.informers,
        for: "autoscaling/v2/HorizontalPodAutoscaler",
        workers: ctx.options.concurrency.horizontalpodautoscaling ?? 5,
        clock: ctx.clock,
        reconcile: async ({ key, namespace, name }) => {
          const hpa = hpas.store.getByName(namespace, name);
          if (!hpa) {
            last.delete(key);
            return;
          }
          // Once per period (its own status writes come back as changes); a new or changed
          // spec at once.
          const now = ctx.clock.now();
          const generation = hpa.metadata?.generation ?? 0;
          const prev = last.get(key);
          if (prev && prev.generation === generation && now - prev.at < period)
            return { requeueAfter: period - (now - prev.at) };
          last.set(key, { at: now, generation });
          try {
            const err = await reconcileAutoscaler(ctx.client, recorder, hpa, () => ctx.clock.now());
            if (err) ctx.log.error(err);
          } catch (err) {
            ctx.log.error(errorMessage(err));
          }
          // Every autoscaler is looked at once per sync period, failed or not.
          return { requeueAfter: period };
        },
      });
      await c.start(signal);
    },
  };
}

export const hpaDescriptor = newHPADescriptor();
