/**
 * The Pod Security Standards as upstream's pod-security-admission 1.32 evaluates them: the
 * baseline checks, the restricted checks (which replace three baseline ones), each with the
 * versions of the standard it has changed in, evaluated in upstream's order (baseline checks then
 * restricted ones, each group by check ID) and reported with upstream's reasons and details.
 */
import type { Container, PodSpec, SELinuxOptions } from "kubernetes-types/core/v1.js";
import type { ObjectMeta } from "kubernetes-types/meta/v1.js";
import { allContainers, byteOrder } from "./util.js";

export type Level = "privileged" | "baseline" | "restricted";

/** A version of the standards: `latest` or v1.minor. */
export type Version = { latest: true } | { latest: false; minor: number };

/** The newest version the checks know; "latest" and anything newer evaluate as this. */
export const MAX_MINOR = 32;

export interface CheckResult {
  allowed: boolean;
  reason?: string;
  detail?: string;
}

type CheckFn = (meta: ObjectMeta, spec: PodSpec) => CheckResult;

interface VersionedCheck {
  minor: number;
  check: CheckFn;
  overrides?: string[];
}

interface Check {
  id: string;
  level: "baseline" | "restricted";
  versions: VersionedCheck[];
}

const ALLOWED: CheckResult = { allowed: true };

const joinQuote = (items: string[]) => (items.length ? `"${items.join('", "')}"` : "");
const plural = (one: string, many: string, n: number) => (n === 1 ? one : many);
const containersPhrase = (names: string[]) =>
  `${plural("container", "containers", names.length)} ${joinQuote(names)}`;
const sortedSet = (s: Set<string>) => [...s].sort(byteOrder);
const isWindows = (spec: PodSpec) => spec.os?.name === "windows";

function visit(spec: PodSpec, fn: (c: Container) => void): void {
  for (const c of allContainers(spec)) fn(c);
}

// ---------------------------------------------------------------------------------------------
// Baseline.

function allowedAppArmorAnnotation(v: string): boolean {
  return v === "" || v === "runtime/default" || v.startsWith("localhost/");
}

const allowedAppArmorType = (t: string | undefined) => t === "RuntimeDefault" || t === "Localhost";

const appArmorProfile: CheckFn = (meta, spec) => {
  const badSetters: string[] = [];
  const badValues = new Set<string>();
  const podProfile = spec.securityContext?.appArmorProfile;
  if (podProfile && !allowedAppArmorType(podProfile.type)) {
    badSetters.push("pod");
    badValues.add(podProfile.type);
  }
  const badContainers: string[] = [];
  visit(spec, (c) => {
    const p = c.securityContext?.appArmorProfile;
    if (p && !allowedAppArmorType(p.type)) {
      badContainers.push(c.name);
      badValues.add(p.type);
    }
  });
  if (badContainers.length > 0) badSetters.push(containersPhrase(badContainers));
  const annotations: string[] = [];
  for (const [k, v] of Object.entries(meta.annotations ?? {}) as Array<[string, string]>) {
    if (
      k.startsWith("container.apparmor.security.beta.kubernetes.io/") &&
      !allowedAppArmorAnnotation(v)
    ) {
      annotations.push(`${k}=${JSON.stringify(v)}`);
    }
  }
  const values = sortedSet(badValues);
  if (annotations.length > 0) {
    values.push(...annotations.sort(byteOrder));
    badSetters.push(plural("annotation", "annotations", annotations.length));
  }
  if (badSetters.length === 0) return ALLOWED;
  return {
    allowed: false,
    reason: plural("forbidden AppArmor profile", "forbidden AppArmor profiles", values.length),
    detail: `${badSetters.join(" and ")} must not set AppArmor profile type to ${joinQuote(values)}`,
  };
};

const DEFAULT_CAPABILITIES = new Set([
  "AUDIT_WRITE",
  "CHOWN",
  "DAC_OVERRIDE",
  "FOWNER",
  "FSETID",
  "KILL",
  "MKNOD",
  "NET_BIND_SERVICE",
  "SETFCAP",
  "SETGID",
  "SETPCAP",
  "SETUID",
  "SYS_CHROOT",
]);

