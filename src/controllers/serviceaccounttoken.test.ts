import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import type { Secret, ServiceAccount } from "kubernetes-types/core/v1.js";
import {
  issueLegacyServiceAccountToken,
  ServiceAccountTokenAuthenticator,
} from "../apiserver/auth/authenticator/serviceaccount.js";
import { tempDir } from "../testing/tmp.js";
import type { ControllerContext } from "./context.js";
import {
  decideSecret,
  isServiceAccountToken,
  loadServiceAccountPrivateKey,
  matchingServiceAccount,
  parseSecretKey,
  parseServiceAccountKey,
  populatedSecret,
  secretKey,
  secretUpdateNeeded,
  serviceAccountKey,
  serviceAccountTokenDescriptor,
  SERVICE_ACCOUNT_NAME_KEY,
  SERVICE_ACCOUNT_TOKEN_TYPE,
  SERVICE_ACCOUNT_UID_KEY,
  withoutSecretReference,
} from "./serviceaccounttoken.js";

const b64 = (s: string | Buffer) => Buffer.from(s).toString("base64");
const CA = Buffer.from("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");

function account(name = "default", uid = "sa-uid", secrets: string[] = []): ServiceAccount {
  return {
    metadata: { namespace: "ns", name, uid, resourceVersion: "5" },
    ...(secrets.length ? { secrets: secrets.map((s) => ({ name: s })) } : {}),
  };
}

function tokenSecret(
  annotations: Record<string, string>,
  data?: Record<string, string>,
  type = SERVICE_ACCOUNT_TOKEN_TYPE,
): Secret {
  return {
    metadata: {
      namespace: "ns",
      name: "tok",
      uid: "secret-uid",
      resourceVersion: "7",
      annotations,
    },
    type,
    ...(data ? { data } : {}),
  };
}

const full = {
  token: b64("a.b.c"),
  "ca.crt": b64(CA),
  namespace: b64("ns"),
};

test("a Secret is a token of an account by type, name annotation and (when set) uid annotation", () => {
  const sa = { name: "default", uid: "sa-uid" };
  assert.ok(isServiceAccountToken(tokenSecret({ [SERVICE_ACCOUNT_NAME_KEY]: "default" }), sa));
  assert.ok(
    isServiceAccountToken(
      tokenSecret({ [SERVICE_ACCOUNT_NAME_KEY]: "default", [SERVICE_ACCOUNT_UID_KEY]: "sa-uid" }),
      sa,
    ),
  );
  assert.ok(
    !isServiceAccountToken(
      tokenSecret({ [SERVICE_ACCOUNT_NAME_KEY]: "default", [SERVICE_ACCOUNT_UID_KEY]: "old" }),
      sa,
    ),
  );
  assert.ok(!isServiceAccountToken(tokenSecret({ [SERVICE_ACCOUNT_NAME_KEY]: "builder" }), sa));
  assert.ok(
    !isServiceAccountToken(
      tokenSecret({ [SERVICE_ACCOUNT_NAME_KEY]: "default" }, {}, "Opaque"),
      sa,
    ),
  );
});

test("an account matches a uid only when the uid is empty or its own", () => {
  const sa = account();
  assert.equal(matchingServiceAccount(sa, ""), sa);
  assert.equal(matchingServiceAccount(sa, "sa-uid"), sa);
  assert.equal(matchingServiceAccount(sa, "other"), undefined);
  assert.equal(matchingServiceAccount(undefined, ""), undefined);
});

