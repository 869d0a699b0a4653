import { test } from "node:test";
import assert from "node:assert/strict";
import { humanDuration, shortHumanDuration, translateTimestampSince } from "./format.js";
import { defaultTable, tableFor, tableOrDefault, type TableDef } from "./index.js";

const NOW = new Date("2024-06-01T12:00:00Z");
const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;
const ago = (ms: number): string =>
  new Date(NOW.getTime() - ms).toISOString().replace(".000Z", "Z");

function printer(group: string, kind: string): TableDef {
  const t = tableFor(group, kind);
  assert.ok(t, `no printer for ${group}/${kind}`);
  return t;
}
const cells = (group: string, kind: string, obj: object): unknown[] =>
  printer(group, kind).cells(obj, NOW);
const titles = (group: string, kind: string, wide = false): string[] =>
  printer(group, kind)
    .columns.filter((c) => wide || c.priority === 0)
    .map((c) => c.name);

test("humanDuration and shortHumanDuration", () => {
  const cases: [number, string][] = [
    [-2 * S, "<invalid>"],
    [-1500, "0s"],
    [0, "0s"],
    [5 * S, "5s"],
    [119 * S + 999, "119s"],
    [2 * M, "2m"],
    [2 * M + 26 * S, "2m26s"],
    [9 * M + 59 * S, "9m59s"],
    [10 * M + 30 * S, "10m"],
    [179 * M, "179m"],
    [3 * H, "3h"],
    [3 * H + 5 * M, "3h5m"],
    [8 * H + 5 * M, "8h"],
    [47 * H, "47h"],
    [48 * H, "2d"],
    [50 * H, "2d2h"],
    [8 * D, "8d"],
    [729 * D, "729d"],
    [730 * D, "2y"],
    [731 * D, "2y1d"],
    [8 * 365 * D + 100 * D, "8y"],
  ];
  for (const [ms, text] of cases) assert.equal(humanDuration(ms), text, `${ms}ms`);
  assert.equal(shortHumanDuration(59 * S), "59s");
  assert.equal(shortHumanDuration(61 * M), "1h");
  assert.equal(shortHumanDuration(400 * D), "1y");
  assert.equal(translateTimestampSince(undefined, NOW), "<unknown>");
  assert.equal(translateTimestampSince("0001-01-01T00:00:00Z", NOW), "<unknown>");
  assert.equal(translateTimestampSince(ago(90 * S), NOW), "90s");
});

const container = (name: string, image = `${name}:1`) => ({ name, image });

function pod(overrides: { spec?: object; status?: object; metadata?: object } = {}): object {
  return {
    metadata: { name: "web", creationTimestamp: ago(5 * M), ...overrides.metadata },
    spec: { containers: [container("app")], ...overrides.spec },
    status: overrides.status ?? {},
  };
}

const running = (name = "app", ready = true, restartCount = 0) => ({
  name,
  ready,
  restartCount,
  state: { running: { startedAt: ago(4 * M) } },
});

const podStatus = (p: object) => cells("", "Pod", p).slice(1, 4);

test("pod columns and a running pod", () => {
  assert.deepEqual(titles("", "Pod"), ["Name", "Ready", "Status", "Restarts", "Age"]);
  assert.deepEqual(titles("", "Pod", true).slice(5), [
    "IP",
    "Node",
    "Nominated Node",
    "Readiness Gates",
  ]);
  assert.equal(printer("", "Pod").columns[0]?.format, "name");
  assert.equal(printer("", "Pod").columns[3]?.type, "string");
  const p = pod({
    spec: { nodeName: "node-1" },
    status: { phase: "Running", podIP: "10.244.0.5", containerStatuses: [running()] },
  });
  assert.deepEqual(cells("", "Pod", p), [
    "web",
    "1/1",
    "Running",
    "0",
    "5m",
    "10.244.0.5",
    "node-1",
    "<none>",
    "<none>",
  ]);
});

test("pod restarts show when the last one happened", () => {
  const c = {
    ...running("app", true, 3),
    lastState: { terminated: { exitCode: 1, reason: "Error", finishedAt: ago(5 * M) } },
  };
  assert.deepEqual(podStatus(pod({ status: { phase: "Running", containerStatuses: [c] } })), [
    "1/1",
    "Running",
    "3 (5m ago)",
  ]);
  const noTime = { ...running("app", true, 2) };
  assert.deepEqual(podStatus(pod({ status: { phase: "Running", containerStatuses: [noTime] } })), [
    "1/1",
    "Running",
    "2",
  ]);
});

