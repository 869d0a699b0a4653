/**
 * Admission end to end: one `k8ts apiserver` with client certificates, Node,RBAC and the default
 * admission plugins plus NodeRestriction (as kubeadm runs it), driven by the real kubectl as the
 * admin and as the kubelet of node-a. No controller manager runs: the test creates the `default`
 * ServiceAccounts and fills in quota status itself, as the controllers would.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { tempDir } from "../src/testing/tmp.js";
import { k8tsBin, kubectl, TestAPIServer } from "./support/apiserver.js";

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

interface PodJSON {
  metadata: {
    name: string;
    annotations?: Record<string, string>;
    managedFields?: Array<{ fieldsV1?: unknown }>;
  };
  spec: {
    serviceAccountName?: string;
    priority?: number;
    preemptionPolicy?: string;
    tolerations?: unknown[];
    volumes?: Array<{ name: string; projected?: unknown }>;
    containers: Array<{ resources?: unknown; volumeMounts?: unknown[] }>;
  };
}

describe("admission plugins with real kubectl", () => {
  let dir: string;
  let server: TestAPIServer;
  let cleanup: () => void;
  const cache = () => path.join(dir, "kube-cache");
  const admin = () => path.join(dir, "admin.conf");
  const nodeA = () => path.join(dir, "kubelet-node-a.conf");
  const as = (kubeconfig: string, args: string[], input?: string) =>
    kubectl(kubeconfig, cache(), args, input === undefined ? {} : { input });
  const ok = (kubeconfig: string, args: string[], input?: string) => {
    const r = as(kubeconfig, args, input);
    assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  /** Runs kubectl expecting a refusal; returns its error output. */
  const refused = (kubeconfig: string, args: string[], input?: string) => {
    const r = as(kubeconfig, args, input);
    assert.notEqual(r.code, 0, `kubectl ${args.join(" ")} succeeded: ${r.stdout}`);
    return r.stderr.trim();
  };
  const getPod = (ns: string, name: string) =>
    JSON.parse(ok(admin(), ["get", "pod", name, "-n", ns, "-o", "json"])) as PodJSON;
  const podYaml = (name: string, extra = "") => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
spec:
  containers:
  - name: app
    image: busybox
