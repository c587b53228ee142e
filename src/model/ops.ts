import type * as tfc from "@tensorflow/tfjs-core";
import type { Tf } from "./types.js";

/** RMSNorm: w · x / sqrt(mean(x²) + eps), over the last axis. */
export function rmsNorm(tf: Tf, x: tfc.Tensor, weight: tfc.Tensor1D, eps: number): tfc.Tensor {
  const variance = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(variance, eps))), weight);
}

/** LayerNorm with affine weight and bias, over the last axis. */
export function layerNorm(tf: Tf, x: tfc.Tensor, weight: tfc.Tensor1D, bias: tfc.Tensor1D, eps: number): tfc.Tensor {
  const mean = tf.mean(x, -1, true);
  const centered = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centered), -1, true);
  return tf.add(tf.mul(tf.mul(centered, tf.rsqrt(tf.add(variance, eps))), weight), bias);
}

/** GPT-2's gelu_new: the tanh approximation 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
export function geluNew(tf: Tf, x: tfc.Tensor): tfc.Tensor {
  const cube = tf.mul(tf.mul(x, x), x);
  const inner = tf.mul(tf.add(x, tf.mul(cube, 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

/** SiLU: x · sigmoid(x). */
export function silu(tf: Tf, x: tfc.Tensor): tfc.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

/**
 * Rotary embedding on x [B, T, heads, headDim] with cos/sin [B or 1, T, 1, headDim] (split-halves layout):
 * x·cos + rotate_half(x)·sin, rotate_half(x) = concat(−x2, x1).
 */
export function applyRope(tf: Tf, x: tfc.Tensor4D, cos: tfc.Tensor, sin: tfc.Tensor): tfc.Tensor4D {
  const half = (x.shape[3] ?? 0) / 2;
  const [x1, x2] = tf.split(x, [half, half], 3);
  const rotated = tf.concat([tf.neg(x2 as tfc.Tensor4D), x1 as tfc.Tensor4D], 3);
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin)) as tfc.Tensor4D;
}
