import { parquetWriteFile } from "hyparquet-writer";
import { afterEach, describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { readRecords } from "../../../src/data/read-records.js";
import { tempDir } from "./fixture.js";

let dir = tempDir();
afterEach(() => {
  dir.remove();
  dir = tempDir();
});

/** The UserError a read fails with (fails the test when it does not fail that way). */
async function failure(path: string): Promise<string> {
  const error: unknown = await readRecords(path).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UserError);
  return error instanceof Error ? error.message : "";
}

describe("readRecords: .jsonl", () => {
  it("reads one object per line, skipping blank lines, with 1-based line numbers (CRLF too)", async () => {
    const file = dir.write("a.jsonl", '{"text":"one"}\r\n\r\n  \n{"text":"two","n":2}\n');
    expect(await readRecords(file)).toEqual({
      file,
      records: [
        { line: 1, value: { text: "one" } },
        { line: 4, value: { text: "two", n: 2 } },
      ],
    });
  });

  it("invalid JSON names file:line", async () => {
    const file = dir.write("bad.jsonl", '{"text":"one"}\n{"text": oops}\n');
    expect(await failure(file)).toMatch(new RegExp(`^${file}:2: invalid JSON`));
  });

  it("a record that is not an object names file:line and what it is", async () => {
    const file = dir.write("arr.jsonl", '{"text":"one"}\n\n["text"]\n');
    expect(await failure(file)).toContain(`${file}:3: expected a JSON object (a record with named fields), got an array`);
    expect(await failure(dir.write("num.jsonl", "42\n"))).toMatch(/num\.jsonl:1: .*got a number 42/);
  });
});

describe("readRecords: .json", () => {
  it("an array of objects; each record's line is where its object starts", async () => {
    const file = dir.write("a.json", '[\n  {\n    "text": "one, [with] {brackets} and \\"quotes\\""\n  },\n  {"text": "two"}, {"text": "three"}\n]\n');
    const source = await readRecords(file);
    expect(source.records.map((r) => r.line)).toEqual([2, 5, 5]);
    expect(source.records[0]?.value).toEqual({ text: 'one, [with] {brackets} and "quotes"' });
  });

  it('an object with one array field, like {"data": [...]}, even with other fields around it', async () => {
    const file = dir.write("wrapped.json", '{\n  "meta": {"rows": [1]},\n  "version": "1",\n  "data": [\n    {"text": "a"},\n    {"text": "b"}\n  ]\n}\n');
    expect((await readRecords(file)).records).toEqual([
      { line: 5, value: { text: "a" } },
      { line: 6, value: { text: "b" } },
    ]);
    const tricky = dir.write("tricky.json", '{\n  "version": {"data": "[{"},\n  "data": [\n    {"text": "a"},\n\n    {"text": "b"}\n  ]\n}\n');
    expect((await readRecords(tricky)).records).toEqual([
      { line: 4, value: { text: "a" } },
      { line: 6, value: { text: "b" } },
    ]);
    const two = dir.write("two.json", '{"train": [{"text": "a"}], "test": [{"text": "b"}]}');
    expect(await failure(two)).toContain('the top-level object has several array fields ("train", "test")');
  });

  it("a .json file that is really JSON Lines is read as JSON Lines", async () => {
    const file = dir.write("lines.json", '{"text":"a"}\n{"text":"b"}\n');
    expect((await readRecords(file)).records).toEqual([
      { line: 1, value: { text: "a" } },
      { line: 2, value: { text: "b" } },
    ]);
  });

  it("invalid JSON names the line of the error", async () => {
    const file = dir.write("bad.json", '[\n  {"text": "a"},\n  {"text" "b"}\n]\n');
    expect(await failure(file)).toMatch(new RegExp(`^${file}:3: invalid JSON`));
  });

  it("a non-object element names file:line; a scalar file says what was expected", async () => {
    expect(await failure(dir.write("el.json", '[\n  {"text": "a"},\n  "b"\n]'))).toContain('el.json:3: expected a JSON object (a record with named fields), got a string "b"');
    expect(await failure(dir.write("scalar.json", '"hello"'))).toContain("expected an array of records");
  });
});

