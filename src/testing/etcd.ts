/**
 * Runs real etcd servers for tests and benchmarks: single members or small clusters on loopback,
 * optionally with TLS and client certificates, each in its own temporary data directory.
 *
 * A server never outlives the process that started it: every member runs under a small shell
 * guard that kills it (by its PID) as soon as the starting process goes away, however it goes
 * away, and an exit hook kills the remaining members and removes their temporary directories.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePorts } from "./net.js";

const ETCD_BINARY = process.env.K8TS_ETCD_BINARY ?? "/usr/bin/etcd";
const STARTUP_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;

export interface EtcdServer {
  /** Client URLs, as given to `--etcd-servers`. */
  readonly endpoints: string[];
  /** PID of the etcd process itself (it changes on restart). */
  readonly pid: number;
  readonly dataDir: string;
  /** With TLS: the CA that signed the server certificate, and a client certificate it accepts. */
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  /** SIGTERM (then SIGKILL after a grace period), wait for exit, remove a temporary data dir. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit; the data dir stays for restart(). */
  kill(): Promise<void>;
  /** Start again on the same ports and data dir, and wait until healthy. */
  restart(): Promise<void>;
}

export interface EtcdCluster {
  readonly members: EtcdServer[];
  /** Every member's client URL, in member order. */
  readonly endpoints: string[];
  stop(): Promise<void>;
}

export interface StartEtcdOptions {
  tls?: boolean;
  /** Data directory to use (kept on stop); a temporary one otherwise. */
  dataDir?: string;
  extraArgs?: string[];
}

export interface TestCertificates {
  caFile: string;
  caKeyFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
}

const running = new Set<EtcdMember>();
const temporaryDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const member of running) member.killSync();
    for (const dir of temporaryDirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort at exit
      }
    }
  });
}

/**
 * Runs `etcd` under /bin/sh: prints etcd's PID, kills etcd with SIGKILL when the guard's stdin
 * (a pipe from this process) reaches EOF, and exits with etcd's status when etcd exits.
 */
const GUARD_SCRIPT = `
exec 3<&0
"$@" </dev/null 3<&- &
pid=$!
echo "$pid"
( read -r _ <&3; kill -KILL "$pid" 2>/dev/null ) &
guard=$!
exec 3<&-
wait "$pid"
code=$?
kill "$guard" 2>/dev/null
exit "$code"
`;

interface MemberConfig {
  name: string;
  clientPort: number;
  peerPort: number;
  initialCluster: string;
  clusterToken: string;
  dataDir: string;
  certs?: TestCertificates;
  extraArgs: string[];
}

