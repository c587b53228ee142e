import { describe, expect, it } from "vitest";
import { buildSequences } from "../../../src/data/sequences.js";
import { toMicroBatch } from "../../../src/train/batches.js";

describe("toMicroBatch", () => {
  it("targets are the next token in the row; only predictions inside one packed example are trained", () => {
    // Every token labelled, the first of each example too: the boundary prediction (last token of one example →
    // first of the next, which it cannot see) must still never be trained, nor anything in the padding.
    const items = [[1, 2, 3], [4, 5], [6, 7, 8, 9]].map((ids) => ({ ids, labels: Uint8Array.from(ids, () => 1) }));
    const { sequences } = buildSequences(items, { maxSeqLen: 5, packing: true, padId: 0 });
    expect(sequences.map((s) => Array.from(s.ids))).toEqual([[1, 2, 3, 4, 5], [6, 7, 8, 9]]);
    const batch = toMicroBatch(sequences, 0, true);
    expect(Array.from(batch.targets)).toEqual([2, 3, 4, 5, 0, 7, 8, 9, 0, 0]);
    expect(Array.from(batch.trained)).toEqual([1, 1, 0, 1, 0, 1, 1, 1, 0, 0]);
    expect(Array.from(batch.positions)).toEqual([0, 1, 2, 0, 1, 0, 1, 2, 3, 4]);
    expect(Array.from(batch.segments)).toEqual([0, 0, 0, 1, 1, 0, 0, 0, 0, -1]);
    expect(batch.inputTokens).toBe(9);
  });
});
