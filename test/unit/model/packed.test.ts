// Packed training rows (several examples in one row: restarted positions, attention kept within each example) run
// through the real model must give, for every example, exactly what the float64 reference gives for that example
// alone; and the training loop's evaluation of packed rows must equal the reference loss of the separate examples.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackend } from "../../../src/backend/load.js";
import { buildSequences, type Sequence } from "../../../src/data/sequences.js";
import { loadModel } from "../../../src/model/load-model.js";
import type { Tf } from "../../../src/model/types.js";
import { toMicroBatch } from "../../../src/train/batches.js";
import { evaluate } from "../../../src/train/loop.js";
import { crossEntropy, loadReference } from "../../helpers/reference-model.js";
import { tempDir } from "../../helpers/run-cli.js";
import { writeTinyCheckpoint, type TinySpec } from "../../helpers/tiny-checkpoint.js";

const tmp = tempDir();
let tf: Tf;
beforeAll(async () => {
  tf = (await loadBackend({ forced: "wasm" })).tf;
});
afterAll(() => tmp.cleanup());

// Each kind places positions differently: RoPE (llama, with llama3 scaling; qwen2 with biases), RoPE plus a sliding
// window shorter than an example (mistral), learned position embeddings (gpt2).
const SPECS: Record<string, TinySpec> = {
  llama: { kind: "llama", heads: 4, kvHeads: 2, seed: 31 },
  "llama3 rope scaling": { kind: "llama", ropeScaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 }, seed: 32 },
  "qwen2 biases": { kind: "qwen2", tied: true, seed: 33 },
  "mistral sliding window 3": { kind: "mistral", slidingWindow: 3, seed: 34 },
  gpt2: { kind: "gpt2", seed: 35 },
  "qwen3 head norms": { kind: "qwen3", headDim: 16, seed: 36 },
  "smollm3 NoPE layers": { kind: "smollm3", layers: 2, noRopeLayers: [0, 1], seed: 37 },
  "phi3 fused, partial rotary, longrope": { kind: "phi3", partialRotary: 0.5, longRope: { original: 64 }, maxPositions: 256, seed: 38 },
};

// Examples of different lengths; the labels train everything after the first token of each (as completion-only
// masking leaves the first tokens untrained).
const EXAMPLES = [
  [1, 5, 17, 42, 3, 8, 60],
  [1, 21, 9, 33],
  [1, 14, 2, 77, 50, 11, 64, 12, 40],
  [1, 7, 7, 90, 26],
  [1, 44, 81],
];
const tokenized = EXAMPLES.map((ids) => ({ ids, labels: Uint8Array.from(ids, (_, i) => (i < 2 ? 0 : 1)) }));
const PAD = 0;

/** Rows of the batch: which example each packed segment is, by its ids. */
function segmentsOf(sequence: Sequence): number[][] {
  const out: number[][] = [];
  sequence.segments.forEach((segment, i) => {
    (out[segment] ??= []).push(sequence.ids[i] ?? -1);
  });
  return out;
}

describe.each(Object.entries(SPECS))("packed rows through %s", (name, spec) => {
  const dir = join(tmp.path, name.replace(/\W+/g, "-"));

  it("every packed example's logits equal the reference run of that example alone (within 1e-4)", async () => {
    writeTinyCheckpoint(dir, spec);
    const model = await loadModel(tf, dir);
    const reference = loadReference(dir);
    const { sequences } = buildSequences(tokenized, { maxSeqLen: 17, packing: true, padId: PAD });
    // 7 + 4 fit in 17, then 9 + 5 + 3: two rows of unequal length, so the shorter one is padded too.
    expect(sequences.map(segmentsOf)).toEqual([[EXAMPLES[0], EXAMPLES[1]], [EXAMPLES[2], EXAMPLES[3], EXAMPLES[4]]]);
    const batch = toMicroBatch(sequences, PAD, true);
    expect([batch.batch, batch.length]).toEqual([2, 17]);
    const ids = tf.tensor2d(batch.ids, [batch.batch, batch.length], "int32");
    const out = model.forward({ ids, positions: batch.positions, segments: batch.segments });
    const logits = out.dataSync();
    tf.dispose([ids, out]);
    const vocab = model.config.vocabSize;

    let maxError = 0;
    let checked = 0;
    for (let row = 0; row < batch.batch; row += 1) {
      const sequence = sequences[row] as Sequence;
      let start = 0;
      for (const example of segmentsOf(sequence)) {
        const alone = reference.logits(example);
        alone.forEach((expected, t) => {
          const at = (row * batch.length + start + t) * vocab;
          expected.forEach((value, v) => (maxError = Math.max(maxError, Math.abs(value - (logits[at + v] ?? NaN)))));
          checked += 1;
        });
        start += example.length;
      }
    }
    expect(checked).toBe(EXAMPLES.flat().length);
    expect(maxError).toBeLessThan(1e-4);

    // The check has teeth: the second example run after the first, as an unpacked row would see it, differs. (Without
    // the restarted positions only gpt2 differs: RoPE scores depend on relative positions alone.)
    const joint = reference.logits([...(EXAMPLES[0] ?? []), ...(EXAMPLES[1] ?? [])]);
    const alone = reference.logits(EXAMPLES[1] ?? []);
    const last = (EXAMPLES[1]?.length ?? 0) - 1;
    const shift = Math.max(...Array.from(alone[last] ?? [], (value, v) => Math.abs(value - (joint[(EXAMPLES[0]?.length ?? 0) + last]?.[v] ?? NaN))));
    expect(shift).toBeGreaterThan(1e-2);
    model.dispose();
  });

  it("the loop's evaluation of packed rows equals the reference mean loss over each example's trained tokens", async () => {
    const model = await loadModel(tf, dir);
    const reference = loadReference(dir);
    let sum = 0;
    let count = 0;
    for (const { ids, labels } of tokenized) {
      const rows = reference.logits(ids);
      for (let t = 0; t + 1 < ids.length; t += 1) {
        if (labels[t + 1] !== 1) continue;
        sum += crossEntropy(rows[t] ?? new Float64Array(), ids[t + 1] ?? -1);
        count += 1;
      }
    }
    const packed = buildSequences(tokenized, { maxSeqLen: 17, packing: true, padId: PAD }).sequences;
    const unpacked = buildSequences(tokenized, { maxSeqLen: 17, packing: false, padId: PAD }).sequences;
    expect(packed).toHaveLength(2);
    expect(unpacked).toHaveLength(5);
    for (const batchSize of [1, 2]) {
      expect(await evaluate(tf, model, packed, batchSize, PAD, true)).toBeCloseTo(sum / count, 5);
      expect(await evaluate(tf, model, unpacked, batchSize, PAD, false)).toBeCloseTo(sum / count, 5);
    }
    model.dispose();
  });
});
