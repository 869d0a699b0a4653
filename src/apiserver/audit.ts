/**
 * Auditing (`--audit-policy-file`, `--audit-log-path` and the rotation flags): one
 * audit.k8s.io/v1 Event per request stage as a JSON line, at the level the first matching rule of
 * the policy gives (None, Metadata, Request, RequestResponse), as upstream's log backend writes
 * them. Rotation follows upstream's (lumberjack's) scheme: past `--audit-log-maxsize` megabytes
 * the file is renamed `<name>-<timestamp><ext>` and a new one started; `--audit-log-maxbackup`
 * and `--audit-log-maxage` prune the old ones.
 */
import fs from "node:fs";
import path from "node:path";
import { randomUUID } from "node:crypto";
import YAML from "yaml";
import type { UserInfo } from "./auth/types.js";
import type { RequestInfo } from "./request-info.js";

export type AuditLevel = "None" | "Metadata" | "Request" | "RequestResponse";
export type AuditStage = "RequestReceived" | "ResponseStarted" | "ResponseComplete" | "Panic";

const LEVELS: AuditLevel[] = ["None", "Metadata", "Request", "RequestResponse"];
const STAGES: AuditStage[] = ["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"];

interface GroupResources {
  group?: string;
  resources?: string[];
  resourceNames?: string[];
}

interface PolicyRule {
  level: AuditLevel;
  users?: string[];
  userGroups?: string[];
  verbs?: string[];
  resources?: GroupResources[];
  namespaces?: string[];
  nonResourceURLs?: string[];
  omitStages?: AuditStage[];
  omitManagedFields?: boolean;
}

export interface AuditPolicy {
  rules: PolicyRule[];
  omitStages: AuditStage[];
  omitManagedFields: boolean;
}

export class AuditConfigError extends Error {
  override readonly name = "AuditConfigError";
}

/** Reads an audit.k8s.io/v1 Policy; errors name the file and the field. */
export function loadAuditPolicy(file: string): AuditPolicy {
  let doc: unknown;
  try {
    doc = YAML.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new AuditConfigError(
      `loading audit policy file: failed to read file path "${file}": ${(err as Error).message}`,
    );
  }
  const p = doc as {
    kind?: string;
    apiVersion?: string;
    rules?: unknown;
    omitStages?: unknown;
    omitManagedFields?: boolean;
  };
  const fail = (msg: string) =>
    new AuditConfigError(`loading audit policy file: ${msg}: from file ${file}`);
  if (!p || typeof p !== "object" || p.kind !== "Policy")
    throw fail(`failed decoding: expected kind Policy, got "${p?.kind ?? ""}"`);
  if (p.apiVersion !== "audit.k8s.io/v1")
    throw fail(
      `failed decoding: no kind "Policy" is registered for version "${p.apiVersion ?? ""}"`,
    );
  if (!Array.isArray(p.rules) || p.rules.length === 0) throw fail("policy contains no rules");
  const checkStages = (stages: unknown, at: string): AuditStage[] => {
    if (stages === undefined) return [];
    if (!Array.isArray(stages)) throw fail(`${at}: Invalid value: must be a list`);
    for (const s of stages) {
      if (!STAGES.includes(s as AuditStage)) {
        throw fail(
          `${at}: Unsupported value: "${String(s)}": supported values: "${STAGES.join('", "')}"`,
        );
      }
    }
    return stages as AuditStage[];
  };
  const rules = (p.rules as PolicyRule[]).map((r, i) => {
    if (!LEVELS.includes(r?.level)) {
      throw fail(
        `rules[${i}].level: Unsupported value: "${String(r?.level ?? "")}": supported values: "${LEVELS.join('", "')}"`,
      );
    }
    if (r.nonResourceURLs && (r.resources || r.namespaces)) {
      throw fail(
        `rules[${i}].nonResourceURLs: Invalid value: rules cannot apply to both regular resources and non-resource URLs`,
      );
    }
    checkStages(r.omitStages, `rules[${i}].omitStages`);
    return r;
  });
  return {
    rules,
    omitStages: checkStages(p.omitStages, "omitStages"),
    omitManagedFields: p.omitManagedFields ?? false,
  };
}

function matchURL(patterns: string[], url: string): boolean {
  return patterns.some((p) => (p.endsWith("*") ? url.startsWith(p.slice(0, -1)) : p === url));
}

