/**
 * Runs a strategy the way the registry's create and update pipelines do (defaults, system
 * metadata, prepare, validate), for the strategies' tests.
 */
import type { FieldError } from "../../api/status.js";
import type { KObject } from "../registry/types.js";
import { strategies } from "./index.js";

export const UID = "0c5e3e5c-8a7d-4c2b-9b7e-1f2d3c4b5a69";
export const CREATED = "2025-01-01T00:00:00Z";

export interface Outcome {
  obj: KObject;
  errors: string[];
  fieldErrors: FieldError[];
}

function strategyFor(resource: string) {
  const s = strategies[resource];
  if (!s) throw new Error(`no strategy for ${resource}`);
  return s;
}

/** Creates `body` through the strategy for `resource` ("<group>/<resource>"). */
export function create(resource: string, body: KObject, namespace = "default"): Outcome {
  const s = strategyFor(resource);
  const obj = JSON.parse(JSON.stringify(body)) as KObject;
  const meta = (obj.metadata ??= {});
  if (namespace) meta.namespace = namespace;
  s.defaults?.(obj);
  meta.uid = UID;
  meta.creationTimestamp = CREATED;
  if (s.tracksGeneration) meta.generation = 1;
  if (s.prepareForCreate) s.prepareForCreate(obj);
  else delete obj.status;
  const fieldErrors = s.validate?.(obj) ?? [];
  return { obj, errors: fieldErrors.map((e) => e.message), fieldErrors };
}

/** Updates `old` (as stored) with `body` through the strategy for `resource`. */
export function update(resource: string, body: KObject, old: KObject): Outcome {
  const s = strategyFor(resource);
  const obj = JSON.parse(JSON.stringify(body)) as KObject;
  const meta = (obj.metadata ??= {});
  meta.namespace = old.metadata?.namespace;
  s.defaults?.(obj);
  meta.uid = old.metadata?.uid;
  meta.creationTimestamp = old.metadata?.creationTimestamp;
  if (old.status !== undefined) obj.status = JSON.parse(JSON.stringify(old.status)) as unknown;
  s.prepareForUpdate?.(obj, old);
  const fieldErrors = s.validateUpdate?.(obj, old) ?? [];
  return { obj, errors: fieldErrors.map((e) => e.message), fieldErrors };
}

/** A request body as clients send it (kubectl sends `creationTimestamp: null`). */
export function body(obj: Record<string, unknown>): KObject {
  return obj as KObject;
}

/** The metadata the harness's create adds, for expected objects. */
export function meta(name: string, extra: Record<string, unknown> = {}, namespace = "default") {
  return {
    name,
    ...(namespace ? { namespace } : {}),
    uid: UID,
    creationTimestamp: CREATED,
    ...extra,
  };
}