const capabilitiesBaseline: CheckFn = (_meta, spec) => {
  const bad: string[] = [];
  const caps = new Set<string>();
  visit(spec, (c) => {
    let valid = true;
    for (const cap of c.securityContext?.capabilities?.add ?? []) {
      if (!DEFAULT_CAPABILITIES.has(cap)) {
        valid = false;
        caps.add(cap);
      }
    }
    if (!valid) bad.push(c.name);
  });
  if (bad.length === 0) return ALLOWED;
  return {
    allowed: false,
    reason: "non-default capabilities",
    detail: `${containersPhrase(bad)} must not include ${joinQuote(sortedSet(caps))} in securityContext.capabilities.add`,
  };
};

const hostNamespaces: CheckFn = (_meta, spec) => {
  const used: string[] = [];
  if (spec.hostNetwork) used.push("hostNetwork=true");
  if (spec.hostPID) used.push("hostPID=true");
  if (spec.hostIPC) used.push("hostIPC=true");
  if (used.length === 0) return ALLOWED;
  return { allowed: false, reason: "host namespaces", detail: used.join(", ") };
};

const hostPathVolumes: CheckFn = (_meta, spec) => {
  const bad = (spec.volumes ?? []).filter((v) => v.hostPath).map((v) => v.name);
  if (bad.length === 0) return ALLOWED;
  return {
    allowed: false,
    reason: "hostPath volumes",
    detail: `${plural("volume", "volumes", bad.length)} ${joinQuote(bad)}`,
  };
};

const hostPorts: CheckFn = (_meta, spec) => {
  const bad: string[] = [];
  const ports = new Set<string>();
  visit(spec, (c) => {
    let valid = true;
    for (const p of c.ports ?? []) {
      if (p.hostPort) {
        valid = false;
        ports.add(String(p.hostPort));
      }
    }
    if (!valid) bad.push(c.name);
  });
  if (bad.length === 0) return ALLOWED;
  return {
    allowed: false,
    reason: "hostPort",
    detail: `${containersPhrase(bad)} ${plural("uses", "use", bad.length)} ${plural("hostPort", "hostPorts", ports.size)} ${sortedSet(ports).join(", ")}`,
  };
};

const privileged: CheckFn = (_meta, spec) => {
  const bad: string[] = [];
  visit(spec, (c) => {
    if (c.securityContext?.privileged === true) bad.push(c.name);
  });
  if (bad.length === 0) return ALLOWED;
  return {
    allowed: false,
    reason: "privileged",
    detail: `${containersPhrase(bad)} must not set securityContext.privileged=true`,
  };
};

const procMount: CheckFn = (_meta, spec) => {
  const bad: string[] = [];
  const types = new Set<string>();
  visit(spec, (c) => {
    const pm = c.securityContext?.procMount;
    if (pm !== undefined && pm !== null && pm !== "Default") {
      bad.push(c.name);
      types.add(pm);
    }
  });
  if (bad.length === 0) return ALLOWED;
  return {
    allowed: false,
    reason: "procMount",
    detail: `${containersPhrase(bad)} must not set securityContext.procMount to ${joinQuote(sortedSet(types))}`,
  };
};

function seLinuxOptions(allowedTypes: Set<string>): CheckFn {
  return (_meta, spec) => {
    const badSetters: string[] = [];
    const badTypes = new Set<string>();
    let setUser = false;
    let setRole = false;
    const valid = (o: SELinuxOptions) => {
      let ok = true;
      if (!allowedTypes.has(o.type ?? "")) {
        ok = false;
        badTypes.add(o.type ?? "");
      }
      if (o.user) {
        ok = false;
        setUser = true;
      }
      if (o.role) {
        ok = false;
        setRole = true;
      }
      return ok;
    };
    const podOpts = spec.securityContext?.seLinuxOptions;
    if (podOpts && !valid(podOpts)) badSetters.push("pod");
    const bad: string[] = [];
    visit(spec, (c) => {
      const o = c.securityContext?.seLinuxOptions;
      if (o && !valid(o)) bad.push(c.name);
    });
    if (bad.length > 0) badSetters.push(containersPhrase(bad));
    if (badSetters.length === 0) return ALLOWED;
    const data: string[] = [];
    if (badTypes.size > 0) {
      data.push(`${plural("type", "types", badTypes.size)} ${joinQuote(sortedSet(badTypes))}`);
    }
    if (setUser) data.push("user may not be set");
    if (setRole) data.push("role may not be set");
    return {
      allowed: false,
      reason: "seLinuxOptions",
      detail: `${badSetters.join(" and ")} set forbidden securityContext.seLinuxOptions: ${data.join("; ")}`,
    };
  };
}

