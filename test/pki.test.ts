/**
 * `k8ts certs` and `k8ts kubeconfig`, run as a user runs them (`bin/k8ts` as a child process),
 * checked with the tools people check a PKI with: `openssl verify`, `openssl x509 -text`, real
 * kubectl (`config view --flatten`, and a TLS connection to a real `k8ts apiserver`).
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { importPKCS8, importSPKI, jwtVerify, SignJWT } from "jose";
import { tempDir } from "../src/testing/tmp.js";
import { k8tsBin, kubectl, kubectlBinary, TestAPIServer } from "./support/apiserver.js";

function k8ts(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(k8tsBin, args, { encoding: "utf8", timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function openssl(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync("openssl", args, { encoding: "utf8" });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The fields of `openssl x509 -noout -text` a PKI is judged by. */
interface CertText {
  subject: string;
  issuer: string;
  keyUsage: string;
  keyUsageCritical: boolean;
  extKeyUsage: string | undefined;
  basicConstraints: string;
  san: string[];
  publicKeyAlgorithm: string;
  notBefore: Date;
  notAfter: Date;
}

function certText(file: string): CertText {
  const r = openssl("x509", "-noout", "-text", "-in", file);
  assert.equal(r.code, 0, `openssl x509 -text ${file}: ${r.stderr}`);
  const t = r.stdout;
  const line = (re: RegExp) => re.exec(t)?.[1]?.trim();
  const after = (header: RegExp) => {
    const m = header.exec(t);
    if (!m) return undefined;
    return t
      .slice(m.index + m[0].length)
      .split("\n")[1]!
      .trim();
  };
  return {
    subject: line(/^\s+Subject: (.*)$/m)!,
    issuer: line(/^\s+Issuer: (.*)$/m)!,
    keyUsage: after(/X509v3 Key Usage:.*$/m)!,
    keyUsageCritical: /X509v3 Key Usage: critical/.test(t),
    extKeyUsage: after(/X509v3 Extended Key Usage:.*$/m),
    basicConstraints: after(/X509v3 Basic Constraints:.*$/m)!,
    san: (after(/X509v3 Subject Alternative Name:.*$/m) ?? "").split(", ").filter(Boolean),
    publicKeyAlgorithm: line(/Public Key Algorithm: (.*)$/m)!,
    notBefore: new Date(line(/Not Before: (.*)$/m)!),
    notAfter: new Date(line(/Not After : (.*)$/m)!),
  };
}

function verify(caFile: string, certFile: string, purpose?: "sslserver" | "sslclient"): void {
  const r = openssl(
    "verify",
    ...(purpose ? ["-purpose", purpose] : []),
    "-CAfile",
    caFile,
    certFile,
  );
  assert.equal(r.code, 0, `openssl verify ${certFile}: ${r.stdout}${r.stderr}`);
  assert.equal(r.stdout.trim(), `${certFile}: OK`);
}

const DAY = 24 * 60 * 60 * 1000;

function assertValidity(c: CertText, days: number): void {
  const span = c.notAfter.getTime() - c.notBefore.getTime();
  // Five minutes of backdating on top of the period.
  assert.ok(Math.abs(span - days * DAY - 5 * 60 * 1000) < 60 * 1000, `validity ${span / DAY} days`);
}

function snapshot(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const entry of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const p = path.join(dir, entry);
    if (fs.statSync(p).isFile()) files.set(entry, fs.readFileSync(p));
  }
  return files;
}

