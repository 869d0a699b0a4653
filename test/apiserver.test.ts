/**
 * `k8ts apiserver` with real kubectl (TLS with the generated serving certificate, the embedded
 * store): one server for the whole file, restarted in place where a test needs it.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { tempDir } from "../src/testing/tmp.js";
import { kubectl, TestAPIServer } from "./support/apiserver.js";

const dir = tempDir("k8ts-apiserver-");
const server = new TestAPIServer(dir.path, ["--event-ttl=2s"]);
let kubeconfig = "";
let cacheN = 0;
/** kubectl with a fresh discovery cache each call, as the suite's rules ask. */
const k = (args: string[], opts: { bin?: string; input?: string } = {}) =>
  kubectl(kubeconfig, path.join(dir.path, `cache-${cacheN++}`), args, opts);
const ok = (args: string[], opts: { bin?: string; input?: string } = {}) => {
  const r = k(args, opts);
  assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
};
const lines = (out: string) => out.trimEnd().split("\n");

const deploymentYaml = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {a: "1"}
`;

before(async () => {
  await server.start();
  kubeconfig = server.writeKubeconfig(path.join(dir.path, "kubeconfig"));
});

after(async () => {
  await server.stop();
  dir.remove();
});

describe("k8ts apiserver with real kubectl", () => {
  test("version, health and readiness", async () => {
    const v = JSON.parse(ok(["version", "-o", "json"])) as {
      serverVersion: { major: string; minor: string; gitVersion: string };
    };
    assert.equal(v.serverVersion.major, "1");
    assert.equal(v.serverVersion.minor, "32");
    assert.match(v.serverVersion.gitVersion, /^v1\.32\./);
    const ready = ok(["get", "--raw", "/readyz?verbose"]);
    assert.match(ready, /^\[\+\]ping ok$/m);
    assert.match(ready, /^\[\+\]etcd ok$/m);
    assert.match(ready, /readyz check passed/);
    assert.equal(ok(["get", "--raw", "/livez"]), "ok");
  });

  test("a fresh cluster has the system namespaces and the kubernetes Service", () => {
    assert.deepEqual(
      lines(ok(["get", "namespaces"])).map((l) => l.split(/\s+/).slice(0, 2).join(" ")),
      [
        "NAME STATUS",
        "default Active",
        "kube-node-lease Active",
        "kube-public Active",
        "kube-system Active",
      ],
    );
    const svc = lines(ok(["get", "services"]));
    assert.match(svc[0]!, /^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE$/);
    assert.match(svc[1]!, /^kubernetes\s+ClusterIP\s+10\.0\.0\.1\s+<none>\s+443\/TCP\s+\d+s$/);
    const eps = JSON.parse(ok(["get", "endpoints", "kubernetes", "-o", "json"])) as {
      subsets: unknown;
    };
    assert.deepEqual(eps.subsets, [
      {
        addresses: [{ ip: "127.0.0.1" }],
        ports: [{ name: "https", port: server.securePort, protocol: "TCP" }],
      },
    ]);
  });

  test("api-resources lists the built-in resources with short names", () => {
    const out = ok(["api-resources"]);
    assert.match(out, /^pods\s+po\s+v1\s+true\s+Pod$/m);
    assert.match(out, /^deployments\s+deploy\s+apps\/v1\s+true\s+Deployment$/m);
    assert.match(
      out,
      /^horizontalpodautoscalers\s+hpa\s+autoscaling\/v2\s+true\s+HorizontalPodAutoscaler$/m,
    );
    assert.match(out, /^clusterroles\s+rbac\.authorization\.k8s\.io\/v1\s+false\s+ClusterRole$/m);
  });

  test("create -f of a multi-document YAML, then get in every output form", () => {
    assert.match(
      ok(["create", "-f", "-"], { input: deploymentYaml }),
      /deployment\.apps\/web created\nconfigmap\/cfg created/,
    );
    const wide = lines(ok(["get", "deploy", "-o", "wide"]));
    assert.match(
      wide[0]!,
      /^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\s+CONTAINERS\s+IMAGES\s+SELECTOR$/,
    );
    assert.match(wide[1]!, /^web\s+0\/2\s+0\s+0\s+\d+s\s+nginx\s+nginx:1\.25\s+app=web$/);
    const yaml = ok(["get", "cm", "cfg", "-o", "yaml"]);
    assert.match(yaml, /^kind: ConfigMap$/m);
    assert.match(yaml, /^ {2}uid: [0-9a-f-]{36}$/m);
    assert.equal(ok(["get", "cm", "cfg", "-o", "jsonpath={.data.a}"]), "1");
    const all = lines(ok(["get", "deployments,configmaps"]));
    assert.ok(all.some((l) => /^deployment\.apps\/web\s+0\/2/.test(l)));
    assert.ok(all.some((l) => /^configmap\/cfg\s+1\s+/.test(l)));
    // The same through the oldest and newest kubectl.
    for (const bin of ["kubectl.1.27", "kubectl.1.33"]) {
      assert.match(ok(["get", "deploy", "web"], { bin }), /^web\s+0\/2\s+0\s+0\s+\d+s$/m, bin);
    }
  });

  test("create commands that send protobuf bodies", () => {
    assert.match(
      ok(["create", "deployment", "proto", "--image=nginx", "--replicas=3"]),
      /deployment\.apps\/proto created/,
    );
    const d = JSON.parse(ok(["get", "deploy", "proto", "-o", "json"])) as {
      spec: {
        replicas: number;
        selector: unknown;
        template: { spec: { containers: Array<{ name: string; image: string }> } };
      };
    };
    assert.equal(d.spec.replicas, 3);
    assert.deepEqual(d.spec.selector, { matchLabels: { app: "proto" } });
    // Upstream's defaults, as a real cluster returns them.
    const full = JSON.parse(ok(["get", "deploy", "proto", "-o", "json"])) as {
      spec: Record<string, unknown> & {
        template: {
          spec: Record<string, unknown> & { containers: Array<Record<string, unknown>> };
        };
      };
    };
    assert.deepEqual(full.spec.strategy, {
      type: "RollingUpdate",
      rollingUpdate: { maxUnavailable: "25%", maxSurge: "25%" },
    });
    assert.equal(full.spec.revisionHistoryLimit, 10);
    assert.equal(full.spec.progressDeadlineSeconds, 600);
    const podSpec = full.spec.template.spec;
    assert.equal(podSpec.restartPolicy, "Always");
    assert.equal(podSpec.dnsPolicy, "ClusterFirst");
    assert.equal(podSpec.schedulerName, "default-scheduler");
    assert.equal(podSpec.terminationGracePeriodSeconds, 30);
    assert.equal(podSpec.containers[0]!.imagePullPolicy, "Always");
    assert.equal(podSpec.containers[0]!.terminationMessagePath, "/dev/termination-log");
    assert.deepEqual(
      d.spec.template.spec.containers.map((c) => [c.name, c.image]),
      [["nginx", "nginx"]],
    );
    assert.match(ok(["create", "namespace", "foo"]), /namespace\/foo created/);
    assert.match(
      ok(["create", "serviceaccount", "sa1", "-n", "foo"]),
      /serviceaccount\/sa1 created/,
    );
    assert.match(
      ok(["create", "secret", "generic", "s1", "--from-literal=k=v", "-n", "foo"]),
      /secret\/s1 created/,
    );
    assert.equal(
      ok(["get", "secret", "s1", "-n", "foo", "-o", "jsonpath={.data.k}"]),
      Buffer.from("v").toString("base64"),
    );
    assert.match(
      ok(["create", "deployment", "proto133", "--image=nginx"], { bin: "kubectl.1.33" }),
      /created/,
    );
    ok(["delete", "deploy", "proto", "proto133"]);
  });

  test("fieldValidation: Strict refuses unknown fields, Warn warns", async () => {
    const typo = JSON.stringify({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "typo" },
      dataa: { a: "b" },
    });
    const path = "/api/v1/namespaces/default/configmaps";
    const strict = await server.request("POST", `${path}?fieldValidation=Strict`, typo);
    assert.equal(strict.status, 400);
    assert.equal(
      (JSON.parse(strict.body) as { message: string }).message,
      'strict decoding error: unknown field "dataa"',
    );
    const warn = await server.request("POST", `${path}?fieldValidation=Warn`, typo);
    assert.equal(warn.status, 201);
    assert.equal(warn.headers.warning, '299 - "unknown field \\"dataa\\""');
  });

  test("scale, label, annotate, set image, and patches of every type", () => {
    assert.match(ok(["scale", "deploy", "web", "--replicas=5"]), /deployment\.apps\/web scaled/);
    assert.equal(ok(["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]), "5");
    ok(["label", "cm", "cfg", "tier=x"]);
    ok(["annotate", "cm", "cfg", "note=hi"]);
    ok(["set", "image", "deploy/web", "nginx=nginx:1.26"]);
    ok(["patch", "cm", "cfg", "-p", '{"data":{"b":"2"}}']);
    ok(["patch", "cm", "cfg", "--type=merge", "-p", '{"data":{"a":null}}']);
    ok(["patch", "cm", "cfg", "--type=json", "-p", '[{"op":"add","path":"/data/c","value":"3"}]']);
    const cm = JSON.parse(ok(["get", "cm", "cfg", "-o", "json"])) as {
      data: object;
      metadata: { labels: object; annotations: object };
    };
    assert.deepEqual(cm.data, { b: "2", c: "3" });
    assert.deepEqual(cm.metadata.labels, { tier: "x" });
    assert.deepEqual(cm.metadata.annotations, { note: "hi" });
    const d = JSON.parse(ok(["get", "deploy", "web", "-o", "json"])) as {
      metadata: { generation: number };
      spec: { template: { spec: { containers: Array<{ image: string }> } } };
    };
    assert.equal(d.spec.template.spec.containers[0]!.image, "nginx:1.26");
    assert.equal(d.metadata.generation, 3, "scale and set image each changed the spec");
    // An EndpointSlice has no spec: its generation counts changes of its content and labels.
    const slice = `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: gen, labels: {a: "1"}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1]}]
