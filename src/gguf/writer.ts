import { writeAll, writeStreamAtomic } from "../io/atomic.js";
import { toLeBytes } from "../io/dtype.js";

/** A metadata value with its GGUF type (the type is part of the file: float32 and uint32 read differently). */
export type GgufValue =
  | { type: "string"; value: string }
  | { type: "uint32"; value: number }
  | { type: "int32"; value: number }
  | { type: "uint64"; value: bigint }
  | { type: "float32"; value: number }
  | { type: "float64"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "array"; itemType: "string"; value: readonly string[] }
  | { type: "array"; itemType: "int32" | "float32"; value: ArrayLike<number> };

/** The ggml tensor types we write (ggml.h's enum ggml_type numbers). */
export const GGML_TYPE = { F32: 0, F16: 1, Q8_0: 8, BF16: 30 } as const;
export type GgmlTypeName = keyof typeof GGML_TYPE;

/** Q8_0: blocks of 32 weights along a row, each an f16 scale then 32 int8 values (34 bytes). */
export const Q8_0_BLOCK = 32;
const Q8_0_BLOCK_BYTES = 34;

export interface GgufTensor {
  /** At most 63 UTF-8 bytes (llama.cpp's GGML_MAX_NAME is 64 with the terminating NUL). */
  name: string;
  /** Row-major (numpy/safetensors) order, outermost first; the file lists it reversed (ne0 = innermost). */
  shape: readonly number[];
  /** F32 when absent. */
  type?: GgmlTypeName;
  /**
   * The values, or a function that gives the tensor's bytes in its type when the file is written (called once,
   * in file order, so a large model is converted one tensor at a time). Float32Array data is F32 only.
   */
  data: Float32Array | (() => Promise<Uint8Array> | Uint8Array);
}

export interface GgufContents {
  /** Written in insertion order. */
  metadata: Record<string, GgufValue>;
  tensors: readonly GgufTensor[];
}

/** GGUF v3 ("GGUF" magic, little-endian). */
const MAGIC = new Uint8Array([0x47, 0x47, 0x55, 0x46]);
const VERSION = 3;
/** The spec's default when `general.alignment` is absent; we never write that key. */
export const GGUF_ALIGNMENT = 32;
const MAX_TENSOR_NAME_BYTES = 63;
const MAX_DIMS = 4;

const VALUE_TYPE = {
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  float64: 12,
} as const;

export interface GgufLayout {
  /** Header, metadata and tensor infos, zero-padded so tensor data starts aligned. */
  header: Uint8Array;
  /** Each tensor's data offset, relative to the start of the tensor data (so absolute = header.length + offset). */
  offsets: number[];
  /** Bytes of tensor data, each tensor padded to the alignment. */
  dataSize: number;
}

/**
 * Builds the bytes before the tensor data: header (magic, version, tensor count, KV count), the metadata,
 * then one info per tensor (name, dims innermost-first, type, offset), padded to the alignment.
 */
export function planGguf(contents: GgufContents): GgufLayout {
  const out = new ByteSink();
  const entries = Object.entries(contents.metadata);
  out.bytes(MAGIC);
  out.u32(VERSION);
  out.u64(BigInt(contents.tensors.length));
  out.u64(BigInt(entries.length));
  for (const [key, value] of entries) {
    checkKey(key);
    out.string(key);
    out.u32(VALUE_TYPE[value.type]);
    writeValue(out, value);
  }
  const seen = new Set<string>();
  const offsets: number[] = [];
  let offset = 0;
  for (const tensor of contents.tensors) {
    checkTensor(tensor, seen);
    out.string(tensor.name);
    out.u32(tensor.shape.length);
    for (const dim of [...tensor.shape].reverse()) out.u64(BigInt(dim));
    out.u32(GGML_TYPE[tensor.type ?? "F32"]);
    out.u64(BigInt(offset));
    offsets.push(offset);
    offset = alignUp(offset + tensorBytes(tensor));
  }
  out.zeros(alignUp(out.length) - out.length);
  return { header: out.toBytes(), offsets, dataSize: offset };
}

