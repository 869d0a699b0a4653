import fs from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { Store } from "../storage/interface.js";
import { kubernetesVersion } from "../cli/version.js";
import { badRequest, internalError, isStatusError, StatusError } from "../api/status.js";
import { parseRequestInfo, type RequestInfo } from "./request-info.js";
import {
  parseBody,
  send,
  sendRaw,
  sendStatus,
  sendText,
  negotiate,
  mediaType,
  requestBodies,
  type Request,
  type Response,
} from "./http.js";
import { Registry } from "./registry/store.js";
import { ServiceAllocator } from "./registry/service-allocator.js";
import { OpenAPI } from "./openapi.js";
import type { KObject, ResourceDef } from "./registry/types.js";
import { handleResource, type BodyDecoder } from "./handlers/resource.js";
import { Discovery } from "./discovery.js";
import { bootstrap } from "./bootstrap.js";
import { handleBinding } from "./handlers/binding.js";
import { handleReview, isReview } from "./handlers/reviews.js";
import { handleTokenRequest } from "./handlers/token.js";
import { handleComponentStatus } from "./handlers/componentstatus.js";
import { handleEviction } from "./handlers/eviction.js";
import { Security, UNSECURED_USER } from "./security.js";
import {
  LEGACY_TOKEN_TRACKING_CONFIGMAP,
  LEGACY_TOKEN_TRACKING_SINCE_KEY,
  parseUTCDate,
} from "./auth/authenticator/serviceaccount.js";
import { Admission } from "./admission/chain.js";
import { csrRequestor } from "./admission/requestor.js";
import { bootstrapPriorityClasses } from "./admission/plugins/index.js";
import type { ValueTransformer } from "./encryption.js";
import type { Auditor, AuditRecord } from "./audit.js";
import type { AdmissionContext, AdmissionPlugin } from "./admission/types.js";
import { namespaceLifecycle } from "./admission/plugins/namespace-lifecycle.js";
import { requestAttributes, type UserInfo } from "./auth/types.js";
import { forbiddenError, unauthorizedError } from "./auth/forbidden.js";
import {
  decodeObject,
  PROTOBUF_MEDIA_TYPE,
  ProtobufError,
  ProtobufUnknownKindError,
} from "../api/protobuf.js";
import { patchSchema, typeNameForKind } from "../api/schema/index.js";
import { usePatchSchema } from "./patch.js";
import { InflightLimiter } from "./inflight.js";

usePatchSchema(patchSchema, (group, version, kind) => typeNameForKind({ group, version, kind }));

export interface ListenConfig {
  host: string;
  port: number;
}

export interface APIServerConfig {
  store: Store;
  resources: ResourceDef[];
  /** HTTPS with HTTP/1.1 and HTTP/2 on one port. */
  secure?: ListenConfig & { certFile: string; keyFile: string };
  /** Plain HTTP without authentication (the tutorial mode); loopback only. */
  insecure?: ListenConfig;
  /** Authentication and authorization (see security.ts). */
  security: Security;
  /** Encryption at rest: the transformer of a group/resource (`--encryption-provider-config`). */
  transformers?: (group: string, resource: string) => ValueTransformer | undefined;
  /** The audit policy and log (`--audit-policy-file`, `--audit-log-path`). */
  auditor?: Auditor;
  /** The admission chain's plugins, in order (default: NamespaceLifecycle alone). */
  admissionPlugins?: AdmissionPlugin[];
  advertiseAddress: string;
  /** The `kubernetes` Service's cluster IP. */
  serviceIP: string;
  /** `--service-cluster-ip-range` and `--service-node-port-range`. */
  serviceClusterIPRange: string;
  serviceNodePortRange: string;
  /** `--event-ttl`, in seconds. */
  eventTTLSeconds?: number;
  /** `--max-requests-inflight` and `--max-mutating-requests-inflight`; 0 means no limit. */
  maxRequestsInflight?: number;
  maxMutatingRequestsInflight?: number;
}

/** A readiness or liveness check: undefined when healthy, otherwise why not. */
type Check = () => Promise<string | undefined>;

/**
 * kube-apiserver: authenticate -> authorize -> admit -> registry for every request, over the
 * storage layer. Authentication and authorization are anonymous and allow-all until the security
 * components fill them in.
 */
export class APIServer {
  private readonly registries = new Map<string, Registry>();
  readonly discovery: Discovery;
  private readonly servers: Array<http.Server | http2.Http2SecureServer> = [];
  private readonly shutdown = new AbortController();
  private ready = false;
  /** Where the servers listen, once started. */
  readonly addresses: { secure?: AddressInfo; insecure?: AddressInfo } = {};

