import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { f32ToBf16, bf16ToF32 } from "../../../src/io/dtype.js";
import { openSafetensors } from "../../../src/io/safetensors-read.js";
import { writeSafetensors } from "../../../src/io/safetensors-write.js";
import { mergeAdapter } from "../../../src/lora/merge.js";
import { tempDir } from "../../helpers/run-cli.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

describe("mergeAdapter", () => {
  it("folds scale·B·A into a BF16 base, rounding to BF16 correctly, keeping names, shapes, shards and files", async () => {
    const base = join(tmp.path, "base");
    mkdirSync(base, { recursive: true });
    const W = Float32Array.from({ length: 6 }, (_, i) => 0.5 + i * 0.25); // [out=2, in=3], exact in BF16
    const other = Float32Array.from([1, 2]);
    await writeSafetensors(join(base, "model-00001-of-00002.safetensors"), [{ name: "model.layers.0.self_attn.q_proj.weight", dtype: "BF16", shape: [2, 3], data: W }]);
    await writeSafetensors(join(base, "model-00002-of-00002.safetensors"), [{ name: "model.norm.weight", dtype: "BF16", shape: [2], data: other }]);
    writeFileSync(join(base, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: 16 }, weight_map: { "model.layers.0.self_attn.q_proj.weight": "model-00001-of-00002.safetensors", "model.norm.weight": "model-00002-of-00002.safetensors" } }));
    writeFileSync(join(base, "config.json"), "{}");
    writeFileSync(join(base, "tokenizer.json"), "{}");
    const adapter = join(tmp.path, "adapter");
    mkdirSync(adapter, { recursive: true });
    const A = Float32Array.from([0.1, 0.2, 0.3]); // r=1, [1, 3]
    const B = Float32Array.from([0.01, -0.02]); // [2, 1]
    await writeSafetensors(join(adapter, "adapter_model.safetensors"), [
      { name: "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", dtype: "F32", shape: [1, 3], data: A },
      { name: "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", dtype: "F32", shape: [2, 1], data: B },
    ]);
    writeFileSync(join(adapter, "adapter_config.json"), JSON.stringify({ peft_type: "LORA", r: 1, lora_alpha: 2, target_modules: ["q_proj"] }));
    const out = join(tmp.path, "out");
    const result = await mergeAdapter({ baseDir: base, adapterDir: adapter, out });
    expect(result.merged).toBe(1);
    expect(result.files.sort()).toEqual(["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.json"]);
    const reader = await openSafetensors(join(out, "model-00001-of-00002.safetensors"));
    expect(reader.tensors.get("model.layers.0.self_attn.q_proj.weight")).toMatchObject({ dtype: "BF16", shape: [2, 3] });
    const merged = await reader.readFloat32("model.layers.0.self_attn.q_proj.weight");
    await reader.close();
    const expected = new Float32Array(6);
    for (let o = 0; o < 2; o += 1) for (let i = 0; i < 3; i += 1) expected[o * 3 + i] = (W[o * 3 + i] ?? 0) + 2 * (B[o] ?? 0) * (A[i] ?? 0);
    const rounded = new Float32Array(6);
    bf16ToF32(f32ToBf16(expected), rounded);
    expect(Array.from(merged)).toEqual(Array.from(rounded));
    const untouched = await openSafetensors(join(out, "model-00002-of-00002.safetensors"));
    expect(Array.from(await untouched.readFloat32("model.norm.weight"))).toEqual([1, 2]);
    await untouched.close();
  });
});
