import YAML from "yaml";

/** A cluster entry of a kubeconfig, with kubectl's field names. */
export interface KubeconfigCluster {
  server: string;
  "certificate-authority"?: string;
  "certificate-authority-data"?: string;
  "insecure-skip-tls-verify"?: boolean;
  "tls-server-name"?: string;
}

/** A user (AuthInfo) entry: a client certificate and key, inline or as files, or a token. */
export interface KubeconfigUser {
  "client-certificate"?: string;
  "client-certificate-data"?: string;
  "client-key"?: string;
  "client-key-data"?: string;
  token?: string;
}

export interface KubeconfigContext {
  cluster: string;
  user: string;
  namespace?: string;
}

/** A kubeconfig (clientcmd's v1 Config) as kubectl writes it. */
export interface Kubeconfig {
  clusters: { name: string; cluster: KubeconfigCluster }[];
  users: { name: string; user: KubeconfigUser }[];
  contexts: { name: string; context: KubeconfigContext }[];
  "current-context": string;
}

/**
 * Serializes a kubeconfig exactly as kubectl writes one (`kubectl config set-...`, `kubectl config
 * view --flatten`): keys sorted at every level, lists unindented under their key, long values on
 * one line, `preferences: {}`. A file written here comes back byte for byte from
 * `kubectl config view --flatten --kubeconfig <file>` when its credentials are inline.
 */
export function formatKubeconfig(config: Kubeconfig): string {
  const doc = new YAML.Document(
    { apiVersion: "v1", kind: "Config", preferences: {}, ...config },
    { version: "1.1", sortMapEntries: true },
  );
  // kubectl's YAML writer (YAML 1.1) double-quotes a string that would read back as another
  // type ("true", "0755", "null", a date) and single-quotes one that cannot be plain ("@me").
  const otherTypes = doc.schema.tags
    .map((t) => ("test" in t && t.tag !== "tag:yaml.org,2002:str" ? t.test : undefined))
    .filter((re): re is RegExp => re instanceof RegExp);
  YAML.visit(doc, {
    Scalar(_key, node) {
      const v = node.value;
      if (typeof v === "string" && (v === "" || otherTypes.some((re) => re.test(v)))) {
        node.type = "QUOTE_DOUBLE";
      }
    },
  });
  return doc.toString({ indentSeq: false, lineWidth: 0, singleQuote: true });
}

/**
 * A kubeconfig for one cluster and one user, in the form kubectl reads: the server URL, the CA
 * file that signs its serving certificate, and a bearer token.
 */
export function kubeconfigYaml(c: {
  server: string;
  caFile: string;
  user: string;
  token: string;
}): string {
  return formatKubeconfig({
    clusters: [{ name: "k8ts", cluster: { server: c.server, "certificate-authority": c.caFile } }],
    users: [{ name: c.user, user: { token: c.token } }],
    contexts: [{ name: "k8ts", context: { cluster: "k8ts", user: c.user } }],
    "current-context": "k8ts",
  });
}
