import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { datedTemplateWarning, emptyExampleWarning, validationSizeWarning, type PlacedExample } from "../../../src/data/data-warnings.js";
import { ROOT } from "../../helpers/run-cli.js";

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

describe("datedTemplateWarning", () => {
  const templates = JSON.parse(readFileSync(join(ROOT, "test", "fixtures", "chat-templates.json"), "utf8")) as Record<string, { template: string }>;
  const chat: PlacedExample = { example: { kind: "chat", messages: [{ role: "user", content: "Hi" }, { role: "assistant", content: "Hello" }] }, where: "c.jsonl:1" };

  it("warns for conversations rendered by a template that writes today's date (SmolLM3's), and says what to do", () => {
    expect(datedTemplateWarning([chat], templates.smollm3?.template ?? null)).toBe(
      "the model's chat template writes the date it is rendered on (strftime_now) into each conversation, so the tokens " +
        "trained depend on the day: `finetune reproduce` or `--resume` on another day renders different text and cannot " +
        "match byte for byte. Keep the run within one day, or use a template without the date (SmolLM3: a system message " +
        "containing /system_override replaces its dated header).",
    );
  });

  it("says nothing for templates without the date, plain text, or no template", () => {
    expect(datedTemplateWarning([chat], templates.qwen3?.template ?? null)).toBeNull();
    expect(datedTemplateWarning([text("a", 1)], templates.smollm3?.template ?? null)).toBeNull();
    expect(datedTemplateWarning([chat], null)).toBeNull();
  });
});
