import { test } from "node:test";
import assert from "node:assert/strict";
import {
  jsonPatch,
  mergePatch,
  PatchError,
  strategicMergePatch,
  type Json,
  type PatchSchema,
} from "./patch.js";

test("JSON merge patch (RFC 7386)", () => {
  assert.deepEqual(
    mergePatch({ a: 1, b: { c: 2, d: 3 }, l: [1, 2] }, { b: { c: null, e: 4 }, l: [3], f: "x" }),
    {
      a: 1,
      b: { d: 3, e: 4 },
      l: [3],
      f: "x",
    },
  );
});

test("JSON patch (RFC 6902): add, remove, replace, move, copy, test, and failures", () => {
  const doc = { spec: { replicas: 1, list: ["a", "b"] }, metadata: { labels: { "a/b": "1" } } };
  const out = jsonPatch(doc, [
    { op: "replace", path: "/spec/replicas", value: 3 },
    { op: "add", path: "/spec/list/1", value: "x" },
    { op: "add", path: "/spec/list/-", value: "z" },
    { op: "remove", path: "/metadata/labels/a~1b" },
    { op: "copy", from: "/spec/replicas", path: "/spec/copy" },
    { op: "move", from: "/spec/copy", path: "/spec/moved" },
    { op: "test", path: "/spec/moved", value: 3 },
  ]);
  assert.deepEqual(out, {
    spec: { replicas: 3, list: ["a", "x", "b", "z"], moved: 3 },
    metadata: { labels: {} },
  });
  assert.deepEqual(doc.spec.replicas, 1, "the input is not modified");
  assert.throws(() => jsonPatch(doc, [{ op: "remove", path: "/spec/nope" }]), PatchError);
  assert.throws(
    () => jsonPatch(doc, [{ op: "test", path: "/spec/replicas", value: 2 }]),
    PatchError,
  );
  assert.throws(() => jsonPatch(doc, { op: "add" }), PatchError);
});

/** A tiny schema: pod spec containers merge by name, their ports by containerPort. */
const schema: PatchSchema = {
  field(type, name) {
    const table: Record<
      string,
      Record<string, { meta: { strategy?: string; mergeKey?: string }; type?: string }>
    > = {
      Pod: { spec: { meta: {}, type: "PodSpec" } },
      PodSpec: {
        containers: { meta: { strategy: "merge", mergeKey: "name" }, type: "Container" },
        finalizers: { meta: { strategy: "merge" } },
        volumes: { meta: { strategy: "merge,retainKeys", mergeKey: "name" }, type: "Volume" },
      },
      Container: {
        ports: { meta: { strategy: "merge", mergeKey: "containerPort" } },
        args: { meta: {} },
      },
    };
    return table[type]?.[name];
  },
};

test("strategic merge patch: lists merge by key, directives, primitive sets, replace lists", () => {
  const pod: Json = {
    spec: {
      containers: [
        { name: "a", image: "nginx:1", ports: [{ containerPort: 80 }], args: ["x"] },
        { name: "b", image: "busybox" },
      ],
      finalizers: ["f1"],
    },
  };
  const out = strategicMergePatch(
    pod,
    {
      spec: {
        containers: [
          { name: "a", image: "nginx:2", ports: [{ containerPort: 443 }], args: ["y"] },
          { name: "b", $patch: "delete" },
          { name: "c", image: "redis" },
        ],
        finalizers: ["f2"],
      },
    },
    schema,
    "Pod",
  );
  assert.deepEqual(out, {
    spec: {
      containers: [
        {
          name: "a",
          image: "nginx:2",
          ports: [{ containerPort: 80 }, { containerPort: 443 }],
          args: ["y"],
        },
        { name: "c", image: "redis" },
      ],
      finalizers: ["f1", "f2"],
    },
  });
  const ordered = strategicMergePatch(
    pod,
    {
      spec: {
        "$setElementOrder/containers": [{ name: "b" }, { name: "a" }],
        containers: [{ name: "a", image: "nginx:3" }],
      },
    },
    schema,
    "Pod",
  ) as { spec: { containers: Array<{ name: string; image: string }> } };
  assert.deepEqual(
    ordered.spec.containers.map((c) => `${c.name}=${c.image}`),
    ["b=busybox", "a=nginx:3"],
  );
  const replaced = strategicMergePatch(
    pod,
    { spec: { containers: [{ $patch: "replace" }, { name: "z", image: "z" }] } },
    schema,
    "Pod",
  ) as { spec: { containers: unknown[] } };
  assert.deepEqual(replaced.spec.containers, [{ name: "z", image: "z" }]);
  const removed = strategicMergePatch(
    pod,
    { spec: { "$deleteFromPrimitiveList/finalizers": ["f1"] } },
    schema,
    "Pod",
  ) as { spec: { finalizers: string[] } };
  assert.deepEqual(removed.spec.finalizers, []);
  const retained = strategicMergePatch(
    { a: 1, b: 2, c: 3 },
    { $retainKeys: ["a", "c"], c: 4 },
    schema,
    undefined,
  );
  assert.deepEqual(retained, { a: 1, c: 4 });
  assert.throws(
    () => strategicMergePatch(pod, { spec: { containers: [{ image: "x" }] } }, schema, "Pod"),
    PatchError,
  );
});
