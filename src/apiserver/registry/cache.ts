import type { Store, Watch, WatchEvent } from "../../storage/interface.js";
import { compareKeys } from "../../storage/interface.js";
import type { KObject } from "./types.js";

/**
 * How the objects of one resource turn from stored bytes into what the API serves.
 */
export interface ObjectCodec {
  /** The decoded object as served, with metadata.resourceVersion (a fresh copy on every call). */
  decode(raw: Uint8Array, revision: number): KObject;
  /**
   * Where the content of the metadata object starts (right after `"metadata":{`) when the stored
   * bytes are already the served JSON but for the resourceVersion (stored in the served version,
   * apiVersion, kind and metadata first, as this server writes objects); -1 otherwise.
   */
  metadataStart(raw: Uint8Array): number;
  /** The labels and field-selector fields of an object, for selectors. */
  attributes(obj: KObject): ObjectAttributes;
  /** The attributes of stored bytes this server wrote, known without decoding them. */
  knownAttributes?(raw: Uint8Array): ObjectAttributes | undefined;
}

export interface ObjectAttributes {
  labels: Record<string, string> | undefined;
  fields: Record<string, string>;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN = 0x7b;
const CLOSE = 0x7d;

/** The index of the `}` that closes the JSON object whose content starts at `from`. */
function objectEnd(bytes: Buffer, from: number): number {
  let depth = 1;
  for (let i = from; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c === QUOTE) {
      for (i++; i < bytes.length; i++) {
        const d = bytes[i]!;
        if (d === BACKSLASH) i++;
        else if (d === QUOTE) break;
      }
    } else if (c === OPEN || c === 0x5b) depth++;
    else if (c === CLOSE || c === 0x5d) {
      if (--depth === 0) return i;
    }
  }
  return -1;
}

/** Where an object's JSON is written piece by piece (a response body). */
export interface ByteSink {
  bytes(b: Uint8Array, start?: number, end?: number): void;
  text(s: string): void;
}

/** A sink that keeps the pieces as buffers (views of the bytes given, not copies). */
function partsSink(out: Buffer[]): ByteSink {
  return {
    bytes: (b, start = 0, end = b.length) =>
      out.push(Buffer.from(b.buffer, b.byteOffset + start, end - start)),
    text: (s) => out.push(Buffer.from(s)),
  };
}

/**
 * One object at one revision, as the cache (or a storage read) holds it: the stored bytes, shared
 * with the storage layer, with what is derived from them computed on demand.
 */
export class CachedObject {
  private attrs: ObjectAttributes | undefined;
  private lines: Partial<Record<string, Buffer>> | undefined;
  private decoded: KObject | undefined;
  private printed: KObject | undefined;
  /** Where the metadata content starts and where its closing brace is; -1: not served as is. */
  private metaStart: number | undefined;
  private metaEnd = -1;

  constructor(
    readonly key: string,
    readonly raw: Uint8Array,
    /** The revision the object is served at: its modRevision, or the revision of its deletion. */
    readonly revision: number,
    private readonly codec: ObjectCodec,
  ) {}

  /** A fresh decoded copy, the caller's to change. */
  object(): KObject {
    return this.codec.decode(this.raw, this.revision);
  }

  /**
   * The decoded object, kept: for reading only (tables, selectors). The cache keeps it as long
   * as it keeps the object, so only what needs the decoded form pays for it.
   */
  view(): KObject {
    return (this.decoded ??= this.object());
  }

  /**
   * The decoded object without metadata.managedFields, kept for Tables: their cells never read
   * those, which are half of a typical object's JSON and most of its decoded objects. A list of
   * thousands then keeps (and the collector promotes and marks) half as much.
   */
  printView(): KObject {
    if (this.decoded) return this.decoded;
    if (!this.printed) {
      const obj = this.object();
      if (obj.metadata) delete obj.metadata.managedFields;
      this.printed = obj;
    }
    return this.printed;
  }

  private bytes(): Buffer {
    return Buffer.from(this.raw.buffer, this.raw.byteOffset, this.raw.byteLength);
  }

  private start(): number {
    return (this.metaStart ??= this.codec.metadataStart(this.raw));
  }

  private resourceVersionText(comma: boolean): string {
    return `"resourceVersion":"${this.revision}"${comma ? "," : ""}`;
  }

