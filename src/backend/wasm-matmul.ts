import type * as tfc from "@tensorflow/tfjs-core";
import type { Tf } from "../model/types.js";
import { loadNativeMatmul, matmulPath, type MatmulPath, type NativeMatmul, type NativeMatmulAddon } from "./native-matmul.js";

/** The parts of tfjs-backend-wasm's BackendWasm these kernels use (it exports no types for them). */
interface WasmModule {
  cwrap(name: string, ret: null, args: string[]): (...args: unknown[]) => void;
  _malloc(bytes: number): number;
  tfjs: { registerTensor(id: number, size: number, offset: number): void; disposeData(id: number): void };
  /** Replaced by a new view over a new buffer whenever the memory grows. */
  HEAPU8: Uint8Array;
}
interface TensorData {
  id: number;
  memoryOffset: number;
}
export interface WasmBackend {
  wasm: WasmModule;
  dataIdMap: { get(dataId: object): TensorData | undefined };
  dataIdNextNumber: number;
  makeOutput(shape: number[], dtype: string): tfc.TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
  incRef(dataId: object): void;
}

type KernelArgs = { inputs: Record<string, tfc.TensorInfo>; backend: WasmBackend; attrs: Record<string, unknown> };
type KernelFn = (args: KernelArgs) => tfc.TensorInfo;
type MatMulFn = (aId: number, aShape: Uint8Array, aRank: number, bId: number, bShape: Uint8Array, bRank: number, transposeA: boolean, transposeB: boolean, outId: number) => void;

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const shapeBytes = (shape: number[]) => new Uint8Array(new Int32Array(shape).buffer);

let registeredPath: MatmulPath | null = null;
/** Our Identity/Cast replacements, so registering again does not wrap them around themselves. */
const sharingKernels = new WeakSet<object>();

/** How BatchMatMul runs on the wasm backend since the last registerWasmMatMul, or null before it; for reports. */
export function registeredMatmulPath(): MatmulPath | null {
  return registeredPath;
}

/**
 * Replaces the wasm backend's BatchMatMul (and makes Identity/Cast share data), returning which matmul is now used:
 * the native GEMM addon when it loads (the fastest: it works on the wasm heap in place, transposes and broadcast
 * batches included), else tfjs's XNNPACK reached through `xnnpackBatchMatMul`. The gradient is unchanged:
 * BatchMatMul's gradient itself dispatches BatchMatMul.
 * @param options.native false keeps the XNNPACK path even when the addon is built (tests compare both). Default true.
 */
export function registerWasmMatMul(tf: Tf, options: { native?: boolean } = {}): MatmulPath {
  const native: NativeMatmul = options.native === false ? { addon: null, reason: "native matmul turned off by the caller" } : loadNativeMatmul();
  const xnnpack = xnnpackBatchMatMul(tf);
  const kernelFunc = native.addon ? nativeBatchMatMul(native.addon, xnnpack) : xnnpack;
  tf.unregisterKernel("BatchMatMul", "wasm");
  tf.registerKernel({ kernelName: "BatchMatMul", backendName: "wasm", kernelFunc: kernelFunc as unknown as tfc.KernelFunc });
  registerSharingKernels(tf);
  registeredPath = matmulPath(native);
  return registeredPath;
}

/** The shapes of one BatchMatMul: op(A) is [..outerA, M, K], op(B) is [..outerB, K, N], the output [..outer, M, N]. */
function matmulDims(a: tfc.TensorInfo, b: tfc.TensorInfo, transposeA: boolean, transposeB: boolean) {
  const ra = a.shape.length;
  const rb = b.shape.length;
  const M = (transposeA ? a.shape[ra - 1] : a.shape[ra - 2]) ?? 1;
  const K = (transposeA ? a.shape[ra - 2] : a.shape[ra - 1]) ?? 1;
  const N = (transposeB ? b.shape[rb - 2] : b.shape[rb - 1]) ?? 1;
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const outer = broadcastShape(outerA, outerB);
  return { M, N, K, outerA, outerB, outer, batch: size(outer), batchA: size(outerA), batchB: size(outerB) };
}

function float32Inputs(inputs: Record<string, tfc.TensorInfo>): { a: tfc.TensorInfo; b: tfc.TensorInfo } {
  const a = inputs.a as tfc.TensorInfo;
  const b = inputs.b as tfc.TensorInfo;
  if (a.dtype !== "float32" || b.dtype !== "float32") throw new Error("BatchMatMul supports float32 only");
  return { a, b };
}

/**
 * BatchMatMul through the native GEMM, reading A and B and writing the output in the wasm heap: no copies, and
 * transposes and broadcast batches are strides and flags of one call.
 */
