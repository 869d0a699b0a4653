import type { KeyValue } from "./interface.js";

/**
 * The one error type the storage layer throws. The API server maps each code to a Kubernetes
 * Status: KeyExists -> 409 AlreadyExists, KeyNotFound -> 404, Conflict -> 409 Conflict,
 * Compacted -> 410 Gone (Expired), ValueTooLarge -> 413 / 422, Unavailable -> 503 (retryable).
 */
export type StorageErrorCode =
  | "KeyExists"
  | "KeyNotFound"
  | "Conflict"
  | "Compacted"
  | "FutureRevision"
  | "ValueTooLarge"
  | "LeaseNotFound"
  | "InvalidArgument"
  | "Unavailable"
  | "Corrupt";

export class StorageError extends Error {
  override readonly name = "StorageError";

  constructor(
    readonly code: StorageErrorCode,
    message: string,
    readonly details: {
      key?: string;
      /** For Conflict and KeyExists: the key as it is now (absent when it no longer exists). */
      current?: KeyValue;
      /** For Compacted: the oldest revision still available. */
      compactRevision?: number;
      /** For Unavailable: whether retrying may succeed. */
      retryable?: boolean;
      cause?: unknown;
    } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
  }

  /** Whether repeating the same call later may succeed. */
  get retryable(): boolean {
    return this.code === "Unavailable" && this.details.retryable !== false;
  }
}

export function isStorageError(err: unknown, code?: StorageErrorCode): err is StorageError {
  return err instanceof StorageError && (code === undefined || err.code === code);
}

export function keyExists(key: string, current?: KeyValue): StorageError {
  return new StorageError("KeyExists", `key already exists: ${key}`, { key, current });
}

export function keyNotFound(key: string): StorageError {
  return new StorageError("KeyNotFound", `key not found: ${key}`, { key });
}

export function conflict(key: string, expected: number, current?: KeyValue): StorageError {
  const actual = current ? `modRevision ${current.modRevision}` : "the key does not exist";
  return new StorageError(
    "Conflict",
    `compare failed for ${key}: expected modRevision ${expected}, ${actual}`,
    { key, current },
  );
}

export function compacted(revision: number, compactRevision: number): StorageError {
  return new StorageError(
    "Compacted",
    `required revision ${revision} has been compacted (oldest available ${compactRevision})`,
    { compactRevision },
  );
}

export function futureRevision(revision: number, current: number): StorageError {
  return new StorageError(
    "FutureRevision",
    `required revision ${revision} is a future revision (current ${current})`,
  );
}

export function valueTooLarge(key: string, size: number, limit: number): StorageError {
  return new StorageError(
    "ValueTooLarge",
    `value for ${key} is ${size} bytes, more than the limit of ${limit} bytes`,
    { key },
  );
}

export function leaseNotFound(id: number): StorageError {
  return new StorageError("LeaseNotFound", `lease ${id} not found`);
}

export function unavailable(message: string, cause?: unknown): StorageError {
  return new StorageError("Unavailable", message, { cause, retryable: true });
}
