/**
 * `k8ts scheduler`: kube-scheduler's flags and its run function.
 *
 * The API server is found as upstream's scheduler finds it: --master and/or --kubeconfig (else
 * the configuration file's clientConnection.kubeconfig); with neither, the in-cluster
 * configuration, and failing that upstream's "invalid configuration: no configuration has been
 * provided, ...". The --leader-elect-* flags given on the command line override the
 * configuration file's leaderElection, as upstream's.
 */
import fs from "node:fs";
import type { Server } from "node:https";
import { defineCommand } from "../cli/command.js";
import { flag, type FlagValues } from "../cli/flags.js";
import { kubernetesVersion } from "../cli/version.js";
import {
  configFromKubeconfig,
  ConfigError as ClientConfigError,
  defaultUserAgent,
  inClusterConfig,
  kubeconfigFiles,
  mergeKubeconfigFiles,
  type RestConfig,
} from "../client/config.js";
import { klogLine, stderrLogger } from "../controllers/context.js";
import {
  ConfigError,
  defaultConfiguration,
  parseDuration,
  parseKubeSchedulerConfiguration,
  type KubeSchedulerConfiguration,
} from "./config.js";
import { runScheduler } from "./run.js";
import { startSecureServing } from "./serving.js";

export const schedulerFlags = {
  config: flag.string("The path to the configuration file."),
  kubeconfig: flag.string(
    "DEPRECATED: path to kubeconfig file with authorization and master location information. This parameter is ignored if a config file is specified in --config.",
  ),
  master: flag.string(
    "The address of the Kubernetes API server (overrides any value in kubeconfig)",
  ),
  "leader-elect": flag.bool(
    "Start a leader election client and gain leadership before executing the main loop. Enable this when running replicated components for high availability.",
    true,
  ),
  "leader-elect-lease-duration": flag.duration(
    "The duration that non-leader candidates will wait after observing a leadership renewal until attempting to acquire leadership of a led but unrenewed leader slot. (default 15s)",
  ),
  "leader-elect-renew-deadline": flag.duration(
    "The interval between attempts by the acting master to renew a leadership slot before it stops leading. This must be less than the lease duration. (default 10s)",
  ),
  "leader-elect-retry-period": flag.duration(
    "The duration the clients should wait between attempting acquisition and renewal of a leadership. (default 2s)",
  ),
  "leader-elect-resource-lock": flag.string(
    "The type of resource object that is used for locking during leader election. Supported options are 'leases'. (default \"leases\")",
  ),
  "leader-elect-resource-name": flag.string(
    'The name of resource object that is used for locking during leader election. (default "kube-scheduler")',
  ),
  "leader-elect-resource-namespace": flag.string(
    'The namespace of resource object that is used for locking during leader election. (default "kube-system")',
  ),
  "bind-address": flag.string(
    "The IP address on which to listen for the --secure-port port.",
    "0.0.0.0",
  ),
  "secure-port": flag.int(
    "The port on which to serve HTTPS with authentication and authorization. If 0, don't serve HTTPS at all.",
    10259,
  ),
  "tls-cert-file": flag.string(
    "File containing the default x509 Certificate for HTTPS. If not given, a self-signed certificate is made in memory.",
  ),
  "tls-private-key-file": flag.string(
    "File containing the default x509 private key matching --tls-cert-file.",
  ),
  "authentication-kubeconfig": flag.string(
    "kubeconfig file pointing at the 'core' kubernetes server with enough rights to create tokenreviews (accepted; the health endpoints need none)",
  ),
  "authorization-kubeconfig": flag.string(
    "kubeconfig file pointing at the 'core' kubernetes server with enough rights to create subjectaccessreviews (accepted; the health endpoints need none)",
  ),
  "client-ca-file": flag.string(
    "Client certificate authority for the secure port (accepted; not used yet)",
  ),
  "requestheader-client-ca-file": flag.string(
    "Root certificate bundle to verify client certificates of front proxies (accepted; not used yet)",
  ),
  v: flag.int("number for the log level verbosity", 0),
};

export type SchedulerFlags = FlagValues<typeof schedulerFlags>;

