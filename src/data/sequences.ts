import type { TokenizedExample } from "./tokenize-example.js";

/**
 * One training row. `positions` restart at 0 for each packed example and `segments` number the examples in the
 * row (0, 1, 2, …), so attention can be kept within an example and RoPE/position embeddings see each one fresh.
 */
export interface Sequence {
  ids: Int32Array;
  labels: Uint8Array;
  positions: Int32Array;
  segments: Int32Array;
}

export interface SequenceParams {
  /** Longest sequence; longer examples are cut to this length and counted. */
  maxSeqLen: number;
  /** Concatenate several examples per sequence (none split across two). */
  packing: boolean;
  /** Accepted for symmetry with batchSequences; sequences are built unpadded and padded only when batched. */
  padId: number;
}

export interface SequenceResult {
  sequences: Sequence[];
  /** Examples cut to maxSeqLen. */
  truncated: number;
  /** Examples dropped because no token was left to train on (e.g. truncation cut off the whole answer). */
  untrained: number;
}

/** Builds training sequences from tokenized examples, in order: one per example, or greedily packed. */
export function buildSequences(items: TokenizedExample[], params: SequenceParams): SequenceResult {
  const maxSeqLen = Math.max(1, Math.floor(params.maxSeqLen));
  let truncated = 0;
  let untrained = 0;
  const kept: TokenizedExample[] = [];
  for (const item of items) {
    let { ids, labels } = item;
    if (ids.length > maxSeqLen) {
      ids = ids.slice(0, maxSeqLen);
      labels = labels.slice(0, maxSeqLen);
      truncated += 1;
    }
    // A row with no target adds nothing to learn and would make a per-token mean divide by zero.
    if (!labels.some((label) => label === 1)) {
      untrained += 1;
      continue;
    }
    kept.push({ ids, labels });
  }

  if (!params.packing) return { sequences: kept.map((item) => pack([item])), truncated, untrained };
  const sequences: Sequence[] = [];
  let group: TokenizedExample[] = [];
  let length = 0;
  for (const item of kept) {
    if (length + item.ids.length > maxSeqLen && group.length > 0) {
      sequences.push(pack(group));
      group = [];
      length = 0;
    }
    group.push(item);
    length += item.ids.length;
  }
  if (group.length > 0) sequences.push(pack(group));
  return { sequences, truncated, untrained };
}

function pack(items: TokenizedExample[]): Sequence {
  const total = items.reduce((sum, item) => sum + item.ids.length, 0);
  const sequence: Sequence = {
    ids: new Int32Array(total),
    labels: new Uint8Array(total),
    positions: new Int32Array(total),
    segments: new Int32Array(total),
  };
  let offset = 0;
  items.forEach((item, segment) => {
    sequence.ids.set(item.ids, offset);
    sequence.labels.set(item.labels, offset);
    for (let i = 0; i < item.ids.length; i += 1) sequence.positions[offset + i] = i;
    sequence.segments.fill(segment, offset, offset + item.ids.length);
    offset += item.ids.length;
  });
  return sequence;
}

/** A batch as flat row-major [batch × length] arrays. */
export interface Batch {
  ids: Int32Array;
  labels: Uint8Array;
  positions: Int32Array;
  segments: Int32Array;
  batch: number;
  length: number;
}

/**
 * Right-pads sequences to the longest. Padding has id `padId`, label 0 (never trained), segment -1 (belongs to no
 * example, so nothing attends to it) and positions continuing the row's last one (in range, never used).
 */
export function batchSequences(seqs: Sequence[], padId: number): Batch {
  const length = seqs.reduce((max, seq) => Math.max(max, seq.ids.length), 0);
  const batch = seqs.length;
  const out: Batch = {
    ids: new Int32Array(batch * length).fill(padId),
    labels: new Uint8Array(batch * length),
    positions: new Int32Array(batch * length),
    segments: new Int32Array(batch * length).fill(-1),
    batch,
    length,
  };
  seqs.forEach((seq, row) => {
    const start = row * length;
    const n = seq.ids.length;
    out.ids.set(seq.ids, start);
    out.labels.set(seq.labels, start);
    out.positions.set(seq.positions, start);
    out.segments.set(seq.segments, start);
    const last = n > 0 ? (seq.positions[n - 1] ?? -1) : -1;
    for (let i = n; i < length; i += 1) out.positions[start + i] = last + (i - n + 1);
  });
  return out;
}
