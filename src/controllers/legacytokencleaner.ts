/**
 * The legacy-serviceaccount-token-cleaner, as upstream's LegacySATokenCleaner: auto-generated
 * legacy service account tokens (Secrets of type `kubernetes.io/service-account-token` that their
 * account lists in `secrets`) that no pod mounts and nobody used for a clean-up period are first
 * labelled `kubernetes.io/legacy-token-invalid-since: <date>` (the API server then refuses them),
 * and deleted once they stayed invalid for another clean-up period.
 *
 * "Used" is the API server's `kubernetes.io/legacy-token-last-used` label; a token without it has
 * not been used since the API server began tracking, the date in the ConfigMap
 * kube-system/kube-apiserver-legacy-service-account-token-tracking. Nothing is labelled before a
 * whole clean-up period of tracking has passed. Every date is a UTC day (YYYY-MM-DD), compared as
 * text, as upstream does.
 *
 * The decisions are `legacyTokenCleanUp`, a pure function of the caches and the time; the
 * controller runs it at start and then every sync interval (24 h by default), reading the
 * tracking ConfigMap from the API server each time. It records no events (upstream records none),
 * only log lines.
 */
import type { ConfigMap, Pod, Secret, ServiceAccount } from "kubernetes-types/core/v1.js";
import { isStatusError } from "../api/status.js";
import {
  LEGACY_TOKEN_INVALID_SINCE_LABEL,
  LEGACY_TOKEN_LAST_USED_LABEL,
  LEGACY_TOKEN_TRACKING_CONFIGMAP,
  LEGACY_TOKEN_TRACKING_SINCE_KEY,
  parseUTCDate,
  utcDate,
} from "../apiserver/auth/authenticator/serviceaccount.js";
import { podSecretNames } from "../apiserver/auth/authorizer/node-graph.js";
import { sleep, type Clock } from "../client/clock.js";
import type { ControllerDescriptor } from "./context.js";
import { errorMessage } from "./context.js";
import {
  SERVICE_ACCOUNT_NAME_KEY,
  SERVICE_ACCOUNT_TOKEN_TYPE,
  SERVICE_ACCOUNT_UID_KEY,
} from "./serviceaccounttoken.js";

const DAY = 24 * 60 * 60 * 1000;
/** --legacy-service-account-token-clean-up-period's default: 365 days. */
export const DEFAULT_LEGACY_TOKEN_CLEAN_UP_PERIOD = 365 * DAY;
/** How often the cleaner looks at the tokens (upstream's DefaultCleanerSyncInterval). */
export const DEFAULT_LEGACY_TOKEN_CLEANER_SYNC_INTERVAL = DAY;

export interface LegacyTokenCleanerOptions {
  /** How long a token may go unused before it is invalidated, and then deleted (ms). */
  cleanUpPeriod?: number;
  /** Time between two looks at the tokens (ms). */
  syncInterval?: number;
  /** The clock dates and the sync interval are read from; the manager's clock by default. */
  clock?: Clock;
}

/** What the cleaner does to one Secret. */
export type LegacyTokenAction =
  | { type: "invalidate"; secret: Secret; invalidSince: string }
  | { type: "delete"; secret: Secret; lastUsed: string; invalidSince: string };

export interface LegacyTokenCleanUpInput {
  /** Milliseconds since the epoch. */
  now: number;
  cleanUpPeriod: number;
  /** The tracking ConfigMap's `since` (a UTC date). */
  trackedSince: string;
  secrets: Secret[];
  serviceAccount(namespace: string, name: string): ServiceAccount | undefined;
  pods(namespace: string): Pod[];
}

export interface LegacyTokenCleanUp {
  actions: LegacyTokenAction[];
  /** Secrets skipped for a malformed label, as log lines. */
  errors: string[];
}

const ref = (s: Secret) => `${s.metadata?.namespace ?? ""}/${s.metadata?.name ?? ""}`;

/**
 * What to invalidate and what to delete now. Throws when `trackedSince` is not a date (the
 * controller then does nothing this round, as upstream).
 */
