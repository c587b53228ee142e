import type * as tfc from "@tensorflow/tfjs-core";
import type { CausalLM, Tf } from "../model/types.js";

/** Rows of logits materialised at once: the [tokens, vocab] matrix never exists whole. */
const CHUNK = 256;

/**
 * Σ weight_i · CE(lmHead(h_i), target_i) over rows with weight > 0, as a scalar with a custom gradient:
 * the forward and the backward both go through the vocabulary in chunks, and only trained rows are computed.
 * The LM head is frozen, so the gradient flows to the hidden states only:
 * dh_i = weight_i · (softmax(logits_i) − onehot(target_i)) · W.
 */
export function weightedLmLoss(tf: Tf, model: CausalLM, hidden: tfc.Tensor2D, targets: Int32Array, weights: Float32Array): tfc.Scalar {
  const rows: number[] = [];
  weights.forEach((w, i) => {
    if (w > 0) rows.push(i);
  });
  const N = hidden.shape[0];
  const V = model.lmHeadWeight.shape[0];
  const chunks = Array.from({ length: Math.ceil(rows.length / CHUNK) }, (_, c) => rows.slice(c * CHUNK, (c + 1) * CHUNK));

  const lossFn = tf.customGrad((...inputs: Array<tfc.Tensor | tfc.GradSaveFunc>) => {
    const h2 = inputs[0] as tfc.Tensor2D;
    // The tape frees intermediates after the forward pass unless they are saved for the gradient.
    (inputs[1] as tfc.GradSaveFunc)([h2]);
    let total = 0;
    for (const chunk of chunks) {
      total += tf.tidy(() => {
        const logits = model.lmHead(tf.gather(h2, tf.tensor1d(chunk, "int32")));
        const picked = tf.gather(tf.reshape(logits, [-1]), tf.tensor1d(chunk.map((row, i) => i * V + (targets[row] ?? 0)), "int32"));
        const ce = tf.sub(tf.logSumExp(logits, 1), picked);
        return tf.sum(tf.mul(ce, tf.tensor1d(chunk.map((row) => weights[row] ?? 0)))).dataSync()[0] ?? 0;
      });
    }
    return {
      value: tf.scalar(total),
      gradFunc: (dy: tfc.Tensor, saved: tfc.Tensor[]) =>
        tf.tidy(() => {
          const hs = saved[0] as tfc.Tensor2D;
          const parts = chunks.map((chunk) => {
            const logits = model.lmHead(tf.gather(hs, tf.tensor1d(chunk, "int32")));
            const onehot = tf.oneHot(tf.tensor1d(chunk.map((row) => targets[row] ?? 0), "int32"), V);
            const g = tf.mul(tf.sub(tf.softmax(logits), onehot), tf.reshape(tf.tensor1d(chunk.map((row) => weights[row] ?? 0)), [-1, 1]));
            return tf.matMul(g, model.lmHeadWeight);
          });
          // Scatter the trained rows back into [N, H]; untrained rows get the zero row at the end.
          const H = hs.shape[1];
          const stacked = tf.concat([...parts, tf.zeros([1, H])], 0);
          const index = new Int32Array(N).fill(rows.length);
          rows.forEach((row, i) => (index[row] = i));
          return tf.mul(tf.gather(stacked, tf.tensor1d(index, "int32")), dy);
        }),
    };
  });
  return lossFn(hidden) as tfc.Scalar;
}
