import assert from "node:assert/strict";
import { test } from "node:test";
import type { Deployment, ReplicaSet } from "kubernetes-types/apps/v1.js";
import {
  calculateStatus,
  computeHashOf,
  equalIgnoreHash,
  findNewReplicaSet,
  isScalingEvent,
  maxSurge,
  maxUnavailable,
  newRSNewReplicas,
  newReplicaSetFor,
  planCleanup,
  planRollingStep,
  planScale,
  rolloutStatus,
  setNewReplicaSetAnnotations,
  type ScaleAction,
} from "./deployment.js";

const NOW = Date.parse("2026-01-01T00:10:00Z");
const template = {
  metadata: { labels: { app: "web" } },
  spec: { containers: [{ name: "nginx", image: "nginx" }] },
};

function deployment(replicas: number, extra: Partial<Deployment["spec"]> = {}): Deployment {
  return {
    metadata: { name: "web", namespace: "default", uid: "d1", generation: 1, annotations: {} },
    spec: {
      replicas,
      selector: { matchLabels: { app: "web" } },
      template,
      strategy: {
        type: "RollingUpdate",
        rollingUpdate: { maxSurge: "25%", maxUnavailable: "25%" },
      },
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
      ...extra,
    },
    status: {},
  };
}

function rs(
  name: string,
  replicas: number,
  available: number,
  opts: {
    created?: string;
    revision?: string;
    image?: string;
    annotations?: Record<string, string>;
  } = {},
): ReplicaSet {
  return {
    metadata: {
      name,
      namespace: "default",
      uid: `uid-${name}`,
      creationTimestamp: opts.created ?? "2026-01-01T00:00:00Z",
      annotations: {
        ...(opts.revision ? { "deployment.kubernetes.io/revision": opts.revision } : {}),
        ...opts.annotations,
      },
      generation: 1,
    },
    spec: {
      replicas,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web", "pod-template-hash": name.split("-")[1]! } },
        spec: { containers: [{ name: "nginx", image: opts.image ?? "nginx" }] },
      },
    },
    status: {
      replicas,
      availableReplicas: available,
      readyReplicas: available,
      observedGeneration: 1,
    },
  };
}

/** Applies scale actions to a list of ReplicaSets the way the wiring does, then marks them available. */
function apply(list: ReplicaSet[], actions: ScaleAction[], makeAvailable = true): void {
  for (const a of actions) {
    const r = list.find((x) => x.metadata?.name === a.name)!;
    r.spec!.replicas = a.to;
    Object.assign(r, {
      status: {
        replicas: a.to,
        availableReplicas: makeAvailable ? a.to : Math.min(a.to, r.status?.availableReplicas ?? 0),
      },
    });
  }
}

test("maxSurge rounds up and maxUnavailable down; both 0 becomes maxUnavailable 1", () => {
  assert.equal(maxSurge(deployment(10)), 3);
  assert.equal(maxUnavailable(deployment(10)), 2);
  const zero = deployment(3, {
    strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 0, maxUnavailable: 0 } },
  });
  assert.equal(maxUnavailable(zero), 1);
  assert.equal(maxSurge(deployment(3, { strategy: { type: "Recreate" } })), 0);
});

test("the new ReplicaSet: template hash label in name, labels and selector; found ignoring the hash", () => {
  const d = deployment(3);
  const hash = computeHashOf(d);
  const created = newReplicaSetFor(d, hash);
  assert.equal(created.metadata?.name, `web-${hash}`);
  assert.match(hash, /^[bcdfghjklmnpqrstvwxz2456789]+$/);
  assert.equal(created.spec?.template?.metadata?.labels?.["pod-template-hash"], hash);
  assert.equal(created.spec?.selector?.matchLabels?.["pod-template-hash"], hash);
  assert.deepEqual(created.metadata?.ownerReferences?.[0], {
    apiVersion: "apps/v1",
    kind: "Deployment",
    name: "web",
    uid: "d1",
    controller: true,
    blockOwnerDeletion: true,
  });
  assert.equal(computeHashOf(d), hash, "the hash is stable");
  assert.ok(equalIgnoreHash(created.spec?.template, d.spec?.template));
  const old = rs("web-old", 3, 3, { image: "nginx:1.26", created: "2025-12-01T00:00:00Z" });
  assert.equal(findNewReplicaSet(d, [old, created])?.metadata?.name, `web-${hash}`);
  assert.equal(findNewReplicaSet(d, [old]), undefined);
});