export function legacyTokenCleanUp(input: LegacyTokenCleanUpInput): LegacyTokenCleanUp {
  const out: LegacyTokenCleanUp = { actions: [], errors: [] };
  const since = parseUTCDate(input.trackedSince);
  if (since === undefined)
    throw new Error(`error parsing trackedSince time: ${JSON.stringify(input.trackedSince)}`);
  const { now, cleanUpPeriod } = input;
  // Tracking is counted from the day after it began: the first day may have been partial.
  if (now < since + DAY + cleanUpPeriod) return out;
  const createdBefore = now - cleanUpPeriod;
  const usedBefore = utcDate(now - cleanUpPeriod);
  const mounted = new Map<string, Set<string>>();
  const mountedIn = (ns: string) => {
    let names = mounted.get(ns);
    if (!names) {
      names = new Set();
      for (const pod of input.pods(ns))
        for (const n of podSecretNames(pod.spec ?? { containers: [] })) names.add(n);
      mounted.set(ns, names);
    }
    return names;
  };
  for (const secret of input.secrets) {
    const meta = secret.metadata ?? {};
    if (secret.type !== SERVICE_ACCOUNT_TOKEN_TYPE) continue;
    const created = meta.creationTimestamp ? Date.parse(meta.creationTimestamp) : 0;
    if (!(created < createdBefore)) continue;
    if (meta.deletionTimestamp) continue;
    // Without the label the token has not been used since tracking began.
    const lastUsed = meta.labels?.[LEGACY_TOKEN_LAST_USED_LABEL];
    if (lastUsed !== undefined) {
      if (parseUTCDate(lastUsed) === undefined) {
        out.errors.push(
          `Parsing lastUsed time: parsing time ${JSON.stringify(lastUsed)} as "2006-01-02": cannot parse secret="${ref(secret)}"`,
        );
        continue;
      }
      if (lastUsed >= usedBefore) continue;
    }
    // Only tokens their account lists are known to be auto-generated.
    const ns = meta.namespace ?? "";
    const saName = meta.annotations?.[SERVICE_ACCOUNT_NAME_KEY] ?? "";
    if (!saName) continue;
    const sa = input.serviceAccount(ns, saName);
    const saUID = meta.annotations?.[SERVICE_ACCOUNT_UID_KEY] ?? "";
    if (!sa || (saUID && saUID !== sa.metadata?.uid)) continue;
    if (!(sa.secrets ?? []).some((r) => r.name === meta.name)) continue;
    if (mountedIn(ns).has(meta.name ?? "")) continue;
    const invalidSince = meta.labels?.[LEGACY_TOKEN_INVALID_SINCE_LABEL] ?? "";
    if (parseUTCDate(invalidSince) === undefined) {
      out.actions.push({ type: "invalidate", secret, invalidSince: utcDate(now) });
      continue;
    }
    if (invalidSince >= usedBefore) continue;
    out.actions.push({ type: "delete", secret, lastUsed: lastUsed ?? "", invalidSince });
  }
  return out;
}

