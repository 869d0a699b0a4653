import fs from "node:fs";
import path from "node:path";
import type { X509Certificate } from "node:crypto";
import YAML from "yaml";
import { formatKubeconfig, type Kubeconfig, type KubeconfigUser } from "../client/kubeconfig.js";
import { certPath, keyPath, nodeBaseName, validateNodeName } from "./certs.js";
import {
  keyMatchesCertificate,
  loadCertificate,
  loadPrivateKey,
  PKIError,
  writeFileAtomic,
} from "./pem.js";

/** kubeadm's cluster name in every kubeconfig it writes. */
export const DEFAULT_CLUSTER_NAME = "kubernetes";

/**
 * One kubeconfig file: who it is for (the user name is the client certificate's CN, as upstream
 * names users), the certificate under the cert dir, and the file name under the kubeconfig dir.
 */
export interface KubeconfigSpec {
  /** Phase name (`k8ts kubeconfig <name>`). */
  name: string;
  fileName: string;
  user: string;
  /** Base name of the client certificate and key in the cert dir (`admin` for admin.crt). */
  certBaseName: string;
  /** The certs phase that makes the certificate, for hints. */
  certsPhase: string;
}

export const componentKubeconfigs: readonly KubeconfigSpec[] = [
  {
    name: "admin",
    fileName: "admin.conf",
    user: "kubernetes-admin",
    certBaseName: "admin",
    certsPhase: "admin",
  },
  {
    name: "controller-manager",
    fileName: "controller-manager.conf",
    user: "system:kube-controller-manager",
    certBaseName: "controller-manager",
    certsPhase: "controller-manager",
  },
  {
    name: "scheduler",
    fileName: "scheduler.conf",
    user: "system:kube-scheduler",
    certBaseName: "scheduler",
    certsPhase: "scheduler",
  },
  {
    name: "kube-proxy",
    fileName: "kube-proxy.conf",
    user: "system:kube-proxy",
    certBaseName: "kube-proxy",
    certsPhase: "kube-proxy",
  },
];

/** The kubelet's kubeconfig for a node: `kubelet.conf` (kubeadm's name) or `kubelet-<node>.conf`. */
export function kubeletKubeconfig(nodeName: string, fileName?: string): KubeconfigSpec {
  return {
    name: "kubelet",
    fileName: fileName ?? `kubelet-${nodeName}.conf`,
    user: `system:node:${nodeName}`,
    certBaseName: nodeBaseName(nodeName),
    certsPhase: `node --node-name=${nodeName}`,
  };
}

/** The nodes that have a certificate in the cert dir (`kubelet-<node>.crt`), sorted. */
export function nodesWithCertificates(certDir: string): string[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(certDir);
  } catch {
    return [];
  }
  return entries
    .map((f) => /^kubelet-(.+)\.crt$/.exec(f)?.[1])
    .filter((n): n is string => n !== undefined && validateNodeName(n) === undefined)
    .sort();
}

export interface KubeconfigOptions {
  certDir: string;
  kubeconfigDir: string;
  server: string;
  clusterName?: string;
  /** Inline the certificates and key (`*-data`); otherwise refer to the files by absolute path. */
  embedCerts: boolean;
  force?: boolean;
  log?: (line: string) => void;
}

function loadClientPair(
  certDir: string,
  spec: KubeconfigSpec,
  ca: X509Certificate,
  caFile: string,
): { certFile: string; keyFile: string } {
  const certFile = certPath(certDir, spec.certBaseName);
  const keyFile = keyPath(certDir, spec.certBaseName);
  if (!fs.existsSync(certFile)) {
    throw new PKIError(
      `the client certificate of ${spec.user} is missing: ${certFile} does not exist; run "k8ts certs ${spec.certsPhase}" first`,
    );
  }
  const cert = loadCertificate(certFile);
  const key = loadPrivateKey(keyFile);
  if (!keyMatchesCertificate(key, cert)) {
    throw new PKIError(
      `the private key file ${keyFile} does not match the certificate ${certFile}`,
    );
  }
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
    throw new PKIError(
      `certificate ${certFile} is not signed by the certificate authority ${caFile}`,
    );
  }
  return { certFile, keyFile };
}

