import { rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { CommandContext } from "../context.js";
import { errnoCode, UserError } from "../errors.js";
import { checkOutputPath, checkPathLength, makeDirs, removeCreated, shortPath } from "../io/output-path.js";
import { parseRecipe } from "../recipe/load.js";
import { starterPaths } from "../recipe/starter-paths.js";
import { starterRecipe, type StarterFormat } from "../recipe/starter.js";

interface InitOptions {
  model: string;
  format?: StarterFormat;
  data?: string;
  out?: string;
  force?: boolean;
}

/** `finetune init --model <id | folder>`: writes a fully commented starter recipe (never over an existing file without --force). */
export async function run(context: CommandContext, _args: string[], options: InitOptions): Promise<void> {
  const file = options.out ?? "recipe.yaml";
  const out = resolve(file);
  checkPathLength(out, { flag: "--out" });
  const paths = starterPaths({ model: options.model, data: options.data, recipeFile: file, cwd: process.cwd() });
  // Given data, its records decide the format (as train detects it); the placeholder data/train.jsonl is chat.
  const format = options.format ?? (options.data === undefined ? "chat" : "auto");
  const text = starterRecipe({ model: paths.model, format, data: paths.data, output: `runs/${paths.slug}${format === "auto" ? "" : `-${format}`}`, file });
  parseRecipe(text, out, [], {}); // the starter must always be valid
  if (await stat(out).then((s) => s.isDirectory(), () => false)) throw new UserError(`--out ${shortPath(out)} is a folder; give a file name, e.g. --out ${shortPath(join(file, "recipe.yaml"))}.`);
  await checkOutputPath({ path: out, flag: "--out", kind: "file" });
  const created = await makeDirs({ path: dirname(out), flag: "--out" });
  try {
    await writeFile(out, text, { flag: options.force ? "w" : "wx" });
  } catch (error) {
    await removeCreated(created);
    const code = errnoCode(error);
    if (code === "EEXIST") throw new UserError(`${shortPath(out)} exists; choose another --out or add --force to replace it.`);
    // Without --force the file is ours (flag "wx" created it): a full disk must not leave a truncated recipe behind.
    if (code !== undefined && !options.force) await rm(out, { force: true });
    if (code !== undefined) throw new UserError(`cannot write ${shortPath(out)} (${code}); choose another --out.`);
    throw error;
  }
  for (const { key, path } of paths.missing) context.reporter.warn(`${key}: ${shortPath(path)} does not exist yet; the recipe expects it there.`);
  const next = options.data === undefined ? `put your training data in data/train.jsonl (or edit data.train in ${file}), then: ` : "next: ";
  context.reporter.result({ recipe: out, model: paths.model, data: paths.data }, () => `wrote ${out}; ${next}npx finetune train ${file}`);
}
