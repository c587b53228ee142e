import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { isMap, isScalar, LineCounter, parse as parseYamlValue, parseDocument, type Document } from "yaml";
import type { z } from "zod";
import { dataFileAsRecipe } from "../data/recipe-or-data.js";
import { errnoCode, UserError } from "../errors.js";
import { dataSchema, loraSchema, recipeSchema, trainSchema, type Recipe } from "./schema.js";
import { closest } from "./suggest.js";

/** Command-line values that override the file (highest precedence). */
export interface RecipeFlags {
  output?: string | undefined;
  maxSteps?: number | undefined;
}

export interface LoadedRecipe {
  recipe: Recipe;
  /** Absolute path of the recipe file. */
  file: string;
  /** The recipe's folder: data paths and a local model folder resolve against it. */
  baseDir: string;
}

interface Problem {
  path: string;
  message: string;
  where: string;
}

const KNOWN_KEYS: Record<string, readonly string[]> = {
  "": Object.keys(recipeSchema.shape),
  data: Object.keys(dataSchema.shape),
  lora: Object.keys(loraSchema.shape),
  train: Object.keys(trainSchema.shape),
};

/** Reads a recipe file, applies overrides, validates, and reports every problem at once. */
export async function loadRecipe(params: { file: string; sets?: string[]; flags?: RecipeFlags }): Promise<LoadedRecipe> {
  const file = resolve(params.file);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(await readFile(file));
  } catch (error) {
    if (errnoCode(error) === "ENOENT") throw new UserError(`recipe ${params.file} does not exist; \`finetune init --model <id>\` writes a starter.`);
    if (error instanceof TypeError) throw new UserError(dataFileAsRecipe(params.file, null) ?? `recipe ${params.file} is not UTF-8 text.`);
    throw error;
  }
  const asData = dataFileAsRecipe(params.file, text);
  if (asData !== null) throw new UserError(asData);
  return { recipe: parseRecipe(text, file, params.sets ?? [], params.flags ?? {}), file, baseDir: dirname(file) };
}

/** Parses and validates recipe text; exported for tests and `recipe validate`. */
export function parseRecipe(text: string, source: string, sets: string[], flags: RecipeFlags): Recipe {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    const lines = doc.errors.map((e) => {
      const { line, col } = lineCounter.linePos(e.pos[0]);
      return `  ${source}:${line}:${col}: ${e.message.split("\n")[0] ?? ""}`;
    });
    throw new UserError(`${source} is not valid YAML:\n${lines.join("\n")}`);
  }
  if (doc.contents !== null && !isMap(doc.contents)) throw new UserError(`${source}: a recipe is a YAML mapping (model:, data:, lora:, train:, output:).`);
  const overridden = applyOverrides(doc, sets, flags);
  const raw: unknown = doc.toJS() ?? {};
  const parsed = recipeSchema.safeParse(raw);
  const problems: Problem[] = parsed.success ? [] : parsed.error.issues.flatMap((issue) => describeIssue(issue, doc, lineCounter, overridden));
  if (parsed.success) problems.push(...crossFieldProblems(parsed.data, doc, lineCounter, overridden));
  if (problems.length > 0 || !parsed.success) {
    const lines = problems.map((p) => `  ${p.path}: ${p.message}${p.where}`);
    throw new UserError(`${source} has ${problems.length} problem${problems.length === 1 ? "" : "s"}:\n${lines.join("\n")}`);
  }
  return parsed.data;
}

/**
 * The one precedence function: flags > --set > YAML > schema defaults. Overrides are written into the YAML
 * document, so validation sees one merged recipe. Returns the overridden paths with their origin.
 */
