import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { isMap, isScalar, LineCounter, parseDocument, YAMLMap, type Document } from "yaml";
import type { z } from "zod";
import { dataFileAsRecipe } from "../data/recipe-or-data.js";
import { errnoCode, UserError } from "../errors.js";
import { clampText, shortPath } from "../io/output-path.js";
import { fileProblems } from "./check-files.js";
import type { Quantize } from "../model/quantize.js";
import { crossFieldRules, dataSchema, loraSchema, MODEL_KEYS, recipeSchema, trainSchema, type Recipe } from "./schema.js";
import { closest } from "./suggest.js";

/** Command-line values that override the file (highest precedence). */
export interface RecipeFlags {
  output?: string | undefined;
  maxSteps?: number | undefined;
  /** --quantize: model.quantize, also when the recipe names the model by a string. */
  quantize?: Quantize | undefined;
}

export interface LoadedRecipe {
  recipe: Recipe;
  /** Absolute path of the recipe file. */
  file: string;
  /** The recipe's folder: data paths and a local model folder resolve against it. */
  baseDir: string;
}

export interface Problem {
  path: string;
  message: string;
  where: string;
}

const KNOWN_KEYS: Record<string, readonly string[]> = {
  "": Object.keys(recipeSchema.shape),
  model: MODEL_KEYS,
  data: Object.keys(dataSchema.shape),
  lora: Object.keys(loraSchema.shape),
  train: Object.keys(trainSchema.shape),
};

/**
 * Reads a recipe file, applies overrides, validates, and reports every problem at once. With `checkFiles`
 * (`recipe validate`), local data files, globs and a local model folder must exist too, reported in the same list.
 */
export async function loadRecipe(params: { file: string; sets?: string[]; flags?: RecipeFlags; checkFiles?: boolean }): Promise<LoadedRecipe> {
  const file = resolve(params.file);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(await readFile(file));
  } catch (error) {
    if (errnoCode(error) === "ENOENT") throw new UserError(`recipe ${shortPath(params.file)} does not exist; \`finetune init --model <id>\` writes a starter.`);
    if (error instanceof TypeError) throw new UserError(dataFileAsRecipe(params.file, null) ?? `recipe ${shortPath(params.file)} is not UTF-8 text.`);
    throw error;
  }
  const asData = dataFileAsRecipe(params.file, text);
  if (asData !== null) throw new UserError(asData);
  const baseDir = dirname(file);
  const checked = checkRecipe(text, file, params.sets ?? [], params.flags ?? {});
  if (params.checkFiles) checked.problems.push(...(await fileProblems(checked.raw, baseDir, checked.at)));
  return { recipe: accept(checked, file), file, baseDir };
}

/** Parses and validates recipe text; exported for tests and `finetune init`. */
export function parseRecipe(text: string, source: string, sets: string[], flags: RecipeFlags): Recipe {
  return accept(checkRecipe(text, source, sets, flags), source);
}

interface CheckedRecipe {
  recipe: Recipe | null;
  problems: Problem[];
  /** The merged recipe as plain values, before validation. */
  raw: unknown;
  /** " (line N)" or " (from --set …)" for a dot path. */
  at: (path: Array<string | number>) => string;
}

function accept(checked: CheckedRecipe, source: string): Recipe {
  const { recipe, problems } = checked;
  if (problems.length > 0 || recipe === null) {
    // Keys and values come from the user and may be megabytes long (a 50 MB output:); each is shown cut (an
    // override's origin in `where` is cut where it is made).
    const lines = problems.slice(0, MAX_PROBLEMS).map((p) => `  ${clampText(p.path, 100, 40)}: ${clampText(p.message)}${p.where}`);
    if (problems.length > MAX_PROBLEMS) lines.push(`  … and ${problems.length - MAX_PROBLEMS} more`);
    throw new UserError(`${shortPath(source)} has ${problems.length} problem${problems.length === 1 ? "" : "s"}:\n${lines.join("\n")}`);
  }
  return recipe;
}

// Aliases are expanded when the document becomes plain values; past this many a recipe is an expansion attack
// ("billion laughs"), never a real recipe.
const MAX_ALIAS_COUNT = 100;
const MAX_YAML_ERRORS = 10;
const MAX_PROBLEMS = 50;

