import { test } from "node:test";
import assert from "node:assert/strict";
import type { Secret } from "kubernetes-types/core/v1.js";
import { AuthenticationError } from "../types.js";
import { BootstrapTokenAuthenticator } from "./bootstrap.js";
import { newRequestAuthenticator } from "./union.js";

const b64 = (s: string) => Buffer.from(s).toString("base64");

/** A bootstrap token secret as kubeadm creates it. */
function secret(data: Record<string, string>, type = "bootstrap.kubernetes.io/token"): Secret {
  return {
    metadata: { namespace: "kube-system", name: "bootstrap-token-abcdef" },
    type,
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
  };
}

const good = {
  "token-id": "abcdef",
  "token-secret": "0123456789abcdef",
  "usage-bootstrap-authentication": "true",
  "usage-bootstrap-signing": "true",
  "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
};

function withSecret(s: Secret | undefined, now?: () => number) {
  const secrets = new Map<string, Secret>();
  if (s) secrets.set(s.metadata!.name!, s);
  return new BootstrapTokenAuthenticator((name) => secrets.get(name), now);
}

test("a valid bootstrap token: system:bootstrap:<id> in system:bootstrappers and its extra groups", () => {
  const a = withSecret(secret(good));
  assert.deepEqual(a.authenticateToken("abcdef.0123456789abcdef"), {
    user: {
      username: "system:bootstrap:abcdef",
      groups: ["system:bootstrappers", "system:bootstrappers:kubeadm:default-node-token"],
    },
  });
  const chain = newRequestAuthenticator({ tokens: [a] }).authenticator;
  assert.deepEqual(
    chain.authenticate({
      headers: { authorization: "Bearer abcdef.0123456789abcdef" },
      socket: {} as never,
    }),
    {
      username: "system:bootstrap:abcdef",
      groups: [
        "system:bootstrappers",
        "system:bootstrappers:kubeadm:default-node-token",
        "system:authenticated",
      ],
    },
  );
});

test("wrong secret, expired, not for authentication, wrong type, bad groups, unknown id: refused (401)", () => {
  const cases: Array<[Secret | undefined, string]> = [
    [secret(good), "abcdef.0000000000000000"],
    [secret({ ...good, expiration: "2020-01-01T00:00:00Z" }), "abcdef.0123456789abcdef"],
    [secret({ ...good, "usage-bootstrap-authentication": "false" }), "abcdef.0123456789abcdef"],
    [secret(good, "Opaque"), "abcdef.0123456789abcdef"],
    [secret({ ...good, "auth-extra-groups": "system:masters" }), "abcdef.0123456789abcdef"],
    [secret({ ...good, "token-id": "zzzzzz" }), "abcdef.0123456789abcdef"],
    [undefined, "abcdef.0123456789abcdef"],
  ];
  for (const [s, token] of cases) {
    const a = withSecret(s);
    assert.equal(a.authenticateToken(token), null);
    const chain = newRequestAuthenticator({ tokens: [a] }).authenticator;
    assert.throws(
      () =>
        chain.authenticate({ headers: { authorization: `Bearer ${token}` }, socket: {} as never }),
      (e: Error) => e instanceof AuthenticationError && e.message === "invalid bearer token",
    );
  }
  const expired = withSecret(secret({ ...good, expiration: "2020-01-01T00:00:00Z" }));
  expired.authenticateToken("abcdef.0123456789abcdef");
  assert.deepEqual(expired.refusals, [
    "Bootstrap secret kube-system/bootstrap-token-abcdef matching bearer token has expired.",
  ]);
  const masters = withSecret(secret({ ...good, "auth-extra-groups": "system:masters" }));
  masters.authenticateToken("abcdef.0123456789abcdef");
  assert.match(
    masters.refusals[0]!,
    /has invalid value for key auth-extra-groups: bootstrap group "system:masters" is invalid/,
  );
  // A future expiration is fine; tokens not of the bootstrap form are not looked up.
  const future = withSecret(secret({ ...good, expiration: "2999-01-01T00:00:00Z" }));
  assert.ok(future.authenticateToken("abcdef.0123456789abcdef"));
  assert.equal(future.authenticateToken("ABCDEF.0123456789abcdef"), null);
});
