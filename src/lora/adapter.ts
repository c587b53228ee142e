import type * as tfc from "@tensorflow/tfjs-core";
import type { ProjectionAdapter, Tf } from "../model/types.js";

/**
 * One LoRA update on a projection: delta = dropout(x) · A · B · scale, with A [in, r] and B [r, out]
 * (PEFT stores the transposes: lora_A [r, in], lora_B [out, r]). Only A and B are trainable.
 */
export class LoraAdapter implements ProjectionAdapter {
  constructor(
    private readonly tf: Tf,
    readonly a: tfc.Variable<tfc.Rank.R2>,
    readonly b: tfc.Variable<tfc.Rank.R2>,
    readonly scale: number,
    private readonly dropout: number,
    /** A fresh, deterministic seed for each dropout mask (depends on step, micro-batch and module). */
    private readonly dropoutSeed: () => number,
  ) {}

  variables(): tfc.Variable[] {
    return [this.a, this.b];
  }

  delta(x: tfc.Tensor2D, training: boolean): tfc.Tensor2D {
    const { tf } = this;
    const input = training && this.dropout > 0 ? (tf.dropout(x, this.dropout, undefined, this.dropoutSeed()) as tfc.Tensor2D) : x;
    // Scaled at rank r, where the tensor is smallest (forward and backward).
    return tf.matMul(tf.mul(tf.matMul(input, this.a), this.scale), this.b);
  }

  lowRank(): { a: Float32Array; b: Float32Array; rank: number; scale: number } {
    return { a: this.a.dataSync() as Float32Array, b: this.b.dataSync() as Float32Array, rank: this.a.shape[1], scale: this.scale };
  }
}

/** scale = alpha / r, or alpha / √r with rank-stabilised LoRA. */
export function loraScale(alpha: number, r: number, rslora: boolean): number {
  return rslora ? alpha / Math.sqrt(r) : alpha / r;
}
