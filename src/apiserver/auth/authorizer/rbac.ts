/**
 * The RBAC authorizer, with upstream's semantics (plugin/pkg/auth/authorizer/rbac and
 * pkg/registry/rbac/validation/rule.go) and a cheap decision path: bindings are indexed by
 * subject (user, group, service account) and the rules that apply to a user are resolved once and
 * cached until a Role, ClusterRole or binding changes. A decision is then a walk over the
 * compiled rules of this user's bindings, with no list scans.
 */
import type {
  ClusterRole,
  ClusterRoleBinding,
  PolicyRule,
  Role,
  RoleBinding,
  RoleRef,
  Subject,
} from "kubernetes-types/rbac/v1.js";
import {
  NO_OPINION,
  noOpinion,
  type Attributes,
  type Authorizer,
  type Decision,
  type NonResourceRule,
  type ResourceRule,
  type RuleResolver,
  type RulesResult,
  type UserInfo,
} from "../types.js";
import { aggregateMessage, goQuote } from "../util.js";
import { ruleAllows } from "./rules.js";

export type RBACKind = "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding";

/** What changed, so that only the affected caches are dropped. */
export interface RBACChange {
  kind: RBACKind;
  /** For Roles and RoleBindings. */
  namespace?: string;
}

/**
 * Where the authorizer reads RBAC objects: the API server backs it with its watch cache. Reads
 * must be synchronous and cheap (map lookups); `onChange` must be called after every change of
 * a Role, ClusterRole, RoleBinding or ClusterRoleBinding, before the next request is authorized.
 */
export interface RBACSource {
  getRole(namespace: string, name: string): Role | undefined;
  getClusterRole(name: string): ClusterRole | undefined;
  listRoleBindings(namespace: string): Iterable<RoleBinding>;
  listClusterRoleBindings(): Iterable<ClusterRoleBinding>;
  /** Subscribes to changes; returns the function that unsubscribes. */
  onChange(cb: (change: RBACChange) => void): () => void;
}

const SA_PREFIX = "system:serviceaccount:";

/** Whether `subject` names the user (upstream's appliesToUser). */
export function subjectApplies(user: UserInfo, subject: Subject, namespace: string): boolean {
  switch (subject.kind) {
    case "User":
      return user.username === subject.name;
    case "Group":
      return user.groups.includes(subject.name);
    case "ServiceAccount": {
      const ns = subject.namespace || namespace;
      if (!ns) return false;
      return user.username === `${SA_PREFIX}${ns}:${subject.name}`;
    }
    default:
      return false;
  }
}

function describeSubject(s: Subject, bindingNamespace: string): string {
  if (s.kind === "ServiceAccount") {
    return `${s.kind} ${goQuote(`${s.name}/${s.namespace || bindingNamespace}`)}`;
  }
  return `${s.kind} ${goQuote(s.name)}`;
}

/** Where a rule came from, as upstream's describers print it in "RBAC: allowed by ...". */
export interface RuleSource {
  binding: RoleBinding | ClusterRoleBinding;
  subject: Subject;
  /** Empty for a ClusterRoleBinding. */
  namespace: string;
}

export function describeSource(src: RuleSource): string {
  const b = src.binding;
  const name = b.metadata?.name ?? "";
  if (src.namespace) {
    return `RoleBinding ${goQuote(`${name}/${src.namespace}`)} of ${b.roleRef.kind} ${goQuote(b.roleRef.name)} to ${describeSubject(src.subject, src.namespace)}`;
  }
  return `ClusterRoleBinding ${goQuote(name)} of ${b.roleRef.kind} ${goQuote(b.roleRef.name)} to ${describeSubject(src.subject, "")}`;
}

/** The upstream NotFound text of a missing role (listers name the resource in the singular). */
export function roleNotFound(kind: "role" | "clusterrole", name: string): string {
  return `${kind}.rbac.authorization.k8s.io ${goQuote(name)} not found`;
}

/** One resolved rule with its source; the allow decision is made once and reused. */
interface Entry {
  rule: PolicyRule;
  source: RuleSource;
  allowed?: Decision;
}

interface Resolved {
  entries: Entry[];
  errors: string[];
}

