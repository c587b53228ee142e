// Gradient accumulation and packing in the real training loop, against the float64 reference: whatever the split
// into micro-batches (one big padded batch, one sequence per micro-batch, packed rows), every optimizer step sees
// the gradient of the same loss — the mean cross-entropy over all trained tokens of the step — and the steps agree.
import type * as tfc from "@tensorflow/tfjs-core";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackend } from "../../../src/backend/load.js";
import { buildSequences, type Sequence } from "../../../src/data/sequences.js";
import { attachLora, type LoraSet } from "../../../src/lora/attach.js";
import { loadModel } from "../../../src/model/load-model.js";
import type { CausalLM, Tf } from "../../../src/model/types.js";
import { trainSchema } from "../../../src/recipe/schema.js";
import { trainLoop } from "../../../src/train/loop.js";
import type { TrainRow } from "../../../src/train/metrics.js";
import { ADAMW_DEFAULTS, AdamW } from "../../../src/train/optimizer.js";
import { crossEntropy, loadReference, type ReferenceModel } from "../../helpers/reference-model.js";
import { tempDir } from "../../helpers/run-cli.js";
import { writeTinyCheckpoint } from "../../helpers/tiny-checkpoint.js";

const tmp = tempDir();
const dir = join(tmp.path, "m");
let tf: Tf;
let model: CausalLM;
let lora: LoraSet;
let start: Map<string, Float32Array>;

// Three examples with 4, 7 and 2 trained tokens: a mean of per-micro-batch means would weigh them differently.
const EXAMPLES = [
  [1, 5, 17, 42, 3, 8],
  [1, 21, 9, 33, 14, 60, 2, 77, 50],
  [1, 44, 81, 7],
];
const items = EXAMPLES.map((ids) => ({ ids, labels: Uint8Array.from(ids, (_, i) => (i < 2 ? 0 : 1)) }));

/** AdamW that records, at every step, the gradients it is given and the parameters they were taken at. */
class RecordingAdamW extends AdamW {
  readonly steps: Array<{ grads: Map<string, Float32Array>; params: Map<string, Float32Array> }> = [];
  override step(params: tfc.Variable[], grads: Map<string, tfc.Tensor>, lr: number): void {
    this.steps.push({
      grads: new Map([...grads].map(([name, g]) => [name, Float32Array.from(g.dataSync())])),
      params: new Map(params.map((p) => [p.name, Float32Array.from(p.dataSync())])),
    });
    super.step(params, grads, lr);
  }
}

beforeAll(async () => {
  tf = (await loadBackend({ forced: "wasm" })).tf;
  writeTinyCheckpoint(dir, { kind: "llama", heads: 4, kvHeads: 2, seed: 41 });
  model = await loadModel(tf, dir);
  lora = attachLora(tf, model, { r: 2, alpha: 4, dropout: 0, targetModules: ["q_proj", "v_proj", "down_proj"], layers: "all", rslora: false, seed: 5 });
  // B starts at zero, which would leave A's gradient zero: start from a non-zero B so both are checked.
  lora.adapters.forEach(({ adapter }, i) => adapter.b.assign(tf.mul(tf.randomNormal(adapter.b.shape, 0, 1, "float32", 100 + i), 0.2)));
  start = new Map(lora.variables().map((v) => [v.name, Float32Array.from(v.dataSync())]));
});
afterAll(() => {
  lora.dispose();
  model.dispose();
  tmp.cleanup();
});

/** Runs `steps` optimizer steps of the real loop from the same starting adapter, recording every step. */
async function train(params: { sequences: Sequence[]; batchSize: number; gradAccum: number; packing: boolean; checkpointing: boolean; steps: number }) {
  for (const v of lora.variables()) v.assign(tf.tensor(start.get(v.name) ?? new Float32Array(), v.shape));
  const optimizer = new RecordingAdamW(tf, { ...ADAMW_DEFAULTS, weightDecay: 0 });
  const config = {
    ...trainSchema.parse({ max_steps: params.steps, batch_size: params.batchSize, grad_accum: params.gradAccum, packing: params.packing, lr: 1e-2, schedule: "constant", max_grad_norm: null, save_every: 100, eval_every: 100, seed: 3 }),
    gradient_checkpointing: params.checkpointing,
  };
  const rows: TrainRow[] = [];
  await trainLoop({
    tf,
    model,
    lora,
    optimizer,
    train: params.sequences,
    validation: [],
    config,
    totalSteps: params.steps,
    padId: 0,
    resume: null,
    signal: new AbortController().signal,
    callbacks: { onStep: async (row) => void rows.push(row), onEval: async () => undefined, onCheckpoint: async () => undefined, onLog: () => undefined },
  });
  const after = new Map(lora.variables().map((v) => [v.name, Float32Array.from(v.dataSync())]));
  optimizer.dispose();
  return { steps: optimizer.steps, rows, after };
}

