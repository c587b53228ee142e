import { UserError } from "../errors.js";
import type { TokenizerJson } from "./vocab-json.js";

/** llama.cpp's token types (gguf-py's TokenType, llama.h's llama_token_type). */
export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** Score of control and user-defined tokens, as llama.cpp's converter writes them. */
const ADDED_SCORE = -1000;

export interface TokenList {
  tokens: string[];
  types: Int32Array;
}

/**
 * One entry per embedding row (`vocabSize`): the vocabulary, then the added tokens over it; rows no token names are
 * "[PAD<i>]" of type UNUSED, as llama.cpp's converter fills them.
 */
export function tokenList(tokenizer: TokenizerJson, vocabSize: number, kind: "spm" | "byte"): TokenList {
  const tokens = Array.from({ length: vocabSize }, (_, i) => `[PAD${i}]`);
  const types = new Int32Array(vocabSize).fill(TOKEN_TYPE.UNUSED);
  const place = (id: number, token: string, what: string): void => {
    if (id >= vocabSize) {
      throw new UserError(
        `${tokenizer.path}: ${what} ${JSON.stringify(token)} has id ${id}, but the model embeds only ${vocabSize} tokens (config.json vocab_size); ` +
          `a GGUF needs every token id below vocab_size: fix vocab_size or the tokenizer.`,
      );
    }
    tokens[id] = token;
  };
  for (const [token, id] of tokenizer.vocab) {
    place(id, token, "token");
    types[id] = kind === "spm" && tokenizer.byteFallback && /^<0x[0-9A-Fa-f]{2}>$/.test(token) ? TOKEN_TYPE.BYTE : token === tokenizer.unkToken ? TOKEN_TYPE.UNKNOWN : TOKEN_TYPE.NORMAL;
  }
  for (const added of tokenizer.addedTokens) {
    if (added.special || looksSpecial(added.content)) {
      place(added.id, added.content, "added token");
      types[added.id] = TOKEN_TYPE.CONTROL;
    } else {
      // llama.cpp matches user-defined tokens in the raw text, before any "▁" is put in for spaces.
      place(added.id, added.content.replaceAll("▁", " "), "added token");
      types[added.id] = TOKEN_TYPE.USER_DEFINED;
    }
  }
  return { tokens, types };
}

/** Added tokens llama.cpp's converter makes control tokens though they are not marked special (Gemma's, DeepSeek's, `<|…|>`). */
function looksSpecial(token: string): boolean {
  return (
    ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].includes(token) ||
    (token.startsWith("<|") && token.endsWith("|>")) ||
    (token.startsWith("<｜") && token.endsWith("｜>")) ||
    (token.startsWith("<unused") && token.endsWith(">"))
  );
}

/**
 * Scores for llama.cpp's SentencePiece tokenizer, which merges the adjacent pair whose joined text has the highest
 * score. A tokenizer.json keeps SentencePiece's merge order as ranked merges instead (its converter lists merges by
 * the joined piece's score), so a piece made by merge rank r scores -r: llama.cpp then merges in the same order.
 * llama.cpp's converter reads scores from tokenizer.model; for a tokenizer.json alone it writes -1000 for every
 * token, which makes llama.cpp merge left to right and tokenize unlike the model.
 */
export function spmScores(tokenizer: TokenizerJson, list: TokenList): Float32Array {
  const rank = new Map<string, number>();
  tokenizer.merges.forEach(([left, right], r) => {
    const joined = left + right;
    if (!rank.has(joined)) rank.set(joined, r);
  });
  // Pieces no merge makes (single characters, bytes) are never a merge's result; below every merged piece.
  const unmerged = -(tokenizer.merges.length + 1);
  const scores = new Float32Array(list.tokens.length);
  list.tokens.forEach((token, id) => {
    const type = list.types[id];
    if (type === TOKEN_TYPE.CONTROL || type === TOKEN_TYPE.USER_DEFINED || type === TOKEN_TYPE.UNUSED) scores[id] = ADDED_SCORE;
    else scores[id] = -(rank.get(token) ?? -unmerged);
  });
  return scores;
}

/** Merges as llama.cpp reads them: "left right", a space inside a part written as U+0120+… (chr(ord(" ") + 256)), as the converter does. */
export function mergeStrings(tokenizer: TokenizerJson): string[] {
  const escape = (part: string): string => part.replaceAll(" ", "Ġ");
  return tokenizer.merges.map(([left, right]) => `${escape(left)} ${escape(right)}`);
}
