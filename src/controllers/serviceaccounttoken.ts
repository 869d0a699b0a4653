/**
 * The service account token controller ("serviceaccount-token"), for legacy token Secrets as
 * upstream 1.32 keeps them: it never creates a token Secret itself (that ended in 1.24), but a
 * Secret of type `kubernetes.io/service-account-token` that names an account in the annotation
 * `kubernetes.io/service-account.name` gets
 *
 * - `data.token`: a JWT signed with --service-account-private-key-file, issuer
 *   `kubernetes/serviceaccount`, naming the namespace, the Secret and the account (name, uid);
 * - `data["ca.crt"]`: the root CA (--root-ca-file, else the CA the manager trusts), kept equal
 *   to it;
 * - `data.namespace`, and the annotation `kubernetes.io/service-account.uid`.
 *
 * A token Secret whose account does not exist (or is another account of the same name, by the
 * uid annotation) is deleted, and so are an account's token Secrets when the account goes. When
 * a token Secret goes, its name is dropped from its account's `secrets` list.
 *
 * Two work queues as upstream's: accounts keyed by namespace, name and uid; Secrets by
 * namespace, name, uid and the account's name and uid from the annotations, so that a deleted
 * object's key still says what it was. A key that keeps failing is dropped after ten retries.
 * The controller acts with the manager's own credentials (upstream's "tokens-controller" root
 * client), not a service account of its own.
 */

import { createPrivateKey, type KeyObject } from "node:crypto";
import fs from "node:fs";
import type { Secret, ServiceAccount } from "kubernetes-types/core/v1.js";
import { isStatusError } from "../api/status.js";
import { issueLegacyServiceAccountToken } from "../apiserver/auth/authenticator/serviceaccount.js";
import { osErrorText } from "../apiserver/auth/authenticator/tokenfile.js";
import type { Clock } from "../client/clock.js";
import type { Informer, SharedInformers } from "../client/informer.js";
import type { Client } from "../client/resources.js";
import { WorkQueue } from "../client/workqueue.js";
import type { ControllerDescriptor, Logger } from "./context.js";
import { errorMessage } from "./context.js";

export const SERVICE_ACCOUNT_TOKEN_TYPE = "kubernetes.io/service-account-token";
export const SERVICE_ACCOUNT_NAME_KEY = "kubernetes.io/service-account.name";
export const SERVICE_ACCOUNT_UID_KEY = "kubernetes.io/service-account.uid";
export const TOKEN_KEY = "token";
export const ROOT_CA_KEY = "ca.crt";
export const NAMESPACE_KEY = "namespace";

/** Upstream's default --concurrent-serviceaccount-token-syncs. */
export const DEFAULT_TOKEN_SYNCS = 5;
/** Failures of one key before it is dropped (until its object changes again). */
const MAX_RETRIES = 10;

// ---- pure decisions ----

export interface AccountRef {
  name: string;
  uid: string;
}

/**
 * Whether `secret` is a token of the account `sa`: the type, the name annotation equal to the
 * account's name, and the uid annotation, when set, equal to its uid.
 */
export function isServiceAccountToken(secret: Secret, sa: AccountRef): boolean {
  if (secret.type !== SERVICE_ACCOUNT_TOKEN_TYPE) return false;
  const annotations = secret.metadata?.annotations ?? {};
  if ((annotations[SERVICE_ACCOUNT_NAME_KEY] ?? "") !== sa.name) return false;
  const uid = annotations[SERVICE_ACCOUNT_UID_KEY] ?? "";
  return uid === "" || uid === sa.uid;
}

/** The account if it exists and, when `uid` is given, is that one. */
export function matchingServiceAccount(
  sa: ServiceAccount | undefined,
  uid: string,
): ServiceAccount | undefined {
  if (!sa) return undefined;
  return uid === "" || uid === (sa.metadata?.uid ?? "") ? sa : undefined;
}

