import { z } from "zod";
import { QUANTIZE_CHOICES, type Quantize } from "../model/quantize.js";

/**
 * The recipe: the single source of every field, its default and its description. `finetune recipe schema`
 * prints it as JSON Schema for editors; `finetune init` and the shipped recipes follow it.
 */
const positiveInt = (what: string) => z.number({ error: `${what} must be a number` }).int(`${what} must be a whole number`).positive(`${what} must be > 0`);

export const dataSchema = z.strictObject({
  train: z
    .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
    .describe("Training data: a file (.jsonl, .json, .csv, .parquet, .txt), a glob, or a hub dataset: org/name (its train split, by the Hub's file naming) or org/name/file. Relative to the recipe file."),
  validation: z
    .union([z.number().min(0, "a fraction must be ≥ 0").max(0.5, "a fraction must be ≤ 0.5 (use a file for more)"), z.string().min(1)])
    .default(0.05)
    .describe("Held-out fraction of train (0 = no validation), or a file/glob like train (a hub dataset org/name gives its validation split)."),
  format: z.enum(["auto", "text", "alpaca", "chat", "completion"]).default("auto").describe("Record format; auto detects it from the fields."),
  fields: z.record(z.string(), z.string()).default({}).describe("Field renames, e.g. {prompt: question, completion: answer}: our name → the dataset's name."),
});

export const loraSchema = z.strictObject({
  r: positiveInt("r").default(8).describe("LoRA rank."),
  alpha: z.number().positive("alpha must be > 0").default(16).describe("LoRA alpha; scale = alpha / r (alpha / √r with rslora)."),
  dropout: z.number().min(0, "dropout must be ≥ 0").lt(1, "dropout must be < 1").default(0.05).describe("Dropout on the LoRA input during training."),
  target_modules: z
    .union([z.literal("all-linear"), z.array(z.string().min(1)).min(1, "list at least one module")])
    .default(["q_proj", "v_proj"])
    .describe('Module names to adapt (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj; GPT-2: c_attn, c_proj, c_fc), or "all-linear".'),
  layers: z
    .union([z.literal("all"), z.array(z.number().int().nonnegative()).min(1, "list at least one layer")])
    .default("all")
    .describe('Layer indices to adapt, or "all".'),
  rslora: z.boolean().default(false).describe("Rank-stabilised LoRA: scale by alpha / √r."),
});

/**
 * Rules across fields of one section, beside the fields they constrain: the loader checks them (in the same pass
 * as every other problem) and `finetune recipe schema` writes them as JSON Schema (`oneOf` / `not` of `required`).
 */
export interface CrossFieldRule {
  section: "train";
  /** exactly-one: one of the keys must be given, not both; at-most-one: not both. */
  kind: "exactly-one" | "at-most-one";
  keys: readonly [string, string];
}

export const crossFieldRules: readonly CrossFieldRule[] = [
  { section: "train", kind: "exactly-one", keys: ["max_steps", "epochs"] },
  { section: "train", kind: "at-most-one", keys: ["warmup_steps", "warmup_ratio"] },
];

/** The JSON Schema of a section's rules. */
export function crossFieldJsonSchema(section: CrossFieldRule["section"]): Record<string, unknown> {
  return {
    allOf: crossFieldRules
      .filter((rule) => rule.section === section)
      .map((rule) => (rule.kind === "exactly-one" ? { oneOf: rule.keys.map((key) => ({ required: [key] })) } : { not: { required: [...rule.keys] } })),
  };
}

/** JSON Schema for "train.early_stopping_patience is set" (the loader checks the same rule in code). */
const EARLY_STOPPING_ON = { properties: { train: { properties: { early_stopping_patience: { type: "integer" } }, required: ["early_stopping_patience"] } }, required: ["train"] };

