/**
 * The native lean decoder (issue #13): one native call per step for the whole Llama-family model. Every step's
 * logits must match the float64 reference forward pass of the same weights (the checkpoint's, or the dequantized
 * ones a quantized store holds), through prefill chunks, grouped-query heads, biases, rotary scaling, sliding
 * windows and LoRA adapters; greedy generation must pick the tfjs path's tokens.
 */
import { writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { loadBackend } from "../../../src/backend/load.js";
import { loadNativeMatmul } from "../../../src/backend/native-matmul.js";
import { attachLora } from "../../../src/lora/attach.js";
import { generate } from "../../../src/model/generate.js";
import { loadModel } from "../../../src/model/load-model.js";
import type { CausalLM, Tf, TokenDecoder } from "../../../src/model/types.js";
import { dequantizedCheckpoint } from "../../helpers/dequantized-checkpoint.js";
import { describeNeeds, itNeeds, nativeAddon } from "../../helpers/needs.js";
import { referenceLogits } from "../../helpers/reference-model.js";
import { tempDir } from "../../helpers/run-cli.js";
import { writeTinyCheckpoint, type TinySpec } from "../../helpers/tiny-checkpoint.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const need = nativeAddon(loadNativeMatmul());

const SPECS: Record<string, TinySpec> = {
  "llama GQA untied": { kind: "llama", heads: 4, kvHeads: 2, tied: false, seed: 31 },
  "llama MHA tied": { kind: "llama", heads: 4, kvHeads: 4, tied: true, seed: 32 },
  // 12 query heads on one kv head: more than the 8 rows a streamed attention block takes.
  "llama 12 heads on 1 kv head": { kind: "llama", hidden: 48, heads: 12, kvHeads: 1, seed: 33 },
  "llama attention_bias": { kind: "llama", attentionBias: true, seed: 34 },
  "llama3 rope scaling": { kind: "llama", ropeScaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 }, seed: 35 },
  "qwen2 biases, F16": { kind: "qwen2", tied: true, dtype: "F16", seed: 36 },
  "mistral sliding window 4": { kind: "mistral", slidingWindow: 4, seed: 37 },
  "qwen2 sliding window from layer 1": { kind: "qwen2", seed: 38 },
  "llama hidden 96, intermediate 200, BF16": { kind: "llama", hidden: 96, intermediate: 200, dtype: "BF16", seed: 39 },
  "qwen3 head norms, head_dim 16 on hidden 32": { kind: "qwen3", headDim: 16, tied: true, seed: 46 },
  "smollm3 NoPE layers": { kind: "smollm3", layers: 3, noRopeLayers: [1, 0, 1], seed: 47 },
};
/** Config edits the tiny builder has no option for. */
const PATCHES: Record<string, Record<string, unknown>> = {
  "qwen2 sliding window from layer 1": { use_sliding_window: true, sliding_window: 3, max_window_layers: 1 },
};
const IDS = [1, 5, 17, 42, 3, 8, 60, 21, 9, 33, 14, 2];
const PROMPT = 5;

let tf: Tf;
beforeAll(async () => {
  tf = (await loadBackend({ forced: "wasm" })).tf;
});
afterEach(() => {
  delete process.env.FINETUNE_LEAN_DECODE;
});

function checkpoint(label: string, spec: TinySpec): string {
  const dir = join(tmp.path, label.replace(/\W+/g, "-"));
  writeTinyCheckpoint(dir, spec);
  const patch = PATCHES[label];
  if (patch) writeFileSync(join(dir, "config.json"), JSON.stringify({ ...JSON.parse(readFileSync(join(dir, "config.json"), "utf8")), ...patch }));
  return dir;
}

/** The prompt in one step, then one token per step: the logits of positions PROMPT−1 … end. */
async function stepLogits(decoder: TokenDecoder, ids: number[]): Promise<Float32Array[]> {
  const rows = [await decoder.step(ids.slice(0, PROMPT))];
  for (const id of ids.slice(PROMPT)) rows.push(await decoder.step([id]));
  return rows;
}

