import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSafetensors } from "../../src/io/safetensors-read.js";
import { writeSafetensors, type TensorToWrite } from "../../src/io/safetensors-write.js";
import { filesOf, startHubServer, type HubServer } from "../helpers/hub-server.js";
import { cleanEnv, lastJson, runCli, tempDir } from "../helpers/run-cli.js";
import { writeTinyCheckpoint } from "../helpers/tiny-checkpoint.js";

// Attacks on resume and on what training writes: damaged checkpoints, changed recipes, finished runs, divergence,
// corrupt adapters on export, data that changed under a lock. One finished 12-step run is trained; every other case
// works on a copy of it, so each costs at most a few steps.
const tmp = tempDir();
let hub: HubServer;
const env = () => cleanEnv({ HOME: tmp.path, HF_ENDPOINT: hub.url, HF_HUB_CACHE: join(tmp.path, "cache") });
const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
const TEXT = ["a b c d e f g", "h i j k l m n", "o p q r s t u", "v w x y z a b", "c d e f g h i"].map((text) => JSON.stringify({ text })).join("\n") + "\n";

interface Row { type: string; step: number; loss: number; lr: number; val_loss: number }
const metrics = (run: string): Row[] => readFileSync(join(run, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Row);
let dir: string;
let finished: string;

/** A copy of the finished run next to it (data paths in the resolved recipe are relative to the run folder). */
function copyRun(name: string, edit?: (run: string) => void): string {
  const run = join(dir, name);
  cpSync(finished, run, { recursive: true });
  edit?.(run);
  return run;
}
/** As if the run had been killed after its step-8 checkpoint. */
const killedAfterStep8 = (run: string) => {
  for (const path of ["checkpoints/step-12", "run.lock.json", "adapter"]) rmSync(join(run, path), { recursive: true, force: true });
};
const resume = (run: string, ...extra: string[]) => runCli(["train", join(dir, "recipe.yaml"), "--output", run, "--resume", ...extra], env());
const flipByte = (path: string, at: number) => {
  const bytes = readFileSync(path);
  bytes[at] = (bytes[at] ?? 0) ^ 0x40;
  writeFileSync(path, bytes);
};

beforeAll(async () => {
  const model = join(tmp.path, "src-llama");
  writeTinyCheckpoint(model, { kind: "llama", seed: 41 });
  hub = await startHubServer([{ name: "tiny/llama", commits: [{ files: filesOf(model) }] }]);
  dir = join(tmp.path, "exp");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "t.jsonl"), TEXT);
  writeFileSync(
    join(dir, "recipe.yaml"),
    `model: tiny/llama\ndata:\n  train: t.jsonl\n  validation: 0.2\nlora:\n  r: 4\n  alpha: 8\n  dropout: 0.0\n  target_modules: [q_proj, v_proj]\ntrain:\n  max_steps: 12\n  batch_size: 2\n  lr: 1.0e-2\n  warmup_steps: 2\n  eval_every: 4\n  save_every: 4\n  max_seq_len: 64\noutput: ${join(dir, "run")}\n`,
  );
  finished = join(dir, "run");
  const result = await runCli(["train", join(dir, "recipe.yaml")], env());
  expect(result.code, result.stderr).toBe(0);
  // The human summary names both losses, with the values of the metrics file.
  const losses = metrics(finished).filter((r) => r.type === "train").map((r) => r.loss);
  const evals = metrics(finished).filter((r) => r.type === "eval");
  const average = losses.reduce((a, b) => a + b, 0) / losses.length;
  expect(result.stdout).toContain(`✓ trained 12 steps: last step loss ${losses[11]?.toFixed(4)}, loss (avg 12 steps) ${average.toFixed(4)}, validation loss ${evals.at(-1)?.val_loss.toFixed(4)} (step 12)`);
  expect(result.stderr).toMatch(/step 12\/12 · loss \(avg 12 steps\) \d\.\d{4} · lr /);
}, 180_000);
afterAll(async () => {
  await hub.close();
  tmp.cleanup();
});

