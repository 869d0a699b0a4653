import path from "node:path";
import type { Store } from "./interface.js";
import { openMemoryStore } from "./memory.js";
import { openSqliteStore } from "./sqlite.js";

export * from "./interface.js";
export * from "./errors.js";

/** Where a component keeps its state, as its flags describe it. */
export type StoreConfig =
  | { backend: "memory"; retainRevisions?: number }
  | { backend: "sqlite"; dataDir: string; retainRevisions?: number }
  | {
      backend: "etcd";
      endpoints: string[];
      caFile?: string;
      certFile?: string;
      keyFile?: string;
      compactionIntervalMs?: number;
    };

/** The SQLite file inside a data directory. */
export function sqliteFile(dataDir: string): string {
  return path.join(dataDir, "db", "state.db");
}

export async function openStore(config: StoreConfig): Promise<Store> {
  switch (config.backend) {
    case "memory":
      return openMemoryStore(config);
    case "sqlite":
      return openSqliteStore({ file: sqliteFile(config.dataDir), ...config });
    case "etcd": {
      const { EtcdStore } = await import("./etcd/etcd.js");
      return EtcdStore.open(config);
    }
  }
}
