import assert from "node:assert/strict";
import { test } from "node:test";
import type { Event } from "kubernetes-types/core/v1.js";
import { FakeClock } from "./clock.js";
import { EventCorrelator, objectReference } from "./events.js";

function ev(reason: string, message: string, name = "web", type = "Normal"): Event {
  return {
    metadata: { name: `${name}.${Math.random().toString(16).slice(2)}`, namespace: "default" },
    involvedObject: {
      kind: "Deployment",
      namespace: "default",
      name,
      uid: "u1",
      apiVersion: "apps/v1",
    },
    reason,
    message,
    type,
    count: 1,
    firstTimestamp: "2026-01-01T00:00:00Z",
    lastTimestamp: "2026-01-01T00:00:00Z",
    source: { component: "deployment-controller" },
  };
}

/** What the server would answer: the event as written, with a resourceVersion. */
function written(e: Event, rv: number): Event {
  return { ...e, metadata: { ...e.metadata, resourceVersion: String(rv) } };
}

test("identical events: the first is created, repeats patch count, lastTimestamp and message", () => {
  const c = new EventCorrelator({ clock: new FakeClock(0) });
  const first = c.correlate(ev("ScalingReplicaSet", "Scaled up replica set web-1 to 3"));
  assert.equal(first.skip, false);
  assert.equal(first.patch, undefined);
  c.updateState(written(first.event, 10));

  const again = ev("ScalingReplicaSet", "Scaled up replica set web-1 to 3");
  again.lastTimestamp = "2026-01-01T00:00:05Z";
  const second = c.correlate(again);
  assert.equal(second.event.metadata?.name, first.event.metadata?.name, "same Event object");
  assert.equal(second.event.count, 2);
  assert.equal(second.event.firstTimestamp, "2026-01-01T00:00:00Z");
  assert.deepEqual(second.patch, {
    count: 2,
    lastTimestamp: "2026-01-01T00:00:05Z",
    message: "Scaled up replica set web-1 to 3",
  });
  c.updateState(written(second.event, 11));
  assert.equal(
    c.correlate(ev("ScalingReplicaSet", "Scaled up replica set web-1 to 3")).patch?.count,
    3,
  );

  // A different message is a different Event.
  const other = c.correlate(ev("ScalingReplicaSet", "Scaled down replica set web-1 to 1"));
  assert.equal(other.patch, undefined);
  assert.notEqual(other.event.metadata?.name, first.event.metadata?.name);
});

test("ten similar events within ten minutes: the rest are combined into one aggregate Event", () => {
  const clock = new FakeClock(Date.parse("2026-01-01T00:00:00Z"));
  const c = new EventCorrelator({ clock });
  const results = Array.from({ length: 12 }, (_, i) => {
    clock.step(1000);
    const r = c.correlate(
      ev("FailedCreate", `Error creating: pod ${i} rejected`, "web", "Warning"),
    );
    if (!r.skip) c.updateState(written(r.event, 100 + i));
    return r;
  });
  for (const r of results.slice(0, 9)) assert.doesNotMatch(r.event.message!, /combined/);
  const tenth = results[9]!;
  assert.equal(
    tenth.event.message,
    "(combined from similar events): Error creating: pod 9 rejected",
  );
  assert.equal(tenth.event.count, 1);
  assert.equal(tenth.patch, undefined);
  const eleventh = results[10]!;
  assert.equal(
    eleventh.event.metadata?.name,
    tenth.event.metadata?.name,
    "the aggregate is updated",
  );
  assert.equal(eleventh.event.count, 2);
  assert.equal(
    eleventh.patch?.message,
    "(combined from similar events): Error creating: pod 10 rejected",
  );
  // After ten quiet minutes aggregation starts over.
  clock.step(601_000);
  const fresh = c.correlate(
    ev("FailedCreate", "Error creating: pod 99 rejected", "web", "Warning"),
  );
  assert.equal(fresh.event.message, "Error creating: pod 99 rejected");
});

test("spam filter: 25 events per source and object, then one per five minutes", () => {
  const clock = new FakeClock(0);
  const c = new EventCorrelator({ clock });
  const skipped = Array.from({ length: 30 }, (_, i) => c.correlate(ev(`R${i}`, "m")).skip);
  assert.deepEqual(skipped.slice(0, 25), Array(25).fill(false));
  assert.deepEqual(skipped.slice(25), Array(5).fill(true));
  assert.equal(c.correlate(ev("R", "m", "other-object")).skip, false, "per object");
  clock.step(300_000);
  assert.equal(c.correlate(ev("Rx", "m")).skip, false);
  assert.equal(c.correlate(ev("Ry", "m")).skip, true);
});

test("objectReference takes kind, apiVersion and identity from the object", () => {
  assert.deepEqual(
    objectReference({
      apiVersion: "apps/v1",
      kind: "ReplicaSet",
      metadata: {
        name: "web-1",
        namespace: "prod",
        uid: "abc",
        resourceVersion: "42",
        labels: { a: "b" },
      },
    }),
    {
      kind: "ReplicaSet",
      namespace: "prod",
      name: "web-1",
      uid: "abc",
      apiVersion: "apps/v1",
      resourceVersion: "42",
    },
  );
  const ref = { kind: "Node", name: "worker-0" };
  assert.equal(objectReference(ref), ref);
});
