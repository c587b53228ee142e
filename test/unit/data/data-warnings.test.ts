import { describe, expect, it } from "vitest";
import { emptyExampleWarning, validationSizeWarning, type PlacedExample } from "../../../src/data/data-warnings.js";

const text = (value: string, line: number): PlacedExample => ({ example: { kind: "text", text: value }, where: `d.jsonl:${line}` });

describe("emptyExampleWarning", () => {
  it("counts empty and blank texts, names where the first ones are, says what to do", () => {
    const examples = [text("a", 1), text("", 2), text("  \n", 3), text("b", 4), text("", 5), text("", 6), text("", 7)];
    expect(emptyExampleWarning(examples)).toBe(
      "5 of 7 records have an empty text (d.jsonl:2, d.jsonl:3, d.jsonl:5 and 2 more); each teaches the model only to stop at once. " +
        "Remove them, or point data.fields at the field that holds the text.",
    );
  });

  it("empty completions too; nothing when every record has content (chat is checked elsewhere)", () => {
    const completion: PlacedExample = { example: { kind: "completion", prompt: "p", completion: "" }, where: "d.csv:3" };
    expect(emptyExampleWarning([completion])).toBe(
      "1 of 1 record has an empty completion (d.csv:3); each teaches the model only to stop at once. Remove it, or point data.fields at the field that holds the completion.",
    );
    expect(emptyExampleWarning([text("a", 1), { example: { kind: "chat", messages: [{ role: "assistant", content: "x" }] }, where: "c:1" }])).toBeNull();
  });

  it("a conversation whose assistant replies are all empty", () => {
    const chat = (...replies: string[]): PlacedExample => ({
      example: { kind: "chat", messages: replies.flatMap((content) => [{ role: "user", content: "q" }, { role: "assistant", content }]) },
      where: `c.jsonl:${replies.length}`,
    });
    expect(emptyExampleWarning([chat("", " "), chat("", "ok"), chat("fine")])).toBe(
      "1 of 3 records has only empty assistant replies (c.jsonl:2); each teaches the model only to stop at once. Remove it, or point data.fields at the field that holds the content.",
    );
  });
});

describe("validationSizeWarning", () => {
  it("a fraction holding out fewer than 10 examples, e.g. 1 of 3 records", () => {
    expect(validationSizeWarning({ validation: 0.34, records: 3, validationExamples: 1 })).toBe(
      "data.validation: 0.34 holds out only 1 of 3 records, so the validation loss is noise (fewer than 10 examples); " +
        "use more data or a larger fraction, a validation file, or data.validation: 0 to turn validation off.",
    );
    expect(validationSizeWarning({ validation: 0.05, records: 300, validationExamples: 15 })).toBeNull();
    expect(validationSizeWarning({ validation: 0, records: 3, validationExamples: 0 })).toBeNull();
  });

  it("a fraction holding out nothing, and a small validation file", () => {
    expect(validationSizeWarning({ validation: 0.05, records: 1, validationExamples: 0 })).toBe(
      "data.validation: 0.05 holds out nothing from 1 record, so there is no validation loss; add data, or set data.validation: 0 to say so.",
    );
    expect(validationSizeWarning({ validation: "val.jsonl", records: 100, validationExamples: 2 })).toBe(
      "the validation data has only 2 examples, so the validation loss is noise (fewer than 10); add records to it, or set data.validation to a fraction of train.",
    );
    expect(validationSizeWarning({ validation: "val.jsonl", records: 100, validationExamples: 10 })).toBeNull();
  });
});
