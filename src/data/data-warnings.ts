import type { Example } from "./formats.js";

/** An example and where its record is, for messages that point at the data. */
export interface PlacedExample {
  example: Example;
  where: string;
}

// Fewer held-out examples than this give a validation loss too noisy to compare evaluations or stop early on.
const MIN_VALIDATION = 10;

/**
 * A chat template that writes the date it is rendered (strftime_now: SmolLM3's system header carries "Today Date")
 * makes the trained tokens depend on the day: a `reproduce`, or a `--resume`, on another day renders other text.
 */
export function datedTemplateWarning(examples: PlacedExample[], chatTemplate: string | null): string | null {
  if (chatTemplate === null || !/\bstrftime_now\s*\(/.test(chatTemplate) || !examples.some(({ example }) => example.kind === "chat")) return null;
  return (
    "the model's chat template writes the date it is rendered on (strftime_now) into each conversation, so the tokens " +
    "trained depend on the day: `finetune reproduce` or `--resume` on another day renders different text and cannot " +
    "match byte for byte. Keep the run within one day, or use a template without the date (SmolLM3: a system message " +
    "containing /system_override replaces its dated header)."
  );
}

/** Empty texts, completions or assistant replies: they teach the model only to end at once, rarely what was meant. */
export function emptyExampleWarning(examples: PlacedExample[]): string | null {
  const empty = examples.filter(({ example }) => isEmpty(example));
  const first = empty[0];
  if (first === undefined) return null;
  const what = first.example.kind === "chat" ? "assistant reply" : first.example.kind;
  const shown = empty.slice(0, 3).map((entry) => entry.where).join(", ");
  const more = empty.length > 3 ? ` and ${empty.length - 3} more` : "";
  const field = first.example.kind === "chat" ? "content" : first.example.kind;
  return (
    `${empty.length} of ${examples.length} record${examples.length === 1 ? "" : "s"} ha${empty.length === 1 ? "s" : "ve"} ` +
    `${first.example.kind === "chat" ? "only empty assistant replies" : `an empty ${what}`} (${shown}${more}); each teaches the model only to stop at once. ` +
    `Remove ${empty.length === 1 ? "it" : "them"}, or point data.fields at the field that holds the ${field}.`
  );
}

function isEmpty(example: Example): boolean {
  if (example.kind === "text") return example.text.trim() === "";
  if (example.kind === "completion") return example.completion.trim() === "";
  return example.messages.filter((message) => message.role === "assistant").every((message) => message.content.trim() === "");
}

export interface ValidationSizeParams {
  /** data.validation: a held-out fraction, or a file spec. */
  validation: number | string | string[];
  records: number;
  validationExamples: number;
}

/** A validation set too small to mean anything, or a fraction that held out nothing. */
export function validationSizeWarning(params: ValidationSizeParams): string | null {
  const { validation, records, validationExamples: held } = params;
  if (typeof validation === "number") {
    if (validation === 0) return null;
    if (held === 0) {
      return `data.validation: ${validation} holds out nothing from ${records} record${records === 1 ? "" : "s"}, so there is no validation loss; add data, or set data.validation: 0 to say so.`;
    }
    if (held >= MIN_VALIDATION) return null;
    return (
      `data.validation: ${validation} holds out only ${held} of ${records} records, so the validation loss is noise (fewer than ${MIN_VALIDATION} examples); ` +
      `use more data or a larger fraction, a validation file, or data.validation: 0 to turn validation off.`
    );
  }
  if (held >= MIN_VALIDATION) return null;
  return (
    `the validation data has only ${held} example${held === 1 ? "" : "s"}, so the validation loss is noise (fewer than ${MIN_VALIDATION}); ` +
    `add records to it, or set data.validation to a fraction of train.`
  );
}
