import { badRequest, notFound, StatusError } from "../../api/status.js";
import type { Registry } from "../registry/store.js";
import type { KObject } from "../registry/types.js";
import type { Request, Response } from "../http.js";

/** Subresources that stream to or through a kubelet: pods log/exec/attach/portforward/proxy,
 * nodes/proxy and services/proxy. */
export const CONNECT_SUBRESOURCES = new Set(["log", "exec", "attach", "portforward", "proxy"]);

interface PodLike {
  metadata?: { name?: string };
  spec?: {
    nodeName?: string;
    containers?: Array<{ name: string }>;
    initContainers?: Array<{ name: string }>;
    ephemeralContainers?: Array<{ name: string }>;
  };
}

/** Upstream's choice of container for log/exec/attach, with its messages. */
export function validateContainer(container: string, pod: PodLike): string {
  const name = pod.metadata?.name ?? "";
  const names = (list?: Array<{ name: string }>) => (list ?? []).map((c) => c.name);
  const containers = names(pod.spec?.containers);
  const inits = names(pod.spec?.initContainers);
  const ephemeral = names(pod.spec?.ephemeralContainers);
  if (!container) {
    if (containers.length === 1) return containers[0]!;
    if (containers.length === 0)
      throw badRequest(`a container name must be specified for pod ${name}`);
    let message = `a container name must be specified for pod ${name}, choose one of: [${containers.join(" ")}]`;
    if (inits.length > 0) message += ` or one of the init containers: [${inits.join(" ")}]`;
    if (ephemeral.length > 0)
      message += ` or one of the ephemeral containers: [${ephemeral.join(" ")}]`;
    throw badRequest(message);
  }
  if (![...containers, ...inits, ...ephemeral].includes(container)) {
    throw badRequest(`container ${container} is not valid for pod ${name}`);
  }
  return container;
}

function noKubelet(node: string): StatusError {
  return new StatusError(
    503,
    "ServiceUnavailable",
    `error dialing backend: connecting to the kubelet of node "${node}" is not supported by this API server yet`,
  );
}

/**
 * The subresources served by a kubelet. Everything upstream checks before it dials the kubelet is
 * checked here with upstream's answers (the pod, the container, the pod's node); the kubelet itself
 * is not reached, which is a 503 naming the node.
 */
export async function handleConnect(
  req: Request,
  res: Response,
  registry: Registry,
  nodes: Registry | undefined,
  namespace: string,
  name: string,
  subresource: string,
  query: URLSearchParams,
): Promise<void> {
  const resource = registry.def.resource;
  const obj: KObject = await registry.get(namespace, name);
  if (resource === "services") {
    throw new StatusError(
      503,
      "ServiceUnavailable",
      `error trying to reach service: proxying to services is not supported by this API server yet`,
    );
  }
  if (resource === "nodes") throw noKubelet(name);
  const pod = obj as PodLike;
  if (subresource === "log" || subresource === "exec" || subresource === "attach") {
    validateContainer(query.get("container") ?? "", pod);
  }
  const node = pod.spec?.nodeName ?? "";
  if (!node) {
    if (subresource === "log") {
      // Upstream streams nothing for a pod that is not on a node yet.
      (res as import("node:http").ServerResponse).writeHead(200, {
        "content-type": "text/plain",
        "cache-control": "no-cache, private",
      });
      res.end();
      void req;
      return;
    }
    throw badRequest(`pod ${name} does not have a host assigned`);
  }
  if (nodes) {
    try {
      await nodes.get("", node);
    } catch (err) {
      if (err instanceof StatusError && err.code === 404) throw notFound(nodes.gr, node);
      throw err;
    }
  }
  throw noKubelet(node);
}
