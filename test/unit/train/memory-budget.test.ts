import { describe, expect, it } from "vitest";
import { parseModelConfig } from "../../../src/model/config.js";
import { estimateTrainingMemory, parameterCount, WASM_HEAP_BYTES, whatFits } from "../../../src/train/memory-budget.js";

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
