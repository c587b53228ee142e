import { copyFileSync, mkdirSync, readdirSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadNativeWeights } from "../../src/backend/native-weights.js";
import { SUPPORTED_MODEL_TYPES } from "../../src/model/config.js";
import { filesOf, startHubServer, type HubServer } from "../helpers/hub-server.js";
import { itNeeds, sharedFiles, sharedPath } from "../helpers/needs.js";
import { referenceLogits, referenceMeanLoss } from "../helpers/reference-model.js";
import { cleanEnv, lastJson, runCli, tempDir } from "../helpers/run-cli.js";
import { writeTinyCheckpoint } from "../helpers/tiny-checkpoint.js";

const tmp = tempDir();
const tiny = join(tmp.path, "tiny-llama");
const stories = sharedPath("models/stories260K");
const storiesNeed = sharedFiles(["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"].map((f) => `models/stories260K/${f}`));
let hub: HubServer;


beforeAll(async () => {
  writeTinyCheckpoint(tiny, { kind: "llama", maxPositions: 128, seed: 21 });
  hub = await startHubServer([{ name: "tiny/llama", commits: [{ files: filesOf(tiny) }] }]);
});
afterAll(async () => {
  await hub.close();
  tmp.cleanup();
});

const env = (extra: Record<string, string> = {}) => cleanEnv({ HOME: tmp.path, HF_ENDPOINT: hub.url, HF_HUB_CACHE: join(tmp.path, "cache"), ...extra });

/** A copy of the tiny model with a change, for the bad-input cases. */
function variant(name: string, change: (dir: string) => void): string {
  const dir = join(tmp.path, name);
  mkdirSync(dir, { recursive: true });
  for (const file of readdirSync(tiny)) copyFileSync(join(tiny, file), join(dir, file));
  change(dir);
  return dir;
}

