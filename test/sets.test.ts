/**
 * DaemonSets and StatefulSets end to end: one `k8ts apiserver`, the daemonset and statefulset
 * controllers in process, real kubectl. Nodes are objects the test creates; the test plays the
 * scheduler (binding daemon pods through pods/binding to the node their affinity names) and the
 * kubelet (marking pods Running and Ready, finishing graceful deletions).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { after, before, test } from "node:test";
import type { ControllerRevision, StatefulSet } from "kubernetes-types/apps/v1.js";
import type { Event, PersistentVolumeClaim, Pod } from "kubernetes-types/core/v1.js";
import { loadKubeconfig } from "../src/client/config.js";
import { Client } from "../src/client/resources.js";
import { daemonSetDescriptor, targetNodeName } from "../src/controllers/daemonset.js";
import { statefulSetDescriptor } from "../src/controllers/statefulset.js";
import { tempDir } from "../src/testing/tmp.js";
import { TestAPIServer } from "./support/apiserver.js";
import { InProcessControllers } from "./support/controllers.js";
import { waitFor as waitForTruthy } from "./support/process.js";

const dir = tempDir("k8ts-sets-");
let server: TestAPIServer;
let kubeconfig = "";
let admin: Client;
const controllers = new InProcessControllers();

/**
 * Real kubectl, run without blocking this process: the controllers and the stand-in nodes run
 * in it and must keep working while kubectl waits (rollout status).
 */
function k(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      "kubectl",
      [`--kubeconfig=${kubeconfig}`, `--cache-dir=${path.join(dir.path, "kube-cache")}`, ...args],
      { stdio: ["pipe", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", reject);
    child.once("exit", (code) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`kubectl ${args.join(" ")} exited ${code}: ${stderr}`));
    });
    child.stdin.end(input ?? "");
  });
}

/** Waits for `check` to answer something truthy (30 s by default). */
function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 30_000) {
  return waitForTruthy(what, check, timeoutMs);
}

const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

async function markReady(ns: string, name: string): Promise<void> {
  await admin.resource("v1/Pod", ns).patch(
    name,
    "merge",
    {
      status: {
        phase: "Running",
        conditions: [{ type: "Ready", status: "True", lastTransitionTime: now() }],
      },
    },
    { subresource: "status" },
  );
}

/**
 * Stands in for the scheduler and the kubelets of `namespace`: binds unbound pods to the node of
 * their metadata.name affinity, makes bound pods Running and Ready, and finishes deletions.
 */
