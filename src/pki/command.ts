import path from "node:path";
import { isIP } from "node:net";
import { defineCommand } from "../cli/command.js";
import { flag } from "../cli/flags.js";
import { isKeyAlgorithm, keyAlgorithms } from "./ca.js";
import {
  defaultAdvertiseAddress,
  defaultNodeName,
  ensurePKI,
  firstServiceIP,
  phaseNames,
  pkiItems,
  validateNodeName,
  type PKIConfig,
} from "./certs.js";
import { PKIError } from "./pem.js";

export const DEFAULT_CERT_DIR = "/etc/kubernetes/pki";

export const certsFlags = {
  "cert-dir": flag.string("The path where to save and store the certificates", DEFAULT_CERT_DIR),
  "apiserver-advertise-address": flag.string(
    "The IP address the API Server will advertise it's listening on (default: this host's first non-loopback IPv4 address)",
  ),
  "apiserver-cert-extra-sans": flag.strings(
    "Optional extra Subject Alternative Names (SANs) to use for the API Server serving certificate. Can be both IP addresses and DNS names",
  ),
  "control-plane-endpoint": flag.string(
    "A stable IP address or DNS name (optionally with a port) for the control plane, added to the API Server serving certificate",
  ),
  "service-cidr": flag.string(
    "Use alternative range of IP address for service VIPs; the first address is a SAN of the API Server certificate. Same default as the API server's --service-cluster-ip-range",
    "10.0.0.0/24",
  ),
  "service-dns-domain": flag.string(
    'Use alternative domain for services, e.g. "myorg.internal"',
    "cluster.local",
  ),
  "node-name": flag.string("The node name (default: this host's name)"),
  "node-ip": flag.strings(
    "IP addresses of the node for its certificate (default: --apiserver-advertise-address)",
  ),
  "encryption-algorithm": flag.string(
    `The key type of every key generated: one of ${keyAlgorithms.join(", ")}`,
    "ECDSA-P256",
  ),
  force: flag.bool("Replace existing certificates and keys instead of keeping them"),
};

function certsHelp(): string {
  const items = pkiItems({
    certDir: "",
    advertiseAddress: "127.0.0.1",
    serviceCIDRs: [],
    dnsDomain: "cluster.local",
    nodeName: "NODE",
    nodeIPs: [],
    apiserverExtraSANs: [],
    algorithm: "ECDSA-P256",
  });
  const width = Math.max(...phaseNames.map((n) => n.length)) + 2;
  const lines = items.map((i) => `  ${i.name.padEnd(width)}${i.description}`);
  return [
    `  ${"all".padEnd(width)}Generate all certificates and keys (the default)`,
    ...lines,
  ].join("\n");
}

/**
 * `k8ts certs [phase...]`: kubeadm's `init phase certs` and the seeds' openssl steps in one
 * command, each certificate also on its own (`k8ts certs apiserver`, `k8ts certs node
 * --node-name=worker-1 --node-ip=10.0.0.11`). Existing files are checked and kept unless
 * `--force`.
 */
export const certsCommand = defineCommand({
  name: "certs",
  summary: "Generate the cluster's certificates and keys (CA, API server, etcd, clients, nodes)",
  upstream: "kubeadm init phase certs",
  flags: certsFlags,
  async run(f, args) {
    const fail = (message: string) => {
      process.stderr.write(`error: ${message}\n`);
      return 1;
    };
    if (args.includes("help")) {
      process.stdout.write(`Certificates and keys (k8ts certs [name...]):\n${certsHelp()}\n`);
      return 0;
    }
    const unknown = args.filter((a) => a !== "all" && !phaseNames.includes(a));
    if (unknown.length > 0) {
      return fail(
        `unknown certificate ${unknown.map((a) => `"${a}"`).join(", ")} for "k8ts certs"; one of: all, ${phaseNames.join(", ")}`,
      );
    }
    const names = args.length === 0 || args.includes("all") ? phaseNames : args;

    const algorithm = f["encryption-algorithm"];
    if (!isKeyAlgorithm(algorithm)) {
      return fail(
        `invalid --encryption-algorithm "${algorithm}": one of ${keyAlgorithms.join(", ")}`,
      );
    }
    const advertise = f["apiserver-advertise-address"] ?? defaultAdvertiseAddress();
    if (!isIP(advertise)) {
      return fail(
        `invalid --apiserver-advertise-address "${advertise}": not a valid textual representation of an IP address`,
      );
    }
    const nodeName = f["node-name"] ?? defaultNodeName();
    const nodeNameError = validateNodeName(nodeName);
    if (nodeNameError) return fail(nodeNameError);
    const nodeIPs = f["node-ip"].length > 0 ? f["node-ip"] : [advertise];
    const badIP = nodeIPs.find((ip) => !isIP(ip));
    if (badIP !== undefined) {
      return fail(
        `invalid --node-ip "${badIP}": not a valid textual representation of an IP address`,
      );
    }
    const serviceCIDRs = f["service-cidr"].split(",").map((c) => c.trim());
    for (const sans of f["apiserver-cert-extra-sans"]) {
      if (
        !isIP(sans) &&
        !/^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/i.test(sans)
      ) {
        return fail(
          `invalid --apiserver-cert-extra-sans "${sans}": not a valid IP address or RFC 1123 DNS name`,
        );
      }
    }
    const config: PKIConfig = {
      certDir: path.resolve(f["cert-dir"]),
      advertiseAddress: advertise,
      serviceCIDRs,
      dnsDomain: f["service-dns-domain"],
      nodeName,
      nodeIPs,
      apiserverExtraSANs: f["apiserver-cert-extra-sans"],
      controlPlaneEndpoint: f["control-plane-endpoint"],
      algorithm,
    };
    try {
      serviceCIDRs.forEach(firstServiceIP);
      process.stdout.write(`[certs] Using certificateDir folder "${config.certDir}"\n`);
      await ensurePKI(config, names, {
        force: f.force,
        log: (line) => process.stdout.write(line + "\n"),
      });
    } catch (err) {
      if (err instanceof PKIError) return fail(err.message);
      const e = err as NodeJS.ErrnoException;
      if (e.code && e.path)
        return fail(`${e.code === "EACCES" ? "permission denied" : e.message}: ${e.path}`);
      throw err;
    }
    return 0;
  },
});
