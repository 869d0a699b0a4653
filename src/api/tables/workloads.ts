/** Table printers of the workload groups: apps, batch, autoscaling and policy. */

import type {
  ControllerRevision,
  DaemonSet,
  Deployment,
  ReplicaSet,
  StatefulSet,
} from "kubernetes-types/apps/v1.js";
import type { HorizontalPodAutoscaler as HPAv1, Scale } from "kubernetes-types/autoscaling/v1.js";
import type {
  HorizontalPodAutoscaler as HPAv2,
  MetricSpec,
  MetricStatus,
} from "kubernetes-types/autoscaling/v2.js";
import type { CronJob, Job } from "kubernetes-types/batch/v1.js";
import type { PodDisruptionBudget } from "kubernetes-types/policy/v1.js";
import { humanDuration, parseTimestamp, translateTimestampSince } from "./format.js";
import {
  ageColumn,
  column,
  containerColumns,
  formatLabels,
  formatLabelSelector,
  intOrString,
  labelSelectorString,
  layoutContainers,
  nameColumn,
  printBoolPtr,
  quantityOrNil,
  table,
  wide,
} from "./cells.js";
import type { TableDef } from "./types.js";

const age = (obj: { metadata?: { creationTimestamp?: string } }, now: Date): string =>
  translateTimestampSince(obj.metadata?.creationTimestamp, now);

const selectorColumn = () => column("Selector", "string", "Label selector of the pods.", wide);

const deployment = table<Deployment>(
  [
    nameColumn(),
    column("Ready", "string", "Ready pods out of desired pods."),
    column("Up-to-date", "string", "Pods updated to the latest template."),
    column("Available", "string", "Pods available to serve."),
    ageColumn(),
    ...containerColumns(),
    selectorColumn(),
  ],
  (d, now) => {
    const [names, images] = layoutContainers(d.spec?.template?.spec?.containers);
    return [
      d.metadata?.name,
      `${d.status?.readyReplicas ?? 0}/${d.spec?.replicas ?? 1}`,
      d.status?.updatedReplicas ?? 0,
      d.status?.availableReplicas ?? 0,
      age(d, now),
      names,
      images,
      labelSelectorString(d.spec?.selector) ?? "<invalid>",
    ];
  },
);

const replicaSet = table<ReplicaSet>(
  [
    nameColumn(),
    column("Desired", "integer", "Desired number of replicas."),
    column("Current", "integer", "Number of replicas that exist."),
    column("Ready", "integer", "Number of ready replicas."),
    ageColumn(),
    ...containerColumns(),
    selectorColumn(),
  ],
  (rs, now) => {
    const [names, images] = layoutContainers(rs.spec?.template?.spec?.containers);
    return [
      rs.metadata?.name,
      rs.spec?.replicas ?? 1,
      rs.status?.replicas ?? 0,
      rs.status?.readyReplicas ?? 0,
      age(rs, now),
      names,
      images,
      formatLabelSelector(rs.spec?.selector),
    ];
  },
);

const daemonSet = table<DaemonSet>(
  [
    nameColumn(),
    column("Desired", "integer", "Nodes that should run the daemon pod."),
    column("Current", "integer", "Nodes running at least one daemon pod."),
    column("Ready", "integer", "Nodes with a ready daemon pod."),
    column("Up-to-date", "integer", "Nodes running the latest daemon pod."),
    column("Available", "integer", "Nodes with an available daemon pod."),
    column("Node Selector", "string", "Node selector of the daemon pods."),
    ageColumn(),
    ...containerColumns(),
    selectorColumn(),
  ],
  (ds, now) => {
    const [names, images] = layoutContainers(ds.spec?.template?.spec?.containers);
    const s = ds.status;
    return [
      ds.metadata?.name,
      s?.desiredNumberScheduled ?? 0,
      s?.currentNumberScheduled ?? 0,
      s?.numberReady ?? 0,
      s?.updatedNumberScheduled ?? 0,
      s?.numberAvailable ?? 0,
      formatLabels(ds.spec?.template?.spec?.nodeSelector),
      age(ds, now),
      names,
      images,
      formatLabelSelector(ds.spec?.selector),
    ];
  },
);

const statefulSet = table<StatefulSet>(
  [
    nameColumn(),
    column("Ready", "string", "Ready pods out of desired pods."),
    ageColumn(),
    ...containerColumns(),
  ],
  (sts, now) => {
    const [names, images] = layoutContainers(sts.spec?.template?.spec?.containers);
    return [
      sts.metadata?.name,
      `${sts.status?.readyReplicas ?? 0}/${sts.spec?.replicas ?? 1}`,
      age(sts, now),
      names,
      images,
    ];
  },
);

/** `kind.group/name` (lower-cased kind and group) of the object's controller, or "<none>". */
function controllerName(obj: ControllerRevision): string {
  const ref = (obj.metadata?.ownerReferences ?? []).find((r) => r.controller === true);
  if (!ref) return "<none>";
  const slash = ref.apiVersion.indexOf("/");
  const group = slash < 0 ? "" : ref.apiVersion.slice(0, slash);
  if (group === "" && ref.kind === "") return ref.name;
  const groupKind = group === "" ? ref.kind : `${ref.kind}.${group}`;
  return `${groupKind.toLowerCase()}/${ref.name}`;
}

