import { test } from "node:test";
import assert from "node:assert/strict";
import { AuthenticationError, type Authenticator, type TokenAuthenticator } from "../types.js";
import {
  AnonymousAuthenticator,
  UnionAuthenticator,
  UnionTokenAuthenticator,
  audienceAgnostic,
  bearerToken,
  newRequestAuthenticator,
  tokenReviewStatus,
} from "./union.js";
import { TokenFileAuthenticator } from "./tokenfile.js";

const req = (authorization?: string, path = "/api") => ({
  headers: authorization ? { authorization } : {},
  socket: {} as never,
  path,
});

test("bearer header parsing as upstream", () => {
  assert.equal(bearerToken({ authorization: "Bearer abc" }), "abc");
  assert.equal(bearerToken({ authorization: "bearer abc extra" }), "abc");
  assert.equal(bearerToken({ authorization: "  Bearer abc  " }), "abc");
  assert.equal(bearerToken({ authorization: "Bearer" }), undefined);
  assert.equal(
    bearerToken({ authorization: "Bearer  abc" }),
    undefined,
    "an extra space leaves no token",
  );
  assert.equal(bearerToken({ authorization: "Basic abc" }), undefined);
  assert.equal(bearerToken({}), undefined);
});

test("the chain: first success wins, errors only when nothing succeeds, anonymous only without credentials", async () => {
  const failing: Authenticator = {
    authenticate: () => {
      throw new AuthenticationError("bad cert");
    },
  };
  const tokens = new TokenFileAuthenticator("good,alice,1\n");
  const { authenticator } = newRequestAuthenticator({
    x509: failing,
    tokens: [tokens],
    anonymous: true,
  });
  // A bad certificate but a good token: the token wins.
  assert.equal((await authenticator.authenticate(req("Bearer good")))?.username, "alice");
  // A bad certificate alone: refused, not anonymous.
  assert.throws(() => authenticator.authenticate(req()), { message: "bad cert" });
  // Both bad: both reasons.
  assert.throws(() => authenticator.authenticate(req("Bearer nope")), {
    message: "[bad cert, invalid bearer token]",
  });

  const noAnon = newRequestAuthenticator({ tokens: [tokens], anonymous: false }).authenticator;
  assert.equal(
    await noAnon.authenticate(req()),
    null,
    "no credentials and no anonymous: the caller answers 401",
  );
  const someAnon = newRequestAuthenticator({
    tokens: [tokens],
    anonymous: ["/healthz", "/readyz"],
  }).authenticator;
  assert.equal(
    (await someAnon.authenticate(req(undefined, "/healthz")))?.username,
    "system:anonymous",
  );
  assert.equal(await someAnon.authenticate(req(undefined, "/api")), null);
});

test("asynchronous authenticators compose; fail-on-error stops at the first error", async () => {
  const later = (name: string): Authenticator => ({
    authenticate: async () => ({ username: name, groups: [] }),
  });
  const rejecting: Authenticator = {
    authenticate: async () => Promise.reject(new AuthenticationError("late no")),
  };
  const none: Authenticator = { authenticate: () => null };
  assert.equal(
    (await new UnionAuthenticator([none, later("x")]).authenticate(req()))?.username,
    "x",
  );
  assert.equal(
    (await new UnionAuthenticator([rejecting, later("y")]).authenticate(req()))?.username,
    "y",
  );
  await assert.rejects(
    Promise.resolve(new UnionAuthenticator([rejecting, later("z")], true).authenticate(req())),
    { message: "late no" },
  );
  const anonAfter = new UnionAuthenticator([rejecting, new AnonymousAuthenticator()], true);
  await assert.rejects(Promise.resolve(anonAfter.authenticate(req())), { message: "late no" });
});

test("token unions and audience-agnostic tokens", async () => {
  const erring: TokenAuthenticator = {
    authenticateToken: () => {
      throw new AuthenticationError("service account token has expired");
    },
  };
  const file = new TokenFileAuthenticator("t,bob,2,devs\n");
  const u = new UnionTokenAuthenticator([erring, audienceAgnostic(file, ["https://k8s"])]);
  assert.equal((await u.authenticateToken("t"))?.user.username, "bob");
  assert.throws(() => u.authenticateToken("x"), { message: "service account token has expired" });
  // With audiences asked: only the API server's own.
  assert.deepEqual((await u.authenticateToken("t", ["https://k8s", "vault"]))?.audiences, [
    "https://k8s",
  ]);
  assert.throws(() => u.authenticateToken("t", ["vault"]), {
    message: "service account token has expired",
  });

  const review = await tokenReviewStatus(audienceAgnostic(file, ["https://k8s"]), "t", undefined, [
    "https://k8s",
  ]);
  assert.deepEqual(review, {
    authenticated: true,
    user: { username: "bob", uid: "2", groups: ["devs", "system:authenticated"], extra: {} },
    audiences: ["https://k8s"],
  });
});
