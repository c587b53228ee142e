/**
 * How the frozen base weights are stored: `none` keeps today's float32 tfjs tensors; the others hold every linear
 * weight and the embedding/LM head in the native addon's memory, outside the wasm heap (see model/frozen.ts).
 */
export const QUANTIZE_CHOICES = ["none", "bf16", "int8", "nf4"] as const;
export type Quantize = (typeof QUANTIZE_CHOICES)[number];

/** Elements per int8/nf4 block along a row; each block carries one float32 scale. */
export const QUANT_BLOCK = 64;

/** Bytes one stored weight takes, scales included (bf16: f16 checkpoints stay f16, also 2 bytes). */
export function storedBytesPerWeight(quantize: Quantize): number {
  switch (quantize) {
    case "none":
      return 4;
    case "bf16":
      return 2;
    case "int8":
      return 1 + 4 / QUANT_BLOCK;
    case "nf4":
      return 0.5 + 4 / QUANT_BLOCK;
  }
}