function nativeBatchMatMul(addon: NativeMatmulAddon, fallback: KernelFn): KernelFn {
  return (args) => {
    const { backend, attrs } = args;
    // A threaded tfjs-backend-wasm build has a SharedArrayBuffer heap, which N-API cannot hand to the addon.
    if (!(backend.wasm.HEAPU8.buffer instanceof ArrayBuffer)) return fallback(args);
    const { a, b } = float32Inputs(args.inputs);
    const transposeA = Boolean(attrs.transposeA);
    const transposeB = Boolean(attrs.transposeB);
    const { M, N, K, outer, outerA, outerB, batch, batchA, batchB } = matmulDims(a, b, transposeA, transposeB);
    // Allocate first: growing the wasm memory detaches the buffer any earlier read of HEAPU8.buffer returned.
    const out = backend.makeOutput([...outer, M, N], "float32");
    if (batch * M * N === 0) return out;
    const heap = backend.wasm.HEAPU8.buffer;
    const offset = (x: tfc.TensorInfo) => (backend.dataIdMap.get(x.dataId) as TensorData).memoryOffset;
    const [aOffset, bOffset, cOffset] = [offset(a), offset(b), offset(out)];
    const [bytesA, bytesB, bytesC] = [M * K * 4, K * N * 4, M * N * 4];
    try {
      if ((batchA === batch || batchA === 1) && (batchB === batch || batchB === 1)) {
        addon.sgemm(heap, aOffset, bOffset, cOffset, M, N, K, transposeA, transposeB, batch, batchA === 1 ? 0 : bytesA, batchB === 1 ? 0 : bytesB, bytesC);
      } else {
        // Both sides broadcast along different dims (e.g. [2,1] against [1,3]): one call per output matrix.
        for (let i = 0; i < batch; i += 1) {
          const ai = broadcastIndex(i, outer, outerA);
          const bi = broadcastIndex(i, outer, outerB);
          addon.sgemm(heap, aOffset + ai * bytesA, bOffset + bi * bytesB, cOffset + i * bytesC, M, N, K, transposeA, transposeB, 1, 0, 0, 0);
        }
      }
    } catch (error) {
      backend.disposeData(out.dataId);
      throw error;
    }
    return out;
  };
}

/**
 * A BatchMatMul for the wasm backend that always reaches XNNPACK's fast single-matrix path: tfjs-backend-wasm
 * sends a matmul to XNNPACK only when neither input is transposed and there is one batch, and runs every other case
 * (every backward matmul, batched attention) in a scalar loop at ~1 GFLOP/s. Here transposed inputs are
 * materialised with the Transpose kernel, and batches become zero-copy views of the wasm heap, one fast call each.
 */
function xnnpackBatchMatMul(tf: Tf): KernelFn {
  let matmul: MatMulFn | null = null;
  const transposeKernel = tf.getKernel("Transpose", "wasm");
  if (!transposeKernel) throw new Error("tfjs-backend-wasm has no Transpose kernel");

  const kernelFunc = ({ inputs, backend, attrs }: KernelArgs): tfc.TensorInfo => {
    const { a, b } = float32Inputs(inputs);
    const transposeA = Boolean(attrs.transposeA);
    const transposeB = Boolean(attrs.transposeB);
    matmul ??= backend.wasm.cwrap("BatchMatMul", null, ["number", "array", "number", "number", "array", "number", "number", "number", "number"]) as MatMulFn;
    const { M, N, K, outer, outerA, outerB, batch, batchA, batchB } = matmulDims(a, b, transposeA, transposeB);
    // x·Wᵀ with a large W (backward through a frozen weight, the LM head): transposing and repacking W each call
    // costs more than the product, so compute (W·xᵀ)ᵀ instead, moving only the small operands.
    if (batch === 1 && !transposeA && transposeB && M * K + M * N < N * K) {
      return swappedProduct({ a, b, M, N, backend, transposeKernel: transposeKernel.kernelFunc, kernelFunc });
    }
    const out = backend.makeOutput([...outer, M, N], "float32");
    const outData = backend.dataIdMap.get(out.dataId) as TensorData;

    // Materialise transposes (the Transpose kernel is a fast memory copy); dispose them afterwards.
    const temporaries: tfc.TensorInfo[] = [];
    const plain = (x: tfc.TensorInfo, transposed: boolean): TensorData => {
      if (!transposed) return backend.dataIdMap.get(x.dataId) as TensorData;
      const rank = x.shape.length;
      const perm = [...Array(rank - 2).keys(), rank - 1, rank - 2];
      const t = transposeKernel.kernelFunc({ inputs: { x }, backend: backend as unknown as tfc.KernelBackend, attrs: { perm } }) as tfc.TensorInfo;
      temporaries.push(t);
      return backend.dataIdMap.get(t.dataId) as TensorData;
    };
    const aData = plain(a, transposeA);
    const bData = plain(b, transposeB);
    const shapeA = shapeBytes([1, M, K]);
    const shapeB = shapeBytes([1, K, N]);
    try {
      if (batch === 1) {
        matmul(aData.id, shapeA, 3, bData.id, shapeB, 3, false, false, outData.id);
      } else {
        // One XNNPACK call per batch on views; view ids are registered with the C++ side only and released after.
        const views: number[] = [];
        const view = (offset: number, count: number): number => {
          const id = backend.dataIdNextNumber++;
          backend.wasm.tfjs.registerTensor(id, count, offset);
          views.push(id);
          return id;
        };
        try {
          for (let i = 0; i < batch; i += 1) {
            const ai = batchA === 1 ? 0 : broadcastIndex(i, outer, outerA);
            const bi = batchB === 1 ? 0 : broadcastIndex(i, outer, outerB);
            matmul(
              view(aData.memoryOffset + ai * M * K * 4, M * K),
              shapeA,
              3,
              view(bData.memoryOffset + bi * K * N * 4, K * N),
              shapeB,
              3,
              false,
              false,
              view(outData.memoryOffset + i * M * N * 4, M * N),
            );
          }
        } finally {
          for (const id of views) backend.wasm.tfjs.disposeData(id);
        }
      }
    } finally {
      for (const t of temporaries) backend.disposeData(t.dataId);
    }
    return out;
  };
  return kernelFunc;
}

