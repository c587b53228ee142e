import { constants } from "node:buffer";
import { closeSync, openSync, renameSync, writeSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { readRecords } from "../../../src/data/read-records.js";
import { UserError } from "../../../src/errors.js";
import { tempDir } from "./fixture.js";

const dir = tempDir();
afterAll(() => dir.remove());

describe("readRecords: a JSONL file longer than V8's longest string", () => {
  // About 540 MB on disk and a few seconds: the one way to show the whole file is never one string.
  it("is read line by line: every record, with its line number (a .json that large is refused as too large)", async () => {
    const file = `${dir.path}/big.jsonl`;
    const line = Buffer.from(`${JSON.stringify({ text: "a".repeat(64_000) })}\n`);
    const count = Math.ceil((constants.MAX_STRING_LENGTH + 1) / line.length);
    const fd = openSync(file, "w");
    try {
      for (let i = 0; i < count; i += 1) writeSync(fd, line);
    } finally {
      closeSync(fd);
    }
    expect(count * line.length).toBeGreaterThan(constants.MAX_STRING_LENGTH);
    const source = await readRecords(file);
    expect(source.records).toHaveLength(count);
    expect(source.records[count - 1]?.line).toBe(count);
    expect(source.records[count - 1]?.value.text).toBe("a".repeat(64_000));

    // The same bytes as .json must be one string: refused as too large, not called "not UTF-8".
    const json = `${dir.path}/big.json`;
    renameSync(file, json);
    const error = await readRecords(json).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect(String(error)).toContain(`${json} is too large to read as one piece (the limit is about 511 MiB of text); convert it to JSON Lines (.jsonl)`);
  });
});
