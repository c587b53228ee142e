import { UserError } from "../errors.js";
import type { ChatMessage } from "../tokenizer/chat.js";
import { describeValue } from "./describe-value.js";
import type { DataRecord, RecordSource } from "./read-records.js";

/** A training example before tokenization. */
export type Example =
  | { kind: "text"; text: string }
  | { kind: "completion"; prompt: string; completion: string }
  | { kind: "chat"; messages: ChatMessage[] };

export type DataFormat = "text" | "alpaca" | "chat" | "completion";

export interface ToExamplesParams {
  format: "auto" | DataFormat;
  /** Renames, our name → the dataset's field name, e.g. {prompt: "question", completion: "answer"}. */
  fields: Record<string, string>;
  /** Alpaca records become chats when the model has a chat template, so they train in the format it is used in. */
  hasChatTemplate: boolean;
  /** Where a given `format` came from, for errors: "data.format" (default) or e.g. "the first data file a.jsonl". */
  formatOrigin?: string | undefined;
  /**
   * How the user can map their field names: with the recipe's data.fields (default), or, where no recipe is read
   * (`eval --data`), only by renaming them in the file.
   */
  renames?: "recipe" | "file" | undefined;
}

/** The fields each format reads, by our names; `input` is optional in alpaca. */
const FORMAT_FIELDS: Record<DataFormat, string[]> = {
  chat: ["messages"],
  alpaca: ["instruction", "output"],
  completion: ["prompt", "completion"],
  text: ["text"],
};
// Also renameable: alpaca's optional input, and the keys inside chat messages (e.g. ShareGPT's from/value).
const KNOWN_FIELDS = ["messages", "instruction", "input", "output", "prompt", "completion", "text", "role", "content"];
const ROLES = ["system", "user", "assistant", "tool"];

/**
 * Converts records to examples. `auto` picks the format from the first record's fields (after renames): messages →
 * chat, instruction + output → alpaca, prompt + completion → completion, text → text. Every record is checked.
 */
export function toExamples(source: RecordSource, params: ToExamplesParams): { examples: Example[]; format: DataFormat } {
  checkRenames(params.fields);
  const field = (ours: string): string => params.fields[ours] ?? ours;
  const renames = params.renames ?? "recipe";
  const format = params.format === "auto" ? detect(source, field, renames) : params.format;
  if (format === "chat" && !params.hasChatTemplate) {
    // Only a detected format says anything about this file's records; a given one may not match them at all.
    const why =
      params.format === "auto"
        ? `${source.file} holds chat messages (field ${JSON.stringify(field("messages"))})`
        : `the data format is chat (set by ${params.formatOrigin ?? "data.format"})`;
    throw new UserError(
      `${why}, but the model has no chat template to format ${params.format === "auto" ? "them" : "conversations"} with. ` +
        `Use a chat-tuned (-Instruct) model, or use prompt/completion, alpaca or text records${params.format === "auto" || renames === "file" ? "" : " and set data.format to match them (or auto)"}.`,
    );
  }
  const read = new FieldReader(source.file, format, field, renames);
  const examples = source.records.map((record): Example => {
    if (format === "text") return { kind: "text", text: read.string(record, "text") };
    if (format === "completion") return { kind: "completion", prompt: read.string(record, "prompt"), completion: read.string(record, "completion") };
    if (format === "chat") return { kind: "chat", messages: read.messages(record) };
    return alpaca(read.string(record, "instruction"), read.optionalString(record, "input"), read.string(record, "output"), params.hasChatTemplate);
  });
  return { examples, format };
}

function detect(source: RecordSource, field: (ours: string) => string, renames: "recipe" | "file"): DataFormat {
  const first = source.records[0]?.value ?? {};
  const has = (ours: string): boolean => first[field(ours)] !== undefined;
  for (const format of ["chat", "alpaca", "completion", "text"] as const) {
    if (FORMAT_FIELDS[format].every(has)) return format;
  }
  const found = Object.keys(first).map((key) => JSON.stringify(key)).join(", ") || "none";
  const expected = (Object.entries(FORMAT_FIELDS) as Array<[DataFormat, string[]]>)
    .map(([format, names]) => `${format} (${names.map(field).join(" + ")})`)
    .join(", ");
  throw new UserError(
    `${source.file}:${source.records[0]?.line ?? 1}: cannot tell the data format from the fields ${found}; expected one of ${expected}. ` +
      (renames === "recipe"
        ? `Rename fields in the recipe, e.g. data.fields: {prompt: question, completion: answer}, or set data.format.`
        : `Rename the fields in the file to one of these.`),
  );
}

