/**
 * Authentication and authorization end to end: `k8ts certs` and `k8ts kubeconfig` make the PKI,
 * one `k8ts apiserver` runs with client certificates, a token file, service account keys and
 * Node,RBAC, and real kubectl and openssl do what the seeds' RBAC lab does.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import https from "node:https";
import { tempDir } from "../src/testing/tmp.js";
import { k8tsBin, kubectl, TestAPIServer } from "./support/apiserver.js";

function run(cmd: string, args: string[], cwd?: string): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", cwd });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

describe("authentication and RBAC with real kubectl and openssl", () => {
  let dir: string;
  let pki: string;
  let server: TestAPIServer;
  let cleanup: () => Promise<void>;
  const cache = () => path.join(dir, "kube-cache");
  const as = (kubeconfig: string, args: string[], input?: string) =>
    kubectl(kubeconfig, cache(), args, input === undefined ? {} : { input });
  const admin = () => path.join(dir, "admin.conf");
  const ok = (kubeconfig: string, args: string[], input?: string) => {
    const r = as(kubeconfig, args, input);
    assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    const t = await tempDir("k8ts-auth-");
    dir = t.path;
    cleanup = async () => t.remove();
    pki = path.join(dir, "pki");
    run(k8tsBin, [
      "certs",
      `--cert-dir=${pki}`,
      "--apiserver-advertise-address=127.0.0.1",
      "--node-name=node-a",
      "--node-ip=127.0.0.1",
    ]);
    run(k8tsBin, [
      "certs",
      "node",
      `--cert-dir=${pki}`,
      "--node-name=node-b",
      "--node-ip=127.0.0.1",
    ]);
    fs.writeFileSync(path.join(dir, "tokens.csv"), 'static-token-1,jane,u-1,"developers,ops"\n');
    server = new TestAPIServer(
      dir,
      [
        `--tls-cert-file=${path.join(pki, "apiserver.crt")}`,
        `--tls-private-key-file=${path.join(pki, "apiserver.key")}`,
        `--client-ca-file=${path.join(pki, "ca.crt")}`,
        `--token-auth-file=${path.join(dir, "tokens.csv")}`,
        `--service-account-key-file=${path.join(pki, "sa.pub")}`,
        `--service-account-signing-key-file=${path.join(pki, "sa.key")}`,
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--authorization-mode=Node,RBAC",
      ],
      path.join(pki, "ca.crt"),
    );
    await server.start();
    run(k8tsBin, [
      "kubeconfig",
      `--cert-dir=${pki}`,
      `--kubeconfig-dir=${dir}`,
      `--server=${server.url}`,
    ]);
  });

  after(async () => {
    await server?.stop();
    await cleanup?.();
  });

  test("the admin kubeconfig is cluster-admin through system:masters", () => {
    ok(admin(), ["create", "namespace", "prod"]);
    const who = ok(admin(), ["auth", "whoami", "-o", "json"]);
    const status = (
      JSON.parse(who) as { status: { userInfo: { username: string; groups: string[] } } }
    ).status.userInfo;
    assert.equal(status.username, "kubernetes-admin");
    assert.deepEqual(status.groups, ["system:masters", "system:authenticated"]);
    assert.equal(ok(admin(), ["auth", "can-i", "*", "*"]).trim(), "yes");
    // The bootstrap policy is in place.
    for (const role of [
      "cluster-admin",
      "admin",
      "edit",
      "view",
      "system:kube-scheduler",
      "system:node",
    ]) {
      ok(admin(), ["get", "clusterrole", role]);
    }
  });

  test("the seeds' RBAC lab: an openssl user certificate, a Role and a RoleBinding", () => {
    const key = path.join(dir, "mike-admin.key");
    const csr = path.join(dir, "mike-admin.csr");
    const crt = path.join(dir, "mike-admin.crt");
    run("openssl", ["genrsa", "-out", key, "2048"]);
    run("openssl", [
      "req",
      "-new",
      "-key",
      key,
      "-out",
      csr,
      "-subj",
      "/CN=mikeadmin/O=robotnik.io",
    ]);
    run("openssl", [
      "x509",
      "-req",
      "-in",
      csr,
      "-CA",
      path.join(pki, "ca.crt"),
      "-CAkey",
      path.join(pki, "ca.key"),
      "-CAcreateserial",
      "-out",
      crt,
      "-days",
      "30",
    ]);
    const kc = path.join(dir, "lab.conf");
    fs.copyFileSync(admin(), kc);
    ok(kc, [
      "config",
      "set-credentials",
      "mikeadmin",
      "--client-certificate",
      crt,
      "--client-key",
      key,
    ]);
    ok(kc, [
      "config",
      "set-context",
      "mike-admin",
      "--cluster=kubernetes",
      "--namespace=prod",
      "--user=mikeadmin",
    ]);
    const refused = as(kc, ["--context=mike-admin", "get", "pods", "-n", "prod"]);
    assert.equal(refused.code, 1);
    assert.equal(
      refused.stderr,
      'Error from server (Forbidden): pods is forbidden: User "mikeadmin" cannot list resource "pods" in API group "" in the namespace "prod"\n',
    );
    ok(
      admin(),
      ["create", "-f", "-"],
      `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  namespace: prod
  name: mike-admin-role
rules:
- apiGroups: ["", "extensions"]
  resources: ["deployments", "pods"]
  verbs: ["get", "list", "watch", "create"]
`,
    );
    ok(
      admin(),
      ["create", "-f", "-"],
      `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: mike-admin-rolebinding
  namespace: prod
subjects:
- kind: User
  name: mikeadmin
  apiGroup: rbac.authorization.k8s.io
roleRef:
  kind: Role
  name: mike-admin-role
  apiGroup: rbac.authorization.k8s.io
`,
    );
    ok(kc, ["--context=mike-admin", "run", "nginx-prod", "--image", "nginx"]);
    assert.match(ok(kc, ["--context=mike-admin", "get", "pods"]), /nginx-prod/);
    const other = as(kc, ["--context=mike-admin", "get", "pods", "-n", "default"]);
    assert.equal(
      other.stderr,
      'Error from server (Forbidden): pods is forbidden: User "mikeadmin" cannot list resource "pods" in API group "" in the namespace "default"\n',
    );
    const del = as(kc, ["--context=mike-admin", "delete", "pod", "nginx-prod"]);
    assert.match(
      del.stderr,
      /pods "nginx-prod" is forbidden: User "mikeadmin" cannot delete resource "pods" in API group "" in the namespace "prod"/,
    );
    // whoami and can-i --list, as mike.
    const who = ok(kc, ["--context=mike-admin", "auth", "whoami"]);
    assert.match(who, /Username\s+mikeadmin/);
    assert.match(who, /Groups\s+\[robotnik\.io system:authenticated\]/);
    const list = ok(kc, ["--context=mike-admin", "auth", "can-i", "--list"]);
    assert.match(list, /pods\s+\[\]\s+\[\]\s+\[get list watch create\]/);
    assert.match(list, /selfsubjectreviews\.authentication\.k8s\.io\s+\[\]\s+\[\]\s+\[create\]/);
  });

  test("RBAC escalation: a user grants only what they hold", () => {
    const kc = path.join(dir, "lab.conf");
    ok(admin(), [
      "create",
      "role",
      "rbac-writer",
      "-n",
      "prod",
      "--verb=create,get",
      "--resource=roles.rbac.authorization.k8s.io,rolebindings.rbac.authorization.k8s.io",
    ]);
    ok(admin(), [
      "create",
      "rolebinding",
      "mike-rbac-writer",
      "-n",
      "prod",
      "--role=rbac-writer",
      "--user=mikeadmin",
    ]);
    // Within what mike holds: allowed.
    ok(kc, [
      "--context=mike-admin",
      "create",
      "role",
      "pod-reader",
      "--verb=get",
      "--resource=pods",
    ]);
    const escalate = as(kc, [
      "--context=mike-admin",
      "create",
      "role",
      "secret-reader",
      "--verb=get",
      "--resource=secrets",
    ]);
    assert.match(
      escalate.stderr,
      /roles\.rbac\.authorization\.k8s\.io "secret-reader" is forbidden: user "mikeadmin" \(groups=\["robotnik\.io" "system:authenticated"\]\) is attempting to grant RBAC permissions not currently held:\n\{APIGroups:\[""\], Resources:\["secrets"\], Verbs:\["get"\]\}/,
    );
    const bind = as(kc, [
      "--context=mike-admin",
      "create",
      "rolebinding",
      "mike-admin-everything",
      "--clusterrole=admin",
      "--user=mikeadmin",
    ]);
    assert.match(
      bind.stderr,
      /rolebindings\.rbac\.authorization\.k8s\.io "mike-admin-everything" is forbidden: user "mikeadmin"/,
    );
  });

  test("component identities: the scheduler binds pods but reads no secrets", () => {
    const sched = path.join(dir, "scheduler.conf");
    assert.equal(
      as(sched, [
        "auth",
        "can-i",
        "create",
        "pods",
        "--subresource=binding",
        "-n",
        "default",
      ]).stdout.trim(),
      "yes",
    );
    assert.equal(
      as(sched, ["auth", "can-i", "get", "secrets", "-n", "default"]).stdout.trim(),
      "no",
    );
    const denied = as(sched, ["get", "secrets", "-n", "kube-system"]);
    assert.match(
      denied.stderr,
      /secrets is forbidden: User "system:kube-scheduler" cannot list resource "secrets" in API group "" in the namespace "kube-system"/,
    );
    const cm = path.join(dir, "controller-manager.conf");
    ok(cm, ["get", "deployments,replicasets,pods", "-A"]);
    assert.equal(
      as(cm, ["auth", "can-i", "--as=jean.doe", "get", "pods"]).code,
      1,
      "no impersonation",
    );
  });

  test("a node reads only the secrets its own pods use (Node authorizer)", () => {
    const nodeA = path.join(dir, "kubelet-node-a.conf");
    ok(admin(), ["create", "secret", "generic", "s-a", "--from-literal=k=v"]);
    ok(admin(), ["create", "secret", "generic", "s-b", "--from-literal=k=v"]);
    const denied = as(nodeA, ["get", "secret", "s-a"]);
    assert.match(
      denied.stderr,
      /secrets "s-a" is forbidden: User "system:node:node-a" cannot get resource "secrets" in API group "" in the namespace "default": no relationship found between node 'node-a' and this object/,
    );
    const pod = (name: string, node: string, secret: string) => `apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  nodeName: ${node}
  containers: [{name: c, image: busybox, envFrom: [{secretRef: {name: ${secret}}}]}]
`;
    ok(admin(), ["create", "-f", "-"], pod("pa", "node-a", "s-a"));
    ok(admin(), ["create", "-f", "-"], pod("pb", "node-b", "s-b"));
    // The node graph follows the pods: the grant arrives within moments.
    let got = as(nodeA, ["get", "secret", "s-a", "-o", "name"]);
    for (let i = 0; i < 50 && got.code !== 0; i++)
      got = as(nodeA, ["get", "secret", "s-a", "-o", "name"]);
    assert.equal(got.stdout.trim(), "secret/s-a");
    assert.match(as(nodeA, ["get", "secret", "s-b"]).stderr, /forbidden/);
    ok(nodeA, ["get", "pods", "-A", "--field-selector=spec.nodeName=node-a"]);
  });

  test("SubjectAccessReview for jean.doe answers as RBAC says", () => {
    const sar = `apiVersion: authorization.k8s.io/v1
kind: SubjectAccessReview
spec:
  user: jean.doe
  resourceAttributes:
    namespace: kube-system
    verb: get
    resource: pods
`;
    const review = () =>
      (
        JSON.parse(ok(admin(), ["create", "-f", "-", "-o", "json"], sar)) as {
          status: { allowed: boolean; reason?: string };
        }
      ).status;
    assert.equal(review().allowed, false);
    const no = as(admin(), ["auth", "can-i", "get", "pods", "-n", "kube-system", "--as=jean.doe"]);
    assert.equal(no.stdout.trim(), "no");
    ok(admin(), [
      "create",
      "rolebinding",
      "jean-view",
      "--clusterrole=view",
      "--user=jean.doe",
      "-n",
      "kube-system",
    ]);
    let status = review();
    for (let i = 0; i < 50 && !status.allowed; i++) status = review();
    assert.equal(status.allowed, true);
    assert.match(
      status.reason ?? "",
      /RBAC: allowed by RoleBinding "jean-view\/kube-system" of ClusterRole "view" to User "jean.doe"/,
    );
    assert.equal(
      ok(admin(), ["auth", "can-i", "get", "pods", "-n", "kube-system", "--as=jean.doe"]).trim(),
      "yes",
    );
  });

  test("TokenRequest: kubectl create token; bound tokens die with their pod", async () => {
    ok(admin(), ["create", "serviceaccount", "robot"]);
    const token = ok(admin(), ["create", "token", "robot"]).trim();
    const whoami = (t: string) =>
      server.request(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}',
        { authorization: `Bearer ${t}` },
      );
    const r = await whoami(token);
    assert.equal(r.status, 201, r.body);
    const user = (
      JSON.parse(r.body) as { status: { userInfo: { username: string; groups: string[] } } }
    ).status.userInfo;
    assert.equal(user.username, "system:serviceaccount:default:robot");
    assert.deepEqual(user.groups, [
      "system:serviceaccounts",
      "system:serviceaccounts:default",
      "system:authenticated",
    ]);
    // A token whose signature was tampered with, or one for another audience, is refused.
    const tampered = token.slice(0, -4) + (token.endsWith("AAAA") ? "BBBB" : "AAAA");
    assert.equal((await whoami(tampered)).status, 401);
    const elsewhere = ok(admin(), [
      "create",
      "token",
      "robot",
      "--audience=https://elsewhere",
    ]).trim();
    assert.equal((await whoami(elsewhere)).status, 401);
    // Bound to a pod: valid while the pod lives.
    ok(
      admin(),
      ["create", "-f", "-"],
      "apiVersion: v1\nkind: Pod\nmetadata: {name: robot-pod}\nspec:\n  serviceAccountName: robot\n  containers: [{name: c, image: busybox}]\n",
    );
    const bound = ok(admin(), [
      "create",
      "token",
      "robot",
      "--bound-object-kind=Pod",
      "--bound-object-name=robot-pod",
    ]).trim();
    assert.equal((await whoami(bound)).status, 201);
    ok(admin(), ["delete", "pod", "robot-pod", "--grace-period=0", "--force"]);
    let after = await whoami(bound);
    for (let i = 0; i < 50 && after.status !== 401; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      after = await whoami(bound);
    }
    assert.equal(after.status, 401);
    const short = as(admin(), ["create", "token", "robot", "--duration=1m"]);
    assert.match(short.stderr, /may not specify a duration less than 10 minutes/);
  });

  test("CertificateSigningRequest: kubectl certificate approve and deny", () => {
    const key = path.join(dir, "csr-user.key");
    const csr = path.join(dir, "csr-user.csr");
    run("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key]);
    run("openssl", ["req", "-new", "-key", key, "-out", csr, "-subj", "/CN=csr-user/O=dev"]);
    const request = fs.readFileSync(csr).toString("base64");
    for (const name of ["to-approve", "to-deny"]) {
      ok(
        admin(),
        ["create", "-f", "-"],
        `apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata: {name: ${name}}
spec:
  request: ${request}
  signerName: kubernetes.io/kube-apiserver-client
  usages: [client auth]
`,
      );
    }
    ok(admin(), ["certificate", "approve", "to-approve"]);
    ok(admin(), ["certificate", "deny", "to-deny"]);
    const list = ok(admin(), ["get", "csr"]);
    assert.match(
      list,
      /^to-approve\s+\S+\s+kubernetes\.io\/kube-apiserver-client\s+kubernetes-admin\s+<none>\s+Approved$/m,
    );
    assert.match(
      list,
      /^to-deny\s+\S+\s+kubernetes\.io\/kube-apiserver-client\s+kubernetes-admin\s+<none>\s+Denied$/m,
    );
    const approved = JSON.parse(ok(admin(), ["get", "csr", "to-approve", "-o", "json"])) as {
      status: { conditions: Array<{ type: string; status: string; reason: string }> };
      spec: { username: string; groups: string[] };
    };
    assert.deepEqual(
      approved.status.conditions.map((c) => [c.type, c.status, c.reason]),
      [["Approved", "True", "KubectlApprove"]],
    );
    assert.equal(approved.spec.username, "kubernetes-admin");
  });

  test("tokens and certificates: a static token works; forged tokens and foreign CAs get 401", async () => {
    const get = (headers: Record<string, string>, opts: https.RequestOptions = {}) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = https.request(
          {
            host: "127.0.0.1",
            port: server.securePort,
            path: "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            method: "POST",
            ca: fs.readFileSync(path.join(pki, "ca.crt")),
            headers: { "content-type": "application/json", ...headers },
            ...opts,
          },
          (res) => {
            let body = "";
            res.on("data", (c: Buffer) => (body += c.toString()));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on("error", reject);
        req.end('{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}');
      });
    const jane = await get({ authorization: "Bearer static-token-1" });
    assert.equal(jane.status, 201);
    assert.deepEqual((JSON.parse(jane.body) as { status: { userInfo: unknown } }).status.userInfo, {
      username: "jane",
      uid: "u-1",
      groups: ["developers", "ops", "system:authenticated"],
    });
    const forged = await get({
      authorization:
        "Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2t1YmVybmV0ZXMuZGVmYXVsdC5zdmMuY2x1c3Rlci5sb2NhbCJ9.c2ln",
    });
    assert.equal(forged.status, 401);
    assert.equal((JSON.parse(forged.body) as { message: string }).message, "Unauthorized");
    // A client certificate from another CA.
    const other = path.join(dir, "other");
    run(k8tsBin, ["certs", "ca", "admin", `--cert-dir=${other}`]);
    const foreign = await get(
      {},
      {
        cert: fs.readFileSync(path.join(other, "admin.crt")),
        key: fs.readFileSync(path.join(other, "admin.key")),
      },
    );
    assert.equal(foreign.status, 401);
    // Anonymous requests are system:anonymous, who may read /version and /healthz but not pods.
    const anon = await server.request("GET", "/api/v1/namespaces/default/pods");
    assert.equal(anon.status, 403);
    assert.match(anon.body, /User \\"system:anonymous\\" cannot list resource \\"pods\\"/);
    assert.equal((await server.request("GET", "/version")).status, 200);
  });
});

test("malformed certificates, keys, token files and policies stop the API server, naming the file", async () => {
  const t = await tempDir("k8ts-auth-bad-");
  try {
    const bad = path.join(t.path, "bad.pem");
    fs.writeFileSync(bad, "not a PEM file\n");
    const tokens = path.join(t.path, "tokens.csv");
    fs.writeFileSync(tokens, "only,two\n");
    const policy = path.join(t.path, "policy.yaml");
    fs.writeFileSync(policy, "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n");
    const cases: Array<[string[], RegExp]> = [
      [
        [`--client-ca-file=${bad}`],
        /data does not contain any valid RSA or ECDSA certificates in .*bad\.pem/,
      ],
      [
        [`--tls-cert-file=${bad}`, `--tls-private-key-file=${bad}`],
        /unable to load server certificate from .*bad\.pem/,
      ],
      [[`--service-account-key-file=${bad}`], /error reading public key file .*bad\.pem/],
      [[`--token-auth-file=${tokens}`], /token file '.*tokens\.csv' must have at least 3 columns/],
      [
        [`--audit-policy-file=${policy}`, `--audit-log-path=${path.join(t.path, "audit.log")}`],
        /loading audit policy file: policy contains no rules: from file .*policy\.yaml/,
      ],
      [[`--client-ca-file=${path.join(t.path, "missing.pem")}`], /missing\.pem: ENOENT/],
      [["--authorization-mode=RBAC,Magic"], /authorization-mode "Magic" is not a valid mode/],
    ];
    for (const [args, message] of cases) {
      const r = spawnSync(
        k8tsBin,
        [
          "apiserver",
          `--data-dir=${path.join(t.path, "data")}`,
          `--cert-dir=${path.join(t.path, "certs")}`,
          "--bind-address=127.0.0.1",
          "--secure-port=0",
          ...args,
        ],
        { encoding: "utf8", timeout: 30_000 },
      );
      assert.equal(r.status, 1, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  } finally {
    t.remove();
  }
});
