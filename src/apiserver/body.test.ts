import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { gunzipSync } from "node:zlib";
import { sendStreamed, type StreamedBody } from "./body.js";

/** A body of `count` items, each a JSON string of `size` characters (some of them not ASCII). */
function body(count: number, size: number): StreamedBody {
  const item = "x".repeat(size - 3) + "é";
  return {
    head: '{"items":[',
    count,
    item: (w, i) => {
      if (i > 0) w.text(",");
      if (i % 2) w.text(JSON.stringify(item));
      else w.bytes(Buffer.from(JSON.stringify(item)));
    },
    tail: "]}",
  };
}

async function serve(
  count: number,
  size: number,
  done: (err?: unknown) => void,
): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer((req, res) => {
    sendStreamed(req, res, 200, "application/json", body(count, size)).then(() => done(), done);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as net.AddressInfo).port };
}

function get(
  port: number,
  headers: Record<string, string> = {},
): Promise<{ res: http.IncomingMessage; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path: "/", headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ res, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      })
      .on("error", reject);
  });
}

test("a streamed body arrives whole, in chunks, through a backed-up connection", async () => {
  let finished = 0;
  const { server, port } = await serve(3000, 1000, (err) => {
    assert.equal(err, undefined);
    finished++;
  });
  try {
    const { res, body: got } = await get(port);
    assert.equal(res.headers["transfer-encoding"], "chunked");
    const parsed = JSON.parse(got.toString("utf8")) as { items: string[] };
    assert.equal(parsed.items.length, 3000);
    assert.ok(parsed.items.every((s) => s.length === 998 && s.endsWith("é")));
    assert.equal(finished, 1);
  } finally {
    server.close();
  }
});

test("a client that takes gzip gets the whole body compressed, with its length", async () => {
  const { server, port } = await serve(1000, 1000, () => {});
  try {
    const { res, body: got } = await get(port, { "accept-encoding": "gzip" });
    assert.equal(res.headers["content-encoding"], "gzip");
    assert.equal(Number(res.headers["content-length"]), got.length);
    const parsed = JSON.parse(gunzipSync(got).toString("utf8")) as { items: string[] };
    assert.equal(parsed.items.length, 1000);
  } finally {
    server.close();
  }
});

test("production stops when the client goes away in the middle of a body", async () => {
  let settled!: () => void;
  const stopped = new Promise<void>((resolve) => (settled = resolve));
  // 200 MB: far more than the socket buffers take while nobody reads.
  const { server, port } = await serve(200_000, 1000, () => settled());
  try {
    const socket = net.connect(port, "127.0.0.1");
    socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    // Read a little, then leave without reading the rest.
    await new Promise<void>((resolve) => socket.once("data", () => resolve()));
    socket.pause();
    await new Promise((r) => setTimeout(r, 50));
    socket.destroy();
    await stopped;
  } finally {
    server.close();
  }
});
