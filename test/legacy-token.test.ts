/**
 * Legacy (Secret-based) service account tokens end to end: one `k8ts apiserver` (RBAC, service
 * account tokens), real kubectl, and the legacy-serviceaccount-token-cleaner in process with a
 * clean-up period of one day on a clock the test moves forward by days:
 *
 * - the API server writes the tracking ConfigMap at start;
 * - `kubectl --token=<legacy token> auth whoami` works, warns about auto-generated tokens, and
 *   the Secret gets the last-used label (for a hand-made token too, without the warning);
 * - an unused auto-generated token is labelled invalid-since, and then refused (401); a
 *   hand-made token and one a pod mounts are left alone;
 * - with the label removed the token works again; left unused, it is invalidated again and,
 *   once invalid for a whole clean-up period, deleted.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import type { Secret, ServiceAccount } from "kubernetes-types/core/v1.js";
import { isStatusError } from "../src/api/status.js";
import { issueLegacyServiceAccountToken } from "../src/apiserver/auth/authenticator/serviceaccount.js";
import { realClock, type Clock } from "../src/client/clock.js";
import { loadKubeconfig } from "../src/client/config.js";
import { Client } from "../src/client/resources.js";
import { newLegacyTokenCleanerDescriptor } from "../src/controllers/legacytokencleaner.js";
import { tempDir } from "../src/testing/tmp.js";
import {
  kubectl,
  TestAPIServer,
  writeAdminTokenFile,
  writeServiceAccountKeys,
} from "./support/apiserver.js";
import { InProcessControllers } from "./support/controllers.js";
import { waitFor as waitForTruthy } from "./support/process.js";

const DAY = 86_400_000;
const LAST_USED = "kubernetes.io/legacy-token-last-used";
const INVALID_SINCE = "kubernetes.io/legacy-token-invalid-since";
const WARNING =
  "Warning: Use tokens from the TokenRequest API or manually created secret-based tokens instead of auto-generated secret-based tokens.";
const NS = "legacy";

const dir = tempDir("k8ts-legacy-token-");
const cache = path.join(dir.path, "kube-cache");
let server: TestAPIServer;
let kubeconfig = "";
let admin: Client;
const controllers = new InProcessControllers();
/** The cleaner's clock: real time moved forward by `days` whole days. */
let days = 0;
const clock: Clock = { now: () => Date.now() + days * DAY, setTimer: realClock.setTimer };
const utcDate = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const tokens: Record<string, string> = {};
const auditLog = path.join(dir.path, "audit.log");

/** The annotations of the audited SelfSubjectReviews, in order. */
function reviewAnnotations(): Array<Record<string, string>> {
  return fs
    .readFileSync(auditLog, "utf8")
    .split("\n")
    .filter((l) => l.includes('"selfsubjectreviews"') && l.includes('"ResponseComplete"'))
    .map((l) => (JSON.parse(l) as { annotations?: Record<string, string> }).annotations ?? {});
}

function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 15_000) {
  return waitForTruthy(what, check, timeoutMs);
}