test("revisions: a new ReplicaSet gets the next one; one coming back keeps its old numbers", () => {
  const d = deployment(3, {});
  d.metadata!.annotations = {
    "kubernetes.io/change-cause": "set image",
    "kubectl.kubernetes.io/last-applied-configuration": "{}",
  };
  const fresh = newReplicaSetFor(d, "abc");
  assert.ok(setNewReplicaSetAnnotations(d, fresh, "3", false));
  assert.deepEqual(fresh.metadata?.annotations, {
    "kubernetes.io/change-cause": "set image",
    "deployment.kubernetes.io/revision": "3",
    "deployment.kubernetes.io/desired-replicas": "3",
    "deployment.kubernetes.io/max-replicas": "4",
  });
  const back = rs("web-1", 0, 0, { revision: "1" });
  setNewReplicaSetAnnotations(deployment(3), back, "4", true);
  assert.equal(back.metadata?.annotations?.["deployment.kubernetes.io/revision"], "4");
  assert.equal(back.metadata?.annotations?.["deployment.kubernetes.io/revision-history"], "1");
  setNewReplicaSetAnnotations(deployment(3), back, "6", true);
  assert.equal(back.metadata?.annotations?.["deployment.kubernetes.io/revision-history"], "1,4");
  assert.equal(setNewReplicaSetAnnotations(deployment(3), back, "6", true), false);
});

test("a rolling update steps within maxSurge and maxUnavailable to the new template", () => {
  const d = deployment(10);
  const old = rs("web-old", 10, 10, { created: "2025-12-01T00:00:00Z" });
  const next = rs("web-new", 0, 0);
  const list = [old, next];
  const seen: string[] = [];
  for (let i = 0; i < 30; i++) {
    const step = planRollingStep(d, next, [old]);
    if (step.actions.length === 0) break;
    apply(list, step.actions);
    const total = replicas(list);
    const available = list.reduce((n, r) => n + (r.status?.availableReplicas ?? 0), 0);
    assert.ok(total <= 10 + 3, `at most replicas + maxSurge pods (${total})`);
    assert.ok(available >= 10 - 2, `at least replicas - maxUnavailable available (${available})`);
    seen.push(`${old.spec!.replicas}/${next.spec!.replicas}`);
  }
  assert.equal(next.spec!.replicas, 10);
  assert.equal(old.spec!.replicas, 0);
  assert.deepEqual(seen.slice(0, 2), ["10/3", "5/3"]);
  // While new pods are not available, old ones are not scaled below the floor.
  const stuckOld = rs("web-old", 10, 10, { created: "2025-12-01T00:00:00Z" });
  const stuckNew = rs("web-new", 3, 0);
  const step = planRollingStep(d, stuckNew, [stuckOld]);
  assert.deepEqual(step.actions, [{ name: "web-old", to: 8 }]);
});

test("a rolling step refuses to scale an old ReplicaSet up when its status counts more available pods than its spec", () => {
  const d = deployment(4); // maxSurge 1, maxUnavailable 1
  // The old ReplicaSet was just lowered to 2; its status still counts the 3 pods it had.
  const old = rs("web-old", 2, 3, { created: "2025-12-01T00:00:00Z" });
  const next = rs("web-new", 3, 2);
  assert.throws(
    () => planRollingStep(d, next, [old]),
    /when cleaning up unhealthy replicas, got invalid request to scale down default\/web-old 2 -> 3/,
  );
});

function replicas(list: ReplicaSet[]): number {
  return list.reduce((n, r) => n + (r.spec?.replicas ?? 0), 0);
}

test("newRSNewReplicas fills up to replicas + maxSurge", () => {
  const d = deployment(4);
  const old = rs("web-old", 4, 4);
  const next = rs("web-new", 0, 0);
  assert.equal(newRSNewReplicas(d, [old, next], next), 1);
  assert.equal(
    newRSNewReplicas(deployment(4, { strategy: { type: "Recreate" } }), [old, next], next),
    4,
  );
});

