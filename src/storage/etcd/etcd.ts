/**
 * The etcd backend: the Store contract over an etcd v3 cluster, spoken over gRPC.
 *
 * - Every unary call has a deadline (requestTimeoutMs) and fails over between endpoints: reads
 *   and idempotent calls move to the next endpoint on any transport failure; writes move only
 *   when the request provably never reached a server (no connection, or a member without a
 *   leader refused it up front). Any other failure of a write surfaces as a retryable
 *   `Unavailable`, since it may or may not have been applied.
 * - All watches of a store share one Watch stream. When the stream breaks it is re-established
 *   on the next reachable endpoint and every watch resumes from the revision after the last one
 *   it delivered, so no event is lost or repeated.
 * - Lease IDs are chosen by the client within JavaScript's safe integer range (etcd's own IDs
 *   use all 64 bits).
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import {
  compacted,
  conflict,
  futureRevision,
  keyExists,
  keyNotFound,
  leaseNotFound,
  StorageError,
  unavailable,
  valueTooLarge,
} from "../errors.js";
import {
  MAX_VALUE_BYTES,
  type GetResult,
  type KeyValue,
  type LeaseGrant,
  type ListOptions,
  type ListResult,
  type ReadOptions,
  type Store,
  type StoreStatus,
  type Watch,
  type WatchEvent,
  type WatchMessage,
  type WatchOptions,
  type WriteOptions,
  type WriteResult,
} from "../interface.js";
import { MessageQueue } from "../message-queue.js";

export interface EtcdOptions {
  /** Client URLs as upstream's --etcd-servers: "https://127.0.0.1:2379", "http://...". */
  endpoints: string[];
  /** CA bundle that signed the servers' certificates (https endpoints). */
  caFile?: string;
  /** Client certificate and key, for servers started with --client-cert-auth. */
  certFile?: string;
  keyFile?: string;
  /** How long to wait for a connection to one endpoint before trying the next. */
  dialTimeoutMs?: number;
  /** Deadline of one store call, failover included. */
  requestTimeoutMs?: number;
  /** Interval of the background compactor (upstream's --etcd-compaction-interval); 0 disables it. */
  compactionIntervalMs?: number;
}

const DEFAULT_DIAL_TIMEOUT_MS = 2_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
const DEFAULT_COMPACTION_INTERVAL_MS = 5 * 60_000;

/** The key through which API servers sharing a cluster take turns compacting it (upstream's). */
export const COMPACT_REV_KEY = "compact_rev_key";

// ---- wire shapes, as @grpc/proto-loader decodes them (int64 as decimal strings) ----

type Int64 = string | number;

interface PbHeader {
  revision: Int64;
  member_id: Int64;
}
interface PbKeyValue {
  key: Buffer;
  create_revision: Int64;
  mod_revision: Int64;
  version: Int64;
  value: Buffer;
  lease: Int64;
}
interface PbRangeRequest {
  key: Buffer;
  range_end?: Buffer;
  limit?: number;
  revision?: number;
  keys_only?: boolean;
  count_only?: boolean;
}
interface PbRangeResponse {
  header: PbHeader;
  kvs: PbKeyValue[];
  more: boolean;
  count: Int64;
}
interface PbPutRequest {
  key: Buffer;
  value: Buffer;
  lease?: number;
  prev_kv?: boolean;
}
interface PbPutResponse {
  header: PbHeader;
  prev_kv: PbKeyValue | null;
}
interface PbDeleteRangeRequest {
  key: Buffer;
  range_end?: Buffer;
  prev_kv?: boolean;
}
interface PbDeleteRangeResponse {
  header: PbHeader;
  deleted: Int64;
  prev_kvs: PbKeyValue[];
}
interface PbCompare {
  result: "EQUAL" | "GREATER" | "LESS" | "NOT_EQUAL";
  target: "VERSION" | "CREATE" | "MOD";
  key: Buffer;
  version?: number;
  create_revision?: number;
  mod_revision?: number;
}
interface PbRequestOp {
  request_range?: PbRangeRequest;
  request_put?: PbPutRequest;
  request_delete_range?: PbDeleteRangeRequest;
}
interface PbResponseOp {
  response_range?: PbRangeResponse | null;
  response_put?: PbPutResponse | null;
  response_delete_range?: PbDeleteRangeResponse | null;
}
interface PbTxnRequest {
  compare: PbCompare[];
  success: PbRequestOp[];
  failure: PbRequestOp[];
}
interface PbTxnResponse {
  header: PbHeader;
  succeeded: boolean;
  responses: PbResponseOp[];
}
interface PbEvent {
  type: "PUT" | "DELETE";
  kv: PbKeyValue | null;
  prev_kv: PbKeyValue | null;
}
interface PbWatchRequest {
  create_request?: {
    key: Buffer;
    range_end: Buffer;
    start_revision: number;
    prev_kv: boolean;
    fragment: boolean;
    watch_id: number;
  };
  cancel_request?: { watch_id: number };
  progress_request?: Record<string, never>;
}
interface PbWatchResponse {
  header: PbHeader | null;
  watch_id: Int64;
  created: boolean;
  canceled: boolean;
  compact_revision: Int64;
  cancel_reason: string;
  fragment: boolean;
  events: PbEvent[];
}
interface PbLeaseGrantResponse {
  header: PbHeader;
  ID: Int64;
  TTL: Int64;
  error: string;
}
interface PbLeaseKeepAliveResponse {
  header: PbHeader;
  ID: Int64;
  TTL: Int64;
}
interface PbStatusResponse {
  header: PbHeader;
  version: string;
  dbSize: Int64;
}

type Method<Req, Res> = grpc.MethodDefinition<Req, Res>;