describe("resume: finished runs, extension, changed recipes", () => {
  it("a finished run keeps its final checkpoint, and --resume says it is finished without touching anything", async () => {
    expect(readdirSync(join(finished, "checkpoints")).sort()).toEqual(["step-12", "step-4", "step-8"]);
    const state = JSON.parse(readFileSync(join(finished, "checkpoints", "step-12", "state.json"), "utf8")) as Record<string, unknown>;
    expect(state).toMatchObject({ step: 12, totalSteps: 12, stopReason: "max_steps" });
    expect(Object.keys(state.files as object).sort()).toEqual(["adapter/adapter_config.json", "adapter/adapter_model.safetensors", "trainer.safetensors"]);
    expect((state.files as Record<string, string>)["trainer.safetensors"]).toBe(sha256(join(finished, "checkpoints", "step-12", "trainer.safetensors")));
    const before = { adapter: sha256(join(finished, "adapter", "adapter_model.safetensors")), metrics: readFileSync(join(finished, "metrics.jsonl"), "utf8") };
    const again = await resume(finished);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`--resume: the run in ${finished} already finished all 12 steps (${join(finished, "checkpoints", "step-12")} is its final checkpoint, adapter/ its result); nothing to resume. To train it longer, resume with --max-steps above 12`);
    expect(sha256(join(finished, "adapter", "adapter_model.safetensors"))).toBe(before.adapter);
    expect(readFileSync(join(finished, "metrics.jsonl"), "utf8")).toBe(before.metrics);
  });

  it("--max-steps extends a finished run: steps done stay byte-identical, the schedule re-plans from the next step as the notice says", async () => {
    const run = copyRun("extended");
    const trainerBefore = sha256(join(run, "checkpoints", "step-12", "trainer.safetensors"));
    const result = await resume(run, "--max-steps", "16", "--json");
    expect(result.code, result.stderr).toBe(0);
    const lr13 = 0.005 * (1 + Math.cos((Math.PI * 10) / 14));
    expect(result.stdout).toContain(`extending the run from 12 to 16 steps: steps 1–12 stay exactly as trained. From step 13 the cosine schedule is re-planned for 16 steps: lr ${lr13.toExponential(3)} at step 13`);
    const rows = metrics(run);
    expect(rows.slice(0, metrics(finished).length)).toEqual(metrics(finished));
    const train = rows.filter((r) => r.type === "train");
    expect(train.map((r) => r.step)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(train[12]?.lr).toBeCloseTo(lr13, 12);
    expect(sha256(join(run, "checkpoints", "step-12", "trainer.safetensors"))).toBe(trainerBefore);
    // --json: the result and every train event name the average and the last step's loss the same way
    const out = lastJson(result.stdout);
    const last16 = train.map((r) => r.loss);
    expect(out).toMatchObject({ steps: 16, last_step_loss: last16[15], avg_loss_steps: 16 });
    expect(out.avg_loss as number).toBeCloseTo(last16.reduce((a, b) => a + b, 0) / 16, 10);
    const events = result.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.type === "train");
    expect(events.length).toBe(4);
    expect(events[0]).toMatchObject({ step: 13, loss: last16[12], avg_loss_steps: 13 });
    expect(JSON.parse(readFileSync(join(run, "run.lock.json"), "utf8")).train_losses).toEqual(last16);
    expect(sha256(join(run, "adapter", "adapter_model.safetensors"))).not.toBe(sha256(join(finished, "adapter", "adapter_model.safetensors")));
  });

  it("a changed value is named with its old and new value; shortening is refused the same way", async () => {
    const changed = await resume(finished, "--set", "train.lr=0.5", "--set", "lora.r=8", "--max-steps", "16");
    expect(changed.code).toBe(2);
    expect(changed.stderr).toContain(`--resume: these 2 values differ from the recipe the run started with (${join(finished, "recipe.resolved.yaml")}):\n  lora.r: 4 → 8\n  train.lr: 0.01 → 0.5\n`);
    const shorter = await resume(finished, "--max-steps", "8");
    expect(shorter.code).toBe(2);
    expect(shorter.stderr).toContain("  train.max_steps: 12 → 8\n");
  });

  it("data that changed since the checkpoint is refused, naming the file", async () => {
    const run = copyRun("changed-data", killedAfterStep8);
    const data = join(dir, "t.jsonl");
    const before = sha256(data);
    writeFileSync(data, TEXT.replace("a b c", "z z z"));
    try {
      const result = await resume(run);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`--resume: the training data is not what the run trained on up to step 8 (as ${join(run, "checkpoints", "step-8")}/state.json records it):\n  ../t.jsonl: sha256 ${before.slice(0, 12)}… → ${sha256(data).slice(0, 12)}… (changed)\n`);
      expect(existsSync(join(run, "adapter"))).toBe(false);
    } finally {
      writeFileSync(data, TEXT);
    }
  });

  it("a folder holding only temp files of a killed finetune process is cleaned and trained into without --overwrite", async () => {
    const output = join(dir, "only-temps");
    mkdirSync(join(output, "checkpoints", "step-4.tmp-999999999-0a1b2c3d"), { recursive: true });
    writeFileSync(join(output, "recipe.resolved.yaml.tmp-999999999-0a1b2c3d"), "");
    const result = await runCli(["train", join(dir, "recipe.yaml"), "--output", output, "--max-steps", "2"], env());
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(`removed 2 temp files left in ${output} by an interrupted finetune process`);
    expect(readdirSync(join(output, "checkpoints"))).toEqual(["step-2"]);
  });

  it("a missing recipe.resolved.yaml stops resume instead of skipping the same-recipe check", async () => {
    const run = copyRun("no-recipe", (r) => {
      killedAfterStep8(r);
      rmSync(join(r, "recipe.resolved.yaml"));
    });
    const result = await resume(run);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`--resume: ${join(run, "recipe.resolved.yaml")} is missing; it records the recipe the run started with`);
    expect(existsSync(join(run, "adapter"))).toBe(false);
  });
});