const SELINUX_TYPES_1_0 = new Set(["", "container_t", "container_init_t", "container_kvm_t"]);
const SELINUX_TYPES_1_31 = new Set([...SELINUX_TYPES_1_0, "container_engine_t"]);

const validSeccomp = (t: string | undefined) => t === "Localhost" || t === "RuntimeDefault";

function seccompAnnotationValid(v: string): boolean {
  return v === "runtime/default" || v === "docker/default" || v.startsWith("localhost/");
}

const seccompBaseline_1_0: CheckFn = (meta, spec) => {
  const forbidden = new Set<string>();
  const ann = meta.annotations ?? {};
  const podKey = "seccomp.security.alpha.kubernetes.io/pod";
  if (podKey in ann && !seccompAnnotationValid(ann[podKey]!)) {
    forbidden.add(`${podKey}=${JSON.stringify(ann[podKey])}`);
  }
  visit(spec, (c) => {
    const key = `container.seccomp.security.alpha.kubernetes.io/${c.name}`;
    if (key in ann && !seccompAnnotationValid(ann[key]!)) {
      forbidden.add(`${key}=${JSON.stringify(ann[key])}`);
    }
  });
  if (forbidden.size === 0) return ALLOWED;
  return {
    allowed: false,
    reason: "seccompProfile",
    detail: `forbidden ${plural("annotation", "annotations", forbidden.size)} ${sortedSet(forbidden).join(", ")}`,
  };
};

const seccompBaseline_1_19: CheckFn = (_meta, spec) => {
  const badSetters: string[] = [];
  const badValues = new Set<string>();
  const podProfile = spec.securityContext?.seccompProfile;
  if (podProfile && !validSeccomp(podProfile.type)) {
    badSetters.push("pod");
    badValues.add(podProfile.type);
  }
  const bad: string[] = [];
  visit(spec, (c) => {
    const p = c.securityContext?.seccompProfile;
    if (p && !validSeccomp(p.type)) {
      bad.push(c.name);
      badValues.add(p.type);
    }
  });
  if (bad.length > 0) badSetters.push(containersPhrase(bad));
  if (badSetters.length === 0) return ALLOWED;
  return {
    allowed: false,
    reason: "seccompProfile",
    detail: `${badSetters.join(" and ")} must not set securityContext.seccompProfile.type to ${joinQuote(sortedSet(badValues))}`,
  };
};

const SYSCTLS_1_0 = [
  "kernel.shm_rmid_forced",
  "net.ipv4.ip_local_port_range",
  "net.ipv4.tcp_syncookies",
  "net.ipv4.ping_group_range",
  "net.ipv4.ip_unprivileged_port_start",
];
const SYSCTLS_1_27 = [...SYSCTLS_1_0, "net.ipv4.ip_local_reserved_ports"];
const SYSCTLS_1_29 = [
  ...SYSCTLS_1_27,
  "net.ipv4.tcp_keepalive_time",
  "net.ipv4.tcp_fin_timeout",
  "net.ipv4.tcp_keepalive_intvl",
  "net.ipv4.tcp_keepalive_probes",
];
const SYSCTLS_1_32 = [...SYSCTLS_1_29, "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"];

function sysctls(allowed: string[]): CheckFn {
  const set = new Set(allowed);
  return (_meta, spec) => {
    const bad = (spec.securityContext?.sysctls ?? []).map((s) => s.name).filter((n) => !set.has(n));
    if (bad.length === 0) return ALLOWED;
    return { allowed: false, reason: "forbidden sysctls", detail: bad.join(", ") };
  };
}

const windowsHostProcess: CheckFn = (_meta, spec) => {
  const bad: string[] = [];
  visit(spec, (c) => {
    if (c.securityContext?.windowsOptions?.hostProcess === true) bad.push(c.name);
  });
  const setters: string[] = [];
  if (spec.securityContext?.windowsOptions?.hostProcess === true) setters.push("pod");
  if (bad.length > 0) setters.push(containersPhrase(bad));
  if (setters.length === 0) return ALLOWED;
  return {
    allowed: false,
    reason: "hostProcess",
    detail: `${setters.join(" and ")} must not set securityContext.windowsOptions.hostProcess=true`,
  };
};

