import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openSafetensors } from "../../../src/io/safetensors-read.js";
import { serializeSafetensors, writeSafetensors } from "../../../src/io/safetensors-write.js";
import type { TensorToWrite } from "../../../src/io/safetensors-write.js";
import { itNeeds, sharedFiles, sharedPath } from "../../helpers/needs.js";
import { useTempDir } from "./safetensors-fixture.js";

const tempDir = useTempDir();

function headerOf(bytes: Uint8Array): { length: number; text: string } {
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { length, text: new TextDecoder().decode(bytes.subarray(8, 8 + length)) };
}

describe("writeSafetensors", () => {
  it("round-trips F32, F16 and BF16 with round-to-nearest-even values", async () => {
    const path = join(await tempDir(), "out", "adapter_model.safetensors");
    await writeSafetensors(path, [
      { name: "half", dtype: "F16", shape: [2, 2], data: new Float32Array([0.1, 65520, 5.96e-8, -1]) },
      { name: "brain", dtype: "BF16", shape: [3], data: new Float32Array([1.00390625, 1.01171875, NaN]) },
      { name: "full", dtype: "F32", shape: [2], data: new Float32Array([0.1, -3]) },
      { name: "empty", dtype: "F32", shape: [0, 5], data: new Float32Array(0) },
    ], { format: "pt" });
    const reader = await openSafetensors(path);
    try {
      expect(reader.metadata).toEqual({ format: "pt" });
      expect([...reader.tensors.values()].map((t) => [t.name, t.dtype, t.shape])).toEqual([
        ["brain", "BF16", [3]], ["empty", "F32", [0, 5]], ["full", "F32", [2]], ["half", "F16", [2, 2]],
      ]);
      expect([...(await reader.readFloat32("half"))]).toEqual([0.0999755859375, Infinity, 2 ** -24, -1]);
      const brain = await reader.readFloat32("brain");
      expect([brain[0], brain[1], Number.isNaN(brain[2])]).toEqual([1, 1.015625, true]);
      expect([...(await reader.readFloat32("full"))]).toEqual([Math.fround(0.1), -3]);
      expect((await reader.readFloat32("empty")).length).toBe(0);
    } finally {
      await reader.close();
    }
    expect(await readdir(join(path, ".."))).toEqual(["adapter_model.safetensors"]); // no temp files left
  });

  it("lays out the header like Python's safetensors: __metadata__ first, sorted, contiguous, space-padded to 8", () => {
    const bytes = serializeSafetensors([
      { name: "b", dtype: "F32", shape: [1], data: new Float32Array([2]) },
      { name: "a", dtype: "F16", shape: [1], data: new Float32Array([1]) },
    ], { format: "pt" });
    const { length, text } = headerOf(bytes);
    expect(length % 8).toBe(0);
    const json =
      '{"__metadata__":{"format":"pt"},"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},' +
      '"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}';
    expect(text).toBe(json + " ".repeat(length - json.length));
    expect(length - json.length).toBeLessThan(8);
    expect(bytes.length).toBe(8 + length + 6);
    expect([...bytes.subarray(8 + length)]).toEqual([0x00, 0x3c, 0x00, 0x00, 0x00, 0x40]);
  });

  it("counts UTF-8 bytes, not characters, when padding", () => {
    const bytes = serializeSafetensors([{ name: "poids_é", dtype: "F32", shape: [], data: new Float32Array([1]) }]);
    const { length, text } = headerOf(bytes);
    expect(length % 8).toBe(0);
    expect(JSON.parse(text)).toEqual({ "poids_é": { dtype: "F32", shape: [], data_offsets: [0, 4] } });
  });

  it("rejects duplicate names, a reserved name and data that does not match the shape", () => {
    const t = (name: string, shape: number[], n: number): TensorToWrite => ({ name, dtype: "F32", shape, data: new Float32Array(n) });
    expect(() => serializeSafetensors([t("a", [1], 1), t("a", [1], 1)])).toThrow('duplicate tensor name "a"');
    expect(() => serializeSafetensors([t("__metadata__", [1], 1)])).toThrow('"__metadata__" is reserved');
    expect(() => serializeSafetensors([t("w", [2, 3], 5)])).toThrow('tensor "w" has shape [2, 3] (6 elements) but 5 values');
    expect(() => serializeSafetensors([t("w", [-1], 0)])).toThrow("dims must be non-negative integers");
  });

  it("replaces an existing file", async () => {
    const path = join(await tempDir(), "m.safetensors");
    await writeFile(path, "old");
    await writeSafetensors(path, [{ name: "w", dtype: "F32", shape: [1], data: new Float32Array([7]) }]);
    const reader = await openSafetensors(path);
    expect([...(await reader.readFloat32("w"))]).toEqual([7]);
    await reader.close();
  });

  const stories = sharedPath("models/stories260K/model.safetensors");
  itNeeds(sharedFiles(["models/stories260K/model.safetensors"]), "re-serializes a file written by Python's safetensors byte for byte", async () => {
    const reader = await openSafetensors(stories);
    const tensors: TensorToWrite[] = [];
    for (const entry of reader.tensors.values()) {
      tensors.push({ name: entry.name, dtype: "F32", shape: entry.shape, data: await reader.readFloat32(entry.name) });
    }
    const metadata = reader.metadata;
    await reader.close();
    const ours = serializeSafetensors(tensors, metadata);
    expect(Buffer.from(ours).equals(await readFile(stories))).toBe(true);
  });
});
