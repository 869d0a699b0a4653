/**
 * Service account tokens, as upstream's pkg/serviceaccount: JWTs signed with the key of
 * `--service-account-signing-key-file` (bound tokens from TokenRequest, issuer
 * `--service-account-issuer`) or of the controller manager's `--service-account-private-key-file`
 * (legacy tokens kept in Secrets, issuer `kubernetes/serviceaccount`), checked against the public
 * keys of `--service-account-key-file`.
 *
 * A token names `system:serviceaccount:<namespace>:<name>` in the groups `system:serviceaccounts`
 * and `system:serviceaccounts:<namespace>`. Signatures are verified once per token and
 * remembered; the time checks and the lookups of the service account (and of the pod, secret or
 * node the token is bound to) run on every use, so a deleted pod's token stops working at once.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  randomUUID,
  type KeyObject,
} from "node:crypto";
import fs from "node:fs";
import { compactVerify, SignJWT } from "jose";
import type { Node, Pod, Secret, ServiceAccount } from "kubernetes-types/core/v1.js";
import {
  AuthenticationError,
  CREDENTIAL_ID_KEY,
  type TokenAuthenticator,
  type TokenResult,
  type UserInfo,
} from "../types.js";
import { aggregateMessage, goQuote, goQuoteList } from "../util.js";
import { osErrorText } from "./tokenfile.js";

export const LEGACY_ISSUER = "kubernetes/serviceaccount";
export const SERVICE_ACCOUNT_USERNAME_PREFIX = "system:serviceaccount:";
export const ALL_SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts";
export const POD_NAME_KEY = "authentication.kubernetes.io/pod-name";
export const POD_UID_KEY = "authentication.kubernetes.io/pod-uid";
export const NODE_NAME_KEY = "authentication.kubernetes.io/node-name";
export const NODE_UID_KEY = "authentication.kubernetes.io/node-uid";
/** The label the legacy token cleaner puts on secrets whose tokens it invalidated. */
export const LEGACY_TOKEN_INVALID_SINCE_LABEL = "kubernetes.io/legacy-token-invalid-since";
/** The label the API server keeps on a legacy token's Secret: the UTC date it was last used. */
export const LEGACY_TOKEN_LAST_USED_LABEL = "kubernetes.io/legacy-token-last-used";
/** kube-system's ConfigMap whose `since` says the UTC date tracking legacy token uses began. */
export const LEGACY_TOKEN_TRACKING_CONFIGMAP =
  "kube-apiserver-legacy-service-account-token-tracking";
export const LEGACY_TOKEN_TRACKING_SINCE_KEY = "since";
/** The warning a request authenticated with an auto-generated legacy token gets. */
export const AUTO_GENERATED_LEGACY_TOKEN_WARNING =
  "Use tokens from the TokenRequest API or manually created secret-based tokens instead of auto-generated secret-based tokens.";

/** go-jose's leeway for time claims. */
const LEEWAY_S = 60;

// ---- keys ----

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

/**
 * The public keys in PEM text, as upstream's keyutil.ParsePublicKeysPEM: public keys, the public
 * half of private keys, and the keys of certificates; other blocks are ignored.
 */
export function parsePublicKeys(pem: string): KeyObject[] {
  const keys: KeyObject[] = [];
  for (const m of pem.matchAll(PEM_BLOCK)) {
    const block = m[0];
    try {
      if (m[1] === "CERTIFICATE") {
        keys.push(createPublicKey({ key: block, format: "pem" }));
      } else if (m[1]!.includes("PRIVATE KEY")) {
        keys.push(createPublicKey(createPrivateKey(block)));
      } else if (m[1]!.includes("PUBLIC KEY")) {
        keys.push(createPublicKey(block));
      }
    } catch {
      // Not a key we can use: tolerated, as upstream tolerates "EC PARAMETERS" blocks.
    }
  }
  return keys.filter((k) => k.asymmetricKeyType === "rsa" || k.asymmetricKeyType === "ec");
}

/** `--service-account-key-file`: the public keys tokens may be signed with. */
export function loadPublicKeys(path: string): KeyObject[] {
  let text: string;
  try {
    text = fs.readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(
      `error reading public key file ${path}: open ${path}: ${osErrorText(err as NodeJS.ErrnoException)}`,
    );
  }
  const keys = parsePublicKeys(text);
  if (keys.length === 0) {
    throw new Error(
      `error reading public key file ${path}: data does not contain any valid RSA or ECDSA public keys`,
    );
  }
  return keys;
}

