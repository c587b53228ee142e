import { describe, expect, it } from "vitest";
import { dataFileAsRecipe } from "../../../src/data/recipe-or-data.js";

describe("dataFileAsRecipe", () => {
  it("a data extension is enough, whatever the content", () => {
    expect(dataFileAsRecipe("/d/train.jsonl", '{"text": "a"}\n')).toBe(
      "/d/train.jsonl is a data file, not a recipe (its extension is .jsonl). A recipe is a YAML file naming the model and the data: " +
        "`finetune init --model <org/name> --data train.jsonl` writes one with data.train: train.jsonl, then run `finetune train recipe.yaml`.",
    );
    expect(dataFileAsRecipe("d/x.CSV", "a,b\n1,2\n")).toContain("(its extension is .csv)");
    expect(dataFileAsRecipe("x.parquet", null)).toContain("(its extension is .parquet)");
  });

  it("records by content: a JSON array of objects, JSON Lines, a single record with record fields", () => {
    expect(dataFileAsRecipe("r.json", '[{"prompt": "p", "completion": "c"}, {"prompt": "q", "completion": "d"}]')).toContain("(it is a JSON array of 2 records)");
    expect(dataFileAsRecipe("r.yaml", '{"text": "a"}\n{"text": "b"}\n')).toContain("(it holds JSON Lines, one record per line)");
    expect(dataFileAsRecipe("r.json", '{"messages": [], "id": 3}')).toContain('(it is a record with the field "messages")');
    expect(dataFileAsRecipe("r.json", '{\n  "version": 1,\n  "data": [\n    {"text": "a"}\n  ]\n}\n')).toContain('(it is a JSON object holding 1 record under "data")');
  });

  it("recipes, in YAML or JSON, pass", () => {
    expect(dataFileAsRecipe("r.yaml", "model: x/y\ndata:\n  train: t.jsonl\n")).toBeNull();
    expect(dataFileAsRecipe("r.json", '{"model": "x/y", "data": {"train": "t.jsonl"}}')).toBeNull();
    expect(dataFileAsRecipe("r.json", '{\n  "model": "x/y",\n  "data": {"train": "t.jsonl"}\n}\n')).toBeNull();
    expect(dataFileAsRecipe("r.yaml", "[1, 2]")).toBeNull();
    expect(dataFileAsRecipe("r.yaml", "")).toBeNull();
  });
});
