import { UserError } from "../errors.js";

export type SafetensorsDtype = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

/** One tensor of a safetensors file; `begin`/`end` (exclusive) are byte offsets into the data buffer. */
export interface TensorEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** Bytes per element. */
export const DTYPE_SIZE: Readonly<Record<SafetensorsDtype, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

/** The same limit as the reference Rust reader: anything bigger is hostile or not a safetensors file. */
export const MAX_HEADER_LENGTH = 100_000_000;

const SUPPORTED = Object.keys(DTYPE_SIZE).join(", ");

function isDtype(value: string): value is SafetensorsDtype {
  return Object.hasOwn(DTYPE_SIZE, value);
}

/** Checks the u64 header length read from the first 8 bytes, before anything is allocated for it. */
export function checkHeaderLength(headerLength: number | bigint, fileSize: number, source: string): number {
  const length = BigInt(headerLength);
  if (length === 0n) throw new UserError(`${source}: the safetensors header length is 0; the file is corrupt or not safetensors`);
  if (length > BigInt(MAX_HEADER_LENGTH)) {
    throw new UserError(
      `${source}: the safetensors header claims ${length} bytes, over the ${MAX_HEADER_LENGTH}-byte limit; ` +
        "the file is corrupt or not safetensors",
    );
  }
  if (length > BigInt(fileSize - 8)) {
    throw new UserError(
      `${source}: the safetensors header claims ${length} bytes but the file has only ${fileSize - 8} after the length; ` +
        "the file is truncated: download it again",
    );
  }
  return Number(length);
}

/**
 * Parses and validates a safetensors header: dtypes, shapes, sizes, and that the tensors tile the data buffer
 * exactly. Returns the tensors sorted by offset.
 */
export function parseSafetensorsHeader(
  headerJson: Uint8Array,
  headerLength: number,
  fileSize: number,
  source: string,
): { tensors: TensorEntry[]; metadata: Record<string, string> } {
  checkHeaderLength(headerLength, fileSize, source);
  if (headerJson.byteLength !== headerLength) {
    throw new UserError(`${source}: read ${headerJson.byteLength} header bytes, expected ${headerLength}; the file is truncated`);
  }
  const root = decodeJson(headerJson, source);
  let metadata: Record<string, string> = {};
  const tensors: TensorEntry[] = [];
  for (const [name, value] of Object.entries(root)) {
    if (name === "__metadata__") metadata = parseMetadata(value, source);
    else tensors.push(parseEntry(name, value, source));
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  checkTiling(tensors, fileSize - 8 - headerLength, source);
  return { tensors, metadata };
}

function decodeJson(bytes: Uint8Array, source: string): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new UserError(`${source}: the safetensors header is not valid UTF-8; the file is corrupt or not safetensors`);
  }
  if (!text.startsWith("{")) {
    throw new UserError(
      `${source}: the safetensors header does not start with "{" (it starts with ${JSON.stringify(text.slice(0, 16))}); ` +
        "the file is corrupt or not safetensors",
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UserError(`${source}: the safetensors header is not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (!isRecord(parsed)) throw new UserError(`${source}: the safetensors header is not a JSON object`);
  return parsed;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseMetadata(value: unknown, source: string): Record<string, string> {
  // The reference reader accepts null (Option<HashMap>), so we do too.
  if (value === null) return {};
  if (!isRecord(value)) throw new UserError(`${source}: __metadata__ must be an object of strings, got ${describe(value)}`);
  const metadata: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== "string") {
      throw new UserError(`${source}: __metadata__.${key} must be a string, got ${describe(item)}`);
    }
    metadata[key] = item;
  }
  return metadata;
}

function parseEntry(name: string, value: unknown, source: string): TensorEntry {
  const where = `${source}: tensor "${name}"`;
  if (!isRecord(value)) throw new UserError(`${where} must be an object with dtype, shape and data_offsets, got ${describe(value)}`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (dtype === undefined) throw new UserError(`${where} has no dtype`);
  if (shape === undefined) throw new UserError(`${where} has no shape`);
  if (offsets === undefined) throw new UserError(`${where} has no data_offsets`);
  if (typeof dtype !== "string") throw new UserError(`${where}: dtype must be a string, got ${describe(dtype)}`);
  if (!isDtype(dtype)) throw new UserError(`${where} has dtype "${dtype}", which is not supported (supported: ${SUPPORTED})`);
  if (!Array.isArray(shape)) throw new UserError(`${where}: shape must be an array of dimensions, got ${describe(shape)}`);
  shape.forEach((dim: unknown, axis) => {
    if (typeof dim !== "number" || !Number.isSafeInteger(dim) || dim < 0) {
      throw new UserError(`${where}: shape[${axis}] is ${describe(dim)}; dimensions must be non-negative integers`);
    }
  });
  if (!Array.isArray(offsets) || offsets.length !== 2) {
    throw new UserError(`${where}: data_offsets must be [begin, end], got ${describe(offsets)}`);
  }
  const [begin, end] = offsets as unknown[];
  for (const offset of [begin, end]) {
    if (typeof offset !== "number" || !Number.isSafeInteger(offset) || offset < 0) {
      throw new UserError(`${where}: data_offsets ${describe(offsets)} must be non-negative integers`);
    }
  }
  const entry: TensorEntry = { name, dtype, shape: shape as number[], begin: begin as number, end: end as number };
  if (entry.end < entry.begin) throw new UserError(`${where}: data_offsets end ${entry.end} is before begin ${entry.begin}`);
  const expected = entry.shape.reduce((n, dim) => n * BigInt(dim), 1n) * BigInt(DTYPE_SIZE[dtype]);
  if (BigInt(entry.end - entry.begin) !== expected) {
    throw new UserError(
      `${where} has shape [${entry.shape.join(", ")}] ${dtype} = ${expected} bytes, ` +
        `but data_offsets [${entry.begin}, ${entry.end}] hold ${entry.end - entry.begin}`,
    );
  }
  return entry;
}

/** The sorted tensors must cover [0, bufferSize) exactly once, like the reference reader demands. */
function checkTiling(sorted: TensorEntry[], bufferSize: number, source: string): void {
  let cursor = 0;
  let previous: TensorEntry | undefined;
  for (const tensor of sorted) {
    if (tensor.begin < cursor && previous) {
      throw new UserError(
        `${source}: tensors "${previous.name}" [${previous.begin}, ${previous.end}) and ` +
          `"${tensor.name}" [${tensor.begin}, ${tensor.end}) overlap`,
      );
    }
    if (tensor.begin > cursor) {
      const after = previous ? `after tensor "${previous.name}"` : "at the start of the data";
      throw new UserError(
        `${source}: gap of ${tensor.begin - cursor} bytes in the data buffer ${after} ` +
          `(bytes ${cursor} to ${tensor.begin}, before tensor "${tensor.name}")`,
      );
    }
    cursor = tensor.end;
    previous = tensor;
  }
  if (cursor > bufferSize) {
    throw new UserError(
      `${source}: the header promises ${cursor} data bytes but the file holds ${bufferSize}; ` +
        "the file is truncated: download it again",
    );
  }
  if (cursor < bufferSize) {
    const last = previous ? `the last tensor "${previous.name}" ends at ${cursor}` : "the header lists no tensors";
    throw new UserError(`${source}: ${bufferSize - cursor} stray bytes at the end of the data buffer (${last}, the buffer is ${bufferSize} bytes)`);
  }
}

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