  private readonly serviceAllocator: ServiceAllocator;
  readonly admission: Admission;
  private readonly openapi: OpenAPI;

  constructor(private readonly config: APIServerConfig) {
    this.inflight = {
      readonly: new InflightLimiter(config.maxRequestsInflight ?? 0),
      mutating: new InflightLimiter(config.maxMutatingRequestsInflight ?? 0),
    };
    this.serviceAllocator = new ServiceAllocator(
      config.serviceClusterIPRange,
      config.serviceNodePortRange,
    );
    this.openapi = new OpenAPI();
    for (const def of config.resources) {
      if (def.group === "" && def.resource === "services") def.allocator = this.serviceAllocator;
      if (def.resource === "events" && config.eventTTLSeconds)
        def.ttlSeconds = config.eventTTLSeconds;
      if (!def.stored) continue;
      const transformer = config.transformers?.(def.group, def.resource);
      if (transformer) def.transformer = transformer;
      this.registries.set(
        `${def.group}/${def.version}/${def.resource}`,
        new Registry(def, config.store),
      );
    }
    this.discovery = new Discovery(config.resources, () => this.serverAddress());
    const escalation = config.security.escalationCheck();
    this.admission = new Admission(
      [
        csrRequestor,
        ...(config.admissionPlugins ?? [namespaceLifecycle]),
        ...(escalation ? [escalation] : []),
      ],
      this.admissionContext(),
    );
  }

  registry(group: string, version: string, resource: string): Registry | undefined {
    return this.registries.get(`${group}/${version}/${resource}`);
  }

  private serverAddress(): string {
    const port = this.addresses.secure?.port ?? this.addresses.insecure?.port ?? 0;
    const host = this.config.advertiseAddress;
    return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  }

  /** Listens, then serves until `signal` aborts; resolves once listening. */
  async start(signal: AbortSignal): Promise<void> {
    const handler = (secure: boolean) => (req: Request, res: Response) => {
      this.handle(req, res, secure).catch((err: unknown) => {
        // Answering failed too (the connection is gone, or headers were half sent): drop the
        // request, never the server.
        process.stderr.write(
          `k8ts apiserver: ${req.method} ${req.url}: ${String((err as Error)?.stack ?? err)}\n`,
        );
        res.destroy?.();
      });
    };
    const listen = (server: http.Server | http2.Http2SecureServer, cfg: ListenConfig) =>
      new Promise<AddressInfo>((resolve, reject) => {
        server.once("error", reject);
        server.listen(cfg.port, cfg.host, () => {
          server.off("error", reject);
          resolve(server.address() as AddressInfo);
        });
      });
    if (this.config.secure) {
      const s = this.config.secure;
      const server = http2.createSecureServer(
        {
          allowHTTP1: true,
          cert: fs.readFileSync(s.certFile),
          key: fs.readFileSync(s.keyFile),
          minVersion: "TLSv1.2",
          // Client certificates are asked for and checked by the x509 authenticator, so that a
          // certificate from another CA gets a 401 rather than a failed handshake.
          ...(this.config.security.config.clientCAFile
            ? { requestCert: true, rejectUnauthorized: false }
            : {}),
        },
        handler(true),
      );
      this.servers.push(server);
      this.addresses.secure = await listen(server, s);
    }
    if (this.config.insecure) {
      const server = http.createServer({ keepAliveTimeout: 60_000 }, handler(false));
      this.servers.push(server);
      this.addresses.insecure = await listen(server, this.config.insecure);
    }
    signal.addEventListener("abort", () => void this.stop(), { once: true });
    this.serviceAllocator.rebuild((await this.registry("", "v1", "services")!.list("")).items);
    await bootstrap({
      namespaces: this.registry("", "v1", "namespaces")!,
      services: this.registry("", "v1", "services")!,
      endpoints: this.registry("", "v1", "endpoints")!,
      endpointSlices: this.registry("discovery.k8s.io", "v1", "endpointslices")!,
      serviceIP: this.config.serviceIP,
      advertiseAddress: this.config.advertiseAddress,
      securePort: this.addresses.secure?.port ?? this.addresses.insecure!.port,
    });
    // The caches admission plugins read on every write (small resources; pods and nodes are
    // looked up in storage when a plugin needs one the cache does not have).
    await Promise.all(
      [
        ["", "namespaces"],
        ["", "serviceaccounts"],
        ["", "limitranges"],
        ["", "resourcequotas"],
        ["scheduling.k8s.io", "priorityclasses"],
        ["storage.k8s.io", "storageclasses"],
        ["networking.k8s.io", "ingressclasses"],
        ["node.k8s.io", "runtimeclasses"],
      ].map(([group, resource]) => this.registry(group!, "v1", resource!)?.cache().ready()),
    );
    // The system PriorityClasses, as upstream's API server creates them at start.
    const priorityClasses = this.registry("scheduling.k8s.io", "v1", "priorityclasses")!;
    for (const pc of bootstrapPriorityClasses()) {
      try {
        await priorityClasses.create("", pc);
      } catch (err) {
        if (!isStatusError(err, "AlreadyExists")) throw err;
      }
    }
    await this.trackLegacyTokens();
    await this.config.security.start((group, version, resource) =>
      this.registry(group, version, resource),
    );
    this.ready = true;
  }

