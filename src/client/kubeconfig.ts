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
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: k8ts",
    "  cluster:",
    `    server: ${c.server}`,
    `    certificate-authority: ${c.caFile}`,
    "users:",
    `- name: ${c.user}`,
    `  user: {token: ${c.token}}`,
    "contexts:",
    "- name: k8ts",
    `  context: {cluster: k8ts, user: ${c.user}}`,
    "current-context: k8ts",
    "",
  ].join("\n");
}
