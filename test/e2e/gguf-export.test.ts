/**
 * `finetune export --format gguf-model | gguf` through the CLI, run by the real llama.cpp (node-llama-cpp's prebuilt
 * binary): its greedy continuation equals `finetune generate`'s, for an adapter merged into model.gguf, for
 * base.gguf + adapter.gguf, for a base model alone, and for the real stories260K from ../shared.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import { loadBackend } from "../../src/backend/load.js";
import { loadModel } from "../../src/model/load-model.js";
import { llamaCppNeed, loadLlamaCpp, openLlamaCpp } from "../helpers/llama-cpp.js";
import { allNeeds, describeNeeds, itNeeds, sharedFiles, sharedPath } from "../helpers/needs.js";
import { writeRandomAdapter } from "../helpers/random-adapter.js";
import { npmPackage, writeLlamaTokenizer } from "../helpers/real-tokenizers.js";
import { cleanEnv, lastJson, ROOT, runCli, tempDir } from "../helpers/run-cli.js";
import { writeTinyCheckpoint } from "../helpers/tiny-checkpoint.js";

const loaded = await loadLlamaCpp();
const need = allNeeds(llamaCppNeed(loaded), npmPackage("llama-tokenizer-js", "1.2.2"));
const tmp = tempDir();
afterAll(() => tmp.cleanup());
const env = () => cleanEnv({ HOME: join(tmp.path, "home"), HF_HUB_OFFLINE: "1" });

const PROMPT = "Once upon a time, there was a little cat";
let model: string;
let adapter: string;
let charModel: string;

beforeAll(async () => {
  if (need.missing !== null) return;
  // A tiny Llama with Llama 2's real SentencePiece tokenizer (32000 tokens), and a PEFT adapter on every projection.
  model = join(tmp.path, "tiny-llama");
  writeTinyCheckpoint(model, { kind: "llama", vocab: 32000, hidden: 32, layers: 2 });
  await writeLlamaTokenizer(model);
  const { tf } = await loadBackend({ forced: "wasm" });
  const loadedModel = await loadModel(tf, model);
  adapter = join(tmp.path, "adapter");
  await writeRandomAdapter(adapter, loadedModel, { r: 4, alpha: 8, seed: 5 });
  loadedModel.dispose();
  const config = JSON.parse(readFileSync(join(adapter, "adapter_config.json"), "utf8")) as Record<string, unknown>;
  await writeFile(join(adapter, "adapter_config.json"), JSON.stringify({ ...config, base_model_name_or_path: model }));
  // The tiny checkpoints' own tokenizer splits on a regex no GGUF can hold.
  charModel = join(tmp.path, "char-llama");
  writeTinyCheckpoint(charModel, { kind: "llama" });
});

interface Generated {
  prompt_ids: number[];
  ids: number[];
  stop_reason: string;
}

async function finetuneGreedy(args: string[]): Promise<Generated> {
  const result = await runCli(["generate", ...args, "--prompt", PROMPT, "--max-new-tokens", "32", "--temperature", "0", "--json"], env());
  expect(result.code, result.stderr).toBe(0);
  return lastJson(result.stdout) as unknown as Generated;
}

/** llama.cpp's greedy continuation of finetune's prompt ids, as long as finetune's (which may stop at EOS). */
async function llamaCppGreedy(path: string, generated: Generated, lora?: string): Promise<number[]> {
  const cpp = await openLlamaCpp(loaded.llama!, path, lora ? { lora: [lora] } : {});
  try {
    return await cpp.greedy(generated.prompt_ids, generated.ids.length);
  } finally {
    await cpp.dispose();
  }
}

async function exportCli(args: string[], json = true): Promise<{ out: string; json: Record<string, unknown>; stdout: string; stderr: string }> {
  const out = join(tmp.path, `out-${Math.random().toString(36).slice(2, 8)}`);
  const result = await runCli(["export", ...args, "--out", out, ...(json ? ["--json"] : [])], env());
  expect(result.code, result.stderr).toBe(0);
  return { out, json: json ? lastJson(result.stdout) : {}, stdout: result.stdout, stderr: result.stderr };
}

