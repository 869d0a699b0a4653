/**
 * Priority: a pod's spec.priorityClassName becomes its spec.priority (and preemptionPolicy) from
 * the PriorityClass of that name; a pod that names none gets the global default class (the one
 * with globalDefault, the lowest of several), or priority 0 when there is none. A pod may not set
 * a priority that differs from its class's, and may not name a class that does not exist.
 * PriorityClasses: only one may be the global default. The two system classes always exist
 * (`bootstrapPriorityClasses`, which the API server creates at start). As upstream 1.32.
 */
import { badRequest } from "../../../api/status.js";
import type { KObject } from "../../registry/types.js";
import type { AdmissionAttributes, AdmissionContext, AdmissionPlugin } from "../types.js";
import { admissionForbidden, asPod, isResource, podSpec } from "./util.js";

export const SYSTEM_NODE_CRITICAL = "system-node-critical";
export const SYSTEM_CLUSTER_CRITICAL = "system-cluster-critical";

interface PriorityClass extends KObject {
  value?: number;
  globalDefault?: boolean;
  preemptionPolicy?: string;
  description?: string;
}

/** The system PriorityClasses kube-apiserver creates at start, as it defines them. */
export function bootstrapPriorityClasses(): KObject[] {
  return [
    {
      apiVersion: "scheduling.k8s.io/v1",
      kind: "PriorityClass",
      metadata: { name: SYSTEM_NODE_CRITICAL },
      value: 2000001000,
      description: "Used for system critical pods that must not be moved from their current node.",
    },
    {
      apiVersion: "scheduling.k8s.io/v1",
      kind: "PriorityClass",
      metadata: { name: SYSTEM_CLUSTER_CRITICAL },
      value: 2000000000,
      description:
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    },
  ];
}

function priorityClasses(ctx: AdmissionContext): PriorityClass[] {
  return ctx.list("scheduling.k8s.io", "v1", "priorityclasses", "") as PriorityClass[];
}

/** The class a pod names: the cached or stored one, or a system class as bootstrapped. */
async function findClass(ctx: AdmissionContext, name: string): Promise<PriorityClass | undefined> {
  const found =
    ctx.get("scheduling.k8s.io", "v1", "priorityclasses", "", name) ??
    (await ctx.fetch("scheduling.k8s.io", "v1", "priorityclasses", "", name));
  if (found) return found as PriorityClass;
  return bootstrapPriorityClasses().find((c) => c.metadata?.name === name) as
    PriorityClass | undefined;
}

/** The global default class: the lowest-valued of those marked (several may race in). */
function defaultClass(ctx: AdmissionContext): PriorityClass | undefined {
  let best: PriorityClass | undefined;
  for (const pc of priorityClasses(ctx)) {
    if (pc.globalDefault === true && (!best || (best.value ?? 0) > (pc.value ?? 0))) best = pc;
  }
  return best;
}

async function admitPod(a: AdmissionAttributes, ctx: AdmissionContext): Promise<void> {
  if (!a.object || a.object.kind !== "Pod") {
    throw badRequest("resource was marked with kind Pod but was unable to be converted");
  }
  const spec = podSpec(asPod(a.object));
  if (a.operation === "UPDATE") {
    // The priority was set on create; an update that leaves it out keeps it.
    const old = a.oldObject ? podSpec(asPod(a.oldObject)) : undefined;
    if (spec.priority === undefined && old?.priority !== undefined) spec.priority = old.priority;
    if (spec.preemptionPolicy === undefined && old?.preemptionPolicy !== undefined) {
      spec.preemptionPolicy = old.preemptionPolicy;
    }
    return;
  }
  let priority: number;
  let preemptionPolicy: string | undefined;
  if (!spec.priorityClassName) {
    const def = defaultClass(ctx);
    if (def) {
      spec.priorityClassName = def.metadata!.name!;
      priority = def.value ?? 0;
      preemptionPolicy = def.preemptionPolicy;
    } else {
      priority = 0;
      preemptionPolicy = "PreemptLowerPriority";
    }
  } else {
    const pc = await findClass(ctx, spec.priorityClassName);
    if (!pc) {
      throw admissionForbidden(a, `no PriorityClass with name ${spec.priorityClassName} was found`);
    }
    priority = pc.value ?? 0;
    preemptionPolicy = pc.preemptionPolicy ?? "PreemptLowerPriority";
  }
  if (typeof spec.priority === "number" && spec.priority !== priority) {
    throw admissionForbidden(
      a,
      `the integer value of priority (${spec.priority}) must not be provided in pod spec; priority admission controller computed ${priority} from the given PriorityClass name`,
    );
  }
  spec.priority = priority;
  if (preemptionPolicy !== undefined) {
    if (spec.preemptionPolicy && spec.preemptionPolicy !== preemptionPolicy) {
      throw admissionForbidden(
        a,
        `the string value of PreemptionPolicy (${spec.preemptionPolicy}) must not be provided in pod spec; priority admission controller computed ${preemptionPolicy} from the given PriorityClass name`,
      );
    }
    spec.preemptionPolicy = preemptionPolicy;
  }
}

export const priority: AdmissionPlugin = {
  name: "Priority",
  async admit(a, ctx) {
    if (a.subresource !== "" || !isResource(a, "", "pods")) return;
    if (a.operation === "CREATE" || a.operation === "UPDATE") await admitPod(a, ctx);
  },
  validate(a, ctx) {
    if (a.subresource !== "" || !isResource(a, "scheduling.k8s.io", "priorityclasses")) return;
    if (a.operation !== "CREATE" && a.operation !== "UPDATE") return;
    const pc = a.object as PriorityClass | undefined;
    if (!pc || pc.globalDefault !== true) return;
    const def = defaultClass(ctx);
    if (!def) return;
    if (a.operation === "CREATE" || def.metadata?.name !== pc.metadata?.name) {
      throw admissionForbidden(
        a,
        `PriorityClass ${def.metadata?.name ?? ""} is already marked as default. Only one default can exist`,
      );
    }
  },
};
