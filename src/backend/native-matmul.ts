import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

/** What the addon reports about itself: the GEMM it was built with (or picked at load) and its thread count. */
export interface NativeMatmulInfo {
  kernel: "openblas" | "accelerate" | "avx2-fma" | "portable";
  threads: number;
}

/** native/src/addon.cc. Offsets and strides are in bytes; a stride of 0 repeats one matrix for every batch entry. */
export interface NativeMatmulAddon {
  /** For each batch i: C_i = op(A_i)·op(B_i), row-major float32, computed inside `buffer`. Throws on any out-of-range extent. */
  sgemm(
    buffer: ArrayBuffer,
    aOffset: number,
    bOffset: number,
    cOffset: number,
    M: number,
    N: number,
    K: number,
    transA: boolean,
    transB: boolean,
    batch: number,
    strideA: number,
    strideB: number,
    strideC: number,
  ): void;
  info(): NativeMatmulInfo;
}

export type NativeMatmul = { addon: NativeMatmulAddon; info: NativeMatmulInfo } | { addon: null; reason: string };

export type MatmulPathName = "native-openblas" | "native-accelerate" | "native-avx2-fma" | "native-portable" | "wasm-xnnpack";
export interface MatmulPath {
  path: MatmulPathName;
  reason: string;
}

const KERNELS: readonly string[] = ["openblas", "accelerate", "avx2-fma", "portable"];
// src/backend/ and dist/backend/ are both two levels below the package root, so one relative path serves both.
const ADDON_PATH = fileURLToPath(new URL("../../native/build/Release/finetune_matmul.node", import.meta.url));
const require = createRequire(import.meta.url);

/**
 * The native GEMM addon built by scripts/build-native.mjs at `npm install`, or why it is not available.
 * Never throws: an addon that is missing, disabled or broken means the wasm matmul is used.
 */
export function loadNativeMatmul(env: NodeJS.ProcessEnv = process.env): NativeMatmul {
  if (env.FINETUNE_NATIVE === "0") return { addon: null, reason: "disabled by FINETUNE_NATIVE=0" };
  let loaded: unknown;
  try {
    loaded = require(ADDON_PATH);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "MODULE_NOT_FOUND") {
      return { addon: null, reason: "native addon not built (it needs a C++ compiler: apt-get install -y g++ make, then `node scripts/build-native.mjs`)" };
    }
    // Typically a BLAS library removed after the build, or a Node ABI change: rebuilding fixes both.
    const message = (error instanceof Error ? error.message : String(error)).split("\n")[0] ?? "";
    return { addon: null, reason: `native addon failed to load (${message}); rebuild it with \`node scripts/build-native.mjs\`` };
  }
  if (!isAddon(loaded)) return { addon: null, reason: "native addon has an unexpected interface; rebuild it with `node scripts/build-native.mjs`" };
  let info: NativeMatmulInfo;
  try {
    info = loaded.info();
  } catch (error) {
    return { addon: null, reason: `native addon failed to start (${error instanceof Error ? error.message : String(error)})` };
  }
  if (!KERNELS.includes(info.kernel) || !(info.threads >= 1)) {
    return { addon: null, reason: `native addon reports an unknown kernel (${String(info.kernel)})` };
  }
  return { addon: loaded, info };
}

/** How matmuls on the wasm backend run when this load result is used, in words for `doctor` and run reports. */
export function matmulPath(native: NativeMatmul = loadNativeMatmul()): MatmulPath {
  if (native.addon === null) return { path: "wasm-xnnpack", reason: native.reason };
  const { kernel, threads } = native.info;
  const threadsText = `${threads} thread${threads === 1 ? "" : "s"}`;
  return { path: `native-${kernel}`, reason: `native fp32 GEMM addon (${kernel}, ${threadsText})` };
}

function isAddon(value: unknown): value is NativeMatmulAddon {
  if (typeof value !== "object" || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return typeof candidate.sgemm === "function" && typeof candidate.info === "function";
}
