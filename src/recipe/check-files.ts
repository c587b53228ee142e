import { stat } from "node:fs/promises";
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { resolveDataFiles } from "../data/resolve-files.js";
import { UserError } from "../errors.js";
import { parseRepoRef } from "../hub/repo-ref.js";
import type { Problem } from "./load.js";

/**
 * The recipe's local files, checked without the network for `recipe validate`: every data file or glob entry
 * (hub datasets pass as named) and a local model folder with its config.json (a hub id passes as named).
 * Values of the wrong type are left to the schema's own problems.
 */
export async function fileProblems(raw: unknown, baseDir: string, at: (path: Array<string | number>) => string): Promise<Problem[]> {
  const problems: Problem[] = [];
  const recipe = isRecord(raw) ? raw : {};
  // The model's name, in either form (model: x or model: {name: x}).
  const named: [unknown, string[]] = isRecord(recipe.model) ? [recipe.model.name, ["model", "name"]] : [recipe.model, ["model"]];
  const [model, modelPath] = named;
  if (typeof model === "string" && model !== "") {
    const message = await modelProblem(model, baseDir);
    if (message) problems.push({ path: modelPath.join("."), message: message.replace(/\.$/, ""), where: at(modelPath) });
  }
  const data = isRecord(recipe.data) ? recipe.data : {};
  for (const key of ["train", "validation"] as const) {
    const value = data[key];
    const entries: Array<[string, Array<string | number>]> =
      typeof value === "string" ? [[value, ["data", key]]] : Array.isArray(value) ? value.flatMap((entry, i) => (typeof entry === "string" ? [[entry, ["data", key, i]] as [string, Array<string | number>]] : [])) : [];
    for (const [entry, path] of entries) {
      if (entry === "") continue;
      try {
        await resolveDataFiles(entry, { baseDir, env: {}, localOnly: true });
      } catch (error) {
        if (!(error instanceof UserError)) throw error;
        problems.push({ path: path.join("."), message: error.message.replace(/\.$/, ""), where: at(path) });
      }
    }
  }
  return problems;
}

/** Read as src/hub/model-source.ts reads it: an existing folder, else a path-like value is a missing folder, else a hub id. */
async function modelProblem(model: string, baseDir: string): Promise<string | null> {
  const expanded = model.startsWith("~/") ? `${homedir()}${model.slice(1)}` : model;
  const path = isAbsolute(expanded) ? expanded : resolve(baseDir, expanded);
  const info = await stat(path).catch(() => null);
  if (info?.isDirectory()) {
    const hasConfig = await stat(join(path, "config.json")).then((s) => s.isFile(), () => false);
    return hasConfig ? null : `model folder ${path} has no config.json; give the folder of a downloaded model (config.json, tokenizer, *.safetensors).`;
  }
  if (info) return `${path} is a file; give a model folder or a hub id like org/name.`;
  const looksLikePath = /^[.~/\\]/.test(model) || model.includes("\\") || model.split("/").length > 2;
  if (looksLikePath) return `model folder ${path} does not exist (relative to ${baseDir}); give an existing folder or a hub id like org/name.`;
  try {
    parseRepoRef(model);
    // org/name where ./org is a local folder: most likely a local model that is not there.
    const org = model.split("/")[0] ?? "";
    if (model.includes("/") && (await stat(resolve(baseDir, org)).then((s) => s.isDirectory(), () => false))) {
      return `"${model}" is read as a hub id, but ${resolve(baseDir, org)} is a local folder without ${model.slice(org.length + 1)}; if you meant a local model, no folder ${path} exists.`;
    }
    return null;
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    return `${error.message.replace(/\.$/, "")}; nor is there a model folder ${path}.`;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
