/**
 * PodSecurity: the Pod Security Standards enforced per namespace, as upstream 1.32's built-in
 * plugin with kube-apiserver's default configuration (everything privileged unless a namespace
 * says otherwise, no exemptions). A namespace's labels choose the level and version for each
 * mode: `pod-security.kubernetes.io/enforce` (pods that violate it are refused),
 * `.../warn` (the client gets a warning) and `.../audit` (recorded for the audit log), each with
 * an optional `...-version` (default "latest"); warn follows enforce when only enforce is set.
 * Pods are checked on create and on updates that change an image; workload resources (pod
 * templates, replication controllers, replica sets, deployments, stateful sets, daemon sets,
 * jobs, cron jobs) only ever get warnings. Setting a stricter enforce level on a namespace warns
 * about the existing pods that would violate it. Invalid labels are refused on namespaces.
 */
import type { Pod, PodSpec, PodTemplateSpec } from "kubernetes-types/core/v1.js";
import type { ObjectMeta } from "kubernetes-types/meta/v1.js";
import { internalError, invalid, invalidValue, type FieldError } from "../../../api/status.js";
import type { KObject } from "../../registry/types.js";
import type { AdmissionAttributes, AdmissionContext, AdmissionPlugin } from "../types.js";
import {
  aggregate,
  evaluatePod,
  forbiddenDetail,
  forbiddenReason,
  showLevelVersion,
  type Level,
  type LevelVersion,
  type Version,
} from "./pod-security-policy.js";
import { asPod, byteOrder } from "./util.js";
import { forbidden } from "../../../api/status.js";

const LABEL_PREFIX = "pod-security.kubernetes.io/";
export const ENFORCE_LEVEL_LABEL = `${LABEL_PREFIX}enforce`;
export const ENFORCE_VERSION_LABEL = `${LABEL_PREFIX}enforce-version`;
export const AUDIT_LEVEL_LABEL = `${LABEL_PREFIX}audit`;
export const AUDIT_VERSION_LABEL = `${LABEL_PREFIX}audit-version`;
export const WARN_LEVEL_LABEL = `${LABEL_PREFIX}warn`;
export const WARN_VERSION_LABEL = `${LABEL_PREFIX}warn-version`;

const LEVELS: Level[] = ["privileged", "baseline", "restricted"];
const LATEST: Version = { latest: true };

export interface Policy {
  enforce: LevelVersion;
  audit: LevelVersion;
  warn: LevelVersion;
}

export interface PodSecurityOptions {
  /** The policy of namespaces without labels (default: privileged:latest for every mode). */
  defaults?: Policy;
  exemptions?: { namespaces?: string[]; usernames?: string[]; runtimeClasses?: string[] };
  /** At most this many existing pods are checked when a namespace's enforce level changes. */
  namespaceMaxPodsToCheck?: number;
}

const privilegedLatest = (): LevelVersion => ({ level: "privileged", version: LATEST });

function parseLevel(v: string): Level | undefined {
  return (LEVELS as string[]).includes(v) ? (v as Level) : undefined;
}

function parseVersion(v: string): Version | undefined {
  if (v === "latest") return LATEST;
  const m = /^v1\.(0|[1-9][0-9]*)$/.exec(v);
  if (!m) return undefined;
  const minor = Number(m[1]);
  return Number.isSafeInteger(minor) ? { latest: false, minor } : undefined;
}

const compareLevels = (a: Level, b: Level) => LEVELS.indexOf(a) - LEVELS.indexOf(b);

const sameVersion = (a: Version, b: Version) =>
  a.latest === b.latest && (a.latest || (b as { minor: number }).minor === a.minor);

const sameLevelVersion = (a: LevelVersion, b: LevelVersion) =>
  a.level === b.level && sameVersion(a.version, b.version);

/** Equivalent as upstream judges it: both privileged, or the same level and version. */
const equivalent = (a: LevelVersion, b: LevelVersion) =>
  (a.level === "privileged" && b.level === "privileged") || sameLevelVersion(a, b);

