/**
 * ServiceAccount: every pod runs as a service account ("default" unless it names one), which
 * must exist; pods that automount get the projected `kube-api-access-<random>` volume (a bound
 * token, the cluster CA from the `kube-root-ca.crt` ConfigMap and the namespace) mounted
 * read-only at /var/run/secrets/kubernetes.io/serviceaccount in every container and init
 * container; the account's imagePullSecrets become the pod's when it has none. Mirror pods are
 * left as the kubelet wrote them but may reference no account, secret or token. An account
 * annotated `kubernetes.io/enforce-mountable-secrets: "true"` limits the secrets its pods use to
 * those it lists. As upstream 1.32's plugin.
 */
import { randomInt } from "node:crypto";
import type { Container, Pod, PodSpec, ServiceAccount, Volume } from "kubernetes-types/core/v1.js";
import type { AdmissionAttributes, AdmissionContext, AdmissionPlugin } from "../types.js";
import {
  admissionForbidden,
  asPod,
  isResource,
  MIRROR_POD_ANNOTATION,
  podReferencesSecrets,
  podSpec,
} from "./util.js";

export const DEFAULT_SERVICE_ACCOUNT = "default";
export const ENFORCE_MOUNTABLE_SECRETS_ANNOTATION = "kubernetes.io/enforce-mountable-secrets";
export const SERVICE_ACCOUNT_VOLUME_PREFIX = "kube-api-access-";
export const DEFAULT_API_TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount";
/** A bound token's lifetime as kube-apiserver issues it for pods: an hour and 7 seconds. */
export const TOKEN_EXPIRATION_SECONDS = 3607;

/** The characters and length of upstream's SimpleNameGenerator suffixes. */
const NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789";

function randomSuffix(): string {
  let s = "";
  for (let i = 0; i < 5; i++) s += NAME_ALPHABET[randomInt(NAME_ALPHABET.length)];
  return s;
}

/** The projected volume source of the service account token, as upstream's TokenVolumeSource. */
export function tokenVolumeSource(): NonNullable<Volume["projected"]> {
  return {
    defaultMode: 0o644,
    sources: [
      { serviceAccountToken: { expirationSeconds: TOKEN_EXPIRATION_SECONDS, path: "token" } },
      { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
      {
        downwardAPI: {
          items: [
            { path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } },
          ],
        },
      },
    ],
  };
}

export interface ServiceAccountOptions {
  /** How often to look for a missing "default" account (the controller creates it). */
  defaultAccountAttempts?: number;
  /** Names the volume (tests); default `kube-api-access-` and five random characters. */
  generateName?: (prefix: string) => string;
}

