import { join } from "node:path";
import { UserError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { openCheckpoint } from "../io/checkpoint.js";
import type { ModelConfig } from "../model/config.js";
import { loadTokenizer } from "../tokenizer/load.js";
import { writeGgufAdapter } from "./adapter.js";
import { writeGgufModel, type GgufDtype } from "./model.js";
import { ollamaModelfile, stopTexts } from "./modelfile.js";

export interface GgufExport {
  files: string[];
  warnings: string[];
  /** The commands that run what was written, for the summary. */
  run: string[];
}

/**
 * `--dtype` when not given, as llama.cpp's converter picks it: bf16 for a bf16 checkpoint, else f16 (a float32
 * checkpoint halves in size; f32 keeps it exact).
 */
export async function defaultDtype(modelDir: string): Promise<GgufDtype> {
  const checkpoint = await openCheckpoint(modelDir);
  try {
    const first = checkpoint.names().find((name) => name.endsWith(".weight"));
    return first !== undefined && checkpoint.dtypeOf(first) === "BF16" ? "bf16" : "f16";
  } finally {
    await checkpoint.close();
  }
}

/** model.gguf (the base, or the base with the adapter merged in) and an Ollama Modelfile, into `dir` (renamed to `finalDir` afterwards). */
export async function exportGgufModel(params: { modelDir: string; config: ModelConfig; adapterDir?: string; baseModel?: string; dir: string; finalDir: string; dtype: GgufDtype; name: string }): Promise<GgufExport> {
  const result = await writeGgufModel({
    modelDir: params.modelDir,
    config: params.config,
    out: join(params.dir, "model.gguf"),
    dtype: params.dtype,
    name: params.name,
    ...(params.adapterDir ? { adapterDir: params.adapterDir } : {}),
    ...(params.baseModel ? { baseModel: params.baseModel } : {}),
  });
  const stops = stopTexts(await loadTokenizer(params.modelDir));
  await writeFileAtomic(join(params.dir, "Modelfile"), ollamaModelfile({ from: "./model.gguf", stops }));
  return { files: ["model.gguf", "Modelfile"], warnings: result.warnings, run: runCommands(params.finalDir, "model.gguf") };
}

/**
 * adapter.gguf, and with it the base model as base.gguf and a Modelfile that puts the two together, so llama.cpp
 * and Ollama can run it as it is. When the base cannot be converted (an architecture or tokenizer llama.cpp cannot
 * hold), the adapter is still written and the reason is a warning.
 */
export async function exportGgufAdapter(params: { modelDir: string; config: ModelConfig; adapterDir: string; dir: string; finalDir: string; dtype: GgufDtype; name: string }): Promise<GgufExport> {
  await writeGgufAdapter({ adapterDir: params.adapterDir, modelConfig: params.config, out: join(params.dir, "adapter.gguf") });
  try {
    const base = await writeGgufModel({ modelDir: params.modelDir, config: params.config, out: join(params.dir, "base.gguf"), dtype: params.dtype, name: params.name });
    const stops = stopTexts(await loadTokenizer(params.modelDir));
    await writeFileAtomic(join(params.dir, "Modelfile"), ollamaModelfile({ from: "./base.gguf", adapter: "./adapter.gguf", stops }));
    return { files: ["adapter.gguf", "base.gguf", "Modelfile"], warnings: base.warnings, run: runCommands(params.finalDir, "base.gguf", "adapter.gguf") };
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    return {
      files: ["adapter.gguf"],
      warnings: [`the base model was not converted, so only adapter.gguf was written: ${error.message}`],
      run: [`llama-cli -m <base model GGUF> --lora ${join(params.finalDir, "adapter.gguf")}`],
    };
  }
}

function runCommands(dir: string, model: string, adapter?: string): string[] {
  return [
    `llama-cli -m ${join(dir, model)}${adapter ? ` --lora ${join(dir, adapter)}` : ""} -cnv`,
    `ollama create my-model -f ${join(dir, "Modelfile")} && ollama run my-model`,
  ];
}
