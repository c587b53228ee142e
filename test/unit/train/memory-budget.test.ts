import { describe, expect, it } from "vitest";
import { parseModelConfig } from "../../../src/model/config.js";
import { UserError } from "../../../src/errors.js";
import type { Quantize } from "../../../src/model/quantize.js";
import { recipeSchema, type Recipe } from "../../../src/recipe/schema.js";
import { estimateTrainingMemory, nativeStoreBytes, parameterCount, WASM_HEAP_BYTES, whatFits } from "../../../src/train/memory-budget.js";
import { checkMemoryBudget } from "../../../src/train/memory-check.js";

const smollm = parseModelConfig({ model_type: "llama", vocab_size: 49152, hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3, tie_word_embeddings: true }, "c");
const gpt2 = parseModelConfig({ model_type: "gpt2" }, "c");

describe("memory budget", () => {
  it("counts parameters like the checkpoints do", () => {
    expect(parameterCount(smollm)).toBe(134_515_008);
    expect(parameterCount(gpt2)).toBe(124_439_808);
  });

  it("SmolLM2-135M at T=256 fits the wasm heap; a long, wide run without checkpointing does not", () => {
    const small = estimateTrainingMemory(smollm, { batchSize: 4, seqLen: 256, loraParameters: 1e6, checkpointing: true });
    expect(small.total).toBeLessThan(WASM_HEAP_BYTES);
    expect(small.weights).toBe(4 * 134_515_008);
    const big = { batchSize: 16, seqLen: 2048, loraParameters: 1e6, checkpointing: false };
    expect(estimateTrainingMemory(smollm, big).total).toBeGreaterThan(WASM_HEAP_BYTES);
    const fits = whatFits(smollm, big, WASM_HEAP_BYTES);
    expect(fits.checkpointingFits).toBe(false);
    for (const candidate of [{ ...big, batchSize: fits.batchSize }, { ...big, seqLen: fits.seqLen }].filter((s) => s.batchSize > 0 && s.seqLen > 0)) {
      expect(estimateTrainingMemory(smollm, candidate).total).toBeLessThanOrEqual(WASM_HEAP_BYTES);
    }
    expect(fits.batchSize + fits.seqLen).toBeGreaterThan(0);
  });

  it("checkpointing keeps one tensor per layer instead of every activation", () => {
    const shape = { batchSize: 4, seqLen: 512, loraParameters: 0 };
    const kept = estimateTrainingMemory(smollm, { ...shape, checkpointing: false }).activations;
    const recomputed = estimateTrainingMemory(smollm, { ...shape, checkpointing: true }).activations;
    expect(recomputed * 5).toBeLessThan(kept);
  });
});

// Llama-3.2-1B: hidden 2048, 16 layers, 32/8 heads of 64, MLP 8192, a 128256-token vocabulary, tied head.
const llama1b = parseModelConfig(
  { model_type: "llama", vocab_size: 128256, hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, tie_word_embeddings: true, max_position_embeddings: 131072 },
  "c",
);
const GiB = 1024 ** 3;
// Every linear weight and the embedding: 16 × (2048·(2048+2·512) + 2048·2048 + 3·2048·8192) + 128256·2048.
const STORED = 16 * 60_817_408 + 262_668_288;
const TENSORS = 16 * 7 + 1;

function recipeFor(quantize: Quantize, train: Record<string, unknown> = {}): Recipe {
  return recipeSchema.parse({ model: { name: "meta-llama/Llama-3.2-1B", quantize }, data: { train: "t.jsonl" }, lora: { r: 16, target_modules: "all-linear" }, train: { max_steps: 10, batch_size: 1, max_seq_len: 512, ...train }, output: "runs/x" });
}
const refusal = (run: () => unknown): string => {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    return (error as Error).message;
  }
  throw new Error("expected a UserError");
};

