import type * as tfc from "@tensorflow/tfjs-core";
import { UserError } from "../errors.js";
import type { FrozenMatrix, FrozenStore } from "../model/frozen.js";
import type { Quantize } from "../model/quantize.js";
import type { Tf } from "../model/types.js";
import { loadNativeWeights, type NativeWeights, type NativeWeightsAddon, type StoreFormat } from "./native-weights.js";

/**
 * The native addon's weight store as the loader's FrozenStore: each weight is quantized on the way in and lives
 * outside the wasm heap. Products copy the (small) activations across; the weights never move.
 * Throws a UserError naming what is missing when the addon is not available.
 */
export function nativeFrozenStore(tf: Tf, quantize: Exclude<Quantize, "none">): FrozenStore {
  const loaded = loadNativeWeights();
  if (loaded.addon === null) {
    throw new UserError(
      `quantize: ${quantize} keeps the frozen weights in the native addon, which is not available here: ${loaded.reason}. ` +
        "Without it only `quantize: none` (float32 weights in the wasm heap) works.",
    );
  }
  const { addon } = loaded;
  // bf16 keeps an F16 checkpoint as f16: both are 2 bytes, and converting f16 to bf16 would lose mantissa bits.
  const formatFor = (dtype: string): StoreFormat => (quantize === "bf16" ? (dtype === "F16" ? "f16" : "bf16") : quantize);
  return {
    describe: formatFor,
    create: (source, dtype, rows, cols) => nativeMatrix(tf, addon, addon.weightsCreate(source, dtype, rows, cols, formatFor(dtype))),
  };
}

function nativeMatrix(tf: Tf, addon: NativeWeightsAddon, w: NativeWeights): FrozenMatrix {
  const { rows, cols } = w;
  /** x [n, cols] → x·Wᵀ [n, rows], or with `transposed` x [n, rows] → x·W [n, cols]. */
  const product = (x: tfc.Tensor, transposed: boolean): tfc.Tensor2D => {
    const n = x.shape[0] ?? 0;
    const width = transposed ? cols : rows;
    const out = new Float32Array(n * width);
    if (out.length > 0) addon.weightsMatmul(w, x.dataSync() as Float32Array, n, out, transposed);
    return tf.tensor2d(out, [n, width]);
  };
  const apply = tf.customGrad((...inputs: Array<tfc.Tensor | tfc.GradSaveFunc>) => ({
    value: product(inputs[0] as tfc.Tensor, false),
    gradFunc: (dy: tfc.Tensor) => product(dy, true),
  }));
  return {
    rows,
    cols,
    bytes: w.bytes,
    apply: (x) => apply(x) as tfc.Tensor2D,
    applyTransposed: (g) => product(g, true),
    lookup: (ids) => {
      const flat = Int32Array.from(ids.dataSync());
      const out = new Float32Array(flat.length * cols);
      addon.weightsRows(w, flat, out);
      return tf.tensor2d(out, [flat.length, cols]);
    },
    dense: () => {
      const out = new Float32Array(rows * cols);
      addon.weightsDequantize(w, out);
      return tf.tensor2d(out, [rows, cols]);
    },
    dispose: () => addon.weightsFree(w),
  };
}
