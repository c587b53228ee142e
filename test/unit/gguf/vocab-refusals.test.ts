import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { ggufTokenizerMetadata } from "../../../src/gguf/vocab.js";
import type { GgufValue } from "../../../src/gguf/writer.js";
import { parseModelConfig, type ModelConfig } from "../../../src/model/config.js";
import { LLAMA3_SPLIT_REGEX } from "../../helpers/real-tokenizers.js";

const made: string[] = [];
afterEach(async () => {
  await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

const configFor = (vocabSize: number): ModelConfig =>
  parseModelConfig({ model_type: "llama", vocab_size: vocabSize, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2 }, "config.json");

type Json = Record<string, unknown>;

async function modelDir(tokenizer: Json, config: Json = {}, files: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "finetune-vocab-"));
  made.push(dir);
  const full = { version: "1.0", truncation: null, padding: null, added_tokens: [], normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...tokenizer };
  await writeFile(join(dir, "tokenizer.json"), JSON.stringify(full));
  await writeFile(join(dir, "tokenizer_config.json"), JSON.stringify(config));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

const special = (id: number, content: string, isSpecial = true) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: !isSpecial, special: isSpecial });
const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };

/** A tiny byte-level BPE: "a", "b", "Ġ" and what merges make of them, <|end|> added. */
function tinyByteLevel(overrides: Json = {}, model: Json = {}): Json {
  return {
    added_tokens: [special(6, "<|end|>")],
    pre_tokenizer: byteLevel,
    decoder: byteLevel,
    model: { type: "BPE", dropout: null, unk_token: null, fuse_unk: false, byte_fallback: false, vocab: { a: 0, b: 1, "Ġ": 2, ab: 3, "Ġa": 4, "Ġab": 5 }, merges: ["a b", "Ġ a", "Ġa b"], ...model },
    ...overrides,
  };
}

/** A tiny SentencePiece-style BPE (byte fallback, Llama 2's normalizer): <unk>, <s>, </s>, two bytes, ▁, a, b, merges. */
function tinySpm(overrides: Json = {}): Json {
  return {
    added_tokens: [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>"), special(10, "<tool>", false), special(11, "▁user▁token", false)],
    normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "▁" }, { type: "Replace", pattern: { String: " " }, content: "▁" }] },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "<s>", type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<unk>",
      fuse_unk: true,
      byte_fallback: true,
      vocab: { "<unk>": 0, "<s>": 1, "</s>": 2, "<0x00>": 3, "<0x0A>": 4, "▁": 5, a: 6, b: 7, "▁a": 8, "▁ab": 9 },
      merges: ["▁ a", "▁a b"],
    },
    ...overrides,
  };
}

