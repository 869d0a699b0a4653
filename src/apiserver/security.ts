/**
 * The API server's authentication and authorization, assembled from the flags as kube-apiserver
 * assembles them, and fed from the watch caches: RBAC objects for the RBAC authorizer, pods and
 * volumes for the Node authorizer's graph, service accounts, secrets, pods and nodes for the
 * token authenticators' lookups.
 */
import fs from "node:fs";
import type {
  ClusterRole,
  ClusterRoleBinding,
  Role,
  RoleBinding,
} from "kubernetes-types/rbac/v1.js";
import type {
  Node,
  PersistentVolume,
  Pod,
  Secret,
  ServiceAccount,
} from "kubernetes-types/core/v1.js";
import type { VolumeAttachment } from "kubernetes-types/storage/v1.js";
import { StatusError } from "../api/status.js";
import type { Registry } from "./registry/store.js";
import type { KObject } from "./registry/types.js";
import { X509Authenticator } from "./auth/authenticator/x509.js";
import { TokenFileAuthenticator } from "./auth/authenticator/tokenfile.js";
import {
  LEGACY_TOKEN_LAST_USED_LABEL,
  loadPublicKeys,
  loadSigningKey,
  ServiceAccountTokenAuthenticator,
} from "./auth/authenticator/serviceaccount.js";
import { BootstrapTokenAuthenticator } from "./auth/authenticator/bootstrap.js";
import { newRequestAuthenticator } from "./auth/authenticator/union.js";
import { newAuthorizer, type BuiltAuthorizer } from "./auth/authorizer/modes.js";
import { MemoryRBACSource, type RBACKind } from "./auth/authorizer/rbac.js";
import { NodeGraph } from "./auth/authorizer/node-graph.js";
import { reconcileBootstrapPolicy } from "./auth/bootstrap-policy.js";
import { aggregationUpdates } from "./auth/aggregation.js";
import { checkBindingWrite, checkRoleWrite } from "./auth/escalation.js";
import type { AdmissionPlugin } from "./admission/types.js";
import {
  AuthenticationError,
  type Attributes,
  type Authenticator,
  type Decision,
  type TokenAuthenticator,
  type UserInfo,
} from "./auth/types.js";
import type { KeyObject } from "node:crypto";

export interface SecurityConfig {
  /** `--client-ca-file`. */
  clientCAFile?: string;
  /** `--token-auth-file`. */
  tokenAuthFile?: string;
  /** `--service-account-key-file` (repeatable). */
  serviceAccountKeyFiles: string[];
  /** `--service-account-issuer` (repeatable; the first one issues). */
  serviceAccountIssuers: string[];
  /** `--service-account-signing-key-file`. */
  serviceAccountSigningKeyFile?: string;
  /** `--api-audiences`. */
  apiAudiences: string[];
  /** `--enable-bootstrap-token-auth`. */
  enableBootstrapTokenAuth: boolean;
  /** `--anonymous-auth`. */
  anonymousAuth: boolean;
  /** `--authorization-mode`, validated. */
  authorizationModes: string[];
}

/** The user of the plain-HTTP tutorial port: all powers, as upstream's insecure port had. */
export const UNSECURED_USER: UserInfo = Object.freeze({
  username: "system:unsecured",
  groups: Object.freeze(["system:masters", "system:authenticated"]) as string[],
}) as UserInfo;

const BASE_ATTRIBUTES = {
  namespace: "",
  apiGroup: "",
  apiVersion: "",
  resource: "",
  subresource: "",
  name: "",
  path: "",
};

type RegistryOf = (group: string, version: string, resource: string) => Registry | undefined;

const NODE_NAME_FIELD = Buffer.from('"nodeName":"');

export class Security {
  readonly authenticator: Authenticator;
  /** The bearer token authenticators alone (TokenReview). */
  readonly tokens: TokenAuthenticator | undefined;
  readonly built: BuiltAuthorizer;
  readonly rbac = new MemoryRBACSource();
  readonly nodeGraph = new NodeGraph();
  readonly apiAudiences: string[];
  /** The key that signs bound service account tokens (TokenRequest), when configured. */
  readonly signingKey: KeyObject | undefined;
  readonly warnings: string[] = [];
  private readonly stops: Array<() => void> = [];
  private registryOf: RegistryOf | undefined;
  /** `namespace/name` of the Secrets whose last-used label is being written. */
  private readonly labelling = new Set<string>();