test("pod status reasons", () => {
  const waiting = (reason: string) => ({
    name: "app",
    ready: false,
    restartCount: 0,
    state: { waiting: { reason } },
  });
  assert.deepEqual(podStatus(pod({ status: { phase: "Pending" } })), ["0/1", "Pending", "0"]);
  assert.deepEqual(
    podStatus(
      pod({ status: { phase: "Pending", containerStatuses: [waiting("ContainerCreating")] } }),
    ),
    ["0/1", "ContainerCreating", "0"],
  );
  assert.deepEqual(
    podStatus(
      pod({
        status: {
          phase: "Running",
          containerStatuses: [
            {
              ...waiting("CrashLoopBackOff"),
              restartCount: 4,
              lastState: { terminated: { exitCode: 1, finishedAt: ago(70 * S) } },
            },
          ],
        },
      }),
    ),
    ["0/1", "CrashLoopBackOff", "4 (70s ago)"],
  );
  const terminated = (t: object) => ({
    name: "app",
    ready: false,
    restartCount: 0,
    state: { terminated: t },
  });
  assert.deepEqual(
    podStatus(
      pod({
        status: {
          phase: "Succeeded",
          containerStatuses: [terminated({ exitCode: 0, reason: "Completed" })],
        },
      }),
    ),
    ["0/1", "Completed", "0"],
  );
  assert.equal(
    podStatus(
      pod({ status: { phase: "Failed", containerStatuses: [terminated({ exitCode: 137 })] } }),
    )[1],
    "ExitCode:137",
  );
  assert.equal(
    podStatus(
      pod({
        status: { phase: "Failed", containerStatuses: [terminated({ exitCode: 0, signal: 9 })] },
      }),
    )[1],
    "Signal:9",
  );
  assert.equal(
    podStatus(pod({ status: { phase: "Failed", reason: "Evicted", message: "low on memory" } }))[1],
    "Evicted",
  );
  assert.equal(
    podStatus(
      pod({
        status: {
          phase: "Pending",
          conditions: [{ type: "PodScheduled", status: "False", reason: "SchedulingGated" }],
        },
      }),
    )[1],
    "SchedulingGated",
  );
});

test("pod with a completed container and a running one", () => {
  const two = (ready: boolean) =>
    pod({
      spec: { containers: [container("job"), container("app")] },
      status: {
        phase: "Running",
        conditions: [{ type: "Ready", status: ready ? "True" : "False" }],
        containerStatuses: [
          {
            name: "job",
            ready: false,
            restartCount: 0,
            state: { terminated: { exitCode: 0, reason: "Completed" } },
          },
          running("app"),
        ],
      },
    });
  assert.deepEqual(podStatus(two(true)), ["1/2", "Running", "0"]);
  assert.deepEqual(podStatus(two(false)), ["1/2", "NotReady", "0"]);
});

test("pod deletion: Terminating, and Unknown for a lost node", () => {
  const deleting = { deletionTimestamp: ago(10 * S) };
  assert.equal(
    podStatus(
      pod({ metadata: deleting, status: { phase: "Running", containerStatuses: [running()] } }),
    )[1],
    "Terminating",
  );
  assert.equal(
    podStatus(pod({ metadata: deleting, status: { phase: "Running", reason: "NodeLost" } }))[1],
    "Unknown",
  );
  assert.equal(
    podStatus(pod({ metadata: deleting, status: { phase: "Succeeded" } }))[1],
    "Succeeded",
  );
});

test("pod init container states", () => {
  const spec = { initContainers: [container("init-a"), container("init-b")] };
  const initRunning = { name: "init-a", ready: false, restartCount: 0, state: { running: {} } };
  assert.deepEqual(
    podStatus(pod({ spec, status: { phase: "Pending", initContainerStatuses: [initRunning] } })),
    ["0/1", "Init:0/2", "0"],
  );
  const done = {
    name: "init-a",
    ready: false,
    restartCount: 0,
    state: { terminated: { exitCode: 0 } },
  };
  const second = {
    name: "init-b",
    ready: false,
    restartCount: 0,
    state: { waiting: { reason: "PodInitializing" } },
  };
  assert.equal(
    podStatus(
      pod({ spec, status: { phase: "Pending", initContainerStatuses: [done, second] } }),
    )[1],
    "Init:1/2",
  );
  const crash = {
    name: "init-a",
    ready: false,
    restartCount: 2,
    state: { waiting: { reason: "CrashLoopBackOff" } },
    lastState: { terminated: { exitCode: 1, finishedAt: ago(3 * M) } },
  };
  assert.deepEqual(
    podStatus(pod({ spec, status: { phase: "Pending", initContainerStatuses: [crash] } })),
    ["0/1", "Init:CrashLoopBackOff", "2 (3m ago)"],
  );
  const failed = (t: object) => ({
    name: "init-a",
    ready: false,
    restartCount: 0,
    state: { terminated: t },
  });
  assert.equal(
    podStatus(
      pod({
        spec,
        status: {
          phase: "Failed",
          initContainerStatuses: [failed({ exitCode: 1, reason: "Error" })],
        },
      }),
    )[1],
    "Init:Error",
  );
  assert.equal(
    podStatus(
      pod({ spec, status: { phase: "Failed", initContainerStatuses: [failed({ exitCode: 2 })] } }),
    )[1],
    "Init:ExitCode:2",
  );
  assert.equal(
    podStatus(
      pod({
        spec,
        status: { phase: "Failed", initContainerStatuses: [failed({ exitCode: 2, signal: 15 })] },
      }),
    )[1],
    "Init:Signal:15",
  );
});