const SPM_CONFIG = { bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>", chat_template: "from tokenizer_config" };

async function refusal(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(UserError);
  return (error as UserError).message;
}

function array(value: GgufValue | undefined): unknown[] {
  return value?.type === "array" ? Array.from(value.value as ArrayLike<unknown>) : [];
}

describe("ggufTokenizerMetadata values", () => {
  it("SentencePiece-style: tokens, types, scores from merge ranks, [PAD] rows, ids, flags, chat_template.jinja over tokenizer_config", async () => {
    const dir = await modelDir(tinySpm(), SPM_CONFIG, { "chat_template.jinja": "from the jinja file" });
    const metadata = await ggufTokenizerMetadata({ modelDir: dir, config: configFor(13) });
    expect(Object.keys(metadata).filter((key) => key.startsWith("tokenizer.")).sort()).toEqual([
      "tokenizer.chat_template",
      "tokenizer.ggml.add_bos_token",
      "tokenizer.ggml.add_eos_token",
      "tokenizer.ggml.add_space_prefix",
      "tokenizer.ggml.bos_token_id",
      "tokenizer.ggml.eos_token_id",
      "tokenizer.ggml.model",
      "tokenizer.ggml.pre",
      "tokenizer.ggml.scores",
      "tokenizer.ggml.token_type",
      "tokenizer.ggml.tokens",
      "tokenizer.ggml.unknown_token_id",
    ]);
    expect(metadata["tokenizer.ggml.model"]).toEqual({ type: "string", value: "llama" });
    expect(metadata["tokenizer.ggml.pre"]).toEqual({ type: "string", value: "default" });
    // Non-special added tokens are user-defined, with "▁" written as the space llama.cpp matches in raw text.
    expect(array(metadata["tokenizer.ggml.tokens"])).toEqual(["<unk>", "<s>", "</s>", "<0x00>", "<0x0A>", "▁", "a", "b", "▁a", "▁ab", "<tool>", " user token", "[PAD12]"]);
    // 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte (llama.cpp's numbers)
    expect(array(metadata["tokenizer.ggml.token_type"])).toEqual([3, 3, 3, 6, 6, 1, 1, 1, 1, 1, 4, 4, 5]);
    // "▁a" is merge 0, "▁ab" merge 1; pieces no merge makes score below all (-(2 merges + 1)); added tokens -1000.
    expect(array(metadata["tokenizer.ggml.scores"])).toEqual([-1000, -1000, -1000, -3, -3, -3, -3, -3, -0, -1, -1000, -1000, -1000]);
    expect(metadata["tokenizer.ggml.bos_token_id"]).toEqual({ type: "uint32", value: 1 });
    expect(metadata["tokenizer.ggml.eos_token_id"]).toEqual({ type: "uint32", value: 2 });
    expect(metadata["tokenizer.ggml.unknown_token_id"]).toEqual({ type: "uint32", value: 0 });
    expect(metadata["tokenizer.ggml.add_bos_token"]).toEqual({ type: "bool", value: true });
    expect(metadata["tokenizer.ggml.add_eos_token"]).toEqual({ type: "bool", value: false });
    expect(metadata["tokenizer.ggml.add_space_prefix"]).toEqual({ type: "bool", value: true });
    expect(metadata["tokenizer.chat_template"]).toEqual({ type: "string", value: "from the jinja file" });
  });

  it("an unknown token that is not an added token is UNKNOWN; Metaspace prepend_scheme never gives add_space_prefix false", async () => {
    const base = tinySpm();
    const dir = await modelDir(
      { ...base, added_tokens: [special(1, "<s>"), special(2, "</s>")], normalizer: null, pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: "never", split: false } },
      SPM_CONFIG,
    );
    const metadata = await ggufTokenizerMetadata({ modelDir: dir, config: configFor(10) });
    expect(array(metadata["tokenizer.ggml.token_type"]).slice(0, 3)).toEqual([2, 3, 3]);
    expect(metadata["tokenizer.ggml.add_space_prefix"]).toEqual({ type: "bool", value: false });
    expect(metadata["tokenizer.chat_template"]).toEqual({ type: "string", value: "from tokenizer_config" });
  });

  it("byte-level: model gpt2, pre, merges (a space inside a part written as U+0120), control tokens, no scores", async () => {
    const dir = await modelDir(tinyByteLevel({}, { vocab: { a: 0, b: 1, "Ġ": 2, ab: 3, "Ġa": 4, "a b": 5 }, merges: [["a", "b"], ["Ġ", "a"], ["a", " b"]] }), { eos_token: "<|end|>" });
    const metadata = await ggufTokenizerMetadata({ modelDir: dir, config: configFor(8) });
    expect(metadata["tokenizer.ggml.model"]).toEqual({ type: "string", value: "gpt2" });
    expect(metadata["tokenizer.ggml.pre"]).toEqual({ type: "string", value: "gpt-2" });
    expect(metadata["tokenizer.ggml.scores"]).toBeUndefined();
    expect(metadata["tokenizer.ggml.add_space_prefix"]).toBeUndefined();
    expect(array(metadata["tokenizer.ggml.merges"])).toEqual(["a b", "Ġ a", "a Ġb"]);
    expect(array(metadata["tokenizer.ggml.token_type"])).toEqual([1, 1, 1, 1, 1, 1, 3, 5]);
    expect(metadata["tokenizer.ggml.eos_token_id"]).toEqual({ type: "uint32", value: 6 });
    expect(metadata["tokenizer.ggml.bos_token_id"]).toBeUndefined();
    expect(metadata["tokenizer.ggml.add_bos_token"]).toEqual({ type: "bool", value: false });
  });
});

