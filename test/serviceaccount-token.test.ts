/**
 * The serviceaccount-token controller end to end: one `k8ts apiserver` (RBAC, service account
 * tokens checked against the public half of the key the controller signs with), the
 * serviceaccount and serviceaccount-token controllers in process, and real kubectl:
 *
 * - a `kubernetes.io/service-account-token` Secret for `default` gets token, ca.crt and
 *   namespace, and the token authenticates (`kubectl --token=... auth whoami`);
 * - a Secret naming an account that does not exist is deleted;
 * - deleting an account deletes its token Secrets (and the token stops working);
 * - deleting a token Secret drops it from its account's `secrets`.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import type { Secret } from "kubernetes-types/core/v1.js";
import { isStatusError } from "../src/api/status.js";
import { loadKubeconfig } from "../src/client/config.js";
import { Client } from "../src/client/resources.js";
import { serviceAccountDescriptor } from "../src/controllers/serviceaccount.js";
import { serviceAccountTokenDescriptor } from "../src/controllers/serviceaccounttoken.js";
import { tempDir } from "../src/testing/tmp.js";
import {
  kubectl,
  TestAPIServer,
  writeAdminTokenFile,
  writeServiceAccountKeys,
} from "./support/apiserver.js";
import { InProcessControllers } from "./support/controllers.js";
import { waitFor as waitForTruthy } from "./support/process.js";

const dir = tempDir("k8ts-serviceaccount-token-");
const cache = path.join(dir.path, "kube-cache");
let server: TestAPIServer;
let kubeconfig = "";
let admin: Client;
const controllers = new InProcessControllers();

function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 15_000) {
  return waitForTruthy(what, check, timeoutMs);
}

function k(args: string[], input?: string): string {
  const r = kubectl(kubeconfig, cache, args, input === undefined ? {} : { input });
  assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

const decode = (v: string | undefined) => Buffer.from(v ?? "", "base64").toString("utf8");

function tokenSecretYaml(ns: string, name: string, account: string): string {
  return [
    "apiVersion: v1",
    "kind: Secret",
    "metadata:",
    `  name: ${name}`,
    `  namespace: ${ns}`,
    "  annotations:",
    `    kubernetes.io/service-account.name: ${account}`,
    "type: kubernetes.io/service-account-token",
    "",
  ].join("\n");
}

async function populated(ns: string, name: string): Promise<Secret> {
  return waitFor(`the token of ${ns}/${name}`, async () => {
    const s = await admin.resource("v1/Secret", ns).get(name);
    return s.data?.token && s.data["ca.crt"] && s.data.namespace ? s : undefined;
  });
}

async function gone(kind: "v1/Secret" | "v1/ServiceAccount", ns: string, name: string) {
  await waitFor(`${kind} ${ns}/${name} to be deleted`, async () => {
    try {
      await admin.resource(kind, ns).get(name);
      return false;
    } catch (err) {
      if (isStatusError(err, "NotFound")) return true;
      throw err;
    }
  });
}

before(async () => {
  const { key: saKey, pub: saPub } = writeServiceAccountKeys(dir.path);
  const tokens = writeAdminTokenFile(dir.path);
  server = new TestAPIServer(dir.path, [
    `--token-auth-file=${tokens}`,
    "--authorization-mode=Node,RBAC",
    `--service-account-key-file=${saPub}`,
    `--service-account-signing-key-file=${saKey}`,
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
  ]);
  await server.start();
  kubeconfig = server.writeKubeconfig(path.join(dir.path, "admin.conf"));
  const config = loadKubeconfig({ kubeconfig });
  admin = new Client(config);
  controllers.start({
    config,
    controllers: [serviceAccountDescriptor, serviceAccountTokenDescriptor],
    options: { rootCA: fs.readFileSync(server.caFile), serviceAccountPrivateKeyFile: saKey },
    useServiceAccountCredentials: true,
  });
  k(["create", "namespace", "legacy"]);
  await waitFor("the default ServiceAccount of legacy", () =>
    admin.resource("v1/ServiceAccount", "legacy").get("default"),
  );
});

after(async () => {
  await controllers.stop();
  admin?.close();
  await server?.stop();
  if (process.exitCode) controllers.print();
  dir.remove();
});

let defaultToken = "";

test("a token Secret for default gets a legacy token, ca.crt and namespace, and the token authenticates", async () => {
  k(["apply", "-f", "-"], tokenSecretYaml("legacy", "default-token", "default"));
  const s = await populated("legacy", "default-token");
  const sa = await admin.resource("v1/ServiceAccount", "legacy").get("default");
  assert.equal(s.metadata?.annotations?.["kubernetes.io/service-account.uid"], sa.metadata?.uid);
  assert.equal(decode(s.data?.namespace), "legacy");
  assert.equal(decode(s.data?.["ca.crt"]), fs.readFileSync(server.caFile, "utf8"));
  defaultToken = decode(s.data?.token);
  const [header, claims] = defaultToken
    .split(".")
    .slice(0, 2)
    .map((p) => JSON.parse(Buffer.from(p, "base64url").toString()) as Record<string, unknown>);
  assert.equal(header?.alg, "RS256");
  assert.deepEqual(claims, {
    iss: "kubernetes/serviceaccount",
    "kubernetes.io/serviceaccount/namespace": "legacy",
    "kubernetes.io/serviceaccount/secret.name": "default-token",
    "kubernetes.io/serviceaccount/service-account.name": "default",
    "kubernetes.io/serviceaccount/service-account.uid": sa.metadata?.uid,
    sub: "system:serviceaccount:legacy:default",
  });

  // kubectl describe shows the filled Secret: sizes of the data keys, the token itself.
  const described = k(["describe", "secret", "default-token", "-n", "legacy"]);
  assert.match(described, /^Type:\s+kubernetes\.io\/service-account-token$/m);
  assert.match(described, /^namespace:\s+6 bytes$/m);
  assert.match(described, new RegExp(`^token:\\s+${defaultToken.replace(/[.]/g, "\\.")}$`, "m"));

  const who = JSON.parse(k([`--token=${defaultToken}`, "auth", "whoami", "-o", "json"])) as {
    status: { userInfo: { username: string; uid?: string; groups: string[] } };
  };
  assert.equal(who.status.userInfo.username, "system:serviceaccount:legacy:default");
  assert.equal(who.status.userInfo.uid, sa.metadata?.uid);
  assert.deepEqual(who.status.userInfo.groups, [
    "system:serviceaccounts",
    "system:serviceaccounts:legacy",
    "system:authenticated",
  ]);
  // RBAC sees the service account: it may not list pods.
  const denied = kubectl(kubeconfig, cache, [
    `--token=${defaultToken}`,
    "get",
    "pods",
    "-n",
    "legacy",
  ]);
  assert.notEqual(denied.code, 0);
  assert.match(
    denied.stderr,
    /pods is forbidden: User "system:serviceaccount:legacy:default" cannot list resource "pods" in API group "" in the namespace "legacy"/,
  );

  // A token the controller did not write (the Secret's copy differs) is refused.
  const forged = kubectl(kubeconfig, cache, [
    `--token=${defaultToken.slice(0, -4)}AAAA`,
    "auth",
    "whoami",
  ]);
  assert.notEqual(forged.code, 0);
  assert.match(forged.stderr, /Unauthorized|You must be logged in/);
});

test("a token Secret naming a service account that does not exist is deleted", async () => {
  k(["apply", "-f", "-"], tokenSecretYaml("legacy", "ghost-token", "ghost"));
  await gone("v1/Secret", "legacy", "ghost-token");
  // One whose uid annotation names another account of that name goes as well.
  const s = await admin.resource("v1/Secret", "legacy").create({
    metadata: {
      name: "stale-token",
      annotations: {
        "kubernetes.io/service-account.name": "default",
        "kubernetes.io/service-account.uid": "00000000-0000-0000-0000-000000000000",
      },
    },
    type: "kubernetes.io/service-account-token",
  });
  assert.ok(s.metadata?.uid);
  await gone("v1/Secret", "legacy", "stale-token");
  // The default's own token is untouched.
  const kept = await admin.resource("v1/Secret", "legacy").get("default-token");
  assert.equal(decode(kept.data?.token), defaultToken);
});

test("deleting a service account deletes its token Secrets, and its token stops working", async () => {
  k(["create", "serviceaccount", "builder", "-n", "legacy"]);
  k(["apply", "-f", "-"], tokenSecretYaml("legacy", "builder-token", "builder"));
  const s = await populated("legacy", "builder-token");
  const token = decode(s.data?.token);
  const ok = k([`--token=${token}`, "auth", "whoami"]);
  assert.match(ok, /^Username\s+system:serviceaccount:legacy:builder$/m);

  k(["delete", "serviceaccount", "builder", "-n", "legacy"]);
  await gone("v1/Secret", "legacy", "builder-token");
  const r = kubectl(kubeconfig, cache, [`--token=${token}`, "auth", "whoami"]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Unauthorized|You must be logged in/);
});

test("deleting a token Secret drops it from its service account's secrets", async () => {
  const accounts = admin.resource("v1/ServiceAccount", "legacy");
  await accounts.create({
    metadata: { name: "ci" },
    secrets: [{ name: "ci-token" }, { name: "ci-registry" }],
  });
  k(["apply", "-f", "-"], tokenSecretYaml("legacy", "ci-token", "ci"));
  await populated("legacy", "ci-token");
  k(["delete", "secret", "ci-token", "-n", "legacy"]);
  const sa = await waitFor("ci-token to leave ci's secrets", async () => {
    const sa = await accounts.get("ci");
    return sa.secrets?.some((r) => r.name === "ci-token") ? undefined : sa;
  });
  assert.deepEqual(sa.secrets, [{ name: "ci-registry" }]);
});
