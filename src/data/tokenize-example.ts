import { UserError } from "../errors.js";
import { renderChat, type ChatMessage } from "../tokenizer/chat.js";
import type { ModelTokenizer } from "../tokenizer/load.js";
import type { Example } from "./formats.js";
import { tokensInSpans, type CharSpan } from "./token-spans.js";

/** Token ids and, per token, 1 when the loss counts predicting it (from the previous position), else 0. */
export interface TokenizedExample {
  ids: number[];
  labels: Uint8Array;
}

export interface TokenizeParams {
  /** Train only on completions / assistant turns (the prompt is context, not something to imitate). */
  completionOnly: boolean;
}

/**
 * Tokenizes an example and marks the tokens to train on. Position 0 is never trained: nothing predicts it.
 * text: all tokens, then EOS. completion: prompt (masked when completionOnly) + completion + EOS.
 * chat: the model's own template; every assistant turn, end-of-turn marker included, is trained.
 * The whole text is encoded once, so the ids are exactly those the model sees at inference; the trained tokens are
 * the ones overlapping a trained character span.
 */
export function tokenizeExample(tokenizer: ModelTokenizer, example: Example, params: TokenizeParams): TokenizedExample {
  if (example.kind === "text") {
    return encodeMasked(tokenizer, example.text, [{ start: 0, end: example.text.length }], { eos: true, completionOnly: params.completionOnly });
  }
  if (example.kind === "completion") {
    const text = example.prompt + example.completion;
    return encodeMasked(tokenizer, text, [{ start: example.prompt.length, end: text.length }], { eos: true, completionOnly: params.completionOnly });
  }
  const { text, spans } = chatSpans(tokenizer, example.messages, params.completionOnly);
  return encodeMasked(tokenizer, text, spans, { eos: false, completionOnly: params.completionOnly });
}

/**
 * Encodes `text` once. The post_processor's specials (BOS) are added unless the text already starts with BOS;
 * specials it puts in front are context, ones it puts at the end belong with the text's last character.
 */
function encodeMasked(tokenizer: ModelTokenizer, text: string, spans: CharSpan[], options: { eos: boolean; completionOnly: boolean }): TokenizedExample {
  const bos = tokenizer.bosToken;
  const hasBos = bos !== null && bos !== "" && text.startsWith(bos);
  let ids: number[];
  let trained: boolean[];
  if (!options.completionOnly || spans.some((span) => span.start <= 0 && span.end >= text.length)) {
    // Everything is trained (plain text, or completion_only off): one encoding, no boundaries to find.
    ids = tokenizer.encode(text, { addSpecialTokens: !hasBos });
    trained = ids.map(() => true);
  } else {
    const core = tokenizer.encode(text, { addSpecialTokens: false });
    const { front: before, back: after } = hasBos ? { front: [], back: [] } : tokenizer.specialsAround(text);
    ids = [...before, ...core, ...after];
    const front = before.length;
    const inSpan = tokensInSpans(tokenizer, text, core, spans);
    const endTrained = spans.some((span) => span.start < span.end && span.end >= text.length);
    trained = ids.map((_, i) => (i < front ? false : i < front + core.length ? (inSpan[i - front] ?? false) : endTrained));
  }
  // Without EOS the model never learns to stop; a tokenizer that already ended the text with one needs no second.
  if (options.eos && !tokenizer.eosIds.includes(ids[ids.length - 1] ?? -1)) {
    ids.push(eosId(tokenizer));
    trained.push(true);
  }
  const labels = Uint8Array.from(trained, (value) => (value ? 1 : 0));
  if (labels.length > 0) labels[0] = 0;
  return { ids, labels };
}

function eosId(tokenizer: ModelTokenizer): number {
  const [eos] = tokenizer.eosIds;
  if (eos === undefined) {
    throw new UserError(
      "the model's tokenizer defines no end-of-sequence token (eos_token in tokenizer_config.json or eos_token_id in " +
        "generation_config.json), so a fine-tuned model could not learn to stop; use chat data with a chat template, or fix the tokenizer config.",
    );
  }
  return eos;
}

