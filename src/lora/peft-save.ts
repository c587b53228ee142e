import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.js";
import { writeSafetensors, type TensorToWrite } from "../io/safetensors-write.js";
import type { ModelConfig } from "../model/config.js";
import type { Tf } from "../model/types.js";
import type { LoraSet } from "./attach.js";

export interface BaseModelInfo {
  /** Hub repo id, or the local folder. */
  nameOrPath: string;
  /** Commit sha, or null for a local folder. */
  revision: string | null;
}

/** PEFT's adapter_config.json with the full set of fields PEFT, vLLM and llama.cpp read. */
export function adapterConfig(lora: LoraSet, config: ModelConfig, base: BaseModelInfo): Record<string, unknown> {
  const { spec } = lora;
  return {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: base.nameOrPath,
    revision: base.revision,
    r: spec.r,
    lora_alpha: spec.alpha,
    lora_dropout: spec.dropout,
    target_modules: lora.targetModules,
    layers_to_transform: spec.layers === "all" ? null : [...spec.layers].sort((a, b) => a - b),
    bias: "none",
    fan_in_fan_out: config.family === "gpt2",
    use_rslora: spec.rslora,
    use_dora: false,
    modules_to_save: null,
    init_lora_weights: true,
    inference_mode: true,
  };
}

/** The adapter tensors under PEFT's names, in PEFT's orientation: lora_A [r, in], lora_B [out, r], float32. */
export async function adapterTensors(tf: Tf, lora: LoraSet): Promise<TensorToWrite[]> {
  const out: TensorToWrite[] = [];
  for (const { name, adapter } of lora.adapters) {
    const a = tf.tidy(() => tf.transpose(adapter.a));
    const b = tf.tidy(() => tf.transpose(adapter.b));
    out.push(
      { name: `base_model.model.${name}.lora_A.weight`, dtype: "F32", shape: a.shape, data: (await a.data()) as Float32Array },
      { name: `base_model.model.${name}.lora_B.weight`, dtype: "F32", shape: b.shape, data: (await b.data()) as Float32Array },
    );
    a.dispose();
    b.dispose();
  }
  return out;
}

/** Writes adapter_config.json and adapter_model.safetensors into dir (each file atomically). */
export async function savePeftAdapter(tf: Tf, dir: string, lora: LoraSet, config: ModelConfig, base: BaseModelInfo): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, "adapter_model.safetensors"), await adapterTensors(tf, lora), { format: "pt" });
  await writeFileAtomic(join(dir, "adapter_config.json"), `${JSON.stringify(adapterConfig(lora, config, base), null, 2)}\n`);
}
