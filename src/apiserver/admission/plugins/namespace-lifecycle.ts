import { forbidden, notFound } from "../../../api/status.js";
import type { AdmissionPlugin } from "../types.js";

/** Namespaces that always exist and cannot be deleted. */
const IMMORTAL = new Set(["default", "kube-system", "kube-public"]);

/**
 * NamespaceLifecycle: nothing is created in a namespace that does not exist or is being
 * terminated, and the system namespaces cannot be deleted.
 */
export const namespaceLifecycle: AdmissionPlugin = {
  name: "NamespaceLifecycle",
  async validate(a, ctx) {
    const gr = { group: a.group, resource: a.resource };
    if (a.operation === "DELETE" && a.group === "" && a.resource === "namespaces") {
      if (IMMORTAL.has(a.name)) throw forbidden(gr, a.name, "this namespace may not be deleted");
      return;
    }
    if (a.operation !== "CREATE" || !a.namespace) return;
    if (a.group === "" && a.resource === "namespaces") return;
    // The cache may not have seen a namespace created a moment ago: look in storage then.
    const ns =
      ctx.get("", "v1", "namespaces", "", a.namespace) ??
      (await ctx.fetch("", "v1", "namespaces", "", a.namespace));
    if (!ns) throw notFound({ group: "", resource: "namespaces" }, a.namespace);
    const phase = (ns.status as { phase?: string } | undefined)?.phase;
    if (ns.metadata?.deletionTimestamp || phase === "Terminating") {
      throw forbidden(
        gr,
        a.name,
        `unable to create new content in namespace ${a.namespace} because it is being terminated`,
      );
    }
  },
};
