import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { tempDir } from "../testing/tmp.js";
import { formatKubeconfig, kubeconfigYaml } from "./kubeconfig.js";

const tmp = tempDir("k8ts-kubeconfig-unit-");
after(() => tmp.remove());

function kubectlConfig(file: string, ...args: string[]): string {
  const r = spawnSync("kubectl", ["config", ...args, `--kubeconfig=${file}`], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test("kubectl reads a token kubeconfig and writes it back unchanged", () => {
  const file = path.join(tmp.path, "token.conf");
  const text = kubeconfigYaml({
    server: "https://127.0.0.1:6443",
    caFile: "/some dir/ca.crt",
    user: "admin",
    token: "123456",
  });
  fs.writeFileSync(file, text);
  assert.equal(kubectlConfig(file, "view", "--raw"), text);
  assert.equal(
    kubectlConfig(
      file,
      "view",
      "--raw",
      "-o",
      "jsonpath={.users[0].user.token} {.clusters[0].cluster.certificate-authority}",
    ),
    "123456 /some dir/ca.crt",
  );
});

test("values YAML would read as something else are quoted as kubectl quotes them", () => {
  const file = path.join(tmp.path, "quoted.conf");
  const text = formatKubeconfig({
    clusters: [{ name: "true", cluster: { server: "https://[::1]:6443" } }],
    // kubectl keeps entries in a map and writes them sorted by name.
    users: [
      { name: "", user: { token: "~" } },
      { name: "190:20:30", user: { token: "#x" } },
      { name: "2024-01-01", user: { token: "yes" } },
      { name: "@me", user: { token: "0755" } },
      { name: "it's", user: { token: "1e3" } },
    ],
    contexts: [{ name: "a: b", context: { cluster: "true", user: "@me", namespace: "null" } }],
    "current-context": "a: b",
  });
  fs.writeFileSync(file, text);
  assert.equal(kubectlConfig(file, "view", "--raw"), text);
  assert.equal(kubectlConfig(file, "current-context"), "a: b\n");
});
