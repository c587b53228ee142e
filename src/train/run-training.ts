import { join, relative, resolve } from "node:path";
import { stringify } from "yaml";
import { forcedBackend, loadBackend } from "../backend/load.js";
import { loadNativeMatmul } from "../backend/native-matmul.js";
import { checkQuantizeOnBackend, checkQuantizeSupport } from "../backend/quantize-support.js";
import { checkWebGpuFit } from "../backend/webgpu.js";
import { wasmHeapBytes } from "../backend/wasm-guard.js";
import type { CommandContext } from "../context.js";
import type { Recipe } from "../recipe/schema.js";
import { prepareData, type DataFile } from "../data/prepare.js";
import { Interrupted, UserError } from "../errors.js";
import { stopCause, uninterruptible } from "../interrupt.js";
import { writeFileAtomic } from "../io/atomic.js";
import { writeFailure } from "../io/write-failure.js";
import { checkOutputPath } from "../io/output-path.js";
import { replaceDirAtomic } from "../io/replace-dir.js";
import { resolveModelSource } from "../hub/model-source.js";
import { resolveToken } from "../hub/token.js";
import { attachLora } from "../lora/attach.js";
import { savePeftAdapter, type BaseModelInfo } from "../lora/peft-save.js";
import { loadModel, readModelConfig } from "../model/load-model.js";
import { checkMemoryBudget } from "./memory-check.js";
import { loadTokenizer } from "../tokenizer/load.js";
import { checkpointDir, loadCheckpoint, saveCheckpoint } from "./checkpoint.js";
import { findResumePoint } from "./checkpoint-scan.js";
import { recentAverage } from "./loss-average.js";
import { checkRunResume } from "./resume.js";
import { removeStaleTemps } from "./stale-temps.js";
import { writeRunLock } from "./lock.js";
import { lossPlotSvg } from "./loss-plot.js";
import { modelName } from "../model/model-name.js";
import { createOptimizer, trainLoop } from "./loop.js";
import { MetricsFile, trainLosses } from "./metrics.js";
import { claimRunDir, RUN_DIR_RESERVE, type RunDirClaim } from "./run-dir.js";
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
  /** How model.quantize was chosen, for messages: "model.quantize" (the recipe, the default), "--quantize", or a lock. */
  quantizeSetBy?: { setBy: string; lock: boolean } | undefined;
  /** Called with the data files as read and hashed, before training (reproduce checks them against its lock). */
  checkData?: ((files: DataFile[]) => void) | undefined;
}

export interface TrainingResult {
  output: string;
  steps: number;
  stop_reason: "max_steps" | "early_stopping";
  /** The loss of the run's last step, and the mean over its last `avg_loss_steps` steps (what the live line shows). */
  last_step_loss: number | null;
  avg_loss: number | null;
  avg_loss_steps: number;
  /** The last validation loss and its step. */
  val_loss: number | null;
  val_loss_step: number | null;
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
  // 0. bf16/int8/nf4 need the native addon: refused before anything is touched, downloaded or loaded.
  checkQuantizeSupport({ quantize: params.recipe.model.quantize, ...(params.quantizeSetBy ?? { setBy: "model.quantize", lock: false }), env: params.context.env });
  // 1. The output directory: ours for the whole run (a second process is refused), never clobbered unless asked.
  const output = resolve(params.recipe.output);
  // Length, a file on the way, a folder that accepts no files, a file system that does not answer: refused now,
  // before anything is read, downloaded or loaded.
  await checkOutputPath({ path: output, flag: "--output", kind: "directory", reserve: RUN_DIR_RESERVE });
  // Temp files of a killed finetune process are ours to remove; a folder holding only those counts as empty.
  const removed = await removeStaleTemps(output);
  if (removed.length > 0) params.context.reporter.info(`removed ${removed.length} temp file${removed.length === 1 ? "" : "s"} left in ${output} by an interrupted finetune process`);
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
  // A checkpoint to resume from is verified (hashes, step, tensors); a damaged newest one falls back with a notice.
  const resumePoint = claim.resumeStep === null ? null : await findResumePoint(output, (message) => reporter.warn(message));
  if (claim.resumeStep !== null && resumePoint === null) throw new UserError(`--resume: ${output} has no checkpoint to resume from; run without --resume to start.`);
  const resumeStep = resumePoint?.step ?? null;

