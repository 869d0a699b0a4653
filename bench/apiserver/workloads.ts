/**
 * The API server benchmark's workloads, each against a running server (see procs.ts): creates over
 * HTTP/1.1 (plain or TLS) and HTTP/2, gets, lists (JSON and Table), watch fan-out under a paced
 * write load, the load of many objects, and the same create load against the bare-runtime ceiling.
 */
import net from "node:net";
import { performance } from "node:perf_hooks";
import { Samples, summarize, type Summary } from "../lib/stats.js";
import {
  closedLoop,
  describeFailure,
  H1Conn,
  h1Request,
  H2Client,
  openConns,
  requestOnce,
  runCount,
  type Target,
  type ThroughputResult,
} from "./client.js";
import { configMapJson, podJson, SEQ_ANNOTATION } from "./objects.js";
import type { ServerProc } from "./procs.js";
import { cpuWindow, type CpuUse } from "../lib/sys.js";

export type Transport = "http1" | "http1-tls" | "http2-tls";

const JSON_HEADERS = { "Content-Type": "application/json", Accept: "application/json" };
export const TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io";

export function plainTarget(server: ServerProc): Target {
  return { host: "127.0.0.1", port: server.port };
}

export function tlsTarget(server: ServerProc): Target {
  if (!server.securePort || !server.ca) throw new Error("the server has no HTTPS port");
  const t: Target = { host: "127.0.0.1", port: server.securePort, ca: server.ca };
  if (server.clientCert) {
    t.cert = server.clientCert;
    t.key = server.clientKey!;
  }
  return t;
}

export interface LoopConfig {
  workers: number;
  durationMs: number;
  warmupMs: number;
}

/** Bytes of one create's request body (the Pod's JSON). */
export function podBodyBytes(): number {
  return Buffer.byteLength(podJson("web-frontend-7c9f8d6b5d-000000", 0));
}

/**
 * Pod creates in `namespace` over `transport`: `cfg.workers` keep-alive connections (HTTP/1.1) or
 * concurrent streams of one session (HTTP/2), each a closed loop; distinct names.
 */
export async function runCreates(
  server: ServerProc,
  transport: Transport,
  cfg: LoopConfig,
  namespace = "default",
  /** Put before the pods' names, so that several runs on one server do not collide. */
  prefix = "",
): Promise<ThroughputResult> {
  const path = `/api/v1/namespaces/${namespace}/pods`;
  const name = (seq: number) => `${prefix}web-frontend-7c9f8d6b5d-${String(seq).padStart(6, "0")}`;
  const common = { ...cfg, okStatus: [201], serverPid: server.pid };
  if (transport === "http2-tls") {
    const client = await H2Client.open(tlsTarget(server));
    const headers = {
      ":method": "POST",
      ":path": path,
      "content-type": "application/json",
      accept: "application/json",
    };
    try {
      return await closedLoop({
        ...common,
        issue: (_w, seq) => client.request(headers, podJson(name(seq), seq, namespace)),
      });
    } finally {
      await client.close();
    }
  }
  const target = transport === "http1" ? plainTarget(server) : tlsTarget(server);
  const conns = await openConns(target, cfg.workers);
  try {
    return await closedLoop({
      ...common,
      issue: (w, seq) =>
        conns[w]!.request(
          h1Request("POST", path, JSON_HEADERS, podJson(name(seq), seq, namespace)),
        ),
    });
  } finally {
    for (const c of conns) c.close();
  }
}

export interface LoadResult extends CpuUse {
  objects: number;
  concurrency: number;
  elapsedMs: number;
  perSec: number;
  errors: number;
  firstError?: string;
}

