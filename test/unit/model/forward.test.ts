import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackend } from "../../../src/backend/load.js";
import { sequenceLoss } from "../../../src/model/evaluate.js";
import { generate } from "../../../src/model/generate.js";
import { loadModel } from "../../../src/model/load-model.js";
import type { CausalLM, Tf } from "../../../src/model/types.js";
import { referenceLogits, referenceMeanLoss } from "../../helpers/reference-model.js";
import { tempDir } from "../../helpers/run-cli.js";
import { writeTinyCheckpoint, type TinySpec } from "../../helpers/tiny-checkpoint.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const SPECS: Record<string, TinySpec> = {
  "llama GQA untied": { kind: "llama", heads: 4, kvHeads: 2, tied: false, seed: 1 },
  "llama MHA tied": { kind: "llama", heads: 4, kvHeads: 4, tied: true, seed: 2 },
  "llama multi-query": { kind: "llama", heads: 4, kvHeads: 1, seed: 3 },
  "llama attention_bias": { kind: "llama", attentionBias: true, seed: 4 },
  "llama3 rope scaling": { kind: "llama", ropeScaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 }, seed: 5 },
  "rope_parameters form": { kind: "llama", ropeParameters: { rope_type: "linear", factor: 2, rope_theta: 500 }, seed: 6 },
  "qwen2 biases": { kind: "qwen2", tied: true, seed: 7 },
  "mistral sliding window": { kind: "mistral", slidingWindow: 4, seed: 8 },
  "qwen2 sliding window from layer 1": { kind: "qwen2", seed: 13 },
  // Qwen3-0.6B's shape in small: head_dim 16 with 4 heads on hidden 32 (q_proj is 64 wide), q/k head norms.
  "qwen3 head_dim ≠ hidden/heads": { kind: "qwen3", headDim: 16, heads: 4, kvHeads: 2, tied: true, seed: 14 },
  "qwen3 attention_bias, BF16": { kind: "qwen3", attentionBias: true, dtype: "BF16", seed: 15 },
  "smollm3 NoPE every 2nd layer": { kind: "smollm3", layers: 4, noRopeLayers: [1, 0, 1, 0], tied: true, seed: 16 },
  "smollm3 default NoPE interval": { kind: "smollm3", layers: 4, attentionBias: true, seed: 17 },
  // Phi-3.5/4-mini in small: fused qkv_proj and gate_up_proj, partial rotary, LongRoPE (short factors here: 12 < 64).
  "phi3 partial rotary 0.75, longrope": { kind: "phi3", hidden: 32, heads: 2, kvHeads: 1, partialRotary: 0.75, longRope: { original: 64 }, maxPositions: 256, seed: 18 },
  "phi3 sliding window 4, tied, BF16": { kind: "phi3", slidingWindow: 4, tied: true, dtype: "BF16", seed: 19 },
  "bf16 weights": { kind: "llama", dtype: "BF16", seed: 9 },
  "f16 weights": { kind: "qwen2", dtype: "F16", seed: 10 },
  gpt2: { kind: "gpt2", seed: 11 },
  "gpt2 with transformer. prefix": { kind: "gpt2", transformerPrefix: true, seed: 12 },
};

const IDS = [1, 5, 17, 42, 3, 8, 60, 21, 9, 33, 14, 2];
let tf: Tf;

beforeAll(async () => {
  tf = (await loadBackend({ forced: "wasm" })).tf;
});

/** Config edits the tiny builder has no option for. */
const PATCHES: Record<string, Record<string, unknown>> = {
  "qwen2 sliding window from layer 1": { use_sliding_window: true, sliding_window: 3, max_window_layers: 1 },
};

async function load(name: string, spec: TinySpec): Promise<{ dir: string; model: CausalLM }> {
  const dir = join(tmp.path, name.replace(/\W+/g, "-"));
  if (!existsSync(dir)) {
    writeTinyCheckpoint(dir, spec);
    const patch = PATCHES[name];
    if (patch) writeFileSync(join(dir, "config.json"), JSON.stringify({ ...JSON.parse(readFileSync(join(dir, "config.json"), "utf8")), ...patch }));
  }
  return { dir, model: await loadModel(tf, dir) };
}

function logitsOf(model: CausalLM, ids: number[]): Float32Array {
  const out = model.forward({ ids: tf.tensor2d(Int32Array.from(ids), [1, ids.length], "int32") });
  const data = out.dataSync() as Float32Array;
  out.dispose();
  return data;
}