`;
    const file = path.join(dir.path, "slice.yaml");
    fs.writeFileSync(file, slice);
    ok(["create", "-f", file]);
    ok(["annotate", "endpointslice", "gen", "note=x"]);
    ok(["label", "endpointslice", "gen", "b=2"]);
    const gen = () => ok(["get", "endpointslice", "gen", "-o", "jsonpath={.metadata.generation}"]);
    assert.equal(gen(), "2", "an annotation leaves it, a label bumps it");
    ok(["patch", "endpointslice", "gen", "--type=merge", "-p", '{"endpoints":[]}']);
    assert.equal(gen(), "3");
  });

  test("apply -f creates, then updates", () => {
    const yaml = deploymentYaml
      .replace("name: cfg", "name: applied")
      .replace("name: web", "name: applied-web");
    assert.match(
      ok(["apply", "-f", "-"], { input: yaml }),
      /deployment\.apps\/applied-web created\nconfigmap\/applied created/,
    );
    const changed = yaml.replace('a: "1"', 'a: "2"').replace("replicas: 2", "replicas: 3");
    assert.match(
      ok(["apply", "-f", "-"], { input: changed }),
      /deployment\.apps\/applied-web configured\nconfigmap\/applied configured/,
    );
    assert.equal(ok(["get", "cm", "applied", "-o", "jsonpath={.data.a}"]), "2");
    assert.equal(ok(["get", "deploy", "applied-web", "-o", "jsonpath={.spec.replicas}"]), "3");
    assert.match(ok(["apply", "-f", "-"], { input: changed }), /unchanged/);
  });

  test("apply --server-side: creates, re-applies, reports conflicts as upstream, and takes over with --force-conflicts", () => {
    const yaml = (replicas: number) => `apiVersion: apps/v1
