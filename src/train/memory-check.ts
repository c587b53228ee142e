import { totalmem } from "node:os";
import { UserError } from "../errors.js";
import type { ModelConfig } from "../model/config.js";
import { storedBytesPerWeight, type Quantize } from "../model/quantize.js";
import type { Recipe } from "../recipe/schema.js";
import { formatGiB as gb } from "../ui/format.js";
import { backendLimit, estimateTrainingMemory, PROCESS_BASELINE, RAM_SHARE, ramLimit, whatFits, type MemoryEstimate, type MemoryShape } from "./memory-budget.js";

/** Projections per layer a LoRA could touch, as (in + out) sums, for an upper bound of adapter parameters. */
function loraParameters(config: ModelConfig, r: number): number {
  const H = config.hiddenSize;
  if (config.family === "gemma") {
    // q/k/v/o use heads·head_dim, which need not be the hidden size.
    const q = config.numHeads * config.headDim;
    const kv = config.numKvHeads * config.headDim;
    return r * config.numLayers * (H + q + 2 * (H + kv) + q + H + 3 * (H + config.intermediateSize));
  }
  const perLayer = config.family === "gpt2" ? H + 3 * H + H + H + H + config.innerSize + config.innerSize + H : 3 * (H + H) + 2 * H + 3 * (H + config.intermediateSize);
  return r * perLayer * config.numLayers;
}

export interface MemoryBudgetParams {
  config: ModelConfig;
  recipe: Recipe;
  backend: string;
  label: string;
  longest: number;
  /** The machine's RAM in bytes (default os.totalmem()). */
  ram?: number;
  /** Why the native addon is missing (its load reason), or null when it is there: the quantize advice says so. */
  nativeMissing?: string | null;
}

/**
 * Decides gradient checkpointing ("auto": off when the run fits in 60% of the backend's limit without it) and
 * throws a UserError naming the estimate, the limits and what would fit when the recipe cannot run here. Two pools
 * are checked: the backend's memory (the 4 GiB wasm heap) and the machine's RAM, which holds the heap, a bf16/int8/
 * nf4 weight store and the process itself. Returns whether to checkpoint.
 */
export function checkMemoryBudget(params: MemoryBudgetParams): boolean {
  const { config, recipe } = params;
  const machine = params.ram ?? totalmem();
  const limit = backendLimit(params.backend, machine);
  const ram = ramLimit(machine);
  const base = {
    batchSize: recipe.train.batch_size,
    seqLen: Math.min(recipe.train.max_seq_len, params.longest),
    loraParameters: loraParameters(config, recipe.lora.r),
  };
  // The shape a run with this storage format would train with: "auto" checkpointing decided as for the run itself.
  const plan = (quantize: Quantize): { shape: MemoryShape; estimate: MemoryEstimate } => {
    const asked = recipe.train.gradient_checkpointing;
    const checkpointing = asked === "auto" ? estimateTrainingMemory(config, { ...base, quantize, checkpointing: false }).total > 0.6 * limit : asked;
    const shape = { ...base, quantize, checkpointing };
    return { shape, estimate: estimateTrainingMemory(config, shape) };
  };
  const quantize = recipe.model.quantize;
  const { shape, estimate } = plan(quantize);
  const heapShort = estimate.total > limit;
  const ramShort = estimate.ram > ram;
  if (!heapShort && !ramShort) return shape.checkpointing;

  const fits = whatFits(config, shape, limit, ram);
  // Smaller storage formats that would make this run fit, most exact first.
  const formats = (["bf16", "int8", "nf4"] as const)
    .filter((q) => storedBytesPerWeight(q) < storedBytesPerWeight(quantize))
    .map((q) => ({ quantize: q, ...plan(q) }))
    .filter((option) => option.estimate.total <= limit && option.estimate.ram <= ram);
  const [first, ...others] = formats;
  const pool = params.backend === "wasm" ? "the wasm heap" : `the ${params.label} backend's memory`;
  const addon = params.nativeMissing ? ` — it needs the native addon, which is not available here: ${params.nativeMissing}` : "";
  const formatOption = first
    ? [
        `model.quantize: ${first.quantize} (or --quantize ${first.quantize}): its weights then need ${gb(first.estimate.native)} of RAM outside ${pool}` +
          `${others.length > 0 ? ` (${others.map((f) => `${f.quantize}: ${gb(f.estimate.native)}`).join(", ")})` : ""}${addon}`,
      ]
    : [];
  // When the float32 weights are most of the estimate, storing them otherwise is the fix that matters.
  const weightsDominate = quantize === "none" && estimate.weights > estimate.adapters + estimate.activations + estimate.lossHead;
  const options = [
    ...(weightsDominate ? formatOption : []),
    ...(fits.batchSize > 0 ? [`train.batch_size ${fits.batchSize} (with grad_accum to keep the effective batch)`] : []),
    ...(fits.seqLen > 0 ? [`train.max_seq_len ${fits.seqLen}`] : []),
    ...(fits.checkpointingFits ? ["train.gradient_checkpointing: true"] : []),
    ...(weightsDominate ? [] : formatOption),
    heapShort && !ramShort && params.backend === "wasm" ? "the tensorflow backend (npm install @tensorflow/tfjs-node), which is not limited to 4 GiB" : "a machine with more memory",
  ];
  const weights = quantize === "none" ? `weights ${gb(estimate.weights)} as float32` : `norms and biases ${gb(estimate.weights)}`;
  const breakdown = `${weights}, activations ${gb(estimate.activations)} for batch_size ${shape.batchSize} × ${shape.seqLen} tokens, loss ${gb(estimate.lossHead)}`;
  const store = estimate.native > 0 ? `the ${quantize} weight store ${gb(estimate.native)}, ` : "";
  const needs = [
    ...(heapShort ? [`this run needs about ${gb(estimate.total)} on the ${params.label} backend, whose limit is ${gb(limit)} (${breakdown})`] : []),
    ...(ramShort
      ? [
          `${heapShort ? "and" : "this run needs"} about ${gb(estimate.ram)} of RAM, more than the ${gb(ram)} a run may plan on here (${Math.round(RAM_SHARE * 100)}% of this machine's ${gb(machine)}): ` +
            `${store}the ${params.label} backend's memory ${gb(estimate.total)}${heapShort ? "" : ` (${breakdown})`} and the process ${gb(PROCESS_BASELINE)}`,
        ]
      : []),
  ];
  throw new UserError(`${needs.join(", ")}. What would fit: ${options.join("; or ")}.`);
}
