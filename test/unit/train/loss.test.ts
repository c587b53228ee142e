import type * as tfc from "@tensorflow/tfjs-core";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackend } from "../../../src/backend/load.js";
import { loadModel } from "../../../src/model/load-model.js";
import type { CausalLM, Tf } from "../../../src/model/types.js";
import { weightedLmLoss } from "../../../src/train/loss.js";
import { tempDir } from "../../helpers/run-cli.js";
import { writeTinyCheckpoint } from "../../helpers/tiny-checkpoint.js";

const tmp = tempDir();
let tf: Tf;
let model: CausalLM;

beforeAll(async () => {
  tf = (await loadBackend({ forced: (process.env.TB as "wasm") ?? "wasm" })).tf;
  writeTinyCheckpoint(join(tmp.path, "m"), { kind: "llama", seed: 4 });
  model = await loadModel(tf, join(tmp.path, "m"));
});
afterAll(() => {
  model.dispose();
  tmp.cleanup();
});

describe("weightedLmLoss", () => {
  // Trained rows scattered (gathered and scattered back), or one run in the middle (sliced and padded back).
  const patterns: Record<string, (i: number) => boolean> = { scattered: (i) => i % 3 !== 0, "one run": (i) => i >= 10 && i < 290 };
  for (const [pattern, trained] of Object.entries(patterns)) {
    it(`equals the plain softmax cross-entropy, value and gradient, skipping unweighted rows (${pattern})`, () => {
      const N = 300; // more than one 256-row chunk
      const H = model.config.hiddenSize;
      const V = model.config.vocabSize;
      const hidden = tf.randomNormal([N, H], 0, 1, "float32", 7) as tfc.Tensor2D;
      const targets = Int32Array.from({ length: N }, (_, i) => (i * 37) % V);
      const weights = Float32Array.from({ length: N }, (_, i) => (trained(i) ? 0.01 * (1 + (i % 5)) : 0));
      const ours = tf.valueAndGrad((h: tfc.Tensor) => weightedLmLoss(tf, model, h as tfc.Tensor2D, targets, weights, { gradient: true }))(hidden);
      const plain = tf.valueAndGrad((h: tfc.Tensor) => {
        const logits = model.head.apply(h as tfc.Tensor2D);
        const logProbs = tf.logSoftmax(logits);
        const picked = tf.sum(tf.mul(logProbs, tf.oneHot(tf.tensor1d(targets, "int32"), V)), 1);
        return tf.neg(tf.sum(tf.mul(picked, tf.tensor1d(weights)))) as tfc.Scalar;
      })(hidden);
      expect(ours.value.dataSync()[0]).toBeCloseTo(plain.value.dataSync()[0] ?? NaN, 4);
      const a = ours.grad.dataSync();
      const b = plain.grad.dataSync();
      let maxError = 0;
      a.forEach((value, i) => (maxError = Math.max(maxError, Math.abs(value - (b[i] ?? NaN)))));
      expect(maxError).toBeLessThan(1e-6);
      // rows with weight 0 get exactly zero gradient
      for (const row of [0, 297]) for (let col = 0; col < H; col += 1) expect(a[row * H + col]).toBe(0);
      // Without a gradient (evaluation) the value is the same and nothing is left allocated.
      const before = tf.memory().numTensors;
      const value = weightedLmLoss(tf, model, hidden, targets, weights, { gradient: false });
      expect(value.dataSync()[0]).toBe(ours.value.dataSync()[0]);
      value.dispose();
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([hidden, ours.value, ours.grad, plain.value, plain.grad]);
    });
  }

  it("stays exact when a target's probability underflows float32 (−log p would be infinite)", () => {
    const H = model.config.hiddenSize;
    const V = model.config.vocabSize;
    // Large hidden states spread the logits by thousands: the least likely token's probability is exactly 0.
    const hidden = tf.mul(tf.randomNormal([4, H], 0, 1, "float32", 3), 1e4) as tfc.Tensor2D;
    const logits = model.head.apply(hidden);
    const targets = Int32Array.from(tf.argMin(logits, 1).dataSync());
    expect(Array.from(tf.softmax(logits).max(1).dataSync()).every((p) => p > 0.99)).toBe(true);
    const weights = Float32Array.from([0.5, 0.25, 0.125, 0.125]);
    const rows = logits.arraySync() as number[][];
    let expected = 0;
    rows.forEach((row, i) => {
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((sum, v) => sum + Math.exp(v - max), 0));
      expected += (weights[i] ?? 0) * (lse - (row[targets[i] ?? 0] ?? 0));
    });
    expect(expected).toBeGreaterThan(1000);
    for (const gradient of [true, false]) {
      const value = weightedLmLoss(tf, model, hidden, targets, weights, { gradient });
      const got = value.dataSync()[0] ?? NaN;
      expect(Number.isFinite(got)).toBe(true);
      expect(Math.abs(got - expected) / expected).toBeLessThan(1e-5);
      value.dispose();
    }
    tf.dispose([hidden, logits]);
  });
});

