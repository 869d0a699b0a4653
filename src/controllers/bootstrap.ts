/**
 * Bootstrap tokens, as upstream's bootstrapsigner and tokencleaner (both off by default):
 *
 * - The bootstrap signer keeps the `kubeconfig` of the kube-public/cluster-info ConfigMap signed
 *   with every bootstrap token Secret meant for signing (`usage-bootstrap-signing: "true"`, not
 *   expired): one key `jws-kubeconfig-<token-id>` per token, a detached JWS (HS256, the token
 *   secret as key, `kid` the token id), so that a joining node holding a token can trust the
 *   cluster's CA before it trusts anything else. Signatures of tokens that are gone are removed.
 * - The token cleaner deletes bootstrap token Secrets (kube-system, type
 *   `bootstrap.kubernetes.io/token`) once their `expiration` (RFC 3339) has passed; an
 *   unparseable expiration counts as expired.
 */

import type { ConfigMap, Secret } from "kubernetes-types/core/v1.js";
import { CompactSign } from "jose";
import { isStatusError } from "../api/status.js";
import { controller } from "../client/controller.js";
import { errorMessage, type ControllerDescriptor } from "./context.js";
import { watchOf } from "./util.js";

export const BOOTSTRAP_TOKEN_SECRET_TYPE = "bootstrap.kubernetes.io/token";
export const BOOTSTRAP_TOKEN_SECRET_PREFIX = "bootstrap-token-";
export const JWS_SIGNATURE_KEY_PREFIX = "jws-kubeconfig-";
export const CLUSTER_INFO_NAMESPACE = "kube-public";
export const CLUSTER_INFO_NAME = "cluster-info";
export const KUBECONFIG_KEY = "kubeconfig";
const TOKEN_NAMESPACE = "kube-system";

/** A Secret's data value as text (data is base64; stringData never reaches a client). */
function secretValue(secret: Secret, key: string): string {
  const v = secret.data?.[key];
  return v === undefined ? "" : Buffer.from(v, "base64").toString("utf8");
}

/**
 * Time left before a token Secret expires (ms) and whether it already has; no expiration is
 * never expired, an unparseable one is (upstream's GetExpiration).
 */
export function tokenExpiration(
  secret: Secret,
  now: number,
): { expired: boolean; remaining: number } {
  const text = secretValue(secret, "expiration");
  if (!text) return { expired: false, remaining: 0 };
  // RFC 3339 with a zone, as Go's time.RFC3339 demands.
  const ok = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(text);
  const at = ok ? Date.parse(text) : NaN;
  if (!Number.isFinite(at)) return { expired: true, remaining: 0 };
  const remaining = at - now;
  return remaining <= 0 ? { expired: true, remaining: 0 } : { expired: false, remaining };
}

function isTokenSecret(s: Secret): boolean {
  return s.type === BOOTSTRAP_TOKEN_SECRET_TYPE && s.metadata?.namespace === TOKEN_NAMESPACE;
}

/** The id and secret of a token Secret that may sign cluster-info, else undefined. */
export function signingToken(
  secret: Secret,
  now: number,
): { id: string; secret: string } | undefined {
  if (!isTokenSecret(secret)) return undefined;
  const name = secret.metadata?.name ?? "";
  if (!name.startsWith(BOOTSTRAP_TOKEN_SECRET_PREFIX)) return undefined;
  const id = secretValue(secret, "token-id");
  if (!id || id !== name.slice(BOOTSTRAP_TOKEN_SECRET_PREFIX.length)) return undefined;
  const tokenSecret = secretValue(secret, "token-secret");
  if (!tokenSecret) return undefined;
  if (tokenExpiration(secret, now).expired) return undefined;
  if (secretValue(secret, "usage-bootstrap-signing") !== "true") return undefined;
  return { id, secret: tokenSecret };
}

/** A detached compact JWS of `content` (`header..signature`), as upstream's jws package. */
export async function detachedSignature(
  content: string,
  tokenID: string,
  tokenSecret: string,
): Promise<string> {
  const jws = await new CompactSign(new TextEncoder().encode(content))
    .setProtectedHeader({ alg: "HS256", kid: tokenID })
    .sign(new TextEncoder().encode(tokenSecret));
  const [header, , signature] = jws.split(".");
  return `${header}..${signature}`;
}

/**
 * The cluster-info ConfigMap as it should be signed by `tokens`, or undefined when it already
 * is (or holds no kubeconfig).
 */
