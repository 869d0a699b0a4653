import assert from "node:assert/strict";
import { test } from "node:test";
import type { ControllerRevision, StatefulSet } from "kubernetes-types/apps/v1.js";
import type { PersistentVolumeClaim, Pod } from "kubernetes-types/core/v1.js";
import { goJSON } from "./history.js";
import {
  getOrdinal,
  isClaimOwnerUpToDate,
  newRevision,
  newVersionedStatefulSetPod,
  parentNameAndOrdinal,
  revisionsToTruncate,
  statefulSetRevisions,
  type StatefulPodOps,
  updateClaimOwnerRefs,
  updateStatefulSet,
} from "./statefulset.js";

const NOW = Date.parse("2026-01-01T00:10:00Z");

function sts(extra: Partial<NonNullable<StatefulSet["spec"]>> = {}): StatefulSet {
  return {
    metadata: { name: "web", namespace: "default", uid: "set-uid", generation: 1 },
    spec: {
      replicas: 3,
      serviceName: "nginx",
      selector: { matchLabels: { app: "nginx" } },
      template: {
        metadata: { labels: { app: "nginx" } },
        spec: { containers: [{ name: "nginx", image: "nginx:1" }] },
      },
      volumeClaimTemplates: [
        {
          metadata: { name: "www" },
          spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
        },
      ],
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: 0 } },
      podManagementPolicy: "OrderedReady",
      ...extra,
    },
  };
}

/** An in-memory cluster: the ops write here, and `kubelet` marks pods Running and Ready. */
class FakeCluster implements StatefulPodOps {
  pods = new Map<string, Pod>();
  claims = new Map<string, PersistentVolumeClaim>();
  log: string[] = [];

  async createPod(set: StatefulSet, pod: Pod) {
    await this.createMissingClaims(set, pod);
    this.pods.set(pod.metadata!.name!, {
      ...structuredClone(pod),
      metadata: { ...pod.metadata, uid: `uid-${pod.metadata!.name}` },
      status: { phase: "Pending" },
    });
    this.log.push(`create ${pod.metadata!.name}`);
  }
  async updatePod(_set: StatefulSet, pod: Pod) {
    this.log.push(`update ${pod.metadata!.name}`);
  }
  async deletePod(_set: StatefulSet, pod: Pod) {
    this.pods.delete(pod.metadata!.name!);
    this.log.push(`delete ${pod.metadata!.name}`);
  }
  async createMissingClaims(set: StatefulSet, pod: Pod) {
    for (const v of pod.spec?.volumes ?? []) {
      const name = v.persistentVolumeClaim?.claimName;
      if (name && !this.claims.has(name)) {
        this.claims.set(name, { metadata: { name, namespace: set.metadata?.namespace } });
        this.log.push(`claim ${name}`);
      }
    }
  }
  claimsMatchRetentionPolicy() {
    return true;
  }
  async updateClaimsForRetentionPolicy() {}
  podClaimIsStale() {
    return false;
  }
  readyAll() {
    for (const p of this.pods.values())
      (p as { status?: Pod["status"] }).status = {
        phase: "Running",
        conditions: [{ type: "Ready", status: "True", lastTransitionTime: "2026-01-01T00:00:00Z" }],
      };
  }
  list(): Pod[] {
    return [...this.pods.values()];
  }
}

function revisions(set: StatefulSet): { current: ControllerRevision; update: ControllerRevision } {
  const r = newRevision(set, 1, 0);
  return { current: r, update: r };
}

async function sync(set: StatefulSet, c: FakeCluster, current?: ControllerRevision) {
  const { update } = revisions(set);
  return updateStatefulSet(set, current ?? update, update, 0, c.list(), c, NOW);
}

test("pod names and ordinals", () => {
  assert.deepEqual(parentNameAndOrdinal("web-12"), { parent: "web", ordinal: 12 });
  assert.deepEqual(parentNameAndOrdinal("my-app-0"), { parent: "my-app", ordinal: 0 });
  assert.deepEqual(parentNameAndOrdinal("web"), { parent: "", ordinal: -1 });
});

test("a new pod has its identity, its claims and its revision", () => {
  const set = sts();
  const pod = newVersionedStatefulSetPod(set, set, "web-a", "web-b", 1);
  assert.equal(pod.metadata?.name, "web-1");
  assert.equal(pod.metadata?.generateName, "web-");
  assert.deepEqual(pod.metadata?.labels, {
    app: "nginx",
    "statefulset.kubernetes.io/pod-name": "web-1",
    "apps.kubernetes.io/pod-index": "1",
    "controller-revision-hash": "web-b",
  });
  assert.equal(pod.spec?.hostname, "web-1");
  assert.equal(pod.spec?.subdomain, "nginx");
  assert.deepEqual(pod.spec?.volumes, [
    { name: "www", persistentVolumeClaim: { claimName: "www-web-1" } },
  ]);
  assert.equal(pod.metadata?.ownerReferences?.[0]?.kind, "StatefulSet");
  // Below the partition, pods are made at the current revision.
  const partitioned = sts({
    updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: 2 } },
  });
  assert.equal(
    newVersionedStatefulSetPod(partitioned, partitioned, "web-a", "web-b", 1).metadata?.labels?.[
      "controller-revision-hash"
    ],
    "web-a",
  );
});

