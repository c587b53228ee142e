import { truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { openSafetensors } from "../../../src/io/safetensors-read.js";
import { itNeeds, sharedFiles, sharedPath } from "../../helpers/needs.js";
import { buildFile, f32Bytes, useTempDir } from "./safetensors-fixture.js";

const tempDir = useTempDir();

async function writeTemp(bytes: Uint8Array, name = "m.safetensors"): Promise<string> {
  const path = join(await tempDir(), name);
  await writeFile(path, bytes);
  return path;
}

describe("openSafetensors", () => {
  it("reads F32 at an unaligned offset by copying, and raw bytes of any dtype", async () => {
    const data = new Uint8Array([7, 8, 9, ...f32Bytes([1.5, -2.25])]);
    const path = await writeTemp(buildFile({
      header: {
        __metadata__: { format: "pt" },
        u: { dtype: "U8", shape: [3], data_offsets: [0, 3] },
        w: { dtype: "F32", shape: [2], data_offsets: [3, 11] },
      },
      data,
    }));
    const reader = await openSafetensors(path);
    try {
      expect(reader.metadata).toEqual({ format: "pt" });
      expect([...reader.tensors.keys()]).toEqual(["u", "w"]);
      expect([...(await reader.readFloat32("w"))]).toEqual([1.5, -2.25]);
      expect([...(await reader.readBytes("u"))]).toEqual([7, 8, 9]);
    } finally {
      await reader.close();
    }
  });

  it("reads F16, BF16 and F64 as float32", async () => {
    const data = new Uint8Array(4 + 4 + 16);
    const view = new DataView(data.buffer);
    view.setUint16(0, 0x3c00, true); // f16 1
    view.setUint16(2, 0x2e66, true); // f16 0.0999755859375
    view.setUint16(4, 0x3f82, true); // bf16 1.015625
    view.setUint16(6, 0xc040, true); // bf16 -3
    view.setFloat64(8, 0.5, true);
    view.setFloat64(16, -1e300, true);
    const path = await writeTemp(buildFile({
      header: {
        h: { dtype: "F16", shape: [2], data_offsets: [0, 4] },
        b: { dtype: "BF16", shape: [2], data_offsets: [4, 8] },
        d: { dtype: "F64", shape: [2], data_offsets: [8, 24] },
      },
      data,
    }));
    const reader = await openSafetensors(path);
    expect([...(await reader.readFloat32("h"))]).toEqual([1, 0.0999755859375]);
    expect([...(await reader.readFloat32("b"))]).toEqual([1.015625, -3]);
    expect([...(await reader.readFloat32("d"))]).toEqual([0.5, -Infinity]);
    await reader.close();
    await reader.close(); // idempotent
  });

  it("refuses to read integer and bool tensors as weights, naming tensor and dtype", async () => {
    const path = await writeTemp(buildFile({
      header: { ids: { dtype: "I64", shape: [1], data_offsets: [0, 8] }, mask: { dtype: "BOOL", shape: [1], data_offsets: [8, 9] } },
      data: new Uint8Array([5, 0, 0, 0, 0, 0, 0, 0, 1]),
    }));
    const reader = await openSafetensors(path);
    await expect(reader.readFloat32("ids")).rejects.toThrow(/tensor "ids" has dtype I64, an unsupported dtype for weights/);
    await expect(reader.readFloat32("mask")).rejects.toThrow(/tensor "mask" has dtype BOOL/);
    expect([...(await reader.readBytes("ids"))]).toEqual([5, 0, 0, 0, 0, 0, 0, 0]);
    await reader.close();
  });

  it("names a few available tensors when asked for an unknown one", async () => {
    const path = await writeTemp(buildFile({
      header: { "layers.0.w": { dtype: "U8", shape: [1], data_offsets: [0, 1] }, "other": { dtype: "U8", shape: [1], data_offsets: [1, 2] } },
      data: 2,
    }));
    const reader = await openSafetensors(path);
    await expect(reader.readFloat32("layers.1.w")).rejects.toThrow(`${path} has no tensor "layers.1.w"; it has "layers.0.w", "other"`);
    await reader.close();
  });

  it("reports a missing file, a file too short, and a huge length as UserErrors", async () => {
    const dir = await tempDir();
    await expect(openSafetensors(join(dir, "nope.safetensors"))).rejects.toThrow(`no such file: ${join(dir, "nope.safetensors")}`);
    await expect(openSafetensors(await writeTemp(new Uint8Array(3)))).rejects.toThrow("only 3 bytes, too short");
    await expect(openSafetensors(dir)).rejects.toThrow(`${dir} is not a file`);
    const huge = await writeTemp(buildFile({ header: "{}", length: 2n ** 64n - 1n }));
    await expect(openSafetensors(huge)).rejects.toThrow("claims 18446744073709551615 bytes, over the 100000000-byte limit");
  });

  it("rejects a truncated file at open, and one cut short after open at read time", async () => {
    const full = buildFile({ header: { w: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, data: f32Bytes([1, 2, 3, 4]) });
    const cut = await writeTemp(full.subarray(0, full.length - 5), "cut.safetensors");
    const error = await openSafetensors(cut).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toContain("the header promises 16 data bytes but the file holds 11; the file is truncated");

    const path = await writeTemp(full);
    const reader = await openSafetensors(path);
    await truncate(path, full.length - 4);
    await expect(reader.readFloat32("w")).rejects.toThrow(/the file ended at byte \d+, but the header promises data up to byte \d+; the file is truncated/);
    await reader.close();
  });

  const stories = sharedPath("models/stories260K/model.safetensors");
  itNeeds(sharedFiles(["models/stories260K/model.safetensors"]), "reads stories260K: embed_tokens is [512, 64] and every tensor is finite", async () => {
    const reader = await openSafetensors(stories);
    try {
      expect(reader.tensors.get("model.embed_tokens.weight")?.shape).toEqual([512, 64]);
      for (const [name, entry] of reader.tensors) {
        const values = await reader.readFloat32(name);
        expect(values.length).toBe(entry.shape.reduce((n, d) => n * d, 1));
        expect(values.every(Number.isFinite), name).toBe(true);
      }
    } finally {
      await reader.close();
    }
  });
});