describe("resume: damaged checkpoints", () => {
  it("a flipped byte in the newest checkpoint falls back to the one before with a notice, and still ends byte-identical; junk metrics rows and stale temps are cleaned", async () => {
    const run = copyRun("flipped", (r) => {
      killedAfterStep8(r);
      flipByte(join(r, "checkpoints", "step-8", "trainer.safetensors"), 400);
      writeFileSync(join(r, "metrics.jsonl"), readFileSync(join(r, "metrics.jsonl"), "utf8").replace("\n", '\n{"type":"train","step":2,"loss":"junk"}\nnot json\n'));
      mkdirSync(join(r, "checkpoints", "step-12.tmp-999999999-0a1b2c3d"));
      writeFileSync(join(r, "loss.svg.tmp-999999999-0a1b2c3d"), "partial");
    });
    const result = await resume(run);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(`checkpoint ${join(run, "checkpoints", "step-8")} is damaged (trainer.safetensors does not match the sha256 recorded in state.json). Resuming from the newest intact checkpoint, ${join(run, "checkpoints", "step-4")}`);
    expect(result.stderr).toContain("resuming from step 4");
    expect(result.stderr).toContain(`removed 2 temp files left in ${run} by an interrupted finetune process`);
    expect(sha256(join(run, "adapter", "adapter_model.safetensors"))).toBe(sha256(join(finished, "adapter", "adapter_model.safetensors")));
    // timing fields (elapsed, tokens/s) differ between runs; the numbers training produced may not
    const numbers = (rows: Row[]) => rows.map((r) => [r.type, r.step, r.loss ?? r.val_loss, r.lr]);
    expect(numbers(metrics(run))).toEqual(numbers(metrics(finished)));
    expect(JSON.parse(readFileSync(join(run, "run.lock.json"), "utf8")).train_losses).toEqual(JSON.parse(readFileSync(join(finished, "run.lock.json"), "utf8")).train_losses);
    expect(readdirSync(join(run, "checkpoints")).sort()).toEqual(["step-12", "step-4", "step-8"]);
    expect(readdirSync(run).filter((n) => n.includes(".tmp-"))).toEqual([]);
  });

  it("a state claiming another step, or a trainer file without AdamW moments (hashes updated to match), is damaged too; none intact is an error listing why", async () => {
    const run = copyRun("all-damaged", (r) => {
      killedAfterStep8(r);
      const state8 = join(r, "checkpoints", "step-8", "state.json");
      writeFileSync(state8, readFileSync(state8, "utf8").replace('"step": 8', '"step": 12'));
    });
    // step-4: rewrite trainer.safetensors without the moments, and record its new hash as the writer would
    const dir4 = join(run, "checkpoints", "step-4");
    const reader = await openSafetensors(join(dir4, "trainer.safetensors"));
    const tensors: TensorToWrite[] = [];
    for (const [name, entry] of reader.tensors) if (name.startsWith("param.")) tensors.push({ name, dtype: "F32", shape: entry.shape, data: await reader.readFloat32(name) });
    await reader.close();
    await writeSafetensors(join(dir4, "trainer.safetensors"), tensors, { format: "finetune-trainer", step: "4" });
    const state4 = JSON.parse(readFileSync(join(dir4, "state.json"), "utf8")) as { files: Record<string, string> };
    state4.files["trainer.safetensors"] = sha256(join(dir4, "trainer.safetensors"));
    writeFileSync(join(dir4, "state.json"), JSON.stringify(state4));
    const result = await resume(run);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`no intact checkpoint to resume from in ${join(run, "checkpoints")}:`);
    expect(result.stderr).toContain(`checkpoint ${join(run, "checkpoints", "step-8")} is damaged (state.json says step 12, but the folder is step-8)`);
    expect(result.stderr).toMatch(/step-4 is damaged \(trainer\.safetensors lacks the AdamW moments adam_m\.\S+, adam_v\.\S+/);
    expect(result.stderr).toContain("Restore the files, or start the run again with --overwrite");
  });

  it("a NaN in a checkpoint's Adam state (hash matching) is refused, and a truncated file is named as damaged, not as a download", async () => {
    const run = copyRun("nan-adam", killedAfterStep8);
    const dir8 = join(run, "checkpoints", "step-8");
    const reader = await openSafetensors(join(dir8, "trainer.safetensors"));
    const tensors: TensorToWrite[] = [];
    for (const [name, entry] of reader.tensors) {
      const data = await reader.readFloat32(name);
      if (name.startsWith("adam_v.")) data[0] = Number.NaN;
      tensors.push({ name, dtype: "F32", shape: entry.shape, data });
    }
    await reader.close();
    await writeSafetensors(join(dir8, "trainer.safetensors"), tensors, { format: "finetune-trainer", step: "8" });
    const state8 = JSON.parse(readFileSync(join(dir8, "state.json"), "utf8")) as { files: Record<string, string> };
    state8.files["trainer.safetensors"] = sha256(join(dir8, "trainer.safetensors"));
    writeFileSync(join(dir8, "state.json"), JSON.stringify(state8));
    writeFileSync(join(run, "checkpoints", "step-4", "trainer.safetensors"), readFileSync(join(run, "checkpoints", "step-4", "trainer.safetensors")).subarray(0, 100));
    const result = await resume(run);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/step-8 is damaged \(trainer\.safetensors: adam_v\.\S+ holds NaN or Infinity\)/);
    expect(result.stderr).toContain("step-4 is damaged (trainer.safetensors does not match the sha256 recorded in state.json)");
    expect(result.stderr).not.toContain("download");
  });

  it("a checkpoint file that cannot be read is an error naming it, not a silent fall back", async () => {
    const run = copyRun("unreadable", (r) => {
      killedAfterStep8(r);
      rmSync(join(r, "checkpoints", "step-8", "state.json"));
      mkdirSync(join(r, "checkpoints", "step-8", "state.json"));
    });
    const result = await resume(run);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`cannot read ${join(run, "checkpoints", "step-8", "state.json")} (EISDIR); make it readable (or move that checkpoint folder away) and resume again.`);
  });
});

