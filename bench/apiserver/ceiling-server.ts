/**
 * The runtime's ceiling for the API server benchmark: a bare `node:http` server (run as a child
 * process, like the apiserver) that reads the request body, parses it as JSON and answers it back
 * serialized again, 201 with Content-Length, keep-alive.
 *
 *   node dist/bench/apiserver/ceiling-server.js PORT
 *
 * Prints "listening PORT" once it accepts connections; stops on SIGTERM or SIGINT.
 */
import http from "node:http";

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write("usage: ceiling-server.js PORT\n");
  process.exit(2);
}

const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
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
    const body = Buffer.from(JSON.stringify(obj));
    res.writeHead(201, { "content-type": "application/json", "content-length": body.length });
    res.end(body);
  });
});

server.listen(port, "127.0.0.1", () => process.stdout.write(`listening ${port}\n`));

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
