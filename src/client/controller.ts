/**
 * A controller is a level-triggered reconciler over object keys, declared in one options object:
 *
 *   const rs = controller({
 *     name: "replicaset",
 *     informers,
 *     for: "apps/v1/ReplicaSet",
 *     owns: ["v1/Pod"],
 *     reconcile: async ({ namespace, name }) => { ...; return { requeueAfter: 30_000 }; },
 *   });
 *   await rs.start(signal);
 *
 * Changes to a `for` object enqueue its key; changes to an `owns` object enqueue the key of its
 * controlling owner (the ownerReference with `controller: true` of the `for` kind), before and
 * after the change; `watches` map any other kind to keys. Reconcile sees only the key, never the
 * event: it reads the current state from the caches (`informer(...).store`) or the API.
 *
 * Outcome of one reconcile: resolved (or `undefined`) forgets the key's failures; `{ requeueAfter }`
 * also schedules it again; `{ requeue: true }` re-adds it rate-limited; a throw re-adds it
 * rate-limited (client-go's default controller rate limiter unless another is given). The work
 * queue guarantees one worker per key at a time and collapses bursts of changes.
 */

import type { Clock } from "./clock.js";
import type { EventHandler, Informer, SharedInformers } from "./informer.js";
import type { KindName, KObject, ObjectOf } from "./kinds.js";
import { parseKindName } from "./kinds.js";
import type { RateLimiter } from "./ratelimit.js";
import { objectKey, splitKey } from "./resources.js";
import { WorkQueue } from "./workqueue.js";

export interface Request {
  /** `namespace/name`, or `name` for cluster-scoped objects. */
  key: string;
  namespace: string;
  name: string;
}

export type Action = void | undefined | { requeueAfter: number } | { requeue: true };

export interface Watch<K extends string> {
  kind: K;
  /** Keys of the `for` objects to reconcile when an object of `kind` changes. */
  map: (obj: ObjectOf<K>) => Iterable<string>;
}

export interface ControllerSpec<F extends KindName> {
  /** Names the controller in errors and metrics. */
  name: string;
  informers: SharedInformers;
  for: F;
  /** Kinds whose objects point at a `for` object with a controller ownerReference. */
  owns?: KindName[];
  /** Other kinds, each with a map from its objects to keys. */
  watches?: Watch<KindName>[];
  reconcile: (req: Request) => Action | Promise<Action>;
  /** Concurrent reconciles (of different keys); 1 by default. */
  workers?: number;
  rateLimiter?: RateLimiter<string>;
  clock?: Clock;
  /** Called with reconcile failures (the key is requeued regardless). */
  onError?: (err: unknown, req: Request) => void;
}

export class Controller<F extends KindName> {
  readonly name: string;
  readonly queue: WorkQueue<string>;
  /** The informer of the `for` kind: its store is the controller's view of its objects. */
  readonly informer: Informer<ObjectOf<F>>;
  private readonly sources: { informer: Informer<KObject>; handler: EventHandler<KObject> }[] = [];
  private readySet = false;

  constructor(private readonly spec: ControllerSpec<F>) {
    this.name = spec.name;
    this.queue = new WorkQueue<string>({
      ...(spec.clock ? { clock: spec.clock } : {}),
      ...(spec.rateLimiter ? { rateLimiter: spec.rateLimiter } : {}),
    });
    this.informer = spec.informers.informer(spec.for) as Informer<ObjectOf<F>>;
    const enqueue = (obj: KObject) => this.queue.add(objectKey(obj));
    this.sources.push({
      informer: this.informer as unknown as Informer<KObject>,
      handler: { add: enqueue, update: (_old, obj) => enqueue(obj), delete: enqueue },
    });

    const owner = parseKindName(spec.for);
    const ownerApiGroup = owner.group;
    const ownerKeys = (obj: KObject): string[] => {
      const keys: string[] = [];
      for (const ref of obj.metadata?.ownerReferences ?? []) {
        if (!ref.controller || ref.kind !== owner.kind) continue;
        const slash = ref.apiVersion.indexOf("/");
        const group = slash < 0 ? "" : ref.apiVersion.slice(0, slash);
        if (group !== ownerApiGroup) continue;
        const ns = obj.metadata?.namespace;
        keys.push(ns ? `${ns}/${ref.name}` : ref.name);
      }
      return keys;
    };
    for (const kind of spec.owns ?? [])
      this.addSource(spec.informers.informer(kind) as Informer<KObject>, ownerKeys);
    for (const w of spec.watches ?? [])
      this.addSource(
        spec.informers.informer(w.kind) as Informer<KObject>,
        w.map as (obj: KObject) => Iterable<string>,
      );
  }

  private addSource(informer: Informer<KObject>, keys: (obj: KObject) => Iterable<string>): void {
    const enqueue = (obj: KObject) => {
      for (const k of keys(obj)) this.queue.add(k);
    };
    this.sources.push({
      informer,
      handler: {
        add: enqueue,
        update: (old, obj) => {
          enqueue(old);
          enqueue(obj);
        },
        delete: enqueue,
      },
    });
  }

  /** True once the caches have synced and workers run. */
  get ready(): boolean {
    return this.readySet;
  }

  /**
   * Registers the event handlers, waits for the caches (the informers run under the shared
   * informers' `start`), runs the workers until `signal` aborts, then lets in-flight reconciles
   * finish.
   */
  async start(signal: AbortSignal): Promise<void> {
    const unregister = this.sources.map((s) => s.informer.addEventHandler(s.handler));
    try {
      for (const s of this.sources) if (!(await s.informer.waitForSync(signal))) return;
      this.readySet = true;
      const workers = Array.from({ length: Math.max(1, this.spec.workers ?? 1) }, () =>
        this.worker(signal),
      );
      if (!signal.aborted)
        await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
      await this.queue.shutDownWithDrain();
      await Promise.all(workers);
    } finally {
      this.readySet = false;
      this.queue.shutDown();
      for (const u of unregister) u();
    }
  }

  private async worker(signal: AbortSignal): Promise<void> {
    for (;;) {
      const { item: key, shutdown } = await this.queue.get();
      if (shutdown) return;
      if (signal.aborted) {
        // Stopping: leave what is still queued.
        this.queue.done(key);
        return;
      }
      const { namespace, name } = splitKey(key);
      const req: Request = { key, namespace, name };
      try {
        const action = await this.spec.reconcile(req);
        if (action && "requeue" in action && action.requeue) {
          this.queue.addRateLimited(key);
        } else {
          this.queue.forget(key);
          if (action && "requeueAfter" in action && action.requeueAfter > 0)
            this.queue.addAfter(key, action.requeueAfter);
        }
      } catch (err) {
        this.spec.onError?.(err, req);
        this.queue.addRateLimited(key);
      } finally {
        this.queue.done(key);
      }
    }
  }
}

/** Declares a controller; see the module comment. */
export function controller<F extends KindName>(spec: ControllerSpec<F>): Controller<F> {
  return new Controller(spec);
}
