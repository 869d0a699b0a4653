import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import { tempDir } from "../testing/tmp.js";
import {
  buildConfigFromFlags,
  ConfigError,
  defaultUserAgent,
  inClusterConfig,
  loadKubeconfig,
} from "./config.js";

const tmp = tempDir("k8ts-client-config-");
after(() => tmp.remove());

function write(rel: string, text: string): string {
  const file = path.join(tmp.path, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

const b64 = (s: string) => Buffer.from(s).toString("base64");

const first = write(
  "a/config",
  `apiVersion: v1
kind: Config
current-context: admin
clusters:
- name: lab
  cluster:
    server: https://10.240.0.10:6443
    certificate-authority: pki/ca.crt
- name: shared
  cluster: {server: "https://first.example:6443", insecure-skip-tls-verify: true}
users:
- name: admin
  user:
    client-certificate: pki/admin.crt
    client-key: /ABSOLUTE-KEY
- name: tok
  user: {tokenFile: token.txt}
contexts:
- name: admin
  context: {cluster: lab, user: admin, namespace: prod}
- name: tokctx
  context: {cluster: shared, user: tok}
`,
);
write("a/pki/ca.crt", "CA-PEM");
write("a/pki/admin.crt", "ADMIN-CERT");
const keyFile = write("a/pki/admin.key", "ADMIN-KEY");
fs.writeFileSync(first, fs.readFileSync(first, "utf8").replace("/ABSOLUTE-KEY", keyFile));
write("a/token.txt", "file-token\n");

const second = write(
  "b/config",
  `apiVersion: v1
kind: Config
current-context: embedded
clusters:
- name: shared
  cluster: {server: "https://second.example:6443"}
- name: emb
  cluster:
    server: 127.0.0.1:6443
    certificate-authority-data: ${b64("EMBEDDED-CA")}
    tls-server-name: kubernetes
users:
- name: embuser
  user:
    client-certificate-data: ${b64("EMB-CERT")}
    client-key-data: ${b64("EMB-KEY")}
- name: basic
  user: {username: alice, password: secret}
contexts:
- name: embedded
  context: {cluster: emb, user: embuser}
- name: basicctx
  context: {cluster: emb, user: basic}
`,
);

test("--kubeconfig: current context, file references relative to the kubeconfig, namespace", () => {
  const c = loadKubeconfig({ kubeconfig: first, env: {} });
  assert.equal(c.server, "https://10.240.0.10:6443");
  assert.equal(c.ca?.toString(), "CA-PEM");
  assert.equal(c.cert?.toString(), "ADMIN-CERT");
  assert.equal(c.key?.toString(), "ADMIN-KEY");
  assert.equal(c.namespace, "prod");
  assert.equal(c.token, undefined);
});

test("--context and --master override the kubeconfig's choice", () => {
  const c = loadKubeconfig({ kubeconfig: first, context: "tokctx", env: {} });
  assert.equal(c.server, "https://first.example:6443");
  assert.equal(c.insecureSkipTLSVerify, true);
  assert.equal(c.tokenFile, path.join(tmp.path, "a", "token.txt"));
  assert.equal(c.namespace, "default");
  const m = loadKubeconfig({ kubeconfig: first, master: "http://127.0.0.1:8080", env: {} });
  assert.equal(m.server, "http://127.0.0.1:8080");
  assert.equal(m.cert?.toString(), "ADMIN-CERT", "credentials still come from the context");
});

test("KUBECONFIG lists merge: the first file to name an entry or a current-context wins", () => {
  const env = { KUBECONFIG: [path.join(tmp.path, "missing"), first, second].join(path.delimiter) };
  const c = loadKubeconfig({ env });
  assert.equal(c.server, "https://10.240.0.10:6443", "current-context of the first file");
  const shared = loadKubeconfig({ env, context: "tokctx" });
  assert.equal(shared.server, "https://first.example:6443", "cluster 'shared' from the first file");
  const emb = loadKubeconfig({ env, context: "embedded" });
  assert.equal(emb.server, "https://127.0.0.1:6443", "host:port becomes an https URL");
  assert.equal(emb.ca?.toString(), "EMBEDDED-CA");
  assert.equal(emb.cert?.toString(), "EMB-CERT");
  assert.equal(emb.key?.toString(), "EMB-KEY");
  assert.equal(emb.tlsServerName, "kubernetes");
  const basic = loadKubeconfig({ env, context: "basicctx" });
  assert.equal(basic.username, "alice");
  assert.equal(basic.password, "secret");
  // The order decides.
  const reversed = loadKubeconfig({
    env: { KUBECONFIG: [second, first].join(path.delimiter) },
    context: "tokctx",
  });
  assert.equal(reversed.server, "https://second.example:6443");
});

test("~/.kube/config when neither --kubeconfig nor KUBECONFIG is set", () => {
  const home = path.join(tmp.path, "home");
  fs.mkdirSync(path.join(home, ".kube"), { recursive: true });
  fs.copyFileSync(second, path.join(home, ".kube", "config"));
  assert.equal(loadKubeconfig({ env: { HOME: home } }).server, "https://127.0.0.1:6443");
  assert.throws(
    () => loadKubeconfig({ env: { HOME: path.join(tmp.path, "nohome") } }),
    /no configuration has been provided/,
  );
});

test("errors name what is wrong", () => {
  assert.throws(
    () => loadKubeconfig({ kubeconfig: path.join(tmp.path, "nope"), env: {} }),
    (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /nope: no such file or directory/);
      return true;
    },
  );
  assert.throws(
    () => loadKubeconfig({ kubeconfig: first, context: "ghost", env: {} }),
    /invalid configuration: context was not found for specified context: ghost/,
  );
  const bad = write(
    "bad/config",
    `clusters:
- name: c
  cluster: {server: "https://x:1", certificate-authority-data: ${b64("CA")}, insecure-skip-tls-verify: true}
- name: noserver
  cluster: {}
users:
- name: e
  user: {exec: {command: aws}}
- name: halfcert
  user: {client-certificate-data: ${b64("C")}}
contexts:
- {name: both, context: {cluster: c}}
- {name: exec, context: {cluster: noserver, user: e}}
- {name: noserver, context: {cluster: noserver}}
- {name: half, context: {cluster: noserver, user: halfcert}}
`,
  );
  assert.throws(
    () => loadKubeconfig({ kubeconfig: bad, context: "both", env: {} }),
    /root certificates file with the insecure flag is not allowed/,
  );
  assert.throws(
    () => loadKubeconfig({ kubeconfig: bad, context: "noserver", env: {} }),
    /no server found for cluster "noserver"/,
  );
  assert.throws(
    () => loadKubeconfig({ kubeconfig: bad, context: "exec", master: "https://y:1", env: {} }),
    /credential plugins are not supported/,
  );
  assert.throws(
    () => loadKubeconfig({ kubeconfig: bad, context: "half", master: "https://y:1", env: {} }),
    /client-key-data or client-key must be specified for halfcert/,
  );
  const notYaml = write("bad/notyaml", "clusters: [unclosed");
  assert.throws(
    () => loadKubeconfig({ kubeconfig: notYaml, env: {} }),
    /error loading config file/,
  );
});

test("in-cluster: service host and port, mounted token, CA and namespace", () => {
  const sa = path.join(tmp.path, "sa");
  fs.mkdirSync(sa);
  fs.writeFileSync(path.join(sa, "token"), "sa-token\n");
  fs.writeFileSync(path.join(sa, "ca.crt"), "SA-CA");
  fs.writeFileSync(path.join(sa, "namespace"), "kube-system");
  const env = { KUBERNETES_SERVICE_HOST: "10.32.0.1", KUBERNETES_SERVICE_PORT: "443" };
  const c = inClusterConfig({ env, serviceAccountDir: sa });
  assert.equal(c.server, "https://10.32.0.1:443");
  assert.equal(c.token, "sa-token");
  assert.equal(c.tokenFile, path.join(sa, "token"));
  assert.equal(c.ca?.toString(), "SA-CA");
  assert.equal(c.namespace, "kube-system");
  const v6 = inClusterConfig({
    env: { ...env, KUBERNETES_SERVICE_HOST: "fd00::1" },
    serviceAccountDir: sa,
  });
  assert.equal(v6.server, "https://[fd00::1]:443");
  assert.throws(
    () => inClusterConfig({ env: {}, serviceAccountDir: sa }),
    /KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined/,
  );
});

test("components' --master/--kubeconfig: neither means in-cluster, KUBECONFIG is not read", () => {
  const env = { KUBECONFIG: first };
  assert.throws(
    () =>
      buildConfigFromFlags(undefined, undefined, {
        env,
        serviceAccountDir: path.join(tmp.path, "nosa"),
      }),
    /neither --kubeconfig nor --master was specified/,
  );
  const m = buildConfigFromFlags("http://127.0.0.1:8080", undefined, { env });
  assert.equal(m.server, "http://127.0.0.1:8080");
  assert.equal(m.cert, undefined);
  const k = buildConfigFromFlags("https://lb:6443", first, { env: {} });
  assert.equal(k.server, "https://lb:6443");
  assert.equal(k.cert?.toString(), "ADMIN-CERT");
});

test("user agent in client-go's form", () => {
  assert.match(
    defaultUserAgent("k8ts-controller-manager", "v1.32.4+k8ts"),
    /^k8ts-controller-manager\/v1\.32\.4\+k8ts \(linux\/(amd64|arm64)\) kubernetes\/k8ts$/,
  );
});