${extra}`;
  /** `kubectl replace --raw`: a PUT of `obj`, without kubectl reading it first. */
  let raws = 0;
  const putRaw = (urlPath: string, obj: object): string[] => {
    const file = path.join(dir, `raw-${raws++}.json`);
    fs.writeFileSync(file, JSON.stringify(obj));
    return ["replace", "--raw", urlPath, "-f", file];
  };
  /** A namespace with its `default` ServiceAccount, as the controller manager would make it. */
  const namespace = (name: string, labels: string[] = []) => {
    ok(admin(), ["create", "namespace", name]);
    if (labels.length > 0) ok(admin(), ["label", "namespace", name, ...labels]);
    ok(admin(), ["create", "serviceaccount", "default", "-n", name]);
  };

  before(async () => {
    const t = await tempDir("k8ts-admission-");
    dir = t.path;
    cleanup = t.remove;
    const pki = path.join(dir, "pki");
    run(k8tsBin, [
      "certs",
      `--cert-dir=${pki}`,
      "--apiserver-advertise-address=127.0.0.1",
      "--node-name=node-a",
      "--node-ip=127.0.0.1",
    ]);
    server = new TestAPIServer(
      dir,
      [
        `--tls-cert-file=${path.join(pki, "apiserver.crt")}`,
        `--tls-private-key-file=${path.join(pki, "apiserver.key")}`,
        `--client-ca-file=${path.join(pki, "ca.crt")}`,
        `--service-account-key-file=${path.join(pki, "sa.pub")}`,
        `--service-account-signing-key-file=${path.join(pki, "sa.key")}`,
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction,ServiceAccount",
      ],
      path.join(pki, "ca.crt"),
    );
    await server.start();
    run(k8tsBin, [
      "kubeconfig",
      `--cert-dir=${pki}`,
      `--kubeconfig-dir=${dir}`,
      `--server=${server.url}`,
    ]);
  });

  after(async () => {
    await server?.stop();
    cleanup?.();
  });

  test("a node registers itself tainted not-ready and cannot modify another node", () => {
    ok(nodeA(), ["create", "-f", "-"], "apiVersion: v1\nkind: Node\nmetadata:\n  name: node-a\n");
    ok(admin(), ["create", "-f", "-"], "apiVersion: v1\nkind: Node\nmetadata:\n  name: node-b\n");
    const taints = ok(admin(), ["get", "node", "node-a", "-o", "jsonpath={.spec.taints}"]);
    assert.deepEqual(JSON.parse(taints), [
      { key: "node.kubernetes.io/not-ready", effect: "NoSchedule" },
    ]);

    // The Node authorizer already keeps node-a from reading node-b, so kubectl's usual
    // read-modify-write stops there; a kubelet's own writes go straight to the API.
    const nodeB = JSON.parse(ok(admin(), ["get", "node", "node-b", "-o", "json"])) as {
      metadata: { labels?: Record<string, string> };
    };
    nodeB.metadata.labels = { ...nodeB.metadata.labels, team: "x" };
    assert.equal(
      refused(nodeA(), putRaw("/api/v1/nodes/node-b", nodeB)),
      'Error from server (Forbidden): nodes "node-b" is forbidden: node "node-a" is not allowed to modify node "node-b"',
    );
    assert.match(
      refused(nodeA(), ["label", "node", "node-a", "node-role.kubernetes.io/control-plane="]),
      /nodes "node-a" is forbidden: is not allowed to modify labels: node-role.kubernetes.io\/control-plane$/,
    );
    // Its own status is its to report.
    const self = JSON.parse(ok(nodeA(), ["get", "node", "node-a", "-o", "json"])) as {
      status?: object;
    };
    self.status = {
      conditions: [
        {
          type: "Ready",
          status: "True",
          reason: "KubeletReady",
          message: "kubelet is posting ready status",
          lastHeartbeatTime: "2025-01-01T00:00:00Z",
          lastTransitionTime: "2025-01-01T00:00:00Z",
        },
      ],
    };
    ok(nodeA(), putRaw("/api/v1/nodes/node-a/status", self));
    assert.equal(
      ok(admin(), [
        "get",
        "node",
        "node-a",
        "-o",
        'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
      ]),
      "True",
    );
    ok(nodeA(), [
      "label",
      "node",
      "node-a",
      "node.kubernetes.io/exclude-from-external-load-balancers=",
    ]);
  });

  test("a node cannot touch pods bound to another node", () => {
    namespace("nodes");
    ok(admin(), ["create", "-n", "nodes", "-f", "-"], podYaml("on-b", "  nodeName: node-b\n"));
    ok(admin(), ["create", "-n", "nodes", "-f", "-"], podYaml("on-a", "  nodeName: node-a\n"));
    const onB = getPod("nodes", "on-b") as PodJSON & { status?: object };
    onB.status = { phase: "Running" };
    assert.equal(
      refused(nodeA(), putRaw("/api/v1/namespaces/nodes/pods/on-b/status", onB)),
      'Error from server (Forbidden): pods "on-b" is forbidden: node "node-a" can only update pod status for pods with spec.nodeName set to itself',
    );
    assert.equal(
      refused(nodeA(), ["delete", "pod", "on-b", "-n", "nodes", "--wait=false"]),
      'Error from server (Forbidden): pods "on-b" is forbidden: node "node-a" can only delete pods with spec.nodeName set to itself',
    );
    assert.match(
      refused(
        nodeA(),
        ["create", "-n", "nodes", "-f", "-"],
        podYaml("sneaky", "  nodeName: node-a\n"),
      ),
      /pods "sneaky" is forbidden: pod does not have "kubernetes.io\/config.mirror" annotation, node "node-a" can only create mirror pods$/,
    );
    const onA = getPod("nodes", "on-a") as PodJSON & { status?: object };
    onA.status = { phase: "Running" };
    ok(nodeA(), putRaw("/api/v1/namespaces/nodes/pods/on-a/status", onA));
    assert.equal(
      ok(admin(), ["get", "pod", "on-a", "-n", "nodes", "-o", "jsonpath={.status.phase}"]),
      "Running",
    );
    ok(admin(), ["get", "pod", "on-b", "-n", "nodes"]);
  });

  test("pods need their service account and get its token volume", () => {
    ok(admin(), ["create", "namespace", "no-sa"]);
    assert.equal(
      refused(admin(), ["create", "-n", "no-sa", "-f", "-"], podYaml("p")),
      'Error from server (Forbidden): error when creating "STDIN": pods "p" is forbidden: error looking up service account no-sa/default: serviceaccount "default" not found',
    );
    namespace("sa");
    ok(admin(), ["create", "-n", "sa", "-f", "-"], podYaml("p"));
    const p = getPod("sa", "p");
    assert.equal(p.spec.serviceAccountName, "default");
    const volume = p.spec.volumes?.[0];
    assert.match(volume?.name ?? "", /^kube-api-access-[a-z0-9]{5}$/);
    assert.deepEqual(volume?.projected, {
      defaultMode: 420,
      sources: [
        { serviceAccountToken: { expirationSeconds: 3607, path: "token" } },
        { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
        {
          downwardAPI: {
            items: [
              {
                path: "namespace",
                fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" },
              },
            ],
          },
        },
      ],
    });
    assert.deepEqual(p.spec.containers[0]!.volumeMounts, [
      {
        name: volume!.name,
        readOnly: true,
        mountPath: "/var/run/secrets/kubernetes.io/serviceaccount",
      },
    ]);
    // DefaultTolerationSeconds rides along.
    assert.deepEqual(p.spec.tolerations, [
      {
        key: "node.kubernetes.io/not-ready",
        operator: "Exists",
        effect: "NoExecute",
        tolerationSeconds: 300,
      },
      {
        key: "node.kubernetes.io/unreachable",
        operator: "Exists",
        effect: "NoExecute",
        tolerationSeconds: 300,
      },
    ]);
    // As upstream, the creator owns what it sent (with defaults), not what admission added.
    const withFields = JSON.parse(
      ok(admin(), ["get", "pod", "p", "-n", "sa", "-o", "json", "--show-managed-fields"]),
    ) as PodJSON;
    const owned = JSON.stringify(withFields.metadata.managedFields?.[0]?.fieldsV1);
    assert.match(owned, /"f:containers"/);
    for (const field of ["f:volumes", "f:volumeMounts", "f:serviceAccountName", "f:tolerations"])
      assert.ok(!owned.includes(field), `${field} is not the creator's: ${owned}`);
  });

  test("LimitRange defaults fill in what containers leave out", () => {
    namespace("limits");
    ok(
      admin(),
      ["create", "-n", "limits", "-f", "-"],
      `apiVersion: v1
kind: LimitRange
metadata:
  name: defaults
spec:
  limits:
  - type: Container
    default: {cpu: 500m, memory: 256Mi}
    defaultRequest: {cpu: 100m, memory: 128Mi}
    max: {cpu: "1"}
`,
    );
    ok(admin(), ["create", "-n", "limits", "-f", "-"], podYaml("p"));
    const p = getPod("limits", "p");
    assert.deepEqual(p.spec.containers[0]!.resources, {
      limits: { cpu: "500m", memory: "256Mi" },
      requests: { cpu: "100m", memory: "128Mi" },
    });
    assert.equal(
      p.metadata.annotations?.["kubernetes.io/limit-ranger"],
      "LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app",
    );
    assert.equal(
      refused(
        admin(),
        ["create", "-n", "limits", "-f", "-"],
        podYaml("big", '    resources: {limits: {cpu: "2"}}\n'),
      ),
      'Error from server (Forbidden): error when creating "STDIN": pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2',
    );
  });

  test("a ResourceQuota refuses what would exceed it", () => {
    namespace("quota");
    ok(admin(), ["create", "quota", "pods", "-n", "quota", "--hard=pods=1"]);
    // The resource quota controller's first sync, by hand.
    const synced = JSON.stringify({ status: { hard: { pods: "1" }, used: { pods: "0" } } });
    ok(admin(), [
      "patch",
      "quota",
      "pods",
      "-n",
      "quota",
      "--subresource=status",
      "--type=merge",
      "-p",
      synced,
    ]);
    // A dry run is checked but not charged.
    ok(admin(), ["create", "-n", "quota", "--dry-run=server", "-f", "-"], podYaml("first"));
    assert.equal(
      ok(admin(), ["get", "quota", "pods", "-n", "quota", "-o", "jsonpath={.status.used.pods}"]),
      "0",
    );
    ok(admin(), ["create", "-n", "quota", "-f", "-"], podYaml("first"));
    assert.equal(
      ok(admin(), ["get", "quota", "pods", "-n", "quota", "-o", "jsonpath={.status.used.pods}"]),
      "1",
    );
    assert.equal(
      refused(admin(), ["create", "-n", "quota", "-f", "-"], podYaml("second")),
      'Error from server (Forbidden): error when creating "STDIN": pods "second" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=1, limited: pods=1',
    );
  });

  test("PodSecurity restricted refuses a pod that does not comply", () => {
    namespace("secure", ["pod-security.kubernetes.io/enforce=restricted"]);
    assert.equal(
      refused(admin(), ["create", "-n", "secure", "-f", "-"], podYaml("plain")),
      'Error from server (Forbidden): error when creating "STDIN": pods "plain" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "app" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "app" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
    );
    ok(
      admin(),
      ["create", "-n", "secure", "-f", "-"],
      `apiVersion: v1
kind: Pod
metadata:
  name: hardened
spec:
  securityContext:
    runAsNonRoot: true
    runAsUser: 1000
    seccompProfile: {type: RuntimeDefault}
  containers:
  - name: app
    image: busybox
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
`,
    );
    assert.match(
      refused(admin(), [
        "label",
        "namespace",
        "secure",
        "--overwrite",
        "pod-security.kubernetes.io/enforce=strict",
      ]),
      /Namespace "secure" is invalid: metadata.labels\[pod-security.kubernetes.io\/enforce\]: Invalid value: "strict": must be one of privileged, baseline, restricted/,
    );
  });

  test("Priority resolves a pod's PriorityClass", () => {
    namespace("prio");
    ok(
      admin(),
      ["create", "-f", "-"],
      "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: high\nvalue: 1000\npreemptionPolicy: Never\n",
    );
    ok(admin(), ["create", "-n", "prio", "-f", "-"], podYaml("p", "  priorityClassName: high\n"));
    const p = getPod("prio", "p");
    assert.equal(p.spec.priority, 1000);
    assert.equal(p.spec.preemptionPolicy, "Never");
    ok(
      admin(),
      ["create", "-n", "prio", "-f", "-"],
      podYaml("critical", "  priorityClassName: system-cluster-critical\n"),
    );
    assert.equal(getPod("prio", "critical").spec.priority, 2000000000);
    assert.equal(getPod("sa", "p").spec.priority, 0);
    assert.equal(
      refused(
        admin(),
        ["create", "-n", "prio", "-f", "-"],
        podYaml("q", "  priorityClassName: nope\n"),
      ),
      'Error from server (Forbidden): error when creating "STDIN": pods "q" is forbidden: no PriorityClass with name nope was found',
    );
  });
});