// ---------------------------------------------------------------------------------------------
// Restricted.

const allowPrivilegeEscalation_1_8: CheckFn = (_meta, spec) => {
  const bad: string[] = [];
  visit(spec, (c) => {
    if (c.securityContext?.allowPrivilegeEscalation !== false) bad.push(c.name);
  });
  if (bad.length === 0) return ALLOWED;
  return {
    allowed: false,
    reason: "allowPrivilegeEscalation != false",
    detail: `${containersPhrase(bad)} must set securityContext.allowPrivilegeEscalation=false`,
  };
};

const notOnWindows =
  (fn: CheckFn): CheckFn =>
  (meta, spec) =>
    isWindows(spec) ? ALLOWED : fn(meta, spec);

const capabilitiesRestricted_1_22: CheckFn = (_meta, spec) => {
  const missingDrop: string[] = [];
  const adding: string[] = [];
  const caps = new Set<string>();
  visit(spec, (c) => {
    const capabilities = c.securityContext?.capabilities;
    if (!capabilities) {
      missingDrop.push(c.name);
      return;
    }
    if (!(capabilities.drop ?? []).includes("ALL")) missingDrop.push(c.name);
    let forbidden = false;
    for (const cap of capabilities.add ?? []) {
      if (cap !== "NET_BIND_SERVICE") {
        forbidden = true;
        caps.add(cap);
      }
    }
    if (forbidden) adding.push(c.name);
  });
  const details: string[] = [];
  if (missingDrop.length > 0) {
    details.push(
      `${containersPhrase(missingDrop)} must set securityContext.capabilities.drop=["ALL"]`,
    );
  }
  if (adding.length > 0) {
    details.push(
      `${containersPhrase(adding)} must not include ${joinQuote(sortedSet(caps))} in securityContext.capabilities.add`,
    );
  }
  if (details.length === 0) return ALLOWED;
  return { allowed: false, reason: "unrestricted capabilities", detail: details.join("; ") };
};

/** The volume types restricted pods may use, and the names of the others. */
const ALLOWED_VOLUME_TYPES = [
  "configMap",
  "csi",
  "downwardAPI",
  "emptyDir",
  "ephemeral",
  "persistentVolumeClaim",
  "projected",
  "secret",
];
const RESTRICTED_VOLUME_TYPES = [
  "hostPath",
  "gcePersistentDisk",
  "awsElasticBlockStore",
  "gitRepo",
  "nfs",
  "iscsi",
  "glusterfs",
  "rbd",
  "flexVolume",
  "cinder",
  "cephfs",
  "flocker",
  "fc",
  "azureFile",
  "vsphereVolume",
  "quobyte",
  "azureDisk",
  "photonPersistentDisk",
  "portworxVolume",
  "scaleIO",
  "storageos",
];

const restrictedVolumes: CheckFn = (_meta, spec) => {
  const bad: string[] = [];
  const types = new Set<string>();
  for (const v of spec.volumes ?? []) {
    const source = v as unknown as Record<string, unknown>;
    const has = (t: string) => source[t] !== undefined && source[t] !== null;
    if (ALLOWED_VOLUME_TYPES.some(has)) continue;
    bad.push(v.name);
    types.add(RESTRICTED_VOLUME_TYPES.find(has) ?? "unknown");
  }
  if (bad.length === 0) return ALLOWED;
  return {
    allowed: false,
    reason: "restricted volume types",
    detail: `${plural("volume", "volumes", bad.length)} ${joinQuote(bad)} ${plural("uses", "use", bad.length)} ${plural("restricted volume type", "restricted volume types", types.size)} ${joinQuote(sortedSet(types))}`,
  };
};

