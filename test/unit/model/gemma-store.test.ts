/**
 * Gemma with its weights in the native store: a bf16/int8/nf4 load is the float32 model of its dequantized weights
 * (and matches the float64 reference of those), and generation keeps the tfjs forward pass (the native lean
 * decoder only knows Llama-family math), even when float32 weights are asked to go native.
 */
import { join } from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import { loadBackend } from "../../../src/backend/load.js";
import { loadNativeMatmul } from "../../../src/backend/native-matmul.js";
import { loadModel } from "../../../src/model/load-model.js";
import type { Tf } from "../../../src/model/types.js";
import { dequantizedCheckpoint } from "../../helpers/dequantized-checkpoint.js";
import { describeNeeds, itNeeds, nativeAddon } from "../../helpers/needs.js";
import { referenceGemmaLogits } from "../../helpers/reference-gemma.js";
import { tempDir } from "../../helpers/run-cli.js";
import { writeTinyGemma, type TinyGemmaSpec } from "../../helpers/tiny-gemma.js";
import { logitsOf, maxError } from "../../helpers/logits.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const need = nativeAddon(loadNativeMatmul());
const IDS = [1, 5, 17, 42, 3, 8, 60, 21, 9, 33, 14, 2];
const SPECS: Record<string, TinyGemmaSpec> = {
  gemma3: { kind: "gemma3_text", seed: 41 },
  "gemma2 untied": { kind: "gemma2", tied: false, seed: 42 },
};

let tf: Tf;
beforeAll(async () => {
  tf = (await loadBackend({ forced: "wasm" })).tf;
});



describeNeeds(need, "Gemma on the native weight store", () => {
  for (const [label, spec] of Object.entries(SPECS)) {
    for (const format of ["bf16", "int8", "nf4"] as const) {
      itNeeds(need, `${label}, ${format}: the float32 model of its dequantized weights, and close to the original`, async () => {
        const dir = join(tmp.path, label.replace(/\W+/g, "-"));
        writeTinyGemma(dir, spec);
        const simulated = dequantizedCheckpoint(dir, format, `${dir}-${format}`);
        const quantized = await loadModel(tf, dir, { quantize: format });
        const original = await loadModel(tf, dir);
        try {
          const q = logitsOf(tf, quantized, IDS);
          expect(maxError(q, referenceGemmaLogits(simulated, IDS).flatMap((row) => Array.from(row)))).toBeLessThan(1e-4);
          // The format moves the model: bf16 and int8 by a few percent of the largest logit at most. (nf4's levels
          // suit normally distributed weights; on these uniform random ones it moves the logits by ~60%.)
          const plain = logitsOf(tf, original, IDS);
          const error = maxError(q, plain) / Math.max(...Array.from(plain, Math.abs));
          expect(error).toBeGreaterThan(1e-5);
          if (format !== "nf4") expect(error).toBeLessThan({ bf16: 0.02, int8: 0.05 }[format]);
          expect(quantized.weightBytes).toBeLessThan(original.weightBytes);
          expect(quantized.parameterCount).toBe(original.parameterCount);
          expect(quantized.newDecoder(8).kind).toBe("tfjs");
        } finally {
          quantized.dispose();
          original.dispose();
        }
      });
    }
  }

  itNeeds(need, "float32In native keeps Gemma's weights as tensors and generation on the tfjs decoder", async () => {
    const dir = join(tmp.path, "native-f32");
    writeTinyGemma(dir, { kind: "gemma3_text", seed: 43 });
    const model = await loadModel(tf, dir, { float32In: "native" });
    const decoder = model.newDecoder(8);
    try {
      expect(decoder.kind).toBe("tfjs");
      const last = await decoder.step(IDS.slice(0, 4));
      const reference = referenceGemmaLogits(dir, IDS.slice(0, 4))[3] ?? new Float64Array();
      expect(maxError(last, reference)).toBeLessThan(1e-4);
    } finally {
      decoder.dispose();
      model.dispose();
    }
  });
});