/** `--service-account-signing-key-file`: the private key tokens are signed with. */
export function loadSigningKey(path: string): KeyObject {
  let text: string;
  try {
    text = fs.readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(
      `failed to parse service-account-issuer-key-file: open ${path}: ${osErrorText(err as NodeJS.ErrnoException)}`,
    );
  }
  for (const m of text.matchAll(PEM_BLOCK)) {
    if (!m[1]!.includes("PRIVATE KEY")) continue;
    try {
      const key = createPrivateKey(m[0]);
      if (key.asymmetricKeyType === "rsa" || key.asymmetricKeyType === "ec") return key;
    } catch {
      // try the next block
    }
  }
  throw new Error(
    "failed to parse service-account-issuer-key-file: data does not contain a valid RSA or ECDSA private key",
  );
}

/** The `kid` of tokens signed with a key: base64url(SHA-256(DER of the public key)). */
export function keyID(key: KeyObject): string {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  const der = pub.export({ type: "spki", format: "der" });
  return createHash("sha256").update(der).digest("base64url");
}

/** The JWS algorithm for a key, as upstream chooses it. */
export function signingAlgorithm(key: KeyObject): "RS256" | "ES256" | "ES384" | "ES512" {
  if (key.asymmetricKeyType === "rsa") return "RS256";
  switch (key.asymmetricKeyDetails?.namedCurve) {
    case "prime256v1":
      return "ES256";
    case "secp384r1":
      return "ES384";
    case "secp521r1":
      return "ES512";
  }
  throw new Error(
    `unsupported key for service account tokens: ${key.asymmetricKeyType ?? "unknown"}`,
  );
}

function sortedKeys(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o).sort()) {
    const v = o[k];
    if (v === undefined) continue;
    out[k] =
      v && typeof v === "object" && !Array.isArray(v)
        ? sortedKeys(v as Record<string, unknown>)
        : v;
  }
  return out;
}

async function sign(key: KeyObject, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(sortedKeys(claims))
    .setProtectedHeader({ alg: signingAlgorithm(key), kid: keyID(key) })
    .sign(key);
}

// ---- issuing ----

export interface ObjectRef {
  name: string;
  uid: string;
}

export interface IssueOptions {
  /** The private key (`--service-account-signing-key-file`). */
  key: KeyObject;
  /** The first `--service-account-issuer`. */
  issuer: string;
  namespace: string;
  serviceAccount: ObjectRef;
  audiences: string[];
  expirationSeconds: number;
  /** The object the token lives and dies with (TokenRequest's boundObjectRef). */
  boundObject?: { kind: "Pod" | "Secret" | "Node" } & ObjectRef;
  /** For a pod-bound token, the node the pod runs on (recorded, as 1.32 does). */
  node?: ObjectRef;
  /** Seconds since the epoch; defaults to now. */
  now?: number;
}

export interface IssuedToken {
  token: string;
  /** TokenRequest's status.expirationTimestamp. */
  expirationTimestamp: Date;
  /** The credential id the token will authenticate with (`JTI=<jti>`). */
  credentialID: string;
}

/** A bound service account token, as TokenRequest answers it (upstream's Claims()). */
export async function issueServiceAccountToken(o: IssueOptions): Promise<IssuedToken> {
  const now = Math.floor(o.now ?? Date.now() / 1000);
  const exp = now + o.expirationSeconds;
  const jti = randomUUID();
  const k8s: Record<string, unknown> = {
    namespace: o.namespace,
    serviceaccount: { name: o.serviceAccount.name, uid: o.serviceAccount.uid },
  };
  const bound = o.boundObject;
  if (bound) {
    const ref = { name: bound.name, uid: bound.uid };
    if (bound.kind === "Pod") {
      k8s.pod = ref;
      if (o.node) k8s.node = { name: o.node.name, uid: o.node.uid };
    } else if (bound.kind === "Secret") {
      k8s.secret = ref;
    } else {
      k8s.node = ref;
    }
  }
  const token = await sign(o.key, {
    aud: o.audiences,
    exp,
    iat: now,
    iss: o.issuer,
    jti,
    "kubernetes.io": k8s,
    nbf: now,
    sub: `${SERVICE_ACCOUNT_USERNAME_PREFIX}${o.namespace}:${o.serviceAccount.name}`,
  });
  return { token, expirationTimestamp: new Date(exp * 1000), credentialID: `JTI=${jti}` };
}

