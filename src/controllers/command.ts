/**
 * `k8ts controller-manager`: kube-controller-manager's flags and its run function.
 *
 * Where the API server is: `--master` (the seeds' insecure tutorial mode, `http://localhost:8080`)
 * and/or `--kubeconfig`; with neither, the in-cluster configuration, and failing that upstream's
 * own message ("invalid configuration: no configuration has been provided, ...").
 */

import fs from "node:fs";
import { defineCommand } from "../cli/command.js";
import { flag, type FlagValues } from "../cli/flags.js";
import {
  configFromKubeconfig,
  ConfigError,
  defaultUserAgent,
  inClusterConfig,
  mergeKubeconfigFiles,
  kubeconfigFiles,
  type RestConfig,
} from "../client/config.js";
import {
  DEFAULT_LEASE_DURATION,
  DEFAULT_RENEW_DEADLINE,
  DEFAULT_RETRY_PERIOD,
} from "../client/leaderelection.js";
import { kubernetesVersion } from "../cli/version.js";
import { klogLine, stderrLogger } from "./context.js";
import { runControllerManager, selectControllers } from "./manager.js";

const concurrent = (what: string, def: number) =>
  flag.int(
    `The number of ${what} objects that are allowed to sync concurrently. Larger number = more responsive, but more CPU (and network) load`,
    def,
  );

export const controllerManagerFlags = {
  kubeconfig: flag.string(
    "Path to kubeconfig file with authorization and master location information (the master location can be overridden by the master flag)",
  ),
  master: flag.string(
    "The address of the Kubernetes API server (overrides any value in kubeconfig)",
  ),
  controllers: flag.strings(
    "A list of controllers to enable. '*' enables all on-by-default controllers, 'foo' enables the controller named 'foo', '-foo' disables the controller named 'foo'",
    ["*"],
  ),
  "leader-elect": flag.bool(
    "Start a leader election client and gain leadership before executing the main loop. Enable this when running replicated components for high availability",
    true,
  ),
  "leader-elect-lease-duration": flag.duration(
    "The duration that non-leader candidates will wait after observing a leadership renewal until attempting to acquire leadership of a led but unrenewed leader slot",
    DEFAULT_LEASE_DURATION,
  ),
  "leader-elect-renew-deadline": flag.duration(
    "The interval between attempts by the acting master to renew a leadership slot before it stops leading. This must be less than the lease duration",
    DEFAULT_RENEW_DEADLINE,
  ),
  "leader-elect-retry-period": flag.duration(
    "The duration the clients should wait between attempting acquisition and renewal of a leadership",
    DEFAULT_RETRY_PERIOD,
  ),
  "leader-elect-resource-lock": flag.string(
    "The type of resource object that is used for locking during leader election. Supported options are 'leases'",
    "leases",
  ),
  "leader-elect-resource-name": flag.string(
    "The name of resource object that is used for locking during leader election",
    "kube-controller-manager",
  ),
  "leader-elect-resource-namespace": flag.string(
    "The namespace of resource object that is used for locking during leader election",
    "kube-system",
  ),
  "cluster-cidr": flag.string(
    "CIDR Range for Pods in cluster. Requires --allocate-node-cidrs to be true",
  ),
  "allocate-node-cidrs": flag.bool(
    "Should CIDRs for Pods be allocated and set on the cloud provider",
  ),
  "node-cidr-mask-size": flag.int("Mask size for node cidr in cluster. Default is 24 for IPv4", 0),
  "service-cluster-ip-range": flag.string(
    "CIDR Range for Services in cluster. Requires --allocate-node-cidrs to be true",
  ),
  "cluster-name": flag.string("The instance prefix for the cluster", "kubernetes"),
  "cluster-signing-cert-file": flag.string(
    "Filename containing a PEM-encoded X509 CA certificate used to issue cluster-scoped certificates",
  ),
  "cluster-signing-key-file": flag.string(
    "Filename containing a PEM-encoded RSA or ECDSA private key used to sign cluster-scoped certificates",
  ),
  "root-ca-file": flag.string(
    "If set, this root certificate authority will be included in service account's token secret. This must be a valid PEM-encoded CA bundle",
  ),
  "service-account-private-key-file": flag.string(
    "Filename containing a PEM-encoded private RSA or ECDSA key used to sign service account tokens",
  ),
  "use-service-account-credentials": flag.bool(
    "If true, use individual service account credentials for each controller",
  ),
  "node-monitor-grace-period": flag.duration(
    "Amount of time which we allow running Node to be unresponsive before marking it unhealthy",
    40_000,
  ),
  "concurrent-deployment-syncs": concurrent("deployment", 5),
  "concurrent-replicaset-syncs": concurrent("replica set", 5),
  "concurrent-rc-syncs": concurrent("replication controller", 5),
  "concurrent-namespace-syncs": concurrent("namespace", 10),
  "concurrent-serviceaccount-token-syncs": concurrent("service account token", 5),
  "concurrent-gc-syncs": concurrent("garbage collector worker", 20),
  "concurrent-service-endpoint-syncs": concurrent("service endpoint", 5),
  "concurrent-service-syncs": concurrent("service", 1),
  "concurrent-statefulset-syncs": concurrent("statefulset", 5),
  "concurrent-daemonset-syncs": concurrent("daemonset", 2),
  "concurrent-job-syncs": concurrent("job", 5),
  "concurrent-cron-job-syncs": concurrent("cron job", 5),
  "concurrent-endpoint-syncs": concurrent("endpoint", 5),
  "mirroring-concurrent-service-endpoint-syncs": concurrent("service endpoint mirroring", 5),
  "concurrent-resource-quota-syncs": concurrent("resource quota", 5),
  "concurrent-horizontal-pod-autoscaler-syncs": concurrent("horizontal pod autoscaler", 5),
  "concurrent-ttl-after-finished-syncs": concurrent("ttl-after-finished", 5),
  "legacy-service-account-token-clean-up-period": flag.duration(
    "The period of time since the last usage of an legacy service account token before it can be deleted.",
    365 * 24 * 3_600_000,
  ),
  "kube-api-qps": flag.int(
    "QPS to use while talking with the Kubernetes API server; 0 (the default here) does not throttle",
    0,
  ),
  "kube-api-burst": flag.int("Burst to use while talking with the Kubernetes API server", 30),
  "bind-address": flag.string(
    "The IP address on which to listen for the --secure-port port (accepted; k8ts serves no metrics port yet)",
    "0.0.0.0",
  ),
  "secure-port": flag.int("The port on which to serve HTTPS (accepted; not served yet)", 10257),
  "authentication-kubeconfig": flag.string(
    "kubeconfig file pointing at the 'core' kubernetes server with enough rights to create tokenreviews (accepted; not used yet)",
  ),
  "authorization-kubeconfig": flag.string(
    "kubeconfig file pointing at the 'core' kubernetes server with enough rights to create subjectaccessreviews (accepted; not used yet)",
  ),
  "client-ca-file": flag.string(
    "Client certificate authority for the serving port (accepted; not used yet)",
  ),
  "requestheader-client-ca-file": flag.string(
    "Root certificate bundle to verify client certificates of front proxies (accepted; not used yet)",
  ),
  v: flag.int("number for the log level verbosity", 0),
};

