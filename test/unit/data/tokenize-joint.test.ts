/**
 * Masked examples are tokenized as one text: the ids equal the joint text's encoding (no spurious "▁" where the
 * prompt meets the completion), and the trained tokens are exactly those overlapping the completion / assistant
 * text. Checked on the real stories260K (Llama 2 SentencePiece-style BPE) tokenizer and on a byte-level BPE one.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { describeNeeds, itNeeds, sharedFiles, sharedPath } from "../../helpers/needs.js";
import type { Example } from "../../../src/data/formats.js";
import { previewExample } from "../../../src/data/preview.js";
import { tokenizeExample, type TokenizedExample } from "../../../src/data/tokenize-example.js";
import { renderChat } from "../../../src/tokenizer/chat.js";
import { loadTokenizer, type ModelTokenizer } from "../../../src/tokenizer/load.js";
import { byteLevelTokenizer } from "./byte-level-tokenizer.js";
import { modelDir, removeDir, tinyTokenizerJson } from "../tokenizer/fixture.js";

const STORIES = sharedPath("models/stories260K");
const storiesNeed = sharedFiles(["models/stories260K/tokenizer.json", "models/stories260K/tokenizer_config.json"]);

/** Each token's piece and whether it is trained, e.g. "▁there:1". */
function marked(tok: ModelTokenizer, item: TokenizedExample): string[] {
  return item.ids.map((id, i) => `${tok.idToToken(id) ?? "?"}:${item.labels[i] ?? "?"}`);
}

const pieces = (tok: ModelTokenizer, ids: number[]): string[] => ids.map((id) => tok.idToToken(id) ?? "?");

// A plain template for a tokenizer without one; the assistant's span starts at the space after "assistant:".
const PLAIN_TEMPLATE = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";
const CONVERSATION = [
  { role: "user", content: "Hi" },
  { role: "assistant", content: "Hello there." },
  { role: "user", content: "Who are you?" },
  { role: "assistant", content: "A cat." },
];

describeNeeds(storiesNeed, "stories260K (SentencePiece-style BPE with a prepended ▁)", () => {
  let tok: ModelTokenizer;
  beforeAll(async () => {
    tok = await loadTokenizer(STORIES);
  });
  const eos = (): number => tok.eosIds[0] ?? -1;

  it("completion: the ids are the joint text's, without a spurious ▁ at the boundary; the completion and EOS are trained", () => {
    const item = tokenizeExample(tok, { kind: "completion", prompt: "Once upon a time", completion: " there was a girl" }, { completionOnly: true });
    expect(item.ids).toEqual([...tok.encode("Once upon a time there was a girl"), eos()]);
    expect(marked(tok, item)).toEqual(["<s>:0", "▁Once:0", "▁upon:0", "▁a:0", "▁time:0", "▁there:1", "▁was:1", "▁a:1", "▁g:1", "ir:1", "l:1", "</s>:1"]);
    // Encoding the pieces apart is what put a lone ▁ between them.
    expect(pieces(tok, tok.encode(" there", { addSpecialTokens: false }))).toEqual(["▁", "▁there"]);
  });

  it("completion starting inside a word: the token holding both sides is trained", () => {
    const item = tokenizeExample(tok, { kind: "completion", prompt: "Once upon a ti", completion: "me there was a girl" }, { completionOnly: true });
    expect(item.ids).toEqual([...tok.encode("Once upon a time there was a girl"), eos()]);
    expect(marked(tok, item).slice(0, 6)).toEqual(["<s>:0", "▁Once:0", "▁upon:0", "▁a:0", "▁time:1", "▁there:1"]);
  });

  it("completion_only false: the same ids, everything but position 0 trained", () => {
    const example: Example = { kind: "completion", prompt: "Once upon a time", completion: " there was a girl" };
    const masked = tokenizeExample(tok, example, { completionOnly: true });
    const full = tokenizeExample(tok, example, { completionOnly: false });
    expect(full.ids).toEqual(masked.ids);
    expect(Array.from(full.labels)).toEqual([0, ...Array<number>(full.ids.length - 1).fill(1)]);
  });

  it("text: BOS + the text + EOS, all trained but position 0", () => {
    const item = tokenizeExample(tok, { kind: "text", text: "The cat sat." }, { completionOnly: true });
    expect(marked(tok, item)).toEqual(["<s>:0", "▁The:1", "▁c:1", "at:1", "▁s:1", "at:1", ".:1", "</s>:1"]);
  });

  it("multi-turn chat: the joint rendered text's ids; exactly each assistant reply and its line end are trained", () => {
    const chatTok = { ...tok, chatTemplate: PLAIN_TEMPLATE };
    const item = tokenizeExample(chatTok, { kind: "chat", messages: CONVERSATION }, { completionOnly: true });
    const rendered = renderChat(chatTok, CONVERSATION, { addGenerationPrompt: false });
    expect(item.ids).toEqual(tok.encode(rendered));
    const trained = marked(tok, item).filter((entry) => entry.endsWith(":1"));
    expect(trained).toEqual(["▁He:1", "ll:1", "o:1", "▁there:1", ".:1", "<0x0A>:1", "▁:1", "A:1", "▁c:1", "at:1", ".:1", "<0x0A>:1"]);
    // The masked tokens are exactly the rest: the BOS, the roles and the user turns.
    expect(tok.decode(item.ids.filter((_, i) => item.labels[i] === 0))).toBe("<s> user: Hi\nassistant:user: Who are you?\nassistant:");
  });

  it("a chat template that writes BOS itself: one BOS, the same mask", () => {
    const plain = tokenizeExample({ ...tok, chatTemplate: PLAIN_TEMPLATE }, { kind: "chat", messages: CONVERSATION }, { completionOnly: true });
    const withBos = tokenizeExample({ ...tok, chatTemplate: `{{ bos_token }}${PLAIN_TEMPLATE}` }, { kind: "chat", messages: CONVERSATION }, { completionOnly: true });
    expect(withBos.ids).toEqual(plain.ids);
    expect(Array.from(withBos.labels)).toEqual(Array.from(plain.labels));
  });
});

