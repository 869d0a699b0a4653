/**
 * DefaultTolerationSeconds: a pod that does not tolerate the node.kubernetes.io/not-ready or
 * node.kubernetes.io/unreachable NoExecute taints gets a toleration of each for 300 seconds
 * (kube-apiserver's --default-not-ready-toleration-seconds and
 * --default-unreachable-toleration-seconds), so that its pods move away from a lost node after
 * five minutes. As upstream's plugin, on create and update of pods proper.
 */
import type { Toleration } from "kubernetes-types/core/v1.js";
import { badRequest } from "../../../api/status.js";
import type { AdmissionPlugin } from "../types.js";
import { asPod, isResource, podSpec } from "./util.js";

export const TAINT_NODE_NOT_READY = "node.kubernetes.io/not-ready";
export const TAINT_NODE_UNREACHABLE = "node.kubernetes.io/unreachable";

export interface DefaultTolerationSecondsOptions {
  notReadySeconds?: number;
  unreachableSeconds?: number;
}

export function defaultTolerationSeconds(
  opts: DefaultTolerationSecondsOptions = {},
): AdmissionPlugin {
  const notReady = opts.notReadySeconds ?? 300;
  const unreachable = opts.unreachableSeconds ?? 300;
  return {
    name: "DefaultTolerationSeconds",
    admit(a) {
      if (a.operation !== "CREATE" && a.operation !== "UPDATE") return;
      if (!isResource(a, "", "pods") || a.subresource !== "") return;
      if (!a.object || a.object.kind !== "Pod") {
        throw badRequest(`expected *api.Pod but got ${a.object?.kind ?? "nil"}`);
      }
      const spec = podSpec(asPod(a.object));
      const tolerations = spec.tolerations ?? [];
      const tolerates = (key: string) =>
        tolerations.some(
          (t) => (t.key === key || !t.key) && (t.effect === "NoExecute" || !t.effect),
        );
      const added: Toleration[] = [];
      if (!tolerates(TAINT_NODE_NOT_READY)) {
        added.push({
          key: TAINT_NODE_NOT_READY,
          operator: "Exists",
          effect: "NoExecute",
          tolerationSeconds: notReady,
        });
      }
      if (!tolerates(TAINT_NODE_UNREACHABLE)) {
        added.push({
          key: TAINT_NODE_UNREACHABLE,
          operator: "Exists",
          effect: "NoExecute",
          tolerationSeconds: unreachable,
        });
      }
      if (added.length > 0) spec.tolerations = [...tolerations, ...added];
    },
  };
}
