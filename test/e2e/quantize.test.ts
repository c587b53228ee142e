/**
 * The plumbing of model.quantize (issue #12): the recipe and --quantize flags, the refusal without the native addon,
 * recipe.resolved.yaml, the lock and reproduce, resume, and peak_rss_mb in metrics.jsonl. Numerics of the stored
 * formats are tested where the weights are loaded (the model and native tests), not here.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadNativeMatmul } from "../../src/backend/native-matmul.js";
import { filesOf, startHubServer, type HubServer } from "../helpers/hub-server.js";
import { describeNeeds, nativeAddon } from "../helpers/needs.js";
import { cleanEnv, lastJson, runCli, tempDir } from "../helpers/run-cli.js";
import { writeTinyCheckpoint } from "../helpers/tiny-checkpoint.js";

const tmp = tempDir();
let hub: HubServer;
const cache = join(tmp.path, "cache");
const env = (extra: Record<string, string> = {}) => cleanEnv({ HOME: join(tmp.path, "home"), HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache, ...extra });
const NO_ADDON = { FINETUNE_NATIVE: "0" };

beforeAll(async () => {
  const model = join(tmp.path, "src-llama");
  writeTinyCheckpoint(model, { kind: "llama", seed: 81 });
  hub = await startHubServer([{ name: "tiny/llama", commits: [{ files: filesOf(model) }] }]);
  writeFileSync(join(tmp.path, "t.jsonl"), ["a b c d e f", "g h i j k l", "m n o p q r"].map((text) => `${JSON.stringify({ text })}\n`).join(""));
});
afterAll(async () => {
  await hub.close();
  tmp.cleanup();
});

/** A recipe file in tmp with the given model: line(s); output under tmp/<name>/run. */
function recipe(name: string, model: string): { file: string; output: string } {
  const dir = join(tmp.path, name);
  mkdirSync(dir, { recursive: true });
  const output = join(dir, "run");
  const file = join(dir, "recipe.yaml");
  writeFileSync(file, `${model}\ndata:\n  train: ../t.jsonl\n  validation: ../t.jsonl\nlora:\n  r: 4\n  dropout: 0.0\ntrain:\n  max_steps: 4\n  batch_size: 3\n  lr: 2.0e-2\n  save_every: 2\n  eval_every: 2\n  max_seq_len: 64\noutput: ${output}\n`);
  return { file, output };
}

describe("--quantize", () => {
  it("takes none, bf16, int8 or nf4 on train, generate and eval; another value is exit 2 naming it and the choices", async () => {
    const { file } = recipe("bad-flag", "model: tiny/llama");
    for (const command of [["train", file], ["generate", "--model", "tiny/llama", "--prompt", "a"], ["eval", "--model", "tiny/llama", "--text", "a b"]]) {
      const result = await runCli([...command, "--quantize", "q4"], env());
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toContain("option '--quantize <format>' argument 'q4' is invalid. Allowed choices are none, bf16, int8, nf4.");
    }
    // Nothing was pulled: the flag is checked before anything else.
    expect(existsSync(cache)).toBe(false);
  });
});

describe("without the native addon", () => {
  it("refuses bf16/int8/nf4 from the recipe or a flag before anything is pulled, loaded or written, and says quantize: none works", async () => {
    const { file, output } = recipe("no-addon", "model:\n  name: tiny/llama\n  quantize: nf4");
    const fromRecipe = await runCli(["train", file], env(NO_ADDON));
    expect(fromRecipe.code, fromRecipe.stderr).toBe(2);
    expect(fromRecipe.stderr).toContain(
      "model.quantize: nf4 stores the base weights in the native addon's memory, but the addon is not available: disabled by FINETUNE_NATIVE=0. `quantize: none` (the default) works without it",
    );
    expect(fromRecipe.stderr).not.toMatch(/\n\s+at /);
    const plain = recipe("no-addon-flag", "model: tiny/llama");
    const fromFlag = await runCli(["train", plain.file, "--quantize", "int8"], env(NO_ADDON));
    expect(fromFlag.code).toBe(2);
    expect(fromFlag.stderr).toContain("--quantize int8 stores the base weights in the native addon's memory, but the addon is not available: disabled by FINETUNE_NATIVE=0. --quantize none (the default) works without it");
    for (const command of [["generate", "--model", "tiny/llama", "--prompt", "a"], ["eval", "--model", "tiny/llama", "--text", "a b"]]) {
      const result = await runCli([...command, "--quantize", "bf16"], env(NO_ADDON));
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toContain("--quantize bf16 stores the base weights in the native addon's memory, but the addon is not available: disabled by FINETUNE_NATIVE=0.");
    }
    expect(existsSync(output)).toBe(false);
    expect(existsSync(plain.output)).toBe(false);
    expect(existsSync(cache)).toBe(false);
    // none needs no addon.
    const none = await runCli(["generate", "--model", "tiny/llama", "--prompt", "a b", "--max-new-tokens", "2", "--quantize", "none", "--json"], env(NO_ADDON));
    expect(none.code, none.stderr).toBe(0);
  });

  it("an older lock without model.quantize reproduces as none, to the same adapter", async () => {
    const { file, output } = recipe("old-lock", "model: tiny/llama");
    const trained = await runCli(["train", file], env(NO_ADDON));
    expect(trained.code, trained.stderr).toBe(0);
    const lock = JSON.parse(readFileSync(join(output, "run.lock.json"), "utf8")) as { model: Record<string, unknown>; recipe: Record<string, unknown> };
    expect(lock.model.quantize).toBe("none");
    expect(lock.recipe.model).toEqual({ name: "tiny/llama", quantize: "none" });
    // As a lock written before the option: no model.quantize, the recipe's model a string.
    delete lock.model.quantize;
    lock.recipe.model = "tiny/llama";
    const old = join(output, "old.lock.json");
    writeFileSync(old, JSON.stringify(lock));
    const again = await runCli(["reproduce", old, "--output", join(tmp.path, "old-lock-again"), "--json"], env(NO_ADDON));
    expect(again.code, again.stderr).toBe(0);
    expect(lastJson(again.stdout)).toMatchObject({ match: true, quantize: "none" });
  });
});

