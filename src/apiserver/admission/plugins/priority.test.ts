import { test } from "node:test";
import assert from "node:assert/strict";
import { isStatusError } from "../../../api/status.js";
import type { KObject } from "../../registry/types.js";
import type { AdmissionAttributes } from "../types.js";
import { bootstrapPriorityClasses, priority } from "./priority.js";
import { attrs, FakeContext, pod } from "./testing.js";

const pc = (name: string, value: number, more: Record<string, unknown> = {}): KObject => ({
  apiVersion: "scheduling.k8s.io/v1",
  kind: "PriorityClass",
  metadata: { name },
  value,
  preemptionPolicy: "PreemptLowerPriority",
  ...more,
});

async function refusal(
  ctx: FakeContext,
  a: AdmissionAttributes,
  phase: "admit" | "validate" = "admit",
): Promise<string> {
  try {
    await priority[phase]!(a, ctx);
  } catch (err) {
    assert.ok(isStatusError(err, "Forbidden"), String(err));
    return err.message;
  }
  assert.fail("admitted");
}

const specOf = (p: KObject) => p.spec as Record<string, unknown>;

test("a pod's class becomes its priority and preemption policy", async () => {
  const ctx = new FakeContext([pc("high", 1000, { preemptionPolicy: "Never" })]);
  const p = pod("p", { priorityClassName: "high" });
  await priority.admit!(attrs("CREATE", "pods", p), ctx);
  assert.equal(specOf(p).priority, 1000);
  assert.equal(specOf(p).preemptionPolicy, "Never");
});

test("the system classes are built in; unknown classes are refused", async () => {
  const ctx = new FakeContext();
  const p = pod("p", { priorityClassName: "system-node-critical" });
  await priority.admit!(attrs("CREATE", "pods", p), ctx);
  assert.equal(specOf(p).priority, 2000001000);
  assert.equal(
    await refusal(ctx, attrs("CREATE", "pods", pod("q", { priorityClassName: "nope" }))),
    'pods "q" is forbidden: no PriorityClass with name nope was found',
  );
  assert.deepEqual(
    bootstrapPriorityClasses().map((c) => [c.metadata!.name, c.value]),
    [
      ["system-node-critical", 2000001000],
      ["system-cluster-critical", 2000000000],
    ],
  );
});

test("pods without a class get the global default, or priority 0", async () => {
  const none = pod("p");
  await priority.admit!(attrs("CREATE", "pods", none), new FakeContext());
  assert.equal(specOf(none).priority, 0);
  assert.equal(specOf(none).preemptionPolicy, "PreemptLowerPriority");
  assert.equal(specOf(none).priorityClassName, undefined);
  const ctx = new FakeContext([
    pc("low-default", 10, { globalDefault: true }),
    pc("other-default", 20, { globalDefault: true }),
  ]);
  const p = pod("q");
  await priority.admit!(attrs("CREATE", "pods", p), ctx);
  assert.equal(specOf(p).priorityClassName, "low-default");
  assert.equal(specOf(p).priority, 10);
});

test("a pod may not set a priority other than its class's", async () => {
  const ctx = new FakeContext([pc("high", 1000)]);
  assert.equal(
    await refusal(
      ctx,
      attrs("CREATE", "pods", pod("p", { priorityClassName: "high", priority: 5 })),
    ),
    'pods "p" is forbidden: the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name',
  );
  const same = pod("q", { priorityClassName: "high", priority: 1000 });
  await priority.admit!(attrs("CREATE", "pods", same), ctx);
});

test("updates keep the priority set on create", async () => {
  const old = pod("p", { priority: 1000, preemptionPolicy: "Never" });
  const p = pod("p");
  await priority.admit!(attrs("UPDATE", "pods", p, { oldObject: old }), new FakeContext());
  assert.equal(specOf(p).priority, 1000);
  assert.equal(specOf(p).preemptionPolicy, "Never");
});

test("only one PriorityClass may be the global default", async () => {
  const ctx = new FakeContext([pc("first", 1, { globalDefault: true })]);
  assert.equal(
    await refusal(
      ctx,
      attrs("CREATE", "priorityclasses", pc("second", 2, { globalDefault: true })),
      "validate",
    ),
    'priorityclasses.scheduling.k8s.io "second" is forbidden: PriorityClass first is already marked as default. Only one default can exist',
  );
  const again = pc("first", 1, { globalDefault: true });
  await priority.validate!(attrs("UPDATE", "priorityclasses", again, { oldObject: again }), ctx);
});