interface EtcdMethods {
  range: Method<PbRangeRequest, PbRangeResponse>;
  deleteRange: Method<PbDeleteRangeRequest, PbDeleteRangeResponse>;
  txn: Method<PbTxnRequest, PbTxnResponse>;
  compact: Method<{ revision: number; physical: boolean }, { header: PbHeader }>;
  watch: Method<PbWatchRequest, PbWatchResponse>;
  leaseGrant: Method<{ TTL: number; ID: number }, PbLeaseGrantResponse>;
  leaseRevoke: Method<{ ID: number }, { header: PbHeader }>;
  leaseKeepAlive: Method<{ ID: number }, PbLeaseKeepAliveResponse>;
  status: Method<Record<string, never>, PbStatusResponse>;
}

let methods: EtcdMethods | undefined;

/** The schema file: next to this module, or in the source tree when running from dist/. */
function protoFile(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [
    path.join(here, "rpc.proto"),
    path.resolve(here, "../../../../src/storage/etcd/rpc.proto"),
  ];
  const found = candidates.find((f) => existsSync(f));
  if (!found) throw new Error(`etcd: rpc.proto not found (looked in ${candidates.join(", ")})`);
  return found;
}

function loadMethods(): EtcdMethods {
  if (methods) return methods;
  const def = protoLoader.loadSync(protoFile(), {
    keepCase: true,
    longs: String,
    enums: String,
    bytes: Buffer,
    defaults: true,
    oneofs: true,
  });
  const service = (name: string) => def[`etcdserverpb.${name}`] as protoLoader.ServiceDefinition;
  const m = <Req, Res>(svc: string, rpc: string) =>
    service(svc)[rpc] as unknown as Method<Req, Res>;
  methods = {
    range: m("KV", "Range"),
    deleteRange: m("KV", "DeleteRange"),
    txn: m("KV", "Txn"),
    compact: m("KV", "Compact"),
    watch: m("Watch", "Watch"),
    leaseGrant: m("Lease", "LeaseGrant"),
    leaseRevoke: m("Lease", "LeaseRevoke"),
    leaseKeepAlive: m("Lease", "LeaseKeepAlive"),
    status: m("Maintenance", "Status"),
  };
  return methods;
}

// ---- conversions ----

const EMPTY = new Uint8Array(0);
/** The smallest key; with a range end of the same byte it means "every key". */
const KEY_SPACE_START = Buffer.from([0]);

function int(v: Int64 | null | undefined): number {
  return v === null || v === undefined ? 0 : Number(v);
}

function keyBytes(key: string): Buffer {
  return Buffer.from(key, "utf8");
}

function valueBytes(value: Uint8Array): Buffer {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/** etcd's prefix rule: the prefix with its last byte below 0xff incremented, the rest cut. */
function prefixRangeEnd(prefix: Buffer): Buffer {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i]! < 0xff) {
      const end = Buffer.from(prefix.subarray(0, i + 1));
      end[i] = prefix[i]! + 1;
      return end;
    }
  }
  return KEY_SPACE_START;
}

/** Key and range end selecting `key` alone or, with `prefix`, every key starting with it. */
function keyRange(key: string, prefix: boolean): { key: Buffer; rangeEnd: Buffer } {
  const bytes = keyBytes(key);
  if (!prefix) return { key: bytes, rangeEnd: Buffer.alloc(0) };
  if (bytes.length === 0) return { key: KEY_SPACE_START, rangeEnd: KEY_SPACE_START };
  return { key: bytes, rangeEnd: prefixRangeEnd(bytes) };
}

function toKeyValue(kv: PbKeyValue, keysOnly = false): KeyValue {
  const v = kv.value;
  return {
    key: kv.key.toString("utf8"),
    value: keysOnly || !v ? EMPTY : new Uint8Array(v.buffer, v.byteOffset, v.byteLength),
    createRevision: int(kv.create_revision),
    modRevision: int(kv.mod_revision),
    version: int(kv.version),
    lease: int(kv.lease),
  };
}

function toEvent(ev: PbEvent): WatchEvent {
  const kv = toKeyValue(ev.kv!);
  const prevKv = ev.prev_kv ? toKeyValue(ev.prev_kv) : undefined;
  return ev.type === "DELETE" ? { type: "delete", kv, prevKv } : { type: "put", kv, prevKv };
}

// ---- gRPC failures ----

function isServiceError(err: unknown): err is grpc.ServiceError {
  return err instanceof Error && typeof (err as grpc.ServiceError).code === "number";
}

function details(err: unknown): string {
  if (!isServiceError(err)) return err instanceof Error ? err.message : String(err);
  let d = (err.details || err.message).replace(/\.? Resolution note: *$/, "").trim();
  if (/SSL|certificate|TLS/i.test(d))
    d += " (TLS handshake failed: check caFile, certFile and keyFile)";
  return d;
}

const COMPACTED_MESSAGE = "required revision has been compacted";
const FUTURE_REVISION_MESSAGE = "required revision is a future revision";

function isCompactedError(err: unknown): boolean {
  return (
    isServiceError(err) &&
    err.code === grpc.status.OUT_OF_RANGE &&
    err.details.includes(COMPACTED_MESSAGE)
  );
}

function isFutureRevisionError(err: unknown): boolean {
  return (
    isServiceError(err) &&
    err.code === grpc.status.OUT_OF_RANGE &&
    err.details.includes(FUTURE_REVISION_MESSAGE)
  );
}

/**
 * How a failed call bears on retrying it elsewhere:
 * - "down": no connection to the endpoint; the request was not sent.
 * - "refused": the member turned the request away before handling it (no leader).
 * - "unknown": the request may have been handled (connection lost mid-call, timeout).
 * - "final": etcd answered with an error that another endpoint would repeat.
 */
type FailureKind = "down" | "refused" | "unknown" | "final";

function classify(err: unknown): FailureKind {
  if (!isServiceError(err)) return "final";
  const d = err.details ?? "";
  switch (err.code) {
    case grpc.status.UNAVAILABLE:
      if (d.startsWith("No connection established") || d.includes("ECONNREFUSED")) return "down";
      if (
        d === "etcdserver: no leader" ||
        d === "etcdserver: not capable" ||
        d === "etcdserver: rpc not supported for learner"
      ) {
        return "refused";
      }
      return "unknown";
    case grpc.status.DEADLINE_EXCEEDED:
    case grpc.status.CANCELLED:
    case grpc.status.INTERNAL:
      return "unknown";
    default:
      return "final";
  }
}