test("pod with a sidecar (restartable init container)", () => {
  const p = pod({
    spec: { initContainers: [{ ...container("proxy"), restartPolicy: "Always" }] },
    status: {
      phase: "Running",
      conditions: [{ type: "Initialized", status: "True" }],
      initContainerStatuses: [
        {
          name: "proxy",
          ready: true,
          started: true,
          restartCount: 1,
          state: { running: {} },
          lastState: { terminated: { exitCode: 1, finishedAt: ago(2 * H) } },
        },
      ],
      containerStatuses: [running()],
    },
  });
  assert.deepEqual(podStatus(p), ["2/2", "Running", "1 (120m ago)"]);
});

test("pod readiness gates and wide cells", () => {
  const p = pod({
    spec: { readinessGates: [{ conditionType: "a" }, { conditionType: "b" }] },
    status: {
      phase: "Pending",
      podIPs: [{ ip: "fd00::5" }],
      nominatedNodeName: "node-2",
      conditions: [
        { type: "a", status: "True" },
        { type: "b", status: "False" },
      ],
    },
  });
  assert.deepEqual(cells("", "Pod", p).slice(5), ["fd00::5", "<none>", "node-2", "1/2"]);
});

function service(spec: object, status: object = {}): object {
  return {
    metadata: { name: "svc", creationTimestamp: ago(3 * D) },
    spec: { selector: { app: "web", tier: "fe" }, ...spec },
    status,
  };
}

test("service types, addresses and ports", () => {
  assert.deepEqual(titles("", "Service", true), [
    "Name",
    "Type",
    "Cluster-IP",
    "External-IP",
    "Port(s)",
    "Age",
    "Selector",
  ]);
  assert.deepEqual(
    cells(
      "",
      "Service",
      service({
        type: "ClusterIP",
        clusterIP: "10.96.0.10",
        clusterIPs: ["10.96.0.10"],
        ports: [
          { port: 53, protocol: "UDP" },
          { port: 53, protocol: "TCP" },
        ],
      }),
    ),
    ["svc", "ClusterIP", "10.96.0.10", "<none>", "53/UDP,53/TCP", "3d", "app=web,tier=fe"],
  );
  assert.deepEqual(
    cells(
      "",
      "Service",
      service({
        type: "NodePort",
        clusterIP: "10.96.1.2",
        externalIPs: ["1.2.3.4"],
        ports: [{ port: 80, nodePort: 30080, protocol: "TCP" }],
      }),
    ).slice(1, 5),
    ["NodePort", "10.96.1.2", "1.2.3.4", "80:30080/TCP"],
  );
  const lb = (status: object, externalIPs?: string[]) =>
    cells(
      "",
      "Service",
      service(
        {
          type: "LoadBalancer",
          clusterIP: "10.96.1.3",
          externalIPs,
          ports: [{ port: 443, nodePort: 31443, protocol: "TCP" }],
        },
        status,
      ),
    )[3];
  assert.equal(lb({}), "<pending>");
  assert.equal(
    lb({
      loadBalancer: {
        ingress: [{ ip: "203.0.113.9" }, { hostname: "lb.example.com" }, { ip: "203.0.113.1" }],
      },
    }),
    "203.0.113.1,203.0.113.9,lb.example.com",
  );
  assert.equal(
    lb({ loadBalancer: { ingress: [{ ip: "203.0.113.9" }] } }, ["1.2.3.4"]),
    "203.0.113.9,1.2.3.4",
  );
  assert.deepEqual(
    cells(
      "",
      "Service",
      service({ type: "ExternalName", externalName: "db.example.com", selector: undefined }),
    ),
    ["svc", "ExternalName", "<none>", "db.example.com", "<none>", "3d", "<none>"],
  );
  assert.equal(
    cells("", "Service", service({ clusterIP: "None", ports: [{ port: 80 }] }))[2],
    "None",
  );
  assert.equal(
    cells("", "Service", service({ clusterIP: "None", ports: [{ port: 80 }] }))[4],
    "80/TCP",
  );
});

