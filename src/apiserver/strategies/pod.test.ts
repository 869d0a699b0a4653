import { test } from "node:test";
import assert from "node:assert/strict";
import { body, create, meta, update } from "./harness.js";
import { imageTag, podQOSClass } from "./pod.js";
import type { KObject } from "../registry/types.js";

/** What `kubectl run web --image=nginx` sends. */
const runBody = (): KObject =>
  body({
    kind: "Pod",
    apiVersion: "v1",
    metadata: { name: "web", creationTimestamp: null, labels: { run: "web" } },
    spec: {
      containers: [{ name: "web", image: "nginx", resources: {} }],
      restartPolicy: "Always",
      dnsPolicy: "ClusterFirst",
    },
    status: {},
  });

const defaultedContainer = (extra: Record<string, unknown> = {}) => ({
  name: "web",
  image: "nginx",
  resources: {},
  imagePullPolicy: "Always",
  terminationMessagePath: "/dev/termination-log",
  terminationMessagePolicy: "File",
  ...extra,
});

test("kubectl run's pod is defaulted as upstream 1.32 creates it", () => {
  const { obj, errors } = create("/pods", runBody());
  assert.deepEqual(errors, []);
  assert.deepEqual(obj, {
    kind: "Pod",
    apiVersion: "v1",
    metadata: meta("web", { labels: { run: "web" } }),
    spec: {
      containers: [defaultedContainer()],
      dnsPolicy: "ClusterFirst",
      enableServiceLinks: true,
      restartPolicy: "Always",
      schedulerName: "default-scheduler",
      securityContext: {},
      terminationGracePeriodSeconds: 30,
    },
    status: { phase: "Pending", qosClass: "BestEffort" },
  });
});

test("image pull policy follows the image's tag", () => {
  assert.equal(imageTag("nginx"), "latest");
  assert.equal(imageTag("nginx:latest"), "latest");
  assert.equal(imageTag("nginx:1.27"), "1.27");
  assert.equal(imageTag("registry.k8s.io/pause:3.9"), "3.9");
  assert.equal(imageTag("localhost:5000/app"), "latest");
  assert.equal(imageTag(`nginx@sha256:${"a".repeat(64)}`), "");
  assert.equal(imageTag("Nginx"), "");
  assert.equal(imageTag(""), "");
  const body = runBody();
  (body.spec as { containers: unknown[] }).containers = [
    { name: "a", image: "nginx:1.27" },
    { name: "b", image: "nginx:latest" },
    { name: "c", image: "busybox", imagePullPolicy: "Never" },
  ];
  const spec = create("/pods", body).obj.spec as { containers: Array<{ imagePullPolicy: string }> };
  assert.deepEqual(
    spec.containers.map((c) => c.imagePullPolicy),
    ["IfNotPresent", "Always", "Never"],
  );
});

test("limits default the requests, quantities are served canonically, QoS follows", () => {
  const body = runBody();
  (body.spec as { containers: unknown[] }).containers = [
    { name: "web", image: "nginx", resources: { limits: { cpu: "0.5", memory: "1024Mi" } } },
  ];
  const { obj } = create("/pods", body);
  const spec = obj.spec as { containers: Array<{ resources: unknown }> };
  assert.deepEqual(spec.containers[0]!.resources, {
    limits: { cpu: "500m", memory: "1Gi" },
    requests: { cpu: "500m", memory: "1Gi" },
  });
  assert.deepEqual(obj.status, { phase: "Pending", qosClass: "Guaranteed" });

  const burstable = runBody();
  (burstable.spec as { containers: unknown[] }).containers = [
    { name: "web", image: "nginx", resources: { requests: { cpu: "100m" }, limits: { cpu: "1" } } },
  ];
  assert.deepEqual(create("/pods", burstable).obj.status, {
    phase: "Pending",
    qosClass: "Burstable",
  });
  assert.equal(
    podQOSClass({
      containers: [
        {
          resources: { limits: { cpu: "1", memory: "1Gi" }, requests: { cpu: "1", memory: "1Gi" } },
        },
      ],
      initContainers: [{ resources: { requests: { cpu: "1" } } }],
    }),
    "Burstable",
  );
});

