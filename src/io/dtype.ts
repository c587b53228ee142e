/**
 * Float conversions between the 16-bit formats in checkpoints and float32, plus little-endian byte views.
 * Encoders round to nearest, ties to even, like PyTorch's `.to(torch.float16/bfloat16)`.
 */

const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** bfloat16 is the top half of a float32, so decoding is a shift. */
export function bf16ToF32(src: Uint16Array, dst: Float32Array): void {
  checkLengths(src.length, dst.length);
  const bits = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) bits[i] = (src[i] ?? 0) << 16;
}

let halfTable: Float32Array | undefined;

/** All 65536 half values, decoded once (256 KB) so bulk decoding is one lookup per element. */
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  const table = new Float32Array(65536);
  const bits = new Uint32Array(table.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) {
      // Zero or subnormal: mantissa × 2^-24, exact in float32.
      table[h] = (sign ? -1 : 1) * mantissa * 2 ** -24;
    } else if (exponent === 0x1f) {
      // Inf or NaN; the NaN payload moves to the top of the float32 mantissa.
      bits[h] = (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
    } else {
      bits[h] = (sign | ((exponent - 15 + 127) << 23) | (mantissa << 13)) >>> 0;
    }
  }
  halfTable = table;
  return table;
}

/** IEEE 754 half → float32 (exact: every half is representable). */
export function f16ToF32(src: Uint16Array, dst: Float32Array): void {
  checkLengths(src.length, dst.length);
  const table = halfToFloatTable();
  for (let i = 0; i < src.length; i++) dst[i] = table[src[i] ?? 0] ?? 0;
}

/** float32 → bfloat16, round to nearest even; NaN stays a (quiet) NaN instead of rounding into Inf. */
export function f32ToBf16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const x = bits[i] ?? 0;
    if ((x & 0x7fffffff) > 0x7f800000) {
      out[i] = (x >>> 16) | 0x40;
    } else {
      out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
    }
  }
  return out;
}

/** float32 → IEEE half, round to nearest even; too large → ±Inf, too small → subnormal or ±0. */
export function f32ToF16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = floatBitsToHalf(bits[i] ?? 0);
  return out;
}

function floatBitsToHalf(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) return mantissa === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mantissa >>> 13);
  const e = exponent - 127;
  if (e > 15) return sign | 0x7c00;
  if (e >= -14) {
    // Normal half. A carry out of the mantissa bumps the exponent, up to Inf: exactly what rounding needs.
    const kept = ((e + 15) << 10) | (mantissa >>> 13);
    return sign | (kept + roundUp(mantissa, 13, kept));
  }
  // Subnormal half: count units of 2^-24, shifting the full 24-bit significand.
  const shift = -e - 1;
  if (shift > 24) return sign;
  const significand = mantissa | 0x800000;
  const kept = significand >>> shift;
  return sign | (kept + roundUp(significand, shift, kept));
}

/** 1 when the `shift` dropped low bits of `value` round `kept` up (more than half, or exactly half and odd). */
function roundUp(value: number, shift: number, kept: number): number {
  const dropped = value & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return dropped > half || (dropped === half && (kept & 1) === 1) ? 1 : 0;
}

function checkLengths(src: number, dst: number): void {
  if (src !== dst) throw new RangeError(`dtype conversion: source has ${src} elements, destination ${dst}`);
}

/** A copy when the view would be unaligned (typed arrays need element-aligned offsets). */
function aligned(bytes: Uint8Array, size: number): Uint8Array {
  return bytes.byteOffset % size === 0 ? bytes : bytes.slice();
}

/** Little-endian bytes as u16 values: a view when possible, else a copy. */
export function leBytesToU16(bytes: Uint8Array): Uint16Array {
  const count = bytes.byteLength >> 1;
  if (hostIsLittleEndian) {
    const src = aligned(bytes, 2);
    return new Uint16Array(src.buffer, src.byteOffset, count);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Uint16Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getUint16(i * 2, true);
  return out;
}

/** Little-endian bytes as float32 values: a view when possible, else a copy. */
export function leBytesToF32(bytes: Uint8Array): Float32Array {
  const count = bytes.byteLength >> 2;
  if (hostIsLittleEndian) {
    const src = aligned(bytes, 4);
    return new Float32Array(src.buffer, src.byteOffset, count);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** Little-endian float64 bytes, narrowed to float32. */
export function leBytesF64ToF32(bytes: Uint8Array): Float32Array {
  const count = bytes.byteLength >> 3;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
  return out;
}

/** The little-endian bytes of a typed array: a view on little-endian hosts, else a byte-swapped copy. */
export function toLeBytes(values: Float32Array | Uint16Array): Uint8Array {
  if (hostIsLittleEndian) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint8Array(values.byteLength);
  const view = new DataView(out.buffer);
  if (values instanceof Float32Array) values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  else values.forEach((v, i) => view.setUint16(i * 2, v, true));
  return out;
}
