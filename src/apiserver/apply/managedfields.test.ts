import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { isStatusError, StatusError } from "../../api/status.js";
import type { KObject } from "../registry/types.js";
import {
  LAST_APPLIED_ANNOTATION,
  managerFromUserAgent,
  serverSideApply,
  trackUpdate,
  type ManagedContext,
} from "./managedfields.js";

const T0 = new Date("2024-05-01T10:00:00.700Z");
const T1 = new Date("2024-05-01T10:05:00Z");
const T2 = new Date("2024-05-01T10:10:00Z");

const deploy = (manager: string, now = T0): ManagedContext => ({
  typeName: "io.k8s.api.apps.v1.Deployment",
  apiVersion: "apps/v1",
  manager,
  now,
});
const apply = (manager: string, now = T1, force = false) => ({ ...deploy(manager, now), force });

/** A Deployment as the registry stores it after `kubectl create deployment web --image=nginx`. */
function created(): KObject {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name: "web",
      namespace: "default",
      uid: "u-1",
      resourceVersion: "5",
      generation: 1,
      creationTimestamp: "2024-05-01T10:00:00Z",
      labels: { app: "web" },
    },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { creationTimestamp: null, labels: { app: "web" } },
        spec: {
          containers: [
            {
              name: "nginx",
              image: "nginx",
              resources: {},
              terminationMessagePath: "/dev/termination-log",
              terminationMessagePolicy: "File",
              imagePullPolicy: "Always",
            },
          ],
          restartPolicy: "Always",
          terminationGracePeriodSeconds: 30,
          dnsPolicy: "ClusterFirst",
          securityContext: {},
          schedulerName: "default-scheduler",
        },
      },
      strategy: {
        type: "RollingUpdate",
        rollingUpdate: { maxUnavailable: "25%", maxSurge: "25%" },
      },
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
    },
    status: {},
  };
}

const CREATED_FIELDS = {
  "f:metadata": { "f:labels": { ".": {}, "f:app": {} } },
  "f:spec": {
    "f:progressDeadlineSeconds": {},
    "f:replicas": {},
    "f:revisionHistoryLimit": {},
    "f:selector": {},
    "f:strategy": {
      "f:rollingUpdate": { ".": {}, "f:maxSurge": {}, "f:maxUnavailable": {} },
      "f:type": {},
    },
    "f:template": {
      "f:metadata": { "f:labels": { ".": {}, "f:app": {} } },
      "f:spec": {
        "f:containers": {
          'k:{"name":"nginx"}': {
            ".": {},
            "f:image": {},
            "f:imagePullPolicy": {},
            "f:name": {},
            "f:resources": {},
            "f:terminationMessagePath": {},
            "f:terminationMessagePolicy": {},
          },
        },
        "f:dnsPolicy": {},
        "f:restartPolicy": {},
        "f:schedulerName": {},
        "f:securityContext": {},
        "f:terminationGracePeriodSeconds": {},
      },
    },
  },
};

/** An apply configuration like kubectl apply --server-side sends (ssa1.server.log). */
function config(
  overrides: { replicas?: number; image?: string; labels?: Record<string, string> } = {},
): KObject {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { labels: overrides.labels ?? { app: "web" }, name: "web", namespace: "default" },
    spec: {
      replicas: overrides.replicas ?? 2,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web" } },
        spec: { containers: [{ image: overrides.image ?? "nginx:1.26", name: "nginx" }] },
      },
    },
  };
}

type Spec = {
  replicas?: number;
  template: {
    metadata: { labels?: Record<string, string> };
    spec: { containers: Array<Record<string, unknown>> };
  };
};
const spec = (o: KObject): Spec => o.spec as Spec;
const entries = (o: KObject) => o.metadata?.managedFields ?? [];
const entry = (o: KObject, manager: string) => entries(o).find((e) => e.manager === manager);

function conflictOf(fn: () => unknown): StatusError {
  try {
    fn();
  } catch (e) {
    assert.ok(isStatusError(e, "Conflict"), String(e));
    return e;
  }
  assert.fail("expected a conflict");
}

