/**
 * What a request asks for, read from its method and path as upstream's RequestInfoFactory does:
 * `/api/v1/namespaces/default/pods/web/log` is verb "get" on resource "pods", name "web",
 * subresource "log" in namespace "default".
 */
export interface RequestInfo {
  /** False for /version, /healthz, discovery roots and other non-resource paths. */
  isResourceRequest: boolean;
  path: string;
  /** get list watch create update patch delete deletecollection, or the lowercase HTTP method. */
  verb: string;
  /** "api" or "apis" for resource and discovery requests. */
  apiPrefix: string;
  apiGroup: string;
  apiVersion: string;
  namespace: string;
  resource: string;
  subresource: string;
  name: string;
  parts: string[];
}

const methodVerbs: Record<string, string> = {
  POST: "create",
  GET: "get",
  HEAD: "get",
  PUT: "update",
  PATCH: "patch",
  DELETE: "delete",
};

const NAMESPACE_SUBRESOURCES = new Set(["status", "finalize"]);

export function parseRequestInfo(
  method: string,
  path: string,
  query: URLSearchParams,
): RequestInfo {
  const info: RequestInfo = {
    isResourceRequest: false,
    path,
    verb: method.toLowerCase(),
    apiPrefix: "",
    apiGroup: "",
    apiVersion: "",
    namespace: "",
    resource: "",
    subresource: "",
    name: "",
    parts: [],
  };
  let parts = path
    .replace(/^\/+|\/+$/g, "")
    .split("/")
    .filter((p) => p !== "");
  if (parts.length < 2) return info; // /api, /apis, /version, ...
  const prefix = parts[0]!;
  if (prefix !== "api" && prefix !== "apis") return info;
  info.apiPrefix = prefix;
  parts = parts.slice(1);
  if (prefix === "apis") {
    info.apiGroup = parts[0]!;
    parts = parts.slice(1);
    if (parts.length === 0) return info; // /apis/apps
  }
  info.apiVersion = parts[0]!;
  parts = parts.slice(1);
  if (parts.length === 0) return info; // /api/v1, /apis/apps/v1
  info.isResourceRequest = true;

  // Deprecated `/watch/` paths: /api/v1/watch/pods
  let verbFromPath = "";
  if (parts[0] === "watch") {
    verbFromPath = "watch";
    parts = parts.slice(1);
  }
  info.verb = methodVerbs[method] ?? method.toLowerCase();

  if (parts[0] === "namespaces" && parts.length > 1) {
    info.namespace = parts[1]!;
    // /namespaces/NAME[/status|/finalize] is the namespace itself; anything else below it is a
    // namespaced resource.
    if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2]!)) parts = parts.slice(2);
  }
  info.parts = parts;
  info.resource = parts[0] ?? "";
  if (parts.length >= 2) info.name = parts[1]!;
  if (parts.length >= 3) info.subresource = parts[2]!;

  if (verbFromPath) {
    info.verb = verbFromPath;
  } else if (info.verb === "get" && !info.name) {
    info.verb = isTrue(query.get("watch")) ? "watch" : "list";
  } else if (info.verb === "delete" && !info.name) {
    info.verb = "deletecollection";
  }
  return info;
}

function isTrue(v: string | null): boolean {
  return v === "true" || v === "1";
}
