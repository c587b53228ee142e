import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * A full garbage collection, now. After a quantized load the buffer the tensors were read through (as large as the
 * biggest tensor: 0.5 GB for a 128K-vocabulary embedding) is unreachable, but V8 frees it only at its next full
 * collection, which a training run may not reach for a long time; meanwhile it counts in the process's memory.
 * `gc` is reachable from a new context once --expose-gc is set. Best effort: where that fails, nothing happens.
 */
export function collectGarbage(): void {
  try {
    setFlagsFromString("--expose-gc");
    const gc: unknown = runInNewContext("gc");
    if (typeof gc === "function") gc();
  } catch {
    // Not available in this runtime: the collector frees the buffer later.
  }
}
