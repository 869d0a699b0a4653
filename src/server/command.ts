import fs from "node:fs";
import path from "node:path";
import { defineCommand } from "../cli/command.js";
import { flag } from "../cli/flags.js";
import { apiserverFlags, runAPIServer } from "../apiserver/command.js";
import { kubeconfigYaml } from "../client/kubeconfig.js";

const DEFAULT_DATA_DIR = "/var/lib/k8ts/server";

/** The API server's flags, with the all-in-one's own defaults for where things live. */
const flags = {
  ...apiserverFlags,
  "data-dir": flag.string(
    "Directory for the embedded store, certificates and the admin kubeconfig",
    DEFAULT_DATA_DIR,
  ),
  "cert-dir": flag.string(
    "Directory of the generated serving certificate (default <data-dir>/tls)",
  ),
  "write-kubeconfig": flag.string(
    "Write the admin kubeconfig to this file (default <data-dir>/admin.kubeconfig)",
  ),
};

/**
 * The all-in-one control plane (k3s server): the same components a user can start one by one,
 * composed in one process. Today that is the API server on the embedded store (or etcd with
 * --etcd-servers); it writes an admin kubeconfig for kubectl.
 */
export const serverCommand = defineCommand({
  name: "server",
  summary: "Run a whole control plane in one process on the embedded store (like k3s server)",
  flags,
  async run(f, _args, signal) {
    const dataDir = f["data-dir"];
    const kubeconfig = f["write-kubeconfig"] ?? path.join(dataDir, "admin.kubeconfig");
    return runAPIServer({ ...f, "cert-dir": f["cert-dir"] ?? path.join(dataDir, "tls") }, signal, {
      onReady({ url, caFile }) {
        fs.mkdirSync(path.dirname(kubeconfig), { recursive: true });
        // Authentication is not enforced yet; the token only keeps kubectl from prompting.
        const yaml = kubeconfigYaml({
          server: url,
          caFile: path.resolve(caFile),
          user: "admin",
          token: "admin",
        });
        fs.writeFileSync(kubeconfig, yaml, { mode: 0o600 });
        process.stderr.write(
          `k8ts server: ready; kubectl --kubeconfig ${kubeconfig} get namespaces\n`,
        );
      },
    });
  },
});
