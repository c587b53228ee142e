import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadBackend } from "../dist/backend/load.js";
import { attachLora } from "../dist/lora/attach.js";
import { loadModel } from "../dist/model/load-model.js";
import { trainSchema } from "../dist/recipe/schema.js";
import { createOptimizer, trainLoop } from "../dist/train/loop.js";
import { SMOLLM2_135M, writeSmolLmShaped } from "./smollm-shape.js";
import { matmulParameters, median } from "./shared.js";

const T = 256;

function sequences(count) {
  return Array.from({ length: count }, (_, s) => {
    const ids = Int32Array.from({ length: T }, (_, i) => (s * 131 + i * 7919) % SMOLLM2_135M.vocab_size);
    return { ids, labels: Uint8Array.from(ids, (_, i) => (i === 0 ? 0 : 1)), positions: Int32Array.from(ids, (_, i) => i), segments: new Int32Array(T) };
  });
}

async function measure(tf, model, { batch, targets, steps, checkpointing }) {
  const lora = attachLora(tf, model, { r: 8, alpha: 16, dropout: 0, targetModules: targets, layers: "all", rslora: false, seed: 1 });
  const optimizer = createOptimizer(tf, 0);
  const config = { ...trainSchema.parse({ max_steps: steps + 1, batch_size: batch, lr: 1e-4, save_every: 1000, eval_every: 1000 }), gradient_checkpointing: checkpointing };
  const times = [];
  let last = performance.now();
  await trainLoop({
    tf, model, lora, optimizer, train: sequences(8), validation: [], config, totalSteps: steps + 1, padId: 0, resume: null,
    signal: new AbortController().signal,
    callbacks: {
      onStep: async () => { const now = performance.now(); times.push(now - last); last = now; },
      onEval: async () => {}, onCheckpoint: async () => {}, onLog: () => {},
    },
  });
  lora.dispose();
  optimizer.dispose();
  // The first step warms up; the median of the rest.
  return (batch * T) / (median(times.slice(1)) / 1000);
}

/** Training throughput on SmolLM2-135M shapes: tokens/s and effective GFLOP/s (4 × matmul params × tokens/s). */
export async function trainingBench(machine = {}) {
  const dir = mkdtempSync(join(tmpdir(), "finetune-bench-"));
  try {
    await writeSmolLmShaped(dir);
    const backend = await loadBackend({ forced: process.env.FINETUNE_BACKEND });
    const model = await loadModel(backend.tf, dir);
    const params = matmulParameters(model);
    const lines = [`## training: SmolLM2-135M shapes, T=${T}, LoRA r=8, backend ${backend.label}`, "(effective GFLOP/s = 4 × matmul parameters × tokens/s; forward 2, backward 2 — LoRA skips weight gradients)"];
    const steps = Math.max(1, Number(process.env.BENCH_TRAIN_STEPS ?? 3) || 3);
    const runs = [[1, ["q_proj", "v_proj"], false], [1, ["q_proj", "v_proj"], true], [4, ["q_proj", "v_proj"], true], [1, "all-linear", false]];
    for (const [batch, targets, checkpointing] of runs) {
      const tps = await measure(backend.tf, model, { batch, targets, steps, checkpointing });
      const gflops = (4 * params * tps) / 1e9;
      // Without the native addon, also the share of what the active (single-threaded wasm) kernel can do at best.
      const ofActive = machine.activePath === "wasm-xnnpack" && machine.wasm ? ` (${((100 * gflops) / machine.wasm).toFixed(0)}% of the active path's ${machine.wasm.toFixed(0)})` : "";
      const ratio = machine.peak ? ` · ${((100 * gflops) / machine.peak).toFixed(0)}% of the ${machine.peak.toFixed(0)} GFLOP/s peak${ofActive}` : "";
      lines.push(`batch ${batch}, ${Array.isArray(targets) ? targets.join("+") : targets}${checkpointing ? ", checkpointing" : ""}: ${tps.toFixed(1)} tok/s · ${gflops.toFixed(1)} GFLOP/s effective${ratio} · peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
    }
    model.dispose();
    lines.push("");
    return lines;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
