import { lstat, readdir, readFile, rm, rmdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { errnoCode, UserError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { makeDirs, removeCreated, shortPath } from "../io/output-path.js";
import { acquireRunOwner, RUN_OWNER_FILE } from "./run-owner.js";

/** Written when finetune creates (or first trains in) a run directory: only a marked directory is ever deleted. */
export const RUN_MARKER = ".finetune-run";

/** What finetune writes into a run directory: a file, or a folder with its own layout. Nothing else is ours. */
type Layout = { readonly [name: string]: Layout | "file" };
const ADAPTER: Layout = { "adapter_model.safetensors": "file", "adapter_config.json": "file" };
const CHECKPOINT: Layout = { adapter: ADAPTER, "trainer.safetensors": "file", "state.json": "file" };
export const RUN_LAYOUT: Layout = {
  [RUN_MARKER]: "file",
  [RUN_OWNER_FILE]: "file",
  "metrics.jsonl": "file",
  "recipe.resolved.yaml": "file",
  "loss.svg": "file",
  "run.lock.json": "file",
  adapter: ADAPTER,
  checkpoints: { "step-N": CHECKPOINT },
};

/**
 * Bytes below the run folder that its deepest file needs (checkpoints/step-N/adapter/adapter_model.safetensors
 * and a temp suffix), so an output path is refused up front rather than at the first checkpoint.
 */
export const RUN_DIR_RESERVE = 128;

/** tempSibling()'s names (`<name>.tmp-<pid>-<hex>`): left by a write that was killed, ours like <name>. */
const TEMP = /^(.+)\.tmp-\d+-[0-9a-f]{8}$/;
const layoutName = (name: string): string => (/^step-\d+$/.test(name) ? "step-N" : name);

export interface RunDirState {
  exists: boolean;
  /** Top-level entries besides the marker and the owner lock. */
  entries: string[];
  marked: boolean;
  /** A run lock is there (its owner may be alive or gone). */
  locked: boolean;
  /** Paths (relative, folders with a trailing /) that finetune did not write. */
  foreign: string[];
  /** The newest checkpoint folder with a state.json (verified, and fallen back from, by findResumePoint). */
  checkpoint: number | null;
  /** Anything a user could want back: a checkpoint folder (even a damaged one) or a finished adapter. */
  worthKeeping: string | null;
}

/** Reads what an output folder holds, without changing it. A file or an unreadable folder is a usage error. */
export async function inspectRunDir(output: string): Promise<RunDirState> {
  const info = await stat(output).catch(() => null);
  if (!info) return { exists: false, entries: [], marked: false, locked: false, foreign: [], checkpoint: null, worthKeeping: null };
  if (!info.isDirectory()) throw new UserError(`output ${shortPath(output)} is a file, not a directory; choose another --output.`);
  let names: string[];
  try {
    names = await readdir(output);
  } catch (error) {
    throw new UserError(`cannot read the output directory ${shortPath(output)} (${errnoCode(error) ?? String(error)}); choose another --output.`);
  }
  const foreign: string[] = [];
  await collectForeign(output, "", RUN_LAYOUT, foreign);
  const checkpointFolders = names.includes("checkpoints") ? (await readdir(join(output, "checkpoints")).catch(() => [])).filter((n) => /^step-\d+$/.test(n)) : [];
  const worthKeeping = names.includes("adapter") || names.includes("run.lock.json") ? "a finished adapter (adapter/)" : checkpointFolders.length > 0 ? "checkpoints" : null;
  return {
    exists: true,
    entries: names.filter((n) => n !== RUN_MARKER && n !== RUN_OWNER_FILE && !(TEMP.exec(n)?.[1] === RUN_OWNER_FILE)),
    marked: names.includes(RUN_MARKER),
    locked: names.includes(RUN_OWNER_FILE),
    foreign,
    checkpoint: await newestCheckpointFolder(output, checkpointFolders),
    worthKeeping,
  };
}

async function newestCheckpointFolder(output: string, folders: string[]): Promise<number | null> {
  const steps = folders.map((name) => Number(name.slice("step-".length))).sort((a, b) => b - a);
  for (const step of steps) {
    // A state.json that parses marks a checkpoint; its files are verified when a resume reads it.
    const text = await readFile(join(output, "checkpoints", `step-${step}`, "state.json"), "utf8").catch(() => null);
    if (text !== null && parsesAsJson(text)) return step;
  }
  return null;
}

function parsesAsJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Walks only into folders of our layout, so a foreign tree is named, never read. */
async function collectForeign(dir: string, rel: string, layout: Layout, out: string[]): Promise<void> {
  for (const name of (await readdir(dir)).sort()) {
    const expected = layout[layoutName(TEMP.exec(name)?.[1] ?? name)];
    const info = await lstat(join(dir, name));
    const path = `${rel}${name}${info.isDirectory() ? "/" : ""}`;
    if (expected === undefined || (expected === "file") !== info.isFile() || (expected !== "file" && !info.isDirectory())) {
      out.push(path);
    } else if (expected !== "file") {
      await collectForeign(join(dir, name), path, expected, out);
    }
  }
}

export interface ClaimRunDirParams {
  output: string;
  resume: boolean;
  overwrite: boolean;
  /** What runs in it, for another process's refusal ("finetune train"). */
  command: string;
  version: string;
  /** Told when an earlier run without checkpoints is started again. */
  onNotice(message: string): void;
}

export interface RunDirClaim {
  /** The checkpoint to resume from, or null to start at step 0. */
  resumeStep: number | null;
  /** Called when training is about to write: empties a replaced run, removes dead temp files, marks the folder. */
  begin(): Promise<void>;
  /** Gives the folder up (every exit path); a folder this process created and never used is removed again. */
  release(): Promise<void>;
}

/**
 * Makes the output folder this process's run directory: decides fresh / restart / resume / replace from what it
 * holds, and holds the run lock until release(), so a second process on the same folder is refused.
 */
export async function claimRunDir(params: ClaimRunDirParams): Promise<RunDirClaim> {
  const { output } = params;
  let state = await inspectRunDir(output);
  // Refuse before writing anything into a folder we will not use; a present lock is checked first, since "in use
  // by pid N" explains more than "not empty".
  if (!state.locked) decide(output, state, params);
  let created = false;
  // Parents made for this run are removed with it when it never writes anything.
  let parents: string[] = [];
  if (!state.exists) {
    parents = (await makeDirs({ path: output, flag: "--output" })).filter((dir) => dir !== output);
    created = true;
  }
  const releaseLock = await (created ? writeMarker(output, params.version) : Promise.resolve())
    .then(() => acquireRunOwner({ path: join(output, RUN_OWNER_FILE), command: params.command }))
    .catch(async (error: unknown) => {
      if (created) await removeIfUnused(output, parents);
      throw unwritable(output, "write into", error);
    });
  const release = async (): Promise<void> => {
    await releaseLock();
    if (created) await removeIfUnused(output, parents);
  };
  let plan: Plan;
  try {
    state = await inspectRunDir(output);
    plan = decide(output, state, params);
  } catch (error) {
    await release();
    throw error;
  }
  if (plan.notice) params.onNotice(plan.notice);
  return {
    resumeStep: plan.resumeStep,
    release,
    begin: async () => {
      created = false;
      const now = await inspectRunDir(output);
      if (plan.clear) {
        // Checked again: the folder may have changed while the model loaded.
        if (now.foreign.length > 0) throw new UserError(`${shortPath(output)} now holds ${listPaths(now.foreign)}, which finetune did not write; refusing to delete it. Move those away or choose another --output.`);
        for (const name of now.entries) await rm(join(output, name), { recursive: true, force: true });
      } else {
        await removeTempFiles(output);
      }
      if (!now.marked) await writeMarker(output, params.version);
    },
  };
}

interface Plan {
  resumeStep: number | null;
  /** Empty the folder (all of it ours) before training writes. */
  clear: boolean;
  notice: string | null;
}

/** The whole policy: what each kind of output folder means for a fresh run, --resume and --overwrite. */
function decide(output: string, state: RunDirState, options: { resume: boolean; overwrite: boolean }): Plan {
  const empty = state.entries.length === 0;
  const ours = state.marked && state.foreign.length === 0;
  const restartable = ours && state.worthKeeping === null;
  const restartNotice = `${shortPath(output)} holds a run that stopped before its first checkpoint and nothing worth keeping; starting it again from step 0.`;
  const notOurs = state.foreign.length > 0 ? `it holds ${listPaths(state.foreign)}, which finetune did not write` : `it has no ${RUN_MARKER} file, so finetune cannot tell that it created it`;
  if (options.resume) {
    if (state.checkpoint !== null) return { resumeStep: state.checkpoint, clear: false, notice: null };
    if (!state.exists || empty) throw new UserError(`--resume: ${shortPath(output)} has no checkpoint to resume from (${state.exists ? "it is empty" : "it does not exist"}); run without --resume to start.`);
    if (restartable) return { resumeStep: null, clear: true, notice: restartNotice };
    if (state.foreign.length > 0 || !state.marked) throw new UserError(`--resume: ${shortPath(output)} has no checkpoint to resume from and is not a finetune run (${notOurs}); choose another --output.`);
    throw new UserError(
      state.worthKeeping === "checkpoints"
        ? `--resume: ${shortPath(output)} has no complete checkpoint to resume from (checkpoints/ holds only incomplete or damaged ones); start again with --overwrite, or choose another --output.`
        : `--resume: ${shortPath(output)} has no checkpoint to resume from: it holds a finished run (adapter/); use --overwrite to train it again, or --output for a new run.`,
    );
  }
  if (!state.exists || empty) return { resumeStep: null, clear: false, notice: null };
  if (options.overwrite) {
    if (ours) return { resumeStep: null, clear: true, notice: null };
    throw new UserError(`--overwrite: refusing to delete ${shortPath(output)}: ${notOurs}. ${state.foreign.length > 0 ? "Move those away" : "Delete it yourself if it is an old run"}, or choose another --output.`);
  }
  if (restartable) return { resumeStep: null, clear: true, notice: restartNotice };
  if (state.foreign.length > 0) {
    throw new UserError(`output directory ${shortPath(output)} is not empty (${notOurs}); choose another --output (finetune never deletes what it did not write).`);
  }
  const holds = state.checkpoint !== null ? `a run with checkpoints up to step ${state.checkpoint}` : state.worthKeeping === "checkpoints" ? "a run with incomplete or damaged checkpoints" : "a finished run (adapter/)";
  const choices = [state.checkpoint !== null ? "--resume to continue that run" : null, ours ? "--overwrite to replace it" : null, "--output for a new directory"].filter((c) => c !== null);
  throw new UserError(`output directory ${shortPath(output)} is not empty: it holds ${holds}; use ${choices.join(", ")}.`);
}

/** A file-system refusal (permissions, read-only, not a folder, too long) as a usage error; anything else as is. */
function unwritable(output: string, verb: string, error: unknown): unknown {
  const code = errnoCode(error);
  if (code === undefined || !["EACCES", "EPERM", "EROFS", "ENOTDIR", "ENAMETOOLONG", "EEXIST", "ENOSPC", "EDQUOT"].includes(code)) return error;
  return new UserError(`cannot ${verb} the output directory ${shortPath(output)} (${code}); choose another --output.`);
}

function listPaths(paths: string[]): string {
  const shown = paths.slice(0, 5).join(", ");
  return paths.length > 5 ? `${shown} and ${paths.length - 5} more` : shown;
}

async function writeMarker(output: string, version: string): Promise<void> {
  const marker = { created_by: "finetune", version, created_at: new Date().toISOString(), note: "finetune deletes this folder (--overwrite) only while it holds nothing but what finetune wrote" };
  await writeFileAtomic(join(output, RUN_MARKER), `${JSON.stringify(marker, null, 2)}\n`);
}

/** Temp files and folders of writes that were killed; safe to delete while we hold the run lock. */
async function removeTempFiles(output: string): Promise<void> {
  for (const dir of [output, join(output, "checkpoints"), join(output, "adapter")]) {
    for (const name of await readdir(dir).catch(() => [])) {
      const base = TEMP.exec(name)?.[1];
      if (base !== undefined && base !== RUN_OWNER_FILE) await rm(join(dir, name), { recursive: true, force: true });
    }
  }
}

/** Removes a folder this process created if it holds nothing but the marker (the run failed before writing). */
async function removeIfUnused(output: string, parents: string[]): Promise<void> {
  const names = await readdir(output).catch(() => null);
  if (names === null || names.some((n) => n !== RUN_MARKER)) return;
  await rm(join(output, RUN_MARKER), { force: true });
  await rmdir(output).catch(() => undefined);
  await removeCreated(parents);
}