/** How a call may be repeated after a failure whose effect is unknown. */
type Safety = "read" | "idempotent" | "write";

interface CallContext {
  key?: string;
  revision?: number;
  lease?: number;
  size?: number;
}

// ---- endpoints ----

interface Credentials {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.max_receive_message_length": -1,
  "grpc.max_send_message_length": -1,
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1_000,
  "grpc.min_reconnect_backoff_ms": 100,
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.enable_retries": 0,
  "grpc.use_local_subchannel_pool": 1,
};

class Endpoint {
  readonly client: grpc.Client;

  constructor(
    readonly url: string,
    target: string,
    credentials: grpc.ChannelCredentials,
  ) {
    this.client = new grpc.Client(target, credentials, CHANNEL_OPTIONS);
  }

  /**
   * Waits while the channel is connecting, up to `timeoutMs`; returns the state it settled in
   * (CONNECTING still when the dial timed out).
   */
  async settle(timeoutMs: number): Promise<grpc.connectivityState> {
    const channel = this.client.getChannel();
    const deadline = Date.now() + timeoutMs;
    let state = channel.getConnectivityState(true);
    while (state === grpc.connectivityState.IDLE || state === grpc.connectivityState.CONNECTING) {
      const changed = await new Promise<boolean>((resolve) =>
        channel.watchConnectivityState(state, deadline, (err) => resolve(!err)),
      );
      if (!changed) return state;
      state = channel.getConnectivityState(true);
    }
    return state;
  }
}

function parseEndpoint(url: string, creds: Credentials): Endpoint {
  let parsed: URL;
  try {
    parsed = new URL(url.includes("://") ? url : `http://${url}`);
  } catch {
    throw new StorageError("InvalidArgument", `etcd: invalid endpoint ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new StorageError(
      "InvalidArgument",
      `etcd: endpoint ${url} must use http:// or https://, not ${parsed.protocol}`,
    );
  }
  const target = `${parsed.hostname}:${parsed.port || "2379"}`;
  const credentials =
    parsed.protocol === "https:"
      ? grpc.credentials.createSsl(creds.ca ?? null, creds.key ?? null, creds.cert ?? null)
      : grpc.credentials.createInsecure();
  return new Endpoint(url, target, credentials);
}

function readCredentialFile(what: string, file: string | undefined): Buffer | undefined {
  if (file === undefined || file === "") return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new StorageError(
      "InvalidArgument",
      `etcd: cannot read ${what} ${file}: ${details(err)}`,
      {
        cause: err,
      },
    );
  }
}

function leaderMetadata(): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("hasleader", "true");
  return md;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---- the store ----

export class EtcdStore implements Store {
  readonly name = "etcd";
  private readonly m = loadMethods();
  private current = 0;
  private closed = false;
  private knownCompactRevision = 0;
  private readonly inflight = new Set<grpc.Call>();
  private readonly watchHub: WatchHub;
  private compactorTimer: NodeJS.Timeout | undefined;
  private readonly dialTimeoutMs: number;
  private readonly requestTimeoutMs: number;

  private constructor(
    private readonly endpoints: Endpoint[],
    opts: EtcdOptions,
  ) {
    this.dialTimeoutMs = opts.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.watchHub = new WatchHub(this, this.m.watch);
    const interval = opts.compactionIntervalMs ?? DEFAULT_COMPACTION_INTERVAL_MS;
    if (interval > 0) this.startCompactor(interval);
  }

  /**
   * Validates the options and reads the TLS files; connections are made on first use, so a
   * store can be opened while etcd is still starting.
   */
  static async open(opts: EtcdOptions): Promise<EtcdStore> {
    if (!opts.endpoints || opts.endpoints.length === 0) {
      throw new StorageError("InvalidArgument", "etcd: no endpoints given");
    }
    if ((opts.certFile && !opts.keyFile) || (!opts.certFile && opts.keyFile)) {
      throw new StorageError(
        "InvalidArgument",
        "etcd: a client certificate needs both certFile and keyFile",
      );
    }
    const creds: Credentials = {
      ca: readCredentialFile("caFile", opts.caFile),
      cert: readCredentialFile("certFile", opts.certFile),
      key: readCredentialFile("keyFile", opts.keyFile),
    };
    const endpoints = opts.endpoints.map((url) => parseEndpoint(url, creds));
    return new EtcdStore(endpoints, opts);
  }

  /** The endpoint calls go to first (the last one that answered). */
  get currentEndpoint(): string {
    return this.endpoints[this.current]!.url;
  }

  private get endpointList(): string {
    return this.endpoints.map((e) => e.url).join(", ");
  }

  get isClosed(): boolean {
    return this.closed;
  }

  // ---- calls with failover ----

  /**
   * Runs `attempt` against the current endpoint, moving on to the others as `safety` allows,
   * until it succeeds, fails for good, or the request deadline passes. Transport failures come
   * out as `Unavailable`; errors etcd answered with come out as they are, for the caller to map.
   */
  private async withFailover<T>(
    safety: Safety,
    attempt: (ep: Endpoint, deadline: number) => Promise<T>,
    deadline = this.deadline(),
  ): Promise<T> {
    if (this.closed) throw unavailable("etcd: the store is closed");
    let cause: unknown;
    let pause = 20;
    for (;;) {
      let allDown = true;
      const start = this.current;
      for (let i = 0; i < this.endpoints.length; i++) {
        const index = (start + i) % this.endpoints.length;
        const ep = this.endpoints[index]!;
        const remaining = deadline - Date.now();
        if (remaining <= 0) break;
        const state = await ep.settle(Math.min(remaining, this.dialTimeoutMs));
        if (this.closed) throw unavailable("etcd: the store is closed");
        if (state === grpc.connectivityState.CONNECTING || state === grpc.connectivityState.IDLE) {
          cause = new Error(`${ep.url}: no connection within ${this.dialTimeoutMs} ms`);
          this.moveOff(index);
          continue;
        }
        try {
          const result = await attempt(ep, deadline);
          this.current = index;
          return result;
        } catch (err) {
          if (this.closed) throw unavailable("etcd: the store is closed", err);
          const kind = classify(err);
          if (kind === "final") throw err;
          cause = err;
          this.moveOff(index);
          if (kind === "down") continue;
          allDown = false;
          if (kind === "unknown" && safety === "write") {
            throw unavailable(
              `etcd: ${ep.url}: ${details(err)} (the write may or may not have been applied)`,
              err,
            );
          }
        }
      }
      const why = details(cause);
      if (allDown) {
        throw unavailable(`etcd: no endpoint reachable (${this.endpointList}): ${why}`, cause);
      }
      if (Date.now() + pause >= deadline) {
        throw unavailable(
          `etcd: no answer within ${this.requestTimeoutMs} ms (${this.endpointList}): ${why}`,
          cause,
        );
      }
      await sleep(pause);
      pause = Math.min(pause * 2, 500);
    }
  }

