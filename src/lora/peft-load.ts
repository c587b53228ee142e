import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { errnoCode, UserError } from "../errors.js";
import type { CausalLM, Tf } from "../model/types.js";
import type * as tfc from "@tensorflow/tfjs-core";
import { LoraAdapter, loraScale } from "./adapter.js";
import { detachAdapters, layerOf, loraSet, shortName, variableFrom, type LoraSet } from "./attach.js";
import { readPeftPairs } from "./peft-tensors.js";

const adapterConfigSchema = z
  .object({
    peft_type: z.string().optional(),
    r: z.number().int().positive(),
    lora_alpha: z.number().positive(),
    lora_dropout: z.number().min(0).optional(),
    target_modules: z.union([z.array(z.string()), z.string()]).nullish(),
    layers_to_transform: z.union([z.array(z.number().int()), z.number().int()]).nullish(),
    fan_in_fan_out: z.boolean().optional(),
    use_rslora: z.boolean().optional(),
    use_dora: z.boolean().optional(),
    modules_to_save: z.array(z.string()).nullish(),
    bias: z.string().optional(),
    base_model_name_or_path: z.string().nullish(),
    revision: z.string().nullish(),
    rank_pattern: z.record(z.string(), z.number()).optional(),
    alpha_pattern: z.record(z.string(), z.number()).optional(),
  })
  .passthrough();

export type AdapterConfig = z.infer<typeof adapterConfigSchema>;

export async function readAdapterConfig(dir: string): Promise<AdapterConfig> {
  const path = join(dir, "adapter_config.json");
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    if (errnoCode(error) === "ENOENT") throw new UserError(`${dir} is not a PEFT adapter: it has no adapter_config.json.`);
    throw new UserError(`${path} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  const parsed = adapterConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new UserError(`${path} is not a LoRA adapter config:\n${parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`).join("\n")}`);
  }
  const config = parsed.data;
  const refuse = (field: string, why: string) => new UserError(`${path}: ${field} ${why}; finetune loads plain LoRA adapters only.`);
  if (config.peft_type !== undefined && config.peft_type !== "LORA") throw refuse("peft_type", `is "${config.peft_type}"`);
  if (config.use_dora) throw refuse("use_dora", "is true (DoRA)");
  if (config.modules_to_save && config.modules_to_save.length > 0) throw refuse("modules_to_save", `lists ${config.modules_to_save.join(", ")} (full modules, not LoRA)`);
  if (config.bias && config.bias !== "none") throw refuse("bias", `is "${config.bias}"`);
  if ((config.rank_pattern && Object.keys(config.rank_pattern).length) || (config.alpha_pattern && Object.keys(config.alpha_pattern).length)) {
    throw refuse("rank_pattern/alpha_pattern", "is set (per-module ranks)");
  }
  return config;
}

/**
 * Loads a PEFT LoRA adapter (ours or one saved by Python PEFT) onto a model: frozen A/B tensors on the named
 * projections. Shapes are checked against the base model; a mismatch names the tensor and both shapes.
 */
export async function loadPeftAdapter(tf: Tf, model: CausalLM, dir: string): Promise<LoraSet & { config: AdapterConfig }> {
  const config = await readAdapterConfig(dir);
  const file = join(dir, "adapter_model.safetensors");
  const pairs = await readPeftPairs(dir);
  const scale = loraScale(config.lora_alpha, config.r, config.use_rslora ?? false);
  const available = [...new Set([...model.projections.keys()].map(shortName))];
  const adapters: LoraSet["adapters"] = [];
  try {
    for (const pair of pairs.values()) {
      const projection = model.projections.get(pair.module);
      if (!projection) {
        throw new UserError(`${file}: target module ${pair.module} does not exist in this ${model.config.modelType} model (modules here: ${available.join(", ")}); the adapter was trained for another architecture.`);
      }
      const check = (name: string, shape: number[], expected: number[]) => {
        if (shape.join() !== expected.join()) {
          throw new UserError(
            `${file}: ${name} has shape [${shape.join(", ")}], but the base model needs [${expected.join(", ")}]; this adapter was trained for a different base model` +
              (config.base_model_name_or_path ? ` (${config.base_model_name_or_path})` : "") + ".",
          );
        }
      };
      check(pair.aName, pair.aShape, [config.r, projection.inFeatures]);
      check(pair.bName, pair.bShape, [projection.outFeatures, config.r]);
      // PEFT stores lora_A [r, in] and lora_B [out, r]; the model multiplies x·Aᵀ·Bᵀ, so keep the transposes.
      const a = variableFrom(tf, tf.tidy(() => tf.transpose(tf.tensor2d(pair.a, [config.r, projection.inFeatures]))), false, `${pair.module}.lora_A.loaded`);
      const b = variableFrom(tf, tf.tidy(() => tf.transpose(tf.tensor2d(pair.b, [projection.outFeatures, config.r]))), false, `${pair.module}.lora_B.loaded`);
      const adapter = new LoraAdapter(tf, a, b, scale, 0, () => 0);
      projection.adapter = adapter;
      adapters.push({ name: pair.module, projection, adapter });
    }
  } catch (error) {
    detachAdapters(adapters);
    throw error;
  }
  const layers = [...new Set(adapters.map((a) => layerOf(a.name)))].sort((x, y) => x - y);
  const spec = {
    r: config.r,
    alpha: config.lora_alpha,
    dropout: config.lora_dropout ?? 0,
    targetModules: [...new Set(adapters.map((a) => shortName(a.name)))].sort(),
    layers: layers.length === model.config.numLayers ? ("all" as const) : layers,
    rslora: config.use_rslora ?? false,
    seed: 0,
  };
  return { ...loraSet(spec, adapters), config };
}
