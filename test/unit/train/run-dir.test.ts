import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { claimRunDir, inspectRunDir, RUN_MARKER, type ClaimRunDirParams } from "../../../src/train/run-dir.js";
import { RUN_OWNER_FILE } from "../../../src/train/run-owner.js";
import { tempDir } from "../../helpers/run-cli.js";

const tmp = tempDir("finetune-rundir-");
afterAll(() => tmp.cleanup());
let dirs = 0;
const fresh = () => join(tmp.path, `out-${(dirs += 1)}`);

function write(path: string, text = "x"): void {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, text);
}
const state = (step: number) => JSON.stringify({ step, totalSteps: 100, epoch: 0, index: 0, optimizerSteps: step, bestValLoss: null, evalsWithoutImprovement: 0, elapsed: 1 });

/** A run directory as finetune leaves it; `marked: false` is one from before the marker existed. */
function runDir(options: { checkpoints?: number[]; finished?: boolean; marked?: boolean; started?: boolean } = {}): string {
  const dir = fresh();
  mkdirSync(dir, { recursive: true });
  if (options.marked ?? true) write(join(dir, RUN_MARKER), "{}");
  if (options.started ?? true) {
    write(join(dir, "metrics.jsonl"), "");
    write(join(dir, "recipe.resolved.yaml"), "model: m\n");
  }
  for (const step of options.checkpoints ?? []) {
    const cp = join(dir, "checkpoints", `step-${step}`);
    write(join(cp, "state.json"), state(step));
    write(join(cp, "trainer.safetensors"));
    write(join(cp, "adapter", "adapter_model.safetensors"));
    write(join(cp, "adapter", "adapter_config.json"), "{}");
  }
  if (options.finished) {
    write(join(dir, "adapter", "adapter_model.safetensors"));
    write(join(dir, "adapter", "adapter_config.json"), "{}");
    write(join(dir, "run.lock.json"), "{}");
    write(join(dir, "loss.svg"), "<svg/>");
  }
  return dir;
}

const notices: string[] = [];
const claim = (output: string, mode: { resume?: boolean; overwrite?: boolean } = {}) =>
  claimRunDir({ output, resume: mode.resume ?? false, overwrite: mode.overwrite ?? false, command: "finetune train", version: "0.0.0-test", onNotice: (m) => notices.push(m) } satisfies ClaimRunDirParams);

/** The claim's message (it must be a UserError), with nothing in the folder changed. */
async function refusal(output: string, mode: { resume?: boolean; overwrite?: boolean }): Promise<string> {
  const before = existsSync(output) ? listing(output) : null;
  const error = await claim(output, mode).then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(UserError);
  expect(existsSync(output) ? listing(output) : null).toEqual(before);
  return (error as UserError).message;
}
function listing(dir: string, rel = ""): string[] {
  return readdirSync(join(dir, rel), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? [`${rel}${e.name}/`, ...listing(dir, `${rel}${e.name}/`)] : [`${rel}${e.name}`])).sort();
}