describe.each(Object.entries(SPECS))("%s", (name, spec) => {
  it("matches the float64 reference implementation within 1e-4", async () => {
    const { dir, model } = await load(name, spec);
    const ours = logitsOf(model, IDS);
    const reference = referenceLogits(dir, IDS);
    const vocab = reference[0]?.length ?? 0;
    let maxError = 0;
    reference.forEach((row, t) => row.forEach((value, v) => (maxError = Math.max(maxError, Math.abs(value - (ours[t * vocab + v] ?? NaN))))));
    expect(maxError).toBeLessThan(1e-4);
    model.dispose();
  });

  it("cached decoding gives the same logits as the full forward pass", async () => {
    const { model } = await load(name, spec);
    const full = logitsOf(model, IDS);
    const vocab = model.config.vocabSize;
    // float32 rounding: 1e-5 of the largest logit (or absolute for logits below 1).
    const tolerance = 1e-5 * Math.max(1, ...Array.from(full, Math.abs));
    const tensors = tf.memory().numTensors;
    const cache = model.newCache();
    const steps = [IDS.slice(0, 5), ...IDS.slice(5).map((id) => [id])];
    let position = 0;
    for (const step of steps) {
      const ids = tf.tensor2d(Int32Array.from(step), [1, step.length], "int32");
      const out = model.forward({ ids, cache });
      const data = out.dataSync();
      tf.dispose([ids, out]);
      for (let t = 0; t < step.length; t += 1) {
        for (let v = 0; v < vocab; v += 1) expect(Math.abs((data[t * vocab + v] ?? 0) - (full[(position + t) * vocab + v] ?? 0))).toBeLessThan(tolerance);
      }
      position += step.length;
    }
    expect(cache.length).toBe(IDS.length);
    cache.dispose();
    expect(tf.memory().numTensors).toBe(tensors);
    model.dispose();
  });
});

describe("backends and memory", () => {
  it("wasm and cpu give the same logits", async () => {
    const results: Float32Array[] = [];
    for (const backend of ["wasm", "cpu"] as const) {
      tf = (await loadBackend({ forced: backend })).tf;
      const { model } = await load("llama GQA untied", SPECS["llama GQA untied"] as TinySpec);
      results.push(logitsOf(model, IDS));
      model.dispose();
    }
    tf = (await loadBackend({ forced: "wasm" })).tf;
    const [a, b] = results;
    let maxError = 0;
    a?.forEach((value, i) => (maxError = Math.max(maxError, Math.abs(value - (b?.[i] ?? NaN)))));
    expect(maxError).toBeLessThan(1e-5);
  });

  it("generate and eval leave no tensors behind", async () => {
    const { model } = await load("llama GQA untied", SPECS["llama GQA untied"] as TinySpec);
    const before = tf.memory().numTensors;
    const result = await generate({
      model,
      promptIds: [1, 5, 17],
      maxNewTokens: 6,
      sampling: { temperature: 0.8, topK: 10, topP: 0.9 },
      seed: 1,
      eosIds: [],
      stopStrings: [],
      decode: (ids) => ids.join(" "),
    });
    expect(result.ids).toHaveLength(6);
    const loss = await sequenceLoss(tf, model, IDS, 5);
    expect(loss.count).toBe(4 + 4 + 1);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it("greedy generation equals the argmax of full forward passes, and stop strings cut the text", async () => {
    const { model } = await load("qwen2 biases", SPECS["qwen2 biases"] as TinySpec);
    const vocab = model.config.vocabSize;
    const greedy = await generate({ model, promptIds: [1, 4, 9], maxNewTokens: 5, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, eosIds: [], stopStrings: [], decode: (ids) => ids.map((i) => `<${i}>`).join("") });
    const ids = [1, 4, 9];
    for (let i = 0; i < 5; i += 1) {
      const logits = logitsOf(model, ids).slice((ids.length - 1) * vocab);
      ids.push(logits.indexOf(Math.max(...logits)));
    }
    expect(greedy.ids).toEqual(ids.slice(3));
    // A stop string that spans a token boundary: the text is cut right before it, and streaming never shows it.
    const full = greedy.text;
    const stop = full.slice(5, 9);
    const streamed: string[] = [];
    const stopped = await generate({ model, promptIds: [1, 4, 9], maxNewTokens: 5, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, eosIds: [], stopStrings: [stop], decode: (x) => x.map((i) => `<${i}>`).join(""), onText: (t) => streamed.push(t) });
    expect(stopped.stopReason).toBe("stop_string");
    expect(stopped.text).toBe(full.slice(0, full.indexOf(stop)));
    expect(streamed.join("")).toBe(stopped.text);
    const eos = await generate({ model, promptIds: [1, 4, 9], maxNewTokens: 5, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, eosIds: [ids[4] ?? -1], stopStrings: [], decode: (x) => x.join(",") });
    const generated = ids.slice(3);
    expect(eos).toMatchObject({ stopReason: "eos", ids: generated.slice(0, generated.indexOf(ids[4] ?? -1)) });
    model.dispose();
  });

  it("sequenceLoss matches the reference cross-entropy", async () => {
    const { dir, model } = await load("gpt2", SPECS.gpt2 as TinySpec);
    const loss = await sequenceLoss(tf, model, IDS, 64);
    expect(loss.count).toBe(IDS.length - 1);
    expect(loss.sum / loss.count).toBeCloseTo(referenceMeanLoss(dir, IDS), 5);
    model.dispose();
  });
});
