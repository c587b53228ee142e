import { mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { UserError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { replaceDirAtomic } from "../io/replace-dir.js";
import { openSafetensors } from "../io/safetensors-read.js";
import { writeSafetensors, type TensorToWrite } from "../io/safetensors-write.js";
import type { LoraSet } from "../lora/attach.js";
import { savePeftAdapter, type BaseModelInfo } from "../lora/peft-save.js";
import type { ModelConfig } from "../model/config.js";
import type { Tf } from "../model/types.js";
import type { AdamW } from "./optimizer.js";

/** Everything besides tensors that a resumed run needs to continue exactly where it stopped. */
export const trainStateSchema = z.object({
  step: z.number().int().nonnegative(),
  totalSteps: z.number().int().positive(),
  /** Data cursor: the epoch and the next index into that epoch's seeded order. */
  epoch: z.number().int().nonnegative(),
  index: z.number().int().nonnegative(),
  optimizerSteps: z.number().int().nonnegative(),
  bestValLoss: z.number().nullable(),
  evalsWithoutImprovement: z.number().int().nonnegative(),
  elapsed: z.number().nonnegative(),
});
export type TrainState = z.infer<typeof trainStateSchema>;

export const checkpointDir = (output: string, step: number): string => join(output, "checkpoints", `step-${step}`);

/**
 * Writes checkpoints/step-N atomically (a temp folder renamed into place): the PEFT adapter, the exact
 * trainable tensors and AdamW moments (trainer.safetensors), and state.json.
 */
export async function saveCheckpoint(params: { tf: Tf; output: string; lora: LoraSet; optimizer: AdamW; state: TrainState; config: ModelConfig; base: BaseModelInfo }): Promise<string> {
  const { tf, lora, optimizer, state } = params;
  const final = checkpointDir(params.output, state.step);
  await mkdir(join(params.output, "checkpoints"), { recursive: true });
  await replaceDirAtomic(final, async (temp) => {
    await savePeftAdapter(tf, join(temp, "adapter"), lora, params.config, params.base);
    const tensors: TensorToWrite[] = [];
    const add = (name: string, t: { shape: number[]; dataSync(): unknown }) => tensors.push({ name, dtype: "F32", shape: t.shape, data: t.dataSync() as Float32Array });
    for (const variable of lora.variables()) {
      add(`param.${variable.name}`, variable);
      const m = optimizer.m.get(variable.name);
      const v = optimizer.v.get(variable.name);
      if (m) add(`adam_m.${variable.name}`, m);
      if (v) add(`adam_v.${variable.name}`, v);
    }
    await writeSafetensors(join(temp, "trainer.safetensors"), tensors, { format: "finetune-trainer" });
    await writeFileAtomic(join(temp, "state.json"), `${JSON.stringify(state, null, 2)}\n`);
  });
  return final;
}

/** The newest complete checkpoint's step, or null. Folders without state.json (interrupted writes) are ignored. */
export async function newestCheckpoint(output: string): Promise<number | null> {
  const entries = await readdir(join(output, "checkpoints")).catch(() => []);
  const steps: number[] = [];
  for (const entry of entries) {
    const match = /^step-(\d+)$/.exec(entry);
    if (!match) continue;
    // Only a checkpoint whose state.json parses counts; a damaged one falls back to the one before.
    const complete = await readState(join(output, "checkpoints", entry, "state.json")).then((s) => s !== null, () => false);
    if (complete) steps.push(Number(match[1]));
  }
  return steps.length ? Math.max(...steps) : null;
}

/** Restores trainable tensors and optimizer moments from a checkpoint; returns its state. */
export async function loadCheckpoint(params: { tf: Tf; output: string; step: number; lora: LoraSet; optimizer: AdamW }): Promise<TrainState> {
  const { tf, lora, optimizer } = params;
  const dir = checkpointDir(params.output, params.step);
  const state = await readState(join(dir, "state.json"));
  if (!state) throw new UserError(`${join(dir, "state.json")} is not a finetune checkpoint state; start again with --overwrite.`);
  const reader = await openSafetensors(join(dir, "trainer.safetensors"));
  try {
    for (const variable of lora.variables()) {
      const name = `param.${variable.name}`;
      const entry = reader.tensors.get(name);
      if (!entry || entry.shape.join() !== variable.shape.join()) {
        throw new UserError(`checkpoint ${dir} does not match this recipe's LoRA layout (${name}); resume with the recipe the run started with, or use --overwrite.`);
      }
      const value = tf.tensor(await reader.readFloat32(name), variable.shape);
      variable.assign(value);
      value.dispose();
      for (const [prefix, store] of [["adam_m", optimizer.m], ["adam_v", optimizer.v]] as const) {
        const key = `${prefix}.${variable.name}`;
        if (reader.tensors.has(key)) {
          store.get(variable.name)?.dispose();
          store.set(variable.name, tf.tensor(await reader.readFloat32(key), variable.shape));
        }
      }
    }
  } finally {
    await reader.close();
  }
  optimizer.t = state.optimizerSteps;
  return state;
}

async function readState(path: string): Promise<TrainState | null> {
  try {
    const parsed = trainStateSchema.safeParse(JSON.parse(await readFile(path, "utf8")));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