  /** Reads every file the flags name; throws errors naming the file and the problem. */
  constructor(readonly config: SecurityConfig) {
    const tokens: TokenAuthenticator[] = [];
    if (config.tokenAuthFile) {
      let text: string;
      try {
        text = fs.readFileSync(config.tokenAuthFile, "utf8");
      } catch (err) {
        throw new Error(
          `failed to read token file ${config.tokenAuthFile}: ${(err as Error).message}`,
        );
      }
      const file = new TokenFileAuthenticator(text, config.tokenAuthFile);
      this.warnings.push(...file.warnings);
      tokens.push(file);
    }
    this.apiAudiences =
      config.apiAudiences.length > 0
        ? config.apiAudiences
        : config.serviceAccountIssuers.slice(0, 1);
    if (config.serviceAccountKeyFiles.length > 0) {
      const keys = config.serviceAccountKeyFiles.flatMap((f) => loadPublicKeys(f));
      tokens.push(
        new ServiceAccountTokenAuthenticator({
          keys,
          issuers: config.serviceAccountIssuers,
          apiAudiences: this.apiAudiences,
          getter: {
            getServiceAccount: (ns, name) =>
              this.lookup("", "v1", "serviceaccounts", ns, name) as ServiceAccount | undefined,
            getSecret: (ns, name) =>
              this.lookup("", "v1", "secrets", ns, name) as Secret | undefined,
            getPod: (ns, name) => this.lookup("", "v1", "pods", ns, name) as Pod | undefined,
            getNode: (name) => this.lookup("", "v1", "nodes", "", name) as Node | undefined,
          },
          markLegacyTokenUsed: (secret, date) => this.markLegacyTokenUsed(secret, date),
        }),
      );
    }
    this.signingKey = config.serviceAccountSigningKeyFile
      ? loadSigningKey(config.serviceAccountSigningKeyFile)
      : undefined;
    if (config.enableBootstrapTokenAuth) {
      tokens.push(
        new BootstrapTokenAuthenticator(
          (name) => this.lookup("", "v1", "secrets", "kube-system", name) as Secret | undefined,
        ),
      );
    }
    const built = newRequestAuthenticator({
      ...(config.clientCAFile ? { x509: X509Authenticator.fromFile(config.clientCAFile) } : {}),
      tokens,
      anonymous: config.anonymousAuth,
    });
    this.authenticator = built.authenticator;
    this.tokens = built.tokens;
    this.built = newAuthorizer({
      modes: config.authorizationModes,
      rbac: this.rbac,
      nodeGraph: this.nodeGraph,
    });
  }

  private lookup(
    group: string,
    version: string,
    resource: string,
    namespace: string,
    name: string,
  ): KObject | undefined {
    return this.registryOf?.(group, version, resource)?.cached(namespace, name);
  }

  /**
   * Labels a legacy token's Secret with the date it was used (upstream's LegacyServiceAccount-
   * TokenTracking), in the background: the request goes on at once, a failed write is logged
   * and tried again on the token's next use. One write per Secret at a time; a Secret that was
   * replaced meanwhile (another uid) or already carries the date is left as it is.
   */
  private markLegacyTokenUsed(secret: Secret, date: string): void {
    const ns = secret.metadata?.namespace ?? "";
    const name = secret.metadata?.name ?? "";
    const uid = secret.metadata?.uid;
    const key = `${ns}/${name}`;
    const registry = this.registryOf?.("", "v1", "secrets");
    if (!registry || this.labelling.has(key)) return;
    this.labelling.add(key);
    const unchanged = new Error("unchanged");
    registry
      .guaranteedUpdate(ns, name, (obj) => {
        const meta = obj.metadata!;
        if (meta.uid !== uid || meta.labels?.[LEGACY_TOKEN_LAST_USED_LABEL] === date)
          throw unchanged;
        meta.labels = { ...meta.labels, [LEGACY_TOKEN_LAST_USED_LABEL]: date };
      })
      .catch((err: unknown) => {
        if (err === unchanged || (err instanceof StatusError && err.code === 404)) return;
        process.stderr.write(
          `k8ts apiserver: Failed to label legacy service account token ${name}/${ns} with last-used date, err: ${String(err)}\n`,
        );
      })
      .finally(() => this.labelling.delete(key));
  }

