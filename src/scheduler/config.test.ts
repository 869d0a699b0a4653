import assert from "node:assert/strict";
import { test } from "node:test";
import {
  buildFrameworks,
  ConfigError,
  defaultConfiguration,
  parseKubeSchedulerConfiguration,
} from "./config.js";
import { inTreeRegistry } from "./plugins/registry.js";

const head = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n";

test("defaults: one default-scheduler profile with the default plugins and args", () => {
  const cfg = defaultConfiguration();
  assert.equal(cfg.parallelism, 16);
  assert.equal(cfg.percentageOfNodesToScore, 0);
  assert.equal(cfg.podInitialBackoffSeconds, 1);
  assert.equal(cfg.podMaxBackoffSeconds, 10);
  assert.deepEqual(cfg.leaderElection, {
    leaderElect: true,
    leaseDuration: "15s",
    renewDeadline: "10s",
    retryPeriod: "2s",
    resourceLock: "leases",
    resourceName: "kube-scheduler",
    resourceNamespace: "kube-system",
  });
  assert.equal(cfg.clientConnection.qps, 50);
  assert.equal(cfg.clientConnection.burst, 100);
  assert.equal(cfg.profiles.length, 1);
  const p = cfg.profiles[0]!;
  assert.equal(p.schedulerName, "default-scheduler");
  const names = p.pluginConfig.map((c) => c.name).sort();
  assert.deepEqual(names, [
    "DefaultPreemption",
    "InterPodAffinity",
    "NodeAffinity",
    "NodeResourcesBalancedAllocation",
    "NodeResourcesFit",
    "PodTopologySpread",
  ]);
  const fit = p.pluginConfig.find((c) => c.name === "NodeResourcesFit")!.args;
  assert.deepEqual(fit, {
    scoringStrategy: {
      type: "LeastAllocated",
      resources: [
        { name: "cpu", weight: 1 },
        { name: "memory", weight: 1 },
      ],
    },
  });
});

test("profiles: plugins disabled, re-weighted and added; a second profile by schedulerName", () => {
  const cfg = parseKubeSchedulerConfiguration(`${head}percentageOfNodesToScore: 30
profiles:
- schedulerName: default-scheduler
  plugins:
    multiPoint:
      enabled:
      - name: TaintToleration
        weight: 7
      disabled:
      - name: ImageLocality
    score:
      disabled:
      - name: NodeResourcesBalancedAllocation
- schedulerName: bin-packer
  percentageOfNodesToScore: 100
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
`);
  const fws = buildFrameworks(cfg, inTreeRegistry());
  const def = fws.get("default-scheduler")!;
  assert.equal(def.percentageOfNodesToScore, 30);
  assert.equal(def.scoreWeights.get("TaintToleration"), 7);
  assert.deepEqual(
    def.scorePlugins.map((p) => p.name),
    [
      "TaintToleration",
      "NodeAffinity",
      "NodeResourcesFit",
      "PodTopologySpread",
      "InterPodAffinity",
    ],
  );
  const bp = fws.get("bin-packer")!;
  assert.equal(bp.percentageOfNodesToScore, 100);
  assert.equal(bp.scorePlugins.length, 7);
});

function err(yaml: string): string {
  try {
    buildFrameworks(parseKubeSchedulerConfiguration(yaml), inTreeRegistry());
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.message;
  }
  assert.fail("expected an error");
}

test("validation errors read as upstream's", () => {
  assert.equal(
    err(`${head}percentageOfNodesToScore: 110\n`),
    "percentageOfNodesToScore: Invalid value: 110: not in valid range [0-100]",
  );
  assert.equal(
    err(`${head}profiles:\n- schedulerName: a\n- schedulerName: a\n`),
    'profiles[1].schedulerName: Duplicate value: "profiles[0].schedulerName"',
  );
  assert.equal(
    err(`${head}profiles:\n- {}\n- schedulerName: b\n`),
    "profiles[0].schedulerName: Required value",
  );
  assert.equal(
    err(`${head}podInitialBackoffSeconds: 5\npodMaxBackoffSeconds: 2\n`),
    "podMaxBackoffSeconds: Invalid value: 2: must be greater than or equal to PodInitialBackoffSeconds",
  );
  assert.equal(
    err(
      `${head}profiles:\n- pluginConfig:\n  - name: DefaultPreemption\n    args:\n      minCandidateNodesPercentage: 0\n      minCandidateNodesAbsolute: 0\n`,
    ),
    "[profiles[0].pluginConfig[0].args.minCandidateNodesPercentage: Invalid value: 0: cannot be zero at the same time as minCandidateNodesAbsolute, " +
      "profiles[0].pluginConfig[0].args.minCandidateNodesAbsolute: Invalid value: 0: cannot be zero at the same time as minCandidateNodesPercentage]",
  );
  assert.equal(
    err(
      `${head}profiles:\n- pluginConfig:\n  - name: InterPodAffinity\n    args:\n      hardPodAffinityWeight: 101\n`,
    ),
    "profiles[0].pluginConfig[0].args.hardPodAffinityWeight: Invalid value: 101: not in valid range [0, 100]",
  );
  assert.equal(
    err(
      `${head}profiles:\n- pluginConfig:\n  - name: NodeResourcesFit\n    args:\n      scoringStrategy:\n        type: Fancy\n`,
    ),
    'initializing profiles: creating profile for scheduler name default-scheduler: initializing plugin "NodeResourcesFit": ' +
      'scoringStrategy.type: Unsupported value: "Fancy": supported values: "LeastAllocated", "MostAllocated", "RequestedToCapacityRatio"',
  );
  assert.equal(
    err(
      `${head}profiles:\n- plugins:\n    multiPoint:\n      enabled:\n      - name: NoSuchPlugin\n`,
    ),
    'initializing profiles: creating profile for scheduler name default-scheduler: "NoSuchPlugin" does not exist',
  );
});

test("decoding errors: unknown fields, wrong version, wrong types, broken YAML", () => {
  assert.equal(
    err(`${head}percentageOfNodesToScor: 10\n`),
    'strict decoding error: unknown field "percentageOfNodesToScor"',
  );
  assert.equal(
    err(`${head}profiles:\n- schedulerName: x\n  plugin: {}\n`),
    'strict decoding error: unknown field "profiles[0].plugin"',
  );
  assert.equal(
    err(
      `${head}profiles:\n- pluginConfig:\n  - name: NodeResourcesFit\n    args:\n      scoring: {}\n`,
    ),
    'strict decoding error: decoding .profiles[0].pluginConfig[0]: strict decoding error: decoding args for plugin NodeResourcesFit: strict decoding error: unknown field "scoring"',
  );
  assert.match(
    err("apiVersion: kubescheduler.config.k8s.io/v1beta3\nkind: KubeSchedulerConfiguration\n"),
    /^no kind "KubeSchedulerConfiguration" is registered for version "kubescheduler.config.k8s.io\/v1beta3"/,
  );
  assert.match(err("apiVersion: kubescheduler.config.k8s.io/v1\n"), /^Object 'Kind' is missing in/);
  assert.equal(
    err(`${head}percentageOfNodesToScore: lots\n`),
    "json: cannot unmarshal string into Go struct field KubeSchedulerConfiguration.percentageOfNodesToScore of type int32",
  );
  assert.match(err(`${head}profiles: [\n`), /^error converting YAML to JSON: yaml: /);
});