/**
 * Identity (the engine clones every tensor it saves for the backward pass) and a same-dtype Cast (every Mul
 * gradient does one) share the data instead of copying it, as the cpu backend and Reshape do: tensors are immutable.
 */
function registerSharingKernels(tf: Tf): void {
  const share = (fallback: tfc.KernelFunc | undefined) =>
    ((args: KernelArgs) => {
      const x = args.inputs.x as tfc.TensorInfo;
      if (fallback && args.attrs.dtype !== undefined && args.attrs.dtype !== x.dtype) return fallback(args as unknown as Parameters<tfc.KernelFunc>[0]);
      args.backend.incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    }) as unknown as tfc.KernelFunc;
  const copyCast = tf.getKernel("Cast", "wasm")?.kernelFunc;
  if (copyCast && sharingKernels.has(copyCast)) return;
  for (const [kernelName, fallback] of [["Identity", undefined], ["Cast", copyCast]] as const) {
    const kernelFunc = share(fallback);
    sharingKernels.add(kernelFunc);
    tf.unregisterKernel(kernelName, "wasm");
    tf.registerKernel({ kernelName, backendName: "wasm", kernelFunc });
  }
}

/** (B·Aᵀ)ᵀ for A [.., M, K] and B [.., N, K], both single matrices: equals A·Bᵀ. */
function swappedProduct(params: {
  a: tfc.TensorInfo;
  b: tfc.TensorInfo;
  M: number;
  N: number;
  backend: WasmBackend;
  transposeKernel: tfc.KernelFunc;
  kernelFunc: (args: KernelArgs) => tfc.TensorInfo;
}): tfc.TensorInfo {
  const { a, b, M, N, backend } = params;
  const kb = backend as unknown as tfc.KernelBackend;
  const rank = (x: tfc.TensorInfo) => x.shape.length;
  const swap = (x: tfc.TensorInfo) => [...Array(rank(x) - 2).keys(), rank(x) - 1, rank(x) - 2];
  const aT = params.transposeKernel({ inputs: { x: a }, backend: kb, attrs: { perm: swap(a) } }) as tfc.TensorInfo;
  const product = params.kernelFunc({ inputs: { a: b, b: aT }, backend, attrs: { transposeA: false, transposeB: false } });
  backend.disposeData(aT.dataId);
  const out = params.transposeKernel({ inputs: { x: product }, backend: kb, attrs: { perm: swap(product) } }) as tfc.TensorInfo;
  backend.disposeData(product.dataId);
  const outer = broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  return { ...out, shape: [...outer, M, N] };
}

export function broadcastShape(a: number[], b: number[]): number[] {
  const rank = Math.max(a.length, b.length);
  return Array.from({ length: rank }, (_, i) => {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`matMul batch shapes [${a.join(",")}] and [${b.join(",")}] do not broadcast`);
    return Math.max(da, db);
  });
}

/** The flat index into `shape` (broadcast against `outer`) of flat output batch index i. */
function broadcastIndex(i: number, outer: number[], shape: number[]): number {
  let rest = i;
  let index = 0;
  let stride = 1;
  for (let d = outer.length - 1; d >= 0; d -= 1) {
    const o = outer[d] ?? 1;
    const coordinate = rest % o;
    rest = Math.floor(rest / o);
    const sd = d - (outer.length - shape.length);
    if (sd >= 0) {
      const s = shape[sd] ?? 1;
      index += (s === 1 ? 0 : coordinate) * stride;
      stride *= s;
    }
  }
  return index;
}
