import type * as tfc from "@tensorflow/tfjs-core";
import type { Tf } from "./types.js";

/**
 * RMSNorm: w · x · r with r = 1/sqrt(mean(x²) + eps), over the last axis. With `training`, a hand-written
 * gradient for x (the weight is frozen): dx = r·g − x·r³·mean(g·x), g = dy·w. It takes about a third of the ops
 * tfjs would record, and none of the all-ones tensors its Mean gradient builds in JavaScript.
 */
export function rmsNorm(tf: Tf, x: tfc.Tensor, weight: tfc.Tensor1D, eps: number, training = false): tfc.Tensor {
  const inverseRms = (input: tfc.Tensor) => tf.rsqrt(tf.add(tf.mean(tf.square(input), -1, true), eps));
  if (!training) return tf.mul(tf.mul(x, inverseRms(x)), weight);
  const norm = tf.customGrad((...args: Array<tfc.Tensor | tfc.GradSaveFunc>) => {
    const input = args[0] as tfc.Tensor;
    const r = inverseRms(input);
    (args[1] as tfc.GradSaveFunc)([input, r]);
    return {
      value: tf.mul(tf.mul(input, r), weight),
      gradFunc: (dy: tfc.Tensor, saved: tfc.Tensor[]) => {
        const [xs, rs] = saved as [tfc.Tensor, tfc.Tensor];
        const g = tf.mul(dy, weight);
        const projection = tf.mean(tf.mul(g, xs), -1, true);
        return tf.sub(tf.mul(g, rs), tf.mul(xs, tf.mul(projection, tf.mul(rs, tf.square(rs)))));
      },
    };
  });
  return norm(x);
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
 * Rotary embedding on x [B, heads, T, headDim] (split-halves layout) with tables [B or 1, 1, T, headDim]:
 * x·cos + rotate_half(x)·sin. rotate_half(x) = concat(−x2, x1) is one matmul by `rotation` (rotateHalfMatrix),
 * exact since each output sums a single ±x term, and much faster than split + concat, which copy strided halves.
 */
export function applyRope(tf: Tf, x: tfc.Tensor4D, cos: tfc.Tensor, sin: tfc.Tensor, rotation: tfc.Tensor2D): tfc.Tensor4D {
  const hd = x.shape[3] ?? 1;
  const rotated = tf.reshape(tf.matMul(tf.reshape(x, [-1, hd]) as tfc.Tensor2D, rotation), x.shape);
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin)) as tfc.Tensor4D;
}

/**
 * R [headDim, headDim] with x·R = rotate_half(x) = concat(−x[half:], x[:half]) over the first `rotaryDim`
 * dimensions (half = rotaryDim / 2); the others map to zero (their sin is 0: they pass through unrotated).
 */
export function rotateHalfMatrix(headDim: number, rotaryDim = headDim): Float32Array {
  const half = rotaryDim / 2;
  const r = new Float32Array(headDim * headDim);
  for (let j = 0; j < half; j += 1) {
    r[(j + half) * headDim + j] = -1;
    r[j * headDim + j + half] = 1;
  }
  return r;
}

/**
 * The sum of same-shaped tensors, added one after another in order (as tf.addN does on the CPU backends, so the
 * float32 result is the same): tf.addN binds every input to one shader, which fails on WebGPU past its limit of
 * storage buffers per stage (8 on some drivers).
 */
export function addAll(tf: Tf, tensors: tfc.Tensor[]): tfc.Tensor {
  const [first, ...rest] = tensors;
  if (!first) throw new Error("addAll: no tensors (this is a bug)");
  return tf.tidy(() => rest.reduce<tfc.Tensor>((sum, t) => tf.add(sum, t), tf.clone(first)));
}
