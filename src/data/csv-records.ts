import { parse } from "csv-parse/sync";
import { UserError } from "../errors.js";
import type { DataRecord } from "./read-records.js";

/** CSV with a header row; every value stays a string (no type guessing: "007" must not become 7). */
export function csvRecords(file: string, text: string): DataRecord[] {
  // csv-parse counts lines inconsistently around "\r\n"; with "\n" only its line numbers are exact.
  const normalized = text.replace(/\r\n?/g, "\n");
  let rows: Array<{ record: Record<string, string>; raw: string; info: { lines: number } }>;
  try {
    rows = parse(normalized, {
      columns: (header: string[]) => checkHeader(file, header),
      skip_empty_lines: true,
      bom: true,
      info: true,
      raw: true,
    });
  } catch (error) {
    if (error instanceof UserError) throw error;
    const line = typeof error === "object" && error !== null && "lines" in error && typeof error.lines === "number" ? error.lines : 1;
    throw new UserError(`${file}:${line}: invalid CSV (${error instanceof Error ? error.message : String(error)}).`);
  }
  return rows.map(({ record, raw, info }) => {
    // `info.lines` is the line a record ends on; step back over the newlines inside it (quoted multi-line values).
    // `raw` also carries the skipped blank lines before it and its own line break, which are not part of it.
    const inner = raw.replace(/^\n+/, "").replace(/\n$/, "");
    const newlines = inner.split("\n").length - 1;
    return { line: Math.max(1, info.lines - newlines), value: record };
  });
}

function checkHeader(file: string, header: string[]): string[] {
  const seen = new Set<string>();
  for (const name of header) {
    // An unnamed column is usually a pandas index; only a repeated real name loses data.
    if (name !== "" && seen.has(name)) {
      throw new UserError(`${file}:1: the header names column ${JSON.stringify(name)} twice; give each column a distinct name.`);
    }
    seen.add(name);
  }
  return header;
}
