import type * as tfc from "@tensorflow/tfjs-core";
import { tensorMatrix, type FrozenMatrix } from "./frozen.js";
import { transposeInto, type ProjectionGroup } from "./linear.js";
import type { Tf } from "./types.js";
import type { WeightReader } from "./weight-reader.js";

/**
 * What the Llama-family and Gemma loaders read weights with: each loader keeps every tensor and stored matrix it
 * makes in `tensors` / `matrices`, which the model frees on dispose.
 */
export interface WeightLoaders {
  tensors: tfc.Tensor[];
  matrices: FrozenMatrix[];
  keep<T extends tfc.Tensor>(t: T): T;
  vector(name: string, size: number): Promise<tfc.Tensor1D>;
  /**
   * Projections reading the same input (or one alone), [out, in] weights named `${module}.weight` (and
   * `${module}.bias` with `bias`): see ProjectionGroup. With a native store, one FrozenMatrix each; otherwise
   * pre-transposed float32 tensors, fused into one [in, Σ out] matrix when `fuse`.
   */
  group(modules: string[], outs: number[], inFeatures: number, bias: boolean): Promise<ProjectionGroup>;
  /** A [rows, cols] table (embedding, LM head) as a FrozenMatrix: stored, or a float32 tensor. */
  table(name: string, rows: number, cols: number): Promise<FrozenMatrix>;
}

export function weightLoaders(tf: Tf, reader: WeightReader, options: { fuse: boolean }): WeightLoaders {
  const tensors: tfc.Tensor[] = [];
  const matrices: FrozenMatrix[] = [];
  const keep = <T extends tfc.Tensor>(t: T): T => {
    tensors.push(t);
    return t;
  };
  const vector = async (name: string, size: number) => keep(tf.tensor1d(await reader.read(name, [size])));
  /** Several [out, in] weights side by side in one [in, Σ out] matrix. */
  const fused = async (names: string[], outs: number[], inFeatures: number) => {
    const cols = outs.reduce((a, b) => a + b, 0);
    const data = new Float32Array(inFeatures * cols);
    let offset = 0;
    for (const [i, name] of names.entries()) {
      const out = outs[i] ?? 0;
      transposeInto(data, cols, offset, await reader.read(name, [out, inFeatures]), out, inFeatures);
      offset += out;
    }
    return keep(tf.tensor2d(data, [inFeatures, cols]));
  };
  const fusedBias = async (names: string[], outs: number[]) => {
    const data = new Float32Array(outs.reduce((a, b) => a + b, 0));
    let offset = 0;
    for (const [i, name] of names.entries()) {
      data.set(await reader.read(name, [outs[i] ?? 0]), offset);
      offset += outs[i] ?? 0;
    }
    return keep(tf.tensor1d(data));
  };
  const frozen = async (name: string, rows: number, cols: number): Promise<FrozenMatrix> => {
    const matrix = await reader.frozen(name, [rows, cols]);
    matrices.push(matrix);
    return matrix;
  };
  const group = async (modules: string[], outs: number[], inFeatures: number, bias: boolean): Promise<ProjectionGroup> => {
    const biases: Array<tfc.Tensor1D | null> = [];
    if (reader.store) {
      const list: FrozenMatrix[] = [];
      for (const [i, m] of modules.entries()) {
        list.push(await frozen(`${m}.weight`, outs[i] ?? 0, inFeatures));
        biases.push(bias ? await vector(`${m}.bias`, outs[i] ?? 0) : null);
      }
      return { kind: "frozen", matrices: list, biases, outs };
    }
    if (options.fuse) {
      return { kind: "tensor", weights: [await fused(modules.map((m) => `${m}.weight`), outs, inFeatures)], biases: [bias ? await fusedBias(modules.map((m) => `${m}.bias`), outs) : null], outs };
    }
    const weights: tfc.Tensor2D[] = [];
    for (const [i, m] of modules.entries()) {
      weights.push(await fused([`${m}.weight`], [outs[i] ?? 0], inFeatures));
      biases.push(bias ? await vector(`${m}.bias`, outs[i] ?? 0) : null);
    }
    return { kind: "tensor", weights, biases, outs };
  };
  const table = async (name: string, rows: number, cols: number): Promise<FrozenMatrix> =>
    reader.store ? frozen(name, rows, cols) : tensorMatrix(tf, keep(tf.tensor2d(await reader.read(name, [rows, cols]), [rows, cols])));
  return { tensors, matrices, keep, vector, group, table };
}