export async function signedClusterInfo(
  cm: ConfigMap,
  tokens: { id: string; secret: string }[],
): Promise<ConfigMap | undefined> {
  const content = cm.data?.[KUBECONFIG_KEY];
  if (content === undefined) return undefined;
  const next = structuredClone(cm);
  const data: Record<string, string> = {};
  const old = new Map<string, string>();
  for (const [k, v] of Object.entries(cm.data ?? {})) {
    if (k.startsWith(JWS_SIGNATURE_KEY_PREFIX))
      old.set(k.slice(JWS_SIGNATURE_KEY_PREFIX.length), v);
    else data[k] = v;
  }
  let changed = false;
  for (const t of tokens) {
    const sig = await detachedSignature(content, t.id, t.secret);
    if (old.get(t.id) !== sig) changed = true;
    old.delete(t.id);
    data[JWS_SIGNATURE_KEY_PREFIX + t.id] = sig;
  }
  if (old.size > 0) changed = true;
  if (!changed) return undefined;
  next.data = data;
  return next;
}

export const bootstrapSignerDescriptor: ControllerDescriptor = {
  name: "bootstrapsigner",
  aliases: ["bootstrap-signer-controller"],
  disabledByDefault: true,
  serviceAccount: "bootstrap-signer",
  async start(ctx, signal) {
    // The caches every controller shares (all namespaces), read for the two namespaces.
    const configMaps = ctx.informers.informer("v1/ConfigMap");
    const secrets = ctx.informers.informer("v1/Secret");
    const key = `${CLUSTER_INFO_NAMESPACE}/${CLUSTER_INFO_NAME}`;
    const c = controller({
      name: "bootstrapsigner",
      informers: ctx.informers,
      for: "v1/ConfigMap",
      watches: [watchOf("v1/Secret", (s: Secret) => (isTokenSecret(s) ? [key] : []))],
      workers: 1,
      clock: ctx.clock,
      onError: (err) => ctx.log.error(`signing ${key} failed: ${errorMessage(err)}`),
      reconcile: async (req) => {
        if (req.key !== key) return;
        const cm = configMaps.store.getByName(CLUSTER_INFO_NAMESPACE, CLUSTER_INFO_NAME);
        if (!cm) return;
        const now = ctx.clock.now();
        const tokens: { id: string; secret: string }[] = [];
        let nextExpiry = Infinity;
        for (const s of secrets.store.listNamespace(TOKEN_NAMESPACE)) {
          const t = signingToken(s, now);
          if (!t) continue;
          tokens.push(t);
          const { remaining } = tokenExpiration(s, now);
          if (remaining > 0) nextExpiry = Math.min(nextExpiry, remaining);
        }
        const next = await signedClusterInfo(cm, tokens);
        if (next) {
          try {
            await ctx.client.resource("v1/ConfigMap", CLUSTER_INFO_NAMESPACE).update(next);
          } catch (err) {
            if (!isStatusError(err, "NotFound")) throw err;
          }
        }
        // Drop a token's signature once it expires, even if the cleaner is off.
        return Number.isFinite(nextExpiry) ? { requeueAfter: nextExpiry + 1000 } : undefined;
      },
    });
    await c.start(signal);
  },
};

export const tokenCleanerDescriptor: ControllerDescriptor = {
  name: "tokencleaner",
  aliases: ["token-cleaner-controller"],
  disabledByDefault: true,
  serviceAccount: "token-cleaner",
  async start(ctx, signal) {
    const secrets = ctx.informers.informer("v1/Secret");
    const c = controller({
      name: "tokencleaner",
      informers: ctx.informers,
      for: "v1/Secret",
      workers: 1,
      clock: ctx.clock,
      onError: (err, req) => ctx.log.error(`cleaning ${req.key} failed: ${errorMessage(err)}`),
      reconcile: async ({ namespace, name }) => {
        if (namespace !== TOKEN_NAMESPACE) return;
        const secret = secrets.store.getByName(namespace, name);
        if (!secret || !isTokenSecret(secret)) return;
        const { expired, remaining } = tokenExpiration(secret, ctx.clock.now());
        if (!expired) return remaining > 0 ? { requeueAfter: remaining } : undefined;
        try {
          await ctx.client.resource("v1/Secret", namespace).delete(name, {
            ...(secret.metadata?.uid ? { preconditions: { uid: secret.metadata.uid } } : {}),
          });
        } catch (err) {
          // Gone already, or replaced (a new object is looked at again).
          if (!isStatusError(err, "NotFound") && !isStatusError(err, "Conflict")) throw err;
        }
      },
    });
    await c.start(signal);
  },
};
