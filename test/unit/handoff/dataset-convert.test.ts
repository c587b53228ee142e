import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { splitValidation } from "../../../src/data/split-shuffle.js";
import { axolotlRow, exampleKind, readRecipeExamples, singleFinalAssistant, toJsonl, trlRow } from "../../../src/handoff/dataset-convert.js";
import { parseRecipe } from "../../../src/recipe/load.js";
import { tempDir } from "../../helpers/run-cli.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const write = (name: string, rows: object[]) => writeFileSync(join(tmp.path, name), rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
const recipe = (data: string, train = "max_steps: 1") => parseRecipe(`model: org/tiny\ndata: ${data}\noutput: o\ntrain: {${train}}`, "r.yaml", [], {});

describe("converting the recipe's data as train reads it", () => {
  const qa = Array.from({ length: 8 }, (_, i) => ({ question: `q${i}`, answer: ` a${i}` }));
  write("qa.jsonl", qa);
  write("alpaca.jsonl", [{ instruction: "Add", input: "1 2", output: "3" }]);
  write("chat.jsonl", [{ messages: [{ role: "system", content: "s" }, { role: "user", content: "u" }, { role: "assistant", content: "a" }] }]);
  write("multi.jsonl", [{ messages: [{ role: "user", content: "u1" }, { role: "assistant", content: "a1" }, { role: "user", content: "u2" }, { role: "assistant", content: "a2" }] }]);

  it("applies data.fields and holds out the same seeded split as train", async () => {
    const data = await readRecipeExamples({ recipe: recipe("{train: qa.jsonl, validation: 0.25, fields: {prompt: question, completion: answer}}", "max_steps: 1, seed: 7"), baseDir: tmp.path, env: {}, hasChatTemplate: true });
    const all = qa.map((r) => ({ kind: "completion", prompt: r.question, completion: r.answer }));
    const expected = splitValidation(all, 0.25, 7);
    expect(data.format).toBe("completion");
    expect(data.train).toEqual(expected.train);
    expect(data.validation).toEqual(expected.validation);
    expect(data.validation).toHaveLength(2);
    expect(data.validationFrom).toBe("split");
    expect(exampleKind(data)).toBe("completion");
  });

  it("reads a validation file as its own set", async () => {
    const data = await readRecipeExamples({ recipe: recipe("{train: chat.jsonl, validation: multi.jsonl}"), baseDir: tmp.path, env: {}, hasChatTemplate: true });
    expect(data.validationFrom).toBe("file");
    expect(data.train).toHaveLength(1);
    expect(data.validation[0]).toEqual({ kind: "chat", messages: [{ role: "user", content: "u1" }, { role: "assistant", content: "a1" }, { role: "user", content: "u2" }, { role: "assistant", content: "a2" }] });
  });

  it("renders Alpaca as a chat for a model with a chat template and as finetune's prompt layout otherwise", async () => {
    const chat = await readRecipeExamples({ recipe: recipe("{train: alpaca.jsonl, validation: 0}"), baseDir: tmp.path, env: {}, hasChatTemplate: true });
    expect(chat.train).toEqual([{ kind: "chat", messages: [{ role: "user", content: "Add\n\n1 2" }, { role: "assistant", content: "3" }] }]);
    expect(chat.validationFrom).toBe("none");
    const base = await readRecipeExamples({ recipe: recipe("{train: alpaca.jsonl, validation: 0}"), baseDir: tmp.path, env: {}, hasChatTemplate: false });
    expect(base.train[0]).toMatchObject({ kind: "completion", completion: "3" });
    expect(base.train[0]?.kind === "completion" && base.train[0].prompt.endsWith("### Input:\n1 2\n\n### Response:\n")).toBe(true);
  });

  it("writes Axolotl rows: text, input_output segments with BOS/EOS, chat messages", () => {
    const tokens = { bos: "<s>", eos: "</s>" };
    expect(axolotlRow({ kind: "text", text: "hi" }, tokens)).toEqual({ text: "hi" });
    expect(axolotlRow({ kind: "completion", prompt: "Q:", completion: " A" }, tokens)).toEqual({ segments: [{ label: false, text: "<s>Q:" }, { label: true, text: " A</s>" }] });
    expect(axolotlRow({ kind: "completion", prompt: "Q:", completion: " A" }, { bos: null, eos: null })).toEqual({ segments: [{ label: false, text: "Q:" }, { label: true, text: " A" }] });
    expect(axolotlRow({ kind: "chat", messages: [{ role: "user", content: "u" }, { role: "assistant", content: "a" }] }, tokens)).toEqual({ messages: [{ role: "user", content: "u" }, { role: "assistant", content: "a" }] });
  });

  it("writes TRL rows: text, prompt/completion, conversational prompt-completion or messages", () => {
    const chat = { kind: "chat" as const, messages: [{ role: "system", content: "s" }, { role: "user", content: "u" }, { role: "assistant", content: "a" }] };
    expect(trlRow({ kind: "text", text: "hi" }, false)).toEqual({ text: "hi" });
    expect(trlRow({ kind: "completion", prompt: "Q:", completion: " A" }, false)).toEqual({ prompt: "Q:", completion: " A" });
    expect(trlRow(chat, true)).toEqual({ prompt: [{ role: "system", content: "s" }, { role: "user", content: "u" }], completion: [{ role: "assistant", content: "a" }] });
    expect(trlRow(chat, false)).toEqual({ messages: chat.messages });
  });

  it("uses prompt-completion chat only when every conversation ends in its one assistant turn", () => {
    const one = { kind: "chat" as const, messages: [{ role: "user", content: "u" }, { role: "assistant", content: "a" }] };
    const two = { kind: "chat" as const, messages: [...one.messages, { role: "user", content: "u2" }, { role: "assistant", content: "a2" }] };
    const trailingUser = { kind: "chat" as const, messages: [...one.messages, { role: "user", content: "u2" }] };
    expect(singleFinalAssistant([one])).toBe(true);
    expect(singleFinalAssistant([one, two])).toBe(false);
    expect(singleFinalAssistant([trailingUser])).toBe(false);
  });

  it("writes JSON Lines that parse back to the same rows", () => {
    const rows = [{ text: "a\nb" }, { text: "ü \"q\"" }];
    const text = toJsonl(rows);
    expect(text.endsWith("\n")).toBe(true);
    expect(text.trimEnd().split("\n").map((line) => JSON.parse(line) as unknown)).toEqual(rows);
    expect(toJsonl([])).toBe("");
  });
});
