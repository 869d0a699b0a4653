import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { isIP, isIPv4 } from "node:net";
import type { X509Certificate } from "node:crypto";
import {
  createCA,
  generateKeyPair,
  issueCertificate,
  loadCA,
  privateKeyPEM,
  publicKeyPEM,
  splitAltNames,
  type CertificateAuthority,
  type CertificateSpec,
  type KeyAlgorithm,
} from "./ca.js";
import {
  keyMatchesCertificate,
  keysMatch,
  loadCertificate,
  loadPrivateKey,
  loadPublicKey,
  PKIError,
  subjectAltNames,
  writeFileAtomic,
} from "./pem.js";

/** The well-known group of superusers, bound to cluster-admin by the bootstrap policy. */
export const MASTERS_GROUP = "system:masters";
export const NODES_GROUP = "system:nodes";

/** Everything the certificate set depends on besides the directory it lives in. */
export interface PKIConfig {
  certDir: string;
  /** The API server's address for other members of the cluster (an IP). */
  advertiseAddress: string;
  /** Service CIDRs; the first address of each is the `kubernetes` Service's cluster IP. */
  serviceCIDRs: string[];
  /** The cluster's DNS domain (`cluster.local`). */
  dnsDomain: string;
  /** This machine's node name: a SAN of the API server and etcd certs, CN of etcd's. */
  nodeName: string;
  /** Addresses of the node in the node certificate. */
  nodeIPs: string[];
  /** Extra names (DNS names or IPs) for the API server's serving certificate. */
  apiserverExtraSANs: string[];
  /** A shared endpoint in front of several API servers (host or host:port), also a SAN. */
  controlPlaneEndpoint?: string;
  algorithm: KeyAlgorithm;
}

type Usage = CertificateSpec["usages"][number];

/**
 * One file pair of the PKI: a CA, a certificate signed by one, or the service account key pair.
 * `name` is the phase name (`k8ts certs <name>`), `baseName` the file name without extension
 * under the cert dir, as kubeadm names them.
 */
