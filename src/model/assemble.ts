import type * as tfc from "@tensorflow/tfjs-core";
import type { ModelConfig } from "./config.js";
import type { FrozenMatrix } from "./frozen.js";
import { KvCache } from "./kv-cache.js";
import type { CausalLM, ForwardInput, Projection, Tf } from "./types.js";

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
}): CausalLM {
  const { tf, config, hidden, head } = params;
  const matrices = params.matrices ?? [];
  const lmHead = (h: tfc.Tensor2D): tfc.Tensor2D => head.apply(h);
  return {
    config,
    hidden,
    lmHead,
    head,
    forward: (input) =>
      tf.tidy(() => {
        const h = hidden(input);
        const [B = 1, T = 1, E = 1] = h.shape;
        return tf.reshape(lmHead(tf.reshape(h, [B * T, E])), [B, T, config.vocabSize]) as tfc.Tensor3D;
      }),
    newCache: () => new KvCache(config.numLayers),
    projections: params.projections,
    parameterCount: params.tensors.reduce((sum, t) => sum + t.size, 0) + matrices.reduce((sum, m) => sum + m.rows * m.cols, 0),
    weightBytes: params.tensors.reduce((sum, t) => sum + 4 * t.size, 0) + matrices.reduce((sum, m) => sum + m.bytes, 0),
    dispose: () => {
      for (const t of params.tensors) t.dispose();
      for (const m of matrices) m.dispose();
    },
  };
}

/** Positions past..past+T-1 for every row, flattened [B·T]. */
export function defaultPositions(batch: number, length: number, past: number): Int32Array {
  const out = new Int32Array(batch * length);
  for (let b = 0; b < batch; b += 1) for (let t = 0; t < length; t += 1) out[b * length + t] = past + t;
  return out;
}
