/** NodePorts: rejects nodes where a host port the pod asks for is already in use. */
import type { ContainerPort, Pod } from "kubernetes-types/core/v1.js";
import {
  ActionType,
  QueueingHint,
  type ClusterEventWithHint,
  type EnqueueExtensions,
  type FilterPlugin,
  type PreFilterOutcome,
  type PreFilterPlugin,
} from "../interface.js";
import {
  Code,
  HostPortInfo,
  Status,
  type CycleState,
  type NodeInfo,
  type PodInfo,
  type StateData,
} from "../types.js";
import { asPod } from "./helper.js";
import { NODE_PORTS } from "./names.js";

export const ERR_REASON_PORTS = "node(s) didn't have free ports for the requested pod ports";

const PRE_FILTER_KEY = "PreFilter" + NODE_PORTS;

class PreFilterState implements StateData {
  constructor(readonly ports: ContainerPort[]) {}
  clone(): StateData {
    return this;
  }
}

/** The container ports of a pod that ask for a host port. */
export function hostPorts(pod: Pod): ContainerPort[] {
  const out: ContainerPort[] = [];
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) if ((p.hostPort ?? 0) > 0) out.push(p);
  }
  return out;
}

export function fitsPorts(want: ContainerPort[], inUse: HostPortInfo): boolean {
  for (const p of want) if (inUse.checkConflict(p.hostIP, p.protocol, p.hostPort)) return false;
  return true;
}

export class NodePorts implements PreFilterPlugin, FilterPlugin, EnqueueExtensions {
  readonly name = NODE_PORTS;

  preFilter(state: CycleState, pod: PodInfo): PreFilterOutcome | null {
    const ports = hostPorts(pod.pod);
    if (ports.length === 0) return { status: new Status(Code.Skip) };
    state.write(PRE_FILTER_KEY, new PreFilterState(ports));
    return null;
  }

  filter(state: CycleState, pod: PodInfo, node: NodeInfo): Status | null {
    const ports = state.read<PreFilterState>(PRE_FILTER_KEY)?.ports ?? hostPorts(pod.pod);
    if (fitsPorts(ports, node.usedPorts)) return null;
    return new Status(Code.Unschedulable, [ERR_REASON_PORTS]);
  }

  eventsToRegister(): ClusterEventWithHint[] {
    return [
      {
        event: { resource: "Pod", actionType: ActionType.Delete },
        hint: (pod, oldObj) => {
          const deleted = asPod(oldObj);
          if (!deleted?.spec?.nodeName) return QueueingHint.QueueSkip;
          const used = new HostPortInfo();
          for (const p of hostPorts(deleted)) used.add(p.hostIP, p.protocol, p.hostPort);
          return fitsPorts(hostPorts(pod), used) ? QueueingHint.QueueSkip : QueueingHint.Queue;
        },
      },
      { event: { resource: "Node", actionType: ActionType.Add | ActionType.Update } },
    ];
  }
}
