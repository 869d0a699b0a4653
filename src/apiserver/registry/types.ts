import type { ObjectMeta } from "kubernetes-types/meta/v1.js";
import type { FieldError } from "../../api/status.js";

/** ObjectMeta as the server sees it: the fields clients may only read are the server's to set. */
export type ServerObjectMeta = { -readonly [K in keyof ObjectMeta]: ObjectMeta[K] };

/** Any API object as it travels through the server: JSON-shaped, typed loosely past metadata. */
export interface KObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ServerObjectMeta;
  [field: string]: unknown;
}

/**
 * What differs between resources in the generic registry, as a stateless strategy (upstream's
 * rest.RESTCreateStrategy / RESTUpdateStrategy). Every create and update runs the same pipeline:
 * default -> prepare -> validate -> store.
 */
export interface Strategy {
  /** Fills upstream's defaults in (decoding defaults them before anything else). */
  defaults?(obj: KObject): void;
  /** Resets fields a client may not set on create (status, for resources with a status subresource). */
  prepareForCreate?(obj: KObject): void;
  /** Carries over what an update of the main resource may not change (status, for example). */
  prepareForUpdate?(obj: KObject, old: KObject): void;
  validate?(obj: KObject): FieldError[];
  validateUpdate?(obj: KObject, old: KObject): FieldError[];
  /** Whether PUT of a missing object creates it (upstream: true for a few kinds, e.g. Endpoints, Lease). */
  allowCreateOnUpdate?: boolean;
  /** Whether metadata.generation tracks spec changes (kinds with a spec). */
  tracksGeneration?: boolean;
  /** A change of metadata.labels also bumps metadata.generation (EndpointSlice). */
  labelsBumpGeneration?: boolean;
  /** Extra field selector fields beyond metadata.name and metadata.namespace. */
  fieldLabels?(obj: KObject): Record<string, string>;
  /** Finalizers beyond metadata.finalizers that hold a deletion back (a namespace's spec.finalizers). */
  pendingFinalizers?(obj: KObject): string[];
  /**
   * For resources deleted gracefully: the default grace period in seconds for this object, 0 when
   * it goes at once (a pod not yet on a node).
   */
  gracefulDeletion?(obj: KObject): number;
  /** Marks an object whose deletion is pending (a namespace's phase Terminating). */
  prepareForDeletion?(obj: KObject): void;
  /** Name validation: "subdomain" (default), "label" (DNS-1123 label), "path" (path segment). */
  nameFormat?: "subdomain" | "label" | "path";
}

/** What discovery says about a resource (upstream's APIResource / APIResourceDiscovery). */
export interface DiscoveryInfo {
  singularName: string;
  verbs: string[];
  shortNames?: string[];
  categories?: string[];
  subresources?: Array<{
    name: string;
    group: string;
    version: string;
    kind: string;
    verbs: string[];
  }>;
  storageVersionHash?: string;
}

/** What an allocation took, to give back if the write fails or to settle once it is stored. */
export interface Allocation {
  undo(): void;
  /** Releases what the previous state held and the new one no longer does. */
  commit(): void;
}

/** Hands out values an object holds exclusively (a Service's cluster IP and node ports). */
export interface Allocator {
  /** Assigns what `obj` needs, keeping what `old` held; throws an Invalid StatusError when it cannot. */
  allocate(obj: KObject, old?: KObject): Allocation;
  /** Gives back what a deleted object held. */
  release(obj: KObject): void;
  /** Takes what stored objects hold (at start). */
  rebuild(objects: KObject[]): void;
}

export interface ResourceDef {
  group: string;
  version: string;
  resource: string;
  kind: string;
  listKind: string;
  namespaced: boolean;
  /** Storage key prefix, as upstream lays out etcd: `/registry/pods`, `/registry/services/specs`. */
  keyPrefix: string;
  /** Whether the resource has a status subresource (status is then ignored on the main resource). */
  hasStatus: boolean;
  /** False for request-only resources (reviews, bindings): no objects are stored for them. */
  stored: boolean;
  strategy: Strategy;
  discovery: DiscoveryInfo;
  /** Whether this version is the group's preferred one. */
  preferred: boolean;
  allocator?: Allocator;
  /** Encryption at rest of the stored values (`--encryption-provider-config`). */
  transformer?: import("../encryption.js").ValueTransformer;
  /** Objects expire this many seconds after their last write (Events: --event-ttl). */
  ttlSeconds?: number;
}