export interface PKIItem {
  name: string;
  baseName: string;
  description: string;
  kind: "ca" | "cert" | "keypair";
  /** For certificates: the phase name of the signing CA. */
  ca?: string;
  commonName?: string;
  organizations?: string[];
  usages?: Usage[];
  altNames?: { dnsNames: string[]; ips: string[] };
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Upstream's validation of an object name that is a DNS subdomain (a node name). */
export function validateNodeName(name: string): string | undefined {
  if (name.length > 253) return `invalid node name "${name}": must be no more than 253 characters`;
  if (!DNS1123_SUBDOMAIN.test(name)) {
    return `invalid node name "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`;
  }
  return undefined;
}

function ipv6ToBigInt(ip: string): bigint {
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = ipv4ToNumber(v4[1]!);
    text =
      text.slice(0, v4.index) +
      ((n >>> 16) & 0xffff).toString(16) +
      ":" +
      (n & 0xffff).toString(16);
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function bigIntToIPv6(n: bigint): string {
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((n >> BigInt(i * 16)) & 0xffffn).toString(16));
  // The canonical text form: the longest run of zero groups (two or more) becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}

function ipv4ToNumber(ip: string): number {
  return ip.split(".").reduce((acc, o) => ((acc << 8) | Number(o)) >>> 0, 0);
}

/**
 * The first usable address of a service CIDR (`10.96.0.0/12` gives `10.96.0.1`), which the API
 * server gives the `kubernetes` Service; an error for something that is not a CIDR.
 */
export function firstServiceIP(cidr: string): string {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr.trim());
  const invalid = () => new PKIError(`invalid service CIDR "${cidr}": invalid CIDR address`);
  if (!m) throw invalid();
  const [, base, bitsText] = m;
  const bits = Number(bitsText);
  if (isIPv4(base!)) {
    if (bits > 32) throw invalid();
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    const n = ((ipv4ToNumber(base!) & mask) >>> 0) + 1;
    if (bits >= 31) throw new PKIError(`service CIDR "${cidr}" is too small to hold a service IP`);
    return [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join(".");
  }
  if (isIP(base!) === 6) {
    if (bits > 128) throw invalid();
    if (bits >= 127) throw new PKIError(`service CIDR "${cidr}" is too small to hold a service IP`);
    const mask = ((1n << BigInt(bits)) - 1n) << BigInt(128 - bits);
    return bigIntToIPv6((ipv6ToBigInt(base!) & mask) + 1n);
  }
  throw invalid();
}

/** The host's first non-internal IPv4 address, as upstream picks a default advertise address. */
export function defaultAdvertiseAddress(): string {
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return "127.0.0.1";
}

/** The host name as a node name (lower case), as the kubelet and kubeadm default it. */
export function defaultNodeName(): string {
  return os.hostname().toLowerCase();
}

function hostOf(endpoint: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(endpoint);
  if (bracketed) return bracketed[1]!;
  if (isIP(endpoint) === 6) return endpoint;
  return endpoint.replace(/:\d+$/, "");
}

/** The names of the API server's serving certificate: upstream's service names, then the rest. */
export function apiserverAltNames(c: PKIConfig): { dnsNames: string[]; ips: string[] } {
  const names = [
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    `kubernetes.default.svc.${c.dnsDomain}`,
    "localhost",
    c.nodeName,
    ...c.serviceCIDRs.map(firstServiceIP),
    c.advertiseAddress,
    "127.0.0.1",
    ...(c.controlPlaneEndpoint ? [hostOf(c.controlPlaneEndpoint)] : []),
    ...c.apiserverExtraSANs,
  ];
  return splitAltNames(names);
}

function etcdAltNames(c: PKIConfig): { dnsNames: string[]; ips: string[] } {
  return splitAltNames([c.nodeName, "localhost", c.advertiseAddress, "127.0.0.1", "::1"]);
}

/** The base name of a node's certificate and key (`kubelet-<node>.crt`). */
export function nodeBaseName(nodeName: string): string {
  return `kubelet-${nodeName}`;
}

/**
 * The whole set, CAs before what they sign. kubeadm's `init phase certs` list (CA, API server,
 * its kubelet client, front proxy, etcd, service account keys), then the client certificates
 * that kubeadm folds into its kubeconfig files and the seeds make by hand: admin, controller
 * manager, scheduler, kube-proxy and the node.
 */
export function pkiItems(c: PKIConfig): PKIItem[] {
  return [
    {
      name: "ca",
      baseName: "ca",
      kind: "ca",
      commonName: "kubernetes",
      description:
        "Generate the self-signed Kubernetes CA to provision identities for other Kubernetes components",
    },
    {
      name: "apiserver",
      baseName: "apiserver",
      kind: "cert",
      ca: "ca",
      commonName: "kube-apiserver",
      usages: ["serverAuth"],
      altNames: apiserverAltNames(c),
      description: "Generate the certificate for serving the Kubernetes API",
    },
    {
      name: "apiserver-kubelet-client",
      baseName: "apiserver-kubelet-client",
      kind: "cert",
      ca: "ca",
      commonName: "kube-apiserver-kubelet-client",
      organizations: [MASTERS_GROUP],
      usages: ["clientAuth"],
      description: "Generate the certificate for the API server to connect to kubelet",
    },
    {
      name: "front-proxy-ca",
      baseName: "front-proxy-ca",
      kind: "ca",
      commonName: "front-proxy-ca",
      description: "Generate the self-signed CA to provision identities for front proxy",
    },
    {
      name: "front-proxy-client",
      baseName: "front-proxy-client",
      kind: "cert",
      ca: "front-proxy-ca",
      commonName: "front-proxy-client",
      usages: ["clientAuth"],
      description: "Generate the certificate for the front proxy client",
    },
    {
      name: "etcd-ca",
      baseName: "etcd/ca",
      kind: "ca",
      commonName: "etcd-ca",
      description: "Generate the self-signed CA to provision identities for etcd",
    },
    {
      name: "etcd-server",
      baseName: "etcd/server",
      kind: "cert",
      ca: "etcd-ca",
      commonName: c.nodeName,
      usages: ["serverAuth", "clientAuth"],
      altNames: etcdAltNames(c),
      description: "Generate the certificate for serving etcd",
    },
    {
      name: "etcd-peer",
      baseName: "etcd/peer",
      kind: "cert",
      ca: "etcd-ca",
      commonName: c.nodeName,
      usages: ["serverAuth", "clientAuth"],
      altNames: etcdAltNames(c),
      description: "Generate the certificate for etcd nodes to communicate with each other",
    },
    {
      name: "etcd-healthcheck-client",
      baseName: "etcd/healthcheck-client",
      kind: "cert",
      ca: "etcd-ca",
      commonName: "kube-etcd-healthcheck-client",
      organizations: [MASTERS_GROUP],
      usages: ["clientAuth"],
      description: "Generate the certificate for liveness probes to healthcheck etcd",
    },
    {
      name: "apiserver-etcd-client",
      baseName: "apiserver-etcd-client",
      kind: "cert",
      ca: "etcd-ca",
      commonName: "kube-apiserver-etcd-client",
      organizations: [MASTERS_GROUP],
      usages: ["clientAuth"],
      description: "Generate the certificate the apiserver uses to access etcd",
    },
    {
      name: "sa",
      baseName: "sa",
      kind: "keypair",
      description:
        "Generate a private key for signing service account tokens along with its public key",
    },
    {
      name: "admin",
      baseName: "admin",
      kind: "cert",
      ca: "ca",
      commonName: "kubernetes-admin",
      organizations: [MASTERS_GROUP],
      usages: ["clientAuth"],
      description: "Generate the client certificate of the cluster administrator (system:masters)",
    },
    {
      name: "controller-manager",
      baseName: "controller-manager",
      kind: "cert",
      ca: "ca",
      commonName: "system:kube-controller-manager",
      usages: ["clientAuth"],
      description: "Generate the client certificate of the controller manager",
    },
    {
      name: "scheduler",
      baseName: "scheduler",
      kind: "cert",
      ca: "ca",
      commonName: "system:kube-scheduler",
      usages: ["clientAuth"],
      description: "Generate the client certificate of the scheduler",
    },
    {
      name: "kube-proxy",
      baseName: "kube-proxy",
      kind: "cert",
      ca: "ca",
      commonName: "system:kube-proxy",
      usages: ["clientAuth"],
      description: "Generate the client certificate of kube-proxy",
    },
    {
      name: "node",
      baseName: nodeBaseName(c.nodeName),
      kind: "cert",
      ca: "ca",
      commonName: `system:node:${c.nodeName}`,
      organizations: [NODES_GROUP],
      usages: ["serverAuth", "clientAuth"],
      altNames: splitAltNames([c.nodeName, ...c.nodeIPs]),
      description:
        "Generate the kubelet's certificate for --node-name (client of the API server, and its own serving certificate)",
    },
  ];
}

/** The phase names in order, for help and argument checks. */
export const phaseNames: readonly string[] = pkiItems({
  certDir: "",
  advertiseAddress: "127.0.0.1",
  serviceCIDRs: [],
  dnsDomain: "cluster.local",
  nodeName: "node",
  nodeIPs: [],
  apiserverExtraSANs: [],
  algorithm: "ECDSA-P256",
}).map((i) => i.name);

export interface EnsureOptions {
  /** Replace existing files instead of keeping them. */
  force?: boolean;
  /** One line per file pair written or kept, kubeadm's progress lines. */
  log?: (line: string) => void;
  now?: Date;
}

export function certPath(certDir: string, baseName: string): string {
  return path.join(certDir, `${baseName}.crt`);
}

export function keyPath(certDir: string, baseName: string): string {
  return path.join(certDir, `${baseName}.key`);
}

function exists(file: string): boolean {
  return fs.existsSync(file);
}

/** Go's fmt %v of a string list, which kubeadm's progress lines use. */
function goList(items: string[]): string {
  return `[${items.join(" ")}]`;
}

function writePair(certDir: string, baseName: string, certPEM: string, keyPEM: string): void {
  const certFile = certPath(certDir, baseName);
  fs.mkdirSync(path.dirname(certFile), { recursive: true, mode: 0o755 });
  writeFileAtomic(keyPath(certDir, baseName), keyPEM, 0o600);
  writeFileAtomic(certFile, certPEM, 0o644);
}

function missingNames(
  cert: X509Certificate,
  want: { dnsNames: string[]; ips: string[] },
): string[] {
  const have = subjectAltNames(cert);
  const haveIPs = new Set(have.ips.map(canonicalIP));
  return [
    ...want.dnsNames.filter((n) => !have.dns.includes(n)),
    ...want.ips.filter((ip) => !haveIPs.has(canonicalIP(ip))),
  ];
}

function canonicalIP(ip: string): string {
  return isIP(ip) === 6 ? bigIntToIPv6(ipv6ToBigInt(ip)) : ip;
}

/** What became of each item: written now, or an existing file kept. */
export interface EnsureResult {
  written: string[];
  kept: string[];
}

/**
 * Makes sure the named items exist in the cert dir, as kubeadm's certs phases do: a missing file
 * pair is generated; an existing one is loaded and checked (it parses, its key matches, it is
 * signed by its CA, a serving certificate covers the names asked for) and kept, unless `force`
 * replaces it. A certificate whose CA is not among `names` needs that CA on disk already.
 * Every problem is a `PKIError` naming the file.
 */
export async function ensurePKI(
  config: PKIConfig,
  names: readonly string[],
  opts: EnsureOptions = {},
): Promise<EnsureResult> {
  const dir = config.certDir;
  const log = opts.log ?? (() => {});
  const items = pkiItems(config);
  const byName = new Map(items.map((i) => [i.name, i]));
  for (const n of names) if (!byName.has(n)) throw new PKIError(`unknown certificate "${n}"`);
  const selected = items.filter((i) => names.includes(i.name));
  const result: EnsureResult = { written: [], kept: [] };
  const cas = new Map<string, CertificateAuthority>();

  const loadExistingCA = (item: PKIItem): CertificateAuthority => {
    const cached = cas.get(item.name);
    if (cached) return cached;
    const certFile = certPath(dir, item.baseName);
    const keyFile = keyPath(dir, item.baseName);
    if (!exists(certFile) && !exists(keyFile)) {
      throw new PKIError(
        `couldn't load the ${item.baseName} certificate authority from ${dir}: ${certFile} does not exist; run "k8ts certs ${item.name}" first`,
      );
    }
    const ca = loadCA(certFile, keyFile, { keyOptional: true, name: item.name });
    cas.set(item.name, ca);
    return ca;
  };

  for (const item of selected) {
    const certFile = certPath(dir, item.baseName);
    const keyFile = keyPath(dir, item.baseName);
    if (item.kind === "ca") {
      if (!opts.force && (exists(certFile) || exists(keyFile))) {
        const ca = loadExistingCA(item);
        warnIfExpired(ca.cert, certFile, log);
        log(
          ca.key
            ? `[certs] Using existing ${item.baseName} certificate authority`
            : `[certs] Using existing ${item.baseName} keyless certificate authority`,
        );
        result.kept.push(item.name);
        continue;
      }
      log(`[certs] Generating "${item.baseName}" certificate and key`);
      const ca = await createCA(item.commonName!, config.algorithm, opts.now);
      writePair(dir, item.baseName, ca.certPEM, ca.keyPEM);
      cas.set(item.name, ca);
      result.written.push(item.name);
      continue;
    }
    if (item.kind === "keypair") {
      const pubFile = path.join(dir, `${item.baseName}.pub`);
      if (!opts.force && exists(keyFile)) {
        const key = loadPrivateKey(keyFile);
        if (exists(pubFile)) {
          if (!keysMatch(key, loadPublicKey(pubFile))) {
            throw new PKIError(
              `the public key file ${pubFile} does not match the private key file ${keyFile}`,
            );
          }
        } else {
          fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
          const spki = key.export({ format: "pem", type: "spki" }) as string;
          writeFileAtomic(pubFile, spki, 0o644);
        }
        log(`[certs] Using the existing "${item.baseName}" key`);
        result.kept.push(item.name);
        continue;
      }
      if (!opts.force && exists(pubFile)) {
        throw new PKIError(
          `the public key file ${pubFile} exists without its private key ${keyFile}; remove it or use --force`,
        );
      }
      log(`[certs] Generating "${item.baseName}" key and public key`);
      const keys = await generateKeyPair(config.algorithm);
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
      writeFileAtomic(keyFile, privateKeyPEM(keys.privateKey), 0o600);
      writeFileAtomic(pubFile, publicKeyPEM(keys.publicKey), 0o644);
      result.written.push(item.name);
      continue;
    }

    const caItem = byName.get(item.ca!)!;
    const ca = loadExistingCA(caItem);
    if (!opts.force && (exists(certFile) || exists(keyFile))) {
      const cert = loadCertificate(certFile);
      const key = loadPrivateKey(keyFile);
      if (!keyMatchesCertificate(key, cert)) {
        throw new PKIError(
          `the private key file ${keyFile} does not match the certificate ${certFile}`,
        );
      }
      if (!cert.checkIssued(ca.cert) || !cert.verify(ca.cert.publicKey)) {
        throw new PKIError(
          `certificate ${certFile} is not signed by the ${caItem.baseName} certificate authority (${certPath(dir, caItem.baseName)}); use --force to replace it`,
        );
      }
      if (item.altNames) {
        const missing = missingNames(cert, item.altNames);
        if (missing.length > 0) {
          throw new PKIError(
            `certificate ${certFile} is not valid for ${missing.map((n) => `"${n}"`).join(", ")}; use --force to replace it`,
          );
        }
      }
      warnIfExpired(cert, certFile, log);
      log(`[certs] Using existing ${item.baseName} certificate and key on disk`);
      result.kept.push(item.name);
      continue;
    }
    if (!ca.key) {
      throw new PKIError(
        `couldn't sign the ${item.baseName} certificate: the ${caItem.baseName} certificate authority has no private key at ${keyPath(dir, caItem.baseName)}`,
      );
    }
    log(`[certs] Generating "${item.baseName}" certificate and key`);
    const issued = await issueCertificate(
      ca,
      {
        commonName: item.commonName!,
        organizations: item.organizations,
        usages: item.usages!,
        dnsNames: item.altNames?.dnsNames,
        ips: item.altNames?.ips,
      },
      config.algorithm,
      opts.now,
    );
    writePair(dir, item.baseName, issued.certPEM, issued.keyPEM);
    if (item.usages!.includes("serverAuth") && item.altNames) {
      log(
        `[certs] ${item.baseName} serving cert is signed for DNS names ${goList([...item.altNames.dnsNames].sort())} and IPs ${goList(item.altNames.ips)}`,
      );
    }
    result.written.push(item.name);
  }
  return result;
}

function warnIfExpired(cert: X509Certificate, file: string, log: (line: string) => void): void {
  const now = Date.now();
  if (now > Date.parse(cert.validTo)) {
    log(
      `[certs] WARNING: certificate ${file} expired on ${cert.validTo}; use --force to replace it`,
    );
  } else if (now < Date.parse(cert.validFrom)) {
    log(`[certs] WARNING: certificate ${file} is not valid before ${cert.validFrom}`);
  }
}
