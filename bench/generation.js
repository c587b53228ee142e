import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadBackend } from "../dist/backend/load.js";
import { loadModel } from "../dist/model/load-model.js";
import { writeSmolLmShaped } from "./smollm-shape.js";
import { loadNativeWeights } from "../dist/backend/native-weights.js";
import { timeDecoding, timeTfjsDecoding } from "./shared.js";

const PROMPT = 128;
const DECODE = 32;
const ROUNDS = 3;

/** Prefill and decode throughput, load time and peak RSS for a SmolLM2-135M-shaped model on the current backend. */
export async function generationBench(machine = {}) {
  const dir = mkdtempSync(join(tmpdir(), "finetune-bench-"));
  try {
    await writeSmolLmShaped(dir);
    const backend = await loadBackend({ forced: process.env.FINETUNE_BACKEND });
    const { tf } = backend;
    const prompt = Int32Array.from({ length: PROMPT }, (_, i) => (i * 7919) % 49152);
    const settings = { prompt, tokens: DECODE, rounds: ROUNDS };
    // As generate runs it: float32 weights in the native store and the native lean decoder (where the addon is).
    let started = performance.now();
    const native = await loadModel(tf, dir, { float32In: loadNativeWeights().addon ? "native" : "tensors" });
    const loadSeconds = (performance.now() - started) / 1000;
    const lean = await timeDecoding(native, settings);
    const weightBytes = native.weightBytes;
    const parameters = native.parameterCount;
    native.dispose();
    // The model's own tfjs forward pass on float32 tensors, as training and eval use it.
    started = performance.now();
    const tensors = await loadModel(tf, dir);
    const tensorLoadSeconds = (performance.now() - started) / 1000;
    const tfjs = await timeTfjsDecoding(tensors, settings);
    tensors.dispose();
    const rssMb = process.resourceUsage().maxRSS / 1024;
    const bound = machine.bandwidth ? (machine.bandwidth * 1e9) / weightBytes : null;
    const line = (label, t) =>
      `${label.padEnd(30)} prefill ${(PROMPT / t.prefillSeconds).toFixed(1)} tok/s · decode ${(DECODE / t.decodeSeconds).toFixed(1)} tok/s` +
      (bound ? ` (${((100 * (DECODE / t.decodeSeconds)) / bound).toFixed(0)}% of the bandwidth bound)` : "");
    return [
      `## generation: SmolLM2-135M shapes (random BF16 weights), backend ${backend.label}`,
      `load                ${loadSeconds.toFixed(2)} s into the ${lean.kind === "native" ? "native store" : "backend"}, ${tensorLoadSeconds.toFixed(2)} s as tfjs tensors (${(parameters / 1e6).toFixed(1)} M parameters)`,
      `prompt ${PROMPT} tokens, then ${DECODE} greedy tokens, median of ${ROUNDS}` +
        (bound ? `; bandwidth bound ${bound.toFixed(1)} tok/s (${(weightBytes / 1e6).toFixed(0)} MB of float32 weights read per token)` : ""),
      line(lean.kind === "native" ? "native lean decoder (generate)" : "generate (no native decoder)", lean),
      line("tfjs forward pass", tfjs),
      `decode speed-up   ${(tfjs.decodeSeconds / lean.decodeSeconds).toFixed(2)}× · prefill ${(tfjs.prefillSeconds / lean.prefillSeconds).toFixed(2)}×`,
      `peak RSS            ${rssMb.toFixed(0)} MB`,
      "",
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