  /** The object as JSON, resourceVersion included. */
  json(): Buffer {
    const parts: Buffer[] = [];
    this.writeJSON(partsSink(parts));
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** Writes the object's JSON, resourceVersion included. */
  writeJSON(out: ByteSink): void {
    const at = this.start();
    if (at < 0) {
      out.text(JSON.stringify(this.view()));
      return;
    }
    out.bytes(this.raw, 0, at);
    out.text(this.resourceVersionText(this.raw[at] !== CLOSE));
    out.bytes(this.raw, at);
  }

  /** Writes the JSON of the object's metadata, resourceVersion included. */
  writeMetadataJSON(out: ByteSink): void {
    const at = this.start();
    if (at >= 0 && this.metaEnd < 0) this.metaEnd = objectEnd(this.bytes(), at);
    if (at < 0 || this.metaEnd < 0) {
      out.text(JSON.stringify(this.view().metadata ?? {}));
      return;
    }
    out.bytes(this.raw, at - 1, at);
    out.text(this.resourceVersionText(this.raw[at] !== CLOSE));
    out.bytes(this.raw, at, this.metaEnd + 1);
  }

  /** Labels and fields for selectors, kept (small); the decoding they need is not. */
  attributes(): ObjectAttributes {
    return (this.attrs ??=
      this.codec.knownAttributes?.(this.raw) ??
      this.codec.attributes(this.decoded ?? this.object()));
  }

  /** Drops the encoded event lines (kept only while one batch of events goes out). */
  releaseLines(): void {
    this.lines = undefined;
  }

  /** `{"type":TYPE,"object":...}\n`, encoded once per type however many watchers get it. */
  eventLine(type: string): Buffer {
    this.lines ??= {};
    let line = this.lines[type];
    if (!line) {
      const parts = [Buffer.from(`{"type":"${type}","object":`)];
      this.writeJSON(partsSink(parts));
      parts.push(EVENT_END);
      line = Buffer.concat(parts);
      this.lines[type] = line;
    }
    return line;
  }
}

const EVENT_END = Buffer.from("}\n");

/** A change the cache saw: the object as it is now (for a delete, as it was) and before. */
export interface CacheEvent {
  type: "put" | "delete";
  revision: number;
  key: string;
  object: CachedObject;
  prev: CachedObject | undefined;
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED";

/**
 * What a change means to a watch with selectors `matches`: they apply to the old and the new
 * state, so an object that starts matching is ADDED and one that stops matching DELETED (with its
 * new state), as upstream's watches report it; undefined when the watch does not see it.
 */
export function watchEventFor(
  e: Pick<CacheEvent, "type" | "object" | "prev">,
  matches: ((obj: CachedObject) => boolean) | undefined,
): { type: WatchEventType; object: CachedObject } | undefined {
  const prevMatched = e.prev !== undefined && (!matches || matches(e.prev));
  if (e.type === "delete") return prevMatched ? { type: "DELETED", object: e.object } : undefined;
  if (!matches || matches(e.object)) {
    return { type: prevMatched ? "MODIFIED" : "ADDED", object: e.object };
  }
  return prevMatched ? { type: "DELETED", object: e.object } : undefined;
}

/** Where a cache watch delivers: called with every batch of events that are due to it, in order. */
export interface CacheWatchSink {
  events(batch: Array<{ type: WatchEventType; object: CachedObject }>): void;
  /** A bookmark at `revision` (only for watches that asked for them). */
  bookmark(revision: number): void;
  /** The cache can no longer serve this watch (it is stopping or restarting): end the stream. */
  end(): void;
}

export interface CacheWatchOptions {
  /** Keys the watch sees: all start with this. */
  prefix: string;
  /** Whether an object passes the watch's label and field selectors. */
  matches: ((obj: CachedObject) => boolean) | undefined;
  bookmarks: boolean;
}

class CacheWatcher {
  pending: Array<{ type: WatchEventType; object: CachedObject }> = [];
  constructor(
    readonly opts: CacheWatchOptions,
    readonly sink: CacheWatchSink,
  ) {}

  /** Queues what `e` means to this watch, applying selectors to the old and the new state. */
  offer(e: CacheEvent): boolean {
    if (!e.key.startsWith(this.opts.prefix)) return false;
    const out = watchEventFor(e, this.opts.matches);
    if (out) this.pending.push(out);
    return out !== undefined;
  }