/** The rule of the policy that applies to a request (upstream's policy checker). */
function ruleFor(policy: AuditPolicy, user: UserInfo, info: RequestInfo): PolicyRule | undefined {
  for (const r of policy.rules) {
    if (r.users?.length && !r.users.includes(user.username)) continue;
    if (r.userGroups?.length && !r.userGroups.some((g) => user.groups.includes(g))) continue;
    if (r.verbs?.length && !r.verbs.includes(info.verb)) continue;
    if (r.namespaces?.length || r.resources?.length) {
      if (!info.isResourceRequest) continue;
      if (r.namespaces?.length && !r.namespaces.includes(info.namespace)) continue;
      if (r.resources?.length) {
        const resource = info.subresource ? `${info.resource}/${info.subresource}` : info.resource;
        const ok = r.resources.some(
          (gr) =>
            (gr.group ?? "") === info.apiGroup &&
            (!gr.resources?.length ||
              gr.resources.some(
                (x) =>
                  x === resource ||
                  x === "*" ||
                  (x === `${info.resource}/*` && !!info.subresource) ||
                  (x === `*/${info.subresource}` && !!info.subresource),
              )) &&
            (!gr.resourceNames?.length || gr.resourceNames.includes(info.name)),
        );
        if (!ok) continue;
      }
    } else if (r.nonResourceURLs?.length) {
      if (info.isResourceRequest || !matchURL(r.nonResourceURLs, info.path)) continue;
    }
    return r;
  }
  return undefined;
}

/** Go's RFC 3339 with microseconds (metav1.MicroTime). */
function microTime(ms: number, micro = 0): string {
  const d = new Date(ms);
  const frac = String(d.getUTCMilliseconds() * 1000 + micro).padStart(6, "0");
  return d.toISOString().replace(/\.\d+Z$/, `.${frac}Z`);
}

export interface AuditLogOptions {
  path: string;
  maxAgeDays: number;
  maxBackups: number;
  maxSizeMB: number;
}

/** The log backend: JSON lines appended to a file (or stdout for "-"), rotated by size. */
export class AuditLog {
  private fd: number | undefined;
  private size = 0;
  private pending: string[] = [];
  private scheduled = false;

  constructor(private readonly opts: AuditLogOptions) {
    if (opts.path !== "-") this.open();
  }

  private open(): void {
    fs.mkdirSync(path.dirname(this.opts.path), { recursive: true });
    this.fd = fs.openSync(this.opts.path, "a", 0o600);
    this.size = fs.fstatSync(this.fd).size;
  }

  write(event: object): void {
    this.pending.push(JSON.stringify(event) + "\n");
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Writes what is queued (events of one turn of the event loop go out together). */
  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const text = this.pending.join("");
    this.pending = [];
    if (this.opts.path === "-") {
      process.stdout.write(text);
      return;
    }
    const max = this.opts.maxSizeMB * 1024 * 1024;
    if (max > 0 && this.size > 0 && this.size + Buffer.byteLength(text) > max) this.rotate();
    this.size += fs.writeSync(this.fd!, text);
  }

  private rotate(): void {
    fs.closeSync(this.fd!);
    const ext = path.extname(this.opts.path);
    const base = this.opts.path.slice(0, this.opts.path.length - ext.length);
    const stamp = new Date().toISOString().replace(/:/g, "-").replace(/Z$/, "");
    fs.renameSync(this.opts.path, `${base}-${stamp}${ext}`);
    this.open();
    this.prune(base, ext);
  }

  private prune(base: string, ext: string): void {
    const dir = path.dirname(base);
    const prefix = `${path.basename(base)}-`;
    const backups = fs
      .readdirSync(dir)
      .filter((f) => f.startsWith(prefix) && f.endsWith(ext))
      .sort()
      .reverse();
    const cutoff = Date.now() - this.opts.maxAgeDays * 86_400_000;
    backups.forEach((f, i) => {
      const file = path.join(dir, f);
      const tooMany = this.opts.maxBackups > 0 && i >= this.opts.maxBackups;
      const tooOld = this.opts.maxAgeDays > 0 && fs.statSync(file).mtimeMs < cutoff;
      if (tooMany || tooOld) fs.rmSync(file, { force: true });
    });
  }

