import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { resources } from "../api/resources.js";
import { parseKindName } from "./kinds.js";
import { Client, objectKey, splitKey } from "./resources.js";

const here = path.dirname(fileURLToPath(import.meta.url));

test("the typed kind map and the resource catalogue name the same kinds", () => {
  // The map is a type only; its source is the record of what it holds.
  const source = fs.readFileSync(path.resolve(here, "../../../src/client/kinds.ts"), "utf8");
  const typed = new Set([...source.matchAll(/^ {2}"([^"]+)": \w+\.\w+;$/gm)].map((m) => m[1]!));
  const catalogue = new Set(
    resources.map((r) => `${r.group ? `${r.group}/` : ""}${r.version}/${r.kind}`),
  );
  assert.deepEqual(
    [...typed].filter((k) => !catalogue.has(k)),
    [],
    "typed but not served",
  );
  assert.deepEqual(
    [...catalogue].filter((k) => !typed.has(k)),
    [],
    "served but not typed",
  );
});

test("kind names, REST paths and keys", () => {
  assert.deepEqual(parseKindName("v1/Pod"), { group: "", version: "v1", kind: "Pod" });
  assert.deepEqual(parseKindName("apps/v1/ReplicaSet"), {
    group: "apps",
    version: "v1",
    kind: "ReplicaSet",
  });
  assert.throws(() => parseKindName("Pod"), /not a kind name/);

  const client = new Client({ server: "https://127.0.0.1:6443/prefix/", namespace: "default" });
  try {
    const pods = client.resource("v1/Pod");
    assert.equal(pods.path(undefined), "/api/v1/pods");
    assert.equal(
      pods.path("kube-system", "web-0", "status"),
      "/api/v1/namespaces/kube-system/pods/web-0/status",
    );
    const nodes = client.resource("v1/Node", "ignored-for-cluster-scope");
    assert.equal(nodes.path("x", "worker-0"), "/api/v1/nodes/worker-0");
    const rs = client.resource("apps/v1/ReplicaSet").namespace("prod");
    assert.equal(rs.ns, "prod");
    assert.equal(rs.path("prod", "web"), "/apis/apps/v1/namespaces/prod/replicasets/web");
    assert.equal(rs.apiVersion, "apps/v1");
    assert.equal(
      client.rest.path("/api/v1/pods", { limit: 5, continue: undefined }),
      "/prefix/api/v1/pods?limit=5",
    );
    assert.throws(() => client.resource("v1/Gizmo"), /no built-in resource serves v1\/Gizmo/);
  } finally {
    client.close();
  }

  assert.equal(objectKey({ metadata: { namespace: "ns", name: "a" } }), "ns/a");
  assert.equal(objectKey({ metadata: { name: "node-1" } }), "node-1");
  assert.deepEqual(splitKey("ns/a"), { namespace: "ns", name: "a" });
  assert.deepEqual(splitKey("node-1"), { namespace: "", name: "node-1" });
});

test("listAll takes the list again whole when its continue token expires, as client-go's pager", async () => {
  const requests: string[] = [];
  const pod = (name: string) => ({ metadata: { name, namespace: "default" } });
  const server = http.createServer((req, res) => {
    requests.push(req.url!);
    const url = new URL(req.url!, "http://x");
    const reply = (code: number, body: unknown) => {
      res.writeHead(code, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (url.searchParams.get("continue")) {
      return reply(410, {
        kind: "Status",
        apiVersion: "v1",
        status: "Failure",
        reason: "Expired",
        code: 410,
        message: "The provided continue parameter is too old to display a consistent list result.",
      });
    }
    if (url.searchParams.get("limit")) {
      return reply(200, {
        kind: "PodList",
        apiVersion: "v1",
        metadata: { resourceVersion: "5", continue: "token" },
        items: [pod("a")],
      });
    }
    reply(200, {
      kind: "PodList",
      apiVersion: "v1",
      metadata: { resourceVersion: "9" },
      items: [pod("a"), pod("b"), pod("c")],
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const client = new Client({
    server: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    namespace: "default",
  });
  try {
    const list = await client.resource("v1/Pod").namespace("default").listAll();
    assert.deepEqual(
      list.items.map((p) => p.metadata?.name),
      ["a", "b", "c"],
    );
    assert.equal(list.metadata.resourceVersion, "9");
    assert.deepEqual(requests, [
      "/api/v1/namespaces/default/pods?limit=500",
      "/api/v1/namespaces/default/pods?limit=500&continue=token",
      "/api/v1/namespaces/default/pods",
    ]);
  } finally {
    client.close();
    server.close();
  }
});
