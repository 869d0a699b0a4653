import { test } from "node:test";
import assert from "node:assert/strict";
import {
  allKinds,
  field,
  isKnownKind,
  messageTypeOf,
  patchMeta,
  patchSchema,
  strictDecodingMessage,
  typeForKind,
  typeNameForApiVersionKind,
  typeNameForKind,
  typeNames,
  typeOf,
  unknownFields,
  type ValueType,
} from "./index.js";

const CORE = "io.k8s.api.core.v1";
const META = "io.k8s.apimachinery.pkg.apis.meta.v1";

test("strategic merge metadata of well-known fields", () => {
  assert.deepEqual(patchMeta(`${CORE}.PodSpec`, "containers"), {
    strategy: "merge",
    mergeKey: "name",
    listType: "map",
    listMapKeys: ["name"],
  });
  assert.deepEqual(patchMeta(`${CORE}.Container`, "ports"), {
    strategy: "merge",
    mergeKey: "containerPort",
    listType: "map",
    listMapKeys: ["containerPort", "protocol"],
  });
  assert.deepEqual(patchMeta(`${CORE}.PodSpec`, "volumes"), {
    strategy: "merge,retainKeys",
    mergeKey: "name",
    listType: "map",
    listMapKeys: ["name"],
  });
  assert.equal(patchMeta(`${CORE}.Container`, "env")?.mergeKey, "name");
  assert.equal(patchMeta(`${CORE}.Container`, "volumeMounts")?.mergeKey, "mountPath");
  assert.deepEqual(patchMeta(`${META}.ObjectMeta`, "finalizers"), {
    strategy: "merge",
    listType: "set",
  });
  assert.deepEqual(patchMeta(`${META}.ObjectMeta`, "ownerReferences"), {
    strategy: "merge",
    mergeKey: "uid",
    listType: "map",
    listMapKeys: ["uid"],
  });
  assert.deepEqual(patchMeta(`${CORE}.Container`, "args"), { listType: "atomic" });
  assert.deepEqual(patchMeta(`${CORE}.PodSpec`, "tolerations"), { listType: "atomic" });
  assert.equal(patchMeta(`${CORE}.PodSpec`, "nope"), undefined);
  // Inline (embedded) structs are flattened: Volume's VolumeSource, Probe's ProbeHandler.
  assert.equal(
    messageTypeOf(field(`${CORE}.Volume`, "configMap")!),
    `${CORE}.ConfigMapVolumeSource`,
  );
  assert.equal(messageTypeOf(field(`${CORE}.Probe`, "httpGet")!), `${CORE}.HTTPGetAction`);
  assert.equal(field(`${CORE}.EphemeralContainer`, "image")?.number, 2);
  // Service ports merge on port; EndpointSubset addresses are atomic.
  assert.equal(patchMeta(`${CORE}.ServiceSpec`, "ports")?.mergeKey, "port");
  assert.deepEqual(patchMeta(`${CORE}.ServiceSpec`, "ports")?.listMapKeys, ["port", "protocol"]);
});

test("patchSchema gives strategic merge its field metadata and element types", () => {
  const spec = patchSchema.field("io.k8s.api.apps.v1.DeploymentSpec", "template");
  assert.deepEqual(spec, { meta: {}, type: `${CORE}.PodTemplateSpec` });
  assert.deepEqual(patchSchema.field(`${CORE}.PodSpec`, "containers"), {
    meta: { strategy: "merge", mergeKey: "name" },
    type: `${CORE}.Container`,
  });
  // Types with their own JSON form are leaves.
  assert.deepEqual(patchSchema.field(`${META}.ObjectMeta`, "creationTimestamp"), { meta: {} });
  assert.deepEqual(patchSchema.field(`${CORE}.Container`, "args"), { meta: {} });
  assert.equal(patchSchema.field(`${CORE}.Container`, "bogus"), undefined);
});

