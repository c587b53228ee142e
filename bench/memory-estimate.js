// `node bench/memory-estimate.js` (after `npx tsc -p tsconfig.json`): measures what src/train/memory-budget.ts
// estimates, on random-weight checkpoints of real shapes, on the wasm backend. Not part of the test run (minutes, GBs).
//
// For each case it loads the model, trains a few steps and reports:
//   - the wasm heap after loading vs the float32 weights (tf.memory().numBytes): the heap's overhead on weights;
//   - the heap's peak during training minus the weights vs the estimate's adapters + activations + loss chunk
//     (before OVERHEAD): the measured overhead on what training adds, which quantize bf16/int8/nf4 leaves in the heap;
//   - the process's peak RSS minus the heap's peak: Node, V8, tfjs and the tokenizer (PROCESS_BASELINE).
// Each case runs in its own process (the heap only grows), selected by argv[2].
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadBackend } from "../dist/backend/load.js";
import { wasmHeapBytes } from "../dist/backend/wasm-guard.js";
import { writeSafetensors } from "../dist/io/safetensors-write.js";
import { attachLora } from "../dist/lora/attach.js";
import { loadModel } from "../dist/model/load-model.js";
import { trainSchema } from "../dist/recipe/schema.js";
import { createOptimizer, trainLoop } from "../dist/train/loop.js";
import { estimateTrainingMemory } from "../dist/train/memory-budget.js";
import { randomTensor } from "./smollm-shape.js";
import { parseModelConfig } from "../dist/model/config.js";

const SMOLLM2 = { vocab_size: 49152, hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3 };
// Llama-3.2-1B's widths (hidden, MLP, heads, the 128256-token tied head) with fewer layers, so float32 weights fit
// the heap and the non-weight part can be measured; activations per layer are the 1B's own.
const LLAMA_1B_WIDE = (layers) => ({ vocab_size: 128256, hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: layers, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64 });

const CASES = {
  "smollm-t256-b4": { shape: SMOLLM2, T: 256, batch: 4, r: 8, targets: ["q_proj", "v_proj"], checkpointing: true },
  "smollm-t256-b4-nockpt": { shape: SMOLLM2, T: 256, batch: 4, r: 8, targets: ["q_proj", "v_proj"], checkpointing: false },
  "llama1b-wide-1layer-t512": { shape: LLAMA_1B_WIDE(1), T: 512, batch: 1, r: 16, targets: "all-linear", checkpointing: true },
  "llama1b-wide-2layer-t512": { shape: LLAMA_1B_WIDE(2), T: 512, batch: 1, r: 16, targets: "all-linear", checkpointing: true },
};

async function writeLlama(dir, shape) {
  const c = { model_type: "llama", max_position_embeddings: 4096, rms_norm_eps: 1e-5, rope_theta: 500000, tie_word_embeddings: true, hidden_act: "silu", ...shape };
  const H = c.hidden_size;
  const hd = c.head_dim ?? H / c.num_attention_heads;
  const tensors = [];
  let seed = 1;
  const add = (name, dims, scale) => tensors.push({ name, dtype: "BF16", shape: dims, data: randomTensor(dims[0] * dims[1], scale, seed++) });
  const ones = (name) => tensors.push({ name, dtype: "BF16", shape: [H], data: new Float32Array(H).fill(1) });
  add("model.embed_tokens.weight", [c.vocab_size, H], 0.05);
  for (let l = 0; l < c.num_hidden_layers; l += 1) {
    const p = `model.layers.${l}`;
    ones(`${p}.input_layernorm.weight`);
    ones(`${p}.post_attention_layernorm.weight`);
    const s = 1 / Math.sqrt(H);
    add(`${p}.self_attn.q_proj.weight`, [c.num_attention_heads * hd, H], s);
    add(`${p}.self_attn.k_proj.weight`, [c.num_key_value_heads * hd, H], s);
    add(`${p}.self_attn.v_proj.weight`, [c.num_key_value_heads * hd, H], s);
    add(`${p}.self_attn.o_proj.weight`, [H, c.num_attention_heads * hd], s);
    add(`${p}.mlp.gate_proj.weight`, [c.intermediate_size, H], s);
    add(`${p}.mlp.up_proj.weight`, [c.intermediate_size, H], s);
    add(`${p}.mlp.down_proj.weight`, [H, c.intermediate_size], 1 / Math.sqrt(c.intermediate_size));
  }
  ones("model.norm.weight");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(c, null, 2));
  await writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
  return c;
}

