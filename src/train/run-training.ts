import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parse as parseYaml, stringify } from "yaml";
import { forcedBackend, loadBackend } from "../backend/load.js";
import { wasmHeapBytes } from "../backend/wasm-guard.js";
import type { CommandContext } from "../context.js";
import type { Recipe } from "../recipe/schema.js";
import { prepareData } from "../data/prepare.js";
import { Interrupted, UserError } from "../errors.js";
import { stopCause, uninterruptible } from "../interrupt.js";
import { writeFileAtomic } from "../io/atomic.js";
import { replaceDirAtomic } from "../io/replace-dir.js";
import { resolveModelSource } from "../hub/model-source.js";
import { resolveToken } from "../hub/token.js";
import { attachLora } from "../lora/attach.js";
import { savePeftAdapter, type BaseModelInfo } from "../lora/peft-save.js";
import { loadModel, readModelConfig } from "../model/load-model.js";
import { checkMemoryBudget } from "./memory-check.js";
import { loadTokenizer } from "../tokenizer/load.js";
import { loadCheckpoint, saveCheckpoint } from "./checkpoint.js";
import { writeRunLock } from "./lock.js";
import { lossPlotSvg } from "./loss-plot.js";
import { createOptimizer, trainLoop } from "./loop.js";
import { MetricsFile } from "./metrics.js";
import { claimRunDir, type RunDirClaim } from "./run-dir.js";
import { trainProgress } from "../ui/train-progress.js";
import { transferProgress } from "../ui/transfer-progress.js";

export interface RunTrainingParams {
  context: CommandContext;
  recipe: Recipe;
  /** Folder that data paths and a local model resolve against (the recipe's). */
  baseDir: string;
  resume: boolean;
  overwrite: boolean;
  /** The command that resumes this run, for the interrupt message. */
  resumeHint: string;
}

export interface TrainingResult {
  output: string;
  steps: number;
  stop_reason: "max_steps" | "early_stopping";
  train_loss: number | null;
  val_loss: number | null;
  adapter: string;
  adapter_sha256: string;
  backend: string;
  matmul: string | null;
}

/**
 * A training run from a resolved recipe: output-directory checks, model and data, LoRA, the loop, checkpoints,
 * the final adapter and the lock file. Shared by `train` and `reproduce`.
 */
export async function runTraining(params: RunTrainingParams): Promise<TrainingResult> {
  // 1. The output directory: ours for the whole run (a second process is refused), never clobbered unless asked.
  const output = resolve(params.recipe.output);
  const claim = await claimRunDir({
    output,
    resume: params.resume,
    overwrite: params.overwrite,
    command: "finetune train",
    version: params.context.version,
    onNotice: (message) => params.context.reporter.info(message),
  });
  try {
    return await trainInRunDir(params, output, claim);
  } finally {
    await claim.release();
  }
}

