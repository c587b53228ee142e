// One model in one storage format, in a process of its own (bench/big-models.js starts one per format, so each
// peak RSS is that format's alone): load, greedy decode with a KV cache, then LoRA training on all linear layers.
// Decode is timed twice: as `generate` runs it (the native lean decoder; for format none on float32 weights in the
// native store, loaded after training so that no peak RSS includes them) and on the model's tfjs forward pass.
import { loadBackend } from "../dist/backend/load.js";
import { attachLora } from "../dist/lora/attach.js";
import { loadModel, readModelConfig } from "../dist/model/load-model.js";
import { trainSchema } from "../dist/recipe/schema.js";
import { backendLimit, estimateTrainingMemory, parameterCount } from "../dist/train/memory-budget.js";
import { createOptimizer, trainLoop } from "../dist/train/loop.js";
import { ensureCheckpoint } from "./big-checkpoint.js";
import { DECODE, TRAIN } from "./format-settings.js";
import { peakRssKiB, resetPeakRss } from "./peak-rss.js";
import { matmulParameters, median, timeDecoding, timeTfjsDecoding } from "./shared.js";

/**
 * Measures `name` (a BIG_MODELS key, already in the cache) stored as `format`. Returns figures, or `skipped` /
 * `error` saying why there are none; never throws for a model that does not fit.
 */
export async function formatRun({ name, format, warmupSteps = 1, timedSteps = 2, decodeRounds = 1 }) {
  const { dir } = ensureCheckpoint(name);
  const backend = await loadBackend({ forced: process.env.FINETUNE_BACKEND });
  const { tf } = backend;
  const config = await readModelConfig(dir);
  const result = { format, backend: backend.label, parameterCount: parameterCount(config) };
  const float32Bytes = 4 * parameterCount(config);
  const limit = backendLimit(tf.getBackend());

  // Until the loader stores a format natively it loads it as float32 tensors: then the float32 estimate decides.
  const storage = format === "none" ? "float32" : await probeStorage(tf, format);
  if (storage.error) return { ...result, error: storage.error };
  let trainFits = true;
  if (storage === "float32") {
    const estimate = estimateTrainingMemory(config, { batchSize: 1, seqLen: TRAIN.T, loraParameters: loraParametersAllLinear(config, TRAIN.r), checkpointing: true });
    const how = format === "none" ? "" : `this build loads quantize: ${format} as float32; `;
    if (float32Bytes > limit) return { ...result, storedAs: "float32", weightBytes: float32Bytes, skipped: `does not fit: ${how}${gb(float32Bytes)} GB of float32 weights > ${gb(limit)} GB ${heapName(tf)}` };
    trainFits = estimate.total <= limit;
    if (!trainFits) result.trainSkipped = `does not fit: ${how}training needs ~${gb(estimate.total)} GB (estimate) > ${gb(limit)} GB ${heapName(tf)}`;
  }

  // 1. Load.
  let model;
  const started = performance.now();
  try {
    model = await loadModel(tf, dir, { quantize: format });
  } catch (error) {
    return { ...result, error: `load failed: ${message(error)}` };
  }
  result.loadSeconds = (performance.now() - started) / 1000;
  result.loadPeakKiB = peakRssKiB();
  result.parameterCount = model.parameterCount;
  result.weightBytes = model.weightBytes ?? 4 * model.parameterCount;
  result.storedAs = result.weightBytes < 4 * model.parameterCount ? format : "float32";

  // 2. Decode: a 32-token prompt, then 32 greedy tokens, each one step over one token with the KV cache.
  const settings = { prompt: DECODE_PROMPT, tokens: DECODE.tokens, rounds: decodeRounds };
  try {
    const tfjs = await timeTfjsDecoding(model, settings);
    result.tfjsDecodeTps = DECODE.tokens / tfjs.decodeSeconds;
    if (format !== "none") Object.assign(result, decodeFigures(await timeDecoding(model, settings)));
  } catch (error) {
    result.decodeError = message(error);
  }

  // 3. Train: T=512, batch 1, LoRA r=16 on every linear layer, gradient checkpointing.
  if (trainFits) {
    result.trainPeakIsPhase = resetPeakRss();
    try {
      const tps = await train(tf, model, { warmupSteps, timedSteps, vocab: config.vocabSize });
      result.trainTps = tps;
      result.trainSteps = { warmupSteps, timedSteps };
      result.gflops = (4 * matmulParameters(model) * tps) / 1e9;
      result.trainPeakKiB = peakRssKiB();
    } catch (error) {
      result.trainError = message(error);
    }
  }
  model.dispose();
  if (format === "none" && !result.decodeError) {
    try {
      const native = await loadModel(tf, dir, { float32In: "native" });
      Object.assign(result, decodeFigures(await timeDecoding(native, settings)));
      native.dispose();
    } catch (error) {
      result.decodeError = `float32 in the native store: ${message(error)}`;
    }
  }
  return result;
}

