import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { loadTokenizer } from "../../../src/tokenizer/load.js";
import { itNeeds, sharedFiles, sharedPath } from "../../helpers/needs.js";
import { modelDir, removeDir, tinyTokenizerJson } from "./fixture.js";

const dirs: string[] = [];
async function load(files: Record<string, unknown>) {
  const dir = await modelDir(files);
  dirs.push(dir);
  return loadTokenizer(dir);
}
afterEach(async () => {
  await Promise.all(dirs.splice(0).map(removeDir));
});

describe("loadTokenizer", () => {
  it("encodes with the post_processor's <s> by default and decodes back", async () => {
    const t = await load({ "tokenizer.json": tinyTokenizerJson(), "tokenizer_config.json": { clean_up_tokenization_spaces: false } });
    expect(t.encode("hi hi")).toEqual([1, 10, 10]);
    expect(t.encode("hi ho", { addSpecialTokens: false })).toEqual([10, 12]);
    expect(t.encode("hx")).toEqual([1, 9, 0]); // "x" is not in the vocab: <unk>
    expect(t.decode([1, 10, 12])).toBe("<s> hi ho");
    expect(t.decode([1, 10, 12], { skipSpecialTokens: true })).toBe("hi ho");
    expect(t.decode([])).toBe("");
    expect(t.idToToken(10)).toBe("▁hi");
    expect(t.idToToken(999)).toBeUndefined();
    expect(t.tokenToId("<|im_end|>")).toBe(4);
    expect(t.tokenToId("nope")).toBeUndefined();
    expect(t.vocabSize).toBe(21);
    expect([...t.specialIds].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("counts added tokens beyond the model vocab in vocabSize", async () => {
    const json = tinyTokenizerJson();
    json.added_tokens = [...(json.added_tokens as object[]), { id: 40, content: "<extra>", special: false, normalized: false }];
    const t = await load({ "tokenizer.json": json });
    expect(t.vocabSize).toBe(41);
    expect(t.tokenToId("<extra>")).toBe(40);
    expect(t.specialIds.has(40)).toBe(false);
  });

  it("reads bos/eos as strings or {content}, falling back to special_tokens_map.json", async () => {
    const plain = await load({ "tokenizer.json": tinyTokenizerJson(), "tokenizer_config.json": { bos_token: "<s>", eos_token: "</s>" } });
    expect([plain.bosToken, plain.eosToken, plain.bosId, plain.eosIds]).toEqual(["<s>", "</s>", 1, [2]]);

    const objects = await load({
      "tokenizer.json": tinyTokenizerJson(),
      "tokenizer_config.json": { bos_token: { content: "<s>", lstrip: false, __type: "AddedToken" }, eos_token: { content: "<|im_end|>" } },
    });
    expect([objects.bosToken, objects.eosToken, objects.bosId, objects.eosIds]).toEqual(["<s>", "<|im_end|>", 1, [4]]);

    const fromMap = await load({
      "tokenizer.json": tinyTokenizerJson(),
      "tokenizer_config.json": { eos_token: "<|im_end|>" },
      "special_tokens_map.json": { bos_token: { content: "<s>" }, eos_token: "</s>", pad_token: "<pad>" },
    });
    expect([fromMap.bosToken, fromMap.eosToken]).toEqual(["<s>", "<|im_end|>"]);
    expect(fromMap.namedSpecialTokens).toEqual({ bos_token: "<s>", eos_token: "<|im_end|>", pad_token: "<pad>" });

    const none = await load({ "tokenizer.json": tinyTokenizerJson() });
    expect([none.bosToken, none.eosToken, none.bosId, none.eosIds]).toEqual([null, null, null, []]);
  });

  it("merges generation_config.json eos_token_id (number or list) into eosIds", async () => {
    const one = await load({ "tokenizer.json": tinyTokenizerJson(), "tokenizer_config.json": { eos_token: "</s>" }, "generation_config.json": { eos_token_id: 4 } });
    expect(one.eosIds).toEqual([2, 4]);
    const list = await load({
      "tokenizer.json": tinyTokenizerJson(),
      "tokenizer_config.json": { eos_token: "</s>" },
      "generation_config.json": { eos_token_id: [2, 3, 4] },
    });
    expect(list.eosIds).toEqual([2, 3, 4]);
    // With no eos_token in the tokenizer config, generation_config names it.
    const only = await load({ "tokenizer.json": tinyTokenizerJson(), "generation_config.json": { eos_token_id: [4, 2], bos_token_id: 1 } });
    expect([only.eosToken, only.bosToken, only.bosId, only.eosIds]).toEqual(["<|im_end|>", "<s>", 1, [4, 2]]);
  });

  it("takes generation defaults from generation_config.json", async () => {
    const t = await load({
      "tokenizer.json": tinyTokenizerJson(),
      "generation_config.json": { do_sample: true, temperature: 0.6, top_k: 20, top_p: 0.9, max_new_tokens: 64, repetition_penalty: 1.1, transformers_version: "4.45.0" },
    });
    expect(t.generationDefaults).toEqual({ doSample: true, temperature: 0.6, topK: 20, topP: 0.9, maxNewTokens: 64, repetitionPenalty: 1.1 });
    const none = await load({ "tokenizer.json": tinyTokenizerJson(), "generation_config.json": { temperature: null } });
    expect(none.generationDefaults).toEqual({});
  });

  it("picks the chat template: a string, the list entry named default, chat_template.jinja over both", async () => {
    const asString = await load({ "tokenizer.json": tinyTokenizerJson(), "tokenizer_config.json": { chat_template: "S" } });
    expect(asString.chatTemplate).toBe("S");

    const list = [{ name: "tool_use", template: "T" }, { name: "default", template: "D" }];
    const named = await load({ "tokenizer.json": tinyTokenizerJson(), "tokenizer_config.json": { chat_template: list } });
    expect(named.chatTemplate).toBe("D");
    expect(named.chatTemplateNames).toEqual(["tool_use", "default"]);

    const noDefault = await load({ "tokenizer.json": tinyTokenizerJson(), "tokenizer_config.json": { chat_template: [{ name: "tool_use", template: "T" }] } });
    expect(noDefault.chatTemplate).toBeNull();

    const file = await load({ "tokenizer.json": tinyTokenizerJson(), "tokenizer_config.json": { chat_template: list }, "chat_template.jinja": "J" });
    expect(file.chatTemplate).toBe("J");
    const fileOverString = await load({ "tokenizer.json": tinyTokenizerJson(), "tokenizer_config.json": { chat_template: "S" }, "chat_template.jinja": "J" });
    expect(fileOverString.chatTemplate).toBe("J");

    const none = await load({ "tokenizer.json": tinyTokenizerJson() });
    expect(none.chatTemplate).toBeNull();
  });

  it("without tokenizer.json, lists the files present and says what is needed", async () => {
    const dir = await modelDir({ "config.json": {}, "tokenizer.model": "x" });
    dirs.push(dir);
    const error = await loadTokenizer(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toContain("no tokenizer.json (present: config.json, tokenizer.model)");
    expect((error as UserError).message).toContain("a tokenizer.json is needed");
    expect((error as UserError).message).toContain("sentencepiece tokenizer.model are not supported yet");
  });

  it("malformed JSON is a UserError naming the file and the parse error", async () => {
    const dir = await modelDir({ "tokenizer.json": tinyTokenizerJson(), "tokenizer_config.json": "{ bos_token: " });
    dirs.push(dir);
    const error = await loadTokenizer(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toContain(join(dir, "tokenizer_config.json"));
    expect((error as UserError).message).toMatch(/is not valid JSON \(.+\)/);
  });

  it("a wrongly typed field is a UserError naming the field", async () => {
    await expect(load({ "tokenizer.json": tinyTokenizerJson(), "generation_config.json": { eos_token_id: "two" } })).rejects.toThrow(
      /generation_config\.json is not a valid generation_config\.json:\n {2}eos_token_id: /,
    );
    await expect(load({ "tokenizer.json": { version: "1.0" } })).rejects.toThrow(/tokenizer\.json:\n {2}model: /);
  });

  it("an unsupported tokenizer model is a UserError naming the type", async () => {
    const json = tinyTokenizerJson();
    json.decoder = { type: "Mystery" };
    await expect(load({ "tokenizer.json": json })).rejects.toThrow(/could not be loaded: Unknown Decoder type: Mystery/);
  });

  it("WordLevel: unknown words map to the model's unk_token; with none, a UserError rather than a hole in the ids", async () => {
    const wordLevel = (unk: string | null) => ({
      added_tokens: [{ id: 0, content: "<unk>", special: true }, { id: 1, content: "<s>", special: true }],
      normalizer: null,
      pre_tokenizer: { type: "WhitespaceSplit" },
      post_processor: null,
      decoder: null,
      model: { type: "WordLevel", vocab: { "<unk>": 0, "<s>": 1, hello: 2, world: 3 }, unk_token: unk },
    });
    const withUnk = await load({ "tokenizer.json": wordLevel("<unk>") });
    expect(withUnk.encode("hello big world")).toEqual([2, 0, 3]);
    expect(withUnk.decode([2, 3])).toBe("hello world");
    const withoutUnk = await load({ "tokenizer.json": wordLevel(null) });
    expect(() => withoutUnk.encode("hello big world")).toThrow(/no id for part of "hello big world" and defines no unk_token/);
  });

  const stories = sharedPath("models/stories260K");
  itNeeds(sharedFiles(["models/stories260K/tokenizer.json", "models/stories260K/tokenizer_config.json"]), "loads stories260K", async () => {
    const t = await loadTokenizer(stories);
    const ids = t.encode("Once upon a time");
    expect(ids[0]).toBe(1);
    expect(ids.length).toBeGreaterThan(2);
    expect(t.decode(ids, { skipSpecialTokens: true })).toBe("Once upon a time");
    expect(t.eosIds).toContain(2);
    expect(t.bosId).toBe(1);
    expect(t.chatTemplate).toBeNull();
    expect(t.vocabSize).toBe(512);
  });
});
