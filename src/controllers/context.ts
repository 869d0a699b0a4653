/**
 * What every controller of the controller manager is given: a client (its own identity with
 * --use-service-account-credentials), the shared informers, an events recorder named after it,
 * the manager's options and a logger. A controller is a descriptor with a `start(ctx, signal)`
 * that runs until the signal aborts.
 */

import type { Client } from "../client/resources.js";
import type { SharedInformers } from "../client/informer.js";
import type { EventRecorder } from "../client/events.js";
import type { Clock } from "../client/clock.js";

export interface ControllerOptions {
  /** --concurrent-*-syncs, by controller name ("deployment", "replicaset", ...). */
  concurrency: Record<string, number>;
  /** --root-ca-file's content, else the CA the manager trusts the API server with. */
  rootCA?: Buffer;
  /** --node-monitor-grace-period, ms. */
  nodeMonitorGracePeriod?: number;
  clusterCIDR?: string;
  allocateNodeCIDRs?: boolean;
  nodeCIDRMaskSize?: number;
  serviceClusterIPRange?: string;
  clusterSigningCertFile?: string;
  clusterSigningKeyFile?: string;
  serviceAccountPrivateKeyFile?: string;
  /** --legacy-service-account-token-clean-up-period, ms. */
  legacyServiceAccountTokenCleanUpPeriod?: number;
}

export interface Logger {
  info(msg: string): void;
  error(msg: string): void;
}

export interface ControllerContext {
  /** The client of the controller (its service account with --use-service-account-credentials). */
  client: Client;
  informers: SharedInformers;
  /** An events recorder with `source.component` set to `component`. */
  recorder(component: string): EventRecorder;
  options: ControllerOptions;
  log: Logger;
  clock: Clock;
}

export interface ControllerDescriptor {
  /** The name --controllers uses ("deployment", "replicaset", "garbage-collector", ...). */
  name: string;
  /** Other names upstream accepts for it ("deployment-controller"). */
  aliases?: string[];
  /** Off unless named in --controllers (upstream's ControllersDisabledByDefault). */
  disabledByDefault?: boolean;
  /** The service account its client acts as with --use-service-account-credentials. */
  serviceAccount?: string;
  start(ctx: ControllerContext, signal: AbortSignal): Promise<void>;
}

/** klog's header: `I1123 01:09:00.123456   12345 name] message`. */
export function klogLine(severity: "I" | "W" | "E", source: string, msg: string): string {
  const d = new Date();
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  const stamp = `${pad(d.getMonth() + 1)}${pad(d.getDate())} ${pad(d.getHours())}:${pad(
    d.getMinutes(),
  )}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}000`;
  return `${severity}${stamp} ${String(process.pid).padStart(7)} ${source}] ${msg}\n`;
}

export function stderrLogger(source: string): Logger {
  return {
    info: (msg) => process.stderr.write(klogLine("I", source, msg)),
    error: (msg) => process.stderr.write(klogLine("E", source, msg)),
  };
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
