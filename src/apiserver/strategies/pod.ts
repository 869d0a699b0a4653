/**
 * Pods and pod templates: upstream 1.32's defaulting of PodSpec and everything in it, the status a
 * new Pod gets (phase Pending, QoS class), and the core of upstream's pod validation with its
 * messages.
 */
import type { FieldError } from "../../api/status.js";
import type { KObject, Strategy } from "../registry/types.js";
import { labelValueErrors, qualifiedNameErrors } from "../validation/objectmeta.js";
import {
  addQuantity,
  cmpQuantity,
  isIntegral,
  normalizeQuantity,
  normalizeResourceList,
  quantityOf,
  quantityString,
  ZERO,
  type Quantity,
} from "./quantity.js";
import {
  at,
  child,
  clone,
  configMapKeyErrors,
  deepEqual,
  dnsLabel,
  dnsSubdomain,
  duplicate,
  forbidden,
  goQuote,
  idx,
  inclusiveRange,
  invalid,
  IS_NEGATIVE,
  isIP,
  isObj,
  items,
  key,
  nonNegative,
  notFound,
  num,
  portNameErrors,
  portNumErrors,
  portNumOrName,
  qualifiedName,
  rec,
  required,
  setDefault,
  setDefaultStr,
  str,
  unset,
  unsupported,
  validateAnnotations,
  validateLabels,
  validateLabelSelector,
  type Obj,
} from "./util.js";
import { dns1123SubdomainErrors } from "../validation/objectmeta.js";

// ---------------------------------------------------------------------------------------------
// Image references (the part of distribution/reference that pull-policy defaulting needs).