const mb = (bytes) => `${(bytes / 1e6).toFixed(0)} MB`;

async function measureCase(name) {
  const spec = CASES[name];
  const dir = mkdtempSync(join(tmpdir(), "finetune-memory-"));
  try {
    const raw = await writeLlama(dir, spec.shape);
    const backend = await loadBackend({ forced: "wasm" });
    const { tf } = backend;
    const rssBefore = process.memoryUsage().rss;
    const heapBefore = wasmHeapBytes(tf);
    const model = await loadModel(tf, dir);
    const weights = tf.memory().numBytes;
    const heapLoaded = wasmHeapBytes(tf);
    const lora = attachLora(tf, model, { r: spec.r, alpha: 2 * spec.r, dropout: 0, targetModules: spec.targets, layers: "all", rslora: false, seed: 1 });
    const loraParameters = lora.variables().reduce((n, v) => n + v.size, 0);
    const optimizer = createOptimizer(tf, 0);
    const steps = 2;
    const config = { ...trainSchema.parse({ max_steps: steps, batch_size: spec.batch, lr: 1e-4, save_every: 1000, eval_every: 1000, max_seq_len: spec.T }), gradient_checkpointing: spec.checkpointing };
    const train = Array.from({ length: spec.batch * steps }, (_, s) => {
      const ids = Int32Array.from({ length: spec.T }, (_, i) => (s * 131 + i * 7919) % raw.vocab_size);
      return { ids, labels: Uint8Array.from(ids, (_, i) => (i === 0 ? 0 : 1)), positions: Int32Array.from(ids, (_, i) => i), segments: new Int32Array(spec.T) };
    });
    await trainLoop({
      tf, model, lora, optimizer, train, validation: [], config, totalSteps: steps, padId: 0, resume: null,
      signal: new AbortController().signal,
      callbacks: { onStep: async () => {}, onEval: async () => {}, onCheckpoint: async () => {}, onLog: () => {} },
    });
    const heapPeak = wasmHeapBytes(tf);
    const maxRss = process.resourceUsage().maxRSS * 1024;
    const estimate = estimateTrainingMemory(parseModelConfig(raw, "config.json"), { batchSize: spec.batch, seqLen: spec.T, loraParameters, checkpointing: spec.checkpointing });
    const training = estimate.adapters + estimate.activations + estimate.lossHead;
    return {
      name,
      weights, heapBefore, heapLoaded, heapPeak, rssBefore, maxRss,
      estimate: { weights: estimate.weights, training, total: estimate.total },
      lines: [
        `${name}: weights ${mb(weights)} (estimate ${mb(estimate.weights)}); heap after load ${mb(heapLoaded)} = ${(heapLoaded / weights).toFixed(3)} × weights`,
        `  heap peak ${mb(heapPeak)} (estimate total ${mb(estimate.total)}); peak − weights ${mb(heapPeak - weights)} vs estimate adapters+activations+loss ${mb(training)}: ${((heapPeak - weights) / training).toFixed(3)} ×`,
        `  RSS before load ${mb(rssBefore)} (heap ${mb(heapBefore)}); peak RSS ${mb(maxRss)} − heap peak = ${mb(maxRss - heapPeak)}`,
      ],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const only = process.argv[2];
if (only) {
  const result = await measureCase(only);
  console.log(JSON.stringify(result));
} else {
  for (const name of Object.keys(CASES)) {
    const run = spawnSync(process.execPath, [fileURLToPath(import.meta.url), name], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 24 });
    const line = run.stdout.trim().split("\n").at(-1) ?? "";
    if (run.status !== 0) {
      console.log(`${name}: failed (exit ${run.status ?? run.signal})`);
      continue;
    }
    for (const text of JSON.parse(line).lines) console.log(text);
  }
}
