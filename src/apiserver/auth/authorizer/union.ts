/**
 * Authorizers combined in `--authorization-mode` order (upstream's union authorizer), and the
 * simple ones: AlwaysAllow, AlwaysDeny and the privileged-group authorizer that always lets
 * `system:masters` through.
 */
import {
  ALLOW,
  NO_OPINION,
  type Attributes,
  type Authorizer,
  type Decision,
  type NonResourceRule,
  type ResourceRule,
  type RuleResolver,
  type RulesResult,
  type UserInfo,
} from "../types.js";
import { aggregateMessage } from "../util.js";

/**
 * Asks each authorizer in turn: the first allow or deny is the answer; when all have no opinion,
 * the answer is no opinion with their reasons joined by newlines (what Forbidden appends).
 */
export class UnionAuthorizer implements Authorizer, RuleResolver {
  constructor(
    private readonly authorizers: readonly Authorizer[],
    private readonly resolvers: readonly RuleResolver[] = [],
  ) {}

  authorize(attrs: Attributes): Decision {
    let reasons: string[] | undefined;
    let errors: string[] | undefined;
    for (const a of this.authorizers) {
      const d = a.authorize(attrs);
      if (d.decision !== "no-opinion") return d;
      if (d.reason) (reasons ??= []).push(d.reason);
      if (d.error) (errors ??= []).push(d.error);
    }
    if (!reasons && !errors) return NO_OPINION;
    const d: Decision = { decision: "no-opinion", reason: reasons ? reasons.join("\n") : "" };
    if (errors) d.error = aggregateMessage(errors);
    return d;
  }

  /** Every resolver's rules together; incomplete if any is. */
  rulesFor(user: UserInfo, namespace: string): RulesResult {
    const resourceRules: ResourceRule[] = [];
    const nonResourceRules: NonResourceRule[] = [];
    const errors: string[] = [];
    let incomplete = false;
    for (const r of this.resolvers) {
      const res = r.rulesFor(user, namespace);
      resourceRules.push(...res.resourceRules);
      nonResourceRules.push(...res.nonResourceRules);
      if (res.incomplete) incomplete = true;
      if (res.error) errors.push(res.error);
    }
    const out: RulesResult = { resourceRules, nonResourceRules, incomplete };
    if (errors.length > 0) out.error = aggregateMessage(errors);
    return out;
  }
}

/** `--authorization-mode=AlwaysAllow`. */
export const alwaysAllow: Authorizer & RuleResolver = {
  authorize: () => ALLOW,
  rulesFor: () => ({
    resourceRules: [{ verbs: ["*"], apiGroups: ["*"], resources: ["*"] }],
    nonResourceRules: [{ verbs: ["*"], nonResourceURLs: ["*"] }],
    incomplete: false,
  }),
};

const EVERYTHING_FORBIDDEN: Decision = Object.freeze({
  decision: "no-opinion",
  reason: "Everything is forbidden.",
});

/** `--authorization-mode=AlwaysDeny`: no opinion, with upstream's reason. */
export const alwaysDeny: Authorizer & RuleResolver = {
  authorize: () => EVERYTHING_FORBIDDEN,
  rulesFor: () => ({ resourceRules: [], nonResourceRules: [], incomplete: false }),
};

/** Allows every request of a user in one of the groups (upstream puts system:masters first). */
export class PrivilegedGroupAuthorizer implements Authorizer {
  constructor(private readonly groups: readonly string[]) {}

  authorize(attrs: Attributes): Decision {
    for (const g of attrs.user.groups) if (this.groups.includes(g)) return ALLOW;
    return NO_OPINION;
  }
}
