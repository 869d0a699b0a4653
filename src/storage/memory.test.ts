import { runConformance } from "./conformance.js";
import { openMemoryStore } from "./memory.js";

runConformance("memory", async () => openMemoryStore());