/** max |a − b| / max |b| over every row. */
function relativeError(a: ArrayLike<number>[], b: ArrayLike<number>[]): number {
  let diff = 0;
  let scale = 0;
  b.forEach((row, r) => {
    for (let i = 0; i < row.length; i += 1) {
      diff = Math.max(diff, Math.abs((a[r]?.[i] ?? NaN) - (row[i] ?? 0)));
      scale = Math.max(scale, Math.abs(row[i] ?? 0));
    }
  });
  return Number.isNaN(diff) ? Infinity : diff / scale;
}

/** Seeded LoRA on every linear layer, B non-zero so that the adapters change the logits. */
function attachSeededLora(model: CausalLM) {
  const lora = attachLora(tf, model, { r: 2, alpha: 4, dropout: 0, targetModules: "all-linear", layers: "all", rslora: false, seed: 5 });
  let k = 0;
  for (const { adapter } of lora.adapters) {
    adapter.b.assign(tf.tensor2d(Float32Array.from({ length: adapter.b.size }, () => Math.sin((k += 1) * 1.7) * 0.05), adapter.b.shape));
  }
  return lora;
}

function withTfjsPath<T>(run: () => T): T {
  process.env.FINETUNE_LEAN_DECODE = "0";
  try {
    return run();
  } finally {
    delete process.env.FINETUNE_LEAN_DECODE;
  }
}

describeNeeds(need, "native lean decoder: float32 weights in the native store", () => {
  for (const [label, spec] of Object.entries(SPECS)) {
    itNeeds(need, `${label}: every step's logits match the float64 reference`, async () => {
      const dir = checkpoint(label, spec);
      const model = await loadModel(tf, dir, { float32In: "native" });
      try {
        const decoder = model.newDecoder(IDS.length);
        expect(decoder.kind).toBe("native");
        const ours = await stepLogits(decoder, IDS);
        decoder.dispose();
        const reference = referenceLogits(dir, IDS).slice(PROMPT - 1);
        expect(relativeError(ours, reference)).toBeLessThan(1e-5);
        // With LoRA adapters the native decoder gives the tfjs path's logits (which the LoRA tests check).
        const lora = attachSeededLora(model);
        const lean = model.newDecoder(IDS.length);
        const tfjs = withTfjsPath(() => model.newDecoder(IDS.length));
        expect([lean.kind, tfjs.kind]).toEqual(["native", "tfjs"]);
        const withLora = await stepLogits(lean, IDS);
        expect(relativeError(withLora, await stepLogits(tfjs, IDS))).toBeLessThan(1e-5);
        expect(relativeError(withLora, ours)).toBeGreaterThan(1e-3);
        lean.dispose();
        tfjs.dispose();
        lora.dispose();
      } finally {
        model.dispose();
      }
    });
  }

  itNeeds(need, "a 300-token prompt (two prefill chunks) then decoding match the reference", async () => {
    const dir = checkpoint("long prompt", { kind: "mistral", slidingWindow: 64, maxPositions: 512, seed: 40 });
    const ids = Array.from({ length: 304 }, (_, i) => (i * 37 + 11) % 96);
    const model = await loadModel(tf, dir, { float32In: "native" });
    try {
      const decoder = model.newDecoder(ids.length);
      const rows = [await decoder.step(ids.slice(0, 300))];
      for (const id of ids.slice(300)) rows.push(await decoder.step([id]));
      decoder.dispose();
      expect(relativeError(rows, referenceLogits(dir, ids).slice(299))).toBeLessThan(1e-5);
    } finally {
      model.dispose();
    }
  });

  itNeeds(need, "greedy generation picks the same tokens as the tfjs path, with and without an adapter", async () => {
    const dir = checkpoint("greedy", { kind: "llama", heads: 4, kvHeads: 2, seed: 41 });
    const model = await loadModel(tf, dir, { float32In: "native" });
    const run = () => generate({ model, promptIds: [1, 4, 9], maxNewTokens: 40, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, eosIds: [], stopStrings: [], decode: (ids) => ids.join(",") });
    try {
      for (const adapter of [false, true]) {
        const lora = adapter ? attachSeededLora(model) : null;
        const lean = await run();
        const tfjs = await withTfjsPath(run);
        expect([lean.decoder, tfjs.decoder]).toEqual(["native", "tfjs"]);
        expect(lean.ids).toHaveLength(40);
        expect(lean.ids).toEqual(tfjs.ids);
        expect(lean.decodeSteps).toBe(39);
        expect(lean.prefillSeconds).toBeGreaterThan(0);
        expect(lean.decodeSeconds).toBeGreaterThan(0);
        lora?.dispose();
      }
    } finally {
      model.dispose();
    }
  });
});