function node(overrides: { labels?: object; spec?: object; conditions?: object[] } = {}): object {
  return {
    metadata: { name: "node-1", creationTimestamp: ago(10 * D), labels: overrides.labels ?? {} },
    spec: overrides.spec ?? {},
    status: {
      conditions: overrides.conditions ?? [{ type: "Ready", status: "True" }],
      addresses: [
        { type: "Hostname", address: "node-1" },
        { type: "InternalIP", address: "192.168.1.10" },
      ],
      nodeInfo: {
        kubeletVersion: "v1.32.0",
        osImage: "Debian GNU/Linux 12 (bookworm)",
        kernelVersion: "6.1.0-18-amd64",
        containerRuntimeVersion: "containerd://1.7.13",
      },
    },
  };
}

test("node status, roles and wide cells", () => {
  assert.deepEqual(titles("", "Node"), ["Name", "Status", "Roles", "Age", "Version"]);
  assert.deepEqual(
    cells("", "Node", node({ labels: { "node-role.kubernetes.io/control-plane": "" } })),
    [
      "node-1",
      "Ready",
      "control-plane",
      "10d",
      "v1.32.0",
      "192.168.1.10",
      "<none>",
      "Debian GNU/Linux 12 (bookworm)",
      "6.1.0-18-amd64",
      "containerd://1.7.13",
    ],
  );
  assert.deepEqual(cells("", "Node", node({ spec: { unschedulable: true } })).slice(1, 3), [
    "Ready,SchedulingDisabled",
    "<none>",
  ]);
  assert.equal(
    cells("", "Node", node({ conditions: [{ type: "Ready", status: "Unknown" }] }))[1],
    "NotReady",
  );
  assert.equal(cells("", "Node", node({ conditions: [] }))[1], "Unknown");
  assert.equal(
    cells(
      "",
      "Node",
      node({
        labels: {
          "node-role.kubernetes.io/worker": "",
          "node-role.kubernetes.io/": "",
          "kubernetes.io/role": "infra",
          "node-role.kubernetes.io/control-plane": "true",
        },
      }),
    )[2],
    "control-plane,infra,worker",
  );
});

test("workload controllers", () => {
  const template = {
    spec: { containers: [container("nginx", "nginx:1.25"), container("log", "busybox")] },
  };
  assert.deepEqual(titles("apps", "Deployment", true), [
    "Name",
    "Ready",
    "Up-to-date",
    "Available",
    "Age",
    "Containers",
    "Images",
    "Selector",
  ]);
  assert.deepEqual(
    cells("apps", "Deployment", {
      metadata: { name: "web", creationTimestamp: ago(146 * S) },
      spec: { replicas: 3, selector: { matchLabels: { app: "web" } }, template },
      status: { replicas: 3, readyReplicas: 2, updatedReplicas: 3, availableReplicas: 2 },
    }),
    ["web", "2/3", 3, 2, "2m26s", "nginx,log", "nginx:1.25,busybox", "app=web"],
  );
  assert.deepEqual(
    cells("apps", "Deployment", {
      metadata: { name: "web", creationTimestamp: ago(M) },
      spec: { selector: { matchLabels: { app: "web" } }, template },
    }).slice(1, 4),
    ["0/1", 0, 0],
  );
  assert.deepEqual(
    cells("apps", "ReplicaSet", {
      metadata: { name: "web-5d4f", creationTimestamp: ago(2 * H) },
      spec: {
        replicas: 2,
        selector: {
          matchLabels: { "pod-template-hash": "5d4f", app: "web" },
          matchExpressions: [
            { key: "env", operator: "In", values: ["prod", "dev"] },
            { key: "canary", operator: "DoesNotExist" },
          ],
        },
        template,
      },
      status: { replicas: 2, readyReplicas: 1 },
    }),
    [
      "web-5d4f",
      2,
      2,
      1,
      "120m",
      "nginx,log",
      "nginx:1.25,busybox",
      "app=web,!canary,env in (dev,prod),pod-template-hash=5d4f",
    ],
  );
  assert.deepEqual(
    cells("apps", "StatefulSet", {
      metadata: { name: "db", creationTimestamp: ago(D) },
      spec: { replicas: 3, template },
      status: { readyReplicas: 3 },
    }),
    ["db", "3/3", "24h", "nginx,log", "nginx:1.25,busybox"],
  );
  assert.deepEqual(
    cells("apps", "DaemonSet", {
      metadata: { name: "agent", creationTimestamp: ago(D) },
      spec: {
        selector: { matchLabels: { app: "agent" } },
        template: { spec: { ...template.spec, nodeSelector: { "kubernetes.io/os": "linux" } } },
      },
      status: {
        desiredNumberScheduled: 2,
        currentNumberScheduled: 2,
        numberReady: 1,
        updatedNumberScheduled: 2,
        numberAvailable: 1,
      },
    }),
    [
      "agent",
      2,
      2,
      1,
      2,
      1,
      "kubernetes.io/os=linux",
      "24h",
      "nginx,log",
      "nginx:1.25,busybox",
      "app=agent",
    ],
  );
  assert.deepEqual(
    cells("", "ReplicationController", {
      metadata: { name: "rc", creationTimestamp: ago(M) },
      spec: { replicas: 2, selector: { app: "rc" }, template },
      status: { replicas: 2, readyReplicas: 2 },
    }),
    ["rc", 2, 2, 2, "60s", "nginx,log", "nginx:1.25,busybox", "app=rc"],
  );
  assert.deepEqual(
    cells("apps", "ControllerRevision", {
      metadata: {
        name: "agent-6b7d",
        creationTimestamp: ago(D),
        ownerReferences: [
          { apiVersion: "apps/v1", kind: "DaemonSet", name: "agent", uid: "u", controller: true },
        ],
      },
      revision: 2,
    }),
    ["agent-6b7d", "daemonset.apps/agent", 2, "24h"],
  );
});