describe("trackUpdate", () => {
  it("records a create as the creator's Update of every field it set, defaults included", () => {
    const obj = trackUpdate(undefined, created(), deploy("kubectl-create"));
    assert.deepEqual(entries(obj), [
      {
        manager: "kubectl-create",
        operation: "Update",
        apiVersion: "apps/v1",
        time: "2024-05-01T10:00:00Z",
        fieldsType: "FieldsV1",
        fieldsV1: CREATED_FIELDS,
      },
    ]);
    // Upstream's key order, in the entry and in the field set.
    assert.deepEqual(Object.keys(entries(obj)[0]!), [
      "manager",
      "operation",
      "apiVersion",
      "time",
      "fieldsType",
      "fieldsV1",
    ]);
    assert.equal(JSON.stringify(entries(obj)[0]!.fieldsV1), JSON.stringify(CREATED_FIELDS));
  });

  it("gives objects made from one template the same created fields, and others their own", () => {
    const fieldsOf = (obj: KObject) =>
      JSON.stringify(entries(trackUpdate(undefined, obj, deploy("m")))[0]!.fieldsV1);
    const fromTemplate = (labels: Record<string, string>) => {
      const obj = created();
      delete obj.metadata!.name;
      obj.metadata!.generateName = "web-";
      obj.metadata!.labels = labels;
      return obj;
    };
    const expected = JSON.stringify({
      "f:metadata": { "f:generateName": {}, ...CREATED_FIELDS["f:metadata"] },
      "f:spec": CREATED_FIELDS["f:spec"],
    });
    assert.equal(fieldsOf(fromTemplate({ app: "web" })), expected);
    assert.equal(fieldsOf(fromTemplate({ app: "web" })), expected);
    assert.match(fieldsOf(fromTemplate({ app: "web", tier: "front" })), /"f:tier":\{\}/);
    assert.equal(fieldsOf(fromTemplate({ app: "web" })), expected);
  });

  it("moves changed fields to the writer; an unchanged write keeps everything", () => {
    const v1 = trackUpdate(undefined, created(), deploy("kubectl-create"));
    const edited = structuredClone(v1);
    spec(edited).replicas = 3;
    spec(edited).template.spec.containers[0]!.image = "nginx:2";
    const v2 = trackUpdate(v1, edited, deploy("kubectl-edit", T1));
    assert.deepEqual(
      entries(v2).map((e) => [e.manager, e.time]),
      [
        ["kubectl-create", "2024-05-01T10:00:00Z"],
        ["kubectl-edit", "2024-05-01T10:05:00Z"],
      ],
    );
    assert.deepEqual(entry(v2, "kubectl-edit")!.fieldsV1, {
      "f:spec": {
        "f:replicas": {},
        "f:template": { "f:spec": { "f:containers": { 'k:{"name":"nginx"}': { "f:image": {} } } } },
      },
    });
    const creator = JSON.stringify(entry(v2, "kubectl-create")!.fieldsV1);
    assert.ok(!creator.includes('"f:replicas"') && !creator.includes('"f:image"'));

    // No change, no new entry, no new time (metadata the server sets is never owned).
    const same = structuredClone(v2);
    same.metadata!.resourceVersion = "9";
    const v3 = trackUpdate(v2, same, deploy("other", T2));
    assert.deepEqual(entries(v3), entries(v2));
  });

  it("carries stored managedFields over when the request has none; [] clears them for good", () => {
    const v1 = trackUpdate(undefined, created(), deploy("kubectl-create"));
    const put = structuredClone(v1);
    delete put.metadata!.managedFields;
    spec(put).replicas = 5;
    const v2 = trackUpdate(v1, put, deploy("curl", T1));
    assert.deepEqual(
      entries(v2).map((e) => e.manager),
      ["kubectl-create", "curl"],
    );

    const reset = structuredClone(v2);
    reset.metadata!.managedFields = [];
    const v3 = trackUpdate(v2, reset, deploy("curl", T2));
    assert.equal(v3.metadata!.managedFields, undefined);
    // An object without managedFields stays untracked on update (as upstream).
    const later = structuredClone(v3);
    spec(later).replicas = 6;
    assert.equal(trackUpdate(v3, later, deploy("curl", T2)).metadata!.managedFields, undefined);
  });

  it("records status writes with their subresource, owning status only", () => {
    const v1 = trackUpdate(undefined, created(), deploy("kubectl-create"));
    const withStatus = structuredClone(v1);
    withStatus.status = { replicas: 1, conditions: [{ type: "Available", status: "True" }] };
    spec(withStatus).replicas = 9; // a status write cannot take spec
    const v2 = trackUpdate(v1, withStatus, {
      ...deploy("kube-controller-manager", T1),
      subresource: "status",
    });
    const e = entry(v2, "kube-controller-manager")!;
    assert.equal(e.subresource, "status");
    assert.deepEqual(e.fieldsV1, {
      "f:status": {
        "f:conditions": {
          ".": {},
          'k:{"type":"Available"}': { ".": {}, "f:status": {}, "f:type": {} },
        },
        "f:replicas": {},
      },
    });
  });

  it("derives manager names from the User-Agent as upstream", () => {
    assert.equal(
      managerFromUserAgent("kubectl/v1.32.4 (linux/amd64) kubernetes/4cb5f07"),
      "kubectl",
    );
    assert.equal(managerFromUserAgent("Go-http-client/1.1"), "Go-http-client");
    assert.equal(managerFromUserAgent(undefined), "");
    assert.equal(managerFromUserAgent("a\u0000b c/1"), "ab c");
    assert.equal(managerFromUserAgent("x".repeat(200)).length, 128);
    const obj = trackUpdate(undefined, created(), deploy(managerFromUserAgent(undefined)));
    assert.equal(entries(obj)[0]!.manager, "unknown");
  });
});

