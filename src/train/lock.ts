import { readFile } from "node:fs/promises";
import { platform, arch } from "node:os";
import { join, relative } from "node:path";
import { z } from "zod";
import { packageVersionOf } from "../backend/load.js";
import { errnoCode, UserError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { sha256File } from "../io/hash.js";
import type { DataFile } from "../data/prepare.js";
import type { ModelSource } from "../hub/model-source.js";
import { minimatch } from "minimatch";
import { DEFAULT_MODEL_FILES } from "../hub/select-files.js";
import { listSnapshot } from "../hub/snapshot-files.js";
import { QUANTIZE_CHOICES } from "../model/quantize.js";
import type { Recipe } from "../recipe/schema.js";
import { trainLosses, type MetricsRow } from "./metrics.js";

export const LOCK_FILE = "run.lock.json";
export const LOCK_VERSION = 1;

const fileHash = z.object({ path: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/) });

/** run.lock.json: everything needed to re-run a training and check it gives the same adapter. */
export const runLockSchema = z.object({
  lock_version: z.number().int().positive(),
  finetune: z.string(),
  node: z.string(),
  platform: z.string(),
  /** The backend, and on wasm which matmul ran: different kernels round differently. */
  backend: z.object({ name: z.string(), tfjs: z.string().nullable(), matmul: z.string().nullable().default(null) }),
  model: z.object({
    repo: z.string().nullable(),
    /** Commit sha; null for a local folder, whose files' hashes pin it instead. */
    revision: z.string().nullable(),
    /** A local model folder, relative to the run directory. */
    path: z.string().nullable(),
    files: z.array(fileHash),
    /**
     * How the frozen base weights were stored (model.quantize): another format rounds the weights differently, so
     * reproduce loads them the same way. Locks written before the option existed stored float32: none.
     */
    quantize: z.enum(QUANTIZE_CHOICES).default("none"),
  }),
  data: z.array(fileHash.extend({ records: z.number().int().nonnegative(), role: z.enum(["train", "validation"]) })),
  recipe: z.record(z.string(), z.unknown()),
  seed: z.number().int(),
  train_losses: z.array(z.number()),
  adapter_sha256: z.string(),
});
export type RunLock = z.infer<typeof runLockSchema>;

export { sha256File };

/** Hashes of the files a model load reads (config, tokenizer, chat template, safetensors), symlinks followed. */
export async function modelFileHashes(dir: string): Promise<Array<{ path: string; sha256: string }>> {
  const files = (await listSnapshot(dir)).filter((path) => !path.includes("/") && DEFAULT_MODEL_FILES.some((pattern) => minimatch(path, pattern)));
  return Promise.all(files.map(async (path) => ({ path, sha256: await sha256File(join(dir, path)) })));
}

/** Writes run.lock.json into the run directory. Paths are relative to it; no token or home path is recorded. */
export async function writeRunLock(params: {
  output: string;
  version: string;
  backend: string;
  matmul: string | null;
  source: ModelSource;
  data: DataFile[];
  recipe: Recipe;
  metrics: MetricsRow[];
}): Promise<RunLock> {
  const { output, source } = params;
  const lock: RunLock = {
    lock_version: LOCK_VERSION,
    finetune: params.version,
    node: process.version,
    platform: `${platform()}-${arch()}`,
    backend: { name: params.backend, tfjs: packageVersionOf("@tensorflow/tfjs-core"), matmul: params.matmul },
    model: {
      repo: source.repo,
      revision: source.sha,
      path: source.repo === null ? relative(output, source.dir) || "." : null,
      files: await modelFileHashes(source.dir),
      quantize: params.recipe.model.quantize,
    },
    // Hub files are recorded by repo, commit and name (never as a path into someone's cache).
    data: params.data.map((f) => ({ path: f.pinned ?? relative(output, f.path), sha256: f.sha256, records: f.records, role: f.role })),
    // The output is the run directory itself; an absolute path would leak the user's folders.
    recipe: { ...params.recipe, output: "." } as unknown as Record<string, unknown>,
    seed: params.recipe.train.seed,
    train_losses: trainLosses(params.metrics),
    adapter_sha256: await sha256File(join(output, "adapter", "adapter_model.safetensors")),
  };
  await writeFileAtomic(join(output, LOCK_FILE), `${JSON.stringify(lock, null, 2)}\n`);
  return lock;
}

/** Reads and checks a lock file; a newer format version is refused with what to do. */
export async function readRunLock(path: string): Promise<RunLock> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    if (errnoCode(error) === "ENOENT") throw new UserError(`${path} does not exist; give the run.lock.json of a finished run.`);
    throw new UserError(`${path} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  const version = typeof raw === "object" && raw !== null && "lock_version" in raw ? raw.lock_version : undefined;
  if (typeof version === "number" && version > LOCK_VERSION) {
    throw new UserError(`${path} uses lock format version ${version}, newer than this finetune reads (${LOCK_VERSION}); upgrade finetune to reproduce it.`);
  }
  const parsed = runLockSchema.safeParse(raw);
  if (!parsed.success) {
    throw new UserError(`${path} is not a finetune run lock:\n${parsed.error.issues.slice(0, 5).map((i) => `  ${i.path.join(".")}: ${i.message}`).join("\n")}`);
  }
  return parsed.data;
}