async function trainInRunDir(params: RunTrainingParams, output: string, claim: RunDirClaim): Promise<TrainingResult> {
  const { context, recipe, baseDir } = params;
  const { reporter } = context;
  const resumeStep = claim.resumeStep;

  // 2. Model files (pulled into the HF cache if needed), tokenizer, data.
  const pullProgress = transferProgress(reporter);
  const token = resolveToken({ env: context.env }).token;
  const source = await resolveModelSource({ model: recipe.model, baseDir, env: context.env, token, signal: context.signal, onEvent: pullProgress.onEvent }).finally(() => pullProgress.finish());
  const tokenizer = await loadTokenizer(source.dir);
  const data = await prepareData({ recipe, baseDir, tokenizer, env: context.env, token, signal: context.signal, onPull: pullProgress.onEvent });
  reporter.info(`data: ${data.trainSequences.length} training sequences, ${data.validationSequences.length} validation (format ${data.format}${data.formatDetected ? ", detected" : ""}); ${data.trainedTokens} trained tokens`);
  if (data.truncated > 0) reporter.warn(`${data.truncated} example${data.truncated === 1 ? " was" : "s were"} longer than train.max_seq_len (${recipe.train.max_seq_len}) and truncated`);
  if (data.untrained > 0) reporter.warn(`${data.untrained} example${data.untrained === 1 ? "" : "s"} had nothing left to train on after truncation and ${data.untrained === 1 ? "was" : "were"} dropped; raise train.max_seq_len to keep ${data.untrained === 1 ? "it" : "them"}`);

  // 3. Backend and model; max_seq_len must fit the model's context.
  const backend = await loadBackend({ forced: forcedBackend(context.globals.backend, context.env) });
  const { tf } = backend;
  // Refuse, with what would fit, before loading anything big: tfjs-backend-wasm corrupts memory past its 4 GB heap.
  const longest = data.trainSequences.reduce((max, s) => Math.max(max, s.ids.length), 1);
  const checkpointing = checkMemoryBudget({ config: await readModelConfig(source.dir), recipe, backend: backend.backend, label: backend.label, longest });
  const model = await loadModel(tf, source.dir);
  if (recipe.train.max_seq_len > model.config.maxPositions) {
    model.dispose();
    throw new UserError(`train.max_seq_len ${recipe.train.max_seq_len} is above the model's context of ${model.config.maxPositions} tokens; lower it to ${model.config.maxPositions} or less.`);
  }
  const lora = attachLora(tf, model, {
    r: recipe.lora.r,
    alpha: recipe.lora.alpha,
    dropout: recipe.lora.dropout,
    targetModules: recipe.lora.target_modules,
    layers: recipe.lora.layers,
    rslora: recipe.lora.rslora,
    seed: recipe.train.seed,
  });
  const base: BaseModelInfo = { nameOrPath: source.repo ?? source.dir, revision: source.sha };
  const optimizer = createOptimizer(tf, recipe.train.weight_decay);
  const perStep = recipe.train.batch_size * recipe.train.grad_accum;
  const totalSteps = recipe.train.max_steps ?? Math.max(1, Math.ceil(((recipe.train.epochs ?? 1) * data.trainSequences.length) / perStep));
  reporter.info(`model: ${base.nameOrPath}${base.revision ? `@${base.revision.slice(0, 12)}` : ""} on ${backend.label} · LoRA r=${recipe.lora.r} on ${lora.targetModules.join(", ")} (${lora.adapters.length} modules) · ${totalSteps} steps`);

  if (backend.matmul) reporter.info(`matmul: ${backend.matmul.path} — ${backend.matmul.reason}`);

  // 4. Fresh run or resume: the run directory, metrics and optimizer state. A stop asked for while loading leaves
  // the folder as it was (an --overwrite has not deleted anything yet).
  if (context.signal.aborted) throw new Interrupted(`${context.signal.reason instanceof Error ? context.signal.reason.message : "interrupted"} before training started; ${output} was left as it was.`);
  await claim.begin();
  const metrics = new MetricsFile(output);
  const resolvedRecipe = data.resolvedRecipe(output, source.repo === null ? source.dir : null);
  const resolvedYaml = `# The recipe as this run resolved it (defaults filled in, overrides applied).\n${stringify(resolvedRecipe)}`;
  let resumeState = null;
  if (resumeStep !== null) {
    await checkSameRecipe(join(output, "recipe.resolved.yaml"), resolvedYaml);
    resumeState = await loadCheckpoint({ tf, output, step: resumeStep, lora, optimizer });
    await metrics.restore(resumeStep);
    reporter.info(`resuming from step ${resumeStep} (checkpoints/step-${resumeStep})`);
  } else {
    await writeFileAtomic(join(output, "metrics.jsonl"), "");
  }
  await writeFileAtomic(join(output, "recipe.resolved.yaml"), resolvedYaml);
  const plot = () => writeFileAtomic(join(output, "loss.svg"), lossPlotSvg(metrics.rows, `${base.nameOrPath} · LoRA r=${recipe.lora.r}`));

  // 5. Train.
  const progress = trainProgress(reporter, { totalSteps, startStep: resumeStep ?? 0 });
  progress.start();
  const onStop = (): void => progress.stopping(stopCause(context.signal));
  context.signal.addEventListener("abort", onStop, { once: true });
  let lastCheckpoint: string | null = null;
  let outcome;
  try {
    outcome = await trainLoop({
      tf,
      model,
      lora,
      optimizer,
      train: data.trainSequences,
      validation: data.validationSequences,
      config: { ...recipe.train, gradient_checkpointing: checkpointing },
      totalSteps,
      padId: data.padId,
      resume: resumeState,
      signal: context.signal,
      callbacks: {
        onStep: async (row) => {
          const peak = wasmHeapBytes(tf) ?? process.resourceUsage().maxRSS * 1024;
          row.peak_memory_mb = Math.round(peak / 1e6);
          await metrics.append(row);
          progress.step(row);
        },
        onEval: async (row, improved) => {
          await metrics.append(row);
          await plot();
          progress.eval(row, improved);
        },
        onCheckpoint: async (state, reason) => {
          // A second Ctrl-C while this runs waits for it: the run keeps the new checkpoint or the previous one.
          const dir = await uninterruptible("writing the checkpoint", () => saveCheckpoint({ tf, output, lora, optimizer, state, config: model.config, base }));
          lastCheckpoint = dir;
          if (reason === "interrupt") progress.log(`checkpoint written: ${dir}`);
        },
        onLog: (message) => progress.log(message),
      },
    });
  } catch (error) {
    progress.stop();
    if (error instanceof Interrupted) {
      await plot();
      throw new Interrupted(`${error.message} by ${stopCause(context.signal)}; a checkpoint was written${lastCheckpoint ? ` to ${lastCheckpoint}` : ""}. Resume with: ${params.resumeHint}`);
    }
    throw error;
  } finally {
    context.signal.removeEventListener("abort", onStop);
    progress.stop();
  }

  // 6. The final adapter, written whole or not at all, and the final plot.
  const adapterDir = join(output, "adapter");
  await uninterruptible("writing the adapter", () => replaceDirAtomic(adapterDir, (temp) => savePeftAdapter(tf, temp, lora, model.config, base)));
  await plot();
  const lock = await writeRunLock({
    output,
    version: context.version,
    backend: backend.label,
    matmul: backend.matmul?.path ?? null,
    source,
    data: data.files,
    recipe: resolvedRecipe,
    metrics: metrics.rows,
  });
  lora.dispose();
  optimizer.dispose();
  model.dispose();
  return {
    output,
    steps: outcome.state.step,
    stop_reason: outcome.stopReason,
    train_loss: outcome.lastLoss,
    val_loss: outcome.lastValLoss,
    adapter: adapterDir,
    adapter_sha256: lock.adapter_sha256,
    backend: backend.label,
    matmul: backend.matmul?.path ?? null,
  };
}

/** A resumed run must continue the same recipe (same data, lr, seed, steps…), or the result is not that run. */
async function checkSameRecipe(path: string, resolvedYaml: string): Promise<void> {
  const saved = await readFile(path, "utf8").catch(() => null);
  if (saved === null || saved === resolvedYaml) return;
  const before = JSON.stringify(parseYaml(saved));
  const now = JSON.stringify(parseYaml(resolvedYaml));
  if (before !== now) {
    throw new UserError(
      `--resume: the recipe differs from the one this run started with (${path}); resume with that recipe — ` +
        `\`finetune train ${path} --resume\` — or start a new run with --output.`,
    );
  }
}
