import { constants } from "node:buffer";
import { closeSync, openSync, writeSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { readRecords } from "../../../src/data/read-records.js";
import { tempDir } from "./fixture.js";

const dir = tempDir();
afterAll(() => dir.remove());

describe("readRecords: a JSONL file longer than V8's longest string", () => {
  // About 540 MB on disk and a few seconds: the one way to show the whole file is never one string.
  it("is read line by line: every record, with its line number", async () => {
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
  });
});
