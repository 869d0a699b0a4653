import assert from "node:assert/strict";
import { test } from "node:test";
import { controllerManagerConfig } from "./command.js";
import { isControllerEnabled, selectControllers } from "./manager.js";

test("--controllers: * enables the defaults, -name disables, name enables one", () => {
  const names = (flags: string[]) =>
    selectControllers(flags)
      .enabled.map((d) => d.name)
      .sort();
  const defaults = names(["*"]);
  for (const name of ["deployment", "replicaset", "garbage-collector", "nodelifecycle", "job"])
    assert.ok(defaults.includes(name), name);
  for (const name of ["bootstrapsigner", "tokencleaner"])
    assert.ok(!defaults.includes(name), `${name} is off by default, as upstream`);
  assert.deepEqual(
    names(["*", "-garbagecollector", "-deployment-controller"]).includes("deployment"),
    false,
  );
  assert.deepEqual(names(["replicaset", "deployment"]), ["deployment", "replicaset"]);
  assert.ok(!isControllerEnabled(["tokencleaner"], true, ["*"]));
  assert.ok(isControllerEnabled(["tokencleaner"], true, ["*", "tokencleaner"]));
  // kubeadm's flags; upstream controllers k8ts lacks are reported, not refused.
  const kubeadm = selectControllers(["*", "bootstrapsigner", "tokencleaner"]);
  const enabled = kubeadm.enabled.map((d) => d.name);
  assert.ok(enabled.includes("bootstrapsigner") && enabled.includes("tokencleaner"));
  assert.ok(selectControllers(["*"]).missing.includes("persistentvolume-binder"));
  assert.throws(
    () => selectControllers(["*", "nosuch"]),
    /"nosuch" is not in the list of known controllers/,
  );
});

test("no --master nor --kubeconfig: upstream's warning, then its error outside a cluster", () => {
  const warnings: string[] = [];
  const saved = {
    host: process.env.KUBERNETES_SERVICE_HOST,
    port: process.env.KUBERNETES_SERVICE_PORT,
  };
  delete process.env.KUBERNETES_SERVICE_HOST;
  delete process.env.KUBERNETES_SERVICE_PORT;
  try {
    assert.throws(
      () => controllerManagerConfig(undefined, undefined, (w) => warnings.push(w)),
      /^ConfigError: invalid configuration: no configuration has been provided, try setting KUBERNETES_MASTER environment variable$/,
    );
  } finally {
    if (saved.host !== undefined) process.env.KUBERNETES_SERVICE_HOST = saved.host;
    if (saved.port !== undefined) process.env.KUBERNETES_SERVICE_PORT = saved.port;
  }
  assert.equal(
    warnings[0],
    "Neither --kubeconfig nor --master was specified.  Using the inClusterConfig.  This might not work.",
  );
  const c = controllerManagerConfig("http://localhost:8080", undefined, () => undefined);
  assert.equal(c.server, "http://localhost:8080");
  assert.match(c.userAgent ?? "", /^kube-controller-manager\//);
  assert.throws(
    () => controllerManagerConfig(undefined, "/nonexistent/kubeconfig", () => undefined),
    /no such file/,
  );
});
