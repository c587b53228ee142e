import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const special = (id: number, content: string) => ({
  id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
});

/**
 * A tiny Llama-style BPE tokenizer.json: "▁" marks word starts, a TemplateProcessing post_processor puts <s>
 * first. Ids: <unk>0 <s>1 </s>2 <|im_start|>3 <|im_end|>4 <pad>5, then the pieces below.
 */
export function tinyTokenizerJson(): Record<string, unknown> {
  const pieces = ["▁", "h", "i", "▁h", "▁hi", "o", "▁ho", "\n", "u", "s", "e", "r", "a", "t", "n"];
  const vocab: Record<string, number> = { "<unk>": 0, "<s>": 1, "</s>": 2, "<|im_start|>": 3, "<|im_end|>": 4, "<pad>": 5 };
  pieces.forEach((piece, index) => (vocab[piece] = 6 + index));
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>"), special(3, "<|im_start|>"), special(4, "<|im_end|>"), special(5, "<pad>")],
    normalizer: {
      type: "Sequence",
      normalizers: [{ type: "Prepend", prepend: "▁" }, { type: "Replace", pattern: { String: " " }, content: "▁" }],
    },
    pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "<s>", type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "▁" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: false, ignore_merges: false,
      vocab, merges: [["▁", "h"], ["▁h", "i"], ["▁h", "o"]],
    },
  };
}

/** Writes `files` (objects as JSON, strings as-is) into a fresh temp dir. */
export async function modelDir(files: Record<string, unknown>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "finetune-tokenizer-"));
  for (const [name, content] of Object.entries(files)) {
    await writeFile(join(dir, name), typeof content === "string" ? content : JSON.stringify(content));
  }
  return dir;
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