test("jobs and cron jobs", () => {
  const template = { spec: { containers: [container("pi", "perl:5.34")] } };
  const selector = { matchLabels: { "batch.kubernetes.io/controller-uid": "abc" } };
  assert.deepEqual(titles("batch", "Job"), ["Name", "Status", "Completions", "Duration", "Age"]);
  assert.deepEqual(
    cells("batch", "Job", {
      metadata: { name: "pi", creationTimestamp: ago(5 * M) },
      spec: { completions: 1, parallelism: 1, selector, template },
      status: {
        succeeded: 1,
        startTime: ago(5 * M),
        completionTime: ago(5 * M - 34 * S),
        conditions: [{ type: "Complete", status: "True" }],
      },
    }),
    [
      "pi",
      "Complete",
      "1/1",
      "34s",
      "5m",
      "pi",
      "perl:5.34",
      "batch.kubernetes.io/controller-uid=abc",
    ],
  );
  assert.deepEqual(
    cells("batch", "Job", {
      metadata: { name: "work", creationTimestamp: ago(3 * M) },
      spec: { parallelism: 3, template },
      status: { startTime: ago(3 * M), active: 3 },
    }).slice(1, 4),
    ["Running", "0/1 of 3", "3m"],
  );
  assert.deepEqual(
    cells("batch", "Job", {
      metadata: { name: "x", creationTimestamp: ago(M) },
      spec: { template, suspend: true },
      status: { conditions: [{ type: "Suspended", status: "True" }] },
    }).slice(1, 4),
    ["Suspended", "0/1", ""],
  );
  assert.deepEqual(
    cells("batch", "Job", {
      metadata: { name: "x", creationTimestamp: ago(M), deletionTimestamp: ago(S) },
      spec: { template },
      status: { conditions: [{ type: "Failed", status: "True" }] },
    })[1],
    "Failed",
  );
  assert.deepEqual(
    cells("batch", "CronJob", {
      metadata: { name: "hello", creationTimestamp: ago(2 * D) },
      spec: {
        schedule: "*/5 * * * *",
        jobTemplate: { spec: { template } },
      },
      status: { active: [{ name: "hello-1" }], lastScheduleTime: ago(4 * M) },
    }),
    ["hello", "*/5 * * * *", "<none>", "False", 1, "4m", "2d", "pi", "perl:5.34", "<none>"],
  );
});

test("horizontal pod autoscalers in v2 and v1 form", () => {
  assert.deepEqual(titles("autoscaling", "HorizontalPodAutoscaler"), [
    "Name",
    "Reference",
    "Targets",
    "MinPods",
    "MaxPods",
    "Replicas",
    "Age",
  ]);
  const base = {
    metadata: { name: "web", creationTimestamp: ago(H) },
    spec: {
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "web" },
      maxReplicas: 10,
    },
  };
  assert.deepEqual(
    cells("autoscaling", "HorizontalPodAutoscaler", {
      ...base,
      spec: {
        ...base.spec,
        minReplicas: 2,
        metrics: [
          {
            type: "Resource",
            resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 50 } },
          },
        ],
      },
      status: {
        currentReplicas: 3,
        currentMetrics: [
          {
            type: "Resource",
            resource: { name: "cpu", current: { averageUtilization: 42, averageValue: "100m" } },
          },
        ],
      },
    }),
    ["web", "Deployment/web", "cpu: 42%/50%", "2", 10, 3, "60m"],
  );
  assert.deepEqual(
    cells("autoscaling", "HorizontalPodAutoscaler", {
      ...base,
      status: { currentReplicas: 0 },
    }).slice(2, 4),
    ["cpu: <unknown>/80%", "1"],
  );
  assert.equal(
    cells("autoscaling", "HorizontalPodAutoscaler", {
      ...base,
      spec: { ...base.spec, targetCPUUtilizationPercentage: 70 },
      status: { currentReplicas: 1, currentCPUUtilizationPercentage: 12 },
    })[2],
    "cpu: 12%/70%",
  );
  assert.equal(
    cells("autoscaling", "HorizontalPodAutoscaler", {
      ...base,
      spec: {
        ...base.spec,
        metrics: [
          {
            type: "Resource",
            resource: { name: "memory", target: { type: "AverageValue", averageValue: "500Mi" } },
          },
          {
            type: "Pods",
            pods: { metric: { name: "qps" }, target: { type: "AverageValue", averageValue: "10" } },
          },
          {
            type: "External",
            external: { metric: { name: "queue" }, target: { type: "Value", value: "30" } },
          },
        ],
      },
      status: { currentReplicas: 1 },
    })[2],
    "memory: <unknown>/500Mi, <unknown>/10 + 1 more...",
  );
});