test("what a token Secret lacks: token, namespace, and a ca.crt equal to the root CA", () => {
  const empty = tokenSecret({ [SERVICE_ACCOUNT_NAME_KEY]: "default" });
  assert.deepEqual(secretUpdateNeeded(empty, CA), { ca: true, namespace: true, token: true });
  assert.deepEqual(secretUpdateNeeded(empty, undefined), {
    ca: false,
    namespace: true,
    token: true,
  });
  const complete = tokenSecret({ [SERVICE_ACCOUNT_NAME_KEY]: "default" }, full);
  assert.deepEqual(secretUpdateNeeded(complete, CA), { ca: false, namespace: false, token: false });
  const staleCA = tokenSecret({}, { ...full, "ca.crt": b64("old CA") });
  assert.deepEqual(secretUpdateNeeded(staleCA, CA), { ca: true, namespace: false, token: false });
  // A Secret's token once written is kept, even when the account's uid annotation was missing.
  assert.deepEqual(secretUpdateNeeded(tokenSecret({}, { ...full, token: "" }), CA).token, true);
});

test("a token Secret is deleted without its account, populated when it lacks anything, else left", () => {
  const s = tokenSecret({ [SERVICE_ACCOUNT_NAME_KEY]: "default" });
  assert.deepEqual(decideSecret(s, undefined, CA), { action: "delete" });
  assert.deepEqual(decideSecret(s, account(), CA), {
    action: "populate",
    needs: { ca: true, namespace: true, token: true },
  });
  const done = tokenSecret({ [SERVICE_ACCOUNT_NAME_KEY]: "default" }, full);
  assert.deepEqual(decideSecret(done, account(), CA), { action: "none" });
  assert.deepEqual(decideSecret(done, account(), Buffer.from("rotated")), {
    action: "populate",
    needs: { ca: true, namespace: false, token: false },
  });
});

test("populating fills only what is lacking and records the account's name and uid", () => {
  const s = tokenSecret(
    { [SERVICE_ACCOUNT_NAME_KEY]: "default", other: "kept" },
    { extra: "eA==" },
  );
  const out = populatedSecret(s, account(), secretUpdateNeeded(s, CA), CA, "h.p.s");
  assert.deepEqual(out.data, {
    extra: "eA==",
    token: b64("h.p.s"),
    "ca.crt": b64(CA),
    namespace: b64("ns"),
  });
  assert.deepEqual(out.metadata?.annotations, {
    [SERVICE_ACCOUNT_NAME_KEY]: "default",
    [SERVICE_ACCOUNT_UID_KEY]: "sa-uid",
    other: "kept",
  });
  assert.equal(out.metadata?.resourceVersion, "7", "the update carries the read resourceVersion");
  assert.equal(s.data?.token, undefined, "the input is not modified");

  const rotated = tokenSecret({ [SERVICE_ACCOUNT_NAME_KEY]: "default" }, full);
  const newCA = Buffer.from("new CA");
  const out2 = populatedSecret(rotated, account(), secretUpdateNeeded(rotated, newCA), newCA);
  assert.equal(out2.data?.token, full.token);
  assert.equal(out2.data?.["ca.crt"], b64(newCA));
  assert.throws(() =>
    populatedSecret(s, account(), { ca: false, namespace: false, token: true }, CA),
  );
});

test("a deleted Secret is dropped from its account's secrets, only for that account's uid", () => {
  const sa = account("default", "sa-uid", ["a", "tok", "b"]);
  assert.deepEqual(withoutSecretReference(sa, "sa-uid", "tok")?.secrets, [
    { name: "a" },
    { name: "b" },
  ]);
  assert.deepEqual(withoutSecretReference(sa, "", "tok")?.secrets, [{ name: "a" }, { name: "b" }]);
  assert.equal(withoutSecretReference(sa, "other-uid", "tok"), undefined);
  assert.equal(withoutSecretReference(sa, "sa-uid", "missing"), undefined);
  assert.equal(sa.secrets?.length, 3);
});

test("queue keys keep what a deleted object was", () => {
  assert.deepEqual(parseServiceAccountKey(serviceAccountKey(account())), {
    namespace: "ns",
    name: "default",
    uid: "sa-uid",
  });
  const s = tokenSecret({ [SERVICE_ACCOUNT_NAME_KEY]: "default", [SERVICE_ACCOUNT_UID_KEY]: "u1" });
  assert.deepEqual(parseSecretKey(secretKey(s)), {
    namespace: "ns",
    name: "tok",
    uid: "secret-uid",
    saName: "default",
    saUID: "u1",
  });
  assert.equal(parseSecretKey(secretKey(tokenSecret({}))).saUID, "");
});

