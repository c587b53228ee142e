import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { parseYamlText } from "../recipe/load.js";
import { errnoCode, UserError } from "../errors.js";
import { modelSchema, type Recipe } from "../recipe/schema.js";
import type { DataHash } from "./checkpoint.js";
import type { ResumePoint } from "./checkpoint-scan.js";
import { formatDifference, recipeDifferences } from "./recipe-diff.js";
import { learningRate, warmupSteps } from "./schedule.js";

/** The recipe keys that set the run's length: the only ones a resume may change, and only upwards. */
const LENGTH_KEYS = new Set(["train.max_steps", "train.epochs"]);

export interface ResumeCheck {
  /** recipe.resolved.yaml of the run and its text (null when it is missing). */
  savedPath: string;
  savedText: string | null;
  /** The recipe this invocation resolved, and its text as it would be written to recipe.resolved.yaml. */
  recipe: Recipe;
  resolvedYaml: string;
  point: ResumePoint;
  /** The data files this invocation read, as the checkpoint records them. */
  data: DataHash[];
  /** Total steps this invocation plans. */
  totalSteps: number;
  /** Whether the run wrote its final adapter and run.lock.json. */
  completed: boolean;
  runDir: string;
}

/** `checkResume` for a run folder: reads its recipe.resolved.yaml and whether it finished (run.lock.json). */
export async function checkRunResume(params: Pick<ResumeCheck, "runDir" | "point" | "recipe" | "resolvedYaml" | "data" | "totalSteps">): Promise<{ notice: string | null }> {
  const savedPath = join(params.runDir, "recipe.resolved.yaml");
  const completed = await stat(join(params.runDir, "run.lock.json")).then(() => true, () => false);
  return checkResume({ ...params, savedPath, savedText: await readRecipeResolved(savedPath), completed });
}

/** A run's recipe.resolved.yaml, or null when it does not exist; unreadable is an error naming the file. */
async function readRecipeResolved(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    const code = errnoCode(error);
    if (code === "ENOENT") return null;
    throw new UserError(`cannot read ${path} (${code ?? String(error)}); make it readable and resume again.`);
  }
}

/**
 * Decides whether a resume continues the run the checkpoint belongs to. Same recipe: continue. Only a longer
 * run (train.max_steps or train.epochs raised): continue, and the returned notice says how the schedule goes on.
 * Any other change, a missing or garbled recipe.resolved.yaml, or a finished run: a UserError saying which.
 *
 * Extending keeps the steps already done byte for byte (they are in the checkpoint); from the next step on the
 * learning rate follows the schedule planned for the new total, as Hugging Face Trainer does when resumed with a
 * larger max_steps. So an extended run differs from one planned at the new length from the start.
 */