/** The loss the loop minimises, in float64 with each adapter folded into its base weight: mean CE over trained tokens. */
function referenceLoss(reference: ReferenceModel, params: Map<string, ArrayLike<number>>, weighting: "tokens" | "mean of example means" = "tokens"): number {
  const saved = new Map<string, Float64Array>();
  for (const { name, adapter, projection } of lora.adapters) {
    const key = `${name}.weight`;
    const base = reference.weights.get(key);
    if (!base) throw new Error(`reference has no ${key}`);
    saved.set(key, base.data);
    const a = params.get(adapter.a.name) ?? []; // [in, r]
    const b = params.get(adapter.b.name) ?? []; // [r, out]
    const { inFeatures: n, outFeatures: m } = projection;
    const r = a.length / n;
    // PEFT/HF orientation [out, in]: W' = W + scale · Bᵀ Aᵀ.
    const merged = Float64Array.from(base.data, (w, k) => {
      const o = Math.floor(k / n);
      const i = k % n;
      let delta = 0;
      for (let j = 0; j < r; j += 1) delta += (a[i * r + j] ?? 0) * (b[j * m + o] ?? 0);
      return w + adapter.scale * delta;
    });
    reference.weights.set(key, { ...base, data: merged });
  }
  let sum = 0;
  let count = 0;
  let meanOfMeans = 0;
  for (const { ids, labels } of items) {
    const logits = reference.logits(ids);
    let exampleSum = 0;
    let exampleCount = 0;
    for (let t = 0; t + 1 < ids.length; t += 1) {
      if (labels[t + 1] !== 1) continue;
      exampleSum += crossEntropy(logits[t] ?? new Float64Array(), ids[t + 1] ?? -1);
      exampleCount += 1;
    }
    sum += exampleSum;
    count += exampleCount;
    meanOfMeans += exampleSum / exampleCount / items.length;
  }
  for (const [key, data] of saved) {
    const base = reference.weights.get(key);
    if (base) reference.weights.set(key, { ...base, data });
  }
  return weighting === "tokens" ? sum / count : meanOfMeans;
}

/** A seeded direction in parameter space (one entry per LoRA variable). */
function direction(seed: number): Map<string, Float32Array> {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 31 - 1);
  return new Map([...start].map(([name, values]) => [name, Float32Array.from(values, () => next())]));
}

/** params + ε·d, in float64 (float32 would round away most of a small step). */
function along(params: Map<string, Float32Array>, d: Map<string, Float32Array>, epsilon: number): Map<string, Float64Array> {
  return new Map([...params].map(([name, values]) => [name, Float64Array.from(values, (v, k) => v + epsilon * (d.get(name)?.[k] ?? 0))]));
}

function dot(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let sum = 0;
  for (const [name, values] of a) values.forEach((v, k) => (sum += v * (b.get(name)?.[k] ?? 0)));
  return sum;
}

function maxAbsDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let max = 0;
  for (const [name, values] of a) values.forEach((v, k) => (max = Math.max(max, Math.abs(v - (b.get(name)?.[k] ?? NaN)))));
  return max;
}

function maxAbs(a: Map<string, Float32Array>): number {
  let max = 0;
  for (const values of a.values()) for (const v of values) max = Math.max(max, Math.abs(v));
  return max;
}

describe("gradient accumulation and packing in trainLoop", () => {
  it("every split of a step into micro-batches gives the reference gradient of the token-weighted loss, and the same steps", async () => {
    const unpacked = buildSequences(items, { maxSeqLen: 32, packing: false, padId: 0 }).sequences;
    const packed = buildSequences(items, { maxSeqLen: 13, packing: true, padId: 0 }).sequences;
    expect(packed.map((s) => s.ids.length)).toEqual([6, 9 + 4]);
    const runs = {
      "one batch of 3 (padded)": await train({ sequences: unpacked, batchSize: 3, gradAccum: 1, packing: false, checkpointing: false, steps: 2 }),
      "3 micro-batches of 1": await train({ sequences: unpacked, batchSize: 1, gradAccum: 3, packing: false, checkpointing: true, steps: 2 }),
      "2 packed micro-batches of 1": await train({ sequences: packed, batchSize: 1, gradAccum: 2, packing: true, checkpointing: false, steps: 2 }),
    };
    const reference = loadReference(dir);
    const big = runs["one batch of 3 (padded)"];
    for (const [name, run] of Object.entries(runs)) {
      expect(run.steps, name).toHaveLength(2);
      for (const [s, step] of run.steps.entries()) {
        // The reported loss is the reference loss at the parameters the step started from.
        const loss = referenceLoss(reference, step.params);
        expect(run.rows[s]?.loss ?? NaN, `${name} step ${s + 1} loss`).toBeCloseTo(loss, 4);
        // The gradient matches central differences of the float64 loss along three directions.
        for (const seed of [1, 2, 3]) {
          const d = direction(seed);
          const epsilon = 1e-3;
          const numeric = (referenceLoss(reference, along(step.params, d, epsilon)) - referenceLoss(reference, along(step.params, d, -epsilon))) / (2 * epsilon);
          const analytic = dot(step.grads, d);
          expect(Math.abs(analytic - numeric), `${name} step ${s + 1} direction ${seed}: ${analytic} vs ${numeric}`).toBeLessThan(2e-3 * Math.abs(numeric) + 1e-5);
        }
        // And it equals the big batch's gradient element by element.
        const scale = maxAbs(big.steps[s]?.grads ?? new Map());
        expect(maxAbsDiff(step.grads, big.steps[s]?.grads ?? new Map()), `${name} step ${s + 1} vs one batch`).toBeLessThan(1e-5 * scale);
      }
      // After two AdamW steps, the adapters are the same.
      expect(maxAbsDiff(run.after, big.after), `${name} adapters after 2 steps`).toBeLessThan(1e-5);
    }

    // The check can tell token weighting from averaging per-example means: the two derivatives differ.
    const first = big.steps[0]?.params ?? new Map();
    const d = direction(1);
    const tokenWeighted = (referenceLoss(reference, along(first, d, 1e-3)) - referenceLoss(reference, along(first, d, -1e-3))) / 2e-3;
    const meanOfMeans = (referenceLoss(reference, along(first, d, 1e-3), "mean of example means") - referenceLoss(reference, along(first, d, -1e-3), "mean of example means")) / 2e-3;
    expect(Math.abs(tokenWeighted - meanOfMeans)).toBeGreaterThan(0.05 * Math.abs(tokenWeighted));
  });
});
