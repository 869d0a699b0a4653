/**
 * The other kinds: Namespace, ConfigMap, Secret, ServiceAccount, Node, Event, PersistentVolume(Claim),
 * LimitRange, ResourceQuota, HorizontalPodAutoscaler, PodDisruptionBudget, Ingress, IngressClass,
 * NetworkPolicy, RBAC, PriorityClass, StorageClass, Lease and EndpointSlice, with upstream 1.32's
 * defaults and the core of their validation.
 */
import type { FieldError } from "../../api/status.js";
import type { KObject, Strategy } from "../registry/types.js";
import { dns1123SubdomainErrors, labelValueErrors } from "../validation/objectmeta.js";
import { defaultPVCSpec, validatePVCSpec } from "./pod.js";
import {
  cmpQuantity,
  normalizeQuantity,
  normalizeResourceList,
  quantityOf,
  quantityString,
  ZERO,
} from "./quantity.js";
import {
  at,
  child,
  clone,
  configMapKeyErrors,
  deepEqual,
  dns1035LabelErrors,
  dnsLabelErrors,
  dnsSubdomain,
  duplicate,
  forbidden,
  goIntOrString,
  goQuote,
  GoValue,
  idx,
  immutable,
  invalid,
  IS_NEGATIVE,
  isIP,
  isObj,
  items,
  key,
  num,
  pathSegmentErrors,
  percentErrors,
  portNumOrName,
  qualifiedName,
  rec,
  required,
  setDefault,
  setDefaultStr,
  str,
  tooLong,
  unset,
  unsupported,
  validateLabelSelector,
  type Obj,
} from "./util.js";

const STANDARD_FINALIZERS = ["kubernetes", "orphan", "foregroundDeletion"];

// ---------------------------------------------------------------------------------------------
// Namespace.

function labelNamespace(obj: KObject): void {
  const meta = (obj.metadata ??= {});
  if (meta.name) meta.labels = { ...meta.labels, "kubernetes.io/metadata.name": meta.name };
}

export const namespaceStrategy: Partial<Strategy> = {
  nameFormat: "label",
  defaults(obj) {
    labelNamespace(obj);
    child(obj, "spec");
    setDefaultStr(child(obj, "status"), "phase", "Active");
  },
  prepareForCreate(obj) {
    labelNamespace(obj);
    obj.status = { phase: "Active" };
    const spec = child(obj, "spec");
    const finalizers = Array.isArray(spec.finalizers) ? spec.finalizers : [];
    if (!finalizers.includes("kubernetes")) spec.finalizers = [...finalizers, "kubernetes"];
  },
  prepareForUpdate(obj, old) {
    const spec = child(obj, "spec");
    const oldFinalizers = rec(old.spec)?.finalizers;
    if (oldFinalizers === undefined) delete spec.finalizers;
    else spec.finalizers = clone(oldFinalizers);
    obj.status = clone(old.status);
  },
  validate(obj) {
    const errs: FieldError[] = [];
    for (const f of Array.isArray(rec(obj.spec)?.finalizers)
      ? (rec(obj.spec)!.finalizers as unknown[])
      : []) {
      const name = String(f);
      errs.push(...qualifiedName("spec.finalizers", name));
      if (!name.includes("/") && !STANDARD_FINALIZERS.includes(name))
        errs.push(
          invalid(
            "spec.finalizers",
            name,
            "name is neither a standard finalizer name nor is it fully qualified",
          ),
        );
    }
    return errs;
  },
  validateUpdate: () => [],
};

// ---------------------------------------------------------------------------------------------
// ConfigMap and Secret.

const MAX_SIZE = 1024 * 1024;

function base64Length(v: unknown): number {
  return Buffer.from(str(v), "base64").length;
}

function immutableData(obj: KObject, old: KObject, fields: string[]): FieldError[] {
  const errs: FieldError[] = [];
  if (old.immutable !== true) return errs;
  if (obj.immutable !== true)
    errs.push(forbidden("immutable", "field is immutable when `immutable` is set"));
  for (const f of fields)
    if (!deepEqual(obj[f] ?? null, old[f] ?? null))
      errs.push(forbidden(f, "field is immutable when `immutable` is set"));
  return errs;
}

export function validateConfigMap(obj: KObject): FieldError[] {
  const errs: FieldError[] = [];
  let size = 0;
  const binary = rec(obj.binaryData) ?? {};
  for (const [k, v] of Object.entries(rec(obj.data) ?? {})) {
    for (const m of configMapKeyErrors(k)) errs.push(invalid(key("data", k), k, m));
    if (k in binary)
      errs.push(invalid(key("data", k), k, "duplicate of key present in binaryData"));
    size += Buffer.byteLength(str(v));
  }
  for (const [k, v] of Object.entries(binary)) {
    for (const m of configMapKeyErrors(k)) errs.push(invalid(key("binaryData", k), k, m));
    size += base64Length(v);
  }
  if (size > MAX_SIZE) errs.push(tooLong("", MAX_SIZE));
  return errs;
}

export const configMapStrategy: Partial<Strategy> = {
  validate: validateConfigMap,
  validateUpdate: (obj, old) => [
    ...immutableData(obj, old, ["data", "binaryData"]),
    ...validateConfigMap(obj),
  ],
};

