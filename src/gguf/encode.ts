import { f16ToF32, f32ToBf16, f32ToF16, toLeBytes } from "../io/dtype.js";
import { Q8_0_BLOCK, type GgmlTypeName } from "./writer.js";

/** A tensor's float32 values as the bytes of a ggml type (row-major, rows along the innermost dimension). */
export function encodeTensor(values: Float32Array, type: GgmlTypeName): Uint8Array {
  switch (type) {
    case "F32":
      return toLeBytes(values);
    case "F16":
      return toLeBytes(f32ToF16(values));
    case "BF16":
      return toLeBytes(f32ToBf16(values));
    case "Q8_0":
      return quantizeQ8_0(values);
  }
}

/**
 * ggml's Q8_0, as its reference quantize_row_q8_0_ref: per block of 32 values, d = max|x| / 127 stored as an f16,
 * then each x·(1/d) rounded half away from zero to an int8 (the scale used is the float32 d, before it is rounded
 * to f16; a block of zeros has d = 0 and all-zero quants). Blocks are 34 bytes: the f16 d, then 32 int8.
 */
export function quantizeQ8_0(values: Float32Array): Uint8Array {
  if (values.length % Q8_0_BLOCK !== 0) throw new Error(`Q8_0: ${values.length} values are not whole blocks of ${Q8_0_BLOCK} (this is a bug)`);
  const blocks = values.length / Q8_0_BLOCK;
  const out = new Uint8Array(blocks * (2 + Q8_0_BLOCK));
  const view = new DataView(out.buffer);
  const scale = new Float32Array(1);
  for (let b = 0; b < blocks; b++) {
    const start = b * Q8_0_BLOCK;
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK; j++) amax = Math.max(amax, Math.abs(values[start + j] ?? 0));
    scale[0] = amax / 127;
    const d = scale[0] ?? 0;
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const at = b * (2 + Q8_0_BLOCK);
    view.setUint16(at, f32ToF16(scale)[0] ?? 0, true);
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      const x = Math.fround((values[start + j] ?? 0) * id);
      // C's roundf: halves away from zero (Math.round rounds them up).
      view.setInt8(at + 2 + j, Math.sign(x) * Math.round(Math.abs(x)));
    }
  }
  return out;
}

/** The values a Q8_0 block stores: int8 × f16 scale, as ggml dequantizes them. */
export function dequantizeQ8_0(bytes: Uint8Array, count: number): Float32Array {
  const out = new Float32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const half = new Uint16Array(1);
  const scale = new Float32Array(1);
  for (let b = 0; b < count / Q8_0_BLOCK; b++) {
    const at = b * (2 + Q8_0_BLOCK);
    half[0] = view.getUint16(at, true);
    f16ToF32(half, scale);
    for (let j = 0; j < Q8_0_BLOCK; j++) out[b * Q8_0_BLOCK + j] = view.getInt8(at + 2 + j) * (scale[0] ?? 0);
  }
  return out;
}
