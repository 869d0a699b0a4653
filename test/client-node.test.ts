/** `k8ts apiserver` through @kubernetes/client-node: typed calls, patches and an informer. */
import path from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import { tempDir } from "../src/testing/tmp.js";
import { TestAPIServer } from "./support/apiserver.js";
import { waitFor } from "../src/storage/conformance.js";

const dir = tempDir("k8ts-client-node-");
const server = new TestAPIServer(dir.path);
const kc = new k8s.KubeConfig();
let core: k8s.CoreV1Api;
let apps: k8s.AppsV1Api;

before(async () => {
  await server.start();
  kc.loadFromFile(server.writeKubeconfig(path.join(dir.path, "kubeconfig")));
  core = kc.makeApiClient(k8s.CoreV1Api);
  apps = kc.makeApiClient(k8s.AppsV1Api);
});

after(async () => {
  await server.stop();
  dir.remove();
});

test("create, get, list, patch and delete through typed clients", async () => {
  const created = await core.createNamespacedConfigMap({
    namespace: "default",
    body: { metadata: { name: "c1", labels: { app: "x" } }, data: { a: "1" } },
  });
  assert.equal(created.metadata?.name, "c1");
  assert.ok(created.metadata?.uid);
  const list = await core.listNamespacedConfigMap({ namespace: "default", labelSelector: "app=x" });
  assert.deepEqual(
    list.items.map((c) => c.metadata?.name),
    ["c1"],
  );
  assert.ok(Number(list.metadata?.resourceVersion) > 0);

  const merged = await core.patchNamespacedConfigMap(
    { name: "c1", namespace: "default", body: { data: { b: "2" } } },
    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
  );
  assert.deepEqual(merged.data, { a: "1", b: "2" });
  const jsonPatched = await core.patchNamespacedConfigMap(
    { name: "c1", namespace: "default", body: [{ op: "remove", path: "/data/a" }] },
    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch),
  );
  assert.deepEqual(jsonPatched.data, { b: "2" });

  const d = await apps.createNamespacedDeployment({
    namespace: "default",
    body: {
      metadata: { name: "web" },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: "web" } },
        template: {
          metadata: { labels: { app: "web" } },
          spec: {
            containers: [{ name: "nginx", image: "nginx:1", ports: [{ containerPort: 80 }] }],
          },
        },
      },
    },
  });
  assert.equal(d.metadata?.generation, 1);
  const smp = await apps.patchNamespacedDeployment(
    {
      name: "web",
      namespace: "default",
      body: {
        spec: {
          template: {
            spec: {
              containers: [{ name: "nginx", image: "nginx:2", ports: [{ containerPort: 443 }] }],
            },
          },
        },
      },
    },
    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch),
  );
  const c = smp.spec!.template.spec!.containers[0]!;
  assert.equal(c.image, "nginx:2");
  assert.deepEqual(
    c.ports?.map((p) => p.containerPort),
    [80, 443],
    "containers merge by name and ports by containerPort",
  );
  assert.equal(smp.metadata?.generation, 2);

  await core.deleteNamespacedConfigMap({ name: "c1", namespace: "default" });
  await assert.rejects(
    core.readNamespacedConfigMap({ name: "c1", namespace: "default" }),
    (err: unknown) => {
      return (err as { code?: number }).code === 404;
    },
  );
});

test("an informer lists, then sees adds, updates and deletes", async () => {
  const seen: string[] = [];
  const informer = k8s.makeInformer(kc, "/api/v1/namespaces/default/secrets", () =>
    core.listNamespacedSecret({ namespace: "default" }),
  );
  informer.on("add", (s) => seen.push(`add ${s.metadata?.name}`));
  informer.on("update", (s) => seen.push(`update ${s.metadata?.name}`));
  informer.on("delete", (s) => seen.push(`delete ${s.metadata?.name}`));
  await core.createNamespacedSecret({
    namespace: "default",
    body: { metadata: { name: "before" }, stringData: { k: "v" } },
  });
  await informer.start();
  try {
    await waitFor("initial add", () => (seen.includes("add before") ? true : undefined));
    await core.createNamespacedSecret({
      namespace: "default",
      body: { metadata: { name: "s1" }, data: { k: "dg==" } },
    });
    await core.patchNamespacedSecret(
      { name: "s1", namespace: "default", body: { metadata: { labels: { x: "y" } } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    await core.deleteNamespacedSecret({ name: "s1", namespace: "default" });
    await waitFor("delete s1", () => (seen.includes("delete s1") ? true : undefined));
    assert.deepEqual(
      seen.filter((e) => e.endsWith("s1")),
      ["add s1", "update s1", "delete s1"],
    );
    assert.equal(informer.list("default").length, 1);
  } finally {
    await informer.stop();
  }
});