describeNeeds(need, "native lean decoder: quantized stores", () => {
  const spec: TinySpec = { kind: "qwen2", hidden: 96, intermediate: 200, heads: 4, kvHeads: 2, tied: false, seed: 42 };
  for (const format of ["bf16", "int8", "nf4"] as const) {
    itNeeds(need, `${format}: every step's logits match the float64 reference of the dequantized weights`, async () => {
      const dir = checkpoint(`quantized ${format}`, spec);
      const simulated = dequantizedCheckpoint(dir, format, `${dir}-${format}`);
      const model = await loadModel(tf, dir, { quantize: format });
      try {
        const decoder = model.newDecoder(IDS.length);
        expect(decoder.kind).toBe("native");
        const ours = await stepLogits(decoder, IDS);
        decoder.dispose();
        expect(relativeError(ours, referenceLogits(simulated, IDS).slice(PROMPT - 1))).toBeLessThan(1e-5);
        // …and not those of the unquantized weights (bf16 of an F32 file rounds too).
        expect(relativeError(ours, referenceLogits(dir, IDS).slice(PROMPT - 1))).toBeGreaterThan(1e-4);
      } finally {
        model.dispose();
      }
    });
  }
});

describeNeeds(need, "native lean decoder: where it does not run, and misuse", () => {
  itNeeds(need, "float32 tensors, GPT-2 and FINETUNE_LEAN_DECODE=0 keep the tfjs path", async () => {
    const llama = checkpoint("paths llama", { kind: "llama", seed: 43 });
    const gpt2 = checkpoint("paths gpt2", { kind: "gpt2", seed: 44 });
    const kinds: string[] = [];
    for (const [dir, options] of [[llama, {}], [gpt2, { quantize: "int8" as const }], [llama, { float32In: "native" as const }]] as const) {
      const model = await loadModel(tf, dir, options);
      const decoder = model.newDecoder(4);
      kinds.push(decoder.kind);
      decoder.dispose();
      model.dispose();
    }
    const model = await loadModel(tf, llama, { float32In: "native" });
    kinds.push(withTfjsPath(() => model.newDecoder(4)).kind);
    model.dispose();
    expect(kinds).toEqual(["tfjs", "tfjs", "native", "tfjs"]);
  });

  itNeeds(need, "past its capacity, with a bad id or after the model is disposed, a step says why", async () => {
    const dir = checkpoint("misuse", { kind: "llama", seed: 45 });
    const model = await loadModel(tf, dir, { quantize: "nf4" });
    // 2e9 positions of 2 layers · 2 kv heads · 8 dims: a 512 GB cache is refused before any allocation.
    expect(() => model.newDecoder(2_000_000_000)).toThrow(/the KV cache for 2000000000 positions \(the prompt plus --max-new-tokens\) needs 476\.8 GiB, more than the [\d.]+ GiB this machine's RAM allows/);
    const decoder = model.newDecoder(4);
    await expect(decoder.step([1, 2, 3, 4, 5])).rejects.toThrow(/0 tokens in the cache plus 5 exceed its capacity of 4/);
    await expect(decoder.step([1, 96])).rejects.toThrow(/ids\[1\] = 96 is outside \[0, 96\)/);
    await expect(decoder.step([])).rejects.toThrow(/ids is empty/);
    await decoder.step([1, 2, 3]);
    await expect(decoder.step([4, 5])).rejects.toThrow(/3 tokens in the cache plus 2 exceed its capacity of 4/);
    model.dispose();
    await expect(decoder.step([4])).rejects.toThrow(/the model was disposed/);
    decoder.dispose();
    await expect(decoder.step([4])).rejects.toThrow(/the decoder was freed/);
  });
});
