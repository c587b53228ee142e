/**
 * Training on a quantized base (issue #12) with the real stories260K model: a LoRA trained on the nf4 base reaches a
 * validation loss within 5% of the same recipe on float32; its adapter is an ordinary PEFT adapter for the float32
 * base (eval applies it there); `export merged` folds it into the checkpoint's original weights, not dequantized ones.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import { loadNativeWeights } from "../../src/backend/native-weights.js";
import { describeNeeds, itNeeds, nativeAddon, sharedFiles, sharedPath } from "../helpers/needs.js";
import { readSafetensors } from "../helpers/reference-model.js";
import { cleanEnv, lastJson, ROOT, runCli, tempDir } from "../helpers/run-cli.js";

const stories = sharedPath("models/stories260K");
const storiesNeed = sharedFiles(["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"].map((f) => `models/stories260K/${f}`));
const native = nativeAddon(loadNativeWeights());
const need = storiesNeed.missing !== null ? storiesNeed : native;

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const env = () => cleanEnv({ HOME: tmp.path, HF_HUB_OFFLINE: "1", HF_HUB_CACHE: join(tmp.path, "cache") });
const data = join(ROOT, "datasets", "text-fables.jsonl");

function recipe(name: string, quantize: string): string {
  const file = join(tmp.path, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `model:\n  name: ${stories}\n  quantize: ${quantize}`,
      `data:\n  train: ${data}\n  validation: 0.1`,
      "lora:\n  r: 8\n  alpha: 16\n  dropout: 0.0\n  target_modules: all-linear",
      "train:\n  max_steps: 40\n  batch_size: 8\n  lr: 1.0e-2\n  warmup_steps: 4\n  eval_every: 20\n  save_every: 40\n  max_seq_len: 64\n  seed: 3",
      `output: ${join(tmp.path, name)}`,
    ].join("\n") + "\n",
  );
  return file;
}

const lastValLoss = (run: string) => {
  const rows = readFileSync(join(run, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { type: string; val_loss?: number });
  return rows.filter((r) => r.type === "eval").at(-1)?.val_loss ?? NaN;
};

let runs: Record<"none" | "nf4", string>;
beforeAll(async () => {
  if (need.missing !== null) return;
  runs = { none: join(tmp.path, "none"), nf4: join(tmp.path, "nf4") };
  for (const q of ["none", "nf4"] as const) {
    const result = await runCli(["train", recipe(q, q), "--json"], env());
    if (result.code !== 0) throw new Error(`train ${q} failed: ${result.stderr}`);
  }
}, 300_000);

describeNeeds(need, "LoRA on an nf4 base (stories260K)", () => {
  itNeeds(need, "reaches a validation loss within 5% of float32, and its adapter works on the float32 base", async () => {
    const none = lastValLoss(runs.none);
    const nf4 = lastValLoss(runs.nf4);
    console.log(`stories260K, 40 steps: val loss float32 ${none.toFixed(4)}, nf4 base ${nf4.toFixed(4)} (${(100 * (nf4 / none - 1)).toFixed(2)}%)`);
    expect(Math.abs(nf4 / none - 1)).toBeLessThan(0.05);
    // The base's own loss on the same text, to show the adapters learned something.
    const text = readFileSync(data, "utf8").split("\n").filter(Boolean).slice(0, 20).map((l) => (JSON.parse(l) as { text: string }).text).join("\n");
    writeFileSync(join(tmp.path, "eval.txt"), text);
    const evalLoss = async (extra: string[]) => {
      const result = await runCli(["eval", "--model", stories, "--data", join(tmp.path, "eval.txt"), "--json", ...extra], env());
      expect(result.code, result.stderr).toBe(0);
      return lastJson(result.stdout).loss as number;
    };
    const base = await evalLoss([]);
    const onFloat32 = await evalLoss(["--adapter", join(runs.nf4, "adapter")]);
    const onNf4 = await evalLoss(["--adapter", join(runs.nf4, "adapter"), "--quantize", "nf4"]);
    expect(onFloat32).toBeLessThan(base * 0.8);
    // Trained against nf4 weights, the adapter still suits the float32 base within a few percent.
    expect(Math.abs(onFloat32 / onNf4 - 1)).toBeLessThan(0.08);
  });

  itNeeds(need, "export merged folds the adapter into the checkpoint's original float32 weights", async () => {
    const out = join(tmp.path, "merged");
    const result = await runCli(["export", runs.nf4, "--format", "merged", "--out", out], env());
    expect(result.code, result.stderr).toBe(0);
    const original = readSafetensors(join(stories, "model.safetensors"));
    const merged = readSafetensors(join(out, "model.safetensors"));
    const adapter = readSafetensors(join(runs.nf4, "adapter", "adapter_model.safetensors"));
    const config = JSON.parse(readFileSync(join(runs.nf4, "adapter", "adapter_config.json"), "utf8")) as { r: number; lora_alpha: number };
    const scale = config.lora_alpha / config.r;
    // Untouched tensors are the original values exactly.
    expect(Array.from(merged.get("model.norm.weight")?.data ?? [])).toEqual(Array.from(original.get("model.norm.weight")?.data ?? []));
    expect(Array.from(merged.get("model.embed_tokens.weight")?.data ?? [])).toEqual(Array.from(original.get("model.embed_tokens.weight")?.data ?? []));
    // An adapted one is original + scale·B·A, computed here in float64 (an nf4-dequantized base would be off by ~1e-2).
    const name = "model.layers.0.self_attn.q_proj";
    const w = original.get(`${name}.weight`);
    const a = adapter.get(`base_model.model.${name}.lora_A.weight`);
    const b = adapter.get(`base_model.model.${name}.lora_B.weight`);
    const m = merged.get(`${name}.weight`);
    if (!w || !a || !b || !m) throw new Error("tensor missing");
    const [rows = 0, cols = 0] = w.shape;
    let worst = 0;
    for (let i = 0; i < rows; i += 1) {
      for (let j = 0; j < cols; j += 1) {
        let delta = 0;
        for (let k = 0; k < config.r; k += 1) delta += (b.data[i * config.r + k] ?? 0) * (a.data[k * cols + j] ?? 0);
        worst = Math.max(worst, Math.abs((m.data[i * cols + j] ?? 0) - ((w.data[i * cols + j] ?? 0) + scale * delta)));
      }
    }
    expect(worst).toBeLessThan(1e-6);
  });
});
