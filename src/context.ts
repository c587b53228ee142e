import type { GlobalOptions } from "./cli.js";
import type { Reporter } from "./ui/reporter.js";

/** What every command receives besides its own arguments. */
export interface CommandContext {
  reporter: Reporter;
  globals: GlobalOptions;
  env: NodeJS.ProcessEnv;
  /** Aborted on SIGINT/SIGTERM: commands stop at a safe point and throw Interrupted. */
  signal: AbortSignal;
  version: string;
}
