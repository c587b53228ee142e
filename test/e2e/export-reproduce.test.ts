import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { filesOf, startHubServer, type HubServer } from "../helpers/hub-server.js";
import { cleanEnv, lastJson, runCli, tempDir } from "../helpers/run-cli.js";
import { writeSafetensors, writeTinyCheckpoint, writeTokenizerFiles } from "../helpers/tiny-checkpoint.js";
import { tinyGemmaConfig, tinyGemmaTensors } from "../helpers/tiny-gemma.js";

const tmp = tempDir();
let hub: HubServer;
const env = () => cleanEnv({ HOME: join(tmp.path, "home"), HF_ENDPOINT: hub.url, HF_HUB_CACHE: join(tmp.path, "cache"), HF_TOKEN: "hf_exportTestSecret123" });

/** A finished tiny run on a hub model; returns its directory. */
async function trainRun(name: string, model: string, modules: string): Promise<string> {
  const dir = join(tmp.path, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "t.jsonl"), ["a b c d e f", "g h i j k l", "m n o p q r"].map((text) => JSON.stringify({ text })).join("\n") + "\n");
  writeFileSync(
    join(dir, "recipe.yaml"),
    `model: ${model}\ndata:\n  train: t.jsonl\n  validation: 0\nlora:\n  r: 4\n  alpha: 8\n  dropout: 0.0\n  target_modules: ${modules}\ntrain:\n  max_steps: 8\n  batch_size: 3\n  lr: 2.0e-2\n  save_every: 4\n  max_seq_len: 64\noutput: ${join(dir, "run")}\n`,
  );
  const result = await runCli(["train", join(dir, "recipe.yaml")], env());
  expect(result.code, result.stderr).toBe(0);
  return join(dir, "run");
}

let llamaRun: string;
let gpt2Run: string;
let qwen3Run: string;
let smollm3Run: string;
let phi3Run: string;
let gemma3Run: string;

beforeAll(async () => {
  const llama = join(tmp.path, "src-llama");
  const gpt2 = join(tmp.path, "src-gpt2");
  writeTinyCheckpoint(llama, { kind: "llama", seed: 71 });
  writeTinyCheckpoint(gpt2, { kind: "gpt2", seed: 72 });
  // Qwen3 (head norms, head_dim 16 on hidden 32) and SmolLM3 (a NoPE layer) through train → export → eval.
  writeTinyCheckpoint(join(tmp.path, "src-qwen3"), { kind: "qwen3", headDim: 16, tied: true, seed: 73 });
  writeTinyCheckpoint(join(tmp.path, "src-smollm3"), { kind: "smollm3", layers: 2, noRopeLayers: [1, 0], seed: 74 });
  writeTinyCheckpoint(join(tmp.path, "src-phi3"), { kind: "phi3", partialRotary: 0.5, longRope: { original: 32 }, maxPositions: 128, seed: 75 });
  writeGemma3Multimodal(join(tmp.path, "src-gemma3"));
  hub = await startHubServer([
    { name: "tiny/llama", commits: [{ files: filesOf(llama) }] },
    { name: "tiny/gpt2", commits: [{ files: filesOf(gpt2) }] },
    { name: "tiny/qwen3", commits: [{ files: filesOf(join(tmp.path, "src-qwen3")) }] },
    { name: "tiny/smollm3", commits: [{ files: filesOf(join(tmp.path, "src-smollm3")) }] },
    { name: "tiny/phi3", commits: [{ files: filesOf(join(tmp.path, "src-phi3")) }] },
    { name: "tiny/gemma3", commits: [{ files: filesOf(join(tmp.path, "src-gemma3")) }] },
  ]);
  llamaRun = await trainRun("llama", "tiny/llama", "all-linear");
  gpt2Run = await trainRun("gpt2", "tiny/gpt2", "[c_attn, c_proj, c_fc]");
  qwen3Run = await trainRun("qwen3", "tiny/qwen3", "all-linear");
  smollm3Run = await trainRun("smollm3", "tiny/smollm3", "[q_proj, v_proj]");
  phi3Run = await trainRun("phi3", "tiny/phi3", "[qkv_proj, gate_up_proj]");
  gemma3Run = await trainRun("gemma3", "tiny/gemma3", "all-linear");
});
afterAll(async () => {
  await hub.close();
  tmp.cleanup();
});