test("OrderedReady creates one pod at a time, each after its predecessor is Ready", async () => {
  const set = sts();
  const c = new FakeCluster();
  await sync(set, c);
  assert.deepEqual(c.log, ["claim www-web-0", "create web-0"]);
  await sync(set, c);
  assert.equal(c.log.length, 2, "web-0 is not ready yet: nothing else happens");
  c.readyAll();
  await sync(set, c);
  assert.deepEqual(c.log.slice(2), ["claim www-web-1", "create web-1"]);
  c.readyAll();
  await sync(set, c);
  c.readyAll();
  const status = await sync(set, c);
  assert.deepEqual([...c.pods.keys()].sort(), ["web-0", "web-1", "web-2"]);
  assert.equal(status.replicas, 3);
  assert.equal(status.readyReplicas, 3);
  assert.equal(status.availableReplicas, 3);
  assert.equal(status.currentReplicas, 3);
  assert.equal(status.updatedReplicas, 3);
});

test("Parallel creates every pod at once", async () => {
  const set = sts({ podManagementPolicy: "Parallel" });
  const c = new FakeCluster();
  await sync(set, c);
  assert.deepEqual([...c.pods.keys()].sort(), ["web-0", "web-1", "web-2"]);
});

test("spec.ordinals.start shifts the ordinals", async () => {
  const set = sts({ ordinals: { start: 5 }, podManagementPolicy: "Parallel", replicas: 2 });
  const c = new FakeCluster();
  await sync(set, c);
  assert.deepEqual([...c.pods.keys()].sort(), ["web-5", "web-6"]);
});

test("scaling down removes the highest ordinal first, one at a time", async () => {
  const c = new FakeCluster();
  const three = sts();
  for (let i = 0; i < 3; i++) {
    await sync(three, c);
    c.readyAll();
  }
  const one = sts({ replicas: 1 });
  await sync(one, c);
  assert.deepEqual(c.log.slice(-1), ["delete web-2"]);
  // web-1 goes only once web-2 is gone: a terminating web-2 blocks.
  c.pods.set("web-2x", {
    metadata: { name: "web-2", deletionTimestamp: "2026-01-01T00:09:00Z", labels: {} },
    status: { phase: "Running" },
  });
  const before = c.log.length;
  await updateStatefulSet(one, revisions(one).update, revisions(one).update, 0, c.list(), c, NOW);
  assert.equal(c.log.length, before);
  c.pods.delete("web-2x");
  await sync(one, c);
  assert.deepEqual(c.log.slice(-1), ["delete web-1"]);
  assert.deepEqual([...c.pods.keys()], ["web-0"]);
});

test("a rolling update replaces pods from the highest ordinal down to the partition", async () => {
  const c = new FakeCluster();
  const v1 = sts();
  for (let i = 0; i < 3; i++) {
    await sync(v1, c);
    c.readyAll();
  }
  const v2 = sts({ updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: 2 } } });
  (v2.spec!.template.spec!.containers[0] as { image: string }).image = "nginx:2";
  const oldRev = revisions(v1).update;
  const newRev = newRevision(v2, 2, 0);
  const run = () => updateStatefulSet(v2, oldRev, newRev, 0, c.list(), c, NOW);
  await run();
  assert.deepEqual(c.log.slice(-1), ["delete web-2"]);
  await run();
  // The create loop brings web-2 back at the update revision, on its existing claim.
  assert.deepEqual(c.log.slice(-1), ["create web-2"]);
  assert.equal(
    c.pods.get("web-2")?.metadata?.labels?.["controller-revision-hash"],
    newRev.metadata?.name,
  );
  assert.equal(c.pods.get("web-2")?.spec?.containers[0]?.image, "nginx:2");
  // web-2 not ready yet: the update waits.
  const n = c.log.length;
  await run();
  assert.equal(c.log.length, n);
  c.readyAll();
  const status = await run();
  // web-1 and web-0 are below the partition: they keep the old revision.
  assert.equal(c.log.length, n);
  assert.equal(status.updatedReplicas, 1);
  assert.equal(status.currentReplicas, 2);
});