interface SubjectIndex<B> {
  byUser: Map<string, B[]>;
  byGroup: Map<string, B[]>;
  /** Key `namespace:name`. */
  bySA: Map<string, B[]>;
  /** Position of each binding in the source's listing, to keep upstream's visiting order. */
  order: Map<B, number>;
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

function buildIndex<B extends RoleBinding | ClusterRoleBinding>(
  bindings: Iterable<B>,
  namespace: string,
): SubjectIndex<B> {
  const idx: SubjectIndex<B> = {
    byUser: new Map(),
    byGroup: new Map(),
    bySA: new Map(),
    order: new Map(),
  };
  let i = 0;
  for (const b of bindings) {
    idx.order.set(b, i++);
    for (const s of b.subjects ?? []) {
      switch (s.kind) {
        case "User":
          push(idx.byUser, s.name, b);
          break;
        case "Group":
          push(idx.byGroup, s.name, b);
          break;
        case "ServiceAccount": {
          const ns = s.namespace || namespace;
          if (ns) push(idx.bySA, `${ns}:${s.name}`, b);
          break;
        }
      }
    }
  }
  return idx;
}

/** The bindings of the index that name this user, in listing order, each once. */
function bindingsFor<B>(idx: SubjectIndex<B>, user: UserInfo): B[] {
  const lists: B[][] = [];
  const byUser = idx.byUser.get(user.username);
  if (byUser) lists.push(byUser);
  for (const g of user.groups) {
    const l = idx.byGroup.get(g);
    if (l) lists.push(l);
  }
  if (user.username.startsWith(SA_PREFIX)) {
    const l = idx.bySA.get(user.username.slice(SA_PREFIX.length));
    if (l) lists.push(l);
  }
  if (lists.length === 0) return [];
  if (lists.length === 1) return lists[0]!;
  const set = new Set<B>();
  for (const l of lists) for (const b of l) set.add(b);
  return [...set].sort((a, b) => idx.order.get(a)! - idx.order.get(b)!);
}

const MAX_CACHED_USERS = 10_000;

function userKey(user: UserInfo): string {
  return user.groups.length === 0 ? user.username : `${user.username}\0${user.groups.join("\0")}`;
}

/**
 * Resolves the rules that apply to a user: the rules of the ClusterRoles bound to them cluster
 * wide, and in a namespace those of the Roles and ClusterRoles bound there (upstream's
 * DefaultRuleResolver), with indexes and caches kept in step with the source.
 */
export class RBACRuleResolver {
  private clusterIndex: SubjectIndex<ClusterRoleBinding> | undefined;
  private readonly nsIndex = new Map<string, SubjectIndex<RoleBinding>>();
  private readonly clusterCache = new Map<string, Resolved>();
  private readonly nsCache = new Map<string, Map<string, Resolved>>();
  private readonly unsubscribe: () => void;

  constructor(private readonly source: RBACSource) {
    this.unsubscribe = source.onChange((change) => this.invalidate(change));
  }

  /** Stops following the source's changes. */
  close(): void {
    this.unsubscribe();
  }

  private invalidate(change: RBACChange): void {
    switch (change.kind) {
      case "ClusterRoleBinding":
        this.clusterIndex = undefined;
        this.clusterCache.clear();
        return;
      case "Role":
      case "RoleBinding":
        if (change.namespace !== undefined) {
          this.nsIndex.delete(change.namespace);
          this.nsCache.delete(change.namespace);
          return;
        }
        break;
    }
    // A ClusterRole can be referenced from anywhere.
    this.clusterIndex = undefined;
    this.clusterCache.clear();
    this.nsIndex.clear();
    this.nsCache.clear();
  }

  /** The rules a role reference grants; a string error (upstream's text) when it cannot. */
  getRoleReferenceRules(roleRef: RoleRef, bindingNamespace: string): PolicyRule[] | string {
    switch (roleRef.kind) {
      case "Role": {
        const role = this.source.getRole(bindingNamespace, roleRef.name);
        return role ? (role.rules ?? []) : roleNotFound("role", roleRef.name);
      }
      case "ClusterRole": {
        const role = this.source.getClusterRole(roleRef.name);
        return role ? (role.rules ?? []) : roleNotFound("clusterrole", roleRef.name);
      }
      default:
        return `unsupported role reference kind: ${goQuote(roleRef.kind)}`;
    }
  }