export type ControllerManagerFlags = FlagValues<typeof controllerManagerFlags>;

/**
 * The client configuration from --master/--kubeconfig (clientcmd.BuildConfigFromFlags with the
 * component's warnings): neither means in-cluster, and failing that the default rules with no
 * files, which fail with upstream's "no configuration has been provided".
 */
export function controllerManagerConfig(
  master: string | undefined,
  kubeconfig: string | undefined,
  warn: (msg: string) => void,
): RestConfig {
  const userAgent = defaultUserAgent("kube-controller-manager", kubernetesVersion.gitVersion);
  if (!master && !kubeconfig) {
    warn(
      "Neither --kubeconfig nor --master was specified.  Using the inClusterConfig.  This might not work.",
    );
    try {
      return inClusterConfig({ userAgent });
    } catch (err) {
      warn(
        `error creating inClusterConfig, falling back to default config: ${(err as Error).message}`,
      );
    }
  }
  const files = kubeconfig ? kubeconfigFiles({ kubeconfig, env: {} }) : [];
  return configFromKubeconfig(mergeKubeconfigFiles(files), {
    master,
    userAgent,
  });
}

export async function runControllerManagerCommand(
  f: ControllerManagerFlags,
  signal: AbortSignal,
): Promise<number> {
  const log = stderrLogger("controllermanager.go");
  const fail = (msg: string) => {
    process.stderr.write(klogLine("E", "run.go:72", `"command failed" err="${msg}"`));
    return 1;
  };
  let selection;
  try {
    selection = selectControllers(f.controllers);
  } catch (err) {
    return fail((err as Error).message);
  }
  let config: RestConfig;
  try {
    config = controllerManagerConfig(f.master, f.kubeconfig, (m) =>
      process.stderr.write(klogLine("W", "client_config.go:667", m)),
    );
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message);
    throw err;
  }
  if (f["kube-api-qps"] > 0) {
    config.qps = f["kube-api-qps"];
    config.burst = f["kube-api-burst"];
  }
  let rootCA: Buffer | undefined = config.ca;
  if (f["root-ca-file"]) {
    try {
      rootCA = fs.readFileSync(f["root-ca-file"]);
    } catch (err) {
      return fail(`error reading root-ca-file at ${f["root-ca-file"]}: ${(err as Error).message}`);
    }
  }
  if (f["leader-elect-resource-lock"] !== "leases")
    return fail(
      `invalid --leader-elect-resource-lock "${f["leader-elect-resource-lock"]}": only "leases" is supported`,
    );
  if (selection.missing.length)
    log.info(`Controllers not implemented by k8ts yet, skipped: ${selection.missing.join(", ")}`);
  log.info(`Version: ${kubernetesVersion.gitVersion}`);
  const ok = await runControllerManager(
    {
      config,
      controllers: selection.enabled,
      options: {
        concurrency: {
          deployment: f["concurrent-deployment-syncs"],
          replicaset: f["concurrent-replicaset-syncs"],
          rc: f["concurrent-rc-syncs"],
          namespace: f["concurrent-namespace-syncs"],
          gc: f["concurrent-gc-syncs"],
          serviceaccount: 1,
          "serviceaccount-token": f["concurrent-serviceaccount-token-syncs"],
          job: f["concurrent-job-syncs"],
          cronjob: f["concurrent-cron-job-syncs"],
          "ttl-after-finished": f["concurrent-ttl-after-finished-syncs"],
          resourcequota: f["concurrent-resource-quota-syncs"],
          horizontalpodautoscaling: f["concurrent-horizontal-pod-autoscaler-syncs"],
          daemonset: f["concurrent-daemonset-syncs"],
          statefulset: f["concurrent-statefulset-syncs"],
          endpoint: f["concurrent-endpoint-syncs"],
          endpointslice: f["concurrent-service-endpoint-syncs"],
          endpointslicemirroring: f["mirroring-concurrent-service-endpoint-syncs"],
        },
        ...(rootCA ? { rootCA } : {}),
        nodeMonitorGracePeriod: f["node-monitor-grace-period"],
        legacyServiceAccountTokenCleanUpPeriod: f["legacy-service-account-token-clean-up-period"],
        ...(f["cluster-cidr"] ? { clusterCIDR: f["cluster-cidr"] } : {}),
        allocateNodeCIDRs: f["allocate-node-cidrs"],
        ...(f["node-cidr-mask-size"] ? { nodeCIDRMaskSize: f["node-cidr-mask-size"] } : {}),
        ...(f["service-cluster-ip-range"]
          ? { serviceClusterIPRange: f["service-cluster-ip-range"] }
          : {}),
        ...(f["cluster-signing-cert-file"]
          ? { clusterSigningCertFile: f["cluster-signing-cert-file"] }
          : {}),
        ...(f["cluster-signing-key-file"]
          ? { clusterSigningKeyFile: f["cluster-signing-key-file"] }
          : {}),
        ...(f["service-account-private-key-file"]
          ? { serviceAccountPrivateKeyFile: f["service-account-private-key-file"] }
          : {}),
      },
      leaderElect: f["leader-elect"],
      leaseDuration: f["leader-elect-lease-duration"],
      renewDeadline: f["leader-elect-renew-deadline"],
      retryPeriod: f["leader-elect-retry-period"],
      leaseNamespace: f["leader-elect-resource-namespace"],
      leaseName: f["leader-elect-resource-name"],
      useServiceAccountCredentials: f["use-service-account-credentials"],
      log,
    },
    signal,
  );
  return ok ? 0 : 1;
}

export const controllerManagerCommand = defineCommand({
  name: "controller-manager",
  summary:
    "Run the controller manager (deployments, replica sets, namespaces, garbage collection, ...)",
  upstream: "kube-controller-manager",
  flags: controllerManagerFlags,
  run: (f, _args, signal) => runControllerManagerCommand(f, signal),
});