  flush(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.sink.events(batch);
  }
}

/** Events the cache keeps to start watches from a recent resourceVersion without storage. */
const DEFAULT_CAPACITY = 10_000;
/** The longest a watch event waits for the previous send to the watches to be paid back. */
const MAX_FLUSH_DELAY_MS = 50;
/** How often watches that allow them get a bookmark (upstream: about once a minute). */
const BOOKMARK_INTERVAL_MS = 60_000;

export class TooLargeResourceVersion extends Error {
  constructor(
    readonly requested: number,
    readonly current: number,
  ) {
    super(`Too large resource version: ${requested}, current: ${current}`);
  }
}

/**
 * The watch cache of one resource (upstream's cacher): every object under a key prefix held in
 * memory as stored bytes, kept current by one storage watch, plus a window of recent events.
 * Lists and watches are served from it, so that any number of them costs the storage layer
 * nothing; each event is encoded once for all the watches that get it.
 *
 * Consistency: `waitFresh` blocks until the cache has seen everything the storage layer had
 * committed when it was called (asking the storage watch for a progress notification when no
 * event of this prefix comes), so a list after a write sees the write.
 */
export class WatchCache {
  private objects = new Map<string, CachedObject>();
  /** The keys of `objects` in storage order. */
  /**
   * The keys in storage order, brought up to date only when a list reads them: keys created
   * since wait in `added`, keys deleted since in `removed` (a busy create path would otherwise
   * move half the array for each new key).
   */
  private sorted: string[] = [];
  private added: string[] = [];
  private readonly removed = new Set<string>();
  /** Every event after `windowStart`, in revision order (a ring of at most `capacity`). */
  private events: CacheEvent[] = [];
  private eventsHead = 0;
  private windowStart = 0;
  /** Everything up to this revision is reflected. */
  revision = 0;
  private readonly watchers = new Set<CacheWatcher>();
  private readonly waiters: Array<{ revision: number; resolve: () => void }> = [];
  private watch: Watch | undefined;
  private initializing: Promise<void> | undefined;
  private flushScheduled = false;
  /** Objects of the events sent in the coming flush, whose encoded lines it releases. */
  private sent: CachedObject[] = [];
  private lastFlushEnd = 0;
  private lastFlushMs = 0;
  private stopped = false;
  private bookmarkTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    readonly prefix: string,
    private readonly codec: ObjectCodec,
    /** Stored bytes to plain bytes (encryption at rest). */
    private readonly fromStorage?: (raw: Uint8Array, key: string) => Uint8Array,
    private readonly capacity = DEFAULT_CAPACITY,
  ) {}

  private plain(raw: Uint8Array, key: string): Uint8Array {
    if (!this.fromStorage) return raw;
    try {
      return this.fromStorage(raw, key);
    } catch (err) {
      process.stderr.write(`k8ts apiserver: watch cache: cannot read ${key}: ${String(err)}\n`);
      return raw;
    }
  }

  /** Whether the cache holds the state of the store (it has listed it once). */
  get started(): boolean {
    return this.revision > 0;
  }

  /** Resolves once the cache holds the state of the store (starting it on first use). */
  ready(): Promise<void> {
    if (this.stopped) return Promise.reject(new Error("watch cache stopped"));
    return (this.initializing ??= this.initialize());
  }

  private async initialize(): Promise<void> {
    const list = await this.store.list(this.prefix);
    const objects = new Map<string, CachedObject>();
    const keys: string[] = [];
    for (const kv of list.kvs) {
      const value = this.plain(kv.value, kv.key);
      objects.set(kv.key, new CachedObject(kv.key, value, kv.modRevision, this.codec));
      keys.push(kv.key);
    }
    this.objects = objects;
    this.sorted = keys;
    this.added = [];
    this.removed.clear();
    this.events = [];
    this.eventsHead = 0;
    this.revision = list.revision;
    this.windowStart = list.revision;
    const watch = this.store.watch(this.prefix, { prefix: true, startRevision: list.revision + 1 });
    this.watch = watch;
    void this.follow(watch);
    this.bookmarkTimer ??= setInterval(() => this.sendBookmarks(), BOOKMARK_INTERVAL_MS);
    this.bookmarkTimer.unref();
  }

