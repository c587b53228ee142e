import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { starterPaths } from "../../../src/recipe/starter-paths.js";
import { tempDir } from "../../helpers/run-cli.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const cwd = tmp.path;
mkdirSync(join(cwd, "models", "Qwen2.5-0.5B"), { recursive: true });
mkdirSync(join(cwd, "data"), { recursive: true });
writeFileSync(join(cwd, "data", "a.jsonl"), "");

describe("starterPaths (finetune init)", () => {
  it("keeps hub ids and hub datasets, and names the run after the repo", () => {
    expect(starterPaths({ model: "HuggingFaceTB/SmolLM2-135M@main", data: "org/ds", recipeFile: "sub/r.yaml", cwd })).toEqual({
      model: "HuggingFaceTB/SmolLM2-135M@main",
      data: "org/ds",
      slug: "smollm2-135m",
      missing: [],
    });
    expect(starterPaths({ model: "org/m", data: "org/ds/train.csv", recipeFile: "r.yaml", cwd }).data).toBe("org/ds/train.csv");
  });

  it("rewrites local paths typed from the working directory relative to the recipe's folder", () => {
    const deep = starterPaths({ model: "models/Qwen2.5-0.5B", data: "data/a.jsonl", recipeFile: "recipes/x/r.yaml", cwd });
    expect(deep).toEqual({ model: "../../models/Qwen2.5-0.5B", data: "../../data/a.jsonl", slug: "qwen2.5-0.5b", missing: [] });
    const here = starterPaths({ model: "./models/Qwen2.5-0.5B", data: "data/*.jsonl", recipeFile: "r.yaml", cwd });
    expect(here).toMatchObject({ model: "./models/Qwen2.5-0.5B", data: "./data/*.jsonl" });
    // A folder the user typed as an absolute path stays absolute.
    const absolute = join(cwd, "models", "Qwen2.5-0.5B");
    expect(starterPaths({ model: absolute, data: undefined, recipeFile: join(cwd, "deep", "r.yaml"), cwd })).toMatchObject({ model: absolute, data: "../data/train.jsonl", missing: [] });
  });

  it("lists named paths that do not exist, and refuses what is neither a hub id nor a folder", () => {
    expect(starterPaths({ model: "./later", data: "new.jsonl", recipeFile: "r.yaml", cwd }).missing).toEqual([
      { key: "model", path: join(cwd, "later") },
      { key: "data.train", path: join(cwd, "new.jsonl") },
    ]);
    expect(() => starterPaths({ model: "a b/c", data: undefined, recipeFile: "r.yaml", cwd })).toThrow(UserError);
  });
});
