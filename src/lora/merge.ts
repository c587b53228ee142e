import { copyFile, mkdir, readdir } from "node:fs/promises";
import { basename, join } from "node:path";
import { UserError } from "../errors.js";
import { openCheckpoint } from "../io/checkpoint.js";
import { openSafetensors } from "../io/safetensors-read.js";
import { writeSafetensors, type TensorToWrite } from "../io/safetensors-write.js";
import { loraScale } from "./adapter.js";
import { readAdapterConfig } from "./peft-load.js";
import { readPeftPairs } from "./peft-tensors.js";

/** Files a merged model folder carries over from the base unchanged. */
const COPIED = /^(config\.json|generation_config\.json|tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|chat_template\.jinja|vocab\.json|merges\.txt|tokenizer\.model|model\.safetensors\.index\.json)$/;

interface LoraPair {
  a: Float32Array;
  b: Float32Array;
  r: number;
  inFeatures: number;
  outFeatures: number;
}

/**
 * Folds an adapter into the base weights, W ← W + scale·B·A (GPT-2's Conv1D stores Wᵀ, so W ← W + (scale·B·A)ᵀ),
 * shard by shard with the base's names, dtypes and sharding, and copies config, tokenizer and chat template.
 */
export async function mergeAdapter(params: { baseDir: string; adapterDir: string; out: string }): Promise<{ merged: number; files: string[] }> {
  const merge = await openLoraMerge(params.adapterDir);
  const base = await openCheckpoint(params.baseDir);
  const shardFiles = base.files;
  await base.close();
  await mkdir(params.out, { recursive: true });
  for (const file of shardFiles) {
    const reader = await openSafetensors(file);
    try {
      const tensors: TensorToWrite[] = [];
      for (const [name, entry] of reader.tensors) {
        if (entry.dtype !== "F32" && entry.dtype !== "F16" && entry.dtype !== "BF16") {
          throw new UserError(`${file}: tensor ${name} is ${entry.dtype}; merging supports F32/F16/BF16 checkpoints.`);
        }
        const data = await reader.readFloat32(name);
        merge.apply(name, entry.shape, data);
        tensors.push({ name, dtype: entry.dtype, shape: entry.shape, data });
      }
      await writeSafetensors(join(params.out, basename(file)), tensors, reader.metadata);
    } finally {
      await reader.close();
    }
  }
  merge.checkAllUsed(params.baseDir);
  for (const entry of await readdir(params.baseDir)) {
    if (COPIED.test(entry)) await copyFile(join(params.baseDir, entry), join(params.out, entry));
  }
  return { merged: merge.used(), files: await readdir(params.out) };
}

/** An adapter ready to fold into base tensors one at a time, as they stream past. */
export interface LoraMerge {
  /** Adds scale·B·A to `data` in place when `name` is an adapted module's weight (a no-op otherwise). */
  apply(name: string, shape: readonly number[], data: Float32Array): void;
  /** How many adapted modules have been merged so far. */
  used(): number;
  /** A UserError when some adapted module never met its base weight (the adapter is for another model). */
  checkAllUsed(baseDir: string): void;
}

export async function openLoraMerge(adapterDir: string): Promise<LoraMerge> {
  const config = await readAdapterConfig(adapterDir);
  const scale = loraScale(config.lora_alpha, config.r, config.use_rslora ?? false);
  const pairs = await readPairs(adapterDir, config.r);
  const used = new Set<string>();
  return {
    apply(name, shape, data) {
      const module = moduleFor(name, pairs);
      if (!module) return;
      applyDelta(data, shape, pairs.get(module) as LoraPair, scale, config.fan_in_fan_out ?? false, name);
      used.add(module);
    },
    used: () => used.size,
    checkAllUsed(baseDir) {
      const unused = [...pairs.keys()].filter((m) => !used.has(m));
      if (unused.length > 0) throw new UserError(`the base model in ${baseDir} has no weight for ${unused.slice(0, 3).join(", ")}; is this adapter for another model?`);
    },
  };
}

async function readPairs(adapterDir: string, r: number): Promise<Map<string, LoraPair>> {
  const pairs = new Map<string, LoraPair>();
  for (const pair of (await readPeftPairs(adapterDir)).values()) {
    if (pair.aShape[0] !== r || pair.bShape[1] !== r) {
      throw new UserError(`${adapterDir}: ${pair.module} has lora_A [${pair.aShape.join(", ")}] and lora_B [${pair.bShape.join(", ")}], which do not match r=${r} in adapter_config.json.`);
    }
    pairs.set(pair.module, { a: pair.a, b: pair.b, r, inFeatures: pair.aShape[1] ?? 0, outFeatures: pair.bShape[0] ?? 0 });
  }
  return pairs;
}

/** The adapted module a base tensor belongs to (GPT-2 files may lack the `transformer.` prefix). */
function moduleFor(tensor: string, pairs: Map<string, LoraPair>): string | null {
  if (!tensor.endsWith(".weight")) return null;
  const module = tensor.slice(0, -".weight".length);
  if (pairs.has(module)) return module;
  if (pairs.has(`transformer.${module}`)) return `transformer.${module}`;
  return null;
}

function applyDelta(weight: Float32Array, shape: readonly number[], pair: LoraPair, scale: number, fanInFanOut: boolean, name: string): void {
  const { a, b, r, inFeatures: I, outFeatures: O } = pair;
  const expected = fanInFanOut ? [I, O] : [O, I];
  if (shape.join() !== expected.join()) {
    throw new UserError(`${name} has shape [${shape.join(", ")}] but the adapter needs [${expected.join(", ")}]; this adapter was trained for a different base model.`);
  }
  for (let o = 0; o < O; o += 1) {
    for (let i = 0; i < I; i += 1) {
      let sum = 0;
      for (let k = 0; k < r; k += 1) sum += (b[o * r + k] ?? 0) * (a[k * I + i] ?? 0);
      const index = fanInFanOut ? i * O + o : o * I + i;
      weight[index] = (weight[index] ?? 0) + scale * sum;
    }
  }
}