/** POSTs `count` objects made by `body(i)` to `path` with `concurrency` in flight (plain HTTP). */
export async function loadObjects(
  server: ServerProc,
  path: string,
  count: number,
  concurrency: number,
  body: (i: number) => string,
): Promise<LoadResult> {
  const conns = await openConns(plainTarget(server), concurrency);
  const window = cpuWindow(server.pid);
  try {
    const r = await runCount(
      conns,
      count,
      (i) => h1Request("POST", path, JSON_HEADERS, body(i)),
      [201],
    );
    const out: LoadResult = {
      objects: count - r.errors,
      concurrency,
      perSec: ((count - r.errors) * 1000) / r.elapsedMs,
      errors: r.errors,
      ...window(),
      elapsedMs: r.elapsedMs,
    };
    if (r.firstError) out.firstError = r.firstError;
    return out;
  } finally {
    for (const c of conns) c.close();
  }
}

/** The name of the i-th Pod loaded by `loadPods`. */
export function loadedPodName(i: number): string {
  return `listed-${String(i).padStart(6, "0")}`;
}

export function loadPods(
  server: ServerProc,
  count: number,
  concurrency: number,
  namespace = "default",
): Promise<LoadResult> {
  return loadObjects(server, `/api/v1/namespaces/${namespace}/pods`, count, concurrency, (i) =>
    podJson(loadedPodName(i), i, namespace),
  );
}

/** GETs of existing pods by name (`loadPods` names 0..count-1), in random order. */
export async function runGets(
  server: ServerProc,
  count: number,
  cfg: LoopConfig,
  namespace = "default",
  transport: "http1" | "http1-tls" = "http1",
): Promise<ThroughputResult> {
  const requests = Array.from({ length: count }, (_, i) =>
    h1Request("GET", `/api/v1/namespaces/${namespace}/pods/${loadedPodName(i)}`, {
      Accept: "application/json",
    }),
  );
  const target = transport === "http1" ? plainTarget(server) : tlsTarget(server);
  const conns = await openConns(target, cfg.workers);
  try {
    return await closedLoop({
      ...cfg,
      okStatus: [200],
      serverPid: server.pid,
      issue: (w) => conns[w]!.request(requests[Math.floor(Math.random() * count)]!),
    });
  } finally {
    for (const c of conns) c.close();
  }
}

export interface ListResult extends CpuUse {
  format: "json" | "table";
  /** Items (JSON) or rows (Table) in the checked response. */
  items: number;
  /** Bytes of one response body. */
  bytes: number;
  runs: number;
  latency: Summary;
  /** Every run's time, ms. */
  times: number[];
}

/**
 * Lists every pod of `namespace` (expected: `expected` of them) `runs` times, one after the other
 * on one keep-alive connection, after two unmeasured runs (the first one's body parsed and
 * checked). The time
 * is from sending the request to the last byte of the body (the client does not parse it).
 */
export async function runLists(
  server: ServerProc,
  format: "json" | "table",
  expected: number,
  runs: number,
  namespace = "default",
): Promise<ListResult> {
  const accept = format === "table" ? TABLE_ACCEPT : "application/json";
  const request = h1Request("GET", `/api/v1/namespaces/${namespace}/pods`, { Accept: accept });
  const conn = await H1Conn.open(plainTarget(server));
  try {
    const first = await conn.request(request, true);
    if (first.status !== 200) throw new Error(`list: ${describeFailure(first)}`);
    const parsed = JSON.parse(first.body!.toString("utf8")) as {
      kind?: string;
      items?: unknown[];
      rows?: unknown[];
    };
    const items = (format === "table" ? parsed.rows : parsed.items)?.length ?? 0;
    if (items !== expected)
      throw new Error(`list (${format}) returned ${items} ${parsed.kind} entries, not ${expected}`);
    const times: number[] = [];
    // One more unmeasured run: the check above parsed tens of megabytes in this process, and the
    // collection of that garbage would otherwise land in the first measured run.
    await conn.request(request);
    const window = cpuWindow(server.pid);
    for (let i = 0; i < runs; i++) {
      const start = performance.now();
      const r = await conn.request(request);
      if (r.status !== 200) throw new Error(`list: ${describeFailure(r)}`);
      times.push(performance.now() - start);
    }
    const { elapsedMs: _elapsed, ...cpu } = window();
    return {
      format,
      items,
      bytes: first.bodyBytes,
      runs,
      latency: summarize(times),
      times,
      ...cpu,
    };
  } finally {
    conn.close();
  }
}

