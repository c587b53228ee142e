import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ggufHyperparameters } from "../../../src/gguf/hparams.js";
import { sizeLabel } from "../../../src/gguf/model.js";
import { ollamaModelfile, stopTexts } from "../../../src/gguf/modelfile.js";
import { parseModelConfig } from "../../../src/model/config.js";
import type { ModelTokenizer } from "../../../src/tokenizer/load.js";
import { ROOT } from "../../helpers/run-cli.js";
import { tinyGemmaConfig } from "../../helpers/tiny-gemma.js";
import { tinyConfig } from "../../helpers/tiny-checkpoint.js";
import { tinyTokenizer } from "../data/fixture.js";

const hparams = (raw: Record<string, unknown>) => ggufHyperparameters(parseModelConfig(raw, "config.json"), "config.json");

describe("GGUF hyperparameters", () => {
  it("writes llama.cpp's keys for a Llama, with Llama 3's rope factors as llama.cpp's converter computes them", () => {
    const { architecture, metadata, extraTensors } = hparams({ ...tinyConfig({ kind: "llama" }), rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 } });
    expect(architecture).toBe("llama");
    expect(metadata["llama.attention.head_count_kv"]).toEqual({ type: "uint32", value: 2 });
    expect(metadata["llama.rope.dimension_count"]).toEqual({ type: "uint32", value: 8 });
    expect(metadata["llama.vocab_size"]).toEqual({ type: "uint32", value: 96 });
    // head_dim 8, theta 10000: wavelengths 2π·10000^(i/4) = 6.3, 63, 628, 6283 against 16 (high) and 64 (low).
    const [factors] = extraTensors;
    expect(factors?.name).toBe("rope_freqs.weight");
    const smooth = (64 / (2 * Math.PI * 10) - 1) / 3;
    expect([...(factors?.values ?? [])].map((v) => Math.fround(v))).toEqual([1, Math.fround(1 / ((1 - smooth) / 8 + smooth)), 8, 8]);
  });

  it("warns where llama.cpp computes another model past some length: a sliding window, LongRoPE's switch", () => {
    expect(hparams(tinyConfig({ kind: "mistral", slidingWindow: 8 })).warnings).toEqual([
      "config.json: sliding_window 8 is not applied by llama.cpp's llama architecture; llama.cpp and finetune agree for sequences up to 8 tokens and differ past them.",
    ]);
    const phi = hparams(tinyConfig({ kind: "phi3", maxPositions: 1024, longRope: { original: 256 } }));
    expect(phi.warnings.join("\n")).toMatch(/run llama.cpp with -c 256 or less/);
    expect(phi.extraTensors.map((t) => t.name)).toEqual(["rope_factors_long.weight", "rope_factors_short.weight"]);
  });

  it("refuses what llama.cpp would compute differently", () => {
    expect(() => hparams(tinyConfig({ kind: "smollm3", layers: 4, noRopeLayers: [1, 0, 1, 1] }))).toThrow(
      "config.json: this SmolLM3 skips RoPE in layers [1], but llama.cpp's smollm3 architecture skips it in every 4th layer (3, 7, 11, …) only; llama.cpp would compute another model, so it cannot be exported to GGUF.",
    );
    expect(() => hparams(tinyGemmaConfig({ kind: "gemma3_text", queryPreAttnScalar: 20 }))).toThrow(/query_pre_attn_scalar is 20, but llama.cpp's gemma3 scales attention by 1\/√head_dim \(12\)/);
    expect(() => hparams(tinyGemmaConfig({ kind: "gemma2", queryPreAttnScalar: 12, attnSoftcap: null }))).toThrow(/attn_logit_softcapping is null, but llama.cpp's gemma2 always soft-caps/);
    expect(() => hparams({ ...tinyGemmaConfig({ kind: "gemma2", queryPreAttnScalar: 12 }), final_logit_softcapping: null })).toThrow(/final_logit_softcapping is null/);
  });

  it("gives Gemma its window per layer and the local rope base", () => {
    const { metadata } = hparams(tinyGemmaConfig({ kind: "gemma3_text", queryPreAttnScalar: 12, layers: 4 }));
    expect(metadata["gemma3.attention.sliding_window_pattern"]).toEqual({ type: "array", itemType: "int32", value: [1, 1, 0, 1] });
    expect(metadata["gemma3.attention.sliding_window"]).toEqual({ type: "uint32", value: 4 });
    expect(metadata["gemma3.rope.freq_base_swa"]?.type).toBe("float32");
  });
});

describe("general.size_label", () => {
  it("rounds as gguf-py does: two significant digits at least", () => {
    expect([134_515_008, 1_235_814_400, 3_212_749_824, 260_000, 7_241_732_096, 999_999].map(sizeLabel)).toEqual(["135M", "1.2B", "3.2B", "260K", "7.2B", "1000K"]);
  });
});

describe("Ollama Modelfile", () => {
  const templates = JSON.parse(readFileSync(join(ROOT, "test", "fixtures", "chat-templates.json"), "utf8")) as Record<string, { template: string; eos_token: string }>;

  /** The tiny tokenizer with a real template and that model's special tokens as ids 1000+. */
  async function withTemplate(name: string, specials: string[], eos: string[]): Promise<ModelTokenizer> {
    const entry = templates[name];
    if (!entry) throw new Error(`no ${name} template in the fixture`);
    const base = await tinyTokenizer(entry.template);
    const ids = new Map(specials.map((token, i) => [1000 + i, token]));
    return {
      ...base,
      eosToken: entry.eos_token,
      namedSpecialTokens: { ...base.namedSpecialTokens, eos_token: entry.eos_token, bos_token: "<bos>" },
      specialIds: new Set(ids.keys()),
      idToToken: (id) => ids.get(id) ?? base.idToToken(id),
      eosIds: eos.map((token) => [...ids.entries()].find(([, t]) => t === token)?.[0] ?? -1),
    };
  }

  it("stops at the token each real template ends a reply with, then at every EOS", async () => {
    expect(stopTexts(await withTemplate("qwen3", ["<|im_start|>", "<|im_end|>", "<|endoftext|>"], ["<|im_end|>", "<|endoftext|>"]))).toEqual(["<|im_end|>", "<|endoftext|>"]);
    expect(stopTexts(await withTemplate("gemma3", ["<bos>", "<start_of_turn>", "<end_of_turn>", "<eos>"], ["<eos>", "<end_of_turn>"]))).toEqual(["<end_of_turn>", "<eos>"]);
    expect(stopTexts(await withTemplate("phi3", ["<|user|>", "<|assistant|>", "<|end|>", "<|endoftext|>"], ["<|endoftext|>"]))).toEqual(["<|end|>", "<|endoftext|>"]);
  });

  it("writes FROM, ADAPTER and quoted stops", () => {
    expect(ollamaModelfile({ from: "./base.gguf", adapter: "./adapter.gguf", stops: ["<|im_end|>", 'say "bye"'] })).toBe('FROM ./base.gguf\nADAPTER ./adapter.gguf\nPARAMETER stop "<|im_end|>"\nPARAMETER stop "say \\"bye\\""\n');
  });
});
