/**
 * The controller manager: the controllers chosen by --controllers, sharing one set of informers
 * and one events broadcaster, run while this process leads (Lease kube-system/
 * kube-controller-manager with upstream's timings) or at once without leader election.
 *
 * `--controllers` follows upstream: `*` enables every controller that is on by default, `name`
 * enables one, `-name` disables one; names of upstream controllers that k8ts does not run yet
 * are accepted and reported at start.
 */

import { setMaxListeners } from "node:events";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import type { RestConfig } from "../client/config.js";
import { waitForAPIServer } from "../client/health.js";
import { realClock, type Clock } from "../client/clock.js";
import { EventBroadcaster } from "../client/events.js";
import { SharedInformers } from "../client/informer.js";
import { LeaderElector } from "../client/leaderelection.js";
import { Client } from "../client/resources.js";
import { isStatusError } from "../api/status.js";
import type {
  ControllerContext,
  ControllerDescriptor,
  ControllerOptions,
  Logger,
} from "./context.js";
import { errorMessage } from "./context.js";
import { bootstrapSignerDescriptor, tokenCleanerDescriptor } from "./bootstrap.js";
import { cronJobDescriptor } from "./cronjob.js";
import { csrApprovingDescriptor, csrCleanerDescriptor } from "./csrapproving.js";
import { csrSigningDescriptor } from "./csrsigning.js";
import { deploymentDescriptor } from "./deployment.js";
import { daemonSetDescriptor } from "./daemonset.js";
import { disruptionDescriptor } from "./disruption.js";
import { endpointsDescriptor } from "./endpoints.js";
import { endpointSliceDescriptor } from "./endpointslice.js";
import { endpointSliceMirroringDescriptor } from "./endpointslicemirroring.js";
import { garbageCollectorDescriptor } from "./garbagecollector.js";
import { hpaDescriptor } from "./hpa.js";
import { jobDescriptor } from "./job.js";
import { newLegacyTokenCleanerDescriptor } from "./legacytokencleaner.js";
import { namespaceDescriptor } from "./namespace.js";
import { nodeIpamDescriptor } from "./nodeipam.js";
import { nodeLifecycleDescriptor } from "./nodelifecycle.js";
import { podGCDescriptor } from "./podgc.js";
import { pvcProtectionDescriptor, pvProtectionDescriptor } from "./protection.js";
import { replicaSetDescriptor, replicationControllerDescriptor } from "./replicaset.js";
import { resourceQuotaDescriptor } from "./resourcequota.js";
import { rootCACertPublisherDescriptor, serviceAccountDescriptor } from "./serviceaccount.js";
import { serviceAccountTokenDescriptor } from "./serviceaccounttoken.js";
import { statefulSetDescriptor } from "./statefulset.js";
import { taintEvictionDescriptor } from "./tainteviction.js";
import { ttlDescriptor } from "./ttl.js";
import { ttlAfterFinishedDescriptor } from "./ttlafterfinished.js";

/** The controllers k8ts runs, in upstream's start order (NewControllerDescriptors). */
export const CONTROLLERS: readonly ControllerDescriptor[] = [
  serviceAccountTokenDescriptor,
  endpointsDescriptor,
  endpointSliceDescriptor,
  endpointSliceMirroringDescriptor,
  replicationControllerDescriptor,
  podGCDescriptor,
  resourceQuotaDescriptor,
  namespaceDescriptor,
  serviceAccountDescriptor,
  garbageCollectorDescriptor,
  daemonSetDescriptor,
  jobDescriptor,
  deploymentDescriptor,
  replicaSetDescriptor,
  hpaDescriptor,
  disruptionDescriptor,
  statefulSetDescriptor,
  cronJobDescriptor,
  csrSigningDescriptor,
  csrApprovingDescriptor,
  csrCleanerDescriptor,
  ttlDescriptor,
  bootstrapSignerDescriptor,
  tokenCleanerDescriptor,
  nodeIpamDescriptor,
  nodeLifecycleDescriptor,
  taintEvictionDescriptor,
  pvcProtectionDescriptor,
  pvProtectionDescriptor,
  ttlAfterFinishedDescriptor,
  rootCACertPublisherDescriptor,
  newLegacyTokenCleanerDescriptor(),
];

