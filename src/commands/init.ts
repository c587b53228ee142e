import { writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { CommandContext } from "../context.js";
import { errnoCode, UserError } from "../errors.js";
import { parseRepoRef } from "../hub/repo-ref.js";
import { parseRecipe } from "../recipe/load.js";
import { starterRecipe } from "../recipe/starter.js";

interface InitOptions {
  model: string;
  format: "chat" | "alpaca" | "text" | "completion";
  data?: string;
  out?: string;
  force?: boolean;
}

/** `finetune init --model <id>`: writes a fully commented starter recipe (never over an existing file without --force). */
export async function run(context: CommandContext, _args: string[], options: InitOptions): Promise<void> {
  const name = options.model.includes("/") && !options.model.startsWith(".") ? parseRepoRef(options.model).name.split("/").pop() ?? "model" : "model";
  const slug = name.toLowerCase().replace(/[^a-z0-9.-]+/g, "-");
  const out = resolve(options.out ?? "recipe.yaml");
  const text = starterRecipe({ model: options.model, format: options.format, data: options.data ?? "data/train.jsonl", output: `runs/${slug}-${options.format}`, file: options.out ?? "recipe.yaml" });
  parseRecipe(text, out, [], {}); // the starter must always be valid
  try {
    await writeFile(out, text, { flag: options.force ? "w" : "wx" });
  } catch (error) {
    if (errnoCode(error) === "EEXIST") throw new UserError(`${out} exists; choose another --out or add --force to replace it.`);
    throw error;
  }
  context.reporter.result({ recipe: out }, () => `wrote ${out}; edit data.train, then: npx finetune train ${options.out ?? "recipe.yaml"}`);
}