test("field facts: wire numbers, types, pointer, omitempty, markers", () => {
  const replicas = field("io.k8s.api.apps.v1.DeploymentSpec", "replicas");
  assert.ok(replicas);
  assert.equal(replicas.number, 1);
  assert.deepEqual(replicas.type, { kind: "int32" });
  assert.equal(replicas.pointer, true);
  assert.equal(replicas.omitempty, true);
  assert.equal(replicas.optional, true);
  const containers = field(`${CORE}.PodSpec`, "containers");
  assert.deepEqual(containers?.type, {
    kind: "array",
    items: { kind: "message", type: `${CORE}.Container` },
  });
  assert.equal(containers?.omitempty, false);
  const labels = field(`${META}.ObjectMeta`, "labels");
  assert.deepEqual(labels?.type, { kind: "map", values: { kind: "string" } });
  const data = field(`${CORE}.Secret`, "data");
  assert.deepEqual(data?.type, { kind: "map", values: { kind: "bytes" } });
  assert.equal(field(`${CORE}.DaemonEndpoint`, "Port")?.number, 1);
  assert.equal(typeOf(`${META}.Time`)?.special, "time");
  assert.equal(typeOf(`${META}.MicroTime`)?.special, "microtime");
  assert.equal(typeOf("io.k8s.apimachinery.pkg.api.resource.Quantity")?.special, "quantity");
  assert.equal(typeOf("io.k8s.apimachinery.pkg.util.intstr.IntOrString")?.special, "intorstring");
  assert.equal(typeOf("io.k8s.apimachinery.pkg.runtime.RawExtension")?.special, "rawextension");
  assert.equal(typeOf("io.k8s.api.authentication.v1.ExtraValue")?.special, "list");
  assert.equal(typeOf(`${META}.LabelSelector`)?.structType, "atomic");
  assert.equal(field(`${CORE}.PodSpec`, "nodeSelector")?.mapType, "atomic");
  const top = typeOf("io.k8s.api.apps.v1.Deployment");
  assert.deepEqual(
    top?.fields.map((f) => [f.json, f.number, f.inline]),
    [
      ["", 0, true],
      ["metadata", 1, false],
      ["spec", 2, false],
      ["status", 3, false],
    ],
  );
  assert.deepEqual([...(top?.jsonFields.keys() ?? [])].sort(), [
    "apiVersion",
    "kind",
    "metadata",
    "spec",
    "status",
  ]);
});

