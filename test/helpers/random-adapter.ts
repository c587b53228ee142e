/**
 * A PEFT LoRA adapter with random (nonzero) A and B for any model finetune loads, its modules and shapes taken
 * from the model's own projections, so every architecture gets a valid adapter without a table per family. GPT-2's
 * are marked fan_in_fan_out, as PEFT marks adapters of Conv1D modules.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { writeSafetensors } from "../../src/io/safetensors-write.js";
import type { CausalLM } from "../../src/model/types.js";
import { lcg } from "./lcg.js";

export async function writeRandomAdapter(
  dir: string,
  model: CausalLM,
  options: { targets?: string[]; r?: number; alpha?: number; rslora?: boolean; seed?: number; scale?: number },
): Promise<string[]> {
  const r = options.r ?? 4;
  const random = lcg(options.seed ?? 7);
  const scale = options.scale ?? 0.3;
  const modules = [...model.projections.entries()].filter(([name]) => !options.targets || options.targets.includes(name.slice(name.lastIndexOf(".") + 1)));
  if (modules.length === 0) throw new Error(`no projection matches ${options.targets?.join(", ")}`);
  const values = (n: number) => Float32Array.from({ length: n }, () => random() * scale);
  await mkdir(dir, { recursive: true });
  await writeSafetensors(
    join(dir, "adapter_model.safetensors"),
    modules.flatMap(([name, p]) => [
      { name: `base_model.model.${name}.lora_A.weight`, dtype: "F32" as const, shape: [r, p.inFeatures], data: values(r * p.inFeatures) },
      { name: `base_model.model.${name}.lora_B.weight`, dtype: "F32" as const, shape: [p.outFeatures, r], data: values(p.outFeatures * r) },
    ]),
    { format: "pt" },
  );
  const targets = [...new Set(modules.map(([name]) => name.slice(name.lastIndexOf(".") + 1)))].sort();
  const config = { peft_type: "LORA", task_type: "CAUSAL_LM", r, lora_alpha: options.alpha ?? 8, lora_dropout: 0, target_modules: targets, use_rslora: options.rslora ?? false, base_model_name_or_path: "org/tiny", bias: "none", fan_in_fan_out: model.config.family === "gpt2" };
  await writeFile(join(dir, "adapter_config.json"), JSON.stringify(config, null, 2));
  return targets;
}
