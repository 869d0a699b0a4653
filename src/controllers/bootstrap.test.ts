import assert from "node:assert/strict";
import { test } from "node:test";
import { compactVerify } from "jose";
import type { Secret } from "kubernetes-types/core/v1.js";
import {
  detachedSignature,
  signedClusterInfo,
  signingToken,
  tokenExpiration,
} from "./bootstrap.js";

const NOW = Date.parse("2024-05-01T10:00:00Z");
const b64 = (s: string) => Buffer.from(s).toString("base64");

function secret(
  name: string,
  data: Record<string, string>,
  type = "bootstrap.kubernetes.io/token",
): Secret {
  return {
    metadata: { name, namespace: "kube-system" },
    type,
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
  };
}

const ok = {
  "token-id": "abcdef",
  "token-secret": "0123456789abcdef",
  "usage-bootstrap-signing": "true",
};

test("token expiration: none never expires, past or unparseable is expired", () => {
  assert.deepEqual(tokenExpiration(secret("bootstrap-token-abcdef", ok), NOW), {
    expired: false,
    remaining: 0,
  });
  assert.deepEqual(tokenExpiration(secret("t", { expiration: "2024-05-01T10:00:30Z" }), NOW), {
    expired: false,
    remaining: 30_000,
  });
  assert.equal(
    tokenExpiration(secret("t", { expiration: "2024-05-01T09:00:00Z" }), NOW).expired,
    true,
  );
  assert.equal(tokenExpiration(secret("t", { expiration: "tomorrow" }), NOW).expired, true);
  assert.equal(
    tokenExpiration(secret("t", { expiration: "2024-05-01T12:00:00+02:00" }), NOW).expired,
    true,
  );
});

test("only valid, unexpired signing tokens sign", () => {
  assert.deepEqual(signingToken(secret("bootstrap-token-abcdef", ok), NOW), {
    id: "abcdef",
    secret: "0123456789abcdef",
  });
  assert.equal(signingToken(secret("bootstrap-token-zzzzzz", ok), NOW), undefined);
  assert.equal(
    signingToken(
      secret("bootstrap-token-abcdef", { ...ok, "usage-bootstrap-signing": "false" }),
      NOW,
    ),
    undefined,
  );
  assert.equal(
    signingToken(
      secret("bootstrap-token-abcdef", { ...ok, expiration: "2020-01-01T00:00:00Z" }),
      NOW,
    ),
    undefined,
  );
  assert.equal(signingToken(secret("bootstrap-token-abcdef", ok, "Opaque"), NOW), undefined);
});

test("cluster-info gets one detached HS256 signature per token, verifiable with the token", async () => {
  const kubeconfig = "apiVersion: v1\nkind: Config\n";
  const sig = await detachedSignature(kubeconfig, "abcdef", "0123456789abcdef");
  const [header, , s] = sig.split(".");
  assert.equal(Buffer.from(header!, "base64url").toString(), '{"alg":"HS256","kid":"abcdef"}');
  const full = `${header}.${Buffer.from(kubeconfig).toString("base64url")}.${s}`;
  await compactVerify(full, new TextEncoder().encode("0123456789abcdef"));
  await assert.rejects(compactVerify(full, new TextEncoder().encode("fedcba9876543210")));

  const cm = {
    metadata: { name: "cluster-info" },
    data: { kubeconfig, "jws-kubeconfig-gone00": "x" },
  };
  const next = await signedClusterInfo(cm, [{ id: "abcdef", secret: "0123456789abcdef" }]);
  assert.deepEqual(next?.data, { kubeconfig, "jws-kubeconfig-abcdef": sig });
  assert.equal(
    await signedClusterInfo(next!, [{ id: "abcdef", secret: "0123456789abcdef" }]),
    undefined,
  );
  assert.equal(await signedClusterInfo({ metadata: {}, data: {} }, []), undefined);
});