  get modes(): readonly string[] {
    return this.config.authorizationModes;
  }

  /**
   * Starts following what authentication and authorization read: the caches the token lookups
   * use, RBAC objects (RBAC mode) and the node graph (Node mode); then writes the bootstrap
   * policy (RBAC mode) and keeps aggregated ClusterRoles current.
   */
  async start(registryOf: RegistryOf): Promise<void> {
    this.registryOf = registryOf;
    const need = (group: string, version: string, resource: string): Registry => {
      const r = registryOf(group, version, resource);
      if (!r) throw new Error(`no registry for ${group}/${version}/${resource}`);
      return r;
    };
    const caches: Array<Promise<unknown>> = [];
    if (this.config.serviceAccountKeyFiles.length > 0 || this.config.enableBootstrapTokenAuth) {
      for (const resource of ["serviceaccounts", "secrets", "pods", "nodes"]) {
        caches.push(need("", "v1", resource).cache().ready());
      }
    }
    await Promise.all(caches);
    const modes = this.config.authorizationModes;
    if (modes.includes("RBAC")) await this.followRBAC(need);
    if (modes.includes("Node")) await this.followNodeGraph(need);
    if (modes.includes("RBAC")) {
      await this.writeBootstrapPolicy(need);
      await this.startAggregation(need("rbac.authorization.k8s.io", "v1", "clusterroles"));
    }
  }

  private async followRBAC(need: (g: string, v: string, r: string) => Registry): Promise<void> {
    const kinds: Array<[string, RBACKind]> = [
      ["roles", "Role"],
      ["clusterroles", "ClusterRole"],
      ["rolebindings", "RoleBinding"],
      ["clusterrolebindings", "ClusterRoleBinding"],
    ];
    for (const [resource, kind] of kinds) {
      const stop = await need("rbac.authorization.k8s.io", "v1", resource).subscribe({
        set: (obj) => this.rbac.put(obj as Role, kind),
        remove: (obj) =>
          this.rbac.delete(kind, obj.metadata?.namespace ?? "", obj.metadata?.name ?? ""),
      });
      this.stops.push(stop);
    }
  }

  private async followNodeGraph(
    need: (g: string, v: string, r: string) => Registry,
  ): Promise<void> {
    const g = this.nodeGraph;
    const follow = async (
      group: string,
      resource: string,
      set: (o: KObject) => void,
      remove: (o: KObject) => void,
      wants?: (json: Buffer) => boolean,
    ) => this.stops.push(await need(group, "v1", resource).subscribe({ set, remove, wants }));
    await follow(
      "",
      "pods",
      (o) => g.setPod(o as Pod),
      (o) => g.deletePod(o.metadata?.namespace ?? "", o.metadata?.name ?? ""),
      // Only pods bound to a node are in the graph, and a pod once bound stays bound: pods
      // whose JSON names no node are not decoded at all (most of them, on a busy create path).
      (json) => json.includes(NODE_NAME_FIELD),
    );
    await follow(
      "",
      "persistentvolumes",
      (o) => g.setPersistentVolume(o as PersistentVolume),
      (o) => g.deletePersistentVolume(o.metadata?.name ?? ""),
    );
    await follow(
      "storage.k8s.io",
      "volumeattachments",
      (o) => g.setVolumeAttachment(o as unknown as VolumeAttachment),
      (o) => g.deleteVolumeAttachment(o.metadata?.name ?? ""),
    );
  }

