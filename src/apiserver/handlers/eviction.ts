import { badRequest, isStatusError, StatusError } from "../../api/status.js";
import { formatTime } from "../../api/time.js";
import { send, negotiate, type Request, type Response } from "../http.js";
import { checkPreconditions, type Registry } from "../registry/store.js";
import type { KObject } from "../registry/types.js";
import { readRequestObject, type BodyDecoder } from "./resource.js";
import type { AdmissionHook } from "../admission/chain.js";
import { labelSelectorMatches } from "../auth/aggregation.js";

const EVICTION_REFUSED = "Cannot evict pod as it would violate the pod's disruption budget.";

interface PDBStatus {
  observedGeneration?: number;
  disruptionsAllowed?: number;
  currentHealthy?: number;
  desiredHealthy?: number;
  disruptedPods?: Record<string, string>;
}

function tooManyRequests(cause: string): StatusError {
  return new StatusError(429, "TooManyRequests", EVICTION_REFUSED, {
    causes: [{ reason: "DisruptionBudget", message: cause }],
  });
}

/**
 * The eviction subresource (`POST pods/NAME/eviction`, policy/v1 Eviction), as upstream's: a pod
 * that is not running (or already being deleted) is deleted at once; otherwise its one matching
 * PodDisruptionBudget must allow a disruption, which the eviction takes (status.disruptionsAllowed
 * down by one, the pod in status.disruptedPods) before deleting the pod. A budget that forbids it
 * is a 429, as upstream answers, so that clients (kubectl drain) retry.
 */
