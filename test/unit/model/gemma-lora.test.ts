/**
 * LoRA on Gemma: adapters attach by PEFT's target names, the training gradient (through the soft-caps, the
 * (1 + w) norms and the q/k norms, with and without checkpointing) matches finite differences, a few SGD steps
 * lower the loss, and the trained adapter saved as PEFT, loaded back, and merged into the base gives the same logits
 * (the merged checkpoint also matches the float64 reference).
 */
import { join } from "node:path";
import type * as tfc from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackend } from "../../../src/backend/load.js";
import { attachLora, type LoraSet } from "../../../src/lora/attach.js";
import { mergeAdapter } from "../../../src/lora/merge.js";
import { loadPeftAdapter } from "../../../src/lora/peft-load.js";
import { savePeftAdapter } from "../../../src/lora/peft-save.js";
import { loadModel } from "../../../src/model/load-model.js";
import type { CausalLM, Tf } from "../../../src/model/types.js";
import { weightedLmLoss } from "../../../src/train/loss.js";
import { referenceGemmaLogits } from "../../helpers/reference-gemma.js";
import { tempDir } from "../../helpers/run-cli.js";
import { writeTinyGemma, type TinyGemmaSpec } from "../../helpers/tiny-gemma.js";
import { logitsOf, maxError } from "../../helpers/logits.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const IDS = [1, 5, 17, 42, 3, 8, 60, 21, 9, 33, 14, 2];
const SPECS: Record<string, TinyGemmaSpec> = {
  "gemma3 with a final-logit soft-cap": { kind: "gemma3_text", attnSoftcap: 1.5, finalSoftcap: 2, seed: 51 },
  "gemma2 (soft-caps bind)": { kind: "gemma2", seed: 52 },
};

let tf: Tf;
beforeAll(async () => {
  tf = (await loadBackend({ forced: "wasm" })).tf;
});



function attach(model: CausalLM): LoraSet {
  const lora = attachLora(tf, model, { r: 2, alpha: 4, dropout: 0, targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], layers: "all", rslora: false, seed: 7 });
  let k = 0;
  for (const { adapter } of lora.adapters) adapter.b.assign(tf.tensor2d(Float32Array.from({ length: adapter.b.size }, () => Math.sin((k += 1) * 1.3) * 0.1), adapter.b.shape));
  return lora;
}

const targets = Int32Array.from(IDS.slice(1).concat([0]));
const weights = Float32Array.from(IDS, (_, i) => (i < IDS.length - 1 ? 1 : 0));

/** The training loss, and with `grads` its gradients for the adapters' variables. */
function loss(model: CausalLM, lora: LoraSet, checkpoint: boolean): { value: number; grads: Map<string, Float32Array> } {
  const ids = tf.tensor2d(Int32Array.from(IDS), [1, IDS.length], "int32");
  const { value, grads } = tf.variableGrads(() => {
    const h = model.hidden({ ids, training: true, checkpoint });
    return weightedLmLoss(tf, model, tf.reshape(h, [IDS.length, -1]) as tfc.Tensor2D, targets, weights, { gradient: true });
  }, lora.variables());
  const out = new Map<string, Float32Array>();
  for (const v of lora.variables()) out.set(v.name, (grads[v.name] as tfc.Tensor).dataSync() as Float32Array);
  const result = { value: value.dataSync()[0] ?? NaN, grads: out };
  tf.dispose([value, ids, ...Object.values(grads)]);
  return result;
}

function evalLoss(model: CausalLM): number {
  const ids = tf.tensor2d(Int32Array.from(IDS), [1, IDS.length], "int32");
  const h = model.hidden({ ids });
  const l = weightedLmLoss(tf, model, tf.reshape(h, [IDS.length, -1]) as tfc.Tensor2D, targets, weights, { gradient: false });
  const value = l.dataSync()[0] ?? NaN;
  tf.dispose([ids, h, l]);
  return value;
}

