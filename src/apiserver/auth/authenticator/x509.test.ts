import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import fs from "node:fs";
import https from "node:https";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { tempDir } from "../../../testing/tmp.js";
import { AuthenticationError, type Authenticator, type UserInfo } from "../types.js";
import { newRequestAuthenticator } from "./union.js";
import { X509Authenticator, parseCertificates } from "./x509.js";

// Certificates made as the RBAC lab makes them, with openssl.
const dir = tempDir("k8ts-x509-");
const p = (f: string) => path.join(dir.path, f);
const openssl = (...args: string[]) =>
  execFileSync("openssl", args, { cwd: dir.path, stdio: "pipe" });

function makeCA(name: string, cn: string): void {
  openssl("genrsa", "-out", `${name}.key`, "2048");
  openssl(
    "req",
    "-x509",
    "-new",
    "-key",
    `${name}.key`,
    "-subj",
    `/CN=${cn}`,
    "-days",
    "3",
    "-out",
    `${name}.crt`,
  );
}

function makeCert(name: string, subj: string, ca: string, ext?: string): void {
  openssl("genrsa", "-out", `${name}.key`, "2048");
  openssl("req", "-new", "-key", `${name}.key`, "-out", `${name}.csr`, "-subj", subj);
  const args = [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.crt`,
    "-CAkey",
    `${ca}.key`,
    "-CAcreateserial",
    "-out",
    `${name}.crt`,
    "-days",
    "30",
  ];
  if (ext) {
    fs.writeFileSync(p(`${name}.ext`), ext);
    args.push("-extfile", `${name}.ext`);
  }
  openssl(...args);
}

let server: https.Server;
let port = 0;
let auth: Authenticator;
/** Added to the authenticator's clock, to see certificates expire. */
let skew = 0;

before(async () => {
  makeCA("ca", "minikubeCA");
  makeCA("other-ca", "someone-else");
  makeCert(
    "server",
    "/CN=kube-apiserver",
    "ca",
    "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
  );
  makeCert("mike-admin", "/CN=mikeadmin/O=robotnik.io", "ca");
  makeCert("two-groups", "/CN=jane/O=dev/O=ops", "ca");
  makeCert("stranger", "/CN=mikeadmin/O=system:masters", "other-ca");
  makeCert("server-only", "/CN=web", "ca", "extendedKeyUsage=serverAuth\n");
  makeCert("no-cn", "/O=robotnik.io", "ca");
  makeCert(
    "intermediate",
    "/CN=intermediate-ca",
    "ca",
    "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
  );
  makeCert("via-intermediate", "/CN=ivan/O=team", "intermediate");

  const x509 = new X509Authenticator(
    parseCertificates(fs.readFileSync(p("ca.crt"))),
    () => Date.now() + skew,
  );
  auth = newRequestAuthenticator({ x509, anonymous: true }).authenticator;
  // The API server's TLS setup: ask for a certificate, verify it ourselves.
  server = https.createServer(
    {
      key: fs.readFileSync(p("server.key")),
      cert: fs.readFileSync(p("server.crt")),
      requestCert: true,
      rejectUnauthorized: false,
    },
    (req, res) => {
      Promise.resolve()
        .then(() => auth.authenticate({ headers: req.headers, socket: req.socket }))
        .then(
          (user) => {
            res.writeHead(user ? 200 : 401, { "content-type": "application/json" });
            res.end(JSON.stringify(user));
          },
          (err: unknown) => {
            res.writeHead(err instanceof AuthenticationError ? 401 : 500, {
              "content-type": "application/json",
            });
            res.end(JSON.stringify({ error: (err as Error).message }));
          },
        );
    },
  );
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  dir.remove();
});

async function call(
  certName?: string,
  extraCA?: string,
): Promise<{ status: number; body: UserInfo & { error?: string } }> {
  const opts: https.RequestOptions = {
    host: "127.0.0.1",
    port,
    path: "/api",
    ca: fs.readFileSync(p("ca.crt")),
    agent: false,
  };
  if (certName) {
    opts.key = fs.readFileSync(p(`${certName}.key`));
    opts.cert = extraCA
      ? Buffer.concat([fs.readFileSync(p(`${certName}.crt`)), fs.readFileSync(p(`${extraCA}.crt`))])
      : fs.readFileSync(p(`${certName}.crt`));
  }
  const req = https.request(opts);
  req.end();
  const [res] = (await once(req, "response")) as [import("node:http").IncomingMessage];
  let text = "";
  for await (const chunk of res) text += chunk;
  return { status: res.statusCode ?? 0, body: JSON.parse(text) };
}

test("the lab's openssl certificate: CN is the user, O the groups, plus system:authenticated", async () => {
  const { status, body } = await call("mike-admin");
  assert.equal(status, 200);
  assert.equal(body.username, "mikeadmin");
  assert.deepEqual(body.groups, ["robotnik.io", "system:authenticated"]);
  const id = body.extra?.["authentication.kubernetes.io/credential-id"]?.[0] ?? "";
  assert.match(id, /^X509SHA256=[0-9a-f]{64}$/);
  const fp = new X509Certificate(fs.readFileSync(p("mike-admin.crt"))).fingerprint256;
  assert.equal(id.slice("X509SHA256=".length), fp.replace(/:/g, "").toLowerCase());

  const two = await call("two-groups");
  assert.deepEqual(two.body.groups, ["dev", "ops", "system:authenticated"]);
});

test("a certificate from another CA is refused (401), not treated as anonymous", async () => {
  const { status, body } = await call("stranger");
  assert.equal(status, 401);
  assert.match(
    body.error!,
    /^verifying certificate SN=\d+, SKID=[0-9a-f:]*, AKID=[0-9a-f:]* failed: x509: certificate signed by unknown authority$/,
  );
});

test("no certificate: anonymous; a server-only certificate: refused; no CN: no opinion", async () => {
  const anon = await call();
  assert.equal(anon.status, 200);
  assert.deepEqual(anon.body, { username: "system:anonymous", groups: ["system:unauthenticated"] });
  const serverOnly = await call("server-only");
  assert.equal(serverOnly.status, 401);
  assert.match(serverOnly.body.error!, /incompatible key usage/);
  const noCN = await call("no-cn");
  assert.equal(noCN.body.username, "system:anonymous");
});

test("a chain through an intermediate CA the client sends", async () => {
  const alone = await call("via-intermediate");
  assert.equal(alone.status, 401, "the intermediate is needed");
  const chained = await call("via-intermediate", "intermediate");
  assert.equal(chained.status, 200);
  assert.equal(chained.body.username, "ivan");
});

test("an expired certificate is refused", async () => {
  skew = 40 * 24 * 3600 * 1000;
  try {
    const { status, body } = await call("mike-admin");
    assert.equal(status, 401);
    assert.match(
      body.error!,
      /x509: certificate has expired or is not yet valid: current time \S+ is after \S+$/,
    );
  } finally {
    skew = 0;
  }
});

test("the CA file must hold certificates", () => {
  fs.writeFileSync(p("empty.crt"), "nothing here\n");
  assert.throws(
    () => X509Authenticator.fromFile(p("empty.crt")),
    /does not contain any valid RSA or ECDSA certificates/,
  );
});
