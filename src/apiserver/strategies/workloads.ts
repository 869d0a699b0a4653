/**
 * Workload controllers' objects: Deployment, ReplicaSet, StatefulSet, DaemonSet (apps/v1) and
 * ReplicationController (core/v1), with upstream 1.32's defaults, create-time status, and the
 * core of their validation.
 */
import type { FieldError } from "../../api/status.js";
import type { KObject, Strategy } from "../registry/types.js";
import {
  defaultEmbeddedMeta,
  defaultPodTemplateSpec,
  defaultPVCSpec,
  validatePodAnnotations,
  validatePodTemplateSpec,
} from "./pod.js";
import {
  at,
  child,
  deepEqual,
  forbidden,
  goIntOrString,
  goLabelSelector,
  GoValue,
  goQuote,
  goStringMap,
  immutable,
  invalid,
  IS_NEGATIVE,
  isObj,
  items,
  labelMapMatches,
  nonNegative,
  num,
  percentErrors,
  rec,
  required,
  selectorEmpty,
  selectorMatches,
  setDefault,
  setDefaultStr,
  str,
  unsupported,
  validateAnnotations,
  validateLabels,
  validateLabelSelector,
  type Obj,
} from "./util.js";

/** Sets the fields of a status that Go always serializes (int32 fields without omitempty). */
function zeroFields(obj: KObject, fields: string[]): void {
  const status = child(obj, "status");
  for (const f of fields) setDefault(status, f, 0);
}

