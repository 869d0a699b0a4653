/**
 * RBAC escalation prevention, as upstream's rbac registry (the policybased storages in pkg/registry/rbac and
 * validation.ConfirmNoEscalation): a user may write a Role or ClusterRole only with rules they
 * already hold (or with the `escalate` verb on it), and a binding only to a role whose rules they
 * hold (or with the `bind` verb on it). `system:masters` may do anything.
 */
import type {
  AggregationRule,
  ClusterRole,
  PolicyRule,
  Role,
  RoleBinding,
  RoleRef,
} from "kubernetes-types/rbac/v1.js";
import type { ClusterRoleBinding } from "kubernetes-types/rbac/v1.js";
import { StatusError, type StatusDetails } from "../../api/status.js";
import { compactRules, compactString, covers } from "./authorizer/rules.js";
import type { RBACRuleResolver } from "./authorizer/rbac.js";
import { SYSTEM_PRIVILEGED_GROUP, type Authorizer, type UserInfo } from "./types.js";
import { goQuote, goQuoteList } from "./util.js";

const RBAC_GROUP = "rbac.authorization.k8s.io";

/** What the checks need from the server: who asks, the authorizer in force, the RBAC rules. */
export interface EscalationContext {
  user: UserInfo;
  authorizer: Authorizer;
  resolver: RBACRuleResolver;
}

const FULL_AUTHORITY: PolicyRule[] = [
  { verbs: ["*"], apiGroups: ["*"], resources: ["*"] },
  { verbs: ["*"], nonResourceURLs: ["*"] },
];

function forbidden(resource: string, name: string, why: string): StatusError {
  const details: StatusDetails = {};
  if (name) details.name = name;
  details.group = RBAC_GROUP;
  details.kind = resource;
  const subject = name ? `${resource}.${RBAC_GROUP} ${goQuote(name)}` : `${resource}.${RBAC_GROUP}`;
  return new StatusError(403, "Forbidden", `${subject} is forbidden: ${why}`, details);
}

function isPrivileged(user: UserInfo): boolean {
  return user.groups.includes(SYSTEM_PRIVILEGED_GROUP);
}

/**
 * Upstream's ConfirmNoEscalation: null when the user's rules in `namespace` cover `rules`,
 * otherwise the message naming what is missing.
 */
export function confirmNoEscalation(
  ctx: EscalationContext,
  namespace: string,
  rules: readonly PolicyRule[],
): string | null {
  const { rules: owner, errors } = ctx.resolver.rulesFor(ctx.user, namespace);
  const { covered, missing } = covers(owner, rules);
  if (covered) return null;
  const descriptions = [...new Set(compactRules(missing).map(compactString))].sort();
  let msg = `user ${goQuote(ctx.user.username)} (groups=${goQuoteList(ctx.user.groups)}) is attempting to grant RBAC permissions not currently held:\n${descriptions.join("\n")}`;
  if (errors.length > 0) msg += `; resolution errors: [${errors.join(" ")}]`;
  return msg;
}

function hasAggregationRule(rule: AggregationRule | undefined): boolean {
  return (rule?.clusterRoleSelectors?.length ?? 0) > 0;
}

type Meta = { metadata?: Record<string, unknown> } & Record<string, unknown>;

/**
 * Whether an update changes only what the garbage collector changes (owner references and
 * finalizers), which upstream lets through without escalation checks.
 */
export function isOnlyMutatingGCFields(obj: object, old: object): boolean {
  const strip = (o: object) => {
    const c = structuredClone(o) as Meta;
    const m = { ...(c.metadata ?? {}) };
    for (const k of [
      "ownerReferences",
      "finalizers",
      "managedFields",
      "resourceVersion",
      "generation",
    ]) {
      delete m[k];
    }
    c.metadata = m;
    return c;
  };
  return stableJSON(strip(obj)) === stableJSON(strip(old));
}

