import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { errnoCode, UserError } from "../errors.js";
import { sha256File } from "../io/hash.js";
import { openSafetensors } from "../io/safetensors-read.js";
import { CHECKPOINT_FILES, checkpointDir, checkpointStateSchema, type DataHash, type TrainState } from "./checkpoint.js";

export type Inspection = { ok: true; state: TrainState; data: DataHash[] } | { ok: false; problem: string };

export interface ResumePoint {
  step: number;
  dir: string;
  state: TrainState;
  /** The data files the run had trained on up to this checkpoint. */
  data: DataHash[];
}

/**
 * The newest intact checkpoint of a run, or null when there is none at all. A damaged one (a file that no longer
 * matches its recorded hash, a state claiming another step, unreadable tensors) is skipped for the one before, and
 * `onNotice` says so; a run whose checkpoints are all damaged is an error listing why. A file that cannot be read
 * for another reason (permissions) is an error too: falling back past it would silently lose work.
 */
export async function findResumePoint(output: string, onNotice: (message: string) => void): Promise<ResumePoint | null> {
  const root = join(output, "checkpoints");
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return null;
    throw new UserError(`cannot read ${root} (${errnoCode(error) ?? String(error)}); make it readable and resume again.`);
  }
  const steps = entries.flatMap((entry) => {
    const match = /^step-(\d+)$/.exec(entry);
    return match ? [Number(match[1])] : [];
  });
  steps.sort((a, b) => b - a);
  const damaged: string[] = [];
  for (const step of steps) {
    const dir = checkpointDir(output, step);
    const inspection = await inspectCheckpoint(dir, step);
    if (inspection.ok) {
      if (damaged.length > 0) onNotice(`${damaged.join("; ")}. Resuming from the newest intact checkpoint, ${dir}; the damaged one${damaged.length === 1 ? " is" : "s are"} left in place and will be rewritten as training passes ${damaged.length === 1 ? "its step" : "their steps"}.`);
      return { step, dir, state: inspection.state, data: inspection.data };
    }
    damaged.push(`checkpoint ${dir} is damaged (${inspection.problem})`);
  }
  if (damaged.length === 0) return null;
  throw new UserError(`no intact checkpoint to resume from in ${root}:\n  ${damaged.join("\n  ")}\nRestore the files, or start the run again with --overwrite (or a new --output).`);
}

/** Checks one checkpoint folder: state.json valid and for this step, every file there with its recorded hash, tensors readable and finite. */
export async function inspectCheckpoint(dir: string, step: number): Promise<Inspection> {
  const statePath = join(dir, "state.json");
  const text = await readOrProblem(statePath);
  if (typeof text !== "string") return text;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, problem: `state.json is not valid JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
  const parsed = checkpointStateSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    return { ok: false, problem: `state.json is not a checkpoint state of this finetune version (${issues.join("; ")})` };
  }
  const { files, data, ...state } = parsed.data;
  if (state.step !== step) return { ok: false, problem: `state.json says step ${state.step}, but the folder is step-${step}` };
  for (const file of CHECKPOINT_FILES) {
    const path = join(dir, file);
    let actual: string;
    try {
      actual = await sha256File(path);
    } catch (error) {
      const code = errnoCode(error);
      if (code === "ENOENT") return { ok: false, problem: `${file} is missing` };
      throw new UserError(`cannot read ${path} (${code ?? String(error)}); make it readable (or move that checkpoint folder away) and resume again.`);
    }
    if (actual !== files[file]) return { ok: false, problem: `${file} does not match the sha256 recorded in state.json` };
  }
  const tensors = await finiteTensors(join(dir, "trainer.safetensors"), state.optimizerSteps);
  return tensors === null ? { ok: true, state, data } : { ok: false, problem: tensors };
}

/** Null when every tensor of trainer.safetensors parses and is finite and each parameter has its moments; else why not. */
async function finiteTensors(path: string, optimizerSteps: number): Promise<string | null> {
  let reader;
  try {
    reader = await openSafetensors(path);
  } catch (error) {
    return `trainer.safetensors cannot be parsed: ${error instanceof Error ? error.message : String(error)}`;
  }
  try {
    const names = [...reader.tensors.keys()];
    const params = names.filter((n) => n.startsWith("param."));
    if (params.length === 0) return "trainer.safetensors holds no LoRA tensors";
    if (optimizerSteps > 0) {
      const missing = params.flatMap((p) => ["adam_m", "adam_v"].map((m) => `${m}.${p.slice("param.".length)}`)).filter((n) => !reader.tensors.has(n));
      if (missing.length > 0) return `trainer.safetensors lacks the AdamW moments ${missing.slice(0, 3).join(", ")}${missing.length > 3 ? ", …" : ""}`;
    }
    for (const name of names) {
      const values = await reader.readFloat32(name);
      if (!values.every(Number.isFinite)) return `trainer.safetensors: ${name} holds NaN or Infinity`;
    }
    return null;
  } catch (error) {
    return `trainer.safetensors cannot be read: ${error instanceof Error ? error.message : String(error)}`;
  } finally {
    await reader.close();
  }
}

async function readOrProblem(path: string): Promise<string | { ok: false; problem: string }> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    const code = errnoCode(error);
    if (code === "ENOENT") return { ok: false, problem: "state.json is missing" };
    throw new UserError(`cannot read ${path} (${code ?? String(error)}); make it readable (or move that checkpoint folder away) and resume again.`);
  }
}
