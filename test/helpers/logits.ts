import type { CausalLM, Tf } from "../../src/model/types.js";

/** The model's logits [ids.length · vocab] for one sequence, read back and the tensor freed. */
export function logitsOf(tf: Tf, model: CausalLM, ids: number[]): Float32Array {
  const out = model.forward({ ids: tf.tensor2d(Int32Array.from(ids), [1, ids.length], "int32") });
  const data = out.dataSync() as Float32Array;
  out.dispose();
  return data;
}

/** max |a − b|. */
export function maxError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < b.length; i += 1) max = Math.max(max, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return max;
}

/** max |a − b| / max |b|. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < b.length; i += 1) scale = Math.max(scale, Math.abs(b[i] ?? 0));
  return maxError(a, b) / scale;
}
