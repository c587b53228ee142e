import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackend } from "../../../src/backend/load.js";
import { UserError } from "../../../src/errors.js";
import { attachLora } from "../../../src/lora/attach.js";
import { loadPeftAdapter } from "../../../src/lora/peft-load.js";
import { savePeftAdapter } from "../../../src/lora/peft-save.js";
import { loadModel } from "../../../src/model/load-model.js";
import type { CausalLM, Tf } from "../../../src/model/types.js";
import { referenceLogits } from "../../helpers/reference-model.js";
import { tempDir } from "../../helpers/run-cli.js";
import { tinyTensors, writeSafetensors, writeTinyCheckpoint, type TinySpec } from "../../helpers/tiny-checkpoint.js";

const tmp = tempDir();
let tf: Tf;
const IDS = [1, 7, 12, 30, 5, 9, 44, 2];

beforeAll(async () => {
  tf = (await loadBackend({ forced: "wasm" })).tf;
});
afterAll(() => tmp.cleanup());

function logits(model: CausalLM): Float32Array {
  const out = model.forward({ ids: tf.tensor2d(Int32Array.from(IDS), [1, IDS.length], "int32") });
  const data = out.dataSync() as Float32Array;
  out.dispose();
  return data;
}

/** Deterministic small numbers for hand-built adapter tensors. */
const values = (n: number, seed: number) => Array.from({ length: n }, (_, i) => Math.sin(seed * 97 + i * 1.7) * 0.05);

describe("PEFT adapters: save → load round trip", () => {
  it("gives identical logits", async () => {
    const dir = join(tmp.path, "rt-model");
    writeTinyCheckpoint(dir, { kind: "llama", seed: 41 });
    const model = await loadModel(tf, dir);
    const lora = attachLora(tf, model, { r: 4, alpha: 8, dropout: 0, targetModules: "all-linear", layers: "all", rslora: true, seed: 2 });
    for (const { adapter } of lora.adapters) adapter.b.assign(tf.randomNormal(adapter.b.shape, 0, 0.05, "float32", 9));
    const trained = logits(model);
    await savePeftAdapter(tf, join(tmp.path, "rt-adapter"), lora, model.config, { nameOrPath: "tiny", revision: null });
    lora.dispose();
    expect(Array.from(logits(model))).not.toEqual(Array.from(trained));
    const loaded = await loadPeftAdapter(tf, model, join(tmp.path, "rt-adapter"));
    expect(Array.from(logits(model))).toEqual(Array.from(trained));
    loaded.dispose();
    model.dispose();
  });
});

