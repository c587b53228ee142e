import type * as tfc from "@tensorflow/tfjs-core";
import type { FrozenMatrix } from "./frozen.js";
import type { Projection, ProjectionAdapter, Tf } from "./types.js";

/** Transposes in square tiles of this side, so both the reads and the strided writes stay in cache. */
const TILE = 32;

/**
 * Copies a PEFT-orientation weight [out, in] (row-major) into columns [offset, offset+out) of a fused
 * [in, cols] matrix, so the forward pass multiplies without transposing.
 */
export function transposeInto(dst: Float32Array, cols: number, offset: number, src: Float32Array, out: number, inFeatures: number): void {
  for (let o0 = 0; o0 < out; o0 += TILE) {
    const o1 = Math.min(out, o0 + TILE);
    for (let i0 = 0; i0 < inFeatures; i0 += TILE) {
      const i1 = Math.min(inFeatures, i0 + TILE);
      for (let i = i0; i < i1; i += 1) {
        const base = i * cols + offset;
        for (let o = o0; o < o1; o += 1) dst[base + o] = src[o * inFeatures + i] ?? 0;
      }
    }
  }
}

/** A projection that lives in columns [offset, offset+out) of a fused [in, cols] weight. */
export function fusedProjection(tf: Tf, params: { name: string; fused: tfc.Tensor2D; offset: number; outFeatures: number }): Projection {
  const inFeatures = params.fused.shape[0];
  return {
    name: params.name,
    inFeatures,
    outFeatures: params.outFeatures,
    adapter: null as ProjectionAdapter | null,
    weight: () => tf.tidy(() => tf.transpose(tf.slice(params.fused, [0, params.offset], [inFeatures, params.outFeatures]))),
  };
}

/** Adds each projection's adapter delta (if any) to its slice of a fused output [N, Σ out]. */
export function addAdapterDeltas(tf: Tf, input: tfc.Tensor2D, parts: tfc.Tensor2D[], projections: Projection[], training: boolean): tfc.Tensor2D[] {
  return parts.map((part, i) => {
    const adapter = projections[i]?.adapter;
    return adapter ? tf.add(part, adapter.delta(input, training)) : part;
  });
}

/** The trainable tensors of the adapters hanging off these projections. */
export function adapterVariables(projections: Projection[]): tfc.Variable[] {
  return projections.flatMap((p) => p.adapter?.variables() ?? []);
}

/**
 * Projections that read the same input (q/k/v; gate/up), or a single one (o, down). As float32 tensors: either one
 * fused [in, Σ out] matrix whose output is split, or one pre-transposed [in, out] matrix each; fusing saves
 * dispatches where matmuls are slow to launch, splitting avoids copying the output apart once the matmul is fast.
 * As frozen matrices (a native store): one each, multiplied by the store's kernels.
 */
export type ProjectionGroup =
  | { kind: "tensor"; weights: tfc.Tensor2D[]; biases: Array<tfc.Tensor1D | null>; outs: number[] }
  | { kind: "frozen"; matrices: FrozenMatrix[]; biases: Array<tfc.Tensor1D | null>; outs: number[] };

export function applyGroup(tf: Tf, group: ProjectionGroup, x: tfc.Tensor2D): tfc.Tensor2D[] {
  const withBias = (y: tfc.Tensor2D, b: tfc.Tensor1D | null | undefined): tfc.Tensor2D => (b ? tf.add(y, b) : y);
  if (group.kind === "frozen") return group.matrices.map((m, i) => withBias(m.apply(x), group.biases[i]));
  const [only] = group.weights;
  if (only && group.weights.length === 1 && group.outs.length > 1) return tf.split(withBias(tf.matMul(x, only), group.biases[0]), group.outs, 1) as tfc.Tensor2D[];
  return group.weights.map((w, i) => withBias(tf.matMul(x, w), group.biases[i]));
}

/** The i-th projection of a group, named by its module path, for adapters and checks. */
export function groupMember(tf: Tf, group: ProjectionGroup, i: number, name: string): Projection {
  const outFeatures = group.outs[i] ?? 0;
  if (group.kind === "frozen") {
    const matrix = group.matrices[i] as FrozenMatrix;
    return { name, inFeatures: matrix.cols, outFeatures, adapter: null, weight: () => matrix.dense() };
  }
  const fused = group.weights.length === 1;
  const offset = fused ? group.outs.slice(0, i).reduce((a, b) => a + b, 0) : 0;
  return fusedProjection(tf, { name, fused: (fused ? group.weights[0] : group.weights[i]) as tfc.Tensor2D, offset, outFeatures });
}
