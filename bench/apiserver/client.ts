/**
 * The load generator's HTTP clients: a minimal keep-alive HTTP/1.1 client over raw `net`/`tls`
 * sockets (one request in flight per connection, no pipelining), an HTTP/2 client over one
 * `node:http2` session, and a closed-loop runner that measures throughput and latency.
 *
 * The HTTP/1.1 client is deliberately thin (prebuilt request bytes, a small response parser that
 * only reads the status, Content-Length and chunked framing) so that the client costs the
 * benchmark process as little CPU as possible: Node's own `http.Agent` spends several times more
 * per request, and the server under test runs on the only other core.
 */
import http2 from "node:http2";
import net from "node:net";
import { performance } from "node:perf_hooks";
import tls from "node:tls";
import { Samples, type Summary } from "../lib/stats.js";
import { cpuWindow, type CpuUse } from "../lib/sys.js";

/** Where a client connects: loopback host and port, TLS with the server's CA when given. */
export interface Target {
  host: string;
  port: number;
  /** PEM of the CA that signed the server's certificate; TLS when set. */
  ca?: Buffer;
  /** A client certificate and key (PEM) to authenticate with over TLS. */
  cert?: Buffer;
  key?: Buffer;
}

export interface H1Response {
  status: number;
  /** The body, when the request asked for it. */
  body?: Buffer;
  /** Bytes of the body (also when it was not kept). */
  bodyBytes: number;
}

const enum State {
  Head,
  Body,
  ChunkSize,
  ChunkData,
  ChunkCrlf,
  ChunkEnd,
  UntilClose,
}

interface Pending {
  resolve: (r: H1Response) => void;
  reject: (err: Error) => void;
  wantBody: boolean;
  timer: NodeJS.Timeout;
}

const CRLFCRLF = Buffer.from("\r\n\r\n");
const CRLF = Buffer.from("\r\n");

/** One keep-alive HTTP/1.1 connection; one request at a time. */
export class H1Conn {
  private pending: Pending | undefined;
  private rest: Buffer | undefined;
  private state = State.Head;
  private status = 0;
  private remaining = 0;
  private parts: Buffer[] = [];
  private bodyBytes = 0;
  private closedError: Error | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (err) => this.onClose(err));
    socket.on("close", () => this.onClose(new Error("connection closed")));
  }

  static open(target: Target, timeoutMs = 10_000): Promise<H1Conn> {
    return new Promise((resolve, reject) => {
      const socket = target.ca
        ? tls.connect({
            host: target.host,
            port: target.port,
            ca: target.ca,
            ...(target.cert ? { cert: target.cert, key: target.key } : {}),
            ALPNProtocols: ["http/1.1"],
          })
        : net.connect({ host: target.host, port: target.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${target.host}:${target.port} timed out`));
      }, timeoutMs);
      socket.setNoDelay(true);
      socket.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once(target.ca ? "secureConnect" : "connect", () => {
        clearTimeout(timer);
        socket.removeAllListeners("error");
        resolve(new H1Conn(socket));
      });
    });
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /**
   * Sends `request` (a complete HTTP/1.1 request: head and body, ASCII) and resolves with the
   * response once it is complete; keeps the body only when `wantBody`.
   */
  request(request: string | Buffer, wantBody = false, timeoutMs = 60_000): Promise<H1Response> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.pending) return Promise.reject(new Error("a request is already in flight"));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.socket.destroy(new Error(`request timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending = { resolve, reject, wantBody, timer };
      this.state = State.Head;
      this.parts = [];
      this.bodyBytes = 0;
      if (typeof request === "string") this.socket.write(request, "latin1");
      else this.socket.write(request);
    });
  }

  close(): void {
    this.closedError ??= new Error("connection closed by the client");
    this.socket.destroy();
  }

  private onClose(err: Error): void {
    this.closedError ??= err;
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    if (this.state === State.UntilClose) {
      p.resolve(this.response(p));
      return;
    }
    p.reject(err);
  }

  private response(p: Pending): H1Response {
    const r: H1Response = { status: this.status, bodyBytes: this.bodyBytes };
    if (p.wantBody || this.status >= 300)
      r.body = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    this.parts = [];
    return r;
  }

  private complete(): void {
    const p = this.pending;
    this.state = State.Head;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    p.resolve(this.response(p));
  }

  private take(data: Buffer, off: number, n: number): void {
    this.bodyBytes += n;
    // Error bodies are kept too, for the report.
    if (this.pending?.wantBody || this.status >= 300) this.parts.push(data.subarray(off, off + n));
  }

  private onData(chunk: Buffer): void {
    const data = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    this.rest = undefined;
    let off = 0;
    while (off < data.length) {
      if (!this.pending) return; // stray bytes after a response: ignore
      switch (this.state) {
        case State.Head: {
          const end = data.indexOf(CRLFCRLF, off);
          if (end < 0) {
            this.rest = data.subarray(off);
            return;
          }
          const head = data.toString("latin1", off, end);
          off = end + 4;
          this.status = Number(head.slice(9, 12));
          let length = -1;
          let chunked = false;
          for (const line of head.split("\r\n")) {
            const colon = line.indexOf(":");
            if (colon < 0) continue;
            const name = line.slice(0, colon).toLowerCase();
            if (name === "content-length") length = Number(line.slice(colon + 1).trim());
            else if (name === "transfer-encoding")
              chunked = line
                .slice(colon + 1)
                .toLowerCase()
                .includes("chunked");
          }
          if (this.status >= 100 && this.status < 200) break; // 100 Continue: the next head
          if (chunked) this.state = State.ChunkSize;
          else if (length > 0) {
            this.remaining = length;
            this.state = State.Body;
          } else if (length === 0) this.complete();
          else this.state = State.UntilClose;
          break;
        }
        case State.Body:
        case State.ChunkData: {
          const n = Math.min(this.remaining, data.length - off);
          this.take(data, off, n);
          off += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            if (this.state === State.Body) this.complete();
            else this.state = State.ChunkCrlf;
          }
          break;
        }
        case State.ChunkSize: {
          const eol = data.indexOf(CRLF, off);
          if (eol < 0) {
            this.rest = data.subarray(off);
            return;
          }
          const size = parseInt(data.toString("latin1", off, eol), 16);
          off = eol + 2;
          if (size > 0) {
            this.remaining = size;
            this.state = State.ChunkData;
          } else this.state = State.ChunkEnd;
          break;
        }
        case State.ChunkCrlf:
        case State.ChunkEnd: {
          // The CRLF after a chunk's data, or after the last (empty) chunk (no trailers).
          if (data.length - off < 2) {
            this.rest = data.subarray(off);
            return;
          }
          off += 2;
          if (this.state === State.ChunkEnd) this.complete();
          else this.state = State.ChunkSize;
          break;
        }
        case State.UntilClose:
          this.take(data, off, data.length - off);
          off = data.length;
          break;
      }
    }
  }
}

