/**
 * What Qwen3 and SmolLM3 add to the Llama family (issue #14): Qwen3's per-head RMSNorm on q and k with an explicit
 * head_dim, SmolLM3's NoPE layers. The parity itself (logits within 1e-4 of the float64 reference, cached decoding,
 * packing, the native decoder) runs in forward.test.ts, packed.test.ts and native-decoder.test.ts; here: that the
 * reference really depends on each feature (so those tests can fail), how the configs are read, and the counts.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { parseModelConfig } from "../../../src/model/config.js";
import { parameterCount } from "../../../src/train/memory-budget.js";
import { referenceLogits } from "../../helpers/reference-model.js";
import { tempDir } from "../../helpers/run-cli.js";
import { tinyTensors, writeSafetensors, writeTinyCheckpoint, type TinySpec } from "../../helpers/tiny-checkpoint.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const IDS = [1, 5, 17, 42, 3, 8, 60, 21, 9, 33, 14, 2];

function maxDifference(a: Float64Array[], b: Float64Array[]): number {
  let max = 0;
  a.forEach((row, t) => row.forEach((v, i) => (max = Math.max(max, Math.abs(v - (b[t]?.[i] ?? NaN))))));
  return max;
}

function write(name: string, spec: TinySpec, edit?: { config?: Record<string, unknown>; tensors?: (t: ReturnType<typeof tinyTensors>) => void }): string {
  const dir = join(tmp.path, name);
  writeTinyCheckpoint(dir, spec);
  if (edit?.config) writeFileSync(join(dir, "config.json"), JSON.stringify({ ...JSON.parse(readFileSync(join(dir, "config.json"), "utf8")), ...edit.config }));
  if (edit?.tensors) {
    const tensors = tinyTensors(spec);
    edit.tensors(tensors);
    writeSafetensors(join(dir, "model.safetensors"), tensors, spec.dtype ?? "F32");
  }
  return dir;
}

describe("the reference depends on what Qwen3 and SmolLM3 add", () => {
  it("Qwen3's q/k head norms move the logits far beyond the 1e-4 parity tolerance", () => {
    const spec: TinySpec = { kind: "qwen3", headDim: 16, seed: 51 };
    const base = referenceLogits(write("qwen3", spec), IDS);
    const unitNorms = write("qwen3-unit-norms", spec, {
      tensors: (t) => {
        for (const [name, tensor] of Object.entries(t)) if (/\.(q|k)_norm\.weight$/.test(name)) tensor.data = new Float64Array(tensor.data.length).fill(1);
      },
    });
    expect(maxDifference(base, referenceLogits(unitNorms, IDS))).toBeGreaterThan(1e-2);
  });

  it("SmolLM3's NoPE layers move the logits; an explicit no_rope_layers equals the interval it spells out", () => {
    const spec: TinySpec = { kind: "smollm3", layers: 4, seed: 52 };
    // no_rope_layer_interval 4 (the default): layer 3 has no RoPE.
    const byInterval = referenceLogits(write("smollm3-interval", spec), IDS);
    const explicit = referenceLogits(write("smollm3-explicit", { ...spec, noRopeLayers: [1, 1, 1, 0] }), IDS);
    const allRope = referenceLogits(write("smollm3-all-rope", { ...spec, noRopeLayers: [1, 1, 1, 1] }), IDS);
    expect(maxDifference(byInterval, explicit)).toBe(0);
    expect(maxDifference(byInterval, allRope)).toBeGreaterThan(1e-2);
  });
});

describe("reading Qwen3 and SmolLM3 configs", () => {
  const qwen3 = { model_type: "qwen3", vocab_size: 151936, hidden_size: 1024, intermediate_size: 3072, num_hidden_layers: 28, num_attention_heads: 16, num_key_value_heads: 8, head_dim: 128, rope_theta: 1000000, tie_word_embeddings: true, use_sliding_window: false, sliding_window: null, max_window_layers: 28 };
  const smollm3 = { model_type: "smollm3", vocab_size: 128256, hidden_size: 2048, intermediate_size: 11008, num_hidden_layers: 36, num_attention_heads: 16, num_key_value_heads: 4, rope_theta: 5000000, no_rope_layer_interval: 4 };

  it("Qwen3-0.6B: head_dim 128 on hidden 1024, head norms, no biases; 596,049,920 parameters", () => {
    const c = parseModelConfig(qwen3, "c");
    if (c.family !== "llama") throw new Error("expected the llama family");
    expect([c.headDim, c.qkNorm, c.qkvBias, c.oBias, c.mlpBias, c.slidingWindow]).toEqual([128, true, false, false, false, null]);
    expect(c.ropeLayers.every(Boolean)).toBe(true);
    expect(parameterCount(c)).toBe(596_049_920);
  });

  it("SmolLM3-3B: every 4th layer without RoPE, tied embeddings by default; 3,075,098,624 parameters", () => {
    const c = parseModelConfig(smollm3, "c");
    if (c.family !== "llama") throw new Error("expected the llama family");
    expect(c.ropeLayers.slice(0, 8)).toEqual([true, true, true, false, true, true, true, false]);
    expect(c.ropeLayers.filter((r) => !r)).toHaveLength(9);
    expect([c.tieWordEmbeddings, c.qkNorm, c.rope.theta]).toEqual([true, false, 5000000]);
    expect(parameterCount(c)).toBe(3_075_098_624);
    // Without rope_theta, SmolLM3Config's default base of 2e6.
    const { rope_theta: _, ...noTheta } = smollm3;
    const defaults = parseModelConfig(noTheta, "c");
    expect(defaults.family === "llama" ? defaults.rope.theta : null).toBe(2000000);
  });

  it.each([
    [{ ...smollm3, no_rope_layers: [1, 1, 0] }, "no_rope_layers has 3 entries but the model has 36 layers"],
    [{ ...smollm3, use_sliding_window: true, sliding_window: 4096 }, "use_sliding_window with sliding_window 4096 is not supported for smollm3"],
    [{ ...qwen3, use_sliding_window: true, sliding_window: 4096, max_window_layers: 2, layer_types: Array.from({ length: 28 }, (_, l) => (l % 2 ? "sliding_attention" : "full_attention")) }, "is not \"full_attention\" before max_window_layers (2)"],
  ])("refuses what it cannot run exactly (%#)", (config, message) => {
    expect(() => parseModelConfig(config, "config.json")).toThrow(UserError);
    expect(() => parseModelConfig(config, "config.json")).toThrow(message);
  });
});
