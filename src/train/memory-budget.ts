import { totalmem } from "node:os";
import type { ModelConfig } from "../model/config.js";

/** The wasm backend's heap: 4 GiB of 32-bit addresses, whatever the machine has. */
export const WASM_HEAP_BYTES = 4 * 1024 ** 3;

export interface MemoryShape {
  batchSize: number;
  seqLen: number;
  loraParameters: number;
  checkpointing: boolean;
}

export interface MemoryEstimate {
  weights: number;
  adapters: number;
  activations: number;
  lossHead: number;
  total: number;
}

/** Rows of logits the chunked LM-head loss materialises at once (see train/loss.ts). */
const LOSS_CHUNK = 256;
/** Allocator fragmentation and transient copies on top of live tensors, measured on the wasm heap. */
const OVERHEAD = 1.5;

/**
 * Estimated peak bytes of a training step: float32 weights, LoRA A/B with AdamW moments and gradients, saved
 * activations (one [tokens, hidden] per layer with checkpointing, every intermediate without) plus one layer's
 * working set, and the chunked LM-head loss.
 */
export function estimateTrainingMemory(config: ModelConfig, shape: MemoryShape): MemoryEstimate {
  const H = config.hiddenSize;
  const I = config.family === "gpt2" ? config.innerSize : config.intermediateSize;
  const layers = config.numLayers;
  const tokens = shape.batchSize * shape.seqLen;
  const weights = 4 * parameterCount(config);
  const adapters = 4 * 4 * shape.loraParameters; // value, gradient, two moments
  // Floats one layer keeps per token: norms and projections (~20·H), the MLP (~6·I), attention scores (~3·heads·T).
  const perLayerPerToken = 20 * H + 6 * I + 3 * config.numHeads * shape.seqLen;
  const oneLayer = 4 * tokens * perLayerPerToken;
  const activations = shape.checkpointing ? 4 * tokens * H * layers + 2 * oneLayer : layers * oneLayer;
  const lossHead = 4 * Math.min(tokens, LOSS_CHUNK) * config.vocabSize * 5;
  const total = OVERHEAD * (weights + adapters + activations + lossHead);
  return { weights, adapters, activations, lossHead, total };
}

export function parameterCount(config: ModelConfig): number {
  const H = config.hiddenSize;
  if (config.family === "gpt2") {
    return config.vocabSize * H + config.maxPositions * H + config.numLayers * (4 * H * H + 2 * H * config.innerSize + 13 * H) + 2 * H;
  }
  const kv = config.numKvHeads * config.headDim;
  const q = config.numHeads * config.headDim;
  const perLayer = H * (q + 2 * kv) + q * H + 3 * H * config.intermediateSize + 2 * H;
  return config.vocabSize * H * (config.tieWordEmbeddings ? 1 : 2) + config.numLayers * perLayer + H;
}

/** The memory a backend can give tensors: the wasm heap, else most of the machine's RAM. */
export function backendLimit(backend: string): number {
  return backend === "wasm" ? WASM_HEAP_BYTES : Math.floor(totalmem() * 0.8);
}

/** The largest batch size, and the longest sequence, that fit under the limit with the other values unchanged. */
export function whatFits(config: ModelConfig, shape: MemoryShape, limit: number): { batchSize: number; seqLen: number; checkpointingFits: boolean } {
  const fits = (s: MemoryShape) => estimateTrainingMemory(config, s).total <= limit;
  let batchSize = 0;
  for (let b = shape.batchSize - 1; b >= 1; b -= 1) if (fits({ ...shape, batchSize: b })) { batchSize = b; break; }
  let seqLen = 0;
  for (let t = Math.floor(shape.seqLen / 2); t >= 16; t = Math.floor(t * 0.75)) if (fits({ ...shape, seqLen: t })) { seqLen = t; break; }
  return { batchSize, seqLen, checkpointingFits: !shape.checkpointing && fits({ ...shape, checkpointing: true }) };
}
