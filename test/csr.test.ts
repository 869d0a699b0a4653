/**
 * The CertificateSigningRequest flow end to end: openssl makes a request, kubectl creates and
 * approves it, `k8ts controller-manager`'s signer issues the certificate from the cluster CA, and
 * the certificate authenticates with real kubectl.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { tempDir } from "../src/testing/tmp.js";
import { k8tsBin, kubectl, TestAPIServer } from "./support/apiserver.js";

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

describe("CSR signing by the controller manager", () => {
  const dir = tempDir("k8ts-csr-");
  const pki = path.join(dir.path, "pki");
  let server: TestAPIServer;
  let manager: ChildProcess | undefined;
  let managerLog = "";
  const admin = () => path.join(dir.path, "admin.conf");
  const k = (kc: string, args: string[], input?: string) =>
    kubectl(kc, path.join(dir.path, "cache"), args, input === undefined ? {} : { input });
  const ok = (kc: string, args: string[], input?: string) => {
    const r = k(kc, args, input);
    assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  const csrYaml = (name: string, request: string, signer: string, usages: string[]) =>
    `apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata: {name: ${name}}
spec:
  request: ${request}
  signerName: ${signer}
  usages: [${usages.join(", ")}]
`;
  const request = (name: string, subject: string) => {
    const key = path.join(dir.path, `${name}.key`);
    const csr = path.join(dir.path, `${name}.csr`);
    run("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key]);
    run("openssl", ["req", "-new", "-key", key, "-out", csr, "-subj", subject]);
    return { key, request: fs.readFileSync(csr).toString("base64") };
  };
  const waitFor = async <T>(what: string, get: () => T | undefined): Promise<T> => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const v = get();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${managerLog}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  before(async () => {
    run(k8tsBin, [
      "certs",
      "ca",
      "apiserver",
      "admin",
      `--cert-dir=${pki}`,
      "--apiserver-advertise-address=127.0.0.1",
    ]);
    server = new TestAPIServer(
      dir.path,
      [
        `--tls-cert-file=${path.join(pki, "apiserver.crt")}`,
        `--tls-private-key-file=${path.join(pki, "apiserver.key")}`,
        `--client-ca-file=${path.join(pki, "ca.crt")}`,
        "--authorization-mode=Node,RBAC",
      ],
      path.join(pki, "ca.crt"),
    );
    await server.start();
    run(k8tsBin, [
      "kubeconfig",
      "admin",
      `--cert-dir=${pki}`,
      `--kubeconfig-dir=${dir.path}`,
      `--server=${server.url}`,
    ]);
    manager = spawn(
      k8tsBin,
      [
        "controller-manager",
        `--kubeconfig=${admin()}`,
        "--controllers=csrsigning",
        "--leader-elect=false",
        `--cluster-signing-cert-file=${path.join(pki, "ca.crt")}`,
        `--cluster-signing-key-file=${path.join(pki, "ca.key")}`,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    manager.stdout!.on("data", (d: Buffer) => (managerLog += d.toString()));
    manager.stderr!.on("data", (d: Buffer) => (managerLog += d.toString()));
  });

  after(async () => {
    if (manager && manager.exitCode === null) {
      const exited = new Promise((r) => manager!.once("exit", r));
      manager.kill("SIGTERM");
      await exited;
    }
    await server?.stop();
    dir.remove();
  });

  test("an approved client CSR gets a certificate from the cluster CA that kubectl can use", async () => {
    const jane = request("jane", "/CN=jane/O=dev");
    ok(
      admin(),
      ["create", "-f", "-"],
      csrYaml("jane", jane.request, "kubernetes.io/kube-apiserver-client", ["client auth"]),
    );
    // Not approved yet: nothing is signed.
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(ok(admin(), ["get", "csr", "jane", "-o", "jsonpath={.status.certificate}"]), "");
    ok(admin(), ["certificate", "approve", "jane"]);
    const certificate = await waitFor("the certificate", () => {
      const c = ok(admin(), ["get", "csr", "jane", "-o", "jsonpath={.status.certificate}"]);
      return c ? c : undefined;
    });
    const crt = path.join(dir.path, "jane.crt");
    fs.writeFileSync(crt, Buffer.from(certificate, "base64"));
    assert.match(run("openssl", ["verify", "-CAfile", path.join(pki, "ca.crt"), crt]), /OK/);
    const text = run("openssl", [
      "x509",
      "-in",
      crt,
      "-noout",
      "-subject",
      "-ext",
      "extendedKeyUsage",
    ]);
    assert.match(text, /CN\s*=\s*jane, O\s*=\s*dev/);
    assert.match(text, /TLS Web Client Authentication/);
    assert.match(ok(admin(), ["get", "csr", "jane"]), /Approved,Issued/);
    // The certificate authenticates as jane.
    const kc = path.join(dir.path, "jane.conf");
    fs.copyFileSync(admin(), kc);
    ok(kc, [
      "config",
      "set-credentials",
      "jane",
      `--client-certificate=${crt}`,
      `--client-key=${jane.key}`,
    ]);
    ok(kc, ["config", "set-context", "--current", "--user=jane"]);
    assert.match(ok(kc, ["auth", "whoami"]), /Username\s+jane/);
  });

  test("a request a signer's rules refuse fails with SignerValidationFailure", async () => {
    const bad = request("not-a-node", "/CN=someone/O=dev");
    ok(
      admin(),
      ["create", "-f", "-"],
      csrYaml("not-a-node", bad.request, "kubernetes.io/kubelet-serving", ["server auth"]),
    );
    ok(admin(), ["certificate", "approve", "not-a-node"]);
    const reason = await waitFor("the Failed condition", () => {
      const r = ok(admin(), [
        "get",
        "csr",
        "not-a-node",
        "-o",
        'jsonpath={.status.conditions[?(@.type=="Failed")].reason}',
      ]);
      return r ? r : undefined;
    });
    assert.equal(reason, "SignerValidationFailure");
    assert.equal(
      ok(admin(), ["get", "csr", "not-a-node", "-o", "jsonpath={.status.certificate}"]),
      "",
    );
  });
});
