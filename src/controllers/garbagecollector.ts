/**
 * The garbage collector: a graph of every object with its owners and dependents (by uid), kept
 * from informers on every listable, watchable and deletable resource (Events aside, as
 * upstream), and two queues of objects to look at:
 *
 * - attemptToDelete: an object whose owner may be gone. Each owner reference is classified with
 *   a live read of the owner: solid (exists), dangling (absent, or another uid) or waiting (the
 *   owner is being deleted in the foreground). With a solid owner, references to dangling and
 *   waiting owners are removed; with only waiting owners, the object is deleted in the
 *   foreground itself (its dependents first); with only dangling owners it is deleted with the
 *   policy its own finalizers ask for (Background by default). An owner deleted in the
 *   foreground (deletionTimestamp and the `foregroundDeletion` finalizer) waits until none of
 *   its dependents blocks it (`blockOwnerDeletion: true`), then loses the finalizer.
 * - attemptToOrphan: an owner deleted with propagationPolicy Orphan (the `orphan` finalizer):
 *   its dependents lose their references to it, then it loses the finalizer.
 *
 * The graph may lag behind the server; every decision to delete is made on live reads, and
 * deletes carry the uid as a precondition.
 */

import type { OwnerReference } from "kubernetes-types/meta/v1.js";
import { findResourceByKind, resources, type ResourceInfo } from "../api/resources.js";
import { isStatusError } from "../api/status.js";
import type { Informer } from "../client/informer.js";
import type { KObject } from "../client/kinds.js";
import type { Client, ResourceClient } from "../client/resources.js";
import { WorkQueue } from "../client/workqueue.js";
import type { ControllerContext, ControllerDescriptor } from "./context.js";
import { errorMessage } from "./context.js";

export const FOREGROUND_FINALIZER = "foregroundDeletion";
export const ORPHAN_FINALIZER = "orphan";

/** Resources the collector never watches (upstream's default ignored resources). */
const IGNORED = new Set(["/events", "events.k8s.io/events"]);

export interface GraphNode {
  uid: string;
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  owners: OwnerReference[];
  dependents: Set<string>;
  beingDeleted: boolean;
  finalizers: string[];
  /** Known only as someone's owner, not yet observed. */
  virtual: boolean;
}

export function deletingDependents(n: GraphNode): boolean {
  return n.beingDeleted && n.finalizers.includes(FOREGROUND_FINALIZER);
}

export function orphaning(n: GraphNode): boolean {
  return n.beingDeleted && n.finalizers.includes(ORPHAN_FINALIZER);
}

export type OwnerState = "solid" | "dangling" | "waiting";

/**
 * What to do with an object given the state of each of its owners (the decision of
 * attemptToDeleteItem): keep it, drop some references, or delete it with a policy.
 */
export function classifyDependent(
  owners: { ref: OwnerReference; state: OwnerState }[],
  hasDependents: boolean,
  finalizers: string[],
):
  | { action: "none" }
  | { action: "removeReferences"; uids: string[] }
  | { action: "delete"; policy: "Foreground" | "Background" | "Orphan" } {
  if (owners.length === 0) return { action: "none" };
  const solid = owners.filter((o) => o.state === "solid");
  const dangling = owners.filter((o) => o.state === "dangling");
  const waiting = owners.filter((o) => o.state === "waiting");
  if (solid.length) {
    if (dangling.length || waiting.length)
      return {
        action: "removeReferences",
        uids: [...dangling, ...waiting].map((o) => o.ref.uid),
      };
    return { action: "none" };
  }
  if (waiting.length && hasDependents) return { action: "delete", policy: "Foreground" };
  if (finalizers.includes(ORPHAN_FINALIZER)) return { action: "delete", policy: "Orphan" };
  if (finalizers.includes(FOREGROUND_FINALIZER)) return { action: "delete", policy: "Foreground" };
  return { action: "delete", policy: "Background" };
}

/** The resources the collector watches. */
export function monitoredResources(): ResourceInfo[] {
  const seen = new Set<string>();
  const out: ResourceInfo[] = [];
  for (const r of resources) {
    const id = `${r.group}/${r.resource}`;
    if (IGNORED.has(id) || seen.has(id)) continue;
    if (!["list", "watch", "delete", "get", "patch"].every((v) => r.verbs.includes(v as never)))
      continue;
    seen.add(id);
    out.push(r);
  }
  return out;
}

