/**
 * KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1) as `--config` reads it: YAML or
 * JSON decoded strictly (unknown fields are errors), defaulted as upstream's v1 defaults (the
 * default plugins merged into every profile, args defaulted per plugin), and validated with
 * upstream's field paths and messages.
 */
import YAML from "yaml";
import type { TopologySpreadConstraint } from "kubernetes-types/core/v1.js";
import {
  Framework,
  FrameworkError,
  type FrameworkOptions,
  type PluginRef,
  type PluginSet,
  type Plugins,
  type Profile,
  type Registry,
  EXTENSION_POINTS,
} from "./framework.js";
import * as names from "./plugins/names.js";
import {
  DEFAULT_RESOURCE_SPEC,
  MAX_CUSTOM_PRIORITY_SCORE,
  type ResourceSpec,
  type UtilizationShapePoint,
} from "./plugins/noderesources.js";
import { isQualifiedName } from "./resources.js";

export const GROUP_VERSION = "kubescheduler.config.k8s.io/v1";
export const KIND = "KubeSchedulerConfiguration";
export const DEFAULT_SCHEDULER_NAME = "default-scheduler";

export interface LeaderElectionConfiguration {
  leaderElect: boolean;
  leaseDuration: string;
  renewDeadline: string;
  retryPeriod: string;
  resourceLock: string;
  resourceName: string;
  resourceNamespace: string;
}

export interface ClientConnectionConfiguration {
  kubeconfig: string;
  acceptContentTypes: string;
  contentType: string;
  qps: number;
  burst: number;
}

export interface PluginConfig {
  name: string;
  args?: Record<string, unknown>;
}

export interface KubeSchedulerProfile {
  schedulerName: string;
  percentageOfNodesToScore?: number;
  plugins: Plugins;
  pluginConfig: PluginConfig[];
}

export interface KubeSchedulerConfiguration {
  apiVersion: string;
  kind: string;
  parallelism: number;
  leaderElection: LeaderElectionConfiguration;
  clientConnection: ClientConnectionConfiguration;
  enableProfiling: boolean;
  enableContentionProfiling: boolean;
  percentageOfNodesToScore: number;
  podInitialBackoffSeconds: number;
  podMaxBackoffSeconds: number;
  profiles: KubeSchedulerProfile[];
  extenders: Record<string, unknown>[];
  delayCacheUntilActive: boolean;
}

export class ConfigError extends Error {}

/** Upstream's default MultiPoint plugins (those k8ts implements), with their score weights. */
export function defaultPlugins(): Plugins {
  const p = (name: string, weight?: number): PluginRef =>
    weight === undefined ? { name } : { name, weight };
  return {
    multiPoint: {
      enabled: [
        p(names.SCHEDULING_GATES),
        p(names.PRIORITY_SORT),
        p(names.NODE_UNSCHEDULABLE),
        p(names.NODE_NAME),
        p(names.TAINT_TOLERATION, 3),
        p(names.NODE_AFFINITY, 2),
        p(names.NODE_PORTS),
        p(names.NODE_RESOURCES_FIT, 1),
        p(names.VOLUME_RESTRICTIONS),
        p(names.POD_TOPOLOGY_SPREAD, 2),
        p(names.INTER_POD_AFFINITY, 2),
        p(names.DEFAULT_PREEMPTION),
        p(names.NODE_RESOURCES_BALANCED_ALLOCATION, 1),
        p(names.IMAGE_LOCALITY, 1),
        p(names.DEFAULT_BINDER),
      ],
    },
  };
}

/** The configuration an empty file (or no --config) gives. */
export function defaultConfiguration(): KubeSchedulerConfiguration {
  return parseKubeSchedulerConfiguration(`apiVersion: ${GROUP_VERSION}\nkind: ${KIND}\n`);
}

// ---- strict decoding ----

type Leaf = { t: "string" | "int32" | "int64" | "float32" | "bool" | "duration" | "raw" };
type Schema =
  Leaf | { obj: Record<string, Schema>; inline?: boolean } | { arr: Schema } | { map: Schema };

