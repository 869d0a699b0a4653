import { test } from "node:test";
import assert from "node:assert/strict";
import {
  compare,
  createdFieldsV1JSON,
  FieldSet,
  fieldPath,
  keyElement,
  pathString,
  setOf,
  shapeOf,
  toFieldSet,
  valueElement,
  fieldElement,
  goFloat,
} from "./fieldset.js";

const DEPLOYMENT = "io.k8s.api.apps.v1.Deployment";
const POD = "io.k8s.api.core.v1.Pod";
const SERVICE = "io.k8s.api.core.v1.Service";

/** `kubectl create deployment web --image=nginx` as stored (defaults applied). */
function createdDeployment(): Record<string, unknown> {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name: "web",
      namespace: "default",
      labels: { app: "web" },
      creationTimestamp: null,
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

/** What a real cluster records for that create (manager kubectl-create, operation Update). */
const CREATED_DEPLOYMENT_FIELDS = {
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

test("the fields a create takes are what a real cluster records (defaults included)", () => {
  const shape = shapeOf(DEPLOYMENT);
  const c = compare(shape, undefined, createdDeployment());
  const taken = c.added
    .union(c.modified)
    .recursiveDifference(setOf(fieldPath("status")))
    .difference(
      setOf(
        fieldPath("apiVersion"),
        fieldPath("kind"),
        fieldPath("metadata", "name"),
        fieldPath("metadata", "namespace"),
      ),
    );
  assert.deepEqual(taken.toFieldsV1(), CREATED_DEPLOYMENT_FIELDS);
  // Key order is upstream's: "." first, then fields sorted.
  assert.equal(JSON.stringify(taken.toFieldsV1()), JSON.stringify(CREATED_DEPLOYMENT_FIELDS));
});

test("an apply configuration's field set: no '.' for fields of a struct, items marked", () => {
  const shape = shapeOf(DEPLOYMENT);
  const set = toFieldSet(shape, {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "app1", labels: { app: "app1" } },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: "app1" } },
      template: {
        metadata: { labels: { app: "app1" } },
        spec: {
          containers: [{ image: "nginx:1.26", name: "nginx", ports: [{ containerPort: 80 }] }],
        },
      },
    },
  });
  assert.deepEqual(set.toFieldsV1(), {
    "f:apiVersion": {},
    "f:kind": {},
    "f:metadata": { "f:labels": { "f:app": {} }, "f:name": {} },
    "f:spec": {
      "f:replicas": {},
      "f:selector": {},
      "f:template": {
        "f:metadata": { "f:labels": { "f:app": {} } },
        "f:spec": {
          "f:containers": {
            'k:{"name":"nginx"}': {
              ".": {},
              "f:image": {},
              "f:name": {},
              "f:ports": {
                // The protocol key field takes its OpenAPI default.
                'k:{"containerPort":80,"protocol":"TCP"}': { ".": {}, "f:containerPort": {} },
              },
            },
          },
        },
      },
    },
  });
});

test("sets: sets and keys, FieldsV1 round trip, order and operations", () => {
  const shape = shapeOf(POD);
  const set = toFieldSet(shape, {
    metadata: { finalizers: ["b", "a"], ownerReferences: [{ uid: "u1", name: "x", kind: "K" }] },
    spec: {
      nodeSelector: { a: "b" },
      containers: [{ name: "c", args: ["x"], env: [{ name: "E", value: "1" }] }],
    },
  });
  const v1 = set.toFieldsV1();
  assert.deepEqual(v1, {
    "f:metadata": {
      "f:finalizers": { 'v:"a"': {}, 'v:"b"': {} },
      // OwnerReference is an atomic struct: the item is owned whole.
      "f:ownerReferences": { 'k:{"uid":"u1"}': {} },
    },
    "f:spec": {
      "f:containers": {
        'k:{"name":"c"}': {
          ".": {},
          "f:args": {},
          "f:env": { 'k:{"name":"E"}': { ".": {}, "f:name": {}, "f:value": {} } },
          "f:name": {},
        },
      },
      "f:nodeSelector": {},
    },
  });
  const back = FieldSet.fromFieldsV1(JSON.stringify(v1));
  assert.ok(back.equals(set));
  assert.deepEqual(back.toFieldsV1(), v1);

  const a = setOf(fieldPath("a", "b"), fieldPath("a", "c"), fieldPath("d"));
  const b = setOf(fieldPath("a", "c"), fieldPath("a"));
  assert.deepEqual(a.union(b).toFieldsV1(), {
    "f:a": { ".": {}, "f:b": {}, "f:c": {} },
    "f:d": {},
  });
  assert.deepEqual(a.difference(b).toFieldsV1(), { "f:a": { "f:b": {} }, "f:d": {} });
  assert.deepEqual(a.intersection(b).toFieldsV1(), { "f:a": { "f:c": {} } });
  assert.deepEqual(a.recursiveDifference(b).toFieldsV1(), { "f:d": {} });
  assert.ok(a.has(fieldPath("a", "b")) && !a.has(fieldPath("a")));
});

