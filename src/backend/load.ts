import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { UserError } from "../errors.js";
import { BACKEND_NAMES, CANDIDATES, type BackendAttempt, type BackendCandidate, type BackendName } from "./candidates.js";
import { explainLoadError } from "./explain-load-error.js";
import { describeAdapter, prepareWebGpu, type WebGpuAdapter } from "./webgpu.js";
import { guardWasmAllocations } from "./wasm-guard.js";
import type { MatmulPath } from "./native-matmul.js";
import { registeredMatmulPath, registerWasmMatMul } from "./wasm-matmul.js";

import type { Tf } from "../model/types.js";

export interface LoadedBackend {
  tf: Tf;
  backend: BackendName;
  label: string;
  /** Every candidate tried before (and including) the one that loaded. */
  attempts: BackendAttempt[];
  /** On wasm: which matmul runs (the native GEMM addon or XNNPACK) and why. */
  matmul: MatmulPath | null;
  /** On webgpu: the adapter, whose buffer limits bound what fits. */
  webgpu?: WebGpuAdapter;
}

const require = createRequire(import.meta.url);

/** `--backend` wins over FINETUNE_BACKEND; an unknown value is a usage error. */
export function forcedBackend(flag: BackendName | undefined, env: NodeJS.ProcessEnv): BackendName | undefined {
  if (flag) return flag;
  const value = env.FINETUNE_BACKEND?.trim();
  if (!value) return undefined;
  if ((BACKEND_NAMES as readonly string[]).includes(value)) return value as BackendName;
  throw new UserError(`FINETUNE_BACKEND=${JSON.stringify(value)} is not a backend; use one of ${BACKEND_NAMES.join(", ")}, or unset it.`);
}

/**
 * Loads the best backend (tensorflow with CUDA, tensorflow on CPU, wasm, cpu), or exactly the forced one,
 * recording why each skipped candidate failed.
 */
export async function loadBackend(params: { forced?: BackendName | undefined; env?: NodeJS.ProcessEnv }): Promise<LoadedBackend> {
  const tf = await tfCore();
  const attempts: BackendAttempt[] = [];
  const candidates = CANDIDATES.filter((c) => (params.forced ? c.backend === params.forced : !c.optIn));
  for (const candidate of candidates) {
    if (candidate.backend === "webgpu") {
      // A missing package, no adapter or a CPU fallback adapter: said as it is, not as a failed import.
      const adapter = await prepareWebGpu(params.env ?? process.env);
      const attempt = await tryCandidate(tf, candidate);
      if (attempt.loaded) return { tf, backend: "webgpu", label: `webgpu: ${describeAdapter(adapter)}`, attempts: [attempt], matmul: null, webgpu: adapter };
      attempts.push(attempt);
      continue;
    }
    const attempt = await tryCandidate(tf, candidate);
    attempts.push(attempt);
    if (attempt.loaded) return { tf, backend: candidate.backend, label: candidate.label, attempts, matmul: candidate.backend === "wasm" ? registeredMatmulPath() : null };
  }
  const why = attempts.map((a) => `${a.label}: ${a.reason ?? "failed"}`).join("; ");
  if (params.forced) {
    throw new UserError(`the ${params.forced} backend cannot load here (${why}). Run \`finetune doctor\` to see which backends work, or drop --backend / FINETUNE_BACKEND.`);
  }
  throw new UserError(`no compute backend could load (${why}). Run \`finetune doctor\`.`);
}

/** Tries every candidate, for `finetune doctor`. Leaves the last loaded backend active. */
export async function probeBackends(): Promise<BackendAttempt[]> {
  const tf = await tfCore();
  const out: BackendAttempt[] = [];
  for (const candidate of CANDIDATES.filter((c) => !c.optIn)) out.push(await tryCandidate(tf, candidate));
  return out;
}

/** tfjs-core in production mode: no debug checks, and no console banners that would mix into our output. */
async function tfCore(): Promise<Tf> {
  const tf = (await import("@tensorflow/tfjs-core")) as Tf;
  // tfjs-core alone registers no gradient functions; the @tensorflow/tfjs bundle registers them (into the
  // registry every tfjs copy shares), as tfjs-node does too.
  await import("@tensorflow/tfjs");
  tf.env().set("PROD", true);
  return tf;
}

async function tryCandidate(tf: Tf, candidate: BackendCandidate): Promise<BackendAttempt> {
  const base = { label: candidate.label, backend: candidate.backend, package: candidate.package };
  try {
    await registerBackend(candidate);
    const ok = await tf.setBackend(candidate.backend);
    if (ok && candidate.backend === "wasm") installWasmKernels(tf);
    if (!ok) return { ...base, loaded: false, reason: "the backend failed to initialise" };
    if (ok && candidate.backend === "webgpu") tf.env().set("WEBGPU_CPU_FORWARD", false);
    // A tiny op proves the kernels actually run (read asynchronously: WebGPU in Node cannot read synchronously).
    const two = tf.add(tf.scalar(1), tf.scalar(1));
    const value = (await two.data())[0];
    two.dispose();
    if (value !== 2) return { ...base, loaded: false, reason: "a test computation gave a wrong result" };
    return { ...base, loaded: true };
  } catch (error) {
    return { ...base, loaded: false, reason: explainLoadError(candidate.package, error) };
  }
}

let wasmKernelsInstalled = false;

/** Our faster wasm kernels replace tfjs's own, once per process. */
function installWasmKernels(tf: Tf): void {
  if (wasmKernelsInstalled) return;
  registerWasmMatMul(tf);
  guardWasmAllocations(tf);
  wasmKernelsInstalled = true;
}

async function registerBackend(candidate: BackendCandidate): Promise<void> {
  switch (candidate.package) {
    case "@tensorflow/tfjs-node-gpu":
    case "@tensorflow/tfjs-node":
      // Optional packages: a plain dynamic import, so their absence is an ordinary, explainable failure.
      await import(candidate.package);
      return;
    case "@tensorflow/tfjs-backend-wasm": {
      const wasm = await import("@tensorflow/tfjs-backend-wasm");
      // The .wasm files sit next to the package's dist/, wherever the working directory is.
      wasm.setWasmPaths(join(dirname(require.resolve("@tensorflow/tfjs-backend-wasm/package.json")), "dist") + "/");
      return;
    }
    case "@tensorflow/tfjs-backend-cpu":
      await import("@tensorflow/tfjs-backend-cpu");
      return;
    case "@tensorflow/tfjs-backend-webgpu":
      // Registers itself on import, once navigator.gpu exists (prepareWebGpu made it).
      await import("@tensorflow/tfjs-backend-webgpu");
      return;
  }
}

/** The installed version of a package, or null when it is not installed. */
export function packageVersionOf(pkg: string): string | null {
  try {
    const json = require(`${pkg}/package.json`) as { version?: unknown };
    return typeof json.version === "string" ? json.version : null;
  } catch {
    return null;
  }
}
