import { readdir, readFile } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import { z } from "zod";
import { errnoCode, UserError } from "../errors.js";
import type { SafetensorsDtype, TensorEntry } from "./safetensors-header.js";
import { openSafetensors, unknownTensorError } from "./safetensors-read.js";
import type { SafetensorsReader } from "./safetensors-read.js";

/** The weights of a model directory, one file or many shards, addressed by tensor name. */
export interface Checkpoint {
  /** Full paths of the safetensors files, in load order. */
  files: string[];
  names(): string[];
  entry(name: string): TensorEntry | undefined;
  readFloat32(name: string): Promise<Float32Array>;
  /** The tensor's raw bytes; into `into` (a view of its start) when it is large enough, else a new buffer. */
  readBytes(name: string, into?: Uint8Array): Promise<Uint8Array>;
  dtypeOf(name: string): SafetensorsDtype;
  close(): Promise<void>;
}

const INDEX_FILE = "model.safetensors.index.json";
const SINGLE_FILE = "model.safetensors";

const indexSchema = z.object({
  metadata: z.record(z.string(), z.unknown()).nullish(),
  weight_map: z.record(z.string(), z.string()),
});

/**
 * Opens the weights in `dir`: the sharded index if there is one, else model.safetensors, else the only
 * *.safetensors file. Pickle weights (*.bin, *.pt) are never loaded: they can run code.
 */
export async function openCheckpoint(dir: string): Promise<Checkpoint> {
  const present = await listDir(dir);
  if (present.includes(INDEX_FILE)) return openSharded(dir, present);
  if (present.includes(SINGLE_FILE)) return fromReaders(await openAll([join(dir, SINGLE_FILE)]), dir);
  const candidates = present.filter((f) => f.endsWith(".safetensors"));
  const only = candidates[0];
  if (only !== undefined && candidates.length === 1) return fromReaders(await openAll([join(dir, only)]), dir);
  if (candidates.length > 1) {
    throw new UserError(
      `${dir} has several safetensors files (${candidates.join(", ")}) but no ${INDEX_FILE} saying how they fit together`,
    );
  }
  throw noWeightsError(dir, present);
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (error) {
    const code = errnoCode(error);
    if (code === "ENOENT") throw new UserError(`no such model directory: ${dir}`);
    if (code === "ENOTDIR") throw new UserError(`${dir} is not a directory; give the model directory`);
    throw error;
  }
}

function noWeightsError(dir: string, present: string[]): UserError {
  const listing = present.length > 0 ? `it holds: ${present.join(", ")}` : "it is empty";
  const pickles = present.filter((f) => /\.(bin|pt|pth)$/.test(f));
  const advice =
    pickles.length > 0
      ? `. ${pickles.join(", ")} ${pickles.length === 1 ? "is" : "are"} pickle weights, which are never loaded ` +
        "(unpickling can run arbitrary code); look for a safetensors version of this model (often a refs/pr/N revision " +
        "or a separate repo)"
      : "";
  return new UserError(`no safetensors weights in ${dir} (${listing})${advice}`);
}

async function openSharded(dir: string, present: string[]): Promise<Checkpoint> {
  const indexPath = join(dir, INDEX_FILE);
  const index = parseIndex(await readFile(indexPath, "utf8"), indexPath);
  const shards = [...new Set(Object.values(index.weight_map))].sort();
  if (shards.length === 0) throw new UserError(`${indexPath} has an empty weight_map; download the model again`);
  for (const shard of shards) {
    if (shard === "" || isAbsolute(shard) || shard.includes("/") || shard.includes("\\") || shard.includes("..")) {
      throw new UserError(`${indexPath} names shard "${shard}"; shard names must be plain file names in the same directory`);
    }
    if (!present.includes(shard)) {
      throw new UserError(`${indexPath} names shard ${shard}, which is missing from ${dir}; download the model again`);
    }
  }
  const readers = await openAll(shards.map((s) => join(dir, s)));
  const byShard = new Map(shards.map((shard, i) => [shard, readers[i]]));
  for (const [name, shard] of Object.entries(index.weight_map)) {
    if (!byShard.get(shard)?.tensors.has(name)) {
      await closeAll(readers);
      throw new UserError(`${indexPath} maps tensor "${name}" to ${shard}, but ${shard} has no such tensor`);
    }
  }
  return fromReaders(readers, dir);
}

function parseIndex(text: string, indexPath: string): z.infer<typeof indexSchema> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new UserError(`${indexPath} is not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  const result = indexSchema.safeParse(json);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new UserError(`${indexPath} is not a valid safetensors index: ${problems.join("; ")}`);
  }
  return result.data;
}

/** Opens the files one by one, closing those already open if one fails. */
async function openAll(paths: string[]): Promise<SafetensorsReader[]> {
  const readers: SafetensorsReader[] = [];
  try {
    for (const path of paths) readers.push(await openSafetensors(path));
    return readers;
  } catch (error) {
    await closeAll(readers);
    throw error;
  }
}

async function fromReaders(readers: SafetensorsReader[], dir: string): Promise<Checkpoint> {
  const owner = new Map<string, SafetensorsReader>();
  for (const reader of readers) {
    for (const name of reader.tensors.keys()) {
      const other = owner.get(name);
      if (other) {
        await closeAll(readers);
        throw new UserError(`tensor "${name}" appears in both ${other.path} and ${reader.path}; the checkpoint is inconsistent`);
      }
      owner.set(name, reader);
    }
  }

  function readerOf(name: string): SafetensorsReader {
    const reader = owner.get(name);
    if (!reader) throw unknownTensorError(name, [...owner.keys()], dir);
    return reader;
  }

  return {
    files: readers.map((r) => r.path),
    names: () => [...owner.keys()],
    entry: (name) => owner.get(name)?.tensors.get(name),
    readFloat32: async (name) => readerOf(name).readFloat32(name),
    readBytes: async (name, into) => readerOf(name).readBytes(name, into),
    dtypeOf: (name) => {
      const entry = owner.get(name)?.tensors.get(name);
      if (!entry) throw unknownTensorError(name, [...owner.keys()], dir);
      return entry.dtype;
    },
    close: () => closeAll(readers),
  };
}

async function closeAll(readers: SafetensorsReader[]): Promise<void> {
  await Promise.all(readers.map((r) => r.close()));
}
