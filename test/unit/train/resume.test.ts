import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { UserError } from "../../../src/errors.js";
import { recipeSchema, type Recipe } from "../../../src/recipe/schema.js";
import type { TrainState } from "../../../src/train/checkpoint.js";
import { formatDifference, recipeDifferences } from "../../../src/train/recipe-diff.js";
import { checkResume, type ResumeCheck } from "../../../src/train/resume.js";
import { averageLabel, recentAverage } from "../../../src/train/loss-average.js";

const recipe = (train: Record<string, unknown>): Recipe =>
  recipeSchema.parse({ model: "tiny/llama", data: { train: "t.jsonl", validation: 0 }, train: { max_seq_len: 64, lr: 0.01, warmup_steps: 2, ...train }, output: "/runs/a" });
const yaml = (r: Recipe) => `# header\n${stringify(r)}`;
const state = (step: number, totalSteps: number, stopReason: TrainState["stopReason"] = null): TrainState => ({ step, totalSteps, epoch: 0, index: 0, optimizerSteps: step, bestValLoss: null, evalsWithoutImprovement: 0, elapsed: 1, stopReason });

const DATA = [{ path: "../t.jsonl", sha256: "a".repeat(64) }];

function check(saved: Recipe | null, now: Recipe, point: { step: number; total: number; stop?: TrainState["stopReason"] }, totalSteps: number, completed = false, data = DATA): ReturnType<typeof checkResume> {
  const params: ResumeCheck = {
    savedPath: "/runs/a/recipe.resolved.yaml",
    savedText: saved === null ? null : yaml(saved),
    recipe: now,
    resolvedYaml: yaml(now),
    point: { step: point.step, dir: `/runs/a/checkpoints/step-${point.step}`, state: state(point.step, point.total, point.stop ?? null), data: DATA },
    data,
    totalSteps,
    completed,
    runDir: "/runs/a",
  };
  return checkResume(params);
}
const failure = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    return (error as Error).message;
  }
  throw new Error("expected a UserError");
};

describe("recipeDifferences", () => {
  it("lists every differing leaf by dot path, old → new, including added and removed keys", () => {
    const diffs = recipeDifferences({ train: { lr: 0.01, epochs: 3, seed: 1 }, lora: { target_modules: ["q", "v"] } }, { train: { lr: 0.5, max_steps: 40, seed: 1 }, lora: { target_modules: ["q"] } });
    expect(diffs.map(formatDifference)).toEqual(['lora.target_modules: ["q","v"] → ["q"]', "train.epochs: 3 → (not set)", "train.lr: 0.01 → 0.5", "train.max_steps: (not set) → 40"]);
    expect(recipeDifferences({ a: { b: [1, 2] } }, { a: { b: [1, 2] } })).toEqual([]);
  });
});