/** The configuration file (or the defaults) with the command line's leader election flags over it. */
export function schedulerConfiguration(f: SchedulerFlags): KubeSchedulerConfiguration {
  let cfg: KubeSchedulerConfiguration;
  if (f.config) {
    let text: string;
    try {
      text = fs.readFileSync(f.config, "utf8");
    } catch (err) {
      throw new ConfigError(
        `open ${f.config}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file or directory" : (err as Error).message}`,
      );
    }
    cfg = parseKubeSchedulerConfiguration(text);
  } else {
    cfg = defaultConfiguration();
  }
  const le = cfg.leaderElection;
  if (!f["leader-elect"]) le.leaderElect = false;
  const dur = (ms: number) => `${ms}ms`;
  if (f["leader-elect-lease-duration"] !== undefined)
    le.leaseDuration = dur(f["leader-elect-lease-duration"]);
  if (f["leader-elect-renew-deadline"] !== undefined)
    le.renewDeadline = dur(f["leader-elect-renew-deadline"]);
  if (f["leader-elect-retry-period"] !== undefined)
    le.retryPeriod = dur(f["leader-elect-retry-period"]);
  if (f["leader-elect-resource-lock"]) le.resourceLock = f["leader-elect-resource-lock"];
  if (f["leader-elect-resource-name"]) le.resourceName = f["leader-elect-resource-name"];
  if (f["leader-elect-resource-namespace"])
    le.resourceNamespace = f["leader-elect-resource-namespace"];
  if (!f.config && f.kubeconfig) cfg.clientConnection.kubeconfig = f.kubeconfig;
  return cfg;
}

/**
 * The client configuration as upstream's createKubeConfig: the kubeconfig file with --master over
 * its server; neither means in-cluster, and failing that the empty rules' error.
 */
export function schedulerRestConfig(
  master: string | undefined,
  kubeconfig: string,
  warn: (msg: string) => void,
): RestConfig {
  const userAgent = defaultUserAgent("kube-scheduler", kubernetesVersion.gitVersion);
  if (!master && !kubeconfig) {
    warn(
      "Neither --kubeconfig nor --master was specified. Using default API client. This might not work",
    );
    try {
      return inClusterConfig({ userAgent });
    } catch {
      // fall through to the empty rules, which name what is missing
    }
  }
  const files = kubeconfig ? kubeconfigFiles({ kubeconfig, env: {} }) : [];
  return configFromKubeconfig(mergeKubeconfigFiles(files), { master, userAgent });
}

export async function runSchedulerCommand(f: SchedulerFlags, signal: AbortSignal): Promise<number> {
  const log = stderrLogger("server.go");
  const fail = (msg: string) => {
    process.stderr.write(klogLine("E", "run.go:72", `"command failed" err="${msg}"`));
    return 1;
  };
  let cfg: KubeSchedulerConfiguration;
  try {
    cfg = schedulerConfiguration(f);
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message);
    throw err;
  }
  const le = cfg.leaderElection;
  if (le.resourceLock !== "leases")
    return fail(
      `invalid --leader-elect-resource-lock "${le.resourceLock}": only "leases" is supported`,
    );
  let config: RestConfig;
  try {
    config = schedulerRestConfig(f.master, cfg.clientConnection.kubeconfig, (m) =>
      process.stderr.write(klogLine("W", "client_config.go:659", m)),
    );
  } catch (err) {
    if (err instanceof ClientConfigError) return fail(err.message);
    throw err;
  }
  // qps < 0 turns the limiter off, as client-go's.
  if (cfg.clientConnection.qps > 0) {
    config.qps = cfg.clientConnection.qps;
    config.burst = cfg.clientConnection.burst;
  }
  log.info(`Starting Kubernetes Scheduler version="${kubernetesVersion.gitVersion}"`);
  let serving: Server | undefined;
  if (f["secure-port"] > 0) {
    try {
      serving = await startSecureServing({
        bindAddress: f["bind-address"],
        port: f["secure-port"],
        ...(f["tls-cert-file"] ? { certFile: f["tls-cert-file"] } : {}),
        ...(f["tls-private-key-file"] ? { keyFile: f["tls-private-key-file"] } : {}),
      });
      log.info(`Serving securely on ${f["bind-address"]}:${f["secure-port"]}`);
    } catch (err) {
      return fail(
        `failed to listen on ${f["bind-address"]}:${f["secure-port"]}: ${(err as Error).message}`,
      );
    }
  }
  try {
    const ok = await runScheduler(
      {
        config,
        schedulerConfig: cfg,
        leaderElect: le.leaderElect,
        leaseDuration: parseDuration(le.leaseDuration),
        renewDeadline: parseDuration(le.renewDeadline),
        retryPeriod: parseDuration(le.retryPeriod),
        leaseNamespace: le.resourceNamespace,
        leaseName: le.resourceName,
        log,
      },
      signal,
    );
    return ok ? 0 : 1;
  } catch (err) {
    return fail((err as Error).message);
  } finally {
    serving?.close();
    serving?.closeAllConnections();
  }
}

export const schedulerCommand = defineCommand({
  name: "scheduler",
  summary: "Run the scheduler (binds pending pods to nodes; priority and preemption)",
  upstream: "kube-scheduler",
  flags: schedulerFlags,
  run: (f, _args, signal) => runSchedulerCommand(f, signal),
});
