/**
 * Controllers run in the test's own process by the controller manager's loop, without leader
 * election, for suites that play the other components themselves. Everything the controllers
 * log is kept (`I <time> message` / `E <time> message`) so that a suite can show it when it
 * fails.
 */
import type { RestConfig } from "../../src/client/config.js";
import type { ControllerDescriptor, ControllerOptions } from "../../src/controllers/context.js";
import { runControllerManager } from "../../src/controllers/manager.js";

export interface ControllersSpec {
  config: RestConfig;
  controllers: ControllerDescriptor[];
  /** Merged over `{ concurrency: {} }`. */
  options?: Partial<ControllerOptions>;
  /** --use-service-account-credentials (false unless set). */
  useServiceAccountCredentials?: boolean;
}

export class InProcessControllers {
  /** Every line logged so far, oldest first. */
  readonly lines: string[] = [];
  private readonly abort = new AbortController();
  private run: Promise<boolean> | undefined;

  /** Starts the controllers; they run until `stop()`. */
  start(spec: ControllersSpec): void {
    if (this.run) throw new Error("the controllers are already running");
    const line = (severity: "I" | "E") => (msg: string) => {
      this.lines.push(`${severity} ${new Date().toISOString()} ${msg}`);
    };
    this.run = runControllerManager(
      {
        config: spec.config,
        controllers: spec.controllers,
        options: { concurrency: {}, ...spec.options },
        leaderElect: false,
        leaseDuration: 15_000,
        renewDeadline: 10_000,
        retryPeriod: 2_000,
        leaseNamespace: "kube-system",
        leaseName: "kube-controller-manager",
        useServiceAccountCredentials: spec.useServiceAccountCredentials ?? false,
        log: { info: line("I"), error: line("E") },
      },
      this.abort.signal,
    );
  }

  /** The lines logged as errors. */
  errors(): string[] {
    return this.lines.filter((l) => l.startsWith("E "));
  }

  /** The whole log, one line each. */
  text(): string {
    return this.lines.join("\n");
  }

  /** Writes the log to stderr under `heading`. */
  print(heading = "controller manager log"): void {
    process.stderr.write(`${heading}:\n${this.text()}\n`);
  }

  /**
   * Stops the controllers and waits until they have all returned; rejects if the manager's run
   * failed. Does nothing when they were never started.
   */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.run;
  }
}
