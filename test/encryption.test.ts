/**
 * Encryption at rest with `--encryption-provider-config`, on SQLite and on a real etcd: Secrets
 * are not in plaintext in the database, read back through the API, and survive a key rotation.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { tempDir } from "../src/testing/tmp.js";
import { startEtcd, type EtcdServer } from "../src/testing/etcd.js";
import { k8tsBin, kubectl, TestAPIServer } from "./support/apiserver.js";
import { loadEncryptionConfig } from "../src/apiserver/encryption.js";

const SECRET_VALUE = "sup3r-s3cret-plaintext-value";
const KEY1 = Buffer.alloc(32, 1).toString("base64");
const KEY2 = Buffer.alloc(32, 2).toString("base64");

function config(providers: string): string {
  return `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets]
  providers:
${providers}`;
}
const aescbc1 = `  - aescbc:\n      keys:\n      - name: key1\n        secret: ${KEY1}\n`;
const aesgcm2 = `  - aesgcm:\n      keys:\n      - name: key2\n        secret: ${KEY2}\n`;
const identity = `  - identity: {}\n`;

/** Every file of a directory tree, concatenated (the SQLite database and its WAL). */
function filesOf(dir: string): Buffer {
  const out: Buffer[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(fs.readFileSync(path.join(entry.parentPath, entry.name)));
  }
  return Buffer.concat(out);
}

describe("encryption at rest on SQLite, with a key rotation", () => {
  const dir = tempDir("k8ts-encryption-");
  const configFile = path.join(dir.path, "encryption.yaml");
  let server: TestAPIServer;
  let kubeconfig: string;
  const k = (args: string[], input?: string) =>
    kubectl(kubeconfig, path.join(dir.path, "cache"), args, input === undefined ? {} : { input });

  before(async () => {
    fs.writeFileSync(configFile, config(aescbc1 + identity));
    server = new TestAPIServer(dir.path, [`--encryption-provider-config=${configFile}`]);
    await server.start();
    kubeconfig = server.writeKubeconfig(path.join(dir.path, "kubeconfig"));
  });

  after(async () => {
    await server?.stop();
    dir.remove();
  });

  test("a Secret is stored encrypted and reads back", () => {
    assert.equal(
      k(["create", "secret", "generic", "s1", `--from-literal=password=${SECRET_VALUE}`]).code,
      0,
    );
    assert.equal(
      k(["create", "configmap", "c1", "--from-literal=note=visible-config-value"]).code,
      0,
    );
    const got = k(["get", "secret", "s1", "-o", "jsonpath={.data.password}"]).stdout;
    assert.equal(Buffer.from(got, "base64").toString(), SECRET_VALUE);
    const disk = filesOf(path.join(dir.path, "data"));
    assert.equal(disk.includes(SECRET_VALUE), false);
    assert.equal(disk.includes(Buffer.from(SECRET_VALUE).toString("base64")), false);
    assert.ok(disk.includes("k8s:enc:aescbc:v1:key1:"), "the value carries upstream's prefix");
    // Only the configured resources are encrypted.
    assert.ok(disk.includes("visible-config-value"));
  });

  test("rotation: a new first key reads the old data, rewriting moves it to the new key", async () => {
    await server.stop();
    fs.writeFileSync(configFile, config(aesgcm2 + aescbc1));
    await server.start();
    const read = () => k(["get", "secret", "s1", "-o", "jsonpath={.data.password}"]).stdout;
    assert.equal(Buffer.from(read(), "base64").toString(), SECRET_VALUE);
    const json = k(["get", "secret", "s1", "-o", "json"]).stdout;
    assert.equal(k(["replace", "-f", "-"], json).code, 0);
    // Now the old key can go.
    await server.stop();
    fs.writeFileSync(configFile, config(aesgcm2));
    await server.start();
    assert.equal(Buffer.from(read(), "base64").toString(), SECRET_VALUE);
    assert.ok(filesOf(path.join(dir.path, "data")).includes("k8s:enc:aesgcm:v1:key2:"));
  });
});