/** A complete HTTP/1.1 request (head and body) as one string. */
export function h1Request(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): string {
  let head = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  if (body !== undefined) head += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
  return `${head}\r\n${body ?? ""}`;
}

/** One request on a fresh connection (for setup and checks, not for measuring). */
export async function requestOnce(
  target: Target,
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  const conn = await H1Conn.open(target);
  try {
    const h: Record<string, string> = { Accept: "application/json", ...headers };
    if (body !== undefined) h["Content-Type"] ??= "application/json";
    const r = await conn.request(h1Request(method, path, h, body), true);
    return { status: r.status, body: r.body?.toString("utf8") ?? "" };
  } finally {
    conn.close();
  }
}

/** Opens `n` connections, `parallel` at a time. */
export async function openConns(target: Target, n: number, parallel = 64): Promise<H1Conn[]> {
  const conns: H1Conn[] = [];
  try {
    for (let i = 0; i < n; i += parallel) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(parallel, n - i) }, () => H1Conn.open(target)),
      );
      conns.push(...batch);
    }
  } catch (err) {
    for (const c of conns) c.close();
    throw err;
  }
  return conns;
}

// HTTP/2

/** One HTTP/2 session over TLS. */
export class H2Client {
  private constructor(private readonly session: http2.ClientHttp2Session) {}

  static open(target: Target, timeoutMs = 10_000): Promise<H2Client> {
    return new Promise((resolve, reject) => {
      const session = http2.connect(`https://${target.host}:${target.port}`, {
        ca: target.ca,
        ...(target.cert ? { cert: target.cert, key: target.key } : {}),
        // The client's own limit on concurrent streams is the server's to set; the default
        // initial window (64 KiB) is plenty for 2 KiB bodies.
      });
      const timer = setTimeout(() => {
        session.destroy();
        reject(new Error("HTTP/2 connect timed out"));
      }, timeoutMs);
      session.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      session.once("connect", () => {
        clearTimeout(timer);
        session.removeAllListeners("error");
        session.on("error", () => undefined); // surfaced through the streams
        resolve(new H2Client(session));
      });
    });
  }

