import { defineCommand } from "../cli/command.js";
import { openStore, sqliteFile } from "../storage/index.js";

const flags = {
  "data-dir": {
    type: "string",
    help: "Directory for the embedded store and generated files",
    default: "/var/lib/k8ts/server",
  },
} as const;

/**
 * The all-in-one control plane. It composes the components that exist so far; today that is the
 * embedded store, which it opens (creating it when absent) and keeps open until stopped.
 */
export const serverCommand = defineCommand({
  name: "server",
  summary: "Run a whole control plane in one process on the embedded store (like k3s server)",
  flags,
  async run(f, _args, signal) {
    const dataDir = f["data-dir"];
    const store = await openStore({ backend: "sqlite", dataDir });
    const { revision } = await store.status();
    process.stderr.write(
      `k8ts server: embedded store ready at ${sqliteFile(dataDir)} (revision ${revision})\n` +
        `k8ts server: no API server yet; stop with Ctrl-C\n`,
    );
    await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()));
    await store.close();
    process.stderr.write("k8ts server: stopped\n");
    return 0;
  },
});
