import { existsSync } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gguf, GGMLQuantizationType, GGUFValueType } from "@huggingface/gguf";
import { describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { writeSafetensors } from "../../../src/io/safetensors-write.js";
import { writeGgufAdapter } from "../../../src/gguf/adapter.js";
import { parseModelConfig, type ModelConfig } from "../../../src/model/config.js";
import { useTempDir } from "../io/safetensors-fixture.js";

const tempDir = useTempDir();
const R = 4;

const llamaConfig = (modelType = "llama"): ModelConfig =>
  parseModelConfig(
    {
      model_type: modelType,
      vocab_size: 32,
      hidden_size: 16,
      intermediate_size: 24,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
    },
    "config.json",
  );
const gpt2Config = (): ModelConfig => parseModelConfig({ model_type: "gpt2", vocab_size: 32, n_embd: 16, n_head: 4, n_layer: 2, n_positions: 32 }, "config.json");

/** Distinct, exactly representable values, different per tensor. */
function values(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => ((i * 37 + seed * 101) % 211) / 16 - 6);
}

interface Pair {
  a: Float32Array;
  b: Float32Array;
  inF: number;
  outF: number;
}

/** Writes a PEFT adapter dir: adapter_config.json + adapter_model.safetensors (A [r, in], B [out, r]). */
async function peftAdapter(params: {
  modules: Record<string, [inF: number, outF: number]>;
  config?: Record<string, unknown>;
  extra?: { name: string; shape: number[] }[];
}): Promise<{ dir: string; pairs: Map<string, Pair> }> {
  const dir = await tempDir();
  const pairs = new Map<string, Pair>();
  let seed = 1;
  for (const [module, [inF, outF]] of Object.entries(params.modules)) {
    pairs.set(module, { a: values(R * inF, seed++), b: values(outF * R, seed++), inF, outF });
  }
  await writeSafetensors(
    join(dir, "adapter_model.safetensors"),
    [
      ...[...pairs.entries()].flatMap(([module, p]) => [
        { name: `base_model.model.${module}.lora_A.weight`, dtype: "F32" as const, shape: [R, p.inF], data: p.a },
        { name: `base_model.model.${module}.lora_B.weight`, dtype: "F32" as const, shape: [p.outF, R], data: p.b },
      ]),
      ...(params.extra ?? []).map((t) => ({ ...t, dtype: "F32" as const, data: new Float32Array(t.shape.reduce((n, d) => n * d, 1)) })),
    ],
    { format: "pt" },
  );
  const config = { peft_type: "LORA", task_type: "CAUSAL_LM", r: R, lora_alpha: 8, base_model_name_or_path: "org/tiny", use_rslora: false, ...params.config };
  await writeFile(join(dir, "adapter_config.json"), JSON.stringify(config));
  return { dir, pairs };
}

const LLAMA_MODULES = (layers: number[]): Record<string, [number, number]> =>
  Object.fromEntries(
    layers.flatMap((l) => [
      [`model.layers.${l}.self_attn.q_proj`, [16, 16]],
      [`model.layers.${l}.self_attn.k_proj`, [16, 8]],
      [`model.layers.${l}.self_attn.v_proj`, [16, 8]],
      [`model.layers.${l}.self_attn.o_proj`, [16, 16]],
      [`model.layers.${l}.mlp.gate_proj`, [16, 24]],
      [`model.layers.${l}.mlp.up_proj`, [16, 24]],
      [`model.layers.${l}.mlp.down_proj`, [24, 16]],
    ]),
  );
const LLAMA_GGUF: Record<string, string> = {
  q_proj: "attn_q", k_proj: "attn_k", v_proj: "attn_v", o_proj: "attn_output", gate_proj: "ffn_gate", up_proj: "ffn_up", down_proj: "ffn_down",
};

/** Parses the file with @huggingface/gguf and reads each tensor's float32 data at its reported offset. */
async function readGguf(path: string) {
  const parsed = await gguf(path, { allowLocalFile: true, typedMetadata: true });
  const bytes = await readFile(path);
  const data = new Map<string, Float32Array>();
  for (const info of parsed.tensorInfos) {
    const start = Number(parsed.tensorDataOffset + info.offset);
    const n = info.shape.reduce((x, d) => x * Number(d), 1);
    const view = new DataView(bytes.buffer, bytes.byteOffset + start, n * 4);
    data.set(info.name, Float32Array.from({ length: n }, (_, i) => view.getFloat32(i * 4, true)));
  }
  return { ...parsed, data };
}