  /** Creates or updates upstream's bootstrap roles and bindings, as kube-apiserver does at start. */
  private async writeBootstrapPolicy(
    need: (g: string, v: string, r: string) => Registry,
  ): Promise<void> {
    const rbac = this.rbac;
    const actions = reconcileBootstrapPolicy({
      getClusterRole: (name) => rbac.getClusterRole(name),
      getClusterRoleBinding: (name) =>
        [...rbac.listClusterRoleBindings()].find((b) => b.metadata?.name === name),
      getRole: (ns, name) => rbac.getRole(ns, name),
      getRoleBinding: (ns, name) =>
        [...rbac.listRoleBindings(ns)].find((b) => b.metadata?.name === name),
    });
    const resources: Record<string, string> = {
      ClusterRole: "clusterroles",
      ClusterRoleBinding: "clusterrolebindings",
      Role: "roles",
      RoleBinding: "rolebindings",
    };
    for (const action of actions) {
      const obj = structuredClone(action.object) as KObject;
      const registry = need("rbac.authorization.k8s.io", "v1", resources[obj.kind!]!);
      const ns = obj.metadata?.namespace ?? "";
      const name = obj.metadata!.name!;
      try {
        if (action.operation === "recreate") await registry.delete(ns, name);
        if (action.operation === "update") {
          delete obj.metadata!.resourceVersion;
          await registry.update(ns, name, obj);
        } else {
          await registry.create(ns, obj);
        }
      } catch (err) {
        // Another API server may have written it first; the next start reconciles again.
        if (!(err instanceof StatusError && (err.code === 409 || err.code === 404))) throw err;
      }
    }
  }