test("scaling spreads proportionally over active ReplicaSets, leftovers to the largest", () => {
  const d = deployment(20); // maxSurge 5: 25 pods allowed
  const ann = {
    "deployment.kubernetes.io/max-replicas": "13",
    "deployment.kubernetes.io/desired-replicas": "10",
  };
  const old = rs("web-old", 8, 8, { created: "2025-12-01T00:00:00Z", annotations: ann });
  const next = rs("web-new", 5, 0, { annotations: ann });
  assert.ok(isScalingEvent(d, [old, next]));
  const actions = planScale(d, next, [old]);
  const sizes = Object.fromEntries(actions.map((a) => [a.name, a.to]));
  assert.equal(sizes["web-old"]! + sizes["web-new"]!, 25);
  assert.ok(sizes["web-old"]! > sizes["web-new"]!);
  // One active ReplicaSet takes the whole size.
  assert.deepEqual(planScale(deployment(5), rs("web-new", 1, 1), [rs("web-old", 0, 0)]), [
    { name: "web-new", to: 5 },
  ]);
});

test("status adds up the ReplicaSets; Progressing and Available follow upstream", () => {
  const d = deployment(3);
  const next = rs("web-new", 3, 1);
  const s1 = calculateStatus([next], next, d, NOW);
  assert.equal(s1.replicas, 3);
  assert.equal(s1.updatedReplicas, 3);
  assert.equal(s1.availableReplicas, 1);
  assert.equal(s1.unavailableReplicas, 2);
  assert.deepEqual(
    s1.conditions?.map((c) => [c.type, c.status, c.reason]),
    [["Available", "False", "MinimumReplicasUnavailable"]],
  );
  const progressing = rolloutStatus(d, [next], next, NOW);
  const cond = progressing.status.conditions?.find((c) => c.type === "Progressing");
  assert.equal(cond?.reason, "ReplicaSetUpdated");
  assert.equal(cond?.message, 'ReplicaSet "web-new" is progressing.');
  assert.ok(progressing.requeueAfter === undefined, "no deadline check without a condition yet");

  const done = rolloutStatus(
    { ...d, status: progressing.status },
    [rs("web-new", 3, 3)],
    rs("web-new", 3, 3),
    NOW,
  );
  const c2 = done.status.conditions?.find((c) => c.type === "Progressing");
  assert.equal(c2?.reason, "NewReplicaSetAvailable");
  assert.equal(c2?.message, 'ReplicaSet "web-new" has successfully progressed.');
  assert.equal(done.status.conditions?.find((c) => c.type === "Available")?.status, "True");

  // No progress past the deadline: ProgressDeadlineExceeded.
  const stale = {
    ...d,
    status: {
      ...s1,
      conditions: [
        {
          type: "Progressing",
          status: "True",
          reason: "ReplicaSetUpdated",
          message: "x",
          lastUpdateTime: "2026-01-01T00:00:00Z",
          lastTransitionTime: "2026-01-01T00:00:00Z",
        },
      ],
    },
  };
  const timedOut = rolloutStatus(stale, [next], next, NOW + 600_000);
  const c3 = timedOut.status.conditions?.find((c) => c.type === "Progressing");
  assert.equal(c3?.reason, "ProgressDeadlineExceeded");
  assert.equal(c3?.status, "False");
  assert.equal(c3?.message, 'ReplicaSet "web-new" has timed out progressing.');
  // Before the deadline, a stuck rollout is looked at again when it would expire.
  const waiting = rolloutStatus(stale, [next], next, NOW - 60_000);
  assert.equal(waiting.requeueAfter, 60_000);
});

test("cleanup keeps revisionHistoryLimit old ReplicaSets and never deletes live ones", () => {
  const d = deployment(1, { revisionHistoryLimit: 1 });
  const olds = [
    rs("web-a", 0, 0, { revision: "1" }),
    rs("web-b", 1, 1, { revision: "2" }),
    rs("web-c", 0, 0, { revision: "3" }),
  ];
  assert.deepEqual(
    planCleanup(d, olds).map((r) => r.metadata?.name),
    ["web-a"],
  );
  assert.deepEqual(planCleanup(deployment(1, { revisionHistoryLimit: 5 }), olds), []);
});