/** The rendered conversation and the character span of each assistant turn in it. */
function chatSpans(tokenizer: ModelTokenizer, messages: ChatMessage[], completionOnly: boolean): { text: string; spans: CharSpan[] } {
  const full = renderChat(tokenizer, messages, { addGenerationPrompt: false });
  const spans: CharSpan[] = [];
  let cursor = 0;
  messages.forEach((message, index) => {
    if (message.role !== "assistant") return;
    // The conversation up to this turn, rendered once for both ways of finding its span (null: the template refused
    // the partial conversation, e.g. one ending in a tool call; the content search still works).
    const before = renderPartial(tokenizer, messages.slice(0, index), true);
    const through = renderPartial(tokenizer, messages.slice(0, index + 1), false);
    const span = renderedSpan(before, through, full, cursor) ?? fallbackSpan(through, message.content, full, cursor, tokenizer.eosToken);
    if (span === null) {
      // Without a span nothing is masked differently, so only completion-only training needs one.
      if (!completionOnly) return;
      throw new UserError(
        `the model's chat template changes the text of assistant message ${index + 1}, so its tokens cannot be located ` +
          `for completion-only training; set train.completion_only: false to train on the whole conversation.`,
      );
    }
    spans.push({ start: span[0], end: span[1] });
    cursor = span[1];
  });
  return { text: full, spans };
}

/**
 * The span an assistant turn adds, found by rendering rather than guessing: from the end of the conversation so far
 * with the generation prompt (P) to the end of the conversation including this turn (Q). It therefore covers the
 * reply and the template's end-of-turn marker, which the model must learn to emit. Null when the template renders
 * earlier turns differently once later ones follow (then P and Q are not prefixes of the whole).
 */
function renderedSpan(before: string | null, through: string | null, full: string, cursor: number): [number, number] | null {
  if (before === null || through === null) return null;
  if (!full.startsWith(before) || !full.startsWith(through) || before.length < cursor || through.length <= before.length) return null;
  return [before.length, through.length];
}

function renderPartial(tokenizer: ModelTokenizer, messages: ChatMessage[], addGenerationPrompt: boolean): string | null {
  try {
    return renderChat(tokenizer, messages, { addGenerationPrompt });
  } catch {
    return null;
  }
}

/**
 * Fallback: the message's own text, searched after the previous span. Reasoning templates (Qwen3, SmolLM3) drop
 * the <think>…</think> block of turns before the last user message, so the answer after it is searched too.
 */
function contentSpan(full: string, content: string, cursor: number): [number, number] | null {
  const answer = content.includes("</think>") ? (content.split("</think>").at(-1) ?? "").replace(/^\n+/, "") : "";
  for (const text of [content, content.trim(), answer, answer.trim()]) {
    if (text === "") continue;
    const at = full.indexOf(text, cursor);
    if (at >= 0) return [at, at + text.length];
  }
  return null;
}

/**
 * Where the template renders a turn differently once later turns follow (Qwen3 drops earlier reasoning; Phi-3 ends
 * only the whole conversation with EOS): the message's text, then the end-of-turn marker the template writes after
 * it — what follows the text both here and where this turn is the last one rendered ("<|end|>\n"), in whole lines
 * unless all of it, or else the EOS token written right after it.
 */
function fallbackSpan(through: string | null, content: string, full: string, cursor: number, eosToken: string | null): [number, number] | null {
  const span = contentSpan(full, content, cursor);
  if (span === null) return null;
  const text = full.slice(span[0], span[1]);
  const at = through === null ? -1 : through.lastIndexOf(text);
  if (through !== null && at >= 0) {
    const tail = through.slice(at + text.length);
    let shared = 0;
    while (shared < tail.length && full[span[1] + shared] === tail[shared]) shared += 1;
    // Where the two part ways inside a line ("<|end|>\n<|" before "user|>" and "endoftext|>"), keep whole lines.
    const marker = shared === tail.length ? shared : tail.lastIndexOf("\n", shared - 1) + 1;
    if (marker > 0) return [span[0], span[1] + marker];
  }
  return throughEndMarker(full, span, eosToken);
}

/**
 * A fallback span stretched over the end-of-turn marker when the template writes the EOS token right after the
 * text (ChatML's <|im_end|>), and the newline after it, as a rendered span would include them: the model must learn
 * to end its turn.
 */
function throughEndMarker(full: string, span: [number, number], eosToken: string | null): [number, number] {
  if (eosToken === null || eosToken === "" || !full.startsWith(eosToken, span[1])) return span;
  const end = span[1] + eosToken.length;
  return [span[0], full[end] === "\n" ? end + 1 : end];
}