  private deadline(): number {
    return Date.now() + this.requestTimeoutMs;
  }

  private moveOff(index: number): void {
    if (this.current === index) this.current = (index + 1) % this.endpoints.length;
  }

  /** Marks the endpoint a broken watch stream was on as failed, if it is still the current one. */
  endpointFailed(ep: Endpoint): void {
    const index = this.endpoints.indexOf(ep);
    if (index >= 0) this.moveOff(index);
  }

  /** The first endpoint, from the current one on, that connects within the dial timeout. */
  async reachableEndpoint(): Promise<Endpoint | undefined> {
    const start = this.current;
    for (let i = 0; i < this.endpoints.length && !this.closed; i++) {
      const index = (start + i) % this.endpoints.length;
      const ep = this.endpoints[index]!;
      if ((await ep.settle(this.dialTimeoutMs)) === grpc.connectivityState.READY) {
        this.current = index;
        return ep;
      }
      this.moveOff(index);
    }
    return undefined;
  }

  private unary<Req, Res>(
    safety: Safety,
    method: Method<Req, Res>,
    request: Req,
    deadline = this.deadline(),
  ): Promise<Res> {
    return this.withFailover(
      safety,
      (ep, deadline) =>
        new Promise<Res>((resolve, reject) => {
          const call = ep.client.makeUnaryRequest(
            method.path,
            method.requestSerialize,
            method.responseDeserialize,
            request,
            leaderMetadata(),
            { deadline },
            (err, res) => {
              this.inflight.delete(call);
              if (err) reject(err);
              else resolve(res!);
            },
          );
          this.inflight.add(call);
        }),
      deadline,
    );
  }

  /** Maps an error etcd answered with (or a transport failure) to a StorageError. */
  private async toStorageError(err: unknown, ctx: CallContext): Promise<StorageError> {
    if (err instanceof StorageError) return err;
    if (isCompactedError(err)) {
      const rev = ctx.revision ?? 0;
      return compacted(rev, await this.compactRevision().catch(() => this.knownCompactRevision));
    }
    if (isFutureRevisionError(err)) {
      const current = await this.headRevision().catch(() => 0);
      return futureRevision(ctx.revision ?? 0, current);
    }
    if (!isServiceError(err)) {
      return unavailable(`etcd: ${details(err)}`, err);
    }
    const d = err.details;
    switch (err.code) {
      case grpc.status.NOT_FOUND:
        if (d.includes("lease not found")) return leaseNotFound(ctx.lease ?? 0);
        break;
      case grpc.status.INVALID_ARGUMENT:
        if (d.includes("request is too large")) {
          return new StorageError(
            "ValueTooLarge",
            `etcd refused the write of ${ctx.key} (value ${ctx.size ?? 0} bytes) as too large: ` +
              "its --max-request-bytes is below the values this store accepts",
            { key: ctx.key, cause: err },
          );
        }
        return new StorageError("InvalidArgument", `etcd: ${d}`, { key: ctx.key, cause: err });
      case grpc.status.RESOURCE_EXHAUSTED:
        return unavailable(`etcd: ${d}`, err);
      case grpc.status.DATA_LOSS:
        return new StorageError("Corrupt", `etcd: ${d}`, { cause: err });
      case grpc.status.UNAVAILABLE:
      case grpc.status.DEADLINE_EXCEEDED:
      case grpc.status.CANCELLED:
        return unavailable(`etcd: ${d}`, err);
    }
    return new StorageError("Unavailable", `etcd: ${grpc.status[err.code]}: ${d}`, {
      retryable: false,
      cause: err,
    });
  }

