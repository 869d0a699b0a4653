import https from "node:https";
import { notFound } from "../../api/status.js";
import { tableOrDefault } from "../../api/tables/index.js";
import { negotiate, send, type Request, type Response } from "../http.js";
import type { Store } from "../../storage/interface.js";
import type { KObject } from "../registry/types.js";

/** The deprecated warning upstream sends with every ComponentStatus request. */
export const COMPONENT_STATUS_WARNING = '299 - "v1 ComponentStatus is deprecated in v1.19+"';

/** Where upstream looks for the scheduler and the controller manager (their secure ports). */
const PROBES: Array<{ name: string; port: number }> = [
  { name: "scheduler", port: 10259 },
  { name: "controller-manager", port: 10257 },
];

function probe(port: number): Promise<{ ok: boolean; message: string; error?: string }> {
  return new Promise((resolve) => {
    const req = https.get(
      { host: "127.0.0.1", port, path: "/healthz", rejectUnauthorized: false, timeout: 2_000 },
      (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () =>
          resolve(
            res.statusCode === 200
              ? { ok: true, message: body }
              : { ok: false, message: "", error: `unhealthy (${res.statusCode}): ${body}` },
          ),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err) =>
      resolve({
        ok: false,
        message: "",
        error: `Get "https://127.0.0.1:${port}/healthz": ${err.message}`,
      }),
    );
  });
}

function status(name: string, r: { ok: boolean; message: string; error?: string }): KObject {
  const condition: Record<string, string> = {
    type: "Healthy",
    status: r.ok ? "True" : "False",
  };
  if (r.message) condition.message = r.message;
  if (r.error) condition.error = r.error;
  return {
    kind: "ComponentStatus",
    apiVersion: "v1",
    metadata: { name, creationTimestamp: null as unknown as string },
    conditions: [condition],
  };
}

/**
 * ComponentStatus (`kubectl get componentstatuses`, deprecated as upstream): the scheduler's and
 * controller manager's /healthz on their default secure ports, and the storage.
 */
export async function handleComponentStatus(
  req: Request,
  res: Response,
  name: string,
  store: Store,
): Promise<void> {
  const etcd = async () => {
    try {
      await store.status();
      return status("etcd-0", { ok: true, message: "ok" });
    } catch (err) {
      return status("etcd-0", { ok: false, message: "", error: (err as Error).message });
    }
  };
  const all = async () => [
    ...(await Promise.all(PROBES.map(async (p) => status(p.name, await probe(p.port))))),
    await etcd(),
  ];
  const n = negotiate(req.headers.accept);
  const headers = { warning: COMPONENT_STATUS_WARNING };
  const items = await all();
  if (name) {
    const item = items.find((i) => i.metadata?.name === name);
    if (!item) throw notFound({ group: "", resource: "componentstatuses" }, name);
    return send(req, res, 200, item, n.format, headers);
  }
  if (n.as === "Table") {
    const printer = tableOrDefault("", "ComponentStatus");
    const now = new Date();
    return send(
      req,
      res,
      200,
      {
        kind: "Table",
        apiVersion: "meta.k8s.io/v1",
        metadata: {},
        columnDefinitions: printer.columns,
        rows: items.map((obj) => ({
          cells: printer.cells(obj, now),
          object: {
            kind: "PartialObjectMetadata",
            apiVersion: "meta.k8s.io/v1",
            metadata: obj.metadata,
          },
        })),
      },
      n.format,
      headers,
    );
  }
  send(
    req,
    res,
    200,
    { kind: "ComponentStatusList", apiVersion: "v1", metadata: {}, items },
    n.format,
    headers,
  );
}
