import { totalmem } from "node:os";
import type { GemmaConfig, ModelConfig } from "../model/config.js";
import { lossChunkRows } from "./loss.js";
import { storedBytesPerWeight, type Quantize } from "../model/quantize.js";

/** The wasm backend's heap: 4 GiB of 32-bit addresses, whatever the machine has. */
export const WASM_HEAP_BYTES = 4 * 1024 ** 3;

export interface MemoryShape {
  batchSize: number;
  seqLen: number;
  loraParameters: number;
  checkpointing: boolean;
  /** How the frozen base weights are stored; default none (float32 in the backend's memory). */
  quantize?: Quantize;
}

export interface MemoryEstimate {
  /** Base weights held as float32 tensors in the backend's memory: all of them with quantize none, else norms and biases. */
  weights: number;
  adapters: number;
  activations: number;
  lossHead: number;
  /** Peak bytes of the backend's memory (the wasm heap on wasm), overheads included. */
  total: number;
  /** Bytes of the native weight store (machine RAM, outside the backend's memory): 0 with quantize none. */
  native: number;
  /** Peak bytes of machine RAM the process takes: the native store, the backend's memory and the process itself. */
  ram: number;
}

/**
 * Allocator fragmentation and transient copies on top of what training allocates (adapters, activations, the loss
 * chunk). bench/memory-estimate.js measured the wasm heap's peak minus the weights at 0.66–1.12 × that raw estimate
 * (SmolLM2-135M shapes T=256 batch 4; Llama-3.2-1B widths T=512 batch 1 r=16 all-linear), and a SmolLM2 run without
 * checkpointing whose raw estimate was 3.7 GB exhausted the 4 GiB heap: 1.5 keeps a margin over the worst seen.
 */
const OVERHEAD = 1.5;
/**
 * The heap's size over the float32 weights once they are loaded (it grows in steps past the last tensor): measured
 * 1.02–1.09 by bench/memory-estimate.js. Weights are allocated once, so they do not fragment like training does.
 */
const WEIGHTS_OVERHEAD = 1.1;
/**
 * What one stored matrix costs beyond its codes and scales: two allocations (data, scales) rounded up to 4 KiB pages
 * by the allocator, and the store's descriptor. Derived from native/src/weight_store.h's layout: ≤ 9 KiB.
 */
const NATIVE_TENSOR_OVERHEAD = 16 * 1024;
/**
 * The process outside the backend's memory and the native store: Node, V8's heap, tfjs and its wasm module, the
 * tokenizer and the data. Peak RSS minus the wasm heap's peak measured 110–115 MB in bench/memory-estimate.js and
 * 145 MB for `finetune train` on stories260K (metrics.jsonl: peak_rss_mb − peak_memory_mb); the rest is room for a
 * 128K–150K-token tokenizer and a larger dataset.
 */
export const PROCESS_BASELINE = 256 * 1024 ** 2;
/** The share of the machine's RAM a run may plan to use; the rest is left to the OS and other programs. */
export const RAM_SHARE = 0.8;

/**
 * Estimated peak bytes of a training step: the base weights (float32 in the backend's memory with quantize none,
 * else in the native store), LoRA A/B with AdamW moments and gradients, saved activations (one [tokens, hidden] per
 * layer with checkpointing, every intermediate without) plus one layer's working set, and the chunked LM-head loss.
 * The LM head is never dequantized whole (the native kernels multiply it in panels), so the loss counts only the
 * logits of one chunk, whatever the format.
 */
export function estimateTrainingMemory(config: ModelConfig, shape: MemoryShape): MemoryEstimate {
  const quantize = shape.quantize ?? "none";
  const H = config.hiddenSize;
  const I = config.family === "gpt2" ? config.innerSize : config.intermediateSize;
  const layers = config.numLayers;
  const tokens = shape.batchSize * shape.seqLen;
  const stored = storedWeights(config);
  const weights = 4 * (quantize === "none" ? parameterCount(config) : parameterCount(config) - stored.count + biasCount(config));
  const adapters = 4 * 4 * shape.loraParameters; // value, gradient, two moments
  // Floats one layer keeps per token: norms and projections (~20·H), the MLP (~6·I), attention scores (~3·heads·T).
  const perLayerPerToken = config.family === "gemma" ? gemmaLayerFloats(config, shape.seqLen) : 20 * H + 6 * I + 3 * config.numHeads * shape.seqLen;
  const oneLayer = 4 * tokens * perLayerPerToken;
  const activations = shape.checkpointing ? 4 * tokens * H * layers + 2 * oneLayer : layers * oneLayer;
  // A final-logit soft-cap (Gemma) keeps the capped logits too: a sixth copy.
  const logitCopies = config.family === "gemma" && config.finalSoftcap !== null ? 6 : 5;
  const lossHead = 4 * Math.min(tokens, lossChunkRows(config.vocabSize)) * config.vocabSize * logitCopies;
  const total = WEIGHTS_OVERHEAD * weights + OVERHEAD * (adapters + activations + lossHead);
  const native = quantize === "none" ? 0 : storeBytes(stored, quantize);
  // While loading, one tensor's bytes are read whole before they are stored; the backend's memory is still small.
  const loading = quantize === "none" ? 0 : 4 * stored.largest;
  const ram = native + Math.max(total, loading) + PROCESS_BASELINE;
  return { weights, adapters, activations, lossHead, total, native, ram };
}

/**
 * Gemma's per-token floats in one layer: as Llama's, with q/k/v/o at heads·head_dim (often wider than the hidden size),
 * two more hidden-size norms and the per-head q/k norms, GELU-tanh's intermediates (~5 more per MLP unit than SiLU),
 * and the soft-capped scores' tanh copies.
 */