  private async run<T>(ctx: CallContext, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw await this.toStorageError(err, ctx);
    }
  }

  // ---- reads ----

  private async headRevision(): Promise<number> {
    const res = await this.unary("read", this.m.range, {
      key: KEY_SPACE_START,
      count_only: true,
    });
    return int(res.header.revision);
  }

  async get(key: string, opts: ReadOptions = {}): Promise<GetResult> {
    const revision = opts.revision ?? 0;
    return this.run({ key, revision }, async () => {
      const res = await this.unary("read", this.m.range, { key: keyBytes(key), revision });
      const kv = res.kvs[0];
      return {
        kv: kv ? toKeyValue(kv) : undefined,
        revision: revision > 0 ? revision : int(res.header.revision),
      };
    });
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    const revision = opts.revision ?? 0;
    return this.run({ key: prefix, revision }, async () => {
      const range = keyRange(prefix, true);
      let from = range.key;
      if (opts.startKey) {
        const start = keyBytes(opts.startKey);
        if (Buffer.compare(start, from) > 0) from = start;
      }
      const res = await this.unary("read", this.m.range, {
        key: from,
        range_end: range.rangeEnd,
        limit: opts.limit ?? 0,
        revision,
        keys_only: opts.keysOnly ?? false,
      });
      const result: ListResult = {
        kvs: res.kvs.map((kv) => toKeyValue(kv, opts.keysOnly)),
        revision: revision > 0 ? revision : int(res.header.revision),
        more: res.more,
      };
      if (opts.count) result.count = int(res.count);
      return result;
    });
  }

  async count(prefix: string): Promise<{ count: number; revision: number }> {
    return this.run({ key: prefix }, async () => {
      const range = keyRange(prefix, true);
      const res = await this.unary("read", this.m.range, {
        key: range.key,
        range_end: range.rangeEnd,
        count_only: true,
      });
      return { count: int(res.count), revision: int(res.header.revision) };
    });
  }

  // ---- writes ----

  private checkSize(key: string, value: Uint8Array): void {
    if (value.byteLength > MAX_VALUE_BYTES) {
      throw valueTooLarge(key, value.byteLength, MAX_VALUE_BYTES);
    }
  }

  /**
   * A write waits (within its deadline) until the watches opened before it without a start
   * revision have started on the server, so that they see it.
   */
  private async beforeWrite(): Promise<number> {
    const deadline = this.deadline();
    await this.watchHub.startedWatches(deadline);
    return deadline;
  }

  async create(key: string, value: Uint8Array, opts: WriteOptions = {}): Promise<WriteResult> {
    this.checkSize(key, value);
    const lease = opts.lease ?? 0;
    return this.run({ key, lease, size: value.byteLength }, async () => {
      const deadline = await this.beforeWrite();
      const k = keyBytes(key);
      const res = await this.unary(
        "write",
        this.m.txn,
        {
          compare: [{ result: "EQUAL", target: "CREATE", key: k, create_revision: 0 }],
          success: [{ request_put: { key: k, value: valueBytes(value), lease } }],
          failure: [{ request_range: { key: k } }],
        },
        deadline,
      );
      const revision = int(res.header.revision);
      if (!res.succeeded) {
        const current = res.responses[0]?.response_range?.kvs[0];
        throw keyExists(key, current ? toKeyValue(current) : undefined);
      }
      return {
        revision,
        kv: { key, value, createRevision: revision, modRevision: revision, version: 1, lease },
      };
    });
  }

  /** Compares that hold when `key` exists with exactly `modRevision`. */
  private modRevisionIs(key: Buffer, modRevision: number): PbCompare[] {
    const compares: PbCompare[] = [
      { result: "EQUAL", target: "MOD", key, mod_revision: modRevision },
    ];
    if (modRevision <= 0) compares.push({ result: "GREATER", target: "VERSION", key, version: 0 });
    return compares;
  }

  async update(
    key: string,
    value: Uint8Array,
    expectedModRevision: number,
    opts: WriteOptions = {},
  ): Promise<WriteResult> {
    this.checkSize(key, value);
    const lease = opts.lease ?? 0;
    return this.run({ key, lease, size: value.byteLength }, async () => {
      const deadline = await this.beforeWrite();
      const k = keyBytes(key);
      const res = await this.unary(
        "write",
        this.m.txn,
        {
          compare: this.modRevisionIs(k, expectedModRevision),
          success: [{ request_put: { key: k, value: valueBytes(value), lease, prev_kv: true } }],
          failure: [{ request_range: { key: k } }],
        },
        deadline,
      );
      const revision = int(res.header.revision);
      if (!res.succeeded) {
        const current = res.responses[0]?.response_range?.kvs[0];
        throw conflict(key, expectedModRevision, current ? toKeyValue(current) : undefined);
      }
      const prev = res.responses[0]?.response_put?.prev_kv;
      return {
        revision,
        kv: {
          key,
          value,
          createRevision: prev ? int(prev.create_revision) : revision,
          modRevision: revision,
          version: prev ? int(prev.version) + 1 : 1,
          lease,
        },
      };
    });
  }

  async delete(key: string, expectedModRevision?: number): Promise<WriteResult> {
    return this.run({ key }, async () => {
      const deadline = await this.beforeWrite();
      const k = keyBytes(key);
      if (expectedModRevision === undefined) {
        const req = { key: k, prev_kv: true };
        const res = await this.unary("write", this.m.deleteRange, req, deadline);
        const prev = res.prev_kvs[0];
        if (int(res.deleted) === 0 || !prev) throw keyNotFound(key);
        return { revision: int(res.header.revision), kv: toKeyValue(prev) };
      }
      const res = await this.unary(
        "write",
        this.m.txn,
        {
          compare: this.modRevisionIs(k, expectedModRevision),
          success: [{ request_delete_range: { key: k, prev_kv: true } }],
          failure: [{ request_range: { key: k } }],
        },
        deadline,
      );
      if (!res.succeeded) {
        const current = res.responses[0]?.response_range?.kvs[0];
        if (!current) throw keyNotFound(key);
        throw conflict(key, expectedModRevision, toKeyValue(current));
      }
      const prev = res.responses[0]?.response_delete_range?.prev_kvs[0];
      if (!prev) throw keyNotFound(key);
      return { revision: int(res.header.revision), kv: toKeyValue(prev) };
    });
  }

  // ---- watches ----

  watch(key: string, opts: WatchOptions = {}): Watch {
    const range = keyRange(key, opts.prefix ?? false);
    return this.watchHub.add(range.key, range.rangeEnd, Math.max(0, opts.startRevision ?? 0));
  }

  // ---- leases ----

  async grantLease(ttlSeconds: number): Promise<LeaseGrant> {
    return this.run({}, async () => {
      for (let tries = 0; ; tries++) {
        const id = 1 + Math.floor(Math.random() * (Number.MAX_SAFE_INTEGER - 1));
        try {
          const res = await this.unary("write", this.m.leaseGrant, { TTL: ttlSeconds, ID: id });
          if (res.error) throw new StorageError("InvalidArgument", `etcd: ${res.error}`);
          return { id: int(res.ID), ttlSeconds: int(res.TTL) };
        } catch (err) {
          const taken =
            isServiceError(err) &&
            err.code === grpc.status.FAILED_PRECONDITION &&
            err.details.includes("lease already exists");
          if (!taken || tries >= 5) throw err;
        }
      }
    });
  }

  async revokeLease(id: number): Promise<void> {
    await this.run({ lease: id }, () => this.unary("write", this.m.leaseRevoke, { ID: id }));
  }

  async keepAliveLease(id: number): Promise<void> {
    const method = this.m.leaseKeepAlive;
    await this.run({ lease: id }, async () => {
      const res = await this.withFailover(
        "idempotent",
        (ep, deadline) =>
          new Promise<PbLeaseKeepAliveResponse>((resolve, reject) => {
            const call = ep.client.makeBidiStreamRequest(
              method.path,
              method.requestSerialize,
              method.responseDeserialize,
              leaderMetadata(),
              { deadline },
            );
            this.inflight.add(call);
            let settled = false;
            const finish = (err: unknown, res?: PbLeaseKeepAliveResponse) => {
              if (settled) return;
              settled = true;
              this.inflight.delete(call);
              call.cancel();
              if (res) resolve(res);
              else reject(err);
            };
            call.on("data", (r: PbLeaseKeepAliveResponse) => finish(undefined, r));
            call.on("error", (err) => finish(err));
            call.on("end", () => finish(new Error("lease keep-alive stream ended without answer")));
            call.write({ ID: id });
          }),
      );
      if (int(res.TTL) <= 0) throw leaseNotFound(id);
    });
  }

  // ---- compaction and status ----

  /** Records a compaction revision learnt from etcd; the known value only moves forward. */
  noteCompactRevision(revision: number): void {
    if (revision > this.knownCompactRevision) this.knownCompactRevision = revision;
  }

  async compact(revision: number): Promise<void> {
    await this.run({ revision }, async () => {
      try {
        await this.unary("idempotent", this.m.compact, { revision, physical: false });
      } catch (err) {
        if (!isCompactedError(err)) throw err;
      }
      this.noteCompactRevision(revision);
    });
  }

  private async readableAt(revision: number): Promise<boolean> {
    try {
      await this.unary("read", this.m.range, {
        key: KEY_SPACE_START,
        revision,
        count_only: true,
      });
      return true;
    } catch (err) {
      if (isCompactedError(err)) return false;
      throw err;
    }
  }

  /**
   * The oldest readable revision, or 0 if etcd never compacted. etcd 3.4 reports it nowhere
   * but in errors, so it is found by probing reads at revisions, starting from the known value.
   */
  private async compactRevision(): Promise<number> {
    const known = this.knownCompactRevision;
    let unreadable = Math.max(known, 1);
    if (await this.readableAt(unreadable)) return known;
    let readable = await this.headRevision();
    while (readable - unreadable > 1) {
      const mid = Math.floor((unreadable + readable) / 2);
      if (await this.readableAt(mid)) readable = mid;
      else unreadable = mid;
    }
    this.noteCompactRevision(readable);
    return this.knownCompactRevision;
  }

  async status(): Promise<StoreStatus> {
    return this.run({}, async () => {
      const res = await this.unary("read", this.m.status, {});
      return {
        revision: int(res.header.revision),
        compactRevision: await this.compactRevision(),
        dbSize: int(res.dbSize),
      };
    });
  }

  /**
   * Upstream's compaction scheme: every interval, compact to the revision seen at the previous
   * interval. API servers sharing the cluster coordinate through COMPACT_REV_KEY: whoever bumps
   * its version from the value it last saw gets to compact; the others learn the new version
   * and try again an interval later.
   */
  private startCompactor(intervalMs: number): void {
    let version = 0;
    let lastRevision = 0;
    const tick = async () => {
      this.compactorTimer = undefined;
      try {
        const step = await this.compactStep(version, lastRevision);
        version = step.version;
        lastRevision = step.revision;
      } catch {
        // Try again next interval, as upstream does.
      }
      if (!this.closed) this.compactorTimer = setTimeout(tick, intervalMs).unref();
    };
    this.compactorTimer = setTimeout(tick, intervalMs).unref();
  }

  private async compactStep(
    expectVersion: number,
    revision: number,
  ): Promise<{ version: number; revision: number }> {
    const k = keyBytes(COMPACT_REV_KEY);
    const res = await this.unary("write", this.m.txn, {
      compare: [{ result: "EQUAL", target: "VERSION", key: k, version: expectVersion }],
      success: [{ request_put: { key: k, value: Buffer.from(String(revision)) } }],
      failure: [{ request_range: { key: k } }],
    });
    const head = int(res.header.revision);
    if (!res.succeeded) {
      // Another API server compacts this round. Its target revision (the key's value) is not
      // recorded as compacted: that compaction may yet fail.
      const kv = res.responses[0]?.response_range?.kvs[0];
      return { version: kv ? int(kv.version) : 0, revision: head };
    }
    if (revision > 0) await this.compact(revision);
    return { version: expectVersion + 1, revision: head };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.compactorTimer) clearTimeout(this.compactorTimer);
    this.compactorTimer = undefined;
    this.watchHub.close();
    for (const call of this.inflight) call.cancel();
    this.inflight.clear();
    for (const ep of this.endpoints) ep.client.close();
  }
}