describe("run.lock.json and finetune reproduce", () => {
  it("pins versions, the model commit and files, data hashes, recipe, seed and adapter hash — no token or home path", () => {
    const text = readFileSync(join(llamaRun, "run.lock.json"), "utf8");
    const lock = JSON.parse(text) as Record<string, any>;
    expect(lock).toMatchObject({ lock_version: 1, node: process.version, backend: { name: "wasm", tfjs: "4.22.0" }, seed: 42 });
    expect(lock.model).toMatchObject({ repo: "tiny/llama", revision: hub.shas("tiny/llama")[0], path: null });
    expect(lock.model.files.map((f: { path: string }) => f.path)).toEqual(["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]);
    expect(lock.data).toEqual([{ path: "../t.jsonl", sha256: expect.stringMatching(/^[0-9a-f]{64}$/), records: 3, role: "train" }]);
    expect(lock.recipe.train.max_steps).toBe(8);
    expect(lock.train_losses).toHaveLength(8);
    expect(text).not.toContain("hf_exportTestSecret123");
    expect(text).not.toContain(homedir());
    expect(text).not.toContain(tmp.path);
  });

  it("re-runs a finished run to a byte-identical adapter", async () => {
    const result = await runCli(["reproduce", join(llamaRun, "run.lock.json"), "--output", join(tmp.path, "again"), "--json"], env());
    expect(result.code, result.stderr).toBe(0);
    const out = lastJson(result.stdout);
    expect(out).toMatchObject({ match: true, output: join(tmp.path, "again") });
    expect(out.adapter_sha256).toBe(out.expected_sha256);
  });

  it("takes a run directory, and replaces an earlier re-run only with --overwrite (the flag it suggests)", async () => {
    const output = join(tmp.path, "again-dir");
    const first = await runCli(["reproduce", llamaRun, "--output", output, "--json"], env());
    expect(first.code, first.stderr).toBe(0);
    expect(lastJson(first.stdout)).toMatchObject({ match: true, output });
    const again = await runCli(["reproduce", llamaRun, "--output", output], env());
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`${output} is not empty (an earlier re-run?); add --overwrite to replace it`);
    expect(again.stderr).not.toContain("--resume");
    const replaced = await runCli(["reproduce", llamaRun, "--output", output, "--overwrite", "--json"], env());
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(lastJson(replaced.stdout)).toMatchObject({ match: true, output });
    // Never over the run itself, and a folder without a lock is named as such.
    const self = await runCli(["reproduce", llamaRun, "--output", llamaRun, "--overwrite"], env());
    expect(self.code).toBe(2);
    expect(self.stderr).toContain("is the run being reproduced");
    expect(existsSync(join(llamaRun, "run.lock.json"))).toBe(true);
    const notRun = await runCli(["reproduce", tmp.path], env());
    expect(notRun.code).toBe(2);
    expect(notRun.stderr).toContain(`${join(tmp.path, "run.lock.json")} does not exist`);
  });

  it("--adapter takes a run directory; a missing path says it does not exist, before any model is loaded", async () => {
    const viaRun = await runCli(["generate", "--model", "tiny/llama", "--adapter", llamaRun, "--prompt", "a b", "--max-new-tokens", "3", "--json"], env());
    expect(viaRun.code, viaRun.stderr).toBe(0);
    const viaAdapter = await runCli(["generate", "--model", "tiny/llama", "--adapter", join(llamaRun, "adapter"), "--prompt", "a b", "--max-new-tokens", "3", "--json"], env());
    expect(lastJson(viaAdapter.stdout).ids).toEqual(lastJson(viaRun.stdout).ids);
    const missing = join(tmp.path, "no-such-adapter");
    for (const command of [["generate", "--prompt", "a"], ["eval", "--text", "a b"]]) {
      // A hub id that does not exist: reaching the hub would fail differently, so the adapter is checked first.
      const result = await runCli([...command, "--model", "tiny/absent", "--adapter", missing], env());
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`--adapter ${missing} does not exist`);
    }
  });

  it("on another backend, reports the largest loss difference instead of demanding identical bytes", async () => {
    const result = await runCli(["reproduce", join(llamaRun, "run.lock.json"), "--output", join(tmp.path, "on-cpu"), "--backend", "cpu", "--json"], env());
    expect(result.code, result.stderr).toBe(0);
    const out = lastJson(result.stdout) as { backend: string; expected_backend: string; max_loss_difference: number };
    expect(out).toMatchObject({ backend: "cpu", expected_backend: "wasm" });
    expect(out.max_loss_difference).toBeLessThan(1e-3);
  });

  it("refuses a modified dataset and a lock from a newer format, naming the file", async () => {
    const dir = join(tmp.path, "mod");
    mkdirSync(dir, { recursive: true });
    const run = await trainRun("mod", "tiny/llama", "[q_proj]");
    writeFileSync(join(tmp.path, "mod", "t.jsonl"), '{"text": "changed"}\n');
    const changed = await runCli(["reproduce", join(run, "run.lock.json")], env());
    expect(changed.code).toBe(2);
    expect(changed.stderr).toContain(`data file ${join(tmp.path, "mod", "t.jsonl")} has changed since the run`);
    const newer = join(tmp.path, "newer.json");
    writeFileSync(newer, JSON.stringify({ ...JSON.parse(readFileSync(join(run, "run.lock.json"), "utf8")), lock_version: 99 }));
    const future = await runCli(["reproduce", newer], env());
    expect(future.code).toBe(2);
    expect(future.stderr).toContain("uses lock format version 99, newer than this finetune reads (1)");
  });
});

