/**
 * The storage formats of the native weight store (issue #12) simulated in float64, written from the format
 * definitions rather than from the C++: the native tests compare the store against these bit for bit, and the
 * model tests use them to predict what a quantized model computes.
 *
 * Every function takes the values as float32 first (Math.fround), as the store reads its source: pass float32 values
 * (or the widened values of a BF16/F16 tensor) to get exactly what the store holds.
 */
import { QUANT_BLOCK } from "../../src/model/quantize.js";

/** QLoRA / bitsandbytes NormalFloat4; every entry is a float32. */
export const NF4_CODE_BOOK: readonly number[] = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
].map((value) => Math.fround(value));

/** The code of 0.0: what an all-zero block stores. */
export const NF4_ZERO_CODE = 7;

const NF4_MIDPOINTS = NF4_CODE_BOOK.slice(1).map((value, c) => ((NF4_CODE_BOOK[c] ?? NaN) + value) / 2);

/**
 * The nf4 code of t = value / absmax: the nearest code-book entry, found as the number of midpoints (a + b) / 2
 * (in float64) below t, so a t exactly on a midpoint takes the lower code.
 */
export function nf4Code(t: number): number {
  let code = 0;
  for (const midpoint of NF4_MIDPOINTS) if (t > midpoint) code += 1;
  return code;
}

/** Round half away from zero, clamped to [-127, 127]. */
export function int8Code(t: number): number {
  const q = Math.sign(t) * Math.round(Math.abs(t)); // Math.round rounds halves up, so this rounds them away from 0
  if (q === 0 || Number.isNaN(q)) return 0; // never -0: the store's integer code has no sign for zero
  return Math.min(127, Math.max(-127, q));
}

/** One block's quantization: the float32 scale it stores and its dequantized values. */
export interface BlockResult {
  scale: number;
  codes: number[];
  values: number[];
}

function absmaxOf(block: readonly number[]): number {
  return block.reduce((max, value) => Math.max(max, Math.abs(value)), 0);
}

/** int8: scale = absmax / 127 as float32, code = round(x / scale), value = float32(code · scale). */
export function int8Block(block: readonly number[]): BlockResult {
  const scale = Math.fround(absmaxOf(block) / 127);
  const codes = block.map((value) => (scale === 0 ? 0 : int8Code(value / scale)));
  return { scale, codes, values: codes.map((code) => Math.fround(code * scale)) };
}

/** nf4: scale = absmax, code = nearest entry to x / absmax, value = float32(codeBook[code] · absmax). */
export function nf4Block(block: readonly number[]): BlockResult {
  const scale = absmaxOf(block);
  const codes = block.map((value) => (scale === 0 ? NF4_ZERO_CODE : nf4Code(value / scale)));
  return { scale, codes, values: codes.map((code) => Math.fround((NF4_CODE_BOOK[code] ?? NaN) * scale)) };
}

/** Every block of every row (blocks of QUANT_BLOCK along a row, the last one shorter, none crossing rows). */
export function quantizeBlocks(
  values: Float64Array | Float32Array,
  rows: number,
  cols: number,
  quantizeBlock: (block: readonly number[]) => BlockResult,
): { dequantized: Float64Array; scales: number[][] } {
  if (values.length !== rows * cols) throw new Error(`expected ${rows * cols} values, got ${values.length}`);
  const dequantized = new Float64Array(rows * cols);
  const scales: number[][] = [];
  for (let r = 0; r < rows; r += 1) {
    const rowScales: number[] = [];
    for (let c0 = 0; c0 < cols; c0 += QUANT_BLOCK) {
      const end = Math.min(cols, c0 + QUANT_BLOCK);
      const block = Array.from(values.subarray(r * cols + c0, r * cols + end), (value) => Math.fround(value));
      const result = quantizeBlock(block);
      rowScales.push(result.scale);
      dequantized.set(result.values, r * cols + c0);
    }
    scales.push(rowScales);
  }
  return { dequantized, scales };
}

/** W [rows, cols] as an nf4 store dequantizes it. */
export function quantizeNf4Reference(values: Float64Array | Float32Array, rows: number, cols: number): Float64Array {
  return quantizeBlocks(values, rows, cols, nf4Block).dequantized;
}

/** W [rows, cols] as an int8 store dequantizes it. */
export function quantizeInt8Reference(values: Float64Array | Float32Array, rows: number, cols: number): Float64Array {
  return quantizeBlocks(values, rows, cols, int8Block).dequantized;
}

function roundHalfEven(q: number): number {
  const floor = Math.floor(q);
  const rest = q - floor;
  if (rest !== 0.5) return rest < 0.5 ? floor : floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** The binary exponent of a nonzero finite float32 magnitude, no lower than -126 (float32 subnormals share it). */
function exponentOf(magnitude: number): number {
  let exponent = 0;
  let scaled = magnitude;
  while (scaled >= 2) {
    scaled /= 2;
    exponent += 1;
  }
  while (scaled < 1 && exponent > -126) {
    scaled *= 2;
    exponent -= 1;
  }
  return exponent;
}

/**
 * A float32 value rounded to a binary format with `mantissaBits` stored mantissa bits, `minExponent` (the smallest
 * normal's exponent) and `overflow` (the smallest magnitude that rounds to infinity), ties to even.
 */
function roundToFormat(value: number, mantissaBits: number, minExponent: number, overflow: number): number {
  const x = Math.fround(value);
  if (Number.isNaN(x) || !Number.isFinite(x) || x === 0) return x;
  const sign = x < 0 ? -1 : 1;
  const magnitude = Math.abs(x);
  if (magnitude >= overflow) return sign * Infinity;
  const quantum = 2 ** (Math.max(exponentOf(magnitude), minExponent) - mantissaBits);
  return sign * roundHalfEven(magnitude / quantum) * quantum;
}

/** What a bf16 store holds for a float32 value (round to nearest even). */
export function roundToBf16(value: number): number {
  return roundToFormat(value, 7, -126, (2 - 2 ** -8) * 2 ** 127);
}

/** What an f16 store holds for a float32 value (round to nearest even; 65520 and beyond become infinity). */
export function roundToF16(value: number): number {
  return roundToFormat(value, 10, -14, 65520);
}

/** The 16 bits of a bf16 value (which must be representable: use roundToBf16 first). */
export function bf16Bits(value: number): number {
  const bits = new Uint32Array(new Float32Array([value]).buffer)[0] ?? 0;
  if ((bits & 0xffff) !== 0) throw new Error(`${value} is not a bf16 value`);
  return bits >>> 16;
}

/** The 16 bits of a binary16 value (which must be representable: use roundToF16 first). */
export function f16Bits(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const magnitude = Math.abs(value);
  if (magnitude === Infinity) return sign | 0x7c00;
  if (magnitude < 2 ** -14) return sign | (magnitude / 2 ** -24); // subnormal (or zero)
  const exponent = exponentOf(magnitude);
  const mantissa = magnitude / 2 ** exponent - 1;
  if (exponent > 15 || !Number.isInteger(mantissa * 1024)) throw new Error(`${value} is not a binary16 value`);
  return sign | ((exponent + 15) << 10) | (mantissa * 1024);
}

/** A binary16 bit pattern's value. */
export function f16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** A bf16 bit pattern's value. */
export function bf16Value(bits: number): number {
  return new Float32Array(new Uint32Array([bits << 16]).buffer)[0] ?? NaN;
}
