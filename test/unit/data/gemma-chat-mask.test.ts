/**
 * Completion-only masking with Gemma 3's real chat template (test/fixtures/chat-templates.json, "gemma3", source noted
 * there): the template has no system role — it puts the system message at the start of the first user turn — calls
 * the assistant "model", and ends every turn with <end_of_turn>\n. Each model reply and its end marker are trained;
 * the system text, user turns and turn headers are not.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tokenizeExample } from "../../../src/data/tokenize-example.js";
import { renderChat } from "../../../src/tokenizer/chat.js";
import { loadTokenizer, type ModelTokenizer } from "../../../src/tokenizer/load.js";
import { ROOT } from "../../helpers/run-cli.js";
import { modelDir, removeDir } from "../tokenizer/fixture.js";

const GEMMA3_TEMPLATE = (JSON.parse(readFileSync(join(ROOT, "test/fixtures/chat-templates.json"), "utf8")) as Record<string, { template: string }>).gemma3?.template ?? "";

const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });

/**
 * A character-level tokenizer laid out like Gemma's: spaces become "▁" (no dummy prefix), <bos> is prepended by the
 * post-processor, and <start_of_turn> / <end_of_turn> are special tokens.
 */
function gemmaLikeTokenizerJson(): Record<string, unknown> {
  const specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"];
  const vocab: Record<string, number> = {};
  specials.forEach((s, i) => (vocab[s] = i));
  for (const char of ["▁", "\n", ..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,?!—"]) vocab[char] = Object.keys(vocab).length;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specials.map((s, i) => special(i, s)),
    normalizer: { type: "Replace", pattern: { String: " " }, content: "▁" },
    pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<bos>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "<bos>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { "<bos>": { id: "<bos>", ids: [2], tokens: ["<bos>"] } },
    },
    decoder: { type: "Sequence", decoders: [{ type: "Replace", pattern: { String: "▁" }, content: " " }, { type: "Fuse" }] },
    model: { type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: false, ignore_merges: false, vocab, merges: [] },
  };
}

const CONVERSATION = [
  { role: "system", content: "You convert units." },
  { role: "user", content: "83 pounds in kg?" },
  { role: "assistant", content: "37.6 kg — done." },
  { role: "user", content: "And 2 pounds?" },
  { role: "assistant", content: "0.9 kg — done." },
];

describe("Gemma 3's chat template", () => {
  let dir: string;
  let tok: ModelTokenizer;
  beforeAll(async () => {
    dir = await modelDir({
      "tokenizer.json": gemmaLikeTokenizerJson(),
      "tokenizer_config.json": { bos_token: "<bos>", eos_token: "<eos>", pad_token: "<pad>", add_bos_token: true, chat_template: GEMMA3_TEMPLATE },
    });
    tok = await loadTokenizer(dir);
  });
  afterAll(() => removeDir(dir));

  it("folds the system message into the first user turn and ends turns with <end_of_turn>", () => {
    expect(renderChat(tok, CONVERSATION, { addGenerationPrompt: false })).toBe(
      "<bos><start_of_turn>user\nYou convert units.\n\n83 pounds in kg?<end_of_turn>\n" +
        "<start_of_turn>model\n37.6 kg — done.<end_of_turn>\n" +
        "<start_of_turn>user\nAnd 2 pounds?<end_of_turn>\n" +
        "<start_of_turn>model\n0.9 kg — done.<end_of_turn>\n",
    );
    expect(renderChat(tok, CONVERSATION.slice(0, 2), { addGenerationPrompt: true }).endsWith("<end_of_turn>\n<start_of_turn>model\n")).toBe(true);
  });

  it("trains exactly each model reply with its <end_of_turn> and newline; one <bos>", () => {
    const item = tokenizeExample(tok, { kind: "chat", messages: CONVERSATION }, { completionOnly: true });
    expect(item.ids).toEqual(tok.encode(renderChat(tok, CONVERSATION, { addGenerationPrompt: false }), { addSpecialTokens: false }));
    expect(item.ids.filter((id) => id === 2)).toHaveLength(1);
    const trained = item.ids.filter((_, i) => item.labels[i] === 1);
    const masked = item.ids.filter((_, i) => item.labels[i] === 0);
    expect(tok.decode(trained)).toBe("37.6 kg — done.<end_of_turn>\n0.9 kg — done.<end_of_turn>\n");
    expect(tok.decode(masked)).toBe("<bos><start_of_turn>user\nYou convert units.\n\n83 pounds in kg?<end_of_turn>\n<start_of_turn>model\n<start_of_turn>user\nAnd 2 pounds?<end_of_turn>\n<start_of_turn>model\n");
    // Two <end_of_turn> trained (one per reply), two masked (the user turns').
    const endOfTurn = 5;
    expect(trained.filter((id) => id === endOfTurn)).toHaveLength(2);
    expect(masked.filter((id) => id === endOfTurn)).toHaveLength(2);
  });
});
