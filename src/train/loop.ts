import type * as tfc from "@tensorflow/tfjs-core";
import type { Sequence } from "../data/sequences.js";
import { Interrupted, RuntimeFailure } from "../errors.js";
import type { LoraSet } from "../lora/attach.js";
import type { CausalLM, Tf } from "../model/types.js";
import type { Recipe } from "../recipe/schema.js";
import { nextSequences, toMicroBatch, type DataCursor, type MicroBatch } from "./batches.js";
import type { TrainState } from "./checkpoint.js";
import { assertFiniteAfterStep, assertFiniteValidation, keptCheckpoint } from "./divergence.js";
import { weightedLmLoss } from "./loss.js";
import { addAll } from "../model/ops.js";
import type { EvalRow, TrainRow } from "./metrics.js";
import { ADAMW_DEFAULTS, AdamW } from "./optimizer.js";
import { learningRate, warmupSteps } from "./schedule.js";

/** How the loop talks to the outside world: progress, metrics files and checkpoints are all callbacks. */
export interface TrainCallbacks {
  onStep(row: TrainRow): Promise<void>;
  onEval(row: EvalRow, improved: boolean): Promise<void>;
  /** Write a resumable checkpoint of the current state; "final" is the run's last state, with its stop reason. */
  onCheckpoint(state: TrainState, reason: "periodic" | "interrupt" | "final"): Promise<void>;
  onLog(message: string): void;
}

export interface TrainParams {
  tf: Tf;
  model: CausalLM;
  lora: LoraSet;
  optimizer: AdamW;
  train: Sequence[];
  validation: Sequence[];
  /** The recipe's train section, with gradient checkpointing decided (no "auto"). */
  config: Omit<Recipe["train"], "gradient_checkpointing"> & { gradient_checkpointing: boolean };
  totalSteps: number;
  padId: number;
  /** State restored from a checkpoint, or null for a fresh run. */
  resume: TrainState | null;
  signal: AbortSignal;
  callbacks: TrainCallbacks;
}

export interface TrainOutcome {
  state: TrainState;
  lastLoss: number | null;
  lastValLoss: number | null;
  stopReason: "max_steps" | "early_stopping";
}

export function createOptimizer(tf: Tf, weightDecay: number): AdamW {
  return new AdamW(tf, { ...ADAMW_DEFAULTS, weightDecay });
}

