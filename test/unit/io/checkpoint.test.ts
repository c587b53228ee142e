import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openCheckpoint } from "../../../src/io/checkpoint.js";
import { serializeSafetensors } from "../../../src/io/safetensors-write.js";
import { itNeeds, sharedFiles, sharedPath } from "../../helpers/needs.js";
import { useTempDir } from "./safetensors-fixture.js";

const tempDir = useTempDir();

function shard(tensors: Record<string, number[]>): Uint8Array {
  return serializeSafetensors(
    Object.entries(tensors).map(([name, values]) => ({ name, dtype: "F32", shape: [values.length], data: new Float32Array(values) })),
  );
}

/** A temp dir holding the given files (JSON-encoded unless bytes). */
async function dirWith(files: Record<string, Uint8Array | string | object>): Promise<string> {
  const dir = await tempDir();
  for (const [name, content] of Object.entries(files)) {
    const bytes = content instanceof Uint8Array || typeof content === "string" ? content : JSON.stringify(content);
    await writeFile(join(dir, name), bytes);
  }
  return dir;
}

const twoShards = {
  "model-00001-of-00002.safetensors": shard({ "a.weight": [1, 2], "b.weight": [3] }),
  "model-00002-of-00002.safetensors": shard({ "c.weight": [4, 5, 6] }),
};
const index = (weightMap: Record<string, string>) => ({ metadata: { total_size: 24 }, weight_map: weightMap });
const goodMap = {
  "a.weight": "model-00001-of-00002.safetensors",
  "b.weight": "model-00001-of-00002.safetensors",
  "c.weight": "model-00002-of-00002.safetensors",
};

