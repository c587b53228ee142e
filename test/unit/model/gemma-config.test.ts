import { describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { parseModelConfig, type GemmaConfig } from "../../../src/model/config.js";
import { estimateTrainingMemory, parameterCount } from "../../../src/train/memory-budget.js";

/** The fields of a Gemma 3 270M-shaped config.json (18 layers, window 512, one global layer in six). */
const gemma3 = {
  model_type: "gemma3_text",
  vocab_size: 262144,
  hidden_size: 640,
  intermediate_size: 2048,
  num_hidden_layers: 18,
  num_attention_heads: 4,
  num_key_value_heads: 1,
  head_dim: 256,
  query_pre_attn_scalar: 256,
  sliding_window: 512,
  rope_theta: 1000000,
  rope_local_base_freq: 10000,
  rope_scaling: null,
  _sliding_window_pattern: 6,
  final_logit_softcapping: null,
  attn_logit_softcapping: null,
  max_position_embeddings: 32768,
};
const gemma2 = { model_type: "gemma2", vocab_size: 256000, hidden_size: 2304, intermediate_size: 9216, num_hidden_layers: 4, num_attention_heads: 8, num_key_value_heads: 4, head_dim: 256 };

function parse(raw: object): GemmaConfig {
  const config = parseModelConfig(raw, "config.json");
  if (config.family !== "gemma") throw new Error(`family ${config.family}`);
  return config;
}

describe("Gemma configs", () => {
  it("gemma3_text: every sixth layer global from _sliding_window_pattern, layer_types when given", () => {
    const c = parse(gemma3);
    expect(c).toMatchObject({ family: "gemma", headDim: 256, numKvHeads: 1, queryPreAttnScalar: 256, slidingWindow: 512, attnSoftcap: null, finalSoftcap: null, qkNorm: true, tieWordEmbeddings: true });
    expect(c.localLayers.flatMap((local, i) => (local ? [] : [i]))).toEqual([5, 11, 17]);
    const types = Array.from({ length: 18 }, (_, i) => (i % 3 === 0 ? "full_attention" : "sliding_attention"));
    expect(parse({ ...gemma3, layer_types: types }).localLayers.flatMap((local, i) => (local ? [] : [i]))).toEqual([0, 3, 6, 9, 12, 15]);
  });

  it("gemma3_text: local layers use rope_local_base_freq unscaled, global layers rope_theta with linear scaling; both config layouts agree", () => {
    const old = parse({ ...gemma3, rope_scaling: { rope_type: "linear", factor: 8 } });
    expect(old.globalRope).toEqual({ type: "linear", theta: 1000000, factor: 8 });
    expect(old.localRope).toEqual({ type: "default", theta: 10000 });
    // inv_freq[1] = θ^(-2/256) (÷ 8 for the global layers).
    expect(old.localInvFreq[1]).toBeCloseTo(10000 ** (-2 / 256), 7);
    expect(old.globalInvFreq[1]).toBeCloseTo(1000000 ** (-2 / 256) / 8, 7);
    const newer = parse({
      ...gemma3,
      rope_theta: undefined,
      rope_local_base_freq: undefined,
      rope_parameters: { full_attention: { rope_type: "linear", factor: 8, rope_theta: 1000000 }, sliding_attention: { rope_type: "default", rope_theta: 10000 } },
    });
    expect(Array.from(newer.globalInvFreq)).toEqual(Array.from(old.globalInvFreq));
    expect(Array.from(newer.localInvFreq)).toEqual(Array.from(old.localInvFreq));
  });

  it("gemma3_text: attn_logit_softcapping is ignored, as transformers' Gemma3Attention ignores it; the final-logit cap is kept", () => {
    expect(parse({ ...gemma3, attn_logit_softcapping: 50, final_logit_softcapping: 30 })).toMatchObject({ attnSoftcap: null, finalSoftcap: 30 });
  });

  it("gemma2: soft-caps default to 50 and 30, even layers are local, one rope base, no q/k norms", () => {
    const c = parse(gemma2);
    expect(c).toMatchObject({ attnSoftcap: 50, finalSoftcap: 30, qkNorm: false, slidingWindow: 4096, localRope: { type: "default", theta: 10000 } });
    expect(c.localLayers).toEqual([true, false, true, false]);
    expect(parse({ ...gemma2, attn_logit_softcapping: null, final_logit_softcapping: null })).toMatchObject({ attnSoftcap: null, finalSoftcap: null });
  });

  it("counts parameters like the published checkpoints (four norms per layer, Gemma 3's q/k norms)", () => {
    expect(parameterCount(parse(gemma3))).toBe(268_098_176);
    expect(parameterCount(parse({ ...gemma2, num_hidden_layers: 26 }))).toBe(2_614_341_888);
  });

  it("plans more activation memory per layer than a Llama of the same hidden and MLP sizes (wider q, four norms, GELU-tanh)", () => {
    const shape = { batchSize: 4, seqLen: 256, loraParameters: 1e6, checkpointing: false };
    const llama = parseModelConfig({ model_type: "llama", vocab_size: 262144, hidden_size: 640, intermediate_size: 2048, num_hidden_layers: 18, num_attention_heads: 4, num_key_value_heads: 1, head_dim: 256, tie_word_embeddings: true }, "c");
    const gemma = estimateTrainingMemory(parse(gemma3), shape);
    expect(gemma.activations).toBeGreaterThan(1.3 * estimateTrainingMemory(llama, shape).activations);
    // Gemma 2's final-logit soft-cap keeps one more [rows, vocab] copy in the loss.
    const capped = estimateTrainingMemory(parse(gemma2), shape).lossHead;
    const uncapped = estimateTrainingMemory(parse({ ...gemma2, final_logit_softcapping: null }), shape).lossHead;
    expect(capped / uncapped).toBeCloseTo(6 / 5, 10);
  });

  it.each([
    [{ ...gemma3, hidden_activation: "gelu" }, 'hidden_activation "gelu" is not supported'],
    [{ ...gemma3, rope_scaling: { rope_type: "yarn", factor: 4 } }, 'rope_scaling rope type "yarn" is not supported for Gemma; supported: default, linear'],
    [{ ...gemma3, rope_parameters: { full_attention: { rope_type: "dynamic", factor: 2 }, sliding_attention: {} } }, 'rope_parameters.full_attention rope type "dynamic"'],
    [{ ...gemma3, rope_scaling: { rope_type: "linear" } }, 'rope type "linear" needs a "factor"'],
    [{ ...gemma3, attention_bias: true }, "attention_bias true is not supported"],
    [{ ...gemma3, use_bidirectional_attention: true }, "use_bidirectional_attention true"],
    [{ ...gemma3, layer_types: ["sliding_attention"] }, "layer_types has 1 entries, but num_hidden_layers is 18"],
    [{ ...gemma2, layer_types: ["sliding_attention", "chunked_attention", "full_attention", "full_attention"] }, 'layer_types[1] "chunked_attention" is not supported'],
    [{ ...gemma2, rope_scaling: { rope_type: "linear", factor: 2 } }, 'rope_scaling rope type "linear" is not supported for Gemma 2'],
    [{ ...gemma2, num_key_value_heads: 3 }, "must be a multiple of num_key_value_heads (3)"],
    [{ ...gemma2, head_dim: 7 }, "head_dim 7 must be even"],
    [{ ...gemma2, sliding_window: null }, "sliding_window is null, but layers 0, 2 are sliding-window layers"],
  ])("refuses %j", (raw, message) => {
    expect(() => parseModelConfig(raw, "config.json")).toThrow(UserError);
    expect(() => parseModelConfig(raw, "config.json")).toThrow(message);
  });
});