/** What a token Secret lacks. */
export interface TokenNeeds {
  /** `ca.crt` differs from the root CA (never when there is no root CA). */
  ca: boolean;
  namespace: boolean;
  token: boolean;
}

function dataBytes(secret: Secret, key: string): Buffer {
  return Buffer.from(secret.data?.[key] ?? "", "base64");
}

export function secretUpdateNeeded(secret: Secret, rootCA: Buffer | undefined): TokenNeeds {
  return {
    ca: !!rootCA && rootCA.length > 0 && !dataBytes(secret, ROOT_CA_KEY).equals(rootCA),
    namespace: dataBytes(secret, NAMESPACE_KEY).length === 0,
    token: dataBytes(secret, TOKEN_KEY).length === 0,
  };
}

export function needsAnything(n: TokenNeeds): boolean {
  return n.ca || n.namespace || n.token;
}

export type SecretDecision =
  | { action: "none" }
  /** Its account does not exist (or is not the one the uid annotation names). */
  | { action: "delete" }
  | { action: "populate"; needs: TokenNeeds };

/** What to do with an existing token Secret, given its account (matched by name and uid). */
export function decideSecret(
  secret: Secret,
  sa: ServiceAccount | undefined,
  rootCA: Buffer | undefined,
): SecretDecision {
  if (!sa) return { action: "delete" };
  const needs = secretUpdateNeeded(secret, rootCA);
  return needsAnything(needs) ? { action: "populate", needs } : { action: "none" };
}

/**
 * The Secret to write back: `live` with what it lacks filled in (`token` is the freshly signed
 * token, needed when `needs.token`) and the account's name and uid annotations.
 */
export function populatedSecret(
  live: Secret,
  sa: ServiceAccount,
  needs: TokenNeeds,
  rootCA: Buffer | undefined,
  token?: string,
): Secret {
  const next = structuredClone(live);
  const meta = (next.metadata ??= {});
  const data = (next.data ??= {});
  if (needs.ca && rootCA) data[ROOT_CA_KEY] = rootCA.toString("base64");
  if (needs.namespace) data[NAMESPACE_KEY] = Buffer.from(meta.namespace ?? "").toString("base64");
  if (needs.token) {
    if (!token) throw new Error("a token is needed to populate the secret");
    data[TOKEN_KEY] = Buffer.from(token).toString("base64");
  }
  meta.annotations = {
    ...meta.annotations,
    [SERVICE_ACCOUNT_NAME_KEY]: sa.metadata?.name ?? "",
    [SERVICE_ACCOUNT_UID_KEY]: sa.metadata?.uid ?? "",
  };
  return next;
}

/**
 * The account without `secretName` in its `secrets`, or undefined when nothing is to change
 * (another account by uid, or no such reference).
 */
export function withoutSecretReference(
  sa: ServiceAccount,
  saUID: string,
  secretName: string,
): ServiceAccount | undefined {
  if (saUID !== "" && saUID !== (sa.metadata?.uid ?? "")) return undefined;
  const refs = sa.secrets ?? [];
  if (!refs.some((r) => r.name === secretName)) return undefined;
  const next = structuredClone(sa);
  next.secrets = refs.filter((r) => r.name !== secretName);
  return next;
}

// ---- queue keys ----

export interface ServiceAccountKey {
  namespace: string;
  name: string;
  uid: string;
}

export interface SecretKey {
  namespace: string;
  name: string;
  uid: string;
  saName: string;
  saUID: string;
}

export function serviceAccountKey(sa: ServiceAccount): string {
  const m = sa.metadata ?? {};
  return JSON.stringify([m.namespace ?? "", m.name ?? "", m.uid ?? ""]);
}

export function parseServiceAccountKey(key: string): ServiceAccountKey {
  const [namespace = "", name = "", uid = ""] = JSON.parse(key) as string[];
  return { namespace, name, uid };
}

export function secretKey(secret: Secret): string {
  const m = secret.metadata ?? {};
  return JSON.stringify([
    m.namespace ?? "",
    m.name ?? "",
    m.uid ?? "",
    m.annotations?.[SERVICE_ACCOUNT_NAME_KEY] ?? "",
    m.annotations?.[SERVICE_ACCOUNT_UID_KEY] ?? "",
  ]);
}