describe.each(Object.entries(SPECS))("%s", (name, spec) => {
  it("LoRA gradients match finite differences, with and without checkpointing", async () => {
    const dir = join(tmp.path, `${name.replace(/\W+/g, "-")}-grad`);
    writeTinyGemma(dir, spec);
    const model = await loadModel(tf, dir);
    const lora = attach(model);
    try {
      expect(lora.adapters).toHaveLength(7 * model.config.numLayers);
      const plain = loss(model, lora, false);
      // The soft-capped loss and its gradient leave no tensors behind.
      const tensors = tf.memory().numTensors;
      const checkpointed = loss(model, lora, true);
      expect(tf.memory().numTensors).toBe(tensors);
      for (const [key, g] of plain.grads) expect(maxError(checkpointed.grads.get(key) ?? new Float32Array(), g), key).toBeLessThan(1e-5);
      // Directional derivative along a fixed direction D over every A and B: (L(θ+εD) − L(θ−εD)) / 2ε ≈ Σ grad·D.
      const variables = lora.variables();
      const directions = variables.map((v, n) => Float32Array.from({ length: v.size }, (_, i) => Math.cos(n * 31 + i * 0.7)));
      let analytic = 0;
      variables.forEach((v, n) => (plain.grads.get(v.name) ?? new Float32Array()).forEach((g, i) => (analytic += g * (directions[n]?.[i] ?? 0))));
      const shift = (epsilon: number) =>
        variables.forEach((v, n) => v.assign(tf.tidy(() => tf.add(v, tf.mul(tf.tensor(directions[n] ?? new Float32Array(), v.shape), epsilon)))));
      // The central difference's error shrinks as ε² (checked: ε = 1e-2 is 1% off here, 1e-3 is 1e-4 off).
      const epsilon = 1e-3;
      shift(epsilon);
      const up = evalLoss(model);
      shift(-2 * epsilon);
      const down = evalLoss(model);
      shift(epsilon);
      const numeric = (up - down) / (2 * epsilon);
      expect(Math.abs(analytic)).toBeGreaterThan(0.05);
      expect(Math.abs(numeric - analytic) / Math.abs(analytic)).toBeLessThan(2e-3);
    } finally {
      lora.dispose();
      model.dispose();
    }
  });

  it("trains, saves as PEFT, loads back and merges to the same logits", async () => {
    const dir = join(tmp.path, `${name.replace(/\W+/g, "-")}-base`);
    writeTinyGemma(dir, spec);
    const model = await loadModel(tf, dir);
    const lora = attach(model);
    const adapterDir = join(tmp.path, `${name.replace(/\W+/g, "-")}-adapter`);
    const layers = model.config.numLayers;
    let trained: Float32Array = new Float32Array();
    let disposed = false;
    try {
      const before = evalLoss(model);
      for (let step = 0; step < 5; step += 1) {
        const { grads } = loss(model, lora, true);
        for (const v of lora.variables()) v.assign(tf.tidy(() => tf.sub(v, tf.mul(tf.tensor(grads.get(v.name) ?? new Float32Array(), v.shape), 0.5))));
      }
      const after = evalLoss(model);
      expect(after).toBeLessThan(before - 0.05);
      trained = logitsOf(tf, model, IDS);
      await savePeftAdapter(tf, adapterDir, lora, model.config, { nameOrPath: "tiny/gemma", revision: null });
      lora.dispose();
      disposed = true;
      expect(maxError(logitsOf(tf, model, IDS), trained)).toBeGreaterThan(1e-3);
      const loaded = await loadPeftAdapter(tf, model, adapterDir);
      expect(Array.from(logitsOf(tf, model, IDS))).toEqual(Array.from(trained));
      loaded.dispose();
    } finally {
      if (!disposed) lora.dispose();
      model.dispose();
    }

    const mergedDir = join(tmp.path, `${name.replace(/\W+/g, "-")}-merged`);
    const { merged } = await mergeAdapter({ baseDir: dir, adapterDir, out: mergedDir });
    expect(merged).toBe(7 * layers);
    const mergedModel = await loadModel(tf, mergedDir);
    expect(maxError(logitsOf(tf, mergedModel, IDS), trained)).toBeLessThan(1e-4);
    mergedModel.dispose();
    const reference = referenceGemmaLogits(mergedDir, IDS).flatMap((row) => Array.from(row));
    expect(maxError(trained, reference)).toBeLessThan(1e-4);
  });
});
