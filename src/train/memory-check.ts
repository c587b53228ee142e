import { UserError } from "../errors.js";
import type { ModelConfig } from "../model/config.js";
import type { Recipe } from "../recipe/schema.js";
import { backendLimit, estimateTrainingMemory, whatFits } from "./memory-budget.js";

const gb = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(1)} GB`;

/** Projections per layer a LoRA could touch, as (in + out) sums, for an upper bound of adapter parameters. */
function loraParameters(config: ModelConfig, r: number): number {
  const H = config.hiddenSize;
  const perLayer = config.family === "gpt2" ? H + 3 * H + H + H + H + config.innerSize + config.innerSize + H : 3 * (H + H) + 2 * H + 3 * (H + config.intermediateSize);
  return r * perLayer * config.numLayers;
}

/**
 * Decides gradient checkpointing ("auto": off when the run fits in 60% of the limit without it) and throws a
 * UserError naming the estimate, the limit and what would fit when the recipe cannot run here.
 * Returns whether to checkpoint.
 */
export function checkMemoryBudget(params: { config: ModelConfig; recipe: Recipe; backend: string; label: string; longest: number }): boolean {
  const { config, recipe } = params;
  const limit = backendLimit(params.backend);
  const base = {
    batchSize: recipe.train.batch_size,
    seqLen: Math.min(recipe.train.max_seq_len, params.longest),
    loraParameters: loraParameters(config, recipe.lora.r),
  };
  const asked = recipe.train.gradient_checkpointing;
  const checkpointing = asked === "auto" ? estimateTrainingMemory(config, { ...base, checkpointing: false }).total > 0.6 * limit : asked;
  const shape = { ...base, checkpointing };
  const estimate = estimateTrainingMemory(config, shape);
  if (estimate.total <= limit) return checkpointing;
  const fits = whatFits(config, shape, limit);
  const options = [
    ...(fits.batchSize > 0 ? [`train.batch_size ${fits.batchSize} (with grad_accum to keep the effective batch)`] : []),
    ...(fits.seqLen > 0 ? [`train.max_seq_len ${fits.seqLen}`] : []),
    ...(fits.checkpointingFits ? ["train.gradient_checkpointing: true"] : []),
    params.backend === "wasm" ? "the tensorflow backend (npm install @tensorflow/tfjs-node), which is not limited to 4 GB" : "a machine with more memory",
  ];
  throw new UserError(
    `this run needs about ${gb(estimate.total)} on the ${params.label} backend, whose limit is ${gb(limit)} ` +
      `(weights ${gb(estimate.weights)}, activations ${gb(estimate.activations)} for batch_size ${shape.batchSize} × ${shape.seqLen} tokens, loss ${gb(estimate.lossHead)}). ` +
      `What would fit: ${options.join("; or ")}.`,
  );
}
