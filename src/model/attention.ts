import type * as tfc from "@tensorflow/tfjs-core";
import type { Tf } from "./types.js";

const MASKED = -1e9;

/**
 * Additive attention mask [B or 1, 1, 1, T, S]: query t (absolute position past + t in the sequence) sees key j
 * when j ≤ past + t, within the sliding window if any, and in the same packed example when segments are given.
 * Returns null when nothing is masked (one new token, no window), which saves the add.
 */
export function attentionMask(
  tf: Tf,
  params: { batch: number; queries: number; past: number; slidingWindow: number | null; segments?: Int32Array | undefined },
): tfc.Tensor | null {
  const { batch, queries: T, past, slidingWindow, segments } = params;
  const S = past + T;
  const window = slidingWindow ?? Number.POSITIVE_INFINITY;
  if (T === 1 && !segments && S <= window) return null;
  const b = segments ? batch : 1;
  const data = new Float32Array(b * T * S);
  for (let n = 0; n < b; n += 1) {
    for (let t = 0; t < T; t += 1) {
      const i = past + t;
      for (let j = 0; j < S; j += 1) {
        let visible = j <= i && i - j < window;
        if (visible && segments) visible = segments[n * T + t] === segments[n * T + (j - past)];
        data[(n * T + t) * S + j] = visible ? 0 : MASKED;
      }
    }
  }
  return tf.tensor(data, [b, 1, 1, T, S]);
}

/**
 * Scaled dot-product attention with grouped-query heads and no key/value repetition: queries of the heads
 * that share a kv head are stacked into one matrix [B, kvHeads, group·T, headDim] (reshapes are free; Tile was not).
 * q [B, heads, T, hd] (already scaled by 1/√hd), k/v [B, kvHeads, S, hd] → output [B·T, heads·hd].
 */
export function groupedAttention(tf: Tf, q: tfc.Tensor4D, k: tfc.Tensor4D, v: tfc.Tensor4D, mask: tfc.Tensor | null, softcap: number | null = null): tfc.Tensor2D {
  const [B = 1, H = 1, T = 1, hd = 1] = q.shape;
  const kvHeads = k.shape[1] ?? 1;
  const S = k.shape[2] ?? 1;
  const group = H / kvHeads;
  const qg = tf.reshape(q, [B, kvHeads, group * T, hd]);
  let scores: tfc.Tensor = tf.matMul(qg, k, false, true);
  // Gemma 2's attention-logit soft-cap, on the scaled scores and before the mask, as transformers' eager attention.
  if (softcap !== null) scores = tf.mul(tf.tanh(tf.div(scores, softcap)), softcap);
  if (mask) scores = tf.add(tf.reshape(scores, [B, kvHeads, group, T, S]), mask);
  const probs = mask ? tf.reshape(tf.softmax(scores), [B, kvHeads, group * T, S]) : tf.softmax(scores);
  return mergeHeads(tf, tf.reshape(tf.matMul(probs, v), [B, H, T, hd]) as tfc.Tensor4D);
}

/** [B·T, heads·hd] → [B, heads, T, hd]. With one token (decoding) the transpose moves nothing, so a reshape does. */
export function splitHeads(tf: Tf, x: tfc.Tensor2D, shape: { batch: number; tokens: number; heads: number; headDim: number }): tfc.Tensor4D {
  const { batch: B, tokens: T, heads, headDim: hd } = shape;
  if (T === 1) return tf.reshape(x, [B, heads, 1, hd]);
  return tf.transpose(tf.reshape(x, [B, T, heads, hd]), [0, 2, 1, 3]);
}

/** [B, heads, T, hd] → [B·T, heads·hd], the inverse of splitHeads. */
export function mergeHeads(tf: Tf, x: tfc.Tensor4D): tfc.Tensor2D {
  const [B = 1, H = 1, T = 1, hd = 1] = x.shape;
  if (T === 1) return tf.reshape(x, [B, H * hd]);
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [B * T, H * hd]);
}
