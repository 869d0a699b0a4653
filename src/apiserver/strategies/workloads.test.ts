import { test } from "node:test";
import assert from "node:assert/strict";
import { body, create, meta, update } from "./harness.js";
import type { KObject } from "../registry/types.js";

const templateSpec = (name = "nginx", image = "nginx") => ({
  containers: [
    {
      name,
      image,
      resources: {},
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
});

/** What `kubectl create deployment web --image=nginx --dry-run=client -o json` prints. */
const createDeploymentBody = (): KObject =>
  body({
    kind: "Deployment",
    apiVersion: "apps/v1",
    metadata: { name: "web", creationTimestamp: null, labels: { app: "web" } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { creationTimestamp: null, labels: { app: "web" } },
        spec: { containers: [{ name: "nginx", image: "nginx", resources: {} }] },
      },
      strategy: {},
    },
    status: {},
  });

test("kubectl create deployment's object is created as upstream 1.32 returns it", () => {
  const { obj, errors } = create("apps/deployments", createDeploymentBody());
  assert.deepEqual(errors, []);
  assert.deepEqual(obj, {
    kind: "Deployment",
    apiVersion: "apps/v1",
    metadata: meta("web", { labels: { app: "web" }, generation: 1 }),
    spec: {
      progressDeadlineSeconds: 600,
      replicas: 1,
      revisionHistoryLimit: 10,
      selector: { matchLabels: { app: "web" } },
      strategy: {
        type: "RollingUpdate",
        rollingUpdate: { maxSurge: "25%", maxUnavailable: "25%" },
      },
      template: {
        metadata: { creationTimestamp: null, labels: { app: "web" } },
        spec: templateSpec(),
      },
    },
    status: {},
  });
});

test("deployment validation messages", () => {
  const noSelector = createDeploymentBody();
  const spec = noSelector.spec as Record<string, unknown>;
  delete spec.selector;
  spec.replicas = -1;
  assert.deepEqual(create("apps/deployments", noSelector).errors, [
    "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
    "spec.selector: Required value",
    'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`',
  ]);

  const mismatch = createDeploymentBody();
  (mismatch.spec as Record<string, unknown>).selector = { matchLabels: { app: "x" } };
  assert.deepEqual(create("apps/deployments", mismatch).errors, [
    'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`',
  ]);

  const empty = createDeploymentBody();
  (empty.spec as Record<string, unknown>).selector = {};
  assert.deepEqual(create("apps/deployments", empty).errors, [
    "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment",
  ]);

  const zero = createDeploymentBody();
  (zero.spec as Record<string, unknown>).strategy = {
    rollingUpdate: { maxSurge: 0, maxUnavailable: 0 },
  };
  assert.deepEqual(create("apps/deployments", zero).errors, [
    'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:""}: may not be 0 when `maxSurge` is 0',
  ]);

  const onFailure = createDeploymentBody();
  const tspec = (
    (onFailure.spec as Record<string, unknown>).template as Record<string, Record<string, unknown>>
  ).spec!;
  tspec.restartPolicy = "OnFailure";
  assert.deepEqual(create("apps/deployments", onFailure).errors, [
    'spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: "Always"',
  ]);
});

test("a deployment's selector is immutable", () => {
  const { obj: stored } = create("apps/deployments", createDeploymentBody());
  const changed = JSON.parse(JSON.stringify(stored)) as KObject;
  const spec = changed.spec as Record<string, unknown>;
  spec.selector = { matchLabels: { app: "web2" } };
  (spec.template as Record<string, Record<string, unknown>>).metadata!.labels = { app: "web2" };
  assert.deepEqual(update("apps/deployments", changed, stored).errors, [
    'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable',
  ]);
});

const workload = (
  kind: string,
  apiVersion: string,
  extra: Record<string, unknown> = {},
): KObject => ({
  kind,
  apiVersion,
  metadata: { name: "w" },
  spec: {
    selector: { matchLabels: { app: "w" } },
    template: {
      metadata: { labels: { app: "w" } },
      spec: { containers: [{ name: "c", image: "busybox" }] },
    },
    ...extra,
  },
});

test("replica sets, stateful sets and daemon sets get upstream's defaults and status", () => {
  const rs = create("apps/replicasets", workload("ReplicaSet", "apps/v1"));
  assert.deepEqual(rs.errors, []);
  assert.equal((rs.obj.spec as Record<string, unknown>).replicas, 1);
  assert.deepEqual(rs.obj.status, { replicas: 0 });

  const sts = create(
    "apps/statefulsets",
    workload("StatefulSet", "apps/v1", {
      volumeClaimTemplates: [
        {
          metadata: { name: "data" },
          spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
        },
      ],
    }),
  );
  assert.deepEqual(sts.errors, []);
  const stsSpec = sts.obj.spec as Record<string, unknown>;
  assert.deepEqual(
    {
      podManagementPolicy: stsSpec.podManagementPolicy,
      updateStrategy: stsSpec.updateStrategy,
      persistentVolumeClaimRetentionPolicy: stsSpec.persistentVolumeClaimRetentionPolicy,
      replicas: stsSpec.replicas,
      revisionHistoryLimit: stsSpec.revisionHistoryLimit,
      serviceName: stsSpec.serviceName,
      volumeClaimTemplates: stsSpec.volumeClaimTemplates,
    },
    {
      podManagementPolicy: "OrderedReady",
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: 0 } },
      persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain", whenScaled: "Retain" },
      replicas: 1,
      revisionHistoryLimit: 10,
      serviceName: "",
      volumeClaimTemplates: [
        {
          apiVersion: "v1",
          kind: "PersistentVolumeClaim",
          metadata: { name: "data", creationTimestamp: null },
          spec: {
            accessModes: ["ReadWriteOnce"],
            resources: { requests: { storage: "1Gi" } },
            volumeMode: "Filesystem",
          },
          status: { phase: "Pending" },
        },
      ],
    },
  );
  assert.deepEqual(sts.obj.status, { replicas: 0, availableReplicas: 0 });

  const ds = create("apps/daemonsets", workload("DaemonSet", "apps/v1"));
  assert.deepEqual(ds.errors, []);
  const dsSpec = ds.obj.spec as Record<string, unknown>;
  assert.deepEqual(dsSpec.updateStrategy, {
    type: "RollingUpdate",
    rollingUpdate: { maxUnavailable: 1, maxSurge: 0 },
  });
  assert.equal(dsSpec.revisionHistoryLimit, 10);
  assert.deepEqual(ds.obj.status, {
    currentNumberScheduled: 0,
    numberMisscheduled: 0,
    desiredNumberScheduled: 0,
    numberReady: 0,
  });
});

