/**
 * A vocab-only GGUF for the real llama.cpp: the tokenizer metadata under test plus the few llama hyperparameters
 * llama.cpp reads before it sees `vocab_only` (general.architecture, context/embedding length, block count, heads,
 * RMS epsilon). No tensors: node-llama-cpp's `loadModel({ vocabOnly: true })` loads only the vocabulary.
 */
import { join } from "node:path";
import type { Llama, LlamaModel } from "node-llama-cpp";
import { writeGguf, type GgufValue } from "../../src/gguf/writer.js";

const LLAMA_HPARAMS: Record<string, GgufValue> = {
  "general.architecture": { type: "string", value: "llama" },
  "llama.context_length": { type: "uint32", value: 256 },
  "llama.embedding_length": { type: "uint32", value: 16 },
  "llama.block_count": { type: "uint32", value: 1 },
  "llama.feed_forward_length": { type: "uint32", value: 32 },
  "llama.attention.head_count": { type: "uint32", value: 2 },
  "llama.attention.head_count_kv": { type: "uint32", value: 2 },
  "llama.attention.layer_norm_rms_epsilon": { type: "float32", value: 1e-5 },
  "llama.rope.dimension_count": { type: "uint32", value: 8 },
};

/** Writes `<dir>/vocab.gguf` with `tokenizer` metadata and loads it in llama.cpp, vocabulary only. */
export async function loadVocabOnly(llama: Llama, dir: string, tokenizer: Record<string, GgufValue>): Promise<LlamaModel> {
  const modelPath = join(dir, "vocab.gguf");
  await writeGguf(modelPath, { metadata: { ...LLAMA_HPARAMS, ...tokenizer }, tensors: [] });
  return llama.loadModel({ modelPath, vocabOnly: true });
}
