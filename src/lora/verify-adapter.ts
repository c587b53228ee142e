import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { errnoCode, UserError } from "../errors.js";
import { sha256File } from "../io/hash.js";
import { openSafetensors } from "../io/safetensors-read.js";
import { checkpointStateSchema } from "../train/checkpoint.js";
import type { RunLock } from "../train/lock.js";

export const ADAPTER_WEIGHTS = "adapter_model.safetensors";

/**
 * Where the expected hash of an adapter comes from: a finished run's run.lock.json, or a checkpoint's state.json
 * (which records the hash of each file it wrote).
 */
export type AdapterOrigin = { kind: "run"; lock: RunLock; lockPath: string } | { kind: "checkpoint"; dir: string } | { kind: "folder" };

/**
 * Checks an adapter before anything is exported from it: its weights file hashes to what the run recorded (a plain
 * PEFT adapter folder, trained elsewhere, has no record), parses as safetensors, and holds finite LoRA pairs of the
 * configured rank. Returns the sha256.
 */
export async function verifyAdapter(params: { adapterDir: string; origin: AdapterOrigin; r: number }): Promise<string> {
  const path = join(params.adapterDir, ADAPTER_WEIGHTS);
  let actual: string;
  try {
    actual = await sha256File(path);
  } catch (error) {
    throw new UserError(`cannot read ${path} (${errnoCode(error) ?? String(error)}); export needs the adapter the run wrote.`);
  }
  const { expected, recordedIn } = params.origin.kind === "folder" ? { expected: actual, recordedIn: "" } : await expectedHash(params.origin);
  if (actual !== expected) {
    throw new UserError(
      `${path} does not match the sha256 recorded in ${recordedIn} (${actual.slice(0, 12)}…, recorded ${expected.slice(0, 12)}…): it was changed or damaged after training, so nothing was exported. ` +
        `Export an intact checkpoint (checkpoints/step-N) or train again.`,
    );
  }
  const reader = await openSafetensors(path).catch((error: unknown) => {
    throw new UserError(`${path} matches its recorded hash but is not a readable safetensors file (${error instanceof Error ? error.message : String(error)}); train again.`);
  });
  try {
    const names = [...reader.tensors.keys()];
    const pairs = names.filter((n) => n.endsWith(".lora_A.weight"));
    if (pairs.length === 0) throw new UserError(`${path} holds no LoRA tensors (no *.lora_A.weight); it is not an adapter written by finetune.`);
    for (const a of pairs) {
      const b = a.replace(/\.lora_A\.weight$/, ".lora_B.weight");
      const shapeA = reader.tensors.get(a)?.shape ?? [];
      const shapeB = reader.tensors.get(b)?.shape;
      if (!shapeB || shapeA[0] !== params.r || shapeB[1] !== params.r) {
        throw new UserError(`${path}: ${a} and its lora_B do not form a rank-${params.r} pair as adapter_config.json says; the adapter is inconsistent, train again.`);
      }
    }
    for (const name of names) {
      if (!(await reader.readFloat32(name)).every(Number.isFinite)) throw new UserError(`${path}: ${name} holds NaN or Infinity; the training diverged, so there is nothing useful to export.`);
    }
  } finally {
    await reader.close();
  }
  return actual;
}

async function expectedHash(origin: Exclude<AdapterOrigin, { kind: "folder" }>): Promise<{ expected: string; recordedIn: string }> {
  if (origin.kind === "run") return { expected: origin.lock.adapter_sha256, recordedIn: origin.lockPath };
  const statePath = join(origin.dir, "state.json");
  let json: unknown;
  try {
    json = JSON.parse(await readFile(statePath, "utf8"));
  } catch (error) {
    throw new UserError(`cannot read ${statePath} (${errnoCode(error) ?? (error instanceof Error ? error.message : String(error))}); a checkpoint without it cannot be checked, so nothing was exported.`);
  }
  const parsed = checkpointStateSchema.safeParse(json);
  if (!parsed.success) throw new UserError(`${statePath} is not a checkpoint state of this finetune version (it records no file hashes); nothing was exported. Export the finished run or a newer checkpoint.`);
  return { expected: parsed.data.files[`adapter/${ADAPTER_WEIGHTS}`], recordedIn: statePath };
}
