import { stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { errnoCode, UserError } from "../errors.js";
import { openSafetensors } from "../io/safetensors-read.js";
import type { SafetensorsReader } from "../io/safetensors-read.js";
import type { ModelConfig } from "../model/config.js";
import { ggufArchitecture, permutesQk } from "./architecture.js";
import { writeGguf, type GgufTensor, type GgufValue } from "./writer.js";
import { readAdapterConfig } from "../lora/peft-load.js";
import { modelName } from "../model/model-name.js";

/** How one PEFT module becomes a llama.cpp tensor. */
interface ModuleTarget {
  layer: number;
  /** llama.cpp's per-block tensor name, e.g. "attn_q" (→ blk.N.attn_q.weight.lora_a). */
  ggufName: string;
  inFeatures: number;
  outFeatures: number;
  /** Heads for llama.cpp's q/k row permutation (llama and mistral only), else null. */
  permuteHeads: number | null;
}

/** Tensor order in the file: by layer, then this order (llama.cpp pairs a/b by name, so order is cosmetic). */
const ORDER = ["attn_q", "attn_k", "attn_v", "attn_qkv", "attn_output", "ffn_gate", "ffn_up", "ffn_down"];

/**
 * Converts a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors) into a llama.cpp GGUF adapter,
 * as llama.cpp's convert_lora_to_gguf.py does: KV general.type=adapter, general.architecture, adapter.type=lora,
 * adapter.lora.alpha (float32); tensors blk.N.<name>.weight.lora_a (PEFT's A [r, in]) and .lora_b (B [out, r]),
 * F32. llama.cpp scales by alpha/r and knows no rsLoRA, so an rsLoRA adapter is written with alpha·√r.
 * The file is written atomically.
 */
export async function writeGgufAdapter(params: {
  adapterDir: string;
  modelConfig: ModelConfig;
  out: string;
}): Promise<{ tensors: number; alpha: number; architecture: string }> {
  const { adapterDir, modelConfig, out } = params;
  const config = await readAdapterConfig(adapterDir);
  const architecture = ggufArchitecture(modelConfig);
  await refuseDirectory(out);

  const file = join(adapterDir, "adapter_model.safetensors");
  const reader = await openSafetensors(file).catch((error: unknown) => {
    if (error instanceof UserError && error.message === `no such file: ${file}`) {
      throw new UserError(`${adapterDir} has no adapter_model.safetensors; GGUF export reads safetensors adapters only.`);
    }
    throw error;
  });
  let tensors: GgufTensor[];
  try {
    tensors = await convertTensors(reader, modelConfig, config.r);
  } finally {
    await reader.close();
  }

  // alpha/r must equal PEFT's scale: alpha/r, or alpha/√r with rsLoRA (alpha·√r / r = alpha/√r).
  const alpha = Math.fround(config.use_rslora ? config.lora_alpha * Math.sqrt(config.r) : config.lora_alpha);
  const metadata: Record<string, GgufValue> = {
    "general.architecture": { type: "string", value: architecture },
    "general.type": { type: "string", value: "adapter" },
    "general.name": { type: "string", value: config.base_model_name_or_path ? modelName(config.base_model_name_or_path) : basename(adapterDir) },
    "adapter.type": { type: "string", value: "lora" },
    "adapter.lora.alpha": { type: "float32", value: alpha },
    "general.quantization_version": { type: "uint32", value: 2 },
  };
  await writeGguf(out, { metadata, tensors });
  return { tensors: tensors.length, alpha, architecture };
}

async function convertTensors(reader: SafetensorsReader, modelConfig: ModelConfig, rank: number): Promise<GgufTensor[]> {
  const file = reader.path;
  const pairs = new Map<string, { a?: string; b?: string }>();
  const stray: string[] = [];
  for (const name of reader.tensors.keys()) {
    const match = /^base_model\.model\.(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$/.exec(name);
    if (!match?.[1]) {
      stray.push(name);
      continue;
    }
    const pair = pairs.get(match[1]) ?? {};
    if (match[2] === "A") pair.a = name;
    else pair.b = name;
    pairs.set(match[1], pair);
  }
  if (stray.length > 0) {
    throw new UserError(
      `${file} has tensors that are not LoRA A/B weights (${stray.slice(0, 3).join(", ")}${stray.length > 3 ? ", …" : ""}); ` +
        "llama.cpp adapters hold LoRA pairs only (full embedding or lm_head tensors come from added tokens or modules_to_save).",
    );
  }
  if (pairs.size === 0) throw new UserError(`${file} has no LoRA tensors.`);

  const modules = [...pairs.entries()].map(([module, pair]) => ({ module, pair, target: targetOf(module, modelConfig, file) }));
  modules.sort((x, y) => x.target.layer - y.target.layer || ORDER.indexOf(x.target.ggufName) - ORDER.indexOf(y.target.ggufName));

  const out: GgufTensor[] = [];
  for (const { module, pair, target } of modules) {
    if (!pair.a || !pair.b) throw new UserError(`${file}: module ${module} has lora_${pair.a ? "A" : "B"} but no lora_${pair.a ? "B" : "A"}; the adapter is incomplete.`);
    const a = await readChecked(reader, pair.a, [rank, target.inFeatures], modelConfig);
    const b = await readChecked(reader, pair.b, [target.outFeatures, rank], modelConfig);
    const name = `blk.${target.layer}.${target.ggufName}.weight`;
    // PEFT's A/B are nn.Linear weights whatever fan_in_fan_out says (GPT-2's Conv1D included), which is the
    // orientation llama.cpp multiplies: b·(a·x) with a.ne = [in, r], b.ne = [r, out].
    out.push({ name: `${name}.lora_a`, shape: [rank, target.inFeatures], data: a });
    out.push({
      name: `${name}.lora_b`,
      shape: [target.outFeatures, rank],
      data: target.permuteHeads === null ? b : permuteRopeRows(b, target.outFeatures, rank, target.permuteHeads),
    });
  }
  return out;
}

/** Maps a PEFT module path to its llama.cpp tensor, or a UserError naming the module. */
function targetOf(module: string, config: ModelConfig, file: string): ModuleTarget {
  let target: ModuleTarget | null = null;
  // Gemma's projections carry the same names (blk.N.attn_q …; its extra norms are not LoRA targets).
  if (config.family === "llama" || config.family === "gemma") {
    // A gemma3 (image and text) checkpoint's language model sits under language_model.model. or model.language_model.
    const m = /^(?:model\.|language_model\.model\.|model\.language_model\.)layers\.(\d+)\.((?:self_attn|mlp)\.\w+)$/.exec(module);
    if (m?.[1] && m[2]) {
      const layer = Number(m[1]);
      const hidden = config.hiddenSize;
      const qDim = config.numHeads * config.headDim;
      const kvDim = config.numKvHeads * config.headDim;
      const ffn = config.intermediateSize;
      const permutes = permutesQk(config);
      const table: Record<string, Omit<ModuleTarget, "layer">> = {
        "self_attn.q_proj": { ggufName: "attn_q", inFeatures: hidden, outFeatures: qDim, permuteHeads: permutes ? config.numHeads : null },
        "self_attn.k_proj": { ggufName: "attn_k", inFeatures: hidden, outFeatures: kvDim, permuteHeads: permutes ? config.numKvHeads : null },
        "self_attn.v_proj": { ggufName: "attn_v", inFeatures: hidden, outFeatures: kvDim, permuteHeads: null },
        "self_attn.o_proj": { ggufName: "attn_output", inFeatures: qDim, outFeatures: hidden, permuteHeads: null },
        "mlp.gate_proj": { ggufName: "ffn_gate", inFeatures: hidden, outFeatures: ffn, permuteHeads: null },
        "mlp.up_proj": { ggufName: "ffn_up", inFeatures: hidden, outFeatures: ffn, permuteHeads: null },
        "mlp.down_proj": { ggufName: "ffn_down", inFeatures: ffn, outFeatures: hidden, permuteHeads: null },
        // Phi-3's fused modules: llama.cpp keeps them fused too (attn_qkv; ffn_up holds [gate | up]), NeoX RoPE.
        "self_attn.qkv_proj": { ggufName: "attn_qkv", inFeatures: hidden, outFeatures: qDim + 2 * kvDim, permuteHeads: null },
        "mlp.gate_up_proj": { ggufName: "ffn_up", inFeatures: hidden, outFeatures: 2 * ffn, permuteHeads: null },
      };
      const entry = table[m[2]];
      if (entry) target = { layer, ...entry };
    }
  } else {
    const m = /^(?:transformer\.)?h\.(\d+)\.((?:attn|mlp)\.\w+)$/.exec(module);
    if (m?.[1] && m[2]) {
      const layer = Number(m[1]);
      const e = config.hiddenSize;
      const table: Record<string, Omit<ModuleTarget, "layer">> = {
        "attn.c_attn": { ggufName: "attn_qkv", inFeatures: e, outFeatures: 3 * e, permuteHeads: null },
        "attn.c_proj": { ggufName: "attn_output", inFeatures: e, outFeatures: e, permuteHeads: null },
        "mlp.c_fc": { ggufName: "ffn_up", inFeatures: e, outFeatures: config.innerSize, permuteHeads: null },
        "mlp.c_proj": { ggufName: "ffn_down", inFeatures: config.innerSize, outFeatures: e, permuteHeads: null },
      };
      const entry = table[m[2]];
      if (entry) target = { layer, ...entry };
    }
  }
  if (!target) {
    const supported =
      config.family === "gpt2"
        ? "c_attn, attn.c_proj, c_fc, mlp.c_proj"
        : config.family === "llama" && config.fusedProjections
          ? "qkv_proj, o_proj, gate_up_proj, down_proj"
          : "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj";
    throw new UserError(
      `${file}: LoRA module ${module} has no llama.cpp (GGUF) tensor name for a ${config.modelType} model; ` +
        `GGUF export supports the per-layer projections ${supported}. Train without that target module to export to GGUF.`,
    );
  }
  if (target.layer >= config.numLayers) {
    throw new UserError(`${file}: module ${module} is in layer ${target.layer}, but the base model has ${config.numLayers} layers; the adapter was trained for another base model.`);
  }
  return target;
}

async function readChecked(reader: SafetensorsReader, name: string, expected: number[], config: ModelConfig): Promise<Float32Array> {
  const shape = reader.tensors.get(name)?.shape ?? [];
  if (shape.join() !== expected.join()) {
    throw new UserError(
      `${reader.path}: ${name} has shape [${shape.join(", ")}], but r and this ${config.modelType} base model need [${expected.join(", ")}]; ` +
        "the adapter was trained for another base model (or its adapter_config.json r is wrong).",
    );
  }
  return reader.readFloat32(name);
}

/**
 * llama.cpp's q/k layout: within each head, row (k·half + j) of HF's split-halves order moves to row (2j + k),
 * i.e. reshape(heads, 2, half, …).swapaxes(1, 2). For LoRA only B's rows (the output side) move; A is untouched.
 */
export function permuteRopeRows(b: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  const half = rows / heads / 2;
  if (!Number.isInteger(half)) throw new Error(`permuteRopeRows: ${rows} rows do not split into ${heads} heads of even size (this is a bug)`);
  const out = new Float32Array(b.length);
  for (let h = 0; h < heads; h++) {
    for (let k = 0; k < 2; k++) {
      for (let j = 0; j < half; j++) {
        const src = (h * 2 * half + k * half + j) * cols;
        const dst = (h * 2 * half + j * 2 + k) * cols;
        out.set(b.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

async function refuseDirectory(out: string): Promise<void> {
  try {
    if ((await stat(out)).isDirectory()) throw new UserError(`${out} is a directory; give the GGUF file to write, e.g. ${join(out, "adapter.gguf")}.`);
  } catch (error) {
    if (errnoCode(error) !== "ENOENT") throw error;
  }
}
