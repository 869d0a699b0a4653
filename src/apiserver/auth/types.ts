/**
 * The vocabulary of authentication and authorization, as upstream's apiserver defines it
 * (k8s.io/apiserver/pkg/authentication/user and pkg/authorization/authorizer): who is asking
 * (`UserInfo`), what they ask for (`Attributes`) and the answer (`Decision`).
 */
import type { IncomingHttpHeaders } from "node:http";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";

/** The identity of a request, as authenticators produce it and authorizers read it. */
export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

// Well-known users and groups (user.go upstream).
export const SYSTEM_PRIVILEGED_GROUP = "system:masters";
export const NODES_GROUP = "system:nodes";
export const MONITORING_GROUP = "system:monitoring";
export const ALL_UNAUTHENTICATED = "system:unauthenticated";
export const ALL_AUTHENTICATED = "system:authenticated";
export const ANONYMOUS_USER = "system:anonymous";
export const APISERVER_USER = "system:apiserver";
export const KUBE_PROXY_USER = "system:kube-proxy";
export const KUBE_CONTROLLER_MANAGER_USER = "system:kube-controller-manager";
export const KUBE_SCHEDULER_USER = "system:kube-scheduler";
/** The `extra` key naming the credential a request used (a certificate hash, a token's jti). */
export const CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id";

/** The anonymous identity, for requests that carry no credentials where anonymous is allowed. */
export const ANONYMOUS: UserInfo = Object.freeze({
  username: ANONYMOUS_USER,
  groups: Object.freeze([ALL_UNAUTHENTICATED]) as string[],
}) as UserInfo;

/** What an authenticator reads from a request: its headers and the connection it came on. */
export interface AuthRequest {
  headers: IncomingHttpHeaders;
  socket: TLSSocket | Socket;
  /** The request path, for anonymous access limited to some paths. */
  path?: string;
  /**
   * The audiences the credential must be meant for (TokenReview's spec.audiences); when absent,
   * the API server's own audiences (`--api-audiences`).
   */
  audiences?: string[];
  /**
   * Where authenticators put warnings for the client (upstream's warning.AddWarning on the
   * request's context); the API server sends them as `Warning` headers.
   */
  warnings?: string[];
  /** Where authenticators put annotations for the request's audit event. */
  auditAnnotations?: Record<string, string>;
}

/**
 * Thrown by an authenticator when the request carries credentials that are invalid (a forged,
 * expired or unknown token, a certificate from another CA). The API server answers 401; it
 * never falls back to anonymous for such a request.
 */
export class AuthenticationError extends Error {
  override readonly name = "AuthenticationError";
}

/**
 * Finds the user a request speaks for. `null` means the request carries no credentials this
 * authenticator understands; an `AuthenticationError` means it carries invalid ones.
 */
export interface Authenticator {
  authenticate(req: AuthRequest): UserInfo | null | Promise<UserInfo | null>;
}

/** The result of a bearer token check: the user and the audiences the token was accepted for. */
export interface TokenResult {
  user: UserInfo;
  audiences?: string[];
  /** Warnings for the client that sent the token (a legacy service account token's). */
  warnings?: string[];
  /** Annotations for the audit event of the request that sent the token. */
  auditAnnotations?: Record<string, string>;
}

/** Checks bearer tokens (token file, service account JWTs, bootstrap tokens). */
export interface TokenAuthenticator {
  /**
   * `null`: not a token of this kind (or unknown to it). Throws `AuthenticationError` for a token
   * of this kind that fails validation.
   */
  authenticateToken(
    token: string,
    audiences?: string[],
  ): TokenResult | null | Promise<TokenResult | null>;
}

/** One requirement of a field selector, as upstream's fields.Requirement. */
export interface FieldRequirement {
  field: string;
  operator: "=" | "!=";
  value: string;
}

/**
 * What a request asks to do, as upstream's authorizer.Attributes. For resource requests `path`
 * is informational; for non-resource requests (`/healthz`, `/version`, `/apis`) only `verb`
 * (the lowercase HTTP method) and `path` count.
 */
export interface Attributes {
  user: UserInfo;
  verb: string;
  resourceRequest: boolean;
  namespace: string;
  apiGroup: string;
  apiVersion: string;
  resource: string;
  subresource: string;
  name: string;
  path: string;
  /** The request's field selector (list, watch, deletecollection), when it has one. */
  fieldSelector?: FieldRequirement[];
}