// ---- watches ----

/** A batch of the catch-up phase with fewer distinct revisions than this was the last one. */
const WATCH_BATCH_MAX_REVISIONS = 1000;
/** etcd moves a watcher with nothing to catch up to the synced set within a few sync rounds. */
const UNSYNCED_GRACE_MS = 300;

class EtcdWatch implements Watch {
  readonly queue = new MessageQueue<WatchMessage>();
  /** The next revision to deliver; 0 until etcd reports where a watch "from now" starts. */
  nextRevision: number;
  closed = false;
  /** A create request is out on the current stream. */
  onStream = false;
  /** The create was acknowledged on the current stream. */
  created = false;
  createdRevision = 0;
  createdAt = 0;
  requestedStart = 0;
  /** The server has caught this watch up to the present (it gets events as they happen). */
  synced = false;
  eventsSinceCreate = false;
  progressWanted = false;
  /** The first progress request whose answer may serve the pending wish (see WatchHub). */
  progressRound = 0;
  /** A progress revision waiting for one more round trip to confirm it (see WatchHub). */
  progressCandidate: number | undefined;
  fragments: PbEvent[] | undefined;

  constructor(
    private readonly hub: WatchHub,
    readonly id: number,
    readonly key: Buffer,
    readonly rangeEnd: Buffer,
    startRevision: number,
  ) {
    this.nextRevision = startRevision;
  }

