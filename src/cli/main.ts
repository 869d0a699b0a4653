import { FlagError, formatFlagHelp, parseFlags } from "./flags.js";
import type { Command } from "./command.js";
import { kubernetesVersion } from "./version.js";

/**
 * Every subcommand, loaded on demand so that `k8ts <cmd>` only pays for the modules it uses.
 * Components add themselves here.
 */
const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  apiserver: {
    summary: "Run the Kubernetes API server",
    load: async () => (await import("../apiserver/command.js")).apiserverCommand as Command,
  },
  "controller-manager": {
    summary:
      "Run the controller manager (deployments, replica sets, namespaces, garbage collection)",
    load: async () =>
      (await import("../controllers/command.js")).controllerManagerCommand as Command,
  },
  scheduler: {
    summary: "Run the scheduler (binds pending pods to nodes; priority and preemption)",
    load: async () => (await import("../scheduler/command.js")).schedulerCommand as Command,
  },
  sim: {
    summary: "Run simulated nodes that play a kubelet's part without containers",
    load: async () => (await import("../sim/command.js")).simCommand as Command,
  },
  server: {
    summary: "Run a whole control plane in one process on the embedded store (like k3s server)",
    load: async () => (await import("../server/command.js")).serverCommand as Command,
  },
  certs: {
    summary: "Generate the cluster's certificates and keys (CA, API server, etcd, clients, nodes)",
    load: async () => (await import("../pki/command.js")).certsCommand as Command,
  },
  kubeconfig: {
    summary: "Write kubeconfig files for the admin and each component from the certificates",
    load: async () => (await import("../pki/kubeconfig-command.js")).kubeconfigCommand as Command,
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length)) + 2;
  const list = Object.entries(commands)
    .map(([name, c]) => `  ${name.padEnd(width)}${c.summary}`)
    .join("\n");
  return `k8ts: Kubernetes, one piece at a time.

Usage:
  k8ts <command> [flags]

Available Commands:
${list}

Flags:
  -h, --help      help for k8ts
      --version   print the Kubernetes version k8ts implements

Use "k8ts <command> --help" for more information about a command.`;
}

function commandUsage(name: string, command: Command): string {
  const upstream = command.upstream ? ` (k8ts's ${command.upstream})` : "";
  return `${command.summary}${upstream}

Usage:
  k8ts ${name} [flags]

Flags:
  -h, --help   help for ${name}
${formatFlagHelp(command.flags)}`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "-h" || name === "--help" || name === "help") {
    process.stdout.write(usage() + "\n");
    return name === undefined ? 1 : 0;
  }
  if (name === "--version" || name === "version") {
    process.stdout.write(`Kubernetes ${kubernetesVersion.gitVersion}\n`);
    return 0;
  }
  const entry = commands[name];
  if (!entry) {
    process.stderr.write(
      `Error: unknown command "${name}" for "k8ts"\nRun 'k8ts --help' for usage.\n`,
    );
    return 1;
  }
  const command = await entry.load();
  let parsed;
  try {
    parsed = parseFlags(command.flags, rest);
  } catch (err) {
    if (err instanceof FlagError) {
      process.stderr.write(`Error: ${err.message}\n${commandUsage(name, command)}\n`);
      return 1;
    }
    throw err;
  }
  if (parsed.help) {
    process.stdout.write(commandUsage(name, command) + "\n");
    return 0;
  }
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    return await command.run(parsed.flags, parsed.args, controller.signal);
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}
