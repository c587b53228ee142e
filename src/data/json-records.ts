import { UserError } from "../errors.js";
import { describeValue } from "./describe-value.js";
import type { DataRecord } from "./read-records.js";

/** JSON Lines: one object per line; blank lines are skipped; `line` is the file line. */
export function jsonLinesRecords(file: string, text: string): DataRecord[] {
  const records: DataRecord[] = [];
  text.split("\n").forEach((raw, index) => {
    const record = jsonLineRecord(file, index + 1, raw);
    if (record !== null) records.push(record);
  });
  return records;
}

/** One line of JSON Lines as a record, or null for a blank line. */
export function jsonLineRecord(file: string, line: number, raw: string): DataRecord | null {
  const source = raw.trim();
  if (source === "") return null;
  let value: unknown;
  try {
    value = JSON.parse(source);
  } catch (error) {
    throw new UserError(`${file}:${line}: invalid JSON (${errorMessage(error)}); each line must be one JSON object.`);
  }
  return { line, value: asObject(file, line, value) };
}

/**
 * A JSON file: an array of objects, or an object with exactly one array field (`{"data": [...]}`). Each record's
 * line is where its value starts. A .json file that is really JSON Lines is read as such, as the `datasets`
 * library does, because many hub datasets ship them that way.
 */
export function jsonArrayRecords(file: string, text: string): DataRecord[] {
  // An empty file has no records (said by the caller), not a JSON syntax error.
  if (text.trim() === "") return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    if (looksLikeJsonLines(text)) return jsonLinesRecords(file, text);
    throw new UserError(`${file}:${lineOfError(text, error)}: invalid JSON (${errorMessage(error)}).`);
  }
  const { items, key } = recordArray(file, parsed);
  const lines = elementLines(text, key);
  // The scan only fails to line up on input JSON.parse accepted but we misread; numbering by index still helps.
  const lineOf = (index: number): number => (lines.length === items.length ? (lines[index] ?? index + 1) : index + 1);
  return items.map((value, index) => ({ line: lineOf(index), value: asObject(file, lineOf(index), value) }));
}

function recordArray(file: string, parsed: unknown): { items: unknown[]; key: string | null } {
  if (Array.isArray(parsed)) return { items: parsed, key: null };
  if (isObject(parsed)) {
    const arrays = Object.entries(parsed).filter((entry): entry is [string, unknown[]] => Array.isArray(entry[1]));
    const [only] = arrays;
    if (arrays.length === 1 && only) return { items: only[1], key: only[0] };
    if (arrays.length > 1) {
      throw new UserError(
        `${file}: the top-level object has several array fields (${arrays.map(([k]) => JSON.stringify(k)).join(", ")}); ` +
          `keep one array of records per file (e.g. split train and test into two files).`,
      );
    }
  }
  throw new UserError(`${file}: expected an array of records (or an object like {"data": [...]}), got ${describeValue(parsed)}.`);
}

function looksLikeJsonLines(text: string): boolean {
  const lines = text.split("\n").filter((line) => line.trim() !== "");
  if (lines.length < 2) return false;
  try {
    return isObject(JSON.parse(lines[0] ?? ""));
  } catch {
    return false;
  }
}

/**
 * 1-based start lines of the elements of the record array: the top-level array (`key` null) or the array under
 * `key` in the top-level object. A small scanner over already-valid JSON that tracks strings and nesting.
 */
function elementLines(text: string, key: string | null): number[] {
  const lines: number[] = [];
  const stack: string[] = [];
  let line = 1;
  let inString = false;
  let escaped = false;
  let stringStart = 0;
  let expectKey = false;
  let topKey: string | null = null;
  let targetDepth = -1;
  let awaiting = false;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (ch === "\n") line += 1;
    if (inString) {
      if (escaped) escaped = false;
      else if (ch === "\\") escaped = true;
      else if (ch === '"') {
        inString = false;
        if (expectKey && stack.length === 1) {
          topKey = JSON.parse(text.slice(stringStart, i + 1)) as string;
          expectKey = false;
        }
      }
      continue;
    }
    if (awaiting && stack.length === targetDepth && ch !== undefined && !/[\s,\]]/.test(ch)) {
      lines.push(line);
      awaiting = false;
    }
    if (ch === '"') {
      inString = true;
      stringStart = i;
    } else if (ch === "{" || ch === "[") {
      const isTarget = ch === "[" && targetDepth < 0 && (key === null ? stack.length === 0 : stack.length === 1 && stack[0] === "{" && topKey === key);
      stack.push(ch);
      if (isTarget) {
        targetDepth = stack.length;
        awaiting = true;
      }
      if (ch === "{" && stack.length === 1) expectKey = true;
    } else if (ch === "}" || ch === "]") {
      if (stack.length === targetDepth) break;
      stack.pop();
    } else if (ch === ",") {
      if (stack.length === targetDepth) awaiting = true;
      if (stack.length === 1 && stack[0] === "{") expectKey = true;
    }
  }
  return lines;
}

function asObject(file: string, line: number, value: unknown): Record<string, unknown> {
  if (isObject(value)) return value;
  throw new UserError(`${file}:${line}: expected a JSON object (a record with named fields), got ${describeValue(value)}.`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** V8 reports "at position N" (Node 22 adds "(line L column C)"); the end of input means the last line. */
function lineOfError(text: string, error: unknown): number {
  const position = /position (\d+)/.exec(errorMessage(error));
  const end = position?.[1] === undefined ? text.trimEnd().length : Number(position[1]);
  let line = 1;
  for (let i = 0; i < end && i < text.length; i += 1) if (text[i] === "\n") line += 1;
  return line;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
