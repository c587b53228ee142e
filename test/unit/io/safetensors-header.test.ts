import { describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { parseSafetensorsHeader } from "../../../src/io/safetensors-header.js";
import { buildFile } from "./safetensors-fixture.js";

/** Parses a whole hand-built file the way the reader does. */
function parse(file: Uint8Array) {
  const length = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  return parseSafetensorsHeader(file.subarray(8, 8 + Math.min(length, file.length - 8)), length, file.length, "w.safetensors");
}

function parseError(file: Uint8Array): UserError {
  try {
    parse(file);
  } catch (error) {
    if (error instanceof UserError) return error;
    throw error;
  }
  throw new Error("expected a UserError");
}

const f32 = (shape: number[], begin: number, end: number) => ({ dtype: "F32", shape, data_offsets: [begin, end] });

describe("parseSafetensorsHeader", () => {
  it("parses tensors (sorted by offset) and metadata, accepting space padding", () => {
    const header = JSON.stringify({
      __metadata__: { format: "pt" },
      b: f32([2], 8, 16),
      a: { dtype: "BF16", shape: [2, 2], data_offsets: [0, 8] },
    });
    const parsed = parse(buildFile({ header: header + "   ", data: 16 }));
    expect(parsed.metadata).toEqual({ format: "pt" });
    expect(parsed.tensors).toEqual([
      { name: "a", dtype: "BF16", shape: [2, 2], begin: 0, end: 8 },
      { name: "b", dtype: "F32", shape: [2], begin: 8, end: 16 },
    ]);
  });

  it("allows zero-size tensors, scalars, an empty header and a null __metadata__", () => {
    const parsed = parse(buildFile({
      header: { e: f32([0, 4], 0, 0), s: f32([], 0, 4), z: { dtype: "BOOL", shape: [3, 0], data_offsets: [4, 4] } },
      data: 4,
    }));
    expect(parsed.tensors.map((t) => t.name)).toEqual(["e", "s", "z"]);
    expect(parse(buildFile({ header: {} })).tensors).toEqual([]);
    expect(parse(buildFile({ header: { __metadata__: null } })).metadata).toEqual({});
  });

  it.each([
    ["a header length of 0", buildFile({ header: "", data: 8 }), "header length is 0"],
    ["a header over 100 MB", buildFile({ header: "{}", length: 200_000_000n }), "claims 200000000 bytes, over the 100000000-byte limit"],
    ["a header longer than the file", buildFile({ header: "{}", length: 500n }), "claims 500 bytes but the file has only 2"],
    ["invalid UTF-8", buildFile({ header: new Uint8Array([0x7b, 0xff, 0x7d]) }), "not valid UTF-8"],
    ["a header not starting with {", buildFile({ header: " {}" }), 'does not start with "{"'],
    ["a JSON array", buildFile({ header: "[1]" }), 'does not start with "{"'],
    ["invalid JSON", buildFile({ header: '{"a": ' }), "not valid JSON"],
    ["an entry that is not an object", buildFile({ header: { a: 5 } }), 'tensor "a" must be an object with dtype, shape and data_offsets, got 5'],
    ["a missing dtype", buildFile({ header: { a: { shape: [1], data_offsets: [0, 4] } }, data: 4 }), 'tensor "a" has no dtype'],
    ["a missing shape", buildFile({ header: { a: { dtype: "F32", data_offsets: [0, 4] } }, data: 4 }), 'tensor "a" has no shape'],
    ["missing data_offsets", buildFile({ header: { a: { dtype: "F32", shape: [1] } }, data: 4 }), 'tensor "a" has no data_offsets'],
    ["a non-string dtype", buildFile({ header: { a: { dtype: 4, shape: [1], data_offsets: [0, 4] } } }), "dtype must be a string, got 4"],
    ["a non-array shape", buildFile({ header: { a: { dtype: "F32", shape: "1", data_offsets: [0, 4] } } }), 'shape must be an array of dimensions, got "1"'],
    ["data_offsets of one number", buildFile({ header: { a: { dtype: "F32", shape: [1], data_offsets: [4] } } }), "data_offsets must be [begin, end], got [4]"],
    ["string offsets", buildFile({ header: { a: { dtype: "F32", shape: [1], data_offsets: ["0", "4"] } } }), 'data_offsets ["0","4"] must be non-negative integers'],
    ["negative offsets", buildFile({ header: { a: f32([1], -4, 0) } }), "data_offsets [-4,0] must be non-negative integers"],
    ["an unknown dtype", buildFile({ header: { w: { dtype: "F8_E4M3", shape: [1], data_offsets: [0, 1] } }, data: 1 }),
      'tensor "w" has dtype "F8_E4M3", which is not supported (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)'],
    ["a negative dimension", buildFile({ header: { w: f32([2, -1], 0, 0) } }), 'tensor "w": shape[1] is -1; dimensions must be non-negative integers'],
    ["a fractional dimension", buildFile({ header: { w: f32([1.5], 0, 6) }, data: 6 }), "shape[0] is 1.5"],
    ["end before begin", buildFile({ header: { w: f32([0], 8, 4) }, data: 8 }), 'tensor "w": data_offsets end 4 is before begin 8'],
    ["a size that does not match the shape", buildFile({ header: { w: f32([2, 3], 0, 20) }, data: 20 }),
      'tensor "w" has shape [2, 3] F32 = 24 bytes, but data_offsets [0, 20] hold 20'],
    ["a shape whose size overflows", buildFile({ header: { w: f32([2 ** 52, 2 ** 52], 0, 8) }, data: 8 }), "F32 = 81129638414606681695789005144064 bytes"],
    ["overlapping tensors", buildFile({ header: { a: f32([2], 0, 8), b: f32([2], 4, 12) }, data: 12 }),
      'tensors "a" [0, 8) and "b" [4, 12) overlap'],
    ["a zero-size tensor inside another", buildFile({ header: { a: f32([2], 0, 8), z: f32([0], 4, 4) }, data: 8 }),
      'tensors "a" [0, 8) and "z" [4, 4) overlap'],
    ["a gap between tensors", buildFile({ header: { a: f32([2], 0, 8), b: f32([2], 12, 20) }, data: 20 }),
      'gap of 4 bytes in the data buffer after tensor "a" (bytes 8 to 12, before tensor "b")'],
    ["a gap at the start", buildFile({ header: { a: f32([1], 4, 8) }, data: 8 }), "gap of 4 bytes in the data buffer at the start of the data"],
    ["stray bytes at the end", buildFile({ header: { a: f32([1], 0, 4) }, data: 10 }),
      '6 stray bytes at the end of the data buffer (the last tensor "a" ends at 4, the buffer is 10 bytes)'],
    ["data beyond the end of the file", buildFile({ header: { a: f32([4], 0, 16) }, data: 10 }),
      "the header promises 16 data bytes but the file holds 10; the file is truncated"],
    ["non-object __metadata__", buildFile({ header: { __metadata__: ["x"] } }), '__metadata__ must be an object of strings, got ["x"]'],
    ["non-string metadata values", buildFile({ header: { __metadata__: { step: 3 } } }), "__metadata__.step must be a string, got 3"],
  ])("rejects %s with a UserError naming the file", (_case, file, message) => {
    const error = parseError(file);
    expect(error.message).toContain("w.safetensors");
    expect(error.message).toContain(message);
  });
});