kind: Deployment
metadata: {name: ssa}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: ssa}}
  template:
    metadata: {labels: {app: ssa}}
    spec:
      containers: [{name: c, image: "nginx:1"}]
`;
    assert.match(
      ok(["apply", "--server-side", "-f", "-"], { input: yaml(2) }),
      /deployment\.apps\/ssa serverside-applied/,
    );
    const d = JSON.parse(ok(["get", "deploy", "ssa", "-o", "json", "--show-managed-fields"])) as {
      metadata: {
        managedFields: Array<{ manager: string; operation: string; fieldsType: string }>;
      };
    };
    assert.deepEqual(
      d.metadata.managedFields.map((m) => [m.manager, m.operation, m.fieldsType]),
      [["kubectl", "Apply", "FieldsV1"]],
    );
    assert.match(
      ok(["apply", "--server-side", "-f", "-"], { input: yaml(2) }),
      /serverside-applied/,
    );
    ok(["scale", "deploy", "ssa", "--replicas=5"]);
    const conflict = k(["apply", "--server-side", "-f", "-"], { input: yaml(3) });
    assert.equal(conflict.code, 1);
    assert.match(
      conflict.stderr,
      /Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps\/v1: \.spec\.replicas/,
    );
    ok(["apply", "--server-side", "--force-conflicts", "-f", "-"], { input: yaml(3) });
    assert.equal(ok(["get", "deploy", "ssa", "-o", "jsonpath={.spec.replicas}"]), "3");
    ok(["delete", "deploy", "ssa"]);
  });

  test("get -w prints changes as they happen", async () => {
    const cache = path.join(dir.path, "watch-cache");
    const w = spawn(
      "kubectl",
      [`--kubeconfig=${kubeconfig}`, `--cache-dir=${cache}`, "get", "configmaps", "-w"],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    w.stdout.on("data", (d: Buffer) => (out += d.toString()));
    try {
      const deadline = Date.now() + 20_000;
      while (!/^cfg\s+/m.test(out) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      ok(["create", "configmap", "watched", "--from-literal=x=y"]);
      while (!/^watched\s+1\s+/m.test(out) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
    } finally {
      w.kill("SIGTERM");
    }
    assert.match(out, /^NAME\s+DATA\s+AGE$/m);
    assert.match(out, /^watched\s+1\s+\d+s$/m);
  });

  test("log, exec and port-forward answer as upstream does before it dials a kubelet", () => {
    const pod =
      "apiVersion: v1\nkind: Pod\nmetadata: {name: connectpod}\nspec:\n  containers:\n  - {name: a, image: busybox}\n  - {name: b, image: busybox}\n";
    ok(["create", "-f", "-"], { input: pod });
    // kubectl picks the first container itself; the server's answer shows without it.
    const noContainer = k(["get", "--raw", "/api/v1/namespaces/default/pods/connectpod/log"]);
    assert.match(
      noContainer.stderr,
      /a container name must be specified for pod connectpod, choose one of: \[a b\]/,
    );
    assert.match(
      k(["logs", "connectpod", "-c", "x"]).stderr,
      /container x is not valid for pod connectpod/,
    );
    // Not on a node yet: no logs, and nothing to exec into.
    assert.equal(ok(["logs", "connectpod", "-c", "a"]), "");
    assert.match(
      k(["exec", "connectpod", "-c", "a", "--", "true"]).stderr,
      /pod connectpod does not have a host assigned/,
    );
    const binding =
      "apiVersion: v1\nkind: Binding\nmetadata: {name: connectpod}\ntarget: {apiVersion: v1, kind: Node, name: nowhere}\n";
    ok(["create", "-f", "-"], { input: binding });
    assert.match(k(["logs", "connectpod", "-c", "a"]).stderr, /nodes "nowhere" not found/);
    ok(["create", "-f", "-"], {
      input: "apiVersion: v1\nkind: Node\nmetadata: {name: nowhere}\n",
    });
    const exec = k(["exec", "connectpod", "-c", "a", "--", "true"]);
    assert.notEqual(exec.code, 0);
    assert.match(exec.stderr, /error dialing backend: .*node "nowhere"/);
    ok(["delete", "node", "nowhere"]);
    ok(["delete", "pod", "connectpod", "--grace-period=0", "--force"]);
  });

  test("delete --cascade=orphan and foreground leave the object to the garbage collector", () => {
    ok(["create", "deployment", "gc-orphan", "--image=nginx"]);
    ok(["create", "deployment", "gc-fg", "--image=nginx"]);
    ok(["delete", "deployment", "gc-orphan", "--cascade=orphan", "--wait=false"]);
    ok(["delete", "deployment", "gc-fg", "--cascade=foreground", "--wait=false"]);
    const meta = (name: string) =>
      (
        JSON.parse(ok(["get", "deployment", name, "-o", "json"])) as {
          metadata: { finalizers?: string[]; deletionTimestamp?: string };
        }
      ).metadata;
    assert.deepEqual(meta("gc-orphan").finalizers, ["orphan"]);
    assert.ok(meta("gc-orphan").deletionTimestamp);
    assert.deepEqual(meta("gc-fg").finalizers, ["foregroundDeletion"]);
    // What the garbage collector does once the dependents are handled: drop the finalizer.
    for (const name of ["gc-orphan", "gc-fg"]) {
      ok([
        "patch",
        "deployment",
        name,
        "--type=json",
        "-p",
        '[{"op":"remove","path":"/metadata/finalizers"}]',
      ]);
      assert.match(k(["get", "deployment", name]).stderr, /NotFound/);
    }
    ok(["create", "deployment", "gc-bg", "--image=nginx"]);
    ok(["delete", "deployment", "gc-bg", "--cascade=background"]);
    assert.match(k(["get", "deployment", "gc-bg"]).stderr, /NotFound/);
  });

  test("get componentstatuses: deprecated as upstream, with the storage's health", () => {
    const r = k(["get", "componentstatuses"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Warning: v1 ComponentStatus is deprecated in v1\.19\+/);
    assert.match(r.stdout, /^NAME\s+STATUS\s+MESSAGE\s+ERROR$/m);
    assert.match(r.stdout, /^etcd-0\s+Healthy\s+ok/m);
    assert.match(r.stdout, /^scheduler\s+Unhealthy/m);
  });

  test("eviction honours the pod's disruption budget (429) and then deletes the pod", () => {
    ok(["create", "-f", "-"], {
      input:
        "apiVersion: v1\nkind: Pod\nmetadata: {name: evictme, labels: {app: guarded}}\nspec:\n  nodeName: somewhere\n  containers: [{name: c, image: busybox}]\n",
    });
    ok([
      "patch",
      "pod",
      "evictme",
      "--subresource=status",
      "--type=merge",
      "-p",
      '{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}',
    ]);
    ok(["create", "poddisruptionbudget", "guard", "--selector=app=guarded", "--min-available=1"]);
    const budget = (allowed: number) =>
      ok([
        "patch",
        "pdb",
        "guard",
        "--subresource=status",
        "--type=merge",
        "-p",
        JSON.stringify({
          status: {
            observedGeneration: 1,
            disruptionsAllowed: allowed,
            currentHealthy: 1,
            desiredHealthy: 1,
            expectedPods: 1,
          },
        }),
      ]);
    budget(0);
    const eviction = JSON.stringify({
      apiVersion: "policy/v1",
      kind: "Eviction",
      metadata: { name: "evictme" },
      deleteOptions: { gracePeriodSeconds: 0 },
    });
    const refused = k(
      ["create", "--raw", "/api/v1/namespaces/default/pods/evictme/eviction", "-f", "-"],
      {
        input: eviction,
      },
    );
    assert.notEqual(refused.code, 0);
    assert.match(
      refused.stderr,
      /Cannot evict pod as it would violate the pod's disruption budget/,
    );
    ok(["get", "pod", "evictme"]);
    budget(1);
    const evicted = ok(
      ["create", "--raw", "/api/v1/namespaces/default/pods/evictme/eviction", "-f", "-"],
      { input: eviction },
    );
    assert.match(evicted, /"status":"Success"/);
    assert.match(k(["get", "pod", "evictme"]).stderr, /NotFound/);
    const status = JSON.parse(ok(["get", "pdb", "guard", "-o", "json"])) as {
      status: { disruptionsAllowed: number; disruptedPods: Record<string, string> };
    };
    assert.equal(status.status.disruptionsAllowed, 0);
    assert.ok(status.status.disruptedPods.evictme);

    // An unready pod does not count as healthy: with the budget met, evicting it takes nothing
    // from the budget (upstream's default IfHealthyBudget). The pod is marked DisruptionTarget
    // before it is deleted (a finalizer keeps it here to be looked at).
    ok(["create", "-f", "-"], {
      input:
        "apiVersion: v1\nkind: Pod\nmetadata: {name: unready, labels: {app: guarded}, finalizers: [k8ts.test/hold]}\nspec:\n  nodeName: somewhere\n  containers: [{name: c, image: busybox}]\n",
    });
    ok([
      "patch",
      "pod",
      "unready",
      "--subresource=status",
      "--type=merge",
      "-p",
      '{"status":{"phase":"Running"}}',
    ]);
    budget(0);
    const unready = ok(
      ["create", "--raw", "/api/v1/namespaces/default/pods/unready/eviction", "-f", "-"],
      { input: eviction.replace("evictme", "unready") },
    );
    assert.match(unready, /"status":"Success"/);
    const marked = JSON.parse(ok(["get", "pod", "unready", "-o", "json"])) as {
      metadata: { deletionTimestamp?: string };
      status: {
        conditions: Array<{ type: string; status: string; reason: string; message: string }>;
      };
    };
    assert.ok(marked.metadata.deletionTimestamp);
    const target = marked.status.conditions.find((c) => c.type === "DisruptionTarget");
    assert.deepEqual(
      [target?.status, target?.reason, target?.message],
      ["True", "EvictionByEvictionAPI", "Eviction API: evicting"],
    );
    const after = JSON.parse(ok(["get", "pdb", "guard", "-o", "json"])) as {
      status: { disruptionsAllowed: number; disruptedPods?: Record<string, string> };
    };
    assert.equal(after.status.disruptionsAllowed, 0);
    assert.equal(after.status.disruptedPods?.unready, undefined);
    ok(["patch", "pod", "unready", "--type=merge", "-p", '{"metadata":{"finalizers":null}}']);
    ok(["delete", "pdb", "guard"]);
  });

  test("create -f of a Binding puts the pod on the node, once", () => {
    const pod =
      "apiVersion: v1\nkind: Pod\nmetadata: {name: somepod}\nspec:\n  containers:\n  - {name: c, image: busybox}\n";
    ok(["create", "-f", "-"], { input: pod });
    const binding =
      "apiVersion: v1\nkind: Binding\nmetadata: {name: somepod}\ntarget: {apiVersion: v1, kind: Node, name: node1}\n";
    assert.match(
      ok(["create", "-f", "-"], { input: binding }),
      /created/, // upstream answers with a Status: kubectl prints "status/<unknown> created"
    );
    const p = JSON.parse(ok(["get", "pod", "somepod", "-o", "json"])) as {
      spec: { nodeName: string };
      status: { conditions: Array<{ type: string; status: string }> };
    };
    assert.equal(p.spec.nodeName, "node1");
    assert.deepEqual(
      p.status.conditions.map((c) => [c.type, c.status]),
      [["PodScheduled", "True"]],
    );
    const again = k(["create", "-f", "-"], {
      input: binding.replace("node1", "node2"),
    });
    assert.equal(again.code, 1);
    assert.match(
      again.stderr,
      /Operation cannot be fulfilled on pods\/binding "somepod": pod somepod is already assigned to node "node1"/,
    );
  });

  test("explain reads the OpenAPI schema", () => {
    const out = ok(["explain", "deployment.spec.strategy"]);
    assert.match(out, /^GROUP:\s+apps$/m);
    assert.match(out, /^KIND:\s+Deployment$/m);
    assert.match(out, /^VERSION:\s+v1$/m);
    assert.match(out, /^FIELD: strategy <DeploymentStrategy>$/m);
    assert.match(out, /^\s+rollingUpdate\s+<RollingUpdateDeployment>$/m);
    assert.match(out, /^\s+type\s+<string>$/m);
  });

  test("services get unique cluster IPs and node ports; requested ones are checked; delete frees them", () => {
    ok(["create", "service", "clusterip", "svc1", "--tcp=80:8080"]);
    ok(["create", "service", "nodeport", "svc2", "--tcp=80:8080"]);
    ok([
      "expose",
      "deployment",
      "applied-web",
      "--port=80",
      "--target-port=8080",
      "--name=exposed",
    ]);
    const ips = ["svc1", "svc2", "exposed"].map((n) =>
      ok(["get", "svc", n, "-o", "jsonpath={.spec.clusterIP}"]),
    );
    assert.equal(new Set([...ips, "10.0.0.1"]).size, 4, `distinct cluster IPs: ${ips.join(" ")}`);
    for (const ip of ips) assert.match(ip, /^10\.0\.0\.\d+$/);
    const nodePort = Number(ok(["get", "svc", "svc2", "-o", "jsonpath={.spec.ports[0].nodePort}"]));
    assert.ok(nodePort >= 30000 && nodePort <= 32767, `nodePort ${nodePort}`);
    assert.match(
      ok(["get", "svc", "svc2"]),
      new RegExp(
        `^svc2\\s+NodePort\\s+${ips[1]!.replace(/\./g, "\\.")}\\s+<none>\\s+80:${nodePort}/TCP`,
        "m",
      ),
    );
    const taken = (ip: string) =>
      `apiVersion: v1\nkind: Service\nmetadata: {name: taken}\nspec:\n  clusterIP: ${ip}\n  ports: [{port: 80}]\n`;
    const dup = k(["create", "-f", "-"], { input: taken(ips[0]!) });
    assert.equal(dup.code, 1);
    assert.match(
      dup.stderr,
      new RegExp(
        `spec.clusterIPs: Invalid value: \\["${ips[0]!.replace(/\./g, "\\.")}"\\]: failed to allocate IP ${ips[0]!.replace(/\./g, "\\.")}: provided IP is already allocated`,
      ),
    );
    const outside = k(["create", "-f", "-"], { input: taken("192.0.2.10") });
    assert.match(
      outside.stderr,
      /the provided IP \(192\.0\.2\.10\) is not in the valid range\. The range of valid IPs is 10\.0\.0\.0\/24/,
    );
    ok(["delete", "svc", "svc1"]);
    assert.match(ok(["create", "-f", "-"], { input: taken(ips[0]!) }), /service\/taken created/);
  });

  test("auth can-i, auth whoami and a SubjectAccessReview", () => {
    assert.equal(ok(["auth", "can-i", "create", "deployments"]).trim(), "yes");
    assert.equal(ok(["auth", "can-i", "delete", "nodes"]).trim(), "yes");
    assert.match(ok(["auth", "whoami"]), /^Username\s+system:anonymous$/m);
    const sar = `apiVersion: authorization.k8s.io/v1
