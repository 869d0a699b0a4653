/**
 * TaintNodesByCondition: a node is created with the node.kubernetes.io/not-ready:NoSchedule
 * taint, so that nothing is scheduled onto it before the node lifecycle controller has seen it
 * ready (and removed the taint). As upstream's plugin.
 */
import type { Node } from "kubernetes-types/core/v1.js";
import type { AdmissionPlugin } from "../types.js";
import { admissionForbidden, isResource } from "./util.js";
import { TAINT_NODE_NOT_READY } from "./default-toleration-seconds.js";

export const taintNodesByCondition: AdmissionPlugin = {
  name: "TaintNodesByCondition",
  admit(a) {
    if (a.operation !== "CREATE" || !isResource(a, "", "nodes") || a.subresource !== "") return;
    if (!a.object || a.object.kind !== "Node") {
      throw admissionForbidden(a, `unexpected type ${a.object?.kind ?? "nil"}`);
    }
    const node = a.object as unknown as Node;
    const spec = (node.spec ??= {});
    const taints = spec.taints ?? [];
    if (taints.some((t) => t.key === TAINT_NODE_NOT_READY && t.effect === "NoSchedule")) return;
    spec.taints = [...taints, { key: TAINT_NODE_NOT_READY, effect: "NoSchedule" }];
  },
};
