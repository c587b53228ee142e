import { z } from "zod";
import type { CommandContext } from "../context.js";
import { recipeSchema } from "../recipe/schema.js";

/** `finetune recipe schema`: the recipe's JSON Schema, generated from the one zod schema, for editors. */
export async function run(context: CommandContext): Promise<void> {
  const schema = { title: "finetune recipe", ...z.toJSONSchema(recipeSchema, { io: "input" }) };
  context.reporter.stdout.write(`${JSON.stringify(schema, null, 2)}\n`);
}