describe("adapters saved by Python PEFT", () => {
  /**
   * Builds an adapter with PEFT's names and config fields, and independently the merged checkpoint it implies
   * (W + scale·B·A, Conv1D transposed), so our loaded adapter can be checked against the reference model.
   */
  async function check(spec: TinySpec, modules: Array<{ module: string; weight: string; inF: number; outF: number }>, config: Record<string, unknown>) {
    const name = `${spec.kind}-peft`;
    const baseDir = join(tmp.path, name);
    writeTinyCheckpoint(baseDir, spec);
    const r = config.r as number;
    const scale = config.use_rslora ? (config.lora_alpha as number) / Math.sqrt(r) : (config.lora_alpha as number) / r;
    const tensors = tinyTensors(spec);
    const adapterTensors: Record<string, { shape: number[]; data: number[] }> = {};
    modules.forEach(({ module, weight, inF, outF }, m) => {
      const a = values(r * inF, m + 1);
      const b = values(outF * r, m + 50);
      adapterTensors[`base_model.model.${module}.lora_A.weight`] = { shape: [r, inF], data: a };
      adapterTensors[`base_model.model.${module}.lora_B.weight`] = { shape: [outF, r], data: b };
      const w = tensors[weight];
      if (!w) throw new Error(`no ${weight}`);
      for (let o = 0; o < outF; o += 1) {
        for (let i = 0; i < inF; i += 1) {
          let delta = 0;
          for (let k = 0; k < r; k += 1) delta += (b[o * r + k] ?? 0) * (a[k * inF + i] ?? 0);
          const index = config.fan_in_fan_out ? i * outF + o : o * inF + i;
          (w.data as Float64Array)[index] = ((w.data as Float64Array)[index] ?? 0) + scale * delta;
        }
      }
    });
    const adapterDir = join(tmp.path, `${name}-adapter`);
    mkdirSync(adapterDir, { recursive: true });
    writeSafetensors(join(adapterDir, "adapter_model.safetensors"), adapterTensors);
    writeFileSync(join(adapterDir, "adapter_config.json"), JSON.stringify(config));
    const mergedDir = join(tmp.path, `${name}-merged`);
    mkdirSync(mergedDir, { recursive: true });
    copyFileSync(join(baseDir, "config.json"), join(mergedDir, "config.json"));
    writeSafetensors(join(mergedDir, "model.safetensors"), tensors);

    const model = await loadModel(tf, baseDir);
    const adapter = await loadPeftAdapter(tf, model, adapterDir);
    const ours = logits(model);
    const reference = referenceLogits(mergedDir, IDS);
    let maxError = 0;
    reference.forEach((row, t) => row.forEach((v, j) => (maxError = Math.max(maxError, Math.abs(v - (ours[t * row.length + j] ?? NaN))))));
    expect(maxError).toBeLessThan(1e-4);
    adapter.dispose();
    model.dispose();
  }

  const peftFields = { peft_type: "LORA", task_type: "CAUSAL_LM", bias: "none", inference_mode: true, init_lora_weights: true, lora_dropout: 0.05, modules_to_save: null, use_dora: false, layer_replication: null, loftq_config: {}, megatron_config: null, rank_pattern: {}, alpha_pattern: {}, revision: null };

  it("Llama: a subset of layers, q/k/v/o/gate/up/down, rsLoRA", async () => {
    const H = 32;
    const modules = ["q_proj", "k_proj", "v_proj", "o_proj"].map((m) => ({ module: `model.layers.1.self_attn.${m}`, weight: `model.layers.1.self_attn.${m}.weight`, inF: H, outF: m === "k_proj" || m === "v_proj" ? 16 : H }));
    modules.push(
      { module: "model.layers.0.mlp.gate_proj", weight: "model.layers.0.mlp.gate_proj.weight", inF: H, outF: 48 },
      { module: "model.layers.0.mlp.up_proj", weight: "model.layers.0.mlp.up_proj.weight", inF: H, outF: 48 },
      { module: "model.layers.0.mlp.down_proj", weight: "model.layers.0.mlp.down_proj.weight", inF: 48, outF: H },
    );
    await check({ kind: "llama", seed: 61 }, modules, { ...peftFields, r: 4, lora_alpha: 8, use_rslora: true, target_modules: ["down_proj", "q_proj", "v_proj", "k_proj", "o_proj", "up_proj", "gate_proj"], layers_to_transform: null, fan_in_fan_out: false, base_model_name_or_path: "tiny/llama" });
  });

  it("GPT-2 with fan_in_fan_out (Conv1D weights)", async () => {
    const E = 32;
    const modules = [
      { module: "transformer.h.0.attn.c_attn", weight: "h.0.attn.c_attn.weight", inF: E, outF: 3 * E },
      { module: "transformer.h.1.mlp.c_fc", weight: "h.1.mlp.c_fc.weight", inF: E, outF: 4 * E },
      { module: "transformer.h.1.attn.c_proj", weight: "h.1.attn.c_proj.weight", inF: E, outF: E },
    ];
    await check({ kind: "gpt2", seed: 62 }, modules, { ...peftFields, r: 2, lora_alpha: 4, target_modules: ["c_attn", "c_fc", "c_proj"], fan_in_fan_out: true, base_model_name_or_path: "gpt2" });
  });

  it.each([
    [{ use_dora: true }, "use_dora is true (DoRA)"],
    [{ modules_to_save: ["lm_head"] }, "modules_to_save lists lm_head"],
    [{ peft_type: "IA3" }, 'peft_type is "IA3"'],
    [{ bias: "all" }, 'bias is "all"'],
  ])("refuses %j naming the field", async (patch, message) => {
    const dir = join(tmp.path, `refuse-${Object.keys(patch)[0] ?? ""}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "adapter_config.json"), JSON.stringify({ ...peftFields, r: 2, lora_alpha: 4, target_modules: ["q_proj"], ...patch }));
    const model = await loadModel(tf, join(tmp.path, "rt-model"));
    await expect(loadPeftAdapter(tf, model, dir)).rejects.toThrow(UserError);
    await expect(loadPeftAdapter(tf, model, dir)).rejects.toThrow(message);
    model.dispose();
  });

  it("refuses unknown target modules and adapters for another base model, naming the tensor and shapes", async () => {
    const model = await loadModel(tf, join(tmp.path, "rt-model"));
    const unknown = join(tmp.path, "unknown-module");
    mkdirSync(unknown, { recursive: true });
    writeFileSync(join(unknown, "adapter_config.json"), JSON.stringify({ ...peftFields, r: 2, lora_alpha: 4, target_modules: ["c_attn"] }));
    writeSafetensors(join(unknown, "adapter_model.safetensors"), { "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight": { shape: [2, 32], data: values(64, 1) }, "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight": { shape: [96, 2], data: values(192, 2) } });
    await expect(loadPeftAdapter(tf, model, unknown)).rejects.toThrow("target module transformer.h.0.attn.c_attn does not exist in this llama model");
    const other = join(tmp.path, "other-base");
    mkdirSync(other, { recursive: true });
    writeFileSync(join(other, "adapter_config.json"), JSON.stringify({ ...peftFields, r: 2, lora_alpha: 4, target_modules: ["q_proj"], base_model_name_or_path: "big/model" }));
    writeSafetensors(join(other, "adapter_model.safetensors"), { "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": { shape: [2, 64], data: values(128, 1) }, "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": { shape: [64, 2], data: values(128, 2) } });
    await expect(loadPeftAdapter(tf, model, other)).rejects.toThrow("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight has shape [2, 64], but the base model needs [2, 32]; this adapter was trained for a different base model (big/model)");
    model.dispose();
  });
});
