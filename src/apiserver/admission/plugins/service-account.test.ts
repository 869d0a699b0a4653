import { test } from "node:test";
import assert from "node:assert/strict";
import { isStatusError, type StatusError } from "../../../api/status.js";
import type { KObject } from "../../registry/types.js";
import { serviceAccount } from "./service-account.js";
import { attrs, FakeContext, pod } from "./testing.js";

const sa = (name: string, more: Record<string, unknown> = {}): KObject => ({
  apiVersion: "v1",
  kind: "ServiceAccount",
  metadata: { name, namespace: "ns" },
  ...more,
});

const plugin = serviceAccount({ defaultAccountAttempts: 2, generateName: (p) => `${p}abcde` });

async function admit(ctx: FakeContext, obj: KObject): Promise<KObject> {
  const a = attrs("CREATE", "pods", obj);
  await plugin.admit!(a, ctx);
  await plugin.validate!(a, ctx);
  return obj;
}

async function refusal(ctx: FakeContext, obj: KObject): Promise<StatusError> {
  try {
    await admit(ctx, obj);
  } catch (err) {
    assert.ok(isStatusError(err, "Forbidden"), String(err));
    return err;
  }
  assert.fail("admitted");
}

test("a pod runs as the default account and gets the projected token volume", async () => {
  const ctx = new FakeContext([sa("default", { imagePullSecrets: [{ name: "regcred" }] })]);
  const p = await admit(
    ctx,
    pod("p", {
      initContainers: [{ name: "init", image: "busybox" }],
      containers: [{ name: "c", image: "busybox" }],
    }),
  );
  const spec = p.spec as Record<string, unknown>;
  assert.equal(spec.serviceAccountName, "default");
  assert.equal(spec.serviceAccount, "default");
  assert.deepEqual(spec.imagePullSecrets, [{ name: "regcred" }]);
  assert.deepEqual(spec.volumes, [
    {
      name: "kube-api-access-abcde",
      projected: {
        defaultMode: 420,
        sources: [
          { serviceAccountToken: { expirationSeconds: 3607, path: "token" } },
          { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
          {
            downwardAPI: {
              items: [
                {
                  path: "namespace",
                  fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" },
                },
              ],
            },
          },
        ],
      },
    },
  ]);
  const mount = {
    name: "kube-api-access-abcde",
    readOnly: true,
    mountPath: "/var/run/secrets/kubernetes.io/serviceaccount",
  };
  for (const list of ["initContainers", "containers"]) {
    assert.deepEqual((spec[list] as Array<{ volumeMounts: unknown }>)[0]!.volumeMounts, [mount]);
  }
});

test("the random volume name is kube-api-access- and five name characters", async () => {
  const ctx = new FakeContext([sa("default")]);
  const p = pod("p");
  await serviceAccount().admit!(attrs("CREATE", "pods", p), ctx);
  const name = (p.spec as { volumes: Array<{ name: string }> }).volumes[0]!.name;
  assert.match(name, /^kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
});

test("a missing account refuses the pod with upstream's message", async () => {
  const err = await refusal(new FakeContext(), pod("p"));
  assert.equal(err.code, 403);
  assert.equal(
    err.message,
    'pods "p" is forbidden: error looking up service account ns/default: serviceaccount "default" not found',
  );
  const named = await refusal(new FakeContext(), pod("q", { serviceAccountName: "builder" }));
  assert.equal(
    named.message,
    'pods "q" is forbidden: error looking up service account ns/builder: serviceaccount "builder" not found',
  );
  // A generated name is not known yet: the refusal names the prefix.
  const generated = await refusal(new FakeContext(), pod("", {}, { generateName: "web-" }));
  assert.match(generated.message, /^pods "web-" is forbidden: /);
});

test("an account the cache has not seen yet is read from storage", async () => {
  const ctx = new FakeContext();
  ctx.add(sa("default"), { cached: false });
  const p = await admit(ctx, pod("p"));
  assert.equal((p.spec as { serviceAccountName: string }).serviceAccountName, "default");
});

test("automountServiceAccountToken: the pod's choice wins over the account's", async () => {
  const off = new FakeContext([sa("default", { automountServiceAccountToken: false })]);
  assert.equal("volumes" in ((await admit(off, pod("p"))).spec as object), false);
  const podOn = await admit(off, pod("q", { automountServiceAccountToken: true }));
  assert.equal((podOn.spec as { volumes: unknown[] }).volumes.length, 1);
  const on = new FakeContext([sa("default")]);
  const podOff = await admit(on, pod("r", { automountServiceAccountToken: false }));
  assert.equal("volumes" in (podOff.spec as object), false);
});

test("a container that mounts something at the token path keeps its own mount", async () => {
  const ctx = new FakeContext([sa("default")]);
  const p = await admit(
    ctx,
    pod("p", {
      containers: [
        {
          name: "own",
          image: "busybox",
          volumeMounts: [{ name: "x", mountPath: "/var/run/secrets/kubernetes.io/serviceaccount" }],
        },
      ],
      volumes: [{ name: "x", emptyDir: {} }],
    }),
  );
  const spec = p.spec as { volumes: unknown[]; containers: Array<{ volumeMounts: unknown[] }> };
  assert.equal(spec.volumes.length, 1, "no token volume when no container needs it");
  assert.equal(spec.containers[0]!.volumeMounts.length, 1);
});

test("mirror pods are not changed, and may reference no account, secret or token", async () => {
  const ctx = new FakeContext();
  const mirror = { "kubernetes.io/config.mirror": "hash" };
  const p = await admit(ctx, pod("static", {}, { annotations: mirror }));
  assert.equal((p.spec as Record<string, unknown>).serviceAccountName, undefined);
  const withAccount = await refusal(
    ctx,
    pod("s1", { serviceAccountName: "x" }, { annotations: mirror }),
  );
  assert.equal(
    withAccount.message,
    'pods "s1" is forbidden: a mirror pod may not reference service accounts',
  );
  const withSecret = await refusal(
    ctx,
    pod("s2", { volumes: [{ name: "v", secret: { secretName: "s" } }] }, { annotations: mirror }),
  );
  assert.equal(
    withSecret.message,
    'pods "s2" is forbidden: a mirror pod may not reference secrets',
  );
  const withToken = await refusal(
    ctx,
    pod(
      "s3",
      {
        volumes: [{ name: "v", projected: { sources: [{ serviceAccountToken: { path: "t" } }] } }],
      },
      { annotations: mirror },
    ),
  );
  assert.equal(
    withToken.message,
    'pods "s3" is forbidden: a mirror pod may not use ServiceAccountToken volume projections',
  );
});

test("an account that enforces mountable secrets limits the secrets its pods use", async () => {
  const ctx = new FakeContext([
    sa("default", {
      metadata: {
        name: "default",
        namespace: "ns",
        annotations: { "kubernetes.io/enforce-mountable-secrets": "true" },
      },
      secrets: [{ name: "allowed" }],
    }),
  ]);
  await admit(ctx, pod("ok", { volumes: [{ name: "v", secret: { secretName: "allowed" } }] }));
  const err = await refusal(
    ctx,
    pod("bad", { volumes: [{ name: "v", secret: { secretName: "other" } }] }),
  );
  assert.equal(
    err.message,
    'pods "bad" is forbidden: volume with secret.secretName="other" is not allowed because service account default does not reference that secret',
  );
  const env = await refusal(
    ctx,
    pod("env", {
      containers: [
        {
          name: "c",
          image: "busybox",
          env: [{ name: "PW", valueFrom: { secretKeyRef: { name: "other", key: "k" } } }],
        },
      ],
    }),
  );
  assert.equal(
    env.message,
    'pods "env" is forbidden: container c with envVar PW referencing secret.secretName="other" is not allowed because service account default does not reference that secret',
  );
});

test("updates, subresources and other resources are left alone", async () => {
  const ctx = new FakeContext();
  const p = pod("p");
  await plugin.admit!(attrs("UPDATE", "pods", p, { oldObject: pod("p") }), ctx);
  await plugin.validate!(attrs("UPDATE", "pods", p, { oldObject: pod("p") }), ctx);
  await plugin.admit!(attrs("UPDATE", "pods", p, { subresource: "status" }), ctx);
  assert.equal((p.spec as Record<string, unknown>).serviceAccountName, undefined);
  await plugin.admit!(
    attrs("CREATE", "configmaps", { kind: "ConfigMap", metadata: { name: "c" } }),
    ctx,
  );
});