const S = (t: Leaf["t"]): Leaf => ({ t });
const pluginSchema: Schema = { obj: { name: S("string"), weight: S("int32") } };
const pluginSetSchema: Schema = {
  obj: { enabled: { arr: pluginSchema }, disabled: { arr: pluginSchema } },
};
const pluginsSchema: Schema = {
  obj: Object.fromEntries([...EXTENSION_POINTS, "multiPoint"].map((k) => [k, pluginSetSchema])),
};
const profileSchema: Schema = {
  obj: {
    schedulerName: S("string"),
    percentageOfNodesToScore: S("int32"),
    plugins: pluginsSchema,
    pluginConfig: { arr: { obj: { name: S("string"), args: S("raw") } } },
  },
};
const configSchema: Schema = {
  obj: {
    apiVersion: S("string"),
    kind: S("string"),
    parallelism: S("int32"),
    leaderElection: {
      obj: {
        leaderElect: S("bool"),
        leaseDuration: S("duration"),
        renewDeadline: S("duration"),
        retryPeriod: S("duration"),
        resourceLock: S("string"),
        resourceName: S("string"),
        resourceNamespace: S("string"),
      },
    },
    clientConnection: {
      obj: {
        kubeconfig: S("string"),
        acceptContentTypes: S("string"),
        contentType: S("string"),
        qps: S("float32"),
        burst: S("int32"),
      },
    },
    enableProfiling: S("bool"),
    enableContentionProfiling: S("bool"),
    percentageOfNodesToScore: S("int32"),
    podInitialBackoffSeconds: S("int64"),
    podMaxBackoffSeconds: S("int64"),
    profiles: { arr: profileSchema },
    extenders: { arr: S("raw") },
    delayCacheUntilActive: S("bool"),
  },
};

const resourceSpecSchema: Schema = { arr: { obj: { name: S("string"), weight: S("int64") } } };
const shapeSchema: Schema = { arr: { obj: { utilization: S("int32"), score: S("int32") } } };
const typeMeta = { apiVersion: S("string"), kind: S("string") };

/** Args schemas of the in-tree plugins that take args. */
const argsSchemas: Record<string, Schema> = {
  DefaultPreemption: {
    obj: {
      ...typeMeta,
      minCandidateNodesPercentage: S("int32"),
      minCandidateNodesAbsolute: S("int32"),
    },
  },
  InterPodAffinity: {
    obj: {
      ...typeMeta,
      hardPodAffinityWeight: S("int32"),
      ignorePreferredTermsOfExistingPods: S("bool"),
    },
  },
  NodeAffinity: { obj: { ...typeMeta, addedAffinity: S("raw") } },
  NodeResourcesBalancedAllocation: { obj: { ...typeMeta, resources: resourceSpecSchema } },
  NodeResourcesFit: {
    obj: {
      ...typeMeta,
      ignoredResources: { arr: S("string") },
      ignoredResourceGroups: { arr: S("string") },
      scoringStrategy: {
        obj: {
          type: S("string"),
          resources: resourceSpecSchema,
          requestedToCapacityRatio: { obj: { shape: shapeSchema } },
        },
      },
    },
  },
  PodTopologySpread: {
    obj: { ...typeMeta, defaultConstraints: { arr: S("raw") }, defaultingType: S("string") },
  },
  VolumeBinding: { obj: { ...typeMeta, bindTimeoutSeconds: S("int64"), shape: shapeSchema } },
};

function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "object") return "object";
  return typeof v;
}