  /**
   * The ConfigMap that says since when legacy service account tokens' uses are tracked (the
   * legacy token cleaner counts unused time from that day): created with today's UTC date if
   * missing, and given it again if its date does not parse, as upstream's legacytokentracking
   * controller does.
   */
  private async trackLegacyTokens(): Promise<void> {
    const configMaps = this.registry("", "v1", "configmaps");
    if (!configMaps) return;
    const today = new Date().toISOString().slice(0, 10);
    try {
      await configMaps.create("kube-system", {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { namespace: "kube-system", name: LEGACY_TOKEN_TRACKING_CONFIGMAP },
        data: { [LEGACY_TOKEN_TRACKING_SINCE_KEY]: today },
      });
      return;
    } catch (err) {
      if (!isStatusError(err, "AlreadyExists")) throw err;
    }
    const since = (obj: KObject) =>
      parseUTCDate(
        (obj as { data?: Record<string, string> }).data?.[LEGACY_TOKEN_TRACKING_SINCE_KEY],
      );
    try {
      const existing = await configMaps.get("kube-system", LEGACY_TOKEN_TRACKING_CONFIGMAP);
      if (since(existing) !== undefined) return;
      await configMaps.guaranteedUpdate("kube-system", LEGACY_TOKEN_TRACKING_CONFIGMAP, (obj) => {
        if (since(obj) !== undefined) return;
        const data = ((obj as { data?: Record<string, string> }).data ??= {});
        data[LEGACY_TOKEN_TRACKING_SINCE_KEY] = today;
      });
    } catch (err) {
      if (!isStatusError(err, "NotFound")) throw err;
    }
  }