const native = loadNativeMatmul();

describeNeeds(nativeAddon(native), "quantize with the native addon", () => {
  it("records the format in recipe.resolved.yaml and run.lock.json, reproduces with it, refuses another on --resume; metrics rows carry peak_rss_mb", async () => {
    const { file, output } = recipe("nf4", "model: tiny/llama");
    const trained = await runCli(["train", file, "--quantize", "nf4", "--max-steps", "2"], env());
    expect(trained.code, trained.stderr).toBe(0);
    expect(readFileSync(join(output, "recipe.resolved.yaml"), "utf8")).toContain("\nmodel:\n  name: tiny/llama\n  quantize: nf4\n");
    const lock = JSON.parse(readFileSync(join(output, "run.lock.json"), "utf8")) as { model: { quantize: string }; recipe: { model: unknown } };
    expect(lock.model.quantize).toBe("nf4");
    expect(lock.recipe.model).toEqual({ name: "tiny/llama", quantize: "nf4" });

    // Every row has the process's peak RSS in MB: a whole number, a peak (never falling), what a Node process takes.
    const rows = readFileSync(join(output, "metrics.jsonl"), "utf8").trim().split("\n").map((line) => JSON.parse(line) as { type: string; peak_rss_mb: number });
    expect(rows.map((row) => row.type)).toEqual(["train", "train", "eval"]);
    for (const row of rows) {
      expect(Number.isInteger(row.peak_rss_mb)).toBe(true);
      expect(row.peak_rss_mb).toBeGreaterThan(30);
      expect(row.peak_rss_mb).toBeLessThan(4096);
    }
    expect(rows.map((row) => row.peak_rss_mb)).toEqual([...rows.map((row) => row.peak_rss_mb)].sort((a, b) => a - b));

    // reproduce loads the weights in the lock's format (same format ⇒ same bytes).
    const again = await runCli(["reproduce", output, "--output", join(tmp.path, "nf4-again"), "--json"], env());
    expect(again.code, again.stderr).toBe(0);
    expect(lastJson(again.stdout)).toMatchObject({ match: true, quantize: "nf4" });
    const relock = JSON.parse(readFileSync(join(tmp.path, "nf4-again", "run.lock.json"), "utf8")) as { model: { quantize: string } };
    expect(relock.model.quantize).toBe("nf4");

    // Without the addon the run cannot be reproduced in its format: refused, saying so.
    const noAddon = await runCli(["reproduce", output, "--output", join(tmp.path, "nf4-no-addon")], env(NO_ADDON));
    expect(noAddon.code).toBe(2);
    expect(noAddon.stderr).toContain("run.lock.json model.quantize: nf4 stores the base weights in the native addon's memory, but the addon is not available: disabled by FINETUNE_NATIVE=0. Reproducing the run needs its format");
    expect(existsSync(join(tmp.path, "nf4-no-addon"))).toBe(false);

    // The model card says how the base was stored and shares the recipe with it.
    const card = join(tmp.path, "nf4-peft");
    const exported = await runCli(["export", output, "--format", "peft", "--out", card], env());
    expect(exported.code, exported.stderr).toBe(0);
    const text = readFileSync(join(card, "README.md"), "utf8");
    expect(text).toContain("| base weights while training | nf4 (the adapter applies to the original full-precision model) |");
    expect(text).toContain("\nmodel:\n  name: tiny/llama\n  quantize: nf4\n");

    // A resume must keep the format, flag or recipe alike; a longer run with the same format continues.
    const changed = await runCli(["train", join(output, "recipe.resolved.yaml"), "--resume", "--max-steps", "4", "--quantize", "none"], env());
    expect(changed.code).toBe(2);
    expect(changed.stderr).toContain('this value differs from the recipe the run started with');
    expect(changed.stderr).toContain('  model.quantize: "nf4" → "none"\n');
    const resumed = await runCli(["train", join(output, "recipe.resolved.yaml"), "--resume", "--max-steps", "4"], env());
    expect(resumed.code, resumed.stderr).toBe(0);
    const after = readFileSync(join(output, "metrics.jsonl"), "utf8").trim().split("\n").map((line) => JSON.parse(line) as { step: number; peak_rss_mb?: number });
    expect(after.map((row) => row.step)).toEqual([1, 2, 2, 3, 4, 4]);
    expect(after.every((row) => typeof row.peak_rss_mb === "number")).toBe(true);

  });

  it("generate and eval take --quantize", async () => {
    const generated = await runCli(["generate", "--model", "tiny/llama", "--prompt", "a b", "--max-new-tokens", "2", "--quantize", "int8", "--json"], env());
    expect(generated.code, generated.stderr).toBe(0);
    const scored = await runCli(["eval", "--model", "tiny/llama", "--text", "a b c d", "--quantize", "bf16", "--json"], env());
    expect(scored.code, scored.stderr).toBe(0);
    // The loaded event names the format the weights were loaded as.
    expect(scored.stdout).toContain('"quantize":"bf16"');
  });
});
