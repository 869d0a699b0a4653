/**
 * Jobs and CronJobs (batch/v1): upstream 1.32's defaults, the selector and labels a Job gets on
 * create, and the core of their validation, including cron schedule parsing with upstream's
 * (robfig/cron v3) messages.
 */
import type { FieldError } from "../../api/status.js";
import type { KObject, Strategy } from "../registry/types.js";
import { cronScheduleError, validTimeZone } from "./cron.js";
import { defaultEmbeddedMeta, defaultPodTemplateSpec, validatePodTemplateSpec } from "./pod.js";
import {
  at,
  child,
  clone,
  deepEqual,
  dnsLabelErrors,
  duplicate,
  goLabelSelector,
  goQuote,
  GoValue,
  immutable,
  invalid,
  isObj,
  items,
  nonNegative,
  num,
  qualifiedName,
  rec,
  required,
  selectorMatches,
  setDefault,
  str,
  unset,
  unsupported,
  validateLabelSelector,
  type Obj,
} from "./util.js";

export const JOB_NAME_LABEL = "batch.kubernetes.io/job-name";
export const CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid";
export const LEGACY_JOB_NAME_LABEL = "job-name";
export const LEGACY_CONTROLLER_UID_LABEL = "controller-uid";

const INT32_MAX = 2147483647;

// ---------------------------------------------------------------------------------------------
// Job defaults and create-time selector.

function defaultPodFailurePolicy(spec: Obj): void {
  for (const [rule] of items(rec(spec.podFailurePolicy)?.rules))
    for (const [pattern] of items(rule.onPodConditions))
      if (!str(pattern.status)) pattern.status = "True";
}

/** Upstream's SetDefaults_Job (job labels alias the template's labels, as Go's map copy does). */
export function defaultJob(obj: KObject): void {
  const spec = child(obj, "spec");
  if (unset(spec.completions) && unset(spec.parallelism)) {
    spec.completions = 1;
    spec.parallelism = 1;
  }
  setDefault(spec, "parallelism", 1);
  if (unset(spec.backoffLimit))
    spec.backoffLimit = unset(spec.backoffLimitPerIndex) ? 6 : INT32_MAX;
  const template = child(spec, "template");
  const templateLabels = rec(rec(template.metadata)?.labels);
  const meta = (obj.metadata ??= {});
  if (templateLabels && (!meta.labels || Object.keys(meta.labels).length === 0))
    meta.labels = templateLabels as Record<string, string>;
  setDefault(spec, "completionMode", "NonIndexed");
  setDefault(spec, "suspend", false);
  if (unset(spec.podReplacementPolicy))
    spec.podReplacementPolicy = isObj(spec.podFailurePolicy) ? "Failed" : "TerminatingOrFailed";
  setDefault(spec, "manualSelector", false);
  defaultPodFailurePolicy(spec);
  defaultPodTemplateSpec(obj, template);
}

/**
 * What upstream's job strategy does on create: the status is reset and, unless the selector is
 * manual, the selector and pod template labels are generated from the job's name and uid. Job
 * labels defaulted from the template (still the same object) see the generated labels too, and
 * so do empty job labels (upstream defaults them again when it reads the stored Job).
 */
export function prepareJobForCreate(obj: KObject): void {
  obj.status = {};
  const spec = child(obj, "spec");
  const meta = (obj.metadata ??= {});
  if (spec.manualSelector !== true) {
    const template = child(spec, "template");
    const tmeta = child(template, "metadata");
    const labels = (tmeta.labels = rec(tmeta.labels) ?? {});
    const name = meta.name ?? "";
    const uid = meta.uid ?? "";
    for (const k of [LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL]) if (!(k in labels)) labels[k] = name;
    for (const k of [LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL])
      if (!(k in labels)) labels[k] = uid;
    const selector = child(spec, "selector");
    const matchLabels = child(selector, "matchLabels");
    if (!(CONTROLLER_UID_LABEL in matchLabels)) matchLabels[CONTROLLER_UID_LABEL] = uid;
  }
  const templateLabels = rec(rec(rec(spec.template)?.metadata)?.labels);
  if (templateLabels && (!meta.labels || Object.keys(meta.labels).length === 0))
    meta.labels = { ...templateLabels } as Record<string, string>;
}

