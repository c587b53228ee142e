import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { filesOf, startHubServer, type HubServer } from "../helpers/hub-server.js";
import { cleanEnv, runCli, tempDir, type CliResult } from "../helpers/run-cli.js";
import { writeTinyCheckpoint } from "../helpers/tiny-checkpoint.js";

// Attacks on every flag that names an output path: each is refused with exit 2 and a short message before any
// model is loaded or anything is downloaded (the fake hub sees no request), and a huge path is never echoed.
const tmp = tempDir("finetune-outpaths-");
let hub: HubServer;
let run: string;
const env = () => cleanEnv({ HOME: tmp.path, HF_ENDPOINT: hub.url, HF_HUB_CACHE: join(tmp.path, "cache") });
const recipe = () => join(tmp.path, "recipe.yaml");

const LONG_NAME = join(tmp.path, "n".repeat(300));
const HUGE_ARG = join(tmp.path, "h".repeat(100_000));
const BAD = [
  ["a 300-character name", LONG_NAME, /the name "n{60}…n{40} \(300 characters\)" is 300 bytes; file systems allow at most 255 per name/],
  ["/sys/x", "/sys/x", /cannot create --\S+ \/sys\/x: \/sys does not accept new files \((EACCES|EROFS|EPERM)/],
  ["/dev/null/x", "/dev/null/x", /cannot use --\S+ \/dev\/null\/x \(ENOTDIR: a part of it is a file, not a folder\)/],
  ["a /proc path (where Node's recursive mkdir spins)", "/proc/finetune-attack/run", /cannot create --\S+ \/proc\/finetune-attack\/run: \/proc does not accept new files \((ENOENT|EACCES)\)/],
  ["a 100 KB path", HUGE_ARG, /h+…h{40} \(100\d{3} characters\) is too long: a path may have at most 4096 bytes/],
] as const;

/** Exit 2, the message, a short answer, no stack, and no request to the hub since `before`. */
function expectRefused(result: CliResult, message: RegExp, before: number): void {
  expect(result.code, result.stderr.slice(0, 2000)).toBe(2);
  expect(result.stderr).toMatch(message);
  expect(result.stderr.length + result.stdout.length).toBeLessThan(1500);
  expect(result.stderr).not.toMatch(/this is a bug|\n\s+at /);
  expect(hub.requests.length).toBe(before);
}

beforeAll(async () => {
  const llama = join(tmp.path, "src-llama");
  writeTinyCheckpoint(llama, { kind: "llama", seed: 31 });
  hub = await startHubServer([{ name: "tiny/llama", commits: [{ files: filesOf(llama) }] }]);
  writeFileSync(join(tmp.path, "t.jsonl"), `${["a b c d", "e f g h", "i j k l"].map((text) => JSON.stringify({ text })).join("\n")}\n`);
  writeFileSync(recipe(), `model: tiny/llama\ndata:\n  train: t.jsonl\n  validation: 0\ntrain:\n  max_steps: 2\n  batch_size: 2\n  max_seq_len: 32\noutput: ${join(tmp.path, "run")}\n`);
  run = join(tmp.path, "run");
  const trained = await runCli(["train", recipe()], env());
  expect(trained.code, trained.stderr).toBe(0);
});
afterAll(async () => {
  await hub.close();
  tmp.cleanup();
});

describe("bad output paths are refused first: exit 2, a short message, nothing loaded or downloaded", () => {
  it.each(BAD)("train --output: %s", async (_name, path, message) => {
    const before = hub.requests.length;
    const result = await runCli(["train", recipe(), "--output", path], env());
    expectRefused(result, message, before);
    expect(result.stderr).not.toContain("model:");
    if (path.startsWith(tmp.path)) expect(existsSync(path)).toBe(false);
  });

  it("train: a 100 KB output through --set, and a recipe file whose output: is 50 MB", async () => {
    const before = hub.requests.length;
    const viaSet = await runCli(["train", recipe(), "--set", `output=${HUGE_ARG}`], env());
    expectRefused(viaSet, /--output \S{60}…h{40} \(100\d{3} characters\) is too long/, before);
    const big = join(tmp.path, "big.yaml");
    writeFileSync(big, `model: tiny/llama\ndata:\n  train: t.jsonl\n  validation: 0\ntrain:\n  max_steps: 2\noutput: ${"o".repeat(50_000_000)}\n`);
    const viaFile = await runCli(["train", big, "--json"], env());
    expectRefused(viaFile, /o{40} \(500\d{5} characters\) is too long: a path may have at most 4096 bytes \(less 128 for the files finetune writes inside it\)/, before);
    // A 100 KB unknown key in --set is shown cut as well.
    const key = await runCli(["train", recipe(), "--set", `train.${"k".repeat(100_000)}=1`], env());
    expectRefused(key, /train\.k+…k{40} \(100006 characters\): unknown key; known keys here: max_steps, .* \(from --set train\.k+…k{40} \(100006 characters\)\)\n$/, before);
  });

  it.each(BAD)("reproduce --output: %s (before the data is hashed or the model pulled)", async (_name, path, message) => {
    const before = hub.requests.length;
    expectRefused(await runCli(["reproduce", run, "--output", path], env()), message, before);
  });

  it.each(BAD)("export --out: %s (before the base model is pulled)", async (_name, path, message) => {
    const before = hub.requests.length;
    expectRefused(await runCli(["export", run, "--format", "merged", "--out", path], env()), message, before);
  });

  it.each(BAD)("pull --cache-dir: %s (before anything is downloaded)", async (_name, path, message) => {
    const before = hub.requests.length;
    expectRefused(await runCli(["pull", "tiny/llama", "--cache-dir", path], env()), message, before);
  });

  it.each(BAD)("init --out: %s", async (_name, path, message) => {
    const before = hub.requests.length;
    expectRefused(await runCli(["init", "--model", "tiny/llama", "--out", path], env(), { cwd: tmp.path }), message, before);
  });

  it("a good nested path still works everywhere: init and export create the missing folders", async () => {
    const initOut = join(tmp.path, "new", "deep", "recipe.yaml");
    const init = await runCli(["init", "--model", "tiny/llama", "--out", initOut], env(), { cwd: tmp.path });
    expect(init.code, init.stderr).toBe(0);
    expect(existsSync(initOut)).toBe(true);
    const exportOut = join(tmp.path, "exports", "a", "peft");
    const before = hub.requests.length;
    const exported = await runCli(["export", run, "--format", "peft", "--out", exportOut], env());
    expect(exported.code, exported.stderr).toBe(0);
    // A command that gets past the path checks does ask the hub, so "no request" above is real evidence.
    expect(hub.requests.length).toBeGreaterThan(before);
    expect(readdirSync(exportOut).sort()).toEqual(["README.md", "adapter_config.json", "adapter_model.safetensors"]);
    // The probe file is never left behind.
    mkdirSync(join(tmp.path, "empty-out"));
    const refusedRun = await runCli(["train", recipe(), "--output", join(tmp.path, "empty-out"), "--resume"], env());
    expect(refusedRun.code).toBe(2);
    expect(readdirSync(join(tmp.path, "empty-out"))).toEqual([]);
  });
});