/** numpy's reshape(shape).transpose(perm).reshape(-1) on a row-major array, written independently of the code under test. */
function transposeAxes(src: Float32Array, shape: number[], perm: number[]): Float32Array {
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((n, d) => n * d, 1));
  const outShape = perm.map((p) => shape[p] ?? 0);
  const out = new Float32Array(src.length);
  const index = new Array<number>(outShape.length).fill(0);
  for (let flat = 0; flat < out.length; flat++) {
    out[flat] = src[index.reduce((s, v, axis) => s + v * (strides[perm[axis] ?? 0] ?? 0), 0)] ?? NaN;
    for (let axis = outShape.length - 1; axis >= 0; axis--) {
      index[axis] = (index[axis] ?? 0) + 1;
      if ((index[axis] ?? 0) < (outShape[axis] ?? 0)) break;
      index[axis] = 0;
    }
  }
  return out;
}

/** llama.cpp's LlamaModel.permute on B [rows, r]: reshape(heads, 2, rows/heads/2, r).swapaxes(1, 2). */
const hfToLlamaCpp = (b: Float32Array, rows: number, heads: number) => transposeAxes(b, [heads, 2, rows / heads / 2, R], [0, 2, 1, 3]);

/** Row `i` of a row-major [rows, R] matrix. */
const row = (m: Float32Array, i: number) => [...m.subarray(i * R, (i + 1) * R)];

