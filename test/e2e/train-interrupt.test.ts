import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, cleanEnv, collect, runCli, startCli, tempDir, type CliResult } from "../helpers/run-cli.js";
import { writeTinyCheckpoint } from "../helpers/tiny-checkpoint.js";
import { itNeeds, onCi, type Need } from "../helpers/needs.js";
import { inspectRunDir } from "../../src/train/run-dir.js";

/**
 * Attacks on a running `finetune train`: Ctrl-C in a real pseudo-terminal (not only kill -INT), SIGTERM, SIGHUP and
 * a closed terminal, a second signal while the checkpoint is written, a closed stdout, and Ctrl-C in `generate`.
 * Every stop must leave a resumable run: the newest checkpoint complete, no temp folders, no run lock behind.
 */
const tmp = tempDir("finetune-interrupt-");
const env = () => cleanEnv({ HOME: tmp.path, HF_HUB_OFFLINE: "1" });
const model = join(tmp.path, "model");
const longModel = join(tmp.path, "long-context");
let recipes = 0;

beforeAll(() => {
  writeTinyCheckpoint(model, { kind: "llama", seed: 11 });
  // Greedy decoding of this one runs for thousands of tokens without an end-of-sequence token.
  writeTinyCheckpoint(longModel, { kind: "llama", seed: 2, maxPositions: 40_000 });
});
afterAll(() => tmp.cleanup());

/** A recipe on the local tiny model; returns the recipe path and its run directory. */
function recipe(train: { max_steps: number; save_every: number }): { file: string; run: string } {
  const dir = join(tmp.path, `r${(recipes += 1)}`);
  mkdirSync(dir, { recursive: true });
  const rows = Array.from({ length: 24 }, (_, i) => JSON.stringify({ text: `a b c d e f g ${i % 7} h i j k l m` }));
  writeFileSync(join(dir, "t.jsonl"), `${rows.join("\n")}\n`);
  const run = join(dir, "run");
  writeFileSync(
    join(dir, "recipe.yaml"),
    `model: ${model}\ndata:\n  train: t.jsonl\n  validation: 0\ntrain:\n  max_steps: ${train.max_steps}\n  batch_size: 2\n  save_every: ${train.save_every}\n  max_seq_len: 32\n  seed: 3\noutput: ${run}\n`,
  );
  return { file: join(dir, "recipe.yaml"), run };
}

const trainRows = (run: string): number => {
  const file = join(run, "metrics.jsonl");
  return existsSync(file) ? readFileSync(file, "utf8").split("\n").filter((l) => l.includes('"type":"train"')).length : 0;
};

