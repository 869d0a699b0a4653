/**
 * The cache an informer keeps: objects by key (`namespace/name`, or `name` when cluster-scoped)
 * with secondary indexes, as client-go's cache.Indexer.
 *
 * An index function maps an object to the values it is filed under (a pod under its node name,
 * an object under each owner's uid); `byIndex(name, value)` answers every object filed under
 * `value`. The `namespace` index is always present.
 *
 * Objects handed out are the cached objects themselves: callers must not modify them (copy with
 * `structuredClone` first), as with client-go's listers.
 */

import type { KObject } from "./kinds.js";
import { objectKey } from "./resources.js";

export type IndexFunc<T> = (obj: T) => readonly string[];
export type Indexers<T> = Record<string, IndexFunc<T>>;

export const NAMESPACE_INDEX = "namespace";

/** Files an object under its namespace (cluster-scoped objects under ""). */
export function namespaceIndexFunc(obj: KObject): string[] {
  return [obj.metadata?.namespace ?? ""];
}

export class Store<T extends KObject> {
  private readonly items = new Map<string, T>();
  private readonly indexers = new Map<string, IndexFunc<T>>();
  /** index name -> indexed value -> keys */
  private readonly indices = new Map<string, Map<string, Set<string>>>();

  constructor(indexers: Indexers<T> = {}) {
    this.addIndexers({ [NAMESPACE_INDEX]: namespaceIndexFunc, ...indexers });
  }

  /**
   * Adds index functions; objects already cached are indexed at once. Re-adding an index name
   * with the same function is a no-op, with another function an error.
   */
  addIndexers(indexers: Indexers<T>): void {
    for (const [name, fn] of Object.entries(indexers)) {
      const existing = this.indexers.get(name);
      if (existing === fn) continue;
      if (existing) throw new Error(`indexer "${name}" already exists`);
      this.indexers.set(name, fn);
      const index = new Map<string, Set<string>>();
      this.indices.set(name, index);
      for (const [key, obj] of this.items) for (const v of fn(obj)) file(index, v, key);
    }
  }

  get size(): number {
    return this.items.size;
  }

  get(key: string): T | undefined {
    return this.items.get(key);
  }

  /** The object of `namespace`/`name` ("" for cluster-scoped). */
  getByName(namespace: string, name: string): T | undefined {
    return this.items.get(namespace ? `${namespace}/${name}` : name);
  }

  has(key: string): boolean {
    return this.items.has(key);
  }

  keys(): string[] {
    return [...this.items.keys()];
  }

  list(): T[] {
    return [...this.items.values()];
  }

  /** Objects of one namespace ("" for cluster-scoped objects). */
  listNamespace(namespace: string): T[] {
    return this.byIndex(NAMESPACE_INDEX, namespace);
  }

  /** Adds or replaces; answers the previous object. */
  set(obj: T): T | undefined {
    const key = objectKey(obj);
    const old = this.items.get(key);
    if (old) this.unindex(key, old);
    this.items.set(key, obj);
    this.index(key, obj);
    return old;
  }

  /** Removes by key; answers the removed object. */
  delete(key: string): T | undefined {
    const old = this.items.get(key);
    if (!old) return undefined;
    this.unindex(key, old);
    this.items.delete(key);
    return old;
  }

  /** Replaces the whole content in one step (a fresh snapshot). */
  replace(objects: Iterable<T>): void {
    this.items.clear();
    for (const index of this.indices.values()) index.clear();
    for (const obj of objects) {
      const key = objectKey(obj);
      this.items.set(key, obj);
      this.index(key, obj);
    }
  }

  /** Objects filed under `value` in index `name`. */
  byIndex(name: string, value: string): T[] {
    const keys = this.indexKeys(name, value);
    const out: T[] = [];
    for (const k of keys) {
      const obj = this.items.get(k);
      if (obj) out.push(obj);
    }
    return out;
  }

  /** Keys filed under `value` in index `name`. */
  indexKeys(name: string, value: string): string[] {
    const index = this.indices.get(name);
    if (!index) throw new Error(`index "${name}" does not exist`);
    return [...(index.get(value) ?? [])];
  }

  /** The values index `name` holds. */
  indexValues(name: string): string[] {
    const index = this.indices.get(name);
    if (!index) throw new Error(`index "${name}" does not exist`);
    return [...index.keys()];
  }

  /** Objects filed under any of the values `obj` maps to in index `name` (client-go's Index). */
  byIndexOf(name: string, obj: T): T[] {
    const fn = this.indexers.get(name);
    if (!fn) throw new Error(`index "${name}" does not exist`);
    const keys = new Set<string>();
    for (const v of fn(obj)) for (const k of this.indexKeys(name, v)) keys.add(k);
    return [...keys].map((k) => this.items.get(k)!);
  }

  private index(key: string, obj: T): void {
    for (const [name, fn] of this.indexers) {
      const index = this.indices.get(name)!;
      for (const v of fn(obj)) file(index, v, key);
    }
  }

  private unindex(key: string, obj: T): void {
    for (const [name, fn] of this.indexers) {
      const index = this.indices.get(name)!;
      for (const v of fn(obj)) {
        const keys = index.get(v);
        if (!keys) continue;
        keys.delete(key);
        if (keys.size === 0) index.delete(v);
      }
    }
  }
}

function file(index: Map<string, Set<string>>, value: string, key: string): void {
  let keys = index.get(value);
  if (!keys) index.set(value, (keys = new Set()));
  keys.add(key);
}
