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
import { readAdapterConfig } from "../lora/peft-load.js";
import { verifyAdapter, type AdapterOrigin } from "../lora/verify-adapter.js";
import { readModelConfig } from "../model/load-model.js";
import { LOCK_FILE, readRunLock } from "../train/lock.js";
import { readMetrics } from "../train/metrics.js";
import { transferProgress } from "../ui/transfer-progress.js";

interface ExportOptions {
  format: "peft" | "merged" | "gguf";
  out: string;
}

/** What tempSibling() adds to a name: `.tmp-<pid>-<8 hex>`. */
const TEMP_SUFFIX = 24;

const exists = (path: string) => stat(path).then(() => true, () => false);

/** `finetune export <run | checkpoint> --format peft|merged|gguf --out <dir>`. Never writes over an existing --out. */
export async function run(context: CommandContext, args: string[], options: ExportOptions): Promise<void> {
  const { reporter } = context;
  const source = resolve(args[0] ?? "");
  const out = resolve(options.out);
  // Before anything is read or pulled: an --out that cannot be written is refused now, not after the merge.
  await checkOutputPath({ path: out, flag: "--out", kind: "directory", reserve: 64, leafReserve: TEMP_SUFFIX });
  if (!(await exists(source))) throw new UserError(`${shortPath(source)} does not exist; give a run directory from \`finetune train\` (or one of its checkpoints/step-N).`);
  const adapterDir = join(source, "adapter");
  const isRun = await exists(join(source, LOCK_FILE));
  const isCheckpoint = await exists(join(source, "state.json"));
  if (!(await exists(join(adapterDir, "adapter_config.json"))) || (!isRun && !isCheckpoint)) {
    throw new UserError(`${shortPath(source)} is not a finished run (with adapter/ and ${LOCK_FILE}) or a checkpoint (checkpoints/step-N); give a run directory from \`finetune train\`.`);
  }
  if (await exists(out)) throw new UserError(`--out ${shortPath(out)} already exists; choose a new directory (nothing was written).`);
  const config = await readAdapterConfig(adapterDir);
  const runDir = isRun ? source : dirname(dirname(source));
  const lock = (await exists(join(runDir, LOCK_FILE))) ? await readRunLock(join(runDir, LOCK_FILE)) : null;
  // What is exported must be what training wrote: hash, parse and finiteness, before anything is pulled or written.
  const origin: AdapterOrigin = isRun && lock ? { kind: "run", lock, lockPath: join(runDir, LOCK_FILE) } : { kind: "checkpoint", dir: source };
  const adapterSha256 = await verifyAdapter({ adapterDir, origin, r: config.r });

  // The base model, pinned to the adapter's revision.
  const base = config.base_model_name_or_path;
  if (!base) throw new UserError(`${adapterDir}/adapter_config.json has no base_model_name_or_path; cannot find the base model.`);
  const progress = transferProgress(reporter);
  const model = await resolveModelSource({ model: config.revision ? `${base}@${config.revision}` : base, env: context.env, token: resolveToken({ env: context.env }).token, signal: context.signal, onEvent: progress.onEvent }).finally(() => progress.finish());
  const modelConfig = await readModelConfig(model.dir);
  if (config.r > 16) reporter.warn(`r=${config.r} is above vLLM's default --max-lora-rank 16; serve it with --max-lora-rank ${config.r}`);
  if (modelConfig.family === "gpt2" && options.format !== "gguf") reporter.warn("vLLM cannot serve LoRA adapters for GPT-2; use Python PEFT, the merged model, or llama.cpp");

  // Everything goes to a temp folder first and is renamed into place at the end.
  const temp = tempSibling(out);
  const created = await makeDirs({ path: dirname(out), flag: "--out" });
  try {
    await mkdir(temp);
    let files: string[];
    if (options.format === "peft") {
      for (const name of ["adapter_config.json", "adapter_model.safetensors"]) await copyFile(join(adapterDir, name), join(temp, name));
      // Read-only, and for a checkpoint only the rows up to its step (training may still be appending).
      const state: { step?: number } = isCheckpoint ? await readFile(join(source, "state.json"), "utf8").then((t) => JSON.parse(t) as { step?: number }, () => ({})) : {};
      const rows = await readMetrics(join(runDir, "metrics.jsonl"), state.step ?? Number.MAX_SAFE_INTEGER);
      const last = <T extends "train" | "eval">(type: T) => [...rows].reverse().find((r) => r.type === type);
      const train = last("train");
      const val = last("eval");
      const recipeYaml = await readFile(join(runDir, "recipe.resolved.yaml"), "utf8").catch(() => null);
      await writeFileAtomic(join(temp, "README.md"), modelCard({ config, lock, adapterSha256, recipeYaml, finalLoss: train?.type === "train" ? train.loss : null, finalValLoss: val?.type === "eval" ? val.val_loss : null, source: basename(runDir) }));
      files = ["adapter_config.json", "adapter_model.safetensors", "README.md"];
    } else if (options.format === "merged") {
      files = (await mergeAdapter({ baseDir: model.dir, adapterDir, out: temp })).files;
    } else {
      const { writeGgufAdapter } = await import("../gguf/adapter.js");
      await writeGgufAdapter({ adapterDir, modelConfig, out: join(temp, "adapter.gguf") });
      files = ["adapter.gguf"];
    }
    await rename(temp, out);
    reporter.result({ format: options.format, out, files: files.sort() }, (c) => `${c.green("✓")} exported ${options.format} to ${out}: ${files.join(", ")}`);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    await removeCreated(created);
    throw error;
  }
}