describe("run directories: only what is provably ours is ever deleted", () => {
  it("--overwrite refuses a folder that merely contains checkpoints/ and adapter/, naming what is not ours", async () => {
    const project = runDir({ checkpoints: [10], finished: true });
    write(join(project, "src", "main.ts"), "code");
    write(join(project, "notes.md"), "mine");
    const message = await refusal(project, { overwrite: true });
    expect(message).toBe(`--overwrite: refusing to delete ${project}: it holds notes.md, src/, which finetune did not write. Move those away, or choose another --output.`);
  });

  it("--overwrite refuses a run with a foreign file deep inside, and an unmarked (old or hand-made) run", async () => {
    const deep = runDir({ checkpoints: [10] });
    write(join(deep, "checkpoints", "step-10", "adapter", "my-notes.txt"));
    expect(await refusal(deep, { overwrite: true })).toContain("it holds checkpoints/step-10/adapter/my-notes.txt, which finetune did not write");
    const unmarked = runDir({ checkpoints: [10], marked: false });
    expect(await refusal(unmarked, { overwrite: true })).toContain(`it has no ${RUN_MARKER} file, so finetune cannot tell that it created it. Delete it yourself if it is an old run`);
    // A symlink where our folder should be is not ours either (rm would follow nothing, but it is not what we wrote).
    const linked = runDir({});
    const { symlinkSync } = await import("node:fs");
    symlinkSync(tmp.path, join(linked, "adapter"));
    expect(await refusal(linked, { overwrite: true })).toContain("it holds adapter, which finetune did not write");
  });

  it("--overwrite empties a marked run (temp files of killed writes included) only when training begins, keeping the lock", async () => {
    const dir = runDir({ checkpoints: [10, 20], finished: true });
    write(join(dir, "checkpoints", "step-30.tmp-123-0badc0de", "state.json"));
    write(join(dir, "metrics.jsonl.tmp-9-00ff00ff"));
    const claimed = await claim(dir, { overwrite: true });
    expect(claimed.resumeStep).toBeNull();
    expect(listing(dir)).toContain("checkpoints/step-20/state.json");
    expect(existsSync(join(dir, RUN_OWNER_FILE))).toBe(true);
    await claimed.begin();
    expect(listing(dir)).toEqual([RUN_MARKER, RUN_OWNER_FILE].sort());
    await claimed.release();
    expect(listing(dir)).toEqual([RUN_MARKER]);
  });

  it("a run with nothing worth keeping (stopped before its first checkpoint) restarts, with or without --resume", async () => {
    for (const mode of [{}, { resume: true }]) {
      const dir = runDir({});
      write(join(dir, "checkpoints", "step-4.tmp-77-deadbeef", "trainer.safetensors"));
      notices.length = 0;
      const claimed = await claim(dir, mode);
      expect(claimed.resumeStep).toBeNull();
      expect(notices).toEqual([`${dir} holds a run that stopped before its first checkpoint and nothing worth keeping; starting it again from step 0.`]);
      await claimed.begin();
      expect(listing(dir)).toEqual([RUN_MARKER, RUN_OWNER_FILE].sort());
      await claimed.release();
    }
  });

  it("a plain rerun never replaces checkpoints or a finished adapter, and says which flag to use", async () => {
    const withCheckpoints = runDir({ checkpoints: [10, 20] });
    expect(await refusal(withCheckpoints, {})).toBe(`output directory ${withCheckpoints} is not empty: it holds a run with checkpoints up to step 20; use --resume to continue that run, --overwrite to replace it, --output for a new directory.`);
    const finished = runDir({ finished: true });
    expect(await refusal(finished, {})).toBe(`output directory ${finished} is not empty: it holds a finished run (adapter/); use --overwrite to replace it, --output for a new directory.`);
    expect(await refusal(finished, { resume: true })).toContain("has no checkpoint to resume from: it holds a finished run (adapter/); use --overwrite to train it again");
    const damaged = runDir({});
    write(join(damaged, "checkpoints", "step-5", "state.json"), "{ cut");
    expect(await refusal(damaged, {})).toContain("it holds a run with incomplete or damaged checkpoints; use --overwrite to replace it");
    expect(await refusal(damaged, { resume: true })).toContain("has no complete checkpoint to resume from");
  });

  it("a foreign folder is refused in every mode, and nothing (not even a lock) is written into it", async () => {
    const dir = fresh();
    write(join(dir, "precious.txt"), "keep me");
    expect(await refusal(dir, {})).toBe(`output directory ${dir} is not empty (it holds precious.txt, which finetune did not write); choose another --output (finetune never deletes what it did not write).`);
    expect(await refusal(dir, { resume: true })).toContain("has no checkpoint to resume from and is not a finetune run (it holds precious.txt");
    expect(await refusal(dir, { overwrite: true })).toContain("refusing to delete");
    expect(readFileSync(join(dir, "precious.txt"), "utf8")).toBe("keep me");
  });

  it("--resume picks the newest complete checkpoint, keeps a user's notes, adopts an unmarked run and clears dead temp files", async () => {
    const dir = runDir({ checkpoints: [10, 20], marked: false });
    write(join(dir, "checkpoints", "step-30", "trainer.safetensors"));
    write(join(dir, "checkpoints", "step-30.tmp-5-0123abcd", "state.json"));
    write(join(dir, "notes.md"), "mine");
    const claimed = await claim(dir, { resume: true });
    expect(claimed.resumeStep).toBe(20);
    await claimed.begin();
    expect(existsSync(join(dir, RUN_MARKER))).toBe(true);
    expect(existsSync(join(dir, "checkpoints", "step-30.tmp-5-0123abcd"))).toBe(false);
    expect(listing(dir)).toEqual(expect.arrayContaining(["notes.md", "checkpoints/step-10/state.json", "checkpoints/step-30/trainer.safetensors"]));
    await claimed.release();
    expect(existsSync(join(dir, RUN_OWNER_FILE))).toBe(false);
  });

  it("a folder it created is removed again when the run fails before training; a missing run cannot be resumed", async () => {
    const dir = fresh();
    const claimed = await claim(dir);
    expect(readdirSync(dir).sort()).toEqual([RUN_MARKER, RUN_OWNER_FILE].sort());
    expect(JSON.parse(readFileSync(join(dir, RUN_MARKER), "utf8"))).toMatchObject({ created_by: "finetune", version: "0.0.0-test" });
    await claimed.release();
    expect(existsSync(dir)).toBe(false);
    expect(await refusal(dir, { resume: true })).toBe(`--resume: ${dir} has no checkpoint to resume from (it does not exist); run without --resume to start.`);
    expect(existsSync(dir)).toBe(false);
  });

  it("an output path that cannot be created is a usage error naming it, not a crash", async () => {
    const file = join(tmp.path, "a-file");
    write(file);
    expect(await refusal(join(file, "run"), {})).toBe(`cannot use --output ${join(file, "run")} (ENOTDIR: a part of it is a file, not a folder); choose another --output.`);
    expect(existsSync(join(file, "run"))).toBe(false);
    // Refused on its length before the file system sees it; the message shows the path cut, with its length.
    const long = join(tmp.path, "x".repeat(300));
    const message = await refusal(long, {});
    expect(message).toContain(`the name "${"x".repeat(60)}…${"x".repeat(40)} (300 characters)" is 300 bytes; file systems allow at most 255 per name`);
    expect(message.length).toBeLessThan(400);
    // Under /proc, Node's recursive mkdir spins forever; the one-level mkdir fails at once.
    expect(await refusal("/proc/finetune-no-such/run", {})).toMatch(/^cannot create --output \/proc\/finetune-no-such\/run \((ENOENT|EACCES)\); choose another --output\.$/);
  });

  it("a second claim on the same folder is refused while the first holds it, and succeeds after release", async () => {
    const dir = runDir({ checkpoints: [10] });
    const first = await claim(dir, { resume: true });
    const message = await refusal(dir, { resume: true });
    expect(message).toMatch(new RegExp(`^${dir} is in use by another run: finetune train, pid ${process.pid}, started \\d{4}-\\d\\d-\\d\\dT`));
    await first.release();
    const second = await claim(dir, { resume: true });
    expect(second.resumeStep).toBe(10);
    await second.release();
    expect((await inspectRunDir(dir)).locked).toBe(false);
  });
});