describe("readRecords: .csv", () => {
  it("uses the header row, keeps every value a string, and gives each record its starting line", async () => {
    const file = dir.write("a.csv", '\uFEFFprompt,completion,id\r\nhi,"hello, there",007\r\n\r\n"multi\r\nline",x,8\r\nlast,y,9');
    expect((await readRecords(file)).records).toEqual([
      { line: 2, value: { prompt: "hi", completion: "hello, there", id: "007" } },
      { line: 4, value: { prompt: "multi\nline", completion: "x", id: "8" } },
      { line: 6, value: { prompt: "last", completion: "y", id: "9" } },
    ]);
  });

  it("a row with the wrong number of columns names file:line", async () => {
    const file = dir.write("bad.csv", "a,b\n1,2\n3,4,5\n");
    expect(await failure(file)).toMatch(new RegExp(`^${file}:3: invalid CSV`));
  });

  it("a repeated column name is refused (one value would be lost)", async () => {
    expect(await failure(dir.write("dup.csv", "a,a\n1,2\n"))).toContain('dup.csv:1: the header names column "a" twice');
  });

  it("a header without rows has no records", async () => {
    expect(await failure(dir.write("header.csv", "a,b\n"))).toContain("has no records");
  });
});

describe("readRecords: .parquet", () => {
  it("reads every row as an object, nested lists of structs included; line = row + 1", async () => {
    const file = `${dir.path}/a.parquet`;
    parquetWriteFile({
      filename: file,
      columnData: [
        { name: "text", data: ["é one", "two"], type: "STRING" },
        { name: "n", data: [1, 2], type: "INT32" },
        { name: "messages", data: [[{ role: "user", content: "x" }], [{ role: "assistant", content: "y" }]] },
      ],
    });
    expect((await readRecords(file)).records).toEqual([
      { line: 1, value: { text: "é one", n: 1, messages: [{ role: "user", content: "x" }] } },
      { line: 2, value: { text: "two", n: 2, messages: [{ role: "assistant", content: "y" }] } },
    ]);
  });

  it("a file that is not Parquet is a UserError naming it", async () => {
    const file = dir.write("fake.parquet", "not parquet at all");
    expect(await failure(file)).toMatch(/fake\.parquet: cannot read Parquet/);
  });
});

describe("readRecords: .txt", () => {
  it("one {text} record per paragraph; line is the paragraph's first line", async () => {
    const file = dir.write("a.txt", "\nFirst paragraph\nstill first.\n\n \n\nSecond.\r\nMore of it.  \n");
    expect((await readRecords(file)).records).toEqual([
      { line: 2, value: { text: "First paragraph\nstill first." } },
      { line: 7, value: { text: "Second.\nMore of it." } },
    ]);
  });
});

describe("readRecords: errors for any format", () => {
  it("non-UTF-8 content says so and how to convert", async () => {
    const latin1 = dir.write("latin.jsonl", Buffer.from('{"text":"caf\xe9"}\n', "latin1"));
    expect(await failure(latin1)).toContain(`${latin1} is not UTF-8 (line 1); convert it`);
    const latinCsv = dir.write("latin.csv", Buffer.from("text\ncaf\xe9\n", "latin1"));
    expect(await failure(latinCsv)).toContain(`${latinCsv} is not UTF-8; convert it`);
    const utf16 = dir.write("wide.csv", Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from("a,b\n\ud800", "utf16le")]));
    expect(await failure(utf16)).toContain("is not UTF-8 (it looks like UTF-16); convert it");
  });

  it("an empty file, or one with only blank lines, has no records", async () => {
    for (const name of ["empty.jsonl", "blank.txt", "empty.csv"]) {
      const file = dir.write(name, name === "blank.txt" ? "\n \n\n" : "");
      expect(await failure(file)).toBe(`${file} has no records; check that it is the file you meant.`);
    }
    expect(await failure(dir.write("empty.json", "[]"))).toContain("has no records");
    expect(await failure(dir.write("blank.json", "\n"))).toContain("has no records");
    expect(await failure(dir.write("nothing.json", '{"data": []}'))).toContain("has no records");
  });

  it("an unknown extension lists the supported ones", async () => {
    const file = dir.write("data.tsv", "a\tb\n");
    expect(await failure(file)).toBe(
      `${file}: unsupported data file type ".tsv"; supported: .jsonl, .json, .csv, .parquet, .txt. Rename or convert the file.`,
    );
  });

  it("a missing file says so", async () => {
    expect(await failure(`${dir.path}/nope.jsonl`)).toBe(`no such file: ${dir.path}/nope.jsonl`);
  });
});