test("endpoints and endpoint slices", () => {
  const ep = (subsets: object[] | undefined) =>
    cells("", "Endpoints", { metadata: { name: "web", creationTimestamp: ago(M) }, subsets })[1];
  assert.equal(ep(undefined), "<none>");
  assert.equal(
    ep([{ addresses: [{ ip: "10.0.0.1" }, { ip: "10.0.0.2" }], ports: [{ port: 80 }] }]),
    "10.0.0.1:80,10.0.0.2:80",
  );
  assert.equal(
    ep([
      {
        addresses: [{ ip: "10.0.0.1" }, { ip: "10.0.0.2" }, { ip: "fd00::3" }],
        ports: [{ port: 80 }, { port: 443 }],
      },
    ]),
    "10.0.0.1:80,10.0.0.2:80,[fd00::3]:80 + 3 more...",
  );
  assert.equal(ep([{ addresses: [{ ip: "10.0.0.9" }] }]), "10.0.0.9");
  assert.deepEqual(
    cells("discovery.k8s.io", "EndpointSlice", {
      metadata: { name: "web-abc", creationTimestamp: ago(M) },
      addressType: "IPv4",
      ports: [{ port: 80 }, { name: "metrics" }, {}, { port: 9000 }],
      endpoints: [{ addresses: ["10.0.0.1"] }, { addresses: ["10.0.0.2"] }],
    }),
    ["web-abc", "IPv4", "80,metrics,* + 1 more...", "10.0.0.1,10.0.0.2", "60s"],
  );
  assert.equal(
    cells("discovery.k8s.io", "EndpointSlice", {
      metadata: { name: "e" },
      addressType: "IPv4",
      endpoints: [],
    })[3],
    "<unset>",
  );
});

test("events in core and events.k8s.io form", () => {
  assert.deepEqual(titles("", "Event"), ["Last Seen", "Type", "Reason", "Object", "Message"]);
  assert.deepEqual(titles("", "Event", true), [
    "Last Seen",
    "Type",
    "Reason",
    "Object",
    "Subobject",
    "Source",
    "Message",
    "First Seen",
    "Count",
    "Name",
  ]);
  const core = {
    metadata: { name: "web.17d", creationTimestamp: ago(10 * M) },
    involvedObject: {
      kind: "Pod",
      name: "web",
      namespace: "default",
      fieldPath: "spec.containers{app}",
    },
    reason: "Pulled",
    message: "Successfully pulled image\n",
    source: { component: "kubelet", host: "node-1" },
    firstTimestamp: ago(10 * M),
    lastTimestamp: ago(2 * M),
    count: 4,
    type: "Normal",
  };
  assert.deepEqual(cells("", "Event", core), [
    "2m",
    "Normal",
    "Pulled",
    "pod/web",
    "spec.containers{app}",
    "kubelet, node-1",
    "Successfully pulled image",
    "10m",
    4,
    "web.17d",
  ]);
  const v1 = {
    metadata: { name: "web.18e", creationTimestamp: ago(M) },
    eventTime: ago(M).replace("Z", ".000000Z"),
    reportingController: "default-scheduler",
    reportingInstance: "default-scheduler-node-1",
    action: "Binding",
    reason: "Scheduled",
    regarding: { kind: "Pod", name: "web", namespace: "default" },
    note: "Successfully assigned default/web to node-1",
    type: "Normal",
  };
  assert.deepEqual(cells("events.k8s.io", "Event", v1), [
    "60s",
    "Normal",
    "Scheduled",
    "pod/web",
    "",
    "default-scheduler, default-scheduler-node-1",
    "Successfully assigned default/web to node-1",
    "60s",
    1,
    "web.18e",
  ]);
  const series = {
    ...v1,
    series: { count: 7, lastObservedTime: ago(20 * S).replace("Z", ".000000Z") },
  };
  assert.deepEqual(cells("events.k8s.io", "Event", series).slice(0, 1), ["20s"]);
  assert.equal(cells("events.k8s.io", "Event", series)[8], 7);
});

