/**
 * The objects the API server benchmark writes: a realistic Pod of about 2 KiB of JSON (two
 * containers with env, resources, probes and mounts; labels; annotations) and a small ConfigMap.
 * Bodies are built by filling placeholders of a serialized template, so that making one costs
 * the load generator next to nothing.
 */

/** The annotation that carries a write's sequence number (found in watch events by the clients). */
export const SEQ_ANNOTATION = "k8ts.bench/seq";
/** The annotation that carries the wall-clock time (ms since the epoch) the write was sent. */
export const SENT_ANNOTATION = "k8ts.bench/sent-at";

type Fields = Record<string, string>;

/** A template: literal parts and the names of the fields between them. */
function compile(obj: unknown): (fields: Fields) => string {
  const parts = JSON.stringify(obj).split(/@@([A-Z]+)@@/);
  return (fields) => {
    let out = parts[0]!;
    for (let i = 1; i < parts.length; i += 2) out += fields[parts[i]!]! + parts[i + 1]!;
    return out;
  };
}

const pod = compile({
  apiVersion: "v1",
  kind: "Pod",
  metadata: {
    name: "@@NAME@@",
    namespace: "@@NS@@",
    labels: {
      app: "web-frontend",
      tier: "frontend",
      release: "stable",
      version: "v1.24.3",
      team: "payments",
    },
    annotations: {
      "prometheus.io/scrape": "true",
      "prometheus.io/port": "9102",
      "kubectl.kubernetes.io/default-container": "app",
      [SEQ_ANNOTATION]: "@@SEQ@@",
      [SENT_ANNOTATION]: "@@SENT@@",
    },
  },
  spec: {
    containers: [
      {
        name: "app",
        image: "registry.example.com/payments/web-frontend:v1.24.3",
        imagePullPolicy: "IfNotPresent",
        args: ["--port=8080", "--log-level=info"],
        ports: [
          { name: "http", containerPort: 8080, protocol: "TCP" },
          { name: "metrics", containerPort: 9102, protocol: "TCP" },
        ],
        env: [
          { name: "LOG_LEVEL", value: "info" },
          { name: "DATABASE_URL", value: "postgres://db.payments.svc.cluster.local:5432/app" },
          { name: "CACHE_URL", value: "redis://cache.payments.svc.cluster.local:6379/0" },
          { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
          { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
        ],
        resources: {
          requests: { cpu: "250m", memory: "256Mi" },
          limits: { cpu: "1", memory: "512Mi" },
        },
        readinessProbe: {
          httpGet: { path: "/readyz", port: 8080 },
          periodSeconds: 10,
          failureThreshold: 3,
        },
        livenessProbe: {
          httpGet: { path: "/healthz", port: 8080 },
          initialDelaySeconds: 15,
          periodSeconds: 20,
        },
        volumeMounts: [
          { name: "config", mountPath: "/etc/app", readOnly: true },
          { name: "varlog", mountPath: "/var/log/app" },
        ],
      },
      {
        name: "log-shipper",
        image: "registry.example.com/infra/log-shipper:2.3.1",
        imagePullPolicy: "IfNotPresent",
        env: [{ name: "SHIP_TO", value: "logs.infra.svc.cluster.local:24224" }],
        resources: {
          requests: { cpu: "50m", memory: "64Mi" },
          limits: { cpu: "200m", memory: "128Mi" },
        },
        volumeMounts: [{ name: "varlog", mountPath: "/var/log/app", readOnly: true }],
      },
    ],
    volumes: [
      { name: "config", configMap: { name: "web-frontend-config" } },
      { name: "varlog", emptyDir: {} },
    ],
    tolerations: [{ key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute" }],
    restartPolicy: "Always",
    terminationGracePeriodSeconds: 30,
    dnsPolicy: "ClusterFirst",
  },
});

/** The JSON of a Pod named `name` carrying `seq` and the time it was sent. */
export function podJson(name: string, seq: number, namespace = "default"): string {
  return pod({ NAME: name, NS: namespace, SEQ: String(seq), SENT: String(Date.now()) });
}

const configMap = compile({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name: "@@NAME@@", namespace: "@@NS@@", labels: { app: "bench" } },
  data: {
    "log-level": "info",
    "config.yaml": "listen: :8080\nupstream: http://backend.default.svc:8080\ntimeout: 5s\n",
  },
});

/** The JSON of a small ConfigMap (about 250 bytes). */
export function configMapJson(name: string, namespace = "default"): string {
  return configMap({ NAME: name, NS: namespace });
}
