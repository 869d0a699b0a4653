import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createPublicKey, verify, type KeyObject } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Node, Pod, Secret, ServiceAccount } from "kubernetes-types/core/v1.js";
import { tempDir } from "../../../testing/tmp.js";
import { AuthenticationError, type TokenResult } from "../types.js";
import {
  ServiceAccountTokenAuthenticator,
  issueLegacyServiceAccountToken,
  issueServiceAccountToken,
  keyID,
  loadPublicKeys,
  loadSigningKey,
  parseUTCDate,
  type ServiceAccountGetter,
} from "./serviceaccount.js";
import { newRequestAuthenticator, tokenReviewStatus } from "./union.js";

const ISSUER = "https://kubernetes.default.svc.cluster.local";
const dir = tempDir("k8ts-sa-");
const p = (f: string) => path.join(dir.path, f);
let rsaKey: KeyObject;
let ecKey: KeyObject;
let otherKey: KeyObject;
let publicKeys: KeyObject[];

before(() => {
  // Keys as the seeds make them: openssl genrsa for service-account.key; an EC key as well.
  execFileSync("openssl", ["genrsa", "-out", p("sa.key"), "2048"], { stdio: "pipe" });
  execFileSync("openssl", ["rsa", "-in", p("sa.key"), "-pubout", "-out", p("sa.pub")], {
    stdio: "pipe",
  });
  execFileSync("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-out", p("ec.key")], {
    stdio: "pipe",
  });
  execFileSync("openssl", ["genrsa", "-out", p("other.key"), "2048"], { stdio: "pipe" });
  rsaKey = loadSigningKey(p("sa.key"));
  ecKey = loadSigningKey(p("ec.key"));
  otherKey = loadSigningKey(p("other.key"));
  fs.writeFileSync(
    p("keys.pem"),
    fs.readFileSync(p("sa.pub"), "utf8") + fs.readFileSync(p("ec.key"), "utf8"),
  );
  publicKeys = loadPublicKeys(p("keys.pem"));
});

after(() => dir.remove());

const sa: ServiceAccount = { metadata: { namespace: "default", name: "builder", uid: "sa-uid" } };
const pod: Pod = {
  metadata: { namespace: "default", name: "web", uid: "pod-uid" },
  spec: { containers: [] },
};
const node: Node = { metadata: { name: "n1", uid: "node-uid" } };

class Objects implements ServiceAccountGetter {
  sas = new Map<string, ServiceAccount>([["default/builder", structuredClone(sa)]]);
  pods = new Map<string, Pod>([["default/web", structuredClone(pod)]]);
  secrets = new Map<string, Secret>();
  nodes = new Map<string, Node>([["n1", structuredClone(node)]]);
  getServiceAccount = (ns: string, n: string) => this.sas.get(`${ns}/${n}`);
  getSecret = (ns: string, n: string) => this.secrets.get(`${ns}/${n}`);
  getPod = (ns: string, n: string) => this.pods.get(`${ns}/${n}`);
  getNode = (n: string) => this.nodes.get(n);
}

function authenticator(objects = new Objects(), now?: () => number) {
  return new ServiceAccountTokenAuthenticator({
    keys: publicKeys,
    issuers: [ISSUER],
    getter: objects,
    ...(now ? { now } : {}),
  });
}

async function issue(
  key: KeyObject,
  extra: Partial<Parameters<typeof issueServiceAccountToken>[0]> = {},
) {
  return issueServiceAccountToken({
    key,
    issuer: ISSUER,
    namespace: "default",
    serviceAccount: { name: "builder", uid: "sa-uid" },
    audiences: [ISSUER],
    expirationSeconds: 3600,
    boundObject: { kind: "Pod", name: "web", uid: "pod-uid" },
    node: { name: "n1", uid: "node-uid" },
    ...extra,
  });
}

