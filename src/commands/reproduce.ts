import { readdir, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { checkQuantizeSupport } from "../backend/quantize-support.js";
import type { CommandContext } from "../context.js";
import { errnoCode, RuntimeFailure, UserError } from "../errors.js";
import { resolveModelSource } from "../hub/model-source.js";
import { checkOutputPath, shortPath } from "../io/output-path.js";
import { resolveToken } from "../hub/token.js";
import { recipeSchema } from "../recipe/schema.js";
import { LOCK_FILE, modelFileHashes, readRunLock, sha256File } from "../train/lock.js";
import { checkDataAgainstLock } from "../train/lock-data.js";
import { readMetrics, trainLosses } from "../train/metrics.js";
import { RUN_DIR_RESERVE } from "../train/run-dir.js";
import { runTraining } from "../train/run-training.js";
import { transferProgress } from "../ui/transfer-progress.js";

/**
 * `finetune reproduce <run | run.lock.json> [--output <dir>] [--overwrite]`: checks the pinned data and model files, re-runs the
 * training, and compares the new adapter's sha256 (same backend) or the losses (another backend).
 */
export async function run(context: CommandContext, args: string[], options: { output?: string; overwrite?: boolean }): Promise<void> {
  const { reporter } = context;
  const given = resolve(args[0] ?? "");
  // A run directory stands for its lock file.
  const lockPath = (await stat(given).then((s) => s.isDirectory(), () => false)) ? join(given, LOCK_FILE) : given;
  const lock = await readRunLock(lockPath);
  const runDir = dirname(lockPath);
  // The run's storage format, needed to reproduce it: refused now, before anything is checked, pulled or trained.
  const quantizeSetBy = { setBy: `${shortPath(lockPath)} model.quantize`, lock: true };
  checkQuantizeSupport({ quantize: lock.model.quantize, ...quantizeSetBy, env: context.env });
  // Checked before anything is downloaded or trained; the advice names this command's flags, not train's.
  const output = resolve(options.output ?? `${runDir}-reproduce`);
  if (output === runDir) throw new UserError(`--output ${shortPath(output)} is the run being reproduced; give a new directory for the re-run.`);
  await checkOutputPath({ path: output, flag: "--output", kind: "directory", reserve: RUN_DIR_RESERVE });
  if (!options.overwrite && (await readdir(output).then((entries) => entries.length > 0, () => false))) {
    throw new UserError(`${shortPath(output)} is not empty (an earlier re-run?); add --overwrite to replace it, or give --output <dir> for a new directory.`);
  }

  // 1. The data must be byte-identical to what the run trained on.
  for (const file of lock.data) {
    // Hub files are pinned by commit in the recipe and checksum-verified when pulled again.
    if (file.path.startsWith("datasets/") && /@[0-9a-f]{40}\//.test(file.path)) continue;
    const path = resolve(runDir, file.path);
    const actual = await sha256File(path).catch((error: unknown) => {
      if (errnoCode(error) === "ENOENT") throw new UserError(`data file ${path} (pinned in ${lockPath}) is missing; put it back to reproduce the run.`);
      throw error;
    });
    if (actual !== file.sha256) {
      throw new UserError(`data file ${path} has changed since the run (sha256 ${actual.slice(0, 12)}…, the lock pins ${file.sha256.slice(0, 12)}…); reproduce refuses to train on different data. Restore the file or train a new run.`);
    }
  }

  // 2. Exactly the pinned model revision (pulled if not cached), with the same files.
  const model = lock.model.repo ? `${lock.model.repo}@${lock.model.revision ?? "main"}` : resolve(runDir, lock.model.path ?? ".");
  const progress = transferProgress(reporter);
  const source = await resolveModelSource({ model, env: context.env, token: resolveToken({ env: context.env }).token, signal: context.signal, onEvent: progress.onEvent }).finally(() => progress.finish());
  const hashes = new Map((await modelFileHashes(source.dir)).map((f) => [f.path, f.sha256]));
  for (const file of lock.model.files) {
    if (hashes.get(file.path) !== file.sha256) {
      throw new UserError(`model file ${file.path} in ${source.dir} differs from the one the run used (${hashes.has(file.path) ? "different sha256" : "missing"}); reproduce needs the pinned files.`);
    }
  }

  // 3. Train again with the locked recipe; data paths in it are relative to the original run directory.
  // The weights stored as the run stored them (same format ⇒ same bytes); an older lock without it means none.
  const parsed = recipeSchema.safeParse({ ...lock.recipe, model: { name: model, quantize: lock.model.quantize }, output });
  if (!parsed.success) throw new UserError(`${lockPath}: its recipe is not valid for this finetune version (${parsed.error.issues[0]?.message ?? ""}).`);
  const result = await runTraining({ context, recipe: parsed.data, baseDir: runDir, resume: false, overwrite: options.overwrite ?? false, resumeHint: `finetune train ${join(output, "recipe.resolved.yaml")} --resume`, quantizeSetBy, checkData: (files) => checkDataAgainstLock({ lock, lockPath, runDir, files }) });

  // 4. Compare: the adapter bytes on the same backend; the losses on another.
  const sameBackend = result.backend === lock.backend.name && result.matmul === lock.backend.matmul;
  const match = result.adapter_sha256 === lock.adapter_sha256;
  const losses = trainLosses(await readMetrics(join(output, "metrics.jsonl")));
  const maxLossDifference = losses.reduce((max, loss, i) => Math.max(max, Math.abs(loss - (lock.train_losses[i] ?? Number.NaN))), 0);
  reporter.result(
    { match, quantize: lock.model.quantize, adapter_sha256: result.adapter_sha256, expected_sha256: lock.adapter_sha256, output, backend: result.backend, expected_backend: lock.backend.name, matmul: result.matmul, expected_matmul: lock.backend.matmul, max_loss_difference: maxLossDifference },
    (c) =>
      match
        ? `${c.green("✓")} reproduced: the adapter is byte-identical (sha256 ${result.adapter_sha256.slice(0, 16)}…) · ${output}`
        : sameBackend
          ? `${c.red("✗")} the adapter differs (sha256 ${result.adapter_sha256.slice(0, 16)}… vs ${lock.adapter_sha256.slice(0, 16)}…) on the same backend · ${output}`
          : `different backend or matmul (${result.backend}/${result.matmul ?? "-"}, the run used ${lock.backend.name}/${lock.backend.matmul ?? "-"}): adapters differ by float rounding; largest loss difference ${maxLossDifference.toExponential(2)} · ${output}`,
  );
  if (!match && sameBackend) throw new RuntimeFailure(`the re-run on ${result.backend} produced a different adapter; this should not happen — please report it with both run directories.`);
}