  // 2. Model files (pulled into the HF cache if needed), tokenizer, data.
  const pullProgress = transferProgress(reporter);
  const token = resolveToken({ env: context.env }).token;
  const source = await resolveModelSource({ model: recipe.model.name, baseDir, env: context.env, token, signal: context.signal, onEvent: pullProgress.onEvent }).finally(() => pullProgress.finish());
  const tokenizer = await loadTokenizer(source.dir);
  const data = await prepareData({ recipe, baseDir, tokenizer, env: context.env, token, signal: context.signal, onPull: pullProgress.onEvent });
  reporter.info(`data: ${data.trainSequences.length} training sequences, ${data.validationSequences.length} validation (format ${data.format}${data.formatDetected ? ", detected" : ""}); ${data.trainedTokens} trained tokens`);
  if (data.truncated > 0) reporter.warn(`${data.truncated} example${data.truncated === 1 ? " was" : "s were"} longer than train.max_seq_len (${recipe.train.max_seq_len}) and truncated`);
  if (data.untrained > 0) reporter.warn(`${data.untrained} example${data.untrained === 1 ? "" : "s"} had nothing left to train on after truncation and ${data.untrained === 1 ? "was" : "were"} dropped; raise train.max_seq_len to keep ${data.untrained === 1 ? "it" : "them"}`);
  for (const warning of data.warnings) reporter.warn(warning);
  params.checkData?.(data.files);
  const perStep = recipe.train.batch_size * recipe.train.grad_accum;
  const totalSteps = recipe.train.max_steps ?? Math.max(1, Math.ceil(((recipe.train.epochs ?? 1) * data.trainSequences.length) / perStep));
  const resolvedRecipe = data.resolvedRecipe(output, source.repo === null ? source.dir : null);
  // Recorded in every checkpoint the way the lock records them, so a resume can tell changed data.
  const dataHashes = data.files.map((f) => ({ path: f.pinned ?? relative(output, f.path), sha256: f.sha256 }));
  const resolvedYaml = `# The recipe as this run resolved it (defaults filled in, overrides applied).\n${stringify(resolvedRecipe)}`;
  // A resume must continue the same run (or only lengthen it); decided before the model is loaded.
  if (resumePoint) {
    const { notice } = await checkRunResume({ runDir: output, point: resumePoint, recipe: resolvedRecipe, resolvedYaml, data: dataHashes, totalSteps });
    if (notice) reporter.warn(notice);
  }

  // 3. Backend and model; max_seq_len must fit the model's context.
  const backend = await loadBackend({ forced: forcedBackend(context.globals.backend, context.env), env: context.env });
  const { tf } = backend;
  checkQuantizeOnBackend({ backend: backend.backend, quantize: recipe.model.quantize, setBy: params.quantizeSetBy?.setBy ?? "model.quantize" });
  // Refuse, with what would fit, before loading anything big: tfjs-backend-wasm corrupts memory past its 4 GB heap.
  const longest = data.trainSequences.reduce((max, s) => Math.max(max, s.ids.length), 1);
  const native = loadNativeMatmul(context.env);
  const nativeMissing = native.addon === null ? native.reason : null;
  const modelConfig = await readModelConfig(source.dir);
  if (backend.webgpu) checkWebGpuFit(modelConfig, backend.webgpu);
  const checkpointing = checkMemoryBudget({ config: modelConfig, recipe, backend: backend.backend, label: backend.label, longest, nativeMissing });
  const model = await loadModel(tf, source.dir, { quantize: recipe.model.quantize });
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
  // float32 LoRA weights; a checkpoint holds them and both AdamW moments, plus the adapter copy.
  const loraBytes = lora.variables().reduce((sum, variable) => sum + variable.size * 4, 0);
  reporter.info(`model: ${base.nameOrPath}${base.revision ? `@${base.revision.slice(0, 12)}` : ""} on ${backend.label}${recipe.model.quantize === "none" ? "" : ` · base weights ${recipe.model.quantize}`} · LoRA r=${recipe.lora.r} on ${lora.targetModules.join(", ")} (${lora.adapters.length} modules) · ${totalSteps} steps`);

  if (backend.matmul) reporter.info(`matmul: ${backend.matmul.path} — ${backend.matmul.reason}`);

