import { badRequest, invalid, invalidValue, notFound, StatusError } from "../../api/status.js";
import { formatTime } from "../../api/time.js";
import { send, negotiate, type Request, type Response } from "../http.js";
import type { Registry } from "../registry/store.js";
import type { KObject } from "../registry/types.js";
import { readRequestObject, type BodyDecoder } from "./resource.js";
import type { Security } from "../security.js";
import { issueServiceAccountToken } from "../auth/authenticator/serviceaccount.js";

/** Upstream's shortest token a TokenRequest may ask for. */
const MIN_EXPIRATION_SECONDS = 600;
const DEFAULT_EXPIRATION_SECONDS = 3600;

interface TokenRequestSpec {
  audiences?: string[];
  expirationSeconds?: number;
  boundObjectRef?: { kind?: string; apiVersion?: string; name?: string; uid?: string };
}

/**
 * TokenRequest (`POST serviceaccounts/NAME/token`): a bound service account token signed with
 * `--service-account-signing-key-file`, for the API server's audiences unless others are asked,
 * optionally bound to a Pod, Secret or Node that must exist (and, for a pod, run as this account).
 */
export async function handleTokenRequest(
  req: Request,
  res: Response,
  namespace: string,
  name: string,
  registryOf: (group: string, version: string, resource: string) => Registry | undefined,
  decode: BodyDecoder,
  security: Security,
): Promise<void> {
  const kind = { group: "authentication.k8s.io", kind: "TokenRequest" };
  const body = await readRequestObject(req, decode, {
    apiVersion: "authentication.k8s.io/v1",
    kind: "TokenRequest",
  });
  const key = security.signingKey;
  const issuer = security.config.serviceAccountIssuers[0];
  if (!key || !issuer) {
    throw new StatusError(
      404,
      "NotFound",
      "the server could not find the requested resource (post serviceaccounts token): service account token issuing needs --service-account-signing-key-file and --service-account-issuer",
    );
  }
  const sa = await registryOf("", "v1", "serviceaccounts")!.get(namespace, name);
  const spec = (body.spec ?? {}) as TokenRequestSpec;
  const expirationSeconds = spec.expirationSeconds ?? DEFAULT_EXPIRATION_SECONDS;
  if (expirationSeconds < MIN_EXPIRATION_SECONDS) {
    throw invalid(kind, body.metadata?.name ?? "", [
      invalidValue(
        "spec.expirationSeconds",
        expirationSeconds,
        "may not specify a duration less than 10 minutes",
      ),
    ]);
  }
  if (expirationSeconds > 2 ** 32) {
    throw invalid(kind, body.metadata?.name ?? "", [
      invalidValue(
        "spec.expirationSeconds",
        expirationSeconds,
        "may not specify a duration larger than 2^32 seconds",
      ),
    ]);
  }
  const audiences = spec.audiences?.length ? spec.audiences : security.apiAudiences;
  let boundObject: { kind: "Pod" | "Secret" | "Node"; name: string; uid: string } | undefined;
  let node: { name: string; uid: string } | undefined;
  const ref = spec.boundObjectRef;
  if (ref) {
    const refKind = ref.kind ?? "";
    const resource = { Pod: "pods", Secret: "secrets", Node: "nodes" }[refKind];
    if (!resource || (ref.apiVersion ?? "v1") !== "v1") {
      throw badRequest(
        `cannot bind token for serviceaccount "${name}" to object of type ${ref.apiVersion ?? ""}, Kind=${refKind}`,
      );
    }
    const registry = registryOf("", "v1", resource)!;
    let target: KObject;
    try {
      target = await registry.get(refKind === "Node" ? "" : namespace, ref.name ?? "");
    } catch (err) {
      if (err instanceof StatusError && err.code === 404) {
        throw notFound(registry.gr, ref.name ?? "");
      }
      throw err;
    }
    const uid = target.metadata?.uid ?? "";
    if (ref.uid && ref.uid !== uid) {
      throw new StatusError(
        409,
        "Conflict",
        `the UID in the bound object reference (${ref.uid}) does not match the UID in record. The object might have been deleted and then recreated`,
      );
    }
    if (refKind === "Pod") {
      const podSA = (target.spec as { serviceAccountName?: string } | undefined)
        ?.serviceAccountName;
      if ((podSA || "default") !== name) {
        throw badRequest(`cannot bind token to a pod whose service account is not ${name}`);
      }
      const nodeName = (target.spec as { nodeName?: string } | undefined)?.nodeName;
      if (nodeName) {
        const n = registryOf("", "v1", "nodes")!.cached("", nodeName);
        if (n?.metadata?.uid) node = { name: nodeName, uid: n.metadata.uid };
      }
    }
    boundObject = { kind: refKind as "Pod" | "Secret" | "Node", name: ref.name ?? "", uid };
  }
  const issued = await issueServiceAccountToken({
    key,
    issuer,
    namespace,
    serviceAccount: { name, uid: sa.metadata?.uid ?? "" },
    audiences,
    expirationSeconds,
    ...(boundObject ? { boundObject } : {}),
    ...(node ? { node } : {}),
  });
  const answer: KObject = {
    kind: "TokenRequest",
    apiVersion: "authentication.k8s.io/v1",
    metadata: {
      ...(body.metadata ?? {}),
      name,
      namespace,
      creationTimestamp: formatTime(),
    },
    spec: {
      audiences,
      expirationSeconds,
      boundObjectRef: spec.boundObjectRef ?? null,
    },
    status: {
      token: issued.token,
      expirationTimestamp: formatTime(issued.expirationTimestamp),
    },
  };
  send(req, res, 201, answer, negotiate(req.headers.accept).format);
}
