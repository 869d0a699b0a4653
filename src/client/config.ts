/**
 * Where a client finds its API server and credentials, with the rules of client-go's clientcmd:
 *
 * - `loadKubeconfig` reads kubeconfig files as kubectl does: `--kubeconfig` (the file must exist),
 *   else every file of `KUBECONFIG` (a `:`-separated list; missing files are skipped) merged so
 *   that the first file naming a cluster, user or context wins and the first `current-context`
 *   wins, else `~/.kube/config`. Relative file references resolve against the file that holds
 *   them. `--context` picks another context, `--master` replaces the cluster's server.
 * - `inClusterConfig` is what a pod uses: `KUBERNETES_SERVICE_HOST`/`_PORT` and the service
 *   account's token, CA and namespace mounted at /var/run/secrets/kubernetes.io/serviceaccount.
 * - `buildConfigFromFlags` is what the components (controller-manager, scheduler, kubelet, proxy)
 *   do with `--master` and `--kubeconfig`: neither given means in-cluster; `KUBECONFIG` is not
 *   read (upstream's BuildConfigFromFlags does not read it either).
 */

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parse as parseYaml } from "yaml";

/** Everything a REST client needs to reach and authenticate to one API server. */
export interface RestConfig {
  /** Base URL: `https://host:port`, possibly with a path prefix. */
  server: string;
  /** PEM of the CA bundle that verifies the server; the system roots when absent. */
  ca?: Buffer;
  /** PEM client certificate and key (TLS client authentication). */
  cert?: Buffer;
  key?: Buffer;
  /** Bearer token. */
  token?: string;
  /** A file holding the bearer token, re-read about once a minute (rotated tokens). */
  tokenFile?: string;
  username?: string;
  password?: string;
  insecureSkipTLSVerify?: boolean;
  /** The name checked against the server's certificate, when not the URL's host. */
  tlsServerName?: string;
  /** The namespace of the context (or of the pod, in cluster); "default" when none is set. */
  namespace: string;
  /** Sent as User-Agent; the server names managedFields managers after its first segment. */
  userAgent?: string;
  /** Use one HTTP/2 session instead of a pool of HTTP/1.1 keep-alive connections. */
  http2?: boolean;
  /** Client-side request rate limit (requests a second) and burst; unlimited when not set. */
  qps?: number;
  burst?: number;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** The kubeconfig file format (clientcmd/api/v1), the fields k8ts reads. */
interface KubeconfigFile {
  clusters?: { name: string; cluster?: KubeconfigCluster }[];
  users?: { name: string; user?: KubeconfigUser }[];
  contexts?: { name: string; context?: KubeconfigContext }[];
  "current-context"?: string;
}

interface KubeconfigCluster {
  server?: string;
  "certificate-authority"?: string;
  "certificate-authority-data"?: string;
  "insecure-skip-tls-verify"?: boolean;
  "tls-server-name"?: string;
}

interface KubeconfigUser {
  "client-certificate"?: string;
  "client-certificate-data"?: string;
  "client-key"?: string;
  "client-key-data"?: string;
  token?: string;
  tokenFile?: string;
  username?: string;
  password?: string;
  exec?: unknown;
  "auth-provider"?: unknown;
}

interface KubeconfigContext {
  cluster?: string;
  user?: string;
  namespace?: string;
}

/** A kubeconfig after merging: named entries, each remembering the directory of its file. */
export interface MergedKubeconfig {
  clusters: Map<string, KubeconfigCluster & { dir: string }>;
  users: Map<string, KubeconfigUser & { dir: string }>;
  contexts: Map<string, KubeconfigContext>;
  currentContext: string;
  /** The files read, in order. */
  files: string[];
}

export interface KubeconfigOptions {
  /** `--kubeconfig`: one file, which must exist. */
  kubeconfig?: string;
  /** `--master` / `--server`: replaces the server of the selected cluster. */
  master?: string;
  /** `--context`: the context to use instead of current-context. */
  context?: string;
  /** Environment (for KUBECONFIG and HOME); process.env by default. */
  env?: Record<string, string | undefined>;
  userAgent?: string;
}

const DEFAULT_NAMESPACE = "default";

function readKubeconfigFile(file: string): KubeconfigFile {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`error loading config file "${file}": ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`error loading config file "${file}": ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc))
    throw new ConfigError(`error loading config file "${file}": not a kubeconfig`);
  return doc as KubeconfigFile;
}

