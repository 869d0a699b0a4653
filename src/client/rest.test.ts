/** The REST client against a small loopback HTTP server that answers what each test needs. */
import assert from "node:assert/strict";
import { once } from "node:events";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { after, before, test } from "node:test";
import { isStatusError } from "../api/status.js";
import { tempDir } from "../testing/tmp.js";
import { RestClient } from "./rest.js";

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;
let handler: Handler = (_req, res) => res.end();
const seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
const server = http.createServer((req, res) => {
  let body = "";
  req.on("data", (c: Buffer) => (body += c.toString()));
  req.on("end", () => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
    handler(req, res, body);
  });
});
let base = "";
const tmp = tempDir("k8ts-rest-");

before(async () => {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.close();
  server.closeAllConnections();
  tmp.remove();
});

test("JSON in and out, bearer token, user agent, query strings", async () => {
  handler = (_req, res, body) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ echoed: JSON.parse(body) }));
  };
  const c = new RestClient({
    server: base,
    namespace: "default",
    token: "t0k",
    userAgent: "tester/v1",
  });
  try {
    const out = await c.request<{ echoed: unknown }>("POST", "/api/v1/things", {
      body: { a: 1 },
      query: { dryRun: "All", skip: undefined },
    });
    assert.deepEqual(out, { echoed: { a: 1 } });
    const last = seen.at(-1)!;
    assert.equal(last.url, "/api/v1/things?dryRun=All");
    assert.equal(last.headers.authorization, "Bearer t0k");
    assert.equal(last.headers["user-agent"], "tester/v1");
    assert.equal(last.headers["content-type"], "application/json");
  } finally {
    c.close();
  }
});

test("Status answers become StatusErrors; other failures get upstream's wording", async () => {
  const c = new RestClient({ server: base, namespace: "default", username: "u", password: "p" });
  try {
    handler = (_req, res) => {
      res.statusCode = 422;
      res.setHeader("content-type", "application/json");
      res.end(
        JSON.stringify({
          kind: "Status",
          apiVersion: "v1",
          status: "Failure",
          message: 'Pod "x" is invalid: spec.containers: Required value',
          reason: "Invalid",
          code: 422,
          details: { name: "x", kind: "Pod", causes: [{ field: "spec.containers" }] },
        }),
      );
    };
    await assert.rejects(c.request("POST", "/api/v1/namespaces/d/pods", { body: {} }), (err) => {
      assert.ok(isStatusError(err, "Invalid"));
      assert.equal(err.code, 422);
      assert.equal(err.details?.causes?.[0]?.field, "spec.containers");
      return true;
    });
    assert.equal(
      seen.at(-1)!.headers.authorization,
      `Basic ${Buffer.from("u:p").toString("base64")}`,
    );

    handler = (_req, res) => {
      res.statusCode = 401;
      res.end("Unauthorized");
    };
    await assert.rejects(c.request("GET", "/api"), (err) => {
      assert.ok(isStatusError(err, "Unauthorized"));
      assert.equal(err.message, "the server has asked for the client to provide credentials");
      return true;
    });
  } finally {
    c.close();
  }
});

test("429 and 5xx with Retry-After are retried; without it they fail at once", async () => {
  let calls = 0;
  handler = (_req, res) => {
    calls++;
    if (calls <= 2) {
      res.statusCode = calls === 1 ? 429 : 503;
      res.setHeader("retry-after", "0");
      res.end(JSON.stringify({ kind: "Status", code: res.statusCode, reason: "TooManyRequests" }));
      return;
    }
    res.setHeader("content-type", "application/json");
    res.end('{"ok":true}');
  };
  const c = new RestClient({ server: base, namespace: "default" });
  try {
    assert.deepEqual(await c.request("POST", "/x", { body: { n: 1 } }), { ok: true });
    assert.equal(calls, 3);
    assert.ok(
      seen.slice(-3).every((s) => s.body === '{"n":1}'),
      "the body is sent again",
    );
    handler = (_req, res) => {
      res.statusCode = 503;
      res.end("overloaded");
    };
    await assert.rejects(c.request("GET", "/x"), (err) => isStatusError(err, "ServiceUnavailable"));
  } finally {
    c.close();
  }
});

test("a watch is read line by line, across chunk boundaries and multi-byte characters", async () => {
  const lines = [
    { type: "ADDED", object: { metadata: { name: "a", annotations: { note: "héllo wörld ✓" } } } },
    { type: "MODIFIED", object: { metadata: { name: "a" } } },
    { type: "BOOKMARK", object: { metadata: { resourceVersion: "7" } } },
  ];
  handler = (req, res) => {
    assert.match(req.url!, /watch=true/);
    res.setHeader("content-type", "application/json");
    const bytes = Buffer.from(lines.map((l) => JSON.stringify(l) + "\n").join(""));
    // Three-byte pieces split lines and characters.
    let i = 0;
    const step = () => {
      if (i >= bytes.length) return res.end();
      res.write(bytes.subarray(i, i + 3));
      i += 3;
      setImmediate(step);
    };
    step();
  };
  const c = new RestClient({ server: base, namespace: "default" });
  try {
    const got = [];
    for await (const e of await c.watch(
      "/api/v1/configmaps",
      { resourceVersion: "5" },
      new AbortController().signal,
    ))
      got.push(e);
    assert.deepEqual(got, lines);

    // A watch that fails to open rejects with the Status.
    handler = (_req, res) => {
      res.statusCode = 410;
      res.end(
        JSON.stringify({
          kind: "Status",
          code: 410,
          reason: "Expired",
          message: "too old resource version: 1 (5)",
        }),
      );
    };
    await assert.rejects(
      c.watch("/api/v1/configmaps", { resourceVersion: "1" }, new AbortController().signal),
      (err) => isStatusError(err, "Expired") && err.code === 410,
    );

    // Aborting ends the iteration without an error.
    handler = (_req, res) => {
      res.write(JSON.stringify(lines[1]) + "\n");
    };
    const ac = new AbortController();
    const stream = await c.watch("/api/v1/configmaps", {}, ac.signal);
    const seenTypes: string[] = [];
    for await (const e of stream) {
      seenTypes.push(e.type);
      ac.abort();
    }
    assert.deepEqual(seenTypes, ["MODIFIED"]);
  } finally {
    c.close();
  }
});

test("a token file is read for each minute's requests (rotated service account tokens)", async () => {
  handler = (_req, res) => res.end();
  const file = path.join(tmp.path, "token");
  fs.writeFileSync(file, "first\n");
  const c = new RestClient({ server: base, namespace: "default", tokenFile: file });
  try {
    await c.request("GET", "/a");
    assert.equal(seen.at(-1)!.headers.authorization, "Bearer first");
    fs.writeFileSync(file, "second\n");
    await c.request("GET", "/a");
    assert.equal(seen.at(-1)!.headers.authorization, "Bearer first", "cached within the minute");
  } finally {
    c.close();
  }
});