test("probes, ports, env and volumes get upstream's defaults", () => {
  const body = runBody();
  const spec = body.spec as Record<string, unknown>;
  spec.containers = [
    {
      name: "web",
      image: "nginx:1.27",
      ports: [{ containerPort: 80 }],
      env: [{ name: "NODE", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } }],
      livenessProbe: { httpGet: { port: 80 } },
      readinessProbe: { tcpSocket: { port: 80 }, periodSeconds: 5 },
      startupProbe: { grpc: { port: 9000 } },
      volumeMounts: [{ name: "config", mountPath: "/etc/config" }],
    },
  ];
  spec.volumes = [
    { name: "config", configMap: { name: "cfg" } },
    { name: "scratch" },
    { name: "creds", secret: { secretName: "s" } },
    { name: "host", hostPath: { path: "/var/log" } },
    { name: "token", projected: { sources: [{ serviceAccountToken: { path: "token" } }] } },
  ];
  spec.serviceAccountName = "robot";
  const { obj, errors } = create("/pods", body);
  assert.deepEqual(errors, []);
  const out = obj.spec as Record<string, unknown>;
  assert.deepEqual((out.containers as unknown[])[0], {
    name: "web",
    image: "nginx:1.27",
    imagePullPolicy: "IfNotPresent",
    terminationMessagePath: "/dev/termination-log",
    terminationMessagePolicy: "File",
    resources: {},
    ports: [{ containerPort: 80, protocol: "TCP" }],
    env: [
      { name: "NODE", valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "spec.nodeName" } } },
    ],
    livenessProbe: {
      httpGet: { port: 80, path: "/", scheme: "HTTP" },
      timeoutSeconds: 1,
      periodSeconds: 10,
      successThreshold: 1,
      failureThreshold: 3,
    },
    readinessProbe: {
      tcpSocket: { port: 80 },
      timeoutSeconds: 1,
      periodSeconds: 5,
      successThreshold: 1,
      failureThreshold: 3,
    },
    startupProbe: {
      grpc: { port: 9000, service: "" },
      timeoutSeconds: 1,
      periodSeconds: 10,
      successThreshold: 1,
      failureThreshold: 3,
    },
    volumeMounts: [{ name: "config", mountPath: "/etc/config" }],
  });
  assert.deepEqual(out.volumes, [
    { name: "config", configMap: { name: "cfg", defaultMode: 420 } },
    { name: "scratch", emptyDir: {} },
    { name: "creds", secret: { secretName: "s", defaultMode: 420 } },
    { name: "host", hostPath: { path: "/var/log", type: "" } },
    {
      name: "token",
      projected: {
        sources: [{ serviceAccountToken: { path: "token", expirationSeconds: 3600 } }],
        defaultMode: 420,
      },
    },
  ]);
  assert.equal(out.serviceAccount, "robot");
});

test("hostNetwork pods get hostPort = containerPort", () => {
  const body = runBody();
  const spec = body.spec as Record<string, unknown>;
  spec.hostNetwork = true;
  spec.containers = [{ name: "web", image: "nginx", ports: [{ containerPort: 8080 }] }];
  const { obj, errors } = create("/pods", body);
  assert.deepEqual(errors, []);
  const c = (
    (obj.spec as Record<string, unknown>).containers as Array<Record<string, unknown>>
  )[0]!;
  assert.deepEqual(c.ports, [{ containerPort: 8080, hostPort: 8080, protocol: "TCP" }]);
});

test("scheduling-gated pods get the SchedulingGated condition", () => {
  const body = runBody();
  (body.spec as Record<string, unknown>).schedulingGates = [{ name: "example.com/gate" }];
  assert.deepEqual(create("/pods", body).obj.status, {
    phase: "Pending",
    qosClass: "BestEffort",
    conditions: [
      {
        type: "PodScheduled",
        status: "False",
        lastProbeTime: null,
        lastTransitionTime: "2025-01-01T00:00:00Z",
        reason: "SchedulingGated",
        message: "Scheduling is blocked due to non-empty scheduling gates",
      },
    ],
  });
});

test("a malformed quantity is upstream's 400", () => {
  const body = runBody();
  (body.spec as { containers: unknown[] }).containers = [
    { name: "web", image: "nginx", resources: { limits: { cpu: "1 core" } } },
  ];
  assert.throws(() => create("/pods", body), {
    message:
      "Pod in version \"v1\" cannot be handled as a Pod: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
  });
});

const podWith = (spec: Record<string, unknown>): KObject => ({
  kind: "Pod",
  apiVersion: "v1",
  metadata: { name: "p" },
  spec,
});

