import { afterEach, describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { MAX_TOKEN_ID } from "../../../src/tokenizer/id-bounds.js";
import { loadTokenizer } from "../../../src/tokenizer/load.js";
import { modelDir, removeDir, tinyTokenizerJson } from "./fixture.js";

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map(removeDir));
});

/** The tiny tokenizer (ids 0..20) with one more added token at `id`, and optionally a config.json. */
async function withAddedToken(id: number, vocabSize?: number): Promise<string> {
  const json = tinyTokenizerJson();
  json.added_tokens = [...(json.added_tokens as object[]), { id, content: "<big>", special: true, normalized: false }];
  const files: Record<string, unknown> = { "tokenizer.json": json };
  if (vocabSize !== undefined) files["config.json"] = { model_type: "llama", vocab_size: vocabSize };
  const dir = await modelDir(files);
  dirs.push(dir);
  return dir;
}

describe("token id bounds (attack: hostile ids make the tokenizer library allocate up to the largest id)", () => {
  // Before the fix this spun for minutes inside the library, so the test timeout would catch a regression.
  it("refuses an added token with id 2^31 at once, naming the token and the id", async () => {
    const error = await loadTokenizer(await withAddedToken(2 ** 31)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toContain('"<big>"');
    expect((error as Error).message).toContain(`id ${2 ** 31}`);
    expect((error as Error).message).toContain(`limit of ${MAX_TOKEN_ID}`);
  });

  it("refuses a vocab id of 1e9 in the vocab itself", async () => {
    const json = tinyTokenizerJson();
    (json.model as { vocab: Record<string, number> }).vocab["zz"] = 1e9;
    const dir = await modelDir({ "tokenizer.json": json });
    dirs.push(dir);
    await expect(loadTokenizer(dir)).rejects.toThrow(/"zz" the id 1000000000/);
  });

  it("bounds ids by the model's vocab_size when config.json gives it", async () => {
    // 5000 is below the absolute limit but far past a 32-row embedding.
    await expect(loadTokenizer(await withAddedToken(5000, 32))).rejects.toThrow(/vocab_size of 32 \(config\.json\)/);
  });

  it("accepts an unused added token past vocab_size, but refuses to encode it", async () => {
    const t = await loadTokenizer(await withAddedToken(40, 32));
    expect(t.encode("hi", { addSpecialTokens: false })).toEqual([10]);
    expect(() => t.encode("hi<big>")).toThrow(/"<big>" with id 40, but the model's embedding has only 32 rows/);
  });
});
