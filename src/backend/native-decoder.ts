import type * as tfc from "@tensorflow/tfjs-core";
import { UserError } from "../errors.js";
import { ramLimit } from "../train/memory-budget.js";
import type { LlamaConfig } from "../model/config.js";
import type { FrozenMatrix } from "../model/frozen.js";
import type { Projection, TokenDecoder } from "../model/types.js";
import { loadNativeWeights, type NativeWeights } from "./native-weights.js";

/** An opaque handle on a native decoder and its KV cache; its finalizer frees them when it is collected. */
export type NativeDecoderHandle = object;

/**
 * native/src/decoder_addon.cc, on the same addon as the GEMM and the weight store. Every shape is checked there;
 * a RangeError or TypeError names the argument.
 */
export interface NativeDecoderAddon {
  /**
   * shape: [layers, hidden, intermediate, heads, kvHeads, headDim, vocab, capacity, window (0 = none), windowFromLayer].
   * matrices: embed, head, then per layer q, k, v, o, gate, up, down ([out, in] stores).
   * vectors: the final norm, then per layer the input norm, the post-attention norm, the q and k head norms (Qwen3; or
   * null) and each projection's bias (or null). ropeLayers: per layer 1 (RoPE) or 0 (a NoPE layer).
   */
  decoderCreate(shape: Int32Array, eps: number, invFreq: Float32Array, matrices: NativeWeights[], vectors: Array<Float32Array | null>, ropeLayers: Int32Array): NativeDecoderHandle;
  /** A LoRA update on projection `slot` = layer · 7 + (q, k, v, o, gate, up, down): a [in, rank], b [rank, out]. */
  decoderAdapter(decoder: NativeDecoderHandle, slot: number, a: Float32Array, b: Float32Array, rank: number, scale: number): void;
  /** Runs the tokens at the next positions, writes the last one's logits [vocab], returns the cache's length. */
  decoderStep(decoder: NativeDecoderHandle, ids: Int32Array, logits: Float32Array): number;
  /** Frees the KV cache now (idempotent). */
  decoderFree(decoder: NativeDecoderHandle): void;
}

/** One layer as the Llama loader holds it, projections in the order q, k, v, o, gate, up, down. */
export interface DecoderLayer {
  inputNorm: tfc.Tensor1D;
  postNorm: tfc.Tensor1D;
  qNorm: tfc.Tensor1D | null;
  kNorm: tfc.Tensor1D | null;
  matrices: FrozenMatrix[];
  biases: Array<tfc.Tensor1D | null>;
  projections: Projection[];
}

export interface DecoderParts {
  config: LlamaConfig;
  embed: FrozenMatrix;
  head: FrozenMatrix;
  norm: tfc.Tensor1D;
  layers: DecoderLayer[];
}

const FUNCTIONS = ["decoderCreate", "decoderAdapter", "decoderStep", "decoderFree"] as const;

/**
 * Whether `generate` should load a Llama-family model for the native decoder: the addon has it, it is not turned
 * off (FINETUNE_LEAN_DECODE=0), and the backend is one of the CPU paths it replaces (wasm, cpu); a tensorflow
 * backend (CUDA or native TensorFlow) keeps its own forward pass.
 */
export function nativeDecoderAvailable(backend: string, env: NodeJS.ProcessEnv = process.env): boolean {
  return (backend === "wasm" || backend === "cpu") && decoderAddon(env) !== null;
}

/** The addon's decoder functions, unless the addon lacks them or FINETUNE_LEAN_DECODE=0 turns them off. */
function decoderAddon(env: NodeJS.ProcessEnv): NativeDecoderAddon | null {
  if (env.FINETUNE_LEAN_DECODE === "0") return null;
  const loaded = loadNativeWeights(env);
  return loaded.addon !== null && isDecoderAddon(loaded.addon) ? loaded.addon : null;
}

/**
 * The native lean decoder for a Llama-family model whose matrices all live in the native store, with the LoRA
 * adapters attached right now; or null where it cannot run (no decoder in this addon, a weight held as a tensor,
 * an adapter without lowRank, or FINETUNE_LEAN_DECODE=0), and generation keeps the tfjs path.
 */
export function nativeDecoder(parts: DecoderParts, capacity: number, env: NodeJS.ProcessEnv = process.env): TokenDecoder | null {
  const addon = decoderAddon(env);
  if (addon === null) return null;
  const { config } = parts;
  const matrices = [parts.embed, parts.head, ...parts.layers.flatMap((layer) => layer.matrices)].map((m) => m.native);
  const adapters = parts.layers.flatMap((layer) => layer.projections.map((p) => p.adapter));
  if (matrices.some((m) => m === undefined) || adapters.some((a) => a !== null && a.lowRank === undefined)) return null;

  const data = (t: tfc.Tensor1D | null) => (t === null ? null : (t.dataSync() as Float32Array));
  const vectors = [data(parts.norm), ...parts.layers.flatMap((layer) => [data(layer.inputNorm), data(layer.postNorm), data(layer.qNorm), data(layer.kNorm), ...layer.biases.map(data)])];
  const window = config.slidingWindow ?? 0;
  const shape = Int32Array.from([
    config.numLayers, config.hiddenSize, config.intermediateSize, config.numHeads, config.numKvHeads, config.headDim,
    config.vocabSize, capacity, window, window > 0 ? config.slidingWindowFromLayer : 0,
  ]);
  const ropeLayers = Int32Array.from(config.ropeLayers, (rope) => (rope ? 1 : 0));
  // The cache is allocated (and written) whole: refuse before asking for more than the machine's RAM can give.
  const cacheBytes = 2 * 4 * config.numLayers * config.numKvHeads * config.headDim * capacity;
  if (cacheBytes > ramLimit()) {
    throw new UserError(
      `the KV cache for ${capacity} positions (the prompt plus --max-new-tokens) needs ${(cacheBytes / 2 ** 30).toFixed(1)} GiB, ` +
        `more than the ${(ramLimit() / 2 ** 30).toFixed(1)} GiB this machine's RAM allows; ask for fewer new tokens (--max-new-tokens) or use a shorter prompt.`,
    );
  }
  const handle = addon.decoderCreate(shape, config.rmsNormEps, config.ropeInvFreq, matrices as NativeWeights[], vectors, ropeLayers);
  for (const [slot, adapter] of adapters.entries()) {
    const update = adapter?.lowRank?.();
    if (update) addon.decoderAdapter(handle, slot, update.a, update.b, update.rank, update.scale);
  }
  const logits = new Float32Array(config.vocabSize);
  return {
    kind: "native",
    step: async (ids) => {
      addon.decoderStep(handle, Int32Array.from(ids), logits);
      return logits.slice();
    },
    dispose: () => addon.decoderFree(handle),
  };
}

function isDecoderAddon(value: object): value is NativeDecoderAddon {
  const candidate = value as Record<string, unknown>;
  return FUNCTIONS.every((name) => typeof candidate[name] === "function");
}
