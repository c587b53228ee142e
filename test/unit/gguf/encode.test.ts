import { join } from "node:path";
import { gguf, GGMLQuantizationType, GGUFValueType } from "@huggingface/gguf";
import { describe, expect, it } from "vitest";
import { dequantizeQ8_0, encodeTensor, quantizeQ8_0 } from "../../../src/gguf/encode.js";
import { serializeGguf, writeGguf } from "../../../src/gguf/writer.js";
import { useTempDir } from "../io/safetensors-fixture.js";

const tempDir = useTempDir();

describe("Q8_0 (ggml's block layout)", () => {
  it("stores d = max|x|/127 as f16, then round(x/d) with halves away from zero", () => {
    // max |x| = 127·0.5, so d = 0.5 exactly and x/d = 2x: 0.25 → 0.5 rounds to 1, -0.75 → -1.5 to -2, 1.25 → 2.5 to 3.
    const block = Float32Array.from({ length: 32 }, (_, i) => [0.25, -0.75, 1.25, 63.5, -63.5, 0][i] ?? i / 4);
    const bytes = quantizeQ8_0(block);
    expect(bytes).toHaveLength(34);
    const view = new DataView(bytes.buffer);
    expect(view.getUint16(0, true)).toBe(0x3800); // 0.5 in f16
    const quants = Array.from({ length: 32 }, (_, j) => view.getInt8(2 + j));
    expect(quants.slice(0, 6)).toEqual([1, -2, 3, 127, -127, 0]);
    // The rest are i/4, so x/d = i/2: halves (odd i) round up, away from zero.
    expect(quants.slice(6)).toEqual(Array.from({ length: 26 }, (_, k) => Math.floor((6 + k) / 2 + 0.5)));
    expect([...dequantizeQ8_0(bytes, 32).subarray(0, 6)]).toEqual([0.5, -1, 1.5, 63.5, -63.5, 0]);
  });

  it("writes a zero block as d = 0 and zero quants, and keeps every value within half a step", () => {
    const values = Float32Array.from({ length: 96 }, (_, i) => (i < 32 ? 0 : Math.sin(i) * (i % 7)));
    const bytes = quantizeQ8_0(values);
    expect([...bytes.subarray(0, 34)].every((b) => b === 0)).toBe(true);
    const back = dequantizeQ8_0(bytes, 96);
    for (let b = 1; b < 3; b++) {
      const block = values.subarray(b * 32, b * 32 + 32);
      const step = Math.max(...block.map(Math.abs)) / 127;
      for (let j = 0; j < 32; j++) expect(Math.abs((back[b * 32 + j] ?? 0) - (block[j] ?? 0))).toBeLessThanOrEqual(step * 0.5 + step * 1e-3);
    }
  });

  it("refuses a length that is not whole blocks (a bug in the caller)", () => {
    expect(() => quantizeQ8_0(new Float32Array(33))).toThrow(/not whole blocks of 32/);
  });
});

describe("typed tensors in the GGUF writer", () => {
  it("writes F16, BF16 and Q8_0 tensors and array metadata that @huggingface/gguf reads back", async () => {
    const values = Float32Array.from({ length: 64 }, (_, i) => i / 8 - 4);
    const path = join(await tempDir(), "typed.gguf");
    await writeGguf(path, {
      metadata: {
        "general.architecture": { type: "string", value: "llama" },
        "test.strings": { type: "array", itemType: "string", value: ["a", "ü", ""] },
        "test.ints": { type: "array", itemType: "int32", value: [1, -2, 3] },
        "test.floats": { type: "array", itemType: "float32", value: Float32Array.of(0.5, -1.25) },
      },
      tensors: [
        { name: "f16", shape: [2, 32], type: "F16", data: () => encodeTensor(values, "F16") },
        { name: "bf16", shape: [2, 32], type: "BF16", data: () => encodeTensor(values, "BF16") },
        { name: "q8", shape: [2, 32], type: "Q8_0", data: () => encodeTensor(values, "Q8_0") },
        { name: "f32", shape: [64], data: values },
      ],
    });
    const parsed = await gguf(path, { allowLocalFile: true, typedMetadata: true });
    expect(parsed.typedMetadata["test.strings"]).toEqual({ value: ["a", "ü", ""], type: GGUFValueType.ARRAY, subType: GGUFValueType.STRING });
    expect(parsed.typedMetadata["test.ints"]).toEqual({ value: [1, -2, 3], type: GGUFValueType.ARRAY, subType: GGUFValueType.INT32 });
    expect(parsed.typedMetadata["test.floats"]).toEqual({ value: [0.5, -1.25], type: GGUFValueType.ARRAY, subType: GGUFValueType.FLOAT32 });
    expect(parsed.tensorInfos.map((t) => [t.name, t.dtype, t.shape, t.offset])).toEqual([
      ["f16", GGMLQuantizationType.F16, [32n, 2n], 0n],
      ["bf16", GGMLQuantizationType.BF16, [32n, 2n], 128n],
      ["q8", GGMLQuantizationType.Q8_0, [32n, 2n], 256n],
      ["f32", GGMLQuantizationType.F32, [64n], 352n], // 68 bytes of Q8_0 padded to 96
    ]);
    // Bytes that do not fit the type are a bug, caught before they shift every later tensor.
    await expect(serializeGguf({ metadata: {}, tensors: [{ name: "q", shape: [32], type: "Q8_0", data: () => new Uint8Array(33) }] })).rejects.toThrow(/gave 33 bytes, but Q8_0 \[32\] takes 34/);
  });
});
