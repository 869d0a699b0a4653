import { badRequest, StatusError } from "../../api/status.js";
import { readBody, send, negotiate, mediaType, type Request, type Response } from "../http.js";
import { applyPatch } from "../patch.js";
import { managerFromUserAgent } from "../apply/managedfields.js";
import type { RequestInfo } from "../request-info.js";
import type { Registry } from "../registry/store.js";
import type { KObject } from "../registry/types.js";
import type { BodyDecoder } from "./resource.js";

interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

/** A label selector in its string form, as upstream prints it (requirements sorted by key). */
export function selectorString(
  selector: LabelSelector | Record<string, string> | undefined,
): string {
  if (!selector) return "";
  const s = selector as LabelSelector;
  const isStructured = "matchLabels" in s || "matchExpressions" in s;
  const labels = isStructured ? (s.matchLabels ?? {}) : (selector as Record<string, string>);
  const reqs: Array<[string, string]> = Object.entries(labels).map(([k, v]) => [k, `${k}=${v}`]);
  for (const e of isStructured ? (s.matchExpressions ?? []) : []) {
    const values = [...(e.values ?? [])].sort().join(",");
    const text =
      e.operator === "In"
        ? `${e.key} in (${values})`
        : e.operator === "NotIn"
          ? `${e.key} notin (${values})`
          : e.operator === "Exists"
            ? e.key
            : `!${e.key}`;
    reqs.push([e.key, text]);
  }
  return reqs
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([, t]) => t)
    .join(",");
}

function toScale(obj: KObject): KObject {
  const spec = (obj.spec ?? {}) as { replicas?: number; selector?: LabelSelector };
  const status = (obj.status ?? {}) as { replicas?: number };
  const meta = obj.metadata!;
  return {
    kind: "Scale",
    apiVersion: "autoscaling/v1",
    metadata: {
      name: meta.name,
      namespace: meta.namespace,
      uid: meta.uid,
      resourceVersion: meta.resourceVersion,
      creationTimestamp: meta.creationTimestamp,
    },
    spec: { replicas: spec.replicas ?? 0 },
    status: { replicas: status.replicas ?? 0, selector: selectorString(spec.selector) },
  };
}

/** GET, PUT and PATCH of `<resource>/scale`: the replicas of a workload as an autoscaling/v1 Scale. */
export async function handleScale(
  req: Request,
  res: Response,
  info: RequestInfo,
  registry: Registry,
  decode: BodyDecoder,
): Promise<void> {
  const n = negotiate(req.headers.accept);
  const ns = info.namespace;
  if (info.verb === "get")
    return send(req, res, 200, toScale(await registry.get(ns, info.name)), n.format);
  if (info.verb !== "update" && info.verb !== "patch") {
    throw new StatusError(
      405,
      "MethodNotAllowed",
      "the server does not allow this method on the requested resource",
    );
  }
  const body = await readBody(req);
  for (let attempt = 0; ; attempt++) {
    const obj = await registry.get(ns, info.name);
    const current = toScale(obj);
    const scale =
      info.verb === "patch"
        ? applyPatch(registry, current, body, mediaType(String(req.headers["content-type"] ?? "")))
        : decode(body, String(req.headers["content-type"] ?? ""));
    if (scale.kind !== undefined && scale.kind !== "Scale")
      throw badRequest(
        `the kind in the data (${scale.kind}) does not match the expected kind (Scale)`,
      );
    const replicas = (scale.spec as { replicas?: unknown } | undefined)?.replicas;
    if (typeof replicas !== "number" || !Number.isInteger(replicas) || replicas < 0) {
      throw new StatusError(
        422,
        "Invalid",
        `Scale.autoscaling "${info.name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas ?? null)}: must be greater than or equal to 0`,
      );
    }
    const wanted = scale.metadata?.resourceVersion;
    if (wanted && wanted !== obj.metadata!.resourceVersion) {
      // PUT with a stale Scale is the client's conflict; a PATCH was applied to what we read.
      if (info.verb === "update") obj.metadata!.resourceVersion = wanted;
    }
    (obj.spec as { replicas?: number }).replicas = replicas;
    try {
      const query = new URL(req.url ?? "/", "https://apiserver").searchParams;
      const manager =
        query.get("fieldManager") ??
        managerFromUserAgent(req.headers["user-agent"] as string | undefined);
      const r = await registry.update(ns, info.name, obj, { manager, managedSubresource: "scale" });
      return send(req, res, 200, toScale(r.object), n.format);
    } catch (err) {
      const retry =
        err instanceof StatusError &&
        err.reason === "Conflict" &&
        info.verb === "patch" &&
        attempt < 5;
      if (!retry) throw err;
    }
  }
}
