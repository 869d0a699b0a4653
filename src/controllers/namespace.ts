/**
 * The namespace controller: a namespace marked for deletion (phase Terminating, the `kubernetes`
 * finalizer in spec.finalizers) has its content deleted, resource by resource (deletecollection,
 * else one by one), with upstream's five status conditions reporting how far it got; once
 * nothing remains, the `kubernetes` finalizer is removed through `/finalize` and the API server
 * deletes the namespace.
 *
 * Waiting: content with finalizers of its own (the garbage collector's, say) is looked at again
 * after 15 s, pods that are still terminating after their grace period; anything else that
 * remains is an error, retried with the queue's backoff (as upstream's namespaced resources
 * deleter).
 */

import type { Namespace, NamespaceCondition } from "kubernetes-types/core/v1.js";
import { preferredVersions, resources, type ResourceInfo } from "../api/resources.js";
import { isStatusError } from "../api/status.js";
import { controller } from "../client/controller.js";
import type { KObject } from "../client/kinds.js";
import type { Client } from "../client/resources.js";
import type { ControllerContext, ControllerDescriptor } from "./context.js";
import { errorMessage } from "./context.js";
import { nowTime } from "./util.js";

export const FINALIZER_KUBERNETES = "kubernetes";
/** How long to wait for content whose own finalizers hold it. */
const FINALIZER_ESTIMATE_SECONDS = 15;

/** The namespaced resources that can be listed and deleted, one version per group. */
export function deletableNamespacedResources(): ResourceInfo[] {
  return resources.filter(
    (r) =>
      r.namespaced &&
      r.verbs.includes("list") &&
      (r.verbs.includes("delete") || r.verbs.includes("deletecollection")) &&
      (preferredVersions[r.group] ?? r.version) === r.version,
  );
}

export interface ResourceRemaining {
  /** `resource.group` as upstream prints it ("pods.", "deployments.apps"). */
  resource: string;
  count: number;
  finalizers: Record<string, number>;
}

/** The content conditions for what remains (and what failed), in upstream's words. */
export function contentConditions(
  remaining: ResourceRemaining[],
  failures: string[],
  discoveryError?: string,
): { type: string; status: "True" | "False"; reason: string; message: string }[] {
  const conds: { type: string; status: "True" | "False"; reason: string; message: string }[] = [];
  conds.push(
    discoveryError
      ? {
          type: "NamespaceDeletionDiscoveryFailure",
          status: "True",
          reason: "DiscoveryFailed",
          message: `Discovery failed for some groups: ${discoveryError}`,
        }
      : {
          type: "NamespaceDeletionDiscoveryFailure",
          status: "False",
          reason: "ResourcesDiscovered",
          message: "All resources successfully discovered",
        },
  );
  conds.push({
    type: "NamespaceDeletionGroupVersionParsingFailure",
    status: "False",
    reason: "ParsedGroupVersions",
    message: "All legacy kube types successfully parsed",
  });
  conds.push(
    failures.length
      ? {
          type: "NamespaceDeletionContentFailure",
          status: "True",
          reason: "ContentDeletionFailed",
          message: `Failed to delete all resource types, ${failures.length} remaining: ${failures.join(", ")}`,
        }
      : {
          type: "NamespaceDeletionContentFailure",
          status: "False",
          reason: "ContentDeleted",
          message: "All content successfully deleted, may be waiting on finalization",
        },
  );
  const left = remaining
    .filter((r) => r.count > 0)
    .sort((a, b) => a.resource.localeCompare(b.resource));
  conds.push(
    left.length
      ? {
          type: "NamespaceContentRemaining",
          status: "True",
          reason: "SomeResourcesRemain",
          message: `Some resources are remaining: ${left
            .map((r) => `${r.resource} has ${r.count} resource instances`)
            .join(", ")}`,
        }
      : {
          type: "NamespaceContentRemaining",
          status: "False",
          reason: "ContentRemoved",
          message: "All content successfully removed",
        },
  );
  const finalizers = new Map<string, number>();
  for (const r of remaining)
    for (const [f, n] of Object.entries(r.finalizers))
      finalizers.set(f, (finalizers.get(f) ?? 0) + n);
  const fl = [...finalizers].sort(([a], [b]) => a.localeCompare(b));
  conds.push(
    fl.length
      ? {
          type: "NamespaceFinalizersRemaining",
          status: "True",
          reason: "SomeFinalizersRemain",
          message: `Some content in the namespace has finalizers remaining: ${fl
            .map(([f, n]) => `${f} in ${n} resource instances`)
            .join(", ")}`,
        }
      : {
          type: "NamespaceFinalizersRemaining",
          status: "False",
          reason: "ContentHasNoFinalizers",
          message: "All content-preserving finalizers finished",
        },
  );
  return conds;
}

