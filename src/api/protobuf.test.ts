import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  decodeMessageAs,
  decodeObject,
  encodeMessageAs,
  encodeObject,
  formatDuration,
  parseDuration,
  ProtobufError,
  ProtobufUnknownKindError,
} from "./protobuf.js";
import { tempDir } from "../testing/tmp.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const trafficDir = path.resolve(repoRoot, "../shared/reference/kubectl-traffic");

type Obj = Record<string, unknown>;

function roundTrip(obj: Obj): Obj {
  const bytes = encodeObject(obj);
  const back = decodeObject(bytes);
  assert.equal(back.apiVersion, obj.apiVersion);
  assert.equal(back.kind, obj.kind);
  // Go's encoding is a function of the struct: re-encoding the decoded form gives the same bytes.
  assert.deepEqual(Buffer.from(encodeObject(back.object)), Buffer.from(bytes));
  return back.object;
}

// ---------------------------------------------------------------------------------------------
// 1. Bodies recorded from the real kubectl

test("decodes the recorded kubectl auth can-i and whoami bodies", (t) => {
  if (!fs.existsSync(trafficDir)) {
    t.skip(`recorded traffic not found at ${trafficDir}`);
    return;
  }
  const files = fs.readdirSync(trafficDir);
  const canI = files.find((f) => f.startsWith("can-i.") && f.endsWith(".req.pb"));
  const whoami = files.find((f) => f.startsWith("whoami.") && f.endsWith(".req.pb"));
  assert.ok(canI && whoami, "recorded bodies present");

  const canIBody = fs.readFileSync(path.join(trafficDir, canI));
  const sar = decodeObject(canIBody);
  assert.equal(sar.apiVersion, "authorization.k8s.io/v1");
  assert.equal(sar.kind, "SelfSubjectAccessReview");
  assert.deepEqual(sar.object, {
    kind: "SelfSubjectAccessReview",
    apiVersion: "authorization.k8s.io/v1",
    metadata: { creationTimestamp: null },
    spec: { resourceAttributes: { namespace: "default", verb: "get", resource: "pods" } },
    status: { allowed: false },
  });
  assert.deepEqual(Buffer.from(encodeObject(sar.object)), canIBody, "byte-exact re-encoding");

  const whoamiBody = fs.readFileSync(path.join(trafficDir, whoami));
  const ssr = decodeObject(whoamiBody);
  assert.deepEqual(ssr.object, {
    kind: "SelfSubjectReview",
    apiVersion: "authentication.k8s.io/v1",
    metadata: { creationTimestamp: null },
    status: { userInfo: {} },
  });
  assert.deepEqual(Buffer.from(encodeObject(ssr.object)), whoamiBody, "byte-exact re-encoding");
});

// ---------------------------------------------------------------------------------------------
// 2. Live capture: what kubectl sends as protobuf equals what it would send as JSON

function findKubectl(): string | undefined {
  try {
    return (
      execFileSync("sh", ["-c", "command -v kubectl"], { encoding: "utf8" }).trim() || undefined
    );
  } catch {
    return undefined;
  }
}

const kubectl = findKubectl();
const captured = new Map<string, Buffer>();
let server: http.Server | undefined;
let port = 0;
let tmp: { path: string; remove: () => void } | undefined;

before(async () => {
  if (!kubectl) return;
  tmp = tempDir("k8ts-pb-");
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://x");
      if (req.method === "GET" && url.pathname === "/version") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ major: "1", minor: "32", gitVersion: "v1.32.4" }));
        return;
      }
      if (req.method === "POST") {
        if (req.headers["content-type"] === "application/vnd.kubernetes.protobuf") {
          captured.set(url.pathname, Buffer.concat(chunks));
        }
      }
      // A failure status makes kubectl exit at once, without retrying.
      const code = req.method === "POST" ? 500 : 404;
      res.writeHead(code, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          kind: "Status",
          apiVersion: "v1",
          metadata: {},
          status: "Failure",
          message: "recorded by the test server",
          reason: code === 500 ? "InternalError" : "NotFound",
          code,
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  if (server) await new Promise<void>((resolve) => server?.close(() => resolve()));
  tmp?.remove();
});

