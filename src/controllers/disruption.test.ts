import assert from "node:assert/strict";
import { test } from "node:test";
import type { Pod } from "kubernetes-types/core/v1.js";
import type { PodDisruptionBudget } from "kubernetes-types/policy/v1.js";
import {
  buildDisruptedPodMap,
  countHealthyPods,
  DELETION_TIMEOUT,
  expectedPodCount,
  failSafeStatus,
  goLabelSelector,
  nextPDBStatus,
  scaleFinders,
  staleDisruptionWait,
} from "./disruption.js";

const NOW = Date.parse("2024-05-01T10:00:00Z");
const iso = (t: number) => new Date(t).toISOString().replace(/\.\d+Z$/, "Z");

function pod(
  name: string,
  opts: { ready?: boolean; owner?: string; deleting?: boolean } = {},
): Pod {
  return {
    metadata: {
      name,
      namespace: "ns",
      labels: { app: "web" },
      ...(opts.owner
        ? {
            ownerReferences: [
              {
                apiVersion: "apps/v1",
                kind: "ReplicaSet",
                name: opts.owner,
                uid: `uid-${opts.owner}`,
                controller: true,
              },
            ],
          }
        : {}),
      ...(opts.deleting ? { deletionTimestamp: iso(NOW) } : {}),
    },
    status: { conditions: [{ type: "Ready", status: opts.ready === false ? "False" : "True" }] },
  };
}

const store = (
  objs: {
    metadata: { name: string; namespace: string; uid: string; ownerReferences?: unknown[] };
    spec: { replicas: number };
  }[],
) => ({
  getByName: (ns: string, name: string) =>
    objs.find((o) => o.metadata.namespace === ns && o.metadata.name === name) as never,
});

const rs = (name: string, replicas: number, deployment?: string) => ({
  metadata: {
    name,
    namespace: "ns",
    uid: `uid-${name}`,
    ...(deployment
      ? {
          ownerReferences: [
            {
              apiVersion: "apps/v1",
              kind: "Deployment",
              name: deployment,
              uid: `uid-${deployment}`,
              controller: true,
            },
          ],
        }
      : {}),
  },
  spec: { replicas },
});

const finders = scaleFinders({
  rcs: store([]),
  rss: store([rs("a", 4), rs("b", 2, "d")]),
  deployments: store([
    { metadata: { name: "d", namespace: "ns", uid: "uid-d" }, spec: { replicas: 6 } },
  ]),
  statefulsets: store([]),
});

function pdb(
  spec: PodDisruptionBudget["spec"],
  status?: PodDisruptionBudget["status"],
): PodDisruptionBudget {
  return {
    metadata: { name: "p", namespace: "ns", generation: 2 },
    spec: { selector: { matchLabels: { app: "web" } }, ...spec },
    ...(status ? { status } : {}),
  };
}

test("an integer minAvailable counts the selected pods; percentages and maxUnavailable use the controllers' scale", async () => {
  const pods = [pod("a-1", { owner: "a" }), pod("a-2", { owner: "a" }), pod("b-1", { owner: "b" })];
  assert.deepEqual(await expectedPodCount(pdb({ minAvailable: 2 }), pods, finders), {
    expectedCount: 3,
    desiredHealthy: 2,
    unmanagedPods: [],
  });
  // ReplicaSet a (4) plus Deployment d (6) owning b: 10; 50% rounds up.
  assert.deepEqual(await expectedPodCount(pdb({ minAvailable: "55%" }), pods, finders), {
    expectedCount: 10,
    desiredHealthy: 6,
    unmanagedPods: [],
  });
  assert.equal(
    (await expectedPodCount(pdb({ maxUnavailable: "25%" }), pods, finders)).desiredHealthy,
    7,
  );
  assert.equal(
    (await expectedPodCount(pdb({ maxUnavailable: 20 }), pods, finders)).desiredHealthy,
    0,
  );
  const orphan = await expectedPodCount(
    pdb({ maxUnavailable: 1 }),
    [...pods, pod("lone")],
    finders,
  );
  assert.deepEqual(orphan.unmanagedPods, ["lone"]);
  await assert.rejects(
    expectedPodCount(pdb({ maxUnavailable: 1 }), [pod("x", { owner: "missing" })], finders),
    /found no controllers for pod "x"/,
  );
});