/** Upstream's PolicyToEvaluate: the namespace's policy, and what is wrong with its labels. */
export function policyToEvaluate(
  labels: Record<string, string> | undefined,
  defaults: Policy,
): { policy: Policy; errors: FieldError[] } {
  const p: Policy = {
    enforce: { ...defaults.enforce },
    audit: { ...defaults.audit },
    warn: { ...defaults.warn },
  };
  const errors: FieldError[] = [];
  if (!labels || Object.keys(labels).length === 0) return { policy: p, errors };
  const bad = (label: string, value: string, why: string) =>
    errors.push(invalidValue(`metadata.labels[${label}]`, value, why));
  const levelError = `must be one of ${LEVELS.join(", ")}`;
  const versionError = 'must be "latest" or "v1.x"';
  let hasEnforceLevel = false;
  let hasWarnLevel = false;
  let hasWarnVersion = false;
  const level = (label: string, mode: keyof Policy, failOpen: boolean) => {
    const v = labels[label];
    if (v === undefined) return false;
    const parsed = parseLevel(v);
    if (!parsed) {
      bad(label, v, levelError);
      p[mode].level = failOpen ? "privileged" : "restricted";
      return false;
    }
    p[mode].level = parsed;
    return true;
  };
  const version = (label: string, mode: keyof Policy) => {
    const v = labels[label];
    if (v === undefined) return false;
    const parsed = parseVersion(v);
    if (!parsed) bad(label, v, versionError);
    p[mode].version = parsed ?? LATEST;
    return true;
  };
  hasEnforceLevel = level(ENFORCE_LEVEL_LABEL, "enforce", false);
  version(ENFORCE_VERSION_LABEL, "enforce");
  level(AUDIT_LEVEL_LABEL, "audit", true);
  version(AUDIT_VERSION_LABEL, "audit");
  hasWarnLevel = labels[WARN_LEVEL_LABEL] !== undefined;
  level(WARN_LEVEL_LABEL, "warn", true);
  hasWarnVersion = version(WARN_VERSION_LABEL, "warn");
  // Without its own warn level, warn is at least as strict as enforce.
  if (!hasWarnLevel && hasEnforceLevel && compareLevels(p.enforce.level, p.warn.level) > 0) {
    p.warn.level = p.enforce.level;
    if (!hasWarnVersion) p.warn.version = p.enforce.version;
  }
  return { policy: p, errors };
}

const fullyPrivileged = (p: Policy) =>
  p.enforce.level === "privileged" &&
  p.audit.level === "privileged" &&
  p.warn.level === "privileged";

/** Pod subresources the plugin leaves alone. */
const IGNORED_POD_SUBRESOURCES = new Set([
  "exec",
  "attach",
  "binding",
  "eviction",
  "log",
  "portforward",
  "proxy",
  "status",
]);

/** Where the pod template of a workload resource is. */
const POD_SPEC_RESOURCES: Record<string, (o: KObject) => PodTemplateSpec | undefined> = {
  "/replicationcontrollers": (o) =>
    (o.spec as { template?: PodTemplateSpec } | undefined)?.template,
  "/podtemplates": (o) => (o as { template?: PodTemplateSpec }).template,
  "apps/replicasets": (o) => (o.spec as { template?: PodTemplateSpec } | undefined)?.template,
  "apps/deployments": (o) => (o.spec as { template?: PodTemplateSpec } | undefined)?.template,
  "apps/statefulsets": (o) => (o.spec as { template?: PodTemplateSpec } | undefined)?.template,
  "apps/daemonsets": (o) => (o.spec as { template?: PodTemplateSpec } | undefined)?.template,
  "batch/jobs": (o) => (o.spec as { template?: PodTemplateSpec } | undefined)?.template,
  "batch/cronjobs": (o) =>
    (o.spec as { jobTemplate?: { spec?: { template?: PodTemplateSpec } } } | undefined)?.jobTemplate
      ?.spec?.template,
};

/** Whether an update changes what the policy looks at: an image, or the set of containers. */
function significantPodUpdate(pod: Pod, old: Pod): boolean {
  const s = pod.spec ?? { containers: [] };
  const o = old.spec ?? { containers: [] };
  const containers = s.containers ?? [];
  const oldContainers = o.containers ?? [];
  const inits = s.initContainers ?? [];
  const oldInits = o.initContainers ?? [];
  if (containers.length !== oldContainers.length || inits.length !== oldInits.length) return true;
  if (containers.some((c, i) => c.image !== oldContainers[i]!.image)) return true;
  if (inits.some((c, i) => c.image !== oldInits[i]!.image)) return true;
  for (const c of s.ephemeralContainers ?? []) {
    const before = (o.ephemeralContainers ?? []).find((e) => e.name === c.name);
    if (!before || before.image !== c.image) return true;
  }
  return false;
}

