/**
 * Loading into the store streams: one tensor's raw bytes at a time go from the file into the store, so the process
 * grows by about the stored size plus one tensor, never by the model's float32 size (measured in a child process,
 * whose peak RSS is the figure; the float32 load of the same file is the contrast).
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import { loadNativeMatmul } from "../../../src/backend/native-matmul.js";
import { writeBf16Checkpoint } from "../../helpers/bf16-checkpoint.js";
import { describeNeeds, itNeeds, nativeAddon } from "../../helpers/needs.js";
import { ROOT, tempDir } from "../../helpers/run-cli.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const need = nativeAddon(loadNativeMatmul());
const dir = join(tmp.path, "bf16-model");
let file: { largestBytes: number; parameters: number };

beforeAll(() => {
  // 39.6M parameters: 158 MB as float32, 79 MB on disk; the largest tensor (embedding, lm_head) is 16 MB.
  file = writeBf16Checkpoint(dir, { vocab: 16000, hidden: 512, layers: 8, intermediate: 1376, heads: 8, kvHeads: 4 });
});

interface Measured {
  grew: number;
  weightBytes: number;
  parameters: number;
}

/** Peak RSS growth of a fresh process while it loads the model (after the backend is up). */
function measureLoad(quantize: string): Measured {
  const script = `
    const { loadBackend } = await import(${JSON.stringify(join(ROOT, "dist", "backend", "load.js"))});
    const { loadModel } = await import(${JSON.stringify(join(ROOT, "dist", "model", "load-model.js"))});
    const tf = (await loadBackend({ forced: "wasm" })).tf;
    const before = Math.max(process.memoryUsage().rss, process.resourceUsage().maxRSS * 1024);
    const model = await loadModel(tf, ${JSON.stringify(dir)}, { quantize: ${JSON.stringify(quantize)} });
    const grew = process.resourceUsage().maxRSS * 1024 - before;
    console.log(JSON.stringify({ grew, weightBytes: model.weightBytes, parameters: model.parameterCount }));
  `;
  const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  if (child.status !== 0) throw new Error(`child failed: ${child.stderr}`);
  return JSON.parse(child.stdout.trim().split("\n").pop() ?? "{}") as Measured;
}

describeNeeds(need, "streaming quantized load", () => {
  itNeeds(need, "grows by the stored bytes plus one tensor, not by the float32 model", () => {
    const float32Bytes = 4 * file.parameters;
    const slack = 16 * 2 ** 20;
    for (const quantize of ["nf4", "int8", "bf16"]) {
      const m = measureLoad(quantize);
      expect(m.parameters).toBe(file.parameters);
      console.log(`load ${quantize}: peak RSS +${(m.grew / 2 ** 20).toFixed(1)} MiB, stored ${(m.weightBytes / 2 ** 20).toFixed(1)} MiB, largest tensor ${(file.largestBytes / 2 ** 20).toFixed(1)} MiB`);
      expect(m.grew, quantize).toBeLessThan(m.weightBytes + file.largestBytes + slack);
    }
    // The contrast: float32 tensors need at least the float32 size.
    const plain = measureLoad("none");
    expect(plain.weightBytes).toBe(float32Bytes);
    expect(plain.grew).toBeGreaterThan(float32Bytes);
  }, 60_000);
});
