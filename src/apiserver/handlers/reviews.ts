import { badRequest } from "../../api/status.js";
import { readBody, send, negotiate, type Request, type Response } from "../http.js";
import type { KObject } from "../registry/types.js";
import type { BodyDecoder } from "./resource.js";

/** Who is asking; until authentication exists every request is anonymous. */
export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
}

export const ANONYMOUS: UserInfo = {
  username: "system:anonymous",
  groups: ["system:unauthenticated"],
};

const REVIEWS: Record<string, { apiVersion: string; kind: string }> = {
  "authorization.k8s.io/selfsubjectaccessreviews": {
    apiVersion: "authorization.k8s.io/v1",
    kind: "SelfSubjectAccessReview",
  },
  "authorization.k8s.io/subjectaccessreviews": {
    apiVersion: "authorization.k8s.io/v1",
    kind: "SubjectAccessReview",
  },
  "authorization.k8s.io/localsubjectaccessreviews": {
    apiVersion: "authorization.k8s.io/v1",
    kind: "LocalSubjectAccessReview",
  },
  "authorization.k8s.io/selfsubjectrulesreviews": {
    apiVersion: "authorization.k8s.io/v1",
    kind: "SelfSubjectRulesReview",
  },
  "authentication.k8s.io/selfsubjectreviews": {
    apiVersion: "authentication.k8s.io/v1",
    kind: "SelfSubjectReview",
  },
};

export function isReview(group: string, resource: string): boolean {
  return `${group}/${resource}` in REVIEWS;
}

/**
 * The request-only review resources (POST, answered, never stored) with the authorizer in force.
 * Until authorization exists that is AlwaysAllow: every access review is allowed, and the rules
 * review lists everything. SelfSubjectReview answers with the requesting user.
 */
export async function handleReview(
  req: Request,
  res: Response,
  group: string,
  resource: string,
  namespace: string,
  decode: BodyDecoder,
  user: UserInfo,
): Promise<void> {
  const want = REVIEWS[`${group}/${resource}`]!;
  const review = decode(await readBody(req), String(req.headers["content-type"] ?? ""), want);
  if (review.kind !== undefined && review.kind !== want.kind) {
    throw badRequest(
      `the kind in the data (${review.kind}) does not match the expected kind (${want.kind})`,
    );
  }
  const answer: KObject = {
    kind: want.kind,
    apiVersion: want.apiVersion,
    metadata: { ...review.metadata, creationTimestamp: null as unknown as string },
    spec: review.spec ?? {},
  };
  if (resource === "localsubjectaccessreviews") {
    const ns = (review.spec as { resourceAttributes?: { namespace?: string } } | undefined)
      ?.resourceAttributes?.namespace;
    if (ns !== namespace) {
      throw badRequest(`spec.resourceAttributes.namespace must match namespace: ${namespace}`);
    }
  }
  switch (resource) {
    case "selfsubjectreviews":
      delete answer.spec;
      answer.status = { userInfo: user };
      break;
    case "selfsubjectrulesreviews":
      answer.status = {
        resourceRules: [{ verbs: ["*"], apiGroups: ["*"], resources: ["*"] }],
        nonResourceRules: [{ verbs: ["*"], nonResourceURLs: ["*"] }],
        incomplete: false,
      };
      break;
    default:
      answer.status = { allowed: true };
  }
  send(req, res, 201, answer, negotiate(req.headers.accept).format);
}
