import { describe, expect, it } from "vitest";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, leBytesToF32, leBytesToU16 } from "../../../src/io/dtype.js";

const toF16 = (x: number): number => f32ToF16(new Float32Array([x]))[0] ?? -1;
const toBf16 = (x: number): number => f32ToBf16(new Float32Array([x]))[0] ?? -1;
const fromF16 = (bits: number): number => {
  const out = new Float32Array(1);
  f16ToF32(new Uint16Array([bits]), out);
  return out[0] ?? NaN;
};
const fromBf16 = (bits: number): number => {
  const out = new Float32Array(1);
  bf16ToF32(new Uint16Array([bits]), out);
  return out[0] ?? NaN;
};

describe("f32ToF16 / f16ToF32", () => {
  it("encodes exact values and rounds to nearest even", () => {
    expect(toF16(1)).toBe(0x3c00);
    expect(toF16(-2)).toBe(0xc000);
    expect(toF16(0.1)).toBe(0x2e66);
    expect(fromF16(0x2e66)).toBe(0.0999755859375);
    expect(toF16(65504)).toBe(0x7bff);
    expect(toF16(65519)).toBe(0x7bff);
    // Halfway between 1 and 1+2^-10: ties go to the even mantissa (1); 1+3·2^-11 ties up to 1+2^-9.
    expect(toF16(1 + 2 ** -11)).toBe(0x3c00);
    expect(toF16(1 + 3 * 2 ** -11)).toBe(0x3c02);
  });

  it("overflows to infinity", () => {
    expect(toF16(65520)).toBe(0x7c00);
    expect(fromF16(toF16(65520))).toBe(Infinity);
    expect(toF16(-1e6)).toBe(0xfc00);
    expect(toF16(Infinity)).toBe(0x7c00);
    expect(toF16(-Infinity)).toBe(0xfc00);
  });

  it("handles subnormals, zeros and NaN", () => {
    expect(toF16(5.96e-8)).toBe(0x0001);
    expect(fromF16(0x0001)).toBe(2 ** -24);
    expect(fromF16(0x03ff)).toBe(1023 * 2 ** -24);
    expect(toF16(2 ** -14)).toBe(0x0400);
    expect(toF16(2 ** -25)).toBe(0x0000); // tie → even (0)
    expect(toF16(2 ** -25 * 1.0001)).toBe(0x0001);
    expect(toF16(3 * 2 ** -25)).toBe(0x0002); // 1.5 units → tie → even (2)
    expect(toF16(1023.5 * 2 ** -24)).toBe(0x0400); // rounds up out of the subnormals into the smallest normal
    expect(toF16(1e-10)).toBe(0x0000);
    expect(toF16(-1e-10)).toBe(0x8000);
    expect(toF16(-0)).toBe(0x8000);
    expect(Object.is(fromF16(0x8000), -0)).toBe(true);
    expect(toF16(1e-40)).toBe(0x0000); // a float32 subnormal
    expect(Number.isNaN(fromF16(toF16(NaN)))).toBe(true);
    expect(fromF16(0x7c00)).toBe(Infinity);
    expect(fromF16(0xfc00)).toBe(-Infinity);
    expect(Number.isNaN(fromF16(0x7c01))).toBe(true);
  });

  it("round-trips all 65536 half values bit for bit (NaNs stay NaN)", () => {
    const halves = new Uint16Array(65536).map((_, i) => i);
    const floats = new Float32Array(65536);
    f16ToF32(halves, floats);
    const back = f32ToF16(floats);
    for (let h = 0; h < 65536; h++) {
      const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (isNaN) expect(Number.isNaN(floats[h])).toBe(true);
      else if (back[h] !== h) expect(back[h]).toBe(h);
    }
  });
});

describe("f32ToBf16 / bf16ToF32", () => {
  it("rounds to nearest even", () => {
    expect(toBf16(1)).toBe(0x3f80);
    expect(toBf16(1.00390625)).toBe(0x3f80); // 1 + 2^-8: halfway, even mantissa wins
    expect(toBf16(1.01171875)).toBe(0x3f82); // 1 + 3·2^-8: halfway, rounds up to even
    expect(fromBf16(0x3f82)).toBe(1.015625);
    expect(toBf16(1.00390625 + 2 ** -23)).toBe(0x3f81); // one float32 ulp above the tie
    expect(toBf16(3.4028234663852886e38)).toBe(0x7f80); // max float rounds to Inf
    expect(toBf16(-0)).toBe(0x8000);
  });

  it("keeps NaN a NaN and infinities infinite", () => {
    const signalling = new Float32Array(new Uint32Array([0x7f800001]).buffer);
    expect(Number.isNaN(fromBf16(f32ToBf16(signalling)[0] ?? 0))).toBe(true);
    expect(Number.isNaN(fromBf16(toBf16(NaN)))).toBe(true);
    expect(toBf16(Infinity)).toBe(0x7f80);
    expect(toBf16(-Infinity)).toBe(0xff80);
  });

  it("round-trips all 65536 bf16 values bit for bit (NaNs stay NaN)", () => {
    const floats = new Float32Array(65536);
    bf16ToF32(new Uint16Array(65536).map((_, i) => i), floats);
    const back = f32ToBf16(floats);
    for (let h = 0; h < 65536; h++) {
      if (Number.isNaN(floats[h])) expect(Number.isNaN(fromBf16(back[h] ?? 0))).toBe(true);
      else if (back[h] !== h) expect(back[h]).toBe(h);
    }
  });
});

describe("little-endian views", () => {
  it("copies unaligned bytes instead of viewing them", () => {
    const backing = new Uint8Array(9);
    new DataView(backing.buffer).setFloat32(1, 1.5, true);
    new DataView(backing.buffer).setFloat32(5, -2.25, true);
    expect([...leBytesToF32(backing.subarray(1))]).toEqual([1.5, -2.25]);
    new DataView(backing.buffer).setUint16(1, 0x3c00, true);
    expect(leBytesToU16(backing.subarray(1, 3))[0]).toBe(0x3c00);
  });
});
