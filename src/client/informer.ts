/**
 * Informers by composition: watcher -> reflector (writes the store, reports what changed) ->
 * event handlers (which enqueue keys). No DeltaFIFO: the store is written before handlers run,
 * so a handler that reads the store sees the change it is told about (or a later one).
 *
 * `SharedInformers` keeps one informer per kind, namespace and selector, so every controller
 * that needs pods shares one list, one watch and one cache.
 */

import { realClock, type Clock } from "./clock.js";
import type { KindName, KObject, ObjectOf } from "./kinds.js";
import { objectKey, type Client } from "./resources.js";
import { Store, type Indexers } from "./store.js";
import { watcher, type ListerWatcher, type WatcherEvent, type WatcherOptions } from "./watch.js";

/** What a relist or a watch event did to the store. */
export type StoreChange<T> =
  | { type: "added"; object: T; initial: boolean }
  | { type: "updated"; old: T; object: T }
  | { type: "deleted"; object: T }
  | { type: "synced"; resourceVersion: string };

/**
 * Writes watcher events into `store` and yields the changes they made. A snapshot (`init` ..
 * `initDone`) is buffered and swapped in at once; objects missing from it are reported deleted,
 * objects whose resourceVersion is unchanged are not reported.
 */
export async function* reflector<T extends KObject>(
  store: Store<T>,
  events: AsyncIterable<WatcherEvent<T>>,
): AsyncGenerator<StoreChange<T>> {
  let buffer: Map<string, T> | undefined;
  let first = true;
  for await (const e of events) {
    switch (e.type) {
      case "init":
        buffer = new Map();
        break;
      case "initApply":
        buffer?.set(objectKey(e.object), e.object);
        break;
      case "initDone": {
        const snapshot = buffer ?? new Map<string, T>();
        buffer = undefined;
        const changes: StoreChange<T>[] = [];
        for (const [key, obj] of snapshot) {
          const old = store.get(key);
          if (!old) changes.push({ type: "added", object: obj, initial: first });
          else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion)
            changes.push({ type: "updated", old, object: obj });
        }
        for (const key of store.keys())
          if (!snapshot.has(key)) changes.push({ type: "deleted", object: store.get(key)! });
        store.replace(snapshot.values());
        first = false;
        yield* changes;
        yield { type: "synced", resourceVersion: e.resourceVersion };
        break;
      }
      case "apply": {
        const old = store.set(e.object);
        yield old
          ? { type: "updated", old, object: e.object }
          : { type: "added", object: e.object, initial: false };
        break;
      }
      case "delete": {
        store.delete(objectKey(e.object));
        yield { type: "deleted", object: e.object };
        break;
      }
    }
  }
}

export interface EventHandler<T> {
  /** A new object; `initial` when it came with the first snapshot (or a late registration). */
  add?(obj: T, initial: boolean): void;
  /** A changed object (or, with a resync period, the same object again). */
  update?(old: T, obj: T): void;
  /** A deleted object, in its last known state. */
  delete?(obj: T): void;
}

export interface InformerOptions<T> extends Omit<WatcherOptions, "onError" | "clock"> {
  indexers?: Indexers<T>;
  /** Re-deliver every cached object as an update this often (ms); 0 or absent: never. */
  resyncPeriod?: number;
  clock?: Clock;
  onError?: (err: unknown) => void;
}

/**
 * One resource's cache kept current by a watcher, and the handlers told about its changes.
 * Handlers run synchronously, in registration order, after the store has the change; they
 * should be quick (enqueue a key) and must not modify the objects.
 */
export class Informer<T extends KObject> {
  readonly store: Store<T>;
  private readonly handlers = new Set<EventHandler<T>>();
  private synced = false;
  private syncWaiters: (() => void)[] = [];
  private running: Promise<void> | undefined;
  private readonly clock: Clock;
  /** The resourceVersion of the last snapshot or event. */
  lastSyncResourceVersion = "";

  constructor(
    private readonly source: ListerWatcher<T>,
    private readonly opts: InformerOptions<T> = {},
  ) {
    this.store = new Store<T>(opts.indexers);
    this.clock = opts.clock ?? realClock;
  }

  /**
   * Registers a handler; objects already cached are delivered to it at once as initial adds.
   * Answers a function that unregisters it.
   */
  addEventHandler(handler: EventHandler<T>): () => void {
    this.handlers.add(handler);
    if (handler.add) for (const obj of this.store.list()) this.call(() => handler.add!(obj, true));
    return () => this.handlers.delete(handler);
  }

  addIndexers(indexers: Indexers<T>): void {
    this.store.addIndexers(indexers);
  }

