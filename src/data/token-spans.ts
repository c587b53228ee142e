import type { ModelTokenizer } from "../tokenizer/load.js";

/** A half-open character range [start, end) of a text. */
export interface CharSpan {
  start: number;
  end: number;
}

/** Where a character boundary falls among a text's tokens. */
interface Cut {
  /** Tokens [0, before) lie wholly before the boundary. */
  before: number;
  /** Token `before` holds characters on both sides of the boundary. */
  straddles: boolean;
}

type Tokenizer = Pick<ModelTokenizer, "encode" | "idToToken">;

/**
 * Marks the tokens of `ids` (the encoding of `text` without special tokens) that overlap any of `spans`.
 *
 * Our tokenizer library reports no offsets, so each span edge b is located by encoding text[0, b): tokenizers work
 * left to right, so the common prefix of that encoding and `ids` is tokens lying wholly before b. Past that prefix
 * the two encodings may still differ in how they cut the last word (BPE is not prefix-stable), so the rest of the
 * prefix encoding is matched by length against the following tokens of `ids`: tokens that fit inside it lie before
 * b, the one reaching past it straddles b. A straddling token overlaps both sides and so counts as in the span.
 */
export function tokensInSpans(tokenizer: Tokenizer, text: string, ids: readonly number[], spans: readonly CharSpan[]): boolean[] {
  const marked = new Array<boolean>(ids.length).fill(false);
  for (const span of spans) {
    if (span.end <= span.start) continue;
    const first = locate(tokenizer, text, ids, span.start).before;
    const endCut = locate(tokenizer, text, ids, span.end);
    const last = endCut.before + (endCut.straddles ? 1 : 0);
    for (let i = first; i < last && i < ids.length; i += 1) marked[i] = true;
  }
  return marked;
}

function locate(tokenizer: Tokenizer, text: string, ids: readonly number[], boundary: number): Cut {
  if (boundary <= 0) return { before: 0, straddles: false };
  if (boundary >= text.length) return { before: ids.length, straddles: false };
  const prefix = tokenizer.encode(text.slice(0, boundary), { addSpecialTokens: false });
  let common = 0;
  while (common < prefix.length && common < ids.length && prefix[common] === ids[common]) common += 1;
  if (common === prefix.length) return { before: common, straddles: false };
  // The prefix encoding cut its tail differently: align that tail with the full encoding by piece length.
  let rest = 0;
  for (let i = common; i < prefix.length; i += 1) rest += pieceLength(tokenizer, prefix[i] ?? 0);
  let covered = 0;
  for (let i = common; i < ids.length; i += 1) {
    covered += pieceLength(tokenizer, ids[i] ?? 0);
    if (covered === rest) return { before: i + 1, straddles: false };
    if (covered > rest) return { before: i, straddles: true };
  }
  return { before: ids.length, straddles: false };
}

/** Characters of normalized text a token stands for: its piece's length, one for a byte-fallback piece like <0x0A>. */
function pieceLength(tokenizer: Tokenizer, id: number): number {
  const piece = tokenizer.idToToken(id) ?? "";
  if (/^<0x[0-9A-Fa-f]{2}>$/.test(piece)) return 1;
  return Math.max(1, piece.length);
}
