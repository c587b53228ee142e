// The model code anchored to a real implementation's published output (test/fixtures/published-outputs.json):
// llama2.c's greedy run of stories260K, 256 tokens long, which any error in RoPE, GQA, RMSNorm, SwiGLU, the tied head
// or the KV cache would derail within a few tokens.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect } from "vitest";
import { loadBackend } from "../../../src/backend/load.js";
import { generate } from "../../../src/model/generate.js";
import { loadModel } from "../../../src/model/load-model.js";
import type { Tf } from "../../../src/model/types.js";
import { loadTokenizer } from "../../../src/tokenizer/load.js";
import { loadNativeMatmul } from "../../../src/backend/native-matmul.js";
import { allNeeds, itNeeds, nativeAddon, sharedFiles, sharedPath } from "../../helpers/needs.js";
import { ROOT } from "../../helpers/run-cli.js";

interface Greedy {
  prompt_ids: number[];
  new_tokens: number;
  text: string;
}
const facts = JSON.parse(readFileSync(join(ROOT, "test", "fixtures", "published-outputs.json"), "utf8")) as { stories260K: { greedy: Greedy } };
const stories = sharedPath("models/stories260K");
const storiesNeed = sharedFiles(["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"].map((f) => `models/stories260K/${f}`));

const nativeNeed = allNeeds(storiesNeed, nativeAddon(loadNativeMatmul()));

describe.each([
  ["wasm", "tensors"],
  ["cpu", "tensors"],
  ["wasm", "native"],
] as const)("stories260K against llama2.c (%s backend, float32 weights as %s)", (backend, float32In) => {
  let tf: Tf;
  beforeAll(async () => {
    tf = (await loadBackend({ forced: backend })).tf;
  });
  const { greedy } = facts.stories260K;
  // float32 weights in the native store: generation runs the native decoder.
  itNeeds(float32In === "native" ? nativeNeed : storiesNeed, `greedy decoding from <s> writes llama2.c's published ${greedy.new_tokens} tokens exactly`, async () => {
    const model = await loadModel(tf, stories, { float32In });
    const tokenizer = await loadTokenizer(stories);
    try {
      const result = await generate({
        model,
        promptIds: greedy.prompt_ids,
        maxNewTokens: greedy.new_tokens,
        sampling: { temperature: 0, topK: 0, topP: 1 },
        seed: 0,
        // run.c stops when the model emits <s> again.
        eosIds: [1],
        stopStrings: [],
        decode: (ids) => tokenizer.decode(ids, { skipSpecialTokens: true }),
      });
      expect(result.decoder).toBe(float32In === "native" ? "native" : "tfjs");
      expect(result.stopReason).toBe("max_new_tokens");
      expect(result.ids).toHaveLength(greedy.new_tokens);
      expect(tokenizer.decode(result.ids, { skipSpecialTokens: true })).toBe(greedy.text);
    } finally {
      model.dispose();
    }
  });
});
