/**
 * The PKI benchmark: how long `k8ts certs` takes to make the whole set (3 CAs, 13 certificates,
 * the service account key pair), in process and as the command a user runs, next to the same set
 * made with the openssl command line, the seeds' way, on the same machine.
 *
 *   node dist/bench/pki/main.js [--runs N]
 *
 * Prints a table, one line `BENCH_JSON {...}` with every figure, and a check of the goal. Exits 0
 * whatever the figures are; 1 only when the run itself fails.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ensurePKI, phaseNames, pkiItems, type PKIConfig } from "../../src/pki/certs.js";
import type { KeyAlgorithm } from "../../src/pki/ca.js";
import { formatMs, printGoals, printTable, summarize, timeRuns } from "../lib/stats.js";

const k8tsBin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../bin/k8ts");
const argRuns = process.argv.indexOf("--runs");
const RUNS = argRuns > 0 ? Number(process.argv[argRuns + 1]) : 20;

const root = fs.mkdtempSync(path.join(os.tmpdir(), "k8ts-bench-pki-"));
let seq = 0;
const freshDir = () => path.join(root, `run-${++seq}`);

function config(certDir: string, algorithm: KeyAlgorithm): PKIConfig {
  return {
    certDir,
    advertiseAddress: "192.0.2.10",
    serviceCIDRs: ["10.0.0.0/24"],
    dnsDomain: "cluster.local",
    nodeName: "bench-node",
    nodeIPs: ["192.0.2.10"],
    apiserverExtraSANs: [],
    algorithm,
  };
}

/** The same set with the openssl CLI: one `openssl req -x509` per CA and certificate. */
function opensslSet(dir: string): void {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  for (const item of pkiItems(config(dir, "ECDSA-P256"))) {
    const base = path.join(dir, item.baseName);
    fs.mkdirSync(path.dirname(base), { recursive: true });
    if (item.kind === "keypair") {
      execFileSync("openssl", [
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        `${base}.key`,
      ]);
      execFileSync("openssl", ["pkey", "-in", `${base}.key`, "-pubout", "-out", `${base}.pub`]);
      continue;
    }
    const subject = [
      ...(item.organizations ?? []).map((o) => `/O=${o}`),
      `/CN=${item.commonName}`,
    ].join("");
    const args = [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      `${base}.key`,
      "-out",
      `${base}.crt`,
      "-subj",
      subject,
    ];
    if (item.kind === "ca") {
      args.push(
        "-days",
        "3650",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign",
      );
    } else {
      const ca = pkiItems(config(dir, "ECDSA-P256")).find((i) => i.name === item.ca)!;
      const caBase = path.join(dir, ca.baseName);
      args.push(
        "-days",
        "365",
        "-CA",
        `${caBase}.crt`,
        "-CAkey",
        `${caBase}.key`,
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        "-addext",
        `extendedKeyUsage=${item.usages!.join(",")}`,
      );
      if (item.altNames) {
        const san = [
          ...item.altNames.dnsNames.map((n) => `DNS:${n}`),
          ...item.altNames.ips.map((n) => `IP:${n}`),
        ].join(",");
        args.push("-addext", `subjectAltName=${san}`);
      }
    }
    execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  }
}

async function main(): Promise<void> {
  const inProcess = summarize(
    await timeRuns(RUNS, () => ensurePKI(config(freshDir(), "ECDSA-P256"), phaseNames), 2),
  );
  const rsa = summarize(
    await timeRuns(Math.max(3, Math.floor(RUNS / 5)), () =>
      ensurePKI(config(freshDir(), "RSA-2048"), phaseNames),
    ),
  );
  const cli = summarize(
    await timeRuns(
      RUNS,
      () =>
        execFileSync(k8tsBin, [
          "certs",
          `--cert-dir=${freshDir()}`,
          "--node-name=bench-node",
          "--apiserver-advertise-address=192.0.2.10",
        ]),
      1,
    ),
  );
  const kept = summarize(
    await timeRuns(RUNS, () =>
      ensurePKI(config(path.join(root, "run-1"), "ECDSA-P256"), phaseNames),
    ),
  );
  const openssl = summarize(
    await timeRuns(Math.max(3, Math.floor(RUNS / 4)), () => opensslSet(freshDir()), 1),
  );

  printTable(
    [
      { what: "k8ts certs, in process, ECDSA P-256", ...row(inProcess) },
      { what: "k8ts certs, in process, RSA 2048", ...row(rsa) },
      { what: "k8ts certs, existing set checked and kept", ...row(kept) },
      { what: "bin/k8ts certs (process start included)", ...row(cli) },
      { what: "openssl CLI, same set, ECDSA P-256", ...row(openssl) },
    ],
    {
      title: `Whole PKI set (${phaseNames.length} items), ${RUNS} runs`,
      columns: ["what", "runs", "p50", "p90", "max"],
    },
  );
  console.log(
    "BENCH_JSON " +
      JSON.stringify({ inProcess, rsa, kept, cli, openssl, items: phaseNames.length }),
  );
  console.log();
  printGoals([
    {
      goal: "bin/k8ts certs makes the whole ECDSA set well under a second",
      target: "p90 < 500 ms",
      measured: formatMs(cli.p90),
      value: cli.p90,
      pass: cli.p90 < 500,
    },
    {
      goal: "faster than the openssl command line for the same set",
      target: "< openssl p50",
      measured: `${formatMs(cli.p50)} vs ${formatMs(openssl.p50)}`,
      pass: cli.p50 < openssl.p50,
    },
  ]);
}

function row(s: ReturnType<typeof summarize>) {
  return { runs: s.count, p50: formatMs(s.p50), p90: formatMs(s.p90), max: formatMs(s.max) };
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => fs.rmSync(root, { recursive: true, force: true }));