const runAsNonRoot: CheckFn = (_meta, spec) => {
  const badSetters: string[] = [];
  let podNonRoot = false;
  const podValue = spec.securityContext?.runAsNonRoot;
  if (typeof podValue === "boolean") {
    if (!podValue) badSetters.push("pod");
    else podNonRoot = true;
  }
  const explicit: string[] = [];
  const implicit: string[] = [];
  visit(spec, (c) => {
    const v = c.securityContext?.runAsNonRoot;
    if (typeof v === "boolean") {
      if (!v) explicit.push(c.name);
    } else if (!podNonRoot) implicit.push(c.name);
  });
  if (explicit.length > 0) badSetters.push(containersPhrase(explicit));
  if (badSetters.length > 0) {
    return {
      allowed: false,
      reason: "runAsNonRoot != true",
      detail: `${badSetters.join(" and ")} must not set securityContext.runAsNonRoot=false`,
    };
  }
  if (implicit.length > 0) {
    return {
      allowed: false,
      reason: "runAsNonRoot != true",
      detail: `pod or ${containersPhrase(implicit)} must set securityContext.runAsNonRoot=true`,
    };
  }
  return ALLOWED;
};

const runAsUser: CheckFn = (_meta, spec) => {
  const badSetters: string[] = [];
  if (spec.securityContext?.runAsUser === 0) badSetters.push("pod");
  const bad: string[] = [];
  visit(spec, (c) => {
    if (c.securityContext?.runAsUser === 0) bad.push(c.name);
  });
  if (bad.length > 0) badSetters.push(containersPhrase(bad));
  if (badSetters.length === 0) return ALLOWED;
  return {
    allowed: false,
    reason: "runAsUser=0",
    detail: `${badSetters.join(" and ")} must not set runAsUser=0`,
  };
};

const seccompRestricted_1_19: CheckFn = (_meta, spec) => {
  const badSetters: string[] = [];
  const badValues = new Set<string>();
  let podSet = false;
  const podProfile = spec.securityContext?.seccompProfile;
  if (podProfile) {
    if (!validSeccomp(podProfile.type)) {
      badSetters.push("pod");
      badValues.add(podProfile.type);
    } else podSet = true;
  }
  const explicit: string[] = [];
  const implicit: string[] = [];
  visit(spec, (c) => {
    const p = c.securityContext?.seccompProfile;
    if (p) {
      if (!validSeccomp(p.type)) {
        explicit.push(c.name);
        badValues.add(p.type);
      }
    } else if (!podSet) implicit.push(c.name);
  });
  if (explicit.length > 0) badSetters.push(containersPhrase(explicit));
  if (badSetters.length > 0) {
    return {
      allowed: false,
      reason: "seccompProfile",
      detail: `${badSetters.join(" and ")} must not set securityContext.seccompProfile.type to ${joinQuote(sortedSet(badValues))}`,
    };
  }
  if (implicit.length > 0) {
    return {
      allowed: false,
      reason: "seccompProfile",
      detail: `pod or ${containersPhrase(implicit)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"`,
    };
  }
  return ALLOWED;
};

// ---------------------------------------------------------------------------------------------
// The registry of checks and its evaluation.

