/**
 * Phi-3 (Phi-3-mini, Phi-3.5-mini, Phi-4-mini; issue #14): fused qkv_proj / gate_up_proj, partial rotary, LongRoPE.
 * Parity with the float64 reference on short sequences runs in forward.test.ts and packed.test.ts; here: past the
 * original context (the long factors, and generation rebuilding its cache there as transformers does), that the
 * reference depends on each feature, the configs of the released models, and the fused modules' adapters.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackend } from "../../../src/backend/load.js";
import { UserError } from "../../../src/errors.js";
import { attachLora } from "../../../src/lora/attach.js";
import { parseModelConfig } from "../../../src/model/config.js";
import { generate } from "../../../src/model/generate.js";
import { loadModel } from "../../../src/model/load-model.js";
import type { Tf } from "../../../src/model/types.js";
import { parameterCount } from "../../../src/train/memory-budget.js";
import { referenceGreedy, referenceLogits } from "../../helpers/reference-model.js";
import { tempDir } from "../../helpers/run-cli.js";
import { writeTinyCheckpoint, type TinySpec } from "../../helpers/tiny-checkpoint.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const IDS = [1, 5, 17, 42, 3, 8, 60, 21, 9, 33, 14, 2];
let tf: Tf;
beforeAll(async () => {
  tf = (await loadBackend({ forced: "wasm" })).tf;
});

function write(name: string, spec: TinySpec, config?: Record<string, unknown>): string {
  const dir = join(tmp.path, name);
  writeTinyCheckpoint(dir, spec);
  if (config) writeFileSync(join(dir, "config.json"), JSON.stringify({ ...JSON.parse(readFileSync(join(dir, "config.json"), "utf8")), ...config }));
  return dir;
}

function maxDifference(a: ArrayLike<number>[], b: ArrayLike<number>[]): number {
  let max = 0;
  a.forEach((row, t) => {
    for (let i = 0; i < row.length; i += 1) max = Math.max(max, Math.abs((row[i] ?? 0) - (b[t]?.[i] ?? NaN)));
  });
  return max;
}

// LongRoPE with an original context of 8: the 12-token test sequence uses the long factors.
const LONG: TinySpec = { kind: "phi3", partialRotary: 0.5, longRope: { original: 8 }, maxPositions: 64, seed: 61 };

describe("Phi-3 past the original context", () => {
  it("a sequence longer than original_max_position_embeddings is rotated with the long factors, as the reference", async () => {
    const dir = write("long", LONG);
    const model = await loadModel(tf, dir);
    const out = model.forward({ ids: tf.tensor2d(Int32Array.from(IDS), [1, IDS.length], "int32") });
    const data = out.dataSync() as Float32Array;
    out.dispose();
    const vocab = model.config.vocabSize;
    const ours = IDS.map((_, t) => data.subarray(t * vocab, (t + 1) * vocab));
    expect(maxDifference(ours, referenceLogits(dir, IDS))).toBeLessThan(1e-4);
    model.dispose();
  });

  it("greedy generation across the switch rebuilds its cache and picks the reference's tokens", async () => {
    const dir = write("long-generate", LONG);
    const model = await loadModel(tf, dir);
    const prompt = [1, 5, 17, 42, 3];
    const result = await generate({ model, promptIds: prompt, maxNewTokens: 10, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, eosIds: [], stopStrings: [], decode: (ids) => ids.join(",") });
    // Each reference step is a full forward pass: the long factors from the 9th token on, for every position.
    expect(result.ids).toEqual(referenceGreedy(dir, prompt, 10).slice(prompt.length));
    model.dispose();
  });
});

describe("the reference depends on what Phi-3 adds", () => {
  it("partial rotary, the LongRoPE factors and its attention factor each move the logits far beyond 1e-4", () => {
    const base: TinySpec = { kind: "phi3", partialRotary: 0.5, longRope: { original: 64, attentionFactor: 1.3 }, maxPositions: 256, seed: 62 };
    const logits = referenceLogits(write("features", base), IDS);
    const variants: Record<string, string> = {
      "full rotary": write("full-rotary", { ...base, partialRotary: 1, longRope: { original: 64, attentionFactor: 1.3, shortFactor: [1, 1, 1, 1, 1, 1, 1, 1], longFactor: [1, 1, 1, 1, 1, 1, 1, 1] } }),
      "unit short factors": write("unit-factors", { ...base, longRope: { original: 64, attentionFactor: 1.3, shortFactor: [1, 1, 1, 1], longFactor: [1, 1, 1, 1] } }),
      "attention factor 1": write("factor-one", { ...base, longRope: { original: 64, attentionFactor: 1 } }),
    };
    for (const [what, dir] of Object.entries(variants)) expect(maxDifference(logits, referenceLogits(dir, IDS)), what).toBeGreaterThan(1e-3);
  });
});

describe("reading Phi-3 configs", () => {
  const half = 48;
  const phi35 = {
    model_type: "phi3", vocab_size: 32064, hidden_size: 3072, intermediate_size: 8192, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32,
    max_position_embeddings: 131072, original_max_position_embeddings: 4096, rope_theta: 10000, sliding_window: 262144, tie_word_embeddings: false,
    rope_scaling: { type: "longrope", short_factor: new Array<number>(half).fill(1.05), long_factor: new Array<number>(half).fill(1.5) },
  };

  it("Phi-3.5-mini: LongRoPE factor 32 gives the attention factor √(1 + ln 32 / ln 4096); 3,821,079,552 parameters", () => {
    const c = parseModelConfig(phi35, "c");
    if (c.family !== "llama") throw new Error("expected the llama family");
    expect([c.fusedProjections, c.rotaryDim, c.ropeLong?.fromLength, c.slidingWindow]).toEqual([true, 96, 4096, 262144]);
    expect(c.ropeAttentionFactor).toBeCloseTo(Math.sqrt(1 + Math.log(32) / Math.log(4096)), 12);
    expect(c.ropeInvFreq[1]).toBeCloseTo(1 / (1.05 * 10000 ** (2 / 96)), 6);
    expect(c.ropeLong?.invFreq[1]).toBeCloseTo(1 / (1.5 * 10000 ** (2 / 96)), 6);
    expect(parameterCount(c)).toBe(3_821_079_552);
  });

  it("Phi-4-mini: partial_rotary_factor 0.75 rotates 96 of 128 dimensions", () => {
    const c = parseModelConfig({ ...phi35, hidden_size: 3072, num_attention_heads: 24, num_key_value_heads: 8, partial_rotary_factor: 0.75, tie_word_embeddings: true }, "c");
    expect(c.family === "llama" ? [c.headDim, c.rotaryDim] : null).toEqual([128, 96]);
  });

  it.each([
    [{ ...phi35, rope_scaling: { ...phi35.rope_scaling, short_factor: [1, 2] } }, "needs short_factor with one factor per rotary frequency (48); it has 2"],
    [{ ...phi35, partial_rotary_factor: 0.01 }, "partial_rotary_factor 0.01 gives 0 rotary dimensions of 96"],
    [{ ...phi35, rope_scaling: { type: "yarn", factor: 4 } }, 'rope type "yarn" is not supported yet'],
  ])("refuses what it cannot run exactly (%#)", (config, message) => {
    expect(() => parseModelConfig(config, "config.json")).toThrow(UserError);
    expect(() => parseModelConfig(config, "config.json")).toThrow(message);
  });
});

describe("Phi-3's fused modules", () => {
  it("LoRA targets qkv_proj and gate_up_proj as PEFT names them; generation keeps the tfjs path", async () => {
    const dir = write("lora", { kind: "phi3", partialRotary: 0.5, seed: 63 });
    const model = await loadModel(tf, dir, { float32In: "native" });
    const lora = attachLora(tf, model, { r: 2, alpha: 4, dropout: 0, targetModules: "all-linear", layers: "all", rslora: false, seed: 1 });
    expect(lora.adapters.map((a) => a.name.split(".").slice(-1)[0])).toEqual(["qkv_proj", "o_proj", "gate_up_proj", "down_proj", "qkv_proj", "o_proj", "gate_up_proj", "down_proj"]);
    const qkv = lora.adapters.find((a) => a.name === "model.layers.0.self_attn.qkv_proj");
    // B spans the fused output: q (4 heads · 8) + k and v (2 heads · 8 each).
    expect(qkv?.adapter.b.shape).toEqual([2, 64]);
    const decoder = model.newDecoder(8);
    expect(decoder.kind).toBe("tfjs");
    decoder.dispose();
    lora.dispose();
    model.dispose();
  });
});
