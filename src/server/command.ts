import { defineCommand } from "../cli/command.js";
import { flag } from "../cli/flags.js";
import { openStore, sqliteFile, type StoreConfig } from "../storage/index.js";

const flags = {
  "data-dir": flag.string(
    "Directory for the embedded store and generated files",
    "/var/lib/k8ts/server",
  ),
  "etcd-servers": flag.strings(
    "List of etcd servers to connect with (scheme://ip:port), comma separated; the embedded store in --data-dir is used when empty",
  ),
  "etcd-cafile": flag.string("SSL Certificate Authority file used to secure etcd communication"),
  "etcd-certfile": flag.string("SSL certification file used to secure etcd communication"),
  "etcd-keyfile": flag.string("SSL key file used to secure etcd communication"),
};

/**
 * The all-in-one control plane. It composes the components that exist so far; today that is the
 * store (embedded, or a real etcd with `--etcd-servers`), which it opens and keeps open until
 * stopped.
 */
export const serverCommand = defineCommand({
  name: "server",
  summary: "Run a whole control plane in one process on the embedded store (like k3s server)",
  flags,
  async run(f, _args, signal) {
    const config: StoreConfig =
      f["etcd-servers"].length > 0
        ? {
            backend: "etcd",
            endpoints: f["etcd-servers"],
            caFile: f["etcd-cafile"],
            certFile: f["etcd-certfile"],
            keyFile: f["etcd-keyfile"],
          }
        : { backend: "sqlite", dataDir: f["data-dir"] };
    const where =
      config.backend === "etcd"
        ? `etcd at ${config.endpoints.join(",")}`
        : `embedded store at ${sqliteFile(config.dataDir)}`;
    let store;
    try {
      store = await openStore(config);
      const { revision } = await store.status();
      process.stderr.write(`k8ts server: ${where} ready (revision ${revision})\n`);
    } catch (err) {
      await store?.close();
      process.stderr.write(`k8ts server: ${(err as Error).message}\n`);
      return 1;
    }
    process.stderr.write("k8ts server: no API server yet; stop with Ctrl-C\n");
    // Nothing else holds the event loop open yet (the store's timers do not): wait on a timer.
    const keepAlive = setInterval(() => undefined, 1 << 30);
    await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()));
    clearInterval(keepAlive);
    await store.close();
    process.stderr.write("k8ts server: stopped\n");
    return 0;
  },
});
