import { isStatusError } from "../api/status.js";
import type { Registry } from "./registry/store.js";
import type { KObject } from "./registry/types.js";

export const SYSTEM_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"];

export interface BootstrapConfig {
  namespaces: Registry;
  services: Registry;
  endpoints: Registry;
  endpointSlices: Registry;
  /** The `kubernetes` Service's cluster IP: the first address of the service range. */
  serviceIP: string;
  advertiseAddress: string;
  securePort: number;
}

/** Creates `obj` unless it exists (read first: creating would also allocate, e.g. a cluster IP). */
async function ensure(registry: Registry, namespace: string, obj: KObject): Promise<void> {
  try {
    await registry.get(namespace, obj.metadata!.name!);
    return;
  } catch (err) {
    if (!isStatusError(err, "NotFound")) throw err;
  }
  try {
    await registry.create(namespace, obj);
  } catch (err) {
    if (!isStatusError(err, "AlreadyExists")) throw err;
  }
}

/** Makes `obj` the stored state of an object that the server owns (the kubernetes endpoints). */
async function reconcile(
  registry: Registry,
  namespace: string,
  obj: KObject,
  same: (current: KObject) => boolean,
): Promise<void> {
  try {
    const current = await registry.get(namespace, obj.metadata!.name!);
    if (same(current)) return;
    obj.metadata!.resourceVersion = current.metadata!.resourceVersion;
    await registry.update(namespace, obj.metadata!.name!, obj);
  } catch (err) {
    if (!isStatusError(err, "NotFound")) throw err;
    await registry.create(namespace, obj);
  }
}

/**
 * What a fresh cluster has, as upstream's API server creates it at start: the system namespaces,
 * the `kubernetes` Service in `default`, and its Endpoints and EndpointSlice pointing at this
 * server's advertise address (kept up to date on every start).
 */
export async function bootstrap(c: BootstrapConfig): Promise<void> {
  for (const name of SYSTEM_NAMESPACES) {
    await ensure(c.namespaces, "", { apiVersion: "v1", kind: "Namespace", metadata: { name } });
  }
  const port = { name: "https", port: c.securePort, protocol: "TCP" };
  await ensure(c.services, "default", {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: "kubernetes",
      namespace: "default",
      labels: { component: "apiserver", provider: "kubernetes" },
    },
    spec: {
      type: "ClusterIP",
      clusterIP: c.serviceIP,
      clusterIPs: [c.serviceIP],
      ipFamilies: ["IPv4"],
      ipFamilyPolicy: "SingleStack",
      ports: [{ name: "https", port: 443, protocol: "TCP", targetPort: c.securePort }],
      sessionAffinity: "None",
      internalTrafficPolicy: "Cluster",
    },
  });
  const subsets = [{ addresses: [{ ip: c.advertiseAddress }], ports: [port] }];
  await reconcile(
    c.endpoints,
    "default",
    {
      apiVersion: "v1",
      kind: "Endpoints",
      metadata: {
        name: "kubernetes",
        namespace: "default",
        labels: { "endpointslice.kubernetes.io/skip-mirror": "true" },
      },
      subsets,
    },
    (cur) => JSON.stringify(cur.subsets) === JSON.stringify(subsets),
  );
  const endpoints = [{ addresses: [c.advertiseAddress], conditions: { ready: true } }];
  await reconcile(
    c.endpointSlices,
    "default",
    {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: {
        name: "kubernetes",
        namespace: "default",
        labels: { "kubernetes.io/service-name": "kubernetes" },
      },
      addressType: "IPv4",
      endpoints,
      ports: [port],
    },
    (cur) => JSON.stringify(cur.endpoints) === JSON.stringify(endpoints),
  );
}
