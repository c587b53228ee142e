import { loadNativeMatmul, type NativeMatmulInfo } from "./native-matmul.js";

/**
 * How a native store holds W: f32 copies it; bf16/f16 keep 16 bits per weight (an F32 source rounded to nearest
 * even, a source of the same type kept exact); int8 and nf4 quantize blocks of 64 weights along each row, with one
 * float32 scale per block (int8: absmax/127, nf4: absmax over QLoRA's NormalFloat4 code book).
 */
export type StoreFormat = "f32" | "bf16" | "f16" | "int8" | "nf4";
/** The dtype of the safetensors tensor a store is made from. */
export type SourceDtype = "F32" | "F16" | "BF16";

/** An opaque, frozen handle on a store in native memory; its finalizer frees the store when it is collected. */
export interface NativeWeights {
  readonly rows: number;
  readonly cols: number;
  readonly format: StoreFormat;
  /** What the store holds (codes and scales), counted by weightsTotalBytes() until it is freed. */
  readonly bytes: number;
}

/**
 * native/src/weights_addon.cc, on the same addon as the GEMM. Lengths must match the store's shape exactly (a
 * RangeError says which); x, y and out may be views into any ArrayBuffer, the wasm heap included.
 */
export interface NativeWeightsAddon {
  /** W [rows, cols] row-major, from raw little-endian bytes of a safetensors tensor (Uint8Array view, any offset). */
  weightsCreate(source: Uint8Array, dtype: SourceDtype, rows: number, cols: number, format: StoreFormat): NativeWeights;
  /** transposed=false: x [n, cols] → y [n, rows] = x·Wᵀ.  transposed=true: x [n, rows] → y [n, cols] = x·W. y is overwritten. */
  weightsMatmul(w: NativeWeights, x: Float32Array, n: number, y: Float32Array, transposed: boolean): void;
  /** out[i, :] = dequantized W[ids[i], :] (embedding lookup). Throws RangeError on an id outside [0, rows). */
  weightsRows(w: NativeWeights, ids: Int32Array, out: Float32Array): void;
  /** The whole dequantized matrix [rows, cols] (tests, small models). */
  weightsDequantize(w: NativeWeights, out: Float32Array): void;
  /** Frees the memory now (idempotent); later use throws. */
  weightsFree(w: NativeWeights): void;
  /** Bytes currently held by all live stores (for memory reports). */
  weightsTotalBytes(): number;
}

export type NativeWeightsLoad = { addon: NativeWeightsAddon; info: NativeMatmulInfo } | { addon: null; reason: string };

const FUNCTIONS = ["weightsCreate", "weightsMatmul", "weightsRows", "weightsDequantize", "weightsFree", "weightsTotalBytes"] as const;

/**
 * The weight store of the native addon, or why it is not available: the addon's own reasons (not built, failed to
 * load, FINETUNE_NATIVE=0), or an addon built before the store existed. Never throws.
 */
export function loadNativeWeights(env: NodeJS.ProcessEnv = process.env): NativeWeightsLoad {
  const native = loadNativeMatmul(env);
  if (native.addon === null) return native;
  const addon: unknown = native.addon;
  if (!isWeightsAddon(addon)) {
    return { addon: null, reason: "native addon predates the weight store; rebuild it with `node scripts/build-native.mjs`" };
  }
  return { addon, info: native.info };
}

function isWeightsAddon(value: unknown): value is NativeWeightsAddon {
  if (typeof value !== "object" || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return FUNCTIONS.every((name) => typeof candidate[name] === "function");
}
