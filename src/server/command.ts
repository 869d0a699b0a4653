import path from "node:path";
import { setMaxListeners } from "node:events";
import { defineCommand } from "../cli/command.js";
import { flag, parseFlags } from "../cli/flags.js";
import { controllerManagerFlags, runControllerManagerCommand } from "../controllers/command.js";
import { runSchedulerCommand, schedulerFlags } from "../scheduler/command.js";
import { apiserverFlags, runAPIServer } from "../apiserver/command.js";
import {
  certPath,
  defaultAdvertiseAddress,
  defaultNodeName,
  ensurePKI,
  keyPath,
} from "../pki/certs.js";
import { componentKubeconfigs, writeKubeconfigs } from "../pki/kubeconfig.js";

const DEFAULT_DATA_DIR = "/var/lib/k8ts/server";
const SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local";

/** The API server's flags, with the all-in-one's own defaults for where things live. */
const flags = {
  ...apiserverFlags,
  "data-dir": flag.string(
    "Directory for the embedded store, certificates and the admin kubeconfig",
    DEFAULT_DATA_DIR,
  ),
  "write-kubeconfig": flag.string(
    "Write the admin kubeconfig to this file (default <data-dir>/admin.kubeconfig)",
  ),
  "authorization-mode": flag.strings(
    "Ordered list of plug-ins to do authorization on secure port (comma separated)",
    ["Node", "RBAC"],
  ),
  "disable-controller-manager": flag.bool("Do not run the controller manager in this process"),
  "disable-scheduler": flag.bool("Do not run the scheduler in this process"),
  "enable-admission-plugins": flag.strings(
    "admission plugins that should be enabled in addition to default enabled ones (comma separated)",
    ["NodeRestriction"],
  ),
};

/**
 * The all-in-one control plane (k3s server): the same components a user can start one by one,
 * composed in one process, secure by default: a cluster CA and every certificate in
 * <data-dir>/pki (as `k8ts certs` makes them), client certificate and service account token
 * authentication, Node and RBAC authorization, NodeRestriction; an admin kubeconfig (client
 * certificate of `kubernetes-admin` in system:masters) and the components' kubeconfigs in the
 * data dir. Today the API server runs; the other components join as they are built.
 */
export const serverCommand = defineCommand({
  name: "server",
  summary: "Run a whole control plane in one process on the embedded store (like k3s server)",
  flags,
  async run(f, _args, signal) {
    const dataDir = f["data-dir"];
    const pki = path.join(dataDir, "pki");
    const kubeconfig = f["write-kubeconfig"] ?? path.join(dataDir, "admin.kubeconfig");
    const advertise = f["advertise-address"] ?? defaultAdvertiseAddress();
    try {
      await ensurePKI(
        {
          certDir: pki,
          advertiseAddress: advertise,
          serviceCIDRs: [f["service-cluster-ip-range"]],
          dnsDomain: "cluster.local",
          nodeName: defaultNodeName(),
          nodeIPs: [advertise],
          apiserverExtraSANs: [],
          algorithm: "ECDSA-P256",
        },
        [
          "ca",
          "apiserver",
          "apiserver-kubelet-client",
          "sa",
          "admin",
          "controller-manager",
          "scheduler",
          "kube-proxy",
        ],
        { log: (line) => process.stderr.write(`${line}\n`) },
      );
    } catch (err) {
      process.stderr.write(`Error: ${(err as Error).message}\n`);
      return 1;
    }
    const secured = {
      ...f,
      "cert-dir": pki,
      "advertise-address": advertise,
      "tls-cert-file": f["tls-cert-file"] ?? certPath(pki, "apiserver"),
      "tls-private-key-file": f["tls-private-key-file"] ?? keyPath(pki, "apiserver"),
      "client-ca-file": f["client-ca-file"] ?? certPath(pki, "ca"),
      "service-account-key-file":
        f["service-account-key-file"].length > 0
          ? f["service-account-key-file"]
          : [path.join(pki, "sa.pub")],
      "service-account-signing-key-file":
        f["service-account-signing-key-file"] ?? path.join(pki, "sa.key"),
      "service-account-issuer":
        f["service-account-issuer"].length > 0
          ? f["service-account-issuer"]
          : [SERVICE_ACCOUNT_ISSUER],
    };
    return runAPIServer(secured, signal, {
      onReady({ url }) {
        const options = {
          certDir: pki,
          kubeconfigDir: dataDir,
          server: url,
          embedCerts: true,
          force: true,
        };
        const admin = componentKubeconfigs.find((s) => s.name === "admin")!;
        writeKubeconfigs({ ...options, kubeconfigDir: path.dirname(kubeconfig) }, [
          { ...admin, fileName: path.basename(kubeconfig) },
        ]);
        writeKubeconfigs(
          options,
          componentKubeconfigs.filter((s) => s.name !== "admin"),
        );
        if (!f["disable-controller-manager"]) {
          // Every informer and loop of the components listens for the one stop signal.
          setMaxListeners(0, signal);
          const { flags: cm } = parseFlags(controllerManagerFlags, [
            `--kubeconfig=${path.join(dataDir, "controller-manager.conf")}`,
            `--root-ca-file=${certPath(pki, "ca")}`,
            `--cluster-signing-cert-file=${certPath(pki, "ca")}`,
            `--cluster-signing-key-file=${keyPath(pki, "ca")}`,
            `--service-account-private-key-file=${path.join(pki, "sa.key")}`,
            `--service-cluster-ip-range=${f["service-cluster-ip-range"]}`,
            "--use-service-account-credentials",
            "--leader-elect=false",
          ]);
          void runControllerManagerCommand(cm, signal).then((code) => {
            if (code !== 0 && !signal.aborted) {
              process.stderr.write(`k8ts server: the controller manager stopped (${code})\n`);
            }
          });
        }
        if (!f["disable-scheduler"]) {
          setMaxListeners(0, signal);
          const { flags: sched } = parseFlags(schedulerFlags, [
            `--kubeconfig=${path.join(dataDir, "scheduler.conf")}`,
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
          ]);
          void runSchedulerCommand(sched, signal).then((code) => {
            if (code !== 0 && !signal.aborted) {
              process.stderr.write(`k8ts server: the scheduler stopped (${code})\n`);
            }
          });
        }
        process.stderr.write(
          `k8ts server: ready; kubectl --kubeconfig ${kubeconfig} get namespaces\n`,
        );
      },
    });
  },
});
