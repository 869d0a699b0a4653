/** The in-tree plugins by name, each built from its (defaulted) args and the framework handle. */
import type { PluginFactory, Registry } from "../framework.js";
import { DefaultPreemption, type DefaultPreemptionArgs } from "./defaultpreemption.js";
import { ImageLocality } from "./imagelocality.js";
import { InterPodAffinity, type InterPodAffinityArgs } from "./interpodaffinity.js";
import * as names from "./names.js";
import { NodeAffinity, type NodeAffinityArgs } from "./nodeaffinity.js";
import { NodePorts } from "./nodeports.js";
import {
  DEFAULT_RESOURCE_SPEC,
  NodeResourcesBalancedAllocation,
  NodeResourcesFit,
  type NodeResourcesBalancedAllocationArgs,
  type NodeResourcesFitArgs,
} from "./noderesources.js";
import { PodTopologySpread, type PodTopologySpreadArgs } from "./podtopologyspread.js";
import {
  DefaultBinder,
  NodeName,
  NodeUnschedulable,
  PrioritySort,
  SchedulingGates,
} from "./simple.js";
import { TaintToleration } from "./tainttoleration.js";
import { VolumeRestrictions } from "./volumerestrictions.js";

export function inTreeRegistry(): Registry {
  const r = new Map<string, PluginFactory>();
  r.set(names.PRIORITY_SORT, () => new PrioritySort());
  r.set(names.SCHEDULING_GATES, () => new SchedulingGates());
  r.set(names.NODE_UNSCHEDULABLE, () => new NodeUnschedulable());
  r.set(names.NODE_NAME, () => new NodeName());
  r.set(names.TAINT_TOLERATION, () => new TaintToleration());
  r.set(names.NODE_AFFINITY, (args) => new NodeAffinity((args ?? {}) as NodeAffinityArgs));
  r.set(names.NODE_PORTS, () => new NodePorts());
  r.set(
    names.NODE_RESOURCES_FIT,
    (args) =>
      new NodeResourcesFit(
        (args as NodeResourcesFitArgs | undefined) ?? {
          scoringStrategy: { type: "LeastAllocated", resources: DEFAULT_RESOURCE_SPEC },
        },
      ),
  );
  r.set(
    names.NODE_RESOURCES_BALANCED_ALLOCATION,
    (args) =>
      new NodeResourcesBalancedAllocation(
        (args as NodeResourcesBalancedAllocationArgs | undefined) ?? {
          resources: DEFAULT_RESOURCE_SPEC,
        },
      ),
  );
  r.set(names.VOLUME_RESTRICTIONS, (_a, h) => new VolumeRestrictions(h));
  r.set(
    names.POD_TOPOLOGY_SPREAD,
    (args, h) => new PodTopologySpread((args ?? {}) as PodTopologySpreadArgs, h),
  );
  r.set(
    names.INTER_POD_AFFINITY,
    (args, h) => new InterPodAffinity((args ?? {}) as InterPodAffinityArgs, h),
  );
  r.set(names.IMAGE_LOCALITY, (_a, h) => new ImageLocality(h));
  r.set(
    names.DEFAULT_PREEMPTION,
    (args, h) => new DefaultPreemption((args ?? {}) as DefaultPreemptionArgs, h),
  );
  r.set(names.DEFAULT_BINDER, () => new DefaultBinder());
  return r;
}
