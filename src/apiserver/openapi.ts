/**
 * The OpenAPI documents kube-apiserver publishes, built from the served resource catalogue
 * (src/api/resources.ts) and the structural schema of the built-in types (src/api/schema):
 *
 * - `GET /openapi/v3`: the index, `{"paths": {"api/v1": {"serverRelativeURL":
 *   "/openapi/v3/api/v1?hash=H"}, ...}}`, one entry per document: "api", "api/v1", "apis",
 *   "apis/<group>", "apis/<group>/<version>" and "version". H is the upper-case hex SHA-512 of the
 *   document's bytes, which is also its ETag.
 * - `GET /openapi/v3/<document>`: an OpenAPI 3.0 document. With `?hash=` equal to the current hash
 *   the answer is marked `Cache-Control: public, immutable`; another hash is redirected (301) to
 *   the current URL, as upstream does.
 * - `GET /openapi/v2`: one Swagger 2.0 document with every path and definition, as JSON or, for
 *   `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf` (what kubectl sends), as
 *   gnostic's `openapi.v2.Document` protobuf message. kubectl needs the latter for client-side
 *   validation (`create`/`apply -f` of a `kind: List`) and `explain --output=plaintext-openapiv2`.
 *
 * Structure follows upstream 1.32: the collection, item, cluster-wide list, `watch/` and
 * subresource paths of every resource; one operation per verb with upstream's `operationId`
 * (`readAppsV1NamespacedDeployment`), `x-kubernetes-action`, `x-kubernetes-group-version-kind`,
 * query parameters, request and response media types; parameters shared by every operation of a
 * path sit on the path. Schemas carry `x-kubernetes-group-version-kind` (kinds), `required`,
 * zero-value `default`s where upstream's generator puts them (value structs `{}`, non-omitempty
 * scalars), `x-kubernetes-patch-strategy` / `-patch-merge-key` / `-list-type` / `-list-map-keys` /
 * `-map-type`; in v3 a reference with siblings is wrapped as `allOf: [{$ref}]`. IntOrString and
 * Quantity use upstream's forms (v3 `oneOf`, v2 `type: string`).
 *
 * Not matched, by design or for lack of data:
 * - Descriptions are our own generated text (a type's name and package or kind, a field's type and
 *   markers), never upstream's prose, so `kubectl explain` prints these instead of upstream's
 *   documentation. Upstream's `enum` lists and `+default=` values are not in the schema data and
 *   are left out.
 * - Request-only kinds (Binding, the access and token reviews, SelfSubjectReview) have no PATCH
 *   operation upstream. kubectl's `--validate=strict` (the default)
 *   looks for a PATCH operation of the object's kind carrying a `fieldValidation` parameter in the
 *   group-version document; lacking one, it falls back to `/openapi/v2` and lists
 *   `customresourcedefinitions` (apiextensions.k8s.io, not served here) to rule out a custom
 *   resource, which fails. So such kinds get a PATCH operation marked `x-k8ts-validation-only:
 *   true` (declared, not served; its body lists no strategic-merge-patch type, so client-side
 *   apply does not use it), and kubectl leaves their field validation to the server. The
 *   `validationPatches` option turns this off.
 * - The v3 documents are served as JSON only (kubectl asks for JSON); a client accepting only
 *   the protobuf form gets 406 Not Acceptable, upstream's answer for an unsupported Accept.
 *
 * Documents are built on first use and kept in memory; compression is the caller's business.
 */

import { createHash } from "node:crypto";
import { resources as servedResources, type ResourceInfo } from "../api/resources.js";
import {
  allKinds,
  typeNameForKind,
  typeOf,
  type FieldDef,
  type GroupVersionKind,
  type TypeDef,
  type ValueType,
} from "../api/schema/index.js";
import { kubernetesVersion } from "../cli/version.js";

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** What serve() answers: status, media type and body, plus the ETag and other headers to send. */
export interface OpenAPIResponse {
  status: number;
  contentType: string;
  body: Buffer | string;
  /** The ETag header value (quoted), when the answer is a document. */
  etag?: string;
  /** Further headers: Vary, Location (redirect), Cache-Control and Expires (hashed URLs). */
  headers?: Record<string, string>;
}

type Version = 2 | 3;

const JSON_TYPE = "application/json";
const YAML_TYPE = "application/yaml";
const PROTOBUF_TYPE = "application/vnd.kubernetes.protobuf";
const OBJECT_TYPES = [JSON_TYPE, YAML_TYPE, PROTOBUF_TYPE];
const STREAM_TYPES = [
  JSON_TYPE,
  YAML_TYPE,
  PROTOBUF_TYPE,
  "application/json;stream=watch",
  "application/vnd.kubernetes.protobuf;stream=watch",
];
const PATCH_TYPES = [
  "application/json-patch+json",
  "application/merge-patch+json",
  "application/strategic-merge-patch+json",
  "application/apply-patch+yaml",
];
/** The patch types a validation-only PATCH operation declares (no strategic merge: see above). */
const VALIDATION_PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json"];

const META = "io.k8s.apimachinery.pkg.apis.meta.v1";
const STATUS = `${META}.Status`;
const DELETE_OPTIONS = `${META}.DeleteOptions`;
const WATCH_EVENT = `${META}.WatchEvent`;
const PATCH = `${META}.Patch`;
const VERSION_INFO = "io.k8s.apimachinery.pkg.version.Info";

/** Resources whose DELETE answers with the deleted object rather than a Status (upstream's storage). */
const DELETE_RETURNS_OBJECT = new Set([
  "/pods",
  "/services",
  "/serviceaccounts",
  "/persistentvolumes",
  "/persistentvolumeclaims",
  "storage.k8s.io/volumeattachments",
]);

// ---------------------------------------------------------------------------------------------
// Parameters

type ParamType = "string" | "boolean" | "integer";

interface Param {
  name: string;
  in: "path" | "query";
  type: ParamType;
  description: string;
  required?: boolean;
}

const QUERY_PARAMS: Record<string, [ParamType, string]> = {
  allowWatchBookmarks: ["boolean", "Ask for BOOKMARK events in a watch."],
  continue: ["string", "Continue token from the previous page of a paginated list."],
  dryRun: ["string", "Dry run: with All, run every stage but persist nothing."],
  fieldManager: ["string", "Name of the actor making the change (required for apply patches)."],
  fieldSelector: ["string", "Restrict the objects by their fields (default: everything)."],
  fieldValidation: [
    "string",
    "Handling of unknown and duplicate fields in the request: Ignore, Warn or Strict.",
  ],
  force: ["boolean", "Take over conflicting fields owned by other managers (apply patches only)."],
  gracePeriodSeconds: ["integer", "Seconds before the object is deleted; 0 deletes at once."],
  ignoreStoreReadErrorWithClusterBreakingPotential: [
    "boolean",
    "Delete an object that cannot be read from storage (unsafe).",
  ],
  labelSelector: ["string", "Restrict the objects by their labels (default: everything)."],
  limit: ["integer", "Maximum number of items in one page of a list."],
  orphanDependents: ["boolean", "Deprecated: orphan the dependents (use propagationPolicy)."],
  pretty: ["string", "Pretty-print the answer when true."],
  propagationPolicy: [
    "string",
    "Garbage collection of dependents: Orphan, Background or Foreground.",
  ],
  resourceVersion: ["string", "Resource version the answer must be at least as new as."],
  resourceVersionMatch: ["string", "How resourceVersion applies to a list: Exact or NotOlderThan."],
  sendInitialEvents: [
    "boolean",
    "Start a watch with synthetic ADDED events for the current state.",
  ],
  timeoutSeconds: ["integer", "Time limit of a list or watch call, in seconds."],
  watch: ["boolean", "Watch for changes instead of listing."],
};

function query(name: string): Param {
  const [type, description] = QUERY_PARAMS[name] ?? ["string", name];
  return { name, in: "query", type, description };
}

