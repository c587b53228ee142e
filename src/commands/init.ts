import { mkdir, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { CommandContext } from "../context.js";
import { errnoCode, UserError } from "../errors.js";
import { parseRecipe } from "../recipe/load.js";
import { starterPaths } from "../recipe/starter-paths.js";
import { starterRecipe } from "../recipe/starter.js";

interface InitOptions {
  model: string;
  format: "chat" | "alpaca" | "text" | "completion";
  data?: string;
  out?: string;
  force?: boolean;
}

/** `finetune init --model <id | folder>`: writes a fully commented starter recipe (never over an existing file without --force). */
export async function run(context: CommandContext, _args: string[], options: InitOptions): Promise<void> {
  const file = options.out ?? "recipe.yaml";
  const out = resolve(file);
  const paths = starterPaths({ model: options.model, data: options.data, recipeFile: file, cwd: process.cwd() });
  const text = starterRecipe({ model: paths.model, format: options.format, data: paths.data, output: `runs/${paths.slug}-${options.format}`, file });
  parseRecipe(text, out, [], {}); // the starter must always be valid
  // A new subfolder for the recipe is created, as the user asked for a file there.
  await mkdir(dirname(out), { recursive: true });
  try {
    await writeFile(out, text, { flag: options.force ? "w" : "wx" });
  } catch (error) {
    if (errnoCode(error) === "EEXIST") throw new UserError(`${out} exists; choose another --out or add --force to replace it.`);
    throw error;
  }
  for (const { key, path } of paths.missing) context.reporter.warn(`${key}: ${path} does not exist yet; the recipe expects it there.`);
  const next = options.data === undefined ? `put your training data in data/train.jsonl (or edit data.train in ${file}), then: ` : "next: ";
  context.reporter.result({ recipe: out, model: paths.model, data: paths.data }, () => `wrote ${out}; ${next}npx finetune train ${file}`);
}
