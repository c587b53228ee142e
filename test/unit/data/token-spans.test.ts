import { describe, expect, it } from "vitest";
import { tokensInSpans } from "../../../src/data/token-spans.js";

/**
 * A tokenizer given as a table text → pieces, to reach the cases real BPE rarely produces: an encoding of a prefix
 * that cuts its last characters differently from the whole text (as Unigram ties or BPE merge order can).
 */
function tableTokenizer(table: Record<string, string[]>) {
  const vocab = [...new Set(Object.values(table).flat())];
  return {
    encode(text: string): number[] {
      const pieces = table[text];
      if (pieces === undefined) throw new Error(`no table entry for ${JSON.stringify(text)}`);
      return pieces.map((piece) => vocab.indexOf(piece));
    },
    idToToken: (id: number): string | undefined => vocab[id],
  };
}

describe("tokensInSpans", () => {
  const text = "abcde";
  const ids = (tok: ReturnType<typeof tableTokenizer>) => tok.encode(text);

  it("a prefix encoded as the start of the whole: tokens wholly inside the span", () => {
    const tok = tableTokenizer({ abcde: ["ab", "c", "de"], ab: ["ab"], abc: ["ab", "c"] });
    expect(tokensInSpans(tok, text, ids(tok), [{ start: 2, end: 5 }])).toEqual([false, true, true]);
    expect(tokensInSpans(tok, text, ids(tok), [{ start: 2, end: 3 }])).toEqual([false, true, false]);
  });

  it("a prefix cut differently but ending on a token edge of the whole: aligned by length, nothing straddles", () => {
    const tok = tableTokenizer({ abcde: ["ab", "c", "de"], abc: ["a", "bc"] });
    expect(tokensInSpans(tok, text, ids(tok), [{ start: 3, end: 5 }])).toEqual([false, false, true]);
  });

  it("a token across the span's edge overlaps it and is marked", () => {
    const tok = tableTokenizer({ abcde: ["ab", "cde"], ab: ["ab"], abc: ["ab", "c"], abcd: ["a", "bcd"] });
    expect(tokensInSpans(tok, text, ids(tok), [{ start: 3, end: 5 }])).toEqual([false, true]);
    expect(tokensInSpans(tok, text, ids(tok), [{ start: 0, end: 3 }])).toEqual([true, true]);
    expect(tokensInSpans(tok, text, ids(tok), [{ start: 0, end: 2 }])).toEqual([true, false]);
    expect(tokensInSpans(tok, text, ids(tok), [{ start: 0, end: 4 }])).toEqual([true, true]);
  });

  it("empty spans mark nothing; several spans mark each", () => {
    const tok = tableTokenizer({ abcde: ["a", "b", "c", "d", "e"], a: ["a"], b: ["b"], ab: ["a", "b"], abc: ["a", "b", "c"], abcd: ["a", "b", "c", "d"] });
    expect(tokensInSpans(tok, text, ids(tok), [{ start: 2, end: 2 }])).toEqual([false, false, false, false, false]);
    expect(tokensInSpans(tok, text, ids(tok), [{ start: 1, end: 2 }, { start: 3, end: 4 }])).toEqual([false, true, false, true, false]);
  });
});