function run(
  bin: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, KUBECONFIG: path.join(tmp?.path ?? "", "no-kubeconfig") };
  return new Promise((resolve) => {
    execFile(bin, args, { env, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * kubectl `create` commands that send protobuf without needing discovery. Each runs in its own
 * namespace (or creates a uniquely named cluster-scoped object) so the request path tells the
 * captured bodies apart; the path is the key.
 */
const CREATE_COMMANDS: [string, string[]][] = [
  [
    "/apis/apps/v1/namespaces/t1/deployments",
    ["create", "deployment", "web", "--image=nginx", "--replicas=3", "-n", "t1"],
  ],
  ["/api/v1/namespaces", ["create", "namespace", "foo"]],
  [
    "/api/v1/namespaces/t2/configmaps",
    ["create", "configmap", "cm1", "--from-literal=a=b", "-n", "t2"],
  ],
  [
    "/api/v1/namespaces/t3/services",
    ["create", "service", "clusterip", "svc1", "--tcp=80:8080", "-n", "t3"],
  ],
  [
    "/api/v1/namespaces/t4/secrets",
    ["create", "secret", "generic", "s1", "--from-literal=k=v", "-n", "t4"],
  ],
  ["/api/v1/namespaces/t5/serviceaccounts", ["create", "serviceaccount", "sa1", "-n", "t5"]],
  [
    "/apis/batch/v1/namespaces/t6/jobs",
    ["create", "job", "j1", "--image=busybox", "-n", "t6", "--", "echo", "hi"],
  ],
  [
    "/apis/batch/v1/namespaces/t7/cronjobs",
    [
      "create",
      "cronjob",
      "cj1",
      "--image=busybox",
      "--schedule=*/5 * * * *",
      "-n",
      "t7",
      "--",
      "date",
    ],
  ],
  [
    "/apis/rbac.authorization.k8s.io/v1/namespaces/t8/rolebindings",
    [
      "create",
      "rolebinding",
      "rb1",
      "--role=r1",
      "--user=bob",
      "--serviceaccount=t8:sa1",
      "-n",
      "t8",
    ],
  ],
  [
    "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    ["create", "clusterrolebinding", "crb1", "--clusterrole=cr1", "--group=devs"],
  ],
  [
    "/apis/networking.k8s.io/v1/namespaces/t9/ingresses",
    [
      "create",
      "ingress",
      "ing1",
      "--rule=foo.com/bar=svc1:80,tls=sec1",
      "--class=nginx",
      "-n",
      "t9",
    ],
  ],
  [
    "/apis/policy/v1/namespaces/t10/poddisruptionbudgets",
    [
      "create",
      "poddisruptionbudget",
      "pdb1",
      "--selector=app=web",
      "--min-available=50%",
      "-n",
      "t10",
    ],
  ],
  [
    "/apis/scheduling.k8s.io/v1/priorityclasses",
    ["create", "priorityclass", "pc1", "--value=1000", "--description=d"],
  ],
  [
    "/api/v1/namespaces/t11/resourcequotas",
    ["create", "quota", "q1", "--hard=cpu=1,memory=1G,pods=2", "-n", "t11"],
  ],
  [
    "/api/v1/namespaces/t12/secrets",
    [
      "create",
      "secret",
      "docker-registry",
      "d1",
      "--docker-username=u",
      "--docker-password=p",
      "--docker-server=r.io",
      "-n",
      "t12",
    ],
  ],
  [
    "/api/v1/namespaces/t13/services",
    ["create", "service", "nodeport", "np1", "--tcp=80:8080", "--node-port=30080", "-n", "t13"],
  ],
  [
    "/api/v1/namespaces/t14/services",
    ["create", "service", "externalname", "en1", "--external-name=x.com", "-n", "t14"],
  ],
];

test("kubectl's protobuf bodies decode to the JSON it sends for the same command", async (t) => {
  if (!kubectl || !tmp) {
    t.skip("kubectl not installed");
    return;
  }
  const server = `--server=http://127.0.0.1:${port}`;
  const cacheDir = `--cache-dir=${path.join(tmp.path, "cache")}`;
  const one = async ([key, args]: [string, string[]]) => {
    const send = await run(kubectl, [server, cacheDir, ...args]);
    const dash = args.indexOf("--");
    const dryArgs = [...args];
    dryArgs.splice(dash < 0 ? args.length : dash, 0, "--dry-run=client", "-o", "json");
    const dry = await run(kubectl, [server, cacheDir, ...dryArgs]);
    return { key, args, send, dry };
  };
  // A few kubectl processes at a time.
  const results: Awaited<ReturnType<typeof one>>[] = [];
  for (let i = 0; i < CREATE_COMMANDS.length; i += 6) {
    results.push(...(await Promise.all(CREATE_COMMANDS.slice(i, i + 6).map(one))));
  }
  for (const { key, args, send, dry } of results) {
    const what = `kubectl ${args.join(" ")}`;
    assert.notEqual(send.code, 0, `${what}: the test server refuses creation`);
    assert.equal(dry.code, 0, `${what} --dry-run=client: ${dry.stderr}`);
    const body = captured.get(key);
    assert.ok(body, `${what}: no protobuf body captured at ${key} (${send.stderr.trim()})`);
    const decoded = decodeObject(body);
    // The dry-run printer writes the object exactly as kubectl would marshal it to JSON for the
    // request (same Go struct, same encoding/json), so no normalisation is needed.
    const expected = JSON.parse(dry.stdout) as Obj;
    assert.deepEqual(decoded.object, expected, what);
    assert.equal(decoded.apiVersion, expected.apiVersion);
    assert.equal(decoded.kind, expected.kind);
    // And our encoder reproduces kubectl's bytes from that JSON.
    assert.deepEqual(Buffer.from(encodeObject(expected)), body, `${what}: re-encoding`);
  }
});

test("kubectl 1.33 sends the same deployment body", async (t) => {
  const bin = kubectl ? path.join(path.dirname(fs.realpathSync(kubectl)), "kubectl.1.33") : "";
  if (!bin || !fs.existsSync(bin) || !tmp) {
    t.skip("kubectl.1.33 not installed");
    return;
  }
  const args = ["create", "deployment", "web33", "--image=nginx:1.27", "--port=8080", "-n", "t33"];
  const common = [
    `--server=http://127.0.0.1:${port}`,
    `--cache-dir=${path.join(tmp.path, "cache33")}`,
  ];
  await run(bin, [...common, ...args]);
  const dry = await run(bin, [...common, ...args, "--dry-run=client", "-o", "json"]);
  const body = captured.get("/apis/apps/v1/namespaces/t33/deployments");
  assert.ok(body, "captured");
  assert.deepEqual(decodeObject(body).object, JSON.parse(dry.stdout));
});

// ---------------------------------------------------------------------------------------------
// 3. Round trips (objects written in the form Go's encoding/json produces)

test("round trip: Pod with containers, ports, resources, env, volumes and probes", () => {
  const pod: Obj = {
    kind: "Pod",
    apiVersion: "v1",
    metadata: {
      name: "p",
      namespace: "default",
      uid: "0d7e1d2c-7d2a-4c1e-9e66-3c1c1c1c1c1c",
      resourceVersion: "42",
      generation: 3,
      creationTimestamp: "2024-05-06T07:08:09Z",
      deletionTimestamp: "2024-05-06T08:00:00Z",
      deletionGracePeriodSeconds: 0,
      labels: { app: "web", tier: "fe" },
      annotations: { "a.io/x": "1" },
      ownerReferences: [
        {
          apiVersion: "apps/v1",
          kind: "ReplicaSet",
          name: "rs",
          uid: "u1",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
      finalizers: ["x.io/f"],
      managedFields: [
        {
          manager: "kubectl",
          operation: "Update",
          apiVersion: "v1",
          time: "2024-05-06T07:08:09Z",
          fieldsType: "FieldsV1",
          fieldsV1: { "f:metadata": { "f:labels": { ".": {}, "f:app": {} } } },
        },
      ],
    },
    spec: {
      volumes: [
        { name: "data", emptyDir: { medium: "Memory", sizeLimit: "64Mi" } },
        {
          name: "cfg",
          configMap: {
            name: "cm",
            items: [{ key: "a", path: "a.txt", mode: 420 }],
            defaultMode: 420,
          },
        },
        { name: "sec", secret: { secretName: "s", optional: false } },
      ],
      initContainers: [
        { name: "init", image: "busybox", command: ["sh", "-c", "true"], resources: {} },
      ],
      containers: [
        {
          name: "app",
          image: "nginx:1.27",
          args: ["--port", "8080"],
          ports: [
            { name: "http", containerPort: 8080, protocol: "TCP" },
            { containerPort: 9090, protocol: "UDP" },
          ],
          env: [
            { name: "A", value: "1" },
            { name: "B", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
            {
              name: "C",
              valueFrom: { resourceFieldRef: { resource: "limits.cpu", divisor: "1m" } },
            },
          ],
          resources: {
            limits: { cpu: "500m", memory: "128Mi", "nvidia.com/gpu": "1" },
            requests: { cpu: "250m", memory: "64Mi" },
          },
          volumeMounts: [{ name: "data", mountPath: "/data", readOnly: true }],
          livenessProbe: {
            httpGet: {
              path: "/healthz",
              port: 8080,
              scheme: "HTTP",
              httpHeaders: [{ name: "X", value: "y" }],
            },
            initialDelaySeconds: 5,
            periodSeconds: 10,
            failureThreshold: 3,
          },
          readinessProbe: { tcpSocket: { port: "http" }, timeoutSeconds: 1 },
          startupProbe: { exec: { command: ["cat", "/ok"] }, terminationGracePeriodSeconds: 0 },
          lifecycle: { preStop: { sleep: { seconds: 5 } } },
          imagePullPolicy: "IfNotPresent",
          securityContext: {
            runAsUser: 1000,
            runAsNonRoot: true,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ["ALL"] },
          },
          tty: true,
        },
      ],
      restartPolicy: "Always",
      terminationGracePeriodSeconds: 30,
      activeDeadlineSeconds: -1,
      nodeSelector: { "kubernetes.io/os": "linux" },
      serviceAccountName: "default",
      securityContext: {
        supplementalGroups: [1, 2, 3],
        fsGroup: 2000,
        sysctls: [{ name: "net.x", value: "1" }],
      },
      affinity: {
        podAntiAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            {
              weight: 100,
              podAffinityTerm: {
                labelSelector: {
                  matchExpressions: [{ key: "app", operator: "In", values: ["web"] }],
                },
                topologyKey: "kubernetes.io/hostname",
              },
            },
          ],
        },
      },
      tolerations: [{ key: "k", operator: "Exists", effect: "NoSchedule", tolerationSeconds: 30 }],
      priority: 0,
      enableServiceLinks: true,
      overhead: { cpu: "10m" },
    },
    status: {
      phase: "Running",
      conditions: [
        {
          type: "Ready",
          status: "True",
          lastProbeTime: null,
          lastTransitionTime: "2024-05-06T07:08:10Z",
        },
      ],
      hostIP: "10.0.0.1",
      podIP: "10.1.0.5",
      podIPs: [{ ip: "10.1.0.5" }, { ip: "fd00::5" }],
      startTime: "2024-05-06T07:08:09Z",
      containerStatuses: [
        {
          name: "app",
          state: { running: { startedAt: "2024-05-06T07:08:10Z" } },
          lastState: {},
          ready: true,
          restartCount: 0,
          image: "nginx:1.27",
          imageID: "sha256:abc",
          started: true,
        },
      ],
      qosClass: "Burstable",
    },
  };
  assert.deepEqual(roundTrip(pod), pod);
});

test("round trip: Deployment with strategy", () => {
  const d: Obj = {
    kind: "Deployment",
    apiVersion: "apps/v1",
    metadata: {
      name: "web",
      namespace: "default",
      creationTimestamp: null,
      labels: { app: "web" },
    },
    spec: {
      replicas: 0,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { creationTimestamp: null, labels: { app: "web" } },
        spec: { containers: [{ name: "nginx", image: "nginx", resources: {} }] },
      },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "25%", maxSurge: 1 } },
      minReadySeconds: 5,
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
    },
    status: {
      observedGeneration: 2,
      replicas: 3,
      updatedReplicas: 3,
      readyReplicas: 3,
      availableReplicas: 3,
      conditions: [
        {
          type: "Available",
          status: "True",
          lastUpdateTime: "2024-01-01T00:00:00Z",
          lastTransitionTime: "2024-01-01T00:00:00Z",
          reason: "MinimumReplicasAvailable",
          message: "ok",
        },
      ],
    },
  };
  assert.deepEqual(roundTrip(d), d);
});

test("round trip: Service, Secret, ConfigMap", () => {
  const svc: Obj = {
    kind: "Service",
    apiVersion: "v1",
    metadata: { name: "svc", creationTimestamp: null },
    spec: {
      ports: [
        { name: "http", protocol: "TCP", port: 80, targetPort: 8080, nodePort: 30080 },
        { name: "named", protocol: "TCP", appProtocol: "h2c", port: 81, targetPort: "web" },
      ],
      selector: { app: "web" },
      clusterIP: "10.96.0.10",
      clusterIPs: ["10.96.0.10"],
      type: "NodePort",
      sessionAffinity: "ClientIP",
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } },
      ipFamilies: ["IPv4"],
      ipFamilyPolicy: "SingleStack",
      externalTrafficPolicy: "Cluster",
      internalTrafficPolicy: "Cluster",
    },
    status: {
      loadBalancer: {
        ingress: [{ ip: "1.2.3.4", ports: [{ port: 80, protocol: "TCP", error: "x" }] }],
      },
    },
  };
  assert.deepEqual(roundTrip(svc), svc);

  const secret: Obj = {
    kind: "Secret",
    apiVersion: "v1",
    metadata: { name: "s", creationTimestamp: null },
    immutable: true,
    data: {
      empty: "",
      k: Buffer.from("v").toString("base64"),
      bin: Buffer.from([0, 255, 1, 254]).toString("base64"),
    },
    stringData: { plain: "text" },
    type: "Opaque",
  };
  assert.deepEqual(roundTrip(secret), secret);

  const cm: Obj = {
    kind: "ConfigMap",
    apiVersion: "v1",
    metadata: { name: "c", creationTimestamp: null },
    data: { "a.txt": "héllo ✓ 𝄞", "": "empty key" },
    binaryData: { b: "AAE=" },
  };
  assert.deepEqual(roundTrip(cm), cm);
});