  close(): void {
    this.flush();
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/** One request's audit record, written at each stage the policy does not omit. */
export class AuditRecord {
  private readonly event: Record<string, unknown>;
  private requestObject: unknown;

  constructor(
    private readonly log: AuditLog,
    readonly level: AuditLevel,
    private readonly omit: AuditStage[],
    private readonly omitManagedFields: boolean,
    fields: {
      requestURI: string;
      verb: string;
      user: UserInfo;
      sourceIPs: string[];
      userAgent?: string;
      info: RequestInfo;
    },
  ) {
    const { info } = fields;
    // Upstream's UserInfo leaves empty fields out: a request that was not authenticated has `{}`.
    const user: Record<string, unknown> = {};
    if (fields.user.username) user.username = fields.user.username;
    if (fields.user.uid) user.uid = fields.user.uid;
    if (fields.user.groups.length > 0) user.groups = fields.user.groups;
    if (fields.user.extra && Object.keys(fields.user.extra).length > 0)
      user.extra = fields.user.extra;
    this.event = {
      kind: "Event",
      apiVersion: "audit.k8s.io/v1",
      level,
      auditID: randomUUID(),
      stage: "RequestReceived",
      requestURI: fields.requestURI,
      verb: fields.verb,
      user,
      sourceIPs: fields.sourceIPs,
      ...(fields.userAgent ? { userAgent: fields.userAgent } : {}),
    };
    if (info.isResourceRequest) {
      const ref: Record<string, string> = { resource: info.resource };
      if (info.namespace) ref.namespace = info.namespace;
      if (info.name) ref.name = info.name;
      if (info.apiGroup) ref.apiGroup = info.apiGroup;
      ref.apiVersion = info.apiVersion;
      if (info.subresource) ref.subresource = info.subresource;
      this.event.objectRef = ref;
    }
    this.event.requestReceivedTimestamp = microTime(Date.now());
  }

  get auditID(): string {
    return this.event.auditID as string;
  }

  annotate(key: string, value: string): void {
    const a = ((this.event.annotations as Record<string, string> | undefined) ??= {});
    this.event.annotations = a;
    a[key] = value;
  }

  /**
   * The request body as JSON: it names the object of a create in objectRef (any level), and is
   * the requestObject at the Request and RequestResponse levels.
   */
  setRequestObject(decode: () => unknown): void {
    const ref = this.event.objectRef as Record<string, string> | undefined;
    const wanted = this.level === "Request" || this.level === "RequestResponse";
    if (!wanted && (!ref || ref.name)) return;
    let obj: unknown;
    try {
      obj = decode();
    } catch {
      return; // not decodable: left out, as upstream leaves out what it cannot decode
    }
    const meta = (obj as { metadata?: { name?: string } } | undefined)?.metadata;
    if (ref && !ref.name && meta?.name) {
      const { resource, namespace, ...rest } = ref;
      this.event.objectRef = {
        resource,
        ...(namespace ? { namespace } : {}),
        name: meta.name,
        ...rest,
      };
    }
    if (wanted) this.requestObject = this.strip(obj);
  }

  private strip(obj: unknown): unknown {
    if (!this.omitManagedFields || !obj || typeof obj !== "object") return obj;
    const meta = (obj as { metadata?: Record<string, unknown> }).metadata;
    if (meta?.managedFields) delete meta.managedFields;
    return obj;
  }

  /**
   * A request whose credentials were refused: one event, at ResponseStarted, with no user and
   * the 401 status carrying what was attempted, as upstream's failed-authentication audit.
   */
  failedAuthentication(message: string): void {
    if (this.omit.includes("ResponseStarted")) return;
    this.log.write({
      ...this.event,
      stage: "ResponseStarted",
      responseStatus: { metadata: {}, message, code: 401 },
      stageTimestamp: microTime(Date.now()),
    });
  }

  stage(stage: AuditStage, response?: { code: number; body?: Buffer; contentType?: string }): void {
    if (this.omit.includes(stage)) return;
    const e: Record<string, unknown> = { ...this.event, stage };
    if (response) {
      // The response body, decoded once for the status and the responseObject.
      let body: Record<string, unknown> | undefined;
      const wantBody = response.code >= 400 || this.level === "RequestResponse";
      if (wantBody && response.body && /json/.test(response.contentType ?? "")) {
        try {
          body = JSON.parse(response.body.toString("utf8")) as Record<string, unknown>;
        } catch {
          // left out, as upstream leaves out what it cannot decode
        }
      }
      const status: Record<string, unknown> = { metadata: {}, code: response.code };
      if (response.code >= 400 && body?.kind === "Status") {
        status.status = body.status;
        if (body.message) status.message = body.message;
        if (body.reason) status.reason = body.reason;
        if (body.details) status.details = body.details;
      }
      e.responseStatus = status;
      if (this.requestObject !== undefined) e.requestObject = this.requestObject;
      if (this.level === "RequestResponse" && body !== undefined) {
        e.responseObject = this.strip(body);
      }
    }
    e.stageTimestamp = microTime(Date.now());
    this.log.write(e);
  }
}

/** The audit of the API server: the policy and the log; `start` opens a request's record. */
export class Auditor {
  constructor(
    private readonly policy: AuditPolicy,
    private readonly log: AuditLog,
  ) {}

  start(fields: ConstructorParameters<typeof AuditRecord>[4]): AuditRecord | undefined {
    const rule = ruleFor(this.policy, fields.user, fields.info);
    if (!rule || rule.level === "None") return undefined;
    return new AuditRecord(
      this.log,
      rule.level,
      [...this.policy.omitStages, ...(rule.omitStages ?? [])],
      rule.omitManagedFields ?? this.policy.omitManagedFields,
      fields,
    );
  }

  close(): void {
    this.log.close();
  }
}