function fakeNodes(namespace: string): () => Promise<void> {
  let stopped = false;
  const pods = admin.resource("v1/Pod", namespace);
  const loop = (async () => {
    while (!stopped) {
      const list = await pods.list().catch(() => ({ items: [] as Pod[] }));
      await Promise.all(
        list.items.map(async (p) => {
          const name = p.metadata!.name!;
          if (p.metadata?.deletionTimestamp)
            return pods.delete(name, { gracePeriodSeconds: 0 }).catch(() => undefined);
          const node = targetNodeName(p);
          if (!p.spec?.nodeName && node) {
            return pods
              .subresource("POST", name, "binding", {
                apiVersion: "v1",
                kind: "Binding",
                metadata: { name },
                target: { kind: "Node", name: node },
              })
              .catch(() => undefined);
          }
          if (!p.status?.conditions?.some((c) => c.type === "Ready"))
            return markReady(namespace, name).catch(() => undefined);
        }),
      );
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}

before(async () => {
  server = new TestAPIServer(dir.path);
  await server.start();
  kubeconfig = server.writeKubeconfig(path.join(dir.path, "kubeconfig"));
  admin = new Client(loadKubeconfig({ kubeconfig }));
  controllers.start({
    config: loadKubeconfig({ kubeconfig }),
    controllers: [daemonSetDescriptor, statefulSetDescriptor],
  });
  // The API server taints new nodes not-ready (TaintNodesByCondition); the node lifecycle
  // controller would lift that once the node reports Ready. The test does it.
  const nodes = admin.resource("v1/Node");
  for (const [name, taints] of [
    ["node-a", null],
    ["node-b", null],
    ["node-c", null],
    ["node-t", [{ key: "dedicated", value: "db", effect: "NoSchedule" }]],
  ] as const) {
    await nodes.create({ metadata: { name } });
    await nodes.patch(name, "merge", { spec: { taints } });
  }
});

after(async () => {
  await controllers.stop();
  admin?.close();
  await server?.stop();
  dir.remove();
  const errors = controllers.errors();
  if (errors.length) process.stderr.write(`controller errors:\n${errors.join("\n")}\n`);
});

const DS = `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
  namespace: default
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - name: agent
        image: agent:1
`;

async function dsPods(): Promise<Pod[]> {
  const list = await admin.resource("v1/Pod", "default").list({ labelSelector: "app=agent" });
  return list.items.filter((p) => !p.metadata?.deletionTimestamp);
}

async function dsRevisions(): Promise<ControllerRevision[]> {
  const list = await admin
    .resource("apps/v1/ControllerRevision", "default")
    .list({ labelSelector: "app=agent" });
  return list.items.sort((a, b) => a.revision - b.revision);
}

test("a DaemonSet puts one pod on each node but the tainted one, rolls out, updates and undoes", async () => {
  const stopNodes = fakeNodes("default");
  try {
    await k(["apply", "-f", "-"], DS);
    const pods = await waitFor("a daemon pod on each of three nodes", async () => {
      const ps = await dsPods();
      return ps.length === 3 ? ps : undefined;
    });
    assert.deepEqual(pods.map(targetNodeName).sort(), ["node-a", "node-b", "node-c"]);
    const [rev1] = await dsRevisions();
    assert.ok(rev1);
    const hash = rev1.metadata?.labels?.["controller-revision-hash"];
    assert.equal(rev1.metadata?.name, `agent-${hash}`);
    assert.equal(rev1.revision, 1);
    for (const p of pods) {
      assert.equal(p.metadata?.generateName, "agent-");
      assert.equal(p.metadata?.labels?.["controller-revision-hash"], hash);
      assert.equal(p.metadata?.ownerReferences?.[0]?.kind, "DaemonSet");
      assert.ok(
        p.spec?.tolerations?.some(
          (t) => t.key === "node.kubernetes.io/unschedulable" && t.effect === "NoSchedule",
        ),
      );
    }

    const out = await k(["rollout", "status", "daemonset/agent", "--timeout=30s"]);
    assert.match(out, /daemon set "agent" successfully rolled out/);
    const ds = await admin.resource("apps/v1/DaemonSet", "default").get("agent");
    assert.deepEqual(
      {
        desiredNumberScheduled: ds.status?.desiredNumberScheduled,
        currentNumberScheduled: ds.status?.currentNumberScheduled,
        numberReady: ds.status?.numberReady,
        updatedNumberScheduled: ds.status?.updatedNumberScheduled,
        numberAvailable: ds.status?.numberAvailable,
        numberMisscheduled: ds.status?.numberMisscheduled,
        observedGeneration: ds.status?.observedGeneration,
      },
      {
        desiredNumberScheduled: 3,
        currentNumberScheduled: 3,
        numberReady: 3,
        updatedNumberScheduled: 3,
        numberAvailable: 3,
        numberMisscheduled: 0,
        observedGeneration: 1,
      },
    );
    assert.match(await k(["get", "ds", "agent"]), /^agent\s+3\s+3\s+3\s+3\s+3\s+<none>\s+\S+$/m);

    await k(["set", "image", "daemonset/agent", "agent=agent:2"]);
    const out2 = await k(["rollout", "status", "daemonset/agent", "--timeout=45s"]);
    assert.match(out2, /daemon set "agent" successfully rolled out/);
    const updated = await dsPods();
    assert.equal(updated.length, 3);
    for (const p of updated) assert.equal(p.spec?.containers[0]?.image, "agent:2");
    assert.deepEqual(
      (await dsRevisions()).map((r) => r.revision),
      [1, 2],
    );
    assert.match(
      await k(["rollout", "history", "daemonset/agent"]),
      /REVISION\s+CHANGE-CAUSE\n1\s+<none>\n2\s+<none>/,
    );
    assert.match(
      await k(["rollout", "history", "daemonset/agent", "--revision=1"]),
      /Image:\s+agent:1/,
    );

    assert.match(
      await k(["rollout", "undo", "daemonset/agent"]),
      /daemonset\.apps\/agent rolled back/,
    );
    await waitFor("the pods back at agent:1", async () => {
      const ps = await dsPods();
      return ps.length === 3 && ps.every((p) => p.spec?.containers[0]?.image === "agent:1");
    });
    await k(["rollout", "status", "daemonset/agent", "--timeout=45s"]);
    // The undone revision is renumbered, not copied.
    const revs = await dsRevisions();
    assert.deepEqual(
      revs.map((r) => [r.metadata?.name, r.revision]),
      [
        [revs[0]!.metadata?.name, 2],
        [rev1.metadata?.name, 3],
      ],
    );
    const events = (
      await admin.resource("v1/Event", "default").list({
        fieldSelector: "involvedObject.kind=DaemonSet,involvedObject.name=agent",
      })
    ).items as Event[];
    assert.ok(
      events.some(
        (e) => e.reason === "SuccessfulCreate" && /^Created pod: agent-/.test(e.message ?? ""),
      ),
    );
    assert.ok(
      events.some(
        (e) => e.reason === "SuccessfulDelete" && /^Deleted pod: agent-/.test(e.message ?? ""),
      ),
    );
  } finally {
    await stopNodes();
  }
});

const STS = `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
  namespace: default
spec:
  serviceName: nginx
  replicas: 3
  selector:
    matchLabels: {app: nginx}
  template:
    metadata:
      labels: {app: nginx}
    spec:
      containers:
      - name: nginx
        image: nginx:1
  volumeClaimTemplates:
  - metadata:
      name: www
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 1Gi
`;

async function stsPod(name: string): Promise<Pod | undefined> {
  return admin
    .resource("v1/Pod", "default")
    .get(name)
    .catch(() => undefined);
}

test("a StatefulSet creates web-0, web-1, web-2 in order with their claims, and scales down from the top", async () => {
  await k(["apply", "-f", "-"], STS);
  const web0 = await waitFor("web-0", () => stsPod("web-0"));
  assert.equal(web0.spec?.hostname, "web-0");
  assert.equal(web0.spec?.subdomain, "nginx");
  assert.equal(web0.metadata?.labels?.["statefulset.kubernetes.io/pod-name"], "web-0");
  assert.equal(web0.metadata?.labels?.["apps.kubernetes.io/pod-index"], "0");
  assert.deepEqual(web0.spec?.volumes?.[0], {
    name: "www",
    persistentVolumeClaim: { claimName: "www-web-0" },
  });
  const claim = await admin.resource("v1/PersistentVolumeClaim", "default").get("www-web-0");
  assert.equal((claim as PersistentVolumeClaim).status?.phase, "Pending");
  assert.deepEqual(claim.metadata?.labels, { app: "nginx" });

  for (const [ready, next, after] of [
    ["web-0", "web-1", "web-2"],
    ["web-1", "web-2", undefined],
  ] as const) {
    // The next pod waits for this one to be Ready.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await stsPod(next), undefined, `${next} before ${ready} is Ready`);
    await markReady("default", ready);
    await waitFor(next, () => stsPod(next));
    if (after) assert.equal(await stsPod(after), undefined);
  }
  await markReady("default", "web-2");
  for (const n of [0, 1, 2])
    await admin.resource("v1/PersistentVolumeClaim", "default").get(`www-web-${n}`);

  const set = await waitFor("the set's status", async () => {
    const s = await admin.resource("apps/v1/StatefulSet", "default").get("web");
    return s.status?.readyReplicas === 3 ? s : undefined;
  });
  const status = (set as StatefulSet).status!;
  assert.equal(status.replicas, 3);
  assert.equal(status.currentReplicas, 3);
  assert.equal(status.updatedReplicas, 3);
  assert.equal(status.availableReplicas, 3);
  assert.equal(status.collisionCount, 0);
  assert.equal(status.observedGeneration, 1);
  assert.match(status.currentRevision ?? "", /^web-[bcdfghjklmnpqrstvwxz2456789]+$/);
  assert.equal(status.updateRevision, status.currentRevision);
  for (const n of [0, 1, 2])
    assert.equal(
      (await stsPod(`web-${n}`))?.metadata?.labels?.["controller-revision-hash"],
      status.currentRevision,
    );

  assert.match(await k(["get", "sts"]), /^NAME\s+READY\s+AGE\nweb\s+3\/3\s+\d+s\n$/);
  assert.equal(
    await k(["rollout", "history", "statefulset/web"]),
    "statefulset.apps/web \nREVISION  CHANGE-CAUSE\n1         <none>\n\n",
  );
  // kubectl's words for a RollingUpdate with the defaulted partition 0.
  assert.equal(
    await k(["rollout", "status", "statefulset/web", "--timeout=10s"]),
    "partitioned roll out complete: 3 new pods have been updated...\n",
  );
  const events = (
    await admin.resource("v1/Event", "default").list({
      fieldSelector: "involvedObject.kind=StatefulSet,involvedObject.name=web",
    })
  ).items;
  const messages = events.map((e) => `${e.reason}: ${e.message}`);
  assert.ok(messages.includes("SuccessfulCreate: create Pod web-0 in StatefulSet web successful"));
  assert.ok(
    messages.includes(
      "SuccessfulCreate: create Claim www-web-0 Pod web-0 in StatefulSet web success",
    ),
  );

  await k(["scale", "statefulset/web", "--replicas=2"]);
  await waitFor("web-2 gone", async () => (await stsPod("web-2")) === undefined);
  assert.ok(await stsPod("web-1"), "web-1 stays");
  await k(["scale", "statefulset/web", "--replicas=1"]);
  await waitFor("web-1 gone", async () => (await stsPod("web-1")) === undefined);
  assert.ok(await stsPod("web-0"));
  // whenScaled: Retain keeps the claims.
  await admin.resource("v1/PersistentVolumeClaim", "default").get("www-web-2");
  const deleted = (
    await admin.resource("v1/Event", "default").list({
      fieldSelector: "involvedObject.kind=StatefulSet,involvedObject.name=web",
    })
  ).items
    .filter((e) => e.reason === "SuccessfulDelete")
    .map((e) => e.message)
    .sort();
  assert.deepEqual(deleted, [
    "delete Pod web-1 in StatefulSet web successful",
    "delete Pod web-2 in StatefulSet web successful",
  ]);
});

test("a StatefulSet rolls pods to a new template from the highest ordinal, and kubectl undoes it", async () => {
  const stopNodes = fakeNodes("default");
  try {
    await k(["scale", "statefulset/web", "--replicas=3"]);
    await waitFor("three ready pods", async () => {
      const s = await admin.resource("apps/v1/StatefulSet", "default").get("web");
      return s.status?.readyReplicas === 3;
    });
    const before = (await admin.resource("apps/v1/StatefulSet", "default").get("web")).status!;
    await k(["set", "image", "statefulset/web", "nginx=nginx:2"]);
    assert.match(
      await k(["rollout", "status", "statefulset/web", "--timeout=45s"]),
      /partitioned roll out complete: 3 new pods have been updated\.\.\.\n$/,
    );
    const after = (await admin.resource("apps/v1/StatefulSet", "default").get("web")).status!;
    assert.notEqual(after.currentRevision, before.currentRevision);
    for (const n of [0, 1, 2])
      assert.equal((await stsPod(`web-${n}`))?.spec?.containers[0]?.image, "nginx:2");
    assert.match(
      await k(["rollout", "history", "statefulset/web"]),
      /REVISION\s+CHANGE-CAUSE\n1\s+<none>\n2\s+<none>\n/,
    );
    assert.match(
      await k(["rollout", "undo", "statefulset/web"]),
      /statefulset\.apps\/web rolled back/,
    );
    await k(["rollout", "status", "statefulset/web", "--timeout=45s"]);
    for (const n of [0, 1, 2])
      assert.equal((await stsPod(`web-${n}`))?.spec?.containers[0]?.image, "nginx:1");
    const final = (await admin.resource("apps/v1/StatefulSet", "default").get("web")).status!;
    assert.equal(final.currentRevision, before.currentRevision);
  } finally {
    await stopNodes();
  }
});
