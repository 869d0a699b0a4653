/**
 * The ReplicaSet controller, and the ReplicationController controller that shares its logic (as
 * upstream's replication manager wraps the ReplicaSet controller): keep `spec.replicas` active
 * pods matching the selector, each with the owner's controller reference.
 *
 * The pure core (`manageReplicas`, `calculateStatus`) decides from the owner and its pods what
 * to create or delete and what status to report. The wiring claims pods (adopting orphans,
 * releasing pods that stopped matching), creates in slow-start batches of 1, 2, 4, ... up to
 * 500 per sync, deletes the pods ranked first by `rankPodsForDeletion`, records upstream's events
 * (`SuccessfulCreate` "Created pod: x", `FailedCreate` "Error creating: ...", `SuccessfulDelete`)
 * and writes status with the `ReplicaFailure` condition. Expectations keep a sync from acting
 * again until the cache has seen its own creates and deletes.
 */

import type { Pod, PodTemplateSpec, ReplicationController } from "kubernetes-types/core/v1.js";
import type {
  ReplicaSet,
  ReplicaSetCondition,
  ReplicaSetStatus,
} from "kubernetes-types/apps/v1.js";
import type { LabelSelector, OwnerReference } from "kubernetes-types/meta/v1.js";
import { hasStatusCause, isStatusError } from "../api/status.js";
import { controller, type Controller } from "../client/controller.js";
import type { Informer } from "../client/informer.js";
import type { ResourceClient } from "../client/resources.js";
import { objectKey } from "../client/resources.js";
import type { ControllerContext, ControllerDescriptor } from "./context.js";
import { errorMessage } from "./context.js";
import { claim, podFromTemplate, rankPodsForDeletion } from "./podcontrol.js";
import {
  CONTROLLER_UID_INDEX,
  controllerRef,
  controllerUIDIndexFunc,
  Expectations,
  isPodActive,
  isPodAvailable,
  isPodReady,
  mapSelectorMatches,
  newControllerRef,
  nowTime,
  omitEmpty,
  selectorMatches,
  semanticEqual,
  slowStartBatch,
  watchOf,
} from "./util.js";

/** Most pods one sync creates or deletes (upstream's BurstReplicas). */
export const BURST_REPLICAS = 500;

/** A ReplicaSet or a ReplicationController, as far as this controller reads them. */
export interface ReplicatedObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ReplicaSet["metadata"];
  spec?: {
    replicas?: number;
    minReadySeconds?: number;
    selector?: LabelSelector | Record<string, string>;
    template?: PodTemplateSpec;
  };
  status?: ReplicaSetStatus;
}

export type ReplicaAction =
  { type: "none" } | { type: "create"; count: number } | { type: "delete"; pods: Pod[] };

/**
 * What a sync does with `active` (the owner's claimed active pods) to reach `replicas`: create
 * the missing ones or delete the surplus, at most `burst` at a time; the pods to delete are the
 * first of `rankPodsForDeletion`.
 */
export function manageReplicas(
  replicas: number,
  active: Pod[],
  burst = BURST_REPLICAS,
  related: Pod[] = active,
): ReplicaAction {
  const diff = active.length - replicas;
  if (diff < 0) return { type: "create", count: Math.min(-diff, burst) };
  if (diff > 0) {
    const n = Math.min(diff, burst);
    return { type: "delete", pods: rankPodsForDeletion(active, related).slice(0, n) };
  }
  return { type: "none" };
}

/**
 * The status a sync reports (calculateStatus): counts of the active pods, fully labeled (the
 * template's labels), ready and available ones, and the `ReplicaFailure` condition set while
 * creating or deleting fails (`FailedCreate` / `FailedDelete`) and removed once it works.
 */
export function calculateStatus(
  rs: ReplicatedObject,
  active: Pod[],
  manageError: unknown,
  now: number,
): ReplicaSetStatus {
  const status: ReplicaSetStatus = structuredClone(rs.status ?? { replicas: 0 });
  const templateLabels = rs.spec?.template?.metadata?.labels ?? {};
  const minReady = rs.spec?.minReadySeconds ?? 0;
  let fullyLabeled = 0;
  let ready = 0;
  let available = 0;
  for (const pod of active) {
    const labels = pod.metadata?.labels ?? {};
    if (Object.entries(templateLabels).every(([k, v]) => labels[k] === v)) fullyLabeled++;
    if (isPodReady(pod)) {
      ready++;
      if (isPodAvailable(pod, minReady, now)) available++;
    }
  }
  const conditions = status.conditions ?? [];
  const failure = conditions.find((c) => c.type === "ReplicaFailure");
  if (manageError !== undefined && !failure) {
    const diff = active.length - (rs.spec?.replicas ?? 1);
    const cond: ReplicaSetCondition = {
      type: "ReplicaFailure",
      status: "True",
      lastTransitionTime: nowTime(now),
      reason: diff < 0 ? "FailedCreate" : "FailedDelete",
      message: errorMessage(manageError),
    };
    status.conditions = [...conditions, cond];
  } else if (manageError === undefined && failure) {
    status.conditions = conditions.filter((c) => c.type !== "ReplicaFailure");
    if (status.conditions.length === 0) delete status.conditions;
  }
  status.replicas = active.length;
  status.fullyLabeledReplicas = fullyLabeled;
  status.readyReplicas = ready;
  status.availableReplicas = available;
  return omitEmpty(status, ["replicas"]);
}