const CHECKS: Check[] = [
  { id: "appArmorProfile", level: "baseline", versions: [{ minor: 0, check: appArmorProfile }] },
  {
    id: "capabilities_baseline",
    level: "baseline",
    versions: [{ minor: 0, check: capabilitiesBaseline }],
  },
  { id: "hostNamespaces", level: "baseline", versions: [{ minor: 0, check: hostNamespaces }] },
  { id: "hostPathVolumes", level: "baseline", versions: [{ minor: 0, check: hostPathVolumes }] },
  { id: "hostPorts", level: "baseline", versions: [{ minor: 0, check: hostPorts }] },
  { id: "privileged", level: "baseline", versions: [{ minor: 0, check: privileged }] },
  { id: "procMount", level: "baseline", versions: [{ minor: 0, check: procMount }] },
  {
    id: "seLinuxOptions",
    level: "baseline",
    versions: [
      { minor: 0, check: seLinuxOptions(SELINUX_TYPES_1_0) },
      { minor: 31, check: seLinuxOptions(SELINUX_TYPES_1_31) },
    ],
  },
  {
    id: "seccompProfile_baseline",
    level: "baseline",
    versions: [
      { minor: 0, check: seccompBaseline_1_0 },
      { minor: 19, check: seccompBaseline_1_19 },
    ],
  },
  {
    id: "sysctls",
    level: "baseline",
    versions: [
      { minor: 0, check: sysctls(SYSCTLS_1_0) },
      { minor: 27, check: sysctls(SYSCTLS_1_27) },
      { minor: 29, check: sysctls(SYSCTLS_1_29) },
      { minor: 32, check: sysctls(SYSCTLS_1_32) },
    ],
  },
  {
    id: "windowsHostProcess",
    level: "baseline",
    versions: [{ minor: 0, check: windowsHostProcess }],
  },
  {
    id: "allowPrivilegeEscalation",
    level: "restricted",
    versions: [
      { minor: 8, check: allowPrivilegeEscalation_1_8 },
      { minor: 25, check: notOnWindows(allowPrivilegeEscalation_1_8) },
    ],
  },
  {
    id: "capabilities_restricted",
    level: "restricted",
    versions: [
      { minor: 22, check: capabilitiesRestricted_1_22, overrides: ["capabilities_baseline"] },
      {
        minor: 25,
        check: notOnWindows(capabilitiesRestricted_1_22),
        overrides: ["capabilities_baseline"],
      },
    ],
  },
  {
    id: "restrictedVolumes",
    level: "restricted",
    versions: [{ minor: 0, check: restrictedVolumes, overrides: ["hostPathVolumes"] }],
  },
  { id: "runAsNonRoot", level: "restricted", versions: [{ minor: 0, check: runAsNonRoot }] },
  { id: "runAsUser", level: "restricted", versions: [{ minor: 23, check: runAsUser }] },
  {
    id: "seccompProfile_restricted",
    level: "restricted",
    versions: [
      { minor: 19, check: seccompRestricted_1_19, overrides: ["seccompProfile_baseline"] },
      {
        minor: 25,
        check: notOnWindows(seccompRestricted_1_19),
        overrides: ["seccompProfile_baseline"],
      },
    ],
  },
];

/** The version of a check in force at `minor`, if the check exists there. */
function versionAt(check: Check, minor: number): VersionedCheck | undefined {
  let found: VersionedCheck | undefined;
  for (const v of check.versions) if (v.minor <= minor) found = v;
  return found;
}

/** The checks of a level at a version, in upstream's order. */
function checksFor(level: "baseline" | "restricted", version: Version): CheckFn[] {
  const minor = version.latest ? MAX_MINOR : Math.min(version.minor, MAX_MINOR);
  const ordered = [
    ...CHECKS.filter((c) => c.level === "baseline").sort((x, y) => byteOrder(x.id, y.id)),
    ...CHECKS.filter((c) => c.level === "restricted").sort((x, y) => byteOrder(x.id, y.id)),
  ];
  const active = new Map<string, VersionedCheck>();
  for (const c of ordered) {
    if (c.level === "restricted" && level === "baseline") continue;
    const v = versionAt(c, minor);
    if (v) active.set(c.id, v);
  }
  if (level === "restricted") {
    for (const v of [...active.values()]) for (const id of v.overrides ?? []) active.delete(id);
  }
  return ordered.filter((c) => active.has(c.id)).map((c) => active.get(c.id)!.check);
}

export interface LevelVersion {
  level: Level;
  version: Version;
}

export const showVersion = (v: Version) => (v.latest ? "latest" : `v1.${v.minor}`);
export const showLevelVersion = (lv: LevelVersion) => `${lv.level}:${showVersion(lv.version)}`;

/** The results of every check of a level (none for privileged). */
export function evaluatePod(lv: LevelVersion, meta: ObjectMeta, spec: PodSpec): CheckResult[] {
  if (lv.level === "privileged") return [];
  return checksFor(lv.level, lv.version).map((fn) => fn(meta, spec));
}

export interface Aggregate {
  allowed: boolean;
  reasons: string[];
  details: string[];
}

export function aggregate(results: CheckResult[]): Aggregate {
  const failed = results.filter((r) => !r.allowed);
  return {
    allowed: failed.length === 0,
    reasons: failed.map((r) => r.reason || "unknown forbidden reason"),
    details: failed.map((r) => r.detail ?? ""),
  };
}

/** `reason (detail), reason (detail)`: what a refusal and a warning report. */
export function forbiddenDetail(a: Aggregate): string {
  return a.reasons.map((r, i) => (a.details[i] ? `${r} (${a.details[i]})` : r)).join(", ");
}

export const forbiddenReason = (a: Aggregate) => a.reasons.join(", ");
