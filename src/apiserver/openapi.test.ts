import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { groupsInOrder, resources } from "../api/resources.js";
import { OpenAPI, type Json } from "./openapi.js";

type Obj = { [key: string]: Json };

function obj(v: Json | undefined): Obj {
  assert.ok(v !== null && typeof v === "object" && !Array.isArray(v), "expected an object");
  return v;
}

function at(v: Json | undefined, ...keys: string[]): Json {
  let cur: Json | undefined = v;
  for (const k of keys) {
    cur = obj(cur)[k];
    assert.ok(cur !== undefined, `missing ${keys.join(".")} (at ${k})`);
  }
  return cur as Json;
}

/** Every `$ref` value in a document. */
function refs(v: Json, out: string[] = []): string[] {
  if (Array.isArray(v)) for (const x of v) refs(x, out);
  else if (v !== null && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) {
      if (k === "$ref" && typeof x === "string") out.push(x);
      else refs(x, out);
    }
  }
  return out;
}

const api = new OpenAPI();

function v3(key: string): Obj {
  return obj(api.v3Document(key));
}

function schema(doc: Obj, name: string): Obj {
  return obj(at(doc, "components", "schemas", name));
}

/** The type a v3 property refers to, through `allOf: [{$ref}]` or a plain `$ref`. */
function refOf(prop: Json): string {
  const p = obj(prop);
  const r = p["$ref"] ?? obj(((p["allOf"] ?? []) as Json[])[0] ?? {})["$ref"];
  assert.equal(typeof r, "string");
  return (r as string).replace("#/components/schemas/", "");
}

describe("OpenAPI v3 index", () => {
  const res = api.serve("/openapi/v3", new URLSearchParams(), "application/json, */*");
  assert.ok(res);
  const index = obj(JSON.parse(res.body.toString()) as Json);
  const paths = obj(index["paths"]);

  it("lists every served group-version with a hash URL", () => {
    assert.equal(res.status, 200);
    assert.equal(res.contentType, "application/json");
    const gvs = new Set(
      resources.map((r) => (r.group ? `apis/${r.group}/${r.version}` : "api/v1")),
    );
    for (const gv of gvs) {
      const url = at(paths, gv, "serverRelativeURL");
      assert.match(String(url), new RegExp(`^/openapi/v3/${gv}\\?hash=[0-9A-F]{128}$`));
    }
    for (const g of groupsInOrder()) if (g.name) assert.ok(paths[`apis/${g.name}`], g.name);
    for (const k of ["api", "apis", "version"]) assert.ok(paths[k], k);
  });

  it("hashes are the upper-case SHA-512 of the documents served", () => {
    for (const [key, entry] of Object.entries(paths)) {
      const url = new URL(String(at(entry, "serverRelativeURL")), "http://x");
      const doc = api.serve(url.pathname, url.searchParams, "application/json");
      assert.ok(doc, key);
      assert.equal(doc.status, 200);
      const hash = createHash("sha512").update(doc.body).digest("hex").toUpperCase();
      assert.equal(url.searchParams.get("hash"), hash);
      assert.equal(doc.etag, `"${hash}"`);
      assert.equal(doc.headers?.["Cache-Control"], "public, immutable");
    }
  });

  it("redirects a stale hash, answers If-None-Match with 304, refuses protobuf-only", () => {
    const stale = api.serve("/openapi/v3/apis/apps/v1", new URLSearchParams("hash=ABC"), "");
    assert.equal(stale?.status, 301);
    assert.equal(
      stale?.headers?.["Location"],
      String(at(paths, "apis/apps/v1", "serverRelativeURL")),
    );
    const plain = api.serve("/openapi/v3/apis/apps/v1", new URLSearchParams(), "application/json");
    assert.equal(plain?.status, 200);
    assert.equal(plain?.headers?.["Cache-Control"], undefined);
    const again = api.serve(
      "/openapi/v3/apis/apps/v1",
      new URLSearchParams(),
      "application/json",
      plain?.etag,
    );
    assert.equal(again?.status, 304);
    const proto = api.serve(
      "/openapi/v3/apis/apps/v1",
      new URLSearchParams(),
      "application/com.github.proto-openapi.spec.v3@v1.0+protobuf",
    );
    assert.equal(proto?.status, 406);
    assert.equal(api.serve("/openapi/v3/apis/nope/v1", new URLSearchParams(), ""), undefined);
    assert.equal(api.serve("/openapi/v4", new URLSearchParams(), ""), undefined);
  });
});

