/**
 * The small in-tree plugins: PrioritySort (queue order), SchedulingGates (PreEnqueue),
 * NodeUnschedulable, NodeName and DefaultBinder.
 */
import type { Pod } from "kubernetes-types/core/v1.js";
import {
  ActionType,
  QueueingHint,
  type BindPlugin,
  type ClusterEventWithHint,
  type EnqueueExtensions,
  type FilterPlugin,
  type PreEnqueuePlugin,
  type QueueSortPlugin,
  type QueuedPodInfo,
} from "../interface.js";
import { tolerationsTolerateTaint } from "../selectors.js";
import {
  Code,
  podPriority,
  Status,
  type CycleState,
  type NodeInfo,
  type PodInfo,
} from "../types.js";
import { asNode, asPod, sameUID } from "./helper.js";
import {
  DEFAULT_BINDER,
  NODE_NAME,
  NODE_UNSCHEDULABLE,
  PRIORITY_SORT,
  SCHEDULING_GATES,
} from "./names.js";

/** Higher priority first, then the pod queued earlier. */
export class PrioritySort implements QueueSortPlugin {
  readonly name = PRIORITY_SORT;
  less(a: QueuedPodInfo, b: QueuedPodInfo): boolean {
    const p1 = podPriority(a.podInfo.pod);
    const p2 = podPriority(b.podInfo.pod);
    return p1 > p2 || (p1 === p2 && a.timestamp < b.timestamp);
  }
}

/** Keeps pods with spec.schedulingGates out of the active queue. */
export class SchedulingGates implements PreEnqueuePlugin, EnqueueExtensions {
  readonly name = SCHEDULING_GATES;
  preEnqueue(pod: Pod): Status | null {
    const gates = pod.spec?.schedulingGates ?? [];
    if (gates.length === 0) return null;
    return new Status(Code.UnschedulableAndUnresolvable, [
      `waiting for scheduling gates: [${gates.map((g) => g.name).join(" ")}]`,
    ]);
  }
  eventsToRegister(): ClusterEventWithHint[] {
    return [
      {
        event: { resource: "Pod", actionType: ActionType.UpdatePodSchedulingGatesEliminated },
        hint: (pod, _old, newObj) => {
          const p = asPod(newObj);
          return sameUID(p, pod) && (p!.spec?.schedulingGates ?? []).length === 0
            ? QueueingHint.Queue
            : QueueingHint.QueueSkip;
        },
      },
    ];
  }
}

export const ERR_REASON_UNSCHEDULABLE = "node(s) were unschedulable";
export const TAINT_NODE_UNSCHEDULABLE = "node.kubernetes.io/unschedulable";

const toleratesUnschedulable = (pod: Pod): boolean =>
  tolerationsTolerateTaint(pod.spec?.tolerations, {
    key: TAINT_NODE_UNSCHEDULABLE,
    effect: "NoSchedule",
  });

/** Rejects nodes with spec.unschedulable unless the pod tolerates node.kubernetes.io/unschedulable. */
export class NodeUnschedulable implements FilterPlugin, EnqueueExtensions {
  readonly name = NODE_UNSCHEDULABLE;
  filter(_state: CycleState, pod: PodInfo, node: NodeInfo): Status | null {
    if (!node.unschedulable) return null;
    if (toleratesUnschedulable(pod.pod)) return null;
    return new Status(Code.UnschedulableAndUnresolvable, [ERR_REASON_UNSCHEDULABLE]);
  }
  eventsToRegister(): ClusterEventWithHint[] {
    return [
      {
        event: { resource: "Node", actionType: ActionType.Add | ActionType.UpdateNodeTaint },
        hint: (pod, oldObj, newObj) => {
          const before = asNode(oldObj);
          const after = asNode(newObj);
          if (!after) return QueueingHint.QueueSkip;
          if (after.spec?.unschedulable && !toleratesUnschedulable(pod))
            return QueueingHint.QueueSkip;
          if (!before || before.spec?.unschedulable) return QueueingHint.Queue;
          return QueueingHint.QueueSkip;
        },
      },
      {
        event: { resource: "Pod", actionType: ActionType.UpdatePodToleration },
        hint: (pod, _old, newObj) => {
          const p = asPod(newObj);
          return sameUID(p, pod) && toleratesUnschedulable(p!)
            ? QueueingHint.Queue
            : QueueingHint.QueueSkip;
        },
      },
    ];
  }
}

export const ERR_REASON_NODE_NAME = "node(s) didn't match the requested node name";

/** Rejects every node but spec.nodeName when the pod names one. */
export class NodeName implements FilterPlugin, EnqueueExtensions {
  readonly name = NODE_NAME;
  filter(_state: CycleState, pod: PodInfo, node: NodeInfo): Status | null {
    const want = pod.pod.spec?.nodeName;
    if (!want || want === node.name) return null;
    return new Status(Code.UnschedulableAndUnresolvable, [ERR_REASON_NODE_NAME]);
  }
  eventsToRegister(): ClusterEventWithHint[] {
    return [
      {
        event: { resource: "Node", actionType: ActionType.Add | ActionType.Update },
        hint: (pod, _old, newObj) => {
          const n = asNode(newObj);
          const want = pod.spec?.nodeName;
          return !want || n?.metadata?.name === want ? QueueingHint.Queue : QueueingHint.QueueSkip;
        },
      },
    ];
  }
}

/** Binds through the pods/binding subresource; the request itself is made by the caller. */
export class DefaultBinder implements BindPlugin {
  readonly name = DEFAULT_BINDER;
  readonly binds = true as const;
}
