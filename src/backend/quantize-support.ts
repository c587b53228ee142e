import { UserError } from "../errors.js";
import type { Quantize } from "../model/quantize.js";
import { loadNativeWeights } from "./native-weights.js";

/**
 * bf16/int8/nf4 weights live in the native addon's memory and are multiplied by its kernels, so without the addon
 * they cannot be loaded at all: refused before anything is downloaded or loaded, naming why the addon is missing.
 * `none` (float32 tfjs tensors) needs nothing. `setBy` is how the format was chosen, for the message:
 * "model.quantize", "--quantize", or a lock file's model.quantize (whose run can only be reproduced with the addon).
 */
export function checkQuantizeSupport(params: { quantize: Quantize; setBy: string; env: NodeJS.ProcessEnv; lock?: boolean }): void {
  if (params.quantize === "none") return;
  const native = loadNativeWeights(params.env);
  if (native.addon !== null) return;
  const flag = params.setBy.startsWith("--");
  const fallback = flag ? `${params.setBy} none (the default)` : "`quantize: none` (the default)";
  const next = params.lock
    ? "Reproducing the run needs its format, so build the addon (or reproduce on a machine that has it); a new run with `quantize: none` works without it."
    : `${fallback} works without it: float32 weights in the backend's own memory (on wasm a 4 GiB heap, enough for models up to about 0.5B parameters).`;
  throw new UserError(`${params.setBy}${flag ? "" : ":"} ${params.quantize} stores the base weights in the native addon's memory, but the addon is not available: ${native.reason}. ${next}`);
}

/**
 * bf16/int8/nf4 weights are multiplied by the native addon on the CPU, reading tensors back synchronously; the
 * webgpu backend keeps tensors on the GPU and reads them back only asynchronously, so it takes float32 weights.
 */
export function checkQuantizeOnBackend(params: { backend: string; quantize: Quantize; setBy: string }): void {
  if (params.backend !== "webgpu" || params.quantize === "none") return;
  throw new UserError(
    `${params.setBy} ${params.quantize} keeps the base weights in the native addon, multiplied on the CPU, which the webgpu backend cannot use; ` +
      `set ${params.setBy.startsWith("--") ? `${params.setBy} none` : "`quantize: none`"} (float32 weights on the GPU), or leave --backend webgpu out.`,
  );
}