function checkRenames(fields: Record<string, string>): void {
  const unknown = Object.keys(fields).filter((name) => !KNOWN_FIELDS.includes(name));
  if (unknown.length > 0) {
    throw new UserError(
      `data.fields: ${unknown.map((n) => JSON.stringify(n)).join(", ")} ${unknown.length === 1 ? "is" : "are"} not a field we read; ` +
        `the keys are our names (${KNOWN_FIELDS.join(", ")}) and the values your dataset's names, e.g. {prompt: question}.`,
    );
  }
}

/** Reads and checks fields, naming the record's file:line and the dataset's own field name in every error. */
class FieldReader {
  constructor(
    private readonly file: string,
    private readonly format: DataFormat,
    private readonly field: (ours: string) => string,
    private readonly renames: "recipe" | "file",
  ) {}

  string(record: DataRecord, ours: string): string {
    const value = record.value[this.field(ours)];
    if (value === undefined || value === null) throw this.missing(record, ours);
    if (typeof value !== "string") throw this.error(record, `field ${this.name(ours)} must be a string, got ${describeValue(value)}`);
    return value;
  }

  optionalString(record: DataRecord, ours: string): string {
    const value = record.value[this.field(ours)];
    return value === undefined || value === null ? "" : this.string(record, ours);
  }

  messages(record: DataRecord): ChatMessage[] {
    const value = record.value[this.field("messages")];
    if (value === undefined || value === null) throw this.missing(record, "messages");
    if (!Array.isArray(value) || value.length === 0) {
      throw this.error(record, `field ${this.name("messages")} must be a non-empty list of {role, content}, got ${describeValue(value)}`);
    }
    const roleKey = this.field("role");
    const contentKey = this.field("content");
    const messages = value.map((message: unknown, index): ChatMessage => {
      const where = `message ${index + 1}`;
      if (typeof message !== "object" || message === null || Array.isArray(message)) {
        throw this.error(record, `${where} must be an object {${roleKey}, ${contentKey}}, got ${describeValue(message)}`);
      }
      const role: unknown = Reflect.get(message, roleKey);
      const content: unknown = Reflect.get(message, contentKey);
      if (typeof role !== "string") throw this.error(record, `${where}: "${roleKey}" must be a string, got ${describeValue(role)}`);
      if (!ROLES.includes(role)) {
        throw this.error(record, `${where}: unknown role ${JSON.stringify(role)}; roles are ${ROLES.join(", ")}`);
      }
      if (typeof content !== "string") throw this.error(record, `${where}: "${contentKey}" must be a string, got ${describeValue(content)}`);
      return { role, content };
    });
    if (!messages.some((message) => message.role === "assistant")) {
      throw this.error(record, "the conversation has no assistant message, so there is nothing to learn from it");
    }
    return messages;
  }

  private name(ours: string): string {
    const theirs = this.field(ours);
    return theirs === ours ? JSON.stringify(ours) : `${JSON.stringify(theirs)} (our "${ours}")`;
  }

  private error(record: DataRecord, message: string): UserError {
    return new UserError(`${this.file}:${record.line}: ${message} (format ${this.format}).`);
  }

  /** A missing field: names the fields the record does have, so a misnamed one can be renamed with data.fields. */
  private missing(record: DataRecord, ours: string): UserError {
    const present = Object.keys(record.value);
    const has = present.length === 0 ? "it has no fields" : `it has ${present.map((key) => JSON.stringify(key)).join(", ")}`;
    const rename =
      present.length === 0
        ? ""
        : this.renames === "recipe"
          ? `; if one of them holds it, set data.fields: {${ours}: <that field>}`
          : `; if one of them holds it, rename it to ${JSON.stringify(ours)} in the file`;
    return new UserError(`${this.file}:${record.line}: missing field ${this.name(ours)} (format ${this.format}); ${has}${rename}.`);
  }
}

/**
 * Alpaca as a chat for chat models; otherwise the classic Alpaca prompt layout (its wording here is ours), so a
 * base model learns the layout it will be prompted with.
 */
function alpaca(instruction: string, input: string, output: string, asChat: boolean): Example {
  if (asChat) {
    const user = input === "" ? instruction : `${instruction}\n\n${input}`;
    return { kind: "chat", messages: [{ role: "user", content: user }, { role: "assistant", content: output }] };
  }
  const prompt =
    input === ""
      ? `Below is an instruction describing a task. Write a response that completes the request.\n\n### Instruction:\n${instruction}\n\n### Response:\n`
      : `Below is an instruction describing a task, paired with an input giving more context. ` +
        `Write a response that completes the request.\n\n### Instruction:\n${instruction}\n\n### Input:\n${input}\n\n### Response:\n`;
  return { kind: "completion", prompt, completion: output };
}
