import { z } from "zod";
import { describe, expect, it } from "vitest";
import { parseRecipe } from "../../../src/recipe/load.js";
import { recipeSchema } from "../../../src/recipe/schema.js";

type Schema = Record<string, unknown>;

/**
 * Just the JSON Schema keywords the cross-field rules use (allOf, oneOf, not, if/then, required, properties,
 * const, type integer), evaluated as the 2020-12 spec defines them — so the printed schema is checked for what it
 * means, not only for its shape.
 */
function holds(schema: Schema, value: unknown): boolean {
  const object = typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  const all = (key: string) => (schema[key] as Schema[] | undefined) ?? [];
  if (schema.type === "integer" && !Number.isInteger(value)) return false;
  if ("const" in schema && value !== schema.const) return false;
  if (object && Array.isArray(schema.required) && !schema.required.every((key: string) => key in object)) return false;
  if (object && schema.properties) {
    for (const [key, sub] of Object.entries(schema.properties as Record<string, Schema>)) if (key in object && !holds(sub, object[key])) return false;
  }
  if (!all("allOf").every((sub) => holds(sub, value))) return false;
  if ("oneOf" in schema && all("oneOf").filter((sub) => holds(sub, value)).length !== 1) return false;
  if (schema.not && holds(schema.not as Schema, value)) return false;
  if (schema.if && schema.then && holds(schema.if as Schema, value) && !holds(schema.then as Schema, value)) return false;
  return true;
}

const json = z.toJSONSchema(recipeSchema, { io: "input" }) as unknown as Schema & { properties: { train: Schema } };
// Only the rules: the recipe's top-level allOf and train's allOf.
const rules: Schema = { allOf: [{ allOf: json.allOf }, { properties: { train: { allOf: json.properties.train.allOf } } }] };

const recipe = (train: Record<string, unknown> | undefined, validation?: number) => ({
  model: "org/name",
  data: { train: "d.jsonl", ...(validation === undefined ? {} : { validation }) },
  ...(train === undefined ? {} : { train }),
  output: "runs/x",
});

describe("cross-field rules: the JSON Schema says what the loader checks", () => {
  it.each([
    ["max_steps only", recipe({ max_steps: 3 }), true],
    ["epochs only", recipe({ epochs: 2 }), true],
    ["both", recipe({ max_steps: 3, epochs: 2 }), false],
    ["neither", recipe({ lr: 0.1 }), false],
    ["no train at all", recipe(undefined), false],
    ["both warmups", recipe({ max_steps: 3, warmup_steps: 2, warmup_ratio: 0.1 }), false],
    ["one warmup", recipe({ max_steps: 3, warmup_ratio: 0.1 }), true],
    ["early stopping without validation", recipe({ max_steps: 3, early_stopping_patience: 2 }, 0), false],
    ["early stopping with validation", recipe({ max_steps: 3, early_stopping_patience: 2 }, 0.1), true],
    ["early stopping off without validation", recipe({ max_steps: 3, early_stopping_patience: null }, 0), true],
  ])("%s", (_name, value, valid) => {
    expect(holds(rules, value)).toBe(valid);
    const loads = () => parseRecipe(JSON.stringify(value), "r.yaml", [], {});
    if (valid) expect(loads).not.toThrow();
    else expect(loads).toThrow(/train\.(max_steps|warmup_steps|early_stopping_patience): /);
  });
});
