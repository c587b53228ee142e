import { open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { errnoCode, UserError } from "../errors.js";
import { bf16ToF32, f16ToF32, leBytesF64ToF32, leBytesToF32, leBytesToU16 } from "./dtype.js";
import { checkHeaderLength, parseSafetensorsHeader } from "./safetensors-header.js";
import type { TensorEntry } from "./safetensors-header.js";

export interface SafetensorsReader {
  path: string;
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
  /** F32/F16/BF16/F64 tensors as float32; any other dtype is a UserError. */
  readFloat32(name: string): Promise<Float32Array>;
  /** The tensor's raw little-endian bytes, in a fresh buffer. */
  /** The tensor's raw bytes; into `into` (a view of its start) when it is large enough, else a new buffer. */
  readBytes(name: string, into?: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** Node refuses single reads over 2 GiB, so huge tensors are read in pieces of this size. */
const MAX_READ = 1 << 30;

/**
 * Opens a safetensors file and validates its header. Tensor bytes are read only when asked for, one tensor
 * at a time, so a model is never held twice in memory.
 */
export async function openSafetensors(path: string): Promise<SafetensorsReader> {
  const handle = await openFile(path);
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new UserError(`${path} is not a file`);
    if (stat.size < 8) {
      throw new UserError(`${path}: only ${stat.size} bytes, too short for a safetensors file (8-byte header length first)`);
    }
    const prefix = await readAt(handle, 0, 8, path);
    const rawLength = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
    const headerLength = checkHeaderLength(rawLength, stat.size, path);
    const headerJson = await readAt(handle, 8, headerLength, path);
    const { tensors, metadata } = parseSafetensorsHeader(headerJson, headerLength, stat.size, path);
    return makeReader({ path, handle, dataStart: 8 + headerLength, tensors, metadata });
  } catch (error) {
    await handle.close();
    throw error;
  }
}

async function openFile(path: string): Promise<FileHandle> {
  try {
    return await open(path, "r");
  } catch (error) {
    const code = errnoCode(error);
    if (code === "ENOENT") throw new UserError(`no such file: ${path}`);
    if (code === "EACCES" || code === "EPERM") throw new UserError(`cannot read ${path}: permission denied`);
    throw error;
  }
}

function makeReader(params: {
  path: string;
  handle: FileHandle;
  dataStart: number;
  tensors: TensorEntry[];
  metadata: Record<string, string>;
}): SafetensorsReader {
  const { path, handle, dataStart, metadata } = params;
  const tensors = new Map(params.tensors.map((t) => [t.name, t]));
  let closed = false;

  function lookup(name: string): TensorEntry {
    const entry = tensors.get(name);
    if (!entry) throw unknownTensorError(name, [...tensors.keys()], path);
    return entry;
  }

  async function readBytes(name: string, into?: Uint8Array): Promise<Uint8Array> {
    const entry = lookup(name);
    if (closed) throw new Error(`${path} was read after close() (this is a bug)`);
    return readAt(handle, dataStart + entry.begin, entry.end - entry.begin, path, into);
  }

  async function readFloat32(name: string): Promise<Float32Array> {
    const entry = lookup(name);
    const { dtype } = entry;
    if (dtype !== "F32" && dtype !== "F16" && dtype !== "BF16" && dtype !== "F64") {
      throw new UserError(
        `${path}: tensor "${name}" has dtype ${dtype}, an unsupported dtype for weights (expected F32, F16, BF16 or F64)`,
      );
    }
    const bytes = await readBytes(name);
    if (dtype === "F32") return leBytesToF32(bytes);
    if (dtype === "F64") return leBytesF64ToF32(bytes);
    const halves = leBytesToU16(bytes);
    const out = new Float32Array(halves.length);
    if (dtype === "F16") f16ToF32(halves, out);
    else bf16ToF32(halves, out);
    return out;
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    await handle.close();
  }

  return { path, tensors, metadata, readFloat32, readBytes, close };
}

/** Reads exactly `length` bytes at `position` into a fresh buffer; a short read means the file is truncated. */
async function readAt(handle: FileHandle, position: number, length: number, path: string, into?: Uint8Array): Promise<Uint8Array> {
  const buffer = into && into.length >= length ? into.subarray(0, length) : new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, Math.min(length - done, MAX_READ), position + done);
    if (bytesRead === 0) {
      throw new UserError(
        `${path}: the file ended at byte ${position + done}, but the header promises data up to byte ${position + length}; ` +
          "the file is truncated: download it again",
      );
    }
    done += bytesRead;
  }
  return buffer;
}

/** "no tensor X", with the available names closest to X (longest shared prefix) as hints. */
export function unknownTensorError(name: string, available: string[], source: string): UserError {
  const shared = (other: string): number => {
    let i = 0;
    while (i < name.length && i < other.length && name[i] === other[i]) i++;
    return i;
  };
  const hints = available
    .map((candidate) => ({ candidate, score: shared(candidate) }))
    .sort((a, b) => b.score - a.score)
    .slice(0, 5)
    .map((h) => `"${h.candidate}"`);
  const more = available.length > hints.length ? `, … (${available.length} in all)` : "";
  const list = hints.length > 0 ? `; it has ${hints.join(", ")}${more}` : "; it has no tensors";
  return new UserError(`${source} has no tensor "${name}"${list}`);
}