describe("finetune generate", () => {
  it("pulls a hub model, generates, and reports the result as JSON", async () => {
    const result = await runCli(["generate", "--model", "tiny/llama", "--prompt", "a b c", "--max-new-tokens", "5", "--temperature", "0", "--json"], env());
    expect(result.code).toBe(0);
    type Out = { text: string; prompt_ids: number[]; ids: number[]; tokens: number; seconds: number; tokens_per_second: number; prefill_seconds: number; decode_tokens_per_second: number | null; decoder: string };
    const out = lastJson(result.stdout) as Out;
    expect(Object.keys(out).sort()).toEqual(["decode_tokens_per_second", "decoder", "ids", "prefill_seconds", "prompt_ids", "seconds", "stop_reason", "text", "tokens", "tokens_per_second"]);
    expect(out.prompt_ids[0]).toBe(1);
    expect(out.tokens).toBe(out.ids.length);
    expect(out.ids.length).toBeLessThanOrEqual(5);
    expect(out.seconds).toBeGreaterThan(0);
    expect(out.prefill_seconds).toBeGreaterThan(0);
    expect(out.prefill_seconds).toBeLessThan(out.seconds);
    // Every token after the first comes from a decode step.
    if (out.tokens > 1) expect(out.decode_tokens_per_second).toBeGreaterThan(0);
    // With the native addon (which builds wherever a compiler is) generate runs the native decoder.
    expect(out.decoder).toBe(loadNativeWeights().addon ? "native" : "tfjs");
    // the same greedy run from the local folder, offline, gives the same ids, and so does the tfjs forward pass
    const local = await runCli(["generate", "--model", tiny, "--prompt", "a b c", "--max-new-tokens", "5", "--temperature", "0", "--json"], env({ HF_HUB_OFFLINE: "1" }));
    expect((lastJson(local.stdout) as { ids: number[] }).ids).toEqual(out.ids);
    const tfjs = lastJson((await runCli(["generate", "--model", tiny, "--prompt", "a b c", "--max-new-tokens", "5", "--temperature", "0", "--json"], env({ FINETUNE_LEAN_DECODE: "0" }))).stdout) as Out;
    expect([tfjs.decoder, tfjs.ids]).toEqual(["tfjs", out.ids]);
  });

  it("seeded sampling is reproducible; --chat uses the model's template", async () => {
    const args = ["generate", "--model", tiny, "--prompt", "a b", "--max-new-tokens", "8", "--temperature", "1.5", "--seed", "3", "--json"];
    const a = lastJson((await runCli(args, env())).stdout);
    const b = lastJson((await runCli(args, env())).stdout);
    expect(a.ids).toEqual(b.ids);
    const chat = await runCli(["generate", "--model", tiny, "--prompt", "a b", "--chat", "--system", "c", "--max-new-tokens", "2", "--json"], env());
    expect(chat.code).toBe(0);
    const plain = lastJson((await runCli(["generate", "--model", tiny, "--prompt", "a b", "--max-new-tokens", "2", "--json"], env())).stdout);
    expect((lastJson(chat.stdout).prompt_ids as number[]).length).toBeGreaterThan((plain.prompt_ids as number[]).length);
  });

  it.each([
    [["--top-p", "1.5"], "--top-p 1.5 is out of range: use a number in (0, 1]"],
    [["--temperature", "-1"], "--temperature -1 is out of range"],
    [["--max-new-tokens", "0"], "--max-new-tokens 0 must be a whole number ≥ 1"],
    [["--prompt", Array.from({ length: 70 }, () => "a").join(" ")], "the prompt is 140 tokens but the model's context is 128 tokens"],
  ])("refuses %j with exit 2", async (extra, message) => {
    const args = ["generate", "--model", tiny, "--prompt", "a", ...extra];
    const result = await runCli(args, env());
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it("stops when the context is full and says so (stop_reason context), in --json and in the terminal", async () => {
    // <s> + 125 characters = 126 of the 128 positions: room for exactly 2 new tokens.
    const prompt = Array.from({ length: 63 }, (_, i) => "abc"[i % 3]).join(" ");
    const args = ["generate", "--model", tiny, "--prompt", prompt, "--max-new-tokens", "50", "--temperature", "0"];
    const json = await runCli([...args, "--json"], env());
    expect(json.code, json.stderr).toBe(0);
    const out = lastJson(json.stdout) as { prompt_ids: number[]; ids: number[]; stop_reason: string };
    expect(out.prompt_ids).toHaveLength(126);
    expect(out.stop_reason).toBe("context");
    expect(out.ids).toHaveLength(2);
    const human = await runCli(args, env());
    expect(human.code).toBe(0);
    expect(human.stderr).toContain("stopped after 2 new tokens: the model's context of 128 tokens is full (the prompt takes 126)");
    // Within the context, the limit asked for is what stops it.
    const short = lastJson((await runCli([...args, "--max-new-tokens", "1", "--json"], env())).stdout);
    expect(short.stop_reason).toBe("max_new_tokens");
    expect(short.ids).toEqual(out.ids.slice(0, 1));
  });

  it("explains bad model folders", async () => {
    const cases: Array<[string, string]> = [
      [variant("no-tokenizer", (d) => rmSync(join(d, "tokenizer.json"))), "config.json"],
      [variant("pickle-only", (d) => { rmSync(join(d, "model.safetensors")); writeFileSync(join(d, "pytorch_model.bin"), "x"); }), "pickle"],
      [variant("bert", (d) => writeFileSync(join(d, "config.json"), JSON.stringify({ model_type: "bert" }))), `model_type "bert" is not supported; supported: ${SUPPORTED_MODEL_TYPES.join(", ")}`],
      [variant("truncated", (d) => truncateSync(join(d, "model.safetensors"), 2000)), "model.safetensors"],
      [variant("no-template", (d) => writeFileSync(join(d, "tokenizer_config.json"), JSON.stringify({ bos_token: "<s>", eos_token: "</s>" }))), "no chat template"],
    ];
    for (const [dir, message] of cases) {
      const result = await runCli(["generate", "--model", dir, "--prompt", "a", "--chat"], env());
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toContain(message);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
    const missing = await runCli(["generate", "--model", "./nowhere", "--prompt", "a"], env());
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("does not exist");
  });

  itNeeds(storiesNeed, "writes coherent English with stories260K", async () => {
    const result = await runCli(["generate", "--model", stories, "--prompt", "Once upon a time", "--max-new-tokens", "60", "--temperature", "0"], env());
    expect(result.code).toBe(0);
    const words = [" the ", " a ", " was ", " and ", " to ", " she ", " he ", " they ", " her "].filter((w) => result.stdout.includes(w));
    expect(words.length).toBeGreaterThanOrEqual(3);
  });
});

describe("finetune eval", () => {
  it("reports mean cross-entropy, perplexity and predicted positions, matching the reference", async () => {
    const text = "a b c a b c a b";
    const result = await runCli(["eval", "--model", tiny, "--text", text, "--json"], env());
    expect(result.code).toBe(0);
    const out = lastJson(result.stdout) as { loss: number; perplexity: number; tokens: number };
    const ids = (lastJson((await runCli(["generate", "--model", tiny, "--prompt", text, "--max-new-tokens", "1", "--json"], env())).stdout).prompt_ids as number[]);
    expect(out.tokens).toBe(ids.length - 1);
    expect(out.loss).toBeCloseTo(referenceMeanLoss(tiny, ids), 4);
    expect(out.perplexity).toBeCloseTo(Math.exp(out.loss), 3);
  });

  it("reads .txt and JSONL files as train does (records end with EOS) and splits long inputs into context windows", async () => {
    const long = Array.from({ length: 70 }, (_, i) => "abc"[i % 3]).join(" ");
    writeFileSync(join(tmp.path, "long.txt"), long);
    writeFileSync(join(tmp.path, "data.jsonl"), `${JSON.stringify({ text: "a b" })}\n${JSON.stringify({ text: "c a b" })}\n`);
    const txt = lastJson((await runCli(["eval", "--model", tiny, "--data", join(tmp.path, "long.txt"), "--json"], env())).stdout);
    // one paragraph: <s> + one id per character (139) + </s> = 141 ids, in windows of 128: 127 + 12 predicted positions
    expect(txt.tokens).toBe(139);
    const jsonl = lastJson((await runCli(["eval", "--model", tiny, "--data", join(tmp.path, "data.jsonl"), "--json"], env())).stdout);
    // "a b" → <s> a ␣ b </s> (4 predicted), "c a b" → 6 predicted
    expect(jsonl.tokens).toBe(4 + 6);
    writeFileSync(join(tmp.path, "bad.jsonl"), '{"text": "a"}\n{"txt": "b"}\n');
    const bad = await runCli(["eval", "--model", tiny, "--data", join(tmp.path, "bad.jsonl")], env());
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('bad.jsonl:2: missing field "text" (format text); it has "txt"; if one of them holds it, rename it to "text" in the file.');
    // Checked before the model is even looked for.
    const early = await runCli(["eval", "--model", join(tmp.path, "no-such-model"), "--data", join(tmp.path, "bad.jsonl")], env());
    expect(early.code).toBe(2);
    expect(early.stderr).toContain('bad.jsonl:2: missing field "text"');
  });

  /**
   * The loss train's data path implies for a file: `preview --json` gives every record's ids and trained-token mask
   * as training builds them, and the float64 reference model scores the masked positions.
   */
  async function trainPathLoss(file: string): Promise<{ loss: number; tokens: number }> {
    const recipe = join(tmp.path, `${file.replace(/\W/g, "_")}.yaml`);
    writeFileSync(recipe, `model: ${JSON.stringify(tiny)}\ndata:\n  train: ${JSON.stringify(join(tmp.path, file))}\n  validation: 0\ntrain:\n  max_steps: 1\noutput: run\n`);
    const preview = await runCli(["preview", recipe, "-n", "100", "--json"], env({ HF_HUB_OFFLINE: "1" }));
    expect(preview.code, preview.stderr).toBe(0);
    const { examples } = lastJson(preview.stdout) as { examples: Array<{ ids: number[]; mask: number[] }> };
    let sum = 0;
    let tokens = 0;
    for (const { ids, mask } of examples) {
      const logits = referenceLogits(tiny, ids);
      for (let t = 1; t < ids.length; t += 1) {
        if (mask[t] !== 1) continue;
        const row = Array.from(logits[t - 1] ?? new Float64Array());
        const max = Math.max(...row);
        sum += max + Math.log(row.reduce((acc, v) => acc + Math.exp(v - max), 0)) - (row[ids[t] ?? 0] ?? 0);
        tokens += 1;
      }
    }
    return { loss: sum / tokens, tokens };
  }

  it.each([
    ["a JSON array of prompt/completion records", "qa.json", JSON.stringify([{ prompt: "a b", completion: " c a" }, { prompt: "b", completion: " a b c" }], null, 2)],
    ["a CSV of alpaca records (a chat for this chat model)", "alpaca.csv", 'instruction,input,output\nsay a,,a b\n"say, b",c,b\n'],
    ["a chat JSONL", "chat.jsonl", [{ messages: [{ role: "user", content: "a b" }, { role: "assistant", content: "c" }, { role: "user", content: "b" }, { role: "assistant", content: "a c" }] }, { messages: [{ role: "system", content: "x" }, { role: "user", content: "y" }, { role: "assistant", content: "z b" }] }].map((r) => JSON.stringify(r)).join("\n")],
  ])("scores %s exactly as the training data path masks it", async (_what, file, content) => {
    writeFileSync(join(tmp.path, file), content);
    const result = await runCli(["eval", "--model", tiny, "--data", join(tmp.path, file), "--json"], env({ HF_HUB_OFFLINE: "1" }));
    expect(result.code, result.stderr).toBe(0);
    const out = lastJson(result.stdout) as { loss: number; tokens: number };
    const expected = await trainPathLoss(file);
    expect(out.tokens).toBe(expected.tokens);
    expect(out.loss).toBeCloseTo(expected.loss, 4);
  });

  itNeeds(storiesNeed, "stories260K has a low perplexity on a story", async () => {
    const result = await runCli(["eval", "--model", stories, "--text", "Once upon a time, there was a little girl named Lily. She loved to play outside.", "--json"], env());
    const out = lastJson(result.stdout) as { perplexity: number };
    expect(out.perplexity).toBeLessThan(8);
  });
});
