import { describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { toExamples, type ToExamplesParams } from "../../../src/data/formats.js";
import type { RecordSource } from "../../../src/data/read-records.js";

const source = (...values: Array<Record<string, unknown>>): RecordSource => ({
  file: "data.jsonl",
  records: values.map((value, index) => ({ line: index + 1, value })),
});
const params = (overrides: Partial<ToExamplesParams> = {}): ToExamplesParams => ({ format: "auto", fields: {}, hasChatTemplate: true, ...overrides });
const user = (content: string) => ({ role: "user", content });
const assistant = (content: string) => ({ role: "assistant", content });

function failure(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    return error instanceof Error ? error.message : "";
  }
  throw new Error("expected a UserError");
}

describe("toExamples: auto-detection", () => {
  it("messages → chat", () => {
    const messages = [{ role: "system", content: "s" }, user("u"), assistant("a"), { role: "tool", content: "t" }, assistant("b")];
    expect(toExamples(source({ messages, id: 1 }), params())).toEqual({ format: "chat", examples: [{ kind: "chat", messages }] });
  });

  it("instruction + output → alpaca; prompt + completion → completion; text → text", () => {
    expect(toExamples(source({ instruction: "i", output: "o" }), params()).format).toBe("alpaca");
    expect(toExamples(source({ prompt: "p", completion: "c" }), params())).toEqual({
      format: "completion",
      examples: [{ kind: "completion", prompt: "p", completion: "c" }],
    });
    expect(toExamples(source({ text: "t", meta: 1 }), params())).toEqual({ format: "text", examples: [{ kind: "text", text: "t" }] });
  });

  it("messages win over the other fields, alpaca over prompt/completion", () => {
    expect(toExamples(source({ text: "t", messages: [user("u"), assistant("a")] }), params()).format).toBe("chat");
    expect(toExamples(source({ prompt: "p", completion: "c", instruction: "i", output: "o" }), params()).format).toBe("alpaca");
  });

  it("renames map our names to the dataset's fields before detection", () => {
    const renamed = toExamples(source({ question: "q?", answer: "a!" }), params({ fields: { prompt: "question", completion: "answer" } }));
    expect(renamed).toEqual({ format: "completion", examples: [{ kind: "completion", prompt: "q?", completion: "a!" }] });
    const body = toExamples(source({ body: "t" }), params({ fields: { text: "body" } }));
    expect(body.examples).toEqual([{ kind: "text", text: "t" }]);
  });

  it("renames reach inside chat messages (e.g. from/value)", () => {
    const conversations = [
      { from: "user", value: "u" },
      { from: "assistant", value: "a" },
    ];
    const result = toExamples(source({ conversations }), params({ fields: { messages: "conversations", role: "from", content: "value" } }));
    expect(result.examples).toEqual([{ kind: "chat", messages: [user("u"), assistant("a")] }]);
  });

  it("unrecognised fields name the file, the fields found and the formats expected", () => {
    expect(failure(() => toExamples(source({ question: "q", answer: "a" }), params()))).toBe(
      'data.jsonl:1: cannot tell the data format from the fields "question", "answer"; expected one of ' +
        "chat (messages), alpaca (instruction + output), completion (prompt + completion), text (text). " +
        "Rename fields in the recipe, e.g. data.fields: {prompt: question, completion: answer}, or set data.format.",
    );
  });

  it("an unknown rename key is refused with the names we read", () => {
    expect(failure(() => toExamples(source({ text: "t" }), params({ fields: { promt: "q" } })))).toContain('data.fields: "promt" is not a field we read');
  });
});

