import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gguf, GGMLQuantizationType, GGUFValueType } from "@huggingface/gguf";
import { describe, expect, it } from "vitest";
import { planGguf, serializeGguf, writeGguf, type GgufContents } from "../../../src/gguf/writer.js";
import { useTempDir } from "../io/safetensors-fixture.js";

const tempDir = useTempDir();

const contents: GgufContents = {
  metadata: {
    "general.architecture": { type: "string", value: "llama" },
    "test.name": { type: "string", value: "naïve ✓" },
    "test.u32": { type: "uint32", value: 4_000_000_000 },
    "test.i32": { type: "int32", value: -7 },
    "test.u64": { type: "uint64", value: 2n ** 40n + 3n },
    "test.f32": { type: "float32", value: 0.1 },
    "test.f64": { type: "float64", value: 0.1 },
    "test.yes": { type: "bool", value: true },
    "test.no": { type: "bool", value: false },
  },
  tensors: [
    { name: "three", shape: [3], data: new Float32Array([1, 2, 3]) },
    { name: "cube", shape: [2, 3, 4], data: Float32Array.from({ length: 24 }, (_, i) => i / 4 - 2) },
    { name: "empty", shape: [0, 5], data: new Float32Array(0) },
    { name: "last", shape: [1, 1], data: new Float32Array([-0.5]) },
  ],
};