describe("byte-level BPE (GPT-2 / Qwen2 style, no BOS)", () => {
  let tok: ModelTokenizer;
  beforeAll(async () => {
    tok = await byteLevelTokenizer(["Once", " upon", " a", " time", " there", " was", " girl", " Hello", "Hello", " world", "user", "assistant", "Hi", "Say"]);
  });
  const eos = (): number => tok.eosIds[0] ?? -1;

  it("completion: the joint text's ids; the completion and EOS are trained", () => {
    const item = tokenizeExample(tok, { kind: "completion", prompt: "Once upon a time", completion: " there was a girl" }, { completionOnly: true });
    expect(item.ids).toEqual([...tok.encode("Once upon a time there was a girl"), eos()]);
    expect(marked(tok, item)).toEqual(["Once:0", "Ġupon:0", "Ġa:0", "Ġtime:0", "Ġthere:1", "Ġwas:1", "Ġa:1", "Ġgirl:1", "<|im_end|>:1"]);
  });

  it("completion starting inside a word: the word's single token is trained", () => {
    const item = tokenizeExample(tok, { kind: "completion", prompt: "Say: Hel", completion: "lo world" }, { completionOnly: true });
    expect(item.ids).toEqual([...tok.encode("Say: Hello world"), eos()]);
    expect(marked(tok, item)).toEqual(["Say:0", "::0", "ĠHello:1", "Ġworld:1", "<|im_end|>:1"]);
  });

  it("text: the text + EOS, all trained but position 0", () => {
    const item = tokenizeExample(tok, { kind: "text", text: "Hello world" }, { completionOnly: true });
    expect(marked(tok, item)).toEqual(["Hello:0", "Ġworld:1", "<|im_end|>:1"]);
  });

  it("multi-turn ChatML chat: the joint rendered text's ids; each reply with its <|im_end|> and line end is trained", () => {
    const messages = [
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello world" },
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello" },
    ];
    const item = tokenizeExample(tok, { kind: "chat", messages }, { completionOnly: true });
    expect(item.ids).toEqual(tok.encode(renderChat(tok, messages, { addGenerationPrompt: false })));
    const turn = (content: string[], trained: 0 | 1) => ["<|im_start|>:0", "user:0", "Ċ:0", "Hi:0", "<|im_end|>:0", "Ċ:0", "<|im_start|>:0", "assistant:0", "Ċ:0", ...content.map((p) => `${p}:${trained}`), `<|im_end|>:${trained}`, `Ċ:${trained}`];
    expect(marked(tok, item)).toEqual([...turn(["Hello", "Ġworld"], 1), ...turn(["Hello"], 1)]);
    const all = tokenizeExample(tok, { kind: "chat", messages }, { completionOnly: false });
    expect(all.ids).toEqual(item.ids);
    expect(Array.from(all.labels)).toEqual([0, ...Array<number>(all.ids.length - 1).fill(1)]);
  });
});

