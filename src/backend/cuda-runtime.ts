import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** The libraries @tensorflow/tfjs-node-gpu 4.22.0 loads (libtensorflow 2.9.1, built for CUDA 11.2 and cuDNN 8.1). */
export const CUDA_LIBRARIES = { cudart: "libcudart.so.11.0", cudnn: "libcudnn.so.8" } as const;

export interface CudaRuntime {
  /** The NVIDIA kernel driver's version line, or null when no NVIDIA driver is loaded. */
  driver: string | null;
  /** Where each library was found, or null. */
  cudart: string | null;
  cudnn: string | null;
  /** What to install when the driver is there but a library is not (null otherwise). */
  advice: string | null;
}

export interface CudaProbe {
  /** /proc/driver/nvidia/version, or null. */
  driverVersion(): string | null;
  /** `ldconfig -p`'s list, or "" when it cannot run. */
  linkerCache(): string;
  env: NodeJS.ProcessEnv;
  exists(path: string): boolean;
}

/** The probe of this machine. */
export const cudaProbe = (env: NodeJS.ProcessEnv): CudaProbe => ({
  driverVersion: () => {
    try {
      return readFileSync("/proc/driver/nvidia/version", "utf8");
    } catch {
      return null;
    }
  },
  linkerCache: () => {
    try {
      return execFileSync("ldconfig", ["-p"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 5000 });
    } catch {
      return "";
    }
  },
  env,
  exists: existsSync,
});

/**
 * Whether the CUDA route can work on this Linux machine: an NVIDIA driver, and the CUDA 11 runtime and cuDNN 8 that
 * tfjs-node-gpu's libtensorflow loads (found as the dynamic linker would: its cache or LD_LIBRARY_PATH).
 */
export function checkCudaRuntime(probe: CudaProbe = cudaProbe(process.env)): CudaRuntime {
  const version = probe.driverVersion();
  const driver = version === null ? null : (version.split("\n")[0] ?? "").trim();
  const cache = probe.linkerCache();
  const dirs = (probe.env.LD_LIBRARY_PATH ?? "").split(":").filter((dir) => dir !== "");
  const find = (name: string): string | null => {
    const line = cache.split("\n").find((l) => l.trim().startsWith(`${name} `));
    if (line) return line.split("=>").at(-1)?.trim() ?? name;
    for (const dir of dirs) if (probe.exists(join(dir, name))) return join(dir, name);
    return null;
  };
  const cudart = find(CUDA_LIBRARIES.cudart);
  const cudnn = find(CUDA_LIBRARIES.cudnn);
  const missing = [cudart === null ? `${CUDA_LIBRARIES.cudart} (the CUDA 11.2 runtime)` : null, cudnn === null ? `${CUDA_LIBRARIES.cudnn} (cuDNN 8.1)` : null].filter((m): m is string => m !== null);
  const advice =
    driver !== null && missing.length > 0
      ? `the NVIDIA driver is loaded but ${missing.join(" and ")} ${missing.length === 1 ? "is" : "are"} not found; @tensorflow/tfjs-node-gpu needs them (CUDA 12 does not provide them): ` +
        "install NVIDIA's cuda-cudart-11-2 and libcudnn8 (8.1) packages, or `conda install -c conda-forge cudatoolkit=11.2 cudnn=8.1`, and put their lib folder on LD_LIBRARY_PATH"
      : null;
  return { driver, cudart, cudnn, advice };
}
