import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, lastJson, runCli, tempDir } from "../helpers/run-cli.js";
import { writeTinyCheckpoint } from "../helpers/tiny-checkpoint.js";

const tmp = tempDir();
const model = join(tmp.path, "model");
beforeAll(() => writeTinyCheckpoint(model, { kind: "llama", seed: 5 }));
afterAll(() => tmp.cleanup());
const env = () => cleanEnv({ HOME: tmp.path, HF_HUB_OFFLINE: "1" });

describe("a data file given where a recipe belongs", () => {
  const records = Array.from({ length: 300 }, (_, i) => JSON.stringify({ prompt: `q${i}`, completion: `a${i}` })).join("\n");

  it.each(["train", "recipe validate", "preview"])("finetune %s data.jsonl: one message saying so, exit 2", async (command) => {
    const file = join(tmp.path, "data.jsonl");
    writeFileSync(file, records);
    const result = await runCli([...command.split(" "), file], env());
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain(`${file} is a data file, not a recipe (its extension is .jsonl)`);
    expect(result.stderr).toContain("finetune init --model <org/name> --data data.jsonl");
  });

  it("a JSON array of records named .yaml is recognised by its content", async () => {
    const file = join(tmp.path, "records.yaml");
    writeFileSync(file, JSON.stringify([{ text: "a" }, { text: "b" }]));
    const result = await runCli(["train", file], env());
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("is a data file, not a recipe (it is a JSON array of 2 records)");
  });
});

describe("data that trains but should be looked at", () => {
  it("an empty text record and a 1-record validation set: train and preview warn, naming the count and what to do", async () => {
    writeFileSync(join(tmp.path, "three.jsonl"), ['{"text": "a b c"}', '{"text": ""}', '{"text": "c b a"}'].join("\n"));
    const recipe = join(tmp.path, "three.yaml");
    writeFileSync(recipe, `model: model\ndata:\n  train: three.jsonl\n  validation: 0.3\ntrain:\n  max_steps: 1\n  max_seq_len: 64\noutput: ${JSON.stringify(join(tmp.path, "run-three"))}\n`);
    const preview = await runCli(["preview", recipe], env());
    expect(preview.code, preview.stderr).toBe(0);
    expect(preview.stderr).toContain(`warning: 1 of 3 records has an empty text (${join(tmp.path, "three.jsonl")}:2)`);
    expect(preview.stderr).toContain("warning: data.validation: 0.3 holds out only 1 of 3 records, so the validation loss is noise");
    const train = await runCli(["train", recipe, "--json"], env());
    expect(train.code, train.stderr).toBe(0);
    const warnings = train.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { type: string; level?: string; message?: string })
      .filter((event) => event.type === "log" && event.level === "warn")
      .map((event) => event.message ?? "");
    expect(warnings.filter((message) => message.includes("has an empty text"))).toHaveLength(1);
    expect(warnings.filter((message) => message.includes("holds out only 1 of 3 records"))).toHaveLength(1);
    expect(lastJson(train.stdout).type).not.toBe("log");
  });
});