/** Sets conditions on a namespace status; answers whether anything changed. */
export function mergeConditions(
  ns: Namespace,
  conds: ReturnType<typeof contentConditions>,
  now: number,
): boolean {
  const status = (ns.status ??= {});
  const list: NamespaceCondition[] = [...(status.conditions ?? [])];
  let changed = false;
  for (const c of conds) {
    const i = list.findIndex((x) => x.type === c.type);
    const old = i >= 0 ? list[i] : undefined;
    if (old && old.status === c.status && old.reason === c.reason && old.message === c.message)
      continue;
    const next: NamespaceCondition = {
      ...c,
      lastTransitionTime: old && old.status === c.status ? old.lastTransitionTime : nowTime(now),
    };
    if (i >= 0) list[i] = next;
    else list.push(next);
    changed = true;
  }
  status.conditions = list;
  return changed;
}

/** Deletes one resource's content in `ns`; answers what remains and how long to wait for it. */
async function deleteContent(
  client: Client,
  info: ResourceInfo,
  ns: string,
): Promise<{ remaining: ResourceRemaining; estimate: number; error?: string }> {
  const rc = client.resourceFor(info, ns);
  const name = `${info.resource}.${info.group}`;
  try {
    if (info.verbs.includes("deletecollection")) await rc.deleteCollection({});
    else {
      const list = await rc.list();
      for (const item of list.items)
        await rc.delete(item.metadata!.name!).catch((err: unknown) => {
          if (!isStatusError(err, "NotFound")) throw err;
        });
    }
  } catch (err) {
    if (!isStatusError(err, "NotFound") && !isStatusError(err, "MethodNotAllowed"))
      return {
        remaining: { resource: name, count: 0, finalizers: {} },
        estimate: 0,
        error: `${name}: ${errorMessage(err)}`,
      };
  }
  const left = await rc.list();
  const finalizers: Record<string, number> = {};
  let estimate = 0;
  for (const item of left.items as (KObject & {
    spec?: { terminationGracePeriodSeconds?: number };
  })[]) {
    for (const f of item.metadata?.finalizers ?? []) finalizers[f] = (finalizers[f] ?? 0) + 1;
    if (info.resource === "pods" && info.group === "") {
      const grace =
        item.metadata?.deletionGracePeriodSeconds ?? item.spec?.terminationGracePeriodSeconds ?? 0;
      estimate = Math.max(estimate, grace);
    }
  }
  const remaining = { resource: name, count: left.items.length, finalizers };
  if (left.items.length === 0) return { remaining, estimate: 0 };
  if (estimate > 0) return { remaining, estimate };
  if (Object.keys(finalizers).length) return { remaining, estimate: FINALIZER_ESTIMATE_SECONDS };
  return {
    remaining,
    estimate: 0,
    error: `unexpected items still remain in namespace: ${ns} for gvr: ${info.group}/${info.version}, Resource=${info.resource}`,
  };
}

export const namespaceDescriptor: ControllerDescriptor = {
  name: "namespace",
  aliases: ["namespace-controller"],
  serviceAccount: "namespace-controller",
  async start(ctx: ControllerContext, signal) {
    const { client, informers, clock } = ctx;
    const namespaces = informers.informer("v1/Namespace");
    const nsClient = client.resource("v1/Namespace");
    const kinds = deletableNamespacedResources();
    const c = controller({
      name: "namespace",
      informers,
      for: "v1/Namespace",
      workers: ctx.options.concurrency.namespace ?? 10,
      clock,
      onError: (err, req) =>
        ctx.log.error(`deletion of namespace ${req.name} failed: ${errorMessage(err)}`),
      reconcile: async ({ name }) => {
        const cached = namespaces.store.get(name);
        if (!cached?.metadata?.deletionTimestamp) return;
        let ns: Namespace;
        try {
          ns = await nsClient.get(name);
        } catch (err) {
          if (isStatusError(err, "NotFound")) return;
          throw err;
        }
        if (!ns.metadata?.deletionTimestamp) return;
        if (!(ns.spec?.finalizers ?? []).includes(FINALIZER_KUBERNETES)) return;
        if (ns.status?.phase !== "Terminating") {
          ns.status = { ...ns.status, phase: "Terminating" };
          ns = await nsClient.updateStatus(ns);
        }
        const results = await Promise.all(kinds.map((k) => deleteContent(client, k, name)));
        const failures = results.flatMap((r) => (r.error ? [r.error] : []));
        const conds = contentConditions(
          results.map((r) => r.remaining),
          results.flatMap((r) => (r.error && r.remaining.count === 0 ? [r.error] : [])),
        );
        if (mergeConditions(ns, conds, clock.now())) {
          try {
            ns = await nsClient.updateStatus(ns);
          } catch (err) {
            if (isStatusError(err, "NotFound")) return;
            throw err;
          }
        }
        if (failures.length) throw new Error(failures.join("; "));
        const estimate = Math.max(0, ...results.map((r) => r.estimate));
        if (estimate > 0) return { requeueAfter: estimate * 1000 };
        // Nothing left: give up the `kubernetes` finalizer; the API server deletes the namespace.
        const finalizers = (ns.spec?.finalizers ?? []).filter((f) => f !== FINALIZER_KUBERNETES);
        try {
          await nsClient.rest.request("PUT", nsClient.path(undefined, name, "finalize"), {
            body: { ...ns, spec: { ...ns.spec, finalizers } },
          });
        } catch (err) {
          if (!isStatusError(err, "NotFound")) throw err;
        }
        return undefined;
      },
    });
    await c.start(signal);
  },
};