/** Merges kubeconfig files: the first file to name an entry wins, entries are never merged. */
export function mergeKubeconfigFiles(files: string[]): MergedKubeconfig {
  const merged: MergedKubeconfig = {
    clusters: new Map(),
    users: new Map(),
    contexts: new Map(),
    currentContext: "",
    files,
  };
  for (const file of files) {
    const doc = readKubeconfigFile(file);
    const dir = path.dirname(path.resolve(file));
    for (const c of doc.clusters ?? [])
      if (c?.name && !merged.clusters.has(c.name))
        merged.clusters.set(c.name, { ...(c.cluster ?? {}), dir });
    for (const u of doc.users ?? [])
      if (u?.name && !merged.users.has(u.name))
        merged.users.set(u.name, { ...(u.user ?? {}), dir });
    for (const c of doc.contexts ?? [])
      if (c?.name && !merged.contexts.has(c.name)) merged.contexts.set(c.name, c.context ?? {});
    if (!merged.currentContext && doc["current-context"])
      merged.currentContext = doc["current-context"];
  }
  return merged;
}

/** The kubeconfig files kubectl would read, in precedence order. */
export function kubeconfigFiles(opts: KubeconfigOptions = {}): string[] {
  if (opts.kubeconfig) {
    if (!fs.existsSync(opts.kubeconfig))
      throw new ConfigError(`stat ${opts.kubeconfig}: no such file or directory`);
    return [opts.kubeconfig];
  }
  const env = opts.env ?? process.env;
  if (env.KUBECONFIG) {
    const seen = new Set<string>();
    return env.KUBECONFIG.split(path.delimiter).filter((f) => {
      if (!f || seen.has(f)) return false;
      seen.add(f);
      return fs.existsSync(f);
    });
  }
  const home = env.HOME ?? os.homedir();
  const file = path.join(home, ".kube", "config");
  return fs.existsSync(file) ? [file] : [];
}

function resolvePath(dir: string, file: string): string {
  return path.isAbsolute(file) ? file : path.join(dir, file);
}

function readFileOrData(
  dir: string,
  file: string | undefined,
  data: string | undefined,
  what: string,
): Buffer | undefined {
  if (data) return Buffer.from(data, "base64");
  if (!file) return undefined;
  const p = resolvePath(dir, file);
  try {
    return fs.readFileSync(p);
  } catch (err) {
    throw new ConfigError(`unable to read ${what} from "${p}": ${(err as Error).message}`);
  }
}

/** The client configuration of a merged kubeconfig's context. */
export function configFromKubeconfig(
  merged: MergedKubeconfig,
  opts: Pick<KubeconfigOptions, "master" | "context" | "userAgent"> = {},
): RestConfig {
  const contextName = opts.context || merged.currentContext;
  const errors: string[] = [];
  let context: KubeconfigContext = {};
  if (contextName) {
    const found = merged.contexts.get(contextName);
    if (found) context = found;
    else errors.push(`context was not found for specified context: ${contextName}`);
  }
  const cluster = context.cluster ? merged.clusters.get(context.cluster) : undefined;
  if (context.cluster && !cluster && !opts.master)
    errors.push(`cluster "${context.cluster}" not found`);
  const user = context.user ? merged.users.get(context.user) : undefined;
  const server = opts.master || cluster?.server;
  if (!server && errors.length === 0) {
    if (!contextName && merged.clusters.size === 0)
      throw new ConfigError(
        "invalid configuration: no configuration has been provided, try setting KUBERNETES_MASTER environment variable",
      );
    errors.push(`no server found for cluster "${context.cluster ?? ""}"`);
  }
  if (errors.length)
    throw new ConfigError(
      `invalid configuration: ${errors.length === 1 ? errors[0] : `[${errors.join(", ")}]`}`,
    );

  const config: RestConfig = {
    server: normalizeServer(server!),
    namespace: context.namespace || DEFAULT_NAMESPACE,
  };
  if (opts.userAgent) config.userAgent = opts.userAgent;
  if (cluster) {
    const ca = readFileOrData(
      cluster.dir,
      cluster["certificate-authority"],
      cluster["certificate-authority-data"],
      "certificate authority",
    );
    if (ca) config.ca = ca;
    if (cluster["insecure-skip-tls-verify"]) {
      if (ca)
        throw new ConfigError(
          "invalid configuration: specifying a root certificates file with the insecure flag is not allowed",
        );
      config.insecureSkipTLSVerify = true;
    }
    if (cluster["tls-server-name"]) config.tlsServerName = cluster["tls-server-name"];
  }
  if (user) {
    if (user.exec || user["auth-provider"])
      throw new ConfigError(
        `user "${context.user}": exec and auth-provider credential plugins are not supported; use a token or a client certificate`,
      );
    const cert = readFileOrData(
      user.dir,
      user["client-certificate"],
      user["client-certificate-data"],
      "client certificate",
    );
    const key = readFileOrData(user.dir, user["client-key"], user["client-key-data"], "client key");
    if (cert && !key)
      throw new ConfigError(
        `invalid configuration: client-key-data or client-key must be specified for ${context.user} to use the clientCert authentication method.`,
      );
    if (key && !cert)
      throw new ConfigError(
        `invalid configuration: client-cert-data or client-cert must be specified for ${context.user} to use the clientCert authentication method.`,
      );
    if (cert && key) {
      config.cert = cert;
      config.key = key;
    }
    if (user.token) config.token = user.token;
    if (user.tokenFile) config.tokenFile = resolvePath(user.dir, user.tokenFile);
    if (user.username !== undefined) config.username = user.username;
    if (user.password !== undefined) config.password = user.password;
  }
  return config;
}

