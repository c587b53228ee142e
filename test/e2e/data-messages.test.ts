import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cleanEnv, runCli, tempDir } from "../helpers/run-cli.js";

const tmp = tempDir();
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