describe("k8ts certs", () => {
  const tmp = tempDir("k8ts-pki-");
  const pki = path.join(tmp.path, "pki");
  const common = [
    `--cert-dir=${pki}`,
    "--node-name=cp-1",
    "--apiserver-advertise-address=192.0.2.10",
    "--apiserver-cert-extra-sans=lb.example.com,192.0.2.100",
    "--control-plane-endpoint=k8s.example.com:6443",
    "--service-cidr=10.96.0.0/12",
  ];
  let first: ReturnType<typeof k8ts>;
  before(() => {
    first = k8ts("certs", ...common);
  });
  after(() => tmp.remove());

  test("generates kubeadm's set and the component client certificates, one line per file", () => {
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stderr, "");
    const lines = first.stdout.trim().split("\n");
    assert.equal(lines[0], `[certs] Using certificateDir folder "${pki}"`);
    for (const name of [
      "ca",
      "apiserver",
      "apiserver-kubelet-client",
      "front-proxy-ca",
      "front-proxy-client",
      "etcd/ca",
      "etcd/server",
      "etcd/peer",
      "etcd/healthcheck-client",
      "apiserver-etcd-client",
      "admin",
      "controller-manager",
      "scheduler",
      "kube-proxy",
      "kubelet-cp-1",
    ]) {
      assert.ok(lines.includes(`[certs] Generating "${name}" certificate and key`), name);
      assert.ok(fs.existsSync(path.join(pki, `${name}.crt`)), `${name}.crt`);
      const key = path.join(pki, `${name}.key`);
      assert.equal(fs.statSync(key).mode & 0o777, 0o600, `${name}.key is private`);
    }
    assert.ok(lines.includes(`[certs] Generating "sa" key and public key`));
    assert.ok(
      lines.includes(
        "[certs] apiserver serving cert is signed for DNS names [cp-1 k8s.example.com kubernetes kubernetes.default kubernetes.default.svc kubernetes.default.svc.cluster.local lb.example.com localhost] and IPs [10.96.0.1 192.0.2.10 127.0.0.1 192.0.2.100]",
      ),
      first.stdout,
    );
  });

  test("openssl verifies every certificate against its CA", () => {
    const ca = path.join(pki, "ca.crt");
    verify(ca, path.join(pki, "apiserver.crt"), "sslserver");
    for (const c of [
      "apiserver-kubelet-client",
      "admin",
      "controller-manager",
      "scheduler",
      "kube-proxy",
    ]) {
      verify(ca, path.join(pki, `${c}.crt`), "sslclient");
    }
    verify(ca, path.join(pki, "kubelet-cp-1.crt"), "sslserver");
    verify(ca, path.join(pki, "kubelet-cp-1.crt"), "sslclient");
    const etcdCA = path.join(pki, "etcd", "ca.crt");
    for (const c of ["server", "peer"]) {
      verify(etcdCA, path.join(pki, "etcd", `${c}.crt`), "sslserver");
      verify(etcdCA, path.join(pki, "etcd", `${c}.crt`), "sslclient");
    }
    verify(etcdCA, path.join(pki, "etcd", "healthcheck-client.crt"), "sslclient");
    verify(etcdCA, path.join(pki, "apiserver-etcd-client.crt"), "sslclient");
    verify(path.join(pki, "front-proxy-ca.crt"), path.join(pki, "front-proxy-client.crt"));
    // A certificate from one CA is not accepted by another.
    const r = openssl("verify", "-CAfile", etcdCA, path.join(pki, "apiserver.crt"));
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /unable to get local issuer certificate/);
  });

  test("CAs: CA:TRUE, certificate signing, ten years", () => {
    for (const [file, cn] of [
      ["ca.crt", "kubernetes"],
      ["etcd/ca.crt", "etcd-ca"],
      ["front-proxy-ca.crt", "front-proxy-ca"],
    ] as const) {
      const c = certText(path.join(pki, file));
      assert.equal(c.subject, `CN = ${cn}`);
      assert.equal(c.issuer, `CN = ${cn}`);
      assert.equal(c.basicConstraints, "CA:TRUE");
      assert.equal(c.keyUsage, "Digital Signature, Key Encipherment, Certificate Sign");
      assert.ok(c.keyUsageCritical);
      assert.equal(c.extKeyUsage, undefined);
      assert.equal(c.publicKeyAlgorithm, "id-ecPublicKey");
      assertValidity(c, 3650);
    }
  });

  test("leaf certificates: subjects, key usages, extended key usages, SANs, one year", () => {
    const server = "TLS Web Server Authentication";
    const client = "TLS Web Client Authentication";
    const expect: Record<string, { subject: string; eku: string; san?: string[] }> = {
      apiserver: {
        subject: "CN = kube-apiserver",
        eku: server,
        san: [
          "DNS:kubernetes",
          "DNS:kubernetes.default",
          "DNS:kubernetes.default.svc",
          "DNS:kubernetes.default.svc.cluster.local",
          "DNS:localhost",
          "DNS:cp-1",
          "DNS:k8s.example.com",
          "DNS:lb.example.com",
          "IP Address:10.96.0.1",
          "IP Address:192.0.2.10",
          "IP Address:127.0.0.1",
          "IP Address:192.0.2.100",
        ],
      },
      "apiserver-kubelet-client": {
        subject: "O = system:masters, CN = kube-apiserver-kubelet-client",
        eku: client,
      },
      "front-proxy-client": { subject: "CN = front-proxy-client", eku: client },
      "etcd/server": {
        subject: "CN = cp-1",
        eku: `${server}, ${client}`,
        san: [
          "DNS:cp-1",
          "DNS:localhost",
          "IP Address:192.0.2.10",
          "IP Address:127.0.0.1",
          "IP Address:0:0:0:0:0:0:0:1",
        ],
      },
      "etcd/peer": { subject: "CN = cp-1", eku: `${server}, ${client}` },
      "etcd/healthcheck-client": {
        subject: "O = system:masters, CN = kube-etcd-healthcheck-client",
        eku: client,
      },
      "apiserver-etcd-client": {
        subject: "O = system:masters, CN = kube-apiserver-etcd-client",
        eku: client,
      },
      admin: { subject: "O = system:masters, CN = kubernetes-admin", eku: client },
      "controller-manager": { subject: "CN = system:kube-controller-manager", eku: client },
      scheduler: { subject: "CN = system:kube-scheduler", eku: client },
      "kube-proxy": { subject: "CN = system:kube-proxy", eku: client },
      "kubelet-cp-1": {
        subject: "O = system:nodes, CN = system:node:cp-1",
        eku: `${server}, ${client}`,
        san: ["DNS:cp-1", "IP Address:192.0.2.10"],
      },
    };
    for (const [name, want] of Object.entries(expect)) {
      const c = certText(path.join(pki, `${name}.crt`));
      assert.equal(c.subject, want.subject, name);
      assert.equal(c.basicConstraints, "CA:FALSE", name);
      assert.equal(c.keyUsage, "Digital Signature, Key Encipherment", name);
      assert.ok(c.keyUsageCritical, name);
      assert.equal(c.extKeyUsage, want.eku, name);
      if (want.san) assert.deepEqual(c.san, want.san, name);
      else if (!name.startsWith("etcd/")) assert.deepEqual(c.san, [], name);
      assertValidity(c, 365);
    }
  });

  test("the service account key pair signs and verifies tokens", async () => {
    const key = fs.readFileSync(path.join(pki, "sa.key"), "utf8");
    const pub = fs.readFileSync(path.join(pki, "sa.pub"), "utf8");
    assert.match(key, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.match(pub, /^-----BEGIN PUBLIC KEY-----\n/);
    // openssl derives the same public key from the private one.
    const derived = openssl("pkey", "-in", path.join(pki, "sa.key"), "-pubout");
    assert.equal(derived.code, 0, derived.stderr);
    assert.equal(derived.stdout, pub);
    const jwt = await new SignJWT({ sub: "system:serviceaccount:default:default" })
      .setProtectedHeader({ alg: "ES256" })
      .setIssuer("https://kubernetes.default.svc.cluster.local")
      .sign(await importPKCS8(key, "ES256"));
    const { payload } = await jwtVerify(jwt, await importSPKI(pub, "ES256"));
    assert.equal(payload.sub, "system:serviceaccount:default:default");
  });

  test("a second run keeps every file and says so; --force replaces them", () => {
    const before = snapshot(pki);
    const again = k8ts("certs", ...common);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(snapshot(pki), before);
    const lines = again.stdout.trim().split("\n");
    assert.ok(lines.includes("[certs] Using existing ca certificate authority"));
    assert.ok(lines.includes("[certs] Using existing etcd/ca certificate authority"));
    assert.ok(lines.includes("[certs] Using existing apiserver certificate and key on disk"));
    assert.ok(lines.includes('[certs] Using the existing "sa" key'));
    assert.ok(!again.stdout.includes("Generating"), again.stdout);

    const forced = k8ts("certs", "apiserver", "admin", "--force", ...common);
    assert.equal(forced.code, 0, forced.stderr);
    assert.doesNotMatch(forced.stdout, /"ca"/);
    assert.match(forced.stdout, /\[certs\] Generating "apiserver" certificate and key/);
    assert.match(forced.stdout, /\[certs\] Generating "admin" certificate and key/);
    const now = snapshot(pki);
    assert.deepEqual(now.get("ca.crt"), before.get("ca.crt"));
    assert.notDeepEqual(now.get("apiserver.crt"), before.get("apiserver.crt"));
    assert.notDeepEqual(now.get("apiserver.key"), before.get("apiserver.key"));
    assert.deepEqual(now.get("scheduler.crt"), before.get("scheduler.crt"));
    verify(path.join(pki, "ca.crt"), path.join(pki, "apiserver.crt"), "sslserver");
  });

  test("a serving certificate that lacks a requested name is refused until --force", () => {
    const before = fs.readFileSync(path.join(pki, "apiserver.crt"));
    const r = k8ts("certs", "apiserver", ...common, "--apiserver-cert-extra-sans=new.example.com");
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `error: certificate ${pki}/apiserver.crt is not valid for "new.example.com"; use --force to replace it\n`,
    );
    assert.deepEqual(fs.readFileSync(path.join(pki, "apiserver.crt")), before);
    const forced = k8ts(
      "certs",
      "apiserver",
      "--force",
      ...common,
      "--apiserver-cert-extra-sans=new.example.com",
    );
    assert.equal(forced.code, 0, forced.stderr);
    assert.ok(certText(path.join(pki, "apiserver.crt")).san.includes("DNS:new.example.com"));
  });

  test("k8ts certs node adds another node's certificate", () => {
    const r = k8ts(
      "certs",
      "node",
      `--cert-dir=${pki}`,
      "--node-name=worker-1",
      "--node-ip=192.0.2.21,2001:db8::21",
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      [
        `[certs] Using certificateDir folder "${pki}"`,
        '[certs] Generating "kubelet-worker-1" certificate and key',
        "[certs] kubelet-worker-1 serving cert is signed for DNS names [worker-1] and IPs [192.0.2.21 2001:db8::21]",
        "",
      ].join("\n"),
    );
    const c = certText(path.join(pki, "kubelet-worker-1.crt"));
    assert.equal(c.subject, "O = system:nodes, CN = system:node:worker-1");
    assert.deepEqual(c.san, [
      "DNS:worker-1",
      "IP Address:192.0.2.21",
      "IP Address:2001:DB8:0:0:0:0:0:21",
    ]);
    verify(path.join(pki, "ca.crt"), path.join(pki, "kubelet-worker-1.crt"), "sslclient");
  });

  test("bad flags and unknown names are refused before anything is written", () => {
    const dir = path.join(tmp.path, "bad-flags");
    const cases: [string[], RegExp][] = [
      [["bogus"], /^error: unknown certificate "bogus" for "k8ts certs"; one of: all, ca, /],
      [["--node-name=Not_Valid"], /^error: invalid node name "Not_Valid": a lowercase RFC 1123/],
      [
        ["--apiserver-advertise-address=foo"],
        /^error: invalid --apiserver-advertise-address "foo"/,
      ],
      [["--service-cidr=10.0.0.0/33"], /^error: invalid service CIDR "10.0.0.0\/33"/],
      [["--node-ip=nope"], /^error: invalid --node-ip "nope"/],
      [["--encryption-algorithm=DSA"], /^error: invalid --encryption-algorithm "DSA"/],
      [["--apiserver-cert-extra-sans=bad name"], /^error: invalid --apiserver-cert-extra-sans/],
    ];
    for (const [args, message] of cases) {
      const r = k8ts(
        "certs",
        `--cert-dir=${dir}`,
        "--apiserver-advertise-address=192.0.2.1",
        ...args,
      );
      assert.equal(r.code, 1, args.join(" "));
      assert.match(r.stderr, message);
      assert.ok(!fs.existsSync(dir), `${args.join(" ")} wrote nothing`);
    }
  });

  test("RSA keys with --encryption-algorithm=RSA-2048", async () => {
    const dir = path.join(tmp.path, "rsa");
    const r = k8ts(
      "certs",
      "ca",
      "admin",
      "sa",
      `--cert-dir=${dir}`,
      "--encryption-algorithm=RSA-2048",
    );
    assert.equal(r.code, 0, r.stderr);
    const c = certText(path.join(dir, "admin.crt"));
    assert.equal(c.publicKeyAlgorithm, "rsaEncryption");
    verify(path.join(dir, "ca.crt"), path.join(dir, "admin.crt"), "sslclient");
    const jwt = await new SignJWT({ sub: "x" })
      .setProtectedHeader({ alg: "RS256" })
      .sign(await importPKCS8(fs.readFileSync(path.join(dir, "sa.key"), "utf8"), "RS256"));
    await jwtVerify(
      jwt,
      await importSPKI(fs.readFileSync(path.join(dir, "sa.pub"), "utf8"), "RS256"),
    );
  });

  test("a CA made with openssl (the seeds' way) signs the rest", () => {
    const dir = path.join(tmp.path, "byo");
    fs.mkdirSync(dir);
    assert.equal(openssl("genrsa", "-out", path.join(dir, "ca.key"), "2048").code, 0);
    const req = openssl(
      "req",
      "-x509",
      "-new",
      "-key",
      path.join(dir, "ca.key"),
      "-subj",
      "/O=Robotnik/CN=kubernetes",
      "-days",
      "30",
      "-out",
      path.join(dir, "ca.crt"),
    );
    assert.equal(req.code, 0, req.stderr);
    const r = k8ts("certs", "ca", "apiserver", "admin", `--cert-dir=${dir}`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Using existing ca certificate authority/);
    verify(path.join(dir, "ca.crt"), path.join(dir, "apiserver.crt"), "sslserver");
    verify(path.join(dir, "ca.crt"), path.join(dir, "admin.crt"), "sslclient");
    const c = certText(path.join(dir, "admin.crt"));
    assert.equal(c.issuer, "O = Robotnik, CN = kubernetes");
    // Nothing outlives the CA that signed it.
    assert.ok(c.notAfter <= certText(path.join(dir, "ca.crt")).notAfter);
  });

  describe("bad files get an error naming the file, and lose nothing", () => {
    let n = 0;
    function freshCA(): string {
      const dir = path.join(tmp.path, `bad-${++n}`);
      const r = k8ts("certs", "ca", "etcd-ca", `--cert-dir=${dir}`);
      assert.equal(r.code, 0, r.stderr);
      return dir;
    }
    function expectError(dir: string, args: string[], message: string): void {
      const before = snapshot(dir);
      const r = k8ts(
        "certs",
        ...args,
        `--cert-dir=${dir}`,
        "--apiserver-advertise-address=192.0.2.1",
      );
      assert.equal(r.code, 1, r.stdout);
      assert.equal(r.stderr, `error: ${message}\n`);
      assert.deepEqual(snapshot(dir), before, "no file changed");
    }

    test("a CA certificate that is not PEM", () => {
      const dir = freshCA();
      fs.writeFileSync(path.join(dir, "ca.crt"), "this is not a certificate\n");
      expectError(
        dir,
        [],
        `couldn't load the certificate file ${dir}/ca.crt: data does not contain any valid RSA or ECDSA certificates`,
      );
    });

    test("a CA certificate whose PEM holds no valid DER", () => {
      const dir = freshCA();
      fs.writeFileSync(
        path.join(dir, "ca.crt"),
        "-----BEGIN CERTIFICATE-----\nMIIBAAAAAAAA\n-----END CERTIFICATE-----\n",
      );
      expectError(
        dir,
        ["apiserver"],
        `couldn't load the certificate file ${dir}/ca.crt: x509: malformed certificate (not valid DER)`,
      );
    });

    test("a truncated CA key", () => {
      const dir = freshCA();
      const keyFile = path.join(dir, "ca.key");
      fs.writeFileSync(
        keyFile,
        fs.readFileSync(keyFile, "utf8").slice(0, 60) + "\n-----END PRIVATE KEY-----\n",
      );
      const r = k8ts("certs", "admin", `--cert-dir=${dir}`);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`^error: couldn't load the private key file ${keyFile}: `));
    });

    test("a CA key that belongs to another certificate", () => {
      const dir = freshCA();
      fs.copyFileSync(path.join(dir, "etcd", "ca.key"), path.join(dir, "ca.key"));
      expectError(
        dir,
        ["admin"],
        `the private key file ${dir}/ca.key does not match the certificate ${dir}/ca.crt`,
      );
    });

    test("a CA certificate that is not a CA", () => {
      const dir = freshCA();
      assert.equal(k8ts("certs", "admin", `--cert-dir=${dir}`).code, 0);
      fs.copyFileSync(path.join(dir, "admin.crt"), path.join(dir, "ca.crt"));
      fs.copyFileSync(path.join(dir, "admin.key"), path.join(dir, "ca.key"));
      expectError(dir, ["scheduler"], `certificate ${dir}/ca.crt is not a CA (ca)`);
    });

    test("a certificate signed by another CA", () => {
      const dir = freshCA();
      assert.equal(k8ts("certs", "apiserver-etcd-client", `--cert-dir=${dir}`).code, 0);
      for (const ext of ["crt", "key"]) {
        fs.copyFileSync(
          path.join(dir, `apiserver-etcd-client.${ext}`),
          path.join(dir, `admin.${ext}`),
        );
      }
      expectError(
        dir,
        ["admin"],
        `certificate ${dir}/admin.crt is not signed by the ca certificate authority (${dir}/ca.crt); use --force to replace it`,
      );
    });

    test("a certificate without its key", () => {
      const dir = freshCA();
      assert.equal(k8ts("certs", "admin", `--cert-dir=${dir}`).code, 0);
      fs.rmSync(path.join(dir, "admin.key"));
      expectError(
        dir,
        ["admin"],
        `couldn't load the private key file ${dir}/admin.key: open ${dir}/admin.key: no such file or directory`,
      );
    });

    test("a certificate whose CA was never made", () => {
      const dir = path.join(tmp.path, "no-ca");
      const r = k8ts(
        "certs",
        "apiserver",
        `--cert-dir=${dir}`,
        "--apiserver-advertise-address=192.0.2.1",
      );
      assert.equal(r.code, 1);
      assert.equal(
        r.stderr,
        `error: couldn't load the ca certificate authority from ${dir}: ${dir}/ca.crt does not exist; run "k8ts certs ca" first\n`,
      );
      assert.ok(!fs.existsSync(path.join(dir, "apiserver.crt")));
    });

    test("a service account public key that does not match its private key", () => {
      const dir = freshCA();
      assert.equal(k8ts("certs", "sa", `--cert-dir=${dir}`).code, 0);
      const other = path.join(tmp.path, `other-sa-${n}`);
      assert.equal(k8ts("certs", "sa", `--cert-dir=${other}`).code, 0);
      fs.copyFileSync(path.join(other, "sa.pub"), path.join(dir, "sa.pub"));
      expectError(
        dir,
        ["sa"],
        `the public key file ${dir}/sa.pub does not match the private key file ${dir}/sa.key`,
      );
    });
  });
});

