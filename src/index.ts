import { buildProgram, parseAndRun, type GlobalOptions, type Invocation } from "./cli.js";
import type { CommandContext } from "./context.js";
import { isKnownError } from "./errors.js";
import { redactSecrets, registerSecret } from "./hub/redact.js";
import { installInterruptHandlers, interruptFor } from "./interrupt.js";
import { guardOutput } from "./ui/output-guard.js";
import { Reporter } from "./ui/reporter.js";
import { packageVersion } from "./version.js";
import { writeFailure } from "./io/write-failure.js";

/** Each command declares its own options type; commander has produced exactly those keys. */
type CommandModule = { run(context: CommandContext, args: string[], options: never): Promise<void> };

/** Lazy: a command's module (and whatever heavy library it needs) loads only when that command runs. */
const commands: Record<Invocation["command"], () => Promise<CommandModule>> = {
  pull: () => import("./commands/pull.js"),
  doctor: () => import("./commands/doctor.js"),
  "cache-ls": () => import("./commands/cache-ls.js"),
  "cache-rm": () => import("./commands/cache-rm.js"),
  generate: () => import("./commands/generate.js"),
  eval: () => import("./commands/eval.js"),
  train: () => import("./commands/train.js"),
  "recipe-validate": () => import("./commands/recipe-validate.js"),
  "recipe-schema": () => import("./commands/recipe-schema.js"),
  init: () => import("./commands/init.js"),
  preview: () => import("./commands/preview.js"),
  reproduce: () => import("./commands/reproduce.js"),
  export: () => import("./commands/export.js"),
  "export-recipe": () => import("./commands/export-recipe.js"),
};

/** Flags needed to report an error that happens before commander has parsed anything. */
function earlyGlobals(argv: string[]): GlobalOptions {
  return { json: argv.includes("--json"), verbose: argv.includes("--verbose"), color: !argv.includes("--no-color") };
}

function reporterFor(globals: GlobalOptions): Reporter {
  return new Reporter({ json: globals.json, verbose: globals.verbose, noColor: !globals.color });
}

/** Runs the CLI and returns the exit code; never exits by itself. */
export async function runCli(argv: string[]): Promise<number> {
  const controller = new AbortController();
  let reporter = reporterFor(earlyGlobals(argv));
  // Last line of defence: token values are known before any command runs, so no failure can print them.
  const tokenFlag = argv.indexOf("--token");
  const flagToken = tokenFlag >= 0 ? argv[tokenFlag + 1] : argv.find((arg) => arg.startsWith("--token="))?.slice("--token=".length);
  for (const secret of [process.env.HF_TOKEN, process.env.HUGGING_FACE_HUB_TOKEN, flagToken]) registerSecret(secret);
  const interrupts = installInterruptHandlers({
    controller,
    onSignalWhileBusy: (_signal, doing) => reporter.warn(`still ${doing}; finetune stops as soon as that is complete`),
  });
  // A closed stdout (`| head`) or terminal ends the command like an interrupt. Kept for the process's life: the
  // final drain in main() can meet the closed pipe too.
  guardOutput({
    streams: [
      { name: "stdout", stream: process.stdout },
      { name: "stderr", stream: process.stderr },
    ],
    onClosed: (name, code) => interruptFor(`a closed ${name} (${code})`),
  });
  try {
    const version = packageVersion();
    const program = buildProgram(version, async (invocation) => {
      reporter = reporterFor(invocation.globals);
      const module = await commands[invocation.command]();
      const context: CommandContext = {
        reporter,
        globals: invocation.globals,
        env: process.env,
        signal: controller.signal,
        version,
      };
      await module.run(context, invocation.args, invocation.options as never);
    });
    const outcome = await parseAndRun(program, argv);
    return outcome === "usage" ? 2 : 0;
  } catch (error) {
    if (isKnownError(error)) {
      reporter.failure(error.exitCode, redactSecrets(error.message));
      return error.exitCode;
    }
    // Last line of defence: a full disk or a read-only folder is the user's to fix, never "a bug".
    const diskError = writeFailure({ error });
    if (diskError !== undefined) {
      reporter.failure(diskError.exitCode, redactSecrets(diskError.message));
      return diskError.exitCode;
    }
    const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
    reporter.failure(1, "this is a bug in finetune; please report it with the output below", redactSecrets(stack));
    return 1;
  } finally {
    interrupts.dispose();
  }
}

/** The only place that exits the process (DESIGN.md: one exit point). */
export async function main(argv: string[]): Promise<void> {
  const code = await runCli(argv);
  // Let piped stdout/stderr drain before exiting so the last JSON line is never cut.
  await new Promise<void>((resolve) => process.stdout.write("", () => resolve()));
  await new Promise<void>((resolve) => process.stderr.write("", () => resolve()));
  process.exit(code);
}
