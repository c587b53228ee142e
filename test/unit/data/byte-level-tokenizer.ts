import type { ModelTokenizer } from "../../../src/tokenizer/load.js";
import { tempDir } from "./fixture.js";
import { loadTokenizer } from "../../../src/tokenizer/load.js";

/** GPT-2's byte → printable character table: printable Latin-1 bytes stand for themselves, the rest map to 256+n. */
export function byteToChar(): string[] {
  const chars: string[] = [];
  let next = 256;
  for (let byte = 0; byte < 256; byte += 1) {
    const printable = (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174 && byte <= 255);
    chars.push(String.fromCodePoint(printable ? byte : next++));
  }
  return chars;
}

const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });

/** ChatML, as Qwen2 models ship it. */
export const CHATML =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/**
 * A GPT-2/Qwen2-style byte-level BPE tokenizer: the 256 byte symbols, then whole-word tokens built by chains of
 * merges (so "Hello" is one token and "Hel" is not), and ChatML specials; no BOS, EOS is <|im_end|>.
 */
export async function byteLevelTokenizer(words: string[]): Promise<ModelTokenizer> {
  const table = byteToChar();
  const vocab: Record<string, number> = {};
  table.forEach((char, byte) => (vocab[char] = byte));
  const merges: Array<[string, string]> = [];
  const encoder = new TextEncoder();
  for (const word of words) {
    const symbols = Array.from(encoder.encode(word), (byte) => table[byte] ?? "");
    let left = symbols[0] ?? "";
    for (const symbol of symbols.slice(1)) {
      const merged = left + symbol;
      if (vocab[merged] === undefined) {
        vocab[merged] = Object.keys(vocab).length;
        merges.push([left, symbol]);
      }
      left = merged;
    }
  }
  const base = Object.keys(vocab).length;
  const specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"].map((content, i) => special(base + i, content));
  const byteLevel = { add_prefix_space: false, trim_offsets: true, use_regex: true };
  const dir = tempDir();
  try {
    dir.write("tokenizer.json", {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: specials,
      normalizer: null,
      pre_tokenizer: { type: "ByteLevel", ...byteLevel },
      post_processor: { type: "ByteLevel", ...byteLevel },
      decoder: { type: "ByteLevel", ...byteLevel },
      model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "", fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
    });
    dir.write("tokenizer_config.json", { bos_token: null, eos_token: "<|im_end|>", pad_token: "<|endoftext|>", chat_template: CHATML });
    return await loadTokenizer(dir.path);
  } finally {
    dir.remove();
  }
}

