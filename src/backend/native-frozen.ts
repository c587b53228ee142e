import type * as tfc from "@tensorflow/tfjs-core";
import { UserError } from "../errors.js";
import type { FrozenMatrix, FrozenStore } from "../model/frozen.js";
import type { Quantize } from "../model/quantize.js";
import type { Tf } from "../model/types.js";
import { loadNativeWeights, type NativeWeights, type NativeWeightsAddon, type StoreFormat } from "./native-weights.js";
import type { WasmBackend } from "./wasm-matmul.js";

/**
 * The native addon's weight store as the loader's FrozenStore: each weight is quantized on the way in (or, with
 * "f32", copied as it is) and lives outside the wasm heap. Throws a UserError naming what is missing when the addon
 * is not available.
 */
export function nativeFrozenStore(tf: Tf, quantize: Exclude<Quantize, "none"> | "f32"): FrozenStore {
  const loaded = loadNativeWeights();
  if (loaded.addon === null) {
    throw new UserError(
      `quantize: ${quantize} keeps the frozen weights in the native addon, which is not available here: ${loaded.reason}. ` +
        "Without it only `quantize: none` (float32 weights in the wasm heap) works.",
    );
  }
  const { addon } = loaded;
  registerWasmKernel(tf, addon);
  // bf16 keeps an F16 checkpoint as f16: both are 2 bytes, and converting f16 to bf16 would lose mantissa bits.
  const formatFor = (dtype: string): StoreFormat => (quantize === "bf16" ? (dtype === "F16" ? "f16" : "bf16") : quantize);
  return {
    create: (source, dtype, rows, cols) => nativeMatrix(tf, addon, addon.weightsCreate(source, dtype, rows, cols, formatFor(dtype))),
  };
}

/** The kernel that multiplies by a stored weight in place in the wasm heap (see registerWasmKernel). */
const KERNEL = "FinetuneStoredMatMul";
interface KernelAttrs {
  weights: NativeWeights;
  transposed: boolean;
}

function nativeMatrix(tf: Tf, addon: NativeWeightsAddon, w: NativeWeights): FrozenMatrix {
  const { rows, cols } = w;
  /** x [n, cols] → x·Wᵀ [n, rows], or with `transposed` x [n, rows] → x·W [n, cols]. */
  const product = (x: tfc.Tensor, transposed: boolean): tfc.Tensor2D => {
    const n = x.shape[0] ?? 0;
    const width = transposed ? cols : rows;
    if (plainWasmHeap(tf)) {
      const attrs: KernelAttrs = { weights: w, transposed };
      return tf.engine().runKernel(KERNEL, { x }, attrs as unknown as tfc.NamedAttrMap) as tfc.Tensor2D;
    }
    // Other backends: the activations are copied across (they are small next to the weights).
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
    native: w,
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

let registered = false;

/**
 * True on the wasm backend with an ordinary heap (a threaded tfjs-backend-wasm build's heap is a SharedArrayBuffer,
 * which N-API cannot take): there the product runs in place (registerWasmKernel).
 */
function plainWasmHeap(tf: Tf): boolean {
  return tf.getBackend() === "wasm" && (tf.backend() as unknown as WasmBackend).wasm.HEAPU8.buffer instanceof ArrayBuffer;
}

/**
 * On the wasm backend the product reads x and writes its output in the wasm heap itself: no copies of the
 * activations, and no JavaScript garbage the size of a logits chunk for the collector to find late.
 */
function registerWasmKernel(tf: Tf, addon: NativeWeightsAddon): void {
  if (registered) return;
  registered = true;
  const kernelFunc = ({ inputs, backend, attrs }: { inputs: Record<string, tfc.TensorInfo>; backend: WasmBackend; attrs: Record<string, unknown> }): tfc.TensorInfo => {
    const x = inputs.x as tfc.TensorInfo;
    const { weights: w, transposed } = attrs as unknown as KernelAttrs;
    const n = x.shape[0] ?? 0;
    const [inner, width] = transposed ? [w.rows, w.cols] : [w.cols, w.rows];
    if (x.dtype !== "float32" || x.shape.length !== 2 || x.shape[1] !== inner) {
      throw new Error(`${KERNEL}: input [${x.shape.join(", ")}] ${x.dtype} does not match weights ${w.rows}×${w.cols} (this is a bug)`);
    }
    // Allocate first: growing the wasm memory detaches any view taken before.
    const out = backend.makeOutput([n, width], "float32");
    if (n * width === 0) return out;
    const heap = backend.wasm.HEAPU8.buffer as ArrayBuffer;
    const offset = (t: tfc.TensorInfo) => (backend.dataIdMap.get(t.dataId) as { memoryOffset: number }).memoryOffset;
    try {
      addon.weightsMatmul(w, new Float32Array(heap, offset(x), n * inner), n, new Float32Array(heap, offset(out), n * width), transposed);
    } catch (error) {
      backend.disposeData(out.dataId);
      throw error;
    }
    return out;
  };
  tf.registerKernel({ kernelName: KERNEL, backendName: "wasm", kernelFunc: kernelFunc as unknown as tfc.KernelFunc });
}