test("OnDelete never deletes pods for an update", async () => {
  const c = new FakeCluster();
  const v1 = sts({ updateStrategy: { type: "OnDelete" } });
  for (let i = 0; i < 3; i++) {
    await sync(v1, c);
    c.readyAll();
  }
  const v2 = sts({ updateStrategy: { type: "OnDelete" } });
  (v2.spec!.template.spec!.containers[0] as { image: string }).image = "nginx:2";
  const n = c.log.length;
  await updateStatefulSet(v2, revisions(v1).update, newRevision(v2, 2, 0), 0, c.list(), c, NOW);
  assert.equal(c.log.length, n);
});

test("failed pods are deleted to be recreated", async () => {
  const c = new FakeCluster();
  const set = sts({ replicas: 1 });
  await sync(set, c);
  (c.pods.get("web-0") as { status?: Pod["status"] }).status = { phase: "Failed" };
  await sync(set, c);
  assert.deepEqual(c.log.slice(-1), ["delete web-0"]);
  await sync(set, c);
  assert.deepEqual(c.log.slice(-1), ["create web-0"]);
});

test("revisions: the latest equal one is kept, an older equal one is renumbered, else created", async () => {
  const v1 = sts();
  const v2 = sts();
  (v2.spec!.template.spec!.containers[0] as { image: string }).image = "nginx:2";
  const r1 = { ...newRevision(v1, 1, 0), metadata: { ...newRevision(v1, 1, 0).metadata } };
  const r2 = newRevision(v2, 2, 0);
  const calls: string[] = [];
  const ops = {
    create: async (_s: StatefulSet, rev: ControllerRevision) => {
      calls.push(`create ${rev.metadata?.name} ${rev.revision}`);
      return rev;
    },
    updateRevision: async (rev: ControllerRevision, n: number) => {
      calls.push(`renumber ${rev.metadata?.name} ${n}`);
      return { ...rev, revision: n };
    },
  };
  const same = await statefulSetRevisions(v2, [r1, r2], ops);
  assert.equal(same.update, r2);
  assert.deepEqual(calls, []);
  const back = await statefulSetRevisions(v1, [r1, r2], ops);
  assert.deepEqual(calls, [`renumber ${r1.metadata?.name} 3`]);
  assert.equal(back.update.revision, 3);
  const v3 = sts();
  (v3.spec!.template.spec!.containers[0] as { image: string }).image = "nginx:3";
  const fresh = await statefulSetRevisions(v3, [r1, r2], ops);
  assert.equal(fresh.update.revision, 3);
  assert.equal(goJSON(fresh.update.data).includes("nginx:3"), true);
  // The current revision is the one the status names, else the update revision.
  const withStatus = { ...v2, status: { replicas: 3, currentRevision: r1.metadata?.name } };
  assert.equal((await statefulSetRevisions(withStatus, [r1, r2], ops)).current, r1);
});

test("history beyond the limit is truncated, never the live revisions", () => {
  const revs = [1, 2, 3, 4].map(
    (n) => ({ metadata: { name: `r${n}` }, revision: n }) as ControllerRevision,
  );
  const set = sts({ revisionHistoryLimit: 1 });
  const pod = { metadata: { name: "web-0", labels: { "controller-revision-hash": "r1" } } } as Pod;
  assert.deepEqual(
    revisionsToTruncate(set, [pod], revs, revs[3], revs[3]).map((r) => r.metadata?.name),
    ["r2"],
  );
});

test("claim owner references follow the retention policy", () => {
  const pod = (name: string) => ({ metadata: { name, uid: `uid-${name}` } }) as Pod;
  const claim = (): PersistentVolumeClaim => ({ metadata: { name: "www-web-0" } });
  const retain = sts();
  assert.ok(isClaimOwnerUpToDate(claim(), retain, pod("web-0")));

  const whenDeleted = sts({
    persistentVolumeClaimRetentionPolicy: { whenDeleted: "Delete", whenScaled: "Retain" },
  });
  const c1 = claim();
  assert.ok(!isClaimOwnerUpToDate(c1, whenDeleted, pod("web-0")));
  updateClaimOwnerRefs(c1, whenDeleted, pod("web-0"));
  assert.deepEqual(c1.metadata?.ownerReferences, [
    {
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      name: "web",
      uid: "set-uid",
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
  assert.ok(isClaimOwnerUpToDate(c1, whenDeleted, pod("web-0")));

  const whenScaled = sts({
    replicas: 1,
    persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain", whenScaled: "Delete" },
  });
  const c2 = claim();
  // web-0 is in range: no reference; web-4 is scaled away: the pod owns its claim.
  assert.ok(isClaimOwnerUpToDate(c2, whenScaled, pod("web-0")));
  assert.ok(!isClaimOwnerUpToDate(c2, whenScaled, pod("web-4")));
  updateClaimOwnerRefs(c2, whenScaled, pod("web-4"));
  assert.deepEqual(c2.metadata?.ownerReferences, [
    {
      apiVersion: "v1",
      kind: "Pod",
      name: "web-4",
      uid: "uid-web-4",
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
  assert.equal(getOrdinal(pod("web-4")), 4);
});
