/** The compute backends in order of preference, and the package each needs. */
export type BackendName = "tensorflow" | "wasm" | "cpu" | "webgpu";

export const BACKEND_NAMES: readonly BackendName[] = ["tensorflow", "wasm", "cpu", "webgpu"];

export interface BackendCandidate {
  backend: BackendName;
  /** What users see: "tensorflow (CUDA)", "wasm", … */
  label: string;
  package: string;
  /** Only when asked for (--backend / FINETUNE_BACKEND): WebGPU is not yet measured faster than the CPU path. */
  optIn?: true;
}

export const CANDIDATES: readonly BackendCandidate[] = [
  { backend: "tensorflow", label: "tensorflow (CUDA)", package: "@tensorflow/tfjs-node-gpu" },
  { backend: "tensorflow", label: "tensorflow (CPU)", package: "@tensorflow/tfjs-node" },
  { backend: "wasm", label: "wasm", package: "@tensorflow/tfjs-backend-wasm" },
  { backend: "cpu", label: "cpu", package: "@tensorflow/tfjs-backend-cpu" },
  { backend: "webgpu", label: "webgpu", package: "@tensorflow/tfjs-backend-webgpu", optIn: true },
];

/** One candidate tried: loaded, or why not. */
export interface BackendAttempt {
  label: string;
  backend: BackendName;
  package: string;
  loaded: boolean;
  reason?: string;
}