test("kinds resolve to their types, including the meta kinds every group version registers", () => {
  assert.equal(
    typeNameForKind({ group: "apps", version: "v1", kind: "Deployment" }),
    "io.k8s.api.apps.v1.Deployment",
  );
  assert.equal(
    typeNameForKind({ group: "apps", version: "v1", kind: "DeploymentList" }),
    "io.k8s.api.apps.v1.DeploymentList",
  );
  assert.equal(typeForKind({ group: "", version: "v1", kind: "Pod" })?.name, `${CORE}.Pod`);
  assert.equal(typeNameForKind({ group: "", version: "v1", kind: "Status" }), `${META}.Status`);
  assert.equal(
    typeNameForKind({ group: "apps", version: "v1", kind: "DeleteOptions" }),
    `${META}.DeleteOptions`,
  );
  assert.equal(
    typeNameForKind({ group: "meta.k8s.io", version: "v1", kind: "PartialObjectMetadataList" }),
    `${META}.PartialObjectMetadataList`,
  );
  assert.equal(
    typeNameForApiVersionKind("autoscaling/v2", "HorizontalPodAutoscaler"),
    "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
  );
  assert.equal(
    typeNameForApiVersionKind("autoscaling/v1", "Scale"),
    "io.k8s.api.autoscaling.v1.Scale",
  );
  assert.equal(typeNameForApiVersionKind("policy/v1", "Eviction"), "io.k8s.api.policy.v1.Eviction");
  assert.equal(
    typeNameForApiVersionKind("authentication.k8s.io/v1", "TokenRequest"),
    "io.k8s.api.authentication.v1.TokenRequest",
  );
  assert.ok(
    isKnownKind({ group: "authorization.k8s.io", version: "v1", kind: "SelfSubjectAccessReview" }),
  );
  assert.ok(isKnownKind({ group: "events.k8s.io", version: "v1", kind: "Event" }));
  assert.ok(!isKnownKind({ group: "apps", version: "v1beta1", kind: "Deployment" }));
  assert.ok(!isKnownKind({ group: "apps", version: "v1", kind: "Pod" }));

  const required: [string, string[]][] = [
    [
      "v1",
      [
        "Pod",
        "Service",
        "Namespace",
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "Node",
        "Event",
        "Endpoints",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "ReplicationController",
        "ResourceQuota",
        "LimitRange",
        "PodTemplate",
        "Binding",
        "ComponentStatus",
      ],
    ],
    ["apps/v1", ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ControllerRevision"]],
    ["batch/v1", ["Job", "CronJob"]],
    ["coordination.k8s.io/v1", ["Lease"]],
    ["discovery.k8s.io/v1", ["EndpointSlice"]],
    ["events.k8s.io/v1", ["Event"]],
    ["rbac.authorization.k8s.io/v1", ["Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"]],
    [
      "authorization.k8s.io/v1",
      [
        "SubjectAccessReview",
        "SelfSubjectAccessReview",
        "LocalSubjectAccessReview",
        "SelfSubjectRulesReview",
      ],
    ],
    ["authentication.k8s.io/v1", ["TokenReview", "TokenRequest", "SelfSubjectReview"]],
    ["certificates.k8s.io/v1", ["CertificateSigningRequest"]],
    ["networking.k8s.io/v1", ["Ingress", "IngressClass", "NetworkPolicy"]],
    ["policy/v1", ["PodDisruptionBudget", "Eviction"]],
    ["scheduling.k8s.io/v1", ["PriorityClass"]],
    [
      "storage.k8s.io/v1",
      ["StorageClass", "VolumeAttachment", "CSIDriver", "CSINode", "CSIStorageCapacity"],
    ],
    ["node.k8s.io/v1", ["RuntimeClass"]],
    ["autoscaling/v1", ["HorizontalPodAutoscaler", "Scale"]],
    ["autoscaling/v2", ["HorizontalPodAutoscaler"]],
  ];
  for (const [apiVersion, kinds] of required) {
    for (const kind of kinds) {
      const name = typeNameForApiVersionKind(apiVersion, kind);
      assert.ok(name && typeOf(name), `${apiVersion} ${kind}`);
      const needsList = !/Review$|^(Binding|TokenRequest|Eviction|Scale)$/.test(kind);
      if (needsList)
        assert.ok(
          typeNameForApiVersionKind(apiVersion, kind + "List"),
          `${apiVersion} ${kind}List`,
        );
    }
  }
  for (const k of allKinds()) assert.ok(typeOf(k.type), `${k.group}/${k.version} ${k.kind}`);
});

function refsOf(t: ValueType): string[] {
  if (t.kind === "array") return refsOf(t.items);
  if (t.kind === "map") return refsOf(t.values);
  return t.kind === "message" ? [t.type] : [];
}

test("the generated data is self-consistent", () => {
  const names = typeNames();
  assert.ok(names.length > 450, `${names.length} types`);
  for (const name of names) {
    const def = typeOf(name);
    assert.ok(def, name);
    const numbers = new Set<number>();
    for (const f of def.fields) {
      for (const ref of refsOf(f.type)) assert.ok(typeOf(ref), `${name}.${f.json}: ${ref}`);
      if (f.number === 0) {
        assert.ok(
          f.inline && f.type.kind === "message" && f.type.type.endsWith(".TypeMeta"),
          `${name} unnumbered field`,
        );
        continue;
      }
      assert.ok(!numbers.has(f.number), `${name}: number ${f.number} twice`);
      numbers.add(f.number);
      if (f.pointer)
        assert.equal(f.type.kind === "array" || f.type.kind === "map", false, `${name}.${f.json}`);
    }
    // No two inline structs (or an inline struct and the outer struct) declare the same JSON name.
    const seen = new Set<string>();
    const visit = (d: typeof def): void => {
      for (const f of d.fields) {
        if (f.inline && f.type.kind === "message") visit(typeOf(f.type.type)!);
        else if (!d.special) {
          assert.ok(!seen.has(f.json), `${name}: JSON name ${f.json} declared twice`);
          seen.add(f.json);
        }
      }
    };
    if (!def.special) visit(def);
  }
});

test("JSON names and integer widths agree with @kubernetes/client-node's models", async (t) => {
  let models: Record<string, unknown>;
  try {
    const spec = "@kubernetes/client-node/dist/gen/models/all.js";
    models = (await import(spec)) as Record<string, unknown>;
  } catch (e) {
    t.skip(`@kubernetes/client-node models not loadable: ${String(e)}`);
    return;
  }
  const pascal = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);
  interface Attr {
    baseName: string;
    type: string;
    format: string;
  }
  let matched = 0;
  const problems: string[] = [];
  for (const name of typeNames()) {
    const def = typeOf(name);
    if (!def || def.special) continue;
    const parts = name.split(".");
    const [grp = "", ver = "", kind = ""] = parts.slice(-3);
    const model = [pascal(grp) + pascal(ver) + kind, pascal(ver) + kind]
      .map((c) => models[c] as { attributeTypeMap?: Attr[] } | undefined)
      .find((m) => m?.attributeTypeMap);
    if (!model?.attributeTypeMap) continue;
    matched++;
    const theirs = new Map(model.attributeTypeMap.map((a) => [a.baseName, a]));
    for (const [json, f] of def.jsonFields) {
      const a = theirs.get(json);
      if (!a) {
        problems.push(`${name}.${json}: not in client-node`);
        continue;
      }
      const k = f.type.kind;
      if ((k === "int32" || k === "int64") && a.format !== k)
        problems.push(`${name}.${json}: ${k} vs ${a.format}`);
      if (k === "array" && !a.type.startsWith("Array<"))
        problems.push(`${name}.${json}: array vs ${a.type}`);
      if (k === "map" && !a.type.startsWith("{ [key: string]"))
        problems.push(`${name}.${json}: map vs ${a.type}`);
      if (k === "string" && a.type !== "string")
        problems.push(`${name}.${json}: string vs ${a.type}`);
      if (k === "bool" && a.type !== "boolean") problems.push(`${name}.${json}: bool vs ${a.type}`);
    }
  }
  assert.ok(matched > 450, `matched ${matched} models`);
  assert.deepEqual(problems, []);
});