/** A legacy token for a service account token Secret (the controller manager's token controller). */
export async function issueLegacyServiceAccountToken(o: {
  key: KeyObject;
  namespace: string;
  serviceAccount: ObjectRef;
  secretName: string;
}): Promise<string> {
  return sign(o.key, {
    iss: LEGACY_ISSUER,
    "kubernetes.io/serviceaccount/namespace": o.namespace,
    "kubernetes.io/serviceaccount/secret.name": o.secretName,
    "kubernetes.io/serviceaccount/service-account.name": o.serviceAccount.name,
    "kubernetes.io/serviceaccount/service-account.uid": o.serviceAccount.uid,
    sub: `${SERVICE_ACCOUNT_USERNAME_PREFIX}${o.namespace}:${o.serviceAccount.name}`,
  });
}

// ---- validating ----

/**
 * Lookups of the objects a token refers to, backed by the API server's cache. Returning
 * undefined means the object does not exist.
 */
export interface ServiceAccountGetter {
  getServiceAccount(namespace: string, name: string): ServiceAccount | undefined;
  getSecret(namespace: string, name: string): Secret | undefined;
  getPod(namespace: string, name: string): Pod | undefined;
  getNode(name: string): Node | undefined;
}

export interface ServiceAccountAuthenticatorOptions {
  /** Public keys (`--service-account-key-file`). */
  keys: KeyObject[];
  /** Accepted issuers of bound tokens (`--service-account-issuer`, all values). */
  issuers: string[];
  /** `--api-audiences`; upstream defaults it to the first issuer. */
  apiAudiences?: string[];
  /** Accept legacy (Secret) tokens, issuer `kubernetes/serviceaccount` (default true). */
  legacy?: boolean;
  /**
   * Checks the service account, pod, secret or node still exist (upstream always does for
   * bound tokens, and for legacy tokens with `--service-account-lookup`, the default).
   */
  getter?: ServiceAccountGetter;
  /**
   * Records that a legacy token's Secret was used on `date` (UTC, YYYY-MM-DD): called when the
   * Secret's last-used label is neither that day nor the next, and must not delay the request
   * (the API server labels the Secret in the background).
   */
  markLegacyTokenUsed?: (secret: Secret, date: string) => void;
  /** Milliseconds since the epoch; for tests. */
  now?: () => number;
}

interface BoundClaims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  exp?: number;
  nbf?: number;
  iat?: number;
  jti?: string;
  "kubernetes.io"?: {
    namespace?: string;
    serviceaccount?: { name?: string; uid?: string };
    pod?: { name?: string; uid?: string };
    secret?: { name?: string; uid?: string };
    node?: { name?: string; uid?: string };
  };
  [key: string]: unknown;
}

interface SAInfo {
  namespace: string;
  name: string;
  uid: string;
  podName?: string;
  podUID?: string;
  nodeName?: string;
  nodeUID?: string;
  credentialID?: string;
  /** For the client, not part of the user. */
  warnings?: string[];
  /** For the request's audit event. */
  auditAnnotations?: Record<string, string>;
}

/** A time (ms since the epoch) as its UTC date, YYYY-MM-DD. */
export function utcDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * A YYYY-MM-DD date as midnight UTC (ms since the epoch), or undefined when it is not one (Go's
 * time.Parse with layout "2006-01-02": exact digits, a day that exists in its month).
 */
export function parseUTCDate(s: string | undefined): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s ?? "");
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (mo < 1 || mo > 12 || d < 1) return undefined;
  const ms = Date.UTC(y, mo - 1, d);
  // Date.UTC maps years 0-99 to 1900-1999; setUTCFullYear puts them back.
  const t = new Date(ms);
  t.setUTCFullYear(y);
  if (t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d) return undefined;
  return t.getTime();
}