  request(
    headers: http2.OutgoingHttpHeaders,
    body?: string,
    timeoutMs = 60_000,
  ): Promise<H1Response> {
    return new Promise((resolve, reject) => {
      let status = 0;
      let bytes = 0;
      const errorParts: Buffer[] = [];
      const stream = this.session.request(headers, { endStream: body === undefined });
      const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), timeoutMs);
      stream.on("response", (h) => (status = Number(h[":status"] ?? 0)));
      stream.on("data", (c: Buffer) => {
        bytes += c.length;
        if (status >= 300) errorParts.push(c);
      });
      stream.on("end", () => {
        clearTimeout(timer);
        const r: H1Response = { status, bodyBytes: bytes };
        if (errorParts.length > 0) r.body = Buffer.concat(errorParts);
        resolve(r);
      });
      stream.on("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      stream.on("close", () => {
        clearTimeout(timer);
        if (status === 0) reject(new Error(`stream closed (code ${stream.rstCode})`));
      });
      if (body !== undefined) stream.end(body, "latin1");
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.session.destroy();
        resolve();
      }, 2_000);
      this.session.close(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

// The closed-loop runner

export interface ThroughputResult extends CpuUse {
  /** Requests completed with the expected status within the measured window. */
  requests: number;
  /** Requests answered with another status or failed. */
  errors: number;
  firstError?: string;
  elapsedMs: number;
  opsPerSec: number;
  /** Latency of the successful requests, ms. */
  latency: Summary;
}

/** What one request does; resolves with the response. `seq` numbers the requests from 0. */
export type Issue = (worker: number, seq: number) => Promise<H1Response>;

/** "HTTP 409: <the start of the body>" for the report. */
export function describeFailure(r: H1Response): string {
  const text = r.body?.toString("utf8", 0, Math.min(r.body.length, 300)) ?? "";
  return `HTTP ${r.status}${text ? `: ${text.replace(/\s+/g, " ")}` : ""}`;
}

/**
 * Runs `workers` closed loops of `issue` (each starts its next request when the previous one is
 * answered): first `warmupMs` unmeasured, then `durationMs` measured. A request counts as a success
 * when its status is in `okStatus`. The sequence numbers continue from the warm-up into the
 * measured window, so that names stay distinct.
 */
export async function closedLoop(opts: {
  workers: number;
  durationMs: number;
  warmupMs: number;
  okStatus: number[];
  issue: Issue;
  serverPid?: number;
}): Promise<ThroughputResult> {
  let seq = 0;
  const ok = new Set(opts.okStatus);
  const run = async (ms: number, record: Samples | undefined) => {
    let errors = 0;
    let firstError: string | undefined;
    const deadline = performance.now() + ms;
    const worker = async (w: number) => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        try {
          const r = await opts.issue(w, seq++);
          if (ok.has(r.status)) record?.push(performance.now() - t0);
          else {
            errors++;
            firstError ??= describeFailure(r);
          }
        } catch (err) {
          errors++;
          firstError ??= String((err as Error)?.message ?? err);
          // A broken connection stays broken: stop this worker rather than spin.
          if (errors > 1000) return;
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    };
    await Promise.all(Array.from({ length: opts.workers }, (_, w) => worker(w)));
    return { errors, firstError };
  };
  if (opts.warmupMs > 0) await run(opts.warmupMs, undefined);
  const samples = new Samples(1 << 16);
  const window = cpuWindow(opts.serverPid);
  const { errors, firstError } = await run(opts.durationMs, samples);
  const cpu = window();
  const result: ThroughputResult = {
    requests: samples.length,
    errors,
    opsPerSec: (samples.length * 1000) / cpu.elapsedMs,
    latency: samples.summarize(),
    ...cpu,
  };
  if (firstError) result.firstError = firstError;
  return result;
}

/**
 * Issues `count` requests with at most `concurrency` in flight over the given connections (one
 * request per connection at a time); returns the time taken and the failures.
 */
export async function runCount(
  conns: H1Conn[],
  count: number,
  request: (i: number) => string,
  okStatus: number[],
): Promise<{ elapsedMs: number; errors: number; firstError?: string }> {
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const ok = new Set(okStatus);
  const t0 = performance.now();
  await Promise.all(
    conns.map(async (conn) => {
      while (next < count) {
        const i = next++;
        try {
          const r = await conn.request(request(i));
          if (!ok.has(r.status)) {
            errors++;
            firstError ??= describeFailure(r);
          }
        } catch (err) {
          errors++;
          firstError ??= String((err as Error)?.message ?? err);
          if (conn.closed) return;
        }
      }
    }),
  );
  const out: { elapsedMs: number; errors: number; firstError?: string } = {
    elapsedMs: performance.now() - t0,
    errors,
  };
  if (firstError) out.firstError = firstError;
  return out;
}
