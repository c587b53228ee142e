import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { errnoCode, UserError } from "../errors.js";
import { openCheckpoint } from "../io/checkpoint.js";
import { collectGarbage } from "../io/collect-garbage.js";
import { parseModelConfig, type ModelConfig } from "./config.js";
import { loadGemma } from "./gemma.js";
import { loadGpt2 } from "./gpt2.js";
import { nativeFrozenStore } from "../backend/native-frozen.js";
import { registeredMatmulPath } from "../backend/wasm-matmul.js";
import { loadLlama } from "./llama.js";
import type { CausalLM, Tf } from "./types.js";
import type { Quantize } from "./quantize.js";
import { WeightReader } from "./weight-reader.js";

/** Reads and validates `<dir>/config.json`. */
export async function readModelConfig(dir: string): Promise<ModelConfig> {
  const path = join(dir, "config.json");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if (errnoCode(error) === "ENOENT") {
      const files = await readdir(dir).catch(() => []);
      throw new UserError(`${dir} has no config.json, so it is not a Hugging Face model folder (it has: ${files.join(", ") || "nothing"}).`);
    }
    throw error;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new UserError(`${path} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  return parseModelConfig(raw, path);
}

export interface LoadOptions {
  fuse?: boolean;
  quantize?: Quantize;
  /**
   * Where `quantize: none` keeps a Llama-family model's float32 matrices: tfjs tensors (the default), or the native
   * store, where the native decoder reads them (generate; the caller has checked that the addon is there). GPT-2
   * and Gemma, which have no native decoder, always keep tensors.
   */
  float32In?: "tensors" | "native";
}

/**
 * Builds the model from a folder with config.json and safetensors weights, reading one tensor at a time; with a
 * quantize other than none, the matrices go into the native store in that format (see model/quantize.ts).
 */
export async function loadModel(tf: Tf, dir: string, options: LoadOptions = {}): Promise<CausalLM> {
  const config = await readModelConfig(dir);
  const quantize = options.quantize ?? "none";
  // Before any file is opened: without the native addon a quantized load is refused here.
  const nativeFloat32 = options.float32In === "native" && config.family === "llama";
  const store = quantize !== "none" ? nativeFrozenStore(tf, quantize) : nativeFloat32 ? nativeFrozenStore(tf, "f32") : null;
  const checkpoint = await openCheckpoint(dir);
  try {
    const reader = new WeightReader(checkpoint, dir, `config.json (${describe(config)})`, store);
    try {
      if (config.family === "gpt2") return await loadGpt2(tf, config, reader);
      const fuse = options.fuse ?? defaultFusion(tf);
      return config.family === "gemma" ? await loadGemma(tf, config, reader, { fuse }) : await loadLlama(tf, config, reader, { fuse });
    } finally {
      reader.release();
      if (store) collectGarbage();
    }
  } finally {
    await checkpoint.close();
  }
}

function describe(config: ModelConfig): string {
  return config.family === "gpt2"
    ? `n_embd=${config.hiddenSize}, n_layer=${config.numLayers}, vocab_size=${config.vocabSize}`
    : `hidden_size=${config.hiddenSize}, heads=${config.numHeads}/${config.numKvHeads}, intermediate_size=${config.intermediateSize}, vocab_size=${config.vocabSize}`;
}

/**
 * Fuse q/k/v and gate/up into one matmul each only where a matmul launch is expensive (tfjs's own wasm matmul);
 * with the native GEMM, or on other backends, separate matmuls avoid copying the fused output apart.
 */
function defaultFusion(tf: Tf): boolean {
  if (process.env.FINETUNE_FUSE === "0") return false;
  if (process.env.FINETUNE_FUSE === "1") return true;
  return tf.getBackend() === "wasm" && registeredMatmulPath()?.path === "wasm-xnnpack";
}
