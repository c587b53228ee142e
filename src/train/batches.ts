import { batchSequences, type Sequence } from "../data/sequences.js";
import { epochOrder } from "../data/split-shuffle.js";

/** One micro-batch, flattened [batch·length], with next-token targets and their loss weights. */
export interface MicroBatch {
  batch: number;
  length: number;
  ids: Int32Array;
  positions: Int32Array;
  segments: Int32Array;
  packed: boolean;
  targets: Int32Array;
  /** 1 where position t predicts a trained token (labels[t+1] = 1 in the same row and packed example), else 0. */
  trained: Uint8Array;
  /** Non-padding input tokens. */
  inputTokens: number;
}

/** Where the next micro-batch starts: epoch and index into that epoch's seeded order. */
export interface DataCursor {
  epoch: number;
  index: number;
}

export function toMicroBatch(sequences: Sequence[], padId: number, packed: boolean): MicroBatch {
  const b = batchSequences(sequences, padId);
  const targets = new Int32Array(b.ids.length);
  const trained = new Uint8Array(b.ids.length);
  for (let row = 0; row < b.batch; row += 1) {
    for (let t = 0; t < b.length - 1; t += 1) {
      const i = row * b.length + t;
      targets[i] = b.ids[i + 1] ?? 0;
      // The last token of a packed example never learns the next example's first token (it cannot see it).
      trained[i] = b.segments[i] === b.segments[i + 1] ? (b.labels[i + 1] ?? 0) : 0;
    }
  }
  const inputTokens = b.segments.reduce((n, s) => n + (s >= 0 ? 1 : 0), 0);
  return { batch: b.batch, length: b.length, ids: b.ids, positions: b.positions, segments: b.segments, packed, targets, trained, inputTokens };
}

/** Takes the next `size` sequences in the seeded epoch order, moving the cursor (into the next epoch as needed). */
export function nextSequences(train: Sequence[], cursor: DataCursor, size: number, seed: number): { sequences: Sequence[]; cursor: DataCursor } {
  const out: Sequence[] = [];
  let { epoch, index } = cursor;
  let order = epochOrder(train.length, seed, epoch);
  while (out.length < size) {
    if (index >= train.length) {
      epoch += 1;
      index = 0;
      order = epochOrder(train.length, seed, epoch);
    }
    const sequence = train[order[index] ?? 0];
    if (sequence) out.push(sequence);
    index += 1;
  }
  return { sequences: out, cursor: { epoch, index } };
}