  /** True once the first snapshot is in the store (and its handlers have run). */
  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves true once synced, false if `signal` aborts first. */
  waitForSync(signal?: AbortSignal): Promise<boolean> {
    if (this.synced) return Promise.resolve(true);
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onAbort = () => resolve(false);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.syncWaiters.push(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve(true);
      });
    });
  }

  get isRunning(): boolean {
    return this.running !== undefined;
  }

  /** Lists, watches and keeps the store current until `signal` aborts. Idempotent while running. */
  start(signal: AbortSignal): Promise<void> {
    this.running ??= this.run(signal).finally(() => (this.running = undefined));
    return this.running;
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.opts.onError?.(err);
    }
  }

  private async run(signal: AbortSignal): Promise<void> {
    const events = watcher(
      this.source,
      { ...this.opts, clock: this.clock, onError: this.opts.onError },
      signal,
    );
    const resync = this.opts.resyncPeriod ?? 0;
    let cancelResync: (() => void) | undefined;
    const scheduleResync = () => {
      cancelResync = this.clock.setTimer(resync, () => {
        for (const obj of this.store.list())
          for (const h of this.handlers) if (h.update) this.call(() => h.update!(obj, obj));
        scheduleResync();
      });
    };
    try {
      for await (const change of reflector(this.store, events)) {
        switch (change.type) {
          case "added":
            this.lastSyncResourceVersion = change.object.metadata?.resourceVersion ?? "";
            for (const h of this.handlers)
              if (h.add) this.call(() => h.add!(change.object, change.initial));
            break;
          case "updated":
            this.lastSyncResourceVersion = change.object.metadata?.resourceVersion ?? "";
            for (const h of this.handlers)
              if (h.update) this.call(() => h.update!(change.old, change.object));
            break;
          case "deleted":
            for (const h of this.handlers) if (h.delete) this.call(() => h.delete!(change.object));
            break;
          case "synced":
            this.lastSyncResourceVersion = change.resourceVersion;
            if (!this.synced) {
              this.synced = true;
              for (const w of this.syncWaiters.splice(0)) w();
              if (resync > 0) scheduleResync();
            }
            break;
        }
      }
    } finally {
      cancelResync?.();
    }
  }
}

export interface InformerRequest<T> {
  /** Only this namespace; all namespaces when absent. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  indexers?: Indexers<T>;
}

export interface SharedInformersOptions {
  /** Resync period (ms) of every informer; none by default. */
  resyncPeriod?: number;
  initialEvents?: "list" | "stream";
  onError?: (err: unknown) => void;
}

/**
 * One informer per kind, namespace and selectors, shared by everything that asks for it. Informers
 * asked for while `start` runs are started at once.
 */
export class SharedInformers {
  private readonly informers = new Map<string, Informer<KObject>>();
  private signal: AbortSignal | undefined;
  private readonly runs = new Set<Promise<void>>();

  constructor(
    readonly client: Client,
    private readonly opts: SharedInformersOptions = {},
  ) {}

  informer<K extends KindName>(kind: K, req?: InformerRequest<ObjectOf<K>>): Informer<ObjectOf<K>>;
  informer(kind: string, req?: InformerRequest<KObject>): Informer<KObject>;
  informer(kind: string, req: InformerRequest<KObject> = {}): Informer<KObject> {
    const key = [kind, req.namespace ?? "", req.labelSelector ?? "", req.fieldSelector ?? ""].join(
      "|",
    );
    let informer = this.informers.get(key);
    if (!informer) {
      let resource = this.client.resource(kind);
      if (req.namespace) resource = resource.namespace(req.namespace);
      const options: InformerOptions<KObject> = {};
      if (req.labelSelector) options.labelSelector = req.labelSelector;
      if (req.fieldSelector) options.fieldSelector = req.fieldSelector;
      if (this.opts.resyncPeriod) options.resyncPeriod = this.opts.resyncPeriod;
      if (this.opts.initialEvents) options.initialEvents = this.opts.initialEvents;
      if (this.opts.onError) options.onError = this.opts.onError;
      informer = new Informer<KObject>(resource, options);
      this.informers.set(key, informer);
      if (this.signal && !this.signal.aborted) this.run(informer, this.signal);
    }
    if (req.indexers) informer.addIndexers(req.indexers);
    return informer;
  }

  private run(informer: Informer<KObject>, signal: AbortSignal): void {
    const p = informer.start(signal).catch((err: unknown) => this.opts.onError?.(err));
    this.runs.add(p);
    void p.finally(() => this.runs.delete(p));
  }

  /** Runs every informer (and those added later) until `signal` aborts. */
  async start(signal: AbortSignal): Promise<void> {
    this.signal = signal;
    for (const informer of this.informers.values())
      if (!informer.isRunning) this.run(informer, signal);
    if (!signal.aborted)
      await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
    while (this.runs.size) await Promise.all([...this.runs]);
  }

  /** Resolves true once every informer asked for so far has synced. */
  async waitForCacheSync(signal?: AbortSignal): Promise<boolean> {
    const all = await Promise.all([...this.informers.values()].map((i) => i.waitForSync(signal)));
    return all.every(Boolean);
  }
}