  async stop(): Promise<void> {
    this.ready = false;
    this.shutdown.abort();
    this.config.security.stop();
    this.config.auditor?.close();
    for (const registry of this.registries.values()) registry.close();
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            if ("closeAllConnections" in s) (s as http.Server).closeAllConnections();
          }),
      ),
    );
  }

  private readonly checks: Record<string, Check> = {
    ping: async () => undefined,
    log: async () => undefined,
    etcd: async () => {
      try {
        await this.config.store.status();
        return undefined;
      } catch (err) {
        return (err as Error).message;
      }
    },
  };

  private async health(
    req: Request,
    res: Response,
    kind: "healthz" | "livez" | "readyz",
    sub: string,
    query: URLSearchParams,
  ): Promise<void> {
    const names = Object.keys(this.checks);
    const extra = kind === "readyz" ? ["informer-sync", "shutdown"] : [];
    if (sub) {
      const check = this.checks[sub];
      if (!check && !extra.includes(sub)) return sendText(res, 404, "404 page not found\n");
      const failure = check
        ? await check()
        : sub === "shutdown" && !this.ready
          ? "process is shutting down"
          : undefined;
      return sendText(
        res,
        failure ? 500 : 200,
        failure ? `internal server error: ${failure}\n` : "ok",
      );
    }
    const lines: string[] = [];
    let failed = false;
    for (const name of names) {
      const failure = await this.checks[name]!();
      if (failure) failed = true;
      lines.push(failure ? `[-]${name} failed: reason withheld` : `[+]${name} ok`);
    }
    for (const name of extra) {
      const failure = name === "shutdown" && !this.ready;
      if (failure) failed = true;
      lines.push(failure ? `[-]${name} failed: reason withheld` : `[+]${name} ok`);
    }
    if (failed) {
      return sendText(res, 500, `${lines.join("\n")}\n${kind} check failed\n`);
    }
    if (query.has("verbose"))
      return sendText(res, 200, `${lines.join("\n")}\n${kind} check passed\n`);
    return sendText(res, 200, "ok");
  }

  /** What admission plugins read and write: the watch caches, storage, guaranteed updates. */
  private admissionContext(): AdmissionContext {
    const registry = (group: string, version: string, resource: string) => {
      const r = this.registry(group, version, resource);
      if (!r) throw new Error(`no resource ${group}/${version}/${resource}`);
      return r;
    };
    return {
      get: (group, version, resource, namespace, name) =>
        registry(group, version, resource).cached(namespace, name),
      fetch: async (group, version, resource, namespace, name) => {
        try {
          return await registry(group, version, resource).get(namespace, name);
        } catch (err) {
          if (isStatusError(err, "NotFound")) return undefined;
          throw err;
        }
      },
      list: (group, version, resource, namespace) =>
        registry(group, version, resource).cachedList(namespace),
      update: (group, version, resource, namespace, name, mutate) =>
        registry(group, version, resource).guaranteedUpdate(namespace, name, mutate),
      authorize: (attrs) => this.config.security.authorize(attrs),
    };
  }

  /** Decodes a request body by its media type; protobuf bodies default to the endpoint's kind. */
  private readonly decode: BodyDecoder = (body, contentType, expected) => {
    if (mediaType(contentType) !== PROTOBUF_MEDIA_TYPE)
      return parseBody(body, contentType) as KObject;
    try {
      const { apiVersion, kind, object } = decodeObject(body, expected);
      return { ...object, apiVersion, kind } as KObject;
    } catch (err) {
      if (err instanceof ProtobufUnknownKindError) {
        throw badRequest(`no kind "${err.kind}" is registered for version "${err.apiVersion}"`);
      }
      if (err instanceof ProtobufError)
        throw badRequest(`error decoding protobuf body: ${err.message}`);
      throw err;
    }
  };

  /**
   * The request pipeline: authenticate (the secure port; the tutorial port's user has every
   * power), authorize, then serve (admission and the registry are inside).
   */
  private async handle(req: Request, res: Response, secure: boolean): Promise<void> {
    const url = new URL(req.url ?? "/", "https://apiserver");
    const path = url.pathname;
    const query = url.searchParams;
    const format = negotiate(req.headers.accept).format;
    try {
      const info = parseRequestInfo(req.method ?? "GET", path, query);
      const security = this.config.security;
      let user: UserInfo | null = UNSECURED_USER;
      const authAnnotations: Record<string, string> = {};
      if (secure) {
        const warnings: string[] = [];
        user = await security.authenticate({
          headers: req.headers,
          socket: req.socket as import("node:net").Socket,
          path,
          warnings,
          auditAnnotations: authAnnotations,
        });
        if (!user) {
          this.auditFailedAuthentication(req, res, info, query);
          throw unauthorizedError();
        }
        if (warnings.length > 0) {
          res.setHeader(
            "warning",
            warnings.map((w) => `299 - ${JSON.stringify(w)}`),
          );
        }
        user = security.impersonate(user, req.headers);
      }
      const audit = this.config.auditor?.start(auditFields(req, info, user));
      if (audit) this.audited(req, res, audit, info.verb === "watch");
      for (const [key, value] of Object.entries(authAnnotations)) audit?.annotate(key, value);
      const attrs = requestAttributes(user, info, query);
      const decision = security.authorize(attrs);
      audit?.annotate(
        "authorization.k8s.io/decision",
        decision.decision === "allow" ? "allow" : "forbid",
      );
      audit?.annotate("authorization.k8s.io/reason", decision.reason);
      if (decision.decision !== "allow") throw forbiddenError(attrs, decision.reason);
      const top = path.split("/")[1] ?? "";
      if (path === "/version" || path === "/version/") {
        return send(req, res, 200, {
          major: kubernetesVersion.major,
          minor: kubernetesVersion.minor,
          gitVersion: kubernetesVersion.gitVersion,
          gitCommit: "0000000000000000000000000000000000000000",
          gitTreeState: "clean",
          buildDate: "2026-11-23T00:00:00Z",
          goVersion: `node${process.versions.node}`,
          compiler: "gc",
          platform: `${process.platform}/${process.arch === "x64" ? "amd64" : process.arch}`,
        });
      }
      if (top === "healthz" || top === "livez" || top === "readyz") {
        return await this.health(req, res, top, path.split("/")[2] ?? "", query);
      }
      if (top === "openapi") {
        const doc = this.openapi.serve(
          path,
          query,
          String(req.headers.accept ?? ""),
          req.headers["if-none-match"] as string | undefined,
        );
        if (!doc) return sendText(res, 404, "404 page not found\n");
        const headers: Record<string, string> = { ...(doc.headers ?? {}) };
        if (doc.etag) headers.etag = doc.etag;
        return sendRaw(req, res, doc.status, doc.contentType, doc.body, headers);
      }
      if (top === "api" || top === "apis") {
        if (info.verb !== "watch")
          return await this.limited(info.verb, user, () =>
            this.serveAPI(req, res, info, query, user),
          );
        return await this.serveAPI(req, res, info, query, user);
      }
      return sendText(res, 404, "404 page not found\n");
    } catch (err) {
      this.fail(req, res, err, format);
    }
  }

  /** Audits a request whose credentials were refused, naming the methods it attempted. */
  private auditFailedAuthentication(
    req: Request,
    res: Response,
    info: RequestInfo,
    query: URLSearchParams,
  ): void {
    const audit = this.config.auditor?.start(auditFields(req, info, { username: "", groups: [] }));
    if (!audit) return;
    (res as import("node:http").ServerResponse).setHeader("audit-id", audit.auditID);
    const attempted: string[] = [];
    const authorization = String(req.headers.authorization ?? "").trim();
    const scheme = authorization.split(" ");
    if (scheme.length > 1 && scheme[0]!.toLowerCase() === "basic") attempted.push("basic");
    if (scheme.length > 1 && scheme[0]!.toLowerCase() === "bearer") attempted.push("bearer");
    if ((query.get("access_token") ?? "").trim()) attempted.push("access_token");
    const socket = req.socket as import("node:tls").TLSSocket;
    const cert = typeof socket.getPeerCertificate === "function" && socket.getPeerCertificate();
    if (cert && Object.keys(cert).length > 0) attempted.push("x509");
    audit.failedAuthentication(
      attempted.length > 0
        ? `Authentication failed, attempted: ${attempted.join(", ")}`
        : "Authentication failed, no credentials provided",
    );
  }

  /**
   * Records a request in the audit log: RequestReceived now, ResponseStarted when a watch's
   * headers go out, ResponseComplete with the status (and the bodies, by level) at the end.
   */
  private audited(req: Request, res: Response, audit: AuditRecord, longRunning: boolean): void {
    audit.stage("RequestReceived");
    const out = res as import("node:http").ServerResponse;
    out.setHeader("audit-id", audit.auditID);
    if (longRunning) {
      const writeHead = out.writeHead.bind(out) as (...a: unknown[]) => typeof out;
      out.writeHead = ((...args: unknown[]) => {
        audit.stage("ResponseStarted", { code: args[0] as number });
        return writeHead(...args);
      }) as typeof out.writeHead;
    }
    const end = out.end.bind(out) as (...a: unknown[]) => typeof out;
    out.end = ((...args: unknown[]) => {
      const chunk = args[0];
      const body = Buffer.isBuffer(chunk)
        ? chunk
        : typeof chunk === "string"
          ? Buffer.from(chunk)
          : undefined;
      const body0 = requestBodies.get(req);
      const contentType = String(req.headers["content-type"] ?? "");
      if (body0 && body0.length > 0) {
        audit.setRequestObject(() =>
          mediaType(contentType) === PROTOBUF_MEDIA_TYPE
            ? this.decode(body0, contentType, { apiVersion: "", kind: "" })
            : JSON.parse(body0.toString("utf8")),
        );
      }
      const encoding = out.getHeader("content-encoding");
      audit.stage("ResponseComplete", {
        code: out.statusCode,
        ...(body && !encoding ? { body } : {}),
        contentType: String(out.getHeader("content-type") ?? ""),
      });
      return end(...args);
    }) as typeof out.end;
  }

  private readonly inflight: { readonly: InflightLimiter; mutating: InflightLimiter };

  /**
   * Runs a request within --max-requests-inflight (reads) or --max-mutating-requests-inflight
   * (writes): over the limit it waits in line (see InflightLimiter). Watches are long-running and
   * members of system:masters are exempt, as upstream.
   */
  private async limited(verb: string, user: UserInfo, serve: () => Promise<void>): Promise<void> {
    if (user.groups?.includes("system:masters")) return serve();
    const limiter =
      verb === "get" || verb === "list" ? this.inflight.readonly : this.inflight.mutating;
    const waiting = limiter.acquire();
    if (waiting) await waiting;
    try {
      await serve();
    } finally {
      limiter.release();
    }
  }

  private async serveAPI(
    req: Request,
    res: Response,
    info: RequestInfo,
    query: URLSearchParams,
    user: UserInfo,
  ): Promise<void> {
    const path = info.path;
    const format = negotiate(req.headers.accept).format;
    if (!info.isResourceRequest) {
      const doc = this.discovery.serve(path, String(req.headers.accept ?? ""));
      if (!doc)
        throw new StatusError(404, "NotFound", "the server could not find the requested resource");
      return send(req, res, 200, doc.body, format, { "content-type": doc.contentType });
    }
    const pods = this.registry("", "v1", "pods")!;
    if (info.apiGroup === "" && info.verb === "create" && info.namespace) {
      if (info.resource === "bindings" && !info.name) {
        return await handleBinding(req, res, info.namespace, undefined, pods, this.decode);
      }
      if (info.resource === "pods" && info.subresource === "binding") {
        return await handleBinding(req, res, info.namespace, info.name, pods, this.decode);
      }
    }
    if (
      info.apiGroup === "" &&
      info.resource === "pods" &&
      info.subresource === "eviction" &&
      info.verb === "create"
    ) {
      return await handleEviction(
        req,
        res,
        info.namespace,
        info.name,
        pods,
        this.registry("policy", "v1", "poddisruptionbudgets")!,
        this.decode,
        this.admission.hook({
          operation: "CREATE",
          user,
          group: "",
          version: "v1",
          resource: "pods",
          subresource: "eviction",
          kind: { group: "policy", version: "v1", kind: "Eviction" },
          namespace: info.namespace,
          name: info.name,
          dryRun: query.getAll("dryRun").includes("All"),
        }),
      );
    }
    if (
      info.apiGroup === "" &&
      info.resource === "componentstatuses" &&
      (info.verb === "get" || info.verb === "list")
    ) {
      return await handleComponentStatus(req, res, info.name, this.config.store);
    }
    if (
      info.apiGroup === "" &&
      info.resource === "serviceaccounts" &&
      info.subresource === "token" &&
      info.verb === "create"
    ) {
      return await handleTokenRequest(
        req,
        res,
        info.namespace,
        info.name,
        (group, version, resource) => this.registry(group, version, resource),
        this.decode,
        this.config.security,
      );
    }
    if (info.verb === "create" && !info.name && isReview(info.apiGroup, info.resource)) {
      return await handleReview(
        req,
        res,
        info.apiGroup,
        info.resource,
        info.namespace,
        this.decode,
        user,
        this.config.security,
      );
    }
    const registry = this.registry(info.apiGroup, info.apiVersion, info.resource);
    if (!registry) {
      throw new StatusError(404, "NotFound", "the server could not find the requested resource");
    }
    if (
      registry.def.namespaced &&
      !info.namespace &&
      !["list", "watch", "deletecollection"].includes(info.verb) &&
      info.resource !== "namespaces"
    ) {
      throw new StatusError(404, "NotFound", "the server could not find the requested resource");
    }
    return await handleResource(
      req,
      res,
      info,
      query,
      {
        registry,
        decode: this.decode,
        nodes: this.registry("", "v1", "nodes"),
        admit: (req) =>
          this.admission.hook({
            operation: req.operation,
            user,
            group: info.apiGroup,
            version: info.apiVersion,
            resource: info.resource,
            subresource: req.subresource,
            kind: registry.gvk,
            namespace: info.namespace,
            name: req.name,
            dryRun: req.dryRun,
          }),
      },
      this.shutdown.signal,
    );
  }

  /** Answers a failed request with its Status (an internal error for anything unexpected). */
  private fail(req: Request, res: Response, err: unknown, format: "json" | "yaml"): void {
    if (res.headersSent) {
      res.end();
      return;
    }
    if (isStatusError(err)) return sendStatus(req, res, err, format);
    if (err instanceof SyntaxError) return sendStatus(req, res, badRequest(err.message), format);
    return sendStatus(req, res, internalError((err as Error)?.message ?? String(err)), format);
  }
}

/** What an audit record is opened with: the request as received and who made it. */
function auditFields(req: Request, info: RequestInfo, user: UserInfo) {
  return {
    requestURI: req.url ?? "/",
    verb: info.verb,
    user,
    sourceIPs: [req.socket.remoteAddress ?? ""],
    userAgent: req.headers["user-agent"] as string | undefined,
    info,
  };
}
