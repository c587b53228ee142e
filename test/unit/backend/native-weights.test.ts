import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  loadNativeWeights,
  type NativeWeights,
  type NativeWeightsAddon,
  type SourceDtype,
  type StoreFormat,
} from "../../../src/backend/native-weights.js";
import { describeNeeds, nativeAddon } from "../../helpers/needs.js";
import { lcg } from "../../helpers/lcg.js";
import {
  bf16Bits,
  f16Bits,
  int8Block,
  NF4_CODE_BOOK,
  nf4Block,
  nf4Code,
  quantizeBlocks,
  quantizeInt8Reference,
  quantizeNf4Reference,
  roundToBf16,
  roundToF16,
} from "../../helpers/quant-reference.js";

// Optional like the GEMM; required (a failure, not a skip) where FINETUNE_EXPECT_NATIVE=1.
const native = loadNativeWeights();
const ADDON_PATH = fileURLToPath(new URL("../../../native/build/Release/finetune_matmul.node", import.meta.url));
const FORMATS: readonly StoreFormat[] = ["f32", "bf16", "f16", "int8", "nf4"];
const DTYPES: readonly SourceDtype[] = ["F32", "BF16", "F16"];

function addon(): NativeWeightsAddon {
  if (native.addon === null) throw new Error(`native weight store unavailable: ${native.reason}`);
  return native.addon;
}


function randomValues(count: number, seed: number, scale = 1): Float64Array {
  const next = lcg(seed);
  return Float64Array.from({ length: count }, () => next() * scale);
}

/**
 * A safetensors-like source for `values` in `dtype`, placed at an odd byte offset of a larger buffer (the store must
 * not care), and the values the store reads from it (float32, or the widened bf16/f16).
 */
function source(values: Float64Array, dtype: SourceDtype): { bytes: Uint8Array; widened: Float64Array } {
  const size = dtype === "F32" ? 4 : 2;
  const raw = new Uint8Array(values.length * size);
  const view = new DataView(raw.buffer);
  const widened = new Float64Array(values.length);
  values.forEach((value, i) => {
    if (dtype === "F32") {
      view.setFloat32(i * 4, value, true);
      widened[i] = Math.fround(value);
    } else if (dtype === "BF16") {
      widened[i] = roundToBf16(value);
      view.setUint16(i * 2, bf16Bits(widened[i] ?? NaN), true);
    } else {
      widened[i] = roundToF16(value);
      view.setUint16(i * 2, f16Bits(widened[i] ?? NaN), true);
    }
  });
  const holder = new Uint8Array(raw.length + 3);
  holder.set(raw, 1);
  return { bytes: holder.subarray(1, 1 + raw.length), widened };
}

/** What a store of `format` holds for the widened source values, in float64 (each value a float32). */
function expected(format: StoreFormat, widened: Float64Array, rows: number, cols: number): Float64Array {
  switch (format) {
    case "f32":
      return widened;
    case "bf16":
      return widened.map(roundToBf16);
    case "f16":
      return widened.map(roundToF16);
    case "int8":
      return quantizeInt8Reference(widened, rows, cols);
    case "nf4":
      return quantizeNf4Reference(widened, rows, cols);
  }
}

function dequantize(w: NativeWeights): Float32Array {
  const out = new Float32Array(w.rows * w.cols).fill(NaN);
  addon().weightsDequantize(w, out);
  return out;
}

/** The first index where `actual` is not bit-equal to float32(expected), or -1. */
function firstMismatch(actual: Float32Array, wanted: Float64Array): number {
  for (let i = 0; i < wanted.length; i += 1) if (!Object.is(actual[i], Math.fround(wanted[i] ?? NaN))) return i;
  return actual.length === wanted.length ? -1 : wanted.length;
}

function create(values: Float64Array, rows: number, cols: number, format: StoreFormat, dtype: SourceDtype = "F32"): NativeWeights {
  return addon().weightsCreate(source(values, dtype).bytes, dtype, rows, cols, format);
}

