import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackend } from "../../../src/backend/load.js";
import type { Tf } from "../../../src/model/types.js";
import { RuntimeFailure } from "../../../src/errors.js";
import { assertFiniteValidation, nonFiniteTensors } from "../../../src/train/divergence.js";
import { readMetrics, trainLosses } from "../../../src/train/metrics.js";
import { removeStaleTemps } from "../../../src/train/stale-temps.js";
import { tempDir } from "../../helpers/run-cli.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());
let tf: Tf;
beforeAll(async () => {
  tf = (await loadBackend({ forced: "cpu" })).tf;
});

const train = (step: number, loss: number) => JSON.stringify({ type: "train", step, loss, lr: 0.01, grad_norm: 1, tokens: 10, tokens_per_second: 100, elapsed: step });

describe("readMetrics", () => {
  it("keeps only well-formed rows in step order: junk, cut lines, wrong types and repeated steps never reach the lock", async () => {
    const path = join(tmp.path, "metrics.jsonl");
    writeFileSync(
      path,
      [
        train(1, 3),
        "not json",
        JSON.stringify({ type: "train", step: 2, loss: "low" }),
        JSON.stringify({ type: "train", step: 2, loss: null, lr: 0.01, grad_norm: 1, tokens: 10, tokens_per_second: 1, elapsed: 1 }),
        train(2, 2.5),
        JSON.stringify({ type: "eval", step: 2, val_loss: 2.7, val_perplexity: Math.exp(2.7) }),
        train(2, 99),
        JSON.stringify({ type: "other", step: 3 }),
        train(3, 2),
        JSON.stringify({ type: "eval", step: 3, val_loss: 800, val_perplexity: Math.exp(800) }),
        '{"type":"train","step":4,"lo',
      ].join("\n"),
    );
    const rows = await readMetrics(path);
    expect(trainLosses(rows)).toEqual([3, 2.5, 2]);
    expect(rows.map((r) => `${r.type}:${r.step}`)).toEqual(["train:1", "train:2", "eval:2", "train:3", "eval:3"]);
    expect(rows.at(-1)).toEqual({ type: "eval", step: 3, val_loss: 800, val_perplexity: Number.POSITIVE_INFINITY });
    expect(trainLosses(await readMetrics(path, 2))).toEqual([3, 2.5]);
  });

  it("keeps peak_rss_mb (and peak_memory_mb) of train and eval rows, so a resume rewrites them unchanged", async () => {
    const path = join(tmp.path, "metrics-rss.jsonl");
    const first = { type: "train", step: 1, loss: 3, lr: 0.01, grad_norm: 1, tokens: 10, tokens_per_second: 100, elapsed: 1, peak_memory_mb: 24, peak_rss_mb: 154 };
    const evaluation = { type: "eval", step: 1, val_loss: 2.5, val_perplexity: Math.exp(2.5), peak_rss_mb: 160 };
    writeFileSync(path, [first, evaluation, { ...first, step: 2, peak_rss_mb: "a lot" }].map((row) => JSON.stringify(row)).join("\n"));
    // A row whose peak_rss_mb is not a number is junk like any other malformed row.
    expect(await readMetrics(path)).toEqual([first, evaluation]);
  });
});

describe("removeStaleTemps", () => {
  it("removes temp files and folders of dead finetune processes only, in the run folder and checkpoints/", async () => {
    const run = join(tmp.path, "run");
    mkdirSync(join(run, "checkpoints", "step-4"), { recursive: true });
    // A pid that existed and has exited: a process we ran and waited for.
    const dead = spawnSync(process.execPath, ["-e", "0"]).pid;
    expect(dead).toBeGreaterThan(0);
    const deadTemps = [`metrics.jsonl.tmp-${dead}-0a1b2c3d`, `adapter.tmp-${dead}-deadbeef`, join("checkpoints", `step-8.tmp-${dead}-01234567`)];
    for (const name of deadTemps) mkdirSync(join(run, name), { recursive: true });
    writeFileSync(join(run, `loss.svg.tmp-${dead}-89abcdef`), "partial");
    const kept = [`run.lock.json.tmp-${process.ppid}-0a1b2c3d`, "notes.tmp-12-xyz", "data.tmp-1-0a1b2c3", "metrics.jsonl"];
    for (const name of kept) writeFileSync(join(run, name), "keep");
    const removed = await removeStaleTemps(run, (pid) => pid !== dead);
    expect(removed.map((p) => p.slice(run.length + 1)).sort()).toEqual([...deadTemps, `loss.svg.tmp-${dead}-89abcdef`].sort());
    expect(readdirSync(run).sort()).toEqual([...kept, "checkpoints"].sort());
    expect(readdirSync(join(run, "checkpoints"))).toEqual(["step-4"]);
    // the real liveness check: the test runner's parent is alive, the exited child is not
    const again = join(tmp.path, "again");
    mkdirSync(again);
    writeFileSync(join(again, `a.tmp-${dead}-00000000`), "");
    writeFileSync(join(again, `b.tmp-${process.ppid}-00000000`), "");
    expect((await removeStaleTemps(again)).map((p) => p.slice(again.length + 1))).toEqual([`a.tmp-${dead}-00000000`]);
    expect(existsSync(join(again, `b.tmp-${process.ppid}-00000000`))).toBe(true);
    expect(await removeStaleTemps(join(tmp.path, "absent"))).toEqual([]);
  });
});

describe("nonFiniteTensors", () => {
  it("names exactly the tensors with NaN or ±Infinity", async () => {
    const tensors = [
      { name: "ok", tensor: tf.tensor1d([1, -2, 3e38]) },
      { name: "nan", tensor: tf.tensor1d([0, Number.NaN]) },
      { name: "inf", tensor: tf.tensor2d([[1, Number.NEGATIVE_INFINITY]]) },
      { name: "zero", tensor: tf.zeros([2, 2]) },
    ];
    expect(await nonFiniteTensors(tf, tensors)).toEqual(["nan", "inf"]);
    expect(await nonFiniteTensors(tf, [])).toEqual([]);
    for (const { tensor } of tensors) tensor.dispose();
  });
});

describe("assertFiniteValidation", () => {
  it("passes a finite loss and stops a NaN one with exit 1, naming the step, losses and the checkpoint kept", () => {
    const context = { step: 12, lr: 0.01, weightDecay: 0, lastCheckpoint: 8, trainLoss: 2.5 };
    expect(() => assertFiniteValidation(3.25, context)).not.toThrow();
    let caught: unknown;
    try {
      assertFiniteValidation(Number.NaN, context);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(RuntimeFailure);
    expect((caught as Error).message).toBe(
      "the validation loss became NaN at step 12 (training loss 2.5000, lr 1.000e-2): the model diverged on held-out data. This step was not saved; checkpoints/step-8 is the last good checkpoint and is intact. Start again with a lower train.lr (--overwrite or a new --output).",
    );
  });
});