function checkRecipe(text: string, source: string, sets: string[], flags: RecipeFlags): CheckedRecipe {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, logLevel: "error" });
  if (doc.errors.length > 0) {
    const lines = doc.errors.map((e) => {
      const { line, col } = lineCounter.linePos(e.pos[0]);
      return `  ${source}:${line}:${col}: ${clampText(e.message.split("\n")[0] ?? "")}`;
    });
    // A garbage file can have thousands of errors; the first few locate the problem.
    const more = lines.length > MAX_YAML_ERRORS ? [`  … and ${lines.length - MAX_YAML_ERRORS} more`] : [];
    throw new UserError(`${source} is not valid YAML:\n${[...lines.slice(0, MAX_YAML_ERRORS), ...more].join("\n")}`);
  }
  if (doc.contents !== null && !isMap(doc.contents)) throw new UserError(`${source}: a recipe is a YAML mapping (model:, data:, lora:, train:, output:).`);
  const overridden = applyOverrides(doc, sets, flags);
  const raw: unknown = yamlToValue(doc, source) ?? {};
  const at = (path: Array<string | number>) => location(doc, lineCounter, path.map(String), undefined, overridden.get(path.join(".")));
  const parsed = recipeSchema.safeParse(raw);
  const problems: Problem[] = parsed.success ? [] : parsed.error.issues.flatMap((issue) => describeIssue(issue, doc, lineCounter, overridden));
  // Cross-field rules read the merged values, so they are reported with the other problems, not after them.
  problems.push(...crossFieldProblems(raw, at));
  return { recipe: parsed.success ? parsed.data : null, problems, raw, at };
}

/** A parsed YAML document as plain values, or a UserError naming where it came from (never a crash). */
function yamlToValue(doc: Document, source: string): unknown {
  try {
    const value: unknown = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    if (hasCycle(value, new Set())) throw new UserError(`${source}: a YAML alias (*name) refers to a collection that contains it, which never ends; write the values out.`);
    return value;
  } catch (error) {
    if (error instanceof UserError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    if (/alias count/i.test(message)) {
      throw new UserError(`${source}: its YAML aliases (*name) expand to too much data, as in an alias bomb; a recipe never needs that many — write the values out.`);
    }
    throw new UserError(`${source} is not valid YAML: ${clampText(message.split("\n")[0] ?? "")}`);
  }
}

/** Whether a collection contains itself (an alias inside its own anchor: `a: &x [*x]`). */
function hasCycle(value: unknown, ancestors: Set<object>): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (ancestors.has(value)) return true;
  ancestors.add(value);
  const found = Object.values(value).some((child) => hasCycle(child, ancestors));
  ancestors.delete(value);
  return found;
}

/** YAML text that is not a recipe file (a resolved recipe, a --set value) as plain values, or a UserError naming it. */
export function parseYamlText(text: string, source: string): unknown {
  const doc = parseDocument(text, { prettyErrors: false, logLevel: "error" });
  const [first] = doc.errors;
  if (first) throw new UserError(`${source} is not valid YAML: ${clampText(first.message.split("\n")[0] ?? "")}`);
  return yamlToValue(doc, source);
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
      problems.push(`--set ${clampText(JSON.stringify(set), 100, 40)}: write key.path=value, e.g. --set train.lr=1e-4`);
      continue;
    }
    const path = key.split(".");
    if (path[0] === "model" && path.length > 1) modelAsMapping(doc);
    if (path.length > 1 && !isMap(doc.getIn(path.slice(0, -1), true)) && doc.hasIn(path.slice(0, -1))) {
      problems.push(`--set ${clampText(key, 100, 40)}: ${clampText(path.slice(0, -1).join("."), 100, 40)} is not a mapping`);
      continue;
    }
    let value: unknown;
    try {
      value = parseYamlText(set.slice(eq + 1), `--set ${clampText(key, 100, 40)}`);
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      problems.push(`${clampText(error.message)}; quote it if it is text, e.g. --set '${clampText(key, 100, 40)}="…"'`);
      continue;
    }
    doc.setIn(path, doc.createNode(value));
    origin.set(key, `--set ${clampText(key, 100, 40)}`);
  }
  if (problems.length > 0) throw new UserError(problems.join("\n"));
  if (flags.output !== undefined) {
    doc.setIn(["output"], flags.output);
    origin.set("output", "--output");
  }
  if (flags.quantize !== undefined) {
    modelAsMapping(doc);
    if (doc.hasIn(["model"]) && !isMap(doc.getIn(["model"], true))) throw new UserError("--quantize: model is neither a string nor a mapping in the recipe; write model: org/name (or a folder).");
    doc.setIn(["model", "quantize"], flags.quantize);
    origin.set("model.quantize", "--quantize");
  }
  if (flags.maxSteps !== undefined) {
    if (doc.hasIn(["train"]) && !isMap(doc.getIn(["train"], true))) throw new UserError("--max-steps: train is not a mapping in the recipe; write train: with keys under it.");
    doc.setIn(["train", "max_steps"], flags.maxSteps);
    doc.deleteIn(["train", "epochs"]);
    origin.set("train.max_steps", "--max-steps");
  }
  return origin;
}

