/** The in-tree plugin names, as configuration files spell them. */
export const PRIORITY_SORT = "PrioritySort";
export const SCHEDULING_GATES = "SchedulingGates";
export const NODE_UNSCHEDULABLE = "NodeUnschedulable";
export const NODE_NAME = "NodeName";
export const TAINT_TOLERATION = "TaintToleration";
export const NODE_AFFINITY = "NodeAffinity";
export const NODE_PORTS = "NodePorts";
export const NODE_RESOURCES_FIT = "NodeResourcesFit";
export const NODE_RESOURCES_BALANCED_ALLOCATION = "NodeResourcesBalancedAllocation";
export const VOLUME_RESTRICTIONS = "VolumeRestrictions";
export const POD_TOPOLOGY_SPREAD = "PodTopologySpread";
export const INTER_POD_AFFINITY = "InterPodAffinity";
export const IMAGE_LOCALITY = "ImageLocality";
export const DEFAULT_PREEMPTION = "DefaultPreemption";
export const DEFAULT_BINDER = "DefaultBinder";