describe("openCheckpoint", () => {
  it("opens a sharded checkpoint through its index", async () => {
    const dir = await dirWith({ ...twoShards, "model.safetensors.index.json": index(goodMap) });
    const checkpoint = await openCheckpoint(dir);
    try {
      expect(checkpoint.files).toEqual([join(dir, "model-00001-of-00002.safetensors"), join(dir, "model-00002-of-00002.safetensors")]);
      expect(checkpoint.names().sort()).toEqual(["a.weight", "b.weight", "c.weight"]);
      expect([...(await checkpoint.readFloat32("c.weight"))]).toEqual([4, 5, 6]);
      expect([...(await checkpoint.readFloat32("a.weight"))]).toEqual([1, 2]);
      expect((await checkpoint.readBytes("b.weight")).length).toBe(4);
      expect(checkpoint.dtypeOf("b.weight")).toBe("F32");
      expect(checkpoint.entry("c.weight")?.shape).toEqual([3]);
      expect(checkpoint.entry("nope")).toBeUndefined();
      expect(() => checkpoint.dtypeOf("nope")).toThrow(`${dir} has no tensor "nope"`);
      await expect(checkpoint.readFloat32("a.weigh")).rejects.toThrow(/has no tensor "a.weigh"; it has "a.weight"/);
    } finally {
      await checkpoint.close();
    }
  });

  it.each([
    ["../evil.safetensors"],
    ["/etc/evil.safetensors"],
    ["sub/model.safetensors"],
    ["..\\evil.safetensors"],
  ])("refuses shard name %s", async (name) => {
    const dir = await dirWith({ ...twoShards, "model.safetensors.index.json": index({ ...goodMap, "c.weight": name }) });
    await expect(openCheckpoint(dir)).rejects.toThrow(`names shard "${name}"; shard names must be plain file names`);
  });

  it("reports a missing shard, a tensor absent from its shard, and a malformed index", async () => {
    const missing = await dirWith({ ...twoShards, "model.safetensors.index.json": index({ ...goodMap, "d.weight": "model-00003-of-00003.safetensors" }) });
    await expect(openCheckpoint(missing)).rejects.toThrow("names shard model-00003-of-00003.safetensors, which is missing from");
    const absent = await dirWith({ ...twoShards, "model.safetensors.index.json": index({ ...goodMap, "d.weight": "model-00002-of-00002.safetensors" }) });
    await expect(openCheckpoint(absent)).rejects.toThrow('maps tensor "d.weight" to model-00002-of-00002.safetensors, but model-00002-of-00002.safetensors has no such tensor');
    const wrongShard = await dirWith({ ...twoShards, "model.safetensors.index.json": index({ ...goodMap, "c.weight": "model-00001-of-00002.safetensors" }) });
    await expect(openCheckpoint(wrongShard)).rejects.toThrow('maps tensor "c.weight" to model-00001-of-00002.safetensors, but');
    const empty = await dirWith({ ...twoShards, "model.safetensors.index.json": index({}) });
    await expect(openCheckpoint(empty)).rejects.toThrow("has an empty weight_map");
    const malformed = await dirWith({ ...twoShards, "model.safetensors.index.json": { weight_map: { "a.weight": 3 } } });
    await expect(openCheckpoint(malformed)).rejects.toThrow(/is not a valid safetensors index: weight_map\.a\.weight: /);
    const notJson = await dirWith({ ...twoShards, "model.safetensors.index.json": "{" });
    await expect(openCheckpoint(notJson)).rejects.toThrow("model.safetensors.index.json is not valid JSON");
  });

  it("refuses a tensor that appears in two shards", async () => {
    const dir = await dirWith({
      "model-00001-of-00002.safetensors": shard({ "a.weight": [1] }),
      "model-00002-of-00002.safetensors": shard({ "a.weight": [2], "b.weight": [3] }),
      "model.safetensors.index.json": index({ "a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors" }),
    });
    await expect(openCheckpoint(dir)).rejects.toThrow(/tensor "a.weight" appears in both .*model-00001-of-00002.safetensors and .*model-00002-of-00002.safetensors/);
  });

  it("falls back to model.safetensors, then to a single *.safetensors file", async () => {
    const single = await dirWith({ "model.safetensors": shard({ w: [1] }), "other.safetensors": shard({ v: [2] }) });
    const a = await openCheckpoint(single);
    expect(a.names()).toEqual(["w"]);
    await a.close();
    const lone = await dirWith({ "weights.safetensors": shard({ v: [2] }), "config.json": {} });
    const b = await openCheckpoint(lone);
    expect(b.files).toEqual([join(lone, "weights.safetensors")]);
    await b.close();
    const several = await dirWith({ "x.safetensors": shard({ v: [2] }), "y.safetensors": shard({ w: [2] }) });
    await expect(openCheckpoint(several)).rejects.toThrow("has several safetensors files (x.safetensors, y.safetensors) but no model.safetensors.index.json");
  });

  it("lists the directory when there are no weights, and refuses pickle weights", async () => {
    const dir = await tempDir();
    await expect(openCheckpoint(join(dir, "absent"))).rejects.toThrow(`no such model directory: ${join(dir, "absent")}`);
    const plain = await dirWith({ "config.json": {}, "README.md": "hi" });
    await expect(openCheckpoint(plain)).rejects.toThrow(`no safetensors weights in ${plain} (it holds: README.md, config.json)`);
    const pickled = await dirWith({ "config.json": {}, "pytorch_model.bin": "x", "extra.pt": "x" });
    const error = await openCheckpoint(pickled).catch((e: unknown) => String(e));
    expect(error).toContain("it holds: config.json, extra.pt, pytorch_model.bin");
    expect(error).toContain("extra.pt, pytorch_model.bin are pickle weights, which are never loaded");
    expect(error).toContain("look for a safetensors version");
  });

  const stories = sharedPath("models/stories260K");
  itNeeds(sharedFiles(["models/stories260K/model.safetensors", "models/stories260K/config.json"]), "opens the stories260K directory", async () => {
    const checkpoint = await openCheckpoint(stories);
    try {
      expect(checkpoint.entry("model.embed_tokens.weight")?.shape).toEqual([512, 64]);
      for (const name of checkpoint.names()) expect((await checkpoint.readFloat32(name)).every(Number.isFinite)).toBe(true);
    } finally {
      await checkpoint.close();
    }
  });
});
