/**
 * The webgpu backend (tfjs-backend-webgpu on Dawn's Node bindings, the npm package webgpu). On CI the adapter is
 * Mesa's lavapipe, a software Vulkan driver, so it is a CPU "fallback" adapter and the tests allow it with
 * FINETUNE_WEBGPU_ALLOW_FALLBACK=1; every op runs as a WebGPU shader (WEBGPU_CPU_FORWARD is off).
 */
import { readFileSync } from "node:fs";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, expect } from "vitest";
import { loadBackend } from "../../src/backend/load.js";
import { attachLora } from "../../src/lora/attach.js";
import { loadModel } from "../../src/model/load-model.js";
import { trainSchema } from "../../src/recipe/schema.js";
import { createOptimizer, trainLoop } from "../../src/train/loop.js";
import { relativeError } from "../helpers/logits.js";
import { allNeeds, describeNeeds, itNeeds, sharedFiles, sharedPath } from "../helpers/needs.js";
import { referenceGemmaLogits } from "../helpers/reference-gemma.js";
import { referenceLogits } from "../helpers/reference-model.js";
import { cleanEnv, lastJson, runCli, tempDir } from "../helpers/run-cli.js";
import { writeTinyCheckpoint, type TinySpec } from "../helpers/tiny-checkpoint.js";
import { writeTinyGemma } from "../helpers/tiny-gemma.js";
import { webgpuNeed } from "../helpers/webgpu.js";

const { need, adapter } = await webgpuNeed();
const tmp = tempDir();
afterAll(() => tmp.cleanup());
const allowFallback = { FINETUNE_WEBGPU_ALLOW_FALLBACK: "1" };
const env = (extra: Record<string, string> = {}) => cleanEnv({ HOME: join(tmp.path, "home"), HF_HUB_OFFLINE: "1", ...extra });
const IDS = [1, 5, 17, 42, 3, 8, 60, 21, 9, 33, 14, 2];