const controllerRevision = table<ControllerRevision>(
  [
    nameColumn(),
    column("Controller", "string", "Controller that owns the revision."),
    column("Revision", "string", "Revision number."),
    ageColumn(),
  ],
  (cr, now) => [cr.metadata?.name, controllerName(cr), cr.revision, age(cr, now)],
);

function jobConditionTrue(job: Job, type: string): boolean {
  for (const c of job.status?.conditions ?? []) {
    if (c.type === type) return c.status === "True";
  }
  return false;
}

const job = table<Job>(
  [
    nameColumn(),
    column("Status", "string", "Status of the job."),
    column("Completions", "string", "Succeeded pods out of the completions wanted."),
    column("Duration", "string", "Time the job took, or has been running."),
    ageColumn(),
    ...containerColumns(),
    selectorColumn(),
  ],
  (j, now) => {
    const succeeded = j.status?.succeeded ?? 0;
    let completions: string;
    const wanted = j.spec?.completions ?? (j.spec?.parallelism == null ? 1 : undefined);
    if (wanted != null) {
      completions = `${succeeded}/${wanted}`;
    } else {
      const parallelism = j.spec?.parallelism ?? 0;
      completions = parallelism > 1 ? `${succeeded}/1 of ${parallelism}` : `${succeeded}/1`;
    }
    const start = parseTimestamp(j.status?.startTime);
    const completion = parseTimestamp(j.status?.completionTime);
    let duration = "";
    if (start !== undefined) {
      duration = humanDuration((completion ?? now.getTime()) - start);
    }
    let status = "Running";
    if (jobConditionTrue(j, "Complete")) status = "Complete";
    else if (jobConditionTrue(j, "Failed")) status = "Failed";
    else if (j.metadata?.deletionTimestamp) status = "Terminating";
    else if (jobConditionTrue(j, "Suspended")) status = "Suspended";
    else if (jobConditionTrue(j, "FailureTarget")) status = "FailureTarget";
    const [names, images] = layoutContainers(j.spec?.template?.spec?.containers);
    return [
      j.metadata?.name,
      status,
      completions,
      duration,
      age(j, now),
      names,
      images,
      formatLabelSelector(j.spec?.selector),
    ];
  },
);

const cronJob = table<CronJob>(
  [
    nameColumn(),
    column("Schedule", "string", "Cron schedule of the jobs."),
    column("Timezone", "string", "Time zone of the schedule."),
    column("Suspend", "boolean", "Whether new runs are suspended."),
    column("Active", "integer", "Number of running jobs."),
    column("Last Schedule", "string", "Time since a job was last scheduled."),
    ageColumn(),
    ...containerColumns(),
    selectorColumn(),
  ],
  (cj, now) => {
    const jobSpec = cj.spec?.jobTemplate?.spec;
    const [names, images] = layoutContainers(jobSpec?.template?.spec?.containers);
    const last = cj.status?.lastScheduleTime;
    return [
      cj.metadata?.name,
      cj.spec?.schedule ?? "",
      cj.spec?.timeZone ?? "<none>",
      printBoolPtr(cj.spec?.suspend ?? false),
      cj.status?.active?.length ?? 0,
      last ? translateTimestampSince(last, now) : "<none>",
      age(cj, now),
      names,
      images,
      formatLabelSelector(jobSpec?.selector),
    ];
  },
);

/** The default metric of an autoscaler that names none: 80% average CPU utilization. */
const DEFAULT_METRICS: MetricSpec[] = [
  {
    type: "Resource",
    resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 80 } },
  },
];

/** Spec and status metrics of an autoscaler in either autoscaling/v1 or autoscaling/v2 form. */
function hpaMetrics(hpa: HPAv1 | HPAv2): { specs: MetricSpec[]; statuses: MetricStatus[] } {
  const v1 = hpa as HPAv1;
  const v2 = hpa as HPAv2;
  const isV1 =
    v1.spec?.targetCPUUtilizationPercentage !== undefined ||
    v1.status?.currentCPUUtilizationPercentage !== undefined;
  if (!isV1) {
    const specs = v2.spec?.metrics?.length ? v2.spec.metrics : DEFAULT_METRICS;
    return { specs, statuses: v2.status?.currentMetrics ?? [] };
  }
  const target = v1.spec?.targetCPUUtilizationPercentage ?? 80;
  const specs: MetricSpec[] = [
    {
      type: "Resource",
      resource: { name: "cpu", target: { type: "Utilization", averageUtilization: target } },
    },
  ];
  const current = v1.status?.currentCPUUtilizationPercentage;
  const statuses: MetricStatus[] =
    current === undefined
      ? []
      : [{ type: "Resource", resource: { name: "cpu", current: { averageUtilization: current } } }];
  return { specs, statuses };
}

