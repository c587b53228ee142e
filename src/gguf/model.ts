import { UserError } from "../errors.js";
import { openCheckpoint } from "../io/checkpoint.js";
import { openLoraMerge } from "../lora/merge.js";
import type { ModelConfig } from "../model/config.js";
import { encodeTensor } from "./encode.js";
import { ggufHyperparameters } from "./hparams.js";
import { mapTensorName, type MappedTensor } from "./tensor-map.js";
import { permuteRopeRows } from "./adapter.js";
import { ggufTokenizerMetadata } from "./vocab.js";
import { Q8_0_BLOCK, tensorBytes, writeGguf, type GgmlTypeName, type GgufTensor, type GgufValue } from "./writer.js";

export const GGUF_DTYPES = ["f32", "f16", "bf16", "q8_0"] as const;
export type GgufDtype = (typeof GGUF_DTYPES)[number];

/** general.file_type (llama.cpp's llama_ftype) for each --dtype. */
const FILE_TYPE: Record<GgufDtype, number> = { f32: 0, f16: 1, q8_0: 7, bf16: 32 };
const WEIGHT_TYPE: Record<GgufDtype, GgmlTypeName> = { f32: "F32", f16: "F16", q8_0: "Q8_0", bf16: "BF16" };

export interface GgufModelResult {
  architecture: string;
  tensors: number;
  bytes: number;
  /** Tensor counts by stored type, e.g. { Q8_0: 14, F32: 9 }. */
  types: Record<string, number>;
  warnings: string[];
}

/**
 * Writes a whole model as one GGUF file llama.cpp runs: the checkpoint in `modelDir` (with an adapter folded in on
 * the way when `adapterDir` is given), tensors renamed and reordered as llama.cpp's convert_hf_to_gguf.py does,
 * its hyperparameters and tokenizer in the metadata. Tensors are read, merged, converted and written one at a
 * time, so memory holds one tensor, never the model. The file is written atomically.
 */
export async function writeGgufModel(params: {
  modelDir: string;
  config: ModelConfig;
  out: string;
  dtype: GgufDtype;
  name: string;
  adapterDir?: string;
  /** The model this one was fine-tuned from (general.base_model.*): a hub id "org/name", or a local folder's name. */
  baseModel?: string;
}): Promise<GgufModelResult> {
  const { modelDir, config, dtype } = params;
  const hparams = ggufHyperparameters(config, `${modelDir}/config.json`);
  const tokenizer = await ggufTokenizerMetadata({ modelDir, config });
  const tokenCount = tokenListLength(tokenizer);
  const merge = params.adapterDir ? await openLoraMerge(params.adapterDir) : null;
  const checkpoint = await openCheckpoint(modelDir);
  try {
    const mapped: { source: string; target: MappedTensor; shape: number[] }[] = [];
    const unknown: string[] = [];
    for (const source of checkpoint.names()) {
      const target = mapTensorName(source, config);
      if (target === "skip") continue;
      if (target === null) {
        unknown.push(source);
        continue;
      }
      mapped.push({ source, target, shape: [...(checkpoint.entry(source)?.shape ?? [])] });
    }
    if (unknown.length > 0) {
      throw new UserError(
        `${modelDir} has tensors llama.cpp's ${hparams.architecture} architecture has no place for (${unknown.slice(0, 3).join(", ")}${unknown.length > 3 ? `, … ${unknown.length} in all` : ""}); ` +
          "GGUF export cannot convert this checkpoint.",
      );
    }
    mapped.sort((a, b) => a.target.order - b.target.order);
    checkEmbeddingRows(mapped, tokenCount, config, modelDir);

    const tensors: GgufTensor[] = [];
    for (const extra of hparams.extraTensors) tensors.push({ name: extra.name, shape: [extra.values.length], type: "F32", data: extra.values });
    for (const { source, target, shape } of mapped) {
      const stored = storedShape(target, shape, tokenCount);
      const type = tensorType(target.name, stored, dtype);
      tensors.push({
        name: target.name,
        shape: stored,
        type,
        data: async () => {
          const values = await checkpoint.readFloat32(source);
          merge?.apply(source, shape, values);
          return encodeTensor(transform(values, target, shape, stored), type);
        },
      });
    }
    const parameters = tensors.reduce((n, t) => n + t.shape.reduce((m, d) => m * d, 1), 0);
    const metadata: Record<string, GgufValue> = {
      "general.architecture": { type: "string", value: hparams.architecture },
      "general.type": { type: "string", value: "model" },
      "general.name": { type: "string", value: params.name },
      "general.size_label": { type: "string", value: sizeLabel(parameters) },
      ...(params.baseModel ? baseModelKeys(params.baseModel) : {}),
      ...hparams.metadata,
      "general.file_type": { type: "uint32", value: FILE_TYPE[dtype] },
      "general.quantization_version": { type: "uint32", value: 2 },
      ...tokenizer,
    };
    await writeGguf(params.out, { metadata, tensors });
    if (merge) merge.checkAllUsed(modelDir);
    const types: Record<string, number> = {};
    for (const t of tensors) types[t.type ?? "F32"] = (types[t.type ?? "F32"] ?? 0) + 1;
    return { architecture: hparams.architecture, tensors: tensors.length, bytes: tensors.reduce((n, t) => n + tensorBytes(t), 0), types, warnings: hparams.warnings };
  } finally {
    await checkpoint.close();
  }
}

