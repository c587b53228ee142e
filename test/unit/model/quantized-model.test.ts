/**
 * A model loaded with quantize bf16/int8/nf4 must be exactly the float32 model of its dequantized weights: the
 * weights are simulated in float64 (test/helpers/quant-reference.ts, written from the format definitions, not
 * from the kernels), written to a float32 checkpoint, and that checkpoint is run by the float32 model and by the
 * float64 reference forward pass. Logits and LoRA gradients must agree to float32 accumulation error.
 */
import { join } from "node:path";
import type * as tfc from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, expect } from "vitest";
import { loadBackend } from "../../../src/backend/load.js";
import { loadNativeMatmul } from "../../../src/backend/native-matmul.js";
import { attachLora } from "../../../src/lora/attach.js";
import { loadModel } from "../../../src/model/load-model.js";
import type { Quantize } from "../../../src/model/quantize.js";
import type { CausalLM, Tf } from "../../../src/model/types.js";
import { weightedLmLoss } from "../../../src/train/loss.js";
import { describeNeeds, itNeeds, nativeAddon } from "../../helpers/needs.js";
import { dequantizedCheckpoint } from "../../helpers/dequantized-checkpoint.js";
import { referenceLogits } from "../../helpers/reference-model.js";
import { tempDir } from "../../helpers/run-cli.js";
import { writeTinyCheckpoint, type TinySpec } from "../../helpers/tiny-checkpoint.js";
import { logitsOf, relativeError } from "../../helpers/logits.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const need = nativeAddon(loadNativeMatmul());

const SPECS: Record<string, TinySpec> = {
  // 96 and 200 are not multiples of the 64-element blocks: every row ends in a short block.
  "llama untied GQA, F32, hidden 96": { kind: "llama", hidden: 96, intermediate: 200, heads: 4, kvHeads: 2, tied: false, seed: 21 },
  "llama tied, BF16": { kind: "llama", tied: true, dtype: "BF16", seed: 22 },
  "qwen2 biases, F16": { kind: "qwen2", tied: true, dtype: "F16", seed: 23 },
  gpt2: { kind: "gpt2", seed: 24 },
};
const FORMATS = ["bf16", "int8", "nf4"] as const satisfies readonly Quantize[];
const IDS = [1, 5, 17, 42, 3, 8, 60, 21, 9, 33, 14, 2];

let tf: Tf;
beforeAll(async () => {
  tf = (await loadBackend({ forced: "wasm" })).tf;
});



/** LoRA on every linear layer with B set to seeded values (so A's gradients are not zero), and the gradients of the training loss. */
function loraGradients(model: CausalLM): Map<string, Float32Array> {
  const lora = attachLora(tf, model, { r: 2, alpha: 4, dropout: 0, targetModules: "all-linear", layers: "all", rslora: false, seed: 5 });
  try {
    let k = 0;
    for (const { adapter } of lora.adapters) {
      adapter.b.assign(tf.tensor2d(Float32Array.from({ length: adapter.b.size }, () => Math.sin((k += 1) * 1.7) * 0.05), adapter.b.shape));
    }
    const ids = tf.tensor2d(Int32Array.from(IDS), [1, IDS.length], "int32");
    const targets = Int32Array.from(IDS.slice(1).concat([0]));
    const weights = Float32Array.from(IDS, (_, i) => (i < IDS.length - 1 ? 1 : 0));
    const { value, grads } = tf.variableGrads(() => {
      const h = model.hidden({ ids, training: true, checkpoint: true });
      return weightedLmLoss(tf, model, tf.reshape(h, [IDS.length, -1]) as tfc.Tensor2D, targets, weights, { gradient: true });
    }, lora.variables());
    value.dispose();
    const out = new Map<string, Float32Array>();
    for (const { name, adapter } of lora.adapters) {
      for (const [part, v] of [["A", adapter.a], ["B", adapter.b]] as const) out.set(`${name}.${part}`, (grads[v.name] as tfc.Tensor).dataSync() as Float32Array);
    }
    tf.dispose(Object.values(grads));
    ids.dispose();
    return out;
  } finally {
    lora.dispose();
  }
}

describeNeeds(need, "a quantized base is the float32 model of its dequantized weights", () => {
  for (const [label, spec] of Object.entries(SPECS)) {
    for (const format of FORMATS) {
      itNeeds(need, `${label}, ${format}: logits and LoRA gradients`, async () => {
        const dir = join(tmp.path, label.replace(/\W+/g, "-"));
        writeTinyCheckpoint(dir, spec);
        const simulated = dequantizedCheckpoint(dir, format, `${dir}-${format}`);
        const quantized = await loadModel(tf, dir, { quantize: format });
        const plain = await loadModel(tf, simulated);
        try {
          const q = logitsOf(tf, quantized, IDS);
          const p = logitsOf(tf, plain, IDS);
          expect(relativeError(q, p)).toBeLessThan(2e-5);
          expect(relativeError(q, referenceLogits(simulated, IDS).flatMap((row) => Array.from(row)))).toBeLessThan(1e-4);
          // The quantization did change the model (bf16 of a BF16/F16 file excepted: it is stored exactly).
          const original = await loadModel(tf, dir);
          const exact = format === "bf16" && spec.dtype !== undefined;
          if (exact) expect(relativeError(q, logitsOf(tf, original, IDS))).toBeLessThan(2e-5);
          else expect(relativeError(q, logitsOf(tf, original, IDS))).toBeGreaterThan(1e-4);
          original.dispose();
          const gq = loraGradients(quantized);
          const gp = loraGradients(plain);
          expect([...gq.keys()].sort()).toEqual([...gp.keys()].sort());
          for (const [name, g] of gq) expect(relativeError(g, gp.get(name) ?? new Float32Array()), name).toBeLessThan(1e-4);
          expect(quantized.parameterCount).toBe(plain.parameterCount);
          expect(quantized.weightBytes).toBeLessThan(plain.weightBytes);
        } finally {
          quantized.dispose();
          plain.dispose();
        }
      });
    }
  }
});

describeNeeds(need, "the stored product off the wasm backend", () => {
  itNeeds(need, "on the cpu backend (activations copied across) the nf4 model gives the wasm backend's logits", async () => {
    const dir = join(tmp.path, "cpu-check");
    writeTinyCheckpoint(dir, { kind: "llama", hidden: 96, intermediate: 200, seed: 25 });
    const onWasm = await loadModel(tf, dir, { quantize: "nf4" });
    const wasm = logitsOf(tf, onWasm, IDS);
    onWasm.dispose();
    await tf.setBackend("cpu");
    try {
      const onCpu = await loadModel(tf, dir, { quantize: "nf4" });
      expect(relativeError(logitsOf(tf, onCpu, IDS), wasm)).toBeLessThan(2e-5);
      const gradients = loraGradients(onCpu);
      expect([...gradients.values()].some((g) => g.some((v) => v !== 0))).toBe(true);
      onCpu.dispose();
    } finally {
      await tf.setBackend("wasm");
    }
  });
});
