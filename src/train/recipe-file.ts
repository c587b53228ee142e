import { readFile } from "node:fs/promises";
import { errnoCode, UserError } from "../errors.js";

/** A run's recipe.resolved.yaml, or null when it does not exist; unreadable is an error naming the file. */
export async function readRecipeResolved(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    const code = errnoCode(error);
    if (code === "ENOENT") return null;
    throw new UserError(`cannot read ${path} (${code ?? String(error)}); make it readable and resume again.`);
  }
}