export function serviceAccount(opts: ServiceAccountOptions = {}): AdmissionPlugin {
  const attempts = opts.defaultAccountAttempts ?? 10;
  const generateName = opts.generateName ?? ((prefix: string) => prefix + randomSuffix());

  /** The account from the cache, else from storage (retrying for "default", as upstream). */
  async function getAccount(
    ctx: AdmissionContext,
    namespace: string,
    name: string,
  ): Promise<ServiceAccount> {
    const cached = ctx.get("", "v1", "serviceaccounts", namespace, name);
    if (cached) return cached as ServiceAccount;
    const tries = name === DEFAULT_SERVICE_ACCOUNT ? attempts : 1;
    const interval = 100 + randomInt(100);
    for (let i = 0; i < tries; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, interval));
      const stored = await ctx.fetch("", "v1", "serviceaccounts", namespace, name);
      if (stored) return stored as ServiceAccount;
    }
    throw new Error(`serviceaccount "${name}" not found`);
  }

  async function lookUp(
    a: AdmissionAttributes,
    ctx: AdmissionContext,
    name: string,
  ): Promise<ServiceAccount> {
    try {
      return await getAccount(ctx, a.namespace, name);
    } catch (err) {
      throw admissionForbidden(
        a,
        `error looking up service account ${a.namespace}/${name}: ${(err as Error).message}`,
      );
    }
  }

  function ignored(a: AdmissionAttributes): boolean {
    if (!isResource(a, "", "pods")) return true;
    if (a.subresource !== "" && a.subresource !== "ephemeralcontainers") return true;
    return a.object === undefined || a.object.kind !== "Pod";
  }

  function mountToken(pod: Pod): void {
    const spec = podSpec(pod);
    let volumeName = "";
    let hasVolume = false;
    for (const v of spec.volumes ?? []) {
      if (v.name.startsWith(SERVICE_ACCOUNT_VOLUME_PREFIX)) {
        volumeName = v.name;
        hasVolume = true;
        break;
      }
    }
    if (!volumeName) volumeName = generateName(SERVICE_ACCOUNT_VOLUME_PREFIX);
    const mount = { name: volumeName, readOnly: true, mountPath: DEFAULT_API_TOKEN_MOUNT_PATH };
    let needsVolume = false;
    const add = (c: Container) => {
      if ((c.volumeMounts ?? []).some((m) => m.mountPath === DEFAULT_API_TOKEN_MOUNT_PATH)) return;
      (c.volumeMounts ??= []).push({ ...mount });
      needsVolume = true;
    };
    for (const c of spec.initContainers ?? []) add(c);
    for (const c of spec.containers ?? []) add(c);
    if (!hasVolume && needsVolume) {
      (spec.volumes ??= []).push({ name: volumeName, projected: tokenVolumeSource() });
    }
  }

  async function validate(a: AdmissionAttributes, ctx: AdmissionContext): Promise<void> {
    if (ignored(a)) return;
    const pod = asPod(a.object!);
    const spec = podSpec(pod);
    if (a.operation === "UPDATE" && a.subresource === "ephemeralcontainers") {
      return limitEphemeralContainerSecrets(a, ctx, pod);
    }
    if (a.operation !== "CREATE") return;
    if (pod.metadata?.annotations?.[MIRROR_POD_ANNOTATION] !== undefined) {
      if (spec.serviceAccountName) {
        throw admissionForbidden(a, "a mirror pod may not reference service accounts");
      }
      if (podReferencesSecrets(spec)) {
        throw admissionForbidden(a, "a mirror pod may not reference secrets");
      }
      for (const v of spec.volumes ?? []) {
        if ((v.projected?.sources ?? []).some((s) => s.serviceAccountToken)) {
          throw admissionForbidden(
            a,
            "a mirror pod may not use ServiceAccountToken volume projections",
          );
        }
      }
      return;
    }
    if (!spec.serviceAccountName) {
      throw admissionForbidden(
        a,
        `no service account specified for pod ${a.namespace}/${pod.metadata?.name ?? ""}`,
      );
    }
    const account = await lookUp(a, ctx, spec.serviceAccountName);
    if (enforceMountableSecrets(account)) {
      const why = limitSecretReferences(account, spec);
      if (why) throw admissionForbidden(a, why);
    }
  }

  async function limitEphemeralContainerSecrets(
    a: AdmissionAttributes,
    ctx: AdmissionContext,
    pod: Pod,
  ): Promise<void> {
    const spec = podSpec(pod);
    if (!spec.serviceAccountName) {
      throw admissionForbidden(
        a,
        `no service account specified for pod ${a.namespace}/${pod.metadata?.name ?? ""}`,
      );
    }
    const account = await lookUp(a, ctx, spec.serviceAccountName);
    if (!enforceMountableSecrets(account)) return;
    const mountable = new Set((account.secrets ?? []).map((s) => s.name));
    for (const c of spec.ephemeralContainers ?? []) {
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (ref && !mountable.has(ref.name)) {
          throw admissionForbidden(
            a,
            `ephemeral container ${c.name} with envVar ${e.name} referencing secret.secretName="${ref.name ?? ""}" is not allowed because service account ${account.metadata?.name} does not reference that secret`,
          );
        }
      }
      for (const e of c.envFrom ?? []) {
        if (e.secretRef && !mountable.has(e.secretRef.name)) {
          throw admissionForbidden(
            a,
            `ephemeral container ${c.name} with envFrom referencing secret.secretName="${e.secretRef.name ?? ""}" is not allowed because service account ${account.metadata?.name} does not reference that secret`,
          );
        }
      }
    }
  }

  return {
    name: "ServiceAccount",
    async admit(a, ctx) {
      if (ignored(a) || a.operation !== "CREATE" || a.subresource !== "") return;
      const pod = asPod(a.object!);
      // The kubelet would not recognize a mirror pod whose spec changed: only validate those.
      if (pod.metadata?.annotations?.[MIRROR_POD_ANNOTATION] !== undefined) {
        return validate(a, ctx);
      }
      const spec = podSpec(pod);
      if (!spec.serviceAccountName) {
        spec.serviceAccountName = DEFAULT_SERVICE_ACCOUNT;
        // v1 serves the deprecated serviceAccount as a copy of serviceAccountName.
        spec.serviceAccount = DEFAULT_SERVICE_ACCOUNT;
      }
      const account = await lookUp(a, ctx, spec.serviceAccountName);
      if (shouldAutomount(account, spec)) mountToken(pod);
      if ((spec.imagePullSecrets ?? []).length === 0 && account.imagePullSecrets?.length) {
        spec.imagePullSecrets = account.imagePullSecrets.map((s) => ({ name: s.name }));
      }
      return validate(a, ctx);
    },
    validate,
  };
}