kind: SubjectAccessReview
spec:
  user: jean.doe
  resourceAttributes: {namespace: kube-system, verb: get, resource: pods}
`;
    const out = JSON.parse(ok(["create", "-f", "-", "-o", "json"], { input: sar })) as {
      status: { allowed: boolean };
      spec: { user: string };
    };
    assert.equal(out.status.allowed, true);
    assert.equal(out.spec.user, "jean.doe");
  });

  test("delete, and delete --all", () => {
    assert.match(ok(["delete", "cm", "applied"]), /configmap "applied" deleted/);
    const gone = k(["get", "cm", "applied"]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /Error from server \(NotFound\): configmaps "applied" not found/);
    ok(["delete", "deploy", "--all"]);
    assert.match(k(["get", "deploy"]).stderr, /No resources found in default namespace\./);
    // A pod on a node is deleted gracefully: marked, for its kubelet to stop it.
    assert.match(ok(["delete", "pod", "somepod", "--wait=false"]), /pod "somepod" deleted/);
    const marked = JSON.parse(ok(["get", "pod", "somepod", "-o", "json"])) as {
      metadata: { deletionTimestamp?: string; deletionGracePeriodSeconds?: number };
    };
    assert.ok(marked.metadata.deletionTimestamp);
    assert.equal(marked.metadata.deletionGracePeriodSeconds, 30);
    assert.match(ok(["get", "pods"]), /^somepod\s+0\/1\s+Terminating\s+/m);
    assert.match(
      ok(["delete", "pods", "--all", "--grace-period=0", "--force"]),
      /pod "somepod" force deleted/,
    );
    assert.match(k(["get", "pods"]).stderr, /No resources found in default namespace\./);
  });

  test("delete namespace: Terminating until its finalizers are gone", async () => {
    ok(["create", "namespace", "doomed"]);
    ok(["create", "configmap", "inside", "-n", "doomed", "--from-literal=a=b"]);
    assert.match(
      ok(["delete", "namespace", "doomed", "--wait=false"]),
      /namespace "doomed" deleted/,
    );
    assert.match(ok(["get", "namespace", "doomed"]), /^doomed\s+Terminating\s+/m);
    const refused = k(["create", "configmap", "late", "-n", "doomed"]);
    assert.match(
      refused.stderr,
      /unable to create new content in namespace doomed because it is being terminated/,
    );
    // The namespace controller empties it, then clears spec.finalizers through /finalize.
    ok(["delete", "configmap", "inside", "-n", "doomed"]);
    const ns = JSON.parse(ok(["get", "namespace", "doomed", "-o", "json"])) as { spec: object };
    ns.spec = { finalizers: [] };
    const r = await server.request("PUT", "/api/v1/namespaces/doomed/finalize", JSON.stringify(ns));
    assert.equal(r.status, 200, r.body);
    assert.match(k(["get", "namespace", "doomed"]).stderr, /namespaces "doomed" not found/);
  });

  test("events expire after --event-ttl", async () => {
    const event = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: "web.1" },
      involvedObject: { kind: "Pod", name: "web", namespace: "default" },
      reason: "Testing",
      message: "expires soon",
      type: "Normal",
    };
    const created = await server.request(
      "POST",
      "/api/v1/namespaces/default/events",
      JSON.stringify(event),
    );
    assert.equal(created.status, 201, created.body);
    assert.match(ok(["get", "events"]), /Testing/);
    const deadline = Date.now() + 20_000;
    let status = 200;
    while (status === 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      status = (await server.request("GET", "/api/v1/namespaces/default/events/web.1")).status;
    }
    assert.equal(status, 404, "the event is gone after its TTL");
  });

  test("a watch with sendInitialEvents streams the current objects, then the initial-events-end bookmark", async () => {
    const r = await server.request(
      "GET",
      "/api/v1/namespaces/kube-system/configmaps?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1",
    );
    const events = r.body
      .trim()
      .split("\n")
      .map(
        (l) =>
          JSON.parse(l) as {
            type: string;
            object: { metadata: { annotations?: Record<string, string> } };
          },
      );
    const last = events[events.length - 1]!;
    assert.equal(last.type, "BOOKMARK");
    assert.equal(last.object.metadata.annotations?.["k8s.io/initial-events-end"], "true");
    assert.ok(events.slice(0, -1).every((e) => e.type === "ADDED"));
  });

  test("objects survive a restart, and a watch resumed from the last resourceVersion sees no gap", async () => {
    const before = JSON.parse(ok(["get", "cm", "cfg", "-o", "json"])) as {
      metadata: { resourceVersion: string; uid: string };
    };
    await server.stop();
    await server.start();
    const afterRestart = JSON.parse(ok(["get", "cm", "cfg", "-o", "json"])) as {
      metadata: { resourceVersion: string; uid: string };
    };
    assert.deepEqual(afterRestart.metadata, { ...afterRestart.metadata, ...before.metadata });
    ok(["create", "-f", "-"], {
      input: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: after-restart}\n",
    });
    const r = await server.request(
      "GET",
      `/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${before.metadata.resourceVersion}&timeoutSeconds=1`,
    );
    const events = r.body
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; object: { metadata: { name: string } } });
    assert.ok(
      events.some((e) => e.type === "ADDED" && e.object.metadata.name === "after-restart"),
      `events since ${before.metadata.resourceVersion}: ${r.body}`,
    );
  });
});

describe("k8ts apiserver answers bad input with upstream's Status and keeps serving", () => {
  const status = (body: string) =>
    JSON.parse(body) as {
      kind: string;
      reason: string;
      code: number;
      message: string;
      details?: { causes?: Array<{ field: string }> };
    };

  test("malformed JSON and YAML", async () => {
    const r = await server.request("POST", "/api/v1/namespaces/default/configmaps", "{not json");
    assert.equal(r.status, 400);
    assert.equal(status(r.body).reason, "BadRequest");
    const y = await server.request("POST", "/api/v1/namespaces/default/configmaps", "a: [", {
      "content-type": "application/yaml",
    });
    assert.equal(y.status, 400);
  });

  test("unknown resources, versions and kinds", async () => {
    assert.equal((await server.request("GET", "/api/v1/widgets")).status, 404);
    assert.equal((await server.request("GET", "/apis/apps/v9/deployments")).status, 404);
    const wrongKind = await server.request(
      "POST",
      "/api/v1/namespaces/default/configmaps",
      JSON.stringify({ apiVersion: "v1", kind: "Secret", metadata: { name: "x" } }),
    );
    assert.equal(wrongKind.status, 400);
  });

  test("invalid names get 422 Invalid with upstream's field causes", async () => {
    const r = await server.request(
      "POST",
      "/api/v1/namespaces/default/configmaps",
      JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "Bad_Name" } }),
    );
    assert.equal(r.status, 422);
    const s = status(r.body);
    assert.equal(s.reason, "Invalid");
    assert.equal(
      s.message,
      `ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
    );
    assert.equal(s.details?.causes?.[0]?.field, "metadata.name");
    const noName = await server.request(
      "POST",
      "/api/v1/namespaces/default/configmaps",
      JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: {} }),
    );
    assert.match(
      status(noName.body).message,
      /metadata\.name: Required value: name or generateName is required/,
    );
  });

  test("a missing namespace, a body over 3 MiB, an unsupported media type", async () => {
    const ns = await server.request(
      "POST",
      "/api/v1/namespaces/nope/configmaps",
      JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x" } }),
    );
    assert.equal(ns.status, 404);
    assert.equal(status(ns.body).message, 'namespaces "nope" not found');
    const big = JSON.stringify({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "big" },
      data: { x: "a".repeat(3 * 1024 * 1024) },
    });
    const tooBig = await server.request("POST", "/api/v1/namespaces/default/configmaps", big);
    assert.equal(tooBig.status, 413);
    assert.equal(status(tooBig.body).reason, "RequestEntityTooLarge");
    const media = await server.request("POST", "/api/v1/namespaces/default/configmaps", "x", {
      "content-type": "text/csv",
    });
    assert.equal(media.status, 415);
    assert.equal(status(media.body).reason, "UnsupportedMediaType");
    assert.equal(
      (await server.request("GET", "/api/v1/namespaces/default/configmaps/big")).status,
      404,
      "nothing was stored",
    );
  });

  test("a stale resourceVersion is a 409 Conflict and a too old watch version a 410", async () => {
    const created = await server.request(
      "POST",
      "/api/v1/namespaces/default/configmaps",
      JSON.stringify({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "cas" },
        data: { v: "1" },
      }),
    );
    const obj = JSON.parse(created.body) as { metadata: { resourceVersion: string } };
    const first = await server.request(
      "PUT",
      "/api/v1/namespaces/default/configmaps/cas",
      JSON.stringify({ ...obj, data: { v: "2" } }),
    );
    assert.equal(first.status, 200);
    const stale = await server.request(
      "PUT",
      "/api/v1/namespaces/default/configmaps/cas",
      JSON.stringify({ ...obj, data: { v: "3" } }),
    );
    assert.equal(stale.status, 409);
    assert.equal(
      status(stale.body).message,
      'Operation cannot be fulfilled on configmaps "cas": the object has been modified; please apply your changes to the latest version and try again',
    );
    const current = JSON.parse(
      (await server.request("GET", "/api/v1/namespaces/default/configmaps/cas")).body,
    ) as { data: { v: string } };
    assert.equal(current.data.v, "2");
    // Push the history past its retention, then ask for a watch from the beginning.
    for (let i = 0; i < 1300; i++) {
      await server.request(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: `fill-${i}` } }),
      );
    }
    const old = await server.request(
      "GET",
      "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=2&timeoutSeconds=1",
    );
    const events = old.body
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; object: { code: number; reason: string } });
    assert.equal(events[0]!.type, "ERROR");
    assert.equal(events[0]!.object.code, 410);
    assert.equal(events[0]!.object.reason, "Expired");
    assert.equal((await server.request("GET", "/readyz")).status, 200, "still serving");
  });
});