/** The cleaner with its clean-up period, sync interval and clock chosen (tests, flags). */
export function newLegacyTokenCleanerDescriptor(
  options: LegacyTokenCleanerOptions = {},
): ControllerDescriptor {
  const syncInterval = options.syncInterval ?? DEFAULT_LEGACY_TOKEN_CLEANER_SYNC_INTERVAL;
  return {
    name: "legacy-serviceaccount-token-cleaner",
    aliases: ["legacy-serviceaccount-token-cleaner-controller"],
    serviceAccount: "legacy-service-account-token-cleaner",
    async start(ctx, signal) {
      const cleanUpPeriod =
        options.cleanUpPeriod ??
        ctx.options.legacyServiceAccountTokenCleanUpPeriod ??
        DEFAULT_LEGACY_TOKEN_CLEAN_UP_PERIOD;
      if (!(cleanUpPeriod > 0)) throw new Error(`invalid CleanUpPeriod: ${cleanUpPeriod}ms`);
      if (!(syncInterval > 0)) throw new Error(`invalid SyncInterval: ${syncInterval}ms`);
      const clock = options.clock ?? ctx.clock;
      const { client, informers } = ctx;
      const secrets = informers.informer("v1/Secret");
      const accounts = informers.informer("v1/ServiceAccount");
      const pods = informers.informer("v1/Pod");
      const configMaps = client.resource("v1/ConfigMap", "kube-system");
      const synced = await Promise.all([secrets, accounts, pods].map((i) => i.waitForSync(signal)));
      if (!synced.every(Boolean)) return;

      const evaluate = async () => {
        let trackedSince: string;
        try {
          const cm: ConfigMap = await configMaps.get(LEGACY_TOKEN_TRACKING_CONFIGMAP);
          const since = cm.data?.[LEGACY_TOKEN_TRACKING_SINCE_KEY];
          if (since === undefined) throw new Error("configMap does not have since label");
          trackedSince = since;
        } catch (err) {
          ctx.log.error(`Getting lastest possible tracked_since time: ${errorMessage(err)}`);
          return;
        }
        let plan: LegacyTokenCleanUp;
        try {
          plan = legacyTokenCleanUp({
            now: clock.now(),
            cleanUpPeriod,
            trackedSince,
            secrets: secrets.store.list() as Secret[],
            serviceAccount: (ns, name) =>
              accounts.store.getByName(ns, name) as ServiceAccount | undefined,
            pods: (ns) => pods.store.listNamespace(ns) as Pod[],
          });
        } catch (err) {
          ctx.log.error(`Getting lastest possible tracked_since time: ${errorMessage(err)}`);
          return;
        }
        for (const line of plan.errors) ctx.log.error(line);
        for (const action of plan.actions) {
          if (signal.aborted) return;
          const meta = action.secret.metadata ?? {};
          const name = meta.name ?? "";
          const handle = client.resource("v1/Secret", meta.namespace ?? "");
          if (action.type === "invalidate") {
            ctx.log.info(
              `Mark the auto-generated service account token as invalid invalidSince="${action.invalidSince}" secret="${ref(action.secret)}"`,
            );
            // The uid makes the patch fail (409) on a Secret recreated under the same name.
            try {
              await handle.patch(name, "merge", {
                apiVersion: "v1",
                kind: "Secret",
                metadata: {
                  name,
                  namespace: meta.namespace,
                  uid: meta.uid,
                  labels: { [LEGACY_TOKEN_INVALID_SINCE_LABEL]: action.invalidSince },
                },
              });
            } catch (err) {
              ctx.log.error(
                `Failed to label legacy service account token secret with invalid since date: ${errorMessage(err)}`,
              );
            }
            continue;
          }
          ctx.log.info(
            `Delete auto-generated service account token secret="${ref(action.secret)}" creationTime="${meta.creationTimestamp ?? ""}" lastUsed="${action.lastUsed}" invalidSince="${action.invalidSince}"`,
          );
          // Only the version judged: a Secret used or changed since is looked at again next time.
          try {
            await handle.delete(name, {
              preconditions: { resourceVersion: meta.resourceVersion ?? "" },
            });
          } catch (err) {
            if (isStatusError(err, "Conflict") || isStatusError(err, "NotFound")) continue;
            ctx.log.error(
              `Deleting legacy service account token secret="${ref(action.secret)}" serviceaccount="${meta.annotations?.[SERVICE_ACCOUNT_NAME_KEY] ?? ""}": ${errorMessage(err)}`,
            );
          }
        }
      };

      // As wait.Until: at once, then one interval after each round ends.
      while (!signal.aborted) {
        await evaluate();
        await sleep(clock, syncInterval, signal);
      }
    },
  };
}

/** The cleaner with upstream's defaults (365 days, looked at daily). */
export const legacyTokenCleanerDescriptor = newLegacyTokenCleanerDescriptor();
