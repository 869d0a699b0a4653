/** The audit log: audit.k8s.io/v1 Events as JSON lines, by policy level, with rotation. */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import https from "node:https";
import path from "node:path";
import { tempDir } from "../src/testing/tmp.js";
import { kubectl, TestAPIServer } from "./support/apiserver.js";

const POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/version", "/api*", "/openapi*"]
- level: RequestResponse
  resources:
  - group: ""
    resources: ["configmaps"]
- level: Metadata
`;

/** A request on a connection of its own (no keep-alive socket left idle since an earlier test). */
function send(
  server: TestAPIServer,
  method: string,
  urlPath: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        port: server.securePort,
        method,
        path: urlPath,
        agent: false,
        ca: fs.readFileSync(server.caFile),
        headers: { "content-type": "application/json", ...headers },
      },
      (res) => {
        let data = "";
        res.on("data", (c: Buffer) => (data += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: data }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

interface AuditEvent {
  level: string;
  stage: string;
  verb: string;
  requestURI: string;
  auditID: string;
  objectRef?: { resource: string; namespace?: string; name?: string; apiVersion: string };
  user: { username?: string; groups?: string[] };
  responseStatus?: { metadata?: object; code: number; reason?: string; message?: string };
  requestObject?: { data?: Record<string, string> };
  responseObject?: { metadata?: { name?: string; resourceVersion?: string } };
  annotations?: Record<string, string>;
  requestReceivedTimestamp: string;
  stageTimestamp: string;
}

describe("audit log", () => {
  const dir = tempDir("k8ts-audit-");
  const logFile = path.join(dir.path, "audit", "audit.log");
  let server: TestAPIServer;
  let kubeconfig: string;
  const k = (args: string[]) => kubectl(kubeconfig, path.join(dir.path, "cache"), args);
  const events = (): AuditEvent[] =>
    fs
      .readFileSync(logFile, "utf8")
      .split("\n")
      .filter((l) => l)
      .map((l) => JSON.parse(l) as AuditEvent);

  before(async () => {
    fs.writeFileSync(path.join(dir.path, "policy.yaml"), POLICY);
    // A token authenticator (with the token of the test kubeconfig), so that a token nobody
    // accepts is refused rather than taken as anonymous.
    fs.writeFileSync(
      path.join(dir.path, "tokens.csv"),
      'not-checked-yet,admin,1001,"system:masters"\n',
    );
    server = new TestAPIServer(dir.path, [
      `--token-auth-file=${path.join(dir.path, "tokens.csv")}`,
      `--audit-policy-file=${path.join(dir.path, "policy.yaml")}`,
      `--audit-log-path=${logFile}`,
      "--audit-log-maxsize=1",
      "--audit-log-maxbackup=1",
    ]);
    await server.start();
    kubeconfig = server.writeKubeconfig(path.join(dir.path, "kubeconfig"));
  });

  after(async () => {
    await server?.stop();
    dir.remove();
  });

  test("events follow the policy's levels and stages", async () => {
    assert.equal(k(["create", "configmap", "audited", "--from-literal=k=v"]).code, 0);
    assert.equal(k(["get", "pods"]).code, 0);
    assert.equal(k(["get", "configmap", "missing"]).code, 1);
    await new Promise((r) => setTimeout(r, 100));
    const all = events();
    assert.equal(
      all.filter((e) => e.stage === "RequestReceived").length,
      0,
      "RequestReceived is omitted",
    );
    assert.equal(all.filter((e) => /readyz|version/.test(e.requestURI)).length, 0);
    const create = all.find((e) => e.verb === "create" && e.objectRef?.resource === "configmaps")!;
    assert.equal(create.level, "RequestResponse");
    assert.equal(create.stage, "ResponseComplete");
    assert.equal(create.responseStatus?.code, 201);
    assert.deepEqual(create.requestObject?.data, { k: "v" });
    assert.equal(create.responseObject?.metadata?.name, "audited");
    assert.deepEqual(create.objectRef, {
      resource: "configmaps",
      namespace: "default",
      name: "audited",
      apiVersion: "v1",
    });
    assert.equal(create.annotations?.["authorization.k8s.io/decision"], "allow");
    assert.match(create.stageTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    const list = all.find((e) => e.verb === "list" && e.objectRef?.resource === "pods")!;
    assert.equal(list.level, "Metadata");
    assert.equal(list.responseObject, undefined);
    const missing = all.find((e) => e.verb === "get" && e.objectRef?.name === "missing")!;
    assert.equal(missing.responseStatus?.code, 404);
    assert.equal(missing.responseStatus?.reason, "NotFound");
  });

  test("a request with refused credentials is audited once, without a user, with what it tried", async () => {
    const r = await send(server, "GET", "/api/v1/namespaces/default/secrets", undefined, {
      authorization: "Bearer not-a-token",
    });
    assert.equal(r.status, 401);
    await new Promise((r) => setTimeout(r, 100));
    const failed = events().filter((e) => e.responseStatus?.code === 401);
    assert.equal(failed.length, 1, JSON.stringify(failed));
    const e = failed[0]!;
    assert.equal(e.stage, "ResponseStarted");
    assert.equal(e.verb, "list");
    assert.deepEqual(e.user, {});
    assert.deepEqual(e.objectRef, { resource: "secrets", namespace: "default", apiVersion: "v1" });
    assert.deepEqual(e.responseStatus, {
      metadata: {},
      message: "Authentication failed, attempted: bearer",
      code: 401,
    });
  });

  test("the log rotates past --audit-log-maxsize and keeps --audit-log-maxbackup files", async () => {
    const big = "x".repeat(400 * 1024);
    for (let i = 0; i < 8; i++) {
      const r = await send(
        server,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        JSON.stringify({
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: `big-${i}` },
          data: { big },
        }),
      );
      assert.equal(r.status, 201, r.body);
    }
    await new Promise((r) => setTimeout(r, 100));
    const files = fs.readdirSync(path.dirname(logFile)).sort();
    assert.equal(files.length, 2, `one backup and the current file: ${files.join(" ")}`);
    assert.match(files[0]!, /^audit-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}\.log$/);
    assert.ok(fs.statSync(logFile).size <= 1024 * 1024);
  });
});
