import type { DataFormat, Example } from "../data/formats.js";
import { toExamples } from "../data/formats.js";
import { readRecords } from "../data/read-records.js";
import { resolveDataFiles } from "../data/resolve-files.js";
import { splitValidation } from "../data/split-shuffle.js";
import type { Recipe } from "../recipe/schema.js";
import type { ChatMessage } from "../tokenizer/chat.js";

/** The recipe's data as finetune reads it: examples after format detection, renames, Alpaca rendering and the split. */
export interface ConvertedData {
  format: DataFormat;
  train: Example[];
  validation: Example[];
  /** Where the validation examples come from: the seeded split of train, the recipe's own file(s), or none. */
  validationFrom: "split" | "file" | "none";
  sources: string[];
}

/**
 * Reads every data file the way `finetune train` does (same resolution, same format rules, same seeded validation
 * split), so the files written for another trainer hold exactly the examples finetune would have trained on.
 */
export async function readRecipeExamples(params: { recipe: Recipe; baseDir: string; env: NodeJS.ProcessEnv; hasChatTemplate: boolean; token?: string | undefined; signal?: AbortSignal | undefined }): Promise<ConvertedData> {
  const { recipe } = params;
  let format: DataFormat | null = recipe.data.format === "auto" ? null : recipe.data.format;
  let formatOrigin = "data.format";
  const sources: string[] = [];
  const read = async (spec: string | string[], split: "train" | "validation"): Promise<Example[]> => {
    const examples: Example[] = [];
    for (const path of await resolveDataFiles(spec, { baseDir: params.baseDir, env: params.env, token: params.token, signal: params.signal, split })) {
      const converted = toExamples(await readRecords(path), { format: format ?? "auto", fields: recipe.data.fields, hasChatTemplate: params.hasChatTemplate, formatOrigin });
      if (format === null) formatOrigin = `the first data file ${path}`;
      format = converted.format;
      for (const example of converted.examples) examples.push(example);
      sources.push(path);
    }
    return examples;
  };
  const all = await read(recipe.data.train, "train");
  const validation = recipe.data.validation;
  const split = typeof validation === "number" ? splitValidation(all, validation, recipe.train.seed) : { train: all, validation: await read(validation, "validation") };
  const validationFrom = typeof validation === "string" ? "file" : split.validation.length > 0 ? "split" : "none";
  return { format: format ?? "text", train: split.train, validation: split.validation, validationFrom, sources };
}

/** Every kind of example present (Alpaca becomes chat or completion, so a file may hold one kind only). */
export type ExampleKind = Example["kind"];

export function exampleKind(data: ConvertedData): ExampleKind {
  const first = data.train[0] ?? data.validation[0];
  return first?.kind ?? "text";
}

/** The special tokens written into Axolotl's template-free rows, where Axolotl adds none itself. */
export interface RowTokens {
  /** BOS text when the tokenizer puts one in front of every encoding (as finetune's tokenization then has it). */
  bos: string | null;
  eos: string | null;
}

/**
 * A row for Axolotl. text → {text} (type completion); completion → {segments} (type input_output: the prompt segment
 * unlabelled, the completion labelled, BOS and EOS written in since input_output adds no special tokens);
 * chat → {messages} (type chat_template).
 */
export function axolotlRow(example: Example, tokens: RowTokens): Record<string, unknown> {
  if (example.kind === "text") return { text: example.text };
  if (example.kind === "chat") return { messages: example.messages.map(plainMessage) };
  return {
    segments: [
      { label: false, text: `${tokens.bos ?? ""}${example.prompt}` },
      { label: true, text: `${example.completion}${tokens.eos ?? ""}` },
    ],
  };
}

/**
 * A row for TRL's SFTTrainer. text → {text}; completion → {prompt, completion}; chat → conversational
 * prompt-completion when `promptCompletionChat` (every conversation ends in its only assistant turn, so
 * completion_only_loss masks exactly what finetune masks), else {messages} for assistant_only_loss.
 */
export function trlRow(example: Example, promptCompletionChat: boolean): Record<string, unknown> {
  if (example.kind === "text") return { text: example.text };
  if (example.kind === "completion") return { prompt: example.prompt, completion: example.completion };
  const messages = example.messages.map(plainMessage);
  if (!promptCompletionChat) return { messages };
  return { prompt: messages.slice(0, -1), completion: messages.slice(-1) };
}

/** Whether every conversation has exactly one assistant turn and it is the last message. */
export function singleFinalAssistant(examples: Example[]): boolean {
  return examples.every((example) => example.kind !== "chat" || (example.messages.filter((m) => m.role === "assistant").length === 1 && example.messages[example.messages.length - 1]?.role === "assistant"));
}

function plainMessage(message: ChatMessage): { role: string; content: string } {
  return { role: message.role, content: message.content };
}

/** JSON Lines text: one row per line, ending in a newline. */
export function toJsonl(rows: Array<Record<string, unknown>>): string {
  return rows.map((row) => JSON.stringify(row)).join("\n") + (rows.length > 0 ? "\n" : "");
}
