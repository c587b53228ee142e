import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackend } from "../../../src/backend/load.js";
import type { Sequence } from "../../../src/data/sequences.js";
import { attachLora } from "../../../src/lora/attach.js";
import { loadModel } from "../../../src/model/load-model.js";
import type { CausalLM, Tf } from "../../../src/model/types.js";
import { createOptimizer, trainLoop } from "../../../src/train/loop.js";
import { trainSchema } from "../../../src/recipe/schema.js";
import type { TrainRow } from "../../../src/train/metrics.js";
import { tempDir } from "../../helpers/run-cli.js";
import { writeTinyCheckpoint } from "../../helpers/tiny-checkpoint.js";

const tmp = tempDir();
let tf: Tf;
let model: CausalLM;

beforeAll(async () => {
  tf = (await loadBackend({ forced: "wasm" })).tf;
  writeTinyCheckpoint(join(tmp.path, "m"), { kind: "qwen2", seed: 9 });
  model = await loadModel(tf, join(tmp.path, "m"));
});
afterAll(() => {
  model.dispose();
  tmp.cleanup();
});

function sequence(ids: number[]): Sequence {
  return {
    ids: Int32Array.from(ids),
    labels: Uint8Array.from(ids, (_, i) => (i === 0 ? 0 : 1)),
    positions: Int32Array.from(ids, (_, i) => i),
    segments: new Int32Array(ids.length),
  };
}

describe("trainLoop", () => {
  it("lowers the loss, never changes the base weights, and frees every step's tensors", async () => {
    const snapshot = () => new Map([...model.projections.values()].map((p) => {
      const w = p.weight();
      const data = Array.from(w.dataSync());
      w.dispose();
      return [p.name, data] as const;
    }));
    const before = snapshot();
    const lmHead = Array.from(model.head.dense().dataSync());
    const lora = attachLora(tf, model, { r: 4, alpha: 8, dropout: 0.1, targetModules: "all-linear", layers: [1], rslora: false, seed: 3 });
    expect(lora.adapters.map((a) => a.name).every((n) => n.startsWith("model.layers.1."))).toBe(true);
    const optimizer = createOptimizer(tf, 0.01);
    const config = { ...trainSchema.parse({ max_steps: 12, batch_size: 2, lr: 2e-2, save_every: 100, eval_every: 100 }), gradient_checkpointing: true };
    const rows: TrainRow[] = [];
    const tensorCounts: number[] = [];
    await trainLoop({
      tf,
      model,
      lora,
      optimizer,
      train: [sequence([1, 5, 6, 7, 8, 9, 10]), sequence([1, 11, 12, 13, 14]), sequence([1, 20, 21, 22, 23, 24, 25, 26])],
      validation: [],
      config,
      totalSteps: 12,
      padId: 2,
      resume: null,
      signal: new AbortController().signal,
      callbacks: {
        onStep: async (row) => {
          rows.push(row);
          tensorCounts.push(tf.memory().numTensors);
        },
        onEval: async () => undefined,
        onCheckpoint: async () => undefined,
        onLog: () => undefined,
      },
    });
    expect(rows).toHaveLength(12);
    expect(rows[11]?.loss ?? Infinity).toBeLessThan((rows[0]?.loss ?? 0) * 0.8);
    // After the first step creates the AdamW moments, the tensor count stays flat.
    expect(new Set(tensorCounts.slice(1)).size).toBe(1);
    const after = snapshot();
    for (const [name, data] of before) expect(after.get(name)).toEqual(data);
    expect(Array.from(model.head.dense().dataSync())).toEqual(lmHead);
    lora.dispose();
    optimizer.dispose();
  });
});