export async function handleEviction(
  req: Request,
  res: Response,
  namespace: string,
  name: string,
  pods: Registry,
  pdbs: Registry,
  decode: BodyDecoder,
  admission: AdmissionHook | undefined,
): Promise<void> {
  const eviction = await readRequestObject(req, decode, {
    apiVersion: "policy/v1",
    kind: "Eviction",
  });
  if (eviction.metadata?.name && eviction.metadata.name !== name) {
    throw badRequest(`name in URL does not match name in Eviction object`);
  }
  await admission?.validate(eviction, undefined);
  const deleteOptions = (eviction.deleteOptions ?? {}) as {
    gracePeriodSeconds?: number;
    preconditions?: { uid?: string; resourceVersion?: string };
    dryRun?: string[];
  };
  const dryRun = (deleteOptions.dryRun ?? []).includes("All");
  const pod = await pods.get(namespace, name);
  const phase = (pod.status as { phase?: string } | undefined)?.phase;
  const deleting = !!pod.metadata?.deletionTimestamp;
  const terminal = phase === "Succeeded" || phase === "Failed";
  /**
   * Upstream's addConditionAndDeletePod: the pod is marked DisruptionTarget first (not for a dry
   * run), then deleted; unless the pod is finished or going, the delete is conditional on the
   * version just written, so that a pod turning ready meanwhile is not evicted behind the
   * budget's back.
   */
  const remove = async (enforceVersion: boolean) => {
    const preconditions = { ...deleteOptions.preconditions };
    const callerVersion = preconditions.resourceVersion !== undefined;
    if (enforceVersion && !callerVersion)
      preconditions.resourceVersion = pod.metadata?.resourceVersion;
    if (!dryRun) {
      const marked = await pods.guaranteedUpdate(namespace, name, (latest) => {
        checkPreconditions(pods.gr, name, preconditions, latest.metadata ?? {});
        setDisruptionTarget(latest);
      });
      if (preconditions.resourceVersion !== undefined)
        preconditions.resourceVersion = marked.metadata?.resourceVersion;
    }
    await pods.delete(namespace, name, {
      dryRun,
      ...(deleteOptions.gracePeriodSeconds !== undefined
        ? { gracePeriodSeconds: deleteOptions.gracePeriodSeconds }
        : {}),
      ...(preconditions.uid || preconditions.resourceVersion ? { preconditions } : {}),
    });
    send(
      req,
      res,
      201,
      { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success" },
      negotiate(req.headers.accept).format,
    );
  };
  // Pods that do not run need no budget.
  if (deleting || terminal || phase === "Pending") return remove(!deleting && !terminal);
  const labels = (pod.metadata?.labels ?? {}) as Record<string, string>;
  const matching = (await pdbs.list(namespace)).items.filter((pdb) => {
    const selector = (pdb.spec as { selector?: object } | undefined)?.selector;
    return selector !== undefined && labelSelectorMatches(selector, labels);
  });
  if (matching.length > 1) {
    throw new StatusError(
      500,
      "InternalError",
      "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
    );
  }
  const pdb = matching[0];
  if (!pdb) return remove(false);
  const pdbName = pdb.metadata!.name!;
  // An unready pod does not count as healthy: evicting it takes nothing from the budget when the
  // policy says so (AlwaysAllow), or when the budget is met anyway (the default, IfHealthyBudget).
  if (!isPodReady(pod)) {
    const policy = (pdb.spec as { unhealthyPodEvictionPolicy?: string } | undefined)
      ?.unhealthyPodEvictionPolicy;
    const status = (pdb.status ?? {}) as PDBStatus;
    const desired = status.desiredHealthy ?? 0;
    if (policy === "AlwaysAllow" || ((status.currentHealthy ?? 0) >= desired && desired > 0))
      return remove(true);
  }
  const check = (current: KObject): PDBStatus => {
    const status = ((current.status as PDBStatus | undefined) ?? {}) as PDBStatus;
    if ((status.observedGeneration ?? 0) < (current.metadata?.generation ?? 0)) {
      throw tooManyRequests(
        `The disruption budget ${pdbName} is still being processed by the server.`,
      );
    }
    if ((status.disruptionsAllowed ?? 0) <= 0) {
      throw tooManyRequests(
        `The disruption budget ${pdbName} needs ${status.desiredHealthy ?? 0} healthy pods and has ${status.currentHealthy ?? 0} currently`,
      );
    }
    if (Object.keys(status.disruptedPods ?? {}).length > 2000) {
      throw tooManyRequests(
        "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
      );
    }
    return status;
  };
  try {
    if (dryRun) check(await pdbs.get(namespace, pdbName));
    else {
      await pdbs.guaranteedUpdate(namespace, pdbName, (current: KObject) => {
        const status = check(current);
        status.disruptionsAllowed = (status.disruptionsAllowed ?? 0) - 1;
        status.disruptedPods = { ...(status.disruptedPods ?? {}), [name]: formatTime() };
        current.status = status;
      });
    }
  } catch (err) {
    if (!isStatusError(err, "NotFound")) throw err;
  }
  return remove(false);
}

function isPodReady(pod: KObject): boolean {
  const conditions = (pod.status as { conditions?: PodCondition[] } | undefined)?.conditions;
  return conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

interface PodCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastProbeTime?: string | null;
  lastTransitionTime?: string;
}

/** Upstream's UpdatePodCondition with DisruptionTarget=True, EvictionByEvictionAPI. */
function setDisruptionTarget(pod: KObject): void {
  const status = (pod.status ??= {}) as { conditions?: PodCondition[] };
  const conditions = (status.conditions ??= []);
  const next: PodCondition = {
    type: "DisruptionTarget",
    status: "True",
    lastProbeTime: null,
    lastTransitionTime: formatTime(),
    reason: "EvictionByEvictionAPI",
    message: "Eviction API: evicting",
  };
  const i = conditions.findIndex((c) => c.type === "DisruptionTarget");
  if (i < 0) {
    conditions.push(next);
    return;
  }
  const old = conditions[i]!;
  if (old.status === next.status)
    next.lastTransitionTime = old.lastTransitionTime ?? next.lastTransitionTime;
  conditions[i] = next;
}