test("round trip: Node with status", () => {
  const node: Obj = {
    kind: "Node",
    apiVersion: "v1",
    metadata: {
      name: "n1",
      creationTimestamp: "2024-01-01T00:00:00Z",
      labels: { "kubernetes.io/hostname": "n1" },
    },
    spec: {
      podCIDR: "10.1.0.0/24",
      podCIDRs: ["10.1.0.0/24"],
      taints: [{ key: "k", value: "v", effect: "NoSchedule" }],
    },
    status: {
      capacity: { cpu: "4", memory: "16Gi", pods: "110", "ephemeral-storage": "100G" },
      allocatable: { cpu: "3800m", memory: "15Gi", pods: "110" },
      conditions: [
        {
          type: "Ready",
          status: "True",
          lastHeartbeatTime: "2024-01-01T00:01:00Z",
          lastTransitionTime: "2024-01-01T00:00:00Z",
          reason: "KubeletReady",
          message: "kubelet is posting ready status",
        },
      ],
      addresses: [
        { type: "InternalIP", address: "10.0.0.1" },
        { type: "Hostname", address: "n1" },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        machineID: "m",
        systemUUID: "s",
        bootID: "b",
        kernelVersion: "6.1",
        osImage: "Linux",
        containerRuntimeVersion: "containerd://1.7",
        kubeletVersion: "v1.32.4",
        kubeProxyVersion: "",
        operatingSystem: "linux",
        architecture: "amd64",
      },
      images: [{ names: ["nginx:1.27"], sizeBytes: 67_000_000 }],
      volumesInUse: ["kubernetes.io/csi/x"],
    },
  };
  assert.deepEqual(roundTrip(node), node);
});

