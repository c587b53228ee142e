import { describe, expect, it } from "vitest";
import { checkCudaRuntime, type CudaProbe } from "../../../src/backend/cuda-runtime.js";

const probe = (over: Partial<CudaProbe>): CudaProbe => ({ driverVersion: () => null, linkerCache: () => "", env: {}, exists: () => false, ...over });
const DRIVER = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024\nGCC version: gcc 12\n";

describe("the CUDA route's libraries", () => {
  it("without an NVIDIA driver gives no advice", () => {
    expect(checkCudaRuntime(probe({}))).toEqual({ driver: null, cudart: null, cudnn: null, advice: null });
  });

  it("with the driver but CUDA 12 only, names both missing libraries and what to install", () => {
    const result = checkCudaRuntime(probe({ driverVersion: () => DRIVER, linkerCache: () => "\tlibcudart.so.12 (libc6,x86-64) => /usr/local/cuda-12/lib64/libcudart.so.12\n" }));
    expect(result.driver).toBe("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024");
    expect(result.advice).toBe(
      "the NVIDIA driver is loaded but libcudart.so.11.0 (the CUDA 11.2 runtime) and libcudnn.so.8 (cuDNN 8.1) are not found; @tensorflow/tfjs-node-gpu needs them (CUDA 12 does not provide them): " +
        "install NVIDIA's cuda-cudart-11-2 and libcudnn8 (8.1) packages, or `conda install -c conda-forge cudatoolkit=11.2 cudnn=8.1`, and put their lib folder on LD_LIBRARY_PATH",
    );
  });

  it("finds the libraries in the linker cache or on LD_LIBRARY_PATH", () => {
    const result = checkCudaRuntime(
      probe({
        driverVersion: () => DRIVER,
        linkerCache: () => "\tlibcudart.so.11.0 (libc6,x86-64) => /usr/local/cuda-11.2/lib64/libcudart.so.11.0\n",
        env: { LD_LIBRARY_PATH: "/opt/none:/opt/cudnn/lib" },
        exists: (path) => path === "/opt/cudnn/lib/libcudnn.so.8",
      }),
    );
    expect(result).toMatchObject({ cudart: "/usr/local/cuda-11.2/lib64/libcudart.so.11.0", cudnn: "/opt/cudnn/lib/libcudnn.so.8", advice: null });
  });
});
