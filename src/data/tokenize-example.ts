import { UserError } from "../errors.js";
import { renderChat, type ChatMessage } from "../tokenizer/chat.js";
import type { ModelTokenizer } from "../tokenizer/load.js";
import type { Example } from "./formats.js";

/** Token ids and, per token, 1 when the loss counts predicting it (from the previous position), else 0. */
export interface TokenizedExample {
  ids: number[];
  labels: Uint8Array;
}

export interface TokenizeParams {
  /** Train only on completions / assistant turns (the prompt is context, not something to imitate). */
  completionOnly: boolean;
}

interface Piece {
  text: string;
  trained: boolean;
}

/**
 * Tokenizes an example and marks the tokens to train on. Position 0 is never trained: nothing predicts it.
 * text: all tokens, then EOS. completion: prompt (masked when completionOnly) + completion + EOS.
 * chat: the model's own template; every assistant turn, end-of-turn marker included, is trained.
 */
export function tokenizeExample(tokenizer: ModelTokenizer, example: Example, params: TokenizeParams): TokenizedExample {
  if (example.kind === "text") {
    return fromPieces(tokenizer, [{ text: example.text, trained: true }], { eos: true, completionOnly: params.completionOnly });
  }
  if (example.kind === "completion") {
    const pieces = [
      { text: example.prompt, trained: false },
      { text: example.completion, trained: true },
    ];
    return fromPieces(tokenizer, pieces, { eos: true, completionOnly: params.completionOnly });
  }
  return fromPieces(tokenizer, chatPieces(tokenizer, example.messages, params.completionOnly), { eos: false, completionOnly: params.completionOnly });
}

/**
 * Encodes pieces separately so every boundary between masked and trained text is a token boundary. Only the
 * first piece gets the post_processor's specials (BOS), and not when the text already starts with BOS.
 */
function fromPieces(tokenizer: ModelTokenizer, pieces: Piece[], options: { eos: boolean; completionOnly: boolean }): TokenizedExample {
  const ids: number[] = [];
  const trained: boolean[] = [];
  const bos = tokenizer.bosToken;
  pieces.forEach((piece, index) => {
    const hasBos = bos !== null && bos !== "" && piece.text.startsWith(bos);
    const pieceIds = tokenizer.encode(piece.text, { addSpecialTokens: index === 0 && !hasBos });
    for (const id of pieceIds) {
      ids.push(id);
      trained.push(piece.trained || !options.completionOnly);
    }
  });
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

/** The rendered conversation cut into masked and trained pieces at each assistant turn's span. */
function chatPieces(tokenizer: ModelTokenizer, messages: ChatMessage[], completionOnly: boolean): Piece[] {
  const full = renderChat(tokenizer, messages, { addGenerationPrompt: false });
  const spans: Array<[number, number]> = [];
  let cursor = 0;
  messages.forEach((message, index) => {
    if (message.role !== "assistant") return;
    const span = renderedSpan(tokenizer, messages, index, full, cursor) ?? contentSpan(full, message.content, cursor);
    if (span === null) {
      // Without a span nothing is masked differently, so only completion-only training needs one.
      if (!completionOnly) return;
      throw new UserError(
        `the model's chat template changes the text of assistant message ${index + 1}, so its tokens cannot be located ` +
          `for completion-only training; set train.completion_only: false to train on the whole conversation.`,
      );
    }
    spans.push(span);
    cursor = span[1];
  });

  const pieces: Piece[] = [];
  let position = 0;
  for (const [start, end] of spans) {
    if (start > position) pieces.push({ text: full.slice(position, start), trained: false });
    if (end > start) pieces.push({ text: full.slice(start, end), trained: true });
    position = end;
  }
  if (position < full.length) pieces.push({ text: full.slice(position), trained: false });
  return pieces;
}

/**
 * The span an assistant turn adds, found by rendering rather than guessing: from the end of the conversation so far
 * with the generation prompt (P) to the end of the conversation including this turn (Q). It therefore covers the
 * reply and the template's end-of-turn marker, which the model must learn to emit. Null when the template renders
 * earlier turns differently once later ones follow (then P and Q are not prefixes of the whole).
 */
function renderedSpan(tokenizer: ModelTokenizer, messages: ChatMessage[], index: number, full: string, cursor: number): [number, number] | null {
  let before: string;
  let through: string;
  try {
    before = renderChat(tokenizer, messages.slice(0, index), { addGenerationPrompt: true });
    through = renderChat(tokenizer, messages.slice(0, index + 1), { addGenerationPrompt: false });
  } catch {
    // Some templates refuse partial conversations (e.g. one ending in a tool call); the content search still works.
    return null;
  }
  if (!full.startsWith(before) || !full.startsWith(through) || before.length < cursor || through.length <= before.length) return null;
  return [before.length, through.length];
}

/** Fallback: the message's own text, searched after the previous span; the end marker is not known here. */
function contentSpan(full: string, content: string, cursor: number): [number, number] | null {
  for (const text of [content, content.trim()]) {
    if (text === "") continue;
    const at = full.indexOf(text, cursor);
    if (at >= 0) return [at, at + text.length];
  }
  return null;
}