/**
 * Upstream's other controller names (with their 1.32 aliases), accepted by --controllers. Those
 * marked false are off by default upstream.
 */
const NOT_YET: Record<string, boolean> = {
  service: true,
  "service-lb-controller": true,
  route: true,
  "node-route-controller": true,
  "cloud-node-lifecycle": true,
  "cloud-node-lifecycle-controller": true,
  "persistentvolume-binder": true,
  "persistentvolume-binder-controller": true,
  attachdetach: true,
  "persistentvolume-attach-detach-controller": true,
  "persistentvolume-expander": true,
  "persistentvolume-expander-controller": true,
  "clusterrole-aggregation": true,
  "clusterrole-aggregation-controller": true,
  "ephemeral-volume": true,
  "ephemeral-volume-controller": true,
  "validatingadmissionpolicy-status": true,
  "validatingadmissionpolicy-status-controller": true,
  resourceclaim: false,
  "resourceclaim-controller": false,
  "storage-version-gc": false,
  "storageversion-garbage-collector-controller": false,
};

function namesOf(d: ControllerDescriptor): string[] {
  return [d.name, ...(d.aliases ?? [])];
}

/** Upstream's IsControllerEnabled for one controller. */
export function isControllerEnabled(
  names: string[],
  disabledByDefault: boolean,
  flags: string[],
): boolean {
  let star = false;
  for (const f of flags) {
    if (names.includes(f)) return true;
    if (f.startsWith("-") && names.includes(f.slice(1))) return false;
    if (f === "*") star = true;
  }
  return star && !disabledByDefault;
}

/**
 * The controllers --controllers enables, and the enabled upstream ones k8ts lacks. Throws for a
 * name no one knows.
 */
export function selectControllers(flags: string[]): {
  enabled: ControllerDescriptor[];
  missing: string[];
} {
  for (const f of flags) {
    const name = f.startsWith("-") ? f.slice(1) : f;
    if (f === "*") continue;
    if (CONTROLLERS.some((d) => namesOf(d).includes(name)) || name in NOT_YET) continue;
    throw new Error(`"${name}" is not in the list of known controllers`);
  }
  const enabled = CONTROLLERS.filter((d) =>
    isControllerEnabled(namesOf(d), !!d.disabledByDefault, flags),
  );
  const missing: string[] = [];
  for (const [name, onByDefault] of Object.entries(NOT_YET)) {
    if (name.endsWith("-controller") && name !== "taint-eviction-controller") continue;
    if (isControllerEnabled([name, `${name}-controller`], !onByDefault, flags)) missing.push(name);
  }
  return { enabled, missing };
}

export interface ManagerOptions {
  config: RestConfig;
  controllers: ControllerDescriptor[];
  options: ControllerOptions;
  leaderElect: boolean;
  leaseDuration: number;
  renewDeadline: number;
  retryPeriod: number;
  leaseNamespace: string;
  leaseName: string;
  useServiceAccountCredentials: boolean;
  log: Logger;
  clock?: Clock;
}

/**
 * A client acting as kube-system/<account>, with a bound token asked for through TokenRequest
 * and renewed before it expires (upstream's --use-service-account-credentials).
 */
