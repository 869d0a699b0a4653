import path from "node:path";
import { after } from "node:test";
import { runConformance } from "./conformance.js";
import { openSqliteStore } from "./sqlite.js";
import { tempDir } from "../testing/tmp.js";

const dir = tempDir("k8ts-sqlite-");
after(() => dir.remove());
let n = 0;

runConformance("sqlite", async () =>
  openSqliteStore({ file: path.join(dir.path, `t${n++}`, "state.db") }),
);