describeNeeds(need, "the webgpu backend", () => {
  itNeeds(need, "finds a real Vulkan adapter (not Dawn's null backend) and refuses a CPU fallback unless allowed, naming it", async () => {
    expect(adapter?.description ?? "").not.toMatch(/null/i);
    expect(adapter?.maxStorageBufferBindingSize).toBeGreaterThan(0);
    const model = join(tmp.path, "refused-llama");
    writeTinyCheckpoint(model, { kind: "llama" });
    const result = await runCli(["--backend", "webgpu", "generate", "--model", model, "--prompt", "a b", "--max-new-tokens", "2"], env());
    if (adapter?.isFallbackAdapter) {
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`WebGPU found only ${adapter.vendor}`);
      expect(result.stderr).toContain("set FINETUNE_WEBGPU_ALLOW_FALLBACK=1 to use it anyway");
    }
    // Quantized base weights live in the native addon, on the CPU: refused on webgpu with what to do instead.
    const quantized = await runCli(["--backend", "webgpu", "generate", "--model", model, "--prompt", "a b", "--quantize", "bf16"], env(allowFallback));
    expect(quantized.code).toBe(2);
    expect(quantized.stderr).toMatch(/--quantize bf16 (keeps the base weights in the native addon, multiplied on the CPU, which the webgpu backend cannot use|stores the base weights in the native addon's memory)/);
    const doctor = lastJson((await runCli(["doctor", "--json"], env(allowFallback))).stdout) as { webgpu?: { description?: string; fallback?: boolean } };
    expect(doctor.webgpu).toMatchObject({ description: adapter?.description, fallback: adapter?.isFallbackAdapter });
  });

  itNeeds(need, "the model-parity checkpoints: logits equal the float64 reference within 1e-4, and nothing leaks", async () => {
    process.env.FINETUNE_WEBGPU_ALLOW_FALLBACK = "1";
    const { tf, backend } = await loadBackend({ forced: "webgpu", env: { ...process.env } });
    expect([backend, tf.getBackend(), tf.env().getBool("WEBGPU_CPU_FORWARD")]).toEqual(["webgpu", "webgpu", false]);
    const specs: [string, TinySpec | { kind: "gemma3_text" }][] = [
      ["llama", { kind: "llama" }],
      ["qwen3", { kind: "qwen3", headDim: 16 }],
      ["phi3", { kind: "phi3", partialRotary: 0.5 }],
      ["gpt2", { kind: "gpt2" }],
      ["gemma3", { kind: "gemma3_text" }],
    ];
    for (const [label, spec] of specs) {
      const dir = join(tmp.path, label);
      if (spec.kind === "gemma3_text") writeTinyGemma(dir, { kind: "gemma3_text" });
      else writeTinyCheckpoint(dir, spec as TinySpec);
      const before = tf.memory().numTensors;
      const model = await loadModel(tf, dir);
      // WebGPU in Node reads results back asynchronously only.
      const ids = tf.tensor2d(Int32Array.from(IDS), [1, IDS.length], "int32");
      const out = model.forward({ ids });
      const logits = (await out.data()) as Float32Array;
      tf.dispose([ids, out]);
      model.dispose();
      expect({ label, leaked: tf.memory().numTensors - before }).toEqual({ label, leaked: 0 });
      const reference = (spec.kind === "gemma3_text" ? referenceGemmaLogits(dir, IDS) : referenceLogits(dir, IDS)).flatMap((row) => [...row]);
      expect({ label, ok: relativeError(logits, reference) < 1e-4 }).toEqual({ label, ok: true });
    }
  });

  itNeeds(need, "LoRA training steps in process (with validation) leave no tensor behind once the adapter and optimizer are freed", async () => {
    process.env.FINETUNE_WEBGPU_ALLOW_FALLBACK = "1";
    const { tf } = await loadBackend({ forced: "webgpu", env: { ...process.env } });
    const dir = join(tmp.path, "leak-llama");
    writeTinyCheckpoint(dir, { kind: "llama" });
    const model = await loadModel(tf, dir);
    const before = tf.memory().numTensors;
    const lora = attachLora(tf, model, { r: 4, alpha: 8, dropout: 0.1, targetModules: ["q_proj", "v_proj", "down_proj"], layers: "all", rslora: false, seed: 1 });
    const optimizer = createOptimizer(tf, 0.01);
    const T = 16;
    const sequence = (s: number) => {
      const ids = Int32Array.from({ length: T }, (_, i) => 3 + ((s * 7 + i * 13) % 90));
      return { ids, labels: Uint8Array.from(ids, (_, i) => (i === 0 ? 0 : 1)), positions: Int32Array.from(ids, (_, i) => i), segments: new Int32Array(T) };
    };
    const losses: number[] = [];
    await trainLoop({
      tf, model, lora, optimizer, train: [0, 1, 2, 3].map(sequence), validation: [sequence(9)],
      config: { ...trainSchema.parse({ max_steps: 3, batch_size: 2, lr: 1e-3, save_every: 1000, eval_every: 2 }), gradient_checkpointing: false },
      totalSteps: 3, padId: 0, resume: null, signal: new AbortController().signal,
      callbacks: { onStep: async (row) => void losses.push(row.loss), onEval: async () => {}, onCheckpoint: async () => {}, onLog: () => {} },
    });
    lora.dispose();
    optimizer.dispose();
    expect(losses).toHaveLength(3);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(tf.memory().numTensors - before).toBe(0);
    model.dispose();
  });

  itNeeds(allNeeds(need, sharedFiles(["models/stories260K/model.safetensors"])), "LoRA training on stories260K: reproduce of a cpu run on webgpu matches every step's loss within 1e-3 and reports the difference; its adapter generates", async () => {
    const dir = join(tmp.path, "train");
    mkdirSync(dir, { recursive: true });
    const rows = ["girl", "cat", "dog", "bird", "boy", "fish"].flatMap((w, i) => [0, 1, 2, 3].map((k) => JSON.stringify({ text: `Once upon a time, there was a little ${w} named Lily. She loved to play outside ${i * 4 + k}.` })));
    writeFileSync(join(dir, "t.jsonl"), `${rows.join("\n")}\n`);
    const recipe = (backend: string) => {
      const file = join(dir, `${backend}.yaml`);
      writeFileSync(file, `model: ${sharedPath("models/stories260K")}\ndata:\n  train: t.jsonl\n  validation: 0.2\ntrain:\n  max_steps: 4\n  batch_size: 2\n  eval_every: 4\n  save_every: 4\n  max_seq_len: 32\n  seed: 3\noutput: ${join(dir, `run-${backend}`)}\n`);
      return file;
    };
    const trained = await runCli(["--backend", "cpu", "train", recipe("cpu"), "--json"], env(allowFallback));
    expect(trained.code, trained.stderr).toBe(0);
    const losses = (run: string) =>
      readFileSync(join(run, "metrics.jsonl"), "utf8").split("\n").filter((line) => line.includes('"type":"train"')).map((line) => (JSON.parse(line) as { loss: number }).loss);
    // reproduce on webgpu trains the same run there, and reports how far its losses are from the cpu run's.
    const reproduced = await runCli(["--backend", "webgpu", "reproduce", join(dir, "run-cpu"), "--output", join(dir, "again"), "--json"], env(allowFallback));
    expect(reproduced.code, reproduced.stderr).toBe(0);
    const report = lastJson(reproduced.stdout) as { match: boolean; backend: string; expected_backend: string; max_loss_difference: number };
    expect(report.backend).toMatch(/^webgpu: /);
    expect(report.expected_backend).toBe("cpu");
    expect(report.max_loss_difference).toBeLessThan(1e-3);
    const cpu = losses(join(dir, "run-cpu"));
    const webgpu = losses(join(dir, "again"));
    expect(webgpu).toHaveLength(4);
    expect(Math.max(...webgpu.map((loss, i) => Math.abs(loss - (cpu[i] ?? Number.NaN))))).toBeLessThan(1e-3);
    expect((JSON.parse(readFileSync(join(dir, "again", "run.lock.json"), "utf8")) as { backend: { name: string } }).backend.name).toBe(report.backend);
    const generated = await runCli(["--backend", "webgpu", "generate", "--model", sharedPath("models/stories260K"), "--adapter", join(dir, "again"), "--prompt", "Once upon a time", "--max-new-tokens", "4", "--temperature", "0", "--json"], env(allowFallback));
    expect(generated.code, generated.stderr).toBe(0);
    expect((lastJson(generated.stdout) as { ids: number[] }).ids).toHaveLength(4);
  });
});
