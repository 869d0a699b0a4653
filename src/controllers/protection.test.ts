import assert from "node:assert/strict";
import { test } from "node:test";
import type { PersistentVolumeClaim, Pod } from "kubernetes-types/core/v1.js";
import {
  claimsOfPod,
  podUsesPVC,
  protectionAction,
  pvIsInUse,
  PVC_PROTECTION_FINALIZER,
} from "./protection.js";

const claim = (
  name: string,
  extra: Partial<PersistentVolumeClaim["metadata"]> = {},
): PersistentVolumeClaim => ({
  metadata: { name, namespace: "ns", finalizers: [PVC_PROTECTION_FINALIZER], ...extra },
});

function pod(
  volumes: NonNullable<Pod["spec"]>["volumes"],
  nodeName?: string,
  meta: Pod["metadata"] = {},
): Pod {
  return {
    metadata: { name: "p", namespace: "ns", uid: "pod-uid", ...meta },
    spec: { containers: [], volumes, ...(nodeName ? { nodeName } : {}) },
  };
}

test("the finalizer goes once a deleted object is unused, and is added to old objects", () => {
  const deleting = claim("a", { deletionTimestamp: "2024-01-01T00:00:00Z" });
  assert.equal(
    protectionAction(deleting, PVC_PROTECTION_FINALIZER, () => false),
    "removeFinalizer",
  );
  assert.equal(
    protectionAction(deleting, PVC_PROTECTION_FINALIZER, () => true),
    "none",
  );
  assert.equal(
    protectionAction(claim("b", { finalizers: [] }), PVC_PROTECTION_FINALIZER, () => true),
    "addFinalizer",
  );
  assert.equal(
    protectionAction(claim("c"), PVC_PROTECTION_FINALIZER, () => true),
    "none",
  );
});

test("scheduled pods use the claims their volumes name", () => {
  const vol = [{ name: "data", persistentVolumeClaim: { claimName: "a" } }];
  assert.ok(podUsesPVC(pod(vol, "n1"), claim("a")));
  assert.ok(
    !podUsesPVC(pod(vol), claim("a")),
    "an unscheduled pod never starts with a deleted claim",
  );
  assert.ok(!podUsesPVC(pod(vol, "n1"), claim("b")));
  const eph = [{ name: "scratch", ephemeral: { volumeClaimTemplate: { spec: {} } } }];
  const owned = claim("p-scratch", {
    ownerReferences: [
      { apiVersion: "v1", kind: "Pod", name: "p", uid: "pod-uid", controller: true },
    ],
  });
  assert.ok(podUsesPVC(pod(eph, "n1"), owned));
  assert.ok(
    !podUsesPVC(pod(eph, "n1"), claim("p-scratch")),
    "another owner's claim of the same name",
  );
  assert.ok(
    !podUsesPVC(
      pod(eph, "n1", { deletionTimestamp: "2024-01-01T00:00:00Z", deletionGracePeriodSeconds: 0 }),
      owned,
    ),
  );
  assert.deepEqual(claimsOfPod(pod([...vol, ...eph])), ["a", "p-scratch"]);
  assert.ok(pvIsInUse({ metadata: {}, status: { phase: "Bound" } }));
  assert.ok(!pvIsInUse({ metadata: {}, status: { phase: "Released" } }));
});
