/**
 * Aggregated ClusterRoles (upstream's clusterrole-aggregation controller, as a pure function):
 * a ClusterRole with an aggregationRule holds the rules of every other ClusterRole whose labels
 * match one of its selectors, in selector order, then by role name, each distinct rule once.
 */
import type { LabelSelector } from "kubernetes-types/meta/v1.js";
import type { ClusterRole, PolicyRule } from "kubernetes-types/rbac/v1.js";
import { ruleEquals } from "./authorizer/rules.js";
import { labelSelectorMatches as matchesLabelSelector } from "../../api/selectors.js";

/** Whether labels match a LabelSelector (matchLabels and matchExpressions, all must hold). */
export function labelSelectorMatches(
  selector: LabelSelector,
  labels: Record<string, string> | undefined,
): boolean {
  return matchesLabelSelector(selector, labels);
}

/**
 * The rules `role` aggregates from `clusterRoles` (which may include `role` itself; it is
 * skipped). Undefined when the role has no aggregationRule.
 */
export function aggregatedRules(
  role: ClusterRole,
  clusterRoles: Iterable<ClusterRole>,
): PolicyRule[] | undefined {
  const selectors = role.aggregationRule?.clusterRoleSelectors;
  if (!role.aggregationRule) return undefined;
  const all = [...clusterRoles].sort((a, b) =>
    (a.metadata?.name ?? "") < (b.metadata?.name ?? "") ? -1 : 1,
  );
  const out: PolicyRule[] = [];
  for (const selector of selectors ?? []) {
    for (const other of all) {
      if (other.metadata?.name === role.metadata?.name) continue;
      if (!labelSelectorMatches(selector, other.metadata?.labels)) continue;
      for (const r of other.rules ?? []) {
        if (!out.some((o) => ruleEquals(o, r))) out.push(r);
      }
    }
  }
  return out;
}

/**
 * The aggregated ClusterRoles whose stored rules differ from what they aggregate, with their new
 * rules: the writes one pass of the aggregation loop makes. Aggregated roles feeding other
 * aggregated roles (edit into admin) settle over successive passes, as upstream's do.
 */
export function aggregationUpdates(
  clusterRoles: Iterable<ClusterRole>,
): Array<{ role: ClusterRole; rules: PolicyRule[] }> {
  const all = [...clusterRoles];
  const updates: Array<{ role: ClusterRole; rules: PolicyRule[] }> = [];
  for (const role of all) {
    const rules = aggregatedRules(role, all);
    if (!rules) continue;
    const current = role.rules ?? [];
    const same =
      current.length === rules.length && current.every((r, i) => ruleEquals(r, rules[i]!));
    if (!same) updates.push({ role, rules });
  }
  return updates;
}