export function parseSecretKey(key: string): SecretKey {
  const [namespace = "", name = "", uid = "", saName = "", saUID = ""] = JSON.parse(
    key,
  ) as string[];
  return { namespace, name, uid, saName, saUID };
}

// ---- the signing key ----

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

/**
 * --service-account-private-key-file: the first RSA or ECDSA private key in the file, with
 * upstream's errors (`error reading key for service account token controller: ...`).
 */
export function loadServiceAccountPrivateKey(file: string): KeyObject {
  const prefix = "error reading key for service account token controller";
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`${prefix}: open ${file}: ${osErrorText(err as NodeJS.ErrnoException)}`);
  }
  for (const m of text.matchAll(PEM_BLOCK)) {
    if (!m[1]!.includes("PRIVATE KEY")) continue;
    try {
      const key = createPrivateKey(m[0]);
      if (key.asymmetricKeyType === "rsa" || key.asymmetricKeyType === "ec") return key;
    } catch {
      // not a usable key: try the next block
    }
  }
  throw new Error(
    `${prefix}: error reading private key file ${file}: data does not contain a valid RSA or ECDSA private key`,
  );
}

// ---- the controller ----

export interface TokensControllerOptions {
  client: Client;
  informers: SharedInformers;
  key: KeyObject;
  rootCA?: Buffer;
  workers?: number;
  log: Logger;
  clock?: Clock;
}

const secretRef = (ns: string, name: string) => `secret="${ns}/${name}"`;
const accountRef = (ns: string, name: string) => `serviceaccount="${ns}/${name}"`;

export class TokensController {
  private readonly accounts: Informer<ServiceAccount>;
  private readonly secrets: Informer<Secret>;
  private readonly accountQueue: WorkQueue<string>;
  private readonly secretQueue: WorkQueue<string>;

  constructor(private readonly o: TokensControllerOptions) {
    this.accounts = o.informers.informer("v1/ServiceAccount");
    this.secrets = o.informers.informer("v1/Secret", {
      fieldSelector: `type=${SERVICE_ACCOUNT_TOKEN_TYPE}`,
    });
    const clock = o.clock ? { clock: o.clock } : {};
    this.accountQueue = new WorkQueue<string>(clock);
    this.secretQueue = new WorkQueue<string>(clock);
  }

  /** Runs until `signal` aborts; the informers run under the shared informers' `start`. */
  async run(signal: AbortSignal): Promise<void> {
    const onAccount = (sa: ServiceAccount) => this.accountQueue.add(serviceAccountKey(sa));
    const onSecret = (s: Secret) => {
      if (s.type === SERVICE_ACCOUNT_TOKEN_TYPE) this.secretQueue.add(secretKey(s));
    };
    const unregister = [
      this.accounts.addEventHandler({
        add: onAccount,
        update: (_old, sa) => onAccount(sa),
        delete: onAccount,
      }),
      this.secrets.addEventHandler({
        add: onSecret,
        update: (_old, s) => onSecret(s),
        delete: onSecret,
      }),
    ];
    try {
      if (!(await this.accounts.waitForSync(signal))) return;
      if (!(await this.secrets.waitForSync(signal))) return;
      const workers: Promise<void>[] = [];
      for (let i = 0; i < Math.max(1, this.o.workers ?? DEFAULT_TOKEN_SYNCS); i++) {
        workers.push(this.worker(this.accountQueue, (k) => this.syncServiceAccount(k), signal));
        workers.push(this.worker(this.secretQueue, (k) => this.syncSecret(k), signal));
      }
      if (!signal.aborted)
        await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
      await Promise.all([
        this.accountQueue.shutDownWithDrain(),
        this.secretQueue.shutDownWithDrain(),
      ]);
      await Promise.all(workers);
    } finally {
      this.accountQueue.shutDown();
      this.secretQueue.shutDown();
      for (const u of unregister) u();
    }
  }

