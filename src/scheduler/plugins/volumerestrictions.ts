/**
 * VolumeRestrictions: in-line GCE PD, AWS EBS, iSCSI and RBD volumes that cannot be mounted by two
 * pods on one node (unless all mounts are read-only), and ReadWriteOncePod claims already in use.
 */
import type { Pod, Volume } from "kubernetes-types/core/v1.js";
import {
  ActionType,
  type ClusterEventWithHint,
  type EnqueueExtensions,
  type FilterPlugin,
  type Handle,
  type PreFilterOutcome,
  type PreFilterPlugin,
} from "../interface.js";
import {
  Code,
  Status,
  type CycleState,
  type NodeInfo,
  type PodInfo,
  type StateData,
} from "../types.js";
import { VOLUME_RESTRICTIONS } from "./names.js";

export const ERR_REASON_DISK_CONFLICT = "node(s) had no available disk";
export const ERR_REASON_RWOP_CONFLICT =
  "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode";

const PRE_FILTER_KEY = "PreFilter" + VOLUME_RESTRICTIONS;

class PreFilterState implements StateData {
  constructor(
    readonly rwopClaims: Set<string>,
    public conflictingPVCRefCount: number,
  ) {}
  clone(): StateData {
    return new PreFilterState(this.rwopClaims, this.conflictingPVCRefCount);
  }
  update(pod: Pod, delta: number): void {
    for (const v of pod.spec?.volumes ?? []) {
      const claim = v.persistentVolumeClaim?.claimName;
      if (claim && this.rwopClaims.has(`${pod.metadata?.namespace ?? ""}/${claim}`)) {
        this.conflictingPVCRefCount += delta;
      }
    }
  }
}

const needsCheck = (v: Volume): boolean =>
  v.gcePersistentDisk != null || v.awsElasticBlockStore != null || v.rbd != null || v.iscsi != null;

function overlap(a: string[] | undefined, b: string[] | undefined): boolean {
  const s = new Set(a ?? []);
  return (b ?? []).some((x) => s.has(x));
}

/** Whether `v` cannot be mounted alongside the volumes of `existing`. */
export function isVolumeConflict(v: Volume, existing: Pod): boolean {
  for (const e of existing.spec?.volumes ?? []) {
    if (v.gcePersistentDisk && e.gcePersistentDisk) {
      if (
        v.gcePersistentDisk.pdName === e.gcePersistentDisk.pdName &&
        !(v.gcePersistentDisk.readOnly && e.gcePersistentDisk.readOnly)
      ) {
        return true;
      }
    }
    if (v.awsElasticBlockStore && e.awsElasticBlockStore) {
      if (v.awsElasticBlockStore.volumeID === e.awsElasticBlockStore.volumeID) return true;
    }
    if (v.iscsi && e.iscsi) {
      if (v.iscsi.iqn === e.iscsi.iqn && !(v.iscsi.readOnly && e.iscsi.readOnly)) return true;
    }
    if (v.rbd && e.rbd) {
      if (
        overlap(v.rbd.monitors, e.rbd.monitors) &&
        (v.rbd.pool ?? "") === (e.rbd.pool ?? "") &&
        v.rbd.image === e.rbd.image &&
        !(v.rbd.readOnly && e.rbd.readOnly)
      ) {
        return true;
      }
    }
  }
  return false;
}

export class VolumeRestrictions implements PreFilterPlugin, FilterPlugin, EnqueueExtensions {
  readonly name = VOLUME_RESTRICTIONS;
  constructor(private readonly handle: Handle) {}

  preFilter(state: CycleState, pod: PodInfo): PreFilterOutcome | null {
    const volumes = pod.pod.spec?.volumes ?? [];
    const check = volumes.some(needsCheck);
    const snap = this.handle.snapshot();
    const rwop = new Set<string>();
    let conflicts = 0;
    for (const v of volumes) {
      const claim = v.persistentVolumeClaim?.claimName;
      if (!claim) continue;
      const pvc = snap.pvc(pod.namespace, claim);
      if (!pvc) {
        return {
          status: new Status(Code.UnschedulableAndUnresolvable, [
            `persistentvolumeclaim "${claim}" not found`,
          ]),
        };
      }
      if (!(pvc.spec?.accessModes ?? []).includes("ReadWriteOncePod")) continue;
      const key = `${pod.namespace}/${claim}`;
      rwop.add(key);
      if (snap.isPVCUsedByPods(key)) conflicts++;
    }
    if (!check && conflicts === 0) return { status: new Status(Code.Skip) };
    state.write(PRE_FILTER_KEY, new PreFilterState(rwop, conflicts));
    return null;
  }

  addPod(state: CycleState, _pod: PodInfo, toAdd: PodInfo): Status | null {
    state.read<PreFilterState>(PRE_FILTER_KEY)?.update(toAdd.pod, 1);
    return null;
  }

  removePod(state: CycleState, _pod: PodInfo, toRemove: PodInfo): Status | null {
    state.read<PreFilterState>(PRE_FILTER_KEY)?.update(toRemove.pod, -1);
    return null;
  }

  filter(state: CycleState, pod: PodInfo, node: NodeInfo): Status | null {
    for (const v of pod.pod.spec?.volumes ?? []) {
      if (!needsCheck(v)) continue;
      for (const ep of node.pods) {
        if (isVolumeConflict(v, ep.pod))
          return new Status(Code.Unschedulable, [ERR_REASON_DISK_CONFLICT]);
      }
    }
    const s = state.read<PreFilterState>(PRE_FILTER_KEY);
    if (s && s.conflictingPVCRefCount > 0) {
      return new Status(Code.UnschedulableAndUnresolvable, [ERR_REASON_RWOP_CONFLICT]);
    }
    return null;
  }

  eventsToRegister(): ClusterEventWithHint[] {
    return [
      { event: { resource: "Pod", actionType: ActionType.Delete } },
      {
        event: {
          resource: "PersistentVolumeClaim",
          actionType: ActionType.Add | ActionType.Update,
        },
      },
    ];
  }
}