/** Whether `status` differs from what the object reports (or its generation is unobserved). */
export function statusNeedsUpdate(rs: ReplicatedObject, status: ReplicaSetStatus): boolean {
  const s = rs.status ?? { replicas: 0 };
  return !(
    (s.replicas ?? 0) === (status.replicas ?? 0) &&
    (s.fullyLabeledReplicas ?? 0) === (status.fullyLabeledReplicas ?? 0) &&
    (s.readyReplicas ?? 0) === (status.readyReplicas ?? 0) &&
    (s.availableReplicas ?? 0) === (status.availableReplicas ?? 0) &&
    (rs.metadata?.generation ?? 0) === (s.observedGeneration ?? 0) &&
    semanticEqual(s.conditions, status.conditions)
  );
}

/** The two kinds this controller runs for. */
export interface ReplicatedKind {
  /** --controllers name. */
  name: string;
  kindName: "apps/v1/ReplicaSet" | "v1/ReplicationController";
  apiVersion: string;
  kind: string;
  /** Event source component. */
  component: string;
  serviceAccount: string;
  concurrencyKey: string;
  matches(obj: ReplicatedObject, labels: Record<string, string> | undefined): boolean;
}

export const REPLICASET_KIND: ReplicatedKind = {
  name: "replicaset",
  kindName: "apps/v1/ReplicaSet",
  apiVersion: "apps/v1",
  kind: "ReplicaSet",
  component: "replicaset-controller",
  serviceAccount: "replicaset-controller",
  concurrencyKey: "replicaset",
  matches: (obj, labels) => selectorMatches(obj.spec?.selector as LabelSelector, labels),
};

export const REPLICATIONCONTROLLER_KIND: ReplicatedKind = {
  name: "replicationcontroller",
  kindName: "v1/ReplicationController",
  apiVersion: "v1",
  kind: "ReplicationController",
  component: "replication-controller",
  serviceAccount: "replication-controller",
  concurrencyKey: "rc",
  matches: (obj, labels) =>
    mapSelectorMatches(obj.spec?.selector as Record<string, string> | undefined, labels),
};

