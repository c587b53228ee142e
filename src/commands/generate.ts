import type { CommandContext } from "../context.js";
import type { Quantize } from "../model/quantize.js";
import { Interrupted, UserError } from "../errors.js";
import { stopCause } from "../interrupt.js";
import { generate } from "../model/generate.js";
import { checkSampling } from "../model/sampling.js";
import { encodeChat, type ChatMessage } from "../tokenizer/chat.js";
import { loadRuntime, round } from "./load-runtime.js";

interface GenerateOptions {
  model: string;
  adapter?: string;
  /** One of QUANTIZE_CHOICES: commander has checked it. */
  quantize?: Quantize;
  prompt: string;
  chat?: boolean;
  system?: string;
  maxNewTokens?: string;
  temperature?: string;
  topK?: string;
  topP?: string;
  seed?: string;
  stop?: string[];
}

/** `finetune generate`: prints a continuation of the prompt, streaming tokens as they decode. */
export async function run(context: CommandContext, _args: string[], options: GenerateOptions): Promise<void> {
  const { reporter } = context;
  const number = (flag: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const parsed = Number(value);
    if (value.trim() === "" || !Number.isFinite(parsed)) throw new UserError(`${flag} ${JSON.stringify(value)} is not a number.`);
    return parsed;
  };
  const maxNewTokens = number("--max-new-tokens", options.maxNewTokens);
  if (maxNewTokens !== undefined && (!Number.isInteger(maxNewTokens) || maxNewTokens < 1)) {
    throw new UserError(`--max-new-tokens ${maxNewTokens} must be a whole number ≥ 1.`);
  }
  const flags = { temperature: number("--temperature", options.temperature), topK: number("--top-k", options.topK), topP: number("--top-p", options.topP) };
  // Validate what the user typed before loading anything.
  checkSampling({ temperature: flags.temperature ?? 0, topK: flags.topK ?? 0, topP: flags.topP ?? 1 });
  const seed = number("--seed", options.seed) ?? 0;
  if (options.system !== undefined && !options.chat) throw new UserError("--system only applies with --chat.");

  const runtime = await loadRuntime(context, options.model, options.adapter, options.quantize, true);
  const { tokenizer, model, backend } = runtime;
  const defaults = tokenizer.generationDefaults;
  // Flags win; otherwise the model's generation_config.json; otherwise greedy.
  const sampled = defaults.doSample === true;
  const sampling = checkSampling({
    temperature: flags.temperature ?? (sampled ? (defaults.temperature ?? 1) : 0),
    topK: flags.topK ?? (sampled ? (defaults.topK ?? 0) : 0),
    topP: flags.topP ?? (sampled ? (defaults.topP ?? 1) : 1),
  });
  const messages: ChatMessage[] = [...(options.system !== undefined ? [{ role: "system", content: options.system }] : []), { role: "user", content: options.prompt }];
  const promptIds = options.chat ? encodeChat(tokenizer, messages, { addGenerationPrompt: true }) : tokenizer.encode(options.prompt);
  const context_ = model.config.maxPositions;
  if (promptIds.length >= context_) {
    throw new UserError(`the prompt is ${promptIds.length} tokens but the model's context is ${context_} tokens; shorten the prompt to leave room for the answer.`);
  }
  // Not capped by the context: the decoder stops there itself and says so (stop_reason "context").
  const maxNew = maxNewTokens ?? defaults.maxNewTokens ?? 256;

  const started = performance.now();
  const result = await generate({
    model,
    promptIds,
    maxNewTokens: maxNew,
    sampling,
    seed,
    eosIds: tokenizer.eosIds,
    stopStrings: options.stop ?? [],
    decode: (ids) => tokenizer.decode(ids, { skipSpecialTokens: true }),
    onText: reporter.json ? (text) => reporter.event("token", { text }) : (text) => reporter.stdout.write(text),
    signal: context.signal,
  });
  const seconds = (performance.now() - started) / 1000;
  model.dispose();
  const tokens = result.ids.length;
  if (!reporter.json) reporter.stdout.write("\n");
  if (result.stopReason === "context") {
    reporter.warn(`stopped after ${tokens} new tokens: the model's context of ${context_} tokens is full (the prompt takes ${promptIds.length}); shorten the prompt for a longer answer.`);
  }
  const decodeRate = result.decodeSteps > 0 ? result.decodeSteps / Math.max(result.decodeSeconds, 1e-9) : null;
  reporter.debug(
    `${tokens} tokens in ${seconds.toFixed(2)} s, stopped by ${result.stopReason}: prompt of ${promptIds.length} in ${result.prefillSeconds.toFixed(3)} s` +
      `${decodeRate === null ? "" : `, then ${decodeRate.toFixed(1)} tok/s`} (${result.decoder === "native" ? "native decoder" : "tfjs forward pass"})`,
  );
  if (reporter.json) {
    reporter.result(
      {
        text: result.text,
        prompt_ids: promptIds,
        ids: result.ids,
        tokens,
        seconds: round(seconds),
        tokens_per_second: round(tokens / Math.max(seconds, 1e-9), 2),
        prefill_seconds: round(result.prefillSeconds),
        decode_tokens_per_second: decodeRate === null ? null : round(decodeRate, 2),
        decoder: result.decoder,
        stop_reason: result.stopReason,
      },
      () => "",
    );
  }
  // What was generated is shown above; the exit code still says the answer was cut short.
  if (result.stopReason === "interrupted") throw new Interrupted(`interrupted by ${stopCause(context.signal)} after ${tokens} generated token${tokens === 1 ? "" : "s"}`);
}
