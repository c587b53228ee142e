import { statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, isAbsolute, relative, resolve, sep } from "node:path";
import { UserError } from "../errors.js";
import { parseRepoRef } from "../hub/repo-ref.js";
import { SUPPORTED_EXTENSIONS } from "../data/read-records.js";

export interface StarterPaths {
  /** The model as the recipe should say it: a hub id, or a folder relative to the recipe (absolute if typed so). */
  model: string;
  /** data.train as the recipe should say it. */
  data: string;
  /** Short name for the default run directory: the hub repo's name or the local folder's name. */
  slug: string;
  /** Local paths the user named that do not exist (yet), for a warning: the recipe key and the absolute path. */
  missing: Array<{ key: "model" | "data.train"; path: string }>;
}

const GLOB_CHARS = /[*?[{]/;

/**
 * `finetune init` takes paths as typed from the working directory, but the recipe loader resolves the model
 * folder and data paths against the recipe file's folder (src/recipe/load.ts); so they are rewritten relative to
 * where the recipe is written. Hub ids and hub datasets stay as they are. `output` needs no rewriting: it is
 * relative to the working directory.
 */
export function starterPaths(params: { model: string; data: string | undefined; recipeFile: string; cwd: string }): StarterPaths {
  const recipeDir = dirname(resolve(params.cwd, params.recipeFile));
  const missing: StarterPaths["missing"] = [];
  const relocate = (typed: string): string => {
    const expanded = typed.startsWith("~/") ? `${homedir()}${typed.slice(1)}` : typed;
    if (isAbsolute(expanded)) return expanded;
    const path = relative(recipeDir, resolve(params.cwd, expanded)).split(sep).join("/") || ".";
    // "./name" so a folder that is missing later is not mistaken for a hub id org/name.
    return path === "." || path.startsWith("../") ? path : `./${path}`;
  };

  let model: string;
  let slug: string;
  const modelPath = resolve(params.cwd, params.model.startsWith("~/") ? `${homedir()}${params.model.slice(1)}` : params.model);
  if (isDirectory(modelPath) || looksLikePath(params.model)) {
    if (!isDirectory(modelPath)) missing.push({ key: "model", path: modelPath });
    model = relocate(params.model);
    slug = basename(modelPath);
  } else {
    // A hub id: refused here, before anything is written, when it is not one.
    let ref;
    try {
      ref = parseRepoRef(params.model);
    } catch (error) {
      throw error instanceof UserError ? new UserError(`--model ${error.message.replace(/\.$/, "")}; nor is there a model folder ${modelPath}.`) : error;
    }
    model = params.model.trim();
    slug = ref.name.split("/").pop() ?? ref.name;
  }

  const typedData = params.data ?? "data/train.jsonl";
  let data = typedData;
  if (!isHubDataset(typedData, params.cwd)) {
    const dataPath = resolve(params.cwd, typedData);
    if (params.data !== undefined && !GLOB_CHARS.test(typedData) && !exists(dataPath)) missing.push({ key: "data.train", path: dataPath });
    data = relocate(typedData);
  }
  return { model, data, slug: slugOf(slug), missing };
}

function slugOf(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9.-]+/g, "-").replace(/^[-.]+|-+$/g, "") || "model";
}

function looksLikePath(value: string): boolean {
  return /^[.~/\\]/.test(value) || value.includes("\\") || value.split("/").length > 2;
}

/** The same reading as src/data/resolve-files.ts: an existing file, a glob or a path is local; org/name[/file] is a hub dataset. */
function isHubDataset(value: string, cwd: string): boolean {
  if (exists(resolve(cwd, value)) || GLOB_CHARS.test(value) || /^[.~/\\]/.test(value)) return false;
  const [org, name, ...path] = value.replace(/^datasets\//, "").split("/");
  if (org === undefined || name === undefined || org === "" || name === "" || isDirectory(resolve(cwd, org))) return false;
  if (path.length === 0 && SUPPORTED_EXTENSIONS.some((extension) => name.toLowerCase().endsWith(extension))) return false;
  return /^[A-Za-z0-9][\w.-]*$/.test(org) && /^[A-Za-z0-9][\w.-]*(@[^/]+)?$/.test(name);
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}
