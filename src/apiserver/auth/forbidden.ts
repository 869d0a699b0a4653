/**
 * The 401 and 403 answers exactly as upstream's apiserver writes them (responsewriters'
 * Forbidden and apimachinery's NewForbidden / NewUnauthorized).
 */
import { StatusError, type StatusDetails } from "../../api/status.js";
import type { Attributes } from "./types.js";
import { goQuote } from "./util.js";

/** Upstream keeps these out of messages so an error never reads as HTML. */
function sanitize(s: string): string {
  return s.replace(/[&<>]/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : "&gt;"));
}

/**
 * What the user was refused, without the resource prefix:
 * `User "mikeadmin" cannot list resource "pods" in API group "" in the namespace "prod"`.
 */
export function forbiddenReason(attrs: Attributes): string {
  const user = goQuote(attrs.user.username);
  if (!attrs.resourceRequest) {
    return `User ${user} cannot ${attrs.verb} path ${goQuote(attrs.path)}`;
  }
  const resource = attrs.subresource ? `${attrs.resource}/${attrs.subresource}` : attrs.resource;
  const what = `User ${user} cannot ${attrs.verb} resource ${goQuote(resource)} in API group ${goQuote(attrs.apiGroup)}`;
  return attrs.namespace
    ? `${what} in the namespace ${goQuote(attrs.namespace)}`
    : `${what} at the cluster scope`;
}

/**
 * The whole Status message of a refused request, the authorizer's reason appended after a colon
 * when there is one:
 * `pods is forbidden: User "mikeadmin" cannot list resource "pods" in API group "" in the namespace "prod"`.
 */
export function forbiddenMessage(attrs: Attributes, reason = ""): string {
  let why = sanitize(forbiddenReason(attrs));
  if (reason) why += `: ${reason}`;
  const gr = attrs.apiGroup ? `${attrs.resource}.${attrs.apiGroup}` : attrs.resource;
  if (!attrs.resource && !attrs.apiGroup) return `forbidden: ${why}`;
  return attrs.name
    ? `${gr} ${goQuote(attrs.name)} is forbidden: ${why}`
    : `${gr} is forbidden: ${why}`;
}

/** The 403 Status for a refused request (details as upstream: name, group, kind = resource). */
export function forbiddenError(attrs: Attributes, reason = ""): StatusError {
  const details: StatusDetails = {};
  if (attrs.name) details.name = attrs.name;
  if (attrs.apiGroup) details.group = attrs.apiGroup;
  if (attrs.resource) details.kind = attrs.resource;
  return new StatusError(403, "Forbidden", forbiddenMessage(attrs, reason), details);
}

/** The 401 Status for a request whose credentials are missing or invalid. */
export function unauthorizedError(): StatusError {
  return new StatusError(401, "Unauthorized", "Unauthorized");
}