const DURATION = /^([-+]?)((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$/;

/** Walks a decoded document against a schema: unknown fields and type errors are collected. */
function checkSchema(
  v: unknown,
  schema: Schema,
  path: string,
  root: string,
  unknown: string[],
  typeErrors: string[],
): void {
  if (v === null || v === undefined) return;
  const fieldRef = `Go struct field ${root}${path ? "." + path.replace(/\[\d+\]/g, "") : ""}`;
  if ("t" in schema) {
    const bad = (goType: string) =>
      typeErrors.push(`json: cannot unmarshal ${jsonType(v)} into ${fieldRef} of type ${goType}`);
    switch (schema.t) {
      case "string":
        if (typeof v !== "string") bad("string");
        break;
      case "int32":
      case "int64":
        if (typeof v !== "number" || !Number.isInteger(v)) bad(schema.t);
        break;
      case "float32":
        if (typeof v !== "number") bad("float32");
        break;
      case "bool":
        if (typeof v !== "boolean") bad("bool");
        break;
      case "duration":
        if (typeof v !== "string") bad("v1.Duration");
        else if (!DURATION.test(v) && v !== "0")
          typeErrors.push(`time: invalid duration ${JSON.stringify(v)}`);
        break;
      case "raw":
        break;
    }
    return;
  }
  if ("arr" in schema) {
    if (!Array.isArray(v)) {
      typeErrors.push(`json: cannot unmarshal ${jsonType(v)} into ${fieldRef} of type []`);
      return;
    }
    v.forEach((x, i) => checkSchema(x, schema.arr, `${path}[${i}]`, root, unknown, typeErrors));
    return;
  }
  if ("map" in schema) return;
  if (typeof v !== "object" || Array.isArray(v)) {
    typeErrors.push(`json: cannot unmarshal ${jsonType(v)} into ${fieldRef} of type struct`);
    return;
  }
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    const sub = schema.obj[k];
    const p = path ? `${path}.${k}` : k;
    if (!sub) unknown.push(`unknown field ${JSON.stringify(p)}`);
    else checkSchema(x, sub, p, root, unknown, typeErrors);
  }
}

// ---- defaults ----

function mergePluginSet(def: PluginSet | undefined, custom: PluginSet | undefined): PluginSet {
  const disabledNames = new Set<string>();
  const disabled: PluginRef[] = [];
  for (const p of custom?.disabled ?? []) {
    disabled.push({ name: p.name });
    disabledNames.add(p.name);
  }
  for (const p of def?.disabled ?? []) {
    disabled.push({ name: p.name });
    disabledNames.add(p.name);
  }
  const customByName = new Map<string, { index: number; plugin: PluginRef }>();
  (custom?.enabled ?? []).forEach((p, index) => customByName.set(p.name, { index, plugin: p }));
  const replaced = new Set<number>();
  const enabled: PluginRef[] = [];
  if (!disabledNames.has("*")) {
    for (const p of def?.enabled ?? []) {
      if (disabledNames.has(p.name)) continue;
      const c = customByName.get(p.name);
      if (c) {
        enabled.push(c.plugin);
        replaced.add(c.index);
      } else enabled.push(p);
    }
  }
  (custom?.enabled ?? []).forEach((p, i) => {
    if (!replaced.has(i)) enabled.push(p);
  });
  const out: PluginSet = {};
  if (enabled.length > 0) out.enabled = enabled;
  if (disabled.length > 0) out.disabled = disabled;
  return out;
}

function mergePlugins(custom: Plugins | undefined): Plugins {
  const def = defaultPlugins();
  if (!custom) return def;
  const out: Plugins = {};
  for (const k of ["multiPoint", ...EXTENSION_POINTS] as const) {
    const merged = mergePluginSet(def[k], custom[k]);
    if (merged.enabled || merged.disabled) out[k] = merged;
  }
  return out;
}

function pluginNames(p: Plugins): string[] {
  const out: string[] = [];
  for (const k of ["multiPoint", ...EXTENSION_POINTS] as const) {
    for (const ref of p[k]?.enabled ?? []) if (!out.includes(ref.name)) out.push(ref.name);
  }
  return out;
}

function defaultResources(list: ResourceSpec[] | undefined): ResourceSpec[] {
  const src = list && list.length > 0 ? list : DEFAULT_RESOURCE_SPEC;
  return src.map((r) => ({ name: r.name, weight: r.weight ? r.weight : 1 }));
}

/** Fills an in-tree plugin's args with upstream's defaults; undefined for plugins without args. */
export function defaultPluginArgs(
  name: string,
  args: Record<string, unknown> | undefined,
): Record<string, unknown> | undefined {
  const a: Record<string, unknown> = { ...(args ?? {}) };
  switch (name) {
    case "DefaultPreemption":
      a.minCandidateNodesPercentage ??= 10;
      a.minCandidateNodesAbsolute ??= 100;
      return a;
    case "InterPodAffinity":
      a.hardPodAffinityWeight ??= 1;
      a.ignorePreferredTermsOfExistingPods ??= false;
      return a;
    case "NodeAffinity":
      return a;
    case "NodeResourcesBalancedAllocation":
      a.resources = defaultResources(a.resources as ResourceSpec[] | undefined);
      return a;
    case "NodeResourcesFit": {
      const s = (a.scoringStrategy as Record<string, unknown> | undefined) ?? {
        type: "LeastAllocated",
      };
      a.scoringStrategy = {
        ...s,
        resources: defaultResources(s.resources as ResourceSpec[] | undefined),
      };
      return a;
    }
    case "PodTopologySpread":
      a.defaultingType ??= "System";
      return a;
    case "VolumeBinding":
      a.bindTimeoutSeconds ??= 600;
      return a;
    default:
      return undefined;
  }
}

// ---- validation ----

/** A field error as upstream's field.Error prints it. */
function fmtValue(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (v === null || v === undefined) return "null";
  return JSON.stringify(v);
}
const invalid = (path: string, v: unknown, detail: string): string =>
  `${path}: Invalid value: ${fmtValue(v)}: ${detail}`;
const required = (path: string, detail = ""): string =>
  `${path}: Required value${detail ? ": " + detail : ""}`;
const duplicate = (path: string, v: unknown): string => `${path}: Duplicate value: ${fmtValue(v)}`;
const forbidden = (path: string, detail: string): string => `${path}: Forbidden: ${detail}`;
const notSupported = (path: string, v: unknown, supported: string[]): string =>
  `${path}: Unsupported value: ${fmtValue(v)}: supported values: ${supported.map((s) => JSON.stringify(s)).join(", ")}`;

function validatePercentage(path: string, v: number | undefined): string[] {
  if (v !== undefined && (v < 0 || v > 100))
    return [invalid(path, v, "not in valid range [0-100]")];
  return [];
}

function validateShape(shape: UtilizationShapePoint[] | undefined, path: string): string[] {
  if (!shape || shape.length === 0) return [required(path, "at least one point must be specified")];
  const errs: string[] = [];
  for (let i = 1; i < shape.length; i++) {
    if (shape[i - 1]!.utilization >= shape[i]!.utilization) {
      errs.push(
        invalid(
          `${path}[${i}].utilization`,
          shape[i]!.utilization,
          "values must be sorted in increasing order",
        ),
      );
      break;
    }
  }
  shape.forEach((p, i) => {
    if (p.utilization < 0 || p.utilization > 100)
      errs.push(invalid(`${path}[${i}].utilization`, p.utilization, "not in valid range [0, 100]"));
    if (p.score < 0 || p.score > MAX_CUSTOM_PRIORITY_SCORE) {
      errs.push(
        invalid(
          `${path}[${i}].score`,
          p.score,
          `not in valid range [0, ${MAX_CUSTOM_PRIORITY_SCORE}]`,
        ),
      );
    }
  });
  return errs;
}

const LABEL_NAME_MSG =
  "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

/** Upstream's ValidateNodeResourcesFitArgs (run when the plugin is built). */
export function validateNodeResourcesFitArgs(
  path: string,
  args: Record<string, unknown>,
): string[] {
  const p = (s: string) => (path ? `${path}.${s}` : s);
  const errs: string[] = [];
  ((args.ignoredResources as string[] | undefined) ?? []).forEach((r, i) => {
    if (!isQualifiedName(r)) errs.push(invalid(p(`ignoredResources[${i}]`), r, LABEL_NAME_MSG));
  });
  ((args.ignoredResourceGroups as string[] | undefined) ?? []).forEach((g, i) => {
    if (g.includes("/"))
      errs.push(
        invalid(p(`ignoredResourceGroups[${i}]`), g, "resource group name can't contain '/'"),
      );
  });
  const s = args.scoringStrategy as
    | {
        type?: string;
        resources?: ResourceSpec[];
        requestedToCapacityRatio?: { shape?: UtilizationShapePoint[] };
      }
    | undefined;
  if (!s) return [...errs, required(p("scoringStrategy"), "ScoringStrategy field is required")];
  const types = ["LeastAllocated", "MostAllocated", "RequestedToCapacityRatio"];
  if (!types.includes(s.type ?? ""))
    errs.push(notSupported(p("scoringStrategy.type"), s.type ?? "", types));
  (s.resources ?? []).forEach((r, i) => {
    if (!(r.weight > 0 && r.weight <= 100)) {
      errs.push(
        invalid(
          p(`scoringStrategy.resources[${i}].weight`),
          r.weight,
          `resource weight of ${r.name} not in valid range (0, 100]`,
        ),
      );
    }
  });
  if (s.type === "RequestedToCapacityRatio") {
    if (!s.requestedToCapacityRatio) {
      errs.push(
        required(
          p("scoringStrategy.requestedToCapacityRatio"),
          "must be specified when type is RequestedToCapacityRatio",
        ),
      );
    } else
      errs.push(
        ...validateShape(
          s.requestedToCapacityRatio.shape,
          p("scoringStrategy.requestedToCapacityRatio.shape"),
        ),
      );
  } else if (s.requestedToCapacityRatio) {
    errs.push(
      forbidden(
        p("scoringStrategy.requestedToCapacityRatio"),
        "must be nil when type is not RequestedToCapacityRatio",
      ),
    );
  }
  return errs;
}

function validatePluginArgs(name: string, path: string, a: Record<string, unknown>): string[] {
  const errs: string[] = [];
  switch (name) {
    case "DefaultPreemption": {
      const pct = a.minCandidateNodesPercentage as number;
      const abs = a.minCandidateNodesAbsolute as number;
      if (pct < 0 || pct > 100)
        errs.push(
          invalid(`${path}.minCandidateNodesPercentage`, pct, "not in valid range [0, 100]"),
        );
      if (abs < 0)
        errs.push(invalid(`${path}.minCandidateNodesAbsolute`, abs, "not in valid range [0, inf)"));
      if (pct === 0 && abs === 0) {
        errs.push(
          invalid(
            `${path}.minCandidateNodesPercentage`,
            pct,
            "cannot be zero at the same time as minCandidateNodesAbsolute",
          ),
        );
        errs.push(
          invalid(
            `${path}.minCandidateNodesAbsolute`,
            abs,
            "cannot be zero at the same time as minCandidateNodesPercentage",
          ),
        );
      }
      break;
    }
    case "InterPodAffinity": {
      const w = a.hardPodAffinityWeight as number;
      if (w < 0 || w > 100)
        errs.push(invalid(`${path}.hardPodAffinityWeight`, w, "not in valid range [0, 100]"));
      break;
    }
    case "NodeResourcesBalancedAllocation": {
      const seen = new Set<string>();
      ((a.resources as ResourceSpec[]) ?? []).forEach((r, i) => {
        if (seen.has(r.name)) errs.push(duplicate(`${path}.resources[${i}].name`, r.name));
        seen.add(r.name);
        if (r.weight !== 1)
          errs.push(invalid(`${path}.resources[${i}].weight`, r.weight, "must be 1"));
      });
      break;
    }
    case "PodTopologySpread": {
      const t = a.defaultingType as string;
      const constraints = (a.defaultConstraints as TopologySpreadConstraint[] | undefined) ?? [];
      if (t !== "System" && t !== "List")
        errs.push(notSupported(`${path}.defaultingType`, t, ["System", "List"]));
      else if (t === "System" && constraints.length > 0) {
        errs.push(invalid(`${path}.defaultingType`, t, "when .defaultConstraints are not empty"));
      }
      constraints.forEach((c, i) => {
        const p = `${path}.defaultConstraints[${i}]`;
        if (!(c.maxSkew > 0))
          errs.push(invalid(`${p}.maxSkew`, c.maxSkew, "not in valid range (0, inf)"));
        if (!c.topologyKey) errs.push(required(`${p}.topologyKey`, "can not be empty"));
        else if (!isQualifiedName(c.topologyKey))
          errs.push(invalid(`${p}.topologyKey`, c.topologyKey, LABEL_NAME_MSG));
        if (!c.whenUnsatisfiable) errs.push(required(`${p}.whenUnsatisfiable`, "can not be empty"));
        else if (
          c.whenUnsatisfiable !== "DoNotSchedule" &&
          c.whenUnsatisfiable !== "ScheduleAnyway"
        ) {
          errs.push(
            notSupported(`${p}.whenUnsatisfiable`, c.whenUnsatisfiable, [
              "DoNotSchedule",
              "ScheduleAnyway",
            ]),
          );
        }
        if (c.labelSelector != null)
          errs.push(
            forbidden(
              `${p}.labelSelector`,
              "constraint must not define a selector, as they deduced for each pod",
            ),
          );
        for (let j = 0; j < i; j++) {
          const o = constraints[j]!;
          if (o.topologyKey === c.topologyKey && o.whenUnsatisfiable === c.whenUnsatisfiable) {
            errs.push(
              duplicate(
                `${path}.defaultConstraints[${i}]`,
                `{${c.topologyKey}, ${c.whenUnsatisfiable}}`,
              ),
            );
            break;
          }
        }
      });
      break;
    }
    case "VolumeBinding": {
      const b = a.bindTimeoutSeconds as number;
      if (b < 0)
        errs.push(
          invalid(
            `${path}.bindTimeoutSeconds`,
            b,
            "invalid BindTimeoutSeconds, should not be a negative value",
          ),
        );
      break;
    }
  }
  return errs;
}

const INVALID_PLUGINS = ["AzureDiskLimits", "CinderLimits", "EBSLimits", "GCEPDLimits"];

function validate(cfg: KubeSchedulerConfiguration): string[] {
  const errs: string[] = [];
  const le = cfg.leaderElection;
  if (le.leaderElect) {
    const ms = (d: string) => parseDuration(d);
    if (ms(le.leaseDuration) <= 0)
      errs.push(
        invalid("leaderElection.leaseDuration", le.leaseDuration, "must be greater than zero"),
      );
    if (ms(le.renewDeadline) <= 0)
      errs.push(
        invalid("leaderElection.renewDeadline", le.renewDeadline, "must be greater than zero"),
      );
    if (ms(le.retryPeriod) <= 0)
      errs.push(invalid("leaderElection.retryPeriod", le.retryPeriod, "must be greater than zero"));
    if (ms(le.leaseDuration) <= ms(le.renewDeadline)) {
      errs.push(
        invalid(
          "leaderElection.leaseDuration",
          le.renewDeadline,
          "LeaseDuration must be greater than RenewDeadline",
        ),
      );
    }
    if (le.resourceLock === "")
      errs.push(
        invalid("leaderElection.resourceLock", le.resourceLock, "resourceLock is required"),
      );
    if (le.resourceName === "")
      errs.push(
        invalid("leaderElection.resourceName", le.resourceName, "resourceName is required"),
      );
    if (le.resourceNamespace === "")
      errs.push(
        invalid(
          "leaderElection.resourceNamespace",
          le.resourceNamespace,
          "resourceNamespace is required",
        ),
      );
    if (le.resourceLock !== "leases")
      errs.push(
        invalid(
          "leaderElection.resourceLock",
          le.resourceLock,
          `resourceLock value must be "leases"`,
        ),
      );
  }
  if (cfg.clientConnection.burst < 0)
    errs.push(
      invalid("clientConnection.burst", cfg.clientConnection.burst, "must be non-negative"),
    );
  if (cfg.parallelism <= 0)
    errs.push(
      invalid("parallelism", cfg.parallelism, "should be an integer value greater than zero"),
    );
  if (cfg.profiles.length === 0) errs.push(required("profiles"));
  const seen = new Map<string, number>();
  cfg.profiles.forEach((prof, i) => {
    const path = `profiles[${i}]`;
    if (prof.schedulerName === "") errs.push(required(`${path}.schedulerName`));
    errs.push(
      ...validatePercentage(`${path}.percentageOfNodesToScore`, prof.percentageOfNodesToScore),
    );
    for (const k of EXTENSION_POINTS) {
      (prof.plugins[k]?.enabled ?? []).forEach((p, j) => {
        if (INVALID_PLUGINS.includes(p.name)) {
          errs.push(
            invalid(
              `${path}.plugins.${k}.enabled[${j}]`,
              p.name,
              `was invalid in version "${GROUP_VERSION}" (KubeSchedulerConfiguration is version "${GROUP_VERSION}")`,
            ),
          );
        }
      });
    }
    const seenArgs = new Set<string>();
    prof.pluginConfig.forEach((pc, j) => {
      const pcPath = `${path}.pluginConfig[${j}]`;
      if (seenArgs.has(pc.name)) errs.push(duplicate(pcPath, pc.name));
      seenArgs.add(pc.name);
      if (INVALID_PLUGINS.includes(pc.name)) {
        errs.push(
          invalid(
            pcPath,
            pc.name,
            `was invalid in version "${GROUP_VERSION}" (KubeSchedulerConfiguration is version "${GROUP_VERSION}")`,
          ),
        );
      } else if (pc.args && pc.name !== names.NODE_RESOURCES_FIT) {
        errs.push(...validatePluginArgs(pc.name, `${pcPath}.args`, pc.args));
      }
    });
    const prev = seen.get(prof.schedulerName);
    if (prev !== undefined)
      errs.push(duplicate(`${path}.schedulerName`, `profiles[${prev}].schedulerName`));
    seen.set(prof.schedulerName, i);
  });
  if (cfg.profiles.length > 0) {
    const canon = JSON.stringify(cfg.profiles[0]!.plugins.queueSort ?? {});
    for (let i = 1; i < cfg.profiles.length; i++) {
      const cur = cfg.profiles[i]!.plugins.queueSort ?? {};
      if (JSON.stringify(cur) !== canon) {
        errs.push(
          invalid(`profiles[${i}].plugins.queueSort`, cur, "must be the same for all profiles"),
        );
      }
    }
  }
  errs.push(...validatePercentage("percentageOfNodesToScore", cfg.percentageOfNodesToScore));
  if (cfg.podInitialBackoffSeconds <= 0)
    errs.push(
      invalid("podInitialBackoffSeconds", cfg.podInitialBackoffSeconds, "must be greater than 0"),
    );
  if (cfg.podMaxBackoffSeconds < cfg.podInitialBackoffSeconds) {
    errs.push(
      invalid(
        "podMaxBackoffSeconds",
        cfg.podMaxBackoffSeconds,
        "must be greater than or equal to PodInitialBackoffSeconds",
      ),
    );
  }
  return errs;
}

/** A Go duration ("15s", "1m30s", "100ms") in milliseconds; NaN when malformed. */
export function parseDuration(s: string): number {
  if (s === "0") return 0;
  const m = /^([-+]?)(.*)$/.exec(s)!;
  const units: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    µs: 1e-3,
    ms: 1,
    s: 1000,
    m: 60000,
    h: 3600000,
  };
  let total = 0;
  let rest = m[2]!;
  if (rest === "") return NaN;
  while (rest.length > 0) {
    const part = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/.exec(rest);
    if (!part) return NaN;
    total += Number(part[1]) * units[part[2]!]!;
    rest = rest.slice(part[0].length);
  }
  return m[1] === "-" ? -total : total;
}