  requestProgress(): void {
    this.hub.requestProgress(this);
  }

  close(): void {
    this.hub.cancel(this);
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchMessage> {
    const it = this.queue[Symbol.asyncIterator]();
    return {
      next: () => it.next(),
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/**
 * The one Watch stream of a store, multiplexing its watches (watch IDs are chosen by the client,
 * unique for the store's lifetime).
 *
 * Progress: etcd answers a progress request with one response for the whole stream (watch ID
 * -1) carrying its current revision. Before etcd 3.4.25 that response is not ordered with the
 * events still queued for the stream, and it is sent even while a watch is still catching up on
 * history. So a progress revision is handed to a watch only when it is safe: at once if the
 * watch has already delivered up to it; otherwise once the watch is known to be caught up and a
 * second request made after the first answer arrived has come back with no late event for the
 * watch in between.
 */
class WatchHub {
  private stream: grpc.ClientDuplexStream<PbWatchRequest, PbWatchResponse> | undefined;
  private streamEndpoint: Endpoint | undefined;
  private connecting = false;
  private closed = false;
  private readonly watches = new Map<number, EtcdWatch>();
  /** Open watches "from now" whose start revision etcd has not reported yet. */
  private readonly unstarted = new Set<EtcdWatch>();
  private pendingCreates: number[] = [];
  private nextId = 1;
  private progressOutstanding = false;
  private progressSent = 0;
  private progressAnswered = 0;
  /** The last connection attempt found no endpoint reachable. */
  private unreachable = false;
  private progressTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectDelay = 50;
  private startWaiters: Array<() => void> = [];

  constructor(
    private readonly store: EtcdStore,
    private readonly method: Method<PbWatchRequest, PbWatchResponse>,
  ) {}

  add(key: Buffer, rangeEnd: Buffer, startRevision: number): EtcdWatch {
    const w = new EtcdWatch(this, this.nextId++, key, rangeEnd, startRevision);
    if (this.closed || this.store.isClosed) {
      w.closed = true;
      w.queue.fail(unavailable("etcd: the store is closed"));
      return w;
    }
    this.watches.set(w.id, w);
    if (startRevision === 0) this.unstarted.add(w);
    if (this.stream) this.sendCreate(w);
    else this.connect();
    return w;
  }

  /**
   * Resolves once no open watch is waiting to learn its start revision, at `deadline`, or as
   * soon as no endpoint is reachable (the write waiting on it will fail anyway).
   */
  startedWatches(deadline: number): Promise<void> {
    if (this.unreachable || this.unstarted.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.startWaiters.push(done);
    });
  }

  private releaseStartWaiters(): void {
    if (this.startWaiters.length === 0) return;
    if (!this.unreachable && !this.closed && this.unstarted.size > 0) return;
    const waiters = this.startWaiters;
    this.startWaiters = [];
    for (const done of waiters) done();
  }

  requestProgress(w: EtcdWatch): void {
    if (w.closed) return;
    w.progressWanted = true;
    w.progressRound = this.progressSent + 1;
    this.sendProgressRequest();
  }

  cancel(w: EtcdWatch): void {
    if (w.closed) return;
    w.closed = true;
    this.watches.delete(w.id);
    this.unstarted.delete(w);
    if (this.stream && w.onStream) this.write({ cancel_request: { watch_id: w.id } });
    w.queue.end();
    this.releaseStartWaiters();
  }

  private end(w: EtcdWatch, err: StorageError): void {
    if (w.closed) return;
    w.closed = true;
    this.watches.delete(w.id);
    this.unstarted.delete(w);
    w.queue.fail(err);
    this.releaseStartWaiters();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.progressTimer) clearTimeout(this.progressTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
    for (const w of this.watches.values()) {
      w.closed = true;
      w.queue.end();
    }
    this.watches.clear();
    this.unstarted.clear();
    this.releaseStartWaiters();
  }

  private write(req: PbWatchRequest): void {
    this.stream?.write(req);
  }

  private sendCreate(w: EtcdWatch): void {
    w.onStream = true;
    w.created = false;
    w.requestedStart = w.nextRevision;
    w.fragments = undefined;
    this.pendingCreates.push(w.id);
    this.write({
      create_request: {
        key: w.key,
        range_end: w.rangeEnd,
        start_revision: w.nextRevision,
        prev_kv: true,
        fragment: true,
        watch_id: w.id,
      },
    });
  }

  private connect(): void {
    if (this.connecting || this.stream || this.closed) return;
    this.connecting = true;
    void (async () => {
      try {
        while (!this.closed && !this.stream && this.watches.size > 0) {
          const ep = await this.store.reachableEndpoint();
          if (this.closed) return;
          if (ep) {
            this.unreachable = false;
            this.open(ep);
            return;
          }
          this.unreachable = true;
          this.releaseStartWaiters();
          await new Promise<void>((resolve) => {
            this.reconnectTimer = setTimeout(resolve, this.reconnectDelay);
          });
          this.reconnectTimer = undefined;
          this.reconnectDelay = Math.min(this.reconnectDelay * 2, 1_000);
        }
      } finally {
        this.connecting = false;
      }
    })();
  }

  private open(ep: Endpoint): void {
    const stream = ep.client.makeBidiStreamRequest(
      this.method.path,
      this.method.requestSerialize,
      this.method.responseDeserialize,
      leaderMetadata(),
    );
    this.stream = stream;
    this.streamEndpoint = ep;
    this.pendingCreates = [];
    this.progressOutstanding = false;
    stream.on("data", (res: PbWatchResponse) => {
      if (this.stream === stream) this.onResponse(res);
    });
    stream.on("error", (err) => this.onBroken(stream, err));
    stream.on("end", () => this.onBroken(stream, new Error("watch stream ended")));
    for (const w of this.watches.values()) this.sendCreate(w);
    if ([...this.watches.values()].some((w) => w.progressWanted)) this.sendProgressRequest();
  }

  private onBroken(
    stream: grpc.ClientDuplexStream<PbWatchRequest, PbWatchResponse>,
    _err: unknown,
  ): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    this.pendingCreates = [];
    this.progressOutstanding = false;
    this.progressAnswered = this.progressSent;
    if (this.streamEndpoint) this.store.endpointFailed(this.streamEndpoint);
    this.streamEndpoint = undefined;
    for (const w of this.watches.values()) {
      w.onStream = false;
      w.created = false;
      w.synced = false;
      w.fragments = undefined;
      w.progressCandidate = undefined;
      w.progressRound = this.progressSent + 1;
    }
    if (this.closed) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect();
    }, this.reconnectDelay);
    this.reconnectDelay = Math.min(this.reconnectDelay * 2, 1_000);
  }

