import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, lastJson, runCli, tempDir } from "../helpers/run-cli.js";
import { writeTinyCheckpoint } from "../helpers/tiny-checkpoint.js";

const tmp = tempDir();
const model = join(tmp.path, "model");
beforeAll(() => writeTinyCheckpoint(model, { kind: "llama", seed: 81 }));
afterAll(() => tmp.cleanup());
const env = () => cleanEnv({ HOME: tmp.path, HF_HUB_OFFLINE: "1" });

describe("recipe tools", () => {
  it("init writes a valid, commented starter and never overwrites", async () => {
    const out = join(tmp.path, "starter.yaml");
    const result = await runCli(["init", "--model", "HuggingFaceTB/SmolLM2-135M-Instruct", "--format", "alpaca", "--out", out], env());
    expect(result.code).toBe(0);
    const text = readFileSync(out, "utf8");
    expect(text).toContain(`npx finetune train ${out}`);
    expect(text).toContain("format: alpaca");
    expect((await runCli(["recipe", "validate", out], env())).code).toBe(0);
    writeFileSync(out, "mine");
    const again = await runCli(["init", "--model", "x/y", "--out", out], env());
    expect(again.code).toBe(2);
    expect(readFileSync(out, "utf8")).toBe("mine");
  });

  it("recipe schema prints a JSON Schema with every field and its description", async () => {
    const result = await runCli(["recipe", "schema"], env());
    const schema = JSON.parse(result.stdout) as { properties: Record<string, { properties?: Record<string, { description?: string }> }> };
    expect(Object.keys(schema.properties)).toEqual(["model", "data", "lora", "train", "output"]);
    expect(schema.properties.train?.properties?.max_seq_len?.description).toContain("truncated");
    expect(Object.keys(schema.properties.lora?.properties ?? {})).toEqual(["r", "alpha", "dropout", "target_modules", "layers", "rslora"]);
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