  /** One worker of `queue`: `sync` answers whether to retry the key. */
  private async worker(
    queue: WorkQueue<string>,
    sync: (key: string) => Promise<boolean>,
    signal: AbortSignal,
  ): Promise<void> {
    for (;;) {
      const { item: key, shutdown } = await queue.get();
      if (shutdown) return;
      if (signal.aborted) {
        queue.done(key);
        return;
      }
      let retry: boolean;
      try {
        retry = await sync(key);
      } catch (err) {
        this.o.log.error(`syncing ${key} failed: ${errorMessage(err)}`);
        retry = true;
      }
      if (retry && queue.numRequeues(key) < MAX_RETRIES) queue.addRateLimited(key);
      else queue.forget(key);
      queue.done(key);
    }
  }

  /** The account from the cache, else (with `fetchOnCacheMiss`) from the API server. */
  private async getServiceAccount(
    ns: string,
    name: string,
    uid: string,
    fetchOnCacheMiss: boolean,
  ): Promise<ServiceAccount | undefined> {
    const cached = matchingServiceAccount(this.accounts.store.getByName(ns, name), uid);
    if (cached || !fetchOnCacheMiss) return cached;
    try {
      const live = await this.o.client.resource("v1/ServiceAccount", ns).get(name);
      return matchingServiceAccount(live, uid);
    } catch (err) {
      if (isStatusError(err, "NotFound")) return undefined;
      throw err;
    }
  }

  /** A deleted (or replaced) account takes its token Secrets with it. */
  async syncServiceAccount(key: string): Promise<boolean> {
    const { namespace, name, uid } = parseServiceAccountKey(key);
    let sa: ServiceAccount | undefined;
    try {
      sa = await this.getServiceAccount(namespace, name, uid, false);
    } catch (err) {
      this.o.log.error(
        `Getting service account ${accountRef(namespace, name)}: ${errorMessage(err)}`,
      );
      return true;
    }
    if (sa) return false;
    const tokens = this.secrets.store
      .listNamespace(namespace)
      .filter((s) => isServiceAccountToken(s, { name, uid }));
    let retry = false;
    for (const t of tokens) {
      try {
        retry =
          (await this.deleteToken(namespace, t.metadata?.name ?? "", t.metadata?.uid ?? "")) ||
          retry;
      } catch (err) {
        retry = true;
        this.o.log.error(
          `Deleting serviceaccount tokens ${accountRef(namespace, name)}: ${errorMessage(err)}`,
        );
      }
    }
    return retry;
  }

  async syncSecret(key: string): Promise<boolean> {
    const k = parseSecretKey(key);
    const cached = this.secrets.store.getByName(k.namespace, k.name);
    const secret = cached && (k.uid === "" || cached.metadata?.uid === k.uid) ? cached : undefined;
    if (!secret) {
      // Gone: its account, if it still exists, no longer lists it.
      let sa: ServiceAccount | undefined;
      try {
        sa = await this.getServiceAccount(k.namespace, k.saName, k.saUID, false);
      } catch {
        return false;
      }
      if (sa) await this.removeSecretReference(k);
      return false;
    }
    let sa: ServiceAccount | undefined;
    try {
      sa = await this.getServiceAccount(k.namespace, k.saName, k.saUID, true);
    } catch (err) {
      this.o.log.error(
        `Getting service account ${accountRef(k.namespace, k.saName)}: ${errorMessage(err)}`,
      );
      return true;
    }
    const decision = decideSecret(secret, sa, this.o.rootCA);
    try {
      if (decision.action === "delete") return await this.deleteToken(k.namespace, k.name, k.uid);
      if (decision.action === "populate") return await this.generateTokenIfNeeded(sa!, secret);
    } catch (err) {
      this.o.log.error(
        `${decision.action === "delete" ? "Deleting" : "Populating"} serviceaccount token ${secretRef(
          k.namespace,
          k.name,
        )} ${accountRef(k.namespace, k.saName)}: ${errorMessage(err)}`,
      );
      return true;
    }
    return false;
  }

