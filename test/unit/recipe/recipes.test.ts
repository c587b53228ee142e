import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { loadRecipe } from "../../../src/recipe/load.js";
import { ROOT } from "../../helpers/run-cli.js";

const dir = join(ROOT, "recipes");
const files = readdirSync(dir).filter((f) => f.endsWith(".yaml"));

describe("shipped recipes", () => {
  it("include the quickstart and the SmolLM2, Qwen2.5, Qwen3, Gemma 3 and GPT-2 recipes", () => {
    expect(files).toEqual(expect.arrayContaining(["quickstart.yaml", "smollm2-135m-chat.yaml", "qwen2.5-0.5b-chat.yaml", "qwen3-0.6b-chat.yaml", "gemma-3-270m-chat.yaml", "gpt2-text.yaml"]));
  });

  it.each(files)("%s is valid, says how to run it, comments every key, and its data exists", async (file) => {
    const path = join(dir, file);
    const { recipe } = await loadRecipe({ file: path });
    const text = readFileSync(path, "utf8");
    expect(text.split("\n")[0]).toMatch(/^# /);
    expect(text).toContain(`npx finetune train recipes/${file}`);
    const lines = text.split("\n");
    lines.forEach((line, i) => {
      if (!/^\s*[a-z_]+:/.test(line)) return;
      const previous = lines[i - 1] ?? "";
      expect(previous.trim().startsWith("#") || line.includes(" # "), `${file}:${i + 1} "${line.trim()}" has no comment`).toBe(true);
    });
    const train = Array.isArray(recipe.data.train) ? recipe.data.train : [recipe.data.train];
    for (const entry of train) expect(existsSync(resolve(dirname(path), entry)), entry).toBe(true);
  });
});