  /** The ClusterRole aggregation loop: aggregated roles take the rules of the roles they select. */
  private async startAggregation(clusterRoles: Registry): Promise<void> {
    let scheduled = false;
    const run = async () => {
      scheduled = false;
      for (const { role, rules } of aggregationUpdates(this.rbac.listClusterRoles())) {
        const name = role.metadata!.name!;
        try {
          await clusterRoles.guaranteedUpdate("", name, (obj) => {
            obj.rules = rules;
          });
        } catch (err) {
          if (!(err instanceof StatusError && err.code === 404)) throw err;
        }
      }
    };
    const schedule = () => {
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        run().catch((err: unknown) =>
          process.stderr.write(`k8ts apiserver: ClusterRole aggregation: ${String(err)}\n`),
        );
      });
    };
    this.stops.push(this.rbac.onChange((c) => c.kind === "ClusterRole" && schedule()));
    await run();
  }

  /**
   * Who sent the request: the user, null when the request must be refused with 401 Unauthorized
   * (bad or missing credentials without anonymous access).
   */
  async authenticate(req: {
    headers: import("node:http").IncomingHttpHeaders;
    socket: import("node:net").Socket;
    path: string;
    /** Receives the warnings authentication has for the client. */
    warnings?: string[];
    /** Receives the annotations authentication has for the audit event. */
    auditAnnotations?: Record<string, string>;
  }): Promise<UserInfo | null> {
    try {
      return await this.authenticator.authenticate({
        headers: req.headers,
        socket: req.socket,
        path: req.path,
        ...(req.warnings ? { warnings: req.warnings } : {}),
        ...(req.auditAnnotations ? { auditAnnotations: req.auditAnnotations } : {}),
      });
    } catch (err) {
      if (err instanceof AuthenticationError) return null;
      throw err;
    }
  }

  /**
   * Impersonation (`Impersonate-User`, `-Group`, `-Uid`, `-Extra-*` headers), as upstream's
   * filter: the requester must be allowed to `impersonate` each of them; the request then runs
   * as the impersonated user. Returns the user to serve the request as.
   */
  impersonate(user: UserInfo, headers: import("node:http").IncomingHttpHeaders): UserInfo {
    const header = (name: string): string[] => {
      const v = headers[name];
      if (v === undefined) return [];
      return (Array.isArray(v) ? v : [v]).flatMap((x) => x.split(",")).map((x) => x.trim());
    };
    const username = header("impersonate-user")[0];
    const groups = header("impersonate-group");
    const uid = header("impersonate-uid")[0];
    const extra: Record<string, string[]> = {};
    for (const [name, value] of Object.entries(headers)) {
      if (!name.startsWith("impersonate-extra-") || value === undefined) continue;
      const key = decodeURIComponent(name.slice("impersonate-extra-".length));
      extra[key] = (Array.isArray(value) ? value : [value])
        .flatMap((x) => x.split(","))
        .map((x) => x.trim());
    }
    if (username === undefined) {
      if (groups.length > 0 || uid !== undefined || Object.keys(extra).length > 0) {
        throw new StatusError(
          500,
          "InternalError",
          "Internal error occurred: requested [" +
            [...groups.map((g) => `{Group ${g}}`)].join(" ") +
            "] without impersonating a user",
        );
      }
      return user;
    }
    const check = (a: Partial<Attributes>, what: string) => {
      const attrs = { ...BASE_ATTRIBUTES, user, verb: "impersonate", resourceRequest: true, ...a };
      if (this.authorize(attrs).decision !== "allow") {
        throw new StatusError(
          403,
          "Forbidden",
          `${what} is forbidden: User "${user.username}" cannot impersonate resource "${attrs.resource}" in API group "${attrs.apiGroup}"${attrs.namespace ? ` in the namespace "${attrs.namespace}"` : " at the cluster scope"}`,
          { name: attrs.name, group: attrs.apiGroup, kind: attrs.resource },
        );
      }
    };
    const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username);
    const out: UserInfo = { username, groups: [] };
    if (sa) {
      check(
        { resource: "serviceaccounts", namespace: sa[1]!, name: sa[2]! },
        `serviceaccounts "${sa[2]}"`,
      );
      out.groups.push("system:serviceaccounts", `system:serviceaccounts:${sa[1]}`);
    } else {
      check({ resource: "users", name: username }, `users "${username}"`);
    }
    for (const g of groups) {
      check({ resource: "groups", name: g }, `groups "${g}"`);
      if (!out.groups.includes(g)) out.groups.push(g);
    }
    if (uid !== undefined) {
      check(
        { resource: "uids", apiGroup: "authentication.k8s.io", name: uid },
        `uids.authentication.k8s.io "${uid}"`,
      );
      out.uid = uid;
    }
    for (const [key, values] of Object.entries(extra)) {
      for (const v of values) {
        check(
          { resource: "userextras", subresource: key, apiGroup: "authentication.k8s.io", name: v },
          `userextras.authentication.k8s.io "${v}"`,
        );
      }
    }
    if (Object.keys(extra).length > 0) out.extra = extra;
    // Upstream adds the authenticated (or unauthenticated) group to whoever is impersonated.
    if (username === "system:anonymous") {
      if (!out.groups.includes("system:unauthenticated")) out.groups.push("system:unauthenticated");
    } else if (!out.groups.includes("system:authenticated")) {
      out.groups.push("system:authenticated");
    }
    return out;
  }

  /**
   * RBAC's escalation prevention, run with admission on every write of a Role, ClusterRole,
   * RoleBinding or ClusterRoleBinding (upstream does it in those resources' storage): a user may
   * only grant what they hold, unless allowed to `escalate` or `bind`. Undefined when RBAC is not
   * an authorization mode.
   */
  escalationCheck(): AdmissionPlugin | undefined {
    const rbac = this.built.rbac;
    if (!rbac) return undefined;
    const authorizer = this.built.authorizer;
    return {
      name: "RBACEscalation",
      validate(a) {
        if (a.group !== "rbac.authorization.k8s.io" || a.subresource) return;
        if (a.operation !== "CREATE" && a.operation !== "UPDATE") return;
        const ctx = { user: a.user, authorizer, resolver: rbac.resolver };
        const obj = a.object as unknown as Role;
        const old = a.oldObject as unknown as Role | undefined;
        const err =
          a.resource === "roles" || a.resource === "clusterroles"
            ? checkRoleWrite(ctx, obj, old)
            : checkBindingWrite(ctx, obj as unknown as RoleBinding, old as unknown as RoleBinding);
        if (err) throw err;
      },
    };
  }

  authorize(attrs: Attributes): Decision {
    return this.built.authorizer.authorize(attrs);
  }

  stop(): void {
    for (const stop of this.stops.splice(0)) stop();
  }
}

/** Types of the RBAC objects, re-exported for the server's escalation checks. */
export type { ClusterRole, ClusterRoleBinding, Role, RoleBinding };
