import { badRequest, StatusError, unsupportedMediaType } from "../api/status.js";
import {
  jsonPatch,
  mergePatch,
  PatchError,
  strategicMergePatch,
  type Json,
  type PatchSchema,
} from "../api/patch.js";
import type { Registry } from "./registry/store.js";
import type { KObject } from "./registry/types.js";

let schema: PatchSchema | undefined;
let typeOfKind: ((group: string, version: string, kind: string) => string | undefined) | undefined;

/** Installs the schema strategic merge patch reads merge keys and strategies from. */
export function usePatchSchema(
  s: PatchSchema,
  typeFor: (group: string, version: string, kind: string) => string | undefined,
): void {
  schema = s;
  typeOfKind = typeFor;
}

/** Applies a PATCH body of the given media type to `current`; returns the patched object. */
export function applyPatch(
  registry: Registry,
  current: KObject,
  body: Buffer,
  type: string,
): KObject {
  let patch: unknown;
  try {
    patch = JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw badRequest(`error decoding patch: ${(err as Error).message}`);
  }
  try {
    let result: Json;
    switch (type) {
      case "application/json-patch+json":
        result = jsonPatch(current as Json, patch);
        break;
      case "application/merge-patch+json":
        result = mergePatch(current as Json, patch as Json);
        break;
      case "application/strategic-merge-patch+json": {
        const def = registry.def;
        result = strategicMergePatch(
          current as Json,
          patch as Json,
          schema,
          typeOfKind?.(def.group, def.version, def.kind),
        );
        break;
      }
      default:
        throw unsupportedMediaType();
    }
    if (result === null || typeof result !== "object" || Array.isArray(result)) {
      throw badRequest("the patch must result in an object");
    }
    return result as KObject;
  } catch (err) {
    if (err instanceof StatusError) throw err;
    if (err instanceof PatchError) throw new StatusError(422, "Invalid", err.message);
    throw err;
  }
}
