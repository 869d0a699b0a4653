/**
 * Admission: what the API server asks its admission plugins about a write, and what the plugins
 * may read. Mutating plugins change `attributes.object` in place (before the registry's own
 * strategy validates it); validating plugins only look, and throw a StatusError to refuse
 * (after the strategy's validation). Both run in the order of the plugin list, as upstream's
 * admission chain does; neither runs for dry-run writes' side effects (plugins that keep state,
 * like ResourceQuota, must not record anything when `dryRun` is set).
 */
import type { Attributes, Decision, UserInfo } from "../auth/types.js";
import type { KObject } from "../registry/types.js";

export type Operation = "CREATE" | "UPDATE" | "DELETE" | "CONNECT";

export interface AdmissionAttributes {
  operation: Operation;
  user: UserInfo;
  /** The resource written, as in the request's URL. */
  group: string;
  version: string;
  resource: string;
  /** "" for the main resource; "status", "binding", "eviction", "scale", ... */
  subresource: string;
  kind: { group: string; version: string; kind: string };
  namespace: string;
  name: string;
  /** The new object (CREATE, UPDATE; for CONNECT the options object); mutable by mutating plugins. */
  object: KObject | undefined;
  /** The stored object (UPDATE, DELETE). */
  oldObject: KObject | undefined;
  dryRun: boolean;
  /**
   * Warnings for the client (`Warning: 299 - "..."` headers), when the caller collects them:
   * plugins push onto it (PodSecurity's warn mode) and never rely on it being there.
   */
  warnings?: string[];
}

/** What plugins may read and do, from the API server's caches and registries. */
export interface AdmissionContext {
  /** An object as the watch cache holds it now (read only), undefined when absent. */
  get(
    group: string,
    version: string,
    resource: string,
    namespace: string,
    name: string,
  ): KObject | undefined;
  /** An object read from storage (for when the cache may not have caught up yet). */
  fetch(
    group: string,
    version: string,
    resource: string,
    namespace: string,
    name: string,
  ): Promise<KObject | undefined>;
  /** Every object of a resource in a namespace ("" for all or cluster-scoped) (read only). */
  list(group: string, version: string, resource: string, namespace: string): KObject[];
  /**
   * Changes a stored object with retries on conflict (ResourceQuota's usage); `mutate` changes
   * the fresh copy in place or throws to refuse.
   */
  update(
    group: string,
    version: string,
    resource: string,
    namespace: string,
    name: string,
    mutate: (obj: KObject) => void,
  ): Promise<KObject>;
  /**
   * The API server's authorizer, for plugins that check a permission beyond the request's own
   * (the certificate plugins' `approve` and `sign` on signers). Without it, such a check
   * fails: a plugin that needs it refuses what it would have had to authorize.
   */
  authorize?(attrs: Attributes): Decision;
}

export interface AdmissionPlugin {
  /** Upstream's plugin name, e.g. "NamespaceLifecycle". */
  readonly name: string;
  /** Mutation: runs before the registry's validation. */
  admit?(a: AdmissionAttributes, ctx: AdmissionContext): void | Promise<void>;
  /** Validation: runs after the registry's validation; throws a StatusError to refuse. */
  validate?(a: AdmissionAttributes, ctx: AdmissionContext): void | Promise<void>;
}