describe("finetune export", () => {
  it("peft: adapter files plus a model card with base, sha, data hash, recipe, losses and loading instructions", async () => {
    const out = join(tmp.path, "peft");
    const result = await runCli(["export", llamaRun, "--format", "peft", "--out", out, "--json"], env());
    expect(result.code, result.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(["README.md", "adapter_config.json", "adapter_model.safetensors"]);
    expect(readFileSync(join(out, "adapter_model.safetensors")).equals(readFileSync(join(llamaRun, "adapter", "adapter_model.safetensors")))).toBe(true);
    const card = readFileSync(join(out, "README.md"), "utf8");
    const lock = JSON.parse(readFileSync(join(llamaRun, "run.lock.json"), "utf8")) as { data: Array<{ sha256: string }> };
    for (const text of ["tiny/llama", hub.shas("tiny/llama")[0] ?? "?", lock.data[0]?.sha256 ?? "?", "PeftModel.from_pretrained", "vllm serve", "--format gguf-model --out gguf/", "ollama create my-model -f gguf/Modelfile", "max_steps: 8", "last step train loss"]) expect(card).toContain(text);
  });

  it("merged: eval loss of the merged model equals base + adapter (Llama, GPT-2 Conv1D, Qwen3, SmolLM3, Phi-3's fused modules, gemma3 image-and-text keeping its vision tower)", async () => {
    for (const [run, model] of [[llamaRun, "tiny/llama"], [gpt2Run, "tiny/gpt2"], [qwen3Run, "tiny/qwen3"], [smollm3Run, "tiny/smollm3"], [phi3Run, "tiny/phi3"], [gemma3Run, "tiny/gemma3"]] as const) {
      const out = join(tmp.path, `merged-${model.replace("/", "-")}`);
      const result = await runCli(["export", run, "--format", "merged", "--out", out], env());
      expect(result.code, result.stderr).toBe(0);
      expect(readdirSync(out)).toEqual(expect.arrayContaining(["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]));
      const text = "a b c d e f g h i";
      const withAdapter = lastJson((await runCli(["eval", "--model", model, "--adapter", join(run, "adapter"), "--text", text, "--json"], env())).stdout);
      const merged = lastJson((await runCli(["eval", "--model", out, "--text", text, "--json"], env())).stdout);
      const base = lastJson((await runCli(["eval", "--model", model, "--text", text, "--json"], env())).stdout);
      expect(Math.abs((merged.loss as number) - (withAdapter.loss as number))).toBeLessThan(1e-5);
      expect(Math.abs((merged.loss as number) - (base.loss as number))).toBeGreaterThan(1e-3);
      const header = (path: string) => {
        const st = readFileSync(path);
        return JSON.parse(st.subarray(8, 8 + Number(st.readBigUInt64LE(0))).toString()) as Record<string, { dtype: string; shape: number[] }>;
      };
      const baseHeader = header(join(tmp.path, `src-${model.slice("tiny/".length)}`, "model.safetensors"));
      const mergedHeader = header(join(out, "model.safetensors"));
      for (const [name, entry] of Object.entries(baseHeader)) if (name !== "__metadata__") expect(mergedHeader[name]).toMatchObject({ dtype: entry.dtype, shape: entry.shape });
    }
  });

  it("refuses a directory that is not a run, and an existing --out (untouched)", async () => {
    const notRun = await runCli(["export", tmp.path, "--format", "peft", "--out", join(tmp.path, "x")], env());
    expect(notRun.code).toBe(2);
    expect(notRun.stderr).toContain("is not a finished run");
    const missing = await runCli(["export", join(tmp.path, "no-run"), "--format", "peft", "--out", join(tmp.path, "x")], env());
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`${join(tmp.path, "no-run")} does not exist`);
    const existing = join(tmp.path, "exists");
    mkdirSync(existing);
    writeFileSync(join(existing, "keep.txt"), "keep");
    const clash = await runCli(["export", llamaRun, "--format", "peft", "--out", existing], env());
    expect(clash.code).toBe(2);
    expect(clash.stderr).toContain("already exists");
    expect(readdirSync(existing)).toEqual(["keep.txt"]);
    expect(existsSync(join(tmp.path, "x"))).toBe(false);
  });

  it("gguf: an adapter.gguf that a GGUF reader parses, with llama.cpp's keys and tensor names", async () => {
    const out = join(tmp.path, "gguf");
    const result = await runCli(["export", llamaRun, "--format", "gguf", "--out", out], env());
    expect(result.code, result.stderr).toBe(0);
    const { gguf } = await import("@huggingface/gguf");
    const parsed = await gguf(join(out, "adapter.gguf"), { allowLocalFile: true });
    const metadata = parsed.metadata as unknown as Record<string, unknown>;
    expect(metadata["general.type"]).toBe("adapter");
    expect(metadata["general.architecture"]).toBe("llama");
    expect(metadata["adapter.type"]).toBe("lora");
    expect(metadata["adapter.lora.alpha"]).toBe(8);
    const names = parsed.tensorInfos.map((t) => t.name);
    expect(names).toHaveLength(2 * 7 * 2);
    expect(names).toContain("blk.0.attn_q.weight.lora_a");
    expect(names).toContain("blk.1.ffn_down.weight.lora_b");
    const a = parsed.tensorInfos.find((t) => t.name === "blk.0.attn_q.weight.lora_a");
    expect(a?.shape.map(Number)).toEqual([32, 4]);
  });

  it("no absolute path of the user's in the model card, the GGUF name or the loss plot (local base model)", async () => {
    // The base is a local folder given by absolute path, and the run's output is absolute too.
    const run = await trainRun("local-base", join(tmp.path, "src-llama"), "[q_proj]");
    const peft = join(tmp.path, "local-peft");
    const gguf = join(tmp.path, "local-gguf");
    expect((await runCli(["export", run, "--format", "peft", "--out", peft], env())).code).toBe(0);
    expect((await runCli(["export", run, "--format", "gguf", "--out", gguf], env())).code).toBe(0);
    const card = readFileSync(join(peft, "README.md"), "utf8");
    const svg = readFileSync(join(run, "loss.svg"), "utf8");
    const ggufBytes = readFileSync(join(gguf, "adapter.gguf"));
    for (const secret of [tmp.path, homedir()]) {
      expect(card).not.toContain(secret);
      expect(svg).not.toContain(secret);
      expect(ggufBytes.includes(Buffer.from(secret))).toBe(false);
    }
    // The hub run's card (absolute output in its recipe) holds none either.
    expect(readFileSync(join(tmp.path, "peft", "README.md"), "utf8")).not.toContain(tmp.path);
    // The folder's own name stands for the model everywhere.
    expect(card).toContain("# LoRA adapter for src-llama");
    expect(card).toContain('from_pretrained("path/to/src-llama")');
    expect(card).toContain("model: src-llama\n");
    expect(card).not.toMatch(/^base_model:/m);
    expect(svg).toContain(">src-llama · LoRA r=4</text>");
    const { gguf: readGguf } = await import("@huggingface/gguf");
    const parsed = await readGguf(join(gguf, "adapter.gguf"), { allowLocalFile: true });
    expect((parsed.metadata as unknown as Record<string, unknown>)["general.name"]).toBe("src-llama");
  });

  it("warns that vLLM cannot serve GPT-2 adapters", async () => {
    const result = await runCli(["export", gpt2Run, "--format", "peft", "--out", join(tmp.path, "gpt2-peft")], env());
    expect(result.code).toBe(0);
    expect(result.stderr).toContain("vLLM cannot serve LoRA adapters for GPT-2");
  });

  it("exports a checkpoint directory too", async () => {
    const out = join(tmp.path, "from-checkpoint");
    const result = await runCli(["export", join(llamaRun, "checkpoints", "step-4"), "--format", "peft", "--out", out], env());
    expect(result.code, result.stderr).toBe(0);
    expect(readFileSync(join(out, "adapter_model.safetensors")).equals(readFileSync(join(llamaRun, "checkpoints", "step-4", "adapter", "adapter_model.safetensors")))).toBe(true);
  });
});

/** A tiny Gemma 3 (image and text) checkpoint as Google released them: text_config, language_model.model.* weights, a vision tower. */
function writeGemma3Multimodal(dir: string): void {
  const spec = { kind: "gemma3_text", seed: 76 } as const;
  mkdirSync(dir, { recursive: true });
  const { model_type: _, ...text } = tinyGemmaConfig(spec);
  writeFileSync(join(dir, "config.json"), JSON.stringify({ architectures: ["Gemma3ForConditionalGeneration"], model_type: "gemma3", text_config: { ...text, model_type: "gemma3_text" }, vision_config: { hidden_size: 8 } }));
  const tensors = Object.fromEntries(Object.entries(tinyGemmaTensors(spec)).map(([key, t]) => [key.replace(/^model\./, "language_model.model."), t]));
  tensors["vision_tower.vision_model.embeddings.patch_embedding.weight"] = { shape: [8, 3, 2, 2], data: Float64Array.from({ length: 96 }, (_, i) => i / 96) };
  writeSafetensors(join(dir, "model.safetensors"), tensors);
  writeTokenizerFiles(dir, 96);
}