describe("OpenAPI v3 group-version documents", () => {
  const apps = v3("apis/apps/v1");
  const item = obj(at(apps, "paths", "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"));

  it("has the deployments PATCH operation kubectl's field validation looks for", () => {
    const patch = obj(item["patch"]);
    assert.equal(patch["operationId"], "patchAppsV1NamespacedDeployment");
    assert.equal(patch["x-kubernetes-action"], "patch");
    assert.deepEqual(patch["x-kubernetes-group-version-kind"], {
      group: "apps",
      kind: "Deployment",
      version: "v1",
    });
    const names = (patch["parameters"] as Json[]).map((p) => obj(p)["name"]);
    assert.deepEqual(names, ["dryRun", "fieldManager", "fieldValidation", "force"]);
    const content = obj(at(patch, "requestBody", "content"));
    assert.deepEqual(Object.keys(content).sort(), [
      "application/apply-patch+yaml",
      "application/json-patch+json",
      "application/merge-patch+json",
      "application/strategic-merge-patch+json",
    ]);
    const shared = (item["parameters"] as Json[]).map((p) => obj(p)["name"]);
    assert.deepEqual(shared, ["name", "namespace", "pretty"]);
  });

  it("has upstream's paths and operation ids", () => {
    const ops = (p: string): string[] =>
      Object.entries(obj(at(apps, "paths", p)))
        .filter(([k]) => k !== "parameters")
        .map(([, op]) => String(obj(op)["operationId"]));
    assert.deepEqual(ops("/apis/apps/v1/namespaces/{namespace}/deployments"), [
      "deleteAppsV1CollectionNamespacedDeployment",
      "listAppsV1NamespacedDeployment",
      "createAppsV1NamespacedDeployment",
    ]);
    assert.deepEqual(ops("/apis/apps/v1/deployments"), ["listAppsV1DeploymentForAllNamespaces"]);
    assert.deepEqual(ops("/apis/apps/v1/watch/namespaces/{namespace}/deployments/{name}"), [
      "watchAppsV1NamespacedDeployment",
    ]);
    assert.deepEqual(ops("/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"), [
      "readAppsV1NamespacedDeploymentScale",
      "patchAppsV1NamespacedDeploymentScale",
      "replaceAppsV1NamespacedDeploymentScale",
    ]);
    const scale = obj(
      at(apps, "paths", "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"),
    );
    assert.deepEqual(at(scale, "get", "x-kubernetes-group-version-kind"), {
      group: "autoscaling",
      kind: "Scale",
      version: "v1",
    });
    const core = v3("api/v1");
    const exec = obj(at(core, "paths", "/api/v1/namespaces/{namespace}/pods/{name}/exec"));
    assert.equal(at(exec, "get", "operationId"), "connectCoreV1GetNamespacedPodExec");
    assert.equal(at(exec, "post", "x-kubernetes-action"), "connect");
    const rbac = v3("apis/rbac.authorization.k8s.io/v1");
    assert.equal(
      at(
        rbac,
        "paths",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}",
        "get",
        "operationId",
      ),
      "readRbacAuthorizationV1ClusterRole",
    );
  });

  it("gives every creatable or patchable kind a PATCH operation with fieldValidation", () => {
    for (const r of resources) {
      if (!r.verbs.includes("patch") && !r.verbs.includes("create")) continue;
      const doc = v3(r.group ? `apis/${r.group}/${r.version}` : "api/v1");
      const found = Object.values(obj(doc["paths"])).some((item) => {
        const patch = obj(item)["patch"];
        if (!patch) return false;
        const gvk = obj(patch)["x-kubernetes-group-version-kind"];
        if (!gvk || obj(gvk)["kind"] !== r.kind || obj(gvk)["group"] !== r.group) return false;
        return (obj(patch)["parameters"] as Json[]).some(
          (p) => obj(p)["name"] === "fieldValidation",
        );
      });
      assert.ok(found, `${r.group}/${r.version} ${r.kind}`);
    }
    const binding = obj(at(v3("api/v1"), "paths", "/api/v1/namespaces/{namespace}/bindings"));
    assert.equal(at(binding, "patch", "x-k8ts-validation-only"), true);
    assert.equal(at(binding, "post", "operationId"), "createCoreV1NamespacedBinding");
    const strict = new OpenAPI(resources, { validationPatches: false }).v3Document("api/v1");
    assert.equal(
      obj(at(strict, "paths", "/api/v1/namespaces/{namespace}/bindings"))["patch"],
      undefined,
    );
  });

  it("describes Deployment with references, kinds and patch metadata", () => {
    const d = schema(apps, "io.k8s.api.apps.v1.Deployment");
    assert.deepEqual(d["x-kubernetes-group-version-kind"], [
      { group: "apps", kind: "Deployment", version: "v1" },
    ]);
    assert.equal(typeof d["description"], "string");
    assert.equal(refOf(at(d, "properties", "spec")), "io.k8s.api.apps.v1.DeploymentSpec");
    assert.deepEqual(at(d, "properties", "spec", "default"), {});
    const spec = schema(apps, "io.k8s.api.apps.v1.DeploymentSpec");
    assert.deepEqual(spec["required"], ["selector", "template"]);
    const strategy = obj(at(spec, "properties", "strategy"));
    assert.equal(refOf(strategy), "io.k8s.api.apps.v1.DeploymentStrategy");
    assert.equal(strategy["x-kubernetes-patch-strategy"], "retainKeys");
    const ds = schema(apps, "io.k8s.api.apps.v1.DeploymentStrategy");
    assert.deepEqual(Object.keys(obj(ds["properties"])), ["rollingUpdate", "type"]);
    assert.equal(at(ds, "properties", "type", "type"), "string");
    const containers = obj(
      at(schema(apps, "io.k8s.api.core.v1.PodSpec"), "properties", "containers"),
    );
    assert.equal(containers["x-kubernetes-patch-merge-key"], "name");
    assert.equal(containers["x-kubernetes-patch-strategy"], "merge");
    assert.equal(containers["x-kubernetes-list-type"], "map");
    assert.deepEqual(containers["x-kubernetes-list-map-keys"], ["name"]);
    assert.deepEqual(obj(containers["items"])["default"], {});
    const selector = schema(apps, "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector");
    assert.equal(selector["x-kubernetes-map-type"], "atomic");
  });

  it("represents IntOrString, Quantity and Time as upstream", () => {
    assert.deepEqual(
      { ...schema(apps, "io.k8s.apimachinery.pkg.util.intstr.IntOrString"), description: "" },
      {
        description: "",
        format: "int-or-string",
        oneOf: [{ type: "integer" }, { type: "string" }],
      },
    );
    assert.deepEqual(
      { ...schema(apps, "io.k8s.apimachinery.pkg.api.resource.Quantity"), description: "" },
      { description: "", oneOf: [{ type: "string" }, { type: "number" }] },
    );
    const time = schema(apps, "io.k8s.apimachinery.pkg.apis.meta.v1.Time");
    assert.equal(time["type"], "string");
    assert.equal(time["format"], "date-time");
    const raw = schema(apps, "io.k8s.apimachinery.pkg.runtime.RawExtension");
    assert.equal(raw["type"], "object");
  });

  it("contains every schema its references name", () => {
    for (const key of api.documentKeys()) {
      const doc = v3(key);
      const names = new Set(Object.keys(obj(at(doc, "components", "schemas"))));
      for (const r of refs(doc)) {
        assert.ok(r.startsWith("#/components/schemas/"), r);
        assert.ok(names.has(r.slice("#/components/schemas/".length)), `${key}: ${r}`);
      }
    }
  });
});

