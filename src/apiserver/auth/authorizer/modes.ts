/**
 * `--authorization-mode`: upstream's mode names, its validation errors, and the authorizer the
 * modes make, in their order, behind the authorizer that always allows `system:masters` (as
 * kube-apiserver builds it).
 */
import { SYSTEM_PRIVILEGED_GROUP, type Authorizer, type RuleResolver } from "../types.js";
import { aggregateMessage, goQuote, goQuoteList } from "../util.js";
import { nodeRules } from "../bootstrap-policy.js";
import type { NodeGraphSource } from "./node-graph.js";
import { NodeAuthorizer } from "./node.js";
import { RBACAuthorizer, type RBACSource } from "./rbac.js";
import { PrivilegedGroupAuthorizer, UnionAuthorizer, alwaysAllow, alwaysDeny } from "./union.js";

export const AUTHORIZATION_MODES = ["AlwaysAllow", "AlwaysDeny", "ABAC", "Webhook", "RBAC", "Node"];
/** The modes k8ts implements (ABAC and Webhook are valid upstream names it refuses). */
export const SUPPORTED_AUTHORIZATION_MODES = ["AlwaysAllow", "AlwaysDeny", "RBAC", "Node"];
/** kube-apiserver's default. */
export const DEFAULT_AUTHORIZATION_MODES = ["AlwaysAllow"];

/**
 * Upstream's checks of the mode list, one message each: unknown modes, missing ABAC policy or
 * webhook config files, repeated modes.
 */
export function validateAuthorizationModes(
  modes: readonly string[],
  files: { policyFile?: string; webhookConfigFile?: string } = {},
): string[] {
  const errors: string[] = [];
  if (modes.length === 0) errors.push("at least one authorization-mode must be passed");
  for (const mode of modes) {
    if (!AUTHORIZATION_MODES.includes(mode)) {
      errors.push(`authorization-mode ${goQuote(mode)} is not a valid mode`);
    }
    if (mode === "ABAC" && !files.policyFile) {
      errors.push("authorization-mode ABAC's authorization policy file not passed");
    }
    if (mode === "Webhook" && !files.webhookConfigFile) {
      errors.push("authorization-mode Webhook's authorization config file not passed");
    }
  }
  if (new Set(modes).size !== modes.length) {
    errors.push(`authorization-mode ${goQuoteList(modes)} has mode specified more than once`);
  }
  return errors;
}

/** The validation errors as one message (upstream's aggregate), or undefined when valid. */
export function authorizationModeError(modes: readonly string[]): string | undefined {
  const errors = validateAuthorizationModes(modes);
  return errors.length > 0 ? aggregateMessage(errors) : undefined;
}

export interface AuthorizerConfig {
  modes: readonly string[];
  /** Needed for RBAC. */
  rbac?: RBACSource;
  /** Needed for Node. */
  nodeGraph?: NodeGraphSource;
  /** Upstream's AuthorizeNodeWithSelectors (default on, as in 1.32). */
  authorizeNodeWithSelectors?: boolean;
}

export interface BuiltAuthorizer {
  /** The union in mode order, `system:masters` first; also the SelfSubjectRulesReview resolver. */
  authorizer: Authorizer & RuleResolver;
  /** The RBAC authorizer when RBAC is a mode (its resolver serves the escalation checks). */
  rbac?: RBACAuthorizer;
  node?: NodeAuthorizer;
}

/** Builds the authorizer for validated modes; throws for modes k8ts does not implement. */
export function newAuthorizer(config: AuthorizerConfig): BuiltAuthorizer {
  const authorizers: Authorizer[] = [new PrivilegedGroupAuthorizer([SYSTEM_PRIVILEGED_GROUP])];
  const resolvers: RuleResolver[] = [];
  const built: Partial<BuiltAuthorizer> = {};
  for (const mode of config.modes) {
    switch (mode) {
      case "AlwaysAllow":
        authorizers.push(alwaysAllow);
        resolvers.push(alwaysAllow);
        break;
      case "AlwaysDeny":
        authorizers.push(alwaysDeny);
        resolvers.push(alwaysDeny);
        break;
      case "RBAC": {
        if (!config.rbac) throw new Error("authorization mode RBAC needs an RBAC source");
        const rbac = new RBACAuthorizer(config.rbac);
        built.rbac = rbac;
        authorizers.push(rbac);
        resolvers.push(rbac);
        break;
      }
      case "Node": {
        if (!config.nodeGraph) throw new Error("authorization mode Node needs a node graph");
        const options =
          config.authorizeNodeWithSelectors === undefined
            ? {}
            : { authorizeNodeWithSelectors: config.authorizeNodeWithSelectors };
        const node = new NodeAuthorizer(config.nodeGraph, nodeRules(), options);
        built.node = node;
        authorizers.push(node);
        resolvers.push(node);
        break;
      }
      default:
        throw new Error(`authorization mode ${goQuote(mode)} is not supported by k8ts`);
    }
  }
  return { ...built, authorizer: new UnionAuthorizer(authorizers, resolvers) };
}
