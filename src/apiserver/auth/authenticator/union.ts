/**
 * How authenticators combine, as kube-apiserver builds its chain (pkg/kubeapiserver/authenticator
 * and apiserver's request/union, bearertoken, group and anonymous packages):
 *
 *   union(x509, bearer(union(token file, service accounts, bootstrap tokens)))
 *     -> add system:authenticated
 *     -> fail-on-error union with anonymous (when anonymous requests are allowed)
 *
 * so that a request without credentials is anonymous, but one with a bad token or a certificate
 * from another CA is refused (401), never treated as anonymous.
 *
 * Each step returns synchronously when every authenticator it calls does (the common case: a
 * client certificate checked once per connection, a cached service account token).
 */
import {
  ALL_AUTHENTICATED,
  ALL_UNAUTHENTICATED,
  ANONYMOUS,
  ANONYMOUS_USER,
  AuthenticationError,
  type AuthRequest,
  type Authenticator,
  type TokenAuthenticator,
  type TokenResult,
  type UserInfo,
} from "../types.js";
import { aggregateMessage } from "../util.js";

type Maybe<T> = T | Promise<T>;

function isPromise<T>(v: Maybe<T>): v is Promise<T> {
  return typeof (v as Promise<T>)?.then === "function";
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Tries each authenticator in order: the first that names a user wins; errors are collected and
 * only reported (as one AuthenticationError) when none succeeds. With `failOnError`, the first
 * error ends the search.
 */
export class UnionAuthenticator implements Authenticator {
  constructor(
    private readonly authenticators: readonly Authenticator[],
    private readonly failOnError = false,
  ) {}

  authenticate(req: AuthRequest): Maybe<UserInfo | null> {
    return this.from(req, 0, []);
  }

  private from(req: AuthRequest, start: number, errors: string[]): Maybe<UserInfo | null> {
    for (let i = start; i < this.authenticators.length; i++) {
      let r: Maybe<UserInfo | null>;
      try {
        r = this.authenticators[i]!.authenticate(req);
      } catch (err) {
        if (this.failOnError) throw err;
        errors.push(errorMessage(err));
        continue;
      }
      if (isPromise(r)) {
        return r.then(
          (user) => user ?? this.from(req, i + 1, errors),
          (err: unknown) => {
            if (this.failOnError) throw err;
            errors.push(errorMessage(err));
            return this.from(req, i + 1, errors);
          },
        );
      }
      if (r) return r;
    }
    if (errors.length > 0) throw new AuthenticationError(aggregateMessage(errors));
    return null;
  }
}

/** Tries token authenticators in order, as upstream's token union (errors collected). */
export class UnionTokenAuthenticator implements TokenAuthenticator {
  constructor(private readonly authenticators: readonly TokenAuthenticator[]) {}

  authenticateToken(token: string, audiences?: string[]): Maybe<TokenResult | null> {
    return this.from(token, audiences, 0, []);
  }

  private from(
    token: string,
    audiences: string[] | undefined,
    start: number,
    errors: string[],
  ): Maybe<TokenResult | null> {
    for (let i = start; i < this.authenticators.length; i++) {
      let r: Maybe<TokenResult | null>;
      try {
        r = this.authenticators[i]!.authenticateToken(token, audiences);
      } catch (err) {
        errors.push(errorMessage(err));
        continue;
      }
      if (isPromise(r)) {
        return r.then(
          (res) => res ?? this.from(token, audiences, i + 1, errors),
          (err: unknown) => {
            errors.push(errorMessage(err));
            return this.from(token, audiences, i + 1, errors);
          },
        );
      }
      if (r) return r;
    }
    if (errors.length > 0) throw new AuthenticationError(aggregateMessage(errors));
    return null;
  }
}

/**
 * Wraps a token authenticator that knows nothing of audiences (token file, bootstrap tokens):
 * when audiences are asked for (TokenReview), its tokens are good only for the API server's own
 * audiences (upstream's WrapAudienceAgnosticToken).
 */
export function audienceAgnostic(
  auth: TokenAuthenticator,
  apiAudiences: readonly string[],
): TokenAuthenticator {
  return {
    authenticateToken(token, audiences) {
      if (!audiences) return auth.authenticateToken(token);
      const auds = apiAudiences.filter((a) => audiences.includes(a));
      if (auds.length === 0) return null;
      const withAuds = (r: TokenResult | null) => (r ? { ...r, audiences: auds } : null);
      const r = auth.authenticateToken(token);
      return isPromise(r) ? r.then(withAuds) : withAuds(r);
    },
  };
}

/** The bearer token of a request's Authorization header, as upstream reads it; undefined if none. */
export function bearerToken(headers: AuthRequest["headers"]): string | undefined {
  const raw = headers.authorization;
  const auth = (Array.isArray(raw) ? raw[0] : raw)?.trim();
  if (!auth) return undefined;
  const parts = auth.split(" ");
  if (parts.length < 2 || parts[0]!.toLowerCase() !== "bearer") return undefined;
  const token = parts[1]!;
  return token === "" ? undefined : token;
}

/**
 * `Authorization: Bearer <token>`: a token no token authenticator recognises is an error
 * ("invalid bearer token"), never an anonymous request.
 */
export class BearerTokenAuthenticator implements Authenticator {
  constructor(private readonly tokens: TokenAuthenticator) {}

  authenticate(req: AuthRequest): Maybe<UserInfo | null> {
    const token = bearerToken(req.headers);
    if (token === undefined) return null;
    const r = this.tokens.authenticateToken(token, req.audiences);
    const done = (res: TokenResult | null) => {
      if (!res) throw new AuthenticationError("invalid bearer token");
      if (res.warnings && req.warnings) req.warnings.push(...res.warnings);
      if (res.auditAnnotations && req.auditAnnotations)
        Object.assign(req.auditAnnotations, res.auditAnnotations);
      return res.user;
    };
    return isPromise(r) ? r.then(done) : done(r);
  }
}

/** Adds `system:authenticated` to every authenticated user (upstream's AuthenticatedGroupAdder). */
export function withAuthenticatedGroup(user: UserInfo): UserInfo {
  if (user.username === ANONYMOUS_USER) return user;
  for (const g of user.groups) {
    if (g === ALL_AUTHENTICATED || g === ALL_UNAUTHENTICATED) return user;
  }
  return { ...user, groups: [...user.groups, ALL_AUTHENTICATED] };
}

export class AuthenticatedGroupAdder implements Authenticator {
  constructor(private readonly inner: Authenticator) {}

  authenticate(req: AuthRequest): Maybe<UserInfo | null> {
    const r = this.inner.authenticate(req);
    if (isPromise(r)) return r.then((u) => (u ? withAuthenticatedGroup(u) : null));
    return r ? withAuthenticatedGroup(r) : null;
  }
}

/**
 * Everyone is `system:anonymous` in `system:unauthenticated` (upstream's anonymous authenticator);
 * with `paths`, only requests for those paths (`--anonymous-auth` with conditions).
 */
export class AnonymousAuthenticator implements Authenticator {
  private readonly paths: ReadonlySet<string> | undefined;

  constructor(paths?: readonly string[]) {
    this.paths = paths && paths.length > 0 ? new Set(paths) : undefined;
  }

  authenticate(req: AuthRequest): UserInfo | null {
    if (this.paths && !this.paths.has(req.path ?? "")) return null;
    return ANONYMOUS;
  }
}

export interface RequestAuthenticatorConfig {
  /** `--client-ca-file`. */
  x509?: Authenticator;
  /** In upstream's order: token file, service account tokens, bootstrap tokens. */
  tokens?: TokenAuthenticator[];
  /** `--anonymous-auth` (upstream default true); an array limits it to those paths. */
  anonymous?: boolean | string[];
}

/**
 * The API server's request authenticator. `authenticate` returns the user (anonymous when
 * allowed and no credentials were sent), or null when the request must be refused with 401
 * (no credentials and no anonymous access); it throws AuthenticationError for bad credentials.
 */
export function newRequestAuthenticator(config: RequestAuthenticatorConfig): {
  authenticator: Authenticator;
  /** The bearer token part alone, for TokenReview. */
  tokens: TokenAuthenticator | undefined;
} {
  const parts: Authenticator[] = [];
  if (config.x509) parts.push(config.x509);
  let tokens: TokenAuthenticator | undefined;
  if (config.tokens && config.tokens.length > 0) {
    tokens =
      config.tokens.length === 1 ? config.tokens[0]! : new UnionTokenAuthenticator(config.tokens);
    parts.push(new BearerTokenAuthenticator(tokens));
  }
  let auth: Authenticator = new AuthenticatedGroupAdder(
    parts.length === 1 ? parts[0]! : new UnionAuthenticator(parts),
  );
  const anon = config.anonymous ?? true;
  if (anon !== false) {
    auth = new UnionAuthenticator(
      [auth, new AnonymousAuthenticator(anon === true ? undefined : anon)],
      true,
    );
  }
  return { authenticator: auth, tokens };
}

export interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  audiences?: string[];
  error?: string;
}

/**
 * TokenReview's status for a token (spec.token), as upstream's tokenreview REST: the token
 * authenticators with the review's audiences (or the API server's). An empty token is the
 * caller's 400 ("token is required for TokenReview in authentication").
 */
export async function tokenReviewStatus(
  tokens: TokenAuthenticator | undefined,
  token: string,
  audiences: string[] | undefined,
  apiAudiences: string[],
): Promise<TokenReviewStatus> {
  if (!tokens) return {};
  const auds = audiences && audiences.length > 0 ? audiences : apiAudiences;
  const status: TokenReviewStatus = { authenticated: false };
  let res: TokenResult | null = null;
  try {
    res = await tokens.authenticateToken(token, auds.length > 0 ? auds : undefined);
  } catch (err) {
    status.error = errorMessage(err);
  }
  if (!res) {
    if (!status.error) status.error = "invalid bearer token";
    return status;
  }
  const user = withAuthenticatedGroup(res.user);
  status.authenticated = true;
  status.user = { username: user.username, groups: user.groups, extra: user.extra ?? {} };
  if (user.uid) status.user.uid = user.uid;
  if (res.audiences) status.audiences = res.audiences;
  return status;
}
