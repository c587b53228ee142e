import { RuntimeFailure } from "../errors.js";
import type { Tf } from "../model/types.js";

interface MallocOwner {
  wasm?: { _malloc(bytes: number): number; HEAPU8: Uint8Array };
}

/**
 * tfjs-backend-wasm does not check its allocations: when the 4 GB heap is exhausted `_malloc` returns 0, the
 * tensor silently lands at address 0, memory is corrupted and the process aborts later. Fail loudly instead.
 */
export function guardWasmAllocations(tf: Tf): void {
  const backend = tf.findBackend("wasm") as unknown as MallocOwner | null;
  const wasm = backend?.wasm;
  if (!wasm) return;
  const malloc = wasm._malloc.bind(wasm);
  wasm._malloc = (bytes: number): number => {
    const pointer = malloc(bytes);
    if (pointer === 0 && bytes > 0) {
      throw new RuntimeFailure(
        `the wasm backend ran out of memory allocating ${(bytes / 1e6).toFixed(0)} MB (its heap is limited to 4 GB, now ${(wasm.HEAPU8.length / 1e9).toFixed(2)} GB). ` +
          `Lower train.batch_size or train.max_seq_len, keep train.gradient_checkpointing on, or use the tensorflow backend.`,
      );
    }
    return pointer;
  };
}

/** Bytes the wasm heap has grown to (its high-water mark), or null on other backends. */
export function wasmHeapBytes(tf: Tf): number | null {
  const backend = tf.findBackend("wasm") as unknown as MallocOwner | null;
  return tf.getBackend() === "wasm" && backend?.wasm ? backend.wasm.HEAPU8.length : null;
}