test("paths print as upstream's conflicts do", () => {
  assert.equal(
    pathString([
      fieldElement("spec"),
      fieldElement("ports"),
      keyElement([
        ["protocol", "TCP"],
        ["port", 80],
      ]),
      fieldElement("name"),
    ]),
    '.spec.ports[port=80,protocol="TCP"].name',
  );
  assert.equal(
    pathString([fieldElement("finalizers"), valueElement("a\nb")]),
    '.finalizers[="a\\nb"]',
  );
  assert.equal(goFloat(1.5), "1.5");
  assert.equal(goFloat(1234567.5), "1.2345675e+06");
  assert.equal(goFloat(0.00001), "1e-05");
});

test("compare: Go's view of objects (omitempty zeros and nulls absent, implicit structs)", () => {
  const shape = shapeOf(SERVICE);
  const old = {
    metadata: { name: "s" },
    spec: { ports: [{ port: 80, protocol: "TCP", targetPort: 80 }], type: "ClusterIP" },
  };
  const next = {
    metadata: { name: "s", labels: {} },
    spec: {
      ports: [
        { port: 80, protocol: "TCP", targetPort: 8080 },
        { port: 443, name: "https" },
      ],
      type: "ClusterIP",
      publishNotReadyAddresses: false,
      externalName: null,
    },
  };
  const c = compare(shape, old, next);
  assert.deepEqual(c.modified.toFieldsV1(), {
    "f:spec": { "f:ports": { 'k:{"port":80,"protocol":"TCP"}': { "f:targetPort": {} } } },
  });
  assert.deepEqual(c.added.toFieldsV1(), {
    "f:spec": {
      "f:ports": { 'k:{"port":443,"protocol":"TCP"}': { ".": {}, "f:name": {}, "f:port": {} } },
    },
  });
  assert.ok(c.removed.isEmpty());
  // Same objects: nothing.
  const same = compare(shape, next, structuredClone(next));
  assert.ok(same.added.isEmpty() && same.modified.isEmpty() && same.removed.isEmpty());
});

test("a create's fields in one walk are the fields the general comparison finds", () => {
  const strip = setOf(
    fieldPath("apiVersion"),
    fieldPath("kind"),
    fieldPath("metadata"),
    fieldPath("metadata", "name"),
    fieldPath("metadata", "uid"),
  );
  const general = (typeName: string, obj: unknown, skip: string[]): string => {
    const c = compare(shapeOf(typeName), undefined, obj);
    const ignore = setOf(...skip.map((f) => fieldPath(f)));
    const set = c.modified.union(c.added).recursiveDifference(ignore).difference(strip);
    return set.isEmpty() ? "" : JSON.stringify(set.toFieldsV1());
  };
  const cases: Array<[string, unknown]> = [
    [
      "io.k8s.api.core.v1.Pod",
      {
        apiVersion: "v1",
        kind: "Pod",
        metadata: {
          name: "p",
          uid: "u",
          labels: { app: "x", 'we"ird': "y" },
          annotations: {},
          ownerReferences: [
            { apiVersion: "v1", kind: "RC", name: "r", uid: "1", controller: true },
          ],
          finalizers: ["a", "a", "b"],
        },
        spec: {
          containers: [
            {
              name: "c",
              image: "i",
              ports: [{ containerPort: 80 }, { containerPort: 80, protocol: "UDP" }],
              env: [
                { name: "A", value: "" },
                { name: "A", value: "2" },
              ],
              resources: {},
              args: [],
              unknownField: { x: 1 },
            },
            { image: "no-name" },
          ],
          nodeSelector: null,
          hostNetwork: false,
          terminationGracePeriodSeconds: 0,
          tolerations: [{ key: "k", operator: "Exists" }],
          volumes: [{ name: "v", emptyDir: {} }],
        },
        status: { phase: "Pending" },
      },
    ],
    [
      "io.k8s.api.apps.v1.Deployment",
      {
        metadata: { name: "d", labels: null },
        spec: {
          replicas: 0,
          selector: { matchLabels: { a: "b" }, matchExpressions: [] },
          template: { metadata: {}, spec: { containers: [{ name: "c", image: "i" }] } },
          strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%" } },
        },
      },
    ],
    ["io.k8s.api.core.v1.ConfigMap", { metadata: { name: "c" }, data: { a: "1" }, binaryData: {} }],
    ["io.k8s.api.core.v1.ConfigMap", { metadata: { name: "c" } }],
    ["io.k8s.api.core.v1.ConfigMap", { data: "not an object" }],
  ];
  for (const [typeName, obj] of cases) {
    for (const skip of [[], ["status"]]) {
      assert.equal(
        createdFieldsV1JSON(shapeOf(typeName), obj, new Set(skip), strip),
        general(typeName, obj, skip),
        `${typeName} ${JSON.stringify(obj)} skipping ${skip.join()}`,
      );
    }
  }
});
