import type { Client } from "./resources.js";
import { realClock, sleep } from "./clock.js";

/**
 * Waits until the API server answers /healthz, as upstream's components do before they start:
 * any answer of a live server will do (401 and 403 too). `onError` hears the first failure to
 * reach it. Returns when the server answers or `signal` aborts.
 */
export async function waitForAPIServer(
  client: Client,
  onError: (message: string) => void,
  signal: AbortSignal,
): Promise<void> {
  let reported = false;
  while (!signal.aborted) {
    try {
      const r = await client.rest.raw("GET", "/healthz", { signal });
      if (r.status === 200 || r.status === 401 || r.status === 403) return;
    } catch (err) {
      if (!reported) onError(err instanceof Error ? err.message : String(err));
      reported = true;
    }
    await sleep(realClock, 1000, signal);
  }
}
