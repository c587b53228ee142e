import { basename, extname } from "node:path";

// Extensions a recipe never has; .json is left to the content check (YAML reads JSON, so a recipe may be JSON).
const DATA_ONLY = [".jsonl", ".csv", ".parquet", ".txt", ".tsv", ".arrow"];
// Record fields of the data formats we read; a recipe has none of them at its top level.
const RECORD_FIELDS = ["messages", "conversations", "instruction", "output", "prompt", "completion", "text"];

/**
 * A message when the file given as a recipe is a data file (by its extension, or JSON records for content), so
 * `finetune train data.jsonl` gets one clear sentence instead of a YAML or schema error per line. Null otherwise.
 * `text` is null when the file is not UTF-8 text.
 */
export function dataFileAsRecipe(file: string, text: string | null): string | null {
  const extension = extname(file).toLowerCase();
  const why = DATA_ONLY.includes(extension) ? `its extension is ${extension}` : text === null ? null : recordsIn(text);
  if (why === null) return null;
  const name = basename(file);
  return (
    `${file} is a data file, not a recipe (${why}). A recipe is a YAML file naming the model and the data: ` +
    `\`finetune init --model <org/name> --data ${name}\` writes one with data.train: ${name}, then run \`finetune train recipe.yaml\`.`
  );
}

/** Why the text reads as data records (a JSON array of objects, JSON Lines, or one record), or null. */
function recordsIn(text: string): string | null {
  const trimmed = text.trim();
  if (trimmed.startsWith("[")) {
    try {
      const value: unknown = JSON.parse(trimmed);
      if (Array.isArray(value) && value.length > 0 && value.every(isObject)) return `it is a JSON array of ${count(value.length)}`;
    } catch {
      return null;
    }
    return null;
  }
  if (trimmed.startsWith("{")) {
    const held = recordsHeld(trimmed);
    if (held !== null) return held;
  }
  const lines = trimmed.split("\n").filter((line) => line.trim() !== "");
  const objects = lines.slice(0, 3).map((line) => {
    try {
      const value: unknown = JSON.parse(line);
      return isObject(value) ? value : null;
    } catch {
      return null;
    }
  });
  if (objects.length === 0 || objects.some((value) => value === null)) return null;
  if (lines.length > 1) return `it holds JSON Lines, one record per line`;
  const fields = Object.keys(objects[0] ?? {});
  const recordFields = fields.filter((field) => RECORD_FIELDS.includes(field));
  if (!fields.includes("model") && recordFields.length > 0) return `it is a record with the field${recordFields.length === 1 ? "" : "s"} ${recordFields.map((f) => JSON.stringify(f)).join(", ")}`;
  return null;
}

/** A JSON object holding an array of records (`{"data": [...]}`, as .json data files may be), without a model. */
function recordsHeld(text: string): string | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isObject(value) || "model" in value) return null;
  for (const [key, field] of Object.entries(value)) {
    if (Array.isArray(field) && field.length > 0 && field.every(isObject)) return `it is a JSON object holding ${count(field.length)} under ${JSON.stringify(key)}`;
  }
  return null;
}

function count(n: number): string {
  return `${n} record${n === 1 ? "" : "s"}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
