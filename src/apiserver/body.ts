/**
 * Large response bodies (lists and Tables of many objects) written as they are produced: the
 * pieces of each item are copied into fixed-size chunks that go out one by one, and the next item
 * waits while the connection is backed up. The chunks are reused once written, so a list of tens
 * of megabytes neither builds its whole body in memory nor leaves it to the garbage collector.
 */
import type { ServerResponse } from "node:http";
import { acceptsGzip, sendRaw, type Request, type Response } from "./http.js";

const CHUNK_BYTES = 64 * 1024;
/** Written chunks kept for the next bodies (1 MiB). */
const SPARE_MAX = 16;
const spare: Buffer[] = [];

function takeChunk(): Buffer {
  return spare.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES);
}

function giveBack(chunk: Buffer): void {
  if (spare.length < SPARE_MAX) spare.push(chunk);
}

/** Where a body's full chunks go: the connection, or a list to gzip as a whole. */
interface Sink {
  /** Takes a full chunk (its first `n` bytes); false when the connection is backed up. */
  put(chunk: Buffer, n: number): boolean;
}

/** Appends bytes and text to the current chunk, handing full chunks to the sink. */
export class BodyWriter {
  private chunk = takeChunk();
  private pos = 0;
  /** Whether the sink asked to wait before more is written. */
  backedUp = false;

  constructor(private readonly sink: Sink) {}

  /** Appends `b[start, end)`. */
  bytes(b: Uint8Array, start = 0, end = b.length): void {
    while (start < end) {
      const n = Math.min(end - start, CHUNK_BYTES - this.pos);
      this.chunk.set(start === 0 && n === b.length ? b : b.subarray(start, start + n), this.pos);
      this.pos += n;
      start += n;
      if (this.pos === CHUNK_BYTES) this.flush();
    }
  }

  /** Appends `s` as UTF-8. */
  text(s: string): void {
    // Every UTF-16 unit takes at most 3 bytes.
    if (s.length * 3 <= CHUNK_BYTES - this.pos) {
      this.pos += this.chunk.write(s, this.pos, "utf8");
      if (this.pos === CHUNK_BYTES) this.flush();
    } else {
      this.bytes(Buffer.from(s));
    }
  }

  /** Hands the current chunk on, if it holds anything. */
  flush(): void {
    if (this.pos === 0) return;
    if (!this.sink.put(this.chunk, this.pos)) this.backedUp = true;
    this.chunk = takeChunk();
    this.pos = 0;
  }

  /** Gives the unused chunk back (after the last flush). */
  release(): void {
    giveBack(this.chunk);
  }
}

/** What a streamed body is made of: a head, `count` items, a tail. */
export interface StreamedBody {
  head: string;
  count: number;
  item(w: BodyWriter, i: number): void;
  tail: string;
}

/**
 * Sends `body` with status `code`. Without gzip the body goes out in chunks as it is produced
 * (HTTP/1.1 chunked transfer encoding, as upstream's streamed lists); items wait while the client
 * is slower than the server, and production stops if the client goes away. A client that takes
 * gzip gets the whole body compressed, with its length, when it is large.
 */
export async function sendStreamed(
  req: Request,
  res: Response,
  code: number,
  contentType: string,
  body: StreamedBody,
  headers: Record<string, string> = {},
): Promise<void> {
  if (acceptsGzip(req)) return sendCollected(req, res, code, contentType, body, headers);
  const out = res as ServerResponse;
  out.writeHead(code, { "content-type": contentType, ...headers });
  let waiting: (() => void) | undefined;
  let closed = false;
  const resume = () => {
    const w = waiting;
    waiting = undefined;
    w?.();
  };
  const close = () => {
    closed = true;
    resume();
  };
  out.on("drain", resume);
  out.on("close", close);
  const w = new BodyWriter({
    put: (chunk, n) =>
      out.write(n === chunk.length ? chunk : chunk.subarray(0, n), () => giveBack(chunk)),
  });
  try {
    w.text(body.head);
    for (let i = 0; i < body.count; i++) {
      body.item(w, i);
      if (w.backedUp) {
        if (closed) return;
        // 'drain' comes after this turn at the earliest.
        await new Promise<void>((resolve) => (waiting = resolve));
        if (closed) return;
        w.backedUp = false;
      }
    }
    w.text(body.tail);
    w.flush();
    out.end();
  } finally {
    w.release();
    out.off("drain", resume);
    out.off("close", close);
  }
}

/** The whole body in one buffer, gzipped when large, with its length. */
function sendCollected(
  req: Request,
  res: Response,
  code: number,
  contentType: string,
  body: StreamedBody,
  headers: Record<string, string>,
): void {
  const parts: Buffer[] = [];
  const w = new BodyWriter({
    put: (chunk, n) => {
      parts.push(Buffer.from(chunk.subarray(0, n)));
      giveBack(chunk);
      return true;
    },
  });
  w.text(body.head);
  for (let i = 0; i < body.count; i++) body.item(w, i);
  w.text(body.tail);
  w.flush();
  w.release();
  sendRaw(req, res, code, contentType, Buffer.concat(parts), headers);
}
