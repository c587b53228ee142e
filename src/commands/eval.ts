import { readFile } from "node:fs/promises";
import type { CommandContext } from "../context.js";
import { errnoCode, UserError } from "../errors.js";
import { sequenceLoss } from "../model/evaluate.js";
import { loadRuntime, round } from "./load-runtime.js";

interface EvalOptions {
  model: string;
  adapter?: string;
  text?: string;
  data?: string;
}

/** `finetune eval`: mean next-token cross-entropy (nats) and perplexity over a text or a file. */
export async function run(context: CommandContext, _args: string[], options: EvalOptions): Promise<void> {
  if ((options.text === undefined) === (options.data === undefined)) throw new UserError("give exactly one of --text <text> or --data <file>.");
  const texts = options.text !== undefined ? [options.text] : await readTexts(options.data ?? "");
  const runtime = await loadRuntime(context, options.model, options.adapter);
  const { tokenizer, model, backend } = runtime;
  let sum = 0;
  let count = 0;
  for (const text of texts) {
    const part = sequenceLoss(backend.tf, model, tokenizer.encode(text), model.config.maxPositions);
    sum += part.sum;
    count += part.count;
  }
  model.dispose();
  if (count === 0) throw new UserError("nothing to evaluate: every text is shorter than two tokens.");
  const loss = sum / count;
  context.reporter.result({ loss: round(loss, 6), perplexity: round(Math.exp(loss), 4), tokens: count }, () =>
    `loss ${loss.toFixed(4)} nats · perplexity ${Math.exp(loss).toFixed(3)} · ${count} predicted tokens`,
  );
}

/** A .txt file is one text; JSONL takes the `text` field of every line. */
async function readTexts(path: string): Promise<string[]> {
  let raw: Buffer;
  try {
    raw = await readFile(path);
  } catch (error) {
    if (errnoCode(error) === "ENOENT") throw new UserError(`--data ${path}: no such file.`);
    throw error;
  }
  let content: string;
  try {
    content = new TextDecoder("utf-8", { fatal: true }).decode(raw);
  } catch {
    throw new UserError(`--data ${path} is not UTF-8 text; convert it to UTF-8.`);
  }
  if (!/\.jsonl$/i.test(path)) return [content];
  const texts: string[] = [];
  for (const [i, line] of content.split("\n").entries()) {
    if (line.trim() === "") continue;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      throw new UserError(`${path}:${i + 1}: not valid JSON.`);
    }
    if (typeof record !== "object" || record === null || !("text" in record) || typeof record.text !== "string") {
      throw new UserError(`${path}:${i + 1}: the record has no string field "text".`);
    }
    texts.push(record.text);
  }
  if (texts.length === 0) throw new UserError(`${path} has no records.`);
  return texts;
}