test("the private key file: RSA and ECDSA keys load; a missing file or one without a key fails as upstream's", async () => {
  const dir = tempDir("k8ts-sa-token-");
  try {
    const rsaFile = path.join(dir.path, "sa.key");
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    fs.writeFileSync(rsaFile, rsa.privateKey.export({ type: "pkcs1", format: "pem" }));
    const ecFile = path.join(dir.path, "ec.key");
    const ec = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    fs.writeFileSync(
      ecFile,
      "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n" +
        (ec.privateKey.export({ type: "sec1", format: "pem" }) as string),
    );
    const pubFile = path.join(dir.path, "sa.pub");
    fs.writeFileSync(pubFile, rsa.publicKey.export({ type: "spki", format: "pem" }));

    assert.equal(loadServiceAccountPrivateKey(rsaFile).asymmetricKeyType, "rsa");
    assert.equal(loadServiceAccountPrivateKey(ecFile).asymmetricKeyType, "ec");
    const missing = path.join(dir.path, "nope.key");
    assert.throws(() => loadServiceAccountPrivateKey(missing), {
      message: `error reading key for service account token controller: open ${missing}: no such file or directory`,
    });
    assert.throws(() => loadServiceAccountPrivateKey(pubFile), {
      message: `error reading key for service account token controller: error reading private key file ${pubFile}: data does not contain a valid RSA or ECDSA private key`,
    });

    // The token written into a populated Secret is accepted by the API server's authenticator
    // while the Secret holds it and the account is the one it names.
    for (const [file, pub, alg] of [
      [rsaFile, rsa.publicKey, "RS256"],
      [ecFile, ec.publicKey, "ES256"],
    ] as const) {
      const key = loadServiceAccountPrivateKey(file);
      const sa = account();
      const s = tokenSecret({ [SERVICE_ACCOUNT_NAME_KEY]: "default" });
      const token = await issueLegacyServiceAccountToken({
        key,
        namespace: "ns",
        serviceAccount: { name: "default", uid: "sa-uid" },
        secretName: "tok",
      });
      const stored = populatedSecret(s, sa, secretUpdateNeeded(s, CA), CA, token);
      const header = JSON.parse(Buffer.from(token.split(".")[0]!, "base64url").toString()) as {
        alg: string;
      };
      assert.equal(header.alg, alg);
      const authn = new ServiceAccountTokenAuthenticator({
        keys: [pub],
        issuers: ["https://kubernetes.default.svc.cluster.local"],
        getter: {
          getServiceAccount: (ns, name) => (ns === "ns" && name === "default" ? sa : undefined),
          getSecret: (ns, name) => (ns === "ns" && name === "tok" ? stored : undefined),
          getPod: () => undefined,
          getNode: () => undefined,
        },
      });
      const r = await authn.authenticateToken(token);
      assert.equal(r?.user.username, "system:serviceaccount:ns:default");
      assert.deepEqual(r?.user.groups, ["system:serviceaccounts", "system:serviceaccounts:ns"]);
    }
  } finally {
    dir.remove();
  }
});

test("without --service-account-private-key-file the controller does not run, as upstream's", async () => {
  const lines: string[] = [];
  const ctx = {
    options: { concurrency: {} },
    log: { info: (m: string) => lines.push(m), error: (m: string) => lines.push(`E ${m}`) },
  } as unknown as ControllerContext;
  await serviceAccountTokenDescriptor.start(ctx, new AbortController().signal);
  assert.deepEqual(lines, [
    'Controller is disabled because there is no private key controller="serviceaccount-token-controller"',
  ]);
  assert.equal(serviceAccountTokenDescriptor.serviceAccount, undefined, "it acts as the manager");
});