describe("encryption at rest on etcd", () => {
  const dir = tempDir("k8ts-encryption-etcd-");
  let etcd: EtcdServer;
  let server: TestAPIServer;

  before(async () => {
    etcd = await startEtcd();
    const configFile = path.join(dir.path, "encryption.yaml");
    fs.writeFileSync(
      configFile,
      config(`  - secretbox:\n      keys:\n      - name: box\n        secret: ${KEY1}\n`),
    );
    server = new TestAPIServer(dir.path, [
      `--etcd-servers=${etcd.endpoints.join(",")}`,
      `--encryption-provider-config=${configFile}`,
    ]);
    await server.start();
  });

  after(async () => {
    await server?.stop();
    await etcd?.stop();
    dir.remove();
  });

  test("the value in etcd is secretbox ciphertext; the API reads it back", async () => {
    const kubeconfig = server.writeKubeconfig(path.join(dir.path, "kubeconfig"));
    const k = (args: string[]) => kubectl(kubeconfig, path.join(dir.path, "cache"), args);
    assert.equal(
      k(["create", "secret", "generic", "s1", `--from-literal=password=${SECRET_VALUE}`]).code,
      0,
    );
    const { EtcdStore } = await import("../src/storage/etcd/etcd.js");
    const store = await EtcdStore.open({ endpoints: etcd.endpoints });
    try {
      const raw = Buffer.from((await store.get("/registry/secrets/default/s1")).kv!.value);
      assert.ok(raw.subarray(0, 26).toString().startsWith("k8s:enc:secretbox:v1:box:"));
      assert.equal(raw.includes(Buffer.from(SECRET_VALUE).toString("base64")), false);
      assert.equal(raw.includes(SECRET_VALUE), false);
    } finally {
      await store.close();
    }
    const got = k(["get", "secret", "s1", "-o", "jsonpath={.data.password}"]).stdout;
    assert.equal(Buffer.from(got, "base64").toString(), SECRET_VALUE);
  });
});

test("transformers: aesgcm binds the value to its key; no matching provider is an error", () => {
  const dir = tempDir("k8ts-encryption-unit-");
  try {
    const file = path.join(dir.path, "e.yaml");
    fs.writeFileSync(file, config(aesgcm2));
    const t = loadEncryptionConfig(file)("", "secrets")!;
    const stored = t.toStorage(Buffer.from("hello"), "/registry/secrets/a/b");
    assert.equal(Buffer.from(t.fromStorage(stored, "/registry/secrets/a/b")).toString(), "hello");
    assert.throws(() => t.fromStorage(stored, "/registry/secrets/a/other"));
    assert.throws(
      () => t.fromStorage(Buffer.from("{}"), "/registry/secrets/a/b"),
      /no matching prefix/,
    );
    assert.equal(loadEncryptionConfig(file)("", "configmaps"), undefined);
  } finally {
    dir.remove();
  }
});

test("a bad encryption config stops the API server with the file and the problem named", () => {
  const dir = tempDir("k8ts-encryption-bad-");
  try {
    const file = path.join(dir.path, "bad.yaml");
    fs.writeFileSync(
      file,
      config(
        `  - aescbc:\n      keys:\n      - name: k\n        secret: ${Buffer.alloc(10).toString("base64")}\n`,
      ),
    );
    const r = spawnSync(
      k8tsBin,
      [
        "apiserver",
        `--data-dir=${path.join(dir.path, "data")}`,
        `--cert-dir=${path.join(dir.path, "certs")}`,
        "--bind-address=127.0.0.1",
        "--secure-port=0",
        `--encryption-provider-config=${file}`,
      ],
      { encoding: "utf8", timeout: 30_000 },
    );
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      new RegExp(
        `error while parsing file "${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}": resources\\[0\\]\\.providers\\[0\\]\\.aescbc\\.keys\\[0\\]\\.secret: Invalid value: "REDACTED": secret is not of the expected length, got 10, expected one of \\[16 24 32\\]`,
      ),
    );
    assert.equal(fs.existsSync(path.join(dir.path, "data")), false, "nothing was created");
  } finally {
    dir.remove();
  }
});