/** Reads the top-level fields of a protobuf message: field number → list of raw values. */
function protobufFields(buf: Buffer): Map<number, (Buffer | number)[]> {
  const out = new Map<number, (Buffer | number)[]>();
  let i = 0;
  const varint = (): number => {
    let n = 0;
    let mul = 1;
    for (;;) {
      const b = buf[i++]!;
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 128;
    }
  };
  while (i < buf.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    let value: Buffer | number;
    if (tag % 8 === 0) value = varint();
    else if (tag % 8 === 2) {
      const len = varint();
      value = buf.subarray(i, i + len);
      i += len;
    } else throw new Error(`unexpected wire type ${tag % 8}`);
    const list = out.get(field) ?? [];
    list.push(value);
    out.set(field, list);
  }
  return out;
}

describe("OpenAPI v2", () => {
  it("is a Swagger 2.0 JSON document with every path and definition", () => {
    const res = api.serve("/openapi/v2", new URLSearchParams(), "application/json");
    assert.equal(res?.status, 200);
    assert.equal(res?.contentType, "application/json");
    const doc = obj(JSON.parse(res!.body.toString()) as Json);
    assert.equal(doc["swagger"], "2.0");
    const defs = obj(doc["definitions"]);
    for (const r of refs(doc)) {
      assert.ok(r.startsWith("#/definitions/"), r);
      assert.ok(defs[r.slice("#/definitions/".length)], r);
    }
    const patch = obj(
      at(doc, "paths", "/apis/apps/v1/namespaces/{namespace}/deployments/{name}", "patch"),
    );
    assert.ok((patch["consumes"] as Json[]).includes("application/strategic-merge-patch+json"));
    assert.deepEqual(at(patch, "x-kubernetes-group-version-kind"), {
      group: "apps",
      kind: "Deployment",
      version: "v1",
    });
    const spec = obj(defs["io.k8s.api.apps.v1.DeploymentSpec"]);
    assert.equal(
      at(spec, "properties", "strategy", "$ref"),
      "#/definitions/io.k8s.api.apps.v1.DeploymentStrategy",
    );
    assert.deepEqual(
      obj(defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"])["format"],
      "int-or-string",
    );
    assert.deepEqual(
      obj(defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"])["type"],
      "string",
    );
    assert.deepEqual(obj(defs["io.k8s.apimachinery.pkg.api.resource.Quantity"])["type"], "string");
  });

  it("answers kubectl's protobuf Accept with gnostic's Document message", () => {
    const res = api.serve(
      "/openapi/v2",
      new URLSearchParams(),
      "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    );
    assert.equal(res?.status, 200);
    assert.equal(res?.contentType, "application/com.github.proto-openapi.spec.v2.v1.0+protobuf");
    const top = protobufFields(res!.body as Buffer);
    assert.equal((top.get(1)![0] as Buffer).toString(), "2.0");
    const json = obj(api.v2Document());
    const defs = protobufFields(top.get(9)![0] as Buffer).get(1)!;
    assert.equal(defs.length, Object.keys(obj(json["definitions"])).length);
    const paths = protobufFields(top.get(8)![0] as Buffer).get(2)!;
    assert.equal(paths.length, Object.keys(obj(json["paths"])).length);
    assert.equal(api.serve("/openapi/v2", new URLSearchParams(), "text/html")?.status, 406);
  });

  it("builds every document quickly", () => {
    const start = performance.now();
    const sizes = new OpenAPI().sizes();
    const ms = performance.now() - start;
    assert.ok(ms < 3000, `built in ${ms.toFixed(0)} ms`);
    assert.ok((sizes["apis/apps/v1"] ?? 0) > 100_000);
  });
});

// ---------------------------------------------------------------------------------------------
// End to end with the real kubectl, against a small HTTP server that serves /version, aggregated
// discovery from the resource catalogue, the OpenAPI documents, and echoes created objects.

const AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

function aggregatedDiscovery(core: boolean): Json {
  const items: Json[] = [];
  for (const g of groupsInOrder()) {
    if ((g.name === "") !== core) continue;
    items.push({
      metadata: g.name ? { name: g.name } : {},
      versions: g.versions.map((v) => ({
        version: v.version,
        freshness: "Current",
        resources: v.resources.map((r) => ({
          resource: r.resource,
          responseKind: { ...r.responseKind },
          scope: r.namespaced ? "Namespaced" : "Cluster",
          singularResource: r.singularName,
          verbs: [...r.verbs],
          shortNames: [...r.shortNames],
          subresources: r.subresources.map((s) => ({
            subresource: s.subresource,
            responseKind: { ...s.responseKind },
            verbs: [...s.verbs],
          })),
        })),
      })),
    });
  }
  return {
    kind: "APIGroupDiscoveryList",
    apiVersion: "apidiscovery.k8s.io/v2",
    metadata: {},
    items,
  };
}

interface Seen {
  method: string;
  url: string;
  accept: string;
}

/** Bodies of the PATCH requests the test server received. */
type Patches = string[];

async function withServer<T>(
  fn: (url: string, seen: Seen[], patches: Patches) => Promise<T>,
): Promise<T> {
  const openapi = new OpenAPI();
  const seen: Seen[] = [];
  const objects = new Map<string, string>();
  const patches: Patches = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const u = new URL(req.url ?? "/", "http://127.0.0.1");
      seen.push({ method: req.method ?? "", url: req.url ?? "", accept: req.headers.accept ?? "" });
      const send = (status: number, type: string, body: string | Buffer, headers = {}): void => {
        res.writeHead(status, { "content-type": type, ...headers });
        res.end(body);
      };
      if (u.pathname === "/version") {
        return send(
          200,
          "application/json",
          JSON.stringify({ major: "1", minor: "32", gitVersion: "v1.32.4" }),
        );
      }
      if (u.pathname === "/api" || u.pathname === "/apis") {
        return send(200, AGGREGATED, JSON.stringify(aggregatedDiscovery(u.pathname === "/api")));
      }
      const r = openapi.serve(
        u.pathname,
        u.searchParams,
        req.headers.accept ?? "",
        req.headers["if-none-match"],
      );
      if (r) {
        return send(r.status, r.contentType, r.body, {
          ...(r.etag ? { ETag: r.etag } : {}),
          ...(r.headers ?? {}),
        });
      }
      const body = Buffer.concat(chunks).toString();
      if (req.method === "POST") {
        // Keep created objects, so that `apply` finds them again and sends a patch.
        const created = JSON.parse(body) as { metadata?: { name?: string } };
        objects.set(`${u.pathname}/${created.metadata?.name ?? ""}`, body);
        return send(201, "application/json", body);
      }
      const stored = objects.get(u.pathname);
      if (stored !== undefined && (req.method === "GET" || req.method === "PATCH")) {
        if (req.method === "PATCH") patches.push(body);
        return send(200, "application/json", stored);
      }
      send(
        404,
        "application/json",
        JSON.stringify({
          kind: "Status",
          apiVersion: "v1",
          status: "Failure",
          reason: "NotFound",
          code: 404,
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  try {
    return await fn(`http://127.0.0.1:${port}`, seen, patches);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Runs kubectl without blocking the event loop (the server under test runs in this process). */
function runKubectl(
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("kubectl", args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill(), 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const haveKubectl = spawnSync("sh", ["-c", "command -v kubectl"]).status === 0;

describe("kubectl against the OpenAPI documents", { skip: !haveKubectl && "no kubectl" }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "k8ts-openapi-"));
  const file = (name: string, text: string): string => {
    const p = path.join(tmp, name);
    fs.writeFileSync(p, text);
    return p;
  };
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  let cacheDirs = 0;
  const kubectl = (server: string, ...args: string[]) =>
    runKubectl([
      `--server=${server}`,
      `--cache-dir=${path.join(tmp, `cache${cacheDirs++}`)}`,
      ...args,
    ]);

  it("explain deployment.spec.strategy prints the field tree", async () => {
    await withServer(async (server) => {
      const r = await kubectl(server, "explain", "deployment.spec.strategy");
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^GROUP:\s+apps$/m);
      assert.match(r.stdout, /^KIND:\s+Deployment$/m);
      assert.match(r.stdout, /^VERSION:\s+v1$/m);
      assert.match(r.stdout, /^FIELD: strategy <DeploymentStrategy>$/m);
      assert.match(r.stdout, /^DESCRIPTION:$/m);
      assert.match(r.stdout, /^FIELDS:$/m);
      assert.match(r.stdout, /^ {2}rollingUpdate\t<RollingUpdateDeployment>$/m);
      assert.match(r.stdout, /^ {2}type\t<string>$/m);
    });
  });

  it("explain --output=plaintext-openapiv2 reads the protobuf v2 document", async () => {
    await withServer(async (server, seen) => {
      const r = await kubectl(
        server,
        "explain",
        "--output=plaintext-openapiv2",
        "pods.spec.containers.ports",
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^RESOURCE: ports <\[\]Object>$/m);
      assert.match(r.stdout, /^ {3}containerPort\t<integer> -required-$/m);
      assert.ok(seen.some((s) => s.url.startsWith("/openapi/v2") && s.accept.includes("protobuf")));
    });
  });

  it("create -f validates on the server, request-only kinds included", async () => {
    await withServer(async (server, seen) => {
      const binding = file(
        "binding.yaml",
        "apiVersion: v1\nkind: Binding\nmetadata: {name: p1, namespace: default}\n" +
          "target: {apiVersion: v1, kind: Node, name: node1}\n",
      );
      const sar = file(
        "sar.yaml",
        "apiVersion: authorization.k8s.io/v1\nkind: SubjectAccessReview\n" +
          "spec: {user: alice, resourceAttributes: {verb: get, resource: pods}}\n",
      );
      for (const f of [binding, sar]) {
        const r = await kubectl(server, "create", "-f", f);
        assert.equal(r.code, 0, r.stderr);
      }
      const posts = seen.filter((s) => s.method === "POST").map((s) => s.url);
      assert.deepEqual(posts, [
        "/api/v1/namespaces/default/bindings?fieldManager=kubectl-create&fieldValidation=Strict",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews?fieldManager=kubectl-create&fieldValidation=Strict",
      ]);
      assert.ok(!seen.some((s) => s.url.startsWith("/openapi/v2")), "no fallback to /openapi/v2");
    });
  });

  it("create -f of a List validates it on the client against /openapi/v2", async () => {
    await withServer(async (server, seen) => {
      const list = file(
        "list.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n" +
          "  metadata: {name: cm1, namespace: default}\n  data: {a: b}\n",
      );
      const r = await kubectl(server, "create", "-f", list);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(
        seen.some(
          (s) => s.method === "POST" && s.url.startsWith("/api/v1/namespaces/default/configmaps"),
        ),
      );
      const bad = file(
        "bad.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n" +
          "  metadata: {name: cm2, namespace: default}\n  datax: {a: b}\n",
      );
      const rejected = await kubectl(server, "create", "-f", bad);
      assert.notEqual(rejected.code, 0);
      assert.match(rejected.stderr, /unknown field "datax"/);
    });
  });

  it("apply computes its strategic merge patch from the v3 schema", async () => {
    await withServer(async (server, seen, patches) => {
      const deployment = (containers: string): string =>
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: default}\n" +
        "spec:\n  selector: {matchLabels: {app: web}}\n  template:\n" +
        "    metadata: {labels: {app: web}}\n" +
        `    spec: {containers: [${containers}]}\n`;
      const first = file("d1.yaml", deployment("{name: web, image: nginx}"));
      const second = file(
        "d2.yaml",
        deployment("{name: side, image: busybox}, {name: web, image: nginx}"),
      );
      for (const f of [first, second]) {
        const r = await kubectl(server, "apply", "-f", f);
        assert.equal(r.code, 0, r.stderr);
        assert.doesNotMatch(r.stderr, /warning/);
      }
      // Had kubectl not found what it needs in the v3 document, it would try /openapi/v2 next.
      assert.ok(seen.some((s) => s.url.startsWith("/openapi/v3/apis/apps/v1?")));
      assert.ok(!seen.some((s) => s.url.startsWith("/openapi/v2")), "no fallback to /openapi/v2");
      assert.equal(patches.length, 1);
      const patch = JSON.parse(patches[0]!) as {
        spec: { template: { spec: Record<string, unknown> } };
      };
      assert.deepEqual(patch.spec.template.spec["$setElementOrder/containers"], [
        { name: "side" },
        { name: "web" },
      ]);
    });
  });
});
