import type * as tfc from "@tensorflow/tfjs-core";
import type { CausalLM, Tf } from "./types.js";

export interface LossSum {
  /** Sum of next-token cross-entropies, in nats. */
  sum: number;
  /** Number of predicted positions. */
  count: number;
}

/** Rows of logits computed at once, so a long window never materialises [T, vocab] in one piece. */
const ROWS = 128;

/**
 * Next-token cross-entropy of a token sequence, in windows of `window` tokens (the model's context length):
 * each window predicts its own positions 1..n-1. With `labels`, only positions labelled 1 count (a training
 * example's trained tokens).
 */
export async function sequenceLoss(tf: Tf, model: CausalLM, ids: number[], window: number, labels?: ArrayLike<number>): Promise<LossSum> {
  const total: LossSum = { sum: 0, count: 0 };
  for (let start = 0; start < ids.length; start += window) {
    const chunk = ids.slice(start, start + window);
    if (chunk.length < 2) continue;
    const counted = Array.from(chunk, (_, i) => i > 0 && (labels === undefined || labels[start + i] === 1));
    if (!counted.includes(true)) continue;
    const part = await windowLoss(tf, model, chunk, counted);
    total.sum += part.sum;
    total.count += part.count;
  }
  return total;
}

/** `counted[i]`: whether predicting ids[i] (from position i-1) counts. */
async function windowLoss(tf: Tf, model: CausalLM, ids: number[], counted: boolean[]): Promise<LossSum> {
  const T = ids.length;
  const hidden = tf.tidy(() => {
    const h = model.hidden({ ids: tf.tensor2d(Int32Array.from(ids), [1, T], "int32") });
    return tf.reshape(h, [T, h.shape[2] ?? 0]) as tfc.Tensor2D;
  });
  let sum = 0;
  let count = 0;
  try {
    for (let row = 0; row < T - 1; row += ROWS) {
      const n = Math.min(ROWS, T - 1 - row);
      const targets = Int32Array.from(ids.slice(row + 1, row + 1 + n));
      const losses = tf.tidy(() => crossEntropyRows(tf, model.lmHead(tf.slice(hidden, [row, 0], [n, hidden.shape[1]])), targets));
      (await losses.data()).forEach((value, i) => {
        if (counted[row + 1 + i] !== true) return;
        sum += value;
        count += 1;
      });
      losses.dispose();
    }
  } finally {
    hidden.dispose();
  }
  return { sum, count };
}

/** −log softmax(logits)[target] per row: logits [n, V], targets [n] → [n]. */
export function crossEntropyRows(tf: Tf, logits: tfc.Tensor2D, targets: Int32Array): tfc.Tensor1D {
  const [n = 0, V = 0] = logits.shape;
  const flat = Int32Array.from(targets, (target, i) => i * V + target);
  const picked = tf.gather(tf.reshape(logits, [n * V]), tf.tensor1d(flat, "int32"));
  return tf.sub(tf.logSumExp(logits, 1), picked) as tfc.Tensor1D;
}