class ServiceAccountClients {
  private readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "k8ts-cm-tokens-"));
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly root: Client,
    private readonly config: RestConfig,
    private readonly log: Logger,
  ) {}

  private async token(account: string): Promise<{ token: string; expiresIn: number }> {
    const sas = this.root.resource("v1/ServiceAccount", "kube-system");
    try {
      await sas.create({ metadata: { name: account } });
    } catch (err) {
      if (!isStatusError(err, "AlreadyExists")) throw err;
    }
    const review = await sas.subresource<{
      status?: { token?: string; expirationTimestamp?: string };
    }>("POST", account, "token", {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { expirationSeconds: 3600 },
    });
    const token = review.status?.token ?? "";
    const exp = Date.parse(review.status?.expirationTimestamp ?? "");
    return { token, expiresIn: Number.isFinite(exp) ? exp - Date.now() : 3600_000 };
  }

  async clientFor(account: string): Promise<Client> {
    const file = path.join(this.dir, account);
    const { token, expiresIn } = await this.token(account);
    fs.writeFileSync(file, token, { mode: 0o600 });
    const renew = (after: number) => {
      const t = setTimeout(() => {
        this.token(account)
          .then((r) => {
            fs.writeFileSync(file, r.token, { mode: 0o600 });
            renew(r.expiresIn * 0.8);
          })
          .catch((err: unknown) => {
            this.log.error(`renewing the token of ${account}: ${errorMessage(err)}`);
            renew(10_000);
          });
      }, after);
      t.unref();
      this.timers.push(t);
    };
    renew(expiresIn * 0.8);
    const own: RestConfig = { ...this.config, tokenFile: file };
    delete own.cert;
    delete own.key;
    delete own.token;
    delete own.username;
    delete own.password;
    return new Client(own);
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs the controllers until `signal` aborts (or leadership is lost). */
async function runControllers(o: ManagerOptions, root: Client, signal: AbortSignal): Promise<void> {
  const clock = o.clock ?? realClock;
  // Every controller, informer and worker listens for the end of leadership.
  setMaxListeners(0, signal);
  const informers = new SharedInformers(root, {
    onError: (err) => o.log.error(`informer: ${errorMessage(err)}`),
  });
  const broadcasters: EventBroadcaster[] = [];
  const clients: Client[] = [];
  const sa = o.useServiceAccountCredentials
    ? new ServiceAccountClients(root, o.config, o.log)
    : undefined;
  const running: Promise<void>[] = [];
  try {
    for (const d of o.controllers) {
      let client = root;
      if (sa && d.serviceAccount) {
        try {
          client = await sa.clientFor(d.serviceAccount);
          clients.push(client);
        } catch (err) {
          o.log.error(`Error starting "${d.name}": ${errorMessage(err)}`);
          continue;
        }
      }
      const broadcaster = new EventBroadcaster(client);
      broadcasters.push(broadcaster);
      const ctx: ControllerContext = {
        client,
        informers,
        recorder: (component) => broadcaster.newRecorder(component),
        options: o.options,
        log: o.log,
        clock,
      };
      o.log.info(`Starting controller "${d.name}"`);
      running.push(
        d.start(ctx, signal).catch((err: unknown) => {
          o.log.error(`controller "${d.name}" stopped: ${errorMessage(err)}`);
        }),
      );
    }
    running.push(informers.start(signal));
    await Promise.all(running);
  } finally {
    await Promise.all(broadcasters.map((b) => b.shutdown()));
    for (const c of clients) c.close();
    sa?.close();
  }
}

/**
 * The manager's main loop: waits for the API server, then runs the controllers, under leader
 * election unless disabled. Answers false when leadership was lost (upstream exits then).
 */
export async function runControllerManager(
  o: ManagerOptions,
  signal: AbortSignal,
): Promise<boolean> {
  const root = new Client(o.config);
  try {
    await waitForAPIServer(
      root,
      (m) => o.log.error(`Failed to reach the API server: ${m}`),
      signal,
    );
    if (signal.aborted) return true;
    if (!o.leaderElect) {
      await runControllers(o, root, signal);
      return true;
    }
    const identity = `${os.hostname()}_${randomUUID()}`;
    const broadcaster = new EventBroadcaster(root);
    let led = false;
    const elector = new LeaderElector({
      client: root,
      namespace: o.leaseNamespace,
      name: o.leaseName,
      identity,
      leaseDuration: o.leaseDuration,
      renewDeadline: o.renewDeadline,
      retryPeriod: o.retryPeriod,
      recorder: broadcaster.newRecorder("kube-controller-manager"),
      onStartedLeading: async (leading) => {
        led = true;
        o.log.info(`successfully acquired lease ${o.leaseNamespace}/${o.leaseName}`);
        await runControllers(o, root, leading);
      },
      onNewLeader: (holder) => {
        if (holder && holder !== identity) o.log.info(`new leader elected: ${holder}`);
      },
      onError: (err) => o.log.error(`leader election: ${errorMessage(err)}`),
      ...(o.clock ? { clock: o.clock } : {}),
    });
    o.log.info(
      `attempting to acquire leader lease ${o.leaseNamespace}/${o.leaseName} as ${identity}...`,
    );
    await elector.start(signal);
    await broadcaster.shutdown();
    if (signal.aborted) return true;
    if (led) o.log.error("leaderelection lost");
    return !led;
  } finally {
    root.close();
  }
}