const LIST_PARAMS = [
  "allowWatchBookmarks",
  "continue",
  "fieldSelector",
  "labelSelector",
  "limit",
  "resourceVersion",
  "resourceVersionMatch",
  "sendInitialEvents",
  "timeoutSeconds",
  "watch",
].map(query);
const WRITE_PARAMS = ["dryRun", "fieldManager", "fieldValidation"].map(query);
const PATCH_PARAMS = ["dryRun", "fieldManager", "fieldValidation", "force"].map(query);
const DELETE_PARAMS = [
  "dryRun",
  "gracePeriodSeconds",
  "ignoreStoreReadErrorWithClusterBreakingPotential",
  "orphanDependents",
  "propagationPolicy",
].map(query);
const DELETE_COLLECTION_PARAMS = [
  ...DELETE_PARAMS,
  ...[
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
  ].map(query),
];
const PRETTY = query("pretty");

function pathParam(name: string, description: string): Param {
  return { name, in: "path", type: "string", description, required: true };
}

const NAMESPACE_PARAM = pathParam("namespace", "Namespace of the object.");

// ---------------------------------------------------------------------------------------------
// Operations (one model, rendered as v3 or v2)

/** What an operation takes or answers: a schema by name, or a plain string. */
type Payload = { ref: string } | { string: true };

interface Response {
  code: string;
  description: string;
  payload?: Payload;
  mediaTypes?: readonly string[];
}

type Method = "get" | "put" | "post" | "delete" | "options" | "head" | "patch";

interface Operation {
  method: Method;
  operationId: string;
  description: string;
  tag: string;
  action?: string;
  gvk?: GroupVersionKind;
  params: Param[];
  body?: { ref: string; mediaTypes: readonly string[]; required: boolean };
  responses: Response[];
  /** Declared for kubectl's field validation check only (see the module comment). */
  validationOnly?: boolean;
}

interface PathItem {
  path: string;
  operations: Operation[];
}

const ok = (payload: Payload, mediaTypes: readonly string[] = OBJECT_TYPES): Response => ({
  code: "200",
  description: "OK",
  payload,
  mediaTypes,
});
const created = (payload: Payload): Response => ({
  code: "201",
  description: "Created",
  payload,
  mediaTypes: OBJECT_TYPES,
});
const accepted = (payload: Payload): Response => ({
  code: "202",
  description: "Accepted",
  payload,
  mediaTypes: OBJECT_TYPES,
});
const UNAUTHORIZED: Response = { code: "401", description: "Unauthorized" };

