import { constants } from "node:buffer";
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import { errnoCode, UserError } from "../errors.js";
import { csvRecords } from "./csv-records.js";
import { jsonArrayRecords } from "./json-records.js";
import { jsonLinesFromChunks, looksLikeUtf16, notUtf8 } from "./jsonl-stream.js";
import { parquetRecords } from "./parquet-records.js";

/** One record and the 1-based line (row, for Parquet) it starts on, so errors can say `file:line`. */
export interface DataRecord {
  line: number;
  value: Record<string, unknown>;
}

export interface RecordSource {
  file: string;
  records: DataRecord[];
}

export const SUPPORTED_EXTENSIONS = [".jsonl", ".json", ".csv", ".parquet", ".txt"] as const;

/**
 * Reads every record of a data file; the extension picks the format: .jsonl (one object per line), .json (an array
 * of objects, or an object holding one such array), .csv (header row; every value a string), .parquet (rows as
 * objects), .txt (one `{text}` record per paragraph).
 */
export async function readRecords(path: string): Promise<RecordSource> {
  const extension = extname(path).toLowerCase();
  let records: DataRecord[];
  if (extension === ".parquet") {
    records = await parquetRecords(path);
  } else if (extension === ".jsonl") {
    records = await jsonLinesFromChunks(path, readChunks(path));
  } else if (extension === ".json" || extension === ".csv" || extension === ".txt") {
    const text = decodeUtf8(path, await readBytes(path));
    if (extension === ".json") records = jsonArrayRecords(path, text);
    else if (extension === ".csv") records = csvRecords(path, text);
    else records = paragraphRecords(text);
  } else {
    throw new UserError(
      `${path}: unsupported data file type ${JSON.stringify(extension || "(no extension)")}; ` +
        `supported: ${SUPPORTED_EXTENSIONS.join(", ")}. Rename or convert the file.`,
    );
  }
  if (records.length === 0) throw new UserError(`${path} has no records; check that it is the file you meant.`);
  return { file: path, records };
}

async function readBytes(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw readError(path, error);
  }
}

/** The file's bytes in chunks, with the same errors as readBytes. */
async function* readChunks(path: string): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of createReadStream(path)) yield chunk as Buffer;
  } catch (error) {
    throw readError(path, error);
  }
}

function readError(path: string, error: unknown): UserError {
  const code = errnoCode(error);
  if (code === "ENOENT") return new UserError(`no such file: ${path}`);
  if (code === "EISDIR") return new UserError(`${path} is a folder; name a data file or a glob like ${path}/*.jsonl`);
  if (code === "ERR_FS_FILE_TOO_LARGE") return tooLarge(path);
  return new UserError(`cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`);
}

/** Strict decoding: a latin-1 or UTF-16 file would otherwise train on mojibake without any warning. */
function decodeUtf8(path: string, bytes: Buffer): string {
  try {
    // TextDecoder drops a leading UTF-8 BOM, which editors on Windows like to add.
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    // Past V8's longest string the decoder fails too, for a reason that has nothing to do with the encoding.
    if (errnoCode(error) === "ERR_STRING_TOO_LONG") throw tooLarge(path);
    const utf16 = looksLikeUtf16(bytes);
    throw notUtf8(path, null, utf16);
  }
}

function tooLarge(path: string): UserError {
  const limit = Math.floor(constants.MAX_STRING_LENGTH / 2 ** 20);
  return new UserError(
    `${path} is too large to read as one piece (the limit is about ${limit} MiB of text); ` +
      `convert it to JSON Lines (.jsonl), which is read line by line, or split it into several files and list them (or use a glob).`,
  );
}

/** Paragraphs (runs of non-blank lines) become `{text}` records; the text keeps its inner line breaks. */
function paragraphRecords(text: string): DataRecord[] {
  const records: DataRecord[] = [];
  let lines: string[] = [];
  let start = 0;
  const flush = (): void => {
    if (lines.length > 0) records.push({ line: start, value: { text: lines.join("\n") } });
    lines = [];
  };
  text.split(/\r?\n/).forEach((line, index) => {
    if (line.trim() === "") return flush();
    if (lines.length === 0) start = index + 1;
    lines.push(line.trimEnd());
  });
  flush();
  return records;
}
