import { UserError } from "../errors.js";
import { jsonLineRecord } from "./json-records.js";
import type { DataRecord } from "./read-records.js";

const NEWLINE = 0x0a;

/**
 * JSON Lines read from byte chunks, one line at a time, so a file larger than V8's longest string (about 512 MiB)
 * reads like any other. A line is decoded strictly on its own: "\n" never occurs inside a UTF-8 sequence, so
 * cutting bytes at newlines cannot split a character.
 */
export async function jsonLinesFromChunks(file: string, chunks: AsyncIterable<Uint8Array>): Promise<DataRecord[]> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const records: DataRecord[] = [];
  let pending: Uint8Array[] = [];
  let line = 0;
  let first = true;
  const finish = (bytes: Uint8Array): void => {
    line += 1;
    if (first) {
      first = false;
      if (looksLikeUtf16(bytes)) throw notUtf8(file, line, true);
    }
    let text: string;
    try {
      // TextDecoder drops a leading UTF-8 BOM, which editors on Windows like to add.
      text = decoder.decode(bytes);
    } catch {
      throw notUtf8(file, line, false);
    }
    const record = jsonLineRecord(file, line, text);
    if (record !== null) records.push(record);
  };
  for await (const chunk of chunks) {
    let start = 0;
    for (let at = chunk.indexOf(NEWLINE); at >= 0; at = chunk.indexOf(NEWLINE, start)) {
      const piece = chunk.subarray(start, at);
      finish(pending.length === 0 ? piece : Buffer.concat([...pending, piece]));
      pending = [];
      start = at + 1;
    }
    // The chunk may be reused by the reader, so what is kept for the next line is copied.
    if (start < chunk.length) pending.push(chunk.slice(start));
  }
  if (pending.length > 0) finish(Buffer.concat(pending));
  return records;
}

/** A UTF-16 byte-order mark, the usual reason a text file is not UTF-8. */
export function looksLikeUtf16(bytes: Uint8Array): boolean {
  return (bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff);
}

export function notUtf8(file: string, line: number | null, utf16: boolean): UserError {
  const where = line === null ? "" : ` (line ${line})`;
  return new UserError(
    `${file} is not UTF-8${utf16 ? " (it looks like UTF-16)" : where}; convert it, e.g. \`iconv -f ${utf16 ? "UTF-16" : "LATIN1"} -t UTF-8 in > out\`.`,
  );
}