// ---------------------------------------------------------------------------------------------
// Job validation.

function hasLabel(errs: FieldError[], template: Obj, k: string, expected: string): void {
  const labels = rec(rec(template.metadata)?.labels) ?? {};
  const p = `spec.template.metadata.labels[${k}]`;
  if (!(k in labels)) errs.push(required(p, `must be '${expected}'`));
  else if (labels[k] !== expected)
    errs.push(invalid(p, goStringMapOf(labels), `must be '${expected}'`));
}

function goStringMapOf(m: Obj): GoValue {
  const keys = Object.keys(m).sort();
  return new GoValue(
    `map[string]string{${keys.map((k) => `${goQuote(k)}:${goQuote(str(m[k]))}`).join(", ")}}`,
  );
}

function validateGeneratedSelector(obj: KObject): FieldError[] {
  const spec = rec(obj.spec) ?? {};
  if (spec.manualSelector === true || !isObj(spec.selector)) return [];
  const errs: FieldError[] = [];
  const uid = obj.metadata?.uid ?? "";
  const name = obj.metadata?.name ?? "";
  if (!uid) errs.push(required("metadata.uid"));
  const template = rec(spec.template) ?? {};
  hasLabel(errs, template, LEGACY_CONTROLLER_UID_LABEL, uid);
  hasLabel(errs, template, LEGACY_JOB_NAME_LABEL, name);
  hasLabel(errs, template, CONTROLLER_UID_LABEL, uid);
  hasLabel(errs, template, JOB_NAME_LABEL, name);
  const expected = {
    [CONTROLLER_UID_LABEL]: uid,
    [JOB_NAME_LABEL]: name,
    [LEGACY_CONTROLLER_UID_LABEL]: uid,
    [LEGACY_JOB_NAME_LABEL]: name,
  };
  if (
    validateLabelSelector("spec.selector", spec.selector).length === 0 &&
    !selectorMatches(spec.selector, expected)
  )
    errs.push(
      invalid("spec.selector", goLabelSelector(spec.selector), "`selector` not auto-generated"),
    );
  return errs;
}

const POD_FAILURE_ACTIONS = ["Count", "FailIndex", "FailJob", "Ignore"];
const CONDITION_STATUSES = ["False", "True", "Unknown"];

