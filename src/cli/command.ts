import type { FlagSpecs, FlagValues } from "./flags.js";

/**
 * A `k8ts <name>` subcommand. Flag definitions are data, kept apart from `run`, so that the
 * all-in-one `server` can compose the same components a user starts one by one.
 */
export interface Command<S extends FlagSpecs = FlagSpecs> {
  name: string;
  /** One line for `k8ts --help`. */
  summary: string;
  /** The upstream program this command stands in for, if any. */
  upstream?: string;
  flags: S;
  /** Runs until the work is done or `signal` aborts (SIGINT/SIGTERM). Returns the exit code. */
  run(flags: FlagValues<S>, args: string[], signal: AbortSignal): Promise<number>;
}

export function defineCommand<S extends FlagSpecs>(command: Command<S>): Command<S> {
  return command;
}
