import type * as tfc from "@tensorflow/tfjs-core";
import type { NativeWeights } from "../backend/native-weights.js";
import type { Tf } from "./types.js";

/**
 * A frozen weight W [rows, cols] (PEFT orientation: [out, in]) that the model only multiplies and looks rows up in.
 * Where it lives — a float32 tfjs tensor, or the native addon's bf16/int8/nf4 store outside the wasm heap — is the
 * implementation's business; the model code is the same for both.
 */
export interface FrozenMatrix {
  readonly rows: number;
  readonly cols: number;
  /** x [N, cols] → x·Wᵀ [N, rows]. The gradient reaches x only: no gradient is ever formed for W. */
  apply(x: tfc.Tensor2D): tfc.Tensor2D;
  /** g [N, rows] → g·W [N, cols]: apply's input gradient, for losses that form it themselves. */
  applyTransposed(g: tfc.Tensor2D): tfc.Tensor2D;
  /** W's rows at the ids (any shape, int32) → [ids.size, cols]; an embedding lookup, without gradient. */
  lookup(ids: tfc.Tensor): tfc.Tensor2D;
  /** W as a new dense float32 tensor [rows, cols] (the caller disposes it): checks and small models only. */
  dense(): tfc.Tensor2D;
  /** Bytes this weight holds where it is stored. */
  readonly bytes: number;
  /** The native store's handle, when the weight lives there (the native decoder reads it directly). */
  readonly native?: NativeWeights;
  dispose(): void;
}

/** A float32 tensor W [rows, cols] as a FrozenMatrix: the same tfjs ops the models always used. */
export function tensorMatrix(tf: Tf, weight: tfc.Tensor2D): FrozenMatrix {
  const [rows = 0, cols = 0] = weight.shape;
  return {
    rows,
    cols,
    apply: (x) => tf.matMul(x, weight, false, true),
    applyTransposed: (g) => tf.matMul(g, weight),
    lookup: (ids) => tf.tidy(() => tf.reshape(tf.gather(weight, ids), [-1, cols]) as tfc.Tensor2D),
    dense: () => tf.clone(weight),
    bytes: 4 * rows * cols,
    dispose: () => weight.dispose(),
  };
}

/** Where the loader puts frozen weights that are not kept as tfjs tensors (see backend/native-frozen.ts). */
export interface FrozenStore {
  /**
   * Stores W [rows, cols] from a safetensors tensor's raw little-endian bytes (F32, F16 or BF16), quantizing on
   * the way in; `source` is only read during the call, so the caller may drop it right after.
   */
  create(source: Uint8Array, dtype: "F32" | "F16" | "BF16", rows: number, cols: number): FrozenMatrix;
}
