import { badRequest, invalid, required } from "../../api/status.js";
import { send, negotiate, type Request, type Response } from "../http.js";
import type { KObject } from "../registry/types.js";
import { readRequestObject, type BodyDecoder } from "./resource.js";
import type { UserInfo } from "../auth/types.js";
import type { Security } from "../security.js";
import {
  accessReviewStatus,
  reviewAttributes,
  reviewUser,
  rulesReviewStatus,
  validateAccessReviewSpec,
  type AccessReviewSpec,
} from "../auth/authorizer/reviews.js";
import { tokenReviewStatus } from "../auth/authenticator/union.js";

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
  "authentication.k8s.io/tokenreviews": {
    apiVersion: "authentication.k8s.io/v1",
    kind: "TokenReview",
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
 * The request-only review resources (POST, answered, never stored): access reviews answered by
 * the authorizer in force, the rules review by its rule resolver, TokenReview by the token
 * authenticators, SelfSubjectReview with the requesting user.
 */
export async function handleReview(
  req: Request,
  res: Response,
  group: string,
  resource: string,
  namespace: string,
  decode: BodyDecoder,
  user: UserInfo,
  security: Security,
): Promise<void> {
  const want = REVIEWS[`${group}/${resource}`]!;
  const review = await readRequestObject(req, decode, want);
  const spec = (review.spec ?? {}) as AccessReviewSpec & {
    namespace?: string;
    token?: string;
    audiences?: string[];
  };
  const answer: KObject = {
    kind: want.kind,
    apiVersion: want.apiVersion,
    metadata: { ...review.metadata, creationTimestamp: null as unknown as string },
    spec,
  };
  const kind = { group, kind: want.kind };
  const name = review.metadata?.name ?? "";
  const authorizer = security.built.authorizer;
  switch (resource) {
    case "selfsubjectreviews": {
      delete answer.spec;
      const userInfo: Record<string, unknown> = { username: user.username, groups: user.groups };
      if (user.uid) userInfo.uid = user.uid;
      if (user.extra && Object.keys(user.extra).length > 0) userInfo.extra = user.extra;
      answer.status = { userInfo };
      break;
    }
    case "selfsubjectrulesreviews":
      if (!spec.namespace) {
        throw invalid(kind, name, [required("spec.namespace")]);
      }
      answer.status = rulesReviewStatus(authorizer, user, spec.namespace);
      break;
    case "tokenreviews": {
      if (!spec.token) throw badRequest("token is required for TokenReview in authentication");
      answer.status = await tokenReviewStatus(
        security.tokens,
        spec.token,
        spec.audiences,
        security.apiAudiences,
      );
      break;
    }
    default: {
      const self = resource === "selfsubjectaccessreviews";
      const errors = validateAccessReviewSpec(spec, self);
      if (errors.length > 0) throw invalid(kind, name, errors);
      if (resource === "localsubjectaccessreviews") {
        const ns = spec.resourceAttributes?.namespace;
        if (ns !== namespace) {
          throw badRequest(`spec.resourceAttributes.namespace must match namespace: ${namespace}`);
        }
      }
      answer.status = accessReviewStatus(
        authorizer,
        reviewAttributes(spec, self ? user : reviewUser(spec)),
      );
    }
  }
  send(req, res, 201, answer, negotiate(req.headers.accept).format);
}
