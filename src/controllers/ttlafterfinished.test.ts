import assert from "node:assert/strict";
import { test } from "node:test";
import type { Job } from "kubernetes-types/batch/v1.js";
import { needsCleanup, ttlAction } from "./ttlafterfinished.js";

const at = (s: string) => Date.parse(s);

function job(
  ttl: number | undefined,
  condition?: { type: string; lastTransitionTime?: string },
): Job {
  return {
    metadata: { name: "j", namespace: "ns" },
    spec: { template: {}, ...(ttl === undefined ? {} : { ttlSecondsAfterFinished: ttl }) },
    status: condition ? { conditions: [{ status: "True", ...condition }] } : {},
  };
}

test("only finished Jobs with a TTL are cleaned up", () => {
  assert.equal(needsCleanup(job(10)), false);
  assert.equal(needsCleanup(job(undefined, { type: "Complete" })), false);
  assert.equal(needsCleanup(job(0, { type: "Failed" })), true);
  assert.equal(needsCleanup(job(10, { type: "SuccessCriteriaMet" })), false);
});

test("a Job expires ttlSecondsAfterFinished after its finishing condition's transition", () => {
  const j = job(100, { type: "Complete", lastTransitionTime: "2025-01-01T00:00:00Z" });
  assert.deepEqual(ttlAction(j, at("2025-01-01T00:00:40Z")), { type: "wait", after: 60_000 });
  assert.deepEqual(ttlAction(j, at("2025-01-01T00:01:40Z")), {
    type: "delete",
    expiredAt: at("2025-01-01T00:01:40Z"),
  });
  const deleting = { ...j, metadata: { ...j.metadata, deletionTimestamp: "2025-01-01T00:02:00Z" } };
  assert.deepEqual(ttlAction(deleting, at("2025-01-01T01:00:00Z")), { type: "none" });
  assert.throws(
    () => ttlAction(job(1, { type: "Failed" }), at("2025-01-01T00:00:00Z")),
    /unable to find the time when the Job ns\/j finished/,
  );
});