test("config, storage and access objects", () => {
  const meta = (name: string, extra: object = {}) => ({
    name,
    creationTimestamp: ago(D),
    ...extra,
  });
  assert.deepEqual(
    cells("", "ConfigMap", {
      metadata: meta("cfg"),
      data: { a: "1", b: "2" },
      binaryData: { c: "AA==" },
    }),
    ["cfg", 3, "24h"],
  );
  assert.deepEqual(
    cells("", "Secret", {
      metadata: meta("s"),
      type: "kubernetes.io/tls",
      data: { "tls.crt": "", "tls.key": "" },
    }),
    ["s", "kubernetes.io/tls", 2, "24h"],
  );
  assert.deepEqual(cells("", "ServiceAccount", { metadata: meta("default") }), [
    "default",
    0,
    "24h",
  ]);
  assert.deepEqual(
    cells("", "Namespace", { metadata: meta("kube-system"), status: { phase: "Active" } }),
    ["kube-system", "Active", "24h"],
  );
  assert.deepEqual(
    cells("", "PersistentVolume", {
      metadata: meta("pv1"),
      spec: {
        capacity: { storage: "10Gi" },
        accessModes: ["ReadWriteMany", "ReadWriteOnce"],
        persistentVolumeReclaimPolicy: "Delete",
        claimRef: { namespace: "default", name: "data" },
        storageClassName: "standard",
      },
      status: { phase: "Bound" },
    }),
    [
      "pv1",
      "10Gi",
      "RWO,RWX",
      "Delete",
      "Bound",
      "default/data",
      "standard",
      "<unset>",
      "",
      "24h",
      "Filesystem",
    ],
  );
  assert.deepEqual(
    cells("", "PersistentVolumeClaim", {
      metadata: meta("data"),
      spec: {
        accessModes: ["ReadWriteOnce"],
        resources: { requests: { storage: "1Gi" } },
        storageClassName: "standard",
      },
      status: { phase: "Pending" },
    }),
    ["data", "Pending", "", "", "", "standard", "<unset>", "24h", "Filesystem"],
  );
  assert.deepEqual(
    cells("", "PersistentVolumeClaim", {
      metadata: meta("data"),
      spec: { volumeName: "pv1", volumeMode: "Block" },
      status: { phase: "Bound", capacity: { storage: "10Gi" }, accessModes: ["ReadWriteOncePod"] },
    }),
    ["data", "Bound", "pv1", "10Gi", "RWOP", "", "<unset>", "24h", "Block"],
  );
  assert.deepEqual(
    cells("", "ResourceQuota", {
      metadata: meta("q"),
      status: {
        hard: { pods: "10", "limits.cpu": "2", "requests.cpu": "1", "limits.memory": "2Gi" },
        used: { pods: "3", "limits.cpu": "500m", "requests.cpu": "250m" },
      },
    }),
    ["q", "pods: 3/10, requests.cpu: 250m/1", "limits.cpu: 500m/2, limits.memory: 0/2Gi", "24h"],
  );
  assert.deepEqual(
    cells("storage.k8s.io", "StorageClass", {
      metadata: meta("standard", {
        annotations: { "storageclass.kubernetes.io/is-default-class": "true" },
      }),
      provisioner: "rancher.io/local-path",
      volumeBindingMode: "WaitForFirstConsumer",
    }),
    ["standard (default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer", false, "24h"],
  );
  assert.deepEqual(
    cells("rbac.authorization.k8s.io", "ClusterRoleBinding", {
      metadata: meta("admins"),
      roleRef: {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "ClusterRole",
        name: "cluster-admin",
      },
      subjects: [
        { kind: "Group", name: "system:masters" },
        { kind: "User", name: "alice" },
        { kind: "ServiceAccount", name: "ci", namespace: "build" },
        { kind: "User", name: "bob" },
      ],
    }),
    ["admins", "ClusterRole/cluster-admin", "24h", "alice, bob", "system:masters", "build/ci"],
  );
  assert.deepEqual(
    cells("certificates.k8s.io", "CertificateSigningRequest", {
      metadata: meta("csr-1"),
      spec: {
        signerName: "kubernetes.io/kube-apiserver-client",
        username: "alice",
        expirationSeconds: 86400,
        request: "",
        usages: [],
      },
      status: { conditions: [{ type: "Approved", status: "True" }], certificate: "LS0t" },
    }),
    ["csr-1", "24h", "kubernetes.io/kube-apiserver-client", "alice", "24h", "Approved,Issued"],
  );
  assert.deepEqual(
    cells("policy", "PodDisruptionBudget", {
      metadata: meta("pdb"),
      spec: { minAvailable: "50%" },
      status: { disruptionsAllowed: 1 },
    }),
    ["pdb", "50%", "N/A", 1, "24h"],
  );
  assert.deepEqual(
    cells("networking.k8s.io", "Ingress", {
      metadata: meta("ing"),
      spec: {
        ingressClassName: "nginx",
        rules: [{ host: "a.example.com" }, {}],
        tls: [{ hosts: ["a.example.com"] }],
      },
      status: { loadBalancer: { ingress: [{ ip: "172.18.0.2" }] } },
    }),
    ["ing", "nginx", "a.example.com", "172.18.0.2", "80, 443", "24h"],
  );
  assert.deepEqual(
    cells("networking.k8s.io", "NetworkPolicy", {
      metadata: meta("deny"),
      spec: { podSelector: {} },
    }),
    ["deny", "<none>", "24h"],
  );
  assert.deepEqual(
    cells("scheduling.k8s.io", "PriorityClass", {
      metadata: meta("system-node-critical"),
      value: 2000001000,
    }),
    ["system-node-critical", 2000001000, false, "24h", "PreemptLowerPriority"],
  );
  assert.deepEqual(
    cells("coordination.k8s.io", "Lease", {
      metadata: meta("node-1"),
      spec: { holderIdentity: "node-1" },
    }),
    ["node-1", "node-1", "24h"],
  );
  assert.deepEqual(
    cells("", "ComponentStatus", {
      metadata: { name: "etcd-0" },
      conditions: [{ type: "Healthy", status: "True", message: "ok" }],
    }),
    ["etcd-0", "Healthy", "ok", ""],
  );
  assert.deepEqual(
    cells("", "PodTemplate", {
      metadata: meta("t"),
      template: {
        metadata: { labels: { b: "2", a: "1" } },
        spec: { containers: [container("c", "img")] },
      },
    }),
    ["t", "c", "img", "a=1,b=2"],
  );
  assert.deepEqual(
    cells("storage.k8s.io", "CSIDriver", { metadata: meta("csi.example.com"), spec: {} }),
    ["csi.example.com", true, false, false, "<unset>", false, "Persistent", "24h"],
  );
});