/** "rbac.authorization.k8s.io" → "RbacAuthorization"; "" → "Core" (upstream's naming). */
function groupCamel(group: string): string {
  if (group === "") return "Core";
  const trimmed = group.endsWith(".k8s.io") ? group.slice(0, -".k8s.io".length) : group;
  return trimmed
    .split(".")
    .map((p) => capitalize(p))
    .join("");
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

/** The document key of a group-version: "api/v1", "apis/apps/v1". */
function gvKey(group: string, version: string): string {
  return group === "" ? `api/${version}` : `apis/${group}/${version}`;
}

function requireType(gvk: GroupVersionKind): string {
  const name = typeNameForKind(gvk);
  if (name === undefined) {
    throw new Error(`openapi: no schema type for ${gvk.group}/${gvk.version} ${gvk.kind}`);
  }
  return name;
}

/** The query parameters of a connect (exec, attach, portforward, proxy) or log subresource. */
function optionParams(optionsType: string): Param[] {
  const def = typeOf(optionsType);
  if (!def) return [];
  const out: Param[] = [];
  for (const [name, f] of def.jsonFields) {
    if (name === "kind" || name === "apiVersion") continue;
    let t = f.type;
    if (t.kind === "array") t = t.items;
    let type: ParamType;
    if (t.kind === "string") type = "string";
    else if (t.kind === "bool") type = "boolean";
    else if (t.kind === "int32" || t.kind === "int64") type = "integer";
    else continue; // time-valued options (sinceTime) are not declared as query parameters
    out.push({
      name,
      in: "query",
      type,
      description: `${name} (${optionsType.split(".").pop()}).`,
    });
  }
  return out;
}

/** Every path of one served resource, with its operations. */
function resourcePaths(r: ResourceInfo): PathItem[] {
  const { group, version, resource, kind, namespaced } = r;
  const prefix = group === "" ? `/api/${version}` : `/apis/${group}/${version}`;
  const ns = namespaced ? "/namespaces/{namespace}" : "";
  const scope = namespaced ? "Namespaced" : "";
  const gv = `${groupCamel(group)}${capitalize(version)}`;
  const tag = `${lowerFirst(groupCamel(group))}_${version}`;
  const gvk: GroupVersionKind = { group, version, kind };
  const type = requireType(gvk);
  const obj: Payload = { ref: type };
  const verbs = new Set<string>(r.verbs);
  const nsParams = namespaced ? [NAMESPACE_PARAM] : [];
  const nameParam = pathParam("name", `Name of the ${kind}.`);
  const out: PathItem[] = [];
  const base = { tag, gvk };

  let listType: string | undefined;
  if (verbs.has("list") || verbs.has("watch") || verbs.has("deletecollection")) {
    listType = requireType({ group, version, kind: `${kind}List` });
  }

  // Collection: list, create, deletecollection.
  const collection: Operation[] = [];
  if (verbs.has("list") && listType) {
    collection.push({
      ...base,
      method: "get",
      operationId: `list${gv}${scope}${kind}`,
      description: `Lists or watches ${kind} objects.`,
      action: "list",
      params: [...nsParams, PRETTY, ...LIST_PARAMS],
      responses: [ok({ ref: listType }, STREAM_TYPES), UNAUTHORIZED],
    });
  }
  if (verbs.has("create")) {
    collection.push({
      ...base,
      method: "post",
      operationId: `create${gv}${scope}${kind}`,
      description: `Creates a ${kind}.`,
      action: "post",
      params: [...nsParams, PRETTY, ...WRITE_PARAMS],
      body: { ref: type, mediaTypes: ["*/*"], required: true },
      responses: [ok(obj), created(obj), accepted(obj), UNAUTHORIZED],
    });
  }
  if (verbs.has("deletecollection")) {
    collection.push({
      ...base,
      method: "delete",
      operationId: `delete${gv}Collection${scope}${kind}`,
      description: `Deletes a collection of ${kind} objects.`,
      action: "deletecollection",
      params: [...nsParams, PRETTY, ...DELETE_COLLECTION_PARAMS],
      body: { ref: DELETE_OPTIONS, mediaTypes: ["*/*"], required: false },
      responses: [ok({ ref: STATUS }), UNAUTHORIZED],
    });
  }
  if (collection.length > 0)
    out.push({ path: `${prefix}${ns}/${resource}`, operations: collection });

  // Item: read, replace, patch, delete.
  const itemParams = [nameParam, ...nsParams, PRETTY];
  const item: Operation[] = [];
  if (verbs.has("get")) {
    item.push({
      ...base,
      method: "get",
      operationId: `read${gv}${scope}${kind}`,
      description: `Reads a ${kind}.`,
      action: "get",
      params: itemParams,
      responses: [ok(obj), UNAUTHORIZED],
    });
  }
  if (verbs.has("update")) {
    item.push({
      ...base,
      method: "put",
      operationId: `replace${gv}${scope}${kind}`,
      description: `Replaces a ${kind}.`,
      action: "put",
      params: [...itemParams, ...WRITE_PARAMS],
      body: { ref: type, mediaTypes: ["*/*"], required: true },
      responses: [ok(obj), created(obj), UNAUTHORIZED],
    });
  }
  if (verbs.has("patch")) {
    item.push({
      ...base,
      method: "patch",
      operationId: `patch${gv}${scope}${kind}`,
      description: `Partially updates a ${kind}.`,
      action: "patch",
      params: [...itemParams, ...PATCH_PARAMS],
      body: { ref: PATCH, mediaTypes: PATCH_TYPES, required: true },
      responses: [ok(obj), created(obj), UNAUTHORIZED],
    });
  }
  if (verbs.has("delete")) {
    const deleted: Payload = DELETE_RETURNS_OBJECT.has(`${group}/${resource}`)
      ? obj
      : { ref: STATUS };
    item.push({
      ...base,
      method: "delete",
      operationId: `delete${gv}${scope}${kind}`,
      description: `Deletes a ${kind}.`,
      action: "delete",
      params: [...itemParams, ...DELETE_PARAMS],
      body: { ref: DELETE_OPTIONS, mediaTypes: ["*/*"], required: false },
      responses: [ok(deleted), accepted(deleted), UNAUTHORIZED],
    });
  }
  if (item.length > 0) out.push({ path: `${prefix}${ns}/${resource}/{name}`, operations: item });

  // Deprecated watch paths, still published by 1.32.
  if (verbs.has("watch")) {
    const watchResponses = [ok({ ref: WATCH_EVENT }, STREAM_TYPES), UNAUTHORIZED];
    out.push({
      path: `${prefix}/watch${ns}/${resource}`,
      operations: [
        {
          ...base,
          method: "get",
          operationId: `watch${gv}${scope}${kind}List`,
          description: `Watches changes to a list of ${kind} (deprecated: list with watch=true).`,
          action: "watchlist",
          params: [...nsParams, PRETTY, ...LIST_PARAMS],
          responses: watchResponses,
        },
      ],
    });
    out.push({
      path: `${prefix}/watch${ns}/${resource}/{name}`,
      operations: [
        {
          ...base,
          method: "get",
          operationId: `watch${gv}${scope}${kind}`,
          description:
            `Watches changes to one ${kind} (deprecated: list with watch=true and a ` +
            `metadata.name field selector).`,
          action: "watch",
          params: [nameParam, ...nsParams, PRETTY, ...LIST_PARAMS],
          responses: watchResponses,
        },
      ],
    });
  }

  // Cluster-wide list and watch of a namespaced resource.
  if (namespaced && verbs.has("list") && listType) {
    out.push({
      path: `${prefix}/${resource}`,
      operations: [
        {
          ...base,
          method: "get",
          operationId: `list${gv}${kind}ForAllNamespaces`,
          description: `Lists or watches ${kind} objects of every namespace.`,
          action: "list",
          params: [PRETTY, ...LIST_PARAMS],
          responses: [ok({ ref: listType }, STREAM_TYPES), UNAUTHORIZED],
        },
      ],
    });
  }
  if (namespaced && verbs.has("watch")) {
    out.push({
      path: `${prefix}/watch/${resource}`,
      operations: [
        {
          ...base,
          method: "get",
          operationId: `watch${gv}${kind}ListForAllNamespaces`,
          description: `Watches changes to ${kind} objects of every namespace (deprecated).`,
          action: "watchlist",
          params: [PRETTY, ...LIST_PARAMS],
          responses: [ok({ ref: WATCH_EVENT }, STREAM_TYPES), UNAUTHORIZED],
        },
      ],
    });
  }

  for (const sub of r.subresources) out.push(...subresourcePaths(r, sub, prefix, ns));
  return out;
}

const CONNECT_METHODS: Record<string, Method[]> = {
  proxy: ["delete", "get", "head", "options", "patch", "post", "put"],
};

function subresourcePaths(
  r: ResourceInfo,
  sub: ResourceInfo["subresources"][number],
  prefix: string,
  ns: string,
): PathItem[] {
  const { group, version, resource, kind, namespaced } = r;
  const scope = namespaced ? "Namespaced" : "";
  const gv = `${groupCamel(group)}${capitalize(version)}`;
  const tag = `${lowerFirst(groupCamel(group))}_${version}`;
  const name = capitalize(sub.subresource);
  const gvk: GroupVersionKind = {
    group: sub.responseKind.version === "" ? group : sub.responseKind.group,
    version: sub.responseKind.version === "" ? version : sub.responseKind.version,
    kind: sub.responseKind.kind,
  };
  const itemPath = `${prefix}${ns}/${resource}/{name}/${sub.subresource}`;
  const nsParams = namespaced ? [NAMESPACE_PARAM] : [];
  const nameParam = pathParam("name", `Name of the ${kind}.`);
  const verbs = new Set<string>(sub.verbs);
  const base = { tag, gvk };

  // Connect subresources: exec, attach, portforward (GET, POST) and proxy (every method).
  if (gvk.kind.endsWith("Options")) {
    const optionsType = requireType(gvk);
    const methods = CONNECT_METHODS[sub.subresource] ?? ["get", "post"];
    const params = optionParams(optionsType);
    const connect = (path: string, withPath: boolean): PathItem => ({
      path,
      operations: methods.map((m) => ({
        ...base,
        method: m,
        operationId: `connect${gv}${capitalize(m)}${scope}${kind}${name}${withPath ? "WithPath" : ""}`,
        description: `Connects ${m.toUpperCase()} requests to ${sub.subresource} of a ${kind}.`,
        action: "connect",
        params: withPath
          ? [nameParam, ...nsParams, pathParam("path", "Path to the resource."), ...params].filter(
              (p) => !(p.name === "path" && p.in === "query"),
            )
          : [nameParam, ...nsParams, ...params],
        responses: [ok({ string: true }, ["*/*"]), UNAUTHORIZED],
      })),
    });
    const out = [connect(itemPath, false)];
    if (sub.subresource === "proxy") out.push(connect(`${itemPath}/{path}`, true));
    return out;
  }

  const itemParams = [nameParam, ...nsParams, PRETTY];

  // Log: plain text.
  if (sub.subresource === "log") {
    return [
      {
        path: itemPath,
        operations: [
          {
            ...base,
            method: "get",
            operationId: `read${gv}${scope}${kind}${name}`,
            description: `Reads the log of a ${kind}.`,
            action: "get",
            params: [
              ...itemParams,
              ...optionParams(requireType({ group, version, kind: "PodLogOptions" })),
            ],
            responses: [ok({ string: true }, [...OBJECT_TYPES, "text/plain"]), UNAUTHORIZED],
          },
        ],
      },
    ];
  }

  const type = requireType(gvk);
  const obj: Payload = { ref: type };
  const ops: Operation[] = [];
  if (verbs.has("get")) {
    ops.push({
      ...base,
      method: "get",
      operationId: `read${gv}${scope}${kind}${name}`,
      description: `Reads the ${sub.subresource} of a ${kind}.`,
      action: "get",
      params: itemParams,
      responses: [ok(obj), UNAUTHORIZED],
    });
  }
  if (verbs.has("create")) {
    ops.push({
      ...base,
      method: "post",
      operationId: `create${gv}${scope}${kind}${name}`,
      description: `Creates the ${sub.subresource} of a ${kind}.`,
      action: "post",
      params: [...itemParams, ...WRITE_PARAMS],
      body: { ref: type, mediaTypes: ["*/*"], required: true },
      responses: [ok(obj), created(obj), accepted(obj), UNAUTHORIZED],
    });
  }
  if (verbs.has("update")) {
    ops.push({
      ...base,
      method: "put",
      operationId: `replace${gv}${scope}${kind}${name}`,
      description: `Replaces the ${sub.subresource} of a ${kind}.`,
      action: "put",
      params: [...itemParams, ...WRITE_PARAMS],
      body: { ref: type, mediaTypes: ["*/*"], required: true },
      responses: [ok(obj), created(obj), UNAUTHORIZED],
    });
  }
  if (verbs.has("patch")) {
    ops.push({
      ...base,
      method: "patch",
      operationId: `patch${gv}${scope}${kind}${name}`,
      description: `Partially updates the ${sub.subresource} of a ${kind}.`,
      action: "patch",
      params: [...itemParams, ...PATCH_PARAMS],
      body: { ref: PATCH, mediaTypes: PATCH_TYPES, required: true },
      responses: [ok(obj), created(obj), UNAUTHORIZED],
    });
  }
  return ops.length > 0 ? [{ path: itemPath, operations: ops }] : [];
}

/**
 * A PATCH operation for each creatable top-level kind of the group-version that has none, so that
 * kubectl's field validation check finds one (see the module comment). It goes on the item path
 * when there is one, else on the collection path.
 */
function addValidationPatches(resources: readonly ResourceInfo[], items: PathItem[]): void {
  const patched = new Set<string>();
  for (const p of items) {
    for (const op of p.operations) {
      if (op.method === "patch" && op.gvk)
        patched.add(`${op.gvk.group}/${op.gvk.version}/${op.gvk.kind}`);
    }
  }
  for (const r of resources) {
    const key = `${r.group}/${r.version}/${r.kind}`;
    if (patched.has(key) || !r.verbs.includes("create")) continue;
    patched.add(key);
    const prefix = r.group === "" ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
    const collection = `${prefix}${r.namespaced ? "/namespaces/{namespace}" : ""}/${r.resource}`;
    const target =
      items.find((p) => p.path === `${collection}/{name}`) ??
      items.find((p) => p.path === collection);
    if (!target) continue;
    const gv = `${groupCamel(r.group)}${capitalize(r.version)}`;
    const type = requireType(r);
    target.operations.push({
      method: "patch",
      operationId: `patch${gv}${r.namespaced ? "Namespaced" : ""}${r.kind}`,
      description:
        `Not served (405): declared so that kubectl's --validate=strict finds server-side ` +
        `field validation for ${r.kind}.`,
      tag: `${lowerFirst(groupCamel(r.group))}_${r.version}`,
      action: "patch",
      gvk: { group: r.group, version: r.version, kind: r.kind },
      params: PATCH_PARAMS,
      body: { ref: PATCH, mediaTypes: VALIDATION_PATCH_TYPES, required: true },
      responses: [ok({ ref: type }), UNAUTHORIZED],
      validationOnly: true,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Schemas

/** Upstream's OpenAPI type and format of a scalar. */
function scalarSchema(kind: "string" | "int32" | "int64" | "bool" | "bytes"): JsonObject {
  switch (kind) {
    case "string":
      return { type: "string" };
    case "int32":
      return { format: "int32", type: "integer" };
    case "int64":
      return { format: "int64", type: "integer" };
    case "bool":
      return { type: "boolean" };
    case "bytes":
      return { format: "byte", type: "string" };
  }
}

function zeroValue(kind: "string" | "int32" | "int64" | "bool" | "bytes"): Json | undefined {
  if (kind === "string") return "";
  if (kind === "int32" || kind === "int64") return 0;
  if (kind === "bool") return false;
  return undefined;
}

/** An object with its keys sorted and undefined values left out (upstream's documents are sorted). */
function sorted(entries: Record<string, Json | undefined>): JsonObject {
  const out: JsonObject = {};
  for (const k of Object.keys(entries).sort()) {
    const v = entries[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

function refTo(name: string, version: Version): string {
  return version === 3 ? `#/components/schemas/${name}` : `#/definitions/${name}`;
}

function shortName(typeName: string): string {
  return typeName.slice(typeName.lastIndexOf(".") + 1);
}

/** A value type as our descriptions spell it: "[]Container", "map[string]string", "int32". */
function typeText(t: ValueType): string {
  switch (t.kind) {
    case "array":
      return `[]${typeText(t.items)}`;
    case "map":
      return `map[string]${typeText(t.values)}`;
    case "message": {
      const def = typeOf(t.type);
      if (def?.special === "list" && def.fields[0]) return typeText(def.fields[0].type);
      return shortName(t.type);
    }
    default:
      return t.kind === "bool" ? "boolean" : t.kind;
  }
}

/** Our own short description of a field: its type and the markers that matter to clients. */
function fieldDescription(owner: TypeDef, f: FieldDef, required: boolean): string {
  const notes: string[] = [required ? "required" : "optional"];
  if (f.patchStrategy) {
    notes.push(
      f.patchMergeKey
        ? `patch strategy ${f.patchStrategy} on key ${f.patchMergeKey}`
        : `patch strategy ${f.patchStrategy}`,
    );
  }
  if (f.listType === "map" && f.listMapKeys)
    notes.push(`list map keyed by ${f.listMapKeys.join(", ")}`);
  else if (f.listType) notes.push(`${f.listType} list`);
  return `${shortName(owner.name)}.${f.json}: ${typeText(f.type)} (${notes.join("; ")}).`;
}

/** Kinds registered for each type name, as `x-kubernetes-group-version-kind` lists them. */
let kindsByType: Map<string, GroupVersionKind[]> | undefined;
function kindsOf(typeName: string): GroupVersionKind[] | undefined {
  if (!kindsByType) {
    kindsByType = new Map();
    for (const k of allKinds()) {
      let list = kindsByType.get(k.type);
      if (!list) kindsByType.set(k.type, (list = []));
      list.push({ group: k.group, version: k.version, kind: k.kind });
    }
    const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
    for (const list of kindsByType.values()) {
      list.sort((a, b) => cmp(a.group, b.group) || cmp(a.version, b.version));
    }
  }
  return kindsByType.get(typeName);
}

function gvkJson(g: GroupVersionKind): JsonObject {
  return { group: g.group, kind: g.kind, version: g.version };
}

/**
 * Builds schemas of one OpenAPI version, each type once, and tracks which type names a schema
 * refers to so that documents can take the closure of what their operations use.
 */
class SchemaBuilder {
  private readonly built = new Map<string, { schema: JsonObject; refs: Set<string> }>();

  constructor(private readonly version: Version) {}

  /** The definition of a type, and the type names it refers to. */
  definition(name: string): { schema: JsonObject; refs: Set<string> } {
    let b = this.built.get(name);
    if (!b) {
      const refs = new Set<string>();
      b = { schema: this.buildDefinition(name, refs), refs };
      this.built.set(name, b);
    }
    return b;
  }

  /** The names of every type reachable from these, themselves included, sorted. */
  closure(roots: Iterable<string>): string[] {
    const seen = new Set<string>();
    const stack = [...roots];
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (seen.has(n)) continue;
      seen.add(n);
      for (const r of this.definition(n).refs) if (!seen.has(r)) stack.push(r);
    }
    return [...seen].sort();
  }

  private buildDefinition(name: string, refs: Set<string>): JsonObject {
    if (name === PATCH) {
      return {
        description: "Patch: the body of a PATCH request (its media type says how).",
        type: "object",
      };
    }
    if (name === VERSION_INFO) return versionInfoSchema();
    const def = typeOf(name);
    if (!def) throw new Error(`openapi: unknown schema type ${name}`);
    const kinds = kindsOf(name);
    const description = kinds
      ? `${shortName(name)}: ${
          kinds
            .filter((k) => k.kind === shortName(name))
            .map((k) => (k.group ? `${k.group}/${k.version}` : k.version))
            .join(", ") || shortName(name)
        } (${name}).`
      : `${shortName(name)} (${name.slice(0, name.lastIndexOf("."))}).`;
    const gvk = kinds ? kinds.map(gvkJson) : undefined;
    switch (def.special) {
      case "time":
      case "microtime":
        return sorted({ description, format: "date-time", type: "string" });
      case "duration":
      case "groupversion":
        return sorted({ description, type: "string" });
      case "quantity":
        return this.version === 3
          ? sorted({ description, oneOf: [{ type: "string" }, { type: "number" }] })
          : sorted({ description, type: "string" });
      case "intorstring":
        return this.version === 3
          ? sorted({
              description,
              format: "int-or-string",
              oneOf: [{ type: "integer" }, { type: "string" }],
            })
          : sorted({ description, format: "int-or-string", type: "string" });
      case "rawextension":
      case "fieldsv1":
      case "unknown":
        return sorted({ description, type: "object" });
      case "list": {
        const items = def.fields[0];
        return sorted({
          description,
          items: items && items.type.kind === "array" ? this.element(items.type.items, refs) : {},
          type: "array",
        });
      }
      default:
        break;
    }
    const properties: Record<string, Json> = {};
    const required: string[] = [];
    for (const [json, f] of def.jsonFields) {
      const req = f.required || (!f.optional && !f.omitempty);
      if (req) required.push(json);
      const owner = this.ownerOf(def, json) ?? def;
      properties[json] = this.property(f, fieldDescription(owner, f, req), refs);
    }
    return sorted({
      description,
      properties: sorted(properties),
      required: required.length > 0 ? required : undefined,
      type: "object",
      "x-kubernetes-group-version-kind": gvk,
      "x-kubernetes-map-type": def.structType === "atomic" ? "atomic" : def.mapType,
    });
  }

  /** The type that declares a (possibly inlined) field, for descriptions. */
  private ownerOf(def: TypeDef, json: string): TypeDef | undefined {
    if (def.fields.some((f) => !f.inline && f.json === json)) return def;
    for (const f of def.fields) {
      if (!f.inline || f.type.kind !== "message") continue;
      const inner = typeOf(f.type.type);
      if (inner?.jsonFields.has(json)) return this.ownerOf(inner, json);
    }
    return undefined;
  }

  /** A reference to a type, with sibling keywords (v3 wraps the reference in allOf then). */
  private ref(
    name: string,
    extra: Record<string, Json | undefined>,
    refs: Set<string>,
  ): JsonObject {
    refs.add(name);
    const hasExtra = Object.values(extra).some((v) => v !== undefined);
    if (this.version === 3 && hasExtra)
      return sorted({ allOf: [{ $ref: refTo(name, 3) }], ...extra });
    return sorted({ $ref: refTo(name, this.version), ...extra });
  }

  /** Whether a message type is a plain struct (upstream's generator gives its fields `default: {}`). */
  private isPlainStruct(name: string): boolean {
    const def = typeOf(name);
    return def !== undefined && def.special === undefined;
  }

  /** The schema of an array element or map value. */
  private element(t: ValueType, refs: Set<string>): JsonObject {
    switch (t.kind) {
      case "message": {
        const def = typeOf(t.type);
        if (def?.special === "list") return this.inlineList(def, {}, refs);
        return this.ref(t.type, { default: this.isPlainStruct(t.type) ? {} : undefined }, refs);
      }
      case "array":
        return { items: this.element(t.items, refs), type: "array" };
      case "map":
        return { additionalProperties: this.element(t.values, refs), type: "object" };
      default:
        return sorted({ ...scalarSchema(t.kind), default: zeroValue(t.kind) });
    }
  }

  /** A named slice type (`x=list`), which upstream writes out in place as an array. */
  private inlineList(
    def: TypeDef,
    extra: Record<string, Json | undefined>,
    refs: Set<string>,
  ): JsonObject {
    const items = def.fields[0];
    return sorted({
      ...extra,
      items: items && items.type.kind === "array" ? this.element(items.type.items, refs) : {},
      type: "array",
      "x-kubernetes-list-type": extra["x-kubernetes-list-type"] ?? def.listType,
    });
  }

  private property(f: FieldDef, description: string, refs: Set<string>): JsonObject {
    const ext: Record<string, Json | undefined> = {
      description,
      "x-kubernetes-list-map-keys": f.listMapKeys ? [...f.listMapKeys] : undefined,
      "x-kubernetes-list-type": f.listType,
      "x-kubernetes-map-type": f.mapType ?? f.structType,
      "x-kubernetes-patch-merge-key": f.patchMergeKey,
      "x-kubernetes-patch-strategy": f.patchStrategy,
    };
    const t = f.type;
    switch (t.kind) {
      case "message": {
        const def = typeOf(t.type);
        if (def?.special === "list") return this.inlineList(def, ext, refs);
        const dflt = !f.pointer && this.isPlainStruct(t.type) ? {} : undefined;
        return this.ref(t.type, { ...ext, default: dflt }, refs);
      }
      case "array":
        return sorted({ ...ext, items: this.element(t.items, refs), type: "array" });
      case "map":
        return sorted({
          ...ext,
          additionalProperties: this.element(t.values, refs),
          type: "object",
        });
      default: {
        const dflt = !f.pointer && !f.omitempty ? zeroValue(t.kind) : undefined;
        return sorted({ ...ext, ...scalarSchema(t.kind), default: dflt });
      }
    }
  }
}

function versionInfoSchema(): JsonObject {
  const fields = [
    "buildDate",
    "compiler",
    "gitCommit",
    "gitTreeState",
    "gitVersion",
    "goVersion",
    "major",
    "minor",
    "platform",
  ];
  const properties: JsonObject = {};
  for (const f of fields) {
    properties[f] = { default: "", description: `Info.${f}: string (required).`, type: "string" };
  }
  return {
    description: "Info: the server's version (io.k8s.apimachinery.pkg.version).",
    properties,
    required: fields,
    type: "object",
  };
}

// ---------------------------------------------------------------------------------------------
// Rendering

function paramKey(p: Param): string {
  return `${p.in}:${p.name}`;
}

function sortParams(params: Param[]): Param[] {
  return [...params].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Splits parameters into those on the path (shared by every served operation) and the rest. */
function factorParams(item: PathItem): { shared: Param[]; own: Map<Operation, Param[]> } {
  const served = item.operations.filter((o) => !o.validationOnly);
  let shared: Param[] = served[0]?.params ?? [];
  for (const op of served.slice(1)) {
    const keys = new Set(op.params.map(paramKey));
    shared = shared.filter((p) => keys.has(paramKey(p)));
  }
  const sharedKeys = new Set(shared.map(paramKey));
  const own = new Map<Operation, Param[]>();
  for (const op of item.operations) {
    own.set(
      op,
      op.validationOnly ? op.params : op.params.filter((p) => !sharedKeys.has(paramKey(p))),
    );
  }
  return { shared: sortParams(shared), own };
}

function paramV3(p: Param): JsonObject {
  return sorted({
    description: p.description,
    in: p.in,
    name: p.name,
    required: p.required ? true : undefined,
    schema: { type: p.type, uniqueItems: true },
  });
}

function paramV2(p: Param): JsonObject {
  return sorted({
    description: p.description,
    in: p.in,
    name: p.name,
    required: p.required ? true : undefined,
    type: p.type,
    uniqueItems: true,
  });
}

function payloadSchema(p: Payload, version: Version): JsonObject {
  return "ref" in p ? { $ref: refTo(p.ref, version) } : { type: "string" };
}

function operationV3(op: Operation, params: Param[]): JsonObject {
  const responses: JsonObject = {};
  for (const r of op.responses) {
    const content: JsonObject = {};
    if (r.payload) {
      for (const m of [...(r.mediaTypes ?? [])].sort())
        content[m] = { schema: payloadSchema(r.payload, 3) };
    }
    responses[r.code] = sorted({
      content: r.payload ? content : undefined,
      description: r.description,
    });
  }
  let requestBody: JsonObject | undefined;
  if (op.body) {
    const content: JsonObject = {};
    for (const m of [...op.body.mediaTypes].sort()) {
      content[m] = { schema: { $ref: refTo(op.body.ref, 3) } };
    }
    requestBody = sorted({ content, required: op.body.required ? true : undefined });
  }
  return sorted({
    description: op.description,
    operationId: op.operationId,
    parameters: params.length > 0 ? sortParams(params).map(paramV3) : undefined,
    requestBody,
    responses,
    tags: [op.tag],
    "x-k8ts-validation-only": op.validationOnly ? true : undefined,
    "x-kubernetes-action": op.action,
    "x-kubernetes-group-version-kind": op.gvk ? gvkJson(op.gvk) : undefined,
  });
}

function operationV2(op: Operation, params: Param[]): JsonObject {
  const responses: JsonObject = {};
  const produces = new Set<string>();
  for (const r of op.responses) {
    for (const m of r.mediaTypes ?? []) produces.add(m);
    responses[r.code] = sorted({
      description: r.description,
      schema: r.payload ? payloadSchema(r.payload, 2) : undefined,
    });
  }
  const parameters: Json[] = [];
  if (op.body) {
    parameters.push(
      sorted({
        in: "body",
        name: "body",
        required: op.body.required ? true : undefined,
        schema: { $ref: refTo(op.body.ref, 2) },
      }),
    );
  }
  for (const p of sortParams(params)) parameters.push(paramV2(p));
  return sorted({
    consumes: op.body ? [...op.body.mediaTypes] : ["*/*"],
    description: op.description,
    operationId: op.operationId,
    parameters: parameters.length > 0 ? parameters : undefined,
    produces: [...produces],
    responses,
    schemes: ["https"],
    tags: [op.tag],
    "x-k8ts-validation-only": op.validationOnly ? true : undefined,
    "x-kubernetes-action": op.action,
    "x-kubernetes-group-version-kind": op.gvk ? gvkJson(op.gvk) : undefined,
  });
}

/** Type names an operation refers to. */
function operationRefs(op: Operation): string[] {
  const out: string[] = [];
  if (op.body) out.push(op.body.ref);
  for (const r of op.responses) if (r.payload && "ref" in r.payload) out.push(r.payload.ref);
  return out;
}

function renderPaths(
  items: PathItem[],
  version: Version,
): { paths: JsonObject; refs: Set<string> } {
  const paths: Record<string, Json> = {};
  const refs = new Set<string>();
  for (const item of items) {
    const { shared, own } = factorParams(item);
    const entry: Record<string, Json | undefined> = {
      parameters:
        shared.length > 0
          ? shared.map((p) => (version === 3 ? paramV3(p) : paramV2(p)))
          : undefined,
    };
    for (const op of item.operations) {
      entry[op.method] =
        version === 3 ? operationV3(op, own.get(op) ?? []) : operationV2(op, own.get(op) ?? []);
      for (const r of operationRefs(op)) refs.add(r);
    }
    paths[item.path] = sorted(entry);
  }
  return { paths: sorted(paths), refs };
}

// ---------------------------------------------------------------------------------------------
// Swagger 2.0 as protobuf: the `openapi.v2.Document` message of gnostic's OpenAPIv2.proto, which
// kubectl asks for (`Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`) and
// decodes for client-side validation and `explain --output=plaintext-openapiv2`. Values without
// a proto field of their own (`default`, `enum`, vendor extensions) travel as `Any.yaml` text; JSON
// is YAML, so they are written as JSON.

/**
 * A protobuf message under construction. Small pieces (tags, lengths, short strings) collect in a
 * byte array; nested messages are appended as their chunks, not copied, until finish().
 */
class PbWriter {
  private readonly chunks: Uint8Array[] = [];
  private pending: number[] = [];
  /** Bytes written so far. */
  length = 0;

  private flush(): void {
    if (this.pending.length === 0) return;
    this.chunks.push(Uint8Array.from(this.pending));
    this.pending = [];
  }

  private varint(n: number): void {
    while (n > 127) {
      this.pending.push((n & 0x7f) | 0x80);
      n = Math.floor(n / 128);
      this.length++;
    }
    this.pending.push(n);
    this.length++;
  }

  /** A string field; proto3 leaves empty strings out unless the field is repeated. */
  string(field: number, s: Json | undefined, repeated = false): void {
    if (typeof s !== "string" || (s === "" && !repeated)) return;
    const b = Buffer.from(s, "utf8");
    this.varint(field * 8 + 2);
    this.varint(b.length);
    if (b.length <= 64) {
      for (const x of b) this.pending.push(x);
    } else {
      this.flush();
      this.chunks.push(b);
    }
    this.length += b.length;
  }

  strings(field: number, list: Json | undefined): void {
    if (Array.isArray(list)) for (const s of list) this.string(field, s, true);
  }

  bool(field: number, v: Json | undefined): void {
    if (v !== true) return;
    this.varint(field * 8);
    this.varint(1);
  }

  message(field: number, m: PbWriter): void {
    m.flush();
    this.varint(field * 8 + 2);
    this.varint(m.length);
    this.flush();
    for (const c of m.chunks) this.chunks.push(c);
    this.length += m.length;
  }

  finish(): Buffer {
    this.flush();
    return Buffer.concat(this.chunks, this.length);
  }
}

function asObject(v: Json | undefined): JsonObject {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? v : {};
}

/** `Any { string yaml = 2; }` */
function pbAny(v: Json): PbWriter {
  const w = new PbWriter();
  w.string(2, JSON.stringify(v), true);
  return w;
}

/** `NamedAny { string name = 1; Any value = 2; }` for every `x-` key of an object. */
function pbExtensions(w: PbWriter, field: number, o: JsonObject): void {
  for (const [k, v] of Object.entries(o)) {
    if (!k.startsWith("x-")) continue;
    const named = new PbWriter();
    named.string(1, k);
    named.message(2, pbAny(v));
    w.message(field, named);
  }
}

/** `Schema` (Swagger's JSON schema subset). */
function pbSchema(s: JsonObject): PbWriter {
  const w = new PbWriter();
  w.string(1, s["$ref"]);
  w.string(2, s["format"]);
  w.string(3, s["title"]);
  w.string(4, s["description"]);
  if (s["default"] !== undefined) w.message(5, pbAny(s["default"]));
  w.bool(16, s["uniqueItems"]);
  w.strings(19, s["required"]);
  if (Array.isArray(s["enum"])) for (const e of s["enum"]) w.message(20, pbAny(e));
  const ap = s["additionalProperties"];
  if (ap !== undefined) {
    const item = new PbWriter();
    if (typeof ap === "boolean") item.bool(2, ap);
    else item.message(1, pbSchema(asObject(ap)));
    w.message(21, item);
  }
  if (s["type"] !== undefined) {
    const t = new PbWriter();
    t.strings(1, Array.isArray(s["type"]) ? s["type"] : [s["type"]]);
    w.message(22, t);
  }
  if (s["items"] !== undefined) {
    const items = new PbWriter();
    const list = Array.isArray(s["items"]) ? s["items"] : [s["items"]];
    for (const i of list) items.message(1, pbSchema(asObject(i)));
    w.message(23, items);
  }
  if (Array.isArray(s["allOf"])) for (const a of s["allOf"]) w.message(24, pbSchema(asObject(a)));
  if (s["properties"] !== undefined) {
    const props = new PbWriter();
    for (const [name, sub] of Object.entries(asObject(s["properties"]))) {
      const named = new PbWriter();
      named.string(1, name);
      named.message(2, pbSchema(asObject(sub)));
      props.message(1, named);
    }
    w.message(25, props);
  }
  pbExtensions(w, 31, s);
  return w;
}

/** `ParametersItem { Parameter parameter = 1; }` */
function pbParameter(p: JsonObject): PbWriter {
  const param = new PbWriter();
  if (p["in"] === "body") {
    const body = new PbWriter();
    body.string(1, p["description"]);
    body.string(2, p["name"]);
    body.string(3, p["in"]);
    body.bool(4, p["required"]);
    if (p["schema"] !== undefined) body.message(5, pbSchema(asObject(p["schema"])));
    param.message(1, body);
  } else {
    // QueryParameterSubSchema (3) and PathParameterSubSchema (4) share fields 1-4; `type` and
    // `uniqueItems` sit at 6 and 20 in the first, 5 and 19 in the second.
    const isPath = p["in"] === "path";
    const sub = new PbWriter();
    sub.bool(1, p["required"]);
    sub.string(2, p["in"]);
    sub.string(3, p["description"]);
    sub.string(4, p["name"]);
    sub.string(isPath ? 5 : 6, p["type"]);
    sub.bool(isPath ? 19 : 20, p["uniqueItems"]);
    const nonBody = new PbWriter();
    nonBody.message(isPath ? 4 : 3, sub);
    param.message(2, nonBody);
  }
  const item = new PbWriter();
  item.message(1, param);
  return item;
}

/** `Operation`. */
function pbOperation(o: JsonObject): PbWriter {
  const w = new PbWriter();
  w.strings(1, o["tags"]);
  w.string(3, o["description"]);
  w.string(5, o["operationId"]);
  w.strings(6, o["produces"]);
  w.strings(7, o["consumes"]);
  if (Array.isArray(o["parameters"])) {
    for (const p of o["parameters"]) w.message(8, pbParameter(asObject(p)));
  }
  const responses = new PbWriter();
  for (const [code, r] of Object.entries(asObject(o["responses"]))) {
    const ro = asObject(r);
    const response = new PbWriter();
    response.string(1, ro["description"]);
    if (ro["schema"] !== undefined) {
      const item = new PbWriter();
      item.message(1, pbSchema(asObject(ro["schema"])));
      response.message(2, item);
    }
    const value = new PbWriter();
    value.message(1, response);
    const named = new PbWriter();
    named.string(1, code);
    named.message(2, value);
    responses.message(1, named);
  }
  w.message(9, responses);
  w.strings(10, o["schemes"]);
  pbExtensions(w, 13, o);
  return w;
}

const PB_METHODS: Record<string, number> = {
  get: 2,
  put: 3,
  post: 4,
  delete: 5,
  options: 6,
  head: 7,
  patch: 8,
};

/** The Swagger 2.0 document (as rendered for JSON) as an `openapi.v2.Document` message. */
function swaggerProtobuf(doc: JsonObject): Buffer {
  const w = new PbWriter();
  w.string(1, doc["swagger"]);
  const info = asObject(doc["info"]);
  const pbInfo = new PbWriter();
  pbInfo.string(1, info["title"]);
  pbInfo.string(2, info["version"]);
  w.message(2, pbInfo);
  const paths = new PbWriter();
  for (const [path, item] of Object.entries(asObject(doc["paths"]))) {
    const io = asObject(item);
    const pi = new PbWriter();
    for (const [method, field] of Object.entries(PB_METHODS)) {
      if (io[method] !== undefined) pi.message(field, pbOperation(asObject(io[method])));
    }
    if (Array.isArray(io["parameters"])) {
      for (const p of io["parameters"]) pi.message(9, pbParameter(asObject(p)));
    }
    const named = new PbWriter();
    named.string(1, path);
    named.message(2, pi);
    paths.message(2, named);
  }
  w.message(8, paths);
  const defs = new PbWriter();
  for (const [name, s] of Object.entries(asObject(doc["definitions"]))) {
    const named = new PbWriter();
    named.string(1, name);
    named.message(2, pbSchema(asObject(s)));
    defs.message(1, named);
  }
  w.message(9, defs);
  if (Array.isArray(doc["security"])) {
    for (const req of doc["security"]) {
      const sr = new PbWriter();
      for (const [name, scopes] of Object.entries(asObject(req))) {
        const arr = new PbWriter();
        arr.strings(1, scopes);
        const named = new PbWriter();
        named.string(1, name);
        named.message(2, arr);
        sr.message(1, named);
      }
      w.message(12, sr);
    }
  }
  const secDefs = new PbWriter();
  for (const [name, d] of Object.entries(asObject(doc["securityDefinitions"]))) {
    const dd = asObject(d);
    const apiKey = new PbWriter();
    apiKey.string(1, dd["type"]);
    apiKey.string(2, dd["name"]);
    apiKey.string(3, dd["in"]);
    apiKey.string(4, dd["description"]);
    const item = new PbWriter();
    item.message(2, apiKey);
    const named = new PbWriter();
    named.string(1, name);
    named.message(2, item);
    secDefs.message(1, named);
  }
  w.message(13, secDefs);
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// Documents

interface DocumentSource {
  /** Index key: "api/v1", "apis/apps", "version". */
  key: string;
  items: PathItem[];
}

interface Built {
  body: Buffer;
  hash: string;
}

function discoveryPath(
  path: string,
  operationId: string,
  tag: string,
  ref: string,
  desc: string,
): PathItem {
  return {
    path,
    operations: [
      {
        method: "get",
        operationId,
        description: desc,
        tag,
        params: [],
        responses: [ok({ ref }, path === "/version/" ? [JSON_TYPE] : OBJECT_TYPES), UNAUTHORIZED],
      },
    ],
  };
}

function sha512Hex(body: Buffer): string {
  return createHash("sha512").update(body).digest("hex").toUpperCase();
}

/** Parses an Accept header into media ranges with q > 0, best first. */
function acceptRanges(accept: string): { type: string; subtype: string }[] {
  const out: { type: string; subtype: string; q: number; i: number }[] = [];
  accept.split(",").forEach((part, i) => {
    const [range = "", ...params] = part.split(";").map((s) => s.trim());
    if (range === "") return;
    let q = 1;
    for (const p of params) {
      const m = /^q=([0-9.]+)$/i.exec(p);
      if (m) q = Number(m[1]);
    }
    if (!(q > 0)) return;
    const slash = range.indexOf("/");
    const type = slash < 0 ? range : range.slice(0, slash);
    const subtype = slash < 0 ? "*" : range.slice(slash + 1);
    out.push({ type: type.toLowerCase(), subtype: subtype.toLowerCase(), q, i });
  });
  out.sort((a, b) => b.q - a.q || a.i - b.i);
  return out;
}

const PROTOBUF_V2_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/**
 * The form an Accept header picks among `offers` (subtypes of "application"), as upstream
 * negotiates: media ranges best first, the first offer a range matches wins; an empty header
 * accepts anything. Undefined when nothing offered is acceptable.
 */
function negotiate<T extends string>(accept: string, offers: readonly T[]): T | undefined {
  if (accept.trim() === "") return offers[0];
  for (const r of acceptRanges(accept)) {
    if (r.type !== "application" && r.type !== "*") continue;
    const hit = offers.find((o) => r.subtype === "*" || r.subtype === o);
    if (hit !== undefined) return hit;
  }
  return undefined;
}

function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch
    .split(",")
    .map((s) => s.trim().replace(/^W\//, ""))
    .some((t) => t === "*" || t === etag);
}

export interface OpenAPIOptions {
  /**
   * Declare a PATCH operation (`x-k8ts-validation-only`, not served) for each creatable
   * top-level kind without one (Binding, the reviews), so that kubectl's `--validate=strict`
   * leaves field validation of those kinds to the server. Default true. Without it kubectl (as
   * against upstream) falls back to `/openapi/v2` and then lists
   * `apiextensions.k8s.io/v1/customresourcedefinitions` to rule out a custom resource; with no
   * CRD API served, that list fails and so does `kubectl create -f` of such a kind.
   */
  validationPatches?: boolean;
}

/**
 * The OpenAPI v2 and v3 documents of the served resources, built on first use and kept in memory.
 * Route `/openapi/v2` and every path under `/openapi/v3` (the index included) to serve().
 */
export class OpenAPI {
  private readonly sources: DocumentSource[];
  private v3Docs?: Map<string, Built>;
  private v3Index?: Built;
  private v2Json?: Built;
  private v2Protobuf?: Buffer;

  /**
   * `resources`: the served resources (src/api/resources.ts `resources`), in discovery order;
   * the documents list their group-versions and paths.
   */
  constructor(resources: readonly ResourceInfo[] = servedResources, options: OpenAPIOptions = {}) {
    this.sources = OpenAPI.documentSources(resources, options.validationPatches ?? true);
  }

  private static documentSources(
    resources: readonly ResourceInfo[],
    validationPatches: boolean,
  ): DocumentSource[] {
    const byGv = new Map<string, ResourceInfo[]>();
    const groups: string[] = [];
    for (const r of resources) {
      const key = gvKey(r.group, r.version);
      let list = byGv.get(key);
      if (!list) byGv.set(key, (list = []));
      list.push(r);
      if (!groups.includes(r.group)) groups.push(r.group);
    }
    const out: DocumentSource[] = [
      {
        key: "api",
        items: [
          discoveryPath(
            "/api/",
            "getCoreAPIVersions",
            "core",
            `${META}.APIVersions`,
            "Lists the versions of the core API.",
          ),
        ],
      },
      {
        key: "apis",
        items: [
          discoveryPath(
            "/apis/",
            "getAPIVersions",
            "apis",
            `${META}.APIGroupList`,
            "Lists the API groups.",
          ),
        ],
      },
      {
        key: "version",
        items: [
          discoveryPath(
            "/version/",
            "getCodeVersion",
            "version",
            VERSION_INFO,
            "Reads the server's version.",
          ),
        ],
      },
    ];
    for (const group of groups) {
      if (group === "") continue;
      const camel = groupCamel(group);
      out.push({
        key: `apis/${group}`,
        items: [
          discoveryPath(
            `/apis/${group}/`,
            `get${camel}APIGroup`,
            lowerFirst(camel),
            `${META}.APIGroup`,
            `Reads the ${group} API group.`,
          ),
        ],
      });
    }
    for (const [key, list] of byGv) {
      const first = list[0]!;
      const gv = `${groupCamel(first.group)}${capitalize(first.version)}`;
      const tag = `${lowerFirst(groupCamel(first.group))}_${first.version}`;
      const items: PathItem[] = [
        discoveryPath(
          `/${key}/`,
          `get${gv}APIResources`,
          tag,
          `${META}.APIResourceList`,
          `Lists the resources of ${key.replace(/^apis?\//, "")}.`,
        ),
      ];
      for (const r of list) items.push(...resourcePaths(r));
      if (validationPatches) addValidationPatches(list, items);
      out.push({ key, items });
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** The index keys ("api/v1", "apis/apps/v1", ...) of the v3 documents. */
  documentKeys(): string[] {
    return this.sources.map((s) => s.key);
  }

  private buildV3(): Map<string, Built> {
    if (this.v3Docs) return this.v3Docs;
    const builder = new SchemaBuilder(3);
    const docs = new Map<string, Built>();
    for (const src of this.sources) {
      const { paths, refs } = renderPaths(src.items, 3);
      const schemas: JsonObject = {};
      for (const name of builder.closure(refs)) schemas[name] = builder.definition(name).schema;
      const doc = {
        components: { schemas },
        info: { title: "Kubernetes", version: kubernetesVersion.gitVersion },
        openapi: "3.0.0",
        paths,
      };
      const body = Buffer.from(JSON.stringify(doc));
      docs.set(src.key, { body, hash: sha512Hex(body) });
    }
    return (this.v3Docs = docs);
  }

  private index(): Built {
    if (this.v3Index) return this.v3Index;
    const paths: JsonObject = {};
    for (const [key, d] of this.buildV3()) {
      paths[key] = { serverRelativeURL: `/openapi/v3/${key}?hash=${d.hash}` };
    }
    const body = Buffer.from(JSON.stringify({ paths }));
    return (this.v3Index = { body, hash: sha512Hex(body) });
  }

  private v2Object(): JsonObject {
    const builder = new SchemaBuilder(2);
    const { paths, refs } = renderPaths(
      this.sources.flatMap((s) => s.items),
      2,
    );
    const definitions: JsonObject = {};
    for (const name of builder.closure(refs)) definitions[name] = builder.definition(name).schema;
    return {
      definitions,
      info: { title: "Kubernetes", version: kubernetesVersion.gitVersion },
      paths,
      security: [{ BearerToken: [] }],
      securityDefinitions: {
        BearerToken: {
          description: "Bearer token authentication.",
          in: "header",
          name: "authorization",
          type: "apiKey",
        },
      },
      swagger: "2.0",
    };
  }

  private buildV2(): Built {
    if (this.v2Json) return this.v2Json;
    const body = Buffer.from(JSON.stringify(this.v2Object()));
    return (this.v2Json = { body, hash: sha512Hex(body) });
  }

  private buildV2Protobuf(): Buffer {
    return (this.v2Protobuf ??= swaggerProtobuf(
      JSON.parse(this.buildV2().body.toString("utf8")) as JsonObject,
    ));
  }

  /** The v3 document for an index key, parsed (for tests and tools). */
  v3Document(key: string): Json | undefined {
    const d = this.buildV3().get(key);
    return d ? (JSON.parse(d.body.toString("utf8")) as Json) : undefined;
  }

  /** The v2 document, parsed (for tests and tools). */
  v2Document(): Json {
    return JSON.parse(this.buildV2().body.toString("utf8")) as Json;
  }

  /** Sizes in bytes of every document: v3 ones by index key, "index", "v2" and "v2.pb". */
  sizes(): Record<string, number> {
    const out: Record<string, number> = {
      index: this.index().body.length,
      v2: this.buildV2().body.length,
      "v2.pb": this.buildV2Protobuf().length,
    };
    for (const [k, d] of this.buildV3()) out[k] = d.body.length;
    return out;
  }

  /**
   * Answers a request for `/openapi/v2`, `/openapi/v3` or `/openapi/v3/<document>`; undefined for
   * any other path and for unknown documents (the caller answers 404). `query` is the request's
   * query (`hash`), `accept` its Accept header, `ifNoneMatch` its If-None-Match header (a
   * matching ETag gets 304 with an empty body). Answers carry `Vary: Accept`; 406 when the
   * Accept header admits none of the forms served (JSON; for v2 also protobuf).
   */
  serve(
    path: string,
    query: URLSearchParams,
    accept: string,
    ifNoneMatch?: string,
  ): OpenAPIResponse | undefined {
    const p = path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path;
    if (p === "/openapi/v2") {
      const form = negotiate(accept, [
        "json",
        "com.github.proto-openapi.spec.v2@v1.0+protobuf",
        "com.github.proto-openapi.spec.v2.v1.0+protobuf",
      ]);
      if (form === undefined) return notAcceptable();
      const doc = this.buildV2();
      if (form === "json") return this.document(doc.body, JSON_TYPE, doc.hash, ifNoneMatch, {});
      return this.document(this.buildV2Protobuf(), PROTOBUF_V2_TYPE, doc.hash, ifNoneMatch, {});
    }
    if (p === "/openapi/v3") {
      return { status: 200, contentType: JSON_TYPE, body: this.index().body };
    }
    if (!p.startsWith("/openapi/v3/")) return undefined;
    const key = p.slice("/openapi/v3/".length);
    const doc = this.buildV3().get(key);
    if (!doc) return undefined;
    if (negotiate(accept, ["json"]) === undefined) return notAcceptable();
    const hash = query.get("hash");
    if (hash !== null && hash !== "") {
      if (hash !== doc.hash) {
        const location = `/openapi/v3/${key}?hash=${doc.hash}`;
        return {
          status: 301,
          contentType: "text/html; charset=utf-8",
          body: `<a href="${location}">Moved Permanently</a>.\n\n`,
          etag: `"${doc.hash}"`,
          headers: { Location: location, Vary: "Accept" },
        };
      }
      const expires = new Date(Date.now() + 365 * 24 * 3600 * 1000).toUTCString();
      return this.document(doc.body, JSON_TYPE, doc.hash, ifNoneMatch, {
        "Cache-Control": "public, immutable",
        Expires: expires,
      });
    }
    return this.document(doc.body, JSON_TYPE, doc.hash, ifNoneMatch, {});
  }

  private document(
    body: Buffer,
    contentType: string,
    hash: string,
    ifNoneMatch: string | undefined,
    headers: Record<string, string>,
  ): OpenAPIResponse {
    const etag = `"${hash}"`;
    const all = { Vary: "Accept", ...headers };
    if (etagMatches(ifNoneMatch, etag)) {
      return { status: 304, contentType, body: "", etag, headers: all };
    }
    return { status: 200, contentType, body, etag, headers: all };
  }
}

function notAcceptable(): OpenAPIResponse {
  return {
    status: 406,
    contentType: "text/plain; charset=utf-8",
    body: "",
    headers: { Vary: "Accept" },
  };
}