describe("native weight store loading", () => {
  it("FINETUNE_NATIVE=0 turns it off with the addon's reason", () => {
    expect(loadNativeWeights({ FINETUNE_NATIVE: "0" })).toEqual({ addon: null, reason: "disabled by FINETUNE_NATIVE=0" });
  });
});

describeNeeds(nativeAddon(native), "native weight store", () => {
  it("stores every format from every source dtype, bit-equal to the float64 reference (rows not a multiple of 64)", () => {
    const shapes = [
      [3, 172],
      [2, 1],
      [4, 63],
      [3, 65],
      [2, 130],
      [5, 64],
      [1, 16],
      [2, 17],
    ] as const;
    for (const [rows, cols] of shapes) {
      const values = randomValues(rows * cols, rows * 1000 + cols, 3);
      for (const dtype of DTYPES) {
        const { bytes, widened } = source(values, dtype);
        for (const format of FORMATS) {
          const w = addon().weightsCreate(bytes, dtype, rows, cols, format);
          expect({ rows: w.rows, cols: w.cols, format: w.format }).toEqual({ rows, cols, format });
          const mismatch = firstMismatch(dequantize(w), expected(format, widened, rows, cols));
          expect(mismatch, `${format} from ${dtype}, ${rows}x${cols}: element ${mismatch}`).toBe(-1);
          addon().weightsFree(w);
        }
      }
    }
  });

  it("nf4: code-book values come back exactly, each block has its own absmax, and ties take the lower code", () => {
    // Row 0: the code book itself (absmax 1) four times; row 1: blocks of very different sizes, the largest magnitude
    // negative in the second; row 2: a zero block between two others; 130 columns, so the last block has 2.
    const cols = 130;
    const values = new Float64Array(3 * cols);
    for (let c = 0; c < cols; c += 1) values[c] = NF4_CODE_BOOK[c % 16] ?? NaN;
    const rowScale = [1000, 0.001, 7];
    for (let c = 0; c < cols; c += 1) values[cols + c] = Math.fround(((c * 37) % 19) / 19 - 0.5) * (rowScale[Math.floor(c / 64)] ?? 1);
    values[cols + 70] = -2.5 * 0.001; // the block's absmax, negative
    for (let c = 0; c < cols; c += 1) values[2 * cols + c] = c >= 64 && c < 128 ? 0 : Math.sin(c);
    values.forEach((value, i) => (values[i] = Math.fround(value)));
    const w = create(values, 3, cols, "nf4");
    const out = dequantize(w);
    for (let c = 0; c < cols; c += 1) expect(out[c], `code book entry ${c % 16}`).toBe(NF4_CODE_BOOK[c % 16]);
    expect(out[cols + 70]).toBe(Math.fround(-2.5 * 0.001)); // code 0 (-1.0) times the absmax
    expect(Array.from(out.subarray(2 * cols + 64, 2 * cols + 128)).every((v) => Object.is(v, 0))).toBe(true);
    expect(firstMismatch(out, quantizeNf4Reference(values, 3, cols))).toBe(-1);
    // Each block's scale is its own absmax (the reference's, which the store matched bit for bit above).
    const { scales } = quantizeBlocks(values, 3, cols, nf4Block);
    const absmax = (row: number, block: number) =>
      Math.max(...Array.from(values.subarray(row * cols + block * 64, row * cols + Math.min(cols, (block + 1) * 64)), Math.abs));
    expect(scales[1]).toEqual([absmax(1, 0), absmax(1, 1), absmax(1, 2)]);
    expect(scales[1]?.[1]).toBe(Math.fround(2.5 * 0.001));
    expect(scales[2]?.[1]).toBe(0);
    addon().weightsFree(w);

    // The reference's nearest code is the code book's nearest entry; exactly on a midpoint, the lower one.
    const next = lcg(99);
    for (let i = 0; i < 2000; i += 1) {
      const t = next();
      const distances = NF4_CODE_BOOK.map((v) => Math.abs(t - v));
      expect(nf4Code(t)).toBe(distances.indexOf(Math.min(...distances)));
    }
    for (let c = 0; c < 15; c += 1) {
      const midpoint = ((NF4_CODE_BOOK[c] ?? NaN) + (NF4_CODE_BOOK[c + 1] ?? NaN)) / 2;
      expect(nf4Code(midpoint)).toBe(c);
    }
    for (const v of NF4_CODE_BOOK) expect(Math.fround(v)).toBe(v);
    // The store agrees on ties: midpoints that are float32 values, in a block whose absmax is 1.
    const midpoints = NF4_CODE_BOOK.slice(1)
      .map((v, c) => ((NF4_CODE_BOOK[c] ?? NaN) + v) / 2)
      .filter((m) => Math.fround(m) === m);
    expect(midpoints.length).toBeGreaterThan(3);
    const onMidpoints = create(Float64Array.from([1, ...midpoints]), 1, midpoints.length + 1, "nf4");
    const tiesOut = dequantize(onMidpoints);
    midpoints.forEach((m, i) => expect(tiesOut[i + 1], `midpoint ${m}`).toBe(NF4_CODE_BOOK[nf4Code(m)]));
    expect(midpoints.map(nf4Code)).toEqual(midpoints.map((m) => NF4_CODE_BOOK.findIndex((v) => v > m) - 1));
    addon().weightsFree(onMidpoints);
  });

  it("int8: scale absmax/127 per block, halves rounded away from zero, zero blocks, a negative absmax", () => {
    const block = [-2, 1, 0.5, 0, -0.25, (2 / 127) * 0.5, (-2 / 127) * 1.5];
    const result = int8Block(block.map(Math.fround));
    expect(result.scale).toBe(Math.fround(2 / 127));
    expect(result.codes.slice(0, 5)).toEqual([-127, 64, 32, 0, -16]);
    // absmax 127: scale 1 exactly, so every half is a tie, rounded away from zero by the store too.
    const ties = [127, 0.5, 1.5, -2.5, 126.5, -0.5, Math.fround(0.49999997), -126.5];
    expect(int8Block(ties).codes).toEqual([127, 1, 2, -3, 127, -1, 0, -127]);
    const tied = create(Float64Array.from(ties), 1, ties.length, "int8");
    expect(Array.from(dequantize(tied))).toEqual([127, 1, 2, -3, 127, -1, 0, -127]);
    addon().weightsFree(tied);
    const values = new Float64Array(2 * 70);
    values.set(block);
    for (let c = 64; c < 70; c += 1) values[c] = 0; // a short, all-zero last block
    for (let c = 0; c < 70; c += 1) values[70 + c] = Math.fround(Math.cos(c) * (c < 64 ? 3 : 0.01));
    const w = create(values, 2, 70, "int8");
    const out = dequantize(w);
    expect(out[0]).toBe(Math.fround(-127 * Math.fround(2 / 127)));
    expect(Array.from(out.subarray(64, 70))).toEqual([0, 0, 0, 0, 0, 0]);
    expect(firstMismatch(out, quantizeInt8Reference(values, 2, 70))).toBe(-1);
    addon().weightsFree(w);
  });

  it("bf16 and f16 round to nearest even, with subnormals, overflow to infinity, signed zero and NaN", () => {
    const specials = [
      1 + 2 ** -11, // f16 tie: stays 1
      1 + 3 * 2 ** -11, // f16 tie: rounds up to the even 1 + 2^-9
      1 + 2 ** -8, // bf16 tie: stays 1
      1 + 3 * 2 ** -8, // bf16 tie: up
      65504,
      65519,
      65520, // f16: infinity
      -1e6,
      2 ** -25, // f16: tie with zero → 0
      1.5 * 2 ** -25, // f16: smallest subnormal
      3 * 2 ** -20,
      2 ** -14 - 2 ** -25, // rounds up into the smallest normal half
      1e-40, // a float32 subnormal
      3.4e38, // bf16: beyond the largest finite → infinity
      -0,
      NaN,
    ];
    const values = Float64Array.from(specials, (v) => Math.fround(v));
    for (const format of ["bf16", "f16"] as const) {
      const w = create(values, 1, values.length, format);
      const out = dequantize(w);
      expect(firstMismatch(out, values.map(format === "bf16" ? roundToBf16 : roundToF16)), format).toBe(-1);
      addon().weightsFree(w);
    }
    expect([roundToF16(1 + 2 ** -11), roundToF16(1 + 3 * 2 ** -11), roundToF16(65520), roundToF16(2 ** -25)]).toEqual([1, 1 + 2 ** -9, Infinity, 0]);
    expect([roundToBf16(1 + 2 ** -8), roundToBf16(1 + 3 * 2 ** -8), roundToBf16(3.4e38)]).toEqual([1, 1 + 2 ** -6, Infinity]);
  });

  for (const format of FORMATS) {
    it(`${format}: weightsMatmul matches the float64 product of the dequantized W, both ways, n from 1 to 300`, () => {
      const ns = [1, 3, 8, 9, 16, 33, 300];
      for (const rows of [1, 7, 65, 257]) {
        for (const cols of [1, 63, 64, 172, 200]) {
          const w = create(randomValues(rows * cols, rows * 7 + cols), rows, cols, format);
          const weights = dequantize(w);
          for (const transposed of [false, true]) {
            const [inner, outer] = transposed ? [rows, cols] : [cols, rows];
            for (const n of ns) {
              const x = Float32Array.from(randomValues(n * inner, n + inner));
              // y inside a larger buffer, as in the wasm heap, with sentinels on both sides.
              const heap = new Float32Array(n * outer + 8).fill(12345.5);
              const y = heap.subarray(4, 4 + n * outer);
              addon().weightsMatmul(w, x, n, y, transposed);
              const label = `${rows}x${cols} transposed=${transposed} n=${n}`;
              expect([...heap.subarray(0, 4), ...heap.subarray(4 + n * outer)], label).toEqual(Array(8).fill(12345.5));
              let worst = 0;
              for (let i = 0; i < n; i += 1) {
                for (let o = 0; o < outer; o += 1) {
                  let sum = 0;
                  let magnitude = 0;
                  for (let k = 0; k < inner; k += 1) {
                    const product = (x[i * inner + k] ?? NaN) * (weights[transposed ? k * cols + o : o * cols + k] ?? NaN);
                    sum += product;
                    magnitude += Math.abs(product);
                  }
                  const error = Math.abs((y[i * outer + o] ?? NaN) - sum) / (1e-5 * Math.sqrt(inner) * Math.max(magnitude, 1e-30));
                  worst = Number.isNaN(error) ? Infinity : Math.max(worst, error);
                }
              }
              expect(worst, `${label}: error / tolerance`).toBeLessThanOrEqual(1);
            }
          }
          addon().weightsFree(w);
        }
      }
    });
  }

  it("large matrices go through several dequantized panels (4 MB each) and depth chunks, both ways", () => {
    // 2100 x 600: x·Wᵀ takes panels of 1728 rows; x·W reduces over 2100 rows in two chunks of 1088 and 1012 rows,
    // panels of 960 columns. 70 x 2200: x·Wᵀ reduces over two chunks of columns (1152 and 1048).
    for (const [rows, cols, n, format] of [
      [2100, 600, 12, "int8"],
      [2100, 600, 12, "nf4"],
      [70, 2200, 10, "nf4"],
      [70, 2200, 10, "bf16"],
    ] as const) {
      const w = create(randomValues(rows * cols, 11), rows, cols, format);
      const weights = dequantize(w);
      for (const transposed of [false, true]) {
        const [inner, outer] = transposed ? [rows, cols] : [cols, rows];
        const x = Float32Array.from(randomValues(n * inner, 12));
        const y = new Float32Array(n * outer).fill(NaN);
        addon().weightsMatmul(w, x, n, y, transposed);
        let worst = 0;
        for (let i = 0; i < n; i += 1) {
          for (let o = 0; o < outer; o += 1) {
            let sum = 0;
            let magnitude = 0;
            for (let k = 0; k < inner; k += 1) {
              const product = (x[i * inner + k] ?? NaN) * (weights[transposed ? k * cols + o : o * cols + k] ?? NaN);
              sum += product;
              magnitude += Math.abs(product);
            }
            const error = Math.abs((y[i * outer + o] ?? NaN) - sum) / (1e-5 * Math.sqrt(inner) * magnitude);
            worst = Number.isNaN(error) ? Infinity : Math.max(worst, error);
          }
        }
        expect(worst, `${format} transposed=${transposed}: error / tolerance`).toBeLessThanOrEqual(1);
      }
      addon().weightsFree(w);
    }
  });

  it("y is overwritten (not accumulated), and x and y may share one buffer but must not overlap", () => {
    const w = create(randomValues(9 * 70, 3), 9, 70, "nf4");
    const heap = new Float32Array(2 * 70 + 2 * 9 + 4);
    heap.set(randomValues(2 * 70, 4), 0);
    const x = heap.subarray(0, 2 * 70);
    const y = heap.subarray(2 * 70 + 2, 2 * 70 + 2 + 2 * 9).fill(1e30);
    addon().weightsMatmul(w, x, 2, y, false);
    const once = Array.from(y);
    addon().weightsMatmul(w, x, 2, y, false);
    expect(Array.from(y)).toEqual(once);
    expect(once.every((v) => Math.abs(v) < 100)).toBe(true);
    expect(() => addon().weightsMatmul(w, x, 2, heap.subarray(2 * 70 - 4, 2 * 70 - 4 + 18), false)).toThrow(/y overlaps x/);
    addon().weightsFree(w);
  });

  it("weightsRows looks rows up; a bad id or length is a RangeError that writes nothing", () => {
    const rows = 11;
    const cols = 130;
    for (const format of FORMATS) {
      const w = create(randomValues(rows * cols, 5), rows, cols, format);
      const all = dequantize(w);
      const ids = Int32Array.from([3, 0, 10, 3]);
      const out = new Float32Array(ids.length * cols).fill(NaN);
      addon().weightsRows(w, ids, out);
      ids.forEach((id, i) => expect(Array.from(out.subarray(i * cols, (i + 1) * cols)), format).toEqual(Array.from(all.subarray(id * cols, (id + 1) * cols))));
      const untouched = new Float32Array(2 * cols).fill(7);
      for (const [bad, index] of [[-1, 1], [rows, 0], [2 ** 31 - 1, 1]] as const) {
        const badIds = Int32Array.from([0, 0]);
        badIds[index] = bad;
        expect(() => addon().weightsRows(w, badIds, untouched)).toThrow(RangeError);
        expect(() => addon().weightsRows(w, badIds, untouched)).toThrow(`weightsRows: ids[${index}] = ${bad} is outside [0, ${rows})`);
      }
      expect(untouched.every((v) => v === 7)).toBe(true);
      expect(() => addon().weightsRows(w, Int32Array.from([1]), new Float32Array(cols + 1))).toThrow(
        `weightsRows: out has ${cols + 1} floats but ids.length · cols = 1 · ${cols} = ${cols}`,
      );
      addon().weightsRows(w, new Int32Array(0), new Float32Array(0));
      addon().weightsFree(w);
    }
  });

  it("rejects malformed calls with TypeError/RangeError naming the argument, before touching memory", () => {
    const w = create(randomValues(4 * 8, 6), 4, 8, "int8");
    const call = (fn: string, ...args: unknown[]) => () => (addon() as unknown as Record<string, (...a: unknown[]) => unknown>)[fn]?.(...args);
    const y = new Float32Array(8).fill(3);
    const cases: Array<[() => unknown, ErrorConstructor, RegExp]> = [
      [call("weightsMatmul", w, new Float32Array(15), 2, y, false), RangeError, /weightsMatmul: x has 15 floats but n · cols = 2 · 8 = 16/],
      [call("weightsMatmul", w, new Float32Array(16), 2, new Float32Array(9), false), RangeError, /y has 9 floats but n · rows = 2 · 4 = 8/],
      [call("weightsMatmul", w, new Float32Array(8), 2, y, true), RangeError, /y has 8 floats but n · cols = 2 · 8 = 16/],
      [call("weightsMatmul", w, new Float64Array(16), 2, y, false), TypeError, /x must be a Float32Array/],
      [call("weightsMatmul", w, new Float32Array(16), -1, y, false), RangeError, /n must be a non-negative integer/],
      [call("weightsMatmul", w, new Float32Array(16), 1.5, y, false), RangeError, /n must be a non-negative integer/],
      [call("weightsMatmul", w, new Float32Array(16), 2, y, 1), TypeError, /transposed must be a boolean/],
      [call("weightsMatmul", { rows: 4, cols: 8, format: "int8", bytes: 0 }, new Float32Array(16), 2, y, false), TypeError, /w must be a weights store made by weightsCreate/],
      [call("weightsMatmul", w, new Float32Array(16), 2), TypeError, /expected 5 arguments/],
      [call("weightsCreate", new Uint8Array(10), "F32", 2, 2, "nf4"), RangeError, /source has 10 bytes but rows · cols · 4 \(F32\) = 16/],
      [call("weightsCreate", new Uint8Array(8), "F16", 2, 2, "q4"), TypeError, /format must be "f32", "bf16", "f16", "int8" or "nf4" \(got "q4"\)/],
      [call("weightsCreate", new Uint8Array(8), "fp16", 2, 2, "nf4"), TypeError, /dtype must be "F32", "F16" or "BF16"/],
      [call("weightsCreate", new Float32Array(4), "F32", 2, 2, "nf4"), TypeError, /source must be a Uint8Array/],
      [call("weightsCreate", new Uint8Array(8), "F16", 2 ** 31, 1, "nf4"), RangeError, /rows is too large/],
      [call("weightsDequantize", w, new Float32Array(31)), RangeError, /out has 31 floats but rows · cols = 32/],
      [call("weightsRows", w, new Uint32Array(1), new Float32Array(8)), TypeError, /ids must be a Int32Array/],
      [call("weightsFree", {}), TypeError, /w must be a weights store/],
    ];
    for (const [fn, type, message] of cases) {
      expect(fn).toThrow(type);
      expect(fn).toThrow(message);
    }
    expect(y.every((v) => v === 3)).toBe(true);
    // A detached buffer (the wasm memory grew) reads as empty, so its length no longer matches.
    const buffer = new ArrayBuffer(64);
    const x = new Float32Array(buffer);
    structuredClone(buffer, { transfer: [buffer] });
    expect(() => addon().weightsMatmul(w, x, 2, new Float32Array(8), false)).toThrow(/x has 0 floats/);
    addon().weightsFree(w);
  });

  it("frees memory now, counts it in weightsTotalBytes, and refuses use after free", () => {
    const before = addon().weightsTotalBytes();
    const w = create(randomValues(100 * 200, 8), 100, 200, "nf4");
    // 100 rows of 13 groups of 8 bytes, and 4 float32 scales per row.
    expect(w.bytes).toBe(100 * 13 * 8 + 100 * 4 * 4);
    expect(addon().weightsTotalBytes()).toBe(before + w.bytes);
    const f32 = create(randomValues(10 * 10, 9), 10, 10, "f32");
    const bf16 = create(randomValues(10 * 10, 9), 10, 10, "bf16");
    const int8 = create(randomValues(10 * 10, 9), 10, 10, "int8");
    expect([f32.bytes, bf16.bytes, int8.bytes]).toEqual([400, 200, 100 + 10 * 4]); // one scale per row of 10
    expect(addon().weightsTotalBytes()).toBe(before + w.bytes + 400 + 200 + 140);
    expect(Object.isFrozen(w)).toBe(true);
    expect(() => {
      (w as { rows: number }).rows = 5;
    }).toThrow(TypeError);
    addon().weightsFree(w);
    addon().weightsFree(w);
    expect(addon().weightsTotalBytes()).toBe(before + 400 + 200 + 140);
    for (const use of [
      () => addon().weightsMatmul(w, new Float32Array(200), 1, new Float32Array(100), false),
      () => addon().weightsRows(w, Int32Array.from([0]), new Float32Array(200)),
      () => addon().weightsDequantize(w, new Float32Array(100 * 200)),
    ]) {
      expect(use).toThrow(/the weights store was freed \(weightsFree\) and cannot be used/);
    }
    for (const other of [f32, bf16, int8]) addon().weightsFree(other);
    expect(addon().weightsTotalBytes()).toBe(before);
  });

  it("empty shapes: no rows, no columns, n = 0", () => {
    const empty = addon().weightsCreate(new Uint8Array(0), "F32", 0, 5, "nf4");
    expect(empty.bytes).toBe(0);
    addon().weightsMatmul(empty, new Float32Array(10), 2, new Float32Array(0), false);
    const noCols = addon().weightsCreate(new Uint8Array(0), "BF16", 3, 0, "int8");
    const y = new Float32Array(6).fill(9);
    addon().weightsMatmul(noCols, new Float32Array(0), 2, y, false);
    expect(Array.from(y)).toEqual([0, 0, 0, 0, 0, 0]);
    const w = create(randomValues(12, 1), 3, 4, "nf4");
    addon().weightsMatmul(w, new Float32Array(0), 0, new Float32Array(0), false);
    for (const handle of [empty, noCols, w]) addon().weightsFree(handle);
  });

  /** Runs `script` (CommonJS; argv[1] is the addon) in a fresh process with `env`, and returns its stdout. */
  const inChild = (script: string, env: Record<string, string>) => {
    const result = spawnSync(process.execPath, ["--expose-gc", "-e", script, ADDON_PATH], { env: { ...process.env, ...env }, encoding: "utf8" });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    return result.stdout.trim();
  };

  // The same products in every child: decoding-sized (n ≤ 8: the streaming kernels, x·Wᵀ split by rows of W, x·W
  // by chunks of rows whose partial sums are added in order), and every format's dequantized bits.
  const productsScript = `
    const { createHash } = require("node:crypto");
    const a = require(process.argv[1]);
    let s = 17;
    const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s / 2 ** 31 - 1);
    const hash = createHash("sha256");
    const dequantized = createHash("sha256");
    for (const [rows, cols] of [[300, 172], [1100, 256], [2, 700]]) {
      const values = new Float32Array(rows * cols).map(() => next());
      for (const format of ["bf16", "f16", "int8", "nf4"]) {
        const w = a.weightsCreate(new Uint8Array(values.buffer), "F32", rows, cols, format);
        const all = new Float32Array(rows * cols);
        a.weightsDequantize(w, all);
        dequantized.update(new Uint8Array(all.buffer));
        for (const n of [1, 3, 8]) for (const transposed of [false, true]) {
          const x = new Float32Array(n * (transposed ? rows : cols)).map(() => next());
          const y = new Float32Array(n * (transposed ? cols : rows));
          a.weightsMatmul(w, x, n, y, transposed);
          hash.update(new Uint8Array(y.buffer));
        }
        a.weightsFree(w);
      }
    }
    console.log(JSON.stringify({ products: hash.digest("hex"), dequantized: dequantized.digest("hex") }));
  `;

  it("decoding gives the same bits whatever the thread count (child processes)", () => {
    const one = inChild(productsScript, { FINETUNE_THREADS: "1" });
    expect(one).toMatch(/"products":"[0-9a-f]{64}"/);
    expect(inChild(productsScript, { FINETUNE_THREADS: "2" })).toBe(one);
    expect(inChild(productsScript, { FINETUNE_THREADS: "3" })).toBe(one);
  });

  it("the portable kernels (FINETUNE_NATIVE_KERNEL=portable) dequantize to the same bits (child process)", () => {
    const simd = JSON.parse(inChild(productsScript, {})) as { dequantized: string };
    const portable = JSON.parse(inChild(productsScript, { FINETUNE_NATIVE_KERNEL: "portable", FINETUNE_THREADS: "2" })) as { dequantized: string };
    expect(portable.dequantized).toBe(simd.dequantized);
    // And their products agree with the float64 product.
    const script = `
      const a = require(process.argv[1]);
      let s = 3;
      const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s / 2 ** 31 - 1);
      let worst = 0;
      for (const format of ["bf16", "f16", "int8", "nf4"]) for (const [rows, cols, n, t] of [[70, 130, 1, false], [70, 130, 5, false], [70, 130, 12, false], [70, 130, 3, true], [33, 65, 20, true]]) {
        const w = a.weightsCreate(new Uint8Array(new Float32Array(rows * cols).map(() => next()).buffer), "F32", rows, cols, format);
        const all = new Float32Array(rows * cols);
        a.weightsDequantize(w, all);
        const [inner, outer] = t ? [rows, cols] : [cols, rows];
        const x = new Float32Array(n * inner).map(() => next());
        const y = new Float32Array(n * outer);
        a.weightsMatmul(w, x, n, y, t);
        for (let i = 0; i < n; i++) for (let o = 0; o < outer; o++) {
          let sum = 0;
          for (let k = 0; k < inner; k++) sum += x[i * inner + k] * all[t ? k * cols + o : o * cols + k];
          worst = Math.max(worst, Math.abs(sum - y[i * outer + o]));
        }
      }
      console.log(worst);
    `;
    expect(Number(inChild(script, { FINETUNE_NATIVE_KERNEL: "portable" }))).toBeLessThan(1e-3);
  });

  it("a store nobody frees is freed when its handle is collected (child process)", () => {
    const script = `
      const a = require(process.argv[1]);
      (async () => {
        (() => { for (let i = 0; i < 5; i++) a.weightsCreate(new Uint8Array(64 * 64 * 4), "F32", 64, 64, "nf4"); })();
        const held = a.weightsTotalBytes();
        for (let i = 0; i < 20 && a.weightsTotalBytes() > 0; i++) {
          global.gc();
          await new Promise((resolve) => setImmediate(resolve));
        }
        console.log(JSON.stringify([held, a.weightsTotalBytes()]));
      })();
    `;
    expect(JSON.parse(inChild(script, {}))).toEqual([5 * (64 * 32 + 64 * 4), 0]);
  });

  it("a 4096 x 4096 nf4 store from BF16 raises RSS by about its own size, not by a float32 copy (child process)", () => {
    const script = `
      const a = require(process.argv[1]);
      a.weightsFree(a.weightsCreate(new Uint8Array(4 * 64 * 2), "BF16", 4, 64, "nf4")); // starts the pool's threads
      const rows = 4096, cols = 4096;
      const source = new Uint8Array(rows * cols * 2);
      const halves = new Uint16Array(source.buffer);
      for (let i = 0; i < halves.length; i++) halves[i] = 0x3c00 + ((i * 7919) % 0x300) + (i % 3 === 0 ? 0x8000 : 0);
      global.gc();
      const before = process.memoryUsage().rss;
      const total = a.weightsTotalBytes();
      const w = a.weightsCreate(source, "BF16", rows, cols, "nf4");
      const grew = process.memoryUsage().rss - before;
      const counted = a.weightsTotalBytes() - total;
      a.weightsFree(w);
      console.log(JSON.stringify({ grew, bytes: w.bytes, counted, after: a.weightsTotalBytes() - total }));
    `;
    const result = JSON.parse(inChild(script, {})) as { grew: number; bytes: number; counted: number; after: number };
    expect(result.bytes).toBe(4096 * 256 * 8 + 4096 * 64 * 4); // 9 MiB: 4.5 bits per weight
    expect(result.counted).toBe(result.bytes);
    expect(result.after).toBe(0);
    const slack = 8 * 2 ** 20;
    expect(result.grew, "RSS growth").toBeLessThan(2 * result.bytes + slack); // a float32 copy alone is 64 MiB
    expect(result.grew, "RSS growth").toBeGreaterThan(result.bytes / 2); // the measurement sees the store itself
  });
});