describe("memory budget with the base weights stored natively (quantize)", () => {
  const shape = { batchSize: 1, seqLen: 512, loraParameters: 11_272_192, checkpointing: true };

  it("moves every linear weight and the embedding out of the backend's memory, at the format's bytes per weight", () => {
    expect(parameterCount(llama1b)).toBe(1_235_814_400);
    const none = estimateTrainingMemory(llama1b, shape);
    expect(none.weights).toBe(4 * 1_235_814_400);
    expect(none.native).toBe(0);
    expect(none.total).toBeGreaterThan(WASM_HEAP_BYTES);
    for (const [quantize, perWeight] of [["bf16", 2], ["int8", 1 + 4 / 64], ["nf4", 0.5 + 4 / 64]] as const) {
      const estimate = estimateTrainingMemory(llama1b, { ...shape, quantize });
      // Only the norms stay as float32 tensors: 16 layers × 2 × 2048 + the final 2048.
      expect(estimate.weights).toBe(4 * (1_235_814_400 - STORED));
      expect(estimate.weights).toBe(4 * 67_584);
      expect(estimate.native).toBe(perWeight * STORED + 16 * 1024 * TENSORS);
      expect(nativeStoreBytes(llama1b, quantize)).toBe(estimate.native);
      // What training adds is the same in every format; the loss counts one logits chunk, never a dequantized head.
      expect([estimate.adapters, estimate.activations, estimate.lossHead]).toEqual([none.adapters, none.activations, none.lossHead]);
      expect(estimate.lossHead).toBe(4 * 130 * 128256 * 5); // 130 rows of logits at a time for a 128K vocabulary
      expect(estimate.total).toBeLessThan(WASM_HEAP_BYTES);
      expect(estimate.ram).toBeGreaterThan(estimate.native + estimate.total);
    }
    expect(nativeStoreBytes(llama1b, "nf4") / GiB).toBeCloseTo(0.649, 3);
    expect(nativeStoreBytes(llama1b, "bf16") / GiB).toBeCloseTo(2.303, 3);
  });

  it("refuses float32 weights that do not fit the wasm heap, with the numbers and the formats that would fit", () => {
    const message = refusal(() => checkMemoryBudget({ config: llama1b, recipe: recipeFor("none"), backend: "wasm", label: "wasm", longest: 512, ram: 24 * GiB, nativeMissing: null }));
    expect(message).toMatch(/^this run needs about [\d.]+ GiB on the wasm backend, whose limit is 4\.0 GiB \(weights 4\.6 GiB as float32, activations [\d.]+ GiB for batch_size 1 × 512 tokens, loss 0\.3 GiB\)\. /);
    expect(message).toContain(
      "What would fit: model.quantize: bf16 (or --quantize bf16): its weights then need 2.3 GiB of RAM outside the wasm heap (int8: 1.2 GiB, nf4: 0.6 GiB); or the tensorflow backend",
    );
    // Without the addon the advice says what is missing.
    const without = refusal(() => checkMemoryBudget({ config: llama1b, recipe: recipeFor("none"), backend: "wasm", label: "wasm", longest: 512, ram: 24 * GiB, nativeMissing: "disabled by FINETUNE_NATIVE=0" }));
    expect(without).toContain("(int8: 1.2 GiB, nf4: 0.6 GiB) — it needs the native addon, which is not available here: disabled by FINETUNE_NATIVE=0; or");
  });

  it("lets nf4 train the 1B at T=512 with checkpointing, and refuses it where RAM is short, naming both pools", () => {
    expect(checkMemoryBudget({ config: llama1b, recipe: recipeFor("nf4"), backend: "wasm", label: "wasm", longest: 512, ram: 24 * GiB })).toBe(true);
    expect(checkMemoryBudget({ config: llama1b, recipe: recipeFor("nf4"), backend: "wasm", label: "wasm", longest: 512, ram: 4 * GiB })).toBe(true);
    const small = refusal(() => checkMemoryBudget({ config: llama1b, recipe: recipeFor("nf4"), backend: "wasm", label: "wasm", longest: 512, ram: 2 * GiB }));
    expect(small).toMatch(
      /^this run needs about [\d.]+ GiB of RAM, more than the 1\.6 GiB a run may plan on here \(80% of this machine's 2\.0 GiB\): the nf4 weight store 0\.6 GiB, the wasm backend's memory [\d.]+ GiB \(norms and biases 0\.0 GiB, activations [\d.]+ GiB for batch_size 1 × 512 tokens, loss 0\.3 GiB\) and the process 0\.3 GiB\. What would fit: /,
    );
    expect(small).toMatch(/What would fit: a machine with more memory\.$/);
    // With a little more RAM, shorter sequences would fit (the loss chunk and activations shrink).
    const tight = refusal(() => checkMemoryBudget({ config: llama1b, recipe: recipeFor("nf4"), backend: "wasm", label: "wasm", longest: 512, ram: 2.5 * GiB }));
    expect(tight).toMatch(/What would fit: train\.max_seq_len \d+; or a machine with more memory\.$/);
    // bf16 does not fit 4 GiB of RAM; int8 and nf4 would.
    const bf16 = refusal(() => checkMemoryBudget({ config: llama1b, recipe: recipeFor("bf16"), backend: "wasm", label: "wasm", longest: 512, ram: 4 * GiB }));
    expect(bf16).toContain("the bf16 weight store 2.3 GiB");
    expect(bf16).toMatch(/What would fit: model\.quantize: int8 \(or --quantize int8\): its weights then need 1\.2 GiB of RAM outside the wasm heap \(nf4: 0\.6 GiB\); or a machine with more memory\.$/);
  });
});