describe("k8ts kubeconfig", () => {
  const tmp = tempDir("k8ts-kubeconfig-");
  const pki = path.join(tmp.path, "pki");
  const server = new TestAPIServer(path.join(tmp.path, "apiserver"), [
    `--tls-cert-file=${path.join(pki, "apiserver.crt")}`,
    `--tls-private-key-file=${path.join(pki, "apiserver.key")}`,
  ]);
  const cache = path.join(tmp.path, "kubectl-cache");

  before(async () => {
    const r = k8ts(
      "certs",
      `--cert-dir=${pki}`,
      "--node-name=cp-1",
      "--apiserver-advertise-address=127.0.0.1",
    );
    assert.equal(r.code, 0, r.stderr);
    // The test server's own readiness probe trusts <dir>/certs/apiserver.crt: give it our CA.
    fs.mkdirSync(path.join(server.dir, "certs"), { recursive: true });
    fs.copyFileSync(path.join(pki, "ca.crt"), server.caFile);
    await server.start();
  });
  after(async () => {
    await server.stop();
    tmp.remove();
  });

  test("writes admin.conf and one file per component and node, as kubectl writes them", () => {
    const r = k8ts("kubeconfig", `--cert-dir=${pki}`, `--server=${server.url}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      [
        `[kubeconfig] Using kubeconfig folder "${tmp.path}"`,
        '[kubeconfig] Writing "admin.conf" kubeconfig file',
        '[kubeconfig] Writing "controller-manager.conf" kubeconfig file',
        '[kubeconfig] Writing "scheduler.conf" kubeconfig file',
        '[kubeconfig] Writing "kube-proxy.conf" kubeconfig file',
        '[kubeconfig] Writing "kubelet-cp-1.conf" kubeconfig file',
        "",
      ].join("\n"),
    );
    const users: Record<string, string> = {
      "admin.conf": "kubernetes-admin",
      "controller-manager.conf": "system:kube-controller-manager",
      "scheduler.conf": "system:kube-scheduler",
      "kube-proxy.conf": "system:kube-proxy",
      "kubelet-cp-1.conf": "system:node:cp-1",
    };
    for (const [file, user] of Object.entries(users)) {
      const f = path.join(tmp.path, file);
      assert.equal(fs.statSync(f).mode & 0o777, 0o600);
      const text = fs.readFileSync(f, "utf8");
      // kubectl reproduces the file byte for byte: it is in kubectl's own format.
      const flat = kubectl(f, cache, ["config", "view", "--flatten"]);
      assert.equal(flat.code, 0, flat.stderr);
      assert.equal(flat.stdout, text, file);
      const ctx = kubectl(f, cache, ["config", "current-context"]);
      assert.equal(ctx.stdout, `${user}@kubernetes\n`);
      const who = kubectl(f, cache, [
        "config",
        "view",
        "--minify",
        "-o",
        "jsonpath={.users[0].name} {.clusters[0].name} {.clusters[0].cluster.server}",
      ]);
      assert.equal(who.stdout, `${user} kubernetes ${server.url}`);
      const crt = fs.readFileSync(
        path.join(
          pki,
          file === "kubelet-cp-1.conf" ? "kubelet-cp-1.crt" : `${file.replace(".conf", "")}.crt`,
        ),
      );
      assert.ok(text.includes(`client-certificate-data: ${crt.toString("base64")}\n`), file);
    }
  });

  test("kubectl connects with admin.conf and verifies the server against ca.crt", () => {
    const r = kubectl(path.join(tmp.path, "admin.conf"), cache, ["get", "--raw", "/version"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(JSON.parse(r.stdout).gitVersion, /^v1\./);
    const ns = kubectl(path.join(tmp.path, "admin.conf"), cache, [
      "get",
      "namespaces",
      "-o",
      "name",
    ]);
    assert.equal(ns.code, 0, ns.stderr);
    assert.match(ns.stdout, /^namespace\/default$/m);
  });

  test("file references: kubectl reads the files, and --flatten inlines them", () => {
    const dir = path.join(tmp.path, "by-reference");
    const r = k8ts(
      "kubeconfig",
      "admin",
      "kubelet",
      `--cert-dir=${pki}`,
      `--kubeconfig-dir=${dir}`,
      `--server=${server.url}`,
      "--embed-certs=false",
      "--node-name=cp-1",
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(fs.readdirSync(dir).sort(), ["admin.conf", "kubelet.conf"]);
    const admin = path.join(dir, "admin.conf");
    const view = kubectl(admin, cache, ["config", "view", "-o", "jsonpath={.users[0].user}"]);
    assert.deepEqual(JSON.parse(view.stdout), {
      "client-certificate": path.join(pki, "admin.crt"),
      "client-key": path.join(pki, "admin.key"),
    });
    // Flattened, it is the embedded file written before.
    const flat = kubectl(admin, cache, ["config", "view", "--flatten"]);
    assert.equal(flat.stdout, fs.readFileSync(path.join(tmp.path, "admin.conf"), "utf8"));
    const version = kubectl(path.join(dir, "kubelet.conf"), cache, ["get", "--raw", "/version"]);
    assert.equal(version.code, 0, version.stderr);
    assert.equal(
      kubectl(path.join(dir, "kubelet.conf"), cache, ["config", "current-context"]).stdout,
      "system:node:cp-1@kubernetes\n",
    );
  });

  test("kubectl refuses a server certificate from another CA", () => {
    const other = path.join(tmp.path, "other-ca");
    assert.equal(k8ts("certs", "ca", "admin", `--cert-dir=${other}`).code, 0);
    const dir = path.join(tmp.path, "other-kubeconfig");
    const r = k8ts(
      "kubeconfig",
      "admin",
      `--cert-dir=${other}`,
      `--kubeconfig-dir=${dir}`,
      `--server=${server.url}`,
    );
    assert.equal(r.code, 0, r.stderr);
    const get = kubectl(path.join(dir, "admin.conf"), cache, ["get", "--raw", "/version"]);
    assert.notEqual(get.code, 0);
    assert.match(get.stderr, /x509: certificate signed by unknown authority/);
  });

  test("existing files are kept when they match, refused when not, replaced with --force", () => {
    const admin = path.join(tmp.path, "admin.conf");
    const before = fs.readFileSync(admin);
    const same = k8ts("kubeconfig", "admin", `--cert-dir=${pki}`, `--server=${server.url}`);
    assert.equal(same.code, 0, same.stderr);
    assert.match(
      same.stdout,
      new RegExp(`\\[kubeconfig\\] Using existing kubeconfig file: "${admin}"`),
    );
    assert.deepEqual(fs.readFileSync(admin), before);

    const moved = k8ts(
      "kubeconfig",
      "admin",
      `--cert-dir=${pki}`,
      "--server=https://10.9.9.9:6443",
    );
    assert.equal(moved.code, 1);
    assert.equal(
      moved.stderr,
      `error: a kubeconfig file "${admin}" exists already but has got the wrong API Server URL (${server.url}, not https://10.9.9.9:6443); use --force to replace it\n`,
    );
    assert.deepEqual(fs.readFileSync(admin), before);

    const forced = k8ts(
      "kubeconfig",
      "admin",
      `--cert-dir=${pki}`,
      "--server=https://10.9.9.9:6443",
      "--force",
    );
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(fs.readFileSync(admin, "utf8"), /server: https:\/\/10\.9\.9\.9:6443\n/);
    // Back as it was, for the other tests.
    assert.equal(
      k8ts("kubeconfig", "admin", `--cert-dir=${pki}`, `--server=${server.url}`, "--force").code,
      0,
    );
  });

  test("a kubeconfig for another CA is refused", () => {
    const dir = path.join(tmp.path, "other-kubeconfig");
    const r = k8ts(
      "kubeconfig",
      "admin",
      `--cert-dir=${pki}`,
      `--kubeconfig-dir=${dir}`,
      `--server=${server.url}`,
    );
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `error: a kubeconfig file "${dir}/admin.conf" exists already but has got the wrong CA cert; use --force to replace it\n`,
    );
  });

  test("malformed kubeconfigs and missing certificates get an error naming the file", () => {
    const dir = path.join(tmp.path, "bad-kubeconfigs");
    fs.mkdirSync(dir);
    const cases: [string, string][] = [
      ["clusters: [unclosed\n", "Flow sequence in block collection must be sufficiently indented"],
      ["", "the file is empty"],
      ["- just\n- a list\n", "not a kubeconfig: the document is not a mapping"],
      [
        "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n",
        "no current-context is set",
      ],
      [
        "apiVersion: v1\nkind: Config\ncurrent-context: ghost\ncontexts: []\n",
        'context "ghost" (the current-context) does not exist',
      ],
      ["kind: Pod\n", 'not a kubeconfig: kind is "Pod", not "Config"'],
    ];
    for (const [text, problem] of cases) {
      const file = path.join(dir, "scheduler.conf");
      fs.writeFileSync(file, text);
      const r = k8ts(
        "kubeconfig",
        "scheduler",
        `--cert-dir=${pki}`,
        `--kubeconfig-dir=${dir}`,
        `--server=${server.url}`,
      );
      assert.equal(r.code, 1, text);
      assert.ok(r.stderr.startsWith(`error: failed to load kubeconfig file ${file}: `), r.stderr);
      assert.ok(r.stderr.includes(problem), `${r.stderr} should say: ${problem}`);
      assert.equal(fs.readFileSync(file, "utf8"), text, "the file is kept");
    }

    const nocert = path.join(tmp.path, "pki-without-clients");
    assert.equal(k8ts("certs", "ca", `--cert-dir=${nocert}`).code, 0);
    const r = k8ts("kubeconfig", "kube-proxy", `--cert-dir=${nocert}`, `--server=${server.url}`);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `error: the client certificate of system:kube-proxy is missing: ${nocert}/kube-proxy.crt does not exist; run "k8ts certs kube-proxy" first\n`,
    );
    const nodes = k8ts("kubeconfig", "kubelet", `--cert-dir=${nocert}`, `--server=${server.url}`);
    assert.equal(nodes.code, 1);
    assert.match(
      nodes.stderr,
      /no node certificate \(kubelet-<node>\.crt\) in .*; run "k8ts certs node --node-name=<node>" first/,
    );

    fs.writeFileSync(path.join(nocert, "kube-proxy.crt"), "garbage");
    const bad = k8ts("kubeconfig", "kube-proxy", `--cert-dir=${nocert}`, `--server=${server.url}`);
    assert.equal(bad.code, 1);
    assert.equal(
      bad.stderr,
      `error: couldn't load the certificate file ${nocert}/kube-proxy.crt: data does not contain any valid RSA or ECDSA certificates\n`,
    );
    const url = k8ts("kubeconfig", "admin", `--cert-dir=${pki}`, "--server=ftp://x");
    assert.equal(url.code, 1);
    assert.equal(
      url.stderr,
      'error: invalid --server "ftp://x": the URL must be https://host[:port]\n',
    );
  });

  test("the versions of kubectl installed here read the files", () => {
    for (const bin of ["kubectl.1.27", "kubectl.1.33"]) {
      try {
        kubectlBinary(bin);
      } catch {
        continue;
      }
      const r = kubectl(path.join(tmp.path, "admin.conf"), cache, ["get", "--raw", "/version"], {
        bin,
      });
      assert.equal(r.code, 0, `${bin}: ${r.stderr}`);
    }
  });
});