describe("checkResume", () => {
  it("continues the same recipe silently, and ignores how the output folder was typed", () => {
    expect(check(recipe({ max_steps: 12 }), recipe({ max_steps: 12 }), { step: 8, total: 12 }, 12)).toEqual({ notice: null });
    expect(check(recipe({ max_steps: 12 }), { ...recipe({ max_steps: 12 }), output: "a" }, { step: 8, total: 12 }, 12)).toEqual({ notice: null });
  });

  it("names each changed value with its old and new value, and says what to do", () => {
    const message = failure(() => check(recipe({ max_steps: 12 }), recipe({ max_steps: 20, lr: 0.5, seed: 3 }), { step: 8, total: 12 }, 20));
    expect(message).toContain("these 2 values differ from the recipe the run started with (/runs/a/recipe.resolved.yaml):\n  train.lr: 0.01 → 0.5\n  train.seed: 42 → 3\n");
    expect(message).not.toContain("train.max_steps:");
    expect(message).toContain("start a new run with them using --output");
  });

  it("refuses another storage format for the base weights, and takes a run recorded before model: had a mapping form", () => {
    const nf4 = { ...recipe({ max_steps: 12 }), model: { name: "tiny/llama", quantize: "nf4" as const } };
    expect(failure(() => check(recipe({ max_steps: 12 }), nf4, { step: 8, total: 12 }, 12))).toContain(
      'this value differs from the recipe the run started with (/runs/a/recipe.resolved.yaml):\n  model.quantize: "none" → "nf4"\n',
    );
    // An older recipe.resolved.yaml says model: tiny/llama: the same run as {name: tiny/llama, quantize: none}.
    const older = yaml(recipe({ max_steps: 12 })).replace(/model:\n  name: tiny\/llama\n  quantize: none\n/, "model: tiny/llama\n");
    expect(older).toContain("\nmodel: tiny/llama\n");
    const now = recipe({ max_steps: 12 });
    const params = { savedPath: "/runs/a/recipe.resolved.yaml", recipe: now, resolvedYaml: yaml(now), point: { step: 8, dir: "/runs/a/checkpoints/step-8", state: state(8, 12), data: DATA }, data: DATA, totalSteps: 12, completed: false, runDir: "/runs/a" };
    expect(checkResume({ ...params, savedText: older })).toEqual({ notice: null });
    expect(failure(() => checkResume({ ...params, savedText: older, recipe: nf4, resolvedYaml: yaml(nf4) }))).toContain('  model.quantize: "none" → "nf4"\n');
  });

  it("refuses data that changed under the run, naming each file", () => {
    const now = [{ path: "../t.jsonl", sha256: "b".repeat(64) }, { path: "../more.jsonl", sha256: "c".repeat(64) }];
    expect(failure(() => check(recipe({ max_steps: 12 }), recipe({ max_steps: 12 }), { step: 8, total: 12 }, 12, false, now))).toBe(
      "--resume: the training data is not what the run trained on up to step 8 (as /runs/a/checkpoints/step-8/state.json records it):\n" +
        "  ../t.jsonl: sha256 aaaaaaaaaaaa… → bbbbbbbbbbbb… (changed)\n  ../more.jsonl: new (the run did not read it)\n" +
        "A resume continues the same run on the same data. Restore the files, or start a new run on the new data with --output <new folder>.",
    );
    expect(failure(() => check(recipe({ max_steps: 12 }), recipe({ max_steps: 12 }), { step: 8, total: 12 }, 12, false, []))).toContain("  ../t.jsonl: no longer read (the run trained on it)\n");
  });

  it("refuses to shorten a run, naming the length change", () => {
    expect(failure(() => check(recipe({ max_steps: 12 }), recipe({ max_steps: 10 }), { step: 8, total: 12 }, 10))).toContain("this value differs from the recipe the run started with (/runs/a/recipe.resolved.yaml):\n  train.max_steps: 12 → 10\n");
  });

  it("extends a run: the notice gives the re-planned learning rate of the next step and the old plan's", () => {
    const { notice } = check(recipe({ max_steps: 12 }), recipe({ max_steps: 16 }), { step: 12, total: 12, stop: "max_steps" }, 16, true);
    // cosine, warmup 2: lr(13) = 0.01·½(1+cos(π·10/14)) for 16 steps, 0.01·½(1+cos(π·10/10)) ≈ 0 for 12.
    const planned16 = 0.005 * (1 + Math.cos((Math.PI * 10) / 14));
    expect(notice).toBe(
      `extending the run from 12 to 16 steps: steps 1–12 stay exactly as trained. From step 13 the cosine schedule is re-planned for 16 steps: lr ${planned16.toExponential(3)} at step 13 (the 12-step plan would have given ${(0).toExponential(3)}), so the result differs from a run planned for 16 steps from the start.`,
    );
    // epochs → --max-steps is a length change too (the flag replaces epochs)
    expect(check(recipe({ epochs: 2 }), recipe({ max_steps: 30 }), { step: 4, total: 20 }, 30).notice).toContain("extending the run from 20 to 30 steps");
  });

  it("says a finished run is finished instead of training again", () => {
    expect(failure(() => check(recipe({ max_steps: 12 }), recipe({ max_steps: 12 }), { step: 12, total: 12, stop: "max_steps" }, 12, true))).toBe(
      "--resume: the run in /runs/a already finished all 12 steps (/runs/a/checkpoints/step-12 is its final checkpoint, adapter/ its result); nothing to resume. To train it longer, resume with --max-steps above 12 (or more train.epochs).",
    );
    expect(failure(() => check(recipe({ max_steps: 12 }), recipe({ max_steps: 20 }), { step: 9, total: 12, stop: "early_stopping" }, 20, true))).toContain("early stopping ended it at step 9");
    // killed after the final checkpoint but before the adapter: resuming only writes what is missing
    expect(check(recipe({ max_steps: 12 }), recipe({ max_steps: 12 }), { step: 12, total: 12, stop: "max_steps" }, 12, false)).toEqual({ notice: null });
  });

  it("refuses a missing or garbled recipe.resolved.yaml instead of skipping the check", () => {
    expect(failure(() => check(null, recipe({ max_steps: 12 }), { step: 8, total: 12 }, 12))).toContain("/runs/a/recipe.resolved.yaml is missing; it records the recipe the run started with");
    const garbled: ResumeCheck = { savedPath: "/r.yaml", savedText: "a: [1\nb: {", recipe: recipe({ max_steps: 12 }), resolvedYaml: yaml(recipe({ max_steps: 12 })), point: { step: 8, dir: "/d", state: state(8, 12), data: DATA }, data: DATA, totalSteps: 12, completed: false, runDir: "/runs/a" };
    expect(failure(() => checkResume(garbled))).toMatch(/^--resume: \/r\.yaml is not valid YAML: /);
    expect(failure(() => checkResume({ ...garbled, savedText: "42\n" }))).toBe("--resume: /r.yaml does not hold a recipe (a YAML mapping); restore it, or start a new run with --output.");
    const laughs = `a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n`;
    expect(failure(() => checkResume({ ...garbled, savedText: laughs }))).toMatch(/^--resume: \/r\.yaml: its YAML aliases \(\*name\) expand to too much data, as in an alias bomb/);
  });
});

describe("recentAverage", () => {
  it("averages the last 20 losses (fewer at the start) and labels them with the count", () => {
    expect(recentAverage([])).toBeNull();
    expect(recentAverage([2, 4])).toEqual({ value: 3, steps: 2 });
    const losses = Array.from({ length: 30 }, (_, i) => i);
    expect(recentAverage(losses)).toEqual({ value: (10 + 29) / 2, steps: 20 });
    expect(averageLabel(1)).toBe("loss (avg 1 step)");
    expect(averageLabel(20)).toBe("loss (avg 20 steps)");
  });
});
