/**
 * Flag definitions and parsing with the rules of upstream's components (spf13/pflag):
 * `--name=value`, `--name value`, booleans as `--name` or `--name=true|false`, durations in Go
 * syntax (`5m`, `1h0m0s`), string lists comma-separated and repeatable.
 */

export type FlagType = "string" | "bool" | "int" | "duration" | "strings";

interface FlagValueOf {
  string: string;
  bool: boolean;
  int: number;
  /** Milliseconds. */
  duration: number;
  strings: string[];
}

export interface FlagSpec<T extends FlagType = FlagType, V = unknown> {
  type: T;
  help: string;
  default?: FlagValueOf[T];
  /** Only for the type checker: the type of the parsed value. */
  readonly parsed?: V;
}

export type FlagSpecs = Record<string, FlagSpec>;

export type FlagValues<S extends FlagSpecs> = {
  [K in keyof S]: S[K] extends FlagSpec<FlagType, infer V> ? V : never;
};

function string(help: string): FlagSpec<"string", string | undefined>;
function string(help: string, def: string): FlagSpec<"string", string>;
function string(help: string, def?: string): FlagSpec<"string"> {
  return { type: "string", help, default: def };
}

function int(help: string): FlagSpec<"int", number | undefined>;
function int(help: string, def: number): FlagSpec<"int", number>;
function int(help: string, def?: number): FlagSpec<"int"> {
  return { type: "int", help, default: def };
}

/** A Go duration on the command line; milliseconds in the program. */
function duration(help: string): FlagSpec<"duration", number | undefined>;
function duration(help: string, def: number): FlagSpec<"duration", number>;
function duration(help: string, def?: number): FlagSpec<"duration"> {
  return { type: "duration", help, default: def };
}

/** Flag constructors: `flag.string("help", "default")`, `flag.bool("help")`, ... */
export const flag = {
  string,
  int,
  duration,
  bool: (help: string, def = false): FlagSpec<"bool", boolean> => ({
    type: "bool",
    help,
    default: def,
  }),
  strings: (help: string, def: string[] = []): FlagSpec<"strings", string[]> => ({
    type: "strings",
    help,
    default: def,
  }),
};

export class FlagError extends Error {
  override readonly name = "FlagError";
}

export function parseFlags<S extends FlagSpecs>(
  specs: S,
  argv: readonly string[],
): { flags: FlagValues<S>; args: string[]; help: boolean } {
  const values: Record<string, unknown> = {};
  const args: string[] = [];
  let help = false;
  for (const [name, spec] of Object.entries(specs)) {
    if (spec.default !== undefined) values[name] = spec.default;
  }
  const seenLists = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (arg === "-h" || arg === "--help") {
      help = true;
      continue;
    }
    if (!arg.startsWith("-") || arg === "-") {
      args.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    const spec = specs[name];
    if (!spec) throw new FlagError(`unknown flag: --${name}`);
    let raw: string | undefined = eq < 0 ? undefined : body.slice(eq + 1);
    if (raw === undefined && spec.type !== "bool") {
      if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: --${name}`);
      raw = argv[++i]!;
    }
    const value = parseValue(name, spec.type, raw);
    if (spec.type === "strings") {
      const prior = seenLists.has(name) ? (values[name] as string[]) : [];
      values[name] = [...prior, ...(value as string[])];
      seenLists.add(name);
    } else {
      values[name] = value;
    }
  }
  return { flags: values as FlagValues<S>, args, help };
}

function parseValue(name: string, type: FlagType, raw: string | undefined): unknown {
  const invalid = (why: string) =>
    new FlagError(`invalid argument "${raw}" for "--${name}" flag: ${why}`);
  switch (type) {
    case "bool":
      if (raw === undefined || raw === "true" || raw === "1") return true;
      if (raw === "false" || raw === "0") return false;
      throw invalid(`strconv.ParseBool: parsing "${raw}": invalid syntax`);
    case "int": {
      if (!/^-?\d+$/.test(raw!))
        throw invalid(`strconv.ParseInt: parsing "${raw}": invalid syntax`);
      return Number(raw);
    }
    case "duration": {
      const ms = parseDuration(raw!);
      if (ms === undefined) throw invalid(`time: invalid duration "${raw}"`);
      return ms;
    }
    case "strings":
      return raw === "" ? [] : raw!.split(",");
    case "string":
      return raw;
  }
}

const durationUnits: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Parses a Go duration ("300ms", "1h30m", "5m0s") into milliseconds. */
export function parseDuration(text: string): number | undefined {
  if (text === "0") return 0;
  const m = /^([-+]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/.exec(text);
  if (!m) return undefined;
  let total = 0;
  for (const part of text.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(part[1]) * durationUnits[part[2]!]!;
  }
  return m[1] === "-" ? -total : total;
}

/** Formats milliseconds the way Go prints a duration ("5m0s", "1h0m0s", "300ms"). */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

export function formatFlagHelp(specs: FlagSpecs): string {
  const lines: string[] = [];
  const names = Object.keys(specs).sort();
  const left = names.map((name) => {
    const spec = specs[name]!;
    const arg = spec.type === "bool" ? "" : ` ${spec.type === "strings" ? "strings" : spec.type}`;
    return `      --${name}${arg}`;
  });
  const width = Math.max(...left.map((l) => l.length)) + 3;
  names.forEach((name, i) => {
    const spec = specs[name]!;
    let help = spec.help;
    const d = spec.default;
    if (d !== undefined && d !== false && d !== "" && !(Array.isArray(d) && d.length === 0)) {
      const shown =
        spec.type === "duration"
          ? formatDuration(d as number)
          : Array.isArray(d)
            ? `[${d.join(",")}]`
            : spec.type === "string"
              ? `"${d}"`
              : String(d);
      help += ` (default ${shown})`;
    }
    lines.push(left[i]!.padEnd(width) + help);
  });
  return lines.join("\n");
}