describe("divergence and corrupt output", () => {
  it.each([
    ["a huge learning rate", "train.lr=1e300"],
    ["a huge weight decay", "train.weight_decay=1e300"],
  ])("%s stops at step 1 with exit 1, naming what diverged; no adapter, no lock", async (_name, set) => {
    const output = join(dir, `diverged-${set.replace(/\W/g, "")}`);
    const result = await runCli(["train", join(dir, "recipe.yaml"), "--output", output, "--set", set], env());
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toMatch(/training diverged at step 1: \d+ tensors? became NaN or Infinity \(model\.layers\.\d+\.self_attn\.[qv]_proj\.lora_[AB]|training diverged at step 1: \d+ tensors? became NaN or Infinity \(/);
    expect(result.stderr).toContain("Nothing from this step was saved; no checkpoint had been written yet.");
    expect(result.stderr).not.toContain("✓");
    expect(existsSync(join(output, "adapter"))).toBe(false);
    expect(existsSync(join(output, "run.lock.json"))).toBe(false);
  });

  it("reproduce checks the files its recipe actually reads: a file added under the recipe's glob is refused before training", async () => {
    const globDir = join(tmp.path, "glob");
    mkdirSync(join(globDir, "data"), { recursive: true });
    writeFileSync(join(globDir, "data", "a.jsonl"), TEXT);
    writeFileSync(join(globDir, "recipe.yaml"), `model: tiny/llama\ndata:\n  train: data/*.jsonl\n  validation: 0\nlora:\n  r: 2\n  target_modules: [q_proj]\ntrain:\n  max_steps: 2\n  max_seq_len: 64\noutput: ${join(globDir, "run")}\n`);
    const trained = await runCli(["train", join(globDir, "recipe.yaml")], env());
    expect(trained.code, trained.stderr).toBe(0);
    writeFileSync(join(globDir, "data", "b.jsonl"), TEXT.replace("a b c", "x y z"));
    const output = join(globDir, "again");
    const result = await runCli(["reproduce", join(globDir, "run", "run.lock.json"), "--output", output], env());
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`the data the locked recipe reads is not the data the run trained on (${join(globDir, "run", "run.lock.json")}):\n  ../data/b.jsonl (train) is read by the recipe but not pinned in the lock\n`);
    expect(existsSync(output)).toBe(false);
  });

  it("export refuses a 0-byte or altered adapter (checked against the lock's hash) and writes nothing; a checkpoint exports with its own hash", async () => {
    const run = copyRun("corrupt-adapter", (r) => writeFileSync(join(r, "adapter", "adapter_model.safetensors"), ""));
    const out = join(dir, "peft-out");
    const result = await runCli(["export", run, "--format", "peft", "--out", out], env());
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${join(run, "adapter", "adapter_model.safetensors")} does not match the sha256 recorded in ${join(run, "run.lock.json")}`);
    expect(existsSync(out)).toBe(false);
    for (const format of ["merged", "gguf"]) {
      const other = await runCli(["export", run, "--format", format, "--out", out], env());
      expect(other.code).toBe(2);
      expect(other.stderr).toContain("does not match the sha256 recorded in");
      expect(existsSync(out)).toBe(false);
    }
    // a checkpoint is checked against the hash its own state.json records
    const flipped = copyRun("flipped-checkpoint-adapter", (r) => flipByte(join(r, "checkpoints", "step-8", "adapter", "adapter_model.safetensors"), 300));
    const fromFlipped = await runCli(["export", join(flipped, "checkpoints", "step-8"), "--format", "peft", "--out", out], env());
    expect(fromFlipped.code).toBe(2);
    expect(fromFlipped.stderr).toContain(`does not match the sha256 recorded in ${join(flipped, "checkpoints", "step-8", "state.json")}`);
    expect(existsSync(out)).toBe(false);
    // an adapter whose lock hash was made to match but which holds NaN is refused on parsing
    const nan = copyRun("nan-adapter");
    const weights = join(nan, "adapter", "adapter_model.safetensors");
    const reader = await openSafetensors(weights);
    const tensors: TensorToWrite[] = [];
    for (const [name, entry] of reader.tensors) {
      const data = await reader.readFloat32(name);
      if (name.endsWith("lora_B.weight")) data[0] = Number.POSITIVE_INFINITY;
      tensors.push({ name, dtype: "F32", shape: entry.shape, data });
    }
    await reader.close();
    await writeSafetensors(weights, tensors, { format: "pt" });
    const lock = JSON.parse(readFileSync(join(nan, "run.lock.json"), "utf8")) as { adapter_sha256: string };
    lock.adapter_sha256 = sha256(weights);
    writeFileSync(join(nan, "run.lock.json"), JSON.stringify(lock));
    const fromNan = await runCli(["export", nan, "--format", "gguf", "--out", out], env());
    expect(fromNan.code).toBe(2);
    expect(fromNan.stderr).toMatch(/adapter_model\.safetensors: base_model\.model\.\S+\.lora_B\.weight holds NaN or Infinity; the training diverged/);
    expect(existsSync(out)).toBe(false);
    const step8 = join(finished, "checkpoints", "step-8");
    const ok = await runCli(["export", step8, "--format", "peft", "--out", out], env());
    expect(ok.code, ok.stderr).toBe(0);
    const hash = sha256(join(step8, "adapter", "adapter_model.safetensors"));
    expect(readFileSync(join(out, "README.md"), "utf8")).toContain(`| adapter sha256 | \`${hash}\` |`);
    expect(sha256(join(out, "adapter_model.safetensors"))).toBe(hash);
  });
});