describe("serverSideApply", () => {
  it("creates a missing object owned by the applier", () => {
    const obj = serverSideApply(undefined, config(), apply("kubectl"));
    assert.equal(spec(obj).replicas, 2);
    assert.deepEqual(entries(obj), [
      {
        manager: "kubectl",
        operation: "Apply",
        apiVersion: "apps/v1",
        time: "2024-05-01T10:05:00Z",
        fieldsType: "FieldsV1",
        fieldsV1: {
          "f:metadata": { "f:labels": { "f:app": {} } },
          "f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:template": {
              "f:metadata": { "f:labels": { "f:app": {} } },
              "f:spec": {
                "f:containers": {
                  'k:{"name":"nginx"}': { ".": {}, "f:image": {}, "f:name": {} },
                },
              },
            },
          },
        },
      },
    ]);
  });

  it("is idempotent: applying the same configuration twice changes nothing", () => {
    const first = serverSideApply(undefined, config(), apply("ci"));
    const second = serverSideApply(first, config(), apply("ci", T2));
    assert.deepEqual(second, first);
    assert.notEqual(second.spec, first.spec); // a copy, not the live object
  });

  it("removes what the applier no longer applies, unless someone else owns it", () => {
    const v1 = serverSideApply(
      undefined,
      config({ labels: { app: "web", tier: "fe" } }),
      apply("ci"),
    );
    const v2 = serverSideApply(v1, config({ labels: { app: "web" } }), apply("ci", T2));
    assert.deepEqual(v2.metadata!.labels, { app: "web" });

    // Another applier co-owns a label: dropping it from one configuration keeps it.
    const other = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web", namespace: "default", labels: { tier: "fe" } },
    };
    const v3 = serverSideApply(v1, other, apply("team-b", T2));
    const v4 = serverSideApply(v3, config({ labels: { app: "web" } }), apply("ci", T2));
    assert.deepEqual(v4.metadata!.labels, { app: "web", tier: "fe" });

    // Removing a list item (a container the configuration no longer lists).
    const two = config();
    spec(two).template.spec.containers.push({ name: "side", image: "busybox" });
    const v5 = serverSideApply(undefined, two, apply("ci"));
    assert.equal(spec(v5).template.spec.containers.length, 2);
    const v6 = serverSideApply(v5, config(), apply("ci", T2));
    assert.deepEqual(
      spec(v6).template.spec.containers.map((c) => c.name),
      ["nginx"],
    );
  });

  it("merges list-map items by key, and two appliers co-own what both apply", () => {
    const v1 = serverSideApply(undefined, config(), apply("ci"));
    const sidecar: KObject = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web", namespace: "default" },
      spec: {
        template: {
          spec: {
            containers: [
              { name: "side", image: "busybox" },
              { name: "nginx", image: "nginx:1.26" }, // same value: no conflict, co-owned
            ],
          },
        },
      },
    };
    const v2 = serverSideApply(v1, sidecar, apply("mesh", T2));
    assert.deepEqual(
      spec(v2).template.spec.containers.map((c) => [c.name, c.image]),
      [
        ["side", "busybox"],
        ["nginx", "nginx:1.26"],
      ],
    );
    assert.equal(spec(v2).replicas, 2);
    const mesh = JSON.stringify(entry(v2, "mesh")!.fieldsV1);
    const ci = JSON.stringify(entry(v2, "ci")!.fieldsV1);
    assert.ok(mesh.includes('k:{\\"name\\":\\"nginx\\"}') && ci.includes('"f:image"'));
    // ci stops applying nginx's image: mesh still owns it, so it stays.
    const noImage = config();
    delete spec(noImage).template.spec.containers[0]!.image;
    const v3 = serverSideApply(v2, noImage, apply("ci", T2));
    assert.equal(
      spec(v3).template.spec.containers.find((c) => c.name === "nginx")!.image,
      "nginx:1.26",
    );
  });

  it("refuses to change another manager's field with upstream's 409, and force takes it", () => {
    const v1 = trackUpdate(undefined, created(), deploy("kubectl-client-side-apply"));
    const err = conflictOf(() => serverSideApply(v1, config({ image: "nginx" }), apply("ci")));
    assert.equal(
      err.message,
      'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas',
    );
    assert.deepEqual(err.toStatus(), {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: err.message,
      reason: "Conflict",
      details: {
        causes: [
          {
            reason: "FieldManagerConflict",
            message: 'conflict with "kubectl-client-side-apply" using apps/v1',
            field: ".spec.replicas",
          },
        ],
      },
      code: 409,
    });

    const two = conflictOf(() => serverSideApply(v1, config({ image: "nginx:2" }), apply("ci")));
    assert.equal(
      two.message,
      "Apply failed with 2 conflicts: " +
        'conflicts with "kubectl-client-side-apply" using apps/v1:\n' +
        "- .spec.replicas\n" +
        '- .spec.template.spec.containers[name="nginx"].image',
    );
    assert.equal(two.details?.causes?.length, 2);

    const forced = serverSideApply(v1, config({ image: "nginx:2" }), apply("ci", T1, true));
    assert.equal(spec(forced).replicas, 2);
    assert.equal(spec(forced).template.spec.containers[0]!.image, "nginx:2");
    const csa = JSON.stringify(entry(forced, "kubectl-client-side-apply")!.fieldsV1);
    assert.ok(!csa.includes('"f:replicas"') && !csa.includes('"f:image"'));
    assert.deepEqual(
      entries(forced).map((e) => [e.manager, e.operation]),
      [
        ["ci", "Apply"],
        ["kubectl-client-side-apply", "Update"],
      ],
    );
  });

  it("conflicts with other appliers too, naming them without a version", () => {
    const v1 = serverSideApply(undefined, config(), apply("ci"));
    const err = conflictOf(() => serverSideApply(v1, config({ replicas: 4 }), apply("other")));
    assert.equal(err.message, 'Apply failed with 1 conflict: conflict with "ci": .spec.replicas');
  });

  it("gives an object without managedFields to before-first-apply", () => {
    const err = conflictOf(() =>
      serverSideApply(created(), config({ image: "nginx" }), apply("ci")),
    );
    assert.equal(
      err.message,
      'Apply failed with 1 conflict: conflict with "before-first-apply" using apps/v1: .spec.replicas',
    );
  });

  it("lets kubectl take over what its client-side apply set, and keeps the annotation in step", () => {
    const csa = created();
    const lastApplied = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { annotations: {}, labels: { app: "web" }, name: "web", namespace: "default" },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: "web" } },
        template: {
          metadata: { labels: { app: "web" } },
          spec: { containers: [{ image: "nginx", name: "nginx" }] },
        },
      },
    };
    csa.metadata!.annotations = { [LAST_APPLIED_ANNOTATION]: JSON.stringify(lastApplied) + "\n" };
    const v1 = trackUpdate(undefined, csa, deploy("kubectl-client-side-apply"));
    // Another manager gets no such pass.
    conflictOf(() => serverSideApply(v1, config({ image: "nginx:1.26" }), apply("ci")));
    const v2 = serverSideApply(v1, config({ image: "nginx:1.26" }), apply("kubectl"));
    assert.equal(spec(v2).replicas, 2);
    assert.equal(
      v2.metadata!.annotations![LAST_APPLIED_ANNOTATION],
      '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"labels":{"app":"web"},"name":"web","namespace":"default"},' +
        '"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},' +
        '"spec":{"containers":[{"image":"nginx:1.26","name":"nginx"}]}}}}\n',
    );
  });

  it("lets kubectl-last-applied keep the annotation kubectl updated, without conflict or time", () => {
    const csa = created();
    csa.metadata!.annotations = { [LAST_APPLIED_ANNOTATION]: '{"kind":"Deployment"}\n' };
    const v1 = trackUpdate(undefined, csa, deploy("kubectl-client-side-apply"));
    const v2 = serverSideApply(v1, config({ replicas: 1, image: "nginx" }), apply("kubectl"));
    const value = v2.metadata!.annotations![LAST_APPLIED_ANNOTATION]!;
    assert.ok(value.startsWith('{"apiVersion":"apps/v1"'));
    // kubectl sends back the value the server set (saveLastApplyAnnotationIfNecessary).
    const v3 = serverSideApply(
      v2,
      {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: {
          name: "web",
          namespace: "default",
          annotations: { [LAST_APPLIED_ANNOTATION]: value },
        },
      },
      apply("kubectl-last-applied", T2),
    );
    assert.deepEqual(entry(v3, "kubectl-last-applied"), {
      manager: "kubectl-last-applied",
      operation: "Apply",
      apiVersion: "apps/v1",
      fieldsType: "FieldsV1",
      fieldsV1: {
        "f:metadata": {
          "f:annotations": { "f:kubectl.kubernetes.io/last-applied-configuration": {} },
        },
      },
    });
    // Then kubectl rewrites managedFields with a JSON patch: taken as sent.
    const migrated = structuredClone(v3);
    migrated.metadata!.managedFields = migrated.metadata!.managedFields!.filter(
      (e) => e.manager !== "kubectl-client-side-apply",
    );
    const v4 = trackUpdate(v3, migrated, deploy("kubectl", T2));
    // Both applies changed nothing in the object (the annotation is the server's doing): no times.
    assert.deepEqual(
      entries(v4).map((e) => [e.manager, e.time]),
      [
        ["kubectl", undefined],
        ["kubectl-last-applied", undefined],
      ],
    );
  });

  it("folds the oldest of more than 10 Update entries into ancient-changes", () => {
    let obj = trackUpdate(undefined, created(), deploy("creator"));
    for (let i = 0; i < 11; i++) {
      const next = structuredClone(obj);
      next.metadata!.labels = { ...next.metadata!.labels, [`l${i}`]: "x" };
      obj = trackUpdate(obj, next, deploy(`m${i}`, new Date(T1.getTime() + i * 60_000)));
    }
    const names = entries(obj).map((e) => e.manager);
    assert.equal(names.length, 10);
    assert.equal(names[0], "ancient-changes");
    const ancient = JSON.stringify(entries(obj)[0]!.fieldsV1);
    assert.ok(
      ancient.includes('"f:replicas"') && ancient.includes('"f:l0"') && ancient.includes('"f:l1"'),
    );
  });

  it("refuses requests upstream refuses", () => {
    const statusOf = (fn: () => unknown): StatusError => {
      try {
        fn();
      } catch (e) {
        if (e instanceof StatusError) return e;
        throw e;
      }
      assert.fail("expected an error");
    };
    const noManager = statusOf(() => serverSideApply(undefined, config(), apply("")));
    assert.equal(noManager.code, 422);
    assert.equal(
      noManager.message,
      'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
    );
    const wrongKind = statusOf(() =>
      serverSideApply(undefined, { ...config(), apiVersion: "v1", kind: "Pod" }, apply("ci")),
    );
    assert.equal(wrongKind.code, 400);
    assert.equal(wrongKind.message, "invalid object type: /v1, Kind=Pod");
    const withManaged = config();
    withManaged.metadata!.managedFields = [];
    const mf = statusOf(() => serverSideApply(undefined, withManaged, apply("ci")));
    assert.equal(mf.message, "metadata.managedFields must be nil");
    const unknown = config();
    (unknown.spec as Record<string, unknown>).replicaz = 1;
    const bad = statusOf(() => serverSideApply(undefined, unknown, apply("ci")));
    assert.equal(bad.code, 500);
    assert.equal(
      bad.message,
      "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): .spec.replicaz: field not declared in schema",
    );
    const dup = config();
    spec(dup).template.spec.containers.push({ name: "nginx" });
    assert.match(
      statusOf(() => serverSideApply(undefined, dup, apply("ci"))).message,
      /\.spec\.template\.spec\.containers: duplicate entries for key \[name="nginx"\]$/,
    );
  });
});

