import assert from "node:assert/strict";
import { test } from "node:test";
import type { ControllerRevision, StatefulSet } from "kubernetes-types/apps/v1.js";
import {
  CONTROLLER_REVISION_HASH_LABEL,
  controllerRevisionName,
  equalRevision,
  findEqualRevisions,
  goJSON,
  hashControllerRevision,
  listControllerRevisions,
  nextRevision,
  revisionTemplate,
  sortControllerRevisions,
  templatePatch,
} from "./history.js";
import { newRevision } from "./statefulset.js";

/**
 * A StatefulSet as a 1.33 API server serves it and the ControllerRevision the 1.33 controller
 * wrote for it (upstream's statefulset compatibility test data).
 */
const upstreamSet: StatefulSet = {
  apiVersion: "apps/v1",
  kind: "StatefulSet",
  metadata: {
    name: "test",
    namespace: "default",
    uid: "ec335e25-1045-4216-8634-50cfbe05f3d6",
    generation: 1,
    labels: { sslabel: "value" },
  },
  spec: {
    podManagementPolicy: "OrderedReady",
    replicas: 1,
    revisionHistoryLimit: 10,
    selector: { matchLabels: { app: "foo" } },
    serviceName: "",
    template: {
      metadata: {
        annotations: { test: "value" },
        creationTimestamp: null as unknown as string,
        labels: { app: "foo" },
      },
      spec: {
        containers: [
          {
            image: "test",
            imagePullPolicy: "Always",
            name: "test",
            resources: {},
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
    },
    updateStrategy: { rollingUpdate: { partition: 0 }, type: "RollingUpdate" },
  },
  status: { replicas: 1, collisionCount: 0, availableReplicas: 1 },
};
const upstreamData =
  '{"spec":{"template":{"$patch":"replace","metadata":{"annotations":{"test":"value"},"creationTimestamp":null,"labels":{"app":"foo"}},"spec":{"containers":[{"image":"test","imagePullPolicy":"Always","name":"test","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}],"dnsPolicy":"ClusterFirst","restartPolicy":"Always","schedulerName":"default-scheduler","securityContext":{},"terminationGracePeriodSeconds":30}}}}';

test("goJSON writes what Go's encoding/json writes for a generic map", () => {
  assert.equal(goJSON({ b: 1, a: [true, null], $p: "x" }), '{"$p":"x","a":[true,null],"b":1}');
  assert.equal(goJSON({ s: "<a&b>\u2028" }), '{"s":"\\u003ca\\u0026b\\u003e\\u2028"}');
  assert.equal(goJSON({ n: 0.5, big: 1e21, skip: undefined }), '{"big":1e+21,"n":0.5}');
});

test("a StatefulSet's revision patch and hash are byte for byte upstream's", () => {
  assert.equal(templatePatch(upstreamSet), upstreamData);
  assert.equal(hashControllerRevision(upstreamData, 0), "c77f6d978");
  const rev = newRevision(upstreamSet, 1, 0);
  assert.equal(rev.metadata?.name, "test-c77f6d978");
  assert.deepEqual(rev.metadata?.labels, {
    app: "foo",
    [CONTROLLER_REVISION_HASH_LABEL]: "c77f6d978",
  });
  assert.deepEqual(rev.metadata?.ownerReferences, [
    {
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      name: "test",
      uid: "ec335e25-1045-4216-8634-50cfbe05f3d6",
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
  assert.equal(rev.revision, 1);
  assert.equal(goJSON(rev.data), upstreamData);
  // Another collision count gives another name for the same data.
  assert.notEqual(newRevision(upstreamSet, 1, 1).metadata?.name, "test-c77f6d978");
  // The template the revision puts back is the set's, without the patch directive.
  assert.deepEqual(revisionTemplate(rev), upstreamSet.spec?.template);
});

test("revision names are cut to leave room for the hash", () => {
  assert.equal(controllerRevisionName("web", "abc"), "web-abc");
  assert.equal(controllerRevisionName("x".repeat(300), "abc").length, 223 + 4);
});

function rev(name: string, revision: number, data: unknown, created = "2026-01-01T00:00:00Z") {
  return {
    metadata: { name, namespace: "default", creationTimestamp: created, labels: { app: "foo" } },
    data,
    revision,
  } as ControllerRevision;
}

test("revisions sort by number, then age, then name; equality is by data", () => {
  const a = rev("a", 2, { x: 1 });
  const b = rev("b", 1, { x: 2 }, "2026-01-01T00:00:05Z");
  const c = rev("c", 1, { x: 2 });
  const sorted = sortControllerRevisions([a, b, c]);
  assert.deepEqual(
    sorted.map((r) => r.metadata?.name),
    ["c", "b", "a"],
  );
  assert.equal(nextRevision(sorted), 3);
  assert.equal(nextRevision([]), 1);
  assert.ok(equalRevision(b, c));
  assert.ok(!equalRevision(a, b));
  assert.deepEqual(findEqualRevisions(sorted, rev("n", 9, { x: 2 })), [c, b]);
  assert.ok(equalRevision(undefined, undefined));
  assert.ok(!equalRevision(a, undefined));
});

test("a parent lists its own and orphaned revisions that its selector matches", () => {
  const parent = { metadata: { name: "p", namespace: "default", uid: "u1" } };
  const mine = rev("mine", 1, {});
  mine.metadata!.ownerReferences = [
    { apiVersion: "apps/v1", kind: "StatefulSet", name: "p", uid: "u1", controller: true },
  ];
  const other = rev("other", 1, {});
  other.metadata!.ownerReferences = [
    { apiVersion: "apps/v1", kind: "StatefulSet", name: "q", uid: "u2", controller: true },
  ];
  const orphan = rev("orphan", 1, {});
  const elsewhere = { ...rev("elsewhere", 1, {}), metadata: { name: "e", namespace: "x" } };
  const got = listControllerRevisions(parent, [mine, other, orphan, elsewhere], (l) =>
    Boolean(l?.app === "foo"),
  );
  assert.deepEqual(
    got.map((r) => r.metadata?.name),
    ["mine", "orphan"],
  );
});