test("round trip: events.k8s.io Event and core Event with MicroTime", () => {
  const ev: Obj = {
    kind: "Event",
    apiVersion: "events.k8s.io/v1",
    metadata: { name: "e", namespace: "default", creationTimestamp: null },
    eventTime: "2024-05-06T07:08:09.123456Z",
    series: { count: 2, lastObservedTime: "2024-05-06T07:09:00.000001Z" },
    reportingController: "k8ts/scheduler",
    reportingInstance: "k8ts-1",
    action: "Binding",
    reason: "Scheduled",
    regarding: { kind: "Pod", namespace: "default", name: "p", uid: "u", apiVersion: "v1" },
    note: "assigned",
    type: "Normal",
    deprecatedSource: {},
    deprecatedFirstTimestamp: null,
    deprecatedLastTimestamp: null,
  };
  assert.deepEqual(roundTrip(ev), ev);

  const core: Obj = {
    kind: "Event",
    apiVersion: "v1",
    metadata: { name: "e2", namespace: "default", creationTimestamp: null },
    involvedObject: { kind: "Pod", name: "p" },
    reason: "Pulled",
    message: "ok",
    source: { component: "kubelet", host: "n1" },
    firstTimestamp: "2024-05-06T07:08:09Z",
    lastTimestamp: "2024-05-06T07:08:09Z",
    count: 1,
    type: "Normal",
    eventTime: null,
    reportingComponent: "",
    reportingInstance: "",
  };
  assert.deepEqual(roundTrip(core), core);
});

