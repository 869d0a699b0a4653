/**
 * The node lifecycle, taint eviction and node IPAM controllers end to end: one `k8ts apiserver`
 * with the PKI of `k8ts certs`, Node,RBAC authorization and service account tokens; the three
 * controllers in process with --use-service-account-credentials (so they act as
 * kube-system/node-controller under the bootstrap RBAC policy), a 4 s grace period and
 * --allocate-node-cidrs from a /23 (two /24s); nodes from `k8ts sim` child processes, and real
 * kubectl:
 *
 * - new nodes get a podCIDR each from --cluster-cidr, and lose the not-ready:NoSchedule taint
 *   the API server gave them once they are Ready;
 * - a node whose sim is killed goes Ready=Unknown with the unreachable taints (NoSchedule and
 *   NoExecute), its pods Ready=False; a pod tolerating unreachable for 2 s is deleted after
 *   about 2 s with the DisruptionTarget condition, a pod tolerating it forever stays;
 * - the node's sim started again: Ready, untainted, same podCIDR;
 * - a node beyond the range gets CIDRNotAvailable, and the subnet of a deleted node once free.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { after, before, test } from "node:test";
import type { Event, Node, Pod, Taint } from "kubernetes-types/core/v1.js";
import { loadKubeconfig } from "../src/client/config.js";
import { SharedInformers } from "../src/client/informer.js";
import { Client } from "../src/client/resources.js";
import { nodeIpamDescriptor } from "../src/controllers/nodeipam.js";
import { newNodeLifecycleDescriptor } from "../src/controllers/nodelifecycle.js";
import { taintEvictionDescriptor } from "../src/controllers/tainteviction.js";
import { tempDir } from "../src/testing/tmp.js";
import { k8tsBin, kubectl, TestAPIServer } from "./support/apiserver.js";
import { InProcessControllers } from "./support/controllers.js";
import { K8tsProcess, waitFor as waitForTruthy } from "./support/process.js";

const dir = tempDir("k8ts-node-lifecycle-");
const pki = path.join(dir.path, "pki");
const adminConf = path.join(dir.path, "admin.conf");
let server: TestAPIServer;
let admin: Client;
const procs: K8tsProcess[] = [];
const controllers = new InProcessControllers();
const watcher = new AbortController();
/** Every taint each node was seen with, from a watch opened before the nodes registered. */
const taintsSeen = new Map<string, Set<string>>();

/** A test that prints the controllers' log when it fails. */
function logged(fn: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await fn();
    } catch (err) {
      controllers.print();
      throw err;
    }
  };
}

function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 40_000) {
  return waitForTruthy(what, check, timeoutMs);
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
}

function k(args: string[], input?: string): string {
  const r = kubectl(adminConf, path.join(dir.path, "kube-cache"), args, input ? { input } : {});
  assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

function startSim(prefix: string, nodeIPs: string): K8tsProcess {
  return new K8tsProcess(
    [
      "sim",
      `--kubeconfig=${adminConf}`,
      "--nodes=1",
      `--node-name-prefix=${prefix}`,
      `--node-ip-cidr=${nodeIPs}`,
      "--heartbeat-interval=1s",
      "--remove-not-ready-taint=false",
    ],
    procs,
    40_000,
  );
}

const taintText = (t: Taint) => `${t.key}${t.value ? `=${t.value}` : ""}:${t.effect}`;

async function node(name: string): Promise<Node> {
  return admin.resource("v1/Node").get(name);
}

function ready(n: Node) {
  return n.status?.conditions?.find((c) => c.type === "Ready");
}

function events(involved: string, reason: string, ns = "default"): Event[] {
  const out = k([
    "get",
    "events",
    "-n",
    ns,
    "--field-selector",
    `involvedObject.name=${involved},reason=${reason}`,
    "-o",
    "json",
  ]);
  return (JSON.parse(out) as { items: Event[] }).items;
}

function boundPod(name: string, nodeName: string, tolerationSeconds?: number): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: {
      nodeName,
      containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }],
      tolerations: [
        {
          key: "node.kubernetes.io/unreachable",
          operator: "Exists",
          effect: "NoExecute",
          ...(tolerationSeconds === undefined ? {} : { tolerationSeconds }),
        },
      ],
    },
  });
}

let alive: K8tsProcess;
let doomed: K8tsProcess;

