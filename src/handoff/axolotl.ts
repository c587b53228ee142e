import { stringify } from "yaml";
import type { ExampleKind } from "./dataset-convert.js";
import type { HandoffPlan } from "./mapping.js";
import { AXOLOTL_VERSION } from "./versions.js";

export const TRAIN_FILE = "data/train.jsonl";
export const VALIDATION_FILE = "data/validation.jsonl";

/** One `datasets:` / `test_datasets:` entry for a converted file. */
export function axolotlDataset(path: string, kind: ExampleKind, completionOnly: boolean): Record<string, unknown> {
  const entry: Record<string, unknown> = { path, ds_type: "json", split: "train" };
  if (kind === "text") return { ...entry, type: "completion", field: "text" };
  if (kind === "completion") return { ...entry, type: "input_output" };
  return {
    ...entry,
    type: "chat_template",
    chat_template: "tokenizer_default",
    field_messages: "messages",
    message_property_mappings: { role: "role", content: "content" },
    roles_to_train: completionOnly ? ["assistant"] : ["system", "user", "assistant", "tool"],
    train_on_eos: "turn",
  };
}

/** axolotl.yaml: a header saying what wrote it and how to run it, then the config. */
export function axolotlYaml(params: { plan: HandoffPlan; kind: ExampleKind; completionOnly: boolean; hasValidation: boolean; recipeFile: string }): string {
  const { plan } = params;
  const config: Record<string, unknown> = {
    ...pick(plan.axolotl, ["base_model", "revision_of_model"]),
    datasets: [axolotlDataset(TRAIN_FILE, params.kind, params.completionOnly)],
    ...(params.hasValidation ? { test_datasets: [axolotlDataset(VALIDATION_FILE, params.kind, params.completionOnly)] } : {}),
    dataset_prepared_path: "./prepared",
    ...plan.axolotl,
  };
  const header = [
    `# Written by \`finetune export-recipe ${params.recipeFile} --to axolotl\` for Axolotl ${AXOLOTL_VERSION}.`,
    "# Field names checked against axolotl-ai-cloud/axolotl v0.18.0 (src/axolotl/utils/schemas/*.py).",
    "# Run: accelerate launch -m axolotl.cli.train axolotl.yaml   (or: axolotl train axolotl.yaml)",
    "# See README.md for the mapping of every recipe option and what was reported.",
    "",
  ].join("\n");
  return header + stringify(config, { lineWidth: 0 });
}

function pick(source: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((key) => key in source).map((key) => [key, source[key]]));
}