test("round trip: Lease with MicroTime", () => {
  const lease: Obj = {
    kind: "Lease",
    apiVersion: "coordination.k8s.io/v1",
    metadata: { name: "kube-scheduler", namespace: "kube-system", creationTimestamp: null },
    spec: {
      holderIdentity: "node-1_abc",
      leaseDurationSeconds: 15,
      acquireTime: "2024-05-06T07:08:09.000000Z",
      renewTime: "2024-05-06T07:08:19.999999Z",
      leaseTransitions: 0,
    },
  };
  assert.deepEqual(roundTrip(lease), lease);
});

test("round trip: CronJob", () => {
  const cj: Obj = {
    kind: "CronJob",
    apiVersion: "batch/v1",
    metadata: { name: "cj", creationTimestamp: null },
    spec: {
      schedule: "*/5 * * * *",
      timeZone: "Etc/UTC",
      concurrencyPolicy: "Forbid",
      suspend: false,
      jobTemplate: {
        metadata: { creationTimestamp: null },
        spec: {
          parallelism: 1,
          completions: 1,
          backoffLimit: 6,
          ttlSecondsAfterFinished: 100,
          completionMode: "NonIndexed",
          podFailurePolicy: {
            rules: [{ action: "FailJob", onExitCodes: { operator: "In", values: [1, 2, -3] } }],
          },
          template: {
            metadata: { creationTimestamp: null },
            spec: {
              containers: [{ name: "c", image: "busybox", command: ["date"], resources: {} }],
              restartPolicy: "OnFailure",
            },
          },
        },
      },
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 1,
    },
    status: { active: [{ kind: "Job", name: "cj-1" }], lastScheduleTime: "2024-05-06T07:05:00Z" },
  };
  assert.deepEqual(roundTrip(cj), cj);
});

test("round trip: HorizontalPodAutoscaler v2 with metrics", () => {
  const hpa: Obj = {
    kind: "HorizontalPodAutoscaler",
    apiVersion: "autoscaling/v2",
    metadata: { name: "h", creationTimestamp: null },
    spec: {
      scaleTargetRef: { kind: "Deployment", name: "web", apiVersion: "apps/v1" },
      minReplicas: 1,
      maxReplicas: 10,
      metrics: [
        {
          type: "Resource",
          resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 60 } },
        },
        {
          type: "Pods",
          pods: {
            metric: { name: "rps", selector: { matchLabels: { a: "b" } } },
            target: { type: "AverageValue", averageValue: "100" },
          },
        },
        {
          type: "External",
          external: { metric: { name: "queue" }, target: { type: "Value", value: "1.5k" } },
        },
      ],
      behavior: {
        scaleDown: {
          stabilizationWindowSeconds: 300,
          selectPolicy: "Max",
          policies: [{ type: "Percent", value: 10, periodSeconds: 60 }],
        },
      },
    },
    status: {
      currentReplicas: 2,
      desiredReplicas: 3,
      currentMetrics: [
        {
          type: "Resource",
          resource: { name: "cpu", current: { averageValue: "120m", averageUtilization: 70 } },
        },
      ],
      conditions: [
        { type: "AbleToScale", status: "True", lastTransitionTime: "2024-01-01T00:00:00Z" },
      ],
    },
  };
  assert.deepEqual(roundTrip(hpa), hpa);
});