const ALNUM = "[a-z0-9]+";
const SEPARATOR = "(?:[._]|__|[-]+)";
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`;
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[(?:[a-fA-F0-9:]+)\\])(?::[0-9]+)?`;
const NAME = `(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const TAG = "[\\w][\\w.-]{0,127}";
const DIGEST = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}";
const referenceRe = new RegExp(`^(${NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`);

/**
 * The tag kubelet would pull for an image reference: its tag, "latest" when it has neither tag
 * nor digest, and "" when it has only a digest or does not parse (upstream's ParseImageName).
 */
export function imageTag(image: string): string {
  if (/^[a-f0-9]{64}$/.test(image)) return "";
  const slash = image.indexOf("/");
  const first = slash < 0 ? "" : image.slice(0, slash);
  const hasDomain =
    slash >= 0 && (first.includes(".") || first.includes(":") || first === "localhost");
  const remainder = hasDomain ? image.slice(slash + 1) : image;
  const nameEnd = remainder.search(/[:@]/);
  const repo = nameEnd < 0 ? remainder : remainder.slice(0, nameEnd);
  if (repo.toLowerCase() !== repo) return "";
  const m = referenceRe.exec(image);
  if (!m || m[1]!.length > 255) return "";
  if (m[2]) return m[2];
  return m[3] ? "" : "latest";
}

// ---------------------------------------------------------------------------------------------
// Defaulting.

const CONTAINER_LISTS = ["initContainers", "containers", "ephemeralContainers"] as const;

function defaultHTTPGet(h: unknown): void {
  const httpGet = rec(h);
  if (!httpGet) return;
  setDefaultStr(httpGet, "path", "/");
  setDefaultStr(httpGet, "scheme", "HTTP");
}

function defaultHandler(h: unknown): void {
  const handler = rec(h);
  if (!handler) return;
  defaultHTTPGet(handler.httpGet);
  const grpc = rec(handler.grpc);
  if (grpc) setDefault(grpc, "service", "");
}

function defaultProbe(p: unknown): void {
  const probe = rec(p);
  if (!probe) return;
  for (const [field, value] of [
    ["timeoutSeconds", 1],
    ["periodSeconds", 10],
    ["successThreshold", 1],
    ["failureThreshold", 3],
  ] as const) {
    if (unset(probe[field]) || probe[field] === 0) probe[field] = value;
  }
  defaultHandler(probe);
}

function defaultFieldRef(ref: unknown): void {
  const r = rec(ref);
  if (r) setDefaultStr(r, "apiVersion", "v1");
}

function defaultResourceFieldRef(obj: KObject, ref: unknown): void {
  const r = rec(ref);
  if (!r) return;
  if (unset(r.divisor)) r.divisor = "0";
  else normalizeQuantity(obj, r, "divisor");
}

function defaultContainer(obj: KObject, c: Obj): void {
  if (unset(c.imagePullPolicy) || c.imagePullPolicy === "") {
    c.imagePullPolicy = imageTag(str(c.image)) === "latest" ? "Always" : "IfNotPresent";
  }
  setDefaultStr(c, "terminationMessagePath", "/dev/termination-log");
  setDefaultStr(c, "terminationMessagePolicy", "File");
  for (const [port] of items(c.ports)) setDefaultStr(port, "protocol", "TCP");
  for (const [env] of items(c.env)) {
    const from = rec(env.valueFrom);
    if (!from) continue;
    defaultFieldRef(from.fieldRef);
    defaultResourceFieldRef(obj, from.resourceFieldRef);
  }
  const resources = child(c, "resources");
  normalizeResourceList(obj, resources.limits);
  normalizeResourceList(obj, resources.requests);
  defaultProbe(c.livenessProbe);
  defaultProbe(c.readinessProbe);
  defaultProbe(c.startupProbe);
  const lifecycle = rec(c.lifecycle);
  if (lifecycle) {
    defaultHandler(lifecycle.postStart);
    defaultHandler(lifecycle.preStop);
  }
}

function defaultDownwardAPIItems(obj: KObject, list: unknown): void {
  for (const [file] of items(list)) {
    defaultFieldRef(file.fieldRef);
    defaultResourceFieldRef(obj, file.resourceFieldRef);
  }
}

/** A PersistentVolumeClaimSpec as upstream defaults it (volume claim templates, PVCs). */
export function defaultPVCSpec(obj: KObject, spec: Obj): void {
  setDefault(spec, "volumeMode", "Filesystem");
  const resources = child(spec, "resources");
  normalizeResourceList(obj, resources.limits);
  normalizeResourceList(obj, resources.requests);
}

const VOLUME_SOURCES = [
  "hostPath",
  "emptyDir",
  "gcePersistentDisk",
  "awsElasticBlockStore",
  "gitRepo",
  "secret",
  "nfs",
  "iscsi",
  "glusterfs",
  "persistentVolumeClaim",
  "rbd",
  "flexVolume",
  "cinder",
  "cephfs",
  "flocker",
  "downwardAPI",
  "fc",
  "azureFile",
  "configMap",
  "vsphereVolume",
  "quobyte",
  "azureDisk",
  "photonPersistentDisk",
  "projected",
  "portworxVolume",
  "scaleIO",
  "storageos",
  "csi",
  "ephemeral",
  "image",
] as const;

function defaultVolume(obj: KObject, v: Obj): void {
  if (VOLUME_SOURCES.every((s) => unset(v[s]))) v.emptyDir = {};
  const emptyDir = rec(v.emptyDir);
  if (emptyDir) normalizeQuantity(obj, emptyDir, "sizeLimit");
  const hostPath = rec(v.hostPath);
  if (hostPath) setDefault(hostPath, "type", "");
  for (const s of ["secret", "configMap", "downwardAPI", "projected"]) {
    const src = rec(v[s]);
    if (src) setDefault(src, "defaultMode", 420);
  }
  const downward = rec(v.downwardAPI);
  if (downward) defaultDownwardAPIItems(obj, downward.items);
  const projected = rec(v.projected);
  for (const [source] of items(projected?.sources)) {
    const d = rec(source.downwardAPI);
    if (d) defaultDownwardAPIItems(obj, d.items);
    const token = rec(source.serviceAccountToken);
    if (token) setDefault(token, "expirationSeconds", 3600);
  }
  const iscsi = rec(v.iscsi);
  if (iscsi) setDefaultStr(iscsi, "iscsiInterface", "default");
  const rbd = rec(v.rbd);
  if (rbd) {
    setDefaultStr(rbd, "pool", "rbd");
    setDefaultStr(rbd, "user", "admin");
    setDefaultStr(rbd, "keyring", "/etc/ceph/keyring");
  }
  const azureDisk = rec(v.azureDisk);
  if (azureDisk) {
    setDefault(azureDisk, "cachingMode", "ReadWrite");
    setDefault(azureDisk, "fsType", "ext4");
    setDefault(azureDisk, "readOnly", false);
    setDefault(azureDisk, "kind", "Shared");
  }
  const scaleIO = rec(v.scaleIO);
  if (scaleIO) {
    setDefaultStr(scaleIO, "storageMode", "ThinProvisioned");
    setDefaultStr(scaleIO, "fsType", "xfs");
  }
  const ephemeral = rec(v.ephemeral);
  const claim = rec(ephemeral?.volumeClaimTemplate);
  if (claim) {
    defaultEmbeddedMeta(claim);
    defaultPVCSpec(obj, child(claim, "spec"));
  }
}

/** An embedded ObjectMeta: Go serializes its zero creationTimestamp as null. */
export function defaultEmbeddedMeta(holder: Obj): void {
  const meta = child(holder, "metadata");
  if (!("creationTimestamp" in meta)) meta.creationTimestamp = null;
}

/**
 * Upstream's SetDefaults_PodSpec and the defaults of everything a PodSpec holds, for pods and for
 * pod templates alike (Pod-only defaults are in defaultPod).
 */
export function defaultPodSpec(obj: KObject, spec: Obj): void {
  setDefaultStr(spec, "dnsPolicy", "ClusterFirst");
  setDefaultStr(spec, "restartPolicy", "Always");
  setDefault(spec, "securityContext", {});
  setDefault(spec, "terminationGracePeriodSeconds", 30);
  setDefaultStr(spec, "schedulerName", "default-scheduler");
  // v1's deprecated serviceAccount mirrors serviceAccountName.
  if (!str(spec.serviceAccountName) && str(spec.serviceAccount))
    spec.serviceAccountName = spec.serviceAccount;
  if (str(spec.serviceAccountName)) spec.serviceAccount = spec.serviceAccountName;
  else delete spec.serviceAccount;
  for (const [v] of items(spec.volumes)) defaultVolume(obj, v);
  for (const list of CONTAINER_LISTS) for (const [c] of items(spec[list])) defaultContainer(obj, c);
  normalizeResourceList(obj, spec.overhead);
  const podResources = rec(spec.resources);
  if (podResources) {
    normalizeResourceList(obj, podResources.limits);
    normalizeResourceList(obj, podResources.requests);
  }
}

/** A PodTemplateSpec as upstream defaults it (the template of every workload kind). */
export function defaultPodTemplateSpec(obj: KObject, template: Obj): void {
  defaultEmbeddedMeta(template);
  defaultPodSpec(obj, child(template, "spec"));
}

function syncIPs(status: Obj, single: string, plural: string): void {
  const list = items(status[plural]);
  const ip = str(status[single]);
  if (ip && (list.length === 0 || str(list[0]![0].ip) !== ip)) status[plural] = [{ ip }];
  const first = items(status[plural])[0];
  if (first && str(first[0].ip)) status[single] = first[0].ip;
}

/** Upstream's defaulting of a Pod (SetDefaults_Pod on top of the PodSpec defaults). */
export function defaultPod(obj: KObject): void {
  const spec = child(obj, "spec");
  defaultPodSpec(obj, spec);
  for (const list of ["containers", "initContainers"]) {
    for (const [c] of items(spec[list])) {
      const resources = child(c, "resources");
      const limits = rec(resources.limits);
      if (!limits) continue;
      const requests = child(resources, "requests");
      for (const [k, v] of Object.entries(limits)) if (!(k in requests)) requests[k] = v;
    }
  }
  setDefault(spec, "enableServiceLinks", true);
  if (spec.hostNetwork === true) {
    for (const list of ["containers", "initContainers"]) {
      for (const [c] of items(spec[list])) {
        for (const [p] of items(c.ports)) {
          if (unset(p.hostPort) || p.hostPort === 0) p.hostPort = p.containerPort;
        }
      }
    }
  }
  const status = rec(obj.status);
  if (status) {
    syncIPs(status, "podIP", "podIPs");
    syncIPs(status, "hostIP", "hostIPs");
  }
}

// ---------------------------------------------------------------------------------------------
// Create-time mutation of Pods.

/** Upstream's QoS class of a pod spec (qos.ComputePodQOS), from its containers' resources. */
export function podQOSClass(spec: Obj): "Guaranteed" | "Burstable" | "BestEffort" {
  const requests = new Map<string, Quantity>();
  const limits = new Map<string, Quantity>();
  let guaranteed = true;
  for (const list of ["containers", "initContainers"]) {
    for (const [c] of items(spec[list])) {
      const resources = rec(c.resources) ?? {};
      for (const name of ["cpu", "memory"]) {
        const r = quantityOf(resources.requests, name);
        if (r && cmpQuantity(r, ZERO) > 0) {
          const prev = requests.get(name);
          requests.set(name, prev ? addQuantity(prev, r) : r);
        }
      }
      const found = new Set<string>();
      for (const name of ["cpu", "memory"]) {
        const l = quantityOf(resources.limits, name);
        if (l && cmpQuantity(l, ZERO) > 0) {
          found.add(name);
          const prev = limits.get(name);
          limits.set(name, prev ? addQuantity(prev, l) : l);
        }
      }
      if (!found.has("cpu") || !found.has("memory")) guaranteed = false;
    }
  }
  if (requests.size === 0 && limits.size === 0) return "BestEffort";
  if (guaranteed) {
    for (const [name, req] of requests) {
      const lim = limits.get(name);
      if (!lim || cmpQuantity(lim, req) !== 0) {
        guaranteed = false;
        break;
      }
    }
  }
  return guaranteed && requests.size === limits.size ? "Guaranteed" : "Burstable";
}

function applyLabelKeys(term: Obj, labels: Obj): void {
  const selector = rec(term.labelSelector);
  if (!selector) return;
  for (const [field, operator] of [
    ["matchLabelKeys", "In"],
    ["mismatchLabelKeys", "NotIn"],
  ] as const) {
    const keys = Array.isArray(term[field]) ? (term[field] as unknown[]) : [];
    for (const k of keys) {
      if (typeof k !== "string" || !(k in labels)) continue;
      const exprs = Array.isArray(selector.matchExpressions) ? selector.matchExpressions : [];
      exprs.push({ key: k, operator, values: [labels[k]] });
      selector.matchExpressions = exprs;
    }
  }
}

function mutatePodAffinity(pod: KObject, spec: Obj): void {
  const affinity = rec(spec.affinity);
  if (!affinity) return;
  const labels = rec(pod.metadata?.labels) ?? {};
  for (const kind of ["podAffinity", "podAntiAffinity"]) {
    const a = rec(affinity[kind]);
    if (!a) continue;
    for (const [w] of items(a.preferredDuringSchedulingIgnoredDuringExecution)) {
      const term = rec(w.podAffinityTerm);
      if (term) applyLabelKeys(term, labels);
    }
    for (const [term] of items(a.requiredDuringSchedulingIgnoredDuringExecution))
      applyLabelKeys(term, labels);
  }
}

const APPARMOR_PREFIX = "container.apparmor.security.beta.kubernetes.io/";

function appArmorFieldFor(annotation: string): Obj | undefined {
  if (annotation === "runtime/default") return { type: "RuntimeDefault" };
  if (annotation === "unconfined") return { type: "Unconfined" };
  if (annotation.startsWith("localhost/")) {
    const profile = annotation.slice("localhost/".length);
    if (profile.trim() !== profile || profile === "") return undefined;
    return { type: "Localhost", localhostProfile: profile };
  }
  return undefined;
}

/** Copies deprecated AppArmor annotations into the containers' appArmorProfile fields. */
function applyAppArmorVersionSkew(pod: KObject, spec: Obj): void {
  if (rec(spec.os)?.name === "windows") return;
  const annotations = rec(pod.metadata?.annotations) ?? {};
  const podProfile = rec(rec(spec.securityContext)?.appArmorProfile);
  for (const list of CONTAINER_LISTS) {
    for (const [c] of items(spec[list])) {
      const annotation = annotations[APPARMOR_PREFIX + str(c.name)];
      if (typeof annotation !== "string") continue;
      if (rec(c.securityContext)?.appArmorProfile) continue;
      const field = appArmorFieldFor(annotation);
      if (field && !deepEqual(field, podProfile))
        child(c, "securityContext").appArmorProfile = field;
    }
  }
}

/**
 * What upstream's pod strategy does on create: the status is reset to phase Pending with the
 * pod's QoS class (and a SchedulingGated condition for gated pods), matchLabelKeys of pod
 * (anti-)affinity terms are merged into their selectors, and deprecated AppArmor annotations
 * become fields.
 */
export function preparePodForCreate(pod: KObject): void {
  const spec = child(pod, "spec");
  const status: Obj = { phase: "Pending", qosClass: podQOSClass(spec) };
  if (Array.isArray(spec.schedulingGates) && spec.schedulingGates.length > 0) {
    status.conditions = [
      {
        type: "PodScheduled",
        status: "False",
        lastProbeTime: null,
        lastTransitionTime: pod.metadata?.creationTimestamp ?? null,
        reason: "SchedulingGated",
        message: "Scheduling is blocked due to non-empty scheduling gates",
      },
    ];
  }
  pod.status = status;
  mutatePodAffinity(pod, spec);
  applyAppArmorVersionSkew(pod, spec);
}

// ---------------------------------------------------------------------------------------------
// Validation.

export interface PodValidationOptions {
  /** The spec is a Pod's (not a template's): hostPort must equal containerPort with hostNetwork. */
  isPod: boolean;
  /** The pod's name, for generic ephemeral volumes' claim names. */
  podName?: string;
}

const FILE_MODE = "must be a number between 0 and 0777 (octal), both inclusive";

function fileMode(field: string, mode: unknown): FieldError[] {
  const m = num(mode);
  return m !== undefined && (m > 0o777 || m < 0) ? [invalid(field, m, FILE_MODE)] : [];
}

function noBacksteps(field: string, p: string): FieldError[] {
  return p.split("/").includes("..") ? [invalid(field, p, "must not contain '..'")] : [];
}

function localDescendingPath(field: string, p: string): FieldError[] {
  const errs: FieldError[] = [];
  if (p.startsWith("/")) errs.push(invalid(field, p, "must be a relative path"));
  errs.push(...noBacksteps(field, p));
  return errs;
}

function localNonReservedPath(field: string, p: string): FieldError[] {
  const errs = localDescendingPath(field, p);
  if (p.startsWith("..") && !p.startsWith("../"))
    errs.push(invalid(field, p, "must not start with '..'"));
  return errs;
}

function keyToPath(field: string, kp: Obj): FieldError[] {
  const errs: FieldError[] = [];
  if (!str(kp.key)) errs.push(required(at(field, "key")));
  if (!str(kp.path)) errs.push(required(at(field, "path")));
  errs.push(...localNonReservedPath(at(field, "path"), str(kp.path)));
  errs.push(...fileMode(at(field, "mode"), kp.mode));
  return errs;
}

const ENV_FIELD_PATHS = [
  "metadata.name",
  "metadata.namespace",
  "metadata.uid",
  "spec.nodeName",
  "spec.serviceAccountName",
  "status.hostIP",
  "status.hostIPs",
  "status.podIP",
  "status.podIPs",
];
const VOLUME_FIELD_PATHS = [
  "metadata.annotations",
  "metadata.labels",
  "metadata.name",
  "metadata.namespace",
  "metadata.uid",
];
const RESOURCE_FIELD_PATHS = [
  "limits.cpu",
  "limits.ephemeral-storage",
  "limits.memory",
  "requests.cpu",
  "requests.ephemeral-storage",
  "requests.memory",
];

function objectFieldSelector(field: string, fs: Obj, valid: string[]): FieldError[] {
  if (!str(fs.apiVersion)) return [required(at(field, "apiVersion"))];
  const path = str(fs.fieldPath);
  if (!path) return [required(at(field, "fieldPath"))];
  const m = /^(metadata\.(?:annotations|labels))\['(.*)'\]$/.exec(path);
  const sub = /^([^[]*)\[(.*)\]$/.exec(path);
  if (m) {
    const errs = qualifiedNameErrors(m[1] === "metadata.annotations" ? m[2]!.toLowerCase() : m[2]!);
    return errs.map((e) => invalid(field, m[2]!, e));
  }
  if (sub) return [invalid(field, sub[1]!, "does not support subscript")];
  if (!valid.includes(path)) return [unsupported(at(field, "fieldPath"), path, valid)];
  return [];
}

const CPU_DIVISORS = ["1m", "1"];
const MEMORY_DIVISORS = [
  "1",
  "1k",
  "1M",
  "1G",
  "1T",
  "1P",
  "1E",
  "1Ki",
  "1Mi",
  "1Gi",
  "1Ti",
  "1Pi",
  "1Ei",
];

function resourceFieldSelector(field: string, fs: Obj, volume: boolean): FieldError[] {
  const errs: FieldError[] = [];
  const resource = str(fs.resource);
  if (volume && !str(fs.containerName)) errs.push(required(at(field, "containerName")));
  else if (!resource) errs.push(required(at(field, "resource")));
  else if (
    !RESOURCE_FIELD_PATHS.includes(resource) &&
    !resource.startsWith("limits.hugepages-") &&
    !resource.startsWith("requests.hugepages-")
  )
    errs.push(unsupported(at(field, "resource"), resource, RESOURCE_FIELD_PATHS));
  const divisor = quantityOf(fs, "divisor");
  if (divisor && cmpQuantity(divisor, ZERO) !== 0) {
    const d = quantityString(divisor);
    const kind = resource.endsWith(".cpu")
      ? "cpu"
      : resource.endsWith(".memory") || resource.endsWith(".ephemeral-storage")
        ? "memory"
        : "";
    if (kind === "cpu" && !CPU_DIVISORS.includes(d))
      errs.push(
        invalid(
          at(field, "divisor"),
          resource,
          "only divisor's values 1m and 1 are supported with the cpu resource",
        ),
      );
    if (kind === "memory" && !MEMORY_DIVISORS.includes(d)) {
      const what = resource.endsWith(".memory") ? "memory" : "local ephemeral storage";
      errs.push(
        invalid(
          at(field, "divisor"),
          resource,
          `only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the ${what} resource`,
        ),
      );
    }
  }
  return errs;
}

function validateVolumeSource(field: string, v: Obj, podName?: string): FieldError[] {
  const errs: FieldError[] = [];
  let count = 0;
  for (const source of VOLUME_SOURCES) {
    const src = rec(v[source]);
    if (unset(v[source])) continue;
    if (count > 0) {
      errs.push(forbidden(at(field, source), "may not specify more than 1 volume type"));
      continue;
    }
    count++;
    const p = at(field, source);
    const s = src ?? {};
    switch (source) {
      case "emptyDir": {
        const limit = quantityOf(s, "sizeLimit");
        if (limit && cmpQuantity(limit, ZERO) < 0)
          errs.push(
            forbidden(at(p, "sizeLimit"), "SizeLimit field must be a valid resource quantity"),
          );
        break;
      }
      case "hostPath": {
        const path = str(s.path);
        if (!path) {
          errs.push(required(at(p, "path")));
          break;
        }
        errs.push(...noBacksteps(at(p, "path"), path));
        const types = [
          "",
          "BlockDevice",
          "CharDevice",
          "Directory",
          "DirectoryOrCreate",
          "File",
          "FileOrCreate",
          "Socket",
        ];
        if (typeof s.type === "string" && !types.includes(s.type))
          errs.push(unsupported(at(p, "type"), s.type, types));
        break;
      }
      case "secret":
        if (!str(s.secretName)) errs.push(required(at(p, "secretName")));
        errs.push(...fileMode(at(p, "defaultMode"), s.defaultMode));
        for (const [kp, i] of items(s.items)) errs.push(...keyToPath(idx(at(p, "items"), i), kp));
        break;
      case "configMap":
        if (!str(s.name)) errs.push(required(at(p, "name")));
        errs.push(...fileMode(at(p, "defaultMode"), s.defaultMode));
        for (const [kp, i] of items(s.items)) errs.push(...keyToPath(idx(at(p, "items"), i), kp));
        break;
      case "persistentVolumeClaim":
        if (!str(s.claimName)) errs.push(required(at(p, "claimName")));
        break;
      case "nfs":
        if (!str(s.server)) errs.push(required(at(p, "server")));
        if (!str(s.path)) errs.push(required(at(p, "path")));
        if (!str(s.path).startsWith("/"))
          errs.push(invalid(at(p, "path"), str(s.path), "must be an absolute path"));
        break;
      case "downwardAPI":
        errs.push(...fileMode(at(p, "defaultMode"), s.defaultMode));
        for (const [file] of items(s.items)) errs.push(...downwardAPIFile(p, file));
        break;
      case "projected":
        errs.push(...fileMode(at(p, "defaultMode"), s.defaultMode));
        errs.push(...projectionSources(p, s));
        break;
      case "csi":
        if (!str(s.driver)) errs.push(required(at(p, "driver")));
        break;
      case "ephemeral": {
        const claim = rec(s.volumeClaimTemplate);
        if (!claim) errs.push(required(at(p, "volumeClaimTemplate")));
        else
          errs.push(
            ...validatePVCSpec(at(at(p, "volumeClaimTemplate"), "spec"), rec(claim.spec) ?? {}),
          );
        const name = str(v.name);
        if (claim && podName && name) {
          const pvc = `${podName}-${name}`;
          for (const m of dns1123SubdomainErrors(pvc))
            errs.push(invalid(at(field, "name"), name, `PVC name ${goQuote(pvc)}: ${m}`));
        }
        break;
      }
      case "gitRepo":
        if (!str(s.repository)) errs.push(required(at(p, "repository")));
        errs.push(...localDescendingPath(at(p, "directory"), str(s.directory)));
        break;
      case "image":
        if (!str(s.reference)) errs.push(required(at(p, "reference")));
        break;
      default:
        break;
    }
  }
  if (count === 0) errs.push(required(field, "must specify a volume type"));
  return errs;
}

function downwardAPIFile(field: string, file: Obj): FieldError[] {
  const errs: FieldError[] = [];
  if (!str(file.path)) errs.push(required(at(field, "path")));
  errs.push(...localNonReservedPath(at(field, "path"), str(file.path)));
  const fieldRef = rec(file.fieldRef);
  const resourceRef = rec(file.resourceFieldRef);
  if (fieldRef) {
    errs.push(...objectFieldSelector(at(field, "fieldRef"), fieldRef, VOLUME_FIELD_PATHS));
    if (resourceRef)
      errs.push(
        invalid(
          field,
          "resource",
          "fieldRef and resourceFieldRef can not be specified simultaneously",
        ),
      );
  } else if (resourceRef) {
    errs.push(...resourceFieldSelector(at(field, "resourceFieldRef"), resourceRef, true));
  } else {
    errs.push(required(field, "one of fieldRef and resourceFieldRef is required"));
  }
  errs.push(...fileMode(at(field, "mode"), file.mode));
  return errs;
}

function projectionSources(field: string, projected: Obj): FieldError[] {
  const errs: FieldError[] = [];
  const paths = new Set<string>();
  const seen = (p: string, value: unknown) => {
    if (paths.has(p)) errs.push(invalid(field, value, "conflicting duplicate paths"));
    paths.add(p);
  };
  for (const [source, i] of items(projected.sources)) {
    const p = idx(at(field, "sources"), i);
    let count = 0;
    for (const kind of ["secret", "configMap"]) {
      const s = rec(source[kind]);
      if (!s) continue;
      count++;
      if (!str(s.name)) errs.push(required(at(at(p, kind), "name")));
      for (const [kp, j] of items(s.items)) {
        errs.push(...keyToPath(idx(at(at(p, kind), "items"), j), kp));
        if (str(kp.path)) seen(str(kp.path), str(s.name));
      }
    }
    const downward = rec(source.downwardAPI);
    if (downward) {
      count++;
      for (const [file] of items(downward.items)) {
        errs.push(...downwardAPIFile(at(p, "downwardAPI"), file));
        if (str(file.path)) seen(str(file.path), str(file.path));
      }
    }
    const token = rec(source.serviceAccountToken);
    if (token) {
      count++;
      const seconds = num(token.expirationSeconds) ?? 0;
      const tp = at(at(p, "serviceAccountToken"), "expirationSeconds");
      if (seconds < 600)
        errs.push(invalid(tp, seconds, "may not specify a duration less than 10 minutes"));
      if (seconds > 2 ** 32)
        errs.push(invalid(tp, seconds, "may not specify a duration larger than 2^32 seconds"));
      if (!str(token.path)) errs.push(required(at(field, "path")));
      else errs.push(...localNonReservedPath(at(field, "path"), str(token.path)));
    }
    if (rec(source.clusterTrustBundle)) count++;
    if (count > 1) errs.push(forbidden(p, "may not specify more than 1 volume type per source"));
  }
  return errs;
}

/** ValidatePersistentVolumeClaimSpec's core: access modes, storage request, class, volume mode. */
export function validatePVCSpec(field: string, spec: Obj): FieldError[] {
  const errs: FieldError[] = [];
  const modes = Array.isArray(spec.accessModes) ? spec.accessModes : [];
  const supportedModes = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"];
  if (modes.length === 0)
    errs.push(required(at(field, "accessModes"), "at least 1 access mode is required"));
  errs.push(...validateLabelSelector(at(field, "selector"), spec.selector));
  let rwop = false;
  let other = false;
  for (const m of modes) {
    if (!supportedModes.includes(String(m)))
      errs.push(unsupported(at(field, "accessModes"), m, supportedModes));
    if (m === "ReadWriteOncePod") rwop = true;
    else if (supportedModes.includes(String(m))) other = true;
  }
  if (rwop && other)
    errs.push(
      forbidden(at(field, "accessModes"), "may not use ReadWriteOncePod with other access modes"),
    );
  const storagePath = key(at(field, "resources"), "storage");
  const requests = rec(rec(spec.resources)?.requests);
  const storage = quantityOf(requests, "storage");
  if (!requests || !("storage" in requests)) errs.push(required(storagePath));
  else if (storage && cmpQuantity(storage, ZERO) <= 0)
    errs.push(invalid(storagePath, quantityString(storage), "must be greater than zero"));
  const className = spec.storageClassName;
  if (typeof className === "string" && className)
    errs.push(...dnsSubdomain(at(field, "storageClassName"), className));
  if (typeof spec.volumeMode === "string" && !["Block", "Filesystem"].includes(spec.volumeMode))
    errs.push(unsupported(at(field, "volumeMode"), spec.volumeMode, ["Block", "Filesystem"]));
  return errs;
}

const STANDARD_RESOURCES = new Set([
  "cpu",
  "memory",
  "ephemeral-storage",
  "requests.cpu",
  "requests.memory",
  "requests.ephemeral-storage",
  "limits.cpu",
  "limits.memory",
  "limits.ephemeral-storage",
  "pods",
  "services",
  "replicationcontrollers",
  "resourcequotas",
  "secrets",
  "persistentvolumeclaims",
  "configmaps",
  "requests.storage",
  "services.nodeports",
  "services.loadbalancers",
  "storage",
]);

const isHugePages = (name: string) => name.startsWith("hugepages-");
const isNative = (name: string) => !name.includes("/") || name.includes("kubernetes.io/");
export const isOvercommitAllowed = (name: string) => isNative(name) && !isHugePages(name);
const isExtended = (name: string) =>
  !isNative(name) &&
  !name.startsWith("requests.") &&
  qualifiedNameErrors(`requests.${name}`).length === 0;

function containerResourceName(field: string, name: string): FieldError[] {
  const errs = qualifiedName(field, name);
  if (errs.length > 0) return errs;
  if (!name.includes("/")) {
    if (
      !STANDARD_RESOURCES.has(name) &&
      !isHugePages(name) &&
      !name.startsWith("requests.hugepages-")
    )
      errs.push(invalid(field, name, "must be a standard resource type or fully qualified"));
    if (!["cpu", "memory", "ephemeral-storage"].includes(name) && !isHugePages(name))
      errs.push(invalid(field, name, "must be a standard resource for containers"));
  } else if (!isNative(name) && !isExtended(name)) {
    errs.push(invalid(field, name, "doesn't follow extended resource name standard"));
  }
  return errs;
}

function quantityValue(field: string, name: string, q: Quantity): FieldError[] {
  const errs: FieldError[] = [];
  if (cmpQuantity(q, ZERO) < 0) errs.push(invalid(field, quantityString(q), IS_NEGATIVE));
  if (isExtended(name) && !isIntegral(q))
    errs.push(invalid(field, quantityString(q), "must be an integer"));
  return errs;
}

/** Upstream's ValidateContainerResourceRequirements. */
export function validateResourceRequirements(
  field: string,
  resources: Obj,
  claimNames: Set<string>,
): FieldError[] {
  const errs: FieldError[] = [];
  const limPath = at(field, "limits");
  const reqPath = at(field, "requests");
  const limits = rec(resources.limits) ?? {};
  const requests = rec(resources.requests) ?? {};
  let cpuOrMemory = false;
  let hugePages = false;
  for (const name of Object.keys(limits).sort()) {
    const p = key(limPath, name);
    errs.push(...containerResourceName(p, name));
    const q = quantityOf(limits, name);
    if (q) errs.push(...quantityValue(p, name, q));
    if (isHugePages(name)) hugePages = true;
    if (name === "cpu" || name === "memory") cpuOrMemory = true;
  }
  for (const name of Object.keys(requests).sort()) {
    const p = key(reqPath, name);
    errs.push(...containerResourceName(p, name));
    const q = quantityOf(requests, name);
    if (q) errs.push(...quantityValue(p, name, q));
    const lim = quantityOf(limits, name);
    if (q && lim) {
      if (cmpQuantity(q, lim) !== 0 && !isOvercommitAllowed(name))
        errs.push(
          invalid(
            reqPath,
            quantityString(q),
            `must be equal to ${name} limit of ${quantityString(lim)}`,
          ),
        );
      else if (cmpQuantity(q, lim) > 0)
        errs.push(
          invalid(
            reqPath,
            quantityString(q),
            `must be less than or equal to ${name} limit of ${quantityString(lim)}`,
          ),
        );
    } else if (!(name in limits) && !isOvercommitAllowed(name)) {
      errs.push(required(limPath, "Limit must be set for non overcommitable resources"));
    }
    if (isHugePages(name)) hugePages = true;
    if (name === "cpu" || name === "memory") cpuOrMemory = true;
  }
  if (!cpuOrMemory && hugePages) errs.push(forbidden(field, "HugePages require cpu or memory"));
  const seen = new Set<string>();
  (Array.isArray(resources.claims) ? resources.claims : []).forEach((c, i) => {
    const name = str(rec(c)?.name);
    const p = idx(at(field, "claims"), i);
    if (!name) errs.push(required(p));
    else {
      if (seen.has(name)) errs.push(duplicate(p, name));
      seen.add(name);
      if (!claimNames.has(name)) {
        const list = [...claimNames].sort();
        const detail = `must be one of the names in pod.spec.resourceClaims${list.length === 0 ? " which is empty" : `: ${list.join(", ")}`}`;
        errs.push({ ...notFound(p, name), message: `${notFound(p, name).message}: ${detail}` });
      }
    }
  });
  return errs;
}

function validateHandler(
  field: string,
  h: Obj,
  gracePeriod: number | undefined,
  probe: boolean,
): FieldError[] {
  const errs: FieldError[] = [];
  let count = 0;
  const kinds = probe
    ? ["exec", "httpGet", "tcpSocket", "grpc"]
    : ["exec", "httpGet", "tcpSocket", "sleep"];
  for (const kind of kinds) {
    const v = rec(h[kind]);
    if (!v) continue;
    const p = at(field, kind);
    if (count > 0) {
      errs.push(forbidden(p, "may not specify more than 1 handler type"));
      continue;
    }
    count++;
    switch (kind) {
      case "exec":
        if (!Array.isArray(v.command) || v.command.length === 0)
          errs.push(required(at(p, "command")));
        break;
      case "httpGet": {
        if (!str(v.path)) errs.push(required(at(p, "path")));
        errs.push(...portNumOrName(at(p, "port"), v.port));
        if (!["HTTP", "HTTPS"].includes(str(v.scheme)))
          errs.push(unsupported(at(p, "scheme"), str(v.scheme), ["HTTP", "HTTPS"]));
        for (const [header] of items(v.httpHeaders)) {
          if (!/^[-A-Za-z0-9]+$/.test(str(header.name)))
            errs.push(
              invalid(
                at(p, "httpHeaders"),
                str(header.name),
                "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')",
              ),
            );
        }
        break;
      }
      case "tcpSocket":
        errs.push(...portNumOrName(at(p, "port"), v.port));
        break;
      case "grpc":
        errs.push(...portNumOrName(at(p, "port"), num(v.port) ?? 0));
        break;
      case "sleep": {
        const seconds = num(v.seconds) ?? 0;
        if (gracePeriod !== undefined && (seconds <= 0 || seconds > gracePeriod))
          errs.push(
            invalid(
              p,
              seconds,
              `must be greater than 0 and less than terminationGracePeriodSeconds (${gracePeriod}). Enable AllowPodLifecycleSleepActionZeroValue feature gate for zero sleep.`,
            ),
          );
        break;
      }
    }
  }
  if (count === 0) errs.push(required(field, "must specify a handler type"));
  return errs;
}

function validateProbe(
  field: string,
  probe: unknown,
  gracePeriod: number | undefined,
  kind: "liveness" | "readiness" | "startup",
): FieldError[] {
  const p = rec(probe);
  if (!p) return [];
  const errs = validateHandler(field, p, gracePeriod, true);
  for (const f of [
    "initialDelaySeconds",
    "timeoutSeconds",
    "periodSeconds",
    "successThreshold",
    "failureThreshold",
  ])
    errs.push(...nonNegative(at(field, f), p[f]));
  const tgps = num(p.terminationGracePeriodSeconds);
  if (tgps !== undefined && tgps <= 0)
    errs.push(invalid(at(field, "terminationGracePeriodSeconds"), tgps, "must be greater than 0"));
  if (kind !== "readiness" && (num(p.successThreshold) ?? 0) !== 1)
    errs.push(invalid(at(field, "successThreshold"), num(p.successThreshold) ?? 0, "must be 1"));
  if (kind === "readiness" && !unset(p.terminationGracePeriodSeconds))
    errs.push(
      invalid(
        at(field, "terminationGracePeriodSeconds"),
        p.terminationGracePeriodSeconds,
        "must not be set for readinessProbes",
      ),
    );
  return errs;
}

function validateLifecycle(
  field: string,
  lifecycle: Obj,
  gracePeriod: number | undefined,
): FieldError[] {
  const errs: FieldError[] = [];
  for (const hook of ["postStart", "preStop"]) {
    const h = rec(lifecycle[hook]);
    if (h) errs.push(...validateHandler(at(field, hook), h, gracePeriod, false));
  }
  return errs;
}

function envVarName(field: string, name: string): FieldError[] {
  if (name.length === 0)
    return [invalid(field, name, "environment variable name must be non-empty")];
  for (const ch of name) {
    const c = ch.codePointAt(0)!;
    if (c > 0x7f || c < 0x20 || c === 0x7f || ch === "=")
      return [
        invalid(
          field,
          name,
          "a valid environment variable name must consist only of printable ASCII characters other than '='",
        ),
      ];
  }
  return [];
}

function keySelector(field: string, s: Obj): FieldError[] {
  const errs: FieldError[] = [];
  for (const m of dns1123SubdomainErrors(str(s.name)))
    errs.push(invalid(at(field, "name"), str(s.name), m));
  const k = str(s.key);
  if (!k) errs.push(required(at(field, "key")));
  else for (const m of configMapKeyErrors(k)) errs.push(invalid(at(field, "key"), k, m));
  return errs;
}

function validateEnv(field: string, env: unknown): FieldError[] {
  const errs: FieldError[] = [];
  for (const [e, i] of items(env)) {
    const p = idx(field, i);
    const name = str(e.name);
    if (!name) errs.push(required(at(p, "name")));
    else errs.push(...envVarName(at(p, "name"), name));
    const from = rec(e.valueFrom);
    if (!from) continue;
    const fp = at(p, "valueFrom");
    let sources = 0;
    const fieldRef = rec(from.fieldRef);
    if (fieldRef) {
      sources++;
      errs.push(...objectFieldSelector(at(fp, "fieldRef"), fieldRef, ENV_FIELD_PATHS));
    }
    const resourceRef = rec(from.resourceFieldRef);
    if (resourceRef) {
      sources++;
      errs.push(...resourceFieldSelector(at(fp, "resourceFieldRef"), resourceRef, false));
    }
    const cm = rec(from.configMapKeyRef);
    if (cm) {
      sources++;
      errs.push(...keySelector(at(fp, "configMapKeyRef"), cm));
    }
    const secret = rec(from.secretKeyRef);
    if (secret) {
      sources++;
      errs.push(...keySelector(at(fp, "secretKeyRef"), secret));
    }
    if (sources === 0)
      errs.push(
        invalid(
          fp,
          "",
          "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        ),
      );
    else if (str(e.value))
      errs.push(invalid(fp, "", "may not be specified when `value` is not empty"));
    else if (sources > 1)
      errs.push(invalid(fp, "", "may not have more than one field specified at a time"));
  }
  return errs;
}

/** How upstream validates a name that will get a generated suffix. */
function maskTrailingDash(name: string): string {
  return name.length > 1 && name.endsWith("-") ? `${name.slice(0, -2)}a` : name;
}

function validateEnvFrom(field: string, envFrom: unknown): FieldError[] {
  const errs: FieldError[] = [];
  for (const [e, i] of items(envFrom)) {
    const p = idx(field, i);
    if (str(e.prefix)) errs.push(...envVarName(at(p, "prefix"), str(e.prefix)));
    let sources = 0;
    for (const kind of ["configMapRef", "secretRef"]) {
      const ref = rec(e[kind]);
      if (!ref) continue;
      sources++;
      const name = str(ref.name);
      if (!name) errs.push(required(at(at(p, kind), "name")));
      else
        for (const m of dns1123SubdomainErrors(maskTrailingDash(name)))
          errs.push(invalid(at(at(p, kind), "name"), name, m));
    }
    if (sources === 0)
      errs.push(invalid(field, "", "must specify one of: `configMapRef` or `secretRef`"));
    else if (sources > 1)
      errs.push(invalid(field, "", "may not have more than one field specified at a time"));
  }
  return errs;
}

function validateVolumeMounts(
  field: string,
  c: Obj,
  volumes: Map<string, Obj>,
  devices: Map<string, string>,
): FieldError[] {
  const errs: FieldError[] = [];
  const mountPaths = new Set<string>();
  for (const [m, i] of items(c.volumeMounts)) {
    const p = idx(field, i);
    const name = str(m.name);
    const mountPath = str(m.mountPath);
    if (!name) errs.push(required(at(p, "name")));
    if (!volumes.has(name)) errs.push(notFound(at(p, "name"), name));
    if (!mountPath) errs.push(required(at(p, "mountPath")));
    if (mountPaths.has(mountPath))
      errs.push(invalid(at(p, "mountPath"), mountPath, "must be unique"));
    mountPaths.add(mountPath);
    if (devices.has(name))
      errs.push(invalid(at(p, "name"), name, "must not already exist in volumeDevices"));
    if ([...devices.values()].includes(mountPath))
      errs.push(
        invalid(at(p, "mountPath"), mountPath, "must not already exist as a path in volumeDevices"),
      );
    const subPath = str(m.subPath);
    const subPathExpr = str(m.subPathExpr);
    if (subPath) errs.push(...localDescendingPath(at(field, "subPath"), subPath));
    if (subPathExpr) {
      if (subPath)
        errs.push(
          invalid(
            at(p, "subPathExpr"),
            subPathExpr,
            "subPathExpr and subPath are mutually exclusive",
          ),
        );
      errs.push(...localDescendingPath(at(field, "subPathExpr"), subPathExpr));
    }
    if (typeof m.mountPropagation === "string") {
      const supported = ["Bidirectional", "HostToContainer", "None"];
      if (!supported.includes(m.mountPropagation))
        errs.push(unsupported(at(field, "mountPropagation"), m.mountPropagation, supported));
      const privileged = rec(c.securityContext)?.privileged === true;
      if (m.mountPropagation === "Bidirectional" && !privileged)
        errs.push(
          forbidden(
            at(field, "mountPropagation"),
            "Bidirectional mount propagation is available only to privileged containers",
          ),
        );
    }
  }
  return errs;
}

function validateSecurityContext(field: string, sc: unknown): FieldError[] {
  const s = rec(sc);
  if (!s) return [];
  const errs: FieldError[] = [];
  for (const f of ["runAsUser", "runAsGroup"]) {
    const v = num(s[f]);
    if (v !== undefined && (v < 0 || v > 2147483647))
      errs.push(invalid(at(field, f), v, inclusiveRange(0, 2147483647)));
  }
  if (typeof s.procMount === "string" && !["Default", "Unmasked"].includes(s.procMount))
    errs.push(unsupported(at(field, "procMount"), s.procMount, ["Default", "Unmasked"]));
  errs.push(...seccompProfile(at(field, "seccompProfile"), s.seccompProfile));
  if (s.allowPrivilegeEscalation === false && s.privileged === true)
    errs.push(
      invalid(
        field,
        JSON.stringify(s),
        "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
      ),
    );
  errs.push(...appArmorProfile(at(field, "appArmorProfile"), s.appArmorProfile));
  return errs;
}

function seccompProfile(field: string, profile: unknown): FieldError[] {
  const p = rec(profile);
  if (!p) return [];
  const errs: FieldError[] = [];
  const type = str(p.type);
  const types = ["Localhost", "RuntimeDefault", "Unconfined"];
  if (!type) errs.push(required(at(field, "type"), "type is required when seccompProfile is set"));
  else if (!types.includes(type)) errs.push(unsupported(at(field, "type"), type, types));
  if (type === "Localhost") {
    if (unset(p.localhostProfile))
      errs.push(
        required(at(field, "localhostProfile"), "must be set when seccomp type is Localhost"),
      );
    else errs.push(...localDescendingPath(at(field, "localhostProfile"), str(p.localhostProfile)));
  }
  return errs;
}

function appArmorProfile(field: string, profile: unknown): FieldError[] {
  const p = rec(profile);
  if (!p) return [];
  const type = str(p.type);
  switch (type) {
    case "Localhost": {
      if (unset(p.localhostProfile))
        return [
          required(at(field, "localhostProfile"), "must be set when AppArmor type is Localhost"),
        ];
      const lp = str(p.localhostProfile);
      if (lp.trim() !== lp)
        return [invalid(at(field, "localhostProfile"), lp, "must not be padded with whitespace")];
      if (lp === "")
        return [
          required(at(field, "localhostProfile"), "must be set when AppArmor type is Localhost"),
        ];
      return [];
    }
    case "RuntimeDefault":
    case "Unconfined":
      return [];
    case "":
      return [required(at(field, "type"), "type is required when appArmorProfile is set")];
    default:
      return [unsupported(at(field, "type"), type, ["Localhost", "RuntimeDefault", "Unconfined"])];
  }
}

function validateContainerPorts(field: string, ports: unknown): FieldError[] {
  const errs: FieldError[] = [];
  const names = new Set<string>();
  for (const [port, i] of items(ports)) {
    const p = idx(field, i);
    const name = str(port.name);
    if (name) {
      const msgs = portNameErrors(name);
      if (msgs.length) for (const m of msgs) errs.push(invalid(at(p, "name"), name, m));
      else if (names.has(name)) errs.push(duplicate(at(p, "name"), name));
      else names.add(name);
    }
    const cp = num(port.containerPort) ?? 0;
    if (cp === 0) errs.push(required(at(p, "containerPort")));
    else for (const m of portNumErrors(cp)) errs.push(invalid(at(p, "containerPort"), cp, m));
    const hp = num(port.hostPort) ?? 0;
    if (hp !== 0) for (const m of portNumErrors(hp)) errs.push(invalid(at(p, "hostPort"), hp, m));
    const protocol = str(port.protocol);
    if (!protocol) errs.push(required(at(p, "protocol")));
    else if (!["SCTP", "TCP", "UDP"].includes(protocol))
      errs.push(unsupported(at(p, "protocol"), protocol, ["SCTP", "TCP", "UDP"]));
  }
  return errs;
}

function validateContainerCommon(
  field: string,
  c: Obj,
  volumes: Map<string, Obj>,
  claimNames: Set<string>,
  restartPolicy: string,
): FieldError[] {
  const errs: FieldError[] = [];
  const name = str(c.name);
  if (!name) errs.push(required(at(field, "name")));
  else errs.push(...dnsLabel(at(field, "name"), name));
  if (!str(c.image)) errs.push(required(at(field, "image")));
  const tmp = str(c.terminationMessagePolicy);
  if (!tmp) errs.push(required(at(field, "terminationMessagePolicy")));
  else if (!["File", "FallbackToLogsOnError"].includes(tmp))
    errs.push(
      unsupported(at(field, "terminationMessagePolicy"), tmp, ["File", "FallbackToLogsOnError"]),
    );
  const devices = new Map<string, string>();
  for (const [d] of items(c.volumeDevices)) devices.set(str(d.name), str(d.devicePath));
  errs.push(...validateContainerPorts(at(field, "ports"), c.ports));
  errs.push(...validateEnv(at(field, "env"), c.env));
  errs.push(...validateEnvFrom(at(field, "envFrom"), c.envFrom));
  errs.push(...validateVolumeMounts(at(field, "volumeMounts"), c, volumes, devices));
  const policy = str(c.imagePullPolicy);
  if (!policy) errs.push(required(at(field, "imagePullPolicy")));
  else if (!["Always", "IfNotPresent", "Never"].includes(policy))
    errs.push(
      unsupported(at(field, "imagePullPolicy"), policy, ["Always", "IfNotPresent", "Never"]),
    );
  errs.push(
    ...validateResourceRequirements(at(field, "resources"), rec(c.resources) ?? {}, claimNames),
  );
  const seen = new Set<string>();
  for (const [rp, i] of items(c.resizePolicy)) {
    const rpath = at(field, "resizePolicy");
    const rn = str(rp.resourceName);
    if (seen.has(rn)) errs.push(duplicate(idx(rpath, i), rn));
    seen.add(rn);
    if (!rn) errs.push(required(rpath));
    else if (!["cpu", "memory"].includes(rn)) errs.push(unsupported(rpath, rn, ["cpu", "memory"]));
    const rpol = str(rp.restartPolicy);
    if (!rpol) errs.push(required(rpath));
    else if (!["NotRequired", "RestartContainer"].includes(rpol))
      errs.push(unsupported(rpath, rpol, ["NotRequired", "RestartContainer"]));
    if (restartPolicy === "Never" && rpol !== "NotRequired")
      errs.push(invalid(rpath, rpol, "must be 'NotRequired' when `restartPolicy` is 'Never'"));
  }
  errs.push(...validateSecurityContext(at(field, "securityContext"), c.securityContext));
  return errs;
}

function hostPortConflicts(
  field: string,
  containers: Array<[Obj, number]>,
  seen = new Set<string>(),
): FieldError[] {
  const errs: FieldError[] = [];
  for (const [c, ci] of containers) {
    for (const [port, pi] of items(c.ports)) {
      const hp = num(port.hostPort) ?? 0;
      if (hp === 0) continue;
      const k = `${str(port.protocol)}/${str(port.hostIP)}/${hp}`;
      if (seen.has(k))
        errs.push(duplicate(at(idx(at(idx(field, ci), "ports"), pi), "hostPort"), k));
      else seen.add(k);
    }
  }
  return errs;
}

function validateTolerations(field: string, tolerations: unknown): FieldError[] {
  const errs: FieldError[] = [];
  for (const [t, i] of items(tolerations)) {
    const p = idx(field, i);
    const k = str(t.key);
    const op = str(t.operator);
    const effect = str(t.effect);
    if (k) errs.push(...qualifiedName(at(p, "key"), k));
    if (!k && op !== "Exists")
      errs.push(
        invalid(
          at(p, "operator"),
          op,
          'operator must be Exists when `key` is empty, which means "match all values and all keys"',
        ),
      );
    if (!unset(t.tolerationSeconds) && effect !== "NoExecute")
      errs.push(
        invalid(
          at(p, "effect"),
          effect,
          "effect must be 'NoExecute' when `tolerationSeconds` is set",
        ),
      );
    switch (op) {
      case "Equal":
      case "": {
        const msgs = labelValueErrors(str(t.value));
        if (msgs.length) errs.push(invalid(at(p, "operator"), str(t.value), msgs.join(";")));
        break;
      }
      case "Exists":
        if (str(t.value))
          errs.push(
            invalid(
              at(p, "operator"),
              str(t.value),
              "value must be empty when `operator` is 'Exists'",
            ),
          );
        break;
      default:
        errs.push(unsupported(at(p, "operator"), op, ["Equal", "Exists"]));
    }
    if (effect && !["NoSchedule", "PreferNoSchedule", "NoExecute"].includes(effect))
      errs.push(
        unsupported(at(p, "effect"), effect, ["NoSchedule", "PreferNoSchedule", "NoExecute"]),
      );
  }
  return errs;
}

function nodeSelectorRequirement(field: string, rq: Obj, checkValues: boolean): FieldError[] {
  const errs: FieldError[] = [];
  const values = Array.isArray(rq.values) ? rq.values : [];
  switch (rq.operator) {
    case "In":
    case "NotIn":
      if (values.length === 0)
        errs.push(
          required(at(field, "values"), "must be specified when `operator` is 'In' or 'NotIn'"),
        );
      break;
    case "Exists":
    case "DoesNotExist":
      if (values.length > 0)
        errs.push(
          forbidden(
            at(field, "values"),
            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
          ),
        );
      break;
    case "Gt":
    case "Lt":
      if (values.length !== 1)
        errs.push(
          required(
            at(field, "values"),
            "must be specified single value when `operator` is 'Lt' or 'Gt'",
          ),
        );
      break;
    default:
      errs.push(invalid(at(field, "operator"), str(rq.operator), "not a valid selector operator"));
  }
  errs.push(...qualifiedName(at(field, "key"), str(rq.key)));
  if (checkValues)
    values.forEach((v, i) => {
      for (const m of labelValueErrors(String(v)))
        errs.push(invalid(idx(at(field, "values"), i), v, m));
    });
  return errs;
}

function nodeSelectorTerm(field: string, term: Obj, checkValues: boolean): FieldError[] {
  const errs: FieldError[] = [];
  for (const [rq, i] of items(term.matchExpressions))
    errs.push(...nodeSelectorRequirement(idx(at(field, "matchExpressions"), i), rq, checkValues));
  for (const [rq, i] of items(term.matchFields)) {
    const p = idx(at(field, "matchFields"), i);
    const values = Array.isArray(rq.values) ? rq.values : [];
    if (rq.operator === "In" || rq.operator === "NotIn") {
      if (values.length !== 1)
        errs.push(
          required(
            at(p, "values"),
            "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
          ),
        );
    } else errs.push(invalid(at(p, "operator"), str(rq.operator), "not a valid selector operator"));
    if (rq.key !== "metadata.name")
      errs.push(invalid(at(p, "key"), str(rq.key), "not a valid field selector key"));
    else
      values.forEach((v, j) => {
        for (const m of dns1123SubdomainErrors(String(v)))
          errs.push(invalid(idx(at(p, "values"), j), v, m));
      });
  }
  return errs;
}

function podAffinityTerm(field: string, term: Obj): FieldError[] {
  const errs = validateLabelSelector(at(field, "labelSelector"), term.labelSelector);
  errs.push(...validateLabelSelector(at(field, "namespaceSelector"), term.namespaceSelector));
  for (const ns of Array.isArray(term.namespaces) ? term.namespaces : [])
    for (const m of dnsLabel(at(field, "namespace"), String(ns))) errs.push(m);
  if (!str(term.topologyKey)) errs.push(required(at(field, "topologyKey"), "can not be empty"));
  errs.push(...qualifiedName(at(field, "topologyKey"), str(term.topologyKey)));
  return errs;
}

function validateAffinity(field: string, affinity: unknown): FieldError[] {
  const a = rec(affinity);
  if (!a) return [];
  const errs: FieldError[] = [];
  const na = rec(a.nodeAffinity);
  if (na) {
    const p = at(field, "nodeAffinity");
    const req = rec(na.requiredDuringSchedulingIgnoredDuringExecution);
    if (req) {
      const rp = at(at(p, "requiredDuringSchedulingIgnoredDuringExecution"), "nodeSelectorTerms");
      const terms = items(req.nodeSelectorTerms);
      if (terms.length === 0) errs.push(required(rp, "must have at least one node selector term"));
      for (const [t, i] of terms) errs.push(...nodeSelectorTerm(idx(rp, i), t, true));
    }
    for (const [t, i] of items(na.preferredDuringSchedulingIgnoredDuringExecution)) {
      const tp = idx(at(p, "preferredDuringSchedulingIgnoredDuringExecution"), i);
      const w = num(t.weight) ?? 0;
      if (w <= 0 || w > 100) errs.push(invalid(at(tp, "weight"), w, "must be in the range 1-100"));
      errs.push(...nodeSelectorTerm(at(tp, "preference"), rec(t.preference) ?? {}, false));
    }
  }
  for (const kind of ["podAffinity", "podAntiAffinity"]) {
    const pa = rec(a[kind]);
    if (!pa) continue;
    const p = at(field, kind);
    for (const [t, i] of items(pa.requiredDuringSchedulingIgnoredDuringExecution))
      errs.push(
        ...podAffinityTerm(idx(at(p, "requiredDuringSchedulingIgnoredDuringExecution"), i), t),
      );
    for (const [t, i] of items(pa.preferredDuringSchedulingIgnoredDuringExecution)) {
      const tp = idx(at(p, "preferredDuringSchedulingIgnoredDuringExecution"), i);
      const w = num(t.weight) ?? 0;
      if (w <= 0 || w > 100) errs.push(invalid(at(tp, "weight"), w, "must be in the range 1-100"));
      errs.push(...podAffinityTerm(at(tp, "podAffinityTerm"), rec(t.podAffinityTerm) ?? {}));
    }
  }
  return errs;
}

function validateTopologySpread(field: string, constraints: unknown): FieldError[] {
  const errs: FieldError[] = [];
  const pairs = new Set<string>();
  for (const [c, i] of items(constraints)) {
    const p = idx(field, i);
    const skew = num(c.maxSkew) ?? 0;
    if (skew <= 0) errs.push(invalid(at(p, "maxSkew"), skew, "must be greater than zero"));
    const tk = str(c.topologyKey);
    if (!tk) errs.push(required(at(p, "topologyKey"), "can not be empty"));
    else errs.push(...qualifiedName(at(p, "topologyKey"), tk));
    const wu = str(c.whenUnsatisfiable);
    if (!["DoNotSchedule", "ScheduleAnyway"].includes(wu))
      errs.push(unsupported(at(p, "whenUnsatisfiable"), wu, ["DoNotSchedule", "ScheduleAnyway"]));
    const pair = `{${tk}, ${wu}}`;
    if (pairs.has(pair)) errs.push(duplicate(p, pair));
    pairs.add(pair);
    const minDomains = num(c.minDomains);
    if (minDomains !== undefined) {
      if (minDomains <= 0)
        errs.push(invalid(at(p, "minDomains"), minDomains, "must be greater than 0"));
      else if (wu !== "DoNotSchedule")
        errs.push(
          invalid(
            at(p, "minDomains"),
            minDomains,
            `can only use minDomains if whenUnsatisfiable=DoNotSchedule, not ${wu}`,
          ),
        );
    }
    for (const f of ["nodeAffinityPolicy", "nodeTaintsPolicy"]) {
      if (typeof c[f] === "string" && !["Honor", "Ignore"].includes(c[f]))
        errs.push(unsupported(at(p, f), c[f], ["Honor", "Ignore"]));
    }
    errs.push(...validateLabelSelector(at(p, "labelSelector"), c.labelSelector));
  }
  return errs;
}

function validatePodSecurityContext(field: string, sc: unknown): FieldError[] {
  const s = rec(sc);
  if (!s) return [];
  const errs: FieldError[] = [];
  for (const f of ["fsGroup", "runAsUser", "runAsGroup"]) {
    const v = num(s[f]);
    if (v !== undefined && (v < 0 || v > 2147483647))
      errs.push(invalid(at(field, f), v, inclusiveRange(0, 2147483647)));
  }
  (Array.isArray(s.supplementalGroups) ? s.supplementalGroups : []).forEach((g, i) => {
    if (typeof g === "number" && (g < 0 || g > 2147483647))
      errs.push(invalid(idx(at(field, "supplementalGroups"), i), g, inclusiveRange(0, 2147483647)));
  });
  const sysctlRe = /^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$/;
  const names = new Set<string>();
  for (const [sysctl, i] of items(s.sysctls)) {
    const p = at(idx(at(field, "sysctls"), i), "name");
    const name = str(sysctl.name);
    if (!name) errs.push(required(p));
    else if (name.length > 253 || !sysctlRe.test(name))
      errs.push(
        invalid(
          p,
          name,
          "must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$",
        ),
      );
    else if (names.has(name)) errs.push(duplicate(p, name));
    names.add(name);
  }
  if (
    typeof s.fsGroupChangePolicy === "string" &&
    !["Always", "OnRootMismatch"].includes(s.fsGroupChangePolicy)
  )
    errs.push(
      unsupported(at(field, "fsGroupChangePolicy"), s.fsGroupChangePolicy, [
        "Always",
        "OnRootMismatch",
      ]),
    );
  errs.push(...seccompProfile(at(field, "seccompProfile"), s.seccompProfile));
  errs.push(...appArmorProfile(at(field, "appArmorProfile"), s.appArmorProfile));
  return errs;
}

/** Upstream's ValidatePodSpec (the common errors, in upstream's order). */
export function validatePodSpec(
  field: string,
  spec: Obj,
  opts: PodValidationOptions,
): FieldError[] {
  const errs: FieldError[] = [];
  if (unset(spec.terminationGracePeriodSeconds))
    errs.push(required(at(field, "terminationGracePeriodSeconds")));
  const gracePeriod = num(spec.terminationGracePeriodSeconds);
  const restartPolicy = str(spec.restartPolicy);

  const volumes = new Map<string, Obj>();
  const vpath = at(field, "volumes");
  for (const [v, i] of items(spec.volumes)) {
    const p = idx(vpath, i);
    const name = str(v.name);
    const vErrs = validateVolumeSource(p, v, opts.podName);
    if (!name) vErrs.push(required(at(p, "name")));
    else vErrs.push(...dnsLabel(at(p, "name"), name));
    if (volumes.has(name)) vErrs.push(duplicate(at(p, "name"), name));
    if (vErrs.length === 0) volumes.set(name, v);
    else errs.push(...vErrs);
  }

  const claimNames = new Set<string>();
  const rcPath = at(field, "resourceClaims");
  for (const [claim, i] of items(spec.resourceClaims)) {
    const p = idx(rcPath, i);
    const name = str(claim.name);
    if (!name) errs.push(required(at(p, "name")));
    else if (claimNames.has(name)) errs.push(duplicate(at(p, "name"), name));
    else {
      errs.push(...dnsLabel(at(p, "name"), name));
      claimNames.add(name);
    }
  }

  const cpath = at(field, "containers");
  const containers = items(spec.containers);
  if (containers.length === 0) errs.push(required(cpath));
  else {
    const names = new Set<string>();
    for (const [c, i] of containers) {
      const p = idx(cpath, i);
      errs.push(...validateContainerCommon(p, c, volumes, claimNames, restartPolicy));
      const name = str(c.name);
      if (names.has(name)) errs.push(duplicate(at(p, "name"), name));
      else names.add(name);
      const lifecycle = rec(c.lifecycle);
      if (lifecycle) errs.push(...validateLifecycle(at(p, "lifecycle"), lifecycle, gracePeriod));
      errs.push(...validateProbe(at(p, "livenessProbe"), c.livenessProbe, gracePeriod, "liveness"));
      errs.push(
        ...validateProbe(at(p, "readinessProbe"), c.readinessProbe, gracePeriod, "readiness"),
      );
      errs.push(...validateProbe(at(p, "startupProbe"), c.startupProbe, gracePeriod, "startup"));
      if (!unset(c.restartPolicy))
        errs.push(forbidden(at(p, "restartPolicy"), "may not be set for non-init containers"));
    }
    errs.push(...hostPortConflicts(cpath, containers));
  }

  const ipath = at(field, "initContainers");
  const allNames = new Set(containers.map(([c]) => str(c.name)));
  for (const [c, i] of items(spec.initContainers)) {
    const p = idx(ipath, i);
    errs.push(...validateContainerCommon(p, c, volumes, claimNames, restartPolicy));
    let restartAlways = false;
    if (!unset(c.restartPolicy)) {
      if (c.restartPolicy !== "Always")
        errs.push(unsupported(at(p, "restartPolicy"), c.restartPolicy, ["Always"]));
      restartAlways = c.restartPolicy === "Always";
    }
    const name = str(c.name);
    if (allNames.has(name)) errs.push(duplicate(at(p, "name"), name));
    else if (name) allNames.add(name);
    errs.push(...hostPortConflicts(ipath, [[c, i]]));
    if (restartAlways) {
      const lifecycle = rec(c.lifecycle);
      if (lifecycle) errs.push(...validateLifecycle(at(p, "lifecycle"), lifecycle, gracePeriod));
      errs.push(...validateProbe(at(p, "livenessProbe"), c.livenessProbe, gracePeriod, "liveness"));
      errs.push(
        ...validateProbe(at(p, "readinessProbe"), c.readinessProbe, gracePeriod, "readiness"),
      );
      errs.push(...validateProbe(at(p, "startupProbe"), c.startupProbe, gracePeriod, "startup"));
    } else {
      for (const f of ["lifecycle", "livenessProbe", "readinessProbe", "startupProbe"])
        if (!unset(c[f]))
          errs.push(
            forbidden(at(p, f), "may not be set for init containers without restartPolicy=Always"),
          );
    }
    if (Array.isArray(c.resizePolicy) && c.resizePolicy.length > 0)
      errs.push(
        invalid(
          at(p, "resizePolicy"),
          JSON.stringify(c.resizePolicy),
          "must not be set for init containers",
        ),
      );
  }

  const epath = at(field, "ephemeralContainers");
  for (const [c, i] of items(spec.ephemeralContainers)) {
    const p = idx(epath, i);
    errs.push(...validateContainerCommon(p, c, volumes, claimNames, restartPolicy));
    const name = str(c.name);
    if (allNames.has(name)) errs.push(duplicate(at(p, "name"), name));
    else allNames.add(name);
    for (const f of [
      "ports",
      "resources",
      "livenessProbe",
      "readinessProbe",
      "startupProbe",
      "lifecycle",
    ]) {
      const v = c[f];
      const empty =
        unset(v) ||
        (isObj(v) && Object.keys(v).length === 0) ||
        (Array.isArray(v) && v.length === 0);
      if (!empty) errs.push(forbidden(at(p, f), "cannot be set for an Ephemeral Container"));
    }
  }

  if (spec.hostNetwork === true) {
    for (const [c, i] of containers) {
      for (const [port, j] of items(c.ports)) {
        const hp = num(port.hostPort) ?? 0;
        const cp = num(port.containerPort) ?? 0;
        if ((opts.isPod || hp !== 0) && hp !== cp)
          errs.push(
            invalid(
              at(idx(at(idx(cpath, i), "ports"), j), "hostPort"),
              hp,
              "must match `containerPort` when `hostNetwork` is true",
            ),
          );
      }
    }
  }

  const rp = at(field, "restartPolicy");
  if (!restartPolicy) errs.push(required(rp));
  else if (!["Always", "OnFailure", "Never"].includes(restartPolicy))
    errs.push(unsupported(rp, restartPolicy, ["Always", "OnFailure", "Never"]));
  const dnsPolicy = str(spec.dnsPolicy);
  const dnsPolicies = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
  if (!dnsPolicy) errs.push(required(at(field, "dnsPolicy")));
  else if (!dnsPolicies.includes(dnsPolicy))
    errs.push(unsupported(at(field, "dnsPolicy"), dnsPolicy, dnsPolicies));
  errs.push(...validateLabels(at(field, "nodeSelector"), spec.nodeSelector));
  errs.push(...validatePodSecurityContext(at(field, "securityContext"), spec.securityContext));
  for (const [ref, i] of items(spec.imagePullSecrets)) {
    if (Object.keys(ref).some((k) => k !== "name"))
      errs.push(
        invalid(idx(at(field, "imagePullSecrets"), i), JSON.stringify(ref), "only name may be set"),
      );
  }
  errs.push(...validateAffinity(at(field, "affinity"), spec.affinity));
  errs.push(...validateDNSConfig(at(field, "dnsConfig"), spec.dnsConfig, dnsPolicy));
  for (const [g, i] of items(spec.readinessGates))
    errs.push(
      ...qualifiedName(
        at(idx(at(field, "readinessGates"), i), "conditionType"),
        str(g.conditionType),
      ),
    );
  const gates = new Set<string>();
  for (const [g, i] of items(spec.schedulingGates)) {
    const p = idx(at(field, "schedulingGates"), i);
    errs.push(...qualifiedName(p, str(g.name)));
    if (gates.has(str(g.name))) errs.push(duplicate(p, str(g.name)));
    gates.add(str(g.name));
  }
  errs.push(
    ...validateTopologySpread(
      at(field, "topologySpreadConstraints"),
      spec.topologySpreadConstraints,
    ),
  );
  const sa = str(spec.serviceAccountName);
  if (sa)
    for (const m of dns1123SubdomainErrors(sa))
      errs.push(invalid(at(field, "serviceAccountName"), sa, m));
  const nodeName = str(spec.nodeName);
  if (nodeName)
    for (const m of dns1123SubdomainErrors(nodeName))
      errs.push(invalid(at(field, "nodeName"), nodeName, m));
  const ads = num(spec.activeDeadlineSeconds);
  if (ads !== undefined && (ads < 1 || ads > 2147483647))
    errs.push(invalid(at(field, "activeDeadlineSeconds"), ads, inclusiveRange(1, 2147483647)));
  if (str(spec.hostname)) errs.push(...dnsLabel(at(field, "hostname"), str(spec.hostname)));
  if (str(spec.subdomain)) errs.push(...dnsLabel(at(field, "subdomain"), str(spec.subdomain)));
  errs.push(...validateTolerations(at(field, "tolerations"), spec.tolerations));
  for (const [alias, i] of items(spec.hostAliases)) {
    const p = idx(at(field, "hostAliases"), i);
    if (!isIP(str(alias.ip)))
      errs.push(
        invalid(
          at(p, "ip"),
          str(alias.ip),
          "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ),
      );
    (Array.isArray(alias.hostnames) ? alias.hostnames : []).forEach((h, j) =>
      errs.push(...dnsSubdomain(idx(at(p, "hostnames"), j), String(h))),
    );
  }
  const pcn = str(spec.priorityClassName);
  if (pcn)
    for (const m of dns1123SubdomainErrors(pcn))
      errs.push(invalid(at(field, "priorityClassName"), pcn, m));
  if (typeof spec.runtimeClassName === "string")
    errs.push(...dnsSubdomain(at(field, "runtimeClassName"), spec.runtimeClassName));
  if (!unset(spec.preemptionPolicy)) {
    const pp = str(spec.preemptionPolicy);
    if (!pp) errs.push(required(at(field, "preemptionPolicy")));
    else if (!["PreemptLowerPriority", "Never"].includes(pp))
      errs.push(unsupported(at(field, "preemptionPolicy"), pp, ["PreemptLowerPriority", "Never"]));
  }
  if (isObj(spec.overhead))
    errs.push(
      ...validateResourceRequirements(at(field, "overhead"), { limits: spec.overhead }, claimNames),
    );
  const os = rec(spec.os);
  if (os) {
    const name = str(os.name);
    if (!name) errs.push(required(at(at(field, "os"), "name")));
    else if (!["linux", "windows"].includes(name))
      errs.push(unsupported(at(at(field, "os"), "name"), name, ["linux", "windows"]));
  }
  return errs;
}

function validateDNSConfig(field: string, config: unknown, dnsPolicy: string): FieldError[] {
  const c = rec(config);
  if (dnsPolicy === "None") {
    if (!c) return [required(field, "must provide `dnsConfig` when `dnsPolicy` is None")];
    if (!Array.isArray(c.nameservers) || c.nameservers.length === 0)
      return [
        required(
          at(field, "nameservers"),
          "must provide at least one DNS nameserver when `dnsPolicy` is None",
        ),
      ];
  }
  if (!c) return [];
  const errs: FieldError[] = [];
  const ns = Array.isArray(c.nameservers) ? c.nameservers : [];
  if (ns.length > 3)
    errs.push(
      invalid(
        at(field, "nameservers"),
        JSON.stringify(ns),
        "must not have more than 3 nameservers",
      ),
    );
  ns.forEach((n, i) => {
    if (!isIP(String(n)))
      errs.push(
        invalid(
          idx(at(field, "nameservers"), i),
          String(n),
          "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ),
      );
  });
  const searches = Array.isArray(c.searches) ? c.searches.map(String) : [];
  if (searches.length > 32)
    errs.push(
      invalid(
        at(field, "searches"),
        JSON.stringify(searches),
        "must not have more than 32 search paths",
      ),
    );
  if (searches.join(" ").length > 2048)
    errs.push(
      invalid(
        at(field, "searches"),
        JSON.stringify(searches),
        "must not have more than 2048 characters (including spaces) in the search list",
      ),
    );
  searches.forEach((s, i) => {
    if (s === ".") return;
    const trimmed = s.replace(/\.$/, "");
    const re = /^_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*$/;
    if (trimmed.length > 253)
      errs.push(
        invalid(idx(at(field, "searches"), i), trimmed, "must be no more than 253 characters"),
      );
    if (!re.test(trimmed))
      errs.push(
        invalid(
          idx(at(field, "searches"), i),
          trimmed,
          "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
      );
  });
  for (const [o, i] of items(c.options))
    if (!str(o.name)) errs.push(required(idx(at(field, "options"), i), "must not be empty"));
  return errs;
}

const SECCOMP_POD = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_PREFIX = "container.seccomp.security.alpha.kubernetes.io/";

function seccompAnnotation(field: string, p: string): FieldError[] {
  if (["runtime/default", "docker/default", "unconfined"].includes(p)) return [];
  if (p.startsWith("localhost/")) return localDescendingPath(field, p.slice("localhost/".length));
  return [invalid(field, p, "must be a valid seccomp profile")];
}

/** Upstream's ValidatePodSpecificAnnotations. */
export function validatePodAnnotations(
  field: string,
  annotations: unknown,
  spec: Obj,
): FieldError[] {
  const a = rec(annotations) ?? {};
  const errs: FieldError[] = [];
  const mirror = "kubernetes.io/config.mirror";
  if (mirror in a && !str(spec.nodeName))
    errs.push(
      invalid(
        key(field, mirror),
        str(a[mirror]),
        "must set spec.nodeName if mirror pod annotation is set",
      ),
    );
  const cost = "controller.kubernetes.io/pod-deletion-cost";
  if (cost in a) {
    const v = str(a[cost]);
    const n = /^[+-]?[0-9]+$/.test(v) ? Number(v) : NaN;
    if (!(n >= -2147483648 && n <= 2147483647))
      errs.push(invalid(key(field, cost), v, "must be a 32bit integer"));
  }
  if (SECCOMP_POD in a)
    errs.push(...seccompAnnotation(at(field, SECCOMP_POD), str(a[SECCOMP_POD])));
  for (const [k, v] of Object.entries(a)) {
    if (k.startsWith(SECCOMP_CONTAINER_PREFIX))
      errs.push(...seccompAnnotation(at(field, k), str(v)));
    if (k.startsWith(APPARMOR_PREFIX)) {
      const container = k.slice(APPARMOR_PREFIX.length);
      const has = CONTAINER_LISTS.some((l) =>
        items(spec[l]).some(([c]) => str(c.name) === container),
      );
      if (!has) errs.push(invalid(key(field, k), container, "container not found"));
      const profile = str(v);
      if (
        profile &&
        profile !== "runtime/default" &&
        profile !== "unconfined" &&
        !profile.startsWith("localhost/")
      )
        errs.push(
          invalid(key(field, k), profile, `invalid AppArmor profile name: ${goQuote(profile)}`),
        );
    }
  }
  return errs;
}

/** Upstream's ValidatePodTemplateSpec (labels, annotations and spec of an embedded template). */
export function validatePodTemplateSpec(field: string, template: Obj): FieldError[] {
  const meta = rec(template.metadata) ?? {};
  const spec = rec(template.spec) ?? {};
  const errs = validateLabels(at(field, "labels"), meta.labels);
  errs.push(...validateAnnotations(at(field, "annotations"), meta.annotations));
  errs.push(...validatePodAnnotations(at(field, "annotations"), meta.annotations, spec));
  errs.push(...validatePodSpec(at(field, "spec"), spec, { isPod: false }));
  if (Array.isArray(spec.ephemeralContainers) && spec.ephemeralContainers.length > 0)
    errs.push(
      forbidden(
        at(at(field, "spec"), "ephemeralContainers"),
        "ephemeral containers not allowed in pod template",
      ),
    );
  return errs;
}

function imageWhitespace(field: string, spec: Obj): FieldError[] {
  const errs: FieldError[] = [];
  for (const list of ["containers", "initContainers"]) {
    for (const [c, i] of items(spec[list])) {
      const image = str(c.image);
      if (image.trim().length !== image.length)
        errs.push(
          invalid(
            at(idx(at(field, list), i), "image"),
            image,
            "must not have leading or trailing whitespace",
          ),
        );
    }
  }
  return errs;
}

function validatePodMetadataAndSpec(pod: KObject): FieldError[] {
  const spec = rec(pod.spec) ?? {};
  const errs = validatePodAnnotations("metadata.annotations", pod.metadata?.annotations, spec);
  errs.push(...validatePodSpec("spec", spec, { isPod: true, podName: pod.metadata?.name }));
  if (!str(spec.serviceAccountName)) {
    for (const [v, i] of items(spec.volumes)) {
      for (const [source, j] of items(rec(v.projected)?.sources)) {
        if (rec(source.serviceAccountToken))
          errs.push(
            forbidden(
              `spec.volumes[${i}].projected.sources[${j}].serviceAccountToken`,
              "must not be specified when serviceAccountName is not set",
            ),
          );
      }
    }
  }
  errs.push(...imageWhitespace("spec", spec));
  return errs;
}

/** Upstream's ValidatePodCreate (beyond metadata). */
export function validatePod(pod: KObject): FieldError[] {
  const spec = rec(pod.spec) ?? {};
  const errs = validatePodMetadataAndSpec(pod);
  if (Array.isArray(spec.ephemeralContainers) && spec.ephemeralContainers.length > 0)
    errs.push(forbidden("spec.ephemeralContainers", "cannot be set on create"));
  if (str(spec.nodeName) && Array.isArray(spec.schedulingGates) && spec.schedulingGates.length > 0)
    errs.push(
      forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared"),
    );
  return errs;
}

const UPDATABLE_POD_FIELDS = [
  "`spec.containers[*].image`",
  "`spec.initContainers[*].image`",
  "`spec.activeDeadlineSeconds`",
  "`spec.tolerations` (only additions to existing tolerations)",
  "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
];

/** A short field-by-field account of how two specs differ (upstream prints a cmp.Diff here). */
function specDiff(old: Obj, next: Obj): string {
  const lines: string[] = [];
  const fields = [...new Set([...Object.keys(old), ...Object.keys(next)])].sort();
  for (const f of fields) {
    if (deepEqual(old[f], next[f])) continue;
    if (old[f] !== undefined) lines.push(`-  ${f}: ${JSON.stringify(old[f])}`);
    if (next[f] !== undefined) lines.push(`+  ${f}: ${JSON.stringify(next[f])}`);
  }
  return `  core.PodSpec{\n${lines.map((l) => `  ${l}`).join("\n")}\n  }\n`;
}

/** Upstream's ValidatePodUpdate (beyond metadata). */
export function validatePodUpdate(pod: KObject, old: KObject): FieldError[] {
  const errs = validatePodMetadataAndSpec(pod);
  const spec = rec(pod.spec) ?? {};
  const oldSpec = rec(old.spec) ?? {};
  const oldAnn = rec(old.metadata?.annotations) ?? {};
  const newAnn = rec(pod.metadata?.annotations) ?? {};
  const mirror = "kubernetes.io/config.mirror";
  for (const [k, v] of Object.entries(oldAnn)) {
    if (k in newAnn && newAnn[k] === v) continue;
    if (k.startsWith(APPARMOR_PREFIX))
      errs.push(
        forbidden(key("metadata.annotations", k), "may not remove or update AppArmor annotations"),
      );
    if (k === mirror)
      errs.push(
        forbidden(key("metadata.annotations", k), "may not remove or update mirror pod annotation"),
      );
  }
  for (const k of Object.keys(newAnn)) {
    if (k in oldAnn) continue;
    if (k.startsWith(APPARMOR_PREFIX))
      errs.push(forbidden(key("metadata.annotations", k), "may not add AppArmor annotations"));
    if (k === mirror)
      errs.push(forbidden(key("metadata.annotations", k), "may not add mirror pod annotation"));
  }
  for (const list of ["containers", "initContainers"]) {
    const next = Array.isArray(spec[list]) ? (spec[list] as unknown[]) : [];
    const prev = Array.isArray(oldSpec[list]) ? (oldSpec[list] as unknown[]) : [];
    if (next.length !== prev.length) {
      errs.push(forbidden(`spec.${list}`, "pod updates may not add or remove containers"));
      return errs;
    }
    for (const [c, i] of items(next)) {
      const image = str(c.image);
      if (!image) errs.push(required(`spec.${list}[${i}].image`));
      if (image.trim().length !== image.length)
        errs.push(
          invalid(
            `spec.${list}[${i}].image`,
            image,
            "must not have leading or trailing whitespace",
          ),
        );
    }
  }
  const ads = num(spec.activeDeadlineSeconds);
  const oldAds = num(oldSpec.activeDeadlineSeconds);
  if (ads !== undefined) {
    if (ads < 0 || ads > 2147483647) {
      errs.push(invalid("spec.activeDeadlineSeconds", ads, inclusiveRange(0, 2147483647)));
      return errs;
    }
    if (oldAds !== undefined && oldAds < ads) {
      errs.push(
        invalid("spec.activeDeadlineSeconds", ads, "must be less than or equal to previous value"),
      );
      return errs;
    }
  } else if (oldAds !== undefined) {
    errs.push(
      invalid(
        "spec.activeDeadlineSeconds",
        null,
        "must not update from a positive integer to nil value",
      ),
    );
  }
  const oldTolerations = items(oldSpec.tolerations).map(([t]) => t);
  const newTolerations = items(spec.tolerations).map(([t]) => t);
  const tolerationKept = (o: Obj) =>
    newTolerations.some((n) => deepEqual({ ...o, tolerationSeconds: n.tolerationSeconds }, n));
  if (!oldTolerations.every(tolerationKept))
    errs.push(
      forbidden(
        "spec.tolerations",
        "existing toleration can not be modified except its tolerationSeconds",
      ),
    );
  else errs.push(...validateTolerations("spec.tolerations", spec.tolerations));
  const oldGates = new Set(items(oldSpec.schedulingGates).map(([g]) => str(g.name)));
  items(spec.schedulingGates).forEach(([g, i]) => {
    if (!oldGates.has(str(g.name)))
      errs.push(
        forbidden(
          `spec.schedulingGates[${i}].name`,
          `only deletion is allowed, but found new scheduling gate '${str(g.name)}'`,
        ),
      );
  });
  if (deepEqual(spec, oldSpec)) return errs;
  const munged = clone(spec);
  for (const list of ["containers", "initContainers"]) {
    const prev = items(oldSpec[list]);
    for (const [c, i] of items(munged[list])) {
      const o = prev.find(([, j]) => j === i);
      if (o) c.image = o[0].image;
    }
  }
  if (oldAds !== undefined) munged.activeDeadlineSeconds = oldAds;
  else delete munged.activeDeadlineSeconds;
  for (const f of ["schedulingGates", "tolerations"]) {
    if (oldSpec[f] === undefined) delete munged[f];
    else munged[f] = oldSpec[f];
  }
  const oldTgps = num(oldSpec.terminationGracePeriodSeconds);
  if (oldTgps !== undefined && oldTgps < 0 && munged.terminationGracePeriodSeconds === 1)
    munged.terminationGracePeriodSeconds = oldTgps;
  if (oldGates.size > 0) {
    munged.nodeSelector = oldSpec.nodeSelector;
    const affinity = rec(munged.affinity);
    if (affinity) affinity.nodeAffinity = rec(oldSpec.affinity)?.nodeAffinity;
  }
  if (!deepEqual(munged, oldSpec)) {
    errs.push(
      forbidden(
        "spec",
        `pod updates may not change fields other than ${UPDATABLE_POD_FIELDS.join(",")}\n${specDiff(oldSpec, munged)}`,
      ),
    );
  }
  return errs;
}

export const podStrategy: Partial<Strategy> = {
  tracksGeneration: false,
  defaults: defaultPod,
  prepareForCreate: preparePodForCreate,
  prepareForUpdate(obj, old) {
    if (old.status === undefined) delete obj.status;
    else obj.status = clone(old.status);
  },
  validate: validatePod,
  validateUpdate: validatePodUpdate,
};

export const podTemplateStrategy: Partial<Strategy> = {
  tracksGeneration: true,
  defaults(obj) {
    defaultPodTemplateSpec(obj, child(obj, "template"));
  },
  validate(obj) {
    return validatePodTemplateSpec("template", rec(obj.template) ?? {});
  },
  validateUpdate(obj) {
    return validatePodTemplateSpec("template", rec(obj.template) ?? {});
  },
};
