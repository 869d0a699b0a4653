import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import https from "node:https";
import { fileURLToPath } from "node:url";
import { freePort } from "../../src/testing/net.js";
import { kubeconfigYaml } from "../../src/client/kubeconfig.js";

export { freePort };

/**
 * Writes a service-account signing key pair (RSA 2048, the private key in `format`) into `dir`
 * as sa.key and sa.pub, and answers their paths and the private key.
 */
export function writeServiceAccountKeys(
  dir: string,
  format: "pkcs1" | "pkcs8" = "pkcs1",
): { key: string; pub: string; privateKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const key = path.join(dir, "sa.key");
  const pub = path.join(dir, "sa.pub");
  fs.writeFileSync(key, privateKey.export({ type: format, format: "pem" }));
  fs.writeFileSync(pub, publicKey.export({ type: "spki", format: "pem" }));
  return { key, pub, privateKey };
}

/** A --token-auth-file making the token of TestAPIServer's kubeconfig an administrator. */
export function writeAdminTokenFile(dir: string): string {
  const file = path.join(dir, "tokens.csv");
  fs.writeFileSync(file, 'not-checked-yet,admin,admin-uid,"system:masters"\n');
  return file;
}

export const k8tsBin = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../../../bin/k8ts",
);

/** A `k8ts apiserver` child process on loopback ports with its own data and cert dirs. */
export class TestAPIServer {
  child: ChildProcess | undefined;
  securePort = 0;
  private stopping = false;
  log = "";

  constructor(
    readonly dir: string,
    readonly extraArgs: string[] = [],
    /** The CA that signed the serving certificate, when it is not the generated self-signed one. */
    private readonly servingCA?: string,
  ) {}

  get url(): string {
    return `https://127.0.0.1:${this.securePort}`;
  }

  get caFile(): string {
    return this.servingCA ?? path.join(this.dir, "certs", "apiserver.crt");
  }

  /** Starts the server (again, on the same port and data when restarting) and waits until ready. */
  async start(): Promise<void> {
    if (!this.securePort) this.securePort = await freePort();
    const child = spawn(
      k8tsBin,
      [
        "apiserver",
        `--data-dir=${path.join(this.dir, "data")}`,
        `--cert-dir=${path.join(this.dir, "certs")}`,
        `--secure-port=${this.securePort}`,
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        ...this.admissionArgs(),
        ...this.extraArgs,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.child = child;
    child.stdout!.on("data", (d: Buffer) => (this.log += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (this.log += d.toString()));
    child.once("exit", (code, sig) => {
      if (!this.stopping)
        process.stderr.write(`k8ts apiserver exited (${code ?? sig}):\n${this.log}\n`);
    });
    this.stopping = false;
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`k8ts apiserver exited: ${this.log}`);
      try {
        const r = await this.request("GET", "/readyz");
        if (r.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`k8ts apiserver not ready: ${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * As upstream's integration tests: without the controller manager no namespace has a
   * `default` ServiceAccount, so the ServiceAccount plugin is off unless the caller's flags
   * choose the plugins themselves.
   */
  private admissionArgs(): string[] {
    const chooses = this.extraArgs.some(
      (a, i) =>
        a.startsWith("--disable-admission-plugins") ||
        (a.startsWith("--enable-admission-plugins") &&
          (a.includes("ServiceAccount") ||
            (!a.includes("=") && !!this.extraArgs[i + 1]?.includes("ServiceAccount")))),
    );
    return chooses ? [] : ["--disable-admission-plugins=ServiceAccount"];
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    this.stopping = true;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }

  request(
    method: string,
    urlPath: string,
    body?: string | Buffer,
    headers: Record<string, string> = {},
  ): Promise<{
    status: number;
    headers: Record<string, string | string[] | undefined>;
    body: string;
  }> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: "127.0.0.1",
          port: this.securePort,
          method,
          path: urlPath,
          ca: fs.readFileSync(this.caFile),
          headers: { "content-type": "application/json", ...headers },
        },
        (res) => {
          let data = "";
          res.on("data", (c: Buffer) => (data += c.toString()));
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }),
          );
        },
      );
      req.on("error", reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  /**
   * A kubeconfig for this server. Its token is not checked yet (the server allows every request
   * until authentication exists); without any credential kubectl would prompt for a password.
   */
  writeKubeconfig(file: string): string {
    fs.writeFileSync(
      file,
      kubeconfigYaml({
        server: this.url,
        caFile: this.caFile,
        user: "anonymous",
        token: "not-checked-yet",
      }),
    );
    return file;
  }
}

/**
 * The path of a versioned kubectl ("kubectl.1.27"): they are installed beside the real file of the
 * `kubectl` dispatcher, which need not be on PATH.
 */
export function kubectlBinary(name: string): string {
  if (name === "kubectl") return name;
  const which = spawnSync("sh", ["-c", "command -v kubectl"], { encoding: "utf8" }).stdout.trim();
  const candidate = path.join(path.dirname(fs.realpathSync(which)), name);
  if (!fs.existsSync(candidate)) throw new Error(`${name} is not installed beside ${which}`);
  return candidate;
}

/** Runs a real kubectl (`bin` picks a version, e.g. "kubectl.1.27") with its own kubeconfig and cache. */
export function kubectl(
  kubeconfig: string,
  cacheDir: string,
  args: string[],
  opts: { bin?: string; input?: string } = {},
): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(
    kubectlBinary(opts.bin ?? "kubectl"),
    [`--kubeconfig=${kubeconfig}`, `--cache-dir=${cacheDir}`, ...args],
    {
      encoding: "utf8",
      input: opts.input,
      timeout: 60_000,
    },
  );
  if (r.error) throw new Error(`${opts.bin ?? "kubectl"} ${args.join(" ")}: ${r.error.message}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