function stableJSON(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) => {
    if (val && typeof val === "object" && !Array.isArray(val)) {
      return Object.fromEntries(Object.entries(val as object).sort(([a], [b]) => (a < b ? -1 : 1)));
    }
    return val;
  });
}

/**
 * The check before creating (`old` absent) or updating a Role or ClusterRole: null to go on, or
 * the 403 upstream answers, e.g.
 * `roles.rbac.authorization.k8s.io "r" is forbidden: user "bob" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}`.
 */
export function checkRoleWrite(
  ctx: EscalationContext,
  role: Role | ClusterRole,
  old?: Role | ClusterRole,
): StatusError | null {
  if (isPrivileged(ctx.user)) return null;
  const isCluster =
    role.kind === "ClusterRole" || (role.kind === undefined && !role.metadata?.namespace);
  const resource = isCluster ? "clusterroles" : "roles";
  const name = role.metadata?.name ?? "";
  const namespace = isCluster ? "" : (role.metadata?.namespace ?? "");
  const escalate = ctx.authorizer.authorize({
    user: ctx.user,
    verb: "escalate",
    resourceRequest: true,
    apiGroup: RBAC_GROUP,
    apiVersion: "*",
    resource,
    subresource: "",
    name,
    namespace,
    path: "",
  });
  if (escalate.decision === "allow") return null;
  if (old && isOnlyMutatingGCFields(role, old)) return null;
  const why = confirmNoEscalation(ctx, namespace, role.rules ?? []);
  if (why) return forbidden(resource, name, why);
  if (isCluster) {
    const agg = (role as ClusterRole).aggregationRule;
    const oldAgg = (old as ClusterRole | undefined)?.aggregationRule;
    if (hasAggregationRule(agg) || hasAggregationRule(oldAgg)) {
      if (confirmNoEscalation(ctx, "", FULL_AUTHORITY)) {
        return forbidden(
          resource,
          name,
          "must have cluster-admin privileges to use the aggregationRule",
        );
      }
    }
  }
  return null;
}

/** Whether the user may bind the role through the `bind` verb (upstream's BindingAuthorized). */
function bindingAuthorized(ctx: EscalationContext, roleRef: RoleRef, namespace: string): boolean {
  let resource: string;
  if (roleRef.kind === "ClusterRole") resource = "clusterroles";
  else if (roleRef.kind === "Role") resource = "roles";
  else return false;
  const d = ctx.authorizer.authorize({
    user: ctx.user,
    verb: "bind",
    resourceRequest: true,
    apiGroup: roleRef.apiGroup,
    apiVersion: "",
    resource,
    subresource: "",
    name: roleRef.name,
    namespace,
    path: "",
  });
  return d.decision === "allow";
}

/**
 * The check before creating or updating a RoleBinding or ClusterRoleBinding: null to go on, or
 * the 403 upstream answers (the referenced role missing, or rules the user does not hold).
 */
export function checkBindingWrite(
  ctx: EscalationContext,
  binding: RoleBinding | ClusterRoleBinding,
  old?: RoleBinding | ClusterRoleBinding,
): StatusError | null {
  if (isPrivileged(ctx.user)) return null;
  const isCluster =
    binding.kind === "ClusterRoleBinding" ||
    (binding.kind === undefined && !binding.metadata?.namespace);
  const resource = isCluster ? "clusterrolebindings" : "rolebindings";
  const name = binding.metadata?.name ?? "";
  const namespace = isCluster ? "" : (binding.metadata?.namespace ?? "");
  if (old && isOnlyMutatingGCFields(binding, old)) return null;
  if (bindingAuthorized(ctx, binding.roleRef, namespace)) return null;
  const rules = ctx.resolver.getRoleReferenceRules(binding.roleRef, namespace);
  if (typeof rules === "string") return forbidden(resource, name, rules);
  const why = confirmNoEscalation(ctx, namespace, rules);
  return why ? forbidden(resource, name, why) : null;
}
