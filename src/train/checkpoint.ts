import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { UserError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { sha256File } from "../io/hash.js";
import { replaceDirAtomic } from "../io/replace-dir.js";
import { openSafetensors } from "../io/safetensors-read.js";
import { writeSafetensors, type TensorToWrite } from "../io/safetensors-write.js";
import type { LoraSet } from "../lora/attach.js";
import { savePeftAdapter, type BaseModelInfo } from "../lora/peft-save.js";
import type { ModelConfig } from "../model/config.js";
import type { Tf } from "../model/types.js";
import type { AdamW } from "./optimizer.js";

/** The files of a checkpoint besides state.json; state.json records the sha256 of each. */
export const CHECKPOINT_FILES = ["adapter/adapter_config.json", "adapter/adapter_model.safetensors", "trainer.safetensors"] as const;

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
  /** Set in the final checkpoint of a run: why it ended. Null while the run is under way. */
  stopReason: z.enum(["max_steps", "early_stopping"]).nullable().default(null),
});
export type TrainState = z.infer<typeof trainStateSchema>;

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

/** A data file the run trains on: its path as the lock records it (relative to the run, or hub-pinned) and hash. */
export const dataHashSchema = z.object({ path: z.string(), sha256 });
export type DataHash = z.infer<typeof dataHashSchema>;

/**
 * state.json: the train state plus the sha256 of every other file, so resume can tell a damaged checkpoint, and of
 * the data files trained on, so resume can tell data that changed under the run.
 */
export const checkpointStateSchema = trainStateSchema.extend({
  files: z.record(z.enum(CHECKPOINT_FILES), sha256),
  data: z.array(dataHashSchema),
});
export type CheckpointState = z.infer<typeof checkpointStateSchema>;

export const checkpointDir = (output: string, step: number): string => join(output, "checkpoints", `step-${step}`);

/**
 * Writes checkpoints/step-N atomically (a temp folder renamed into place): the PEFT adapter, the exact
 * trainable tensors and AdamW moments (trainer.safetensors), and state.json with the hash of each file.
 */
export async function saveCheckpoint(params: { tf: Tf; output: string; lora: LoraSet; optimizer: AdamW; state: TrainState; data: DataHash[]; config: ModelConfig; base: BaseModelInfo }): Promise<string> {
  const { tf, lora, optimizer, state } = params;
  const final = checkpointDir(params.output, state.step);
  await mkdir(join(params.output, "checkpoints"), { recursive: true });
  await replaceDirAtomic(final, async (temp) => {
    await savePeftAdapter(tf, join(temp, "adapter"), lora, params.config, params.base);
    const tensors: TensorToWrite[] = [];
    const add = async (name: string, t: { shape: number[]; data(): Promise<unknown> }) => tensors.push({ name, dtype: "F32", shape: t.shape, data: (await t.data()) as Float32Array });
    for (const variable of lora.variables()) {
      await add(`param.${variable.name}`, variable);
      const m = optimizer.m.get(variable.name);
      const v = optimizer.v.get(variable.name);
      if (m) await add(`adam_m.${variable.name}`, m);
      if (v) await add(`adam_v.${variable.name}`, v);
    }
    await writeSafetensors(join(temp, "trainer.safetensors"), tensors, { format: "finetune-trainer", step: String(state.step) });
    // Hashed from the files as written (after the fsync in the atomic write), so the hash is of what is on disk.
    const files: Record<string, string> = {};
    for (const file of CHECKPOINT_FILES) files[file] = await sha256File(join(temp, file));
    await writeFileAtomic(join(temp, "state.json"), `${JSON.stringify({ ...state, files, data: params.data }, null, 2)}\n`);
  });
  return final;
}

/**
 * Restores trainable tensors and AdamW moments from a checkpoint that `inspectCheckpoint` found intact.
 * Every LoRA tensor must be there with its shape, and both moments once the optimizer has stepped: a partial
 * restore would continue a different run.
 */
export async function loadCheckpoint(params: { tf: Tf; dir: string; state: TrainState; lora: LoraSet; optimizer: AdamW }): Promise<TrainState> {
  const { tf, lora, optimizer, dir, state } = params;
  const path = join(dir, "trainer.safetensors");
  const reader = await openSafetensors(path);
  try {
    const variables = lora.variables();
    const stored = [...reader.tensors.keys()].filter((name) => name.startsWith("param.")).length;
    if (stored !== variables.length) {
      throw new UserError(`${path} holds ${stored} LoRA tensors but this recipe's LoRA has ${variables.length}; resume with the recipe the run started with, or start a new run with --output.`);
    }
    for (const variable of variables) {
      const name = `param.${variable.name}`;
      const entry = reader.tensors.get(name);
      if (!entry || entry.shape.join() !== variable.shape.join()) {
        throw new UserError(`checkpoint ${dir} does not match this recipe's LoRA layout (${name}); resume with the recipe the run started with, or start a new run with --output.`);
      }
      const value = tf.tensor(await reader.readFloat32(name), variable.shape);
      variable.assign(value);
      value.dispose();
      for (const [prefix, store] of [["adam_m", optimizer.m], ["adam_v", optimizer.v]] as const) {
        const key = `${prefix}.${variable.name}`;
        if (!reader.tensors.has(key)) {
          if (state.optimizerSteps === 0) continue;
          throw new UserError(`${path} has no ${key} although the optimizer had taken ${state.optimizerSteps} steps; without it the run would not continue as it was. Resume from an earlier checkpoint (move this one away) or start a new run.`);
        }
        store.get(variable.name)?.dispose();
        store.set(variable.name, tf.tensor(await reader.readFloat32(key), variable.shape));
      }
    }
  } finally {
    await reader.close();
  }
  optimizer.t = state.optimizerSteps;
  return state;
}
