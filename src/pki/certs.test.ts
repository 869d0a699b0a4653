import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { tempDir } from "../testing/tmp.js";
import {
  apiserverAltNames,
  ensurePKI,
  firstServiceIP,
  phaseNames,
  validateNodeName,
  type PKIConfig,
} from "./certs.js";
import { parseCertificates, parsePrivateKey, PKIError } from "./pem.js";
import { ensureSelfSignedServingCert } from "./selfsigned.js";

const config = (certDir: string): PKIConfig => ({
  certDir,
  advertiseAddress: "192.0.2.10",
  serviceCIDRs: ["10.0.0.0/24"],
  dnsDomain: "cluster.local",
  nodeName: "node-a",
  nodeIPs: ["192.0.2.10"],
  apiserverExtraSANs: [],
  algorithm: "ECDSA-P256",
});

describe("service CIDRs", () => {
  test("the first address of the range is the kubernetes Service's IP", () => {
    assert.equal(firstServiceIP("10.96.0.0/12"), "10.96.0.1");
    assert.equal(firstServiceIP("10.0.0.0/24"), "10.0.0.1");
    // A base address with host bits set still gives the range's first address.
    assert.equal(firstServiceIP("10.96.5.7/12"), "10.96.0.1");
    assert.equal(firstServiceIP("fd00:10:96::/112"), "fd00:10:96::1");
    // RFC 5952 text: "::" stands for two or more zero groups, never one.
    assert.equal(firstServiceIP("2001:db8:1:2:3:4::/108"), "2001:db8:1:2:3:4:0:1");
    assert.equal(firstServiceIP("2001:db8::/64"), "2001:db8::1");
  });

  test("anything else is an error that quotes it", () => {
    for (const bad of ["10.0.0.0", "10.0.0.0/33", "nonsense/8", "10.0.0.0/32", "::/128", ""]) {
      assert.throws(() => firstServiceIP(bad), PKIError, bad);
    }
  });
});

test("node names are DNS subdomains, so they cannot escape the cert dir", () => {
  assert.equal(validateNodeName("worker-1.example.com"), undefined);
  for (const bad of ["../etc", "Worker", "a_b", "-a", "", "x".repeat(254)]) {
    assert.match(validateNodeName(bad) ?? "", /^invalid node name/, bad);
  }
});

test("the API server's names: upstream's service names, the node, then the extras", () => {
  const names = apiserverAltNames({
    ...config("/x"),
    serviceCIDRs: ["10.96.0.0/12", "fd00::/108"],
    controlPlaneEndpoint: "[2001:db8::5]:6443",
    apiserverExtraSANs: ["lb.example.com", "192.0.2.10"],
  });
  assert.deepEqual(names.dnsNames, [
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "localhost",
    "node-a",
    "lb.example.com",
  ]);
  assert.deepEqual(names.ips, ["10.96.0.1", "fd00::1", "192.0.2.10", "127.0.0.1", "2001:db8::5"]);
});

describe("ensurePKI", () => {
  const tmp = tempDir("k8ts-pki-unit-");
  after(() => tmp.remove());

  test("writes the whole set and reports what it wrote, then what it kept", async () => {
    const dir = path.join(tmp.path, "all");
    const lines: string[] = [];
    const first = await ensurePKI(config(dir), phaseNames, { log: (l) => lines.push(l) });
    assert.deepEqual(first.written, [...phaseNames]);
    assert.deepEqual(first.kept, []);
    assert.equal(lines.filter((l) => l.startsWith("[certs] Generating")).length, phaseNames.length);
    const second = await ensurePKI(config(dir), phaseNames);
    assert.deepEqual(second.written, []);
    assert.deepEqual(second.kept, [...phaseNames]);
  });

  test("an unknown name is an error", async () => {
    await assert.rejects(ensurePKI(config(tmp.path), ["nope"]), /unknown certificate "nope"/);
  });
});

describe("PEM parsing names the file and the problem", () => {
  test("certificates", () => {
    assert.throws(
      () => parseCertificates("", "/p/ca.crt"),
      /^PKIError: couldn't load the certificate file \/p\/ca\.crt: data does not contain any valid RSA or ECDSA certificates$/,
    );
    assert.throws(
      () =>
        parseCertificates(
          "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
          "/p/ca.crt",
        ),
      /couldn't load the certificate file \/p\/ca\.crt: x509: malformed certificate/,
    );
  });

  test("private keys", () => {
    assert.throws(
      () =>
        parsePrivateKey("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "/p/k"),
      /couldn't load the private key file \/p\/k: data does not contain a valid RSA or ECDSA private key/,
    );
    assert.throws(
      () =>
        parsePrivateKey(
          "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
          "/p/k",
        ),
      /couldn't load the private key file \/p\/k: the key is encrypted/,
    );
    const ed = spawnSync("openssl", ["genpkey", "-algorithm", "ed25519"], { encoding: "utf8" });
    assert.throws(
      () => parsePrivateKey(ed.stdout, "/p/ed.key"),
      /couldn't load the private key file \/p\/ed\.key: the private key is neither in RSA nor ECDSA format \(ed25519\)/,
    );
    // openssl's traditional forms (PKCS#1 RSA, SEC 1 EC) are read as well as PKCS#8.
    const rsa = spawnSync("openssl", ["genrsa", "-traditional", "1024"], { encoding: "utf8" });
    assert.match(rsa.stdout, /BEGIN RSA PRIVATE KEY/);
    assert.equal(parsePrivateKey(rsa.stdout, "rsa.key").asymmetricKeyType, "rsa");
    const ec = spawnSync("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout"], {
      encoding: "utf8",
    });
    assert.match(ec.stdout, /BEGIN EC PRIVATE KEY/);
    assert.equal(parsePrivateKey(ec.stdout, "ec.key").asymmetricKeyType, "ec");
  });
});

describe("the API server's self-signed serving certificate", () => {
  const tmp = tempDir("k8ts-selfsigned-");
  after(() => tmp.remove());

  test("is a certificate for the host and its names, followed by its CA; kept once made", async () => {
    const made = await ensureSelfSignedServingCert(tmp.path, "192.0.2.7", [
      "kubernetes",
      "localhost",
      "127.0.0.1",
    ]);
    assert.equal(made.created, true);
    const certs = parseCertificates(fs.readFileSync(made.certFile, "utf8"), made.certFile);
    assert.equal(certs.length, 2);
    const [leaf, ca] = certs as [(typeof certs)[0], (typeof certs)[0]];
    assert.match(ca.subject, /^CN=192\.0\.2\.7-ca@\d+$/);
    assert.match(leaf.subject, /^CN=192\.0\.2\.7@\d+$/);
    assert.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
    assert.equal(
      leaf.subjectAltName,
      "DNS:kubernetes, DNS:localhost, IP Address:192.0.2.7, IP Address:127.0.0.1",
    );
    const caFile = path.join(tmp.path, "ca-only.crt");
    fs.writeFileSync(caFile, ca.toString());
    const v = spawnSync(
      "openssl",
      ["verify", "-purpose", "sslserver", "-CAfile", caFile, made.certFile],
      {
        encoding: "utf8",
      },
    );
    assert.equal(v.status, 0, v.stdout + v.stderr);
    const again = await ensureSelfSignedServingCert(tmp.path, "192.0.2.7", []);
    assert.equal(again.created, false);
  });
});