test("round trip: RBAC, ControllerRevision with embedded JSON, SubjectAccessReview extra", () => {
  const role: Obj = {
    kind: "ClusterRole",
    apiVersion: "rbac.authorization.k8s.io/v1",
    metadata: { name: "r", creationTimestamp: null },
    rules: [
      { verbs: ["get", "list"], apiGroups: [""], resources: ["pods"] },
      { verbs: ["get"], nonResourceURLs: ["/healthz"] },
    ],
    aggregationRule: { clusterRoleSelectors: [{ matchLabels: { x: "y" } }] },
  };
  assert.deepEqual(roundTrip(role), role);

  const cr: Obj = {
    kind: "ControllerRevision",
    apiVersion: "apps/v1",
    metadata: { name: "rev", creationTimestamp: null },
    data: {
      spec: { template: { spec: { containers: [{ name: "a" }] } } },
      n: [1, 2.5, "x", null, true],
    },
    revision: 7,
  };
  assert.deepEqual(roundTrip(cr), cr);

  const sar: Obj = {
    kind: "SubjectAccessReview",
    apiVersion: "authorization.k8s.io/v1",
    metadata: { creationTimestamp: null },
    spec: {
      resourceAttributes: { verb: "get", resource: "pods" },
      user: "bob",
      groups: ["g"],
      extra: { scopes: ["a", "b"], empty: [] },
      uid: "1",
    },
    status: { allowed: true, reason: "ok" },
  };
  assert.deepEqual(roundTrip(sar), sar);
});

test("a RawExtension holding a protobuf object decodes to that object's JSON", () => {
  const inner: Obj = {
    kind: "ConfigMap",
    apiVersion: "v1",
    metadata: { name: "x", creationTimestamp: null },
    data: { a: "b" },
  };
  const innerBytes = encodeObject(inner);
  // ControllerRevision: metadata 1, data 2 (RawExtension: raw 1), revision 3.
  const raw = encodeMessageAs("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", {});
  const rawExt = Buffer.concat([Buffer.from([0x0a]), varint(innerBytes.length), innerBytes]);
  const msg = Buffer.concat([
    Buffer.from([0x0a]),
    varint(raw.length),
    raw,
    Buffer.from([0x12]),
    varint(rawExt.length),
    rawExt,
    Buffer.from([0x18, 0x01]),
  ]);
  const obj = decodeMessageAs("io.k8s.api.apps.v1.ControllerRevision", msg) as Obj;
  assert.deepEqual(obj.data, inner);
  assert.equal(obj.revision, 1);
});

test("WatchEvent objects can be written as nested protobuf envelopes", () => {
  const object: Obj = {
    kind: "Pod",
    apiVersion: "v1",
    metadata: { name: "p", creationTimestamp: null },
    spec: { containers: [{ name: "c", image: "i", resources: {} }] },
    status: {},
  };
  const event: Obj = { kind: "WatchEvent", apiVersion: "v1", type: "ADDED", object };
  const nested = encodeObject(event, "v1", "WatchEvent", { nestedProtobuf: true });
  const asJson = encodeObject(event);
  assert.ok(Buffer.from(nested).includes(Buffer.from("k8s\0", "latin1"), 4));
  assert.ok(Buffer.from(asJson).includes(Buffer.from('{"kind":"Pod"')));
  // metav1.WatchEvent has no TypeMeta: its JSON form is just type and object.
  const decoded = decodeObject(nested);
  assert.equal(decoded.kind, "WatchEvent");
  assert.deepEqual(decoded.object, { type: "ADDED", object });
  assert.deepEqual(decodeObject(asJson).object, { type: "ADDED", object });
});

test("an envelope without apiVersion or kind takes the endpoint's defaults", () => {
  const body = envelope(
    "",
    "",
    encodeMessageAs(`io.k8s.api.core.v1.Namespace`, { metadata: { name: "x" } }),
  );
  const d = decodeObject(body, { apiVersion: "v1", kind: "Namespace" });
  assert.equal(d.kind, "Namespace");
  assert.deepEqual(d.object, {
    kind: "Namespace",
    apiVersion: "v1",
    metadata: { name: "x", creationTimestamp: null },
    spec: {},
    status: {},
  });
  assert.throws(() => decodeObject(body), /no kind/);
});

test("Go zero-value and omitempty rules when decoding sparse messages", () => {
  // An empty Deployment message: every non-pointer struct appears, omitempty scalars do not.
  const d = decodeObject(envelope("apps/v1", "Deployment", new Uint8Array())).object;
  assert.deepEqual(d, {
    kind: "Deployment",
    apiVersion: "apps/v1",
    metadata: { creationTimestamp: null },
    spec: {
      selector: null,
      template: { metadata: { creationTimestamp: null }, spec: { containers: null } },
      strategy: {},
    },
    status: {},
  });
  // Set pointers appear even when zero; non-omitempty scalars appear when zero.
  const spec = encodeMessageAs("io.k8s.api.apps.v1.DeploymentSpec", { replicas: 0, paused: false });
  const back = decodeMessageAs("io.k8s.api.apps.v1.DeploymentSpec", spec) as Obj;
  assert.equal(back.replicas, 0);
  assert.equal("paused" in back, false);
  const port = decodeMessageAs("io.k8s.api.core.v1.ContainerPort", new Uint8Array()) as Obj;
  assert.deepEqual(port, { containerPort: 0 });
});

