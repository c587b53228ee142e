import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "..", "..");
export const BIN = join(ROOT, "bin", "finetune.js");

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** An environment with nothing of the developer's: a fresh HOME, no token, no colour, no hub settings. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const key of ["PATH", "SYSTEMROOT", "TMPDIR"]) if (process.env[key]) env[key] = process.env[key];
  Object.assign(env, { NO_COLOR: "1", CI: "1" }, extra);
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete env[key];
  return env;
}

/** Spawns the real CLI and collects its output. */
export function runCli(args: string[], env: NodeJS.ProcessEnv, options: { nodeArgs?: string[]; cwd?: string } = {}): Promise<CliResult> {
  const child = startCli(args, env, options);
  return collect(child);
}

export function startCli(args: string[], env: NodeJS.ProcessEnv, options: { nodeArgs?: string[]; cwd?: string } = {}): ChildProcess {
  return spawn(process.execPath, [...(options.nodeArgs ?? []), BIN, ...args], { env, cwd: options.cwd ?? ROOT, stdio: ["ignore", "pipe", "pipe"] });
}

export function collect(child: ChildProcess): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolveResult) => child.on("close", (code) => resolveResult({ code, stdout, stderr })));
}

/** The last line of --json output, parsed. */
export function lastJson(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1] ?? "{}") as Record<string, unknown>;
}

/** A temp directory removed after the test file finishes. */
export function tempDir(prefix = "finetune-test-"): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}
