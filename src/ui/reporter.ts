import type { ChalkInstance } from "chalk";
import { redactSecrets } from "../hub/redact.js";
import { colorLevel, makeChalk } from "./color.js";

/**
 * Where and how a command talks to the user. The only writer to the terminal (DESIGN.md), so it is also where
 * every line is passed through the secret redaction: no token reaches the terminal or a --json consumer.
 */
export interface ReporterOptions {
  json: boolean;
  verbose: boolean;
  noColor: boolean;
  stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  stderr?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  env?: NodeJS.ProcessEnv;
}

export class Reporter {
  readonly json: boolean;
  readonly verbose: boolean;
  readonly color: ChalkInstance;
  /** Live spinners and bars only on an interactive terminal, never in CI or pipes. */
  readonly interactive: boolean;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

  constructor(options: ReporterOptions) {
    const env = options.env ?? process.env;
    this.stdout = options.stdout ?? process.stdout;
    this.stderr = options.stderr ?? process.stderr;
    this.json = options.json;
    this.verbose = options.verbose;
    const isTTY = Boolean(this.stderr.isTTY);
    // A TTY that reports no width (some pseudo-terminals) cannot host a live line: spinners would compute an
    // endless number of lines to clear. Plain lines then.
    const width = this.stderr.columns ?? 0;
    this.interactive = !this.json && isTTY && width > 0 && env.CI === undefined && env.TERM !== "dumb";
    this.color = makeChalk(colorLevel({ noColorFlag: options.noColor, env, isTTY }));
  }

  /** A machine event: one JSON line with --json, nothing otherwise. */
  event(type: string, fields: Record<string, unknown>): void {
    if (this.json) this.writeJson({ type, ...fields });
  }

  info(message: string): void {
    if (this.json) this.writeJson({ type: "log", level: "info", message });
    else this.err(`${message}\n`);
  }

  warn(message: string): void {
    if (this.json) this.writeJson({ type: "log", level: "warn", message });
    else this.err(`${this.color.yellow("warning:")} ${message}\n`);
  }

  debug(message: string): void {
    if (!this.verbose) return;
    if (this.json) this.writeJson({ type: "log", level: "debug", message });
    else this.err(`${this.color.dim(message)}\n`);
  }

  /** The command's result: the last JSON line with --json, or human text on stdout. */
  result(value: object, human: (color: ChalkInstance) => string): void {
    if (this.json) this.writeJson(value);
    else this.stdout.write(redactSecrets(`${human(this.color)}\n`));
  }

  /** A failure, printed once by src/index.ts. */
  failure(exitCode: number, message: string, detail?: string): void {
    if (this.json) this.writeJson({ type: "error", exit_code: exitCode, message, ...(detail ? { detail } : {}) });
    this.err(`${this.color.red("error:")} ${message}\n${detail ? `${detail}\n` : ""}`);
  }

  private writeJson(value: object): void {
    // The mask contains no quote or backslash, so the line stays valid JSON.
    this.stdout.write(redactSecrets(`${JSON.stringify(value)}\n`));
  }

  private err(text: string): void {
    this.stderr.write(redactSecrets(text));
  }
}
