import { stat } from "node:fs/promises";
import { join } from "node:path";
import { UserError } from "../errors.js";
import { openSafetensors } from "../io/safetensors-read.js";

/** One adapted module's tensors as PEFT stores them: lora_A [r, in], lora_B [out, r]. */
export interface PeftPair {
  module: string;
  aName: string;
  bName: string;
  aShape: number[];
  bShape: number[];
  a: Float32Array;
  b: Float32Array;
}

const PAIR_TENSOR = /^base_model\.model\.(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$/;

/**
 * Reads adapter_model.safetensors into A/B pairs by module (PEFT's names, with or without an adapter-name
 * segment). Anything that is not a LoRA A/B weight, or an A without its B, is refused.
 */
export async function readPeftPairs(dir: string): Promise<Map<string, PeftPair>> {
  const file = join(dir, "adapter_model.safetensors");
  if (!(await stat(file).then((s) => s.isFile(), () => false))) {
    throw new UserError(`${dir} has no adapter_model.safetensors (pickle adapter_model.bin files are never loaded).`);
  }
  const reader = await openSafetensors(file);
  try {
    const names = [...reader.tensors.keys()];
    const stray = names.filter((n) => !PAIR_TENSOR.test(n));
    if (stray.length > 0) throw new UserError(`${file} has tensors that are not LoRA A/B weights (${stray.slice(0, 3).join(", ")}); finetune loads plain LoRA adapters only.`);
    const byModule = new Map<string, { A?: string; B?: string }>();
    for (const name of names) {
      const [, module = "", ab = "A"] = PAIR_TENSOR.exec(name) ?? [];
      byModule.set(module, { ...byModule.get(module), [ab]: name });
    }
    const pairs = new Map<string, PeftPair>();
    for (const [module, { A, B }] of byModule) {
      if (!A || !B) throw new UserError(`${file}: ${module} has lora_${A ? "A" : "B"} but no lora_${A ? "B" : "A"}.`);
      pairs.set(module, {
        module,
        aName: A,
        bName: B,
        aShape: reader.tensors.get(A)?.shape ?? [],
        bShape: reader.tensors.get(B)?.shape ?? [],
        a: await reader.readFloat32(A),
        b: await reader.readFloat32(B),
      });
    }
    return pairs;
  } finally {
    await reader.close();
  }
}