async function waitFor(what: string, done: () => boolean, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (!done()) {
    if (child && child.exitCode !== null) throw new Error(`the CLI exited (${child.exitCode}) before ${what}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * The run is resumable: every checkpoint folder is complete, no temp folder or lock is left, and the newest is N.
 * And it holds nothing --overwrite would call foreign: a file finetune writes must be in RUN_LAYOUT.
 */
async function expectCleanRun(run: string, newest: number | null): Promise<void> {
  expect((await inspectRunDir(run)).foreign).toEqual([]);
  const folders = existsSync(join(run, "checkpoints")) ? readdirSync(join(run, "checkpoints")) : [];
  expect(folders.filter((n) => !/^step-\d+$/.test(n))).toEqual([]);
  for (const folder of folders) {
    const state = JSON.parse(readFileSync(join(run, "checkpoints", folder, "state.json"), "utf8")) as { step: number };
    expect(`step-${state.step}`).toBe(folder);
    expect(existsSync(join(run, "checkpoints", folder, "trainer.safetensors"))).toBe(true);
  }
  const steps = folders.map((n) => Number(n.slice(5)));
  expect(steps.length ? Math.max(...steps) : null).toBe(newest);
  expect(existsSync(join(run, ".finetune-run.lock"))).toBe(false);
}

/** The CLI inside a real pseudo-terminal (util-linux `script`), with a width so the live spinner line runs. */
function inTerminal(args: string[]): { child: ChildProcess; output: () => string; done: Promise<number | null> } {
  const quoted = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
  const child = spawn("script", ["-qefc", `stty cols 120 rows 40; exec ${quoted}`, "/dev/null"], { env: cleanEnv({ HOME: tmp.path, HF_HUB_OFFLINE: "1", CI: undefined, TERM: "xterm" }), stdio: ["pipe", "pipe", "pipe"] });
  // Keys typed after the CLI ended go nowhere; that is not this test's failure.
  child.stdin.on("error", () => undefined);
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const done = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return { child, output: () => output, done };
}
/** The terminal cases need util-linux `script` for a real pseudo-terminal; Debian (and so CI) always has it. */
const terminalNeed: Need = {
  missing: spawnSync("script", ["--version"]).status === 0 ? null : "util-linux `script` is not installed, so no pseudo-terminal can be made here",
  required: onCi(),
  requiredBecause: "CI runs on Debian, whose util-linux always provides script",
};

describe("finetune train: every way of stopping it leaves a resumable run", () => {
  itNeeds(terminalNeed, "Ctrl-C in a real terminal (live spinner) finishes the step, writes a checkpoint and prints the resume command", async () => {
    const { file, run } = recipe({ max_steps: 100_000, save_every: 100_000 });
    const term = inTerminal(["train", file]);
    await waitFor("20 training steps", () => trainRows(run) >= 20, term.child);
    term.child.stdin?.write("\u0003");
    const code = await term.done;
    const output = term.output();
    // The live line really ran: ora's clear-line sequence is in the terminal output.
    expect(output).toContain("\u001b[0K");
    expect(output).toContain("Ctrl-C (SIGINT): finishing this step, then writing a checkpoint; press Ctrl-C again to stop at once");
    const step = Number(/interrupted at step (\d+) by Ctrl-C \(SIGINT\); a checkpoint was written to /.exec(output)?.[1]);
    expect(output).toContain(`a checkpoint was written to ${run}/checkpoints/step-${step}. Resume with: finetune train ${run}/recipe.resolved.yaml --resume`);
    expect(code).toBe(130);
    expect(trainRows(run)).toBe(step);
    await expectCleanRun(run, step);
  });

  itNeeds(terminalNeed, "a second Ctrl-C in the terminal stops at once; the resume command then continues from the last good checkpoint", async () => {
    const { file, run } = recipe({ max_steps: 200, save_every: 25 });
    const term = inTerminal(["train", file]);
    await waitFor("60 training steps", () => trainRows(run) >= 60, term.child);
    term.child.stdin?.write("\u0003");
    await waitFor("the first Ctrl-C's notice", () => term.output().includes("press Ctrl-C again"), term.child);
    term.child.stdin?.write("\u0003");
    expect(await term.done).toBe(130);
    // Either the step's checkpoint was already being written (and the second Ctrl-C waited for it) or the process
    // ended at once, its run lock left behind; never a half-written checkpoint.
    const folders = readdirSync(join(run, "checkpoints"));
    expect(folders.filter((n) => n.includes(".tmp-"))).toEqual([]);
    const newest = Math.max(...folders.map((n) => Number(n.slice(5))));
    const resumed = await runCli(["train", join(run, "recipe.resolved.yaml"), "--resume"], env());
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`resuming from step ${newest} `);
    expect(trainRows(run)).toBe(200);
    expect(existsSync(join(run, ".finetune-run.lock"))).toBe(false);
  }, 180_000);

  itNeeds(terminalNeed, "closing the terminal (SIGHUP to a process whose terminal is gone) still writes the checkpoint", async () => {
    const { file, run } = recipe({ max_steps: 100_000, save_every: 100_000 });
    const term = inTerminal(["train", file]);
    await waitFor("20 training steps", () => trainRows(run) >= 20, term.child);
    const trainer = Number(spawnSync("ps", ["-o", "pid=", "--ppid", String(term.child.pid)], { encoding: "utf8" }).stdout.trim());
    expect(trainer).toBeGreaterThan(0);
    term.child.kill("SIGKILL");
    const alive = () => {
      try {
        process.kill(trainer, 0);
        return true;
      } catch {
        return false;
      }
    };
    await waitFor("the trainer to exit after its terminal closed", () => !alive());
    const rows = trainRows(run);
    await expectCleanRun(run, rows);
  });

  it.each(["SIGTERM", "SIGHUP"] as const)("%s finishes the step and writes a checkpoint like Ctrl-C", async (signal) => {
    const { file, run } = recipe({ max_steps: 100_000, save_every: 100_000 });
    const child = startCli(["train", file], env());
    const done = collect(child);
    await waitFor("10 training steps", () => trainRows(run) >= 10, child);
    child.kill(signal);
    const result = await done;
    expect(result.code, result.stderr).toBe(130);
    const cause = signal === "SIGTERM" ? "SIGTERM" : "SIGHUP (the terminal was closed)";
    const step = Number(new RegExp(`interrupted at step (\\d+) by ${cause.replace(/[()]/g, "\\$&")}; a checkpoint was written`).exec(result.stderr)?.[1]);
    expect(step).toBeGreaterThanOrEqual(10);
    await expectCleanRun(run, step);
  });

  it("a second signal while the checkpoint is being written waits for it: the run keeps every checkpoint whole", async () => {
    const { file, run } = recipe({ max_steps: 100_000, save_every: 1 });
    const child = startCli(["train", file], env());
    const done = collect(child);
    const checkpoints = join(run, "checkpoints");
    const writing = () => (existsSync(checkpoints) ? readdirSync(checkpoints).some((n) => n.includes(".tmp-")) : false);
    // Catch the process inside a checkpoint write: freeze it there, and make sure the write is still unfinished.
    let caught = false;
    for (let attempt = 0; attempt < 500 && !caught; attempt += 1) {
      await waitFor("a checkpoint being written", writing, child);
      child.kill("SIGSTOP");
      await new Promise((r) => setTimeout(r, 20));
      caught = writing();
      if (!caught) child.kill("SIGCONT");
    }
    expect(caught).toBe(true);
    // Two different signals stay pending while it is frozen; both arrive during the write once it continues.
    child.kill("SIGINT");
    child.kill("SIGTERM");
    child.kill("SIGCONT");
    const result: CliResult = await done;
    expect(result.code, result.stderr).toBe(130);
    expect(result.stderr).toContain("still writing the checkpoint; finetune stops as soon as that is complete");
    const step = Number(/interrupted at step (\d+) by /.exec(result.stderr)?.[1]);
    await expectCleanRun(run, step);
  });

  it("a closed stdout (`--json train | head -2`) ends the run cleanly with a checkpoint; --resume continues it", async () => {
    const { file, run } = recipe({ max_steps: 300, save_every: 1000 });
    const child = startCli(["--json", "train", file], env());
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    let seen = "";
    // Like `head`: read until the first training step's line, then close the pipe.
    await new Promise<void>((resolve) =>
      child.stdout?.on("data", (chunk: Buffer) => {
        seen += chunk.toString();
        if (seen.includes('"type":"train"')) {
          child.stdout?.destroy();
          resolve();
        }
      }),
    );
    const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
    expect(stderr).not.toContain("this is a bug");
    expect(stderr).not.toMatch(/\n\s+at /);
    const step = Number(/interrupted at step (\d+) by a closed stdout \(EPIPE\); a checkpoint was written to /.exec(stderr)?.[1]);
    expect(code, stderr).toBe(130);
    await expectCleanRun(run, step);
    const resumed = await runCli(["train", file, "--resume"], env());
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`resuming from step ${step} `);
    expect(trainRows(run)).toBe(300);
    // The finished run (adapter/, run.lock.json, loss.svg) is all ours too.
    expect(readdirSync(run)).toEqual(expect.arrayContaining(["adapter", "run.lock.json", "loss.svg", ".finetune-run"]));
    // A finished run keeps its final checkpoint (so --resume --max-steps can extend it).
    await expectCleanRun(run, 300);
  }, 180_000);

  it("a run killed before its first checkpoint is started again by a plain rerun (no --overwrite needed)", async () => {
    const { file, run } = recipe({ max_steps: 40, save_every: 1000 });
    const child = startCli(["train", file], env());
    const done = collect(child);
    await waitFor("5 training steps", () => trainRows(run) >= 5, child);
    child.kill("SIGKILL");
    await done;
    expect(existsSync(join(run, "checkpoints"))).toBe(false);
    // The dead process's run lock is still there, and is taken over.
    expect(existsSync(join(run, ".finetune-run.lock"))).toBe(true);
    const rerun = await runCli(["train", file], env());
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stderr).toContain(`${run} holds a run that stopped before its first checkpoint and nothing worth keeping; starting it again from step 0.`);
    expect(trainRows(run)).toBe(40);
    expect(existsSync(join(run, ".finetune-run.lock"))).toBe(false);
  }, 180_000);

  it("a second `train` on the same run directory is refused, naming the first; the first is unaffected", async () => {
    const { file, run } = recipe({ max_steps: 100_000, save_every: 100_000 });
    const first = startCli(["train", file], env());
    const firstDone = collect(first);
    await waitFor("10 training steps", () => trainRows(run) >= 10, first);
    for (const flags of [[], ["--resume"], ["--overwrite"]]) {
      const second = await runCli(["train", file, ...flags], env());
      expect(second.code).toBe(2);
      expect(second.stderr).toMatch(new RegExp(`${run} is in use by another run: finetune train, pid ${first.pid}, started \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\. Wait for it to finish or stop it`));
    }
    first.kill("SIGINT");
    const result = await firstDone;
    expect(result.code).toBe(130);
    const step = Number(/interrupted at step (\d+)/.exec(result.stderr)?.[1]);
    // One writer: one row per step, in order.
    const steps = readFileSync(join(run, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => (JSON.parse(l) as { step: number }).step);
    expect(steps).toEqual(Array.from({ length: step }, (_, i) => i + 1));
    await expectCleanRun(run, step);
  });

  it("--overwrite refuses a project folder that merely contains checkpoints/ and adapter/, and deletes nothing", async () => {
    const { file } = recipe({ max_steps: 2, save_every: 1000 });
    const project = join(tmp.path, "project");
    for (const path of ["checkpoints/step-1/state.json", "adapter/adapter_config.json", "src/index.ts", "notes.txt"]) {
      mkdirSync(join(project, path, ".."), { recursive: true });
      writeFileSync(join(project, path), "mine");
    }
    const result = await runCli(["train", file, "--output", project, "--overwrite"], env());
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`--overwrite: refusing to delete ${project}: it holds notes.txt, src/, which finetune did not write.`);
    expect(readdirSync(project).sort()).toEqual(["adapter", "checkpoints", "notes.txt", "src"]);
    expect(readFileSync(join(project, "src", "index.ts"), "utf8")).toBe("mine");
  });
});

describe("finetune generate: Ctrl-C", () => {
  it("stops a long generation promptly, keeps what was generated and exits 130", async () => {
    const child = startCli(["generate", "--model", longModel, "--prompt", "a b", "--max-new-tokens", "30000", "--temperature", "0", "--json"], env());
    const done = collect(child);
    let tokens = 0;
    child.stdout?.on("data", (chunk: Buffer) => (tokens += chunk.toString().split('"type":"token"').length - 1));
    await waitFor("the first generated tokens", () => tokens >= 3, child);
    child.kill("SIGINT");
    const result = await done;
    expect(result.code, result.stderr).toBe(130);
    const lines = result.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    const final = lines.find((l) => "stop_reason" in l) as { stop_reason: string; tokens: number; text: string; ids: number[] };
    expect(final.stop_reason).toBe("interrupted");
    expect(final.tokens).toBeGreaterThanOrEqual(3);
    expect(final.tokens).toBeLessThan(30_000);
    expect(final.ids).toHaveLength(final.tokens);
    expect(lines.filter((l) => l.type === "token").map((l) => l.text).join("")).toBe(final.text);
    expect(lines[lines.length - 1]).toMatchObject({ type: "error", exit_code: 130, message: `interrupted by Ctrl-C (SIGINT) after ${final.tokens} generated tokens` });
  });
});