  // 4. Fresh run or resume: the run directory, metrics and optimizer state. A stop asked for while loading leaves
  // the folder as it was (an --overwrite has not deleted anything yet).
  if (context.signal.aborted) throw new Interrupted(`${context.signal.reason instanceof Error ? context.signal.reason.message : "interrupted"} before training started; ${output} was left as it was.`);
  await claim.begin();
  const metrics = new MetricsFile(output);
  let resumeState = null;
  if (resumePoint !== null) {
    resumeState = await loadCheckpoint({ tf, dir: resumePoint.dir, state: resumePoint.state, lora, optimizer });
    await metrics.restore(resumePoint.step);
    reporter.info(`resuming from step ${resumePoint.step} (checkpoints/step-${resumePoint.step})`);
  } else {
    await writeFileAtomic(join(output, "metrics.jsonl"), "");
  }
  await writeFileAtomic(join(output, "recipe.resolved.yaml"), resolvedYaml);
  const plot = () => writeFileAtomic(join(output, "loss.svg"), lossPlotSvg(metrics.rows, `${modelName(base.nameOrPath)} · LoRA r=${recipe.lora.r}`));

  // 5. Train.
  const progress = trainProgress(reporter, { totalSteps, startStep: resumeStep ?? 0, history: trainLosses(metrics.rows) });
  progress.start();
  const onStop = (): void => progress.stopping(stopCause(context.signal));
  context.signal.addEventListener("abort", onStop, { once: true });
  let lastCheckpoint: string | null = resumePoint?.dir ?? null;
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
          row.peak_rss_mb = peakRssMb();
          await metrics.append(row);
          progress.step(row);
        },
        onEval: async (row, improved) => {
          row.peak_rss_mb = peakRssMb();
          await metrics.append(row);
          await plot();
          progress.eval(row, improved);
        },
        onCheckpoint: async (state, reason) => {
          // A second Ctrl-C while this runs waits for it: the run keeps the new checkpoint or the previous one.
          const dir = await uninterruptible("writing the checkpoint", () => saveCheckpoint({ tf, output, lora, optimizer, state, data: dataHashes, config: model.config, base })).catch((error: unknown) => {
            throw diskFailure(error, `checkpoint step ${state.step}`, checkpointDir(output, state.step), loraBytes * 4, lastCheckpoint, params.resumeHint);
          });
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
  await uninterruptible("writing the adapter", () => replaceDirAtomic(adapterDir, (temp) => savePeftAdapter(tf, temp, lora, model.config, base))).catch((error: unknown) => {
    throw diskFailure(error, "the final adapter", adapterDir, loraBytes, lastCheckpoint, params.resumeHint);
  });
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
    ...lossSummary(metrics.rows),
    adapter: adapterDir,
    adapter_sha256: lock.adapter_sha256,
    backend: backend.label,
    matmul: backend.matmul?.path ?? null,
  };
}

/** The process's peak resident set so far, in MB (resourceUsage reports maxRSS in KiB). */
function peakRssMb(): number {
  return Math.round((process.resourceUsage().maxRSS * 1024) / 1e6);
}

/** The losses the summary reports, from the run's metrics (a resumed run's restored steps included). */
function lossSummary(rows: MetricsFile["rows"]): Pick<TrainingResult, "last_step_loss" | "avg_loss" | "avg_loss_steps" | "val_loss" | "val_loss_step"> {
  const losses = trainLosses(rows);
  const average = recentAverage(losses);
  const lastEval = rows.filter((row) => row.type === "eval").at(-1);
  return {
    last_step_loss: losses.at(-1) ?? null,
    avg_loss: average?.value ?? null,
    avg_loss_steps: average?.steps ?? 0,
    val_loss: lastEval?.type === "eval" ? lastEval.val_loss : null,
    val_loss_step: lastEval?.step ?? null,
  };
}

/**
 * A full or read-only disk while writing a checkpoint or the adapter: the message says what was being written, the
 * bytes it needs, that the earlier checkpoint is intact (the atomic writers leave no partial folder) and how to
 * resume once there is room. Any other error passes through unchanged.
 */
function diskFailure(error: unknown, what: string, path: string, bytesNeeded: number, lastCheckpoint: string | null, resumeHint: string): unknown {
  // Named by the folder being written, not the temp file inside it that is gone by now.
  const failure = writeFailure({ error, what, path, bytesNeeded });
  if (failure === undefined) return error;
  const kept = lastCheckpoint === null ? "no checkpoint had been written yet" : `the last checkpoint, ${lastCheckpoint}, is intact`;
  return new UserError(`${failure.message} Nothing partial was left; ${kept}. When there is room, continue with: ${resumeHint}`);
}
