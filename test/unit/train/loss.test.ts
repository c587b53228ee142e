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
  tf = (await loadBackend({ forced: "wasm" })).tf;
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
