/**
 * The ServiceAccount controller: every active namespace has the service accounts the manager
 * ensures (`default`), created when a namespace appears and again if deleted. A namespace being
 * deleted gets none (its content is going).
 *
 * The root CA publisher: every namespace has the ConfigMap `kube-root-ca.crt` holding the CA
 * that verifies the API server (`ca.crt`), put back when deleted or changed, as upstream's
 * root-ca-cert-publisher.
 */

import type { ConfigMap, Namespace, ServiceAccount } from "kubernetes-types/core/v1.js";
import { hasStatusCause, isStatusError } from "../api/status.js";
import { controller } from "../client/controller.js";
import type { ControllerContext, ControllerDescriptor } from "./context.js";
import { errorMessage } from "./context.js";
import { watchOf } from "./util.js";

export const DEFAULT_SERVICE_ACCOUNTS = ["default"];

/** The accounts to create in `ns` (none while it terminates). */
export function missingServiceAccounts(
  ns: Namespace | undefined,
  existing: (name: string) => boolean,
  wanted: string[] = DEFAULT_SERVICE_ACCOUNTS,
): string[] {
  if (!ns || ns.status?.phase === "Terminating" || ns.metadata?.deletionTimestamp) return [];
  return wanted.filter((name) => !existing(name));
}

function ignoreTerminating(err: unknown): boolean {
  return (
    isStatusError(err, "AlreadyExists") ||
    hasStatusCause(err, "NamespaceTerminating") ||
    isStatusError(err, "NotFound")
  );
}

export const serviceAccountDescriptor: ControllerDescriptor = {
  name: "serviceaccount",
  aliases: ["serviceaccount-controller"],
  serviceAccount: "service-account-controller",
  async start(ctx: ControllerContext, signal) {
    const { client, informers } = ctx;
    const namespaces = informers.informer("v1/Namespace");
    const accounts = informers.informer("v1/ServiceAccount");
    const c = controller({
      name: "serviceaccount",
      informers,
      for: "v1/Namespace",
      watches: [
        watchOf("v1/ServiceAccount", (sa: ServiceAccount) =>
          DEFAULT_SERVICE_ACCOUNTS.includes(sa.metadata?.name ?? "")
            ? [sa.metadata?.namespace ?? ""]
            : [],
        ),
      ],
      workers: ctx.options.concurrency.serviceaccount ?? 1,
      clock: ctx.clock,
      onError: (err, req) =>
        ctx.log.error(`Error syncing namespace "${req.key}": ${errorMessage(err)}`),
      reconcile: async ({ name }) => {
        const ns = namespaces.store.get(name);
        const missing = missingServiceAccounts(ns, (sa) => !!accounts.store.getByName(name, sa));
        for (const sa of missing) {
          try {
            await client.resource("v1/ServiceAccount", name).create({ metadata: { name: sa } });
          } catch (err) {
            if (!ignoreTerminating(err)) throw err;
          }
        }
      },
    });
    await c.start(signal);
  },
};

export const ROOT_CA_CONFIGMAP = "kube-root-ca.crt";
export const ROOT_CA_DESCRIPTION =
  "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/** What the publisher writes in `ns`: a ConfigMap to create, one to update, or nothing. */
export function rootCAAction(
  ns: Namespace | undefined,
  cm: ConfigMap | undefined,
  ca: string,
): { type: "none" } | { type: "create"; cm: ConfigMap } | { type: "update"; cm: ConfigMap } {
  if (!ns || ns.status?.phase === "Terminating" || ns.metadata?.deletionTimestamp)
    return { type: "none" };
  if (!cm)
    return {
      type: "create",
      cm: {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: {
          name: ROOT_CA_CONFIGMAP,
          namespace: ns.metadata?.name,
          annotations: { "kubernetes.io/description": ROOT_CA_DESCRIPTION },
        },
        data: { "ca.crt": ca },
      },
    };
  const data = cm.data ?? {};
  const annotated = cm.metadata?.annotations?.["kubernetes.io/description"] === ROOT_CA_DESCRIPTION;
  if (data["ca.crt"] === ca && Object.keys(data).length === 1 && annotated) return { type: "none" };
  const next = structuredClone(cm);
  next.data = { "ca.crt": ca };
  next.metadata!.annotations = {
    ...next.metadata!.annotations,
    "kubernetes.io/description": ROOT_CA_DESCRIPTION,
  };
  return { type: "update", cm: next };
}

export const rootCACertPublisherDescriptor: ControllerDescriptor = {
  name: "root-ca-cert-publisher",
  aliases: ["root-ca-certificate-publisher-controller"],
  serviceAccount: "root-ca-cert-publisher",
  async start(ctx, signal) {
    const { client, informers } = ctx;
    const ca = ctx.options.rootCA?.toString("utf8") ?? "";
    const namespaces = informers.informer("v1/Namespace");
    const configMaps = informers.informer("v1/ConfigMap");
    const c = controller({
      name: "root-ca-cert-publisher",
      informers,
      for: "v1/Namespace",
      watches: [
        watchOf("v1/ConfigMap", (cm: ConfigMap) =>
          cm.metadata?.name === ROOT_CA_CONFIGMAP ? [cm.metadata.namespace ?? ""] : [],
        ),
      ],
      workers: 1,
      clock: ctx.clock,
      onError: (err, req) => ctx.log.error(`syncing "${req.key}" failed: ${errorMessage(err)}`),
      reconcile: async ({ name }) => {
        const action = rootCAAction(
          namespaces.store.get(name),
          configMaps.store.getByName(name, ROOT_CA_CONFIGMAP),
          ca,
        );
        const cms = client.resource("v1/ConfigMap", name);
        try {
          if (action.type === "create") await cms.create(action.cm);
          else if (action.type === "update") await cms.update(action.cm);
        } catch (err) {
          if (!ignoreTerminating(err)) throw err;
        }
      },
    });
    await c.start(signal);
  },
};