/** The user a service account token names (upstream's ServiceAccountInfo.UserInfo()). */
export function serviceAccountUser(sa: SAInfo): UserInfo {
  const user: UserInfo = {
    username: `${SERVICE_ACCOUNT_USERNAME_PREFIX}${sa.namespace}:${sa.name}`,
    groups: [ALL_SERVICE_ACCOUNTS_GROUP, `${ALL_SERVICE_ACCOUNTS_GROUP}:${sa.namespace}`],
  };
  if (sa.uid) user.uid = sa.uid;
  const extra: Record<string, string[]> = {};
  if (sa.podName && sa.podUID) {
    extra[POD_NAME_KEY] = [sa.podName];
    extra[POD_UID_KEY] = [sa.podUID];
  }
  if (sa.credentialID) extra[CREDENTIAL_ID_KEY] = [sa.credentialID];
  if (sa.nodeName) {
    extra[NODE_NAME_KEY] = [sa.nodeName];
    if (sa.nodeUID) extra[NODE_UID_KEY] = [sa.nodeUID];
  }
  if (Object.keys(extra).length > 0) user.extra = extra;
  return user;
}

const NAME_SEGMENT = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** `system:serviceaccount:NS:NAME` split, or undefined (upstream's SplitUsername). */
export function splitServiceAccountUsername(username: string): [string, string] | undefined {
  if (!username.startsWith(SERVICE_ACCOUNT_USERNAME_PREFIX)) return undefined;
  const parts = username.slice(SERVICE_ACCOUNT_USERNAME_PREFIX.length).split(":");
  if (parts.length !== 2) return undefined;
  const [ns, name] = parts as [string, string];
  if (!NAME_SEGMENT.test(ns) || ns.length > 63 || ns.includes(".")) return undefined;
  if (!NAME_SEGMENT.test(name) || name.length > 253) return undefined;
  return [ns, name];
}

function decodeSegment(seg: string): unknown {
  try {
    return JSON.parse(Buffer.from(seg, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
}

const notFound = (resource: string, name: string) => `${resource} ${goQuote(name)} not found`;

/** Whether an object's deletion started before `before` (ms). */
function deletedBefore(
  obj: { metadata?: { deletionTimestamp?: string } } | undefined,
  before: number,
): boolean {
  const ts = obj?.metadata?.deletionTimestamp;
  return ts !== undefined && Date.parse(ts) < before;
}

const MAX_VERIFIED = 4096;

/**
 * Authenticates service account JWTs. Tokens from other issuers (or not JWTs at all) get `null`,
 * so the next token authenticator can try them; tokens of ours that fail any check throw an
 * AuthenticationError with upstream's message.
 */
export class ServiceAccountTokenAuthenticator implements TokenAuthenticator {
  private readonly issuers: Set<string>;
  private readonly apiAudiences: string[];
  private readonly verified = new Map<string, BoundClaims>();
  private readonly now: () => number;
  private readonly keys: Array<{ key: KeyObject; kid: string; alg: string }>;

  constructor(private readonly options: ServiceAccountAuthenticatorOptions) {
    this.issuers = new Set(options.issuers);
    if (options.legacy ?? true) this.issuers.add(LEGACY_ISSUER);
    this.apiAudiences = options.apiAudiences ?? options.issuers.slice(0, 1);
    this.now = options.now ?? Date.now;
    this.keys = options.keys.map((key) => ({ key, kid: keyID(key), alg: signingAlgorithm(key) }));
  }

  authenticateToken(
    token: string,
    audiences?: string[],
  ): TokenResult | null | Promise<TokenResult | null> {
    const cached = this.verified.get(token);
    if (cached) return this.validate(token, cached, audiences);
    // Only tokens that claim one of our issuers are ours to judge (upstream's hasCorrectIssuer).
    if (token.trimStart().startsWith("{")) return null;
    const parts = token.split(".");
    if (parts.length !== 3) return null;
    const unverified = decodeSegment(parts[1]!) as BoundClaims | undefined;
    if (!unverified || typeof unverified !== "object" || typeof unverified.iss !== "string")
      return null;
    if (!this.issuers.has(unverified.iss)) return null;
    return this.verifySignature(token).then((claims) => {
      if (this.verified.size >= MAX_VERIFIED) this.verified.clear();
      this.verified.set(token, claims);
      return this.validate(token, claims, audiences);
    });
  }

  private async verifySignature(token: string): Promise<BoundClaims> {
    const errors: string[] = [];
    const header = decodeSegment(token.split(".")[0]!) as { kid?: string } | undefined;
    // Try the key the token names first; then the others (upstream tries every key).
    const named = this.keys.filter((k) => k.kid === header?.kid);
    const keys = [...named, ...this.keys.filter((k) => k.kid !== header?.kid)];
    for (const { key, alg } of keys) {
      try {
        const { payload } = await compactVerify(token, key, { algorithms: [alg] });
        const claims = JSON.parse(new TextDecoder().decode(payload)) as BoundClaims;
        if (!claims || typeof claims !== "object")
          throw new Error("go-jose/go-jose: invalid payload");
        return claims;
      } catch (err) {
        errors.push(
          (err as { code?: string }).code === "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" ||
            (err as { code?: string }).code === "ERR_JOSE_ALG_NOT_ALLOWED"
            ? "go-jose/go-jose: error in cryptographic primitive"
            : (err as Error).message,
        );
      }
    }
    throw new AuthenticationError(aggregateMessage(errors));
  }

  private validate(token: string, claims: BoundClaims, requested?: string[]): TokenResult {
    if (typeof claims.iss !== "string" || !this.issuers.has(claims.iss)) {
      throw new AuthenticationError(`token issuer ${goQuote(String(claims.iss))} is invalid`);
    }
    let tokenAuds =
      claims.aud === undefined ? [] : Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (tokenAuds.length === 0) tokenAuds = this.apiAudiences;
    const target = requested ?? this.apiAudiences;
    const auds = tokenAuds.filter((a) => target.includes(a));
    if (auds.length === 0 && this.apiAudiences.length !== 0) {
      throw new AuthenticationError(
        `token audiences ${goQuoteList(tokenAuds)} is invalid for the target audiences ${goQuoteList(target)}`,
      );
    }
    const info =
      claims.iss === LEGACY_ISSUER
        ? this.validateLegacy(token, claims)
        : this.validateBound(claims);
    const result: TokenResult = { user: serviceAccountUser(info) };
    if (auds.length > 0) result.audiences = auds;
    if (info.warnings) result.warnings = info.warnings;
    if (info.auditAnnotations) result.auditAnnotations = info.auditAnnotations;
    return result;
  }

  /** Asks for the last-used label of a legacy token's Secret, at most once a day. */
  private markUsed(secret: Secret): void {
    const mark = this.options.markLegacyTokenUsed;
    if (!mark) return;
    const now = this.now();
    const today = utcDate(now);
    const lastUsed = secret.metadata?.labels?.[LEGACY_TOKEN_LAST_USED_LABEL];
    // "Tomorrow" too, so that API servers whose clocks differ a little do not relabel daily.
    if (lastUsed === today || lastUsed === utcDate(now + 86_400_000)) return;
    mark(secret, today);
  }

  private validateLegacy(token: string, c: BoundClaims): SAInfo {
    const ns = c["kubernetes.io/serviceaccount/namespace"] as string | undefined;
    const secretName = c["kubernetes.io/serviceaccount/secret.name"] as string | undefined;
    const saName = c["kubernetes.io/serviceaccount/service-account.name"] as string | undefined;
    const saUID = c["kubernetes.io/serviceaccount/service-account.uid"] as string | undefined;
    const fail = (m: string) => new AuthenticationError(m);
    if (!c.sub) throw fail("sub claim is missing");
    if (!ns) throw fail("namespace claim is missing");
    if (!secretName) throw fail("secretName claim is missing");
    if (!saName) throw fail("serviceAccountName claim is missing");
    if (!saUID) throw fail("serviceAccountUID claim is missing");
    const split = splitServiceAccountUsername(c.sub);
    if (!split || split[0] !== ns || split[1] !== saName) throw fail("sub claim is invalid");
    const info: SAInfo = { namespace: ns, name: saName, uid: saUID };
    const getter = this.options.getter;
    if (getter) {
      const secret = getter.getSecret(ns, secretName);
      if (!secret || secret.metadata?.deletionTimestamp) throw fail("Token has been invalidated");
      const stored = secret.data?.token
        ? Buffer.from(secret.data.token, "base64").toString("utf8")
        : "";
      if (stored !== token) throw fail("Token does not match server's copy");
      const sa = getter.getServiceAccount(ns, saName);
      if (!sa) throw fail(notFound("serviceaccounts", saName));
      if (sa.metadata?.deletionTimestamp)
        throw fail(`ServiceAccount ${ns}/${saName} has been deleted`);
      if ((sa.metadata?.uid ?? "") !== saUID) {
        throw fail(
          `ServiceAccount UID (${sa.metadata?.uid ?? ""}) does not match claim (${saUID})`,
        );
      }
      // A token the legacy token cleaner invalidated is refused, but the attempt still counts
      // as a use: the cleaner then leaves the Secret alone for another clean-up period.
      if (secret.metadata?.labels?.[LEGACY_TOKEN_INVALID_SINCE_LABEL]) {
        this.markUsed(secret);
        throw fail(
          `the token in secret ${ns}/${secretName} for service account ${ns}/${saName} has been marked invalid. Use tokens from the TokenRequest API or manually created secret-based tokens, or remove the '${LEGACY_TOKEN_INVALID_SINCE_LABEL}' label from the secret to temporarily allow use of this token`,
        );
      }
      // Referenced from the account's `secrets`: made by the token controller, not by hand.
      if ((sa.secrets ?? []).some((ref) => ref.name === secretName)) {
        info.warnings = [AUTO_GENERATED_LEGACY_TOKEN_WARNING];
        info.auditAnnotations = {
          "authentication.k8s.io/legacy-token-autogenerated-secret": secretName,
        };
      } else {
        info.auditAnnotations = { "authentication.k8s.io/legacy-token-manual-secret": secretName };
      }
      this.markUsed(secret);
    }
    return info;
  }

  private validateBound(c: BoundClaims): SAInfo {
    const fail = (m: string) => new AuthenticationError(m);
    const now = this.now() / 1000;
    if (typeof c.nbf === "number" && now + LEEWAY_S < c.nbf)
      throw fail("service account token is not valid yet");
    if (typeof c.exp === "number" && now - LEEWAY_S > c.exp)
      throw fail("service account token has expired");
    if (typeof c.iat === "number" && now + LEEWAY_S < c.iat) {
      throw fail("service account token is issued in the future");
    }
    const k = c["kubernetes.io"] ?? {};
    const ns = k.namespace ?? "";
    const saRef = k.serviceaccount ?? {};
    const info: SAInfo = { namespace: ns, name: saRef.name ?? "", uid: saRef.uid ?? "" };
    const getter = this.options.getter;
    // Objects deleted more than the leeway ago no longer back a token.
    const before = (now - LEEWAY_S) * 1000;
    if (getter) {
      const sa = getter.getServiceAccount(ns, info.name);
      if (!sa) throw fail(notFound("serviceaccounts", info.name));
      if ((sa.metadata?.uid ?? "") !== info.uid) {
        throw fail(
          `service account UID (${sa.metadata?.uid ?? ""}) does not match claim (${info.uid})`,
        );
      }
      if (deletedBefore(sa, before))
        throw fail(`service account ${ns}/${info.name} has been deleted`);
      if (k.secret) {
        const secret = getter.getSecret(ns, k.secret.name ?? "");
        if (!secret) throw fail("service account token has been invalidated");
        if ((secret.metadata?.uid ?? "") !== k.secret.uid) {
          throw fail(
            `secret UID (${secret.metadata?.uid ?? ""}) does not match service account secret ref claim (${k.secret.uid ?? ""})`,
          );
        }
        if (deletedBefore(secret, before)) throw fail("service account token has been invalidated");
      }
      if (k.pod) {
        const pod = getter.getPod(ns, k.pod.name ?? "");
        if (!pod) throw fail("service account token has been invalidated");
        if ((pod.metadata?.uid ?? "") !== k.pod.uid) {
          throw fail(
            `pod UID (${pod.metadata?.uid ?? ""}) does not match service account pod ref claim (${k.pod.uid ?? ""})`,
          );
        }
        if (deletedBefore(pod, before)) throw fail("service account token has been invalidated");
      }
      if (k.node && !k.pod) {
        const node = getter.getNode(k.node.name ?? "");
        if (!node) throw fail("service account token has been invalidated");
        if ((node.metadata?.uid ?? "") !== k.node.uid) {
          throw fail(
            `node UID (${node.metadata?.uid ?? ""}) does not match service account node ref claim (${k.node.uid ?? ""})`,
          );
        }
        if (deletedBefore(node, before)) throw fail("service account token has been invalidated");
      }
    }
    if (k.pod) {
      info.podName = k.pod.name ?? "";
      info.podUID = k.pod.uid ?? "";
    }
    if (k.node) {
      info.nodeName = k.node.name ?? "";
      info.nodeUID = k.node.uid ?? "";
    }
    if (c.jti) info.credentialID = `JTI=${c.jti}`;
    return info;
  }
}