describeNeeds(need, "finetune export to GGUF, run by the real llama.cpp", () => {
  itNeeds(need, "gguf-model: the adapter merged into model.gguf continues the prompt as finetune generate --adapter does; a Modelfile sits next to it", async () => {
    const { out, json } = await exportCli([adapter, "--format", "gguf-model", "--dtype", "f32"]);
    expect(readdirSync(out).sort()).toEqual(["Modelfile", "model.gguf"]);
    expect(json).toMatchObject({ format: "gguf-model", files: ["Modelfile", "model.gguf"], run: [`llama-cli -m ${join(out, "model.gguf")} -cnv`, `ollama create my-model -f ${join(out, "Modelfile")} && ollama run my-model`] });
    expect(readFileSync(join(out, "Modelfile"), "utf8")).toBe('FROM ./model.gguf\nPARAMETER stop "</s>"\n');
    const { gguf } = await import("@huggingface/gguf");
    const { metadata } = await gguf(join(out, "model.gguf"), { allowLocalFile: true });
    expect(metadata).toMatchObject({ "general.architecture": "llama", "general.name": "tiny-llama-adapter", "general.size_label": "2.1M", "general.base_model.count": 1, "general.base_model.0.name": "tiny-llama", "general.file_type": 0 });
    const generated = await finetuneGreedy(["--model", model, "--adapter", adapter]);
    expect(generated.ids.length).toBeGreaterThan(8);
    expect(await llamaCppGreedy(join(out, "model.gguf"), generated)).toEqual(generated.ids);
  });

  itNeeds(need, "gguf: adapter.gguf on base.gguf equals finetune generate --adapter; the Modelfile puts them together with ADAPTER", async () => {
    const { out } = await exportCli([adapter, "--format", "gguf", "--dtype", "f32"]);
    expect(readdirSync(out).sort()).toEqual(["Modelfile", "adapter.gguf", "base.gguf"]);
    expect(readFileSync(join(out, "Modelfile"), "utf8")).toBe('FROM ./base.gguf\nADAPTER ./adapter.gguf\nPARAMETER stop "</s>"\n');
    const generated = await finetuneGreedy(["--model", model, "--adapter", adapter]);
    expect(await llamaCppGreedy(join(out, "base.gguf"), generated, join(out, "adapter.gguf"))).toEqual(generated.ids);
  });

  itNeeds(need, "--model converts a base model alone, and it continues the prompt as finetune generate does", async () => {
    const { out } = await exportCli(["--model", model, "--format", "gguf-model", "--dtype", "f32"]);
    const generated = await finetuneGreedy(["--model", model]);
    expect(await llamaCppGreedy(join(out, "model.gguf"), generated)).toEqual(generated.ids);
  });

  itNeeds(allNeeds(need, sharedFiles(["models/stories260K/model.safetensors", "models/stories260K/tokenizer.json"])), "stories260K (../shared): llama.cpp continues the prompt as finetune generate does, f32 and q8_0", async () => {
    const stories = relative(ROOT, sharedPath("models/stories260K"));
    const generated = await finetuneGreedy(["--model", sharedPath("models/stories260K")]);
    expect(generated.ids.length).toBe(32);
    const f32 = await exportCli(["--model", sharedPath("models/stories260K"), "--format", "gguf-model", "--dtype", "f32"]);
    expect(await llamaCppGreedy(join(f32.out, "model.gguf"), generated)).toEqual(generated.ids);
    // q8_0 rounds every weight and llama.cpp rounds activations to 8 bits too: the same story for its first tokens.
    const q8 = await exportCli(["--model", sharedPath("models/stories260K"), "--format", "gguf-model", "--dtype", "q8_0"]);
    const q8Ids = await llamaCppGreedy(join(q8.out, "model.gguf"), generated);
    expect(q8Ids.slice(0, 8)).toEqual(generated.ids.slice(0, 8));
    expect(stories.startsWith("..")).toBe(true);
  });

  itNeeds(need, "refusals exit 2 and leave nothing behind: a tokenizer no GGUF can hold, --dtype without GGUF, --model with a run or with peft", async () => {
    const cases: [string[], RegExp][] = [
      [["--model", charModel, "--format", "gguf-model"], /pre_tokenizer .* matches none of llama\.cpp's pre-tokenizers/],
      [[adapter, "--format", "peft", "--dtype", "f16"], /--dtype sets the GGUF tensor type; it applies to --format gguf-model and gguf, not peft/],
      [["--model", model, "--format", "merged"], /--model converts a base model, which only --format gguf-model writes \(not merged\)/],
      [[adapter, "--model", model, "--format", "gguf-model"], /give either a run .* or --model .*, not both/],
      [["--format", "gguf-model"], /give a run directory from `finetune train`/],
    ];
    for (const [args, message] of cases) {
      const out = join(tmp.path, "refused", "out");
      const result = await runCli(["export", ...args, "--out", out], env());
      expect({ args, code: result.code }).toEqual({ args, code: 2 });
      expect(result.stderr).toMatch(message);
      expect(existsSync(join(tmp.path, "refused"))).toBe(false);
    }
  });

  itNeeds(need, "gguf with a base llama.cpp cannot hold: adapter.gguf alone, and a warning that says why", async () => {
    const { tf } = await loadBackend({ forced: "wasm" });
    const charAdapter = join(tmp.path, "char-adapter");
    const loadedModel = await loadModel(tf, charModel);
    await writeRandomAdapter(charAdapter, loadedModel, { r: 2 });
    loadedModel.dispose();
    const config = JSON.parse(readFileSync(join(charAdapter, "adapter_config.json"), "utf8")) as Record<string, unknown>;
    await writeFile(join(charAdapter, "adapter_config.json"), JSON.stringify({ ...config, base_model_name_or_path: charModel }));
    const { out, stdout, stderr } = await exportCli([charAdapter, "--format", "gguf"], false);
    expect(readdirSync(out)).toEqual(["adapter.gguf"]);
    expect(stderr).toMatch(/warning: the base model was not converted, so only adapter\.gguf was written: .*pre_tokenizer/);
    expect(stdout).toContain(`llama-cli -m <base model GGUF> --lora ${join(out, "adapter.gguf")}`);
  });
});