function groupOf(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.indexOf("/");
  return i < 0
    ? { group: "", version: apiVersion }
    : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

/** The owner/dependent graph and the two queues (see the module comment). */
export class GarbageCollector {
  readonly nodes = new Map<string, GraphNode>();
  readonly attemptToDelete = new WorkQueue<string>();
  readonly attemptToOrphan = new WorkQueue<string>();
  private readonly monitors: { info: ResourceInfo; informer: Informer<KObject> }[] = [];

  constructor(
    private readonly ctx: ControllerContext,
    private readonly client: Client = ctx.client,
  ) {}

  /** Registers informers on every monitored resource and feeds the graph from them. */
  monitor(): (() => void)[] {
    const unregister: (() => void)[] = [];
    for (const info of monitoredResources()) {
      const kind = `${info.group ? `${info.group}/` : ""}${info.version}/${info.kind}`;
      const informer = this.ctx.informers.informer(kind);
      this.monitors.push({ info, informer });
      const apiVersion = info.group ? `${info.group}/${info.version}` : info.version;
      unregister.push(
        informer.addEventHandler({
          add: (obj) => this.observe(obj, apiVersion, info.kind),
          update: (_old, obj) => this.observe(obj, apiVersion, info.kind),
          delete: (obj) => this.remove(obj),
        }),
      );
    }
    return unregister;
  }

  async waitForSync(signal: AbortSignal): Promise<boolean> {
    for (const m of this.monitors) if (!(await m.informer.waitForSync(signal))) return false;
    return true;
  }

  private ownerNode(ref: OwnerReference, namespace: string): GraphNode {
    let n = this.nodes.get(ref.uid);
    if (!n) {
      n = {
        uid: ref.uid,
        apiVersion: ref.apiVersion,
        kind: ref.kind,
        namespace,
        name: ref.name,
        owners: [],
        dependents: new Set(),
        beingDeleted: false,
        finalizers: [],
        virtual: true,
      };
      this.nodes.set(ref.uid, n);
    }
    return n;
  }

  /** An object added or changed: update its node and edges, enqueue what may need work. */
  observe(obj: KObject, apiVersion: string, kind: string): void {
    const m = obj.metadata;
    if (!m?.uid) return;
    let n = this.nodes.get(m.uid);
    const owners = m.ownerReferences ?? [];
    const ns = m.namespace ?? "";
    if (!n) {
      n = {
        uid: m.uid,
        apiVersion,
        kind,
        namespace: ns,
        name: m.name ?? "",
        owners: [],
        dependents: new Set(),
        beingDeleted: false,
        finalizers: [],
        virtual: false,
      };
      this.nodes.set(m.uid, n);
    }
    const wasVirtual = n.virtual;
    n.virtual = false;
    n.apiVersion = apiVersion;
    n.kind = kind;
    n.namespace = ns;
    n.name = m.name ?? "";
    const before = new Map(n.owners.map((o) => [o.uid, o]));
    const after = new Map(owners.map((o) => [o.uid, o]));
    for (const [uid, ref] of before) {
      if (after.has(uid) && after.get(uid)!.blockOwnerDeletion === ref.blockOwnerDeletion) continue;
      const owner = this.nodes.get(uid);
      if (!after.has(uid)) owner?.dependents.delete(m.uid);
      // An owner waiting on this dependent may be unblocked now.
      if (owner && deletingDependents(owner)) this.attemptToDelete.add(uid);
    }
    let missingOwner = false;
    for (const ref of owners) {
      if (before.has(ref.uid)) continue;
      const existed = this.nodes.has(ref.uid);
      const owner = this.ownerNode(ref, ns);
      owner.dependents.add(m.uid);
      if (!existed || owner.virtual) missingOwner = true;
    }
    n.owners = owners;
    const wasDeleting = deletingDependents(n);
    const wasOrphaning = orphaning(n);
    n.beingDeleted = !!m.deletionTimestamp;
    n.finalizers = m.finalizers ?? [];
    if (missingOwner) this.attemptToDelete.add(m.uid);
    if (orphaning(n) && !wasOrphaning) this.attemptToOrphan.add(m.uid);
    if (deletingDependents(n) && (!wasDeleting || wasVirtual)) {
      this.attemptToDelete.add(m.uid);
      for (const d of n.dependents) this.attemptToDelete.add(d);
    }
    if (wasVirtual) for (const d of n.dependents) this.attemptToDelete.add(d);
  }

  /** An object deleted: its dependents may now have a dangling owner. */
  remove(obj: KObject): void {
    const uid = obj.metadata?.uid;
    if (!uid) return;
    const n = this.nodes.get(uid);
    if (!n) return;
    for (const ref of n.owners) {
      const owner = this.nodes.get(ref.uid);
      if (!owner) continue;
      owner.dependents.delete(uid);
      if (owner.virtual && owner.dependents.size === 0) this.nodes.delete(ref.uid);
      else if (deletingDependents(owner)) this.attemptToDelete.add(ref.uid);
    }
    if (n.dependents.size) {
      n.virtual = true;
      n.owners = [];
      n.beingDeleted = false;
      n.finalizers = [];
      for (const d of n.dependents) this.attemptToDelete.add(d);
    } else this.nodes.delete(uid);
  }

  private resourceFor(apiVersion: string, kind: string, namespace: string) {
    const { group, version } = groupOf(apiVersion);
    const info = findResourceByKind(group, version, kind);
    if (!info) return undefined;
    return this.client.resourceFor<KObject>(info, info.namespaced ? namespace : undefined);
  }

  private async getLive(n: { apiVersion: string; kind: string; namespace: string; name: string }) {
    const rc = this.resourceFor(n.apiVersion, n.kind, n.namespace);
    if (!rc) return { rc, obj: undefined, unknown: true };
    try {
      return { rc, obj: await rc.get(n.name), unknown: false };
    } catch (err) {
      if (isStatusError(err, "NotFound")) return { rc, obj: undefined, unknown: false };
      throw err;
    }
  }

  private async ownerState(ref: OwnerReference, namespace: string): Promise<OwnerState> {
    const { group, version } = groupOf(ref.apiVersion);
    const info = findResourceByKind(group, version, ref.kind);
    if (!info) return "solid"; // an owner of a kind this server does not serve: leave it be
    const { obj } = await this.getLive({
      apiVersion: ref.apiVersion,
      kind: ref.kind,
      namespace: info.namespaced ? namespace : "",
      name: ref.name,
    });
    if (!obj || obj.metadata?.uid !== ref.uid) return "dangling";
    if (obj.metadata?.deletionTimestamp && obj.metadata.finalizers?.includes(FOREGROUND_FINALIZER))
      return "waiting";
    return "solid";
  }

  private async removeFinalizer(rc: ResourceClient<KObject>, name: string, finalizer: string) {
    for (let attempt = 0; attempt < 5; attempt++) {
      let obj: KObject;
      try {
        obj = await rc.get(name);
      } catch (err) {
        if (isStatusError(err, "NotFound")) return;
        throw err;
      }
      const finalizers = obj.metadata?.finalizers ?? [];
      if (!finalizers.includes(finalizer)) return;
      try {
        await rc.patch(name, "json", [
          { op: "test", path: "/metadata/resourceVersion", value: obj.metadata?.resourceVersion },
          {
            op: "replace",
            path: "/metadata/finalizers",
            value: finalizers.filter((f) => f !== finalizer),
          },
        ]);
        return;
      } catch (err) {
        if (isStatusError(err, "NotFound")) return;
        if (attempt === 4) throw err;
      }
    }
  }

  private async removeOwnerReferences(rc: ResourceClient<KObject>, obj: KObject, uids: string[]) {
    await rc.patch(obj.metadata!.name!, "strategic", {
      metadata: {
        ownerReferences: uids.map((uid) => ({ $patch: "delete", uid })),
        uid: obj.metadata?.uid,
      },
    });
  }

  /** attemptToDeleteItem: see the module comment. */
  async processAttemptToDelete(uid: string): Promise<void> {
    const n = this.nodes.get(uid);
    if (!n) return;
    if (n.virtual) {
      // Known only as an owner: if it does not exist, its dependents are looked at.
      const { obj } = await this.getLive(n);
      if (!obj || obj.metadata?.uid !== uid) {
        for (const d of n.dependents) this.attemptToDelete.add(d);
      }
      return;
    }
    if (n.beingDeleted && !deletingDependents(n)) return;
    const { rc, obj } = await this.getLive(n);
    if (!rc || !obj || obj.metadata?.uid !== uid) return;
    const finalizers = obj.metadata?.finalizers ?? [];
    if (obj.metadata?.deletionTimestamp && finalizers.includes(FOREGROUND_FINALIZER)) {
      return this.processDeletingDependents(n, rc);
    }
    const refs = obj.metadata?.ownerReferences ?? [];
    if (refs.length === 0) return;
    const owners = await Promise.all(
      refs.map(async (ref) => ({ ref, state: await this.ownerState(ref, n.namespace) })),
    );
    const decision = classifyDependent(owners, n.dependents.size > 0, finalizers);
    switch (decision.action) {
      case "none":
        return;
      case "removeReferences":
        try {
          await this.removeOwnerReferences(rc, obj, decision.uids);
        } catch (err) {
          if (!isStatusError(err, "NotFound")) throw err;
        }
        return;
      case "delete": {
        if (decision.policy === "Foreground") {
          // Dependents themselves deleting in the foreground must not block this one's owner.
          const waiting = owners.filter((o) => o.state === "waiting").map((o) => o.ref.uid);
          const blocked = [...n.dependents].some((d) => {
            const dep = this.nodes.get(d);
            return dep && deletingDependents(dep);
          });
          if (blocked && waiting.length) {
            await rc.patch(obj.metadata!.name!, "strategic", {
              metadata: {
                ownerReferences: refs
                  .filter((r) => waiting.includes(r.uid))
                  .map((r) => ({ uid: r.uid, blockOwnerDeletion: false })),
                uid,
              },
            });
          }
        }
        try {
          await rc.delete(obj.metadata!.name!, {
            propagationPolicy: decision.policy,
            preconditions: { uid },
          });
        } catch (err) {
          if (!isStatusError(err, "NotFound") && !isStatusError(err, "Conflict")) throw err;
        }
        return;
      }
    }
  }

  private async processDeletingDependents(n: GraphNode, rc: ResourceClient<KObject>) {
    const blocking: GraphNode[] = [];
    for (const d of n.dependents) {
      const dep = this.nodes.get(d);
      if (!dep || dep.virtual) continue;
      const ref = dep.owners.find((o) => o.uid === n.uid);
      if (ref?.blockOwnerDeletion) blocking.push(dep);
    }
    if (blocking.length === 0) {
      await this.removeFinalizer(rc, n.name, FOREGROUND_FINALIZER);
      return;
    }
    for (const dep of blocking) if (!deletingDependents(dep)) this.attemptToDelete.add(dep.uid);
  }

  /** attemptToOrphan: drop the references of every dependent, then the `orphan` finalizer. */
  async processAttemptToOrphan(uid: string): Promise<void> {
    const n = this.nodes.get(uid);
    if (!n || !orphaning(n)) return;
    const errors: unknown[] = [];
    await Promise.all(
      [...n.dependents].map(async (d) => {
        const dep = this.nodes.get(d);
        if (!dep || dep.virtual) return;
        const rc = this.resourceFor(dep.apiVersion, dep.kind, dep.namespace);
        if (!rc) return;
        try {
          await this.removeOwnerReferences(rc, { metadata: { name: dep.name, uid: dep.uid } }, [
            uid,
          ]);
        } catch (err) {
          if (!isStatusError(err, "NotFound") && !isStatusError(err, "Invalid")) errors.push(err);
        }
      }),
    );
    if (errors.length) throw errors[0];
    const rc = this.resourceFor(n.apiVersion, n.kind, n.namespace);
    if (rc) await this.removeFinalizer(rc, n.name, ORPHAN_FINALIZER);
  }

  private async worker(
    queue: WorkQueue<string>,
    process: (uid: string) => Promise<void>,
  ): Promise<void> {
    for (;;) {
      const { item, shutdown } = await queue.get();
      if (shutdown) return;
      try {
        await process(item);
        queue.forget(item);
      } catch (err) {
        this.ctx.log.error(`garbage collector: ${item}: ${errorMessage(err)}`);
        queue.addRateLimited(item);
      } finally {
        queue.done(item);
      }
    }
  }

  async start(signal: AbortSignal): Promise<void> {
    const unregister = this.monitor();
    try {
      if (!(await this.waitForSync(signal))) return;
      const workers = this.ctx.options.concurrency.gc ?? 20;
      const running = [
        ...Array.from({ length: workers }, () =>
          this.worker(this.attemptToDelete, (u) => this.processAttemptToDelete(u)),
        ),
        ...Array.from({ length: workers }, () =>
          this.worker(this.attemptToOrphan, (u) => this.processAttemptToOrphan(u)),
        ),
      ];
      if (!signal.aborted)
        await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
      this.attemptToDelete.shutDown();
      this.attemptToOrphan.shutDown();
      await Promise.all(running);
    } finally {
      for (const u of unregister) u();
    }
  }
}

export const garbageCollectorDescriptor: ControllerDescriptor = {
  name: "garbage-collector",
  aliases: ["garbagecollector", "garbage-collector-controller"],
  serviceAccount: "generic-garbage-collector",
  async start(ctx, signal) {
    await new GarbageCollector(ctx).start(signal);
  },
};
