import type * as tfc from "@tensorflow/tfjs-core";
import type { ModelConfig } from "./config.js";
import type { FrozenMatrix } from "./frozen.js";
import { KvCache } from "./kv-cache.js";
import type { CausalLM, ForwardInput, Projection, Tf, TokenDecoder } from "./types.js";

/**
 * The CausalLM both architectures return: logits = hidden · Wᵀ with the LM head weight [vocab, hidden]
 * (the embedding when tied), a KV cache per layer, and disposal of every weight.
 */
export function assembleModel(params: {
  tf: Tf;
  config: ModelConfig;
  hidden: (input: ForwardInput) => tfc.Tensor3D;
  head: FrozenMatrix;
  projections: Map<string, Projection>;
  tensors: tfc.Tensor[];
  /** Weights held outside tfjs (a native store), freed with the model. */
  matrices?: FrozenMatrix[];
  /** The native decoder, where the model can use it (null: generation runs forward() over a KvCache). */
  leanDecoder?: (capacity: number) => TokenDecoder | null;
  /** Gemma's final-logit soft-cap: logits = cap·tanh(logits/cap); null or absent = none. */
  finalLogitSoftcap?: number | null;
}): CausalLM {
  const { tf, config, hidden, head } = params;
  const matrices = params.matrices ?? [];
  const cap = params.finalLogitSoftcap ?? null;
  const lmHead = (h: tfc.Tensor2D): tfc.Tensor2D =>
    cap === null ? head.apply(h) : tf.tidy(() => tf.mul(tf.tanh(tf.div(head.apply(h), cap)), cap) as tfc.Tensor2D);
  const model: CausalLM = {
    config,
    hidden,
    lmHead,
    head,
    finalLogitSoftcap: cap,
    forward: (input) =>
      tf.tidy(() => {
        const h = hidden(input);
        const [B = 1, T = 1, E = 1] = h.shape;
        return tf.reshape(lmHead(tf.reshape(h, [B * T, E])), [B, T, config.vocabSize]) as tfc.Tensor3D;
      }),
    newCache: () => new KvCache(config.numLayers),
    newDecoder: (capacity) => params.leanDecoder?.(capacity) ?? tensorDecoder(tf, model),
    projections: params.projections,
    parameterCount: params.tensors.reduce((sum, t) => sum + t.size, 0) + matrices.reduce((sum, m) => sum + m.rows * m.cols, 0),
    weightBytes: params.tensors.reduce((sum, t) => sum + 4 * t.size, 0) + matrices.reduce((sum, m) => sum + m.bytes, 0),
    dispose: () => {
      for (const t of params.tensors) t.dispose();
      for (const m of matrices) m.dispose();
    },
  };
  return model;
}

/** Generation on the model's own forward pass: a KvCache of tensors, the last position's logits read back. */
function tensorDecoder(tf: Tf, model: CausalLM): TokenDecoder {
  const cache = model.newCache();
  return {
    kind: "tfjs",
    step: async (ids) => {
      const logits = tf.tidy(() => model.forward({ ids: tf.tensor2d(Int32Array.from(ids), [1, ids.length], "int32"), cache, lastOnly: true }));
      const row = (await logits.data()) as Float32Array;
      logits.dispose();
      return row;
    },
    dispose: () => cache.dispose(),
  };
}

/** Positions past..past+T-1 for every row, flattened [B·T]. */
export function defaultPositions(batch: number, length: number, past: number): Int32Array {
  const out = new Int32Array(batch * length);
  for (let b = 0; b < batch; b += 1) for (let t = 0; t < length; t += 1) out[b * length + t] = past + t;
  return out;
}