/** Go's encoding/json error for a document it cannot unmarshal into a map. */
function jsonObjectError(text: string): string | undefined {
  const trimmed = text.trim();
  if (trimmed === "") return "unexpected end of JSON input";
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch (err) {
    if (/end of JSON input|Unterminated|Unexpected end/i.test((err as Error).message))
      return "unexpected end of JSON input";
    const first = trimmed[0]!;
    if (!/[[{"0-9tfn-]/.test(first))
      return `invalid character '${first}' looking for beginning of value`;
    return (err as Error).message;
  }
  if (parsed === null || isObj(parsed)) return undefined;
  const kind = Array.isArray(parsed)
    ? "array"
    : typeof parsed === "boolean"
      ? "bool"
      : typeof parsed;
  return `json: cannot unmarshal ${kind} into Go value of type map[string]interface {}`;
}

export function defaultSecret(obj: KObject): void {
  setDefaultStr(obj, "type", "Opaque");
  const stringData = rec(obj.stringData);
  if (stringData) {
    const data = (obj.data = rec(obj.data) ?? {});
    for (const [k, v] of Object.entries(stringData))
      data[k] = Buffer.from(str(v)).toString("base64");
    delete obj.stringData;
  }
}

export function validateSecret(obj: KObject): FieldError[] {
  const errs: FieldError[] = [];
  const data = rec(obj.data) ?? {};
  let size = 0;
  for (const [k, v] of Object.entries(data)) {
    for (const m of configMapKeyErrors(k)) errs.push(invalid(key("data", k), k, m));
    size += base64Length(v);
  }
  if (size > MAX_SIZE) errs.push(tooLong("data", MAX_SIZE));
  const has = (k: string) => k in data;
  const decoded = (k: string) => Buffer.from(str(data[k]), "base64").toString();
  switch (str(obj.type)) {
    case "kubernetes.io/service-account-token":
      if (!str(rec(obj.metadata?.annotations)?.["kubernetes.io/service-account.name"]))
        errs.push(required("metadata.annotations[kubernetes.io/service-account.name]"));
      break;
    case "kubernetes.io/dockercfg":
    case "kubernetes.io/dockerconfigjson": {
      const k = obj.type === "kubernetes.io/dockercfg" ? ".dockercfg" : ".dockerconfigjson";
      if (!has(k)) {
        errs.push(required(key("data", k)));
        break;
      }
      const err = jsonObjectError(decoded(k));
      if (err) errs.push(invalid(key("data", k), "<secret contents redacted>", err));
      break;
    }
    case "kubernetes.io/basic-auth":
      if (!has("username") && !has("password")) {
        errs.push(required(key("data", "username")));
        errs.push(required(key("data", "password")));
      }
      break;
    case "kubernetes.io/ssh-auth":
      if (base64Length(data["ssh-privatekey"]) === 0)
        errs.push(required(key("data", "ssh-privatekey")));
      break;
    case "kubernetes.io/tls":
      if (!has("tls.crt")) errs.push(required(key("data", "tls.crt")));
      if (!has("tls.key")) errs.push(required(key("data", "tls.key")));
      break;
  }
  return errs;
}

export const secretStrategy: Partial<Strategy> = {
  defaults: defaultSecret,
  validate: validateSecret,
  validateUpdate: (obj, old) => [
    ...immutable("type", obj.type, old.type),
    ...immutableData(obj, old, ["data"]),
    ...validateSecret(obj),
  ],
};

export const serviceAccountStrategy: Partial<Strategy> = {};

// ---------------------------------------------------------------------------------------------
// Node.

const NODE_INFO = [
  "machineID",
  "systemUUID",
  "bootID",
  "kernelVersion",
  "osImage",
  "containerRuntimeVersion",
  "kubeletVersion",
  "kubeProxyVersion",
  "operatingSystem",
  "architecture",
];

export function defaultNode(obj: KObject): void {
  const spec = child(obj, "spec");
  const cidrs = Array.isArray(spec.podCIDRs) ? spec.podCIDRs : [];
  if (str(spec.podCIDR) && (cidrs.length === 0 || cidrs[0] !== spec.podCIDR))
    spec.podCIDRs = [spec.podCIDR];
  if (Array.isArray(spec.podCIDRs) && spec.podCIDRs.length > 0) spec.podCIDR = spec.podCIDRs[0];
  const status = child(obj, "status");
  normalizeResourceList(obj, status.capacity);
  normalizeResourceList(obj, status.allocatable);
  if (unset(status.allocatable) && isObj(status.capacity))
    status.allocatable = { ...status.capacity };
  const endpoints = child(status, "daemonEndpoints");
  setDefault(child(endpoints, "kubeletEndpoint"), "Port", 0);
  const info = child(status, "nodeInfo");
  for (const f of NODE_INFO) setDefault(info, f, "");
}

function goTaint(t: Obj): GoValue {
  return new GoValue(
    `core.Taint{Key:${goQuote(str(t.key))}, Value:${goQuote(str(t.value))}, Effect:${goQuote(str(t.effect))}, TimeAdded:(*v1.Time)(${t.timeAdded ? "0xc000000000" : "nil"})}`,
  );
}

const TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

function isCIDR(v: string): boolean {
  const [ip, bits, extra] = v.split("/");
  if (extra !== undefined || ip === undefined || bits === undefined || !/^\d+$/.test(bits))
    return false;
  return isIP(ip) && Number(bits) <= (ip.includes(":") ? 128 : 32);
}

export function validateNode(obj: KObject): FieldError[] {
  const errs: FieldError[] = [];
  const spec = rec(obj.spec) ?? {};
  const unique = new Map<string, Set<string>>();
  for (const [t, i] of items(spec.taints)) {
    const p = idx("metadata.taints", i);
    errs.push(...qualifiedName(at(p, "key"), str(t.key)));
    const msgs = labelValueErrors(str(t.value));
    if (msgs.length) errs.push(invalid(at(p, "value"), str(t.value), msgs.join(";")));
    const effect = str(t.effect);
    if (!effect) errs.push(required(at(p, "effect")));
    else if (!TAINT_EFFECTS.includes(effect))
      errs.push(unsupported(at(p, "effect"), effect, TAINT_EFFECTS));
    const keys = unique.get(effect) ?? new Set<string>();
    if (keys.has(str(t.key))) {
      const d = duplicate(p, goTaint(t));
      errs.push({ ...d, message: `${d.message}: taints must be unique by key and effect pair` });
      continue;
    }
    keys.add(str(t.key));
    unique.set(effect, keys);
  }
  const status = rec(obj.status) ?? {};
  for (const list of ["capacity", "allocatable"]) {
    for (const name of Object.keys(rec(status[list]) ?? {})) {
      const q = quantityOf(status[list], name);
      if (q && cmpQuantity(q, ZERO) < 0)
        errs.push(invalid(`status.${list}.${name}`, quantityString(q), IS_NEGATIVE));
    }
  }
  (Array.isArray(spec.podCIDRs) ? spec.podCIDRs : []).forEach((c, i) => {
    if (!isCIDR(String(c)))
      errs.push(
        invalid(
          idx("spec.podCIDRs", i),
          String(c),
          "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
        ),
      );
  });
  return errs;
}

export function validateNodeUpdate(obj: KObject, old: KObject): FieldError[] {
  const errs = validateNode(obj);
  const spec = rec(obj.spec) ?? {};
  const oldSpec = rec(old.spec) ?? {};
  const oldCIDRs = Array.isArray(oldSpec.podCIDRs) ? oldSpec.podCIDRs : [];
  if (oldCIDRs.length > 0 && !deepEqual(oldCIDRs, spec.podCIDRs ?? []))
    errs.push(
      forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid'),
    );
  if (str(oldSpec.providerID) && oldSpec.providerID !== spec.providerID)
    errs.push(
      forbidden(
        "spec.providerID",
        'node updates may not change providerID except from "" to valid',
      ),
    );
  if ((oldSpec.externalID ?? "") !== (spec.externalID ?? ""))
    errs.push(forbidden("spec.externalID", "may not be updated"));
  return errs;
}

export const nodeStrategy: Partial<Strategy> = {
  defaults: defaultNode,
  prepareForCreate() {},
  validate: validateNode,
  validateUpdate: validateNodeUpdate,
};

// ---------------------------------------------------------------------------------------------
// Events.

export const eventStrategy: Partial<Strategy> = {
  defaults(obj) {
    child(obj, "involvedObject");
    child(obj, "source");
    for (const f of ["firstTimestamp", "lastTimestamp", "eventTime"]) setDefault(obj, f, null);
    for (const f of ["reportingComponent", "reportingInstance"]) setDefault(obj, f, "");
  },
  validate(obj) {
    const involved = rec(obj.involvedObject) ?? {};
    const ns = obj.metadata?.namespace ?? "";
    const ins = str(involved.namespace);
    if (obj.reportingComponent || obj.eventTime) return [];
    if ((!ins && ns !== "" && ns !== "default") || (ins && ns !== ins))
      return [invalid("involvedObject.namespace", ins, "does not match event.namespace")];
    return [];
  },
};

export const eventsV1Strategy: Partial<Strategy> = {
  defaults(obj) {
    setDefault(obj, "eventTime", null);
    child(obj, "regarding");
    child(obj, "deprecatedSource");
    for (const f of ["deprecatedFirstTimestamp", "deprecatedLastTimestamp"])
      setDefault(obj, f, null);
  },
};

// ---------------------------------------------------------------------------------------------
// Storage: PersistentVolumeClaim, PersistentVolume, StorageClass.

export const persistentVolumeClaimStrategy: Partial<Strategy> = {
  defaults(obj) {
    defaultPVCSpec(obj, child(obj, "spec"));
    const status = child(obj, "status");
    setDefaultStr(status, "phase", "Pending");
    normalizeResourceList(obj, status.capacity);
    normalizeResourceList(obj, status.allocatedResources);
  },
  prepareForCreate(obj) {
    obj.status = { phase: "Pending" };
  },
  validate: (obj) => validatePVCSpec("spec", rec(obj.spec) ?? {}),
  validateUpdate(obj, old) {
    const errs = validatePVCSpec("spec", rec(obj.spec) ?? {});
    const spec = clone(rec(obj.spec) ?? {});
    const oldSpec = clone(rec(old.spec) ?? {});
    if (!str(oldSpec.volumeName)) oldSpec.volumeName = spec.volumeName;
    if (unset(oldSpec.storageClassName) && !unset(spec.storageClassName))
      oldSpec.storageClassName = spec.storageClassName;
    const bound = rec(obj.status)?.phase === "Bound";
    const requests = rec(rec(spec.resources)?.requests);
    if (bound && requests) requests.storage = rec(rec(oldSpec.resources)?.requests)?.storage;
    if (bound) spec.volumeAttributesClassName = oldSpec.volumeAttributesClassName;
    if (!deepEqual(spec, oldSpec))
      errs.push(
        forbidden(
          "spec",
          `spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n  core.PersistentVolumeClaimSpec{\n${diffLines(oldSpec, spec)}  }\n`,
        ),
      );
    const newSize = quantityOf(rec(rec(obj.spec)?.resources)?.requests, "storage");
    const oldSize = quantityOf(rec(rec(old.spec)?.resources)?.requests, "storage");
    const statusSize = quantityOf(rec(old.status)?.capacity, "storage") ?? ZERO;
    if (
      newSize &&
      oldSize &&
      cmpQuantity(newSize, oldSize) < 0 &&
      cmpQuantity(newSize, statusSize) <= 0
    )
      errs.push(
        forbidden("spec.resources.requests.storage", "field can not be less than status.capacity"),
      );
    errs.push(...immutable("volumeMode", rec(obj.spec)?.volumeMode, rec(old.spec)?.volumeMode));
    return errs;
  },
};

function diffLines(old: Obj, next: Obj): string {
  let out = "";
  for (const f of [...new Set([...Object.keys(old), ...Object.keys(next)])].sort()) {
    if (deepEqual(old[f], next[f])) continue;
    if (old[f] !== undefined) out += `  - \t${f}: ${JSON.stringify(old[f])},\n`;
    if (next[f] !== undefined) out += `  + \t${f}: ${JSON.stringify(next[f])},\n`;
  }
  return out;
}

const PV_SOURCES = [
  "gcePersistentDisk",
  "awsElasticBlockStore",
  "hostPath",
  "glusterfs",
  "nfs",
  "rbd",
  "iscsi",
  "cinder",
  "cephfs",
  "fc",
  "flocker",
  "flexVolume",
  "azureFile",
  "vsphereVolume",
  "quobyte",
  "azureDisk",
  "photonPersistentDisk",
  "portworxVolume",
  "scaleIO",
  "local",
  "storageos",
  "csi",
];

export const persistentVolumeStrategy: Partial<Strategy> = {
  defaults(obj) {
    const spec = child(obj, "spec");
    setDefaultStr(spec, "persistentVolumeReclaimPolicy", "Retain");
    setDefault(spec, "volumeMode", "Filesystem");
    normalizeResourceList(obj, spec.capacity);
    setDefaultStr(child(obj, "status"), "phase", "Pending");
  },
  prepareForCreate(obj) {
    obj.status = {
      phase: "Pending",
      lastPhaseTransitionTime: obj.metadata?.creationTimestamp ?? null,
    };
  },
  validate: validatePersistentVolume,
  validateUpdate(obj, old) {
    const errs = validatePersistentVolume(obj);
    const source = (o: KObject) => Object.fromEntries(PV_SOURCES.map((s) => [s, rec(o.spec)?.[s]]));
    const next = source(obj);
    const prev = source(old);
    const csi = rec(next.csi);
    if (csi && rec(prev.csi) && unset(rec(prev.csi)!.controllerExpandSecretRef))
      delete csi.controllerExpandSecretRef;
    if (!deepEqual(next, prev))
      errs.push(
        forbidden(
          "spec.persistentvolumesource",
          "spec.persistentvolumesource is immutable after creation\n",
        ),
      );
    errs.push(...immutable("volumeMode", rec(obj.spec)?.volumeMode, rec(old.spec)?.volumeMode));
    return errs;
  },
};

function validatePersistentVolume(obj: KObject): FieldError[] {
  const errs: FieldError[] = [];
  const spec = rec(obj.spec) ?? {};
  const modes = Array.isArray(spec.accessModes) ? spec.accessModes.map(String) : [];
  const supportedModes = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"];
  if (modes.length === 0) errs.push(required("spec.accessModes"));
  for (const m of modes)
    if (!supportedModes.includes(m)) errs.push(unsupported("spec.accessModes", m, supportedModes));
  if (
    modes.includes("ReadWriteOncePod") &&
    modes.some((m) => m !== "ReadWriteOncePod" && supportedModes.includes(m))
  )
    errs.push(
      forbidden("spec.accessModes", "may not use ReadWriteOncePod with other access modes"),
    );
  const capacity = rec(spec.capacity) ?? {};
  if (Object.keys(capacity).length === 0) errs.push(required("spec.capacity"));
  if (!("storage" in capacity) || Object.keys(capacity).length > 1)
    errs.push(
      unsupported(
        "spec.capacity",
        new GoValue(`core.ResourceList{${Object.keys(capacity).map(goQuote).join(", ")}}`),
        ["storage"],
      ),
    );
  for (const name of Object.keys(capacity)) {
    const q = quantityOf(capacity, name);
    if (q && cmpQuantity(q, ZERO) <= 0)
      errs.push(
        invalid(key("spec.capacity", name), quantityString(q), "must be greater than zero"),
      );
  }
  const policy = str(spec.persistentVolumeReclaimPolicy);
  if (policy && !["Delete", "Recycle", "Retain"].includes(policy))
    errs.push(
      unsupported("spec.persistentVolumeReclaimPolicy", policy, ["Delete", "Recycle", "Retain"]),
    );
  let count = 0;
  for (const s of PV_SOURCES) {
    if (unset(spec[s])) continue;
    if (count > 0 && s !== "flexVolume")
      errs.push(forbidden(at("spec", s), "may not specify more than 1 volume type"));
    else count++;
  }
  if (count === 0) errs.push(required("spec", "must specify a volume type"));
  if (rec(spec.local) && !rec(rec(spec.nodeAffinity)?.required))
    errs.push(required("spec.nodeAffinity", "Local volume requires node affinity"));
  if (str(spec.storageClassName))
    errs.push(...dnsSubdomain("spec.storageClassName", str(spec.storageClassName)));
  if (typeof spec.volumeMode === "string" && !["Block", "Filesystem"].includes(spec.volumeMode))
    errs.push(unsupported("spec.volumeMode", spec.volumeMode, ["Block", "Filesystem"]));
  return errs;
}

export const storageClassStrategy: Partial<Strategy> = {
  defaults(obj) {
    setDefault(obj, "reclaimPolicy", "Delete");
    setDefault(obj, "volumeBindingMode", "Immediate");
  },
  validate(obj) {
    const errs: FieldError[] = [];
    const provisioner = str(obj.provisioner);
    if (!provisioner) errs.push(required("provisioner"));
    else {
      if (provisioner.length > 63) errs.push(tooLong("provisioner", 63));
      for (const m of dns1123SubdomainErrors(provisioner.toLowerCase()))
        errs.push(invalid("provisioner", provisioner, m));
    }
    const rp = str(obj.reclaimPolicy);
    if (rp && !["Delete", "Retain"].includes(rp))
      errs.push(unsupported("reclaimPolicy", rp, ["Delete", "Retain"]));
    const vbm = str(obj.volumeBindingMode);
    if (!unset(obj.volumeBindingMode) && !["Immediate", "WaitForFirstConsumer"].includes(vbm))
      errs.push(unsupported("volumeBindingMode", vbm, ["Immediate", "WaitForFirstConsumer"]));
    return errs;
  },
  validateUpdate(obj, old) {
    const errs: FieldError[] = [];
    if (!deepEqual(obj.parameters ?? null, old.parameters ?? null))
      errs.push(forbidden("parameters", "updates to parameters are forbidden."));
    if (obj.provisioner !== old.provisioner)
      errs.push(forbidden("provisioner", "updates to provisioner are forbidden."));
    if (obj.reclaimPolicy !== old.reclaimPolicy)
      errs.push(forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."));
    errs.push(...immutable("volumeBindingMode", obj.volumeBindingMode, old.volumeBindingMode));
    return errs;
  },
};

// ---------------------------------------------------------------------------------------------
// LimitRange and ResourceQuota.

export const limitRangeStrategy: Partial<Strategy> = {
  defaults(obj) {
    for (const [item] of items(rec(obj.spec)?.limits)) {
      for (const f of ["max", "min", "default", "defaultRequest", "maxLimitRequestRatio"])
        normalizeResourceList(obj, item[f]);
      if (item.type !== "Container") continue;
      const def = child(item, "default");
      const defReq = child(item, "defaultRequest");
      for (const [k, v] of Object.entries(rec(item.max) ?? {})) if (!(k in def)) def[k] = v;
      for (const [k, v] of Object.entries(def)) if (!(k in defReq)) defReq[k] = v;
      for (const [k, v] of Object.entries(rec(item.min) ?? {})) if (!(k in defReq)) defReq[k] = v;
    }
  },
};

export const resourceQuotaStrategy: Partial<Strategy> = {
  defaults(obj) {
    normalizeResourceList(obj, rec(obj.spec)?.hard);
    const status = rec(obj.status);
    if (status) {
      normalizeResourceList(obj, status.hard);
      normalizeResourceList(obj, status.used);
    }
    child(obj, "spec");
  },
  prepareForCreate(obj) {
    obj.status = {};
  },
};

// ---------------------------------------------------------------------------------------------
// HorizontalPodAutoscaler (autoscaling/v2 and v1).

function scaleUpRules(): Obj {
  return {
    stabilizationWindowSeconds: 0,
    selectPolicy: "Max",
    policies: [
      { type: "Pods", value: 4, periodSeconds: 15 },
      { type: "Percent", value: 100, periodSeconds: 15 },
    ],
  };
}

function scaleDownRules(): Obj {
  return { selectPolicy: "Max", policies: [{ type: "Percent", value: 100, periodSeconds: 15 }] };
}

function mergeRules(from: unknown, defaults: Obj): Obj {
  const f = rec(from);
  if (!f) return defaults;
  for (const k of ["selectPolicy", "stabilizationWindowSeconds", "policies"])
    if (!unset(f[k])) defaults[k] = f[k];
  return defaults;
}

function normalizeMetricTargets(obj: KObject, spec: Obj): void {
  for (const [metric] of items(spec.metrics)) {
    for (const source of ["resource", "containerResource", "pods", "object", "external"]) {
      const target = rec(rec(metric[source])?.target);
      if (!target) continue;
      normalizeQuantity(obj, target, "value");
      normalizeQuantity(obj, target, "averageValue");
    }
  }
}

export function defaultHPA(obj: KObject): void {
  const spec = child(obj, "spec");
  setDefault(spec, "minReplicas", 1);
  const status = child(obj, "status");
  if ((obj.apiVersion ?? "").endsWith("/v1")) {
    setDefault(spec, "targetCPUUtilizationPercentage", 80);
    setDefault(status, "currentReplicas", 0);
    setDefault(status, "desiredReplicas", 0);
    return;
  }
  if (!Array.isArray(spec.metrics) || spec.metrics.length === 0) {
    spec.metrics = [
      {
        type: "Resource",
        resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 80 } },
      },
    ];
  }
  const behavior = rec(spec.behavior);
  if (behavior) {
    behavior.scaleUp = mergeRules(behavior.scaleUp, scaleUpRules());
    behavior.scaleDown = mergeRules(behavior.scaleDown, scaleDownRules());
  }
  normalizeMetricTargets(obj, spec);
  setDefault(status, "currentMetrics", null);
  setDefault(status, "desiredReplicas", 0);
}

const METRIC_TYPES = ["ContainerResource", "External", "Object", "Pods", "Resource"];

function validateHPA(obj: KObject): FieldError[] {
  const errs: FieldError[] = [];
  const spec = rec(obj.spec) ?? {};
  const min = num(spec.minReplicas);
  const max = num(spec.maxReplicas) ?? 0;
  if (min !== undefined && min < 1)
    errs.push(invalid("spec.minReplicas", min, "must be greater than or equal to 1"));
  if (max < 1) errs.push(invalid("spec.maxReplicas", max, "must be greater than 0"));
  if (min !== undefined && max < min)
    errs.push(invalid("spec.maxReplicas", max, "must be greater than or equal to `minReplicas`"));
  const ref = rec(spec.scaleTargetRef) ?? {};
  for (const f of ["kind", "name"]) {
    const v = str(ref[f]);
    if (!v) errs.push(required(`spec.scaleTargetRef.${f}`));
    else for (const m of pathSegmentErrors(v)) errs.push(invalid(`spec.scaleTargetRef.${f}`, v, m));
  }
  const cpu = num(spec.targetCPUUtilizationPercentage);
  if (cpu !== undefined && cpu < 1)
    errs.push(invalid("spec.targetCPUUtilizationPercentage", cpu, "must be greater than 0"));
  for (const [metric, i] of items(spec.metrics)) {
    const p = idx("spec.metrics", i);
    const type = str(metric.type);
    if (!type) errs.push(required(at(p, "type"), "must specify a metric source type"));
    else if (!METRIC_TYPES.includes(type))
      errs.push(unsupported(at(p, "type"), type, METRIC_TYPES));
    const resource = rec(metric.resource);
    if (type === "Resource" && !resource)
      errs.push(
        required(at(p, "resource"), "must populate information for the given metric source"),
      );
    if (resource) {
      if (!str(resource.name))
        errs.push(required(at(at(p, "resource"), "name"), "must specify a resource name"));
      const target = rec(resource.target) ?? {};
      const tp = at(at(p, "resource"), "target");
      const ttype = str(target.type);
      if (!["AverageValue", "Utilization", "Value"].includes(ttype))
        errs.push(unsupported(at(tp, "type"), ttype, ["AverageValue", "Utilization", "Value"]));
      const util = num(target.averageUtilization);
      if (util !== undefined && util < 1)
        errs.push(invalid(at(tp, "averageUtilization"), util, "must be greater than 0"));
    }
  }
  return errs;
}

export const hpaStrategy: Partial<Strategy> = {
  tracksGeneration: true,
  defaults: defaultHPA,
  prepareForCreate(obj) {
    obj.status = (obj.apiVersion ?? "").endsWith("/v1")
      ? { currentReplicas: 0, desiredReplicas: 0 }
      : { currentMetrics: null, desiredReplicas: 0 };
  },
  validate: validateHPA,
  validateUpdate: validateHPA,
};

// ---------------------------------------------------------------------------------------------
// PodDisruptionBudget (policy/v1).

const PDB_STATUS = ["disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"];

function pdbIntOrPercent(field: string, v: unknown): FieldError[] {
  if (typeof v === "string") {
    const msgs = percentErrors(v);
    if (msgs.length) return msgs.map((m) => invalid(field, goIntOrString(v), m));
    if (Number(v.slice(0, -1)) > 100)
      return [invalid(field, goIntOrString(v), "must not be greater than 100%")];
    return [];
  }
  const n = num(v) ?? 0;
  return n < 0 ? [invalid(field, n, IS_NEGATIVE)] : [];
}

function validatePDB(obj: KObject): FieldError[] {
  const errs: FieldError[] = [];
  const spec = rec(obj.spec) ?? {};
  const ptr = (v: unknown) => (unset(v) ? "nil" : "0xc000000000");
  if (!unset(spec.minAvailable) && !unset(spec.maxUnavailable))
    errs.push(
      invalid(
        "spec",
        new GoValue(
          `policy.PodDisruptionBudgetSpec{MinAvailable:(*intstr.IntOrString)(${ptr(spec.minAvailable)}), Selector:(*v1.LabelSelector)(${ptr(spec.selector)}), MaxUnavailable:(*intstr.IntOrString)(${ptr(spec.maxUnavailable)}), UnhealthyPodEvictionPolicy:(*policy.UnhealthyPodEvictionPolicyType)(${ptr(spec.unhealthyPodEvictionPolicy)})}`,
        ),
        "minAvailable and maxUnavailable cannot be both set",
      ),
    );
  if (!unset(spec.minAvailable))
    errs.push(...pdbIntOrPercent("spec.minAvailable", spec.minAvailable));
  if (!unset(spec.maxUnavailable))
    errs.push(...pdbIntOrPercent("spec.maxUnavailable", spec.maxUnavailable));
  errs.push(...validateLabelSelector("spec.selector", spec.selector));
  if (
    !unset(spec.unhealthyPodEvictionPolicy) &&
    !["AlwaysAllow", "IfHealthyBudget"].includes(str(spec.unhealthyPodEvictionPolicy))
  )
    errs.push(
      unsupported("spec.unhealthyPodEvictionPolicy", str(spec.unhealthyPodEvictionPolicy), [
        "AlwaysAllow",
        "IfHealthyBudget",
      ]),
    );
  return errs;
}

export const podDisruptionBudgetStrategy: Partial<Strategy> = {
  tracksGeneration: true,
  defaults(obj) {
    const status = child(obj, "status");
    for (const f of PDB_STATUS) setDefault(status, f, 0);
  },
  prepareForCreate(obj) {
    obj.status = Object.fromEntries(PDB_STATUS.map((f) => [f, 0]));
  },
  validate: validatePDB,
  validateUpdate: validatePDB,
};

// ---------------------------------------------------------------------------------------------
// Networking: Ingress, IngressClass, NetworkPolicy.

const PATH_TYPES = ["Exact", "ImplementationSpecific", "Prefix"];
const INVALID_PATH_SEQUENCES = ["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES = ["/..", "/."];
const WILDCARD_RE = /^\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function wildcardErrors(host: string): string[] {
  const errs: string[] = [];
  if (host.length > 253) errs.push("must be no more than 253 characters");
  if (!WILDCARD_RE.test(host))
    errs.push(
      "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    );
  return errs;
}

function validateTypedRef(
  field: string,
  ref: Obj,
  kindRequired: string,
  nameRequired: string,
): FieldError[] {
  const errs: FieldError[] = [];
  if (typeof ref.apiGroup === "string")
    errs.push(...dnsSubdomain(at(field, "apiGroup"), ref.apiGroup));
  for (const [f, detail] of [
    ["kind", kindRequired],
    ["name", nameRequired],
  ] as const) {
    const v = str(ref[f]);
    if (!v) errs.push(required(at(field, f), detail));
    else for (const m of pathSegmentErrors(v)) errs.push(invalid(at(field, f), v, m));
  }
  return errs;
}

function validateIngressBackend(field: string, backend: Obj): FieldError[] {
  const resource = rec(backend.resource);
  const service = rec(backend.service);
  if (resource && service)
    return [invalid(field, "", "cannot set both resource and service backends")];
  if (resource) return validateTypedRef(at(field, "resource"), resource, "", "");
  if (!service) return [invalid(field, "", "resource or service backend is required")];
  const errs: FieldError[] = [];
  const name = str(service.name);
  if (!name) errs.push(required(at(field, "service.name")));
  else
    for (const m of dns1035LabelErrors(name))
      errs.push(invalid(at(field, "service.name"), name, m));
  const port = rec(service.port) ?? {};
  const pname = str(port.name);
  const pnum = num(port.number) ?? 0;
  if (pname && pnum) errs.push(invalid(field, "", "cannot set both port name & port number"));
  else if (pname) errs.push(...portNumOrName(at(field, "service.port.name"), pname));
  else if (pnum) errs.push(...portNumOrName(at(field, "service.port.number"), pnum));
  else errs.push(required(field, "port name or number is required"));
  return errs;
}

function validateIngress(obj: KObject): FieldError[] {
  const errs: FieldError[] = [];
  const spec = rec(obj.spec) ?? {};
  const rules = items(spec.rules);
  if (rules.length === 0 && !rec(spec.defaultBackend))
    errs.push(
      invalid(
        "spec",
        new GoValue(
          Array.isArray(spec.rules)
            ? "[]networking.IngressRule{}"
            : "[]networking.IngressRule(nil)",
        ),
        "either `defaultBackend` or `rules` must be specified",
      ),
    );
  const db = rec(spec.defaultBackend);
  if (db) errs.push(...validateIngressBackend("spec.defaultBackend", db));
  for (const [rule, i] of rules) {
    const p = idx("spec.rules", i);
    const host = str(rule.host);
    if (host) {
      if (isIP(host))
        errs.push(invalid(at(p, "host"), host, "must be a DNS name, not an IP address"));
      if (host.includes("*"))
        for (const m of wildcardErrors(host)) errs.push(invalid(at(p, "host"), host, m));
      else errs.push(...dnsSubdomain(at(p, "host"), host));
    }
    const http = rec(rule.http);
    if (!http) continue;
    const hp = at(p, "http");
    const paths = items(http.paths);
    if (paths.length === 0) errs.push(required(at(hp, "paths")));
    for (const [path, j] of paths) {
      const pp = idx(at(hp, "paths"), j);
      const type = path.pathType;
      if (unset(type)) {
        errs.push(required(at(pp, "pathType"), "pathType must be specified"));
        continue;
      }
      const value = str(path.path);
      if (type === "Exact" || type === "Prefix") {
        if (!value.startsWith("/"))
          errs.push(invalid(at(pp, "path"), value, "must be an absolute path"));
        if (value) {
          for (const s of INVALID_PATH_SEQUENCES)
            if (value.includes(s))
              errs.push(invalid(at(pp, "path"), value, `must not contain '${s}'`));
          for (const s of INVALID_PATH_SUFFIXES)
            if (value.endsWith(s))
              errs.push(invalid(at(pp, "path"), value, `cannot end with '${s}'`));
        }
      } else if (type === "ImplementationSpecific") {
        if (value && !value.startsWith("/"))
          errs.push(invalid(at(pp, "path"), value, "must be an absolute path"));
      } else errs.push(unsupported(at(pp, "pathType"), str(type), PATH_TYPES));
      errs.push(...validateIngressBackend(at(pp, "backend"), rec(path.backend) ?? {}));
    }
  }
  for (const [tls, i] of items(spec.tls)) {
    (Array.isArray(tls.hosts) ? tls.hosts.map(String) : []).forEach((h, j) => {
      const p = idx(at(idx("spec.tls", i), "hosts"), j);
      if (h.includes("*")) for (const m of wildcardErrors(h)) errs.push(invalid(p, h, m));
      else errs.push(...dnsSubdomain(p, h));
    });
    const secret = str(tls.secretName);
    if (secret) errs.push(...dnsSubdomain(at(idx("spec.tls", i), "secretName"), secret));
  }
  if (typeof spec.ingressClassName === "string")
    errs.push(...dnsSubdomain("spec.ingressClassName", spec.ingressClassName));
  const classAnnotation = rec(obj.metadata?.annotations)?.["kubernetes.io/ingress.class"];
  if (typeof classAnnotation === "string" && typeof spec.ingressClassName === "string")
    errs.push(
      invalid(
        "annotations.kubernetes.io/ingress.class",
        classAnnotation,
        "can not be set when the class field is also set",
      ),
    );
  return errs;
}

export const ingressStrategy: Partial<Strategy> = {
  tracksGeneration: true,
  defaults(obj) {
    child(child(obj, "status"), "loadBalancer");
  },
  prepareForCreate(obj) {
    obj.status = { loadBalancer: {} };
  },
  validate: validateIngress,
  validateUpdate: (obj) => {
    const errs = validateIngress(obj);
    return errs.filter((e) => !(e.field === "annotations.kubernetes.io/ingress.class"));
  },
};

export const ingressClassStrategy: Partial<Strategy> = {
  tracksGeneration: true,
  defaults(obj) {
    const params = rec(rec(obj.spec)?.parameters);
    if (params) setDefault(params, "scope", "Cluster");
  },
  validate: validateIngressClass,
  validateUpdate: (obj, old) => [
    ...immutable(
      "spec.controller",
      rec(obj.spec)?.controller ?? "",
      rec(old.spec)?.controller ?? "",
    ),
    ...validateIngressClass(obj),
  ],
};

function validateIngressClass(obj: KObject): FieldError[] {
  const spec = rec(obj.spec) ?? {};
  const errs: FieldError[] = [];
  const controller = str(spec.controller);
  if (controller.length > 250) errs.push(tooLong("spec.controller", 250));
  if (!controller) errs.push(required("spec.controller"));
  else {
    const slash = controller.indexOf("/");
    const host = slash < 0 ? "" : controller.slice(0, slash);
    const path = slash < 0 ? "" : controller.slice(slash + 1);
    if (!host || !path)
      errs.push(
        invalid(
          "spec.controller",
          controller,
          'must be a domain-prefixed path (such as "acme.io/foo")',
        ),
      );
    else {
      errs.push(...dnsSubdomain("spec.controller", host));
      if (!/^[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$/.test(path))
        errs.push(
          invalid(
            "spec.controller",
            path,
            "Invalid path (regex used for validation is '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')",
          ),
        );
    }
  }
  const params = rec(spec.parameters);
  if (params) {
    errs.push(
      ...validateTypedRef("spec.parameters", params, "kind is required", "name is required"),
    );
    const scope = str(params.scope);
    if (!unset(params.scope) && !["Cluster", "Namespace"].includes(scope))
      errs.push(unsupported("spec.parameters.scope", scope, ["Cluster", "Namespace"]));
    if (scope === "Namespace" && !str(params.namespace))
      errs.push(required("spec.parameters.namespace", "`parameters.scope` is set to 'Namespace'"));
    if (scope === "Cluster" && !unset(params.namespace))
      errs.push(forbidden("spec.parameters.namespace", "`parameters.scope` is set to 'Cluster'"));
  }
  return errs;
}

export const networkPolicyStrategy: Partial<Strategy> = {
  tracksGeneration: true,
  defaults(obj) {
    const spec = child(obj, "spec");
    child(spec, "podSelector");
    for (const dir of ["ingress", "egress"])
      for (const [rule] of items(spec[dir]))
        for (const [port] of items(rule.ports)) setDefault(port, "protocol", "TCP");
    if (!Array.isArray(spec.policyTypes) || spec.policyTypes.length === 0) {
      const types = ["Ingress"];
      if (Array.isArray(spec.egress) && spec.egress.length > 0) types.push("Egress");
      spec.policyTypes = types;
    }
  },
  validate: validateNetworkPolicy,
  validateUpdate: validateNetworkPolicy,
};

function validateNetworkPolicy(obj: KObject): FieldError[] {
  const spec = rec(obj.spec) ?? {};
  const errs = validateLabelSelector("spec.podSelector", spec.podSelector);
  for (const dir of ["ingress", "egress"]) {
    for (const [rule, i] of items(spec[dir])) {
      for (const [port, j] of items(rule.ports)) {
        const p = idx(at(idx(`spec.${dir}`, i), "ports"), j);
        const protocol = str(port.protocol);
        if (!["SCTP", "TCP", "UDP"].includes(protocol))
          errs.push(unsupported(at(p, "protocol"), protocol, ["SCTP", "TCP", "UDP"]));
        if (!unset(port.port)) errs.push(...portNumOrName(at(p, "port"), port.port));
      }
    }
  }
  const types = Array.isArray(spec.policyTypes) ? spec.policyTypes.map(String) : [];
  types.forEach((t, i) => {
    if (!["Egress", "Ingress"].includes(t))
      errs.push(unsupported(idx("spec.policyTypes", i), t, ["Egress", "Ingress"]));
  });
  if (types.length > 2)
    errs.push(
      invalid(
        "spec.policyTypes",
        new GoValue(`[]networking.PolicyType{${types.map(goQuote).join(", ")}}`),
        "may not specify more than two policyTypes",
      ),
    );
  return errs;
}

// ---------------------------------------------------------------------------------------------
// RBAC.

const RBAC_GROUP = "rbac.authorization.k8s.io";

function defaultBinding(obj: KObject): void {
  const roleRef = child(obj, "roleRef");
  setDefaultStr(roleRef, "apiGroup", RBAC_GROUP);
  for (const [subject] of items(obj.subjects)) {
    if (str(subject.apiGroup)) continue;
    if (subject.kind === "User" || subject.kind === "Group") subject.apiGroup = RBAC_GROUP;
    else if (subject.kind === "ServiceAccount") subject.apiGroup = "";
  }
}

function goStrings(v: unknown): string {
  return Array.isArray(v)
    ? `[]string{${v.map((s) => goQuote(String(s))).join(", ")}}`
    : "[]string(nil)";
}

function validateRules(obj: KObject, namespaced: boolean): FieldError[] {
  const errs: FieldError[] = [];
  const len = (v: unknown) => (Array.isArray(v) ? v.length : 0);
  for (const [rule, i] of items(obj.rules)) {
    const p = idx("rules", i);
    if (len(rule.verbs) === 0)
      errs.push(required(at(p, "verbs"), "verbs must contain at least one value"));
    if (len(rule.nonResourceURLs) > 0) {
      const shown = new GoValue(goStrings(rule.nonResourceURLs));
      if (namespaced)
        errs.push(
          invalid(
            at(p, "nonResourceURLs"),
            shown,
            "namespaced rules cannot apply to non-resource URLs",
          ),
        );
      if (len(rule.apiGroups) > 0 || len(rule.resources) > 0 || len(rule.resourceNames) > 0)
        errs.push(
          invalid(
            at(p, "nonResourceURLs"),
            shown,
            "rules cannot apply to both regular resources and non-resource URLs",
          ),
        );
      continue;
    }
    if (len(rule.apiGroups) === 0)
      errs.push(required(at(p, "apiGroups"), "resource rules must supply at least one api group"));
    if (len(rule.resources) === 0)
      errs.push(required(at(p, "resources"), "resource rules must supply at least one resource"));
  }
  if (!namespaced) {
    const agg = rec(obj.aggregationRule);
    if (agg) {
      const selectors = items(agg.clusterRoleSelectors);
      if (selectors.length === 0)
        errs.push(
          required(
            "aggregationRule.clusterRoleSelectors",
            "at least one clusterRoleSelector required if aggregationRule is non-nil",
          ),
        );
      for (const [sel, i] of selectors)
        errs.push(...validateLabelSelector(idx("aggregationRule.clusterRoleSelectors", i), sel));
      if (len(obj.rules) > 0)
        errs.push(forbidden("rules", "may not be specified when aggregationRule is non-nil"));
    }
  }
  return errs;
}

function validateBinding(obj: KObject, namespaced: boolean): FieldError[] {
  const errs: FieldError[] = [];
  const roleRef = rec(obj.roleRef) ?? {};
  if (roleRef.apiGroup !== RBAC_GROUP)
    errs.push(unsupported("roleRef.apiGroup", str(roleRef.apiGroup), [RBAC_GROUP]));
  const kinds = namespaced ? ["Role", "ClusterRole"] : ["ClusterRole"];
  if (!kinds.includes(str(roleRef.kind)))
    errs.push(unsupported("roleRef.kind", str(roleRef.kind), kinds));
  const name = str(roleRef.name);
  if (!name) errs.push(required("roleRef.name"));
  else for (const m of pathSegmentErrors(name)) errs.push(invalid("roleRef.name", name, m));
  for (const [subject, i] of items(obj.subjects)) {
    const p = idx("subjects", i);
    const sname = str(subject.name);
    if (!sname) errs.push(required(at(p, "name")));
    const group = str(subject.apiGroup);
    switch (subject.kind) {
      case "ServiceAccount":
        if (sname) errs.push(...dnsSubdomain(at(p, "name"), sname));
        if (group) errs.push(unsupported(at(p, "apiGroup"), group, [""]));
        if (!namespaced && !str(subject.namespace)) errs.push(required(at(p, "namespace")));
        break;
      case "User":
      case "Group":
        if (group !== RBAC_GROUP) errs.push(unsupported(at(p, "apiGroup"), group, [RBAC_GROUP]));
        break;
      default:
        errs.push(
          unsupported(at(p, "kind"), str(subject.kind), ["ServiceAccount", "User", "Group"]),
        );
    }
  }
  return errs;
}

function roleRefImmutable(obj: KObject, old: KObject): FieldError[] {
  const r = rec(obj.roleRef) ?? {};
  if (deepEqual(r, rec(old.roleRef) ?? {})) return [];
  return [
    invalid(
      "roleRef",
      new GoValue(
        `rbac.RoleRef{APIGroup:${goQuote(str(r.apiGroup))}, Kind:${goQuote(str(r.kind))}, Name:${goQuote(str(r.name))}}`,
      ),
      "cannot change roleRef",
    ),
  ];
}

export const roleStrategy: Partial<Strategy> = {
  nameFormat: "path",
  defaults(obj) {
    setDefault(obj, "rules", null);
  },
  validate: (obj) => validateRules(obj, true),
  validateUpdate: (obj) => validateRules(obj, true),
};

export const clusterRoleStrategy: Partial<Strategy> = {
  nameFormat: "path",
  defaults(obj) {
    setDefault(obj, "rules", null);
  },
  validate: (obj) => validateRules(obj, false),
  validateUpdate: (obj) => validateRules(obj, false),
};

export const roleBindingStrategy: Partial<Strategy> = {
  nameFormat: "path",
  defaults: defaultBinding,
  validate: (obj) => validateBinding(obj, true),
  validateUpdate: (obj, old) => [...validateBinding(obj, true), ...roleRefImmutable(obj, old)],
};

export const clusterRoleBindingStrategy: Partial<Strategy> = {
  nameFormat: "path",
  defaults: defaultBinding,
  validate: (obj) => validateBinding(obj, false),
  validateUpdate: (obj, old) => [...validateBinding(obj, false), ...roleRefImmutable(obj, old)],
};

// ---------------------------------------------------------------------------------------------
// PriorityClass.

const SYSTEM_PRIORITY_CLASSES: Record<string, number> = {
  "system-node-critical": 2000001000,
  "system-cluster-critical": 2000000000,
};

function validatePriorityClass(obj: KObject): FieldError[] {
  const errs: FieldError[] = [];
  const name = obj.metadata?.name ?? "";
  const value = num(obj.value) ?? 0;
  if (name.startsWith("system-")) {
    const known = SYSTEM_PRIORITY_CLASSES[name];
    let err = "";
    if (known === undefined) err = `${name} is not a known system priority class`;
    else if (known !== value) err = `value of ${name} PriorityClass must be ${known}`;
    else if (obj.globalDefault === true)
      err = `globalDefault of ${name} PriorityClass must be false`;
    if (err)
      errs.push(
        forbidden(
          "metadata.name",
          `priority class names with 'system-' prefix are reserved for system use only. error: ${err}`,
        ),
      );
  } else if (value > 1000000000) {
    errs.push(forbidden("value", "maximum allowed value of a user defined priority is 1000000000"));
  }
  if (!unset(obj.preemptionPolicy)) {
    const pp = str(obj.preemptionPolicy);
    if (!pp) errs.push(required("preemptionPolicy"));
    else if (!["PreemptLowerPriority", "Never"].includes(pp))
      errs.push(unsupported("preemptionPolicy", pp, ["PreemptLowerPriority", "Never"]));
  }
  return errs;
}

export const priorityClassStrategy: Partial<Strategy> = {
  defaults(obj) {
    setDefault(obj, "preemptionPolicy", "PreemptLowerPriority");
    setDefault(obj, "value", 0);
  },
  validate: validatePriorityClass,
  validateUpdate(obj, old) {
    const errs = validatePriorityClass(obj);
    if ((num(obj.value) ?? 0) !== (num(old.value) ?? 0))
      errs.push(forbidden("value", "may not be changed in an update."));
    errs.push(...immutable("preemptionPolicy", obj.preemptionPolicy, old.preemptionPolicy));
    return errs;
  },
};

// ---------------------------------------------------------------------------------------------
// Lease and EndpointSlice.

export const leaseStrategy: Partial<Strategy> = {
  defaults(obj) {
    child(obj, "spec");
  },
};

const ADDRESS_TYPES = ["FQDN", "IPv4", "IPv6"];

export const endpointSliceStrategy: Partial<Strategy> = {
  tracksGeneration: true,
  labelsBumpGeneration: true,
  defaults(obj) {
    for (const [port] of items(obj.ports)) {
      setDefault(port, "name", "");
      setDefault(port, "protocol", "TCP");
    }
    setDefault(obj, "endpoints", null);
  },
  validate: validateEndpointSlice,
  validateUpdate(obj, old) {
    return [
      ...immutable("addressType", obj.addressType, old.addressType),
      ...validateEndpointSlice(obj),
    ];
  },
};

function validateEndpointSlice(obj: KObject): FieldError[] {
  const errs: FieldError[] = [];
  const type = str(obj.addressType);
  if (!type) errs.push(required("addressType"));
  else if (!ADDRESS_TYPES.includes(type))
    errs.push(unsupported("addressType", type, ADDRESS_TYPES));
  for (const [ep, i] of items(obj.endpoints)) {
    const p = idx("endpoints", i);
    const addresses = Array.isArray(ep.addresses) ? ep.addresses.map(String) : [];
    if (addresses.length === 0)
      errs.push(required(at(p, "addresses"), "must contain at least 1 address"));
    else if (addresses.length > 100)
      errs.push({
        type: "FieldValueTooMany",
        field: at(p, "addresses"),
        message: `${at(p, "addresses")}: Too many: ${addresses.length}: must have at most 100 items`,
      });
    addresses.forEach((a, j) => {
      const ap = idx(at(p, "addresses"), j);
      if (
        (type === "IPv4" && (!isIP(a) || a.includes(":"))) ||
        (type === "IPv6" && (!isIP(a) || !a.includes(":")))
      )
        errs.push(invalid(ap, a, `must be a valid ${type} address`));
      else if (type === "FQDN") errs.push(...dnsSubdomain(ap, a));
    });
    if (typeof ep.hostname === "string")
      for (const m of dnsLabelErrors(ep.hostname))
        errs.push(invalid(at(p, "hostname"), ep.hostname, m));
  }
  for (const [port, i] of items(obj.ports)) {
    const p = idx("ports", i);
    const name = str(port.name);
    if (name) for (const m of dnsLabelErrors(name)) errs.push(invalid(at(p, "name"), name, m));
    const protocol = str(port.protocol);
    if (!["SCTP", "TCP", "UDP"].includes(protocol))
      errs.push(unsupported(at(p, "protocol"), protocol, ["SCTP", "TCP", "UDP"]));
    if (!unset(port.port)) {
      const n = num(port.port) ?? 0;
      if (n < 0 || n > 65535)
        errs.push(invalid(at(p, "port"), n, "must be between 0 and 65535, inclusive"));
    }
  }
  return errs;
}