/** Builds the controller for `kind` over the context's informers. */
export function replicatedController(
  ctx: ControllerContext,
  kind: ReplicatedKind,
): {
  controller: Controller<ReplicatedKind["kindName"]>;
  expectations: Expectations;
  registerPodHandlers: () => () => void;
} {
  const { client, informers, clock } = ctx;
  const recorder = ctx.recorder(kind.component);
  const expectations = new Expectations(() => clock.now());
  const pods = informers.informer("v1/Pod", {
    indexers: { [CONTROLLER_UID_INDEX]: controllerUIDIndexFunc },
  }) as Informer<Pod>;
  const owners = informers.informer(kind.kindName) as unknown as Informer<ReplicatedObject>;
  const ownersClient = client.resource(
    kind.kindName,
  ) as unknown as ResourceClient<ReplicatedObject>;
  const podsClient = client.resource("v1/Pod");

  const ownerKeyOf = (pod: Pod): string | undefined => {
    const ref = controllerRef(pod);
    if (
      !ref ||
      ref.kind !== kind.kind ||
      ref.apiVersion.split("/")[0] !== kind.apiVersion.split("/")[0]
    )
      return undefined;
    return `${pod.metadata?.namespace}/${ref.name}`;
  };

  /** Orphan pods map to every owner in their namespace whose selector matches them. */
  const orphanOwners = (pod: Pod): string[] => {
    if (controllerRef(pod) || pod.metadata?.deletionTimestamp) return [];
    const keys: string[] = [];
    for (const o of owners.store.listNamespace(pod.metadata?.namespace ?? ""))
      if (kind.matches(o, pod.metadata?.labels)) keys.push(objectKey(o));
    return keys;
  };

  const registerPodHandlers = () =>
    pods.addEventHandler({
      add(pod) {
        const key = ownerKeyOf(pod);
        if (!key) return;
        if (pod.metadata?.deletionTimestamp) expectations.deletionObserved(key, objectKey(pod));
        else expectations.creationObserved(key);
      },
      update(_old, pod) {
        const key = ownerKeyOf(pod);
        if (key && pod.metadata?.deletionTimestamp)
          expectations.deletionObserved(key, objectKey(pod));
      },
      delete(pod) {
        const key = ownerKeyOf(pod);
        if (key) expectations.deletionObserved(key, objectKey(pod));
      },
    });

  async function updateStatus(rs: ReplicatedObject, status: ReplicaSetStatus): Promise<void> {
    let current = rs;
    for (let attempt = 0; ; attempt++) {
      if (!statusNeedsUpdate(current, status)) return;
      const next = structuredClone(current);
      next.status = { ...status, observedGeneration: current.metadata?.generation ?? 0 };
      try {
        await ownersClient.updateStatus(next);
        return;
      } catch (err) {
        if (attempt >= 1 || isStatusError(err, "NotFound")) throw err;
        current = await ownersClient.namespace(rs.metadata!.namespace!).get(rs.metadata!.name!);
      }
    }
  }

  async function manage(rs: ReplicatedObject, key: string, active: Pod[]): Promise<void> {
    const ns = rs.metadata!.namespace!;
    const action = manageReplicas(rs.spec?.replicas ?? 1, active);
    if (action.type === "create") {
      expectations.expectCreations(key, action.count);
      const ref = newControllerRef(rs, kind.apiVersion, kind.kind);
      const template = podFromTemplate(rs.spec?.template, ns, rs.metadata!.name!, ref);
      const { successes, error } = await slowStartBatch(action.count, 1, async () => {
        try {
          const created = await podsClient.namespace(ns).create(structuredClone(template));
          recorder.event(
            rs,
            "Normal",
            "SuccessfulCreate",
            `Created pod: ${created.metadata?.name}`,
          );
        } catch (err) {
          if (isStatusError(err) && err.code === 504) return;
          if (!hasStatusCause(err, "NamespaceTerminating"))
            recorder.event(rs, "Warning", "FailedCreate", `Error creating: ${errorMessage(err)}`);
          throw err;
        }
      });
      for (let i = successes; i < action.count; i++) expectations.creationObserved(key);
      if (error !== undefined && !hasStatusCause(error, "NamespaceTerminating")) throw error;
    } else if (action.type === "delete") {
      const keys = action.pods.map(objectKey);
      expectations.expectDeletions(key, keys);
      const errors: unknown[] = [];
      await Promise.all(
        action.pods.map(async (pod) => {
          try {
            await podsClient.namespace(ns).delete(pod.metadata!.name!);
            recorder.event(rs, "Normal", "SuccessfulDelete", `Deleted pod: ${pod.metadata?.name}`);
          } catch (err) {
            expectations.deletionObserved(key, objectKey(pod));
            if (isStatusError(err, "NotFound")) return;
            recorder.event(rs, "Warning", "FailedDelete", `Error deleting: ${errorMessage(err)}`);
            errors.push(err);
          }
        }),
      );
      if (errors.length) throw errors[0];
    }
  }

  const c = controller({
    name: kind.name,
    informers,
    for: kind.kindName,
    owns: ["v1/Pod"],
    watches: [watchOf("v1/Pod", orphanOwners)],
    workers: ctx.options.concurrency[kind.concurrencyKey] ?? 5,
    clock,
    onError: (err, req) => ctx.log.error(`Sync "${req.key}" failed with ${errorMessage(err)}`),
    reconcile: async ({ key }) => {
      const rs = owners.store.get(key);
      if (!rs) {
        expectations.delete(key);
        return;
      }
      const ns = rs.metadata!.namespace!;
      const uid = rs.metadata!.uid!;
      const needsSync = expectations.satisfied(key) && !rs.metadata?.deletionTimestamp;
      const candidates = [
        ...pods.store.byIndex(CONTROLLER_UID_INDEX, uid),
        ...pods.store.byIndex(CONTROLLER_UID_INDEX, "").filter((p) => p.metadata?.namespace === ns),
      ].filter(isPodActive);
      const ref: OwnerReference = newControllerRef(rs, kind.apiVersion, kind.kind);
      const active = await claim<Pod>({
        owner: rs,
        ownerRef: ref,
        candidates,
        matches: (p) => kind.matches(rs, p.metadata?.labels),
        client: podsClient.namespace(ns),
        getOwner: () => ownersClient.namespace(ns).get(rs.metadata!.name!),
      });
      let manageError: unknown;
      if (needsSync) {
        try {
          await manage(rs, key, active);
        } catch (err) {
          manageError = err;
        }
      }
      const now = clock.now();
      const status = calculateStatus(rs, active, manageError, now);
      await updateStatus(rs, status);
      if (manageError !== undefined) throw manageError;
      const minReady = rs.spec?.minReadySeconds ?? 0;
      const replicas = rs.spec?.replicas ?? 1;
      if (
        minReady > 0 &&
        status.readyReplicas === replicas &&
        status.availableReplicas !== replicas
      )
        return { requeueAfter: minReady * 1000 };
      return undefined;
    },
  });
  return { controller: c, expectations, registerPodHandlers };
}

function descriptor(kind: ReplicatedKind, aliases: string[]): ControllerDescriptor {
  return {
    name: kind.name,
    aliases,
    serviceAccount: kind.serviceAccount,
    async start(ctx, signal) {
      const { controller: c, registerPodHandlers } = replicatedController(ctx, kind);
      const unregister = registerPodHandlers();
      try {
        await c.start(signal);
      } finally {
        unregister();
      }
    },
  };
}

export const replicaSetDescriptor = descriptor(REPLICASET_KIND, ["replicaset-controller"]);
export const replicationControllerDescriptor = descriptor(REPLICATIONCONTROLLER_KIND, [
  "replicationcontroller-controller",
]);

export type { ReplicationController };