describe("a pod's life as a real cluster records it", () => {
  const pod = (manager: string, now: Date, subresource?: string): ManagedContext => ({
    typeName: "io.k8s.api.core.v1.Pod",
    apiVersion: "v1",
    manager,
    now,
    ...(subresource ? { subresource } : {}),
  });

  it("kubectl run, admission, kubelet status, then kubectl apply --server-side", () => {
    // `kubectl run nginx --image=nginx --restart=Never`, defaults applied.
    const created = trackUpdate(
      undefined,
      {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "nginx", namespace: "default", labels: { run: "nginx" } },
        spec: {
          containers: [
            {
              name: "nginx",
              image: "nginx",
              resources: {},
              terminationMessagePath: "/dev/termination-log",
              terminationMessagePolicy: "File",
              imagePullPolicy: "Always",
            },
          ],
          restartPolicy: "Never",
          terminationGracePeriodSeconds: 30,
          dnsPolicy: "ClusterFirst",
          securityContext: {},
          schedulerName: "default-scheduler",
          enableServiceLinks: true,
        },
        status: {},
      },
      pod("kubectl-run", new Date("2023-10-26T03:22:48Z")),
    );
    const runFields = {
      "f:metadata": { "f:labels": { ".": {}, "f:run": {} } },
      "f:spec": {
        "f:containers": {
          'k:{"name":"nginx"}': {
            ".": {},
            "f:image": {},
            "f:imagePullPolicy": {},
            "f:name": {},
            "f:resources": {},
            "f:terminationMessagePath": {},
            "f:terminationMessagePolicy": {},
          },
        },
        "f:dnsPolicy": {},
        "f:enableServiceLinks": {},
        "f:restartPolicy": {},
        "f:schedulerName": {},
        "f:securityContext": {},
        "f:terminationGracePeriodSeconds": {},
      },
    };
    assert.deepEqual(entry(created, "kubectl-run")!.fieldsV1, runFields);

    // What admission, the registry and the binding add is nobody's.
    const stored = structuredClone(created) as KObject & { spec: Record<string, unknown> };
    Object.assign(stored.metadata!, {
      uid: "2c5e",
      resourceVersion: "7",
      creationTimestamp: "2023-10-26T03:22:48Z",
    });
    Object.assign(stored.spec, {
      serviceAccountName: "default",
      serviceAccount: "default",
      nodeName: "node-1",
      priority: 0,
      preemptionPolicy: "PreemptLowerPriority",
      tolerations: [
        {
          key: "node.kubernetes.io/not-ready",
          operator: "Exists",
          effect: "NoExecute",
          tolerationSeconds: 300,
        },
      ],
    });
    const scheduled = {
      type: "PodScheduled",
      status: "True",
      lastProbeTime: null,
      lastTransitionTime: "2023-10-26T03:22:48Z",
    };
    stored.status = { phase: "Pending", conditions: [scheduled], qosClass: "BestEffort" };

    // The kubelet's status update.
    const running = structuredClone(stored);
    const cond = (type: string) => ({
      type,
      status: "True",
      lastProbeTime: null,
      lastTransitionTime: "2023-10-26T03:22:51Z",
    });
    running.status = {
      phase: "Running",
      conditions: [cond("Initialized"), cond("Ready"), cond("ContainersReady"), scheduled],
      hostIP: "172.20.0.2",
      podIP: "10.244.0.8",
      podIPs: [{ ip: "10.244.0.8" }],
      startTime: "2023-10-26T03:22:48Z",
      containerStatuses: [
        { name: "nginx", ready: true, restartCount: 0, image: "nginx", imageID: "x" },
      ],
      qosClass: "BestEffort",
    };
    const withStatus = trackUpdate(
      stored,
      running,
      pod("kubelet", new Date("2023-10-26T03:22:51Z"), "status"),
    );
    const condFields = {
      ".": {},
      "f:lastProbeTime": {},
      "f:lastTransitionTime": {},
      "f:status": {},
      "f:type": {},
    };
    assert.deepEqual(entry(withStatus, "kubelet"), {
      manager: "kubelet",
      operation: "Update",
      apiVersion: "v1",
      time: "2023-10-26T03:22:51Z",
      fieldsType: "FieldsV1",
      fieldsV1: {
        "f:status": {
          "f:conditions": {
            'k:{"type":"ContainersReady"}': condFields,
            'k:{"type":"Initialized"}': condFields,
            'k:{"type":"Ready"}': condFields,
          },
          "f:containerStatuses": {},
          "f:hostIP": {},
          "f:phase": {},
          "f:podIP": {},
          "f:podIPs": { ".": {}, 'k:{"ip":"10.244.0.8"}': { ".": {}, "f:ip": {} } },
          "f:startTime": {},
        },
      },
      subresource: "status",
    });

    // `kubectl run ... --dry-run=client -o yaml | kubectl apply --server-side -f -`
    const applied = serverSideApply(
      withStatus,
      {
        apiVersion: "v1",
        kind: "Pod",
        // A null the typed metadata cannot hold (as YAML from `-o yaml` has it).
        metadata: JSON.parse(
          '{"creationTimestamp":null,"labels":{"run":"nginx"},"name":"nginx","namespace":"default"}',
        ) as KObject["metadata"],
        spec: {
          containers: [{ image: "nginx", name: "nginx", resources: {} }],
          dnsPolicy: "ClusterFirst",
          restartPolicy: "Never",
        },
        status: {},
      },
      { ...pod("kubectl", new Date("2023-10-26T03:24:46Z")), force: false },
    );
    assert.deepEqual(
      entries(applied).map((e) => [e.manager, e.operation, e.time]),
      [
        // creationTimestamp: null "changes" the object, so the applier's time moves.
        ["kubectl", "Apply", "2023-10-26T03:24:46Z"],
        ["kubectl-run", "Update", "2023-10-26T03:22:48Z"],
        ["kubelet", "Update", "2023-10-26T03:22:51Z"],
      ],
    );
    assert.deepEqual(entry(applied, "kubectl")!.fieldsV1, {
      "f:metadata": { "f:labels": { "f:run": {} } },
      "f:spec": {
        "f:containers": {
          'k:{"name":"nginx"}': { ".": {}, "f:image": {}, "f:name": {}, "f:resources": {} },
        },
        "f:dnsPolicy": {},
        "f:restartPolicy": {},
      },
    });
    assert.deepEqual(entry(applied, "kubectl-run")!.fieldsV1, runFields);
    assert.deepEqual(applied.status, running.status);
    assert.deepEqual(applied.spec, running.spec);

    // Applying a value the object already has: co-owned, no time (nothing changed).
    const annotated = structuredClone(applied);
    annotated.metadata!.annotations = { note: "x" };
    const v2 = trackUpdate(
      applied,
      annotated,
      pod("kubectl-annotate", new Date("2023-10-26T03:25:00Z")),
    );
    const v3 = serverSideApply(
      v2,
      {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "nginx", namespace: "default", annotations: { note: "x" } },
      },
      { ...pod("kubectl-last-applied", new Date("2023-10-26T03:26:00Z")), force: false },
    );
    assert.deepEqual(entry(v3, "kubectl-last-applied"), {
      manager: "kubectl-last-applied",
      operation: "Apply",
      apiVersion: "v1",
      fieldsType: "FieldsV1",
      fieldsV1: { "f:metadata": { "f:annotations": { "f:note": {} } } },
    });
    assert.deepEqual(entry(v3, "kubectl-annotate")!.fieldsV1, {
      "f:metadata": { "f:annotations": { ".": {}, "f:note": {} } },
    });
  });
});
