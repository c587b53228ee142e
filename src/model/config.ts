import { z } from "zod";
import { UserError } from "../errors.js";
import { GEMMA_MODEL_TYPES, parseGemma, type GemmaConfig } from "./gemma-config.js";
import { ropeInverseFrequencies, type RopeSpec } from "./rope.js";

export type { GemmaConfig } from "./gemma-config.js";

export const SUPPORTED_MODEL_TYPES = ["llama", "mistral", "qwen2", "gpt2", ...GEMMA_MODEL_TYPES] as const;

/** Llama-family decoder (Llama 2/3, Mistral, Qwen2, SmolLM, TinyLlama), normalised from config.json. */
export interface LlamaConfig {
  family: "llama";
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  rope: RopeSpec;
  /** inv_freq after any scaling, length headDim/2, float32 as transformers computes it. */
  ropeInvFreq: Float32Array;
  tieWordEmbeddings: boolean;
  /** q/k/v projection biases (Qwen2, or attention_bias). */
  qkvBias: boolean;
  /** o_proj bias (attention_bias). */
  oBias: boolean;
  mlpBias: boolean;
  maxPositions: number;
  /** Mistral-style sliding window: query i sees keys j with i - j < window. */
  slidingWindow: number | null;
  /** First layer that uses the sliding window (Qwen2's max_window_layers; 0 for Mistral). */
  slidingWindowFromLayer: number;
}

export interface Gpt2Config {
  family: "gpt2";
  modelType: "gpt2";
  vocabSize: number;
  hiddenSize: number;
  innerSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  layerNormEps: number;
  maxPositions: number;
  tieWordEmbeddings: true;
}

export type ModelConfig = LlamaConfig | Gpt2Config | GemmaConfig;

const count = z.number().int().positive();
const ropeScaling = z
  .object({
    rope_type: z.string().optional(),
    type: z.string().optional(),
    rope_theta: z.number().positive().optional(),
    factor: z.number().positive().optional(),
    low_freq_factor: z.number().positive().optional(),
    high_freq_factor: z.number().positive().optional(),
    original_max_position_embeddings: count.optional(),
  })
  .passthrough();

const llamaSchema = z
  .object({
    model_type: z.enum(["llama", "mistral", "qwen2"]),
    vocab_size: count,
    hidden_size: count,
    intermediate_size: count,
    num_hidden_layers: count,
    num_attention_heads: count,
    num_key_value_heads: count.nullish(),
    head_dim: count.nullish(),
    rms_norm_eps: z.number().positive().default(1e-6),
    rope_theta: z.number().positive().default(10000),
    rope_scaling: ropeScaling.nullish(),
    rope_parameters: ropeScaling.nullish(),
    tie_word_embeddings: z.boolean().optional(),
    attention_bias: z.boolean().default(false),
    mlp_bias: z.boolean().default(false),
    max_position_embeddings: count.default(2048),
    sliding_window: count.nullish(),
    use_sliding_window: z.boolean().optional(),
    max_window_layers: z.number().int().nonnegative().optional(),
    hidden_act: z.string().default("silu"),
  })
  .passthrough();

const gpt2Schema = z
  .object({
    model_type: z.literal("gpt2"),
    vocab_size: count.default(50257),
    n_embd: count.default(768),
    n_head: count.default(12),
    n_layer: count.default(12),
    n_positions: count.default(1024),
    n_inner: count.nullish(),
    layer_norm_epsilon: z.number().positive().default(1e-5),
    activation_function: z.string().default("gelu_new"),
    scale_attn_weights: z.boolean().default(true),
    scale_attn_by_inverse_layer_idx: z.boolean().default(false),
    reorder_and_upcast_attn: z.boolean().default(false),
  })
  .passthrough();

/** Parses config.json into a normalised config; every problem is a UserError naming the field. */
export function parseModelConfig(raw: unknown, source: string): ModelConfig {
  const modelType = typeof raw === "object" && raw !== null && "model_type" in raw ? String(raw.model_type) : undefined;
  if (!modelType || !(SUPPORTED_MODEL_TYPES as readonly string[]).includes(modelType)) {
    throw new UserError(
      `${source}: model_type ${modelType === undefined ? "is missing" : JSON.stringify(modelType)}${modelType ? " is not supported" : ""}; ` +
        `supported: ${SUPPORTED_MODEL_TYPES.join(", ")} (SmolLM and TinyLlama are llama).`,
    );
  }
  if ((GEMMA_MODEL_TYPES as readonly string[]).includes(modelType)) return parseGemma(raw, source);
  return modelType === "gpt2" ? parseGpt2(raw, source) : parseLlama(raw, source);
}

