import { writeAll, writeStreamAtomic } from "./atomic.js";
import { f32ToBf16, f32ToF16, toLeBytes } from "./dtype.js";
import { DTYPE_SIZE } from "./safetensors-header.js";

export interface TensorToWrite {
  name: string;
  /** The stored dtype; `data` is converted to it (round to nearest even). */
  dtype: "F32" | "F16" | "BF16";
  shape: number[];
  data: Float32Array;
}

/**
 * Writes a safetensors file atomically (temp file + rename), one tensor at a time, so the converted model is
 * never built as one buffer. Tensors are laid out sorted by name.
 */
export async function writeSafetensors(path: string, tensors: TensorToWrite[], metadata?: Record<string, string>): Promise<void> {
  const { header, ordered } = planLayout(tensors, metadata);
  await writeStreamAtomic(path, async (handle) => {
    await writeAll(handle, header, path);
    for (const tensor of ordered) await writeAll(handle, encodeTensor(tensor), path);
  });
}

/** The whole file in memory: for tests and small files. */
export function serializeSafetensors(tensors: TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const { header, ordered } = planLayout(tensors, metadata);
  const parts = [header, ...ordered.map(encodeTensor)];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

/** Checks the tensors and builds the 8-byte length + header JSON (space-padded to a multiple of 8). */
function planLayout(tensors: TensorToWrite[], metadata?: Record<string, string>): { header: Uint8Array; ordered: TensorToWrite[] } {
  const ordered = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const json: Record<string, unknown> = {};
  if (metadata) json.__metadata__ = metadata;
  let offset = 0;
  ordered.forEach((tensor, i) => {
    checkTensor(tensor);
    if (ordered[i - 1]?.name === tensor.name) throw new Error(`writeSafetensors: duplicate tensor name "${tensor.name}" (this is a bug)`);
    const size = tensor.data.length * DTYPE_SIZE[tensor.dtype];
    json[tensor.name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, offset + size] };
    offset += size;
  });
  const body = new TextEncoder().encode(JSON.stringify(json));
  // Readers may assume 8-byte aligned data, so the JSON is padded with spaces; the length counts the padding.
  const padded = Math.ceil(body.byteLength / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20, 8 + body.byteLength);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(body, 8);
  return { header, ordered };
}

function checkTensor(tensor: TensorToWrite): void {
  if (tensor.name === "__metadata__") throw new Error(`writeSafetensors: "__metadata__" is reserved, not a tensor name (this is a bug)`);
  if (tensor.dtype !== "F32" && tensor.dtype !== "F16" && tensor.dtype !== "BF16") {
    throw new Error(`writeSafetensors: tensor "${tensor.name}" has dtype ${String(tensor.dtype)}; only F32, F16 and BF16 are written`);
  }
  for (const dim of tensor.shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw new Error(`writeSafetensors: tensor "${tensor.name}" has shape [${tensor.shape.join(", ")}]; dims must be non-negative integers`);
    }
  }
  const count = tensor.shape.reduce((n, dim) => n * dim, 1);
  if (count !== tensor.data.length) {
    throw new Error(
      `writeSafetensors: tensor "${tensor.name}" has shape [${tensor.shape.join(", ")}] (${count} elements) ` +
        `but ${tensor.data.length} values (this is a bug)`,
    );
  }
}

function encodeTensor(tensor: TensorToWrite): Uint8Array {
  if (tensor.dtype === "F16") return toLeBytes(f32ToF16(tensor.data));
  if (tensor.dtype === "BF16") return toLeBytes(f32ToBf16(tensor.data));
  return toLeBytes(tensor.data);
}