/** Aggregate errors as upstream prints them: one alone, several in brackets. */
function aggregate(errs: string[]): string {
  return errs.length === 1 ? errs[0]! : `[${errs.join(", ")}]`;
}

// ---- parsing ----

/**
 * Decodes, defaults and validates a configuration file. Throws ConfigError with upstream's
 * message on malformed input, unknown fields, a wrong kind or version, or invalid values.
 */
export function parseKubeSchedulerConfiguration(text: string): KubeSchedulerConfiguration {
  let doc: unknown;
  try {
    doc = YAML.parse(text, { uniqueKeys: true });
  } catch (err) {
    throw new ConfigError(
      `error converting YAML to JSON: yaml: ${(err as Error).message.split("\n")[0]}`,
    );
  }
  if (doc === null || doc === undefined || typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigError(
      `Object 'Kind' is missing in '${typeof doc === "string" ? doc : JSON.stringify(doc ?? null)}'`,
    );
  }
  const raw = doc as Record<string, unknown>;
  if (typeof raw.kind !== "string" || raw.kind === "") {
    throw new ConfigError(`Object 'Kind' is missing in '${JSON.stringify(raw)}'`);
  }
  if (raw.apiVersion !== GROUP_VERSION || raw.kind !== KIND) {
    throw new ConfigError(
      `no kind ${JSON.stringify(raw.kind)} is registered for version ${JSON.stringify(raw.apiVersion ?? "")} in scheme "pkg/scheduler/apis/config/scheme/scheme.go:30"`,
    );
  }
  const unknown: string[] = [];
  const typeErrors: string[] = [];
  checkSchema(raw, configSchema, "", KIND, unknown, typeErrors);
  if (typeErrors.length > 0) throw new ConfigError(typeErrors[0]!);
  const nested: string[] = [];
  const profilesRaw = (raw.profiles as Record<string, unknown>[] | undefined) ?? [];
  profilesRaw.forEach((prof, i) => {
    ((prof?.pluginConfig as PluginConfig[] | undefined) ?? []).forEach((pc, j) => {
      const schema = argsSchemas[pc.name];
      if (!schema || pc.args == null) return;
      const u: string[] = [];
      const t: string[] = [];
      checkSchema(pc.args, schema, "", `${pc.name}Args`, u, t);
      if (t.length > 0)
        throw new ConfigError(
          `decoding .profiles[${i}].pluginConfig[${j}]: decoding args for plugin ${pc.name}: ${t[0]}`,
        );
      const kind = (pc.args as Record<string, unknown>).kind;
      if (kind !== undefined && kind !== `${pc.name}Args`) {
        throw new ConfigError(
          `decoding .profiles[${i}].pluginConfig[${j}]: args for plugin ${pc.name} were not of type ${pc.name}Args.kubescheduler.config.k8s.io, got ${String(kind)}.kubescheduler.config.k8s.io`,
        );
      }
      if (u.length > 0) {
        nested.push(
          `decoding .profiles[${i}].pluginConfig[${j}]: strict decoding error: decoding args for plugin ${pc.name}: strict decoding error: ${u.join(", ")}`,
        );
      }
    });
  });
  const strict = [...unknown, ...nested];
  if (strict.length > 0) throw new ConfigError(`strict decoding error: ${strict.join(", ")}`);

  const cfg = applyDefaults(raw);
  const errs = validate(cfg);
  if (errs.length > 0) throw new ConfigError(aggregate(errs));
  return cfg;
}

