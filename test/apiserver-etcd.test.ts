/** `k8ts apiserver --etcd-servers` on a real etcd: state lives in etcd and survives restarts. */
import path from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { tempDir } from "../src/testing/tmp.js";
import { startEtcd, type EtcdServer } from "../src/testing/etcd.js";
import { kubectl, TestAPIServer } from "./support/apiserver.js";

const dir = tempDir("k8ts-apiserver-etcd-");
let etcd: EtcdServer;
let server: TestAPIServer;
let kubeconfig = "";
let n = 0;
const ok = (...args: string[]) => {
  const r = kubectl(kubeconfig, path.join(dir.path, `cache-${n++}`), args);
  assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
};

before(async () => {
  etcd = await startEtcd();
  server = new TestAPIServer(dir.path, [`--etcd-servers=${etcd.endpoints.join(",")}`]);
  await server.start();
  kubeconfig = server.writeKubeconfig(path.join(dir.path, "kubeconfig"));
});

after(async () => {
  await server?.stop();
  await etcd?.stop();
  dir.remove();
});

test("objects are kept in etcd under /registry, survive a restart, and a resumed watch sees no gap", async () => {
  ok("create", "deployment", "web", "--image=nginx");
  ok("create", "configmap", "cfg", "--from-literal=a=b");
  const cm = JSON.parse(ok("get", "configmap", "cfg", "-o", "json")) as {
    metadata: { uid: string; resourceVersion: string };
  };
  await server.stop();
  await server.start();
  const again = JSON.parse(ok("get", "configmap", "cfg", "-o", "json")) as {
    metadata: { uid: string; resourceVersion: string };
  };
  assert.equal(again.metadata.uid, cm.metadata.uid);
  assert.equal(again.metadata.resourceVersion, cm.metadata.resourceVersion);
  assert.match(ok("get", "deployments"), /^web\s+0\/1\s+/m);
  ok("create", "configmap", "after-restart");
  const r = await server.request(
    "GET",
    `/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${cm.metadata.resourceVersion}&timeoutSeconds=1`,
  );
  const names = r.body
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { type: string; object: { metadata: { name: string } } })
    .map((e) => `${e.type} ${e.object.metadata.name}`);
  assert.ok(names.includes("ADDED after-restart"), names.join(", "));
  // The layout upstream uses in etcd.
  const { EtcdStore } = await import("../src/storage/etcd/etcd.js");
  const store = await EtcdStore.open({ endpoints: etcd.endpoints });
  try {
    const kv = await store.get("/registry/configmaps/default/cfg");
    assert.ok(kv.kv, "configmaps live under /registry/configmaps/<namespace>/<name>");
    assert.ok((await store.get("/registry/deployments/default/web")).kv);
    assert.ok((await store.get("/registry/services/specs/default/kubernetes")).kv);
  } finally {
    await store.close();
  }
});
