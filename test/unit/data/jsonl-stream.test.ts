import { describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { jsonLinesRecords } from "../../../src/data/json-records.js";
import { jsonLinesFromChunks } from "../../../src/data/jsonl-stream.js";

/** The bytes handed over in pieces of `size`, each piece a fresh view the reader may overwrite once yielded. */
async function* chunksOf(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  const buffer = new Uint8Array(size);
  for (let start = 0; start < bytes.length; start += size) {
    const piece = bytes.subarray(start, start + size);
    buffer.set(piece);
    yield buffer.subarray(0, piece.length);
    // Like a stream reusing its buffer: anything the reader kept by reference is now garbage.
    buffer.fill(0x21);
  }
}

const text =
  '\ufeff{"text":"naïve café — 日本語 🙂"}\r\n\r\n  \n{"prompt":"a\\nb","completion":"ü"}\n{"text":"last line without a newline ✓"}';
const bytes = new TextEncoder().encode(text);

describe("jsonLinesFromChunks", () => {
  it("gives the same records as parsing the whole text, however the bytes are cut (inside characters and CRLFs too)", async () => {
    const whole = jsonLinesRecords("f.jsonl", text.replace(/^\ufeff/, ""));
    expect(whole.map((record) => record.line)).toEqual([1, 4, 5]);
    for (const size of [1, 2, 3, 5, 7, 64, bytes.length]) {
      expect(await jsonLinesFromChunks("f.jsonl", chunksOf(bytes, size))).toEqual(whole);
    }
  });

  it("invalid UTF-8 names the line it is on; UTF-16 says so", async () => {
    const bad = new Uint8Array([...new TextEncoder().encode('{"text":"ok"}\n{"text":"caf'), 0xe9, ...new TextEncoder().encode('"}\n')]);
    const error = await jsonLinesFromChunks("bad.jsonl", chunksOf(bad, 4)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect(String(error)).toContain("bad.jsonl is not UTF-8 (line 2); convert it");
    const wide = new Uint8Array([0xff, 0xfe, ...Buffer.from('{"text":"a"}\n', "utf16le")]);
    expect(String(await jsonLinesFromChunks("wide.jsonl", chunksOf(wide, 3)).catch((e: unknown) => e))).toContain("wide.jsonl is not UTF-8 (it looks like UTF-16)");
  });

  it("invalid JSON names its line, counted across chunks", async () => {
    const lines = new TextEncoder().encode('{"a":"1"}\n\n{"a":"2"}\n{"a": oops}\n');
    expect(String(await jsonLinesFromChunks("j.jsonl", chunksOf(lines, 3)).catch((e: unknown) => e))).toContain("j.jsonl:4: invalid JSON");
  });
});