describeNeeds(storiesNeed, "preview with stories260K", () => {
  it("highlights the completion with its leading space, as the joint text reads", async () => {
    const tok = await loadTokenizer(STORIES);
    const item = tokenizeExample(tok, { kind: "completion", prompt: "Once upon a time", completion: " there was a girl" }, { completionOnly: true });
    const shown = previewExample(tok, item, { trained: (s) => `[${s}]`, prompt: (s) => `{${s}}` });
    expect(shown).toBe("{<s> Once upon a time}[ there was a girl</s>]");
  });
});

describe("a post_processor that appends EOS itself (add_eos_token)", () => {
  it("keeps one EOS, trained with the completion; the prompt and BOS stay masked", async () => {
    const json = tinyTokenizerJson();
    json.post_processor = {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "</s>", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] }, "</s>": { id: "</s>", ids: [2], tokens: ["</s>"] } },
    };
    const dir = await modelDir({ "tokenizer.json": json, "tokenizer_config.json": { bos_token: "<s>", eos_token: "</s>" } });
    try {
      const tok = await loadTokenizer(dir);
      const item = tokenizeExample(tok, { kind: "completion", prompt: "hi", completion: " ho" }, { completionOnly: true });
      expect(item.ids).toEqual(tok.encode("hi ho"));
      expect(marked(tok, item)).toEqual(["<s>:0", "▁hi:0", "▁ho:1", "</s>:1"]);
    } finally {
      await removeDir(dir);
    }
  });
});

/**
 * Every split point of a few ASCII texts, against offsets worked out independently: for these two tokenizers the
 * pieces, concatenated, spell the normalized text one character per ASCII byte (stories260K: "▁" + the text with
 * spaces as "▁", a byte-fallback piece <0xNN> standing for one byte; byte-level BPE: one symbol per byte). So token i
 * covers the text from the sum of the lengths of the pieces before it, and must be trained exactly when it overlaps
 * the completion.
 */
describe("every split of a prompt and a completion, against independently computed offsets", () => {
  const texts = ["Once upon a time, there was a little girl named Lily.", 'She said: "Hi!"\nTom ran  away, fast.', "It was 1999 and the cat's hat was red."];

  function check(tok: ModelTokenizer, shift: number): void {
    const eos = tok.eosIds[0] ?? -1;
    for (const text of texts) {
      const ids = tok.encode(text);
      const core = tok.encode(text, { addSpecialTokens: false });
      const front = ids.length - core.length;
      const starts: number[] = [];
      let at = -shift;
      for (const id of core) {
        starts.push(at);
        const piece = tok.idToToken(id) ?? "";
        at += /^<0x[0-9A-F]{2}>$/.test(piece) ? 1 : piece.length;
      }
      expect(at + shift).toBe(text.length + shift);
      for (let split = 1; split < text.length; split += 1) {
        const item = tokenizeExample(tok, { kind: "completion", prompt: text.slice(0, split), completion: text.slice(split) }, { completionOnly: true });
        expect(item.ids).toEqual([...ids, eos]);
        const expected = [...ids.map((_, i) => (i < front ? 0 : (starts[i - front + 1] ?? text.length) > split ? 1 : 0)), 1];
        expected[0] = 0;
        expect(Array.from(item.labels), `split ${split} of ${JSON.stringify(text)}`).toEqual(expected);
      }
    }
  }

  itNeeds(storiesNeed, "stories260K", async () => {
    check(await loadTokenizer(STORIES), 1);
  });

  it("byte-level BPE", async () => {
    check(await byteLevelTokenizer(["Once", " upon", " a", " time", " there", " was", " little", " girl", " named", " Lily", "She", " said", "Tom", " ran", " away", " fast", " the", " cat", " hat", " red", "199", "It"]), 0);
  });
});
