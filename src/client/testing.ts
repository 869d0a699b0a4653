/**
 * An in-memory list/watch source for unit tests of the watcher, reflector and informers: a
 * revisioned object map with a change history, paginated lists, watches that replay from a
 * resourceVersion, compaction (older resourceVersions answer 410 Expired as the API server does),
 * bookmarks, and failures on demand.
 */

import { expired, StatusError } from "../api/status.js";
import type { KObject } from "./kinds.js";
import type { WatchEvent } from "./rest.js";
import type { List, ListOptions, WatchOptions } from "./resources.js";
import { objectKey } from "./resources.js";
import type { ListerWatcher } from "./watch.js";

interface Change<T> {
  rv: number;
  type: "ADDED" | "MODIFIED" | "DELETED";
  object: T;
}

interface OpenWatch<T> {
  push: (e: WatchEvent<T>) => void;
  end: () => void;
}

export class FakeSource<T extends KObject> implements ListerWatcher<T> {
  private rv = 0;
  private readonly objects = new Map<string, T>();
  private history: Change<T>[] = [];
  private compacted = 0;
  private readonly watches = new Set<OpenWatch<T>>();
  /** Calls made, for assertions: "list", "list(continue)", "watch@<rv>", "stream". */
  readonly calls: string[] = [];
  /** Errors the next list / watch open calls throw, in order. */
  readonly listErrors: unknown[] = [];
  readonly watchErrors: unknown[] = [];
  /** Snapshots handed out by continue token. */
  private readonly snapshots = new Map<string, { items: T[]; rv: number }>();

  get resourceVersion(): string {
    return String(this.rv);
  }

  get openWatches(): number {
    return this.watches.size;
  }

  private stamp(obj: T): T {
    const copy = structuredClone(obj);
    copy.metadata = { ...copy.metadata, resourceVersion: String(++this.rv) };
    return copy;
  }

  private record(type: Change<T>["type"], object: T): void {
    this.history.push({ rv: this.rv, type, object });
    for (const w of this.watches) w.push({ type, object: structuredClone(object) });
  }

  /** Creates or replaces `obj` (a new resourceVersion). */
  put(obj: T): T {
    const key = objectKey(obj);
    const stored = this.stamp(obj);
    const existed = this.objects.has(key);
    this.objects.set(key, stored);
    this.record(existed ? "MODIFIED" : "ADDED", stored);
    return stored;
  }

  remove(key: string): void {
    const old = this.objects.get(key);
    if (!old) return;
    this.objects.delete(key);
    const tomb = this.stamp(old);
    this.record("DELETED", tomb);
  }

  /** Forgets history up to the current revision: older resourceVersions become 410. */
  compact(): void {
    this.compacted = this.rv;
    this.history = [];
  }

  /** Sends a bookmark at the current revision to every open watch. */
  bookmark(): void {
    for (const w of this.watches)
      w.push({
        type: "BOOKMARK",
        object: { metadata: { resourceVersion: String(this.rv) } } as T,
      });
  }

  /** Sends an ERROR event with `err`'s Status to every open watch and ends them. */
  failWatches(err: StatusError): void {
    for (const w of [...this.watches]) {
      w.push({ type: "ERROR", object: err.toStatus() as unknown as T });
      w.end();
    }
  }

  /** Ends every open watch (as the server's timeout does). */
  endWatches(): void {
    for (const w of [...this.watches]) w.end();
  }

  async list(opts: ListOptions): Promise<List<T>> {
    this.calls.push(opts.continue ? "list(continue)" : "list");
    const err = this.listErrors.shift();
    if (err) throw err;
    let snap: { items: T[]; rv: number };
    let offset = 0;
    if (opts.continue) {
      const [id, off] = opts.continue.split(":");
      const found = this.snapshots.get(id!);
      if (!found) throw expired("The provided continue parameter is too old");
      snap = found;
      offset = Number(off);
    } else {
      snap = { items: [...this.objects.values()].map((o) => structuredClone(o)), rv: this.rv };
    }
    const limit = opts.limit || snap.items.length;
    const items = snap.items.slice(offset, offset + limit);
    const metadata: List<T>["metadata"] = { resourceVersion: String(snap.rv) };
    if (offset + limit < snap.items.length) {
      const id = String(this.snapshots.size + 1);
      this.snapshots.set(id, snap);
      metadata.continue = `${id}:${offset + limit}`;
    }
    return { metadata, items };
  }

  /** Drops every continue token handed out (they answer 410). */
  expireContinueTokens(): void {
    this.snapshots.clear();
  }

  async watch(opts: WatchOptions, signal: AbortSignal): Promise<AsyncIterable<WatchEvent<T>>> {
    this.calls.push(opts.sendInitialEvents ? "stream" : `watch@${opts.resourceVersion ?? ""}`);
    const err = this.watchErrors.shift();
    if (err) throw err;
    const from = Number(opts.resourceVersion || 0);
    if (!opts.sendInitialEvents && from < this.compacted)
      throw expired(`too old resource version: ${from} (${this.compacted})`);
    const queue: WatchEvent<T>[] = [];
    if (opts.sendInitialEvents) {
      for (const o of this.objects.values())
        queue.push({ type: "ADDED", object: structuredClone(o) });
      queue.push({
        type: "BOOKMARK",
        object: {
          metadata: {
            resourceVersion: String(this.rv),
            annotations: { "k8s.io/initial-events-end": "true" },
          },
        } as unknown as T,
      });
    } else {
      for (const c of this.history)
        if (c.rv > from) queue.push({ type: c.type, object: structuredClone(c.object) });
    }
    let ended = false;
    let wake: (() => void) | undefined;
    const w: OpenWatch<T> = {
      push: (e) => {
        queue.push(e);
        wake?.();
      },
      end: () => {
        ended = true;
        this.watches.delete(w);
        wake?.();
      },
    };
    this.watches.add(w);
    signal.addEventListener("abort", () => w.end(), { once: true });
    const watches = this.watches;
    return {
      async *[Symbol.asyncIterator]() {
        try {
          for (;;) {
            const e = queue.shift();
            if (e) {
              yield e;
              continue;
            }
            if (ended) return;
            await new Promise<void>((r) => (wake = r));
            wake = undefined;
          }
        } finally {
          watches.delete(w);
        }
      },
    };
  }
}

/** A ConfigMap-like object for tests. */
export function obj(
  name: string,
  namespace = "default",
  data: Record<string, string> = {},
): KObject & {
  data: Record<string, string>;
} {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace }, data };
}

/** Collects items of an async iterator until `until` says stop (or `max` items). */
export async function take<T>(
  it: AsyncIterator<T>,
  until: (items: T[]) => boolean,
  max = 10_000,
): Promise<T[]> {
  const out: T[] = [];
  while (out.length < max && !until(out)) {
    const r = await it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

export { StatusError };