function shouldAutomount(account: ServiceAccount, spec: PodSpec): boolean {
  if (typeof spec.automountServiceAccountToken === "boolean") {
    return spec.automountServiceAccountToken;
  }
  if (typeof account.automountServiceAccountToken === "boolean") {
    return account.automountServiceAccountToken;
  }
  return true;
}

/** Go's strconv.ParseBool, true for what it reads as true. */
function parseBoolTrue(v: string): boolean {
  return ["1", "t", "T", "TRUE", "true", "True"].includes(v);
}

function enforceMountableSecrets(account: ServiceAccount): boolean {
  const v = account.metadata?.annotations?.[ENFORCE_MOUNTABLE_SECRETS_ANNOTATION];
  return v !== undefined && parseBoolTrue(v);
}

/** Why a pod uses a secret its account does not list, or "" when it uses none. */
function limitSecretReferences(account: ServiceAccount, spec: PodSpec): string {
  const name = account.metadata?.name ?? "";
  const mountable = new Set((account.secrets ?? []).map((s) => s.name));
  for (const v of spec.volumes ?? []) {
    if (!v.secret) continue;
    const secret = v.secret.secretName ?? "";
    if (!mountable.has(secret)) {
      return `volume with secret.secretName="${secret}" is not allowed because service account ${name} does not reference that secret`;
    }
  }
  for (const [kind, list] of [
    ["init container", spec.initContainers ?? []],
    ["container", spec.containers ?? []],
  ] as const) {
    for (const c of list) {
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (ref && !mountable.has(ref.name)) {
          return `${kind} ${c.name} with envVar ${e.name} referencing secret.secretName="${ref.name ?? ""}" is not allowed because service account ${name} does not reference that secret`;
        }
      }
      for (const e of c.envFrom ?? []) {
        if (e.secretRef && !mountable.has(e.secretRef.name)) {
          return `${kind} ${c.name} with envFrom referencing secret.secretName="${e.secretRef.name ?? ""}" is not allowed because service account ${name} does not reference that secret`;
        }
      }
    }
  }
  const pullSecrets = new Set((account.imagePullSecrets ?? []).map((s) => s.name));
  for (const [i, ref] of (spec.imagePullSecrets ?? []).entries()) {
    if (!pullSecrets.has(ref.name)) {
      return `imagePullSecrets[${i}].name="${ref.name ?? ""}" is not allowed because service account ${name} does not reference that imagePullSecret`;
    }
  }
  return "";
}
