/**
 * A float32 copy of a checkpoint whose weights are what the quantized loader stores, simulated in float64
 * (quant-reference.ts): every matrix goes through the store except GPT-2's position table, and GPT-2's Conv1D
 * weights ([in, out] on disk) are quantized as [out, in] rows, as the loader does.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { quantizeInt8Reference, quantizeNf4Reference, roundToBf16 } from "./quant-reference.js";
import { readSafetensors } from "./reference-model.js";
import { writeSafetensors, type TinyTensor } from "./tiny-checkpoint.js";

export function dequantizedCheckpoint(dir: string, format: SimulatedFormat, out: string): string {
  mkdirSync(out, { recursive: true });
  for (const file of ["config.json", "tokenizer.json", "tokenizer_config.json"]) {
    if (existsSync(join(dir, file))) copyFileSync(join(dir, file), join(out, file));
  }
  const gpt2 = (JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as { model_type?: string }).model_type === "gpt2";
  const tensors: Record<string, TinyTensor> = {};
  for (const [name, t] of readSafetensors(join(dir, "model.safetensors"))) {
    if (t.shape.length !== 2 || name.endsWith("wpe.weight")) {
      tensors[name] = { shape: t.shape, data: t.data };
      continue;
    }
    const [rows = 0, cols = 0] = t.shape;
    const conv = gpt2 && !name.endsWith("wte.weight");
    const source = conv ? transpose(t.data, rows, cols) : t.data;
    const simulated = simulateStored(format, t.dtype as "F32" | "F16" | "BF16", source, conv ? cols : rows, conv ? rows : cols);
    tensors[name] = { shape: t.shape, data: conv ? transpose(simulated, cols, rows) : simulated };
  }
  writeSafetensors(join(out, "model.safetensors"), tensors, "F32");
  return out;
}

function transpose(m: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(m.length);
  for (let r = 0; r < rows; r += 1) for (let c = 0; c < cols; c += 1) out[c * rows + r] = m[r * cols + c] ?? 0;
  return out;
}

export type SimulatedFormat = "bf16" | "int8" | "nf4";

/**
 * What the store keeps for W [rows, cols] given in float64 from a file of `dtype`: bf16 rounds float32 values and
 * keeps BF16 and F16 files exactly (an F16 file stays f16); int8 and nf4 quantize the float32 values.
 */
export function simulateStored(format: SimulatedFormat, dtype: "F32" | "F16" | "BF16", values: Float64Array, rows: number, cols: number): Float64Array {
  const asFloat32 = Float64Array.from(values, (v) => Math.fround(v));
  if (format === "int8") return quantizeInt8Reference(asFloat32, rows, cols);
  if (format === "nf4") return quantizeNf4Reference(asFloat32, rows, cols);
  return dtype === "F32" ? Float64Array.from(asFloat32, roundToBf16) : asFloat32;
}