  /** Applies the storage watch to the cache until it ends; restarts from a fresh list on failure. */
  private async follow(watch: Watch): Promise<void> {
    try {
      for await (const msg of watch) {
        if (msg.type === "progress") {
          this.advance(msg.revision);
          continue;
        }
        for (const e of msg.events) this.apply(e);
        this.advance(msg.events[msg.events.length - 1]!.kv.modRevision);
      }
    } catch (err) {
      process.stderr.write(`k8ts apiserver: watch cache of ${this.prefix}: ${String(err)}\n`);
    }
    if (this.stopped || this.watch !== watch) return;
    // The storage watch ended (compaction, storage trouble): start over from a fresh list, as
    // upstream's reflector does; the watches served so far end and their clients resume.
    for (const w of this.watchers) w.sink.end();
    this.watchers.clear();
    this.watch = undefined;
    this.initializing = (async () => {
      for (let delay = 100; ; delay = Math.min(delay * 2, 5_000)) {
        if (this.stopped) return;
        try {
          return await this.initialize();
        } catch {
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    })();
  }

  private apply(e: WatchEvent): void {
    const key = e.kv.key;
    const revision = e.kv.modRevision;
    const old = this.objects.get(key);
    const prev =
      old ??
      (e.prevKv
        ? this.entry(e.prevKv.key, this.plain(e.prevKv.value, e.prevKv.key), e.prevKv.modRevision)
        : undefined);
    let event: CacheEvent;
    if (e.type === "delete") {
      if (old) {
        this.objects.delete(key);
        this.removed.add(key);
      }
      // A deleted object is served at the revision of its deletion.
      const last = prev ?? this.entry(key, e.kv.value, revision);
      event = {
        type: "delete",
        revision,
        key,
        object: this.entry(key, last.raw, revision),
        prev,
      };
    } else {
      const object = this.entry(key, this.plain(e.kv.value, key), revision);
      // A key deleted since the last merge is still in `sorted`: it only stops being removed.
      if (!old && !this.removed.delete(key)) this.added.push(key);
      this.objects.set(key, object);
      event = { type: "put", revision, key, object, prev };
    }
    this.record(event);
    let due = false;
    for (const w of this.watchers) if (w.offer(event)) due = true;
    if (due) {
      this.sent.push(event.object);
      this.scheduleFlush();
    }
  }

  private entry(key: string, raw: Uint8Array, revision: number): CachedObject {
    return new CachedObject(key, raw, revision, this.codec);
  }

  private record(event: CacheEvent): void {
    this.events.push(event);
    if (this.events.length - this.eventsHead > this.capacity) {
      this.windowStart = this.events[this.eventsHead]!.revision;
      this.events[this.eventsHead++] = undefined as unknown as CacheEvent;
      if (this.eventsHead > 1024 && this.eventsHead * 2 > this.events.length) {
        this.events = this.events.slice(this.eventsHead);
        this.eventsHead = 0;
      }
    }
  }

  private advance(revision: number): void {
    if (revision <= this.revision) return;
    this.revision = revision;
    if (this.waiters.length === 0) return;
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!;
      if (w.revision <= revision) {
        this.waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  /** Every key in storage order (merging the keys created and deleted since the last call). */
  private get keys(): string[] {
    if (this.added.length === 0 && this.removed.size === 0) return this.sorted;
    const added = this.added.sort(compareKeys);
    const removed = this.removed;
    const old = this.sorted;
    const out: string[] = [];
    let i = 0;
    let j = 0;
    while (i < old.length || j < added.length) {
      if (j >= added.length || (i < old.length && compareKeys(old[i]!, added[j]!) < 0)) {
        const key = old[i++]!;
        if (!removed.has(key)) out.push(key);
      } else {
        const key = added[j++]!;
        if (!removed.has(key)) out.push(key);
      }
    }
    this.sorted = out;
    this.added = [];
    removed.clear();
    return out;
  }

  /** Position of `key` in the sorted keys, or where it would go. */
  private indexOf(key: string): number {
    const keys = this.keys;
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKeys(keys[mid]!, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Sends what the watches have pending, after the I/O of this turn so that the events of every
   * commit in it go out together. When sending takes long (many watchers, big objects), the next
   * send waits as long as the last one took: the watches then get more events per write, and
   * sending never takes more than about half of the server's time.
   */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    const run = () => {
      this.flushScheduled = false;
      const started = performance.now();
      for (const w of this.watchers) w.flush();
      // The encoded lines served this batch; the window of events keeps only the objects.
      for (const o of this.sent) o.releaseLines();
      this.sent = [];
      this.lastFlushEnd = performance.now();
      this.lastFlushMs = this.lastFlushEnd - started;
    };
    const wait =
      Math.min(this.lastFlushMs, MAX_FLUSH_DELAY_MS) - (performance.now() - this.lastFlushEnd);
    if (wait > 1) setTimeout(run, wait);
    else setImmediate(run);
  }

  /**
   * Waits until the cache reflects revision `target` (by default: everything committed now).
   * Fails with TooLargeResourceVersion when that does not happen within `timeoutMs`.
   */
  async waitFresh(target?: number, timeoutMs = 3_000): Promise<void> {
    await this.ready();
    const wanted = target ?? (await this.store.get(this.prefix)).revision;
    if (this.revision >= wanted) return;
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        revision: wanted,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new TooLargeResourceVersion(wanted, this.revision));
      }, timeoutMs);
      this.waiters.push(waiter);
      // No event of this prefix may be coming: the progress notification moves the revision on.
      this.watch?.requestProgress();
    });
  }

