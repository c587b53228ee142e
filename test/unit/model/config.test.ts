import { describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { SUPPORTED_MODEL_TYPES, parseModelConfig } from "../../../src/model/config.js";

const llama = { model_type: "llama", vocab_size: 100, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 };

describe("parseModelConfig", () => {
  it("normalises a Llama config with defaults", () => {
    const c = parseModelConfig(llama, "config.json");
    expect(c).toMatchObject({ family: "llama", headDim: 8, numKvHeads: 2, tieWordEmbeddings: false, qkvBias: false, rmsNormEps: 1e-6, maxPositions: 2048, slidingWindow: null });
  });

  it("qwen2 has q/k/v biases; mistral keeps its sliding window; qwen2 only when use_sliding_window", () => {
    expect(parseModelConfig({ ...llama, model_type: "qwen2", sliding_window: 64 }, "c")).toMatchObject({ qkvBias: true, oBias: false, slidingWindow: null });
    expect(parseModelConfig({ ...llama, model_type: "qwen2", sliding_window: 64, use_sliding_window: true }, "c")).toMatchObject({ slidingWindow: 64 });
    expect(parseModelConfig({ ...llama, model_type: "mistral", sliding_window: 64 }, "c")).toMatchObject({ qkvBias: false, slidingWindow: 64 });
  });

  it("reads rope scaling from rope_scaling and from the newer rope_parameters", () => {
    const scaling = { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 };
    const a = parseModelConfig({ ...llama, rope_theta: 500000, rope_scaling: scaling }, "c");
    const b = parseModelConfig({ ...llama, rope_parameters: { ...scaling, rope_theta: 500000 } }, "c");
    expect(a.family === "llama" && a.rope).toEqual({ type: "llama3", theta: 500000, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64 });
    expect(b.family === "llama" && Array.from(b.ropeInvFreq)).toEqual(a.family === "llama" && Array.from(a.ropeInvFreq));
    expect(() => parseModelConfig({ ...llama, rope_scaling: { rope_type: "yarn", factor: 4 } }, "c")).toThrow('rope type "yarn" is not supported yet; supported: default, linear, llama3');
  });

  it("parses GPT-2 with its defaults", () => {
    expect(parseModelConfig({ model_type: "gpt2", n_embd: 16, n_head: 2, n_layer: 1 }, "c")).toMatchObject({ family: "gpt2", headDim: 8, innerSize: 64, maxPositions: 1024, vocabSize: 50257 });
  });

  it.each([
    [{ model_type: "bert" }, `model_type "bert" is not supported; supported: ${SUPPORTED_MODEL_TYPES.join(", ")}`],
    [{}, "model_type is missing"],
    [{ ...llama, hidden_size: "32" }, "hidden_size"],
    [{ ...llama, num_key_value_heads: 3 }, "must be a multiple of num_key_value_heads (3)"],
    [{ ...llama, hidden_act: "gelu" }, 'hidden_act "gelu" is not supported'],
    [{ model_type: "gpt2", n_embd: 10, n_head: 3 }, "n_embd (10) must be a multiple of n_head (3)"],
  ])("refuses %j", (raw, message) => {
    expect(() => parseModelConfig(raw, "config.json")).toThrow(UserError);
    expect(() => parseModelConfig(raw, "config.json")).toThrow(message);
  });
});