/** A strategy whose create resets the status to its zero value (as served by upstream). */
function resetStatus(zero: string[]): Pick<Strategy, "prepareForCreate"> {
  return {
    prepareForCreate(obj) {
      obj.status = {};
      zeroFields(obj, zero);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Shared validation of selector + template.

interface SelectorCheck {
  /** The error detail for a selector with no requirements (e.g. "empty selector is invalid for deployment"). */
  emptyDetail: string;
  /** Message detail when LabelSelectorAsSelector fails. */
  invalidDetail: string;
}

/** Validates spec.selector as apps kinds do; returns whether it converts to a selector. */
function validateSelector(errs: FieldError[], spec: Obj, check: SelectorCheck): boolean {
  if (unsetSelector(spec)) {
    errs.push(required("spec.selector"));
    return true;
  }
  const selErrs = validateLabelSelector("spec.selector", spec.selector);
  errs.push(...selErrs);
  if (selectorEmpty(spec.selector))
    errs.push(invalid("spec.selector", goLabelSelector(spec.selector), check.emptyDetail));
  if (selErrs.length > 0) {
    errs.push(invalid("spec.selector", goLabelSelector(spec.selector), check.invalidDetail));
    return false;
  }
  return true;
}

function unsetSelector(spec: Obj): boolean {
  return !isObj(spec.selector);
}

/** The "`selector` does not match template `labels`" check (a missing selector matches nothing). */
function templateMatches(
  errs: FieldError[],
  field: string,
  selector: unknown,
  template: Obj,
): void {
  const labels = rec(template.metadata)?.labels;
  if (isObj(selector) && selectorEmpty(selector)) return;
  if (!selectorMatches(selector, labels))
    errs.push(invalid(field, goStringMap(labels), "`selector` does not match template `labels`"));
}

function templateOf(spec: Obj): Obj {
  return rec(spec.template) ?? {};
}

function restartAlwaysOnly(errs: FieldError[], field: string, template: Obj, kind: string): void {
  const spec = rec(template.spec) ?? {};
  const rp = str(spec.restartPolicy);
  if (rp !== "Always") errs.push(unsupported(at(field, "spec.restartPolicy"), rp, ["Always"]));
  if (spec.activeDeadlineSeconds !== undefined && spec.activeDeadlineSeconds !== null)
    errs.push(
      forbidden(
        at(field, "spec.activeDeadlineSeconds"),
        `activeDeadlineSeconds in ${kind} is not Supported`,
      ),
    );
}

/** ValidatePodTemplateSpecForReplicaSet (used by Deployments and ReplicaSets). */
function validateTemplateForReplicaSet(errs: FieldError[], spec: Obj, kind: string): void {
  const template = templateOf(spec);
  templateMatches(errs, "spec.template.metadata.labels", spec.selector, template);
  errs.push(...validatePodTemplateSpec("spec.template", template));
  restartAlwaysOnly(errs, "spec.template", template, kind);
}

function intOrPercent(v: unknown): number {
  if (typeof v === "string") {
    if (percentErrors(v).length === 0) return Number(v.slice(0, -1));
    return /^[+-]?\d+$/.test(v) ? Number(v) : 0;
  }
  return num(v) ?? 0;
}

function positiveIntOrPercent(field: string, v: unknown): FieldError[] {
  if (typeof v === "string")
    return percentErrors(v).map((m) => invalid(field, goIntOrString(v), m));
  if (typeof v === "number") return v < 0 ? [invalid(field, v, IS_NEGATIVE)] : [];
  return [];
}

function notMoreThan100(field: string, v: unknown): FieldError[] {
  if (typeof v === "string" && percentErrors(v).length === 0 && intOrPercent(v) > 100)
    return [invalid(field, goIntOrString(v), "must not be greater than 100%")];
  return [];
}

function goStrategy(type: string, strategy: Obj, rollingType: string): GoValue {
  const ru = isObj(strategy.rollingUpdate) ? "(0xc000000000)" : "(nil)";
  return new GoValue(
    `${type}{Type:${goQuote(str(strategy.type))}, RollingUpdate:(*${rollingType})${ru}}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Deployment.

export function defaultDeployment(obj: KObject): void {
  const spec = child(obj, "spec");
  setDefault(spec, "replicas", 1);
  const strategy = child(spec, "strategy");
  setDefaultStr(strategy, "type", "RollingUpdate");
  if (strategy.type === "RollingUpdate") {
    const ru = child(strategy, "rollingUpdate");
    setDefault(ru, "maxUnavailable", "25%");
    setDefault(ru, "maxSurge", "25%");
  }
  setDefault(spec, "revisionHistoryLimit", 10);
  setDefault(spec, "progressDeadlineSeconds", 600);
  defaultPodTemplateSpec(obj, child(spec, "template"));
}

export function validateDeployment(obj: KObject): FieldError[] {
  const spec = rec(obj.spec) ?? {};
  const errs = nonNegative("spec.replicas", spec.replicas);
  if (
    validateSelector(errs, spec, {
      emptyDetail: "empty selector is invalid for deployment",
      invalidDetail: "invalid label selector",
    })
  )
    validateTemplateForReplicaSet(errs, spec, "ReplicaSet");
  const strategy = rec(spec.strategy) ?? {};
  switch (strategy.type) {
    case "Recreate":
      if (isObj(strategy.rollingUpdate))
        errs.push(
          forbidden(
            "spec.strategy.rollingUpdate",
            "may not be specified when strategy `type` is 'Recreate'",
          ),
        );
      break;
    case "RollingUpdate": {
      const ru = rec(strategy.rollingUpdate);
      if (!ru) {
        errs.push(
          required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil"),
        );
        break;
      }
      const p = "spec.strategy.rollingUpdate";
      errs.push(...positiveIntOrPercent(`${p}.maxUnavailable`, ru.maxUnavailable));
      errs.push(...positiveIntOrPercent(`${p}.maxSurge`, ru.maxSurge));
      if (intOrPercent(ru.maxUnavailable) === 0 && intOrPercent(ru.maxSurge) === 0)
        errs.push(
          invalid(
            `${p}.maxUnavailable`,
            goIntOrString(ru.maxUnavailable),
            "may not be 0 when `maxSurge` is 0",
          ),
        );
      errs.push(...notMoreThan100(`${p}.maxUnavailable`, ru.maxUnavailable));
      break;
    }
    default:
      errs.push(
        unsupported(
          "spec.strategy",
          goStrategy("apps.DeploymentStrategy", strategy, "apps.RollingUpdateDeployment"),
          ["Recreate", "RollingUpdate"],
        ),
      );
  }
  errs.push(...nonNegative("spec.minReadySeconds", spec.minReadySeconds));
  errs.push(...nonNegative("spec.revisionHistoryLimit", spec.revisionHistoryLimit));
  const pds = num(spec.progressDeadlineSeconds);
  if (pds !== undefined) {
    errs.push(...nonNegative("spec.progressDeadlineSeconds", pds));
    if (pds <= (num(spec.minReadySeconds) ?? 0))
      errs.push(
        invalid("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds"),
      );
  }
  return errs;
}

function selectorImmutable(obj: KObject, old: KObject): FieldError[] {
  const sel = rec(obj.spec)?.selector;
  const oldSel = rec(old.spec)?.selector;
  return immutable("spec.selector", sel, oldSel, goLabelSelector(sel));
}

export const deploymentStrategy: Partial<Strategy> = {
  tracksGeneration: true,
  defaults: defaultDeployment,
  ...resetStatus([]),
  validate: validateDeployment,
  validateUpdate: (obj, old) => [...validateDeployment(obj), ...selectorImmutable(obj, old)],
};

// ---------------------------------------------------------------------------------------------
// ReplicaSet.

export function defaultReplicaSet(obj: KObject): void {
  const spec = child(obj, "spec");
  setDefault(spec, "replicas", 1);
  defaultPodTemplateSpec(obj, child(spec, "template"));
  zeroFields(obj, ["replicas"]);
}

export function validateReplicaSet(obj: KObject): FieldError[] {
  const spec = rec(obj.spec) ?? {};
  const errs = nonNegative("spec.replicas", spec.replicas);
  errs.push(...nonNegative("spec.minReadySeconds", spec.minReadySeconds));
  if (
    validateSelector(errs, spec, {
      emptyDetail: "empty selector is invalid for deployment",
      invalidDetail: "invalid label selector",
    })
  )
    validateTemplateForReplicaSet(errs, spec, "ReplicaSet");
  return errs;
}

export const replicaSetStrategy: Partial<Strategy> = {
  tracksGeneration: true,
  defaults: defaultReplicaSet,
  ...resetStatus(["replicas"]),
  validate: validateReplicaSet,
  validateUpdate: (obj, old) => [...validateReplicaSet(obj), ...selectorImmutable(obj, old)],
};

// ---------------------------------------------------------------------------------------------
// StatefulSet.

export function defaultStatefulSet(obj: KObject): void {
  const spec = child(obj, "spec");
  setDefaultStr(spec, "podManagementPolicy", "OrderedReady");
  const us = child(spec, "updateStrategy");
  if (!str(us.type)) {
    us.type = "RollingUpdate";
    setDefault(us, "rollingUpdate", {});
  }
  const ru = rec(us.rollingUpdate);
  if (us.type === "RollingUpdate" && ru) setDefault(ru, "partition", 0);
  const retention = child(spec, "persistentVolumeClaimRetentionPolicy");
  setDefaultStr(retention, "whenDeleted", "Retain");
  setDefaultStr(retention, "whenScaled", "Retain");
  setDefault(spec, "replicas", 1);
  setDefault(spec, "revisionHistoryLimit", 10);
  setDefault(spec, "serviceName", "");
  defaultPodTemplateSpec(obj, child(spec, "template"));
  for (const [claim] of items(spec.volumeClaimTemplates)) {
    claim.apiVersion = "v1";
    claim.kind = "PersistentVolumeClaim";
    defaultEmbeddedMeta(claim);
    defaultPVCSpec(obj, child(claim, "spec"));
    setDefaultStr(child(claim, "status"), "phase", "Pending");
  }
  zeroFields(obj, ["replicas", "availableReplicas"]);
}

const RETENTION = ["Retain", "Delete"];

export function validateStatefulSet(obj: KObject): FieldError[] {
  const spec = rec(obj.spec) ?? {};
  const errs: FieldError[] = [];
  const pmp = str(spec.podManagementPolicy);
  if (!pmp) errs.push(required("spec.podManagementPolicy"));
  else if (pmp !== "OrderedReady" && pmp !== "Parallel")
    errs.push(invalid("spec.podManagementPolicy", pmp, "must be 'OrderedReady' or 'Parallel'"));
  const us = rec(spec.updateStrategy) ?? {};
  const ru = rec(us.rollingUpdate);
  switch (str(us.type)) {
    case "":
      errs.push(required("spec.updateStrategy"));
      break;
    case "OnDelete":
      if (ru)
        errs.push(
          invalid(
            "spec.updateStrategy.rollingUpdate",
            new GoValue(
              `apps.RollingUpdateStatefulSetStrategy{Partition:${num(ru.partition) ?? 0}, MaxUnavailable:(*intstr.IntOrString)(${isObj(ru.maxUnavailable) || ru.maxUnavailable !== undefined ? "0xc000000000" : "nil"})}`,
            ),
            "only allowed for updateStrategy 'RollingUpdate'",
          ),
        );
      break;
    case "RollingUpdate":
      if (ru)
        errs.push(...nonNegative("spec.updateStrategy.rollingUpdate.partition", ru.partition ?? 0));
      break;
    default:
      errs.push(
        invalid(
          "spec.updateStrategy",
          goStrategy("apps.StatefulSetUpdateStrategy", us, "apps.RollingUpdateStatefulSetStrategy"),
          "must be 'RollingUpdate' or 'OnDelete'",
        ),
      );
  }
  const retention = rec(spec.persistentVolumeClaimRetentionPolicy);
  if (retention) {
    for (const f of ["whenDeleted", "whenScaled"]) {
      const v = str(retention[f]);
      if (!RETENTION.includes(v))
        errs.push(unsupported(`spec.persistentVolumeClaimRetentionPolicy.${f}`, v, RETENTION));
    }
  }
  errs.push(...nonNegative("spec.replicas", spec.replicas));
  errs.push(...nonNegative("spec.minReadySeconds", spec.minReadySeconds));
  const ordinals = rec(spec.ordinals);
  if (ordinals) errs.push(...nonNegative("spec.ordinals.start", ordinals.start ?? 0));
  if (
    validateSelector(errs, spec, {
      emptyDetail: "empty selector is invalid for statefulset",
      invalidDetail: "",
    })
  ) {
    const template = templateOf(spec);
    const meta = rec(template.metadata) ?? {};
    templateMatches(errs, "spec.template.metadata.labels", spec.selector, template);
    errs.push(...validateLabels("spec.template.labels", meta.labels));
    errs.push(...validateAnnotations("spec.template.annotations", meta.annotations));
    errs.push(
      ...validatePodAnnotations(
        "spec.template.annotations",
        meta.annotations,
        rec(template.spec) ?? {},
      ),
    );
  }
  restartAlwaysOnly(errs, "spec.template", templateOf(spec), "StatefulSet");
  return errs;
}

const STS_MUTABLE = [
  "replicas",
  "template",
  "updateStrategy",
  "minReadySeconds",
  "ordinals",
  "persistentVolumeClaimRetentionPolicy",
];

export function validateStatefulSetUpdate(obj: KObject, old: KObject): FieldError[] {
  const errs = validateStatefulSet(obj);
  const spec = { ...(rec(obj.spec) ?? {}) };
  const oldSpec = { ...(rec(old.spec) ?? {}) };
  for (const f of STS_MUTABLE) {
    delete spec[f];
    delete oldSpec[f];
  }
  if (JSON.stringify(sortKeys(spec)) !== JSON.stringify(sortKeys(oldSpec)))
    errs.push(
      forbidden(
        "spec",
        "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
      ),
    );
  return errs;
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (isObj(v))
    return Object.fromEntries(
      Object.keys(v)
        .filter((k) => v[k] !== undefined)
        .sort()
        .map((k) => [k, sortKeys(v[k])]),
    );
  return v;
}

export const statefulSetStrategy: Partial<Strategy> = {
  tracksGeneration: true,
  nameFormat: "label",
  defaults: defaultStatefulSet,
  ...resetStatus(["replicas", "availableReplicas"]),
  validate: validateStatefulSet,
  validateUpdate: validateStatefulSetUpdate,
};

// ---------------------------------------------------------------------------------------------
// DaemonSet.

const DS_STATUS = [
  "currentNumberScheduled",
  "numberMisscheduled",
  "desiredNumberScheduled",
  "numberReady",
];

export function defaultDaemonSet(obj: KObject): void {
  const spec = child(obj, "spec");
  const us = child(spec, "updateStrategy");
  setDefaultStr(us, "type", "RollingUpdate");
  if (us.type === "RollingUpdate") {
    const ru = child(us, "rollingUpdate");
    setDefault(ru, "maxUnavailable", 1);
    setDefault(ru, "maxSurge", 0);
  }
  setDefault(spec, "revisionHistoryLimit", 10);
  defaultPodTemplateSpec(obj, child(spec, "template"));
  zeroFields(obj, DS_STATUS);
}

export function validateDaemonSet(obj: KObject): FieldError[] {
  const spec = rec(obj.spec) ?? {};
  const errs = validateLabelSelector("spec.selector", spec.selector);
  const template = templateOf(spec);
  if (errs.length === 0 && !(isObj(spec.selector) && selectorEmpty(spec.selector))) {
    if (!selectorMatches(spec.selector, rec(template.metadata)?.labels))
      errs.push(
        invalid(
          "spec.template.metadata.labels",
          goStringMap(rec(template.metadata)?.labels),
          "`selector` does not match template `labels`",
        ),
      );
  }
  if (isObj(spec.selector) && selectorEmpty(spec.selector))
    errs.push(
      invalid(
        "spec.selector",
        goLabelSelector(spec.selector),
        "empty selector is invalid for daemonset",
      ),
    );
  errs.push(...validatePodTemplateSpec("spec.template", template));
  restartAlwaysOnly(errs, "spec.template", template, "DaemonSet");
  errs.push(...nonNegative("spec.minReadySeconds", spec.minReadySeconds));
  const us = rec(spec.updateStrategy) ?? {};
  switch (str(us.type)) {
    case "OnDelete":
      break;
    case "RollingUpdate": {
      const ru = rec(us.rollingUpdate);
      if (!ru) {
        errs.push(required("spec.updateStrategy.rollingUpdate"));
        break;
      }
      const p = "spec.updateStrategy.rollingUpdate";
      errs.push(...positiveIntOrPercent(`${p}.maxUnavailable`, ru.maxUnavailable));
      errs.push(...positiveIntOrPercent(`${p}.maxSurge`, ru.maxSurge));
      errs.push(...notMoreThan100(`${p}.maxUnavailable`, ru.maxUnavailable));
      errs.push(...notMoreThan100(`${p}.maxSurge`, ru.maxSurge));
      const hasUnavailable = intOrPercent(ru.maxUnavailable) !== 0;
      const hasSurge = intOrPercent(ru.maxSurge) !== 0;
      if (hasUnavailable && hasSurge)
        errs.push(
          invalid(
            `${p}.maxSurge`,
            goIntOrString(ru.maxSurge),
            "may not be set when maxUnavailable is non-zero",
          ),
        );
      else if (!hasUnavailable && !hasSurge)
        errs.push(required(`${p}.maxUnavailable`, "cannot be 0 when maxSurge is 0"));
      break;
    }
    default:
      errs.push(
        unsupported(
          "spec.updateStrategy",
          goStrategy("apps.DaemonSetUpdateStrategy", us, "apps.RollingUpdateDaemonSet"),
          ["RollingUpdate", "OnDelete"],
        ),
      );
  }
  errs.push(...nonNegative("spec.revisionHistoryLimit", spec.revisionHistoryLimit));
  return errs;
}

/**
 * apps/v1 keeps the DaemonSet's template generation in this annotation: 1 at create, one more
 * each time an update changes the template, whatever the client sent (the controller labels its
 * pods `pod-template-generation` from it).
 */
export const DS_TEMPLATE_GENERATION = "deprecated.daemonset.template.generation";

function setTemplateGeneration(obj: KObject, generation: number): void {
  const meta = (obj.metadata ??= {});
  meta.annotations = { ...meta.annotations, [DS_TEMPLATE_GENERATION]: String(generation) };
}

export const daemonSetStrategy: Partial<Strategy> = {
  tracksGeneration: true,
  defaults: defaultDaemonSet,
  prepareForCreate(obj) {
    resetStatus(DS_STATUS).prepareForCreate!(obj);
    setTemplateGeneration(obj, 1);
  },
  prepareForUpdate(obj, old) {
    const before = Number(old.metadata?.annotations?.[DS_TEMPLATE_GENERATION] ?? "0") || 0;
    const template = (o: KObject) => (o.spec as { template?: unknown } | undefined)?.template;
    const changed = !deepEqual(template(obj), template(old));
    const next = before + (changed ? 1 : 0);
    if (next > 0) setTemplateGeneration(obj, next);
  },
  validate: validateDaemonSet,
  validateUpdate: (obj, old) => [...validateDaemonSet(obj), ...selectorImmutable(obj, old)],
};

// ---------------------------------------------------------------------------------------------
// ReplicationController.

export function defaultReplicationController(obj: KObject): void {
  const spec = child(obj, "spec");
  const template = rec(spec.template);
  const labels = rec(rec(template?.metadata)?.labels);
  if (labels) {
    if (!isObj(spec.selector) || Object.keys(spec.selector).length === 0)
      spec.selector = { ...labels };
    const meta = (obj.metadata ??= {});
    if (!meta.labels || Object.keys(meta.labels).length === 0)
      meta.labels = { ...labels } as Record<string, string>;
  }
  setDefault(spec, "replicas", 1);
  if (template) defaultPodTemplateSpec(obj, template);
  zeroFields(obj, ["replicas"]);
}

export function validateReplicationController(obj: KObject): FieldError[] {
  const spec = rec(obj.spec) ?? {};
  const errs = nonNegative("spec.minReadySeconds", spec.minReadySeconds);
  const selector = rec(spec.selector) ?? {};
  if (Object.keys(selector).length === 0) errs.push(required("spec.selector"));
  errs.push(...nonNegative("spec.replicas", spec.replicas));
  const template = rec(spec.template);
  if (!template) errs.push(required("spec.template"));
  else {
    const labels = rec(template.metadata)?.labels;
    if (Object.keys(selector).length > 0 && !labelMapMatches(selector, labels))
      errs.push(
        invalid(
          "spec.template.metadata.labels",
          goStringMap(labels),
          "`selector` does not match template `labels`",
        ),
      );
    errs.push(...validatePodTemplateSpec("spec.template", template));
    restartAlwaysOnly(errs, "spec.template", template, "ReplicationController");
  }
  return errs;
}

export const replicationControllerStrategy: Partial<Strategy> = {
  tracksGeneration: true,
  defaults: defaultReplicationController,
  ...resetStatus(["replicas"]),
  validate: validateReplicationController,
  validateUpdate: validateReplicationController,
};