test("int64 edge values, negative int32, packed repeated and unknown fields", () => {
  const t = "io.k8s.api.core.v1.PodSecurityContext";
  const v = {
    runAsUser: 2 ** 53 - 1,
    runAsGroup: -(2 ** 53 - 1),
    supplementalGroups: [0, -1, 2 ** 40],
  };
  assert.deepEqual(decodeMessageAs(t, encodeMessageAs(t, v)), v);
  const c = "io.k8s.api.core.v1.ContainerPort";
  assert.deepEqual(decodeMessageAs(c, encodeMessageAs(c, { containerPort: -5 })), {
    containerPort: -5,
  });
  // supplementalGroups (4) packed: [1, 300]; then an unknown varint field 99 and unknown bytes 100.
  const packed = Uint8Array.from([
    0x22, 0x03, 0x01, 0xac, 0x02, 0x98, 0x06, 0x07, 0xa2, 0x06, 0x01, 0x00,
  ]);
  assert.deepEqual(decodeMessageAs(t, packed), { supplementalGroups: [1, 300] });
});

test("durations in Go's notation", () => {
  const cases: [bigint, string][] = [
    [0n, "0s"],
    [1n, "1ns"],
    [1500n, "1.5µs"],
    [1_500_000n, "1.5ms"],
    [1_000_000_000n, "1s"],
    [90_000_000_000n, "1m30s"],
    [3_600_000_000_000n, "1h0m0s"],
    [-3_723_500_000_000n, "-1h2m3.5s"],
    [9223372036854775807n, "2562047h47m16.854775807s"],
  ];
  for (const [ns, s] of cases) {
    assert.equal(formatDuration(ns), s);
    assert.equal(parseDuration(s), ns);
  }
  assert.equal(parseDuration("1.5h"), 5_400_000_000_000n);
  assert.equal(parseDuration("1us"), 1000n);
  assert.throws(() => parseDuration("1d"));
  assert.throws(() => parseDuration(""));
});

// ---------------------------------------------------------------------------------------------
// 5. Malformed input

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

function lenField(num: number, bytes: Uint8Array): Buffer {
  return Buffer.concat([varint(num * 8 + 2), varint(bytes.length), bytes]);
}

function envelope(apiVersion: string, kind: string, raw: Uint8Array): Buffer {
  const tm = Buffer.concat([lenField(1, Buffer.from(apiVersion)), lenField(2, Buffer.from(kind))]);
  return Buffer.concat([Buffer.from("k8s\0", "latin1"), lenField(1, tm), lenField(2, raw)]);
}

