import assert from "node:assert/strict";
import { test } from "node:test";
import type { OwnerReference } from "kubernetes-types/meta/v1.js";
import type { ControllerContext } from "./context.js";
import {
  classifyDependent,
  GarbageCollector,
  monitoredResources,
  type OwnerState,
} from "./garbagecollector.js";

const ref = (uid: string, block = true): OwnerReference => ({
  apiVersion: "apps/v1",
  kind: "ReplicaSet",
  name: uid,
  uid,
  controller: true,
  blockOwnerDeletion: block,
});
const owners = (...s: [string, OwnerState][]) =>
  s.map(([uid, state]) => ({ ref: ref(uid), state }));

test("a dependent is kept while one owner exists, losing references to the others", () => {
  assert.deepEqual(classifyDependent(owners(["a", "solid"]), false, []), { action: "none" });
  assert.deepEqual(
    classifyDependent(owners(["a", "solid"], ["b", "dangling"], ["c", "waiting"]), false, []),
    {
      action: "removeReferences",
      uids: ["b", "c"],
    },
  );
  assert.deepEqual(classifyDependent([], false, []), { action: "none" });
});

test("a dependent whose owners are gone is deleted with the policy its finalizers ask for", () => {
  assert.deepEqual(classifyDependent(owners(["a", "dangling"]), true, []), {
    action: "delete",
    policy: "Background",
  });
  assert.deepEqual(classifyDependent(owners(["a", "dangling"]), false, ["orphan"]), {
    action: "delete",
    policy: "Orphan",
  });
  // Owners deleting in the foreground: a dependent with dependents of its own goes in the
  // foreground too, so the chain is removed bottom up.
  assert.deepEqual(classifyDependent(owners(["a", "waiting"]), true, []), {
    action: "delete",
    policy: "Foreground",
  });
  assert.deepEqual(classifyDependent(owners(["a", "waiting"]), false, []), {
    action: "delete",
    policy: "Background",
  });
});

test("the collector watches deletable resources but not Events", () => {
  const ids = monitoredResources().map((r) => `${r.group}/${r.resource}`);
  assert.ok(
    ids.includes("/pods") && ids.includes("apps/replicasets") && ids.includes("/namespaces"),
  );
  assert.ok(!ids.includes("/events") && !ids.includes("events.k8s.io/events"));
  assert.equal(new Set(ids).size, ids.length, "each resource once");
});

function collector(): GarbageCollector {
  return new GarbageCollector(
    { options: { concurrency: {} } } as unknown as ControllerContext,
    {} as never,
  );
}

/** Takes everything waiting in the attemptToDelete queue. */
async function queued(gc: GarbageCollector): Promise<string[]> {
  const out: string[] = [];
  while (gc.attemptToDelete.len() > 0) {
    const { item } = await gc.attemptToDelete.get();
    out.push(item!);
    gc.attemptToDelete.done(item!);
  }
  return out.sort();
}

test("the graph links owners and dependents and queues what an event may affect", async () => {
  const gc = collector();
  const rs = { metadata: { uid: "rs", name: "web-1", namespace: "ns" } };
  const pod = (uid: string) => ({
    metadata: { uid, name: uid, namespace: "ns", ownerReferences: [ref("rs")] },
  });
  gc.observe(rs, "apps/v1", "ReplicaSet");
  gc.observe(pod("p1"), "v1", "Pod");
  gc.observe(pod("p2"), "v1", "Pod");
  assert.deepEqual([...gc.nodes.get("rs")!.dependents].sort(), ["p1", "p2"]);
  assert.deepEqual(await queued(gc), [], "owners present: nothing to look at");

  // A dependent whose owner was never seen is looked at (the owner may not exist).
  gc.observe(
    { metadata: { uid: "p3", name: "p3", namespace: "ns", ownerReferences: [ref("ghost")] } },
    "v1",
    "Pod",
  );
  assert.deepEqual(await queued(gc), ["p3"]);
  assert.equal(gc.nodes.get("ghost")?.virtual, true);

  // The owner goes: its dependents are looked at.
  gc.remove(rs);
  assert.deepEqual(await queued(gc), ["p1", "p2"]);

  // Foreground deletion of an owner queues it and its dependents; orphaning queues it apart.
  const gc2 = collector();
  gc2.observe(rs, "apps/v1", "ReplicaSet");
  gc2.observe(pod("p1"), "v1", "Pod");
  gc2.observe(
    {
      metadata: {
        ...rs.metadata,
        deletionTimestamp: "2026-01-01T00:00:00Z",
        finalizers: ["foregroundDeletion"],
      },
    },
    "apps/v1",
    "ReplicaSet",
  );
  assert.deepEqual(await queued(gc2), ["p1", "rs"]);
  const gc3 = collector();
  gc3.observe(
    {
      metadata: {
        ...rs.metadata,
        deletionTimestamp: "2026-01-01T00:00:00Z",
        finalizers: ["orphan"],
      },
    },
    "apps/v1",
    "ReplicaSet",
  );
  assert.equal(gc3.attemptToOrphan.len(), 1);
});