  private resolve(
    bindings: Array<RoleBinding | ClusterRoleBinding>,
    user: UserInfo,
    namespace: string,
  ): Resolved {
    const out: Resolved = { entries: [], errors: [] };
    for (const b of bindings) {
      const subject = (b.subjects ?? []).find((s) => subjectApplies(user, s, namespace));
      if (!subject) continue;
      const rules = this.getRoleReferenceRules(b.roleRef, namespace);
      if (typeof rules === "string") {
        out.errors.push(rules);
        continue;
      }
      const source: RuleSource = { binding: b, subject, namespace };
      for (const rule of rules) out.entries.push({ rule, source });
    }
    return out;
  }

  private cluster(user: UserInfo, key: string): Resolved {
    let r = this.clusterCache.get(key);
    if (r) return r;
    this.clusterIndex ??= buildIndex(this.source.listClusterRoleBindings(), "");
    r = this.resolve(bindingsFor(this.clusterIndex, user), user, "");
    if (this.clusterCache.size >= MAX_CACHED_USERS) this.clusterCache.clear();
    this.clusterCache.set(key, r);
    return r;
  }

  private namespaced(user: UserInfo, key: string, namespace: string): Resolved {
    let cache = this.nsCache.get(namespace);
    let r = cache?.get(key);
    if (r) return r;
    let idx = this.nsIndex.get(namespace);
    if (!idx) {
      idx = buildIndex(this.source.listRoleBindings(namespace), namespace);
      this.nsIndex.set(namespace, idx);
    }
    r = this.resolve(bindingsFor(idx, user), user, namespace);
    if (!cache) {
      if (this.nsCache.size >= MAX_CACHED_USERS) this.nsCache.clear();
      cache = new Map();
      this.nsCache.set(namespace, cache);
    }
    if (cache.size >= MAX_CACHED_USERS) cache.clear();
    cache.set(key, r);
    return r;
  }

  /**
   * Visits the rules that apply to the user in the namespace (cluster-wide ones first) and the
   * errors met resolving them; stops when the visitor returns false.
   */
  visitRulesFor(
    user: UserInfo,
    namespace: string,
    visitor: (source: RuleSource | null, rule: PolicyRule | null, error: string | null) => boolean,
  ): void {
    const key = userKey(user);
    const parts = [this.cluster(user, key)];
    if (namespace) parts.push(this.namespaced(user, key, namespace));
    for (const part of parts) {
      for (const e of part.errors) if (!visitor(null, null, e)) return;
      for (const e of part.entries) if (!visitor(e.source, e.rule, null)) return;
    }
  }

  /** All rules that apply to the user in the namespace, and the resolution errors. */
  rulesFor(user: UserInfo, namespace: string): { rules: PolicyRule[]; errors: string[] } {
    const rules: PolicyRule[] = [];
    const errors: string[] = [];
    this.visitRulesFor(user, namespace, (_s, rule, err) => {
      if (rule) rules.push(rule);
      if (err) errors.push(err);
      return true;
    });
    return { rules, errors };
  }

  /**
   * The decision for a request: allowed by the first rule that matches (reason "RBAC: allowed
   * by ..."), otherwise no opinion, with the resolution errors as the reason.
   */
  authorize(attrs: Attributes): Decision {
    const key = userKey(attrs.user);
    const cluster = this.cluster(attrs.user, key);
    for (const e of cluster.entries) {
      if (ruleAllows(attrs, e.rule)) return allowedBy(e);
    }
    let errors = cluster.errors;
    if (attrs.namespace) {
      const ns = this.namespaced(attrs.user, key, attrs.namespace);
      for (const e of ns.entries) {
        if (ruleAllows(attrs, e.rule)) return allowedBy(e);
      }
      if (ns.errors.length > 0) errors = errors.concat(ns.errors);
    }
    return errors.length > 0 ? noOpinion(`RBAC: ${aggregateMessage(errors)}`) : NO_OPINION;
  }
}

function allowedBy(e: Entry): Decision {
  e.allowed ??= { decision: "allow", reason: `RBAC: allowed by ${describeSource(e.source)}` };
  return e.allowed;
}

/** `--authorization-mode=RBAC`: an Authorizer and RuleResolver over an RBACSource. */
export class RBACAuthorizer implements Authorizer, RuleResolver {
  readonly resolver: RBACRuleResolver;

  constructor(source: RBACSource) {
    this.resolver = new RBACRuleResolver(source);
  }

