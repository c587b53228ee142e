// A character-level tokenizer for the bench's random-weight checkpoints (the bench feeds token ids; the files are
// there so the folder is a complete model that `finetune` commands accept). The same construction as
// test/helpers/tiny-checkpoint.ts writeTokenizerFiles, in plain JS because the bench cannot import test TypeScript.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const CHARS = [" ", "\n", ..."abcdefghijklmnopqrstuvwxyz", ..."ABCDEFGHIJKLMNOPQRSTUVWXYZ", ..."0123456789", ..."<|>_.,!?'\"-:;/()[]{}=+*&%$#@~`^\\"];

const CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + eos_token + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** Special token ids: config.json's bos/eos ids must name these. */
export const TINY_TOKENIZER_IDS = { unk: 0, bos: 1, eos: 2 };

/**
 * tokenizer.json + tokenizer_config.json for a BPE without merges whose vocab is exactly ids 0..vocab-1:
 * `<unk>`, `<s>`, `</s>`, single characters, then `<extra_N>` fillers so every id of the model decodes.
 */
export function writeTinyTokenizer(dir, vocab) {
  mkdirSync(dir, { recursive: true });
  const specials = ["<unk>", "<s>", "</s>"];
  const pieces = {};
  specials.forEach((s, i) => (pieces[s] = i));
  for (let id = specials.length; id < vocab; id += 1) pieces[CHARS[id - specials.length] ?? `<extra_${id}>`] = id;
  const flags = { single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
  const added = specials.map((content, id) => ({ id, content, ...flags }));
  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: "Split", pattern: { Regex: "\\s+" }, behavior: "Isolated", invert: false },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "<s>", type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: { type: "Fuse" },
    model: {
      type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab: pieces, merges: [],
    },
  };
  const config = {
    added_tokens_decoder: Object.fromEntries(added.map(({ id, content }) => [String(id), { content, ...flags }])),
    bos_token: "<s>",
    eos_token: "</s>",
    unk_token: "<unk>",
    pad_token: null,
    add_bos_token: true,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    model_max_length: 131072,
    tokenizer_class: "PreTrainedTokenizerFast",
    chat_template: CHAT_TEMPLATE,
  };
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizer));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(config, null, 2));
}
