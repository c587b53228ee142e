import { UserError } from "../errors.js";
import type { ModelConfig } from "../model/config.js";

/** What Dawn reports of the adapter WebGPU would run on, and the limits that decide what fits. */
export interface WebGpuAdapter {
  vendor: string;
  architecture: string;
  description: string;
  /** A CPU implementation (a software driver such as lavapipe or SwiftShader), not a GPU. */
  isFallbackAdapter: boolean;
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

/** The npm package with Dawn's Node bindings; not installed with finetune (about 130 MB). */
export const WEBGPU_PACKAGE = "webgpu";
export const WEBGPU_VERSION = "0.6.2";
const INSTALL_HINT = `npm install ${WEBGPU_PACKAGE}@${WEBGPU_VERSION} (Dawn's Node bindings, about 130 MB) next to finetune`;

interface GpuLike {
  requestAdapter(options?: { powerPreference?: string; forceFallbackAdapter?: boolean }): Promise<AdapterLike | null>;
}
interface AdapterLike {
  info?: { vendor?: string; architecture?: string; description?: string; isFallbackAdapter?: boolean };
  isFallbackAdapter?: boolean;
  limits: { maxBufferSize: number; maxStorageBufferBindingSize: number };
}

let gpu: GpuLike | null = null;

/**
 * Dawn's `navigator.gpu`, made once per process: tfjs-backend-webgpu registers itself only if `navigator.gpu`
 * exists when it is imported, and Node has no `navigator`. Throws a UserError naming the package when it is absent.
 */
async function navigatorGpu(): Promise<GpuLike> {
  if (gpu) return gpu;
  let dawn: { create(flags: string[]): GpuLike; globals: Record<string, unknown> };
  try {
    dawn = (await import(WEBGPU_PACKAGE)) as typeof dawn;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ERR_MODULE_NOT_FOUND") throw new UserError(`the webgpu backend needs the npm package ${WEBGPU_PACKAGE}, which is not installed; ${INSTALL_HINT}.`);
    throw new UserError(`the npm package ${WEBGPU_PACKAGE} is installed but cannot load here (${error instanceof Error ? error.message.split("\n")[0] : String(error)}).`);
  }
  Object.assign(globalThis, dawn.globals);
  gpu = dawn.create([]);
  const nav = (globalThis as { navigator?: Record<string, unknown> }).navigator;
  if (nav) Object.defineProperty(nav, "gpu", { value: gpu, configurable: true });
  else Object.defineProperty(globalThis, "navigator", { value: { gpu }, configurable: true, writable: true });
  return gpu;
}

/** The adapter WebGPU finds (high performance preferred), or null with the reason; never throws. */
export async function probeWebGpu(): Promise<{ adapter: WebGpuAdapter | null; reason: string | null }> {
  try {
    const found = await (await navigatorGpu()).requestAdapter({ powerPreference: "high-performance" });
    if (!found) return { adapter: null, reason: "WebGPU finds no adapter: no GPU driver with Vulkan, Metal or D3D12 support is installed" };
    const info = found.info ?? {};
    return {
      adapter: {
        vendor: info.vendor ?? "",
        architecture: info.architecture ?? "",
        description: info.description ?? "",
        isFallbackAdapter: info.isFallbackAdapter ?? found.isFallbackAdapter ?? false,
        maxBufferSize: found.limits.maxBufferSize,
        maxStorageBufferBindingSize: found.limits.maxStorageBufferBindingSize,
      },
      reason: null,
    };
  } catch (error) {
    return { adapter: null, reason: error instanceof Error ? error.message : String(error) };
  }
}

/** "vendor architecture (description)", as doctor and the backend's label show it. */
export function describeAdapter(adapter: WebGpuAdapter): string {
  const name = [adapter.vendor, adapter.architecture].filter((part) => part !== "").join(" ") || "unknown adapter";
  return `${name}${adapter.description ? ` (${adapter.description})` : ""}${adapter.isFallbackAdapter ? ", a CPU fallback" : ""}`;
}

/**
 * Makes tfjs-backend-webgpu loadable: `navigator.gpu` from Dawn, an adapter that is a real GPU (a software fallback
 * only with FINETUNE_WEBGPU_ALLOW_FALLBACK=1), and every op on the GPU (tfjs would quietly run ops on tensors under
 * 1000 elements on the CPU, WEBGPU_CPU_FORWARD). Returns the adapter.
 */
export async function prepareWebGpu(env: NodeJS.ProcessEnv): Promise<WebGpuAdapter> {
  const { adapter, reason } = await probeWebGpu();
  if (!adapter) throw new UserError(`the webgpu backend cannot run here: ${reason}.`);
  if (adapter.isFallbackAdapter && env.FINETUNE_WEBGPU_ALLOW_FALLBACK !== "1") {
    throw new UserError(
      `WebGPU found only ${describeAdapter(adapter)}: it runs on the CPU, slower than finetune's own CPU path. ` +
        "Use --backend wasm (or leave --backend and FINETUNE_BACKEND unset), or set FINETUNE_WEBGPU_ALLOW_FALLBACK=1 to use it anyway (for testing).",
    );
  }
  return adapter;
}

/**
 * The largest float32 weight tensor finetune's tfjs path makes for a model (the token embedding, or q|k|v and
 * gate|up fused), which must fit one WebGPU storage binding.
 */
export function largestWeightBytes(config: ModelConfig): { bytes: number; what: string } {
  const H = config.hiddenSize;
  const candidates: [number, string][] = [[config.vocabSize * H, `the token embedding (${config.vocabSize} × ${H})`]];
  if (config.family === "gpt2") {
    candidates.push([3 * H * H, `c_attn (${H} × ${3 * H})`], [H * config.innerSize, `c_fc (${H} × ${config.innerSize})`]);
  } else {
    const qkv = (config.numHeads + 2 * config.numKvHeads) * config.headDim;
    candidates.push([H * qkv, `q|k|v (${H} × ${qkv})`], [2 * H * config.intermediateSize, `gate|up (${H} × ${2 * config.intermediateSize})`]);
  }
  const [floats, what] = candidates.reduce((a, b) => (b[0] > a[0] ? b : a));
  return { bytes: 4 * floats, what };
}

/** A UserError when a weight tensor of this model cannot be bound on the adapter (maxStorageBufferBindingSize). */
export function checkWebGpuFit(config: ModelConfig, adapter: WebGpuAdapter): void {
  const { bytes, what } = largestWeightBytes(config);
  const limit = Math.min(adapter.maxStorageBufferBindingSize, adapter.maxBufferSize);
  if (bytes <= limit) return;
  const mb = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
  throw new UserError(
    `${what} is ${mb(bytes)} of float32, more than this WebGPU adapter binds at once (maxStorageBufferBindingSize ${mb(limit)}, ${describeAdapter(adapter)}); ` +
      "this model does not fit the webgpu backend on it: use the wasm or tensorflow backend (leave --backend out).",
  );
}
