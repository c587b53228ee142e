import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { inspectCheckpoint } from "../../src/train/checkpoint-scan.js";
import { filesOf, startHubServer, type HubServer } from "../helpers/hub-server.js";
import { itNeeds, onCi, type Need } from "../helpers/needs.js";
import { cleanEnv, runCli, tempDir } from "../helpers/run-cli.js";
import { writeTinyCheckpoint } from "../helpers/tiny-checkpoint.js";

// Attack: the disk fills up while training and while exporting. A small tmpfs stands in for the full disk; mounting
// one needs root (as on CI), elsewhere these tests skip and say why.
const tmp = tempDir();
let hub: HubServer;
const env = () => cleanEnv({ HOME: tmp.path, HF_ENDPOINT: hub.url, HF_HUB_CACHE: join(tmp.path, "cache") });
const mounts: string[] = [];

function tryMount(dir: string, size: string): string | null {
  mkdirSync(dir, { recursive: true });
  const result = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { encoding: "utf8" });
  if (result.status !== 0) return (result.stderr || result.error?.message || `mount exited ${result.status}`).trim();
  mounts.push(dir);
  return null;
}
const remount = (dir: string, size: string) => expect(spawnSync("mount", ["-o", `remount,size=${size}`, dir]).status).toBe(0);

const probe = join(tmp.path, "probe");
const mountError = process.getuid?.() === 0 ? tryMount(probe, "64k") : "not root";
const tmpfsNeed: Need = {
  missing: mountError === null ? null : `cannot mount a small tmpfs to fill up (${mountError})`,
  required: onCi() && process.getuid?.() === 0,
  requiredBecause: "CI runs as root, where a tmpfs can always be mounted",
};

/** Every file below `dir` (relative), so temp leftovers can be named. */
function walk(dir: string, prefix = ""): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? [`${prefix}${name}/`, ...walk(path, `${prefix}${name}/`)] : [`${prefix}${name}`];
  });
}
/** Bytes a folder takes on a tmpfs: whole 4 KiB pages per file. */
function pages(dir: string): number {
  return walk(dir).filter((p) => !p.endsWith("/")).reduce((sum, p) => sum + Math.ceil(statSync(join(dir, p)).size / 4096) * 4096, 0);
}

let data: string;
let model: string;
const recipe = (output: string) =>
  `model: tiny/llama\ndata:\n  train: ${JSON.stringify(data)}\n  validation: 0\nlora:\n  r: 8\n  alpha: 16\n  target_modules: [q_proj, k_proj, v_proj, o_proj]\n` +
  `train:\n  max_steps: 30\n  batch_size: 2\n  lr: 1.0e-2\n  save_every: 5\n  max_seq_len: 64\noutput: ${JSON.stringify(output)}\n`;

beforeAll(async () => {
  model = join(tmp.path, "src-llama");
  writeTinyCheckpoint(model, { kind: "llama", seed: 7 });
  hub = await startHubServer([{ name: "tiny/llama", commits: [{ files: filesOf(model) }] }]);
  data = join(tmp.path, "t.jsonl");
  writeFileSync(data, ["a b c d e f g", "h i j k l m n", "o p q r s t u", "v w x y z a b"].map((text) => JSON.stringify({ text })).join("\n") + "\n");
}, 60_000);
afterAll(async () => {
  for (const dir of mounts.reverse()) spawnSync("umount", [dir]);
  await hub?.close();
  tmp.cleanup();
});

describe("a full disk", () => {
  itNeeds(tmpfsNeed, "while training: exit 2 naming the path and the bytes, nothing partial, earlier checkpoints intact, and --resume finishes once there is room", async () => {
    // The same run on a roomy disk tells how much a whole run writes.
    const reference = join(tmp.path, "reference");
    writeFileSync(join(tmp.path, "ref.yaml"), recipe(reference));
    const full = await runCli(["train", join(tmp.path, "ref.yaml")], env());
    expect(full.code, full.stderr).toBe(0);
    const checkpoint = pages(join(reference, "checkpoints", "step-5"));
    // Room for the run's small files (twice: each is rewritten beside itself) and three checkpoints, not for all six.
    const disk = join(tmp.path, "disk");
    const small = pages(reference) - pages(join(reference, "checkpoints"));
    const size = 2 * small + 3 * checkpoint;
    expect(tryMount(disk, String(size))).toBeNull();
    const run = join(disk, "run");
    writeFileSync(join(tmp.path, "run.yaml"), recipe(run));

    const failed = await runCli(["train", join(tmp.path, "run.yaml")], env());
    expect(failed.code, failed.stderr).toBe(2);
    expect(failed.stderr).toMatch(new RegExp(`error: the disk holding ${disk}/\\S+ is full \\(ENOSPC\\)`));
    expect(failed.stderr).not.toMatch(/this is a bug|\n\s+at /);
    expect(failed.stderr).not.toMatch(/holding \S+\.tmp-/);
    // Nothing partial: no temp file or folder of an atomic write is left anywhere in the run.
    expect(walk(run).filter((p) => p.includes(".tmp-"))).toEqual([]);
    expect(existsSync(join(run, ".finetune-run.lock"))).toBe(false);
    // Every checkpoint that is there is whole (hashes, step, tensors), and at least one was written before the disk filled.
    const steps = readdirSync(join(run, "checkpoints")).map((name) => Number(name.slice("step-".length)));
    expect(steps.length).toBeGreaterThan(0);
    for (const step of steps) expect(await inspectCheckpoint(join(run, "checkpoints", `step-${step}`), step)).toMatchObject({ ok: true });
    if (failed.stderr.includes("writing checkpoint step")) {
      expect(failed.stderr).toMatch(/it needs about \d+ bytes, \d+ bytes free/);
      expect(failed.stderr).toContain(`the last checkpoint, ${join(run, "checkpoints", `step-${Math.max(...steps)}`)}, is intact`);
    }

    // Room again: the run resumes from its newest checkpoint and finishes with the reference's adapter size.
    remount(disk, "64m");
    const resumed = await runCli(["train", join(tmp.path, "run.yaml"), "--resume"], env());
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`resuming from step ${Math.max(...steps)} `);
    expect(statSync(join(run, "adapter", "adapter_model.safetensors")).size).toBe(statSync(join(reference, "adapter", "adapter_model.safetensors")).size);
  }, 240_000);

  itNeeds(tmpfsNeed, "while exporting a merged model: exit 2 naming the path, and nothing of the export is left", async () => {
    const reference = join(tmp.path, "reference");
    const disk = join(tmp.path, "export-disk");
    // A merged model is at least the base's weights: half of them cannot fit.
    const weights = statSync(join(model, "model.safetensors")).size;
    expect(tryMount(disk, String(Math.max(4096, Math.floor(weights / 2 / 4096) * 4096)))).toBeNull();
    const out = join(disk, "merged");
    const result = await runCli(["export", reference, "--format", "merged", "--out", out], env());
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(new RegExp(`error: the disk holding ${disk}/\\S+ is full \\(ENOSPC\\)`));
    expect(result.stderr).not.toMatch(/this is a bug|\n\s+at /);
    expect(readdirSync(disk)).toEqual([]);
  }, 120_000);
});