export function podSecurity(opts: PodSecurityOptions = {}): AdmissionPlugin {
  const defaults: Policy = opts.defaults ?? {
    enforce: privilegedLatest(),
    audit: privilegedLatest(),
    warn: privilegedLatest(),
  };
  const exempt = {
    namespaces: new Set(opts.exemptions?.namespaces ?? []),
    usernames: new Set(opts.exemptions?.usernames ?? []),
    runtimeClasses: new Set(opts.exemptions?.runtimeClasses ?? []),
  };
  const maxPods = opts.namespaceMaxPodsToCheck ?? 3000;

  async function namespaceOf(ctx: AdmissionContext, name: string): Promise<KObject | undefined> {
    return (
      ctx.get("", "v1", "namespaces", "", name) ??
      (await ctx.fetch("", "v1", "namespaces", "", name))
    );
  }

  /** Evaluates a pod spec; refuses (when enforcing) or adds warnings. */
  function evaluate(
    a: AdmissionAttributes,
    policy: Policy,
    meta: ObjectMeta,
    spec: PodSpec,
    enforce: boolean,
  ): void {
    if (spec.runtimeClassName && exempt.runtimeClasses.has(spec.runtimeClassName)) return;
    const cache: Array<[LevelVersion, ReturnType<typeof aggregate>]> = [];
    const result = (lv: LevelVersion) => {
      const hit = cache.find(([k]) => sameLevelVersion(k, lv));
      if (hit) return hit[1];
      const r = aggregate(evaluatePod(lv, meta, spec));
      cache.push([lv, r]);
      return r;
    };
    if (enforce) {
      const r = result(policy.enforce);
      if (!r.allowed) {
        // Upstream names the request's own name here, not the object's.
        throw forbidden(
          { group: a.group, resource: a.resource },
          a.name,
          `violates PodSecurity ${JSON.stringify(showLevelVersion(policy.enforce))}: ${forbiddenDetail(r)}`,
        );
      }
    }
    // Audit annotations would go to the audit log, which the server does not keep yet.
    const warn = result(policy.warn);
    if (!warn.allowed) {
      a.warnings?.push(
        `would violate PodSecurity ${JSON.stringify(showLevelVersion(policy.warn))}: ${forbiddenDetail(warn)}`,
      );
    }
  }

  async function validatePod(a: AdmissionAttributes, ctx: AdmissionContext): Promise<void> {
    if (IGNORED_POD_SUBRESOURCES.has(a.subresource)) return;
    if (a.operation !== "CREATE" && a.operation !== "UPDATE") return;
    if (exempt.namespaces.has(a.namespace) || exempt.usernames.has(a.user.username)) return;
    const ns = await namespaceOf(ctx, a.namespace);
    if (!ns) throw internalError(`failed to lookup namespace ${JSON.stringify(a.namespace)}`);
    const { policy, errors } = policyToEvaluate(ns.metadata?.labels, defaults);
    if (errors.length === 0 && fullyPrivileged(policy)) return;
    if (!a.object) return;
    const pod = asPod(a.object);
    if (a.operation === "UPDATE" && a.oldObject && !significantPodUpdate(pod, asPod(a.oldObject))) {
      return;
    }
    evaluate(a, policy, pod.metadata ?? {}, pod.spec ?? { containers: [] }, true);
  }

  async function validateController(a: AdmissionAttributes, ctx: AdmissionContext): Promise<void> {
    if (a.subresource !== "" || !a.object) return;
    if (a.operation !== "CREATE" && a.operation !== "UPDATE") return;
    if (exempt.namespaces.has(a.namespace) || exempt.usernames.has(a.user.username)) return;
    const extract = POD_SPEC_RESOURCES[`${a.group}/${a.resource}`];
    if (!extract) return;
    const ns = await namespaceOf(ctx, a.namespace);
    if (!ns) return;
    const { policy, errors } = policyToEvaluate(ns.metadata?.labels, defaults);
    if (
      errors.length === 0 &&
      policy.warn.level === "privileged" &&
      policy.audit.level === "privileged"
    ) {
      return;
    }
    const template = extract(a.object);
    if (!template) return;
    evaluate(a, policy, template.metadata ?? {}, template.spec ?? { containers: [] }, false);
  }

  function validateNamespace(a: AdmissionAttributes, ctx: AdmissionContext): void {
    if (a.subresource !== "" || !a.object) return;
    const labels = a.object.metadata?.labels;
    const { policy, errors } = policyToEvaluate(labels, defaults);
    const name = a.object.metadata?.name ?? a.name;
    if (a.operation === "CREATE") {
      if (errors.length > 0) throw invalid({ group: "", kind: "Namespace" }, name, errors);
      if (exempt.namespaces.has(name)) exemptWarning(a, name, policy, labels ?? {});
      return;
    }
    if (a.operation !== "UPDATE") return;
    const old = policyToEvaluate(a.oldObject?.metadata?.labels, defaults);
    if (
      errors.length > 0 &&
      (old.errors.length === 0 || JSON.stringify(errors) !== JSON.stringify(old.errors))
    ) {
      throw invalid({ group: "", kind: "Namespace" }, name, errors);
    }
    if (sameLevelVersion(policy.enforce, old.policy.enforce)) return;
    if (policy.enforce.level === "privileged") return;
    if (
      sameVersion(policy.enforce.version, old.policy.enforce.version) &&
      compareLevels(policy.enforce.level, old.policy.enforce.level) < 1
    ) {
      return;
    }
    if (exempt.namespaces.has(name)) {
      exemptWarning(a, name, policy, labels ?? {});
      return;
    }
    a.warnings?.push(...existingPodWarnings(ctx, name, policy.enforce));
  }

  function exemptWarning(
    a: AdmissionAttributes,
    name: string,
    policy: Policy,
    labels: Record<string, string>,
  ): void {
    if (
      fullyPrivileged(policy) ||
      (equivalent(policy.enforce, defaults.enforce) &&
        equivalent(policy.audit, defaults.audit) &&
        equivalent(policy.warn, defaults.warn))
    ) {
      return;
    }
    const parts: string[] = [];
    for (const [mode, level, version] of [
      ["enforce", ENFORCE_LEVEL_LABEL, ENFORCE_VERSION_LABEL],
      ["audit", AUDIT_LEVEL_LABEL, AUDIT_VERSION_LABEL],
      ["warn", WARN_LEVEL_LABEL, WARN_VERSION_LABEL],
    ] as const) {
      const lv = policy[mode];
      if (lv.level !== "privileged" && (level in labels || version in labels)) {
        parts.push(`${mode}=${showLevelVersion(lv)}`);
      }
    }
    a.warnings?.push(
      `namespace ${JSON.stringify(name)} is exempt from Pod Security, and the policy (${parts.join(", ")}) will be ignored`,
    );
  }

  /** Upstream's EvaluatePodsInNamespace: which existing pods a new enforce level would refuse. */
  function existingPodWarnings(
    ctx: AdmissionContext,
    namespace: string,
    lv: LevelVersion,
  ): string[] {
    const all = ctx
      .list("", "v1", "pods", namespace)
      .map(asPod)
      .filter(
        (p) => !(p.spec?.runtimeClassName && exempt.runtimeClasses.has(p.spec.runtimeClassName)),
      );
    // One pod per controller first, then the rest.
    const first: Pod[] = [];
    const rest: Pod[] = [];
    const seen = new Set<string>();
    for (const p of all) {
      const owner = (p.metadata?.ownerReferences ?? []).find((o) => o.controller === true);
      if (!owner) first.push(p);
      else if (seen.has(owner.uid)) rest.push(p);
      else {
        seen.add(owner.uid);
        first.push(p);
      }
    }
    const pods = [...first, ...rest];
    const checked = pods.slice(0, maxPods);
    const byWarning = new Map<string, { name: string; count: number }>();
    const order: string[] = [];
    for (const p of checked) {
      const r = aggregate(evaluatePod(lv, p.metadata ?? {}, p.spec ?? { containers: [] }));
      if (r.allowed) continue;
      const w = forbiddenReason(r);
      const name = p.metadata?.name ?? "";
      const entry = byWarning.get(w);
      if (!entry) {
        byWarning.set(w, { name, count: 1 });
        order.push(w);
      } else {
        entry.count++;
        if (byteOrder(name, entry.name) < 0) entry.name = name;
      }
    }
    const warnings: string[] = [];
    if (checked.length < pods.length) {
      warnings.push(
        `new PodSecurity enforce level only checked against the first ${checked.length} of ${pods.length} existing pods`,
      );
    }
    if (order.length > 0) {
      warnings.push(
        `existing pods in namespace ${JSON.stringify(namespace)} violate the new PodSecurity enforce level ${JSON.stringify(showLevelVersion(lv))}`,
      );
    }
    const decorated = order.map((w) => {
      const { name, count } = byWarning.get(w)!;
      if (count === 1) return `${name}: ${w}`;
      if (count === 2) return `${name} (and 1 other pod): ${w}`;
      return `${name} (and ${count - 1} other pods): ${w}`;
    });
    return [...warnings, ...decorated.sort(byteOrder)];
  }

  return {
    name: "PodSecurity",
    async validate(a, ctx) {
      if (a.group === "" && a.resource === "namespaces") return validateNamespace(a, ctx);
      if (a.group === "" && a.resource === "pods") return validatePod(a, ctx);
      return validateController(a, ctx);
    },
  };
}
