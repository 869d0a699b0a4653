import path from "node:path";
import { isIP } from "node:net";
import { defineCommand } from "../cli/command.js";
import { flag } from "../cli/flags.js";
import { defaultAdvertiseAddress, validateNodeName } from "./certs.js";
import { DEFAULT_CERT_DIR } from "./command.js";
import {
  componentKubeconfigs,
  DEFAULT_CLUSTER_NAME,
  kubeletKubeconfig,
  nodesWithCertificates,
  writeKubeconfigs,
  type KubeconfigSpec,
} from "./kubeconfig.js";
import { PKIError } from "./pem.js";

export const kubeconfigFlags = {
  "cert-dir": flag.string("The path where certificates are stored", DEFAULT_CERT_DIR),
  "kubeconfig-dir": flag.string(
    "The path where to save the kubeconfig files (default: the parent of --cert-dir, /etc/kubernetes for the default)",
  ),
  server: flag.string(
    "The URL of the API server in the kubeconfig files (default: https://<--control-plane-endpoint or --apiserver-advertise-address>:<--apiserver-bind-port>)",
  ),
  "apiserver-advertise-address": flag.string(
    "The IP address the API Server is listening on (default: this host's first non-loopback IPv4 address)",
  ),
  "apiserver-bind-port": flag.int("Port for the API Server", 6443),
  "control-plane-endpoint": flag.string(
    "A stable IP address or DNS name for the control plane (host or host:port), preferred over --apiserver-advertise-address",
  ),
  "cluster-name": flag.string("The cluster name in the kubeconfig files", DEFAULT_CLUSTER_NAME),
  "embed-certs": flag.bool(
    "Embed the CA, client certificate and key in the files; with --embed-certs=false they refer to the files in --cert-dir",
    true,
  ),
  "node-name": flag.string(
    "Write the kubelet's kubeconfig of this node only, as kubelet.conf (default: kubelet-<node>.conf for every node certificate in --cert-dir)",
  ),
  force: flag.bool("Replace existing kubeconfig files instead of keeping them"),
};

const phases = ["admin", "controller-manager", "scheduler", "kube-proxy", "kubelet"] as const;

/** `host:port` for a URL: IPv6 addresses in brackets; a host that has a port keeps it. */
function hostPort(host: string, port: number): string {
  if (isIP(host) === 6) return `[${host}]:${port}`;
  if (/^\[.*\]:\d+$/.test(host) || /^[^:]+:\d+$/.test(host)) return host;
  return `${host}:${port}`;
}

/**
 * `k8ts kubeconfig [admin|controller-manager|scheduler|kube-proxy|kubelet ...]`: kubeadm's
 * kubeconfig phase over the client certificates `k8ts certs` made; the files kubectl and every
 * component read with `--kubeconfig`.
 */
export const kubeconfigCommand = defineCommand({
  name: "kubeconfig",
  summary: "Write kubeconfig files for the admin and each component from the certificates",
  upstream: "kubeadm init phase kubeconfig",
  flags: kubeconfigFlags,
  async run(f, args) {
    const fail = (message: string) => {
      process.stderr.write(`error: ${message}\n`);
      return 1;
    };
    const unknown = args.filter((a) => a !== "all" && !(phases as readonly string[]).includes(a));
    if (unknown.length > 0) {
      return fail(
        `unknown kubeconfig ${unknown.map((a) => `"${a}"`).join(", ")} for "k8ts kubeconfig"; one of: all, ${phases.join(", ")}`,
      );
    }
    const selected: readonly string[] = args.length === 0 || args.includes("all") ? phases : args;
    const certDir = path.resolve(f["cert-dir"]);
    const kubeconfigDir = path.resolve(f["kubeconfig-dir"] ?? path.dirname(certDir));

    let server = f.server;
    if (server === undefined) {
      const host =
        f["control-plane-endpoint"] ??
        f["apiserver-advertise-address"] ??
        defaultAdvertiseAddress();
      server = `https://${hostPort(host, f["apiserver-bind-port"])}`;
    }
    let url: URL;
    try {
      url = new URL(server);
    } catch {
      return fail(`invalid --server "${server}": not a URL`);
    }
    if ((url.protocol !== "https:" && url.protocol !== "http:") || url.hostname === "") {
      return fail(`invalid --server "${server}": the URL must be https://host[:port]`);
    }

    const specs: KubeconfigSpec[] = componentKubeconfigs.filter((s) => selected.includes(s.name));
    if (selected.includes("kubelet")) {
      const nodeName = f["node-name"];
      if (nodeName !== undefined) {
        const bad = validateNodeName(nodeName);
        if (bad) return fail(bad);
        specs.push(kubeletKubeconfig(nodeName, "kubelet.conf"));
      } else {
        const nodes = nodesWithCertificates(certDir);
        if (nodes.length === 0) {
          return fail(
            `no node certificate (kubelet-<node>.crt) in ${certDir}; run "k8ts certs node --node-name=<node>" first`,
          );
        }
        specs.push(...nodes.map((n) => kubeletKubeconfig(n)));
      }
    }

    process.stdout.write(`[kubeconfig] Using kubeconfig folder "${kubeconfigDir}"\n`);
    try {
      writeKubeconfigs(
        {
          certDir,
          kubeconfigDir,
          server,
          clusterName: f["cluster-name"],
          embedCerts: f["embed-certs"],
          force: f.force,
          log: (line) => process.stdout.write(line + "\n"),
        },
        specs,
      );
    } catch (err) {
      if (err instanceof PKIError) return fail(err.message);
      const e = err as NodeJS.ErrnoException;
      if (e.code && e.path) return fail(`${e.message}`);
      throw err;
    }
    return 0;
  },
});