before(async () => {
  run(k8tsBin, [
    "certs",
    `--cert-dir=${pki}`,
    "--apiserver-advertise-address=127.0.0.1",
    "--node-name=node-a",
    "--node-ip=127.0.0.1",
  ]);
  server = new TestAPIServer(
    dir.path,
    [
      `--tls-cert-file=${path.join(pki, "apiserver.crt")}`,
      `--tls-private-key-file=${path.join(pki, "apiserver.key")}`,
      `--client-ca-file=${path.join(pki, "ca.crt")}`,
      `--service-account-key-file=${path.join(pki, "sa.pub")}`,
      `--service-account-signing-key-file=${path.join(pki, "sa.key")}`,
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      "--authorization-mode=Node,RBAC",
    ],
    path.join(pki, "ca.crt"),
  );
  await server.start();
  run(k8tsBin, [
    "kubeconfig",
    `--cert-dir=${pki}`,
    `--kubeconfig-dir=${dir.path}`,
    `--server=${server.url}`,
  ]);
  const config = loadKubeconfig({ kubeconfig: adminConf });
  admin = new Client(config);

  const informers = new SharedInformers(admin);
  const record = (n: Node) => {
    const name = n.metadata?.name ?? "";
    const seen = taintsSeen.get(name) ?? new Set<string>();
    for (const t of n.spec?.taints ?? []) seen.add(taintText(t));
    taintsSeen.set(name, seen);
  };
  informers.informer("v1/Node").addEventHandler({ add: record, update: (_, n) => record(n) });
  void informers.start(watcher.signal);
  await informers.waitForCacheSync(watcher.signal);

  controllers.start({
    config,
    controllers: [
      nodeIpamDescriptor,
      newNodeLifecycleDescriptor({ nodeMonitorPeriod: 1000 }),
      taintEvictionDescriptor,
    ],
    options: {
      nodeMonitorGracePeriod: 4000,
      allocateNodeCIDRs: true,
      clusterCIDR: "10.244.0.0/23",
      serviceClusterIPRange: "10.96.0.0/12",
    },
    useServiceAccountCredentials: true,
  });
  alive = startSim("alive-", "10.250.1.0/24");
  doomed = startSim("doomed-", "10.250.2.0/24");
  await alive.waitForLog(/Registered 1 node\(s\)/);
  await doomed.waitForLog(/Registered 1 node\(s\)/);
});

after(async () => {
  for (const p of procs) await p.stop("SIGKILL").catch(() => undefined);
  await controllers.stop().catch(() => undefined);
  watcher.abort();
  admin?.close();
  await server?.stop();
  dir.remove();
});

test(
  "new nodes get a podCIDR from --cluster-cidr and lose the registration taint once Ready",
  logged(async () => {
    const nodes = await waitFor("both nodes Ready, untainted, with a podCIDR", async () => {
      const list = await Promise.all([node("alive-0"), node("doomed-0")]);
      return list.every(
        (n) => ready(n)?.status === "True" && !n.spec?.taints?.length && n.spec?.podCIDR,
      )
        ? list
        : undefined;
    });
    const cidrs = nodes.map((n) => n.spec?.podCIDR).sort();
    assert.deepEqual(cidrs, ["10.244.0.0/24", "10.244.1.0/24"]);
    for (const n of nodes) assert.deepEqual(n.spec?.podCIDRs, [n.spec?.podCIDR]);
    // The API server registered them tainted; the controller, not the sim, lifted it.
    for (const name of ["alive-0", "doomed-0"])
      assert.ok(taintsSeen.get(name)?.has("node.kubernetes.io/not-ready:NoSchedule"), name);

    const out = k(["get", "nodes", "-o", "custom-columns=NAME:.metadata.name,CIDR:.spec.podCIDR"]);
    assert.match(out, /alive-0\s+10\.244\.[01]\.0\/24/);
    assert.match(out, /doomed-0\s+10\.244\.[01]\.0\/24/);
    const registered = await waitFor(
      "RegisteredNode",
      () => events("doomed-0", "RegisteredNode")[0],
    );
    assert.equal(registered.message, "Node doomed-0 event: Registered Node doomed-0 in Controller");
    assert.equal(registered.source?.component, "node-controller");
  }),
);