  /**
   * Objects under `prefix` in storage order from `startKey` on, passing `matches`; at most `limit`
   * (0: all). `more` says whether matching objects remain after the last one returned.
   */
  list(
    prefix: string,
    matches: ((obj: CachedObject) => boolean) | undefined,
    limit = 0,
    startKey = prefix,
  ): { items: CachedObject[]; more: boolean; remaining: number } {
    const items: CachedObject[] = [];
    const keys = this.keys;
    let i = this.indexOf(startKey < prefix ? prefix : startKey);
    for (; i < keys.length; i++) {
      const key = keys[i]!;
      if (!key.startsWith(prefix)) break;
      const obj = this.objects.get(key)!;
      if (matches && !matches(obj)) continue;
      if (limit > 0 && items.length >= limit) {
        let remaining = 0;
        for (; i < keys.length && keys[i]!.startsWith(prefix); i++) remaining++;
        return { items, more: true, remaining };
      }
      items.push(obj);
    }
    return { items, more: false, remaining: 0 };
  }

  get(key: string): CachedObject | undefined {
    return this.objects.get(key);
  }

  /**
   * Starts a watch at the cache's current revision, first delivering the current objects as
   * ADDED when `initial`; or, with `after`, replaying the events after that revision. Returns
   * undefined when `after` is older than the window of events kept (the caller then watches the
   * storage layer), and the watch's starting revision otherwise.
   */
  addWatch(
    opts: CacheWatchOptions,
    sink: CacheWatchSink,
    start: { initial: true } | { after: number },
  ): { revision: number; cancel: () => void } | undefined {
    const watcher = new CacheWatcher(opts, sink);
    if ("initial" in start) {
      const { items } = this.list(opts.prefix, opts.matches);
      for (const object of items) watcher.pending.push({ type: "ADDED", object });
    } else {
      if (start.after < this.windowStart) return undefined;
      let lo = this.eventsHead;
      let hi = this.events.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.events[mid]!.revision <= start.after) lo = mid + 1;
        else hi = mid;
      }
      for (let i = lo; i < this.events.length; i++) watcher.offer(this.events[i]!);
    }
    this.watchers.add(watcher);
    if (watcher.pending.length > 0) this.scheduleFlush();
    return {
      revision: this.revision,
      cancel: () => {
        this.watchers.delete(watcher);
      },
    };
  }

  private sendBookmarks(): void {
    for (const w of this.watchers) {
      if (!w.opts.bookmarks) continue;
      w.flush();
      w.sink.bookmark(this.revision);
    }
  }

  /** Sends pending events of every watch now (before a bookmark or the end of a stream). */
  flushAll(): void {
    for (const w of this.watchers) w.flush();
  }

  stop(): void {
    this.stopped = true;
    if (this.bookmarkTimer) clearInterval(this.bookmarkTimer);
    this.watch?.close();
    for (const w of this.watchers) w.sink.end();
    this.watchers.clear();
    for (const w of this.waiters.splice(0)) w.resolve();
  }

  /** Figures for tests and diagnostics. */
  stats(): { objects: number; events: number; watchers: number; revision: number } {
    return {
      objects: this.objects.size,
      events: this.events.length - this.eventsHead,
      watchers: this.watchers.size,
      revision: this.revision,
    };
  }
}