describe("ggufTokenizerMetadata refusals", () => {
  it("a WordPiece tokenizer: its model type, what is supported, what to do instead", async () => {
    const dir = await modelDir({
      pre_tokenizer: { type: "Whitespace" },
      model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab: { "[UNK]": 0, hello: 1, "##s": 2 } },
    });
    const message = await refusal(ggufTokenizerMetadata({ modelDir: dir, config: configFor(3) }));
    expect(message).toContain('the tokenizer model type is "WordPiece"; GGUF model export supports BPE tokenizers only');
    expect(message).toContain("convert_hf_to_gguf.py");
  });

  it("a Unigram tokenizer", async () => {
    const dir = await modelDir({
      pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true },
      model: { type: "Unigram", unk_id: 0, vocab: [["<unk>", 0], ["▁a", -1], ["a", -2], ["▁", -3]], byte_fallback: false },
    });
    expect(await refusal(ggufTokenizerMetadata({ modelDir: dir, config: configFor(4) }))).toContain('the tokenizer model type is "Unigram"');
  });

  it("a byte-level pre-tokenizer llama.cpp has no name for, named in the message", async () => {
    const split = { type: "Split", pattern: { Regex: "\\w+|[^\\w\\s]+" }, behavior: "Isolated", invert: false };
    const dir = await modelDir(tinyByteLevel({ pre_tokenizer: { type: "Sequence", pretokenizers: [split, { ...byteLevel, use_regex: false }] } }));
    const message = await refusal(ggufTokenizerMetadata({ modelDir: dir, config: configFor(7) }));
    expect(message).toContain("\\\\w+|[^\\\\w\\\\s]+");
    expect(message).toContain("matches none of llama.cpp's pre-tokenizers we map (gpt-2, llama-bpe, qwen2, qwen35, smollm); GGUF export does not support it yet");
  });

  it("ByteLevel with add_prefix_space: llama.cpp never puts a space first", async () => {
    const dir = await modelDir(tinyByteLevel({ pre_tokenizer: { ...byteLevel, add_prefix_space: true } }));
    expect(await refusal(ggufTokenizerMetadata({ modelDir: dir, config: configFor(7) }))).toContain('"add_prefix_space":true');
  });

  it("Llama 3's regex without ignore_merges: llama.cpp's llama-bpe always ignores merges", async () => {
    const split = { type: "Split", pattern: { Regex: LLAMA3_SPLIT_REGEX }, behavior: "Isolated", invert: false };
    const dir = await modelDir(tinyByteLevel({ pre_tokenizer: { type: "Sequence", pretokenizers: [split, { ...byteLevel, use_regex: false }] } }, { ignore_merges: false }));
    expect(await refusal(ggufTokenizerMetadata({ modelDir: dir, config: configFor(7) }))).toContain(
      'model.ignore_merges is false, but llama.cpp\'s "llama-bpe" pre-tokenizer always ignores merges',
    );
  });

  it("a byte-level normalizer llama.cpp does not apply", async () => {
    const dir = await modelDir(tinyByteLevel({ normalizer: { type: "Lowercase" } }));
    expect(await refusal(ggufTokenizerMetadata({ modelDir: dir, config: configFor(7) }))).toContain('the normalizer {"type":"Lowercase"} is not one llama.cpp applies');
  });

  it("a SentencePiece normalizer llama.cpp cannot reproduce", async () => {
    const dir = await modelDir(tinySpm({ normalizer: { type: "Sequence", normalizers: [{ type: "NFKC" }, { type: "Replace", pattern: { String: " " }, content: "▁" }] } }), SPM_CONFIG);
    expect(await refusal(ggufTokenizerMetadata({ modelDir: dir, config: configFor(12) }))).toContain("is not a SentencePiece layout llama.cpp reproduces");
  });

  it("a token id the model cannot embed: the id, vocab_size, what to fix", async () => {
    const dir = await modelDir(tinyByteLevel());
    expect(await refusal(ggufTokenizerMetadata({ modelDir: dir, config: configFor(6) }))).toContain(
      'added token "<|end|>" has id 6, but the model embeds only 6 tokens (config.json vocab_size)',
    );
  });

  it("a post_processor adding two tokens before the text", async () => {
    const two = {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { SpecialToken: { id: "</s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [{ Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] }, "</s>": { id: "</s>", ids: [2], tokens: ["</s>"] } },
    };
    const dir = await modelDir(tinySpm({ post_processor: two }), SPM_CONFIG);
    expect(await refusal(ggufTokenizerMetadata({ modelDir: dir, config: configFor(12) }))).toContain(
      "the post_processor adds ids [1, 2] before the text, but llama.cpp can add only its BOS token (1) there",
    );
  });
});

describe("ggufTokenizerMetadata without a usable tokenizer.json", () => {
  it("a directory without tokenizer.json gets the loader's message", async () => {
    const dir = await mkdtemp(join(tmpdir(), "finetune-vocab-"));
    made.push(dir);
    expect(await refusal(ggufTokenizerMetadata({ modelDir: dir, config: configFor(4) }))).toContain("has no tokenizer.json (present: nothing)");
  });

  it("an unparsable tokenizer.json gets the loader's message", async () => {
    const dir = await modelDir({});
    await writeFile(join(dir, "tokenizer.json"), "{ not json");
    expect(await refusal(ggufTokenizerMetadata({ modelDir: dir, config: configFor(4) }))).toContain("tokenizer.json is not valid JSON");
  });
});
