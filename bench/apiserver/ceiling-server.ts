/**
 * The runtime's ceiling for the API server benchmark: a bare `node:http` server (run as a child
 * process, like the apiserver) that reads the request body, parses it as JSON and answers it back
 * serialized again, 201 with Content-Length, keep-alive.
 *
 * It is also the ceiling of the watch fan-out: `GET ...?watch=true` opens a chunked stream, and
 * every POST adds an event line for every open stream, `{"type":"ADDED","object":...}` with the
 * posted object padded to EVENT_BYTES when given (the size of the event the API server sends for
 * the same object). The lines of one turn of the event loop go out together, one write per stream.
 * Any other GET answers an empty list at resourceVersion 1.
 *
 *   node dist/bench/apiserver/ceiling-server.js PORT [EVENT_BYTES]
 *
 * Prints "listening PORT" once it accepts connections; stops on SIGTERM or SIGINT.
 */
import http from "node:http";

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write("usage: ceiling-server.js PORT\n");
  process.exit(2);
}

const eventBytes = Number(process.argv[3] ?? 0);
const watchers = new Set<http.ServerResponse>();
let pending: Buffer[] = [];

function fanOut(): void {
  const lines = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
  pending = [];
  for (const w of watchers) w.write(lines);
}

const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  if (req.method === "GET") {
    if (req.url?.includes("watch=true")) {
      res.writeHead(200, { "content-type": "application/json" });
      res.flushHeaders();
      watchers.add(res);
      res.on("close", () => watchers.delete(res));
      return;
    }
    const list =
      '{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}';
    res.writeHead(200, { "content-type": "application/json", "content-length": list.length });
    res.end(list);
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    let obj: unknown;
    try {
      obj = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      res.writeHead(400, { "content-length": "0" });
      res.end();
      return;
    }
    const text = JSON.stringify(obj);
    const body = Buffer.from(text);
    res.writeHead(201, { "content-type": "application/json", "content-length": body.length });
    res.end(body);
    if (watchers.size > 0) {
      const event = `{"type":"ADDED","object":${text.slice(0, -1)},"padding":"`;
      const pad = Math.max(0, eventBytes - event.length - 4);
      if (pending.length === 0) setImmediate(fanOut);
      pending.push(Buffer.from(`${event}${"x".repeat(pad)}"}}\n`));
    }
  });
});

server.listen(port, "127.0.0.1", () => process.stdout.write(`listening ${port}\n`));

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