test("healthy pods exclude unready, deleted and recently evicted ones; stale evictions are dropped", () => {
  const pods = [
    pod("a"),
    pod("b"),
    pod("c", { ready: false }),
    pod("d", { deleting: true }),
    pod("e"),
  ];
  const p = pdb(
    { minAvailable: 1 },
    {
      currentHealthy: 0,
      desiredHealthy: 0,
      expectedPods: 0,
      disruptionsAllowed: 0,
      disruptedPods: { b: iso(NOW - 1000), e: iso(NOW - DELETION_TIMEOUT - 1000), gone: iso(NOW) },
    },
  );
  const { disruptedPods, recheckAt, notDeleted } = buildDisruptedPodMap(pods, p, NOW);
  assert.deepEqual(disruptedPods, { b: iso(NOW - 1000) });
  assert.equal(recheckAt, NOW - 1000 + DELETION_TIMEOUT);
  assert.deepEqual(
    notDeleted.map((x) => x.metadata?.name),
    ["e"],
  );
  assert.equal(countHealthyPods(pods, disruptedPods, NOW), 2);
});

test("the status and its DisruptionAllowed condition, written only when something changed", () => {
  const p = pdb({ minAvailable: 2 });
  const s = nextPDBStatus(
    p,
    { currentHealthy: 3, desiredHealthy: 2, expectedCount: 3, disruptedPods: {} },
    NOW,
  )!;
  assert.deepEqual(s, {
    currentHealthy: 3,
    desiredHealthy: 2,
    expectedPods: 3,
    disruptionsAllowed: 1,
    observedGeneration: 2,
    conditions: [
      {
        type: "DisruptionAllowed",
        status: "True",
        reason: "SufficientPods",
        message: "",
        observedGeneration: 2,
        lastTransitionTime: iso(NOW),
      },
    ],
  });
  const same = { ...p, status: s };
  assert.equal(
    nextPDBStatus(
      same,
      { currentHealthy: 3, desiredHealthy: 2, expectedCount: 3, disruptedPods: {} },
      NOW + 5000,
    ),
    undefined,
  );
  const down = nextPDBStatus(
    same,
    { currentHealthy: 2, desiredHealthy: 2, expectedCount: 3, disruptedPods: {} },
    NOW + 5000,
  )!;
  assert.equal(down.disruptionsAllowed, 0);
  assert.equal(down.conditions![0]!.reason, "InsufficientPods");
  assert.equal(down.conditions![0]!.lastTransitionTime, iso(NOW + 5000));
  // No expected pods: nothing may be disrupted.
  assert.equal(
    nextPDBStatus(
      p,
      { currentHealthy: 3, desiredHealthy: 0, expectedCount: 0, disruptedPods: {} },
      NOW,
    )!.disruptionsAllowed,
    0,
  );

  const failed = failSafeStatus(same, 'found no controllers for pod "x"', NOW + 9000);
  assert.equal(failed.disruptionsAllowed, 0);
  assert.equal(failed.currentHealthy, 3);
  assert.deepEqual(
    { ...failed.conditions![0], lastTransitionTime: undefined },
    {
      type: "DisruptionAllowed",
      status: "False",
      reason: "SyncFailed",
      message: 'found no controllers for pod "x"',
      observedGeneration: 2,
      lastTransitionTime: undefined,
    },
  );
});

test("Go's printing of a selector, and stale DisruptionTarget conditions", () => {
  assert.equal(
    goLabelSelector({
      matchLabels: { b: "2", a: "1" },
      matchExpressions: [{ key: "k", operator: "In", values: ["x", "y"] }],
    }),
    "&LabelSelector{MatchLabels:map[string]string{a: 1,b: 2,},MatchExpressions:[]LabelSelectorRequirement{LabelSelectorRequirement{Key:k,Operator:In,Values:[x y],},},}",
  );
  const p = pod("a");
  p.status!.conditions!.push({
    type: "DisruptionTarget",
    status: "True",
    lastTransitionTime: iso(NOW - 60_000),
  });
  assert.equal(staleDisruptionWait(p, NOW), 60_000);
  assert.equal(staleDisruptionWait(p, NOW + 120_000), 0);
  assert.equal(staleDisruptionWait(pod("b"), NOW), undefined);
});
