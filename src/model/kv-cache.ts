import type * as tfc from "@tensorflow/tfjs-core";

/** Keys and values of every layer for the tokens seen so far, so decoding never recomputes the prefix. */
export class KvCache {
  private keys: Array<tfc.Tensor4D | null>;
  private values: Array<tfc.Tensor4D | null>;
  length = 0;

  constructor(numLayers: number) {
    this.keys = new Array<tfc.Tensor4D | null>(numLayers).fill(null);
    this.values = new Array<tfc.Tensor4D | null>(numLayers).fill(null);
  }

  /** Past keys/values [B, kvHeads, S, headDim] of a layer, or null before the first step. */
  get(layer: number): { k: tfc.Tensor4D; v: tfc.Tensor4D } | null {
    const k = this.keys[layer];
    const v = this.values[layer];
    return k && v ? { k, v } : null;
  }

  /** Replaces a layer's entries with the extended ones (called inside the forward's tidy, so kept). */
  set(tf: { keep<T extends tfc.Tensor>(t: T): T }, layer: number, k: tfc.Tensor4D, v: tfc.Tensor4D): void {
    this.stale.push(...[this.keys[layer], this.values[layer]].filter((t): t is tfc.Tensor4D => t !== null));
    this.keys[layer] = tf.keep(k);
    this.values[layer] = tf.keep(v);
  }

  /** Appends this step's keys/values [B, kvHeads, T, hd] to a layer's and returns all of them (past + new). */
  append(tf: { keep<T extends tfc.Tensor>(t: T): T; concat<T extends tfc.Tensor>(tensors: T[], axis: number): T }, layer: number, k: tfc.Tensor4D, v: tfc.Tensor4D): { k: tfc.Tensor4D; v: tfc.Tensor4D } {
    const previous = this.get(layer);
    const keys = previous ? tf.concat([previous.k, k], 2) : k;
    const values = previous ? tf.concat([previous.v, v], 2) : v;
    this.set(tf, layer, keys, values);
    return { k: keys, v: values };
  }

  /** Frees the tensors replaced during the last step; the model calls it after each forward. */
  commit(newLength: number): void {
    for (const tensor of this.stale) tensor.dispose();
    this.stale = [];
    this.length = newLength;
  }

  dispose(): void {
    for (const tensor of [...this.keys, ...this.values, ...this.stale]) tensor?.dispose();
    this.keys.fill(null);
    this.values.fill(null);
    this.stale = [];
    this.length = 0;
  }

  private stale: tfc.Tensor4D[] = [];
}
