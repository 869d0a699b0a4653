/** The Kubernetes version k8ts speaks, as `/version` and `--version` report it. */
export const kubernetesVersion = {
  major: "1",
  minor: "32",
  gitVersion: "v1.32.4+k8ts",
};
