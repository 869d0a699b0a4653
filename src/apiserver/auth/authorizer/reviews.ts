/**
 * The answers of the access review resources (`kubectl auth can-i`, `can-i --list`), as
 * upstream's registry/authorization computes them: SubjectAccessReview (and its Local and Self
 * forms) runs the authorizer on the attributes of the spec; SelfSubjectRulesReview lists the
 * rules the rule resolvers know for the user in a namespace.
 */
import type {
  NonResourceAttributes,
  ResourceAttributes,
} from "kubernetes-types/authorization/v1.js";
import { invalidValue, type FieldError } from "../../../api/status.js";
import {
  parseFieldRequirements,
  type Attributes,
  type Authorizer,
  type FieldRequirement,
  type RuleResolver,
  type UserInfo,
} from "../types.js";

/** The resource attributes of a review, with the selectors newer clients send. */
export interface ReviewResourceAttributes extends ResourceAttributes {
  fieldSelector?: {
    rawSelector?: string;
    requirements?: Array<{ key: string; operator: string; values?: string[] }>;
  };
}

/** The spec of any access review (the Self forms leave the user fields empty). */
export interface AccessReviewSpec {
  resourceAttributes?: ReviewResourceAttributes;
  nonResourceAttributes?: NonResourceAttributes;
  user?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

export interface AccessReviewStatus {
  allowed: boolean;
  denied?: boolean;
  reason?: string;
  evaluationError?: string;
}

/** Upstream's spec validation; `self` for SelfSubjectAccessReview (no user fields needed). */
export function validateAccessReviewSpec(spec: AccessReviewSpec, self = false): FieldError[] {
  const errors: FieldError[] = [];
  if (spec.resourceAttributes && spec.nonResourceAttributes) {
    errors.push(
      invalidValue(
        "spec.nonResourceAttributes",
        spec.nonResourceAttributes,
        "cannot be specified in combination with resourceAttributes",
      ),
    );
  }
  if (!spec.resourceAttributes && !spec.nonResourceAttributes) {
    errors.push(
      invalidValue(
        "spec.resourceAttributes",
        null,
        "exactly one of nonResourceAttributes or resourceAttributes must be specified",
      ),
    );
  }
  if (!self && !spec.user && (spec.groups ?? []).length === 0) {
    errors.push(
      invalidValue("spec.user", spec.user ?? "", "at least one of user or group must be specified"),
    );
  }
  return errors;
}

function selectorRequirements(ra: ReviewResourceAttributes): FieldRequirement[] | undefined {
  const fs = ra.fieldSelector;
  if (!fs) return undefined;
  if (fs.rawSelector) return parseFieldRequirements(fs.rawSelector);
  const out: FieldRequirement[] = [];
  for (const r of fs.requirements ?? []) {
    if ((r.operator === "In" || r.operator === "NotIn") && r.values?.length === 1) {
      out.push({ field: r.key, operator: r.operator === "In" ? "=" : "!=", value: r.values[0]! });
    }
  }
  return out;
}

/** The attributes a review asks about, for `user` (the spec's user, or the requester's). */
export function reviewAttributes(spec: AccessReviewSpec, user: UserInfo): Attributes {
  const ra = spec.resourceAttributes;
  if (ra) {
    const a: Attributes = {
      user,
      verb: ra.verb ?? "",
      resourceRequest: true,
      namespace: ra.namespace ?? "",
      apiGroup: ra.group ?? "",
      apiVersion: ra.version ?? "",
      resource: ra.resource ?? "",
      subresource: ra.subresource ?? "",
      name: ra.name ?? "",
      path: "",
    };
    const fs = selectorRequirements(ra);
    if (fs) a.fieldSelector = fs;
    return a;
  }
  const nra = spec.nonResourceAttributes ?? {};
  return {
    user,
    verb: nra.verb ?? "",
    resourceRequest: false,
    namespace: "",
    apiGroup: "",
    apiVersion: "",
    resource: "",
    subresource: "",
    name: "",
    path: nra.path ?? "",
  };
}

/** The user a SubjectAccessReview names. */
export function reviewUser(spec: AccessReviewSpec): UserInfo {
  const u: UserInfo = { username: spec.user ?? "", groups: spec.groups ?? [] };
  if (spec.uid) u.uid = spec.uid;
  if (spec.extra) u.extra = spec.extra;
  return u;
}

/** The status of an access review: the authorizer's decision, reason and evaluation error. */
export function accessReviewStatus(authorizer: Authorizer, attrs: Attributes): AccessReviewStatus {
  const d = authorizer.authorize(attrs);
  const status: AccessReviewStatus = { allowed: d.decision === "allow" };
  if (d.decision === "deny") status.denied = true;
  if (d.reason) status.reason = d.reason;
  if (d.error) status.evaluationError = d.error;
  return status;
}

export interface RulesReviewStatus {
  resourceRules: Array<{
    verbs: string[];
    apiGroups?: string[];
    resources?: string[];
    resourceNames?: string[];
  }>;
  nonResourceRules: Array<{ verbs: string[]; nonResourceURLs?: string[] }>;
  incomplete: boolean;
  evaluationError?: string;
}

/** SelfSubjectRulesReview's status for the user in the namespace (which must not be empty). */
export function rulesReviewStatus(
  resolver: RuleResolver,
  user: UserInfo,
  namespace: string,
): RulesReviewStatus {
  const r = resolver.rulesFor(user, namespace);
  const status: RulesReviewStatus = {
    resourceRules: r.resourceRules,
    nonResourceRules: r.nonResourceRules,
    incomplete: r.incomplete,
  };
  if (r.error) status.evaluationError = r.error;
  return status;
}
