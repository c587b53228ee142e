import { describe, expect, it } from "vitest";
import { batchSequences, buildSequences, type Sequence } from "../../../src/data/sequences.js";
import type { TokenizedExample } from "../../../src/data/tokenize-example.js";

/** An example of `length` tokens with ids base, base+1, …; position 0 masked, the rest trained. */
const example = (base: number, length: number): TokenizedExample => ({
  ids: Array.from({ length }, (_, i) => base + i),
  labels: Uint8Array.from({ length }, (_, i) => (i === 0 ? 0 : 1)),
});
const plain = (seq: Sequence) => ({
  ids: Array.from(seq.ids),
  labels: Array.from(seq.labels),
  positions: Array.from(seq.positions),
  segments: Array.from(seq.segments),
});

describe("buildSequences", () => {
  it("without packing: one example per sequence, positions 0..n-1, segments 0", () => {
    const { sequences, truncated } = buildSequences([example(10, 3), example(20, 2)], { maxSeqLen: 8, packing: false, padId: 0 });
    expect(truncated).toBe(0);
    expect(sequences.map(plain)).toEqual([
      { ids: [10, 11, 12], labels: [0, 1, 1], positions: [0, 1, 2], segments: [0, 0, 0] },
      { ids: [20, 21], labels: [0, 1], positions: [0, 1], segments: [0, 0] },
    ]);
  });

  it("packing: examples 3, 4, 2, 5 tokens into rows of at most 8 — positions restart, segments count, nothing straddles", () => {
    const items = [example(10, 3), example(20, 4), example(30, 2), example(40, 5)];
    const { sequences, truncated } = buildSequences(items, { maxSeqLen: 8, packing: true, padId: 0 });
    expect(truncated).toBe(0);
    // 3 + 4 = 7 fits; + 2 would be 9, so the third example starts a new row; 2 + 5 = 7 fits.
    expect(sequences.map(plain)).toEqual([
      {
        ids: [10, 11, 12, 20, 21, 22, 23],
        labels: [0, 1, 1, 0, 1, 1, 1],
        positions: [0, 1, 2, 0, 1, 2, 3],
        segments: [0, 0, 0, 1, 1, 1, 1],
      },
      {
        ids: [30, 31, 40, 41, 42, 43, 44],
        labels: [0, 1, 0, 1, 1, 1, 1],
        positions: [0, 1, 0, 1, 2, 3, 4],
        segments: [0, 0, 1, 1, 1, 1, 1],
      },
    ]);
    // Every example appears whole, in order, in exactly one row.
    const all = sequences.flatMap((seq) => Array.from(seq.ids));
    expect(all).toEqual(items.flatMap((item) => item.ids));
    for (const seq of sequences) expect(seq.ids.length).toBeLessThanOrEqual(8);
  });

  it("an example that exactly fills a row packs alone; order is kept", () => {
    const { sequences } = buildSequences([example(10, 2), example(20, 8), example(30, 2)], { maxSeqLen: 8, packing: true, padId: 0 });
    expect(sequences.map((seq) => Array.from(seq.segments))).toEqual([[0, 0], [0, 0, 0, 0, 0, 0, 0, 0], [0, 0]]);
  });

  it("longer examples are truncated to maxSeqLen and counted, with and without packing", () => {
    const items = [example(10, 12), example(30, 3), example(50, 6)];
    for (const packing of [false, true]) {
      const { sequences, truncated } = buildSequences(items, { maxSeqLen: 5, packing, padId: 0 });
      expect(truncated).toBe(2);
      expect(sequences[0] && Array.from(sequences[0].ids)).toEqual([10, 11, 12, 13, 14]);
      for (const seq of sequences) expect(seq.ids.length).toBeLessThanOrEqual(5);
    }
  });

  it("examples left with nothing to train on (e.g. the answer truncated away) are dropped and counted", () => {
    const longPrompt: TokenizedExample = { ids: [1, 2, 3, 4, 5, 6], labels: Uint8Array.from([0, 0, 0, 0, 1, 1]) };
    const result = buildSequences([longPrompt, example(10, 3)], { maxSeqLen: 4, packing: false, padId: 0 });
    expect(result).toMatchObject({ truncated: 1, untrained: 1 });
    expect(result.sequences.map((seq) => Array.from(seq.ids))).toEqual([[10, 11, 12]]);
  });
});

describe("batchSequences", () => {
  it("right-pads to the longest: pad id, label 0, positions continuing, segment -1", () => {
    const packed = buildSequences([example(10, 2), example(20, 3)], { maxSeqLen: 5, packing: true, padId: 99 }).sequences;
    const single = buildSequences([example(30, 5), example(7, 2)], { maxSeqLen: 5, packing: false, padId: 99 }).sequences;
    const batch = batchSequences([...single, ...packed], 99);
    expect({ batch: batch.batch, length: batch.length }).toEqual({ batch: 3, length: 5 });
    expect(Array.from(batch.ids)).toEqual([30, 31, 32, 33, 34, 7, 8, 99, 99, 99, 10, 11, 20, 21, 22]);
    expect(Array.from(batch.labels)).toEqual([0, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 1, 0, 1, 1]);
    expect(Array.from(batch.positions)).toEqual([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 0, 1, 2]);
    expect(Array.from(batch.segments)).toEqual([0, 0, 0, 0, 0, 0, 0, -1, -1, -1, 0, 0, 1, 1, 1]);
  });
});
