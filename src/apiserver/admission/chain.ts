import type { UserInfo } from "../auth/types.js";
import type { KObject } from "../registry/types.js";
import type { AdmissionAttributes, AdmissionContext, AdmissionPlugin, Operation } from "./types.js";

/** What a write's admission needs to know besides the objects. */
export interface AdmissionRequest {
  operation: Operation;
  user: UserInfo;
  group: string;
  version: string;
  resource: string;
  subresource: string;
  kind: { group: string; version: string; kind: string };
  namespace: string;
  name: string;
  dryRun: boolean;
}

/** Admission of one write, as the registry calls it: mutate first, validate after its own checks. */
export interface AdmissionHook {
  mutate(obj: KObject | undefined, old: KObject | undefined): Promise<void>;
  validate(obj: KObject | undefined, old: KObject | undefined): Promise<void>;
  /** Warnings the plugins gave (PodSecurity's warn mode), for `Warning` headers. */
  readonly warnings: string[];
}

/** The admission chain: the enabled plugins in upstream's order. */
export class Admission {
  constructor(
    readonly plugins: AdmissionPlugin[],
    private readonly ctx: AdmissionContext,
  ) {}

  hook(req: AdmissionRequest): AdmissionHook {
    const warnings: string[] = [];
    const attrs = (obj: KObject | undefined, old: KObject | undefined): AdmissionAttributes => ({
      operation: req.operation,
      user: req.user,
      group: req.group,
      version: req.version,
      resource: req.resource,
      subresource: req.subresource,
      kind: req.kind,
      namespace: req.namespace,
      name: req.name || obj?.metadata?.name || "",
      object: obj,
      oldObject: old,
      dryRun: req.dryRun,
      warnings,
    });
    return {
      warnings,
      mutate: async (obj, old) => {
        const a = attrs(obj, old);
        for (const p of this.plugins) if (p.admit) await p.admit(a, this.ctx);
      },
      validate: async (obj, old) => {
        const a = attrs(obj, old);
        for (const p of this.plugins) if (p.validate) await p.validate(a, this.ctx);
      },
    };
  }
}