function validatePodFailurePolicy(field: string, spec: Obj): FieldError[] {
  const errs: FieldError[] = [];
  const rules = items(rec(spec.podFailurePolicy)?.rules);
  if (rules.length > 20)
    errs.push({
      type: "FieldValueTooMany",
      field: at(field, "rules"),
      message: `${at(field, "rules")}: Too many: ${rules.length}: must have at most 20 items`,
    });
  const template = rec(spec.template) ?? {};
  const tspec = rec(template.spec) ?? {};
  const containerNames = new Set(
    [...items(tspec.containers), ...items(tspec.initContainers)].map(([c]) => str(c.name)),
  );
  for (const [rule, i] of rules) {
    const p = `${at(field, "rules")}[${i}]`;
    const action = str(rule.action);
    if (!action)
      errs.push(
        required(at(p, "action"), `valid values: [${POD_FAILURE_ACTIONS.map(goQuote).join(" ")}]`),
      );
    else if (action === "FailIndex") {
      if (unset(spec.backoffLimitPerIndex))
        errs.push(invalid(at(p, "action"), action, "requires the backoffLimitPerIndex to be set"));
    } else if (!POD_FAILURE_ACTIONS.includes(action))
      errs.push(unsupported(at(p, "action"), action, POD_FAILURE_ACTIONS));
    const onExitCodes = rec(rule.onExitCodes);
    const onPodConditions = items(rule.onPodConditions);
    if (onExitCodes) {
      const ep = at(p, "onExitCodes");
      const op = str(onExitCodes.operator);
      if (!op)
        errs.push(
          required(at(ep, "operator"), `valid values: [${["In", "NotIn"].map(goQuote).join(" ")}]`),
        );
      else if (!["In", "NotIn"].includes(op))
        errs.push(unsupported(at(ep, "operator"), op, ["In", "NotIn"]));
      if (
        typeof onExitCodes.containerName === "string" &&
        !containerNames.has(onExitCodes.containerName)
      )
        errs.push(
          invalid(
            at(ep, "containerName"),
            onExitCodes.containerName,
            "must be one of the container or initContainer names in the pod template",
          ),
        );
      const values = Array.isArray(onExitCodes.values)
        ? onExitCodes.values.map((v) => num(v) ?? 0)
        : [];
      if (values.length === 0)
        errs.push(
          invalid(at(ep, "values"), new GoValue("[]int32(nil)"), "at least one value is required"),
        );
      const unique = new Set<number>();
      let ordered = true;
      values.forEach((v, j) => {
        const vp = `${at(ep, "values")}[${j}]`;
        if (op === "In" && v === 0) errs.push(invalid(vp, v, "must not be 0 for the In operator"));
        if (unique.has(v)) errs.push(duplicate(vp, v));
        unique.add(v);
        if (j > 0 && values[j - 1]! > v) ordered = false;
      });
      if (!ordered)
        errs.push(
          invalid(
            at(ep, "values"),
            new GoValue(`[]int32{${values.join(", ")}}`),
            "must be ordered",
          ),
        );
    }
    for (const [pattern, j] of onPodConditions) {
      const pp = `${at(p, "onPodConditions")}[${j}]`;
      errs.push(...qualifiedName(at(pp, "type"), str(pattern.type)));
      const status = str(pattern.status);
      if (!status)
        errs.push(
          required(
            at(pp, "status"),
            `valid values: [${CONDITION_STATUSES.map(goQuote).join(" ")}]`,
          ),
        );
      else if (!CONDITION_STATUSES.includes(status))
        errs.push(unsupported(at(pp, "status"), status, CONDITION_STATUSES));
    }
    if (onExitCodes && onPodConditions.length > 0)
      errs.push({
        type: "FieldValueInvalid",
        field: p,
        message: `${p}: Invalid value: specifying both OnExitCodes and OnPodConditions is not supported`,
      });
    if (!onExitCodes && onPodConditions.length === 0)
      errs.push({
        type: "FieldValueInvalid",
        field: p,
        message: `${p}: Invalid value: specifying one of OnExitCodes and OnPodConditions is required`,
      });
  }
  return errs;
}