/** kubectl's loading rules: see the module comment. */
export function loadKubeconfig(opts: KubeconfigOptions = {}): RestConfig {
  const merged = mergeKubeconfigFiles(kubeconfigFiles(opts));
  return configFromKubeconfig(merged, opts);
}

export interface InClusterOptions {
  env?: Record<string, string | undefined>;
  /** The service account mount; /var/run/secrets/kubernetes.io/serviceaccount by default. */
  serviceAccountDir?: string;
  userAgent?: string;
}

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** The configuration of a client running in a pod (client-go's InClusterConfig). */
export function inClusterConfig(opts: InClusterOptions = {}): RestConfig {
  const env = opts.env ?? process.env;
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port)
    throw new ConfigError(
      "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined",
    );
  const dir = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const tokenFile = path.join(dir, "token");
  let token: string;
  try {
    token = fs.readFileSync(tokenFile, "utf8").trim();
  } catch (err) {
    throw new ConfigError(`open ${tokenFile}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  const config: RestConfig = {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    token,
    tokenFile,
    namespace: DEFAULT_NAMESPACE,
  };
  try {
    config.ca = fs.readFileSync(path.join(dir, "ca.crt"));
  } catch {
    // upstream logs the missing CA and verifies against the system roots
  }
  try {
    const ns = fs.readFileSync(path.join(dir, "namespace"), "utf8").trim();
    if (ns) config.namespace = ns;
  } catch {
    // no namespace file: "default"
  }
  if (opts.userAgent) config.userAgent = opts.userAgent;
  return config;
}

/**
 * The components' `--master`/`--kubeconfig` rule (clientcmd.BuildConfigFromFlags): neither set
 * means in-cluster; otherwise the kubeconfig (if any) with the master replacing its server.
 */
export function buildConfigFromFlags(
  master: string | undefined,
  kubeconfig: string | undefined,
  opts: InClusterOptions & { context?: string } = {},
): RestConfig {
  if (!master && !kubeconfig) {
    try {
      return inClusterConfig(opts);
    } catch (err) {
      throw new ConfigError(
        `neither --kubeconfig nor --master was specified and the in-cluster configuration failed: ${(err as Error).message}`,
      );
    }
  }
  const merged = mergeKubeconfigFiles(
    kubeconfig ? kubeconfigFiles({ kubeconfig, env: opts.env ?? {} }) : [],
  );
  return configFromKubeconfig(merged, {
    master,
    context: opts.context,
    userAgent: opts.userAgent,
  });
}

/** `host:port` and bare hosts become https URLs, as clientcmd's DefaultServerURL does. */
function normalizeServer(server: string): string {
  let s = server.trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) s = `https://${s}`;
  const url = new URL(s);
  if (url.protocol !== "https:" && url.protocol !== "http:")
    throw new ConfigError(`invalid configuration: unsupported server scheme "${url.protocol}"`);
  return s.replace(/\/+$/, "");
}

/**
 * A client-go style User-Agent: `<component>/<version> (<os>/<arch>) kubernetes/<commit>`. The
 * server names the managedFields manager after the part before the first "/".
 */
export function defaultUserAgent(component: string, version = "v1.32.4+k8ts"): string {
  const arch = process.arch === "x64" ? "amd64" : process.arch === "ia32" ? "386" : process.arch;
  return `${component}/${version} (${process.platform}/${arch}) kubernetes/k8ts`;
}
