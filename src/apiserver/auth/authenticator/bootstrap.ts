/**
 * Bootstrap tokens (`--enable-bootstrap-token-auth`), as upstream's bootstrap token authenticator:
 * `Authorization: Bearer abcdef.0123456789abcdef` is checked against the Secret
 * `bootstrap-token-abcdef` in kube-system (type bootstrap.kubernetes.io/token). The user is
 * `system:bootstrap:abcdef`, in `system:bootstrappers` and the groups of `auth-extra-groups`.
 * A token that is not right in any way is simply not recognised (null), which the bearer token
 * authenticator turns into 401.
 */
import { timingSafeEqual } from "node:crypto";
import type { Secret } from "kubernetes-types/core/v1.js";
import type { TokenAuthenticator, TokenResult } from "../types.js";

export const BOOTSTRAP_TOKEN_SECRET_PREFIX = "bootstrap-token-";
export const BOOTSTRAP_TOKEN_SECRET_TYPE = "bootstrap.kubernetes.io/token";
export const BOOTSTRAP_USER_PREFIX = "system:bootstrap:";
export const BOOTSTRAP_DEFAULT_GROUP = "system:bootstrappers";
const TOKEN = /^([a-z0-9]{6})\.([a-z0-9]{16})$/;
const GROUP = /^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$/;

/** Reads a Secret in kube-system by name (undefined: no such secret). */
export type BootstrapSecretLookup = (name: string) => Secret | undefined;

function data(secret: Secret, key: string): string {
  const v = secret.data?.[key];
  return v === undefined ? "" : Buffer.from(v, "base64").toString("utf8");
}

/** The groups of a bootstrap token secret, sorted and de-duplicated; a message when invalid. */
export function bootstrapGroups(secret: Secret): string[] | string {
  const groups = new Set([BOOTSTRAP_DEFAULT_GROUP]);
  const extra = data(secret, "auth-extra-groups");
  if (extra !== "") {
    for (const g of extra.split(",")) {
      if (!GROUP.test(g))
        return `bootstrap group ${JSON.stringify(g)} is invalid (must match ${GROUP.source})`;
      groups.add(g);
    }
  }
  return [...groups].sort();
}

export class BootstrapTokenAuthenticator implements TokenAuthenticator {
  /** Why the last tokens were refused, for the server's log (most recent last, bounded). */
  readonly refusals: string[] = [];

  constructor(
    private readonly lookup: BootstrapSecretLookup,
    private readonly now: () => number = Date.now,
  ) {}

  private refuse(secret: Secret, why: string): null {
    this.refusals.push(
      `Bootstrap secret kube-system/${secret.metadata?.name ?? ""} matching bearer token ${why}`,
    );
    if (this.refusals.length > 100) this.refusals.shift();
    return null;
  }

  authenticateToken(token: string): TokenResult | null {
    const m = TOKEN.exec(token);
    if (!m) return null;
    const [, id, secretPart] = m as unknown as [string, string, string];
    const secret = this.lookup(BOOTSTRAP_TOKEN_SECRET_PREFIX + id);
    if (!secret) return null;
    if (secret.metadata?.deletionTimestamp)
      return this.refuse(secret, "is deleted and awaiting removal");
    if (secret.type !== BOOTSTRAP_TOKEN_SECRET_TYPE || !secret.data) {
      return this.refuse(secret, `has invalid type, expected ${BOOTSTRAP_TOKEN_SECRET_TYPE}.`);
    }
    const stored = Buffer.from(data(secret, "token-secret"));
    const given = Buffer.from(secretPart);
    if (stored.length !== given.length || !timingSafeEqual(stored, given)) {
      return this.refuse(secret, "has invalid value for key token-secret.");
    }
    if (data(secret, "token-id") !== id)
      return this.refuse(secret, "has invalid value for key token-id.");
    const expiration = data(secret, "expiration");
    if (expiration !== "") {
      const t = Date.parse(expiration);
      if (Number.isNaN(t) || this.now() > t) return this.refuse(secret, "has expired.");
    }
    if (data(secret, "usage-bootstrap-authentication") !== "true") {
      return this.refuse(secret, "not marked usage-bootstrap-authentication=true.");
    }
    const groups = bootstrapGroups(secret);
    if (typeof groups === "string") {
      return this.refuse(secret, `has invalid value for key auth-extra-groups: ${groups}.`);
    }
    return { user: { username: BOOTSTRAP_USER_PREFIX + id, groups } };
  }
}