describe("GGUF writer", () => {
  it("writes a v3 file that @huggingface/gguf parses: typed KVs in order, dims innermost-first, F32, aligned offsets", async () => {
    const path = join(await tempDir(), "sub", "x.gguf");
    await writeGguf(path, contents);
    const parsed = await gguf(path, { allowLocalFile: true, typedMetadata: true });
    const t = parsed.typedMetadata;
    expect(t.version.value).toBe(3);
    expect(t.tensor_count.value).toBe(4n);
    expect(t.kv_count.value).toBe(9n);
    expect(Object.keys(t).filter((k) => !["version", "tensor_count", "kv_count"].includes(k))).toEqual(Object.keys(contents.metadata));
    expect(t["test.name"]).toEqual({ value: "naïve ✓", type: GGUFValueType.STRING });
    expect(t["test.u32"]).toEqual({ value: 4_000_000_000, type: GGUFValueType.UINT32 });
    expect(t["test.i32"]).toEqual({ value: -7, type: GGUFValueType.INT32 });
    expect(t["test.u64"]).toEqual({ value: 2n ** 40n + 3n, type: GGUFValueType.UINT64 });
    expect(t["test.f32"]).toEqual({ value: Math.fround(0.1), type: GGUFValueType.FLOAT32 });
    expect(t["test.f64"]).toEqual({ value: 0.1, type: GGUFValueType.FLOAT64 });
    expect(t["test.yes"]).toEqual({ value: true, type: GGUFValueType.BOOL });
    expect(t["test.no"]).toEqual({ value: false, type: GGUFValueType.BOOL });
    expect(t["general.alignment"]).toBeUndefined(); // default 32

    expect(parsed.tensorInfos.map((i) => [i.name, i.n_dims, i.shape, i.dtype, i.offset])).toEqual([
      ["three", 1, [3n], GGMLQuantizationType.F32, 0n],
      ["cube", 3, [4n, 3n, 2n], GGMLQuantizationType.F32, 32n], // 12 bytes padded to 32
      ["empty", 2, [5n, 0n], GGMLQuantizationType.F32, 128n], // 96 bytes, already aligned
      ["last", 2, [1n, 1n], GGMLQuantizationType.F32, 128n],
    ]);
    expect(parsed.tensorDataOffset % 32n).toBe(0n);

    const bytes = await readFile(path);
    const start = Number(parsed.tensorDataOffset);
    expect(bytes.length).toBe(start + 160);
    const floats = (offset: bigint, n: number) => {
      const view = new DataView(bytes.buffer, bytes.byteOffset + start + Number(offset), n * 4);
      return Array.from({ length: n }, (_, i) => view.getFloat32(i * 4, true));
    };
    expect(floats(0n, 3)).toEqual([1, 2, 3]);
    expect(floats(32n, 24)).toEqual([...(contents.tensors[1]?.data as Float32Array)]);
    expect(floats(128n, 1)).toEqual([-0.5]);
    expect([...bytes.subarray(start + 12, start + 32)].every((b) => b === 0)).toBe(true); // zero padding
    expect([...bytes.subarray(start + 132)].every((b) => b === 0)).toBe(true); // the file ends aligned
    expect([...bytes.subarray(0, 4)]).toEqual([0x47, 0x47, 0x55, 0x46]);
    expect(await readdir(join(path, ".."))).toEqual(["x.gguf"]); // no temp file left
  });

  it("serializeGguf is byte-identical to the written file, and planGguf reports the header and offsets", async () => {
    const path = join(await tempDir(), "x.gguf");
    await writeGguf(path, contents);
    const memory = await serializeGguf(contents);
    expect(Buffer.from(memory).equals(await readFile(path))).toBe(true);
    const { header, offsets, dataSize } = planGguf(contents);
    expect(header.length % 32).toBe(0);
    expect(offsets).toEqual([0, 32, 128, 128]);
    expect(header.length + dataSize).toBe(memory.length);
  });

  it("keeps every value intact in a large header (long strings, hundreds of keys of every type, 50 tensors)", async () => {
    const metadata: GgufContents["metadata"] = { "test.long": { type: "string", value: "x".repeat(5000) } };
    for (let i = 0; i < 300; i++) {
      metadata[`k.u32_${i}`] = { type: "uint32", value: i * 1000 + 7 };
      metadata[`k.u64_${i}`] = { type: "uint64", value: BigInt(i) * 2n ** 33n };
      metadata[`k.f32_${i}`] = { type: "float32", value: i / 8 };
      metadata[`k.f64_${i}`] = { type: "float64", value: i / 3 };
      metadata[`k.s_${i}`] = { type: "string", value: `v${i}` };
    }
    const tensors = Array.from({ length: 50 }, (_, i) => ({ name: `blk.${i}.w`, shape: [i + 1], data: Float32Array.from({ length: i + 1 }, (_, j) => i - j) }));
    const path = join(await tempDir(), "big.gguf");
    await writeGguf(path, { metadata, tensors });
    const parsed = await gguf(path, { allowLocalFile: true, typedMetadata: true });
    for (const [key, v] of Object.entries(metadata)) {
      expect([key, parsed.typedMetadata[key]?.value]).toEqual([key, v.type === "float32" ? Math.fround(v.value) : v.value]);
    }
    expect(parsed.tensorInfos.map((t) => [t.name, t.shape])).toEqual(tensors.map((t) => [t.name, [BigInt(t.shape[0] ?? 0)]]));
    const bytes = await readFile(path);
    const last = parsed.tensorInfos[49];
    const view = new DataView(bytes.buffer, bytes.byteOffset + Number(parsed.tensorDataOffset + (last?.offset ?? 0n)));
    expect(Array.from({ length: 50 }, (_, j) => view.getFloat32(j * 4, true))).toEqual([...(tensors[49]?.data ?? [])]);
  });

  it("writes a file with no tensors", async () => {
    const path = join(await tempDir(), "meta.gguf");
    await writeGguf(path, { metadata: { "general.type": { type: "string", value: "adapter" } }, tensors: [] });
    const parsed = await gguf(path, { allowLocalFile: true });
    expect(parsed.tensorInfos).toEqual([]);
    expect((parsed.metadata as Record<string, unknown>)["general.type"]).toBe("adapter");
  });

  it("refuses malformed tensors and values as bugs", () => {
    const one = (over: Partial<GgufContents["tensors"][number]>) => () =>
      planGguf({ metadata: {}, tensors: [{ name: "t", shape: [2], data: new Float32Array(2), ...over }] });
    expect(one({ shape: [3] })).toThrow(/shape \[3\] \(3 elements\) but 2 values/);
    expect(one({ name: "x".repeat(64) })).toThrow(/64 bytes; llama.cpp reads 1 to 63/);
    expect(one({ shape: [1, 1, 1, 1, 2] })).toThrow(/1 to 4 non-negative dims/);
    expect(() =>
      planGguf({ metadata: {}, tensors: [{ name: "t", shape: [1], data: new Float32Array(1) }, { name: "t", shape: [1], data: new Float32Array(1) }] }),
    ).toThrow(/duplicate tensor name "t"/);
    expect(() => planGguf({ metadata: { "a.b": { type: "uint32", value: -1 } }, tensors: [] })).toThrow(/-1 is not a uint32/);
    expect(() => planGguf({ metadata: { "a.b": { type: "int32", value: 1.5 } }, tensors: [] })).toThrow(/1.5 is not a int32/);
    expect(() => planGguf({ metadata: { "bad key": { type: "bool", value: true } }, tensors: [] })).toThrow(/not a printable ASCII key/);
  });

  it("removes its temp file when the final rename fails", async () => {
    const dir = await tempDir();
    const path = join(dir, "taken");
    await mkdir(path);
    await writeFile(join(path, "keep"), "x"); // a non-empty directory cannot be renamed over
    await expect(writeGguf(path, contents)).rejects.toThrow();
    expect(await readdir(dir)).toEqual(["taken"]);
  });
});