test("kinds without a printer use the default table", () => {
  for (const [group, kind] of [
    ["rbac.authorization.k8s.io", "Role"],
    ["rbac.authorization.k8s.io", "ClusterRole"],
    ["", "LimitRange"],
    ["example.com", "Widget"],
  ] as const) {
    assert.equal(tableFor(group, kind), undefined, kind);
    assert.equal(tableOrDefault(group, kind), defaultTable);
  }
  assert.equal(tableFor("", "toString"), undefined);
  assert.deepEqual(
    defaultTable.columns.map((c) => [c.name, c.type, c.format, c.priority]),
    [
      ["Name", "string", "name", 0],
      ["Created At", "date", "", 0],
    ],
  );
  assert.deepEqual(
    defaultTable.cells(
      { metadata: { name: "admin", creationTimestamp: "2024-05-01T08:09:10Z" } },
      NOW,
    ),
    ["admin", "2024-05-01T08:09:10Z"],
  );
  assert.deepEqual(defaultTable.cells({ metadata: { name: "x" } }, NOW), [
    "x",
    "0001-01-01T00:00:00Z",
  ]);
});

test("every printer fills one cell per column and names its first column", () => {
  const kinds: [string, string][] = [
    ["", "Pod"],
    ["", "Service"],
    ["", "Node"],
    ["", "Event"],
    ["events.k8s.io", "Event"],
    ["apps", "Deployment"],
    ["apps", "ReplicaSet"],
    ["apps", "DaemonSet"],
    ["apps", "StatefulSet"],
    ["batch", "Job"],
    ["batch", "CronJob"],
    ["autoscaling", "HorizontalPodAutoscaler"],
    ["storage.k8s.io", "VolumeAttachment"],
    ["storage.k8s.io", "CSINode"],
    ["storage.k8s.io", "CSIStorageCapacity"],
    ["node.k8s.io", "RuntimeClass"],
    ["networking.k8s.io", "IngressClass"],
    ["rbac.authorization.k8s.io", "RoleBinding"],
  ];
  for (const [group, kind] of kinds) {
    const t = printer(group, kind);
    const row = t.cells({ metadata: { name: "x", creationTimestamp: ago(S) } }, NOW);
    assert.equal(row.length, t.columns.length, `${group}/${kind}`);
    assert.ok(
      t.columns.some((c) => c.format === "name"),
      `${group}/${kind}`,
    );
  }
});