class EtcdMember implements EtcdServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private etcdPid = 0;
  private stderrTail = "";

  constructor(private readonly config: MemberConfig) {}

  get endpoints(): string[] {
    return [this.clientURL];
  }

  get clientURL(): string {
    const scheme = this.config.certs ? "https" : "http";
    return `${scheme}://127.0.0.1:${this.config.clientPort}`;
  }

  get pid(): number {
    return this.etcdPid;
  }

  get dataDir(): string {
    return this.config.dataDir;
  }

  get caFile(): string | undefined {
    return this.config.certs?.caFile;
  }

  get certFile(): string | undefined {
    return this.config.certs?.clientCertFile;
  }

  get keyFile(): string | undefined {
    return this.config.certs?.clientKeyFile;
  }

  private args(): string[] {
    const c = this.config;
    const peerURL = `http://127.0.0.1:${c.peerPort}`;
    const args = [
      `--name=${c.name}`,
      `--data-dir=${c.dataDir}`,
      `--listen-client-urls=${this.clientURL}`,
      `--advertise-client-urls=${this.clientURL}`,
      `--listen-peer-urls=${peerURL}`,
      `--initial-advertise-peer-urls=${peerURL}`,
      `--initial-cluster=${c.initialCluster}`,
      `--initial-cluster-token=${c.clusterToken}`,
      "--initial-cluster-state=new",
      "--max-request-bytes=3145728",
      `--quota-backend-bytes=${4 * 1024 * 1024 * 1024}`,
      "--logger=zap",
      "--log-outputs=stderr",
      "--log-level=warn",
    ];
    if (c.certs) {
      args.push(
        `--cert-file=${c.certs.serverCertFile}`,
        `--key-file=${c.certs.serverKeyFile}`,
        "--client-cert-auth",
        `--trusted-ca-file=${c.certs.caFile}`,
      );
    }
    return [...args, ...c.extraArgs];
  }

  /** Starts the process; resolves once etcd's PID is known (not yet healthy). */
  async spawn(): Promise<void> {
    if (this.child) throw new Error(`etcd ${this.config.name} is already running`);
    installExitHook();
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("ETCD_")) env[k] = v;
    const child = spawn(
      "/bin/sh",
      ["-c", GUARD_SCRIPT, "etcd-guard", ETCD_BINARY, ...this.args()],
      {
        stdio: ["pipe", "pipe", "pipe"],
        env,
      },
    );
    this.child = child;
    this.stderrTail = "";
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-8192);
    });
    child.stdin!.on("error", () => {});
    this.exited = new Promise<void>((resolve) => {
      child.once("exit", () => {
        running.delete(this);
        this.child = undefined;
        resolve();
      });
    });
    running.add(this);
    let out = "";
    child.stdout!.setEncoding("utf8");
    const pid = await new Promise<number>((resolve, reject) => {
      const onData = (chunk: string) => {
        out += chunk;
        const nl = out.indexOf("\n");
        if (nl < 0) return;
        child.stdout!.off("data", onData);
        child.stdout!.resume();
        const n = Number(out.slice(0, nl).trim());
        if (Number.isInteger(n) && n > 0) resolve(n);
        else reject(new Error(`etcd guard printed no PID: ${JSON.stringify(out)}`));
      };
      child.stdout!.on("data", onData);
      child.once("error", reject);
      child.once("exit", (code) => reject(new Error(`etcd guard exited early (${code})`)));
    });
    this.etcdPid = pid;
  }

  /** Polls /health until it answers true, or fails when etcd exits or the deadline passes. */
  async waitHealthy(deadline = Date.now() + STARTUP_TIMEOUT_MS): Promise<void> {
    let exited = false;
    void this.exited.then(() => (exited = true));
    let last = "no answer yet";
    while (Date.now() < deadline) {
      if (exited || !this.child) {
        throw new Error(`etcd ${this.config.name} exited during startup:\n${this.stderrTail}`);
      }
      try {
        const body = await this.getHealth();
        if (/"health"\s*:\s*"true"/.test(body)) return;
        last = body;
      } catch (err) {
        last = String(err);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(
      `etcd ${this.config.name} not healthy after ${STARTUP_TIMEOUT_MS} ms (${last}):\n${this.stderrTail}`,
    );
  }

  private getHealth(): Promise<string> {
    const certs = this.config.certs;
    const url = `${this.clientURL}/health`;
    return new Promise((resolve, reject) => {
      const onResponse = (res: http.IncomingMessage) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve(body));
        res.on("error", reject);
      };
      const req = certs
        ? https.get(
            url,
            {
              ca: readFileSync(certs.caFile),
              cert: readFileSync(certs.clientCertFile),
              key: readFileSync(certs.clientKeyFile),
              agent: false,
              timeout: 1000,
            },
            onResponse,
          )
        : http.get(url, { agent: false, timeout: 1000 }, onResponse);
      req.on("timeout", () => req.destroy(new Error("health check timed out")));
      req.on("error", reject);
    });
  }

  private signal(sig: NodeJS.Signals): void {
    if (!this.child || this.etcdPid <= 0) return;
    try {
      process.kill(this.etcdPid, sig);
    } catch {
      // already gone
    }
  }

  killSync(): void {
    this.signal("SIGKILL");
  }

  async kill(): Promise<void> {
    if (!this.child) return;
    this.signal("SIGKILL");
    await this.exited;
  }

  async stop(): Promise<void> {
    if (this.child) {
      this.signal("SIGTERM");
      const timer = setTimeout(() => this.signal("SIGKILL"), STOP_GRACE_MS);
      await this.exited;
      clearTimeout(timer);
    }
  }

  async restart(): Promise<void> {
    if (this.child) await this.kill();
    await this.spawn();
    await this.waitHealthy();
  }
}

async function makeTempDir(prefix: string): Promise<string> {
  installExitHook();
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temporaryDirs.add(dir);
  return dir;
}

const execFileAsync = promisify(execFile);

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await execFileAsync("openssl", args, { cwd });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr ?? e.message}`);
  }
}

/**
 * Creates a fresh CA in `dir`, a server certificate for 127.0.0.1/localhost and a client
 * certificate, all signed by that CA (P-256 keys, valid for two days).
 */
export async function generateCertificates(dir: string): Promise<TestCertificates> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl(
    ["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2"].concat([
      "-subj",
      "/CN=k8ts-test-ca",
    ]),
    dir,
  );
  const issue = async (name: string, cn: string, ext: string) => {
    await writeFile(join(dir, `${name}.ext`), ext);
    await openssl(
      ["req", "-new", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`],
      dir,
    );
    await openssl(
      ["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key"].concat([
        "-CAcreateserial",
        "-out",
        `${name}.crt`,
        "-days",
        "2",
        "-extfile",
        `${name}.ext`,
      ]),
      dir,
    );
  };
  await issue(
    "server",
    "etcd-server",
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
  );
  await issue("client", "k8ts-apiserver", "extendedKeyUsage=clientAuth\n");
  return {
    caFile: join(dir, "ca.crt"),
    caKeyFile: join(dir, "ca.key"),
    serverCertFile: join(dir, "server.crt"),
    serverKeyFile: join(dir, "server.key"),
    clientCertFile: join(dir, "client.crt"),
    clientKeyFile: join(dir, "client.key"),
  };
}