export function checkResume(check: ResumeCheck): { notice: string | null } {
  const { point, totalSteps } = check;
  if (check.savedText === null) {
    throw new UserError(
      `--resume: ${check.savedPath} is missing; it records the recipe the run started with, and without it resume cannot check that it continues the same run. ` +
        `Restore it, or start a new run with --output (or --overwrite).`,
    );
  }
  let saved: unknown;
  try {
    // The recipe loader's own bounded parser: aliases capped, every failure a message naming the file.
    saved = parseYamlText(check.savedText, check.savedPath);
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    throw new UserError(`--resume: ${error.message.replace(/\.$/, "")}; it records the recipe this run started with — restore it, or start a new run with --output.`);
  }
  if (!isRecord(saved)) throw new UserError(`--resume: ${check.savedPath} does not hold a recipe (a YAML mapping); restore it, or start a new run with --output.`);
  // The output is this run's folder however it was typed.
  const now: unknown = parseYamlText(check.resolvedYaml, "the resolved recipe");
  const current = isRecord(now) ? now : {};
  const differences = recipeDifferences({ ...saved, model: sameForm(saved.model), output: null }, { ...current, model: sameForm(current.model), output: null });
  const other = differences.filter((d) => !LENGTH_KEYS.has(d.path));
  const lengthChanged = differences.length > other.length;
  const planned = point.state.totalSteps;

  if (other.length > 0 || (lengthChanged && totalSteps < planned)) {
    const shown = lengthChanged && other.length === 0 ? differences : other;
    throw new UserError(
      `--resume: ${shown.length === 1 ? "this value differs" : `these ${shown.length} values differ`} from the recipe the run started with (${check.savedPath}):\n` +
        shown.map((d) => `  ${formatDifference(d)}`).join("\n") +
        `\nA resume continues the same run; only a longer run (a larger train.max_steps / --max-steps, or more train.epochs) may change. ` +
        `Resume without these changes, or start a new run with them using --output <new folder>.`,
    );
  }

  const dataChanges = dataDifferences(point.data, check.data);
  if (dataChanges.length > 0) {
    throw new UserError(
      `--resume: the training data is not what the run trained on up to step ${point.step} (as ${point.dir}/state.json records it):\n` +
        dataChanges.map((line) => `  ${line}`).join("\n") +
        `\nA resume continues the same run on the same data. Restore the files, or start a new run on the new data with --output <new folder>.`,
    );
  }

  if (point.state.stopReason === "early_stopping") {
    throw new UserError(
      `--resume: the run in ${check.runDir} already finished: early stopping ended it at step ${point.step} (${point.dir} is its final checkpoint, adapter/ its result). ` +
        `Nothing to resume; to train further, start a new run with --output.`,
    );
  }
  if (point.step >= totalSteps) {
    if (!check.completed) return { notice: null }; // stopped after its last checkpoint: only the adapter and lock are left to write
    throw new UserError(
      `--resume: the run in ${check.runDir} already finished all ${point.step} steps (${point.dir} is its final checkpoint, adapter/ its result); nothing to resume. ` +
        `To train it longer, resume with --max-steps above ${point.step} (or more train.epochs).`,
    );
  }
  if (!lengthChanged || totalSteps === planned) return { notice: null };
  return { notice: extensionNotice(check.recipe, point.step, planned, totalSteps) };
}

/** Says how an extended run's learning rate continues, with the numbers. */
function extensionNotice(recipe: Recipe, done: number, planned: number, totalSteps: number): string {
  const t = recipe.train;
  const lrAt = (total: number) => learningRate({ step: done + 1, total, warmup: warmupSteps({ total, warmupSteps: t.warmup_steps, warmupRatio: t.warmup_ratio }), peak: t.lr, schedule: t.schedule });
  const schedule = t.schedule === "constant" ? "" : ` From step ${done + 1} the ${t.schedule} schedule is re-planned for ${totalSteps} steps: lr ${lrAt(totalSteps).toExponential(3)} at step ${done + 1} (the ${planned}-step plan would have given ${lrAt(planned).toExponential(3)}), so the result differs from a run planned for ${totalSteps} steps from the start.`;
  return `extending the run from ${planned} to ${totalSteps} steps: steps 1–${done} stay exactly as trained.${schedule}`;
}

/**
 * A model value in the one parsed form {name, quantize}: a run started before `model:` took a mapping recorded
 * `model: org/name`, which is the same run as `{name: org/name, quantize: none}`. An invalid value stays as it is.
 */
function sameForm(model: unknown): unknown {
  const parsed = modelSchema.safeParse(model);
  return parsed.success ? parsed.data : model;
}

/** What changed between the data files a checkpoint recorded and those read now. */
function dataDifferences(before: DataHash[], now: DataHash[]): string[] {
  const old = new Map(before.map((f) => [f.path, f.sha256]));
  const current = new Map(now.map((f) => [f.path, f.sha256]));
  const out: string[] = [];
  for (const [path, sha] of current) {
    const was = old.get(path);
    if (was === undefined) out.push(`${path}: new (the run did not read it)`);
    else if (was !== sha) out.push(`${path}: sha256 ${was.slice(0, 12)}… → ${sha.slice(0, 12)}… (changed)`);
  }
  for (const path of old.keys()) if (!current.has(path)) out.push(`${path}: no longer read (the run trained on it)`);
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
