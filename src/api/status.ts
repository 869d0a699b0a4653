/**
 * Kubernetes `Status` errors: the one error type the API server's registry and handlers throw,
 * with upstream's reasons, codes and message formats (apimachinery's api/errors).
 */

export type StatusReason =
  | "BadRequest"
  | "Unauthorized"
  | "Forbidden"
  | "NotFound"
  | "AlreadyExists"
  | "Conflict"
  | "Gone"
  | "Expired"
  | "Invalid"
  | "MethodNotAllowed"
  | "NotAcceptable"
  | "RequestEntityTooLarge"
  | "UnsupportedMediaType"
  | "TooManyRequests"
  | "InternalError"
  | "ServiceUnavailable"
  | "Timeout"
  | "";

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface Status {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, unknown>;
  status: "Success" | "Failure";
  message?: string;
  reason?: StatusReason;
  details?: StatusDetails;
  code: number;
}

/** A group and resource, as upstream names them in messages: `pods`, `deployments.apps`. */
export interface GroupResource {
  group: string;
  resource: string;
}

export function qualified(gr: GroupResource): string {
  return gr.group ? `${gr.resource}.${gr.group}` : gr.resource;
}

export class StatusError extends Error {
  override readonly name = "StatusError";

  constructor(
    readonly code: number,
    readonly reason: StatusReason,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
  }

  toStatus(): Status {
    const status: Status = {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: this.message,
      reason: this.reason,
      code: this.code,
    };
    if (this.details) status.details = this.details;
    if (!this.reason) delete status.reason;
    return status;
  }
}

export function isStatusError(err: unknown, reason?: StatusReason): err is StatusError {
  return err instanceof StatusError && (reason === undefined || err.reason === reason);
}

/**
 * Whether `err` is a Status error with a cause of this reason (a create refused with
 * NamespaceTerminating because its namespace is being deleted, say).
 */
export function hasStatusCause(err: unknown, reason: string): boolean {
  return isStatusError(err) && (err.details?.causes?.some((c) => c.reason === reason) ?? false);
}

function details(gr: GroupResource, name?: string): StatusDetails {
  const d: StatusDetails = {};
  if (name !== undefined) d.name = name;
  if (gr.group) d.group = gr.group;
  d.kind = gr.resource;
  return d;
}

export function notFound(gr: GroupResource, name: string): StatusError {
  return new StatusError(
    404,
    "NotFound",
    `${qualified(gr)} "${name}" not found`,
    details(gr, name),
  );
}

export function alreadyExists(gr: GroupResource, name: string): StatusError {
  return new StatusError(
    409,
    "AlreadyExists",
    `${qualified(gr)} "${name}" already exists`,
    details(gr, name),
  );
}

/** The optimistic-concurrency conflict: a write based on a stale resourceVersion. */
export function conflict(gr: GroupResource, name: string, why: string): StatusError {
  return new StatusError(
    409,
    "Conflict",
    `Operation cannot be fulfilled on ${qualified(gr)} "${name}": ${why}`,
    details(gr, name),
  );
}

export const STALE_OBJECT =
  "the object has been modified; please apply your changes to the latest version and try again";

export interface FieldError {
  /** `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`, `FieldValueDuplicate`, `FieldValueForbidden`, `FieldValueTooLong`, `FieldValueTypeInvalid` */
  type: string;
  field: string;
  /** The full text of the error, as upstream's field.Error.Error(): `spec.replicas: Invalid value: -1: must be greater than or equal to 0`. */
  message: string;
}

export function required(field: string, detail = ""): FieldError {
  return {
    type: "FieldValueRequired",
    field,
    message: `${field}: Required value${detail ? `: ${detail}` : ""}`,
  };
}

/** Upstream prints strings quoted and other values as Go's %#v does for simple values. */
function showValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null || value === undefined) return "null";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export function invalidValue(field: string, value: unknown, detail: string): FieldError {
  return {
    type: "FieldValueInvalid",
    field,
    message: `${field}: Invalid value: ${showValue(value)}${detail ? `: ${detail}` : ""}`,
  };
}

export function notSupported(field: string, value: unknown, valid: string[]): FieldError {
  return {
    type: "FieldValueNotSupported",
    field,
    message: `${field}: Unsupported value: ${showValue(value)}: supported values: ${valid.map((v) => JSON.stringify(v)).join(", ")}`,
  };
}

export function duplicate(field: string, value: unknown): FieldError {
  return {
    type: "FieldValueDuplicate",
    field,
    message: `${field}: Duplicate value: ${showValue(value)}`,
  };
}

export function forbiddenField(field: string, detail: string): FieldError {
  return { type: "FieldValueForbidden", field, message: `${field}: Forbidden: ${detail}` };
}

/** 422 Invalid with one cause per field error, as upstream's NewInvalid. */
export function invalid(
  kind: { group: string; kind: string },
  name: string,
  errors: FieldError[],
): StatusError {
  const list =
    errors.length === 1 ? errors[0]!.message : `[${errors.map((e) => e.message).join(", ")}]`;
  const d: StatusDetails = { name };
  if (kind.group) d.group = kind.group;
  d.kind = kind.kind;
  d.causes = errors.map((e) => ({
    reason: e.type,
    message: e.message.slice(e.field.length + 2),
    field: e.field,
  }));
  const qualifiedKind = kind.group ? `${kind.kind}.${kind.group}` : kind.kind;
  return new StatusError(422, "Invalid", `${qualifiedKind} "${name}" is invalid: ${list}`, d);
}

export function badRequest(message: string): StatusError {
  return new StatusError(400, "BadRequest", message);
}

export function methodNotAllowed(message: string): StatusError {
  return new StatusError(405, "MethodNotAllowed", message);
}

export function unsupportedMediaType(): StatusError {
  return new StatusError(
    415,
    "UnsupportedMediaType",
    "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
  );
}

export function notAcceptable(message: string): StatusError {
  return new StatusError(406, "NotAcceptable", message);
}

export function requestEntityTooLarge(message: string): StatusError {
  return new StatusError(413, "RequestEntityTooLarge", message);
}

/** 410 for a watch or list from a resourceVersion older than the retained history. */
export function expired(message: string): StatusError {
  return new StatusError(410, "Expired", message);
}

export function gone(message: string): StatusError {
  return new StatusError(410, "Gone", message);
}

export function internalError(message: string): StatusError {
  return new StatusError(500, "InternalError", `Internal error occurred: ${message}`, {
    causes: [{ message }],
  });
}

export function serviceUnavailable(message: string): StatusError {
  return new StatusError(503, "ServiceUnavailable", message);
}

export function tooManyRequests(message: string, retryAfterSeconds: number): StatusError {
  return new StatusError(429, "TooManyRequests", message, { retryAfterSeconds });
}

export function forbidden(gr: GroupResource, name: string, why: string): StatusError {
  const subject = name ? `${qualified(gr)} "${name}"` : qualified(gr);
  return new StatusError(
    403,
    "Forbidden",
    `${subject} is forbidden: ${why}`,
    details(gr, name || undefined),
  );
}