/** The training loop, top to bottom (nanoGPT style): batches → loss → backward → clip → AdamW → log → eval → save. */
export async function trainLoop(params: TrainParams): Promise<TrainOutcome> {
  const { tf, model, lora, optimizer, config, callbacks } = params;
  const variables = lora.variables();
  const warmup = warmupSteps({ total: params.totalSteps, warmupSteps: config.warmup_steps, warmupRatio: config.warmup_ratio });
  const state: TrainState = params.resume ?? {
    step: 0,
    totalSteps: params.totalSteps,
    epoch: 0,
    index: 0,
    optimizerSteps: 0,
    bestValLoss: null,
    evalsWithoutImprovement: 0,
    elapsed: 0,
    stopReason: null,
  };
  // A finished run's final checkpoint carries its stop reason; resuming it (to extend it) is under way again.
  const resumedFinished = state.stopReason !== null;
  state.stopReason = null;
  state.totalSteps = params.totalSteps;
  let lastCheckpoint = params.resume ? params.resume.step : null;
  // Without a trained token the validation loss is NaN by definition (0/0), which is not divergence.
  const validationTrained = params.validation.some((s) => s.labels.subarray(1).some((label) => label !== 0));
  let stepsTaken = 0;
  const startedAt = performance.now() - state.elapsed * 1000;
  let lastLoss: number | null = null;
  let lastValLoss: number | null = state.bestValLoss;
  let stopReason: TrainOutcome["stopReason"] = "max_steps";

  while (state.step < params.totalSteps) {
    const stepStarted = performance.now();
    const step = state.step + 1;

    // 1. The step's micro-batches, in the seeded epoch order; the loss is averaged over all their trained tokens.
    let cursor: DataCursor = { epoch: state.epoch, index: state.index };
    const micro: MicroBatch[] = [];
    for (let i = 0; i < config.grad_accum; i += 1) {
      const next = nextSequences(params.train, cursor, config.batch_size, config.seed);
      micro.push(toMicroBatch(next.sequences, params.padId, config.packing));
      cursor = next.cursor;
    }
    const trainedTokens = micro.reduce((n, m) => n + m.trained.reduce((a, b) => a + b, 0), 0);

    // 2. Forward and backward per micro-batch, summing gradients (token-weighted: each trained token counts 1/N).
    const lr = learningRate({ step, total: params.totalSteps, warmup, peak: config.lr, schedule: config.schedule });
    const grads = new Map<string, tfc.Tensor>();
    let loss = 0;
    for (const [i, batch] of micro.entries()) {
      lora.dropoutClock.step = step;
      lora.dropoutClock.micro = i;
      const weights = Float32Array.from(batch.trained, (t) => (t && trainedTokens > 0 ? 1 / trainedTokens : 0));
      const { value, grads: g } = tf.variableGrads(() => microBatchLoss(tf, model, batch, weights, true, config.gradient_checkpointing), variables);
      loss += (await value.data())[0] ?? Number.NaN;
      value.dispose();
      for (const [name, tensor] of Object.entries(g)) {
        const sum = grads.get(name);
        grads.set(name, sum ? tf.tidy(() => tf.add(sum, tensor)) : tensor);
        if (sum) {
          sum.dispose();
          tensor.dispose();
        }
      }
    }
    if (!Number.isFinite(loss)) {
      for (const g of grads.values()) g.dispose();
      throw new RuntimeFailure(
        `the training loss became ${loss} at step ${step}; nothing from this step was saved; ${keptCheckpoint(lastCheckpoint)} Lower train.lr (now ${config.lr}) or check the data and start again (a changed recipe is a new run: --overwrite or a new --output).`,
      );
    }

    // 3. Clip by global norm, then one AdamW step.
    const squares = tf.tidy(() => addAll(tf, [...grads.values()].map((g) => tf.sum(tf.square(g)))));
    const gradNorm = Math.sqrt((await squares.data())[0] ?? 0);
    squares.dispose();
    if (!Number.isFinite(gradNorm)) {
      for (const g of grads.values()) g.dispose();
      throw new RuntimeFailure(
        `the gradient norm became ${gradNorm} at step ${step} (loss ${loss}); nothing from this step was applied or saved; ${keptCheckpoint(lastCheckpoint)} ` +
          `Lower train.lr (now ${config.lr}) or keep train.max_grad_norm set, and start again (a changed recipe is a new run: --overwrite or a new --output).`,
      );
    }
    if (config.max_grad_norm !== null && gradNorm > config.max_grad_norm) {
      const scale = config.max_grad_norm / (gradNorm + 1e-6);
      for (const [name, g] of grads) {
        grads.set(name, tf.tidy(() => tf.mul(g, scale)));
        g.dispose();
      }
    }
    optimizer.step(variables, grads, lr);
    for (const g of grads.values()) g.dispose();
    await assertFiniteAfterStep(tf, variables, optimizer, { step, lr, weightDecay: config.weight_decay, lastCheckpoint });

    // 4. Advance the state and log.
    state.step = step;
    state.epoch = cursor.epoch;
    state.index = cursor.index;
    state.optimizerSteps = optimizer.t;
    state.elapsed = (performance.now() - startedAt) / 1000;
    lastLoss = loss;
    stepsTaken += 1;
    const seconds = (performance.now() - stepStarted) / 1000;
    const inputTokens = micro.reduce((n, m) => n + m.inputTokens, 0);
    await callbacks.onStep({ type: "train", step, loss, lr, grad_norm: gradNorm, tokens: trainedTokens, tokens_per_second: inputTokens / Math.max(seconds, 1e-9), elapsed: state.elapsed });

    // 5. Evaluate every eval_every steps and at the end; stop early when validation stops improving.
    if (params.validation.length > 0 && (step % config.eval_every === 0 || step === params.totalSteps)) {
      const valLoss = await evaluate(tf, model, params.validation, config.batch_size, params.padId, config.packing);
      if (validationTrained) assertFiniteValidation(valLoss, { step, lr, weightDecay: config.weight_decay, lastCheckpoint, trainLoss: loss });
      lastValLoss = valLoss;
      const improved = state.bestValLoss === null || valLoss < state.bestValLoss;
      if (improved) {
        state.bestValLoss = valLoss;
        state.evalsWithoutImprovement = 0;
      } else {
        state.evalsWithoutImprovement += 1;
      }
      await callbacks.onEval({ type: "eval", step, val_loss: valLoss, val_perplexity: Math.exp(valLoss) }, improved);
      if (config.early_stopping_patience !== null && state.evalsWithoutImprovement >= config.early_stopping_patience) {
        callbacks.onLog(`early stopping: no better validation loss in ${state.evalsWithoutImprovement} evaluations`);
        stopReason = "early_stopping";
        break;
      }
    }

    // 6. Checkpoint every save_every steps; on SIGINT/SIGTERM, checkpoint the finished step and stop.
    if (params.signal.aborted) {
      await callbacks.onCheckpoint(state, "interrupt");
      throw new Interrupted(`interrupted at step ${step}`);
    }
    if (step % config.save_every === 0 && step < params.totalSteps) {
      await callbacks.onCheckpoint(state, "periodic");
      lastCheckpoint = step;
    }
  }
  // 7. The final state is kept as a checkpoint, so a finished run can be extended exactly from where it ended.
  state.stopReason = stopReason;
  if (stepsTaken > 0 || !resumedFinished) await callbacks.onCheckpoint(state, "final");
  return { state, lastLoss, lastValLoss, stopReason };
}

/** The loss of one micro-batch: hidden states → chunked, weighted next-token cross-entropy. */
function microBatchLoss(tf: Tf, model: CausalLM, batch: MicroBatch, weights: Float32Array, training: boolean, checkpoint = false): tfc.Scalar {
  const ids = tf.tensor2d(batch.ids, [batch.batch, batch.length], "int32");
  const hidden = model.hidden({
    ids,
    training,
    checkpoint,
    ...(batch.packed ? { positions: batch.positions, segments: batch.segments } : {}),
  });
  const flat = tf.reshape(hidden, [batch.batch * batch.length, hidden.shape[2] ?? 0]) as tfc.Tensor2D;
  return weightedLmLoss(tf, model, flat, batch.targets, weights, { gradient: training });
}

/** Mean next-token cross-entropy over every trained token of the validation set (no dropout, no gradients). */
export async function evaluate(tf: Tf, model: CausalLM, validation: Sequence[], batchSize: number, padId: number, packed: boolean): Promise<number> {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < validation.length; i += batchSize) {
    const batch = toMicroBatch(validation.slice(i, i + batchSize), padId, packed);
    const weights = Float32Array.from(batch.trained);
    count += weights.reduce((a, b) => a + b, 0);
    const value = tf.tidy(() => microBatchLoss(tf, model, batch, weights, false));
    sum += (await value.data())[0] ?? Number.NaN;
    value.dispose();
  }
  return count > 0 ? sum / count : Number.NaN;
}