  /** Deletes a token Secret (that uid only); answers whether to retry. */
  private async deleteToken(ns: string, name: string, uid: string): Promise<boolean> {
    try {
      await this.o.client
        .resource("v1/Secret", ns)
        .delete(name, uid ? { preconditions: { uid } } : {});
    } catch (err) {
      // Gone already, or another Secret of that name now: nothing to do.
      if (isStatusError(err, "NotFound") || isStatusError(err, "Conflict")) return false;
      throw err;
    }
    return false;
  }

  /**
   * Fills in what the Secret lacks, on a fresh copy; when the cache is behind the server the
   * update event that follows brings the Secret back.
   */
  private async generateTokenIfNeeded(sa: ServiceAccount, cached: Secret): Promise<boolean> {
    const ns = cached.metadata?.namespace ?? "";
    const secrets = this.o.client.resource("v1/Secret", ns);
    let live: Secret;
    try {
      live = await secrets.get(cached.metadata?.name ?? "");
    } catch (err) {
      if (isStatusError(err, "NotFound")) return false;
      throw err;
    }
    if (live.metadata?.resourceVersion !== cached.metadata?.resourceVersion) return false;
    const needs = secretUpdateNeeded(live, this.o.rootCA);
    if (!needsAnything(needs)) return false;
    const token = needs.token
      ? await issueLegacyServiceAccountToken({
          key: this.o.key,
          namespace: ns,
          serviceAccount: { name: sa.metadata?.name ?? "", uid: sa.metadata?.uid ?? "" },
          secretName: live.metadata?.name ?? "",
        })
      : undefined;
    try {
      await secrets.update(populatedSecret(live, sa, needs, this.o.rootCA, token));
    } catch (err) {
      // Changed meanwhile (its update event follows) or gone: nothing to retry.
      if (isStatusError(err, "Conflict") || isStatusError(err, "NotFound")) return false;
      throw err;
    }
    return false;
  }

  /** Drops a deleted Secret from its account's `secrets`, retrying conflicts as upstream. */
  private async removeSecretReference(k: SecretKey): Promise<void> {
    const accounts = this.o.client.resource("v1/ServiceAccount", k.namespace);
    for (let attempt = 0; ; attempt++) {
      try {
        const sa = await accounts.get(k.saName);
        const next = withoutSecretReference(sa, k.saUID, k.name);
        if (next) await accounts.update(next);
        return;
      } catch (err) {
        if (isStatusError(err, "NotFound")) return;
        if (!isStatusError(err, "Conflict") || attempt >= 9) {
          this.o.log.error(
            `Removing secret reference ${secretRef(k.namespace, k.name)} from ${accountRef(
              k.namespace,
              k.saName,
            )}: ${errorMessage(err)}`,
          );
          return;
        }
        // Upstream's RemoveTokenBackoff: 100 ms with up to 100 % jitter.
        await new Promise((r) => setTimeout(r, 100 * (1 + Math.random())));
      }
    }
  }
}

export const serviceAccountTokenDescriptor: ControllerDescriptor = {
  name: "serviceaccount-token",
  aliases: ["serviceaccount-token-controller"],
  async start(ctx, signal) {
    const file = ctx.options.serviceAccountPrivateKeyFile;
    if (!file) {
      ctx.log.info(
        `Controller is disabled because there is no private key controller="serviceaccount-token-controller"`,
      );
      return;
    }
    const controller = new TokensController({
      client: ctx.client,
      informers: ctx.informers,
      key: loadServiceAccountPrivateKey(file),
      ...(ctx.options.rootCA ? { rootCA: ctx.options.rootCA } : {}),
      workers: ctx.options.concurrency["serviceaccount-token"] ?? DEFAULT_TOKEN_SYNCS,
      log: ctx.log,
      clock: ctx.clock,
    });
    await controller.run(signal);
  },
};