/** gguf-py's size label: the parameter count in K, M, B or T with at least two significant digits ("135M", "1.2B"). */
export function sizeLabel(count: number): string {
  const [scale, suffix] = count > 1e12 ? [1e-12, "T"] : count > 1e9 ? [1e-9, "B"] : count > 1e6 ? [1e-6, "M"] : [1e-3, "K"];
  const scaled = count * scale;
  const digits = String(Math.round(scaled)).replace(/^0+/, "").length;
  return `${scaled.toFixed(Math.max(2 - digits, 0))}${suffix}`;
}

/** general.base_model.*: one base model, with its organization and hub address when it is a hub id. */
function baseModelKeys(base: string): Record<string, GgufValue> {
  const [organization, name] = base.includes("/") ? (base.split("/", 2) as [string, string]) : [null, base];
  const text = (value: string): GgufValue => ({ type: "string", value });
  return {
    "general.base_model.count": { type: "uint32", value: 1 },
    "general.base_model.0.name": text(name),
    ...(organization ? { "general.base_model.0.organization": text(organization), "general.base_model.0.repo_url": text(`https://huggingface.co/${base}`) } : {}),
  };
}

function tokenListLength(tokenizer: Record<string, GgufValue>): number {
  const tokens = tokenizer["tokenizer.ggml.tokens"];
  if (tokens?.type !== "array") throw new Error("GGUF: the tokenizer metadata has no token list (this is a bug)");
  return tokens.value.length;
}

/**
 * llama.cpp sizes the vocabulary by the token list, so token_embd (and an untied output) must have that many rows.
 * Gemma 3's converter drops embedding rows past the tokenizer's tokens; other models must match exactly.
 */
function checkEmbeddingRows(mapped: { target: MappedTensor; shape: number[] }[], tokenCount: number, config: ModelConfig, modelDir: string): void {
  for (const { target, shape } of mapped) {
    if (target.name !== "token_embd.weight" && target.name !== "output.weight") continue;
    const rows = shape[0] ?? 0;
    const trims = config.family === "gemma" && config.modelType !== "gemma2";
    if (rows === tokenCount || (trims && rows > tokenCount)) continue;
    throw new UserError(
      `${modelDir}: ${target.name === "output.weight" ? "lm_head" : "embed_tokens"} has ${rows} rows but the tokenizer has ${tokenCount} tokens; ` +
        "llama.cpp needs one row per token, so this checkpoint cannot be exported to GGUF.",
    );
  }
}

function storedShape(target: MappedTensor, shape: number[], tokenCount: number): number[] {
  if (target.transform.kind === "transpose") return [shape[1] ?? 0, shape[0] ?? 0];
  if (target.name === "token_embd.weight" || target.name === "output.weight") return [tokenCount, shape[1] ?? 0];
  return shape;
}

/**
 * The stored type, as the converter picks it: 1-D tensors, norms and GPT-2's position embeddings stay F32; other
 * weights take the requested type; a Q8_0 tensor whose rows are not whole blocks of 32 falls back to F16.
 */
function tensorType(name: string, shape: number[], dtype: GgufDtype): GgmlTypeName {
  if (shape.length <= 1 || name.endsWith("_norm.weight") || name === "position_embd.weight" || !name.endsWith(".weight")) return "F32";
  const type = WEIGHT_TYPE[dtype];
  if (type === "Q8_0" && (shape.at(-1) ?? 0) % Q8_0_BLOCK !== 0) return "F16";
  return type;
}

function transform(values: Float32Array, target: MappedTensor, shape: number[], stored: number[]): Float32Array {
  const t = target.transform;
  let out = values;
  if (t.kind === "permute") out = permuteRopeRows(values, shape[0] ?? 0, shape.length > 1 ? (shape[1] ?? 1) : 1, t.heads);
  else if (t.kind === "transpose") {
    const [rows, cols] = [shape[0] ?? 0, shape[1] ?? 0];
    out = new Float32Array(values.length);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c] ?? 0;
  } else if (t.kind === "addOne") out = values.map((v) => v + 1);
  const count = stored.reduce((n, d) => n * d, 1);
  return out.length === count ? out : out.subarray(0, count);
}