/** Upstream's validateJobSpec: what Jobs and CronJob job templates share. */
function validateJobSpecCommon(field: string, spec: Obj): FieldError[] {
  const errs: FieldError[] = [];
  for (const f of [
    "parallelism",
    "completions",
    "activeDeadlineSeconds",
    "backoffLimit",
    "ttlSecondsAfterFinished",
    "backoffLimitPerIndex",
  ])
    errs.push(...nonNegative(at(field, f), spec[f]));
  if (!unset(spec.maxFailedIndexes)) {
    errs.push(...nonNegative(at(field, "maxFailedIndexes"), spec.maxFailedIndexes));
    if (unset(spec.backoffLimitPerIndex))
      errs.push(required(at(field, "backoffLimitPerIndex"), "when maxFailedIndexes is specified"));
  }
  const mode = spec.completionMode;
  if (!unset(mode)) {
    if (mode !== "NonIndexed" && mode !== "Indexed")
      errs.push(unsupported(at(field, "completionMode"), str(mode), ["NonIndexed", "Indexed"]));
    if (mode === "Indexed") {
      if (unset(spec.completions))
        errs.push(required(at(field, "completions"), "when completion mode is Indexed"));
      const parallelism = num(spec.parallelism);
      if (parallelism !== undefined && parallelism > 100000)
        errs.push(
          invalid(
            at(field, "parallelism"),
            parallelism,
            "must be less than or equal to 100000 when completion mode is Indexed",
          ),
        );
      const completions = num(spec.completions);
      const mfi = num(spec.maxFailedIndexes);
      if (completions !== undefined && mfi !== undefined && mfi > completions)
        errs.push(
          invalid(at(field, "maxFailedIndexes"), mfi, "must be less than or equal to completions"),
        );
      if (mfi !== undefined && mfi > 100000)
        errs.push(
          invalid(at(field, "maxFailedIndexes"), mfi, "must be less than or equal to 100000"),
        );
    }
  }
  if (unset(mode) || mode === "NonIndexed") {
    if (!unset(spec.backoffLimitPerIndex))
      errs.push(
        invalid(
          at(field, "backoffLimitPerIndex"),
          num(spec.backoffLimitPerIndex) ?? 0,
          "requires indexed completion mode",
        ),
      );
    if (!unset(spec.maxFailedIndexes))
      errs.push(
        invalid(
          at(field, "maxFailedIndexes"),
          num(spec.maxFailedIndexes) ?? 0,
          "requires indexed completion mode",
        ),
      );
  }
  if (isObj(spec.podFailurePolicy))
    errs.push(...validatePodFailurePolicy(at(field, "podFailurePolicy"), spec));
  if (!unset(spec.podReplacementPolicy)) {
    const prp = str(spec.podReplacementPolicy);
    if (isObj(spec.podFailurePolicy)) {
      if (prp !== "Failed")
        errs.push(unsupported(at(field, "podReplacementPolicy"), prp, ["Failed"]));
    } else if (!["Failed", "TerminatingOrFailed"].includes(prp))
      errs.push(
        unsupported(at(field, "podReplacementPolicy"), prp, ["Failed", "TerminatingOrFailed"]),
      );
  }
  const template = rec(spec.template) ?? {};
  errs.push(...validatePodTemplateSpec(at(field, "template"), template));
  const rp = str(rec(template.spec)?.restartPolicy);
  const rpPath = at(field, "template.spec.restartPolicy");
  if (rp === "Always" || rp === "")
    errs.push(required(rpPath, 'valid values: "OnFailure", "Never"'));
  else if (rp !== "OnFailure" && rp !== "Never")
    errs.push(unsupported(rpPath, rp, ["OnFailure", "Never"]));
  else if (isObj(spec.podFailurePolicy) && rp !== "Never")
    errs.push(invalid(rpPath, rp, 'only "Never" is supported when podFailurePolicy is specified'));
  return errs;
}

export function validateJobSpec(spec: Obj): FieldError[] {
  const errs = validateJobSpecCommon("spec", spec);
  if (!isObj(spec.selector)) errs.push(required("spec.selector"));
  else errs.push(...validateLabelSelector("spec.selector", spec.selector));
  const labels = rec(rec(rec(spec.template)?.metadata)?.labels);
  if (
    validateLabelSelector("spec.selector", spec.selector).length === 0 &&
    !selectorMatchesOrEmpty(spec.selector, labels)
  )
    errs.push(
      invalid(
        "spec.template.metadata.labels",
        goStringMapOf(labels ?? {}),
        "`selector` does not match template `labels`",
      ),
    );
  return errs;
}

function selectorMatchesOrEmpty(selector: unknown, labels: unknown): boolean {
  if (!isObj(selector)) return false;
  const ml = rec(selector.matchLabels);
  const exprs = Array.isArray(selector.matchExpressions) ? selector.matchExpressions : [];
  if ((!ml || Object.keys(ml).length === 0) && exprs.length === 0) return true;
  return selectorMatches(selector, labels);
}