test(
  "a node that stops heartbeating goes Unknown and tainted; its pods go by their tolerations",
  logged(async () => {
    k(["apply", "-f", "-"], boundPod("short", "doomed-0", 2));
    k(["apply", "-f", "-"], boundPod("forever", "doomed-0"));
    k(["apply", "-f", "-"], boundPod("elsewhere", "alive-0", 2));
    const pods = admin.resource("v1/Pod", "default");
    const isReady = (p: Pod) =>
      p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
    await waitFor("the pods running", async () =>
      (await Promise.all(["short", "forever", "elsewhere"].map((n) => pods.get(n)))).every(isReady),
    );

    await doomed.stop("SIGKILL");
    const unknown = await waitFor("doomed-0 Ready=Unknown", async () => {
      const n = await node("doomed-0");
      return ready(n)?.status === "Unknown" ? n : undefined;
    });
    for (const type of ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"]) {
      const c = unknown.status?.conditions?.find((x) => x.type === type);
      assert.equal(c?.status, "Unknown", type);
      assert.equal(c?.reason, "NodeStatusUnknown");
      assert.equal(c?.message, "Kubelet stopped posting node status.");
    }
    const tainted = await waitFor("the unreachable taints", async () => {
      const n = await node("doomed-0");
      const t = (n.spec?.taints ?? []).map(taintText).sort();
      return t.join() ===
        "node.kubernetes.io/unreachable:NoExecute,node.kubernetes.io/unreachable:NoSchedule"
        ? n
        : undefined;
    });
    const taintSeenAt = Date.now();
    assert.ok(tainted.spec?.taints?.every((t) => t.timeAdded));

    // The pod tolerating unreachable for 2 s is deleted after about 2 s.
    const gone = await waitFor("short deleted", async () => {
      const p = await pods.get("short").catch(() => undefined);
      return !p || p.metadata?.deletionTimestamp ? { pod: p, at: Date.now() } : undefined;
    });
    const waited = gone.at - taintSeenAt;
    assert.ok(waited >= 1500, `deleted ${waited}ms after the taint, before its toleration ended`);
    assert.ok(waited < 15_000, `deleted only ${waited}ms after the taint`);
    const target = gone.pod?.status?.conditions?.find((c) => c.type === "DisruptionTarget");
    assert.equal(target?.status, "True");
    assert.equal(target?.reason, "DeletionByTaintManager");
    assert.equal(target?.message, "Taint manager: deleting due to NoExecute taint");
    const eviction = await waitFor("the eviction event", () =>
      events("short", "TaintManagerEviction").find((e) => e.message?.startsWith("Marking")),
    );
    assert.equal(eviction.message, "Marking for deletion Pod default/short");
    assert.equal(eviction.source?.component, "taint-eviction-controller");

    // The other pod of the node is marked not ready, with the node's event.
    const forever = await pods.get("forever");
    assert.equal(forever.metadata?.deletionTimestamp, undefined);
    assert.equal(forever.status?.conditions?.find((c) => c.type === "Ready")?.status, "False");
    const notReady = await waitFor(
      "NodeNotReady on the pod",
      () => events("forever", "NodeNotReady")[0],
    );
    assert.equal(notReady.type, "Warning");
    assert.equal(notReady.message, "Node is not ready");
    const nodeEvent = await waitFor(
      "NodeNotReady on the node",
      () => events("doomed-0", "NodeNotReady")[0],
    );
    assert.equal(nodeEvent.message, "Node doomed-0 status is now: NodeNotReady");

    // The healthy node and its pod are left alone.
    const a = await node("alive-0");
    assert.equal(ready(a)?.status, "True");
    assert.equal(a.spec?.taints, undefined);
    assert.ok(isReady(await pods.get("elsewhere")));

    // Well past the 2 s (and any scheduling slack), the pod tolerating forever is still there.
    await new Promise((r) => setTimeout(r, 3000));
    const still = await pods.get("forever");
    assert.equal(still.metadata?.deletionTimestamp, undefined);
    assert.equal(events("forever", "TaintManagerEviction").length, 0);
    const out = k(["get", "node", "doomed-0"]);
    assert.match(out, /doomed-0\s+NotReady/);
  }),
);

test(
  "the node back: Ready again, untainted, its podCIDR kept, its deleted pod finished",
  logged(async () => {
    const before = (await node("doomed-0")).spec?.podCIDR;
    doomed = startSim("doomed-", "10.250.2.0/24");
    const n = await waitFor("doomed-0 Ready without taints", async () => {
      const x = await node("doomed-0");
      return ready(x)?.status === "True" && !x.spec?.taints?.length ? x : undefined;
    });
    assert.equal(n.spec?.podCIDR, before);
    const pods = admin.resource("v1/Pod", "default");
    await waitFor("short gone", async () => !(await pods.get("short").catch(() => undefined)));
    assert.equal((await pods.get("forever")).metadata?.deletionTimestamp, undefined);
  }),
);

test(
  "a node beyond the range gets CIDRNotAvailable; a deleted node's subnet is given again",
  logged(async () => {
    k(
      ["create", "-f", "-"],
      JSON.stringify({ apiVersion: "v1", kind: "Node", metadata: { name: "extra" } }),
    );
    const ev = await waitFor("CIDRNotAvailable", () => events("extra", "CIDRNotAvailable")[0]);
    assert.equal(ev.message, "Node extra status is now: CIDRNotAvailable");
    assert.equal(ev.source?.component, "cidrAllocator");
    assert.equal((await node("extra")).spec?.podCIDR, undefined);

    const freed = (await node("doomed-0")).spec?.podCIDR;
    await doomed.stop("SIGKILL");
    k(["delete", "pod", "forever", "--grace-period=0", "--force"]);
    k(["delete", "node", "doomed-0"]);
    const extra = await waitFor(
      "extra given the freed subnet",
      async () => (await node("extra")).spec?.podCIDR,
    );
    assert.equal(extra, freed);
    const removing = await waitFor("RemovingNode", () => events("doomed-0", "RemovingNode")[0]);
    assert.equal(removing.message, "Node doomed-0 event: Removing Node doomed-0 from Controller");
  }),
);