/** Bytes of a tensor's data in its type (unpadded). */
export function tensorBytes(tensor: Pick<GgufTensor, "shape" | "type" | "name">): number {
  const count = tensor.shape.reduce((n, d) => n * d, 1);
  switch (tensor.type ?? "F32") {
    case "F32":
      return count * 4;
    case "F16":
    case "BF16":
      return count * 2;
    case "Q8_0":
      return (count / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES;
  }
}

/** The whole file in memory: for tests and small files. */
export async function serializeGguf(contents: GgufContents): Promise<Uint8Array> {
  const { header, offsets, dataSize } = planGguf(contents);
  const out = new Uint8Array(header.length + dataSize);
  out.set(header, 0);
  for (const [i, tensor] of contents.tensors.entries()) out.set(await bytesOf(tensor), header.length + (offsets[i] ?? 0));
  return out;
}

/** Writes a GGUF file atomically (temp file in the same directory, then rename), one tensor at a time. */
export async function writeGguf(path: string, contents: GgufContents): Promise<void> {
  const { header } = planGguf(contents);
  await writeStreamAtomic(path, async (handle) => {
    await writeAll(handle, header, path);
    for (const tensor of contents.tensors) {
      const bytes = await bytesOf(tensor);
      await writeAll(handle, bytes, path);
      // Zero padding after every tensor, so the next one (and the file end) stays aligned, as gguf-py does.
      await writeAll(handle, new Uint8Array(alignUp(bytes.byteLength) - bytes.byteLength), path);
    }
  });
}

async function bytesOf(tensor: GgufTensor): Promise<Uint8Array> {
  const bytes = tensor.data instanceof Float32Array ? toLeBytes(tensor.data) : await tensor.data();
  const expected = tensorBytes(tensor);
  if (bytes.byteLength !== expected) throw new Error(`GGUF: tensor "${tensor.name}" gave ${bytes.byteLength} bytes, but ${tensor.type ?? "F32"} [${tensor.shape.join(", ")}] takes ${expected} (this is a bug)`);
  return bytes;
}

export function alignUp(n: number, alignment = GGUF_ALIGNMENT): number {
  return Math.ceil(n / alignment) * alignment;
}

function writeValue(out: ByteSink, v: GgufValue): void {
  switch (v.type) {
    case "string":
      return out.string(v.value);
    case "uint32":
      checkInt(v.value, 0, 2 ** 32 - 1, "uint32");
      return out.u32(v.value);
    case "int32":
      checkInt(v.value, -(2 ** 31), 2 ** 31 - 1, "int32");
      return out.i32(v.value);
    case "uint64":
      if (v.value < 0n || v.value >= 2n ** 64n) throw new Error(`GGUF: ${v.value} is not a uint64 (this is a bug)`);
      return out.u64(v.value);
    case "float32":
      return out.f32(v.value);
    case "float64":
      return out.f64(v.value);
    case "bool":
      return out.bytes(new Uint8Array([v.value ? 1 : 0]));
    case "array":
      // Item type, count, then the items without their own type tags.
      out.u32(VALUE_TYPE[v.itemType]);
      out.u64(BigInt(v.value.length));
      if (v.itemType === "string") {
        for (const item of v.value as readonly string[]) out.string(item);
      } else {
        const items = v.value as ArrayLike<number>;
        const bytes = new Uint8Array(items.length * 4);
        const view = new DataView(bytes.buffer);
        for (let i = 0; i < items.length; i++) {
          const item = items[i] ?? 0;
          if (v.itemType === "int32") {
            checkInt(item, -(2 ** 31), 2 ** 31 - 1, "int32");
            view.setInt32(i * 4, item, true);
          } else view.setFloat32(i * 4, item, true);
        }
        out.bytes(bytes);
      }
      return;
  }
}

function checkInt(value: number, min: number, max: number, type: string): void {
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`GGUF: ${value} is not a ${type} (this is a bug)`);
}

/** The spec: keys are ASCII, dot-separated, at most 65535 bytes. */
function checkKey(key: string): void {
  if (!/^[\x21-\x7e]+$/.test(key) || key.length > 65535) throw new Error(`GGUF: metadata key "${key}" is not a printable ASCII key (this is a bug)`);
}

function checkTensor(tensor: GgufTensor, seen: Set<string>): void {
  const nameBytes = new TextEncoder().encode(tensor.name).byteLength;
  if (nameBytes === 0 || nameBytes > MAX_TENSOR_NAME_BYTES) {
    throw new Error(`GGUF: tensor name "${tensor.name}" is ${nameBytes} bytes; llama.cpp reads 1 to ${MAX_TENSOR_NAME_BYTES} (this is a bug)`);
  }
  if (seen.has(tensor.name)) throw new Error(`GGUF: duplicate tensor name "${tensor.name}" (this is a bug)`);
  seen.add(tensor.name);
  const { shape } = tensor;
  if (shape.length < 1 || shape.length > MAX_DIMS || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new Error(`GGUF: tensor "${tensor.name}" has shape [${shape.join(", ")}]; GGUF takes 1 to ${MAX_DIMS} non-negative dims (this is a bug)`);
  }
  const count = shape.reduce((n, d) => n * d, 1);
  if (tensor.data instanceof Float32Array) {
    if ((tensor.type ?? "F32") !== "F32") throw new Error(`GGUF: tensor "${tensor.name}" is ${tensor.type} but was given float32 values (this is a bug)`);
    if (count !== tensor.data.length) {
      throw new Error(`GGUF: tensor "${tensor.name}" has shape [${shape.join(", ")}] (${count} elements) but ${tensor.data.length} values (this is a bug)`);
    }
  }
  // Q8_0 blocks run along the innermost dimension, so rows must be whole blocks.
  if (tensor.type === "Q8_0" && (shape.at(-1) ?? 0) % Q8_0_BLOCK !== 0) {
    throw new Error(`GGUF: tensor "${tensor.name}" has rows of ${shape.at(-1)} values; Q8_0 needs a multiple of ${Q8_0_BLOCK} (this is a bug)`);
  }
}

/** Little-endian fields collected as small parts and joined once (headers are small; no resizing to get wrong). */
class ByteSink {
  private parts: Uint8Array[] = [];
  length = 0;

  private field(size: number, write: (view: DataView) => void): void {
    const part = new Uint8Array(size);
    write(new DataView(part.buffer));
    this.bytes(part);
  }

  bytes(b: Uint8Array): void {
    this.parts.push(b);
    this.length += b.byteLength;
  }
  zeros(n: number): void {
    this.bytes(new Uint8Array(n));
  }
  u32(v: number): void {
    this.field(4, (d) => d.setUint32(0, v, true));
  }
  i32(v: number): void {
    this.field(4, (d) => d.setInt32(0, v, true));
  }
  u64(v: bigint): void {
    this.field(8, (d) => d.setBigUint64(0, v, true));
  }
  f32(v: number): void {
    this.field(4, (d) => d.setFloat32(0, v, true));
  }
  f64(v: number): void {
    this.field(8, (d) => d.setFloat64(0, v, true));
  }
  /** GGUF string: uint64 byte length, then UTF-8 bytes without a terminator. */
  string(s: string): void {
    const bytes = new TextEncoder().encode(s);
    this.u64(BigInt(bytes.byteLength));
    this.bytes(bytes);
  }
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const part of this.parts) {
      out.set(part, at);
      at += part.byteLength;
    }
    return out;
  }
}