  private onResponse(res: PbWatchResponse): void {
    const id = int(res.watch_id);
    const revision = int(res.header?.revision);
    if (res.created) {
      const head = this.pendingCreates.shift();
      const w = this.watches.get(id >= 0 ? id : (head ?? -1));
      if (!w) return;
      if (res.canceled) {
        this.end(w, unavailable(`etcd refused the watch: ${res.cancel_reason || "no reason"}`));
        return;
      }
      this.onCreated(w, revision);
      return;
    }
    if (id < 0) {
      if (!res.canceled && res.events.length === 0) this.onProgress(revision);
      return;
    }
    const w = this.watches.get(id);
    if (!w) return;
    if (res.canceled) {
      const compactRevision = int(res.compact_revision);
      if (compactRevision > 0) {
        this.store.noteCompactRevision(compactRevision);
        this.end(w, compacted(w.nextRevision, compactRevision));
      } else {
        this.end(w, unavailable(`etcd canceled the watch: ${res.cancel_reason || "no reason"}`));
      }
      return;
    }
    if (res.fragment) {
      (w.fragments ??= []).push(...res.events);
      return;
    }
    let events = res.events;
    if (w.fragments) {
      events = w.fragments.concat(events);
      w.fragments = undefined;
    }
    if (events.length === 0) {
      // A progress notification for this watch alone: etcd sends those in order, when synced.
      w.synced = true;
      this.deliverProgress(w, Math.max(revision, w.nextRevision - 1));
      return;
    }
    this.onEvents(w, events, revision);
  }

  private onCreated(w: EtcdWatch, revision: number): void {
    w.created = true;
    w.createdRevision = revision;
    w.createdAt = Date.now();
    w.eventsSinceCreate = false;
    this.reconnectDelay = 50;
    if (w.nextRevision === 0) {
      w.nextRevision = revision + 1;
      this.unstarted.delete(w);
      this.releaseStartWaiters();
    }
    w.synced = w.requestedStart === 0 || w.requestedStart > revision;
    if (w.progressWanted) this.sendProgressRequest();
  }

  private onEvents(w: EtcdWatch, raw: PbEvent[], headerRevision: number): void {
    w.eventsSinceCreate = true;
    let distinct = 0;
    let lastRevision = 0;
    const events: WatchEvent[] = [];
    for (const ev of raw) {
      const rev = int(ev.kv?.mod_revision);
      if (rev !== lastRevision) distinct++;
      lastRevision = rev;
      if (rev >= w.nextRevision && ev.kv) events.push(toEvent(ev));
    }
    if (!w.synced) {
      // Caught up when it has reached the revision the watch was created at, or when a
      // catch-up batch was not cut short (the final one).
      if (
        lastRevision >= w.createdRevision ||
        (headerRevision >= w.createdRevision && distinct < WATCH_BATCH_MAX_REVISIONS)
      ) {
        w.synced = true;
      }
    }
    if (events.length === 0) return;
    w.nextRevision = lastRevision + 1;
    if (w.progressCandidate !== undefined && lastRevision <= w.progressCandidate) {
      // An event at or below the candidate came late: the candidate needs a fresh round.
      w.progressCandidate = undefined;
    }
    w.queue.push({ type: "events", events });
  }

  private sendProgressRequest(): void {
    if (!this.stream || this.progressOutstanding || this.closed) return;
    if (this.progressTimer) {
      clearTimeout(this.progressTimer);
      this.progressTimer = undefined;
    }
    this.progressOutstanding = true;
    this.progressSent++;
    this.write({ progress_request: {} });
  }

  private isCaughtUp(w: EtcdWatch): boolean {
    if (w.synced) return true;
    if (!w.eventsSinceCreate && Date.now() - w.createdAt >= UNSYNCED_GRACE_MS) {
      w.synced = true;
    }
    return w.synced;
  }

  private onProgress(revision: number): void {
    if (!this.progressOutstanding) return;
    this.progressOutstanding = false;
    this.progressAnswered++;
    let again = false;
    let later = false;
    for (const w of this.watches.values()) {
      if (!w.progressWanted || !w.created) continue;
      const delivered = w.nextRevision - 1;
      if (this.progressAnswered < w.progressRound) {
        again = true;
      } else if (delivered >= revision) {
        this.deliverProgress(w, delivered);
      } else if (!this.isCaughtUp(w)) {
        later = true;
      } else if (w.progressCandidate !== undefined) {
        this.deliverProgress(w, Math.max(w.progressCandidate, delivered));
      } else {
        w.progressCandidate = revision;
        again = true;
      }
    }
    if (again) {
      this.sendProgressRequest();
    } else if (later && !this.progressTimer) {
      this.progressTimer = setTimeout(() => {
        this.progressTimer = undefined;
        this.sendProgressRequest();
      }, 100);
    }
  }

  private deliverProgress(w: EtcdWatch, revision: number): void {
    w.progressWanted = false;
    w.progressCandidate = undefined;
    if (revision + 1 > w.nextRevision) w.nextRevision = revision + 1;
    w.queue.push({ type: "progress", revision });
  }
}
