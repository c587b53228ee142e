import { describe, expect, it } from "vitest";
import { checkWebGpuFit, largestWeightBytes, type WebGpuAdapter } from "../../../src/backend/webgpu.js";
import { parseModelConfig } from "../../../src/model/config.js";

const adapter = (binding: number): WebGpuAdapter => ({ vendor: "acme", architecture: "gen1", description: "Acme GPU", isFallbackAdapter: false, maxBufferSize: 2 ** 32, maxStorageBufferBindingSize: binding });
// Llama-3.2-1B's shapes: a 128256 × 2048 embedding (1002 MiB of float32) is its largest tensor.
const llama1b = parseModelConfig({ model_type: "llama", vocab_size: 128256, hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8 }, "config.json");

describe("what fits a WebGPU adapter", () => {
  it("finds the largest float32 tensor the tfjs path makes", () => {
    expect(largestWeightBytes(llama1b)).toEqual({ bytes: 4 * 128256 * 2048, what: "the token embedding (128256 × 2048)" });
    const wide = parseModelConfig({ model_type: "llama", vocab_size: 100, hidden_size: 64, intermediate_size: 512, num_hidden_layers: 1, num_attention_heads: 4 }, "config.json");
    expect(largestWeightBytes(wide)).toEqual({ bytes: 4 * 64 * 1024, what: "gate|up (64 × 1024)" });
  });

  it("refuses a model whose largest tensor exceeds the binding limit, naming both sizes", () => {
    expect(() => checkWebGpuFit(llama1b, adapter(2 ** 30))).not.toThrow();
    expect(() => checkWebGpuFit(llama1b, adapter(128 * 2 ** 20))).toThrow(
      "the token embedding (128256 × 2048) is 1002 MiB of float32, more than this WebGPU adapter binds at once (maxStorageBufferBindingSize 128 MiB, acme gen1 (Acme GPU)); this model does not fit the webgpu backend on it: use the wasm or tensorflow backend (leave --backend out).",
    );
  });
});
