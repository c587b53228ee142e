import * as zlib from "node:zlib";
import { asyncBufferFromFile, parquetReadObjects, type Compressors } from "hyparquet";
import { errnoCode, UserError } from "../errors.js";
import type { DataRecord } from "./read-records.js";

/** Every row of a Parquet file as an object (nested lists and structs included); `line` is the 1-based row. */
export async function parquetRecords(file: string): Promise<DataRecord[]> {
  let rows: Array<Record<string, unknown>>;
  try {
    rows = await parquetReadObjects({ file: await asyncBufferFromFile(file), compressors: nodeCompressors() });
  } catch (error) {
    const code = errnoCode(error);
    if (code === "ENOENT") throw new UserError(`no such file: ${file}`);
    const message = error instanceof Error ? error.message : String(error);
    const hint = /compress|codec/i.test(message)
      ? " Re-save it with Snappy, gzip or no compression, or as JSON Lines."
      : " Check that it is a complete Parquet file (re-download it, or convert it to JSON Lines).";
    throw new UserError(`${file}: cannot read Parquet (${message}).${hint}`);
  }
  return rows.map((value, index) => ({ line: index + 1, value }));
}

/**
 * hyparquet decodes Snappy itself; Node's zlib covers gzip and Brotli, and ZSTD where this Node has it
 * (22.15+), which spares a native dependency for the codecs pandas and polars write.
 */
function nodeCompressors(): Compressors {
  const compressors: Compressors = {
    GZIP: (input) => new Uint8Array(zlib.gunzipSync(input)),
    BROTLI: (input) => new Uint8Array(zlib.brotliDecompressSync(input)),
  };
  // Absent from Node 20's typings, hence the lookup by name.
  const zstd = Reflect.get(zlib, "zstdDecompressSync") as ((input: Uint8Array) => Buffer) | undefined;
  if (typeof zstd === "function") compressors.ZSTD = (input) => new Uint8Array(zstd(input));
  return compressors;
}