export const trainSchema = z.strictObject({
  max_steps: positiveInt("max_steps").optional().describe("Optimizer steps to run (give this or epochs)."),
  epochs: z.number().positive("epochs must be > 0").optional().describe("Passes over the training data (give this or max_steps)."),
  batch_size: positiveInt("batch_size").default(4).describe("Sequences per micro-batch."),
  grad_accum: positiveInt("grad_accum").default(1).describe("Micro-batches per optimizer step."),
  lr: z.number({ error: "lr must be a number" }).positive("lr must be > 0").default(2e-4).describe("Peak learning rate."),
  schedule: z.enum(["cosine", "linear", "constant"]).default("cosine").describe("Learning-rate decay after warmup."),
  warmup_steps: z.number().int().nonnegative().optional().describe("Linear warmup steps (or warmup_ratio)."),
  warmup_ratio: z.number().min(0).lt(1).optional().describe("Warmup as a fraction of the total steps."),
  weight_decay: z.number().min(0, "weight_decay must be ≥ 0").default(0).describe("Decoupled (AdamW) weight decay."),
  max_grad_norm: z.number().positive("max_grad_norm must be > 0").nullable().default(1).describe("Global gradient-norm clip; null turns it off."),
  max_seq_len: positiveInt("max_seq_len").default(512).describe("Tokens per sequence; longer examples are truncated (and counted)."),
  completion_only: z.boolean().default(true).describe("Train only on completions / assistant turns."),
  packing: z.boolean().default(false).describe("Pack several examples per sequence (no attention across them)."),
  gradient_checkpointing: z
    .union([z.boolean(), z.literal("auto")])
    .default("auto")
    .describe('Recompute each layer in the backward pass instead of storing its activations: far less memory for ~30% more compute. "auto": only when the run would not fit comfortably otherwise.'),
  seed: z.number().int().default(42).describe("Seed for shuffling, the validation split, LoRA init and dropout."),
  eval_every: positiveInt("eval_every").default(50).describe("Evaluate on the validation set every N steps."),
  save_every: positiveInt("save_every").default(50).describe("Write a resumable checkpoint every N steps."),
  early_stopping_patience: positiveInt("early_stopping_patience").nullable().default(null).describe("Stop after N evaluations without a better validation loss; null turns it off."),
}).meta(crossFieldJsonSchema("train"));

const modelNameSchema = z
  .string({ error: "model is required: a hub id org/name[@revision] or a local folder" })
  .min(1, "model is required: a hub id org/name[@revision] or a local folder")
  .describe("Base model: hub id org/name[@revision] or a local folder (relative to the recipe).");

/** The base model after parsing, whichever form the recipe used. */
export interface ModelSpec {
  name: string;
  quantize: Quantize;
}

/**
 * `model: org/name` or `model: {name: org/name, quantize: nf4}`. Both parse to one shape, {name, quantize}, so the
 * rest of the code reads `recipe.model.name` and `recipe.model.quantize` and never asks which form was written.
 */
export const modelSchema = z
  .union([
    modelNameSchema,
    z.strictObject({
      name: modelNameSchema,
      quantize: z
        .enum(QUANTIZE_CHOICES)
        .default("none")
        .describe("How the frozen base weights are stored: none = float32 in the backend's memory (the wasm heap holds models up to ~0.5B parameters); bf16, int8, nf4 = in the native addon's memory (machine RAM), 2, ~1.06 and ~0.56 bytes a weight."),
    }),
  ])
  .transform((model): ModelSpec => (typeof model === "string" ? { name: model, quantize: "none" } : model))
  .describe("Base model: a hub id org/name[@revision] or a local folder (relative to the recipe), or {name: …, quantize: none|bf16|int8|nf4}.");

/** The keys of the mapping form of `model`. */
export const MODEL_KEYS = ["name", "quantize"] as const;

export const recipeSchema = z.strictObject({
  model: modelSchema,
  data: dataSchema,
  lora: loraSchema.default(loraSchema.parse({})),
  train: trainSchema.default(trainSchema.parse({})),
  output: z.string({ error: "output is required: the run directory, e.g. runs/my-run" }).min(1).describe("Run directory (relative to the working directory)."),
}).meta({
  allOf: [
    // train.max_steps or train.epochs must be given, so train must be.
    { required: ["train"] },
    // Early stopping watches the validation loss: with data.validation 0 it could never act.
    { if: EARLY_STOPPING_ON, then: { properties: { data: { properties: { validation: { not: { const: 0 } } } } } } },
  ],
});

export type Recipe = z.infer<typeof recipeSchema>;