test("stateful set updates may only change the mutable fields", () => {
  const { obj: stored } = create("apps/statefulsets", workload("StatefulSet", "apps/v1"));
  const changed = JSON.parse(JSON.stringify(stored)) as KObject;
  (changed.spec as Record<string, unknown>).serviceName = "other";
  assert.deepEqual(update("apps/statefulsets", changed, stored).errors, [
    "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
  ]);
});

test("replication controllers default their selector and labels from the template", () => {
  const { obj, errors } = create("/replicationcontrollers", {
    kind: "ReplicationController",
    apiVersion: "v1",
    metadata: { name: "rc" },
    spec: {
      template: {
        metadata: { labels: { app: "rc" } },
        spec: { containers: [{ name: "c", image: "busybox" }] },
      },
    },
  });
  assert.deepEqual(errors, []);
  assert.deepEqual(obj.metadata?.labels, { app: "rc" });
  const spec = obj.spec as Record<string, unknown>;
  assert.deepEqual(spec.selector, { app: "rc" });
  assert.equal(spec.replicas, 1);
  assert.deepEqual(obj.status, { replicas: 0 });
});

test("a daemon set's template generation annotation starts at 1 and counts template changes", () => {
  const ds = create("apps/daemonsets", workload("DaemonSet", "apps/v1")).obj;
  const gen = (o: KObject) => o.metadata?.annotations?.["deprecated.daemonset.template.generation"];
  assert.equal(gen(ds), "1");
  const same = structuredClone(ds);
  same.metadata!.annotations = { "deprecated.daemonset.template.generation": "7" };
  assert.equal(gen(update("apps/daemonsets", same, ds).obj), "1", "not the client's to set");
  const changed = structuredClone(ds);
  (
    changed.spec as { template: { spec: { containers: { image: string }[] } } }
  ).template.spec.containers[0]!.image = "busybox:2";
  assert.equal(gen(update("apps/daemonsets", changed, ds).obj), "2");
});