/** LoRA on every linear layer, with B drawn at random (it starts at zero) so every gradient path is exercised. */
async function loraWithValues(dropout: number, seed: number) {
  const { attachLora } = await import("../../../src/lora/attach.js");
  const lora = attachLora(tf, model, { r: 4, alpha: 8, dropout, targetModules: "all-linear", layers: "all", rslora: false, seed });
  for (const { adapter } of lora.adapters) adapter.b.assign(tf.randomNormal(adapter.b.shape, 0, 0.1, "float32", seed - 2));
  const ids = tf.tensor2d(Int32Array.from([1, 5, 9, 14, 20, 3, 7, 11, 2, 30, 31, 32]), [2, 6], "int32");
  return { lora, ids };
}

describe("training-mode gradients", () => {
  it("(hand-written RMSNorm and cross-entropy gradients) equal tfjs autodiff of the plain ops", async () => {
    const { lora, ids } = await loraWithValues(0, 6);
    const V = model.config.vocabSize;
    const targets = Int32Array.from({ length: 12 }, (_, i) => (i * 7 + 2) % V);
    const weights = Float32Array.from({ length: 12 }, (_, i) => (i % 4 === 3 ? 0 : 1 / 9));
    const flat = (h: tfc.Tensor) => tf.reshape(h, [12, model.config.hiddenSize]) as tfc.Tensor2D;
    const ours = tf.variableGrads(() => weightedLmLoss(tf, model, flat(model.hidden({ ids, training: true })), targets, weights, { gradient: true }), lora.variables());
    const plain = tf.variableGrads(() => {
      // training: false takes the plain RMSNorm ops; dropout is 0, so the forward pass is the same.
      const logProbs = tf.logSoftmax(model.head.apply(flat(model.hidden({ ids, training: false }))));
      const picked = tf.sum(tf.mul(logProbs, tf.oneHot(tf.tensor1d(targets, "int32"), V)), 1);
      return tf.neg(tf.sum(tf.mul(picked, tf.tensor1d(weights)))) as tfc.Scalar;
    }, lora.variables());
    expect(ours.value.dataSync()[0]).toBeCloseTo(plain.value.dataSync()[0] ?? NaN, 5);
    let largest = 0;
    for (const [name, g] of Object.entries(plain.grads)) {
      const a = ours.grads[name]?.dataSync() ?? new Float32Array();
      const b = g.dataSync();
      expect(a.length, name).toBe(b.length);
      b.forEach((v, i) => {
        largest = Math.max(largest, Math.abs(v));
        expect(Math.abs((a[i] ?? NaN) - v), `${name}[${i}]`).toBeLessThan(1e-6 + 1e-4 * Math.abs(v));
      });
    }
    expect(largest).toBeGreaterThan(1e-3); // the gradients compared are not all ~0
    tf.dispose([ids, ours.value, plain.value, ...Object.values(ours.grads), ...Object.values(plain.grads)]);
    lora.dispose();
  });
});

describe("gradient checkpointing", () => {
  it("gives the same loss and LoRA gradients as keeping every activation", async () => {
    const { lora, ids } = await loraWithValues(0.2, 5);
    const targets = Int32Array.from({ length: 12 }, (_, i) => (i * 5 + 1) % model.config.vocabSize);
    const weights = new Float32Array(12).fill(1 / 12);
    const run = (checkpoint: boolean) => {
      lora.dropoutClock.step = 1;
      const { value, grads } = tf.variableGrads(() => {
        const h = model.hidden({ ids, training: true, checkpoint });
        return weightedLmLoss(tf, model, tf.reshape(h, [12, model.config.hiddenSize]) as tfc.Tensor2D, targets, weights, { gradient: true });
      }, lora.variables());
      return { loss: value.dataSync()[0] ?? NaN, grads: Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, Array.from(g.dataSync())])) };
    };
    const plain = run(false);
    const checkpointed = run(true);
    expect(checkpointed.loss).toBeCloseTo(plain.loss, 6);
    expect(Object.keys(checkpointed.grads).sort()).toEqual(Object.keys(plain.grads).sort());
    for (const [name, values] of Object.entries(plain.grads)) {
      const other = checkpointed.grads[name] ?? [];
      values.forEach((v, i) => expect(Math.abs(v - (other[i] ?? NaN))).toBeLessThan(1e-6));
    }
    lora.dispose();
  });
});
