import { describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { parseRecipe } from "../../../src/recipe/load.js";
import { closest } from "../../../src/recipe/suggest.js";

const base = "model: org/name\ndata:\n  train: d.jsonl\ntrain:\n  max_steps: 10\n  lr: 2.0e-4\noutput: runs/x\n";

describe("parseRecipe", () => {
  it("fills defaults from the schema", () => {
    const r = parseRecipe(base, "r.yaml", [], {});
    expect(r.lora).toEqual({ r: 8, alpha: 16, dropout: 0.05, target_modules: ["q_proj", "v_proj"], layers: "all", rslora: false });
    expect(r.train).toMatchObject({ max_steps: 10, batch_size: 4, grad_accum: 1, lr: 2e-4, schedule: "cosine", completion_only: true, seed: 42 });
    expect(r.data).toEqual({ train: "d.jsonl", validation: 0.05, format: "auto", fields: {} });
  });

  it("applies one precedence: flag > --set > YAML > default", () => {
    const r = parseRecipe(base, "r.yaml", ["train.lr=1e-3", "train.max_steps=20", "output=runs/set", "lora.target_modules=[q_proj,k_proj]"], { output: "runs/flag" });
    expect(r.train.lr).toBe(1e-3);
    expect(r.train.max_steps).toBe(20);
    expect(r.output).toBe("runs/flag");
    expect(r.lora.target_modules).toEqual(["q_proj", "k_proj"]);
    const flagged = parseRecipe(base.replace("max_steps: 10", "epochs: 2"), "r.yaml", ["train.max_steps=20"], { maxSteps: 5 });
    expect(flagged.train).toMatchObject({ max_steps: 5 });
    expect(flagged.train.epochs).toBeUndefined();
  });

  it("reports every problem at once with line numbers and suggestions", () => {
    const text = "model: org/name\ndata:\n  train: d.jsonl\n  validaton: 0.1\nlora:\n  r: 0\ntrain:\n  max_steps: 10\n  epochs: 2\n  schedul: cosine\noutput: runs/x\n";
    let message = "";
    try {
      parseRecipe(text, "r.yaml", [], {});
    } catch (error) {
      expect(error).toBeInstanceOf(UserError);
      message = (error as Error).message;
    }
    expect(message).toContain("r.yaml has 3 problems");
    expect(message).toContain('data.validaton: unknown key; did you mean "validation"? (line 4)');
    expect(message).toContain("lora.r: r must be > 0 (line 6)");
    expect(message).toContain('train.schedul: unknown key; did you mean "schedule"? (line 10)');
    // cross-field rules run only when the fields themselves are valid, so this one shows up after fixing the rest
    expect(() => parseRecipe(text.replace("  validaton: 0.1\n", "").replace("  r: 0\n", "  r: 4\n").replace("  schedul: cosine\n", ""), "r.yaml", [], {})).toThrow(
      "train.max_steps: give train.max_steps or train.epochs, not both (line 7)",
    );
  });

  it("reports YAML syntax errors with line and column, and bad --set syntax", () => {
    expect(() => parseRecipe("model: [a\n", "r.yaml", [], {})).toThrow(/r\.yaml:\d+:\d+:/);
    expect(() => parseRecipe(base, "r.yaml", ["train.lr"], {})).toThrow("write key.path=value");
    expect(() => parseRecipe("- a\n- b\n", "r.yaml", [], {})).toThrow("a recipe is a YAML mapping");
  });

  it("suggests close names only", () => {
    expect(closest("max_step", ["max_steps", "epochs"])).toBe("max_steps");
    expect(closest("lerning_rate", ["lr", "seed"])).toBeNull();
  });
});