/** The kubeconfig document for one spec; the CA and client files are read and checked. */
export function buildKubeconfig(
  opts: KubeconfigOptions,
  spec: KubeconfigSpec,
): { config: Kubeconfig; caPEM: Buffer } {
  const cluster = opts.clusterName ?? DEFAULT_CLUSTER_NAME;
  const caFile = certPath(opts.certDir, "ca");
  const ca = loadCertificate(caFile);
  if (!ca.ca) throw new PKIError(`certificate ${caFile} is not a CA`);
  const caPEM = fs.readFileSync(caFile);
  const { certFile, keyFile } = loadClientPair(opts.certDir, spec, ca, caFile);
  const user: KubeconfigUser = opts.embedCerts
    ? {
        "client-certificate-data": fs.readFileSync(certFile).toString("base64"),
        "client-key-data": fs.readFileSync(keyFile).toString("base64"),
      }
    : { "client-certificate": certFile, "client-key": keyFile };
  const context = `${spec.user}@${cluster}`;
  const config: Kubeconfig = {
    clusters: [
      {
        name: cluster,
        cluster: opts.embedCerts
          ? { "certificate-authority-data": caPEM.toString("base64"), server: opts.server }
          : { "certificate-authority": caFile, server: opts.server },
      },
    ],
    contexts: [{ name: context, context: { cluster, user: spec.user } }],
    "current-context": context,
    users: [{ name: spec.user, user }],
  };
  return { config, caPEM };
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Parses and checks a kubeconfig file as far as writing one needs: a YAML mapping whose current
 * context names a context and cluster that exist. Problems are `PKIError`s naming the file.
 */
export function parseKubeconfig(
  text: string,
  file: string,
): { doc: Obj; cluster: Obj; clusterName: string } {
  const fail = (why: string) => new PKIError(`failed to load kubeconfig file ${file}: ${why}`);
  let doc: unknown;
  try {
    doc = YAML.parse(text, { prettyErrors: true });
  } catch (err) {
    throw fail((err as Error).message.split("\n")[0]!);
  }
  if (doc === null || doc === undefined) throw fail("the file is empty");
  if (!isObj(doc)) throw fail("not a kubeconfig: the document is not a mapping");
  if (doc.kind !== undefined && doc.kind !== "Config") {
    throw fail(`not a kubeconfig: kind is ${JSON.stringify(doc.kind)}, not "Config"`);
  }
  const list = (key: string): Obj[] => {
    const v = doc[key] ?? [];
    if (!Array.isArray(v) || !v.every(isObj)) throw fail(`"${key}" is not a list of named entries`);
    return v;
  };
  const clusters = list("clusters");
  const contexts = list("contexts");
  list("users");
  const current = doc["current-context"];
  if (typeof current !== "string" || current === "") throw fail("no current-context is set");
  const ctx = contexts.find((c) => c.name === current);
  if (!ctx || !isObj(ctx.context))
    throw fail(`context "${current}" (the current-context) does not exist`);
  const clusterName = ctx.context.cluster;
  const entry = clusters.find((c) => c.name === clusterName);
  if (typeof clusterName !== "string" || !entry || !isObj(entry.cluster)) {
    throw fail(`cluster "${String(clusterName)}" of context "${current}" does not exist`);
  }
  return { doc, cluster: entry.cluster, clusterName };
}

/** The CA bytes a parsed cluster entry trusts (inline data, or the file it names). */
function clusterCA(cluster: Obj, file: string): Buffer | undefined {
  const data = cluster["certificate-authority-data"];
  if (typeof data === "string") return Buffer.from(data, "base64");
  const ref = cluster["certificate-authority"];
  if (typeof ref === "string") {
    try {
      return fs.readFileSync(path.resolve(path.dirname(file), ref));
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * Writes the kubeconfig files of the given specs into the kubeconfig dir, as kubeadm's kubeconfig
 * phase does: a missing file is written; an existing one is kept when it points at the same
 * server with the same CA, and refused otherwise; `force` replaces it. Returns the paths written.
 */
export function writeKubeconfigs(opts: KubeconfigOptions, specs: KubeconfigSpec[]): string[] {
  const log = opts.log ?? (() => {});
  const written: string[] = [];
  for (const spec of specs) {
    const { config, caPEM } = buildKubeconfig(opts, spec);
    const file = path.join(opts.kubeconfigDir, spec.fileName);
    if (!opts.force && fs.existsSync(file)) {
      let text: string;
      try {
        text = fs.readFileSync(file, "utf8");
      } catch (err) {
        throw new PKIError(`failed to load kubeconfig file ${file}: ${(err as Error).message}`);
      }
      const existing = parseKubeconfig(text, file);
      const ca = clusterCA(existing.cluster, file);
      if (!ca || !ca.equals(caPEM)) {
        throw new PKIError(
          `a kubeconfig file "${file}" exists already but has got the wrong CA cert; use --force to replace it`,
        );
      }
      if (existing.cluster.server !== opts.server) {
        throw new PKIError(
          `a kubeconfig file "${file}" exists already but has got the wrong API Server URL (${String(existing.cluster.server)}, not ${opts.server}); use --force to replace it`,
        );
      }
      log(`[kubeconfig] Using existing kubeconfig file: "${file}"`);
      continue;
    }
    log(`[kubeconfig] Writing "${spec.fileName}" kubeconfig file`);
    fs.mkdirSync(opts.kubeconfigDir, { recursive: true, mode: 0o755 });
    writeFileAtomic(file, formatKubeconfig(config), 0o600);
    written.push(file);
  }
  return written;
}