/** Fills in the empty fields of partial attributes (for tests and reviews). */
export function attributes(a: Partial<Attributes> & { user: UserInfo; verb: string }): Attributes {
  return {
    resourceRequest: a.resourceRequest ?? a.path === undefined,
    namespace: "",
    apiGroup: "",
    apiVersion: "",
    resource: "",
    subresource: "",
    name: "",
    path: "",
    ...a,
  };
}

/** The fields of a parsed request the attributes are made of (see ../request-info.ts). */
export interface RequestInfoLike {
  isResourceRequest: boolean;
  path: string;
  verb: string;
  apiGroup: string;
  apiVersion: string;
  namespace: string;
  resource: string;
  subresource: string;
  name: string;
}

/**
 * The attributes of a request, as upstream's GetAuthorizerAttributes: the field selector of a
 * list, watch or deletecollection is parsed so that the Node authorizer can allow
 * `spec.nodeName=<node>` lists, and a list or watch with `metadata.name=<name>` is about that
 * name. A selector that does not parse is left out (the request fails later with the parser's
 * own error).
 */
export function requestAttributes(
  user: UserInfo,
  info: RequestInfoLike,
  query?: URLSearchParams,
): Attributes {
  const a: Attributes = {
    user,
    verb: info.verb,
    resourceRequest: info.isResourceRequest,
    namespace: info.namespace,
    apiGroup: info.apiGroup,
    apiVersion: info.apiVersion,
    resource: info.resource,
    subresource: info.subresource,
    name: info.name,
    path: info.path,
  };
  if (
    info.isResourceRequest &&
    query &&
    (info.verb === "list" || info.verb === "watch" || info.verb === "deletecollection")
  ) {
    const fs = query.get("fieldSelector");
    if (fs) {
      const reqs = parseFieldRequirements(fs);
      if (reqs) {
        a.fieldSelector = reqs;
        // A list or watch of one object by name is about that name (upstream's RequestInfo).
        const byName = reqs.find((r) => r.field === "metadata.name" && r.operator === "=");
        if (
          byName &&
          !a.name &&
          info.verb !== "deletecollection" &&
          /^[^/%]+$/.test(byName.value)
        ) {
          if (byName.value !== "." && byName.value !== "..") a.name = byName.value;
        }
      }
    }
  }
  return a;
}

/** `a=b,c==d,e!=f` as requirements; undefined when the text is not a field selector. */
export function parseFieldRequirements(text: string): FieldRequirement[] | undefined {
  const out: FieldRequirement[] = [];
  for (const part of text.split(",")) {
    const p = part.trim();
    if (p === "") continue;
    const m = /^([^=!]+)(==|=|!=)(.*)$/.exec(p);
    if (!m) return undefined;
    out.push({ field: m[1]!.trim(), operator: m[2] === "!=" ? "!=" : "=", value: m[3]!.trim() });
  }
  return out;
}

export type DecisionKind = "allow" | "deny" | "no-opinion";

/** An authorizer's answer. `reason` is what upstream appends to a Forbidden message. */
export interface Decision {
  decision: DecisionKind;
  reason: string;
  /** An evaluation error (SubjectAccessReview's status.evaluationError); never a denial by itself. */
  error?: string;
}

export const ALLOW: Decision = Object.freeze({ decision: "allow", reason: "" });
export const NO_OPINION: Decision = Object.freeze({ decision: "no-opinion", reason: "" });

export function allow(reason = ""): Decision {
  return reason ? { decision: "allow", reason } : ALLOW;
}

export function noOpinion(reason = ""): Decision {
  return reason ? { decision: "no-opinion", reason } : NO_OPINION;
}

export interface Authorizer {
  authorize(attrs: Attributes): Decision;
}

/** A rule as SelfSubjectRulesReview reports it. */
export interface ResourceRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
}

export interface NonResourceRule {
  verbs: string[];
  nonResourceURLs?: string[];
}

export interface RulesResult {
  resourceRules: ResourceRule[];
  nonResourceRules: NonResourceRule[];
  /** True when the list may not be everything the user can do (the Node authorizer's users). */
  incomplete: boolean;
  error?: string;
}

/** An authorizer that can list what a user may do in a namespace (SelfSubjectRulesReview). */
export interface RuleResolver {
  rulesFor(user: UserInfo, namespace: string): RulesResult;
}