/**
 * `model: org/name` becomes `model: {name: org/name}` in the document, so an override of model.quantize (--set or
 * --quantize) applies to either form. The string node is kept as the name, with its line for messages.
 */
function modelAsMapping(doc: Document): void {
  const node = doc.getIn(["model"], true);
  if (!isScalar(node) || typeof node.value !== "string") return;
  const map = new YAMLMap();
  map.set("name", node);
  map.range = node.range;
  doc.setIn(["model"], map);
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
  // A mapping where a union also takes a mapping (model: {name, quantize}): that form's own problems, by their paths.
  if (issue.code === "invalid_union" && isMap(doc.getIn(path, true))) {
    const mappingForm = issue.errors.find((branch) => !branch.some((inner) => inner.code === "invalid_type" && inner.path.length === 0));
    if (mappingForm) return mappingForm.flatMap((inner) => describeIssue({ ...inner, path: [...issue.path, ...inner.path] }, doc, lines, overridden));
  }
  let message = issue.message;
  if (issue.code === "invalid_value" && "values" in issue) message = `must be one of ${issue.values.map(String).join(", ")}`;
  if (issue.code === "invalid_union") message = describeUnion(path.join("."), doc.getIn(path) === undefined);
  if (issue.code === "invalid_type" && issue.message.startsWith("Invalid input: expected") && doc.getIn(path) === undefined) message = "is required";
  const key = path.join(".");
  return [{ path: key || "(recipe)", message, where: location(doc, lines, path, undefined, overridden.get(key)) }];
}

function describeUnion(path: string, absent: boolean): string {
  switch (path) {
    case "model":
      return absent
        ? "model is required: a hub id org/name[@revision] or a local folder"
        : "must be a hub id org/name[@revision] or a local folder (a string), or a mapping {name: …, quantize: none|bf16|int8|nf4}";
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

function crossFieldProblems(raw: unknown, at: (path: Array<string | number>) => string): Problem[] {
  const problems: Problem[] = [];
  for (const rule of crossFieldRules) {
    const section = isRecord(raw) ? raw[rule.section] : undefined;
    // A section of the wrong type is already a problem of its own.
    if (section !== undefined && !isRecord(section)) continue;
    const [a, b] = rule.keys;
    const given = rule.keys.filter((key) => section !== undefined && section[key] !== undefined);
    const names = `${rule.section}.${a} or ${rule.section}.${b}`;
    if (given.length === 2) problems.push({ path: `${rule.section}.${a}`, message: `give ${names}, not both`, where: at([rule.section, a]) });
    else if (given.length === 0 && rule.kind === "exactly-one") problems.push({ path: `${rule.section}.${a}`, message: `give ${names}`, where: section === undefined ? "" : at([rule.section]) });
  }
  const recipe = isRecord(raw) ? raw : {};
  const patience = isRecord(recipe.train) ? recipe.train.early_stopping_patience : undefined;
  if (typeof patience === "number" && isRecord(recipe.data) && recipe.data.validation === 0) {
    problems.push({
      path: "train.early_stopping_patience",
      message: "early stopping watches the validation loss, but data.validation is 0; give a validation fraction or file, or set early_stopping_patience: null",
      where: at(["train", "early_stopping_patience"]),
    });
  }
  return problems;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
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