function k(args: string[]): string {
  const r = kubectl(kubeconfig, cache, args);
  assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** `kubectl auth whoami` as the holder of `token`. */
function whoami(token: string) {
  return kubectl(kubeconfig, cache, [
    `--token=${token}`,
    "auth",
    "whoami",
    "-o",
    "jsonpath={.status.userInfo.username}",
  ]);
}

const labels = async (name: string) =>
  (await admin.resource("v1/Secret", NS).get(name)).metadata?.labels ?? {};

before(async () => {
  const { key: saKey, pub: saPub, privateKey } = writeServiceAccountKeys(dir.path);
  const tokenFile = writeAdminTokenFile(dir.path);
  fs.writeFileSync(
    path.join(dir.path, "audit-policy.yaml"),
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n",
  );
  server = new TestAPIServer(dir.path, [
    `--token-auth-file=${tokenFile}`,
    "--authorization-mode=Node,RBAC",
    `--service-account-key-file=${saPub}`,
    `--service-account-signing-key-file=${saKey}`,
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    `--audit-policy-file=${path.join(dir.path, "audit-policy.yaml")}`,
    `--audit-log-path=${auditLog}`,
  ]);
  await server.start();
  kubeconfig = server.writeKubeconfig(path.join(dir.path, "admin.conf"));
  const config = loadKubeconfig({ kubeconfig });
  admin = new Client(config);
  k(["create", "namespace", NS]);
  k(["create", "serviceaccount", "builder", "-n", NS]);
  k([
    "create",
    "rolebinding",
    "builder-view",
    "--clusterrole=view",
    "--serviceaccount=legacy:builder",
    "-n",
    NS,
  ]);
  const sa: ServiceAccount = await admin.resource("v1/ServiceAccount", NS).get("builder");
  const uid = sa.metadata?.uid ?? "";
  // Tokens as the token controller of old made them; "auto" and "mounted" are in the account's
  // `secrets` (auto-generated), "manual" is not.
  for (const name of ["auto", "manual", "mounted"]) {
    tokens[name] = await issueLegacyServiceAccountToken({
      key: privateKey,
      namespace: NS,
      serviceAccount: { name: "builder", uid },
      secretName: name,
    });
    const secret: Secret = {
      metadata: {
        name,
        annotations: {
          "kubernetes.io/service-account.name": "builder",
          "kubernetes.io/service-account.uid": uid,
        },
      },
      type: "kubernetes.io/service-account-token",
      data: { token: Buffer.from(tokens[name]).toString("base64") },
    };
    await admin.resource("v1/Secret", NS).create(secret);
  }
  await admin
    .resource("v1/ServiceAccount", NS)
    .patch("builder", "merge", { secrets: [{ name: "auto" }, { name: "mounted" }] });
  await admin.resource("v1/Pod", NS).create({
    metadata: { name: "uses-token" },
    spec: {
      containers: [{ name: "c", image: "busybox" }],
      volumes: [{ name: "token", secret: { secretName: "mounted" } }],
    },
  });
});

after(async () => {
  await controllers.stop();
  admin?.close();
  await server?.stop();
  if (process.exitCode) controllers.print();
  dir.remove();
});

test("the API server writes the tracking ConfigMap at start, dated today (UTC)", () => {
  const since = k([
    "get",
    "configmap",
    "-n",
    "kube-system",
    "kube-apiserver-legacy-service-account-token-tracking",
    "-o",
    "jsonpath={.data.since}",
  ]);
  assert.equal(since, utcDate(Date.now()));
});

test("a legacy token authenticates, warns when auto-generated, and its Secret records the day", async () => {
  const auto = whoami(tokens.auto!);
  assert.equal(auto.code, 0, auto.stderr);
  assert.equal(auto.stdout, "system:serviceaccount:legacy:builder");
  assert.ok(auto.stderr.includes(WARNING), auto.stderr);
  const manual = whoami(tokens.manual!);
  assert.equal(manual.code, 0, manual.stderr);
  assert.equal(manual.stderr, "", "a hand-made token is not warned about");
  const today = utcDate(Date.now());
  for (const name of ["auto", "manual"]) {
    await waitFor(
      `the last-used label of ${name}`,
      async () => (await labels(name))[LAST_USED] === today,
    );
  }
  assert.equal((await labels("mounted"))[LAST_USED], undefined, "an unused token has none");
  await waitFor("the audit events of both reviews", () => reviewAnnotations().length >= 2);
  const [autoEvent, manualEvent] = reviewAnnotations();
  assert.equal(autoEvent?.["authentication.k8s.io/legacy-token-autogenerated-secret"], "auto");
  assert.equal(manualEvent?.["authentication.k8s.io/legacy-token-manual-secret"], "manual");
  // The Secret is a plain object for kubectl too.
  assert.equal(
    k(["get", "secrets", "-n", NS, "-l", LAST_USED, "-o", "name"]).split("\n").sort().join(" "),
    " secret/auto secret/manual",
  );
});

test("the cleaner invalidates an unused auto-generated token, which is then refused, and deletes it later", async () => {
  controllers.start({
    config: loadKubeconfig({ kubeconfig }),
    controllers: [
      newLegacyTokenCleanerDescriptor({ cleanUpPeriod: DAY, syncInterval: 200, clock }),
    ],
    options: { rootCA: fs.readFileSync(server.caFile) },
    useServiceAccountCredentials: true,
  });
  // Unused for more than a day (the period), after more than a period of tracking.
  days = 3;
  const invalidDay = utcDate(clock.now());
  await waitFor(
    "auto to be invalidated",
    async () => (await labels("auto"))[INVALID_SINCE] === invalidDay,
  );
  assert.equal((await labels("manual"))[INVALID_SINCE], undefined, "made by hand: kept");
  assert.equal((await labels("mounted"))[INVALID_SINCE], undefined, "mounted by a pod: kept");

  await waitFor("the invalidated token to be refused", () => whoami(tokens.auto!).code !== 0);
  const refused = whoami(tokens.auto!);
  assert.match(refused.stderr, /You must be logged in to the server \(Unauthorized\)/);
  const raw = await server.request("GET", "/api/v1/namespaces/legacy/pods", undefined, {
    authorization: `Bearer ${tokens.auto!}`,
  });
  assert.equal(raw.status, 401);
  assert.equal((JSON.parse(raw.body) as { reason?: string }).reason, "Unauthorized");

  // Taking the label off (and saying it was used today, on the cleaner's clock) lets it in again.
  k([
    "label",
    "secret",
    "auto",
    "-n",
    NS,
    `${INVALID_SINCE}-`,
    `${LAST_USED}=${invalidDay}`,
    "--overwrite",
  ]);
  await waitFor("the token to work again", () => whoami(tokens.auto!).code === 0);
  // The API server records the real day of that use, older than a period on the cleaner's
  // clock: the token is invalidated again...
  await waitFor("auto to be invalidated again", async () => {
    const l = await labels("auto");
    return l[LAST_USED] === utcDate(Date.now()) && l[INVALID_SINCE] === invalidDay;
  });
  // ...and once invalid for longer than a period, deleted; the others stay.
  days = 5;
  await waitFor("auto to be deleted", async () => {
    try {
      await admin.resource("v1/Secret", NS).get("auto");
      return false;
    } catch (err) {
      if (isStatusError(err, "NotFound")) return true;
      throw err;
    }
  });
  for (const name of ["manual", "mounted"]) await admin.resource("v1/Secret", NS).get(name);
  assert.ok(
    controllers.text().includes(`Delete auto-generated service account token secret="legacy/auto"`),
    controllers.text(),
  );
  assert.deepEqual(controllers.errors(), []);
});
