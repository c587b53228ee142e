import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { pinModel } from "../../../src/handoff/pin-model.js";
import { tempDir } from "../../helpers/run-cli.js";
import { cacheTinyModel, SHA } from "./cache-fixture.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const OTHER = "fedcba9876543210fedcba9876543210fedcba98";

describe("pinning the recipe's model to a commit, offline", () => {
  const cache = join(tmp.path, "hub");
  const env = { HF_HUB_CACHE: cache };
  cacheTinyModel(cache, "org/cached");
  cacheTinyModel(cache, "org/locked", { sha: OTHER, ref: null });
  cacheTinyModel(cache, "org/nosnap", { ref: null });

  it("pins by the cache's ref for the named revision", async () => {
    const pinned = await pinModel({ name: "org/cached", baseDir: tmp.path, output: join(tmp.path, "run"), env });
    expect(pinned).toEqual({ kind: "hub", repo: "org/cached", sha: SHA, dir: join(cache, "models--org--cached", "snapshots", SHA), pinnedBy: "cache" });
  });

  it("pins by a sha written in the recipe", async () => {
    const pinned = await pinModel({ name: `org/nosnap@${SHA}`, baseDir: tmp.path, output: join(tmp.path, "run"), env });
    expect(pinned).toMatchObject({ kind: "hub", repo: "org/nosnap", sha: SHA, pinnedBy: "recipe" });
  });

  it("pins by the run.lock.json in the recipe's output folder", async () => {
    const run = join(tmp.path, "locked-run");
    mkdirSync(run, { recursive: true });
    const lock = { lock_version: 1, finetune: "0.1.0", node: "v20", platform: "linux-x64", backend: { name: "cpu", tfjs: null }, model: { repo: "org/locked", revision: OTHER, path: null, files: [] }, data: [], recipe: {}, seed: 1, train_losses: [], adapter_sha256: "x" };
    writeFileSync(join(run, "run.lock.json"), JSON.stringify(lock));
    const pinned = await pinModel({ name: "org/locked", baseDir: tmp.path, output: run, env });
    expect(pinned).toMatchObject({ kind: "hub", repo: "org/locked", sha: OTHER, pinnedBy: "lock" });
    // A lock written for another reference of the repo does not pin this one.
    writeFileSync(join(run, "run.lock.json"), JSON.stringify({ ...lock, recipe: { model: { name: "org/locked@v1", quantize: "none" } } }));
    await expect(pinModel({ name: "org/locked", baseDir: tmp.path, output: run, env })).rejects.toThrow("model org/locked cannot be pinned to a commit");
    writeFileSync(join(run, "run.lock.json"), JSON.stringify({ ...lock, recipe: { model: { name: "org/locked", quantize: "none" } } }));
    expect(await pinModel({ name: "org/locked", baseDir: tmp.path, output: run, env })).toMatchObject({ sha: OTHER, pinnedBy: "lock" });
  });

  it("takes a local folder as it is (no commit)", async () => {
    const dir = join(tmp.path, "folder-model");
    mkdirSync(dir, { recursive: true });
    expect(await pinModel({ name: "./folder-model", baseDir: tmp.path, output: join(tmp.path, "run"), env })).toEqual({ kind: "local", dir });
  });

  it("refuses a model it cannot pin, saying how to pin it", async () => {
    await expect(pinModel({ name: "org/unknown", baseDir: tmp.path, output: join(tmp.path, "run"), env })).rejects.toThrow(
      `model org/unknown cannot be pinned to a commit: the recipe names no commit sha, no run.lock.json of a run of it names org/unknown, and org/unknown@main is not in the cache at ${cache}. Run \`finetune pull org/unknown\` (it records the commit), or write model: org/unknown@<commit sha>, then export again.`,
    );
  });

  it("refuses a pinned commit whose snapshot is not cached", async () => {
    await expect(pinModel({ name: `org/cached@${OTHER}`, baseDir: tmp.path, output: join(tmp.path, "run"), env })).rejects.toThrow(
      `model org/cached is pinned to ${OTHER} (by the recipe), but that snapshot is not in the cache at ${cache}; export-recipe reads its tokenizer and chat template to convert the data as train does. Run \`finetune pull org/cached@${OTHER}\`, then export again.`,
    );
  });
});