describe("toExamples: alpaca", () => {
  const records = source({ instruction: "Add.", input: "2 + 2", output: "4" }, { instruction: "Greet.", output: "Hi", input: "" });

  it("with a chat template: user = instruction (+ blank line + input), assistant = output", () => {
    expect(toExamples(records, params()).examples).toEqual([
      { kind: "chat", messages: [user("Add.\n\n2 + 2"), assistant("4")] },
      { kind: "chat", messages: [user("Greet."), assistant("Hi")] },
    ]);
  });

  it("without one: the classic Alpaca prompt layout, completion = output", () => {
    const [withInput, withoutInput] = toExamples(records, params({ hasChatTemplate: false })).examples;
    expect(withInput).toEqual({
      kind: "completion",
      prompt: expect.stringMatching(/^Below is an instruction.*\n\n### Instruction:\nAdd\.\n\n### Input:\n2 \+ 2\n\n### Response:\n$/s) as unknown,
      completion: "4",
    });
    expect(withoutInput).toEqual({
      kind: "completion",
      prompt: expect.stringMatching(/^Below is an instruction.*\n\n### Instruction:\nGreet\.\n\n### Response:\n$/s) as unknown,
      completion: "Hi",
    });
  });
});

describe("toExamples: every record is checked, with file:line", () => {
  it("a missing field", () => {
    const records = source({ instruction: "i", output: "o" }, { instruction: "i", output: "o" }, { instruction: "i" });
    expect(failure(() => toExamples(records, params()))).toBe(
      'data.jsonl:3: missing field "output" (format alpaca); it has "instruction"; if one of them holds it, set data.fields: {output: <that field>}.',
    );
  });

  it("a missing renamed field names the dataset's field and ours", () => {
    const records = source({ question: "q", answer: "a" }, { question: "q" });
    expect(failure(() => toExamples(records, params({ fields: { prompt: "question", completion: "answer" } })))).toBe(
      'data.jsonl:2: missing field "answer" (our "completion") (format completion); it has "question"; if one of them holds it, set data.fields: {completion: <that field>}.',
    );
  });

  it("a non-string field", () => {
    expect(failure(() => toExamples(source({ text: "ok" }, { text: 42 }), params()))).toBe('data.jsonl:2: field "text" must be a string, got a number 42 (format text).');
    expect(failure(() => toExamples(source({ instruction: "i", input: 3, output: "o" }), params()))).toContain('data.jsonl:1: field "input" must be a string');
  });

  it("an explicit format reads its own fields regardless of the others", () => {
    expect(failure(() => toExamples(source({ text: "t" }), params({ format: "completion" })))).toBe(
      'data.jsonl:1: missing field "prompt" (format completion); it has "text"; if one of them holds it, set data.fields: {prompt: <that field>}.',
    );
    expect(failure(() => toExamples(source({}), params({ format: "chat" })))).toBe('data.jsonl:1: missing field "messages" (format chat); it has no fields.');
  });

  it("without a recipe to rename fields in (eval --data), the advice is to rename them in the file", () => {
    expect(failure(() => toExamples(source({ prompt: "p", answer: "a" }), params({ format: "completion", renames: "file" })))).toBe(
      'data.jsonl:1: missing field "completion" (format completion); it has "prompt", "answer"; if one of them holds it, rename it to "completion" in the file.',
    );
    const undetected = failure(() => toExamples(source({ question: "q" }), params({ renames: "file" })));
    expect(undetected).toContain('cannot tell the data format from the fields "question"');
    expect(undetected).toContain("Rename the fields in the file to one of these.");
    expect(undetected).not.toContain("recipe");
  });

  it("chat: messages must be a non-empty list of {role, content} strings", () => {
    const chat = (messages: unknown) => failure(() => toExamples(source({ messages: [user("u"), assistant("a")] }, { messages }), params()));
    expect(chat([])).toContain("data.jsonl:2: field \"messages\" must be a non-empty list of {role, content}, got an array");
    expect(chat("hi")).toContain('data.jsonl:2: field "messages" must be a non-empty list');
    expect(chat(["hi"])).toContain("data.jsonl:2: message 1 must be an object {role, content}");
    expect(chat([user("u"), { role: "assistant", content: null }])).toContain('data.jsonl:2: message 2: "content" must be a string, got null');
    expect(chat([{ content: "u" }])).toContain('data.jsonl:2: message 1: "role" must be a string');
  });

  it("chat: an unknown role names file:line and the role", () => {
    const records = source({ messages: [user("u"), assistant("a")] }, { messages: [{ role: "human", content: "u" }, assistant("a")] });
    expect(failure(() => toExamples(records, params()))).toBe(
      'data.jsonl:2: message 1: unknown role "human"; roles are system, user, assistant, tool (format chat).',
    );
  });

  it("chat: a conversation without an assistant message", () => {
    const records = source({ messages: [user("u"), { role: "system", content: "s" }] });
    expect(failure(() => toExamples(records, params()))).toBe(
      "data.jsonl:1: the conversation has no assistant message, so there is nothing to learn from it (format chat).",
    );
  });

  it("chat data for a model without a chat template is refused up front", () => {
    expect(failure(() => toExamples(source({ messages: [user("u"), assistant("a")] }), params({ hasChatTemplate: false })))).toBe(
      'data.jsonl holds chat messages (field "messages"), but the model has no chat template to format them with. ' +
        "Use a chat-tuned (-Instruct) model, or use prompt/completion, alpaca or text records.",
    );
  });

  it("a chat format that was given, not detected, does not claim the file holds chat messages", () => {
    const prompts = source({ prompt: "p", completion: "c" });
    expect(failure(() => toExamples(prompts, params({ format: "chat", hasChatTemplate: false })))).toBe(
      "the data format is chat (set by data.format), but the model has no chat template to format conversations with. " +
        "Use a chat-tuned (-Instruct) model, or use prompt/completion, alpaca or text records and set data.format to match them (or auto).",
    );
    const second = failure(() => toExamples(prompts, params({ format: "chat", hasChatTemplate: false, formatOrigin: "the first data file a.jsonl" })));
    expect(second).toContain("the data format is chat (set by the first data file a.jsonl)");
    expect(second).not.toContain("holds chat messages");
  });
});