test("unknownFields reports paths the way upstream strict decoding does", () => {
  const deployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name: "web",
      labels: { anything: "goes" },
      creationTimestamp: null,
      annotationz: {},
    },
    spec: {
      replicasx: 3,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web" } },
        spec: {
          containers: [
            { name: "a", image: "nginx", ports: [{ containerPort: 80, protocl: "TCP" }] },
            { name: "b", imagex: "nginx", resources: { limits: { cpu: "1" } } },
          ],
          volumes: [{ name: "v", emptyDir: {}, configMap: { name: "c", bogus: true } }],
        },
      },
      strategy: { rollingUpdate: { maxSurge: "25%" } },
    },
    status: {},
    extra: 1,
  };
  const paths = unknownFields("io.k8s.api.apps.v1.Deployment", deployment);
  assert.deepEqual(paths, [
    "metadata.annotationz",
    "spec.replicasx",
    "spec.template.spec.containers[0].ports[0].protocl",
    "spec.template.spec.containers[1].imagex",
    "spec.template.spec.volumes[0].configMap.bogus",
    "extra",
  ]);
  assert.equal(
    strictDecodingMessage(paths.slice(0, 2)),
    'strict decoding error: unknown field "metadata.annotationz", unknown field "spec.replicasx"',
  );
  // Embedded JSON, quantities, times and IntOrString are opaque; map keys are data.
  const cr = {
    apiVersion: "apps/v1",
    kind: "ControllerRevision",
    metadata: { name: "x", managedFields: [{ fieldsV1: { "f:spec": {} }, bogus: 1 }] },
    data: { whatever: { deep: true } },
    revision: 1,
  };
  assert.deepEqual(unknownFields("io.k8s.api.apps.v1.ControllerRevision", cr), [
    "metadata.managedFields[0].bogus",
  ]);
  // Map values of struct type are entered with their key; names match case-sensitively.
  const sar = { spec: { extra: { k: ["a"] }, User: "x" }, Metadata: {} };
  assert.deepEqual(unknownFields("io.k8s.api.authorization.v1.SubjectAccessReview", sar), [
    "spec.User",
    "Metadata",
  ]);
  // A clean object has none; wrong JSON types are not this check's business.
  assert.deepEqual(
    unknownFields(`${CORE}.Pod`, { spec: { containers: "nope" }, metadata: null }),
    [],
  );
});
