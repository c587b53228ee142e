/**
 * Gemma 3 (text) and Gemma 2 against the float64 reference written from transformers' modeling code
 * (test/helpers/reference-gemma.ts), on tiny checkpoints whose shapes make every Gemma difference matter.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackend } from "../../../src/backend/load.js";
import { embeddingScale } from "../../../src/model/gemma.js";
import { loadModel } from "../../../src/model/load-model.js";
import type { CausalLM, Tf } from "../../../src/model/types.js";
import { parameterCount } from "../../../src/train/memory-budget.js";
import { referenceGemmaLogits, type GemmaAblation } from "../../helpers/reference-gemma.js";
import { tempDir } from "../../helpers/run-cli.js";
import { writeTinyGemma, type TinyGemmaSpec } from "../../helpers/tiny-gemma.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

// Every spec has head_dim 12 ≠ 32/4, query_pre_attn_scalar 20, a window of 4 under 12 tokens, local and global layers.
const SPECS: Record<string, TinyGemmaSpec> = {
  "gemma3 layer_types": { kind: "gemma3_text", seed: 1 },
  "gemma3 sliding_window_pattern, linear rope scaling, untied": { kind: "gemma3_text", layerKinds: "pattern", ropeScaling: { rope_type: "linear", factor: 2 }, tied: false, seed: 2 },
  "gemma3 rope_parameters form, MHA": { kind: "gemma3_text", ropeParametersForm: true, ropeScaling: { rope_type: "linear", factor: 4 }, kvHeads: 4, seed: 3 },
  "gemma3 final-logit soft-cap (and an attention cap it ignores)": { kind: "gemma3_text", attnSoftcap: 1.5, finalSoftcap: 2, seed: 4 },
  "gemma3 BF16": { kind: "gemma3_text", dtype: "BF16", seed: 5 },
  "gemma2 soft-caps, alternating layers": { kind: "gemma2", layers: 4, seed: 6 },
  "gemma2 BF16, implied alternation": { kind: "gemma2", dtype: "BF16", layerKinds: "pattern", seed: 7 },
};

const IDS = [1, 5, 17, 42, 3, 8, 60, 21, 9, 33, 14, 2];
let tf: Tf;

beforeAll(async () => {
  tf = (await loadBackend({ forced: "wasm" })).tf;
});

function dirOf(name: string, spec: TinyGemmaSpec): string {
  const dir = join(tmp.path, name.replace(/\W+/g, "-"));
  if (!existsSync(dir)) writeTinyGemma(dir, spec);
  return dir;
}

function logitsOf(model: CausalLM, ids: number[]): Float32Array {
  const out = model.forward({ ids: tf.tensor2d(Int32Array.from(ids), [1, ids.length], "int32") });
  const data = out.dataSync() as Float32Array;
  out.dispose();
  return data;
}

function maxDifference(reference: Float64Array[], ours: ArrayLike<number>): number {
  const vocab = reference[0]?.length ?? 0;
  let max = 0;
  reference.forEach((row, t) => row.forEach((value, v) => (max = Math.max(max, Math.abs(value - (ours[t * vocab + v] ?? NaN))))));
  return max;
}

describe.each(Object.entries(SPECS))("%s", (name, spec) => {
  it("matches the float64 reference implementation within 1e-4", async () => {
    const dir = dirOf(name, spec);
    const model = await loadModel(tf, dir);
    expect(model.config.family).toBe("gemma");
    expect(model.parameterCount).toBe(parameterCount(model.config));
    expect(maxDifference(referenceGemmaLogits(dir, IDS), logitsOf(model, IDS))).toBeLessThan(1e-4);
    model.dispose();
  });

  it("cached decoding gives the same logits as the full forward pass", async () => {
    const model = await loadModel(tf, dirOf(name, spec));
    const full = logitsOf(model, IDS);
    const vocab = model.config.vocabSize;
    const tensors = tf.memory().numTensors;
    const cache = model.newCache();
    const steps = [IDS.slice(0, 5), ...IDS.slice(5).map((id) => [id])];
    let position = 0;
    let maxError = 0;
    for (const step of steps) {
      const ids = tf.tensor2d(Int32Array.from(step), [1, step.length], "int32");
      const out = model.forward({ ids, cache });
      const data = out.dataSync();
      tf.dispose([ids, out]);
      for (let i = 0; i < step.length * vocab; i += 1) maxError = Math.max(maxError, Math.abs((data[i] ?? 0) - (full[position * vocab + i] ?? 0)));
      position += step.length;
    }
    expect(maxError).toBeLessThan(1e-5);
    expect(cache.length).toBe(IDS.length);
    cache.dispose();
    expect(tf.memory().numTensors).toBe(tensors);
    model.dispose();
  });
});

describe("projection layouts", () => {
  it.each([true, false])("fuse %s (q/k/v and gate/up in one matrix or apart) gives the reference logits", async (fuse) => {
    const dir = dirOf("gemma3 layer_types", SPECS["gemma3 layer_types"] as TinyGemmaSpec);
    const model = await loadModel(tf, dir, { fuse });
    expect(maxDifference(referenceGemmaLogits(dir, IDS), logitsOf(model, IDS))).toBeLessThan(1e-4);
    model.dispose();
  });
});

describe("packing", () => {
  it("two examples packed in one row (segments, restarted positions) give each example's own logits", async () => {
    const dir = dirOf("gemma2 soft-caps, alternating layers", SPECS["gemma2 soft-caps, alternating layers"] as TinyGemmaSpec);
    const model = await loadModel(tf, dir);
    const first = IDS.slice(0, 7);
    const second = IDS.slice(7);
    const positions = Int32Array.from([...first.keys(), ...second.keys()]);
    const segments = Int32Array.from([...first.map(() => 0), ...second.map(() => 1)]);
    const out = model.forward({ ids: tf.tensor2d(Int32Array.from(IDS), [1, IDS.length], "int32"), positions, segments });
    const packed = out.dataSync();
    out.dispose();
    const vocab = model.config.vocabSize;
    const alone = [...logitsOf(model, first), ...logitsOf(model, second)];
    expect(maxDifference([Float64Array.from(alone)], Array.from(packed).slice(0, alone.length))).toBeLessThan(1e-5);
    expect(packed.length).toBe(IDS.length * vocab);
    model.dispose();
  });
});

describe("the reference can fail: each Gemma feature moves the logits by far more than 1e-4", () => {
  const cases: Array<[string, string, TinyGemmaSpec, GemmaAblation]> = [
    ["the (1 + w) norm", "gemma3 layer_types", SPECS["gemma3 layer_types"] as TinyGemmaSpec, { plainNorm: true }],
    ["the local RoPE base", "gemma3 layer_types", SPECS["gemma3 layer_types"] as TinyGemmaSpec, { globalRopeEverywhere: true }],
    ["the embedding scale", "gemma3 layer_types", SPECS["gemma3 layer_types"] as TinyGemmaSpec, { noEmbedScale: true }],
    ["the final-logit soft-cap (gemma3)", "gemma3 final-logit soft-cap (and an attention cap it ignores)", SPECS["gemma3 final-logit soft-cap (and an attention cap it ignores)"] as TinyGemmaSpec, { noSoftcap: true }],
    ["the soft-caps (gemma2)", "gemma2 soft-caps, alternating layers", SPECS["gemma2 soft-caps, alternating layers"] as TinyGemmaSpec, { noSoftcap: true }],
  ];
  it.each(cases)("%s", (_, name, spec, ablation) => {
    const dir = dirOf(name, spec);
    const ablated = referenceGemmaLogits(dir, IDS, ablation);
    const flat = Float64Array.from(ablated.flatMap((row) => Array.from(row)));
    expect(maxDifference(referenceGemmaLogits(dir, IDS), flat)).toBeGreaterThan(1e-2);
  });
});

describe("embedding scale", () => {
  it("rounds √hidden to the embedding's dtype, as transformers casts embed_scale", () => {
    // √640 = 25.2982…; in bf16 (8 significant bits, steps of 0.125 between 16 and 32) it is 25.25.
    expect(embeddingScale(640, "BF16")).toBe(25.25);
    // √3072 = 55.4256… → 55.5 in bf16 (the example in transformers' Gemma3TextModel comment).
    expect(embeddingScale(3072, "BF16")).toBe(55.5);
    expect(embeddingScale(640, "F32")).toBe(Math.fround(Math.sqrt(640)));
    // f16 has 11 significant bits: steps of 2^-6 between 16 and 32.
    expect(embeddingScale(640, "F16")).toBe(Math.round(Math.sqrt(640) * 64) / 64);
  });
});