function applyDefaults(raw: Record<string, unknown>): KubeSchedulerConfiguration {
  const le = (raw.leaderElection as Partial<LeaderElectionConfiguration> | undefined) ?? {};
  const cc = (raw.clientConnection as Partial<ClientConnectionConfiguration> | undefined) ?? {};
  const profilesRaw = (raw.profiles as Record<string, unknown>[] | undefined) ?? [];
  const profs = profilesRaw.length === 0 ? [{}] : profilesRaw;
  const profiles = profs.map((p, _i, all) => {
    const prof = (p ?? {}) as {
      schedulerName?: string;
      percentageOfNodesToScore?: number;
      plugins?: Plugins;
      pluginConfig?: PluginConfig[];
    };
    const plugins = mergePlugins(prof.plugins);
    const pluginConfig: PluginConfig[] = (prof.pluginConfig ?? []).map((pc) => {
      const args = defaultPluginArgs(pc.name, pc.args ?? undefined);
      return args === undefined ? { ...pc } : { name: pc.name, args };
    });
    for (const name of pluginNames(plugins)) {
      if (pluginConfig.some((pc) => pc.name === name)) continue;
      const args = defaultPluginArgs(name, undefined);
      if (args !== undefined) pluginConfig.push({ name, args });
    }
    const out: KubeSchedulerProfile = {
      schedulerName: prof.schedulerName ?? (all.length === 1 ? DEFAULT_SCHEDULER_NAME : ""),
      plugins,
      pluginConfig,
    };
    if (prof.percentageOfNodesToScore !== undefined)
      out.percentageOfNodesToScore = prof.percentageOfNodesToScore;
    return out;
  });
  const enableProfiling = (raw.enableProfiling as boolean | undefined) ?? true;
  return {
    apiVersion: GROUP_VERSION,
    kind: KIND,
    parallelism: (raw.parallelism as number | undefined) ?? 16,
    leaderElection: {
      leaderElect: le.leaderElect ?? true,
      leaseDuration: le.leaseDuration ?? "15s",
      renewDeadline: le.renewDeadline ?? "10s",
      retryPeriod: le.retryPeriod ?? "2s",
      resourceLock: le.resourceLock || "leases",
      resourceName: le.resourceName || "kube-scheduler",
      resourceNamespace: le.resourceNamespace || "kube-system",
    },
    clientConnection: {
      kubeconfig: cc.kubeconfig ?? "",
      acceptContentTypes: cc.acceptContentTypes ?? "",
      contentType: cc.contentType || "application/vnd.kubernetes.protobuf",
      qps: cc.qps || 50,
      burst: cc.burst || 100,
    },
    enableProfiling,
    enableContentionProfiling:
      (raw.enableContentionProfiling as boolean | undefined) ?? enableProfiling,
    percentageOfNodesToScore: (raw.percentageOfNodesToScore as number | undefined) ?? 0,
    podInitialBackoffSeconds: (raw.podInitialBackoffSeconds as number | undefined) ?? 1,
    podMaxBackoffSeconds: (raw.podMaxBackoffSeconds as number | undefined) ?? 10,
    profiles,
    extenders: (raw.extenders as Record<string, unknown>[] | undefined) ?? [],
    delayCacheUntilActive: (raw.delayCacheUntilActive as boolean | undefined) ?? false,
  };
}