function issues(error: z.ZodError, source: string): UserError {
  const lines = error.issues.map((issue) => `  ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  return new UserError(`${source} is not a valid model config:\n${lines.join("\n")}`);
}

function parseLlama(raw: unknown, source: string): LlamaConfig {
  const parsed = llamaSchema.safeParse(raw);
  if (!parsed.success) throw issues(parsed.error, source);
  const c = parsed.data;
  if (c.hidden_act !== "silu") throw new UserError(`${source}: hidden_act "${c.hidden_act}" is not supported; Llama-family models use "silu".`);
  const numKvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % numKvHeads !== 0) {
    throw new UserError(`${source}: num_attention_heads (${c.num_attention_heads}) must be a multiple of num_key_value_heads (${numKvHeads}).`);
  }
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new UserError(`${source}: head dimension ${headDim} (hidden_size / num_attention_heads) must be an even integer.`);
  }
  const rope = ropeSpec(c.rope_parameters ?? c.rope_scaling ?? null, c.rope_parameters?.rope_theta ?? c.rope_theta, c.max_position_embeddings, source);
  const slidingWindow = c.model_type === "mistral" ? (c.sliding_window ?? null) : c.use_sliding_window ? (c.sliding_window ?? null) : null;
  return {
    family: "llama",
    modelType: c.model_type,
    vocabSize: c.vocab_size,
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size,
    numLayers: c.num_hidden_layers,
    numHeads: c.num_attention_heads,
    numKvHeads,
    headDim,
    rmsNormEps: c.rms_norm_eps,
    rope,
    ropeInvFreq: ropeInverseFrequencies(rope, headDim),
    tieWordEmbeddings: c.tie_word_embeddings ?? false,
    qkvBias: c.model_type === "qwen2" || c.attention_bias,
    oBias: c.attention_bias,
    mlpBias: c.mlp_bias,
    maxPositions: c.max_position_embeddings,
    slidingWindow,
    slidingWindowFromLayer: c.model_type === "qwen2" ? (c.max_window_layers ?? 28) : 0,
  };
}

const SUPPORTED_ROPE = ["default", "linear", "llama3"];

function ropeSpec(scaling: z.infer<typeof ropeScaling> | null, theta: number, maxPositions: number, source: string): RopeSpec {
  const type = scaling?.rope_type ?? scaling?.type ?? "default";
  if (!SUPPORTED_ROPE.includes(type)) {
    throw new UserError(`${source}: rope type "${type}" is not supported yet; supported: ${SUPPORTED_ROPE.join(", ")}.`);
  }
  if (type === "default") return { type: "default", theta };
  const factor = scaling?.factor;
  if (factor === undefined) throw new UserError(`${source}: rope scaling "${type}" needs a "factor".`);
  if (type === "linear") return { type: "linear", theta, factor };
  return {
    type: "llama3",
    theta,
    factor,
    lowFreqFactor: scaling?.low_freq_factor ?? 1,
    highFreqFactor: scaling?.high_freq_factor ?? 4,
    originalMaxPositions: scaling?.original_max_position_embeddings ?? maxPositions,
  };
}

function parseGpt2(raw: unknown, source: string): Gpt2Config {
  const parsed = gpt2Schema.safeParse(raw);
  if (!parsed.success) throw issues(parsed.error, source);
  const c = parsed.data;
  if (c.activation_function !== "gelu_new" && c.activation_function !== "gelu_pytorch_tanh") {
    throw new UserError(`${source}: activation_function "${c.activation_function}" is not supported; GPT-2 uses "gelu_new".`);
  }
  if (!c.scale_attn_weights || c.scale_attn_by_inverse_layer_idx || c.reorder_and_upcast_attn) {
    throw new UserError(`${source}: non-standard GPT-2 attention options (scale_attn_weights=false, scale_attn_by_inverse_layer_idx, reorder_and_upcast_attn) are not supported.`);
  }
  if (c.n_embd % c.n_head !== 0) throw new UserError(`${source}: n_embd (${c.n_embd}) must be a multiple of n_head (${c.n_head}).`);
  return {
    family: "gpt2",
    modelType: "gpt2",
    vocabSize: c.vocab_size,
    hiddenSize: c.n_embd,
    innerSize: c.n_inner ?? 4 * c.n_embd,
    numLayers: c.n_layer,
    numHeads: c.n_head,
    numKvHeads: c.n_head,
    headDim: c.n_embd / c.n_head,
    layerNormEps: c.layer_norm_epsilon,
    maxPositions: c.n_positions,
    tieWordEmbeddings: true,
  };
}
