import { UserError } from "../errors.js";
import type { TokenizerJson, TokenizerStep } from "./vocab-json.js";

/**
 * Which of llama.cpp's pre-tokenizers (`tokenizer.ggml.pre`) splits text as a byte-level BPE tokenizer.json does.
 * llama.cpp's converter recognises a tokenizer by hashing one test encoding; we cannot list every hash, so we read
 * the pre_tokenizer itself and accept only the shapes whose split llama.cpp implements with the same regex.
 */
export interface BytePre {
  /** llama.cpp's name (src/llama-vocab.cpp) */
  pre: string;
  /** llama.cpp always (llama-bpe) or never (the others) takes a whole pre-token found in the vocab without merging */
  ignoreMerges: boolean;
}

/** The Split regexes we know, as tokenizer.json spells them, and the llama.cpp pre whose regex splits the same. */
const SPLIT_REGEX_PRE: Record<string, BytePre> = {
  // Llama 3, SmolLM3 (the Llama 3 tokenizer); llama.cpp's converter names Llama 3's "llama-bpe".
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+":
    { pre: "llama-bpe", ignoreMerges: true },
  // Qwen2, Qwen2.5, Qwen3: single digits.
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+":
    { pre: "qwen2", ignoreMerges: false },
  // Qwen3.5: marks (\p{M}) join letters.
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+":
    { pre: "qwen35", ignoreMerges: false },
  // GPT-2's own regex written out as a Split.
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+": { pre: "gpt-2", ignoreMerges: false },
};

/** llama.cpp spells the case-insensitive contractions out; both spellings split alike. */
const CONTRACTIONS_SPELLED = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
const CONTRACTIONS_HF = "(?i:'s|'t|'re|'ve|'m|'ll|'d)";

const NEXT_STEP = "GGUF export does not support it yet; export a LoRA adapter (--format peft or gguf) and convert the merged model with llama.cpp's convert_hf_to_gguf.py instead";

/** The llama.cpp pre for a byte-level BPE tokenizer.json; a UserError naming the pre_tokenizer when none matches. */
export function bytePreFor(tokenizer: TokenizerJson): BytePre {
  checkByteNormalizer(tokenizer);
  const found = matchPreTokenizer(tokenizer.preTokenizer);
  if (found === null) {
    throw new UserError(`${tokenizer.path}: the pre_tokenizer ${describe(tokenizer.preTokenizer)} matches none of llama.cpp's pre-tokenizers we map (gpt-2, llama-bpe, qwen2, qwen35, smollm); ${NEXT_STEP}.`);
  }
  if (found.ignoreMerges !== tokenizer.ignoreMerges) {
    throw new UserError(
      `${tokenizer.path}: model.ignore_merges is ${String(tokenizer.ignoreMerges)}, but llama.cpp's "${found.pre}" pre-tokenizer ` +
        `${found.ignoreMerges ? "always" : "never"} ignores merges, so llama.cpp would tokenize some words differently; ${NEXT_STEP}.`,
    );
  }
  return found;
}

function matchPreTokenizer(pre: TokenizerStep | null): BytePre | null {
  if (pre === null) return null;
  const steps = pre.type === "Sequence" && Array.isArray(pre.pretokenizers) ? (pre.pretokenizers as TokenizerStep[]) : [pre];
  const last = steps.at(-1);
  if (last?.type !== "ByteLevel" || last.add_prefix_space === true) return null;
  const byteRegex = last.use_regex !== false;
  if (steps.length === 1) return byteRegex ? { pre: "gpt-2", ignoreMerges: false } : null;
  if (steps.length !== 2) return null;
  const first = steps[0] as TokenizerStep;
  // SmolLM 1/2 (and StarCoder): every digit alone, then GPT-2's regex.
  if (first.type === "Digits" && first.individual_digits === true && byteRegex) return { pre: "smollm", ignoreMerges: false };
  if (first.type === "Split" && !byteRegex && first.behavior === "Isolated" && first.invert !== true) {
    const pattern = first.pattern as { Regex?: unknown } | undefined;
    if (typeof pattern?.Regex !== "string") return null;
    return SPLIT_REGEX_PRE[pattern.Regex.replace(CONTRACTIONS_SPELLED, CONTRACTIONS_HF)] ?? null;
  }
  return null;
}

/** llama.cpp's byte-level BPE normalises nothing; NFC (Qwen2's) is let through, as llama.cpp's converter does. */
function checkByteNormalizer(tokenizer: TokenizerJson): void {
  const normalizer = tokenizer.normalizer;
  if (normalizer === null || normalizer.type === "NFC") return;
  throw new UserError(`${tokenizer.path}: the normalizer ${describe(normalizer)} is not one llama.cpp applies to byte-level BPE text; ${NEXT_STEP}.`);
}

/** Whether llama.cpp's SentencePiece tokenizer should put "▁" before the text (`add_space_prefix`), read from how tokenizer.json does it. */
export function spmSpacePrefix(tokenizer: TokenizerJson): boolean {
  const { normalizer, preTokenizer } = tokenizer;
  const steps = normalizer === null ? [] : normalizer.type === "Sequence" && Array.isArray(normalizer.normalizers) ? (normalizer.normalizers as TokenizerStep[]) : [normalizer];
  const prepend = steps.length === 2 && isPrependSpace(steps[0]) && isSpaceToMeta(steps[1]);
  const replaceOnly = steps.length === 1 && isSpaceToMeta(steps[0]);
  // Llama 2 (legacy): Prepend "▁" then " " → "▁"; Gemma: " " → "▁" only, no prefix. Gemma's Split on " " comes after
  // the normaliser has left no spaces, so it splits nothing (transformers removed it for that reason, PR #43106).
  if ((preTokenizer === null || isSplitOnSpace(preTokenizer)) && (prepend || replaceOnly)) return prepend;
  // Newer exports: the Metaspace pre-tokenizer does both; split: true would also cut merges at every "▁", which llama.cpp does not.
  if (steps.length === 0 && preTokenizer?.type === "Metaspace" && preTokenizer.replacement === "▁" && preTokenizer.split !== true) {
    const scheme = preTokenizer.prepend_scheme ?? (preTokenizer.add_prefix_space === false ? "never" : "always");
    if (scheme === "always" || scheme === "first") return true;
    if (scheme === "never") return false;
  }
  throw new UserError(
    `${tokenizer.path}: the normalizer ${describe(normalizer)} with pre_tokenizer ${describe(preTokenizer)} is not a SentencePiece layout ` +
      `llama.cpp reproduces (Prepend "▁" + Replace " "→"▁", Replace alone, or Metaspace without split); ${NEXT_STEP}.`,
  );
}

function isSplitOnSpace(step: TokenizerStep): boolean {
  const pattern = step.pattern as { String?: unknown } | undefined;
  return step.type === "Split" && pattern?.String === " ";
}

function isPrependSpace(step: TokenizerStep | undefined): boolean {
  return step?.type === "Prepend" && step.prepend === "▁";
}

function isSpaceToMeta(step: TokenizerStep | undefined): boolean {
  const pattern = step?.pattern as { String?: unknown } | undefined;
  return step?.type === "Replace" && pattern?.String === " " && step.content === "▁";
}

function describe(step: TokenizerStep | null): string {
  if (step === null) return "null";
  const text = JSON.stringify(step);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
