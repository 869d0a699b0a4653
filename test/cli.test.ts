/** The `k8ts` command line, run as a user runs it: `bin/k8ts` as a child process. */
import { spawn, spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { tempDir } from "../src/testing/tmp.js";
import { startEtcd, type EtcdServer } from "../src/testing/etcd.js";
import { freePort } from "./support/apiserver.js";

const k8ts = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../bin/k8ts");

function run(...args: string[]) {
  const r = spawnSync(k8ts, args, { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Starts `k8ts server` on a free loopback port, waits until it is ready, runs `whileUp`, then
 * stops it with SIGTERM; returns the exit code and what it printed.
 */
async function serverLifecycle(
  args: string[],
  whileUp: () => void | Promise<void> = () => undefined,
): Promise<{ code: number | null; stderr: string }> {
  const port = await freePort();
  const child = spawn(
    k8ts,
    ["server", `--secure-port=${port}`, "--bind-address=127.0.0.1", ...args],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stderr = "";
  const exited = new Promise<number | null>((resolve) => child.once("close", (c) => resolve(c)));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready: ${stderr}`)), 30_000);
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
        if (/k8ts server: ready;/.test(stderr)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("exit", () => {
        clearTimeout(timer);
        reject(new Error(`k8ts server exited: ${stderr}`));
      });
    });
    await whileUp();
    child.kill("SIGTERM");
    return { code: await exited, stderr };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
}

describe("k8ts command line", () => {
  const dir = tempDir("k8ts-cli-");
  let etcd: EtcdServer;
  before(async () => {
    etcd = await startEtcd();
  });
  after(async () => {
    await etcd?.stop();
    dir.remove();
  });

  test("--help lists the commands and <command> --help lists its flags", () => {
    const top = run("--help");
    assert.equal(top.code, 0);
    assert.match(top.stdout, /Available Commands:\n/);
    assert.match(top.stdout, /^\s+apiserver\s+Run the Kubernetes API server$/m);
    assert.match(top.stdout, /^\s+server\s+Run a whole control plane/m);
    const server = run("server", "--help");
    assert.equal(server.code, 0);
    assert.match(
      server.stdout,
      /--data-dir string\s+Directory for the embedded store.*\(default "\/var\/lib\/k8ts\/server"\)/,
    );
    assert.match(server.stdout, /--etcd-servers strings/);
  });

  test("bad command lines get upstream-style errors", () => {
    const unknown = run("frobnicate");
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /Error: unknown command "frobnicate" for "k8ts"/);
    const flag = run("server", "--no-such-flag");
    assert.equal(flag.code, 1);
    assert.match(flag.stderr, /^Error: unknown flag: --no-such-flag/);
    const missing = run("server", "--data-dir");
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /flag needs an argument: --data-dir/);
  });

  test("k8ts server starts a cluster kubectl can use, keeps its state, and stops on SIGTERM", async () => {
    const dataDir = path.join(dir.path, "server");
    const kubeconfig = path.join(dataDir, "admin.kubeconfig");
    const kubectl = (...args: string[]) =>
      spawnSync(
        "kubectl",
        [
          `--kubeconfig=${kubeconfig}`,
          `--cache-dir=${path.join(dir.path, "cache-" + Math.random())}`,
          ...args,
        ],
        {
          encoding: "utf8",
        },
      );
    const first = await serverLifecycle(["--data-dir", dataDir], () => {
      const ns = kubectl("get", "namespaces");
      assert.equal(ns.status, 0, ns.stderr);
      assert.match(ns.stdout, /^kube-system\s+Active\s+/m);
      assert.equal(kubectl("create", "configmap", "kept", "--from-literal=a=b").status, 0);
    });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /Serving securely on 127\.0\.0\.1:\d+/);
    const again = await serverLifecycle([`--data-dir=${dataDir}`], () => {
      assert.equal(kubectl("get", "configmap", "kept", "-o", "jsonpath={.data.a}").stdout, "b");
    });
    assert.equal(again.code, 0, again.stderr);
  });

  test("k8ts server --etcd-servers keeps its state in a real etcd", async () => {
    const dataDir = path.join(dir.path, "server-etcd");
    const kubeconfig = path.join(dataDir, "admin.kubeconfig");
    const r = await serverLifecycle(
      ["--data-dir", dataDir, "--etcd-servers", etcd.endpoints.join(",")],
      () => {
        const ns = spawnSync(
          "kubectl",
          [
            `--kubeconfig=${kubeconfig}`,
            `--cache-dir=${path.join(dir.path, "cache-etcd")}`,
            "get",
            "ns",
          ],
          {
            encoding: "utf8",
          },
        );
        assert.equal(ns.status, 0, ns.stderr);
        assert.match(ns.stdout, /^default\s+Active\s+/m);
      },
    );
    assert.equal(r.code, 0, r.stderr);
  });

  test("k8ts server names the file it cannot use", () => {
    const file = path.join(dir.path, "not-a-db");
    const notDir = spawnSync("sh", [
      "-c",
      `mkdir -p ${file}/db && echo garbage > ${file}/db/state.db`,
    ]);
    assert.equal(notDir.status, 0);
    const r = run("server", "--data-dir", file);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${file}/db/state.db is not a valid k8ts database`));
  });
});