/** Starts a single-member etcd on free loopback ports and waits until it is healthy. */
export async function startEtcd(opts: StartEtcdOptions = {}): Promise<EtcdServer> {
  if (!existsSync(ETCD_BINARY)) throw new Error(`etcd binary not found at ${ETCD_BINARY}`);
  const tempDirs: string[] = [];
  let dataDir = opts.dataDir;
  let certs: TestCertificates | undefined;
  if (dataDir === undefined || opts.tls) tempDirs.push(await makeTempDir("k8ts-etcd-"));
  if (dataDir === undefined) dataDir = join(tempDirs[0]!, "data");
  if (opts.tls) {
    const certDir = join(tempDirs[0]!, "certs");
    await mkdir(certDir);
    certs = await generateCertificates(certDir);
  }
  const [clientPort, peerPort] = (await freePorts(2)) as [number, number];
  const name = "default";
  const member = new EtcdMember({
    name,
    clientPort,
    peerPort,
    initialCluster: `${name}=http://127.0.0.1:${peerPort}`,
    clusterToken: `k8ts-${process.pid}-${clientPort}`,
    dataDir,
    certs,
    extraArgs: opts.extraArgs ?? [],
  });
  const server = new OwnedDirsServer(member, tempDirs);
  try {
    await member.spawn();
    await member.waitHealthy();
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

/** A member plus the temporary directories (data, certificates) that stop() removes. */
class OwnedDirsServer implements EtcdServer {
  constructor(
    private readonly member: EtcdMember,
    private readonly tempDirs: string[],
  ) {}
  get endpoints(): string[] {
    return this.member.endpoints;
  }
  get pid(): number {
    return this.member.pid;
  }
  get dataDir(): string {
    return this.member.dataDir;
  }
  get caFile(): string | undefined {
    return this.member.caFile;
  }
  get certFile(): string | undefined {
    return this.member.certFile;
  }
  get keyFile(): string | undefined {
    return this.member.keyFile;
  }
  async stop(): Promise<void> {
    await this.member.stop();
    for (const dir of this.tempDirs.splice(0)) {
      await rm(dir, { recursive: true, force: true });
      temporaryDirs.delete(dir);
    }
  }
  kill(): Promise<void> {
    return this.member.kill();
  }
  restart(): Promise<void> {
    return this.member.restart();
  }
}

/**
 * Starts an n-member etcd cluster on loopback (plain HTTP), each member with its own temporary
 * data dir, and waits until every member is healthy (a leader has been elected).
 */
export async function startEtcdCluster(
  n = 3,
  opts: { extraArgs?: string[] } = {},
): Promise<EtcdCluster> {
  if (!existsSync(ETCD_BINARY)) throw new Error(`etcd binary not found at ${ETCD_BINARY}`);
  const root = await makeTempDir("k8ts-etcd-cluster-");
  const ports = await freePorts(2 * n);
  const names = Array.from({ length: n }, (_, i) => `member${i}`);
  const initialCluster = names.map((name, i) => `${name}=http://127.0.0.1:${ports[2 * i + 1]}`);
  const token = `k8ts-${process.pid}-${ports[0]}`;
  const members = names.map(
    (name, i) =>
      new EtcdMember({
        name,
        clientPort: ports[2 * i]!,
        peerPort: ports[2 * i + 1]!,
        initialCluster: initialCluster.join(","),
        clusterToken: token,
        dataDir: join(root, name),
        extraArgs: opts.extraArgs ?? [],
      }),
  );
  // The data is thrown away, so members are killed: a graceful stop of every member at once
  // waits on leader transfers that cannot happen.
  const stop = async () => {
    await Promise.all(members.map((m) => m.kill()));
    await rm(root, { recursive: true, force: true });
    temporaryDirs.delete(root);
  };
  try {
    await Promise.all(members.map((m) => m.spawn()));
    await Promise.all(members.map((m) => m.waitHealthy()));
  } catch (err) {
    await stop();
    throw err;
  }
  return { members, endpoints: members.map((m) => m.clientURL), stop };
}
