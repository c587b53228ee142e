import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";

/**
 * Hand-builds safetensors bytes: 8-byte LE length + header + data. The header is JSON-encoded unless given as
 * a string or raw bytes (for hostile cases); `length` overrides the stored header length.
 */
export function buildFile(params: { header: unknown; data?: Uint8Array | number; length?: bigint }): Uint8Array {
  const { header } = params;
  const json =
    header instanceof Uint8Array ? header : new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const data = typeof params.data === "number" ? new Uint8Array(params.data) : (params.data ?? new Uint8Array(0));
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, params.length ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

/** Little-endian float32 bytes. */
export function f32Bytes(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return out;
}

/** A fresh temp directory per test, removed afterwards. */
export function useTempDir(): () => Promise<string> {
  const made: string[] = [];
  afterEach(async () => {
    await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  });
  return async () => {
    const dir = await mkdtemp(join(tmpdir(), "finetune-io-"));
    made.push(dir);
    return dir;
  };
}