function assertProtobufError(body: Uint8Array, pattern: RegExp): ProtobufError {
  let caught: unknown;
  try {
    decodeObject(body);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ProtobufError, `expected ProtobufError, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  return caught;
}

test("malformed bodies throw ProtobufError with an offset", () => {
  assertProtobufError(new Uint8Array(), /envelope prefix/);
  assertProtobufError(Buffer.from('{"kind":"Pod"}'), /envelope prefix/);
  assertProtobufError(Buffer.from("k8s\x01\x0a\x00", "latin1"), /envelope prefix/);
  const e = assertProtobufError(Buffer.from("k8s\0\x0a\xff\xff", "latin1"), /truncated varint/);
  assert.equal(e.offset, 7);
  assertProtobufError(Buffer.from("k8s\0\x0a\x7f\x00", "latin1"), /length 127 past end/);
  assertProtobufError(
    Buffer.from([0x6b, 0x38, 0x73, 0, 0x0a, ...Array(11).fill(0xff), 0x01]),
    /longer than 10 bytes/,
  );
  assertProtobufError(Buffer.from("k8s\0\x2f", "latin1"), /illegal wire type 7/);
  assertProtobufError(Buffer.from("k8s\0\x02\x00", "latin1"), /field number 0/);
  assertProtobufError(envelope("v1", "", new Uint8Array()), /no kind/);
  const unknown = assertProtobufError(
    envelope("example.com/v1", "Widget", new Uint8Array()),
    /no kind "Widget"/,
  );
  assert.ok(unknown instanceof ProtobufUnknownKindError);
  // ObjectMeta (field 1 of Deployment) sent as a varint.
  assertProtobufError(
    envelope("apps/v1", "Deployment", Uint8Array.from([0x08, 0x01])),
    /wrong wire type 0.*metadata/,
  );
  // A string field whose length runs past its enclosing message.
  assertProtobufError(
    envelope("v1", "Namespace", Uint8Array.from([0x0a, 0x03, 0x0a, 0x05, 0x61])),
    /past end/,
  );
  // Map entry truncated.
  assertProtobufError(
    envelope("v1", "ConfigMap", Uint8Array.from([0x12, 0x04, 0x0a, 0x09, 0x61, 0x62])),
    /past end/,
  );
  // Bad quantity and IntOrString type.
  const quantity = lenField(1, Buffer.from("12xyz"));
  const rr = lenField(1, Buffer.concat([lenField(1, Buffer.from("cpu")), lenField(2, quantity)]));
  assertProtobufError(envelope("v1", "ResourceQuota", lenField(2, rr)), /invalid quantity "12xyz"/);
  // RawExtension bytes that are neither JSON nor protobuf.
  assertProtobufError(
    envelope("apps/v1", "ControllerRevision", lenField(2, lenField(1, Buffer.from("\x01\x02")))),
    /does not hold JSON/,
  );
  // Unterminated group, deep nesting.
  assertProtobufError(Buffer.from("k8s\0\x2b", "latin1"), /unterminated group/);
  const deep = Buffer.concat([Buffer.from("k8s\0", "latin1"), Buffer.alloc(100_000, 0x2b)]);
  assertProtobufError(deep, /nesting too deep|unterminated/);
});

test("deeply nested messages are refused quickly", () => {
  // Deployment.spec.template.spec ... nested through RawExtension envelopes recursively.
  let inner: Uint8Array = new Uint8Array();
  for (let i = 0; i < 300; i++) {
    const env = envelope("apps/v1", "ControllerRevision", lenField(2, lenField(1, inner)));
    inner = env;
  }
  const start = performance.now();
  assertProtobufError(inner, /nesting too deep/);
  assert.ok(performance.now() - start < 500);
});

test("random corruption of valid bodies never escapes as another error", () => {
  const bodies = [
    encodeObject({
      kind: "Pod",
      apiVersion: "v1",
      metadata: { name: "p", labels: { a: "b" }, creationTimestamp: "2024-01-01T00:00:00Z" },
      spec: {
        containers: [
          {
            name: "c",
            image: "i",
            ports: [{ containerPort: 80 }],
            resources: { limits: { cpu: "1" } },
          },
        ],
      },
      status: { startTime: "2024-01-01T00:00:00Z" },
    }),
    encodeObject({
      kind: "Lease",
      apiVersion: "coordination.k8s.io/v1",
      metadata: {},
      spec: { renewTime: "2024-01-01T00:00:00.5Z" },
    }),
  ];
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const start = performance.now();
  let failures = 0;
  for (let i = 0; i < 5000; i++) {
    const src = bodies[i % bodies.length] as Uint8Array;
    const b = Buffer.from(src);
    const edits = 1 + rand(4);
    for (let j = 0; j < edits; j++) b[4 + rand(b.length - 4)] = rand(256);
    const cut = rand(4) === 0 ? b.subarray(0, 4 + rand(b.length - 4)) : b;
    try {
      decodeObject(cut);
    } catch (e) {
      if (!(e instanceof ProtobufError)) throw e;
      failures++;
    }
  }
  assert.ok(failures > 0);
  assert.ok(performance.now() - start < 5000, "fast");
});

test("encoding refuses values of the wrong JSON type", () => {
  assert.throws(
    () => encodeObject({ kind: "Namespace", apiVersion: "v1", metadata: { name: 5 } }),
    (e: unknown) =>
      e instanceof ProtobufError && /metadata\.name: expected a string/.test(e.message),
  );
  assert.throws(
    () => encodeObject({ kind: "Deployment", apiVersion: "apps/v1", spec: { replicas: 1.5 } }),
    /spec\.replicas: expected an integer/,
  );
  assert.throws(() => encodeObject({ kind: "Widget", apiVersion: "v1" }), ProtobufUnknownKindError);
});

test("decoding a typical Deployment takes well under 50 µs", () => {
  const body = encodeObject({
    kind: "Deployment",
    apiVersion: "apps/v1",
    metadata: {
      name: "web",
      namespace: "default",
      labels: { app: "web", tier: "frontend" },
      annotations: { "deployment.kubernetes.io/revision": "1" },
      creationTimestamp: "2024-01-01T00:00:00Z",
    },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web" } },
        spec: {
          containers: [
            {
              name: "nginx",
              image: "nginx:1.27",
              ports: [{ containerPort: 80, protocol: "TCP" }],
              env: [{ name: "A", value: "1" }],
              resources: { requests: { cpu: "100m", memory: "128Mi" } },
              readinessProbe: { httpGet: { path: "/", port: 80 } },
            },
          ],
        },
      },
      strategy: {
        type: "RollingUpdate",
        rollingUpdate: { maxSurge: "25%", maxUnavailable: "25%" },
      },
    },
  });
  for (let i = 0; i < 2000; i++) decodeObject(body);
  const n = 20000;
  const start = performance.now();
  for (let i = 0; i < n; i++) decodeObject(body);
  const perDecode = ((performance.now() - start) * 1000) / n;
  const encStart = performance.now();
  const obj = decodeObject(body).object;
  for (let i = 0; i < n; i++) encodeObject(obj);
  const perEncode = ((performance.now() - encStart) * 1000) / n;
  console.log(
    `deployment (${body.length} bytes): decode ${perDecode.toFixed(1)} µs,` +
      ` encode ${perEncode.toFixed(1)} µs`,
  );
  assert.ok(perDecode < 50, `decode took ${perDecode} µs`);
});
