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
  it("equals the plain softmax cross-entropy, value and gradient, skipping unweighted rows", () => {
    const N = 300; // more than one 256-row chunk
    const H = model.config.hiddenSize;
    const V = model.config.vocabSize;
    const hidden = tf.randomNormal([N, H], 0, 1, "float32", 7) as tfc.Tensor2D;
    const targets = Int32Array.from({ length: N }, (_, i) => (i * 37) % V);
    const weights = Float32Array.from({ length: N }, (_, i) => (i % 3 === 0 ? 0 : 0.01 * (1 + (i % 5))));
    const ours = tf.valueAndGrad((h: tfc.Tensor) => weightedLmLoss(tf, model, h as tfc.Tensor2D, targets, weights))(hidden);
    const plain = tf.valueAndGrad((h: tfc.Tensor) => {
      const logits = tf.matMul(h as tfc.Tensor2D, model.lmHeadWeight, false, true);
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
    for (let col = 0; col < H; col += 1) expect(a[col]).toBe(0);
  });
});

describe("gradient checkpointing", () => {
  it("gives the same loss and LoRA gradients as keeping every activation", async () => {
    const { attachLora } = await import("../../../src/lora/attach.js");
    const lora = attachLora(tf, model, { r: 4, alpha: 8, dropout: 0.2, targetModules: "all-linear", layers: "all", rslora: false, seed: 5 });
    // B starts at zero; give it values so every gradient path is exercised.
    for (const { adapter } of lora.adapters) adapter.b.assign(tf.randomNormal(adapter.b.shape, 0, 0.1, "float32", 3));
    const ids = tf.tensor2d(Int32Array.from([1, 5, 9, 14, 20, 3, 7, 11, 2, 30, 31, 32]), [2, 6], "int32");
    const targets = Int32Array.from({ length: 12 }, (_, i) => (i * 5 + 1) % model.config.vocabSize);
    const weights = new Float32Array(12).fill(1 / 12);
    const run = (checkpoint: boolean) => {
      lora.dropoutClock.step = 1;
      const { value, grads } = tf.variableGrads(() => {
        const h = model.hidden({ ids, training: true, checkpoint });
        return weightedLmLoss(tf, model, tf.reshape(h, [12, model.config.hiddenSize]) as tfc.Tensor2D, targets, weights);
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