// Watch fan-out

const SEQ_MARKER = Buffer.from(`"${SEQ_ANNOTATION}":"`);
const CRLFCRLF = Buffer.from("\r\n\r\n");

/**
 * One watch over a raw HTTP/1.1 connection. It does not decode the stream: each event carries
 * the object once, so finding the sequence annotation in the bytes finds the event (the chunked
 * framing sits between events, as the server writes one chunk per event).
 */
class Watcher {
  events = 0;
  private head: Buffer | undefined = Buffer.alloc(0);
  private carry: Buffer | undefined;

  private constructor(
    private readonly socket: net.Socket,
    private readonly onSeq: (seq: number) => void,
  ) {}

  static open(target: Target, path: string, onSeq: (seq: number) => void): Promise<Watcher> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: target.host, port: target.port });
      const w = new Watcher(socket, onSeq);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error("watch: no response headers within 30 s"));
      }, 30_000);
      socket.setNoDelay(true);
      socket.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once("close", () => {
        clearTimeout(timer);
        reject(new Error("watch: connection closed before the response"));
      });
      socket.on("connect", () =>
        socket.write(h1Request("GET", path, { Accept: "application/json" }), "latin1"),
      );
      socket.on("data", (chunk: Buffer) => {
        if (w.head) {
          const data = Buffer.concat([w.head, chunk]);
          const end = data.indexOf(CRLFCRLF);
          if (end < 0) {
            w.head = data;
            return;
          }
          w.head = undefined;
          clearTimeout(timer);
          const status = Number(data.toString("latin1", 9, 12));
          if (status !== 200) {
            socket.destroy();
            reject(new Error(`watch: HTTP ${status}: ${data.toString("utf8", end + 4)}`));
            return;
          }
          socket.removeAllListeners("error");
          socket.removeAllListeners("close");
          socket.on("error", () => undefined);
          resolve(w);
          w.scan(data.subarray(end + 4));
          return;
        }
        w.scan(chunk);
      });
    });
  }

  private scan(chunk: Buffer): void {
    let from = 0;
    if (this.carry) {
      // A marker (or its value) cut by the packet boundary: look at the carried tail joined with
      // the start of this chunk only, not at a copy of the whole chunk.
      const carried = this.carry;
      this.carry = undefined;
      const joint = Buffer.concat([carried, chunk.subarray(0, SEQ_MARKER.length + 24)]);
      const i = joint.indexOf(SEQ_MARKER);
      if (i >= 0 && i < carried.length) {
        const start = i + SEQ_MARKER.length;
        const end = joint.indexOf(0x22, start);
        if (end < 0) {
          this.carry = Buffer.concat([carried, chunk]).subarray(i);
          return;
        }
        this.found(joint, start, end);
        from = Math.max(0, end + 1 - carried.length);
      }
    }
    let pos = from;
    for (;;) {
      const i = chunk.indexOf(SEQ_MARKER, pos);
      if (i < 0) break;
      const start = i + SEQ_MARKER.length;
      const end = chunk.indexOf(0x22, start);
      if (end < 0) {
        this.carry = Buffer.from(chunk.subarray(i));
        return;
      }
      this.found(chunk, start, end);
      pos = end + 1;
    }
    // The tail may hold the start of a marker cut by the packet boundary.
    const keep = Math.max(pos, chunk.length - SEQ_MARKER.length + 1);
    if (keep < chunk.length) this.carry = Buffer.from(chunk.subarray(keep));
  }

  private found(data: Buffer, start: number, end: number): void {
    let seq = 0;
    for (let k = start; k < end; k++) seq = seq * 10 + (data[k]! - 48);
    this.events++;
    this.onSeq(seq);
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface WatchConfig {
  watchers: number;
  /** Writes (pod creates) per second, paced, and for how long. */
  rate: number;
  durationMs: number;
  /** Keep-alive connections of the writer (writes queue when all are busy). */
  writerConns: number;
  /** How long to wait for the writes' responses after the last one was sent. */
  writesMaxMs: number;
  /** How long to wait for the last deliveries after the last write was answered. */
  drainMaxMs: number;
}

export interface WatchResult extends CpuUse {
  watchers: number;
  targetRate: number;
  watchSetupMs: number;
  writes: number;
  writeErrors: number;
  /** Writes sent but not answered within `writesMaxMs` (neither counted nor expected). */
  unanswered: number;
  firstError?: string;
  writesPerSec: number;
  writeLatency: Summary;
  expectedDeliveries: number;
  /** Deliveries of the answered writes (and of the others, which are not expected). */
  deliveries: number;
  otherDeliveries: number;
  missing: number;
  /** From the write's response (read by the writer) to a watcher reading the event, ms. */
  latency: Summary;
  /** From sending the write to a watcher reading the event, ms. */
  latencyFromSend: Summary;
  /** Deliveries read before the writer read the write's response (counted as 0 ms). */
  deliveredBeforeResponse: number;
  /** From the last write's response to the last delivery, ms. */
  drainMs: number;
  drainTimedOut: boolean;
  /** Deliveries per second from the first write to the last delivery. */
  deliveriesPerSec: number;
  /** Events seen by the slowest and the fastest watcher. */
  minPerWatcher: number;
  maxPerWatcher: number;
}

/**
 * `cfg.watchers` watches of the pods in `namespace` (from the current resourceVersion) over plain
 * HTTP/1.1, while a paced writer creates `cfg.rate` pods per second for `cfg.durationMs`.
 * Each pod carries its sequence number; the clients time each watcher's receipt of each event.
 */
export async function runWatchFanout(
  server: ServerProc,
  cfg: WatchConfig,
  namespace = "default",
): Promise<WatchResult> {
  const target = plainTarget(server);
  const list = await requestOnce(target, "GET", `/api/v1/namespaces/${namespace}/pods?limit=1`);
  if (list.status !== 200) throw new Error(`list for the resourceVersion: HTTP ${list.status}`);
  const rv = (JSON.parse(list.body) as { metadata: { resourceVersion: string } }).metadata
    .resourceVersion;
  const total = Math.round((cfg.rate * cfg.durationMs) / 1000);
  const sentAt = new Float64Array(total).fill(NaN);
  const respAt = new Float64Array(total).fill(NaN);
  const fromResp = new Samples(total * cfg.watchers);
  const fromSend = new Samples(total * cfg.watchers);
  const delivered = new Uint32Array(total);
  let early = 0;
  let lastDelivery = 0;
  const onSeq = (seq: number) => {
    if (seq >= total) return;
    const now = performance.now();
    delivered[seq]!++;
    lastDelivery = now;
    fromSend.push(now - sentAt[seq]!);
    const r = respAt[seq]!;
    if (Number.isNaN(r)) {
      early++;
      fromResp.push(0);
    } else fromResp.push(Math.max(0, now - r));
  };

  const watchers: Watcher[] = [];
  const writerConns: H1Conn[] = [];
  try {
    const setup0 = performance.now();
    const path = `/api/v1/namespaces/${namespace}/pods?watch=true&resourceVersion=${rv}`;
    for (let i = 0; i < cfg.watchers; i += 100) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(100, cfg.watchers - i) }, () =>
          Watcher.open(target, path, onSeq),
        ),
      );
      watchers.push(...batch);
    }
    const watchSetupMs = performance.now() - setup0;
    writerConns.push(...(await openConns(target, cfg.writerConns)));

    const window = cpuWindow(server.pid);
    const writeLatency = new Samples(total);
    let writeErrors = 0;
    let firstError: string | undefined;
    let completed = 0;
    let lastResponse = 0;
    const free = [...writerConns];
    const queue: number[] = [];
    const podsPath = `/api/v1/namespaces/${namespace}/pods`;
    const send = (conn: H1Conn, seq: number) => {
      const t = performance.now();
      sentAt[seq] = t;
      const body = podJson(`watched-${String(seq).padStart(6, "0")}`, seq, namespace);
      conn.request(h1Request("POST", podsPath, JSON_HEADERS, body)).then(
        (r) => {
          const now = performance.now();
          if (r.status === 201) {
            respAt[seq] = now;
            writeLatency.push(now - t);
          } else {
            writeErrors++;
            firstError ??= describeFailure(r);
          }
          done(conn);
        },
        (err: unknown) => {
          writeErrors++;
          firstError ??= String((err as Error)?.message ?? err);
          done(conn);
        },
      );
    };
    const done = (conn: H1Conn) => {
      completed++;
      lastResponse = performance.now();
      const next = queue.shift();
      if (next !== undefined && !conn.closed) send(conn, next);
      else if (next !== undefined) queue.unshift(next);
      else free.push(conn);
    };
    const t0 = performance.now();
    let issued = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        const due = Math.min(total, Math.floor(((performance.now() - t0) * cfg.rate) / 1000) + 1);
        while (issued < due) {
          const seq = issued++;
          const conn = free.pop();
          if (conn) send(conn, seq);
          else queue.push(seq);
        }
        if (issued < total) setTimeout(tick, 1);
        else resolve();
      };
      tick();
    });
    // Every write answered (bounded: a write that takes a minute is a failure anyway).
    const writesDeadline = performance.now() + cfg.writesMaxMs;
    while (completed < total && performance.now() < writesDeadline) await sleep(5);
    const writesEnd = lastResponse;
    const writes = writeLatency.length;
    const unanswered = total - completed;
    const expected = writes * cfg.watchers;
    const counted = () => {
      let n = 0;
      let other = 0;
      for (let seq = 0; seq < total; seq++) {
        if (Number.isNaN(respAt[seq]!)) other += delivered[seq]!;
        else n += Math.min(cfg.watchers, delivered[seq]!);
      }
      return { n, other };
    };
    const drainDeadline = performance.now() + cfg.drainMaxMs;
    while (counted().n < expected && performance.now() < drainDeadline) await sleep(20);
    const { n: deliveries, other: otherDeliveries } = counted();
    const { elapsedMs: _elapsed, ...cpu } = window();
    let minPer = Infinity;
    let maxPer = 0;
    for (const w of watchers) {
      minPer = Math.min(minPer, w.events);
      maxPer = Math.max(maxPer, w.events);
    }
    const result: WatchResult = {
      watchers: cfg.watchers,
      targetRate: cfg.rate,
      watchSetupMs,
      writes,
      writeErrors,
      unanswered,
      writesPerSec: (writes * 1000) / (writesEnd - t0),
      writeLatency: writeLatency.summarize(),
      expectedDeliveries: expected,
      deliveries,
      otherDeliveries,
      missing: Math.max(0, expected - deliveries),
      latency: fromResp.summarize(),
      latencyFromSend: fromSend.summarize(),
      deliveredBeforeResponse: early,
      drainMs: Math.max(0, lastDelivery - writesEnd),
      drainTimedOut: deliveries < expected,
      deliveriesPerSec:
        ((deliveries + otherDeliveries) * 1000) / (Math.max(lastDelivery, writesEnd) - t0),
      minPerWatcher: minPer,
      maxPerWatcher: maxPer,
      ...cpu,
    };
    if (firstError) result.firstError = firstError;
    return result;
  } finally {
    for (const w of watchers) w.close();
    for (const c of writerConns) c.close();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Names of the ConfigMaps of the memory test. */
export function configMapBody(i: number): string {
  return configMapJson(`settings-${String(i).padStart(6, "0")}`);
}
