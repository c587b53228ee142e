// Random-weight BF16 checkpoints with real shapes, written once into a cache outside the repo and reused.
// Written the way the Hugging Face hub ships them (model-0000k-of-0000n.safetensors shards + index), streaming:
// a 3B checkpoint is 6.4 GB, so no tensor — let alone the model — is ever built whole in memory.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statfsSync, writeFileSync, writeSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { f32ToBf16, toLeBytes } from "../dist/io/dtype.js";
import { BIG_MODELS, llamaTensors } from "./llama-shapes.js";
import { writeTinyTokenizer } from "./tiny-tokenizer.js";

/** Like transformers' save_pretrained(max_shard_size=...): a new shard starts before one would pass this. */
const MAX_SHARD_BYTES = 2e9;
/** Written last: a folder without it (an interrupted write) is written again. Bump WRITER to invalidate caches. */
const MARKER = "finetune-bench-complete.json";
const WRITER = 1;
/** Elements per write; the random pool holds two of these. */
const CHUNK = 1 << 22;
const STD = 0.02;

export function benchCacheDir() {
  return process.env.FINETUNE_BENCH_CACHE || join(homedir(), ".cache", "finetune-bench");
}

/** The model's folder in the cache, written first if it is missing, incomplete or from another config. */
export function ensureCheckpoint(name, log = () => {}) {
  const model = BIG_MODELS[name];
  if (!model) throw new Error(`unknown bench model "${name}" (one of ${Object.keys(BIG_MODELS).join(", ")})`);
  const dir = join(benchCacheDir(), name);
  const expected = JSON.stringify({ writer: WRITER, config: model.config });
  const markerPath = join(dir, MARKER);
  if (existsSync(markerPath) && readFileSync(markerPath, "utf8") === expected) return { dir, written: false };
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const tensors = llamaTensors(model.config);
  const total = tensors.reduce((n, t) => n + 2 * count(t.shape), 0);
  const free = freeBytes(dir);
  if (free !== null && free < total * 1.05) {
    throw new Error(`writing the ${model.label}-shaped checkpoint needs ${gb(total)} GB in ${dir} but only ${gb(free)} GB are free; set FINETUNE_BENCH_CACHE to a folder on a larger disk`);
  }
  log(`writing a random-weight ${model.label}-shaped checkpoint (${total >= 1e8 ? `${gb(total)} GB` : `${(total / 1e6).toFixed(1)} MB`} BF16) into ${dir} (once; later runs reuse it)`);
  writeFileSync(join(dir, "config.json"), JSON.stringify(model.config, null, 2));
  writeShards(dir, tensors);
  writeTinyTokenizer(dir, model.config.vocab_size);
  writeFileSync(markerPath, expected);
  return { dir, written: true };
}

/** Splits the tensors into shards in order, writes each, and the index naming every tensor's shard. */
function writeShards(dir, tensors) {
  const shards = [[]];
  let size = 0;
  for (const t of tensors) {
    const bytes = 2 * count(t.shape);
    if (size > 0 && size + bytes > MAX_SHARD_BYTES) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(t);
    size += bytes;
  }
  const pad = (n) => String(n).padStart(5, "0");
  const files = shards.map((_, i) => (shards.length === 1 ? "model.safetensors" : `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`));
  const random = randomSource(1);
  shards.forEach((shard, i) => writeShard(join(dir, files[i]), shard, random));
  if (shards.length > 1) {
    const weightMap = Object.fromEntries(shards.flatMap((shard, i) => shard.map((t) => [t.name, files[i]])));
    const totalSize = tensors.reduce((n, t) => n + 2 * count(t.shape), 0);
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2));
  }
}

/** One safetensors file: u64 LE header length, the header JSON space-padded to 8 bytes, then the tensors' bytes. */
function writeShard(path, tensors, random) {
  const header = { __metadata__: { format: "pt" } };
  let offset = 0;
  for (const t of tensors) {
    const bytes = 2 * count(t.shape);
    header[t.name] = { dtype: "BF16", shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const head = Buffer.alloc(8 + Buffer.byteLength(json));
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)), 0);
  head.write(json, 8);
  const fd = openSync(path, "w");
  try {
    writeFully(fd, head);
    for (const t of tensors) {
      let left = count(t.shape);
      if (t.norm) {
        writeFully(fd, random.ones(left));
        continue;
      }
      while (left > 0) {
        const n = Math.min(left, CHUNK);
        writeFully(fd, random.chunk(n));
        left -= n;
      }
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * normal·0.02 values in BF16 bytes. Drawing 3.2 billion Gaussians in JS would take minutes per checkpoint, so a
 * pool of 2·CHUNK seeded draws is made once and each chunk is a window at a random offset into it: the bench
 * measures speed and memory, for which the values only need the right scale (activations stay finite).
 */
function randomSource(seed) {
  const rand = mulberry32(seed);
  const pool = new Float32Array(2 * CHUNK);
  for (let i = 0; i < pool.length; i += 1) pool[i] = STD * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const bytes = bf16Bytes(pool);
  return {
    chunk: (n) => {
      const start = 2 * Math.floor(rand() * CHUNK);
      return bytes.subarray(start, start + 2 * n);
    },
    ones: (n) => bf16Bytes(new Float32Array(n).fill(1)),
  };
}

function bf16Bytes(values) {
  const bytes = toLeBytes(f32ToBf16(values));
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function writeFully(fd, buffer) {
  for (let at = 0; at < buffer.length; ) at += writeSync(fd, buffer, at, buffer.length - at);
}

/** mulberry32: small, fast and seeded, as the test fixtures use. */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function freeBytes(dir) {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return null;
  }
}

const count = (shape) => shape.reduce((a, b) => a * b, 1);
const gb = (bytes) => (bytes / 1e9).toFixed(1);
