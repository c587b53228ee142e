import type * as tfc from "@tensorflow/tfjs-core";
import type { ModelConfig } from "./config.js";
import type { FrozenMatrix } from "./frozen.js";
import type { KvCache } from "./kv-cache.js";

export type Tf = typeof tfc;
export type Tensor = tfc.Tensor;

/**
 * A low-rank update on one projection: returns the delta to add to the projection's output for input x [N, in].
 * LoRA implements it; the model only knows this interface.
 */
export interface ProjectionAdapter {
  delta(x: tfc.Tensor2D, training: boolean): tfc.Tensor2D;
  /** The adapter's trainable tensors (for gradient checkpointing). */
  variables(): tfc.Variable[];
  /**
   * The update as plain arrays, for the native decoder: delta = ((x·a) · scale)·b with a [in, rank] and b
   * [rank, out], row-major. Adapters without it keep generation on the tfjs path.
   */
  lowRank?(): { a: Float32Array; b: Float32Array; rank: number; scale: number };
}

/** A linear projection the model exposes by its Hugging Face module path (e.g. model.layers.0.self_attn.q_proj). */
export interface Projection {
  name: string;
  inFeatures: number;
  outFeatures: number;
  adapter: ProjectionAdapter | null;
  /** The base weight in PEFT orientation [out, in] (a new tensor the caller disposes), for merging and checks. */
  weight(): tfc.Tensor2D;
}

export interface ForwardInput {
  /** Token ids [B, T], int32. */
  ids: tfc.Tensor2D;
  /** Positions [B, T]; default 0..T-1 after the cache's length. */
  positions?: Int32Array;
  /** Packing: ids of the example each token belongs to [B*T]; attention never crosses examples. */
  segments?: Int32Array;
  cache?: KvCache;
  /** Only the last position's logits (generation). */
  lastOnly?: boolean;
  training?: boolean;
  /** With training: recompute each layer in the backward pass instead of storing its activations. */
  checkpoint?: boolean;
}

/** A causal language model in tfjs. All weights are frozen tensors; adapters hang off projections. */
export interface CausalLM {
  config: ModelConfig;
  /** Logits [B, T (or 1 with lastOnly), vocab]. */
  forward(input: ForwardInput): tfc.Tensor3D;
  /** Final hidden states [B, T, hidden] before the LM head (for chunked losses). */
  hidden(input: ForwardInput): tfc.Tensor3D;
  /** Logits for hidden states [N, hidden] → [N, vocab]. */
  lmHead(hidden: tfc.Tensor2D): tfc.Tensor2D;
  /** The LM head weight [vocab, hidden] (the embedding when tied); frozen, wherever it is stored. */
  head: FrozenMatrix;
  /**
   * Gemma's final-logit soft-cap, which lmHead applies after the head (logits = cap·tanh(z/cap)); null when none.
   * A loss that forms the hidden-state gradient itself through `head` must multiply by 1 − (logits/cap)² first.
   */
  finalLogitSoftcap?: number | null;
  newCache(): KvCache;
  /**
   * Generation's forward pass for a prompt plus up to `capacity` − prompt tokens: the native lean decoder where the
   * model can use it (see TokenDecoder.kind), else forward() over a KvCache.
   */
  newDecoder(capacity: number): TokenDecoder;
  projections: Map<string, Projection>;
  /** Number of weight tensors' elements, for reports. */
  parameterCount: number;
  /** Bytes the base weights take where they are stored (float32 tensors, or the native store's formats). */
  weightBytes: number;
  dispose(): void;
}

/** Feeds tokens (the prompt, then one at a time) through the model and returns the last one's logits [vocab]. */
export interface TokenDecoder {
  /**
   * "native": one native call per step for the whole model (weights in the native store, KV cache preallocated);
   * "tfjs": the model's forward() with a KvCache of tensors.
   */
  readonly kind: "native" | "tfjs";
  /** The next-token logits after `ids`; asynchronous, since a GPU backend (WebGPU) reads results back only so. */
  step(ids: number[]): Promise<Float32Array>;
  dispose(): void;
}
