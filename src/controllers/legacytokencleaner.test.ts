import { test } from "node:test";
import assert from "node:assert/strict";
import type { Pod, Secret, ServiceAccount } from "kubernetes-types/core/v1.js";
import { FakeClock } from "../client/clock.js";
import {
  DEFAULT_LEGACY_TOKEN_CLEAN_UP_PERIOD,
  legacyTokenCleanUp,
  legacyTokenCleanerDescriptor,
  newLegacyTokenCleanerDescriptor,
  type LegacyTokenCleanUpInput,
} from "./legacytokencleaner.js";

const DAY = 86_400_000;
const PERIOD = 30 * DAY;
const LAST_USED = "kubernetes.io/legacy-token-last-used";
const INVALID_SINCE = "kubernetes.io/legacy-token-invalid-since";

function secret(
  name: string,
  labels: Record<string, string> = {},
  extra: Partial<Secret> = {},
  meta: { creationTimestamp?: string; deletionTimestamp?: string } = {},
) {
  return {
    metadata: {
      namespace: "ns",
      name,
      uid: `${name}-uid`,
      resourceVersion: "7",
      creationTimestamp: "2025-01-01T00:00:00Z",
      ...meta,
      labels,
      annotations: {
        "kubernetes.io/service-account.name": "builder",
        "kubernetes.io/service-account.uid": "sa-uid",
      },
    },
    type: "kubernetes.io/service-account-token",
    ...extra,
  } as Secret;
}

/** A cluster whose tracking began on 2025-01-01; the clock starts then. */
function cluster(secrets: Secret[], refs: string[], pods: Pod[] = []) {
  const clock = new FakeClock(Date.parse("2025-01-01T08:00:00Z"));
  const sa: ServiceAccount = {
    metadata: { namespace: "ns", name: "builder", uid: "sa-uid" },
    secrets: refs.map((name) => ({ name })),
  };
  const input = (): LegacyTokenCleanUpInput => ({
    now: clock.now(),
    cleanUpPeriod: PERIOD,
    trackedSince: "2025-01-01",
    secrets,
    serviceAccount: (ns, name) => (ns === "ns" && name === "builder" ? sa : undefined),
    pods: (ns) => pods.filter((p) => p.metadata?.namespace === ns),
  });
  const plan = () =>
    legacyTokenCleanUp(input()).actions.map((a) =>
      a.type === "invalidate"
        ? `invalidate ${a.secret.metadata?.name} since ${a.invalidSince}`
        : `delete ${a.secret.metadata?.name}`,
    );
  return { clock, sa, plan, input };
}

test("an unused auto-generated token is invalidated after a clean-up period, deleted after another", () => {
  const token = secret("unused");
  const { clock, plan } = cluster([token], ["unused"]);
  assert.deepEqual(plan(), [], "tracking just began");
  // Tracking counts from the day after it began: 2025-01-02 + 30 days = 2025-02-01.
  clock.setTime(Date.parse("2025-01-31T23:59:59Z"));
  assert.deepEqual(plan(), []);
  clock.setTime(Date.parse("2025-02-01T00:00:00Z"));
  assert.deepEqual(plan(), ["invalidate unused since 2025-02-01"]);
  token.metadata!.labels![INVALID_SINCE] = "2025-02-01";
  clock.step(PERIOD);
  assert.deepEqual(plan(), [], "invalid for exactly a period: kept");
  clock.step(DAY);
  assert.deepEqual(plan(), ["delete unused"]);
});

test("tokens in use, made by hand, mounted, young or going are left alone", () => {
  const recent = secret("recent", { [LAST_USED]: "2025-03-01" });
  const old = secret("old", { [LAST_USED]: "2025-01-15" });
  const manual = secret("manual");
  const mounted = secret("mounted");
  const envMounted = secret("env-mounted");
  const young = secret("young", {}, {}, { creationTimestamp: "2025-03-20T00:00:00Z" });
  const going = secret("going", {}, {}, { deletionTimestamp: "2025-03-20T00:00:00Z" });
  const opaque = secret("opaque", {}, { type: "Opaque" });
  const otherUID = secret("other-uid");
  otherUID.metadata!.annotations!["kubernetes.io/service-account.uid"] = "old-account";
  const pods: Pod[] = [
    {
      metadata: { namespace: "ns", name: "p1" },
      spec: { containers: [], volumes: [{ name: "t", secret: { secretName: "mounted" } }] },
    },
    {
      metadata: { namespace: "ns", name: "p2" },
      spec: {
        containers: [
          {
            name: "c",
            env: [
              { name: "T", valueFrom: { secretKeyRef: { name: "env-mounted", key: "token" } } },
            ],
          },
        ],
      },
    },
  ];
  const all = [recent, old, manual, mounted, envMounted, young, going, opaque, otherUID];
  const refs = all.map((s) => s.metadata!.name!).filter((n) => n !== "manual");
  const { clock, plan } = cluster(all, refs, pods);
  clock.setTime(Date.parse("2025-03-25T12:00:00Z"));
  // Used on or after 2025-02-23 (30 days ago) counts as in use.
  assert.deepEqual(plan(), ["invalidate old since 2025-03-25"]);
});

test("a malformed last-used label is skipped with an error; a malformed invalid-since is replaced", () => {
  const badUse = secret("bad-use", { [LAST_USED]: "yesterday" });
  const badInvalid = secret("bad-invalid", { [INVALID_SINCE]: "soon" });
  const { clock, plan, input } = cluster([badUse, badInvalid], ["bad-use", "bad-invalid"]);
  clock.setTime(Date.parse("2025-06-01T00:00:00Z"));
  assert.deepEqual(plan(), ["invalidate bad-invalid since 2025-06-01"]);
  assert.deepEqual(legacyTokenCleanUp(input()).errors, [
    'Parsing lastUsed time: parsing time "yesterday" as "2006-01-02": cannot parse secret="ns/bad-use"',
  ]);
});

test("a token used again after invalidation is kept while the use is recent", () => {
  const token = secret("t", { [INVALID_SINCE]: "2025-02-01", [LAST_USED]: "2025-03-01" });
  const { clock, plan } = cluster([token], ["t"]);
  clock.setTime(Date.parse("2025-03-20T00:00:00Z"));
  assert.deepEqual(plan(), [], "refused uses still refresh last-used, which keeps the Secret");
  clock.setTime(Date.parse("2025-04-01T00:00:00Z"));
  assert.deepEqual(plan(), ["delete t"], "unused a period again, invalid for longer: deleted");
});

test("a tracking date that does not parse stops the round", () => {
  const { input } = cluster([secret("t")], ["t"]);
  assert.throws(() => legacyTokenCleanUp({ ...input(), trackedSince: "2025-1-1" }), {
    message: 'error parsing trackedSince time: "2025-1-1"',
  });
});

test("descriptors: upstream's names and a 365-day default period", () => {
  assert.equal(legacyTokenCleanerDescriptor.name, "legacy-serviceaccount-token-cleaner");
  assert.deepEqual(legacyTokenCleanerDescriptor.aliases, [
    "legacy-serviceaccount-token-cleaner-controller",
  ]);
  assert.equal(legacyTokenCleanerDescriptor.serviceAccount, "legacy-service-account-token-cleaner");
  assert.equal(DEFAULT_LEGACY_TOKEN_CLEAN_UP_PERIOD, 365 * DAY);
  assert.equal(
    newLegacyTokenCleanerDescriptor({ cleanUpPeriod: DAY }).name,
    "legacy-serviceaccount-token-cleaner",
  );
});
