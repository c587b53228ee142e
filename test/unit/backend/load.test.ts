import { describe, expect, it } from "vitest";
import { explainLoadError } from "../../../src/backend/explain-load-error.js";
import { forcedBackend, loadBackend, packageVersionOf } from "../../../src/backend/load.js";
import { UserError } from "../../../src/errors.js";

const tfjsNodeInstalled = packageVersionOf("@tensorflow/tfjs-node") !== null || packageVersionOf("@tensorflow/tfjs-node-gpu") !== null;

describe("backend selection", () => {
  it("loads wasm and cpu when forced, and they compute the same matmul", async () => {
    const results: number[][] = [];
    for (const name of ["wasm", "cpu"] as const) {
      const loaded = await loadBackend({ forced: name });
      expect(loaded.backend).toBe(name);
      expect(loaded.tf.getBackend()).toBe(name);
      expect(loaded.attempts.map((a) => a.backend)).toEqual([name]);
      const { tf } = loaded;
      results.push(Array.from(tf.tidy(() => tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5], [6]])).dataSync())));
    }
    expect(results).toEqual([[17, 39], [17, 39]]);
  });

  it("by default tries tensorflow (CUDA, then CPU) first and records why each was skipped", async () => {
    const loaded = await loadBackend({});
    if (tfjsNodeInstalled) {
      expect(loaded.backend).toBe("tensorflow");
      return;
    }
    expect(loaded.backend).toBe("wasm");
    expect(loaded.attempts.map((a) => [a.label, a.loaded])).toEqual([
      ["tensorflow (CUDA)", false],
      ["tensorflow (CPU)", false],
      ["wasm", true],
    ]);
    expect(loaded.attempts[0]?.reason).toContain("package not installed");
  });

  it("a forced backend that cannot load is a clear usage error", async () => {
    if (tfjsNodeInstalled) return;
    await expect(loadBackend({ forced: "tensorflow" })).rejects.toThrow(UserError);
    await expect(loadBackend({ forced: "tensorflow" })).rejects.toThrow(/tensorflow backend cannot load here .*package not installed.*finetune doctor/);
  });

  it("--backend wins over FINETUNE_BACKEND; a bad value names the choices", () => {
    expect(forcedBackend("cpu", { FINETUNE_BACKEND: "wasm" })).toBe("cpu");
    expect(forcedBackend(undefined, { FINETUNE_BACKEND: "wasm" })).toBe("wasm");
    expect(forcedBackend(undefined, {})).toBeUndefined();
    expect(() => forcedBackend(undefined, { FINETUNE_BACKEND: "gpu" })).toThrow("use one of tensorflow, wasm, cpu");
  });
});

describe("explainLoadError", () => {
  it("tells a missing package from a missing CUDA library", () => {
    const notFound = Object.assign(new Error("Cannot find package '@tensorflow/tfjs-node-gpu' imported from x"), { code: "ERR_MODULE_NOT_FOUND" });
    expect(explainLoadError("@tensorflow/tfjs-node-gpu", notFound)).toMatch(/^package not installed/);
    const cuda = new Error("libcudart.so.11.0: cannot open shared object file: No such file or directory");
    expect(explainLoadError("@tensorflow/tfjs-node-gpu", cuda)).toBe(
      "CUDA library missing: libcudart.so.11.0 (install the CUDA/cuDNN versions tfjs-node-gpu needs; see README)",
    );
    expect(explainLoadError("@tensorflow/tfjs-node", new Error("libtensorflow.so.2: cannot open"))).toMatch(/^libtensorflow missing/);
  });
});