export function validateJob(obj: KObject): FieldError[] {
  const errs = validateGeneratedSelector(obj);
  const spec = rec(obj.spec) ?? {};
  errs.push(...validateJobSpec(spec));
  const completions = num(spec.completions);
  if (spec.completionMode === "Indexed" && completions !== undefined && completions > 0) {
    const hostname = `${obj.metadata?.name ?? ""}-${completions - 1}`;
    if (dnsLabelErrors(hostname).length > 0)
      errs.push(
        invalid(
          "metadata.name",
          obj.metadata?.name ?? "",
          `will not able to create pod with invalid DNS label: ${hostname}`,
        ),
      );
  }
  return errs;
}

/** Upstream's ValidateJobUpdate (beyond metadata). */
export function validateJobUpdate(obj: KObject, old: KObject): FieldError[] {
  const spec = rec(obj.spec) ?? {};
  const oldSpec = rec(old.spec) ?? {};
  const errs = validateJobSpec(spec);
  const indexed = spec.completionMode === "Indexed";
  if (!indexed || unset(spec.completions))
    errs.push(...immutable("spec.completions", spec.completions, oldSpec.completions));
  else if (
    !deepEqual(spec.completions, oldSpec.completions) &&
    spec.completions !== spec.parallelism
  )
    errs.push(
      invalid(
        "spec.completions",
        num(spec.completions) ?? 0,
        "can only be modified in tandem with spec.parallelism",
      ),
    );
  errs.push(
    ...immutable("spec.selector", spec.selector, oldSpec.selector, goLabelSelector(spec.selector)),
  );
  const template = clone(rec(spec.template) ?? {});
  const oldTemplate = clone(rec(oldSpec.template) ?? {});
  const suspended = spec.suspend === true;
  const notStarted = unset(rec(old.status)?.startTime);
  if (suspended && notStarted) {
    const tspec = child(template, "spec");
    const ospec = child(oldTemplate, "spec");
    for (const f of ["nodeSelector", "tolerations", "schedulingGates"]) ospec[f] = tspec[f];
    const tmeta = child(template, "metadata");
    const ometa = child(oldTemplate, "metadata");
    ometa.labels = tmeta.labels;
    ometa.annotations = tmeta.annotations;
    const affinity = rec(tspec.affinity);
    const oldAffinity = rec(ospec.affinity);
    if (!affinity && oldAffinity) {
      delete oldAffinity.nodeAffinity;
      if (Object.keys(oldAffinity).length === 0) delete ospec.affinity;
    } else if (affinity && !oldAffinity) ospec.affinity = { nodeAffinity: affinity.nodeAffinity };
    else if (affinity && oldAffinity) oldAffinity.nodeAffinity = affinity.nodeAffinity;
  }
  if (!deepEqual(template, oldTemplate))
    errs.push(
      invalid("spec.template", new GoValue("core.PodTemplateSpec{...}"), "field is immutable"),
    );
  for (const f of [
    "completionMode",
    "podFailurePolicy",
    "backoffLimitPerIndex",
    "managedBy",
    "successPolicy",
  ]) {
    if (!deepEqual(spec[f] ?? null, oldSpec[f] ?? null)) {
      const v = spec[f];
      const shown =
        typeof v === "string" || typeof v === "number" || unset(v)
          ? v
          : new GoValue(JSON.stringify(v));
      errs.push(invalid(`spec.${f}`, shown ?? null, "field is immutable"));
    }
  }
  return errs;
}

export const jobStrategy: Partial<Strategy> = {
  tracksGeneration: true,
  defaults: defaultJob,
  prepareForCreate: prepareJobForCreate,
  validate: validateJob,
  validateUpdate: validateJobUpdate,
};

// ---------------------------------------------------------------------------------------------
// CronJob.

export function defaultCronJob(obj: KObject): void {
  const spec = child(obj, "spec");
  if (!str(spec.concurrencyPolicy)) spec.concurrencyPolicy = "Allow";
  setDefault(spec, "suspend", false);
  setDefault(spec, "successfulJobsHistoryLimit", 3);
  setDefault(spec, "failedJobsHistoryLimit", 1);
  const jobTemplate = child(spec, "jobTemplate");
  defaultEmbeddedMeta(jobTemplate);
  const jobSpec = child(jobTemplate, "spec");
  defaultPodFailurePolicy(jobSpec);
  defaultPodTemplateSpec(obj, child(jobSpec, "template"));
}