  authorize(attrs: Attributes): Decision {
    return this.resolver.authorize(attrs);
  }

  /** SelfSubjectRulesReview's answer: the user's rules split into resource and URL rules. */
  rulesFor(user: UserInfo, namespace: string): RulesResult {
    const { rules, errors } = this.resolver.rulesFor(user, namespace);
    const resourceRules: ResourceRule[] = [];
    const nonResourceRules: NonResourceRule[] = [];
    for (const r of rules) {
      if (r.resources && r.resources.length > 0) {
        const rr: ResourceRule = { verbs: r.verbs ?? [] };
        if (r.apiGroups) rr.apiGroups = r.apiGroups;
        rr.resources = r.resources;
        if (r.resourceNames && r.resourceNames.length > 0) rr.resourceNames = r.resourceNames;
        resourceRules.push(rr);
      }
      if (r.nonResourceURLs && r.nonResourceURLs.length > 0) {
        nonResourceRules.push({ verbs: r.verbs ?? [], nonResourceURLs: r.nonResourceURLs });
      }
    }
    const result: RulesResult = { resourceRules, nonResourceRules, incomplete: false };
    if (errors.length > 0) result.error = aggregateMessage(errors);
    return result;
  }

  close(): void {
    this.resolver.close();
  }
}

function nsName(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/**
 * An RBACSource over maps held in memory: what the tests use, and a ready backing for a server
 * that keeps RBAC objects in its own cache. Objects are stored as given (not copied).
 */
export class MemoryRBACSource implements RBACSource {
  private readonly roles = new Map<string, Role>();
  private readonly clusterRoles = new Map<string, ClusterRole>();
  private readonly roleBindings = new Map<string, Map<string, RoleBinding>>();
  private readonly clusterRoleBindings = new Map<string, ClusterRoleBinding>();
  private readonly listeners = new Set<(c: RBACChange) => void>();

  getRole(namespace: string, name: string): Role | undefined {
    return this.roles.get(nsName(namespace, name));
  }

  getClusterRole(name: string): ClusterRole | undefined {
    return this.clusterRoles.get(name);
  }

  listRoleBindings(namespace: string): Iterable<RoleBinding> {
    return this.roleBindings.get(namespace)?.values() ?? [];
  }

  listClusterRoleBindings(): Iterable<ClusterRoleBinding> {
    return this.clusterRoleBindings.values();
  }

  listClusterRoles(): Iterable<ClusterRole> {
    return this.clusterRoles.values();
  }

  listRoles(): Iterable<Role> {
    return this.roles.values();
  }

  onChange(cb: (change: RBACChange) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  private emit(change: RBACChange): void {
    for (const l of this.listeners) l(change);
  }

  /** Adds or replaces an object (by kind, namespace and name). */
  put(obj: Role | ClusterRole | RoleBinding | ClusterRoleBinding, kind?: RBACKind): void {
    const k = (kind ?? obj.kind) as RBACKind;
    const name = obj.metadata?.name ?? "";
    const ns = obj.metadata?.namespace ?? "";
    switch (k) {
      case "Role":
        this.roles.set(nsName(ns, name), obj as Role);
        break;
      case "ClusterRole":
        this.clusterRoles.set(name, obj as ClusterRole);
        break;
      case "RoleBinding": {
        let m = this.roleBindings.get(ns);
        if (!m) this.roleBindings.set(ns, (m = new Map()));
        m.set(name, obj as RoleBinding);
        break;
      }
      case "ClusterRoleBinding":
        this.clusterRoleBindings.set(name, obj as ClusterRoleBinding);
        break;
      default:
        throw new Error(`not an RBAC kind: ${String(k)}`);
    }
    this.emit(k === "Role" || k === "RoleBinding" ? { kind: k, namespace: ns } : { kind: k });
  }

  delete(kind: RBACKind, namespace: string, name: string): void {
    switch (kind) {
      case "Role":
        this.roles.delete(nsName(namespace, name));
        break;
      case "ClusterRole":
        this.clusterRoles.delete(name);
        break;
      case "RoleBinding":
        this.roleBindings.get(namespace)?.delete(name);
        break;
      case "ClusterRoleBinding":
        this.clusterRoleBindings.delete(name);
        break;
    }
    this.emit(kind === "Role" || kind === "RoleBinding" ? { kind, namespace } : { kind });
  }
}