test("pod validation: the common errors with upstream's messages", () => {
  assert.deepEqual(create("/pods", podWith({ containers: [{ name: "web" }] })).errors, [
    "spec.containers[0].image: Required value",
  ]);
  assert.deepEqual(create("/pods", podWith({})).errors, ["spec.containers: Required value"]);
  assert.deepEqual(
    create("/pods", podWith({ containers: [{ name: "Web", image: "nginx" }] })).errors,
    [
      "spec.containers[0].name: Invalid value: \"Web\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
    ],
  );
  assert.deepEqual(
    create("/pods", podWith({ containers: [{ name: "my.app", image: "nginx" }] })).errors,
    ['spec.containers[0].name: Invalid value: "my.app": must not contain dots'],
  );
  assert.deepEqual(
    create(
      "/pods",
      podWith({
        containers: [
          { name: "web", image: "nginx" },
          { name: "web", image: "nginx" },
        ],
      }),
    ).errors,
    ['spec.containers[1].name: Duplicate value: "web"'],
  );
  assert.deepEqual(
    create(
      "/pods",
      podWith({ containers: [{ name: "web", image: "nginx", ports: [{ containerPort: 70000 }] }] }),
    ).errors,
    [
      "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
    ],
  );
  assert.deepEqual(
    create(
      "/pods",
      podWith({ containers: [{ name: "web", image: "nginx" }], restartPolicy: "Sometimes" }),
    ).errors,
    [
      'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
    ],
  );
  assert.deepEqual(
    create(
      "/pods",
      podWith({
        containers: [
          {
            name: "web",
            image: "nginx",
            resources: { requests: { cpu: "2" }, limits: { cpu: "1" } },
          },
        ],
      }),
    ).errors,
    [
      'spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1',
    ],
  );
  assert.deepEqual(
    create(
      "/pods",
      podWith({
        containers: [
          { name: "web", image: "nginx", volumeMounts: [{ name: "missing", mountPath: "/data" }] },
        ],
        volumes: [
          { name: "data", emptyDir: {} },
          { name: "data", emptyDir: {} },
        ],
      }),
    ).errors,
    [
      'spec.volumes[1].name: Duplicate value: "data"',
      'spec.containers[0].volumeMounts[0].name: Not found: "missing"',
    ],
  );
  assert.deepEqual(
    create(
      "/pods",
      podWith({
        containers: [{ name: "web", image: "nginx", resources: { limits: { cpu: "-1" } } }],
      }),
    ).errors,
    [
      'spec.containers[0].resources.limits[cpu]: Invalid value: "-1": must be greater than or equal to 0',
      'spec.containers[0].resources.requests[cpu]: Invalid value: "-1": must be greater than or equal to 0',
    ],
  );
  assert.deepEqual(
    create("/pods", podWith({ containers: [{ name: "web", image: "nginx", livenessProbe: {} }] }))
      .errors,
    ["spec.containers[0].livenessProbe: Required value: must specify a handler type"],
  );
});

test("pod updates may only change images, activeDeadlineSeconds and tolerations", () => {
  const { obj: stored } = create("/pods", runBody());
  const body = JSON.parse(JSON.stringify(stored)) as KObject;
  const spec = body.spec as Record<string, unknown>;
  (spec.containers as Array<Record<string, unknown>>)[0]!.image = "nginx:1.27";
  const ok = update("/pods", body, stored);
  assert.deepEqual(ok.errors, []);
  assert.deepEqual(ok.obj.status, stored.status);

  spec.restartPolicy = "Never";
  const bad = update("/pods", body, stored);
  assert.equal(bad.errors.length, 1);
  assert.match(
    bad.errors[0]!,
    /^spec: Forbidden: pod updates may not change fields other than `spec\.containers\[\*\]\.image`,`spec\.initContainers\[\*\]\.image`,`spec\.activeDeadlineSeconds`,`spec\.tolerations` \(only additions to existing tolerations\),`spec\.terminationGracePeriodSeconds` \(allow it to be set to 1 if it was previously negative\)\n/,
  );

  const removed = JSON.parse(JSON.stringify(stored)) as KObject;
  (removed.spec as Record<string, unknown>).containers = [];
  assert.deepEqual(update("/pods", removed, stored).errors.slice(-1), [
    "spec.containers: Forbidden: pod updates may not add or remove containers",
  ]);
});

test("pod templates are defaulted as templates (no Pod-only defaults)", () => {
  const { obj, errors } = create("/podtemplates", {
    kind: "PodTemplate",
    apiVersion: "v1",
    metadata: { name: "t" },
    template: {
      metadata: { labels: { a: "b" } },
      spec: { containers: [{ name: "c", image: "busybox", resources: { limits: { cpu: "1" } } }] },
    },
  });
  assert.deepEqual(errors, []);
  assert.deepEqual(obj.template, {
    metadata: { labels: { a: "b" }, creationTimestamp: null },
    spec: {
      containers: [
        {
          name: "c",
          image: "busybox",
          resources: { limits: { cpu: "1" } },
          imagePullPolicy: "Always",
          terminationMessagePath: "/dev/termination-log",
          terminationMessagePolicy: "File",
        },
      ],
      dnsPolicy: "ClusterFirst",
      restartPolicy: "Always",
      schedulerName: "default-scheduler",
      securityContext: {},
      terminationGracePeriodSeconds: 30,
    },
  });
});
