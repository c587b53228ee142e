import { describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { parseRecipe, parseYamlText } from "../../../src/recipe/load.js";
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
    // Cross-field rules are checked in the same pass as the fields themselves.
    expect(message).toContain("r.yaml has 4 problems");
    expect(message).toContain('data.validaton: unknown key; did you mean "validation"? (line 4)');
    expect(message).toContain("lora.r: r must be > 0 (line 6)");
    expect(message).toContain('train.schedul: unknown key; did you mean "schedule"? (line 10)');
    expect(message).toContain("train.max_steps: give train.max_steps or train.epochs, not both (line 8)");
    const twice = "model: org/name\ndata:\n  train: d.jsonl\ntrain:\n  epochs: 1\n  warmup_steps: 3\n  warmup_ratio: 0.1\n  lr: -1\noutput: runs/x\n";
    expect(() => parseRecipe(twice, "r.yaml", [], {})).toThrow("r.yaml has 2 problems:\n  train.lr: lr must be > 0 (line 8)\n  train.warmup_steps: give train.warmup_steps or train.warmup_ratio, not both (line 6)");
    // Neither given (no train: at all) is a problem too, next to a wrong type elsewhere.
    expect(() => parseRecipe("model: org/name\ndata:\n  train: 3\noutput: runs/x\n", "r.yaml", [], {})).toThrow(
      /has 2 problems:\n  data\.train: must be a file.*\n  train\.max_steps: give train\.max_steps or train\.epochs$/,
    );
  });

  it("refuses early stopping without validation data, in the same pass", () => {
    const text = base.replace("  lr: 2.0e-4\n", "  lr: 0\n  early_stopping_patience: 2\n").replace("  train: d.jsonl\n", "  train: d.jsonl\n  validation: 0\n");
    expect(() => parseRecipe(text, "r.yaml", [], {})).toThrow(
      "r.yaml has 2 problems:\n  train.lr: lr must be > 0 (line 7)\n  train.early_stopping_patience: early stopping watches the validation loss, but data.validation is 0; give a validation fraction or file, or set early_stopping_patience: null (line 8)",
    );
    expect(parseRecipe(text.replace("lr: 0", "lr: 1"), "r.yaml", ["data.validation=0.1"], {}).train.early_stopping_patience).toBe(2);
  });

  it("turns hostile YAML into exit-2 errors naming the file or flag (attacks)", () => {
    const laughs = ["a: &a [x, x, x, x, x, x, x, x, x]", ...["b", "c", "d", "e", "f", "g"].map((name, i) => `${name}: &${name} [${Array.from({ length: 9 }, () => `*${"abcdefg"[i]}`).join(", ")}]`)].join("\n");
    const attempt = (run: () => unknown): UserError => {
      try {
        run();
      } catch (error) {
        expect(error).toBeInstanceOf(UserError);
        return error as UserError;
      }
      throw new Error("no error");
    };
    expect(attempt(() => parseRecipe(`${base}${laughs}\n`, "bomb.yaml", [], {})).message).toBe(
      "bomb.yaml: its YAML aliases (*name) expand to too much data, as in an alias bomb; a recipe never needs that many — write the values out.",
    );
    expect(attempt(() => parseRecipe(base, "r.yaml", ["train.lr=[unclosed"], {})).message).toContain("--set train.lr is not valid YAML: Flow sequence must end with a ]");
    expect(attempt(() => parseRecipe(base, "r.yaml", ["train.lr=*a"], {})).message).toContain("--set train.lr is not valid YAML: Unresolved alias");
    expect(attempt(() => parseRecipe(base, "r.yaml", ["train.lr='x"], {})).message).toContain("--set train.lr is not valid YAML");
    // A self-referencing alias never ends: refused by name; a few honest aliases are fine.
    expect(attempt(() => parseRecipe(base.replace("model: org/name", "model: &m [*m]"), "r.yaml", [], {})).message).toBe(
      "r.yaml: a YAML alias (*name) refers to a collection that contains it, which never ends; write the values out.",
    );
    expect(attempt(() => parseYamlText("a: &x {b: *x}", "run/recipe.resolved.yaml")).message).toContain("run/recipe.resolved.yaml: a YAML alias");
    expect(parseRecipe(`${base}lora:\n  target_modules: &t [q_proj, v_proj]\n`, "r.yaml", ["data.fields={prompt: &p q, completion: *p}"], {}).data.fields).toEqual({ prompt: "q", completion: "q" });
    // Other YAML text (a run's recipe.resolved.yaml) is parsed as safely.
    expect(attempt(() => parseYamlText("output: [\u0000", "run/recipe.resolved.yaml")).message).toMatch(/^run\/recipe\.resolved\.yaml is not valid YAML: /);
    expect(attempt(() => parseYamlText(laughs, "run/recipe.resolved.yaml")).message).toContain("alias bomb");
  });

  it("reports YAML syntax errors with line and column, and bad --set syntax", () => {
    expect(() => parseRecipe("model: [a\n", "r.yaml", [], {})).toThrow(/r\.yaml:\d+:\d+:/);
    expect(() => parseRecipe(base, "r.yaml", ["train.lr"], {})).toThrow("write key.path=value");
    expect(() => parseRecipe("- a\n- b\n", "r.yaml", [], {})).toThrow("a recipe is a YAML mapping");
  });

  it("takes model as a string or as {name, quantize}; both parse to one shape", () => {
    expect(parseRecipe(base, "r.yaml", [], {}).model).toEqual({ name: "org/name", quantize: "none" });
    const mapping = base.replace("model: org/name", "model:\n  name: org/name@v2\n  quantize: nf4");
    expect(parseRecipe(mapping, "r.yaml", [], {}).model).toEqual({ name: "org/name@v2", quantize: "nf4" });
    expect(parseRecipe(base.replace("model: org/name", "model: {name: ./local}"), "r.yaml", [], {}).model).toEqual({ name: "./local", quantize: "none" });
  });

  it("reports problems inside the mapping form by dot path and line, with the other problems", () => {
    const text = "data:\n  train: d.jsonl\nmodel:\n  name: org/name\n  quantize: fp8\n  quantise: nf4\ntrain:\n  max_steps: 10\n  lr: -1\noutput: runs/x\n";
    expect(() => parseRecipe(text, "r.yaml", [], {})).toThrow(
      'r.yaml has 3 problems:\n  model.quantize: must be one of none, bf16, int8, nf4 (line 5)\n  model.quantise: unknown key; did you mean "quantize"? (line 6)\n  train.lr: lr must be > 0 (line 9)',
    );
    expect(() => parseRecipe(base.replace("model: org/name", "model:\n  quantize: nf4"), "r.yaml", [], {})).toThrow("  model.name: model is required: a hub id org/name[@revision] or a local folder (line 2)");
    expect(() => parseRecipe(base.replace("model: org/name", "model: 5"), "r.yaml", [], {})).toThrow(
      "  model: must be a hub id org/name[@revision] or a local folder (a string), or a mapping {name: …, quantize: none|bf16|int8|nf4} (line 1)",
    );
    expect(() => parseRecipe(base.replace("model: org/name\n", ""), "r.yaml", [], {})).toThrow("  model: model is required: a hub id org/name[@revision] or a local folder");
  });

  it("--set model.quantize and --quantize work on a string-form model, keeping its name and line", () => {
    expect(parseRecipe(base, "r.yaml", ["model.quantize=nf4"], {}).model).toEqual({ name: "org/name", quantize: "nf4" });
    expect(parseRecipe(base, "r.yaml", ["model.name=other/model"], {}).model).toEqual({ name: "other/model", quantize: "none" });
    // The flag wins over --set and the file, as every flag does.
    const mapping = base.replace("model: org/name", "model: {name: org/name, quantize: bf16}");
    expect(parseRecipe(mapping, "r.yaml", ["model.quantize=int8"], { quantize: "nf4" }).model).toEqual({ name: "org/name", quantize: "nf4" });
    expect(parseRecipe(base, "r.yaml", [], { quantize: "int8" }).model).toEqual({ name: "org/name", quantize: "int8" });
    expect(() => parseRecipe(base, "r.yaml", ["model.quantize=q4"], {})).toThrow("  model.quantize: must be one of none, bf16, int8, nf4 (from --set model.quantize)");
    // A problem with the name keeps the line of the string it came from.
    expect(() => parseRecipe(base.replace("model: org/name", "model: ''"), "r.yaml", ["model.quantize=nf4"], {})).toThrow("  model.name: model is required: a hub id org/name[@revision] or a local folder (line 1)");
  });

  it("suggests close names only", () => {
    expect(closest("max_step", ["max_steps", "epochs"])).toBe("max_steps");
    expect(closest("lerning_rate", ["lr", "seed"])).toBeNull();
  });
});