/** The TARGETS cell: "current/target" per metric, the first two then " + N more...". */
export function formatHPAMetrics(specs: MetricSpec[], statuses: MetricStatus[]): string {
  if (specs.length === 0) return "<none>";
  const list: string[] = [];
  specs.forEach((spec, i) => {
    const st = statuses[i];
    switch (spec.type) {
      case "External": {
        const target = spec.external?.target;
        if (target?.averageValue !== undefined) {
          const cur = st?.external?.current?.averageValue;
          list.push(`${cur ?? "<unknown>"}/${target.averageValue} (avg)`);
        } else {
          const cur = st?.external ? quantityOrNil(st.external.current?.value) : "<unknown>";
          list.push(`${cur}/${quantityOrNil(target?.value)}`);
        }
        break;
      }
      case "Pods": {
        const cur = st?.pods ? quantityOrNil(st.pods.current?.averageValue) : "<unknown>";
        list.push(`${cur}/${quantityOrNil(spec.pods?.target?.averageValue)}`);
        break;
      }
      case "Object": {
        const target = spec.object?.target;
        if (target?.averageValue !== undefined) {
          const cur = st?.object?.current?.averageValue;
          list.push(`${cur ?? "<unknown>"}/${target.averageValue} (avg)`);
        } else {
          const cur = st?.object ? quantityOrNil(st.object.current?.value) : "<unknown>";
          list.push(`${cur}/${quantityOrNil(target?.value)}`);
        }
        break;
      }
      case "Resource":
      case "ContainerResource": {
        const source = spec.type === "Resource" ? spec.resource : spec.containerResource;
        const status = spec.type === "Resource" ? st?.resource : st?.containerResource;
        const name = source?.name ?? "";
        const target = source?.target;
        if (target?.averageValue !== undefined) {
          const cur = status ? quantityOrNil(status.current?.averageValue) : "<unknown>";
          list.push(`${name}: ${cur}/${target.averageValue}`);
        } else {
          const util = status?.current?.averageUtilization;
          const cur = util === undefined ? "<unknown>" : `${util}%`;
          const want =
            target?.averageUtilization === undefined ? "<auto>" : `${target.averageUtilization}%`;
          list.push(`${name}: ${cur}/${want}`);
        }
        break;
      }
      default:
        list.push("<unknown type>");
    }
  });
  const max = 2;
  if (list.length > max) return `${list.slice(0, max).join(", ")} + ${list.length - max} more...`;
  return list.join(", ");
}

const horizontalPodAutoscaler = table<HPAv1 | HPAv2>(
  [
    nameColumn(),
    column("Reference", "string", "Kind and name of the scaled object."),
    column("Targets", "string", "Current and target values of the metrics."),
    column("MinPods", "string", "Lower limit of replicas."),
    column("MaxPods", "string", "Upper limit of replicas."),
    column("Replicas", "string", "Current number of replicas."),
    ageColumn(),
  ],
  (hpa, now) => {
    const { specs, statuses } = hpaMetrics(hpa);
    const ref = hpa.spec?.scaleTargetRef;
    return [
      hpa.metadata?.name,
      `${ref?.kind ?? ""}/${ref?.name ?? ""}`,
      formatHPAMetrics(specs, statuses),
      String(hpa.spec?.minReplicas ?? 1),
      hpa.spec?.maxReplicas ?? 0,
      hpa.status?.currentReplicas ?? 0,
      age(hpa, now),
    ];
  },
);

const scale = table<Scale>(
  [
    column("Name", "string", "Name of the scaled object."),
    column("Desired", "integer", "Desired number of replicas."),
    column("Available", "integer", "Number of replicas that exist."),
    ageColumn(),
  ],
  (s, now) => [s.metadata?.name, s.spec?.replicas ?? 0, s.status?.replicas ?? 0, age(s, now)],
);

const podDisruptionBudget = table<PodDisruptionBudget>(
  [
    nameColumn(),
    column("Min Available", "string", "Pods that must stay available."),
    column("Max Unavailable", "string", "Pods that may be unavailable."),
    column("Allowed Disruptions", "integer", "Pods that may be disrupted now."),
    ageColumn(),
  ],
  (pdb, now) => {
    const min = pdb.spec?.minAvailable;
    const max = pdb.spec?.maxUnavailable;
    return [
      pdb.metadata?.name,
      min === undefined ? "N/A" : intOrString(min),
      max === undefined ? "N/A" : intOrString(max),
      pdb.status?.disruptionsAllowed ?? 0,
      age(pdb, now),
    ];
  },
);

export const appsPrinters: Record<string, TableDef> = {
  Deployment: deployment,
  ReplicaSet: replicaSet,
  DaemonSet: daemonSet,
  StatefulSet: statefulSet,
  ControllerRevision: controllerRevision,
};

export const batchPrinters: Record<string, TableDef> = { Job: job, CronJob: cronJob };

export const autoscalingPrinters: Record<string, TableDef> = {
  HorizontalPodAutoscaler: horizontalPodAutoscaler,
  Scale: scale,
};

export const policyPrinters: Record<string, TableDef> = {
  PodDisruptionBudget: podDisruptionBudget,
};