/** `run` may throw at once (a remembered token) or reject later (a first check). */
async function rejects(run: () => unknown, message: string | RegExp): Promise<void> {
  await assert.rejects(Promise.resolve().then(run), (err: Error) => {
    assert.ok(err instanceof AuthenticationError, `${err.name}: ${err.message}`);
    if (typeof message === "string") assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

test("a pod-bound token: the service account user with pod, node and credential id", async () => {
  const { token, expirationTimestamp, credentialID } = await issue(rsaKey);
  const [h, b] = token
    .split(".")
    .slice(0, 2)
    .map((s) => JSON.parse(Buffer.from(s, "base64url").toString()));
  assert.deepEqual(h, { alg: "RS256", kid: keyID(rsaKey) });
  assert.deepEqual(Object.keys(b), [
    "aud",
    "exp",
    "iat",
    "iss",
    "jti",
    "kubernetes.io",
    "nbf",
    "sub",
  ]);
  assert.deepEqual(b["kubernetes.io"], {
    namespace: "default",
    node: { name: "n1", uid: "node-uid" },
    pod: { name: "web", uid: "pod-uid" },
    serviceaccount: { name: "builder", uid: "sa-uid" },
  });
  assert.equal(b.exp * 1000, expirationTimestamp.getTime());
  // The signature is a plain RS256 one: node's own verifier agrees.
  const [hh, bb, sig] = token.split(".") as [string, string, string];
  assert.ok(
    verify(
      "RSA-SHA256",
      Buffer.from(`${hh}.${bb}`),
      createPublicKey(rsaKey),
      Buffer.from(sig, "base64url"),
    ),
  );

  const a = authenticator();
  const res = (await a.authenticateToken(token)) as TokenResult;
  assert.deepEqual(res, {
    user: {
      username: "system:serviceaccount:default:builder",
      uid: "sa-uid",
      groups: ["system:serviceaccounts", "system:serviceaccounts:default"],
      extra: {
        "authentication.kubernetes.io/pod-name": ["web"],
        "authentication.kubernetes.io/pod-uid": ["pod-uid"],
        "authentication.kubernetes.io/credential-id": [credentialID],
        "authentication.kubernetes.io/node-name": ["n1"],
        "authentication.kubernetes.io/node-uid": ["node-uid"],
      },
    },
    audiences: [ISSUER],
  });
  // Second use: the verified signature is remembered, and the answer comes synchronously.
  const again = a.authenticateToken(token);
  assert.ok(!(again instanceof Promise));
  assert.equal((again as TokenResult).user.username, "system:serviceaccount:default:builder");
});

test("EC keys sign ES256 tokens", async () => {
  const { token } = await issue(ecKey, { boundObject: undefined, node: undefined });
  assert.equal(JSON.parse(Buffer.from(token.split(".")[0]!, "base64url").toString()).alg, "ES256");
  const res = (await authenticator().authenticateToken(token)) as TokenResult;
  assert.equal(res.user.extra?.["authentication.kubernetes.io/pod-name"], undefined);
});

test("forged, wrongly signed and expired tokens are refused", async () => {
  const a = authenticator();
  const { token: wrongKey } = await issue(otherKey);
  await rejects(
    () => a.authenticateToken(wrongKey),
    "go-jose/go-jose: error in cryptographic primitive",
  );

  const { token } = await issue(rsaKey);
  const [h, b, s] = token.split(".") as [string, string, string];
  const claims = JSON.parse(Buffer.from(b, "base64url").toString());
  claims.sub = "system:serviceaccount:kube-system:admin";
  claims["kubernetes.io"].serviceaccount.name = "admin";
  const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${s}`;
  await rejects(
    () => a.authenticateToken(forged),
    "go-jose/go-jose: error in cryptographic primitive",
  );
  await rejects(
    () => a.authenticateToken(`${h}.${b}.${s.slice(0, -4)}AAAA`),
    /error in cryptographic primitive/,
  );
  const unsigned = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${b}.`;
  await rejects(() => a.authenticateToken(unsigned), /.+/);

  const later = authenticator(new Objects(), () => Date.now() + 2 * 3600 * 1000);
  await rejects(() => later.authenticateToken(token), "service account token has expired");
  const earlier = authenticator(new Objects(), () => Date.now() - 3600 * 1000);
  await rejects(() => earlier.authenticateToken(token), "service account token is not valid yet");
});

test("tokens of other issuers are not ours; through the bearer authenticator they get 401", async () => {
  const a = authenticator();
  const { token } = await issue(rsaKey, { issuer: "https://elsewhere" });
  assert.equal(a.authenticateToken(token), null);
  assert.equal(a.authenticateToken("not-a-jwt"), null);
  const { authenticator: chain } = newRequestAuthenticator({ tokens: [a], anonymous: true });
  await rejects(
    () =>
      chain.authenticate({ headers: { authorization: `Bearer ${token}` }, socket: {} as never }),
    "invalid bearer token",
  );
  const { token: good } = await issue(rsaKey);
  const user = await chain.authenticate({
    headers: { authorization: `Bearer ${good}` },
    socket: {} as never,
  });
  assert.deepEqual(user?.groups, [
    "system:serviceaccounts",
    "system:serviceaccounts:default",
    "system:authenticated",
  ]);
});

test("audiences: a token for another audience is refused; TokenReview can ask for it", async () => {
  const a = authenticator();
  const { token } = await issue(rsaKey, { audiences: ["vault"] });
  await rejects(
    () => a.authenticateToken(token),
    `token audiences ["vault"] is invalid for the target audiences ["${ISSUER}"]`,
  );
  const review = await tokenReviewStatus(a, token, ["vault"], [ISSUER]);
  assert.equal(review.authenticated, true);
  assert.deepEqual(review.audiences, ["vault"]);
  assert.equal(review.user?.username, "system:serviceaccount:default:builder");
  assert.ok(review.user?.groups?.includes("system:authenticated"));
  const bad = await tokenReviewStatus(a, "garbage", undefined, [ISSUER]);
  assert.deepEqual(bad, { authenticated: false, error: "invalid bearer token" });
});

test("a token stops working when its pod, service account or secret goes", async () => {
  const objects = new Objects();
  const a = authenticator(objects);
  const { token } = await issue(rsaKey);
  assert.ok(await a.authenticateToken(token));
  objects.pods.set("default/web", { ...pod, metadata: { ...pod.metadata, uid: "new-uid" } });
  await rejects(
    () => a.authenticateToken(token),
    "pod UID (new-uid) does not match service account pod ref claim (pod-uid)",
  );
  objects.pods.delete("default/web");
  await rejects(() => a.authenticateToken(token), "service account token has been invalidated");
  objects.sas.delete("default/builder");
  await rejects(() => a.authenticateToken(token), 'serviceaccounts "builder" not found');

  const secretBound = await issue(rsaKey, {
    boundObject: { kind: "Secret", name: "s", uid: "s-uid" },
    node: undefined,
  });
  const objs2 = new Objects();
  const b = authenticator(objs2);
  await rejects(
    () => b.authenticateToken(secretBound.token),
    "service account token has been invalidated",
  );
  objs2.secrets.set("default/s", { metadata: { name: "s", uid: "s-uid" } });
  assert.ok(await b.authenticateToken(secretBound.token));

  const nodeBound = await issue(rsaKey, {
    boundObject: { kind: "Node", name: "n1", uid: "node-uid" },
    node: undefined,
  });
  assert.equal(
    ((await b.authenticateToken(nodeBound.token)) as TokenResult).user.extra?.[
      "authentication.kubernetes.io/node-name"
    ]?.[0],
    "n1",
  );
  objs2.nodes.delete("n1");
  await rejects(
    () => b.authenticateToken(nodeBound.token),
    "service account token has been invalidated",
  );
});

test("legacy secret tokens: checked against the stored secret and service account", async () => {
  const objects = new Objects();
  const a = authenticator(objects);
  const token = await issueLegacyServiceAccountToken({
    key: rsaKey,
    namespace: "default",
    serviceAccount: { name: "builder", uid: "sa-uid" },
    secretName: "builder-token",
  });
  await rejects(() => a.authenticateToken(token), "Token has been invalidated");
  objects.secrets.set("default/builder-token", {
    metadata: { name: "builder-token" },
    type: "kubernetes.io/service-account-token",
    data: { token: Buffer.from(token).toString("base64") },
  });
  const res = (await a.authenticateToken(token)) as TokenResult;
  assert.deepEqual(res.user, {
    username: "system:serviceaccount:default:builder",
    uid: "sa-uid",
    groups: ["system:serviceaccounts", "system:serviceaccounts:default"],
  });
  assert.deepEqual(
    res.audiences,
    [ISSUER],
    "legacy tokens are good for the API server's audiences",
  );
  objects.secrets.get("default/builder-token")!.data!.token =
    Buffer.from("other").toString("base64");
  await rejects(() => a.authenticateToken(token), "Token does not match server's copy");
  objects.secrets.get("default/builder-token")!.data!.token = Buffer.from(token).toString("base64");
  objects.sas.set("default/builder", {
    metadata: { namespace: "default", name: "builder", uid: "recreated" },
  });
  await rejects(
    () => a.authenticateToken(token),
    "ServiceAccount UID (recreated) does not match claim (sa-uid)",
  );
});

test("legacy secret tokens: last-used tracking, the auto-generated warning, invalidated tokens", async () => {
  const objects = new Objects();
  let now = Date.parse("2026-03-10T23:30:00Z");
  const marks: Array<[string, string]> = [];
  const a = new ServiceAccountTokenAuthenticator({
    keys: publicKeys,
    issuers: [ISSUER],
    getter: objects,
    now: () => now,
    markLegacyTokenUsed: (secret, date) => marks.push([secret.metadata?.name ?? "", date]),
  });
  const token = await issueLegacyServiceAccountToken({
    key: rsaKey,
    namespace: "default",
    serviceAccount: { name: "builder", uid: "sa-uid" },
    secretName: "builder-token",
  });
  const secret: Secret = {
    metadata: { namespace: "default", name: "builder-token", uid: "secret-uid" },
    type: "kubernetes.io/service-account-token",
    data: { token: Buffer.from(token).toString("base64") },
  };
  objects.secrets.set("default/builder-token", secret);

  // Made by hand (not in the account's secrets): no warning, but tracked.
  let res = (await a.authenticateToken(token)) as TokenResult;
  assert.equal(res.warnings, undefined);
  assert.deepEqual(res.auditAnnotations, {
    "authentication.k8s.io/legacy-token-manual-secret": "builder-token",
  });
  assert.deepEqual(marks, [["builder-token", "2026-03-10"]], "labelled with the UTC date");

  // Listed by its account: auto-generated, warned about.
  objects.sas.get("default/builder")!.secrets = [{ name: "builder-token" }];
  secret.metadata!.labels = { "kubernetes.io/legacy-token-last-used": "2026-03-10" };
  res = (await a.authenticateToken(token)) as TokenResult;
  assert.deepEqual(res.warnings, [
    "Use tokens from the TokenRequest API or manually created secret-based tokens instead of auto-generated secret-based tokens.",
  ]);
  assert.deepEqual(res.auditAnnotations, {
    "authentication.k8s.io/legacy-token-autogenerated-secret": "builder-token",
  });
  assert.equal(marks.length, 1, "at most one label write a day");
  secret.metadata!.labels = { "kubernetes.io/legacy-token-last-used": "2026-03-11" };
  await a.authenticateToken(token);
  assert.equal(marks.length, 1, "a date of tomorrow (another server's clock) is left alone");
  now += 2 * 86_400_000;
  await a.authenticateToken(token);
  assert.deepEqual(marks[1], ["builder-token", "2026-03-12"]);

  // Invalidated by the cleaner: refused, with upstream's message, and the use still recorded.
  secret.metadata!.labels = {
    "kubernetes.io/legacy-token-last-used": "2025-01-01",
    "kubernetes.io/legacy-token-invalid-since": "2026-03-01",
  };
  await rejects(
    () => a.authenticateToken(token),
    "the token in secret default/builder-token for service account default/builder has been marked invalid. Use tokens from the TokenRequest API or manually created secret-based tokens, or remove the 'kubernetes.io/legacy-token-invalid-since' label from the secret to temporarily allow use of this token",
  );
  assert.deepEqual(marks[2], ["builder-token", "2026-03-12"]);
  // The other checks come first: a token that is not the Secret's says so.
  secret.data!.token = Buffer.from("other").toString("base64");
  await rejects(() => a.authenticateToken(token), "Token does not match server's copy");
  assert.equal(marks.length, 3);
});

test("UTC dates parse as Go's 2006-01-02 layout", () => {
  assert.equal(parseUTCDate("2024-02-29"), Date.parse("2024-02-29T00:00:00Z"));
  assert.equal(parseUTCDate("0099-01-01"), Date.parse("0099-01-01T00:00:00Z"));
  for (const bad of ["2023-02-29", "2024-13-01", "2024-1-01", "2024-01-01T00:00:00Z", "", "x"])
    assert.equal(parseUTCDate(bad), undefined, bad);
  assert.equal(parseUTCDate(undefined), undefined);
});

test("key files: errors name the file", () => {
  fs.writeFileSync(
    p("nokey.pem"),
    "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n",
  );
  assert.throws(() => loadPublicKeys(p("nokey.pem")), {
    message: `error reading public key file ${p("nokey.pem")}: data does not contain any valid RSA or ECDSA public keys`,
  });
  assert.throws(
    () => loadPublicKeys(p("missing.pem")),
    /error reading public key file .*: open .*: no such file or directory/,
  );
  assert.throws(
    () => loadSigningKey(p("sa.pub")),
    /does not contain a valid RSA or ECDSA private key/,
  );
  assert.equal(
    loadPublicKeys(p("sa.key")).length,
    1,
    "a private key file serves as its public key",
  );
});