function gemmaLayerFloats(config: GemmaConfig, seqLen: number): number {
  const H = config.hiddenSize;
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  return 20 * Math.max(H, q) + 4 * H + 4 * (q + 2 * kv) + 11 * config.intermediateSize + (config.attnSoftcap === null ? 3 : 5) * config.numHeads * seqLen;
}

/** Bytes of the native weight store for a model: every linear weight and the embedding/LM head, in `quantize`. */
export function nativeStoreBytes(config: ModelConfig, quantize: Exclude<Quantize, "none">): number {
  return storeBytes(storedWeights(config), quantize);
}

function storeBytes(stored: { count: number; tensors: number }, quantize: Exclude<Quantize, "none">): number {
  return storedBytesPerWeight(quantize) * stored.count + NATIVE_TENSOR_OVERHEAD * stored.tensors;
}

export function parameterCount(config: ModelConfig): number {
  const H = config.hiddenSize;
  if (config.family === "gpt2") {
    return config.vocabSize * H + config.maxPositions * H + config.numLayers * (4 * H * H + 2 * H * config.innerSize + 13 * H) + 2 * H;
  }
  const kv = config.numKvHeads * config.headDim;
  const q = config.numHeads * config.headDim;
  // Norm weights: two per layer (Gemma four), plus per-head q/k norms (Qwen3, Gemma 3).
  const norms = (config.family === "gemma" ? 4 * H : 2 * H) + (config.qkNorm ? 2 * config.headDim : 0);
  const perLayer = H * (q + 2 * kv) + q * H + 3 * H * config.intermediateSize + norms;
  return config.vocabSize * H * (config.tieWordEmbeddings ? 1 : 2) + config.numLayers * perLayer + H;
}

/**
 * The weights a non-none format moves into the native store (every linear weight, the token embedding and an untied
 * LM head): how many, in how many matrices, and the largest matrix's size.
 */
function storedWeights(config: ModelConfig): { count: number; tensors: number; largest: number } {
  const H = config.hiddenSize;
  const embedding = config.vocabSize * H;
  if (config.family === "gpt2") {
    const I = config.innerSize;
    return { count: embedding + config.numLayers * (4 * H * H + 2 * H * I), tensors: 4 * config.numLayers + 1, largest: Math.max(embedding, H * I) };
  }
  const kv = config.numKvHeads * config.headDim;
  const q = config.numHeads * config.headDim;
  const heads = config.tieWordEmbeddings ? 1 : 2;
  const perLayer = H * (q + 2 * kv) + q * H + 3 * H * config.intermediateSize;
  // Phi-3's fused qkv_proj and gate_up_proj are one matrix each.
  const fused = config.family === "llama" && config.fusedProjections;
  const matrices = fused ? 4 : 7;
  const widest = fused ? Math.max(2 * config.intermediateSize, q + 2 * kv) : Math.max(config.intermediateSize, q);
  return { count: heads * embedding + config.numLayers * perLayer, tensors: matrices * config.numLayers + heads, largest: Math.max(embedding, H * widest) };
}

/** Llama-family projection biases (Qwen2's q/k/v, attention_bias, mlp_bias): parameterCount leaves them out. */
function biasCount(config: ModelConfig): number {
  if (config.family === "gpt2" || config.family === "gemma") return 0; // GPT-2: counted in parameterCount; Gemma has none
  const kv = config.numKvHeads * config.headDim;
  const q = config.numHeads * config.headDim;
  const perLayer = (config.qkvBias ? q + 2 * kv : 0) + (config.oBias ? config.hiddenSize : 0) + (config.mlpBias ? 2 * config.intermediateSize + config.hiddenSize : 0);
  return config.numLayers * perLayer;
}

/** The memory a backend can give tensors: the wasm heap, else most of the machine's RAM. */
export function backendLimit(backend: string, ram: number = totalmem()): number {
  return backend === "wasm" ? WASM_HEAP_BYTES : ramLimit(ram);
}

/** The RAM a run may plan to use: RAM_SHARE of the machine's. */
export function ramLimit(ram: number = totalmem()): number {
  return Math.floor(ram * RAM_SHARE);
}

/** Whether a run of this shape fits both the backend's memory and the machine's RAM. */
export function fitsMemory(config: ModelConfig, shape: MemoryShape, limit: number, ram = Number.POSITIVE_INFINITY): boolean {
  const estimate = estimateTrainingMemory(config, shape);
  return estimate.total <= limit && estimate.ram <= ram;
}

/**
 * The largest batch size, and the longest sequence, that fit under the limits with the other values unchanged, and
 * whether checkpointing would make it fit.
 */
export function whatFits(config: ModelConfig, shape: MemoryShape, limit: number, ram = Number.POSITIVE_INFINITY): { batchSize: number; seqLen: number; checkpointingFits: boolean } {
  const fits = (s: MemoryShape) => fitsMemory(config, s, limit, ram);
  let batchSize = 0;
  for (let b = shape.batchSize - 1; b >= 1; b -= 1) if (fits({ ...shape, batchSize: b })) { batchSize = b; break; }
  let seqLen = 0;
  for (let t = Math.floor(shape.seqLen / 2); t >= 16; t = Math.floor(t * 0.75)) if (fits({ ...shape, seqLen: t })) { seqLen = t; break; }
  return { batchSize, seqLen, checkpointingFits: !shape.checkpointing && fits({ ...shape, checkpointing: true }) };
}
