import { UserError } from "../errors.js";
import type { ModelConfig } from "../model/config.js";
import type { ModelTokenizer } from "../tokenizer/load.js";
import { loadTokenizer } from "../tokenizer/load.js";
import { readTokenizerJson, type TokenizerJson } from "./vocab-json.js";
import { bytePreFor, spmSpacePrefix } from "./vocab-pre.js";
import { mergeStrings, spmScores, tokenList } from "./vocab-tokens.js";
import type { GgufValue } from "./writer.js";

/** finetune's named special tokens and the GGUF keys llama.cpp reads their ids from (gguf-py's Keys.Tokenizer). */
const SPECIAL_ID_KEYS = {
  bos_token: "tokenizer.ggml.bos_token_id",
  eos_token: "tokenizer.ggml.eos_token_id",
  unk_token: "tokenizer.ggml.unknown_token_id",
  sep_token: "tokenizer.ggml.seperator_token_id",
  pad_token: "tokenizer.ggml.padding_token_id",
  mask_token: "tokenizer.ggml.mask_token_id",
} as const;

/**
 * The tokenizer of a whole-model GGUF: every `tokenizer.ggml.*` key llama.cpp's converter writes, and
 * `tokenizer.chat_template`, so that llama.cpp tokenizes text as finetune does.
 * - SentencePiece-style BPE (byte_fallback: Llama 2, Phi-3, Gemma): model "llama", pre "default", tokens, scores,
 *   token types, add_space_prefix.
 * - Byte-level BPE (GPT-2, Llama 3, Qwen2/3, SmolLM): model "gpt2", pre (from the pre_tokenizer), tokens, token
 *   types, merges.
 * Both: special token ids, and add_bos_token/add_eos_token as finetune's post_processor adds them.
 */
export async function ggufTokenizerMetadata(params: { modelDir: string; config: ModelConfig }): Promise<Record<string, GgufValue>> {
  const { modelDir, config } = params;
  // The model type first: a tokenizer GGUF cannot express is refused before anything else is read.
  const json = await readTokenizerJson(modelDir).catch(async (error: unknown) => {
    // A missing or unparsable tokenizer.json: the loader says so best (what is present, what to do).
    await loadTokenizer(modelDir);
    throw error;
  });
  const kind = tokenizerKind(json);
  const tokenizer = await loadTokenizer(modelDir);
  const metadata: Record<string, GgufValue> = {};
  const list = tokenList(json, config.vocabSize, kind);
  if (kind === "spm") {
    metadata["tokenizer.ggml.model"] = { type: "string", value: "llama" };
    metadata["tokenizer.ggml.pre"] = { type: "string", value: "default" };
    metadata["tokenizer.ggml.tokens"] = { type: "array", itemType: "string", value: list.tokens };
    metadata["tokenizer.ggml.scores"] = { type: "array", itemType: "float32", value: spmScores(json, list) };
    metadata["tokenizer.ggml.token_type"] = { type: "array", itemType: "int32", value: list.types };
  } else {
    metadata["tokenizer.ggml.model"] = { type: "string", value: "gpt2" };
    metadata["tokenizer.ggml.pre"] = { type: "string", value: bytePreFor(json).pre };
    metadata["tokenizer.ggml.tokens"] = { type: "array", itemType: "string", value: list.tokens };
    metadata["tokenizer.ggml.token_type"] = { type: "array", itemType: "int32", value: list.types };
    metadata["tokenizer.ggml.merges"] = { type: "array", itemType: "string", value: mergeStrings(json) };
  }
  Object.assign(metadata, specialTokenMetadata(tokenizer, json, config.vocabSize));
  if (kind === "spm") metadata["tokenizer.ggml.add_space_prefix"] = { type: "bool", value: spmSpacePrefix(json) };
  if (tokenizer.chatTemplate !== null) metadata["tokenizer.chat_template"] = { type: "string", value: tokenizer.chatTemplate };
  return metadata;
}

function tokenizerKind(json: TokenizerJson): "spm" | "byte" {
  if (json.modelType !== "BPE") {
    throw new UserError(
      `${json.path}: the tokenizer model type is ${JSON.stringify(json.modelType)}; GGUF model export supports BPE tokenizers only ` +
        `(byte-level as GPT-2/Llama 3/Qwen, or SentencePiece-style with byte_fallback as Llama 2/Gemma). Export a LoRA adapter ` +
        `(--format peft) and convert the merged model with llama.cpp's convert_hf_to_gguf.py instead.`,
    );
  }
  return json.byteFallback ? "spm" : "byte";
}

/**
 * Special token ids, and whether llama.cpp adds BOS/EOS. The add flags are written always, from what finetune's
 * post_processor does (the converter reads the same TemplateProcessing, then tokenizer_config's add_bos_token):
 * llama.cpp's defaults differ by pre-tokenizer (llama-bpe adds BOS unless told), so leaving one out could differ.
 */
function specialTokenMetadata(tokenizer: ModelTokenizer, json: TokenizerJson, vocabSize: number): Record<string, GgufValue> {
  const ids: Partial<Record<keyof typeof SPECIAL_ID_KEYS, number>> = {};
  for (const name of Object.keys(SPECIAL_ID_KEYS) as (keyof typeof SPECIAL_ID_KEYS)[]) {
    const token = tokenizer.namedSpecialTokens[name];
    const id = token === undefined ? undefined : tokenizer.tokenToId(token);
    if (id !== undefined && id < vocabSize) ids[name] = id;
  }
  const { front, back } = tokenizer.specialsAround("a");
  const addBos = addsOne(json, front, "before", ids, "bos_token");
  const addEos = addsOne(json, back, "after", ids, "eos_token");
  const metadata: Record<string, GgufValue> = {};
  for (const [name, key] of Object.entries(SPECIAL_ID_KEYS)) {
    const id = ids[name as keyof typeof SPECIAL_ID_KEYS];
    if (id !== undefined) metadata[key] = { type: "uint32", value: id };
  }
  metadata["tokenizer.ggml.add_bos_token"] = { type: "bool", value: addBos };
  metadata["tokenizer.ggml.add_eos_token"] = { type: "bool", value: addEos };
  return metadata;
}

/** Whether the post_processor puts the BOS (or EOS) token around a text; it may name that token when the config does not. */
function addsOne(
  json: TokenizerJson,
  added: number[],
  where: "before" | "after",
  ids: Partial<Record<"bos_token" | "eos_token", number>>,
  name: "bos_token" | "eos_token",
): boolean {
  if (added.length === 0) return false;
  const [only] = added;
  if (added.length === 1 && only !== undefined && (ids[name] === undefined || ids[name] === only)) {
    ids[name] = only;
    return true;
  }
  throw new UserError(
    `${json.path}: the post_processor adds ids [${added.join(", ")}] ${where} the text, but llama.cpp can add only its ` +
      `${name.replace("_token", "").toUpperCase()} token (${ids[name] ?? "none named"}) there; GGUF export does not support this post_processor yet.`,
  );
}