function applyOverrides(doc: Document, sets: string[], flags: RecipeFlags): Map<string, string> {
  const origin = new Map<string, string>();
  const problems: string[] = [];
  for (const set of sets) {
    const eq = set.indexOf("=");
    const key = eq > 0 ? set.slice(0, eq).trim() : "";
    if (!/^[a-z_]+(\.[a-z_]+)*$/.test(key)) {
      problems.push(`--set ${JSON.stringify(set)}: write key.path=value, e.g. --set train.lr=1e-4`);
      continue;
    }
    const path = key.split(".");
    if (path.length > 1 && !isMap(doc.getIn(path.slice(0, -1), true)) && doc.hasIn(path.slice(0, -1))) {
      problems.push(`--set ${key}: ${path.slice(0, -1).join(".")} is not a mapping`);
      continue;
    }
    doc.setIn(path, doc.createNode(parseYamlValue(set.slice(eq + 1))));
    origin.set(key, `--set ${key}`);
  }
  if (problems.length > 0) throw new UserError(problems.join("\n"));
  if (flags.output !== undefined) {
    doc.setIn(["output"], flags.output);
    origin.set("output", "--output");
  }
  if (flags.maxSteps !== undefined) {
    if (doc.hasIn(["train"]) && !isMap(doc.getIn(["train"], true))) throw new UserError("--max-steps: train is not a mapping in the recipe; write train: with keys under it.");
    doc.setIn(["train", "max_steps"], flags.maxSteps);
    doc.deleteIn(["train", "epochs"]);
    origin.set("train.max_steps", "--max-steps");
  }
  return origin;
}

function describeIssue(issue: z.core.$ZodIssue, doc: Document, lines: LineCounter, overridden: Map<string, string>): Problem[] {
  const path = issue.path.map(String);
  if (issue.code === "unrecognized_keys") {
    const parent = path.join(".");
    return issue.keys.map((key) => {
      const suggestion = closest(key, KNOWN_KEYS[parent] ?? []);
      const full = parent ? `${parent}.${key}` : key;
      return {
        path: full,
        message: `unknown key${suggestion ? `; did you mean "${suggestion}"?` : `; known keys here: ${(KNOWN_KEYS[parent] ?? []).join(", ")}`}`,
        where: location(doc, lines, path, key, overridden.get(full)),
      };
    });
  }
  let message = issue.message;
  if (issue.code === "invalid_value" && "values" in issue) message = `must be one of ${issue.values.map(String).join(", ")}`;
  if (issue.code === "invalid_union") message = describeUnion(path.join("."));
  if (issue.code === "invalid_type" && issue.message.startsWith("Invalid input: expected") && doc.getIn(path) === undefined) message = "is required";
  const key = path.join(".");
  return [{ path: key || "(recipe)", message, where: location(doc, lines, path, undefined, overridden.get(key)) }];
}

function describeUnion(path: string): string {
  switch (path) {
    case "data.train":
      return "must be a file, a glob or a hub dataset (a string), or a list of them";
    case "data.validation":
      return "must be a fraction between 0 and 0.5, or a file path";
    case "lora.target_modules":
      return 'must be a list of module names, or "all-linear"';
    case "lora.layers":
      return 'must be a list of layer indices, or "all"';
    default:
      return "has the wrong type";
  }
}

function crossFieldProblems(recipe: Recipe, doc: Document, lines: LineCounter, overridden: Map<string, string>): Problem[] {
  const problems: Problem[] = [];
  const at = (path: string[]) => location(doc, lines, path, undefined, overridden.get(path.join(".")));
  const t = recipe.train;
  if ((t.max_steps === undefined) === (t.epochs === undefined)) {
    problems.push({ path: "train.max_steps", message: t.max_steps === undefined ? "give train.max_steps or train.epochs" : "give train.max_steps or train.epochs, not both", where: at(["train", "max_steps"]) });
  }
  if (t.warmup_steps !== undefined && t.warmup_ratio !== undefined) {
    problems.push({ path: "train.warmup_steps", message: "give warmup_steps or warmup_ratio, not both", where: at(["train", "warmup_steps"]) });
  }
  return problems;
}

/** " (line N)" for a node, its key, or its nearest existing parent; " (from --set …)" for overrides. */
function location(doc: Document, lines: LineCounter, path: string[], key: string | undefined, override: string | undefined): string {
  if (override) return ` (from ${override})`;
  if (key !== undefined) {
    const map = doc.getIn(path, true);
    if (isMap(map)) {
      const pair = map.items.find((item) => isScalar(item.key) && String(item.key.value) === key);
      const range = isScalar(pair?.key) ? pair.key.range : undefined;
      if (range) return ` (line ${lines.linePos(range[0]).line})`;
    }
  }
  for (let n = path.length; n >= 0; n -= 1) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    const range = node && typeof node === "object" && "range" in node ? (node.range as [number, number, number] | undefined) : undefined;
    if (range) return ` (line ${lines.linePos(range[0]).line})`;
  }
  return "";
}