function validateTimeZone(tz: unknown): FieldError[] {
  if (typeof tz !== "string") return [];
  const p = "spec.timeZone";
  if (tz.length === 0) return [invalid(p, tz, "timeZone must be nil or non-empty string")];
  for (const part of tz.split("/")) {
    if (
      part === "." ||
      part === ".." ||
      part.startsWith("-") ||
      !/^[A-Za-z.\-_0-9+]{1,14}$/.test(part)
    )
      return [invalid(p, tz, `unknown time zone ${tz}`)];
  }
  const errs: FieldError[] = [];
  if (tz.toLowerCase() === "local")
    errs.push(
      invalid(
        p,
        tz,
        "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
      ),
    );
  else if (!validTimeZone(tz)) errs.push(invalid(p, tz, `unknown time zone ${tz}`));
  return errs;
}

function validateCronJobSpec(spec: Obj, oldSpec?: Obj): FieldError[] {
  const errs: FieldError[] = [];
  const schedule = str(spec.schedule);
  if (!schedule) errs.push(required("spec.schedule"));
  else {
    const err = cronScheduleError(schedule);
    if (err) errs.push(invalid("spec.schedule", schedule, err));
    const allowTZ = oldSpec ? str(oldSpec.schedule).includes("TZ") : false;
    if (allowTZ && schedule.includes("TZ") && typeof spec.timeZone === "string")
      errs.push(
        invalid(
          "spec.schedule",
          schedule,
          "cannot use both timeZone field and TZ or CRON_TZ in schedule",
        ),
      );
    else if (!allowTZ && schedule.includes("TZ"))
      errs.push(
        invalid(
          "spec.schedule",
          schedule,
          "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        ),
      );
  }
  errs.push(...nonNegative("spec.startingDeadlineSeconds", spec.startingDeadlineSeconds));
  if (!oldSpec || oldSpec.timeZone !== spec.timeZone) errs.push(...validateTimeZone(spec.timeZone));
  const cp = str(spec.concurrencyPolicy);
  if (!cp) errs.push(required("spec.concurrencyPolicy"));
  else if (!["Allow", "Forbid", "Replace"].includes(cp))
    errs.push(unsupported("spec.concurrencyPolicy", cp, ["Allow", "Forbid", "Replace"]));
  const jobSpec = rec(rec(spec.jobTemplate)?.spec) ?? {};
  errs.push(...validateJobSpecCommon("spec.jobTemplate.spec", jobSpec));
  if (isObj(jobSpec.selector))
    errs.push(
      invalid(
        "spec.jobTemplate.spec.selector",
        goLabelSelector(jobSpec.selector),
        "`selector` will be auto-generated",
      ),
    );
  if (jobSpec.manualSelector === true)
    errs.push(unsupported("spec.jobTemplate.spec.manualSelector", true, ["nil", "false"]));
  errs.push(...nonNegative("spec.successfulJobsHistoryLimit", spec.successfulJobsHistoryLimit));
  errs.push(...nonNegative("spec.failedJobsHistoryLimit", spec.failedJobsHistoryLimit));
  return errs;
}

export function validateCronJob(obj: KObject): FieldError[] {
  const errs = validateCronJobSpec(rec(obj.spec) ?? {});
  const name = obj.metadata?.name ?? "";
  if (name.length > 52)
    errs.push(invalid("metadata.name", name, "must be no more than 52 characters"));
  return errs;
}

export const cronJobStrategy: Partial<Strategy> = {
  tracksGeneration: true,
  defaults: defaultCronJob,
  prepareForCreate(obj) {
    obj.status = {};
  },
  validate: validateCronJob,
  validateUpdate: (obj, old) => validateCronJobSpec(rec(obj.spec) ?? {}, rec(old.spec) ?? {}),
};

export { cronScheduleError };