const DECODE_PROMPT = Int32Array.from({ length: DECODE.prompt }, (_, i) => 3 + ((i * 7919) % 200));

function decodeFigures({ kind, prefillSeconds, decodeSeconds }) {
  return { decoder: kind, prefillTps: DECODE.prompt / prefillSeconds, decodeTps: DECODE.tokens / decodeSeconds };
}

/** How this build stores `format`: loads the tiny bench model with it and compares its bytes with float32's. */
async function probeStorage(tf, format) {
  const { dir } = ensureCheckpoint("tiny-llama-a");
  try {
    const probe = await loadModel(tf, dir, { quantize: format });
    const native = probe.weightBytes !== undefined && probe.weightBytes < 4 * probe.parameterCount;
    probe.dispose();
    return native ? "native" : "float32";
  } catch (error) {
    return { error: message(error) };
  }
}

/** Tokens/s of the median timed step of the real training loop (the warm-up steps are not counted). */
async function train(tf, model, { warmupSteps, timedSteps, vocab }) {
  const { T, r, alpha } = TRAIN;
  const lora = attachLora(tf, model, { r, alpha, dropout: 0, targetModules: "all-linear", layers: "all", rslora: false, seed: 1 });
  const optimizer = createOptimizer(tf, 0);
  const steps = warmupSteps + timedSteps;
  const sequences = Array.from({ length: 2 }, (_, s) => {
    const ids = Int32Array.from({ length: T }, (_, i) => 3 + ((s * 131 + i * 7919) % (vocab - 3)));
    return { ids, labels: Uint8Array.from(ids, (_, i) => (i === 0 ? 0 : 1)), positions: Int32Array.from(ids, (_, i) => i), segments: new Int32Array(T) };
  });
  const config = { ...trainSchema.parse({ max_steps: steps, batch_size: 1, lr: 1e-4, save_every: 1000, eval_every: 1000 }), gradient_checkpointing: true };
  const times = [];
  let last = performance.now();
  try {
    await trainLoop({
      tf, model, lora, optimizer, train: sequences, validation: [], config, totalSteps: steps, padId: 0, resume: null,
      signal: new AbortController().signal,
      callbacks: {
        onStep: async () => { const now = performance.now(); times.push(now - last); last = now; },
        onEval: async () => {}, onCheckpoint: async () => {}, onLog: () => {},
      },
    });
  } finally {
    lora.dispose();
    optimizer.dispose();
  }
  return T / (median(times.slice(warmupSteps)) / 1000);
}

/** LoRA parameters of rank r on every linear layer (q, k, v, o, gate, up, down), for the memory estimate. */
function loraParametersAllLinear(c, r) {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const H = c.hiddenSize;
  const I = c.intermediateSize;
  return r * c.numLayers * (H + q + 2 * (H + kv) + q + H + 2 * (H + I) + I + H);
}

const heapName = (tf) => (tf.getBackend() === "wasm" ? "wasm heap" : `(${tf.getBackend()} backend limit)`);
const gb = (bytes) => (bytes / 1e9).toFixed(1);
const message = (error) => (error instanceof Error ? error.message : String(error)).split("\n")[0];
