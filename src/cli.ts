import { Command, CommanderError, Option } from "commander";
import { UserError } from "./errors.js";
import { QUANTIZE_CHOICES } from "./model/quantize.js";

/** Flags every command understands. */
export interface GlobalOptions {
  json: boolean;
  verbose: boolean;
  color: boolean;
  backend?: "tensorflow" | "wasm" | "cpu";
}

/** What the command line asked for; src/index.ts imports commands/<name> only when it runs. */
export interface Invocation {
  command: "pull" | "doctor" | "cache-ls" | "cache-rm" | "generate" | "eval" | "train" | "recipe-validate" | "recipe-schema" | "init" | "preview" | "reproduce" | "export" | "export-recipe";
  args: string[];
  options: Record<string, unknown>;
  globals: GlobalOptions;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** --quantize on train, generate and eval; commander refuses other values, naming them and the choices (exit 2). */
const quantizeOption = (what: string) => new Option("--quantize <format>", `how the frozen base weights are stored: none (float32) or, with the native addon, bf16, int8, nf4 (${what})`).choices(QUANTIZE_CHOICES);

/**
 * Declares commands and flags only. `run` receives the parsed invocation; nothing heavy is imported here
 * so that `finetune --help` starts fast.
 */
export function buildProgram(version: string, run: (invocation: Invocation) => Promise<void>): Command {
  const program = new Command("finetune");
  program
    .description("Download open checkpoints from the Hugging Face hub and fine-tune LoRA adapters locally.")
    .version(version, "-V, --version", "print the version")
    .option("--json", "machine output: one JSON object per line, the last line is the result", false)
    .addOption(
      new Option("--backend <name>", "force a compute backend (default: best available; env FINETUNE_BACKEND; webgpu only when asked for)").choices([
        "tensorflow",
        "wasm",
        "cpu",
        "webgpu",
      ]),
    )
    .option("--verbose", "print debugging detail", false)
    .option("--no-color", "disable colours (NO_COLOR and FORCE_COLOR are honoured too)")
    .exitOverride()
    .configureOutput({ outputError: () => undefined });

  const dispatch = (command: Invocation["command"]) =>
    async function (this: Command, ...actionArgs: unknown[]): Promise<void> {
      const args = actionArgs.filter((a): a is string => typeof a === "string");
      await run({ command, args, options: this.opts(), globals: program.opts<GlobalOptions>() });
    };

  program
    .command("pull")
    .description("download a model (or dataset) from the hub into the Hugging Face cache, pinned to a commit sha")
    .argument("<repo>", "org/name, optionally @revision; datasets/org/name for a dataset")
    .option("--revision <rev>", "branch, tag or commit sha (default: main)")
    .option("--include <glob>", "download files matching this glob instead of the default set (repeatable)", collect)
    .option("--cache-dir <dir>", "cache root (default: HF_HUB_CACHE, HF_HOME/hub or ~/.cache/huggingface/hub)")
    .option("--token <token>", "hub access token (default: HF_TOKEN or the token saved by `hf auth login`)")
    .option("--dataset", "the repo is a dataset", false)
    .option("--force", "download again even when the files are cached", false)
    .action(dispatch("pull"));

  program
    .command("train")
    .description("fine-tune a LoRA adapter from a recipe (YAML)")
    .argument("<recipe>", "recipe file, e.g. recipes/quickstart.yaml")
    .option("--set <key=value>", "override a recipe value, e.g. --set train.lr=1e-4 (repeatable)", collect)
    .option("--output <dir>", "run directory (overrides the recipe's output)")
    .option("--max-steps <n>", "optimizer steps (overrides train.max_steps / train.epochs)")
    .addOption(quantizeOption("overrides model.quantize"))
    .option("--resume", "continue the run in the output directory from its newest checkpoint", false)
    .option("--overwrite", "replace an existing run in the output directory", false)
    .action(dispatch("train"));

  program
    .command("export")
    .description("export a run or checkpoint: a PEFT adapter with a model card, a merged model, one GGUF model for llama.cpp and Ollama, or a GGUF adapter with its base")
    .argument("[run]", "run directory (or checkpoints/step-N, or a PEFT adapter folder)")
    .addOption(new Option("--format <format>", "what to write: peft, merged (safetensors), gguf-model (model.gguf + Modelfile), gguf (adapter.gguf + base.gguf + Modelfile)").choices(["peft", "merged", "gguf-model", "gguf"]).makeOptionMandatory())
    .requiredOption("--out <dir>", "new directory to write")
    .addOption(new Option("--dtype <type>", "GGUF tensor type (default: bf16 for bf16 weights, else f16)").choices(["f32", "f16", "bf16", "q8_0"]))
    .option("--model <id|dir>", "convert this base model alone (with --format gguf-model), instead of a run")
    .action(dispatch("export"));

  program
    .command("export-recipe")
    .description("write the same run for a distributed trainer: an Axolotl config, or a TRL SFTTrainer script with an accelerate config")
    .argument("<recipe>", "recipe file")
    .addOption(new Option("--to <trainer>", "which trainer").choices(["axolotl", "trl"]).makeOptionMandatory())
    .requiredOption("--out <dir>", "new directory to write")
    .option("--set <key=value>", "override a recipe value (repeatable)", collect)
    .action(dispatch("export-recipe"));

  program
    .command("reproduce")
    .description("re-run a training from its run.lock.json and check the adapter comes out identical")
    .argument("<run>", "a finished run's directory, or its run.lock.json")
    .option("--output <dir>", "run directory for the re-run (default: <run>-reproduce)")
    .option("--overwrite", "replace an earlier re-run in the output directory", false)
    .action(dispatch("reproduce"));

  program
    .command("preview")
    .description("print rendered training examples with the trained tokens highlighted")
    .argument("<recipe>", "recipe file")
    .option("-n <count>", "examples to show", "3")
    .option("--set <key=value>", "override a recipe value (repeatable)", collect)
    .action(dispatch("preview"));

  const recipe = program.command("recipe").description("check recipes, or print their JSON Schema");
  recipe
    .command("validate")
    .description("report every problem in a recipe at once (loads no model or data)")
    .argument("<recipe>", "recipe file")
    .option("--set <key=value>", "override a recipe value (repeatable)", collect)
    .action(dispatch("recipe-validate"));
  recipe.command("schema").description("print the recipe JSON Schema (for editors)").action(dispatch("recipe-schema"));

  program
    .command("init")
    .description("write a commented starter recipe")
    .requiredOption("--model <model>", "hub id or local folder")
    .addOption(new Option("--format <format>", "data format (default: auto with --data, which detects it; chat otherwise)").choices(["auto", "chat", "alpaca", "text", "completion"]))
    .option("--data <path>", "training data: a file, a glob or a hub dataset (default: data/train.jsonl)")
    .option("--out <file>", "recipe file to write", "recipe.yaml")
    .option("--force", "replace an existing file", false)
    .action(dispatch("init"));

  program
    .command("generate")
    .description("continue a prompt with a model (hub id or local folder), streaming tokens")
    .requiredOption("--model <model>", "hub id org/name[@revision] or a local folder")
    .requiredOption("--prompt <text>", "the prompt")
    .option("--adapter <dir>", "apply a PEFT LoRA adapter (ours or Python PEFT's)")
    .addOption(quantizeOption("default none"))
    .option("--chat", "wrap the prompt in the model's chat template", false)
    .option("--system <text>", "a system message (with --chat)")
    .option("--max-new-tokens <n>", "tokens to generate at most (default: generation_config.json, else 256)")
    .option("--temperature <t>", "0 is greedy (default: generation_config.json, else greedy)")
    .option("--top-k <k>", "sample from the k most likely tokens (0: off)")
    .option("--top-p <p>", "sample from the smallest set with probability ≥ p (1: off)")
    .option("--seed <n>", "random seed for sampling", "0")
    .option("--stop <text>", "stop when this text appears (repeatable)", collect)
    .action(dispatch("generate"));

  program
    .command("eval")
    .description("mean next-token cross-entropy and perplexity of a model on a text or a file")
    .requiredOption("--model <model>", "hub id org/name[@revision] or a local folder")
    .option("--adapter <dir>", "apply a PEFT LoRA adapter (ours or Python PEFT's)")
    .addOption(quantizeOption("default none"))
    .option("--text <text>", "the text to score")
    .option("--data <file>", "records as train reads them (.jsonl .json .csv .parquet .txt, glob or hub dataset); scores the tokens train counts")
    .action(dispatch("eval"));

  program
    .command("doctor")
    .description("report what this machine can do: backends, GPU, cache, token, hub endpoint")
    .action(dispatch("doctor"));

  const cache = program.command("cache").description("inspect or clean the Hugging Face cache");
  cache
    .command("ls")
    .description("list cached repos with their revisions, sizes and files")
    .option("--cache-dir <dir>", "cache root")
    .action(dispatch("cache-ls"));
  cache
    .command("rm")
    .description("delete a cached repo (all its revisions)")
    .argument("<repo>", "org/name, or datasets/org/name")
    .option("--cache-dir <dir>", "cache root")
    .option("--dataset", "the repo is a dataset", false)
    .action(dispatch("cache-rm"));

  return program;
}

/** Parses argv and runs the invocation. Commander's own usage errors become UserError (exit 2). */
export async function parseAndRun(program: Command, argv: string[]): Promise<"help" | "usage" | "ran"> {
  try {
    await program.parseAsync(argv);
    return "ran";
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return "help";
      // No command given: commander has printed the help to stderr already.
      if (error.code === "commander.help") return "usage";
      throw new UserError(`${error.message.replace(/^error: /, "")}\nRun \`finetune --help\` for usage.`);
    }
    throw error;
  }
}