describe("writeGgufAdapter", () => {
  it("writes a Llama adapter like convert_lora_to_gguf.py: KVs, names, ne innermost-first, F32, q/k rows of lora_b permuted", async () => {
    const { dir, pairs } = await peftAdapter({ modules: LLAMA_MODULES([0, 1]) });
    const out = join(dir, "export", "adapter.gguf");
    const result = await writeGgufAdapter({ adapterDir: dir, modelConfig: llamaConfig(), out });
    expect(result).toEqual({ tensors: 28, alpha: 8, architecture: "llama" });

    const file = await readGguf(out);
    const t = file.typedMetadata;
    expect(t["general.type"]).toEqual({ value: "adapter", type: GGUFValueType.STRING });
    expect(t["general.architecture"]).toEqual({ value: "llama", type: GGUFValueType.STRING });
    expect(t["adapter.type"]).toEqual({ value: "lora", type: GGUFValueType.STRING });
    expect(t["adapter.lora.alpha"]).toEqual({ value: 8, type: GGUFValueType.FLOAT32 });
    expect(t["general.name"]?.value).toBe("org/tiny");
    expect(t["general.alignment"]).toBeUndefined();

    const expectedNames = [0, 1].flatMap((l) =>
      Object.values(LLAMA_GGUF).flatMap((g) => [`blk.${l}.${g}.weight.lora_a`, `blk.${l}.${g}.weight.lora_b`]),
    );
    expect(file.tensorInfos.map((i) => i.name)).toEqual(expectedNames);
    expect(file.tensorDataOffset % 32n).toBe(0n);

    for (const [module, p] of pairs) {
      const [, layer, , proj] = module.split(".").slice(1);
      const base = `blk.${layer}.${LLAMA_GGUF[proj ?? ""]}.weight`;
      const a = file.tensorInfos.find((i) => i.name === `${base}.lora_a`);
      const b = file.tensorInfos.find((i) => i.name === `${base}.lora_b`);
      // ne0 is numpy's last axis: A (r, in) → [in, r]; B (out, r) → [r, out]. These are llama.cpp's loader checks:
      // a.ne[0] == W.ne[0] (in), b.ne[1] == W.ne[1] (out), a.ne[1] == b.ne[0] (rank).
      expect(a?.shape).toEqual([BigInt(p.inF), BigInt(R)]);
      expect(b?.shape).toEqual([BigInt(R), BigInt(p.outF)]);
      expect([a?.dtype, b?.dtype, a?.n_dims, b?.n_dims]).toEqual([GGMLQuantizationType.F32, GGMLQuantizationType.F32, 2, 2]);
      expect([(a?.offset ?? 1n) % 32n, (b?.offset ?? 1n) % 32n]).toEqual([0n, 0n]);

      expect(file.data.get(`${base}.lora_a`)).toEqual(p.a); // A is never permuted
      const heads = proj === "q_proj" ? 4 : proj === "k_proj" ? 2 : 0;
      expect(file.data.get(`${base}.lora_b`)).toEqual(heads ? hfToLlamaCpp(p.b, p.outF, heads) : p.b);
    }

    // Spelled out for head_dim 4: each head's rows [0, 1, 2, 3] (pairs i, i+2 in HF's rotate-half) become [0, 2, 1, 3].
    const q = pairs.get("model.layers.0.self_attn.q_proj")?.b ?? new Float32Array();
    const qOut = file.data.get("blk.0.attn_q.weight.lora_b") ?? new Float32Array();
    expect([0, 1, 2, 3, 4, 5, 6, 7, 12, 15].map((i) => row(qOut, i))).toEqual([0, 2, 1, 3, 4, 6, 5, 7, 12, 15].map((i) => row(q, i)));
    const k = pairs.get("model.layers.1.self_attn.k_proj")?.b ?? new Float32Array();
    const kOut = file.data.get("blk.1.attn_k.weight.lora_b") ?? new Float32Array();
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((i) => row(kOut, i))).toEqual([0, 2, 1, 3, 4, 6, 5, 7].map((i) => row(k, i)));
    expect(await readdir(join(dir, "export"))).toEqual(["adapter.gguf"]); // written via temp + rename
  });

  it("uses num_attention_heads for q and num_key_value_heads for k (head_dim 8: rows 0..7 → 0,4,1,5,2,6,3,7)", async () => {
    const config = parseModelConfig(
      { model_type: "llama", vocab_size: 32, hidden_size: 32, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 1 },
      "config.json",
    );
    const { dir, pairs } = await peftAdapter({ modules: { "model.layers.0.self_attn.q_proj": [32, 32], "model.layers.0.self_attn.k_proj": [32, 8] } });
    const out = join(dir, "a.gguf");
    await writeGgufAdapter({ adapterDir: dir, modelConfig: config, out });
    const file = await readGguf(out);
    const order = [0, 4, 1, 5, 2, 6, 3, 7];
    const k = pairs.get("model.layers.0.self_attn.k_proj")?.b ?? new Float32Array();
    expect(order.map((_, i) => row(file.data.get("blk.0.attn_k.weight.lora_b") ?? new Float32Array(), i))).toEqual(order.map((i) => row(k, i)));
    const q = pairs.get("model.layers.0.self_attn.q_proj")?.b ?? new Float32Array();
    const qOut = file.data.get("blk.0.attn_q.weight.lora_b") ?? new Float32Array();
    expect([...Array(32).keys()].map((i) => row(qOut, i))).toEqual([0, 1, 2, 3].flatMap((h) => order.map((i) => row(q, h * 8 + i))));
  });

  it("folds rsLoRA into alpha: alpha·√r, so llama.cpp's alpha/r equals alpha/√r", async () => {
    const { dir } = await peftAdapter({ modules: { "model.layers.0.self_attn.v_proj": [16, 8] }, config: { use_rslora: true, lora_alpha: 8 } });
    const out = join(dir, "a.gguf");
    const result = await writeGgufAdapter({ adapterDir: dir, modelConfig: llamaConfig(), out });
    expect(result.alpha).toBe(16); // 8 · √4
    const alpha = (await readGguf(out)).typedMetadata["adapter.lora.alpha"];
    expect(alpha).toEqual({ value: 16, type: GGUFValueType.FLOAT32 });
    expect(16 / R).toBeCloseTo(8 / Math.sqrt(R), 12);

    const odd = await peftAdapter({ modules: { "model.layers.0.self_attn.v_proj": [16, 8] }, config: { use_rslora: true, lora_alpha: 5 } });
    const result2 = await writeGgufAdapter({ adapterDir: odd.dir, modelConfig: llamaConfig(), out: join(odd.dir, "a.gguf") });
    expect(result2.alpha).toBe(Math.fround(5 * 2));
  });

  it("treats Mistral as llama (permuted) and Qwen2 as qwen2 (not permuted)", async () => {
    const { dir, pairs } = await peftAdapter({ modules: LLAMA_MODULES([0]) });
    const mistral = await writeGgufAdapter({ adapterDir: dir, modelConfig: llamaConfig("mistral"), out: join(dir, "m.gguf") });
    expect(mistral.architecture).toBe("llama");
    const m = await readGguf(join(dir, "m.gguf"));
    expect(m.typedMetadata["general.architecture"]?.value).toBe("llama");
    const q = pairs.get("model.layers.0.self_attn.q_proj")?.b ?? new Float32Array();
    expect(m.data.get("blk.0.attn_q.weight.lora_b")).toEqual(hfToLlamaCpp(q, 16, 4));

    const qwen = await writeGgufAdapter({ adapterDir: dir, modelConfig: llamaConfig("qwen2"), out: join(dir, "q.gguf") });
    expect(qwen).toEqual({ tensors: 14, alpha: 8, architecture: "qwen2" });
    const w = await readGguf(join(dir, "q.gguf"));
    expect(w.typedMetadata["general.architecture"]?.value).toBe("qwen2");
    expect(w.tensorInfos.map((i) => i.name)).toEqual(Object.values(LLAMA_GGUF).flatMap((g) => [`blk.0.${g}.weight.lora_a`, `blk.0.${g}.weight.lora_b`]));
    for (const [module, p] of pairs) {
      const base = `blk.0.${LLAMA_GGUF[module.split(".").at(-1) ?? ""]}.weight`;
      expect(w.data.get(`${base}.lora_a`)).toEqual(p.a);
      expect(w.data.get(`${base}.lora_b`)).toEqual(p.b); // q and k too: llama.cpp's qwen2 uses NeoX RoPE, HF's order
    }
  });

  it("names Qwen3 qwen3 (NeoX RoPE: q/k unpermuted) and SmolLM3 smollm3 (llama.cpp's Llama converter: q/k permuted)", async () => {
    const { dir, pairs } = await peftAdapter({ modules: LLAMA_MODULES([0]) });
    const q = pairs.get("model.layers.0.self_attn.q_proj")?.b ?? new Float32Array();
    const k = pairs.get("model.layers.0.self_attn.k_proj")?.b ?? new Float32Array();
    const qwen3 = await writeGgufAdapter({ adapterDir: dir, modelConfig: llamaConfig("qwen3"), out: join(dir, "q3.gguf") });
    expect(qwen3.architecture).toBe("qwen3");
    const a = await readGguf(join(dir, "q3.gguf"));
    expect(a.typedMetadata["general.architecture"]?.value).toBe("qwen3");
    expect([a.data.get("blk.0.attn_q.weight.lora_b"), a.data.get("blk.0.attn_k.weight.lora_b")]).toEqual([q, k]);
    const smol = await writeGgufAdapter({ adapterDir: dir, modelConfig: llamaConfig("smollm3"), out: join(dir, "s3.gguf") });
    expect(smol.architecture).toBe("smollm3");
    const b = await readGguf(join(dir, "s3.gguf"));
    expect(b.typedMetadata["general.architecture"]?.value).toBe("smollm3");
    expect(b.data.get("blk.0.attn_q.weight.lora_b")).toEqual(hfToLlamaCpp(q, 16, 4));
    expect(b.data.get("blk.0.attn_k.weight.lora_b")).toEqual(hfToLlamaCpp(k, 8, 2));
  });

  it("names Phi-3 phi3, its fused qkv_proj attn_qkv and gate_up_proj ffn_up (llama.cpp keeps them fused, unpermuted)", async () => {
    const modules = { "model.layers.0.self_attn.qkv_proj": [16, 32], "model.layers.0.mlp.gate_up_proj": [16, 48] } as Record<string, [number, number]>;
    const { dir, pairs } = await peftAdapter({ modules });
    const phi3 = parseModelConfig({ model_type: "phi3", vocab_size: 32, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 }, "config.json");
    expect(await writeGgufAdapter({ adapterDir: dir, modelConfig: phi3, out: join(dir, "p.gguf") })).toEqual({ tensors: 4, alpha: 8, architecture: "phi3" });
    const file = await readGguf(join(dir, "p.gguf"));
    expect(file.typedMetadata["general.architecture"]?.value).toBe("phi3");
    expect(file.data.get("blk.0.attn_qkv.weight.lora_b")).toEqual(pairs.get("model.layers.0.self_attn.qkv_proj")?.b);
    expect(file.data.get("blk.0.ffn_up.weight.lora_b")).toEqual(pairs.get("model.layers.0.mlp.gate_up_proj")?.b);
  });

  it("writes Gemma 3 text as gemma3 and Gemma 2 as gemma2, with llama.cpp's names and no q/k permutation", async () => {
    // head_dim 8 with 2 heads: q is 16 wide like the hidden size, k/v 8 (one kv head).
    const gemma = (modelType: string) =>
      parseModelConfig({ model_type: modelType, vocab_size: 32, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 8 }, "config.json");
    const { dir, pairs } = await peftAdapter({ modules: LLAMA_MODULES([1]) });
    for (const [modelType, architecture] of [["gemma3_text", "gemma3"], ["gemma2", "gemma2"]] as const) {
      const out = join(dir, `${architecture}.gguf`);
      expect(await writeGgufAdapter({ adapterDir: dir, modelConfig: gemma(modelType), out })).toEqual({ tensors: 14, alpha: 8, architecture });
      const file = await readGguf(out);
      expect(file.typedMetadata["general.architecture"]?.value).toBe(architecture);
      expect(file.tensorInfos.map((i) => i.name)).toEqual(Object.values(LLAMA_GGUF).flatMap((g) => [`blk.1.${g}.weight.lora_a`, `blk.1.${g}.weight.lora_b`]));
      for (const [module, p] of pairs) {
        const base = `blk.1.${LLAMA_GGUF[module.split(".").at(-1) ?? ""]}.weight`;
        expect(file.data.get(`${base}.lora_a`)).toEqual(p.a);
        expect(file.data.get(`${base}.lora_b`)).toEqual(p.b); // Gemma uses NeoX RoPE in llama.cpp: HF's row order
      }
    }
  });

  it("writes GPT-2 (fan_in_fan_out) adapters with PEFT's A/B unchanged: attn_qkv, attn_output, ffn_up, ffn_down", async () => {
    const { dir, pairs } = await peftAdapter({
      modules: {
        "transformer.h.0.attn.c_attn": [16, 48],
        "transformer.h.0.attn.c_proj": [16, 16],
        "transformer.h.1.mlp.c_fc": [16, 64],
        "transformer.h.1.mlp.c_proj": [64, 16],
      },
      config: { fan_in_fan_out: true, target_modules: ["c_attn", "c_proj", "c_fc"] },
    });
    const out = join(dir, "gpt2.gguf");
    expect(await writeGgufAdapter({ adapterDir: dir, modelConfig: gpt2Config(), out })).toEqual({ tensors: 8, alpha: 8, architecture: "gpt2" });
    const file = await readGguf(out);
    expect(file.typedMetadata["general.architecture"]?.value).toBe("gpt2");
    const names: Record<string, string> = {
      "transformer.h.0.attn.c_attn": "blk.0.attn_qkv.weight",
      "transformer.h.0.attn.c_proj": "blk.0.attn_output.weight",
      "transformer.h.1.mlp.c_fc": "blk.1.ffn_up.weight",
      "transformer.h.1.mlp.c_proj": "blk.1.ffn_down.weight",
    };
    expect(file.tensorInfos.map((i) => i.name)).toEqual(Object.values(names).flatMap((n) => [`${n}.lora_a`, `${n}.lora_b`]));
    for (const [module, p] of pairs) {
      const base = names[module] ?? "";
      // llama.cpp's GPT-2 weights are ne [in, out] (wqkv {n_embd, 3·n_embd}); a.ne[0] must be in.
      expect(file.tensorInfos.find((i) => i.name === `${base}.lora_a`)?.shape).toEqual([BigInt(p.inF), BigInt(R)]);
      expect(file.tensorInfos.find((i) => i.name === `${base}.lora_b`)?.shape).toEqual([BigInt(R), BigInt(p.outF)]);
      expect(file.data.get(`${base}.lora_a`)).toEqual(p.a);
      expect(file.data.get(`${base}.lora_b`)).toEqual(p.b);
    }
  });

  it("accepts GPT-2 module names without the transformer. prefix", async () => {
    const { dir } = await peftAdapter({ modules: { "h.1.attn.c_attn": [16, 48] } });
    await writeGgufAdapter({ adapterDir: dir, modelConfig: gpt2Config(), out: join(dir, "a.gguf") });
    expect((await readGguf(join(dir, "a.gguf"))).tensorInfos.map((i) => i.name)).toEqual(["blk.1.attn_qkv.weight.lora_a", "blk.1.attn_qkv.weight.lora_b"]);
  });

  describe("refuses, with a UserError and no file written", () => {
    async function refusal(params: Parameters<typeof peftAdapter>[0], config = llamaConfig()): Promise<UserError> {
      const { dir } = await peftAdapter(params);
      const out = join(dir, "a.gguf");
      const error = await writeGgufAdapter({ adapterDir: dir, modelConfig: config, out }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UserError);
      expect(existsSync(out)).toBe(false);
      expect((await readdir(dir)).sort()).toEqual(["adapter_config.json", "adapter_model.safetensors"]);
      return error as UserError;
    }

    it("a module with no GGUF name, naming it", async () => {
      const error = await refusal({ modules: { "model.layers.0.self_attn.q_proj": [16, 16], "model.layers.0.self_attn.rotary_proj": [16, 16] } });
      expect(error.message).toMatch(/LoRA module model\.layers\.0\.self_attn\.rotary_proj has no llama\.cpp \(GGUF\) tensor name for a llama model/);
      const lmHead = await refusal({ modules: { lm_head: [16, 32] } });
      expect(lmHead.message).toMatch(/LoRA module lm_head has no llama\.cpp/);
      const gpt = await refusal({ modules: { "transformer.h.0.attn.q_attn": [16, 16] } }, gpt2Config());
      expect(gpt.message).toMatch(/transformer\.h\.0\.attn\.q_attn .* gpt2 model.*c_attn, attn\.c_proj, c_fc, mlp\.c_proj/);
    });

    it("a shape that does not fit the base model", async () => {
      const error = await refusal({ modules: { "model.layers.0.self_attn.k_proj": [16, 16] } });
      expect(error.message).toMatch(/k_proj\.lora_B\.weight has shape \[16, 4\], but r and this llama base model need \[8, 4\]/);
    });

    it("a layer the base model does not have", async () => {
      const error = await refusal({ modules: { "model.layers.2.mlp.up_proj": [16, 24] } });
      expect(error.message).toMatch(/layer 2, but the base model has 2 layers/);
    });

    it("tensors that are not LoRA pairs (embeddings, modules_to_save)", async () => {
      const error = await refusal({ modules: { "model.layers.0.mlp.up_proj": [16, 24] }, extra: [{ name: "base_model.model.model.embed_tokens.weight", shape: [32, 16] }] });
      expect(error.message).toMatch(/not LoRA A\/B weights \(base_model\.model\.model\.embed_tokens\.weight\)/);
    });

    it("a lora_A without its lora_B", async () => {
      const error = await refusal({ modules: {}, extra: [{ name: "base_model.model.model.layers.0.mlp.up_proj.lora_A.weight", shape: [R, 16] }] });
      expect(error.message).toMatch(/module model\.layers\.0\.mlp\.up_proj has lora_A but no lora_B/);
    });

    it("DoRA adapters (through readAdapterConfig)", async () => {
      const error = await refusal({ modules: { "model.layers.0.mlp.up_proj": [16, 24] }, config: { use_dora: true } });
      expect(error.message).toMatch(/use_dora is true/);
    });
  });

  it("refuses an output path that is a directory, and a dir without safetensors", async () => {
    const { dir } = await peftAdapter({ modules: { "model.layers.0.mlp.up_proj": [16, 24] } });
    await expect(writeGgufAdapter({ adapterDir: dir, modelConfig: llamaConfig(), out: dir })).rejects.toThrow(/is a directory; give the GGUF file to write/);
    const empty = await tempDir();
    await writeFile(join(empty, "adapter_config.json"), JSON.stringify({ r: 4, lora_alpha: 8 }));
    await expect(writeGgufAdapter({ adapterDir: empty, modelConfig: llamaConfig(), out: join(empty, "a.gguf") })).rejects.toThrow(
      /has no adapter_model\.safetensors/,
    );
  });
});
