import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, lastJson, runCli, tempDir } from "../helpers/run-cli.js";
import { writeTinyCheckpoint } from "../helpers/tiny-checkpoint.js";

const tmp = tempDir();
const model = join(tmp.path, "model");
beforeAll(() => writeTinyCheckpoint(model, { kind: "llama", seed: 81 }));
afterAll(() => tmp.cleanup());
const env = (extra: Record<string, string> = {}) => cleanEnv({ HOME: tmp.path, HF_HUB_OFFLINE: "1", ...extra });

describe("recipe tools", () => {
  it("init writes a valid, commented starter and never overwrites", async () => {
    const out = join(tmp.path, "starter.yaml");
    const data = join(tmp.path, "alpaca.jsonl");
    const result = await runCli(["init", "--model", "HuggingFaceTB/SmolLM2-135M-Instruct", "--format", "alpaca", "--data", data, "--out", out], env());
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(`warning: data.train: ${data} does not exist yet`);
    const text = readFileSync(out, "utf8");
    expect(text).toContain(`npx finetune train ${out}`);
    expect(text).toContain("format: alpaca");
    const missing = await runCli(["recipe", "validate", out], env());
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`data.train: no such file "${data}"`);
    writeFileSync(data, `${JSON.stringify({ instruction: "a", output: "b" })}\n`);
    expect((await runCli(["recipe", "validate", out], env())).code).toBe(0);
    writeFileSync(out, "mine");
    const again = await runCli(["init", "--model", "x/y", "--out", out], env());
    expect(again.code).toBe(2);
    expect(readFileSync(out, "utf8")).toBe("mine");
  });

  it("init takes a local model folder (absolute or relative) and writes paths that are right from the recipe's folder", async () => {
    const work = join(tmp.path, "init-work");
    const named = join(work, "models", "Tiny-Llama_v2");
    writeTinyCheckpoint(named, { kind: "llama", seed: 81 });
    mkdirSync(join(work, "data"), { recursive: true });
    writeFileSync(join(work, "data", "chat.jsonl"), `${JSON.stringify({ messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "yo" }] })}\n`);
    for (const [model, written] of [[named, named], ["models/Tiny-Llama_v2", "../models/Tiny-Llama_v2"]] as const) {
      rmSync(join(work, "sub"), { recursive: true, force: true });
      const result = await runCli(["init", "--model", model, "--data", "data/chat.jsonl", "--out", "sub/r.yaml"], env(), { cwd: work });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).not.toContain("edit data.train");
      expect(result.stdout).toContain("npx finetune train sub/r.yaml");
      const text = readFileSync(join(work, "sub", "r.yaml"), "utf8");
      expect(text).toContain(`\nmodel: ${written}\n`);
      expect(text).toContain("\n  train: ../data/chat.jsonl\n");
      // The default run directory is named after the folder, not "model"; given data, its records decide the format.
      expect(text).toContain("\noutput: runs/tiny-llama-v2\n");
      expect(text).toContain("\n  format: auto\n");
      // The recipe really works from where it was written: preview loads the model's tokenizer and the data.
      const preview = await runCli(["preview", "sub/r.yaml", "--json"], env(), { cwd: work });
      expect(preview.code, preview.stderr).toBe(0);
      expect((lastJson(preview.stdout) as { format: string }).format).toBe("chat");
    }
    // Without --data the placeholder is named, and the user is told to fill it in.
    const placeholder = await runCli(["init", "--model", named, "--out", "sub/p.yaml"], env(), { cwd: work });
    expect(placeholder.stdout).toContain("put your training data in data/train.jsonl (or edit data.train in sub/p.yaml)");
    expect(readFileSync(join(work, "sub", "p.yaml"), "utf8")).toContain("\n  format: chat\n");
    // Plain text records given with --data train as text (a chat default refused them).
    writeFileSync(join(work, "data", "text.jsonl"), `${JSON.stringify({ text: "a b c" })}\n${JSON.stringify({ text: "d e f" })}\n`);
    expect((await runCli(["init", "--model", named, "--data", "data/text.jsonl", "--out", "sub/t.yaml"], env(), { cwd: work })).code).toBe(0);
    const textPreview = await runCli(["preview", "sub/t.yaml", "--json"], env(), { cwd: work });
    expect(textPreview.code, textPreview.stderr).toBe(0);
    expect((lastJson(textPreview.stdout) as { format: string }).format).toBe("text");
    expect(readFileSync(join(work, "sub", "p.yaml"), "utf8")).toContain("\n  train: ../data/train.jsonl\n");
    // A name that is neither a hub id nor a folder is refused, naming both readings; nothing is written.
    const neither = await runCli(["init", "--model", "no such/x", "--out", "sub/n.yaml"], env(), { cwd: work });
    expect(neither.code).toBe(2);
    expect(neither.stderr).toContain(`nor is there a model folder ${join(work, "no such", "x")}`);
    expect(existsSync(join(work, "sub", "n.yaml"))).toBe(false);
    // A folder as --out (even with --force) and an unwritable place are exit-2 errors, not crashes.
    for (const args of [["--out", "sub", "--force"], ["--out", "/proc/no/r.yaml"]]) {
      const bad = await runCli(["init", "--model", named, ...args], env(), { cwd: work });
      expect(bad.code, bad.stderr).toBe(2);
      expect(bad.stderr).not.toContain("this is a bug");
    }
    expect(existsSync(join(work, "sub", "r.yaml"))).toBe(true);
  });

  it("recipe schema prints a JSON Schema with every field and its description", async () => {
    const result = await runCli(["recipe", "schema"], env());
    const schema = JSON.parse(result.stdout) as { properties: Record<string, { properties?: Record<string, { description?: string }> }> };
    expect(Object.keys(schema.properties)).toEqual(["model", "data", "lora", "train", "output"]);
    expect(schema.properties.train?.properties?.max_seq_len?.description).toContain("truncated");
    expect(Object.keys(schema.properties.lora?.properties ?? {})).toEqual(["r", "alpha", "dropout", "target_modules", "layers", "rslora"]);
    // model: a string, or a mapping {name, quantize} whose quantize lists the storage formats (default none).
    const model = (JSON.parse(result.stdout) as { properties: { model: { anyOf: Array<Record<string, any>> } } }).properties.model;
    expect(model.anyOf.map((form) => form.type)).toEqual(["string", "object"]);
    expect(model.anyOf[1]).toMatchObject({ required: ["name"], additionalProperties: false, properties: { name: { type: "string" }, quantize: { enum: ["none", "bf16", "int8", "nf4"], default: "none" } } });
    expect(model.anyOf[1]?.properties.quantize.description).toContain("native addon");
    // The cross-field rules, as JSON Schema can say them: train is needed, with max_steps or epochs, and one warmup.
    const full = JSON.parse(result.stdout) as { allOf?: unknown; properties: { train?: { allOf?: unknown } } };
    expect(full.allOf).toEqual([
      { required: ["train"] },
      { if: { properties: { train: { properties: { early_stopping_patience: { type: "integer" } }, required: ["early_stopping_patience"] } }, required: ["train"] }, then: { properties: { data: { properties: { validation: { not: { const: 0 } } } } } } },
    ]);
    expect(full.properties.train?.allOf).toEqual([{ oneOf: [{ required: ["max_steps"] }, { required: ["epochs"] }] }, { not: { required: ["warmup_steps", "warmup_ratio"] } }]);
  });

  it("recipe validate reports missing files and folders with every other problem, in one pass", async () => {
    const dir = join(tmp.path, "validate");
    mkdirSync(join(dir, "data"), { recursive: true });
    mkdirSync(join(dir, "empty-folder"), { recursive: true });
    writeFileSync(join(dir, "data", "a.jsonl"), `${JSON.stringify({ text: "a b" })}\n`);
    const recipe = join(dir, "r.yaml");
    writeFileSync(recipe, "model: ./no-model\ndata:\n  train: [data/a.jsonl, data/gone.jsonl, 'data/*.csv']\n  validation: val.jsonl\ntrain:\n  max_steps: 5\n  epochs: 1\n  lr: -1\noutput: run\n");
    const bad = await runCli(["recipe", "validate", recipe], env());
    expect(bad.code).toBe(2);
    expect(bad.stdout).not.toContain("✓");
    const lines = bad.stderr.trim().split("\n");
    expect(lines[0]).toBe(`error: ${recipe} has 6 problems:`);
    expect(lines.slice(1)).toEqual([
      "  train.lr: lr must be > 0 (line 8)",
      "  train.max_steps: give train.max_steps or train.epochs, not both (line 6)",
      `  model: model folder ${join(dir, "no-model")} does not exist (relative to ${dir}); give an existing folder or a hub id like org/name (line 1)`,
      `  data.train.1: no such file "data/gone.jsonl" (relative to ${dir}); give a file, a glob like data/*.jsonl, or a hub dataset org/name[/file] (line 3)`,
      `  data.train.2: no file matches "data/*.csv" in ${join(dir, "data")}; check the pattern and the folder (relative to ${dir}) (line 3)`,
      `  data.validation: no such file "val.jsonl" (relative to ${dir}); give a file, a glob like data/*.jsonl, or a hub dataset org/name[/file] (line 4)`,
    ]);
    // A folder that is not a model, then a hub id and a hub dataset (never checked over the network) are fine.
    writeFileSync(recipe, "model: empty-folder\ndata:\n  train: data/a.jsonl\ntrain:\n  max_steps: 5\noutput: run\n");
    expect((await runCli(["recipe", "validate", recipe], env())).stderr).toContain(`model: model folder ${join(dir, "empty-folder")} has no config.json`);
    // A hub-shaped name whose first part is a local folder is most likely a missing local model.
    writeFileSync(recipe, "model: data/model\ndata:\n  train: data/a.jsonl\ntrain:\n  max_steps: 5\noutput: run\n");
    expect((await runCli(["recipe", "validate", recipe], env())).stderr).toContain(`model: "data/model" is read as a hub id, but ${join(dir, "data")} is a local folder without model; if you meant a local model, no folder ${join(dir, "data", "model")} exists (line 1)`);
    writeFileSync(recipe, "model: org/name\ndata:\n  train: [data/a.jsonl, org/dataset]\ntrain:\n  max_steps: 5\noutput: run\n");
    const ok = await runCli(["recipe", "validate", recipe], env({ HF_ENDPOINT: "http://127.0.0.1:9" }));
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`✓ ${recipe} is a valid recipe`);
    writeFileSync(recipe, `model: ${model}\ndata:\n  train: data/*.jsonl\ntrain:\n  epochs: 1\noutput: run\n`);
    expect((await runCli(["recipe", "validate", recipe], env())).code).toBe(0);
  });

  it("preview shows the trained tokens: --json gives ids and mask, the text marks the answer", async () => {
    writeFileSync(join(tmp.path, "chat.jsonl"), `${JSON.stringify({ messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "yo" }] })}\n`);
    writeFileSync(join(tmp.path, "r.yaml"), `model: model\ndata:\n  train: chat.jsonl\n  validation: 0\ntrain:\n  max_steps: 1\noutput: run\n`);
    const json = await runCli(["preview", join(tmp.path, "r.yaml"), "--json"], env());
    expect(json.code, json.stderr).toBe(0);
    const out = lastJson(json.stdout) as { format: string; examples: Array<{ ids: number[]; mask: number[] }> };
    expect(out.format).toBe("chat");
    const [example] = out.examples;
    expect(example?.mask).toHaveLength(example?.ids.length ?? -1);
    expect(example?.mask[0]).toBe(0);
    expect(example?.mask.filter((m) => m === 1).length).toBeGreaterThan(0);
    const text = await runCli(["preview", join(tmp.path, "r.yaml")], env());
    expect(text.stdout).toMatch(/\[\[yo.*\]\]/s);
  });
});
