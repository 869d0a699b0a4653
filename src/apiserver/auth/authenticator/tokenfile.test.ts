import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { tempDir } from "../../../testing/tmp.js";
import { AuthenticationError } from "../types.js";
import { TokenFileAuthenticator, parseCSV } from "./tokenfile.js";
import { newRequestAuthenticator } from "./union.js";

test('the token file: token,user,uid,"groups" records; tokens authenticate through the bearer header', async () => {
  const dir = tempDir("k8ts-tokens-");
  try {
    const file = path.join(dir.path, "tokens.csv");
    fs.writeFileSync(
      file,
      [
        '31ada4fd-adec-460c-809a-9e56ceb75269,admin,admin-uid,"system:masters,ops"',
        "02b50b05283e98dd0fd71db496ef01e8,kubelet-bootstrap,10001,system:bootstrappers",
        "",
        "plain,alice,alice-uid",
      ].join("\n") + "\n",
    );
    const tokens = TokenFileAuthenticator.fromFile(file);
    assert.equal(tokens.size, 3);
    assert.deepEqual(tokens.authenticateToken("31ada4fd-adec-460c-809a-9e56ceb75269"), {
      user: { username: "admin", uid: "admin-uid", groups: ["system:masters", "ops"] },
    });
    assert.deepEqual(tokens.authenticateToken("plain"), {
      user: { username: "alice", uid: "alice-uid", groups: [] },
    });
    assert.equal(tokens.authenticateToken("nope"), null);

    const { authenticator } = newRequestAuthenticator({ tokens: [tokens] });
    const req = (auth?: string) => ({
      headers: auth ? { authorization: auth } : {},
      socket: {} as never,
    });
    assert.deepEqual(await authenticator.authenticate(req("Bearer plain")), {
      username: "alice",
      uid: "alice-uid",
      groups: ["system:authenticated"],
    });
    // An unknown token is an error (401), never anonymous.
    assert.throws(
      () => authenticator.authenticate(req("Bearer wrong")),
      (e: Error) => e instanceof AuthenticationError && e.message === "invalid bearer token",
    );
    // No credentials: anonymous; "Basic" is not a bearer token.
    assert.equal((await authenticator.authenticate(req()))?.username, "system:anonymous");
    assert.equal(
      (await authenticator.authenticate(req("Basic YTpi")))?.username,
      "system:anonymous",
    );
  } finally {
    dir.remove();
  }
});

test("token file errors as upstream reports them", () => {
  assert.throws(() => new TokenFileAuthenticator("tok,user\n", "/etc/k/tokens.csv"), {
    message:
      "token file '/etc/k/tokens.csv' must have at least 3 columns (token, user name, user uid), found 2",
  });
  assert.throws(() => new TokenFileAuthenticator('a,b,c\nto"k,user,uid\n', "f"), {
    message: 'parse error on line 2, column 3: bare " in non-quoted-field',
  });
  assert.throws(() => new TokenFileAuthenticator('a,"b"x,c\n', "f"), {
    message: 'parse error on line 1, column 5: extraneous or missing " in quoted-field',
  });
  assert.throws(() => new TokenFileAuthenticator('a,"b,c\nd,e\n', "f"), {
    message:
      'record on line 1; parse error on line 2, column 5: extraneous or missing " in quoted-field',
  });
  assert.throws(() => TokenFileAuthenticator.fromFile("/nonexistent/tokens.csv"), {
    message: "open /nonexistent/tokens.csv: no such file or directory",
  });
  const dup = new TokenFileAuthenticator("t,a,1\nt,b,2\n,c,3\n", "f");
  assert.deepEqual(dup.warnings, [
    "duplicate token has been found in token file 'f', record number '2'",
    "empty token has been found in token file 'f', record number '3'",
  ]);
  assert.equal(dup.authenticateToken("t")?.user.username, "b");
});

test("CSV as Go reads it: quotes, doubled quotes, CRLF, multi-line fields", () => {
  assert.deepEqual(parseCSV('a,"b ""q"", c",d\r\ne,f\n'), [
    ["a", 'b "q", c', "d"],
    ["e", "f"],
  ]);
  assert.deepEqual(parseCSV('x,"1\n2",y'), [["x", "1\n2", "y"]]);
  assert.deepEqual(parseCSV("\n\n"), []);
});
