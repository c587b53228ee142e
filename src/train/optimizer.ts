import type * as tfc from "@tensorflow/tfjs-core";
import type { Tf } from "../model/types.js";

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const ADAMW_DEFAULTS: Omit<AdamWOptions, "weightDecay"> = { beta1: 0.9, beta2: 0.999, eps: 1e-8 };

/**
 * AdamW (Loshchilov & Hutter): bias-corrected moments and decoupled weight decay,
 * p ← p − lr·wd·p − lr·m̂/(√v̂ + ε). State is plain tensors so checkpoints can save and restore it exactly.
 */
export class AdamW {
  readonly m = new Map<string, tfc.Tensor>();
  readonly v = new Map<string, tfc.Tensor>();
  /** Optimizer steps taken (for bias correction). */
  t = 0;

  constructor(
    private readonly tf: Tf,
    private readonly options: AdamWOptions,
  ) {}

  step(params: tfc.Variable[], grads: Map<string, tfc.Tensor>, lr: number): void {
    const { tf } = this;
    const { beta1, beta2, eps, weightDecay } = this.options;
    this.t += 1;
    const c1 = 1 - beta1 ** this.t;
    const c2 = 1 - beta2 ** this.t;
    for (const p of params) {
      const g = grads.get(p.name);
      if (!g) continue;
      const [m, v] = tf.tidy(() => {
        const m0 = this.m.get(p.name) ?? tf.zerosLike(p);
        const v0 = this.v.get(p.name) ?? tf.zerosLike(p);
        const m1 = tf.add(tf.mul(m0, beta1), tf.mul(g, 1 - beta1));
        const v1 = tf.add(tf.mul(v0, beta2), tf.mul(tf.square(g), 1 - beta2));
        const update = tf.div(tf.div(m1, c1), tf.add(tf.sqrt(tf.div(v1, c2)), eps));
        const decayed = weightDecay > 0 ? tf.sub(p, tf.mul(p, lr * weightDecay)) : p;
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
        return [m1, v1];
      });
      this.m.get(p.name)?.dispose();
      this.v.get(p.name)?.dispose();
      this.m.set(p.name, m);
      this.v.set(p.name, v);
    }
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}
