/**
 * The real llama.cpp, through node-llama-cpp's prebuilt CPU binary (a devDependency; its postinstall is denied in
 * package.json's allowScripts, so nothing is ever downloaded or compiled). Loading is tried once per test file:
 * where the binary cannot load on this platform, tests that need it skip with the loader's reason, except on CI on
 * linux-x64, where the prebuilt binary is known to load and a failure to load is a failure.
 */
import type { Llama } from "node-llama-cpp";
import { f16ToF32, f32ToF16 } from "../../src/io/dtype.js";
import type { Need } from "./needs.js";
import { onCi } from "./needs.js";

let loading: Promise<{ llama: Llama | null; reason: string | null }> | undefined;

/** node-llama-cpp's Llama on the CPU, loaded from the prebuilt binary only; null with the reason when it cannot load. */
export function loadLlamaCpp(): Promise<{ llama: Llama | null; reason: string | null }> {
  loading ??= (async () => {
    try {
      const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
      const llama = await getLlama({ gpu: false, build: "never", usePrebuiltBinaries: true, progressLogs: false, logLevel: LlamaLogLevel.error, skipDownload: true });
      return { llama, reason: null };
    } catch (error) {
      return { llama: null, reason: `llama.cpp (node-llama-cpp's prebuilt binary) cannot load: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}` };
    }
  })();
  return loading;
}

/** The need for the real llama.cpp: load it first (`await loadLlamaCpp()` at the top of the test file). */
export function llamaCppNeed(loaded: { reason: string | null }, env: NodeJS.ProcessEnv = process.env): Need {
  return {
    missing: loaded.reason,
    required: onCi(env) && process.platform === "linux" && process.arch === "x64",
    requiredBecause: "on CI on linux-x64 node-llama-cpp's prebuilt CPU binary (@node-llama-cpp/linux-x64) must load",
  };
}

/** A GGUF model loaded into llama.cpp with one sequence, evaluated token by token with its raw logits. */
export interface LlamaCppModel {
  /** The logits after each of `ids` (row t predicts token t + 1), from a fresh KV cache. */
  logits(ids: number[]): Promise<Float32Array[]>;
  /** `steps` tokens by argmax of llama.cpp's logits after `ids` (no sampler involved). */
  greedy(ids: number[], steps: number): Promise<number[]>;
  /** llama.cpp's tokenization; special tokens written in the text are parsed as such. */
  tokenize(text: string): number[];
  vocabSize: number;
  dispose(): Promise<void>;
}

/**
 * Loads `path` on the CPU with an F32 KV cache (llama.cpp's default F16 cache would round keys and values) and,
 * when given, LoRA adapters (GGUF) at scale 1.
 */
export async function openLlamaCpp(llama: Llama, path: string, options: { lora?: string[]; contextSize?: number } = {}): Promise<LlamaCppModel> {
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0, useMmap: false });
  const context = await model.createContext({
    contextSize: options.contextSize ?? 256,
    batchSize: options.contextSize ?? 256,
    sequences: 1,
    threads: 1,
    flashAttention: false,
    experimentalKvCacheKeyType: "F32",
    experimentalKvCacheValueType: "F32",
    ...(options.lora ? { lora: { adapters: options.lora.map((filePath) => ({ filePath, scale: 1 })) } } : {}),
  });
  const vocabSize = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
  const sequence = context.getSequence();
  const toRow = (map: Map<number, number> | undefined): Float32Array => {
    const row = new Float32Array(vocabSize).fill(Number.NaN);
    for (const [token, value] of map ?? []) row[token] = value;
    return row;
  };
  const evaluate = async (ids: number[], all: boolean): Promise<Float32Array[]> => {
    const input = ids.map((id, i) => (all || i === ids.length - 1 ? ([id, { generateNext: { logits: true } }] as [number, { generateNext: { logits: true } }]) : id));
    const out = await sequence.controlledEvaluate(input as never);
    return out.flatMap((item, i) => (all || i === ids.length - 1 ? [toRow(item?.next?.logits as Map<number, number> | undefined)] : []));
  };
  const argmax = (row: Float32Array) => row.reduce((best, v, i, a) => (v > (a[best] ?? -Infinity) ? i : best), 0);
  return {
    vocabSize,
    async logits(ids) {
      await sequence.clearHistory();
      return evaluate(ids, true);
    },
    async greedy(ids, steps) {
      await sequence.clearHistory();
      const out: number[] = [];
      let next = argmax((await evaluate(ids, false))[0] ?? new Float32Array(0));
      for (let s = 0; s < steps; s++) {
        out.push(next);
        if (s < steps - 1) next = argmax((await evaluate([next], false))[0] ?? new Float32Array(0));
      }
      return out;
    },
    tokenize: (text) => model.tokenize(text, true) as number[],
    async dispose() {
      await context.dispose();
      await model.dispose();
    },
  };
}

/**
 * GELU (tanh form) as llama.cpp computes it on the CPU: ggml-cpu's vec.h defines GGML_GELU_FP16, so ggml_vec_gelu_f32
 * rounds x to f16, looks up a table of f16-rounded results, and passes x through unchanged at 10 and above (0 at
 * -10 and below). A reference with this GELU shows that a GPT-2 or Gemma GGUF computes exactly the model; the gap
 * between it and finetune's exact GELU is this table's rounding.
 */
export function ggmlGelu(x: number): number {
  if (x <= -10) return 0;
  if (x >= 10) return x;
  const half = (v: number) => f16Value(v);
  const h = half(x);
  return half(0.5 * h * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * h * (1 + 0.044715 * h * h))));
}

function f16Value(v: number): number {
  const out = new Float32Array(1);
  f16ToF32(f32ToF16(Float32Array.of(v)), out);
  return out[0] ?? 0;
}