// ---- frameworks from a configuration ----

/** The framework Profile of a configuration profile. */
export function toProfile(p: KubeSchedulerProfile): Profile {
  const pluginArgs = new Map<string, unknown>();
  for (const pc of p.pluginConfig) if (pc.args !== undefined) pluginArgs.set(pc.name, pc.args);
  const out: Profile = { schedulerName: p.schedulerName, plugins: p.plugins, pluginArgs };
  if (p.percentageOfNodesToScore !== undefined)
    out.percentageOfNodesToScore = p.percentageOfNodesToScore;
  return out;
}

/**
 * One framework per profile, keyed by schedulerName. Plugin construction errors (NodeResourcesFit
 * args are validated here, as upstream does) come back as upstream's "initializing profiles" error.
 */
export function buildFrameworks(
  cfg: KubeSchedulerConfiguration,
  registry: Registry,
  opts: FrameworkOptions = {},
): Map<string, Framework> {
  const out = new Map<string, Framework>();
  for (const p of cfg.profiles) {
    try {
      const fitArgs = p.pluginConfig.find((pc) => pc.name === names.NODE_RESOURCES_FIT)?.args;
      if (fitArgs && pluginNames(p.plugins).includes(names.NODE_RESOURCES_FIT)) {
        const errs = validateNodeResourcesFitArgs("", fitArgs);
        if (errs.length > 0)
          throw new FrameworkError(
            `initializing plugin "${names.NODE_RESOURCES_FIT}": ${aggregate(errs)}`,
          );
      }
      out.set(
        p.schedulerName,
        new Framework(toProfile(p), registry, {
          percentageOfNodesToScore: cfg.percentageOfNodesToScore,
          ...opts,
        }),
      );
    } catch (err) {
      throw new ConfigError(
        `initializing profiles: creating profile for scheduler name ${p.schedulerName}: ${(err as Error).message}`,
      );
    }
  }
  return out;
}
