import type { CommandContext } from "../context.js";
import { loadRecipe } from "../recipe/load.js";

/**
 * `finetune recipe validate <file>`: every problem at once — fields, cross-field rules, and local files that do not
 * exist — or a one-line OK. Loads no model and no data, and does not touch the network (hub ids pass as named).
 */
export async function run(context: CommandContext, args: string[], options: { set?: string[] }): Promise<void> {
  const { recipe, file } = await loadRecipe({ file: args[0] ?? "", sets: options.set, checkFiles: true });
  context.reporter.result({ valid: true, file, recipe }, (c) => `${c.green("✓")} ${file} is a valid recipe (model ${recipe.model.name}${recipe.model.quantize === "none" ? "" : ` stored as ${recipe.model.quantize}`}, output ${recipe.output})`);
}
