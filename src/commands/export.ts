import { copyFile, mkdir, readFile, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import type { CommandContext } from "../context.js";
import { UserError } from "../errors.js";
import { tempSibling, writeFileAtomic } from "../io/atomic.js";
import { checkOutputPath, makeDirs, removeCreated, shortPath } from "../io/output-path.js";
import { resolveModelSource } from "../hub/model-source.js";
import { resolveToken } from "../hub/token.js";
import { mergeAdapter } from "../lora/merge.js";
import { modelCard } from "../lora/model-card.js";
import { readAdapterConfig, type AdapterConfig } from "../lora/peft-load.js";
import { GGUF_DTYPES, type GgufDtype } from "../gguf/model.js";
import { isLocalPath, modelName } from "../model/model-name.js";
import { ADAPTER_WEIGHTS, verifyAdapter, type AdapterOrigin } from "../lora/verify-adapter.js";
import { readModelConfig } from "../model/load-model.js";
import { LOCK_FILE, readRunLock, type RunLock } from "../train/lock.js";
import { readMetrics } from "../train/metrics.js";
import { transferProgress } from "../ui/transfer-progress.js";

interface ExportOptions {
  format: "peft" | "merged" | "gguf" | "gguf-model";
  out: string;
  /** GGUF tensor type (gguf and gguf-model only); default as llama.cpp's converter: bf16 for bf16 weights, else f16. */
  dtype?: string;
  /** A base model to convert on its own (gguf-model only), instead of a run. */
  model?: string;
}

/** What tempSibling() adds to a name: `.tmp-<pid>-<8 hex>`. */
const TEMP_SUFFIX = 24;

const exists = (path: string) => stat(path).then(() => true, () => false);

/** Where the adapter comes from: a finished run, one of its checkpoints, or a PEFT adapter folder trained elsewhere. */
type Source = { kind: "run" | "checkpoint"; dir: string; adapterDir: string; runDir: string; origin: AdapterOrigin; lock: RunLock | null } | { kind: "folder"; dir: string; adapterDir: string; origin: AdapterOrigin };

/**
 * `finetune export <run | checkpoint | adapter folder> --format peft|merged|gguf|gguf-model --out <dir>`, or
 * `finetune export --model <id | dir> --format gguf-model --out <dir>` for a base model alone. Never writes over an
 * existing --out.
 */
export async function run(context: CommandContext, args: string[], options: ExportOptions): Promise<void> {
  const { reporter } = context;
  const out = resolve(options.out);
  const dtype = checkDtype(options);
  if (options.model !== undefined && args[0] !== undefined) throw new UserError(`give either a run (${args[0]}) or --model ${options.model}, not both: --model converts a base model on its own.`);
  if (options.model === undefined && args[0] === undefined) throw new UserError("give a run directory from `finetune train` (or checkpoints/step-N, or a PEFT adapter folder), or --model <id|dir> with --format gguf-model.");
  if (options.model !== undefined && options.format !== "gguf-model") throw new UserError(`--model converts a base model, which only --format gguf-model writes (not ${options.format}); to export an adapter, give its run instead.`);
  // Before anything is read or pulled: an --out that cannot be written is refused now, not after the merge.
  await checkOutputPath({ path: out, flag: "--out", kind: "directory", reserve: 64, leafReserve: TEMP_SUFFIX });
  const source = options.model === undefined ? await findSource(resolve(args[0] ?? "")) : null;
  if (await exists(out)) throw new UserError(`--out ${shortPath(out)} already exists; choose a new directory (nothing was written).`);
  const config = source ? await readAdapterConfig(source.adapterDir) : null;
  // What is exported must be what training wrote: hash, parse and finiteness, before anything is pulled or written.
  const adapterSha256 = source && config ? await verifyAdapter({ adapterDir: source.adapterDir, origin: source.origin, r: config.r }) : null;

  // The base model, pinned to the adapter's revision (or the --model given).
  const base = config ? config.base_model_name_or_path : options.model;
  if (!base) throw new UserError(`${source?.adapterDir ?? "the adapter"}/adapter_config.json has no base_model_name_or_path; cannot find the base model.`);
  const progress = transferProgress(reporter);
  const model = await resolveModelSource({ model: config?.revision ? `${base}@${config.revision}` : base, env: context.env, token: resolveToken({ env: context.env }).token, signal: context.signal, onEvent: progress.onEvent }).finally(() => progress.finish());
  const modelConfig = await readModelConfig(model.dir);
  if (config && config.r > 16 && options.format !== "gguf" && options.format !== "gguf-model") reporter.warn(`r=${config.r} is above vLLM's default --max-lora-rank 16; serve it with --max-lora-rank ${config.r}`);
  if (modelConfig.family === "gpt2" && (options.format === "peft" || options.format === "merged")) reporter.warn("vLLM cannot serve LoRA adapters for GPT-2; use Python PEFT, the merged model, or llama.cpp");
  const name = source ? `${modelName(base)}-${basename(source.kind === "folder" ? source.dir : source.runDir)}` : modelName(base);

  // Everything goes to a temp folder first and is renamed into place at the end.
  const temp = tempSibling(out);
  const created = await makeDirs({ path: dirname(out), flag: "--out" });
  try {
    await mkdir(temp);
    let files: string[];
    let runHints: string[] = [];
    if (options.format === "gguf-model" || options.format === "gguf") {
      const { defaultDtype, exportGgufAdapter, exportGgufModel } = await import("../gguf/export-files.js");
      const chosen = dtype ?? (await defaultDtype(model.dir));
      const common = { modelDir: model.dir, config: modelConfig, dir: temp, finalDir: out, dtype: chosen, name };
      const written =
        options.format === "gguf-model" ? await exportGgufModel({ ...common, ...(source ? { adapterDir: source.adapterDir, baseModel: isLocalPath(base) ? modelName(base) : base } : {}) }) : await exportGgufAdapter({ ...common, adapterDir: (source as Source).adapterDir });
      for (const warning of written.warnings) reporter.warn(warning);
      files = written.files;
      runHints = written.run;
    } else if (!source || !config || adapterSha256 === null) {
      throw new Error("export: no adapter for a peft or merged export (this is a bug)");
    } else if (options.format === "peft") {
      files = await writePeft({ source, config, adapterSha256, temp });
    } else {
      files = (await mergeAdapter({ baseDir: model.dir, adapterDir: source.adapterDir, out: temp })).files;
    }
    await rename(temp, out);
    reporter.result({ format: options.format, out, files: [...files].sort(), ...(runHints.length > 0 ? { run: runHints } : {}) }, (c) =>
      [`${c.green("✓")} exported ${options.format} to ${out}: ${files.join(", ")}`, ...(runHints.length > 0 ? ["run it:", ...runHints.map((line) => `  ${line}`)] : [])].join("\n"),
    );
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    await removeCreated(created);
    throw error;
  }
}

function checkDtype(options: ExportOptions): GgufDtype | null {
  if (options.dtype === undefined) return null;
  if (options.format !== "gguf" && options.format !== "gguf-model") throw new UserError(`--dtype sets the GGUF tensor type; it applies to --format gguf-model and gguf, not ${options.format}.`);
  if (!(GGUF_DTYPES as readonly string[]).includes(options.dtype)) throw new UserError(`--dtype ${options.dtype} is not a GGUF type finetune writes; choose one of ${GGUF_DTYPES.join(", ")}.`);
  return options.dtype as GgufDtype;
}

async function findSource(dir: string): Promise<Source> {
  if (!(await exists(dir))) throw new UserError(`${shortPath(dir)} does not exist; give a run directory from \`finetune train\` (or one of its checkpoints/step-N, or a PEFT adapter folder).`);
  const adapterDir = join(dir, "adapter");
  const isRun = await exists(join(dir, LOCK_FILE));
  const isCheckpoint = await exists(join(dir, "state.json"));
  if ((isRun || isCheckpoint) && (await exists(join(adapterDir, "adapter_config.json")))) {
    const runDir = isRun ? dir : dirname(dirname(dir));
    const lock = (await exists(join(runDir, LOCK_FILE))) ? await readRunLock(join(runDir, LOCK_FILE)) : null;
    const origin: AdapterOrigin = isRun && lock ? { kind: "run", lock, lockPath: join(runDir, LOCK_FILE) } : { kind: "checkpoint", dir };
    return { kind: isRun ? "run" : "checkpoint", dir, adapterDir, runDir, origin, lock };
  }
  if ((await exists(join(dir, "adapter_config.json"))) && (await exists(join(dir, ADAPTER_WEIGHTS)))) return { kind: "folder", dir, adapterDir: dir, origin: { kind: "folder" } };
  throw new UserError(
    `${shortPath(dir)} is not a finished run (with adapter/ and ${LOCK_FILE}), a checkpoint (checkpoints/step-N) or a PEFT adapter folder (adapter_config.json and ${ADAPTER_WEIGHTS}); give a run directory from \`finetune train\`.`,
  );
}

/** The adapter with a model card; for a run or checkpoint, the card tells its losses and recipe. */
async function writePeft(params: { source: Source; config: AdapterConfig; adapterSha256: string; temp: string }): Promise<string[]> {
  const { source, config, temp } = params;
  for (const name of ["adapter_config.json", ADAPTER_WEIGHTS]) await copyFile(join(source.adapterDir, name), join(temp, name));
  const fromRun = source.kind !== "folder";
  // Read-only, and for a checkpoint only the rows up to its step (training may still be appending).
  const state: { step?: number } = source.kind === "checkpoint" ? await readFile(join(source.dir, "state.json"), "utf8").then((t) => JSON.parse(t) as { step?: number }, () => ({})) : {};
  const rows = fromRun ? await readMetrics(join(source.runDir, "metrics.jsonl"), state.step ?? Number.MAX_SAFE_INTEGER) : [];
  const last = <T extends "train" | "eval">(type: T) => [...rows].reverse().find((r) => r.type === type);
  const train = last("train");
  const val = last("eval");
  const recipeYaml = fromRun ? await readFile(join(source.runDir, "recipe.resolved.yaml"), "utf8").catch(() => null) : null;
  await writeFileAtomic(
    join(temp, "README.md"),
    modelCard({ config, lock: fromRun ? source.lock : null, adapterSha256: params.adapterSha256, recipeYaml, finalLoss: train?.type === "train" ? train.loss : null, finalValLoss: val?.type === "eval" ? val.val_loss : null, source: basename(fromRun ? source.runDir : source.dir) }),
  );
  return ["adapter_config.json", ADAPTER_WEIGHTS, "README.md"];
}
